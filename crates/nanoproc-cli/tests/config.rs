//! The configuration family (`wasi:config/store`), added through the documented
//! steps for a new family: the root is granted values, a child names the keys it
//! gets (or is written values of its own), `check` shows keys and never values,
//! and every read is recorded by key.

use crate::common;
use common::*;

const SECRET: &str = "s3cret-token-value";

fn tree(scene: &Scene, leaf: &str) -> std::path::PathBuf {
    scene.driver_tree(
        &format!(
            "grants.stdout = true\ngrants.config = {{ LOG = \"debug\", TOKEN = \"{SECRET}\" }}"
        ),
        &format!("on-failure = \"error\"\n{leaf}"),
        "on-failure = \"error\"",
    )
}

#[test]
fn a_child_reads_the_keys_it_was_granted_and_nothing_else() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.config = [\"LOG\"]");
    let log = scene.path("audit.jsonl");
    let run = nanoproc(&[
        "run",
        "--audit",
        &log.display().to_string(),
        &m.display().to_string(),
        "--",
        "config:TOKEN",
        "child:config:LOG",
        "child:config:TOKEN",
        "child:config-all",
        "sibling:config:LOG",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("config:TOKEN"), format!("ok: {SECRET}"));
    assert_eq!(run.assert_ok("child:config:LOG"), "ok: debug");
    // A key it was not granted is not there, whatever the parent holds.
    assert_eq!(run.assert_err("child:config:TOKEN"), "err: not present");
    assert_eq!(run.assert_ok("child:config-all"), "ok: LOG=debug");
    // A dependency granted nothing has no configuration at all.
    run.assert_err("sibling:config:LOG");

    // Every read is recorded by key; no value ever reaches the record.
    let lines = audit_lines(&log);
    let reads: Vec<(String, String, String)> = lines
        .iter()
        .filter(|l| l["family"] == "config")
        .map(|l| {
            (
                l["nanoprocess"].as_str().unwrap().to_string(),
                l["target"].as_str().unwrap_or_default().to_string(),
                l["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        reads.contains(&("driver/leaf".into(), "LOG".into(), "allowed".into())),
        "{reads:?}"
    );
    assert!(
        reads.contains(&("driver/leaf".into(), "TOKEN".into(), "refused".into())),
        "{reads:?}"
    );
    assert!(
        reads.contains(&("driver/sib".into(), "LOG".into(), "refused".into())),
        "{reads:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(SECRET), "a value reached the audit log");
    assert!(!run.stderr.contains(SECRET), "{run:?}");
}

#[test]
fn check_shows_keys_and_never_values() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.config = [\"LOG\"]");
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("config  LOG, TOKEN\n"), "{run:?}");
    assert!(run.stdout.contains("config  LOG\n"), "{run:?}");
    assert!(!run.stdout.contains(SECRET), "{run:?}");
    assert!(!run.stdout.contains("debug"), "{run:?}");
}

#[test]
fn a_key_the_parent_lacks_is_refused_before_anything_runs() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.config = [\"LOG\", \"DATABASE_URL\"]");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("driver/leaf: grant config[1] (\"DATABASE_URL\")"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("the parent does not hold the key DATABASE_URL"),
        "{run:?}"
    );
    // The refusal points at the key, and lists what the parent holds (keys only).
    assert!(run.stderr.contains("nanoproc.toml:13:"), "{run:?}");
    assert!(run.stderr.contains("LOG, TOKEN"), "{run:?}");
    assert!(!run.stderr.contains(SECRET), "{run:?}");
}

#[test]
fn a_parent_may_write_its_child_values_of_its_own() {
    let scene = Scene::new();
    // A value the parent writes is data: it needs no key of the parent's.
    let m = tree(
        &scene,
        "grants.config = { LOG = \"info\", MODE = \"fast\" }",
    );
    let run = run_manifest(&m, &["child:config:LOG", "child:config:MODE", "config:LOG"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:config:LOG"), "ok: info");
    assert_eq!(run.assert_ok("child:config:MODE"), "ok: fast");
    assert_eq!(run.assert_ok("config:LOG"), "ok: debug");
}

#[test]
fn the_root_is_granted_values_not_keys() {
    let scene = Scene::new();
    let m = scene.driver_tree("grants.config = [\"HOME\"]", "", "");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("the root has no parent to take a value from"),
        "{run:?}"
    );
    // A value must be text.
    let m = scene.driver_tree("grants.config = { PORT = 8080 }", "", "");
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("config: PORT: expected a string value, found a number"),
        "{run:?}"
    );
}

#[test]
fn a_single_component_is_granted_values_by_flag() {
    let cmd = cmd();
    let run = nanoproc(&[
        "run",
        "--config",
        "GREETING=hello",
        &cmd,
        "--",
        "config:GREETING",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("config:GREETING"), "ok: hello");
    let run = nanoproc(&["run", &cmd, "--", "config:GREETING"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_err("config:GREETING"), "err: not present");
    let run = nanoproc(&["run", "--config", "NOVALUE", &cmd, "--", "config:X"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--config NOVALUE: expected KEY=VALUE"),
        "{run:?}"
    );
}
