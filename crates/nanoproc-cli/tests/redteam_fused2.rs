//! Red team, second pass over fused edges (after `redteam_fused.rs`): what a
//! manifest can make the runtime spend on fused composites (the pooling
//! allocator's per-component slots, which now grow with the largest fused
//! store; the composite itself, which holds one copy of a component per fused
//! nanoprocess), and the link step that binds named imports only for a component
//! that has some (`plan/link.rs`, `has_named`).
//!
//! Every component here is hand-written WAT, shaped for the attack. Attacks that
//! fail today guard the property as ordinary tests; a real problem is a test
//! marked `
use crate::common;
use common::*;
use std::fmt::Write as _;
use std::time::Duration;

fn write_wasm(scene: &Scene, name: &str, wat_text: &str) -> String {
    let bytes = wat::parse_str(wat_text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let p = scene.path(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// A command that imports `x:f/i0` ... `x:f/i{n-1}` (each `f: func()`) and
/// calls none of them.
fn fanout_root(n: usize) -> String {
    let mut imports = String::new();
    for k in 0..n {
        writeln!(
            imports,
            r#"  (import "x:f/i{k}" (instance (export "f" (func))))"#
        )
        .unwrap();
    }
    format!(
        r#"(component
{imports}
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $inst))
)"#
    )
}

/// A library exporting `x:f/i{k}` for every `k` in `exports`, whose core module
/// has a memory of `pad` bytes of data (a stand-in for a real component's size).
fn leaf(exports: std::ops::Range<usize>, pad: usize) -> String {
    let mut out = String::new();
    for k in exports {
        writeln!(
            out,
            r#"  (instance $o{k} (export "f" (func $f)))
  (export "x:f/i{k}" (instance $o{k}))"#
        )
        .unwrap();
    }
    let pages = pad.div_ceil(65536).max(1);
    let data = if pad == 0 {
        String::new()
    } else {
        format!(r#"(data (i32.const 0) "{}")"#, "x".repeat(pad))
    };
    format!(
        r#"(component
  (core module $m (memory (export "memory") {pages}) {data} (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
{out}
)"#
    )
}

/// A manifest: `root` with `n` dependencies `c{k}` (component `child(k)`), each
/// serving `x:f/i{k}`, fused or not.
fn fanout_manifest(
    scene: &Scene,
    root: &str,
    n: usize,
    child: impl Fn(usize) -> String,
    fused: bool,
) -> std::path::PathBuf {
    let mut text = String::from("[app]\nroot = \"root\"\n\n[nanoprocess.root]\n");
    writeln!(text, "component = {root:?}").unwrap();
    text.push_str("deps = { ");
    for k in 0..n {
        if k > 0 {
            text.push_str(", ");
        }
        write!(text, "\"x:f/i{k}\" = \"c{k}\"").unwrap();
    }
    text.push_str(" }\n");
    for k in 0..n {
        write!(text, "\n[nanoprocess.c{k}]\ncomponent = {:?}\n", child(k)).unwrap();
        if fused {
            text.push_str("isolation = \"fused\"\n");
        }
    }
    let p = scene.path(if fused { "fused.toml" } else { "isolated.toml" });
    std::fs::write(&p, text).unwrap();
    p
}

/// `nanoproc <args>`, killed after `limit`: the run and how long it took.
fn measured(args: &[&str], limit: Duration) -> (Run, Duration) {
    nanoproc_within(limit, args)
}

/// The peak resident memory of `nanoproc check <manifest>`, in KiB, read from
/// `/usr/bin/time -v`; `None` where that is not available.
fn check_peak_kib(manifest: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_nanoproc"))
        .arg("check")
        .arg(manifest)
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr.lines().find_map(|l| {
        l.trim()
            .strip_prefix("Maximum resident set size (kbytes): ")
            .and_then(|n| n.parse().ok())
    })
}

// 1. Pool sizing.

/// 450 fused nanoprocesses under one store host, about the most one composite
/// holds (a composite has at most 1000 modules and components: wasmparser's
/// limit, two per leaf here): the pool's per-component slots grow to 451
/// nanoprocesses' worth. `check` and `run` must finish in bounded time and
/// memory, no worse than a small factor of the same tree isolated.
#[test]
fn four_hundred_and_fifty_fused_children_under_one_host_check_and_run_within_bounds() {
    let n = 450;
    let scene = Scene::new();
    let root = write_wasm(&scene, "root.wasm", &fanout_root(n));
    let children: Vec<String> = (0..n)
        .map(|k| write_wasm(&scene, &format!("c{k}.wasm"), &leaf(k..k + 1, 0)))
        .collect();
    let mut figures = Vec::new();
    for fused in [false, true] {
        let m = fanout_manifest(&scene, &root, n, |k| children[k].clone(), fused);
        let mm = m.display().to_string();
        let (checked, check_took) = measured(&["check", &mm], Duration::from_secs(300));
        assert_eq!(checked.code, 0, "fused={fused}: {checked:?}");
        assert!(!checked.stderr.contains("panicked"), "{checked:?}");
        let (ran, run_took) = measured(&["run", &mm], Duration::from_secs(300));
        assert_eq!(ran.code, 0, "fused={fused}: {ran:?}");
        let peak = check_peak_kib(&m);
        println!("fused={fused}: check {check_took:?}, run {run_took:?}, check peak {peak:?} KiB");
        figures.push((check_took, run_took, peak));
    }
    let (iso, fus) = (&figures[0], &figures[1]);
    assert!(
        fus.1 < iso.1 * 4 + Duration::from_secs(5),
        "a fused run took {:?}, isolated {:?}",
        fus.1,
        iso.1
    );
    if let (Some(a), Some(b)) = (iso.2, fus.2) {
        assert!(
            b < a * 4 + 256 * 1024,
            "check peak: fused {b} KiB, isolated {a} KiB"
        );
    }
}

/// A root with 1000 dependencies, all fused: the composer (wac-graph's
/// wasmparser) cannot read a component of more than 1000 instances, which the
/// root (1000 imported instances and its own) is. The same root runs isolated,
/// so the refusal must not say the component is broken, nor that an isolated
/// edge would refuse it, nor call the root fused.
#[test]
fn a_host_too_large_to_compose_is_refused_truthfully() {
    let n = 1000;
    let scene = Scene::new();
    let root = write_wasm(&scene, "root.wasm", &fanout_root(n));
    let children: Vec<String> = (0..n)
        .map(|k| write_wasm(&scene, &format!("c{k}.wasm"), &leaf(k..k + 1, 0)))
        .collect();
    let isolated = fanout_manifest(&scene, &root, n, |k| children[k].clone(), false);
    assert_eq!(check(&isolated).code, 0);
    let fused = fanout_manifest(&scene, &root, n, |k| children[k].clone(), true);
    let run = check(&fused);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    for wrong in [
        "an isolated edge would refuse it too",
        "`root` cannot be fused",
    ] {
        assert!(!run.stderr.contains(wrong), "{run:?}");
    }
}

// 2. One component file, many fused nodes: the composite holds a copy per node.

/// One 1 MiB component file serving `n` fused dependencies of one host. An
/// isolated tree reads and compiles the file once, whatever the number of
/// nanoprocesses it backs; a fused store's composite embeds one copy per fused
/// nanoprocess (`fuse.rs` registers each child's bytes as a package of its own,
/// encoded with `define_components`), so `check` reads, validates, hashes and
/// compiles `n` MiB, and holds several copies of it at once. Nothing bounds the
/// composite (`--max-component-size` bounds each file).
#[test]
fn one_file_named_by_many_fused_nodes_is_not_composed_once_per_node() {
    let n = 64;
    let scene = Scene::new();
    let root = write_wasm(&scene, "root.wasm", &fanout_root(n));
    let shared = write_wasm(&scene, "shared.wasm", &leaf(0..n, 1 << 20));
    let mut figures = Vec::new();
    for fused in [false, true] {
        let m = fanout_manifest(&scene, &root, n, |_| shared.clone(), fused);
        let mm = m.display().to_string();
        let (checked, took) = measured(&["check", &mm], Duration::from_secs(600));
        assert_eq!(checked.code, 0, "fused={fused}: {checked:?}");
        let peak = check_peak_kib(&m);
        println!("fused={fused}: check {took:?}, peak {peak:?} KiB");
        figures.push((took, peak));
    }
    let ((iso_took, iso_peak), (fus_took, fus_peak)) = (figures[0], figures[1]);
    // The composite holds at least the root and one copy of the file; what a
    // manifest adds by naming the same file again should cost little.
    assert!(
        fus_took < iso_took * 4 + Duration::from_secs(2),
        "check: fused {fus_took:?}, isolated {iso_took:?}"
    );
    if let (Some(a), Some(b)) = (iso_peak, fus_peak) {
        assert!(
            b < a + 64 * 1024,
            "check peak: fused {b} KiB, isolated {a} KiB ({n} fused nodes of one 1 MiB file)"
        );
    }
    // The file is one package of the composite, instantiated once per node: the
    // composite holds one copy of it, well within the bound a file has.
    let m = fanout_manifest(&scene, &root, n, |_| shared.clone(), true);
    let mm = m.display().to_string();
    let run = nanoproc(&["check", "--max-component-size", "8MiB", &mm]);
    assert_eq!(run.code, 0, "{run:?}");
}

// 3. The link skip: named bindings only for a component with named imports.

/// A command whose imports are `imports`.
fn command_wat(imports: &str) -> String {
    format!(
        r#"(component
  {imports}
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $inst))
)"#
    )
}

const RANDOM_TYPE: &str = r#"(instance (export "get-random-u64" (func (result u64))))"#;
const ENV_TYPE: &str = r#"(instance (export "get-arguments" (func (result (list string)))))"#;

/// Checked and run, `wat` (a root holding random and the environment) must be
/// refused by both, with `needle` in what they say, and never run.
fn refused(wat_text: &str, needle: &str) {
    let scene = Scene::new();
    let root = write_wasm(&scene, "root.wasm", wat_text);
    let m = scene.manifest(&format!(
        "[app]\nroot = \"root\"\n\n[nanoprocess.root]\ncomponent = {root:?}\ngrants.random = true\ngrants.env = [\"HOME\"]\n"
    ));
    for run in [check(&m), run_manifest(&m, &[])] {
        assert_ne!(run.code, 0, "{run:?}");
        // Unbound by nanoproc, or (where no WASI binding matches its version)
        // a dependency import no dependency serves.
        let unprovided = format!(
            "imports {}, but no dependency provides it",
            needle.trim_matches('`')
        );
        assert!(
            run.stderr.contains(needle) || run.stderr.contains(&unprovided),
            "wanted {needle:?}: {run:?}"
        );
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}

/// Named WASI imports on a component with no fused dependencies, which now
/// links named bindings only because it has them: under versions nanoproc's
/// bindings match semver-compatibly (`0.2.99`), under one they do not (`0.3.0`,
/// `0.1.0`), beside a plain import of the same interface, and implementing an
/// interface no family names (`wasi:cli/run`, an export-only interface).
#[test]
fn named_wasi_imports_are_refused_by_name_whatever_their_version() {
    for (name, implements, ty) in [
        ("r", "wasi:random/random@0.2.99", RANDOM_TYPE),
        ("r", "wasi:random/random@0.3.0", RANDOM_TYPE),
        ("r", "wasi:random/random@0.1.0", RANDOM_TYPE),
        ("e", "wasi:cli/environment@0.2.0", ENV_TYPE),
        (
            "run",
            "wasi:cli/run@0.2.0",
            r#"(instance (export "run" (func (result (result)))))"#,
        ),
    ] {
        let import = format!(r#"(import "{name}" (implements "{implements}") {ty})"#);
        refused(&command_wat(&import), &format!("`{name}`"));
        // Beside the same interface imported plainly.
        let plain = format!(r#"(import "wasi:random/random@0.2.0" {RANDOM_TYPE})"#);
        refused(
            &command_wat(&format!("{plain}\n  {import}")),
            &format!("`{name}`"),
        );
    }
}

/// A named import that a dependency serves (the manifest names it as a
/// dependency's interface): it is a dependency import under a label like any
/// other, served by the child, never bound to a WASI view.
#[test]
fn a_named_import_given_to_a_dependency_is_served_by_it_not_by_wasi() {
    let scene = Scene::new();
    let import = format!(
        r#"(import "nanoproc-p1-i0" (implements "wasi:random/random@0.2.0") {RANDOM_TYPE})"#
    );
    let root = write_wasm(&scene, "root.wasm", &command_wat(&import));
    let m = scene.manifest(&format!(
        "[app]\nroot = \"root\"\n\n[nanoprocess.root]\ncomponent = {root:?}\ngrants.random = true\ndeps = {{ \"nanoproc-p1-i0\" = \"c\" }}\n\n[nanoprocess.c]\ncomponent = {:?}\n",
        write_wasm(&scene, "c.wasm", &leaf(0..1, 0)),
    ));
    let run = check(&m);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("nanoproc-p1-i0"), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    println!("{}", run.stderr);
}
