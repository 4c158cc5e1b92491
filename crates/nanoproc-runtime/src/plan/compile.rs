//! Stage 3: components. An engine is chosen for what the tree's capabilities need
//! ([`EngineChoice`]: fuel counting, epoch checks, a pool), then every component
//! file is read, digest-checked and compiled once (a WASI preview 1 core module is
//! adapted into a component first), classified (which imports are WASI, which
//! must come from a dependency) and linked (see [`super::link`]), once per file,
//! whatever the number of nanoprocesses it backs.
//!
//! Compilation runs even for nodes whose grants were refused: a component that
//! is not one is worth reporting beside a grant error. What it found is a
//! [`Components`]: per node, its compiled file or `None` where an error was
//! reported.

use super::read::{Unreadable, is_core_module, open_component};
use crate::cache::Origin;
use crate::engine::{EngineChoice, Pool};
use crate::interfaces::{self, FuncSig};
use crate::progress::{CompileProgress, ProgressHook};
use crate::state::NanoState;
use nanoproc_caps::{Capabilities, LimitKind};
use nanoproc_manifest::{Manifest, ManifestError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre};

/// A component file, compiled and classified.
pub(crate) struct Compiled {
    pub component: Component,
    /// The SHA-256 of the bytes compiled (those read once, which digest pins and
    /// the lock are checked against).
    pub digest: [u8; 32],
    /// Imports that are not WASI: each must be satisfied by a dependency. Their order
    /// is the order of the "slots" the trampolines and [`NanoState::routes`] use.
    pub dep_imports: Vec<DepImport>,
    /// Imports that are neither provided WASI nor instances, and why it cannot be
    /// linked: reported for every node the file backs.
    pub import_problems: Vec<String>,
    /// The name of its `wasi:cli/run` export, if it is a command.
    pub run_export: Option<String>,
    /// Linked, when the component's own imports are well formed; otherwise why
    /// not is among `import_problems` or in a `dep_imports` entry.
    pub linked: Option<InstancePre<NanoState>>,
    pub was_core_module: bool,
    /// It uses the Component Model's async features (a WASI 0.3 component): its
    /// store is driven with wasmtime's `*_async` calls (see `crate::drive`).
    pub is_async: bool,
    /// Its resource types, named by the interfaces that define them.
    pub names: interfaces::ResourceNames,
}

pub(crate) struct DepImport {
    pub name: String,
    /// The functions of the interface, or why it cannot cross a boundary.
    pub funcs: Result<Vec<FuncSig>, interfaces::Uncrossable>,
    /// The resources the interface defines: the parent holds proxies of them.
    pub resources: Vec<String>,
}

/// How a check compiles components: what its [`crate::Runtime`] was configured
/// with.
#[derive(Clone, Copy)]
pub(crate) struct Compiler<'a> {
    /// The engine for a configuration, made once per runtime.
    pub engine_for: &'a dyn Fn(EngineChoice) -> wasmtime::Result<Engine>,
    /// Every plan compiles epoch checks, whatever its time limits.
    pub interruptible: bool,
    pub cache: &'a crate::cache::CompileCache,
    /// The largest component file read, in bytes.
    pub max_component_size: u64,
    /// Told of each file compiled.
    pub progress: Option<&'a ProgressHook>,
    /// The capability families the host registered: their interfaces are linked
    /// like WASI's.
    pub host: &'a crate::families::host::HostFamilies,
    /// The trust roots of outgoing HTTPS requests, handed to the plan.
    pub http: &'a std::sync::Arc<crate::families::http::Client>,
    /// Trees are made per request, this many alive at once (`Plan::serve`): the
    /// engine pools slots for them, whatever the tree's size (see `pool_for`).
    pub pool_trees: Option<usize>,
}

/// What stage 3 found.
pub(super) struct Components {
    pub engine: Engine,
    /// The engine counts fuel: some nanoprocess has a fuel limit.
    pub fuel: bool,
    /// The engine compiles epoch checks: wasm can be interrupted.
    pub epochs: bool,
    /// The engine has concurrency support: some component uses async features.
    pub concurrency: bool,
    /// The engine's pooling allocator, if it has one.
    pub pool: Option<Pool>,
    /// Per node: its component, compiled and checked against its digest pin, or
    /// `None` where an error was reported.
    pub compiled: Vec<Option<Arc<Compiled>>>,
    /// What the user should know (a compile cache left unused).
    pub notices: Vec<String>,
    /// The compile cache this plan may use (none where a grant reaches it): what
    /// the composites of fused edges are compiled through too.
    pub cache: crate::cache::CompileCache,
    /// Per node: the bytes of its component, kept only where a fused edge needs
    /// them composed (the node is fused, or has a fused child). They are the very
    /// bytes compiled and digest-checked above, never a second read of the file.
    pub sources: Vec<Option<Arc<[u8]>>>,
}

/// Chooses the engine and compiles every node's component; reports every error
/// about a component in `errors`. `Err` when the engine cannot be set up: then
/// nothing could be compiled, and the fault is not the manifest's.
pub(super) fn compile_all(
    compiler: &Compiler<'_>,
    manifest: &Manifest,
    grants: &super::grants::Grants,
    errors: &mut Vec<ManifestError>,
) -> Result<Components, String> {
    let Compiler {
        engine_for,
        interruptible,
        cache,
        max_component_size,
        progress,
        host,
        http: _,
        pool_trees,
    } = *compiler;
    // The compile cache runs native code: it is used only if no nanoprocess can
    // reach it (see `cache`).
    let mut notices = Vec::new();
    let cache = match grants.root() {
        Some(root) => {
            let mut reachable: Vec<PathBuf> = root.dirs.iter().map(|d| d.host_path()).collect();
            for mode in [&root.caps.stdio.stdout, &root.caps.stdio.stderr] {
                if let Some(nanoproc_caps::OutputMode::File(f)) = mode {
                    reachable.push(f.clone());
                }
            }
            let (cache, notice) = cache.unreachable_from(&reachable);
            notices.extend(notice);
            cache
        }
        None => cache.clone(),
    };
    let cache = &cache;

    // An engine that counts fuel only if some nanoprocess has a fuel limit
    // (counting costs every guest some speed).
    let fuel = grants
        .caps()
        .any(|c| c.limits.get(LimitKind::Fuel).is_some());
    // Epoch checks only where some time limit needs them (they cost every guest
    // up to ~1.8x its time in a tight loop), or where the runtime must interrupt wasm.
    let epochs = interruptible
        || grants
            .caps()
            .any(|c| c.limits.get(LimitKind::Timeout).is_some());
    let mut choice = EngineChoice {
        fuel,
        epochs,
        pool: pool_for(
            grants.held.len(),
            grants.caps(),
            largest_fused_store(manifest),
            pool_trees,
        ),
        concurrency: None,
    };
    let engine = engine_for(choice).map_err(|e| format!("{e:#}"))?;

    // Each file is read once, through one open descriptor, and every digest pin
    // naming it is checked against exactly the bytes that are compiled: a file
    // replaced between two reads cannot give a pinned nanoprocess's grants to
    // other code.
    //
    // Files are told apart by what they are (device and inode), not by how they are
    // named: `d/c.wasm` with `d` a link to `.` is the same file as `c.wasm`, and is
    // read and compiled once.
    // The files a fused edge composes: the fused nanoprocesses' and their hosts'.
    let fused = |n: &nanoproc_manifest::Node| n.isolation == nanoproc_manifest::Isolation::Fused;
    let keep: std::collections::HashSet<&Path> = manifest
        .nodes
        .iter()
        .filter(|n| fused(n))
        .flat_map(|n| {
            let parent = n.parent.map(|p| manifest.nodes[p].component.as_path());
            [Some(n.component.as_path()), parent]
        })
        .flatten()
        .collect();
    // Concurrency support only for a plan that needs it (it makes every call
    // between stores about five times dearer): files are compiled for an engine
    // without it, and only if one of them turns out to use async features
    // (WASI 0.3) are they all compiled again for one with it. That second pass
    // reads every file again: each must be the very file the first pass read
    // (same SHA-256), or it is refused as changed while being read.
    let needs_concurrency = std::sync::atomic::AtomicBool::new(false);
    let mut files = read_and_compile_files(
        manifest,
        &engine,
        cache,
        progress,
        max_component_size,
        host,
        &keep,
        &needs_concurrency,
        false,
    );
    let mut engine = engine;
    if needs_concurrency.load(std::sync::atomic::Ordering::Relaxed) {
        choice.concurrency = Some(crate::run::depth_of(
            manifest.nodes.iter().map(|n| n.parent),
        ));
        engine = engine_for(choice).map_err(|e| format!("{e:#}"))?;
        let again = read_and_compile_files(
            manifest,
            &engine,
            cache,
            progress,
            max_component_size,
            host,
            &keep,
            &needs_concurrency,
            true,
        );
        files = same_files(files, again);
    }
    tracing::debug!(fuel, epochs, pool = ?choice.pool, concurrency = ?choice.concurrency, "engine chosen");

    // The errors, in the order of the nodes, whatever order the files were
    // compiled in: a file that does not compile is reported once, at the first
    // node naming it; one that cannot be read, at every node naming it.
    let mut reported = vec![false; files.outcomes.len()];
    let mut compiled: Vec<Option<Arc<Compiled>>> = Vec::new();
    let mut sources: Vec<Option<Arc<[u8]>>> = Vec::new();
    for node in &manifest.nodes {
        let named = files.slot_of[&node.component];
        let slot = match files.outcomes[named] {
            FileOutcome::SameFileAs(first) => first,
            _ => named,
        };
        let (digest, comp) = match &files.outcomes[slot] {
            FileOutcome::Read {
                digest,
                compiled,
                bytes,
            } => {
                sources.push(bytes.clone());
                (digest, compiled)
            }
            FileOutcome::Unreadable(unreadable) => {
                let (node_path, file) = (&node.path, node.component.display());
                let e = match unreadable {
                    Unreadable::Read { why, help } => {
                        let e = manifest.error_at(
                            Some(&node.component_span),
                            format!("{node_path}: cannot read component {file}: {why}"),
                        );
                        match help {
                            Some(help) => e.help(*help),
                            None => e,
                        }
                    }
                    // What it is instead, and what to do ("a TOML manifest; name
                    // it `*.toml`"), from `surface::recognize`.
                    Unreadable::NotWasm(what) => manifest
                        .error_at(
                            Some(&node.component_span),
                            format!("{node_path}: {}", what.explain(&file.to_string())),
                        )
                        .help(what.help()),
                };
                errors.push(e);
                compiled.push(None);
                sources.push(None);
                continue;
            }
            // Every file named twice points at the first name's slot, which holds
            // what was read; anything else would be a bug, refused rather than run.
            FileOutcome::SameFileAs(_) => {
                errors.push(manifest.error_at(
                    Some(&node.component_span),
                    format!(
                        "{}: {} was not read (a bug in nanoproc)",
                        node.path,
                        node.component.display()
                    ),
                ));
                compiled.push(None);
                sources.push(None);
                continue;
            }
        };
        let comp = match comp {
            Ok(c) => Some(c.clone()),
            Err(e) => {
                if !std::mem::replace(&mut reported[slot], true) {
                    errors.push(
                        manifest
                            .error_at(
                                Some(&node.component_span),
                                format!(
                                    "{}: {} is not a component nanoproc can run: {e}",
                                    node.path,
                                    node.component.display()
                                ),
                            )
                            .help(if e.contains("error-context feature") {
                                "nanoproc does not enable the component model's error-context \
                                 proposal: build it without `error-context` values"
                            } else {
                                "build it for wasm32-wasip2, or as a WASI preview 1 module"
                            }),
                    );
                }
                None
            }
        };
        // A preview 1 module exports no interface a parent could import: as a
        // dependency it would serve nothing. Said at its line, with how to make
        // a component of it, rather than as a missing export at the parent's.
        if node.parent.is_some() && comp.as_ref().is_some_and(|c| c.was_core_module) {
            errors.push(core_module_as_dependency(manifest, node));
            compiled.push(None);
            continue;
        }
        // The adapter's descriptor table is full beyond this many preopened
        // directories: the module would trap at its first use of a descriptor.
        if let Some(dirs) = grants.root().map(|root| root.dirs.len())
            && node.parent.is_none()
            && dirs > ADAPTER_MAX_DIRS
            && comp.as_ref().is_some_and(|c| c.was_core_module)
        {
            errors.push(too_many_dirs_for_the_adapter(manifest, node, dirs));
            compiled.push(None);
            continue;
        }
        if let Err(e) = manifest.verify_sha256(node, *digest) {
            errors.push(e);
            compiled.push(None);
            continue;
        }
        compiled.push(comp);
    }
    Ok(Components {
        engine,
        fuel,
        epochs,
        concurrency: choice.concurrency.is_some(),
        pool: choice.pool,
        compiled,
        notices,
        sources,
        cache: cache.clone(),
    })
}

/// What became of one distinct component path.
enum FileOutcome {
    /// It could not be read, or is no WebAssembly nanoproc runs.
    Unreadable(Unreadable),
    /// It is the same file (device and inode) as the path in this slot, which was
    /// read and compiled instead.
    SameFileAs(usize),
    /// Read whole: its SHA-256 (what digest pins are checked against) and its
    /// compiled form, or why it does not compile (`{:#}` of the error). The bytes
    /// themselves were dropped once compiled: a plan of many nodes keeps no file in
    /// memory longer than it takes to compile it.
    Read {
        digest: [u8; 32],
        compiled: Result<Arc<Compiled>, String>,
        /// The bytes, kept where a fused edge composes them.
        bytes: Option<Arc<[u8]>>,
    },
}

/// Every distinct component path of a manifest, read and compiled.
struct Files {
    /// The slot of each path in `outcomes`.
    slot_of: HashMap<PathBuf, usize>,
    /// One per distinct path, in the order the nodes first name them.
    outcomes: Vec<FileOutcome>,
}

/// Reads and compiles every distinct component file, several at once.
///
/// wasmtime already compiles the functions of one component in parallel (on
/// rayon's pool), but parsing, validating, linking and writing the artifact are
/// serial, and a tree of many small components spends much of its time there.
/// So distinct files are compiled on up to `available_parallelism` threads, which
/// hand their function compilation to the same rayon pool: at most that many
/// serial phases run beside the pool's workers. Each thread opens the next path,
/// and the first to open a file (by device and inode) claims it; a path that
/// turns out to be a file already claimed is only recorded as the same file. At
/// most one file per thread is open, and in memory, at a time.
// The stage's inputs, passed through from `compile_all` as they are.
#[allow(clippy::too_many_arguments)]
fn read_and_compile_files(
    manifest: &Manifest,
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    progress: Option<&ProgressHook>,
    max_component_size: u64,
    host: &crate::families::host::HostFamilies,
    keep: &std::collections::HashSet<&Path>,
    needs_concurrency: &std::sync::atomic::AtomicBool,
    concurrent: bool,
) -> Files {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let mut slot_of: HashMap<PathBuf, usize> = HashMap::new();
    let mut paths: Vec<&Path> = Vec::new();
    for node in &manifest.nodes {
        slot_of.entry(node.component.clone()).or_insert_with(|| {
            paths.push(&node.component);
            paths.len() - 1
        });
    }
    let next = AtomicUsize::new(0);
    let claimed: Mutex<HashMap<(u64, u64), usize>> = Mutex::new(HashMap::new());
    let work = || {
        let mut done = Vec::new();
        loop {
            let slot = next.fetch_add(1, Ordering::Relaxed);
            let Some(path) = paths.get(slot) else {
                return done;
            };
            let outcome = match open_component(path, max_component_size) {
                Err(unreadable) => FileOutcome::Unreadable(unreadable),
                Ok((identity, opened)) => {
                    let first = *claimed
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(identity)
                        .or_insert(slot);
                    if first != slot {
                        FileOutcome::SameFileAs(first)
                    } else {
                        match opened.read() {
                            Err(unreadable) => FileOutcome::Unreadable(unreadable),
                            Ok(bytes) => {
                                let digest: [u8; 32] =
                                    <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
                                let is_async =
                                    !is_core_module(&bytes) && super::read::uses_async(&bytes);
                                if is_async {
                                    needs_concurrency.store(true, Ordering::Relaxed);
                                }
                                // Once some file needs concurrency support, the
                                // rest are compiled in the second pass only.
                                let compiled =
                                    if !concurrent && needs_concurrency.load(Ordering::Relaxed) {
                                        Err(String::from("compiled again with concurrency support"))
                                    } else {
                                        compile_file(
                                            engine, cache, progress, host, path, &bytes, digest,
                                            is_async,
                                        )
                                        .map(Arc::new)
                                        .map_err(|e| format!("{e:#}"))
                                    };
                                let bytes = keep.contains(*path).then(|| Arc::from(bytes));
                                FileOutcome::Read {
                                    digest,
                                    compiled,
                                    bytes,
                                }
                            }
                        }
                    }
                }
            };
            done.push((slot, outcome));
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(paths.len());
    let mut finished: Vec<(usize, FileOutcome)> = if threads <= 1 {
        work()
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|i| {
                    // The main thread's stack size: parsing and adapting a
                    // component recurses as deep as it would there.
                    std::thread::Builder::new()
                        .name(format!("nanoproc-compile-{i}"))
                        .stack_size(COMPILE_STACK)
                        .spawn_scoped(scope, work)
                })
                .collect();
            let mut all = Vec::new();
            for worker in workers {
                match worker {
                    Ok(handle) => match handle.join() {
                        Ok(done) => all.extend(done),
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    // Fewer threads than hoped: those that started take the
                    // rest, and this one too.
                    Err(_) => all.extend(work()),
                }
            }
            all
        })
    };
    finished.sort_by_key(|(slot, _)| *slot);
    Files {
        slot_of,
        outcomes: finished.into_iter().map(|(_, outcome)| outcome).collect(),
    }
}

/// The outcome of the second pass over the files (see `compile_all`), where each
/// file read is the one the first pass read: a file whose bytes changed between
/// the two is refused, so that what was checked is what runs.
fn same_files(first: Files, again: Files) -> Files {
    let outcomes = first
        .outcomes
        .into_iter()
        .zip(again.outcomes)
        .map(|(before, now)| match (&before, &now) {
            (FileOutcome::Read { digest: a, .. }, FileOutcome::Read { digest: b, .. })
                if a != b =>
            {
                FileOutcome::Unreadable(Unreadable::Read {
                    why: "it changed while nanoproc read it (two reads gave different SHA-256 \
                          digests)"
                        .into(),
                    help: None,
                })
            }
            _ => now,
        })
        .collect();
    Files {
        slot_of: again.slot_of,
        outcomes,
    }
}

/// The stack of each compiling thread: the size of a main thread's.
const COMPILE_STACK: usize = 8 << 20;

/// [`compile`], with its progress reported and logged.
// What the reading worker found of the file, passed on as it is.
#[allow(clippy::too_many_arguments)]
fn compile_file(
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    progress: Option<&ProgressHook>,
    host: &crate::families::host::HostFamilies,
    path: &Path,
    bytes: &[u8],
    digest: [u8; 32],
    is_async: bool,
) -> wasmtime::Result<Compiled> {
    let began = Instant::now();
    let compiling = || {
        tracing::debug!(component = ?path, bytes = bytes.len(), "compiling");
        if let Some(hook) = progress {
            hook(&CompileProgress::Started {
                component: path.to_path_buf(),
                bytes: bytes.len() as u64,
            });
        }
    };
    let result = compile(engine, cache, host, bytes, digest, is_async, compiling);
    let took = began.elapsed();
    let cached = matches!(result, Ok((_, Origin::Cache)));
    let ms = took.as_millis() as u64;
    match &result {
        Ok((_, Origin::Compiled)) => tracing::info!(component = ?path, ms, "component compiled"),
        Ok((_, Origin::Cache)) => {
            tracing::info!(component = ?path, ms, "component loaded from the compile cache")
        }
        Err(e) => tracing::info!(
            component = ?path,
            ms,
            error = ?format!("{e:#}"),
            "component does not compile"
        ),
    }
    if let Some(hook) = progress {
        hook(&CompileProgress::Finished {
            component: path.to_path_buf(),
            took,
            cached,
        });
    }
    result.map(|(compiled, _)| compiled)
}

/// The refusal of a core module (a WASI preview 1 module) named as a dependency.
fn core_module_as_dependency(manifest: &Manifest, node: &nanoproc_manifest::Node) -> ManifestError {
    let file = node.component.display();
    manifest
        .error_at(
            Some(&node.component_span),
            format!(
                "{}: {file} is a core module (WASI preview 1), which can only be a root: a dependency must be a component that exports the interface its parent imports",
                node.path
            ),
        )
        .help(format!(
            "build it as a component (Rust: `cargo build --target wasm32-wasip2`, a `cdylib` exporting its WIT world), or wrap it: `wasm-tools component new {file} --adapt wasi_snapshot_preview1.reactor.wasm -o component.wasm` (the adapter is released with wasmtime)"
        ))
}

/// The most directories a WASI preview 1 module can be granted: wasmtime's
/// component adapter holds 128 descriptors, three of them stdin, stdout and
/// stderr, and traps when it finds more preopened directories than the rest
/// (measured: 125 run, 126 trap; wasmtime's own preview 1 has no such limit).
const ADAPTER_MAX_DIRS: usize = 125;

/// The refusal of a preview 1 root granted more directories than the adapter
/// holds.
fn too_many_dirs_for_the_adapter(
    manifest: &Manifest,
    node: &nanoproc_manifest::Node,
    dirs: usize,
) -> ManifestError {
    manifest
        .error_at(
            Some(&node.component_span),
            format!(
                "{}: {} is a WASI preview 1 module, run through wasmtime's component adapter, which holds at most {ADAPTER_MAX_DIRS} preopened directories (128 descriptors, three of them stdin, stdout and stderr); it is granted {dirs}, and would trap at its first use of a descriptor",
                node.path,
                node.component.display()
            ),
        )
        .help(format!(
            "grant at most {ADAPTER_MAX_DIRS} directories (a directory grants what is below it), or build the program as a component (for wasm32-wasip2)"
        ))
}

/// The most nanoprocesses one store's component holds: a node that is not fused,
/// with every node fused into it, at any depth.
fn largest_fused_store(manifest: &Manifest) -> u32 {
    let fused = |ix: usize| manifest.nodes[ix].isolation == nanoproc_manifest::Isolation::Fused;
    let mut per_store = vec![1u32; manifest.nodes.len()];
    // Nodes are in pre-order: a parent before its children, so counting from the
    // end adds each fused subtree to its host's count.
    for ix in (0..manifest.nodes.len()).rev() {
        if let (true, Some(parent)) = (fused(ix), manifest.nodes[ix].parent) {
            per_store[parent] = per_store[parent].saturating_add(per_store[ix]);
        }
    }
    (0..manifest.nodes.len())
        .filter(|&ix| !fused(ix))
        .map(|ix| per_store[ix])
        .max()
        .unwrap_or(1)
}

/// The pooling allocator's slots for a tree this large, or none for a small one.
///
/// A pool has a fixed number of slots: four trees of this plan can be alive at
/// once (a restart frees its old instance first), and every memory slot is as
/// large as the largest memory any nanoprocess of the tree may have.
///
/// A plan whose trees are made per request (`trees`, the most alive at once: a
/// server's concurrency) gets slots for that many trees whatever its size: its
/// instances are made and dropped at the rate of requests, where the pool's
/// recycled memories and instance state are cheaper than the on-demand
/// allocator's mappings (docs/cli.md, `nanoproc serve`). Unless they would not fit
/// (see below): then the on-demand allocator, which has no slots to run out of.
fn pool_for<'a>(
    nodes: usize,
    caps: impl Iterator<Item = &'a Capabilities> + Clone,
    nanoprocesses_per_component: u32,
    trees: Option<usize>,
) -> Option<Pool> {
    // Every memory slot reserves about 4 GiB of address space whatever its limit
    // (wasmtime's reservation for bounds checks by guard pages): beyond about a
    // thousand nanoprocesses the pool would not fit in the address space, and the
    // on-demand allocator, which reserves per instance, serves the tree instead.
    let instances = match trees {
        Some(trees) => {
            let instances = nodes.saturating_mul(trees.max(1));
            if instances > crate::engine::POOL_UP_TO.saturating_mul(4) {
                return None;
            }
            instances
        }
        None if (crate::engine::POOL_FROM..=crate::engine::POOL_UP_TO).contains(&nodes) => {
            nodes.saturating_mul(4)
        }
        None => return None,
    };
    const WASM32_MAX: u64 = 1 << 32;
    let largest = |kind: LimitKind, unlimited: u64| {
        caps.clone()
            .map(|c| c.limits.get(kind).unwrap_or(unlimited))
            .max()
            .unwrap_or(unlimited)
    };
    Some(Pool {
        instances: u32::try_from(instances).unwrap_or(u32::MAX),
        max_memory: largest(LimitKind::Memory, WASM32_MAX).min(WASM32_MAX),
        table_elements: largest(LimitKind::Tables, 1_000_000).min(10_000_000),
        nanoprocesses_per_component,
        keep_resident: if trees.is_some() { KEEP_RESIDENT } else { 0 },
    })
}

/// What a memory or table slot of a per-request pool keeps resident, zeroed in
/// place, when its instance is dropped: enough for a small handler's stack and
/// heap, so that its next request neither faults its pages in again nor makes the
/// kernel flush every thread's TLB to take them away. The pool has two memory
/// slots per instance slot, so a server of 32 trees of one nanoprocess keeps at
/// most 128 MiB resident this way (in practice what its handlers touched).
const KEEP_RESIDENT: u64 = 2 << 20;

/// Compiles a component, or adapts and compiles a WASI preview 1 core module;
/// `compiling` is called if it is really compiled (not found in the cache).
fn compile(
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    host: &crate::families::host::HostFamilies,
    bytes: &[u8],
    digest: [u8; 32],
    is_async: bool,
    compiling: impl FnOnce(),
) -> wasmtime::Result<(Compiled, Origin)> {
    let is_core = is_core_module(bytes);
    let (component, origin) = if is_core {
        let adapted = wit_component::ComponentEncoder::default()
            .module(bytes)
            .and_then(|e| {
                e.adapter(
                    "wasi_snapshot_preview1",
                    wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
                )
            })
            .and_then(|e| e.validate(true).encode())
            .map_err(|e| wasmtime::format_err!("adapting the WASI preview 1 module: {e:#}"))?;
        cache.load_or_compile(engine, &adapted, compiling)?
    } else {
        cache.load_or_compile(engine, bytes, compiling)?
    };
    let compiled = describe(
        engine,
        host,
        component,
        digest,
        is_core,
        is_async,
        &NamedImports::none(),
    );
    Ok((compiled, origin))
}

/// The imports of a composite (see `fuse`) that belong to fused nanoprocesses,
/// each bound to one of them: by import name, the position of its nanoprocess
/// in the store's personas (`NanoState::fused`).
#[derive(Clone, Default)]
pub(crate) struct NamedImports {
    pub by_name: HashMap<String, usize>,
    /// The composite's names of fused nanoprocesses' imports of their own
    /// isolated dependencies, with the interface each stands for.
    pub renamed: HashMap<String, String>,
    /// For each of `by_name`: the import as the fused nanoprocess's component
    /// wrote it (the version the composite encodes may be a merged one).
    pub originals: HashMap<String, String>,
}

impl NamedImports {
    fn none() -> Self {
        Self::default()
    }
}

/// Compiles a composite made by `fuse` (through the compile cache, by its own
/// digest) and links it, its named imports bound to the personas `named` says.
pub(crate) fn compile_composite(
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    host: &crate::families::host::HostFamilies,
    bytes: &[u8],
    named: &NamedImports,
) -> wasmtime::Result<Compiled> {
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(bytes).into();
    let (component, _) = cache.load_or_compile(engine, bytes, || {
        tracing::debug!(bytes = bytes.len(), "compiling a fused composite");
    })?;
    Ok(describe(
        engine, host, component, digest, false, false, named,
    ))
}

/// What a compiled component imports and exports, and its linking.
fn describe(
    engine: &Engine,
    host: &crate::families::host::HostFamilies,
    component: wasmtime::component::Component,
    digest: [u8; 32],
    is_core: bool,
    is_async: bool,
    named: &NamedImports,
) -> Compiled {
    let ty = component.component_type();
    let names = interfaces::ResourceNames::of(engine, &ty);
    let mut dep_imports = Vec::new();
    let mut import_problems = Vec::new();
    for (name, ext) in ty.imports(engine) {
        match ext.ty {
            ComponentItem::ComponentInstance(_)
                if crate::families::provides(name)
                    || host.serves(name)
                    || named.by_name.contains_key(name) => {}
            ComponentItem::ComponentInstance(_) if name.starts_with("wasi:") => import_problems
                .push(format!(
                    "imports {name}, a WASI interface nanoproc does not provide (it provides {})",
                    crate::families::provided()
                )),
            ComponentItem::ComponentInstance(inst) => {
                let sig = interfaces::instance_funcs(engine, name, &inst, &names);
                dep_imports.push(DepImport {
                    name: name.to_string(),
                    resources: sig
                        .as_ref()
                        .map(|s| s.resources.clone())
                        .unwrap_or_default(),
                    funcs: sig.map(|s| s.funcs),
                })
            }
            _ => import_problems.push(format!(
                "imports `{name}`, which is not an interface; nanoproc links interfaces only"
            )),
        }
    }
    // A WASI 0.3 command exports `run` at 0.3 (and, built with Rust's std for
    // wasm32-wasip2, often at 0.2 as well): it runs as the 0.3 program it is.
    let runs: Vec<&str> = ty
        .exports(engine)
        .map(|(name, _)| name)
        .filter(|name| interfaces::names_match(name, "wasi:cli/run"))
        .collect();
    let run_at = |version: &str| {
        runs.iter()
            .find(|n| n.contains(version))
            .map(|n| n.to_string())
    };
    let run_export = if is_async {
        run_at("@0.3.").or_else(|| run_at("@0.2."))
    } else {
        run_at("@0.2.")
    };
    let mut compiled = Compiled {
        component,
        digest,
        dep_imports,
        import_problems,
        run_export,
        linked: None,
        was_core_module: is_core,
        is_async,
        names,
    };
    let linkable =
        compiled.import_problems.is_empty() && compiled.dep_imports.iter().all(|d| d.funcs.is_ok());
    if linkable {
        match super::link::link(engine, &compiled, host, named) {
            Ok(pre) => compiled.linked = Some(pre),
            Err(e) => compiled
                .import_problems
                .push(format!("cannot be linked: {e:#}")),
        }
    }
    compiled
}
