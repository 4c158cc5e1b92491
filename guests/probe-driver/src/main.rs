//! A command that runs probes given as arguments, locally or in the nanoprocesses it
//! imports, and prints `<arg> => <outcome>` for each answer line.
//!
//! `child:OP` runs OP through the imported `probe`, `sibling:OP` through the imported
//! `sibling`; anything else runs here, under the driver's own grants.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "driver" });

use test::probe::{probe, sibling};

fn main() {
    for arg in std::env::args().skip(1) {
        let forwarded = match arg.split_once(':') {
            Some(("child", rest)) => Some(probe::run(&[rest.to_owned()])),
            Some(("sibling", rest)) => Some(sibling::run(&[rest.to_owned()])),
            _ => None,
        };
        let lines = match forwarded {
            Some(Ok(lines)) => lines,
            Some(Err(e)) => vec![format!("err: {e}")],
            None => vec![probe_ops::run_op(&arg)],
        };
        for line in lines {
            println!("{arg} => {line}");
        }
    }
}
