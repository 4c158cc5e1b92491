//! Times Extism's `plugin.call::<&str, &str>("transform", s)` on the echo plugin
//! (`bench/extism/plugin`), for the plugins benchmark of nanoproc
//! (`crates/nanoproc-bench/benches/plugins.rs`, which puts these figures next to
//! nanoproc's and plain wasmtime's).
//!
//! `extism-bench <plugin.wasm> [--check]`. The plugin is loaded once (Extism's defaults,
//! no WASI, no host functions) and called in a loop timed with `Instant` by the host,
//! as the plugins benchmark times nanoproc and plain wasmtime: per call = elapsed / `n`,
//! `n` calibrated to about 0.2 s of calls per run, one warm-up run, then seven measured
//! runs of each case, interleaved. Every answer is checked. Prints one line per case on
//! stdout:
//!
//! ```text
//! extism | echo16 | <median ns per call> | <min> | <max> | <calls per run>
//! ```
//!
//! With `--check` it makes two calls of each case and prints `extism | ok`.

use extism::{Manifest, Plugin, Wasm};
use std::hint::black_box;
use std::time::Instant;

/// The cases: (name, string length), as the plugins benchmark names them.
const CASES: [(&str, usize); 2] = [("echo16", 16), ("echo1k", 1024)];
const TARGET_S: f64 = 0.2;
const WARMUP: usize = 1;
const MEASURED: usize = 7;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(wasm) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: extism-bench <plugin.wasm> [--check]");
        std::process::exit(2);
    };
    let check_only = args.iter().any(|a| a == "--check");
    let manifest = Manifest::new([Wasm::file(wasm)]);
    let mut plugin = Plugin::new(&manifest, [], false)
        .unwrap_or_else(|e| panic!("loading the Extism plugin {wasm}: {e:#}"));
    let inputs: Vec<String> = CASES.iter().map(|(_, len)| "x".repeat(*len)).collect();

    if check_only {
        for input in &inputs {
            calls(&mut plugin, input, 2);
        }
        println!("extism | ok");
        return;
    }

    let mut ns: Vec<u64> = Vec::new();
    for input in &inputs {
        let mut n = 8u64;
        loop {
            let s = calls(&mut plugin, input, n);
            if s >= 0.02 || n >= 1 << 30 {
                ns.push(((TARGET_S / (s / n as f64)) as u64).clamp(3, 1 << 30));
                break;
            }
            n *= 8;
        }
    }
    let mut per_call: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    for round in 0..WARMUP + MEASURED {
        eprintln!("extism: round {} of {}", round + 1, WARMUP + MEASURED);
        for (i, input) in inputs.iter().enumerate() {
            let s = calls(&mut plugin, input, ns[i]);
            if round >= WARMUP {
                per_call[i].push(s * 1e9 / ns[i] as f64);
            }
        }
    }
    for (i, (name, _)) in CASES.iter().enumerate() {
        let v = &mut per_call[i];
        v.sort_by(f64::total_cmp);
        println!(
            "extism | {name} | {:.1} | {:.1} | {:.1} | {}",
            v[v.len() / 2],
            v[0],
            v[v.len() - 1],
            ns[i]
        );
    }
}

/// `n` calls of `transform(input)`, each answer checked; the seconds they took.
fn calls(plugin: &mut Plugin, input: &str, n: u64) -> f64 {
    let mut total = 0usize;
    let start = Instant::now();
    for _ in 0..n {
        let out = plugin
            .call::<&str, &str>("transform", black_box(input))
            .unwrap_or_else(|e| panic!("transform: {e:#}"));
        assert_eq!(out.len(), input.len(), "transform answered wrong");
        total += out.len();
    }
    let s = start.elapsed().as_secs_f64();
    assert_eq!(total, input.len() * n as usize);
    s
}
