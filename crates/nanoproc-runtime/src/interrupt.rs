//! Stopping running guests from outside: `--timeout`, Ctrl-C, and per-call time
//! limits, all through wasmtime's epoch interruption.
//!
//! While a plan is in use, one ticker thread advances the engine's epoch every [`TICK`].
//! Every store has a deadline of one tick and a callback that runs when it passes:
//! it stops the guest if the run was interrupted or the current call into this
//! nanoprocess is over its time limit, and otherwise extends the deadline by one
//! tick. Guests pay for this with a cheap counter check in loops and function
//! entries; a guest blocked in a host call (reading stdin, sleeping) is stopped when
//! it returns to wasm.

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime::Engine;

pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Why a run was stopped from outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The run's `--timeout` passed.
    TimedOut,
    /// The user interrupted it (Ctrl-C).
    Interrupted,
    /// A nanoprocess wrote to a standard stream nobody reads any more (the reader
    /// of a pipe exited, as in `nanoproc run app.toml | head -1`).
    OutputClosed,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::TimedOut => "the run's time limit passed",
            StopReason::Interrupted => "the run was interrupted",
            StopReason::OutputClosed => "its output was closed by the reader",
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
            StopReason::OutputClosed => 3,
        };
        let _ = self
            .0
            .compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
    }

    pub fn reason(&self) -> Option<StopReason> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(StopReason::TimedOut),
            2 => Some(StopReason::Interrupted),
            3 => Some(StopReason::OutputClosed),
            _ => None,
        }
    }
}

/// Advances the engine's epoch while alive, and stops the runs whose time is up;
/// stops on drop. One ticker serves every run of a plan, so that starting a tree
/// does not cost a thread.
pub(crate) struct Ticker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct TickerShared {
    done: AtomicBool,
    /// Ticks since the ticker started: the clock of per-call time limits, read on
    /// every call between nanoprocesses (an atomic load, where reading the system
    /// clock would cost tens of nanoseconds).
    ticks: Arc<AtomicU64>,
    next_id: AtomicU64,
    /// Runs with a time limit: when each must be stopped.
    deadlines: Mutex<Vec<(u64, Instant, Interrupt)>>,
}

/// A run's time limit, watched by the ticker until this is dropped.
pub(crate) struct Deadline {
    shared: Arc<TickerShared>,
    id: u64,
}

impl Drop for Deadline {
    fn drop(&mut self) {
        let mut deadlines = self
            .shared
            .deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        deadlines.retain(|(id, _, _)| *id != self.id);
    }
}

impl Ticker {
    pub fn start(engine: Engine) -> Ticker {
        let shared = Arc::new(TickerShared::default());
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("nanoproc-epoch".into())
            .spawn(move || {
                let started = Instant::now();
                while !state.done.load(Ordering::Relaxed) {
                    // Woken early when the ticker is dropped (see `Drop`), so that a
                    // finished run does not wait out a tick.
                    std::thread::park_timeout(TICK);
                    let now = Instant::now();
                    {
                        let deadlines = state.deadlines.lock().unwrap_or_else(|e| e.into_inner());
                        for (_, at, interrupt) in deadlines.iter() {
                            if now >= *at {
                                interrupt.stop(StopReason::TimedOut);
                            }
                        }
                    }
                    // The tick count follows the real clock, not the number of
                    // wake-ups: each sleep overshoots a little, and per-call limits
                    // counted in wake-ups ran about 3% late.
                    let ticks = (now - started).as_nanos() / TICK.as_nanos();
                    state
                        .ticks
                        .fetch_max(u64::try_from(ticks).unwrap_or(u64::MAX), Ordering::Relaxed);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch thread");
        Ticker {
            shared,
            thread: Some(thread),
        }
    }

    /// The tick count, shared with every nanoprocess of the plan.
    pub fn ticks(&self) -> Arc<AtomicU64> {
        self.shared.ticks.clone()
    }

    /// Stops `interrupt` with [`StopReason::TimedOut`] once `timeout` has passed,
    /// unless the returned guard is dropped first.
    pub fn deadline(&self, timeout: Duration, interrupt: Interrupt) -> Deadline {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let at = Instant::now() + timeout;
        self.shared
            .deadlines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, at, interrupt));
        Deadline {
            shared: self.shared.clone(),
            id,
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.shared.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
