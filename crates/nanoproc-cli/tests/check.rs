//! `nanoproc check`: everything that can be refused before anything runs, refused
//! with the nanoprocess, the grant, the parent's grant and the manifest location.

use crate::common;
use common::*;

/// driver -> mid -> leaf (and a sibling), with the leaf's and mid's grants supplied
/// by the test. The root holds a directory, one variable, random, both clocks,
/// stdout and 64 MiB.
fn tree(scene: &Scene, mid_grants: &str, leaf_grants: &str) -> std::path::PathBuf {
    scene.mkdir("data/m/l");
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
grants.fs = [{{ host = "data", guest = "/data", rights = "read-write" }}]
grants.env = ["HOME"]
grants.random = true
grants.wall-clock = true
grants.monotonic-clock = true
grants.stdout = true
grants.memory = "64 MiB"
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}

[nanoprocess.mid]
component = "{{probe_mid}}"
deps = {{ "test:probe/downstream" = "leaf" }}
{mid_grants}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
{leaf_grants}

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#
    ))
}

fn refused(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 125, "{run:?}");
    for n in needles {
        assert!(run.stderr.contains(n), "missing {n:?} in:\n{}", run.stderr);
    }
}

#[test]
fn a_valid_tree_is_printed_with_effective_capabilities() {
    let scene = Scene::new();
    let m = tree(
        &scene,
        "grants.fs = [{ from = \"/data/m\", guest = \"/m\", rights = \"read-write\" }]\ngrants.env = [\"HOME\", \"MODE=fast\"]\ngrants.memory = \"16 MiB\"",
        "grants.fs = [{ from = \"/m/l\", guest = \"/l\", rights = \"read-only\" }]",
    );
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    let data = scene.path("data").canonicalize().unwrap();
    assert!(
        out.contains(&format!("/data (read-write) = host {}", data.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "/m (read-write) = host {}",
            data.join("m").display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "/l (read-only) = host {}",
            data.join("m/l").display()
        )),
        "{out}"
    );
    assert!(out.contains("env     HOME, MODE=fast"), "{out}");
    // The leaf inherits its parent's memory limit; the sibling gets the child
    // default (256 MiB) capped by the root's 64 MiB.
    assert_eq!(out.matches("limits  memory 16 MiB,").count(), 2, "{out}");
    assert_eq!(out.matches("limits  memory 64 MiB").count(), 2, "{out}");
    assert!(out.contains("timeout 30s"), "{out}");
    assert!(
        out.contains("failure traps its parent's call; never restarted"),
        "{out}"
    );
    assert!(out.contains("driver/mid/leaf"), "{out}");
    assert!(
        out.contains("serves  test:probe/downstream to driver/mid"),
        "{out}"
    );
    assert!(out.contains("ok: 4 nanoprocesses"), "{out}");
}

#[test]
fn every_capability_kind_is_refused_beyond_the_parent() {
    let cases: [(&str, &[&str]); 8] = [
        (
            "grants.fs = [{ from = \"/elsewhere\", guest = \"/x\", rights = \"read-only\" }]",
            &[
                "driver/mid: grant fs[0]",
                "/elsewhere is not inside any directory the parent holds",
                "`driver` holds: /data (read-write)",
            ],
        ),
        (
            "grants.fs = [{ from = \"/data/../etc\", guest = \"/x\", rights = \"read-only\" }]",
            &["driver/mid: grant fs[0]", "`..`"],
        ),
        (
            "grants.fs = [{ host = \"/etc\", guest = \"/x\", rights = \"read-only\" }]",
            &["driver/mid: grant fs[0]", "cannot name host paths"],
        ),
        (
            "grants.env = [\"AWS_SECRET\"]",
            &[
                "driver/mid: grant env[0]",
                "does not hold the variable AWS_SECRET",
                "`driver` holds: HOME",
            ],
        ),
        (
            "grants.stdin = true",
            &[
                "driver/mid: grant stdin (stdin = true)",
                "`driver` holds: stdin = false",
            ],
        ),
        (
            "grants.insecure-random = true",
            &["driver/mid: grant insecure-random"],
        ),
        (
            "grants.memory = \"65 MiB\"",
            &[
                "driver/mid: grant memory",
                "`driver` holds: memory = \"64 MiB\"",
            ],
        ),
        (
            "grants.network = [\"example.com:443\"]",
            &[
                "driver/mid: grant network[0]",
                "no pattern of the parent covers example.com:443",
                "`driver` holds: nothing",
            ],
        ),
    ];
    for (grants, needles) in cases {
        let scene = Scene::new();
        let run = check(&tree(&scene, grants, ""));
        refused(&run, needles);
        // Every error points at the manifest line of the offending grant.
        let line = grants.lines().next().unwrap();
        let line_no = std::fs::read_to_string(scene.path("nanoproc.toml"))
            .unwrap()
            .lines()
            .position(|l| l == line)
            .unwrap()
            + 1;
        assert!(
            run.stderr.contains(&format!("nanoproc.toml:{line_no}:")),
            "{grants}: expected line {line_no} in {}",
            run.stderr
        );
    }
}

#[test]
fn the_rule_holds_below_the_first_level() {
    // The leaf asks for things the root holds but its own parent (mid) does not.
    let scene = Scene::new();
    let run = check(&tree(
        &scene,
        "grants.fs = [{ from = \"/data/m\", guest = \"/m\", rights = \"read-only\" }]",
        "grants.fs = [{ from = \"/m/l\", guest = \"/l\", rights = \"read-write\" }]\ngrants.random = true\ngrants.fs2 = 1",
    ));
    // An unknown key is reported first, alone: the file does not parse.
    refused(&run, &["unknown field `fs2`"]);

    let scene = Scene::new();
    let run = check(&tree(
        &scene,
        "grants.fs = [{ from = \"/data/m\", guest = \"/m\", rights = \"read-only\" }]",
        "grants.fs = [{ from = \"/m/l\", guest = \"/l\", rights = \"read-write\" }]\ngrants.random = true\ngrants.env = [\"HOME\"]",
    ));
    refused(
        &run,
        &[
            "driver/mid/leaf: grant fs[0]",
            "asks for read-write but the parent holds /m only as read-only",
            "driver/mid/leaf: grant random",
            "`driver/mid` holds: random = false",
            "driver/mid/leaf: grant env[0]",
        ],
    );
    assert_eq!(run.stderr.matches("error:").count(), 3, "{}", run.stderr);
}

#[test]
fn digests_are_checked() {
    let scene = Scene::new();
    let bytes = std::fs::read(guest("probe_cmd")).unwrap();
    let good = nanoproc_runtime::manifest::digest_of(&bytes);
    let manifest = |digest: &str| {
        scene.manifest(&format!(
            "[app]\nroot = \"cmd\"\n\n[nanoprocess.cmd]\ncomponent = \"{{probe_cmd}}\"\ndigest = \"{digest}\"\n"
        ))
    };
    assert_eq!(check(&manifest(&good)).code, 0);
    let bad = format!("sha256:{}", "0".repeat(64));
    let run = check(&manifest(&bad));
    refused(
        &run,
        &[
            "nanoproc.toml:6:10",
            "does not match its digest",
            &format!("found {good}"),
            &format!("expected {bad}"),
        ],
    );
    // And nothing runs.
    let run = run_manifest(&manifest(&bad), &["stdout:hello"]);
    assert_eq!(run.code, 125);
    assert!(run.stdout.is_empty());
}

#[test]
fn an_export_of_another_type_is_refused_with_both_types() {
    let scene = Scene::new();
    let run = check(&scene.manifest(
        r#"[app]
root = "parent"

[nanoprocess.parent]
component = "{types_parent}"
deps = { "test:types/echo" = "child" }

[nanoprocess.child]
component = "{types_child_wrong}"
"#,
    ));
    refused(
        &run,
        &[
            "nanoproc.toml:6:30",
            "parent: its import test:types/echo cannot be satisfied by `parent/child`",
            "function `add` has the wrong type: the import expects func(a: u32, b: u32) -> u32, the export is func(a: u64, b: u32) -> u32",
            "function `noop` is missing (expected func())",
            "function `echo-outer` is missing (expected func(v: record { name: string, items: list<record { tags: list<string>, weight: option<f32> }>",
        ],
    );
}

#[test]
fn wiring_mistakes_are_refused() {
    let scene = Scene::new();
    // No dependency for an import, and a dependency for an interface not imported.
    let run = check(&scene.manifest(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
deps = { "test:probe/probe" = "leaf", "test:probe/nonesuch" = "other" }

[nanoprocess.leaf]
component = "{probe_leaf}"

[nanoprocess.other]
component = "{probe_leaf}"
"#,
    ));
    refused(
        &run,
        &[
            "driver: imports test:probe/sibling",
            "but no dependency provides it",
            "help: add `deps = { \"test:probe/sibling\" = \"<nanoprocess>\" }` to [nanoprocess.driver]",
            "driver: `other` is given for test:probe/nonesuch, but",
            "does not import that interface",
        ],
    );

    // A library component cannot be the root.
    let run = check(
        &scene
            .manifest("[app]\nroot = \"lib\"\n\n[nanoprocess.lib]\ncomponent = \"{probe_leaf}\"\n"),
    );
    refused(
        &run,
        &["lib: the root must be a command (export wasi:cli/run)"],
    );

    // Not WebAssembly at all.
    scene.file("junk.wasm", "this is not wasm");
    let run = check(
        &scene
            .manifest("[app]\nroot = \"junk\"\n\n[nanoprocess.junk]\ncomponent = \"junk.wasm\"\n"),
    );
    refused(
        &run,
        &[
            "nanoproc.toml:5:13",
            "junk: ",
            "junk.wasm is not WebAssembly: it is text",
        ],
    );
}

#[test]
fn manifest_syntax_errors_carry_their_location() {
    let scene = Scene::new();
    let run = check(&scene.manifest(
        "[app]\nroot = \"a\"\n\n[nanoprocess.a]\ncomponent = \"x.wasm\"\nfrobnicate = 1\n",
    ));
    refused(&run, &["nanoproc.toml:6:1", "unknown field `frobnicate`"]);
    let run = check(&scene.path("missing.toml"));
    refused(&run, &["cannot read manifest"]);
}

#[test]
fn a_host_defined_capability_is_refused_by_name_by_the_command_line() {
    // `grants.host` is for capabilities an embedding application registers; the
    // `nanoproc` command registers none, and says so rather than "unknown".
    let scene = Scene::new();
    let m = tree(&scene, "", "");
    let text = std::fs::read_to_string(&m).unwrap().replace(
        "grants.memory = \"64 MiB\"\n",
        "grants.memory = \"64 MiB\"\ngrants.host = { kv = [\"users/\"], mailer = true }\n",
    );
    std::fs::write(&m, text).unwrap();
    let run = check(&m);
    refused(
        &run,
        &[
            "`kv` is a host-defined capability (grants.host), and this runtime does not define it",
            "`mailer` is a host-defined capability (grants.host)",
            "the `nanoproc` command defines none",
            "nanoproc.toml:",
        ],
    );
}
