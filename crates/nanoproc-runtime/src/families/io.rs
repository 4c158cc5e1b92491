//! `wasi:io` (errors, pollables, streams), which every family's streams go through,
//! and waiting in a host call under the same limits as running wasm.
//!
//! Families plug their streams into the one resource table (a file's, a socket's,
//! stdio's); this module links the interfaces that use them, once.
//!
//! Epoch interruption stops a guest only when it runs wasm. A guest that waits in
//! a host call (a socket receive, a sleep, a read of its stdin, a write to a full
//! pipe) never returns to wasm while it waits, so neither its per-call `timeout`
//! nor the run's `--timeout` nor Ctrl-C would reach it: a dependency holding no
//! grant at all could bind a UDP socket to port 0 and stall the whole run.
//!
//! In WASI 0.2 every wait is one of a few calls: `wasi:io/poll.poll`,
//! `pollable.block`, the `blocking-*` methods of `wasi:io/streams`, and dropping a
//! stream (which waits for the stream's pending work). Each is
//! implemented by wasmtime-wasi as an async function run to completion on its
//! ambient tokio runtime. We implement exactly these and run the same async function,
//! raced against the nanoprocess's [`CallClock`]: every tick, the clock is asked
//! whether the run was interrupted or the call is over its time; if so the wait is
//! dropped (tokio futures are cancelled by dropping them) and the call traps with
//! the same error as in wasm, so the nanoprocess fails under its own `on-failure`
//! policy. Every other function of the two interfaces is delegated unchanged.
//!
//! Not covered: a host call that waits inside a blocking system call of its own
//! (opening a FIFO in a granted directory, a write to a terminal the user
//! suspended). Those cannot be cancelled from another thread; the command line's
//! watchdog ends the run when `--timeout` or Ctrl-C is not obeyed in time.

use crate::interrupt::TICK;
use crate::state::{CallClock, NanoState};
use std::future::Future;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::streams::{InputStream, OutputStream};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::error;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams::{
    HostInputStream as AsyncInput, HostOutputStream as AsyncOutput,
};

/// The resource table, with the clock that bounds every wait on it.
pub(crate) struct Bounded<'a> {
    table: &'a mut ResourceTable,
    clock: &'a CallClock,
}

struct HasBounded;
impl HasData for HasBounded {
    type Data<'a> = Bounded<'a>;
}

fn view(state: &mut NanoState) -> Bounded<'_> {
    Bounded {
        table: &mut state.wasi.table,
        clock: &state.clock,
    }
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[("wasi:io/", "0.2.")];

/// The family `inspect` names for these interfaces: `wasi:io` needs no grant.
pub(crate) const FAMILY: &str = "io";

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[("wasi:io/", &[])];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: super::Surface = &[("poll_oneoff", &[]), ("sched_yield", &[])];

/// `wasi:io/error`, and `poll` and `streams` with every wait bounded.
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    error::add_to_linker::<NanoState, HasTable>(linker, |s| &mut s.wasi.table)?;
    poll::add_to_linker::<NanoState, HasBounded>(linker, view)?;
    streams::add_to_linker::<NanoState, HasBounded>(linker, view)?;
    Ok(())
}

struct HasTable;
impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// Runs `wait` to its end, unless the clock says to stop first: then `wait` is
/// dropped and the stop is returned.
pub(crate) fn bounded<T, E: From<wasmtime::Error>>(
    clock: &CallClock,
    wait: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if let Some(stop) = clock.stop_cause() {
        return Err(stop.into());
    }
    in_tokio(async {
        // Most waits are over at once (a file's data is there, a stream has room):
        // those need no timer.
        let mut wait = std::pin::pin!(wait);
        if let std::task::Poll::Ready(done) =
            std::future::poll_fn(|cx| std::task::Poll::Ready(wait.as_mut().poll(cx))).await
        {
            return done;
        }
        let watch = async {
            loop {
                tokio::time::sleep(TICK).await;
                if let Some(stop) = clock.stop_cause() {
                    return stop;
                }
            }
        };
        tokio::select! {
            biased;
            done = &mut wait => done,
            stop = watch => Err(stop.into()),
        }
    })
}

/// A stream wait that is stopped traps (it is not a stream error the guest could
/// handle and retry).
fn bounded_stream<T>(
    clock: &CallClock,
    wait: impl Future<Output = StreamResult<T>>,
) -> StreamResult<T> {
    bounded(clock, async { wait.await.map_err(Wrapped) }).map_err(|Wrapped(e)| e)
}

/// `StreamError` with the conversion [`bounded`] needs: a stop becomes a trap.
struct Wrapped(StreamError);
impl From<wasmtime::Error> for Wrapped {
    fn from(e: wasmtime::Error) -> Self {
        Wrapped(StreamError::Trap(e))
    }
}

impl poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let Bounded { table, clock } = self;
        bounded(clock, async_poll::Host::poll(*table, pollables))
    }
}

impl poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let Bounded { table, clock } = self;
        bounded(clock, async_poll::HostPollable::block(*table, pollable))
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for Bounded<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostOutputStream for Bounded<'_> {
    /// Dropping a stream waits for its pending work (a socket's background write
    /// to a peer that never reads, a file write in flight): a wait like any other.
    /// Stopped, the stream is already out of the table, and its work is abandoned.
    fn drop(&mut self, stream: Resource<OutputStream>) -> wasmtime::Result<()> {
        let Bounded { table, clock } = self;
        bounded(clock, AsyncOutput::drop(*table, stream))
    }

    fn check_write(&mut self, stream: Resource<OutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<OutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        let Bounded { table, clock } = self;
        bounded_stream(
            clock,
            AsyncOutput::blocking_write_and_flush(*table, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<OutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let Bounded { table, clock } = self;
        bounded_stream(
            clock,
            AsyncOutput::blocking_write_zeroes_and_flush(*table, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<OutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<OutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<OutputStream>) -> StreamResult<()> {
        let Bounded { table, clock } = self;
        bounded_stream(clock, AsyncOutput::blocking_flush(*table, stream))
    }

    fn splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<OutputStream>,
        src: Resource<InputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let Bounded { table, clock } = self;
        bounded_stream(clock, AsyncOutput::blocking_splice(*table, dst, src, len))
    }
}

impl streams::HostInputStream for Bounded<'_> {
    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        let Bounded { table, clock } = self;
        bounded(clock, AsyncInput::drop(*table, stream))
    }

    fn read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<Vec<u8>> {
        let Bounded { table, clock } = self;
        bounded_stream(clock, AsyncInput::blocking_read(*table, stream, len))
    }

    fn skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<InputStream>, len: u64) -> StreamResult<u64> {
        let Bounded { table, clock } = self;
        bounded_stream(clock, AsyncInput::blocking_skip(*table, stream, len))
    }

    fn subscribe(
        &mut self,
        stream: Resource<InputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}
