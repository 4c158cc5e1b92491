//! `nanoproc learn`: the proposal is the smallest that works. Checked as the issue
//! states it: with the proposal written, the same run is refused nothing; with any
//! one proposed grant removed, something is refused (at check, or as it runs).
//! Learning itself gives a dependency no more than its parent holds, and never
//! writes a grant the user did not have.

use crate::common;
use common::*;
use std::path::Path;

/// A tree whose root the user trusts with a directory, random, a clock and a
/// variable, and whose dependencies hold nothing.
fn scene_tree(scene: &Scene) -> std::path::PathBuf {
    scene.mkdir("data/sub");
    scene.file("data/a", "root's");
    scene.file("data/sub/f", "leaf's");
    scene.file("data/other/secret", "nobody's");
    scene.driver_tree(
        r#"grants.fs = [{ host = "./data", guest = "/data", rights = "read-write" }]
grants.random = true
grants.wall-clock = true
grants.env = ["HOME"]
grants.stdout = true
grants.stderr = true"#,
        r#"on-failure = "error""#,
        r#"on-failure = "error""#,
    )
}

const ARGS: [&str; 3] = ["read:/data/a", "child:read:/data/sub/f", "child:random-hex"];

fn learn(manifest: &Path, write: bool) -> Run {
    let m = manifest.display().to_string();
    let mut args = vec!["learn"];
    if write {
        args.push("--write");
    }
    args.push(&m);
    args.extend(ARGS);
    nanoproc(&args)
}

/// Every `grants.KEY = ...` line of the manifest that learning proposes (not the
/// environment, kept as written).
fn grant_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("grants.") && !l.starts_with("grants.env"))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_proposal_is_enough_and_nothing_in_it_is_spare() {
    let scene = Scene::new();
    let m = scene_tree(&scene);
    let before = std::fs::read_to_string(&m).unwrap();

    // Shown, not applied.
    let shown = learn(&m, false);
    assert_eq!(shown.code, 0, "{shown:?}");
    assert!(shown.stdout.contains("--- "), "a diff: {shown:?}");
    assert_eq!(std::fs::read_to_string(&m).unwrap(), before, "not written");
    // While learning the leaf could read what its parent holds: its run worked.
    assert!(
        shown.answer("child:read:/data/sub/f").starts_with("ok"),
        "{shown:?}"
    );

    let written = learn(&m, true);
    assert_eq!(written.code, 0, "{written:?}");
    let after = std::fs::read_to_string(&m).unwrap();
    assert_ne!(after, before);
    // The unused grants are gone; the directories narrowed to what was touched.
    assert!(!after.contains("wall-clock"), "{after}");
    // The environment is kept as written: which variables a program reads
    // cannot be seen (docs/cli.md, `learn`).
    assert!(after.contains(r#"grants.env = ["HOME"]"#), "{after}");
    assert!(
        after.contains(r#"from = "/data/sub", guest = "/data/sub", rights = "read""#),
        "{after}"
    );
    assert!(!after.contains("/data/other"), "{after}");

    // Enough: the same run, refused nothing.
    let run = run_manifest(&m, &ARGS);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("refused"), "{run:?}");
    for arg in ARGS {
        assert!(run.answer(arg).starts_with("ok"), "{arg}: {run:?}");
    }

    // Nothing spare: without any one line, something is refused.
    let lines = grant_lines(&after);
    assert!(lines.len() >= 5, "{lines:?}");
    for line in &lines {
        let without: String = after
            .lines()
            .filter(|l| l != line)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&m, &without).unwrap();
        let run = run_manifest(&m, &ARGS);
        let refused = run.code == 125 || run.stderr.contains("refused");
        // A directory withheld is not refused but absent: the guest's C library
        // finds no directory for the path and fails it itself.
        let absent = line.starts_with("grants.fs") && run.stdout.contains("=> err: No such file");
        assert!(
            refused || absent,
            "without `{line}` the run did the same: {run:?}"
        );
    }
}

#[test]
fn what_the_user_never_granted_is_shown_but_not_written() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.stdout = true",
        r#"on-failure = "error""#,
        r#"on-failure = "error""#,
    );
    let before = std::fs::read_to_string(&m).unwrap();
    let run = nanoproc(&[
        "learn",
        "--write",
        &m.display().to_string(),
        "child:random-hex",
    ]);
    let after = std::fs::read_to_string(&m).unwrap();
    assert!(
        !after.contains("grants.random"),
        "learning never widens: {after}"
    );
    assert!(run.stderr.contains("refused even so"), "{run:?}");
    assert!(
        run.stderr
            .contains("add `grants.random = true` to [nanoprocess.driver], then `grants.random = true` to [nanoprocess.leaf]"),
        "{run:?}"
    );
    // The run did not succeed, so the proposal is not complete: status 1.
    assert_eq!(run.code, 1, "{run:?}");
    let _ = before;
}

#[test]
fn a_dependency_that_used_what_its_manifest_did_not_give_is_pointed_out() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.random = true",
        r#"on-failure = "error""#,
        r#"on-failure = "error""#,
    );
    let run = nanoproc(&["learn", &m.display().to_string(), "child:random-hex"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("review these"), "{run:?}");
    assert!(
        run.stderr
            .contains("[nanoprocess.leaf] grants.random = true"),
        "{run:?}"
    );
}

#[test]
fn a_single_component_is_proposed_flags_that_work() {
    let scene = Scene::new();
    let dir = scene.mkdir("d/sub");
    std::fs::write(dir.join("f"), "x").unwrap();
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("{}::/d", scene.path("d").display());
    let run = nanoproc(&[
        "learn",
        "--dir",
        &grant,
        "--random",
        "--clocks",
        &cmd,
        "--",
        "read:/d/sub/f",
        "random-hex",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("nanoproc run "))
        .unwrap_or_else(|| panic!("no command: {run:?}"));
    assert!(!line.contains("clock"), "{line}");
    // The root's directory keeps the path given; its rights narrow to reading.
    assert!(
        line.contains(&format!("--dir-ro {}::/d ", scene.path("d").display())),
        "{line}"
    );
    // Run it as proposed.
    let args: Vec<&str> = line.split(' ').skip(1).collect();
    let again = nanoproc(&args);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!again.stderr.contains("refused"), "{again:?}");
}

/// The proposal for a single component, as the arguments of `nanoproc`, split
/// into the flags (each with its value) and the rest.
fn proposed_command(run: &Run) -> (Vec<Vec<String>>, Vec<String>) {
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("nanoproc run "))
        .unwrap_or_else(|| panic!("no command: {run:?}"));
    let words: Vec<String> = line.split(' ').skip(2).map(str::to_string).collect();
    let mut flags = Vec::new();
    let mut i = 0;
    while i < words.len() && words[i].starts_with("--") {
        // Flags that take a value here: every one but the switches.
        let switch = [
            "--no-stdio",
            "--wall-clock",
            "--monotonic-clock",
            "--random",
            "--insecure-random",
            "--stdin",
        ]
        .contains(&words[i].as_str());
        if switch {
            flags.push(vec![words[i].clone()]);
            i += 1;
        } else {
            flags.push(vec![words[i].clone(), words[i + 1].clone()]);
            i += 2;
        }
    }
    (flags, words[i..].to_vec())
}

fn run_words(flags: &[Vec<String>], rest: &[String]) -> Run {
    let mut args: Vec<&str> = vec!["run"];
    for f in flags {
        args.extend(f.iter().map(String::as_str));
    }
    args.extend(rest.iter().map(String::as_str));
    nanoproc(&args)
}

/// The issue's test, on components of three languages: learn, run as proposed
/// (refused nothing), and without any one proposed grant (something refused, or
/// for a directory, the file is not found).
#[test]
fn learning_works_for_javascript_python_and_c() {
    let scene = Scene::new();
    let data = scene.mkdir("data");
    std::fs::write(data.join("input.txt"), "line one\n").unwrap();
    let dir = format!("{}::/data", data.display());
    let cases: [(&str, Vec<&str>, &[&str]); 3] = [
        // The engine reads the monotonic clock as it starts; the script the
        // wall clock and random.
        (
            "js-hello",
            vec!["--clocks", "--random", "--insecure-random"],
            &["monotonic-clock", "wall-clock", "random"],
        ),
        // componentize-py reads random bytes as it starts.
        (
            "py-hello",
            vec!["--clocks", "--random", "--insecure-random"],
            &["random"],
        ),
        // Reads /data/input.txt and the monotonic clock.
        (
            "c-reader",
            vec!["--dir", &dir, "--clocks", "--random"],
            &["--dir-ro", "monotonic-clock"],
        ),
    ];
    for (name, granted, expected) in cases {
        let wasm = xtask::foreign_guest(name).display().to_string();
        let mut args = vec!["learn"];
        args.extend(granted.iter().copied());
        args.push(&wasm);
        let learnt = nanoproc(&args);
        assert_eq!(learnt.code, 0, "{name}: {learnt:?}");
        let (flags, rest) = proposed_command(&learnt);
        for e in expected {
            assert!(
                flags.iter().any(|f| f[0].contains(e)),
                "{name}: {e} not proposed: {flags:?}"
            );
        }
        let as_proposed = run_words(&flags, &rest);
        assert_eq!(as_proposed.code, 0, "{name}: {as_proposed:?}");
        assert!(
            !as_proposed.stderr.contains("refused"),
            "{name}: {as_proposed:?}"
        );
        for (i, flag) in flags.iter().enumerate() {
            // Withdrawing the terminal is not a grant.
            if flag[0] == "--no-stdio" {
                continue;
            }
            let without: Vec<Vec<String>> = flags
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, f)| f.clone())
                .collect();
            let run = run_words(&without, &rest);
            let refused = run.stderr.contains("refused");
            let absent = flag[0].starts_with("--dir") && run.code != 0;
            assert!(
                refused || absent,
                "{name}: without {flag:?} nothing was refused: {run:?}"
            );
        }
    }
}

/// Red-team findings, each as the attack it was.
mod hostile {
    use super::*;

    /// A link in the granted directory pointing out of it: the guest cannot
    /// follow it (the sandbox refuses), but a proposal narrowed to a host path
    /// through it would be followed when the grant is opened.
    #[test]
    fn a_link_out_of_the_directory_is_never_proposed() {
        let scene = Scene::new();
        let data = scene.mkdir("data");
        let outside = scene.mkdir("outside");
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("current")).unwrap();
        std::fs::write(data.join("a"), "a").unwrap();
        let cmd = guest("probe_cmd").display().to_string();
        let grant = format!("{}::/data", data.display());
        let run = nanoproc(&[
            "learn",
            "--dir-ro",
            &grant,
            &cmd,
            "--",
            "read:/data/current/secret",
        ]);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("nanoproc run "))
            .unwrap_or_else(|| panic!("{run:?}"));
        let flags = line.split(" -- ").next().unwrap();
        assert!(!flags.contains("current"), "{line}");
        assert!(
            line.contains(&format!("--dir-ro {}::/data ", data.display())),
            "{line}"
        );
    }

    /// Two directories used: both written, not the last one only.
    #[test]
    fn every_directory_used_is_written() {
        let scene = Scene::new();
        scene.file("a/x", "ax");
        scene.file("b/y", "by");
        let m = scene.driver_tree(
            "grants.stdout = true\ngrants.fs = [{ host = \"./a\", guest = \"/a\", rights = \"read-write\" }, { host = \"./b\", guest = \"/b\", rights = \"read-write\" }]",
            "on-failure = \"error\"",
            "on-failure = \"error\"",
        );
        let m_arg = m.display().to_string();
        let learnt = nanoproc(&["learn", "--write", &m_arg, "read:/a/x", "read:/b/y"]);
        assert_eq!(learnt.code, 0, "{learnt:?}");
        let written = std::fs::read_to_string(&m).unwrap();
        assert!(
            written.contains("guest = \"/a\"") && written.contains("guest = \"/b\""),
            "{written}"
        );
        let run = run_manifest(&m, &["read:/a/x", "read:/b/y"]);
        assert!(
            run.answer("read:/a/x").starts_with("ok") && run.answer("read:/b/y").starts_with("ok"),
            "{run:?}"
        );
    }

    /// The manifest inside a directory a dependency would hold while learning:
    /// it could rewrite its own grants, its lock or its code. Refused before
    /// anything runs, with --write or without.
    #[test]
    fn a_manifest_a_dependency_could_rewrite_is_not_learnt() {
        let scene = Scene::new();
        let m = scene.driver_tree(
            "grants.stdout = true\ngrants.fs = [{ host = \".\", guest = \"/proj\", rights = \"read-write\" }]",
            "on-failure = \"error\"",
            "on-failure = \"error\"",
        );
        let before = std::fs::read_to_string(&m).unwrap();
        let m_arg = m.display().to_string();
        for write in [true, false] {
            let mut args = vec!["learn"];
            if write {
                args.push("--write");
            }
            args.extend([m_arg.as_str(), "child:write:/proj/nanoproc.toml=pwned"]);
            let run = nanoproc(&args);
            assert_eq!(run.code, 2, "{run:?}");
            assert!(run.stderr.contains("could rewrite it"), "{run:?}");
            assert!(!run.stdout.contains("=> ok"), "nothing ran: {run:?}");
            assert_eq!(std::fs::read_to_string(&m).unwrap(), before);
        }
    }

    /// A frozen clock is proposed with the flag that freezes it, once.
    #[test]
    fn a_frozen_clock_is_proposed_as_a_flag() {
        let cmd = guest("probe_cmd").display().to_string();
        let run = nanoproc(&[
            "learn",
            "--clock-at",
            "2024-05-01T00:00:00Z",
            &cmd,
            "--",
            "wall-clock",
            "monotonic",
        ]);
        assert_eq!(run.code, 0, "{run:?}");
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("nanoproc run "))
            .unwrap_or_else(|| panic!("{run:?}"));
        assert_eq!(
            line.matches("--clock-at 2024-05-01T00:00:00Z").count(),
            1,
            "{line}"
        );
        let args: Vec<&str> = line.split(' ').skip(1).collect();
        let again = nanoproc(&args);
        assert_eq!(again.code, 0, "{again:?}");
        assert!(
            again.stdout.contains("wall-clock => ok: 1714521600"),
            "{again:?}"
        );
    }

    /// A path with shell syntax in it: the proposed command quotes it.
    #[test]
    fn a_proposed_command_is_safe_to_paste() {
        let scene = Scene::new();
        let dir = scene.mkdir("x;echo INJECTED>pwned;#");
        std::fs::write(dir.join("f"), "x").unwrap();
        let cmd = guest("probe_cmd").display().to_string();
        let grant = format!("{}::/d", dir.display());
        let run = nanoproc(&["learn", "--dir", &grant, &cmd, "--", "read:/d/f"]);
        let line = run
            .stdout
            .lines()
            .find(|l| l.starts_with("nanoproc run "))
            .unwrap_or_else(|| panic!("{run:?}"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(line.replacen("nanoproc", env!("CARGO_BIN_EXE_nanoproc"), 1))
            .current_dir(scene.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        assert!(!scene.path("pwned").exists(), "{line}");
    }
}
