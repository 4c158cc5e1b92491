//! What passing handles costs across a nanoprocess boundary (issue 7), side by side
//! with the same two components composed statically into one (`wac-graph`, one
//! store, wasmtime's own handle tables and fused adapters).
//!
//! * Resources a child defines: `bench_res <kind> <n>` uses `test:res/counters`
//!   from `res_child`: `method` is one `inc` on a counter (through a proxy under
//!   nanoproc), `lifecycle` a new counter, one `inc` and its drop.
//! * WASI descriptors: `bench_lend <kind> <n> f.txt` holds `/d/f.txt` (16 bytes)
//!   open: `lend` lends it to `handles_reader` for one `read-lent` call (which
//!   reads the file through it), `give` gives it to `keep` and takes it back with
//!   `give-back` (two transfers, two calls), and `local` reads it itself: the work
//!   of `lend` without the boundary.
//!
//! The guests time their own loops (monotonic clock) and print
//! `<kind> <n> <elapsed ns> <checksum>`; per operation = elapsed / n. 1 warm-up run,
//! then 7 measured runs of every configuration, interleaved. Every checksum is
//! checked.

use nanoproc_bench::{
    Stats, compose, fmt_ratio, measuring, plain_command, plain_engine, private_compile_cache,
    progress, run_plain, toml_str, write,
};
use nanoproc_runtime::{RunOptions, Runtime};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use wasmtime_wasi::p2::bindings::sync::CommandPre;

const WARMUP: usize = 1;
const MEASURED: usize = 7;

/// (program, kind, operations per measured run, what it is)
const CASES: [(Program, &str, u64, &str); 5] = [
    (
        Program::Res,
        "method",
        200_000,
        "resource method call (`counter.inc`)",
    ),
    (
        Program::Res,
        "lifecycle",
        50_000,
        "resource constructor + method + drop",
    ),
    (
        Program::Lend,
        "local",
        20_000,
        "read a 16-byte file through an open descriptor, in the same nanoprocess",
    ),
    (
        Program::Lend,
        "lend",
        20_000,
        "lend the descriptor for a call that reads it (`borrow<descriptor>`)",
    ),
    (
        Program::Lend,
        "give",
        20_000,
        "give the descriptor and take it back (`own<descriptor>`, two calls)",
    ),
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Program {
    Res,
    Lend,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Config {
    Composed,
    Nanoproc,
}

struct Setup {
    composed: HashMap<Program, CommandPre<nanoproc_bench::Plain>>,
    runtime: Runtime,
    manifests: HashMap<Program, PathBuf>,
    data: PathBuf,
    out: PathBuf,
}

fn main() {
    let _cache = private_compile_cache();
    let measure = measuring();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().canonicalize().expect("temporary directory");
    let setup = setup(&dir);

    if !measure {
        for (program, kind, _, _) in CASES {
            for config in [Config::Composed, Config::Nanoproc] {
                setup
                    .run(config, program, kind, 3)
                    .unwrap_or_else(|e| panic!("{config:?} {kind}: {e}"));
            }
        }
        println!(
            "handles bench: ok, every case ran in both configurations; \
             `cargo bench -p nanoproc-bench --bench handles` measures"
        );
        return;
    }

    let mut per_op: HashMap<(Config, &str), Vec<f64>> = HashMap::new();
    for round in 0..WARMUP + MEASURED {
        progress(format!(
            "handles: round {} of {}",
            round + 1,
            WARMUP + MEASURED
        ));
        for (program, kind, n, _) in CASES {
            for config in [Config::Composed, Config::Nanoproc] {
                let ns = setup
                    .run(config, program, kind, n)
                    .unwrap_or_else(|e| panic!("{config:?} {kind}: {e}"));
                if round >= WARMUP {
                    per_op
                        .entry((config, kind))
                        .or_default()
                        .push(ns / n as f64);
                }
            }
        }
    }
    report(&per_op);
}

fn setup(dir: &Path) -> Setup {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("creating the data directory");
    write(&data.join("f.txt"), "sixteen bytes..\n");
    let out = dir.join("stdout.txt");
    let engine = plain_engine();
    let mut composed = HashMap::new();
    let mut manifests = HashMap::new();
    for (program, root, child, iface, grants) in [
        (
            Program::Res,
            "bench_res",
            "res_child",
            "test:res/counters",
            String::new(),
        ),
        (
            Program::Lend,
            "bench_lend",
            "handles_reader",
            "test:handles/reader",
            format!(
                "grants.fs = [{{ host = {}, guest = \"/d\", rights = \"read\" }}]\n",
                toml_str(&data.display().to_string())
            ),
        ),
    ] {
        let root_wasm = nanoproc_bench::guest(root);
        let child_wasm = nanoproc_bench::guest(child);
        let joined = dir.join(format!("{root}+{child}.wasm"));
        std::fs::write(&joined, compose(&root_wasm, &child_wasm)).expect("writing a composition");
        composed.insert(program, plain_command(&engine, &joined));
        let manifest = dir.join(format!("{root}.toml"));
        write(
            &manifest,
            &format!(
                "[app]\nroot = \"root\"\n\n\
                 [nanoprocess.root]\ncomponent = {}\n\
                 grants.stdout = {{ file = {} }}\ngrants.monotonic-clock = true\n{grants}\
                 deps = {{ \"{iface}\" = \"child\" }}\n\n\
                 [nanoprocess.child]\ncomponent = {}\n",
                toml_str(&root_wasm.display().to_string()),
                toml_str(&out.display().to_string()),
                toml_str(&child_wasm.display().to_string()),
            ),
        );
        manifests.insert(program, manifest);
    }
    Setup {
        composed,
        runtime: Runtime::new().expect("nanoproc runtime"),
        manifests,
        data,
        out,
    }
}

impl Setup {
    /// One run of `n` operations: the elapsed nanoseconds the guest measured.
    fn run(&self, config: Config, program: Program, kind: &str, n: u64) -> Result<f64, String> {
        let mut args = vec![kind.to_owned(), n.to_string()];
        if program == Program::Lend {
            args.push("f.txt".into());
        }
        let line = match config {
            Config::Composed => run_plain(&self.composed[&program], &args, Some(&self.data))?,
            Config::Nanoproc => {
                let plan = self
                    .runtime
                    .check_manifest(&self.manifests[&program], &args)
                    .map_err(|e| e.to_string())?;
                nanoproc_bench::empty_output(&self.out);
                let exit = plan
                    .run_with(&RunOptions::default())
                    .map_err(|e| e.to_string())?;
                if exit.code != 0 {
                    return Err(format!("exit status {}", exit.code));
                }
                std::fs::read_to_string(&self.out)
                    .map_err(|e| format!("{}: {e}", self.out.display()))?
            }
        };
        parse(&line, program, kind, n)
    }
}

/// `<kind> <n> <elapsed ns> <checksum>`, with the checksum checked.
fn parse(line: &str, program: Program, kind: &str, n: u64) -> Result<f64, String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    let [k, count, elapsed, checksum] = parts[..] else {
        return Err(format!("unexpected output {line:?}"));
    };
    if k != kind || count != n.to_string() {
        return Err(format!("answered for {k} {count}, not {kind} {n}"));
    }
    let checksum: u64 = checksum
        .parse()
        .map_err(|_| format!("checksum {checksum:?}"))?;
    let expected = match (program, kind) {
        // inc on one counter from 0: 1 + 2 + ... + n.
        (Program::Res, "method") => n * (n + 1) / 2,
        // new(i) then inc: i + 1, for i in 0..n.
        (Program::Res, "lifecycle") => n * (n + 1) / 2,
        // 16 bytes read per operation; `give` reads nothing.
        (Program::Lend, "give") => 0,
        (Program::Lend, _) => 16 * n,
        _ => unreachable!(),
    };
    if checksum != expected {
        return Err(format!("checksum {checksum}, expected {expected}"));
    }
    elapsed
        .parse::<f64>()
        .map_err(|_| format!("elapsed {elapsed:?}"))
}

fn report(per_op: &HashMap<(Config, &str), Vec<f64>>) {
    let stats = |config, kind| Stats::of(&per_op[&(config, kind)]);
    println!("## Handles and resources across nanoprocesses");
    println!();
    println!(
        "`cargo bench -p nanoproc-bench --bench handles`. (a) composed: the caller and \
         the callee plugged together by `wac-graph` into one component in one store, \
         plain wasmtime-wasi (handles stay in wasmtime's own tables); (b) nanoproc: the \
         two as a tree, one store each, handles transferred by nanoproc's trampoline \
         (`crates/nanoproc-runtime/src/handles.rs`). `bench_res` uses `res_child`'s \
         counters; `bench_lend` holds `/d/f.txt` (16 bytes) open and uses \
         `handles_reader`. Each guest times its own loop; per operation: median \
         (min-max) over {MEASURED} runs after {WARMUP} warm-up, interleaved."
    );
    println!();
    println!("| operation | (a) composed | (b) nanoproc | (b)/(a) |");
    println!("|---|---:|---:|---:|");
    for (_, kind, n, what) in CASES {
        let a = stats(Config::Composed, kind);
        let b = stats(Config::Nanoproc, kind);
        println!(
            "| {what} ({n} per run) | {} | {} | {} |",
            a.ns_cell(),
            b.ns_cell(),
            fmt_ratio(b.median / a.median)
        );
    }
    println!();
    let local = stats(Config::Nanoproc, "local").median;
    let lend = stats(Config::Nanoproc, "lend").median;
    let give = stats(Config::Nanoproc, "give").median;
    println!(
        "Under nanoproc, lending the descriptor for a call that reads the file costs {} \
         against {} for the same read in the caller: the boundary, the transfer into \
         the callee's table and the end of the loan add {}. Giving it and taking it back \
         (two calls, two moves) costs {}.",
        nanoproc_bench::fmt_ns(lend),
        nanoproc_bench::fmt_ns(local),
        nanoproc_bench::fmt_ns(lend - local),
        nanoproc_bench::fmt_ns(give),
    );
    println!();
    println!(
        "For orientation, the issue quotes about 400 ns per proxied method call across \
         stores against about 60 ns inside a static composition, on this kind of machine."
    );
    println!();
}
