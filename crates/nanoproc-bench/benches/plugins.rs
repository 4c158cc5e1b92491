//! What a host's call into a plugin costs: `transform(string) -> string` on an echo
//! plugin, with a 16-byte and a 1-KiB string, side by side:
//!
//! * (a) plain wasmtime: `guests/plugin-echo` (world `echo-plugin` of
//!   `guests/wit/plugins.wit`) instantiated by wasmtime's own `bindgen!` bindings in a
//!   store with a plain `WasiCtx`, called with `call_transform(&mut store, s)`; the
//!   engine has the settings of nanoproc's default engine (`src/lib.rs`);
//! * (b) nanoproc typed: the same component as a plugin (`Runtime::check_plugin`,
//!   `Plan::plugin`), called with `plugin.call_typed(&transform, (s,))`, `transform`
//!   looked up once with `plugin.typed::<(&str,), (String,)>(..)`;
//! * (c) nanoproc with bindgen: the bindings of (a) called through
//!   `plugin.call_with(|store, instance| ..)`, their export indices looked up once;
//! * (d) nanoproc dynamic: `plugin.call(interface, "transform", &[Val::String(..)])`;
//! * (e) Extism: the same echo as an Extism plugin (`bench/extism`, a workspace of
//!   its own, since extism 1.41 brings a second wasmtime), timed the same way by its
//!   own host binary, whose figures `cargo xtask bench` passes in the file named by
//!   `NANOPROC_BENCH_EXTISM` (see [`extism_figures`]).
//!
//! Every call is timed by the host with `Instant` around a loop of `n` calls, `n`
//! calibrated to about 0.2 s per run; one warm-up run, then seven measured runs of
//! every configuration, interleaved. Every answer is checked.

use nanoproc_bench::{
    Plain, Stats, fmt_ns, fmt_ratio, load_average, measuring, over, plain_engine, plain_linker,
    plain_store, private_compile_cache, progress, target_row, thread_cpu_ns,
};
use nanoproc_runtime::caps::GrantRequest;
use nanoproc_runtime::{Plugin, PluginOptions, Runtime};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, Val};
use wasmtime_wasi::WasiCtxBuilder;

wasmtime::component::bindgen!({
    path: "../../guests/wit/plugins.wit",
    world: "echo-plugin",
});

const TRANSFORM: &str = "nanoproc:plugins/transform";

/// The cases: (name, label, string length).
const CASES: [(&str, &str, usize); 2] = [
    ("echo16", "`transform(string) -> string`, 16 B", 16),
    ("echo1k", "`transform(string) -> string`, 1 KiB", 1024),
];

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Config {
    Wasmtime,
    Typed,
    Bindgen,
    Dynamic,
}

const CONFIGS: [Config; 4] = [
    Config::Wasmtime,
    Config::Typed,
    Config::Bindgen,
    Config::Dynamic,
];

/// Seconds of calls per measured run.
const TARGET_S: f64 = 0.2;
const WARMUP: usize = 1;
const MEASURED: usize = 7;

struct Setup {
    /// (a): plain wasmtime with `bindgen!`.
    store: Store<Plain>,
    bindings: EchoPlugin,
    /// (b), (c), (d): nanoproc's plugin.
    plugin: Plugin,
    /// (c): the bindings' export indices, looked up once in the plugin's component.
    indices: EchoPluginIndices,
}

fn main() {
    let _cache = private_compile_cache();
    let measure = measuring();
    let load_before = load_average();
    let mut setup = setup();
    let inputs: Vec<String> = CASES.iter().map(|(_, _, len)| "x".repeat(*len)).collect();

    if !measure {
        for input in &inputs {
            for config in CONFIGS {
                setup.check(config, input);
                setup.run(config, input, 2);
            }
        }
        // The Extism figures' format, as bench/extism/host prints it.
        let sample = "extism | echo16 | 812.5 | 800.1 | 900.0 | 246000\n\
                      extism | echo1k | 1200.0 | 1100.0 | 1300.0 | 166000\n";
        assert!(matches!(parse_extism(sample), Extism::Measured(f) if f.len() == 2));
        assert!(matches!(
            parse_extism("extism | error | no wasm32-unknown-unknown target"),
            Extism::Missing(why) if why == "no wasm32-unknown-unknown target"
        ));
        println!(
            "plugins bench: ok, every configuration echoed 16 B and 1 KiB twice; `cargo bench \
             -p nanoproc-bench --bench plugins` measures (and `cargo xtask bench` adds Extism)"
        );
        return;
    }

    let mut ns_of: HashMap<(Config, &str), u64> = HashMap::new();
    for ((case, _, _), input) in CASES.iter().zip(&inputs) {
        for config in CONFIGS {
            setup.check(config, input);
            let mut n = 8u64;
            loop {
                let (s, _) = setup.run(config, input, n);
                if s >= 0.02e9 || n >= 1 << 30 {
                    let target = ((TARGET_S * 1e9 / (s / n as f64)) as u64).clamp(3, 1 << 30);
                    ns_of.insert((config, case), target);
                    progress(format!("plugins: {config:?} {case}: n = {target}"));
                    break;
                }
                n *= 8;
            }
        }
    }
    let mut per_call: HashMap<(Config, &str), Vec<f64>> = HashMap::new();
    let mut cpu_per_call: HashMap<(Config, &str), Vec<f64>> = HashMap::new();
    for round in 0..WARMUP + MEASURED {
        progress(format!(
            "plugins: round {} of {}",
            round + 1,
            WARMUP + MEASURED
        ));
        for ((case, _, _), input) in CASES.iter().zip(&inputs) {
            for config in CONFIGS {
                let n = ns_of[&(config, *case)];
                let (s, cpu) = setup.run(config, input, n);
                if round >= WARMUP {
                    per_call
                        .entry((config, case))
                        .or_default()
                        .push(s / n as f64);
                    cpu_per_call
                        .entry((config, case))
                        .or_default()
                        .push(cpu / n as f64);
                }
            }
        }
    }
    report(
        &per_call,
        &cpu_per_call,
        &ns_of,
        &extism_figures(),
        (load_before, load_average()),
    );
}

fn setup() -> Setup {
    let echo = nanoproc_bench::guest("plugin_echo");

    let engine = plain_engine();
    let component = Component::from_file(&engine, &echo)
        .unwrap_or_else(|e| panic!("{}: {e:#}", echo.display()));
    let linker = plain_linker(&engine);
    let mut store = plain_store(&engine, WasiCtxBuilder::new().build());
    let bindings = EchoPlugin::instantiate(&mut store, &component, &linker)
        .unwrap_or_else(|e| panic!("instantiating plugin_echo with bindgen!: {e:#}"));

    let runtime = Runtime::new().expect("nanoproc runtime");
    let plan = runtime
        .check_plugin(&echo, GrantRequest::default())
        .unwrap_or_else(|e| panic!("plugin_echo as a plugin: {e}"));
    let plugin = plan
        .plugin(&PluginOptions::default())
        .unwrap_or_else(|e| panic!("instantiating plugin_echo with nanoproc: {e}"));
    let indices = EchoPluginIndices::new(plugin.instance_pre())
        .unwrap_or_else(|e| panic!("bindgen! indices of plugin_echo: {e:#}"));
    Setup {
        store,
        bindings,
        plugin,
        indices,
    }
}

impl Setup {
    /// One call in `config`, its answer compared with its input.
    fn check(&mut self, config: Config, input: &str) {
        let out = match config {
            Config::Wasmtime => self
                .bindings
                .nanoproc_plugins_transform()
                .call_transform(&mut self.store, input)
                .unwrap_or_else(|e| panic!("(a) transform: {e:#}")),
            Config::Typed => {
                let t = self
                    .plugin
                    .typed::<(&str,), (String,)>(TRANSFORM, "transform")
                    .unwrap_or_else(|e| panic!("(b) typed: {e}"));
                let (out,) = self
                    .plugin
                    .call_typed(&t, (input,))
                    .unwrap_or_else(|e| panic!("(b) transform: {e}"));
                out
            }
            Config::Bindgen => {
                let indices = &self.indices;
                self.plugin
                    .call_with(|store, instance| {
                        indices
                            .load(&mut *store, instance)?
                            .nanoproc_plugins_transform()
                            .call_transform(&mut *store, input)
                    })
                    .unwrap_or_else(|e| panic!("(c) transform: {e}"))
            }
            Config::Dynamic => {
                let results = self
                    .plugin
                    .call(TRANSFORM, "transform", &[Val::String(input.into())])
                    .unwrap_or_else(|e| panic!("(d) transform: {e}"));
                match &results[..] {
                    [Val::String(s)] => s.clone(),
                    other => panic!("(d) transform returned {other:?}"),
                }
            }
        };
        assert_eq!(out, input, "{config:?}: transform did not echo its input");
    }

    /// `n` calls of `transform(input)` in `config`, timed by the host: the elapsed
    /// nanoseconds and the CPU time of this thread (every answer's length checked).
    fn run(&mut self, config: Config, input: &str, n: u64) -> (f64, f64) {
        let mut total = 0u64;
        let start;
        match config {
            Config::Wasmtime => {
                let transform = self.bindings.nanoproc_plugins_transform();
                start = (Instant::now(), thread_cpu_ns());
                for _ in 0..n {
                    let out = transform
                        .call_transform(&mut self.store, black_box(input))
                        .expect("(a) transform");
                    total += out.len() as u64;
                }
            }
            Config::Typed => {
                let t = self
                    .plugin
                    .typed::<(&str,), (String,)>(TRANSFORM, "transform")
                    .expect("(b) typed");
                start = (Instant::now(), thread_cpu_ns());
                for _ in 0..n {
                    let (out,) = self
                        .plugin
                        .call_typed(&t, (black_box(input),))
                        .expect("(b) transform");
                    total += out.len() as u64;
                }
            }
            Config::Bindgen => {
                let indices = &self.indices;
                start = (Instant::now(), thread_cpu_ns());
                for _ in 0..n {
                    let out = self
                        .plugin
                        .call_with(|store, instance| {
                            indices
                                .load(&mut *store, instance)?
                                .nanoproc_plugins_transform()
                                .call_transform(&mut *store, black_box(input))
                        })
                        .expect("(c) transform");
                    total += out.len() as u64;
                }
            }
            Config::Dynamic => {
                let params = [Val::String(input.into())];
                start = (Instant::now(), thread_cpu_ns());
                for _ in 0..n {
                    let results = self
                        .plugin
                        .call(TRANSFORM, "transform", black_box(&params))
                        .expect("(d) transform");
                    if let [Val::String(s)] = &results[..] {
                        total += s.len() as u64;
                    }
                }
            }
        }
        let elapsed = nanoproc_bench::ns(start.0.elapsed());
        let cpu = thread_cpu_ns() - start.1;
        assert_eq!(total, input.len() as u64 * n, "{config:?}: wrong answers");
        (elapsed, cpu)
    }
}

/// Extism's figures for this run, from the file `NANOPROC_BENCH_EXTISM` names
/// (`cargo xtask bench` builds `bench/extism` and writes it), one line per case as
/// `bench/extism/host` prints them:
/// `extism | <case> | <median ns> | <min ns> | <max ns> | <calls per run>`, or
/// `extism | error | <why>` when Extism could not be built or run.
enum Extism {
    Measured(HashMap<String, (Stats, u64)>),
    Missing(String),
}

fn extism_figures() -> Extism {
    let Some(path) = std::env::var_os("NANOPROC_BENCH_EXTISM") else {
        return Extism::Missing(
            "not measured in this run: `cargo xtask bench` builds and runs the Extism side \
             (`bench/extism`) and passes its figures in `NANOPROC_BENCH_EXTISM`"
                .into(),
        );
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return Extism::Missing(format!(
                "its figures could not be read from {}: {e}",
                std::path::Path::new(&path).display()
            ));
        }
    };
    parse_extism(&text)
}

fn parse_extism(text: &str) -> Extism {
    let mut figures = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(" | ").map(str::trim).collect();
        match fields[..] {
            ["extism", "error", ..] => {
                return Extism::Missing(fields[2..].join(" | "));
            }
            ["extism", case, median, min, max, n] => {
                let num = |s: &str| s.parse::<f64>().ok();
                if let (Some(median), Some(min), Some(max), Ok(n)) =
                    (num(median), num(min), num(max), n.parse())
                {
                    figures.insert(case.to_owned(), (Stats { median, min, max }, n));
                }
            }
            _ => {}
        }
    }
    if CASES.iter().all(|(c, _, _)| figures.contains_key(*c)) {
        Extism::Measured(figures)
    } else {
        Extism::Missing(format!(
            "its host printed no figures for every case (output: {:?})",
            text.trim()
        ))
    }
}

fn report(
    per_call: &HashMap<(Config, &str), Vec<f64>>,
    cpu_per_call: &HashMap<(Config, &str), Vec<f64>>,
    ns_of: &HashMap<(Config, &str), u64>,
    extism: &Extism,
    (load_before, load_after): (f64, f64),
) {
    let stats = |c: Config, k: &str| Stats::of(&per_call[&(c, k)]);
    let cpu = |c: Config, k: &str| Stats::of(&cpu_per_call[&(c, k)]).median;
    let extism_of = |k: &str| match extism {
        Extism::Measured(f) => f.get(k).map(|(s, _)| *s),
        Extism::Missing(_) => None,
    };
    println!("## Plugins: a host calling a plugin's export\n");
    println!(
        "`cargo bench -p nanoproc-bench --bench plugins` (and, for Extism, `bench/extism`, run \
         by `cargo xtask bench` just before it). A Rust host calls `transform(string) -> \
         string` of an echo plugin (`guests/plugin-echo`, world `echo-plugin` of \
         `guests/wit/plugins.wit`, `opt-level = 3`) with a 16-byte and a 1-KiB string: one \
         instance, reused, called in a loop timed by the host with `Instant`; per call = \
         elapsed / `n`, with `n` calibrated to about {TARGET_S} s of calls per run. {WARMUP} \
         warm-up run, then {MEASURED} measured runs of every configuration, interleaved. Each \
         cell: median per call (min-max over the runs). Every answer is checked. \
         \"(b)/(a) CPU\" is the same ratio in the CPU time of the measuring thread \
         (`CLOCK_THREAD_CPUTIME_ID`), which does not grow while other processes have the \
         CPU.\n"
    );
    println!(
        "* (a) plain wasmtime: the component instantiated with wasmtime's own `bindgen!` \
         bindings, a store with a plain `WasiCtx`, `call_transform(&mut store, s)`; the \
         engine set as nanoproc's default one (component model, no concurrency support, \
         epoch interruption, no fuel, on-demand allocator);\n\
         * (b) nanoproc typed: `Runtime::check_plugin` + `Plan::plugin` (no grants, default \
         options), `plugin.typed::<(&str,), (String,)>(..)` once, then \
         `plugin.call_typed(&transform, (s,))`;\n\
         * (c) nanoproc with (a)'s bindings: `plugin.call_with(|store, instance| \
         indices.load(store, instance)?.nanoproc_plugins_transform().call_transform(store, s))`, \
         the `bindgen!` export indices looked up once;\n\
         * (d) nanoproc dynamic: `plugin.call(\"nanoproc:plugins/transform\", \"transform\", \
         &[Val::String(..)])`, the interface and function found by name at every call;\n\
         * (e) Extism 1.41 (on its own wasmtime 49): the same echo written with `extism-pdk` \
         (`bench/extism/plugin`, `wasm32-unknown-unknown`, `opt-level = 3`), loaded with \
         Extism's defaults (no WASI), `plugin.call::<&str, &str>(\"transform\", s)` in the \
         same kind of loop in its own process (`bench/extism/host`).\n"
    );
    println!(
        "| call | (a) wasmtime `bindgen!` | (b) nanoproc typed | (c) nanoproc `call_with` | (d) nanoproc dynamic | (e) Extism | (b)/(a) | (b)/(a) CPU | (e)/(b) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (case, label, _) in CASES {
        let typed = stats(Config::Typed, case);
        let plain = stats(Config::Wasmtime, case);
        let ext = extism_of(case);
        println!(
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {} |",
            plain.ns_cell(),
            typed.ns_cell(),
            stats(Config::Bindgen, case).ns_cell(),
            stats(Config::Dynamic, case).ns_cell(),
            ext.map_or("-".to_owned(), |s| s.ns_cell()),
            fmt_ratio(typed.median / plain.median),
            fmt_ratio(cpu(Config::Typed, case) / cpu(Config::Wasmtime, case)),
            ext.map_or("-".to_owned(), |s| fmt_ratio(s.median / typed.median)),
        );
    }
    println!();
    let delta = |a: Config, b: Config| {
        CASES
            .iter()
            .map(|(c, _, _)| {
                format!(
                    "{} at {}",
                    fmt_ns(stats(a, c).median - stats(b, c).median),
                    size(c)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "nanoproc's typed call (b) {}: the bookkeeping every call through nanoproc has \
         (the interrupt checked, the root's call clock started and stopped, fuel refilled \
         when the plan counts it, the native stack checked, the function found in the live \
         instance) is small beside the same `TypedFunc::call` that (a)'s bindings make, \
         which lowers the string straight into the guest's memory. (c) costs \
         {} more than (b): `bindgen!`'s `…Indices::load` looks the export up and checks its \
         type again at every call, which (b) does once, in `plugin.typed`. (d) finds the \
         interface and function by name and converts arguments and results through `Val`s \
         at every call ({} more than (b)). An Extism call (e) does more per call by design \
         (extism 1.41's `Plugin::raw_call`): the input is copied into its kernel's memory, \
         which the guest reads and writes its output to through host calls, and its timeout \
         thread is sent a message at the start and at the end of every call, whether the \
         manifest sets a timeout or not.\n",
        if CASES.iter().all(|(c, _, _)| {
            stats(Config::Typed, c).median <= 1.03 * stats(Config::Wasmtime, c).median
        }) {
            format!(
                "costs what plain wasmtime's (a) does, within this run's noise ({})",
                delta(Config::Typed, Config::Wasmtime)
            )
        } else {
            format!(
                "adds {} to plain wasmtime's (a)",
                delta(Config::Typed, Config::Wasmtime)
            )
        },
        delta(Config::Bindgen, Config::Typed),
        delta(Config::Dynamic, Config::Typed),
    );
    let n_list = |c: Config| {
        CASES
            .iter()
            .map(|(k, _, _)| format!("{k} {}", ns_of[&(c, *k)]))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let extism_n = match extism {
        Extism::Measured(f) => CASES
            .iter()
            .map(|(k, _, _)| format!("{k} {}", f[*k].1))
            .collect::<Vec<_>>()
            .join(", "),
        Extism::Missing(_) => "-".into(),
    };
    println!(
        "Calls per run: (a) {}; (b) {}; (c) {}; (d) {}; (e) {extism_n}. Load (1-minute \
         average, 2 cores) {load_before:.1} before and {load_after:.1} after the nanoproc and \
         wasmtime runs.\n",
        n_list(Config::Wasmtime),
        n_list(Config::Typed),
        n_list(Config::Bindgen),
        n_list(Config::Dynamic),
    );
    if let Extism::Measured(_) = extism {
        println!(
            "Extism's figures move with the machine's load more than the others (its timeout \
             thread has to be woken twice per call, by another CPU): on this 2-core machine, \
             shared with other builds, they have been seen nearly twice as high at a load of \
             4.5 as at 1.8. Compare (e) with runs at a similar load.\n"
        );
    }
    if let Extism::Missing(why) = extism {
        println!("**Extism (e) is not in this run**: {why}.\n");
    }

    // Targets.
    let ratio_of =
        |case: &str| stats(Config::Typed, case).median / stats(Config::Wasmtime, case).median;
    let worst = CASES
        .iter()
        .map(|(c, _, _)| ratio_of(c))
        .fold(0.0, f64::max);
    let measured = CASES
        .iter()
        .map(|(c, _, _)| {
            format!(
                "{} {} ({} / {})",
                size(c),
                fmt_ratio(ratio_of(c)),
                fmt_ns(stats(Config::Typed, c).median),
                fmt_ns(stats(Config::Wasmtime, c).median)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    target_row(
        "plugin typed call (16 B and 1 KiB string) ≤ 1.3x plain wasmtime `bindgen!`",
        &measured,
        worst <= 1.3,
        &over(worst, 1.3),
    );
    const EXTISM_TARGET: &str = "plugin typed call (16 B and 1 KiB string) faster than Extism's";
    match extism {
        Extism::Measured(_) => {
            let measured = CASES
                .iter()
                .map(|(c, _, _)| {
                    let e = extism_of(c).expect("measured").median;
                    let t = stats(Config::Typed, c).median;
                    format!(
                        "{} {} faster ({} / {})",
                        size(c),
                        fmt_ratio(e / t),
                        fmt_ns(e),
                        fmt_ns(t)
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let slowest = CASES
                .iter()
                .map(|(c, _, _)| {
                    stats(Config::Typed, c).median / extism_of(c).expect("measured").median
                })
                .fold(0.0, f64::max);
            target_row(
                EXTISM_TARGET,
                &measured,
                slowest < 1.0,
                &format!("{} as slow as Extism", fmt_ratio(slowest)),
            );
        }
        Extism::Missing(why) => {
            println!("@target | {EXTISM_TARGET} | not measured: {why} | **not measured** |");
        }
    }
}

fn size(case: &str) -> &'static str {
    if case == "echo16" { "16 B" } else { "1 KiB" }
}
