//! Filesystem rights for WASI 0.3 components (issue 15, part 2): the same rights per
//! operation, escapes refused, aliasing rules and audit record as for 0.2 (see
//! `rights.rs`, `escapes.rs`), with the 0.3 probes, whose every file operation goes
//! through `wasi:filesystem@0.3.0`.
//!
//! As root: `probe3_cmd` (and `probe3_driver`), whose `run` is an `async func`, so
//! every operation, streams included, may run. As a dependency: `probe3_leaf` under
//! a 0.2 parent (`probe_driver`) and under a 0.3 one (`probe3_driver`). A leaf's
//! exports are ordinary functions, which the component model lets wait for nothing:
//! the operations that read or write a stream (`read`, `write`, `ls`) cannot finish
//! inside them (wasmtime traps "cannot block a synchronous task", with wasmtime-wasi's
//! own 0.3 filesystem as with nanoproc's guard), so a dependency is tested with the
//! operations that are one call each (`stat`, `mkdir`, `rmdir`, `rm`, `rename`,
//! `hardlink`, `symlink`, `readlink`), and refusals of the others.

use crate::common;
use common::*;
use std::path::PathBuf;

/// A manifest whose one nanoprocess, `cmd`, is `probe3_cmd`; `table` is the rest of
/// its table (grants), one key a line.
fn cmd_manifest(scene: &Scene, table: &str) -> PathBuf {
    scene.file(
        "nanoproc.toml",
        &format!(
            "[app]\nroot = \"cmd\"\n\n[nanoprocess.cmd]\ncomponent = \"{}\"\ngrants.stdout = true\n{table}",
            guest("probe3_cmd").display()
        ),
    )
}

/// `driver` (the component `driver`, holding /data read-write) importing `probe`
/// from `leaf` and `sibling` from `sib`, both `probe3_leaf`, with the rest of their
/// tables.
fn leaf_tree(scene: &Scene, driver: &str, leaf: &str, sib: &str) -> PathBuf {
    scene.file(
        "nanoproc.toml",
        &format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
grants.fs = [{{ host = "data", guest = "/data", rights = "read-write" }}]
grants.stdout = true

[nanoprocess.leaf]
component = "{leaf_component}"
on-failure = "error"
{leaf}

[nanoprocess.sib]
component = "{leaf_component}"
on-failure = "error"
{sib}
"#,
            driver = guest(driver).display(),
            leaf_component = guest("probe3_leaf").display(),
        ),
    )
}

fn run_with_audit(scene: &Scene, manifest: &std::path::Path, ops: &[&str]) -> (Run, PathBuf) {
    let log = scene.path("audit.jsonl");
    let (l, m) = (log.display().to_string(), manifest.display().to_string());
    let mut args = vec!["run", "--audit", l.as_str(), m.as_str(), "--"];
    args.extend_from_slice(ops);
    (nanoproc(&args), log)
}

fn not_permitted(run: &Run, op: &str) {
    let answer = run.assert_err(op);
    assert!(
        answer.contains("Operation not permitted"),
        "{op}: {answer}\n{run:?}"
    );
}

/// The audit line of `who`'s `operation` on `target` with `decision`.
fn audit_line<'a>(
    lines: &'a [serde_json::Value],
    who: &str,
    operation: &str,
    target: &str,
    decision: &str,
) -> Option<&'a serde_json::Value> {
    lines.iter().find(|l| {
        l["nanoprocess"] == who
            && l["family"] == "fs"
            && l["operation"] == format!("wasi:filesystem/types.{operation}")
            && l["target"] == target
            && l["decision"] == decision
    })
}

#[test]
fn the_probes_reach_files_through_wasi_03_only() {
    // So every file operation of these tests goes through the 0.3 binding.
    let run = nanoproc(&["inspect", &guest("probe3_cmd").display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("wasi:filesystem/types@0.3.0, wasi:filesystem/preopens@0.3.0"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("wasi:filesystem/types@0.2"), "{run:?}");
}

#[test]
fn each_operation_needs_its_own_right_as_root() {
    let scene = Scene::new();
    scene.file("in/a.txt", "input a");
    scene.mkdir("drop");
    scene.file("meta/m.txt", "mm");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "in", guest = "/in", rights = "read+list" },
  { host = "drop", guest = "/drop", rights = ["create", "write"] },
  { host = "meta", guest = "/meta", rights = ["metadata"] },
]"#,
    );
    let before_in = snapshot(&scene.path("in"));
    let (run, log) = run_with_audit(
        &scene,
        &manifest,
        &[
            "read:/in/a.txt",
            "ls:/in",
            "stat:/in/a.txt",
            "write:/in/a.txt=overwritten",
            "append:/in/a.txt=more",
            "mkdir:/in/sub",
            "rm:/in/a.txt",
            "rename:/in/a.txt=/in/b.txt",
            "symlink:a.txt=/in/l",
            "write:/drop/report.txt=dropped",
            "mkdir:/drop/d",
            "read:/drop/report.txt",
            "ls:/drop",
            "rm:/drop/report.txt",
            "rmdir:/drop/d",
            "stat:/meta/m.txt",
            "read:/meta/m.txt",
            "ls:/meta",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("read:/in/a.txt"), "ok: input a");
    assert_eq!(run.assert_ok("ls:/in"), "ok: a.txt");
    for op in [
        "stat:/in/a.txt",
        "write:/in/a.txt=overwritten",
        "append:/in/a.txt=more",
        "mkdir:/in/sub",
        "rm:/in/a.txt",
        "rename:/in/a.txt=/in/b.txt",
        "symlink:a.txt=/in/l",
        "read:/drop/report.txt",
        // Refused at `read-directory`, a stream operation: through its future.
        "ls:/drop",
        "rm:/drop/report.txt",
        "rmdir:/drop/d",
        "read:/meta/m.txt",
        "ls:/meta",
    ] {
        not_permitted(&run, op);
    }
    run.assert_ok("write:/drop/report.txt=dropped");
    run.assert_ok("mkdir:/drop/d");
    assert_eq!(run.assert_ok("stat:/meta/m.txt"), "ok: file len 2");
    // On the host: the reader changed nothing; the drop box got its file.
    assert_eq!(before_in, snapshot(&scene.path("in")));
    assert_eq!(
        std::fs::read_to_string(scene.path("drop/report.txt")).unwrap(),
        "dropped"
    );
    assert!(scene.path("drop/d").is_dir());
    // Each refusal is in the account, with its target and the right it lacked,
    // under the same operation names as for 0.2.
    for line in [
        "cmd: fs /in/a.txt (wasi:filesystem/types.open-at): needs write+create, the directory grants read+list",
        "cmd: fs /in/sub (wasi:filesystem/types.create-directory-at): needs create, the directory grants read+list",
        "cmd: fs /in/a.txt (wasi:filesystem/types.unlink-file-at): needs remove, the directory grants read+list",
        "cmd: fs /in/a.txt (wasi:filesystem/types.stat-at): needs metadata, the directory grants read+list",
        "cmd: fs /drop (wasi:filesystem/types.read-directory): needs list, the directory grants write+create",
    ] {
        assert!(run.stderr.contains(line), "{line}\n{run:?}");
    }
    let lines = audit_lines(&log);
    for (operation, target, decision) in [
        ("open-at", "/in/a.txt", "allowed"),
        ("read-via-stream", "/in/a.txt", "allowed"),
        ("read-directory", "/in", "allowed"),
        ("write-via-stream", "/drop/report.txt", "allowed"),
        ("create-directory-at", "/drop/d", "allowed"),
        ("stat-at", "/meta/m.txt", "allowed"),
        ("read-directory", "/drop", "refused"),
        ("rename-at", "/in/a.txt", "refused"),
        ("symlink-at", "/in/l", "refused"),
        ("remove-directory-at", "/drop/d", "refused"),
    ] {
        assert!(
            audit_line(&lines, "cmd", operation, target, decision).is_some(),
            "no {decision} {operation} of {target} in {lines:#?}"
        );
    }
}

#[test]
fn a_refused_stream_operation_fails_that_operation_only() {
    // `ls` opens the directory (no right needed) and then lists it through
    // `read-directory`, refused: its future says so, the run goes on, and the
    // next operations (on another directory, and on the same one) still work.
    let scene = Scene::new();
    scene.mkdir("drop");
    scene.file("in/a.txt", "input a");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "drop", guest = "/drop", rights = ["create", "write"] },
  { host = "in", guest = "/in", rights = "read+list" },
]"#,
    );
    let run = run_manifest(
        &manifest,
        &[
            "ls:/drop",
            "ls:/in",
            "write:/drop/x=1",
            "ls:/drop",
            "read:/in/a.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    not_permitted(&run, "ls:/drop");
    assert_eq!(run.assert_ok("ls:/in"), "ok: a.txt");
    run.assert_ok("write:/drop/x=1");
    assert_eq!(run.assert_ok("read:/in/a.txt"), "ok: input a");
    assert!(!run.stderr.contains("trap"), "{run:?}");
}

#[test]
fn escapes_fail_through_the_03_binding_and_change_nothing() {
    let scene = Scene::new();
    scene.file("data/in/a.txt", "input a");
    scene.mkdir("data/in/sub");
    scene.file("data/secret.txt", "the secret");
    scene.file("outside.txt", "outside every grant");
    std::os::unix::fs::symlink(scene.path("outside.txt"), scene.path("data/in/abs-link")).unwrap();
    std::os::unix::fs::symlink("../../outside.txt", scene.path("data/in/rel-link")).unwrap();
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [{ host = "data/in", guest = "/in", rights = "read-write" }]"#,
    );
    // Out of the grant by `..`, an absolute path, a link, or a link written there.
    let escapes = [
        "read:/in/../secret.txt",
        "read:/in/../../outside.txt",
        "read:/data/secret.txt",
        "read:/in/abs-link",
        "read:/in/rel-link",
        "write:/in/abs-link=overwrite",
        "write:/in/../secret.txt=overwrite",
        "hardlink:/in/../secret.txt=/in/stolen.txt",
        "rename:/in/../secret.txt=/in/moved.txt",
        "mkdir:/in/../escaped",
        "stat:/in/../secret.txt",
    ];
    let before = snapshot(scene.dir.path());
    let (run, log) = run_with_audit(
        &scene,
        &manifest,
        &[
            escapes.as_slice(),
            &[
                "symlink:../secret.txt=/in/up-link",
                "symlink:/etc/passwd=/in/abs-new",
                "symlink:sub/x=/in/down-link",
                "read:/in/a.txt",
            ],
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in escapes {
        run.assert_err(op);
    }
    // A link must point below its own directory: the guard refuses these.
    not_permitted(&run, "symlink:../secret.txt=/in/up-link");
    not_permitted(&run, "symlink:/etc/passwd=/in/abs-new");
    run.assert_ok("symlink:sub/x=/in/down-link");
    assert_eq!(run.assert_ok("read:/in/a.txt"), "ok: input a");
    let lines = audit_lines(&log);
    std::fs::remove_file(&log).unwrap();
    std::fs::remove_file(scene.path("data/in/down-link")).unwrap();
    assert_eq!(before, snapshot(scene.dir.path()), "the host changed");
    // What the sandbox refused is recorded as failed, never as allowed.
    let about_secret: Vec<_> = lines
        .iter()
        .filter(|l| l["target"].as_str().is_some_and(|t| t.contains("secret")))
        .collect();
    assert!(!about_secret.is_empty(), "{lines:#?}");
    assert!(
        about_secret.iter().all(|l| l["decision"] != "allowed"),
        "{about_secret:#?}"
    );
    assert!(
        audit_line(&lines, "cmd", "symlink-at", "/in/up-link", "refused").is_some(),
        "{lines:#?}"
    );
}

#[test]
fn a_read_only_file_cannot_be_linked_or_moved_into_a_writable_grant() {
    let scene = Scene::new();
    scene.file("ro/victim.txt", "read-only content");
    scene.file("ro/other.txt", "other");
    scene.mkdir("rw");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "ro", guest = "/ro", rights = ["read", "list", "metadata", "rename", "remove"] },
  { host = "rw", guest = "/rw", rights = "read-write" },
]"#,
    );
    let run = run_manifest(
        &manifest,
        &[
            "write:/ro/victim.txt=direct",
            "append:/ro/victim.txt=direct",
            "hardlink:/ro/victim.txt=/rw/alias.txt",
            "write:/rw/alias.txt=through the link",
            "rename:/ro/victim.txt=/rw/moved.txt",
            "rename:/ro/victim.txt=/ro/renamed.txt",
            // Replacing a file needs `remove` where it is replaced: held here.
            "rename:/ro/other.txt=/ro/renamed.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    not_permitted(&run, "write:/ro/victim.txt=direct");
    not_permitted(&run, "append:/ro/victim.txt=direct");
    not_permitted(&run, "hardlink:/ro/victim.txt=/rw/alias.txt");
    not_permitted(&run, "rename:/ro/victim.txt=/rw/moved.txt");
    run.assert_ok("rename:/ro/victim.txt=/ro/renamed.txt");
    run.assert_ok("rename:/ro/other.txt=/ro/renamed.txt");
    assert_eq!(
        std::fs::read_to_string(scene.path("ro/renamed.txt")).unwrap(),
        "other"
    );
    assert!(!scene.path("rw/moved.txt").exists());
    // The write "through the link" made a new file of the guest's own.
    let alias = std::fs::read_to_string(scene.path("rw/alias.txt")).unwrap_or_default();
    assert_ne!(alias, "read-only content");
    assert!(
        run.stderr.contains("would gain"),
        "the account says why: {run:?}"
    );
}

#[test]
fn a_rename_that_replaces_a_file_needs_remove() {
    let scene = Scene::new();
    scene.file("d/a.txt", "a");
    scene.file("d/b.txt", "b, to keep");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [{ host = "d", guest = "/d", rights = ["read", "list", "metadata", "rename"] }]"#,
    );
    let run = run_manifest(&manifest, &["rename:/d/a.txt=/d/b.txt"]);
    assert_eq!(run.code, 0, "{run:?}");
    not_permitted(&run, "rename:/d/a.txt=/d/b.txt");
    assert_eq!(
        std::fs::read_to_string(scene.path("d/b.txt")).unwrap(),
        "b, to keep"
    );
}

#[test]
fn writing_to_a_file_opened_for_reading_is_wasmtimes_answer_not_a_refusal() {
    crate::escapes::write_to_a_file_opened_for_reading("probe3_cmd");
}

#[test]
fn a_single_component_run_grants_what_its_flags_say() {
    // `--dir-ro`: readable, listable, nothing written; `--dir`: everything.
    let scene = Scene::new();
    scene.file("ro/a.txt", "alpha");
    scene.mkdir("rw");
    let cmd = guest("probe3_cmd").display().to_string();
    let ro = format!("{}::/ro", scene.path("ro").display());
    let rw = format!("{}::/rw", scene.path("rw").display());
    let run = nanoproc(&[
        "run",
        "--dir-ro",
        &ro,
        "--dir",
        &rw,
        &cmd,
        "--",
        "read:/ro/a.txt",
        "ls:/ro",
        "stat:/ro/a.txt",
        "write:/ro/b.txt=x",
        "mkdir:/ro/d",
        "rm:/ro/a.txt",
        "write:/rw/b.txt=bee",
        "append:/rw/b.txt=!",
        "read:/rw/b.txt",
        "mkdir:/rw/d",
        "rename:/rw/b.txt=/rw/d/c.txt",
        "ls:/rw/d",
        "rm:/rw/d/c.txt",
        "rmdir:/rw/d",
        "ls:/rw",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("read:/ro/a.txt"), "ok: alpha");
    assert_eq!(run.assert_ok("ls:/ro"), "ok: a.txt");
    assert_eq!(run.assert_ok("stat:/ro/a.txt"), "ok: file len 5");
    for op in ["write:/ro/b.txt=x", "mkdir:/ro/d", "rm:/ro/a.txt"] {
        not_permitted(&run, op);
    }
    run.assert_ok("write:/rw/b.txt=bee");
    run.assert_ok("append:/rw/b.txt=!");
    assert_eq!(run.assert_ok("read:/rw/b.txt"), "ok: bee!");
    run.assert_ok("mkdir:/rw/d");
    run.assert_ok("rename:/rw/b.txt=/rw/d/c.txt");
    assert_eq!(run.assert_ok("ls:/rw/d"), "ok: c.txt");
    run.assert_ok("rm:/rw/d/c.txt");
    run.assert_ok("rmdir:/rw/d");
    assert_eq!(run.assert_ok("ls:/rw"), "ok: ");
    assert_eq!(
        std::fs::read_to_string(scene.path("ro/a.txt")).unwrap(),
        "alpha"
    );
}

#[test]
fn no_grant_reaches_procfs() {
    let cmd = guest("probe3_cmd").display().to_string();
    let env = [("NANOPROC_TEST_SECRET", "the-host-secret-42")];
    let run = nanoproc_env(
        &[
            "run",
            "--dir-ro",
            "/::/host",
            &cmd,
            "--",
            "read:/host/proc/self/environ",
            "read:/host/proc/self/maps",
            "ls:/host/proc/self",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{run:?}");
    for op in [
        "read:/host/proc/self/environ",
        "read:/host/proc/self/maps",
        "ls:/host/proc/self",
    ] {
        not_permitted(&run, op);
    }
    assert!(!run.stdout.contains("the-host-secret-42"), "{run:?}");
    assert!(run.stderr.contains("procfs"), "{run:?}");
}

/// The rights of a 0.3 dependency, under a parent of either generation.
fn rights_as_a_dependency(driver: &str) {
    let scene = Scene::new();
    scene.file("data/in/a.txt", "input a");
    scene.mkdir("data/in/sub");
    scene.mkdir("data/drop");
    scene.file("data/secret.txt", "the root's secret");
    let manifest = leaf_tree(
        &scene,
        driver,
        // Reads and lists, and looks at metadata (`read-only`); changes nothing.
        r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = ["read", "list", "metadata"] }]"#,
        // A drop box: may create and write, nothing else.
        r#"grants.fs = [{ from = "/data/drop", guest = "/drop", rights = ["create", "write"] }]"#,
    );
    let before = snapshot(&scene.path("data/in"));
    let (run, log) = run_with_audit(
        &scene,
        &manifest,
        &[
            "child:stat:/in/a.txt",
            "child:mkdir:/in/new",
            "child:rmdir:/in/sub",
            "child:rm:/in/a.txt",
            "child:rename:/in/a.txt=/in/b.txt",
            "child:hardlink:/in/a.txt=/in/h.txt",
            "child:symlink:a.txt=/in/l",
            "child:stat:/in/../secret.txt",
            "child:stat:/data/secret.txt",
            "sibling:mkdir:/drop/d",
            "sibling:symlink:d=/drop/to-d",
            "sibling:symlink:../secret.txt=/drop/up",
            "sibling:symlink:/etc/passwd=/drop/abs",
            "sibling:stat:/drop/d",
            "sibling:rmdir:/drop/d",
            "sibling:read:/drop/to-d",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:stat:/in/a.txt"), "ok: file len 7");
    for op in [
        "child:mkdir:/in/new",
        "child:rmdir:/in/sub",
        "child:rm:/in/a.txt",
        "child:rename:/in/a.txt=/in/b.txt",
        "child:hardlink:/in/a.txt=/in/h.txt",
        "child:symlink:a.txt=/in/l",
        "sibling:symlink:../secret.txt=/drop/up",
        "sibling:symlink:/etc/passwd=/drop/abs",
        "sibling:stat:/drop/d",
        "sibling:rmdir:/drop/d",
        // Refused when opened, before any stream (which a leaf could not wait for).
        "sibling:read:/drop/to-d",
    ] {
        not_permitted(&run, op);
    }
    // Out of the directory: the sandbox's answer, whatever the rights.
    run.assert_err("child:stat:/in/../secret.txt");
    run.assert_err("child:stat:/data/secret.txt");
    run.assert_ok("sibling:mkdir:/drop/d");
    run.assert_ok("sibling:symlink:d=/drop/to-d");
    assert_eq!(
        before,
        snapshot(&scene.path("data/in")),
        "the reader changed /in"
    );
    assert!(scene.path("data/drop/d").is_dir());
    assert_eq!(
        std::fs::read_to_string(scene.path("data/secret.txt")).unwrap(),
        "the root's secret"
    );
    // The account and the record name the nanoprocess by its path in the tree.
    for line in [
        "driver/leaf: fs /in/new (wasi:filesystem/types.create-directory-at): needs create, the directory grants read-only",
        "driver/leaf: fs /in/a.txt (wasi:filesystem/types.unlink-file-at): needs remove, the directory grants read-only",
        "driver/sib: fs /drop/d (wasi:filesystem/types.stat-at): needs metadata, the directory grants write+create",
    ] {
        assert!(run.stderr.contains(line), "{line}\n{run:?}");
    }
    let lines = audit_lines(&log);
    for (who, operation, target, decision) in [
        ("driver/leaf", "stat-at", "/in/a.txt", "allowed"),
        ("driver/leaf", "create-directory-at", "/in/new", "refused"),
        ("driver/leaf", "rename-at", "/in/a.txt", "refused"),
        ("driver/leaf", "link-at", "/in/a.txt", "refused"),
        ("driver/leaf", "stat-at", "/in/../secret.txt", "failed"),
        ("driver/sib", "create-directory-at", "/drop/d", "allowed"),
        ("driver/sib", "symlink-at", "/drop/to-d", "allowed"),
        ("driver/sib", "symlink-at", "/drop/up", "refused"),
        ("driver/sib", "open-at", "/drop/to-d", "refused"),
    ] {
        assert!(
            audit_line(&lines, who, operation, target, decision).is_some(),
            "no {decision} {operation} of {target} by {who} in {lines:#?}"
        );
    }
    // Nothing of the children's is recorded under the driver's name.
    assert!(
        !lines
            .iter()
            .any(|l| l["nanoprocess"] == "driver" && l["family"] == "fs"),
        "{lines:#?}"
    );
}

#[test]
fn a_03_dependency_of_a_02_parent_holds_only_its_rights() {
    rights_as_a_dependency("probe_driver");
}

#[test]
fn a_03_dependency_of_a_03_parent_holds_only_its_rights() {
    rights_as_a_dependency("probe3_driver");
}

#[test]
fn a_03_root_and_its_03_dependency_each_use_their_own_grant() {
    // The driver (0.3, holding /data read-write) reads and writes through
    // streams; its leaf (0.3) may only look. The leaf's refusal does not touch
    // the driver's next operations.
    let scene = Scene::new();
    scene.file("data/in/a.txt", "input a");
    scene.mkdir("data/drop");
    let manifest = leaf_tree(
        &scene,
        "probe3_driver",
        r#"grants.fs = [{ from = "/data/in", guest = "/in", rights = ["read", "list", "metadata"] }]"#,
        "",
    );
    let (run, log) = run_with_audit(
        &scene,
        &manifest,
        &[
            "read:/data/in/a.txt",
            "child:mkdir:/in/x",
            "write:/data/drop/out.txt=written by the driver",
            "child:stat:/in/a.txt",
            "ls:/data/drop",
            "sibling:stat:/in/a.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("read:/data/in/a.txt"), "ok: input a");
    not_permitted(&run, "child:mkdir:/in/x");
    run.assert_ok("write:/data/drop/out.txt=written by the driver");
    assert_eq!(run.assert_ok("child:stat:/in/a.txt"), "ok: file len 7");
    assert_eq!(run.assert_ok("ls:/data/drop"), "ok: out.txt");
    // The sibling was granted no directory: it has no /in at all.
    run.assert_err("sibling:stat:/in/a.txt");
    let lines = audit_lines(&log);
    assert!(
        audit_line(
            &lines,
            "driver",
            "write-via-stream",
            "/data/drop/out.txt",
            "allowed"
        )
        .is_some(),
        "{lines:#?}"
    );
    assert!(
        audit_line(
            &lines,
            "driver/leaf",
            "create-directory-at",
            "/in/x",
            "refused"
        )
        .is_some(),
        "{lines:#?}"
    );
}
