//! The families beyond files and network: output streams (terminal, prefixed,
//! discarded, a file), clocks (real, frozen, denied), random (real, seeded,
//! denied) and exit, each granted, narrowed for a child and refused.

use crate::common;
use common::*;

fn tree(scene: &Scene, root_extra: &str, leaf: &str) -> std::path::PathBuf {
    scene.stdout_tree(root_extra, leaf)
}

#[test]
fn a_childs_output_can_be_prefixed_discarded_or_refused() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        "",
        "grants.stdout = \"prefix\"\ngrants.stderr = \"discard\"",
    );
    let run = run_manifest(
        &m,
        &[
            "child:stdout:hello from the leaf",
            "child:stderr:into the void",
            "sibling:stdout:refused",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "[driver/leaf] hello from the leaf"),
        "{run:?}"
    );
    assert!(
        !run.stdout
            .lines()
            .chain(run.stderr.lines())
            .any(|l| l.ends_with("into the void") && !l.contains("=>")),
        "{run:?}"
    );
    run.assert_ok("child:stderr:into the void");
    run.assert_err("sibling:stdout:refused");
    // Discarding needs nothing from the parent: the root holds no stderr here.
    assert_eq!(check(&m).code, 0);
}

#[test]
fn only_the_root_may_write_to_a_file() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.stderr = { file = \"root.log\" }", "");
    let run = run_manifest(&m, &["stderr:to the file", "stdout:to the terminal"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        std::fs::read_to_string(scene.path("root.log")).unwrap(),
        "to the file\n"
    );
    assert!(!run.stderr.contains("to the file"), "{run:?}");

    let m = tree(&scene, "", "grants.stdout = { file = \"/tmp/leak.log\" }");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant stdout"), "{run:?}");
    assert!(
        run.stderr
            .contains("only the root may write to a host file"),
        "{run:?}"
    );
    // A child cannot take the terminal from a parent whose output goes to a file.
    let m = tree(
        &scene,
        "grants.stderr = { file = \"root.log\" }",
        "grants.stderr = true",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant stderr"), "{run:?}");
}

#[test]
fn clocks_can_be_real_frozen_or_denied() {
    let scene = Scene::new();
    // The root holds no clock, yet may hand a frozen one down: it reveals nothing.
    let m = tree(
        &scene,
        "",
        "grants.wall-clock = \"2024-01-01T00:00:00Z\"\ngrants.monotonic-clock = \"frozen\"",
    );
    let run = run_manifest(
        &m,
        &["child:wall-clock", "child:monotonic", "sibling:wall-clock"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("child:wall-clock"), "ok: 1704067200");
    assert_eq!(run.answer("child:monotonic"), "ok: 0");
    assert!(
        run.assert_err("sibling:wall-clock")
            .contains("refused capability `wall-clock`"),
        "{run:?}"
    );

    // The real clock cannot come from a parent whose clock is frozen.
    let m = tree(
        &scene,
        "grants.wall-clock = \"2024-01-01T00:00:00Z\"",
        "grants.wall-clock = true",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("driver/leaf: grant wall-clock"),
        "{run:?}"
    );
    assert!(run.stderr.contains("not the real one"), "{run:?}");
    // A malformed instant is refused where it is written.
    let m = tree(&scene, "", "grants.wall-clock = \"yesterday\"");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("driver/leaf: wall-clock: expected true, false or an instant"),
        "{run:?}"
    );
}

#[test]
fn exit_is_a_grant_for_dependencies() {
    let scene = Scene::new();
    // Without the grant a dependency's exit is refused, named, and the parent goes on.
    let m = tree(&scene, "", "");
    let run = run_manifest(&m, &["child:exit:0", "sibling:count"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.assert_err("child:exit:0")
            .contains("refused capability `exit`"),
        "{run:?}"
    );
    assert_eq!(run.answer("sibling:count"), "ok: 1");
    // With it, the dependency ends the whole application, with its status.
    let m = tree(&scene, "", "grants.exit = true");
    let run = run_manifest(&m, &["child:exit:3", "sibling:count"]);
    assert_eq!(
        run.code, 1,
        "Rust's std reports exit(3) as a failure: {run:?}"
    );
    assert!(
        !run.stdout.contains("sibling:count"),
        "nothing ran after the exit: {run:?}"
    );
}

#[test]
fn random_can_be_real_seeded_or_denied() {
    let scene = Scene::new();
    // The root holds no random, yet may give a seeded source: it is not secret.
    let m = tree(&scene, "", "grants.random = { seed = 7 }");
    let first = run_manifest(&m, &["child:random-hex", "sibling:random-hex"]);
    let second = run_manifest(&m, &["child:random-hex"]);
    assert_eq!(first.code, 0, "{first:?}");
    let bytes = first.assert_ok("child:random-hex");
    assert_eq!(bytes.len(), "ok: ".len() + 16, "{bytes}");
    assert_eq!(
        bytes,
        second.assert_ok("child:random-hex"),
        "a seed reproduces"
    );
    assert!(
        first
            .assert_err("sibling:random-hex")
            .contains("refused capability `random`")
    );
    // Real random from a root that holds it differs between runs.
    let m = tree(&scene, "grants.random = true", "grants.random = true");
    let a = run_manifest(&m, &["child:random-hex"]);
    let b = run_manifest(&m, &["child:random-hex"]);
    assert_ne!(
        a.assert_ok("child:random-hex"),
        b.assert_ok("child:random-hex")
    );
    // The real source cannot come from a parent that only has a seeded one.
    let m = tree(
        &scene,
        "grants.random = { seed = 1 }",
        "grants.random = true",
    );
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant random"), "{run:?}");
}

#[test]
fn stdin_is_read_only_when_granted() {
    use std::io::Write;
    let cmd = guest("probe_cmd").display().to_string();
    let feed = |args: &[&str]| {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nanoproc"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
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
    let (out, err) = feed(&["run", &cmd, "--", "stdin"]);
    assert!(out.starts_with("stdin => err:"), "{out}");
    assert!(
        err.contains("probe_cmd: stdin (wasi:io/streams.input-stream.read (stdin)): not granted"),
        "{err}"
    );
    // A dependency cannot be handed stdin its parent does not hold.
    let scene = Scene::new();
    let m = tree(&scene, "", "grants.stdin = true");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "driver/leaf: grant stdin (stdin = true) exceeds what its parent `driver` holds"
        ),
        "{run:?}"
    );
}

/// `wasi:random/insecure-seed` cannot be refused (language runtimes read it to
/// start), but it follows the `insecure-random` grant: wasmtime-wasi would draw it
/// from the host for every instance, real randomness for a nanoprocess denied all
/// random and the end of reproducibility under a seed.
#[test]
fn the_insecure_seed_follows_the_insecure_random_grant() {
    let cmd = cmd();
    let seed_of = |args: &[&str]| {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        all.extend([cmd.as_str(), "--", "insecure-seed", "hashmap"]);
        let run = nanoproc(&all);
        assert_eq!(run.code, 0, "{run:?}");
        run.assert_ok("insecure-seed").to_string()
    };
    // Not granted: a fixed value, the same in every instance.
    let none = seed_of(&[]);
    assert_eq!(none, seed_of(&[]), "an ungranted seed is fixed");
    // Seeded: reproducible, and different for another seed.
    let seeded = seed_of(&["--random-seed", "42"]);
    assert_eq!(
        seeded,
        seed_of(&["--random-seed", "42"]),
        "a seed reproduces"
    );
    assert_ne!(seeded, seed_of(&["--random-seed", "43"]));
    assert_ne!(seeded, none);
    // Granted for real: the host's, new in every run.
    let real = seed_of(&["--insecure-random"]);
    assert_ne!(real, seed_of(&["--insecure-random"]));
    assert_ne!(real, none);
}
