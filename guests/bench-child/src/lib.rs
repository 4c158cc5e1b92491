//! Serves `bench:calls/api` for the cross-nanoprocess benchmark, doing the same work
//! per call as `bench-direct` does inside itself (`bench-common`).

wit_bindgen::generate!({ path: "../wit/bench.wit", world: "bench-child" });

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
