//! What concurrency support costs: the engine setting WASI 0.3 needs, which nanoproc
//! turns on only for a plan with a 0.3 (async) component (`plan::compile`,
//! `Plan::has_concurrency_support`), measured side by side in one process,
//! interleaved:
//!
//! * **plain wasmtime**, the anchor: the same component (`bench_child.wasm`) on two
//!   engines that differ only in concurrency support (`Config::concurrency_support`,
//!   with `wasm_component_model_async` when on; `nanoproc_bench::plain_engine` and
//!   `plain_engine_concurrent`): the host calling its export with
//!   `TypedFunc::call`, and, on the engine with concurrency support, with
//!   `TypedFunc::call_async` polled to completion (what nanoproc does to call into a
//!   0.3 nanoprocess); and `bench_parent.wasm` calling host functions (`func_wrap`).
//! * **nanoproc**, a parent → child call (the loop of `guests/bench-common`, timed
//!   inside the guest) in six plans:
//!   - 0.2 only: `bench_parent` → `bench_child`, the plan of `benches/calls.rs` (c);
//!   - 0.2 only, three nodes: `bench_mixed_parent` (the same loop and calls, and one
//!     more import, `test:probe/probe`) → `bench_child`, its other import served by
//!     `probe_leaf` (0.2);
//!   - mixed: the same, the other import served by `probe3_leaf` (0.3): the same
//!     0.2 parent and 0.2 child, an engine with concurrency support;
//!   - 0.2 → 0.3: `bench_parent` → `bench3_child` (the 0.3 twin of `bench_child`);
//!   - 0.3 → 0.2: `bench3_parent` (the 0.3 twin of `bench_parent`, a `run@0.3`
//!     command) → `bench_child`;
//!   - 0.3 → 0.3: `bench3_parent` → `bench3_child`.
//! * **starting a nanoprocess**: plain wasmtime instantiating `bench_child` on both
//!   engines and `bench3_child` on the one with concurrency support; nanoproc
//!   starting the two-node trees above (`Plan::start`, dropped at once).
//!
//! Every plan's engine is checked against what it must be (a plan of 0.2 components
//! has concurrency support off, any plan with a 0.3 component has it on), whenever
//! this runs: `cargo test --benches` checks it too.

use nanoproc_bench::{
    Plain, Stats, fmt_ns, fmt_ratio, measuring, plain_engine, plain_engine_concurrent, plain_pre,
    plain_store, private_compile_cache, progress, run_plain, target_row, toml_str, write,
};
use nanoproc_runtime::{Plan, RunOptions, Runtime};
use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use wasmtime::component::{Component, InstancePre, Linker, TypedFunc};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sync::CommandPre;

const KINDS: [(&str, &str); 2] = [
    ("noop", "`noop()`"),
    ("echo16", "`echo(string) -> string`, 16 B"),
];

/// A nanoproc plan: its parent, child and, for the three-node plans, the node
/// serving the parent's other import.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Tree {
    Only02,
    Third02,
    Mixed,
    P2P3,
    P3P2,
    P3P3,
}

const TREES: [Tree; 6] = [
    Tree::Only02,
    Tree::Third02,
    Tree::Mixed,
    Tree::P2P3,
    Tree::P3P2,
    Tree::P3P3,
];

/// The two-node trees whose start is timed.
const STARTED: [Tree; 4] = [Tree::Only02, Tree::P2P3, Tree::P3P2, Tree::P3P3];

impl Tree {
    /// (root, child, third node) guest names.
    fn components(self) -> (&'static str, &'static str, Option<&'static str>) {
        match self {
            Tree::Only02 => ("bench_parent", "bench_child", None),
            Tree::Third02 => ("bench_mixed_parent", "bench_child", Some("probe_leaf")),
            Tree::Mixed => ("bench_mixed_parent", "bench_child", Some("probe3_leaf")),
            Tree::P2P3 => ("bench_parent", "bench3_child", None),
            Tree::P3P2 => ("bench3_parent", "bench_child", None),
            Tree::P3P3 => ("bench3_parent", "bench3_child", None),
        }
    }

    /// Whether root, child and third node are 0.3 components.
    fn generations(self) -> [bool; 3] {
        let (root, child, third) = self.components();
        let is_03 = |name: &str| name.contains('3');
        [is_03(root), is_03(child), third.is_some_and(is_03)]
    }

    /// Whether the plan's engine must have concurrency support.
    fn concurrent(self) -> bool {
        self.generations().contains(&true)
    }

    fn label(self) -> &'static str {
        match self {
            Tree::Only02 => "0.2 → 0.2, a plan of 0.2 components (`calls` (c))",
            Tree::Third02 => "0.2 → 0.2, a plan of 0.2 components with a third node (0.2)",
            Tree::Mixed => "0.2 → 0.2 in a **mixed plan** (the third node 0.3)",
            Tree::P2P3 => "0.2 → 0.3",
            Tree::P3P2 => "0.3 → 0.2",
            Tree::P3P3 => "0.3 → 0.3",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Tree::Only02 => "0.2-only",
            Tree::Third02 => "0.2-only (3 nodes)",
            Tree::Mixed => "mixed",
            Tree::P2P3 => "0.2 → 0.3",
            Tree::P3P2 => "0.3 → 0.2",
            Tree::P3P3 => "0.3 → 0.3",
        }
    }
}

/// A plain wasmtime anchor.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Anchor {
    /// Host → guest `TypedFunc::call`, concurrency support off / on.
    HostOff,
    HostOn,
    /// Host → guest `TypedFunc::call_async`, polled to completion, support on.
    HostAsync,
    /// Guest → host (`func_wrap`), timed in the guest, support off / on.
    GuestHostOff,
    GuestHostOn,
}

const ANCHORS: [Anchor; 5] = [
    Anchor::HostOff,
    Anchor::HostOn,
    Anchor::HostAsync,
    Anchor::GuestHostOff,
    Anchor::GuestHostOn,
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Config {
    Plain(Anchor),
    Nano(Tree),
}

/// What is instantiated in the start-up measurements.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Start {
    /// Plain wasmtime: `bench_child` (support off / on; on, also with
    /// `instantiate_async`), `bench3_child` (on, `instantiate_async`).
    PlainOff,
    PlainOn,
    PlainOnAsync,
    Plain03,
    Nano(Tree),
}

/// Seconds of calls per measured run.
const TARGET_S: f64 = 0.2;
const WARMUP: usize = 1;
const MEASURED: usize = 7;
/// Instantiations per measured batch.
const STARTS: usize = 200;

fn main() {
    let _cache = private_compile_cache();
    let measure = measuring();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().canonicalize().expect("temporary directory");
    let mut setup = Setup::new(&dir);

    let configs: Vec<Config> = ANCHORS
        .iter()
        .map(|&a| Config::Plain(a))
        .chain(TREES.iter().map(|&t| Config::Nano(t)))
        .collect();
    let starts: Vec<Start> = [
        Start::PlainOff,
        Start::PlainOn,
        Start::PlainOnAsync,
        Start::Plain03,
    ]
    .into_iter()
    .chain(STARTED.iter().map(|&t| Start::Nano(t)))
    .collect();

    if !measure {
        for (kind, _) in KINDS {
            for &config in &configs {
                setup
                    .run(config, kind, 2)
                    .unwrap_or_else(|e| panic!("{config:?} {kind}: {e}"));
            }
        }
        for &start in &starts {
            setup.start(start, 1);
        }
        println!(
            "concurrency bench: ok, every call ran twice in every configuration, every tree \
             started, and every plan's engine has concurrency support exactly when one of its \
             components is 0.3; `cargo bench -p nanoproc-bench --bench concurrency` measures"
        );
        return;
    }

    // Calibrate n per (config, kind) to about TARGET_S of calls per run.
    let mut n_of: HashMap<(Config, &str), u64> = HashMap::new();
    for (kind, _) in KINDS {
        for &config in &configs {
            let mut n = 8u64;
            loop {
                let s = setup
                    .run(config, kind, n)
                    .unwrap_or_else(|e| panic!("{config:?} {kind}: {e}"));
                if s >= 0.02e9 || n >= 1 << 30 {
                    let per = s / n as f64;
                    let target = ((TARGET_S * 1e9 / per) as u64).clamp(3, 1 << 30);
                    n_of.insert((config, kind), target);
                    progress(format!("concurrency: {config:?} {kind}: n = {target}"));
                    break;
                }
                n *= 8;
            }
        }
    }

    let mut per_call: HashMap<(Config, &str), Vec<f64>> = HashMap::new();
    let mut per_start: HashMap<Start, Vec<f64>> = HashMap::new();
    for round in 0..WARMUP + MEASURED {
        progress(format!(
            "concurrency: round {} of {}",
            round + 1,
            WARMUP + MEASURED
        ));
        for (kind, _) in KINDS {
            for &config in &configs {
                let n = n_of[&(config, kind)];
                let s = setup
                    .run(config, kind, n)
                    .unwrap_or_else(|e| panic!("{config:?} {kind}: {e}"));
                if round >= WARMUP {
                    per_call
                        .entry((config, kind))
                        .or_default()
                        .push(s / n as f64);
                }
            }
        }
        for &start in &starts {
            let s = setup.start(start, STARTS);
            if round >= WARMUP {
                per_start.entry(start).or_default().push(s / STARTS as f64);
            }
        }
    }
    report(&setup, &per_call, &n_of, &per_start);
}

/// The components, engines and plans, made once.
struct Setup {
    runtime: Runtime,
    /// Per tree: its manifest, the file its root's stdout goes to, and whether its
    /// plan's engine has concurrency support (checked at every check).
    trees: HashMap<Tree, (PathBuf, PathBuf)>,
    /// Plans checked once, for the start-up measurements.
    plans: HashMap<Tree, Plan>,
    host_off: HostCalls,
    host_on: HostCalls,
    guest_host_off: CommandPre<Plain>,
    guest_host_on: CommandPre<Plain>,
    pre_off: InstancePre<Plain>,
    pre_on: InstancePre<Plain>,
    pre_03: InstancePre<Plain>,
}

impl Setup {
    fn new(dir: &Path) -> Setup {
        let off = plain_engine();
        let on = plain_engine_concurrent();
        let child = nanoproc_bench::guest("bench_child");
        let child3 = nanoproc_bench::guest("bench3_child");
        let parent = nanoproc_bench::guest("bench_parent");

        let mut trees = HashMap::new();
        for tree in TREES {
            let (root, child, third) = tree.components();
            let path = |name: &str| toml_str(&nanoproc_bench::guest(name).display().to_string());
            let out = dir.join(format!("{tree:?}-stdout.txt"));
            let manifest = dir.join(format!("{tree:?}.toml"));
            let mut text = format!(
                "[app]\nroot = \"parent\"\n\n\
                 [nanoprocess.parent]\ncomponent = {}\n\
                 grants.stdout = {{ file = {} }}\ngrants.monotonic-clock = true\n",
                path(root),
                toml_str(&out.display().to_string()),
            );
            match third {
                None => text += "deps = { \"bench:calls/api\" = \"child\" }\n",
                Some(_) => {
                    text += "deps = { \"bench:calls/api\" = \"child\", \
                             \"test:probe/probe\" = \"third\" }\n"
                }
            }
            text += &format!("\n[nanoprocess.child]\ncomponent = {}\n", path(child));
            if let Some(third) = third {
                text += &format!("\n[nanoprocess.third]\ncomponent = {}\n", path(third));
            }
            write(&manifest, &text);
            trees.insert(tree, (manifest, out));
        }
        let runtime = Runtime::new().expect("nanoproc runtime");
        let mut setup = Setup {
            runtime,
            trees,
            plans: HashMap::new(),
            host_off: HostCalls::new(&off, &child),
            host_on: HostCalls::new(&on, &child),
            guest_host_off: guest_to_host(&off, &parent),
            guest_host_on: guest_to_host(&on, &parent),
            pre_off: plain_pre(&off, &child),
            pre_on: plain_pre(&on, &child),
            pre_03: plain_pre_03(&on, &child3),
        };
        for tree in STARTED {
            let plan = setup.check(tree, "noop", 1).expect("the plan checks");
            setup.plans.insert(tree, plan);
        }
        setup
    }

    /// Checks a tree's plan for `<kind> <n>`, and that its engine has concurrency
    /// support exactly when one of its components is 0.3, and which of its
    /// nanoprocesses are async.
    fn check(&self, tree: Tree, kind: &str, n: u64) -> Result<Plan, String> {
        let (manifest, _) = &self.trees[&tree];
        let plan = self
            .runtime
            .check_manifest(manifest, &[kind.to_owned(), n.to_string()])
            .map_err(|e| e.to_string())?;
        assert_eq!(
            plan.has_concurrency_support(),
            tree.concurrent(),
            "{tree:?}: the plan's engine has concurrency support {} ({})",
            if plan.has_concurrency_support() {
                "on"
            } else {
                "off"
            },
            if tree.concurrent() {
                "one of its components is 0.3"
            } else {
                "a plan of 0.2 components must not pay for it"
            }
        );
        let async_nodes: Vec<bool> = plan.nodes().iter().map(|n| n.is_async).collect();
        let [root, child, third] = tree.generations();
        let expected: Vec<bool> = if tree.components().2.is_some() {
            vec![root, child, third]
        } else {
            vec![root, child]
        };
        assert_eq!(
            async_nodes, expected,
            "{tree:?}: which nanoprocesses are async"
        );
        Ok(plan)
    }

    /// One run of `n` calls of `kind`: the elapsed nanoseconds of the calls (the
    /// answers checked).
    fn run(&mut self, config: Config, kind: &'static str, n: u64) -> Result<f64, String> {
        let args = [kind.to_owned(), n.to_string()];
        let line = match config {
            Config::Plain(Anchor::HostOff) => return Ok(self.host_off.run(kind, n, false)),
            Config::Plain(Anchor::HostOn) => return Ok(self.host_on.run(kind, n, false)),
            Config::Plain(Anchor::HostAsync) => return Ok(self.host_on.run(kind, n, true)),
            Config::Plain(Anchor::GuestHostOff) => run_plain(&self.guest_host_off, &args, None),
            Config::Plain(Anchor::GuestHostOn) => run_plain(&self.guest_host_on, &args, None),
            Config::Nano(tree) => self.run_tree(tree, kind, n),
        };
        line.and_then(|l| parse(&l, kind, n))
    }

    /// A plan is made for every run and dropped after it, outside the guest's
    /// timing, as in `benches/calls.rs`.
    fn run_tree(&self, tree: Tree, kind: &str, n: u64) -> Result<String, String> {
        let plan = self.check(tree, kind, n)?;
        let out = &self.trees[&tree].1;
        nanoproc_bench::empty_output(out);
        let exit = plan
            .run_with(&RunOptions::default())
            .map_err(|e| e.to_string())?;
        drop(plan);
        if exit.code != 0 {
            return Err(format!("exit status {}", exit.code));
        }
        std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))
    }

    /// `count` instantiations, each dropped at once: the elapsed nanoseconds.
    fn start(&self, start: Start, count: usize) -> f64 {
        let waker = waker();
        let plain = |pre: &InstancePre<Plain>, is_async: bool| {
            let t = Instant::now();
            for _ in 0..count {
                let mut store = plain_store(pre.engine(), WasiCtxBuilder::new().build());
                let instance = if is_async {
                    block_on(&waker, pre.instantiate_async(&mut store))
                } else {
                    pre.instantiate(&mut store)
                };
                black_box(instance.expect("instantiates"));
                drop(store);
            }
            nanoproc_bench::ns(t.elapsed())
        };
        match start {
            Start::PlainOff => plain(&self.pre_off, false),
            Start::PlainOn => plain(&self.pre_on, false),
            Start::PlainOnAsync => plain(&self.pre_on, true),
            Start::Plain03 => plain(&self.pre_03, true),
            Start::Nano(tree) => {
                let plan = &self.plans[&tree];
                let t = Instant::now();
                for _ in 0..count {
                    let started = plan
                        .start(&RunOptions::default())
                        .unwrap_or_else(|e| panic!("{tree:?} does not start: {e}"));
                    drop(black_box(started));
                }
                nanoproc_bench::ns(t.elapsed())
            }
        }
    }
}

/// Wakes the thread that polls a future.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A waker that unparks this thread.
fn waker() -> Waker {
    Waker::from(Arc::new(Unpark(std::thread::current())))
}

/// Polls `future` to completion on this thread, parking between polls: what
/// nanoproc's `drive` does, without its limits and its tokio context. `waker`
/// unparks this thread ([`waker`], made once, outside the timing).
fn block_on<F: Future>(waker: &Waker, future: F) -> F::Output {
    let mut cx = Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// `bench_child` instantiated in a plain store, and the functions measured.
struct HostCalls {
    store: Store<Plain>,
    noop: TypedFunc<(), ()>,
    echo: TypedFunc<(&'static str,), (String,)>,
    waker: Waker,
}

/// The 16-byte string the echo calls send.
const S16: &str = "xxxxxxxxxxxxxxxx";

impl HostCalls {
    fn new(engine: &Engine, child: &Path) -> HostCalls {
        let pre = plain_pre(engine, child);
        let mut store = plain_store(engine, WasiCtxBuilder::new().build());
        let instance = pre
            .instantiate(&mut store)
            .expect("instantiating bench_child");
        let api = instance
            .get_export_index(&mut store, None, "bench:calls/api")
            .expect("bench_child exports bench:calls/api");
        let mut func = |name: &str| {
            let ix = instance
                .get_export_index(&mut store, Some(&api), name)
                .expect("a function of api");
            instance.get_func(&mut store, ix).expect("a function")
        };
        let (noop, echo) = (func("noop"), func("echo"));
        HostCalls {
            noop: noop.typed(&store).expect("noop's type"),
            echo: echo.typed(&store).expect("echo's type"),
            store,
            waker: waker(),
        }
    }

    /// `n` calls from the host into `bench_child`, timed by the host, with
    /// `TypedFunc::call` or (`is_async`) `TypedFunc::call_async` polled to
    /// completion.
    fn run(&mut self, kind: &str, n: u64, is_async: bool) -> f64 {
        let store = &mut self.store;
        let mut check = 0u64;
        let start;
        match kind {
            "noop" => {
                start = Instant::now();
                for _ in 0..n {
                    if is_async {
                        block_on(&self.waker, self.noop.call_async(&mut *store, ()))
                    } else {
                        self.noop.call(&mut *store, ())
                    }
                    .expect("noop");
                    check += 1;
                }
            }
            "echo16" => {
                start = Instant::now();
                for _ in 0..n {
                    let arg = (black_box(S16),);
                    let (r,) = if is_async {
                        block_on(&self.waker, self.echo.call_async(&mut *store, arg))
                    } else {
                        self.echo.call(&mut *store, arg)
                    }
                    .expect("echo");
                    check += r.len() as u64;
                }
            }
            _ => unreachable!("unknown kind {kind}"),
        }
        let elapsed = nanoproc_bench::ns(start.elapsed());
        assert_eq!(check, expected(kind, n), "host calls {kind}: wrong answers");
        elapsed
    }
}

/// `bench_parent` as a plain wasmtime-wasi command whose `bench:calls/api` is
/// served by host functions (`func_wrap`); only `noop` and `echo` are measured,
/// the others trap.
fn guest_to_host(engine: &Engine, parent: &Path) -> CommandPre<Plain> {
    let component = Component::from_file(engine, parent)
        .unwrap_or_else(|e| panic!("{}: {e:#}", parent.display()));
    let mut linker = nanoproc_bench::plain_linker(engine);
    let mut api = linker.instance("bench:calls/api").expect("linking the api");
    api.func_wrap("noop", |_, (): ()| Ok(())).expect("noop");
    api.func_wrap("echo", |_, (s,): (String,)| Ok((s,)))
        .expect("echo");
    for name in ["add", "sum", "nested"] {
        api.func_new(name, move |_, _, _, _| {
            Err(wasmtime::format_err!("{name} is not served by the host"))
        })
        .expect("a trapping function");
    }
    let pre = linker
        .instantiate_pre(&component)
        .unwrap_or_else(|e| panic!("linking bench_parent to the host: {e:#}"));
    CommandPre::new(pre).expect("a command component")
}

/// `bench3_child` linked for plain wasmtime-wasi, WASI 0.2 and 0.3 in one linker
/// (as a host of 0.3 components links them), on the engine with concurrency
/// support.
fn plain_pre_03(engine: &Engine, child: &Path) -> InstancePre<Plain> {
    let component = Component::from_file(engine, child)
        .unwrap_or_else(|e| panic!("{}: {e:#}", child.display()));
    let mut linker: Linker<Plain> = nanoproc_bench::plain_linker(engine);
    wasmtime_wasi::p3::add_to_linker(&mut linker).expect("linking WASI 0.3");
    linker
        .instantiate_pre(&component)
        .unwrap_or_else(|e| panic!("linking bench3_child: {e:#}"))
}

/// Checks the guest's line `<kind> <n> <ns> <check>` and returns the nanoseconds.
fn parse(line: &str, kind: &str, n: u64) -> Result<f64, String> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [k, got_n, ns, check] = fields[..] else {
        return Err(format!("unexpected output {line:?}"));
    };
    if k != kind || got_n != n.to_string() {
        return Err(format!("output {line:?} is not for {kind} {n}"));
    }
    let check: u64 = check
        .parse()
        .map_err(|_| format!("bad checksum in {line:?}"))?;
    if check != expected(kind, n) {
        return Err(format!(
            "wrong answers: checksum {check}, expected {}",
            expected(kind, n)
        ));
    }
    ns.parse().map_err(|_| format!("bad time in {line:?}"))
}

/// The checksum `bench-common` prints for `n` correct answers.
fn expected(kind: &str, n: u64) -> u64 {
    match kind {
        "noop" => n,
        "echo16" => 16 * n,
        _ => unreachable!("unknown kind {kind}"),
    }
}

fn report(
    setup: &Setup,
    per_call: &HashMap<(Config, &str), Vec<f64>>,
    n_of: &HashMap<(Config, &str), u64>,
    per_start: &HashMap<Start, Vec<f64>>,
) {
    let stats = |c: Config, k: &str| Stats::of(&per_call[&(c, k)]);
    let med = |c: Config, k: &str| stats(c, k).median;
    let plain = Config::Plain;
    let nano = Config::Nano;

    println!("## WASI 0.3: what concurrency support costs\n");
    println!(
        "`cargo bench -p nanoproc-bench --bench concurrency`. A WASI 0.3 component (or any \
         component using the component model's async features) can only run on an engine \
         with concurrency support (`Config::concurrency_support`, with \
         `wasm_component_model_async`), and that setting makes every crossing of a store \
         boundary dearer, for every store of the engine. nanoproc therefore gives an engine \
         with concurrency support only to a plan with a 0.3 component (`plan::compile`, \
         `EngineChoice::concurrency`): **a plan of 0.2 components runs on an engine with \
         concurrency support off**. This run checks it on every plan it measures \
         (`Plan::has_concurrency_support()` is false for both 0.2-only plans below and true \
         for the four others, and `PlannedNode::is_async` marks exactly the 0.3 \
         nanoprocesses), as `cargo test --benches` does in CI; \
         `crates/nanoproc-cli/tests/p3_crossings.rs` checks it through `check --json` for \
         every mix of a three-level chain.\n"
    );
    println!(
        "Everything here runs in one process, interleaved: {WARMUP} warm-up round, then \
         {MEASURED} measured rounds of every configuration, each run about {TARGET_S} s of \
         calls. Each cell: median per call (min-max over the runs). Calls from the host are \
         timed by the host; calls from a guest are timed inside the guest (the loop of \
         `guests/bench-common`), as in the cross-nanoprocess calls above.\n"
    );

    // Plain wasmtime.
    println!("### Plain wasmtime: the same component, concurrency support off and on\n");
    println!(
        "The engines of `crates/nanoproc-bench/src/lib.rs`, as nanoproc's: `plain_engine` \
         (epoch checks on, no fuel, backtrace details off, concurrency support off) and \
         `plain_engine_concurrent`, the same with `concurrency_support(true)`, \
         `wasm_component_model_async(true)` and nanoproc's async stack size. The same \
         `bench_child.wasm` (a WASI 0.2 component) and `bench_parent.wasm` on each; the \
         host's functions linked with `func_wrap`.\n"
    );
    println!("| call | concurrency support off | on | on/off |");
    println!("|---|---:|---:|---:|");
    for (kind, label) in KINDS {
        let off = stats(plain(Anchor::HostOff), kind);
        let on = stats(plain(Anchor::HostOn), kind);
        println!(
            "| host → guest `TypedFunc::call`, {label} | {} | {} | **{}** |",
            off.ns_cell(),
            on.ns_cell(),
            fmt_ratio(on.median / off.median)
        );
    }
    for (kind, label) in KINDS {
        let off = stats(plain(Anchor::HostOff), kind);
        let on = stats(plain(Anchor::HostAsync), kind);
        println!(
            "| host → guest `TypedFunc::call_async`, polled to completion, {label} | - | {} | {} (against `call`, off) |",
            on.ns_cell(),
            fmt_ratio(on.median / off.median)
        );
    }
    for (kind, label) in KINDS {
        let off = stats(plain(Anchor::GuestHostOff), kind);
        let on = stats(plain(Anchor::GuestHostOn), kind);
        println!(
            "| guest → host (`func_wrap`), {label} | {} | {} | **{}** |",
            off.ns_cell(),
            on.ns_cell(),
            fmt_ratio(on.median / off.median)
        );
    }
    println!();
    let host_noop_off = med(plain(Anchor::HostOff), "noop");
    let host_noop_on = med(plain(Anchor::HostOn), "noop");
    println!(
        "Entering a store from the host costs {} with concurrency support off and {} with it \
         on, **{}** (issue 15 measured 80 → 402 ns, about 5x, on this kind of machine). \
         `call_async` is how nanoproc calls into a 0.3 nanoprocess (`drive.rs`): with \
         concurrency support on, wasmtime runs each such call as a task in the store's \
         event loop (`run_concurrent`).\n",
        fmt_ns(host_noop_off),
        fmt_ns(host_noop_on),
        fmt_ratio(host_noop_on / host_noop_off),
    );

    // nanoproc.
    println!("### nanoproc: a parent → child call, by what the plan holds\n");
    println!(
        "The parent makes `n` calls to its child's `bench:calls/api` and times them. \
         0.2 components: `bench_parent` and `bench_child` (as in the cross-nanoprocess \
         calls above). Their 0.3 twins, built with wit-bindgen 0.62 and the `wasip3` crate \
         as the `probe3-*` guests are: `bench3_child` (the same exports, lifted as \
         wit-bindgen lifts an ordinary WIT function, synchronously; 0.3 by its \
         `wasi:cli/environment@0.3.0` import) and `bench3_parent` (a command whose entry \
         point is the async `wasi:cli/run@0.3.0` export, calling the same loop). A \
         nanoprocess that nothing imports is refused, so the mixed plan's 0.3 node needs an \
         importer: `bench_mixed_parent` is `bench_parent` (the same loop, the same calls to \
         the same child) with one more import, `test:probe/probe`, called once before the \
         timed calls, and served by `probe3_leaf` (0.3) in the mixed plan or by \
         `probe_leaf` (0.2) in its 0.2-only twin. Those two plans differ only in the \
         engine's concurrency support.\n"
    );
    println!(
        "| parent → child | concurrency support | {} | vs 0.2-only | {} | vs 0.2-only |",
        KINDS[0].1, KINDS[1].1
    );
    println!("|---|---|---:|---:|---:|---:|");
    for tree in TREES {
        let base = if matches!(tree, Tree::Third02 | Tree::Mixed) {
            Tree::Third02
        } else {
            Tree::Only02
        };
        let cell = |kind: &str| {
            let s = stats(nano(tree), kind);
            if tree == base {
                (s.ns_cell(), "1x".to_owned())
            } else {
                (s.ns_cell(), fmt_ratio(s.median / med(nano(base), kind)))
            }
        };
        let (noop, noop_r) = cell("noop");
        let (echo, echo_r) = cell("echo16");
        println!(
            "| {} | {} | {noop} | {noop_r} | {echo} | {echo_r} |",
            tree.label(),
            if tree.concurrent() { "on" } else { "off" },
        );
    }
    println!();
    println!(
        "\"vs 0.2-only\": against the 0.2-only plan of the same shape (the three-node one \
         for the mixed plan, the two-node one for the others).\n"
    );
    let n_list = |tree: Tree| {
        KINDS
            .iter()
            .map(|(k, _)| format!("{k} {}", n_of[&(nano(tree), *k)]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "Calls per run: {}.\n",
        TREES
            .iter()
            .map(|&t| format!("{} {}", t.short(), n_list(t)))
            .collect::<Vec<_>>()
            .join("; ")
    );

    let only = med(nano(Tree::Only02), "noop");
    let third = med(nano(Tree::Third02), "noop");
    let mixed = med(nano(Tree::Mixed), "noop");
    let mixed_echo = med(nano(Tree::Mixed), "echo16");
    let third_echo = med(nano(Tree::Third02), "echo16");
    let to3 = med(nano(Tree::P2P3), "noop");
    let guest_host_off = med(plain(Anchor::GuestHostOff), "noop");
    let guest_host_on = med(plain(Anchor::GuestHostOn), "noop");
    let host_async = med(plain(Anchor::HostAsync), "noop");
    println!("What it means:\n");
    println!(
        "* **A mixed plan**: every crossing between two 0.2 nanoprocesses of a plan that \
         holds a 0.3 one costs {} per no-op call instead of {} ({}), and {} instead of {} \
         ({}) with a 16 B string, though neither side is async: the engine's concurrency \
         support is paid on both crossings of the call (guest → host out of the parent, \
         {} → {} in plain wasmtime; host → guest into the child, {} → {}).",
        fmt_ns(mixed),
        fmt_ns(third),
        fmt_ratio(mixed / third),
        fmt_ns(mixed_echo),
        fmt_ns(third_echo),
        fmt_ratio(mixed_echo / third_echo),
        fmt_ns(guest_host_off),
        fmt_ns(guest_host_on),
        fmt_ns(host_noop_off),
        fmt_ns(host_noop_on),
    );
    println!(
        "* **A plan of 0.2 components** keeps concurrency support off and pays none of it: \
         {} per no-op call (two nodes), {} with a third 0.2 node.",
        fmt_ns(only),
        fmt_ns(third),
    );
    println!(
        "* **Into a 0.3 child** (0.2 → 0.3, {} per no-op call, {} of the 0.2-only plan) the \
         trampoline drives the child's `call_async` to completion, which costs {} from a \
         plain host; the child is called through a task of its store's event loop.",
        fmt_ns(to3),
        fmt_ratio(to3 / only),
        fmt_ns(host_async),
    );
    println!(
        "* **Out of a 0.3 parent** (0.3 → 0.2, {}; 0.3 → 0.3, {}) the parent's import is an \
         ordinary synchronous host function called on the fiber its `run` task runs on.\n",
        fmt_ns(med(nano(Tree::P3P2), "noop")),
        fmt_ns(med(nano(Tree::P3P3), "noop")),
    );

    // Starting.
    println!("### Starting a 0.3 nanoprocess\n");
    println!(
        "Per instantiation, {STARTS} at a time, each dropped at once (median (min-max) over \
         the rounds). Plain wasmtime: a store with an empty wasmtime-wasi context, \
         `InstancePre::instantiate` or `instantiate_async` polled to completion (as nanoproc \
         starts a 0.3 nanoprocess; for the 0.2 component too, to tell the two costs apart), \
         then drop; the component linked once, `bench3_child` with WASI 0.2 and 0.3 in one \
         linker. nanoproc: `Plan::start` of a two-node tree (both nanoprocesses \
         instantiated with their grants, the root not entered), then drop; the plan checked \
         once.\n"
    );
    let start = |s: Start| Stats::of(&per_start[&s]);
    let plain_off = start(Start::PlainOff);
    println!("| what is instantiated | engine's concurrency support | time | vs 0.2 |");
    println!("|---|---|---:|---:|");
    for (s, what, support, base) in [
        (
            Start::PlainOff,
            "plain wasmtime: `bench_child` (0.2)",
            "off",
            None,
        ),
        (
            Start::PlainOn,
            "plain wasmtime: `bench_child` (0.2)",
            "on",
            Some(Start::PlainOff),
        ),
        (
            Start::PlainOnAsync,
            "plain wasmtime: `bench_child` (0.2), `instantiate_async`",
            "on",
            Some(Start::PlainOff),
        ),
        (
            Start::Plain03,
            "plain wasmtime: `bench3_child` (0.3), `instantiate_async`",
            "on",
            Some(Start::PlainOff),
        ),
        (
            Start::Nano(Tree::Only02),
            "nanoproc: 0.2 → 0.2 tree",
            "off",
            None,
        ),
        (
            Start::Nano(Tree::P2P3),
            "nanoproc: 0.2 → 0.3 tree",
            "on",
            Some(Start::Nano(Tree::Only02)),
        ),
        (
            Start::Nano(Tree::P3P2),
            "nanoproc: 0.3 → 0.2 tree",
            "on",
            Some(Start::Nano(Tree::Only02)),
        ),
        (
            Start::Nano(Tree::P3P3),
            "nanoproc: 0.3 → 0.3 tree",
            "on",
            Some(Start::Nano(Tree::Only02)),
        ),
    ] {
        let st = start(s);
        println!(
            "| {what} | {support} | {} | {} |",
            st.ns_cell(),
            base.map_or("1x".to_owned(), |b| fmt_ratio(st.median / start(b).median))
        );
    }
    println!();
    let tree02 = start(Start::Nano(Tree::Only02)).median;
    let tree23 = start(Start::Nano(Tree::P2P3)).median;
    let plain_on = start(Start::PlainOn).median;
    let plain_async = start(Start::PlainOnAsync).median;
    let plain_03 = start(Start::Plain03).median;
    println!(
        "A 0.3 child adds {} to the start of a two-node tree ({} → {}). Under plain \
         wasmtime a 0.3 instance costs {} against {} for the 0.2 one: concurrency support \
         itself adds {} to a synchronous instantiation, instantiating with \
         `instantiate_async` {} more, and the 0.3 component {} more \
         (what differs: its start function makes one WASI 0.3 call).\n",
        fmt_ns(tree23 - tree02),
        fmt_ns(tree02),
        fmt_ns(tree23),
        fmt_ns(plain_03),
        fmt_ns(plain_off.median),
        fmt_ns(plain_on - plain_off.median),
        fmt_ns(plain_async - plain_on),
        fmt_ns(plain_03 - plain_async),
    );

    let only_plan = &setup.plans[&Tree::Only02];
    let off = !only_plan.has_concurrency_support();
    target_row(
        "a plan of 0.2 components runs without concurrency support (issue 15)",
        &format!(
            "concurrency support {} (`Plan::has_concurrency_support()`); no-op {} (0.2 only, \
             3 nodes) against {} in a mixed plan ({})",
            if off { "off" } else { "on" },
            fmt_ns(third),
            fmt_ns(mixed),
            fmt_ratio(mixed / third)
        ),
        off,
        "the 0.2-only plan's engine has concurrency support",
    );
}
