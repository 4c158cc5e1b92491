//! The clocks family: `wall-clock` and `monotonic-clock`, real or frozen.

use crate::family::{
    Family, GrantError, GrantValue, Instead, Line, RootContext, Suggestion, Use, ValueKind,
    Violation, flag, toml_string,
};
use crate::switch::{self, Mode, Switch};

pub struct Clocks;

/// How a granted clock reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockMode {
    #[default]
    Real,
    /// Always this reading (nanoseconds since the UNIX epoch for the wall clock,
    /// since an arbitrary start for the monotonic one). Reveals nothing, so any
    /// nanoprocess may be given it.
    Frozen(u64),
}

impl Mode for ClockMode {
    fn is_data(&self) -> bool {
        matches!(self, ClockMode::Frozen(_))
    }

    /// A real clock only from a parent that has the real one.
    fn within(&self, parent: &Self, key: &str) -> Result<(), String> {
        match parent {
            ClockMode::Real => Ok(()),
            ClockMode::Frozen(_) => Err(switch::not_real(key)),
        }
    }

    fn describe(&self) -> Option<String> {
        match self {
            ClockMode::Real => None,
            ClockMode::Frozen(ns) => Some(format!("frozen at {ns} ns")),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClocksRequest {
    pub wall: Switch<ClockMode>,
    pub monotonic: Switch<ClockMode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClocksHolding {
    pub wall: Option<ClockMode>,
    pub monotonic: Option<ClockMode>,
}

const WALL: &str = "true, false or an instant to freeze it at, like \"2024-01-01T00:00:00Z\"";
const MONO: &str = "true, false or \"frozen\"";

impl Family for Clocks {
    const NAME: &'static str = "clocks";
    const KEYS: &'static [&'static str] = &["wall-clock", "monotonic-clock"];
    type Request = ClocksRequest;
    type Holding = ClocksHolding;

    /// `wall-clock = true` or an instant (`"2024-01-01T00:00:00Z"`);
    /// `monotonic-clock = true` or `"frozen"` (at 0).
    fn parse(
        request: &mut ClocksRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        parse_one(request, key, value).map_err(|e| vec![e])
    }

    fn for_root(
        request: &ClocksRequest,
        _cx: &RootContext<'_>,
    ) -> Result<ClocksHolding, Vec<Violation>> {
        Ok(ClocksHolding {
            wall: request.wall.held,
            monotonic: request.monotonic.held,
        })
    }

    fn attenuate(
        parent: &ClocksHolding,
        request: &ClocksRequest,
    ) -> Result<ClocksHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let holding = ClocksHolding {
            wall: switch::attenuate("wall-clock", &parent.wall, &request.wall, &mut violations),
            monotonic: switch::attenuate(
                "monotonic-clock",
                &parent.monotonic,
                &request.monotonic,
                &mut violations,
            ),
        };
        crate::family::checked(holding, violations)
    }

    fn within(child: &ClocksHolding, parent: &ClocksHolding) -> bool {
        switch::within(&child.wall, &parent.wall)
            && switch::within(&child.monotonic, &parent.monotonic)
    }

    fn holds(holding: &ClocksHolding, key: &str) -> bool {
        match key {
            "wall-clock" => holding.wall.is_some(),
            "monotonic-clock" => holding.monotonic.is_some(),
            _ => false,
        }
    }

    fn allows(holding: &ClocksHolding, used: &Use<'_>) -> bool {
        match used.key {
            "wall-clock" => holding.wall.is_some(),
            "monotonic-clock" => holding.monotonic.is_some(),
            _ => false,
        }
    }

    fn propose(
        uses: &[Use<'_>],
        held: &ClocksHolding,
        _parent: Option<&ClocksHolding>,
    ) -> Vec<Suggestion> {
        let used = |key: &str| uses.iter().any(|u| u.key == key);
        // `--clock-at` freezes both clocks, the wall clock at its instant: one
        // flag for either, at the wall clock's instant where it is frozen.
        let clock_at = || {
            let ns = match held.wall {
                Some(ClockMode::Frozen(ns)) => ns,
                _ => 0,
            };
            Some(flag("--clock-at", &format_instant(ns)))
        };
        let mut out = Vec::new();
        if used("wall-clock") {
            out.push(match held.wall {
                // It ran on a frozen clock: that is what it is proposed.
                Some(ClockMode::Frozen(ns)) => frozen(Suggestion::new(
                    "wall-clock",
                    toml_string(&format_instant(ns)),
                    clock_at(),
                )),
                _ => {
                    let mut s = Suggestion::new("wall-clock", "true", Some("--wall-clock".into()));
                    s.instead = Instead::new(
                        "\"2024-01-01T00:00:00Z\"",
                        "--clock-at 2024-01-01T00:00:00Z",
                        "a wall clock frozen at that instant, which its parent need not hold",
                    );
                    s
                }
            });
        }
        if used("monotonic-clock") {
            out.push(match held.monotonic {
                Some(ClockMode::Frozen(_)) => {
                    frozen(Suggestion::new("monotonic-clock", "\"frozen\"", clock_at()))
                }
                _ => {
                    let mut s = Suggestion::new(
                        "monotonic-clock",
                        "true",
                        Some("--monotonic-clock".into()),
                    );
                    s.instead = Instead::new(
                        "\"frozen\"",
                        "--clock-at 2024-01-01T00:00:00Z",
                        "a clock that never moves (enough for code that only measures), which its parent need not hold",
                    );
                    s
                }
            });
        }
        out
    }

    fn everything(parent: &ClocksHolding, written: &ClocksRequest) -> ClocksRequest {
        ClocksRequest {
            wall: switch::learning(&parent.wall, &written.wall),
            monotonic: switch::learning(&parent.monotonic, &written.monotonic),
        }
    }

    fn describe(holding: &ClocksHolding) -> Vec<Line> {
        vec![(
            "clocks",
            switch::line([
                switch::described("wall-clock", &holding.wall),
                switch::described("monotonic-clock", &holding.monotonic),
            ]),
        )]
    }
}

/// `2024-01-01T00:00:00Z` (optionally with `.fff` fractions) as nanoseconds since
/// the UNIX epoch; `None` for anything else, and for instants before 1970 or too
/// late for a `u64` of nanoseconds (past 2554).
pub fn parse_instant(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Four-digit years, as RFC 3339 writes them. The bound also keeps the day
    // arithmetic below from overflowing on a year of twenty digits (which, unchecked,
    // would freeze the clock at a wrapped-around instant in a release build).
    if !(0..=9999).contains(&y) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hh * 3600 + mm * 60 + ss;
    let nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Reads one key's value (see [`Family::parse`]).
fn parse_one(request: &mut ClocksRequest, key: &str, value: &GrantValue) -> Result<(), GrantError> {
    let wall = key == "wall-clock";
    let held = match &value.kind {
        ValueKind::Bool(held) => held.then_some(ClockMode::Real),
        ValueKind::Text(at) if wall => parse_instant(at).map(ClockMode::Frozen),
        ValueKind::Text(w) if w == "frozen" => Some(ClockMode::Frozen(0)),
        _ => None,
    };
    let held = match (&value.kind, held) {
        (ValueKind::Bool(false), _) => None,
        (_, Some(mode)) => Some(mode),
        (_, None) => {
            let expected = if wall { WALL } else { MONO };
            return Err(value.error(format!("{key}: expected {expected}")));
        }
    };
    let switch = Switch {
        held,
        span: value.span.clone(),
    };
    if wall {
        request.wall = switch;
    } else {
        request.monotonic = switch;
    }
    Ok(())
}

/// A frozen mode is data its parent chooses: nothing to hold above it.
fn frozen(mut s: Suggestion) -> Suggestion {
    s.needs_parent = false;
    s
}

/// `ns` nanoseconds after the Unix epoch as an RFC 3339 instant in UTC, as
/// [`parse_instant`] reads it back.
pub fn format_instant(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let time = format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    if nanos == 0 {
        format!("{year:04}-{month:02}-{day:02}T{time}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{time}.{nanos:09}Z")
    }
}

/// The date (year, month, day) `days` days after 1970-01-01, in the proleptic
/// Gregorian calendar (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
