//! The random family: `wasi:random/random` and `insecure`, and `insecure-seed`.
//!
//! `random` and `insecure` have no error case: a guard asks the holding first and
//! traps on a refusal (a silent zero would let a dependency believe it had what it
//! was denied). Seeded random, chosen by the parent, replaces wasmtime-wasi's real
//! source in the context.
//!
//! `insecure-seed` is not refused, since language runtimes read it at start-up to
//! seed their hash tables and would fail to start without it; but its value follows
//! the `insecure-random` grant. wasmtime-wasi draws it from the host's generator for
//! every instance: 128 real random bits, a source a nanoprocess denied all random
//! could use, and the end of reproducibility under a seed. So a nanoprocess holding
//! real insecure random gets wasmtime-wasi's value; one holding it seeded, a value
//! derived from the seed; one not holding it, a fixed value (its hash tables are
//! then predictable to whoever feeds it input: grant `insecure-random` where that
//! matters).
//!
//! WASI 0.3's three interfaces go through the same guards and context.

use crate::audit::Recorder;
use crate::state::NanoState;
use nanoproc_caps::{RandomHolding, RandomMode};
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::p2::bindings::named_imports::wasi::random as named;
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::p3::bindings::random as p3;
use wasmtime_wasi::random::{WasiRandom, WasiRandomCtx, WasiRandomView};
use wasmtime_wasi::{NamedId, WasiCtxBuilder};

/// The random family's part of a nanoprocess's state.
pub(crate) struct State {
    secure: bool,
    insecure: bool,
    recorder: Recorder,
}

pub(crate) fn build(
    holding: &RandomHolding,
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    if let Some(RandomMode::Seeded(seed)) = holding.secure {
        wasi.secure_random(seeded(seed));
    }
    match holding.insecure {
        Some(RandomMode::Real) => {}
        Some(RandomMode::Seeded(seed)) => {
            wasi.insecure_random(seeded(seed));
            wasi.insecure_random_seed(seed_of(seed));
        }
        None => {
            wasi.insecure_random_seed(UNGRANTED_SEED);
        }
    }
    Ok(State {
        secure: holding.secure.is_some(),
        insecure: holding.insecure.is_some(),
        recorder: cx.recorder.clone(),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] =
    &[("wasi:random/", "0.2."), ("wasi:random/", "0.3.")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Random as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[
    ("wasi:random/random", &["random"]),
    ("wasi:random/insecure", &["insecure-random"]),
    // Not refused, but its value follows the `insecure-random` grant (above).
    ("wasi:random/insecure-seed", &["insecure-random"]),
    ("wasi:random/", &["random", "insecure-random"]),
];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: super::Surface = &[("random_get", &["random"])];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    random::add_to_linker::<NanoState, Guarded>(linker, view)?;
    insecure::add_to_linker::<NanoState, Guarded>(linker, view)?;
    insecure_seed::add_to_linker::<NanoState, WasiRandom>(linker, |s| s.wasi.random())?;
    Ok(())
}

/// A fused nanoprocess's `random`, `insecure` and `insecure-seed`, through its
/// own guard and context.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named::random::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::insecure::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::insecure_seed::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    Ok(())
}

impl named::random::Host for super::FusedCall<'_> {
    fn get_random_bytes(&mut self, id: NamedId, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.0
            .as_fused(id, |s| random::Host::get_random_bytes(&mut view(s), len))
    }

    fn get_random_u64(&mut self, id: NamedId) -> wasmtime::Result<u64> {
        self.0
            .as_fused(id, |s| random::Host::get_random_u64(&mut view(s)))
    }
}

impl named::insecure::Host for super::FusedCall<'_> {
    fn get_insecure_random_bytes(&mut self, id: NamedId, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.0.as_fused(id, |s| {
            insecure::Host::get_insecure_random_bytes(&mut view(s), len)
        })
    }

    fn get_insecure_random_u64(&mut self, id: NamedId) -> wasmtime::Result<u64> {
        self.0.as_fused(id, |s| {
            insecure::Host::get_insecure_random_u64(&mut view(s))
        })
    }
}

impl named::insecure_seed::Host for super::FusedCall<'_> {
    fn insecure_seed(&mut self, id: NamedId) -> wasmtime::Result<(u64, u64)> {
        self.0.as_fused(id, |s| {
            insecure_seed::Host::insecure_seed(&mut s.wasi.random())
        })
    }
}

pub(crate) struct Guard<'a> {
    inner: &'a mut WasiRandomCtx,
    state: &'a State,
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = Guard<'a>;
}

fn view(s: &mut NanoState) -> Guard<'_> {
    Guard {
        inner: s.wasi.random(),
        state: &s.families.random,
    }
}

impl random::Host for Guard<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let op = "wasi:random/random.get-random-bytes";
        self.state.recorder.check(self.state.secure, "random", op)?;
        random::Host::get_random_bytes(self.inner, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        let op = "wasi:random/random.get-random-u64";
        self.state.recorder.check(self.state.secure, "random", op)?;
        random::Host::get_random_u64(self.inner)
    }
}

impl insecure::Host for Guard<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let op = "wasi:random/insecure.get-insecure-random-bytes";
        self.state
            .recorder
            .check(self.state.insecure, "insecure-random", op)?;
        insecure::Host::get_insecure_random_bytes(self.inner, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        let op = "wasi:random/insecure.get-insecure-random-u64";
        self.state
            .recorder
            .check(self.state.insecure, "insecure-random", op)?;
        insecure::Host::get_insecure_random_u64(self.inner)
    }
}

/// The `insecure-seed` of a nanoprocess that holds no insecure random: any fixed
/// value will do, as long as it is the same for every instance.
const UNGRANTED_SEED: u128 = 0x6e61_6e6f_7072_6f63_2d73_6565_642d_3031;

/// The `insecure-seed` of a nanoprocess holding insecure random seeded with `seed`.
fn seed_of(seed: u64) -> u128 {
    let mut state = seed ^ 0x5eed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (u128::from(next()) << 64) | u128::from(next())
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

/// `wasi:random@0.3`, through the same guards (a refusal traps, as in 0.2) and
/// the same context (seeded random, the `insecure-seed` chosen by `build`).
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::random::add_to_linker::<NanoState, Guarded>(linker, view)?;
    p3::insecure::add_to_linker::<NanoState, Guarded>(linker, view)?;
    p3::insecure_seed::add_to_linker::<NanoState, WasiRandom>(linker, |s| s.wasi.random())?;
    Ok(())
}

impl p3::random::Host for Guard<'_> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let op = "wasi:random/random.get-random-bytes";
        self.state.recorder.check(self.state.secure, "random", op)?;
        p3::random::Host::get_random_bytes(self.inner, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        let op = "wasi:random/random.get-random-u64";
        self.state.recorder.check(self.state.secure, "random", op)?;
        p3::random::Host::get_random_u64(self.inner)
    }
}

impl p3::insecure::Host for Guard<'_> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        let op = "wasi:random/insecure.get-insecure-random-bytes";
        self.state
            .recorder
            .check(self.state.insecure, "insecure-random", op)?;
        p3::insecure::Host::get_insecure_random_bytes(self.inner, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        let op = "wasi:random/insecure.get-insecure-random-u64";
        self.state
            .recorder
            .check(self.state.insecure, "insecure-random", op)?;
        p3::insecure::Host::get_insecure_random_u64(self.inner)
    }
}
