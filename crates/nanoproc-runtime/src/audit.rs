//! The record of capability decisions.
//!
//! Every refusal the runtime makes goes through [`Audit::record`], together with the
//! nanoprocess that asked, so that a run can end with an account of what each
//! dependency tried and was refused. The record is shared by every store of a tree
//! and guarded by a mutex: decisions are rare next to calls, and a poisoned lock
//! (a panic while recording) must not lose what was already recorded.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Refused,
}

/// One capability decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The nanoprocess's path in the tree.
    pub nanoprocess: Arc<str>,
    /// The capability family, as granted in a manifest (`random`, `wall-clock`, `network`...).
    pub capability: &'static str,
    /// The WASI function, e.g. `wasi:random/random.get-random-bytes`.
    pub operation: &'static str,
    /// What the operation was aimed at, where it has a target (an address, a path).
    pub target: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.decision {
            Decision::Allowed => "allowed",
            Decision::Refused => "refused",
        };
        write!(
            f,
            "{}: {verb} {} ({}",
            self.nanoprocess, self.capability, self.operation
        )?;
        if let Some(t) = &self.target {
            write!(f, " {t}")?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        Ok(())
    }
}

/// The shared record of one run.
#[derive(Clone, Default)]
pub struct Audit {
    events: Arc<Mutex<Vec<Event>>>,
}

impl Audit {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, event: Event) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    pub fn events(&self) -> Vec<Event> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn refusals(&self) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|e| e.decision == Decision::Refused)
            .collect()
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("events", &self.events().len())
            .finish()
    }
}
