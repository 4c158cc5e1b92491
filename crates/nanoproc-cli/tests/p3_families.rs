//! The capability families through WASI 0.3 (issue 15, part 2): environment,
//! stdio, clocks, random, exit and network, each granted and refused, as the root
//! (`probe3_cmd`, a 0.3 command) and as a dependency (`probe3_leaf` under a 0.2
//! driver and under a 0.3 one), with the same decisions, errors, traps and audit
//! records as their WASI 0.2 twins in families.rs, network.rs and udp_scope.rs;
//! and the time limits of a 0.3 guest that awaits a host future.
//!
//! Every op of the 0.3 probes goes through a `wasi:*@0.3.0` import (guests/
//! probe3-ops). A 0.3 leaf's exports are ordinary functions, whose bodies may not
//! wait (the component model traps "cannot block a synchronous task"): what waits
//! (an allowed connect or lookup, a sleep, a datagram) is tested at the root, a 0.3
//! command whose `run` is `async`.

use crate::common;
use common::net::*;
use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The WASI 0.3 probe command, as an argument.
fn cmd3() -> String {
    guest("probe3_cmd").display().to_string()
}

/// The two drivers a 0.3 leaf is tested under: WASI 0.2's and 0.3's.
const DRIVERS: [&str; 2] = ["probe_driver", "probe3_driver"];

/// `driver` (the component `driver`) importing `probe` from `leaf` and `sibling`
/// from `sib`, both `probe3_leaf`; each argument is the rest of that
/// nanoprocess's table. Both children's failures reach the driver as errors.
fn tree3(scene: &Scene, driver: &str, root: &str, leaf: &str, sib: &str) -> PathBuf {
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
grants.stdout = true
{root}

[nanoprocess.leaf]
component = "{leaf3}"
on-failure = "error"
{leaf}

[nanoprocess.sib]
component = "{leaf3}"
on-failure = "error"
{sib}
"#,
        guest(driver).display(),
        leaf3 = guest("probe3_leaf").display(),
    ))
}

/// Whether the audit holds a line for `nanoprocess`, `operation` and `decision`.
fn recorded(
    audit: &[serde_json::Value],
    nanoprocess: &str,
    operation: &str,
    decision: &str,
) -> bool {
    audit.iter().any(|e| {
        e["nanoprocess"] == nanoprocess && e["operation"] == operation && e["decision"] == decision
    })
}

// ---------------------------------------------------------------------------------
// Environment.

#[test]
fn the_environment_holds_only_what_was_granted() {
    let run = nanoproc(&[
        "run",
        "--env",
        "GREETING=hi",
        &cmd3(),
        "--",
        "env:GREETING",
        "env:HOME",
        "args",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("env:GREETING"), "ok: hi");
    assert_eq!(run.answer("env:HOME"), "err: not present");
    assert_eq!(
        run.answer("args"),
        "ok: probe3_cmd env:GREETING env:HOME args"
    );

    for driver in DRIVERS {
        let scene = Scene::new();
        let m = tree3(&scene, driver, "", "grants.env = [\"X=1\"]", "");
        let (run, audit) = audited(&scene, &m, &["child:env:X", "sibling:env:X"]);
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert_eq!(run.answer("child:env:X"), "ok: 1", "{driver}");
        assert_eq!(run.answer("sibling:env:X"), "err: not present", "{driver}");
        // The first read is recorded as a use, under the 0.2 operation's name
        // (the function is the same in both generations).
        assert!(
            recorded(
                &audit,
                "driver/leaf",
                "wasi:cli/environment.get-environment",
                "allowed"
            ),
            "{driver}: {audit:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Stdio.

#[test]
fn a_03_childs_output_can_be_prefixed_discarded_or_refused_and_a_refusal_fails_only_that_write() {
    for driver in DRIVERS {
        let scene = Scene::new();
        let m = tree3(
            &scene,
            driver,
            "",
            "grants.stdout = \"prefix\"\ngrants.stderr = \"discard\"",
            "",
        );
        let (run, audit) = audited(
            &scene,
            &m,
            &[
                "child:stdout:hello from the leaf",
                "child:stderr:into the void",
                "sibling:stdout:refused",
                "sibling:count",
            ],
        );
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert!(
            run.stdout
                .lines()
                .any(|l| l == "[driver/leaf] hello from the leaf"),
            "{driver}: {run:?}"
        );
        assert!(
            !run.stdout
                .lines()
                .chain(run.stderr.lines())
                .any(|l| l.ends_with("into the void") && !l.contains("=>")),
            "{driver}: {run:?}"
        );
        run.assert_ok("child:stderr:into the void");
        // The write fails with the stream's error code (`io`), the refusal is named,
        // and the nanoprocess goes on: nothing else of it failed.
        run.assert_err("sibling:stdout:refused");
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{driver}: {run:?}");
        assert!(
            run.stderr
                .contains("driver/sib: stdout (wasi:cli/stdout.write-via-stream): not granted"),
            "{driver}: {run:?}"
        );
        assert!(
            recorded(
                &audit,
                "driver/sib",
                "wasi:cli/stdout.write-via-stream",
                "refused"
            ),
            "{driver}: {audit:?}"
        );
        assert!(
            recorded(
                &audit,
                "driver/leaf",
                "wasi:cli/stdout.write-via-stream",
                "allowed"
            ),
            "{driver}: {audit:?}"
        );
    }
}

#[test]
fn the_output_limit_counts_03_streams() {
    // The root: past its limit a write traps, as in 0.2 (a flood is stopped, not
    // truncated silently).
    let (run, _) = nanoproc_within(
        Duration::from_secs(120),
        &["run", "--output", "100KiB", &cmd3(), "--", "flood:1"],
    );
    assert_eq!(run.code, 137, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoprocess `probe3_cmd` exceeded its output limit of 100 KiB (on stdout)"),
        "{run:?}"
    );
    assert!(
        run.stdout.len() <= 100 * 1024,
        "{} bytes reached stdout",
        run.stdout.len()
    );

    // A dependency: its call fails, named; its sibling goes on.
    for driver in DRIVERS {
        let scene = Scene::new();
        let m = tree3(
            &scene,
            driver,
            "",
            "grants.stdout = \"prefix\"\ngrants.output = \"100KiB\"",
            "",
        );
        let run = run_manifest(&m, &["child:flood:1", "sibling:count"]);
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert!(
            run.assert_err("child:flood:1").contains(
                "nanoprocess `driver/leaf` exceeded its output limit of 100 KiB (on stdout)"
            ),
            "{driver}: {run:?}"
        );
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{driver}");
    }
}

#[test]
fn stdin_is_read_only_when_granted() {
    use std::io::Write;
    let cmd = cmd3();
    let feed = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"typed by the user")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (out, _) = feed(&["run", "--stdin", &cmd, "--", "stdin"]);
    assert_eq!(out.trim(), "stdin => ok: typed by the user");
    // Refused: the read fails, and only the read (stdout still works after it).
    let (out, err) = feed(&["run", &cmd, "--", "stdin", "stdout:after"]);
    assert!(out.starts_with("stdin => err:"), "{out}");
    assert!(out.contains("stdout:after => ok: printed"), "{out}");
    assert!(
        err.contains("probe3_cmd: stdin (wasi:cli/stdin.read-via-stream): not granted"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Clocks.

#[test]
fn clocks_can_be_real_frozen_or_refused() {
    // The root: real, frozen, and refused (a trap: the clocks have no error case).
    let run = nanoproc(&["run", "--clocks", &cmd3(), "--", "wall-clock", "monotonic"]);
    assert_eq!(run.code, 0, "{run:?}");
    let now: u64 = run.assert_ok("wall-clock")["ok: ".len()..].parse().unwrap();
    assert!(now > 1_700_000_000, "{run:?}");
    let run = nanoproc(&[
        "run",
        "--clock-at",
        "2024-01-01T00:00:00Z",
        &cmd3(),
        "--",
        "wall-clock",
        "monotonic",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("wall-clock"), "ok: 1704067200");
    assert_eq!(run.answer("monotonic"), "ok: 0");
    let run = nanoproc(&["run", &cmd3(), "--", "wall-clock"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "nanoprocess `probe3_cmd` was refused capability `wall-clock` (it called wasi:clocks/system-clock.now)"
        ),
        "{run:?}"
    );

    for driver in DRIVERS {
        let scene = Scene::new();
        // The root holds no clock, yet may hand a frozen one down.
        let m = tree3(
            &scene,
            driver,
            "",
            "grants.wall-clock = \"2024-01-01T00:00:00Z\"\ngrants.monotonic-clock = \"frozen\"",
            "",
        );
        let (run, audit) = audited(
            &scene,
            &m,
            &["child:wall-clock", "child:monotonic", "sibling:wall-clock"],
        );
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert_eq!(run.answer("child:wall-clock"), "ok: 1704067200", "{driver}");
        assert_eq!(run.answer("child:monotonic"), "ok: 0", "{driver}");
        assert!(
            run.assert_err("sibling:wall-clock")
                .contains("refused capability `wall-clock`"),
            "{driver}: {run:?}"
        );
        assert!(
            recorded(
                &audit,
                "driver/leaf",
                "wasi:clocks/system-clock.now",
                "allowed"
            ) && recorded(
                &audit,
                "driver/leaf",
                "wasi:clocks/monotonic-clock.now",
                "allowed"
            ) && recorded(
                &audit,
                "driver/sib",
                "wasi:clocks/system-clock.now",
                "refused"
            ),
            "{driver}: {audit:?}"
        );
    }
}

#[test]
fn waiting_needs_the_monotonic_clock() {
    let run = nanoproc(&["run", "--monotonic-clock", &cmd3(), "--", "sleep:10"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("sleep:10"), "ok: slept");
    // `wait-for` is refused before it starts, as 0.2's `subscribe-duration` is.
    let run = nanoproc(&["run", &cmd3(), "--", "sleep:10"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "refused capability `monotonic-clock` (it called wasi:clocks/monotonic-clock.wait-for)"
        ),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------------
// Random.

#[test]
fn random_can_be_real_seeded_or_refused() {
    // One policy, two bindings: the same seed gives the same bytes to a 0.2 and a
    // 0.3 nanoprocess (both read the one context the grant built).
    let hex = |component: &str, extra: &[&str]| {
        let path = guest(component).display().to_string();
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend([path.as_str(), "--", "random-hex", "insecure-seed"]);
        let run = nanoproc(&args);
        assert_eq!(run.code, 0, "{run:?}");
        (
            run.assert_ok("random-hex").to_string(),
            run.assert_ok("insecure-seed").to_string(),
        )
    };
    let seeded = hex("probe3_cmd", &["--random-seed", "42"]);
    assert_eq!(
        seeded,
        hex("probe3_cmd", &["--random-seed", "42"]),
        "a seed reproduces"
    );
    assert_eq!(
        seeded,
        hex("probe_cmd", &["--random-seed", "42"]),
        "in both generations"
    );
    assert_ne!(seeded.0, hex("probe3_cmd", &["--random-seed", "43"]).0);
    let real = hex("probe3_cmd", &["--random", "--insecure-random"]);
    assert_ne!(real, hex("probe3_cmd", &["--random", "--insecure-random"]));
    // `insecure-seed` is never refused, but without the grant it is a fixed value,
    // the same as 0.2's.
    let none = |component: &str| {
        let path = guest(component).display().to_string();
        let run = nanoproc(&["run", &path, "--", "insecure-seed"]);
        assert_eq!(run.code, 0, "{run:?}");
        run.assert_ok("insecure-seed").to_string()
    };
    assert_eq!(none("probe3_cmd"), none("probe_cmd"));
    assert_ne!(none("probe3_cmd"), real.1);

    for driver in DRIVERS {
        let scene = Scene::new();
        // The root holds no random, yet may give a seeded source.
        let m = tree3(&scene, driver, "", "grants.random = { seed = 7 }", "");
        let (first, audit) = audited(&scene, &m, &["child:random-hex", "sibling:random-hex"]);
        let second = run_manifest(&m, &["child:random-hex"]);
        assert_eq!(first.code, 0, "{driver}: {first:?}");
        assert_eq!(
            first.assert_ok("child:random-hex"),
            second.assert_ok("child:random-hex"),
            "{driver}: a seed reproduces"
        );
        assert!(
            first
                .assert_err("sibling:random-hex")
                .contains("refused capability `random`"),
            "{driver}: {first:?}"
        );
        assert!(
            recorded(
                &audit,
                "driver/leaf",
                "wasi:random/random.get-random-bytes",
                "allowed"
            ) && recorded(
                &audit,
                "driver/sib",
                "wasi:random/random.get-random-bytes",
                "refused"
            ),
            "{driver}: {audit:?}"
        );
    }
}

#[test]
fn insecure_random_is_its_own_grant() {
    let run = nanoproc(&["run", "--insecure-random", &cmd3(), "--", "insecure-random"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("insecure-random"), "ok: 16 bytes");
    let run = nanoproc(&["run", "--random", &cmd3(), "--", "insecure-random"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains(
            "refused capability `insecure-random` (it called wasi:random/insecure.get-insecure-random-bytes)"
        ),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------------
// Exit.

#[test]
fn exit_is_a_grant_for_03_dependencies_and_its_status_passes_through() {
    // The root always holds it; its status is its own.
    let run = nanoproc(&["run", &cmd3(), "--", "exit-code:42", "count"]);
    assert_eq!(run.code, 42, "{run:?}");
    assert!(!run.stdout.contains("count =>"), "{run:?}");

    for driver in DRIVERS {
        let scene = Scene::new();
        // Without the grant a dependency's exit is refused, named, and the parent
        // goes on.
        let m = tree3(&scene, driver, "", "", "");
        let (run, audit) = audited(&scene, &m, &["child:exit-code:3", "sibling:count"]);
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert!(
            run.assert_err("child:exit-code:3")
                .contains("refused capability `exit`"),
            "{driver}: {run:?}"
        );
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{driver}");
        assert!(
            recorded(
                &audit,
                "driver/leaf",
                "wasi:cli/exit.exit-with-code",
                "refused"
            ),
            "{driver}: {audit:?}"
        );
        // With it, the dependency ends the whole application, with its status.
        let m = tree3(&scene, driver, "", "grants.exit = true", "");
        let run = run_manifest(&m, &["child:exit-code:3", "sibling:count"]);
        assert_eq!(run.code, 3, "{driver}: {run:?}");
        assert!(
            !run.stdout.contains("sibling:count"),
            "{driver}: nothing ran after the exit: {run:?}"
        );
        let run = run_manifest(&m, &["child:exit:1", "sibling:count"]);
        assert_eq!(run.code, 1, "{driver}: {run:?}");
    }
}

// ---------------------------------------------------------------------------------
// Limits while a 0.3 guest awaits a host future.

/// Time for nanoproc to start and compile before a limit counts (as in stops.rs).
const SLACK: Duration = Duration::from_secs(20);

#[test]
fn a_03_guest_awaiting_a_sleep_is_stopped_by_its_time_limit() {
    // Its own per-call limit: the guest runs no wasm while it awaits `wait-for`, so
    // no epoch check could stop it; the wait itself is bounded.
    let scene = Scene::new();
    let m = scene.manifest(&format!(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"{}\"\n\
         grants.stdout = true\ngrants.monotonic-clock = true\ngrants.timeout = \"1s\"\n",
        guest("probe3_cmd").display()
    ));
    let m = m.display().to_string();
    let (run, took) = nanoproc_within(
        SLACK * 3,
        &[
            "run",
            "--timeout",
            "600s",
            &m,
            "--",
            "sleep:10",
            "sleep:600000",
        ],
    );
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 137, "{run:?}");
    assert_eq!(run.answer("sleep:10"), "ok: slept");
    assert!(
        run.stderr
            .contains("nanoprocess `app` exceeded its time per call limit of 1s"),
        "{run:?}"
    );
    // The run's `--timeout`, with its own status.
    let (run, took) = nanoproc_within(
        SLACK * 3,
        &[
            "run",
            "--monotonic-clock",
            "--timeout",
            "1s",
            &cmd3(),
            "--",
            "sleep:600000",
        ],
    );
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 124, "{run:?}");
    assert!(
        run.stderr.contains("the run's time limit passed"),
        "{run:?}"
    );
}

#[test]
fn a_computing_03_nanoprocess_is_held_to_its_time_and_fuel() {
    // The root.
    let scene = Scene::new();
    let m = scene.manifest(&format!(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"{}\"\n\
         grants.stdout = true\ngrants.fuel = 100000000\n",
        guest("probe3_cmd").display()
    ));
    let m = m.display().to_string();
    let (run, took) = nanoproc_within(SLACK * 3, &["run", &m, "--", "count", "spin"]);
    assert!(took < SLACK, "took {took:?}: {run:?}");
    assert_eq!(run.code, 137, "{run:?}");
    assert_eq!(run.answer("count"), "ok: 1");
    assert!(
        run.stderr
            .contains("nanoprocess `app` exceeded its fuel per call limit of 100000000"),
        "{run:?}"
    );
    // Dependencies, each stopped by its own limit; the parent goes on.
    for driver in DRIVERS {
        let scene = Scene::new();
        let m = tree3(
            &scene,
            driver,
            "",
            "grants.timeout = \"1s\"",
            "grants.fuel = 100000000",
        );
        let m = m.display().to_string();
        let (run, took) = nanoproc_within(
            SLACK * 3,
            &[
                "run",
                "--timeout",
                "600s",
                &m,
                "--",
                "child:spin",
                "sibling:spin",
            ],
        );
        assert!(took < SLACK, "{driver}: took {took:?}: {run:?}");
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        assert!(
            run.assert_err("child:spin")
                .contains("nanoprocess `driver/leaf` exceeded its time per call limit of 1s"),
            "{driver}: {run:?}"
        );
        assert!(
            run.assert_err("sibling:spin")
                .contains("nanoprocess `driver/sib` exceeded its fuel per call limit of 100000000"),
            "{driver}: {run:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Network: TCP and name lookups.

#[test]
fn connections_are_allowed_only_where_a_pattern_says() {
    let port = server();
    let other = closed_port();
    let allowed = format!("connect:127.0.0.1:{port}");
    let refused = format!("connect:127.0.0.1:{other}");
    let pattern = format!("127.0.0.1:{port}");
    let run = nanoproc(&[
        "run",
        "--connect",
        &pattern,
        &cmd3(),
        "--",
        &allowed,
        &refused,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&allowed), "ok: connected");
    assert!(
        run.assert_err(&refused).contains("Permission denied"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "probe3_cmd: network 127.0.0.1:{other} (wasi:sockets/tcp.connect): no network grant allows it"
        )),
        "{run:?}"
    );
    // Without a grant, even the allowed one is refused.
    let run = nanoproc(&["run", &cmd3(), "--", &allowed]);
    assert!(
        run.assert_err(&allowed).contains("Permission denied"),
        "{run:?}"
    );
}

#[test]
fn a_name_grant_covers_what_the_name_resolved_to_and_nothing_else() {
    let port = server();
    let by_name = format!("connect:localhost:{port}");
    let by_ip = format!("connect:127.0.0.1:{port}");
    let lookup = format!("resolve:localhost:{port}");
    let pattern = format!("localhost:{port}");
    // The raw address first: not yet resolved from the granted name, so refused.
    let run = nanoproc(&[
        "run",
        "--connect",
        &pattern,
        &cmd3(),
        "--",
        &by_ip,
        &lookup,
        &by_name,
        "resolve:nanoproc-test.invalid:80",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err(&by_ip);
    assert!(run.assert_ok(&lookup).contains("127.0.0.1"), "{run:?}");
    assert_eq!(run.assert_ok(&by_name), "ok: connected");
    // A name no pattern reaches is not even looked up.
    assert!(
        run.assert_err("resolve:nanoproc-test.invalid:80")
            .contains("Permission denied"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("probe3_cmd: network nanoproc-test.invalid (wasi:sockets/ip-name-lookup.resolve-addresses): no network grant allows it"),
        "{run:?}"
    );
}

#[test]
fn listening_needs_its_own_grant() {
    let run = nanoproc(&[
        "run",
        "--listen",
        "tcp:127.0.0.1:*",
        &cmd3(),
        "--",
        "listen:127.0.0.1:0",
        "listen:0.0.0.0:0",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.assert_ok("listen:127.0.0.1:0")
            .starts_with("ok: listening on 127.0.0.1:"),
        "{run:?}"
    );
    run.assert_err("listen:0.0.0.0:0");
    let run = nanoproc(&[
        "run",
        "--connect",
        "127.0.0.1:*",
        &cmd3(),
        "--",
        "listen:127.0.0.1:0",
    ]);
    run.assert_err("listen:127.0.0.1:0");
    assert!(
        run.stderr
            .contains("(wasi:sockets/tcp.bind): no network grant allows it"),
        "{run:?}"
    );
}

#[test]
fn a_03_child_gets_a_narrower_pattern_and_a_sibling_gets_none() {
    let port = server();
    for driver in DRIVERS {
        let scene = Scene::new();
        let m = tree3(
            &scene,
            driver,
            "grants.network = [\"127.0.0.1:*\", \"localhost:*\"]",
            &format!("grants.network = [\"tcp:127.0.0.1:{port}\", \"localhost:{port}\"]"),
            "",
        );
        // What the leaf may not reach is refused at once, before any packet (what
        // it may reach would have to be awaited, which a 0.3 leaf's ordinary
        // export may not do: see the module documentation).
        let wrong_port = "child:connect:127.0.0.1:1".to_string();
        let other_name = "child:resolve:nanoproc-test.invalid:80".to_string();
        let sib = format!("sibling:connect:127.0.0.1:{port}");
        let sib_lookup = format!("sibling:resolve:localhost:{port}");
        let (run, audit) = audited(&scene, &m, &[&wrong_port, &other_name, &sib, &sib_lookup]);
        assert_eq!(run.code, 0, "{driver}: {run:?}");
        for refused in [&wrong_port, &other_name, &sib, &sib_lookup] {
            assert!(
                run.assert_err(refused).contains("Permission denied"),
                "{driver}: {refused}: {run:?}"
            );
        }
        let network = |who: &str, operation: &str, target: &str, reason: &str| {
            audit.iter().any(|e| {
                e["nanoprocess"] == who
                    && e["family"] == "network"
                    && e["operation"] == operation
                    && e["target"] == target
                    && e["decision"] == "refused"
                    && e["reason"] == reason
            })
        };
        assert!(
            network(
                "driver/leaf",
                "wasi:sockets/tcp.connect",
                "127.0.0.1:1",
                "no network grant allows it"
            ),
            "{driver}: {audit:?}"
        );
        assert!(
            network(
                "driver/leaf",
                "wasi:sockets/ip-name-lookup.resolve-addresses",
                "nanoproc-test.invalid",
                "no network grant allows it"
            ),
            "{driver}: {audit:?}"
        );
        assert!(
            network(
                "driver/sib",
                "wasi:sockets/tcp.connect",
                &format!("127.0.0.1:{port}"),
                "network is not granted"
            ),
            "{driver}: {audit:?}"
        );
        assert!(
            network(
                "driver/sib",
                "wasi:sockets/ip-name-lookup.resolve-addresses",
                "localhost",
                "network is not granted"
            ),
            "{driver}: {audit:?}"
        );
    }
    // A 0.3 root connects where its grant says, and is recorded.
    let scene = Scene::new();
    let m = tree3(
        &scene,
        "probe3_driver",
        &format!("grants.network = [\"tcp:127.0.0.1:{port}\"]"),
        "",
        "",
    );
    let allowed = format!("connect:127.0.0.1:{port}");
    let (run, audit) = audited(&scene, &m, &[&allowed]);
    assert_eq!(run.assert_ok(&allowed), "ok: connected", "{run:?}");
    assert!(
        audit.iter().any(|e| e["nanoprocess"] == "driver"
            && e["operation"] == "wasi:sockets/tcp.connect"
            && e["target"] == format!("127.0.0.1:{port}").as_str()
            && e["decision"] == "allowed"),
        "{audit:?}"
    );
}

// ---------------------------------------------------------------------------------
// Network: which datagrams a 0.3 UDP socket may receive (as udp_scope.rs).

#[test]
fn without_grants_a_03_client_socket_binds_but_hears_no_one() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let stranger = peer();
    let cmd = cmd3();
    let mut run = Live::start(&[
        "run",
        "--monotonic-clock",
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        "udp-bind:127.0.0.1:0",
        "udp-bind:0.0.0.0:0",
        "udp-recv:1000",
    ]);
    let specific = run.answer("udp-bind:127.0.0.1:0");
    assert!(specific.contains("Permission denied"), "{specific}");
    let client = bound(&run.answer("udp-bind:0.0.0.0:0"));
    assert!(
        client.ip().is_unspecified() && client.port() != 0,
        "{client}"
    );
    stranger.send_to(b"stranger", on_loopback(client)).unwrap();
    assert_eq!(
        run.answer("udp-recv:1000"),
        "err: nothing received in 1000 ms"
    );
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");

    // The datagram did arrive, and was refused, not lost.
    let stranger = stranger.local_addr().unwrap().to_string();
    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "probe3_cmd"
            && e["family"] == "network"
            && e["target"] == stranger.as_str()
            && e["reason"] == "network is not granted"),
        "{refused:?}"
    );
    assert!(
        audit_lines(&log)
            .iter()
            .any(|e| e["operation"] == "wasi:sockets/udp.bind"
                && e["target"] == "127.0.0.1:0"
                && e["decision"] == "refused"),
        "{:?}",
        audit_lines(&log)
    );
}

#[test]
fn a_listen_grant_covers_the_03_socket_on_the_address_it_names_and_no_other() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let (granted, other) = (free_port(), free_port());
    let stranger = peer();
    let cmd = cmd3();
    let grant = format!("udp:127.0.0.1:{granted}");
    let elsewhere = format!("udp-bind:127.0.0.1:{other}");
    let wildcard = format!("udp-bind:0.0.0.0:{granted}");
    let listener = format!("udp-bind:127.0.0.1:{granted}");
    let mut run = Live::start(&[
        "run",
        "--listen",
        &grant,
        "--monotonic-clock",
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        &elsewhere,
        &wildcard,
        &listener,
        "udp-recv:5000",
        "udp-bind:0.0.0.0:0",
        "udp-recv:1000",
    ]);
    assert!(
        run.answer(&elsewhere).contains("Permission denied"),
        "{:?}",
        run.stdout
    );
    assert!(
        run.answer(&wildcard).contains("Permission denied"),
        "{:?}",
        run.stdout
    );

    // On the address its grant names, the socket hears anyone.
    let listening = bound(&run.answer(&listener));
    assert_eq!(listening, SocketAddr::from(([127, 0, 0, 1], granted)));
    stranger.send_to(b"to the listener", listening).unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    assert_eq!(
        run.answer("udp-recv:5000"),
        format!("ok: from {stranger_addr}: to the listener")
    );

    // A client socket of the same nanoprocess is not covered by that grant (the
    // listener was closed when the probe bound the client: its note went with it).
    let client = bound(&run.answer("udp-bind:0.0.0.0:0"));
    stranger
        .send_to(b"to the client", on_loopback(client))
        .unwrap();
    assert_eq!(
        run.answer("udp-recv:1000"),
        "err: nothing received in 1000 ms"
    );
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "probe3_cmd"
            && e["target"] == stranger_addr.to_string().as_str()
            && e["reason"].as_str().is_some_and(
                |r| r.contains("no socket of it is on an address a listen grant covers")
            )),
        "{refused:?}"
    );
}

#[test]
fn a_03_client_socket_hears_replies_only_from_peers_its_network_grant_covers() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let server = peer();
    let stranger = peer();
    let server_addr = server.local_addr().unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    let cmd = cmd3();
    // It also holds a `listen` pattern, for a port it never binds: receiving on a
    // client socket must not depend on whether some listen pattern exists.
    let network = format!("udp:{server_addr}");
    let listen = format!("udp:127.0.0.1:{}", free_port());
    let hello = format!("udp-send:{server_addr}=hello");
    let mut run = Live::start(&[
        "run",
        "--connect",
        &network,
        "--listen",
        &listen,
        "--monotonic-clock",
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        "udp-bind:0.0.0.0:0",
        &hello,
        "udp-recv:5000",
    ]);
    bound(&run.answer("udp-bind:0.0.0.0:0"));
    assert_eq!(run.answer(&hello), "ok: sent 5 bytes");
    let mut buf = [0u8; 64];
    let (len, guest) = server.recv_from(&mut buf).expect("the guest's hello");
    assert_eq!(&buf[..len], b"hello");
    // The stranger's datagram is queued first: delivered, it would be the one the
    // guest's receive returns.
    stranger.send_to(b"stranger", guest).unwrap();
    server.send_to(b"reply", guest).unwrap();
    assert_eq!(
        run.answer("udp-recv:5000"),
        format!("ok: from {server_addr}: reply")
    );
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "probe3_cmd"
            && e["family"] == "network"
            && e["target"] == stranger_addr.to_string().as_str()),
        "{refused:?}"
    );
}
