//! Errors a guest can cause, in words that name the nanoprocess.

use std::fmt;
use std::sync::Arc;

/// A nanoprocess used a capability it does not hold, through an interface with no
/// error case to report it in (`wasi:random`, `wasi:clocks`, getting stdio). The
/// call traps with this error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapabilityRefused {
    pub nanoprocess: Arc<str>,
    pub capability: &'static str,
    pub operation: &'static str,
}

impl fmt::Display for CapabilityRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nanoprocess `{}` was refused capability `{}` (it called {}); its grants do not include `{}`",
            self.nanoprocess, self.capability, self.operation, self.capability
        )
    }
}

impl std::error::Error for CapabilityRefused {}

/// A call into a child nanoprocess failed. Names the child and keeps the cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildFailed {
    pub child: Arc<str>,
    /// `interface#function` that was called.
    pub function: String,
    /// The cause in words: a trap message, a refused capability, a panic message.
    pub cause: String,
}

impl fmt::Display for ChildFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nanoprocess `{}` failed in {}: {}",
            self.child, self.function, self.cause
        )
    }
}

impl std::error::Error for ChildFailed {}

/// The cause of a guest error, for people: the innermost nanoproc error if there is
/// one (it names the nanoprocess), else the wasmtime trap message, plus whatever the
/// guest wrote to its captured stderr (usually its panic message).
pub fn describe(err: &wasmtime::Error, stderr: Option<&[u8]>) -> String {
    let mut text = if let Some(child) = err.chain().find_map(|e| e.downcast_ref::<ChildFailed>()) {
        child.to_string()
    } else if let Some(refused) = err
        .chain()
        .find_map(|e| e.downcast_ref::<CapabilityRefused>())
    {
        refused.to_string()
    } else if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        format!("it called exit({})", exit.0)
    } else if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        trap.to_string()
    } else {
        format!("{err:#}")
    };
    if let Some(bytes) = stderr {
        // One line, so that the cause survives being nested in a parent's error;
        // Rust's hint about RUST_BACKTRACE is noise here (the guest cannot see it).
        let printed = String::from_utf8_lossy(bytes);
        let printed: Vec<&str> = printed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        if !printed.is_empty() {
            text.push_str(&format!(" [its stderr: {}]", printed.join(" / ")));
        }
    }
    text
}
