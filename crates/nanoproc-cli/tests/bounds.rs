//! What a guest, or a manifest, can make nanoproc itself pay, and the bounds that
//! keep it small: the audit record of refusals whose text the guest chooses,
//! component files of any size or kind, manifests of any depth or width, and a tree
//! whose dependencies together may take more memory than the machine has.

mod common;
use common::*;

/// What nanoproc itself may use on top of the guests' memory (as in hostile.rs).
const HOST_OVERHEAD_KIB: u64 = 96 * 1024;

fn cmd() -> String {
    guest("probe_cmd").display().to_string()
}

fn peak_kib(run: &Run) -> u64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("nanoproc: peak resident memory "))
        .and_then(|l| l.strip_suffix(" KiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {run:?}"))
}

// ---------------------------------------------------------------------------
// The audit record: text the guest chooses

#[test]
fn refused_lookups_of_a_huge_name_are_cut_in_the_log_and_cost_nanoproc_nothing() {
    // 300 lookups of a 1 MiB name: before the cut, each refusal cost nanoproc about
    // 2 MiB (the name in the file's line and in the record kept for the report).
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let op = "lookups:300:1048576";
    let run = nanoproc(&[
        "run",
        &cmd(),
        "--audit",
        &log.display().to_string(),
        "--stats",
        "--",
        op,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer(op), "ok: 300 refused", "{run:?}");

    let text = std::fs::read_to_string(&log).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest < 2048, "an audit line of {longest} bytes");
    let lookups: Vec<_> = audit_lines(&log)
        .into_iter()
        .filter(|l| l["operation"] == "wasi:sockets/ip-name-lookup.resolve-addresses")
        .collect();
    assert_eq!(lookups.len(), 300, "every refusal is still in the log");
    let target = lookups[0]["target"].as_str().unwrap();
    // The first and last 512 bytes, and how much was cut between them.
    assert_eq!(
        target,
        format!(
            "{}...[{} bytes cut]...{}.test",
            "a".repeat(512),
            (1 << 20) - 1024,
            "a".repeat(507)
        )
    );
    assert!(lookups.iter().all(|l| l["decision"] == "refused"));

    // The report shows the refusal once, cut as well.
    assert!(
        run.stderr
            .contains("nanoproc: 300 capability uses were refused:"),
        "{run:?}"
    );
    assert!(run.stderr.contains("bytes cut]...") && run.stderr.contains("(x300)"));
    assert!(
        run.stderr.len() < 8 * 1024,
        "{} bytes of report",
        run.stderr.len()
    );
    // The guest holds its name (1 MiB) and the host one copy of it at a time.
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 16 * 1024,
        "peak {peak} KiB: {run:?}"
    );
}

#[test]
fn refusals_beyond_what_memory_keeps_are_counted_in_the_report() {
    // 5000 refusals whose names are cut to 1 KiB: more than the 4 MiB the record
    // keeps in memory, fewer than its 10,000 entries, so only the bound in bytes
    // stops it.
    let op = "lookups:5000:4096";
    let run = nanoproc(&["run", &cmd(), "--", op]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer(op), "ok: 5000 refused");
    assert!(
        run.stderr
            .contains("nanoproc: 5000 capability uses were refused:"),
        "{run:?}"
    );
    let not_kept: u64 = run
        .stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("  ... and ")?
                .strip_suffix(" more refusals not kept in memory; see --audit FILE for all")
        })
        .unwrap_or_else(|| panic!("no count of refusals not kept: {run:?}"))
        .parse()
        .unwrap();
    // About 1.2 KiB each: some 3,500 kept.
    assert!((1000..2500).contains(&not_kept), "{not_kept} not kept");
    let (line, kept) = run
        .stderr
        .lines()
        .find_map(|l| l.split_once(" (x"))
        .unwrap_or_else(|| panic!("no repeated refusal: {run:?}"));
    assert!(line.contains("ip-name-lookup"), "{line}");
    assert_eq!(
        kept.trim_end_matches(')').parse::<u64>().unwrap() + not_kept,
        5000
    );
}
