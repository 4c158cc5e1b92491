//! What each nanoprocess's `Store` holds.
//!
//! wasmtime-wasi's generated `add_to_linker` functions take a plain `fn` getter, so
//! every per-nanoprocess decision must be answerable from the store data alone: each
//! family's state, the WASI context built from the grants, the limits, and the child
//! nanoprocesses this one may call. That is also what lets one `Linker` and one
//! `InstancePre` per component serve every nanoprocess that uses the component,
//! whatever its grants.

use crate::families::StderrTail;
use crate::interrupt::Interrupt;
use crate::limits::{LimitExceeded, NanoLimiter};
use crate::trampoline::ChildProc;
use nanoproc_caps::{LimitKind, Limits};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreHookState, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The WASI context and resource table, apart from the rest of the state so that
/// a guard can borrow them and its family's state at the same time.
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

/// What a nanoprocess's store holds: the wasmtime-wasi context and resource
/// table its families share, each family's own state, its limits, and its place
/// in the call graph.
pub struct NanoState {
    pub(crate) wasi: WasiPart,
    /// Its hand on the run's audit record, and its path in the tree.
    pub(crate) recorder: crate::audit::Recorder,
    /// Each capability family's part (see `families`).
    pub(crate) families: crate::families::State,
    pub(crate) limits: Limits,
    pub(crate) limiter: NanoLimiter,
    /// When the call currently running in this nanoprocess must end.
    pub(crate) clock: CallClock,
    /// The distinct child nanoprocesses. `None` while a call into that child is on
    /// the stack (the child is moved out for the call).
    pub(crate) children: Vec<Option<Box<ChildProc>>>,
    /// For each dependency import of the component (in the order the linker knows
    /// them): which entry of `children` serves it. Per nanoprocess, because two
    /// nanoprocesses may share a component but not their dependencies.
    pub(crate) routes: Vec<usize>,
    /// The resources of its children it holds, by the handle number its guest sees.
    pub(crate) proxies: std::collections::HashMap<u32, crate::handles::Proxy>,
    pub(crate) next_proxy: u32,
    /// Its index in the plan, and where every directory of the plan is: what a
    /// directory it hands across a boundary is checked against (see `handles`).
    pub(crate) node: usize,
    pub(crate) plan_dirs: Arc<crate::families::fs::dirs::PlanDirs>,
    /// The nanoprocesses fused into this one's component (see [`Persona`]), in
    /// the order of the plan's `fused` list: a named import's `NamedId` is a
    /// position here.
    pub(crate) fused: Vec<Persona>,
}

/// What makes a nanoprocess itself, apart from its store: its WASI context, its
/// families' state, its hand on the audit record and its place in the plan.
///
/// A fused nanoprocess lives in its parent's store (one resource table, one
/// limiter, one fuel counter, one deadline) but keeps all of this. Its WASI calls
/// come in through named imports that say whose they are, and its handles are
/// told apart by owner (`families::fs` for descriptors); each such call runs with
/// its persona swapped into the store's place ([`NanoState::as_fused`]), so every
/// family's guard, unchanged, decides and records it as the fused nanoprocess's.
pub(crate) struct Persona {
    pub ctx: WasiCtx,
    pub recorder: crate::audit::Recorder,
    pub families: crate::families::State,
    pub node: usize,
}

impl NanoState {
    /// Its path in the tree, which every message and record names it by.
    pub(crate) fn path(&self) -> &Arc<str> {
        &self.recorder.path
    }

    pub(crate) fn captured_stderr(&self) -> Option<Vec<u8>> {
        self.families
            .stdio
            .stderr_capture
            .as_ref()
            .map(StderrTail::contents)
    }
}

impl WasiView for NanoState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl NanoState {
    /// Runs `f` as the fused nanoprocess `id`: its persona takes the store's place
    /// for the call, then is put back, even if `f` panics (a host function's panic
    /// unwinds through wasmtime to whoever called the store, which may go on using
    /// it: it must find the store as it was).
    ///
    /// Why a swap and not a view of each part: every family's guard is built from
    /// `&mut NanoState` and reads its own part of it; swapping the parts makes each
    /// guard serve a fused nanoprocess exactly as it serves its own, with no second
    /// copy of any policy to keep in step. A persona is under 1 KiB (a test says
    /// so), moved twice per WASI call of a fused nanoprocess.
    pub(crate) fn as_fused<R>(
        &mut self,
        id: wasmtime_wasi::NamedId,
        f: impl FnOnce(&mut NanoState) -> R,
    ) -> R {
        self.swap_persona(id.0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        self.swap_persona(id.0);
        match result {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs `f` as the nanoprocess whose state `knows` a handle: the fused one
    /// that does, else the store's own. Shared bindings (filesystem `types`,
    /// name lookups, UDP) decide a call by the handle's owner: every fused
    /// nanoprocess notes what it makes in its own state and forgets it on drop,
    /// so a handle no persona knows is the store's own nanoprocess's.
    pub(crate) fn as_owner<R>(
        &mut self,
        knows: impl Fn(&crate::families::State) -> bool,
        f: impl FnOnce(&mut NanoState) -> R,
    ) -> R {
        let owner = if self.fused.is_empty() || knows(&self.families) {
            None
        } else {
            self.fused.iter().position(|p| knows(&p.families))
        };
        match owner {
            None => f(self),
            Some(at) => self.as_fused(wasmtime_wasi::NamedId(at), f),
        }
    }

    fn swap_persona(&mut self, at: usize) {
        let persona = &mut self.fused[at];
        std::mem::swap(&mut self.wasi.ctx, &mut persona.ctx);
        std::mem::swap(&mut self.recorder, &mut persona.recorder);
        std::mem::swap(&mut self.families, &mut persona.families);
        std::mem::swap(&mut self.node, &mut persona.node);
    }
}

/// Runs at every epoch tick while this nanoprocess executes wasm: stops it if the
/// run was interrupted or its current call is over its time limit.
pub(crate) fn epoch_check(cx: StoreHookState<'_, NanoState>) -> wasmtime::Result<UpdateDeadline> {
    match cx.data().clock.stop_cause() {
        Some(stop) => Err(stop),
        None => Ok(UpdateDeadline::Continue(1)),
    }
}

/// When a nanoprocess must stop: the run's interrupt, and the end of the call
/// currently running in it. Asked at every epoch tick while the nanoprocess runs
/// wasm ([`epoch_check`]) and every tick while it waits in a host call
/// (`families::io`), so that the same limits hold in both.
#[derive(Clone)]
pub(crate) struct CallClock {
    pub path: Arc<str>,
    pub interrupt: Interrupt,
    /// The plan's tick count (see [`crate::interrupt::Ticker`]).
    pub ticks: Arc<AtomicU64>,
    /// Its time limit per call, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The tick (of `ticks`) at which the current call ends.
    pub deadline: Option<u64>,
}

impl CallClock {
    pub fn new(path: Arc<str>, interrupt: Interrupt, timeout_ms: Option<u64>) -> Self {
        Self {
            path,
            interrupt,
            ticks: Default::default(),
            timeout_ms,
            deadline: None,
        }
    }

    /// Starts the per-call time limit of a call into this nanoprocess (its
    /// instantiation, which runs guest code, counts as one). The limit is counted
    /// in ticks, rounded up, plus one for the tick already under way: a call gets
    /// at least its limit, and at most a tick more.
    pub fn start_call(&mut self) {
        self.deadline = self.timeout_ms.map(|ms| {
            let tick = crate::interrupt::TICK.as_millis() as u64;
            self.ticks.load(Ordering::Relaxed) + ms.div_ceil(tick) + 1
        });
    }

    pub fn end_call(&mut self) {
        self.deadline = None;
    }

    /// Why the nanoprocess must stop now, if it must.
    pub fn stop_cause(&self) -> Option<wasmtime::Error> {
        if let Some(reason) = self.interrupt.reason() {
            return Some(wasmtime::Error::new(reason));
        }
        let deadline = self.deadline?;
        if self.ticks.load(Ordering::Relaxed) < deadline {
            return None;
        }
        let limit = self.timeout_ms.unwrap_or(0);
        Some(wasmtime::Error::new(LimitExceeded {
            nanoprocess: self.path.clone(),
            kind: LimitKind::Timeout,
            limit,
            owner: self.path.clone(),
            detail: String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Persona;

    /// `NanoState::as_fused` swaps a persona in and out around every WASI call a
    /// fused nanoprocess makes: what it moves must stay small.
    #[test]
    fn a_persona_swap_moves_little() {
        let size = std::mem::size_of::<Persona>();
        assert!(size <= 2048, "a persona is {size} bytes");
        println!("a persona is {size} bytes");
    }
}
