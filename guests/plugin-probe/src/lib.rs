//! The embedding tests' probe plugin (wit/plugins.wit, world `probe-plugin`): each
//! call's input is a command, so that one component can try everything a hostile
//! plugin would: the host's kv under any key, state kept between calls, traps,
//! endless loops, memory, output, environment and exit.

wit_bindgen::generate!({ path: "../wit/plugins.wit", world: "probe-plugin" });

use exports::nanoproc::plugins::transform::Guest;
use nanoproc::plugins::kv;
use std::sync::atomic::{AtomicU64, Ordering};

struct Probe;

static CALLS: AtomicU64 = AtomicU64::new(0);

fn describe<T: std::fmt::Debug>(r: Result<T, String>) -> String {
    match r {
        Ok(v) => format!("ok:{v:?}"),
        Err(e) => format!("err:{e}"),
    }
}

impl Guest for Probe {
    fn transform(input: String) -> String {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let (command, rest) = input.split_once(' ').unwrap_or((&input, ""));
        match command {
            "echo" => rest.to_string(),
            "count" => calls.to_string(),
            "get" => describe(kv::get(rest)),
            "set" => {
                let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                describe(kv::set(key, value))
            }
            "trap" => panic!("probe asked to trap: {rest}"),
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mib: usize = rest.parse().unwrap_or(1);
                let v = vec![1u8; mib << 20];
                std::hint::black_box(&v);
                format!("allocated {} MiB", v.len() >> 20)
            }
            "print" => {
                println!("{rest}");
                "printed".into()
            }
            "eprint" => {
                eprintln!("{rest}");
                "printed".into()
            }
            "env" => std::env::var(rest).unwrap_or_else(|e| format!("env error: {e}")),
            "exit" => std::process::exit(rest.parse().unwrap_or(3)),
            "big" => "x".repeat(rest.parse().unwrap_or(1)),
            other => format!("unknown command {other:?}"),
        }
    }
}

export!(Probe);
