//! Loans that end whole.
//!
//! A descriptor lent for one call (`borrow<descriptor>`) is a share of the
//! lender's open file or directory. During the call the borrower can derive more
//! from it: files opened under a lent directory, listings, streams, pollables on
//! those streams. Hunting every such object down when the call returns is fragile
//! (a stream with a pollable subscribed to it cannot be deleted from the table
//! while the pollable lives). So every object made under a loan is *revocable*:
//!
//! * each loan has a switch ([`Loan`]), turned off when the call returns;
//! * descriptors and listings made under a loan are recorded with it by the
//!   filesystem guard, which checks the switch on every use;
//! * streams made under a loan are wrapped ([`RevocableInput`],
//!   [`RevocableOutput`]) so that every read, write and poll checks the switch,
//!   whatever holds them (a pollable included).
//!
//! When the loan ends, the switch goes off, and from then on nothing made from the
//! loan does anything: revocation is one store, so it cannot be left half done.
//! What the borrower still holds of the loan stays in its table, dead, until it
//! drops it: deleting an entry under the guest would leave it a handle number that
//! a later handle could reuse. A dead entry stays marked as made under a loan, so
//! it can never be given onward, handed back or lent again.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// One loan's switch: on while the call that lent it runs.
#[derive(Clone, Debug)]
pub(crate) struct Loan {
    pub id: u64,
    live: Arc<AtomicBool>,
}

impl Loan {
    pub fn new(id: u64) -> Self {
        Self {
            id,
            live: Arc::new(AtomicBool::new(true)),
        }
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    pub fn end(&self) {
        self.live.store(false, Ordering::Release);
    }
}

/// Which kind of stream a loan made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamKind {
    Input,
    Output,
}

/// The streams made under loans that are still in a nanoprocess's table, by
/// table index. Kept by the wrappers themselves: a wrapper leaves it when it is
/// dropped, so an index here is always the wrapper's (never a later handle that
/// reused the number).
#[derive(Clone, Default)]
pub(crate) struct LoanStreams(Arc<Mutex<HashMap<u32, (u64, StreamKind)>>>);

impl LoanStreams {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (u64, StreamKind)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn contains(&self, rep: u32) -> bool {
        self.map().contains_key(&rep)
    }

    fn insert(&self, rep: u32, loan: u64, kind: StreamKind) {
        self.map().insert(rep, (loan, kind));
    }

    fn remove(&self, rep: u32, loan: u64) {
        let mut map = self.map();
        if map.get(&rep).is_some_and(|(l, _)| *l == loan) {
            map.remove(&rep);
        }
    }
}

/// What a stream made under a loan answers once the loan has ended.
fn ended() -> StreamError {
    StreamError::LastOperationFailed(wasmtime::format_err!(
        "this stream was made from a descriptor lent for one call, and that call has ended"
    ))
}

/// Wraps the input stream at `rep` (just made under `loan`) in place.
pub(crate) fn wrap_input(
    table: &mut wasmtime::component::ResourceTable,
    rep: u32,
    loan: &Loan,
    streams: &LoanStreams,
) -> wasmtime::Result<()> {
    let slot: &mut DynInputStream =
        table.get_mut(&wasmtime::component::Resource::new_borrow(rep))?;
    let inner = std::mem::replace(slot, Box::new(wasmtime_wasi::p2::pipe::ClosedInputStream));
    *slot = Box::new(RevocableInput {
        inner,
        loan: loan.clone(),
        streams: streams.clone(),
        rep,
    });
    streams.insert(rep, loan.id, StreamKind::Input);
    Ok(())
}

/// Wraps the output stream at `rep` (just made under `loan`) in place.
pub(crate) fn wrap_output(
    table: &mut wasmtime::component::ResourceTable,
    rep: u32,
    loan: &Loan,
    streams: &LoanStreams,
) -> wasmtime::Result<()> {
    let slot: &mut DynOutputStream =
        table.get_mut(&wasmtime::component::Resource::new_borrow(rep))?;
    let inner = std::mem::replace(slot, Box::new(wasmtime_wasi::p2::pipe::ClosedOutputStream));
    *slot = Box::new(RevocableOutput {
        inner,
        loan: loan.clone(),
        streams: streams.clone(),
        rep,
    });
    streams.insert(rep, loan.id, StreamKind::Output);
    Ok(())
}

pub(crate) struct RevocableInput {
    inner: DynInputStream,
    loan: Loan,
    streams: LoanStreams,
    rep: u32,
}

impl Drop for RevocableInput {
    fn drop(&mut self) {
        self.streams.remove(self.rep, self.loan.id);
    }
}

#[async_trait::async_trait]
impl Pollable for RevocableInput {
    async fn ready(&mut self) {
        // A dead stream is ready at once: its next use fails.
        if self.loan.is_live() {
            self.inner.ready().await;
        }
    }
}

#[async_trait::async_trait]
impl InputStream for RevocableInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.read(size)
    }

    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.blocking_read(size).await
    }

    fn skip(&mut self, nelem: usize) -> StreamResult<usize> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.skip(nelem)
    }

    async fn blocking_skip(&mut self, nelem: usize) -> StreamResult<usize> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.blocking_skip(nelem).await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

pub(crate) struct RevocableOutput {
    inner: DynOutputStream,
    loan: Loan,
    streams: LoanStreams,
    rep: u32,
}

impl Drop for RevocableOutput {
    fn drop(&mut self) {
        self.streams.remove(self.rep, self.loan.id);
    }
}

#[async_trait::async_trait]
impl Pollable for RevocableOutput {
    async fn ready(&mut self) {
        if self.loan.is_live() {
            self.inner.ready().await;
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for RevocableOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.check_write()
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.blocking_write_and_flush(bytes).await
    }

    fn write_zeroes(&mut self, nelem: usize) -> StreamResult<()> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.write_zeroes(nelem)
    }

    async fn write_ready(&mut self) -> StreamResult<usize> {
        if !self.loan.is_live() {
            return Err(ended());
        }
        self.inner.write_ready().await
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}
