//! Red-team tests of a host's in-memory stdio and audit callbacks (`HostIo`,
//! `Captured`, `Output::Callback`, `Audit::with_callback`, the `nanoproc::audit`
//! tracing events), each attack made by a real hostile guest
//! (guests/redteam-io-driver as the root, guests/redteam-io-leaf as its
//! dependencies), which writes exactly the bytes and the writes it is told to
//! through the raw WASI streams.
//!
//! Each test is an attack: one that held, or one the review found and that is now
//! fixed, asserting the behaviour the fix gives.

use nanoproc_runtime::{
    AUDIT_TRACING_TARGET, Audit, Captured, Decision, Event, HostIo, Instances, Output, Plan,
    PluginOptions, RunOptions, Runtime, Stdin,
};
use std::path::{Path, PathBuf};

use crate::common;
use common::{check, driver_tree, plan};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The audit's cut of a guest's text (`audit::FIELD_MAX`), and room for its marker.
const FIELD_MAX: usize = 1024;
const MARKER: usize = 64;

/// About how many bytes a prefixed write gathers into one piece (`stdio::PIECE`).
const PIECE: usize = 64 << 10;

/// The driver as the root, importing `leaf` (as `probe`) and `sib` (as
/// `sibling`), both the red-team leaf, with these grants (TOML lines) and, for
/// the leaf, `leaf_extra` (more keys of its table, e.g. `restart`).
fn manifest(dir: &Path, driver: &str, leaf: &str, leaf_extra: &str, sib: &str) -> PathBuf {
    let leaf = format!("{leaf_extra}\n{leaf}");
    driver_tree(
        dir,
        ("redteam_io_driver", "redteam_io_leaf"),
        driver,
        &leaf,
        sib,
    )
}

/// Runs `f` on a thread with a run's stack and fails, rather than hangs, if it
/// has not returned within `secs`: a deadlock or a read that never ends is a
/// failure of the test, not a stuck CI job.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(value)) => value,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the run did not end within {secs} s: blocked or deadlocked"),
    }
}

/// Runs `plan` with `io` (and `audit`), on a watched thread; the root must end
/// with 0.
fn run(plan: Plan, io: HostIo, audit: Audit) {
    within(300, move || {
        let exit = plan
            .run_with(&RunOptions {
                io,
                audit,
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("the run ends: {e:?}"));
        assert_eq!(exit.code, 0);
    })
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

// --- Forging another nanoprocess's line in a shared capture -----------------

/// FINDING (low): the line state of prefixed output is kept per writer (each
/// nanoprocess's stream), not per destination. A child that leaves a line
/// unfinished makes its parent's next line continue the child's line
/// (attributing it to the child), and once the parent has ended that line the
/// child is at the start of a line in the capture but believes it is in the
/// middle of its own: its next line gets no prefix, and can be any line, such as
/// one with its parent's prefix. docs/manifest.md says a prefix is "a label for
/// the reader, not a boundary", but here it is the runtime itself that starts
/// the forged line without the writer's label.
#[test]
fn a_childs_unfinished_line_does_not_let_it_write_a_line_with_its_parents_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = \"prefix\"\ngrants.stderr = true",
        "grants.stdout = \"prefix\"",
        "",
        "",
    );
    let (out, err) = (Captured::default(), Captured::default());
    run(
        plan(
            &m,
            &[
                "child:out:unfinished",
                "out:the parent's own line\\n",
                "child:out:[driver] forged by the child\\n",
            ],
        ),
        HostIo {
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    let captured = text(out.contents());
    let report = format!("captured:\n{captured}\nstderr:\n{}", text(err.contents()));
    // Today: "[driver/leaf] unfinished[driver] the parent's own line\n[driver] forged by the child\n".
    assert!(
        captured
            .lines()
            .any(|l| l == "[driver] the parent's own line"),
        "the parent's line is a line of its own: {report}"
    );
    for line in captured.lines().filter(|l| l.contains("forged")) {
        assert!(
            line.starts_with("[driver/leaf] "),
            "every line the child wrote carries its prefix: {line:?} in {report}"
        );
    }
}

/// FINDING (low), the same desynchronisation with one nanoprocess: a host that
/// captures stdout and stderr into one buffer (a combined log) lets a
/// nanoprocess holding both end a line on one stream while the other believes
/// it is mid-line, and write an unprefixed line with anyone's prefix.
#[test]
fn one_nanoprocess_cannot_forge_a_line_through_its_two_streams_into_one_capture() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = \"prefix\"\ngrants.stderr = \"prefix\"",
        "grants.stdout = \"prefix\"\ngrants.stderr = \"prefix\"",
        "",
        "",
    );
    let both = Captured::default();
    run(
        plan(
            &m,
            &[
                "quiet",
                "child:out:x",
                "child:err:y\\n",
                "child:out:[driver] forged by the child\\n",
            ],
        ),
        HostIo {
            stdout: Output::Capture(both.clone()),
            stderr: Output::Capture(both.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    let captured = text(both.contents());
    // Today: "[driver/leaf] x[driver/leaf] y\n[driver] forged by the child\n".
    for line in captured.lines().filter(|l| l.contains("forged")) {
        assert!(
            line.starts_with("[driver/leaf] "),
            "every line the child wrote carries its prefix: {line:?} in\n{captured}"
        );
    }
}

// --- The size of what a callback is given -----------------------------------

/// FINDING (low): docs/embedding.md and `Output::Callback` promise that "a very
/// large write comes in pieces of about 64 KiB". wasmtime-wasi does not hold a
/// guest's `write` to `check-write`'s permit, and neither does nanoproc: one
/// `write` of 8 MiB reaches the callback as one 8 MiB piece, unprefixed or as
/// one long prefixed line (a chunk of `PIECE` or more is written whole).
#[test]
fn a_huge_single_write_reaches_a_callback_in_pieces_of_about_64_kib() {
    let mut largest = Vec::new();
    for mode in ["true", "\"prefix\""] {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(dir.path(), &format!("grants.stdout = {mode}"), "", "", "");
        let pieces: Arc<Mutex<Vec<usize>>> = Arc::default();
        let seen = pieces.clone();
        run(
            plan(&m, &["big:8192"]),
            HostIo {
                stdout: Output::callback(move |b: &[u8]| seen.lock().unwrap().push(b.len())),
                ..Default::default()
            },
            Audit::new(),
        );
        let pieces = pieces.lock().unwrap();
        let total: usize = pieces.iter().sum();
        assert!(total >= 8 << 20, "{mode}: all of it arrived ({total})");
        largest.push((mode, pieces.iter().max().copied().unwrap_or(0)));
    }
    // Today: [("true", 8388608), ("\"prefix\"", 8388608)] (the prefix a piece of its own).
    assert!(
        largest.iter().all(|&(_, n)| n <= 2 * PIECE),
        "the largest piece given to the callback, by mode: {largest:?}"
    );
}

// --- Guest text in what the host logs ----------------------------------------

/// A lookup of `name` by the root, which holds no network: refused, its name the
/// event's target.
fn refused_lookup(name: &str) -> (Vec<Event>, Audit) {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "", "", "", "");
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let seen = events.clone();
    let audit = Audit::new().with_callback(move |e: &Event| seen.lock().unwrap().push(e.clone()));
    run(
        plan(&m, &[&format!("lookup:{name}")]),
        HostIo::default(),
        audit.clone(),
    );
    let events = events.lock().unwrap().clone();
    (events, audit)
}

fn network_refusal(events: &[Event]) -> &Event {
    events
        .iter()
        .find(|e| e.capability == "network" && e.decision == Decision::Refused)
        .unwrap_or_else(|| panic!("no network refusal in {events:?}"))
}

/// FINDING (low/medium): `Event`'s `Display` writes the guest's target and
/// reason as they are, and docs/embedding.md's example logs each event with it
/// (`log::warn!("{event}")`). A guest looks up a name holding an OSC title
/// sequence and a clear-screen: the host's log (or terminal) gets them raw.
/// The tracing events escape the same text (the test below); `Display` should
/// too.
#[test]
fn an_audit_events_display_escapes_a_guests_control_characters() {
    let (events, _) = refused_lookup("\\e]0;owned\\a\\e[2J\\e[31mevil.test");
    let event = network_refusal(&events);
    assert!(
        event.target.as_deref().unwrap_or("").contains('\u{1b}'),
        "the guest's escape reached the event: {event:?}"
    );
    let shown = format!("{event}");
    assert!(
        !shown.chars().any(char::is_control),
        "what `log::warn!(\"{{event}}\")` writes holds no control character: {shown:?}"
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

/// Held: a guest's huge name with escapes reaches the callback cut to 1 KiB and
/// `tracing` cut and escaped.
#[test]
fn the_audit_callback_and_tracing_get_a_guests_text_cut_and_escaped() {
    let name = format!("\\e[2J\\e]0;owned\\a{}.test", "a".repeat(200_000));
    // The callback.
    let (events, audit) = refused_lookup(&name);
    let event = network_refusal(&events);
    let target = event.target.as_deref().unwrap();
    assert!(target.len() <= FIELD_MAX + MARKER, "{}", target.len());
    assert!(target.contains("bytes cut]"), "{target}");
    assert_eq!(audit.refusals().len(), 1);

    // tracing, on this thread's subscriber.
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "", "", "", "");
    let plan = plan(&m, &[&format!("lookup:{name}")]);
    within(300, move || {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let exit = plan.run_with(&RunOptions::default()).expect("it runs");
            assert_eq!(exit.code, 0);
        })
    });
    let log = text(buffer.0.lock().unwrap().clone());
    assert!(!log.contains('\u{1b}') && !log.contains('\u{7}'), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains(AUDIT_TRACING_TARGET) && l.contains("capability=\"network\""))
        .unwrap_or_else(|| panic!("no network refusal in:\n{log}"));
    assert!(line.contains("\\u{1b}[2J"), "escaped: {line}");
    assert!(
        line.len() < 2 * FIELD_MAX + 512,
        "cut: {} bytes",
        line.len()
    );
}

// --- Floods: the writer pays, the host stays bounded --------------------------

/// Bytes of the lines of `captured` that start with `prefix`.
fn bytes_of(captured: &str, prefix: &str) -> usize {
    captured
        .split_inclusive('\n')
        .filter(|l| l.starts_with(prefix))
        .map(str::len)
        .sum()
}

/// Held: a child flooding into its parent's capture, or a callback, is stopped
/// at its own output limit, prefixes counted; and a splice from stdin to stdout
/// is charged like a write.
#[test]
fn the_output_limit_is_charged_to_a_child_writing_into_its_parents_capture_or_callback() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = true\ngrants.stderr = true\ngrants.stdin = true",
        "grants.stdout = \"prefix\"\ngrants.stdin = true\ngrants.output = \"64 KiB\"",
        "",
        "",
    );
    // Into a capture far larger than the limit.
    let (out, err) = (Captured::new(16 << 20), Captured::default());
    run(
        plan(&m, &["child:flood:1024"]),
        HostIo {
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    let outcome = text(err.contents());
    assert!(outcome.contains("output limit of 64 KiB"), "{outcome}");
    assert!(out.len() <= 64 << 10, "{}", out.len());
    assert_eq!(out.cut(), 0);

    // Into a callback.
    let total = Arc::new(AtomicUsize::new(0));
    let counted = total.clone();
    let err = Captured::default();
    run(
        plan(&m, &["child:flood:1024"]),
        HostIo {
            stdout: Output::callback(move |b: &[u8]| {
                counted.fetch_add(b.len(), Ordering::SeqCst);
            }),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    assert!(text(err.contents()).contains("output limit of 64 KiB"));
    assert!(total.load(Ordering::SeqCst) <= 64 << 10);

    // A splice of the host's stdin into the child's stdout.
    let out = Captured::new(16 << 20);
    let err = Captured::default();
    run(
        plan(&m, &["child:splice:1000000"]),
        HostIo {
            stdin: Stdin::bytes(vec![b'z'; 1 << 20]),
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
        },
        Audit::new(),
    );
    let outcome = text(err.contents());
    assert!(outcome.contains("output limit of 64 KiB"), "{outcome}");
    assert!(out.len() <= 64 << 10, "{}", out.len());
}

/// FINDING (low): a child's output budget is its instance's, so a restarted child
/// starts afresh. docs/embedding.md says the output limit "is also how a parent
/// bounds a child's share of a capture they share" (and the budget's own
/// documentation says "a byte budget for the whole run"), but a child with
/// `output = "64 KiB"` and `restart = { max = 3 }` writes 4 x 64 KiB, and as much
/// again in every later window. (The same holds for a plugin's `PerCall`
/// instances: each call gets a fresh budget.)
#[test]
fn a_restarted_child_does_not_get_a_fresh_output_budget() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = true\ngrants.stderr = true",
        "grants.stdout = \"prefix\"\ngrants.output = \"64 KiB\"",
        "restart = { max = 3, within = \"60s\" }",
        "",
    );
    let (out, err) = (Captured::new(16 << 20), Captured::default());
    run(
        plan(&m, &["child:flood:1024"; 5]),
        HostIo {
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    let captured = text(out.contents());
    let outcomes = text(err.contents());
    let child = bytes_of(&captured, "[driver/leaf] ");
    assert!(
        child <= 64 << 10,
        "the child wrote {child} bytes into the capture under a 64 KiB limit:\n{outcomes}"
    );
}

/// Held: a capture stays within its bound whatever the writes: many one-byte
/// writes, a long prefixed line with no newline, one huge write, empty writes
/// and reads; a capture of 0 keeps nothing and counts everything.
#[test]
fn a_capture_stays_within_its_bound_under_tiny_writes_and_unfinished_prefixed_lines() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "grants.stdout = \"prefix\"", "", "", "");
    let args = [
        "quiet",
        "tiny:5000",
        "big:1024",
        "big:0",
        "read:0",
        "flood:64",
    ];
    // "[driver] " once for the unfinished line, then once per line of the flood
    // after its first block, which ends that line: 16 blocks of 4 KiB.
    let prefix = "[driver] ".len();
    let total = prefix + 5000 + (1 << 20) + (64 << 10) + 15 * prefix;
    for limit in [1000, 0] {
        let out = Captured::new(limit);
        run(
            plan(&m, &args),
            HostIo {
                stdout: Output::Capture(out.clone()),
                ..Default::default()
            },
            Audit::new(),
        );
        assert_eq!(out.len(), limit);
        assert_eq!(out.len() as u64 + out.cut(), total as u64);
        if limit > 0 {
            let kept = text(out.contents());
            assert!(kept.starts_with("[driver] yyy"), "{kept}");
        }
    }
}

// --- The grants still decide ---------------------------------------------------

/// Held: a sibling without stdout or stdin cannot write into the capture or read
/// (and so take) the host's bytes; a discarded stream reaches nothing; and a
/// child cannot be granted the terminal or stdin its parent does not hold.
#[test]
fn grants_still_decide_for_siblings_children_and_discarded_streams() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = true\ngrants.stderr = true\ngrants.stdin = true",
        "grants.stdout = \"discard\"\ngrants.stderr = \"discard\"",
        "",
        "",
    );
    let (out, err) = (Captured::default(), Captured::default());
    let stdin = Stdin::bytes("meant for the driver");
    let Stdin::Bytes(left) = stdin.clone() else {
        unreachable!()
    };
    run(
        plan(
            &m,
            &[
                "child:out:discarded\\n",
                "child:err:discarded\\n",
                "child:read:100",
                "sibling:out:refused\\n",
                "sibling:big:1024",
                "sibling:read:100",
                "sibling:splice:100",
            ],
        ),
        HostIo {
            stdin,
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
        },
        Audit::new(),
    );
    let outcomes = text(err.contents());
    assert!(
        out.is_empty() && out.cut() == 0,
        "{:?}",
        text(out.contents())
    );
    assert_eq!(left.remaining(), "meant for the driver".len(), "{outcomes}");
    assert!(!outcomes.contains("discarded\n"), "{outcomes}");
    for op in [
        "child:read:100 => err:",
        "sibling:out:refused\\n => err:",
        "sibling:big:1024 => err:",
        "sibling:read:100 => err:",
        "sibling:splice:100 => err:",
    ] {
        assert!(outcomes.contains(op), "{op} in\n{outcomes}");
    }

    // What a parent does not hold, its child cannot be granted.
    for (driver, leaf) in [
        ("grants.stdout = \"discard\"", "grants.stdout = true"),
        ("grants.stdout = \"discard\"", "grants.stdout = \"prefix\""),
        ("grants.stdout = true", "grants.stdin = true"),
        ("grants.stderr = \"discard\"", "grants.stderr = true"),
    ] {
        let m = manifest(dir.path(), driver, leaf, "", "");
        assert!(check(&m, &[]).is_err(), "{driver} / {leaf} is refused");
    }
}

/// Held: the host's stdin bytes never block: a guest that reads past the end is
/// told so at once, every time, and one holding stdin after another read it all
/// sees the end.
#[test]
fn stdin_bytes_never_block_a_reader_past_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdin = true\ngrants.stderr = true",
        "grants.stdin = true",
        "",
        "",
    );
    let err = Captured::default();
    run(
        plan(
            &m,
            &["read-all", "child:read-all", "read:10", "child:read:10"],
        ),
        HostIo {
            stdin: Stdin::bytes("the host's bytes"),
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        Audit::new(),
    );
    let outcomes = text(err.contents());
    assert_eq!(
        outcomes,
        "read-all => ok: the host's bytes\n\
         child:read-all => ok: \n\
         read:10 => err: closed\n\
         child:read:10 => err: closed\n"
    );
}

// --- Re-entrancy ------------------------------------------------------------------

/// Held: an output callback that records to the audit (whose callback then
/// runs inside it) and reads the captures, and an audit callback that reads the
/// record, the captures and logs through `tracing`, deadlock nothing.
#[test]
fn callbacks_may_call_into_the_audit_and_the_captures_without_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "grants.stdout = true\ngrants.stderr = true",
        "grants.stdout = \"prefix\"\ngrants.stderr = true",
        "",
        "",
    );
    let err = Captured::default();
    let record = Audit::new();
    let (reader, err_reader) = (record.clone(), err.clone());
    let told = Arc::new(AtomicUsize::new(0));
    let counted = told.clone();
    let audit = record.clone().with_callback(move |e: &Event| {
        counted.fetch_add(1, Ordering::SeqCst);
        let _ = (reader.kept(), reader.counts(), reader.refusals());
        let _ = (err_reader.contents(), err_reader.len(), err_reader.cut());
        tracing::warn!(target: "host", "{:?}", e.target);
    });
    let (recorder, err_reader) = (audit.clone(), err.clone());
    let pieces = Arc::new(AtomicUsize::new(0));
    let seen = pieces.clone();
    let stdout = Output::callback(move |b: &[u8]| {
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = (err_reader.contents(), recorder.counts(), recorder.kept());
        recorder.record(Event {
            nanoprocess: "host".into(),
            capability: "host-log",
            operation: "write",
            target: Some(String::from_utf8_lossy(b).into_owned()),
            decision: Decision::Allowed,
            reason: None,
            needs: None,
            request: None,
        });
    });
    run(
        plan(
            &m,
            &[
                "out:hello\\n",
                "child:out:from the child\\n",
                "child:err:to stderr\\n",
                "lookup:refused.test",
                "child:lookup:refused.test",
                "sibling:out:refused",
            ],
        ),
        HostIo {
            stdout,
            stderr: Output::Capture(err.clone()),
            ..Default::default()
        },
        audit,
    );
    assert!(pieces.load(Ordering::SeqCst) >= 2);
    assert!(told.load(Ordering::SeqCst) >= 5);
    assert!(record.refusals().len() >= 3, "{:?}", record.refusals());
    let outcomes = text(err.contents());
    assert!(outcomes.contains("\nto stderr\n"), "{outcomes}");
    assert!(
        outcomes.contains("sibling:out:refused => err:"),
        "{outcomes}"
    );
}

// --- The plugin API --------------------------------------------------------------

/// Held: a plugin's `PluginOptions::io` gives its per-call instances one stdin
/// (one position) and one capture, under the same grants.
#[test]
fn a_plugins_per_call_instances_share_the_hosts_stdin_and_capture() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("plugin.toml");
    std::fs::write(
        &manifest,
        format!(
            "[app]\nroot = \"p\"\n\n[nanoprocess.p]\ncomponent = \"{}\"\n\
             grants.stdin = true\ngrants.stdout = \"prefix\"\ngrants.output = \"1 KiB\"\n",
            xtask::guest("redteam_io_leaf").display()
        ),
    )
    .unwrap();
    let plan = Runtime::new()
        .unwrap()
        .check_plugin_manifest(&manifest)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = Captured::default();
    let io = HostIo {
        stdin: Stdin::bytes("abcdef"),
        stdout: Output::Capture(out.clone()),
        ..Default::default()
    };
    let answers = within(300, move || {
        let mut plugin = plan
            .plugin(&PluginOptions {
                io,
                instances: Instances::PerCall,
                ..Default::default()
            })
            .unwrap();
        let run = plugin
            .typed::<(Vec<String>,), (Result<Vec<String>, String>,)>("test:probe/probe", "run")
            .unwrap();
        let mut answers = Vec::new();
        for op in ["read:3", "read:3", "read:3", "out:hi\\n", "big:2"] {
            answers.push(match plugin.call_typed(&run, (vec![op.to_string()],)) {
                Ok((answer,)) => answer.map(|lines| lines.join("")),
                Err(e) => Err(format!("{e}")),
            });
        }
        answers
    });
    let ok = |s: &str| Ok::<String, String>(s.to_string());
    assert_eq!(
        answers[..4],
        [
            ok("ok: abc"),
            ok("ok: def"),
            ok("err: closed"),
            ok("ok: wrote 3")
        ]
    );
    // Over its output limit: the call traps, and nothing of the write is kept.
    assert!(
        matches!(&answers[4], Err(e) if e.contains("output limit")),
        "{answers:?}"
    );
    assert_eq!(text(out.contents()), "[p] hi\n");
}
