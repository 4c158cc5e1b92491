//! `nanoproc learn`: runs a tree once, watching what each nanoprocess uses, and
//! proposes the smallest grants that would have allowed that run, as a patch to
//! the manifest (applied only with `--write`), or as `run` flags for a single
//! component.
//!
//! While it learns, each dependency holds everything its parent holds and never
//! more (the runtime carves it out of its parent's holding as usual); the root
//! holds what the manifest or the flags give it. So learning gives no nanoprocess
//! anything the user had not already trusted its parent with. What was refused
//! even so is beyond what the user granted: it is shown with the lines that would
//! grant it, and never written.

use crate::Reading;
use crate::flags::{GrantFlags, Target};
use crate::report::printable;
use crate::{not_checked, print_notices, print_out, status};
use clap::Args;
use nanoproc_runtime::caps::{FAMILIES, Family, LimitsFamily, Suggestion, flag, shell_quote};
use nanoproc_runtime::manifest::edit::{GrantsEdit, replace_grants, written_grant_keys};
use nanoproc_runtime::{Audit, Interrupt, Proposal, RunError, RunOptions, Runtime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct LearnArgs {
    #[command(flatten)]
    pub reading: Reading,
    /// Apply the proposal to the manifest (it is only shown otherwise). Refused
    /// when the run could not record every use.
    #[arg(long)]
    write: bool,
    /// Also write every decision of the learning run to FILE as JSON Lines.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    #[command(flatten)]
    grants: GrantFlags,
    #[command(flatten)]
    what: Target,
}

impl LearnArgs {
    fn target(&self) -> &Path {
        self.what.target()
    }

    fn guest_args(&self) -> &[String] {
        self.what.guest_args()
    }
}

pub fn learn(runtime: &Runtime, args: &LearnArgs) -> ExitCode {
    let target = args.target();
    let is_manifest = target.extension().is_some_and(|e| e == "toml");
    let plan = if is_manifest {
        if args.grants.any() {
            eprintln!(
                "nanoproc: grant flags apply to a single component; a manifest's grants are in the manifest ({})",
                target.display()
            );
            return ExitCode::from(2);
        }
        runtime.check_manifest_learning(target, args.guest_args())
    } else {
        match args.grants.grants() {
            Ok(grants) => runtime.check_component(target, grants, args.guest_args()),
            Err(e) => {
                eprintln!("nanoproc: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return not_checked(&e),
    };
    print_notices(&plan);
    if is_manifest {
        // Learning runs only a tree `run` would run: one that asks for more than
        // its lock approved is refused here too.
        match crate::lock::enforce(&plan, target, false, runtime.max_component_size()) {
            Ok(warnings) => {
                for w in warnings {
                    eprintln!("nanoproc: warning: {}", printable(&w));
                }
            }
            Err(e) => return not_checked(&e),
        }
        // While learning, a dependency holds all its parent holds. If that
        // reaches the manifest, its lock or a component, the dependency could
        // rewrite what the next run trusts (its own grants, its own code) and
        // what --write rewrites: refused, however the root's own grant reaches
        // them (that is the user's grant to the root).
        let lock = nanoproc_runtime::lock::lock_path(target);
        let trusted = [target.to_path_buf(), lock.clone()]
            .into_iter()
            .chain(plan.nodes().iter().map(|n| n.component_path.clone()));
        for file in trusted {
            if let Some(grant) = plan.dependency_grant_reaching(&file) {
                eprintln!(
                    "{}",
                    printable(&format!(
                        "nanoproc: learning: {} lies inside a directory a dependency would hold while learning ({grant}), where it could rewrite it; move it out of the directory the root is granted, or grant the root a narrower one",
                        file.display()
                    ))
                );
                return ExitCode::from(2);
            }
        }
        if args.write
            && let Some(grant) = plan
                .grant_reaching(target)
                .or_else(|| plan.grant_reaching(&lock))
        {
            eprintln!(
                "{}",
                printable(&format!(
                    "nanoproc: learning: {} lies inside a directory granted to the root ({grant}), where it could rewrite it while learning; learn without --write, or move the manifest out of the granted directory",
                    target.display()
                ))
            );
            return ExitCode::from(2);
        }
    }
    if let Some(log) = args.audit.as_deref()
        && let Some(grant) = plan.grant_reaching(log)
    {
        eprintln!(
            "{}",
            printable(&format!(
                "nanoproc: --audit {}: it lies inside a granted directory ({grant}); write it elsewhere",
                log.display()
            ))
        );
        return ExitCode::from(2);
    }
    let audit = match Audit::learning(args.audit.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nanoproc: --audit: {e}");
            return ExitCode::from(2);
        }
    };
    // The lock as it was when the tree was checked against it.
    let lock_before = std::fs::read(nanoproc_runtime::lock::lock_path(target)).ok();
    let interrupt = Interrupt::new();
    let on_signal = interrupt.clone();
    let _ = ctrlc::set_handler(move || on_signal.stop(nanoproc_runtime::StopReason::Interrupted));
    let options = RunOptions {
        audit: audit.clone(),
        interrupt,
        timeout: None,
        ..Default::default()
    };
    eprintln!(
        "nanoproc: learning: every dependency holds all its parent holds, and each use is recorded"
    );
    let outcome = plan.start(&options).and_then(|tree| tree.run());
    // Its refusals are listed with the proposal, below.
    // Complete: the run ended by itself with status 0 and was refused nothing
    // (a refusal is a use the proposal cannot cover).
    let refused_nothing = audit.refusals().is_empty() && audit.kept().refusals_not_kept == 0;
    let completed = match &outcome {
        Ok(exit) if exit.code == 0 => refused_nothing,
        Ok(exit) => {
            eprintln!(
                "nanoproc: learning: the run exited with status {}; the proposal covers what it did until then",
                exit.code
            );
            false
        }
        Err(RunError::Exited(exit)) => {
            eprintln!(
                "nanoproc: learning: the run exited with status {}; the proposal covers what it did until then",
                exit.code
            );
            false
        }
        Err(e) => {
            eprintln!(
                "nanoproc: learning: the run failed ({}); the proposal covers what it did until then",
                printable(&e.to_string())
            );
            false
        }
    };
    let proposal = plan.propose(&audit.uses());
    // Nothing the next run trusts may have changed while the tree ran.
    let lock = is_manifest.then(|| nanoproc_runtime::lock::lock_path(target));
    if let Some(changed) = changed_during(&plan, lock.as_deref().zip(Some(&lock_before))) {
        eprintln!(
            "{}",
            printable(&format!(
                "nanoproc: learning: {changed} changed during the learning run; nothing is proposed (check what wrote it)"
            ))
        );
        return ExitCode::from(status::LEARN_INCOMPLETE);
    }
    let code = if let Some(source) = plan.manifest_source() {
        propose_manifest(target, source, &proposal, args.write)
    } else {
        propose_flags(target, args.guest_args(), &args.grants.env, &proposal)
    };
    if completed || code != ExitCode::SUCCESS {
        code
    } else {
        // A proposal from a run that failed is shown, but the failure is not
        // hidden from a script.
        ExitCode::from(status::LEARN_INCOMPLETE)
    }
}

/// The first file the next run trusts that is not as it was checked: a component
/// (by digest), or the manifest's lock (`lock_before`: its bytes then, if any).
fn changed_during(
    plan: &nanoproc_runtime::Plan,
    lock: Option<(&Path, &Option<Vec<u8>>)>,
) -> Option<String> {
    use sha2::Digest;
    for node in plan.nodes() {
        let now = std::fs::read(&node.component_path)
            .ok()
            .map(|b| <[u8; 32]>::from(sha2::Sha256::digest(&b)));
        if now != Some(node.digest) {
            return Some(node.component_path.display().to_string());
        }
    }
    if let Some((path, before)) = lock
        && std::fs::read(path).ok() != *before
    {
        return Some(path.display().to_string());
    }
    None
}

/// The keys a proposal replaces: every capability key but limits (not uses), the
/// environment (not observable per variable: see `Environment::propose`) and
/// arguments (data the parent passes), which are kept as written.
fn replaced_keys() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.keys.iter().copied())
        .filter(|k| !LimitsFamily::KEYS.contains(k) && !["env", "args"].contains(k))
        .collect()
}

/// A root's directory in the proposal, written relative to the manifest where it
/// lies below it, as a user writes it (`./photos`).
fn relative_to_manifest(value: &str, manifest_dir: &Path) -> String {
    let mut out = value.to_string();
    for dir in [
        Some(manifest_dir.to_path_buf()),
        manifest_dir.canonicalize().ok(),
    ]
    .into_iter()
    .flatten()
    {
        let prefix = format!("host = \"{}", dir.display());
        if dir.as_os_str().is_empty() || dir.to_str().is_none_or(|d| d.contains(['"', '\\'])) {
            continue;
        }
        out = out
            .replace(&format!("{prefix}/"), "host = \"./")
            .replace(&format!("{prefix}\""), "host = \".\"");
    }
    out
}

fn propose_manifest(manifest: &Path, source: &str, proposal: &Proposal, write: bool) -> ExitCode {
    let manifest_dir = std::path::absolute(manifest)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let edits: Vec<GrantsEdit> = proposal
        .nodes
        .iter()
        .map(|node| GrantsEdit {
            nanoprocess: node.name.clone(),
            grants: node
                .grants
                .iter()
                .map(|g| {
                    (
                        g.key.to_string(),
                        relative_to_manifest(&g.value, &manifest_dir),
                    )
                })
                .collect(),
        })
        .collect();
    let updated = match replace_grants(source, &edits, &replaced_keys()) {
        Ok(text) => text,
        Err(e) => {
            eprintln!(
                "nanoproc: learning: cannot write the proposal into {}: {e}",
                manifest.display()
            );
            return ExitCode::from(status::CANNOT_START);
        }
    };
    let name = manifest.display().to_string();
    let diff = similar::TextDiff::from_lines(source, &updated);
    let patch = diff
        .unified_diff()
        .context_radius(2)
        .header(&name, &name)
        .to_string();
    if patch.is_empty() {
        print_out(
            "nanoproc: learning: the manifest's grants are already the smallest for this run\n",
        );
    } else {
        print_out(&printable_patch(&patch));
    }
    print_alternatives(proposal, false);
    print_new_grants(source, proposal);
    print_dropped(proposal);
    let refused = print_refused(proposal);
    if proposal.uses_not_kept > 0 {
        eprintln!(
            "nanoproc: learning: uses past the first 100,000 distinct ones could not be kept in memory ({} recorded, repeats counted); a proposal without them would refuse them, so it is not written",
            proposal.uses_not_kept
        );
        return ExitCode::from(status::LEARN_INCOMPLETE);
    }
    if !write {
        if !patch.is_empty() {
            eprintln!("nanoproc: learning: apply it with `nanoproc learn --write {name}`");
        }
        return ExitCode::SUCCESS;
    }
    if patch.is_empty() {
        return ExitCode::SUCCESS;
    }
    // The file whose diff was shown is the one overwritten, or nothing is.
    if std::fs::read_to_string(manifest).ok().as_deref() != Some(source) {
        eprintln!(
            "nanoproc: learning: {name} changed during the learning run; nothing is written (run learn again)"
        );
        return ExitCode::from(status::LEARN_INCOMPLETE);
    }
    match write_atomically(manifest, &updated) {
        Ok(()) => {
            eprintln!(
                "nanoproc: learning: {name} rewritten{}",
                if refused > 0 {
                    " (the refusals above were not added: each would widen what the user granted)"
                } else {
                    ""
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nanoproc: learning: cannot write {name}: {e}");
            ExitCode::from(status::CANNOT_START)
        }
    }
}

/// The patch for the terminal: a guest-chosen path in a proposal is escaped by
/// the TOML writer, but a line is still checked for control characters.
fn printable_patch(patch: &str) -> String {
    patch.lines().map(|l| printable(l) + "\n").collect()
}

/// The weaker grants that may be enough, for the user to choose: as flags for a
/// `single` component, else as manifest lines.
fn print_alternatives(proposal: &Proposal, single: bool) {
    let mut lines = Vec::new();
    for node in &proposal.nodes {
        for g in &node.grants {
            if let Some(instead) = &g.instead {
                lines.push(if single {
                    format!(
                        "  {} instead of {}: {}",
                        instead.flags.join(" "),
                        g.flags.join(" "),
                        instead.meaning
                    )
                } else {
                    format!(
                        "  [nanoprocess.{}] grants.{} = {}: {}",
                        node.name, g.key, instead.value, instead.meaning
                    )
                });
            }
        }
    }
    if !lines.is_empty() {
        eprintln!("nanoproc: learning: where the values were not needed, these are enough:");
        for l in lines {
            eprintln!("{}", printable(&l));
        }
    }
}

/// The grants the proposal gives a nanoprocess under a key its manifest did not
/// write: learnt from what it did, which the user should check it was meant to
/// (a compromised dependency is learnt as faithfully as an honest one).
fn print_new_grants(source: &str, proposal: &Proposal) {
    let mut lines = Vec::new();
    for node in &proposal.nodes {
        let written = written_grant_keys(source, &node.name);
        for g in &node.grants {
            if !written.iter().any(|k| k == g.key) {
                lines.push(format!(
                    "  [nanoprocess.{}] {}",
                    node.name,
                    g.manifest_line()
                ));
            }
        }
    }
    if !lines.is_empty() {
        eprintln!(
            "nanoproc: learning: review these: the manifest did not grant them, the run used them (a dependency that did what it should not is learnt as faithfully as one that did not):"
        );
        for l in lines {
            eprintln!("{}", printable(&l));
        }
    }
}

/// Proposed grants that did not read back within what the nanoprocess held (see
/// `Plan::propose`): not written, and worth a bug report.
fn print_dropped(proposal: &Proposal) {
    for node in &proposal.nodes {
        for (grant, why) in &node.dropped {
            eprintln!(
                "{}",
                printable(&format!(
                    "nanoproc: learning: not proposed for [nanoprocess.{}]: {}: {why}",
                    node.name,
                    grant.manifest_line()
                ))
            );
        }
    }
}

/// What was refused while learning: beyond what the user granted the root (or a
/// parent). Returns how many.
fn print_refused(proposal: &Proposal) -> usize {
    let refused: Vec<_> = proposal.nodes.iter().flat_map(|n| &n.refused).collect();
    if refused.is_empty() {
        return 0;
    }
    eprintln!(
        "nanoproc: learning: {} use{} refused even so: a grant a parent would have to gain, not in the proposal:",
        refused.len(),
        if refused.len() == 1 { " was" } else { "s were" }
    );
    // As many as the end-of-run report shows; the rest are in --audit.
    const SHOWN: usize = 50;
    for (event, hint) in refused.iter().take(SHOWN) {
        eprintln!("  {}", printable(&event.to_string()));
        if let Some(hint) = hint {
            eprintln!("    to allow it: {}", printable(&hint.to_string()));
        }
    }
    if refused.len() > SHOWN {
        eprintln!(
            "  ... and {} more; see --audit FILE for all",
            refused.len() - SHOWN
        );
    }
    refused.len()
}

/// The proposal for a single component, as `run` flags.
/// The environment is kept as given (`--env`): which variables a program reads
/// cannot be seen (see `learn`'s documentation).
fn propose_flags(
    target: &Path,
    guest_args: &[String],
    env: &[String],
    proposal: &Proposal,
) -> ExitCode {
    let Some(root) = proposal.nodes.first() else {
        return ExitCode::SUCCESS;
    };
    // One flag may grant two keys (`--clock-at` freezes both clocks): once.
    let mut flags: Vec<&str> = Vec::new();
    for f in root.grants.iter().flat_map(|g: &Suggestion| g.flags.iter()) {
        if !flags.contains(&f.as_str()) {
            flags.push(f);
        }
    }
    // The terminal is granted to a single component unless --no-stdio says not:
    // it is withdrawn, and the streams used are granted again one by one.
    // Meant to be pasted: every value is quoted for the shell (the families'
    // flags already are), since paths and arguments may be anyone's choice.
    let mut line = String::from("nanoproc run --no-stdio");
    for f in &flags {
        line.push(' ');
        line.push_str(f);
    }
    for var in env {
        line.push(' ');
        line.push_str(&flag("--env", var));
    }
    line.push(' ');
    line.push_str(&shell_quote(&target.display().to_string()));
    if !guest_args.is_empty() {
        line.push_str(" --");
        for a in guest_args {
            line.push(' ');
            line.push_str(&shell_quote(a));
        }
    }
    print_out(&(printable(&line) + "\n"));
    // `--dir` and `--dir-ro` say read-write or read-only: a manifest can say
    // exactly the rights used.
    if root.grants.iter().any(|g| {
        g.key == "fs" && !(g.value.contains("\"read-only\"") || g.value.contains("\"read-write\""))
    }) {
        eprintln!(
            "nanoproc: learning: flags grant directories read-only or read-write; the exact rights used: grants.fs = {}",
            printable(
                &root
                    .grants
                    .iter()
                    .find(|g| g.key == "fs")
                    .map(|g| g.value.clone())
                    .unwrap_or_default()
            )
        );
    }
    print_alternatives(proposal, true);
    print_dropped(proposal);
    print_refused(proposal);
    ExitCode::SUCCESS
}

/// Replaces `path` with `text` so that a reader sees the old file or the new one,
/// never half of either: a temporary file beside it, renamed over it.
pub(crate) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    // A manifest that is a symbolic link is written where it points: replacing
    // the link with a file would leave the real manifest as it was.
    let real = std::fs::canonicalize(path);
    let path = real.as_deref().unwrap_or(path);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
