//! A leaf nanoprocess that runs capability probes (see `probe-ops`) on request.
//!
//! It exports the same probe twice, as `probe` and `sibling`, so a driver can import
//! two instances of this one component as siblings with different grants.

wit_bindgen::generate!({ path: "../wit/probe.wit", world: "leaf" });

use exports::test::probe::{downstream, probe, sibling};

struct Leaf;

impl probe::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

impl sibling::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

impl downstream::Guest for Leaf {
    fn run(ops: Vec<String>) -> Result<Vec<String>, String> {
        Ok(ops.iter().map(|op| probe_ops::run_op(op)).collect())
    }
}

export!(Leaf);
