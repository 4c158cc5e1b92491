//! What a check tells a progress display, through the library: each distinct
//! component file compiled once (however many nodes, or names, it has), a cache
//! hit as a lone `Finished`, and errors in the order of the nodes however the
//! files were compiled in parallel.
//!
//! The compile cache is chosen from the environment when a `Runtime` is made, so
//! this binary has one test, which sets the environment itself.

use nanoproc_runtime::{CheckError, CompileProgress, Runtime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Steps = Arc<Mutex<Vec<CompileProgress>>>;

fn recording(runtime: Runtime) -> (Runtime, Steps) {
    let steps: Steps = Arc::default();
    let kept = steps.clone();
    let runtime = runtime
        .with_progress(move |step: &CompileProgress| kept.lock().unwrap().push(step.clone()));
    (runtime, steps)
}

/// The files each kind of step named, sorted.
fn started(steps: &Steps) -> Vec<(PathBuf, u64)> {
    let mut out: Vec<_> = steps
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            CompileProgress::Started { component, bytes } => Some((component.clone(), *bytes)),
            CompileProgress::Finished { .. } => None,
        })
        .collect();
    out.sort();
    out
}

fn finished(steps: &Steps) -> Vec<(PathBuf, bool)> {
    let mut out: Vec<_> = steps
        .lock()
        .unwrap()
        .iter()
        .filter_map(|s| match s {
            CompileProgress::Finished {
                component, cached, ..
            } => Some((component.clone(), *cached)),
            CompileProgress::Started { .. } => None,
        })
        .collect();
    out.sort();
    out
}

/// The probe tree: `driver` with `leaf` and `sib`, both the leaf component, `sib`
/// naming it through a link to its directory (the same file by another name).
fn probe_tree(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let driver = xtask::guest("probe_driver");
    let leaf = xtask::guest("probe_leaf");
    std::os::unix::fs::symlink(leaf.parent().unwrap(), dir.join("link")).unwrap();
    let manifest = dir.join("nanoproc.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}

[nanoprocess.leaf]
component = "{}"

[nanoprocess.sib]
component = "link/probe_leaf.wasm"
"#,
            driver.display(),
            leaf.display()
        ),
    )
    .unwrap();
    (manifest, driver, leaf)
}

#[test]
fn each_file_is_compiled_once_and_said_so_and_errors_keep_the_nodes_order() {
    let scene = tempfile::tempdir().unwrap();
    let (manifest, driver, leaf) = probe_tree(scene.path());
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();

    // SAFETY: the only test of this binary; no other thread reads the environment.
    unsafe { std::env::set_var("NANOPROC_CACHE", "off") };
    let (runtime, steps) = recording(Runtime::new().unwrap());
    runtime
        .check_manifest(&manifest, &[])
        .expect("the tree checks");
    assert_eq!(
        started(&steps),
        [(driver.clone(), size(&driver)), (leaf.clone(), size(&leaf))],
        "the leaf's file is compiled once for its two nodes and two names"
    );
    assert_eq!(
        finished(&steps),
        [(driver.clone(), false), (leaf.clone(), false)]
    );

    // With a cache: compiled once, then a lone `Finished` from the cache.
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: as above.
    unsafe {
        std::env::remove_var("NANOPROC_CACHE");
        std::env::set_var("NANOPROC_CACHE_DIR", cache.path());
    }
    let (runtime, steps) = recording(Runtime::new().unwrap());
    runtime
        .check_manifest(&manifest, &[])
        .expect("the tree checks");
    assert_eq!(started(&steps).len(), 2, "{:?}", steps.lock().unwrap());
    steps.lock().unwrap().clear();
    runtime
        .check_manifest(&manifest, &[])
        .expect("the tree checks");
    assert!(started(&steps).is_empty(), "{:?}", steps.lock().unwrap());
    assert_eq!(finished(&steps), [(driver, true), (leaf, true)]);

    // Files that do not compile: reported in the order of the nodes, every time,
    // whichever thread finished first.
    let nodes = ["a", "b", "c", "d", "e"];
    let mut text = String::from("[app]\nroot = \"a\"\n");
    for (i, name) in nodes.iter().enumerate() {
        // A component header, then bytes that are no section.
        let file = scene.path().join(format!("{name}.wasm"));
        let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
        bytes.extend(std::iter::repeat_n(0xff, 64 * (i + 1)));
        std::fs::write(&file, bytes).unwrap();
        text.push_str(&format!(
            "\n[nanoprocess.{name}]\ncomponent = \"{name}.wasm\"\n"
        ));
        if let Some(next) = nodes.get(i + 1) {
            text.push_str(&format!("deps = {{ \"x:y/{next}\" = \"{next}\" }}\n"));
        }
    }
    let broken = scene.path().join("broken.toml");
    std::fs::write(&broken, text).unwrap();
    for _ in 0..5 {
        let Err(CheckError::Refused(errors)) = runtime.check_manifest(&broken, &[]) else {
            panic!("broken components were not refused");
        };
        let named: Vec<String> = errors
            .0
            .iter()
            .filter(|e| e.message.contains("is not a component nanoproc can run"))
            .map(|e| e.message.split(':').next().unwrap().to_string())
            .collect();
        assert_eq!(
            named,
            ["a", "a/b", "a/b/c", "a/b/c/d", "a/b/c/d/e"],
            "{errors}"
        );
    }
}
