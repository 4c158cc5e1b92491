//! Exports a resource (`test:res/counters`): a parent nanoprocess creates counters and
//! uses them through proxies. `live` counts the counters alive in this instance, so a
//! parent can see that its drops (and `consume`) reach the counters, and `crash`
//! panics so that a test can fail this instance while a parent holds proxies into it.

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-child" });

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

use exports::test::res::counters::{self, CounterBorrow, Guest, GuestCounter};

/// Counters alive in this instance: incremented in the constructor, decremented in
/// `Drop`.
static LIVE: AtomicU32 = AtomicU32::new(0);

struct Child;

impl Guest for Child {
    type Counter = Counter;

    fn total(a: CounterBorrow<'_>, b: CounterBorrow<'_>) -> u32 {
        a.get::<Counter>()
            .value
            .get()
            .wrapping_add(b.get::<Counter>().value.get())
    }

    fn consume(c: counters::Counter) -> u32 {
        // Taking the counter out of its handle drops it here, before the answer.
        let counter: Counter = c.into_inner();
        counter.value.get()
    }

    fn live() -> u32 {
        LIVE.load(Ordering::Relaxed)
    }

    fn crash() -> Result<u32, String> {
        panic!("res-child crashes on purpose");
    }
}

/// A counter that starts at the value given to its constructor.
struct Counter {
    value: Cell<u32>,
}

impl Counter {
    fn starting_at(start: u32) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        Counter {
            value: Cell::new(start),
        }
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter::starting_at(start)
    }

    /// Adds one and returns the new value.
    fn inc(&self) -> u32 {
        let value = self.value.get().wrapping_add(1);
        self.value.set(value);
        value
    }

    fn get(&self) -> u32 {
        self.value.get()
    }

    fn fork(&self) -> counters::Counter {
        counters::Counter::new(Counter::starting_at(self.value.get()))
    }
}

export!(Child);
