//! What the audit log costs on a file-heavy workload.
//!
//! One nanoprocess (`probe_cmd.wasm`, op `files:2000`) creates, writes, reads back and
//! removes 2000 files in a granted temporary directory; every step is a filesystem
//! capability decision. The same run is timed in three configurations, interleaved
//! (a, b, c, a, b, c...) in one process so that they share the machine's noise:
//!
//! * (a) audit off: `Audit::new()`, decisions that are allowed are not recorded;
//! * (b) audit log: `Audit::with(Some(file), false)`, one JSON line written per
//!   decision (`nanoproc run --audit FILE`), a fresh file each run;
//! * (c) audit summary: `Audit::with(None, true)`, decisions counted in memory only
//!   (`nanoproc run --audit-summary`).
//!
//! Compiling and checking happen once per configuration, outside the timing; only
//! `Plan::run_with` (instantiation plus the guest's run) is timed. The result is a
//! markdown table on stdout; read the ratios, not the absolute times.
//!
//! `cargo bench -p nanoproc-runtime --bench audit` measures. Run without `--bench`
//! (as `cargo test --benches` does), it only checks once per configuration, on a
//! small workload, that the benchmark works, and times nothing.
//!
//! Needs the guests: `cargo xtask guests`.

use nanoproc_runtime::caps::{DirRequest, DirSource, FsRights, GrantRequest, OutputMode, Switch};
use nanoproc_runtime::{Audit, Interrupt, Plan, RunOptions, Runtime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Files per run.
const FILES: u64 = 2000;
/// Files per run without `--bench` (a check that the benchmark works, not a measurement).
const SMOKE_FILES: u64 = 10;
const WARMUP: usize = 2;
const MEASURED: usize = 9;

#[derive(Clone, Copy, PartialEq)]
enum Config {
    Off,
    Log,
    Summary,
}

impl Config {
    const ALL: [Config; 3] = [Config::Off, Config::Log, Config::Summary];

    fn label(self) -> &'static str {
        match self {
            Config::Off => "(a) audit off",
            Config::Log => "(b) audit log to a file (`--audit FILE`)",
            Config::Summary => "(c) audit summary, counting only (`--audit-summary`)",
        }
    }
}

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("audit bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn probe_cmd() -> Result<PathBuf, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/wasm32-wasip2/release/probe_cmd.wasm");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no guest component at {}; build the guests first: `cargo xtask guests` (from the workspace root)",
            path.display()
        ))
    }
}

fn bench() -> Result<(), String> {
    let measuring = std::env::args().any(|a| a == "--bench");
    let files = if measuring { FILES } else { SMOKE_FILES };
    let component = probe_cmd()?;

    let tmp = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    let root = tmp
        .path()
        .canonicalize()
        .map_err(|e| format!("{}: {e}", tmp.path().display()))?;
    // The guest's directory and the audit logs side by side, on the same filesystem.
    let work = root.join("d");
    std::fs::create_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;

    let runtime = Runtime::new().map_err(|e| format!("engine: {e:#}"))?;
    let op = format!("files:{files}");
    let mut grants = GrantRequest {
        fs: vec![DirRequest::new(
            DirSource::Host(work.clone()),
            "/d",
            FsRights::READ_WRITE,
        )],
        ..Default::default()
    };
    grants.stdio.stdout = Switch::held(OutputMode::Terminal);
    // One plan per configuration, compiled and checked outside the timing.
    let plans = Config::ALL
        .iter()
        .map(|_| {
            runtime
                .check_component(&component, grants.clone(), std::slice::from_ref(&op))
                .map_err(|e| format!("{}: {e}", component.display()))
        })
        .collect::<Result<Vec<Plan>, String>>()?;

    let rounds = if measuring { WARMUP + MEASURED } else { 1 };
    let mut times: [Vec<Duration>; 3] = Default::default();
    let mut log_lines = Vec::new();
    let mut decisions = Vec::new();
    for round in 0..rounds {
        for (ix, (&config, plan)) in Config::ALL.iter().zip(&plans).enumerate() {
            let log = root.join(format!("audit-{round}.jsonl"));
            let audit = match config {
                Config::Off => Audit::new(),
                Config::Log => {
                    Audit::with(Some(&log), false).map_err(|e| format!("{}: {e}", log.display()))?
                }
                Config::Summary => Audit::with(None, true).map_err(|e| e.to_string())?,
            };
            let options = RunOptions {
                audit,
                interrupt: Interrupt::new(),
                timeout: None,
                ..Default::default()
            };

            let start = Instant::now();
            let outcome = plan.run_with(&options);
            let elapsed = start.elapsed();

            match outcome {
                Ok(exit) if exit.code == 0 => {}
                Ok(exit) => return Err(format!("{}: exit status {}", config.label(), exit.code)),
                Err(e) => return Err(format!("{}: {e}", config.label())),
            }
            check_run(&options.audit, config, &work, files)?;
            if config == Config::Log {
                let text =
                    std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
                log_lines.push(text.lines().count() as u64);
                std::fs::remove_file(&log).map_err(|e| format!("{}: {e}", log.display()))?;
            }
            if config == Config::Summary {
                decisions.push(allowed_fs(&options.audit));
            }
            if round >= rounds - MEASURED.min(rounds) {
                times[ix].push(elapsed);
            }
        }
    }

    if !measuring {
        println!(
            "audit bench: ok, each configuration ran once on `{op}` ({} audit lines); \
             `cargo bench -p nanoproc-runtime --bench audit` measures",
            log_lines[0]
        );
        return Ok(());
    }
    report(&op, &times, &log_lines, &decisions);
    Ok(())
}

/// Checks that the guest did its work: its directory is empty again, nothing was
/// refused, and where decisions were counted, there are enough of them.
fn check_run(audit: &Audit, config: Config, work: &Path, files: u64) -> Result<(), String> {
    let left = std::fs::read_dir(work)
        .map_err(|e| format!("{}: {e}", work.display()))?
        .count();
    if left != 0 {
        return Err(format!(
            "{}: {left} files left in {}",
            config.label(),
            work.display()
        ));
    }
    let refused: u64 = audit.counts().values().map(|&(_, refused)| refused).sum();
    if refused != 0 {
        return Err(format!(
            "{}: {refused} capability uses refused",
            config.label()
        ));
    }
    // Creating, writing, reading and removing one file is at least four decisions.
    if config != Config::Off && allowed_fs(audit) < 4 * files {
        return Err(format!(
            "{}: only {} filesystem decisions for {files} files: did the guest do its work?",
            config.label(),
            allowed_fs(audit)
        ));
    }
    Ok(())
}

fn allowed_fs(audit: &Audit) -> u64 {
    audit
        .counts()
        .iter()
        .filter(|((_, capability), _)| *capability == "fs")
        .map(|(_, &(allowed, _))| allowed)
        .sum()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn report(op: &str, times: &[Vec<Duration>; 3], log_lines: &[u64], decisions: &[u64]) {
    let base = ms(median(&times[0]));
    println!();
    println!(
        "`{op}`, one nanoprocess; {WARMUP} warm-up runs then {MEASURED} measured runs per \
         configuration, interleaved; time of `Plan::run_with` only."
    );
    println!();
    println!("| configuration | median ms | min ms | max ms | median / (a) |");
    println!("|---|---:|---:|---:|---:|");
    for (config, t) in Config::ALL.iter().zip(times) {
        let med = ms(median(t));
        println!(
            "| {} | {med:.1} | {:.1} | {:.1} | {:.2} |",
            config.label(),
            ms(*t.iter().min().expect("measured")),
            ms(*t.iter().max().expect("measured")),
            med / base
        );
    }
    println!();
    let (lo, hi) = (
        log_lines.iter().min().expect("logged"),
        log_lines.iter().max().expect("logged"),
    );
    let lines = if lo == hi {
        lo.to_string()
    } else {
        format!("{lo} to {hi}")
    };
    let files: f64 = op
        .trim_start_matches("files:")
        .parse()
        .expect("op is files:N");
    println!(
        "Audit lines written per run (b): {lines} ({:.2} per file); allowed fs decisions \
         counted per run (c): {}.",
        *hi as f64 / files,
        decisions.iter().max().expect("counted")
    );
    println!(
        "Ratios of medians: (b)/(a) = {:.3}, (c)/(a) = {:.3}.",
        ms(median(&times[1])) / base,
        ms(median(&times[2])) / base
    );
}
