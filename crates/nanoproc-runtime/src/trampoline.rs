//! Calls from a parent nanoprocess into a child's export.
//!
//! Each nanoprocess has its own `Store`, so a parent's import cannot be wired to a
//! child's export directly. The linker gives the parent a host function for every
//! function of the imported interface; that function moves the child out of the
//! parent's store data for the duration of the call (so that both stores can be
//! used at once), calls the child's export with the parent's arguments, and puts the
//! child back. Values cross by the canonical ABI: lifted from the parent's memory,
//! lowered into the child's. No memory is shared.
//!
//! Every call into a child starts the child's per-call limits afresh (fuel, time).
//! A child that fails (a trap, a limit, a refused capability that traps) loses its
//! instance. The parent's call then traps with the child's path and cause, or, if
//! the manifest says `on-failure = "error"` and the function returns
//! `result<_, string>`, receives them as an `err`. A failure is never swallowed. A
//! restartable child gets a fresh instance (same grants, state lost) on the next
//! call, within its restart budget.

use crate::audit::Decision;
use crate::error::{ChildFailed, Ended};
use crate::interrupt::StopReason;
use crate::limits::{Budget, ResultTooLarge};
use crate::run::{RunCtx, StartError};
use crate::state::NanoState;
use nanoproc_manifest::OnFailure;
use std::sync::Arc;
use wasmtime::component::{Func, Val};
use wasmtime::{Store, StoreContextMut};

/// A running instance of a child: its store (which owns its own children) and the
/// functions its parent calls, by the parent's dependency slot.
pub(crate) struct Live {
    /// Unique in the process: a proxy of a resource in this instance names it, so
    /// that it fails cleanly once the instance is gone.
    pub id: u64,
    pub store: Store<NanoState>,
    /// For each dependency import of the parent (by slot), the child's functions in
    /// the order of the parent's import; empty for slots this child does not serve.
    pub funcs: Vec<Vec<Func>>,
    /// Its store is driven with `*_async` calls (a WASI 0.3 nanoprocess, see
    /// [`crate::drive`]).
    pub is_async: bool,
}

/// A child nanoprocess as its parent holds it.
pub(crate) struct ChildProc {
    pub path: Arc<str>,
    /// Its index in the plan, to instantiate it again.
    pub node: usize,
    pub run: RunCtx,
    /// The memory budgets of its ancestors, which a new instance is charged to.
    pub ancestors: Vec<Arc<Budget>>,
    /// `None` once it has failed, until it is restarted.
    pub live: Option<Live>,
    /// Why it failed last.
    pub failure: Option<String>,
    /// When it was restarted, within the current restart window.
    pub restarts: crate::restarts::Restarts,
}

/// Which function of which dependency import a host function forwards to.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub slot: usize,
    pub func: usize,
    /// `interface#function`, for messages.
    pub name: String,
    /// The function returns `result<_, string>`.
    pub string_error: bool,
    /// Where handles are in its parameters and results, if it passes any.
    pub handles: Option<Arc<crate::handles::Handles>>,
}

/// Why a call into a child did not return normally.
pub(crate) enum CallError {
    /// The child failed: what the parent gets depends on its `on-failure` policy.
    Child(ChildFailed),
    /// The parent's call must trap with this (the run is stopped, an `exit`, a
    /// re-entrant call, or a failure under the `trap` policy).
    Trap(wasmtime::Error),
}

impl From<CallError> for wasmtime::Error {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Child(failure) => wasmtime::Error::new(failure),
            CallError::Trap(e) => e,
        }
    }
}

/// Runs `body` as one call from a parent into the child serving `route`: the child
/// is moved out of the parent's store data for the call (so that `body` can use
/// both stores), its per-call limits start afresh, and a failure is classified.
///
/// `body` gets the parent's store, the child's live instance and the child's
/// function the route names.
pub(crate) fn call_child<R>(
    cx: &mut StoreContextMut<'_, NanoState>,
    route: &Route,
    body: impl FnOnce(&mut StoreContextMut<'_, NanoState>, &mut Live, Func) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    call_child_raw(cx, route, |cx, live| {
        let func = live.funcs[route.slot][route.func];
        body(cx, live, func)
    })
}

/// The hostcall fuel of a child whose parent has a memory budget: that budget's
/// headroom, but never so little that the child's own host calls (a large write)
/// fail for it, nor more than wasmtime's default.
const MIN_HOSTCALL_FUEL: usize = 16 << 20;
const MAX_HOSTCALL_FUEL: usize = 128 << 20;

/// The hostcall fuel for results that may take `bytes` of their receiver's
/// memory: never so little that ordinary host calls fail, nor more than
/// wasmtime's default.
pub(crate) fn hostcall_fuel(bytes: u64) -> usize {
    usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .clamp(MIN_HOSTCALL_FUEL, MAX_HOSTCALL_FUEL)
}

/// [`call_child`] for a call that is not one of the interface's functions (a
/// resource's destructor).
pub(crate) fn call_child_raw<R>(
    cx: &mut StoreContextMut<'_, NanoState>,
    route: &Route,
    body: impl FnOnce(&mut StoreContextMut<'_, NanoState>, &mut Live) -> wasmtime::Result<R>,
) -> Result<R, CallError> {
    crate::run::stack_left_for_a_call(cx.data().path()).map_err(CallError::Trap)?;
    let data = cx.data_mut();
    let child_index = data.routes[route.slot];
    let Some(mut child) = data.children[child_index].take() else {
        // Only possible if a call re-entered a child that is already on the stack:
        // wasmtime does not refuse that in this configuration, so we do.
        return Err(CallError::Trap(wasmtime::Error::msg(format!(
            "nanoprocess `{}` called {} while a call into that dependency was already in progress; re-entrant calls are refused",
            data.path(),
            route.name
        ))));
    };
    // wasmtime lifts a child's result into host values before anything can check
    // it, bounded only by the child store's hostcall fuel (about the bytes
    // copied). Sized from what the parent may still allocate, it bounds what a
    // result can make the host allocate for a parent that could never take it.
    let hostcall_fuel = cx.data().limiter.left().map(hostcall_fuel);
    let outcome = child.call(route, |live| {
        if let Some(fuel) = hostcall_fuel {
            live.store.set_hostcall_fuel(fuel);
        }
        body(cx, live)
    });
    let on_failure = child.run.plan.nodes[child.node].on_failure;
    cx.data_mut().children[child_index] = Some(child);
    match outcome {
        Ok(r) => Ok(r),
        Err(Failure::Stopped(reason)) => Err(CallError::Trap(wasmtime::Error::new(reason))),
        Err(Failure::Exit(code)) => Err(CallError::Trap(wasmtime::Error::new(
            wasmtime_wasi::I32Exit(code),
        ))),
        Err(Failure::Child(failure)) if route.string_error && on_failure == OnFailure::Error => {
            Err(CallError::Child(failure))
        }
        Err(Failure::Child(failure)) => Err(CallError::Trap(wasmtime::Error::new(failure))),
    }
}

/// The generic trampoline: any WIT function, its values forwarded as [`Val`]s.
/// Used for the shapes the typed fast paths do not cover.
pub(crate) fn forward(
    mut cx: StoreContextMut<'_, NanoState>,
    route: &Route,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    if let Some(handles) = &route.handles {
        return forward_handles(cx, route, handles, params, results);
    }
    match call_child(&mut cx, route, |cx, live, func| {
        crate::drive::call(func, &mut live.store, live.is_async, params, results)?;
        results_fit(cx.data(), live, func, results)
    }) {
        Ok(()) => Ok(()),
        Err(CallError::Child(failure)) => {
            results[0] = Val::Result(Err(Some(Box::new(Val::String(failure.to_string())))));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// [`forward`] for a function that passes handles: they are transferred between
/// the two nanoprocesses' tables on the way in and on the way out (see
/// [`crate::handles`]).
fn forward_handles(
    mut cx: StoreContextMut<'_, NanoState>,
    route: &Route,
    handles: &crate::handles::Handles,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    use crate::handles;
    let child_index = cx.data().routes[route.slot];
    let mut params = params.to_vec();
    // A mistake of the parent's (a proxy of a failed instance) is the parent's
    // error: it must not fail the child.
    let refused = |results: &mut [Val], why: String| {
        if route.string_error {
            results[0] = Val::Result(Err(Some(Box::new(Val::String(why)))));
            Ok(())
        } else {
            Err(wasmtime::Error::msg(format!("{}: {why}", route.name)))
        }
    };
    let mut lifted = handles::Lifted::default();
    if let Err(why) =
        handles::lift_from_parent(&mut cx, child_index, handles, &mut params, &mut lifted)
    {
        lifted.discard(&mut cx);
        return refused(results, why);
    }
    let mut lifted = Some(lifted);
    let outcome = call_child(&mut cx, route, |cx, live, func| {
        let child_path = live.store.data().path().clone();
        let mut loans = handles::Loans::default();
        let lifted = lifted.take().expect("entered once");
        if let Err(why) = handles::wasi_to_child(
            cx,
            live,
            &child_path,
            handles,
            &mut params,
            lifted,
            &mut loans,
        ) {
            handles::end_loans(live, loans);
            return Ok(Err(why));
        }
        let called = crate::drive::call(func, &mut live.store, live.is_async, &params, results);
        handles::end_loans(live, loans);
        called?;
        results_fit(cx.data(), live, func, results)?;
        Ok(handles::results_to_parent(
            cx,
            live,
            child_index,
            &child_path,
            handles,
            results,
        ))
    });
    if let Some(lifted) = lifted {
        // The child was never entered (it had failed and could not restart).
        lifted.discard(&mut cx);
    }
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => refused(results, why),
        Err(CallError::Child(failure)) => {
            results[0] = Val::Result(Err(Some(Box::new(Val::String(failure.to_string())))));
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks that a child's result, of `bytes` to copy into its parent's memory, fits
/// in what the parent may still allocate, before it is lowered there: an `Err`
/// here is the child's failure (see [`ResultTooLarge`]). `bytes` is the estimate
/// of [`crate::lowered`]: a result that passes by a hair may still trap the
/// parent, one that fails could never have fitted.
pub(crate) fn result_fits(parent: &NanoState, bytes: u64) -> wasmtime::Result<()> {
    // `left` copies nothing: whose budget it is is looked up only for the refusal.
    if bytes > 0
        && parent.limiter.left().is_some_and(|left| bytes > left)
        && let Some(headroom) = parent.limiter.headroom()
    {
        return Err(wasmtime::Error::new(ResultTooLarge {
            parent: parent.path().clone(),
            bytes,
            headroom,
        }));
    }
    Ok(())
}

/// [`result_fits`] for a generic call's results, sized by the function's result
/// types (see [`crate::lowered`]). Nothing to do when the parent has no budget.
fn results_fit(
    parent: &NanoState,
    live: &Live,
    func: Func,
    results: &[Val],
) -> wasmtime::Result<()> {
    if parent.limiter.left().is_none() {
        return Ok(());
    }
    let bytes = func
        .ty(&live.store)
        .results()
        .zip(results)
        .map(|(ty, value)| crate::lowered::allocated(&ty, value))
        .fold(0, u64::saturating_add);
    result_fits(parent, bytes)
}

pub(crate) enum Failure {
    Child(ChildFailed),
    /// The whole run is being stopped: not the child's failure, and not to be
    /// handed to the parent as one.
    Stopped(StopReason),
    /// A child holding `exit` exited: the whole application ends with its code.
    Exit(i32),
}

impl ChildProc {
    fn call<R>(
        &mut self,
        route: &Route,
        body: impl FnOnce(&mut Live) -> wasmtime::Result<R>,
    ) -> Result<R, Failure> {
        if let Some(reason) = self.run.interrupt.reason() {
            return Err(Failure::Stopped(reason));
        }
        let fuel = self.run.plan.fuel.then(|| {
            self.run.plan.nodes[self.node]
                .caps
                .limits
                .get(nanoproc_caps::LimitKind::Fuel)
                .unwrap_or(u64::MAX)
        });
        let live = match &mut self.live {
            Some(live) => live,
            None => self.restart(route)?,
        };
        live.store.data_mut().clock.start_call();
        if let Some(fuel) = fuel {
            live.store.set_fuel(fuel).expect("fuel is enabled");
        }
        let result = body(live);
        live.store.data_mut().clock.end_call();
        let e = match result {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };

        let (cause, limit_exceeded) = match Ended::of(&e, live.store.data()) {
            Ended::Stopped(reason) => return Err(Failure::Stopped(reason)),
            Ended::Exit(code) => return Err(Failure::Exit(code)),
            Ended::Failed {
                message,
                limit_exceeded,
            } => (message, limit_exceeded),
        };
        // The instance is done for: a trapped instance cannot be entered again.
        // Dropping it returns its memory to every budget it was charged to.
        self.live = None;
        self.failure = Some(cause.clone());
        Err(Failure::Child(ChildFailed {
            child: self.path.clone(),
            function: route.name.clone(),
            cause,
            limit_exceeded,
        }))
    }

    /// Replaces a failed instance, if the manifest allows it and the restart budget
    /// is not spent; records the decision either way. Returns the new instance.
    fn restart(&mut self, route: &Route) -> Result<&mut Live, Failure> {
        let earlier = self.failure.clone().unwrap_or_default();
        let failed = |cause: String| {
            Failure::Child(ChildFailed {
                child: self.path.clone(),
                function: route.name.clone(),
                cause,
                limit_exceeded: false,
            })
        };
        let Some(policy) = self.run.plan.nodes[self.node].restart else {
            return Err(failed(format!(
                "it failed earlier and is not restartable ({earlier})"
            )));
        };
        let record = |decision, reason: String| {
            crate::restarts::record(&self.run.audit, &self.path, decision, reason)
        };
        if let Err(spent) = self.restarts.take(policy) {
            record(
                Decision::Refused,
                format!("{spent}; last failure: {earlier}"),
            );
            return Err(failed(format!("{spent} ({earlier})")));
        }
        match self.run.instantiate_child(self.node, &self.ancestors) {
            Ok(live) => {
                tracing::info!(nanoprocess = ?self.path, after = ?earlier, "restarted");
                record(Decision::Allowed, format!("after: {earlier}"));
                Ok(self.live.insert(live))
            }
            // Stopped from outside while restarting: the run ends, nobody is blamed.
            Err(StartError::Stopped(reason)) => Err(Failure::Stopped(reason)),
            // A restarted child holding `exit` exited in its start function: the
            // application ends with its code, as for an exit during a call.
            Err(StartError::Exit(code)) => Err(Failure::Exit(code)),
            Err(StartError::Failed {
                message,
                limit_exceeded,
                ..
            }) => {
                let cause =
                    format!("it failed earlier ({earlier}) and could not be restarted: {message}");
                record(Decision::Refused, cause.clone());
                Err(Failure::Child(ChildFailed {
                    child: self.path.clone(),
                    function: route.name.clone(),
                    cause,
                    limit_exceeded,
                }))
            }
        }
    }
}
