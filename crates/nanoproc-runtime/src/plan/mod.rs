//! From a manifest to a checked, linked tree: everything `nanoproc check` verifies,
//! and everything `run` needs prepared before the first instance exists.
//!
//! The stages, each reporting every error it finds before the next one runs:
//!
//! 1. [`Manifest::load`]: syntax, names, tree shape, files, digest syntax.
//! 2. Capabilities, top-down: the root's from the user's grants, each child's carved
//!    out of its parent's by [`Capabilities::attenuate`]; derived directories opened.
//! 3. Components: read, digest-checked, compiled once per file (a WASI preview 1
//!    core module is adapted into a component first).
//!    Each is linked here, once per file: one `Linker` and `InstancePre` with a
//!    trampoline for every function of every dependency import, shared by every
//!    nanoprocess the file backs.
//! 4. Wiring: every import of every nanoprocess is a WASI interface nanoproc provides
//!    or a dependency whose export has the same type; every dependency names an
//!    import.

use crate::families::fs::dirs::{self, OpenedDir};
use crate::interfaces::{self, FuncSig};
use crate::state::NanoState;
use crate::trampoline::{Route, forward};
use nanoproc_caps::{Capabilities, DirSource, GrantRequest, LimitKind, Region};
use nanoproc_manifest::{Manifest, ManifestError, ManifestErrors, Node, OnFailure, Restart};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker};

/// A component file, compiled and classified.
pub(crate) struct Compiled {
    pub component: Component,
    /// Imports that are not WASI: each must be satisfied by a dependency. Their order
    /// is the order of the "slots" the trampolines and [`NanoState::routes`] use.
    pub dep_imports: Vec<DepImport>,
    /// Imports that are neither provided WASI nor instances: reported per node.
    pub import_problems: Vec<String>,
    /// The name of its `wasi:cli/run` export, if it is a command.
    pub run_export: Option<String>,
    /// Linked when the component's own imports are well formed (otherwise the
    /// reason is among `import_problems` or in a `dep_imports` entry).
    pub pre: Option<InstancePre<NanoState>>,
    pub was_core_module: bool,
    /// Its resource types, named by the interfaces that define them.
    pub names: interfaces::ResourceNames,
}

pub(crate) struct DepImport {
    pub name: String,
    /// The functions of the interface, or why it cannot cross a boundary.
    pub funcs: Result<Vec<FuncSig>, String>,
    /// The resources the interface defines: the parent holds proxies of them.
    pub resources: Vec<String>,
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
    pub(crate) plan_dirs: Arc<dirs::PlanDirs>,
    pub component_path: PathBuf,
    pub(crate) compiled: Arc<Compiled>,
    /// For each dependency slot of its component: the index (in the plan) of the child
    /// that serves it.
    pub(crate) slot_child: Vec<usize>,
    /// Its distinct children, in the order they are instantiated.
    pub children: Vec<usize>,
    /// For a child: the parent's slots it serves, with the export that serves each.
    pub(crate) serves: Vec<(usize, String)>,
    /// How its failures reach its parent, and whether it is restarted.
    pub on_failure: OnFailure,
    pub restart: Option<Restart>,
}

/// A checked tree, ready to run any number of times.
pub struct Plan {
    pub(crate) inner: Arc<PlanInner>,
}

pub(crate) struct PlanInner {
    pub engine: Engine,
    pub nodes: Vec<PlannedNode>,
    /// The engine counts fuel: some nanoprocess has a fuel limit.
    pub fuel: bool,
    /// The engine compiles epoch checks: wasm can be interrupted.
    pub epochs: bool,
    /// What the user should know about how the plan was prepared.
    pub notices: Vec<String>,
    /// Started with the first tree, shared by every tree of the plan.
    pub ticker: std::sync::OnceLock<crate::interrupt::Ticker>,
}

/// A component file as read (once) and compiled, if it compiles.
/// The file's SHA-256 (what digest pins are checked against) and its compiled form.
/// The bytes themselves are dropped once compiled: a plan of many nodes keeps no
/// file in memory longer than it takes to compile it.
type ReadOnce = ([u8; 32], Option<Arc<Compiled>>);

/// The largest component file a [`crate::Runtime`] reads unless configured
/// otherwise (`Runtime::with_max_component_size`, `--max-component-size`). Real
/// components are a few MiB; interpreters compiled with their standard library,
/// tens. Every check and run reads the file whole and compiles it, so the cap is
/// what a file can cost nanoproc's memory before compilation starts.
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 256 << 20;

/// How many overlapping grants `check` lists one by one.
const OVERLAPS_REPORTED: usize = 20;

/// Checks a manifest (already parsed) and prepares it to run.
pub(crate) fn plan(
    engine_for: &dyn Fn(crate::engine::EngineChoice) -> wasmtime::Result<Engine>,
    interruptible: bool,
    cache: &crate::cache::CompileCache,
    manifest: &Manifest,
    root_args: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
    max_component_size: u64,
) -> Result<Plan, ManifestErrors> {
    let mut errors: Vec<ManifestError> = Vec::new();

    // 2. Capabilities, top-down (nodes are in pre-order: a parent before its
    // children), and the directories they confer opened: a root grant by the path
    // the user gave, every other directory through its parent's open one.
    let mut caps: Vec<Option<Capabilities>> = Vec::with_capacity(manifest.nodes.len());
    let mut opened: Vec<Option<Vec<OpenedDir>>> = Vec::with_capacity(manifest.nodes.len());
    for node in &manifest.nodes {
        let held = match node.parent {
            None => root_caps(manifest, node, root_args, host_env, &mut errors),
            Some(p) => match &caps[p] {
                None => None, // the parent's own grants are wrong: reported there
                Some(parent_caps) => match parent_caps.attenuate(&node.grants) {
                    Ok(c) => Some(c),
                    Err(violations) => {
                        report_violations(manifest, node, violations, &mut errors);
                        None
                    }
                },
            },
        };
        let dirs = held.as_ref().and_then(|c| {
            let results = match node.parent {
                None => dirs::open_root(&c.fs),
                Some(p) => dirs::open_child(opened[p].as_deref()?, &c.fs),
            };
            let mut ok = Vec::with_capacity(results.len());
            // The directories match the grants one to one, so `i` is also the
            // index of the grant that asked.
            for (i, (result, dir)) in results.into_iter().zip(&c.fs).enumerate() {
                match result {
                    Ok(d) => ok.push(d),
                    Err(e) => {
                        let parent_dirs = node.parent.and_then(|p| caps[p].as_ref());
                        let what = match (&dir.derived, parent_dirs) {
                            (Some(from), Some(pc)) => {
                                let mut from_path =
                                    pc.fs[from.parent_dir].guest.as_str().to_string();
                                for c in &from.below_parent {
                                    from_path.push('/');
                                    from_path.push_str(c);
                                }
                                from_path
                            }
                            _ => dir.host.display().to_string(),
                        };
                        errors.push(manifest.error_at(
                            node.grants.fs.get(i).and_then(|d| d.span.as_ref()),
                            format!("{}: grant fs[{i}]: cannot open {what}: {e}", node.path),
                        ));
                    }
                }
            }
            (ok.len() == c.fs.len()).then_some(ok)
        });
        // A nanoprocess whose directories cannot all be opened holds nothing: its
        // children are not checked against it.
        caps.push(if dirs.is_some() { held } else { None });
        opened.push(dirs);
    }

    // The root's output files, like its directories, are opened once.
    let mut outputs = vec![crate::families::OutputFiles::default(); manifest.nodes.len()];
    if let (Some(root), Some(node)) = (&caps[0], manifest.nodes.first()) {
        match crate::families::OutputFiles::open(&root.stdio) {
            Ok(files) => outputs[0] = files,
            Err(e) => errors.push(manifest.error_at(
                node.grants_span.as_ref(),
                format!("{}: cannot open its output file {e}", node.path),
            )),
        }
    }

    // No two directories of the tree may overlap so that a file could be moved or
    // linked from one into the other and gain rights there.
    let real: Vec<Vec<PathBuf>> = opened
        .iter()
        .map(|d| d.iter().flatten().map(OpenedDir::host_path).collect())
        .collect();
    let regions: Vec<Region<'_>> = caps
        .iter()
        .zip(&real)
        .enumerate()
        .filter_map(|(node, (c, paths))| Some((node, c.as_ref()?, paths)))
        .flat_map(|(node, c, paths)| {
            c.fs.iter()
                .zip(paths)
                .enumerate()
                .map(move |(dir, (d, host))| Region {
                    owner: node,
                    dir,
                    host,
                    rights: d.rights,
                })
        })
        .collect();
    // Each overlap is reported where it is granted, up to a point: a manifest of
    // many children granted the same overlapping pair would otherwise print one
    // error per pair (hundreds of megabytes for a thousand children).
    let overlaps = nanoproc_caps::laundering(&regions);
    if overlaps.len() > OVERLAPS_REPORTED {
        errors.push(ManifestError::new(
            None,
            format!(
                "{} more grants overlap as the {OVERLAPS_REPORTED} below do; they are not listed one by one",
                overlaps.len() - OVERLAPS_REPORTED
            ),
        ));
    }
    for l in overlaps.into_iter().take(OVERLAPS_REPORTED) {
        let (outer, inner) = (&regions[l.outer], &regions[l.inner]);
        let (o_node, i_node) = (&manifest.nodes[outer.owner], &manifest.nodes[inner.owner]);
        let o_cap = &caps[outer.owner]
            .as_ref()
            .expect("a region has capabilities")
            .fs[outer.dir];
        let i_cap = &caps[inner.owner]
            .as_ref()
            .expect("a region has capabilities")
            .fs[inner.dir];
        let whose = if outer.owner == inner.owner {
            format!("its {}", i_cap.guest)
        } else {
            format!("`{}`'s {}", i_node.path, i_cap.guest)
        };
        errors.push(
            manifest
                .error_at(
                    o_node.grants.fs.get(outer.dir).and_then(|d| d.span.as_ref()),
                    format!(
                        "{}: grant fs[{}] ({} as {}) may create or rename in {}, which contains {whose} ({}); a file moved or linked there would gain {}",
                        o_node.path,
                        outer.dir,
                        o_cap.guest,
                        o_cap.rights,
                        outer.host.display(),
                        inner.host.display(),
                        l.gained
                    ),
                )
                .help("grant the outer directory without `create` and `rename`, or grant the inner one no more than the outer"),
        );
    }

    // The compile cache runs native code: it is used only if no nanoprocess can
    // reach it (see `cache`).
    let mut notices = Vec::new();
    let cache = match &opened[..] {
        [Some(root_dirs), ..] => {
            let mut reachable: Vec<PathBuf> = root_dirs.iter().map(OpenedDir::host_path).collect();
            if let Some(root) = &caps[0] {
                for mode in [&root.stdio.stdout, &root.stdio.stderr] {
                    if let Some(nanoproc_caps::OutputMode::File(f)) = mode {
                        reachable.push(f.clone());
                    }
                }
            }
            let (cache, notice) = cache.unreachable_from(&reachable);
            notices.extend(notice);
            cache
        }
        _ => cache.clone(),
    };
    let cache = &cache;

    // 3. Components, once per file, for an engine that counts fuel only if some
    // nanoprocess has a fuel limit (counting costs every guest some speed).
    let fuel = caps
        .iter()
        .flatten()
        .any(|c| c.limits.get(LimitKind::Fuel).is_some());
    // Epoch checks only where some time limit needs them (they cost every guest
    // a few percent of its speed), or where the runtime must interrupt wasm.
    let epochs = interruptible
        || caps
            .iter()
            .flatten()
            .any(|c| c.limits.get(LimitKind::Timeout).is_some());
    let choice = crate::engine::EngineChoice {
        fuel,
        epochs,
        pool: pool_for(&caps),
    };
    let engine = &match engine_for(choice) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ManifestError::new(
                None,
                format!("cannot set up the WebAssembly engine: {e:#}"),
            ));
            return Err(ManifestErrors(errors));
        }
    };
    // Each file is read once, through one open descriptor, and every digest pin
    // naming it is checked against exactly the bytes that are compiled: a file
    // replaced between two reads cannot give a pinned nanoprocess's grants to
    // other code.
    //
    // Files are told apart by what they are (device and inode), not by how they are
    // named: `d/c.wasm` with `d` a link to `.` is the same file as `c.wasm`, and is
    // read and compiled once.
    let mut by_file: HashMap<PathBuf, Result<ReadOnce, Unreadable>> = HashMap::new();
    let mut by_identity: HashMap<(u64, u64), ReadOnce> = HashMap::new();
    let mut compiled: Vec<Option<Arc<Compiled>>> = Vec::new();
    for node in &manifest.nodes {
        let entry = by_file.entry(node.component.clone()).or_insert_with(|| {
            let (identity, opened) = open_component(&node.component, max_component_size)?;
            if let Some(known) = by_identity.get(&identity) {
                return Ok(known.clone());
            }
            let bytes = opened.read()?;
            let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&bytes).into();
            let comp = match compile(engine, cache, &bytes) {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    errors.push(
                        manifest
                            .error_at(
                                Some(&node.component_span),
                                format!(
                                    "{}: {} is not a component nanoproc can run: {e:#}",
                                    node.path,
                                    node.component.display()
                                ),
                            )
                            .help("build it for wasm32-wasip2, or as a WASI preview 1 module"),
                    );
                    None
                }
            };
            drop(bytes);
            by_identity.insert(identity, (digest, comp.clone()));
            Ok((digest, comp))
        });
        let (digest, comp) = match entry {
            Ok(found) => found,
            Err(unreadable) => {
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
                    Unreadable::NotWasm(why) => manifest
                        .error_at(
                            Some(&node.component_span),
                            format!(
                                "{node_path}: {file} is not a component nanoproc can run: {why}"
                            ),
                        )
                        .help("build it for wasm32-wasip2, or as a WASI preview 1 module"),
                };
                errors.push(e);
                compiled.push(None);
                continue;
            }
        };
        if let Err(e) = manifest.verify_sha256(node, *digest) {
            errors.push(e);
            compiled.push(None);
            continue;
        }
        compiled.push(comp.clone());
    }

    // 4. Wiring.
    let mut slot_child: Vec<Vec<usize>> = vec![Vec::new(); manifest.nodes.len()];
    let mut serves: Vec<Vec<(usize, String)>> = vec![Vec::new(); manifest.nodes.len()];
    for (ix, node) in manifest.nodes.iter().enumerate() {
        let Some(comp) = &compiled[ix] else { continue };
        for problem in &comp.import_problems {
            errors.push(manifest.error_at(
                Some(&node.component_span),
                format!("{}: {problem}", node.path),
            ));
        }
        if node.parent.is_none() && comp.run_export.is_none() {
            errors.push(
                manifest
                    .error_at(
                        Some(&node.component_span),
                        format!(
                            "{}: the root must be a command (export wasi:cli/run), but {} is not",
                            node.path,
                            node.component.display()
                        ),
                    )
                    .help("build the root as a binary (`fn main`) for wasm32-wasip2"),
            );
        }
        let mut used = vec![false; node.deps.len()];
        for (slot, import) in comp.dep_imports.iter().enumerate() {
            let Some(dep_ix) = node
                .deps
                .iter()
                .position(|d| interfaces::names_match(&import.name, &d.interface))
            else {
                errors.push(
                    manifest
                        .error_at(
                            Some(&node.component_span),
                            format!(
                                "{}: imports {}, but no dependency provides it",
                                node.path, import.name
                            ),
                        )
                        .help(format!(
                            "add `deps = {{ \"{}\" = \"<nanoprocess>\" }}` to [nanoprocess.{}]",
                            import.name, node.name
                        )),
                );
                continue;
            };
            used[dep_ix] = true;
            let dep = &node.deps[dep_ix];
            let child = &manifest.nodes[dep.child];
            slot_child[ix].push(dep.child);
            let import_funcs = match &import.funcs {
                Ok(f) => f,
                Err(why) => {
                    errors.push(manifest.error_at(
                        Some(&dep.span),
                        format!(
                            "{}: cannot import {} from `{}`: {why}",
                            node.path, import.name, child.path
                        ),
                    ));
                    continue;
                }
            };
            let Some(child_comp) = &compiled[dep.child] else {
                continue;
            };
            match check_export(engine, comp, import, import_funcs, child_comp) {
                Ok(export_name) => serves[dep.child].push((slot, export_name)),
                Err(why) => errors.push(manifest.error_at(
                    Some(&dep.span),
                    format!(
                        "{}: its import {} cannot be satisfied by `{}`: {why}",
                        node.path, import.name, child.path
                    ),
                )),
            }
        }
        for (dep, used) in node.deps.iter().zip(used) {
            if !used {
                let imports: Vec<&str> = comp.dep_imports.iter().map(|d| d.name.as_str()).collect();
                errors.push(
                    manifest
                        .error_at(
                            Some(&dep.span),
                            format!(
                                "{}: `{}` is given for {}, but {} does not import that interface",
                                node.path,
                                manifest.nodes[dep.child].name,
                                dep.interface,
                                node.component.display()
                            ),
                        )
                        .help(if imports.is_empty() {
                            "it imports no interfaces besides WASI".to_string()
                        } else {
                            format!("its imports besides WASI: {}", imports.join(", "))
                        }),
                );
            }
        }
    }

    if !errors.is_empty() {
        return Err(ManifestErrors(errors));
    }

    notices.extend(unbounded_memory_notice(manifest, &caps, physical_memory()));

    let plan_dirs = Arc::new(dirs::PlanDirs {
        regions: regions
            .iter()
            .map(|r| (r.owner, r.host.to_path_buf(), r.rights))
            .collect(),
        lineage: (0..manifest.nodes.len())
            .map(|ix| {
                let mut mine = vec![ix];
                let mut up = manifest.nodes[ix].parent;
                while let Some(p) = up {
                    mine.push(p);
                    up = manifest.nodes[p].parent;
                }
                mine
            })
            .collect(),
    });
    let nodes = manifest
        .nodes
        .iter()
        .enumerate()
        .map(|(ix, node)| {
            let mut children: Vec<usize> = Vec::new();
            for &c in &slot_child[ix] {
                if !children.contains(&c) {
                    children.push(c);
                }
            }
            PlannedNode {
                name: node.name.clone(),
                path: node.path.as_str().into(),
                parent: node.parent,
                caps: caps[ix].clone().expect("checked above"),
                dirs: opened[ix].clone().expect("checked above"),
                outputs: outputs[ix].clone(),
                index: ix,
                plan_dirs: plan_dirs.clone(),
                component_path: node.component.clone(),
                compiled: compiled[ix].clone().expect("checked above"),
                slot_child: slot_child[ix].clone(),
                children,
                serves: serves[ix].clone(),
                on_failure: node.on_failure,
                restart: node.restart,
            }
        })
        .collect();
    Ok(Plan {
        inner: Arc::new(PlanInner {
            engine: engine.clone(),
            nodes,
            fuel,
            epochs,
            notices,
            ticker: std::sync::OnceLock::new(),
        }),
    })
}

/// Reports every way a dependency's grants exceed its parent's.
fn report_violations(
    manifest: &Manifest,
    node: &Node,
    violations: Vec<nanoproc_caps::Violation>,
    errors: &mut Vec<ManifestError>,
) {
    let Some(p) = node.parent else { return };
    let parent = &manifest.nodes[p];
    for v in violations {
        // A grant compared with the parent's exceeds it; one refused for its own
        // form (syntax, `..`) just is.
        let relation = if v.parent_grant.is_some() {
            format!(" exceeds what its parent `{}` holds", parent.path)
        } else {
            String::new()
        };
        let mut e = manifest.error_at(
            v.span.as_ref().or(node.grants_span.as_ref()),
            format!(
                "{}: grant {} ({}){relation}: {}",
                node.path, v.item, v.grant, v.reason
            ),
        );
        if let Some(pg) = v.parent_grant {
            e = e.help(format!("`{}` holds: {pg}", parent.path));
        }
        errors.push(e);
    }
}

/// The most linear memory a tree's dependencies may hold at once under a root
/// without a memory limit: the sum of the root's children's memory limits, or
/// `None` if one of them has none.
///
/// Every growth of a linear memory is charged to its nanoprocess's budget and to
/// each ancestor's (`limits::NanoLimiter`), so a memory limit bounds its whole
/// subtree, whatever the limits below it say (they are within it anyway). The
/// subtrees of the root's children are disjoint, so together they hold at most the
/// sum of those children's limits, and that sum is reached when each of them is at
/// its limit (a limit deeper down is already counted in its ancestor's). A
/// dependency always has a limit, its own or the child default (256 MiB) capped by
/// its parent's; under an unlimited root, that is 256 MiB for every child that
/// says nothing. The root's own memory has no bound at all.
fn dependencies_memory_bound(parents_and_limits: &[(Option<usize>, Option<u64>)]) -> Option<u64> {
    parents_and_limits
        .iter()
        .filter(|(parent, _)| *parent == Some(0))
        .try_fold(0u64, |sum, (_, limit)| Some(sum.saturating_add((*limit)?)))
}

/// The memory nanoproc can have: the machine's physical memory (`MemTotal` in
/// `/proc/meminfo`), or the limit of the control group it runs in, if smaller (in
/// a container, the machine's memory says little). `None` where the kernel does not
/// say, and then no notice compares anything with it.
fn physical_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    let total = kib.checked_mul(1024)?;
    Some(cgroup_memory_limit().map_or(total, |limit| limit.min(total)))
}

/// The memory limit of this process's control group: cgroup v2's `memory.max`, or
/// v1's `memory.limit_in_bytes`, read where `/proc/self/cgroup` says the group is.
/// "max" (v2) and the huge number v1 uses for "none" are no limit.
fn cgroup_memory_limit() -> Option<u64> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let candidates = groups.lines().filter_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            Some(Path::new("/sys/fs/cgroup").join(path).join("memory.max"))
        } else if controllers.split(',').any(|c| c == "memory") {
            Some(
                Path::new("/sys/fs/cgroup/memory")
                    .join(path)
                    .join("memory.limit_in_bytes"),
            )
        } else {
            None
        }
    });
    candidates
        .filter_map(|file| {
            std::fs::read_to_string(file)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        })
        .filter(|&limit| limit < 1 << 60)
        .min()
}

/// A notice when the root has no memory limit and its dependencies, each at its
/// limit, may take more memory than the machine has (`physical`): nothing but the
/// root's own limit bounds the tree, and by default the root has none.
fn unbounded_memory_notice(
    manifest: &Manifest,
    caps: &[Option<Capabilities>],
    physical: Option<u64>,
) -> Option<String> {
    let root = caps.first()?.as_ref()?;
    if root.limits.get(LimitKind::Memory).is_some() {
        return None;
    }
    let physical = physical?;
    let parents_and_limits: Vec<(Option<usize>, Option<u64>)> = manifest
        .nodes
        .iter()
        .zip(caps)
        .map(|(node, c)| {
            let limit = c.as_ref().and_then(|c| c.limits.get(LimitKind::Memory));
            (node.parent, limit)
        })
        .collect();
    let gib = |bytes: u64| format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30));
    let bound = dependencies_memory_bound(&parents_and_limits);
    let at_most = match bound {
        Some(b) if b <= physical => return None,
        Some(b) => format!("up to {}", gib(b)),
        None => "without bound".to_string(),
    };
    Some(format!(
        "the root `{}` has no memory limit, and its dependencies may together take {at_most} of linear memory (each at its own limit, the default being 256 MiB), more than this machine's {}; set `grants.memory` on the root to bound the whole tree (a memory limit bounds a nanoprocess and everything below it)",
        manifest.nodes[0].path,
        gib(physical)
    ))
}

/// The pooling allocator's slots for a tree this large, or none for a small one.
///
/// A pool has a fixed number of slots: four trees of this plan can be alive at
/// once (a restart frees its old instance first), and every memory slot is as
/// large as the largest memory any nanoprocess of the tree may have.
fn pool_for(caps: &[Option<Capabilities>]) -> Option<crate::engine::Pool> {
    // Every memory slot reserves about 4 GiB of address space whatever its limit
    // (wasmtime's reservation for bounds checks by guard pages): beyond about a
    // thousand nanoprocesses the pool would not fit in the address space, and the
    // on-demand allocator, which reserves per instance, serves the tree instead.
    if !(crate::engine::POOL_FROM..=crate::engine::POOL_UP_TO).contains(&caps.len()) {
        return None;
    }
    const WASM32_MAX: u64 = 1 << 32;
    let largest = |kind: LimitKind, unlimited: u64| {
        caps.iter()
            .flatten()
            .map(|c| c.limits.get(kind).unwrap_or(unlimited))
            .max()
            .unwrap_or(unlimited)
    };
    Some(crate::engine::Pool {
        instances: u32::try_from(caps.len().saturating_mul(4)).unwrap_or(u32::MAX),
        max_memory: largest(LimitKind::Memory, WASM32_MAX).min(WASM32_MAX),
        table_elements: largest(LimitKind::Tables, 1_000_000).min(10_000_000),
    })
}

fn root_caps(
    manifest: &Manifest,
    node: &Node,
    root_args: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<ManifestError>,
) -> Option<Capabilities> {
    // The user's grants name host directories relative to the manifest. Each is
    // made absolute here with its parent directory resolved; its last component is
    // left as named, because the runtime opens it without following a symbolic
    // link (see `families::fs::dirs`).
    let mut req: GrantRequest = node.grants.clone();
    let mut ok = true;
    for (i, d) in req.fs.iter_mut().enumerate() {
        if let DirSource::Host(h) = &d.source {
            let joined = manifest.dir.join(h);
            match absolute_keeping_last(&joined) {
                Ok(abs) => d.source = DirSource::Host(abs),
                Err(e) => {
                    ok = false;
                    errors.push(manifest.error_at(
                        node.grants.fs.get(i).and_then(|d| d.span.as_ref()),
                        format!(
                            "{}: grant fs[{i}]: host directory {}: {e}",
                            node.path,
                            joined.display()
                        ),
                    ));
                }
            }
        }
    }
    req.env.args.extend(root_args.iter().cloned());
    // Output files, like directories, are named relative to the manifest.
    for switch in [&mut req.stdio.stdout, &mut req.stdio.stderr] {
        if let Some(nanoproc_caps::OutputMode::File(f)) = &mut switch.held {
            *f = manifest.dir.join(&*f);
        }
    }
    match Capabilities::for_root(&req, host_env) {
        Ok(c) if ok => Some(c),
        Ok(_) => None,
        Err(violations) => {
            for v in violations {
                errors.push(manifest.error_at(
                    v.span.as_ref().or(node.grants_span.as_ref()),
                    format!(
                        "{}: grant {} ({}): {}",
                        node.path, v.item, v.grant, v.reason
                    ),
                ));
            }
            None
        }
    }
}

/// `path` absolute, its parent resolved (symbolic links included), its last
/// component as named. A path ending in `.` or `..` is resolved whole.
fn absolute_keeping_last(path: &Path) -> std::io::Result<PathBuf> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            Ok(parent.canonicalize()?.join(name))
        }
        (Some(_), Some(name)) => Ok(std::env::current_dir()?.join(name)),
        _ => path.canonicalize(),
    }
}

/// Compiles a component, or adapts and compiles a WASI preview 1 core module.
fn compile(
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    bytes: &[u8],
) -> wasmtime::Result<Compiled> {
    let is_core = is_core_module(bytes);
    let component = if is_core {
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
        cache.load_or_compile(engine, &adapted)?
    } else {
        cache.load_or_compile(engine, bytes)?
    };
    let ty = component.component_type();
    let names = interfaces::ResourceNames::of(engine, &ty);
    let mut dep_imports = Vec::new();
    let mut import_problems = Vec::new();
    for (name, ext) in ty.imports(engine) {
        match ext.ty {
            ComponentItem::ComponentInstance(_) if crate::families::provides(name) => {}
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
    let run_export = ty
        .exports(engine)
        .map(|(name, _)| name)
        .find(|name| interfaces::names_match(name, "wasi:cli/run") && name.contains("@0.2."))
        .map(str::to_string);
    let mut compiled = Compiled {
        component,
        dep_imports,
        import_problems,
        run_export,
        pre: None,
        was_core_module: is_core,
        names,
    };
    let linkable =
        compiled.import_problems.is_empty() && compiled.dep_imports.iter().all(|d| d.funcs.is_ok());
    if linkable {
        match link(engine, &compiled) {
            Ok(pre) => compiled.pre = Some(pre),
            Err(e) => compiled
                .import_problems
                .push(format!("cannot be linked: {e:#}")),
        }
    }
    Ok(compiled)
}

/// The first four bytes of every WebAssembly binary.
const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// What follows the magic in a core module: version 1, layer 0.
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];
/// What follows it in a component: the component model's version 0x0d, layer 1
/// (the encoding wasmtime 48 reads).
const COMPONENT_VERSION: [u8; 4] = [0x0d, 0, 1, 0];

fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == WASM_MAGIC && bytes[4..8] == CORE_MODULE_VERSION
}

/// Why a component file was not read whole.
enum Unreadable {
    /// Its kind, its size or the system refused it, and what the user can do.
    Read {
        why: String,
        help: Option<&'static str>,
    },
    /// Its header says it is no component or module nanoproc runs.
    NotWasm(String),
}

impl From<std::io::Error> for Unreadable {
    fn from(e: std::io::Error) -> Self {
        Unreadable::Read {
            why: e.to_string(),
            help: None,
        }
    }
}

/// The refusal of a component path that names something other than a regular file.
fn not_a_regular_file(kind: std::fs::FileType) -> Unreadable {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Unreadable::Read {
        why: format!("it is {what}; a component is a regular file"),
        help: None,
    }
}

/// Reads a component file whole, once it is known to be worth reading: a regular
/// file of at most `max` bytes that starts like a component or a core module.
///
/// The file is the user's, but it may be anything: a sparse file of a terabyte
/// (which would cost that much memory at every check and run), a FIFO (whose read
/// would wait forever for a writer), `/dev/zero` (endless), or a file that another
/// program is still writing. So the size and kind come from the open descriptor
/// (what is checked is what is read), the header is checked before the rest is
/// read, and the read itself stops one byte past `max`, for a file that grows in
/// between.
#[cfg(test)]
fn read_component(path: &Path, max: u64) -> Result<Vec<u8>, Unreadable> {
    let (_, opened) = open_component(path, max)?;
    opened.read()
}

/// A component file opened and found worth reading (a regular file, within the
/// size cap), not read yet.
struct OpenedComponent {
    file: std::fs::File,
    len: u64,
    max: u64,
}

/// Opens a component file for [`read_component`], and tells what file it is
/// (device and inode), so that a file reached by several names is read once.
fn open_component(path: &Path, max: u64) -> Result<((u64, u64), OpenedComponent), Unreadable> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // Opening is not always harmless: opening some devices acts (a watchdog device
    // arms, a tape rewinds). So the kind is checked on the path first and only a
    // regular file is opened, then checked again on the open descriptor, for a
    // file swapped in between. Opening a FIFO swapped in waits for a writer unless
    // O_NONBLOCK is given; on a regular file the flag changes nothing (reads block
    // briefly on the disk whatever it says, see open(2)).
    let named = std::fs::metadata(path)?;
    if !named.file_type().is_file() {
        return Err(not_a_regular_file(named.file_type()));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_a_regular_file(meta.file_type()));
    }
    let identity = (meta.dev(), meta.ino());
    if meta.len() > max {
        return Err(too_large(max, &nanoproc_caps::format_bytes(meta.len())));
    }
    Ok((
        identity,
        OpenedComponent {
            file,
            len: meta.len(),
            max,
        },
    ))
}

fn too_large(max: u64, size: &str) -> Unreadable {
    Unreadable::Read {
        why: format!(
            "it is {size}, more than the {} a component may be",
            nanoproc_caps::format_bytes(max)
        ),
        help: Some("raise the limit with --max-component-size (Runtime::with_max_component_size)"),
    }
}

impl OpenedComponent {
    /// Reads the file whole: its header first, then the rest, never more than one
    /// byte past the cap (the size checked may be stale).
    fn read(self) -> Result<Vec<u8>, Unreadable> {
        use std::io::Read;
        let OpenedComponent { file, len, max } = self;
        let mut reader = (&file).take(max.saturating_add(1));
        let mut header = [0u8; 8];
        let mut got = 0;
        while got < header.len() {
            match reader.read(&mut header[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let header = &header[..got];
        let (magic, version) = header.split_at(got.min(4));
        if header.is_empty() {
            return Err(Unreadable::NotWasm("it is empty".into()));
        }
        if magic != WASM_MAGIC {
            return Err(Unreadable::NotWasm(format!(
                "it is not WebAssembly: it starts with {}, not with `\\0asm` (00 61 73 6d)",
                hex_bytes(header)
            )));
        }
        if version.len() < COMPONENT_VERSION.len() {
            return Err(Unreadable::NotWasm(format!(
                "it ends within its header ({})",
                hex_bytes(header)
            )));
        }
        if version != COMPONENT_VERSION && version != CORE_MODULE_VERSION {
            return Err(Unreadable::NotWasm(format!(
                "it is WebAssembly of a version and layer nanoproc does not run ({}; a component has {}, a core module {})",
                hex_bytes(version),
                hex_bytes(&COMPONENT_VERSION),
                hex_bytes(&CORE_MODULE_VERSION)
            )));
        }
        // At most `max` bytes are reserved: the size checked above may be stale.
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        bytes.extend_from_slice(header);
        reader.read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            // It grew after its size was checked.
            return Err(too_large(max, "longer as it is read"));
        }
        Ok(bytes)
    }
}

/// `00 61 73 6d`, for messages about headers.
fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Finds the child's export for the parent's `import` and checks it resource by
/// resource and function by function.
fn check_export(
    engine: &Engine,
    parent: &Compiled,
    import: &DepImport,
    wanted: &[FuncSig],
    child: &Compiled,
) -> Result<String, String> {
    let import_name = import.name.as_str();
    let ty = child.component.component_type();
    let (export_name, export) = ty
        .exports(engine)
        .find(|(name, _)| {
            interfaces::names_match(name, import_name) || interfaces::names_match(import_name, name)
        })
        .ok_or_else(|| {
            let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
            format!(
                "it does not export {import_name} (it exports: {})",
                if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                }
            )
        })?;
    let ComponentItem::ComponentInstance(inst) = export.ty else {
        return Err(format!("its export {export_name} is not an interface"));
    };
    let have = interfaces::instance_funcs(engine, export_name, &inst, &child.names)?;
    let mut problems = Vec::new();
    for r in &import.resources {
        if !have.resources.contains(r) {
            problems.push(format!("resource `{r}` is missing"));
        }
    }
    for w in wanted {
        match have.funcs.iter().find(|h| h.name == w.name) {
            None => problems.push(format!(
                "function `{}` is missing (expected {})",
                w.name,
                interfaces::wit_func_in(&w.ty, Some(&parent.names))
            )),
            Some(h) if !interfaces::funcs_equal(&w.ty, &parent.names, &h.ty, &child.names) => {
                problems.push(format!(
                    "function `{}` has the wrong type: the import expects {}, the export is {}",
                    w.name,
                    interfaces::wit_func_in(&w.ty, Some(&parent.names)),
                    interfaces::wit_func_in(&h.ty, Some(&child.names))
                ))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(export_name.to_string())
    } else {
        Err(problems.join("; "))
    }
}

/// The linker of one component: every capability family's interfaces, each
/// through its guard, and a trampoline for every function of every dependency
/// import.
fn link(engine: &Engine, comp: &Compiled) -> wasmtime::Result<InstancePre<NanoState>> {
    let mut linker: Linker<NanoState> = Linker::new(engine);
    crate::families::add_to_linker(&mut linker)?;
    for (slot, import) in comp.dep_imports.iter().enumerate() {
        let funcs = import
            .funcs
            .as_ref()
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let mut instance = linker.instance(&import.name)?;
        // Each resource the interface defines becomes a host type of its own in
        // this linker: the parent holds proxies, the resource stays in the child.
        let mut proxies: Vec<(String, u32)> = Vec::new();
        for resource in &import.resources {
            let ty = crate::handles::new_proxy_type();
            proxies.push((resource.clone(), ty));
            let route = Route {
                slot,
                func: usize::MAX,
                name: format!("{}#[resource-drop]{resource}", import.name),
                // A failing destructor under `on-failure = "error"` is not the
                // parent's error: it is recorded, not raised.
                string_error: true,
                handles: None,
            };
            instance.resource(
                resource,
                wasmtime::component::ResourceType::host_dynamic(ty),
                move |cx, rep| crate::handles::drop_proxy(cx, &route, rep),
            )?;
        }
        let iface = interfaces::split_version(&import.name).0;
        for (index, f) in funcs.iter().enumerate() {
            let walk = |t: &wasmtime::component::types::Type| {
                crate::handles::Walk::of(t, &comp.names, iface, &proxies)
            };
            let handles = crate::handles::Handles {
                params: f.ty.params().map(|(_, t)| walk(&t)).collect(),
                results: f.ty.results().map(|t| walk(&t)).collect(),
            };
            let passes_handles = handles
                .params
                .iter()
                .chain(&handles.results)
                .any(crate::handles::Walk::carries_handles);
            let route = Route {
                slot,
                func: index,
                name: format!("{}#{}", import.name, f.name),
                string_error: interfaces::has_string_error(&f.ty),
                handles: passes_handles.then(|| Arc::new(handles)),
            };
            if !passes_handles
                && crate::fastpath::link_typed(&mut instance, &f.name, &f.ty, &route)?
            {
                continue;
            }
            instance.func_new(&f.name, move |cx, _ty, params, results| {
                forward(cx, &route, params, results)
            })?;
        }
    }
    linker.instantiate_pre(&comp.component)
}

impl Plan {
    /// Whether a stop ([`crate::Interrupt`], a whole-run timeout) reaches a guest
    /// that is computing in wasm, not only one waiting in a host call: its engine
    /// compiles epoch checks (see [`crate::Runtime::with_interruption`]).
    pub fn interrupts_wasm(&self) -> bool {
        self.inner.epochs
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
        let resolved = absolute_keeping_last(path).ok()?;
        self.inner.nodes.iter().find_map(|node| {
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
            let children = &self.inner.nodes[ix].children;
            for (i, &c) in children.iter().enumerate().rev() {
                stack.push((c, child_prefix.clone(), i + 1 == children.len()));
            }
        }
        out
    }

    /// Describes one nanoprocess; returns the prefix of its children's lines.
    fn describe_node(&self, ix: usize, prefix: &str, last: bool, out: &mut String) -> String {
        let node = &self.inner.nodes[ix];
        let (branch, child_prefix) = match node.parent {
            None => (String::new(), String::new()),
            Some(_) if last => (format!("{prefix}└─ "), format!("{prefix}   ")),
            Some(_) => (format!("{prefix}├─ "), format!("{prefix}│  ")),
        };
        let kind = if node.compiled.was_core_module {
            " (WASI preview 1 module, adapted)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{branch}{}  [{}{kind}]\n",
            node.path,
            display_path(&node.component_path)
        ));
        let detail_prefix = if node.children.is_empty() {
            format!("{child_prefix}    ")
        } else {
            format!("{child_prefix}│   ")
        };
        for (family, text) in node.caps.summary_lines() {
            // Directories as they were opened: the handle is what the nanoprocess
            // gets, whatever its path says now.
            let text = if family == "fs" && !node.dirs.is_empty() {
                node.caps
                    .fs
                    .iter()
                    .zip(&node.dirs)
                    .map(|(d, opened)| {
                        format!(
                            "{} ({}) = host {}",
                            d.guest,
                            d.rights,
                            opened.host_path().display()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                text
            };
            out.push_str(&format!("{detail_prefix}{family:<8}{text}\n"));
        }
        for (_, export) in &node.serves {
            let parent = &self.inner.nodes[node.parent.unwrap()];
            out.push_str(&format!(
                "{detail_prefix}serves  {export} to {}\n",
                parent.path
            ));
        }
        if node.parent.is_some() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn why(path: &Path, max: u64) -> String {
        match read_component(path, max) {
            Ok(bytes) => panic!("read {} bytes of {}", bytes.len(), path.display()),
            Err(Unreadable::Read { why, .. } | Unreadable::NotWasm(why)) => why,
        }
    }

    #[test]
    fn only_regular_files_with_a_wasm_header_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let component = file("c.wasm", b"\0asm\x0d\x00\x01\x00rest");
        assert_eq!(read_component(&component, 12).ok().unwrap().len(), 12);
        assert!(why(&component, 11).contains("it is 12 B, more than the 11 B"));
        let module = file("m.wasm", b"\0asm\x01\x00\x00\x00");
        assert!(read_component(&module, 8).is_ok());
        let elf = file("elf.wasm", b"\x7fELF\x02\x01\x01\x00");
        assert!(why(&elf, 100).contains("it starts with 7f 45 4c 46 02 01 01 00"));
        let old = file("old.wasm", b"\0asm\x0a\x00\x01\x00");
        assert!(why(&old, 100).contains("(0a 00 01 00;"));
        assert!(why(&file("short.wasm", b"\0asm\x01"), 100).contains("ends within its header"));
        assert_eq!(why(&file("empty.wasm", b""), 100), "it is empty");
        assert!(why(dir.path(), 100).contains("a directory"));
        assert!(why(Path::new("/dev/zero"), u64::MAX).contains("a character device"));
        let fifo = dir.path().join("fifo.wasm");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // With no writer, a blocking open would wait here forever.
        assert!(why(&fifo, 100).contains("a FIFO"));
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn the_dependencies_bound_is_the_sum_of_the_roots_childrens_limits() {
        // root ─┬─ a (256 MiB) ── a1 (100 MiB, within a's, so not counted again)
        //       └─ b (64 MiB)
        let tree = [
            (None, None),
            (Some(0), Some(256 * MIB)),
            (Some(1), Some(100 * MIB)),
            (Some(0), Some(64 * MIB)),
        ];
        assert_eq!(dependencies_memory_bound(&tree), Some(320 * MIB));
        assert_eq!(dependencies_memory_bound(&tree[..1]), Some(0));
        let unlimited_child = [(None, None), (Some(0), None)];
        assert_eq!(dependencies_memory_bound(&unlimited_child), None);
        let huge = [(None, None), (Some(0), Some(u64::MAX)), (Some(0), Some(1))];
        assert_eq!(dependencies_memory_bound(&huge), Some(u64::MAX));
    }
}
