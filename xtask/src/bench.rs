//! `cargo xtask bench`: runs every benchmark and writes `docs/BENCHMARKS.md`.
//!
//! It builds what the benchmarks need (the guests, the demo, the release `nanoproc`
//! binary), runs each benchmark with `cargo bench`, keeps the markdown each one
//! prints on stdout (progress goes to the terminal), and puts together the
//! document: the machine, the date, the commands, a summary of the issue's
//! targets (the `@target | ...` rows the benchmarks print), then every section.
//!
//! `cargo xtask bench NAME...` (e.g. `cargo xtask bench serve`) runs only the
//! named benchmarks and replaces, in the existing document, only what they wrote:
//! their sections, their rows of the targets' tables, their command and their
//! load (marked as run alone, with the date); the rest stays from the last full
//! run.

use std::fmt::Write as _;
use std::process::{Command, ExitCode, Stdio};

/// The benchmarks, in the order of the document: (package, bench target): every
/// `[[bench]]` of `crates/nanoproc-bench/Cargo.toml`, in its order, then the audit
/// benchmark of `nanoproc-runtime`.
fn benches(root: &std::path::Path) -> Vec<(&'static str, String)> {
    let manifest =
        std::fs::read_to_string(root.join("crates/nanoproc-bench/Cargo.toml")).unwrap_or_default();
    let mut out = Vec::new();
    let mut in_bench = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bench = line == "[[bench]]";
        } else if in_bench
            && let Some(name) = line
                .strip_prefix("name")
                .and_then(|l| l.trim_start().strip_prefix('='))
        {
            out.push(("nanoproc-bench", name.trim().trim_matches('"').to_owned()));
        }
    }
    out.push(("nanoproc-runtime", "audit".to_owned()));
    out
}

pub fn run(only: &[String]) -> ExitCode {
    let root = xtask::repo_root();
    let all = benches(&root);
    if let Some(unknown) = only.iter().find(|n| !all.iter().any(|(_, b)| b == *n)) {
        let names: Vec<&str> = all.iter().map(|(_, b)| b.as_str()).collect();
        eprintln!(
            "bench: no benchmark `{unknown}`; the benchmarks are: {}",
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let chosen: Vec<(&str, String)> = all
        .into_iter()
        .filter(|(_, b)| only.is_empty() || only.contains(b))
        .collect();
    if chosen.iter().any(|(_, b)| b == "serve")
        && let Err(why) = wrk()
    {
        eprintln!("bench: the serve benchmark needs Debian's wrk: {why}");
        return ExitCode::FAILURE;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: building the guests and the demo");
    xtask::prepare_demo();
    eprintln!(
        "bench: building the release nanoproc binary (the start-up and hostile benchmarks run it)"
    );
    let built = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "nanoproc-cli"])
        .status();
    if !built.is_ok_and(|s| s.success()) {
        eprintln!("bench: `cargo build --release -p nanoproc-cli` failed");
        return ExitCode::FAILURE;
    }

    let mut commands = vec!["cargo build --release -p nanoproc-cli".to_owned()];
    let mut sections = Vec::new();
    let mut targets = Vec::new();
    let mut loads = Vec::new();
    for (package, bench) in chosen {
        let command = format!("cargo bench -p {package} --bench {bench}");
        eprintln!("bench: {command}");
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args(["bench", "-p", package, "--bench", &bench])
            .stderr(Stdio::inherit());
        if bench == "plugins" {
            // Extism's side, run just before and put beside nanoproc's by the bench.
            let (figures, run) = extism(&root, &cargo);
            commands.extend(run);
            cmd.env("NANOPROC_BENCH_EXTISM", figures);
        }
        let load = load_average();
        let out = cmd.output();
        let out = match out {
            Ok(o) if o.status.success() => o,
            Ok(o) => {
                eprintln!("bench: `{command}` failed ({})", o.status);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("bench: cannot run cargo: {e}");
                return ExitCode::FAILURE;
            }
        };
        loads.push(format!("{bench} {load:.1} → {:.1}", load_average()));
        commands.push(command);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut section = String::new();
        for line in text.lines() {
            if let Some(row) = line.strip_prefix("@target |") {
                targets.push(format!("|{row} {bench} |"));
            } else if line.contains(" => ") {
                // A guest's own output (the audit benchmark's probe prints a line per run).
            } else {
                section.push_str(line);
                section.push('\n');
            }
        }
        sections.push((bench, section.trim().to_owned()));
    }

    let path = root.join("docs").join("BENCHMARKS.md");
    let doc = if only.is_empty() {
        document(&commands, &loads, &targets, &sections)
    } else {
        let old = match std::fs::read_to_string(&path) {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "bench: {}: {e}; run every benchmark first (`cargo xtask bench`)",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let mut doc = old;
        for (bench, section) in &sections {
            let command = commands
                .iter()
                .find(|c| c.ends_with(&format!("--bench {bench}")))
                .cloned()
                .unwrap_or_default();
            let load = loads
                .iter()
                .find(|l| l.starts_with(&format!("{bench} ")))
                .map(|l| {
                    format!(
                        "{l} (run alone on {}, `cargo xtask bench {bench}`)",
                        today()
                    )
                })
                .unwrap_or_default();
            let rows: Vec<String> = targets
                .iter()
                .filter(|t| t.trim_end().ends_with(&format!("| {bench} |")))
                .cloned()
                .collect();
            doc = splice(&doc, bench, &command, &load, &rows, section);
        }
        doc
    };
    if let Err(e) = std::fs::write(&path, doc) {
        eprintln!("bench: {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    eprintln!("bench: wrote {}", path.display());
    ExitCode::SUCCESS
}

fn document(
    commands: &[String],
    loads: &[String],
    targets: &[String],
    sections: &[(String, String)],
) -> String {
    let mut d = String::new();
    let _ = writeln!(
        d,
        "# Benchmarks\n\n\
         This file is written by `cargo xtask bench`; every figure below comes from the run \
         it describes. Edit `xtask/src/bench.rs` or the benchmarks, not this file.\n\n\
         Benchmarks are plain programs under `crates/*/benches/` (`harness = false`, timed \
         with `std::time::Instant`), run with `cargo bench`. They are never timed tests: \
         nothing asserts a duration. Run without `--bench` (as `cargo test --benches` does), \
         a benchmark only checks once, on a tiny workload, that it still works.\n\n\
         Configurations are measured side by side in the same process, interleaved, so that \
         they share the machine's noise, and each is reported against an anchor: what the \
         same work costs without nanoproc (a direct call, a static composition, plain \
         wasmtime, an OS process). The absolute times depend on the machine and its load; \
         the ratios are what to compare. The benchmark crate is `crates/nanoproc-bench` \
         (its guests are `guests/bench-*`, its WIT `guests/wit/bench.wit`).\n"
    );
    let _ = writeln!(d, "## The run\n");
    let _ = writeln!(d, "* **Date**: {} (UTC).", today());
    let _ = writeln!(d, "* **Machine**: {}.", machine());
    let _ = writeln!(
        d,
        "* **Toolchain**: {}; release profile (`cargo bench`), guests `wasm32-wasip2` release \
         (`opt-level = 3` for the benchmark guests, `\"s\"` for the others).",
        command_line("rustc", &["-V"]).unwrap_or_else(|| "rustc (version unknown)".into())
    );
    let _ = writeln!(
        d,
        "* **Command**: `cargo xtask bench`, which builds the guests and the demo, then runs:"
    );
    for c in commands {
        let _ = writeln!(d, "  * `{c}`");
    }
    let _ = writeln!(
        d,
        "* **Load** (1-minute load average before → after each benchmark): {}. The machine \
         is shared with other engineers' builds; under load, wall times grow and spread, so \
         some tables also give the CPU time of the measuring thread, which does not count \
         the time other processes had the CPU.\n",
        loads.join("; ")
    );

    let _ = writeln!(d, "## The issue's targets\n");
    let _ = writeln!(
        d,
        "Each target, what this run measured, and whether it was met; the section of each \
         benchmark explains every miss: by how much, why, and what would close it.\n"
    );
    let _ = writeln!(d, "| target | measured | verdict | benchmark |");
    let _ = writeln!(d, "|---|---|---|---|");
    for t in targets {
        let _ = writeln!(d, "{t}");
    }
    let _ = writeln!(d);
    let _ = writeln!(
        d,
        "Reference figures from the issue for this kind of machine (2 vCPUs), not measured \
         here: static composition no-op ~4 ns, 16 B string 46 ns, 1 KiB 83 ns; direct call \
         ~2 ns; pipe round trip ~43 µs; `posix_spawn` + wait ~360 µs; `wasmtime run` of a \
         hello world ~4.6 ms; instantiation 12-15 µs with the pooling allocator. Issue 18's \
         throwaway prototype of a fused edge (two components composed by wac-graph, the \
         child's WASI imports named and bound to its own view): no-op 4.1 ns, 16 B echo \
         68 ns.\n"
    );
    let _ = writeln!(
        d,
        "Reference figures for concurrency support (the engine setting WASI 0.3 needs) from \
         issue 15 and the wasmtime 50 findings it cites, a prototype's, \
         same binary, interleaved, on this kind of machine: host → guest `TypedFunc::call` \
         no-op 80 ns off, 402 ns on (about 5x); 16 B string echo 209 ns off, 545 ns on; \
         guest → host no-op 72 ns off, 104 ns on. The `concurrency` benchmark below measures \
         them again, beside the calls between nanoprocesses in plans with and without a \
         WASI 0.3 component.\n"
    );

    let _ = writeln!(
        d,
        "{}",
        against_baseline(xtask::repo_root(), targets, sections)
    );

    for (bench, section) in sections {
        if bench == "audit" {
            let _ = writeln!(d, "{}", audit_prose(section));
        } else if bench == "hostile" {
            let _ = writeln!(d, "{}", hostile_prose(section));
        } else {
            let _ = writeln!(d, "{section}\n");
        }
    }
    d.trim_end().to_owned() + "\n"
}

/// Installs Debian's `wrk` (the serve benchmark's load generator) if it is
/// missing, as `cargo xtask test-tools` installs what the tests need.
fn wrk() -> Result<(), String> {
    let found = Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wrk"));
    if found {
        return Ok(());
    }
    eprintln!("bench: installing wrk");
    crate::tools::apt(&["update", "-qq"])
        .and_then(|()| crate::tools::apt(&["install", "-y", "-qq", "wrk"]))
}

/// `doc` (a whole `docs/BENCHMARKS.md`) with what one benchmark wrote replaced:
/// its section (from its `## ` heading to the next, or, if the document has none
/// yet, put before the audit section), its rows of the targets' table (the rows
/// ending `| bench |`) and of the wasmtime 48 comparison, its command and its
/// entry of the load line.
fn splice(
    doc: &str,
    bench: &str,
    command: &str,
    load: &str,
    targets: &[String],
    section: &str,
) -> String {
    let mut lines: Vec<String> = doc.lines().map(str::to_owned).collect();

    // The section.
    let heading = section.lines().next().unwrap_or_default().to_owned();
    let new: Vec<String> = section
        .lines()
        .map(str::to_owned)
        .chain([String::new()])
        .collect();
    let next_heading = |from: usize, lines: &[String]| {
        lines
            .iter()
            .skip(from + 1)
            .position(|l| l.starts_with("## "))
            .map_or(lines.len(), |i| from + 1 + i)
    };
    if let Some(at) = lines.iter().position(|l| *l == heading) {
        let end = next_heading(at, &lines);
        lines.splice(at..end, new);
    } else {
        let at = lines
            .iter()
            .position(|l| l.starts_with("## Audit log overhead"))
            .unwrap_or(lines.len());
        lines.splice(at..at, new);
    }

    // The targets: this benchmark's rows replaced, at the end of the table.
    let cells = |row: &str| -> Vec<String> {
        row.trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let names: Vec<String> = targets
        .iter()
        .filter_map(|t| cells(t).first().cloned())
        .collect();
    let table_end = |lines: &[String], header: &str| {
        let start = lines.iter().position(|l| l.starts_with(header))?;
        Some(
            lines
                .iter()
                .skip(start)
                .position(|l| !l.starts_with('|'))
                .map_or(lines.len(), |i| start + i),
        )
    };
    let suffix = format!("| {bench} |");
    if let Some(end) = table_end(&lines, "| target | measured | verdict | benchmark |") {
        let start = lines[..end]
            .iter()
            .rposition(|l| l.starts_with("| target | measured"))
            .unwrap_or(end);
        let kept: Vec<String> = lines[start..end]
            .iter()
            .filter(|l| !l.trim_end().ends_with(&suffix))
            .cloned()
            .chain(targets.iter().cloned())
            .collect();
        lines.splice(start..end, kept);
    }
    if let Some(end) = table_end(&lines, "| target | wasmtime 48 | this run |") {
        let start = lines[..end]
            .iter()
            .rposition(|l| l.starts_with("| target | wasmtime 48"))
            .unwrap_or(end);
        let kept: Vec<String> = lines[start..end]
            .iter()
            .filter(|l| !cells(l).first().is_some_and(|c| names.contains(c)))
            .cloned()
            .chain(targets.iter().map(|t| {
                let c = cells(t);
                format!(
                    "| {} | - (new target) | {} |",
                    c.first().map_or("", String::as_str),
                    c.get(1).map_or("", String::as_str)
                )
            }))
            .collect();
        lines.splice(start..end, kept);
    }

    // The command, before the audit benchmark's if it is not listed yet.
    let listed = format!("  * `{command}`");
    if !command.is_empty() && !lines.contains(&listed) {
        let at = lines
            .iter()
            .position(|l| l.contains("--bench audit`"))
            .or_else(|| {
                lines
                    .iter()
                    .rposition(|l| l.starts_with("  * `"))
                    .map(|i| i + 1)
            });
        if let Some(at) = at {
            lines.insert(at, listed);
        }
    }

    // The load: this benchmark's entry replaced.
    if !load.is_empty()
        && let Some(line) = lines.iter_mut().find(|l| l.starts_with("* **Load**"))
        && let Some((head, rest)) = line.split_once("): ")
        && let Some((entries, tail)) = rest.split_once(". ")
    {
        let mut entries: Vec<String> = entries
            .split("; ")
            .filter(|e| !e.starts_with(&format!("{bench} ")))
            .map(str::to_owned)
            .collect();
        let at = entries
            .iter()
            .position(|e| e.starts_with("audit "))
            .unwrap_or(entries.len());
        entries.insert(at, load.to_owned());
        *line = format!("{head}): {}. {tail}", entries.join("; "));
    }
    lines.join("\n").trim_end().to_owned() + "\n"
}

/// The audit benchmark prints only its table; the workload and the caveats are
/// explained here.
fn audit_prose(table: &str) -> String {
    format!(
        "## Audit log overhead (file-heavy workload)\n\n\
         `cargo bench -p nanoproc-runtime --bench audit`: what the audit log (`nanoproc run \
         --audit FILE`: one JSON line per capability decision, written with one `write` as the \
         decision is made) costs a nanoprocess that does little but filesystem calls. (The \
         workloads benchmark above compares the same workload with plain wasmtime-wasi.)\n\n\
         **Workload.** One nanoprocess, `probe_cmd.wasm` with the op `files:2000` \
         (`guests/probe-ops`), granted a temporary directory read-write at `/d` and stdout. For \
         each of 2000 files it creates `/d/f{{i}}.txt`, writes 64 bytes, reads them back and \
         removes the file, through std and WASI. Each file is 7 filesystem capability \
         decisions: `open-at` (create), `write-via-stream`, `open-at` (read), `metadata-hash`, \
         `stat`, `read-via-stream`, `unlink-file-at`.\n\n\
         **Configurations**, each planned (compiled and checked) once, outside the timing; only \
         `Plan::run_with` (instantiation plus the guest's run) is timed:\n\n\
         * (a) audit off: `Audit::new()` (allowed decisions are not recorded at all);\n\
         * (b) audit log: `Audit::with(Some(file), false)`, a fresh file in the same temporary \
         directory each run (`--audit FILE`);\n\
         * (c) audit summary: `Audit::with(None, true)`, decisions counted in memory only \
         (`--audit-summary`).\n\n\
         After every run the benchmark checks that the directory is empty again, that nothing \
         was refused and, for (b) and (c), that every decision was recorded.\n\n\
         **Results** (milliseconds per run of `files:2000`):\n\n\
         {table}\n\n\
         **Caveats.** The log is written to the page cache with no `fsync`, and each log is \
         deleted after its run, so this measures formatting plus one `write` syscall per \
         decision, not durable logging; a log on a slow or synchronous filesystem would cost \
         more. The guest's files are on the same filesystem (`/tmp`), also through the page \
         cache; the baseline is dominated by the host's create and unlink and the WASI work \
         per call, so a workload with cheaper decisions would show a larger relative overhead, \
         and a compute-heavy one a smaller one. On a shared machine the run-to-run spread \
         (max against min of one configuration) is often larger than the difference between \
         configurations: read the ratio of medians, and compare runs.\n"
    )
}

/// The hostile benchmark prints its tables and how they were measured; what they
/// are for is explained here.
fn hostile_prose(tables: &str) -> String {
    format!(
        "## The hostile corpus: time to stop and peak memory\n\n\
         `cargo bench -p nanoproc-bench --bench hostile`. nanoproc's promise for a hostile \
         guest is that it is stopped at its limit, promptly, and that the host stays small \
         while it is: the end-to-end tests (`crates/nanoproc-cli/tests/hostile.rs`, \
         `stops.rs`) check that each is stopped with the right error and status, within \
         generous bounds; this measures how promptly, and at what memory. The real release \
         `nanoproc` binary runs each hostile op of `guests/probe-ops` (`probe_cmd.wasm`) under \
         the limit that stops it: a loop (`spin`) under a time limit and under fuel, a memory \
         bomb (`bomb`), a recursion that runs off the guest's stack (`recurse:100000000`), an \
         output flood (`flood:50`, 50 MiB), a handle leak (`sockets:100000`), and two guests \
         blocked in a host call (`sleep:600000`, and `stdin` on a pipe that is never \
         written), first as the root with the limit as a flag, then as a dependency with the \
         limit as a grant, whose parent receives the failure and goes on. Each run is checked \
         for its status and the message naming the limit. A time limit is due at a known \
         moment, so its figure is the time from that moment to the exit of the process: the \
         next epoch tick (every 5 ms), the unwinding, the report and the teardown; the same \
         figure for an OS process stopped by GNU `timeout` is the anchor. The other limits \
         are reached by the guest's own work, so their figure is the whole run. Memory is \
         nanoproc's peak resident set (`--stats`), next to the same run of a well-behaved op \
         (`count`): the delta is what a hostile guest made the host hold, bounded by the \
         limit it was given.\n\n\
         {tables}\n"
    )
}

/// Builds and runs the Extism side of the plugins benchmark (`bench/extism`, a
/// workspace of its own, since extism brings a second wasmtime; built into
/// `target/extism`) and writes what its host printed to `target/extism/figures.txt`,
/// or, if a step failed, one line `extism | error | <why>` that the plugins bench
/// reports plainly. Returns that file and the commands run.
fn extism(root: &std::path::Path, cargo: &str) -> (std::path::PathBuf, Vec<String>) {
    let target = root.join("target").join("extism");
    let figures = target.join("figures.txt");
    let manifest = root.join("bench").join("extism").join("Cargo.toml");
    let wasm = target.join("wasm32-unknown-unknown/plugin/extism_echo.wasm");
    let host = target.join("release").join("extism-bench");
    let mut commands = Vec::new();
    let step = |what: &str, program: &str, args: &[&std::ffi::OsStr]| -> Result<String, String> {
        eprintln!("bench: {what}");
        let mut cmd = Command::new(program);
        cmd.current_dir(root).args(args).stderr(Stdio::piped());
        // Flags meant for the host build must not leak into the Extism builds.
        xtask::without_host_build_flags(&mut cmd);
        match cmd.output() {
            Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let tail: Vec<&str> = err.lines().rev().take(6).collect();
                let tail: Vec<&str> = tail.into_iter().rev().map(str::trim).collect();
                Err(format!(
                    "`{what}` failed ({}): {}",
                    o.status,
                    tail.join(" / ")
                ))
            }
            Err(e) => Err(format!("`{what}` could not be run: {e}")),
        }
    };
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let common = [
        os("--manifest-path"),
        manifest.as_os_str(),
        os("--target-dir"),
        target.as_os_str(),
    ];
    let result = (|| {
        // The pinned toolchain may not have the target yet (no auto-install here).
        let add = "rustup target add wasm32-unknown-unknown";
        // Not fatal: without rustup the target may be there all the same, and the
        // build below says so if it is not.
        match step(
            add,
            "rustup",
            &["target", "add", "wasm32-unknown-unknown"].map(os),
        ) {
            Ok(_) => commands.push(add.to_owned()),
            Err(why) => eprintln!("bench: {why}"),
        }
        let plugin = "cargo build --manifest-path bench/extism/Cargo.toml --target-dir \
                      target/extism --profile plugin --target wasm32-unknown-unknown -p extism-echo";
        let mut args = vec![os("build")];
        args.extend(common);
        args.extend(
            [
                "--profile",
                "plugin",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "extism-echo",
            ]
            .map(os),
        );
        step(plugin, cargo, &args)?;
        commands.push(plugin.to_owned());
        let build = "cargo build --manifest-path bench/extism/Cargo.toml --target-dir \
                     target/extism --release -p extism-bench";
        let mut args = vec![os("build")];
        args.extend(common);
        args.extend(["--release", "-p", "extism-bench"].map(os));
        step(build, cargo, &args)?;
        commands.push(build.to_owned());
        let run = "target/extism/release/extism-bench \
                   target/extism/wasm32-unknown-unknown/plugin/extism_echo.wasm";
        let out = step(run, &host.to_string_lossy(), &[wasm.as_os_str()])?;
        commands.push(run.to_owned());
        Ok(out)
    })();
    let text = result.unwrap_or_else(|why: String| {
        eprintln!("bench: Extism is left out of the plugins benchmark: {why}");
        format!("extism | error | {}\n", why.replace('\n', " "))
    });
    let _ = std::fs::create_dir_all(&target);
    if let Err(e) = std::fs::write(&figures, text) {
        eprintln!("bench: {}: {e}", figures.display());
    }
    (figures, commands)
}

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// CPU model, cores, memory and kernel, from `/proc`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|k| k.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "`{model}` (`/proc/cpuinfo`), {cores} cores, {:.1} GiB RAM, Linux {}",
        mem_kib as f64 / (1024.0 * 1024.0),
        kernel.trim()
    )
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

use nanoproc_caps::civil_from_days;

#[cfg(test)]
mod tests {
    #[test]
    fn every_bench_target() {
        let benches = super::benches(&xtask::repo_root());
        assert!(benches.contains(&("nanoproc-bench", "calls".to_owned())));
        assert!(benches.contains(&("nanoproc-bench", "hostile".to_owned())));
        assert!(benches.contains(&("nanoproc-bench", "concurrency".to_owned())));
        assert_eq!(
            benches.last(),
            Some(&("nanoproc-runtime", "audit".to_owned()))
        );
    }

    /// Builds and runs the Extism side as `cargo xtask bench` does (slow: a second
    /// wasmtime; not in CI): `cargo test -p xtask -- --ignored extism_side`.
    #[test]
    #[ignore]
    fn extism_side() {
        let root = xtask::repo_root();
        let (figures, commands) = super::extism(&root, "cargo");
        let text = std::fs::read_to_string(figures).unwrap();
        assert!(text.contains("extism | echo16 | "), "{text}");
        assert!(text.contains("extism | echo1k | "), "{text}");
        assert_eq!(commands.len(), 4, "{commands:?}");
    }

    /// `cargo xtask bench serve` on a document of an earlier full run: its section,
    /// target rows, command and load are put in, then replaced on the next run;
    /// nothing else changes.
    #[test]
    fn one_benchmark_is_spliced_into_the_document() {
        let doc = "# Benchmarks\n\n## The run\n\n\
                   * **Command**: `cargo xtask bench`, which builds the guests and the demo, then runs:\n\
                   \x20 * `cargo bench -p nanoproc-bench --bench calls`\n\
                   \x20 * `cargo bench -p nanoproc-runtime --bench audit`\n\
                   * **Load** (1-minute load average before → after each benchmark): calls 1.3 → 1.2; audit 1.2 → 1.6. The machine is shared.\n\n\
                   ## The issue's targets\n\n\
                   | target | measured | verdict | benchmark |\n|---|---|---|---|\n\
                   | calls fast | 1 ns | **met** | calls |\n\n\
                   ## Compared with wasmtime 48\n\n\
                   | target | wasmtime 48 | this run |\n|---|---|---|\n\
                   | calls fast | 2 ns | 1 ns |\n\n\
                   ## Cross-nanoprocess calls\n\ncalls text\n\n\
                   ## Audit log overhead (file-heavy workload)\n\naudit text\n";
        let command = "cargo bench -p nanoproc-bench --bench serve";
        let row = |m: &str| vec![format!("| serve fast | {m} | **met** | serve |")];
        let once = super::splice(
            doc,
            "serve",
            command,
            "serve 0.5 → 0.7 (alone)",
            &row("10 µs"),
            "## Serving HTTP\n\nfirst",
        );
        let twice = super::splice(
            &once,
            "serve",
            command,
            "serve 0.4 → 0.6 (alone)",
            &row("9 µs"),
            "## Serving HTTP\n\nsecond",
        );
        let expected = "# Benchmarks\n\n## The run\n\n\
                   * **Command**: `cargo xtask bench`, which builds the guests and the demo, then runs:\n\
                   \x20 * `cargo bench -p nanoproc-bench --bench calls`\n\
                   \x20 * `cargo bench -p nanoproc-bench --bench serve`\n\
                   \x20 * `cargo bench -p nanoproc-runtime --bench audit`\n\
                   * **Load** (1-minute load average before → after each benchmark): calls 1.3 → 1.2; serve 0.4 → 0.6 (alone); audit 1.2 → 1.6. The machine is shared.\n\n\
                   ## The issue's targets\n\n\
                   | target | measured | verdict | benchmark |\n|---|---|---|---|\n\
                   | calls fast | 1 ns | **met** | calls |\n\
                   | serve fast | 9 µs | **met** | serve |\n\n\
                   ## Compared with wasmtime 48\n\n\
                   | target | wasmtime 48 | this run |\n|---|---|---|\n\
                   | calls fast | 2 ns | 1 ns |\n\
                   | serve fast | - (new target) | 9 µs |\n\n\
                   ## Cross-nanoprocess calls\n\ncalls text\n\n\
                   ## Serving HTTP\n\nsecond\n\n\
                   ## Audit log overhead (file-heavy workload)\n\naudit text\n";
        assert_eq!(twice, expected, "{twice}");
    }

    #[test]
    fn dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(super::civil_from_days(20_513), (2026, 3, 1));
    }
}

/// The rows of the first markdown table in `text` whose header starts with
/// `header`: the header's cells, and each row's cells.
fn table(text: &str, header: &str) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let mut lines = text.lines().skip_while(|l| !l.starts_with(header));
    let head = cells(lines.next()?);
    let rows = lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(cells)
        .collect();
    Some((head, rows))
}

/// This run's figures beside those of the last run on wasmtime 48 (kept in
/// `crates/nanoproc-bench/baseline/wasmtime-48.md`): the targets, and the calls
/// between nanoprocesses with the raw store entry they are built on.
fn against_baseline(
    root: std::path::PathBuf,
    targets: &[String],
    sections: &[(String, String)],
) -> String {
    let path = root.join("crates/nanoproc-bench/baseline/wasmtime-48.md");
    let Ok(baseline) = std::fs::read_to_string(&path) else {
        return format!("(No wasmtime 48 baseline at {}.)\n", path.display());
    };
    let mut d = String::new();
    let _ = writeln!(d, "## Compared with wasmtime 48\n");
    let _ = writeln!(
        d,
        "The same benchmarks' last run on wasmtime 48.0.8 and Rust 1.95.0 (commit d115205, on \
         this kind of machine; `crates/nanoproc-bench/baseline/wasmtime-48.md`), beside this \
         run. Different runs on a shared machine: compare ratios within a run first, and \
         read a difference of a few percent between runs as noise.\n"
    );
    if let Some((_, old)) = table(&baseline, "| target | measured") {
        let _ = writeln!(d, "| target | wasmtime 48 | this run |");
        let _ = writeln!(d, "|---|---|---|");
        for row in targets {
            let new = row
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect::<Vec<_>>();
            let (Some(target), Some(measured)) = (new.first(), new.get(1)) else {
                continue;
            };
            let before = old
                .iter()
                .find(|r| r.first().map(String::as_str) == Some(*target))
                .and_then(|r| r.get(1).cloned())
                .unwrap_or_else(|| "- (new target)".into());
            let _ = writeln!(d, "| {target} | {before} | {measured} |");
        }
        let _ = writeln!(d);
    }
    let calls = sections
        .iter()
        .find(|(b, _)| b == "calls")
        .map(|(_, s)| s.as_str());
    if let (Some((old_head, old_rows)), Some((new_head, new_rows))) = (
        table(&baseline, "| call | (a) direct"),
        calls.and_then(|c| table(c, "| call |")),
    ) {
        let col = |head: &[String], name: &str| head.iter().position(|h| h.starts_with(name));
        let _ = writeln!(
            d,
            "| call | (c) nanoproc, wasmtime 48 | (c) nanoproc, this run | (e) host → guest, wasmtime 48 | (e) host → guest, this run |"
        );
        let _ = writeln!(d, "|---|---:|---:|---:|---:|");
        for old in &old_rows {
            let Some(new) = new_rows.iter().find(|r| r.first() == old.first()) else {
                continue;
            };
            let get = |row: &[String], head: &[String], name: &str| {
                col(head, name)
                    .and_then(|i| row.get(i))
                    .map(|c| c.split(" (").next().unwrap_or(c).to_owned())
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} | {} |",
                old[0],
                get(old, &old_head, "(c)"),
                get(new, &new_head, "(c)"),
                get(old, &old_head, "(e)"),
                get(new, &new_head, "(e)"),
            );
        }
        let _ = writeln!(d);
    }
    d
}

#[cfg(test)]
mod baseline_tests {
    use super::*;

    /// The wasmtime 48 baseline set beside a run with the same tables (the
    /// baseline itself): every target and call row finds its old figure.
    #[test]
    fn the_baseline_is_found_row_by_row() {
        let baseline = std::fs::read_to_string(
            xtask::repo_root().join("crates/nanoproc-bench/baseline/wasmtime-48.md"),
        )
        .unwrap();
        let (_, rows) = table(&baseline, "| target | measured").unwrap();
        let targets: Vec<String> = rows
            .iter()
            .map(|r| format!("| {} |", r.join(" | ")))
            .collect();
        let calls_at = baseline.find("| call | (a) direct").unwrap();
        let sections = vec![("calls".to_string(), baseline[calls_at..].to_string())];
        let d = against_baseline(xtask::repo_root(), &targets, &sections);
        assert!(
            d.contains("| cross-nanoprocess no-op call ≤ 150 ns | 282 ns | 282 ns |"),
            "{d}"
        );
        assert!(
            d.contains("| `noop()` | 282 ns | 282 ns | 158 ns | 158 ns |"),
            "{d}"
        );
        assert!(!d.contains("(new target)"), "{d}");
    }
}
