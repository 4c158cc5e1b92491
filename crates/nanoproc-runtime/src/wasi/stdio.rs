//! Standard streams a nanoprocess was not granted.
//!
//! Getting a stdio handle is not a use: language runtimes fetch all three at start-up
//! (the WASI preview 1 adapter does), and refusing that would refuse the whole
//! program. Using one is: every read of an ungranted stdin and every write to an
//! ungranted stdout fails with the stream's own error case, `last-operation-failed`,
//! carrying a [`CapabilityRefused`] that names the nanoprocess, and is recorded. A
//! guest that ignores the error prints nothing; one that checks (Rust's `println!`
//! does) fails with the message.

use crate::audit::{Audit, Decision, Event};
use crate::error::CapabilityRefused;
use nanoproc_caps::Flag;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdinStream, StdoutStream};
use wasmtime_wasi::p2::{InputStream, OutputStream, Pollable, StreamError, StreamResult};

/// A standard stream that refuses every use.
#[derive(Clone)]
pub(crate) struct Refused {
    nanoprocess: Arc<str>,
    audit: Audit,
    flag: Flag,
    operation: &'static str,
}

impl Refused {
    pub fn stdin(nanoprocess: Arc<str>, audit: Audit) -> Self {
        Self {
            nanoprocess,
            audit,
            flag: Flag::Stdin,
            operation: "wasi:io/streams.input-stream.read (stdin)",
        }
    }

    pub fn stdout(nanoprocess: Arc<str>, audit: Audit) -> Self {
        Self {
            nanoprocess,
            audit,
            flag: Flag::Stdout,
            operation: "wasi:io/streams.output-stream.write (stdout)",
        }
    }

    fn refuse(&self) -> CapabilityRefused {
        self.audit.record(Event {
            nanoprocess: self.nanoprocess.clone(),
            capability: self.flag.key(),
            operation: self.operation,
            target: None,
            decision: Decision::Refused,
            reason: Some("not granted".into()),
        });
        CapabilityRefused {
            nanoprocess: self.nanoprocess.clone(),
            capability: self.flag.key(),
            operation: self.operation,
        }
    }

    fn stream_error(&self) -> StreamError {
        StreamError::LastOperationFailed(wasmtime::Error::new(self.refuse()))
    }

    fn io_error(&self) -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, self.refuse())
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
