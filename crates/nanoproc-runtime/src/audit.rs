//! The record of capability decisions.
//!
//! Every decision the runtime makes about a capability (and every restart) goes
//! through [`Audit::record`], with the nanoprocess that asked. Three things are
//! kept:
//!
//! * with [`Audit::to_file`], one JSON object per line, written with one `write`
//!   as the decision is made: the file is valid JSON Lines up to the last decision
//!   however the run ends (a trap, a limit, Ctrl-C, a crash of nanoproc itself);
//! * counts per nanoprocess, capability and decision, for the end-of-run summary;
//! * the refusals and restarts themselves, up to [`KEPT`]; a hostile nanoprocess
//!   that is refused millions of times must not grow the host's memory with it.
//!
//! The record is shared by every store of a tree and guarded by mutexes: a poisoned
//! lock (a panic while recording) must not lose what was already recorded.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// How many refusals and restarts are kept in memory for the summary.
pub const KEPT: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Allowed,
    Refused,
    /// Allowed by the nanoprocess's grants, but the operation itself failed (the
    /// sandbox or the system refused it): what it aimed at was not reached.
    Failed,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Refused => "refused",
            Decision::Failed => "failed",
        }
    }
}

/// One capability decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The nanoprocess's path in the tree.
    pub nanoprocess: Arc<str>,
    /// The capability family, as granted in a manifest (`fs`, `random`, `network`...),
    /// or `restart`.
    pub capability: &'static str,
    /// The operation, e.g. `wasi:random/random.get-random-bytes`.
    pub operation: &'static str,
    /// What the operation was aimed at, where it has a target (a path, an address).
    pub target: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} ({}",
            self.nanoprocess,
            self.decision.as_str(),
            self.capability,
            self.operation
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

/// Uses and refusals of one capability by one nanoprocess.
pub type Counts = BTreeMap<(Arc<str>, &'static str), (u64, u64)>;

#[derive(Default)]
struct Inner {
    log: Option<Mutex<File>>,
    count_allowed: bool,
    kept: Mutex<(Vec<Event>, u64)>,
    counts: Mutex<Counts>,
}

/// The shared record of one run.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Audit {
    /// A record kept in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// A record that writes every decision to `log` (if given) as JSON Lines, and
    /// counts uses as well as refusals if `count_allowed`.
    pub fn with(log: Option<&Path>, count_allowed: bool) -> std::io::Result<Self> {
        let log = match log {
            Some(path) => {
                // Appended to only, so that every line lands at the end whatever
                // else has the file open; emptied once, here.
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                file.set_len(0)?;
                Some(Mutex::new(file))
            }
            None => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                log,
                count_allowed,
                ..Default::default()
            }),
        })
    }

    /// Whether decisions that are allowed are worth recording at all: only when
    /// something will read them. Refusals are always recorded.
    pub fn wants_allowed(&self) -> bool {
        self.inner.log.is_some() || self.inner.count_allowed
    }

    pub fn record(&self, event: Event) {
        if let Some(log) = &self.inner.log {
            let line = json_line(&event);
            // One write per line: a reader never sees half a line, whatever
            // happens to this process afterwards.
            let _ = lock(log).write_all(line.as_bytes());
        }
        {
            let mut counts = lock(&self.inner.counts);
            let entry = counts
                .entry((event.nanoprocess.clone(), event.capability))
                .or_default();
            match event.decision {
                // A failed use was still a use the grants allowed.
                Decision::Allowed | Decision::Failed => entry.0 += 1,
                Decision::Refused => entry.1 += 1,
            }
        }
        if event.decision == Decision::Refused || event.capability == "restart" {
            let mut kept = lock(&self.inner.kept);
            if kept.0.len() < KEPT {
                kept.0.push(event);
            } else {
                kept.1 += 1;
            }
        }
    }

    /// The refusals and restarts kept, in order, and how many more were not kept.
    pub fn kept(&self) -> (Vec<Event>, u64) {
        lock(&self.inner.kept).clone()
    }

    pub fn refusals(&self) -> Vec<Event> {
        self.kept()
            .0
            .into_iter()
            .filter(|e| e.decision == Decision::Refused && e.capability != "restart")
            .collect()
    }

    /// (allowed, refused) per nanoprocess and capability.
    pub fn counts(&self) -> Counts {
        lock(&self.inner.counts).clone()
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("kept", &lock(&self.inner.kept).0.len())
            .finish()
    }
}

fn json_line(e: &Event) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"time\":");
    push_json_str(&mut out, &rfc3339_now());
    out.push_str(",\"nanoprocess\":");
    push_json_str(&mut out, &e.nanoprocess);
    out.push_str(",\"family\":");
    push_json_str(&mut out, e.capability);
    out.push_str(",\"operation\":");
    push_json_str(&mut out, e.operation);
    out.push_str(",\"target\":");
    match &e.target {
        Some(t) => push_json_str(&mut out, t),
        None => out.push_str("null"),
    }
    out.push_str(",\"decision\":");
    push_json_str(&mut out, e.decision.as_str());
    if let Some(r) = &e.reason {
        out.push_str(",\"reason\":");
        push_json_str(&mut out, r);
    }
    out.push_str("}\n");
    out
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The current UTC time as `2026-11-24T17:40:01.123Z`.
fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        since.subsec_millis()
    )
}

impl Audit {
    /// Waits for the line being written to the log, if any, and lets no other line
    /// be written: for a process about to exit while some guest is still running
    /// (blocked in a host call that cannot be cancelled). The log then ends with a
    /// whole line.
    pub fn seal(&self) {
        if let Some(log) = &self.inner.log {
            std::mem::forget(lock(log));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_escapes() {
        let e = Event {
            nanoprocess: "app/x".into(),
            capability: "fs",
            operation: "wasi:filesystem/types.open-at",
            target: Some("/a\"b\n".into()),
            decision: Decision::Refused,
            reason: Some("not granted".into()),
        };
        let line = json_line(&e);
        assert!(line.ends_with("}\n"));
        assert!(line.contains(r#""target":"/a\"b\n""#), "{line}");
        assert!(line.contains(r#""decision":"refused""#));
        assert!(line.starts_with("{\"time\":\"20"), "{line}");
    }

    #[test]
    fn memory_kept_is_bounded() {
        let audit = Audit::new();
        for _ in 0..KEPT + 5 {
            audit.record(Event {
                nanoprocess: "a".into(),
                capability: "random",
                operation: "op",
                target: None,
                decision: Decision::Refused,
                reason: None,
            });
        }
        let (kept, dropped) = audit.kept();
        assert_eq!((kept.len(), dropped), (KEPT, 5));
        assert_eq!(
            audit.counts()[&("a".into(), "random")],
            (0, KEPT as u64 + 5)
        );
    }
}
