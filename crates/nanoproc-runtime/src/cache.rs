//! A cache of compiled components, so that a second run does not compile again.
//!
//! Compiling a component with Cranelift takes tens of milliseconds per component;
//! loading wasmtime's precompiled artifact takes a fraction of one. Artifacts are
//! kept in the user's cache directory (`$NANOPROC_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/nanoproc`, else `~/.cache/nanoproc`; `NANOPROC_CACHE=off`
//! disables it), one file per component and engine configuration.
//!
//! Loading an artifact is `unsafe` in wasmtime: it is machine code that runs with
//! the host's authority. Whoever can write an entry that nanoproc loads runs code
//! as the user, with every grant of every nanoprocess of the next run. A checksum
//! stored beside the artifact proves nothing against that: anyone who can write
//! the file can write a matching checksum. So:
//!
//! * Every entry carries an HMAC-SHA256 under a per-user secret key (`key` in the
//!   cache directory, 32 random bytes). The MAC covers the SHA-256 of the
//!   component's bytes, wasmtime's compatibility hash for the engine (its version
//!   and every setting that changes code generation) and the artifact. An entry
//!   whose MAC does not verify (corrupt, truncated, written by someone without the
//!   key, or the artifact of another component moved into place) is recompiled and
//!   replaced, never loaded.
//! * The key is created with mode `0400` and used only if it is still exactly
//!   that: a plain file of this user's, mode `0400`, one link, 32 bytes. A guest
//!   can create files only through WASI, which cannot set a mode (they get
//!   `0666` less the umask), so a key a guest planted is never taken for ours.
//! * The key is only as secret as the directory it is in. When a run grants any
//!   nanoprocess a directory that contains the cache (or lies inside it), or an
//!   output file inside it, the run goes without the cache and says so, and the key
//!   is burnt before any guest runs: emptied in place (a hard link a guest made
//!   earlier sees nothing) and removed, so that later runs make a new one that
//!   this run's guests never saw. Every entry sealed with the old key is then
//!   recompiled on first use.
//! * A run started while such a run is still going could make the new key where
//!   the exposed run's guests can read it. So a run that exposes the cache marks
//!   itself for as long as its plan lives, with an abstract Unix socket (a name in
//!   the kernel, not in any directory a guest can reach); a run that finds such a
//!   mark after loading its key goes without the cache too. The key is loaded
//!   first and the mark looked for after, so a key made before an exposing run
//!   began is burnt by that run, and one made after it began is never used.
//! * The directory is created private (0700), and a directory that others may write
//!   to is not used at all.
//! * Files are written under a temporary name and renamed into place, so concurrent
//!   runs never see half a file.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"nanoproc compiled component v2\n";
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Read-only for its owner: a mode no file created through WASI gets.
#[cfg(unix)]
const KEY_MODE: u32 = 0o400;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, Debug)]
pub(crate) struct CompileCache {
    store: Option<Store>,
}

#[derive(Clone)]
struct Store {
    dir: PathBuf,
    key: Arc<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl CompileCache {
    /// The cache the environment asks for; none if disabled or unusable.
    pub fn from_env() -> Self {
        if std::env::var_os("NANOPROC_CACHE").is_some_and(|v| v == "off") {
            return Self { store: None };
        }
        let dir = std::env::var_os("NANOPROC_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("nanoproc"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("nanoproc"))
            });
        let store = dir
            .filter(|d| private_dir(d))
            .and_then(|d| d.canonicalize().ok())
            .and_then(|dir| {
                let key = load_or_create_key(&dir.join("key"))?;
                Some(Store {
                    dir,
                    key: Arc::new(key),
                })
            })
            // After the key: see the module's documentation.
            .filter(|_| !exposure::active());
        Self { store }
    }

    /// This cache, unless one of `reachable` (host paths some nanoprocess of a run
    /// can read or write) contains it or lies inside it; then no cache, and why.
    pub fn unreachable_from(
        &self,
        reachable: &[PathBuf],
    ) -> (Self, Option<String>, Option<Exposed>) {
        let Some(store) = &self.store else {
            return (self.clone(), None, None);
        };
        for p in reachable {
            let p = resolved(p);
            if store.dir.starts_with(&p) || p.starts_with(&store.dir) {
                // Marked before the key is burnt: see the module's documentation.
                let mark = exposure::mark();
                burn_key(&store.dir.join("key"));
                return (
                    Self { store: None },
                    Some(format!(
                        "not using the compile cache {}: a nanoprocess is granted {}, which {} it; every component is compiled afresh, and the cache's key is replaced after this run (set NANOPROC_CACHE_DIR to a directory outside every grant)",
                        store.dir.display(),
                        p.display(),
                        if store.dir.starts_with(&p) {
                            "contains"
                        } else {
                            "lies inside"
                        }
                    )),
                    Some(mark),
                );
            }
        }
        (self.clone(), None, None)
    }

    /// Loads the component's artifact if an authentic one is cached, else compiles
    /// it and caches the result. Cache failures never fail the load.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(store) = &self.store else {
            return Component::new(engine, bytes);
        };
        let context = Context::new(engine, bytes);
        let path = store.dir.join(format!("{}.cwasm", context.file_key()));
        if let Ok(file) = std::fs::read(&path)
            && let Some(artifact) = authentic(&store.key, &context, &file)
        {
            // SAFETY: the artifact carries a MAC under a key only this user can read,
            // kept out of reach of every nanoprocess of this run, over this
            // component's digest and this engine's compatibility hash: nanoproc
            // wrote it, with `precompile_component`, for an engine that loads it.
            // wasmtime checks its header again.
            if let Ok(component) = unsafe { Component::deserialize(engine, artifact) } {
                return Ok(component);
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        let _ = write_entry(&path, &seal(&store.key, &context, &artifact));
        // SAFETY: produced just now by this engine.
        unsafe { Component::deserialize(engine, &artifact) }
    }
}

pub(crate) use exposure::Exposed;

/// Runs whose guests can reach the cache, marked where no guest can reach.
mod exposure {
    /// Held while a plan that exposes the cache lives.
    #[derive(Debug)]
    pub(crate) struct Exposed {
        #[cfg(target_os = "linux")]
        _socket: Option<std::os::unix::net::UnixDatagram>,
    }

    #[cfg(target_os = "linux")]
    fn prefix() -> String {
        // SAFETY: geteuid has no preconditions and cannot fail.
        format!("nanoproc-cache-exposed-{}-", unsafe { libc::geteuid() })
    }

    /// Marks this process as running guests that can reach the cache.
    pub(crate) fn mark() -> Exposed {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            use std::sync::atomic::{AtomicU64, Ordering};
            static N: AtomicU64 = AtomicU64::new(0);
            let name = format!(
                "{}{}-{}",
                prefix(),
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let socket = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| std::os::unix::net::UnixDatagram::bind_addr(&addr))
                .ok();
            Exposed { _socket: socket }
        }
        #[cfg(not(target_os = "linux"))]
        Exposed {}
    }

    /// Whether some process of this user is running guests that can reach the
    /// cache (or whether that cannot be told).
    pub(crate) fn active() -> bool {
        #[cfg(target_os = "linux")]
        {
            match std::fs::read_to_string("/proc/net/unix") {
                Ok(table) => table.contains(&format!("@{}", prefix())),
                Err(_) => true,
            }
        }
        #[cfg(not(target_os = "linux"))]
        false
    }
}

/// What an entry is bound to: the component's digest and the engine's
/// compatibility hash.
struct Context {
    component: [u8; 32],
    engine: [u8; 32],
}

impl Context {
    fn new(engine: &Engine, bytes: &[u8]) -> Self {
        struct ShaHasher(Sha256);
        impl Hasher for ShaHasher {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, bytes: &[u8]) {
                self.0.update(bytes);
            }
        }
        let mut h = ShaHasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            component: Sha256::digest(bytes).into(),
            engine: h.0.finalize().into(),
        }
    }

    /// The entry's file name: a changed component or configuration gets another.
    fn file_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.engine);
        h.update(self.component);
        hex::encode(h.finalize())
    }

    fn mac(&self, key: &[u8; KEY_LEN], artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(MAGIC);
        mac.update(&self.component);
        mac.update(&self.engine);
        mac.update(artifact);
        mac
    }
}

/// The artifact in `file`, if its MAC verifies for this component and engine.
fn authentic<'a>(key: &[u8; KEY_LEN], context: &Context, file: &'a [u8]) -> Option<&'a [u8]> {
    let rest = file.strip_prefix(MAGIC)?;
    if rest.len() < MAC_LEN {
        return None;
    }
    let (tag, artifact) = rest.split_at(MAC_LEN);
    context
        .mac(key, artifact)
        .verify_slice(tag)
        .ok()
        .map(|()| artifact)
}

fn seal(key: &[u8; KEY_LEN], context: &Context, artifact: &[u8]) -> Vec<u8> {
    let tag = context.mac(key, artifact).finalize().into_bytes();
    let mut data = Vec::with_capacity(MAGIC.len() + MAC_LEN + artifact.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&tag);
    data.extend_from_slice(artifact);
    data
}

fn write_entry(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// `p` with symbolic links resolved as far as it exists.
fn resolved(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => resolved(parent).join(name),
        _ => p.to_path_buf(),
    }
}

/// Makes the key useless to anyone who may have read it or linked it: emptied in
/// place, then removed. A missing key is made afresh by the next run.
fn burn_key(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            && file.metadata().is_ok_and(|m| m.is_file())
        {
            // Writable for the moment it takes to empty it.
            let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
            if let Ok(w) = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
            {
                let _ = w.set_len(0);
                let _ = w.sync_all();
            }
        }
    }
    let _ = std::fs::remove_file(path);
}

/// The user's cache key: read if it is still what this code creates (a plain
/// file of this user's, mode `0400`, one link, 32 bytes), created (random) if it
/// is missing; `None` otherwise.
fn load_or_create_key(path: &Path) -> Option<[u8; KEY_LEN]> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
        };
        let file = match open() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                getrandom::fill(&mut key).ok()?;
                // `create_new`: never through a link, never over another's key.
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(KEY_MODE)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                {
                    Ok(mut f) => {
                        use std::io::Write;
                        f.write_all(&key).ok()?;
                        f.sync_all().ok()?;
                        return Some(key);
                    }
                    // Another run made it first: read theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => open().ok()?,
                    Err(_) => return None,
                }
            }
            Err(_) => return None,
        };
        let meta = file.metadata().ok()?;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if !meta.is_file()
            || meta.uid() != me
            || meta.mode() & 0o7777 != KEY_MODE
            || meta.nlink() != 1
        {
            return None;
        }
        if meta.len() != KEY_LEN as u64 {
            return None;
        }
        let mut key = [0u8; KEY_LEN];
        (&file).read_exact(&mut key).ok()?;
        Some(key)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Creates the directory private if it is missing; whether only its owner may
/// write to it.
fn private_dir(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
        std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o022 == 0)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(component: u8) -> Context {
        Context {
            component: [component; 32],
            engine: [7; 32],
        }
    }

    #[test]
    fn only_entries_sealed_with_the_key_for_this_component_verify() {
        let key = [1u8; KEY_LEN];
        let artifact = b"pretend machine code".to_vec();
        let file = seal(&key, &context(1), &artifact);
        assert_eq!(authentic(&key, &context(1), &file), Some(&artifact[..]));
        // Tampered, truncated, foreign.
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(authentic(&key, &context(1), &flipped), None);
        assert_eq!(authentic(&key, &context(1), &file[..file.len() - 1]), None);
        assert_eq!(
            authentic(&key, &context(1), b"\x7fELF something else"),
            None
        );
        // Another component's entry moved into place, or one for another engine.
        assert_eq!(authentic(&key, &context(2), &file), None);
        let other_engine = Context {
            component: [1; 32],
            engine: [8; 32],
        };
        assert_eq!(authentic(&key, &other_engine, &file), None);
        // Sealed by someone without the key.
        let forged = seal(&[2u8; KEY_LEN], &context(1), &artifact);
        assert_eq!(authentic(&key, &context(1), &forged), None);
    }

    #[test]
    fn a_grant_over_or_inside_the_cache_disables_it() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        std::fs::create_dir(&cache_dir).unwrap();
        let cache = CompileCache {
            store: Some(Store {
                dir: cache_dir.canonicalize().unwrap(),
                key: Arc::new([0; KEY_LEN]),
            }),
        };
        let outside = dir.path().join("elsewhere");
        std::fs::create_dir(&outside).unwrap();
        assert!(cache.unreachable_from(&[outside]).1.is_none());
        for reach in [
            dir.path().to_path_buf(),
            cache_dir.clone(),
            cache_dir.join("out.log"),
        ] {
            let (c, notice, mark) = cache.unreachable_from(std::slice::from_ref(&reach));
            assert!(mark.is_some(), "the run is marked as exposing the cache");
            assert!(exposure::active(), "and other runs can see it");
            assert!(c.store.is_none(), "{reach:?}");
            assert!(notice.unwrap().contains("not using the compile cache"));
        }
    }

    #[test]
    fn the_key_must_be_the_one_nanoproc_made() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = load_or_create_key(&path).expect("created");
        assert_eq!(load_or_create_key(&path), Some(key), "read back");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o400);
        // Another mode (what a file created through WASI gets), another link to
        // it, a symlink to it: none is taken.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create_key(&path), None, "mode 0600");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        let hard = dir.path().join("hard");
        std::fs::hard_link(&path, &hard).unwrap();
        assert_eq!(load_or_create_key(&path), None, "two links");
        std::fs::remove_file(&hard).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(load_or_create_key(&link), None, "a link is not followed");

        // Burnt: a hard link made before sees nothing, and the next key differs.
        std::fs::hard_link(&path, &hard).unwrap();
        burn_key(&path);
        assert!(!path.exists());
        assert_eq!(std::fs::metadata(&hard).unwrap().len(), 0);
        let fresh = load_or_create_key(&path).expect("a new key");
        assert_ne!(fresh, key);
    }
}
