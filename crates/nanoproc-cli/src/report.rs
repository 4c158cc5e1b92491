//! What nanoproc prints about a run: the refusals, restarts and uses it recorded,
//! with every guest-chosen text made safe for the terminal.

use nanoproc_runtime::{Audit, Decision, Plan};

/// `text` with every control character escaped (C0 and C1, newlines included), for
/// the terminal. Guests choose much of what nanoproc prints (paths, addresses,
/// their own panic messages): raw, a guest granted no output at all could clear
/// the screen, retitle the window or print a forged line of nanoproc's report.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || nanoproc_runtime::caps::is_invisible(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// The end-of-run account: what each nanoprocess was refused (each distinct
/// refusal once, with how often), which dependencies were restarted, and with
/// `--audit-summary` every capability each one used. Each refusal says how to
/// grant it, given the `plan` that ran ([`Plan::hint`]).
pub fn report(audit: &Audit, uses: bool, plan: Option<&Plan>) {
    const SHOWN: usize = 50;
    let kept = audit.kept();
    let not_kept = kept.refusals_not_kept;
    let mut refusals: Vec<(String, u64, Option<String>)> = Vec::new();
    let mut restarts = Vec::new();
    for e in kept.events {
        if e.capability == "restart" {
            let verb = match e.decision {
                Decision::Allowed => "restarted",
                Decision::Refused | Decision::Failed => "not restarted",
            };
            restarts.push(printable(&format!(
                "  {}: {verb}: {}",
                e.nanoprocess,
                e.reason.unwrap_or_default()
            )));
            continue;
        }
        let target = e
            .target
            .as_ref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let line = printable(&format!(
            "  {}: {}{target} ({}): {}",
            e.nanoprocess,
            e.capability,
            e.operation,
            e.reason.as_deref().unwrap_or_default()
        ));
        match refusals.iter_mut().find(|(l, _, _)| *l == line) {
            Some((_, n, _)) => *n += 1,
            None => {
                // The grant's text repeats the guest's target (a path, a name):
                // escaped like the line it follows.
                let hint = plan
                    .and_then(|p| p.hint(&e))
                    .map(|h| printable(&h.to_string()));
                refusals.push((line, 1, hint));
            }
        }
    }
    let total: u64 = refusals.iter().map(|(_, n, _)| n).sum::<u64>() + not_kept;
    if total > 0 {
        eprintln!(
            "nanoproc: {total} capability use{} refused:",
            if total == 1 { " was" } else { "s were" }
        );
        for (line, n, hint) in refusals.iter().take(SHOWN) {
            if *n > 1 {
                eprintln!("{line} (x{n})");
            } else {
                eprintln!("{line}");
            }
            if let Some(hint) = hint {
                eprintln!("    to allow it: {hint}");
            }
        }
        let hidden = refusals.len().saturating_sub(SHOWN);
        if hidden > 0 {
            eprintln!("  ... and {hidden} other kinds; see --audit FILE for all");
        }
        if not_kept > 0 {
            eprintln!(
                "  ... and {not_kept} more refusals not kept in memory; see --audit FILE for all"
            );
        }
    }
    if !restarts.is_empty() || kept.restarts_not_kept > 0 {
        eprintln!("nanoproc: restarts:");
        for r in restarts {
            eprintln!("{r}");
        }
        if kept.restarts_not_kept > 0 {
            eprintln!(
                "  ... and {} more restarts not kept in memory; see --audit FILE for all",
                kept.restarts_not_kept
            );
        }
    }
    if uses {
        eprintln!("nanoproc: capability uses (allowed / refused):");
        for ((who, capability), (allowed, refused)) in audit.counts() {
            eprintln!("  {who}: {capability}: {allowed} / {refused}");
        }
    }
}

/// Peak resident memory of this process, from the kernel.
pub fn report_stats() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        eprintln!("nanoproc: peak resident memory {kib} KiB");
    }
}

/// After a run a refusal may have ended (a trap: the clocks, random and `exit`
/// have no error case), what else each refused nanoprocess's component can ask
/// for and does not hold, from its imports: so that one run tells every grant it
/// may need, not only the first it was refused.
pub fn ungranted_imports(audit: &Audit, plan: &Plan, max_component_size: u64) {
    let refusals = audit.refusals();
    let mut seen: Vec<&str> = Vec::new();
    for event in &refusals {
        let who: &str = &event.nanoprocess;
        if seen.contains(&who) {
            continue;
        }
        seen.push(who);
        let refused: Vec<&'static str> = refusals
            .iter()
            .filter(|e| &*e.nanoprocess == who)
            .map(|e| e.capability)
            .collect();
        let others: Vec<String> = plan
            .ungranted(who, max_component_size)
            .into_iter()
            .filter(|(key, _)| !refused.contains(&key.as_str()))
            .map(|(key, interfaces)| {
                // One name per interface: a WASI 0.3 program imports many at 0.2
                // and 0.3.
                let mut names: Vec<&str> = Vec::new();
                for name in interfaces.iter().map(|i| i.split('@').next().unwrap_or(i)) {
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
                format!("{} ({})", how_to_grant(plan, &key), names.join(", "))
            })
            .collect();
        if !others.is_empty() {
            eprintln!(
                "{}",
                printable(&format!(
                    "nanoproc: `{who}` can also ask for, and does not hold: {}",
                    others.join(", ")
                ))
            );
        }
    }
}

/// How a grant key is granted, as the user grants it: the flag for a single
/// component where the key needs no target to say it (`--wall-clock`), else the
/// manifest key.
fn how_to_grant(plan: &Plan, key: &str) -> String {
    use nanoproc_runtime::caps::{Capabilities, Use};
    if plan.is_single_component() {
        let wanted = Use {
            key,
            operation: "",
            target: None,
            needs: None,
            failed: false,
            refused: true,
        };
        let flags: Vec<String> = Capabilities::default()
            .propose(&[wanted], None)
            .into_iter()
            .flat_map(|s| s.flags)
            .collect();
        if !flags.is_empty() {
            return format!("`{}`", flags.join(" "));
        }
        // Grants that need a value only the user can give (the flags of
        // `flags::GrantFlags`).
        let with_value = match key {
            "fs" => Some("--dir HOST[::GUEST]"),
            "network" => Some("--connect PATTERN"),
            "listen" => Some("--listen PATTERN"),
            "http" => Some("--http PATTERN"),
            "env" => Some("--env NAME"),
            "config" => Some("--config KEY=VALUE"),
            _ => None,
        };
        if let Some(flag) = with_value {
            return format!("`{flag}`");
        }
    }
    format!("`grants.{key}`")
}
