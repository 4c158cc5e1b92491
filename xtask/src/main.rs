//! `cargo xtask demo`: build the guest components and run the demo application.
//! `cargo xtask http-demo`: serve the gallery over HTTP (`nanoproc serve`), send it
//! a photo, and stop it.
//! `cargo xtask plugin-demo`: build the three plugins of examples/plugin-host and
//! run it on its sample input.
//! `cargo xtask guests`: only build the guest components.
//! `cargo xtask foreign`: build the JavaScript, Python, C and AssemblyScript test components.
//! `cargo xtask test-tools`: install what the tests need beyond Rust, then `foreign`.
//! `cargo xtask bench`: run every benchmark and write `docs/BENCHMARKS.md`;
//! `cargo xtask bench NAME...` runs only those and replaces only their parts.

mod bench;
mod http_demo;
mod tools;

use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "bench" => bench::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        "test-tools" => tools::run(),
        "guests" => {
            println!("{}", xtask::build_guests().display());
            ExitCode::SUCCESS
        }
        "foreign" => tools::foreign(),
        "demo" => {
            let manifest = xtask::prepare_demo();
            let root = xtask::repo_root();
            // The story needs a secret in the user's environment that nobody was
            // granted, next to the one variable the application was.
            // Every capability decision of the run, as JSON Lines, next to the build.
            let audit = manifest.with_file_name("build").join("audit.jsonl");
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(&root)
                .args(["run", "-q", "-p", "nanoproc-cli", "--", "run"])
                .arg("--audit")
                .arg(&audit)
                .arg(&manifest)
                .env("GALLERY_TITLE", "Holiday photos")
                .env("AWS_SECRET_ACCESS_KEY", "demo-secret-that-must-not-leak")
                .status()
                .expect("running nanoproc");
            eprintln!(
                "nanoproc: every capability decision of this run is in {}",
                audit.strip_prefix(&root).unwrap_or(&audit).display()
            );
            ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)
        }
        "http-demo" => http_demo::run(),
        "plugin-demo" => {
            let example = xtask::prepare_plugin_demo();
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(xtask::repo_root())
                .args(["run", "-q", "-p", "plugin-host", "--"])
                .arg(example.join("input.md"))
                // A secret in the user's environment: the Python plugin looks for
                // it, and was granted no variable.
                .env("AWS_SECRET_ACCESS_KEY", "demo-secret-that-must-not-leak")
                .status()
                .expect("running plugin-host");
            ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <demo|http-demo|plugin-demo|guests|foreign|test-tools|bench>"
            );
            ExitCode::from(2)
        }
    }
}
