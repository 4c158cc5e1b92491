//! Filesystem rights per operation, escape attempts through our layer, and the
//! audit log, with real components.

use crate::common;
use common::*;

/// driver (root, read-write /data) -> leaf and sib with the given grants.
fn tree(scene: &Scene, leaf: &str, sib: &str) -> std::path::PathBuf {
    scene.file("data/in/a.txt", "input a");
    scene.file("data/ro/keep.txt", "keep me");
    scene.mkdir("data/drop");
    scene.file("data/secret.txt", "the root's secret");
    scene.file("outside.txt", "outside every grant");
    scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true
grants.random = true"#,
        &format!("on-failure = \"error\"\n{leaf}"),
        &format!("on-failure = \"error\"\n{sib}"),
    )
}

fn run(scene: &Scene, leaf: &str, sib: &str, ops: &[&str]) -> Run {
    let m = tree(scene, leaf, sib).display().to_string();
    let mut args = vec!["run", m.as_str(), "--"];
    args.extend_from_slice(ops);
    nanoproc(&args)
}

#[test]
fn each_operation_needs_its_own_right() {
    let scene = Scene::new();
    let run = run(
        &scene,
        // A reader that may list but not look at metadata by path or write.
        r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = "read+list" }]"#,
        // A drop box: may create and write new files, nothing else.
        r#"grants.fs = [{ from = "/data/drop", guest = "/drop", rights = ["create", "write"] }]"#,
        &[
            "child:read:/in/a.txt",
            "child:ls:/in",
            "child:write:/in/a.txt=overwritten",
            "child:mkdir:/in/sub",
            "child:rm:/in/a.txt",
            "child:rename:/in/a.txt=/in/b.txt",
            "sibling:write:/drop/report.txt=dropped",
            "sibling:read:/drop/report.txt",
            "sibling:ls:/drop",
            "sibling:rm:/drop/report.txt",
            "sibling:mkdir:/drop/d",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:read:/in/a.txt"), "ok: input a");
    assert_eq!(run.assert_ok("child:ls:/in"), "ok: a.txt");
    for op in [
        "child:write:/in/a.txt=overwritten",
        "child:mkdir:/in/sub",
        "child:rm:/in/a.txt",
        "child:rename:/in/a.txt=/in/b.txt",
    ] {
        assert!(
            run.assert_err(op).contains("Operation not permitted"),
            "{op}: {run:?}"
        );
    }
    run.assert_ok("sibling:write:/drop/report.txt=dropped");
    run.assert_ok("sibling:mkdir:/drop/d");
    for op in [
        "sibling:read:/drop/report.txt",
        "sibling:ls:/drop",
        "sibling:rm:/drop/report.txt",
    ] {
        assert!(
            run.assert_err(op).contains("Operation not permitted"),
            "{op}: {run:?}"
        );
    }
    // On the host: the reader changed nothing; the drop box got its file.
    assert_eq!(
        std::fs::read_to_string(scene.path("data/in/a.txt")).unwrap(),
        "input a"
    );
    assert!(!scene.path("data/in/sub").exists() && !scene.path("data/in/b.txt").exists());
    assert_eq!(
        std::fs::read_to_string(scene.path("data/drop/report.txt")).unwrap(),
        "dropped"
    );
    // Each refusal is in the account, with its target and the right it lacked.
    assert!(
        run.stderr.contains("driver/leaf: fs /in/a.txt (wasi:filesystem/types.open-at): needs write+create, the directory grants read+list"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("driver/sib: fs /drop (wasi:filesystem/types.read-directory): needs list"),
        "{run:?}"
    );
}

#[test]
fn a_read_only_subtree_inside_a_read_write_grant() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        r#"grants.fs = [{ from = "/data/ro", guest = "/ro", rights = "read-only" }]"#,
        "",
    );
    let before = snapshot(&scene.path("data"));
    let run = run_manifest(
        &m,
        &[
            "write:/data/ro/by-root.txt=root may",
            "child:write:/ro/by-child.txt=x",
            "child:rm:/ro/keep.txt",
            "child:read:/ro/keep.txt",
            "rm:/data/ro/by-root.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("write:/data/ro/by-root.txt=root may");
    run.assert_err("child:write:/ro/by-child.txt=x");
    run.assert_err("child:rm:/ro/keep.txt");
    assert_eq!(run.assert_ok("child:read:/ro/keep.txt"), "ok: keep me");
    assert_eq!(
        before,
        snapshot(&scene.path("data")),
        "the child changed the host"
    );
}

#[test]
fn escape_attempts_fail_through_our_layer_and_change_nothing() {
    let scene = Scene::new();
    let leaf = r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = "read-write" }]"#;
    let m = tree(&scene, leaf, "");
    std::os::unix::fs::symlink(scene.path("outside.txt"), scene.path("data/in/abs-link")).unwrap();
    std::os::unix::fs::symlink("../../outside.txt", scene.path("data/in/rel-link")).unwrap();
    // A name that is not UTF-8 on the host.
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad-\xff-name");
        std::fs::write(scene.path("data/in").join(name), "odd").unwrap();
    }
    let before = snapshot(scene.dir.path());
    let long = format!("child:read:/in/{}", "d/".repeat(3000) + "f");
    let run = run_manifest(
        &m,
        &[
            "child:read:/in/../secret.txt",
            "child:read:/in/../../outside.txt",
            "child:read:/data/secret.txt",
            "child:read:/in/abs-link",
            "child:read:/in/rel-link",
            "child:write:/in/abs-link=overwrite",
            "child:hardlink:/in/../secret.txt=/in/stolen.txt",
            "child:hardlink:/in/rel-link=/in/stolen2.txt",
            "child:read:/in/stolen2.txt",
            "child:symlink:/data/secret.txt=/in/new-link",
            "child:read:/in/new-link",
            &long,
            "child:ls:/in",
            "child:read:/in/a.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in [
        "child:read:/in/../secret.txt",
        "child:read:/in/../../outside.txt",
        "child:read:/data/secret.txt",
        "child:read:/in/abs-link",
        "child:read:/in/rel-link",
        "child:write:/in/abs-link=overwrite",
        "child:hardlink:/in/../secret.txt=/in/stolen.txt",
        "child:read:/in/stolen2.txt",
        "child:read:/in/new-link",
        long.as_str(),
    ] {
        run.assert_err(op);
    }
    // A hard link to a symlink is just another name for the same symlink: made,
    // but it leads nowhere (the read of stolen2.txt above failed).
    run.assert_ok("child:hardlink:/in/rel-link=/in/stolen2.txt");
    let _ = std::fs::remove_file(scene.path("data/in/stolen2.txt"));
    // wasmtime-wasi will not hand the guest a name that is not UTF-8: listing that
    // directory fails cleanly (EILSEQ) instead of passing raw bytes; reads by name
    // of the other files still work.
    assert!(
        run.assert_err("child:ls:/in")
            .contains("Illegal byte sequence"),
        "{run:?}"
    );
    assert_eq!(run.assert_ok("child:read:/in/a.txt"), "ok: input a");
    // A symlink whose target is outside may be created (it is just a name) but
    // leads nowhere, as the read of abs-link showed. Everything else is as it was.
    let _ = std::fs::remove_file(scene.path("data/in/new-link"));
    assert_eq!(before, snapshot(scene.dir.path()), "the host changed");
}

#[test]
fn the_audit_log_is_complete_when_the_run_traps_halfway() {
    let scene = Scene::new();
    let leaf = r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = "read+list" }]"#;
    let mut m = tree(&scene, leaf, "");
    // The root traps when its child does: the run ends halfway.
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replacen("on-failure = \"error\"\n", "", 1);
    std::fs::write(&m, text).unwrap();
    m = m.canonicalize().unwrap();
    let log = scene.path("audit.jsonl");
    let run = nanoproc(&[
        "run",
        "--audit",
        &log.display().to_string(),
        &m.display().to_string(),
        "--",
        "random",
        "child:read:/in/a.txt",
        "child:write:/in/x=1",
        "child:random",
        "child:ls:/in",
    ]);
    assert_eq!(run.code, 134, "{run:?}");
    let lines = audit_lines(&log);
    let find = |who: &str, family: &str, decision: &str| {
        lines
            .iter()
            .find(|l| l["nanoprocess"] == who && l["family"] == family && l["decision"] == decision)
    };
    let read = find("driver/leaf", "fs", "allowed").expect("the child's read is recorded");
    assert_eq!(read["target"], "/in/a.txt");
    assert_eq!(read["operation"], "wasi:filesystem/types.open-at");
    let write = find("driver/leaf", "fs", "refused").expect("the refused write is recorded");
    assert_eq!(write["target"], "/in/x");
    assert!(
        write["reason"].as_str().unwrap().contains("needs"),
        "{write}"
    );
    let random = find("driver/leaf", "random", "refused").expect("the trapping call is recorded");
    assert_eq!(random["operation"], "wasi:random/random.get-random-bytes");
    assert!(
        find("driver", "random", "allowed").is_some(),
        "the root's own use is recorded"
    );
    // Every line has the fields, and nothing after the trap ran.
    for l in &lines {
        for key in [
            "time",
            "nanoprocess",
            "family",
            "operation",
            "target",
            "decision",
        ] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
    }
    assert!(
        !lines
            .iter()
            .any(|l| l["operation"] == "wasi:filesystem/types.read-directory"),
        "ls never ran"
    );
}

#[test]
fn the_audit_summary_lists_uses() {
    let scene = Scene::new();
    let m = tree(&scene, "grants.random = true", "");
    let run = nanoproc(&[
        "run",
        "--audit-summary",
        &m.display().to_string(),
        "--",
        "child:random",
        "child:random",
        "random",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("capability uses (allowed / refused):"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("  driver/leaf: random: 2 / 0"),
        "{run:?}"
    );
    assert!(run.stderr.contains("  driver: random: 1 / 0"), "{run:?}");
}

#[test]
fn rights_beyond_the_parents_directory_are_refused_at_check() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = "read+list" }]"#,
        "",
    );
    // A grandchild cannot get `create` below a parent that only reads.
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace("\"read+list\"", "\"read+create\"").replace(
            "rights = \"read-write\" }]",
            "rights = \"read+list+write\" }]",
        ),
    )
    .unwrap();
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant fs[0]"), "{run:?}");
    assert!(
        run.stderr
            .contains("asks for read+create but the parent holds /data only as read+write+list"),
        "{run:?}"
    );
}
