//! Calls between nanoprocesses through the typed fast paths (`string`, `list<u8>`
//! and numbers, see `nanoproc-runtime/src/fastpath.rs`): values cross intact, and
//! failures reach the parent exactly as on the generic path.
//!
//! Every function these tests call (`echo-string`, `echo-bytes`, `add`, `crash`) has
//! a fast path; the runtime's unit tests check that they are linked to it.

use crate::common;
use common::*;

/// types_parent -> types_child; `child` is the rest of the child's table.
fn types_tree(scene: &Scene, child: &str) -> std::path::PathBuf {
    scene.manifest(&format!(
        r#"[app]
root = "types"

[nanoprocess.types]
component = "{{types_parent}}"
grants.stdout = true
deps = {{ "test:types/echo" = "child" }}

[nanoprocess.child]
component = "{{types_child}}"
{child}
"#
    ))
}

/// The checksum types_parent prints for what came back (64-bit FNV-1a).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn strings_cross_intact_multibyte_and_empty() {
    let scene = Scene::new();
    let long = "ü✓🦀".repeat(10_000); // 90,000 bytes of two-, three- and four-byte characters
    let sent = [
        "héllo ✓",
        "",
        "🦀 nanoproc",
        "日本語のテキスト",
        "tab\tand \"quotes\"",
        &long,
    ];
    let mut args = vec!["echo-string"];
    args.extend(sent);
    let run = run_manifest(&types_tree(&scene, ""), &args);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let expected: Vec<String> = sent
        .iter()
        .map(|s| format!("echo-string {s:?} -> {s:?}"))
        .collect();
    assert_eq!(lines, expected, "{run:?}");
}

#[test]
fn bytes_cross_intact_from_empty_to_a_mebibyte() {
    let scene = Scene::new();
    let lengths = [0u32, 1, 251, 4096, 1 << 20];
    let args: Vec<String> = std::iter::once("echo-bytes".to_string())
        .chain(lengths.iter().map(u32::to_string))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_manifest(&types_tree(&scene, ""), &args);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let expected: Vec<String> = lengths
        .iter()
        .map(|&n| {
            let sent: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            format!(
                "echo-bytes {n}: {n} bytes, fnv1a {:016x}, same: true",
                fnv1a(&sent)
            )
        })
        .collect();
    assert_eq!(lines, expected, "{run:?}");
}

#[test]
fn numbers_cross_intact_and_add_wraps_as_the_child_computes_it() {
    let scene = Scene::new();
    let manifest = types_tree(&scene, "");
    for (a, b) in [(40u32, 2u32), (0, 0), (u32::MAX, 1), (u32::MAX, u32::MAX)] {
        let run = run_manifest(&manifest, &["add", &a.to_string(), &b.to_string()]);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            run.stdout.trim_end(),
            format!("add {a} {b} = {}", a.wrapping_add(b)),
            "{run:?}"
        );
    }
}

#[test]
fn a_child_panic_reaches_the_parent_as_an_err_naming_the_child_under_on_failure_error() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene, r#"on-failure = "error""#), &["crash"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("crash returned error: "))
        .unwrap_or_else(|| panic!("no err reached the parent: {run:?}"));
    assert!(
        line.contains("nanoprocess `types/child` failed in test:types/echo#crash"),
        "{line}"
    );
    assert!(line.contains("boom from child"), "{line}");
    // The failed child is not restartable: the next call (`add`, no error case)
    // traps the parent, naming the child.
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoprocess `types/child` failed in test:types/echo#add: it failed earlier"),
        "{run:?}"
    );
}

#[test]
fn a_restarted_child_answers_the_next_call_through_the_fast_path() {
    let scene = Scene::new();
    let manifest = types_tree(
        &scene,
        "on-failure = \"error\"\nrestart = { max = 1, within = \"60s\" }",
    );
    let run = run_manifest(&manifest, &["crash"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains(
            "crash returned error: nanoprocess `types/child` failed in test:types/echo#crash"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("after crash add: 5"), "{run:?}");
}

#[test]
fn a_child_panic_traps_the_parent_with_the_childs_path_by_default() {
    let scene = Scene::new();
    let run = run_manifest(&types_tree(&scene, ""), &["crash"]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr.contains("nanoprocess `types` trapped"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("nanoprocess `types/child` failed in test:types/echo#crash"),
        "{run:?}"
    );
    assert!(run.stderr.contains("boom from child"), "{run:?}");
    assert!(!run.stdout.contains("crash returned"), "{run:?}");
}

#[test]
fn a_string_that_is_not_utf8_traps_the_parent_and_does_not_blame_the_child() {
    // The bytes are read from the parent's memory before the child is called: the
    // parent sent them, so the parent traps, whatever the child's policy says.
    let scene = Scene::new();
    let run = run_manifest(
        &types_tree(&scene, r#"on-failure = "error""#),
        &["invalid-utf8"],
    );
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        run.stderr
            .contains("nanoprocess `types` trapped: invalid utf-8"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("types/child"), "{run:?}");
    assert!(!run.stdout.contains("unreachable"), "{run:?}");
}
