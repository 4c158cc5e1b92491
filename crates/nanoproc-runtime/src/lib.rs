//! nanoproc's runtime: a tree of WebAssembly components, each in its own store with
//! its own linear memory and WASI context, each holding only what its parent handed
//! it.
//!
//! ```no_run
//! use nanoproc_runtime::{Audit, Runtime};
//!
//! # fn main() -> wasmtime::Result<()> {
//! let runtime = Runtime::new()?;
//! // Everything `nanoproc check` verifies happens here; a refusal lists every
//! // error found, each at its file:line:col.
//! let plan = runtime.check_manifest("examples/gallery/nanoproc.toml", &[])?;
//! println!("{}", plan.describe());
//! let audit = Audit::new();
//! let exit = plan.run(&audit)?;
//! for refusal in audit.refusals() {
//!     eprintln!("refused: {refusal}");
//! }
//! std::process::exit(exit.code);
//! # }
//! ```
//!
//! The data flow, module by module: [`nanoproc_manifest`] reads the manifest;
//! `plan` compiles components (through the compile `cache`), derives each
//! nanoprocess's capabilities with [`nanoproc_caps`], checks that every import is
//! wired to a matching export (`interfaces`, resources matched by the interface
//! that defines them) and links one `InstancePre` per component, on an `engine`
//! with the pooling allocator for large trees; [`Plan::start`] instantiates the
//! tree bottom-up, each store's data built by `families` from the capabilities alone,
//! and [`Tree::run`] calls the root; `trampoline` carries every call between
//! nanoprocesses (`fastpath` for common shapes, `handles` for calls that pass
//! descriptors, streams or resources); the families' guards gate the WASI functions that
//! have no error case; [`Audit`] records decisions and transfers.

mod audit;
mod cache;
mod drive;
mod engine;
mod error;
mod families;
mod fastpath;
mod handles;
mod hint;
/// Capabilities the embedding application defines (see [`HostFamily`]).
pub mod host {
    pub use crate::families::host::{HostCall, HostFamily, HostFamilyError};
    pub use nanoproc_caps::{CustomRule, HostHolding, ScopeRule, Scopes};
}
mod host_io;
pub mod interfaces;
mod interrupt;
mod learn;
mod limits;
pub mod lock;
mod lowered;
mod plan;
mod plugin;
mod preview1;
mod progress;
mod restarts;
mod run;
pub mod serve;
mod state;
pub mod surface;
mod trampoline;
mod wit_types;

pub use audit::{Audit, Decision, Event, Kept, TRACING_TARGET as AUDIT_TRACING_TARGET, Uses};
pub use error::{CapabilityRefused, ChildFailed};
pub use hint::{Hint, HintStep};
pub use host::{HostCall, HostFamily, HostFamilyError};
pub use host_io::{Captured, HostIo, Output, OutputCallback, Stdin, StdinBytes};
pub use interrupt::{Interrupt, StopReason};
pub use learn::{NodeProposal, Proposal};
pub use limits::LimitExceeded;
pub use nanoproc_caps as caps;
pub use nanoproc_manifest as manifest;
pub use plan::{CheckError, DEFAULT_MAX_COMPONENT_SIZE, Placement, Plan, PlannedNode};
pub use plugin::{Instances, Plugin, PluginError, PluginOptions, TypedExport};
pub use progress::{CompileProgress, ProgressHook};
pub use run::{Exit, RunError, RunOptions, Tree};
pub use serve::{RequestFailure, ServeError, ServeOptions, ServeSummary, Server};
pub use state::NanoState;
pub use surface::{FileKind, InspectError, NotWasm, Surface};

use nanoproc_caps::GrantRequest;
use nanoproc_manifest::Manifest;
use std::path::Path;
use std::sync::{Arc, Mutex};

use wasmtime::Engine;

/// Compiles and checks nanoprocess trees. One `Runtime` (one wasmtime engine) can
/// check and run any number of them.
#[derive(Clone)]
pub struct Runtime {
    /// Engines are made on first use, one per configuration a plan needs (fuel
    /// counting or not, epoch checks or not, a pool of a given size or none).
    engines: Arc<Mutex<Vec<(engine::EngineChoice, Engine)>>>,
    cache: cache::CompileCache,
    /// The largest component file a check reads, in bytes.
    max_component_size: u64,
    /// The most levels a manifest's tree may have.
    max_depth: usize,
    /// Every plan can be interrupted while it runs wasm, whether or not a time
    /// limit asks for it (see [`Runtime::with_interruption`]).
    interruptible: bool,
    /// Told of every component compiled (see [`Runtime::with_progress`]).
    progress: Option<ProgressHook>,
    /// The capability families the host defines (see [`Runtime::with_host_family`]).
    host: families::host::HostFamilies,
    /// The trust roots of outgoing HTTPS requests (see [`Runtime::with_http_ca`]).
    http: Arc<families::http::Client>,
    /// Trees are made per request, this many alive at once (see
    /// [`Runtime::with_pool_for_trees`]).
    pool_trees: Option<usize>,
}

impl Runtime {
    /// A runtime with the compile cache the environment asks for (see the README).
    pub fn new() -> wasmtime::Result<Self> {
        let runtime = Self {
            engines: Arc::default(),
            cache: cache::CompileCache::from_env(),
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
            max_depth: manifest::MAX_DEPTH,
            interruptible: true,
            progress: None,
            host: Default::default(),
            http: Default::default(),
            pool_trees: None,
        };
        runtime.engine_for(engine::EngineChoice {
            fuel: false,
            epochs: false,
            pool: None,
            concurrency: None,
        })?;
        Ok(runtime)
    }

    /// The same runtime, trusting the certificates in each PEM file of `files` as
    /// roots for outgoing HTTPS requests, besides the system's (`--http-ca`). The
    /// files are read now: one that cannot be read, or holds no usable
    /// certificate, is an error naming it.
    pub fn with_http_ca(mut self, files: &[std::path::PathBuf]) -> Result<Self, String> {
        self.http = Arc::new(families::http::Client::with_roots_from(files)?);
        Ok(self)
    }

    /// The same runtime, giving every plan it checks a pooling allocator with
    /// slots for `trees` instances of the whole tree alive at once, whatever the
    /// tree's size: for a host that makes a tree per request, as [`Plan::serve`]
    /// does (with `trees` its [`ServeOptions::max_concurrent`]). Instances then come
    /// from memory and state reserved once and recycled, which makes each
    /// request's instantiation and teardown cheaper (docs/cli.md). A tree too large
    /// for that many slots (over 4096 nanoprocesses in all) keeps the on-demand
    /// allocator. Without it, only trees of 16 nanoprocesses or more get a pool,
    /// with slots for four trees.
    pub fn with_pool_for_trees(mut self, trees: usize) -> Self {
        self.pool_trees = Some(trees.max(1));
        self
    }

    /// The same runtime, refusing component files larger than `bytes` (the default
    /// is [`DEFAULT_MAX_COMPONENT_SIZE`]). A file is read whole, and compiled, at
    /// every check: this bounds what one costs before compilation starts.
    pub fn with_max_component_size(mut self, bytes: u64) -> Self {
        self.max_component_size = bytes;
        self
    }

    /// The largest component file a check reads, in bytes.
    pub fn max_component_size(&self) -> u64 {
        self.max_component_size
    }

    /// The same runtime, accepting manifests whose tree has up to `levels` levels
    /// (the default is [`manifest::MAX_DEPTH`], 64). A deeper tree costs native
    /// stack as it runs (about 768 KiB a level, reserved, see `Tree::run`), and its
    /// memory budgets nest deeper.
    pub fn with_max_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels;
        self
    }

    /// Whether every plan is interruptible while it runs wasm (the default): then
    /// [`Interrupt::stop`] and a whole-run timeout stop a guest in the middle of
    /// computing, at its next epoch tick. With `false`, only plans with a time limit
    /// somewhere (every dependency has one by default) compile the epoch checks
    /// this needs, which can make a tight compute loop take ~1.8x as long; in the others a
    /// stop reaches only guests waiting in host calls (fuel limits still hold), and
    /// a run timeout is refused by [`Plan::start`]. The command line turns it off
    /// unless `--timeout` is given: its watchdog ends a stopped run that does not.
    pub fn with_interruption(mut self, on: bool) -> Self {
        self.interruptible = on;
        self
    }

    /// The same runtime, calling `hook` as each component file of a check starts
    /// and finishes compiling, or is loaded from the compile cache: a first run of
    /// a large component compiles for seconds, which a caller may want to show.
    pub fn with_progress(
        mut self,
        hook: impl Fn(&CompileProgress) + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(hook));
        self
    }

    /// The same runtime, serving a capability family the host defines: its
    /// interfaces are linked into every component that imports them, each call
    /// checked against the caller's `grants.host.<name>` and audited. Refused if
    /// its name is one of nanoproc's own families or already registered, or if
    /// it serves a WASI interface or a function another family serves.
    pub fn with_host_family(mut self, family: HostFamily) -> Result<Self, HostFamilyError> {
        self.host = self.host.with(family)?;
        Ok(self)
    }

    /// The names of the host-defined families registered.
    pub fn host_families(&self) -> Vec<&'static str> {
        self.host.names()
    }

    fn engine_for(&self, choice: engine::EngineChoice) -> wasmtime::Result<Engine> {
        let mut engines = self.engines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, e)) = engines.iter().find(|(k, _)| *k == choice) {
            return Ok(e.clone());
        }
        let engine = engine::new_engine(choice)?;
        engines.push((choice, engine.clone()));
        Ok(engine)
    }

    /// Loads a manifest and checks everything that can be known before running.
    /// `root_args` are appended to the root's arguments; granted environment
    /// variables of the root are read from this process's environment.
    pub fn check_manifest(
        &self,
        manifest: impl AsRef<Path>,
        root_args: &[String],
    ) -> Result<Plan, CheckError> {
        let path = manifest.as_ref();
        let manifest = Manifest::load_with_depth(path, self.max_depth).map_err(|errors| {
            // A file that is plainly no manifest (a component, an image) is said to
            // be what it is, rather than reported as TOML that does not parse.
            match surface::not_a_manifest(path) {
                Some(what) => {
                    manifest::ManifestErrors(vec![manifest::ManifestError::new(None, what)])
                }
                None => errors,
            }
        })?;
        tracing::info!(
            manifest = ?manifest.path,
            nanoprocesses = manifest.nodes.len(),
            "manifest loaded"
        );
        self.check(&manifest, root_args, &|name| std::env::var(name).ok())
    }

    /// Checks an already loaded manifest, with an explicit environment for the root.
    /// A refusal ([`CheckError::Refused`]) lists every error every stage of the
    /// check found; [`CheckError::Engine`] says the engine the tree needs could not
    /// be set up, which is no fault of the manifest's.
    pub fn check(
        &self,
        manifest: &Manifest,
        root_args: &[String],
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Plan, CheckError> {
        self.plan(
            manifest,
            root_args,
            host_env,
            plan::GrantMode::AsWritten,
            plan::RootKind::Command,
        )
    }

    /// Like [`Runtime::check_manifest`], for learning what each nanoprocess uses
    /// (`nanoproc learn`): every dependency holds everything its parent holds
    /// (never more: it is still carved out of its parent's holding), whatever its
    /// own grants say; the root holds what the manifest grants it. Run it with an
    /// [`Audit::learning`] record and ask [`Plan::propose`] for the grants.
    pub fn check_manifest_learning(
        &self,
        manifest: impl AsRef<Path>,
        root_args: &[String],
    ) -> Result<Plan, CheckError> {
        let manifest = Manifest::load_with_depth(manifest, self.max_depth)?;
        self.plan(
            &manifest,
            root_args,
            &|name| std::env::var(name).ok(),
            plan::GrantMode::Learning,
            plan::RootKind::Command,
        )
    }

    fn plan(
        &self,
        manifest: &Manifest,
        root_args: &[String],
        host_env: &dyn Fn(&str) -> Option<String>,
        mode: plan::GrantMode,
        root: plan::RootKind,
    ) -> Result<Plan, CheckError> {
        let compiler = plan::Compiler {
            engine_for: &|choice| self.engine_for(choice),
            interruptible: self.interruptible,
            cache: &self.cache,
            max_component_size: self.max_component_size,
            progress: self.progress.as_ref(),
            host: &self.host,
            http: &self.http,
            pool_trees: self.pool_trees,
        };
        plan::plan(&compiler, manifest, root_args, host_env, mode, root)
    }

    /// One component (or WASI preview 1 module) run on its own, holding `grants`.
    pub fn check_component(
        &self,
        component: impl AsRef<Path>,
        grants: GrantRequest,
        args: &[String],
    ) -> Result<Plan, CheckError> {
        let manifest = Manifest::single(component.as_ref().to_path_buf(), grants);
        self.check(&manifest, args, &|name| std::env::var(name).ok())
    }

    /// One component as a plugin whose exports a host calls ([`Plan::plugin`]),
    /// holding `grants`: the root may be a library (no `wasi:cli/run`). It is
    /// given no arguments, and reads granted environment variables from this
    /// process's environment.
    pub fn check_plugin(
        &self,
        component: impl AsRef<Path>,
        grants: GrantRequest,
    ) -> Result<Plan, CheckError> {
        let manifest = Manifest::single(component.as_ref().to_path_buf(), grants);
        self.check_plugin_tree(&manifest, &|name| std::env::var(name).ok())
    }

    /// A manifest's tree as a plugin ([`Runtime::check_plugin`]): its root's
    /// exports are called by the host, its dependencies wired as in any tree.
    pub fn check_plugin_manifest(&self, manifest: impl AsRef<Path>) -> Result<Plan, CheckError> {
        let manifest = Manifest::load_with_depth(manifest, self.max_depth)?;
        self.check_plugin_tree(&manifest, &|name| std::env::var(name).ok())
    }

    /// [`Runtime::check_plugin_manifest`] for a manifest already loaded, with an
    /// explicit environment for the root.
    pub fn check_plugin_tree(
        &self,
        manifest: &Manifest,
        host_env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Plan, CheckError> {
        self.plan(
            manifest,
            &[],
            host_env,
            plan::GrantMode::AsWritten,
            plan::RootKind::Plugin,
        )
    }
}
