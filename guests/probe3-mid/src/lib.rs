//! The WASI 0.3 twin of `probe-mid`: runs probes itself (through `probe3-ops`, every op
//! through `wasi:*@0.3.0`) and forwards `down:` probes to the nanoprocess it imports,
//! on `wit/probe.wit`'s `mid` world, so that 0.2 and 0.3 mids can be mixed in a chain.
//!
//! Its exports are ordinary (not `async`) functions, so local ops run under
//! `wit_bindgen::block_on` (`probe3_ops::run_op`; see probe3-ops for what that cannot
//! wait for); the `downstream` import is an ordinary function too, called
//! synchronously.

wit_bindgen_p3::generate!({
    path: "../wit/probe.wit",
    world: "mid",
    runtime_path: "wit_bindgen_p3::rt",
});

use exports::test::probe::{downstream as serve_downstream, probe};
use std::hint::black_box;
use test::probe::downstream;

struct Mid;

/// Answers one line per op, in order. `down:OP` sends `OP` downstream in a call of
/// its own (so the answers keep the ops' order) and answers with what came back.
/// `dive:N:OP` recurses N wasm frames deep and sends `OP` downstream from there.
/// Every other op runs here, under this nanoprocess's own grants.
fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
    let mut answers = Vec::with_capacity(ops.len());
    for op in &ops {
        if let Some(rest) = op.strip_prefix("down:") {
            answers.extend(down(rest));
        } else if let Some((frames, rest)) =
            op.strip_prefix("dive:").and_then(|r| r.split_once(':'))
        {
            let frames: u32 = frames.parse().map_err(|e| format!("dive: {e}"))?;
            answers.extend(dive(black_box(frames), rest));
        } else {
            answers.push(probe3_ops::run_op(op));
        }
    }
    Ok(answers)
}

fn down(op: &str) -> Vec<String> {
    match downstream::run(&[op.to_owned()]) {
        Ok(lines) => lines,
        Err(e) => vec![format!("err: downstream failed: {e}")],
    }
}

#[inline(never)]
fn dive(frames: u32, op: &str) -> Vec<String> {
    if black_box(frames) == 0 {
        return down(op);
    }
    let mut answers = dive(frames - 1, op);
    // Work after the call keeps this frame (no tail call).
    black_box(&mut answers);
    answers
}

impl probe::Guest for Mid {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        run(ops)
    }
}

impl serve_downstream::Guest for Mid {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        run(ops)
    }
}

export!(Mid);
