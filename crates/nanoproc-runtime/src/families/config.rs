//! The configuration family: `wasi:config/store`.
//!
//! A nanoprocess reads the values it was granted, by key (`grants.config`). A read
//! of a key it was not granted finds nothing, as a key that does not exist, so that
//! the answer says nothing about its parent's configuration; it is recorded as
//! refused. Every read is recorded by key; values never reach the record, the
//! report or `check`, since a value may be a secret.
//!
//! The bindings are generated from the interface's WIT (`wit/config`, as published
//! with wasmtime-wasi-config 50.0.1): that crate keeps its host trait private, so
//! it cannot be wrapped with a per-key decision and audit, and the store itself is
//! a map lookup.

use crate::audit::{Decision, Recorder};
use crate::state::NanoState;
use nanoproc_caps::ConfigValue;
use std::collections::BTreeMap;
use wasmtime::component::{HasData, Linker};
use wasmtime_wasi::WasiCtxBuilder;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/config",
        world: "wasi:config/imports",
        imports: { default: trappable },
        // A fused nanoprocess's own `store`, under a name of its own.
        named_imports: { "wasi:config/store": wasmtime_wasi::NamedId },
    });
}

use bindings::wasi::config::store;

/// The configuration family's part of a nanoprocess's state: its values.
pub(crate) struct State {
    values: BTreeMap<String, String>,
    recorder: Recorder,
}

pub(crate) fn build(
    holding: &BTreeMap<String, ConfigValue>,
    _wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    Ok(State {
        values: holding
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect(),
        recorder: cx.recorder.clone(),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[("wasi:config/store", "0.2.0-rc.1")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Config as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: super::Surface = &[("wasi:config/store", &["config"])];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: super::Surface = &[];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    store::add_to_linker::<NanoState, Guarded>(linker, |s| &mut s.families.config)
}

struct Guarded;
impl HasData for Guarded {
    type Data<'a> = &'a mut State;
}

impl store::Host for &mut State {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        let op = "wasi:config/store.get";
        let value = self.values.get(&key).cloned();
        let (decision, reason) = match value {
            Some(_) => (Decision::Allowed, None),
            None => (Decision::Refused, Some("not granted".to_string())),
        };
        self.recorder
            .decide("config", op, || Some(key), decision, reason);
        Ok(Ok(value))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        let op = "wasi:config/store.get-all";
        let keys = || {
            (!self.values.is_empty())
                .then(|| self.values.keys().cloned().collect::<Vec<_>>().join(", "))
        };
        self.recorder
            .decide("config", op, keys, Decision::Allowed, None);
        Ok(Ok(self
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}

/// A fused nanoprocess's `wasi:config/store`: its own values.
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    named::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)
}

use bindings::named_imports::wasi::config::store as named;

impl named::Host for super::FusedCall<'_> {
    fn get(
        &mut self,
        id: wasmtime_wasi::NamedId,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        self.0
            .as_fused(id, |s| store::Host::get(&mut &mut s.families.config, key))
    }

    fn get_all(
        &mut self,
        id: wasmtime_wasi::NamedId,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        self.0
            .as_fused(id, |s| store::Host::get_all(&mut &mut s.families.config))
    }
}

/// This family's WASI 0.3 interfaces: none (`wasi:config` has no 0.3 version).
pub(crate) fn add_p3_to_linker(_linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    Ok(())
}
