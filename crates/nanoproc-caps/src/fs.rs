//! Directory rights and guest paths.
//!
//! Guest paths are compared as sequences of components, never as strings, so that
//! `/photos2` is not mistaken for something below `/photos`. `..` is refused outright
//! rather than resolved: a grant is a statement about a subtree, and a `..` in it is
//! either a mistake or an attempt to name something outside that subtree.

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
