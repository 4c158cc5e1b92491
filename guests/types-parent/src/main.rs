//! Calls `test:types/echo` in a child nanoprocess and checks what comes back.
//!
//! The first argument chooses a scenario:
//! - `roundtrip`: sends every kind of WIT value and checks each answer equals what was
//!   sent; prints `roundtrip <function>: ok` per function, then `roundtrip: all ok`
//!   (exit 0), or `roundtrip <function>: MISMATCH ...` (exit 1).
//! - `crash`: the child panics in a function with an error channel; prints what the
//!   call returned, then whether the child still answers.
//! - `crash-hard`: the child panics in a function without one; the call must trap.
//! - `calls`: three calls, then `calls: <n>` (4 if the child keeps its state).
//! - `echo-string <s>...`: echoes each further argument, printing
//!   `echo-string <sent:?> -> <got:?>`.
//! - `echo-bytes <n>...`: echoes `n` bytes (`i % 251` for byte `i`) per argument,
//!   printing `echo-bytes <n>: <len> bytes, fnv1a <hash of what came back>, same: <bool>`.
//! - `add <a> <b>`: prints `add <a> <b> = <sum>`.
//! - `invalid-utf8`: passes a `string` that is not UTF-8 (through a raw import of
//!   `echo-string`, as a buggy or hostile guest could), which must trap this
//!   nanoprocess, not its child.

wit_bindgen::generate!({
    path: "../wit/types.wit",
    world: "types-parent",
    // Compare answers with `==` (no NaNs are sent, so float equality is exact).
    additional_derives: [PartialEq],
});

use std::fmt::Debug;
use std::process::ExitCode;

use test::types::echo::{self, Color, Inner, Outer, Perms, Shape};

fn main() -> ExitCode {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        "roundtrip" => roundtrip(),
        "crash" => {
            match echo::crash("boom from child") {
                Ok(n) => println!("crash returned: Ok({n})"),
                Err(e) => println!("crash returned error: {e}"),
            }
            // Whether the child is still usable after it trapped is nanoproc's call;
            // this may trap too.
            println!("after crash add: {}", echo::add(2, 3));
            ExitCode::SUCCESS
        }
        "crash-hard" => {
            let n = echo::crash_hard("hard boom");
            println!("unreachable: {n}");
            ExitCode::SUCCESS
        }
        "calls" => {
            for _ in 0..3 {
                echo::add(1, 1);
            }
            println!("calls: {}", echo::calls());
            ExitCode::SUCCESS
        }
        "echo-string" => {
            for sent in std::env::args().skip(2) {
                let got = echo::echo_string(&sent);
                println!("echo-string {sent:?} -> {got:?}");
            }
            ExitCode::SUCCESS
        }
        "echo-bytes" => {
            for n in std::env::args().skip(2) {
                let n: u32 = n.parse().expect("echo-bytes takes lengths");
                let sent: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
                let got = echo::echo_bytes(&sent);
                println!(
                    "echo-bytes {n}: {} bytes, fnv1a {:016x}, same: {}",
                    got.len(),
                    fnv1a(&got),
                    got == sent
                );
            }
            ExitCode::SUCCESS
        }
        "add" => {
            let arg = |i: usize| -> u32 {
                let a = std::env::args().nth(i).expect("add takes two numbers");
                a.parse().expect("add takes two u32s")
            };
            let (a, b) = (arg(2), arg(3));
            println!("add {a} {b} = {}", echo::add(a, b));
            ExitCode::SUCCESS
        }
        "invalid-utf8" => {
            let bytes = [b'o', b'k', 0xff, 0xfe];
            let mut ret = [0usize; 2];
            // SAFETY: the canonical ABI of `echo-string`: a pointer and a length, and
            // a pointer to two words for the returned string. The bytes are valid
            // memory; they are not UTF-8, which the callee has to refuse.
            unsafe { raw::echo_string(bytes.as_ptr(), bytes.len(), ret.as_mut_ptr()) };
            println!("unreachable: invalid-utf8 returned {} bytes", ret[1]);
            ExitCode::SUCCESS
        }
        other => {
            eprintln!(
                "unknown scenario {other:?}: expected roundtrip, crash, crash-hard, calls, \
                 echo-string, echo-bytes, add or invalid-utf8"
            );
            ExitCode::from(2)
        }
    }
}

/// 64-bit FNV-1a, to print a checksum of what came back instead of the bytes.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `echo-string` import without wit-bindgen's `&str`, to send bytes that are
/// not UTF-8.
mod raw {
    #[link(wasm_import_module = "test:types/echo")]
    unsafe extern "C" {
        #[link_name = "echo-string"]
        pub fn echo_string(ptr: *const u8, len: usize, ret: *mut usize);
    }
}

/// Tracks the roundtrip's verdict per function.
struct Check {
    failed: bool,
}

impl Check {
    /// Compares every (sent, received) pair for one function and prints its verdict.
    fn function<T: PartialEq + Debug>(&mut self, name: &str, pairs: &[(T, T)]) {
        match pairs.iter().find(|(sent, got)| sent != got) {
            None => println!("roundtrip {name}: ok"),
            Some((sent, got)) => {
                self.failed = true;
                println!("roundtrip {name}: MISMATCH sent {sent:?}, got {got:?}");
            }
        }
    }
}

fn roundtrip() -> ExitCode {
    let mut check = Check { failed: false };
    // Calls made to the child so far, to check `calls()` (state survives between calls).
    let mut calls: u64 = 0;

    echo::noop();
    calls += 1;
    check.function("noop", &[((), ())]);

    let sums = [(40, 2), (u32::MAX, 1), (u32::MAX, u32::MAX)]
        .map(|(a, b)| (a.wrapping_add(b), echo::add(a, b)));
    calls += 3;
    check.function("add", &sums);

    let strings =
        ["héllo ✓", "", "a\0b", "🦀 nanoproc"].map(|s| (s.to_owned(), echo::echo_string(s)));
    calls += 4;
    check.function("echo-string", &strings);

    // 1 MiB with a pattern that does not repeat at any power-of-two stride.
    let bytes: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let echoed = echo::echo_bytes(&bytes);
    calls += 2;
    let empty = echo::echo_bytes(&[]);
    if bytes == echoed && empty.is_empty() {
        println!("roundtrip echo-bytes: ok");
    } else {
        check.failed = true;
        let first_difference = bytes.iter().zip(&echoed).position(|(a, b)| a != b);
        println!(
            "roundtrip echo-bytes: MISMATCH sent {} bytes, got {} (first difference at {:?}); \
             empty came back as {} bytes",
            bytes.len(),
            echoed.len(),
            first_difference,
            empty.len()
        );
    }

    // One call per case of `shape`, varying the other fields alongside.
    let outers = [
        sample_outer(Shape::Circle(2.5), Color::Red, Ok(7), true),
        sample_outer(
            Shape::Rect((3, u32::MAX)),
            Color::Green,
            Err("nope ✗".to_owned()),
            false,
        ),
        sample_outer(Shape::Point, Color::Blue, Ok(u16::MAX), true),
    ]
    .map(|sent| {
        let got = echo::echo_outer(&sent);
        (sent, got)
    });
    calls += 3;
    check.function("echo-outer", &outers);

    let maybes = [Some("héllo ✓".to_owned()), Some(String::new()), None].map(|sent| {
        let got = echo::maybe(sent.as_deref());
        (sent, got)
    });
    calls += 3;
    check.function("maybe", &maybes);

    let fallibles = [
        (Err(Color::Blue), echo::fallible(true)),
        (Ok("fine".to_owned()), echo::fallible(false)),
    ];
    calls += 2;
    check.function("fallible", &fallibles);

    // `calls()` counts itself too.
    calls += 1;
    check.function("calls", &[(calls, echo::calls())]);

    if check.failed {
        return ExitCode::FAILURE;
    }
    println!("roundtrip: all ok");
    ExitCode::SUCCESS
}

/// An `outer` that uses every field non-trivially.
fn sample_outer(shape: Shape, color: Color, status: Result<u16, String>, flag: bool) -> Outer {
    Outer {
        name: "héllo ✓".to_owned(),
        items: vec![
            Inner {
                tags: vec!["first".to_owned(), "ünïcödé".to_owned(), String::new()],
                weight: Some(0.25),
            },
            Inner {
                tags: Vec::new(),
                weight: None,
            },
        ],
        matrix: vec![vec![1, -2, 3], Vec::new(), vec![i64::MIN, i64::MAX]],
        color,
        perms: Perms::READ | Perms::EXEC,
        shape,
        pair: (255, '✓'),
        status,
        flag,
        bytes: (0..=255).collect(),
        small: i8::MIN,
        mid: i16::MIN,
        big: u64::MAX,
    }
}
