//! What a guest, or a manifest, can make nanoproc itself pay, and the bounds that
//! keep it small: the audit record of refusals whose text the guest chooses,
//! component files of any size or kind, manifests of any depth or width, and a tree
//! whose dependencies together may take more memory than the machine has.

use crate::common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The audit record: text the guest chooses

#[test]
fn refused_lookups_of_a_huge_name_are_cut_in_the_log_and_cost_nanoproc_nothing() {
    // 300 lookups of a 1 MiB name: before the cut, each refusal cost nanoproc about
    // 2 MiB (the name in the file's line and in the record kept for the report).
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let op = "lookups:300:1048576";
    let run = nanoproc(&[
        "run",
        "--audit",
        &log.display().to_string(),
        "--stats",
        &cmd(),
        "--",
        op,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer(op), "ok: 300 refused", "{run:?}");

    let text = std::fs::read_to_string(&log).unwrap();
    let longest = text.lines().map(str::len).max().unwrap();
    assert!(longest < 2048, "an audit line of {longest} bytes");
    let lookups: Vec<_> = audit_lines(&log)
        .into_iter()
        .filter(|l| l["operation"] == "wasi:sockets/ip-name-lookup.resolve-addresses")
        .collect();
    assert_eq!(lookups.len(), 300, "every refusal is still in the log");
    let target = lookups[0]["target"].as_str().unwrap();
    // The first and last 512 bytes, and how much was cut between them.
    assert_eq!(
        target,
        format!(
            "{}...[{} bytes cut]...{}.test",
            "a".repeat(512),
            (1 << 20) - 1024,
            "a".repeat(507)
        )
    );
    assert!(lookups.iter().all(|l| l["decision"] == "refused"));

    // The report shows the refusal once, cut as well.
    assert!(
        run.stderr
            .contains("nanoproc: 300 capability uses were refused:"),
        "{run:?}"
    );
    assert!(run.stderr.contains("bytes cut]...") && run.stderr.contains("(x300)"));
    assert!(
        run.stderr.len() < 8 * 1024,
        "{} bytes of report",
        run.stderr.len()
    );
    // The guest holds its name (1 MiB) and the host one copy of it at a time.
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 16 * 1024,
        "peak {peak} KiB: {run:?}"
    );
}

#[test]
fn refusals_beyond_what_memory_keeps_are_counted_in_the_report() {
    // 5000 refusals whose names are cut to 1 KiB: more than the 4 MiB the record
    // keeps in memory, fewer than its 10,000 entries, so only the bound in bytes
    // stops it.
    let op = "lookups:5000:4096";
    let run = nanoproc(&["run", &cmd(), "--", op]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer(op), "ok: 5000 refused");
    assert!(
        run.stderr
            .contains("nanoproc: 5000 capability uses were refused:"),
        "{run:?}"
    );
    let not_kept: u64 = run
        .stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("  ... and ")?
                .strip_suffix(" more refusals not kept in memory; see --audit FILE for all")
        })
        .unwrap_or_else(|| panic!("no count of refusals not kept: {run:?}"))
        .parse()
        .unwrap();
    // About 1.2 KiB each: some 3,500 kept.
    assert!((1000..2500).contains(&not_kept), "{not_kept} not kept");
    let (line, kept) = run
        .stderr
        .lines()
        .find_map(|l| l.split_once(" (x"))
        .unwrap_or_else(|| panic!("no repeated refusal: {run:?}"));
    assert!(line.contains("ip-name-lookup"), "{line}");
    assert_eq!(
        kept.trim_end_matches(')').parse::<u64>().unwrap() + not_kept,
        5000
    );
}

// ---------------------------------------------------------------------------
// Component files

/// A manifest whose root is the component file `file`.
fn root_only(scene: &Scene, file: &Path) -> std::path::PathBuf {
    scene.manifest(&format!(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"{}\"\n",
        file.display()
    ))
}

#[test]
fn a_sparse_component_over_the_cap_is_refused_without_being_read() {
    let scene = Scene::new();
    // 4 GiB that take no disk: a valid header, then a hole.
    let sparse = scene.path("huge.wasm");
    std::fs::write(&sparse, b"\0asm\x0d\x00\x01\x00").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&sparse)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    let manifest = root_only(&scene, &sparse);
    // Under 1 GiB of address space: reading the file whole could not even start.
    let script = format!(
        "ulimit -v 1048576 && exec '{}' check '{}'",
        env!("CARGO_BIN_EXE_nanoproc"),
        manifest.display()
    );
    let started = Instant::now();
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        stderr.contains(&format!(
            "nanoproc.toml:5:13: app: cannot read component {}: it is 4 GiB, more than the 256 MiB a component may be",
            sparse.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--max-component-size"), "{stderr}");
}

#[test]
fn the_size_cap_is_configurable() {
    let scene = Scene::new();
    let probe = cmd();
    let size = std::fs::metadata(&probe).unwrap().len();
    let m = root_only(&scene, Path::new(&probe)).display().to_string();
    let cap = format!("{}", size - 1);
    let run = nanoproc(&["check", "--max-component-size", &cap, &m]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "it is {size} B, more than the {cap} B a component may be"
        )),
        "{run:?}"
    );
    // The same file under a cap it fits in; and `run` takes the flag too.
    let run = nanoproc(&["check", "--max-component-size", "64MiB", &m]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .ends_with("ok: 1 nanoprocess, every grant within its parent's\n")
    );
    let run = nanoproc(&["run", "--max-component-size", "1KiB", &probe, "--", "count"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("more than the 1 KiB"), "{run:?}");
    let run = nanoproc(&["run", "--max-component-size", "lots", &probe]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--max-component-size: expected a size"),
        "{run:?}"
    );
}

#[test]
fn a_fifo_or_a_device_is_refused_without_hanging() {
    let scene = Scene::new();
    let fifo = scene.path("pipe.wasm");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let limit = Duration::from_secs(30);
    // Named by a manifest: refused where the manifest is checked.
    let m = root_only(&scene, &fifo).display().to_string();
    let (run, _) = nanoproc_within(limit, &["check", &m]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "app: component file {} is not a regular file",
            fifo.display()
        )),
        "{run:?}"
    );
    // Run on its own: refused where it is read, without waiting for a writer.
    let f = fifo.display().to_string();
    let (run, _) = nanoproc_within(limit, &["run", &f]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "cannot read component {f}: it is a FIFO (named pipe); a component is a regular file"
        )),
        "{run:?}"
    );
    // An endless file.
    let (run, _) = nanoproc_within(limit, &["run", "/dev/zero"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("it is a character device"), "{run:?}");
}

#[test]
fn a_file_that_is_not_webassembly_is_refused_by_its_header() {
    let scene = Scene::new();
    let script = scene.file("app.wasm", "#!/bin/sh\necho not wasm\n");
    let m = root_only(&scene, &script);
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "nanoproc.toml:5:13: app: {} is not WebAssembly: it is a script for /bin/sh",
            script.display()
        )),
        "{run:?}"
    );
    // WebAssembly of another layer's version (a component of an older encoding).
    let old = scene.path("old.wasm");
    std::fs::write(&old, b"\0asm\x0a\x00\x01\x00more").unwrap();
    let run = check(&root_only(&scene, &old));
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "it is WebAssembly of a version and layer nanoproc does not run (0a 00 01 00; a component has 0d 00 01 00, a core module 01 00 00 00)"
        ),
        "{run:?}"
    );
}

// ---------------------------------------------------------------------------
// Manifests of any shape

#[test]
fn a_manifest_100000_levels_deep_is_refused_at_the_depth_cap() {
    const LEVELS: usize = 100_000;
    let scene = Scene::new();
    let leaf = guest("probe_leaf").display().to_string();
    let mut text = String::from("[app]\nroot = \"n0\"\n\n");
    for i in 0..LEVELS {
        text.push_str(&format!(
            "[nanoprocess.n{i}]\ncomponent = \"{leaf}\"\ndeps = {{ \"test:probe/downstream\" = \"n{}\" }}\n\n",
            i + 1
        ));
    }
    text.push_str(&format!(
        "[nanoprocess.n{LEVELS}]\ncomponent = \"{leaf}\"\n"
    ));
    let m = scene.manifest(&text).display().to_string();
    // Before the cap, the recursive walk overflowed nanoproc's stack (SIGSEGV).
    let (run, took) = nanoproc_within(Duration::from_secs(120), &["check", &m]);
    assert_eq!(run.code, 125, "{run:?}");
    // Located at the declaration of the 65th level: 3 lines of [app], 4 a node.
    assert!(
        run.stderr.contains(&format!(
            "nanoproc.toml:{}:14: nanoprocess `n64` (a dependency of `n63`) would be level 65 of the tree; a tree has at most 64 levels",
            3 + 64 * 4 + 1
        )),
        "{}",
        &run.stderr[..run.stderr.len().min(4000)]
    );
    assert!(
        run.stderr
            .contains("nanoproc: refused before running (1 error)"),
        "the levels below are not reported one by one: {}",
        &run.stderr[..run.stderr.len().min(4000)]
    );
    eprintln!("checked {LEVELS} levels in {took:?}");
}

/// `(import "test:wide/{prefix}K" ...)` for each K below `count`: interfaces of
/// one function `f: func()`.
fn imports(prefix: &str, count: usize) -> String {
    (0..count)
        .map(|k| format!("  (import \"test:wide/{prefix}{k}\" (instance (export \"f\" (func))))\n"))
        .collect()
}

/// A command component (exporting `wasi:cli/run`) importing `test:wide/{prefix}K`
/// for each K below `count`.
fn wide_root(prefix: &str, count: usize) -> String {
    format!(
        r#"(component
{}  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $cli (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli))
)"#,
        imports(prefix, count)
    )
}

/// A library component importing `test:wide/{import}K` for each K below
/// `imported`, and exporting `test:wide/{export}K` for each K below `exported`.
fn wide_library(import: &str, imported: usize, export: &str, exported: usize) -> String {
    let mut wat = format!(
        r#"(component
{}  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
"#,
        imports(import, imported)
    );
    for k in 0..exported {
        wat.push_str(&format!(
            "  (instance $e{k} (export \"f\" (func $f)))\n  (export \"test:wide/{export}{k}\" (instance $e{k}))\n"
        ));
    }
    wat.push(')');
    wat
}

/// `name` = "the component `wat` compiles to", written into the scene.
fn component(scene: &Scene, name: &str, wat: &str) -> String {
    let path = scene.path(name);
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    path.display().to_string()
}

#[test]
fn a_manifest_of_5000_leaves_checks_in_bounded_time() {
    // A component can import at most 1,000 interfaces (wasmtime's limit of 1,000
    // instances in a component), so 5,000 leaves are 50 groups of 100 siblings.
    const GROUPS: usize = 50;
    const LEAVES: usize = 100;
    let scene = Scene::new();
    let root = component(&scene, "root.wasm", &wide_root("m", GROUPS));
    let mid = component(&scene, "mid.wasm", &wide_library("w", LEAVES, "m", GROUPS));
    let leaf = component(&scene, "leaf.wasm", &wide_library("", 0, "w", LEAVES));
    let deps = |prefix: &str, child: &dyn Fn(usize) -> String, count: usize| {
        let entries: Vec<String> = (0..count)
            .map(|k| format!("\"test:wide/{prefix}{k}\" = \"{}\"", child(k)))
            .collect();
        format!("deps = {{ {} }}\n", entries.join(", "))
    };
    let mut text = format!(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"{root}\"\ngrants.memory = \"1 GiB\"\n{}",
        deps("m", &|g| format!("g{g}"), GROUPS)
    );
    for g in 0..GROUPS {
        text.push_str(&format!(
            "\n[nanoprocess.g{g}]\ncomponent = \"{mid}\"\n{}",
            deps("w", &|k| format!("g{g}l{k}"), LEAVES)
        ));
        for k in 0..LEAVES {
            text.push_str(&format!(
                "\n[nanoprocess.g{g}l{k}]\ncomponent = \"{leaf}\"\n"
            ));
        }
    }
    let m = scene.manifest(&text).display().to_string();
    let (run, took) = nanoproc_within(Duration::from_secs(300), &["check", &m]);
    assert_eq!(run.code, 0, "{}", &run.stderr[..run.stderr.len().min(4000)]);
    assert!(
        run.stdout.ends_with(&format!(
            "ok: {} nanoprocesses, every grant within its parent's\n",
            1 + GROUPS + GROUPS * LEAVES
        )),
        "{}",
        &run.stdout[run.stdout.len().saturating_sub(2000)..]
    );
    assert!(
        run.stdout.contains("app/g49/g49l99"),
        "the last leaf is described"
    );
    eprintln!("checked {} leaves in {took:?}", GROUPS * LEAVES);
}

#[test]
fn five_thousand_siblings_are_refused_by_the_component_limit_with_its_location() {
    const WIDTH: usize = 5000;
    let scene = Scene::new();
    let root = component(&scene, "root.wasm", &wide_root("w", WIDTH));
    let leaf = component(&scene, "leaf.wasm", &wide_library("", 0, "w", 1));
    let entries: Vec<String> = (0..WIDTH)
        .map(|k| format!("\"test:wide/w{k}\" = \"c{k}\""))
        .collect();
    let mut text = format!(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"{root}\"\ngrants.memory = \"1 GiB\"\ndeps = {{ {} }}\n",
        entries.join(", ")
    );
    for k in 0..WIDTH {
        text.push_str(&format!("\n[nanoprocess.c{k}]\ncomponent = \"{leaf}\"\n"));
    }
    let m = scene.manifest(&text).display().to_string();
    let (run, took) = nanoproc_within(Duration::from_secs(120), &["check", &m]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(&format!(
            "nanoproc.toml:5:13: app: {root} is not a component nanoproc can run: failed to parse WebAssembly module: instances count exceeds limit of 4096"
        )),
        "{}",
        &run.stderr[..run.stderr.len().min(4000)]
    );
    // Its dependencies are not checked against a component that is not there,
    // each said once.
    assert!(
        run.stderr.contains("refused before running (1 error)"),
        "{}",
        &run.stderr[..run.stderr.len().min(4000)]
    );
    eprintln!("refused {WIDTH} siblings in {took:?}");
}

// ---------------------------------------------------------------------------
// A tree whose dependencies may take more than the machine has

fn physical_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse().ok())
        .expect("MemTotal in /proc/meminfo")
}

#[test]
fn check_warns_when_an_unlimited_roots_dependencies_may_exceed_the_machine() {
    // Each of the two children may take as much as the machine has: together,
    // twice that. (At their defaults, 256 MiB each, it would take a root with more
    // imports than any test component has.)
    let machine = format!("grants.memory = \"{} KiB\"", physical_kib());
    let scene = Scene::new();
    let m = scene.driver_tree("", &machine, &machine);
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    let note = run
        .stderr
        .lines()
        .find(|l| l.starts_with("nanoproc: note: the root `driver` has no memory limit"))
        .unwrap_or_else(|| panic!("no warning: {run:?}"));
    let gib = |kib: u64| format!("{:.1} GiB", kib as f64 / f64::from(1u32 << 20));
    assert!(
        note.contains(&format!(
            "its dependencies may together take up to {} of linear memory",
            gib(2 * physical_kib())
        )),
        "{note}"
    );
    assert!(
        note.contains(&format!("more than this machine's {}", gib(physical_kib()))),
        "{note}"
    );
    assert!(note.contains("set `grants.memory` on the root"), "{note}");

    // A memory limit on the root bounds the whole tree: no warning.
    let scene = Scene::new();
    let m = scene.driver_tree(&machine, &machine, &machine);
    let run = check(&m);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("no memory limit"), "{run:?}");
    // Nor at the defaults, which fit this machine (2 x 256 MiB).
    let scene = Scene::new();
    let run = check(&scene.driver_tree("", "", ""));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("no memory limit"), "{run:?}");
}

#[test]
fn one_file_under_many_names_is_read_once_and_not_kept() {
    let scene = Scene::new();
    // 200 MiB (under the cap) that take no disk, reached through `d`, a link to
    // its own directory, under eleven names: `d/big.wasm`, `d/d/big.wasm`, ...
    let dir = scene.mkdir("files");
    let big = dir.join("big.wasm");
    std::fs::write(&big, b"\0asm\x0d\x00\x01\x00").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    std::os::unix::fs::symlink(".", dir.join("d")).unwrap();
    let name = |i: usize| format!("{}/{}big.wasm", dir.display(), "d/".repeat(i + 1));
    let mut m = String::from("[app]\nroot = \"app\"\n\n[nanoprocess.app]\n");
    m.push_str(&format!("component = \"{}\"\ndeps = {{ ", name(0)));
    let deps: Vec<String> = (1..=10)
        .map(|i| format!("\"test:x/i{i}\" = \"c{i}\""))
        .collect();
    m.push_str(&deps.join(", "));
    m.push_str(" }\n");
    for i in 1..=10 {
        m.push_str(&format!(
            "\n[nanoprocess.c{i}]\ncomponent = \"{}\"\n",
            name(i)
        ));
    }
    let manifest = scene.manifest(&m);
    // Under 1.5 GiB of address space: eleven copies (2.2 GiB) could not be held.
    let script = format!(
        "ulimit -v 1572864 && exec '{}' check '{}'",
        env!("CARGO_BIN_EXE_nanoproc"),
        manifest.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{stderr}");
    // Read and refused once, for the first name: the rest are the same file.
    assert_eq!(
        stderr
            .matches("is not a component nanoproc can run")
            .count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}

#[test]
fn many_overlapping_grants_are_checked_quickly_and_listed_up_to_a_point() {
    let scene = Scene::new();
    scene.mkdir("d/s");
    let k = 1000;
    let deps: Vec<String> = (0..k).map(|i| format!("\"x:y/i{i}\" = \"n{i}\"")).collect();
    let mut m = format!(
        "[app]\nroot = \"r\"\n\n[nanoprocess.r]\ncomponent = \"{{probe_cmd}}\"\ndeps = {{ {} }}\n\
         grants.fs = [{{ host = \"{}\", guest = \"/d\", rights = \"read-write\" }}]\n",
        deps.join(", "),
        scene.path("d").display()
    );
    for i in 0..k {
        // Each child may create in /d, which contains its own writable /d/s.
        m.push_str(&format!(
            "\n[nanoprocess.n{i}]\ncomponent = \"{{probe_cmd}}\"\n\
             grants.fs = [{{ from = \"/d\", guest = \"/d\", rights = \"read+create\" }}, \
             {{ from = \"/d/s\", guest = \"/s\", rights = \"read-write\" }}]\n"
        ));
    }
    let manifest = scene.manifest(&m);
    let (run, took) = nanoproc_within(
        Duration::from_secs(60),
        &["check", &manifest.display().to_string()],
    );
    assert_eq!(
        run.code,
        125,
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    // Two thousand regions: the old cubic check took half a minute and printed
    // 350 MB of errors.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(run.stderr.matches("may create or rename in").count(), 20);
    assert!(
        run.stderr
            .contains("more grants overlap as the 20 below do"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(run.stderr.len() < 1 << 20, "{} bytes", run.stderr.len());
}
