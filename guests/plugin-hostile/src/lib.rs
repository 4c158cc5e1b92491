//! A hostile plugin for the red-team tests (crates/nanoproc-runtime/tests/
//! redteam_plugins.rs). Each `transform` input is a command; besides, a
//! constructor that runs when the component is instantiated reads the host's kv
//! key `hostile/boot` and, as it says, traps, spins or exits: a plugin that
//! fails only when it is restarted.

wit_bindgen::generate!({ path: "wit/hostile.wit", world: "hostile-plugin" });

use exports::nanoproc::plugins::bulk::Guest as Bulk;
use exports::nanoproc::plugins::transform::Guest;
use nanoproc::plugins::kv;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

struct Hostile;

static CALLS: AtomicU64 = AtomicU64::new(0);
static BOOTS: AtomicU64 = AtomicU64::new(0);

/// Runs at instantiation (`_initialize`, before any export is called).
fn boot() {
    BOOTS.fetch_add(1, Ordering::Relaxed);
    match kv::get("hostile/boot") {
        Ok(Some(mode)) if mode == "trap" => panic!("hostile: trapping at boot"),
        Ok(Some(mode)) if mode == "spin" => {
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Ok(Some(mode)) if mode == "exit" => std::process::exit(0),
        _ => {}
    }
}

/// Called by the component at instantiation (wit-component runs a core module's
/// `_initialize` export as part of instantiating the component).
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    boot();
}

fn describe<T: std::fmt::Debug>(r: Result<T, String>) -> String {
    match r {
        Ok(v) => format!("ok:{v:?}"),
        Err(e) => format!("err:{e}"),
    }
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 64]);
    recurse(frame[3] + 1) + frame[7]
}

impl Guest for Hostile {
    fn transform(input: String) -> String {
        let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
        let (command, rest) = input.split_once(' ').unwrap_or((&input, ""));
        match command {
            "echo" => rest.to_string(),
            "count" => calls.to_string(),
            "boots" => BOOTS.load(Ordering::Relaxed).to_string(),
            "get" => describe(kv::get(rest)),
            "set" => {
                let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                describe(kv::set(key, value))
            }
            // A key of N bytes: what comes back, and how long it is.
            "getlong" => {
                let n: usize = rest.parse().unwrap_or(1);
                let out = describe(kv::get(&"k".repeat(n)));
                format!("{}:{}", out.len(), &out[..out.len().min(64)])
            }
            // N calls, each refused or not: how many were refused.
            "hammer" => {
                let (n, key) = rest.split_once(' ').unwrap_or((rest, "x"));
                let n: u64 = n.parse().unwrap_or(1);
                (0..n).filter(|_| kv::get(key).is_err()).count().to_string()
            }
            // Arms the constructor for the next instantiation, then traps.
            "arm" => {
                let set = kv::set("hostile/boot", rest);
                panic!("hostile: armed {rest:?} ({set:?}), now trapping");
            }
            "trap" => panic!("hostile asked to trap: {rest}"),
            "spin" => {
                let mut x = 0u64;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "sleep" => {
                let ms: u64 = rest.parse().unwrap_or(1000);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                "slept".into()
            }
            "stdin" => {
                let mut s = String::new();
                match std::io::stdin().read_to_string(&mut s) {
                    Ok(n) => format!("read {n}"),
                    Err(e) => format!("stdin error: {e}"),
                }
            }
            "stack" => recurse(0).to_string(),
            "exit" => std::process::exit(rest.parse().unwrap_or(0)),
            other => format!("unknown command {other:?}"),
        }
    }
}

impl Bulk for Hostile {
    fn bytes(n: u32) -> Vec<u8> {
        vec![7u8; n as usize]
    }

    fn empties(n: u32) -> Vec<String> {
        vec![String::new(); n as usize]
    }
}

export!(Hostile);
