//! The record of capability decisions.
//!
//! Every decision the runtime makes about a capability (and every restart) goes
//! through [`Audit::record`], with the nanoprocess that asked. Three things are
//! kept:
//!
//! * with [`Audit::with`], one JSON object per line, written with one `write`
//!   as the decision is made: the file is valid JSON Lines up to the last decision
//!   however the run ends (a trap, a limit, Ctrl-C, a crash of nanoproc itself);
//! * counts per nanoprocess, capability and decision, for the end-of-run summary;
//! * the refusals and restarts themselves, up to [`KEPT`] of them and [`KEPT_BYTES`]
//!   in all; a hostile nanoprocess that is refused millions of times must not grow
//!   the host's memory with it. What is not kept is counted.
//!
//! A guest chooses the text of a target (a path, a host name) and, through its
//! failures, of a reason (a restart's carries the failure, stderr tail included),
//! and a single refused lookup of a 1 MB name would otherwise cost a megabyte in
//! the file and another in memory. So both are cut to [`FIELD_MAX`] bytes before
//! anything is recorded, with a marker that says how much was cut.
//!
//! The record is shared by every store of a tree and guarded by mutexes: a poisoned
//! lock (a panic while recording) must not lose what was already recorded.
//!
//! Each decision also goes, as it is made and after the cut, to the host's
//! callback if it gave one ([`Audit::with_callback`]), and to `tracing` as an
//! event of target [`TRACING_TARGET`] (refusals at `WARN`, restarts at `INFO`,
//! failures at `DEBUG`, uses at `TRACE`): with no subscriber interested, that
//! costs a check of a static.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// How many refusals and restarts are kept in memory for the summary.
pub const KEPT: usize = 10_000;

/// How many bytes the refusals and restarts kept in memory may take in all, each
/// counted with its target and reason (see [`footprint`]). With every text at its
/// longest, about 3,500 are kept.
pub const KEPT_BYTES: usize = 4 << 20;

/// The longest target or reason recorded, in bytes (before the marker). A longer
/// text keeps at most its first and last `FIELD_MAX / 2` bytes (each cut on a
/// character boundary) around a marker such as `...[1047552 bytes cut]...`: the
/// start of a path or name says what it was, and the end of a failure is where its
/// panic message is.
pub const FIELD_MAX: usize = 1024;

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
    /// What the operation needed beyond the capability, where its family records
    /// it: the rights of a filesystem operation (`read+list`); none for one on a
    /// descriptor lent for a call, which the loan allowed. `nanoproc learn`
    /// proposes grants from it.
    pub needs: Option<String>,
    /// The request the decision was made for, when the tree serves HTTP requests
    /// (`nanoproc serve`, [`crate::Server`]): each request runs in a tree of its
    /// own, recorded through [`Audit::for_request`]. `None` otherwise.
    pub request: Option<Arc<str>>,
}

/// An event in words, for a host's log: what a guest chose (its target, a
/// failure's text in a reason) is shown with control and invisible characters
/// escaped, so that the line cannot move a terminal's cursor, retitle it or hide
/// part of itself.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(request) = &self.request {
            write!(f, "[request {}] ", Escaped(request))?;
        }
        write!(
            f,
            "{}: {} {} ({}",
            Escaped(&self.nanoprocess),
            self.decision.as_str(),
            self.capability,
            self.operation
        )?;
        if let Some(t) = &self.target {
            write!(f, " {}", Escaped(t))?;
        }
        f.write_str(")")?;
        if let Some(r) = &self.reason {
            write!(f, ": {}", Escaped(r))?;
        }
        Ok(())
    }
}

/// Text shown with its control and invisible characters as `\u{..}` escapes.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || nanoproc_caps::is_invisible(c) {
                write!(f, "\\u{{{:x}}}", c as u32)?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// One nanoprocess's hand on the audit record: every capability family records its
/// decisions through [`Recorder::decide`], so that every line of the record has the
/// same shape and the same bounds, whoever wrote it.
#[derive(Clone)]
pub(crate) struct Recorder {
    pub path: Arc<str>,
    pub audit: Audit,
}

impl Recorder {
    pub fn new(path: Arc<str>, audit: Audit) -> Self {
        Self { path, audit }
    }

    /// Whether an allowed decision would be read by anyone (see
    /// [`Audit::wants_allowed`]): a family asks before it spends time on a target.
    pub fn wants_allowed(&self) -> bool {
        self.audit.wants_allowed()
    }

    /// Records a decision of family `capability` (its grant key) on `operation`
    /// (the WASI function), aimed at `target`. An allowed one is recorded only when
    /// someone reads them, and its target is then made.
    pub fn decide(
        &self,
        capability: &'static str,
        operation: &'static str,
        target: impl FnOnce() -> Option<String>,
        decision: Decision,
        reason: Option<String>,
    ) {
        self.decide_needing(capability, operation, target, None, decision, reason);
    }

    /// [`Recorder::decide`], saying what the operation needed (see [`Event::needs`]).
    pub fn decide_needing(
        &self,
        capability: &'static str,
        operation: &'static str,
        target: impl FnOnce() -> Option<String>,
        needs: Option<String>,
        decision: Decision,
        reason: Option<String>,
    ) {
        if decision == Decision::Allowed && !self.wants_allowed() {
            return;
        }
        self.audit.record(Event {
            nanoprocess: self.path.clone(),
            capability,
            operation,
            target: target(),
            decision,
            reason,
            needs,
            request: None,
        });
    }

    /// For an operation that is held or not and has no error case: lets it through
    /// if `held`, else records the refusal and returns the error the call traps with
    /// (a silent zero or a fake value would let a dependency believe it had what it
    /// was denied).
    pub fn check(
        &self,
        held: bool,
        capability: &'static str,
        operation: &'static str,
    ) -> wasmtime::Result<()> {
        if held {
            self.decide(capability, operation, || None, Decision::Allowed, None);
            return Ok(());
        }
        self.decide(
            capability,
            operation,
            || None,
            Decision::Refused,
            Some("not granted".into()),
        );
        Err(wasmtime::Error::new(crate::error::CapabilityRefused {
            nanoprocess: self.path.clone(),
            capability,
            operation,
        }))
    }
}

/// Uses and refusals of one capability by one nanoprocess.
pub type Counts = BTreeMap<(Arc<str>, &'static str), (u64, u64)>;

/// The refusals and restarts kept in memory, and how many of each were not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// In the order they were recorded.
    pub events: Vec<Event>,
    /// Refusals recorded after the record was full ([`KEPT`], [`KEPT_BYTES`]).
    pub refusals_not_kept: u64,
    /// Restarts (made or refused) recorded after the record was full.
    pub restarts_not_kept: u64,
}

#[derive(Default)]
struct KeptState {
    kept: Kept,
    /// The sum of the kept events' [`footprint`]s.
    bytes: usize,
}

/// How many distinct uses a learning record keeps ([`Audit::learning`]), and how
/// many bytes they may take in all: a guest that touches a million distinct paths
/// must not grow the host's memory with them.
pub const USES_KEPT: usize = 100_000;
pub const USES_KEPT_BYTES: usize = 16 << 20;

/// The distinct uses of a learning run, in a stable order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uses {
    pub events: Vec<Event>,
    /// Distinct uses recorded after the record was full ([`USES_KEPT`],
    /// [`USES_KEPT_BYTES`]): a proposal made without them would be incomplete.
    pub not_kept: u64,
}

/// One distinct use: who, which capability and operation, aimed at what, needing
/// what, and what was decided.
type UseKey = (
    Arc<str>,
    &'static str,
    &'static str,
    Option<String>,
    Option<String>,
    Decision,
);

#[derive(Default)]
struct UsesState {
    uses: std::collections::BTreeSet<UseKey>,
    bytes: usize,
    not_kept: u64,
}

#[derive(Default)]
struct Inner {
    log: Option<Mutex<File>>,
    count_allowed: bool,
    /// Every distinct use, for `nanoproc learn`.
    uses: Option<Mutex<UsesState>>,
    kept: Mutex<KeptState>,
    counts: Mutex<Counts>,
}

/// The `tracing` target of the decisions (see the module documentation).
pub const TRACING_TARGET: &str = "nanoproc::audit";

/// A host function told of each decision (see [`Audit::with_callback`]).
type Callback = Arc<dyn Fn(&Event) + Send + Sync>;

/// The shared record of one run.
#[derive(Clone, Default)]
pub struct Audit {
    inner: Arc<Inner>,
    /// Told of every decision recorded through this handle and its clones.
    callback: Option<Callback>,
    /// The request every decision recorded through this handle is for (see
    /// [`Audit::for_request`]).
    request: Option<Arc<str>>,
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
            callback: None,
            request: None,
        })
    }

    /// The same record, also calling `callback` with every decision as it is
    /// made: synchronously, on the thread of the nanoprocess that asked (which
    /// waits, so it should be quick), with the event's target and reason already
    /// cut to [`FIELD_MAX`]; allowed and failed uses as well as refusals and
    /// restarts (so allowed uses are then recorded and counted: see
    /// [`Audit::wants_allowed`]). The record itself (the file, the counts, what is
    /// kept) is shared with the clones made before; the callback is called for
    /// decisions recorded through this value and its clones made after, which is
    /// what a run given it does. It replaces any callback given before.
    pub fn with_callback(mut self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.callback = Some(Arc::new(callback));
        self
    }

    /// A handle on the same record whose decisions are all for request `id`: each
    /// event recorded through it (and its clones) carries the id, in
    /// [`Event::request`], in its JSON line (`"request"`) and in its words. The
    /// file, the counts, what is kept and the callback are the record's, shared
    /// with every other handle. [`crate::Server`] gives each request's tree one,
    /// so that every line of a served request can be told apart from another's.
    /// A handle for no request records as before.
    pub fn for_request(&self, id: impl Into<Arc<str>>) -> Self {
        Self {
            request: Some(id.into()),
            ..self.clone()
        }
    }

    /// The request this handle records for, if any (see [`Audit::for_request`]).
    pub fn request(&self) -> Option<&Arc<str>> {
        self.request.as_ref()
    }

    /// A record that keeps every distinct use (allowed, failed or refused) as
    /// well, bounded, for [`crate::Plan::propose`]; and writes them to `log` if given.
    pub fn learning(log: Option<&Path>) -> std::io::Result<Self> {
        let mut audit = Self::with(log, true)?;
        let inner = Arc::get_mut(&mut audit.inner).expect("a new record is not shared");
        inner.uses = Some(Mutex::default());
        Ok(audit)
    }

    /// The distinct uses kept by a learning record (none for another record).
    pub fn uses(&self) -> Uses {
        let Some(uses) = &self.inner.uses else {
            return Uses::default();
        };
        let state = lock(uses);
        Uses {
            events: state
                .uses
                .iter()
                .map(
                    |(nanoprocess, capability, operation, target, needs, decision)| Event {
                        nanoprocess: nanoprocess.clone(),
                        capability,
                        operation,
                        target: target.clone(),
                        decision: *decision,
                        reason: None,
                        needs: needs.clone(),
                        request: None,
                    },
                )
                .collect(),
            not_kept: state.not_kept,
        }
    }

    /// Whether decisions that are allowed are worth recording at all: only when
    /// something will read them (the log, the counts of uses, a callback, or a
    /// `tracing` subscriber interested in [`TRACING_TARGET`] at `TRACE`). Refusals
    /// are always recorded.
    pub fn wants_allowed(&self) -> bool {
        self.inner.log.is_some()
            || self.inner.count_allowed
            || self.callback.is_some()
            || tracing::enabled!(target: TRACING_TARGET, tracing::Level::TRACE)
    }

    pub fn record(&self, mut event: Event) {
        // Cut before anything else, so that neither the file nor the memory ever
        // holds more of a guest's text than this.
        event.target = event.target.map(clip);
        event.reason = event.reason.map(clip);
        if event.request.is_none() {
            event.request.clone_from(&self.request);
        }
        if let Some(log) = &self.inner.log {
            let line = json_line(&event);
            // One write per line: a reader never sees half a line, whatever
            // happens to this process afterwards.
            let _ = lock(log).write_all(line.as_bytes());
        }
        // No lock is held: a callback that panics poisons nothing of the record.
        if let Some(callback) = &self.callback {
            callback(&event);
        }
        trace(&event);
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
        if let Some(uses) = &self.inner.uses
            && event.capability != "restart"
        {
            let mut state = lock(uses);
            let key: UseKey = (
                event.nanoprocess.clone(),
                event.capability,
                event.operation,
                event.target.clone(),
                event.needs.clone(),
                event.decision,
            );
            let size = std::mem::size_of::<UseKey>()
                + key.3.as_ref().map_or(0, String::len)
                + key.4.as_ref().map_or(0, String::len);
            if !state.uses.contains(&key) {
                if state.uses.len() < USES_KEPT && state.bytes + size <= USES_KEPT_BYTES {
                    state.bytes += size;
                    state.uses.insert(key);
                } else {
                    state.not_kept += 1;
                }
            }
        }
        let is_restart = event.capability == "restart";
        if event.decision == Decision::Refused || is_restart {
            let mut state = lock(&self.inner.kept);
            let size = footprint(&event);
            if state.kept.events.len() < KEPT && state.bytes + size <= KEPT_BYTES {
                state.bytes += size;
                state.kept.events.push(event);
            } else if is_restart {
                state.kept.restarts_not_kept += 1;
            } else {
                state.kept.refusals_not_kept += 1;
            }
        }
    }

    /// The refusals and restarts kept, in order, and how many more were not kept.
    pub fn kept(&self) -> Kept {
        lock(&self.inner.kept).kept.clone()
    }

    pub fn refusals(&self) -> Vec<Event> {
        self.kept()
            .events
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
            .field("kept", &lock(&self.inner.kept).kept.events.len())
            .field("callback", &self.callback.is_some())
            .finish()
    }
}

/// Emits `e` as a `tracing` event of target [`TRACING_TARGET`], at a level by its
/// decision, if a subscriber wants it. The target and the reason (a guest's text,
/// cut) are recorded with `Debug`, which escapes control characters for the log.
fn trace(e: &Event) {
    macro_rules! emit {
        ($level:expr, $message:literal) => {
            if tracing::enabled!(target: TRACING_TARGET, $level) {
                tracing::event!(
                    target: TRACING_TARGET,
                    $level,
                    nanoprocess = &*e.nanoprocess,
                    capability = e.capability,
                    operation = e.operation,
                    target = e.target.as_deref().map(tracing::field::debug),
                    decision = e.decision.as_str(),
                    reason = e.reason.as_deref().map(tracing::field::debug),
                    needs = e.needs.as_deref(),
                    request = e.request.as_deref().map(tracing::field::debug),
                    $message
                )
            }
        };
    }
    match e.decision {
        Decision::Refused => emit!(tracing::Level::WARN, "refused"),
        _ if e.capability == "restart" => emit!(tracing::Level::INFO, "restart"),
        Decision::Failed => emit!(tracing::Level::DEBUG, "failed"),
        Decision::Allowed => emit!(tracing::Level::TRACE, "allowed"),
    }
}

/// What an event kept in memory costs: the event itself and the text it owns (the
/// nanoprocess's path is shared by all its events).
fn footprint(e: &Event) -> usize {
    std::mem::size_of::<Event>()
        + e.target.as_ref().map_or(0, String::capacity)
        + e.reason.as_ref().map_or(0, String::capacity)
}

/// `text` cut to at most [`FIELD_MAX`] bytes and the marker (see there). A new
/// string, so that the guest's megabyte is freed rather than kept as capacity.
fn clip(text: String) -> String {
    if text.len() <= FIELD_MAX {
        return text;
    }
    let mut head = FIELD_MAX / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - FIELD_MAX / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    let marker = format!("...[{} bytes cut]...", tail - head);
    // Exactly as long as it needs to be: the record counts capacity, not length.
    let mut cut = String::with_capacity(head + marker.len() + (text.len() - tail));
    cut.push_str(&text[..head]);
    cut.push_str(&marker);
    cut.push_str(&text[tail..]);
    cut
}

fn json_line(e: &Event) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"time\":");
    push_json_str(&mut out, &rfc3339_now());
    if let Some(request) = &e.request {
        out.push_str(",\"request\":");
        push_json_str(&mut out, request);
    }
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
    if let Some(n) = &e.needs {
        out.push_str(",\"needs\":");
        push_json_str(&mut out, n);
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
    let (year, month, day) = nanoproc_caps::civil_from_days(days as i64);
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
            needs: None,
            request: None,
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
                needs: None,
                request: None,
            });
        }
        let kept = audit.kept();
        assert_eq!((kept.events.len(), kept.refusals_not_kept), (KEPT, 5));
        assert_eq!(
            audit.counts()[&("a".into(), "random")],
            (0, KEPT as u64 + 5)
        );
    }

    fn refusal(target: String) -> Event {
        Event {
            nanoprocess: "app/x".into(),
            capability: "network",
            operation: "wasi:sockets/ip-name-lookup.resolve-addresses",
            target: Some(target),
            decision: Decision::Refused,
            reason: Some("network is not granted".into()),
            needs: None,
            request: None,
        }
    }

    #[test]
    fn a_long_text_is_cut_in_the_middle_with_a_count() {
        let text = format!(
            "{}{}{}",
            "h".repeat(600),
            "m".repeat(1_000_000),
            "t".repeat(600)
        );
        let cut = clip(text.clone());
        let cut_bytes = text.len() - FIELD_MAX;
        assert_eq!(
            cut,
            format!(
                "{}...[{cut_bytes} bytes cut]...{}",
                "h".repeat(512),
                "t".repeat(512)
            )
        );
        // What fits is left alone, capacity and all.
        let short = "x".repeat(FIELD_MAX);
        assert_eq!(clip(short.clone()), short);
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // Two- and three-byte characters at every offset around both cut points.
        for pad in 0..3 {
            for c in ['é', '€'] {
                let text = format!("{}{}", "a".repeat(pad), c.to_string().repeat(2000));
                let cut = clip(text.clone());
                let (head, rest) = cut.split_once("...[").unwrap();
                let (count, tail) = rest.split_once(" bytes cut]...").unwrap();
                assert!(text.starts_with(head) && text.ends_with(tail), "{cut}");
                assert!(head.len() <= FIELD_MAX / 2 && tail.len() <= FIELD_MAX / 2);
                let count: usize = count.parse().unwrap();
                assert_eq!(head.len() + count + tail.len(), text.len());
            }
        }
    }

    #[test]
    fn a_huge_target_is_cut_in_the_line_and_in_memory() {
        let audit = Audit::new();
        audit.record(refusal("a".repeat(1 << 20)));
        let kept = audit.kept();
        let target = kept.events[0].target.as_ref().unwrap();
        assert!(target.contains(&format!("[{} bytes cut]", (1 << 20) - FIELD_MAX)));
        assert_eq!(target.capacity(), target.len());
        let line = json_line(&kept.events[0]);
        assert!(line.len() < FIELD_MAX + 300, "{}", line.len());
    }

    #[test]
    fn a_callback_sees_each_event_cut_and_asks_for_uses() {
        let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
        let kept = seen.clone();
        let audit = Audit::new();
        assert!(!audit.wants_allowed());
        let told = audit
            .clone()
            .with_callback(move |e: &Event| kept.lock().unwrap().push(e.clone()));
        assert!(told.wants_allowed() && !audit.wants_allowed());
        told.record(refusal("a".repeat(1 << 20)));
        audit.record(refusal("not told".into()));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let target = seen[0].target.as_deref().unwrap();
        assert!(target.len() < FIELD_MAX + 64, "{}", target.len());
        // One record: both refusals are kept, whichever handle recorded them.
        assert_eq!(audit.refusals().len(), 2);
        assert_eq!(told.refusals().len(), 2);
    }

    #[test]
    fn memory_kept_is_bounded_in_bytes_and_what_is_dropped_is_counted() {
        let audit = Audit::new();
        let many = 2 * KEPT_BYTES / FIELD_MAX;
        for i in 0..many {
            audit.record(refusal(format!("{i}{}", "n".repeat(4 * FIELD_MAX))));
        }
        audit.record(Event {
            nanoprocess: "app/x".into(),
            capability: "restart",
            operation: "nanoproc:restart",
            target: None,
            decision: Decision::Allowed,
            reason: Some("f".repeat(100_000)),
            needs: None,
            request: None,
        });
        let kept = audit.kept();
        let bytes: usize = kept.events.iter().map(footprint).sum();
        assert!(bytes <= KEPT_BYTES, "{bytes}");
        assert!(kept.events.len() < KEPT, "the byte bound came first");
        assert_eq!(
            kept.events.len() as u64 + kept.refusals_not_kept,
            many as u64
        );
        assert_eq!(kept.restarts_not_kept, 1);
        // The counts still see every one.
        assert_eq!(
            audit.counts()[&("app/x".into(), "network")],
            (0, many as u64)
        );
    }

    #[test]
    fn a_request_handle_marks_its_events_and_shares_the_record() {
        let audit = Audit::new();
        let request = audit.for_request("17");
        assert_eq!(request.request().map(|r| &**r), Some("17"));
        request.record(refusal("a".into()));
        audit.record(refusal("b".into()));
        let kept = audit.kept();
        assert_eq!(kept.events.len(), 2);
        assert_eq!(kept.events[0].request.as_deref(), Some("17"));
        assert_eq!(kept.events[1].request, None);
        let line = json_line(&kept.events[0]);
        assert!(
            line.contains(r#""request":"17","nanoprocess":"app/x""#),
            "{line}"
        );
        assert!(!json_line(&kept.events[1]).contains("request"));
        assert!(
            kept.events[0]
                .to_string()
                .starts_with("[request 17] app/x: refused network"),
            "{}",
            kept.events[0]
        );
        // An id is text: a host's own is escaped, in the line and in words.
        let odd = audit.for_request("a\"b\u{1b}");
        odd.record(refusal("c".into()));
        let e = audit.kept().events.pop().unwrap();
        assert!(
            json_line(&e).contains(r#""request":"a\"b\u001b""#),
            "{}",
            json_line(&e)
        );
        assert!(e.to_string().starts_with("[request a\"b\\u{1b}]"), "{e}");
    }
}
