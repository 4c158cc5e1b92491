//! A middle nanoprocess: runs probes itself and forwards `down:` probes to the
//! nanoprocess it imports, to test capabilities and calls two levels deep.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "mid" });

use exports::test::probe::probe;
use test::probe::downstream;

struct Mid;

impl probe::Guest for Mid {
    /// Answers one line per op, in order. `down:OP` sends `OP` downstream in a call of
    /// its own (so the answers keep the ops' order) and answers with what came back;
    /// every other op runs here, under this nanoprocess's own grants.
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        let mut answers = Vec::with_capacity(ops.len());
        for op in &ops {
            match op.strip_prefix("down:") {
                Some(rest) => match downstream::run(&[rest.to_owned()]) {
                    Ok(lines) => answers.extend(lines),
                    Err(e) => answers.push(format!("err: downstream failed: {e}")),
                },
                None => answers.push(probe_ops::run_op(op)),
            }
        }
        Ok(answers)
    }
}

export!(Mid);
