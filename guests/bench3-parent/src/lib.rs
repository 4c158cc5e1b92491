//! The WASI 0.3 twin of `bench-parent`, for the concurrency benchmark
//! (crates/nanoproc-bench/benches/concurrency.rs): a command whose entry point is
//! the `wasi:cli/run@0.3.0` export (an `async func`, wasip3's command export), taking
//! the arguments `<kind> <n>` through `wasi:cli/environment@0.3.0`. It makes the same
//! `n` calls to the imported `bench:calls/api` as `bench-parent`, with the same loop
//! (`bench_common::run`, timed with std's monotonic clock, `wasi:clocks@0.2`), and
//! prints the same line, `<kind> <n> <elapsed ns> <checksum>`, through
//! `wasi:cli/stdout@0.3.0`. The imports are ordinary functions, called synchronously
//! from the run task, whether a 0.2 or a 0.3 component serves them.

wit_bindgen_p3::generate!({
    path: "../wit/bench.wit",
    world: "bench-parent",
    runtime_path: "wit_bindgen_p3::rt",
});

use bench::calls::api::{self, Leaf, Rec};

bench_common::imported_api!();

/// Writes `text` and a newline through `wasi:cli/stdout@0.3.0` and waits until the
/// host has written it all.
async fn print(text: &str) -> Result<(), ()> {
    let (mut tx, rx) = wasip3::wit_stream::new::<u8>();
    let done = wasip3::cli::stdout::write_via_stream(rx);
    let rest = tx.write_all(format!("{text}\n").into_bytes()).await;
    drop(tx);
    done.await.map_err(drop)?;
    if rest.is_empty() { Ok(()) } else { Err(()) }
}

struct Cmd;

wasip3::cli::command::export!(Cmd);

impl wasip3::exports::cli::run::Guest for Cmd {
    async fn run() -> Result<(), ()> {
        let args = wasip3::cli::environment::get_arguments();
        let kind = args.get(1).cloned().unwrap_or_default();
        let n = args.get(2).and_then(|n| n.parse::<u64>().ok());
        let Some((ns, check)) = n.and_then(|n| bench_common::run::<Imported>(&kind, n)) else {
            let _ = print(&format!("usage: <{}> <n>", bench_common::KINDS.join("|"))).await;
            return Err(());
        };
        print(&format!("{kind} {} {ns} {check}", n.unwrap_or_default())).await
    }
}
