//! `nanoproc`: a thin command line over `nanoproc-runtime`.

use clap::{Args, Parser, Subcommand};
use flags::{CheckArgs, RunArgs};
use nanoproc_runtime::caps::parse_bytes;
use nanoproc_runtime::{CheckError, DEFAULT_MAX_COMPONENT_SIZE, Plan, Runtime};
use std::process::ExitCode;

mod check;
mod diagnostics;
mod flags;
mod generate;
mod graph;
mod inspect;
mod learn;
mod lock;
mod logging;
mod progress;
mod report;
mod run;
mod serve;
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
    /// Log what nanoproc does on stderr: -v the manifest, each component compiled
    /// (or loaded from the cache) and the run's end; -vv also the engine and each
    /// nanoprocess instantiated; -vvv everything. RUST_LOG, when set, chooses
    /// instead (e.g. RUST_LOG=nanoproc_runtime=debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Check a manifest, or a single component with the grant flags `run` takes,
    /// without running it: syntax, components, digests, that every grant is within
    /// its parent's, and that every import is satisfied by a matching export.
    /// Prints the tree with each nanoprocess's capabilities.
    Check(Box<CheckArgs>),
    /// Run a manifest's tree, or a single component (or WASI preview 1 module) with
    /// the capabilities given by flags.
    Run(Box<RunArgs>),
    /// Serve HTTP with a manifest's tree (or a single component) whose root
    /// exports wasi:http/incoming-handler (WASI 0.2) or wasi:http/handler (WASI
    /// 0.3): every request is handled by a fresh instance of the whole tree, under
    /// the manifest's limits, until Ctrl-C.
    Serve(Box<serve::ServeArgs>),
    /// Show what a component (or WASI preview 1 module) can ask for, before
    /// anything runs: its kind, WASI generation, digest and producers, each
    /// capability family its imports belong to with the grant keys and `run` flags
    /// that grant it, what it needs from dependencies, and what it exports.
    Inspect(inspect::InspectArgs),
    /// Draw a manifest's tree: each nanoprocess with its grants and failure policy,
    /// the interfaces on each edge and, given an audit log, each one's uses and
    /// refusals. DOT (the default), Mermaid, or a self-contained HTML page.
    Graph(Box<graph::GraphArgs>),
    /// Run a manifest's tree (or a single component) once, recording what each
    /// nanoprocess uses, and propose the smallest grants that would have allowed
    /// that run: a patch to the manifest, applied with --write (or `run` flags for
    /// a single component). While learning, each dependency holds everything its
    /// parent holds, never more.
    Learn(Box<learn::LearnArgs>),
    /// Record what was approved for each nanoprocess of a manifest (its
    /// component's digest, what its imports can ask for, its grants) in
    /// nanoproc.lock beside it. `check` and `run` then refuse a tree whose
    /// dependencies ask for more than was recorded, or whose grants differ.
    Lock(Box<lock::LockArgs>),
    /// Print a completion script for a shell, e.g.
    /// `nanoproc completions bash > ~/.local/share/bash-completion/completions/nanoproc`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, as roff: `nanoproc man | man -l -`. With a command,
    /// that command's page (`nanoproc man run` is nanoproc-run(1)).
    Man {
        /// A command, such as `run`.
        command: Option<String>,
    },
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
    logging::init(cli.verbose);
    let reading = match &cli.command {
        // Generated from this file's definitions: no engine needed.
        Command::Completions { shell } => return generate::completions(*shell),
        Command::Man { command } => return generate::man(command.as_deref()),
        Command::Check(args) => &args.reading,
        Command::Run(args) => &args.reading,
        Command::Serve(args) => &args.reading,
        Command::Inspect(args) => &args.reading,
        Command::Graph(args) => &args.reading,
        Command::Learn(args) => &args.reading,
        Command::Lock(args) => &args.reading,
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
        Ok(r) => with_progress(r)
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
        Command::Check(args) => check::check(&runtime, &args),
        Command::Run(args) => run::run(&runtime, &args, started),
        Command::Serve(args) => serve::serve(&runtime, &args),
        Command::Inspect(args) => inspect::inspect(&args, max_component_size),
        Command::Graph(args) => graph::graph(&runtime, &args),
        Command::Learn(args) => learn::learn(&runtime, &args),
        Command::Lock(args) => lock::lock(&runtime, &args, max_component_size),
        // Answered above, before an engine was made.
        Command::Completions { .. } | Command::Man { .. } => ExitCode::SUCCESS,
    }
}

/// The runtime, with a spinner for long compiles when stderr is a terminal.
fn with_progress(runtime: Runtime) -> Runtime {
    match progress::on_terminal() {
        Some(hook) => runtime.with_progress(hook),
        None => runtime,
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
            eprintln!(
                "{}",
                diagnostics::render(errors, diagnostics::colour_on_stderr())
            );
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
