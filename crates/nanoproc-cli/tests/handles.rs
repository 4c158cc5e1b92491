//! WASI handles that cross nanoprocess boundaries: descriptors lent for one call
//! (`borrow<descriptor>`), descriptors and streams given away (`own`), and what a
//! dependency holding no grant can and cannot do with them. The root `driver`
//! (handles_driver) holds `/data` read-write and `/ro` read-only and calls the
//! `reader` (handles_reader), which by default holds nothing.

use crate::common;
use common::*;

use std::path::PathBuf;

use serde_json::Value;

/// The host files every test starts from.
fn files(scene: &Scene) {
    scene.file("data/a.txt", "alpha");
    scene.file("data/b.txt", "bee");
    scene.file("data/secret.txt", "the driver's secret");
    scene.file("data/sub/inner.txt", "inside sub");
    scene.file("ro/c.txt", "read-only c");
    scene.file("outside.txt", "outside every grant");
}

/// driver -> reader; `reader` is the rest of the reader's table (grants, restart...).
fn tree(scene: &Scene, reader: &str) -> PathBuf {
    tree_with(scene, "", reader)
}

/// Like [`tree`], with more of the driver's table too.
fn tree_with(scene: &Scene, driver: &str, reader: &str) -> PathBuf {
    files(scene);
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{handles_driver}}"
grants.fs = [
  {{ host = "data", guest = "/data", rights = "read-write" }},
  {{ host = "ro", guest = "/ro", rights = "read-only" }},
]
grants.stdout = true
deps = {{ "test:handles/reader" = "reader" }}
{driver}

[nanoprocess.reader]
component = "{{handles_reader}}"
on-failure = "error"
{reader}
"#
    ))
}

fn run(scene: &Scene, reader: &str, ops: &[&str]) -> Run {
    run_manifest(&tree(scene, reader), ops)
}

/// Runs with `--audit` and returns the run and the audit log's lines.
fn run_audited(scene: &Scene, reader: &str, ops: &[&str]) -> (Run, Vec<Value>) {
    let m = tree(scene, reader).display().to_string();
    let log = scene.path("audit.jsonl");
    let log_arg = log.display().to_string();
    let mut args = vec!["run", "--audit", log_arg.as_str(), m.as_str(), "--"];
    args.extend_from_slice(ops);
    let run = nanoproc(&args);
    let lines = audit_lines(&log);
    (run, lines)
}

/// The handle transfers in an audit log: `"family"` (the JSON name of the event's
/// capability) is `handle`.
fn transfers(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["family"] == "handle" || l["capability"] == "handle")
        .collect()
}

/// The transfer `giver` made by `operation` (`borrow` or `own`) whose target contains
/// every one of `pieces`.
fn transfer<'a>(
    lines: &'a [Value],
    giver: &str,
    operation: &str,
    pieces: &[&str],
) -> Option<&'a Value> {
    transfers(lines).into_iter().find(|l| {
        l["nanoprocess"] == giver
            && l["operation"] == operation
            && l["target"]
                .as_str()
                .is_some_and(|t| pieces.iter().all(|p| t.contains(p)))
    })
}

/// Every answer printed for `op`, in order (an op may be given several times).
fn answers<'a>(run: &'a Run, op: &str) -> Vec<&'a str> {
    let prefix = format!("{op} => ");
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

/// Whether an error is wasmtime's refusal of a handle number: "unknown handle index
/// N", or "handle index N used with the wrong type".
fn refuses_the_handle(answer: &str) -> bool {
    answer.contains("handle index") || answer.contains("unknown handle")
}

#[test]
fn a_lent_descriptor_is_readable_by_a_child_that_holds_no_grant() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &[
            "lend:/data/a.txt",
            "lend:/ro/c.txt",
            "lend:/data/sub/inner.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("lend:/data/a.txt"), "ok: alpha", "{run:?}");
    assert_eq!(
        run.assert_ok("lend:/ro/c.txt"),
        "ok: read-only c",
        "{run:?}"
    );
    assert_eq!(
        run.assert_ok("lend:/data/sub/inner.txt"),
        "ok: inside sub",
        "{run:?}"
    );
}

#[test]
fn the_child_cannot_open_files_on_its_own() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &[
            "snoop:/data/a.txt",
            "snoop:/ro/c.txt",
            "snoop:a.txt",
            "snoop:../outside.txt",
            "snoop:/",
            // A lend in between changes nothing: the reader holds the descriptor for
            // that call only, not the directory it came from.
            "lend:/data/a.txt",
            "snoop:/data/secret.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in [
        "snoop:/data/a.txt",
        "snoop:/ro/c.txt",
        "snoop:a.txt",
        "snoop:../outside.txt",
        "snoop:/",
        "snoop:/data/secret.txt",
    ] {
        let answer = run.assert_err(op);
        assert!(
            !answer.contains("alpha")
                && !answer.contains("the driver's secret")
                && !answer.contains("outside every grant"),
            "{op}: {answer}"
        );
    }
    assert_eq!(run.assert_ok("lend:/data/a.txt"), "ok: alpha", "{run:?}");
    assert!(!run.stdout.contains("the driver's secret"), "{run:?}");
}

#[test]
fn a_lent_descriptor_keeps_exactly_its_rights() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &[
            // Opened for reading and writing under a read-write grant: the reader
            // may write through it.
            "lend-write:/data/b.txt=written by the reader",
            // Opened read-only, though the driver could have written: it stays so.
            "lend-ro-write:/data/a.txt=overwritten",
            // Under a read-only grant: read-only in the reader too.
            "lend-ro-write:/ro/c.txt=overwritten",
            // The driver itself cannot open it for writing.
            "lend-write:/ro/c.txt=overwritten",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("lend-write:/data/b.txt=written by the reader");
    for op in [
        "lend-ro-write:/data/a.txt=overwritten",
        "lend-ro-write:/ro/c.txt=overwritten",
        "lend-write:/ro/c.txt=overwritten",
    ] {
        run.assert_err(op);
    }
    assert_eq!(
        std::fs::read_to_string(scene.path("data/b.txt")).unwrap(),
        "written by the reader"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("data/a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("ro/c.txt")).unwrap(),
        "read-only c"
    );
}

#[test]
fn the_callees_own_grants_never_widen_a_lent_descriptor() {
    // The reader holds the whole of /data read-write itself, which covers the host
    // directory behind the driver's read-only /ro; a descriptor the driver lends it
    // from /ro is still read-only.
    let scene = Scene::new();
    let before = {
        files(&scene);
        snapshot(&scene.path("ro"))
    };
    let run = run(
        &scene,
        r#"grants.fs = [{ from = "/data", guest = "/data", rights = "read-write" }]"#,
        &[
            "lend-ro-write:/ro/c.txt=overwritten",
            "lend-ro-write:/data/a.txt=overwritten",
            "lend:/ro/c.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("lend-ro-write:/ro/c.txt=overwritten");
    run.assert_err("lend-ro-write:/data/a.txt=overwritten");
    assert_eq!(
        run.assert_ok("lend:/ro/c.txt"),
        "ok: read-only c",
        "{run:?}"
    );
    assert_eq!(before, snapshot(&scene.path("ro")), "/ro changed");
    assert_eq!(
        std::fs::read_to_string(scene.path("data/a.txt")).unwrap(),
        "alpha"
    );
}

#[test]
fn a_lent_directory_opens_what_is_under_it_and_nothing_else() {
    let scene = Scene::new();
    let m = tree(&scene, "");
    std::os::unix::fs::symlink("../a.txt", scene.path("data/sub/up-link")).unwrap();
    let run = run_manifest(
        &m,
        &[
            "lend-dir:/data/sub,inner.txt",
            "lend-dir:/data,sub/inner.txt",
            "lend-dir:/ro,c.txt",
            "lend-dir:/data/sub,../a.txt",
            "lend-dir:/data/sub,../../outside.txt",
            "lend-dir:/data/sub,/data/a.txt",
            "lend-dir:/data/sub,up-link",
            "lend-dir:/ro,../secret.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.assert_ok("lend-dir:/data/sub,inner.txt"),
        "ok: inside sub"
    );
    assert_eq!(
        run.assert_ok("lend-dir:/data,sub/inner.txt"),
        "ok: inside sub"
    );
    assert_eq!(run.assert_ok("lend-dir:/ro,c.txt"), "ok: read-only c");
    for op in [
        "lend-dir:/data/sub,../a.txt",
        "lend-dir:/data/sub,../../outside.txt",
        "lend-dir:/data/sub,/data/a.txt",
        "lend-dir:/data/sub,up-link",
        "lend-dir:/ro,../secret.txt",
    ] {
        let answer = run.assert_err(op);
        assert!(
            !answer.contains("alpha") && !answer.contains("the driver's secret"),
            "{op}: {answer}"
        );
    }
}

#[test]
fn a_lent_handle_is_dead_once_the_call_returns() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &["lend:/data/secret.txt", "reuse", "lend:/data/a.txt"],
    );
    assert_eq!(run.code, 0, "the driver carries on: {run:?}");
    assert_eq!(
        run.assert_ok("lend:/data/secret.txt"),
        "ok: the driver's secret"
    );
    // The reader trapped on the stale handle; the driver gets an error naming it.
    let reuse = run.assert_err("reuse");
    assert!(reuse.contains("nanoprocess `driver/reader`"), "{reuse}");
    assert!(refuses_the_handle(reuse), "{reuse}");
    assert!(!reuse.contains("the driver's secret"), "{reuse}");
    // The reader is not restartable: later calls fail, by name.
    let after = run.assert_err("lend:/data/a.txt");
    assert!(after.contains("driver/reader"), "{after}");
    assert_eq!(
        run.stdout.matches("the driver's secret").count(),
        1,
        "{run:?}"
    );
}

#[test]
fn a_given_descriptor_stays_with_the_child_across_calls_and_can_come_back() {
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &[
            "kept",
            "give:/data/a.txt",
            "kept",
            "snoop:/data/a.txt",
            "kept",
            "give-back",
            "kept",
            "give-back",
            "give:/ro/c.txt",
            "kept",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.assert_err("kept").contains("nothing kept"), "{run:?}");
    assert_eq!(run.assert_ok("give:/data/a.txt"), "ok: kept");
    // Kept across calls: read in two later calls, with a failed snoop between.
    assert_eq!(
        answers(&run, "kept"),
        [
            "err: nothing kept",
            "ok: alpha",
            "ok: alpha",
            "err: nothing kept",
            "ok: read-only c"
        ],
        "{run:?}"
    );
    run.assert_err("snoop:/data/a.txt");
    // Given back, the driver reads it itself; the reader holds nothing any more.
    let back = answers(&run, "give-back");
    assert_eq!(back.len(), 2, "{run:?}");
    assert_eq!(back[0], "ok: back here: alpha", "{run:?}");
    assert!(back[1].contains("nothing kept"), "{run:?}");
    assert_eq!(run.assert_ok("give:/ro/c.txt"), "ok: kept");
}

#[test]
fn a_given_descriptor_keeps_its_rights_through_every_move() {
    // Ownership moves a descriptor with its rights: driver -> reader (which holds a
    // read-write grant of its own on the same host directory) -> driver, then lent
    // for a write. Read-only stays read-only; read-write stays read-write.
    let scene = Scene::new();
    let run = run(
        &scene,
        r#"grants.fs = [{ from = "/data", guest = "/data", rights = "read-write" }]"#,
        &[
            "give:/ro/c.txt",
            "kept",
            "back-and-write:overwritten",
            "give:/data/a.txt",
            "back-and-write:overwritten",
            "give-rw:/data/b.txt",
            "kept",
            "back-and-write:BEE",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        answers(&run, "kept"),
        ["ok: read-only c", "ok: bee"],
        "{run:?}"
    );
    assert_eq!(
        answers(&run, "back-and-write:overwritten").len(),
        2,
        "{run:?}"
    );
    for answer in answers(&run, "back-and-write:overwritten") {
        assert!(answer.starts_with("err: "), "{run:?}");
    }
    assert_eq!(run.assert_ok("back-and-write:BEE"), "ok: written");
    assert_eq!(
        std::fs::read_to_string(scene.path("ro/c.txt")).unwrap(),
        "read-only c"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("data/a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("data/b.txt")).unwrap(),
        "BEE"
    );
}

#[test]
fn a_given_stream_moves_to_the_child() {
    let scene = Scene::new();
    // Big enough to need several reads, on one line so the answer is one line.
    let big: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let m = tree(&scene, "");
    scene.file("data/big.txt", &big);
    let run = run_manifest(
        &m,
        &[
            "drain:/data/a.txt",
            "drain:/data/big.txt",
            "drain:/ro/c.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("drain:/data/a.txt"), "ok: alpha");
    assert_eq!(
        run.assert_ok("drain:/data/big.txt"),
        format!("ok: {big}"),
        "the big file did not arrive whole"
    );
    assert_eq!(run.assert_ok("drain:/ro/c.txt"), "ok: read-only c");
}

#[test]
fn forged_handle_numbers_trap_the_forger_and_reach_nothing() {
    // The reader is restarted after each trap, so that every forgery gets a fresh
    // instance to fail in.
    let scene = Scene::new();
    let forgeries = [
        "forge-own:/data/secret.txt",
        "forge:0",
        "forge:1",
        "forge:2",
        "forge:3",
        "forge:7",
        "forge:1000",
        "forge:4294967295",
    ];
    let mut ops = forgeries.to_vec();
    ops.extend(["read:/data/secret.txt", "lend:/data/a.txt"]);
    let run = run(&scene, "restart = { max = 20, within = \"1m\" }", &ops);
    assert_eq!(run.code, 0, "{run:?}");
    for op in forgeries {
        let answer = run.assert_err(op);
        assert!(
            answer.contains("nanoprocess `driver/reader`"),
            "{op}: {answer}"
        );
        assert!(refuses_the_handle(answer), "{op}: {answer}");
        assert!(!answer.contains("the driver's secret"), "{op}: {answer}");
    }
    // The driver's own descriptors and the reader's service are intact.
    assert_eq!(
        run.assert_ok("read:/data/secret.txt"),
        "ok: the driver's secret"
    );
    assert_eq!(run.assert_ok("lend:/data/a.txt"), "ok: alpha");
    assert_eq!(
        run.stdout.matches("the driver's secret").count(),
        1,
        "{run:?}"
    );
}

#[test]
fn handles_passed_to_and_fro_do_not_pile_up_in_anyone_s_table() {
    // Both sides hold few handles: a transfer that left anything behind, in the
    // giver's table or the receiver's, would exhaust one of them long before the
    // 300th round.
    let scene = Scene::new();
    let ops = [
        "repeat:300,lend:/data/a.txt",
        "repeat:300,lend-dir:/data/sub,inner.txt",
        "repeat:300,give:/data/a.txt",
        "repeat:300,give:/ro/c.txt+kept+give-back",
        "repeat:300,drain:/data/a.txt",
        "repeat:100,lend-ro-write:/data/a.txt=x",
    ];
    let m = tree_with(&scene, "grants.handles = 24", "grants.handles = 12");
    let run = run_manifest(&m, &ops);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(ops[0]), "ok: 300 times: alpha");
    assert_eq!(run.assert_ok(ops[1]), "ok: 300 times: inside sub");
    assert_eq!(run.assert_ok(ops[2]), "ok: 300 times: kept");
    assert_eq!(
        run.assert_ok(ops[3]),
        "ok: 300 times: back here: read-only c"
    );
    assert_eq!(run.assert_ok(ops[4]), "ok: 300 times: alpha");
    // Refused on the first round, and nothing after it.
    assert!(
        run.assert_err(ops[5]).starts_with("err: round 1,"),
        "{run:?}"
    );
}

#[test]
fn every_transfer_is_in_the_audit_log() {
    let scene = Scene::new();
    let (run, lines) = run_audited(
        &scene,
        "",
        &[
            "lend:/data/a.txt",
            "lend-dir:/data/sub,inner.txt",
            "give:/ro/c.txt",
            "give-back",
            "drain:/data/b.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in [
        "lend:/data/a.txt",
        "lend-dir:/data/sub,inner.txt",
        "give:/ro/c.txt",
        "give-back",
        "drain:/data/b.txt",
    ] {
        run.assert_ok(op);
    }
    let all = transfers(&lines);
    assert!(!all.is_empty(), "no handle transfer recorded: {lines:#?}");
    for t in &all {
        assert_eq!(t["decision"], "allowed", "{t}");
        assert!(t["operation"] == "borrow" || t["operation"] == "own", "{t}");
    }
    let descriptor = "wasi:filesystem/types#descriptor";
    transfer(
        &lines,
        "driver",
        "borrow",
        &[descriptor, "/data/a.txt", "driver/reader"],
    )
    .unwrap_or_else(|| panic!("the lent file: {all:#?}"));
    transfer(
        &lines,
        "driver",
        "borrow",
        &[descriptor, "/data/sub", "driver/reader"],
    )
    .unwrap_or_else(|| panic!("the lent directory: {all:#?}"));
    transfer(
        &lines,
        "driver",
        "own",
        &[descriptor, "/ro/c.txt", "driver/reader"],
    )
    .unwrap_or_else(|| panic!("the given file: {all:#?}"));
    // Given back: the reader is the giver, the driver the receiver.
    let back = transfer(&lines, "driver/reader", "own", &[descriptor])
        .unwrap_or_else(|| panic!("the file given back: {all:#?}"));
    assert!(
        back["target"].as_str().unwrap().ends_with("driver"),
        "the receiver is the driver: {back}"
    );
    transfer(
        &lines,
        "driver",
        "own",
        &["wasi:io/streams#input-stream", "driver/reader"],
    )
    .unwrap_or_else(|| panic!("the given stream: {all:#?}"));
    // Exactly these five, in the order they happened.
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|t| {
            (
                t["nanoprocess"].as_str().unwrap(),
                t["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("driver", "borrow"),
            ("driver", "borrow"),
            ("driver", "own"),
            ("driver/reader", "own"),
            ("driver", "own"),
        ],
        "{all:#?}"
    );
}

#[test]
fn check_accepts_handles_across_nanoprocesses() {
    let scene = Scene::new();
    let run = check(&tree(&scene, ""));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("driver/reader"), "{run:?}");
    assert!(
        run.stdout.contains("serves  test:handles/reader to driver"),
        "{run:?}"
    );
    assert!(run.stdout.contains("ok: 2 nanoprocesses"), "{run:?}");
    assert!(!run.stderr.contains("cannot cross"), "{run:?}");
}

#[test]
fn nothing_derived_from_a_loan_outlives_it() {
    // During the call the reader opens a file under the lent directory, makes a
    // stream of it with a pollable subscribed (a table entry that cannot simply be
    // deleted), and lists the directory; it keeps all of it for later.
    let scene = Scene::new();
    let first = run(&scene, "", &["hoard:/data,a.txt", "use-hoard"]);
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(first.assert_ok("hoard:/data,a.txt"), "ok: hoarded");
    let used = first.answer("use-hoard");
    assert!(
        !used.contains("alpha") && !used.contains(" read "),
        "something made under the loan still worked after it: {used}"
    );
    // Each fails as a WASI error, not a trap: the borrower keeps dead handles it
    // can still drop.
    for dead in ["stream failed", "listing failed", "file failed"] {
        assert!(used.contains(dead), "{used}");
    }

    // Nor can the stream be handed back as if the reader owned it.
    let scene = Scene::new();
    let again = run(&scene, "", &["hoard:/data,a.txt", "give-back-stream"]);
    assert_eq!(again.code, 0, "{again:?}");
    let back = again.assert_err("give-back-stream");
    assert!(back.contains("only lent"), "{back}");
    assert!(!back.contains("alpha"), "{back}");
}

#[test]
fn a_lent_file_gets_no_name_outside_the_loan() {
    // The reader holds a read-write directory of its own, inside the driver's
    // /data. It tries to give a lent file a name there: durable authority over the
    // lender's file once the call has returned.
    let scene = Scene::new();
    scene.mkdir("data/own");
    let (run, log) = run_audited(
        &scene,
        r#"grants.fs = [{ from = "/data/own", guest = "/own", rights = "read-write" }]"#,
        &[
            "link-out:/data,a.txt",
            "link-out:/ro,c.txt",
            "read:/ro/c.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // /data, which may create, contains the reader's own directory: it is not lent
    // at all (within it, `own/stolen` would be a name in the reader's own grant).
    let a = run.assert_err("link-out:/data,a.txt");
    assert!(a.contains("cannot lend /data"), "{a}");
    // /ro is lent; linking out of it is refused.
    let a = run.assert_err("link-out:/ro,c.txt");
    assert!(a.contains("link refused"), "{a}");
    assert!(
        !scene.path("data/own/stolen").exists(),
        "a lent file was linked into the borrower's directory"
    );
    assert_eq!(run.assert_ok("read:/ro/c.txt"), "ok: read-only c");
    let refusals: Vec<&Value> = log
        .iter()
        .filter(|l| l["operation"] == "wasi:filesystem/types.link-at" && l["decision"] == "refused")
        .collect();
    assert_eq!(refusals.len(), 1, "{log:?}");
    assert_eq!(refusals[0]["nanoprocess"], "driver/reader", "{refusals:?}");
    // A link needs `write` on its source: the lent /ro has none.
    assert_eq!(refusals[0]["target"], "/ro/c.txt", "{refusals:?}");
}

#[test]
fn a_directory_handed_over_cannot_launder_what_the_receiver_holds() {
    // The reader may rename (and remove) in all of /data, read-only otherwise. If
    // it were handed /data/sub read-write, it could move any file of /data into
    // sub through its own directory and rewrite it there: the plan would refuse
    // that pair as grants, and a transfer is checked the same way.
    let scene = Scene::new();
    let run = run(
        &scene,
        r#"grants.fs = [{ from = "/data", guest = "/own", rights = ["read", "list", "rename", "remove"] }]"#,
        &[
            "give:/data/sub",
            "lend-dir:/data/sub,inner.txt",
            "lend:/data/a.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in ["give:/data/sub", "lend-dir:/data/sub,inner.txt"] {
        let a = run.assert_err(op);
        assert!(
            a.contains("/data/sub to `driver/reader`") && a.contains("would gain"),
            "{op}: {a}"
        );
    }
    // A file handed over can hold nothing: it goes.
    assert_eq!(run.assert_ok("lend:/data/a.txt"), "ok: alpha");
}

#[test]
fn a_loan_cannot_reach_into_a_directory_the_borrower_keeps() {
    // The reader was given /data/sub for good. Lent all of /data afterwards, it
    // could link the driver's files into sub and keep them after the loan.
    let scene = Scene::new();
    let run = run(
        &scene,
        "",
        &["give:/data/sub", "lend-dir:/data,a.txt", "lend:/data/a.txt"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("give:/data/sub"), "ok: kept");
    let a = run.assert_err("lend-dir:/data,a.txt");
    assert!(
        a.contains("cannot lend /data to `driver/reader`") && a.contains("outlive the loan"),
        "{a}"
    );
    assert_eq!(run.assert_ok("lend:/data/a.txt"), "ok: alpha");
}
