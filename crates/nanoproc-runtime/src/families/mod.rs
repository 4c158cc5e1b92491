//! The capability families, host side: one module each, as in `nanoproc-caps`.
//!
//! Each family module links the WASI interfaces it serves, once, through its guard
//! where it has one (`add_to_linker`), and builds its part of a nanoprocess's state
//! from what the nanoprocess holds of it and nothing else (`build`): its piece of
//! the wasmtime-wasi context (a `WasiCtxBuilder` starts with no preopens, no
//! environment and no arguments; each family adds exactly what was granted) and
//! its own [`State`]. Every family records its decisions through the nanoprocess's
//! [`Recorder`]. `wasi:io` (pollables, streams) serves several families: [`io`]
//! links it, and families plug their streams into the shared resource table.
//!
//! Resource limits are a family of `nanoproc-caps` but link no interface: the
//! store's limiter, fuel and [`crate::state::CallClock`] enforce them.
//!
//! WASI 0.3: each family module also links the family's 0.3 interfaces
//! (`add_p3_to_linker`), through the same policy and recorder as its 0.2 ones,
//! for the components that import them (see `plan::link`). Both generations
//! share the nanoprocess's one wasmtime-wasi context, so what `build` put there
//! (preopens, environment, seeded random, frozen clocks, the socket check) holds
//! for both.
//!
//! Adding a family: a module here with `State`, `build`, `add_to_linker`, and its
//! `INTERFACES`, `FAMILY`, `SURFACE` and `PREVIEW1` (what it serves and what
//! `inspect` says about it), and one line in the `host_families!` list below
//! (docs/architecture.md).

pub(crate) mod clocks;
pub(crate) mod config;
pub(crate) mod env;
pub(crate) mod exit;
pub(crate) mod fs;
pub(crate) mod host;
pub(crate) mod http;
pub(crate) mod io;
pub(crate) mod network;
pub(crate) mod random;
pub(crate) mod stdio;

pub(crate) use stdio::{OutputFiles, RunOutputs, StderrTail};

use crate::audit::{Audit, Recorder};
use crate::host_io::HostIo;
use crate::interrupt::Interrupt;
use crate::limits::{Budget, NanoLimiter};
use crate::plan::PlannedNode;
use crate::state::{CallClock, NanoState, WasiPart};
use nanoproc_caps::{Capabilities, LimitKind, Limits};
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{NamedId, WasiCtxBuilder};

/// What importing a family's interfaces can ask for, for `inspect`: an interface
/// (or preview 1 function) name without version, a prefix if it ends in `/`, `-`
/// or `_`, and the grant keys that grant it. Each family module has one for its
/// WIT interfaces (`SURFACE`) and one for its preview 1 functions (`PREVIEW1`).
pub(crate) type Surface = &'static [(&'static str, &'static [&'static str])];

/// Which fused nanoprocess a named import belongs to, by its import name.
pub(crate) type Lookup<'a> = dyn FnMut(&str) -> wasmtime::Result<NamedId> + 'a;

/// The store data as seen by a call through a named import: each of its host
/// functions is given the [`NamedId`] of the fused nanoprocess it is for, and runs
/// the family's ordinary guard as that nanoprocess ([`NanoState::as_fused`]).
pub(crate) struct FusedCall<'a>(pub &'a mut NanoState);

pub(crate) struct Fused;
impl wasmtime::component::HasData for Fused {
    type Data<'a> = FusedCall<'a>;
}

/// The getter of every named import's bindings.
pub(crate) fn fused_call(s: &mut NanoState) -> FusedCall<'_> {
    FusedCall(s)
}

/// What every family's `build` may read besides its own holding.
pub(crate) struct BuildCx<'a> {
    /// The nanoprocess as planned: its name, and the directories and files the
    /// plan opened for it.
    pub node: &'a PlannedNode,
    pub recorder: Recorder,
    pub limits: &'a Limits,
    /// Where the host puts the tree's stdio (the process's own by default).
    pub io: &'a HostIo,
    /// What every writer of the run shares: destinations and output budgets.
    pub outputs: &'a stdio::RunOutputs,
    /// The trust roots of outgoing HTTPS requests, the runtime's.
    pub http: &'a Arc<http::Client>,
}

/// Declares the host side of the families: their states side by side, and the
/// folds that link and build them. One line per family: `field: module`, where
/// `field` is the family's field in `Capabilities`.
macro_rules! host_families {
    ($($field:ident: $module:ident,)*) => {
        /// Each family's part of a nanoprocess's state.
        // A family may keep nothing of its own (the environment is all in the
        // wasmtime-wasi context); its state is still built, for uniformity.
        #[allow(dead_code)]
        pub(crate) struct State {
            $(pub $field: $module::State,)*
        }

        /// Whether an import is an interface some family serves (a WASI 0.2
        /// interface, or `wasi:config/store`).
        pub(crate) fn provides(name: &str) -> bool {
            let (n, v) = crate::interfaces::split_version(name);
            let served = |list: &[(&str, &str)]| {
                list.iter().any(|(prefix, version)| {
                    n.starts_with(prefix) && v.is_some_and(|v| v.starts_with(version))
                })
            };
            served(io::INTERFACES) $(|| served($module::INTERFACES))*
        }

        /// Every family's capability surface, for `inspect` (`crate::surface`): its
        /// name, what importing each of its interfaces can ask for, and the same for
        /// WASI preview 1 functions.
        pub(crate) const SURFACES: &[(&str, Surface, Surface)] = &[
            (io::FAMILY, io::SURFACE, io::PREVIEW1),
            $(($module::FAMILY, $module::SURFACE, $module::PREVIEW1),)*
        ];

        /// The versions served of the interface `name` (without its version), as
        /// version prefixes (`0.2.x or 0.3.x`), or `None` where no family serves it.
        pub(crate) fn served_versions(name: &str) -> Option<String> {
            let versions: Vec<String> = io::INTERFACES
                .iter()$(.chain($module::INTERFACES))*
                .filter(|(prefix, _)| name.starts_with(prefix))
                .map(|(_, version)| format!("{version}x"))
                .collect();
            (!versions.is_empty()).then(|| versions.join(" or "))
        }

        /// The interfaces served, for a message about one that is not.
        pub(crate) fn provided() -> String {
            let mut all: Vec<String> = Vec::new();
            for (prefix, version) in io::INTERFACES.iter()$(.chain($module::INTERFACES))* {
                all.push(format!("{}@{version}", prefix.trim_end_matches('/')));
            }
            all.join(", ")
        }

        /// Links `wasi:io` and every family's interfaces, each once.
        pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
            io::add_to_linker(linker)?;
            $($module::add_to_linker(linker)?;)*
            Ok(())
        }

        /// Links every family's WASI 0.3 interfaces, each through the same policy
        /// as its 0.2 ones (one policy per family, two bindings).
        pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
            $($module::add_p3_to_linker(linker)?;)*
            Ok(())
        }

        /// Links every family's constructor interfaces that `component` imports
        /// under a name of its own (the imports of nanoprocesses fused into it,
        /// see `plan::fuse`), each bound to the nanoprocess `lookup` names. An
        /// import `lookup` does not know is an error, never a default.
        pub(crate) fn add_named_to_linker(
            linker: &mut Linker<NanoState>,
            component: &wasmtime::component::Component,
            lookup: &mut Lookup<'_>,
        ) -> wasmtime::Result<()> {
            $($module::add_named_to_linker(linker, component, lookup)?;)*
            Ok(())
        }

        fn build_families(
            caps: &Capabilities,
            wasi: &mut WasiCtxBuilder,
            cx: &BuildCx<'_>,
        ) -> wasmtime::Result<State> {
            Ok(State {
                $($field: $module::build(&caps.$field, wasi, cx)?,)*
            })
        }
    };
}

host_families! {
    fs: fs,
    env: env,
    stdio: stdio,
    clocks: clocks,
    random: random,
    exit: exit,
    network: network,
    http: http,
    config: config,
    host: host,
}

/// Builds the store data of one nanoprocess of a plan: from its capabilities and
/// the handles the plan opened for it, nothing else. `budgets` are the memory
/// budgets it is charged to: its own (if it has a memory limit) and its ancestors'.
/// `io` says where its granted stdio comes from and goes; `outputs` is what the
/// run's writers share (destinations, output budgets).
pub(crate) fn build_state(
    node: &PlannedNode,
    audit: &Audit,
    interrupt: &Interrupt,
    io: &HostIo,
    outputs: &stdio::RunOutputs,
    http: &Arc<http::Client>,
    budgets: Vec<Arc<Budget>>,
) -> wasmtime::Result<NanoState> {
    let path = node.path.clone();
    let limits = &node.caps.limits;
    // What makes it itself, built as a fused nanoprocess's is; the rest is the
    // store's.
    let crate::state::Persona {
        ctx,
        recorder,
        families,
        node: index,
    } = build_persona(node, audit, io, outputs, http)?;

    let mut table = ResourceTable::new();
    if let Some(handles) = limits.get(LimitKind::Handles) {
        table.set_max_capacity(usize::try_from(handles).unwrap_or(usize::MAX));
    }

    Ok(NanoState {
        wasi: WasiPart { ctx, table },
        recorder,
        families,
        limiter: NanoLimiter::new(path.clone(), limits, budgets),
        limits: *limits,
        clock: CallClock::new(path, interrupt.clone(), limits.get(LimitKind::Timeout)),
        children: Vec::new(),
        proxies: std::collections::HashMap::new(),
        next_proxy: 0,
        routes: Vec::new(),
        node: index,
        plan_dirs: node.plan_dirs.clone(),
        fused: Vec::new(),
    })
}

/// Builds the persona of a nanoprocess fused into another's store: its WASI
/// context and families from its own capabilities and handles, exactly as
/// [`build_state`] would for a store of its own; the store's table, limiter,
/// clock and children are its host's.
pub(crate) fn build_persona(
    node: &PlannedNode,
    audit: &Audit,
    io: &HostIo,
    outputs: &stdio::RunOutputs,
    http: &Arc<http::Client>,
) -> wasmtime::Result<crate::state::Persona> {
    let cx = BuildCx {
        node,
        recorder: Recorder::new(node.path.clone(), audit.clone()),
        limits: &node.caps.limits,
        io,
        outputs,
        http,
    };
    let mut wasi = WasiCtxBuilder::new();
    if node.is_async {
        // A WASI 0.3 nanoprocess serving its parent through an ordinary (not
        // `async`) function may not suspend before it returns: wasmtime traps it
        // ("cannot block a synchronous task"). Its file operations therefore run
        // on this thread, as `wasmtime run` runs them, not on tokio's blocking
        // pool, so that reading a file does not suspend it. The run is one thread
        // of synchronous calls anyway (`crate::drive`): this only saves a hop.
        wasi.allow_blocking_current_thread(true);
    }
    let families = build_families(&node.caps, &mut wasi, &cx)?;
    Ok(crate::state::Persona {
        ctx: wasi.build(),
        recorder: cx.recorder,
        families,
        node: node.index,
    })
}
