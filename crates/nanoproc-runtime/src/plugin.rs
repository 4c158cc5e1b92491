//! Calling a plugin's exports from the host: a tree whose root is a library (or a
//! command whose other exports are called), instantiated once and called many
//! times.
//!
//! Every call goes through nanoproc, never through a function the host keeps:
//! before it, the root's per-call limits start afresh (time, fuel), the run's
//! interrupt is honoured and, after a failure, the plugin is restarted if its
//! policy allows; after it, a trap becomes an error value for the host and the
//! failed instance is dropped (a trapped instance cannot be entered again). The
//! host's typed calls use wasmtime's `TypedFunc`, which lowers strings and byte
//! lists straight into the guest's memory: the same path calls between
//! nanoprocesses take (`fastpath`).
//!
//! A `Plugin` owns its stores: it is `Send`, not `Sync`. A host that calls
//! plugins from many threads keeps one per thread, or a pool of them; the
//! [`crate::Plan`] they come from is `Send + Sync` and cheap to clone, and its
//! compiled code is shared by every instance.

use crate::audit::{Audit, Decision};
use crate::error::Ended;
use crate::host_io::HostIo;
use crate::interrupt::{Interrupt, StopReason};
use crate::plan::Plan;
use crate::run::{RunCtx, RunError, STACK_PER_LEVEL, StartError};
use crate::state::NanoState;
use nanoproc_manifest::Restart;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use wasmtime::Store;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, Func, Instance, InstancePre, Lift, Lower, TypedFunc,
    Val,
};

/// Whether a plugin's instance outlives a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Instances {
    /// One instance serves every call, keeping its state between them (the
    /// default). It is replaced only after a failure, by the restart policy.
    #[default]
    Reused,
    /// Every call gets a fresh instance of the whole tree: no call sees what an
    /// earlier one left behind. Costs an instantiation per call.
    PerCall,
}

/// How to run a plugin.
#[derive(Clone, Debug, Default)]
pub struct PluginOptions {
    /// Where its capability decisions (and restarts) are recorded.
    pub audit: Audit,
    /// Stops every call of it, now and later, once triggered.
    pub interrupt: Interrupt,
    /// Where its stdio comes from and goes.
    pub io: HostIo,
    pub instances: Instances,
    /// Whether a plugin that failed (trapped, went over a limit, exited) is
    /// restarted on the next call, and how often; `None`: every later call
    /// fails with [`PluginError::Failed`].
    pub restart: Option<Restart>,
}

/// Why a call into a plugin did not return a value.
#[derive(Debug)]
pub enum PluginError {
    /// The plugin exports no such function.
    NoExport {
        export: String,
        /// What it does export, as `interface#function`.
        available: Vec<String>,
    },
    /// The function's type is not the one asked for.
    WrongType { export: String, why: String },
    /// A [`TypedExport`] of another plan was used.
    OtherPlan { export: String },
    /// The call trapped: in the plugin, or in a dependency whose failure
    /// reached it. The instance is gone; the next call restarts it if the
    /// policy allows.
    Trap {
        nanoprocess: Arc<str>,
        export: String,
        message: String,
        limit_exceeded: bool,
    },
    /// The plugin called `exit`: its instance is finished.
    Exited { nanoprocess: Arc<str>, code: i32 },
    /// It failed earlier and was not restarted (no policy, its budget spent, or
    /// the restart itself failed: `limit_exceeded` when that was a limit).
    Failed {
        nanoprocess: Arc<str>,
        why: String,
        limit_exceeded: bool,
    },
    /// The plugin's interrupt was triggered.
    Stopped(StopReason),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::NoExport { export, available } => write!(
                f,
                "the plugin exports no {export}; it exports {}",
                if available.is_empty() {
                    "no functions".to_string()
                } else {
                    available.join(", ")
                }
            ),
            PluginError::WrongType { export, why } => {
                write!(f, "{export} does not have the type asked for: {why}")
            }
            PluginError::OtherPlan { export } => {
                write!(
                    f,
                    "{export} was looked up in another plan's plugin: look it up in this one"
                )
            }
            PluginError::Trap {
                nanoprocess,
                export,
                message,
                ..
            } => write!(
                f,
                "nanoprocess `{nanoprocess}` trapped in a call of {export}: {message}"
            ),
            PluginError::Exited { nanoprocess, code } => {
                write!(f, "nanoprocess `{nanoprocess}` exited with status {code}")
            }
            PluginError::Failed {
                nanoprocess, why, ..
            } => {
                write!(f, "nanoprocess `{nanoprocess}` cannot be called: {why}")
            }
            PluginError::Stopped(reason) => write!(f, "stopped: {reason}"),
        }
    }
}

impl std::error::Error for PluginError {}

impl PluginError {
    /// Whether the cause was one of the plugin's resource limits.
    pub fn limit_exceeded(&self) -> bool {
        match self {
            PluginError::Trap { limit_exceeded, .. }
            | PluginError::Failed { limit_exceeded, .. } => *limit_exceeded,
            _ => false,
        }
    }
}

/// An exported function, looked up and type-checked once: `Params` and
/// `Results` are its parameter and result tuples, as for wasmtime's
/// `TypedFunc`. Call it with [`Plugin::call_typed`], on the plugin it was looked
/// up in or any other of the same plan.
pub struct TypedExport<Params, Results> {
    name: String,
    index: ComponentExportIndex,
    /// The plan whose root component `index` is of.
    plan: u64,
    /// Covariant in both, so that an export of `(&str,)` takes strings that
    /// live shorter than it; `Send + Sync` whatever the types.
    _types: PhantomData<fn() -> (Params, Results)>,
}

impl<P, R> TypedExport<P, R> {
    /// `interface#function`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A live plugin: its tree instantiated, its root's exports callable. Made by
/// [`Plan::plugin`].
pub struct Plugin {
    cx: RunCtx,
    instances: Instances,
    restart: Option<Restart>,
    live: Option<Live>,
    /// Why it failed last, while it has no instance.
    failure: Option<String>,
    /// When it was restarted, within the current restart window.
    restarts: crate::restarts::Restarts,
    /// The native stack a call needs: one level per level of the tree.
    stack_needed: usize,
}

struct Live {
    store: Store<NanoState>,
    instance: Instance,
    /// The functions of typed exports called in this instance, looked up once.
    funcs: Vec<(ComponentExportIndex, Func)>,
    /// It has served a call (an instance per call is then replaced).
    used: bool,
    /// The root is async (WASI 0.3): its calls are driven (`crate::drive`).
    is_async: bool,
}

/// Whether host value `value` is of component type `ty`, so far as a host's value
/// can be wrong: resources, streams and futures are left to wasmtime.
fn value_matches(ty: &Type, value: &Val) -> bool {
    match (ty, value) {
        (Type::Bool, Val::Bool(_))
        | (Type::S8, Val::S8(_))
        | (Type::U8, Val::U8(_))
        | (Type::S16, Val::S16(_))
        | (Type::U16, Val::U16(_))
        | (Type::S32, Val::S32(_))
        | (Type::U32, Val::U32(_))
        | (Type::S64, Val::S64(_))
        | (Type::U64, Val::U64(_))
        | (Type::Float32, Val::Float32(_))
        | (Type::Float64, Val::Float64(_))
        | (Type::Char, Val::Char(_))
        | (Type::String, Val::String(_)) => true,
        (Type::List(list), Val::List(items)) => {
            let item = list.ty();
            items.iter().all(|v| value_matches(&item, v))
        }
        (Type::Record(record), Val::Record(fields)) => {
            record.fields().len() == fields.len()
                && record
                    .fields()
                    .zip(fields)
                    .all(|(f, (name, v))| f.name == name && value_matches(&f.ty, v))
        }
        (Type::Tuple(tuple), Val::Tuple(items)) => {
            tuple.types().len() == items.len()
                && tuple.types().zip(items).all(|(t, v)| value_matches(&t, v))
        }
        (Type::Variant(variant), Val::Variant(name, payload)) => variant
            .cases()
            .find(|c| c.name == name)
            .is_some_and(|case| match (&case.ty, payload) {
                (None, None) => true,
                (Some(t), Some(v)) => value_matches(t, v),
                _ => false,
            }),
        (Type::Enum(e), Val::Enum(name)) => e.names().any(|n| n == name),
        (Type::Option(_), Val::Option(None)) => true,
        (Type::Option(option), Val::Option(Some(v))) => value_matches(&option.ty(), v),
        (Type::Result(result), Val::Result(outcome)) => {
            let (expected, payload) = match outcome {
                Ok(p) => (result.ok(), p),
                Err(p) => (result.err(), p),
            };
            match (expected, payload) {
                (None, None) => true,
                (Some(t), Some(v)) => value_matches(&t, v),
                _ => false,
            }
        }
        (Type::Flags(flags), Val::Flags(names)) => {
            names.iter().all(|n| flags.names().any(|f| f == n))
        }
        (Type::Own(_) | Type::Borrow(_), Val::Resource(_)) => true,
        (Type::Future(_), Val::Future(_))
        | (Type::Stream(_), Val::Stream(_))
        | (Type::ErrorContext, Val::ErrorContext(_)) => true,
        _ => false,
    }
}

impl Plan {
    /// Instantiates the tree for a host to call its root's exports (see
    /// [`Plugin`]). Any plan can: one checked by [`crate::Runtime::check_plugin`]
    /// may have a library as its root.
    pub fn plugin(&self, options: &PluginOptions) -> Result<Plugin, RunError> {
        let depth = crate::run::tree_depth(&self.inner.nodes);
        // The clock every per-call time limit and every stop is checked against.
        self.inner
            .ticker
            .get_or_init(|| crate::interrupt::Ticker::start(self.inner.engine.clone()));
        let mut plugin = Plugin {
            cx: RunCtx {
                plan: self.inner.clone(),
                audit: options.audit.clone(),
                interrupt: options.interrupt.clone(),
                io: options.io.clone(),
                outputs: Default::default(),
            },
            instances: options.instances,
            restart: options.restart,
            live: None,
            failure: None,
            restarts: Default::default(),
            stack_needed: (depth + 1) * STACK_PER_LEVEL,
        };
        plugin.live = Some(plugin.instantiate().map_err(|e| e.into_run_error())?);
        Ok(plugin)
    }
}

impl Plugin {
    fn root_path(&self) -> &Arc<str> {
        &self.cx.plan.nodes[0].path
    }

    fn instantiate(&self) -> Result<Live, StartError> {
        let (mut store, instance) =
            crate::run::instantiate_tree(&self.cx, crate::run::tree_depth(&self.cx.plan.nodes))?;
        // What a call's results can make wasmtime copy into the host is bounded
        // by the plugin's own memory limit (what it could legitimately return),
        // as a parent's headroom bounds a child's results (`trampoline`).
        if let Some(fuel) = self.hostcall_fuel() {
            store.set_hostcall_fuel(fuel);
        }
        Ok(Live {
            store,
            instance,
            funcs: Vec::new(),
            used: false,
            is_async: self.cx.plan.nodes[0].is_async,
        })
    }

    /// The hostcall fuel of the root's store: what its memory limit allows it to
    /// return (see `instantiate`); `None` leaves wasmtime's default.
    fn hostcall_fuel(&self) -> Option<usize> {
        let memory = self.cx.plan.nodes[0]
            .caps
            .limits
            .get(nanoproc_caps::LimitKind::Memory)?;
        Some(crate::trampoline::hostcall_fuel(memory))
    }

    /// The root's linked component: what wasmtime `bindgen!`'s `…Indices::new`
    /// takes, to look up exports once for [`Plugin::call_with`].
    pub fn instance_pre(&self) -> &InstancePre<NanoState> {
        &self.cx.plan.nodes[0].pre
    }

    /// Every function the root exports, as `(interface, functions)`; functions
    /// exported at the top level are under the interface `""`.
    pub fn exports(&self) -> Vec<(String, Vec<String>)> {
        let engine = &self.cx.plan.engine;
        let ty = self.instance_pre().component().component_type();
        let mut out = Vec::new();
        let mut top = Vec::new();
        for (name, item) in ty.exports(engine) {
            match item.ty {
                ComponentItem::ComponentInstance(inst) => {
                    let funcs: Vec<String> = inst
                        .exports(engine)
                        .filter(|(_, i)| matches!(i.ty, ComponentItem::ComponentFunc(_)))
                        .map(|(f, _)| f.to_string())
                        .collect();
                    if !funcs.is_empty() {
                        out.push((name.to_string(), funcs));
                    }
                }
                ComponentItem::ComponentFunc(_) => top.push(name.to_string()),
                _ => {}
            }
        }
        if !top.is_empty() {
            out.insert(0, (String::new(), top));
        }
        out
    }

    /// The name, index and type of export `interface#func` (`interface` with or
    /// without its version; `""` for a function exported at the top level).
    fn export(
        &self,
        interface: &str,
        func: &str,
    ) -> Result<(String, ComponentExportIndex, ComponentItem), PluginError> {
        let component = self.instance_pre().component();
        let engine = &self.cx.plan.engine;
        let name = |i: &str| {
            if i.is_empty() {
                func.to_string()
            } else {
                format!("{i}#{func}")
            }
        };
        let missing = || PluginError::NoExport {
            export: name(interface),
            available: self
                .exports()
                .into_iter()
                .flat_map(|(i, fs)| fs.into_iter().map(move |f| (i.clone(), f)))
                .map(|(i, f)| if i.is_empty() { f } else { format!("{i}#{f}") })
                .collect(),
        };
        if interface.is_empty() {
            let (item, index) = component.get_export(None, func).ok_or_else(missing)?;
            return Ok((func.to_string(), index, item));
        }
        let ty = component.component_type();
        let full = ty
            .exports(engine)
            .map(|(n, _)| n)
            .find(|n| crate::interfaces::names_match(n, interface))
            .ok_or_else(missing)?
            .to_string();
        let (_, iface) = component.get_export(None, &full).ok_or_else(missing)?;
        let (item, index) = component
            .get_export(Some(&iface), func)
            .ok_or_else(missing)?;
        Ok((name(&full), index, item))
    }

    /// Looks up `interface#func` and checks its type against `Params` and
    /// `Results` once: the export to give [`Plugin::call_typed`].
    pub fn typed<Params, Results>(
        &mut self,
        interface: &str,
        func: &str,
    ) -> Result<TypedExport<Params, Results>, PluginError>
    where
        Params: ComponentNamedList + Lower,
        Results: ComponentNamedList + Lift,
    {
        let (name, index, _) = self.export(interface, func)?;
        let live = self.live()?;
        live.instance
            .get_typed_func::<Params, Results>(&mut live.store, index)
            .map_err(|e| PluginError::WrongType {
                export: name.clone(),
                why: format!("{e:#}"),
            })?;
        Ok(TypedExport {
            name,
            index,
            plan: self.cx.plan.id,
            _types: PhantomData,
        })
    }

    /// Calls a typed export with `params`.
    pub fn call_typed<Params, Results>(
        &mut self,
        export: &TypedExport<Params, Results>,
        params: Params,
    ) -> Result<Results, PluginError>
    where
        Params: ComponentNamedList + Lower + Send,
        Results: ComponentNamedList + Lift + Send + 'static,
    {
        if export.plan != self.cx.plan.id {
            return Err(PluginError::OtherPlan {
                export: export.name.clone(),
            });
        }
        self.with_live(&export.name, move |live| {
            let func = match live.funcs.iter().find(|(i, _)| *i == export.index) {
                Some((_, func)) => *func,
                None => {
                    let func = live
                        .instance
                        .get_func(&mut live.store, export.index)
                        .ok_or_else(|| {
                            wasmtime::format_err!("{} is not a function", export.name)
                        })?;
                    live.funcs.push((export.index, func));
                    func
                }
            };
            // SAFETY: `export.index` is of this plan's root component (checked
            // above) and its type was checked against `Params` and `Results` when
            // the export was looked up; every instance is of that component.
            let typed = unsafe { TypedFunc::<Params, Results>::new_unchecked(func) };
            crate::drive::call_typed(&typed, &mut live.store, live.is_async, params)
        })
    }

    /// Calls `interface#func` with `params` as [`Val`]s, for hosts that find their
    /// plugins' functions at run time; returns its results.
    pub fn call(
        &mut self,
        interface: &str,
        func: &str,
        params: &[Val],
    ) -> Result<Vec<Val>, PluginError> {
        let (name, index, item) = self.export(interface, func)?;
        // The host's values are checked here, not by wasmtime inside the call: a
        // mistake of the host's must not count as the plugin's failure, which
        // would drop its instance.
        let ComponentItem::ComponentFunc(ty) = item else {
            return Err(PluginError::WrongType {
                export: name,
                why: "it is not a function".into(),
            });
        };
        let expected: Vec<Type> = ty.params().map(|(_, t)| t).collect();
        if expected.len() != params.len() {
            return Err(PluginError::WrongType {
                export: name,
                why: format!(
                    "it takes {} parameters, {} were given",
                    expected.len(),
                    params.len()
                ),
            });
        }
        if let Some(at) = expected
            .iter()
            .zip(params)
            .position(|(t, v)| !value_matches(t, v))
        {
            return Err(PluginError::WrongType {
                export: name,
                why: format!(
                    "parameter {at} is not a value of its type ({:?})",
                    expected[at]
                ),
            });
        }
        let count = ty.results().len();
        self.with_live(&name, |live| {
            let func = live
                .instance
                .get_func(&mut live.store, index)
                .ok_or_else(|| wasmtime::format_err!("not a function"))?;
            let mut results = vec![Val::Bool(false); count];
            crate::drive::call(func, &mut live.store, live.is_async, params, &mut results)?;
            Ok(results)
        })
    }

    /// Runs `body` as one call into the plugin, with its store and root instance:
    /// for wasmtime `bindgen!` bindings (`…Indices::load(store, instance)`, then
    /// `call_…(store, …)`). nanoproc starts the call's limits before, and maps a
    /// trap and applies the restart policy after, as for every call; the bindings
    /// must not be kept beyond `body`, since a restart replaces the instance.
    pub fn call_with<T: Send>(
        &mut self,
        body: impl FnOnce(&mut Store<NanoState>, &Instance) -> wasmtime::Result<T> + Send,
    ) -> Result<T, PluginError> {
        let epochs = self.cx.plan.epochs;
        let hostcall_fuel = self.hostcall_fuel();
        self.with_live("a call", |live| {
            let result = body(&mut live.store, &live.instance);
            // The body had the store: what bounds the next calls is set again
            // (the deadline and the fuel are set before every call).
            live.store.limiter(|s| &mut s.limiter);
            if epochs {
                live.store
                    .epoch_deadline_callback(crate::state::epoch_check);
            }
            if let Some(fuel) = hostcall_fuel {
                live.store.set_hostcall_fuel(fuel);
            }
            result
        })
    }

    /// [`Plugin::call_with`] for a WASI 0.3 (async) plugin, whose store is driven
    /// only by wasmtime's `*_async` calls: `body` returns the future of such a
    /// call (bindings generated by `bindgen!` with `exports: { default: async }`,
    /// or `Func::call_async`), and nanoproc drives it to completion on this
    /// thread, under the call's time limit and the run's interrupt while the
    /// plugin awaits the host (see `docs/architecture.md`, async nanoprocesses).
    pub fn call_with_async<T: Send>(
        &mut self,
        body: impl for<'a> FnOnce(
            &'a mut Store<NanoState>,
            &'a Instance,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = wasmtime::Result<T>> + Send + 'a>,
        > + Send,
    ) -> Result<T, PluginError> {
        self.call_with(|store, instance| {
            let clock = store.data().clock.clone();
            crate::drive::drive(&clock, body(store, instance))
        })
    }

    /// The live instance, restarted or replaced first if it must be.
    fn live(&mut self) -> Result<&mut Live, PluginError> {
        if let Some(reason) = self.cx.interrupt.reason() {
            return Err(PluginError::Stopped(reason));
        }
        let replace = match &self.live {
            None => true,
            Some(live) => live.used && self.instances == Instances::PerCall,
        };
        if replace {
            match self.live.take() {
                // A fresh instance per call: nothing failed, no restart spent.
                Some(_) => self.live = Some(self.start_again()?),
                None => {
                    // Takes one restart of the budget, whether it succeeds or not.
                    self.allow_restart()?;
                    let after = self.failure.take();
                    match self.start_again() {
                        Ok(live) => {
                            self.record_restart(Decision::Allowed, after);
                            tracing::info!(nanoprocess = ?self.root_path(), "plugin restarted");
                            self.live = Some(live);
                        }
                        Err(e) => {
                            let why =
                                format!("{}; the restart failed: {e}", after.unwrap_or_default());
                            self.record_restart(Decision::Refused, Some(why));
                            return Err(e);
                        }
                    }
                }
            }
        }
        Ok(self.live.as_mut().expect("made above"))
    }

    fn start_again(&mut self) -> Result<Live, PluginError> {
        let started = self.instantiate();
        started.map_err(|e| {
            let (failure, error) = match e {
                StartError::Stopped(reason) => (
                    format!("stopped while it was started: {reason}"),
                    PluginError::Stopped(reason),
                ),
                StartError::Exit(code) => (
                    format!("it exited with status {code} while it was started"),
                    PluginError::Exited {
                        nanoprocess: self.root_path().clone(),
                        code,
                    },
                ),
                StartError::Failed {
                    nanoprocess,
                    message,
                    limit_exceeded,
                } => {
                    let why = format!("it could not be started: {message}");
                    (
                        why.clone(),
                        PluginError::Failed {
                            nanoprocess,
                            why,
                            limit_exceeded,
                        },
                    )
                }
            };
            // What the next call's refusal or restart says it failed of.
            self.failure = Some(failure);
            error
        })
    }

    /// Whether a failed plugin may be restarted now: its policy and budget.
    fn allow_restart(&mut self) -> Result<(), PluginError> {
        let earlier = self.failure.clone().unwrap_or_default();
        let path = self.root_path().clone();
        let failed = |why: String| PluginError::Failed {
            nanoprocess: path.clone(),
            why,
            limit_exceeded: false,
        };
        let Some(policy) = self.restart else {
            return Err(failed(format!(
                "it failed earlier and is not restartable ({earlier})"
            )));
        };
        if let Err(spent) = self.restarts.take(policy) {
            self.record_restart(
                Decision::Refused,
                Some(format!("{spent}; last failure: {earlier}")),
            );
            return Err(failed(format!("{spent} ({earlier})")));
        }
        Ok(())
    }

    fn record_restart(&self, decision: Decision, reason: Option<String>) {
        let reason = reason.map_or_else(String::new, |r| match decision {
            Decision::Allowed => format!("after: {r}"),
            _ => r,
        });
        crate::restarts::record(&self.cx.audit, self.root_path(), decision, reason);
    }

    /// One call into the live instance: its limits started, its failure mapped,
    /// on a native stack deep enough for the tree.
    fn with_live<T: Send>(
        &mut self,
        export: &str,
        body: impl FnOnce(&mut Live) -> wasmtime::Result<T> + Send,
    ) -> Result<T, PluginError> {
        let needed = self.stack_needed;
        if stacker::remaining_stack().is_some_and(|left| left >= needed + (1 << 20)) {
            return self.call_here(export, body);
        }
        crate::run::with_stack(needed, "nanoproc-plugin", || self.call_here(export, body))
            .unwrap_or_else(|why| {
                Err(PluginError::Failed {
                    nanoprocess: "(nanoproc)".into(),
                    why,
                    limit_exceeded: false,
                })
            })
    }

    fn call_here<T>(
        &mut self,
        export: &str,
        body: impl FnOnce(&mut Live) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        let fuel = self.cx.plan.fuel.then(|| {
            self.cx.plan.nodes[0]
                .caps
                .limits
                .get(nanoproc_caps::LimitKind::Fuel)
                .unwrap_or(u64::MAX)
        });
        let epochs = self.cx.plan.epochs;
        let live = self.live()?;
        live.used = true;
        if epochs {
            // Armed again for every call: nothing done to the store in an earlier
            // call (a `call_with` body) can leave this one without its time limit.
            live.store.set_epoch_deadline(1);
        }
        live.store.data_mut().clock.start_call();
        if let Some(fuel) = fuel
            && let Err(e) = live.store.set_fuel(fuel)
        {
            return Err(PluginError::Failed {
                nanoprocess: live.store.data().path().clone(),
                why: format!("{e:#}"),
                limit_exceeded: false,
            });
        }
        // A host function that panics unwinds through the guest's call and leaves
        // its instance cut off halfway: it must not be entered again, whoever
        // catches the panic.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(live))) {
            Ok(result) => result,
            Err(panic) => {
                self.live = None;
                self.failure = Some("a host function panicked during a call".into());
                std::panic::resume_unwind(panic);
            }
        };
        live.store.data_mut().clock.end_call();
        let e = match result {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let path = self.root_path().clone();
        // Whatever ended it, the instance cannot be entered again.
        let live = self.live.take().expect("called above");
        let (message, limit_exceeded) = match Ended::of(&e, live.store.data()) {
            Ended::Stopped(reason) => {
                self.failure = Some(format!("stopped: {reason}"));
                return Err(PluginError::Stopped(reason));
            }
            Ended::Exit(code) => {
                self.failure = Some(format!("it exited with status {code}"));
                return Err(PluginError::Exited {
                    nanoprocess: path,
                    code,
                });
            }
            Ended::Failed {
                message,
                limit_exceeded,
            } => (message, limit_exceeded),
        };
        self.failure = Some(message.clone());
        tracing::info!(nanoprocess = ?path, export, error = ?message, "plugin call trapped");
        Err(PluginError::Trap {
            nanoprocess: path,
            export: export.to_string(),
            message,
            limit_exceeded,
        })
    }
}
