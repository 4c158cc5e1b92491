//! Where a tree's standard streams come from and go, for a host that embeds it:
//! stdin from bytes, stdout and stderr into a bounded buffer or to a callback
//! (the host's logger), instead of the process's own stdio.
//!
//! A [`HostIo`] replaces the *process's* stdio for every nanoprocess of a tree;
//! each nanoprocess's grants still decide whether it may use a stream, and in
//! which mode. So:
//!
//! * a nanoprocess without a stream's grant is refused as before (an ungranted
//!   stderr is still kept only for trap messages): nothing reaches the host's
//!   buffer or callback;
//! * a stream granted as the terminal (`true`, `"inherit"`) or `"prefix"` goes to
//!   the host's [`Output`] instead of the terminal, prefixed lines and all; this
//!   holds for a dependency as for the root, since a dependency's terminal is its
//!   parent's: a child's granted stdout reaches the same capture as the root's;
//! * `"discard"` still discards, and the root's `{ file = "..." }` still appends to
//!   its file: those grants name their own destination, not the process's stdio;
//! * a granted stdin reads [`Stdin::Bytes`]: one stream, shared as the process's
//!   stdin is, by every nanoprocess holding stdin (see [`StdinBytes`]).
//!
//! Every byte a nanoprocess writes is still counted against its own `output`
//! limit, whatever the destination: that is what a hostile writer is charged, and
//! a parent can bound a child's share of a shared capture with it. A [`Captured`]
//! buffer is bounded besides: what does not fit is dropped and counted, so a guest
//! that writes forever cannot grow the host's memory.

use bytes::Bytes;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdinStream};
use wasmtime_wasi::p2::{InputStream, Pollable, StreamError, StreamResult};

/// Where a tree's standard streams come from and go (see the module
/// documentation). The default is today's behaviour: each granted stream is the
/// process's own.
#[derive(Clone, Debug, Default)]
pub struct HostIo {
    /// What a nanoprocess holding `stdin` reads.
    pub stdin: Stdin,
    /// Where a nanoprocess's stdout granted as the terminal or prefixed goes.
    pub stdout: Output,
    /// Where a nanoprocess's stderr granted as the terminal or prefixed goes.
    pub stderr: Output,
}

/// What a granted stdin reads.
#[derive(Clone, Debug, Default)]
pub enum Stdin {
    /// The process's own stdin.
    #[default]
    Inherit,
    /// These bytes, then end of file.
    Bytes(StdinBytes),
}

impl Stdin {
    /// A stdin that reads `data`, then ends.
    pub fn bytes(data: impl Into<Bytes>) -> Self {
        Stdin::Bytes(StdinBytes::new(data))
    }
}

/// Bytes a granted stdin reads, as one stream with one position: like a pipe,
/// what one reader took is gone for the others. Clones share the position, so
/// every nanoprocess holding stdin in a tree, every tree started with clones of
/// the same [`HostIo`], and a restarted or per-call instance all continue where
/// the last read stopped; give a tree a new one for a fresh stdin.
#[derive(Clone)]
pub struct StdinBytes(Arc<Mutex<Bytes>>);

impl StdinBytes {
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self(Arc::new(Mutex::new(data.into())))
    }

    /// How many bytes have not been read yet.
    pub fn remaining(&self) -> usize {
        lock(&self.0).len()
    }

    fn read_up_to(&self, size: usize) -> Bytes {
        let mut left = lock(&self.0);
        let size = size.min(left.len());
        left.split_to(size)
    }
}

impl fmt::Debug for StdinBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdinBytes")
            .field("remaining", &self.remaining())
            .finish()
    }
}

impl IsTerminal for StdinBytes {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for StdinBytes {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StdinBytes {
    // Always ready: a read returns what is left, or the end, at once.
    async fn ready(&mut self) {}
}

impl InputStream for StdinBytes {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let read = self.read_up_to(size);
        if read.is_empty() {
            return Err(StreamError::Closed);
        }
        Ok(read)
    }
}

impl tokio::io::AsyncRead for StdinBytes {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = self.read_up_to(buf.remaining());
        buf.put_slice(&read);
        Poll::Ready(Ok(()))
    }
}

/// A host function given each piece of output (see [`Output::Callback`]).
pub type OutputCallback = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Where a granted output stream goes.
#[derive(Clone, Default)]
pub enum Output {
    /// The process's own stream (the terminal), as the grant's mode says.
    #[default]
    Inherit,
    /// Into a bounded in-memory buffer the host reads (see [`Captured`]).
    Capture(Captured),
    /// To a host function, called synchronously with the bytes of each write
    /// (with their `[path] ` prefixes if the grant is `"prefix"`), while the guest
    /// waits: it should be quick (hand the bytes to a logger or a channel). A
    /// piece is what the guest wrote at once, not a line: a line may come in two
    /// pieces, and a very large write in pieces of about 64 KiB. The guest's
    /// `output` limit still bounds how much it can send; the host owns whatever it
    /// keeps.
    Callback(OutputCallback),
}

impl Output {
    /// [`Output::Callback`] with `f`.
    pub fn callback(f: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        Output::Callback(Arc::new(f))
    }

    /// Whether it replaces the process's own stream.
    pub(crate) fn is_inherit(&self) -> bool {
        matches!(self, Output::Inherit)
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Inherit => f.write_str("Inherit"),
            Output::Capture(c) => f.debug_tuple("Capture").field(c).finish(),
            Output::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// A bounded in-memory buffer that output is captured into: a handle, cloned
/// freely (the host keeps one, [`Output::Capture`] holds another), all clones the
/// same buffer.
///
/// It keeps the first [`Captured::limit`] bytes written; what comes after is
/// dropped and counted ([`Captured::cut`]), and the guest's writes still succeed
/// (it is not told, as a full log is not). [`Captured::take`] empties it, and
/// output written after that is kept again, up to the limit. The buffer never
/// holds more than its limit, whoever writes and however much.
#[derive(Clone)]
pub struct Captured(Arc<Mutex<Held>>);

struct Held {
    bytes: Vec<u8>,
    limit: usize,
    /// Bytes dropped since it was made or last taken.
    cut: u64,
}

impl Captured {
    /// The limit of [`Captured::default`]: 1 MiB.
    pub const DEFAULT_LIMIT: usize = 1 << 20;

    /// An empty buffer that keeps at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self(Arc::new(Mutex::new(Held {
            bytes: Vec::new(),
            limit,
            cut: 0,
        })))
    }

    /// A copy of the bytes kept.
    pub fn contents(&self) -> Vec<u8> {
        lock(&self.0).bytes.clone()
    }

    /// The bytes kept, leaving the buffer empty and its cut count at zero.
    pub fn take(&self) -> Vec<u8> {
        self.take_with_cut().0
    }

    /// The bytes kept and how many were cut after them, at once, leaving the
    /// buffer empty and its cut count at zero.
    pub fn take_with_cut(&self) -> (Vec<u8>, u64) {
        let mut held = lock(&self.0);
        let cut = std::mem::take(&mut held.cut);
        (std::mem::take(&mut held.bytes), cut)
    }

    /// How many bytes were written beyond the limit, and dropped, since the
    /// buffer was made or last taken. Zero means [`Captured::contents`] is all
    /// that was written.
    pub fn cut(&self) -> u64 {
        lock(&self.0).cut
    }

    /// How many bytes are kept.
    pub fn len(&self) -> usize {
        lock(&self.0).bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most bytes it keeps.
    pub fn limit(&self) -> usize {
        lock(&self.0).limit
    }

    /// Keeps what fits of `data` and counts the rest. The buffer grows by
    /// doubling, never past the limit.
    pub(crate) fn push(&self, data: &[u8]) {
        let mut held = lock(&self.0);
        let room = held.limit - held.bytes.len();
        let keep = data.len().min(room);
        if keep > 0 {
            let needed = held.bytes.len() + keep;
            if needed > held.bytes.capacity() {
                let target = needed.max(held.bytes.capacity() * 2).min(held.limit);
                let extra = target - held.bytes.len();
                held.bytes.reserve_exact(extra);
            }
            held.bytes.extend_from_slice(&data[..keep]);
        }
        held.cut += (data.len() - keep) as u64;
    }
}

impl Default for Captured {
    fn default() -> Self {
        Self::new(Self::DEFAULT_LIMIT)
    }
}

impl fmt::Debug for Captured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = lock(&self.0);
        f.debug_struct("Captured")
            .field("len", &held.bytes.len())
            .field("limit", &held.limit)
            .field("cut", &held.cut)
            .finish()
    }
}

/// The most bytes an [`Output::Callback`] is given at once.
const CALLBACK_PIECE: usize = 64 * 1024;

impl Output {
    /// Which destination it is, while it is alive: outputs that are clones of
    /// one another (one `Captured`, one callback) are the same destination, for
    /// whoever writes to them (see `families::stdio::RunOutputs`).
    pub(crate) fn identity(&self) -> usize {
        match self {
            Output::Inherit => 0,
            Output::Capture(c) => Arc::as_ptr(&c.0) as usize,
            Output::Callback(f) => Arc::as_ptr(f) as *const u8 as usize,
        }
    }
}

/// The writer a granted stream whose destination is an [`Output`] other than
/// `Inherit` writes through (see `families::stdio`).
pub(crate) struct HostWriter(Output);

impl HostWriter {
    pub fn new(output: &Output) -> Self {
        Self(output.clone())
    }
}

impl io::Write for HostWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.0 {
            // Not reached: an inherited stream is the process's own.
            Output::Inherit => {}
            Output::Capture(c) => c.push(buf),
            // wasmtime-wasi does not hold a guest's `write` to the permit
            // `check-write` gave: one write may be megabytes. A callback gets it
            // in pieces, as documented, never a copy of it whole.
            Output::Callback(f) => {
                for piece in buf.chunks(CALLBACK_PIECE) {
                    f(piece);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_keeps_the_first_bytes_up_to_its_limit_and_counts_the_rest() {
        let c = Captured::new(10);
        c.push(b"hello ");
        c.push(b"world, and more");
        assert_eq!(c.contents(), b"hello worl");
        assert_eq!(c.cut(), 15 - 4);
        let held = lock(&c.0);
        assert!(held.bytes.capacity() <= 10, "{}", held.bytes.capacity());
        drop(held);
        assert_eq!(c.take_with_cut(), (b"hello worl".to_vec(), 11));
        assert!(c.is_empty() && c.cut() == 0);
        c.push(b"again");
        assert_eq!(c.take(), b"again");
    }

    #[test]
    fn a_capture_grows_by_doubling_within_its_limit() {
        let c = Captured::new(1000);
        for _ in 0..2000 {
            c.push(b"x");
        }
        assert_eq!(c.len(), 1000);
        assert_eq!(c.cut(), 1000);
        assert!(lock(&c.0).bytes.capacity() <= 1000);
    }

    #[test]
    fn stdin_bytes_are_one_stream_for_all_clones() {
        let mut a = StdinBytes::new("abcdef");
        let mut b = a.clone();
        assert_eq!(&a.read(4).unwrap()[..], b"abcd");
        assert_eq!(&b.read(10).unwrap()[..], b"ef");
        assert!(matches!(a.read(1), Err(StreamError::Closed)));
        assert_eq!(a.read(0).unwrap().len(), 0);
        assert_eq!(b.remaining(), 0);
    }
}
