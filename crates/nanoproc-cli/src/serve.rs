//! `nanoproc serve`: a tree whose root is an HTTP handler, served on an address,
//! one fresh tree per request (see the runtime's `serve` module), until Ctrl-C.

use crate::flags::GrantFlags;
use crate::report::{printable, report};
use crate::{Reading, not_checked, print_notices, status};
use clap::Args;
use nanoproc_runtime::caps::parse_millis;
use nanoproc_runtime::{
    Audit, CheckError, Interrupt, Plan, Runtime, ServeError, ServeOptions, StopReason,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// A manifest (.toml) whose root exports wasi:http/incoming-handler (0.2) or
    /// wasi:http/handler (0.3), or such a component (.wasm) served on its own,
    /// holding what the grant flags give it.
    pub target: PathBuf,
    #[command(flatten)]
    pub reading: Reading,
    /// The address to listen on; port 0 picks a free port (the address is printed
    /// once listening).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// The most requests handled at once, each in a tree of its own; more wait
    /// for one to finish (up to --queue-timeout, then 503).
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_concurrent: usize,
    /// The longest a request's tree may run, e.g. 30s (a 500 past it), on top of
    /// the manifest's limits, which apply to each request; `none` for only those.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub request_timeout: String,
    /// How long a request waits for one of the --max-concurrent slots before it
    /// is answered 503.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub queue_timeout: String,
    /// On Ctrl-C, how long requests in flight may take to finish before they are
    /// stopped (a second Ctrl-C exits at once).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub shutdown_timeout: String,
    /// Write every capability decision to FILE as JSON Lines, each with its
    /// request's id ("request"), as it is made.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// After the shutdown, list each nanoprocess's uses of each capability, over
    /// every request, not only the refusals.
    #[arg(long)]
    pub audit_summary: bool,
    /// Trust the certificates in this PEM file as roots for outgoing HTTPS
    /// requests, besides the system's (repeatable).
    #[arg(long, value_name = "FILE")]
    pub http_ca: Vec<PathBuf>,
    /// Refuse a manifest's tree that differs in any way from its nanoproc.lock,
    /// or that has none (for CI).
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub grants: GrantFlags,
}

/// A duration flag: `none` (where allowed) or a duration such as `30s`.
fn duration(flag: &str, text: &str, none: bool) -> Result<Option<Duration>, String> {
    if none && text == "none" {
        return Ok(None);
    }
    parse_millis(text)
        .map(|ms| Some(Duration::from_millis(ms)))
        .map_err(|e| format!("{flag}: {e}"))
}

pub fn serve(runtime: &Runtime, args: &ServeArgs) -> ExitCode {
    // Installed first, so that a Ctrl-C while the tree is being checked is not
    // lost. The first begins the graceful shutdown; a second exits at once, after
    // the audit line being written.
    let interrupt = Interrupt::new();
    let on_signal = interrupt.clone();
    let audit_for_signal = Arc::new(std::sync::OnceLock::<Audit>::new());
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
    let timeouts = (|| {
        Ok::<_, String>((
            duration("--request-timeout", &args.request_timeout, true)?,
            duration("--queue-timeout", &args.queue_timeout, false)?.unwrap_or_default(),
            duration("--shutdown-timeout", &args.shutdown_timeout, false)?.unwrap_or_default(),
        ))
    })();
    let (request_timeout, queue_timeout, shutdown_timeout) = match timeouts {
        Ok(t) => t,
        Err(e) => {
            eprintln!("nanoproc: {e}");
            return ExitCode::from(2);
        }
    };
    if args.max_concurrent == 0 {
        eprintln!("nanoproc: --max-concurrent: at least 1");
        return ExitCode::from(2);
    }
    // A request's time limit and the end of a shutdown must stop a guest that
    // computes: every served plan can interrupt wasm.
    // The engine pools slots for as many trees as may be alive at once: each
    // request's instantiation and teardown reuse them.
    let mut runtime = runtime
        .clone()
        .with_interruption(true)
        .with_pool_for_trees(args.max_concurrent);
    if !args.http_ca.is_empty() {
        runtime = match runtime.with_http_ca(&args.http_ca) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("nanoproc: --http-ca: {}", printable(&e));
                return ExitCode::from(2);
            }
        };
    }
    let plan = match plan_of(&runtime, &args.target, &args.grants, args.locked) {
        Ok(Ok(plan)) => plan,
        Ok(Err(e)) => return not_checked(&e),
        Err(usage) => {
            eprintln!("nanoproc: {usage}");
            return ExitCode::from(2);
        }
    };
    print_notices(&plan);
    if let Err(e) = plan.check_http_handler() {
        eprintln!("nanoproc: {}", printable(&e.to_string()));
        eprintln!(
            "nanoproc: refused before serving: `nanoproc run` runs a command (wasi:cli/run); `serve` needs an HTTP handler"
        );
        return ExitCode::from(status::REFUSED_AT_CHECK);
    }
    // The record must be beyond every guest's reach (see `run`).
    if let Some(log) = args.audit.as_deref()
        && let Some(grant) = plan.grant_reaching(log)
    {
        eprintln!(
            "{}",
            printable(&format!(
                "nanoproc: --audit {}: it lies inside a granted directory ({grant}), where a guest could read, forge or delete it; write it elsewhere",
                log.display()
            ))
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
    if interrupt.reason().is_some() {
        return ExitCode::from(status::INTERRUPTED);
    }
    let options = ServeOptions {
        audit: audit.clone(),
        interrupt,
        max_concurrent: args.max_concurrent,
        queue_timeout,
        request_timeout,
        shutdown_timeout,
        // What failed, for the operator: the client only gets a 500 and the id.
        on_failure: Some(Arc::new(|failure| {
            eprintln!("nanoproc: {}", printable(&failure.to_string()));
        })),
        ..Default::default()
    };
    let server = match plan.serve(args.addr.as_str(), options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nanoproc: {}", printable(&e.to_string()));
            return ExitCode::from(match e {
                ServeError::NotAHandler { .. } => status::REFUSED_AT_CHECK,
                ServeError::Options(_) => 2,
                ServeError::Bind { .. } | ServeError::Setup(_) => status::CANNOT_START,
            });
        }
    };
    // Tools (and the tests) read the address from this line: with port 0, the
    // one the system chose.
    eprintln!("nanoproc: listening on http://{}", server.local_addr());
    let summary = match server.run() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nanoproc: {}", printable(&e.to_string()));
            return ExitCode::from(status::CANNOT_START);
        }
    };
    // A request stopped in a host call that could not be cancelled may still be
    // recording: the log ends with a whole line.
    if summary.stopped_at_shutdown > 0 {
        audit.seal();
    }
    report(&audit, args.audit_summary, Some(&plan));
    eprintln!(
        "nanoproc: shut down after {} request{} ({} failed, {} answered 503{})",
        summary.requests,
        if summary.requests == 1 { "" } else { "s" },
        summary.failed,
        summary.rejected,
        if summary.stopped_at_shutdown > 0 {
            format!(
                ", {} stopped when the shutdown's time ran out",
                summary.stopped_at_shutdown
            )
        } else {
            String::new()
        }
    );
    ExitCode::SUCCESS
}

/// The tree to serve: a manifest's, held to its lock as `run` holds one, or a
/// single component with the grant flags. `Err` is a usage error (status 2).
fn plan_of(
    runtime: &Runtime,
    target: &Path,
    flags: &GrantFlags,
    locked: bool,
) -> Result<Result<Plan, CheckError>, String> {
    if crate::check::is_manifest(target) {
        if flags.any() {
            return Err(format!(
                "grant flags apply to a single component; a manifest's grants are in the manifest ({})",
                target.display()
            ));
        }
        let checked = runtime.check_plugin_manifest(target).and_then(|plan| {
            let warnings =
                crate::lock::enforce(&plan, target, locked, runtime.max_component_size())?;
            for w in warnings {
                eprintln!("nanoproc: warning: {}", printable(&w));
            }
            Ok(plan)
        });
        Ok(checked)
    } else if locked {
        Err("--locked applies to a manifest, whose lock is beside it".into())
    } else {
        let grants = flags.grants()?;
        Ok(runtime.check_plugin(target, grants))
    }
}
