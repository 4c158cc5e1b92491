//! Red team: capability families the host application defines (`grants.host`),
//! imported by fused nanoprocesses. A fused child's import of a host interface
//! becomes a named import of its store host's composite, linked once more per
//! persona (`HostFamilies::add_named_to_linker`); each attack here tries to make
//! a fused nanoprocess act with another's holding (its parent's, a sibling's,
//! the store host's), be recorded or seen by the host under another's path, or
//! claim a persona's holding by naming an import itself.
//!
//! The trees are real components: the plugin guests (relay, probe), a probe
//! whose interface names are rewritten byte for byte (same length, so the
//! component stays valid: a second `transform` to export, a second version of
//! `kv` to import), and hand-written WAT where a guest must be shaped so.
//!
//! Attacks that fail today guard the property as ordinary tests; a real problem
//! is a test marked `
use nanoproc_runtime::host::{HostFamily, ScopeRule};
use nanoproc_runtime::{Audit, Decision, Placement, Plugin, PluginError, PluginOptions, Runtime};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::{KV, TRANSFORM, call};

/// What the host's functions were told, per call: (family, caller, key).
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

/// Every decision recorded: (nanoprocess, family, target, decision).
type Events = Arc<Mutex<Vec<(String, String, String, Decision)>>>;

/// A kv family named `name` serving `interface` (any version if it has none)
/// over `store`; every call that reaches the host is noted in `seen` with the
/// caller [`nanoproc_runtime::host::HostCall::nanoprocess`] names. Refusals
/// return `err` when `refusing`, else trap.
fn kv_family(
    name: &'static str,
    interface: &str,
    store: &Arc<Mutex<std::collections::BTreeMap<String, String>>>,
    seen: &Seen,
    refusing: bool,
) -> HostFamily {
    let (get_store, set_store) = (store.clone(), store.clone());
    let (get_seen, set_seen) = (seen.clone(), seen.clone());
    let family = HostFamily::new(name, ScopeRule::Prefix).func(
        interface,
        "get",
        |(key,): &(String,)| Some(key.clone()),
        move |call, (key,): (String,)| {
            get_seen
                .lock()
                .unwrap()
                .push((name.into(), call.nanoprocess().into(), key.clone()));
            Ok((Ok::<_, String>(
                get_store.lock().unwrap().get(&key).cloned(),
            ),))
        },
    );
    let family = if refusing {
        family.refusing(|reason: String| (Err::<Option<String>, String>(reason),))
    } else {
        family
    };
    let family = family.func(
        interface,
        "set",
        |(key, _): &(String, String)| Some(key.clone()),
        move |call, (key, value): (String, String)| {
            set_seen
                .lock()
                .unwrap()
                .push((name.into(), call.nanoprocess().into(), key.clone()));
            set_store.lock().unwrap().insert(key, value);
            Ok((Ok::<(), String>(()),))
        },
    );
    if refusing {
        family.refusing(|reason: String| (Err::<(), String>(reason),))
    } else {
        family
    }
}

/// The host's side of one scene: its store, what its functions saw, and every
/// decision recorded (allowed ones too, through a callback).
#[derive(Clone, Default)]
struct Host {
    store: Arc<Mutex<std::collections::BTreeMap<String, String>>>,
    seen: Seen,
    events: Events,
}

impl Host {
    /// An audit whose every decision lands in `events` as (nanoprocess,
    /// family, target, decision).
    fn audit(&self) -> Audit {
        let events = self.events.clone();
        Audit::new().with_callback(move |e| {
            events.lock().unwrap().push((
                e.nanoprocess.to_string(),
                e.capability.to_string(),
                e.target.clone().unwrap_or_default(),
                e.decision,
            ))
        })
    }

    fn runtime(&self, families: &[(&'static str, &str)], refusing: bool) -> Runtime {
        let mut runtime = Runtime::new().unwrap();
        for (name, interface) in families {
            runtime = runtime
                .with_host_family(kv_family(
                    name,
                    interface,
                    &self.store,
                    &self.seen,
                    refusing,
                ))
                .unwrap();
        }
        runtime
    }

    fn keys(&self) -> Vec<String> {
        self.store.lock().unwrap().keys().cloned().collect()
    }

    /// The decisions recorded for `key`: (nanoprocess, family, decision).
    fn decisions(&self, key: &str) -> Vec<(String, String, Decision)> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, t, _)| t == key)
            .map(|(w, f, _, d)| (w.clone(), f.clone(), *d))
            .collect()
    }

    /// Who the host's functions were told called with `key`: (family, caller).
    fn callers(&self, key: &str) -> Vec<(String, String)> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, _, k)| k == key)
            .map(|(f, w, _)| (f.clone(), w.clone()))
            .collect()
    }
}

/// `bytes` with every occurrence of `from` replaced by `to` (of the same length:
/// every name in a component is length-prefixed).
fn rewrite(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    rewrite_bytes(bytes, from.as_bytes(), to.as_bytes())
}

fn rewrite_bytes(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "{from:?} -> {to:?}");
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut replaced = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
            replaced += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    assert!(replaced > 0, "nothing to rewrite");
    out
}

/// The probe guest with its names rewritten (`(from, to)` pairs), written into
/// `dir` as `name`.
fn probe_rewritten(dir: &Path, name: &str, rewrites: &[(&str, &str)]) -> PathBuf {
    let mut bytes = std::fs::read(xtask::guest("plugin_probe")).unwrap();
    for (from, to) in rewrites {
        bytes = rewrite(&bytes, from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `i32.const` of four bytes read as a little-endian word, as encoded in code.
fn i32_const(word: &[u8; 4]) -> Vec<u8> {
    let mut v = i64::from(i32::from_le_bytes(*word));
    let mut out = vec![0x41];
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0) {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The second transform interface: the probe exporting it serves a parent's
/// second dependency slot.
const TRANSFORN: &str = "nanoproc:plugins/transforn@0.1.0";

/// A library root that imports `transform` (from `a`) and `transforn` (from
/// `b`) and exports `transform`: an input `b:REST` goes to `b` as `REST`, any
/// other to `a`. It imports no capability of its own. `extra` are more imports
/// (never used by its code).
fn fanout_wat(extra: &str) -> String {
    format!(
        r#"(component
  (type $t (instance (export "transform" (func (param "input" string) (result string)))))
  (import "{TRANSFORM}" (instance $a (type $t)))
  (import "{TRANSFORN}" (instance $b (type $t)))
  {extra}
  (core module $mem
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $r i32)
      (local.set $r
        (i32.and
          (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
          (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
      (global.set $next (i32.add (local.get $r) (local.get 3)))
      (block
        (br_if 0 (i32.le_u (global.get $next) (i32.mul (memory.size) (i32.const 65536))))
        (drop (memory.grow
          (i32.add
            (i32.shr_u
              (i32.sub (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
              (i32.const 16))
            (i32.const 1)))))
      (local.get $r)))
  (core instance $m (instantiate $mem))
  (alias core export $m "memory" (core memory $memory))
  (alias core export $m "realloc" (core func $realloc))
  (alias export $a "transform" (func $fa))
  (alias export $b "transform" (func $fb))
  (core func $la (canon lower (func $fa) (memory $memory) (realloc $realloc)))
  (core func $lb (canon lower (func $fb) (memory $memory) (realloc $realloc)))
  (core module $main
    (import "m" "memory" (memory 1))
    (import "m" "a" (func $a (param i32 i32 i32)))
    (import "m" "b" (func $b (param i32 i32 i32)))
    (func (export "transform") (param $p i32) (param $n i32) (result i32)
      (if (i32.and
            (i32.ge_u (local.get $n) (i32.const 2))
            (i32.and
              (i32.eq (i32.load8_u (local.get $p)) (i32.const 98))
              (i32.eq (i32.load8_u offset=1 (local.get $p)) (i32.const 58))))
        (then
          (call $b (i32.add (local.get $p) (i32.const 2)) (i32.sub (local.get $n) (i32.const 2)) (i32.const 16))
          (return (i32.const 16))))
      (call $a (local.get $p) (local.get $n) (i32.const 16))
      (i32.const 16)))
  (core instance $args
    (export "memory" (memory $memory))
    (export "a" (func $la))
    (export "b" (func $lb)))
  (core instance $main (instantiate $main (with "m" (instance $args))))
  (func $transform (param "input" string) (result string)
    (canon lift (core func $main "transform") (memory $memory) (realloc $realloc)))
  (instance $out (export "transform" (func $transform)))
  (export "{TRANSFORM}" (instance $out))
)"#
    )
}

fn write_wat(dir: &Path, name: &str, text: &str) -> PathBuf {
    let bytes = wat::parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A plugin tree: `root` (a component) with dependencies `a` (serving
/// `transform`) and `b` (serving `transforn`), each `isolation` and with its
/// own extra lines (grants); `root_lines` for the root.
fn fanout_manifest(
    dir: &Path,
    root: &Path,
    root_lines: &str,
    (a, a_lines): (&Path, &str),
    (b, b_lines): (&Path, &str),
    isolation: &str,
) -> PathBuf {
    let manifest = dir.join(format!("fanout-{isolation}.toml"));
    std::fs::write(
        &manifest,
        format!(
            r#"[app]
root = "root"

[nanoprocess.root]
component = {root:?}
deps = {{ "{TRANSFORM}" = "a", "{TRANSFORN}" = "b" }}
{root_lines}

[nanoprocess.a]
component = {a:?}
isolation = "{isolation}"
{a_lines}

[nanoprocess.b]
component = {b:?}
isolation = "{isolation}"
{b_lines}
"#
        ),
    )
    .unwrap();
    manifest
}

fn plugin(runtime: &Runtime, manifest: &Path, audit: &Audit) -> (Plugin, Vec<Placement>) {
    let plan = runtime
        .check_plugin_manifest(manifest)
        .unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let placements = plan.nodes().iter().map(|n| n.placement).collect();
    let plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    (plugin, placements)
}

fn answer(plugin: &mut Plugin, input: &str) -> String {
    call(plugin, input).unwrap_or_else(|e| panic!("{input}: {e}"))
}

// 1. Two fused siblings with disjoint scopes of one family, under a root that
// holds their union and imports nothing of it itself.

/// Each sibling reaches its own prefix only: not the other's, not the root's
/// (its parent's) beyond its own, and every call is decided, recorded and told
/// to the host under its own path. Fused and isolated answer alike.
#[test]
fn fused_siblings_each_hold_only_their_own_scope_of_a_host_family() {
    let dir = tempfile::tempdir().unwrap();
    let root = write_wat(dir.path(), "fanout.wasm", &fanout_wat(""));
    let b = probe_rewritten(dir.path(), "probe_b.wasm", &[(TRANSFORM, TRANSFORN)]);
    let a = xtask::guest("plugin_probe");
    let mut answers = Vec::new();
    for isolation in ["isolated", "fused"] {
        let host = Host::default();
        let runtime = host.runtime(&[("kv", KV)], true);
        let manifest = fanout_manifest(
            dir.path(),
            &root,
            "grants.host = { kv = [\"s/\"] }",
            (&a, "grants.host = { kv = [\"s/a/\"] }"),
            (&b, "grants.host = { kv = [\"s/b/\"] }"),
            isolation,
        );
        let audit = host.audit();
        let (mut p, placements) = plugin(&runtime, &manifest, &audit);
        if isolation == "fused" {
            assert_eq!(
                placements,
                [
                    Placement::OwnStore,
                    Placement::FusedInto { host: 0 },
                    Placement::FusedInto { host: 0 }
                ]
            );
        }
        let mut got = Vec::new();
        for input in [
            "set s/a/1 a",
            "b:set s/b/1 b",
            "set s/b/2 a-into-b",
            "b:set s/a/2 b-into-a",
            "set s/root a-into-root",
            "b:set s/root b-into-root",
            "b:get s/a/1",
            "get s/b/1",
            "get s/a/1",
            "b:get s/b/1",
            // After the refusals, each is still itself.
            "set s/a/3 a",
            "b:set s/b/3 b",
        ] {
            got.push(answer(&mut p, input));
        }
        let ok = |i: usize| assert!(got[i].starts_with("ok:"), "{isolation} {i}: {got:?}");
        let refused = |i: usize| {
            assert!(
                got[i].starts_with("err:") && got[i].contains("outside its scopes of host.kv"),
                "{isolation} {i}: {got:?}"
            )
        };
        for i in [0, 1, 8, 9, 10, 11] {
            ok(i);
        }
        for i in [2, 3, 4, 5, 6, 7] {
            refused(i);
        }
        assert_eq!(got[8], "ok:Some(\"a\")");
        assert_eq!(got[9], "ok:Some(\"b\")");
        assert_eq!(host.keys(), ["s/a/1", "s/a/3", "s/b/1", "s/b/3"]);
        // Recorded, and told to the host, under each one's own path.
        for (key, who, other) in [("s/a/1", "root/a", "root/b"), ("s/b/1", "root/b", "root/a")] {
            // Its own set and get, allowed; the other's get, refused.
            let decisions = host.decisions(key);
            assert_eq!(
                decisions,
                [
                    (who.to_string(), "kv".to_string(), Decision::Allowed),
                    (other.to_string(), "kv".to_string(), Decision::Refused),
                    (who.to_string(), "kv".to_string(), Decision::Allowed),
                ],
                "{isolation} {key}"
            );
            assert_eq!(
                host.callers(key),
                vec![("kv".to_string(), who.to_string()); 2],
                "{isolation}"
            );
        }
        for (key, who) in [("s/b/2", "root/a"), ("s/a/2", "root/b")] {
            assert_eq!(
                host.decisions(key),
                [(who.to_string(), "kv".to_string(), Decision::Refused)],
                "{isolation} {key}"
            );
            assert!(host.callers(key).is_empty(), "{isolation} {key}");
        }
        let root = host.decisions("s/root");
        assert_eq!(root.len(), 2, "{isolation}: {root:?}");
        assert!(
            root.iter()
                .all(|(w, _, d)| w != "root" && *d == Decision::Refused),
            "{isolation}: {root:?}"
        );
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
}

/// A fused sibling granted nothing of the family, beside one granted it and a
/// root holding all of it: refused every call as itself, never served with the
/// store host's holding or its sibling's.
#[test]
fn a_fused_sibling_granted_nothing_gets_nothing_of_its_store_hosts_or_siblings_holding() {
    let dir = tempfile::tempdir().unwrap();
    let root = write_wat(dir.path(), "fanout.wasm", &fanout_wat(""));
    let b = probe_rewritten(dir.path(), "probe_b.wasm", &[(TRANSFORM, TRANSFORN)]);
    let a = xtask::guest("plugin_probe");
    let host = Host::default();
    let runtime = host.runtime(&[("kv", KV)], true);
    let manifest = fanout_manifest(
        dir.path(),
        &root,
        "grants.host = { kv = [\"\"] }",
        (&a, "grants.host = { kv = [\"\"] }"),
        (&b, ""),
        "fused",
    );
    let audit = host.audit();
    let (mut p, _) = plugin(&runtime, &manifest, &audit);
    assert_eq!(answer(&mut p, "set x 1"), "ok:()");
    for input in ["b:set x 2", "b:get x", "b:set y 3", "b:get "] {
        let out = answer(&mut p, input);
        assert!(
            out.starts_with("err:") && out.contains("not granted"),
            "{input}: {out}"
        );
        assert!(out.contains("`root/b`"), "{input}: {out}");
    }
    assert_eq!(answer(&mut p, "get x"), "ok:Some(\"1\")");
    assert_eq!(host.keys(), ["x"]);
    let refusals = audit.refusals();
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(refusals.iter().all(|e| &*e.nanoprocess == "root/b"));
    assert!(
        host.seen
            .lock()
            .unwrap()
            .iter()
            .all(|(_, w, _)| w == "root/a")
    );
}

// 2. A fused chain, every level importing the family: the store host (relay),
// a fused relay under it, a fused probe under that.

fn chain_manifest(dir: &Path, root_kv: &str, mid_kv: &str, leaf_kv: &str) -> PathBuf {
    let relay = std::fs::read(xtask::guest("plugin_relay")).unwrap();
    let mid = dir.join("relay_mid.wasm");
    // The relay tests its input for "here " as one `i32.const` of the bytes
    // "here" (then the space): the mid relay answers "mid! " instead.
    let (here, mid_word) = (i32_const(b"here"), i32_const(b"mid!"));
    std::fs::write(&mid, rewrite_bytes(&relay, &here, &mid_word)).unwrap();
    let manifest = dir.join("chain.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[app]
root = "relay"

[nanoprocess.relay]
component = {relay:?}
deps = {{ "{TRANSFORM}" = "mid" }}
grants.host = {{ kv = {root_kv} }}

[nanoprocess.mid]
component = {mid:?}
isolation = "fused"
deps = {{ "{TRANSFORM}" = "leaf" }}
grants.host = {{ kv = {mid_kv} }}

[nanoprocess.leaf]
component = {probe:?}
isolation = "fused"
grants.host = {{ kv = {leaf_kv} }}
"#,
            relay = xtask::guest("plugin_relay"),
            probe = xtask::guest("plugin_probe"),
        ),
    )
    .unwrap();
    manifest
}

/// Prefix attenuation down a fused chain: each level within its own prefix
/// only, the deeper one never with its parent's or the store host's, the store
/// host's own import (a plain import of the composite) with the store host's.
#[test]
fn a_fused_chain_attenuates_a_host_family_level_by_level() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let runtime = host.runtime(&[("kv", KV)], true);
    let manifest = chain_manifest(dir.path(), r#"["p/"]"#, r#"["p/m/"]"#, r#"["p/m/l/"]"#);
    let audit = host.audit();
    let (mut p, placements) = plugin(&runtime, &manifest, &audit);
    assert_eq!(
        placements,
        [
            Placement::OwnStore,
            Placement::FusedInto { host: 0 },
            Placement::FusedInto { host: 0 }
        ]
    );
    // relay runs "here ..." itself, mid (the relay rewritten) "mid! ...", and
    // anything else reaches the leaf.
    let cases = [
        ("here set p/r 1", true, "relay", "p/r"),
        ("mid! set p/m/1 1", true, "relay/mid", "p/m/1"),
        ("set p/m/l/1 1", true, "relay/mid/leaf", "p/m/l/1"),
        ("mid! set p/r2 1", false, "relay/mid", "p/r2"),
        ("set p/m/2 1", false, "relay/mid/leaf", "p/m/2"),
        ("set p/r3 1", false, "relay/mid/leaf", "p/r3"),
        ("get p/r", false, "relay/mid/leaf", "p/r"),
        ("mid! get p/r", false, "relay/mid", "p/r"),
        // A prefix is a prefix of the key's text: `p/m/lx` is not in `p/m/l/`.
        ("set p/m/lx 1", false, "relay/mid/leaf", "p/m/lx"),
        // A parent may use what it gave its child (it holds a superset).
        ("mid! set p/m/l/2 1", true, "relay/mid", "p/m/l/2"),
        ("here get p/m/l/1", true, "relay", "p/m/l/1"),
    ];
    for (input, allowed, who, key) in cases {
        let out = answer(&mut p, input);
        assert_eq!(out.starts_with("ok:"), allowed, "{input} as {who}: {out}");
        let decisions = host.decisions(key);
        let last = decisions
            .last()
            .unwrap_or_else(|| panic!("{input}: no decision"));
        let wanted = if allowed {
            Decision::Allowed
        } else {
            Decision::Refused
        };
        assert_eq!(
            (last.0.as_str(), last.2),
            (who, wanted),
            "{input}: {decisions:?}"
        );
        if allowed {
            assert_eq!(
                host.callers(key).last().map(|(_, w)| w.as_str()),
                Some(who),
                "{input}"
            );
        } else {
            assert!(out.contains(&format!("`{who}`")), "{input}: {out}");
        }
    }
    assert!(host.callers("p/r2").is_empty());
    assert!(host.callers("p/m/2").is_empty());
}

// 3. A refusal that traps (no `refusing` value).

/// A fused child's refused call of a family that declares no refusal value
/// traps: the plugin's call fails, the refusal is recorded under the child's
/// path and the error names the child; the host's code never runs; the store
/// host's own allowed calls before it happened, and the plugin starts again
/// clean.
#[test]
fn a_fused_childs_refusal_that_traps_names_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let runtime = host.runtime(&[("kv", KV)], false);
    let manifest = dir.path().join("trap.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[app]
root = "relay"

[nanoprocess.relay]
component = {relay:?}
deps = {{ "{TRANSFORM}" = "child" }}
grants.host = {{ kv = ["r/"] }}

[nanoprocess.child]
component = {probe:?}
isolation = "fused"
grants.host = {{ kv = ["r/c/"] }}
"#,
            relay = xtask::guest("plugin_relay"),
            probe = xtask::guest("plugin_probe"),
        ),
    )
    .unwrap();
    let audit = host.audit();
    let (mut p, _) = plugin(&runtime, &manifest, &audit);
    assert_eq!(answer(&mut p, "here set r/x 1"), "ok:()");
    assert_eq!(answer(&mut p, "set r/c/x 1"), "ok:()");
    let err = call(&mut p, "set r/y 1").unwrap_err();
    match &err {
        PluginError::Trap { message, .. } => {
            assert!(message.contains("relay/child"), "{err}");
        }
        other => panic!("not a trap: {other}"),
    }
    assert!(err.to_string().contains("relay/child"), "{err}");
    let refusals = audit.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(&*refusals[0].nanoprocess, "relay/child");
    assert!(host.callers("r/y").is_empty());
    assert_eq!(host.keys(), ["r/c/x", "r/x"]);
}

// 4. Versions: two families serving two versions of one interface.

/// The root imports `kv@0.1.0`, a fused child `kv@0.1.1` (the probe rewritten),
/// another fused child `kv@0.1.0`; the host serves `@0.1.0` as family `kvold`
/// and `@0.1.1` as family `kvnew`. Each call must go to the family of the
/// version its caller imports, decided by its caller's holding of that family,
/// however the composite merges the two versions (semver-compatible) of the
/// interface.
#[test]
fn fused_children_importing_two_versions_reach_each_versions_own_family() {
    const KV011: &str = "nanoproc:plugins/kv@0.1.1";
    let dir = tempfile::tempdir().unwrap();
    let root = write_wat(dir.path(), "fanout.wasm", &fanout_wat(""));
    let a = xtask::guest("plugin_probe");
    let b = probe_rewritten(
        dir.path(),
        "probe_b011.wasm",
        &[(TRANSFORM, TRANSFORN), (KV, KV011)],
    );
    for isolation in ["isolated", "fused"] {
        let host = Host::default();
        let runtime = host.runtime(&[("kvold", KV), ("kvnew", KV011)], true);
        let manifest = fanout_manifest(
            dir.path(),
            &root,
            "grants.host = { kvold = [\"\"], kvnew = [\"\"] }",
            (&a, "grants.host = { kvold = [\"a/\"] }"),
            (&b, "grants.host = { kvnew = [\"b/\"] }"),
            isolation,
        );
        let audit = host.audit();
        let (mut p, _) = plugin(&runtime, &manifest, &audit);
        assert_eq!(answer(&mut p, "set a/1 1"), "ok:()", "{isolation}");
        assert_eq!(answer(&mut p, "b:set b/1 1"), "ok:()", "{isolation}");
        assert_eq!(
            host.callers("a/1"),
            [("kvold".to_string(), "root/a".to_string())],
            "{isolation}"
        );
        assert_eq!(
            host.callers("b/1"),
            [("kvnew".to_string(), "root/b".to_string())],
            "{isolation}"
        );
        for (input, who) in [("set b/2 1", "root/a"), ("b:set a/2 1", "root/b")] {
            let out = answer(&mut p, input);
            assert!(out.starts_with("err:"), "{isolation} {input}: {out}");
            assert!(
                out.contains(&format!("`{who}`")),
                "{isolation} {input}: {out}"
            );
        }
    }
}

/// One family registered without a version serves both versions: the two
/// fused children each hold their own scope of it.
#[test]
fn an_unversioned_family_serves_two_fused_versions_each_with_its_own_holding() {
    const KV011: &str = "nanoproc:plugins/kv@0.1.1";
    let dir = tempfile::tempdir().unwrap();
    let root = write_wat(dir.path(), "fanout.wasm", &fanout_wat(""));
    let a = xtask::guest("plugin_probe");
    let b = probe_rewritten(
        dir.path(),
        "probe_b011.wasm",
        &[(TRANSFORM, TRANSFORN), (KV, KV011)],
    );
    let host = Host::default();
    let runtime = host.runtime(&[("kv", "nanoproc:plugins/kv")], true);
    let manifest = fanout_manifest(
        dir.path(),
        &root,
        "grants.host = { kv = [\"\"] }",
        (&a, "grants.host = { kv = [\"a/\"] }"),
        (&b, "grants.host = { kv = [\"b/\"] }"),
        "fused",
    );
    let audit = host.audit();
    let (mut p, _) = plugin(&runtime, &manifest, &audit);
    assert_eq!(answer(&mut p, "set a/1 1"), "ok:()");
    assert_eq!(answer(&mut p, "b:set b/1 1"), "ok:()");
    assert!(answer(&mut p, "set b/2 1").starts_with("err:"));
    assert!(answer(&mut p, "b:set a/2 1").starts_with("err:"));
    assert_eq!(host.keys(), ["a/1", "b/1"]);
    assert_eq!(
        host.callers("b/1"),
        [("kv".to_string(), "root/b".to_string())]
    );
}

// 5. Claiming a persona's holding by naming a host interface import.

/// The `kv` instance type, as a WAT import's type.
const KV_TYPE: &str = r#"(instance
      (type $e (result (option string) (error string)))
      (export "get" (func (param "key" string) (result $e)))
      (type $s (result (error string)))
      (export "set" (func (param "key" string) (param "value" string) (result $s))))"#;

/// `kv` imported under `name` with `(implements "kv@0.1.0")`.
fn kv_claim(name: &str) -> String {
    format!(r#"(import "{name}" (implements "{KV}") {KV_TYPE})"#)
}

/// Checking `manifest` is refused, naming `needle`, without a panic.
fn refused(runtime: &Runtime, manifest: &Path, needle: &str) -> String {
    let err = match runtime.check_plugin_manifest(manifest) {
        Ok(_) => panic!("{} was accepted", manifest.display()),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(needle), "wanted {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// A root whose own import is a named import implementing the host's `kv`,
/// under a generated persona name (`nanoproc-p1-i0`, the name the composite
/// gives its fused child's kv) or one of its own: alone, and with fused
/// children whose kv is held. Never linked to anyone's holding.
#[test]
fn a_component_cannot_claim_a_personas_host_holding_by_naming_its_import() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let runtime = host.runtime(&[("kv", KV)], true);
    let b = probe_rewritten(dir.path(), "probe_b.wasm", &[(TRANSFORM, TRANSFORN)]);
    let a = xtask::guest("plugin_probe");
    for name in ["nanoproc-p1-i0", "nanoproc-p2-i0", "my-kv"] {
        let root = write_wat(dir.path(), "claim.wasm", &fanout_wat(&kv_claim(name)));
        for isolation in ["fused", "isolated"] {
            let manifest = fanout_manifest(
                dir.path(),
                &root,
                "grants.host = { kv = [\"root/\"] }",
                (&a, "grants.host = { kv = [\"a/\"] }"),
                (&b, "grants.host = { kv = [\"b/\"] }"),
                isolation,
            );
            let err = refused(&runtime, &manifest, name);
            println!("{name} {isolation}: {err}");
        }
    }
}

/// A fused child (hand-written) whose own import is a named import
/// implementing `kv`, under the name its sibling's kv gets in the composite,
/// its own generated name, or a name of its own: refused at check.
#[test]
fn a_fused_child_cannot_claim_a_siblings_host_holding_by_naming_its_import() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::default();
    let runtime = host.runtime(&[("kv", KV)], true);
    let root = write_wat(dir.path(), "fanout.wasm", &fanout_wat(""));
    let a = xtask::guest("plugin_probe");
    for name in ["nanoproc-p1-i0", "nanoproc-p2-i0", "my-kv"] {
        // `b`: a transforn exporter that claims kv under `name`.
        let b = write_wat(dir.path(), "claimer.wasm", &claimer_wat(&kv_claim(name)));
        let manifest = fanout_manifest(
            dir.path(),
            &root,
            "grants.host = { kv = [\"\"] }",
            (&a, "grants.host = { kv = [\"a/\"] }"),
            (&b, ""),
            "fused",
        );
        let err = refused(&runtime, &manifest, name);
        println!("{name}: {err}");
    }
}

/// A library exporting `transforn` (returns its input), with `imports`.
fn claimer_wat(imports: &str) -> String {
    format!(
        r#"(component
  {imports}
  (core module $m
    (memory (export "memory") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) (i32.const 4096))
    (func (export "transform") (param i32 i32) (result i32)
      (i32.store (i32.const 16) (local.get 0))
      (i32.store (i32.const 20) (local.get 1))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (alias core export $i "memory" (core memory $memory))
  (alias core export $i "realloc" (core func $realloc))
  (func $t (param "input" string) (result string)
    (canon lift (core func $i "transform") (memory $memory) (realloc $realloc)))
  (instance $out (export "transform" (func $t)))
  (export "{TRANSFORN}" (instance $out))
)"#
    )
}
