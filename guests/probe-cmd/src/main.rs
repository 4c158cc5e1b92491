//! Runs each command-line argument as a probe under its own grants and prints
//! `<arg> => <outcome>`: the standalone twin of `probe-driver`, for `nanoproc run
//! probe_cmd.wasm --dir ... -- read:/d/x` style tests.

fn main() {
    for arg in std::env::args().skip(1) {
        println!("{arg} => {}", probe_ops::run_op(&arg));
    }
}
