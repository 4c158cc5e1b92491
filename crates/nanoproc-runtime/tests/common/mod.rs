//! What the plugin tests share: the host's `kv` family over an in-memory map,
//! grants built as a manifest writes them, a plugin's `transform` called with a
//! command, and a two-level plugin tree.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use nanoproc_runtime::caps::{GrantRequest, GrantValue};
use nanoproc_runtime::host::{HostFamily, ScopeRule};
use nanoproc_runtime::{Plugin, PluginError, Runtime};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const TRANSFORM: &str = "nanoproc:plugins/transform@0.1.0";
pub const KV: &str = "nanoproc:plugins/kv@0.1.0";

/// The host's store behind the `kv` family, and how often a plugin's start
/// function read `hostile/boot` (guests/plugin-hostile).
#[derive(Clone, Default)]
pub struct Kv {
    pub map: Arc<Mutex<BTreeMap<String, String>>>,
    pub boots: Arc<AtomicU64>,
}

impl Kv {
    pub fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }

    pub fn insert(&self, key: &str, value: &str) {
        self.map.lock().unwrap().insert(key.into(), value.into());
    }
}

/// What a refused call of the `kv` family does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Returns the interface's `err`.
    Err,
    /// Traps the caller (no `refusing` value declared).
    Trap,
}

/// The host's kv family over `kv`, scoped by `rule`. Getting the key `panic`
/// panics, as a bug in a host function would.
pub fn kv_family(kv: &Kv, rule: ScopeRule, refused: Refused) -> HostFamily {
    let (get_kv, set_kv) = (kv.clone(), kv.clone());
    let family = HostFamily::new("kv", rule).func(
        KV,
        "get",
        |(key,): &(String,)| Some(key.clone()),
        move |_call, (key,): (String,)| {
            if key == "hostile/boot" {
                get_kv.boots.fetch_add(1, Ordering::SeqCst);
            }
            // A bug in the host's own code, on demand.
            if key == "panic" {
                panic!("a bug in the host's kv");
            }
            Ok((Ok::<_, String>(
                get_kv.map.lock().unwrap().get(&key).cloned(),
            ),))
        },
    );
    let family = match refused {
        Refused::Err => family.refusing(|reason: String| (Err::<Option<String>, String>(reason),)),
        Refused::Trap => family,
    };
    let family = family.func(
        KV,
        "set",
        |(key, _): &(String, String)| Some(key.clone()),
        move |_call, (key, value): (String, String)| {
            set_kv.map.lock().unwrap().insert(key, value);
            Ok((Ok::<(), String>(()),))
        },
    );
    match refused {
        Refused::Err => family.refusing(|reason: String| (Err::<(), String>(reason),)),
        Refused::Trap => family,
    }
}

/// A runtime serving the kv family over `kv`, refusals as `err`.
pub fn runtime_with(kv: &Kv, rule: ScopeRule) -> Runtime {
    Runtime::new()
        .unwrap()
        .with_host_family(kv_family(kv, rule, Refused::Err))
        .unwrap()
}

/// Grants as a manifest's `grants` table would give them.
pub fn grants(entries: &[(&str, GrantValue)]) -> GrantRequest {
    let mut request = GrantRequest::default();
    for (key, value) in entries {
        request.parse(key, value).expect("a valid grant");
    }
    request
}

/// `host = { kv = [scopes...] }`.
pub fn kv_grant(scopes: &[&str]) -> (&'static str, GrantValue) {
    (
        "host",
        GrantValue::table([(
            "kv",
            GrantValue::list(scopes.iter().map(|s| GrantValue::text(*s)).collect()),
        )]),
    )
}

/// The plugin's `transform` of `input` (a command to the probe and hostile
/// plugins).
pub fn call(plugin: &mut Plugin, input: &str) -> Result<String, PluginError> {
    let transform = plugin.typed::<(&str,), (String,)>(TRANSFORM, "transform")?;
    plugin.call_typed(&transform, (input,)).map(|(out,)| out)
}

/// A manifest tree in `dir`: the relay (root) holds `root_kv`, its dependency
/// `child` (a guest's name) holds `child_kv`.
pub fn relay_tree(dir: &Path, root_kv: &str, child: &str, child_kv: &str) -> PathBuf {
    let manifest = dir.join("nanoproc.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"
[app]
root = "relay"

[nanoprocess.relay]
component = {relay:?}
deps = {{ "nanoproc:plugins/transform@0.1.0" = "child" }}
grants.host = {{ kv = {root_kv} }}

[nanoprocess.child]
component = {component:?}
grants.host = {{ kv = {child_kv} }}
"#,
            relay = xtask::guest("plugin_relay"),
            component = xtask::guest(child),
        ),
    )
    .unwrap();
    manifest
}

/// A driver as the root, importing `leaf` (as `test:probe/probe`) and `sib` (as
/// `test:probe/sibling`), both one leaf component, each dependency reporting its
/// failures as errors; `guests` names the driver's and the leaf's guests, and
/// `driver`, `leaf`, `sib` are more lines of each one's table (grants, policy).
pub fn driver_tree(
    dir: &Path,
    guests: (&str, &str),
    driver: &str,
    leaf: &str,
    sib: &str,
) -> PathBuf {
    let manifest = dir.join("nanoproc.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver_wasm}"
deps = {{ "test:probe/probe" = "leaf", "test:probe/sibling" = "sib" }}
{driver}

[nanoprocess.leaf]
component = "{leaf_wasm}"
on-failure = "error"
{leaf}

[nanoprocess.sib]
component = "{leaf_wasm}"
on-failure = "error"
{sib}
"#,
            driver_wasm = xtask::guest(guests.0).display(),
            leaf_wasm = xtask::guest(guests.1).display(),
        ),
    )
    .unwrap();
    manifest
}

/// A manifest checked as `nanoproc run` checks it, with `args` for the root.
pub fn check(manifest: &Path, args: &[&str]) -> Result<nanoproc_runtime::Plan, String> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Runtime::new()
        .unwrap()
        .check_manifest(manifest, &args)
        .map_err(|e| e.to_string())
}

/// [`check`], which must succeed.
pub fn plan(manifest: &Path, args: &[&str]) -> nanoproc_runtime::Plan {
    check(manifest, args).unwrap_or_else(|e| panic!("the manifest checks: {e}"))
}
