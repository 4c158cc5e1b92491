//! The caller of the cross-nanoprocess benchmark: `bench_parent <kind> <n>` makes `n`
//! calls of `kind` to `bench:calls/api` in another component (a child nanoprocess,
//! or `bench-child` composed into the same component) and prints
//! `<kind> <n> <elapsed ns> <checksum>` (see `bench-common`).

wit_bindgen::generate!({ path: "../wit/bench.wit", world: "bench-parent" });

use bench::calls::api::{self, Leaf, Rec};
use std::process::ExitCode;

struct Imported;

impl bench_common::Api for Imported {
    type Rec = Rec;

    fn noop() {
        api::noop();
    }

    fn add(a: u32, b: u32) -> u32 {
        api::add(a, b)
    }

    fn echo(s: &str) -> String {
        api::echo(s)
    }

    fn sum(b: &[u8]) -> u64 {
        api::sum(b)
    }

    fn nested(r: &Rec) -> Rec {
        api::nested(r)
    }

    fn make_rec() -> Rec {
        let (id, name, tags, leaves, matrix) = bench_common::rec_parts();
        Rec {
            id,
            name,
            tags,
            leaves: leaves
                .into_iter()
                .map(|(id, label, values)| Leaf { id, label, values })
                .collect(),
            matrix,
        }
    }

    fn rec_sum(r: &Rec) -> u64 {
        bench_common::rec_checksum(
            r.id,
            &r.name,
            r.tags.iter().map(String::as_str),
            r.leaves
                .iter()
                .map(|l| (l.id, l.label.as_str(), l.values.as_slice())),
            r.matrix.iter().map(Vec::as_slice),
        )
    }
}

fn main() -> ExitCode {
    bench_common::main::<Imported>()
}
