//! The hostile corpus: dependencies that loop, allocate, recurse, open handles or
//! print without end, or trap. Each is exercised as the root and as a dependency
//! of a well-behaved parent; each is stopped at its own limit with an error that
//! names it and the cause, the parent goes on where the manifest says so, and the
//! host process's memory stays within the granted limits plus a constant.

use crate::common;
use common::*;

/// driver -> leaf (the hostile one, grants given) and a well-behaved sibling.
fn with_parent(scene: &Scene, leaf: &str) -> std::path::PathBuf {
    scene.driver_tree(
        "grants.stdout = true\ngrants.memory = \"256 MiB\"",
        &format!("on-failure = \"error\"\n{leaf}"),
        "grants.memory = \"16 MiB\"",
    )
}

fn run_with_parent(leaf: &str, ops: &[&str]) -> Run {
    let scene = Scene::new();
    let m = with_parent(&scene, leaf).display().to_string();
    let mut args = vec!["run", "--stats", m.as_str(), "--"];
    args.extend_from_slice(ops);
    nanoproc(&args)
}

/// The hostile call fails with `needle` in its error, and the parent carries on.
fn contained(run: &Run, op: &str, needle: &str) {
    assert_eq!(run.code, 0, "the parent should finish: {run:?}");
    let answer = run.assert_err(op);
    assert!(
        answer.contains("nanoprocess `driver/leaf`"),
        "{op}: {answer}"
    );
    assert!(
        answer.contains(needle),
        "{op}: expected {needle:?} in {answer}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1", "{run:?}");
}

#[test]
fn an_infinite_loop_is_stopped_by_time_or_fuel() {
    // As the root: the run's --timeout, or fuel.
    let run = nanoproc(&["run", "--timeout", "300ms", &cmd(), "--", "spin"]);
    assert_eq!(run.code, 124, "{run:?}");
    assert!(
        run.stderr.contains("stopped: the run's time limit passed"),
        "{run:?}"
    );
    let run = nanoproc(&["run", "--fuel", "50000000", &cmd(), "--", "spin"]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("`probe_cmd` exceeded its fuel per call limit of 50000000"),
        "{run:?}"
    );
    // As a dependency: its time per call, or its fuel per call.
    let run = run_with_parent(
        "grants.timeout = \"200ms\"",
        &["child:spin", "sibling:count"],
    );
    contained(
        &run,
        "child:spin",
        "exceeded its time per call limit of 200ms",
    );
    let run = run_with_parent("grants.fuel = 20_000_000", &["child:spin", "sibling:count"]);
    contained(
        &run,
        "child:spin",
        "exceeded its fuel per call limit of 20000000",
    );
    // Fuel is per call: `busy:1` needs between 10 and 20 million units, so three
    // calls only fit if each gets the full amount afresh.
    let run = run_with_parent(
        "grants.fuel = 20_000_000",
        &[
            "child:busy:1",
            "child:count",
            "child:busy:1",
            "sibling:count",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("child:busy:1");
    assert_eq!(
        run.answer("child:count"),
        "ok: 1",
        "no failure in between: {run:?}"
    );
    assert_eq!(
        run.stdout.matches("child:busy:1 => ok: 1").count(),
        2,
        "{run:?}"
    );
}

#[test]
fn a_memory_bomb_is_stopped_at_its_limit_and_the_host_stays_small() {
    let run = nanoproc(&["run", "--memory", "32MiB", "--stats", &cmd(), "--", "bomb"]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("`probe_cmd` exceeded its memory limit of 32 MiB"),
        "{run:?}"
    );
    assert!(peak_kib(&run) < 32 * 1024 + HOST_OVERHEAD_KIB, "{run:?}");

    let run = run_with_parent(
        "grants.memory = \"24 MiB\"",
        &["child:bomb", "sibling:count"],
    );
    contained(&run, "child:bomb", "exceeded its memory limit of 24 MiB");
    // The root's limit (256 MiB) bounds its whole subtree; the host stays well below.
    assert!(peak_kib(&run) < 256 * 1024 + HOST_OVERHEAD_KIB, "{run:?}");
    // The default limit of a child stops a bomb nobody thought about.
    let run = run_with_parent("", &["child:bomb", "sibling:count"]);
    contained(&run, "child:bomb", "exceeded");
}

#[test]
fn deep_recursion_traps_without_taking_the_host_down() {
    let run = nanoproc(&["run", &cmd(), "--", "recurse:100000000"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr.contains("nanoprocess `probe_cmd` trapped"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("stack"),
        "the cause is explained: {run:?}"
    );
    let run = run_with_parent("", &["child:recurse:100000000", "sibling:count"]);
    contained(&run, "child:recurse:100000000", "stack");
}

#[test]
fn handle_exhaustion_is_stopped_at_the_handle_limit() {
    let run = nanoproc(&["run", "--handles", "64", &cmd(), "--", "sockets:100000"]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("`probe_cmd` exceeded its open handles limit of 64"),
        "{run:?}"
    );
    let run = run_with_parent(
        "grants.handles = 32",
        &["child:sockets:100000", "sibling:count"],
    );
    contained(
        &run,
        "child:sockets:100000",
        "exceeded its open handles limit of 32",
    );
    // Under the limit, the same operation works.
    let run = run_with_parent(
        "grants.handles = 32",
        &["child:sockets:10", "sibling:count"],
    );
    assert_eq!(run.assert_ok("child:sockets:10"), "ok: 10 sockets");
}

#[test]
fn an_output_flood_is_stopped_at_the_output_limit() {
    let run = nanoproc(&["run", "--output", "1MiB", &cmd(), "--", "flood:50"]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("`probe_cmd` exceeded its output limit of 1 MiB (on stdout)"),
        "{run:?}"
    );
    assert!(
        run.stdout.len() <= 1 << 20,
        "no more than the limit got out: {}",
        run.stdout.len()
    );
    let run = run_with_parent(
        "grants.stdout = true\ngrants.output = \"256 KiB\"",
        &["child:flood:50", "sibling:count"],
    );
    contained(
        &run,
        "child:flood:50",
        "exceeded its output limit of 256 KiB (on stdout)",
    );
    // An ungranted stderr can be written without end: only its tail is kept.
    let run = run_with_parent("", &["child:flood-err:20", "sibling:count"]);
    assert_eq!(
        run.assert_ok("child:flood-err:20"),
        "ok: wrote 20971520 bytes"
    );
}

#[test]
fn a_dependency_that_traps_traps_its_parent_unless_told_otherwise() {
    // As the root.
    let run = nanoproc(&["run", &cmd(), "--", "panic:first call"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(run.stderr.contains("first call"), "{run:?}");
    // As a dependency with the default `on-failure = "trap"`: the parent's call
    // traps too, naming the child and its panic.
    let scene = Scene::new();
    let m = scene.driver_tree("grants.stdout = true", "", "");
    let run = run_manifest(&m, &["child:panic:first call", "sibling:count"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr.contains(
            "nanoprocess `driver` trapped: nanoprocess `driver/leaf` failed in test:probe/probe#run"
        ),
        "{run:?}"
    );
    assert!(run.stderr.contains("first call"), "{run:?}");
    assert!(
        !run.stdout.contains("sibling:count"),
        "nothing after the trap: {run:?}"
    );
    // With `on-failure = "error"` the parent receives it and goes on.
    let run = run_with_parent(
        "",
        &["child:panic:first call", "sibling:count", "child:count"],
    );
    contained(&run, "child:panic:first call", "first call");
    assert!(
        run.answer("child:count").contains("not restartable"),
        "{run:?}"
    );
}

#[test]
fn a_restartable_dependency_is_restarted_within_its_budget() {
    let leaf = "restart = { max = 2, within = \"1m\" }";
    let ops: Vec<String> = (1..=35).map(|_| "child:tenth".to_string()).collect();
    let mut all: Vec<&str> = ops.iter().map(String::as_str).collect();
    all.push("sibling:count");
    let run = run_with_parent(leaf, &all);
    assert_eq!(run.code, 0, "{run:?}");
    let answers: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("child:tenth => "))
        .collect();
    assert_eq!(answers.len(), 35, "{run:?}");
    // Each instance serves nine calls and fails on its tenth; a fresh instance
    // starts counting from one again (its state was lost, as promised).
    for (i, a) in answers.iter().enumerate() {
        let call = i + 1;
        if call <= 30 && call % 10 != 0 {
            assert_eq!(
                *a,
                format!("ok: call {}", (call - 1) % 10 + 1),
                "call {call}"
            );
        } else if call <= 30 {
            assert!(
                a.contains("nanoprocess `driver/leaf` failed") && a.contains("tenth call"),
                "call {call}: {a}"
            );
        } else {
            assert!(
                a.contains("used its 2 restarts within 60s"),
                "call {call}: {a}"
            );
        }
    }
    assert_eq!(run.answer("sibling:count"), "ok: 1");
    // The restarts are in the end-of-run account.
    assert_eq!(
        run.stderr.matches("driver/leaf: restarted: after:").count(),
        2,
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("driver/leaf: not restarted: it failed and has used its 2 restarts"),
        "{run:?}"
    );
}

#[test]
fn a_subtree_shares_its_roots_memory_budget() {
    // mid may use 40 MiB for itself and its child together; each alone fits.
    let scene = Scene::new();
    let m = scene.manifest(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.stdout = true
deps = { "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }

[nanoprocess.mid]
component = "{probe_mid}"
grants.memory = "40 MiB"
on-failure = "error"
deps = { "test:probe/downstream" = "leaf" }

[nanoprocess.leaf]
component = "{probe_leaf}"
grants.memory = "30 MiB"
on-failure = "error"

[nanoprocess.sib]
component = "{probe_leaf}"
"#,
    );
    let run = nanoproc(&[
        "run",
        "--stats",
        &m.display().to_string(),
        "--",
        "child:down:alloc:10",
        "child:alloc:20",
        "child:down:alloc:20",
        "sibling:count",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("child:down:alloc:10");
    run.assert_ok("child:alloc:20");
    let answer = run.assert_err("child:down:alloc:20");
    assert!(
        answer.contains("nanoprocess `driver/mid/leaf` exceeded the memory budget of the subtree of `driver/mid`, 40 MiB"),
        "{answer}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1");
    assert!(
        peak_kib(&run) < 40 * 1024 + 256 * 1024 + HOST_OVERHEAD_KIB,
        "{run:?}"
    );
}

#[test]
fn limits_beyond_the_parents_are_refused_at_check() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.timeout = \"10s\"\ngrants.handles = 100",
        "grants.timeout = \"1m\"\ngrants.handles = 1000",
        "",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "driver/leaf: grant timeout (timeout = \"60s\") exceeds what its parent `driver` holds"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("`driver` holds: timeout = \"10s\""),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("driver/leaf: grant handles (handles = \"1000\")"),
        "{run:?}"
    );

    let text = std::fs::read_to_string(&m).unwrap() + "on-failure = \"sometimes\"\n";
    std::fs::write(&m, text).unwrap();
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoproc.toml:18:14: driver/sib: on-failure must be \"trap\" or \"error\""),
        "{run:?}"
    );
}

#[test]
fn a_restart_that_could_never_happen_is_refused_and_instances_are_capped() {
    // With on-failure = "trap" the parent fails with the child: a restart is moot.
    let scene = Scene::new();
    let m = scene.driver_tree("", "restart = { max = 3, within = \"1m\" }", "");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoproc.toml:11:11: driver/leaf: `restart` needs `on-failure = \"error\"`"),
        "{run:?}"
    );
    // A component needs several core instances; a limit of one cannot be met.
    let run = nanoproc(&["run", "--instances", "1", &cmd(), "--", "count"]);
    assert_eq!(run.code, 126, "{run:?}");
    assert!(
        run.stderr
            .contains("`probe_cmd` exceeded its instances limit of 1"),
        "{run:?}"
    );
}

#[test]
fn ctrl_c_stops_the_run_cleanly() {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["run", &cmd(), "--", "spin"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("stopped: the run was interrupted"),
        "{stderr}"
    );
    // No time limit anywhere: the plan compiles no epoch checks, so the spinning
    // guest is not stopped in wasm; the watchdog ends the run after its short
    // grace for such plans, not the 2 s it gives guests that can be stopped.
    assert!(stderr.contains("not interrupted in wasm"), "{stderr}");
    assert!(
        signalled.elapsed() < std::time::Duration::from_millis(1500),
        "took {:?}: {stderr}",
        signalled.elapsed()
    );
}
