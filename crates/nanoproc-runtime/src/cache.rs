//! A cache of compiled components, so that a second run does not compile again.
//!
//! Compiling a component with Cranelift takes tens of milliseconds per component;
//! loading wasmtime's precompiled artifact takes a fraction of one. Artifacts are
//! kept in the user's cache directory (`$NANOPROC_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/nanoproc`, else `~/.cache/nanoproc`; `NANOPROC_CACHE=off`
//! disables it), one file per component and engine configuration.
//!
//! Loading an artifact is `unsafe` in wasmtime: it is machine code that will run
//! with the host's authority, so nanoproc must only load what it wrote itself.
//!
//! * The key is the SHA-256 of the component's bytes and of wasmtime's
//!   compatibility hash for the engine (its version and every setting that changes
//!   code generation): a changed component or configuration is never served a stale
//!   artifact.
//! * Each file starts with a magic line and the SHA-256 of the artifact; a file
//!   that is truncated, corrupt or not ours fails that check and is ignored (and
//!   replaced by a fresh compile), never loaded. wasmtime checks the artifact's own
//!   header again on load.
//! * Files are written under a temporary name and renamed into place, so
//!   concurrent runs never see half a file.
//! * The directory is created private (0700), and a directory that others may write
//!   to is not used at all: the checksum protects against accidents, not against
//!   someone who can write the cache, so nobody else must be able to.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::Engine;
use wasmtime::component::Component;

const MAGIC: &[u8] = b"nanoproc compiled component v1\n";

#[derive(Clone, Debug)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// The cache the environment asks for; none if disabled or unusable.
    pub fn from_env() -> Self {
        if std::env::var_os("NANOPROC_CACHE").is_some_and(|v| v == "off") {
            return Self { dir: None };
        }
        let dir = std::env::var_os("NANOPROC_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("nanoproc"))
            })
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("nanoproc"))
            });
        Self {
            dir: dir.filter(|d| private_dir(d)),
        }
    }

    /// Loads the component's artifact if a valid one is cached, else compiles it
    /// and caches the result. Cache failures never fail the load.
    pub fn load_or_compile(&self, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(dir) = &self.dir else {
            return Component::new(engine, bytes);
        };
        let path = dir.join(format!("{}.cwasm", key(engine, bytes)));
        if let Ok(file) = std::fs::read(&path)
            && let Some(artifact) = verified(&file)
        {
            // SAFETY: the artifact is one this cache wrote (its checksum matches,
            // in a directory only this user can write), produced by
            // `precompile_component` for an engine with the same compatibility
            // hash (part of the key); wasmtime re-checks its header.
            if let Ok(component) = unsafe { Component::deserialize(engine, artifact) } {
                return Ok(component);
            }
        }
        let artifact = engine.precompile_component(bytes)?;
        let _ = store(&path, &artifact);
        // SAFETY: produced just now by this engine.
        unsafe { Component::deserialize(engine, &artifact) }
    }
}

fn key(engine: &Engine, bytes: &[u8]) -> String {
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
    h.0.update(Sha256::digest(bytes));
    hex::encode(h.0.finalize())
}

fn verified(file: &[u8]) -> Option<&[u8]> {
    let rest = file.strip_prefix(MAGIC)?;
    if rest.len() < 32 {
        return None;
    }
    let (sum, artifact) = rest.split_at(32);
    (Sha256::digest(artifact).as_slice() == sum).then_some(artifact)
}

fn store(path: &std::path::Path, artifact: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut data = Vec::with_capacity(MAGIC.len() + 32 + artifact.len());
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(&Sha256::digest(artifact));
    data.extend_from_slice(artifact);
    std::fs::write(&tmp, &data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Creates the directory private if it is missing; whether only its owner may
/// write to it.
fn private_dir(dir: &std::path::Path) -> bool {
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
        std::fs::create_dir_all(dir).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_intact_files_verify() {
        let artifact = b"pretend machine code".to_vec();
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&Sha256::digest(&artifact));
        file.extend_from_slice(&artifact);
        assert_eq!(verified(&file), Some(&artifact[..]));
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&flipped), None);
        assert_eq!(verified(&file[..file.len() - 1]), None);
        assert_eq!(verified(b"\x7fELF something else"), None);
    }
}
