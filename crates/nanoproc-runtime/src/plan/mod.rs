//! From a manifest to a checked, linked tree: everything `nanoproc check` verifies,
//! and everything `run` needs prepared before the first instance exists.
//!
//! The stages, in order, each reporting every error it finds before the next one
//! runs (so that, say, a grant violation and a wiring error are reported together):
//!
//! 1. [`Manifest::load`]: syntax, names, tree shape, files, digest syntax.
//! 2. [`grants`]: capabilities, top-down, the directories and output files they
//!    confer opened, and no two directories overlapping.
//! 3. [`compile`]: the engine chosen for what the capabilities need, then every
//!    component file read, digest-checked, compiled and [`link`]ed once.
//! 4. [`wire`]: every import of every nanoprocess is a WASI interface nanoproc
//!    provides or a dependency whose export has the same type; every dependency
//!    names an import.
//!
//! Each stage's type records what it has checked. A stage that must let later
//! stages go on after an error (so that they report theirs too) returns what it
//! found node by node, with `None` where it reported an error ([`grants::Grants`],
//! [`compile::Components`]); its complete result ([`grants::Granted`],
//! [`wire::Wiring`]) has no `Option` left in it, and exists only if the stage
//! reported nothing. [`plan`] assembles a [`PlannedNode`] from complete results
//! only, so nothing later (`run`, the trampolines) unwraps something a stage
//! "must have" filled: a planned node holds its capabilities, its opened
//! directories, its linked `InstancePre`, and for each dependency slot the
//! position of the child that serves it.

mod compile;
pub(crate) mod fuse;
mod fusing;
mod grants;
mod link;
mod memory;
pub(crate) mod read;
mod wire;

pub(crate) use compile::Compiler;
pub use fusing::Placement;
pub(crate) use wire::Serve;

use crate::families::fs::dirs::{OpenedDir, PlanDirs};
use crate::state::NanoState;
use nanoproc_caps::Capabilities;
use nanoproc_manifest::{Manifest, ManifestError, ManifestErrors, OnFailure, Restart};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::InstancePre;

/// Why a tree could not be checked.
#[derive(Debug)]
pub enum CheckError {
    /// The manifest, a component or a grant was refused: every error found, each
    /// at the manifest line it is about. `nanoproc` exits with status 125.
    Refused(ManifestErrors),
    /// The WebAssembly engine the tree needs could not be set up (for example, the
    /// address space for its pooling allocator could not be reserved): a fault of
    /// the machine or of nanoproc, not of the manifest, found before any component
    /// was compiled. `nanoproc` exits with status 126, as when its first engine
    /// cannot be set up.
    Engine(String),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Refused(errors) => errors.fmt(f),
            CheckError::Engine(why) => write!(f, "cannot set up the WebAssembly engine: {why}"),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<ManifestErrors> for CheckError {
    fn from(errors: ManifestErrors) -> Self {
        CheckError::Refused(errors)
    }
}

/// One nanoprocess of a checked tree.
pub struct PlannedNode {
    pub name: String,
    /// Its path in the tree: how every message names it.
    pub path: Arc<str>,
    pub parent: Option<usize>,
    /// What it holds.
    pub caps: Capabilities,
    /// Its directories, opened when the plan was checked, one per `caps.fs`.
    pub(crate) dirs: Vec<OpenedDir>,
    /// The host files its output goes to, opened when the plan was checked.
    pub(crate) outputs: crate::families::OutputFiles,
    /// Its index in the plan.
    pub(crate) index: usize,
    /// Where every directory of the plan is, shared by every node.
    pub(crate) plan_dirs: Arc<PlanDirs>,
    pub component_path: PathBuf,
    /// Its component, linked (shared by every node of the same file).
    pub(crate) pre: InstancePre<NanoState>,
    /// Its component was a WASI preview 1 module, adapted.
    pub(crate) was_core_module: bool,
    /// Its component uses async features (WASI 0.3): its store is driven with
    /// wasmtime's `*_async` calls (see `crate::drive`).
    pub is_async: bool,
    /// The SHA-256 of its component, as read and compiled: what ran is what
    /// digest pins and `nanoproc.lock` were checked against.
    pub digest: [u8; 32],
    /// Its distinct children, in the order they are instantiated.
    pub children: Vec<usize>,
    /// For each dependency slot of its component: the position in `children` of
    /// the child that serves it (what [`NanoState::routes`] holds).
    pub(crate) routes: Vec<usize>,
    /// For a child: the parent's slots it serves, with the export that serves each.
    pub(crate) serves: Vec<Serve>,
    /// For a child: how many dependency slots its parent's component has.
    pub(crate) parent_slots: usize,
    /// How its failures reach its parent, and whether it is restarted.
    pub on_failure: OnFailure,
    pub restart: Option<Restart>,
    /// In a store of its own, or fused into an ancestor's.
    pub placement: Placement,
    /// For a store's host: the nanoprocesses fused into its store, in the order of
    /// their personas (`NanoState::fused`).
    pub(crate) personas: Vec<usize>,
    /// Its children fused into it.
    pub fused_children: Vec<usize>,
}

impl PlannedNode {
    /// Its component was a WASI preview 1 module, adapted into a component with
    /// wasmtime's adapter, whose differences from a preview 1 runtime (its exit
    /// status only 0 or 1, among others) are the run's too (docs/preview1.md).
    pub fn was_core_module(&self) -> bool {
        self.was_core_module
    }

    /// What it holds, one line per capability family (and one for its limits), as
    /// `check` prints them: `("fs", "/photos (read-write) = host /home/me/photos")`.
    pub fn capability_summary(&self) -> Vec<(&'static str, String)> {
        let mut lines = self.caps.summary_lines();
        for (family, text) in &mut lines {
            // Directories as they were opened: the handle is what the nanoprocess
            // gets, whatever its path says now.
            if *family == "fs" && !self.dirs.is_empty() {
                *text = self
                    .caps
                    .fs
                    .iter()
                    .zip(&self.dirs)
                    .map(|(d, opened)| {
                        format!(
                            "{} ({}) = host {}",
                            d.guest,
                            d.rights,
                            opened.host_path().display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
            }
        }
        lines
    }
}

/// A checked tree, ready to run any number of times. Cloning it is cheap: the
/// clones share one checked tree.
#[derive(Clone)]
pub struct Plan {
    pub(crate) inner: Arc<PlanInner>,
}

pub(crate) struct PlanInner {
    pub engine: Engine,
    pub nodes: Vec<PlannedNode>,
    /// The root's `wasi:cli/run` export; `None` for a plugin whose root is a
    /// library (see [`RootKind`]).
    pub root_run: Option<String>,
    /// The engine counts fuel: some nanoprocess has a fuel limit.
    pub fuel: bool,
    /// The engine compiles epoch checks: wasm can be interrupted.
    pub epochs: bool,
    /// The engine has concurrency support (some nanoprocess is async).
    pub concurrency: bool,
    /// What the user should know about how the plan was prepared.
    pub notices: Vec<String>,
    /// One component whose grants were given by flags, not a manifest.
    pub single_component: bool,
    /// The manifest's text as it was checked (none for a single component): what
    /// `nanoproc lock` records and `learn` rewrites, not a second read of the file.
    pub source: Option<Arc<str>>,
    /// Started with the first tree, shared by every tree of the plan.
    pub ticker: std::sync::OnceLock<crate::interrupt::Ticker>,
    /// Unique in the process, never reused: what a plugin's typed export is
    /// checked against (an address could be reused by a later plan).
    pub id: u64,
    /// The trust roots of outgoing HTTPS requests, the runtime's.
    pub http: Arc<crate::families::http::Client>,
    /// The engine's pooling allocator, if it has one: how many instances can be
    /// alive at once (`serve` checks its concurrency against it).
    pub pool: Option<crate::engine::Pool>,
}

/// The largest component file a [`crate::Runtime`] reads unless configured
/// otherwise (`Runtime::with_max_component_size`, `--max-component-size`). Real
/// components are a few MiB; interpreters compiled with their standard library,
/// tens. Every check and run reads the file whole and compiles it, so the cap is
/// what a file can cost nanoproc's memory before compilation starts.
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 256 << 20;

/// What each dependency holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantMode {
    /// What its grants in the manifest ask for, carved out of its parent's.
    AsWritten,
    /// Everything its parent holds (still carved out of it, and so within it), its
    /// own limits and arguments aside: how `nanoproc learn` watches what each
    /// dependency uses without refusing what its parent could have given it.
    Learning,
}

/// What the root must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootKind {
    /// A command (`wasi:cli/run`): what `nanoproc run` runs.
    Command,
    /// A plugin: a component whose exports a host calls (a library, or a command
    /// whose other exports are called).
    Plugin,
}

/// Checks a manifest (already parsed) and prepares it to run.
pub(crate) fn plan(
    compiler: &Compiler<'_>,
    manifest: &Manifest,
    root_args: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
    mode: GrantMode,
    root: RootKind,
) -> Result<Plan, CheckError> {
    let mut errors: Vec<ManifestError> = Vec::new();
    let grants = grants::grant(
        manifest,
        root_args,
        host_env,
        mode,
        compiler.host,
        &mut errors,
    );
    let components = compile::compile_all(compiler, manifest, &grants, &mut errors)
        .map_err(CheckError::Engine)?;
    let mut wiring = wire::wire(
        manifest,
        &components.engine,
        &components.compiled,
        root,
        &mut errors,
    );
    let fused = match &mut wiring {
        Some(wiring) => fusing::fuse_all(
            manifest,
            &components.engine,
            // The cache vetted for this plan, never the runtime's as configured.
            &components.cache,
            compiler.host,
            &components.compiled,
            &components.sources,
            wiring,
            &mut errors,
        ),
        None => None,
    };
    let (Some(granted), Some(wiring), Some(fused)) = (grants.into_granted(manifest), wiring, fused)
    else {
        return Err(refused(manifest, errors));
    };
    if !errors.is_empty() {
        return Err(refused(manifest, errors));
    }

    let mut notices = components.notices;
    notices.extend(memory::unbounded_memory_notice(
        manifest,
        granted.held.iter().map(|h| &h.caps),
        memory::physical_memory(),
    ));
    let mut root_outputs = Some(granted.root_outputs);
    // A child's functions are looked up for the slots of the store that calls it.
    let slots: Vec<usize> = wiring.nodes.iter().map(|w| w.routes.len()).collect();
    let nodes = manifest
        .nodes
        .iter()
        .zip(granted.held)
        .zip(wiring.nodes)
        .zip(fused)
        .enumerate()
        .map(|(ix, (((node, held), wired), fused))| PlannedNode {
            name: node.name.clone(),
            path: node.path.as_str().into(),
            parent: node.parent,
            caps: held.caps,
            dirs: held.dirs,
            // Only the root's output can go to a file.
            outputs: root_outputs.take().unwrap_or_default(),
            index: ix,
            plan_dirs: granted.plan_dirs.clone(),
            component_path: node.component.clone(),
            pre: wired.pre,
            was_core_module: wired.was_core_module,
            is_async: wired.is_async,
            digest: wired.digest,
            children: wired.children,
            routes: wired.routes,
            serves: wired.serves,
            parent_slots: fused.store_parent.map_or(0, |p| slots[p]),
            on_failure: node.on_failure,
            restart: node.restart,
            placement: fused.placement,
            personas: fused.personas,
            fused_children: fused.fused_children,
        })
        .collect();
    Ok(Plan {
        inner: Arc::new(PlanInner {
            engine: components.engine,
            nodes,
            root_run: wiring.root_run,
            fuel: components.fuel,
            epochs: components.epochs,
            concurrency: components.concurrency,
            pool: components.pool,
            notices,
            single_component: manifest.is_single(),
            source: manifest.source().map(Arc::from),
            ticker: std::sync::OnceLock::new(),
            http: compiler.http.clone(),
            id: {
                static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
        }),
    })
}

/// The refusal of a tree whose stages reported `errors`. A stage returns no
/// complete result only when it reported an error; should that ever not hold,
/// the tree is still refused, not run, and the refusal says so.
fn refused(manifest: &Manifest, mut errors: Vec<ManifestError>) -> CheckError {
    if errors.is_empty() {
        errors.push(ManifestError::new(
            None,
            format!(
                "{}: the check did not complete, though it found no error (a bug in nanoproc)",
                manifest.path.display()
            ),
        ));
    }
    CheckError::Refused(ManifestErrors(errors))
}

impl Plan {
    /// Whether a stop ([`crate::Interrupt`], a whole-run timeout) reaches a guest
    /// that is computing in wasm, not only one waiting in a host call: its engine
    /// compiles epoch checks (see [`crate::Runtime::with_interruption`]).
    pub fn interrupts_wasm(&self) -> bool {
        self.inner.epochs
    }

    /// Whether the engine has concurrency support: some nanoprocess is async
    /// (WASI 0.3). Every call between stores then costs more (docs/BENCHMARKS.md);
    /// a plan without an async nanoprocess never pays it.
    pub fn has_concurrency_support(&self) -> bool {
        self.inner.concurrency
    }

    /// Whether the root is a command (exports `wasi:cli/run`), which
    /// [`Plan::start`] runs; a plugin's root may instead be a library, whose
    /// exports a host calls through [`Plan::plugin`].
    pub fn is_command(&self) -> bool {
        self.inner.root_run.is_some()
    }

    /// What the user should know about how the plan was prepared (such as a
    /// compile cache left unused); `nanoproc` prints each on stderr.
    pub fn notices(&self) -> &[String] {
        &self.inner.notices
    }

    /// The nanoprocess and granted directory through which a guest could reach
    /// host `path` (a file nanoproc is to write, such as the `--audit` log), if
    /// any: every directory is compared where it really is, as opened.
    pub fn grant_reaching(&self, path: &Path) -> Option<String> {
        self.reaching(path, 0)
    }

    /// Whether this is one component granted by flags, not a manifest's tree.
    pub fn is_single_component(&self) -> bool {
        self.inner.single_component
    }

    /// The manifest's text as it was read and checked; `None` for a single
    /// component.
    pub fn manifest_source(&self) -> Option<&str> {
        self.inner.source.as_deref()
    }

    /// Like [`Plan::grant_reaching`], among the directories the dependencies hold
    /// (not the root's, which are the user's own grant).
    pub fn dependency_grant_reaching(&self, path: &Path) -> Option<String> {
        self.reaching(path, 1)
    }

    /// The first directory, of the nanoprocesses after the first `skip`, through
    /// which `path` can be reached: every directory compared where it really is.
    fn reaching(&self, path: &Path, skip: usize) -> Option<String> {
        let resolved = grants::absolute_keeping_last(path).ok()?;
        self.inner.nodes.iter().skip(skip).find_map(|node| {
            node.caps.fs.iter().zip(&node.dirs).find_map(|(d, opened)| {
                let host = opened.host_path();
                resolved.starts_with(&host).then(|| {
                    format!(
                        "`{}` holds {} (host {})",
                        node.path,
                        d.guest,
                        host.display()
                    )
                })
            })
        })
    }

    /// The nanoprocesses, root first, then depth-first.
    pub fn nodes(&self) -> &[PlannedNode] {
        &self.inner.nodes
    }

    /// The tree with each nanoprocess's effective capabilities, as `check` prints it.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        // Depth-first with an explicit stack (a node, the prefix of its lines, and
        // whether it is its parent's last child); children are pushed last first, so
        // that they come out in order.
        let mut stack = vec![(0usize, String::new(), true)];
        while let Some((ix, prefix, last)) = stack.pop() {
            let child_prefix = self.describe_node(ix, &prefix, last, &mut out);
            let children = self.tree_children(ix);
            for (i, &c) in children.iter().enumerate().rev() {
                stack.push((c, child_prefix.clone(), i + 1 == children.len()));
            }
        }
        out
    }

    /// The children of node `ix` in the tree, isolated and fused, in the
    /// manifest's order (a store's children are another matter: an isolated
    /// child of a fused nanoprocess is called from its store's host).
    pub fn tree_children(&self, ix: usize) -> Vec<usize> {
        (0..self.inner.nodes.len())
            .filter(|&c| self.inner.nodes[c].parent == Some(ix))
            .collect()
    }

    /// Describes one nanoprocess; returns the prefix of its children's lines.
    fn describe_node(&self, ix: usize, prefix: &str, last: bool, out: &mut String) -> String {
        let node = &self.inner.nodes[ix];
        let (branch, child_prefix) = match node.parent {
            None => (String::new(), String::new()),
            Some(_) if last => (format!("{prefix}└─ "), format!("{prefix}   ")),
            Some(_) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
        };
        let kind = if node.was_core_module {
            " (WASI preview 1 module, adapted)"
        } else if node.is_async {
            " (async: WASI 0.3)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{branch}{}  [{}{kind}]\n",
            node.path,
            display_path(&node.component_path)
        ));
        let detail_prefix = if self.tree_children(ix).is_empty() {
            format!("{child_prefix}    ")
        } else {
            format!("{child_prefix}│   ")
        };
        for (family, text) in node.capability_summary() {
            out.push_str(&format!("{detail_prefix}{family:<8}{text}\n"));
        }
        if let Some(parent) = node.parent.map(|p| &self.inner.nodes[p]) {
            for serve in &node.serves {
                out.push_str(&format!(
                    "{detail_prefix}serves  {} to {}\n",
                    serve.export, parent.path
                ));
            }
        }
        if let Placement::FusedInto { host } = node.placement {
            out.push_str(&format!(
                "{detail_prefix}fused   into {}'s store: its own capabilities, its parent's fault domain and limits\n",
                self.inner.nodes[host].path
            ));
        } else if node.parent.is_some() {
            let failure = match node.on_failure {
                OnFailure::Trap => "traps its parent's call",
                OnFailure::Error => {
                    "an `err` to its parent where the function returns result<_, string>, else a trap"
                }
            };
            let restart = node.restart.map_or("never restarted".to_string(), |r| {
                format!(
                    "restarted up to {} times within {}",
                    r.max,
                    nanoproc_caps::format_millis(r.within_ms)
                )
            });
            out.push_str(&format!("{detail_prefix}failure {failure}; {restart}\n"));
        }
        child_prefix
    }
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}
