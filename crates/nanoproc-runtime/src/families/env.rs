//! The environment family: `wasi:cli/environment` (variables and arguments).
//!
//! Nothing to guard per call: a nanoprocess's context only ever contains the
//! variables it was granted (a `WasiCtxBuilder` starts with none), and its
//! arguments are its name followed by what its parent passes. The first read of
//! the variables is recorded as a use (for `--audit-summary` and `nanoproc learn`).
//! WASI 0.3's `environment` goes through the same guard.

use crate::audit::{Decision, Recorder};
use crate::state::NanoState;
use nanoproc_caps::EnvHolding;
use std::sync::atomic::{AtomicBool, Ordering};
use wasmtime::component::HasData;
use wasmtime::component::Linker;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::p2::bindings::cli::environment;
use wasmtime_wasi::p2::bindings::named_imports::wasi::cli::environment as named;
use wasmtime_wasi::p3::bindings::cli::environment as p3;
use wasmtime_wasi::{NamedId, WasiCtxBuilder};

/// The variables and arguments are all in the context; the family keeps whether
/// the variables were read.
pub(crate) struct State {
    recorder: Recorder,
    read: AtomicBool,
}

pub(crate) fn build(
    holding: &EnvHolding,
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    let vars: Vec<(&str, &str)> = holding
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.value.as_str()))
        .collect();
    wasi.envs(&vars);
    let mut args = vec![cx.node.name.clone()];
    args.extend(holding.args.iter().cloned());
    wasi.args(&args);
    Ok(State {
        recorder: cx.recorder.clone(),
        read: AtomicBool::new(false),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[
    ("wasi:cli/environment", "0.2."),
    ("wasi:cli/environment", "0.3."),
];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Environment as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[
    // One interface serves the variables, the arguments and the working directory.
    ("wasi:cli/environment", &["env", "args"]),
];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: super::Surface = &[
    ("environ_get", &["env"]),
    ("environ_sizes_get", &["env"]),
    ("args_get", &["args"]),
    ("args_sizes_get", &["args"]),
];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    environment::add_to_linker::<NanoState, Guarded>(linker, view)
}

fn view(s: &mut NanoState) -> Guard<'_> {
    Guard {
        inner: s.wasi.cli(),
        state: &s.families.env,
    }
}

/// A fused nanoprocess's environment: its own variables and arguments.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)
}

impl named::Host for super::FusedCall<'_> {
    fn get_environment(&mut self, id: NamedId) -> wasmtime::Result<Vec<(String, String)>> {
        self.0
            .as_fused(id, |s| environment::Host::get_environment(&mut view(s)))
    }

    fn get_arguments(&mut self, id: NamedId) -> wasmtime::Result<Vec<String>> {
        self.0
            .as_fused(id, |s| environment::Host::get_arguments(&mut view(s)))
    }

    fn initial_cwd(&mut self, id: NamedId) -> wasmtime::Result<Option<String>> {
        self.0
            .as_fused(id, |s| environment::Host::initial_cwd(&mut view(s)))
    }
}

pub(crate) struct Guard<'a> {
    inner: wasmtime_wasi::cli::WasiCliCtxView<'a>,
    state: &'a State,
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = Guard<'a>;
}

impl environment::Host for Guard<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        // Only the variables granted are there to read; which of them the guest
        // looks at cannot be seen, so the use is the read itself, once.
        if !self.state.read.swap(true, Ordering::Relaxed) {
            self.state.recorder.decide(
                "env",
                "wasi:cli/environment.get-environment",
                || None,
                Decision::Allowed,
                None,
            );
        }
        environment::Host::get_environment(&mut self.inner)
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        environment::Host::get_arguments(&mut self.inner)
    }

    fn initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        environment::Host::initial_cwd(&mut self.inner)
    }
}

/// `wasi:cli/environment@0.3`, through the same guard: the same context, and the
/// same first read recorded once, whichever generation reads first.
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::add_to_linker::<NanoState, Guarded>(linker, view)
}

impl p3::Host for Guard<'_> {
    fn get_environment(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        environment::Host::get_environment(self)
    }

    fn get_arguments(&mut self) -> wasmtime::Result<Vec<String>> {
        p3::Host::get_arguments(&mut self.inner)
    }

    fn get_initial_cwd(&mut self) -> wasmtime::Result<Option<String>> {
        p3::Host::get_initial_cwd(&mut self.inner)
    }
}
