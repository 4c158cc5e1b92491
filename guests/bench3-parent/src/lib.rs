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
