//! The WASI 0.3 twin of `probe-leaf`: a leaf nanoprocess that runs capability probes
//! (see `probe3-ops`, every op through `wasi:*@0.3.0`) on request.
//!
//! It exports the same probe three times, as `probe`, `sibling` and `downstream` of
//! `wit/probe.wit`'s `leaf` world, like probe-leaf, so it stands in for probe-leaf
//! under a 0.2 or a 0.3 parent. Those are ordinary (not `async`) functions: their
//! bodies run the ops with `wit_bindgen::block_on` (`probe3_ops::run_op`), and the
//! component model lets such a body wait for nothing. So an op whose WASI 0.3 call
//! the host does not complete at once traps ("cannot block a synchronous task before
//! returning"): always `sleep:MS`, `connect`, name lookups and `stdin`; filesystem
//! calls unless the host lets WASI block its thread. And the file ops cannot read the
//! future that ends a stream, nor `ls` a directory (probe3-ops' docs say what they
//! answer instead).

wit_bindgen_p3::generate!({
    path: "../wit/probe.wit",
    world: "leaf",
    runtime_path: "wit_bindgen_p3::rt",
});

use exports::test::probe::{downstream, probe, sibling};

struct Leaf;

fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
    Ok(ops.iter().map(|op| probe3_ops::run_op(op)).collect())
}

impl probe::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        run(ops)
    }
}

impl sibling::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        run(ops)
    }
}

impl downstream::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        run(ops)
    }
}

export!(Leaf);

/// Runs when the component is instantiated (wit-component makes a core module's
/// `_initialize` the component's start), for the tests of limits during
/// instantiation, as in probe-leaf. What it does is chosen by the environment
/// variable `PROBE_AT_START` (when granted), read through
/// `wasi:cli/environment@0.3.0`:
///
/// | value | at instantiation |
/// |-------|------------------|
/// | `spin` | never returns |
/// | `spin-if:PATH` | never returns if PATH exists (`stat-at`, under `block_on`) |
/// | `sleep:MS` | waits MS milliseconds (`monotonic-clock.wait-for`, under `block_on`: no task may block during a start function, so expect a trap rather than a wait) |
/// | `exit` | `wasi:cli/exit@0.3.0`'s `exit(err)` (a failure, 1, as probe-leaf's `exit(7)` is) |
/// | anything else, or unset | nothing |
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    let Some(what) = probe3_ops::env_var("PROBE_AT_START") else {
        return;
    };
    let (name, arg) = what.split_once(':').unwrap_or((&what, ""));
    match name {
        "spin" => {
            probe3_ops::run_op("spin");
        }
        "spin-if" if probe3_ops::run_op(&format!("stat:{arg}")).starts_with("ok:") => {
            probe3_ops::run_op("spin");
        }
        "sleep" => {
            probe3_ops::run_op(&format!("sleep:{arg}"));
        }
        "exit" => {
            probe3_ops::run_op("exit:7");
        }
        _ => {}
    }
}
