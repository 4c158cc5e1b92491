//! The WASI 0.3 twin of `probe-cmd`: runs each command-line argument as a probe
//! (`probe3-ops`, every op through `wasi:*@0.3.0`) and prints `<arg> => <outcome>`,
//! for `nanoproc run probe3_cmd.wasm --dir ... -- read:/d/x` style tests.
//!
//! The work is done by the `wasi:cli/run@0.3.0` export (wasip3's command export, an
//! `async func`, so ops may wait): arguments from `wasi:cli/environment@0.3.0`, lines
//! through `wasi:cli/stdout@0.3.0`. Being a Rust binary, the component also exports
//! `wasi:cli/run@0.2.0`, which calls `main`: as real 0.3 binaries do, so a host must
//! choose the 0.3 export. `main` says that it was the wrong one and fails.

struct Cmd;

wasip3::cli::command::export!(Cmd);

impl wasip3::exports::cli::run::Guest for Cmd {
    async fn run() -> Result<(), ()> {
        for arg in probe3_ops::arguments().into_iter().skip(1) {
            let outcome = probe3_ops::run_op_async(&arg).await;
            // As `println!` in probe-cmd: a stdout that cannot be written is a panic.
            if let Err(e) =
                probe3_ops::print(probe3_ops::Out::Stdout, &format!("{arg} => {outcome}")).await
            {
                panic!("failed printing to stdout: {e}");
            }
        }
        Ok(())
    }
}

/// std's entry point, which the component exports as `wasi:cli/run@0.2.0`. A host that
/// runs this command through it has picked the wrong `run`: say so (through std, so
/// WASI 0.2's stderr and exit) rather than print nothing and succeed.
fn main() {
    eprintln!(
        "probe3_cmd: a WASI 0.3 command, started through wasi:cli/run@0.2.0: \
         run it through wasi:cli/run@0.3.0"
    );
    std::process::exit(2);
}
