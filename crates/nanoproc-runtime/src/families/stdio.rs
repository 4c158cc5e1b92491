//! The stdio family: `wasi:cli/stdin`, `stdout`, `stderr` and the `terminal-*`
//! interfaces, with the streams a nanoprocess was or was not granted.
//!
//! A granted output stream goes where its mode says (the terminal, prefixed, a
//! host file opened once per plan, or nowhere), counted against the output limit.
//! An ungranted stderr is captured, bounded, so that a trap can be explained with
//! the guest's own panic message.
//!
//! An embedding host may replace the process's stdio with its own
//! ([`crate::HostIo`]): a granted stdin then reads the host's bytes, and output
//! granted as the terminal (or prefixed) goes to the host's buffer or callback,
//! for a dependency as for the root. The grants decide as before; discarded
//! output and the root's host file are not redirected.
//!
//! Getting a stdio handle is not a use: language runtimes fetch all three at start-up
//! (the WASI preview 1 adapter does), and refusing that would refuse the whole
//! program. Using one is: every read of an ungranted stdin and every write to an
//! ungranted stdout fails with the stream's own error case, `last-operation-failed`,
//! carrying a [`CapabilityRefused`] that names the nanoprocess, and is recorded. A
//! guest that ignores the error prints nothing; one that checks (Rust's `println!`
//! does) fails with the message.

use crate::audit::{Decision, Recorder};
use crate::error::CapabilityRefused;
use crate::host_io::{HostWriter, Output, Stdin, StdinBytes};
use crate::interrupt::StopReason;
use crate::limits::LimitExceeded;
use crate::state::NanoState;
use nanoproc_caps::{LimitKind, OutputMode, StdioHolding};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime::error::Context as _;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::p2::bindings::cli;
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// The stdio family's part of a nanoprocess's state.
pub(crate) struct State {
    /// The end of what the guest wrote to stderr when stderr is not granted: kept
    /// so that a trap can be explained with the guest's own panic message.
    pub stderr_capture: Option<StderrTail>,
    /// Its stdout and stderr as put in its context: WASI 0.3's `write-via-stream`
    /// takes a fresh writer of them from here (the context does not show them).
    stdout: SharedOutput,
    stderr: SharedOutput,
}

/// An output stream put in a context and kept by the family too.
#[derive(Clone)]
struct SharedOutput(Arc<dyn StdoutStream + Sync>);

impl SharedOutput {
    fn new(stream: impl StdoutStream + Sync + 'static) -> Self {
        Self(Arc::new(stream))
    }
}

impl IsTerminal for SharedOutput {
    fn is_terminal(&self) -> bool {
        self.0.is_terminal()
    }
}

impl StdoutStream for SharedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        self.0.async_stream()
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        self.0.p2_stream()
    }
}

/// Granted streams go where their mode says, counted against the output limit
/// (unlimited is just a budget that is never reached); ungranted ones refuse
/// every use, except stderr, which is captured.
pub(crate) fn build(
    holding: &StdioHolding,
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    let recorder = &cx.recorder;
    let files = &cx.node.outputs;
    if holding.stdin.is_some() {
        wasi.stdin(UsedStdin {
            recorder: recorder.clone(),
            used: Arc::default(),
            source: match &cx.io.stdin {
                Stdin::Inherit => None,
                Stdin::Bytes(bytes) => Some(bytes.clone()),
            },
        });
    } else {
        wasi.stdin(Refused::stdin(cx.recorder.clone()));
    }
    let output_limit = cx.limits.get(LimitKind::Output).unwrap_or(u64::MAX);
    let output = |mode: &OutputMode, stream: &'static str, to: &Output| {
        let budget = cx.outputs.budget(cx.node.index, stream, || {
            OutputBudget::new(recorder.clone(), output_limit, stream)
        });
        output(recorder, files, mode, stream, budget, to, cx.outputs)
    };
    let stdout = match &holding.stdout {
        Some(mode) => SharedOutput::new(output(mode, "stdout", &cx.io.stdout)?),
        None => SharedOutput::new(Refused::stdout(cx.recorder.clone())),
    };
    wasi.stdout(stdout.clone());
    let (stderr, stderr_capture) = match &holding.stderr {
        Some(mode) => (
            SharedOutput::new(output(mode, "stderr", &cx.io.stderr)?),
            None,
        ),
        None => {
            let tail = StderrTail::default();
            (SharedOutput::new(tail.clone()), Some(tail))
        }
    };
    wasi.stderr(stderr.clone());
    Ok(State {
        stderr_capture,
        stdout,
        stderr,
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[
    ("wasi:cli/stdin", "0.2."),
    ("wasi:cli/stdout", "0.2."),
    ("wasi:cli/stderr", "0.2."),
    ("wasi:cli/terminal-", "0.2."),
    ("wasi:cli/stdin", "0.3."),
    ("wasi:cli/stdout", "0.3."),
    ("wasi:cli/stderr", "0.3."),
    ("wasi:cli/terminal-", "0.3."),
    // The error codes of 0.3's streams.
    ("wasi:cli/types", "0.3."),
];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Stdio as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[
    ("wasi:cli/stdin", &["stdin"]),
    ("wasi:cli/stdout", &["stdout"]),
    ("wasi:cli/stderr", &["stderr"]),
    // Whether a stream is a terminal goes with the stream.
    ("wasi:cli/terminal-stdin", &["stdin"]),
    ("wasi:cli/terminal-stdout", &["stdout"]),
    ("wasi:cli/terminal-stderr", &["stderr"]),
    ("wasi:cli/terminal-input", &["stdin"]),
    ("wasi:cli/terminal-output", &["stdout", "stderr"]),
    ("wasi:cli/terminal-", &["stdin", "stdout", "stderr"]),
    // WASI 0.3: only the streams' error codes.
    ("wasi:cli/types", &[]),
];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
// Descriptors 0, 1 and 2 are stdio, the others files: which one a call uses is
// known only when it runs, so these are listed under filesystem too.
pub(crate) const PREVIEW1: super::Surface =
    &[("fd_read", &["stdin"]), ("fd_write", &["stdout", "stderr"])];

pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<NanoState>,
) -> wasmtime::Result<()> {
    let l = linker;
    cli::stdin::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::stdout::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::stderr::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::terminal_input::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::terminal_output::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::terminal_stdin::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::terminal_stdout::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    cli::terminal_stderr::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    Ok(())
}

/// A fused nanoprocess's stdio getters: its own streams, as its own grants made
/// them (refusing, bounded, captured...). The streams' own operations go through
/// `wasi:io`, shared: each stream carries its owner's authority.
pub(crate) fn add_named_to_linker(
    l: &mut wasmtime::component::Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    use wasmtime_wasi::p2::bindings::named_imports::wasi::cli as named;
    named::stdin::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::stdout::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::stderr::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::terminal_stdin::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::terminal_stdout::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::terminal_stderr::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    Ok(())
}

mod named_getters {
    use super::super::FusedCall;
    use wasmtime::component::Resource;
    use wasmtime_wasi::NamedId;
    use wasmtime_wasi::cli::WasiCliView;
    use wasmtime_wasi::p2::bindings::cli;
    use wasmtime_wasi::p2::bindings::named_imports::wasi::cli as named;

    impl named::stdin::Host for FusedCall<'_> {
        fn get_stdin(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Resource<cli::stdin::InputStream>> {
            self.0
                .as_fused(id, |s| cli::stdin::Host::get_stdin(&mut s.wasi.cli()))
        }
    }

    impl named::stdout::Host for FusedCall<'_> {
        fn get_stdout(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Resource<cli::stdout::OutputStream>> {
            self.0
                .as_fused(id, |s| cli::stdout::Host::get_stdout(&mut s.wasi.cli()))
        }
    }

    impl named::stderr::Host for FusedCall<'_> {
        fn get_stderr(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Resource<cli::stderr::OutputStream>> {
            self.0
                .as_fused(id, |s| cli::stderr::Host::get_stderr(&mut s.wasi.cli()))
        }
    }

    impl named::terminal_stdin::Host for FusedCall<'_> {
        fn get_terminal_stdin(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Option<Resource<cli::terminal_stdin::TerminalInput>>> {
            self.0.as_fused(id, |s| {
                cli::terminal_stdin::Host::get_terminal_stdin(&mut s.wasi.cli())
            })
        }
    }

    impl named::terminal_stdout::Host for FusedCall<'_> {
        fn get_terminal_stdout(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Option<Resource<cli::terminal_stdout::TerminalOutput>>> {
            self.0.as_fused(id, |s| {
                cli::terminal_stdout::Host::get_terminal_stdout(&mut s.wasi.cli())
            })
        }
    }

    impl named::terminal_stderr::Host for FusedCall<'_> {
        fn get_terminal_stderr(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Option<Resource<cli::terminal_stderr::TerminalOutput>>> {
            self.0.as_fused(id, |s| {
                cli::terminal_stderr::Host::get_terminal_stderr(&mut s.wasi.cli())
            })
        }
    }
}

/// The host files the root's output goes to (`stdout = "file:..."`), opened once
/// per plan like its directories: a later start or tree appends to the file that
/// was checked, never to whatever the name points at by then.
#[derive(Clone, Debug, Default)]
pub struct OutputFiles {
    stdout: Option<Arc<std::fs::File>>,
    stderr: Option<Arc<std::fs::File>>,
}

impl OutputFiles {
    /// Opens (creating, for appending) the files `caps` writes its output to; the
    /// last component of each is never followed if it is a symbolic link.
    pub(crate) fn open(stdio: &StdioHolding) -> Result<Self, String> {
        let open = |mode: &Option<OutputMode>| -> Result<Option<Arc<std::fs::File>>, String> {
            let Some(OutputMode::File(path)) = mode else {
                return Ok(None);
            };
            let mut options = std::fs::OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW);
            }
            options
                .open(path)
                .map(|f| Some(Arc::new(f)))
                .map_err(|e| format!("{}: {e}", path.display()))
        };
        Ok(Self {
            stdout: open(&stdio.stdout)?,
            stderr: open(&stdio.stderr)?,
        })
    }
}

/// The stream a granted output goes to, counted against the output limit: the
/// host's `to` in place of the terminal if it gives one.
fn output(
    recorder: &Recorder,
    files: &OutputFiles,
    mode: &OutputMode,
    stream: &'static str,
    budget: Arc<OutputBudget>,
    to: &Output,
    outputs: &RunOutputs,
) -> wasmtime::Result<Box<dyn wasmtime_wasi::cli::StdoutStream + Sync>> {
    let path = &recorder.path;
    Ok(match mode {
        OutputMode::Terminal | OutputMode::Prefixed if !to.is_inherit() => {
            let prefix = (*mode == OutputMode::Prefixed).then(|| format!("[{path}] "));
            let dest = outputs.destination(to.identity(), || Box::new(HostWriter::new(to)));
            Box::new(WriterOutput::new(dest, prefix, budget))
        }
        OutputMode::Terminal if stream == "stdout" => {
            Box::new(LimitedOutput::new(std::io::stdout(), budget))
        }
        OutputMode::Terminal => Box::new(LimitedOutput::new(std::io::stderr(), budget)),
        OutputMode::Prefixed => {
            let dest = if stream == "stdout" {
                outputs.destination(TERMINAL_STDOUT, || Box::new(std::io::stdout()))
            } else {
                outputs.destination(TERMINAL_STDERR, || Box::new(std::io::stderr()))
            };
            Box::new(WriterOutput::new(dest, Some(format!("[{path}] ")), budget))
        }
        OutputMode::File(_) => {
            let opened = if stream == "stdout" {
                &files.stdout
            } else {
                &files.stderr
            };
            let f = opened
                .as_ref()
                .ok_or_else(|| wasmtime::format_err!("its {stream} file was not opened"))?
                .try_clone()
                .with_context(|| format!("reopening its {stream} file"))?;
            Box::new(WriterOutput::new(
                Destination::new(Box::new(f)),
                None,
                budget,
            ))
        }
        // Discarded output is not counted against the output limit (it reaches
        // nothing), but its first write is still a use of the grant.
        OutputMode::Discard => Box::new(LimitedOutput::new(
            wasmtime_wasi::p2::pipe::SinkOutputStream,
            OutputBudget::new(recorder.clone(), u64::MAX, stream),
        )),
    })
}

/// A granted stdin (this process's own, or the host's bytes), whose first read is
/// recorded as a use: getting the handle is not one (see the module
/// documentation).
#[derive(Clone)]
struct UsedStdin {
    recorder: Recorder,
    used: Arc<std::sync::atomic::AtomicBool>,
    /// The host's bytes, or `None` for the process's stdin.
    source: Option<StdinBytes>,
}

impl IsTerminal for UsedStdin {
    fn is_terminal(&self) -> bool {
        match &self.source {
            Some(bytes) => bytes.is_terminal(),
            None => wasmtime_wasi::cli::stdin().is_terminal(),
        }
    }
}

impl StdinStream for UsedStdin {
    /// WASI 0.3's stream (`read-via-stream`), whose first read is a use too.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        let inner = match &self.source {
            Some(bytes) => bytes.async_stream(),
            None => wasmtime_wasi::cli::stdin().async_stream(),
        };
        Box::new(UsedAsyncStdin {
            inner: Box::into_pin(inner),
            stdin: self.clone(),
        })
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        let inner = match &self.source {
            Some(bytes) => bytes.p2_stream(),
            None => wasmtime_wasi::cli::stdin().p2_stream(),
        };
        Box::new(UsedStdinStream {
            inner,
            stdin: self.clone(),
        })
    }
}

struct UsedStdinStream {
    inner: Box<dyn InputStream>,
    stdin: UsedStdin,
}

#[wasmtime_wasi::async_trait]
impl Pollable for UsedStdinStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

impl InputStream for UsedStdinStream {
    fn read(&mut self, size: usize) -> StreamResult<bytes::Bytes> {
        first_use(&self.stdin.recorder, &self.stdin.used, "stdin", STDIN_READ);
        self.inner.read(size)
    }

    fn skip(&mut self, size: usize) -> StreamResult<usize> {
        first_use(&self.stdin.recorder, &self.stdin.used, "stdin", STDIN_READ);
        self.inner.skip(size)
    }
}

const STDIN_READ: &str = "wasi:io/streams.input-stream.read (stdin)";

/// The operations of WASI 0.3's standard streams, as recorded.
const P3_STDIN_READ: &str = "wasi:cli/stdin.read-via-stream";
const P3_STDOUT_WRITE: &str = "wasi:cli/stdout.write-via-stream";
const P3_STDERR_WRITE: &str = "wasi:cli/stderr.write-via-stream";

struct UsedAsyncStdin {
    inner: Pin<Box<dyn tokio::io::AsyncRead + Send + Sync>>,
    stdin: UsedStdin,
}

impl tokio::io::AsyncRead for UsedAsyncStdin {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        first_use(
            &this.stdin.recorder,
            &this.stdin.used,
            "stdin",
            P3_STDIN_READ,
        );
        this.inner.as_mut().poll_read(cx, buf)
    }
}

/// Records the first use of a granted stream, once per instance: enough for
/// `--audit-summary` and `nanoproc learn` to know it was used, without a line per
/// write in the record.
fn first_use(
    recorder: &Recorder,
    used: &std::sync::atomic::AtomicBool,
    capability: &'static str,
    operation: &'static str,
) {
    if !used.load(std::sync::atomic::Ordering::Relaxed)
        && !used.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        recorder.decide(capability, operation, || None, Decision::Allowed, None);
    }
}

/// A standard stream that refuses every use.
#[derive(Clone)]
pub(crate) struct Refused {
    recorder: Recorder,
    capability: &'static str,
    operation: &'static str,
}

impl Refused {
    pub fn stdin(recorder: Recorder) -> Self {
        Self {
            recorder,
            capability: "stdin",
            operation: "wasi:io/streams.input-stream.read (stdin)",
        }
    }

    pub fn stdout(recorder: Recorder) -> Self {
        Self {
            recorder,
            capability: "stdout",
            operation: "wasi:io/streams.output-stream.write (stdout)",
        }
    }

    fn refuse(&self, operation: &'static str) -> CapabilityRefused {
        self.recorder.decide(
            self.capability,
            operation,
            || None,
            Decision::Refused,
            Some("not granted".into()),
        );
        CapabilityRefused {
            nanoprocess: self.recorder.path.clone(),
            capability: self.capability,
            operation,
        }
    }

    fn stream_error(&self) -> StreamError {
        StreamError::LastOperationFailed(wasmtime::Error::new(self.refuse(self.operation)))
    }

    /// The refusal of a WASI 0.3 stream's use: its read or write fails, and the
    /// operation's future reports an error (see [`OutputConsumer`]).
    fn io_error(&self) -> io::Error {
        let operation = if self.capability == "stdin" {
            P3_STDIN_READ
        } else {
            P3_STDOUT_WRITE
        };
        io::Error::new(io::ErrorKind::PermissionDenied, self.refuse(operation))
    }
}

impl IsTerminal for Refused {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdinStream for Refused {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncRead + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn InputStream> {
        Box::new(self.clone())
    }
}

impl StdoutStream for Refused {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Refused {
    // Always ready: the next operation fails at once instead of blocking.
    async fn ready(&mut self) {}
}

impl InputStream for Refused {
    fn read(&mut self, _size: usize) -> StreamResult<bytes::Bytes> {
        Err(self.stream_error())
    }
}

impl OutputStream for Refused {
    fn write(&mut self, _bytes: bytes::Bytes) -> StreamResult<()> {
        Err(self.stream_error())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Err(self.stream_error())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Err(self.stream_error())
    }
}

impl tokio::io::AsyncRead for Refused {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.io_error()))
    }
}

impl tokio::io::AsyncWrite for Refused {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(self.io_error()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Err(self.io_error()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Where an ungranted stderr goes: the last [`Self::CAPACITY`] bytes are kept, so
/// that a trap can be explained with the panic message the guest printed last. A
/// guest that writes a lot loses the beginning, never its ability to write.
#[derive(Clone, Default)]
pub(crate) struct StderrTail(
    Arc<std::sync::Mutex<std::collections::VecDeque<u8>>>,
    /// When it was last written, in the process's order of writes to any tail
    /// (0: never): which of the nanoprocesses sharing a store wrote last.
    Arc<std::sync::atomic::AtomicU64>,
);

/// The order of writes to every [`StderrTail`] of the process.
static TAIL_WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl StderrTail {
    pub const CAPACITY: usize = 16 * 1024;

    /// When it was last written (see the field); 0 if never.
    pub fn last_written(&self) -> u64 {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn contents(&self) -> Vec<u8> {
        let buf = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        buf.iter().copied().collect()
    }

    fn push(&self, bytes: &[u8]) {
        let mut buf = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(Self::CAPACITY)..];
        let overflow = (buf.len() + bytes.len()).saturating_sub(Self::CAPACITY);
        buf.drain(..overflow);
        buf.extend(bytes);
        let order = TAIL_WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.1.store(order, std::sync::atomic::Ordering::Relaxed);
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// A granted output stream with a byte budget for the whole run. Past the budget a
/// write traps with [`LimitExceeded`]: a flood is stopped, not truncated silently.
pub(crate) struct LimitedOutput<S> {
    inner: S,
    budget: Arc<OutputBudget>,
}

pub(crate) struct OutputBudget {
    nanoprocess: Arc<str>,
    limit: u64,
    used: std::sync::atomic::AtomicU64,
    stream: &'static str,
    /// Whose grant it is: its first write is recorded as a use.
    recorder: Recorder,
    written: std::sync::atomic::AtomicBool,
}

impl<S> LimitedOutput<S> {
    pub fn new(inner: S, budget: Arc<OutputBudget>) -> Self {
        Self { inner, budget }
    }
}

impl OutputBudget {
    pub fn new(recorder: Recorder, limit: u64, stream: &'static str) -> Arc<Self> {
        Arc::new(OutputBudget {
            nanoprocess: recorder.path.clone(),
            limit,
            used: Default::default(),
            stream,
            recorder,
            written: Default::default(),
        })
    }

    /// Charges `len` bytes written through `via` (the operation its first use
    /// is recorded as).
    fn charge(&self, len: usize, via: Via) -> Result<(), LimitExceeded> {
        use std::sync::atomic::Ordering;
        let operation = match (via, self.stream) {
            (Via::P2, "stdout") => "wasi:io/streams.output-stream.write (stdout)",
            (Via::P2, _) => "wasi:io/streams.output-stream.write (stderr)",
            (Via::P3, "stdout") => P3_STDOUT_WRITE,
            (Via::P3, _) => P3_STDERR_WRITE,
        };
        first_use(&self.recorder, &self.written, self.stream, operation);
        let used = self.used.fetch_add(len as u64, Ordering::Relaxed) + len as u64;
        if used > self.limit {
            return Err(LimitExceeded {
                nanoprocess: self.nanoprocess.clone(),
                kind: LimitKind::Output,
                limit: self.limit,
                owner: self.nanoprocess.clone(),
                detail: format!("on {}", self.stream),
            });
        }
        Ok(())
    }

    /// Gives back bytes charged but not written (a stream that took fewer).
    fn refund(&self, len: usize) {
        if len > 0 {
            self.used
                .fetch_sub(len as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl<S: IsTerminal> IsTerminal for LimitedOutput<S> {
    fn is_terminal(&self) -> bool {
        self.inner.is_terminal()
    }
}

impl<S: StdoutStream> StdoutStream for LimitedOutput<S> {
    /// WASI 0.3's stream (`write-via-stream`), counted against the same budget.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(CountedAsync {
            inner: Box::into_pin(self.inner.async_stream()),
            budget: self.budget.clone(),
            charged: 0,
        })
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(CountedStream {
            inner: self.inner.p2_stream(),
            budget: self.budget.clone(),
        })
    }
}

struct CountedStream {
    inner: Box<dyn OutputStream>,
    budget: Arc<OutputBudget>,
}

/// Which generation of WASI wrote: what a first use is recorded as.
#[derive(Clone, Copy)]
enum Via {
    P2,
    P3,
}

/// A granted output's WASI 0.3 stream, counted against its budget: a write is
/// charged before it reaches the stream, so that one over the limit writes
/// nothing (it fails with the [`LimitExceeded`], which [`OutputConsumer`] makes a
/// trap), and what the stream did not take is given back.
struct CountedAsync {
    inner: Pin<Box<dyn tokio::io::AsyncWrite + Send + Sync>>,
    budget: Arc<OutputBudget>,
    /// What the write under way was charged (a write left pending is polled
    /// again, perhaps with more bytes: only the difference is charged).
    charged: usize,
}

impl tokio::io::AsyncWrite for CountedAsync {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() > this.charged {
            if let Err(e) = this.budget.charge(buf.len() - this.charged, Via::P3) {
                return Poll::Ready(Err(io::Error::other(e)));
            }
            this.charged = buf.len();
        }
        let polled = this.inner.as_mut().poll_write(cx, buf);
        if let Poll::Ready(done) = &polled {
            let written = *done.as_ref().unwrap_or(&0);
            this.budget.refund(this.charged.saturating_sub(written));
            this.charged = 0;
        }
        polled
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.as_mut().poll_shutdown(cx)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CountedStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

impl OutputStream for CountedStream {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.budget
            .charge(bytes.len(), Via::P2)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))?;
        self.inner.write(bytes).map_err(reader_gone)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush().map_err(reader_gone)
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }
}

/// A write that failed because nobody reads the stream any more (`nanoproc run ... |
/// head -1`) ends the run, as SIGPIPE ends a Unix process: quietly, with
/// [`StopReason::OutputClosed`], instead of an error every guest's runtime would
/// report as a crash.
fn reader_gone(e: StreamError) -> StreamError {
    match e {
        // What wasmtime-wasi's own terminal streams make of a broken pipe.
        StreamError::Closed => StreamError::Trap(wasmtime::Error::new(StopReason::OutputClosed)),
        StreamError::LastOperationFailed(cause)
            if cause
                .downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            StreamError::Trap(wasmtime::Error::new(StopReason::OutputClosed))
        }
        other => other,
    }
}

/// What the writers of one run share: each destination that several nanoprocesses
/// may write to (the terminal with prefixes, a host's capture or callback), and
/// each nanoprocess's output budget, by its place in the plan and its stream.
///
/// A destination keeps whose line is open on it, not each writer: a nanoprocess
/// that leaves a line unfinished cannot have the next writer's text (or a line it
/// writes itself, after the other's newline) read as someone else's. A budget is
/// the run's, not an instance's: a dependency restarted (or a plugin instantiated
/// per call) goes on with what its earlier instances spent, so restarting is no
/// way around its `output` limit.
#[derive(Default)]
pub(crate) struct RunOutputs {
    destinations: std::sync::Mutex<std::collections::HashMap<usize, Arc<Destination>>>,
    budgets: std::sync::Mutex<std::collections::HashMap<(usize, &'static str), Arc<OutputBudget>>>,
}

/// The identities of the terminal's streams among the destinations (a host's
/// destination is identified by its address, never 1 or 2).
const TERMINAL_STDOUT: usize = 1;
const TERMINAL_STDERR: usize = 2;

impl RunOutputs {
    fn destination(
        &self,
        id: usize,
        open: impl FnOnce() -> Box<dyn io::Write + Send>,
    ) -> Arc<Destination> {
        self.destinations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id)
            .or_insert_with(|| Destination::new(open()))
            .clone()
    }

    fn budget(
        &self,
        node: usize,
        stream: &'static str,
        new: impl FnOnce() -> Arc<OutputBudget>,
    ) -> Arc<OutputBudget> {
        self.budgets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((node, stream))
            .or_insert_with(new)
            .clone()
    }
}

/// Where output goes, and whose line is open there.
pub(crate) struct Destination(std::sync::Mutex<DestinationState>);

struct DestinationState {
    out: Box<dyn io::Write + Send>,
    /// The writer whose last write did not end its line.
    open_line: Option<u64>,
}

impl Destination {
    fn new(out: Box<dyn io::Write + Send>) -> Arc<Self> {
        Arc::new(Self(std::sync::Mutex::new(DestinationState {
            out,
            open_line: None,
        })))
    }
}

/// A granted output stream that goes to a writer other than the bare terminal: the
/// terminal with each line prefixed by the nanoprocess's path, a host's capture or
/// callback, or a host file.
#[derive(Clone)]
pub(crate) struct WriterOutput(Arc<Sink>);

struct Sink {
    dest: Arc<Destination>,
    prefix: Option<String>,
    /// Which writer it is, for its destination's open line.
    id: u64,
    /// Charged with every byte written, prefixes included: the limit bounds what
    /// reaches the terminal or the file, not only what the guest passed.
    budget: Arc<OutputBudget>,
}

/// About how many bytes a prefixed write gathers before it writes them out.
const PIECE: usize = 64 * 1024;

/// Why a write to a [`WriterOutput`] failed.
enum WriteFailure {
    Limit(LimitExceeded),
    Io(io::Error),
}

impl WriterOutput {
    pub fn new(dest: Arc<Destination>, prefix: Option<String>, budget: Arc<OutputBudget>) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(Arc::new(Sink {
            dest,
            prefix,
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            budget,
        }))
    }

    fn write_all(&self, bytes: &[u8], via: Via) -> Result<(), WriteFailure> {
        if bytes.is_empty() {
            return Ok(());
        }
        let sink = &*self.0;
        let mut dest = sink
            .dest
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another writer's line is open here: it is ended first, so that nothing
        // of this write can be read as the end of that line, nor a line of this
        // writer's start without its prefix.
        let foreign = dest.open_line.is_some_and(|id| id != sink.id);
        let mut at_line_start = dest.open_line.is_none() || foreign;
        let line_break: &[u8] = if foreign { b"\n" } else { b"" };
        let ends_line = bytes.ends_with(b"\n");
        let Some(prefix) = &sink.prefix else {
            sink.budget
                .charge(bytes.len() + line_break.len(), via)
                .map_err(WriteFailure::Limit)?;
            dest.out.write_all(line_break).map_err(WriteFailure::Io)?;
            dest.out.write_all(bytes).map_err(WriteFailure::Io)?;
            dest.open_line = (!ends_line).then_some(sink.id);
            return Ok(());
        };
        // Prefix every line, including one continued across writes, once. The
        // whole cost is charged before anything is written, so that a write over
        // the limit writes nothing.
        let lines = bytes.split_inclusive(|b| *b == b'\n');
        // Every chunk but the first starts a line; the first does if no line of
        // this writer's is open.
        let starts = lines
            .clone()
            .count()
            .saturating_sub(usize::from(!at_line_start));
        sink.budget
            .charge(bytes.len() + starts * prefix.len() + line_break.len(), via)
            .map_err(WriteFailure::Limit)?;
        // Prefixes and lines are gathered into pieces of about `PIECE` bytes: one
        // write to the terminal (or one call of a host's callback) for an ordinary
        // write rather than two per line, and never a copy of a huge one whole.
        let mut piece: Vec<u8> = line_break.to_vec();
        for chunk in lines {
            if at_line_start {
                piece.extend_from_slice(prefix.as_bytes());
            }
            if chunk.len() >= PIECE {
                dest.out.write_all(&piece).map_err(WriteFailure::Io)?;
                piece.clear();
                dest.out.write_all(chunk).map_err(WriteFailure::Io)?;
            } else {
                piece.extend_from_slice(chunk);
                if piece.len() >= PIECE {
                    dest.out.write_all(&piece).map_err(WriteFailure::Io)?;
                    piece.clear();
                }
            }
            at_line_start = chunk.ends_with(b"\n");
        }
        if !piece.is_empty() {
            dest.out.write_all(&piece).map_err(WriteFailure::Io)?;
        }
        dest.open_line = (!ends_line).then_some(sink.id);
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.0
            .dest
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .out
            .flush()
    }
}

impl IsTerminal for WriterOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for WriterOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for WriterOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for WriterOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_all(&bytes, Via::P2).map_err(|e| match e {
            WriteFailure::Limit(e) => StreamError::Trap(wasmtime::Error::new(e)),
            WriteFailure::Io(e) => {
                reader_gone(StreamError::LastOperationFailed(wasmtime::Error::new(e)))
            }
        })
    }

    fn flush(&mut self) -> StreamResult<()> {
        WriterOutput::flush(self)
            .map_err(|e| reader_gone(StreamError::LastOperationFailed(wasmtime::Error::new(e))))
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for WriterOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.write_all(buf, Via::P3)
                .map(|()| buf.len())
                .map_err(|e| match e {
                    WriteFailure::Limit(e) => io::Error::other(e),
                    WriteFailure::Io(e) => e,
                }),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(WriterOutput::flush(&self))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// WASI 0.3's standard streams: the same streams as 0.2's, from the same
/// context, each carrying its policy (refusing, counted, captured, its first use
/// recorded). `stdin` and the `terminal-*` interfaces are wasmtime-wasi's own
/// over them; `stdout` and `stderr` pipe the guest's stream into the granted
/// output through [`OutputConsumer`], which traps where 0.2 traps (the output
/// limit, a reader gone) instead of reporting an error code the guest could
/// ignore and retry.
pub(crate) fn add_p3_to_linker(
    linker: &mut wasmtime::component::Linker<NanoState>,
) -> wasmtime::Result<()> {
    use wasmtime_wasi::p3::bindings::cli as p3;
    let l = linker;
    // `wasi:cli/types` has only types: nothing to link.
    p3::stdin::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    p3::stdout::add_to_linker::<NanoState, P3Output>(l, |s| P3Streams(&s.families.stdio))?;
    p3::stderr::add_to_linker::<NanoState, P3Output>(l, |s| P3Streams(&s.families.stdio))?;
    p3::terminal_input::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    p3::terminal_output::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    p3::terminal_stdin::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    p3::terminal_stdout::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    p3::terminal_stderr::add_to_linker::<NanoState, WasiCli>(l, |s| s.wasi.cli())?;
    Ok(())
}

/// `write-via-stream` of WASI 0.3's `stdout` and `stderr`.
struct P3Output;
impl wasmtime::component::HasData for P3Output {
    type Data<'a> = P3Streams<'a>;
}

/// The streams `write-via-stream` writes to: the nanoprocess's own.
struct P3Streams<'a>(&'a State);

mod p3_output {
    use super::{OutputConsumer, P3Output, P3Streams};
    use wasmtime::component::{Access, FutureReader, StreamReader};
    use wasmtime_wasi::cli::StdoutStream;
    use wasmtime_wasi::p3::bindings::cli::types::ErrorCode;
    use wasmtime_wasi::p3::bindings::cli::{stderr, stdout};

    impl<U> stdout::HostWithStore<U> for P3Output {
        fn write_via_stream(
            mut store: Access<'_, U, Self>,
            data: StreamReader<u8>,
        ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
            let tx = store.get().0.stdout.async_stream();
            OutputConsumer::pipe(store, data, tx)
        }
    }

    impl stdout::Host for P3Streams<'_> {}
    impl stderr::Host for P3Streams<'_> {}

    impl<U> stderr::HostWithStore<U> for P3Output {
        fn write_via_stream(
            mut store: Access<'_, U, Self>,
            data: StreamReader<u8>,
        ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
            let tx = store.get().0.stderr.async_stream();
            OutputConsumer::pipe(store, data, tx)
        }
    }
}

/// Takes what a WASI 0.3 guest writes to a standard stream and writes it to
/// the stream's host side (wasmtime-wasi's own consumer, but for what fails).
/// An error the interface can carry ends the stream and is reported through the
/// operation's future (a refusal: `io`, the refusal recorded); a write over the
/// output limit, or to a reader that is gone, is an error of the run's, not the
/// guest's, and traps the nanoprocess as in 0.2 (`LimitExceeded`,
/// `StopReason::OutputClosed`).
struct OutputConsumer {
    tx: Pin<Box<dyn tokio::io::AsyncWrite + Send + Sync>>,
    result_tx: Option<tokio::sync::oneshot::Sender<P3ErrorCode>>,
    flush_pending: bool,
}

use wasmtime_wasi::p3::bindings::cli::types::ErrorCode as P3ErrorCode;

impl OutputConsumer {
    fn pipe(
        mut store: impl wasmtime::AsContextMut,
        data: wasmtime::component::StreamReader<u8>,
        writer: Box<dyn tokio::io::AsyncWrite + Send + Sync>,
    ) -> wasmtime::Result<wasmtime::component::FutureReader<Result<(), P3ErrorCode>>> {
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        data.pipe(
            &mut store,
            OutputConsumer {
                tx: Box::into_pin(writer),
                result_tx: Some(result_tx),
                flush_pending: false,
            },
        )?;
        wasmtime::component::FutureReader::new(&mut store, async {
            wasmtime::error::Ok(match result_rx.await {
                Ok(err) => Err(err),
                Err(_) => Ok(()),
            })
        })
    }

    /// What a failed write or flush does: trap, or end the stream with an
    /// error code.
    fn failed(
        &mut self,
        err: io::Error,
    ) -> Poll<wasmtime::Result<wasmtime::component::StreamResult>> {
        if err.kind() == io::ErrorKind::BrokenPipe {
            return Poll::Ready(Err(wasmtime::Error::new(StopReason::OutputClosed)));
        }
        if err
            .get_ref()
            .is_some_and(|inner| inner.is::<LimitExceeded>())
        {
            let limit = err
                .into_inner()
                .and_then(|inner| inner.downcast::<LimitExceeded>().ok());
            if let Some(limit) = limit {
                return Poll::Ready(Err(wasmtime::Error::new(*limit)));
            }
            return Poll::Ready(Err(wasmtime::format_err!("output limit exceeded")));
        }
        if let Some(tx) = self.result_tx.take() {
            let _ = tx.send(P3ErrorCode::Io);
        }
        Poll::Ready(Ok(wasmtime::component::StreamResult::Dropped))
    }

    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
        finish: bool,
    ) -> Poll<wasmtime::Result<wasmtime::component::StreamResult>> {
        use wasmtime::component::StreamResult;
        match self.tx.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                self.flush_pending = false;
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Poll::Ready(Err(e)) => self.failed(e),
            Poll::Pending if finish => {
                self.flush_pending = false;
                Poll::Ready(Ok(StreamResult::Cancelled))
            }
            Poll::Pending => {
                self.flush_pending = true;
                Poll::Pending
            }
        }
    }
}

impl<D> wasmtime::component::StreamConsumer<D> for OutputConsumer {
    type Item = u8;

    fn poll_consume(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: wasmtime::StoreContextMut<D>,
        src: wasmtime::component::Source<Self::Item>,
        finish: bool,
    ) -> Poll<wasmtime::Result<wasmtime::component::StreamResult>> {
        use wasmtime::component::StreamResult;
        if self.flush_pending {
            return self.poll_flush(cx, finish);
        }
        let mut src = src.as_direct(store);
        let buf = src.remaining();
        // An empty write asks whether the stream is writable: it always is (as
        // in wasmtime-wasi's consumer; `AsyncWrite` cannot wait for that).
        if buf.is_empty() {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        match self.tx.as_mut().poll_write(cx, buf) {
            Poll::Ready(Ok(0)) => self.failed(io::ErrorKind::WriteZero.into()),
            Poll::Ready(Ok(n)) => {
                src.mark_read(n);
                self.poll_flush(cx, finish)
            }
            Poll::Ready(Err(e)) => self.failed(e),
            Poll::Pending if finish => Poll::Ready(Ok(StreamResult::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}
