//! Calls ordinary functions of an async child, from wit-bindgen's async runtime
//! (`block_on`): an async component on both sides of an edge that nanoproc
//! carries (wit/async-edge.wit). It imports `test:async-edge/plain` and, of
//! `test:async-edge/jobs`, only the ordinary `add` (the `async` function, the
//! stream and the future beside it in the child's export are never imported).
//! Prints `add 40 2 = 42`, `greet: hello, <first argument>` and `jobs add 2 3 = 5`.

wit_bindgen::generate!({ path: "../wit/async-edge.wit", world: "async-edge-plain" });

use test::async_edge::{jobs, plain};

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "nanoproc".into());
    let (sum, greeting, jobs_sum) =
        wit_bindgen::block_on(
            async move { (plain::add(40, 2), plain::greet(&name), jobs::add(2, 3)) },
        );
    println!("add 40 2 = {sum}");
    println!("greet: {greeting}");
    println!("jobs add 2 3 = {jobs_sum}");
}
