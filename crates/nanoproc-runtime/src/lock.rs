//! `nanoproc.lock`: what was approved for each nanoprocess of a manifest, so
//! that a dependency that starts asking for more is noticed before it runs.
//!
//! For every nanoprocess, by its path in the tree: its component file (as the
//! manifest names it) and digest, its capability surface (the families and WASI
//! interfaces its imports can ask for, from [`crate::surface`], versions cut to
//! `major.minor` so that a patch release of a toolchain is no change), and its
//! grants as the manifest writes them. The file is TOML, sorted, one table per
//! nanoprocess, so that a change reads as a small diff in code review.
//!
//! [`Lock::compare`] says how a tree differs from its lock. A component rebuilt
//! with the same surface and grants is a warning: rebuilding one's own code is
//! normal. A surface that grew (the usual shape of a supply-chain attack: a new
//! version of a dependency starts importing sockets), grants that differ, or a
//! nanoprocess added or removed are refused until the lock is updated after
//! review; with `--locked` (for CI) every difference is.
//!
//! A digest pin in the manifest (`digest = "sha256:..."`) is a different promise:
//! this exact file, or nothing. The lock accepts a rebuilt file and watches what
//! it can ask for.

use crate::plan::Plan;
use crate::surface::{self, Surface};
use nanoproc_caps::toml_string;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The version of the lock's format this nanoproc writes and reads.
pub const LOCK_VERSION: i64 = 1;

/// The lock of a manifest: `nanoproc.toml`'s is `nanoproc.lock`, beside it. Never
/// the manifest itself (`app.lock`'s would be `app.lock.lock`).
pub fn lock_path(manifest: &Path) -> std::path::PathBuf {
    if manifest.extension().is_some_and(|e| e == "lock") {
        let mut name = manifest.as_os_str().to_owned();
        name.push(".lock");
        return name.into();
    }
    manifest.with_extension("lock")
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// By path in the tree.
    pub nodes: BTreeMap<String, LockedNode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockedNode {
    /// The component file, as the manifest names it.
    pub component: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The capability families its imports can ask for, sorted.
    pub families: Vec<String>,
    /// The WASI interfaces behind them, `major.minor` versions, sorted.
    pub interfaces: Vec<String>,
    /// Its grants as the manifest writes them: each key's value in canonical
    /// TOML.
    pub grants: BTreeMap<String, String>,
    /// The exports through which it serves its parent, sorted: which child
    /// serves which import is part of what was approved (swapped, a call meant
    /// for one child would reach another, with other grants).
    pub serves: Vec<String>,
    /// Whether it runs in a store of its own or fused into its parent's: the
    /// same capabilities either way, but a fused one shares its parent's fault
    /// domain and limits, which is part of what was approved too.
    pub fused: bool,
}

/// How a tree differs from its lock, for one nanoprocess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub nanoprocess: String,
    pub kind: DifferenceKind,
    /// What changed, in words.
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DifferenceKind {
    /// The component file changed, and what it can ask for did not.
    Rebuilt,
    /// It can ask for less than was approved.
    SurfaceShrank,
    /// It can ask for more than was approved.
    SurfaceGrew,
    /// Its grants are not those approved.
    GrantsChanged,
    /// It serves its parent through other exports than those approved.
    WiringChanged,
    /// It is fused where an isolated edge was approved, or the other way round.
    IsolationChanged,
    /// A nanoprocess the lock does not know.
    Added,
    /// A nanoprocess of the lock that the tree no longer has.
    Removed,
}

impl Difference {
    /// Whether it refuses the tree: a grown surface, changed grants or a changed
    /// tree always do; with `locked`, every difference does.
    pub fn refuses(&self, locked: bool) -> bool {
        locked
            || !matches!(
                self.kind,
                DifferenceKind::Rebuilt | DifferenceKind::SurfaceShrank
            )
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` {}", self.nanoprocess, self.detail)
    }
}

/// `wasi:clocks/wall-clock@0.2.12` as `wasi:clocks/wall-clock@0.2`: a patch
/// release is no change of what can be asked for.
fn without_patch(name: &str) -> String {
    match name.rsplit_once('@') {
        Some((base, version)) => {
            let core = version.split(['-', '+']).next().unwrap_or(version);
            let parts: Vec<&str> = core.split('.').collect();
            let kept = if parts.first() == Some(&"0") {
                parts.iter().take(2).copied().collect::<Vec<_>>().join(".")
            } else {
                parts.first().copied().unwrap_or(core).to_string()
            };
            format!("{base}@{kept}")
        }
        None => name.to_string(),
    }
}

impl LockedNode {
    /// The entry of a component with `surface`, named `component` in the
    /// manifest, granted `grants` (canonical TOML per key).
    pub fn new(
        component: String,
        surface: &Surface,
        grants: BTreeMap<String, String>,
        mut serves: Vec<String>,
        fused: bool,
    ) -> Self {
        serves.sort();
        let mut families: Vec<String> = surface
            .families
            .iter()
            .filter(|f| f.family != "io")
            .map(|f| f.family.clone())
            .collect();
        families.sort();
        families.dedup();
        let mut interfaces: Vec<String> = surface
            .families
            .iter()
            .flat_map(|f| f.interfaces.iter().map(|i| without_patch(i)))
            .collect();
        interfaces.sort();
        interfaces.dedup();
        Self {
            component,
            digest: surface.digest.clone(),
            families,
            interfaces,
            grants,
            serves,
            fused,
        }
    }
}

impl Lock {
    /// The lock of a checked tree: each nanoprocess's component read and inspected
    /// again (within `max_size` bytes), its grants as `source` (the manifest's
    /// text) writes them.
    pub fn of_plan(
        plan: &Plan,
        manifest_dir: &Path,
        source: &str,
        max_size: u64,
    ) -> Result<Lock, String> {
        let mut nodes = BTreeMap::new();
        let mut surfaces: Vec<(std::path::PathBuf, Surface)> = Vec::new();
        for node in plan.nodes() {
            let surface = match surfaces.iter().find(|(p, _)| *p == node.component_path) {
                Some((_, s)) => s.clone(),
                None => {
                    let s = surface::inspect_file(&node.component_path, max_size).map_err(|e| {
                        let (why, _) = e.explain(&node.component_path.display().to_string());
                        format!("{}: {why}", node.path)
                    })?;
                    surfaces.push((node.component_path.clone(), s.clone()));
                    s
                }
            };
            // The surface is read again from the file; what is recorded and
            // compared must be what was compiled and will run.
            let compiled = format!("sha256:{}", hex::encode(node.digest));
            if surface.digest != compiled {
                return Err(format!(
                    "{}: {} changed while it was being checked; check again",
                    node.path,
                    node.component_path.display()
                ));
            }
            let component = node
                .component_path
                .strip_prefix(manifest_dir)
                .unwrap_or(&node.component_path)
                .display()
                .to_string();
            let component = component
                .strip_prefix("./")
                .map(str::to_string)
                .unwrap_or(component);
            let grants = nanoproc_manifest::edit::written_grants(source, &node.name);
            nodes.insert(
                node.path.to_string(),
                LockedNode::new(
                    component,
                    &surface,
                    grants,
                    node.serves(),
                    matches!(node.placement, crate::Placement::FusedInto { .. }),
                ),
            );
        }
        Ok(Lock { nodes })
    }

    /// Reads a lock file's text.
    pub fn parse(text: &str) -> Result<Lock, String> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            version: i64,
            #[serde(default)]
            nanoprocess: BTreeMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Entry {
            component: String,
            digest: String,
            #[serde(default)]
            families: Vec<String>,
            #[serde(default)]
            interfaces: Vec<String>,
            #[serde(default)]
            grants: toml::Table,
            #[serde(default)]
            serves: Vec<String>,
            /// Written only for a fused nanoprocess: a lock without it (every
            /// lock before fused edges) approved isolated edges.
            #[serde(default)]
            isolation: Option<String>,
        }
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.version != LOCK_VERSION {
            return Err(format!(
                "version {} is not one this nanoproc reads (it writes version {LOCK_VERSION})",
                file.version
            ));
        }
        let nodes = file
            .nanoprocess
            .into_iter()
            .map(|(path, e)| {
                let fused = match e.isolation.as_deref() {
                    None | Some("isolated") => false,
                    Some("fused") => true,
                    Some(other) => {
                        return Err(format!(
                            "nanoprocess {path:?}: isolation must be \"isolated\" or \"fused\", not {other:?}"
                        ));
                    }
                };
                let grants = e
                    .grants
                    .into_iter()
                    .map(|(k, v)| (k, nanoproc_manifest::edit::canonical(&v)))
                    .collect();
                Ok((
                    path,
                    LockedNode {
                        component: e.component,
                        digest: e.digest,
                        families: e.families,
                        interfaces: e.interfaces,
                        grants,
                        serves: e.serves,
                        fused,
                    },
                ))
            })
            .collect::<Result<_, String>>()?;
        Ok(Lock { nodes })
    }

    /// The lock as its file's text: sorted, one table per nanoprocess.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# What was approved for each nanoprocess: written by `nanoproc lock`, checked by\n\
             # `nanoproc check` and `run`. Review a change to it as a change of code.\n",
        );
        out.push_str(&format!("version = {LOCK_VERSION}\n"));
        let list = |items: &[String]| {
            if items.is_empty() {
                return "[]".to_string();
            }
            let inner: Vec<String> = items
                .iter()
                .map(|i| format!("  {},\n", toml_string(i)))
                .collect();
            format!("[\n{}]", inner.concat())
        };
        for (path, node) in &self.nodes {
            out.push_str(&format!("\n[nanoprocess.{}]\n", toml_string(path)));
            out.push_str(&format!("component = {}\n", toml_string(&node.component)));
            out.push_str(&format!("digest = {}\n", toml_string(&node.digest)));
            out.push_str(&format!("families = {}\n", list(&node.families)));
            out.push_str(&format!("interfaces = {}\n", list(&node.interfaces)));
            out.push_str(&format!("serves = {}\n", list(&node.serves)));
            if node.fused {
                out.push_str("isolation = \"fused\"\n");
            }
            let grants: Vec<String> = node
                .grants
                .iter()
                .map(|(k, v)| format!("{} = {v}", toml_key(k)))
                .collect();
            out.push_str(&format!("grants = {{ {} }}\n", grants.join(", ")).replace("{  }", "{}"));
        }
        out
    }

    /// How `now` differs from `self` (the lock), nanoprocess by nanoprocess.
    pub fn compare(&self, now: &Lock) -> Vec<Difference> {
        let mut out = Vec::new();
        for (path, locked) in &self.nodes {
            let Some(current) = now.nodes.get(path) else {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::Removed,
                    detail: "is in the lock but no longer in the tree".into(),
                });
                continue;
            };
            let new_interfaces: Vec<&String> = current
                .interfaces
                .iter()
                .filter(|i| !locked.interfaces.contains(i))
                .collect();
            let new_families: Vec<&String> = current
                .families
                .iter()
                .filter(|f| !locked.families.contains(f))
                .collect();
            let gone: Vec<&String> = locked
                .interfaces
                .iter()
                .filter(|i| !current.interfaces.contains(i))
                .collect();
            if !new_interfaces.is_empty() {
                let families = if new_families.is_empty() {
                    "no new capability family".to_string()
                } else {
                    format!(
                        "new capability {}",
                        new_families
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::SurfaceGrew,
                    detail: format!(
                        "now imports {}: {families}",
                        new_interfaces
                            .iter()
                            .map(|i| format!("`{i}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if locked.grants != current.grants {
                let mut changes = Vec::new();
                for (k, v) in &current.grants {
                    match locked.grants.get(k) {
                        None => changes.push(format!("grants.{k} = {v} is new")),
                        Some(old) if old != v => {
                            changes.push(format!("grants.{k} is {v}, was {old}"))
                        }
                        Some(_) => {}
                    }
                }
                for k in locked.grants.keys() {
                    if !current.grants.contains_key(k) {
                        changes.push(format!("grants.{k} was removed"));
                    }
                }
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::GrantsChanged,
                    detail: format!(
                        "has grants other than those approved: {}",
                        changes.join("; ")
                    ),
                });
            }
            if locked.serves != current.serves {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::WiringChanged,
                    detail: format!(
                        "serves its parent through {} (approved: {})",
                        joined(&current.serves),
                        joined(&locked.serves)
                    ),
                });
            }
            if locked.fused != current.fused {
                let (now, was) = if current.fused {
                    ("fused into its parent's store", "an isolated edge")
                } else {
                    ("in a store of its own", "a fused edge")
                };
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::IsolationChanged,
                    detail: format!(
                        "runs {now}, where the lock approved {was} (a fused nanoprocess shares its parent's fault domain and limits)"
                    ),
                });
            }
            if new_interfaces.is_empty() && !gone.is_empty() {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::SurfaceShrank,
                    detail: format!(
                        "no longer imports {}",
                        gone.iter()
                            .map(|i| format!("`{i}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            if locked.digest != current.digest && new_interfaces.is_empty() && gone.is_empty() {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::Rebuilt,
                    detail: format!(
                        "has a new component ({} was {}) that asks for nothing new",
                        short(&current.digest),
                        short(&locked.digest)
                    ),
                });
            } else if locked.component != current.component {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::Rebuilt,
                    detail: format!("is now {}, was {}", current.component, locked.component),
                });
            }
        }
        for path in now.nodes.keys() {
            if !self.nodes.contains_key(path) {
                out.push(Difference {
                    nanoprocess: path.clone(),
                    kind: DifferenceKind::Added,
                    detail: "is not in the lock".into(),
                });
            }
        }
        out
    }
}

/// Items for a message, or `nothing`.
fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items
            .iter()
            .map(|i| format!("`{i}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A digest shortened for a message.
fn short(digest: &str) -> &str {
    let end = digest.len().min("sha256:".len() + 12);
    digest.get(..end).unwrap_or(digest)
}

/// A key of a TOML table: bare where TOML allows, else quoted.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_string()
    } else {
        toml_string(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(digest: &str, interfaces: &[&str], grants: &[(&str, &str)]) -> LockedNode {
        LockedNode {
            component: "a.wasm".into(),
            digest: digest.into(),
            families: interfaces
                .iter()
                .map(|i| i.split(['/', ':']).nth(1).unwrap_or("").to_string())
                .collect(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            serves: Vec::new(),
            fused: false,
            grants: grants
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn lock(nodes: &[(&str, LockedNode)]) -> Lock {
        Lock {
            nodes: nodes
                .iter()
                .map(|(p, n)| (p.to_string(), n.clone()))
                .collect(),
        }
    }

    #[test]
    fn patch_versions_are_no_change() {
        assert_eq!(
            without_patch("wasi:io/streams@0.2.12"),
            "wasi:io/streams@0.2"
        );
        assert_eq!(
            without_patch("wasi:io/streams@0.3.0-rc-2026-01-01"),
            "wasi:io/streams@0.3"
        );
        assert_eq!(without_patch("a:b/c@1.4.2"), "a:b/c@1");
        assert_eq!(without_patch("a:b/c"), "a:b/c");
    }

    #[test]
    fn the_file_reads_back_as_written() {
        let l = lock(&[
            (
                "app",
                node(
                    "sha256:aa",
                    &["wasi:random/random@0.2"],
                    &[("random", "true")],
                ),
            ),
            (
                "app/we\"ird",
                node(
                    "sha256:bb",
                    &[],
                    &[(
                        "fs",
                        "[{ from = \"/a\", guest = \"/a\", rights = \"read\" }]",
                    )],
                ),
            ),
        ]);
        let text = l.to_toml();
        assert_eq!(Lock::parse(&text).unwrap(), l, "{text}");
    }

    #[test]
    fn what_refuses_and_what_warns() {
        let locked = lock(&[(
            "app",
            node(
                "sha256:aa",
                &["wasi:random/random@0.2"],
                &[("random", "true")],
            ),
        )]);
        // Rebuilt: a warning, refused only when locked.
        let rebuilt = lock(&[(
            "app",
            node(
                "sha256:bb",
                &["wasi:random/random@0.2"],
                &[("random", "true")],
            ),
        )]);
        let d = locked.compare(&rebuilt);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DifferenceKind::Rebuilt);
        assert!(!d[0].refuses(false) && d[0].refuses(true));
        // Grown: refused, naming the interface and the family.
        let grown = lock(&[(
            "app",
            node(
                "sha256:cc",
                &["wasi:random/random@0.2", "wasi:sockets/tcp@0.2"],
                &[("random", "true")],
            ),
        )]);
        let d = locked.compare(&grown);
        assert_eq!(d[0].kind, DifferenceKind::SurfaceGrew);
        assert!(d[0].refuses(false));
        assert_eq!(
            d[0].to_string(),
            "`app` now imports `wasi:sockets/tcp@0.2`: new capability `sockets`"
        );
        // Grants changed; a node added.
        let changed = lock(&[
            (
                "app",
                node(
                    "sha256:aa",
                    &["wasi:random/random@0.2"],
                    &[("random", "{ seed = 1 }")],
                ),
            ),
            ("app/x", node("sha256:dd", &[], &[])),
        ]);
        let kinds: Vec<DifferenceKind> = locked.compare(&changed).iter().map(|d| d.kind).collect();
        assert_eq!(
            kinds,
            [DifferenceKind::GrantsChanged, DifferenceKind::Added]
        );
        assert!(locked.compare(&locked).is_empty());
    }

    #[test]
    fn a_lock_of_another_version_is_refused() {
        assert!(
            Lock::parse("version = 2\n")
                .unwrap_err()
                .contains("version 2")
        );
        assert!(Lock::parse("version = 1\nextra = 1\n").is_err());
    }

    /// Fusing an edge keeps its capabilities but gives up its containment: the
    /// lock records it (only where fused, so a lock of isolated edges reads as
    /// before), reads it back, and refuses a tree that changed it either way.
    #[test]
    fn a_fused_edge_is_part_of_what_was_approved() {
        let isolated = lock(&[("app/x", node("sha256:aa", &[], &[]))]);
        let mut fused_node = node("sha256:aa", &[], &[]);
        fused_node.fused = true;
        let fused = lock(&[("app/x", fused_node)]);
        assert!(!isolated.to_toml().contains("isolation"));
        assert!(fused.to_toml().contains("isolation = \"fused\"\n"));
        assert_eq!(Lock::parse(&fused.to_toml()).unwrap(), fused);
        assert_eq!(Lock::parse(&isolated.to_toml()).unwrap(), isolated);
        for (approved, now, words) in [
            (
                &isolated,
                &fused,
                "runs fused into its parent's store, where the lock approved an isolated edge",
            ),
            (
                &fused,
                &isolated,
                "runs in a store of its own, where the lock approved a fused edge",
            ),
        ] {
            let differences = approved.compare(now);
            assert_eq!(differences.len(), 1, "{differences:?}");
            assert_eq!(differences[0].kind, DifferenceKind::IsolationChanged);
            assert!(differences[0].refuses(false));
            assert!(
                differences[0].to_string().contains(words),
                "{}",
                differences[0]
            );
        }
        assert!(
            Lock::parse("version = 1\n[nanoprocess.a]\ncomponent = \"a\"\ndigest = \"x\"\nisolation = \"merged\"\n")
                .unwrap_err()
                .contains("isolation must be")
        );
    }
}
