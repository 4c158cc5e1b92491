//! A dependency that runs the red-team stdio ops (see `ops.rs`) on request, as
//! `probe`, `sibling` and `downstream` of `wit/probe.wit`'s leaf world.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "leaf" });

mod ops;

use exports::test::probe::{downstream, probe, sibling};

struct Leaf;

fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
    Ok(ops.iter().map(|op| ops::run_op(op)).collect())
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
