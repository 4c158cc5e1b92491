//! `nanoproc lock`: records what was approved for each nanoprocess of a manifest
//! in `nanoproc.lock` beside it; and the check `check` and `run` make against it
//! (see `nanoproc_runtime::lock` for what counts as a change, and which changes
//! refuse).

use crate::Reading;
use crate::report::printable;
use crate::{not_checked, print_out, status};
use clap::Args;
use nanoproc_runtime::lock::{Difference, Lock, lock_path};
use nanoproc_runtime::manifest::{ManifestError, ManifestErrors};
use nanoproc_runtime::{CheckError, Plan, Runtime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct LockArgs {
    /// The manifest (nanoproc.toml); the lock is written beside it
    /// (nanoproc.lock).
    manifest: PathBuf,
    #[command(flatten)]
    pub reading: Reading,
    /// Record the tree as it is now, over a lock that differs from it (after
    /// reviewing the differences it prints without this flag).
    #[arg(long)]
    update: bool,
}

pub fn lock(runtime: &Runtime, args: &LockArgs, max_size: u64) -> ExitCode {
    let plan = match runtime.check_manifest(&args.manifest, &[]) {
        Ok(plan) => plan,
        Err(e) => return not_checked(&e),
    };
    let now = match current(&plan, &args.manifest, max_size) {
        Ok(lock) => lock,
        Err(e) => return not_checked(&e),
    };
    let path = lock_path(&args.manifest);
    let shown = path.display().to_string();
    if path.exists() && !args.update {
        let locked = match read(&path) {
            Ok(l) => l,
            Err(e) => return not_checked(&e),
        };
        let differences = locked.compare(&now);
        if differences.is_empty() {
            print_out(&format!("{shown}: up to date\n"));
            return ExitCode::SUCCESS;
        }
        for d in &differences {
            eprintln!("  {}", printable(&d.to_string()));
        }
        eprintln!(
            "nanoproc: {shown} differs from the tree ({} difference{}); after review, record it with `nanoproc lock --update {}`",
            differences.len(),
            if differences.len() == 1 { "" } else { "s" },
            args.manifest.display()
        );
        return ExitCode::from(status::REFUSED_AT_CHECK);
    }
    let text = now.to_toml();
    if let Err(e) = crate::learn::write_atomically(&path, &text) {
        eprintln!("nanoproc: writing {shown}: {e}");
        return ExitCode::from(status::CANNOT_START);
    }
    print_out(&format!(
        "{shown}: {} nanoprocess{} recorded\n",
        now.nodes.len(),
        if now.nodes.len() == 1 { "" } else { "es" }
    ));
    ExitCode::SUCCESS
}

/// The tree's lock as it is now.
fn current(plan: &Plan, manifest: &Path, max_size: u64) -> Result<Lock, CheckError> {
    let refused = |message: String| {
        CheckError::Refused(ManifestErrors(vec![ManifestError::new(None, message)]))
    };
    // The text the plan was checked from, not a second read of the file.
    let source = plan
        .manifest_source()
        .ok_or_else(|| refused(format!("{} is not a manifest", manifest.display())))?;
    let dir = std::path::absolute(manifest)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    Lock::of_plan(plan, &dir, source, max_size).map_err(refused)
}

/// Reads a lock file; an unreadable or malformed one refuses, naming it.
fn read(path: &Path) -> Result<Lock, CheckError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CheckError::Refused(ManifestErrors(vec![ManifestError::new(
            None,
            format!("{}: {e}", path.display()),
        )]))
    })?;
    Lock::parse(&text).map_err(|e| {
        CheckError::Refused(ManifestErrors(vec![
            ManifestError::new(None, format!("{}: {e}", path.display()))
                .help("fix it, or delete it and record the tree again with `nanoproc lock`"),
        ]))
    })
}

/// The check `check` and `run` make of a manifest's tree against its lock, if it
/// has one: differences that only warn are returned, to be printed; those that
/// refuse (every one, when `locked`) are the error. With `locked`, a manifest
/// without a lock is refused too: CI must not pass a tree nobody approved.
pub fn enforce(
    plan: &Plan,
    manifest: &Path,
    locked: bool,
    max_size: u64,
) -> Result<Vec<String>, CheckError> {
    let path = lock_path(manifest);
    if !path.exists() {
        if locked {
            return Err(CheckError::Refused(ManifestErrors(vec![
                ManifestError::new(None, format!("--locked: {} does not exist", path.display()))
                    .help(format!(
                        "record the approved tree with `nanoproc lock {}`, and commit it",
                        manifest.display()
                    )),
            ])));
        }
        return Ok(Vec::new());
    }
    let lock = read(&path)?;
    let now = current(plan, manifest, max_size)?;
    let (refusing, warning): (Vec<Difference>, Vec<Difference>) = lock
        .compare(&now)
        .into_iter()
        .partition(|d| d.refuses(locked));
    let warnings = warning
        .iter()
        .map(|d| format!("{}: {d}", path.display()))
        .collect();
    if refusing.is_empty() {
        return Ok(warnings);
    }
    let help = format!(
        "if this is what you approve, record it with `nanoproc lock --update {}`",
        manifest.display()
    );
    let errors = refusing
        .iter()
        .map(|d| ManifestError::new(None, format!("{}: {d}", path.display())).help(help.clone()))
        .collect();
    Err(CheckError::Refused(ManifestErrors(errors)))
}
