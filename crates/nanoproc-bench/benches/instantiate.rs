//! What starting a nanoprocess costs, in time and in memory, side by side with plain
//! wasmtime and with spawning an OS process.
//!
//! **Time.** Trees of 1, 10 and 100 nanoprocesses, each planned once (compiled and
//! checked, outside the timing), started with `Plan::start` (every nanoprocess
//! instantiated with its grants, the root not entered) and kept alive, 1000
//! nanoprocesses at a time, then dropped. The 1-nanoprocess tree is `bench_direct`
//! (a command with no dependency); the others are chains: `bench_parent`, then
//! `bench_relay`s, then `bench_child`. The anchor is plain wasmtime doing the same
//! instantiations: one `Store` per component with a wasmtime-wasi context, then
//! `InstancePre::instantiate`, same engine settings. The other anchor is
//! `std::process::Command::new("/bin/true").status()` (glibc `posix_spawn`, then
//! `waitpid`).
//!
//! **Fused trees.** The 10- and 100-nanoprocess chains again with every edge
//! `isolation = "fused"`: the whole chain composed into one component when the plan
//! is checked (a chain whose every edge is fused is one flat composite), started
//! as one store; timed per tree beside the same chain isolated, in the same rounds,
//! and the manifest's check with a warm compile cache (which composes the chain
//! again every time) beside the isolated one's.
//!
//! **Memory.** In a fresh child process (this benchmark run again with
//! `memory-probe`), so that the allocator has no free memory left over from earlier
//! measurements: RSS (`/proc/self/statm`) before and after starting N live
//! nanoprocesses, divided by N; and how many live nanoprocesses fit in 1 GiB more
//! RSS, trying up to `MAX_LIVE` single-nanoprocess trees and one 10,000-nanoprocess
//! chain.

use nanoproc_bench::{
    Plain, Stats, fmt_bytes, fmt_ns, fmt_ratio, measuring, ns, over, plain_engine, plain_pre,
    plain_store, private_compile_cache, progress, rss_bytes, short, target_row, timed, toml_str,
    write,
};
use nanoproc_runtime::{Plan, RunOptions, Runtime, Tree};

/// `crates/nanoproc-runtime/src/engine.rs`: plans this large, up to `POOL_UP_TO`,
/// get a pooling allocator.
const POOL_FROM: usize = 16;
const POOL_UP_TO: usize = 1024;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use wasmtime::component::{Instance, InstancePre};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::WasiCtxBuilder;

const SIZES: [usize; 3] = [1, 10, 100];
/// The chains also measured with every edge fused (each one of `SIZES`). The
/// first must fuse; one the runtime refuses is reported with its refusal.
const FUSED_SIZES: [usize; 2] = [10, 100];
/// The chain whose idle memory is compared fused and isolated, and how many
/// trees of it the probe keeps alive.
const FUSED_PROBE: (usize, usize) = (10, 100);
/// Nanoprocesses alive at once per measured batch.
const BATCH: usize = 1000;
const SPAWNS: usize = 100;
const WARMUP: usize = 2;
const MEASURED: usize = 15;
/// 1 GiB of resident memory: the budget for "how many fit".
const GIB: u64 = 1 << 30;
/// The most single-nanoprocess trees the memory probe tries to keep alive.
const MAX_LIVE: usize = 30_000;
/// The length of the long chain the memory probe tries.
const LONG_CHAIN: usize = 10_000;
/// The memory limit every dependency of the "granted" long chain is given: a
/// subtree budget large enough for the whole chain.
const GRANTED_MEMORY: &str = "64 GiB";

struct Components {
    direct: PathBuf,
    parent: PathBuf,
    relay: PathBuf,
    child: PathBuf,
}

impl Components {
    fn get() -> Components {
        Components {
            direct: nanoproc_bench::guest("bench_direct"),
            parent: nanoproc_bench::guest("bench_parent"),
            relay: nanoproc_bench::guest("bench_relay"),
            child: nanoproc_bench::guest("bench_child"),
        }
    }

    /// The components of the tree of `n` nanoprocesses, root first.
    fn tree(&self, n: usize) -> Vec<&Path> {
        match n {
            0 => vec![],
            1 => vec![&self.direct],
            _ => std::iter::once(self.parent.as_path())
                .chain(std::iter::repeat_n(self.relay.as_path(), n - 2))
                .chain(std::iter::once(self.child.as_path()))
                .collect(),
        }
    }

    /// Writes the manifest of the tree of `n` nanoprocesses into `dir`; with
    /// `memory`, every dependency is granted that memory limit (a budget for its
    /// whole subtree) instead of the default; with `fused`, every dependency is
    /// `isolation = "fused"` (a fused nanoprocess has no limits of its own, so not
    /// both).
    fn manifest(&self, dir: &Path, n: usize, memory: Option<&str>, fused: bool) -> PathBuf {
        assert!(
            !(fused && memory.is_some()),
            "a fused chain has no memory grants"
        );
        let path = dir.join(format!(
            "tree-{n}{}{}.toml",
            if memory.is_some() { "-granted" } else { "" },
            if fused { "-fused" } else { "" }
        ));
        let mut text = String::from("[app]\nroot = \"n0\"\n");
        for (i, component) in self.tree(n).iter().enumerate() {
            text += &format!(
                "\n[nanoprocess.n{i}]\ncomponent = {}\n",
                toml_str(&component.display().to_string())
            );
            if i + 1 < n {
                text += &format!("deps = {{ \"bench:calls/api\" = \"n{}\" }}\n", i + 1);
            }
            if let (true, Some(memory)) = (i > 0, memory) {
                text += &format!("grants.memory = {}\n", toml_str(memory));
            }
            if i > 0 && fused {
                text += "isolation = \"fused\"\n";
            }
        }
        write(&path, &text);
        path
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "memory-probe") {
        // Run by `memory()` below in a fresh process; the cache dir is inherited.
        let count = |i: usize| args[at + i].parse().expect("a count");
        memory_probe(&args[at + 1], count(2), count(3));
        return;
    }
    let cache = private_compile_cache();
    let measure = measuring();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().canonicalize().expect("temporary directory");
    let components = Components::get();
    let runtime = Runtime::new()
        .expect("nanoproc runtime")
        // Its chains are deeper than the default cap, on purpose.
        .with_max_depth(usize::MAX);

    let first_plan = Instant::now();
    let manifests: Vec<PathBuf> = SIZES
        .iter()
        .map(|&n| components.manifest(&dir, n, None, false))
        .collect();
    let plans: Vec<Plan> = manifests
        .iter()
        .map(|m| runtime.check_manifest(m, &[]).expect("the tree checks"))
        .collect();
    let cold_plans = first_plan.elapsed();
    let fused_manifests: Vec<PathBuf> = FUSED_SIZES
        .iter()
        .map(|&n| components.manifest(&dir, n, None, true))
        .collect();
    // Each with the time its first check took (composing, then compiling the
    // composite, or up to its refusal).
    let (fused_plans, cold_fused): (Vec<Result<Plan, String>>, Vec<f64>) = fused_manifests
        .iter()
        .map(|m| {
            let t = Instant::now();
            let plan = runtime.check_manifest(m, &[]).map_err(|e| e.to_string());
            (plan, ns(t.elapsed()))
        })
        .unzip();
    if let Err(e) = &fused_plans[0] {
        panic!("the fused chain of {}: {e}", FUSED_SIZES[0]);
    }
    for (plan, &n) in fused_plans.iter().zip(&FUSED_SIZES) {
        let Ok(plan) = plan else { continue };
        assert_eq!(plan.nodes().len(), n, "the fused chain's nanoprocesses");
        for (i, node) in plan.nodes().iter().enumerate() {
            let next: Vec<usize> = (i + 1 < n).then_some(i + 1).into_iter().collect();
            assert_eq!(
                node.fused_children, next,
                "every edge of the {n}-nanoprocess chain fused ({})",
                node.path
            );
        }
    }
    // The same chain, isolated, in `plans`.
    let isolated_of = |n: usize| SIZES.iter().position(|&s| s == n).expect("one of SIZES");

    // Each distinct component compiled once per engine.
    let pres = |engine: &Engine| -> Vec<Vec<InstancePre<Plain>>> {
        let mut linked: HashMap<&Path, InstancePre<Plain>> = HashMap::new();
        SIZES
            .iter()
            .map(|&n| {
                components
                    .tree(n)
                    .into_iter()
                    .map(|c| {
                        linked
                            .entry(c)
                            .or_insert_with(|| plain_pre(engine, c))
                            .clone()
                    })
                    .collect()
            })
            .collect()
    };
    let plain = pres(&plain_engine());
    let pooled = pres(&pooled_engine());

    if !measure {
        for (i, &n) in SIZES.iter().enumerate() {
            let trees = start_trees(&plans[i], 1);
            assert_eq!(trees.len(), 1);
            assert_eq!(plain_instances(&plain[i], 1).len(), n);
            assert_eq!(plain_instances(&pooled[i], 1).len(), n);
        }
        for (plan, n) in fused_plans.iter().zip(FUSED_SIZES) {
            match plan {
                Ok(plan) => assert_eq!(start_trees(plan, 1).len(), 1),
                Err(e) => println!("instantiate bench: the fused chain of {n} is refused: {e}"),
            }
        }
        let status = Command::new("/bin/true").status().expect("/bin/true");
        assert!(status.success());
        for (what, size, trees) in [
            ("nanoproc", 1, 3),
            ("plain", 1, 3),
            ("nanoproc", 20, 2),
            ("fused", FUSED_PROBE.0, 2),
        ] {
            let out = run_probe(what, size, trees);
            assert_eq!(out.last_count(), size * trees, "{what} probe: {out:?}");
        }
        println!(
            "instantiate bench: ok, each tree started once (the chains also fused) and the \
             memory probes ran; \
             `cargo bench -p nanoproc-bench --bench instantiate` measures"
        );
        return;
    }

    // Time: wall and CPU per nanoprocess, per configuration and size.
    let mut start = Samples::new();
    let mut drop_t = Samples::new();
    let mut plain_t = Samples::new();
    let mut pooled_t = Samples::new();
    let mut spawn_ns = Vec::new();
    let mut warm_check_ns = Vec::new();
    let mut alive = vec![0usize; SIZES.len()];
    // Per fused size: wall and CPU per fused tree (the isolated chain's are
    // `start`'s per-nanoprocess samples times n, from the same rounds); and the
    // warm check of the fused manifest, then of the isolated one.
    let mut fused_t: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); FUSED_SIZES.len()];
    let mut fused_alive = vec![0usize; FUSED_SIZES.len()];
    let mut check_fused: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); FUSED_SIZES.len()];
    for round in 0..WARMUP + MEASURED {
        progress(format!(
            "instantiate: round {} of {}",
            round + 1,
            WARMUP + MEASURED
        ));
        let keep = round >= WARMUP;
        for (i, &n) in SIZES.iter().enumerate() {
            let want = if alive[i] == 0 { BATCH / n } else { alive[i] };
            // Which configuration goes first changes from round to round.
            let mut order = [0, 1, 2];
            order.rotate_left(round % 3);
            for which in order {
                match which {
                    0 => {
                        let (trees, wall, cpu) = timed(|| start_trees(&plans[i], want));
                        alive[i] = trees.len();
                        let count = (trees.len() * n) as f64;
                        let ((), dwall, dcpu) = timed(|| drop(trees));
                        if keep {
                            start.push(i, wall / count, cpu / count);
                            drop_t.push(i, dwall / count, dcpu / count);
                        }
                    }
                    _ => {
                        let pres = if which == 1 { &plain[i] } else { &pooled[i] };
                        let (instances, wall, cpu) = timed(|| plain_instances(pres, want));
                        let count = instances.len() as f64;
                        drop(instances);
                        if keep {
                            let to = if which == 1 {
                                &mut plain_t
                            } else {
                                &mut pooled_t
                            };
                            to.push(i, wall / count, cpu / count);
                        }
                    }
                }
            }
        }
        // The fused chains, right after their isolated twins of this round.
        for (f, &n) in FUSED_SIZES.iter().enumerate() {
            let Ok(plan) = &fused_plans[f] else { continue };
            let want = if fused_alive[f] == 0 {
                (BATCH / n).max(1)
            } else {
                fused_alive[f]
            };
            let (trees, wall, cpu) = timed(|| start_trees(plan, want));
            fused_alive[f] = trees.len();
            let count = trees.len() as f64;
            drop(trees);
            if keep {
                fused_t[f].0.push(wall / count);
                fused_t[f].1.push(cpu / count);
            }
            // The manifest checked again with a warm compile cache, isolated and
            // fused (the fused one composes the chain again).
            let (plan, iso_ns, _) = timed(|| {
                runtime
                    .check_manifest(&manifests[isolated_of(n)], &[])
                    .expect("the tree checks")
            });
            drop(plan);
            let (plan, fus_ns, _) = timed(|| {
                runtime
                    .check_manifest(&fused_manifests[f], &[])
                    .expect("the fused tree checks")
            });
            drop(plan);
            if keep {
                check_fused[f].0.push(fus_ns);
                check_fused[f].1.push(iso_ns);
            }
        }
        let t = Instant::now();
        for _ in 0..SPAWNS {
            let status = Command::new("/bin/true").status().expect("/bin/true");
            assert!(status.success());
        }
        if keep {
            spawn_ns.push(ns(t.elapsed()) / SPAWNS as f64);
        }
        // A whole single-nanoprocess start from the warm compile cache: check the
        // manifest (read, hash, load the cached artifact, link) and start it.
        let t = Instant::now();
        let plan = runtime
            .check_manifest(&manifests[0], &[])
            .expect("the tree checks");
        let tree = plan.start(&RunOptions::default()).expect("starts");
        let warm = t.elapsed();
        drop(tree);
        if keep {
            warm_check_ns.push(ns(warm));
        }
    }

    // Memory, each in a fresh process.
    progress("instantiate: memory probes");
    let nano_mem = run_probe("nanoproc", 1, MAX_LIVE);
    let plain_mem = run_probe("plain", 1, MAX_LIVE);
    let pooled_mem = run_probe("nanoproc", 100, 4);
    let chain1000_mem = run_probe("nanoproc", 1000, 1);
    let chain_mem = run_probe("nanoproc", LONG_CHAIN, 1);
    let granted_mem = run_probe("granted", LONG_CHAIN, 1);
    let (chain, trees) = FUSED_PROBE;
    let chain_iso_mem = run_probe("nanoproc", chain, trees);
    let chain_fused_mem = run_probe("fused", chain, trees);
    drop(cache);

    report(&Report {
        start: &start,
        drop: &drop_t,
        plain: &plain_t,
        pooled: &pooled_t,
        alive: &alive,
        spawn: &spawn_ns,
        warm_check: &warm_check_ns,
        cold_plans: ns(cold_plans),
        nano_mem: &nano_mem,
        plain_mem: &plain_mem,
        pooled_mem: &pooled_mem,
        chain1000_mem: &chain1000_mem,
        chain_mem: &chain_mem,
        granted_mem: &granted_mem,
    });
    fused_report(&FusedReport {
        start: &fused_t,
        refused: &fused_plans
            .iter()
            .map(|p| p.as_ref().err().cloned())
            .collect::<Vec<_>>(),
        isolated: &start,
        isolated_alive: &alive,
        check: &check_fused,
        alive: &fused_alive,
        cold: &cold_fused,
        plain: &plain_t,
        cold_isolated: ns(cold_plans),
        iso_mem: &chain_iso_mem,
        fused_mem: &chain_fused_mem,
    });
}

/// Plain wasmtime with nanoproc's settings and the pooling allocator, with room
/// for a batch (and a few more): the anchor of the reference figure
/// (12-15 µs per instance with pooling).
fn pooled_engine() -> Engine {
    let slots = (BATCH + 100) as u32;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * 16)
        .max_core_instances_per_component(64)
        .total_memories(slots * 4)
        .max_memories_per_component(8)
        .total_tables(slots * 16)
        .max_tables_per_component(32);
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.concurrency_support(false);
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    config.epoch_interruption(true);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).expect("a pooled engine")
}

/// Starts up to `count` trees of `plan` and keeps them alive. A plan may have
/// fewer slots than that (a pooled plan has room for four trees): it stops at the
/// first tree that cannot start, after at least one.
fn start_trees(plan: &Plan, count: usize) -> Vec<Tree> {
    let mut trees = Vec::with_capacity(count);
    for _ in 0..count {
        match plan.start(&RunOptions::default()) {
            Ok(tree) => trees.push(tree),
            Err(e) if trees.is_empty() => panic!("the tree does not start: {e}"),
            Err(_) => break,
        }
    }
    trees
}

/// Instantiates every component of a tree `count` times under plain wasmtime, one
/// store each, and keeps them alive.
fn plain_instances(pres: &[InstancePre<Plain>], count: usize) -> Vec<(Store<Plain>, Instance)> {
    let mut out = Vec::with_capacity(pres.len() * count);
    for _ in 0..count {
        for pre in pres {
            let mut store = plain_store(pre.engine(), WasiCtxBuilder::new().build());
            let instance = pre.instantiate(&mut store).expect("instantiates");
            out.push((store, instance));
        }
    }
    out
}

/// What a memory probe reported: `(live nanoprocesses, RSS delta, seconds)` at each
/// checkpoint, and why it stopped.
#[derive(Debug, Default)]
struct Probe {
    points: Vec<(usize, u64, f64)>,
    stopped: String,
}

impl Probe {
    fn last_count(&self) -> usize {
        self.points.last().map_or(0, |p| p.0)
    }

    /// RSS per nanoprocess at the last checkpoint with at most `n` live.
    fn per(&self, n: usize) -> Option<(usize, f64)> {
        self.points
            .iter()
            .rfind(|p| p.0 <= n)
            .map(|&(count, rss, _)| (count, rss as f64 / count as f64))
    }

    /// The most live nanoprocesses seen within 1 GiB of RSS.
    fn most_within_gib(&self) -> usize {
        self.points
            .iter()
            .filter(|p| p.1 <= GIB)
            .map(|p| p.0)
            .max()
            .unwrap_or(0)
    }
}

/// Runs this benchmark again as `memory-probe <what> <size> <trees>` in a fresh
/// process: `trees` trees of `size` nanoprocesses kept alive (`what` = `nanoproc`;
/// `granted`, every dependency granted `GRANTED_MEMORY`; `fused`, every edge
/// fused), or `trees` plain wasmtime instances (`what` = `plain`, `size` 1).
fn run_probe(what: &str, size: usize, trees: usize) -> Probe {
    let out = Command::new(std::env::current_exe().expect("this benchmark's path"))
        .args(["memory-probe", what, &size.to_string(), &trees.to_string()])
        .output()
        .expect("running the memory probe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut probe = Probe::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["live", n, rss, secs] => probe.points.push((
                n.parse().unwrap_or(0),
                rss.parse().unwrap_or(0),
                secs.parse().unwrap_or(0.0),
            )),
            ["stopped", ..] => probe.stopped = line["stopped ".len()..].to_owned(),
            _ => {}
        }
    }
    probe.stopped = shorten(&probe.stopped);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        probe.stopped = shorten(&format!(
            "the probe process failed ({}): {last}",
            out.status
        ));
    }
    probe
}

/// Shortens the long words of a message (the path of a nanoprocess deep in a chain
/// is `n0/n1/.../n759`) to their ends.
fn shorten(message: &str) -> String {
    message
        .split(' ')
        .map(|word| {
            let chars: Vec<char> = word.chars().collect();
            if chars.len() <= 60 {
                word.to_owned()
            } else {
                let head: String = chars[..24].iter().collect();
                let tail: String = chars[chars.len() - 24..].iter().collect();
                format!("{head}…{tail}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// In a fresh process: keeps `trees` trees of `size` nanoprocesses (or plain
/// instances) alive, or as many as fit in 1 GiB more RSS, printing
/// `live <n> <rss delta> <seconds>` at checkpoints and `stopped <why>` at the end.
fn memory_probe(what: &str, size: usize, trees: usize) {
    let components = Components::get();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().canonicalize().expect("temporary directory");
    let checkpoint =
        |n: usize| n == trees * size || n == 100 || (n >= 1000 && n.is_multiple_of(1000));
    // Prints a checkpoint; false once 1 GiB is reached.
    let report = |n: usize, base: u64, t: Instant| {
        let rss = rss_bytes().saturating_sub(base);
        println!("live {n} {rss} {}", t.elapsed().as_secs_f64());
        if rss > GIB {
            println!("stopped after {n} live: 1 GiB of RSS reached");
            return false;
        }
        true
    };
    let stopped = |live: usize, e: &dyn std::fmt::Display| {
        let e = e.to_string();
        let e = e.lines().next().unwrap_or("");
        match nanoproc_bench::mappings() {
            0 => println!("stopped at {live} live: {e}"),
            maps => println!("stopped at {live} live: {e} ({maps} mappings)"),
        }
    };
    match what {
        "nanoproc" | "granted" | "fused" => {
            let runtime = Runtime::new()
                .expect("nanoproc runtime")
                // Its chains are deeper than the default cap, on purpose.
                .with_max_depth(usize::MAX);
            let memory = (what == "granted").then_some(GRANTED_MEMORY);
            let manifest = components.manifest(&dir, size, memory, what == "fused");
            // A long chain recurses in the runtime: a large stack for this thread.
            let body = || {
                let plan = match runtime.check_manifest(&manifest, &[]) {
                    Ok(plan) => plan,
                    Err(e) => return stopped(0, &e),
                };
                // Warm: code mapped, the ticker thread started. Not for a large tree:
                // the memory it frees would be reused by the measured one.
                if size < 1000 {
                    match plan.start(&RunOptions::default()) {
                        Ok(tree) => drop(tree),
                        Err(e) => return stopped(0, &e),
                    }
                }
                let base = rss_bytes();
                let t = Instant::now();
                let mut live: Vec<Tree> = Vec::new();
                for i in 1..=trees {
                    match plan.start(&RunOptions::default()) {
                        Ok(tree) => live.push(tree),
                        Err(e) => return stopped((i - 1) * size, &e),
                    }
                    let n = i * size;
                    if (checkpoint(n) || size > 1) && !report(n, base, t) {
                        return;
                    }
                }
                println!("stopped after {} live: all asked for", trees * size);
            };
            std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .stack_size(1 << 30)
                    .spawn_scoped(scope, body)
                    .expect("a thread")
                    .join()
                    .expect("the probe thread");
            });
        }
        "plain" => {
            let engine = plain_engine();
            let pre = plain_pre(&engine, &components.direct);
            drop(plain_instances(std::slice::from_ref(&pre), 1));
            let base = rss_bytes();
            let t = Instant::now();
            let mut live = Vec::new();
            for n in 1..=trees {
                let mut store = plain_store(&engine, WasiCtxBuilder::new().build());
                match pre.instantiate(&mut store) {
                    Ok(instance) => live.push((store, instance)),
                    Err(e) => return stopped(n - 1, &e),
                }
                if checkpoint(n) && !report(n, base, t) {
                    return;
                }
            }
            println!("stopped after {trees} live: all asked for");
        }
        _ => panic!("unknown probe {what}"),
    }
}

/// Per tree size: wall and CPU nanoseconds per nanoprocess, one pair per run.
struct Samples {
    wall: Vec<Vec<f64>>,
    cpu: Vec<Vec<f64>>,
}

impl Samples {
    fn new() -> Samples {
        Samples {
            wall: vec![Vec::new(); SIZES.len()],
            cpu: vec![Vec::new(); SIZES.len()],
        }
    }

    fn push(&mut self, size: usize, wall: f64, cpu: f64) {
        self.wall[size].push(wall);
        self.cpu[size].push(cpu);
    }

    fn wall(&self, size: usize) -> Stats {
        Stats::of(&self.wall[size])
    }

    fn cpu(&self, size: usize) -> Stats {
        Stats::of(&self.cpu[size])
    }
}

struct Report<'a> {
    start: &'a Samples,
    drop: &'a Samples,
    plain: &'a Samples,
    pooled: &'a Samples,
    alive: &'a [usize],
    spawn: &'a [f64],
    warm_check: &'a [f64],
    cold_plans: f64,
    nano_mem: &'a Probe,
    plain_mem: &'a Probe,
    pooled_mem: &'a Probe,
    chain1000_mem: &'a Probe,
    chain_mem: &'a Probe,
    granted_mem: &'a Probe,
}

fn report(r: &Report) {
    let spawn = Stats::of(r.spawn);
    println!("## Starting nanoprocesses\n");
    println!(
        "`cargo bench -p nanoproc-bench --bench instantiate`. Each tree is planned once \
         (compiled and checked, outside the timing). `Plan::start` instantiates every \
         nanoprocess with its grants and keeps the tree alive without entering the root; \
         up to {BATCH} nanoprocesses are started and kept alive at a time, then dropped (a \
         plan of {POOL_FROM} to {POOL_UP_TO} nanoprocesses gets a pooling allocator with room \
         for four trees, so fewer are alive at once there). The 1-nanoprocess tree is \
         `bench_direct.wasm` (a command); the 10- and 100-nanoprocess trees are chains \
         `bench_parent` → `bench_relay` × (N-2) → `bench_child`. Anchors: plain wasmtime \
         instantiating the same components as many times, one `Store` each with a \
         wasmtime-wasi context (`WasiCtxBuilder::new().build()`), then \
         `InstancePre::instantiate`, on an engine with nanoproc's settings (component model, \
         epoch interruption, no backtrace details), with wasmtime's default on-demand \
         allocator and with a pooling allocator ({} component instances); and \
         `std::process::Command::new(\"/bin/true\").status()` (glibc `posix_spawn`, then \
         `waitpid`), {SPAWNS} per run. {WARMUP} warm-up runs, then {MEASURED} measured, \
         interleaved. Per nanoprocess: median (min-max) over the runs.\n",
        BATCH + 100
    );
    println!(
        "| tree | alive at once | nanoproc `Plan::start` | CPU | plain, on-demand | CPU | plain, pooling | nanoproc / plain on-demand (wall, CPU) | nanoproc drop | spawn / nanoproc |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, &n) in SIZES.iter().enumerate() {
        let s = r.start.wall(i);
        let p = r.plain.wall(i);
        println!(
            "| {n} nanoprocess{} | {} | {} | {} | {} | {} | {} | {}, {} | {} | {} |",
            if n == 1 { "" } else { "es" },
            r.alive[i] * n,
            s.ns_cell(),
            fmt_ns(r.start.cpu(i).median),
            p.ns_cell(),
            fmt_ns(r.plain.cpu(i).median),
            r.pooled.wall(i).ns_cell(),
            fmt_ratio(s.median / p.median),
            fmt_ratio(r.start.cpu(i).median / r.plain.cpu(i).median),
            r.drop.wall(i).ns_cell(),
            fmt_ratio(spawn.median / s.median),
        );
    }
    println!(
        "| `posix_spawn` + wait of `/bin/true` | | {} | | | | | | | |",
        spawn.ns_cell()
    );
    println!();
    println!(
        "CPU: the median CPU time of the measuring thread per nanoprocess \
         (`CLOCK_THREAD_CPUTIME_ID`, user plus system), which, unlike wall time, does not grow \
         while other processes have the CPU.\n"
    );
    let warm = Stats::of(r.warm_check);
    println!(
        "From the manifest, with a warm compile cache, in a process that already has its \
         engine: `Runtime::check_manifest` plus `Plan::start` of the 1-nanoprocess tree takes \
         {} (read and hash the component, load the cached artifact, check, link, \
         instantiate). Planning the three trees the first time, with an empty cache \
         (Cranelift compiles `bench_direct`, `bench_parent`, `bench_relay` and \
         `bench_child`), took {}.\n",
        warm.ns_cell(),
        fmt_ns(r.cold_plans)
    );

    println!("### Memory\n");
    println!(
        "Each line in a fresh process (this benchmark run again as `memory-probe`), so \
         that no memory freed by earlier measurements is reused: resident memory \
         (`/proc/self/statm`) after starting the nanoprocesses, minus before (after one \
         warm-up start, except for the trees of 1000 or more). The nanoprocesses are started and idle: their roots have not run. \
         A probe stops at 1 GiB of added RSS, at the first start that fails, or when it has \
         all it asked for.\n"
    );
    println!("| what | live | RSS added | per nanoprocess | time to start them all | stopped |");
    println!("|---|---:|---:|---:|---:|---|");
    let row = |label: &str, p: &Probe| {
        if let Some(&(n, rss, secs)) = p.points.last() {
            println!(
                "| {label} | {n} | {} | {} | {:.2} s | {} |",
                fmt_bytes(rss as f64),
                fmt_bytes(rss as f64 / n as f64),
                secs,
                p.stopped
            );
        } else {
            println!("| {label} | 0 | | | | {} |", p.stopped);
        }
    };
    row(
        &format!("nanoproc, single-nanoprocess trees (`bench_direct`), up to {MAX_LIVE}"),
        r.nano_mem,
    );
    row(
        &format!("plain wasmtime (on-demand), instances of `bench_direct`, up to {MAX_LIVE}"),
        r.plain_mem,
    );
    row(
        "nanoproc, 4 chains of 100 nanoprocesses (pooling allocator)",
        r.pooled_mem,
    );
    row("nanoproc, one chain of 1000 nanoprocesses", r.chain1000_mem);
    row(
        &format!("nanoproc, one chain of {LONG_CHAIN} nanoprocesses"),
        r.chain_mem,
    );
    row(
        &format!(
            "nanoproc, one chain of {LONG_CHAIN}, every dependency granted `memory = \"{GRANTED_MEMORY}\"`"
        ),
        r.granted_mem,
    );
    println!();
    let idle = r.nano_mem.per(1000);
    if let (Some((n, per)), Some((_, plain))) = (idle, r.plain_mem.per(1000)) {
        println!(
            "At {n} live: {} per nanoprocess, {} per plain instance.\n",
            fmt_bytes(per),
            fmt_bytes(plain)
        );
    }

    // Targets.
    let one = r.start.wall(0);
    let one_cpu = r.start.cpu(0);
    let ratio = spawn.median / one.median;
    target_row(
        "a nanoprocess starts in ≤ 15 µs from a warm cache",
        &format!(
            "{} (1-nanoprocess tree; CPU time {})",
            fmt_ns(one.median),
            fmt_ns(one_cpu.median)
        ),
        one.median <= 15_000.0,
        &over(one.median, 15_000.0),
    );
    target_row(
        "… ≥ 20x faster than spawning a process",
        &format!(
            "{} ({} / {})",
            fmt_ratio(ratio),
            fmt_ns(spawn.median),
            fmt_ns(one.median)
        ),
        ratio >= 20.0,
        &short(ratio, 20.0),
    );
    match idle {
        Some((n, per)) => target_row(
            "≤ 16 KiB resident memory per idle nanoprocess",
            &format!("{} (over {n} live)", fmt_bytes(per)),
            per <= 16.0 * 1024.0,
            &over(per, 16.0 * 1024.0),
        ),
        None => target_row(
            "≤ 16 KiB resident memory per idle nanoprocess",
            "not measured",
            false,
            &r.nano_mem.stopped,
        ),
    }
    let most = r.nano_mem.most_within_gib();
    target_row(
        "10,000 live nanoprocesses in one host process",
        &format!(
            "{most} live single-nanoprocess trees within 1 GiB RSS; one tree of {LONG_CHAIN}: {}",
            match r.granted_mem.points.last() {
                Some(&(n, rss, _)) if n == LONG_CHAIN => format!(
                    "starts only with larger memory grants ({} RSS)",
                    fmt_bytes(rss as f64)
                ),
                _ => "does not start".to_owned(),
            }
        ),
        most >= 10_000,
        &format!("{most} of 10,000: {}", r.nano_mem.stopped),
    );

    println!("### Against the targets\n");
    let plain_one = r.plain.wall(0);
    let plain_cpu = r.plain.cpu(0);
    let extra_cpu = one_cpu.median - plain_cpu.median;
    println!(
        "* **Start ≤ 15 µs: {}** ({} wall, {} CPU for a 1-nanoprocess tree; plain wasmtime \
         needs {} wall, {} CPU on-demand, and {} wall pooled, for the same instantiation). \
         {}{}",
        if one.median <= 15_000.0 {
            "met"
        } else {
            "missed"
        },
        fmt_ns(one.median),
        fmt_ns(one_cpu.median),
        fmt_ns(plain_one.median),
        fmt_ns(plain_cpu.median),
        fmt_ns(r.pooled.wall(0).median),
        if extra_cpu > 0.0 {
            format!(
                "nanoproc adds about {} of CPU per start over plain wasmtime: its store data \
                 (the WASI context built from the capabilities, the limiter, the resource \
                 table), the epoch callback, and finding the root's `run`.",
                fmt_ns(extra_cpu)
            )
        } else {
            "nanoproc adds nothing measurable over plain wasmtime here (the difference is \
             within the noise)."
                .to_owned()
        },
        if one.median > 15_000.0 && plain_one.median > 0.8 * 15_000.0 {
            format!(
                " Plain wasmtime alone needs most of the 15 µs (or more) on this machine, so \
             the target leaves nanoproc almost nothing: closing it takes a cheaper \
             instantiation, not a cheaper nanoproc layer. The candidates are a pooling \
             allocator for every plan (today only trees of {POOL_FROM} to {POOL_UP_TO} get one), a WASI \
             context prepared once per capability set and cloned per start, and, for many \
             short-lived nanoprocesses, reusing instances."
            )
        } else {
            String::new()
        },
    );
    println!(
        "* **≥ 20x faster than a process: {}** ({}).",
        if ratio >= 20.0 { "met" } else { "missed" },
        fmt_ratio(ratio)
    );
    if let Some((_, per)) = idle {
        println!(
            "* **≤ 16 KiB idle: {}** ({}). An idle instance's linear memory is wasmtime's \
             copy-on-write image of the component's data, so only the pages start-up \
             touched are resident; the rest is the store, the instance's tables and vmctx, \
             and nanoproc's store data (WASI context, resource table, limiter).",
            if per <= 16.0 * 1024.0 {
                "met"
            } else {
                "missed"
            },
            fmt_bytes(per)
        );
    }
    let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|m| m.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    println!(
        "* **10,000 live: {}** ({most} single-nanoprocess trees within 1 GiB; the probe \
         stopped {}).{}",
        if most >= 10_000 { "met" } else { "missed" },
        r.nano_mem.stopped,
        if r.nano_mem.stopped.contains("os error 12") {
            format!(
                " What stopped it is not resident memory but the kernel's limit on mappings \
                 per process (`vm.max_map_count`, {max_maps} here): the on-demand allocator \
                 maps each linear memory on its own (its reservation, guard and \
                 copy-on-write image), about four mappings per nanoprocess. Raising the \
                 sysctl, or a pooling allocator (one mapping for all its slots), lifts that; \
                 the address space then limits on-demand instances, at about 4 GiB of \
                 reservation each."
            )
        } else {
            String::new()
        }
    );
    let chain = |p: &Probe| {
        if p.last_count() > 0 {
            format!("{} live, stopped {}", p.last_count(), p.stopped)
        } else {
            format!("did not start: {}", p.stopped)
        }
    };
    let pool_failed = [r.chain_mem, r.chain1000_mem]
        .iter()
        .any(|p| p.stopped.contains("pool"));
    let budget_failed = [r.chain_mem, r.chain1000_mem]
        .iter()
        .any(|p| p.stopped.contains("memory limit"));
    let mut why = String::new();
    if pool_failed {
        why += " A plan in the pooling allocator's range reserves slots for four trees up \
                front, every memory slot as large as the largest memory any of its \
                nanoprocesses may have (4 GiB for an unlimited root) plus guard regions: \
                sizing the slots by what each nanoprocess may really use would make room.";
    }
    if budget_failed {
        why += " Memory limits are budgets per subtree: a dependency that sets none gets \
                256 MiB for itself and everything below it, and each of these Rust \
                nanoprocesses starts with about 1 MiB of linear memory, so under default \
                limits a dependency's subtree holds only a couple of hundred of them (the \
                tree is instantiated from the leaves up, and fails when its first \
                dependency's budget is full). That is the budget working as designed; a \
                deep or wide tree needs its manifest to grant larger `memory` limits near \
                the root, as the granted chain does.";
    }
    if let (Some(&(n, rss, _)), Some((_, single))) =
        (r.granted_mem.points.last(), r.nano_mem.per(1000))
    {
        let per = rss as f64 / n as f64;
        if per > 2.0 * single {
            why += &format!(
                " The granted chain costs {} per nanoprocess against {} for single \
                 trees: every nanoprocess keeps the list of all its ancestors' memory \
                 budgets (in its limiter, and again in its parent's handle to it), so the \
                 memory per nanoprocess grows with its depth and a chain's total with the \
                 square of its length. Linking each budget to its parent's, instead of \
                 copying the whole list into every nanoprocess, would make it constant.",
                fmt_bytes(per),
                fmt_bytes(single)
            );
        }
    }
    println!(
        "* **One tree of {LONG_CHAIN}**: under default limits, {}; a chain of 1000: {}; \
         with every dependency granted `memory = \"{GRANTED_MEMORY}\"`: {}.{why}\n",
        chain(r.chain_mem),
        chain(r.chain1000_mem),
        chain(r.granted_mem),
    );
}

struct FusedReport<'a> {
    /// Per fused size: wall and CPU nanoseconds per tree, one per run.
    start: &'a [(Vec<f64>, Vec<f64>)],
    /// Per fused size: why the runtime refused to fuse it, if it did.
    refused: &'a [Option<String>],
    /// The isolated trees (per nanoprocess, by `SIZES`), from the same rounds.
    isolated: &'a Samples,
    isolated_alive: &'a [usize],
    /// Per fused size: the warm check of the fused manifest, then of the isolated.
    check: &'a [(Vec<f64>, Vec<f64>)],
    alive: &'a [usize],
    /// Per fused size: its first check.
    cold: &'a [f64],
    cold_isolated: f64,
    /// Plain wasmtime's instantiations (per nanoprocess, by `SIZES`).
    plain: &'a Samples,
    iso_mem: &'a Probe,
    fused_mem: &'a Probe,
}

fn fused_report(r: &FusedReport) {
    println!("### Fused trees\n");
    println!(
        "The chains again with every edge `isolation = \"fused\"`: the whole chain composed \
         into one component when the manifest is checked (flat: every nanoprocess one \
         instance of one composite, each with its own linear memory and its own \
         capabilities through named imports), started as one store. Timed per tree in the \
         same rounds as the isolated chains above, right after them; a tree is not \
         entered. Check: `Runtime::check_manifest` again with a warm compile cache (read, \
         hash, load the cached artifact, link; a fused manifest composes its chain again \
         first, then finds the composite in the cache). Per tree: median (min-max).\n"
    );
    println!(
        "| chain | isolated `Plan::start` per tree | CPU | fused `Plan::start` per tree | CPU | isolated / fused (wall, CPU) | trees alive at once (isolated, fused) | check, warm cache: isolated | fused |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (f, &n) in FUSED_SIZES.iter().enumerate() {
        let i = SIZES.iter().position(|&s| s == n).expect("one of SIZES");
        let per_tree = |s: Stats| Stats {
            median: s.median * n as f64,
            min: s.min * n as f64,
            max: s.max * n as f64,
        };
        let iso = per_tree(r.isolated.wall(i));
        let iso_cpu = r.isolated.cpu(i).median * n as f64;
        if let Some(why) = &r.refused[f] {
            println!(
                "| {n} nanoprocesses | {} | {} | refused at check: {} | | | {} | | |",
                iso.ns_cell(),
                fmt_ns(iso_cpu),
                shorten(&why.replace('\n', " ").replace('|', "/")),
                r.isolated_alive[i],
            );
            continue;
        }
        let fused = Stats::of(&r.start[f].0);
        let fused_cpu = Stats::of(&r.start[f].1).median;
        println!(
            "| {n} nanoprocesses | {} | {} | {} | {} | {}, {} | {}, {} | {} | {} |",
            iso.ns_cell(),
            fmt_ns(iso_cpu),
            fused.ns_cell(),
            fmt_ns(fused_cpu),
            fmt_ratio(iso.median / fused.median),
            fmt_ratio(iso_cpu / fused_cpu),
            r.isolated_alive[i],
            r.alive[f],
            Stats::of(&r.check[f].1).ns_cell(),
            Stats::of(&r.check[f].0).ns_cell(),
        );
    }
    println!();
    for (why, n) in r.refused.iter().zip(FUSED_SIZES) {
        let Some(why) = why else { continue };
        if why.contains("pooling allocator") {
            println!(
                "The fused chain of {n} is refused when it is checked. A plan of \
                 {POOL_FROM} to {POOL_UP_TO} nanoprocesses gets a pooling allocator \
                 (`crates/nanoproc-runtime/src/engine.rs`) whose limits per component \
                 (64 core instances, 8 memories) are sized for one nanoprocess's \
                 component, while a fused chain of {n} is one component holding all {n}: \
                 the pool would need to be sized by what each store holds, not by the \
                 number of nanoprocesses. Until then a fused subtree has to stay under \
                 those limits, or the plan under {POOL_FROM} nanoprocesses.\n"
            );
        } else {
            println!("The fused chain of {n} is refused when it is checked.\n");
        }
    }
    let cold: Vec<String> = FUSED_SIZES
        .iter()
        .zip(r.cold)
        .zip(r.refused)
        .map(|((n, &t), refused)| {
            format!(
                "{} for the chain of {n}{}",
                fmt_ns(t),
                if refused.is_some() {
                    " (up to its refusal)"
                } else {
                    ""
                }
            )
        })
        .collect();
    println!(
        "Checking each fused chain the first time, with a compile cache that already held \
         the four components (composing the chain, then Cranelift compiling the \
         composite), took {}; planning the three isolated trees with an empty cache took \
         {}.\n",
        cold.join(", "),
        fmt_ns(r.cold_isolated)
    );
    let (chain, trees) = FUSED_PROBE;
    let per_tree = |p: &Probe| {
        p.points
            .last()
            .and_then(|&(n, rss, _)| (n == chain * trees).then(|| rss as f64 / trees as f64))
    };
    match (per_tree(r.iso_mem), per_tree(r.fused_mem)) {
        (Some(iso), Some(fused)) => println!(
            "Idle memory, {trees} chains of {chain} in a fresh process (as in the memory \
             table above): isolated {} per chain ({} per nanoprocess), fused {} per chain \
             ({} per nanoprocess): {} of the isolated chain's.\n",
            fmt_bytes(iso),
            fmt_bytes(iso / chain as f64),
            fmt_bytes(fused),
            fmt_bytes(fused / chain as f64),
            fmt_ratio(fused / iso),
        ),
        _ => println!(
            "Idle memory, {trees} chains of {chain}: not measured (isolated: {}; fused: {}).\n",
            r.iso_mem.stopped, r.fused_mem.stopped
        ),
    }
    let (f, n) = (0, FUSED_SIZES[0]);
    let i = SIZES.iter().position(|&s| s == n).expect("one of SIZES");
    let iso = r.isolated.wall(i).median * n as f64;
    let fused = Stats::of(&r.start[f].0).median;
    let plain = r.plain.wall(i).median * n as f64;
    let check_iso = Stats::of(&r.check[f].1).median;
    let check_fused = Stats::of(&r.check[f].0).median;
    println!(
        "A fused chain of {n} starts in {} of the isolated chain's time ({} against {}). \
         Either way each of its {n} nanoprocesses has its own core instances and linear \
         memory to instantiate, and that is most of the cost: plain wasmtime instantiating \
         the same {n} components, one store each, takes {} here. What fusing saves is \
         per call (the calls benchmark) and in idle memory (above); what it costs is at \
         check time, where the chain is composed again at every check ({} against {} \
         with a warm cache), and the isolation of failures and limits between its \
         nanoprocesses (see the calls benchmark's \"Fused or isolated\").\n",
        fmt_ratio(fused / iso),
        fmt_ns(fused),
        fmt_ns(iso),
        fmt_ns(plain),
        fmt_ns(check_fused),
        fmt_ns(check_iso),
    );
}
