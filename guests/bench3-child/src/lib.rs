//! The WASI 0.3 twin of `bench-child`: serves `bench:calls/api` (wit/bench.wit's
//! `bench-child` world) with the same work per call (`bench-common`), built as the
//! 0.3 guests are (`probe3-leaf`): bindings from wit-bindgen 0.62 (the one wasip3
//! 0.9 is built on, with its async runtime) and WASI through the `wasip3` crate.
//!
//! Its exports are lifted as wit-bindgen lifts the WIT's ordinary (not `async`)
//! functions: synchronously. What makes it a 0.3 component is its WASI 0.3 import:
//! when instantiated it reads its arguments through `wasi:cli/environment@0.3.0`
//! (a dependency has none), so that an engine without concurrency support cannot
//! even compile it, and nanoproc drives its store with wasmtime's `*_async` calls.
//! The calls the benchmark times make no WASI call at all, as in `bench-child`.

wit_bindgen_p3::generate!({
    path: "../wit/bench.wit",
    world: "bench-child",
    runtime_path: "wit_bindgen_p3::rt",
});

use exports::bench::calls::api::{Guest, Rec};

struct Child;

impl Guest for Child {
    fn noop() {}

    fn add(a: u32, b: u32) -> u32 {
        bench_common::add(a, b)
    }

    fn echo(s: String) -> String {
        s
    }

    fn sum(b: Vec<u8>) -> u64 {
        bench_common::sum(&b)
    }

    fn nested(r: Rec) -> Rec {
        r
    }
}

export!(Child);

/// Runs when the component is instantiated (wit-component makes a core module's
/// `_initialize` the component's start), as in `probe3-leaf`: one WASI 0.3 call.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    std::hint::black_box(wasip3::cli::environment::get_arguments());
}
