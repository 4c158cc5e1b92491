//! `nanoproc run`: a tree or a single component, stopped by `--timeout` or Ctrl-C,
//! and the account of what it was refused.

use crate::flags::RunArgs;
use crate::report::{printable, report, report_stats};
use crate::{not_checked, print_notices, status};
use nanoproc_runtime::caps::parse_millis;
use nanoproc_runtime::{
    Audit, CheckError, Interrupt, Plan, RunError, RunOptions, Runtime, StopReason,
};
use std::path::Path;
use std::process::ExitCode;

/// How long a stopped run (`--timeout`, Ctrl-C) may take to end before the watchdog
/// ends the process.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);
/// The same, for a plan that cannot interrupt wasm (no time limit anywhere, no
/// `--timeout`): only guests waiting in host calls can end by themselves, which
/// they do within a tick.
const UNINTERRUPTIBLE_GRACE: std::time::Duration = std::time::Duration::from_millis(250);

pub fn run(runtime: &Runtime, args: &RunArgs, started: std::time::Instant) -> ExitCode {
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
    let mut runtime = runtime.clone().with_interruption(timeout.is_some());
    if !args.http_ca.is_empty() {
        runtime = match runtime.with_http_ca(&args.http_ca) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("nanoproc: --http-ca: {}", printable(&e));
                return ExitCode::from(2);
            }
        };
    }
    let runtime = &runtime;
    if let Some(flag) = args.misplaced_flag() {
        eprintln!(
            "nanoproc: `{flag}` comes after the target, where it would be the guest's argument; nanoproc's own flags go before the target (nanoproc run {flag} ... {}); to pass it to the guest, put `--` after the target",
            args.target().display()
        );
        return ExitCode::from(2);
    }
    let plan: Result<Plan, CheckError> = match crate::check::plan_of(
        runtime,
        args.target(),
        &args.grants,
        args.guest_args(),
        args.locked,
    ) {
        Ok(checked) => checked,
        Err(usage) => {
            eprintln!("nanoproc: {usage}");
            return ExitCode::from(2);
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
    let options = RunOptions {
        audit,
        interrupt,
        timeout,
        ..Default::default()
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
        &plan,
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
    report(&options.audit, args.audit_summary, Some(&plan));
    if let Err(RunError::Trap { .. }) = &outcome {
        crate::report::ungranted_imports(&options.audit, &plan, runtime.max_component_size());
    }
    if args.stats {
        report_stats();
    }
    match outcome {
        Ok(exit) => {
            // The guest chose the status: said, so that it is never taken for one
            // of nanoproc's own (124, 134, 137...).
            // A preview 1 root's `proc_exit(N)` reaches nanoproc through wasmtime's
            // component adapter, which passes any N but 0 on as 1: said, so that
            // the 1 is not taken for the status the program chose.
            let preview1 = plan.nodes().first().is_some_and(|n| n.was_core_module());
            match (exit.code, exit.by_exit) {
                (0, _) => {}
                (code, true) if preview1 => eprintln!(
                    "nanoproc: the run ended with status {}: the WASI preview 1 program called `proc_exit` with a status other than 0, which wasmtime's component adapter (through which nanoproc runs preview 1 modules) passes on as 1, whatever the status was",
                    code.clamp(0, 255)
                ),
                (code, true) => eprintln!(
                    "nanoproc: the run ended with status {}: the application called `exit` with it (its own status, not nanoproc's)",
                    code.clamp(0, 255)
                ),
                (code, false) => eprintln!(
                    "nanoproc: the run ended with status {code}: the root's `wasi:cli/run` returned an error"
                ),
            }
            ExitCode::from(exit.code.clamp(0, 255) as u8)
        }
        Err(e) => {
            // A closed output ends the run quietly, as SIGPIPE would.
            match &e {
                RunError::Stopped(StopReason::OutputClosed) => {}
                RunError::Exited(exit) if exit.code == 0 => {}
                // An exit is the application's own ending, with its own status,
                // whatever that status is: said as such.
                RunError::Exited(exit) => eprintln!(
                    "nanoproc: the run ended with status {}: the application called `exit` with it (its own status, not nanoproc's)",
                    exit.code.clamp(0, 255)
                ),
                e => eprintln!("nanoproc: {}", printable(&e.to_string())),
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
        plan: &Plan,
        interrupt: &Interrupt,
        audit: &Audit,
        audit_summary: bool,
        grace: std::time::Duration,
    ) -> Watchdog {
        use std::sync::atomic::Ordering;
        let state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(RUNNING));
        let (shared, interrupt, audit) = (state.clone(), interrupt.clone(), audit.clone());
        let plan = plan.clone();
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
                report(&audit, audit_summary, Some(&plan));
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
