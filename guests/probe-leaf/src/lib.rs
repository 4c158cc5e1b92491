//! A leaf nanoprocess that runs capability probes (see `probe-ops`) on request.
//!
//! It exports the same probe twice, as `probe` and `sibling`, so a driver can import
//! two instances of this one component as siblings with different grants.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "leaf" });

use exports::test::probe::{downstream, probe, sibling};

struct Leaf;

impl probe::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

impl sibling::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

impl downstream::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

export!(Leaf);

/// Runs when the component is instantiated: wit-component makes a core module's
/// `_initialize` the component's start, so this is guest code that runs before
/// any export is called, for the tests of limits during instantiation. What it
/// does is chosen by the environment variable `PROBE_AT_START` (when granted):
///
/// | value | at instantiation |
/// |-------|------------------|
/// | `spin` | never returns |
/// | `spin-if:PATH` | never returns if PATH exists (a restart after a call created it) |
/// | `sleep:MS` | waits MS milliseconds in a host call (needs the monotonic clock) |
/// | `exit` | calls `std::process::exit(7)` (WASI 0.2 passes it on as a failure, 1) |
/// | anything else, or unset | nothing |
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    let Ok(what) = std::env::var("PROBE_AT_START") else {
        return;
    };
    let (name, arg) = what.split_once(':').unwrap_or((&what, ""));
    match name {
        "spin" => probe_ops::run_op("spin"),
        "spin-if" if std::path::Path::new(arg).exists() => probe_ops::run_op("spin"),
        "sleep" => probe_ops::run_op(&format!("sleep:{arg}")),
        "exit" => std::process::exit(7),
        _ => String::new(),
    };
}
