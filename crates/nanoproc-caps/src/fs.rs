//! Directory rights and guest paths.
//!
//! Guest paths are compared as sequences of components, never as strings, so that
//! `/photos2` is not mistaken for something below `/photos`. `..` is refused outright
//! rather than resolved: a grant is a statement about a subtree, and a `..` in it is
//! either a mistake or an attempt to name something outside that subtree.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, InParent, Line, RootContext, Span, Suggestion, Use,
    ValueKind, Violation, flag, toml_string,
};
use std::fmt;
use std::path::{Path, PathBuf};

/// What may be done inside a granted directory.
///
/// Each bit is one kind of operation; the runtime checks the right each WASI
/// filesystem call needs against the rights of the descriptor it is made on.
/// `read-only` and `read-write` are shorthands.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FsRights(u8);

impl FsRights {
    pub const READ: Self = Self(1 << 0);
    pub const WRITE: Self = Self(1 << 1);
    pub const CREATE: Self = Self(1 << 2);
    pub const REMOVE: Self = Self(1 << 3);
    pub const RENAME: Self = Self(1 << 4);
    pub const LIST: Self = Self(1 << 5);
    pub const METADATA: Self = Self(1 << 6);

    pub const NONE: Self = Self(0);
    /// Read files, list directories and read metadata.
    pub const READ_ONLY: Self = Self(Self::READ.0 | Self::LIST.0 | Self::METADATA.0);
    /// Everything.
    pub const READ_WRITE: Self = Self(0x7f);

    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Builds rights from raw bits; bits beyond the known operations are dropped.
    pub const fn from_bits_truncate(bits: u8) -> Self {
        Self(bits & Self::READ_WRITE.0)
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// Whether any operation that changes the directory's contents is granted.
    pub const fn can_modify(self) -> bool {
        self.0 & (Self::WRITE.0 | Self::CREATE.0 | Self::REMOVE.0 | Self::RENAME.0) != 0
    }

    /// Parses the names accepted in a manifest and on the command line: a
    /// shorthand (`read-only`, `read-write`) or operations joined by `+` or `,`
    /// (`read+list+create`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "read-only" | "ro" => return Some(Self::READ_ONLY),
            "read-write" | "rw" => return Some(Self::READ_WRITE),
            _ => {}
        }
        let mut rights = Self::NONE;
        for name in s.split(['+', ',']) {
            rights = rights.union(match name.trim() {
                "read" => Self::READ,
                "write" => Self::WRITE,
                "create" => Self::CREATE,
                "remove" => Self::REMOVE,
                "rename" => Self::RENAME,
                "list" => Self::LIST,
                "metadata" => Self::METADATA,
                _ => return None,
            });
        }
        Some(rights)
    }

    pub const ACCEPTED: &'static str = "`read-only`, `read-write`, or operations joined by `+` (read, write, create, remove, rename, list, metadata)";
}

impl fmt::Display for FsRights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::READ_ONLY => f.write_str("read-only"),
            Self::READ_WRITE => f.write_str("read-write"),
            Self::NONE => f.write_str("none"),
            other => {
                let names = [
                    (Self::READ, "read"),
                    (Self::WRITE, "write"),
                    (Self::CREATE, "create"),
                    (Self::REMOVE, "remove"),
                    (Self::RENAME, "rename"),
                    (Self::LIST, "list"),
                    (Self::METADATA, "metadata"),
                ];
                let held: Vec<&str> = names
                    .iter()
                    .filter(|(bit, _)| other.contains(*bit))
                    .map(|(_, name)| *name)
                    .collect();
                f.write_str(&held.join("+"))
            }
        }
    }
}

impl fmt::Debug for FsRights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An absolute path in a nanoprocess's own view of the filesystem, normalised.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestPath(String);

/// Why a guest path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestPathError {
    NotAbsolute,
    ParentComponent,
    Nul,
}

impl fmt::Display for GuestPathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "a guest path must be absolute (start with `/`)",
            Self::ParentComponent => "a guest path may not contain `..`",
            Self::Nul => "a guest path may not contain a NUL byte",
        })
    }
}

impl GuestPath {
    /// Normalises `/a//b/./c/` to `/a/b/c`; refuses relative paths and `..`.
    pub fn parse(s: &str) -> Result<Self, GuestPathError> {
        if s.contains('\0') {
            return Err(GuestPathError::Nul);
        }
        if !s.starts_with('/') {
            return Err(GuestPathError::NotAbsolute);
        }
        let mut parts = Vec::new();
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(GuestPathError::ParentComponent),
                p => parts.push(p),
            }
        }
        Ok(Self(format!("/{}", parts.join("/"))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// The components of `self` below `ancestor`, or `None` when `self` is not at or
    /// below it.
    pub fn strip_prefix(&self, ancestor: &GuestPath) -> Option<Vec<&str>> {
        let mut mine = self.components();
        for theirs in ancestor.components() {
            if mine.next() != Some(theirs) {
                return None;
            }
        }
        Some(mine.collect())
    }

    pub fn depth(&self) -> usize {
        self.components().count()
    }
}

impl fmt::Display for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Whether `path` is `ancestor` or lies below it, comparing whole components.
///
/// Purely lexical: the runtime opens derived directories through the ancestor's
/// sandboxed handle, so a symlink cannot make a lexically contained path escape.
pub fn host_path_within(path: &Path, ancestor: &Path) -> bool {
    path.starts_with(ancestor)
}

/// Joins guest components below a host directory.
pub fn host_join(base: &Path, rel: &[&str]) -> PathBuf {
    let mut out = base.to_path_buf();
    out.extend(rel);
    out
}

/// The filesystem family: directories, each with rights per operation (`grants.fs`).
pub struct Filesystem;

/// Where a requested directory comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirSource {
    /// A host directory. Only the root may name one: it is the user's grant.
    Host(PathBuf),
    /// A directory inside the parent's own view, named by the parent's guest path.
    Parent(String),
}

/// One directory asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRequest {
    pub source: DirSource,
    /// Where the nanoprocess sees the directory.
    pub guest: String,
    pub rights: FsRights,
    /// Where it was written.
    pub span: Option<Span>,
}

impl DirRequest {
    pub fn new(source: DirSource, guest: impl Into<String>, rights: FsRights) -> Self {
        Self {
            source,
            guest: guest.into(),
            rights,
            span: None,
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            DirSource::Host(h) => format!(
                "host = {:?}, guest = {:?}, rights = {}",
                h.display().to_string(),
                self.guest,
                self.rights
            ),
            DirSource::Parent(p) => format!(
                "from = {:?}, guest = {:?}, rights = {}",
                p, self.guest, self.rights
            ),
        }
    }

    fn violation(&self, i: usize, reason: String, parent_grant: Option<String>) -> Violation {
        Violation {
            item: GrantItem::at("fs", i),
            grant: self.describe(),
            reason,
            parent_grant,
            span: self.span.clone(),
        }
    }
}

/// A directory a nanoprocess holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirCap {
    pub guest: GuestPath,
    pub host: PathBuf,
    pub rights: FsRights,
    /// For a directory carved out of the parent's: where it comes from. The
    /// runtime opens it through the parent's *open* directory, never by path.
    pub derived: Option<Derived>,
}

/// Where a dependency's directory was carved from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    /// The index, among the parent's directories, of the one it lies in.
    pub parent_dir: usize,
    /// Its components below that directory (none: the same directory).
    pub below_parent: Vec<String>,
    /// The same place seen from the root: the root grant's guest path and the
    /// components below it, for messages that must name what the user granted.
    pub anchor: GuestPath,
    pub below_anchor: Vec<String>,
}

impl fmt::Display for DirCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) = host {}",
            self.guest,
            self.rights,
            self.host.display()
        )
    }
}

/// One directory grant. Its rights and its source are both checked, so that an
/// entry wrong twice is reported twice.
fn parse_dir(item: &GrantValue) -> Result<DirRequest, Vec<GrantError>> {
    let mut host = None;
    let mut from = None;
    let mut guest = None;
    let mut rights = None;
    for (key, v) in item.table_entries(DIR_KEYS).map_err(|e| vec![e])? {
        let slot = match key.name.as_str() {
            "host" => &mut host,
            "from" => &mut from,
            "guest" => &mut guest,
            _ => &mut rights,
        };
        *slot = Some(v);
    }
    let text = |v: &GrantValue, what: &str| {
        v.as_text().map(str::to_owned).ok_or_else(|| {
            v.error(format!(
                "{what}: expected a string, found {}",
                v.kind_name()
            ))
        })
    };
    let mut errors = Vec::new();
    let guest = match guest {
        Some(g) => text(g, "guest").map_err(|e| errors.push(e)).ok(),
        None => {
            errors.push(item.error("missing field `guest`"));
            None
        }
    };
    let rights = match rights {
        None => {
            errors.push(item.error("missing field `rights`"));
            None
        }
        Some(value) => {
            // `rights = "read+create"` or `rights = ["read", "create"]`.
            let rights_text = match &value.kind {
                ValueKind::List(names) => names
                    .iter()
                    .map(|n| text(n, "rights"))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|names| names.join("+")),
                _ => text(value, "rights"),
            };
            match rights_text {
                Err(e) => {
                    errors.push(e);
                    None
                }
                Ok(t) => match FsRights::parse(&t) {
                    Some(r) => Some(r),
                    None => {
                        errors.push(value.error(format!(
                            "unknown rights {t:?}; expected {}",
                            FsRights::ACCEPTED
                        )));
                        None
                    }
                },
            }
        }
    };
    let source = match (host, from) {
        (Some(h), None) => text(h, "host")
            .map(|h| DirSource::Host(PathBuf::from(h)))
            .map_err(|e| errors.push(e))
            .ok(),
        (None, Some(f)) => text(f, "from")
            .map(DirSource::Parent)
            .map_err(|e| errors.push(e))
            .ok(),
        _ => {
            errors.push(item.error(
                "a directory grant has exactly one of `host` (root only) or `from` (a path in the parent's view)",
            ));
            None
        }
    };
    match (guest, rights, source) {
        (Some(guest), Some(rights), Some(source)) if errors.is_empty() => Ok(DirRequest {
            source,
            guest,
            rights,
            span: item.span.clone(),
        }),
        _ => Err(errors),
    }
}

/// The keys of one directory grant.
const DIR_KEYS: &[&str] = &["host", "from", "guest", "rights"];

impl Family for Filesystem {
    const NAME: &'static str = "filesystem";
    const KEYS: &'static [&'static str] = &["fs"];
    type Request = Vec<DirRequest>;
    type Holding = Vec<DirCap>;

    /// `fs = [{ host = "...", guest = "/data", rights = "read-only" }, { from = ... }]`
    fn parse(
        request: &mut Vec<DirRequest>,
        _key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::List(items) = &value.kind else {
            return Err(vec![value.error(format!(
                "fs: expected a list of directories, found {}",
                value.kind_name()
            ))]);
        };
        let mut errors = Vec::new();
        for item in items {
            match parse_dir(item) {
                Ok(dir) => request.push(dir),
                Err(e) => errors.extend(e),
            }
        }
        crate::family::checked((), errors)
    }

    /// Host directories are taken as given (the caller resolves them); `from` is
    /// meaningless at the root.
    fn for_root(
        request: &Vec<DirRequest>,
        _cx: &RootContext<'_>,
    ) -> Result<Vec<DirCap>, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut dirs = Vec::new();
        // Which grant each directory came from (some may be refused before).
        let mut asked = Vec::new();
        for (i, d) in request.iter().enumerate() {
            let guest = match GuestPath::parse(&d.guest) {
                Ok(g) => g,
                Err(e) => {
                    violations.push(d.violation(i, format!("guest path: {e}"), None));
                    continue;
                }
            };
            match &d.source {
                DirSource::Host(host) => {
                    asked.push(i);
                    dirs.push(DirCap {
                        guest,
                        host: host.clone(),
                        rights: d.rights,
                        derived: None,
                    })
                }
                DirSource::Parent(_) => violations.push(d.violation(
                    i,
                    "the root has no parent to take a directory `from`; use `host = ...`".into(),
                    None,
                )),
            }
        }
        check_distinct_guests(&dirs, &asked, request, &mut violations);
        crate::family::checked(dirs, violations)
    }

    fn attenuate(
        parent: &Vec<DirCap>,
        request: &Vec<DirRequest>,
    ) -> Result<Vec<DirCap>, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut dirs = Vec::new();
        // Which grant each directory came from (some may be refused before).
        let mut asked = Vec::new();
        for (i, d) in request.iter().enumerate() {
            let guest = match GuestPath::parse(&d.guest) {
                Ok(g) => g,
                Err(e) => {
                    violations.push(d.violation(i, format!("guest path: {e}"), None));
                    continue;
                }
            };
            let from = match &d.source {
                DirSource::Host(_) => {
                    violations.push(d.violation(
                        i,
                        "a dependency cannot name host paths; use `from = \"<a guest path of its parent>\"`".into(),
                        None,
                    ));
                    continue;
                }
                DirSource::Parent(p) => match GuestPath::parse(p) {
                    Ok(p) => p,
                    Err(e) => {
                        violations.push(d.violation(i, format!("`from`: {e}"), None));
                        continue;
                    }
                },
            };
            // The parent's directory that the parent itself would reach `from` through:
            // the deepest guest path containing it, as wasi-libc resolves preopens.
            let Some((parent_ix, parent_dir, rel)) = parent
                .iter()
                .enumerate()
                .filter_map(|(ix, p)| from.strip_prefix(&p.guest).map(|rel| (ix, p, rel)))
                .max_by_key(|(_, p, _)| p.guest.depth())
            else {
                let held = if parent.is_empty() {
                    "no directories".to_string()
                } else {
                    parent
                        .iter()
                        .map(|d| format!("{} ({})", d.guest, d.rights))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                violations.push(d.violation(
                    i,
                    format!("{from} is not inside any directory the parent holds"),
                    Some(held),
                ));
                continue;
            };
            if !parent_dir.rights.contains(d.rights) {
                violations.push(d.violation(
                    i,
                    format!(
                        "asks for {} but the parent holds {} only as {}",
                        d.rights, parent_dir.guest, parent_dir.rights
                    ),
                    Some(format!("{} ({})", parent_dir.guest, parent_dir.rights)),
                ));
                continue;
            }
            let rel: Vec<String> = rel.into_iter().map(str::to_owned).collect();
            let rel_refs: Vec<&str> = rel.iter().map(String::as_str).collect();
            let host = host_join(&parent_dir.host, &rel_refs);
            // Chains of derivations also remember the root grant they lie in, so
            // that messages can name what the user granted.
            let (anchor, below_anchor) = match &parent_dir.derived {
                Some(up) => {
                    let mut all = up.below_anchor.clone();
                    all.extend(rel.iter().cloned());
                    (up.anchor.clone(), all)
                }
                None => (parent_dir.guest.clone(), rel.clone()),
            };
            asked.push(i);
            dirs.push(DirCap {
                guest,
                host,
                rights: d.rights,
                derived: Some(Derived {
                    parent_dir: parent_ix,
                    below_parent: rel,
                    anchor,
                    below_anchor,
                }),
            });
        }
        check_distinct_guests(&dirs, &asked, request, &mut violations);
        crate::family::checked(dirs, violations)
    }

    /// Every directory lies at or below one of the parent's, with no more rights.
    fn within(child: &Vec<DirCap>, parent: &Vec<DirCap>) -> bool {
        child.iter().all(|d| {
            parent
                .iter()
                .any(|p| host_path_within(&d.host, &p.host) && p.rights.contains(d.rights))
        })
    }

    fn holds(holding: &Vec<DirCap>, key: &str) -> bool {
        key == "fs" && !holding.is_empty()
    }

    /// A use's target is a guest path; its `needs` the rights the operation
    /// needed (`read+list`).
    fn allows(holding: &Vec<DirCap>, used: &Use<'_>) -> bool {
        let Some((dir, _)) = used
            .target
            .and_then(|t| GuestPath::parse(t).ok())
            .and_then(|t| containing(holding, &t))
        else {
            return false;
        };
        let needs = used
            .needs
            .and_then(FsRights::parse)
            .unwrap_or(FsRights::NONE);
        dir.rights.contains(needs)
    }

    /// For each directory used, the deepest directory containing everything
    /// touched in it (a file's own directory, a directory itself), with exactly
    /// the rights the operations needed, seen by the nanoprocess at the same guest
    /// path as before (its code names those paths). A root names the host
    /// directory; a dependency the same place in its parent's view. One grant
    /// lists every directory.
    ///
    /// Only what succeeded narrows a directory: a path that failed may not be
    /// where it seems (a symbolic link out of the directory fails in the sandbox,
    /// but a host path through it would be followed when the grant is opened), so
    /// a failed use keeps its directory whole. A use whose paths cannot be read
    /// (through `..`, or a rename whose names hide ` -> `) may have moved anything
    /// anywhere: then no directory is narrowed.
    ///
    /// A root's directories keep the host paths the user wrote, only their rights
    /// narrowed: a root grant is opened by its path at each run, following the
    /// links on the way, and a path below the user's that a guest's moves chose
    /// could lead through one (renamed into place from within the grant) to a
    /// directory the user never granted. A dependency's narrower directory is
    /// opened through its parent's open one, never following a link.
    fn propose(
        uses: &[Use<'_>],
        held: &Vec<DirCap>,
        parent: Option<&Vec<DirCap>>,
    ) -> Vec<Suggestion> {
        // Per directory held: the narrowest directory so far, and the rights.
        let mut used_dirs: Vec<(usize, Vec<String>, FsRights)> = Vec::new();
        let mut narrow = parent.is_some();
        for used in uses.iter().filter(|u| u.key == "fs") {
            // No rights recorded: a descriptor lent to it for a call was used,
            // which needs no grant of its own.
            let Some(needs) = used.needs else { continue };
            let needs = FsRights::parse(needs).unwrap_or(FsRights::NONE);
            let targets: Vec<&str> = aimed_at(used).collect();
            if targets.is_empty() && used.target.is_some() {
                narrow = false;
            }
            for target in targets {
                let Ok(target) = GuestPath::parse(target) else {
                    // Its directory keeps its rights, but nothing is narrowed.
                    narrow = false;
                    if let Some(index) = containing_text(held, target) {
                        match used_dirs.iter_mut().find(|(i, _, _)| *i == index) {
                            Some((_, _, rights)) => *rights = rights.union(needs),
                            None => used_dirs.push((index, Vec::new(), needs)),
                        }
                    }
                    continue;
                };
                let Some((_, index)) = containing(held, &target) else {
                    continue;
                };
                let dir = &held[index];
                // Refused (a hint): the directory it holds, with the rights it
                // lacked added; a grant inside it would overlap it.
                let needs = if used.refused {
                    needs.union(dir.rights)
                } else {
                    needs
                };
                let mut below: Vec<String> = if used.failed || used.refused {
                    Vec::new()
                } else {
                    target
                        .strip_prefix(&dir.guest)
                        .unwrap_or_default()
                        .into_iter()
                        .map(str::to_string)
                        .collect()
                };
                // What was aimed at below the directory: a file, or a directory
                // created, removed or renamed there. Its own directory is what the
                // grant needs (the rights are over the entries of a directory).
                below.pop();
                match used_dirs.iter_mut().find(|(i, _, _)| *i == index) {
                    Some((_, common, rights)) => {
                        let shared = common
                            .iter()
                            .zip(&below)
                            .take_while(|(a, b)| a == b)
                            .count();
                        common.truncate(shared);
                        *rights = rights.union(needs);
                    }
                    None => used_dirs.push((index, below, needs)),
                }
            }
        }
        if used_dirs.is_empty() {
            return Vec::new();
        }
        if !narrow {
            for (_, below, _) in &mut used_dirs {
                below.clear();
            }
        }
        let mut entries = Vec::new();
        let mut flags = Vec::new();
        for (index, below, rights) in used_dirs {
            let dir = &held[index];
            let rel: Vec<&str> = below.iter().map(String::as_str).collect();
            let guest = guest_join(&dir.guest, &rel);
            // A directory only looked up still needs to be reachable.
            let rights = if rights == FsRights::NONE {
                FsRights::METADATA
            } else {
                rights
            };
            let source = match (parent, &dir.derived) {
                (None, _) => {
                    let host = host_join(&dir.host, &rel);
                    let host = host.to_string_lossy().into_owned();
                    // The flags grant read-only or read-write only.
                    let name = if FsRights::READ_ONLY.contains(rights) {
                        "--dir-ro"
                    } else {
                        "--dir"
                    };
                    flags.push(flag(name, &format!("{host}::{guest}")));
                    format!("host = {}", toml_string(&host))
                }
                (Some(parent), Some(derived)) => {
                    let from = parent
                        .get(derived.parent_dir)
                        .map(|p| {
                            let mut rel: Vec<&str> =
                                derived.below_parent.iter().map(String::as_str).collect();
                            rel.extend(below.iter().map(String::as_str));
                            guest_join(&p.guest, &rel)
                        })
                        .unwrap_or_else(|| guest.clone());
                    format!("from = {}", toml_string(&from))
                }
                (Some(_), None) => format!("from = {}", toml_string(&guest)),
            };
            entries.push(format!(
                "{{ {source}, guest = {}, rights = {} }}",
                toml_string(&guest),
                toml_string(&rights.to_string())
            ));
        }
        vec![Suggestion {
            flags,
            ..Suggestion::new("fs", format!("[{}]", entries.join(", ")), None)
        }]
    }

    fn in_parent(used: &Use<'_>, held: &Vec<DirCap>, parent: &Vec<DirCap>) -> InParent {
        let Some(target) = used.target else {
            return InParent::Same;
        };
        let renamed: Option<Vec<String>> = aimed_at(used)
            .map(|one| {
                let path = GuestPath::parse(one).ok()?;
                let (dir, _) = containing(held, &path)?;
                let derived = dir.derived.as_ref()?;
                let base = parent.get(derived.parent_dir)?;
                let mut rel: Vec<&str> = derived.below_parent.iter().map(String::as_str).collect();
                rel.extend(path.strip_prefix(&dir.guest)?);
                Some(guest_join(&base.guest, &rel))
            })
            .collect();
        match renamed {
            Some(parts) if !parts.is_empty() => {
                let joined = parts.join(" -> ");
                if joined == target {
                    InParent::Same
                } else {
                    InParent::Renamed(joined)
                }
            }
            _ => InParent::Outside,
        }
    }

    /// Every directory, seen where the parent sees it, with the parent's rights.
    fn everything(parent: &Vec<DirCap>, written: &Vec<DirRequest>) -> Vec<DirRequest> {
        // The child's own directories where its manifest puts them (its code
        // names those paths), with every right its parent has there; then every
        // other directory of the parent's, where the parent sees it.
        let mut out: Vec<DirRequest> = written
            .iter()
            .map(|d| {
                let rights = match &d.source {
                    DirSource::Parent(from) => GuestPath::parse(from)
                        .ok()
                        .and_then(|from| containing(parent, &from))
                        .map_or(d.rights, |(dir, _)| dir.rights),
                    DirSource::Host(_) => d.rights,
                };
                DirRequest {
                    rights,
                    ..d.clone()
                }
            })
            .collect();
        for d in parent {
            let guest = d.guest.as_str();
            if !out.iter().any(|w| w.guest == guest) {
                out.push(DirRequest {
                    source: DirSource::Parent(guest.to_string()),
                    guest: guest.to_string(),
                    rights: d.rights,
                    span: None,
                });
            }
        }
        out
    }

    fn describe(holding: &Vec<DirCap>) -> Vec<Line> {
        vec![("fs", crate::family::joined(holding, "; "))]
    }
}

/// Refuses a guest path granted twice. `asked[i]` is the index, in `request`, of
/// the grant that made `dirs[i]` (some grants may have been refused before).
fn check_distinct_guests(
    dirs: &[DirCap],
    asked: &[usize],
    request: &[DirRequest],
    violations: &mut Vec<Violation>,
) {
    for (i, (d, &at)) in dirs.iter().zip(asked).enumerate() {
        if dirs[..i].iter().any(|e| e.guest == d.guest) {
            violations.push(Violation {
                item: GrantItem::at("fs", at),
                grant: d.guest.to_string(),
                reason: "the same guest path is granted twice".into(),
                parent_grant: None,
                span: request.get(at).and_then(|r| r.span.clone()),
            });
        }
    }
}

/// One directory some nanoprocess holds, where it really is on the host.
#[derive(Clone, Debug)]
pub struct Region<'a> {
    /// Who holds it (an index the caller chooses, e.g. the nanoprocess's).
    pub owner: usize,
    /// Which of the owner's directories it is.
    pub dir: usize,
    pub host: &'a Path,
    pub rights: FsRights,
}

/// A way to launder a file between two overlapping grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Laundering {
    /// The region (index into the slice given) that may put things inside the other.
    pub outer: usize,
    /// The region inside it where they would gain rights.
    pub inner: usize,
    /// What they would gain there.
    pub gained: FsRights,
}

/// Pairs of overlapping directories through which a file could gain rights.
///
/// A hard link or a rename through one descriptor never changes rights by itself,
/// but it can move a file from one place to another *inside* that directory. If a
/// region lies strictly inside another that may create or rename (`outer`), the
/// outer holder can put any file of its directory where the inner holder may do
/// more with it: a read-only file becomes writable, a hidden directory listable.
/// That is a gain when the inner rights exceed both what the outer holder had over
/// the file and what the inner holder already had over all of `outer` (the union
/// of its regions containing it). Handing down what one holds is delegation and
/// gains nothing: a parent with a read-write directory may put anything in its
/// child's read-only one.
pub fn laundering(regions: &[Region<'_>]) -> Vec<Laundering> {
    let moves = FsRights::CREATE.union(FsRights::RENAME);
    // Each holder's own regions, so that what it holds over a directory is found
    // among its few regions, not all of them: the whole check stays quadratic in
    // the number of regions (a manifest of a thousand grants checks in
    // milliseconds), not cubic.
    let mut by_owner: std::collections::HashMap<usize, Vec<&Region<'_>>> =
        std::collections::HashMap::new();
    for r in regions {
        by_owner.entry(r.owner).or_default().push(r);
    }
    let mut found = Vec::new();
    for (o, outer) in regions.iter().enumerate() {
        if outer.rights.intersection(moves) == FsRights::NONE {
            continue;
        }
        for (i, inner) in regions.iter().enumerate() {
            if i == o || inner.host == outer.host || !inner.host.starts_with(outer.host) {
                continue;
            }
            let cover = by_owner[&inner.owner]
                .iter()
                .filter(|r| outer.host.starts_with(r.host))
                .fold(FsRights::NONE, |acc, r| acc.union(r.rights));
            let had = cover.union(outer.rights);
            let gained = inner
                .rights
                .intersection(FsRights::from_bits_truncate(!had.bits()));
            if gained != FsRights::NONE {
                found.push(Laundering {
                    outer: o,
                    inner: i,
                    gained,
                });
            }
        }
    }
    found
}

/// The deepest directory of `holding` whose guest path the raw text `path` starts
/// with, component by component: for a path [`GuestPath`] refuses (through `..`).
fn containing_text(holding: &[DirCap], path: &str) -> Option<usize> {
    holding
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            let base = d.guest.as_str().trim_end_matches('/');
            path.strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .max_by_key(|(_, d)| d.guest.depth())
        .map(|(i, _)| i)
}

/// The paths a use was aimed at. A rename or a link is recorded as `old -> new`,
/// and only those two operations are split: a guest may name a file `a -> b`.
/// One whose halves cannot be told apart (a name with ` -> ` in it) yields
/// nothing: it is not proposed rather than guessed.
fn aimed_at<'u>(used: &Use<'u>) -> impl Iterator<Item = &'u str> + 'u {
    const TWO_PATHS: [&str; 2] = [
        "wasi:filesystem/types.rename-at",
        "wasi:filesystem/types.link-at",
    ];
    let target = used.target.unwrap_or_default();
    let parts: Vec<&'u str> = if used.target.is_none() {
        Vec::new()
    } else if TWO_PATHS.contains(&used.operation) {
        let halves: Vec<&str> = target.split(" -> ").collect();
        if halves.len() == 2 {
            halves
        } else {
            Vec::new()
        }
    } else {
        vec![target]
    };
    parts.into_iter()
}

/// The deepest directory of `holding` that contains `path` (as wasi-libc resolves
/// a path against preopens), with its index.
fn containing<'h>(holding: &'h [DirCap], path: &GuestPath) -> Option<(&'h DirCap, usize)> {
    holding
        .iter()
        .enumerate()
        .filter(|(_, d)| path.strip_prefix(&d.guest).is_some())
        .max_by_key(|(_, d)| d.guest.depth())
        .map(|(i, d)| (d, i))
}

/// `base` with `rel`'s components below it, as a guest path.
fn guest_join(base: &GuestPath, rel: &[&str]) -> String {
    let mut out = base.as_str().trim_end_matches('/').to_string();
    for part in rel {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() { "/".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region<'a>(owner: usize, host: &'a Path, rights: &str) -> Region<'a> {
        Region {
            owner,
            dir: 0,
            host,
            rights: FsRights::parse(rights).unwrap(),
        }
    }

    #[test]
    fn overlapping_grants_that_could_launder_a_file_are_found() {
        let data = Path::new("/h/data");
        let w = Path::new("/h/data/w");
        let other = Path::new("/h/other");
        // One nanoprocess: a creatable encloser around a writable inner directory.
        let found = laundering(&[region(0, data, "read+list+create"), region(0, w, "rw")]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].outer, 0);
        assert!(found[0].gained.contains(FsRights::WRITE));
        // Two siblings, the same shape.
        assert_eq!(
            laundering(&[region(1, data, "read+rename"), region(2, w, "rw")]).len(),
            1
        );
        // An encloser that can neither create nor rename cannot put anything there.
        assert!(laundering(&[region(0, data, "read-only"), region(0, w, "rw")]).is_empty());
        // The inner holder holds the whole of the outer directory with as much.
        assert!(
            laundering(&[
                region(0, data, "rw"),
                region(1, data, "read+create"),
                region(0, w, "rw")
            ])
            .is_empty()
        );
        // A parent and its child's narrower directory: the child has no more.
        assert!(laundering(&[region(0, data, "rw"), region(1, w, "read-only")]).is_empty());
        // Disjoint or equal directories never launder.
        assert!(laundering(&[region(0, data, "rw"), region(1, other, "rw")]).is_empty());
        assert!(laundering(&[region(0, data, "read+create"), region(1, data, "rw")]).is_empty());
    }
}
