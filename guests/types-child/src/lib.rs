//! Implements `test:types/echo` faithfully, so a parent can check that every kind of
//! WIT value crosses a nanoprocess boundary intact, and that traps and instance state
//! behave as documented.

wit_bindgen::generate!({ path: "../wit/types.wit", world: "types-child" });

use std::sync::atomic::{AtomicU64, Ordering};

use exports::test::types::echo::{Color, Guest, Outer};

/// Calls this instance has served. Every function counts itself, so `calls()` shows
/// whether state survives between calls (one instance) or not (a fresh one per call).
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Counts the call being served and returns the new total.
fn count() -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

struct Child;

impl Guest for Child {
    fn noop() {
        count();
    }

    fn add(a: u32, b: u32) -> u32 {
        count();
        a.wrapping_add(b)
    }

    fn echo_string(s: String) -> String {
        count();
        s
    }

    fn echo_bytes(b: Vec<u8>) -> Vec<u8> {
        count();
        b
    }

    fn echo_outer(v: Outer) -> Outer {
        count();
        v
    }

    fn maybe(v: Option<String>) -> Option<String> {
        count();
        v
    }

    fn fallible(fail: bool) -> Result<String, Color> {
        count();
        if fail {
            Err(Color::Blue)
        } else {
            Ok("fine".to_owned())
        }
    }

    /// Traps (panics abort on wasm32-wasip2) even though the signature has an error
    /// channel: it is up to nanoproc to turn the trap into an `Err` for the parent.
    fn crash(msg: String) -> Result<u32, String> {
        count();
        panic!("{msg}");
    }

    /// Traps with no error channel: the parent's call has to trap as well.
    fn crash_hard(msg: String) -> u32 {
        count();
        panic!("{msg}");
    }

    fn calls() -> u64 {
        count()
    }
}

export!(Child);
