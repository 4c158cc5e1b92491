//! Reading an audit log (`nanoproc run --audit FILE`, docs/audit.md) into counts
//! per nanoprocess and capability.
//!
//! The file may be huge (one line per decision of a long run) and much of its
//! text was chosen by guests, so reading it is bounded whatever it holds: it is
//! read one line at a time, a line longer than [`MAX_LINE_BYTES`] is skipped
//! without being held, and what is kept is capped ([`MAX_KEYS`] nanoprocess and
//! capability pairs, [`MAX_TARGETS`] refused targets of [`TARGET_CHARS`] each per
//! pair). A line that is not an audit record is counted, with its number, and
//! skipped: an audit log cut short by a crash still draws.
//!
//! [`read_file`] opens one by its path: only a regular file, opened without
//! waiting (a FIFO would wait for a writer, `/dev/zero` never ends), at most
//! [`MAX_FILE_BYTES`] of it.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::path::Path;

/// The most bytes of an audit log [`read_file`] reads: a run writes a few hundred
/// bytes per decision, so this is millions of decisions.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// The longest line read. Real lines are under 3 KiB (a target and a reason are
/// each cut to 1 KiB when recorded).
pub const MAX_LINE_BYTES: usize = 64 << 10;

/// How many nanoprocess and capability pairs are counted; the events of any
/// further pair are counted in [`Usage::events_not_counted`].
pub const MAX_KEYS: usize = 1024;

/// How many distinct refused targets are kept per nanoprocess and capability.
pub const MAX_TARGETS: usize = 5;

/// The longest refused target kept, in characters.
pub const TARGET_CHARS: usize = 120;

/// The longest nanoprocess path or capability name kept, in characters (longer
/// ones are cut, and cannot match a node of the tree).
pub const NAME_CHARS: usize = 256;

/// How many malformed lines are listed by number (all are counted).
pub const MALFORMED_LISTED: usize = 10;

/// What one run did, from its audit log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Nanoprocess path, then capability family (or `restart`, `handle`).
    pub by_node: BTreeMap<String, BTreeMap<String, CapabilityUse>>,
    /// Lines read, malformed ones included.
    pub lines: u64,
    /// Lines that were not audit records (too long, not JSON, missing a field,
    /// an unknown decision), counted.
    pub malformed: u64,
    /// The first [`MALFORMED_LISTED`] of them: line number and why.
    pub malformed_lines: Vec<(u64, String)>,
    /// Records not counted because [`MAX_KEYS`] pairs were counted already.
    pub events_not_counted: u64,
}

/// Uses and refusals of one capability by one nanoprocess.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityUse {
    pub allowed: u64,
    pub refused: u64,
    /// Allowed by the grants, but the operation failed (docs/audit.md).
    pub failed: u64,
    /// Distinct targets of refusals (or the operation, for a refusal without a
    /// target, such as `wasi:clocks/wall-clock.now`), first seen first, at most
    /// [`MAX_TARGETS`], each cut to [`TARGET_CHARS`].
    pub refused_targets: Vec<String>,
    /// Refusals whose target is not among `refused_targets`.
    pub refusals_elsewhere: u64,
}

/// The fields of an audit line this reader needs; others are ignored.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    nanoprocess: Cow<'a, str>,
    #[serde(borrow)]
    family: Cow<'a, str>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    target: Option<Cow<'a, str>>,
    #[serde(borrow)]
    decision: Cow<'a, str>,
}

/// Reads the audit log at `path`, which must be a regular file of at most
/// [`MAX_FILE_BYTES`]; anything else (a FIFO, a device, a directory) is an error
/// before a byte is read. Its kind is checked on the path, so that only a regular
/// file is opened (opening some devices acts), and again on the open descriptor,
/// for a file swapped in between; it is opened with `O_NONBLOCK`, so that a FIFO
/// swapped in does not make the open wait for a writer.
pub fn read_file(path: &Path) -> io::Result<Usage> {
    read_file_within(path, MAX_FILE_BYTES)
}

fn read_file_within(path: &Path, max: u64) -> io::Result<Usage> {
    use std::os::unix::fs::OpenOptionsExt;
    regular(std::fs::metadata(path)?.file_type())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    regular(meta.file_type())?;
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is larger than {} MiB, more than is read of an audit log",
                max >> 20
            ),
        )
    };
    if meta.len() > max {
        return Err(too_large());
    }
    // One byte past the cap is read at most, for a file that grows meanwhile.
    let mut input = io::BufReader::new(file.take(max.saturating_add(1)));
    let usage = read(&mut input)?;
    if input.into_inner().limit() == 0 {
        return Err(too_large());
    }
    Ok(usage)
}

/// `Ok` for a regular file; otherwise an error that says what it is.
fn regular(kind: std::fs::FileType) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file: give the file `nanoproc run --audit` wrote"),
    ))
}

/// Reads an audit log. Only reading `input` can fail; whatever a line holds, it is
/// counted or skipped.
pub fn read(mut input: impl BufRead) -> io::Result<Usage> {
    let mut usage = Usage::default();
    let mut keys = 0usize;
    let mut line = Vec::new();
    loop {
        let outcome = read_line(&mut input, &mut line)?;
        let Some(complete) = outcome else { break };
        usage.lines += 1;
        let number = usage.lines;
        if !complete {
            usage.note_malformed(number, format!("longer than {MAX_LINE_BYTES} bytes"));
            continue;
        }
        let text = line.strip_suffix(b"\r").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            // A blank line (an editor's final newline) is no record, and no error.
            continue;
        }
        let record: Record = match serde_json::from_slice(text) {
            Ok(r) => r,
            Err(e) => {
                usage.note_malformed(number, format!("not an audit record: {e}"));
                continue;
            }
        };
        let decision = match record.decision.as_ref() {
            d @ ("allowed" | "refused" | "failed") => d,
            other => {
                usage.note_malformed(
                    number,
                    format!(
                        "unknown decision `{}`",
                        crate::escape::cut(other, TARGET_CHARS)
                    ),
                );
                continue;
            }
        };
        let node = crate::escape::cut(&record.nanoprocess, NAME_CHARS);
        let family = crate::escape::cut(&record.family, NAME_CHARS);
        let known = usage
            .by_node
            .get(node.as_ref())
            .is_some_and(|caps| caps.contains_key(family.as_ref()));
        if !known {
            if keys >= MAX_KEYS {
                usage.events_not_counted += 1;
                continue;
            }
            keys += 1;
        }
        let counts = usage
            .by_node
            .entry(node.into_owned())
            .or_default()
            .entry(family.into_owned())
            .or_default();
        match decision {
            "allowed" => counts.allowed = counts.allowed.saturating_add(1),
            "failed" => counts.failed = counts.failed.saturating_add(1),
            _ => {
                counts.refused = counts.refused.saturating_add(1);
                let what = record.target.or(record.operation);
                counts.note_refused(what.as_deref());
            }
        }
    }
    Ok(usage)
}

impl Usage {
    fn note_malformed(&mut self, line: u64, why: String) {
        self.malformed += 1;
        if self.malformed_lines.len() < MALFORMED_LISTED {
            self.malformed_lines.push((line, why));
        }
    }
}

impl CapabilityUse {
    fn note_refused(&mut self, what: Option<&str>) {
        let Some(what) = what else { return };
        let what = crate::escape::cut(what, TARGET_CHARS);
        if self.refused_targets.iter().any(|t| *t == what) {
            return;
        }
        if self.refused_targets.len() < MAX_TARGETS {
            self.refused_targets.push(what.into_owned());
        } else {
            self.refusals_elsewhere = self.refusals_elsewhere.saturating_add(1);
        }
    }
}

/// Reads one line (without its `\n`) into `line`, holding at most
/// [`MAX_LINE_BYTES`] of it: `Some(true)` for a whole line, `Some(false)` for one
/// that was longer (the rest is read and dropped), `None` at the end of the input.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(read_any.then_some(!too_long));
        }
        read_any = true;
        let (chunk, ends_line) = match available.iter().position(|&b| b == b'\n') {
            Some(at) => (&available[..at], true),
            None => (available, false),
        };
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(ends_line);
        input.consume(used);
        if ends_line {
            return Ok(Some(!too_long));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(node: &str, family: &str, target: Option<&str>, decision: &str) -> String {
        serde_json::json!({
            "time": "2026-11-24T17:48:17.425Z",
            "nanoprocess": node,
            "family": family,
            "operation": "wasi:sockets/tcp.connect",
            "target": target,
            "decision": decision,
        })
        .to_string()
    }

    #[test]
    fn counts_each_decision_per_node_and_capability() {
        let log = [
            line("app", "fs", Some("/photos"), "allowed"),
            line("app", "fs", Some("/photos/x"), "failed"),
            line("app/a", "network", Some("1.2.3.4:1"), "refused"),
            line("app/a", "network", Some("1.2.3.4:1"), "refused"),
            line("app/a", "network", Some("evil.test"), "refused"),
            line("app/a", "wall-clock", None, "refused"),
        ]
        .join("\n");
        let usage = read(log.as_bytes()).unwrap();
        assert_eq!(usage.lines, 6);
        assert_eq!(usage.malformed, 0);
        let fs = &usage.by_node["app"]["fs"];
        assert_eq!((fs.allowed, fs.refused, fs.failed), (1, 0, 1));
        let net = &usage.by_node["app/a"]["network"];
        assert_eq!(net.refused, 3);
        assert_eq!(net.refused_targets, ["1.2.3.4:1", "evil.test"]);
        // Without a target, the operation says what was refused.
        assert_eq!(
            usage.by_node["app/a"]["wall-clock"].refused_targets,
            ["wasi:sockets/tcp.connect"]
        );
    }

    #[test]
    fn malformed_lines_are_counted_with_their_numbers_and_skipped() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let log = format!(
            "{}\nnot json\n\n{long}\n{}\n{}\n{{\"nanoprocess\":\"app\"}}\n\u{0}\u{ff}",
            line("app", "fs", None, "allowed"),
            line("app", "fs", None, "maybe"),
            line("app", "fs", None, "allowed"),
        );
        let usage = read(log.as_bytes()).unwrap();
        assert_eq!(usage.lines, 8);
        assert_eq!(usage.by_node["app"]["fs"].allowed, 2);
        let numbers: Vec<u64> = usage.malformed_lines.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [2, 4, 5, 7, 8]);
        assert_eq!(usage.malformed, 5);
        assert!(
            usage.malformed_lines[1].1.contains("longer than"),
            "{usage:?}"
        );
        assert!(
            usage.malformed_lines[2]
                .1
                .contains("unknown decision `maybe`")
        );
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let mut log = String::new();
        for i in 0..50 {
            let target = format!("{i}-{}", "t".repeat(10_000));
            log.push_str(&line("app/a", "network", Some(&target), "refused"));
            log.push('\n');
        }
        for i in 0..(MAX_KEYS + 7) {
            log.push_str(&line(&format!("n{i}"), "fs", None, "allowed"));
            log.push('\n');
        }
        let usage = read(log.as_bytes()).unwrap();
        let net = &usage.by_node["app/a"]["network"];
        assert_eq!(net.refused, 50);
        assert_eq!(net.refused_targets.len(), MAX_TARGETS);
        assert!(
            net.refused_targets
                .iter()
                .all(|t| t.chars().count() <= TARGET_CHARS && t.ends_with('…'))
        );
        assert_eq!(net.refusals_elsewhere, 50 - MAX_TARGETS as u64);
        let pairs: usize = usage.by_node.values().map(BTreeMap::len).sum();
        assert_eq!(pairs, MAX_KEYS);
        // One pair went to app/a, so eight records found no room.
        assert_eq!(usage.events_not_counted, 8);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_malformed_not_an_error() {
        let whole = line("app", "fs", None, "allowed");
        let log = format!("{whole}\n{}", &whole[..whole.len() / 2]);
        let usage = read(log.as_bytes()).unwrap();
        assert_eq!(usage.by_node["app"]["fs"].allowed, 1);
        assert_eq!(
            usage
                .malformed_lines
                .iter()
                .map(|m| m.0)
                .collect::<Vec<_>>(),
            [2]
        );
    }

    #[test]
    fn only_a_regular_file_within_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let record = line("app", "fs", None, "allowed") + "\n";
        std::fs::write(&log, record.repeat(10)).unwrap();
        assert_eq!(read_file(&log).unwrap().by_node["app"]["fs"].allowed, 10);
        // One byte over the cap is refused, not cut: a count that looks whole
        // would be wrong.
        let exact = (record.len() * 10) as u64;
        assert!(read_file_within(&log, exact).is_ok());
        let e = read_file_within(&log, exact - 1).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        // What is not a regular file is refused before it is read (or opened).
        for (path, what) in [
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            let e = read_file(path).unwrap_err();
            assert!(e.to_string().contains(what), "{}: {e}", path.display());
        }
    }

    #[test]
    fn long_lines_are_dropped_across_small_reads() {
        // A reader that hands out a few bytes at a time: the line length is
        // tracked across `fill_buf` calls.
        let long = format!(
            "{}\n{}\n",
            "y".repeat(MAX_LINE_BYTES * 3),
            line("a", "fs", None, "refused")
        );
        let reader = io::BufReader::with_capacity(7, long.as_bytes());
        let usage = read(reader).unwrap();
        assert_eq!(usage.lines, 2);
        assert_eq!(usage.malformed, 1);
        assert_eq!(usage.by_node["a"]["fs"].refused, 1);
    }
}
