//! The compile cache: a second run loads what the first compiled; a corrupt or
//! foreign file is never loaded (it is replaced); a directory others may write to
//! is not used.

use crate::common;
use common::*;
use std::os::unix::fs::PermissionsExt;

fn cached_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    files.sort();
    files
}

fn run_cached(dir: &std::path::Path) -> Run {
    let cmd = guest("probe_cmd").display().to_string();
    nanoproc_env(
        &["run", &cmd, "--", "args"],
        &[("NANOPROC_CACHE_DIR", &dir.display().to_string())],
    )
}

#[test]
fn a_second_run_reuses_and_a_damaged_entry_is_replaced() {
    let scene = Scene::new();
    let dir = scene.path("cache");
    let first = run_cached(&dir);
    assert_eq!(first.code, 0, "{first:?}");
    let files = cached_files(&dir);
    assert_eq!(files.len(), 1, "one artifact for one component: {files:?}");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the cache directory is private: {mode:o}");
    let artifact = std::fs::read(&files[0]).unwrap();

    let second = run_cached(&dir);
    assert_eq!(second.code, 0, "{second:?}");
    assert_eq!(cached_files(&dir), files);
    assert_eq!(
        std::fs::read(&files[0]).unwrap(),
        artifact,
        "reused, not rewritten"
    );

    // Damage the entry in two ways: each time the run still works, from a fresh
    // compile, and the entry is whole again afterwards.
    for damage in [artifact[..artifact.len() / 2].to_vec(), {
        let mut flipped = artifact.clone();
        let at = flipped.len() - 100;
        flipped[at] ^= 0xff;
        flipped
    }] {
        std::fs::write(&files[0], &damage).unwrap();
        let run = run_cached(&dir);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.answer("args"), "ok: probe_cmd args");
        assert_eq!(
            std::fs::read(&files[0]).unwrap(),
            artifact,
            "the entry was replaced"
        );
    }
}

#[test]
fn an_unsafe_or_disabled_cache_is_not_used() {
    let scene = Scene::new();
    let open = scene.mkdir("shared-cache");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = run_cached(&open);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        cached_files(&open).is_empty(),
        "a directory others may write to is not used"
    );

    let dir = scene.path("off");
    let cmd = guest("probe_cmd").display().to_string();
    let run = nanoproc_env(
        &["run", &cmd, "--", "args"],
        &[
            ("NANOPROC_CACHE_DIR", &dir.display().to_string()),
            ("NANOPROC_CACHE", "off"),
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(cached_files(&dir).is_empty());
}

#[test]
fn another_components_entry_moved_into_place_is_not_loaded() {
    // Whoever can write the cache directory (a guest granted it in an earlier run,
    // say) copies the artifact of another component over this one's entry. The old
    // cache checked only a checksum stored in the same file, and ran the substitute.
    let scene = Scene::new();
    let dir = scene.path("cache");
    assert_eq!(run_cached(&dir).code, 0);
    let mine = cached_files(&dir);
    assert_eq!(mine.len(), 1);
    let other = guest("handles_driver").display().to_string();
    let env = [("NANOPROC_CACHE_DIR", dir.display().to_string())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Compiled (and cached) before it is refused for its unmet import.
    let _ = nanoproc_env(&["run", &other, "--", "read:/x"], &env);
    let theirs: Vec<_> = cached_files(&dir)
        .into_iter()
        .filter(|f| !mine.contains(f))
        .collect();
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let substitute = std::fs::read(&theirs[0]).unwrap();
    std::fs::write(&mine[0], &substitute).unwrap();

    let run = run_cached(&dir);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("args"), "ok: probe_cmd args");
    assert_ne!(
        std::fs::read(&mine[0]).unwrap(),
        substitute,
        "the entry was recompiled and replaced"
    );
}

#[test]
fn a_grant_over_the_cache_leaves_it_unused_and_finds_no_key_there() {
    let scene = Scene::new();
    let dir = scene.path("cache");
    assert_eq!(run_cached(&dir).code, 0);
    let before = cached_files(&dir);
    assert_eq!(before.len(), 1);
    // The key is not a file: the cache directory holds only entries.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(names, before, "nothing but entries on disk");

    // The guest is granted the directory that holds the cache: the run compiles
    // afresh and says so, and whatever the guest does there is never loaded.
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("{}::/s", scene.dir.path().display());
    let entry = format!(
        "/s/cache/{}",
        before[0].file_name().unwrap().to_string_lossy()
    );
    let overwrite = format!("write:{entry}=forged");
    let run = nanoproc_env(
        &["run", "--dir", &grant, &cmd, "--", &overwrite],
        &[("NANOPROC_CACHE_DIR", &dir.display().to_string())],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("not using the compile cache"),
        "{run:?}"
    );
    run.assert_ok(&overwrite);
    let next = run_cached(&dir);
    assert_eq!(next.code, 0, "{next:?}");
    assert_eq!(next.answer("args"), "ok: probe_cmd args");
}
