//! A middle nanoprocess: runs probes itself and forwards `down:` probes to the
//! nanoprocess it imports, to test capabilities and calls two levels deep. It
//! exports `downstream` too, so that mids can be chained into a deep tree.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "mid" });

use exports::test::probe::{downstream as serve_downstream, probe};
use std::hint::black_box;
use test::probe::downstream;

struct Mid;

/// Answers one line per op, in order. `down:OP` sends `OP` downstream in a call of
/// its own (so the answers keep the ops' order) and answers with what came back.
/// `dive:N:OP` recurses N wasm frames deep and sends `OP` downstream from there:
/// each level of a chain of mids then holds that much of the native stack while
/// the levels below run. Every other op runs here, under this nanoprocess's own
/// grants.
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
            answers.push(probe_ops::run_op(op));
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
