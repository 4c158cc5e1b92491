//! Every dependency can touch only what it was handed: proven with real components.
//!
//! The root is `probe_driver`, which runs probes itself and forwards `child:OP` and
//! `sibling:OP` to the two nanoprocesses it imports (both `probe_leaf`, each its own
//! instance with its own grants).

use crate::common;
use common::*;

/// A root holding a directory, a secret variable and random; a child holding
/// nothing; a sibling holding a read-only subdirectory and random.
fn family(scene: &Scene, child_grants: &str, sibling_grants: &str) -> std::path::PathBuf {
    scene.file("data/secret.txt", "the parent's secret");
    scene.file("data/shared/readme.txt", "for the sibling");
    scene.driver_tree(
        r#"grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.env = ["PARENT_SECRET"]
grants.random = true
grants.wall-clock = true
grants.monotonic-clock = true
grants.stdout = true"#,
        &format!("on-failure = \"error\"\n{child_grants}"),
        &format!("on-failure = \"error\"\n{sibling_grants}"),
    )
}

fn run_family(scene: &Scene, child: &str, sibling: &str, args: &[&str]) -> Run {
    let manifest = family(scene, child, sibling);
    let m = manifest.display().to_string();
    let mut all = vec!["run", m.as_str(), "--"];
    all.extend_from_slice(args);
    nanoproc_env(&all, &[("PARENT_SECRET", "hunter2")])
}

#[test]
fn a_child_sees_none_of_its_parents_files_or_environment() {
    let scene = Scene::new();
    let manifest = family(&scene, "", "");
    let before = snapshot(&scene.path("data"));
    let run = nanoproc_env(
        &[
            "run",
            &manifest.display().to_string(),
            "--",
            "read:/data/secret.txt",
            "env:PARENT_SECRET",
            "child:read:/data/secret.txt",
            "child:ls:/data",
            "child:env:PARENT_SECRET",
            "child:envall",
            "child:write:/data/planted.txt=x",
            "child:read:../data/secret.txt",
        ],
        &[("PARENT_SECRET", "hunter2")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    // The parent holds them...
    assert_eq!(
        run.assert_ok("read:/data/secret.txt"),
        "ok: the parent's secret"
    );
    assert_eq!(run.assert_ok("env:PARENT_SECRET"), "ok: hunter2");
    // ...the child does not.
    run.assert_err("child:read:/data/secret.txt");
    run.assert_err("child:ls:/data");
    run.assert_err("child:read:../data/secret.txt");
    assert_eq!(run.answer("child:env:PARENT_SECRET"), "err: not present");
    assert_eq!(run.answer("child:envall"), "ok: ");
    run.assert_err("child:write:/data/planted.txt=x");
    assert_eq!(
        before,
        snapshot(&scene.path("data")),
        "the host files changed"
    );
}

#[test]
fn a_sibling_sees_only_its_own_grant_and_not_its_siblings() {
    let scene = Scene::new();
    let run = run_family(
        &scene,
        r#"grants.fs = [{ from = "/data/shared", guest = "/mine", rights = "read-write" }]"#,
        r#"grants.fs = [{ from = "/data", guest = "/whole", rights = "read-only" }]"#,
        &[
            "child:write:/mine/child.txt=from the child",
            "child:read:/mine/readme.txt",
            "child:read:/whole/secret.txt",
            "child:read:/mine/../secret.txt",
            "sibling:read:/whole/secret.txt",
            "sibling:read:/mine/readme.txt",
            "sibling:write:/whole/sib.txt=x",
            "sibling:rm:/whole/secret.txt",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_ok("child:write:/mine/child.txt=from the child");
    assert_eq!(
        run.assert_ok("child:read:/mine/readme.txt"),
        "ok: for the sibling"
    );
    run.assert_err("child:read:/whole/secret.txt");
    run.assert_err("child:read:/mine/../secret.txt");
    assert_eq!(
        run.assert_ok("sibling:read:/whole/secret.txt"),
        "ok: the parent's secret"
    );
    run.assert_err("sibling:read:/mine/readme.txt");
    // Read-only is enforced by wasmtime-wasi for the sibling's whole view.
    run.assert_err("sibling:write:/whole/sib.txt=x");
    run.assert_err("sibling:rm:/whole/secret.txt");
    // The child's write landed in the one directory it was handed.
    assert_eq!(
        std::fs::read_to_string(scene.path("data/shared/child.txt")).unwrap(),
        "from the child"
    );
    assert!(!scene.path("data/sib.txt").exists());
    assert!(scene.path("data/secret.txt").exists());
}

#[test]
fn ambient_capabilities_are_refused_with_the_nanoprocess_named() {
    for (op, capability) in [
        ("random", "random"),
        ("insecure-random", "insecure-random"),
        ("wall-clock", "wall-clock"),
        ("monotonic", "monotonic-clock"),
    ] {
        let scene = Scene::new();
        let arg = format!("child:{op}");
        let run = run_family(&scene, "", "", &[&arg, "child:hashmap", "sibling:hashmap"]);
        assert_eq!(run.code, 0, "{run:?}");
        let answer = run.assert_err(&arg);
        assert!(
            answer.contains("nanoprocess `driver/leaf` was refused capability `")
                && answer.contains(&format!("capability `{capability}`")),
            "{op}: {answer}"
        );
        // The trapped child stays failed and says so; its sibling is unaffected.
        assert!(
            run.answer("child:hashmap").contains("failed earlier"),
            "{run:?}"
        );
        assert_eq!(run.answer("sibling:hashmap"), "ok: 3");
        // The refusal is in the end-of-run account.
        assert!(
            run.stderr.contains(&format!("driver/leaf: {capability} (")),
            "{op}: {}",
            run.stderr
        );
    }
}

#[test]
fn an_ungranted_stdout_fails_each_write_and_is_recorded() {
    // Getting the handle is allowed (runtimes fetch it at start-up); writing fails
    // with the stream's error case, which Rust's println! turns into a panic.
    let scene = Scene::new();
    let run = run_family(&scene, "", "", &["child:stdout:hello", "sibling:hashmap"]);
    assert_eq!(run.code, 0, "{run:?}");
    let answer = run.assert_err("child:stdout:hello");
    assert!(
        answer.contains("nanoprocess `driver/leaf` failed"),
        "{answer}"
    );
    assert!(answer.contains("failed printing to stdout"), "{answer}");
    assert!(!run.stdout.lines().any(|l| l == "hello"), "{run:?}");
    assert!(
        run.stderr.contains(
            "driver/leaf: stdout (wasi:io/streams.output-stream.write (stdout)): not granted"
        ),
        "{run:?}"
    );
    assert_eq!(run.answer("sibling:hashmap"), "ok: 3");
}

#[test]
fn granted_ambient_capabilities_work_in_a_child() {
    let scene = Scene::new();
    let run = run_family(
        &scene,
        "grants.random = true\ngrants.wall-clock = true\ngrants.monotonic-clock = true\ngrants.stdout = true",
        "",
        &[
            "child:random",
            "child:wall-clock",
            "child:monotonic",
            "child:stdout:printed by the child",
            "child:hashmap",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:random"), "ok: 16 bytes");
    let secs: u64 = run.assert_ok("child:wall-clock")["ok: ".len()..]
        .parse()
        .unwrap();
    assert!(secs > 1_700_000_000, "the wall clock is real: {secs}");
    run.assert_ok("child:monotonic");
    assert!(
        run.stdout.lines().any(|l| l == "printed by the child"),
        "{run:?}"
    );
    assert_eq!(run.assert_ok("child:hashmap"), "ok: 3");
    assert!(!run.stderr.contains("refused"), "{run:?}");
}

#[test]
fn a_child_holding_nothing_can_still_use_hash_maps() {
    // `wasi:random/insecure-seed` is the one ambient function every nanoprocess gets:
    // std's HashMap needs it, and it reveals nothing.
    let scene = Scene::new();
    let run = run_family(&scene, "", "", &["child:hashmap"]);
    assert_eq!(run.assert_ok("child:hashmap"), "ok: 3");
}

#[test]
fn the_network_is_refused_and_recorded() {
    let scene = Scene::new();
    let run = run_family(
        &scene,
        "",
        "",
        &[
            "child:connect:127.0.0.1:9",
            "child:resolve:localhost:80",
            "connect:127.0.0.1:9",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("child:connect:127.0.0.1:9");
    run.assert_err("child:resolve:localhost:80");
    run.assert_err("connect:127.0.0.1:9");
    assert!(
        run.stderr
            .contains("driver/leaf: network 127.0.0.1:9 (wasi:sockets/tcp.connect)"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("driver/leaf: network localhost (wasi:sockets/ip-name-lookup"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("driver: network 127.0.0.1:9"),
        "{run:?}"
    );
}

#[test]
fn a_symlink_inside_a_granted_directory_does_not_lead_out() {
    let scene = Scene::new();
    scene.file("outside/private.txt", "not for the child");
    let manifest = family(
        &scene,
        r#"grants.fs = [{ from = "/data/shared", guest = "/mine", rights = "read-only" }]"#,
        "",
    );
    std::os::unix::fs::symlink(scene.path("outside"), scene.path("data/shared/escape")).unwrap();
    std::os::unix::fs::symlink("../../outside/private.txt", scene.path("data/shared/rel")).unwrap();
    let run = run_manifest(
        &manifest,
        &[
            "child:read:/mine/escape/private.txt",
            "child:read:/mine/rel",
            "child:ls:/mine",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err("child:read:/mine/escape/private.txt");
    run.assert_err("child:read:/mine/rel");
    run.assert_ok("child:ls:/mine");
}

#[test]
fn a_derived_directory_that_is_a_symlink_out_or_missing_is_refused_at_check() {
    let scene = Scene::new();
    scene.file("outside/private.txt", "not for the child");
    let manifest = family(
        &scene,
        r#"grants.fs = [{ from = "/data/link", guest = "/mine", rights = "read-only" }]"#,
        r#"grants.fs = [{ from = "/data/nonesuch", guest = "/x", rights = "read-only" }]"#,
    );
    std::os::unix::fs::symlink(scene.path("outside"), scene.path("data/link")).unwrap();
    for run in [
        check(&manifest),
        run_manifest(&manifest, &["child:read:/mine/private.txt"]),
    ] {
        assert_eq!(run.code, 125, "{run:?}");
        assert!(
            run.stderr
                .contains("nanoproc.toml:17:14: driver/leaf: grant fs[0]: cannot open /data"),
            "{run:?}"
        );
        assert!(
            run.stderr
                .contains("nanoproc.toml:22:14: driver/sib: grant fs[0]: cannot open /data"),
            "{run:?}"
        );
        assert!(
            run.stdout.is_empty() || run.stdout.starts_with("driver"),
            "nothing ran: {run:?}"
        );
    }
}

#[test]
fn grants_hold_at_depth_three() {
    // driver -> mid -> leaf, each handed a narrower directory.
    let scene = Scene::new();
    scene.file("data/m/l/leaf.txt", "leaf file");
    scene.file("data/m/mid.txt", "mid file");
    scene.file("data/top.txt", "top file");
    let manifest = scene.manifest(
        r#"
[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.random = true
grants.stdout = true
deps = { "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }

[nanoprocess.mid]
component = "{probe_mid}"
grants.fs = [{ from = "/data/m", guest = "/m", rights = "read-write" }]
grants.random = true
deps = { "test:probe/downstream" = "leaf" }
on-failure = "error"

[nanoprocess.leaf]
component = "{probe_leaf}"
grants.fs = [{ from = "/m/l", guest = "/l", rights = "read-only" }]
on-failure = "error"

[nanoprocess.sib]
component = "{probe_leaf}"
"#,
    );
    let run = run_manifest(
        &manifest,
        &[
            "child:read:/m/mid.txt",
            "child:read:/data/top.txt",
            "child:down:read:/l/leaf.txt",
            "child:down:read:/m/mid.txt",
            "child:down:write:/l/new.txt=x",
            "child:random",
            "child:down:random",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok("child:read:/m/mid.txt"), "ok: mid file");
    run.assert_err("child:read:/data/top.txt");
    assert_eq!(
        run.assert_ok("child:down:read:/l/leaf.txt"),
        "ok: leaf file"
    );
    run.assert_err("child:down:read:/m/mid.txt");
    run.assert_err("child:down:write:/l/new.txt=x");
    run.assert_ok("child:random");
    let refused = run.assert_err("child:down:random");
    assert!(
        refused.contains("`driver/mid/leaf` was refused capability `random`"),
        "{refused}"
    );
    assert!(!scene.path("data/m/l/new.txt").exists());
}
