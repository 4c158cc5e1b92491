//! The WASI 0.3 twin of `probe-driver`: a command that runs probes given as arguments,
//! locally or in the nanoprocesses it imports (`wit/probe.wit`'s `driver` world), and
//! prints `<arg> => <outcome>` for each answer line.
//!
//! `child:OP` runs OP through the imported `probe`, `sibling:OP` through the imported
//! `sibling`; anything else runs here, under the driver's own grants, through
//! `probe3-ops` (every op through `wasi:*@0.3.0`).
//!
//! Its entry point is the `wasi:cli/run@0.3.0` export, an `async func`: the ops are
//! awaited (`probe3_ops::run_op_async`), so they may wait (sleep, connect, a slow
//! file) as a 0.3 task is allowed to. The arguments come from
//! `wasi:cli/environment@0.3.0` and the lines go out through `wasi:cli/stdout@0.3.0`.
//! The imports `probe` and `sibling` are ordinary functions, called synchronously
//! from that task, whether a 0.2 or a 0.3 component serves them.

wit_bindgen_p3::generate!({
    path: "../wit/probe.wit",
    world: "driver",
    runtime_path: "wit_bindgen_p3::rt",
});

use test::probe::{probe, sibling};

struct Driver;

wasip3::cli::command::export!(Driver);

impl wasip3::exports::cli::run::Guest for Driver {
    async fn run() -> Result<(), ()> {
        for arg in probe3_ops::arguments().into_iter().skip(1) {
            let forwarded = match arg.split_once(':') {
                Some(("child", rest)) => Some(probe::run(&[rest.to_owned()])),
                Some(("sibling", rest)) => Some(sibling::run(&[rest.to_owned()])),
                _ => None,
            };
            let lines = match forwarded {
                Some(Ok(lines)) => lines,
                Some(Err(e)) => vec![format!("err: {e}")],
                None => vec![probe3_ops::run_op_async(&arg).await],
            };
            for line in lines {
                // As `println!` in probe-driver: a stdout that cannot be written is a panic.
                if let Err(e) =
                    probe3_ops::print(probe3_ops::Out::Stdout, &format!("{arg} => {line}")).await
                {
                    panic!("failed printing to stdout: {e}");
                }
            }
        }
        Ok(())
    }
}
