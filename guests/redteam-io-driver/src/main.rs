//! A root that runs each argument as a red-team stdio op (see
//! `redteam-io-leaf/src/ops.rs`): `child:OP` in the imported `probe`, `sibling:OP`
//! in the imported `sibling`, anything else here. It writes nothing of its own to
//! stdout, so that what a test captures is only what the ops wrote; each outcome
//! goes to stderr as `<arg> => <outcome>` (kept privately if stderr is not granted),
//! until an argument `quiet` turns that off.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "driver" });

#[path = "../../redteam-io-leaf/src/ops.rs"]
mod ops;

use test::probe::{probe, sibling};

fn main() {
    let mut quiet = false;
    for arg in std::env::args().skip(1) {
        if arg == "quiet" {
            quiet = true;
            continue;
        }
        let forwarded = match arg.split_once(':') {
            Some(("child", rest)) => Some(probe::run(&[rest.to_owned()])),
            Some(("sibling", rest)) => Some(sibling::run(&[rest.to_owned()])),
            _ => None,
        };
        let lines = match forwarded {
            Some(Ok(lines)) => lines,
            Some(Err(e)) => vec![format!("err: {e}")],
            None => vec![ops::run_op(&arg)],
        };
        if quiet {
            continue;
        }
        let stderr = wasip2::cli::stderr::get_stderr();
        for line in lines {
            for chunk in format!("{arg} => {line}\n").as_bytes().chunks(4096) {
                let _ = stderr.blocking_write_and_flush(chunk);
            }
        }
    }
}
