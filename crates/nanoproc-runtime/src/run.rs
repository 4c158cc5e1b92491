//! Instantiating a checked tree and running its root.
//!
//! Children are instantiated before their parent, because the parent's store data
//! owns its children: the parent's first call may come at once.

use crate::audit::Audit;
use crate::error::Ended;
use crate::families::build_state;
use crate::host_io::HostIo;
use crate::interrupt::{Deadline, Interrupt, StopReason, Ticker};
use crate::limits::Budget;
use crate::plan::{Plan, PlanInner};
use crate::state::{NanoState, epoch_check};
use crate::trampoline::{ChildProc, Live};
use nanoproc_caps::LimitKind;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Store;
use wasmtime::component::Instance;
use wasmtime::error::Context;
use wasmtime::format_err;

/// How a run ended, when the root ran to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// 0 when `run` returned `ok`, 1 when it returned `err`, else the code passed
    /// to `exit` (or `exit-with-code`).
    pub code: i32,
    /// The code was passed to `exit` by the root or a nanoprocess granted it, not
    /// returned by the root's `run`: the application's own status, which may be
    /// any number, 124 or 137 included.
    pub by_exit: bool,
}

/// A run that did not reach the end of the root's `run`.
#[derive(Debug)]
pub enum RunError {
    /// A nanoprocess could not be instantiated (for example, a granted directory
    /// vanished, or its initial memory is over its limit). `limit_exceeded` when
    /// the cause was a resource limit: instantiation runs guest code (a start
    /// function), under the same limits as a call.
    Instantiate {
        nanoprocess: Arc<str>,
        message: String,
        limit_exceeded: bool,
    },
    /// The root trapped: by itself, or because a child failed in a call it could not
    /// report otherwise. `limit_exceeded` when the cause was a resource limit.
    Trap {
        nanoprocess: Arc<str>,
        message: String,
        limit_exceeded: bool,
    },
    /// The run was stopped from outside (its `--timeout`, or Ctrl-C).
    Stopped(StopReason),
    /// A nanoprocess holding `exit` exited while it was being instantiated (in its
    /// start function): the application ends with its code, as for an exit during
    /// a call.
    Exited(Exit),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Instantiate {
                nanoprocess,
                message,
                ..
            } => write!(f, "cannot start nanoprocess `{nanoprocess}`: {message}"),
            RunError::Trap {
                nanoprocess,
                message,
                ..
            } => write!(f, "nanoprocess `{nanoprocess}` trapped: {message}"),
            RunError::Stopped(reason) => write!(f, "stopped: {reason}"),
            RunError::Exited(exit) => write!(
                f,
                "a nanoprocess exited with status {} while it was being started",
                exit.code
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// How to run a plan.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Where capability decisions and restarts are recorded.
    pub audit: Audit,
    /// Stops the run when triggered (e.g. from a Ctrl-C handler).
    pub interrupt: Interrupt,
    /// Stops the run after this long.
    pub timeout: Option<Duration>,
    /// Where the tree's granted stdin, stdout and stderr come from and go: the
    /// process's own by default, or bytes, a bounded buffer or a callback of the
    /// host's (see [`HostIo`]).
    pub io: HostIo,
}

/// What every nanoprocess of one run shares: the plan to (re)instantiate from, the
/// audit record and the interrupt switch.
#[derive(Clone)]
pub(crate) struct RunCtx {
    pub plan: Arc<PlanInner>,
    pub audit: Audit,
    pub interrupt: Interrupt,
    /// Where the tree's stdio comes from and goes, for every nanoprocess (re)started.
    pub io: HostIo,
    /// What the run's writers share, across restarts (see `families::RunOutputs`).
    pub outputs: Arc<crate::families::RunOutputs>,
}

impl Plan {
    /// Instantiates the whole tree and runs the root's `wasi:cli/run`. Every
    /// capability decision is recorded in `audit`.
    pub fn run(&self, audit: &Audit) -> Result<Exit, RunError> {
        self.run_with(&RunOptions {
            audit: audit.clone(),
            ..Default::default()
        })
    }

    pub fn run_with(&self, options: &RunOptions) -> Result<Exit, RunError> {
        self.start(options)?.run()
    }

    /// Instantiates the whole tree, bottom-up, without entering the root: a live
    /// tree whose nanoprocesses hold their grants and memory until it is run or
    /// dropped. The time limit of `options` counts from here.
    pub fn start(&self, options: &RunOptions) -> Result<Tree, RunError> {
        if options.timeout.is_some() && !self.inner.epochs {
            // It would never stop a guest that computes: refused rather than
            // silently unbounded.
            return Err(RunError::Instantiate {
                nanoprocess: self.inner.nodes[0].path.clone(),
                message: "a run timeout needs a plan that can interrupt wasm; check it with \
                          a Runtime::with_interruption(true) (the default)"
                    .into(),
                limit_exceeded: false,
            });
        }
        let cx = RunCtx {
            plan: self.inner.clone(),
            audit: options.audit.clone(),
            interrupt: options.interrupt.clone(),
            io: options.io.clone(),
            outputs: Default::default(),
        };
        let ticker = self
            .inner
            .ticker
            .get_or_init(|| Ticker::start(self.inner.engine.clone()));
        let deadline = options
            .timeout
            .map(|t| ticker.deadline(t, options.interrupt.clone()));
        let root = &self.inner.nodes[0];
        let (mut store, instance) = instantiate_tree(&cx, tree_depth(&self.inner.nodes))
            .map_err(StartError::into_run_error)?;
        let Some(run_export) = self.inner.root_run.as_deref() else {
            return Err(RunError::Instantiate {
                nanoprocess: self.inner.nodes[0].path.clone(),
                message: "it is a library, not a command (it does not export wasi:cli/run): \
                          a host calls its exports through Plan::plugin"
                    .into(),
                limit_exceeded: false,
            });
        };
        let run = (|| {
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
            limit_exceeded: false,
        })?;
        Ok(Tree {
            plan: self.inner.clone(),
            store,
            run,
            _deadline: deadline,
        })
    }
}

/// A live tree of nanoprocesses, started by [`Plan::start`]: every nanoprocess
/// instantiated with its grants, the root not yet entered. Dropping it drops every
/// instance and returns their memory.
pub struct Tree {
    plan: Arc<PlanInner>,
    store: Store<NanoState>,
    run: wasmtime::component::TypedFunc<(), (Result<(), ()>,)>,
    _deadline: Option<Deadline>,
}

/// How many of the component model's handles an async nanoprocess may hold per
/// handle of its `handles` limit, plus a few for the calls under way (see
/// `RunCtx::instantiate`).
const ASYNC_HANDLES_PER_HANDLE: usize = 4;
const ASYNC_HANDLES_SLACK: usize = 64;

/// The native stack one level of nested calls may take: the callee's wasm stack
/// (wasmtime's `max_wasm_stack`, 512 KiB by default, counted afresh for each store
/// entered) and the host frames of the call between them.
pub(crate) const STACK_PER_LEVEL: usize = (512 + 256) << 10;

/// What a call into a child must find left on the native stack: one more level,
/// and room for the host to report the refusal.
const STACK_FOR_A_CALL: usize = STACK_PER_LEVEL + (128 << 10);

/// Refuses a call between nanoprocesses when the native stack could not hold it.
/// Each nanoprocess stays within its own wasm stack limit, but a chain of calls
/// stacks them all on one native stack: overflowing it would abort nanoproc, not
/// trap a guest. [`Tree::run`] sizes the stack for the tree's depth, so this is
/// the backstop for what that sizing did not foresee.
pub(crate) fn stack_left_for_a_call(caller: &str) -> wasmtime::Result<()> {
    // On an async store's fiber the thread's stack bounds say nothing; fibers are
    // sized for the tree's depth instead (`engine::new_engine`).
    if crate::drive::on_fiber() {
        return Ok(());
    }
    match stacker::remaining_stack() {
        Some(left) if left < STACK_FOR_A_CALL => Err(format_err!(
            "nanoprocess `{caller}` made a call nested too deeply for nanoproc's stack ({} KiB left, {} KiB needed)",
            left >> 10,
            STACK_FOR_A_CALL >> 10
        )),
        _ => Ok(()),
    }
}

/// The native stack one level of instantiation takes: host frames only, since
/// start functions do not nest (each has run before its parent is instantiated).
const STACK_PER_START_LEVEL: usize = 128 << 10;

/// Instantiation recurses once a level (children before their parent), with a
/// start function running at each (see [`with_stack`]).
pub(crate) fn instantiate_tree(
    cx: &RunCtx,
    depth: usize,
) -> Result<(Store<NanoState>, Instance), StartError> {
    let needed = depth.saturating_mul(STACK_PER_START_LEVEL) + STACK_PER_LEVEL;
    with_stack(needed, "nanoproc-start", || cx.instantiate(0, &[]))
        .unwrap_or_else(|why| Err(StartError::failed(&cx.plan.nodes[0].path, why)))
}

/// Runs `work` where `needed` bytes of native stack are left: on the caller's
/// thread if its stack has them (a shallow tree on a main thread: a thread costs
/// tens of microseconds, and its work would not count as the caller's CPU time),
/// else on a thread `name` with that stack plus 8 MiB. `Err` says why no such
/// thread could be started.
pub(crate) fn with_stack<T: Send>(
    needed: usize,
    name: &str,
    work: impl FnOnce() -> T + Send,
) -> Result<T, String> {
    // What the host itself needs beside the guests' levels.
    let needed = needed.saturating_add(1 << 20);
    if stacker::remaining_stack().is_some_and(|left| left >= needed) {
        return Ok(work());
    }
    let stack = needed.saturating_add(8 << 20);
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name(name.into())
            .stack_size(stack)
            .spawn_scoped(scope, work)
        {
            Ok(running) => Ok(running
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))),
            Err(e) => Err(format!(
                "cannot start a thread with a {} MiB stack: {e}",
                stack >> 20
            )),
        }
    })
}

/// The number of levels below the root (nodes are in pre-order: a parent before
/// its children).
pub(crate) fn tree_depth(nodes: &[crate::plan::PlannedNode]) -> usize {
    depth_of(nodes.iter().map(|n| n.parent))
}

/// The number of levels below the root of a tree given by each node's parent, in
/// pre-order (a parent before its children): a manifest's or a plan's.
pub(crate) fn depth_of(parents: impl ExactSizeIterator<Item = Option<usize>>) -> usize {
    let mut depths = vec![0usize; parents.len()];
    for (i, parent) in parents.enumerate() {
        if let Some(parent) = parent {
            depths[i] = depths[parent] + 1;
        }
    }
    depths.into_iter().max().unwrap_or(0)
}

impl Tree {
    /// Runs the root's `wasi:cli/run` to its end, on a stack that holds a chain of
    /// calls as deep as the tree (see [`STACK_PER_LEVEL`] and [`with_stack`]).
    pub fn run(self) -> Result<Exit, RunError> {
        let needed = (tree_depth(&self.plan.nodes) + 1) * STACK_PER_LEVEL;
        let ended =
            with_stack(needed, "nanoproc-tree", move || self.run_here()).unwrap_or_else(|why| {
                Err(RunError::Instantiate {
                    nanoprocess: "(nanoproc)".into(),
                    message: why,
                    limit_exceeded: false,
                })
            });
        // The error's text may hold what a guest wrote (a panic message): Debug
        // escapes it for the log.
        match &ended {
            Ok(exit) => tracing::info!(code = exit.code, "run ended"),
            Err(e) => tracing::info!(error = ?e.to_string(), "run ended"),
        }
        ended
    }

    fn run_here(mut self) -> Result<Exit, RunError> {
        let root = &self.plan.nodes[0];
        let store = &mut self.store;
        // The root's `run` is one call into it: its per-call limits apply to it.
        store.data_mut().clock.start_call();
        let outcome = crate::drive::call_typed(&self.run, store, root.is_async, ());
        match outcome {
            Ok((Ok(()),)) => Ok(Exit {
                code: 0,
                by_exit: false,
            }),
            Ok((Err(()),)) => Ok(Exit {
                code: 1,
                by_exit: false,
            }),
            Err(e) => match Ended::of(&e, store.data()) {
                Ended::Exit(code) => Ok(Exit {
                    code,
                    by_exit: true,
                }),
                Ended::Stopped(reason) => Err(RunError::Stopped(reason)),
                Ended::Failed {
                    message,
                    limit_exceeded,
                } => Err(RunError::Trap {
                    nanoprocess: root.path.clone(),
                    message,
                    limit_exceeded,
                }),
            },
        }
    }
}

/// Why a nanoprocess could not be (re)started.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The run was stopped from outside while it was being instantiated.
    Stopped(StopReason),
    /// It called `exit` (which it holds) in its start function.
    Exit(i32),
    /// It failed: its grants could not be set up, or its start function trapped or
    /// went over a limit.
    Failed {
        nanoprocess: Arc<str>,
        message: String,
        limit_exceeded: bool,
    },
}

impl StartError {
    fn failed(nanoprocess: &Arc<str>, message: String) -> Self {
        StartError::Failed {
            nanoprocess: nanoprocess.clone(),
            message,
            limit_exceeded: false,
        }
    }

    pub(crate) fn into_run_error(self) -> RunError {
        match self {
            StartError::Stopped(reason) => RunError::Stopped(reason),
            StartError::Exit(code) => RunError::Exited(Exit {
                code,
                by_exit: true,
            }),
            StartError::Failed {
                nanoprocess,
                message,
                limit_exceeded,
            } => RunError::Instantiate {
                nanoprocess,
                message,
                limit_exceeded,
            },
        }
    }
}

impl RunCtx {
    /// Instantiates node `ix` and, first, its subtree. `ancestors` are the memory
    /// budgets of the node's ancestors.
    fn instantiate(
        &self,
        ix: usize,
        ancestors: &[Arc<Budget>],
    ) -> Result<(Store<NanoState>, Instance), StartError> {
        let node = &self.plan.nodes[ix];
        let fail = |e: String| StartError::failed(&node.path, e);
        let mut budgets = Vec::with_capacity(ancestors.len() + 1);
        if let Some(limit) = node.caps.limits.get(LimitKind::Memory) {
            budgets.push(Budget::new(node.path.clone(), limit));
        }
        budgets.extend(ancestors.iter().cloned());
        let mut state = build_state(
            node,
            &self.audit,
            &self.interrupt,
            &self.io,
            &self.outputs,
            &self.plan.http,
            budgets.clone(),
        )
        .map_err(|e| fail(format!("{e:#}")))?;
        if let Some(ticker) = self.plan.ticker.get() {
            state.clock.ticks = ticker.ticks();
        }
        // The nanoprocesses fused into this one's component: each its own WASI
        // context and families, from its own grants, in this store.
        for &fused in &node.personas {
            let persona_node = &self.plan.nodes[fused];
            let persona = crate::families::build_persona(
                persona_node,
                &self.audit,
                &self.io,
                &self.outputs,
                &self.plan.http,
            )
            .map_err(|e| StartError::failed(&persona_node.path, format!("{e:#}")))?;
            state.fused.push(persona);
        }
        for &child in &node.children {
            let live = self.instantiate_child(child, &budgets)?;
            state.children.push(Some(Box::new(ChildProc {
                path: self.plan.nodes[child].path.clone(),
                node: child,
                run: self.clone(),
                ancestors: budgets.clone(),
                live: Some(live),
                failure: None,
                restarts: Default::default(),
            })));
        }
        state.routes = node.routes.clone();
        let mut store = Store::new(&self.plan.engine, state);
        store.limiter(|s| &mut s.limiter);
        if let Some(handles) = node.caps.limits.get(LimitKind::Handles)
            && node.is_async
        {
            // In an async nanoprocess `handles` bounds the component model's
            // handles too, not only the WASI resource table: a guest makes them
            // without any host call that could refuse (`stream.new`,
            // `future.new`, waitable sets, host calls started and left pending),
            // each costing the host memory no `memory` limit sees (about 0.5 KiB
            // for a stream, 1 KiB for a pending call; wasmtime's store-wide
            // default of 100,000 let one dependency limited to 4 MiB hold about
            // 100 MiB). The table behind that async state is capped the same.
            // A synchronous nanoprocess can only make resources of its own that
            // way, which wasmtime's default bounds to a few MiB; its `handles`
            // keeps counting what it holds of the host's and its children's.
            // wasmtime counts more than nanoproc does: every borrow lent during a
            // call is a live handle, and a stream takes three entries in the
            // async state's table. So the cap is a multiple of the limit, which
            // lets a 0.3 nanoprocess do what its 0.2 twin does with the same
            // `handles` (red team, `redteam_p3.rs`) and still bounds its state
            // to about 4 KiB a handle of its limit.
            let cap = usize::try_from(handles)
                .unwrap_or(usize::MAX)
                .saturating_mul(ASYNC_HANDLES_PER_HANDLE)
                .saturating_add(ASYNC_HANDLES_SLACK);
            store.set_max_component_handles(cap);
            if let Some(table) = store.concurrent_resource_table() {
                table.set_max_capacity(cap);
            }
        }
        if self.plan.epochs {
            store.epoch_deadline_callback(epoch_check);
            store.set_epoch_deadline(1);
        }
        if self.plan.fuel {
            let fuel = node.caps.limits.get(LimitKind::Fuel).unwrap_or(u64::MAX);
            store.set_fuel(fuel).map_err(|e| fail(format!("{e:#}")))?;
        }
        let pre = &node.pre;
        // Instantiation runs guest code (a start function, `_initialize`): it is a
        // call into the nanoprocess like any other, under its time limit, its fuel
        // and the run's interrupt, from its first instruction.
        store.data_mut().clock.start_call();
        let instantiated = if node.is_async {
            let clock = store.data().clock.clone();
            crate::drive::drive(&clock, pre.instantiate_async(&mut store))
        } else {
            pre.instantiate(&mut store)
        };
        store.data_mut().clock.end_call();
        let instance = instantiated.map_err(|e| match Ended::of(&e, store.data()) {
            Ended::Stopped(reason) => StartError::Stopped(reason),
            Ended::Exit(code) => StartError::Exit(code),
            Ended::Failed {
                message,
                limit_exceeded,
            } => StartError::Failed {
                nanoprocess: node.path.clone(),
                message,
                limit_exceeded,
            },
        })?;
        tracing::debug!(nanoprocess = ?node.path, "instantiated");
        Ok((store, instance))
    }

    /// Instantiates a child and finds the functions its parent calls.
    pub(crate) fn instantiate_child(
        &self,
        ix: usize,
        ancestors: &[Arc<Budget>],
    ) -> Result<Live, StartError> {
        let (mut store, instance) = self.instantiate(ix, ancestors)?;
        let node = &self.plan.nodes[ix];
        let mut funcs = vec![Vec::new(); node.parent_slots];
        for serve in &node.serves {
            let export = &serve.export;
            let mut lookup = || -> wasmtime::Result<Vec<wasmtime::component::Func>> {
                let iface = instance
                    .get_export_index(&mut store, None, export)
                    .with_context(|| format!("no export {export}"))?;
                serve
                    .funcs
                    .iter()
                    .map(|name| {
                        let index = instance
                            .get_export_index(&mut store, Some(&iface), name)
                            .with_context(|| format!("{export} has no `{name}`"))?;
                        instance
                            .get_func(&mut store, index)
                            .with_context(|| format!("{export}#{name} is not a function"))
                    })
                    .collect()
            };
            funcs[serve.slot] =
                lookup().map_err(|e| StartError::failed(&node.path, format!("{e:#}")))?;
        }
        Ok(Live {
            id: crate::handles::new_instance_id(),
            store,
            funcs,
            is_async: node.is_async,
        })
    }
}
