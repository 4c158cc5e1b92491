//! The middle of a three-level chain of resources: exports `test:res/meters`, whose
//! `meter` holds a `counter` imported from the level below (`res-child`). A parent's
//! meter is then a proxy to a meter here, which holds a proxy to a counter there;
//! dropping the top proxy must drop both.

wit_bindgen::generate!({ path: "../wit/res.wit", world: "res-mid" });

use std::sync::atomic::{AtomicU32, Ordering};

use exports::test::res::meters::{Guest, GuestMeter};
use test::res::counters::{self, Counter};

/// Meters alive in this instance: incremented in the constructor, decremented in
/// `Drop`.
static LIVE: AtomicU32 = AtomicU32::new(0);

struct Mid;

impl Guest for Mid {
    type Meter = Meter;

    fn live() -> u32 {
        LIVE.load(Ordering::Relaxed)
    }

    fn counters_live() -> u32 {
        counters::live()
    }
}

/// A meter: a counter of the level below, dropped with the meter.
struct Meter {
    counter: Counter,
}

impl Drop for Meter {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl GuestMeter for Meter {
    fn new(start: u32) -> Self {
        let counter = Counter::new(start);
        LIVE.fetch_add(1, Ordering::Relaxed);
        Meter { counter }
    }

    fn tick(&self) -> u32 {
        self.counter.inc()
    }
}

export!(Mid);
