//! The hostile corpus, measured: how long the real `nanoproc` binary takes to stop
//! each hostile guest at its limit and exit, and how much memory it held meanwhile.
//!
//! The release `nanoproc` binary (next to this benchmark's own profile directory,
//! `target/release/nanoproc`; `cargo xtask bench` builds it) runs `probe_cmd.wasm`
//! with one hostile op of `guests/probe-ops` (`spin`, `bomb`, `recurse:100000000`,
//! `flood:50`, `sockets:100000`, `sleep:600000`, `stdin` on a pipe nobody writes),
//! each under the limit that stops it, first as the root (`nanoproc run
//! probe_cmd.wasm --timeout 1s -- spin`) and then as a dependency of `probe_driver`
//! with the limit as a grant and `on-failure = "error"`, the way
//! `crates/nanoproc-cli/tests/hostile.rs` and `stops.rs` provoke them. Every run
//! is checked: the expected status and the message naming the limit, so that a
//! figure never describes a run stopped for another reason.
//!
//! Each run is spawned with `NANOPROC_STARTUP_TRACE` (nanoproc prints `nanoproc:
//! root entered after X ms` right before it enters the root) and `--stats`
//! (`nanoproc: peak resident memory N KiB`, the kernel's `VmHWM`). The benchmark
//! notes when the trace line arrives and when the process has exited. A time limit
//! starts counting just before the tree is instantiated, so for time limits
//! "limit passed → exit" is (root entered → exit) − the limit: the stop's own cost
//! (the next epoch tick, the unwinding, the report and the teardown), slightly
//! low by the instantiation before the line. For the other limits the cause is
//! the guest's own work, so the time is the whole run.
//!
//! Anchors: an OS process stopped by GNU `timeout 1` (a shell busy loop, and a
//! `sleep 600` blocked in a system call), for the time to stop; and `nanoproc`
//! running a well-behaved op (`count`) the same way, for memory: each hostile
//! run's peak is given as that baseline plus a delta.

use nanoproc_bench::{
    Stats, fmt_bytes, fmt_ns, guest, measuring, nanoproc_binary, private_compile_cache, progress,
};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WARMUP: usize = 1;
const MEASURED: usize = 5;

/// The time limits while measuring; a check run uses a shorter one.
const TIME_LIMIT: Duration = Duration::from_secs(1);
const CHECK_TIME_LIMIT: Duration = Duration::from_millis(100);

/// The trace line nanoproc prints right before entering the root.
const ENTERED: &str = "nanoproc: root entered after ";
const PEAK: &str = "nanoproc: peak resident memory ";

/// What stops `recurse`: a Rust guest's stack lives in its linear memory, so
/// running off it is an out-of-bounds access, a trap (no limit of nanoproc's).
const STACK: &str = "its own 1 MiB stack: out-of-bounds trap";

/// Where the hostile op runs.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// `nanoproc run probe_cmd.wasm FLAGS -- OP`.
    Root,
    /// `probe_driver` calls `child:OP` into `probe_leaf`, whose grants hold the
    /// limit, then `sibling:count`.
    Dependency,
    /// Not nanoproc: an OS process under GNU `timeout`.
    Anchor,
}

/// One configuration of the table.
struct Case {
    role: Role,
    /// What runs, as the table shows it.
    what: String,
    /// The limit that stops it, as the table shows it.
    limit: String,
    /// For a time limit: how long it is, the time after which the stop is due.
    time_limit: Option<Duration>,
    /// The program and its arguments.
    program: PathBuf,
    args: Vec<String>,
    /// stdin is a pipe kept open and never written (else `/dev/null`).
    stdin_pipe: bool,
    /// The exit status the run must end with.
    status: i32,
    /// What must be in the run's stderr (root) or in the driver's answer for the
    /// child's op (dependency).
    expect: String,
    /// A baseline: the well-behaved run the others' memory is compared with.
    baseline: bool,
}

/// One measured run.
struct Sample {
    spawn_to_entered_ns: Option<f64>,
    spawn_to_exit_ns: f64,
    status: i32,
    peak_kib: Option<u64>,
}

fn main() {
    // Every `nanoproc` this spawns inherits it: compiled once in the warm-up.
    let _cache = private_compile_cache();
    let measure = measuring();
    let Some(nanoproc) = nanoproc_binary("hostile") else {
        return;
    };
    let limit = if measure {
        TIME_LIMIT
    } else {
        CHECK_TIME_LIMIT
    };
    let scene = tempfile::tempdir().expect("a temporary directory");
    let cases = cases(&nanoproc, scene.path(), limit);

    let rounds = if measure { WARMUP + MEASURED } else { 1 };
    let mut samples: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        progress(format!("hostile: round {} of {rounds}", round + 1));
        // Interleaved: every case once per round, so that they share the noise.
        for (case, samples) in cases.iter().zip(&mut samples) {
            let sample = run(case);
            if round >= rounds - MEASURED.min(rounds) {
                samples.push(sample);
            }
        }
    }
    if !measure {
        println!(
            "hostile bench: ok, {} runs each ended as expected (time limits {} ms); \
             `cargo bench -p nanoproc-bench --bench hostile` measures",
            cases.len(),
            limit.as_millis()
        );
        return;
    }
    report(&nanoproc, &cases, &samples, limit);
}

/// Every configuration, in the order of the tables.
fn cases(nanoproc: &Path, scene: &Path, limit: Duration) -> Vec<Case> {
    let ms = limit.as_millis();
    let secs = limit.as_secs_f64();
    // `1s`, or `100ms` for a check run: what nanoproc's messages print.
    let shown = if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    };
    let probe_cmd = guest("probe_cmd").display().to_string();
    let run_stopped = "stopped: the run's time limit passed".to_owned();

    let root = |op: &str, flags: &[&str], limit: &str, time: bool, status: i32, expect: &str| {
        let mut args: Vec<String> = vec!["run".into(), "--stats".into()];
        args.extend(flags.iter().map(|f| f.to_string()));
        args.push(probe_cmd.clone());
        args.push("--".into());
        args.push(op.into());
        Case {
            role: Role::Root,
            what: format!("`{op}`"),
            limit: limit.to_owned(),
            time_limit: time.then_some(limit_of(ms)),
            program: nanoproc.to_path_buf(),
            stdin_pipe: op == "stdin",
            args,
            status,
            expect: expect.to_owned(),
            baseline: op == "count",
        }
    };
    let dependency = |op: &str, grants: &str, limit: &str, time: bool, expect: &str| {
        let name = format!("dep-{}.toml", sanitize(op, grants));
        let manifest = scene.join(name);
        write_tree(&manifest, grants);
        let args = vec![
            "run".into(),
            "--stats".into(),
            // Far beyond every limit below, so that only the leaf's own can stop it.
            "--timeout".into(),
            "120s".into(),
            manifest.display().to_string(),
            "--".into(),
            format!("child:{op}"),
            "sibling:count".into(),
        ];
        Case {
            role: Role::Dependency,
            what: format!("`{op}`"),
            limit: limit.to_owned(),
            time_limit: time.then_some(limit_of(ms)),
            program: nanoproc.to_path_buf(),
            stdin_pipe: false,
            args,
            // The parent receives the failure as an error and finishes.
            status: 0,
            expect: expect.to_owned(),
            baseline: op == "count",
        }
    };
    let anchor = |what: &str, args: &[&str]| Case {
        role: Role::Anchor,
        what: what.to_owned(),
        limit: format!("GNU `timeout {secs}` (SIGTERM)"),
        time_limit: Some(limit_of(ms)),
        program: PathBuf::from("timeout"),
        args: std::iter::once(format!("{secs}"))
            .chain(args.iter().map(|a| a.to_string()))
            .collect(),
        stdin_pipe: false,
        status: 124,
        expect: String::new(),
        baseline: false,
    };

    let timeout = format!("--timeout {shown}");
    let per_call = format!("grants.timeout = \"{shown}\"");
    vec![
        root("count", &[], "none (baseline)", false, 0, ""),
        root(
            "spin",
            &["--timeout", &shown],
            &format!("`{timeout}`"),
            true,
            124,
            &run_stopped,
        ),
        root(
            "spin",
            &["--fuel", "50000000"],
            "`--fuel 50000000`",
            false,
            137,
            "exceeded its fuel per call limit of 50000000",
        ),
        root(
            "bomb",
            &["--memory", "32MiB"],
            "`--memory 32MiB`",
            false,
            137,
            "exceeded its memory limit of 32 MiB",
        ),
        root("recurse:100000000", &[], STACK, false, 134, "stack"),
        root(
            "flood:50",
            &["--output", "1MiB"],
            "`--output 1MiB`",
            false,
            137,
            "exceeded its output limit of 1 MiB (on stdout)",
        ),
        root(
            "sockets:100000",
            &["--handles", "64"],
            "`--handles 64`",
            false,
            137,
            "exceeded its open handles limit of 64",
        ),
        root(
            "sleep:600000",
            &["--monotonic-clock", "--timeout", &shown],
            &format!("`{timeout}` (in a host call)"),
            true,
            124,
            &run_stopped,
        ),
        root(
            "stdin",
            &["--stdin", "--timeout", &shown],
            &format!("`{timeout}` (reading a pipe nobody writes)"),
            true,
            124,
            &run_stopped,
        ),
        dependency("count", "", "none (baseline)", false, "ok: 1"),
        dependency(
            "spin",
            &per_call,
            &format!("`{per_call}`"),
            true,
            &format!("exceeded its time per call limit of {shown}"),
        ),
        dependency(
            "spin",
            "grants.fuel = 50_000_000",
            "`grants.fuel = 50_000_000`",
            false,
            "exceeded its fuel per call limit of 50000000",
        ),
        dependency(
            "bomb",
            "grants.memory = \"32 MiB\"",
            "`grants.memory = \"32 MiB\"`",
            false,
            "exceeded its memory limit of 32 MiB",
        ),
        dependency("recurse:100000000", "", STACK, false, "stack"),
        dependency(
            "flood:50",
            "grants.stdout = true\ngrants.output = \"1 MiB\"",
            "`grants.output = \"1 MiB\"`",
            false,
            "exceeded its output limit of 1 MiB (on stdout)",
        ),
        dependency(
            "sockets:100000",
            "grants.handles = 64",
            "`grants.handles = 64`",
            false,
            "exceeded its open handles limit of 64",
        ),
        dependency(
            "sleep:600000",
            &format!("grants.monotonic-clock = true\n{per_call}"),
            &format!("`{per_call}` (in a host call)"),
            true,
            &format!("exceeded its time per call limit of {shown}"),
        ),
        anchor(
            "`sh -c 'while :; do :; done'` (busy loop)",
            &["sh", "-c", "while :; do :; done"],
        ),
        anchor("`sleep 600` (blocked in a system call)", &["sleep", "600"]),
    ]
}

fn limit_of(ms: u128) -> Duration {
    Duration::from_millis(ms as u64)
}

/// A file name for a dependency's manifest.
fn sanitize(op: &str, grants: &str) -> String {
    format!("{op}-{grants}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// driver -> leaf (the hostile one: `on-failure = "error"` and `leaf_grants`) and
/// a well-behaved sibling, as in the end-to-end tests. The root holds the
/// monotonic clock so that it can grant it.
fn write_tree(manifest: &Path, leaf_grants: &str) {
    let text = format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = {driver}
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
grants.stdout = true
grants.monotonic-clock = true

[nanoprocess.leaf]
component = {leaf}
on-failure = "error"
{leaf_grants}

[nanoprocess.sib]
component = {leaf}
"#,
        driver = nanoproc_bench::toml_str(&guest("probe_driver").display().to_string()),
        leaf = nanoproc_bench::toml_str(&guest("probe_leaf").display().to_string()),
    );
    nanoproc_bench::write(manifest, &text);
}

/// Runs one case once, checks that it ended as it must, and returns its times.
fn run(case: &Case) -> Sample {
    let mut cmd = Command::new(&case.program);
    cmd.args(&case.args)
        .env("NANOPROC_STARTUP_TRACE", "1")
        .stdin(if case.stdin_pipe {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    // Open, never written, until the process has exited.
    let _stdin = child.stdin.take();
    let mut stdout = child.stdout.take().expect("piped");
    // Drained on its own thread: a flood must not block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    });
    let mut entered = None;
    let mut stderr = Vec::new();
    for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
        let line = line.expect("reading stderr");
        if entered.is_none() && line.starts_with(ENTERED) {
            entered = Some(nanoproc_bench::ns(started.elapsed()));
        }
        stderr.push(line);
    }
    let status = child.wait().expect("waiting");
    let spawn_to_exit_ns = nanoproc_bench::ns(started.elapsed());
    let stdout = reader.join().expect("the stdout reader");
    let stderr = stderr.join("\n");
    let status = status.code().unwrap_or(-1);
    let ran = || format!("{cmd:?}: exit {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert_eq!(status, case.status, "{}", ran());
    match case.role {
        Role::Root => assert!(
            stderr.contains(&case.expect),
            "expected {:?}: {}",
            case.expect,
            ran()
        ),
        Role::Dependency => {
            let op = case
                .args
                .iter()
                .find(|a| a.starts_with("child:"))
                .expect("an op");
            let answer = stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{op} => ")))
                .unwrap_or_else(|| panic!("no answer for {op}: {}", ran()));
            assert!(
                answer.contains(&case.expect),
                "expected {:?} in the answer: {}",
                case.expect,
                ran()
            );
            // The parent went on after its dependency was stopped.
            assert!(stdout.contains("sibling:count => ok: 1"), "{}", ran());
        }
        Role::Anchor => {}
    }
    if case.role != Role::Anchor {
        assert!(entered.is_some(), "no `{ENTERED}` line: {}", ran());
    }
    let peak_kib = stderr
        .lines()
        .find_map(|l| l.strip_prefix(PEAK))
        .and_then(|l| l.strip_suffix(" KiB"))
        .and_then(|n| n.parse().ok());
    Sample {
        spawn_to_entered_ns: entered,
        spawn_to_exit_ns,
        status,
        peak_kib,
    }
}

fn report(nanoproc: &Path, cases: &[Case], samples: &[Vec<Sample>], limit: Duration) {
    let limit_ns = nanoproc_bench::ns(limit);
    println!(
        "The binary: `{}` (release build), spawned with `NANOPROC_STARTUP_TRACE=1`. Time limits \
         {}; {WARMUP} warm-up round, then {MEASURED} measured, every configuration once per \
         round, interleaved; median (min-max). \"Limit passed → exit\" is, for a time limit, \
         (root entered → exit) − the limit, and for the `timeout` anchors (spawn → exit) − the \
         limit; the other limits are reached by the guest's own work, so their time is the \
         run's. \"Peak RSS\" is nanoproc's `--stats` (`VmHWM`); \"over the baseline\" is its \
         median less the median of the baseline of the same table.\n",
        nanoproc
            .strip_prefix(xtask::repo_root())
            .unwrap_or(nanoproc)
            .display(),
        fmt_ns(limit_ns),
    );
    for (role, heading) in [
        (
            Role::Root,
            "As the root: `nanoproc run --stats FLAGS probe_cmd.wasm OP`",
        ),
        (
            Role::Dependency,
            "As a dependency: `probe_driver` calls `child:OP` into `probe_leaf` (`on-failure = \
             \"error\"`, the limit among its grants), then `sibling:count`; the run goes on and \
             exits 0",
        ),
    ] {
        println!("### {heading}\n");
        let in_table: Vec<usize> = (0..cases.len())
            // The anchors once, in the first table.
            .filter(|&i| {
                cases[i].role == role || (role == Role::Root && cases[i].role == Role::Anchor)
            })
            .collect();
        println!(
            "| op | stopped by | exit | limit passed → exit | root entered → exit | spawn → exit | \
             peak RSS | over the baseline |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for &i in &in_table {
            let (case, runs) = (&cases[i], &samples[i]);
            let statuses: Vec<i32> = runs.iter().map(|s| s.status).collect();
            let exit = if statuses.windows(2).all(|w| w[0] == w[1]) {
                statuses[0].to_string()
            } else {
                format!("{statuses:?}")
            };
            let total = Stats::of(&runs.iter().map(|s| s.spawn_to_exit_ns).collect::<Vec<_>>());
            let in_root = in_root(runs);
            let after_limit = after_limit(case, runs);
            let peak = peak(runs);
            let over = if case.baseline {
                "(baseline)".to_owned()
            } else {
                over_baseline(cases, samples, i)
                    .map_or("-".to_owned(), |d| format!("+{}", fmt_bytes(d)))
            };
            println!(
                "| {}{} | {} | {exit} | {} | {} | {} | {} | {over} |",
                case.what,
                if case.role == Role::Anchor {
                    " (OS anchor)"
                } else {
                    ""
                },
                case.limit,
                after_limit.map_or("-".to_owned(), |s| s.ns_cell()),
                in_root.map_or("-".to_owned(), |s| s.ns_cell()),
                total.ns_cell(),
                peak.map_or("-".to_owned(), |s| format!(
                    "{} ({}-{})",
                    fmt_bytes(s.median),
                    fmt_bytes(s.min),
                    fmt_bytes(s.max)
                )),
            );
        }
        println!();
    }
    reading(cases, samples);
}

/// A few sentences on what the tables show, computed from them.
fn reading(cases: &[Case], samples: &[Vec<Sample>]) {
    let find = |role: Role, what: &str, timed: bool| {
        (0..cases.len())
            .find(|&i| {
                cases[i].role == role
                    && cases[i].what.starts_with(what)
                    && cases[i].time_limit.is_some() == timed
            })
            .unwrap_or_else(|| panic!("no case {what}"))
    };
    let median = |s: Option<Stats>| s.map_or(f64::NAN, |s| s.median);
    let ordinary = median(in_root(&samples[find(Role::Root, "`count`", false)]));
    let dep_ordinary = median(in_root(&samples[find(Role::Dependency, "`count`", false)]));
    let stop = |role: Role, what: &str| {
        let i = find(role, what, true);
        median(after_limit(&cases[i], &samples[i]))
    };
    let (spin, sleep, stdin) = (
        stop(Role::Root, "`spin`"),
        stop(Role::Root, "`sleep"),
        stop(Role::Root, "`stdin`"),
    );
    let (dep_spin, dep_sleep) = (
        stop(Role::Dependency, "`spin`"),
        stop(Role::Dependency, "`sleep"),
    );
    let (busy, blocked) = (stop(Role::Anchor, "`sh"), stop(Role::Anchor, "`sleep"));
    let bomb = over_baseline(cases, samples, find(Role::Root, "`bomb`", false)).unwrap_or(f64::NAN);
    let others = (0..cases.len())
        .filter(|&i| cases[i].role != Role::Anchor && !cases[i].what.starts_with("`bomb`"))
        .filter_map(|i| over_baseline(cases, samples, i))
        .fold(0.0, f64::max);
    println!(
        "**Reading.** Every run pays for its own end: from the moment the root is entered, the \
         baseline (`count`) exits in {} as the root and {} as a tree (the run, the report, \
         dropping the stores and the engine, joining the epoch thread). The run's \
         `--timeout` ends a root that spins {} after the limit, one blocked in a host call \
         {} (`sleep`) and {} (`stdin`): the stop itself costs the difference (an epoch tick, \
         at which a guest in wasm is stopped, is 5 ms). An OS process under GNU `timeout` is gone {} (busy loop) and {} \
         (blocked) after its limit. A dependency's per-call `timeout` ends the run {} \
         (`spin`) and {} (`sleep`) after the limit: it is counted in epoch ticks of 5 ms that \
         follow the real clock (the limit in ticks, rounded up, plus one for the tick under \
         way, so that a call always gets its whole limit), and is noticed at the next tick: \
         up to three ticks late, by design. \
         Memory: a hostile guest adds to the host's peak what its limit lets it take (the \
         memory bomb: {} over the baseline as the root, with a limit of 32 MiB), and the others \
         at most {}.\n",
        fmt_ns(ordinary),
        fmt_ns(dep_ordinary),
        fmt_ns(spin),
        fmt_ns(sleep),
        fmt_ns(stdin),
        fmt_ns(busy),
        fmt_ns(blocked),
        fmt_ns(dep_spin),
        fmt_ns(dep_sleep),
        fmt_bytes(bomb),
        fmt_bytes(others),
    );
}

/// How much more than its table's baseline a case's median peak is.
fn over_baseline(cases: &[Case], samples: &[Vec<Sample>], i: usize) -> Option<f64> {
    let baseline =
        (0..cases.len()).find(|&b| cases[b].baseline && cases[b].role == cases[i].role)?;
    Some(peak(&samples[i])?.median - peak(&samples[baseline])?.median)
}

/// Root entered → exit of each run, if every run printed the trace line.
fn in_root(runs: &[Sample]) -> Option<Stats> {
    let v: Option<Vec<f64>> = runs
        .iter()
        .map(|s| s.spawn_to_entered_ns.map(|e| s.spawn_to_exit_ns - e))
        .collect();
    v.map(|v| Stats::of(&v))
}

/// For a time limit, how long after it passed the process exited: from the
/// moment the root was entered (nanoproc), or spawned (an anchor).
fn after_limit(case: &Case, runs: &[Sample]) -> Option<Stats> {
    let limit = nanoproc_bench::ns(case.time_limit?);
    let v: Vec<f64> = runs
        .iter()
        .map(|s| s.spawn_to_exit_ns - s.spawn_to_entered_ns.unwrap_or(0.0) - limit)
        .collect();
    Some(Stats::of(&v))
}

/// The peak resident memory of a case's runs, in bytes, if every run reported it.
fn peak(runs: &[Sample]) -> Option<Stats> {
    let v: Option<Vec<f64>> = runs
        .iter()
        .map(|s| s.peak_kib.map(|k| k as f64 * 1024.0))
        .collect();
    v.map(|v| Stats::of(&v))
}
