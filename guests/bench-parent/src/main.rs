//! The caller of the cross-nanoprocess benchmark: `bench_parent <kind> <n>` makes `n`
//! calls of `kind` to `bench:calls/api` in another component (a child nanoprocess,
//! or `bench-child` composed into the same component) and prints
//! `<kind> <n> <elapsed ns> <checksum>` (see `bench-common`).

wit_bindgen::generate!({ path: "../wit/bench.wit", world: "bench-parent" });

use bench::calls::api::{self, Leaf, Rec};
use std::process::ExitCode;

bench_common::imported_api!();

fn main() -> ExitCode {
    bench_common::main::<Imported>()
}
