//! Every limit from the first instruction: time limits hold while a nanoprocess is
//! instantiated (its start function runs guest code) and restarted, and while it
//! waits in a host call; `--timeout` and Ctrl-C end the run in bounded time even
//! when a guest never returns; a closed output pipe ends the run quietly; and an
//! output limit counts what actually reaches the terminal.

use crate::common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Time for nanoproc to start and compile (cached or not) before a limit counts.
/// Bounds below are the limit plus this: generous for a loaded CI machine, far
/// below the "forever" they guard against.
const SLACK: Duration = Duration::from_secs(20);

/// Runs nanoproc, failing the test if it has not ended within [`SLACK`] (or much
/// more, for what used to hang).
fn timed(args: &[&str]) -> (Run, Duration) {
    nanoproc_within(SLACK * 3, args)
}

/// driver -> leaf, with `leaf` the rest of the leaf's table. The run itself has a
/// `--timeout` far beyond what the test allows, so that only the leaf's own limit
/// can explain a quick end.
fn driver_and_leaf(scene: &Scene, leaf: &str) -> String {
    scene
        .driver_tree("grants.stdout = true", leaf, "")
        .display()
        .to_string()
}

#[test]
fn a_dependency_spinning_in_its_start_function_is_stopped_by_its_own_timeout() {
    let scene = Scene::new();
    let m = driver_and_leaf(
        &scene,
        "grants.env = [\"PROBE_AT_START=spin\"]\ngrants.timeout = \"1s\"",
    );
    let (run, took) = timed(&["run", "--timeout", "600s", &m, "--", "child:count"]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    // A limit stopped it, the right nanoprocess is named, and nothing ran.
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot start nanoprocess `driver/leaf`")
            && run.stderr.contains("time per call limit of 1s"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("child:count"), "{run:?}");
}

#[test]
fn an_exit_in_a_start_function_ends_the_application_as_during_a_call() {
    let scene = Scene::new();
    // Held: the application ends with the exit's status (WASI 0.2 carries only
    // success or failure), quietly, before the root runs.
    let m = scene
        .driver_tree(
            "grants.stdout = true\ngrants.exit = true",
            "grants.env = [\"PROBE_AT_START=exit\"]\ngrants.exit = true",
            "",
        )
        .display()
        .to_string();
    let run = nanoproc(&["run", &m, "--", "child:count"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!run.stdout.contains("child:count"), "{run:?}");
    assert!(!run.stderr.contains("cannot start"), "{run:?}");
    // Not held: refused like any use of `exit`, and the dependency cannot start.
    let m = scene
        .driver_tree(
            "grants.stdout = true",
            "grants.env = [\"PROBE_AT_START=exit\"]",
            "",
        )
        .display()
        .to_string();
    let run = nanoproc(&["run", &m, "--", "child:count"]);
    assert_eq!(run.code, 126, "{run:?}");
    assert!(
        run.stderr
            .contains("cannot start nanoprocess `driver/leaf`")
            && run.stderr.contains("exit"),
        "{run:?}"
    );
}

#[test]
fn the_runs_timeout_holds_during_instantiation_with_its_own_status() {
    let scene = Scene::new();
    // The leaf's default per-call limit is 30 s; the run's is 1 s.
    let m = driver_and_leaf(&scene, "grants.env = [\"PROBE_AT_START=spin\"]");
    let (run, took) = timed(&["run", "--timeout", "1s", &m, "--", "child:count"]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 124, "{run:?}");
    assert!(
        run.stderr.contains("stopped: the run's time limit passed"),
        "{run:?}"
    );
}

#[test]
fn a_restart_that_spins_is_stopped_by_the_childs_timeout_and_reported_to_its_parent() {
    let scene = Scene::new();
    let dir = scene.mkdir("d");
    let marker = "/d/failed-once";
    let m = driver_and_leaf(
        &scene,
        &format!(
            "on-failure = \"error\"\nrestart = {{ max = 3, within = \"1m\" }}\n\
             grants.timeout = \"1s\"\n\
             grants.env = [\"PROBE_AT_START=spin-if:{marker}\"]\n\
             grants.fs = [{{ from = \"/d\", guest = \"/d\", rights = \"read-write\" }}]"
        ),
    );
    // The root holds the directory, to grant it.
    let m = std::fs::read_to_string(&m).unwrap().replace(
        "grants.stdout = true",
        &format!(
            "grants.stdout = true\ngrants.fs = [{{ host = \"{}\", guest = \"/d\", rights = \"read-write\" }}]",
            dir.display()
        ),
    );
    let m_path = scene.path("nanoproc.toml");
    std::fs::write(&m_path, m).unwrap();
    let m = m_path.display().to_string();
    let (run, took) = timed(&[
        "run",
        "--timeout",
        "600s",
        &m,
        "--",
        &format!("child:write:{marker}=x"),
        "child:panic:first failure",
        "child:count",
        "sibling:count",
    ]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 0, "the parent goes on: {run:?}");
    let answer = run.assert_err("child:count");
    assert!(
        answer.contains("could not be restarted") && answer.contains("time per call limit of 1s"),
        "{answer}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1", "{run:?}");
}

#[test]
fn a_dependency_waiting_in_a_host_call_is_stopped_by_its_own_timeout() {
    let scene = Scene::new();
    let m = driver_and_leaf(
        &scene,
        "on-failure = \"error\"\ngrants.monotonic-clock = true\ngrants.timeout = \"1s\"",
    );
    let m = std::fs::read_to_string(&m).unwrap().replace(
        "grants.stdout = true",
        "grants.stdout = true\ngrants.monotonic-clock = true",
    );
    let m_path = scene.path("nanoproc.toml");
    std::fs::write(&m_path, m).unwrap();
    let m = m_path.display().to_string();
    let (run, took) = timed(&[
        "run",
        "--timeout",
        "600s",
        &m,
        "--",
        "child:sleep:600000",
        "sibling:count",
    ]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 0, "the parent goes on: {run:?}");
    let answer = run.assert_err("child:sleep:600000");
    assert!(
        answer.contains("nanoprocess `driver/leaf`")
            && answer.contains("time per call limit of 1s"),
        "{answer}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1");
}

#[test]
fn the_runs_timeout_stops_a_guest_waiting_for_stdin() {
    // stdin is a pipe nobody ever writes to or closes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["run", "--stdin", "--timeout", "1s", &cmd(), "--", "stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_open = child.stdin.take();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < SLACK, "{stderr}");
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(
        stderr.contains("stopped: the run's time limit passed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("still blocked"),
        "stopped in the wait itself, not by the watchdog: {stderr}"
    );
}

#[test]
fn ctrl_c_stops_a_guest_waiting_in_a_host_call() {
    let child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["run", "--monotonic-clock", &cmd(), "--", "sleep:600000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(started.elapsed() < Duration::from_secs(5), "{stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("stopped: the run was interrupted"),
        "{stderr}"
    );
}

/// A guest stuck in a system call no one can cancel (opening a FIFO nobody
/// writes to): the watchdog ends the run at the timeout plus its grace, with the
/// timeout's status and an audit log whose every line is whole.
#[test]
fn the_watchdog_ends_a_run_whose_guest_never_returns() {
    let scene = Scene::new();
    let dir = scene.mkdir("d");
    let fifo = dir.join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let audit = scene.path("audit.jsonl");
    let (run, took) = timed(&[
        "run",
        "--dir",
        &format!("{}::/d", dir.display()),
        "--timeout",
        "1s",
        "--audit",
        &audit.display().to_string(),
        &cmd(),
        "--",
        "ls:/d",
        "read:/d/fifo",
    ]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 124, "{run:?}");
    assert!(
        run.stderr.contains("still blocked in a host call"),
        "{run:?}"
    );
    // Every line parses; the listing before the block was recorded.
    let lines = audit_lines(&audit);
    assert!(
        lines.iter().any(|l| l["operation"]
            .as_str()
            .unwrap_or("")
            .contains("read-directory")),
        "{lines:?}"
    );
}

#[test]
fn a_closed_output_pipe_ends_the_run_quietly() {
    // `nanoproc run ... | head -c 1`: the reader goes away after one byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["run", &cmd(), "--", "flood:64"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("trapped"),
        "quietly: {stderr}"
    );
    // The same for `check`, whose report is written by nanoproc itself.
    let scene = Scene::new();
    let m = driver_and_leaf(&scene, "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(["check", &m])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn an_output_limit_counts_the_prefixes_it_adds() {
    // Every byte the guest writes is a newline, so each is a line that gets the
    // `[probe_cmd] ` prefix: 13 bytes reach the terminal for each byte written.
    let run = nanoproc(&[
        "run",
        "--stdout",
        "prefix",
        "--output",
        "1MiB",
        &cmd(),
        "--",
        "flood-lines:4",
    ]);
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stdout.len() <= 1 << 20,
        "no more than the limit reached the terminal: {} bytes",
        run.stdout.len()
    );
    assert!(
        run.stderr.contains("exceeded its output limit of 1 MiB"),
        "{run:?}"
    );
}
