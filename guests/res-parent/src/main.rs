//! Uses the resource exported by `res-child`: counter(5), incremented twice, prints
//! "counter: 7".

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-parent" });

use test::res::counters::Counter;

fn main() {
    let counter = Counter::new(5);
    counter.inc();
    let value = counter.inc();
    println!("counter: {value}");
}
