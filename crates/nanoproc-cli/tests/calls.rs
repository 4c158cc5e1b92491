//! Calls between nanoprocesses: every kind of WIT value crosses intact, and a
//! failing child is reported to its parent by name, never silently.

use crate::common;
use common::*;

fn types_tree(scene: &Scene) -> std::path::PathBuf {
    scene.manifest(
        r#"[app]
root = "types"

[nanoprocess.types]
component = "{types_parent}"
grants.stdout = true
deps = { "test:types/echo" = "child" }

[nanoprocess.child]
component = "{types_child}"
on-failure = "error"
"#,
    )
}

#[test]
fn every_kind_of_value_round_trips_between_nanoprocesses() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene), &["roundtrip"]);
    assert_eq!(run.code, 0, "{run:?}");
    for function in [
        "noop",
        "add",
        "echo-string",
        "echo-bytes",
        "echo-outer",
        "maybe",
        "fallible",
    ] {
        assert!(
            run.stdout.contains(&format!("roundtrip {function}: ok")),
            "{function} did not round-trip:\n{run:?}"
        );
    }
    assert!(run.stdout.contains("roundtrip: all ok"), "{run:?}");
    assert!(!run.stdout.contains("MISMATCH"), "{run:?}");
}

#[test]
fn the_child_keeps_its_state_between_calls() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene), &["calls"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("calls: 4"), "{run:?}");
}

#[test]
fn a_trapping_child_is_reported_to_its_parent_as_an_error_naming_it() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene), &["crash"]);
    // `crash` returns result<u32, string>: the parent receives the failure as a value,
    // with the child's path and its own panic message, and carries on.
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("crash returned error: "))
        .unwrap_or_else(|| panic!("{run:?}"));
    assert!(
        line.contains("nanoprocess `types/child` failed in test:types/echo#crash"),
        "{line}"
    );
    assert!(
        line.contains("boom from child"),
        "the child's panic message is kept: {line}"
    );
    // The next call, to a function without an error case, cannot be answered by the
    // failed child: the parent traps, and the message says which child and why.
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoprocess `types/child` failed in test:types/echo#add: it failed earlier"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("after crash add"), "{run:?}");
}

#[test]
fn a_child_trap_without_an_error_case_traps_the_parent_with_the_cause() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene), &["crash-hard"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr.contains("nanoprocess `types` trapped"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("nanoprocess `types/child` failed in test:types/echo#crash-hard"),
        "{run:?}"
    );
    assert!(run.stderr.contains("hard boom"), "{run:?}");
    assert!(!run.stdout.contains("unreachable"), "{run:?}");
}

#[test]
fn one_component_backs_several_nanoprocesses_each_with_its_own_instance() {
    // Two instances of probe_leaf: a file written by one is not the other's to read,
    // and each counts its own state.
    let scene = Scene::new();
    scene.mkdir("data/a");
    scene.mkdir("data/b");
    let m = scene.manifest(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true
deps = { "test:probe/probe" = "a", "test:probe/sibling" = "b" }

[nanoprocess.a]
component = "{probe_leaf}"
grants.fs = [{ from = "/data/a", guest = "/w", rights = "read-write" }]

[nanoprocess.b]
component = "{probe_leaf}"
grants.fs = [{ from = "/data/b", guest = "/w", rights = "read-write" }]
"#,
    );
    let run = run_manifest(
        &m,
        &[
            "child:write:/w/f=from a",
            "sibling:read:/w/f",
            "child:read:/w/f",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("sibling:read:/w/f");
    assert_eq!(run.assert_ok("child:read:/w/f"), "ok: from a");
    assert!(scene.path("data/a/f").exists() && !scene.path("data/b/f").exists());
}
