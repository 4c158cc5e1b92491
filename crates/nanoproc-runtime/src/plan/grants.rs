//! Stage 2: capabilities, top-down. The root's come from the user's grants, each
//! child's are carved out of its parent's by [`Capabilities::attenuate`]; the
//! directories they confer are opened (a root grant by the path the user gave,
//! every other directory through its parent's open one), the root's output files
//! are opened, and no two directories of the tree may overlap so that a file
//! could gain rights by being moved from one into the other.
//!
//! The stage checks every node even when some fail, because later stages still
//! check what they can (a wiring error is worth reporting beside a grant error):
//! [`Grants`] is what it found, node by node, and [`Grants::into_granted`] the
//! complete result, which exists only if the stage reported nothing.

use crate::families::OutputFiles;
use crate::families::fs::dirs::{self, OpenedDir, PlanDirs};
use nanoproc_caps::{Capabilities, DirSource, GrantRequest, Region};
use nanoproc_manifest::{Manifest, ManifestError, Node};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many overlapping grants `check` lists one by one.
const OVERLAPS_REPORTED: usize = 20;

/// What one nanoprocess holds: its capabilities and the directories they name,
/// opened.
#[derive(Clone)]
pub(super) struct Held {
    pub caps: Capabilities,
    /// One per `caps.fs`, in order, opened when the plan was checked.
    pub dirs: Vec<OpenedDir>,
}

/// What stage 2 found: for each node, what it holds, or `None` where an error was
/// reported (its own grants or directories, or its parent holds nothing and it was
/// not checked against it).
pub(super) struct Grants {
    pub held: Vec<Option<Held>>,
    /// The root's output files, opened; `None` if the root holds nothing or they
    /// could not be opened (reported).
    root_outputs: Option<OutputFiles>,
    /// Every directory held, where it really is: (holder, real path, rights).
    regions: Vec<(usize, PathBuf, nanoproc_caps::FsRights)>,
    /// The stage reported no error.
    clean: bool,
}

/// Stage 2, complete: every nanoprocess holds what its grants say, within its
/// parent's, with every directory opened, and no two directories overlap.
pub(super) struct Granted {
    /// By node, in the manifest's order.
    pub held: Vec<Held>,
    pub root_outputs: OutputFiles,
    /// Where every directory of the plan is, shared by every node.
    pub plan_dirs: Arc<PlanDirs>,
}

impl Grants {
    /// The capabilities of every node that holds any.
    pub fn caps(&self) -> impl Iterator<Item = &Capabilities> + Clone {
        self.held.iter().flatten().map(|h| &h.caps)
    }

    /// What the root holds, if its grants were accepted.
    pub fn root(&self) -> Option<&Held> {
        self.held.first()?.as_ref()
    }

    /// The complete result, if the stage reported no error.
    pub fn into_granted(self, manifest: &Manifest) -> Option<Granted> {
        if !self.clean {
            return None;
        }
        let held = self.held.into_iter().collect::<Option<Vec<Held>>>()?;
        let plan_dirs = Arc::new(PlanDirs {
            regions: self.regions,
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
        Some(Granted {
            held,
            root_outputs: self.root_outputs?,
            plan_dirs,
        })
    }
}

/// Derives every node's capabilities, opens what they name and checks that no
/// two directories overlap; reports every error found in `errors`.
pub(super) fn grant(
    manifest: &Manifest,
    root_args: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
    mode: super::GrantMode,
    host: &crate::families::host::HostFamilies,
    errors: &mut Vec<ManifestError>,
) -> Grants {
    // Host-defined capabilities are granted under the rules of the families the
    // runtime registered; one it does not know is refused by name.
    let rule_of = |name: &str| host.rule_of(name);
    let reported_before = errors.len();
    // Nodes are in pre-order: a parent before its children.
    let mut held: Vec<Option<Held>> = Vec::with_capacity(manifest.nodes.len());
    for node in &manifest.nodes {
        let parent = node.parent.map(|p| held[p].as_ref());
        let caps = match parent {
            None => root_caps(manifest, node, root_args, host_env, &rule_of, errors),
            Some(None) => None, // the parent's own grants are wrong: reported there
            Some(Some(parent)) => match parent.caps.attenuate(&match mode {
                super::GrantMode::AsWritten => {
                    let mut request = node.grants.clone();
                    nanoproc_caps::host::resolve(&mut request.host, rule_of);
                    request
                }
                super::GrantMode::Learning => learning_request(&parent.caps, &node.grants),
            }) {
                Ok(c) => Some(c),
                Err(violations) => {
                    report_violations(manifest, node, violations, errors);
                    None
                }
            },
        };
        // A fused nanoprocess runs under its store's limits (the manifest refuses
        // limits of its own): it holds its parent's, which are its store's (a
        // fused parent holds its own parent's, and so on up to the store's host),
        // and its own `output`, which bounds each of its own streams. So what it
        // is said to hold is what holds it, and an isolated child of it is carved
        // out of the store's limits, never out of defaults no one enforces.
        let caps = caps.map(|mut caps| {
            if let (nanoproc_manifest::Isolation::Fused, Some(Some(parent))) =
                (node.isolation, parent)
            {
                for kind in nanoproc_caps::LimitKind::ALL {
                    if kind != nanoproc_caps::LimitKind::Output {
                        caps.limits.set(kind, parent.caps.limits.get(kind));
                    }
                }
            }
            caps
        });
        // A nanoprocess whose directories cannot all be opened holds nothing: its
        // children are not checked against it.
        let mine = caps.and_then(|caps| {
            let dirs = open_dirs(manifest, node, &caps, parent.flatten(), errors)?;
            Some(Held { caps, dirs })
        });
        held.push(mine);
    }

    // The root's output files, like its directories, are opened once.
    let root_outputs = match (held.first(), manifest.nodes.first()) {
        (Some(Some(root)), Some(node)) => match OutputFiles::open(&root.caps.stdio) {
            Ok(files) => Some(files),
            Err(e) => {
                errors.push(manifest.error_at(
                    node.grants_span.as_ref(),
                    format!("{}: cannot open its output file {e}", node.path),
                ));
                None
            }
        },
        _ => None,
    };

    let regions = check_overlaps(manifest, &held, errors);
    Grants {
        held,
        root_outputs,
        regions,
        clean: errors.len() == reported_before,
    }
}

/// Opens the directories `caps` confers on `node`: a root's by the path the user
/// gave, a child's through its parent's open ones. `None` if any cannot be opened
/// (each reported).
fn open_dirs(
    manifest: &Manifest,
    node: &Node,
    caps: &Capabilities,
    parent: Option<&Held>,
    errors: &mut Vec<ManifestError>,
) -> Option<Vec<OpenedDir>> {
    let results = match parent {
        None => dirs::open_root(&caps.fs),
        Some(parent) => dirs::open_child(&parent.dirs, &caps.fs),
    };
    let mut ok = Vec::with_capacity(results.len());
    // The directories match the grants one to one, so `i` is also the index of
    // the grant that asked.
    for (i, (result, dir)) in results.into_iter().zip(&caps.fs).enumerate() {
        match result {
            Ok(d) => ok.push(d),
            Err(e) => {
                let what = match (&dir.derived, parent) {
                    (Some(from), Some(parent)) => {
                        let mut from_path =
                            parent.caps.fs[from.parent_dir].guest.as_str().to_string();
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
    (ok.len() == caps.fs.len()).then_some(ok)
}

/// Reports every pair of directories of the tree that overlap so that a file
/// could be moved or linked from one into the other and gain rights there;
/// returns every directory held, where it really is.
fn check_overlaps(
    manifest: &Manifest,
    held: &[Option<Held>],
    errors: &mut Vec<ManifestError>,
) -> Vec<(usize, PathBuf, nanoproc_caps::FsRights)> {
    let real: Vec<Vec<PathBuf>> = held
        .iter()
        .map(|h| {
            h.iter()
                .flat_map(|h| &h.dirs)
                .map(OpenedDir::host_path)
                .collect()
        })
        .collect();
    // Every directory held, with the grant that confers it: `regions[i]` is
    // `granted[i]`.
    let granted: Vec<(Region<'_>, &nanoproc_caps::DirCap)> = held
        .iter()
        .zip(&real)
        .enumerate()
        .filter_map(|(node, (h, paths))| Some((node, &h.as_ref()?.caps, paths)))
        .flat_map(|(node, c, paths)| {
            c.fs.iter()
                .zip(paths)
                .enumerate()
                .map(move |(dir, (d, host))| {
                    let region = Region {
                        owner: node,
                        dir,
                        host,
                        rights: d.rights,
                    };
                    (region, d)
                })
        })
        .collect();
    let regions: Vec<Region<'_>> = granted.iter().map(|(r, _)| r.clone()).collect();
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
        let ((outer, o_cap), (inner, i_cap)) = (&granted[l.outer], &granted[l.inner]);
        let (o_node, i_node) = (&manifest.nodes[outer.owner], &manifest.nodes[inner.owner]);
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
    regions
        .iter()
        .map(|r| (r.owner, r.host.to_path_buf(), r.rights))
        .collect()
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

fn root_caps(
    manifest: &Manifest,
    node: &Node,
    root_args: &[String],
    host_env: &dyn Fn(&str) -> Option<String>,
    host_rule: &dyn Fn(&str) -> Option<nanoproc_caps::ScopeRule>,
    errors: &mut Vec<ManifestError>,
) -> Option<Capabilities> {
    // The user's grants name host directories relative to the manifest. Each is
    // made absolute here with its parent directory resolved; its last component is
    // left as named, because the runtime opens it without following a symbolic
    // link (see `families::fs::dirs`).
    let mut req: GrantRequest = node.grants.clone();
    nanoproc_caps::host::resolve(&mut req.host, host_rule);
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
pub(super) fn absolute_keeping_last(path: &Path) -> std::io::Result<PathBuf> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => {
            Ok(parent.canonicalize()?.join(name))
        }
        (Some(_), Some(name)) => Ok(std::env::current_dir()?.join(name)),
        _ => path.canonicalize(),
    }
}

/// What a dependency asks for while it is learnt: everything its parent holds,
/// keeping what its manifest gives it as data (limits, arguments, frozen clocks)
/// or where (its directories' guest paths).
fn learning_request(parent: &Capabilities, written: &GrantRequest) -> GrantRequest {
    parent.everything(written)
}
