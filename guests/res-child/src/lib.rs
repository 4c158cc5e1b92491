//! Exports an interface with a resource (`test:res/counters`), which nanoproc refuses
//! to wire across nanoprocesses until it can proxy resources.

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-child" });

use std::cell::Cell;

use exports::test::res::counters::{Guest, GuestCounter};

struct Child;

impl Guest for Child {
    type Counter = Counter;
}

/// A counter that starts at the value given to its constructor.
struct Counter {
    value: Cell<u32>,
}

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter {
            value: Cell::new(start),
        }
    }

    /// Adds one and returns the new value.
    fn inc(&self) -> u32 {
        let value = self.value.get().wrapping_add(1);
        self.value.set(value);
        value
    }
}

export!(Child);
