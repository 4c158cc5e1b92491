//! Red team: WASI 0.3 (component-model async) nanoprocesses attacked as a hostile
//! 0.3 guest would (issue 15). The guest is `guests/hostile3`: `hostile3_leaf`, a
//! dependency exporting `wit/probe.wit`'s `leaf` world and also a 0.3 command, and
//! `hostile3_driver`, a 0.3 command that calls its children from spawned tasks.
//!
//! What a 0.3 guest can make the host keep for it: every stream, future, waitable
//! set and pending host call (subtask) is an entry in wasmtime's per-store tables
//! and host memory, made by a canonical built-in or an async-lowered import with no
//! nanoproc code in the loop. Those were held to wasmtime's store-wide default of
//! 100,000 live handles, not to the nanoprocess's `handles` limit, and their host
//! memory was charged to no `memory` limit (the first two tests below, with their
//! numbers; fixed since by capping an async store at `handles`). That cap counted
//! wasmtime's entries, not what the nanoprocess holds, so a 0.3 program needed
//! about 2.5 times the `handles` of its 0.2 twin (fixed by a cap of four times
//! `handles` plus 64, and tested). Everything
//! else tried here holds: tasks that outlive their call, a
//! deadlocked event loop, fuel, `--timeout` and Ctrl-C while tasks are pending,
//! a trap in a spawned task, concurrent calls into children from spawned tasks, a
//! deep chain of 0.2 calls on a 0.3 root's fiber, the output limit across
//! concurrent streams, and async features hidden where the check-time scan might
//! miss them.

use crate::common;
use common::*;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn leaf3() -> String {
    guest("hostile3_leaf").display().to_string()
}

/// `driver` (the component `driver`) importing `probe` from `leaf` and `sibling`
/// from `sib`, both `child`; `limits` is the rest of each child's table.
fn tree(scene: &Scene, driver: &str, child: &str, limits: &str) -> PathBuf {
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
grants.stdout = true
grants.monotonic-clock = true

[nanoprocess.leaf]
component = "{child}"
on-failure = "error"
grants.monotonic-clock = true
{limits}

[nanoprocess.sib]
component = "{child}"
on-failure = "error"
grants.monotonic-clock = true
{limits}
"#,
        driver = guest(driver).display(),
        child = guest(child).display(),
    ))
}

fn run_tree(manifest: &std::path::Path, extra: &[&str], args: &[&str]) -> Run {
    let m = manifest.display().to_string();
    let mut all = vec!["run"];
    all.extend_from_slice(extra);
    all.push(&m);
    all.push("--");
    all.extend_from_slice(args);
    nanoproc(&all)
}

// ---------------------------------------------------------------------------------
// Host memory through the component model's async state.

/// FOUND, fixed in 078bee0 and 7d64604: a 0.3 nanoprocess's streams, futures,
/// waitable sets and pending host calls were not held to its `handles` limit. Each
/// is a handle in wasmtime's per-instance tables (`stream.new` makes two), and was
/// bounded only by wasmtime's store-wide default, `Store::set_max_component_handles`
/// = 100,000, which nanoproc never set. Measured with `--handles 100 --memory
/// 4MiB`: `streams:49000`, `futures:49000`, `sets:60000` and `waits:99000` all
/// succeeded (the 100,000th handle trapped "store handle limit exceeded", whatever
/// the limit said). Now an async nanoprocess's store is capped at its `handles`,
/// and going over is reported as that limit (status 137).
#[test]
fn the_component_models_handles_are_held_to_the_handles_limit() {
    for op in [
        "streams:1000",
        "futures:1000",
        "sets:1000",
        "waits:1000:3600000",
    ] {
        // As the root, limited by the command line.
        let run = nanoproc(&[
            "run",
            "--monotonic-clock",
            "--handles",
            "64",
            &leaf3(),
            "--",
            op,
        ]);
        assert_eq!(run.code, 137, "{op}: {run:?}");
        assert!(run.stderr.contains("handles"), "{op}: {run:?}");

        // As a dependency, limited by its manifest.
        let scene = Scene::new();
        let m = tree(
            &scene,
            "probe_driver",
            "hostile3_leaf",
            "grants.handles = 64",
        );
        let child = format!("child:{op}");
        let run = run_tree(&m, &[], &[&child, "sibling:count"]);
        assert_eq!(run.code, 0, "{op}: {run:?}");
        let answer = run.assert_err(&child);
        assert!(answer.contains("handles"), "{op}: {answer}");
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{op}");
    }
}

/// FOUND, fixed with the above: the host memory behind those handles is charged
/// to no one. Two 0.3 dependencies, each limited to 4 MiB of memory and 100
/// handles, each left 99,000 `monotonic-clock.wait-for` calls pending
/// (async-lowered, never awaited, never dropped: about 1 KiB of host memory each,
/// a subtask, a boxed host future and a timer): nanoproc's peak resident memory
/// was 215 MiB against 30 MiB for the same tree idle; one root doing
/// `waits:99000` under `--memory 4MiB --handles 100` reached 123 MiB (27 MiB for
/// `waits:0`); streams cost about 470 B each (`streams:49000` in each: 77 MiB).
/// Every isolated 0.3 nanoprocess of a tree could do the same, about 100 MiB
/// each. The `handles` cap now bounds it (4,096 by default for a dependency);
/// charging it to `memory` would need wasmtime to report what its concurrent state
/// allocates, which it does not.
#[test]
fn pending_host_calls_of_03_dependencies_are_bounded_by_their_limits() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        "probe_driver",
        "hostile3_leaf",
        "grants.memory = \"4MiB\"\ngrants.handles = 100",
    );
    let run = run_tree(
        &m,
        &["--stats"],
        &[
            "child:waits:99000:3600000",
            "sibling:waits:99000:3600000",
            "child:count",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 2 * 4 * 1024,
        "two nanoprocesses limited to 4 MiB each made nanoproc use {peak} KiB: {run:?}"
    );
}

/// A finding of this red team, fixed: an async store's cap counted what wasmtime
/// counts, not what the nanoprocess holds. Every borrow lent during a call is a
/// live handle too, and a stream is three entries in the async state's table. So
/// a 0.3 nanoprocess needed about 2.5 times the `handles` of its 0.2 twin for the
/// same work: reading one file (`read:`, then `files:2`) needed 4 for probe_leaf
/// and 10 for probe3_leaf, which failed at 8 while holding two descriptors. The
/// cap is now 4 x `handles` + 64 (run.rs), which still bounds a hostile guest
/// (the tests above), and manifest.md says what a 0.3 nanoprocess's `handles`
/// counts.
#[test]
fn a_03_nanoprocess_does_with_a_handles_limit_what_its_02_twin_does() {
    for leaf in ["probe_leaf", "probe3_leaf"] {
        let scene = Scene::new();
        scene.file("data/a.txt", "hello");
        let m = scene.manifest(&format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
grants.stdout = true
grants.fs = [{{ host = "data", guest = "/data", rights = "read-write" }}]

[nanoprocess.leaf]
component = "{leaf}"
on-failure = "error"
grants.fs = [{{ from = "/data", guest = "/d", rights = "read-write" }}]
grants.handles = 8

[nanoprocess.sib]
component = "{leaf}"
"#,
            driver = guest("probe_driver").display(),
            leaf = guest(leaf).display(),
        ));
        let run = run_manifest(&m, &["child:read:/d/a.txt", "child:files:2"]);
        assert_eq!(run.code, 0, "{leaf}: {run:?}");
        assert_eq!(
            run.answer("child:read:/d/a.txt"),
            "ok: hello",
            "{leaf}: {run:?}"
        );
        assert_eq!(
            run.answer("child:files:2"),
            "ok: 2 files",
            "{leaf}: {run:?}"
        );
    }
}

/// Holds: what was left pending by a call that returned (host calls started and
/// never awaited) does not break the next call, nor the nanoprocess's sibling, and
/// is torn down with the run.
#[test]
fn host_calls_left_pending_by_a_03_dependency_do_not_break_its_next_call() {
    for driver in ["probe_driver", "probe3_driver", "hostile3_driver"] {
        let scene = Scene::new();
        let m = tree(&scene, driver, "hostile3_leaf", "grants.timeout = \"2s\"");
        let (run, took) = nanoproc_within(
            Duration::from_secs(60),
            &[
                "run",
                &m.display().to_string(),
                "--",
                "child:waits:500:3600000",
                "child:count",
                "sibling:count",
                "child:waits:500:1",
                "child:count",
            ],
        );
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert_eq!(
            run.answer("child:waits:500:3600000"),
            "ok: 500 waits started, 500 pending",
            "{driver}"
        );
        assert_eq!(run.answer("child:count"), "ok: 2", "{driver}: {run:?}");
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{driver}");
        // An hour's timers left behind do not hold the run.
        assert!(took < Duration::from_secs(30), "{driver}: took {took:?}");
    }
}

// ---------------------------------------------------------------------------------
// Time: tasks that outlive their call, deadlocks, fuel, --timeout and Ctrl-C.

/// Holds: a task a 0.3 root spawns runs only while its `run` runs. A root whose
/// `run` returns with a spawned task still waiting (to print later) or spinning
/// ends at once: the task never prints, and nothing waits for it.
#[test]
fn a_task_spawned_by_a_03_root_does_not_outlive_its_run() {
    let (run, took) = nanoproc_within(
        Duration::from_secs(30),
        &[
            "run",
            "--monotonic-clock",
            &leaf3(),
            "--",
            "spawn-print:300:LATE",
            "spawn-spin",
            "count",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("count"), "ok: 3");
    assert!(!run.stdout.lines().any(|l| l == "LATE"), "{run:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // While `run` still runs (it sleeps), the task does run, and prints.
    let run = nanoproc(&[
        "run",
        "--monotonic-clock",
        &leaf3(),
        "--",
        "spawn-print:50:EARLY",
        "sleep:500",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.lines().any(|l| l == "EARLY"), "{run:?}");
}

/// Holds: a 0.3 root whose only task awaits a stream it alone could write ends
/// with wasmtime's deadlock trap, at once, not a hang nor a panic.
#[test]
fn a_03_root_deadlocked_on_its_own_stream_fails_cleanly() {
    let (run, took) = nanoproc_within(
        Duration::from_secs(30),
        &["run", &leaf3(), "--", "count", "deadlock", "count"],
    );
    assert_eq!(run.code, 134, "{run:?}");
    assert_eq!(run.answer("count"), "ok: 1");
    assert!(run.stderr.contains("deadlock detected"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Holds: a task a 0.3 root spawned that traps while `run` awaits ends the run
/// as the root's own trap, with the guest's message, and nothing after it runs.
#[test]
fn a_trap_in_a_task_spawned_by_a_03_root_is_the_roots_trap() {
    let (run, _) = nanoproc_within(
        Duration::from_secs(30),
        &[
            "run",
            "--monotonic-clock",
            &leaf3(),
            "--",
            "spawn-trap:10",
            "sleep:2000",
            "count",
        ],
    );
    assert_eq!(run.code, 134, "{run:?}");
    assert!(run.stderr.contains("a spawned task trapped"), "{run:?}");
    assert!(
        run.stderr.contains("nanoprocess `hostile3_leaf` trapped"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("count =>"), "{run:?}");
}

/// Holds: fuel runs out with tasks and host calls pending; `--timeout` and Ctrl-C
/// stop a 0.3 root awaiting while it has spawned tasks and host calls pending.
#[test]
fn fuel_timeout_and_ctrl_c_stop_a_03_root_with_tasks_pending() {
    let pending = ["waits:1000:3600000", "spawn-print:600000:never"];
    let mut args = vec!["run", "--monotonic-clock", "--fuel", "100000000"];
    let l = leaf3();
    args.extend([l.as_str(), "--"]);
    args.extend(pending);
    args.push("spin");
    let (run, _) = nanoproc_within(Duration::from_secs(60), &args);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(run.stderr.contains("fuel"), "{run:?}");

    let mut args = vec![
        "run",
        "--monotonic-clock",
        "--timeout",
        "1s",
        l.as_str(),
        "--",
    ];
    args.extend(pending);
    args.push("sleep:600000");
    let (run, took) = nanoproc_within(Duration::from_secs(30), &args);
    assert_eq!(run.code, 124, "{run:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(!run.stderr.contains("still blocked"), "{run:?}");

    let child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["run", "--monotonic-clock", l.as_str(), "--"])
        .args(pending)
        .arg("sleep:600000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
}

/// Holds: a 0.3 dependency's exports are ordinary functions, which may not wait:
/// one that tries (a sleep, a deadlock, `block_on` of a spawned task) traps itself
/// alone, and its sibling answers.
#[test]
fn a_03_dependency_that_waits_in_an_ordinary_export_fails_alone() {
    for op in ["sleep:10", "deadlock", "spawn-print:10:x"] {
        let scene = Scene::new();
        let m = tree(&scene, "probe_driver", "hostile3_leaf", "");
        let child = format!("child:{op}");
        let (run, _) = nanoproc_within(
            Duration::from_secs(30),
            &[
                "run",
                &m.display().to_string(),
                "--",
                &child,
                "sibling:count",
            ],
        );
        assert_eq!(run.code, 0, "{op}: {run:?}");
        let answer = run.assert_err(&child);
        assert!(
            answer.contains("driver/leaf")
                && answer.contains("cannot block")
                && !answer.contains("preview 1"),
            "{op}: {answer}"
        );
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{op}");
    }
}

// ---------------------------------------------------------------------------------
// Crossing edges.

/// Holds: a 0.3 driver calling its children from two spawned tasks at once (while
/// a third awaits a timer) gets each answer once: the calls are ordinary,
/// synchronous imports, so they run one after the other, each child under its own
/// time limit, and a child stuck in one fails alone without panicking the driver.
#[test]
fn concurrent_calls_from_a_03_drivers_tasks_are_serialized_and_limited() {
    for child in ["probe_leaf", "probe3_leaf", "hostile3_leaf"] {
        let scene = Scene::new();
        let m = tree(&scene, "hostile3_driver", child, "grants.timeout = \"1s\"");
        let (run, _) = nanoproc_within(
            Duration::from_secs(60),
            &[
                "run",
                &m.display().to_string(),
                "--",
                "both:count",
                "child:count",
                "both:spin",
                "sibling:count",
            ],
        );
        assert_eq!(run.code, 0, "{child}: {run:?}");
        let both: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("both:count => "))
            .collect();
        assert_eq!(both.len(), 2, "{child}: {run:?}");
        assert!(both.contains(&"probe ok: 1"), "{child}: {both:?}");
        assert!(both.contains(&"sibling ok: 1"), "{child}: {both:?}");
        assert_eq!(run.answer("child:count"), "ok: 2", "{child}");
        let spun: Vec<&str> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("both:spin => "))
            .collect();
        assert_eq!(spun.len(), 2, "{child}: {run:?}");
        for line in spun {
            assert!(
                line.contains("exceeded its time per call limit of 1s"),
                "{child}: {line}"
            );
        }
        assert!(
            run.answer("sibling:count").contains("not restartable"),
            "{child}: {run:?}"
        );
        assert!(!run.stderr.contains("panicked"), "{child}: {run:?}");
    }
}

/// Holds: below a 0.3 root, a chain of 0.2 nanoprocesses runs on the root's fiber
/// (its calls are ordinary host calls there), where the thread-stack check before
/// each call is skipped. Every level recursing as deep as its wasm stack allows
/// (5,000 frames of probe-mid's `dive`; 5,500 trap) before calling the next still
/// fits the fiber sized for the tree's depth, as it fits the thread of a 0.2 root
/// (`costs.rs`).
#[test]
fn a_deep_chain_at_its_wasm_stack_limit_fits_a_03_roots_fiber() {
    let mids = 48;
    let scene = Scene::new();
    let manifest = crate::costs::chain_under(&scene, "probe3_driver", mids);
    let op = format!("child:{}count", "dive:5000:".repeat(mids));
    let run = run_manifest(&manifest, &[&op, "sibling:count"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&op), "ok: 1");
    assert_eq!(run.answer("sibling:count"), "ok: 1", "{run:?}");
}

// ---------------------------------------------------------------------------------
// Output through many concurrent 0.3 streams.

/// Holds: 64 `write-via-stream` calls at once, 64 KiB each, share one output
/// budget: no more than the limit reaches stdout, and the nanoprocess is stopped
/// at it.
#[test]
fn the_output_limit_holds_across_concurrent_03_streams() {
    let run = nanoproc(&[
        "run",
        "--output",
        "1MiB",
        &leaf3(),
        "--",
        "write-streams:64:65536",
    ]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(run.stdout.len() <= 1 << 20, "{} bytes", run.stdout.len());
    assert!(
        run.stderr.contains("exceeded its output limit of 1 MiB"),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------
// Check time: async features where the scan might miss them.

fn root_manifest(scene: &Scene, wat: &str) -> String {
    let wasm = wat::parse_str(wat).unwrap();
    std::fs::write(scene.path("c.wasm"), wasm).unwrap();
    scene
        .file(
            "nanoproc.toml",
            "[app]\nroot = \"r\"\n\n[nanoprocess.r]\ncomponent = \"c.wasm\"\n",
        )
        .display()
        .to_string()
}

/// Holds: a component whose only async feature is a `stream` type inside a nested
/// component is found async (its plan gets concurrency support) and runs; an
/// `error-context` hidden inside a list type, which the scan does not look for,
/// is refused at compile with the error-context help, never run on an engine
/// without support for it.
#[test]
fn async_features_hidden_in_a_component_are_found_or_refused_cleanly() {
    let scene = Scene::new();
    let m = root_manifest(
        &scene,
        r#"(component
          (component $inner
            (type $s (stream u8))
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (type $rt (result))
            (type $ft (func (result $rt)))
            (func $run (type $ft) (canon lift (core func $i "run")))
            (export "run" (func $run)))
          (instance $x (instantiate $inner))
          (instance $runi (export "run" (func $x "run")))
          (export "wasi:cli/run@0.2.0" (instance $runi)))"#,
    );
    let checked = nanoproc(&["check", "--json", &m]);
    assert_eq!(checked.code, 0, "{checked:?}");
    let json: serde_json::Value = serde_json::from_str(&checked.stdout).unwrap();
    assert_eq!(json["concurrency_support"], true, "{json}");
    assert_eq!(json["nanoprocesses"][0]["async"], true, "{json}");
    let run = nanoproc(&["run", &m]);
    assert_eq!(run.code, 0, "{run:?}");

    let scene = Scene::new();
    let m = root_manifest(
        &scene,
        r#"(component
          (type $l (list error-context))
          (core module $m (func (export "run") (result i32) i32.const 0))
          (core instance $i (instantiate $m))
          (type $rt (result))
          (type $ft (func (result $rt)))
          (func $run (type $ft) (canon lift (core func $i "run")))
          (instance $runi (export "run" (func $run)))
          (export "wasi:cli/run@0.2.0" (instance $runi)))"#,
    );
    let run = nanoproc(&["run", &m]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("error-context") && !run.stderr.contains("panicked"),
        "{run:?}"
    );
}
