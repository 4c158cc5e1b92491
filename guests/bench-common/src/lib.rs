//! The call loop of the cross-nanoprocess benchmark, shared by `bench-parent` (which
//! calls `bench:calls/api` in another component) and `bench-direct` (which calls the
//! same functions inside itself), and the work each function does, shared by
//! `bench-child` and `bench-direct`. Both sides of a comparison run the same code, so
//! the difference between them is the cost of the boundary.
//!
//! A command built on [`main`] takes the arguments `<kind> <n>`, makes `n` calls of
//! that kind, timed with the monotonic clock (`std::time::Instant`), and prints one
//! line: `<kind> <n> <elapsed ns> <checksum>`. The checksum depends on every answer,
//! so the calls cannot be optimised away, and lets the host check the answers.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

/// The kinds of call, as given on the command line.
pub const KINDS: [&str; 6] = ["noop", "add", "echo16", "echo1k", "sum1m", "nested"];

/// The functions of `bench:calls/api`, as the caller sees them.
pub trait Api {
    /// The `rec` record of the interface.
    type Rec;
    fn noop();
    fn add(a: u32, b: u32) -> u32;
    fn echo(s: &str) -> String;
    fn sum(b: &[u8]) -> u64;
    fn nested(r: &Self::Rec) -> Self::Rec;
    /// The record every `nested` call sends (see [`rec_parts`]).
    fn make_rec() -> Self::Rec;
    /// A checksum of a record: [`rec_checksum`] of its parts.
    fn rec_sum(r: &Self::Rec) -> u64;
}

/// The work behind `add`.
#[inline(never)]
pub fn add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

/// The work behind `sum`.
#[inline(never)]
pub fn sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| u64::from(x)).sum()
}

/// The parts of the record `nested` sends: an id, a name, 4 tags, 4 leaves of 8
/// values each, and a 4x16 byte matrix (about 0.4 KiB of payload in 15 lists and
/// strings).
#[allow(clippy::type_complexity)]
pub fn rec_parts() -> (
    u64,
    String,
    Vec<String>,
    Vec<(u32, String, Vec<u32>)>,
    Vec<Vec<u8>>,
) {
    (
        42,
        "nanoproc benchmark record".to_owned(),
        (0..4).map(|i| format!("tag-{i}")).collect(),
        (0..4u32)
            .map(|i| {
                (
                    i,
                    format!("leaf number {i}"),
                    (0..8).map(|v| v * i).collect(),
                )
            })
            .collect(),
        (0..4u8)
            .map(|r| (0..16).map(|c| r.wrapping_mul(c)).collect())
            .collect(),
    )
}

/// A checksum of a record's parts, so that the answer of `nested` is checked.
pub fn rec_checksum<'a>(
    id: u64,
    name: &str,
    tags: impl Iterator<Item = &'a str>,
    leaves: impl Iterator<Item = (u32, &'a str, &'a [u32])>,
    matrix: impl Iterator<Item = &'a [u8]>,
) -> u64 {
    let mut acc = id + name.len() as u64;
    for t in tags {
        acc += t.len() as u64;
    }
    for (id, label, values) in leaves {
        acc +=
            u64::from(id) + label.len() as u64 + values.iter().map(|&v| u64::from(v)).sum::<u64>();
    }
    for row in matrix {
        acc += sum(row);
    }
    acc
}

/// The `make_rec` and `rec_sum` of an [`Api`] impl, for record types named `Rec` and
/// `Leaf` where it is used, with the fields of `bench:calls/api`'s `rec` and `leaf`
/// (a crate's bindings, or `bench-direct`'s own structs): the record built from
/// [`rec_parts`], its checksum by [`rec_checksum`].
#[macro_export]
macro_rules! rec_fns {
    () => {
        fn make_rec() -> Rec {
            let (id, name, tags, leaves, matrix) = $crate::rec_parts();
            Rec {
                id,
                name,
                tags,
                leaves: leaves
                    .into_iter()
                    .map(|(id, label, values)| Leaf { id, label, values })
                    .collect(),
                matrix,
            }
        }

        fn rec_sum(r: &Rec) -> u64 {
            $crate::rec_checksum(
                r.id,
                &r.name,
                r.tags.iter().map(String::as_str),
                r.leaves
                    .iter()
                    .map(|l| (l.id, l.label.as_str(), l.values.as_slice())),
                r.matrix.iter().map(Vec::as_slice),
            )
        }
    };
}

/// `struct Imported`, the [`Api`] of a caller whose bindings import
/// `bench:calls/api` (`api`, `Rec` and `Leaf` in scope where it is used, from
/// wit-bindgen's 0.2 or 0.3 bindings alike): each function one call of the import.
/// The callers (`bench-parent`, `bench-mixed-parent`, `bench3-parent`) then time the
/// same calls with the same loop.
#[macro_export]
macro_rules! imported_api {
    () => {
        struct Imported;

        impl $crate::Api for Imported {
            type Rec = Rec;

            fn noop() {
                api::noop();
            }

            fn add(a: u32, b: u32) -> u32 {
                api::add(a, b)
            }

            fn echo(s: &str) -> String {
                api::echo(s)
            }

            fn sum(b: &[u8]) -> u64 {
                api::sum(b)
            }

            fn nested(r: &Rec) -> Rec {
                api::nested(r)
            }

            $crate::rec_fns!();
        }
    };
}

/// Runs `<kind> <n>` from the command line against `A` and prints the result line.
pub fn main<A: Api>() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(kind), Some(n)) = (args.next(), args.next().and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: <{}> <n>", KINDS.join("|"));
        return ExitCode::from(2);
    };
    let Some((ns, check)) = run::<A>(&kind, n) else {
        eprintln!("unknown kind `{kind}`; one of {}", KINDS.join(", "));
        return ExitCode::from(2);
    };
    println!("{kind} {n} {ns} {check}");
    ExitCode::SUCCESS
}

/// Makes `n` calls of `kind`; returns the elapsed nanoseconds and the checksum, or
/// `None` for an unknown kind. [`main`] is this with std's arguments and stdout; a
/// caller whose entry point is not std's `main` (a WASI 0.3 command, `bench3-parent`)
/// calls it directly.
pub fn run<A: Api>(kind: &str, n: u64) -> Option<(u128, u64)> {
    let mut check = 0u64;
    let start;
    match kind {
        "noop" => {
            start = Instant::now();
            for _ in 0..n {
                A::noop();
            }
            check = n;
        }
        "add" => {
            start = Instant::now();
            for i in 0..n {
                check = check.wrapping_add(u64::from(A::add(black_box(i as u32), black_box(1))));
            }
        }
        "echo16" | "echo1k" => {
            let s = "x".repeat(if kind == "echo16" { 16 } else { 1024 });
            start = Instant::now();
            for _ in 0..n {
                let r = A::echo(black_box(&s));
                check += r.len() as u64;
            }
        }
        "sum1m" => {
            let b: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7) as u8).collect();
            start = Instant::now();
            for _ in 0..n {
                check = check.wrapping_add(A::sum(black_box(&b)));
            }
        }
        "nested" => {
            let r = A::make_rec();
            start = Instant::now();
            for _ in 0..n {
                let out = A::nested(black_box(&r));
                check = check.wrapping_add(A::rec_sum(&out));
            }
        }
        _ => return None,
    }
    let ns = start.elapsed().as_nanos();
    Some((ns, black_box(check)))
}
