//! `-v`, `-vv`, `-vvv` and `RUST_LOG`: the runtime's `tracing` events (the manifest
//! loaded, each component compiled or loaded from the cache and how long it took,
//! the engine chosen, each nanoprocess instantiated or restarted, the run's end)
//! written to stderr, each with the seconds since nanoproc started.
//!
//! Without either, no subscriber is installed at all: nothing extra is printed,
//! and the events cost a check of a static each.

use std::time::Instant;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// nanoproc's own crates: what `-v` shows. wasmtime's and cranelift's events
/// (many, about their internals) only through `RUST_LOG`.
const OURS: [&str; 4] = [
    "nanoproc",
    "nanoproc_runtime",
    "nanoproc_manifest",
    "nanoproc_caps",
];

/// Installs the subscriber `verbosity` (the number of `-v`) or `RUST_LOG` asks for;
/// `RUST_LOG`, when set, wins (e.g. `RUST_LOG=nanoproc_runtime=debug`).
pub fn init(verbosity: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => filter,
            Err(e) => {
                // A bad filter must not stop a run: said once, and not logged.
                eprintln!(
                    "nanoproc: RUST_LOG={spec:?} is not a filter nanoproc reads ({e}); not logging"
                );
                return;
            }
        },
        _ => {
            let level = match verbosity {
                0 => return,
                1 => "info",
                2 => "debug",
                _ => "trace",
            };
            let directives: Vec<String> = OURS.iter().map(|c| format!("{c}={level}")).collect();
            EnvFilter::new(directives.join(","))
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(crate::diagnostics::colour_on_stderr())
        .with_timer(SinceStart(Instant::now()))
        .try_init();
}

/// Seconds since nanoproc started, to the millisecond: enough to see where a
/// check or a run spends its time, short enough to read.
struct SinceStart(Instant);

impl FormatTime for SinceStart {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{:8.3}s", self.0.elapsed().as_secs_f64())
    }
}
