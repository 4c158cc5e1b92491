#![no_main]
//! The units a manifest and the command line write limits and times in: sizes
//! (`parse_bytes`), durations (`parse_millis`), plain counts, and the instant a
//! wall clock is frozen at (`parse_instant`).
//!
//! Properties, besides never panicking:
//! - for every limit kind, a value parsed from the text prints (`LimitKind::format`)
//!   as text that parses back to the same value;
//! - the other way round, any number the input's first 8 bytes make prints as text
//!   that parses back to it, for every kind;
//! - an instant that parses has the time of day and the fraction it was written
//!   with.

use libfuzzer_sys::fuzz_target;
use nanoproc_caps::{LimitKind, parse_bytes, parse_millis};
use nanoproc_manifest::parse_instant;

fuzz_target!(|data: &[u8]| {
    if let Some(first) = data.first_chunk::<8>() {
        let n = u64::from_le_bytes(*first);
        for kind in LimitKind::ALL {
            let shown = kind.format(n);
            assert_eq!(kind.parse(&shown), Ok(n), "{kind}: {n} shows as {shown:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in LimitKind::ALL {
        if let Ok(n) = kind.parse(text) {
            let shown = kind.format(n);
            assert_eq!(
                kind.parse(&shown),
                Ok(n),
                "{kind}: {text:?} is {n}, shown as {shown:?}"
            );
        }
    }
    // The kinds above call these; called directly too, as the CLI's flags do.
    let _ = parse_bytes(text);
    let _ = parse_millis(text);
    if let Some(nanos) = parse_instant(text) {
        assert_time_of_day(text, nanos);
    }
});

/// `text` is `DATE'T'HH:MM:SS[.fff]Z`, since it parsed.
fn assert_time_of_day(text: &str, nanos: u64) {
    let (_, time) = text.split_once('T').expect("parsed, so it has a T");
    let time = time.strip_suffix('Z').expect("parsed, so it ends in Z");
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let fields: Vec<u64> = hms.split(':').map(|f| f.parse().unwrap()).collect();
    let (h, m, s) = (fields[0], fields[1], fields[2]);
    let expected_fraction: u64 = format!("{fraction:0<9}").parse().unwrap();
    assert_eq!(
        nanos % 1_000_000_000,
        expected_fraction,
        "{text:?}: fraction"
    );
    let of_day = nanos / 1_000_000_000 % 86_400;
    if s < 60 {
        assert_eq!(of_day, h * 3600 + m * 60 + s, "{text:?}: time of day");
    }
}
