//! The caller of the resource benchmark: `bench_res <kind> <n>` uses
//! `test:res/counters` (a child nanoprocess's counters through proxies, or
//! `res-child` composed into the same component) `n` times and prints
//! `<kind> <n> <elapsed ns> <checksum>`, like `bench-common`.
//!
//! - `method`: `inc` on one counter;
//! - `lifecycle`: a new counter, one `inc`, and its drop.

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-parent" });

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;
use test::res::counters::Counter;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kind), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<u64>().ok()),
    ) else {
        eprintln!("usage: bench_res method|lifecycle <n>");
        return ExitCode::FAILURE;
    };
    let mut checksum = 0u64;
    let start = Instant::now();
    match kind.as_str() {
        "method" => {
            let counter = Counter::new(0);
            for _ in 0..n {
                checksum = checksum.wrapping_add(u64::from(black_box(&counter).inc()));
            }
        }
        "lifecycle" => {
            for i in 0..n {
                let counter = Counter::new(black_box(i as u32));
                checksum = checksum.wrapping_add(u64::from(counter.inc()));
            }
        }
        other => {
            eprintln!("unknown kind {other}");
            return ExitCode::FAILURE;
        }
    }
    let elapsed = start.elapsed().as_nanos();
    println!("{kind} {n} {elapsed} {checksum}");
    ExitCode::SUCCESS
}
