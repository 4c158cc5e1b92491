//! Resource limits are capabilities too: a child's limit is at most its parent's.
//!
//! Each limit is a number in its kind's unit. A root without a limit is unlimited;
//! a child without one gets [`LimitKind::child_default`], capped by its parent's,
//! so that a dependency nobody thought about is still bounded (a child's HTTP
//! requests too: 16 in flight, 64 MiB of body each way and 30 s each, unless its
//! manifest says otherwise). The memory limit of
//! a nanoprocess also bounds its whole subtree (the runtime charges every
//! descendant's linear memory to it as well, like a cgroup).

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Span, Suggestion, Use, ValueKind,
    Violation,
};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LimitKind {
    /// Bytes of linear memory, all memories of the nanoprocess and of its subtree.
    Memory,
    /// Table elements, all tables of the nanoprocess together.
    Tables,
    /// Core instances inside the nanoprocess's component.
    Instances,
    /// Open handles: entries in its resource table (files, streams, sockets...).
    Handles,
    /// Fuel (about one unit per wasm instruction) per call into it.
    Fuel,
    /// Wall-clock milliseconds per call into it.
    Timeout,
    /// Bytes it may write to each output stream it holds, per instance (a
    /// restarted instance starts counting again).
    Output,
    /// `wasi:http` requests it may have in flight at once (sent and not yet
    /// answered in full).
    HttpRequests,
    /// Bytes of body each way per `wasi:http` request: what it sends, and what it
    /// may read of the response.
    HttpBody,
    /// Wall-clock milliseconds per `wasi:http` request, from sending it to the
    /// end of the response.
    HttpTimeout,
}

impl LimitKind {
    pub const ALL: [LimitKind; 10] = [
        LimitKind::Memory,
        LimitKind::Tables,
        LimitKind::Instances,
        LimitKind::Handles,
        LimitKind::Fuel,
        LimitKind::Timeout,
        LimitKind::Output,
        LimitKind::HttpRequests,
        LimitKind::HttpBody,
        LimitKind::HttpTimeout,
    ];

    /// The key that sets it in a manifest's grants.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::Memory => "memory",
            LimitKind::Tables => "tables",
            LimitKind::Instances => "instances",
            LimitKind::Handles => "handles",
            LimitKind::Fuel => "fuel",
            LimitKind::Timeout => "timeout",
            LimitKind::Output => "output",
            LimitKind::HttpRequests => "http-requests",
            LimitKind::HttpBody => "http-body",
            LimitKind::HttpTimeout => "http-timeout",
        }
    }

    /// What a child gets when its manifest says nothing (capped by its parent's).
    /// Conservative: enough for ordinary library code, small enough that a hostile
    /// dependency is stopped long before it hurts the host.
    pub fn child_default(self) -> Option<u64> {
        match self {
            LimitKind::Memory => Some(256 << 20),
            LimitKind::Tables => Some(100_000),
            LimitKind::Instances => Some(100),
            LimitKind::Handles => Some(4096),
            LimitKind::Fuel => None,
            LimitKind::Timeout => Some(30_000),
            LimitKind::Output => Some(64 << 20),
            LimitKind::HttpRequests => Some(16),
            LimitKind::HttpBody => Some(64 << 20),
            LimitKind::HttpTimeout => Some(30_000),
        }
    }

    /// The value in the manifest's syntax.
    pub fn format(self, value: u64) -> String {
        match self {
            LimitKind::Memory | LimitKind::Output | LimitKind::HttpBody => {
                crate::format_bytes(value)
            }
            LimitKind::Timeout | LimitKind::HttpTimeout => format_millis(value),
            LimitKind::Tables
            | LimitKind::Instances
            | LimitKind::Handles
            | LimitKind::Fuel
            | LimitKind::HttpRequests => value.to_string(),
        }
    }

    /// Parses a manifest or command-line value: sizes for memory, output and
    /// http-body, durations for timeout and http-timeout, plain numbers for the
    /// rest.
    pub fn parse(self, text: &str) -> Result<u64, String> {
        match self {
            LimitKind::Memory | LimitKind::Output | LimitKind::HttpBody => crate::parse_bytes(text),
            LimitKind::Timeout | LimitKind::HttpTimeout => parse_millis(text),
            _ => text
                .trim()
                .replace('_', "")
                .parse()
                .map_err(|_| format!("expected a whole number, found {text:?}")),
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A value for each limit kind; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits([Option<u64>; LimitKind::ALL.len()]);

impl Limits {
    pub const UNLIMITED: Limits = Limits([None; LimitKind::ALL.len()]);

    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        self.0[kind as usize]
    }

    pub fn set(&mut self, kind: LimitKind, value: Option<u64>) {
        self.0[kind as usize] = value;
    }

    pub fn with(mut self, kind: LimitKind, value: u64) -> Self {
        self.set(kind, Some(value));
        self
    }

    pub fn iter(&self) -> impl Iterator<Item = (LimitKind, Option<u64>)> + '_ {
        LimitKind::ALL.into_iter().map(|k| (k, self.get(k)))
    }

    /// Whether every limit is no larger than `parent`'s.
    pub fn within(&self, parent: &Limits) -> bool {
        LimitKind::ALL
            .into_iter()
            .all(|k| match (self.get(k), parent.get(k)) {
                (_, None) => true,
                (None, Some(_)) => false,
                (Some(mine), Some(theirs)) => mine <= theirs,
            })
    }
}

/// The limits family: resource limits are capabilities too (`grants.memory`,
/// `grants.timeout`, ...).
pub struct LimitsFamily;

/// The limits asked for, and where each was written. `None` takes the child
/// default (capped by the parent's), or for the root, no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsRequest {
    pub values: Limits,
    pub spans: [Option<Span>; LimitKind::ALL.len()],
}

impl LimitsRequest {
    pub fn with(mut self, kind: LimitKind, value: u64) -> Self {
        self.values.set(kind, Some(value));
        self
    }
}

impl From<Limits> for LimitsRequest {
    fn from(values: Limits) -> Self {
        Self {
            values,
            spans: Default::default(),
        }
    }
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl Family for LimitsFamily {
    const NAME: &'static str = "limits";
    const KEYS: &'static [&'static str] = &[
        "memory",
        "tables",
        "instances",
        "handles",
        "fuel",
        "timeout",
        "output",
        "http-requests",
        "http-body",
        "http-timeout",
    ];
    type Request = LimitsRequest;
    type Holding = Limits;

    /// A number (`handles = 100`) or text with a unit (`memory = "64 MiB"`).
    fn parse(
        request: &mut LimitsRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        parse_one(request, key, value).map_err(|e| vec![e])
    }

    fn for_root(request: &LimitsRequest, _cx: &RootContext<'_>) -> Result<Limits, Vec<Violation>> {
        Ok(request.values)
    }

    /// A limit not asked for is the child default capped by the parent's; one
    /// asked for must be no larger than the parent's.
    fn attenuate(parent: &Limits, request: &LimitsRequest) -> Result<Limits, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut limits = Limits::UNLIMITED;
        for kind in LimitKind::ALL {
            let limit = parent.get(kind);
            let value = match (request.values.get(kind), limit) {
                (None, limit) => min_limit(kind.child_default(), limit),
                (Some(asked), None) => Some(asked),
                (Some(asked), Some(limit)) if asked <= limit => Some(asked),
                (Some(asked), Some(limit)) => {
                    violations.push(Violation {
                        item: GrantItem::key(kind.key()),
                        grant: format!("{kind} = {:?}", kind.format(asked)),
                        reason: format!("is more than the parent's own {kind} limit"),
                        parent_grant: Some(format!("{kind} = {:?}", kind.format(limit))),
                        span: request.spans[kind as usize].clone(),
                    });
                    Some(limit)
                }
            };
            limits.set(kind, value);
        }
        crate::family::checked(limits, violations)
    }

    fn within(child: &Limits, parent: &Limits) -> bool {
        child.within(parent)
    }

    fn holds(holding: &Limits, key: &str) -> bool {
        LimitKind::ALL
            .iter()
            .any(|k| k.key() == key && holding.get(*k).is_some())
    }

    /// Limits are not used the way a capability is: nothing to allow or propose.
    fn allows(_holding: &Limits, _used: &Use<'_>) -> bool {
        false
    }

    fn propose(_uses: &[Use<'_>], _held: &Limits, _parent: Option<&Limits>) -> Vec<Suggestion> {
        Vec::new()
    }

    /// Limits are not handed down: a child has its own (a learning run is
    /// bounded as a real one is), or the defaults.
    fn everything(_parent: &Limits, written: &LimitsRequest) -> LimitsRequest {
        written.clone()
    }

    fn describe(holding: &Limits) -> Vec<Line> {
        let limits: Vec<String> = holding
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {}", k.format(v))))
            .collect();
        vec![(
            "limits",
            if limits.is_empty() {
                "unlimited".into()
            } else {
                limits.join(", ")
            },
        )]
    }
}

/// `1500` → `1.5s`, `60000` → `60s`, `250` → `250ms`.
pub fn format_millis(ms: u64) -> String {
    if ms >= 1000 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 && ms.is_multiple_of(100) {
        format!("{}.{}s", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("{ms}ms")
    }
}

/// Parses `250ms`, `5s`, `1.5s`, `2m`, `1h`; a fraction is rounded to the nearest
/// millisecond, half up.
///
/// Decimal arithmetic on integers, not `f64`: above 2^53 ms a float loses the last
/// digits, and a limit printed by [`format_millis`] must read back as itself.
pub fn parse_millis(text: &str) -> Result<u64, String> {
    /// Enough for nanoseconds of a second; more is noise, and the bound keeps the
    /// arithmetic below within `u64`.
    const MAX_DECIMALS: usize = 9;
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let expected = || format!("expected a duration such as \"5s\" or \"250ms\", found {text:?}");
    let (whole, fraction) = num.split_once('.').unwrap_or((num, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(expected());
    }
    if fraction.len() > MAX_DECIMALS {
        return Err(format!(
            "duration {text:?} has more than {MAX_DECIMALS} decimal places"
        ));
    }
    let scale: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "" => return Err(format!("a duration needs a unit (ms, s, m or h): {text:?}")),
        other => {
            return Err(format!(
                "unknown duration unit {other:?}: use ms, s, m or h"
            ));
        }
    };
    let out_of_range = || format!("duration {text:?} is out of range");
    // Only ASCII digits are left, so a parse error is an overflow.
    let whole: u64 = match whole {
        "" => 0,
        digits => digits.parse().map_err(|_| out_of_range())?,
    };
    let (numerator, denominator) = match fraction {
        "" => (0, 1),
        digits => (
            digits.parse::<u64>().map_err(|_| expected())?,
            10u64.pow(digits.len() as u32),
        ),
    };
    // numerator < 10^9 and scale <= 3.6 * 10^6: the product fits.
    let fraction_ms = (numerator * scale + denominator / 2) / denominator;
    whole
        .checked_mul(scale)
        .and_then(|ms| ms.checked_add(fraction_ms))
        .ok_or_else(out_of_range)
}

/// Reads one key's value (see [`Family::parse`]).
fn parse_one(request: &mut LimitsRequest, key: &str, value: &GrantValue) -> Result<(), GrantError> {
    let Some(kind) = LimitKind::ALL.into_iter().find(|k| k.key() == key) else {
        return Err(value.error(format!("{key}: not a limit")));
    };
    let parsed = match &value.kind {
        // A bare number of milliseconds is too easy to misread.
        ValueKind::Integer(n) if matches!(kind, LimitKind::Timeout | LimitKind::HttpTimeout) => {
            Err(format!(
                "a duration needs a unit: write \"{n}ms\" or \"{n}s\""
            ))
        }
        ValueKind::Integer(n) => {
            u64::try_from(*n).map_err(|_| format!("expected a positive number, found {n}"))
        }
        ValueKind::Text(t) => kind.parse(t),
        _ => Err(format!(
            "expected a number or text, found {}",
            value.kind_name()
        )),
    };
    match parsed {
        Ok(n) => {
            request.values.set(kind, Some(n));
            request.spans[kind as usize] = value.span.clone();
            Ok(())
        }
        Err(e) => Err(value.error(format!("{kind}: {e}"))),
    }
}
