//! A host's own stdio for a tree, through the library, with real guests: stdin
//! from bytes, stdout and stderr captured (bounded) or handed to a callback, for
//! the root and for a dependency whose grant sends its output the same way; the
//! grants still deciding; and the audit's decisions reaching a callback and
//! `tracing`.

use nanoproc_runtime::{
    AUDIT_TRACING_TARGET, Audit, Captured, Decision, Event, HostIo, Output, RunError, RunOptions,
    Stdin,
};
use std::path::{Path, PathBuf};

use crate::common;
use common::{driver_tree, plan};
use std::sync::{Arc, Mutex};

/// `probe_cmd` as the root `cmd`, with `grants` (TOML lines).
fn cmd_manifest(dir: &Path, grants: &str) -> PathBuf {
    let manifest = dir.join("nanoproc.toml");
    std::fs::write(
        &manifest,
        format!(
            "[app]\nroot = \"cmd\"\n\n[nanoprocess.cmd]\ncomponent = \"{}\"\n{grants}\n",
            xtask::guest("probe_cmd").display()
        ),
    )
    .unwrap();
    manifest
}

/// `probe_driver` as `driver`, calling `leaf` and `sib` (both `probe_leaf`).
fn driver_manifest(dir: &Path, driver: &str, leaf: &str, sib: &str) -> PathBuf {
    driver_tree(dir, ("probe_driver", "probe_leaf"), driver, leaf, sib)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn stdin_comes_from_bytes_and_stdout_and_stderr_are_captured() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(
        dir.path(),
        "grants.stdin = true\ngrants.stdout = true\ngrants.stderr = true",
    );
    let (out, err) = (Captured::default(), Captured::default());
    let exit = plan(&m, &["stdin", "stderr:to the host's stderr"])
        .run_with(&RunOptions {
            io: HostIo {
                stdin: Stdin::bytes("from the host"),
                stdout: Output::Capture(out.clone()),
                stderr: Output::Capture(err.clone()),
            },
            ..Default::default()
        })
        .expect("it runs");
    assert_eq!(exit.code, 0);
    assert_eq!(
        text(out.contents()),
        "stdin => ok: from the host\nstderr:to the host's stderr => ok: printed\n"
    );
    assert_eq!(text(err.take()), "to the host's stderr\n");
    assert_eq!((out.cut(), err.cut(), err.len()), (0, 0, 0));
}

#[test]
fn a_flood_beyond_the_capture_bound_is_cut_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(dir.path(), "grants.stdout = true");
    let limit = 64 << 10;
    let out = Captured::new(limit);
    let exit = plan(&m, &["flood:64"])
        .run_with(&RunOptions {
            io: HostIo {
                stdout: Output::Capture(out.clone()),
                ..Default::default()
            },
            ..Default::default()
        })
        .expect("it runs");
    assert_eq!(exit.code, 0, "the guest's writes all succeeded");
    let last_line = "flood:64 => ok: wrote 67108864 bytes\n";
    assert_eq!(out.len(), limit, "no more than the bound is held");
    assert_eq!(
        out.cut(),
        (64 << 20) + last_line.len() as u64 - limit as u64,
        "everything beyond the bound is counted"
    );
    assert!(out.contents().iter().all(|&b| b == b'x' || b == b'\n'));
    let (kept, cut) = out.take_with_cut();
    assert_eq!((kept.len(), out.len(), out.cut()), (limit, 0, 0));
    assert!(cut > 0);
}

#[test]
fn an_output_limit_still_stops_a_flood_into_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(
        dir.path(),
        "grants.stdout = true\ngrants.output = \"1 MiB\"",
    );
    let out = Captured::new(16 << 20);
    let outcome = plan(&m, &["flood:8"]).run_with(&RunOptions {
        io: HostIo {
            stdout: Output::Capture(out.clone()),
            ..Default::default()
        },
        ..Default::default()
    });
    match outcome {
        Err(RunError::Trap {
            message,
            limit_exceeded,
            ..
        }) => {
            assert!(limit_exceeded, "{message}");
            assert!(message.contains("output limit of 1 MiB"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(out.len() <= 1 << 20, "{}", out.len());
}

/// What output callbacks were given: the stream and the bytes of each call.
type Pieces = Arc<Mutex<Vec<(&'static str, Vec<u8>)>>>;

#[test]
fn a_callback_receives_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(dir.path(), "grants.stdout = true\ngrants.stderr = true");
    let seen: Pieces = Arc::default();
    let (to_out, to_err) = (seen.clone(), seen.clone());
    let exit = plan(&m, &["stdout:one", "stderr:two"])
        .run_with(&RunOptions {
            io: HostIo {
                stdout: Output::callback(move |b: &[u8]| {
                    to_out.lock().unwrap().push(("out", b.to_vec()))
                }),
                stderr: Output::callback(move |b: &[u8]| {
                    to_err.lock().unwrap().push(("err", b.to_vec()))
                }),
                ..Default::default()
            },
            ..Default::default()
        })
        .expect("it runs");
    assert_eq!(exit.code, 0);
    let seen = seen.lock().unwrap();
    let joined = |stream: &str| -> String {
        seen.iter()
            .filter(|(s, _)| *s == stream)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect()
    };
    assert_eq!(
        joined("out"),
        "one\nstdout:one => ok: printed\nstderr:two => ok: printed\n"
    );
    assert_eq!(joined("err"), "two\n");
}

#[test]
fn without_the_stdout_grant_a_write_is_refused_and_nothing_is_captured() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(dir.path(), "grants.stderr = true");
    let (out, err) = (Captured::default(), Captured::default());
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    let audit = Audit::new().with_callback(move |e: &Event| seen.lock().unwrap().push(e.clone()));
    let outcome = plan(&m, &["stdout:not granted"]).run_with(&RunOptions {
        audit: audit.clone(),
        io: HostIo {
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        ..Default::default()
    });
    // Rust's `println!` panics when the write fails.
    assert!(matches!(outcome, Err(RunError::Trap { .. })), "{outcome:?}");
    assert!(out.is_empty() && out.cut() == 0, "{:?}", out.contents());
    let stderr = text(err.contents());
    assert!(stderr.contains("failed printing to stdout"), "{stderr}");

    let events = events.lock().unwrap();
    let refused: Vec<&Event> = events
        .iter()
        .filter(|e| e.decision == Decision::Refused)
        .collect();
    assert!(!refused.is_empty(), "{events:?}");
    let e = refused[0];
    assert_eq!(&*e.nanoprocess, "cmd");
    assert_eq!(e.capability, "stdout");
    assert_eq!(e.operation, "wasi:io/streams.output-stream.write (stdout)");
    assert_eq!(e.target, None);
    assert_eq!(e.reason.as_deref(), Some("not granted"));
    // The callback saw what the record kept, and uses as well (stderr's first
    // write), which a callback asks for.
    assert_eq!(audit.refusals().len(), refused.len());
    assert!(
        events
            .iter()
            .any(|e| e.capability == "stderr" && e.decision == Decision::Allowed),
        "{events:?}"
    );
}

#[test]
fn a_dependencys_granted_output_reaches_the_same_capture_and_reads_the_same_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let m = driver_manifest(
        dir.path(),
        "grants.stdout = true\ngrants.stdin = true",
        "grants.stdout = \"prefix\"\ngrants.stdin = true",
        "",
    );
    let out = Captured::default();
    let exit = plan(
        &m,
        &[
            "child:stdout:from the leaf",
            "child:stdin",
            "sibling:stdout:never seen",
        ],
    )
    .run_with(&RunOptions {
        io: HostIo {
            stdin: Stdin::bytes("the host's input"),
            stdout: Output::Capture(out.clone()),
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("it runs");
    assert_eq!(exit.code, 0);
    let captured = text(out.contents());
    let lines: Vec<&str> = captured.lines().collect();
    assert!(lines.contains(&"[driver/leaf] from the leaf"), "{captured}");
    assert!(
        lines.contains(&"child:stdout:from the leaf => ok: printed"),
        "{captured}"
    );
    assert!(
        lines.contains(&"child:stdin => ok: the host's input"),
        "{captured}"
    );
    // The sibling holds no stdout: refused, and nothing of it captured.
    assert!(!captured.contains("\nnever seen"), "{captured}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("sibling:stdout:never seen => err:")),
        "{captured}"
    );
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn refusals_go_through_tracing() {
    let dir = tempfile::tempdir().unwrap();
    let m = cmd_manifest(dir.path(), "grants.stdout = true");
    let buffer = Buffer::default();
    let writer = buffer.clone();
    // The subscriber is this thread's, and the run stays on it: a thread with the
    // stack a run needs, so that the runtime starts no thread of its own.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                // Plain text whatever features the workspace unifies (the CLI turns on ANSI).
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::with_default(subscriber, || {
                let exit = plan(&m, &["stdin"])
                    .run_with(&RunOptions {
                        io: HostIo {
                            stdout: Output::Capture(Captured::default()),
                            ..Default::default()
                        },
                        ..Default::default()
                    })
                    .expect("it runs");
                assert_eq!(exit.code, 0);
            })
        })
        .unwrap()
        .join()
        .unwrap();
    let log = text(buffer.0.lock().unwrap().clone());
    let line = log
        .lines()
        .find(|l| l.contains(AUDIT_TRACING_TARGET) && l.contains("refused"))
        .unwrap_or_else(|| panic!("no refusal in:\n{log}"));
    for field in [
        "WARN",
        "nanoprocess=\"cmd\"",
        "capability=\"stdin\"",
        "operation=\"wasi:io/streams.input-stream.read (stdin)\"",
        "decision=\"refused\"",
        "reason=\"not granted\"",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    // Uses are at TRACE, below this subscriber's level.
    assert!(!log.contains("decision=\"allowed\""), "{log}");
}
