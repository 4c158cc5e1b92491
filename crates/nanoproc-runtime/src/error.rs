//! Errors a guest can cause, in words that name the nanoprocess.

use std::fmt;
use std::sync::Arc;

/// How a call into a nanoprocess (or its start) that returned an error ended:
/// the one classification the run, the trampolines and plugins all make.
pub(crate) enum Ended {
    /// The run was stopped from outside: nobody's failure.
    Stopped(crate::interrupt::StopReason),
    /// It called `exit` with this status.
    Exit(i32),
    /// It failed: the cause in words (its stderr's tail included, where it was
    /// captured), and whether one of its limits was the cause.
    Failed {
        message: String,
        limit_exceeded: bool,
    },
}

impl Ended {
    /// What `err`, returned by a call into the nanoprocess whose store data is
    /// `state`, means.
    pub fn of(err: &wasmtime::Error, state: &crate::state::NanoState) -> Self {
        if let Some(reason) = err
            .chain()
            .find_map(|c| c.downcast_ref::<crate::interrupt::StopReason>())
        {
            return Ended::Stopped(*reason);
        }
        if let Some(exit) = err
            .chain()
            .find_map(|c| c.downcast_ref::<wasmtime_wasi::I32Exit>())
        {
            return Ended::Exit(exit.0);
        }
        let stderr = state.captured_stderr();
        let mut message = describe(err, stderr.as_deref(), Some((state.path(), &state.limits)));
        if let Some(fused) = fused_stderr(state, &message) {
            message.push_str(&fused);
        }
        Ended::Failed {
            message,
            limit_exceeded: is_limit(err),
        }
    }
}

/// What a nanoprocess fused into this store printed last on its ungranted stderr,
/// if it did so after the store's own nanoprocess did and `message` does not
/// already name it: a trap in a composite does not say which instance trapped
/// (backtrace details are off), and a guest that panics prints why just before.
/// Said as what it is, the last stderr written, not as a verdict on who trapped.
fn fused_stderr(state: &crate::state::NanoState, message: &str) -> Option<String> {
    let own = state
        .families
        .stdio
        .stderr_capture
        .as_ref()
        .map_or(0, |t| t.last_written());
    let (path, tail) = state
        .fused
        .iter()
        .filter_map(|p| {
            let tail = p.families.stdio.stderr_capture.as_ref()?;
            (tail.last_written() > own).then_some((&p.recorder.path, tail))
        })
        .max_by_key(|(_, tail)| tail.last_written())?;
    if message.contains(&format!("`{path}`")) {
        return None;
    }
    let lines = stderr_lines(&tail.contents())?;
    Some(format!(
        " [the last stderr written in this store, by nanoprocess `{path}` (fused into it): {lines}]"
    ))
}

/// A guest's captured stderr on one line, so that the cause survives being nested
/// in a parent's error; Rust's hint about RUST_BACKTRACE is noise here (the guest
/// cannot see it). `None` if nothing is left.
fn stderr_lines(bytes: &[u8]) -> Option<String> {
    let printed = String::from_utf8_lossy(bytes);
    let printed: Vec<&str> = printed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    (!printed.is_empty()).then(|| printed.join(" / "))
}

/// A nanoprocess used a capability it does not hold, through an interface with no
/// error case to report it in (`wasi:random`, `wasi:clocks`, `wasi:cli/exit`), or
/// wrote to an ungranted stdout or read an ungranted stdin (carried in the stream's
/// error). A call without an error case traps with this error.
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
    /// The cause was a resource limit (its own, or a subtree budget).
    pub limit_exceeded: bool,
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
/// one (it names the nanoprocess), else the trap in words, plus whatever the guest
/// wrote last to its captured stderr (usually its panic message). `who` is the
/// nanoprocess the error happened in, with its limits, to name a limit wasmtime
/// reports without saying whose it is (fuel, the handle table).
pub fn describe(
    err: &wasmtime::Error,
    stderr: Option<&[u8]>,
    who: Option<(&Arc<str>, &nanoproc_caps::Limits)>,
) -> String {
    use nanoproc_caps::LimitKind;
    let limit = |kind: LimitKind| {
        who.and_then(|(path, limits)| {
            limits.get(kind).map(|limit| {
                crate::limits::LimitExceeded {
                    nanoprocess: path.clone(),
                    kind,
                    limit,
                    owner: path.clone(),
                    detail: String::new(),
                }
                .to_string()
            })
        })
    };
    let find =
        |f: &dyn Fn(&(dyn std::error::Error + 'static)) -> Option<String>| err.chain().find_map(f);
    let mut text = if let Some(t) =
        find(&|e| e.downcast_ref::<ChildFailed>().map(|c| c.to_string()))
    {
        t
    } else if let Some(t) = find(&|e| {
        e.downcast_ref::<crate::limits::LimitExceeded>()
            .map(|l| l.to_string())
    }) {
        t
    } else if let Some(t) = find(&|e| e.downcast_ref::<CapabilityRefused>().map(|c| c.to_string()))
    {
        t
    } else if let Some(t) = find(&|e| {
        e.downcast_ref::<crate::interrupt::StopReason>()
            .map(|r| r.to_string())
    }) {
        t
    } else if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        format!("it called exit({})", exit.0)
    } else if let Some(t) = find(&|e| match e
        .downcast_ref::<wasmtime::component::ResourceTableError>()
    {
        Some(wasmtime::component::ResourceTableError::Full) => {
            Some(limit(LimitKind::Handles).unwrap_or_else(|| "its handle table is full".into()))
        }
        _ => None,
    }) {
        t
    } else if format!("{err:#}").contains("store handle limit exceeded") {
        // The component model's handles of an async nanoprocess, capped at its
        // `handles` limit (`run`).
        limit(LimitKind::Handles).unwrap_or_else(|| format!("{err:#}"))
    } else if format!("{err:#}").contains("instance count too high") {
        limit(LimitKind::Instances).unwrap_or_else(|| format!("{err:#}"))
    } else if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        match trap {
            wasmtime::Trap::OutOfFuel => limit(LimitKind::Fuel).unwrap_or_else(|| trap.to_string()),
            wasmtime::Trap::StackOverflow => "wasm trap: call stack exhausted (unbounded recursion?)".into(),
            wasmtime::Trap::MemoryOutOfBounds => {
                "wasm trap: out of bounds memory access (in Rust and C guests this is often a stack overflow: their stack lives in linear memory)".into()
            }
            // A preview 1 module's trap in wasmtime's component adapter, said as such.
            other => crate::preview1::explain(err, other).unwrap_or_else(|| other.to_string()),
        }
    } else {
        // wasmtime attaches the guest's backtrace as context: offsets into an
        // anonymous module that tell the reader nothing (details are off).
        let causes: Vec<String> = err
            .chain()
            .map(|e| e.to_string())
            .filter(|e| !e.starts_with("error while executing at wasm backtrace"))
            .collect();
        if causes.is_empty() {
            format!("{err:#}")
        } else {
            causes.join(": ")
        }
    };
    if let Some(lines) = stderr.and_then(stderr_lines) {
        text.push_str(&format!(" [its stderr: {lines}]"));
    }
    text
}

/// Whether a guest error was a resource limit being reached: ours (memory, tables,
/// time, output), fuel, a full handle table, or a child's failure that was one.
pub(crate) fn is_limit(err: &wasmtime::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<crate::limits::LimitExceeded>().is_some()
            || c.downcast_ref::<crate::limits::ResultTooLarge>().is_some()
            || c.downcast_ref::<ChildFailed>()
                .is_some_and(|f| f.limit_exceeded)
            || matches!(
                c.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
    }) || matches!(
        err.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::OutOfFuel)
    ) || format!("{err:#}").contains("store handle limit exceeded")
}
