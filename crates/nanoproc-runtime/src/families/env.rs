//! The environment family: `wasi:cli/environment` (variables and arguments).
//!
//! Nothing to guard per call: a nanoprocess's context only ever contains the
//! variables it was granted (a `WasiCtxBuilder` starts with none), and its
//! arguments are its name followed by what its parent passes.

use crate::state::NanoState;
use nanoproc_caps::EnvHolding;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::p2::bindings::cli::environment;

/// The environment family keeps nothing of its own: it is all in the context.
pub(crate) struct State;

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
    Ok(State)
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[("wasi:cli/environment", "0.2.")];

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
    environment::add_to_linker::<NanoState, WasiCli>(linker, |s| s.wasi.cli())
}
