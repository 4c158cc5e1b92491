//! Filesystem rights per operation.
//!
//! wasmtime-wasi distinguishes only read-only and read-write directories. nanoproc
//! grants finer rights (read, write, create, remove, rename, list, metadata) by
//! wrapping wasmtime-wasi's own filesystem host implementation: every descriptor
//! the guest holds carries the rights of the granted directory it was reached
//! from (a preopen, or a descriptor opened below one), each operation asks for the
//! right it needs, and only then is wasmtime-wasi called. Path resolution stays
//! wasmtime-wasi's and cap-std's: `..`, absolute paths and symlinks cannot leave a
//! directory however rights are split, because we never resolve a path ourselves.
//!
//! The rules beyond "each operation needs its right":
//!
//! * **No right is gained through an alias.** `link-at` and `rename-at` make an
//!   existing file (or, for a rename, a whole directory) reachable through another
//!   directory, with that directory's rights. Both need the source directory to
//!   hold every right the destination holds: a file under a read-only grant cannot
//!   be linked or moved into a writable one and rewritten there, and a directory
//!   cannot be moved to where it may be listed. A rename also needs `remove` on the
//!   destination, since it replaces whatever had that name. Nothing made under a
//!   loan may get a name outside it, or it would outlive the call that lent it (see
//!   [`loans`]). Grants that overlap (one directory inside another, held
//!   with more rights by the same or another nanoprocess) could launder a file
//!   from one into the other through a single descriptor; the plan refuses them
//!   (see `dirs`), and handing a directory across a boundary is checked the
//!   same way (see `handles`).
//! * **A symbolic link stays below the directory it is made in.** Its target must
//!   be relative, without `..`: a nanoprocess with `create` must not plant a link
//!   that its parent, holding more, would follow out of the child's grant.
//! * **wasmtime's answers where the grant is not the reason.** An operation the
//!   descriptor's own open mode rules out (writing to a file opened for reading)
//!   is not a capability refusal: it is passed to wasmtime-wasi, which answers as
//!   for any WASI program, and nothing is recorded.
//! * **The record says what happened.** A refusal is recorded when it is made; an
//!   operation the rights allow is recorded after it ran, with its outcome, so an
//!   `open-at` that the sandbox then refuses (a `..` out of the directory) is
//!   recorded as failed, never as allowed.
//!
//! A refused operation returns `not-permitted`, as a read-only wasmtime-wasi
//! directory would, changes nothing, and is recorded with its target path (a
//! guest path: guests and the record never see host paths).
//!
//! One policy, two bindings: WASI 0.2 (here) and WASI 0.3 ([`p3`]). Both
//! generations' descriptors are wasmtime-wasi's same `Descriptor` in the same
//! resource table, so they share one [`DescriptorRights`], and each 0.3
//! operation is decided by the same checks as its 0.2 twin ([`Need`],
//! `check`, `check_alias`, `check_link`, `check_rename`, the symlink and procfs
//! rules) and recorded under the same operation name.

pub(crate) mod dirs;
pub(crate) mod loans;
mod p3;

use crate::audit::{Decision, Recorder};
use crate::state::NanoState;
use loans::{Loan, LoanStreams, StreamKind};
use nanoproc_caps::{DirCap, FsRights};
use std::collections::HashMap;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime::error::Context;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::filesystem::{OpenMode, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types as async_fs;
use wasmtime_wasi::p2::bindings::named_imports::wasi::filesystem::preopens as named_preopens;
use wasmtime_wasi::p2::bindings::sync::filesystem::types as fs;
use wasmtime_wasi::p2::bindings::sync::io::streams;
use wasmtime_wasi::p2::{FsError, FsResult};

/// The rights a file can carry: what can be done to a file, as opposed to a
/// directory's entries.
const FILE_RIGHTS: FsRights = FsRights::READ
    .union(FsRights::WRITE)
    .union(FsRights::METADATA);

/// The rights of every descriptor a nanoprocess holds, by resource handle.
#[derive(Default)]
pub(crate) struct DescriptorRights {
    /// The granted directories: guest path and rights.
    pub granted: Vec<(String, FsRights)>,
    held: HashMap<u32, Held>,
    /// Directory listings made under a loan, by handle.
    listings: HashMap<u32, Loan>,
    /// Streams made under a loan (kept by the streams themselves).
    streams: LoanStreams,
    /// Every loan this nanoprocess was given that has not been withdrawn.
    loans: HashMap<u64, Loan>,
}

#[derive(Clone)]
struct Held {
    /// What its directory grant allows (for a file, the file rights of it).
    rights: FsRights,
    /// Those rights as far as the descriptor was opened for them: what it is
    /// described as, in the record and when it is handed on.
    shown: FsRights,
    /// The guest path it was opened at, for the audit record.
    path: String,
    /// Set when it was lent by the parent for one call, or opened under such a
    /// descriptor: it is withdrawn when that call returns.
    loan: Option<Loan>,
}

/// What a descriptor carries from one nanoprocess to another.
#[derive(Clone, Debug)]
pub(crate) struct Carried {
    rights: FsRights,
    shown: FsRights,
    pub path: String,
}

impl Carried {
    pub fn rights(&self) -> FsRights {
        self.rights
    }
}

impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.path, self.shown)
    }
}

/// What a guard made from a descriptor: under a loan, it belongs to the loan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Derived {
    DirectoryEntries,
    Stream(StreamKind),
}

impl DescriptorRights {
    pub fn new(granted: Vec<(String, FsRights)>) -> Self {
        Self {
            granted,
            ..Default::default()
        }
    }

    /// What a descriptor would carry if handed on, if it is one this nanoprocess
    /// holds.
    pub fn get(&self, rep: u32) -> Option<Carried> {
        self.held.get(&rep).map(|h| Carried {
            rights: h.rights,
            shown: h.shown,
            path: h.path.clone(),
        })
    }

    /// Whether the handle was lent to this nanoprocess or made under a loan: it
    /// must not be given away, or it would outlive the loan. True for good once
    /// the loan has ended, for an entry that could not leave the table.
    pub fn is_on_loan(&self, rep: u32) -> bool {
        self.held.get(&rep).is_some_and(|h| h.loan.is_some())
            || self.listings.contains_key(&rep)
            || self.streams.contains(rep)
    }

    /// Forgets a descriptor that leaves this nanoprocess; returns what it carries.
    pub fn take(&mut self, rep: u32) -> Option<Carried> {
        let carried = self.get(rep);
        self.held.remove(&rep);
        carried
    }

    /// Records a descriptor handed to this nanoprocess, carrying exactly what it
    /// had where it came from; `loan` when it is only lent for one call.
    pub fn receive(&mut self, rep: u32, carried: Carried, loan: Option<u64>) {
        let loan = loan.map(|id| {
            self.loans
                .entry(id)
                .or_insert_with(|| Loan::new(id))
                .clone()
        });
        self.held.insert(
            rep,
            Held {
                rights: carried.rights,
                shown: carried.shown,
                path: carried.path,
                loan,
            },
        );
    }

    /// Ends a loan: from now on nothing made from it does anything. What the
    /// borrower still holds of it stays in its table, dead, until it drops it
    /// (deleting it under the guest would leave it a dangling handle number that a
    /// later handle could reuse).
    pub fn end_loan(&mut self, id: u64) {
        if let Some(loan) = self.loans.remove(&id) {
            loan.end();
        }
    }

    /// Every descriptor it holds, with the rights it carries.
    pub fn held(&self) -> impl Iterator<Item = (u32, FsRights)> + '_ {
        self.held.iter().map(|(rep, h)| (*rep, h.rights))
    }

    /// Whether the descriptor belongs to a loan that has ended: it may not be lent
    /// onward either.
    pub fn is_revoked(&self, rep: u32) -> bool {
        self.held
            .get(&rep)
            .is_some_and(|h| h.loan.as_ref().is_some_and(|l| !l.is_live()))
    }

    fn loan_of(&self, rep: u32) -> Option<Loan> {
        self.held.get(&rep).and_then(|h| h.loan.clone())
    }
}

pub(crate) struct FsGuard<'a> {
    inner: WasiFilesystemCtxView<'a>,
    rights: &'a mut DescriptorRights,
    recorder: &'a Recorder,
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = FsGuard<'a>;
}

fn view(s: &mut NanoState) -> FsGuard<'_> {
    let state = &mut s.families.fs;
    FsGuard {
        inner: s.wasi.filesystem(),
        rights: &mut state.rights,
        recorder: &state.recorder,
    }
}

/// `wasi:filesystem/types` in a store that fused nanoprocesses share with their
/// host: `types` is one binding for all of them (wac-graph cannot give a fused
/// nanoprocess its own `types` next to its own `preopens`: their resource types
/// would stop matching), so each operation is decided by the descriptor it is
/// on. A descriptor belongs to whoever's guard registered it (its preopen, or an
/// `open-at` from one of its own descriptors); the operation runs as that
/// nanoprocess, with its rights, recorded under its path. A fused nanoprocess
/// cannot name another's descriptor (a handle is an index into its own
/// instance's table), and no descriptor crosses a fused edge (`plan::fuse`
/// refuses an interface that would pass one), so a handle has one owner.
pub(crate) struct ByOwner<'a>(&'a mut NanoState);

struct ByOwnerData;
impl HasData for ByOwnerData {
    type Data<'a> = ByOwner<'a>;
}

fn by_owner(s: &mut NanoState) -> ByOwner<'_> {
    ByOwner(s)
}

impl ByOwner<'_> {
    /// Runs `f` with the guard of the nanoprocess `rep` belongs to: the store's
    /// own unless a fused nanoprocess's rights know it (as a descriptor, or as a
    /// listing with `listing`).
    fn run<R>(&mut self, rep: u32, listing: bool, f: impl FnOnce(&mut FsGuard<'_>) -> R) -> R {
        let knows = |rights: &DescriptorRights| {
            if listing {
                rights.listings.contains_key(&rep)
            } else {
                rights.held.contains_key(&rep)
            }
        };
        self.0
            .as_owner(|families| knows(&families.fs.rights), |s| f(&mut view(s)))
    }
}

impl fs::HostDescriptor for ByOwner<'_> {
    fn advise(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
        len: fs::Filesize,
        advice: fs::Advice,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::advise(g, fd, offset, len, advice)
        })
    }

    fn sync_data(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<()> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::sync_data(g, fd))
    }

    fn get_flags(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorFlags> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::get_flags(g, fd))
    }

    fn get_type(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorType> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::get_type(g, fd))
    }

    fn set_size(&mut self, fd: Resource<fs::Descriptor>, size: fs::Filesize) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::set_size(g, fd, size)
        })
    }

    fn set_times(
        &mut self,
        fd: Resource<fs::Descriptor>,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::set_times(g, fd, atim, mtim)
        })
    }

    fn read(
        &mut self,
        fd: Resource<fs::Descriptor>,
        len: fs::Filesize,
        offset: fs::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::read(g, fd, len, offset)
        })
    }

    fn write(
        &mut self,
        fd: Resource<fs::Descriptor>,
        buf: Vec<u8>,
        offset: fs::Filesize,
    ) -> FsResult<fs::Filesize> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::write(g, fd, buf, offset)
        })
    }

    fn read_directory(
        &mut self,
        fd: Resource<fs::Descriptor>,
    ) -> FsResult<Resource<fs::DirectoryEntryStream>> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::read_directory(g, fd)
        })
    }

    fn sync(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<()> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::sync(g, fd))
    }

    fn create_directory_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::create_directory_at(g, fd, path)
        })
    }

    fn stat(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorStat> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::stat(g, fd))
    }

    fn stat_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::DescriptorStat> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::stat_at(g, fd, path_flags, path)
        })
    }

    fn set_times_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::set_times_at(g, fd, path_flags, path, atim, mtim)
        })
    }

    fn link_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        old_path_flags: fs::PathFlags,
        old_path: String,
        new_descriptor: Resource<fs::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::link_at(g, fd, old_path_flags, old_path, new_descriptor, new_path)
        })
    }

    fn open_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        oflags: fs::OpenFlags,
        flags: fs::DescriptorFlags,
    ) -> FsResult<Resource<fs::Descriptor>> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::open_at(g, fd, path_flags, path, oflags, flags)
        })
    }

    fn drop(&mut self, fd: Resource<fs::Descriptor>) -> wasmtime::Result<()> {
        self.run(fd.rep(), false, |g| fs::HostDescriptor::drop(g, fd))
    }

    fn readlink_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<String> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::readlink_at(g, fd, path)
        })
    }

    fn remove_directory_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::remove_directory_at(g, fd, path)
        })
    }

    fn rename_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        old_path: String,
        new_fd: Resource<fs::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::rename_at(g, fd, old_path, new_fd, new_path)
        })
    }

    fn symlink_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::symlink_at(g, fd, src_path, dest_path)
        })
    }

    fn unlink_file_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::unlink_file_at(g, fd, path)
        })
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::InputStream>> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::read_via_stream(g, fd, offset)
        })
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::OutputStream>> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::write_via_stream(g, fd, offset)
        })
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
    ) -> FsResult<Resource<streams::OutputStream>> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::append_via_stream(g, fd)
        })
    }

    fn is_same_object(
        &mut self,
        a: Resource<fs::Descriptor>,
        b: Resource<fs::Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.run(a.rep(), false, |g| {
            fs::HostDescriptor::is_same_object(g, a, b)
        })
    }

    fn metadata_hash(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::MetadataHashValue> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::metadata_hash(g, fd)
        })
    }

    fn metadata_hash_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::MetadataHashValue> {
        self.run(fd.rep(), false, |g| {
            fs::HostDescriptor::metadata_hash_at(g, fd, path_flags, path)
        })
    }
}

impl fs::HostDirectoryEntryStream for ByOwner<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<fs::DirectoryEntryStream>,
    ) -> FsResult<Option<fs::DirectoryEntry>> {
        self.run(stream.rep(), true, |g| {
            fs::HostDirectoryEntryStream::read_directory_entry(g, stream)
        })
    }

    fn drop(&mut self, stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.run(stream.rep(), true, |g| {
            fs::HostDirectoryEntryStream::drop(g, stream)
        })
    }
}

impl fs::Host for ByOwner<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fs::ErrorCode> {
        self.run(u32::MAX, false, |g| fs::Host::convert_error_code(g, err))
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<streams::Error>,
    ) -> wasmtime::Result<Option<fs::ErrorCode>> {
        self.run(u32::MAX, false, |g| fs::Host::filesystem_error_code(g, err))
    }
}

/// The filesystem family's part of a nanoprocess's state.
pub(crate) struct State {
    /// The rights of each filesystem descriptor it holds.
    pub rights: DescriptorRights,
    recorder: Recorder,
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] =
    &[("wasi:filesystem/", "0.2."), ("wasi:filesystem/", "0.3.")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Filesystem as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: crate::families::Surface = &[("wasi:filesystem/", &["fs"])];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: crate::families::Surface = &[("fd_", &["fs"]), ("path_", &["fs"])];

/// `wasi:filesystem/types` and `preopens`, every operation through the guard.
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    fs::add_to_linker::<NanoState, ByOwnerData>(linker, by_owner)?;
    preopens::add_to_linker::<NanoState, Guarded>(linker, view)?;
    Ok(())
}

/// A fused nanoprocess's `preopens`: its own directories, registered with its
/// own rights, so that `types` ([`ByOwner`]) finds them its own.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named_preopens::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)
}

impl named_preopens::Host for super::FusedCall<'_> {
    fn get_directories(
        &mut self,
        id: wasmtime_wasi::NamedId,
    ) -> wasmtime::Result<Vec<(Resource<async_fs::Descriptor>, String)>> {
        self.0
            .as_fused(id, |s| preopens::Host::get_directories(&mut view(s)))
    }
}

/// Preopens the directories the plan opened for this nanoprocess (each start
/// reopens those handles, never a path), each with the rights of its grant.
pub(crate) fn build(
    dirs: &[DirCap],
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    // A WASI 0.3 nanoprocess's file operations run on its own thread
    // (`families::build_persona`); a 0.2 one's stay on wasmtime-wasi's blocking
    // pool as before, where a stream's wait that outlives the call's time limit
    // is abandoned (`families::io`). Neither bounds an `open-at` that blocks (a
    // FIFO with no writer): that holds the run until `--timeout` or Ctrl-C
    // (docs/security.md).
    for (dir, opened) in dirs.iter().zip(&cx.node.dirs) {
        opened
            .preopen(wasi, dir.guest.as_str(), dir.rights)
            .with_context(|| {
                format!(
                    "nanoprocess `{}`: cannot open its directory {}",
                    cx.recorder.path, dir.guest
                )
            })?;
    }
    Ok(State {
        rights: DescriptorRights::new(
            dirs.iter()
                .map(|d| (d.guest.as_str().to_string(), d.rights))
                .collect(),
        ),
        recorder: cx.recorder.clone(),
    })
}

/// A guest path for the record: `base` and `path` joined, `.` components dropped.
/// Only for display: resolution is wasmtime-wasi's.
fn join(base: &str, path: &str) -> String {
    let mut out = base.trim_end_matches('/').to_string();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() { "/".into() } else { out }
}

/// How an operation is checked.
#[derive(Clone, Copy)]
struct Need {
    rights: FsRights,
    /// One of `rights` is enough.
    any: bool,
    /// On a file, the operation reads or writes its data, which its open mode
    /// may rule out before any grant is consulted.
    data: Option<OpenMode>,
}

const fn all(rights: FsRights) -> Need {
    Need {
        rights,
        any: false,
        data: None,
    }
}

const fn one_of(rights: FsRights) -> Need {
    Need {
        rights,
        any: true,
        data: None,
    }
}

const fn data(rights: FsRights, mode: OpenMode) -> Need {
    Need {
        rights,
        any: false,
        data: Some(mode),
    }
}

/// What the guard decided before the operation runs.
enum Verdict {
    /// The rights allow it: record the outcome (`target`) once it has run.
    /// `needs` is `None` for a descriptor it was lent: the loan allowed it, not
    /// a grant of its own (so `nanoproc learn` proposes none for it).
    Allowed {
        target: String,
        needs: Option<FsRights>,
    },
    /// Not a question of rights: wasmtime-wasi answers, nothing is recorded.
    Wasmtime,
}

impl FsGuard<'_> {
    /// Records a decision on `target` (a guest path) through the one audit API.
    fn decide(
        &self,
        operation: &'static str,
        target: String,
        decision: Decision,
        reason: Option<String>,
    ) {
        self.recorder
            .decide("fs", operation, || Some(target), decision, reason);
    }

    /// [`FsGuard::decide`] for a decision on rights: records the rights the
    /// operation needed, from which `nanoproc learn` proposes a grant.
    fn decide_rights(
        &self,
        operation: &'static str,
        target: String,
        needs: Option<FsRights>,
        decision: Decision,
        reason: Option<String>,
    ) {
        self.recorder.decide_needing(
            "fs",
            operation,
            || Some(target),
            needs.map(|n| n.to_string()),
            decision,
            reason,
        );
    }

    /// Whether `fd` is its own, not lent to it for a call.
    fn owned(&self, fd: &Resource<fs::Descriptor>) -> bool {
        self.rights
            .held
            .get(&fd.rep())
            .is_some_and(|h| h.loan.is_none())
    }

    /// Whether `fd` may be used at all: a descriptor this nanoprocess holds, and
    /// not one of a loan that has ended. Refusals are recorded.
    fn usable(&mut self, fd: u32, operation: &'static str) -> Result<(), Refusal> {
        match self.rights.held.get(&fd) {
            Some(h) if h.loan.as_ref().is_none_or(Loan::is_live) => Ok(()),
            Some(h) => {
                let target = h.path.clone();
                self.decide(
                    operation,
                    target,
                    Decision::Refused,
                    Some("the descriptor was lent for one call, which has ended".into()),
                );
                Err(Refusal::BadDescriptor)
            }
            // Only a descriptor of wasmtime-wasi's that we never saw: none exist.
            None => Err(Refusal::BadDescriptor),
        }
    }

    /// Decides an operation on `fd` that needs `need`; records a refusal.
    fn check(
        &mut self,
        fd: &Resource<fs::Descriptor>,
        need: Need,
        operation: &'static str,
        path: Option<&str>,
    ) -> Result<Verdict, Refusal> {
        self.usable(fd.rep(), operation)?;
        let held = self.rights.held.get(&fd.rep()).expect("usable");
        let target = match path {
            Some(p) => join(&held.path, p),
            None => held.path.clone(),
        };
        if let Some(mode) = need.data
            && let Ok(wasmtime_wasi::filesystem::Descriptor::File(f)) = self.inner.table.get(fd)
            && !f.open_mode.contains(mode)
        {
            // The descriptor was not opened for this: the OS refuses it on that
            // file whatever the grant says, and wasmtime-wasi reports that.
            return Ok(Verdict::Wasmtime);
        }
        let ok = if need.any {
            need.rights == FsRights::NONE || held.rights.intersection(need.rights) != FsRights::NONE
        } else {
            held.rights.contains(need.rights)
        };
        if ok {
            // For an operation that any one of several rights allows, the one
            // it used: the first the directory grants.
            let needs = if need.any {
                first_right(held.rights.intersection(need.rights))
            } else {
                need.rights
            };
            let needs = held.loan.is_none().then_some(needs);
            return Ok(Verdict::Allowed { target, needs });
        }
        let reason = format!(
            "needs {}{}, the directory grants {}",
            if need.any { "one of " } else { "" },
            need.rights,
            held.rights
        );
        let needs = if need.any {
            first_right(need.rights)
        } else {
            need.rights
        };
        let needs = held.loan.is_none().then_some(needs);
        self.decide_rights(operation, target, needs, Decision::Refused, Some(reason));
        Err(Refusal::NotPermitted)
    }

    /// Records what an allowed operation did (in either binding's error type).
    fn record<T, E: Failure>(
        &self,
        verdict: &Verdict,
        operation: &'static str,
        outcome: &Result<T, E>,
    ) {
        let Verdict::Allowed { target, needs } = verdict else {
            return;
        };
        match outcome {
            Ok(_) if self.recorder.wants_allowed() => {
                self.decide_rights(operation, target.clone(), *needs, Decision::Allowed, None)
            }
            Ok(_) => {}
            // Always: a failure is often the sandbox refusing an escape.
            Err(e) => {
                let why = match e.code_name() {
                    Some(code) => format!("allowed, but it failed: {code}"),
                    None => "allowed, but it failed".to_string(),
                };
                self.decide_rights(
                    operation,
                    target.clone(),
                    *needs,
                    Decision::Failed,
                    Some(why),
                );
            }
        }
    }

    /// Checks, runs and records one operation on `fd`.
    fn guarded<T>(
        &mut self,
        fd: Resource<fs::Descriptor>,
        need: Need,
        operation: &'static str,
        path: Option<&str>,
        op: impl FnOnce(&mut WasiFilesystemCtxView<'_>, Resource<fs::Descriptor>) -> FsResult<T>,
    ) -> FsResult<T> {
        let verdict = self.check(&fd, need, operation, path)?;
        let outcome = op(&mut self.inner, fd);
        self.record(&verdict, operation, &outcome);
        outcome
    }

    /// The rule for aliases: `to` may give a file no right that `from` lacks, and
    /// nothing made under a loan gets a name outside it.
    fn check_alias(
        &mut self,
        from: &Resource<fs::Descriptor>,
        to: &Resource<fs::Descriptor>,
        operation: &'static str,
        old_path: &str,
        new_path: &str,
    ) -> Result<(), Refusal> {
        let (Some(src), Some(dst)) = (
            self.rights.held.get(&from.rep()),
            self.rights.held.get(&to.rep()),
        ) else {
            return Err(Refusal::BadDescriptor);
        };
        let gained = dst
            .rights
            .intersection(FsRights::from_bits_truncate(!src.rights.bits()));
        let reason = if gained != FsRights::NONE {
            Some(format!(
                "it would gain {gained} in {}, which {} does not grant",
                dst.path, src.path
            ))
        } else if src.loan.as_ref().map(|l| l.id) != dst.loan.as_ref().map(|l| l.id)
            && src.loan.is_some()
        {
            Some(format!(
                "{} was lent for one call; nothing in it may get a name outside the loan",
                src.path
            ))
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => {
                let target = format!(
                    "{} -> {}",
                    join(&src.path, old_path),
                    join(&dst.path, new_path)
                );
                self.decide(operation, target, Decision::Refused, Some(reason));
                Err(Refusal::NotPermitted)
            }
        }
    }

    /// Records a descriptor, listing or stream just made from `from`, under the
    /// same loan as `from`.
    fn note_made(&mut self, from: u32, rep: u32, kind: Derived) -> wasmtime::Result<()> {
        let Some(loan) = self.rights.loan_of(from) else {
            return Ok(());
        };
        match kind {
            Derived::DirectoryEntries => {
                self.rights.listings.insert(rep, loan);
            }
            Derived::Stream(StreamKind::Input) => {
                loans::wrap_input(self.inner.table, rep, &loan, &self.rights.streams)?
            }
            Derived::Stream(StreamKind::Output) => {
                loans::wrap_output(self.inner.table, rep, &loan, &self.rights.streams)?
            }
        }
        Ok(())
    }
}

/// Why the guard stopped an operation before it ran, for each binding to
/// answer in its own error type (0.2's and 0.3's `error-code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The grant does not allow it.
    NotPermitted,
    /// Not a descriptor this nanoprocess may use (one of an ended loan).
    BadDescriptor,
}

impl From<Refusal> for FsError {
    fn from(refusal: Refusal) -> Self {
        FsError::from(match refusal {
            Refusal::NotPermitted => async_fs::ErrorCode::NotPermitted,
            Refusal::BadDescriptor => async_fs::ErrorCode::BadDescriptor,
        })
    }
}

/// An operation's error, as the record names it.
trait Failure {
    /// The `error-code` (as WASI spells it), if it is one rather than a trap.
    fn code_name(&self) -> Option<String>;
}

impl Failure for FsError {
    fn code_name(&self) -> Option<String> {
        self.downcast_ref().map(|code| code.name().to_string())
    }
}

impl preopens::Host for FsGuard<'_> {
    fn get_directories(
        &mut self,
    ) -> wasmtime::Result<Vec<(Resource<async_fs::Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.inner)?;
        self.register_preopens(dirs.iter().map(|(fd, guest)| (fd.rep(), guest.as_str())));
        Ok(dirs)
    }
}

impl FsGuard<'_> {
    /// Gives each preopen just handed to the guest the rights of its grant.
    fn register_preopens<'p>(&mut self, dirs: impl Iterator<Item = (u32, &'p str)>) {
        for (rep, guest) in dirs {
            // Every preopen is one of the granted directories, by construction.
            let rights = self
                .rights
                .granted
                .iter()
                .find(|(g, _)| g == guest)
                .map_or(FsRights::NONE, |(_, r)| *r);
            self.rights.held.insert(
                rep,
                Held {
                    rights,
                    shown: rights,
                    path: guest.to_string(),
                    loan: None,
                },
            );
        }
    }

    /// What `link-at` from `fd`/`old_path` to `new_fd`/`new_path` needs; records a
    /// refusal.
    fn check_link(
        &mut self,
        fd: &Resource<fs::Descriptor>,
        old_path: &str,
        new_fd: &Resource<fs::Descriptor>,
        new_path: &str,
    ) -> Result<Verdict, Refusal> {
        let op = "wasi:filesystem/types.link-at";
        // A hard link outlives the run: whoever is granted its directory later
        // holds the file with that directory's rights. So only a file this
        // nanoprocess may write gets another name.
        self.check(fd, all(R.union(W)), op, Some(old_path))?;
        self.check(new_fd, all(FsRights::CREATE), op, Some(new_path))?;
        self.check_alias(fd, new_fd, op, old_path, new_path)?;
        Ok(Verdict::Allowed {
            target: format!(
                "{} -> {}",
                self.target_of(fd, old_path),
                self.target_of(new_fd, new_path)
            ),
            needs: self.owned(fd).then_some(R.union(W).union(FsRights::CREATE)),
        })
    }

    /// What `rename-at` from `fd`/`old_path` to `new_fd`/`new_path` needs;
    /// records a refusal.
    fn check_rename(
        &mut self,
        fd: &Resource<fs::Descriptor>,
        old_path: &str,
        new_fd: &Resource<fs::Descriptor>,
        new_path: &str,
    ) -> Result<Verdict, Refusal> {
        let op = "wasi:filesystem/types.rename-at";
        self.check(fd, all(FsRights::RENAME), op, Some(old_path))?;
        // A rename replaces whatever had the new name: a removal there.
        let replace = FsRights::RENAME.union(FsRights::REMOVE);
        self.check(new_fd, all(replace), op, Some(new_path))?;
        self.check_alias(fd, new_fd, op, old_path, new_path)?;
        Ok(Verdict::Allowed {
            target: format!(
                "{} -> {}",
                self.target_of(fd, old_path),
                self.target_of(new_fd, new_path)
            ),
            needs: self.owned(fd).then_some(replace),
        })
    }

    /// The rule for symbolic links: one whose target `src_path` would leave the
    /// directory it is made in is refused (and recorded) whatever the rights.
    fn check_symlink_target(
        &mut self,
        fd: &Resource<fs::Descriptor>,
        src_path: &str,
        dest_path: &str,
    ) -> Result<(), Refusal> {
        let op = "wasi:filesystem/types.symlink-at";
        let leaves = src_path.is_empty()
            || src_path.starts_with('/')
            || src_path.split('/').any(|c| c == "..");
        if !leaves {
            return Ok(());
        }
        self.usable(fd.rep(), op)?;
        let target = self.target_of(fd, dest_path);
        self.decide(
            op,
            target,
            Decision::Refused,
            Some(format!(
                "a link must point below its own directory (relative, without `..`), not to {src_path:?}"
            )),
        );
        Err(Refusal::NotPermitted)
    }

    /// Refuses (and closes) a descriptor `open-at` just opened from `from` if it
    /// is on procfs: below a grant of `/`, say, nothing on procfs is ever handed
    /// to a guest.
    fn refuse_procfs(
        &mut self,
        from: u32,
        path: &str,
        opened: &Resource<fs::Descriptor>,
    ) -> Result<(), Refusal> {
        let procfs = match self.inner.table.get(opened) {
            Ok(wasmtime_wasi::filesystem::Descriptor::File(f)) => dirs::on_procfs(&f.file),
            Ok(wasmtime_wasi::filesystem::Descriptor::Dir(d)) => dirs::on_procfs(&d.dir),
            Err(_) => true,
        };
        if !procfs {
            return Ok(());
        }
        let _ = self
            .inner
            .table
            .delete(Resource::<fs::Descriptor>::new_own(opened.rep()));
        let target = self.target_of(&Resource::new_borrow(from), path);
        self.decide(
            "wasi:filesystem/types.open-at",
            target,
            Decision::Refused,
            Some("it is on procfs, which holds nanoproc's own memory and environment".into()),
        );
        Err(Refusal::NotPermitted)
    }

    /// Gives a descriptor `open-at` just opened at `path` below `base` its
    /// rights. A file carries only what can be done to a file (read, write,
    /// metadata). It is shown, and handed on, as what it was opened for: a file
    /// opened for reading is described as readable only.
    fn register_opened(&mut self, base: Held, path: &str, opened: &Resource<fs::Descriptor>) {
        let (rights, shown) = match self.inner.table.get(opened) {
            Ok(wasmtime_wasi::filesystem::Descriptor::File(f)) => {
                let rights = base.rights.intersection(FILE_RIGHTS);
                let mut usable = META;
                if f.open_mode.contains(OpenMode::READ) {
                    usable = usable.union(R);
                }
                if f.open_mode.contains(OpenMode::WRITE) {
                    usable = usable.union(W);
                }
                (rights, rights.intersection(usable))
            }
            _ => (base.rights, base.rights),
        };
        self.rights.held.insert(
            opened.rep(),
            Held {
                rights,
                shown,
                path: join(&base.path, path),
                loan: base.loan,
            },
        );
    }
}

/// What `open-at` needs, from its open flags and descriptor flags. Creating a
/// name needs `create` even if the file turns out to exist: deciding by a prior
/// lookup would race with the filesystem.
fn open_need(create: bool, truncate: bool, write: bool, read: bool, directory: bool) -> Need {
    let mut need = FsRights::NONE;
    if create {
        need = need.union(FsRights::CREATE);
    }
    if truncate || write {
        need = need.union(W);
    }
    if read && !directory {
        need = need.union(R);
    }
    all(need)
}

impl fs::Host for FsGuard<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<fs::ErrorCode> {
        fs::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<streams::Error>,
    ) -> wasmtime::Result<Option<fs::ErrorCode>> {
        fs::Host::filesystem_error_code(&mut self.inner, err)
    }
}

const R: FsRights = FsRights::READ;
const W: FsRights = FsRights::WRITE;
const META: FsRights = FsRights::METADATA;
const READ_DATA: Need = data(R, OpenMode::READ);
const WRITE_DATA: Need = data(W, OpenMode::WRITE);

impl fs::HostDescriptor for FsGuard<'_> {
    fn advise(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
        len: fs::Filesize,
        advice: fs::Advice,
    ) -> FsResult<()> {
        self.guarded(fd, all(R), "wasi:filesystem/types.advise", None, |i, fd| {
            fs::HostDescriptor::advise(i, fd, offset, len, advice)
        })
    }

    fn sync_data(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<()> {
        let op = "wasi:filesystem/types.sync-data";
        self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::sync_data(i, fd)
        })
    }

    fn get_flags(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorFlags> {
        // Describes the handle the guest holds; reveals nothing about the files.
        self.usable(fd.rep(), "wasi:filesystem/types.get-flags")?;
        fs::HostDescriptor::get_flags(&mut self.inner, fd)
    }

    fn get_type(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorType> {
        self.usable(fd.rep(), "wasi:filesystem/types.get-type")?;
        fs::HostDescriptor::get_type(&mut self.inner, fd)
    }

    fn set_size(&mut self, fd: Resource<fs::Descriptor>, size: fs::Filesize) -> FsResult<()> {
        let op = "wasi:filesystem/types.set-size";
        self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::set_size(i, fd, size)
        })
    }

    fn set_times(
        &mut self,
        fd: Resource<fs::Descriptor>,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        let op = "wasi:filesystem/types.set-times";
        self.guarded(fd, all(W), op, None, |i, fd| {
            fs::HostDescriptor::set_times(i, fd, atim, mtim)
        })
    }

    fn read(
        &mut self,
        fd: Resource<fs::Descriptor>,
        len: fs::Filesize,
        offset: fs::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        let op = "wasi:filesystem/types.read";
        self.guarded(fd, READ_DATA, op, None, |i, fd| {
            fs::HostDescriptor::read(i, fd, len, offset)
        })
    }

    fn write(
        &mut self,
        fd: Resource<fs::Descriptor>,
        buf: Vec<u8>,
        offset: fs::Filesize,
    ) -> FsResult<fs::Filesize> {
        let op = "wasi:filesystem/types.write";
        self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::write(i, fd, buf, offset)
        })
    }

    fn read_directory(
        &mut self,
        fd: Resource<fs::Descriptor>,
    ) -> FsResult<Resource<fs::DirectoryEntryStream>> {
        let from = fd.rep();
        let op = "wasi:filesystem/types.read-directory";
        let made = self.guarded(fd, all(FsRights::LIST), op, None, |i, fd| {
            fs::HostDescriptor::read_directory(i, fd)
        })?;
        self.note_made(from, made.rep(), Derived::DirectoryEntries)
            .map_err(FsError::trap)?;
        Ok(made)
    }

    fn sync(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<()> {
        let op = "wasi:filesystem/types.sync";
        self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::sync(i, fd)
        })
    }

    fn create_directory_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        let op = "wasi:filesystem/types.create-directory-at";
        self.guarded(
            fd,
            all(FsRights::CREATE),
            op,
            Some(&path.clone()),
            |i, fd| fs::HostDescriptor::create_directory_at(i, fd, path),
        )
    }

    fn stat(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::DescriptorStat> {
        // The size of a file one may read is part of reading it (std asks for it).
        let op = "wasi:filesystem/types.stat";
        self.guarded(fd, one_of(META.union(R)), op, None, |i, fd| {
            fs::HostDescriptor::stat(i, fd)
        })
    }

    fn stat_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::DescriptorStat> {
        let op = "wasi:filesystem/types.stat-at";
        self.guarded(fd, all(META), op, Some(&path.clone()), |i, fd| {
            fs::HostDescriptor::stat_at(i, fd, path_flags, path)
        })
    }

    fn set_times_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        atim: fs::NewTimestamp,
        mtim: fs::NewTimestamp,
    ) -> FsResult<()> {
        let op = "wasi:filesystem/types.set-times-at";
        self.guarded(fd, all(W), op, Some(&path.clone()), |i, fd| {
            fs::HostDescriptor::set_times_at(i, fd, path_flags, path, atim, mtim)
        })
    }

    fn link_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        old_path_flags: fs::PathFlags,
        old_path: String,
        new_descriptor: Resource<fs::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let op = "wasi:filesystem/types.link-at";
        let verdict = self.check_link(&fd, &old_path, &new_descriptor, &new_path)?;
        let outcome = fs::HostDescriptor::link_at(
            &mut self.inner,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        );
        self.record(&verdict, op, &outcome);
        outcome
    }

    fn open_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
        oflags: fs::OpenFlags,
        flags: fs::DescriptorFlags,
    ) -> FsResult<Resource<fs::Descriptor>> {
        let need = open_need(
            oflags.contains(fs::OpenFlags::CREATE),
            oflags.contains(fs::OpenFlags::TRUNCATE),
            flags.contains(fs::DescriptorFlags::WRITE),
            flags.contains(fs::DescriptorFlags::READ),
            oflags.contains(fs::OpenFlags::DIRECTORY),
        );
        let op = "wasi:filesystem/types.open-at";
        let from = fd.rep();
        let base = self.rights.held.get(&from).cloned();
        let verdict = self.check(&fd, need, op, Some(&path))?;
        let outcome = fs::HostDescriptor::open_at(
            &mut self.inner,
            fd,
            path_flags,
            path.clone(),
            oflags,
            flags,
        );
        if let Ok(opened) = &outcome {
            self.refuse_procfs(from, &path, opened)?;
        }
        self.record(&verdict, op, &outcome);
        let opened = outcome?;
        self.register_opened(base.expect("checked by the guard"), &path, &opened);
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<fs::Descriptor>) -> wasmtime::Result<()> {
        self.rights.held.remove(&fd.rep());
        fs::HostDescriptor::drop(&mut self.inner, fd)
    }

    fn readlink_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<String> {
        let op = "wasi:filesystem/types.readlink-at";
        self.guarded(
            fd,
            one_of(META.union(R)),
            op,
            Some(&path.clone()),
            |i, fd| fs::HostDescriptor::readlink_at(i, fd, path),
        )
    }

    fn remove_directory_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        let op = "wasi:filesystem/types.remove-directory-at";
        self.guarded(
            fd,
            all(FsRights::REMOVE),
            op,
            Some(&path.clone()),
            |i, fd| fs::HostDescriptor::remove_directory_at(i, fd, path),
        )
    }

    fn rename_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        old_path: String,
        new_fd: Resource<fs::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        let op = "wasi:filesystem/types.rename-at";
        let verdict = self.check_rename(&fd, &old_path, &new_fd, &new_path)?;
        let outcome =
            fs::HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path);
        self.record(&verdict, op, &outcome);
        outcome
    }

    fn symlink_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let op = "wasi:filesystem/types.symlink-at";
        self.check_symlink_target(&fd, &src_path, &dest_path)?;
        self.guarded(
            fd,
            all(FsRights::CREATE),
            op,
            Some(&dest_path.clone()),
            |i, fd| fs::HostDescriptor::symlink_at(i, fd, src_path, dest_path),
        )
    }

    fn unlink_file_at(&mut self, fd: Resource<fs::Descriptor>, path: String) -> FsResult<()> {
        let op = "wasi:filesystem/types.unlink-file-at";
        self.guarded(
            fd,
            all(FsRights::REMOVE),
            op,
            Some(&path.clone()),
            |i, fd| fs::HostDescriptor::unlink_file_at(i, fd, path),
        )
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::InputStream>> {
        let from = fd.rep();
        let op = "wasi:filesystem/types.read-via-stream";
        let made = self.guarded(fd, READ_DATA, op, None, |i, fd| {
            fs::HostDescriptor::read_via_stream(i, fd, offset)
        })?;
        self.note_made(from, made.rep(), Derived::Stream(StreamKind::Input))
            .map_err(FsError::trap)?;
        Ok(made)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
        offset: fs::Filesize,
    ) -> FsResult<Resource<streams::OutputStream>> {
        let from = fd.rep();
        let op = "wasi:filesystem/types.write-via-stream";
        let made = self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::write_via_stream(i, fd, offset)
        })?;
        self.note_made(from, made.rep(), Derived::Stream(StreamKind::Output))
            .map_err(FsError::trap)?;
        Ok(made)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<fs::Descriptor>,
    ) -> FsResult<Resource<streams::OutputStream>> {
        let from = fd.rep();
        let op = "wasi:filesystem/types.append-via-stream";
        let made = self.guarded(fd, WRITE_DATA, op, None, |i, fd| {
            fs::HostDescriptor::append_via_stream(i, fd)
        })?;
        self.note_made(from, made.rep(), Derived::Stream(StreamKind::Output))
            .map_err(FsError::trap)?;
        Ok(made)
    }

    fn is_same_object(
        &mut self,
        a: Resource<fs::Descriptor>,
        b: Resource<fs::Descriptor>,
    ) -> wasmtime::Result<bool> {
        let op = "wasi:filesystem/types.is-same-object";
        if self.usable(a.rep(), op).is_err() || self.usable(b.rep(), op).is_err() {
            // This function has no error case: a dead descriptor is nothing.
            return Ok(false);
        }
        fs::HostDescriptor::is_same_object(&mut self.inner, a, b)
    }

    fn metadata_hash(&mut self, fd: Resource<fs::Descriptor>) -> FsResult<fs::MetadataHashValue> {
        let op = "wasi:filesystem/types.metadata-hash";
        self.guarded(
            fd,
            one_of(META.union(R).union(FsRights::LIST)),
            op,
            None,
            |i, fd| fs::HostDescriptor::metadata_hash(i, fd),
        )
    }

    fn metadata_hash_at(
        &mut self,
        fd: Resource<fs::Descriptor>,
        path_flags: fs::PathFlags,
        path: String,
    ) -> FsResult<fs::MetadataHashValue> {
        // wasi-libc asks for this for every entry it lists (to make up inode
        // numbers); the hash reveals identity only, so listing is enough.
        let op = "wasi:filesystem/types.metadata-hash-at";
        self.guarded(
            fd,
            one_of(META.union(FsRights::LIST)),
            op,
            Some(&path.clone()),
            |i, fd| fs::HostDescriptor::metadata_hash_at(i, fd, path_flags, path),
        )
    }
}

impl FsGuard<'_> {
    /// A guest path for the record: `path` below the descriptor `fd`.
    fn target_of(&self, fd: &Resource<fs::Descriptor>, path: &str) -> String {
        match self.rights.held.get(&fd.rep()) {
            Some(h) => join(&h.path, path),
            None => path.to_string(),
        }
    }
}

impl fs::HostDirectoryEntryStream for FsGuard<'_> {
    fn read_directory_entry(
        &mut self,
        stream: Resource<fs::DirectoryEntryStream>,
    ) -> FsResult<Option<fs::DirectoryEntry>> {
        if self
            .rights
            .listings
            .get(&stream.rep())
            .is_some_and(|l| !l.is_live())
        {
            return Err(FsError::from(async_fs::ErrorCode::BadDescriptor));
        }
        fs::HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream)
    }

    fn drop(&mut self, stream: Resource<fs::DirectoryEntryStream>) -> wasmtime::Result<()> {
        self.rights.listings.remove(&stream.rep());
        fs::HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}

/// The first right of `rights` (in the order they are declared), or none.
fn first_right(rights: FsRights) -> FsRights {
    (0..8)
        .map(|bit| FsRights::from_bits_truncate(1 << bit))
        .find(|r| *r != FsRights::NONE && rights.contains(*r))
        .unwrap_or(FsRights::NONE)
}

/// `wasi:filesystem/types` and `preopens` at 0.3, through the same guard as
/// their 0.2 twins (see [`p3`]).
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::add_to_linker(linker)
}
