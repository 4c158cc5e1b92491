//! A nanoprocess's restart budget: at most `max` restarts within a sliding window
//! (`restart = { max, within }`), shared by dependencies (`trampoline`) and by the
//! plugins a host calls (`plugin`).

use crate::audit::{Audit, Decision, Event};
use nanoproc_manifest::Restart;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When a nanoprocess was restarted, within its policy's window.
#[derive(Default)]
pub(crate) struct Restarts(VecDeque<Instant>);

impl Restarts {
    /// Takes one restart of `policy`'s budget now, or says why none is left.
    ///
    /// Every attempt counts, a failed one too: a nanoprocess that makes its own
    /// restart fail (a start function that traps or spins) must not be
    /// instantiated again on every call.
    pub fn take(&mut self, policy: Restart) -> Result<(), String> {
        let now = Instant::now();
        let window = Duration::from_millis(policy.within_ms);
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.0.pop_front();
        }
        if self.0.len() >= policy.max as usize {
            return Err(format!(
                "it failed and has used its {} restarts within {}",
                policy.max,
                nanoproc_caps::format_millis(policy.within_ms)
            ));
        }
        self.0.push_back(now);
        Ok(())
    }
}

/// Records a restart of `nanoprocess`, allowed or refused, and why.
pub(crate) fn record(audit: &Audit, nanoprocess: &Arc<str>, decision: Decision, reason: String) {
    audit.record(Event {
        nanoprocess: nanoprocess.clone(),
        capability: "restart",
        operation: "nanoproc:restart",
        target: None,
        decision,
        reason: Some(reason),
        needs: None,
        request: None,
    });
}
