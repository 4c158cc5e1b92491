//! The exit family: `wasi:cli/exit`.
//!
//! A dependency that exits without the grant is refused (and traps, as `exit` does
//! anyway); one that holds it ends the whole application (see the trampolines).
//! The root always holds it. WASI 0.3's `exit` goes through the same guard.

use crate::audit::Recorder;
use crate::state::NanoState;
use nanoproc_caps::Plain;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::cli::{WasiCliCtxView, WasiCliView};
use wasmtime_wasi::p2::bindings::cli::exit;
use wasmtime_wasi::p2::bindings::named_imports::wasi::cli::exit as named;
use wasmtime_wasi::p3::bindings::cli::exit as p3;
use wasmtime_wasi::{NamedId, WasiCtxBuilder};

/// The exit family's part of a nanoprocess's state.
pub(crate) struct State {
    held: bool,
    recorder: Recorder,
}

pub(crate) fn build(
    holding: &Option<Plain>,
    _wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    Ok(State {
        held: holding.is_some(),
        recorder: cx.recorder.clone(),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] =
    &[("wasi:cli/exit", "0.2."), ("wasi:cli/exit", "0.3.")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Exit as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[("wasi:cli/exit", &["exit"])];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: super::Surface = &[("proc_exit", &["exit"]), ("proc_raise", &["exit"])];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    exit::add_to_linker::<NanoState, Guarded>(linker, view)
}

/// A fused nanoprocess's `exit`, held or refused by its own grant. A fused
/// nanoprocess that holds it ends the whole application, as an isolated one does.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)
}

impl named::Host for super::FusedCall<'_> {
    fn exit(&mut self, id: NamedId, status: Result<(), ()>) -> wasmtime::Result<()> {
        self.0
            .as_fused(id, |s| exit::Host::exit(&mut view(s), status))
    }

    fn exit_with_code(&mut self, id: NamedId, status_code: u8) -> wasmtime::Result<()> {
        self.0.as_fused(id, |s| {
            exit::Host::exit_with_code(&mut view(s), status_code)
        })
    }
}

pub(crate) struct Guard<'a> {
    inner: WasiCliCtxView<'a>,
    state: &'a State,
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = Guard<'a>;
}

fn view(s: &mut NanoState) -> Guard<'_> {
    Guard {
        inner: s.wasi.cli(),
        state: &s.families.exit,
    }
}

impl exit::Host for Guard<'_> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        let op = "wasi:cli/exit.exit";
        self.state.recorder.check(self.state.held, "exit", op)?;
        exit::Host::exit(&mut self.inner, status)
    }

    fn exit_with_code(&mut self, status_code: u8) -> wasmtime::Result<()> {
        let op = "wasi:cli/exit.exit-with-code";
        self.state.recorder.check(self.state.held, "exit", op)?;
        exit::Host::exit_with_code(&mut self.inner, status_code)
    }
}

/// `wasi:cli/exit@0.3`, through the same guard: refused (a trap) without the
/// grant, and with it the same `I32Exit` as in 0.2, which the trampolines and
/// the run read the same way.
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::add_to_linker::<NanoState, Guarded>(linker, view)
}

impl p3::Host for Guard<'_> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        let op = "wasi:cli/exit.exit";
        self.state.recorder.check(self.state.held, "exit", op)?;
        p3::Host::exit(&mut self.inner, status)
    }

    fn exit_with_code(&mut self, status_code: u8) -> wasmtime::Result<()> {
        let op = "wasi:cli/exit.exit-with-code";
        self.state.recorder.check(self.state.held, "exit", op)?;
        p3::Host::exit_with_code(&mut self.inner, status_code)
    }
}
