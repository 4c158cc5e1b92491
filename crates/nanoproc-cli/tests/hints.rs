//! Every refusal of a run says how to grant it: the exact `run` flag for a single
//! component, the exact manifest lines for a tree (from the root down, for every
//! ancestor that lacks the capability too). The hints are checked by doing what
//! they say: the run with them applied is refused nothing.

use crate::common;
use common::*;

/// The hint printed under a refusal (`    to allow it: ...`).
fn hints(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("to allow it: "))
        .collect()
}

/// The manifest lines a hint asks for, with the nanoprocess each goes to.
fn lines_to_add(hint: &str) -> Vec<(String, String)> {
    // "add `LINE` to [nanoprocess.NAME], then `LINE` to [nanoprocess.NAME] (or ...)"
    let mut out = Vec::new();
    let mut rest = hint;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        let line = &after[..end];
        let tail = &after[end + 1..];
        let Some(name) = tail
            .strip_prefix(" to [nanoprocess.")
            .and_then(|t| t.split_once(']'))
            .map(|(n, _)| n)
        else {
            break;
        };
        out.push((name.to_string(), line.to_string()));
        rest = tail;
    }
    out
}

fn tree(scene: &Scene, root_extra: &str, leaf: &str) -> std::path::PathBuf {
    scene.stdout_tree(root_extra, leaf)
}

#[test]
fn a_refusal_deep_in_the_tree_names_every_line_from_the_root_down() {
    let scene = Scene::new();
    let m = tree(&scene, "", "");
    let run = run_manifest(&m, &["child:random-hex"]);
    assert!(run.stderr.contains("refused"), "{run:?}");
    let all = hints(&run);
    let hint = all
        .iter()
        .find(|h| h.contains("grants.random"))
        .unwrap_or_else(|| panic!("no hint for random: {run:?}"));
    assert_eq!(
        lines_to_add(hint),
        vec![
            ("driver".to_string(), "grants.random = true".to_string()),
            ("leaf".to_string(), "grants.random = true".to_string()),
        ],
        "{hint}"
    );
    assert!(hint.contains("or `{ seed = 1 }`"), "{hint}");

    // Done as it says, the same run is refused nothing.
    let m = tree(&scene, "grants.random = true", "grants.random = true");
    let run = run_manifest(&m, &["child:random-hex"]);
    assert!(run.answer("child:random-hex").starts_with("ok"), "{run:?}");
    assert!(!run.stderr.contains("refused"), "{run:?}");
}

#[test]
fn an_ancestor_that_holds_it_needs_nothing() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.random = true", "");
    let run = run_manifest(&m, &["child:random-hex"]);
    let all = hints(&run);
    let hint = all
        .iter()
        .find(|h| h.contains("grants.random"))
        .unwrap_or_else(|| panic!("no hint: {run:?}"));
    assert_eq!(
        lines_to_add(hint),
        vec![("leaf".to_string(), "grants.random = true".to_string())]
    );
}

#[test]
fn a_single_component_is_told_the_flag() {
    let cmd = guest("probe_cmd").display().to_string();
    let run = nanoproc(&["run", &cmd, "--", "random-hex"]);
    let all = hints(&run);
    assert!(
        all.iter().any(|h| h.starts_with("grant it with --random")),
        "{run:?}"
    );
    let run = nanoproc(&["run", "--random", &cmd, "--", "random-hex"]);
    assert!(!run.stderr.contains("refused"), "{run:?}");
}

#[test]
fn a_missing_right_is_the_same_directory_with_the_right_added() {
    let scene = Scene::new();
    let dir = scene.mkdir("data");
    std::fs::write(dir.join("f"), "x").unwrap();
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("{}::/data", dir.display());
    let run = nanoproc(&["run", "--dir-ro", &grant, &cmd, "--", "write:/data/f=y"]);
    let all = hints(&run);
    let hint = all
        .iter()
        .find(|h| h.contains("--dir"))
        .unwrap_or_else(|| panic!("no fs hint: {run:?}"));
    assert_eq!(
        *hint,
        format!("grant it with --dir {}::/data", dir.display())
    );
}

/// The story: a JavaScript component tried with no grants took four runs
/// to reveal, one trap at a time, the monotonic clock, random and the wall clock.
/// One run now says all of it: the trap's grant, and every other grant its
/// imports may need.
#[test]
fn one_run_of_a_javascript_component_tells_every_grant_it_may_need() {
    let js = xtask::foreign_guest("js-hello").display().to_string();
    let run = nanoproc(&["run", &js]);
    assert_eq!(run.code, 134, "{run:?}");
    assert!(
        hints(&run)
            .iter()
            .any(|h| h.starts_with("grant it with --monotonic-clock")),
        "{run:?}"
    );
    let also = run
        .stderr
        .lines()
        .find(|l| l.contains("can also ask for, and does not hold"))
        .unwrap_or_else(|| panic!("{run:?}"));
    for flag in ["`--wall-clock`", "`--random`"] {
        assert!(also.contains(flag), "{flag}: {also}");
    }
    // Granted as told, it runs.
    let run = nanoproc(&["run", "--clocks", "--random", &js]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("hello from JavaScript"), "{run:?}");
}

/// A right missing at every level: the hint names each nanoprocess's own grant of
/// the directory with the right added, the child's as it names it (its own guest
/// path, from its parent's), from the root down; done as it says, the write works.
#[test]
fn a_right_missing_up_the_tree_is_added_at_each_level_in_each_ones_terms() {
    let scene = Scene::new();
    scene.file("data/sub/f", "old");
    let root_fs = "grants.fs = [{ host = \"data\", guest = \"/data\", rights = \"read-only\" }]";
    let leaf_fs =
        "grants.fs = [{ from = \"/data/sub\", guest = \"/mine\", rights = \"read-only\" }]";
    let m = tree(&scene, root_fs, leaf_fs);
    let run = run_manifest(&m, &["child:write:/mine/f=new"]);
    let all = hints(&run);
    let hint = all
        .iter()
        .find(|h| h.contains("grants.fs"))
        .unwrap_or_else(|| panic!("no fs hint: {run:?}"));
    let lines = lines_to_add(hint);
    assert_eq!(
        lines.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["driver", "leaf"],
        "{hint}"
    );
    assert!(lines[0].1.contains("guest = \"/data\""), "{hint}");
    assert!(
        lines[1]
            .1
            .contains("from = \"/data/sub\", guest = \"/mine\""),
        "{hint}"
    );
    assert!(lines.iter().all(|(_, l)| l.contains("write")), "{hint}");
    // Done as it says.
    let text = std::fs::read_to_string(&m).unwrap();
    let text = text
        .replacen(root_fs, &lines[0].1, 1)
        .replacen(leaf_fs, &lines[1].1, 1);
    std::fs::write(&m, text).unwrap();
    let run = run_manifest(&m, &["child:write:/mine/f=new"]);
    assert!(
        run.answer("child:write:/mine/f=new").starts_with("ok"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("data/sub/f")).unwrap(),
        "new"
    );
}
