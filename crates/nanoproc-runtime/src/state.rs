//! What each nanoprocess's `Store` holds.
//!
//! wasmtime-wasi's generated `add_to_linker` functions take a plain `fn` getter, so
//! every per-nanoprocess decision must be answerable from the store data alone: the
//! grants ([`Gate`]), the WASI context built from them, and the child nanoprocesses
//! this one may call. That is also what lets one `Linker` and one `InstancePre` per
//! component serve every nanoprocess that uses the component, whatever its grants.

use crate::audit::{Audit, Decision, Event};
use crate::error::CapabilityRefused;
use crate::trampoline::ChildProc;
use nanoproc_caps::{Flag, Flags};
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The WASI context and resource table, apart from the rest of the state so that
/// a guard can borrow them and the [`Gate`] at the same time.
pub(crate) struct WasiPart {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
}

impl WasiView for WasiPart {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Decides the capabilities that are simply held or not, and records refusals.
pub(crate) struct Gate {
    pub path: Arc<str>,
    pub flags: Flags,
    pub audit: Audit,
}

impl Gate {
    /// Lets the call through if the flag is held; otherwise records the refusal and
    /// returns the error the call traps with.
    pub fn check(&self, flag: Flag, operation: &'static str) -> wasmtime::Result<()> {
        if self.flags.has(flag) {
            return Ok(());
        }
        self.audit.record(Event {
            nanoprocess: self.path.clone(),
            capability: flag.key(),
            operation,
            target: None,
            decision: Decision::Refused,
            reason: Some("not granted".into()),
        });
        Err(wasmtime::Error::new(CapabilityRefused {
            nanoprocess: self.path.clone(),
            capability: flag.key(),
            operation,
        }))
    }
}

pub struct NanoState {
    pub(crate) wasi: WasiPart,
    pub(crate) gate: Gate,
    pub(crate) limits: StoreLimits,
    /// The distinct child nanoprocesses. `None` while a call into that child is on
    /// the stack (the store is moved out for the call).
    pub(crate) children: Vec<Option<Box<ChildProc>>>,
    /// For each dependency import of the component (in the order the linker knows
    /// them): which entry of `children` serves it. Per nanoprocess, because two
    /// nanoprocesses may share a component but not their dependencies.
    pub(crate) routes: Vec<usize>,
    /// What the guest wrote to stderr when stderr is not granted: kept so that a
    /// trap can be explained with the guest's own panic message.
    pub(crate) stderr_capture: Option<MemoryOutputPipe>,
}

impl NanoState {
    pub(crate) fn captured_stderr(&self) -> Option<Vec<u8>> {
        self.stderr_capture.as_ref().map(|p| p.contents().to_vec())
    }
}

impl WasiView for NanoState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}
