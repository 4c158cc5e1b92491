//! `nanoproc.lock`: what was approved is recorded, and `check` and `run` notice a
//! tree that differs from it: a rebuilt component warns, a component that can ask
//! for more (or changed grants, or a changed tree) is refused, and under
//! `--locked` every difference is.

use crate::common;
use common::*;
use std::path::Path;

fn tree(scene: &Scene) -> std::path::PathBuf {
    scene.driver_tree(
        "grants.stdout = true\ngrants.random = true",
        "on-failure = \"error\"\ngrants.random = true",
        "on-failure = \"error\"",
    )
}

fn lock_file(manifest: &Path) -> std::path::PathBuf {
    manifest.with_extension("lock")
}

fn lock(manifest: &Path, update: bool) -> Run {
    let m = manifest.display().to_string();
    if update {
        nanoproc(&["lock", "--update", &m])
    } else {
        nanoproc(&["lock", &m])
    }
}

fn check_locked(manifest: &Path, locked: bool) -> Run {
    let m = manifest.display().to_string();
    if locked {
        nanoproc(&["check", "--locked", &m])
    } else {
        nanoproc(&["check", &m])
    }
}

#[test]
fn a_locked_tree_checks_and_an_unlocked_one_is_refused_under_locked() {
    let scene = Scene::new();
    let m = tree(&scene);
    // No lock: fine, unless --locked.
    assert_eq!(check_locked(&m, false).code, 0);
    let run = check_locked(&m, true);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("does not exist"), "{run:?}");

    let made = lock(&m, false);
    assert_eq!(made.code, 0, "{made:?}");
    let text = std::fs::read_to_string(lock_file(&m)).unwrap();
    assert!(text.starts_with("# "), "{text}");
    assert!(text.contains("version = 1"), "{text}");
    assert!(text.contains("[nanoprocess.\"driver/leaf\"]"), "{text}");
    assert!(text.contains("\"wasi:random/random@0.2\""), "{text}");
    assert!(text.contains("grants = { random = true }"), "{text}");
    // Written again, the same bytes: it diffs well.
    assert_eq!(lock(&m, true).code, 0);
    assert_eq!(std::fs::read_to_string(lock_file(&m)).unwrap(), text);

    assert_eq!(check_locked(&m, true).code, 0);
    let run = run_manifest(&m, &["child:random-hex"]);
    assert!(run.answer("child:random-hex").starts_with("ok"), "{run:?}");
}

#[test]
fn a_grown_surface_is_refused_with_what_is_new() {
    let scene = Scene::new();
    let m = tree(&scene);
    assert_eq!(lock(&m, false).code, 0);
    // The lock as an older version of the leaf left it: one that could not
    // open sockets. The leaf now can.
    let path = lock_file(&m);
    let text = std::fs::read_to_string(&path).unwrap();
    let start = text.find("[nanoprocess.\"driver/leaf\"]").unwrap();
    let (head, leaf) = text.split_at(start);
    let older: String = leaf
        .lines()
        .filter(|l| !l.contains("wasi:sockets/tcp@") && !l.contains("\"network\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, format!("{head}{older}")).unwrap();

    let run = check_locked(&m, false);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr
            .contains("`driver/leaf` now imports `wasi:sockets/tcp@0.2`: new capability `network`"),
        "{run:?}"
    );
    assert!(run.stderr.contains("nanoproc lock --update"), "{run:?}");
    // `run` refuses too, before anything runs.
    let run = run_manifest(&m, &["child:random-hex"]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(!run.stdout.contains("child:random-hex"), "{run:?}");
    // `lock` without --update shows the difference and keeps the file.
    let shown = lock(&m, false);
    assert_eq!(shown.code, 125, "{shown:?}");
    assert!(shown.stderr.contains("now imports"), "{shown:?}");
    // Reviewed and recorded: checks again.
    assert_eq!(lock(&m, true).code, 0);
    assert_eq!(check_locked(&m, true).code, 0);
}

#[test]
fn changed_grants_are_refused_and_a_rebuild_only_warns() {
    let scene = Scene::new();
    let m = tree(&scene);
    assert_eq!(lock(&m, false).code, 0);
    let original = std::fs::read_to_string(&m).unwrap();

    // A grant the lock did not approve.
    std::fs::write(
        &m,
        original.replace(
            "grants.random = true\n\n[nanoprocess.sib]",
            "grants.random = true\n\n[nanoprocess.sib]\ngrants.random = { seed = 3 }",
        ),
    )
    .unwrap();
    let run = check_locked(&m, false);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "`driver/sib` has grants other than those approved: grants.random = { seed = 3 } is new"
        ),
        "{run:?}"
    );
    std::fs::write(&m, &original).unwrap();

    // The leaf rebuilt: another file, the same imports (a custom section added).
    let leaf = guest("probe_leaf");
    let mut bytes = std::fs::read(&leaf).unwrap();
    // A component-level custom section: id 0, size, name "rebuilt", no payload.
    bytes.extend_from_slice(&[0, 8, 7]);
    bytes.extend_from_slice(b"rebuilt");
    let rebuilt = scene.path("leaf-rebuilt.wasm");
    std::fs::write(&rebuilt, &bytes).unwrap();
    let leaf_path = leaf.display().to_string();
    let with_rebuilt = original.replacen(&leaf_path, &rebuilt.display().to_string(), 1);
    std::fs::write(&m, &with_rebuilt).unwrap();
    let lock_text = std::fs::read_to_string(lock_file(&m)).unwrap();
    // The lock names the file as the manifest did: point it at the new one.
    std::fs::write(
        lock_file(&m),
        lock_text.replacen(&leaf_path, &rebuilt.display().to_string(), 1),
    )
    .unwrap();
    let run = check_locked(&m, false);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("`driver/leaf` has a new component"),
        "{run:?}"
    );
    // Under --locked, refused.
    let run = check_locked(&m, true);
    assert_eq!(run.code, 125, "{run:?}");
}

#[test]
fn a_malformed_lock_is_refused_with_its_name() {
    let scene = Scene::new();
    let m = tree(&scene);
    std::fs::write(
        lock_file(&m),
        "version = 1\n[nanoprocess.x]\ncomponent = 3\n",
    )
    .unwrap();
    let run = check_locked(&m, false);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("nanoproc.lock"), "{run:?}");
}

/// Which child serves which import is part of what was approved: swapped, a
/// call meant for one child would reach another, holding other grants.
#[test]
fn swapped_wiring_is_refused() {
    let scene = Scene::new();
    let m = tree(&scene);
    assert_eq!(lock(&m, false).code, 0);
    let text = std::fs::read_to_string(&m).unwrap();
    let swapped = text.replace(
        "deps = { \"test:probe/probe\" = \"leaf\", \"test:probe/sibling\" = \"sib\" }",
        "deps = { \"test:probe/probe\" = \"sib\", \"test:probe/sibling\" = \"leaf\" }",
    );
    assert_ne!(swapped, text);
    std::fs::write(&m, swapped).unwrap();
    let run = check_locked(&m, false);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("serves its parent through"), "{run:?}");
}

/// Fusing an approved isolated edge (or isolating a fused one) keeps every
/// capability but changes what a failure or a limit of that dependency does:
/// `check` refuses it against the lock until it is approved again.
#[test]
fn fusing_an_approved_edge_is_refused_until_it_is_approved() {
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.random = true",
        "grants.random = true",
        "",
    );
    assert_eq!(lock(&m, false).code, 0);
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace(
            "[nanoprocess.leaf]\n",
            "[nanoprocess.leaf]\nisolation = \"fused\"\n",
        ),
    )
    .unwrap();
    let run = check_locked(&m, false);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "`driver/leaf` runs fused into its parent's store, where the lock approved an isolated edge"
        ),
        "{run:?}"
    );
    // Approved, it is recorded, and checks.
    assert_eq!(lock(&m, true).code, 0);
    let locked = std::fs::read_to_string(lock_file(&m)).unwrap();
    assert!(locked.contains("isolation = \"fused\""), "{locked}");
    assert_eq!(check_locked(&m, true).code, 0);
}
