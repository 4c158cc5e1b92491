//! Calls from a parent nanoprocess into a child's export.
//!
//! Each nanoprocess has its own `Store`, so a parent's import cannot be wired to a
//! child's export directly. The linker gives the parent a host function for every
//! function of the imported interface; that function moves the child's store out of
//! the parent's store data for the duration of the call (so that both can be used
//! at once), calls the child's export with the parent's arguments, and puts the
//! child back. Values cross by the canonical ABI: lifted from the parent's memory,
//! lowered into the child's. No memory is shared.
//!
//! A child that traps is marked failed. The parent's call then either receives an
//! `err` naming the child and the cause, when the function returns
//! `result<_, string>`, or traps in turn with the same message: a failure is never
//! swallowed.

use crate::error::{ChildFailed, describe};
use crate::state::NanoState;
use std::sync::Arc;
use wasmtime::component::{Func, Val};
use wasmtime::{Store, StoreContextMut};

/// A child nanoprocess as its parent holds it.
pub(crate) struct ChildProc {
    pub path: Arc<str>,
    pub store: Store<NanoState>,
    /// For each dependency import of the parent (by slot), the child's functions in
    /// the order of the parent's import; empty for slots this child does not serve.
    pub funcs: Vec<Vec<Func>>,
    /// Why the child stopped, if it did. A trapped instance cannot be entered again.
    pub failed: Option<String>,
}

/// Which function of which dependency import a host function forwards to.
pub(crate) struct Route {
    pub slot: usize,
    pub func: usize,
    /// `interface#function`, for messages.
    pub name: String,
    /// The function returns `result<_, string>`.
    pub string_error: bool,
}

pub(crate) fn forward(
    mut cx: StoreContextMut<'_, NanoState>,
    route: &Route,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    let data = cx.data_mut();
    let child_index = data.routes[route.slot];
    let Some(mut child) = data.children[child_index].take() else {
        // Only possible if a call re-entered a child that is already on the stack:
        // wasmtime does not refuse that in this configuration, so we do.
        return Err(wasmtime::Error::msg(format!(
            "nanoprocess `{}` called {} while a call into that dependency was already in progress; re-entrant calls are refused",
            data.gate.path, route.name
        )));
    };
    let outcome = child.call(route, params, results);
    cx.data_mut().children[child_index] = Some(child);
    match outcome {
        Ok(()) => Ok(()),
        Err(failure) if route.string_error => {
            results[0] = Val::Result(Err(Some(Box::new(Val::String(failure.to_string())))));
            Ok(())
        }
        Err(failure) => Err(wasmtime::Error::new(failure)),
    }
}

impl ChildProc {
    fn call(
        &mut self,
        route: &Route,
        params: &[Val],
        results: &mut [Val],
    ) -> Result<(), ChildFailed> {
        let failed = |cause: String| ChildFailed {
            child: self.path.clone(),
            function: route.name.clone(),
            cause,
        };
        if let Some(earlier) = &self.failed {
            return Err(failed(format!(
                "it failed earlier and has not been restarted ({earlier})"
            )));
        }
        let func = self.funcs[route.slot][route.func];
        match func.call(&mut self.store, params, results) {
            Ok(()) => Ok(()),
            Err(e) => {
                let stderr = self.store.data().captured_stderr();
                let cause = describe(&e, stderr.as_deref());
                self.failed = Some(cause.clone());
                Err(failed(cause))
            }
        }
    }
}
