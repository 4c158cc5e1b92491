//! `nanoproc`: a thin command line over `nanoproc-runtime`.

use clap::{Args, Parser, Subcommand};
use flags::RunArgs;
use nanoproc_runtime::caps::parse_bytes;
use nanoproc_runtime::{CheckError, DEFAULT_MAX_COMPONENT_SIZE, Plan, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

mod flags;
mod graph;
mod inspect;
mod report;
mod run;
mod status;

#[derive(Parser)]
#[command(
    name = "nanoproc",
    version,
    about = "Run WebAssembly components as a tree of nanoprocesses, each holding only the capabilities its parent handed it."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a manifest without running it: syntax, components, digests, that every
    /// grant is within its parent's, and that every import is satisfied by a
    /// matching export. Prints the tree with each nanoprocess's capabilities.
    Check {
        /// The manifest (nanoproc.toml).
        manifest: PathBuf,
        #[command(flatten)]
        reading: Reading,
    },
    /// Run a manifest's tree, or a single component (or WASI preview 1 module) with
    /// the capabilities given by flags.
    Run(Box<RunArgs>),
    /// Show what a component (or WASI preview 1 module) can ask for, before
    /// anything runs: its kind, WASI generation, digest and producers, each
    /// capability family its imports belong to with the grant keys and `run` flags
    /// that grant it, what it needs from dependencies, and what it exports.
    Inspect(inspect::InspectArgs),
    /// Draw a manifest's tree: each nanoprocess with its grants and failure policy,
    /// the interfaces on each edge and, given an audit log, each one's uses and
    /// refusals. DOT (the default), Mermaid, or a self-contained HTML page.
    Graph(Box<graph::GraphArgs>),
}

/// How components are read, for `check` and `run` alike.
#[derive(Args)]
pub struct Reading {
    /// Refuse component files larger than this, e.g. 64MiB (default 256 MiB). Each
    /// is read whole, and compiled, at every check and run.
    #[arg(long, value_name = "SIZE")]
    max_component_size: Option<String>,
    /// Accept trees of up to this many levels, the root being the first (default
    /// 64). Each level may take up to 768 KiB of nanoproc's stack as it runs.
    #[arg(long, value_name = "LEVELS")]
    max_depth: Option<usize>,
}

fn main() -> ExitCode {
    // For NANOPROC_STARTUP_TRACE (see `run`): how long start-up took.
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let reading = match &cli.command {
        Command::Check { reading, .. } => reading,
        Command::Run(args) => &args.reading,
        Command::Inspect(args) => &args.reading,
        Command::Graph(args) => &args.reading,
    };
    let max_component_size = match reading.max_component_size.as_deref().map(parse_bytes) {
        None => DEFAULT_MAX_COMPONENT_SIZE,
        Some(Ok(bytes)) => bytes,
        Some(Err(e)) => {
            eprintln!("nanoproc: --max-component-size: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match Runtime::new() {
        Ok(r) => r
            .with_max_component_size(max_component_size)
            .with_max_depth(
                reading
                    .max_depth
                    .unwrap_or(nanoproc_runtime::manifest::MAX_DEPTH),
            ),
        Err(e) => {
            eprintln!("nanoproc: cannot set up the WebAssembly engine: {e:#}");
            return ExitCode::from(status::CANNOT_START);
        }
    };
    match cli.command {
        Command::Check { manifest, .. } => match runtime.check_manifest(&manifest, &[]) {
            Ok(plan) => {
                print_notices(&plan);
                print_out(&format!(
                    "{}ok: {} nanoprocesses, every grant within its parent's\n",
                    plan.describe(),
                    plan.nodes().len()
                ));
                ExitCode::SUCCESS
            }
            Err(e) => not_checked(&e),
        },
        Command::Run(args) => run::run(&runtime, &args, started),
        Command::Inspect(args) => inspect::inspect(&args, max_component_size),
        Command::Graph(args) => graph::graph(&runtime, &args),
    }
}

/// Writes to standard output. If nobody reads it any more (`nanoproc check ... |
/// head -1`), ends quietly as a process killed by SIGPIPE would: Rust's `print!`
/// would panic instead.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(status::OUTPUT_CLOSED.into());
        }
        eprintln!("nanoproc: writing to standard output: {e}");
        std::process::exit(1);
    }
}

fn print_notices(plan: &Plan) {
    for notice in plan.notices() {
        eprintln!("nanoproc: note: {notice}");
    }
}

/// Reports a tree that could not be checked: refused (status 125), or not
/// checked at all because its engine could not be set up (126).
fn not_checked(error: &CheckError) -> ExitCode {
    match error {
        CheckError::Refused(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "nanoproc: refused before running ({} error{})",
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            ExitCode::from(status::REFUSED_AT_CHECK)
        }
        CheckError::Engine(_) => {
            eprintln!("nanoproc: {error}");
            ExitCode::from(status::CANNOT_START)
        }
    }
}
