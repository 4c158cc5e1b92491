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
//! * Every entry carries an HMAC-SHA256 under a per-user secret key. The MAC
//!   covers the SHA-256 of the component's bytes, wasmtime's compatibility hash
//!   for the engine (its version and every setting that changes code generation)
//!   and the artifact. An entry whose MAC does not verify (corrupt, truncated,
//!   written by someone without the key, or the artifact of another component
//!   moved into place) is recompiled and replaced, never loaded.
//! * The key is never in a file. A file can be granted to a guest (`--dir ~` grants
//!   `~/.cache`), and a guest that could read the key once, or plant one, could
//!   forge entries for every later run; while a run that exposes a directory is
//!   going, even a key made by a concurrent run would be in its reach. So the key
//!   lives in the user's kernel keyring (`keyctl`, one key for all its caches):
//!   readable by this user's processes, by no other user, and by no guest, since
//!   WASI has no way to name it. Where the keyring cannot be used, there is no
//!   cache: every component is compiled afresh.
//! * When a run grants any nanoprocess a directory that contains the cache (or
//!   lies inside it), or an output file inside it, the run goes without the cache
//!   and says so: its guests could replace entries (which later runs would only
//!   recompile) or read compiled code.
//! * The directory is created private (0700), and a directory that others may write
//!   to is not used at all.
//! * Files are written under a temporary name and renamed into place, so concurrent
//!   runs never see half a file.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"nanoproc compiled component v2\n";
const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Where [`CompileCache::load_or_compile`] got a component from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// An authentic cached artifact: nothing was compiled.
    Cache,
    /// Compiled now (and cached, if there is a cache).
    Compiled,
}

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
                let key = keyring::key_for(&dir)?;
                Some(Store {
                    dir,
                    key: Arc::new(key),
                })
            });
        Self { store }
    }

    /// This cache, unless one of `reachable` (host paths some nanoprocess of a run
    /// can read or write) contains it or lies inside it; then no cache, and why.
    pub fn unreachable_from(&self, reachable: &[PathBuf]) -> (Self, Option<String>) {
        let Some(store) = &self.store else {
            return (self.clone(), None);
        };
        for p in reachable {
            let p = resolved(p);
            if store.dir.starts_with(&p) || p.starts_with(&store.dir) {
                return (
                    Self { store: None },
                    Some(format!(
                        "not using the compile cache {}: a nanoprocess is granted {}, which {} it; every component is compiled afresh (set NANOPROC_CACHE_DIR to a directory outside every grant)",
                        store.dir.display(),
                        p.display(),
                        if store.dir.starts_with(&p) {
                            "contains"
                        } else {
                            "lies inside"
                        }
                    )),
                );
            }
        }
        (self.clone(), None)
    }

    /// Loads the component's artifact if an authentic one is cached, else compiles
    /// it and caches the result. Cache failures never fail the load. `compiling` is
    /// called just before a compilation starts (not for a cache hit), so that
    /// progress is shown only for real work.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        compiling: impl FnOnce(),
    ) -> wasmtime::Result<(Component, Origin)> {
        let Some(store) = &self.store else {
            compiling();
            return Ok((Component::new(engine, bytes)?, Origin::Compiled));
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
                return Ok((component, Origin::Cache));
            }
        }
        compiling();
        let artifact = engine.precompile_component(bytes)?;
        let _ = write_entry(&path, &seal(&store.key, &context, &artifact));
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &artifact) }?;
        Ok((component, Origin::Compiled))
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

/// The per-user key, in the kernel keyring.
mod keyring {
    use super::KEY_LEN;
    use std::path::Path;

    /// This user's key for its compile caches: found in the user keyring, or made
    /// (random) and added to it. `None` where the keyring cannot be used. One key
    /// serves every cache directory (an entry is bound to its component and engine
    /// anyway), so the user's key quota is not spent by many cache directories.
    #[cfg(target_os = "linux")]
    pub(super) fn key_for(_dir: &Path) -> Option<[u8; KEY_LEN]> {
        use linux_keyutils::{KeyPermissionsBuilder, KeyRing, KeyRingIdentifier, Permission};
        let ring = KeyRing::from_special_id(KeyRingIdentifier::User, true).ok()?;
        let description = "nanoproc compile cache key v1";
        let key = match ring.search(description) {
            Ok(key) => key,
            Err(_) => {
                let mut fresh = [0u8; KEY_LEN];
                getrandom::fill(&mut fresh).ok()?;
                let key = ring.add_key(description, &fresh).ok()?;
                // Readable by this user's processes, whatever keyrings they possess;
                // by no other user.
                let perms = KeyPermissionsBuilder::builder()
                    .posessor(Permission::ALL)
                    .user(Permission::ALL)
                    .build();
                key.set_perms(perms).ok()?;
                key
            }
        };
        // Read back. Two runs that make the key at once both add it, and the second
        // replaces the first's payload: the first then seals its entries with a
        // key that is gone, and later runs recompile them. Harmless.
        let mut bytes = [0u8; KEY_LEN];
        (key.read(&mut bytes).ok()? == KEY_LEN).then_some(bytes)
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn key_for(_dir: &Path) -> Option<[u8; KEY_LEN]> {
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
            let (c, notice) = cache.unreachable_from(std::slice::from_ref(&reach));
            assert!(c.store.is_none(), "{reach:?}");
            assert!(notice.unwrap().contains("not using the compile cache"));
        }
    }

    #[test]
    fn the_key_is_per_user_and_stays() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let Some(key) = keyring::key_for(a.path()) else {
            // No keyring here: then there is no cache, which is safe.
            return;
        };
        assert_eq!(keyring::key_for(a.path()), Some(key), "found again");
        assert_eq!(
            keyring::key_for(b.path()),
            Some(key),
            "one for every directory"
        );
        // Nothing of it is on disk.
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 0);
    }
}
