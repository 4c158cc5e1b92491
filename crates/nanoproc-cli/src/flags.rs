//! The flags of `run` and `check`, and the grants the flags stand for: each grant
//! flag is written as the manifest grant it means and read by the same family
//! parser.

use crate::Reading;
use clap::Args;
use nanoproc_runtime::caps::{GrantRequest, GrantValue};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub reading: Reading,
    /// Stop the whole run after this long, e.g. 30s or 500ms (exit status 124).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Print how much memory nanoproc used after the run.
    #[arg(long)]
    pub stats: bool,
    /// Write every capability decision to FILE as JSON Lines, as it is made.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// After the run, list each nanoprocess's uses of each capability, not only
    /// the refusals.
    #[arg(long)]
    pub audit_summary: bool,
    /// Refuse a manifest's tree that differs in any way from its nanoproc.lock,
    /// or that has none (for CI). Without it, a lock beside the manifest still
    /// refuses what asks for more than was approved, and warns of a rebuild.
    #[arg(long)]
    pub locked: bool,
    /// Trust the certificates in this PEM file as roots for outgoing HTTPS
    /// requests, besides the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub http_ca: Vec<PathBuf>,
    #[command(flatten)]
    pub grants: GrantFlags,
    #[command(flatten)]
    pub what: Target,
}

/// What `run` and `learn` run: a target, then the guest's arguments.
#[derive(Args)]
pub struct Target {
    /// A manifest (.toml), or a component or module (.wasm) to run on its own,
    /// then the root's arguments. Everything after the target is the guest's, as
    /// with `wasmtime run`: nanoproc's flags go before it. A `--` right after the
    /// target is dropped.
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        value_names = ["TARGET", "ARGS"]
    )]
    target_and_args: Vec<String>,
}

impl Target {
    pub fn target(&self) -> &Path {
        // clap requires at least one value.
        Path::new(self.target_and_args.first().map_or("", String::as_str))
    }

    /// The root's arguments: everything after the target, but a `--` right after
    /// it (the way to pass arguments that look like nanoproc's flags).
    pub fn guest_args(&self) -> &[String] {
        let after = self.target_and_args.get(1..).unwrap_or_default();
        match after.split_first() {
            Some((first, rest)) if first == "--" => rest,
            _ => after,
        }
    }
}

impl RunArgs {
    pub fn target(&self) -> &Path {
        self.what.target()
    }

    pub fn guest_args(&self) -> &[String] {
        self.what.guest_args()
    }

    /// A flag of nanoproc's own written after the target, where it is the guest's
    /// argument: `run app.wasm --dir data` grants nothing and hands `--dir data`
    /// to the guest. Flags went there before arguments became the guest's, and a
    /// `--no-stdio` or `--memory` silently not applied would leave the guest more
    /// than the user meant, so this is refused (status 2) unless a `--` right
    /// after the target says the arguments are the guest's.
    pub fn misplaced_flag(&self) -> Option<&str> {
        use clap::CommandFactory;
        let after = self.what.target_and_args.get(1..)?;
        if after.first().is_some_and(|a| a == "--") {
            return None;
        }
        let cli = crate::Cli::command();
        let run = cli.find_subcommand("run")?;
        // Anywhere among the guest's arguments, not only first: `run app.wasm
        // input.txt --no-stdio` would otherwise hand the guest a stdio the user
        // meant to withhold.
        after.iter().map(String::as_str).find(|arg| {
            arg.strip_prefix("--")
                .and_then(|rest| rest.split('=').next())
                .is_some_and(|name| run.get_arguments().any(|a| a.get_long() == Some(name)))
        })
    }
}

/// `check`'s flags: the same target and grants as `run`, nothing that runs.
#[derive(Args)]
pub struct CheckArgs {
    /// A manifest (.toml), or a component or module (.wasm) checked as a tree of
    /// one, holding what the grant flags give it.
    pub target: PathBuf,
    #[command(flatten)]
    pub reading: Reading,
    /// Print the result as JSON on stdout: `{"ok": true, "nanoprocesses": [...]}`,
    /// or `{"ok": false, "errors": [...]}` with each error's file, line, column,
    /// message and help.
    #[arg(long)]
    pub json: bool,
    /// Refuse a manifest's tree that differs in any way from its nanoproc.lock,
    /// or that has none (for CI). Without it, a lock beside the manifest still
    /// refuses what asks for more than was approved, and warns of a rebuild.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub grants: GrantFlags,
}

/// The grants and limits of a single component, as flags: `run` and `check` take
/// the same ones. A manifest's grants are in the manifest, so with one they are
/// refused.
#[derive(Args, Default)]
#[command(next_help_heading = "Grants and limits (single component only)")]
pub struct GrantFlags {
    /// Grant a host directory read-write, seen by the guest at GUEST (default: the
    /// same path if absolute, else below `/`).
    #[arg(long, value_name = "HOST[::GUEST]")]
    pub dir: Vec<String>,
    /// Grant a host directory read-only.
    #[arg(long, value_name = "HOST[::GUEST]")]
    pub dir_ro: Vec<String>,
    /// Grant an environment variable: NAME passes this process's value, NAME=VALUE
    /// sets one.
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Grant the wall clock.
    #[arg(long)]
    pub wall_clock: bool,
    /// Grant the monotonic clock.
    #[arg(long)]
    pub monotonic_clock: bool,
    /// Grant both clocks.
    #[arg(long)]
    pub clocks: bool,
    /// Grant secure random.
    #[arg(long)]
    pub random: bool,
    /// Grant insecure random.
    #[arg(long)]
    pub insecure_random: bool,
    /// Grant outbound network access by pattern, e.g. api.example.com:443,
    /// 127.0.0.1:8000-8100, udp:10.0.0.0/8:53.
    #[arg(long, value_name = "PATTERN")]
    pub connect: Vec<String>,
    /// Grant binding and listening by pattern, e.g. tcp:127.0.0.1:8080.
    #[arg(long, value_name = "PATTERN")]
    pub listen: Vec<String>,
    /// Grant HTTP requests (wasi:http) by URL pattern, e.g.
    /// https://api.example.com/v1/, http://127.0.0.1:8000-8100.
    #[arg(long, value_name = "PATTERN")]
    pub http: Vec<String>,
    /// Where stdout goes: inherit (the terminal, the default), prefix, discard,
    /// none (refused) or file=PATH.
    #[arg(long, value_name = "MODE")]
    pub stdout: Option<String>,
    /// Where stderr goes, as for --stdout.
    #[arg(long, value_name = "MODE")]
    pub stderr: Option<String>,
    /// Grant a wall clock frozen at INSTANT (e.g. 2024-01-01T00:00:00Z) and a
    /// monotonic clock frozen at 0, instead of the real ones.
    #[arg(long, value_name = "INSTANT")]
    pub clock_at: Option<String>,
    /// Grant random (secure and insecure) as reproducible bytes from SEED.
    #[arg(long, value_name = "SEED")]
    pub random_seed: Option<u64>,
    /// Grant stdin.
    #[arg(long)]
    pub stdin: bool,
    /// Grant a `wasi:config/store` value.
    #[arg(long, value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Do not grant the terminal's stdout and stderr, which a single component
    /// otherwise gets (it is the user's own terminal).
    #[arg(long)]
    pub no_stdio: bool,
    /// Limit linear memory, e.g. 64MiB.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Limit fuel (about one unit per wasm instruction) for the run.
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<String>,
    /// Limit open handles (files, streams, sockets).
    #[arg(long, value_name = "COUNT")]
    pub handles: Option<String>,
    /// Limit bytes written to each of stdout and stderr, e.g. 1MiB.
    #[arg(long, value_name = "SIZE")]
    pub output: Option<String>,
    /// Limit table elements.
    #[arg(long, value_name = "COUNT")]
    pub tables: Option<String>,
    /// Limit core instances.
    #[arg(long, value_name = "COUNT")]
    pub instances: Option<String>,
    /// Limit HTTP requests in flight at once.
    #[arg(long, value_name = "COUNT")]
    pub http_requests: Option<String>,
    /// Limit the body of each HTTP request and of its response, e.g. 1MiB.
    #[arg(long, value_name = "SIZE")]
    pub http_body: Option<String>,
    /// Limit each HTTP request's time, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    pub http_timeout: Option<String>,
}

impl GrantFlags {
    pub fn any(&self) -> bool {
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
            || !self.http.is_empty()
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
            ("http-requests", self.http_requests.as_ref()),
            ("http-body", self.http_body.as_ref()),
            ("http-timeout", self.http_timeout.as_ref()),
        ]
        .into_iter()
    }

    /// The flags as grants: each flag is written as the manifest's grant it stands
    /// for and read by the same family parser, so the flags are no second grammar.
    pub fn grants(&self) -> Result<GrantRequest, String> {
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
        if !self.http.is_empty() {
            grants.push(("--http", "http", texts(&self.http)));
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
