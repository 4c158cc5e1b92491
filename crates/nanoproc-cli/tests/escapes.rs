//! Red-team tests: dependencies written to break out, each doing what an attacker
//! would with a real guest, and the host checked afterwards. One test (or more) per
//! class of escape; `docs/security.md` lists which test covers which boundary.

use crate::common;
use common::*;

/// A manifest whose one nanoprocess, `cmd`, is the `probe_cmd` guest; `table` is
/// the rest of its table (grants), one key a line.
fn cmd_manifest(scene: &Scene, table: &str) -> std::path::PathBuf {
    scene.manifest(&format!(
        "[app]\nroot = \"cmd\"\n\n[nanoprocess.cmd]\ncomponent = \"{{probe_cmd}}\"\n{table}"
    ))
}

// ---------------------------------------------------------------------------
// Directories are open handles, never paths resolved again.

#[test]
fn a_parent_cannot_redirect_a_restarted_childs_directory() {
    // The driver holds /data read-write; the leaf holds /data/child read-only as
    // /mine and is restarted after a failure. The driver moves the leaf's
    // directory away and puts a symlink to its own secrets in its place, then
    // makes the leaf fail: the restarted leaf must get the directory it was
    // granted, not whatever the name now points at.
    let scene = Scene::new();
    scene.file("data/child/mine.txt", "the child's file");
    scene.file("data/secret/secret.txt", "the driver's secret");
    let manifest = scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true"#,
        r#"grants.fs = [{ from = "/data/child", guest = "/mine", rights = "read-only" }]
on-failure = "error"
restart = { max = 3, within = "1m" }"#,
        "",
    );
    let run = run_manifest(
        &manifest,
        &[
            "child:read:/mine/mine.txt",
            "rename:/data/child=/data/moved",
            "symlink:secret=/data/child",
            "child:panic:make me restart",
            "child:read:/mine/secret.txt",
            "child:read:/mine/mine.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("rename:/data/child=/data/moved");
    run.assert_ok("symlink:secret=/data/child");
    run.assert_err("child:panic:make me restart");
    let stolen = run.answer("child:read:/mine/secret.txt");
    assert!(
        !stolen.contains("the driver's secret"),
        "the restarted child was handed the redirected directory: {stolen}"
    );
    // It still holds the very directory it was granted, under its new name.
    let answers: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("child:read:/mine/mine.txt => "))
        .collect();
    assert_eq!(answers, ["ok: the child's file"; 2], "{run:?}");
    // What reached the guests (the driver prints its child's errors) names guest
    // paths only.
    let host = scene.dir.path().display().to_string();
    assert!(!run.stdout.contains(&host), "{run:?}");
}

#[test]
fn an_output_file_is_opened_once_and_never_through_a_link() {
    // The root writes its stdout to a log next to the manifest. A log that is a
    // symbolic link (say, one a guest made where it may write) is refused.
    let scene = Scene::new();
    scene.file("victim.txt", "keep me\n");
    std::os::unix::fs::symlink(scene.path("victim.txt"), scene.path("app.log")).unwrap();
    let manifest = cmd_manifest(
        &scene,
        r#"grants.stdout = { file = "app.log" }
"#,
    );
    let run = run_manifest(&manifest, &["stdout:appended"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("cannot open its output file"),
        "{run:?}"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("victim.txt")).unwrap(),
        "keep me\n"
    );
}

#[test]
fn a_root_grant_that_is_a_symlink_is_refused() {
    // A guest that can write where the user's grants are named (here: the
    // manifest's directory) could turn a granted directory into a symlink to
    // anywhere before the next run. The last component is never followed.
    let scene = Scene::new();
    scene.file("home/.ssh/id_rsa", "private key");
    std::os::unix::fs::symlink(scene.path("home"), scene.path("data")).unwrap();
    let cmd = guest("probe_cmd").display().to_string();
    let dir = format!("{}::/data", scene.path("data").display());
    let run = nanoproc(&["run", "--dir", &dir, &cmd, "--", "read:/data/.ssh/id_rsa"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("is a symbolic link"), "{run:?}");
    assert!(!run.stdout.contains("private key"), "{run:?}");
}

#[test]
fn a_nested_root_grant_is_opened_through_its_encloser() {
    // `data` is granted read+list and `data/inner` read-write. Someone who could
    // write in `data` turned `inner` into a symlink to a directory outside: the
    // nested grant is opened through `data`'s handle without following it.
    let scene = Scene::new();
    scene.file("outside/victim.txt", "not granted");
    scene.mkdir("data");
    std::os::unix::fs::symlink("../outside", scene.path("data/inner")).unwrap();
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "data", guest = "/data", rights = "read+list" },
  { host = "data/inner", guest = "/inner", rights = "read-write" },
]
grants.stdout = true
"#,
    );
    let run = run_manifest(&manifest, &["write:/inner/victim.txt=overwritten"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("grant fs[1]"), "{run:?}");
    assert!(run.stderr.contains("symbolic link"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(scene.path("outside/victim.txt")).unwrap(),
        "not granted"
    );

    // A nested grant that adds no right to its encloser is refused: it could only
    // mislead whoever reads the manifest.
    scene.mkdir("data2/sub");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "data2", guest = "/data", rights = "read-write" },
  { host = "data2/sub", guest = "/sub", rights = "read-only" },
]
"#,
    );
    let run = check(&manifest);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("already holds every right it asks for"),
        "{run:?}"
    );
}

#[test]
fn check_shows_the_directories_it_opened() {
    let scene = Scene::new();
    scene.mkdir("data/child");
    let manifest = scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]"#,
        r#"grants.fs = [{ from = "/data/child", guest = "/mine", rights = "read-only" }]"#,
        "",
    );
    let run = check(&manifest);
    assert_eq!(run.code, 0, "{run:?}");
    let real = scene.path("data/child").canonicalize().unwrap();
    assert!(
        run.stdout
            .contains(&format!("/mine (read-only) = host {}", real.display())),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------
// No right is gained through an alias.

#[test]
fn a_read_only_file_cannot_be_linked_or_moved_into_a_writable_grant() {
    let scene = Scene::new();
    scene.file("ro/victim.txt", "read-only content");
    scene.mkdir("rw");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "ro", guest = "/ro", rights = ["read", "list", "metadata", "rename", "remove"] },
  { host = "rw", guest = "/rw", rights = "read-write" },
]
grants.stdout = true
"#,
    );
    let run = run_manifest(
        &manifest,
        &[
            "write:/ro/victim.txt=direct",
            "hardlink:/ro/victim.txt=/rw/alias.txt",
            "write:/rw/alias.txt=through the link",
            "rename:/ro/victim.txt=/rw/moved.txt",
            "rename:/ro/victim.txt=/ro/renamed.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("write:/ro/victim.txt=direct");
    run.assert_err("hardlink:/ro/victim.txt=/rw/alias.txt");
    run.assert_err("rename:/ro/victim.txt=/rw/moved.txt");
    // Renaming inside its own directory gives the file nothing new.
    run.assert_ok("rename:/ro/victim.txt=/ro/renamed.txt");
    assert_eq!(
        std::fs::read_to_string(scene.path("ro/renamed.txt")).unwrap(),
        "read-only content"
    );
    assert!(!scene.path("rw/moved.txt").exists());
    // The write "through the link" created a new file of the guest's own.
    let alias = std::fs::read_to_string(scene.path("rw/alias.txt")).unwrap_or_default();
    assert_ne!(alias, "read-only content");
}

// ---------------------------------------------------------------------------
// Errors as WASI programs expect them, and a record of what really happened.

#[test]
fn writing_to_a_file_opened_for_reading_is_wasmtimes_answer_not_a_refusal() {
    write_to_a_file_opened_for_reading("probe_cmd");
}

/// A write through a descriptor opened for reading, by the probe command `cmd`
/// (`probe_cmd`, or its WASI 0.3 twin in p3_fs.rs).
pub(crate) fn write_to_a_file_opened_for_reading(cmd: &str) {
    let scene = Scene::new();
    scene.file("data/a.txt", "alpha");
    let log = scene.path("audit.jsonl");
    let cmd = guest(cmd).display().to_string();
    let dir = format!("{}::/data", scene.path("data").display());
    let run = nanoproc(&[
        "run",
        "--dir",
        &dir,
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        "write-ro:/data/a.txt",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    // What wasmtime-wasi answers for any WASI program (the write fails on the
    // file's own descriptor), not the `not-permitted` of a refused grant.
    let answer = run.assert_err("write-ro:/data/a.txt");
    assert!(!answer.contains("not permitted"), "{answer}");
    let lines = audit_lines(&log);
    assert!(
        !lines.iter().any(|l| l["decision"] == "refused"),
        "not a capability refusal: {lines:#?}"
    );
    assert_eq!(
        std::fs::read_to_string(scene.path("data/a.txt")).unwrap(),
        "alpha"
    );
}

#[test]
fn the_audit_log_records_what_happened_not_what_was_attempted() {
    // `..` out of a granted directory: the rights allow opening files for
    // reading, the sandbox refuses the path. No "allowed" line may name it.
    let scene = Scene::new();
    scene.file("data/a.txt", "alpha");
    scene.file("outside.txt", "outside");
    let log = scene.path("audit.jsonl");
    let cmd = guest("probe_cmd").display().to_string();
    let dir = format!("{}::/data", scene.path("data").display());
    let run = nanoproc(&[
        "run",
        "--dir",
        &dir,
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        "read:/data/../outside.txt",
        "read:/data/a.txt",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("read:/data/../outside.txt");
    let lines = audit_lines(&log);
    let about_outside: Vec<_> = lines
        .iter()
        .filter(|l| l["target"].as_str().is_some_and(|t| t.contains("outside")))
        .collect();
    assert!(!about_outside.is_empty(), "{lines:?}");
    assert!(
        about_outside.iter().all(|l| l["decision"] != "allowed"),
        "{about_outside:?}"
    );
    assert!(
        about_outside.iter().any(|l| l["decision"] == "failed"),
        "{about_outside:?}"
    );
    assert!(
        lines.iter().any(|l| l["decision"] == "allowed"
            && l["target"] == "/data/a.txt"
            && l["operation"] == "wasi:filesystem/types.open-at"),
        "{lines:?}"
    );
    // Guests and the record see guest paths only.
    let host = scene.dir.path().display().to_string();
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains(&host),
        "a host path in the record"
    );
}

#[test]
fn grants_through_which_a_file_could_be_laundered_are_refused_at_check() {
    // The root may create in /data and holds /data/w read-write: any file of
    // /data linked into w (through /data's own descriptor) would become writable.
    let scene = Scene::new();
    scene.mkdir("data/w");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [
  { host = "data", guest = "/d", rights = "read+list+create" },
  { host = "data/w", guest = "/w", rights = "read-write" },
]
"#,
    );
    let run = check(&manifest);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains("may create or rename in") && run.stderr.contains("would gain"),
        "{run:?}"
    );

    // Two siblings, the same shape: together they could rewrite a file of /data
    // that neither may write.
    let scene = Scene::new();
    scene.mkdir("data/w");
    let manifest = scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]"#,
        r#"grants.fs = [{ from = "/data", guest = "/d", rights = ["read", "list", "rename"] }]"#,
        r#"grants.fs = [{ from = "/data/w", guest = "/w", rights = "read-write" }]"#,
    );
    let run = check(&manifest);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant fs[0]"), "{run:?}");
    assert!(run.stderr.contains("`driver/sib`'s /w"), "{run:?}");
}

#[test]
fn a_rename_that_replaces_a_file_needs_remove() {
    let scene = Scene::new();
    scene.file("d/a.txt", "a");
    scene.file("d/b.txt", "b, to keep");
    let manifest = cmd_manifest(
        &scene,
        r#"grants.fs = [{ host = "d", guest = "/d", rights = ["read", "list", "metadata", "rename"] }]
grants.stdout = true
"#,
    );
    let run = run_manifest(&manifest, &["rename:/d/a.txt=/d/b.txt"]);
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("rename:/d/a.txt=/d/b.txt");
    assert_eq!(
        std::fs::read_to_string(scene.path("d/b.txt")).unwrap(),
        "b, to keep"
    );
}

#[test]
fn a_child_cannot_plant_a_link_its_parent_would_follow() {
    // The leaf may create and write in /data/drop. A link there pointing at
    // ../secret.txt would make the driver, which holds all of /data, write its
    // own secret when it writes the "report".
    let scene = Scene::new();
    scene.mkdir("data/drop/sub");
    scene.file("data/secret.txt", "the driver's secret");
    let manifest = scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true"#,
        r#"grants.fs = [{ from = "/data/drop", guest = "/drop", rights = ["create", "write"] }]
on-failure = "error""#,
        "",
    );
    let run = run_manifest(
        &manifest,
        &[
            "child:symlink:../secret.txt=/drop/report.txt",
            "child:symlink:/etc/passwd=/drop/abs.txt",
            "child:symlink:sub/x=/drop/down.txt",
            "write:/data/drop/report.txt=report",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("child:symlink:../secret.txt=/drop/report.txt");
    run.assert_err("child:symlink:/etc/passwd=/drop/abs.txt");
    run.assert_ok("child:symlink:sub/x=/drop/down.txt");
    assert_eq!(
        std::fs::read_to_string(scene.path("data/secret.txt")).unwrap(),
        "the driver's secret"
    );
}

#[test]
fn no_grant_reaches_procfs() {
    // /proc/self/mem would be nanoproc's own memory, /proc/self/environ its
    // environment. A grant of /proc is refused; below a grant of /, nothing on
    // procfs is opened.
    let cmd = guest("probe_cmd").display().to_string();
    let env = [("NANOPROC_TEST_SECRET", "the-host-secret-42")];
    let run = nanoproc_env(
        &[
            "run",
            "--dir-ro",
            "/proc",
            &cmd,
            "--",
            "read:/proc/self/environ",
        ],
        &env,
    );
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("procfs"), "{run:?}");
    assert!(!run.stdout.contains("the-host-secret-42"), "{run:?}");

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
        run.assert_err(op);
    }
    assert!(!run.stdout.contains("the-host-secret-42"), "{run:?}");
}

#[test]
fn the_audit_log_cannot_be_where_a_guest_reaches() {
    // A guest granted the directory of the --audit file could read the record,
    // forge lines in it or delete it mid-run.
    let scene = Scene::new();
    scene.mkdir("w");
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("{}::/w", scene.path("w").display());
    let log = scene.path("w/audit.jsonl").display().to_string();
    let run = nanoproc(&[
        "run",
        "--dir",
        &grant,
        "--audit",
        &log,
        &cmd,
        "--",
        "rm:/w/audit.jsonl",
    ]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("lies inside a granted directory"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing ran: {run:?}");
}

#[test]
fn what_a_guest_names_reaches_the_terminal_escaped() {
    // A guest that may not even write picks the path of a refused write: with a
    // raw escape sequence and a newline in it, the refusal report would clear the
    // user's screen and print a forged line of nanoproc's own.
    let scene = Scene::new();
    scene.mkdir("d");
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("{}::/d", scene.path("d").display());
    let op = "write:/d/\u{1b}[2J\nnanoproc: all clear, 0 refusals\u{9b}=x";
    let run = nanoproc(&["run", "--dir-ro", &grant, "--no-stdio", &cmd, "--", op]);
    assert!(
        run.stderr.contains("capability uses were refused"),
        "{run:?}"
    );
    assert!(!run.stderr.contains('\u{1b}'), "{run:?}");
    assert!(!run.stderr.contains('\u{9b}'), "{run:?}");
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.starts_with("nanoproc: all clear")),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("\\u{1b}[2J\\nnanoproc: all clear"),
        "{run:?}"
    );
}

/// A manifest's author chooses names, paths and grants that `check` prints: a
/// terminal escape among them (clear the screen, retitle the window, move the
/// cursor to forge a line) is shown escaped, never sent to the terminal.
#[test]
fn check_prints_the_manifests_text_escaped() {
    let scene = Scene::new();
    scene.mkdir("data\u{1b}[2J");
    let m = scene.manifest(
        // TOML's escapes: the file itself holds no control character.
        "[app]\nroot = \"cmd\\u001B]0;owned\\u0007\"\n\n[nanoprocess.\"cmd\\u001B]0;owned\\u0007\"]\ncomponent = \"{probe_cmd}\"\ngrants.fs = [{ host = \"data\\u001B[2J\", guest = \"/d\\u202Ex\", rights = \"read-only\" }]\n",
    );
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    for raw in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!run.stdout.contains(raw), "{raw:?} in {:?}", run.stdout);
    }
    assert!(run.stdout.contains("\\u{1b}"), "{run:?}");
}
