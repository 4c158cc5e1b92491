//! `hostile3_leaf`: the red team's hostile WASI 0.3 nanoprocess (see `ops`). As a
//! dependency it exports `wit/probe.wit`'s `leaf` world (ordinary functions, each
//! running its ops under `wit_bindgen::block_on`); as a root, `wasi:cli/run@0.3.0`
//! (an `async` function, whose ops may wait), printing `<arg> => <outcome>` per
//! argument.

mod ops;

wit_bindgen_p3::generate!({
    path: "../wit/probe.wit",
    world: "leaf",
    runtime_path: "wit_bindgen_p3::rt",
});

use exports::test::probe::{downstream, probe, sibling};

struct Leaf;

fn run(list: Vec<String>) -> Result<Vec<String>, String> {
    Ok(list.iter().map(|op| ops::run_sync(op)).collect())
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

wasip3::cli::command::export!(Leaf);

impl wasip3::exports::cli::run::Guest for Leaf {
    async fn run() -> Result<(), ()> {
        for arg in ops::arguments() {
            let outcome = ops::run_async(&arg).await;
            ops::print(&format!("{arg} => {outcome}"))
                .await
                .map_err(|_| ())?;
        }
        Ok(())
    }
}
