//! Helpers for the end-to-end tests: real guest components (built from `guests/` by
//! xtask), manifests written into temporary directories, and the real `nanoproc`
//! binary.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use xtask::guest;

pub mod http_server;
pub mod net;

/// A scratch directory holding a manifest and whatever host files a test grants.
pub struct Scene {
    pub dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("creating a temporary directory"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating its directories) and returns its path.
    pub fn file(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Writes `nanoproc.toml`. `{name}` placeholders such as `{probe_leaf}` are
    /// replaced by the path of that guest component.
    pub fn manifest(&self, text: &str) -> PathBuf {
        let mut text = text.to_string();
        for name in GUESTS {
            let key = format!("{{{name}}}");
            if text.contains(&key) {
                text = text.replace(&key, &guest(name).display().to_string());
            }
        }
        let p = self.path("nanoproc.toml");
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Scene {
    /// The tree most tests use: the root `driver` (probe_driver) imports `probe`
    /// from `leaf` and `sibling` from `sib` (both probe_leaf). Each argument is the
    /// rest of that nanoprocess's table (grants, on-failure, ...), one key a line.
    pub fn driver_tree(&self, root: &str, leaf: &str, sib: &str) -> PathBuf {
        self.manifest(&format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
{root}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
{leaf}

[nanoprocess.sib]
component = "{{probe_leaf}}"
{sib}
"#
        ))
    }
}

impl Scene {
    /// The gallery example in a scene of its own (its manifest, photos and
    /// built components), so that runs do not write into the repository's photos.
    pub fn gallery() -> Scene {
        let repo = xtask::repo_root().join("examples").join("gallery");
        let scene = Scene::new();
        std::fs::copy(repo.join("nanoproc.toml"), scene.path("nanoproc.toml")).unwrap();
        scene.mkdir("photos/thumbs");
        for photo in ["sunset.pgm", "forest.pgm", "city.pgm"] {
            std::fs::copy(
                repo.join("photos").join(photo),
                scene.path(&format!("photos/{photo}")),
            )
            .unwrap();
        }
        scene.mkdir("build");
        for (name, file) in xtask::DEMO_COMPONENTS {
            std::fs::copy(guest(name), scene.path(&format!("build/{file}"))).unwrap();
        }
        scene
    }

    /// `driver_tree` with the root granted stdout (and `root_extra`), and both
    /// children's failures reaching the driver as errors; `leaf` is the rest of
    /// the leaf's table.
    pub fn stdout_tree(&self, root_extra: &str, leaf: &str) -> PathBuf {
        self.driver_tree(
            &format!("grants.stdout = true\n{root_extra}"),
            &format!("on-failure = \"error\"\n{leaf}"),
            "on-failure = \"error\"",
        )
    }
}

const GUESTS: [&str; 19] = [
    "gallery_app",
    "gallery_thumbnailer",
    "gallery_idgen",
    "gallery_analytics",
    "gallery_meta",
    "probe_leaf",
    "probe_mid",
    "probe_driver",
    "probe_cmd",
    "types_child",
    "types_parent",
    "types_child_wrong",
    "res_child",
    "res_parent",
    "res_child_wrong",
    "res_mid",
    "res_top",
    "handles_reader",
    "handles_driver",
];

/// The result of one `nanoproc` invocation.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The outcome the probe driver printed for one of its arguments.
    pub fn answer(&self, arg: &str) -> &str {
        let prefix = format!("{arg} => ");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no answer for {arg:?} in:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    pub fn assert_ok(&self, arg: &str) -> &str {
        let a = self.answer(arg);
        assert!(
            a.starts_with("ok:"),
            "{arg} should succeed, got: {a}\nstderr:\n{}",
            self.stderr
        );
        a
    }

    pub fn assert_err(&self, arg: &str) -> &str {
        let a = self.answer(arg);
        assert!(a.starts_with("err:"), "{arg} should fail, got: {a}");
        a
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn nanoproc(args: &[&str]) -> Run {
    nanoproc_env(args, &[])
}

pub fn nanoproc_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nanoproc"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("running nanoproc");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// What nanoproc itself may use on top of the guests' granted memory: the engine,
/// compiled code, stores and stacks. Measured at 34-42 MiB for a debug build on the
/// CI machine; the bound leaves room for a different build or allocator.
pub const HOST_OVERHEAD_KIB: u64 = 96 * 1024;

/// The probe command component (`guests/probe-cmd`), as an argument.
pub fn cmd() -> String {
    guest("probe_cmd").display().to_string()
}

/// nanoproc's peak resident memory, from the line `--stats` prints.
pub fn peak_kib(run: &Run) -> u64 {
    run.stderr
        .lines()
        .find_map(|l| l.strip_prefix("nanoproc: peak resident memory "))
        .and_then(|l| l.strip_suffix(" KiB"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory in {run:?}"))
}

/// Starts `nanoproc` with `args`, no stdin, and its stdout and stderr piped.
pub fn spawn_piped(args: &[&str]) -> std::process::Child {
    use std::process::Stdio;
    Command::new(env!("CARGO_BIN_EXE_nanoproc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nanoproc")
}

/// Runs `nanoproc` with `args`, killing it and failing the test if it has not
/// ended within `limit`: for what used to hang or take forever.
pub fn nanoproc_within(limit: std::time::Duration, args: &[&str]) -> (Run, std::time::Duration) {
    let started = std::time::Instant::now();
    let mut child = spawn_piped(args);
    // The pipes are drained on their own threads, so that a large output cannot
    // block the child while this one waits.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nanoproc {args:?} did not end within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (run, started.elapsed())
}

/// Runs a manifest with arguments for its root.
pub fn run_manifest(manifest: &Path, root_args: &[&str]) -> Run {
    let m = manifest.display().to_string();
    let mut args = vec!["run", m.as_str(), "--"];
    args.extend_from_slice(root_args);
    nanoproc(&args)
}

/// The lines of an `--audit` file, each parsed as JSON.
pub fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no audit log at {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Runs `manifest` with `args` for its root and the audit written to the scene's
/// `audit.jsonl` (a log of an earlier run removed first); the run and the log's
/// lines, none if the run wrote no log.
pub fn audited(scene: &Scene, manifest: &Path, args: &[&str]) -> (Run, Vec<serde_json::Value>) {
    let log = scene.path("audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let (l, m) = (log.display().to_string(), manifest.display().to_string());
    let mut all = vec!["run", "--audit", l.as_str(), m.as_str(), "--"];
    all.extend_from_slice(args);
    let run = nanoproc(&all);
    let lines = if log.exists() {
        audit_lines(&log)
    } else {
        Vec::new()
    };
    (run, lines)
}

pub fn check(manifest: &Path) -> Run {
    nanoproc(&["check", &manifest.display().to_string()])
}

/// Every file below `dir` with its contents, for "nothing changed" assertions.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let ty = entry.file_type().unwrap();
            let p = entry.path();
            if ty.is_dir() {
                stack.push(p.clone());
                out.push((p, b"<dir>".to_vec()));
            } else if ty.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                out.push((p, target.to_string_lossy().as_bytes().to_vec()));
            } else {
                let data = std::fs::read(&p).unwrap();
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}
