//! `bench-parent` with a second dependency, for the concurrency benchmark
//! (crates/nanoproc-bench/benches/concurrency.rs): the same WASI 0.2 command, the
//! same call loop (`bench_common::main`) and the same calls to `bench:calls/api`,
//! and besides an import of `test:probe/probe` (wit/probe.wit), which it calls once,
//! with no op, before the timed calls. Serving that import with a WASI 0.3 component
//! (`probe3_leaf.wasm`) or its 0.2 twin (`probe_leaf.wasm`) gives two plans that
//! differ in one thing only: whether their engine has concurrency support.
//! (A nanoprocess nobody imports is refused, so the third node needs an importer.)

wit_bindgen::generate!({
    path: ["../wit/bench.wit", "../wit/probe.wit"],
    inline: "
        package bench:mixed;
        world parent {
            import bench:calls/api;
            import test:probe/probe;
        }
    ",
    world: "bench:mixed/parent",
    generate_all,
});

use bench::calls::api::{self, Leaf, Rec};
use std::process::ExitCode;
use test::probe::probe;

bench_common::imported_api!();

fn main() -> ExitCode {
    // The other dependency answers an empty list of probes with no answer.
    match probe::run(&[]) {
        Ok(answers) if answers.is_empty() => {}
        other => {
            eprintln!("bench_mixed_parent: the probe dependency answered {other:?}");
            return ExitCode::from(3);
        }
    }
    bench_common::main::<Imported>()
}
