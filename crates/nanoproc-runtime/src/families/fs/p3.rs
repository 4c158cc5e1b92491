//! `wasi:filesystem@0.3` (`types` and `preopens`), through the same guard as
//! the 0.2 interfaces: one policy, two bindings.
//!
//! The 0.3 descriptors are wasmtime-wasi's same `Descriptor`, in the same
//! resource table, so they share the nanoprocess's `DescriptorRights`: a
//! preopen handed out by 0.3 `get-directories` carries its grant's rights, a
//! descriptor `open-at` opens carries the rights of the one it was opened from,
//! dropping it forgets them, and every operation asks for the right its 0.2 twin
//! asks for ([`FsGuard::check`] and the shared rules), records under the same
//! operation name, and only then calls wasmtime-wasi's own 0.3 implementation
//! (through [`Accessor::with_getter`]).
//!
//! How a refusal is answered: an `async` operation returns `not-permitted`; an
//! operation that returns a stream and a future (`read-via-stream`,
//! `write-via-stream`, `append-via-stream`, `read-directory`) returns an empty
//! stream (or closes the guest's) and a future that resolves to `not-permitted`:
//! the operation fails, the nanoprocess does not trap, and nothing else is
//! affected. `is-same-object` has no error case: a descriptor it may not use is
//! the same as nothing (`false`), as in 0.2.
//!
//! What 0.3 does not do that 0.2 does:
//!
//! * **No loans.** A descriptor lent by a parent for one call (see `loans`), or
//!   opened under one, is refused through 0.3: what is made from it (a stream,
//!   a listing) would have to end with the loan, and 0.3 streams belong to the
//!   store's concurrent machinery, not to the guard. A descriptor the guard does
//!   not know at all is refused too (never allowed by default).
//! * **Stream operations are recorded when they are set up.** An allowed
//!   `read-via-stream` is recorded as allowed once wasmtime-wasi has made its
//!   stream; an error the transfer meets later (reading a directory, a file not
//!   opened for writing) arrives through the operation's future, as wasmtime-wasi
//!   answers it, and is not recorded, as a 0.2 stream's later errors are not.
//! * **No fused personas.** 0.3 `preopens` are served to the store's own
//!   nanoprocess only (a fused nanoprocess's named 0.3 import is not linked, so
//!   it is refused at link). `types` still decides by owner ([`ByOwner`]), as
//!   the 0.2 binding does.

use super::{
    ByOwner, Failure, FsGuard, Guarded, META, Need, R, READ_DATA, Refusal, Verdict, WRITE_DATA,
    all, one_of, open_need, view,
};
use crate::audit::Decision;
use crate::state::NanoState;
use nanoproc_caps::FsRights;
use wasmtime::AsContextMut;
use wasmtime::component::{
    Access, Accessor, FutureReader, HasData, Linker, Resource, StreamReader,
};
use wasmtime_wasi::filesystem::{
    Descriptor, WasiFilesystem, WasiFilesystemCtxView, WasiFilesystemView,
};
use wasmtime_wasi::p3::bindings::filesystem::preopens;
use wasmtime_wasi::p3::bindings::filesystem::types as t;
use wasmtime_wasi::p3::filesystem::{FilesystemError, FilesystemResult};

/// The 0.3 `types` binding: its data is the store's, and each operation runs as
/// the owner of its descriptor ([`ByOwner`]).
struct P3;
impl HasData for P3 {
    type Data<'a> = ByOwner<'a>;
}

fn by_owner(s: &mut NanoState) -> ByOwner<'_> {
    ByOwner(s)
}

/// wasmtime-wasi's own 0.3 implementation, reached once the guard allowed.
fn wasi(s: &mut NanoState) -> WasiFilesystemCtxView<'_> {
    s.wasi.filesystem()
}

/// Links `wasi:filesystem/types@0.3` and `preopens@0.3`, every operation
/// through the guard.
pub(super) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    t::add_to_linker::<NanoState, P3>(linker, by_owner)?;
    preopens::add_to_linker::<NanoState, Guarded>(linker, view)?;
    Ok(())
}

impl From<Refusal> for FilesystemError {
    fn from(refusal: Refusal) -> Self {
        FilesystemError::from(error_code(refusal))
    }
}

fn error_code(refusal: Refusal) -> t::ErrorCode {
    match refusal {
        Refusal::NotPermitted => t::ErrorCode::NotPermitted,
        Refusal::BadDescriptor => t::ErrorCode::BadDescriptor,
    }
}

impl Failure for FilesystemError {
    fn code_name(&self) -> Option<String> {
        self.downcast_ref().map(code_name)
    }
}

/// A trap: the nanoprocess ends, and the record says only that it failed.
impl Failure for wasmtime::Error {
    fn code_name(&self) -> Option<String> {
        None
    }
}

/// An `error-code` as WASI spells it (`not-permitted`), from its Rust name.
fn code_name(code: &t::ErrorCode) -> String {
    if let t::ErrorCode::Other(Some(message)) = code {
        return format!("other ({message})");
    }
    // `ErrorCode::NotPermitted`, or `NotPermitted`, depending on the binding.
    let debug = format!("{code:?}");
    let name = debug.split('(').next().unwrap_or_default();
    let name = name.rsplit("::").next().unwrap_or_default();
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl FsGuard<'_> {
    /// Whether `rep` may be used through 0.3 at all: a descriptor this
    /// nanoprocess was given by its grants or opened from them, not one lent to
    /// it for a call. Refusals are recorded.
    fn usable_p3(&mut self, rep: u32, operation: &'static str) -> Result<(), Refusal> {
        let reason = match self.rights.held.get(&rep) {
            Some(h) if h.loan.is_none() => return Ok(()),
            Some(h) => (
                h.path.clone(),
                "it was lent for one call, and a lent descriptor is not usable through WASI 0.3",
            ),
            None => (
                format!("descriptor #{rep}"),
                "it is not a descriptor this nanoprocess was granted or opened",
            ),
        };
        self.decide(
            operation,
            reason.0,
            Decision::Refused,
            Some(reason.1.to_string()),
        );
        Err(Refusal::NotPermitted)
    }

    /// [`FsGuard::check`] for a 0.3 operation.
    fn check_p3(
        &mut self,
        fd: &Resource<Descriptor>,
        need: Need,
        operation: &'static str,
        path: Option<&str>,
    ) -> Result<Verdict, Refusal> {
        self.usable_p3(fd.rep(), operation)?;
        self.check(fd, need, operation, path)
    }
}

/// Runs `f` with the guard of the owner of descriptor `rep`, inside one
/// synchronous access to the store.
fn guard<R>(store: &Accessor<NanoState, P3>, rep: u32, f: impl FnOnce(&mut FsGuard<'_>) -> R) -> R {
    store.with(|mut access| access.get().run(rep, false, f))
}

/// Checks, runs (wasmtime-wasi's 0.3 operation, `op`) and records one `async`
/// operation on `fd`.
async fn guarded<T, F, Fut>(
    store: &Accessor<NanoState, P3>,
    fd: Resource<Descriptor>,
    need: Need,
    operation: &'static str,
    path: Option<&str>,
    op: F,
) -> FilesystemResult<T>
where
    F: FnOnce(Accessor<NanoState, WasiFilesystem>, Resource<Descriptor>) -> Fut,
    Fut: Future<Output = FilesystemResult<T>>,
{
    let rep = fd.rep();
    let verdict = guard(store, rep, |g| g.check_p3(&fd, need, operation, path))?;
    // No await between the check and the operation's first step (its lookup of
    // the descriptor): nothing else runs in the store in between.
    let outcome = op(store.with_getter::<WasiFilesystem>(wasi), fd).await;
    guard(store, rep, |g| g.record(&verdict, operation, &outcome));
    outcome
}

type Wasi = WasiFilesystem;

/// What an operation that fails through its future answers with.
type Done = FutureReader<Result<(), t::ErrorCode>>;

/// The stream and future a refused `read-via-stream` or `read-directory`
/// returns: nothing to read, and the refusal.
fn refused_read<T>(
    access: &mut Access<'_, NanoState, P3>,
    refusal: Refusal,
) -> wasmtime::Result<(StreamReader<T>, Done)>
where
    T: wasmtime::component::Lower + wasmtime::component::Lift + Send + Sync + 'static,
{
    let stream = StreamReader::new(&mut *access, std::iter::empty())?;
    Ok((stream, refused_future(access, refusal)?))
}

/// The future a refused stream operation returns: it resolves to the refusal.
fn refused_future(
    access: &mut Access<'_, NanoState, P3>,
    refusal: Refusal,
) -> wasmtime::Result<Done> {
    let code = error_code(refusal);
    FutureReader::new(&mut *access, async move { wasmtime::error::Ok(Err(code)) })
}

/// wasmtime-wasi's own binding of the stream operations, on the same store.
fn inner<'a>(access: &'a mut Access<'_, NanoState, P3>) -> Access<'a, NanoState, Wasi> {
    Access::<NanoState, Wasi>::new(access.as_context_mut(), wasi)
}

/// Decides a stream operation on `fd` needing `need`, in `access`.
fn check_stream(
    access: &mut Access<'_, NanoState, P3>,
    fd: &Resource<Descriptor>,
    need: Need,
    operation: &'static str,
) -> Result<Verdict, Refusal> {
    access
        .get()
        .run(fd.rep(), false, |g| g.check_p3(fd, need, operation, None))
}

/// Records a stream operation once wasmtime-wasi has set it up.
fn record_stream<T>(
    access: &mut Access<'_, NanoState, P3>,
    rep: u32,
    verdict: &Verdict,
    operation: &'static str,
    outcome: &wasmtime::Result<T>,
) {
    access
        .get()
        .run(rep, false, |g| g.record(verdict, operation, outcome));
}

impl t::HostDescriptorWithStore<NanoState> for P3 {
    fn read_via_stream(
        mut access: Access<NanoState, Self>,
        fd: Resource<Descriptor>,
        offset: t::Filesize,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), t::ErrorCode>>)> {
        let op = "wasi:filesystem/types.read-via-stream";
        let rep = fd.rep();
        let verdict = match check_stream(&mut access, &fd, READ_DATA, op) {
            Ok(verdict) => verdict,
            Err(refusal) => return refused_read(&mut access, refusal),
        };
        let outcome = <Wasi as t::HostDescriptorWithStore<NanoState>>::read_via_stream(
            inner(&mut access),
            fd,
            offset,
        );
        record_stream(&mut access, rep, &verdict, op, &outcome);
        outcome
    }

    fn write_via_stream(
        mut access: Access<'_, NanoState, Self>,
        fd: Resource<Descriptor>,
        mut data: StreamReader<u8>,
        offset: t::Filesize,
    ) -> wasmtime::Result<FutureReader<Result<(), t::ErrorCode>>> {
        let op = "wasi:filesystem/types.write-via-stream";
        let rep = fd.rep();
        let verdict = match check_stream(&mut access, &fd, WRITE_DATA, op) {
            Ok(verdict) => verdict,
            Err(refusal) => {
                // Nothing of the guest's stream is written: it is closed.
                data.close(&mut access)?;
                return refused_future(&mut access, refusal);
            }
        };
        let outcome = <Wasi as t::HostDescriptorWithStore<NanoState>>::write_via_stream(
            inner(&mut access),
            fd,
            data,
            offset,
        );
        record_stream(&mut access, rep, &verdict, op, &outcome);
        outcome
    }

    fn append_via_stream(
        mut access: Access<'_, NanoState, Self>,
        fd: Resource<Descriptor>,
        mut data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), t::ErrorCode>>> {
        let op = "wasi:filesystem/types.append-via-stream";
        let rep = fd.rep();
        let verdict = match check_stream(&mut access, &fd, WRITE_DATA, op) {
            Ok(verdict) => verdict,
            Err(refusal) => {
                data.close(&mut access)?;
                return refused_future(&mut access, refusal);
            }
        };
        let outcome = <Wasi as t::HostDescriptorWithStore<NanoState>>::append_via_stream(
            inner(&mut access),
            fd,
            data,
        );
        record_stream(&mut access, rep, &verdict, op, &outcome);
        outcome
    }

    async fn advise(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        offset: t::Filesize,
        length: t::Filesize,
        advice: t::Advice,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.advise";
        guarded(store, fd, all(R), op, None, async move |a, fd| {
            Wasi::advise(&a, fd, offset, length, advice).await
        })
        .await
    }

    async fn sync_data(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.sync-data";
        guarded(store, fd, WRITE_DATA, op, None, async move |a, fd| {
            Wasi::sync_data(&a, fd).await
        })
        .await
    }

    async fn get_flags(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<t::DescriptorFlags> {
        // Describes the handle the guest holds; reveals nothing about the files.
        let op = "wasi:filesystem/types.get-flags";
        let rep = fd.rep();
        guard(store, rep, |g| {
            g.usable_p3(rep, op)?;
            g.usable(rep, op)
        })?;
        Wasi::get_flags(&store.with_getter::<Wasi>(wasi), fd).await
    }

    async fn get_type(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<t::DescriptorType> {
        let op = "wasi:filesystem/types.get-type";
        let rep = fd.rep();
        guard(store, rep, |g| {
            g.usable_p3(rep, op)?;
            g.usable(rep, op)
        })?;
        Wasi::get_type(&store.with_getter::<Wasi>(wasi), fd).await
    }

    async fn set_size(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        size: t::Filesize,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.set-size";
        guarded(store, fd, WRITE_DATA, op, None, async move |a, fd| {
            Wasi::set_size(&a, fd, size).await
        })
        .await
    }

    async fn set_times(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        atim: t::NewTimestamp,
        mtim: t::NewTimestamp,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.set-times";
        guarded(
            store,
            fd,
            all(FsRights::WRITE),
            op,
            None,
            async move |a, fd| Wasi::set_times(&a, fd, atim, mtim).await,
        )
        .await
    }

    fn read_directory(
        mut access: Access<'_, NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> wasmtime::Result<(
        StreamReader<t::DirectoryEntry>,
        FutureReader<Result<(), t::ErrorCode>>,
    )> {
        let op = "wasi:filesystem/types.read-directory";
        let rep = fd.rep();
        let verdict = match check_stream(&mut access, &fd, all(FsRights::LIST), op) {
            Ok(verdict) => verdict,
            Err(refusal) => return refused_read(&mut access, refusal),
        };
        let outcome =
            <Wasi as t::HostDescriptorWithStore<NanoState>>::read_directory(inner(&mut access), fd);
        record_stream(&mut access, rep, &verdict, op, &outcome);
        outcome
    }

    async fn sync(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.sync";
        guarded(store, fd, WRITE_DATA, op, None, async move |a, fd| {
            Wasi::sync(&a, fd).await
        })
        .await
    }

    async fn create_directory_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.create-directory-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            all(FsRights::CREATE),
            op,
            Some(&shown),
            async move |a, fd| Wasi::create_directory_at(&a, fd, path).await,
        )
        .await
    }

    async fn stat(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<t::DescriptorStat> {
        // The size of a file one may read is part of reading it.
        let op = "wasi:filesystem/types.stat";
        guarded(
            store,
            fd,
            one_of(META.union(R)),
            op,
            None,
            async move |a, fd| Wasi::stat(&a, fd).await,
        )
        .await
    }

    async fn stat_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path_flags: t::PathFlags,
        path: String,
    ) -> FilesystemResult<t::DescriptorStat> {
        let op = "wasi:filesystem/types.stat-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            all(META),
            op,
            Some(&shown),
            async move |a, fd| Wasi::stat_at(&a, fd, path_flags, path).await,
        )
        .await
    }

    async fn set_times_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path_flags: t::PathFlags,
        path: String,
        atim: t::NewTimestamp,
        mtim: t::NewTimestamp,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.set-times-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            all(FsRights::WRITE),
            op,
            Some(&shown),
            async move |a, fd| Wasi::set_times_at(&a, fd, path_flags, path, atim, mtim).await,
        )
        .await
    }

    async fn link_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        old_path_flags: t::PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.link-at";
        let rep = fd.rep();
        let verdict = guard(store, rep, |g| {
            g.usable_p3(rep, op)?;
            g.usable_p3(new_fd.rep(), op)?;
            g.check_link(&fd, &old_path, &new_fd, &new_path)
        })?;
        let outcome = Wasi::link_at(
            &store.with_getter::<Wasi>(wasi),
            fd,
            old_path_flags,
            old_path,
            new_fd,
            new_path,
        )
        .await;
        guard(store, rep, |g| g.record(&verdict, op, &outcome));
        outcome
    }

    async fn open_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path_flags: t::PathFlags,
        path: String,
        open_flags: t::OpenFlags,
        flags: t::DescriptorFlags,
    ) -> FilesystemResult<Resource<Descriptor>> {
        let op = "wasi:filesystem/types.open-at";
        let rep = fd.rep();
        let need = open_need(
            open_flags.contains(t::OpenFlags::CREATE),
            open_flags.contains(t::OpenFlags::TRUNCATE),
            flags.contains(t::DescriptorFlags::WRITE),
            flags.contains(t::DescriptorFlags::READ),
            open_flags.contains(t::OpenFlags::DIRECTORY),
        );
        let (verdict, base) = guard(store, rep, |g| {
            let verdict = g.check_p3(&fd, need, op, Some(&path))?;
            // The check found it held; a descriptor that is not is refused
            // here too, never a panic.
            let base = g
                .rights
                .held
                .get(&rep)
                .cloned()
                .ok_or(Refusal::BadDescriptor)?;
            Ok::<_, Refusal>((verdict, base))
        })?;
        let outcome = Wasi::open_at(
            &store.with_getter::<Wasi>(wasi),
            fd,
            path_flags,
            path.clone(),
            open_flags,
            flags,
        )
        .await;
        // wasmtime-wasi has put the new descriptor in the table; the guest sees
        // it only once this returns, with its rights registered.
        guard(store, rep, |g| {
            if let Ok(opened) = &outcome {
                g.refuse_procfs(rep, &path, opened)?;
            }
            g.record(&verdict, op, &outcome);
            let opened = outcome?;
            g.register_opened(base, &path, &opened);
            Ok(opened)
        })
    }

    async fn readlink_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<String> {
        let op = "wasi:filesystem/types.readlink-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            one_of(META.union(R)),
            op,
            Some(&shown),
            async move |a, fd| Wasi::readlink_at(&a, fd, path).await,
        )
        .await
    }

    async fn remove_directory_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.remove-directory-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            all(FsRights::REMOVE),
            op,
            Some(&shown),
            async move |a, fd| Wasi::remove_directory_at(&a, fd, path).await,
        )
        .await
    }

    async fn rename_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.rename-at";
        let rep = fd.rep();
        let verdict = guard(store, rep, |g| {
            g.usable_p3(rep, op)?;
            g.usable_p3(new_fd.rep(), op)?;
            g.check_rename(&fd, &old_path, &new_fd, &new_path)
        })?;
        let outcome = Wasi::rename_at(
            &store.with_getter::<Wasi>(wasi),
            fd,
            old_path,
            new_fd,
            new_path,
        )
        .await;
        guard(store, rep, |g| g.record(&verdict, op, &outcome));
        outcome
    }

    async fn symlink_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.symlink-at";
        let rep = fd.rep();
        guard(store, rep, |g| {
            g.usable_p3(rep, op)?;
            g.check_symlink_target(&fd, &old_path, &new_path)
        })?;
        let shown = new_path.clone();
        guarded(
            store,
            fd,
            all(FsRights::CREATE),
            op,
            Some(&shown),
            async move |a, fd| Wasi::symlink_at(&a, fd, old_path, new_path).await,
        )
        .await
    }

    async fn unlink_file_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FilesystemResult<()> {
        let op = "wasi:filesystem/types.unlink-file-at";
        let shown = path.clone();
        guarded(
            store,
            fd,
            all(FsRights::REMOVE),
            op,
            Some(&shown),
            async move |a, fd| Wasi::unlink_file_at(&a, fd, path).await,
        )
        .await
    }

    async fn is_same_object(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        other: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        let op = "wasi:filesystem/types.is-same-object";
        let rep = fd.rep();
        let usable = guard(store, rep, |g| {
            [rep, other.rep()]
                .into_iter()
                .all(|r| g.usable_p3(r, op).is_ok() && g.usable(r, op).is_ok())
        });
        if !usable {
            // This function has no error case: a descriptor it may not use is
            // nothing.
            return Ok(false);
        }
        Wasi::is_same_object(&store.with_getter::<Wasi>(wasi), fd, other).await
    }

    async fn metadata_hash(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
    ) -> FilesystemResult<t::MetadataHashValue> {
        let op = "wasi:filesystem/types.metadata-hash";
        let need = one_of(META.union(R).union(FsRights::LIST));
        guarded(store, fd, need, op, None, async move |a, fd| {
            Wasi::metadata_hash(&a, fd).await
        })
        .await
    }

    async fn metadata_hash_at(
        store: &Accessor<NanoState, Self>,
        fd: Resource<Descriptor>,
        path_flags: t::PathFlags,
        path: String,
    ) -> FilesystemResult<t::MetadataHashValue> {
        // The hash reveals identity only, so listing is enough (as in 0.2).
        let op = "wasi:filesystem/types.metadata-hash-at";
        let shown = path.clone();
        let need = one_of(META.union(FsRights::LIST));
        guarded(store, fd, need, op, Some(&shown), async move |a, fd| {
            Wasi::metadata_hash_at(&a, fd, path_flags, path).await
        })
        .await
    }
}

impl t::Host for ByOwner<'_> {
    fn convert_error_code(&mut self, error: FilesystemError) -> wasmtime::Result<t::ErrorCode> {
        error.downcast()
    }
}

impl t::HostDescriptor for ByOwner<'_> {
    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        self.run(fd.rep(), false, |g| {
            g.rights.held.remove(&fd.rep());
            t::HostDescriptor::drop(&mut g.inner, fd)
        })
    }
}

impl preopens::Host for FsGuard<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let dirs = preopens::Host::get_directories(&mut self.inner)?;
        self.register_preopens(dirs.iter().map(|(fd, guest)| (fd.rep(), guest.as_str())));
        Ok(dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_named_as_wasi_spells_them() {
        assert_eq!(code_name(&t::ErrorCode::NotPermitted), "not-permitted");
        assert_eq!(code_name(&t::ErrorCode::NoEntry), "no-entry");
        assert_eq!(code_name(&t::ErrorCode::Io), "io");
        assert_eq!(code_name(&t::ErrorCode::Other(None)), "other");
        assert_eq!(
            code_name(&t::ErrorCode::Other(Some("odd".into()))),
            "other (odd)"
        );
        let refused = FilesystemError::from(Refusal::NotPermitted);
        assert_eq!(refused.code_name().as_deref(), Some("not-permitted"));
    }
}
