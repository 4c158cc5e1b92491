//! Granted directories as open handles: the authority a directory grant confers.
//!
//! A path names whatever is at that place *when it is resolved*. A nanoprocess
//! that may write in a directory can put a symbolic link where a dependency's
//! directory was, and anything that resolves the grant by path again (a later
//! start, a restart, the next tree of the same plan) would follow it out of every
//! grant. So a grant is resolved once, when the plan is checked, into an open
//! directory, and from then on only that handle is used (cap-std's principle):
//!
//! * A root grant is opened once per plan: its parent directory as the user named
//!   it, then its last component *without following a symbolic link*. A root grant
//!   that lies inside another root grant is opened through the enclosing grant's
//!   handle, component by component, so a guest holding the encloser cannot
//!   redirect it; one that would add no right to its encloser is refused, since it
//!   could only mislead a reader of the manifest.
//! * A dependency's directory is opened through its parent's *open* directory,
//!   one component at a time, refusing every symbolic link (`..` never reaches
//!   here: guest paths refuse it).
//! * Every start, restart and later tree reopens the plan's handle itself
//!   (`/proc/self/fd/N` names the open directory, not a path), so nothing a guest
//!   does to the filesystem after `check` changes what a nanoprocess holds.

use cap_primitives::fs::{open_ambient_dir, open_dir_nofollow};
use nanoproc_caps::{DirCap, FsRights};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// A granted directory, open. Cloning shares the handle.
#[derive(Clone, Debug)]
pub struct OpenedDir {
    file: Arc<std::fs::File>,
    /// The host path it was opened at, for messages when the kernel cannot say.
    opened_at: PathBuf,
}

impl OpenedDir {
    /// Where the open directory is now, as the kernel reports it: what `check`
    /// shows, because it is what the nanoprocess will get.
    pub fn host_path(&self) -> PathBuf {
        real_path(&self.file).unwrap_or_else(|| self.opened_at.clone())
    }

    /// The directory `components` below this one, each opened without following a
    /// symbolic link.
    pub(crate) fn open_below(&self, components: &[String]) -> std::io::Result<OpenedDir> {
        let mut current = self.file.try_clone()?;
        let mut at = self.opened_at.clone();
        for c in components {
            current = open_dir_nofollow(&current, Path::new(c)).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "{}: {e} (each component must be a directory, not a symbolic link)",
                        at.join(c).display()
                    ),
                )
            })?;
            at.push(c);
        }
        Ok(OpenedDir {
            file: Arc::new(current),
            opened_at: at,
        })
    }

    /// Adds this directory as a preopen of a WASI context. wasmtime-wasi opens
    /// preopens by path; `/proc/self/fd/N` is the magic link to this very open
    /// directory, so what it opens is the handle checked with the plan.
    pub(crate) fn preopen(
        &self,
        b: &mut WasiCtxBuilder,
        guest: &str,
        rights: FsRights,
    ) -> wasmtime::Result<()> {
        let perms = if rights.can_modify() {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let fd_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
            b.preopened_dir(Path::new(&fd_path), guest, perms)?;
        }
        #[cfg(not(target_os = "linux"))]
        {
            // No way to name an open directory here: reopened by path, so a
            // symlink swapped in after `check` is followed on this platform.
            b.preopened_dir(&self.opened_at, guest, perms)?;
        }
        Ok(())
    }
}

/// The components of `path` below `ancestor` (both absolute and normal).
fn components_below(path: &Path, ancestor: &Path) -> Option<Vec<String>> {
    let rest = path.strip_prefix(ancestor).ok()?;
    rest.components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Opens the root's directory grants (their host paths already absolute, with
/// the parent directory resolved). One result per grant, in order.
pub(crate) fn open_root(dirs: &[DirCap]) -> Vec<Result<OpenedDir, String>> {
    let mut out: Vec<Option<Result<OpenedDir, String>>> = vec![None; dirs.len()];
    // Enclosers first: a grant is opened through the deepest grant above it.
    let mut order: Vec<usize> = (0..dirs.len()).collect();
    order.sort_by_key(|&i| (dirs[i].host.components().count(), i));
    for i in order {
        let dir = &dirs[i];
        let encloser = (0..dirs.len())
            .filter(|&j| matches!(out[j], Some(Ok(_))) && dir.host.starts_with(&dirs[j].host))
            .max_by_key(|&j| dirs[j].host.components().count());
        let result = match encloser {
            Some(j) if dirs[j].rights.contains(dir.rights) => Err(format!(
                "{} lies inside grant fs[{j}] ({} as {}), which already holds every right it asks for ({}); remove it, or grant rights beyond fs[{j}]'s",
                dir.host.display(),
                dirs[j].host.display(),
                dirs[j].rights,
                dir.rights
            )),
            Some(j) => {
                let Some(Ok(encl)) = &out[j] else {
                    unreachable!("filtered above")
                };
                components_below(&dir.host, &dirs[j].host)
                    .ok_or_else(|| format!("{} is not a plain path", dir.host.display()))
                    .and_then(|below| encl.open_below(&below).map_err(|e| e.to_string()))
            }
            None => open_ambient(&dir.host),
        };
        out[i] = Some(result.and_then(not_procfs));
    }
    out.into_iter()
        .map(|r| r.expect("every grant visited"))
        .collect()
}

/// Refuses a directory on procfs (see [`on_procfs`]).
fn not_procfs(dir: OpenedDir) -> Result<OpenedDir, String> {
    if on_procfs(&dir.file) {
        Err(format!(
            "{} is on procfs: it would give the nanoprocess nanoproc's own memory and environment (`/proc/self/mem`); it cannot be granted",
            dir.host_path().display()
        ))
    } else {
        Ok(dir)
    }
}

/// Opens a root grant by the path the user gave: its parent as named, its last
/// component without following a symbolic link.
fn open_ambient(host: &Path) -> Result<OpenedDir, String> {
    let authority = cap_primitives::ambient_authority();
    let (file, at) = match (host.parent(), host.file_name()) {
        (Some(parent), Some(name)) => {
            let parent_dir = open_ambient_dir(parent, authority)
                .map_err(|e| format!("{}: {e}", parent.display()))?;
            let file = open_dir_nofollow(&parent_dir, Path::new(name)).map_err(|e| {
                let link = std::fs::symlink_metadata(host).is_ok_and(|m| m.is_symlink());
                if link {
                    format!(
                        "{} is a symbolic link; nanoproc opens granted directories without following one (grant the directory it points to)",
                        host.display()
                    )
                } else {
                    format!("{}: {e}", host.display())
                }
            })?;
            (file, host.to_path_buf())
        }
        _ => (
            open_ambient_dir(host, authority).map_err(|e| format!("{}: {e}", host.display()))?,
            host.to_path_buf(),
        ),
    };
    Ok(OpenedDir {
        file: Arc::new(file),
        opened_at: at,
    })
}

/// Opens a dependency's directories through its parent's open ones.
pub(crate) fn open_child(parent: &[OpenedDir], dirs: &[DirCap]) -> Vec<Result<OpenedDir, String>> {
    dirs.iter()
        .map(|d| match &d.derived {
            Some(from) => parent
                .get(from.parent_dir)
                .ok_or_else(|| "its parent's directory is missing".to_string())
                .and_then(|p| {
                    p.open_below(&from.below_parent)
                        .map_err(|e| format!("{e} (it must be a directory inside the parent's, reached without leaving it)"))
                })
                .and_then(not_procfs),
            // `attenuate` derives every directory of a dependency.
            None => Err("a dependency's directory must come from its parent".to_string()),
        })
        .collect()
}

/// Where an open directory is now, as the kernel reports it.
pub(crate) fn real_path(file: &std::fs::File) -> Option<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        None
    }
}

/// Where every directory of a plan really is, and who holds it: what a directory
/// handed across a boundary at run time is checked against (see `handles`).
#[derive(Debug, Default)]
pub(crate) struct PlanDirs {
    /// (holder's index in the plan, real path, rights), for every granted directory.
    pub regions: Vec<(usize, PathBuf, FsRights)>,
    /// For each nanoprocess: itself and its ancestors.
    pub lineage: Vec<Vec<usize>>,
}

impl PlanDirs {
    /// The directories of nanoprocesses other than `node` and its ancestors.
    pub fn foreign_to(&self, node: usize) -> impl Iterator<Item = &(usize, PathBuf, FsRights)> {
        let lineage: &[usize] = self.lineage.get(node).map_or(&[], Vec::as_slice);
        self.regions
            .iter()
            .filter(move |(owner, _, _)| !lineage.contains(owner))
    }
}

/// Whether an open file or directory lies on procfs (or that cannot be told).
///
/// `/proc/self` is an ordinary relative symlink, so a guest whose grant reaches
/// procfs (a grant of `/proc`, or of `/`) could open `/proc/self/mem` and read or
/// rewrite nanoproc's own memory: every other nanoprocess's data, the host's
/// environment, the compiled code. No grant may reach it: such a directory is
/// refused at check, and anything the filesystem guard opens there is closed and
/// refused.
pub(crate) fn on_procfs(file: &std::fs::File) -> bool {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `statfs` is plain data, and zero is a valid value of it.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: a descriptor this `File` owns, and a buffer of the type asked for.
        let r = unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) };
        // Fails closed: a filesystem that cannot be told is treated as procfs.
        r != 0 || st.f_type == libc::PROC_SUPER_MAGIC
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = file;
        false
    }
}
