//! Fused edges (`isolation = "fused"`), end to end: a fused dependency runs in its
//! parent's store yet holds exactly its own capabilities, answers every probe as
//! the same dependency isolated does, is audited under its own path, and gives up
//! only what `check` says it gives up (its own fault domain and limits). Every
//! case runs real components; most run the same tree both ways and compare.

use crate::common;
use common::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

const MODES: [&str; 2] = ["isolated", "fused"];

/// A listener on an ephemeral loopback port that accepts (and drops) a bounded
/// number of connections in the background.
fn server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            drop(conn);
        }
    });
    port
}

/// Runs a manifest with `args` for its root, the audit log written to the
/// scene's `audit.jsonl`; returns the run and the log's lines.
fn audited(
    scene: &Scene,
    m: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> (Run, Vec<serde_json::Value>) {
    let log = scene.path("audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let (l, m) = (log.display().to_string(), m.display().to_string());
    let mut all = vec!["run", "--audit", l.as_str(), m.as_str(), "--"];
    all.extend_from_slice(args);
    let run = nanoproc_env(&all, env);
    let lines = if log.exists() {
        audit_lines(&log)
    } else {
        Vec::new()
    };
    (run, lines)
}

/// The audit's decisions as a sorted multiset of (nanoprocess, family,
/// operation, target, decision): what the two modes must agree on (times and
/// the order of lines need not).
fn decisions(lines: &[serde_json::Value]) -> Vec<[String; 5]> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut out: Vec<[String; 5]> = lines
        .iter()
        .map(|l| {
            [
                text(&l["nanoprocess"]),
                text(&l["family"]),
                text(&l["operation"]),
                text(&l["target"]),
                text(&l["decision"]),
            ]
        })
        .collect();
    out.sort();
    out
}

/// Whether the audit has a line for `who` in `family` at `target` with `decision`.
fn has(lines: &[serde_json::Value], who: &str, family: &str, target: &str, decision: &str) -> bool {
    lines.iter().any(|l| {
        l["nanoprocess"] == who
            && l["family"] == family
            && l["target"] == target
            && l["decision"] == decision
    })
}

/// nanoproc's stderr without its notes (a fused child's memory counts against
/// its parent's limit, so the note on an unbounded root may differ by design).
fn account(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| !l.starts_with("nanoproc: note:"))
        .collect()
}

/// Every answer the driver printed for `arg`, in order (an op may be repeated).
fn answers<'a>(run: &'a Run, arg: &str) -> Vec<&'a str> {
    let prefix = format!("{arg} => ");
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

/// Every file below `dir`, named relative to it: comparable across scenes.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    snapshot(dir)
        .into_iter()
        .map(|(p, data)| (p.strip_prefix(dir).unwrap().to_path_buf(), data))
        .collect()
}

/// The section `check` printed for one nanoprocess: its header line and the
/// lines below it, up to the next nanoprocess.
fn section<'a>(out: &'a str, path: &str) -> Vec<&'a str> {
    let header = format!("─ {path}  [");
    let mut lines = out.lines().skip_while(|l| !l.contains(&header));
    let Some(first) = lines.next() else {
        panic!("no section for {path} in:\n{out}")
    };
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.contains("─ ")))
        .collect()
}

// 1. The same tree and grants, the leaf isolated and then fused: the same answers.

/// The root holds a read-write directory, two variables, real random, a network
/// range, configuration and stdout; the leaf holds narrower parts of each (and a
/// seeded random and frozen clocks its parent does not hold); the sibling nothing.
fn battery_tree(scene: &Scene, mode: &str, port: u16) -> PathBuf {
    scene.file("data/in/a.txt", "input a");
    scene.mkdir("data/drop");
    scene.file("data/secret.txt", "the root's secret");
    scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true
grants.env = ["PARENT_SECRET", "SHARED"]
grants.random = true
grants.network = ["127.0.0.1:*", "localhost:*"]
grants.config = { LOG = "debug", TOKEN = "s3cret-token" }"#,
        &format!(
            r#"isolation = "{mode}"
grants.fs = [{{ from = "/data/in", guest = "/in", rights = "read+list" }}, {{ from = "/data/drop", guest = "/drop", rights = ["create", "write"] }}]
grants.env = ["SHARED"]
grants.random = {{ seed = 7 }}
grants.wall-clock = "2024-01-01T00:00:00Z"
grants.monotonic-clock = "frozen"
grants.network = ["tcp:127.0.0.1:{port}"]
grants.config = ["LOG"]
grants.stdout = "prefix""#
        ),
        "",
    )
}

const BATTERY_ENV: [(&str, &str); 2] = [("PARENT_SECRET", "hunter2"), ("SHARED", "shared")];

#[test]
fn a_fused_leaf_answers_every_probe_as_the_isolated_one_does() {
    let port = server();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let connect_ok = format!("child:connect:127.0.0.1:{port}");
    let connect_refused = format!("child:connect:127.0.0.1:{closed}");
    let resolve = format!("child:resolve:localhost:{port}");
    let ops: Vec<&str> = vec![
        "child:read:/in/a.txt",
        "child:ls:/in",
        "child:write:/in/a.txt=overwritten",
        "child:rm:/in/a.txt",
        "child:write:/drop/report.txt=dropped",
        "child:read:/drop/report.txt",
        "child:ls:/drop",
        "child:read:/data/secret.txt",
        "child:ls:/data",
        "child:read:/in/../secret.txt",
        "child:env:SHARED",
        "child:env:PARENT_SECRET",
        "child:envall",
        "child:random-hex",
        "child:wall-clock",
        "child:monotonic",
        &connect_ok,
        &connect_refused,
        &resolve,
        "child:udp-bind:127.0.0.1:0",
        "child:listen:127.0.0.1:0",
        "child:config:LOG",
        "child:config:TOKEN",
        "child:config-all",
        "child:stdout:printed by the leaf",
        "child:stdin",
        "child:hashmap",
        "child:args",
    ];
    let mut runs = Vec::new();
    for mode in MODES {
        let scene = Scene::new();
        let m = battery_tree(&scene, mode, port);
        // The edge really is what the mode says.
        let checked = nanoproc_env(&["check", &m.display().to_string()], &BATTERY_ENV);
        assert_eq!(checked.code, 0, "{mode}: {checked:?}");
        assert_eq!(
            section(&checked.stdout, "driver/leaf")
                .iter()
                .any(|l| l.contains("fused   into driver's store")),
            mode == "fused",
            "{checked:?}"
        );
        let (run, lines) = audited(&scene, &m, &BATTERY_ENV, &ops);
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        // What the leaf holds, it gets; what it does not, it is refused.
        assert_eq!(run.answer("child:read:/in/a.txt"), "ok: input a", "{mode}");
        assert_eq!(run.answer("child:ls:/in"), "ok: a.txt", "{mode}");
        for op in [
            "child:write:/in/a.txt=overwritten",
            "child:rm:/in/a.txt",
            "child:read:/drop/report.txt",
            "child:ls:/drop",
        ] {
            assert!(
                run.assert_err(op).contains("Operation not permitted"),
                "{mode}: {op}: {run:?}"
            );
        }
        run.assert_ok("child:write:/drop/report.txt=dropped");
        for op in [
            "child:read:/data/secret.txt",
            "child:ls:/data",
            "child:read:/in/../secret.txt",
            connect_refused.as_str(),
            resolve.as_str(),
            "child:udp-bind:127.0.0.1:0",
            "child:listen:127.0.0.1:0",
            "child:stdin",
        ] {
            run.assert_err(op);
        }
        assert_eq!(run.answer("child:env:SHARED"), "ok: shared", "{mode}");
        assert_eq!(run.answer("child:env:PARENT_SECRET"), "err: not present");
        assert_eq!(run.answer("child:envall"), "ok: SHARED=shared", "{mode}");
        assert_eq!(run.answer("child:random-hex").len(), "ok: ".len() + 16);
        assert_eq!(run.answer("child:wall-clock"), "ok: 1704067200", "{mode}");
        assert_eq!(run.answer("child:monotonic"), "ok: 0", "{mode}");
        assert_eq!(run.answer(&connect_ok), "ok: connected", "{mode}");
        assert_eq!(run.answer("child:config:LOG"), "ok: debug", "{mode}");
        assert_eq!(run.answer("child:config:TOKEN"), "err: not present");
        assert_eq!(run.answer("child:config-all"), "ok: LOG=debug", "{mode}");
        assert!(
            run.stdout
                .lines()
                .any(|l| l == "[driver/leaf] printed by the leaf"),
            "{mode}: {run:?}"
        );
        assert_eq!(run.answer("child:args"), "ok: leaf", "{mode}");
        assert!(!run.stdout.contains("hunter2") && !run.stdout.contains("s3cret"));
        // The host saw the drop box written and nothing else change.
        assert_eq!(
            std::fs::read_to_string(scene.path("data/drop/report.txt")).unwrap(),
            "dropped"
        );
        let host = files_below(&scene.path("data"));
        // The audit names the leaf for its own uses and refusals.
        assert!(
            has(&lines, "driver/leaf", "fs", "/in/a.txt", "refused"),
            "{mode}: {lines:?}"
        );
        assert!(
            has(
                &lines,
                "driver/leaf",
                "network",
                &format!("127.0.0.1:{port}"),
                "allowed"
            ),
            "{mode}: {lines:?}"
        );
        assert!(
            has(&lines, "driver/leaf", "config", "TOKEN", "refused"),
            "{mode}: {lines:?}"
        );
        runs.push((run, decisions(&lines), host));
    }
    let (isolated, fused) = (&runs[0], &runs[1]);
    for op in &ops {
        assert_eq!(
            isolated.0.answer(op),
            fused.0.answer(op),
            "{op} answered differently when fused"
        );
    }
    assert_eq!(
        isolated.0.stdout, fused.0.stdout,
        "the whole output differs"
    );
    assert_eq!(
        isolated.1, fused.1,
        "the audit's decisions differ when fused"
    );
    assert_eq!(isolated.2, fused.2, "the host files differ when fused");
    assert_eq!(
        account(&isolated.0),
        account(&fused.0),
        "the end-of-run account differs"
    );
}

/// What traps a dependency (a capability it does not hold, used through an
/// interface with no error case) ends its parent's call with the default
/// `on-failure = "trap"`, fused or not, and the message names the dependency.
#[test]
fn an_ungranted_ambient_capability_traps_the_parent_in_both_modes() {
    for (op, capability) in [
        ("random", "random"),
        ("insecure-random", "insecure-random"),
        ("wall-clock", "wall-clock"),
        ("monotonic", "monotonic-clock"),
        ("exit:0", "exit"),
    ] {
        let arg = format!("child:{op}");
        let mut audits = Vec::new();
        for mode in MODES {
            let scene = Scene::new();
            let m = scene.driver_tree(
                "grants.stdout = true\ngrants.random = true",
                &format!("isolation = \"{mode}\""),
                "",
            );
            let (run, lines) = audited(&scene, &m, &[], &["child:count", &arg, "sibling:count"]);
            assert_eq!(run.code, 134, "{mode} {op}: {run:?}");
            assert_eq!(run.answer("child:count"), "ok: 1", "{mode} {op}");
            assert!(
                !run.stdout.contains("sibling:count"),
                "{mode} {op}: nothing ran after the trap: {run:?}"
            );
            assert!(
                run.stderr.contains("nanoprocess `driver` trapped")
                    && run.stderr.contains(&format!(
                        "nanoprocess `driver/leaf` was refused capability `{capability}`"
                    )),
                "{mode} {op}: {run:?}"
            );
            assert!(
                run.stderr.contains(&format!("driver/leaf: {capability} (")),
                "{mode} {op}: the account names it: {run:?}"
            );
            assert!(
                lines.iter().any(|l| l["nanoprocess"] == "driver/leaf"
                    && l["family"] == capability
                    && l["decision"] == "refused"),
                "{mode} {op}: {lines:?}"
            );
            audits.push(decisions(&lines));
        }
        assert_eq!(audits[0], audits[1], "{op}: the audits differ when fused");
    }
}

/// A trap that is no refused capability (a panic, or Rust's `println!` failing on
/// an ungranted stdout) should be reported as the isolated case reports it: by
/// the dependency's path, with the panic message from its captured stderr.
#[test]
fn a_panic_in_a_fused_child_names_the_child_and_its_message() {
    for (op, cause) in [
        ("panic:the leaf gave up", "the leaf gave up"),
        ("stdout:not granted", "failed printing to stdout"),
    ] {
        let arg = format!("child:{op}");
        for mode in MODES {
            let scene = Scene::new();
            let m = scene.driver_tree(
                "grants.stdout = true",
                &format!("isolation = \"{mode}\""),
                "",
            );
            let run = run_manifest(&m, &[&arg, "sibling:count"]);
            assert_eq!(run.code, 134, "{mode} {op}: {run:?}");
            assert!(!run.stdout.contains("sibling:count"), "{mode}: {run:?}");
            assert!(
                run.stderr.contains("nanoprocess `driver/leaf`"),
                "{mode} {op}: the child is not named: {run:?}"
            );
            assert!(
                run.stderr.contains(cause),
                "{mode} {op}: the cause is lost: {run:?}"
            );
        }
    }
    // Contained by an isolated host (`on-failure = "error"` on mid), the error
    // the driver gets should name the fused leaf and its panic too.
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.manifest(&format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
grants.stdout = true
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}

[nanoprocess.mid]
component = "{{probe_mid}}"
on-failure = "error"
deps = {{ "test:probe/downstream" = "leaf" }}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
isolation = "{mode}"

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#
        ));
        let run = run_manifest(&m, &["child:down:panic:the leaf gave up"]);
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        let answer = run.assert_err("child:down:panic:the leaf gave up");
        assert!(
            answer.contains("nanoprocess `driver/mid/leaf`") && answer.contains("the leaf gave up"),
            "{mode}: {answer}"
        );
    }
}

// 2. Per family: a fused child holds exactly its own capabilities.

/// The root and its two dependencies all see a directory called `/data` (each a
/// different host directory with different rights), and each holds different
/// variables, random, clocks, network patterns, configuration and output.
fn family_tree(scene: &Scene, sib_mode: &str, port: u16) -> PathBuf {
    scene.file("data/in/a.txt", "the leaf's file");
    scene.file("data/x/b.txt", "the sibling's file");
    scene.file("data/secret.txt", "the root's secret");
    scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true
grants.env = ["PARENT_SECRET", "SHARED"]
grants.random = true
grants.insecure-random = true
grants.wall-clock = true
grants.monotonic-clock = true
grants.network = ["127.0.0.1:*", "localhost:*"]
grants.config = { LOG = "debug", TOKEN = "s3cret-token" }"#,
        &format!(
            r#"isolation = "fused"
grants.fs = [{{ from = "/data/in", guest = "/data", rights = "read+list" }}]
grants.env = ["SHARED"]
grants.random = {{ seed = 7 }}
grants.wall-clock = "2024-01-01T00:00:00Z"
grants.monotonic-clock = "frozen"
grants.network = ["localhost:{port}"]
grants.config = ["LOG"]
grants.stdout = "prefix""#
        ),
        &format!(
            r#"isolation = "{sib_mode}"
grants.fs = [{{ from = "/data/x", guest = "/data", rights = "read-write" }}]
grants.env = ["PARENT_SECRET"]
grants.random = true
grants.wall-clock = true
grants.network = ["tcp:127.0.0.1:{port}"]
grants.config = ["TOKEN"]
grants.stdout = true"#
        ),
    )
}

#[test]
fn a_fused_child_holds_its_own_capabilities_and_not_its_parents_per_family() {
    let port = server();
    let other = server();
    let root_resolve = format!("resolve:localhost:{port}");
    let child_by_ip = format!("child:connect:127.0.0.1:{port}");
    let child_resolve = format!("child:resolve:localhost:{port}");
    let child_other = format!("child:connect:localhost:{other}");
    let root_other = format!("connect:127.0.0.1:{other}");
    let sib_ok = format!("sibling:connect:127.0.0.1:{port}");
    let sib_other = format!("sibling:connect:127.0.0.1:{other}");
    let sib_resolve = format!("sibling:resolve:localhost:{port}");
    let ops: Vec<&str> = vec![
        // Files: one guest name, three directories, three sets of rights.
        "child:read:/data/a.txt",
        "child:ls:/data",
        "child:read:/data/secret.txt",
        "child:read:/data/../secret.txt",
        "child:write:/data/a.txt=overwritten",
        "child:write:/data/planted.txt=x",
        "write:/data/root.txt=by the root",
        "read:/data/secret.txt",
        "sibling:write:/data/sib.txt=by the sibling",
        "sibling:read:/data/b.txt",
        "sibling:read:/data/a.txt",
        "child:read:/data/b.txt",
        // Environment.
        "child:env:SHARED",
        "child:env:PARENT_SECRET",
        "env:PARENT_SECRET",
        "sibling:env:PARENT_SECRET",
        "sibling:env:SHARED",
        // Random and clocks.
        "child:random-hex",
        "random-hex",
        "sibling:random-hex",
        "child:insecure-seed",
        "insecure-seed",
        "child:wall-clock",
        "wall-clock",
        "sibling:wall-clock",
        "child:monotonic",
        // Network: the root's lookup is not the child's; the child's is its own.
        &root_resolve,
        &child_by_ip,
        &child_resolve,
        &child_by_ip,
        &child_other,
        &root_other,
        &sib_ok,
        &sib_other,
        &sib_resolve,
        // Configuration.
        "child:config:LOG",
        "child:config:TOKEN",
        "config:TOKEN",
        "sibling:config:TOKEN",
        "sibling:config:LOG",
        // Output: the child's is prefixed, the sibling's plain, the child's
        // ungranted stderr captured.
        "child:stdout:from the leaf",
        "sibling:stdout:from the sibling",
        "child:stderr:kept from the terminal",
        "child:args",
    ];
    let mut child_random = Vec::new();
    for sib_mode in MODES {
        for attempt in 0..2 {
            let scene = Scene::new();
            let m = family_tree(&scene, sib_mode, port);
            let (run, lines) = audited(
                &scene,
                &m,
                &[("PARENT_SECRET", "hunter2"), ("SHARED", "shared")],
                &ops,
            );
            let ctx = format!("sibling {sib_mode}, run {attempt}");
            assert_eq!(run.code, 0, "{ctx}: {run:?}");

            // Files.
            assert_eq!(run.answer("child:read:/data/a.txt"), "ok: the leaf's file");
            assert_eq!(run.answer("child:ls:/data"), "ok: a.txt", "{ctx}");
            run.assert_err("child:read:/data/secret.txt");
            run.assert_err("child:read:/data/../secret.txt");
            run.assert_err("child:read:/data/b.txt");
            for op in [
                "child:write:/data/a.txt=overwritten",
                "child:write:/data/planted.txt=x",
            ] {
                assert!(
                    run.assert_err(op).contains("Operation not permitted"),
                    "{ctx}: {op}: {run:?}"
                );
            }
            run.assert_ok("write:/data/root.txt=by the root");
            assert_eq!(run.answer("read:/data/secret.txt"), "ok: the root's secret");
            run.assert_ok("sibling:write:/data/sib.txt=by the sibling");
            assert_eq!(
                run.answer("sibling:read:/data/b.txt"),
                "ok: the sibling's file"
            );
            run.assert_err("sibling:read:/data/a.txt");
            assert_eq!(
                std::fs::read_to_string(scene.path("data/in/a.txt")).unwrap(),
                "the leaf's file"
            );
            assert!(!scene.path("data/in/planted.txt").exists());
            assert!(scene.path("data/root.txt").is_file());
            assert!(scene.path("data/x/sib.txt").is_file());
            // The same guest name is attributed to whoever used it.
            assert!(has(&lines, "driver/leaf", "fs", "/data/a.txt", "allowed"));
            assert!(has(&lines, "driver/leaf", "fs", "/data/a.txt", "refused"));
            assert!(has(&lines, "driver", "fs", "/data/root.txt", "allowed"));
            assert!(
                has(&lines, "driver/sib", "fs", "/data/sib.txt", "allowed"),
                "{ctx}: {lines:?}"
            );
            assert!(
                !lines
                    .iter()
                    .any(|l| l["nanoprocess"] == "driver" && l["decision"] == "refused"),
                "{ctx}: the root was refused nothing: {lines:?}"
            );

            // Environment.
            assert_eq!(run.answer("child:env:SHARED"), "ok: shared");
            assert_eq!(run.answer("child:env:PARENT_SECRET"), "err: not present");
            assert_eq!(run.answer("env:PARENT_SECRET"), "ok: hunter2");
            assert_eq!(run.answer("sibling:env:PARENT_SECRET"), "ok: hunter2");
            assert_eq!(run.answer("sibling:env:SHARED"), "err: not present");

            // Random: the child's is seeded (the same every run), the root's and
            // the sibling's real; the child's insecure seed is the fixed one of a
            // nanoprocess without insecure random, not its parent's.
            let seeded = run.assert_ok("child:random-hex").to_string();
            assert_ne!(seeded, run.assert_ok("random-hex"), "{ctx}");
            assert_ne!(seeded, run.assert_ok("sibling:random-hex"), "{ctx}");
            assert_ne!(
                run.assert_ok("child:insecure-seed"),
                run.assert_ok("insecure-seed"),
                "{ctx}"
            );
            child_random.push((
                seeded,
                run.answer("random-hex").to_string(),
                run.answer("child:insecure-seed").to_string(),
            ));

            // Clocks: the child's are frozen, its parent's and sibling's real.
            assert_eq!(run.answer("child:wall-clock"), "ok: 1704067200");
            assert_eq!(run.answer("child:monotonic"), "ok: 0");
            for op in ["wall-clock", "sibling:wall-clock"] {
                let secs: u64 = run.assert_ok(op)["ok: ".len()..].parse().unwrap();
                assert!(secs > 1_704_067_200, "{ctx}: {op} is real: {secs}");
            }

            // Network.
            run.assert_ok(&root_resolve);
            assert_eq!(
                answers(&run, &child_by_ip),
                ["err: Permission denied (os error 2)", "ok: connected"],
                "{ctx}: the root's lookup does not count for the child, its own does"
            );
            assert!(run.assert_ok(&child_resolve).contains("127.0.0.1"));
            run.assert_err(&child_other);
            assert_eq!(run.answer(&root_other), "ok: connected", "{ctx}");
            assert_eq!(run.answer(&sib_ok), "ok: connected", "{ctx}");
            run.assert_err(&sib_other);
            run.assert_err(&sib_resolve);

            // Configuration.
            assert_eq!(run.answer("child:config:LOG"), "ok: debug");
            assert_eq!(run.answer("child:config:TOKEN"), "err: not present");
            assert_eq!(run.answer("config:TOKEN"), "ok: s3cret-token");
            assert_eq!(run.answer("sibling:config:TOKEN"), "ok: s3cret-token");
            assert_eq!(run.answer("sibling:config:LOG"), "err: not present");

            // Output.
            assert!(
                run.stdout
                    .lines()
                    .any(|l| l == "[driver/leaf] from the leaf"),
                "{ctx}: {run:?}"
            );
            assert!(
                run.stdout.lines().any(|l| l == "from the sibling"),
                "{ctx}: {run:?}"
            );
            run.assert_ok("child:stderr:kept from the terminal");
            assert!(
                !run.stdout
                    .lines()
                    .chain(run.stderr.lines())
                    .any(|l| l.ends_with("kept from the terminal") && !l.contains("=>")),
                "{ctx}: {run:?}"
            );
            assert_eq!(run.answer("child:args"), "ok: leaf");
        }
    }
    assert!(
        child_random.windows(2).all(|w| w[0].0 == w[1].0),
        "a seed reproduces: {child_random:?}"
    );
    assert!(
        child_random.windows(2).all(|w| w[0].1 != w[1].1),
        "the root's random is real: {child_random:?}"
    );
    assert!(
        child_random.windows(2).all(|w| w[0].2 == w[1].2),
        "the child's insecure seed is fixed: {child_random:?}"
    );
}

/// The other direction of name lookups: a name the fused child resolved does not
/// let its parent (which holds only names) connect to the address.
#[test]
fn a_fused_childs_lookup_does_not_count_for_its_parent() {
    let port = server();
    let by_ip = format!("connect:127.0.0.1:{port}");
    let child_resolve = format!("child:resolve:localhost:{port}");
    let child_by_ip = format!("child:connect:127.0.0.1:{port}");
    let resolve = format!("resolve:localhost:{port}");
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.driver_tree(
            "grants.stdout = true\ngrants.network = [\"localhost:*\"]",
            &format!("isolation = \"{mode}\"\ngrants.network = [\"localhost:{port}\"]"),
            "",
        );
        let run = run_manifest(
            &m,
            &[&child_resolve, &child_by_ip, &by_ip, &resolve, &by_ip],
        );
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        assert!(run.assert_ok(&child_resolve).contains("127.0.0.1"));
        assert_eq!(run.answer(&child_by_ip), "ok: connected", "{mode}");
        assert_eq!(
            answers(&run, &by_ip),
            ["err: Permission denied (os error 2)", "ok: connected"],
            "{mode}: only the root's own lookup lets it connect: {run:?}"
        );
    }
}

// 3. What `check` shows.

#[test]
fn check_shows_a_fused_child_with_its_grants_its_stores_limits_and_its_own_output_limit() {
    let scene = Scene::new();
    scene.mkdir("data/in");
    let m = scene.driver_tree(
        "grants.fs = [{ host = \"data\", guest = \"/data\", rights = \"read-write\" }]\ngrants.stdout = true\ngrants.random = true",
        "isolation = \"fused\"\ngrants.fs = [{ from = \"/data/in\", guest = \"/in\", rights = \"read-only\" }]\ngrants.random = { seed = 3 }\ngrants.output = \"1 MiB\"",
        "",
    );
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    let leaf = section(&run.stdout, "driver/leaf");
    let sib = section(&run.stdout, "driver/sib");
    let line = |lines: &[&str], key: &str| -> String {
        lines
            .iter()
            .find_map(|l| {
                let l = l.trim_start_matches(['│', ' ']);
                l.strip_prefix(key).map(|rest| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {key} line in {lines:#?}"))
    };
    // Its store's limits (the root's: unlimited), and its own output limit.
    assert_eq!(line(&leaf, "limits"), "output 1 MiB", "{leaf:#?}");
    assert_eq!(
        line(&leaf, "fused"),
        "into driver's store: its own capabilities, its parent's fault domain and limits"
    );
    assert!(line(&leaf, "fs").starts_with("/in (read-only) = host "));
    assert!(line(&leaf, "random").contains("seed"), "{leaf:#?}");
    assert_eq!(line(&leaf, "serves"), "test:probe/probe to driver");
    assert!(
        !leaf.iter().any(|l| l.contains("failure")),
        "a fused child has no failure policy of its own: {leaf:#?}"
    );
    // The isolated sibling keeps its own limits and failure line, and no fused line.
    assert!(
        line(&sib, "limits").starts_with("memory 256 MiB"),
        "{sib:#?}"
    );
    assert_eq!(
        line(&sib, "failure"),
        "traps its parent's call; never restarted"
    );
    assert!(!sib.iter().any(|l| l.contains("fused")), "{sib:#?}");
    assert!(
        run.stdout
            .contains("ok: 3 nanoprocesses, every grant within its parent's"),
        "{run:?}"
    );
}

// 4. What `check` refuses, naming the nanoprocess, the reason and the fix.

fn refused(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stdout.is_empty(),
        "nothing is printed as checked: {run:?}"
    );
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?} in:\n{}", run.stderr);
    }
}

#[test]
fn check_refuses_what_a_fused_edge_cannot_hold() {
    let scene = Scene::new();
    // The root has no parent to be fused into.
    let m = scene.driver_tree("grants.stdout = true\nisolation = \"fused\"", "", "");
    let run = check(&m);
    refused(
        &run,
        &[
            "nanoproc.toml:8:13: driver: `isolation = \"fused\"` applies to dependencies; the root has no parent to be fused into",
        ],
    );
    // Its failures cannot be contained.
    let m = scene.driver_tree("", "isolation = \"fused\"\non-failure = \"error\"", "");
    refused(
        &check(&m),
        &[
            "nanoproc.toml:12:14: driver/leaf: `on-failure = \"error\"` needs an isolated edge",
            "a fused nanoprocess shares its parent's fault domain, so a trap in it ends the parent's call",
            "remove `isolation = \"fused\"` to contain its failures",
        ],
    );
    // It has no instance of its own to restart.
    let m = scene.driver_tree(
        "",
        "isolation = \"fused\"\non-failure = \"error\"\nrestart = { max = 3, within = \"1m\" }",
        "",
    );
    refused(
        &check(&m),
        &[
            "driver/leaf: `restart` needs an isolated edge: a fused nanoprocess has no instance of its own to replace",
            "remove `isolation = \"fused\"` to restart it",
        ],
    );
    // Limits of its own: every one but output.
    let m = scene.driver_tree(
        "",
        "isolation = \"fused\"\ngrants.memory = \"16 MiB\"\ngrants.fuel = 1000000\ngrants.timeout = \"1s\"\ngrants.tables = 10\ngrants.instances = 5\ngrants.handles = 10\ngrants.output = \"1 MiB\"",
        "",
    );
    let run = check(&m);
    for (key, counter) in [
        ("memory", "resource limiter"),
        ("fuel", "fuel counter"),
        ("timeout", "deadline"),
        ("tables", "resource limiter"),
        ("instances", "resource limiter"),
        ("handles", "resource table"),
    ] {
        refused(
            &run,
            &[&format!(
                "driver/leaf: a fused nanoprocess cannot have its own `{key}` limit: it runs in its parent's store, whose one {counter} counts every instance in it alike; its use counts against its parent's limits. Set the limit on the parent, or make the edge isolated (remove `isolation = \"fused\"`)"
            )],
        );
    }
    assert!(
        !run.stderr.contains("`output` limit"),
        "output is a fused child's own: {run:?}"
    );
    assert!(run.stderr.contains("(6 errors)"), "{run:?}");
    // An unknown isolation is named with the choices.
    let m = scene.driver_tree("", "isolation = \"sideways\"", "");
    refused(
        &check(&m),
        &["driver/leaf: isolation must be \"isolated\" or \"fused\", not \"sideways\""],
    );
    // The isolated versions of the same manifests check.
    let m = scene.driver_tree(
        "",
        "isolation = \"isolated\"\non-failure = \"error\"\nrestart = { max = 3, within = \"1m\" }\ngrants.memory = \"16 MiB\"",
        "",
    );
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
}

/// The gallery's `meta` is lent a descriptor for one call: across a fused edge no
/// host would see the loan, so fusing it is refused, naming the function.
#[test]
fn check_refuses_a_fused_edge_that_passes_a_wasi_handle() {
    let scene = Scene::gallery();
    let m = scene.path("nanoproc.toml");
    let text = std::fs::read_to_string(&m).unwrap();
    let meta = "[nanoprocess.meta]\ncomponent = \"build/meta.wasm\"\non-failure = \"error\"";
    assert!(text.contains(meta), "the gallery's meta changed: {text}");
    std::fs::write(
        &m,
        text.replace(
            meta,
            "[nanoprocess.meta]\ncomponent = \"build/meta.wasm\"\nisolation = \"fused\"",
        ),
    )
    .unwrap();
    for run in [check(&m), run_manifest(&m, &[])] {
        refused(
            &run,
            &[
                "app/meta: cannot be fused into `app`: example:gallery/metadata#describe passes a WASI handle (wasi:filesystem/types#descriptor)",
                "a call across a fused edge never passes through nanoproc, which could then neither lend nor withdraw the handle nor record it",
                "remove `isolation = \"fused\"`: across an isolated edge handles are lent, withdrawn and recorded",
            ],
        );
        assert!(
            run.stderr.contains("| isolation = \"fused\""),
            "the refusal points at the line to change: {run:?}"
        );
    }
    assert!(
        snapshot(&scene.path("photos/thumbs")).is_empty(),
        "nothing ran"
    );
}

// 5. Subtrees.

/// driver -> mid -> leaf, each edge isolated or fused as given; each level is
/// handed a narrower directory, mid random, the leaf a seeded random.
fn chain(scene: &Scene, mid: &str, leaf: &str) -> PathBuf {
    scene.file("data/m/l/leaf.txt", "leaf file");
    scene.file("data/m/mid.txt", "mid file");
    scene.file("data/top.txt", "top file");
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
grants.fs = [{{ host = "data", guest = "/data", rights = "read-write" }}]
grants.random = true
grants.stdout = true
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}

[nanoprocess.mid]
component = "{{probe_mid}}"
isolation = "{mid}"
grants.fs = [{{ from = "/data/m", guest = "/m", rights = "read-write" }}]
grants.random = true
grants.stdout = "prefix"
deps = {{ "test:probe/downstream" = "leaf" }}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
isolation = "{leaf}"
grants.fs = [{{ from = "/m/l", guest = "/l", rights = "read-only" }}]
grants.random = {{ seed = 5 }}
grants.stdout = "prefix"

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#
    ))
}

const CHAIN_OPS: [&str; 11] = [
    "child:read:/m/mid.txt",
    "child:read:/data/top.txt",
    "child:write:/m/by-mid.txt=mid",
    "child:down:read:/l/leaf.txt",
    "child:down:read:/m/mid.txt",
    "child:down:write:/l/new.txt=x",
    "child:random",
    "child:down:random-hex",
    "child:down:count",
    "child:stdout:said by mid",
    "child:down:stdout:said by the leaf",
];

#[test]
fn a_fused_subtree_runs_with_each_level_holding_and_audited_as_its_own() {
    let mut results = Vec::new();
    // Every combination of the two edges: both fused is a fused child with a
    // fused child of its own; a fused mid with an isolated leaf has an isolated
    // dependency below a fused one; an isolated mid hosts a fused leaf.
    for (mid, leaf) in [
        ("isolated", "isolated"),
        ("fused", "fused"),
        ("fused", "isolated"),
        ("isolated", "fused"),
    ] {
        let ctx = format!("mid {mid}, leaf {leaf}");
        let scene = Scene::new();
        let m = chain(&scene, mid, leaf);
        let checked = check(&m);
        assert_eq!(checked.code, 0, "{ctx}: {checked:?}");
        for (path, mode) in [("driver/mid", mid), ("driver/mid/leaf", leaf)] {
            let fused_line = section(&checked.stdout, path)
                .iter()
                .any(|l| l.contains("fused   into"));
            assert_eq!(fused_line, mode == "fused", "{ctx}: {checked:?}");
        }
        if (mid, leaf) == ("fused", "fused") {
            // The whole subtree shares the first store that is not fused.
            assert!(
                section(&checked.stdout, "driver/mid/leaf")
                    .iter()
                    .any(|l| l.contains("fused   into driver's store")),
                "{checked:?}"
            );
        }
        if (mid, leaf) == ("isolated", "fused") {
            assert!(
                section(&checked.stdout, "driver/mid/leaf")
                    .iter()
                    .any(|l| l.contains("fused   into driver/mid's store")),
                "{checked:?}"
            );
        }
        let (run, lines) = audited(&scene, &m, &[], &CHAIN_OPS);
        assert_eq!(run.code, 0, "{ctx}: {run:?}");
        assert_eq!(run.answer("child:read:/m/mid.txt"), "ok: mid file", "{ctx}");
        run.assert_err("child:read:/data/top.txt");
        run.assert_ok("child:write:/m/by-mid.txt=mid");
        assert_eq!(
            run.answer("child:down:read:/l/leaf.txt"),
            "ok: leaf file",
            "{ctx}"
        );
        run.assert_err("child:down:read:/m/mid.txt");
        assert!(
            run.assert_err("child:down:write:/l/new.txt=x")
                .contains("Operation not permitted"),
            "{ctx}: {run:?}"
        );
        assert_eq!(run.answer("child:random"), "ok: 16 bytes", "{ctx}");
        assert_eq!(run.answer("child:down:count"), "ok: 1", "{ctx}");
        assert!(!scene.path("data/m/l/new.txt").exists(), "{ctx}");
        // Each level's output is prefixed with its own path.
        for line in [
            "[driver/mid] said by mid",
            "[driver/mid/leaf] said by the leaf",
        ] {
            assert!(run.stdout.lines().any(|l| l == line), "{ctx}: {run:?}");
        }
        // Each level's uses are recorded under its own path.
        for (who, target, decision) in [
            ("driver/mid", "/m/mid.txt", "allowed"),
            ("driver/mid", "/m/by-mid.txt", "allowed"),
            ("driver/mid/leaf", "/l/leaf.txt", "allowed"),
            ("driver/mid/leaf", "/l/new.txt", "refused"),
        ] {
            assert!(
                has(&lines, who, "fs", target, decision),
                "{ctx}: no {decision} {target} for {who}: {lines:?}"
            );
        }
        assert!(
            lines.iter().any(|l| l["nanoprocess"] == "driver/mid"
                && l["family"] == "random"
                && l["decision"] == "allowed"),
            "{ctx}: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l["nanoprocess"] == "driver/mid/leaf"
                && l["family"] == "random"
                && l["decision"] == "allowed"),
            "{ctx}: {lines:?}"
        );
        assert!(
            !lines
                .iter()
                .any(|l| l["nanoprocess"] == "driver" && l["family"] == "fs"),
            "{ctx}: the root itself touched no file: {lines:?}"
        );
        results.push((ctx, run.stdout.clone(), decisions(&lines)));
    }
    // All four answer and record alike.
    for (ctx, out, audit) in &results[1..] {
        assert_eq!(&results[0].1, out, "{ctx}");
        assert_eq!(&results[0].2, audit, "{ctx}");
    }
}

/// A fused child shares its host's fault domain and limits: under an isolated
/// mid that contains its failures (`on-failure = "error"`, `restart`), a refused
/// capability in the fused leaf fails mid's call, and mid is restarted with the
/// leaf inside it (the leaf's state starts over too); the leaf's memory counts
/// against mid's limit, reported as mid's.
#[test]
fn a_fused_child_fails_and_restarts_with_its_host_and_uses_its_limits() {
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.manifest(&format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
grants.stdout = true
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}

[nanoprocess.mid]
component = "{{probe_mid}}"
on-failure = "error"
restart = {{ max = 3, within = "1m" }}
grants.memory = "32 MiB"
deps = {{ "test:probe/downstream" = "leaf" }}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
isolation = "{mode}"
grants.random = {{ seed = 3 }}

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#
        ));
        let run = run_manifest(
            &m,
            &[
                "child:count",
                "child:down:count",
                "child:down:count",
                "child:down:random-hex",
                "child:down:wall-clock",
                "child:count",
                "child:down:count",
                "child:down:random-hex",
                "child:down:alloc:64",
                "sibling:count",
            ],
        );
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        assert_eq!(answers(&run, "child:down:count")[..2], ["ok: 1", "ok: 2"]);
        let refused = run.assert_err("child:down:wall-clock");
        assert!(
            refused.starts_with("err: nanoprocess `driver/mid` failed in test:probe/probe#run")
                && refused
                    .contains("nanoprocess `driver/mid/leaf` was refused capability `wall-clock`"),
            "{mode}: {refused}"
        );
        // Restarted: mid's and the leaf's counters start over, the seed too.
        assert_eq!(answers(&run, "child:count"), ["ok: 1", "ok: 1"], "{mode}");
        assert_eq!(answers(&run, "child:down:count")[2], "ok: 1", "{mode}");
        let hex = answers(&run, "child:down:random-hex");
        assert_eq!(hex[0], hex[1], "{mode}: {run:?}");
        assert!(
            run.stderr.contains("driver/mid: restarted: after: "),
            "{mode}: {run:?}"
        );
        // Memory: an isolated leaf inherits mid's bound as its own; a fused one
        // uses mid's store, so mid is the one that exceeded it.
        let oom = run.assert_err("child:down:alloc:64");
        let who = match mode {
            "isolated" => "nanoprocess `driver/mid/leaf` exceeded its memory limit of 32 MiB",
            _ => "nanoprocess `driver/mid` exceeded its memory limit of 32 MiB",
        };
        assert!(oom.contains(who), "{mode}: {oom}");
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{mode}");
    }
}

/// `output` is a fused child's own: it bounds the streams the child opened.
#[test]
fn a_fused_childs_output_limit_is_its_own() {
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.driver_tree(
            "grants.stdout = true",
            &format!("isolation = \"{mode}\"\ngrants.stdout = true\ngrants.output = \"256 KiB\""),
            "",
        );
        let run = run_manifest(
            &m,
            &["stdout:the root's line", "child:flood:4", "sibling:count"],
        );
        assert_eq!(run.code, 137, "{mode}: {run:?}");
        assert!(
            run.stderr.contains(
                "nanoprocess `driver/leaf` exceeded its output limit of 256 KiB (on stdout)"
            ),
            "{mode}: {run:?}"
        );
        assert!(run.stdout.len() < 512 << 10, "{mode}: {}", run.stdout.len());
        assert!(!run.stdout.contains("sibling:count"), "{mode}");
    }
}

// 6. The gallery, its idgen and thumbnailer fused.

#[test]
fn the_gallery_tells_the_same_story_with_idgen_and_thumbnailer_fused() {
    let mut stories = Vec::new();
    for mode in MODES {
        let scene = Scene::gallery();
        let m = scene.path("nanoproc.toml");
        if mode == "fused" {
            let text = std::fs::read_to_string(&m).unwrap();
            let mut fused = text.clone();
            for dep in ["thumbnailer", "idgen"] {
                let header = format!("[nanoprocess.{dep}]\n");
                assert!(text.contains(&header), "{text}");
                fused = fused.replace(&header, &format!("{header}isolation = \"fused\"\n"));
            }
            std::fs::write(&m, fused).unwrap();
            let checked = check(&m);
            assert_eq!(checked.code, 0, "{checked:?}");
            for dep in ["app/thumbnailer", "app/idgen"] {
                assert!(
                    section(&checked.stdout, dep)
                        .iter()
                        .any(|l| l.contains("fused   into app's store")),
                    "{checked:?}"
                );
            }
        }
        let (run, lines) = audited(
            &scene,
            &m,
            &[
                ("GALLERY_TITLE", "Holiday photos"),
                ("AWS_SECRET_ACCESS_KEY", "demo-secret-that-must-not-leak"),
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        let ids: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .collect();
        assert_eq!(ids.len(), 3, "{mode}: {run:?}");
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit())),
            "{mode}: {ids:?}"
        );
        assert!(ids[0] != ids[1] && ids[1] != ids[2], "{mode}: {ids:?}");
        assert!(
            run.stdout.contains("done: 3 photos, 3 thumbnails"),
            "{mode}: {run:?}"
        );
        let story: Vec<String> = run
            .stdout
            .lines()
            .map(|l| {
                if l.starts_with("id: ") {
                    "id: <random>".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        // The thumbnailer's writes are its own, the idgen's random its own.
        for photo in ["city.pgm", "forest.pgm", "sunset.pgm"] {
            assert!(
                has(
                    &lines,
                    "app/thumbnailer",
                    "fs",
                    &format!("/out/{photo}"),
                    "allowed"
                ),
                "{mode}: {lines:?}"
            );
        }
        assert!(
            lines.iter().all(|l| !(l["family"] == "fs"
                && l["target"].as_str().is_some_and(|t| t.starts_with("/out/"))
                && l["nanoprocess"] != "app/thumbnailer")),
            "{mode}: every /out use is the thumbnailer's: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l["nanoprocess"] == "app/idgen"
                && l["family"] == "random"
                && l["decision"] == "allowed"),
            "{mode}: {lines:?}"
        );
        assert!(
            !lines.iter().any(|l| (l["nanoprocess"] == "app/thumbnailer"
                || l["nanoprocess"] == "app/idgen")
                && l["decision"] == "refused"),
            "{mode}: {lines:?}"
        );
        stories.push((
            story,
            files_below(&scene.path("photos/thumbs")),
            decisions(&lines),
        ));
    }
    assert_eq!(stories[0].0, stories[1].0, "the story differs when fused");
    assert_eq!(stories[0].1.len(), 3, "{:?}", stories[0].1);
    assert_eq!(
        stories[0].1, stories[1].1,
        "the thumbnails differ when fused"
    );
    assert_eq!(stories[0].2, stories[1].2, "the audit differs when fused");
}

// 7. Exit.

#[test]
fn a_fused_child_holding_exit_ends_the_run_as_the_isolated_one_does() {
    for (code, status) in [("3", 1), ("0", 0)] {
        let arg = format!("child:exit:{code}");
        for mode in MODES {
            let scene = Scene::new();
            let m = scene.driver_tree(
                "grants.stdout = true",
                &format!("isolation = \"{mode}\"\ngrants.exit = true\ngrants.stdout = true"),
                "",
            );
            let run = run_manifest(&m, &["child:stdout:before the exit", &arg, "sibling:count"]);
            assert_eq!(run.code, status, "{mode} exit({code}): {run:?}");
            assert!(
                run.stdout.lines().any(|l| l == "before the exit"),
                "{mode}: {run:?}"
            );
            assert!(
                !run.stdout.contains("sibling:count") && !run.stdout.contains(&arg),
                "{mode}: nothing ran after the exit: {run:?}"
            );
            assert!(!run.stderr.contains("trapped"), "{mode}: {run:?}");
        }
    }
}

/// Resources the child's interface defines cross a fused edge natively, by the
/// component model's own rules: the same program over `test:res/counters` gives
/// the same answers isolated and fused, a three-level chain fused at both edges
/// included. (Isolated, the parent holds proxies the host keeps; fused, it holds
/// the child's own handles.)
#[test]
fn resources_of_the_childs_interface_cross_a_fused_edge_natively() {
    let ops = [
        "new:5",
        "inc:0",
        "inc:0",
        "get:0",
        "fork:0",
        "get:1",
        "inc:1",
        "total:0,1",
        "live",
    ];
    let mut outputs = Vec::new();
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.manifest(&format!(
            r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{{res_parent}}"
grants.stdout = true
deps = {{ "test:res/counters" = "child" }}

[nanoprocess.child]
component = "{{res_child}}"
isolation = "{mode}"
"#
        ));
        let run = run_manifest(&m, &ops);
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        assert!(
            run.stdout.contains("total:0,1 => ok: 15"),
            "{mode}: {run:?}"
        );
        assert!(run.stdout.contains("live => ok: 2"), "{mode}: {run:?}");
        outputs.push(run.stdout);
    }
    assert_eq!(outputs[0], outputs[1], "isolated and fused differ");

    // top -> mid -> child, every edge fused: one composite of three instances.
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "top"

[nanoprocess.top]
component = "{res_top}"
grants.stdout = true
deps = { "test:res/meters" = "mid" }

[nanoprocess.mid]
component = "{res_mid}"
isolation = "fused"
deps = { "test:res/counters" = "child" }

[nanoprocess.child]
component = "{res_child}"
isolation = "fused"
"#,
    );
    let checked = check(&m);
    assert_eq!(checked.code, 0, "{checked:?}");
    assert!(
        checked.stdout.contains("fused   into top's store"),
        "{checked:?}"
    );
    let run = run_manifest(
        &m,
        &[
            "new:1",
            "new:10",
            "tick:0",
            "tick:1",
            "live",
            "counters-live",
            "drop:0",
            "live",
            "counters-live",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for line in [
        "tick:0 => ok: 2",
        "tick:1 => ok: 11",
        "live => ok: 2",
        "counters-live => ok: 2",
        "live => ok: 1",
        "counters-live => ok: 1",
    ] {
        assert!(run.stdout.contains(line), "{line}: {run:?}");
    }
}

/// Type checking at check is the same for a fused edge as for an isolated one:
/// wiring checks every edge before fusing, so a child whose export does not match
/// is refused with the same message, both WIT types named.
#[test]
fn a_fused_edge_of_the_wrong_type_is_refused_as_an_isolated_one_is() {
    let mut errors = Vec::new();
    for mode in MODES {
        let scene = Scene::new();
        let m = scene.manifest(&format!(
            r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{{res_parent}}"
deps = {{ "test:res/counters" = "child" }}

[nanoprocess.child]
component = "{{res_child_wrong}}"
isolation = "{mode}"
"#
        ));
        let run = check(&m);
        assert_eq!(run.code, 125, "{mode}: {run:?}");
        assert!(
            run.stderr.contains(
                "parent: its import test:res/counters cannot be satisfied by `parent/child`"
            ),
            "{mode}: {run:?}"
        );
        assert!(run.stderr.contains("counter.get"), "{mode}: {run:?}");
        errors.push(
            run.stderr
                .replace(&scene.dir.path().display().to_string(), ""),
        );
    }
    assert_eq!(errors[0].lines().next(), errors[1].lines().next());
}

/// A fused nanoprocess holds its store's limits, and an isolated child of it is
/// carved out of them: never out of defaults nobody enforces. (Its memory was
/// bounded by the store's budget anyway; its fuel and time per call were not.)
#[test]
fn an_isolated_child_of_a_fused_nanoprocess_is_held_to_the_stores_limits() {
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.stdout = true
grants.memory = "16 MiB"
grants.fuel = 100000000
deps = { "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }

[nanoprocess.mid]
component = "{probe_mid}"
isolation = "fused"
deps = { "test:probe/downstream" = "leaf" }

[nanoprocess.leaf]
component = "{probe_leaf}"

[nanoprocess.sib]
component = "{probe_leaf}"
"#,
    );
    let checked = check(&m);
    assert_eq!(checked.code, 0, "{checked:?}");
    let mid = section(&checked.stdout, "driver/mid");
    assert!(
        mid.iter()
            .any(|l| l.contains("limits  memory 16 MiB, fuel 100000000, output 64 MiB")),
        "{mid:#?}"
    );
    let leaf = section(&checked.stdout, "driver/mid/leaf");
    assert!(
        leaf.iter()
            .any(|l| l.contains("memory 16 MiB") && l.contains("fuel 100000000")),
        "{leaf:#?}"
    );
    let started = std::time::Instant::now();
    let run = run_manifest(&m, &["child:down:spin"]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("`driver/mid/leaf` exceeded its fuel per call limit of 100000000"),
        "{run:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "stopped by its default timeout, not the store's fuel"
    );
}
