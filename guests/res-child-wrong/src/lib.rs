//! Exports a `counters` that does NOT match `test:res/counters` in ../wit/res.wit
//! (`counter` has no `get`, `consume` borrows instead of taking its counter), so
//! nanoproc must refuse to wire it to a parent that imports the real one.

wit_bindgen::generate!({ path: "../wit-mismatch/res.wit", world: "res-child" });

use std::cell::Cell;

use exports::test::res::counters::{self, CounterBorrow, Guest, GuestCounter};

struct WrongChild;

impl Guest for WrongChild {
    type Counter = Counter;

    fn total(a: CounterBorrow<'_>, b: CounterBorrow<'_>) -> u32 {
        a.get::<Counter>()
            .value
            .get()
            .wrapping_add(b.get::<Counter>().value.get())
    }

    fn consume(c: CounterBorrow<'_>) -> u32 {
        c.get::<Counter>().value.get()
    }

    fn live() -> u32 {
        0
    }

    fn crash() -> Result<u32, String> {
        Err("not this one".to_owned())
    }
}

/// Only has to exist, with the wrong interface.
struct Counter {
    value: Cell<u32>,
}

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter {
            value: Cell::new(start),
        }
    }

    fn inc(&self) -> u32 {
        let value = self.value.get().wrapping_add(1);
        self.value.set(value);
        value
    }

    fn fork(&self) -> counters::Counter {
        counters::Counter::new(Counter {
            value: Cell::new(self.value.get()),
        })
    }
}

export!(WrongChild);
