//! Clocks and random sources a parent chose for its child: frozen at an instant,
//! or reproducible from a seed. They reveal nothing about the host, which is why a
//! parent may hand them out without holding the real ones.

use std::time::Duration;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// A wall clock that always reads the same instant (nanoseconds since the epoch).
pub(crate) struct FrozenWall(pub u64);

impl HostWallClock for FrozenWall {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.0)
    }
}

/// A monotonic clock that never advances: time-outs computed from it never expire.
pub(crate) struct FrozenMonotonic(pub u64);

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
    }
}

/// Reproducible bytes from a seed: 64 KiB of splitmix64 output, cycled. Good for
/// tests and reproducible runs; it is not secret and repeats.
pub(crate) fn seeded(seed: u64) -> wasmtime_wasi::Deterministic {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(64 * 1024);
    while bytes.len() < 64 * 1024 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    wasmtime_wasi::Deterministic::new(bytes)
}
