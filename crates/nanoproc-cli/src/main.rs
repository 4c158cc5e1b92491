//! `nanoproc`: a thin command line over `nanoproc-runtime`.

use clap::{Args, Parser, Subcommand};
use nanoproc_runtime::caps::{GrantRequest, GrantValue, parse_bytes, parse_millis};
use nanoproc_runtime::{
    Audit, CheckError, DEFAULT_MAX_COMPONENT_SIZE, Decision, Interrupt, Plan, RunError, RunOptions,
    Runtime, StopReason,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit statuses of nanoproc itself; any other status is the application's own.
mod status {
    /// The manifest, a component or a grant was refused before anything ran.
    pub const REFUSED_AT_CHECK: u8 = 125;
    /// A nanoprocess could not be started, or the WebAssembly engine could not be
    /// set up (at start, or for the tree being checked): nothing about the input
    /// was refused, but nothing could run.
    pub const CANNOT_START: u8 = 126;
    /// The application trapped (a guest fault, or a refused capability that traps).
    pub const TRAP: u8 = 134;
    /// The application was stopped at a resource limit (memory, fuel, time per
    /// call, handles, output...).
    pub const LIMIT_EXCEEDED: u8 = 137;
    /// The run's `--timeout` passed (as GNU `timeout` reports it).
    pub const TIMED_OUT: u8 = 124;
    /// Interrupted with Ctrl-C (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
    /// Standard output was closed by its reader (128 + SIGPIPE, as a shell reports a
    /// process a closed pipe ended).
    pub const OUTPUT_CLOSED: u8 = 141;
}

/// How long a stopped run (`--timeout`, Ctrl-C) may take to end before the watchdog
/// ends the process.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// The same, for a plan that cannot interrupt wasm (no time limit anywhere, no
/// `--timeout`): only guests waiting in host calls can end by themselves, which
/// they do within a tick.
const UNINTERRUPTIBLE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

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
}

/// How components are read, for `check` and `run` alike.
#[derive(Args)]
struct Reading {
    /// Refuse component files larger than this, e.g. 64MiB (default 256 MiB). Each
    /// is read whole, and compiled, at every check and run.
    #[arg(long, value_name = "SIZE")]
    max_component_size: Option<String>,
    /// Accept trees of up to this many levels, the root being the first (default
    /// 64). Each level may take up to 768 KiB of nanoproc's stack as it runs.
    #[arg(long, value_name = "LEVELS")]
    max_depth: Option<usize>,
}

#[derive(Args)]
struct RunArgs {
    /// A manifest (.toml), or a component or module (.wasm) to run on its own.
    target: PathBuf,
    #[command(flatten)]
    reading: Reading,
    /// Grant a host directory read-write, seen by the guest at GUEST (default: the
    /// same path if absolute, else below `/`). Single component only.
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir: Vec<String>,
    /// Grant a host directory read-only. Single component only.
    #[arg(long, value_name = "HOST[::GUEST]")]
    dir_ro: Vec<String>,
    /// Grant an environment variable: NAME passes this process's value, NAME=VALUE
    /// sets one. Single component only.
    #[arg(long, value_name = "NAME[=VALUE]")]
    env: Vec<String>,
    /// Grant the wall clock. Single component only.
    #[arg(long)]
    wall_clock: bool,
    /// Grant the monotonic clock. Single component only.
    #[arg(long)]
    monotonic_clock: bool,
    /// Grant both clocks. Single component only.
    #[arg(long)]
    clocks: bool,
    /// Grant secure random. Single component only.
    #[arg(long)]
    random: bool,
    /// Grant insecure random. Single component only.
    #[arg(long)]
    insecure_random: bool,
    /// Grant outbound network access by pattern, e.g. api.example.com:443,
    /// 127.0.0.1:8000-8100, udp:10.0.0.0/8:53. Single component only.
    #[arg(long, value_name = "PATTERN")]
    connect: Vec<String>,
    /// Grant binding and listening by pattern, e.g. tcp:127.0.0.1:8080. Single
    /// component only.
    #[arg(long, value_name = "PATTERN")]
    listen: Vec<String>,
    /// Where stdout goes: inherit (the terminal, the default), prefix, discard,
    /// none (refused) or file=PATH. Single component only.
    #[arg(long, value_name = "MODE")]
    stdout: Option<String>,
    /// Where stderr goes, as for --stdout. Single component only.
    #[arg(long, value_name = "MODE")]
    stderr: Option<String>,
    /// Grant a wall clock frozen at INSTANT (e.g. 2024-01-01T00:00:00Z) and a
    /// monotonic clock frozen at 0, instead of the real ones. Single component only.
    #[arg(long, value_name = "INSTANT")]
    clock_at: Option<String>,
    /// Grant random (secure and insecure) as reproducible bytes from SEED. Single
    /// component only.
    #[arg(long, value_name = "SEED")]
    random_seed: Option<u64>,
    /// Grant stdin. Single component only.
    #[arg(long)]
    stdin: bool,
    /// Grant a `wasi:config/store` value. Single component only.
    #[arg(long, value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Do not grant the terminal's stdout and stderr, which a single component
    /// otherwise gets (it is the user's own terminal). Single component only.
    #[arg(long)]
    no_stdio: bool,
    /// Limit linear memory, e.g. 64MiB. Single component only.
    #[arg(long, value_name = "SIZE")]
    memory: Option<String>,
    /// Limit fuel (about one unit per wasm instruction) for the run. Single component only.
    #[arg(long, value_name = "UNITS")]
    fuel: Option<String>,
    /// Limit open handles (files, streams, sockets). Single component only.
    #[arg(long, value_name = "COUNT")]
    handles: Option<String>,
    /// Limit bytes written to each of stdout and stderr, e.g. 1MiB. Single component only.
    #[arg(long, value_name = "SIZE")]
    output: Option<String>,
    /// Limit table elements. Single component only.
    #[arg(long, value_name = "COUNT")]
    tables: Option<String>,
    /// Limit core instances. Single component only.
    #[arg(long, value_name = "COUNT")]
    instances: Option<String>,
    /// Stop the whole run after this long, e.g. 30s or 500ms (exit status 124).
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
    /// Print how much memory nanoproc used after the run.
    #[arg(long)]
    stats: bool,
    /// Write every capability decision to FILE as JSON Lines, as it is made.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// After the run, list each nanoprocess's uses of each capability, not only
    /// the refusals.
    #[arg(long)]
    audit_summary: bool,
    /// Arguments for the root (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

impl RunArgs {
    fn has_grant_flags(&self) -> bool {
        !self.dir.is_empty()
            || !self.dir_ro.is_empty()
            || !self.env.is_empty()
            || self.wall_clock
            || self.monotonic_clock
            || self.clocks
            || self.random
            || self.insecure_random
            || self.stdin
            || self.no_stdio
            || self.stdout.is_some()
            || self.stderr.is_some()
            || self.clock_at.is_some()
            || self.random_seed.is_some()
            || !self.connect.is_empty()
            || !self.listen.is_empty()
            || !self.config.is_empty()
            || self.limit_flags().any(|(_, v)| v.is_some())
    }

    /// The limit flags: each is the grant key of the same name.
    fn limit_flags(&self) -> impl Iterator<Item = (&'static str, Option<&String>)> {
        [
            ("memory", self.memory.as_ref()),
            ("fuel", self.fuel.as_ref()),
            ("handles", self.handles.as_ref()),
            ("output", self.output.as_ref()),
            ("tables", self.tables.as_ref()),
            ("instances", self.instances.as_ref()),
        ]
        .into_iter()
    }

    /// The flags as grants: each flag is written as the manifest's grant it stands
    /// for and read by the same family parser, so the flags are no second grammar.
    fn grants(&self) -> Result<GrantRequest, String> {
        let mut grants: Vec<(&str, &'static str, GrantValue)> = Vec::new();
        let mut dirs = Vec::new();
        for (flag, spec, rights) in self
            .dir
            .iter()
            .map(|d| ("--dir", d, "read-write"))
            .chain(self.dir_ro.iter().map(|d| ("--dir-ro", d, "read-only")))
        {
            let (host, guest) = match spec.split_once("::") {
                Some((h, g)) => (h, Some(g)),
                None => (spec.as_str(), None),
            };
            // Made absolute, not resolved: the runtime opens the last component
            // without following a symbolic link (see the runtime's `families::fs::dirs`).
            let host_path = Path::new(host)
                .symlink_metadata()
                .and_then(|_| std::path::absolute(host))
                .map_err(|e| format!("{flag} {spec}: {host}: {e}"))?;
            let guest = match guest {
                Some(g) => g.to_string(),
                // Like `wasmtime run --dir`: an absolute path is seen where it is;
                // a relative one below `/`. One that climbs needs a guest path.
                None if host.starts_with('/') => host.to_string(),
                None if Path::new(host)
                    .components()
                    .any(|c| c == std::path::Component::ParentDir) =>
                {
                    return Err(format!(
                        "{flag} {spec}: say where the guest sees it: {flag} {spec}::/GUEST"
                    ));
                }
                None => format!("/{}", host.trim_start_matches("./")),
            };
            dirs.push(GrantValue::table([
                ("host", GrantValue::text(host_path.to_string_lossy())),
                ("guest", GrantValue::text(guest)),
                ("rights", GrantValue::text(rights)),
            ]));
        }
        if !dirs.is_empty() {
            grants.push(("--dir", "fs", GrantValue::list(dirs)));
        }
        let texts =
            |items: &[String]| GrantValue::list(items.iter().map(GrantValue::text).collect());
        if !self.env.is_empty() {
            grants.push(("--env", "env", texts(&self.env)));
        }
        if !self.connect.is_empty() {
            grants.push(("--connect", "network", texts(&self.connect)));
        }
        if !self.listen.is_empty() {
            grants.push(("--listen", "listen", texts(&self.listen)));
        }
        if !self.config.is_empty() {
            let mut entries = Vec::new();
            for pair in &self.config {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("--config {pair}: expected KEY=VALUE"))?;
                entries.push((key, GrantValue::text(value)));
            }
            grants.push(("--config", "config", GrantValue::table(entries)));
        }
        for (flag, key, on) in [
            ("--wall-clock", "wall-clock", self.wall_clock || self.clocks),
            (
                "--monotonic-clock",
                "monotonic-clock",
                self.monotonic_clock || self.clocks,
            ),
            ("--random", "random", self.random),
            ("--insecure-random", "insecure-random", self.insecure_random),
            ("--stdin", "stdin", self.stdin),
            ("--no-stdio", "stdout", !self.no_stdio),
            ("--no-stdio", "stderr", !self.no_stdio),
        ] {
            if on {
                grants.push((flag, key, GrantValue::bool(true)));
            }
        }
        for (flag, key, value) in [
            ("--stdout", "stdout", &self.stdout),
            ("--stderr", "stderr", &self.stderr),
        ] {
            let Some(v) = value else { continue };
            let grant = match v.as_str() {
                "none" => GrantValue::bool(false),
                "inherit" | "prefix" | "discard" => GrantValue::text(v.as_str()),
                other => match other.strip_prefix("file=") {
                    Some(path) => GrantValue::table([("file", GrantValue::text(path))]),
                    None => {
                        return Err(format!(
                            "{flag} {v}: expected inherit, prefix, discard, none or file=PATH"
                        ));
                    }
                },
            };
            grants.push((flag, key, grant));
        }
        if let Some(at) = &self.clock_at {
            grants.push(("--clock-at", "wall-clock", GrantValue::text(at.as_str())));
            grants.push(("--clock-at", "monotonic-clock", GrantValue::text("frozen")));
        }
        if let Some(seed) = self.random_seed {
            // A seed is a TOML integer in a manifest: the same range here.
            let seed = i64::try_from(seed)
                .map_err(|_| format!("--random-seed {seed}: at most {}", i64::MAX))?;
            let seeded = || {
                GrantValue::table([(
                    "seed",
                    GrantValue::new(nanoproc_runtime::caps::ValueKind::Integer(seed)),
                )])
            };
            grants.push(("--random-seed", "random", seeded()));
            grants.push(("--random-seed", "insecure-random", seeded()));
        }
        for (key, value) in self.limit_flags() {
            if let Some(v) = value {
                grants.push(("--limit", key, GrantValue::text(v.as_str())));
            }
        }
        let mut request = GrantRequest::default();
        for (flag, key, value) in grants {
            let flag = if flag == "--limit" {
                format!("--{key}")
            } else {
                flag.to_string()
            };
            request.parse(key, &value).map_err(|errors| {
                let messages: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                format!("{flag}: {}", messages.join("; "))
            })?;
        }
        Ok(request)
    }
}

fn main() -> ExitCode {
    // For NANOPROC_STARTUP_TRACE (see `run`): how long start-up took.
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let reading = match &cli.command {
        Command::Check { reading, .. } => reading,
        Command::Run(args) => &args.reading,
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
        Command::Run(args) => run(&runtime, &args, started),
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

fn run(runtime: &Runtime, args: &RunArgs, started: std::time::Instant) -> ExitCode {
    // Installed first, so that a Ctrl-C while the tree is still being checked is
    // not lost: it stops the guests at their first epoch tick, or in the host call
    // they wait in. A second Ctrl-C exits at once, after the audit line being
    // written, without waiting for the watchdog.
    let interrupt = Interrupt::new();
    let on_signal = interrupt.clone();
    let audit_for_signal = std::sync::Arc::new(std::sync::OnceLock::<Audit>::new());
    let audit_at_signal = audit_for_signal.clone();
    let _ = ctrlc::set_handler(move || {
        if on_signal.reason().is_some() {
            if let Some(audit) = audit_at_signal.get() {
                audit.seal();
            }
            std::process::exit(status::INTERRUPTED.into());
        }
        on_signal.stop(StopReason::Interrupted);
    });
    let timeout = match args.timeout.as_deref().map(parse_millis).transpose() {
        Ok(t) => t.map(std::time::Duration::from_millis),
        Err(e) => {
            eprintln!("nanoproc: --timeout: {e}");
            return ExitCode::from(2);
        }
    };
    // `--timeout` must stop a guest that computes; a plan with no time limit of
    // its own would otherwise be built without the epoch checks that do.
    let runtime = &runtime.clone().with_interruption(timeout.is_some());
    let is_manifest = args.target.extension().is_some_and(|e| e == "toml");
    let plan: Result<Plan, CheckError> = if is_manifest {
        if args.has_grant_flags() {
            eprintln!(
                "nanoproc: grant flags apply to a single component; a manifest's grants are in the manifest ({})",
                args.target.display()
            );
            return ExitCode::from(2);
        }
        runtime.check_manifest(&args.target, &args.args)
    } else {
        match args.grants() {
            Ok(grants) => runtime.check_component(&args.target, grants, &args.args),
            Err(e) => {
                eprintln!("nanoproc: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return not_checked(&e),
    };
    print_notices(&plan);
    // The record must be beyond every guest's reach: one that could read it would
    // learn every decision, one that could write it would forge or delete them.
    if let Some(log) = args.audit.as_deref()
        && let Some(grant) = plan.grant_reaching(log)
    {
        eprintln!(
            "nanoproc: --audit {}: it lies inside a granted directory ({grant}), where a guest could read, forge or delete it; write it elsewhere",
            log.display()
        );
        return ExitCode::from(2);
    }
    let audit = match Audit::with(args.audit.as_deref(), args.audit_summary) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "nanoproc: --audit {}: {e}",
                args.audit.as_deref().unwrap_or(Path::new("")).display()
            );
            return ExitCode::from(2);
        }
    };
    let _ = audit_for_signal.set(audit.clone());
    let options = RunOptions {
        audit,
        interrupt,
        timeout,
    };
    // A plan without epoch checks cannot stop a guest computing in wasm: a stop
    // (Ctrl-C) is then the watchdog's after a short grace, which still lets guests
    // waiting in host calls end by themselves and their parents report.
    let grace = if plan.interrupts_wasm() {
        STOP_GRACE
    } else {
        UNINTERRUPTIBLE_GRACE
    };
    let finished = Watchdog::start(
        &options.interrupt,
        &options.audit,
        args.audit_summary,
        grace,
    );
    let outcome = plan.start(&options).and_then(|tree| {
        // The start-up benchmark (crates/nanoproc-bench/benches/startup.rs) reads this.
        if std::env::var_os("NANOPROC_STARTUP_TRACE").is_some() {
            eprintln!(
                "nanoproc: root entered after {:.3} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        tree.run()
    });
    finished.finish();
    report(&options.audit, args.audit_summary);
    if args.stats {
        report_stats();
    }
    match outcome {
        Ok(exit) => ExitCode::from(exit.code.clamp(0, 255) as u8),
        Err(e) => {
            // A closed output ends the run quietly, as SIGPIPE would; an exit is the
            // application's own ending.
            if !matches!(
                e,
                RunError::Stopped(StopReason::OutputClosed) | RunError::Exited(_)
            ) {
                eprintln!("nanoproc: {}", printable(&e.to_string()));
            }
            ExitCode::from(match e {
                RunError::Instantiate {
                    limit_exceeded: true,
                    ..
                } => status::LIMIT_EXCEEDED,
                RunError::Instantiate { .. } => status::CANNOT_START,
                RunError::Trap {
                    limit_exceeded: true,
                    ..
                } => status::LIMIT_EXCEEDED,
                RunError::Trap { .. } => status::TRAP,
                RunError::Stopped(reason) => stop_status(reason),
                RunError::Exited(exit) => exit.code.clamp(0, 255) as u8,
            })
        }
    }
}

fn stop_status(reason: StopReason) -> u8 {
    match reason {
        StopReason::TimedOut => status::TIMED_OUT,
        StopReason::Interrupted => status::INTERRUPTED,
        StopReason::OutputClosed => status::OUTPUT_CLOSED,
    }
}

/// Ends the process when a run told to stop (`--timeout`, Ctrl-C) has not ended
/// within [`STOP_GRACE`]. Guests are stopped in wasm at the next epoch tick and in
/// the host calls that wait (`wasi::blocking` in the runtime); this is for what
/// neither reaches, such as a host call stuck in a system call. It does not depend
/// on any guest returning: it reports what was recorded, waits for the audit line
/// being written and exits with the stop's status.
struct Watchdog {
    state: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// The run has not ended, and the watchdog has not fired.
const RUNNING: u8 = 0;
/// The run ended by itself: the watchdog stands down.
const FINISHED: u8 = 1;
/// The watchdog is ending the process: the main thread must not report too.
const FIRING: u8 = 2;

impl Watchdog {
    fn start(
        interrupt: &Interrupt,
        audit: &Audit,
        audit_summary: bool,
        grace: std::time::Duration,
    ) -> Watchdog {
        use std::sync::atomic::Ordering;
        let state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(RUNNING));
        let (shared, interrupt, audit) = (state.clone(), interrupt.clone(), audit.clone());
        // A stop is noticed within this; against a grace of seconds, a rare wake-up
        // is enough.
        let poll = std::time::Duration::from_millis(50);
        let spawned = std::thread::Builder::new()
            .name("nanoproc-watchdog".into())
            .spawn(move || {
                let finished = || shared.load(Ordering::SeqCst) == FINISHED;
                let reason = loop {
                    if finished() {
                        return;
                    }
                    if let Some(reason) = interrupt.reason() {
                        break reason;
                    }
                    std::thread::sleep(poll);
                };
                let stopped_at = std::time::Instant::now();
                while stopped_at.elapsed() < grace {
                    if finished() {
                        return;
                    }
                    std::thread::sleep(poll);
                }
                // Whoever moves the state first reports; the other stands down.
                if shared
                    .compare_exchange(RUNNING, FIRING, Ordering::SeqCst, Ordering::SeqCst)
                    .is_err()
                {
                    return;
                }
                audit.seal();
                report(&audit, audit_summary);
                let what = if grace == STOP_GRACE {
                    "blocked in a host call"
                } else {
                    "running (a plan without time limits is not interrupted in wasm) or blocked in a host call"
                };
                eprintln!(
                    "nanoproc: stopped: {reason}; a nanoprocess was still {what} {:.2}s later, so nanoproc exits without waiting for it",
                    grace.as_secs_f64()
                );
                std::process::exit(stop_status(reason).into());
            });
        if let Err(e) = spawned {
            eprintln!(
                "nanoproc: cannot start the watchdog thread ({e}); a stopped run may take long to end"
            );
        }
        Watchdog { state }
    }

    /// The run ended by itself. If the watchdog is already ending the process, waits
    /// for it to exit, so that the report is printed once.
    fn finish(&self) {
        use std::sync::atomic::Ordering;
        if self
            .state
            .compare_exchange(RUNNING, FINISHED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            loop {
                std::thread::park();
            }
        }
    }
}

/// `text` with every control character escaped (C0 and C1, newlines included), for
/// the terminal. Guests choose much of what nanoproc prints (paths, addresses,
/// their own panic messages): raw, a guest granted no output at all could clear
/// the screen, retitle the window or print a forged line of nanoproc's report.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The end-of-run account: what each nanoprocess was refused (each distinct
/// refusal once, with how often), which dependencies were restarted, and with
/// `--audit-summary` every capability each one used.
fn report(audit: &Audit, uses: bool) {
    const SHOWN: usize = 50;
    let kept = audit.kept();
    let not_kept = kept.refusals_not_kept;
    let mut refusals: Vec<(String, u64)> = Vec::new();
    let mut restarts = Vec::new();
    for e in kept.events {
        if e.capability == "restart" {
            let verb = match e.decision {
                Decision::Allowed => "restarted",
                Decision::Refused | Decision::Failed => "not restarted",
            };
            restarts.push(printable(&format!(
                "  {}: {verb}: {}",
                e.nanoprocess,
                e.reason.unwrap_or_default()
            )));
            continue;
        }
        let target = e.target.map(|t| format!(" {t}")).unwrap_or_default();
        let line = printable(&format!(
            "  {}: {}{target} ({}): {}",
            e.nanoprocess,
            e.capability,
            e.operation,
            e.reason.unwrap_or_default()
        ));
        match refusals.iter_mut().find(|(l, _)| *l == line) {
            Some((_, n)) => *n += 1,
            None => refusals.push((line, 1)),
        }
    }
    let total: u64 = refusals.iter().map(|(_, n)| n).sum::<u64>() + not_kept;
    if total > 0 {
        eprintln!(
            "nanoproc: {total} capability use{} refused:",
            if total == 1 { " was" } else { "s were" }
        );
        for (line, n) in refusals.iter().take(SHOWN) {
            if *n > 1 {
                eprintln!("{line} (x{n})");
            } else {
                eprintln!("{line}");
            }
        }
        let hidden = refusals.len().saturating_sub(SHOWN);
        if hidden > 0 {
            eprintln!("  ... and {hidden} other kinds; see --audit FILE for all");
        }
        if not_kept > 0 {
            eprintln!(
                "  ... and {not_kept} more refusals not kept in memory; see --audit FILE for all"
            );
        }
    }
    if !restarts.is_empty() || kept.restarts_not_kept > 0 {
        eprintln!("nanoproc: restarts:");
        for r in restarts {
            eprintln!("{r}");
        }
        if kept.restarts_not_kept > 0 {
            eprintln!(
                "  ... and {} more restarts not kept in memory; see --audit FILE for all",
                kept.restarts_not_kept
            );
        }
    }
    if uses {
        eprintln!("nanoproc: capability uses (allowed / refused):");
        for ((who, capability), (allowed, refused)) in audit.counts() {
            eprintln!("  {who}: {capability}: {allowed} / {refused}");
        }
    }
}

/// Peak resident memory of this process, from the kernel.
fn report_stats() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        eprintln!("nanoproc: peak resident memory {kib} KiB");
    }
}
