//! The clocks family: `wasi:clocks/wall-clock` and `monotonic-clock`.
//!
//! Both interfaces have no error case, so a guard implements wasmtime-wasi's own
//! host traits, asks the nanoprocess's holding first and then delegates: a refused
//! call traps with a [`crate::CapabilityRefused`] that names the nanoprocess and the
//! clock (a silent zero or a fake clock would let a dependency believe it had what
//! it was denied). A frozen clock, chosen by the parent, replaces wasmtime-wasi's
//! real one in the context: it reveals nothing about the host, which is why a parent
//! may hand it out without holding the real one.
//!
//! WASI 0.3's `system-clock` (the wall clock) and `monotonic-clock` go through
//! the same guards and context; its waits (`wait-for`, `wait-until`) are asked
//! of the holding before they start, as 0.2's `subscribe-*` are.

use crate::audit::Recorder;
use crate::state::NanoState;
use nanoproc_caps::{ClockMode, ClocksHolding};
use std::time::Duration;
use wasmtime::component::Accessor;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
use wasmtime_wasi::p2::bindings::named_imports::wasi::clocks as named;
use wasmtime_wasi::p3::bindings::clocks as p3;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{NamedId, WasiCtxBuilder};

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

/// The clocks family's part of a nanoprocess's state.
pub(crate) struct State {
    wall: bool,
    monotonic: bool,
    recorder: Recorder,
}

pub(crate) fn build(
    holding: &ClocksHolding,
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    if let Some(ClockMode::Frozen(ns)) = holding.wall {
        wasi.wall_clock(FrozenWall(ns));
    }
    if let Some(ClockMode::Frozen(ns)) = holding.monotonic {
        wasi.monotonic_clock(FrozenMonotonic(ns));
    }
    Ok(State {
        wall: holding.wall.is_some(),
        monotonic: holding.monotonic.is_some(),
        recorder: cx.recorder.clone(),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[
    ("wasi:clocks/", "0.2."),
    // Not `timezone` (see `add_p3_to_linker`).
    ("wasi:clocks/types", "0.3."),
    ("wasi:clocks/monotonic-clock", "0.3."),
    ("wasi:clocks/system-clock", "0.3."),
];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Clocks as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[
    ("wasi:clocks/monotonic-clock", &["monotonic-clock"]),
    ("wasi:clocks/wall-clock", &["wall-clock"]),
    // WASI 0.3's name for the wall clock.
    ("wasi:clocks/system-clock", &["wall-clock"]),
    // The time zone of a wall-clock instant: served with the wall clock.
    ("wasi:clocks/timezone", &["wall-clock"]),
    ("wasi:clocks/", &["wall-clock", "monotonic-clock"]),
    // WASI 0.3: only the type of a duration.
    ("wasi:clocks/types", &[]),
];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
// Which clock a call reads is its first argument, known only when it runs.
pub(crate) const PREVIEW1: super::Surface = &[
    ("clock_time_get", &["wall-clock", "monotonic-clock"]),
    ("clock_res_get", &["wall-clock", "monotonic-clock"]),
];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    wall_clock::add_to_linker::<NanoState, Guarded>(linker, view)?;
    monotonic_clock::add_to_linker::<NanoState, Guarded>(linker, view)?;
    Ok(())
}

/// A fused nanoprocess's clocks, through its own guard and context.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named::wall_clock::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::monotonic_clock::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    Ok(())
}

impl named::wall_clock::Host for super::FusedCall<'_> {
    fn now(&mut self, id: NamedId) -> wasmtime::Result<wall_clock::Datetime> {
        self.0.as_fused(id, |s| wall_clock::Host::now(&mut view(s)))
    }

    fn resolution(&mut self, id: NamedId) -> wasmtime::Result<wall_clock::Datetime> {
        self.0
            .as_fused(id, |s| wall_clock::Host::resolution(&mut view(s)))
    }
}

impl named::monotonic_clock::Host for super::FusedCall<'_> {
    fn now(&mut self, id: NamedId) -> wasmtime::Result<monotonic_clock::Instant> {
        self.0
            .as_fused(id, |s| monotonic_clock::Host::now(&mut view(s)))
    }

    fn resolution(&mut self, id: NamedId) -> wasmtime::Result<monotonic_clock::Duration> {
        self.0
            .as_fused(id, |s| monotonic_clock::Host::resolution(&mut view(s)))
    }

    fn subscribe_instant(
        &mut self,
        id: NamedId,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.0.as_fused(id, |s| {
            monotonic_clock::Host::subscribe_instant(&mut view(s), when)
        })
    }

    fn subscribe_duration(
        &mut self,
        id: NamedId,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.0.as_fused(id, |s| {
            monotonic_clock::Host::subscribe_duration(&mut view(s), duration)
        })
    }
}

pub(crate) struct Guard<'a> {
    inner: WasiClocksCtxView<'a>,
    state: &'a State,
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = Guard<'a>;
}

fn view(s: &mut NanoState) -> Guard<'_> {
    Guard {
        inner: s.wasi.clocks(),
        state: &s.families.clocks,
    }
}

impl Guard<'_> {
    fn wall(&self, operation: &'static str) -> wasmtime::Result<()> {
        self.state
            .recorder
            .check(self.state.wall, "wall-clock", operation)
    }

    fn monotonic(&self, operation: &'static str) -> wasmtime::Result<()> {
        self.state
            .recorder
            .check(self.state.monotonic, "monotonic-clock", operation)
    }
}

impl wall_clock::Host for Guard<'_> {
    fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        self.wall("wasi:clocks/wall-clock.now")?;
        wall_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        self.wall("wasi:clocks/wall-clock.resolution")?;
        wall_clock::Host::resolution(&mut self.inner)
    }
}

impl monotonic_clock::Host for Guard<'_> {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.monotonic("wasi:clocks/monotonic-clock.now")?;
        monotonic_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        self.monotonic("wasi:clocks/monotonic-clock.resolution")?;
        monotonic_clock::Host::resolution(&mut self.inner)
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.monotonic("wasi:clocks/monotonic-clock.subscribe-instant")?;
        monotonic_clock::Host::subscribe_instant(&mut self.inner, when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.monotonic("wasi:clocks/monotonic-clock.subscribe-duration")?;
        monotonic_clock::Host::subscribe_duration(&mut self.inner, duration)
    }
}

/// `wasi:clocks@0.3`: `system-clock` (the wall clock's new name) and
/// `monotonic-clock`, through the same guards, and `types` (only a type).
/// `timezone` is not linked: it is unstable in WASI 0.3 and wasmtime-wasi has
/// no implementation of it, so a component importing it fails to link.
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::types::add_to_linker::<NanoState, Guarded>(linker, view)?;
    p3::system_clock::add_to_linker::<NanoState, Guarded>(linker, view)?;
    p3::monotonic_clock::add_to_linker::<NanoState, Guarded>(linker, view)?;
    Ok(())
}

impl p3::types::Host for Guard<'_> {}

impl p3::system_clock::Host for Guard<'_> {
    fn now(&mut self) -> wasmtime::Result<p3::system_clock::Instant> {
        self.wall("wasi:clocks/system-clock.now")?;
        p3::system_clock::Host::now(&mut self.inner)
    }

    fn get_resolution(&mut self) -> wasmtime::Result<p3::types::Duration> {
        self.wall("wasi:clocks/system-clock.get-resolution")?;
        p3::system_clock::Host::get_resolution(&mut self.inner)
    }
}

impl p3::monotonic_clock::Host for Guard<'_> {
    fn now(&mut self) -> wasmtime::Result<p3::monotonic_clock::Mark> {
        self.monotonic("wasi:clocks/monotonic-clock.now")?;
        p3::monotonic_clock::Host::now(&mut self.inner)
    }

    fn get_resolution(&mut self) -> wasmtime::Result<p3::types::Duration> {
        self.monotonic("wasi:clocks/monotonic-clock.get-resolution")?;
        p3::monotonic_clock::Host::get_resolution(&mut self.inner)
    }
}

/// The waits, asked of the holding before they start: a refusal traps (they
/// have no error case), as `subscribe-*` do in 0.2. The wait itself is
/// wasmtime-wasi's, timed by the context's monotonic clock (a frozen one's
/// `wait-until` waits the distance to its frozen instant); the call's time limit
/// and the run's interrupt bound it while the guest awaits it (`crate::drive`).
impl p3::monotonic_clock::HostWithStore<NanoState> for Guarded {
    async fn wait_until(
        store: &Accessor<NanoState, Self>,
        when: p3::monotonic_clock::Mark,
    ) -> wasmtime::Result<()> {
        store.with(|mut s| s.get().monotonic("wasi:clocks/monotonic-clock.wait-until"))?;
        let inner = store.with_getter::<WasiClocks>(|s| s.wasi.clocks());
        <WasiClocks as p3::monotonic_clock::HostWithStore<NanoState>>::wait_until(&inner, when)
            .await
    }

    async fn wait_for(
        store: &Accessor<NanoState, Self>,
        how_long: p3::types::Duration,
    ) -> wasmtime::Result<()> {
        store.with(|mut s| s.get().monotonic("wasi:clocks/monotonic-clock.wait-for"))?;
        let inner = store.with_getter::<WasiClocks>(|s| s.wasi.clocks());
        <WasiClocks as p3::monotonic_clock::HostWithStore<NanoState>>::wait_for(&inner, how_long)
            .await
    }
}
