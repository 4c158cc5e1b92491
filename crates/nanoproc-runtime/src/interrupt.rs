//! Stopping running guests from outside: `--timeout`, Ctrl-C, and per-call time
//! limits, all through wasmtime's epoch interruption.
//!
//! While a tree runs, a ticker thread advances the engine's epoch every [`TICK`].
//! Every store has a deadline of one tick and a callback that runs when it passes:
//! it stops the guest if the run was interrupted or the current call into this
//! nanoprocess is over its time limit, and otherwise extends the deadline by one
//! tick. Guests pay for this with a cheap counter check in loops and function
//! entries; a guest blocked in a host call (reading stdin, sleeping) is stopped when
//! it returns to wasm.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::Engine;

pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Why a run was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The run's `--timeout` passed.
    TimedOut,
    /// The user interrupted it (Ctrl-C).
    Interrupted,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::TimedOut => "the run's time limit passed",
            StopReason::Interrupted => "the run was interrupted",
        })
    }
}

impl std::error::Error for StopReason {}

/// A switch that stops every nanoprocess of a run. Cloneable and usable from a
/// signal handler's thread.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Arc<AtomicU8>);

impl Interrupt {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run (the first reason given wins).
    pub fn stop(&self, reason: StopReason) {
        let code = match reason {
            StopReason::TimedOut => 1,
            StopReason::Interrupted => 2,
        };
        let _ = self
            .0
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(StopReason::TimedOut),
            2 => Some(StopReason::Interrupted),
            _ => None,
        }
    }
}

/// Advances the engine's epoch while alive; stops on drop.
pub(crate) struct Ticker {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub fn start(engine: Engine, interrupt: Interrupt, timeout: Option<Duration>) -> Ticker {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::Builder::new()
            .name("nanoproc-epoch".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    if timeout.is_some_and(|t| started.elapsed() >= t) {
                        interrupt.stop(StopReason::TimedOut);
                    }
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Ticker {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
