//! What nanoproc's benchmarks share: the guest components, plain wasmtime with the
//! same engine settings as nanoproc (the anchor every nanoproc figure is compared
//! with), manifests written on the fly, statistics and the markdown they print.
//!
//! Every benchmark in `benches/` is a plain `main` (`harness = false`) timed with
//! `std::time::Instant`. Configurations are measured side by side in one process,
//! interleaved, so that they share the machine's noise; each prints a markdown
//! section on stdout (progress goes to stderr). A line of the form
//! `@target | <target> | <measured> | <verdict> |` is one row of the summary table
//! `cargo xtask bench` puts at the top of `docs/BENCHMARKS.md`.
//!
//! Run without `--bench` on the command line (as `cargo test --benches` and clippy's
//! builds do), a benchmark only checks once, on a tiny workload, that it still
//! works, and times nothing. No benchmark asserts a duration.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, WasmBacktraceDetails};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use wac_graph;

/// Whether this run measures (`cargo bench` passes `--bench`) or only checks that
/// the benchmark works (`cargo test --benches`).
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// The `nanoproc` binary of this benchmark's profile (`target/<profile>/nanoproc`),
/// which the benchmarks that spawn it need built first. Missing, a measuring run
/// panics with how to build it, and a check run (`cargo test --benches`) says it
/// skips `bench` and returns `None`.
pub fn nanoproc_binary(bench: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("this benchmark's path");
    // target/<profile>/deps/<bench>-<hash>
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("a benchmark lives in target/<profile>/deps");
    let path = profile.join("nanoproc");
    if path.is_file() {
        return Some(path);
    }
    if measuring() {
        panic!(
            "no nanoproc binary at {}; build it first: `cargo build --release -p nanoproc-cli` \
             (`cargo xtask bench` does)",
            path.display()
        );
    }
    println!(
        "{bench} bench: skipped, no nanoproc binary at {} (`cargo build -p nanoproc-cli`)",
        path.display()
    );
    None
}

/// Points nanoproc's compile cache at a fresh private directory for this process
/// (the user's cache is left alone) and returns it. Call first thing in `main`,
/// before any thread is started.
pub fn private_compile_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory for the compile cache");
    // SAFETY: called at the start of `main`, before this process starts any thread.
    unsafe { std::env::set_var("NANOPROC_CACHE_DIR", dir.path()) };
    dir
}

/// Empties a file that a plan writes a nanoprocess's output to, in place: the plan
/// opened it once when it was checked and appends to that open file, so removing
/// it would leave the run writing to a file no longer in the directory.
pub fn empty_output(path: &std::path::Path) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = f.set_len(0);
    }
}

/// A built guest component (`cargo xtask guests` builds them; this builds them too).
pub fn guest(name: &str) -> PathBuf {
    xtask::guest(name)
}

/// The engine nanoproc uses for a plan with time limits
/// (`crates/nanoproc-runtime/src/engine.rs`), made again here for plain wasmtime:
/// component model on, concurrency support off, backtrace details off, epoch
/// interruption on, no fuel, wasmtime's default (on-demand) instance allocator.
/// Nothing advances this engine's epoch, so a store with a deadline of one tick is
/// never interrupted.
pub fn plain_engine() -> Engine {
    plain_engine_with(true)
}

/// `wasmtime run`'s engine for a component, as far as the code it runs goes:
/// wasmtime's defaults (no epoch checks, no fuel), the component model on and
/// concurrency support off (as for any WASI 0.2 command).
pub fn wasmtime_run_engine() -> Engine {
    plain_engine_with(false)
}

fn plain_engine_with(epochs: bool) -> Engine {
    Engine::new(&plain_config(epochs)).expect("a wasmtime engine")
}

/// [`plain_engine`]'s configuration (`epochs`: with epoch interruption), for an
/// anchor that adds to it (the serve benchmark's pooling allocator).
pub fn plain_config(epochs: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.concurrency_support(false);
    config.wasm_backtrace_details(WasmBacktraceDetails::Disable);
    config.epoch_interruption(epochs);
    config.consume_fuel(false);
    config
}

/// [`plain_engine`] with concurrency support on, as nanoproc's engine is for a plan
/// with a WASI 0.3 component (`crates/nanoproc-runtime/src/engine.rs`):
/// `concurrency_support(true)`, `wasm_component_model_async(true)`, and async stacks
/// sized as for a tree one level deep. The only differences from [`plain_engine`].
pub fn plain_engine_concurrent() -> Engine {
    let mut config = plain_config(true);
    config.concurrency_support(true);
    config.wasm_component_model_async(true);
    // engine.rs: (depth + 1) levels of 768 KiB, plus 1 MiB.
    config.async_stack_size(2 * (768 << 10) + (1 << 20));
    Engine::new(&config).expect("a wasmtime engine with concurrency support")
}

/// The store data of a plain wasmtime-wasi instance.
pub struct Plain {
    pub ctx: WasiCtx,
    pub table: ResourceTable,
    /// No configuration values: what a host linking wasmtime-wasi-config gives a
    /// guest it configured with nothing.
    pub config: wasmtime_wasi_config::WasiConfigVariables,
}

impl WasiView for Plain {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// A store for plain wasmtime-wasi, never interrupted (see [`plain_engine`]).
pub fn plain_store(engine: &Engine, ctx: WasiCtx) -> Store<Plain> {
    let mut store = Store::new(
        engine,
        Plain {
            ctx,
            table: ResourceTable::new(),
            config: Default::default(),
        },
    );
    store.set_epoch_deadline(1);
    store
}

/// A linker with wasmtime-wasi's preview 2, as a plain wasmtime host has.
pub fn plain_linker(engine: &Engine) -> Linker<Plain> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("linking wasmtime-wasi");
    wasmtime_wasi_config::add_to_linker(&mut linker, |p: &mut Plain| {
        wasmtime_wasi_config::WasiConfig::from(&p.config)
    })
    .expect("linking wasmtime-wasi-config");
    linker
}

/// Any component (command or library) linked for plain wasmtime-wasi, its imports
/// other than WASI defined as functions that trap (the instantiation benchmark
/// never calls them).
pub fn plain_pre(engine: &Engine, component: &Path) -> InstancePre<Plain> {
    let component = Component::from_file(engine, component)
        .unwrap_or_else(|e| panic!("{}: {e:#}", component.display()));
    let mut linker = plain_linker(engine);
    trap_other_imports(&mut linker, &component).expect("defining the other imports");
    linker
        .instantiate_pre(&component)
        .unwrap_or_else(|e| panic!("linking: {e:#}"))
}

/// Defines every function of every imported interface that is not WASI as a
/// function that traps. (`Linker::define_unknown_imports_as_traps` would also
/// stub the resource types an imported WASI interface re-exports with `use`, such
/// as `error` in `wasi:io/streams`, which then no longer match wasmtime-wasi's.)
pub fn trap_other_imports(
    linker: &mut Linker<Plain>,
    component: &Component,
) -> wasmtime::Result<()> {
    let engine = linker.engine().clone();
    for (name, item) in component.component_type().imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if name.starts_with("wasi:") {
            continue;
        }
        let mut linked = linker.instance(name)?;
        for (func, item) in instance.exports(&engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                let what = format!("{name}#{func}");
                linked.func_new(func, move |_, _, _, _| {
                    Err(wasmtime::format_err!(
                        "{what} is not linked in this benchmark"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// A command component ready to instantiate under plain wasmtime-wasi.
pub fn plain_command(engine: &Engine, component: &Path) -> CommandPre<Plain> {
    let component = Component::from_file(engine, component)
        .unwrap_or_else(|e| panic!("{}: {e:#}", component.display()));
    let linker = plain_linker(engine);
    let pre = linker
        .instantiate_pre(&component)
        .unwrap_or_else(|e| panic!("linking a command: {e:#}"));
    CommandPre::new(pre).expect("a command component")
}

/// Runs a command under plain wasmtime-wasi: a fresh store whose context holds
/// `args` (after `argv[0]`), the real clocks and, if given, one directory
/// read-write at `/d`; stdout is captured and returned.
pub fn run_plain(
    pre: &CommandPre<Plain>,
    args: &[String],
    dir: Option<&Path>,
) -> Result<String, String> {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let mut builder = WasiCtxBuilder::new();
    builder.arg("main").args(args).stdout(stdout.clone());
    if let Some(dir) = dir {
        builder
            .preopened_dir(dir, "/d", wasmtime_wasi::FsPerms::ReadWrite)
            .map_err(|e| format!("{}: {e:#}", dir.display()))?;
    }
    let mut store = plain_store(pre.engine(), builder.build());
    let command = pre
        .instantiate(&mut store)
        .map_err(|e| format!("instantiate: {e:#}"))?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => {}
        Ok(Err(())) => return Err("the command returned an error".into()),
        Err(e) => return Err(format!("trap: {e:#}")),
    }
    drop(store);
    Ok(String::from_utf8_lossy(&stdout.contents()).into_owned())
}

/// The engine `nanoproc serve` gives a served plan (`crates/nanoproc-runtime/src/engine.rs`,
/// `plan::pool_for`), made again for the serve benchmark's plain anchors: component
/// model on, concurrency support off, backtrace details off, epoch interruption on
/// (serve always has it, to stop a request at its time limit), no fuel, and a
/// pooling allocator with slots for `trees` component instances at once (serve's
/// `--max-concurrent`, default 32), each of up to `per_component` nanoprocesses'
/// worth of core instances, memories and tables, memories up to 4 GiB and tables of
/// up to a million elements (a root's limits when the manifest sets none), 2 MiB of
/// each slot kept resident when its instance is dropped.
pub fn plain_serve_engine(trees: u32, per_component: u32) -> Engine {
    const KEEP_RESIDENT: usize = 2 << 20;
    let per = per_component.max(1);
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(trees)
        .total_core_instances(trees.saturating_mul(16))
        .max_core_instances_per_component(per.saturating_mul(64))
        .total_memories(trees.saturating_mul(2))
        .max_memories_per_component(per.saturating_mul(8))
        .total_tables(trees.saturating_mul(16))
        .max_tables_per_component(per.saturating_mul(32))
        .max_memory_size(1 << 32)
        .table_elements(1_000_000)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT);
    let mut config = plain_config(true);
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config).expect("a wasmtime engine with a pooling allocator")
}

/// nanoproc's epoch tick (`crates/nanoproc-runtime/src/interrupt.rs`).
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The store data of a plain wasmtime-wasi-http handler: an empty WASI context,
/// wasmtime-wasi-http's context, and hooks that refuse outgoing requests.
pub struct PlainHttp {
    pub wasi: WasiCtx,
    pub http: wasmtime_wasi_http::WasiHttpCtx,
    pub table: ResourceTable,
    hooks: NoOutgoing,
}

/// wasmtime-wasi-http's hooks with outgoing requests refused: the workspace builds
/// it without its default sender (nanoproc has its own), and the handlers the
/// benchmark serves send none.
struct NoOutgoing;

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl wasmtime_wasi_http::WasiHttpHooks for NoOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Sent {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl WasiView for PlainHttp {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for PlainHttp {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// A request's store for a plain wasmtime-wasi-http handler: fresh data, and a
/// deadline of `timeout` in [`EPOCH_TICK`]s (something must advance the epoch).
pub fn plain_http_store(engine: &Engine, timeout: Duration) -> Store<PlainHttp> {
    let mut store = Store::new(
        engine,
        PlainHttp {
            wasi: WasiCtx::builder().build(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: NoOutgoing,
        },
    );
    store.set_epoch_deadline((timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64);
    store
}

/// A linker with wasmtime-wasi (all of WASI 0.2, as a host running a CLI-style
/// handler links) and wasmtime-wasi-http, synchronous or async.
pub fn plain_http_linker(engine: &Engine, sync: bool) -> Linker<PlainHttp> {
    let mut linker = Linker::new(engine);
    if sync {
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).expect("linking wasmtime-wasi");
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)
            .expect("linking wasmtime-wasi-http");
    } else {
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("linking wasmtime-wasi");
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .expect("linking wasmtime-wasi-http");
    }
    linker
}

/// Composes `socket` with `plug` exporting what it imports, as `wac plug` does, and
/// returns the bytes of the one composed component.
pub fn compose(socket: &Path, plug: &Path) -> Vec<u8> {
    use wac_graph::types::Package;
    use wac_graph::{CompositionGraph, EncodeOptions};
    let mut graph = CompositionGraph::new();
    let package = |graph: &mut CompositionGraph, name: &str, path: &Path| {
        let pkg = Package::from_file(name, None, path, graph.types_mut())
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        graph.register_package(pkg).expect("registering a package")
    };
    let socket = package(&mut graph, "bench:socket", socket);
    let plug = package(&mut graph, "bench:plug", plug);
    wac_graph::plug(&mut graph, vec![plug], socket).expect("plugging the child into the parent");
    graph
        .encode(EncodeOptions::default())
        .expect("encoding the composition")
}

/// Writes a file, creating what it needs; panics with the path on failure.
pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// A TOML string literal.
pub fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// This process's resident memory, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

/// This process's mappings (`/proc/self/maps` lines), to explain an mmap failure.
pub fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // Every Linux this runs on in practice; /proc/self/smaps would tell otherwise.
    4096
}

/// Median, minimum and maximum of a set of measurements.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Stats {
        assert!(!values.is_empty(), "no measurements");
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Stats {
            median: v[v.len() / 2],
            min: v[0],
            max: v[v.len() - 1],
        }
    }

    /// `median (min-max)` in the unit [`fmt_ns`] picks.
    pub fn ns_cell(&self) -> String {
        format!(
            "{} ({}-{})",
            fmt_ns(self.median),
            fmt_ns(self.min),
            fmt_ns(self.max)
        )
    }
}

/// Nanoseconds in a readable unit: `1.7 ns`, `345 ns`, `12.4 µs`, `42.4 ms`.
pub fn fmt_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else if v < 100.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.0} {unit}")
    }
}

/// A ratio as `12.3x` (three significant digits or so).
pub fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}x")
    } else if r < 100.0 {
        format!("{r:.1}x")
    } else {
        format!("{r:.0}x")
    }
}

/// Bytes in KiB or MiB.
pub fn fmt_bytes(b: f64) -> String {
    if b.abs() < 1024.0 * 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

/// The CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`), user and system,
/// in nanoseconds. Unlike wall time it does not grow while other processes have
/// the CPU, so it shows a workload's own cost on a busy machine.
pub fn thread_cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// Runs `f` and returns its result with the wall time and this thread's CPU time
/// it took, in nanoseconds.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, f64, f64) {
    let cpu = thread_cpu_ns();
    let wall = std::time::Instant::now();
    let r = f();
    let wall = ns(wall.elapsed());
    (r, wall, thread_cpu_ns() - cpu)
}

/// The load average over the last minute (`/proc/loadavg`).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

pub fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// How far a measurement is beyond its limit, for a target of the form "≤ limit"
/// (`over(15.6, 15.0)` = `4% over`; from twice the limit on, `2.3x over`).
pub fn over(measured: f64, limit: f64) -> String {
    let r = measured / limit;
    if r < 1.995 {
        format!("{:.0}% over", (r - 1.0) * 100.0)
    } else {
        format!("{r:.1}x over")
    }
}

/// How far a measurement falls short, for a target of the form "≥ floor".
pub fn short(measured: f64, floor: f64) -> String {
    let r = floor / measured;
    if r < 1.995 {
        format!("{:.0}% short", (1.0 - measured / floor) * 100.0)
    } else {
        format!("{r:.1}x short")
    }
}

/// One row of the summary of targets: `met` decides the verdict; `by` says by how
/// much a missed target was missed.
pub fn target_row(target: &str, measured: &str, met: bool, by: &str) {
    let verdict = if met {
        "**met**".to_owned()
    } else {
        format!("**missed** ({by})")
    };
    println!("@target | {target} | {measured} | {verdict} |");
}

/// Prints progress to stderr (stdout is the markdown).
pub fn progress(msg: impl std::fmt::Display) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{msg}");
}
