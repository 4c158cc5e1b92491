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
