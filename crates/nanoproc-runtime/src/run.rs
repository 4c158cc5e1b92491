//! Instantiating a checked tree and running its root.
//!
//! Children are instantiated before their parent, because the parent's store data
//! owns its children's stores: the parent's first call may come at once.

use crate::audit::Audit;
use crate::error::describe;
use crate::plan::Plan;
use crate::state::NanoState;
use crate::trampoline::ChildProc;
use crate::wasi::build_state;
use std::fmt;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::Instance;
use wasmtime::error::Context;
use wasmtime::format_err;

/// How a run ended, when the root ran to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// 0 when `run` returned `ok`, 1 when it returned `err`, else the code the root
    /// passed to `exit`.
    pub code: i32,
}

/// A run that did not reach the end of the root's `run`.
#[derive(Debug)]
pub enum RunError {
    /// A nanoprocess could not be instantiated (for example, a granted directory
    /// vanished or turned into a symlink leading outside its parent's).
    Instantiate {
        nanoprocess: Arc<str>,
        message: String,
    },
    /// The root trapped: by itself, or because a child failed in a call without an
    /// error case.
    Trap {
        nanoprocess: Arc<str>,
        message: String,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Instantiate {
                nanoprocess,
                message,
            } => write!(f, "cannot start nanoprocess `{nanoprocess}`: {message}"),
            RunError::Trap {
                nanoprocess,
                message,
            } => write!(f, "nanoprocess `{nanoprocess}` trapped: {message}"),
        }
    }
}

impl std::error::Error for RunError {}

impl Plan {
    /// Instantiates the whole tree and runs the root's `wasi:cli/run`. Every
    /// capability decision is recorded in `audit`.
    pub fn run(&self, audit: &Audit) -> Result<Exit, RunError> {
        let root = &self.nodes[0];
        let (mut store, instance) =
            self.instantiate(0, audit)
                .map_err(|(nanoprocess, e)| RunError::Instantiate {
                    nanoprocess,
                    message: format!("{e:#}"),
                })?;
        let run_export = root
            .compiled
            .run_export
            .as_deref()
            .expect("checked: the root is a command");
        let func = (|| {
            let iface = instance
                .get_export_index(&mut store, None, run_export)
                .ok_or_else(|| format_err!("no export {run_export}"))?;
            let index = instance
                .get_export_index(&mut store, Some(&iface), "run")
                .ok_or_else(|| format_err!("{run_export} has no `run`"))?;
            let func = instance
                .get_func(&mut store, index)
                .ok_or_else(|| format_err!("{run_export}#run is not a function"))?;
            func.typed::<(), (Result<(), ()>,)>(&store)
        })()
        .map_err(|e| RunError::Instantiate {
            nanoprocess: root.path.clone(),
            message: format!("{e:#}"),
        })?;

        match func.call(&mut store, ()) {
            Ok((Ok(()),)) => Ok(Exit { code: 0 }),
            Ok((Err(()),)) => Ok(Exit { code: 1 }),
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    return Ok(Exit { code: exit.0 });
                }
                let stderr = store.data().captured_stderr();
                Err(RunError::Trap {
                    nanoprocess: root.path.clone(),
                    message: describe(&e, stderr.as_deref()),
                })
            }
        }
    }

    /// Instantiates node `ix` and, first, its subtree.
    #[allow(clippy::type_complexity)]
    fn instantiate(
        &self,
        ix: usize,
        audit: &Audit,
    ) -> Result<(Store<NanoState>, Instance), (Arc<str>, wasmtime::Error)> {
        let node = &self.nodes[ix];
        let fail = |e: wasmtime::Error| (node.path.clone(), e);
        let mut state =
            build_state(node.path.clone(), &node.caps, &node.name, audit).map_err(fail)?;
        for &child in &node.children {
            let proc = self.instantiate_child(child, audit)?;
            state.children.push(Some(Box::new(proc)));
        }
        state.routes = node
            .slot_child
            .iter()
            .map(|c| {
                node.children
                    .iter()
                    .position(|x| x == c)
                    .expect("a slot's child is a child")
            })
            .collect();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let pre = node.compiled.pre.as_ref().expect("linked at plan time");
        let instance = pre.instantiate(&mut store).map_err(|e| {
            let stderr = store.data().captured_stderr();
            fail(format_err!("{}", describe(&e, stderr.as_deref())))
        })?;
        Ok((store, instance))
    }

    fn instantiate_child(
        &self,
        ix: usize,
        audit: &Audit,
    ) -> Result<ChildProc, (Arc<str>, wasmtime::Error)> {
        let (mut store, instance) = self.instantiate(ix, audit)?;
        let node = &self.nodes[ix];
        let parent = &self.nodes[node.parent.expect("a child has a parent")];
        let mut funcs = vec![Vec::new(); parent.slot_child.len()];
        for (slot, export) in &node.serves {
            let mut lookup = || -> wasmtime::Result<Vec<wasmtime::component::Func>> {
                let iface = instance
                    .get_export_index(&mut store, None, export)
                    .with_context(|| format!("no export {export}"))?;
                let import = &parent.compiled.dep_imports[*slot];
                let sigs = import.funcs.as_ref().map_err(|e| format_err!("{e}"))?;
                sigs.iter()
                    .map(|sig| {
                        let index = instance
                            .get_export_index(&mut store, Some(&iface), &sig.name)
                            .with_context(|| format!("{export} has no `{}`", sig.name))?;
                        instance
                            .get_func(&mut store, index)
                            .with_context(|| format!("{export}#{} is not a function", sig.name))
                    })
                    .collect()
            };
            funcs[*slot] = lookup().map_err(|e| (node.path.clone(), e))?;
        }
        Ok(ChildProc {
            path: node.path.clone(),
            store,
            funcs,
            failed: None,
        })
    }
}
