//! Red team: the plugin API and host-defined capabilities attacked by a hostile
//! plugin (guests/plugin-hostile, and the embedding tests' probe and relay) and by
//! a careless host.
//!
//! Each test is an attack: one that held, or one a review found (`finding_*`),
//! now fixed, which asserts the behaviour the fix gives.

use nanoproc_runtime::caps::{GrantRequest, GrantValue, ValueKind};
use nanoproc_runtime::host::{HostFamily, ScopeRule};
use nanoproc_runtime::manifest::Restart;
use nanoproc_runtime::{
    Audit, Decision, Instances, Interrupt, Plan, PluginError, PluginOptions, Runtime, StopReason,
};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use wasmtime::component::Val;

const BULK: &str = "nanoproc:plugins/bulk@0.1.0";

use crate::common;
use common::{
    KV, Kv, Refused, TRANSFORM, call, grants, kv_family, kv_grant, relay_tree, runtime_with,
};

fn hostile_plan(runtime: &Runtime, request: GrantRequest) -> Plan {
    runtime
        .check_plugin(xtask::guest("plugin_hostile"), request)
        .unwrap_or_else(|e| panic!("plugin_hostile checks: {e}"))
}

fn restart(max: u32) -> Option<Restart> {
    Some(Restart {
        max,
        within_ms: 60_000,
    })
}

fn restart_events(audit: &Audit) -> Vec<(Decision, Option<String>)> {
    audit
        .kept()
        .events
        .iter()
        .filter(|e| e.capability == "restart")
        .map(|e| (e.decision, e.reason.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Host-defined capabilities: scopes
// ---------------------------------------------------------------------------

/// Prefix edge cases a plugin would try: the prefix without its slash, a sibling,
/// another normalisation of the same text, the empty key, a key of a megabyte.
/// The rule covers by bytes, as documented.
#[test]
fn prefix_scopes_cover_by_bytes_only() {
    let kv = Kv::default();
    kv.map
        .lock()
        .unwrap()
        .insert("secrets/token".into(), "hunter2".into());
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let mut plugin = hostile_plan(&runtime, grants(&[kv_grant(&["plugins/é/"])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "set plugins/é/a 1").unwrap(), "ok:()");
    for attack in [
        "get plugins/é",          // the prefix without its slash
        "get plugins/",           // the parent of the prefix
        "get plugins/e\u{301}/a", // the same text, decomposed
        "get PLUGINS/é/a",        // another case
        "get secrets/token",      // elsewhere
        "get ",                   // the empty key
        "set plugins/éx/a 1",     // a sibling sharing the text but not the slash
        "get \u{0}plugins/é/a",   // a NUL before
    ] {
        let out = call(&mut plugin, attack).unwrap();
        assert!(out.starts_with("err:"), "{attack:?}: {out}");
        assert!(!out.contains("hunter2"), "{attack:?}: {out}");
    }
    // Held by design (bytes): a key that a host normalising paths would read
    // elsewhere. Documented: "what a key means is the host's business".
    assert_eq!(
        call(&mut plugin, "get plugins/é/../../secrets/token").unwrap(),
        "ok:None"
    );
    assert_eq!(kv.map.lock().unwrap().len(), 2);
}

/// An exact-name family: a key is its own scope, nothing under it.
#[test]
fn exact_scopes_cover_only_themselves() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Exact);
    let mut plugin = hostile_plan(&runtime, grants(&[kv_grant(&["a", ""])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "set a 1").unwrap(), "ok:()");
    assert_eq!(call(&mut plugin, "get ").unwrap(), "ok:None");
    for attack in ["get a/", "get ab", "get A", "get  a", "set a/b 1"] {
        let out = call(&mut plugin, attack).unwrap();
        assert!(out.starts_with("err:"), "{attack:?}: {out}");
    }
    // A switch family takes no scopes at all.
    let switch = Runtime::new()
        .unwrap()
        .with_host_family(kv_family(&Kv::default(), ScopeRule::Switch, Refused::Err))
        .unwrap();
    let refused = switch
        .check_plugin(xtask::guest("plugin_hostile"), grants(&[kv_grant(&["a"])]))
        .err()
        .expect("a switch has no scopes");
    assert!(refused.to_string().contains("has no scopes"), "{refused}");
}

/// Grant syntax a manifest author (or a plugin's packager) could slip in.
#[test]
fn host_grant_syntax_is_checked() {
    let mut request = GrantRequest::default();
    for bad in [
        GrantValue::table([("Kv", GrantValue::bool(true))]),
        GrantValue::table([("k v", GrantValue::bool(true))]),
        GrantValue::table([("a".repeat(65).as_str(), GrantValue::bool(true))]),
        GrantValue::table([("kv", GrantValue::text("all"))]),
        GrantValue::table([("kv", GrantValue::list(vec![GrantValue::bool(true)]))]),
        GrantValue::text("kv"),
    ] {
        assert!(request.parse("host", &bad).is_err(), "{bad:?}");
    }
    // An empty list is holding nothing, as `false`: the family is not held.
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let mut plugin = hostile_plan(&runtime, grants(&[kv_grant(&[])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    let out = call(&mut plugin, "set a 1").unwrap();
    assert!(out.contains("not granted"), "{out}");
}

/// A child widening: `true` under a scoped parent, the empty prefix, a prefix
/// of its parent's, a family its parent does not hold; and what `true` gives.
#[test]
fn a_child_cannot_widen_its_parents_host_scopes() {
    let kv = Kv::default();
    kv.map
        .lock()
        .unwrap()
        .insert("secrets/token".into(), "hunter2".into());
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let dir = tempfile::tempdir().unwrap();
    for (root, child) in [
        (r#"["plugins/"]"#, r#"[""]"#),
        (r#"["plugins/"]"#, r#"["plugin"]"#),
        (r#"["plugins/"]"#, r#"["plugins/", "secrets/"]"#),
        (r#"["plugins/a"]"#, r#"["plugins/"]"#),
        ("false", r#"["plugins/"]"#),
        ("false", "true"),
        ("[]", "true"),
    ] {
        let manifest = relay_tree(dir.path(), root, "plugin_hostile", child);
        let refused = runtime.check_plugin_manifest(&manifest);
        assert!(refused.is_err(), "root {root}, child {child}: accepted");
    }
    // `true` is what the parent holds, no more.
    let manifest = relay_tree(dir.path(), r#"["plugins/"]"#, "plugin_hostile", "true");
    let plan = runtime.check_plugin_manifest(&manifest).unwrap();
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    assert_eq!(call(&mut plugin, "set plugins/x 1").unwrap(), "ok:()");
    let out = call(&mut plugin, "get secrets/token").unwrap();
    assert!(out.starts_with("err:"), "{out}");
    // The child's refusal names the child, not the relay.
    assert!(out.contains("relay/child"), "{out}");
}

// ---------------------------------------------------------------------------
// Host-defined capabilities: what a guest makes the host hold
// ---------------------------------------------------------------------------

/// A key of a megabyte, refused: the message returned to the guest and the
/// audit's copy are cut; many refusals keep the audit bounded.
#[test]
fn huge_and_many_refused_targets_stay_bounded() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let audit = Audit::new();
    let mut plugin = hostile_plan(&runtime, grants(&[kv_grant(&["plugins/"])]))
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    let out = call(&mut plugin, "getlong 4000000").unwrap();
    let (len, head) = out.split_once(':').unwrap();
    let len: usize = len.parse().unwrap();
    assert!(
        len < 1024,
        "the refusal returned to the guest is {len} bytes"
    );
    assert!(head.starts_with("err:"), "{head}");
    let event = audit.refusals().pop().unwrap();
    let target = event.target.unwrap();
    assert!(
        target.len() <= 1024 + 64,
        "the audit kept {} bytes of the key",
        target.len()
    );

    // 30 000 refusals in one call: the record keeps at most its bound.
    assert_eq!(call(&mut plugin, "hammer 30000 x").unwrap(), "30000");
    let kept = audit.kept();
    assert!(kept.events.len() <= 10_000, "{}", kept.events.len());
    assert!(
        kept.refusals_not_kept >= 20_000,
        "{}",
        kept.refusals_not_kept
    );
}

// ---------------------------------------------------------------------------
// Host-defined capabilities: registration
// ---------------------------------------------------------------------------

fn one_func_family(name: &str, interface: &str, func: &str) -> HostFamily {
    HostFamily::new(name, ScopeRule::Switch).func(
        interface,
        func,
        |_: &()| None,
        |_call, ()| Ok(()),
    )
}

#[test]
fn registration_refuses_clashes_and_mistakes() {
    let runtime = Runtime::new().unwrap();
    // Built-in families, their keys, limits' keys, reserved words, bad names.
    for name in [
        "filesystem",
        "fs",
        "environment",
        "env",
        "args",
        "stdio",
        "stdin",
        "stdout",
        "stderr",
        "network",
        "listen",
        "clocks",
        "wall-clock",
        "monotonic-clock",
        "random",
        "insecure-random",
        "exit",
        "config",
        "limits",
        "memory",
        "fuel",
        "timeout",
        "output",
        "handles",
        "tables",
        "instances",
        "host",
        "restart",
        "nanoproc",
        "",
        "-kv",
        "1kv",
        "kv!",
        "kv\n",
    ] {
        assert!(
            runtime
                .clone()
                .with_host_family(one_func_family(name, "example:x/y@1.0.0", "f"))
                .is_err(),
            "{name:?} must be refused"
        );
    }
    let long = "k".repeat(65);
    assert!(
        runtime
            .clone()
            .with_host_family(one_func_family(&long, "example:x/y@1.0.0", "f"))
            .is_err()
    );
    // No functions; `refusing` first, twice, or of another type.
    assert!(
        runtime
            .clone()
            .with_host_family(HostFamily::new("empty", ScopeRule::Switch))
            .is_err()
    );
    let first = HostFamily::new("first", ScopeRule::Switch)
        .refusing(|_r: String| ())
        .func("example:x/y@1.0.0", "f", |_: &()| None, |_call, ()| Ok(()));
    assert!(runtime.clone().with_host_family(first).is_err());
    let twice = one_func_family("twice", "example:x/y@1.0.0", "f")
        .refusing(|_r: String| ())
        .refusing(|_r: String| ());
    assert!(runtime.clone().with_host_family(twice).is_err());
    let typed = one_func_family("typed", "example:x/y@1.0.0", "f").refusing(|_r: String| (1u8,));
    assert!(runtime.clone().with_host_family(typed).is_err());
    // WASI, under any version or spelling nanoproc serves.
    for interface in [
        "wasi:cli/environment@0.2.0",
        "wasi:random/random@0.2.6",
        "wasi:x/y",
    ] {
        assert!(
            runtime
                .clone()
                .with_host_family(one_func_family("w", interface, "f"))
                .is_err()
        );
    }
    // The same function twice, in one family or two.
    let dup = one_func_family("dup", "example:x/y@1.0.0", "f").func(
        "example:x/y@1.0.0",
        "f",
        |_: &()| None,
        |_call, ()| Ok(()),
    );
    assert!(runtime.clone().with_host_family(dup).is_err());
    let a = runtime
        .clone()
        .with_host_family(one_func_family("a", "example:x/y@1.0.0", "f"))
        .unwrap();
    assert!(
        a.with_host_family(one_func_family("b", "example:x/y@1.0.0", "f"))
            .is_err()
    );
}

/// FINDING (low): `handle` is a capability name nanoproc's own audit uses (a
/// handle passed between nanoprocesses, handles.rs `record_transfer`), but it is
/// not reserved: a host family `handle` is accepted, and its decisions are
/// counted together with nanoproc's in `Audit::counts` and read as one in logs.
#[test]
fn finding_a_host_family_may_take_the_audits_handle_name() {
    let runtime = Runtime::new().unwrap();
    let taken = runtime.with_host_family(one_func_family("handle", "example:x/y@1.0.0", "f"));
    assert!(
        taken.is_err(),
        "`handle` was accepted as a host family's name"
    );
}

/// Two families, each serving one function of the same interface: both are
/// linked, each checked under its own grant.
#[test]
fn two_families_may_share_an_interface() {
    let kv = Kv::default();
    let (get_kv, set_kv) = (kv.clone(), kv.clone());
    let getter = HostFamily::new("kv-read", ScopeRule::Prefix)
        .func(
            KV,
            "get",
            |(key,): &(String,)| Some(key.clone()),
            move |_call, (key,): (String,)| {
                Ok((Ok::<_, String>(
                    get_kv.map.lock().unwrap().get(&key).cloned(),
                ),))
            },
        )
        .refusing(|reason: String| (Err::<Option<String>, String>(reason),));
    let setter = HostFamily::new("kv-write", ScopeRule::Prefix)
        .func(
            KV,
            "set",
            |(key, _): &(String, String)| Some(key.clone()),
            move |_call, (key, value): (String, String)| {
                set_kv.map.lock().unwrap().insert(key, value);
                Ok((Ok::<(), String>(()),))
            },
        )
        .refusing(|reason: String| (Err::<(), String>(reason),));
    let runtime = Runtime::new()
        .unwrap()
        .with_host_family(getter)
        .unwrap()
        .with_host_family(setter)
        .unwrap();
    let request = grants(&[(
        "host",
        GrantValue::table([("kv-read", GrantValue::list(vec![GrantValue::text("a/")]))]),
    )]);
    let checked = runtime.check_plugin(xtask::guest("plugin_hostile"), request);
    let mut plugin = checked
        .unwrap_or_else(|e| panic!("an interface served by two families: {e}"))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "get a/x").unwrap(), "ok:None");
    let out = call(&mut plugin, "set a/x 1").unwrap();
    assert!(out.contains("host.kv-write"), "{out}");
}

// ---------------------------------------------------------------------------
// Typed exports: the `new_unchecked` guard
// ---------------------------------------------------------------------------

/// An export looked up in one plan, used on plugins of others: refused, even once
/// the first plan is dropped and new plans (of the same file) are made, whatever
/// address their allocation reuses; accepted on a clone of the plan, across
/// restarts and per-call instances.
#[test]
fn a_typed_export_is_refused_by_any_other_plan_even_after_its_own_is_dropped() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    // Both types are the probe's `transform`; the export is of a plan now gone.
    let stale = {
        let plan = hostile_plan(&runtime, GrantRequest::default());
        let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
        plugin
            .typed::<(&str,), (String,)>(TRANSFORM, "transform")
            .unwrap()
    };
    // A bulk export of another dropped plan: `(u32,) -> (list<u8>,)`, whose index
    // in a probe's component would be some other function.
    let stale_bulk = {
        let plan = hostile_plan(&runtime, GrantRequest::default());
        let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
        plugin.typed::<(u32,), (Vec<u8>,)>(BULK, "bytes").unwrap()
    };
    for _ in 0..64 {
        // A different component, and the same one again: each a new plan.
        let probe = runtime
            .check_plugin(xtask::guest("plugin_probe"), GrantRequest::default())
            .unwrap();
        let mut plugin = probe.plugin(&PluginOptions::default()).unwrap();
        assert!(matches!(
            plugin.call_typed(&stale, ("echo x",)),
            Err(PluginError::OtherPlan { .. })
        ));
        assert!(matches!(
            plugin.call_typed(&stale_bulk, (1,)),
            Err(PluginError::OtherPlan { .. })
        ));
        let same_file = hostile_plan(&runtime, GrantRequest::default());
        let mut plugin = same_file.plugin(&PluginOptions::default()).unwrap();
        assert!(matches!(
            plugin.call_typed(&stale_bulk, (1,)),
            Err(PluginError::OtherPlan { .. })
        ));
    }

    // The same plan, cloned, restarted, or an instance per call: accepted.
    let plan = hostile_plan(&runtime, GrantRequest::default());
    let mut first = plan.plugin(&PluginOptions::default()).unwrap();
    let transform = first
        .typed::<(&str,), (String,)>(TRANSFORM, "transform")
        .unwrap();
    let mut per_call = plan
        .clone()
        .plugin(&PluginOptions {
            instances: Instances::PerCall,
            restart: restart(3),
            ..Default::default()
        })
        .unwrap();
    for _ in 0..3 {
        assert_eq!(per_call.call_typed(&transform, ("count",)).unwrap().0, "1");
        assert!(per_call.call_typed(&transform, ("trap",)).is_err());
    }
    let mut reused = plan
        .plugin(&PluginOptions {
            restart: restart(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(reused.call_typed(&transform, ("count",)).unwrap().0, "1");
    assert!(reused.call_typed(&transform, ("trap",)).is_err());
    assert_eq!(reused.call_typed(&transform, ("count",)).unwrap().0, "1");
    drop(first);
}

// ---------------------------------------------------------------------------
// Calls: limits, traps, restarts
// ---------------------------------------------------------------------------

/// A call blocked in a WASI host call (a sleep) is stopped by its per-call time
/// limit; each call gets its own limit afresh, and the guest cannot carry time
/// over.
#[test]
fn the_per_call_timeout_stops_a_sleeping_call_and_is_restarted_per_call() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(
        &runtime,
        grants(&[
            ("timeout", GrantValue::text("300ms")),
            ("monotonic-clock", GrantValue::bool(true)),
        ]),
    );
    let mut plugin = plan
        .plugin(&PluginOptions {
            restart: restart(5),
            ..Default::default()
        })
        .unwrap();
    for _ in 0..4 {
        assert_eq!(call(&mut plugin, "sleep 150").unwrap(), "slept");
    }
    let began = Instant::now();
    let slept = call(&mut plugin, "sleep 20000").unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(slept.limit_exceeded(), "{slept}");
    let began = Instant::now();
    let spun = call(&mut plugin, "spin").unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(spun.limit_exceeded(), "{spun}");
    assert_eq!(call(&mut plugin, "echo alive").unwrap(), "alive");
}

/// A stack overflow is a trap of the plugin, also on a host thread with a small
/// stack; the host survives and the plugin restarts.
#[test]
fn a_stack_overflow_is_a_trap_on_any_host_thread() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, GrantRequest::default());
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let mut plugin = plan
                .plugin(&PluginOptions {
                    restart: restart(2),
                    ..Default::default()
                })
                .unwrap();
            let overflow = call(&mut plugin, "stack").unwrap_err();
            assert!(matches!(overflow, PluginError::Trap { .. }), "{overflow}");
            assert_eq!(call(&mut plugin, "echo alive").unwrap(), "alive");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Once the interrupt is triggered, nothing runs again: not a restart, not a
/// lookup, not an instance per call.
#[test]
fn an_interrupt_is_final_even_with_a_restart_policy_and_fresh_instances() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, GrantRequest::default());
    let interrupt = Interrupt::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            interrupt: interrupt.clone(),
            instances: Instances::PerCall,
            restart: restart(100),
            ..Default::default()
        })
        .unwrap();
    let stopper = {
        let interrupt = interrupt.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            interrupt.stop(StopReason::Interrupted);
        })
    };
    let spun = call(&mut plugin, "spin").unwrap_err();
    stopper.join().unwrap();
    assert!(matches!(spun, PluginError::Stopped(_)), "{spun}");
    for _ in 0..3 {
        assert!(matches!(
            call(&mut plugin, "echo x"),
            Err(PluginError::Stopped(_))
        ));
    }
}

/// FINDING (medium): a restart that fails (the plugin traps, spins or exits while
/// it is instantiated) is not counted against the restart budget, nor recorded
/// in the audit. A plugin that arms its own constructor (here through the host's
/// kv, which it legitimately holds) and then traps is re-instantiated on every
/// later call, forever, whatever `max` says: a crash loop the policy is meant to
/// end, each turn running guest code (up to the per-call time limit, or without
/// end if there is none).
#[test]
fn finding_failed_restarts_escape_the_restart_budget() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let audit = Audit::new();
    let plan = hostile_plan(&runtime, grants(&[kv_grant(&["hostile/"])]));
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            restart: restart(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        kv.boots.load(Ordering::SeqCst),
        1,
        "the constructor ran once"
    );
    assert!(matches!(
        call(&mut plugin, "arm trap"),
        Err(PluginError::Trap { .. })
    ));
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        outcomes.push(call(&mut plugin, "echo x").unwrap_err().to_string());
    }
    let boots = kv.boots.load(Ordering::SeqCst);
    eprintln!(
        "boots after 20 calls: {boots}; last: {}",
        outcomes.last().unwrap()
    );
    eprintln!("restart records: {:?}", restart_events(&audit));
    // One restart allowed: the first instance and at most one more.
    assert!(
        boots <= 2,
        "the plugin was instantiated {boots} times under a budget of one restart"
    );
    assert!(
        outcomes.last().unwrap().contains("restarts"),
        "{}",
        outcomes.last().unwrap()
    );
    assert!(
        !restart_events(&audit).is_empty(),
        "no restart (attempted or refused) was audited"
    );
}

/// The same crash loop, with a constructor that spins: every call costs the host
/// the whole per-call time limit again, although the policy allows one restart.
#[test]
fn finding_a_spinning_constructor_costs_every_later_call_its_timeout() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let plan = hostile_plan(
        &runtime,
        grants(&[
            kv_grant(&["hostile/"]),
            ("timeout", GrantValue::text("200ms")),
        ]),
    );
    let mut plugin = plan
        .plugin(&PluginOptions {
            restart: restart(1),
            ..Default::default()
        })
        .unwrap();
    assert!(call(&mut plugin, "arm spin").is_err());
    let began = Instant::now();
    for _ in 0..10 {
        assert!(call(&mut plugin, "echo x").is_err());
    }
    let took = began.elapsed();
    eprintln!("10 calls after the budget took {took:?}");
    assert!(
        took < Duration::from_millis(600),
        "10 refused calls took {took:?}: each ran the constructor to its time limit"
    );
}

/// FINDING (low): a host's mistake in a dynamic call (a value of the wrong type,
/// the wrong number of them) is reported as the plugin's trap, and the plugin's
/// instance is thrown away for it: its state is lost, a restart is spent (or, with
/// no policy, the plugin is dead for good). wasmtime refuses such a call before
/// entering the guest, so the instance was intact. A host that passes values it
/// got from its users lets any user kill the plugin.
#[test]
fn finding_a_hosts_wrong_values_kill_the_instance() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, GrantRequest::default());
    let audit = Audit::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
    let wrong = plugin
        .call(TRANSFORM, "transform", &[Val::U32(1)])
        .unwrap_err();
    eprintln!("wrong type: {wrong:?}");
    let none = plugin.call(TRANSFORM, "transform", &[]).map(|_| ());
    eprintln!("no value: {none:?}");
    // The same for an export that is an interface, not a function.
    let not_a_func = plugin.call("", TRANSFORM, &[]).map(|_| ());
    eprintln!("not a function: {not_a_func:?}");
    assert!(
        !matches!(wrong, PluginError::Trap { .. }),
        "a host's type error is reported as the plugin's trap: {wrong}"
    );
    // The instance never ran: it keeps its state.
    let after = call(&mut plugin, "count");
    assert!(
        matches!(&after, Ok(n) if n == "2"),
        "the instance was dropped for the host's mistake: {after:?}"
    );
}

/// `Plugin::call` lifts results as `wasmtime::component::Val`s, one per element:
/// a `list<u8>` of N bytes becomes N × size_of::<Val>() bytes in the host (×48).
/// What bounds it is wasmtime's hostcall fuel (128 MiB a call by default): a
/// list whose Vals would exceed it is refused, as the plugin's trap.
#[test]
fn dynamic_results_are_bounded_by_wasmtimes_hostcall_fuel() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, grants(&[("memory", GrantValue::text("64 MiB"))]));
    let mut plugin = plan
        .plugin(&PluginOptions {
            restart: restart(2),
            ..Default::default()
        })
        .unwrap();
    // Typed: a byte for a byte.
    let bytes = plugin.typed::<(u32,), (Vec<u8>,)>(BULK, "bytes").unwrap();
    let n = 16u32 << 20;
    assert_eq!(plugin.call_typed(&bytes, (n,)).unwrap().0.len(), n as usize);
    // Dynamic: a Val a byte, up to the bound the plugin's memory limit sets.
    let refused = plugin
        .call(BULK, "bytes", &[Val::U32(8 << 20)])
        .unwrap_err();
    assert!(refused.to_string().contains("hostcall"), "{refused}");
    let results = plugin.call(BULK, "bytes", &[Val::U32(256 << 10)]).unwrap();
    let Val::List(list) = &results[0] else {
        panic!("{:?}", results[0])
    };
    let host = list.capacity() * std::mem::size_of::<Val>();
    assert!(host <= 128 << 20, "{host}");
}

/// FINDING (low): a plugin's results are lifted into the host under wasmtime's
/// default hostcall fuel (128 MiB a call), whatever the plugin's memory limit:
/// nanoproc sizes that fuel from the parent's budget on calls between
/// nanoprocesses (trampoline.rs), but a `Plugin` leaves the default and offers
/// no knob. Through `call`, a plugin limited to 8 MiB makes the host hold
/// 96 MiB per call (a `list<u8>` of 2 MiB, a 48-byte `Val` per byte), and up to
/// 128 MiB a call whatever its limit.
#[test]
fn finding_a_small_plugin_makes_the_host_hold_much_more_than_its_limit() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let limit: usize = 8 << 20;
    let plan = hostile_plan(&runtime, grants(&[("memory", GrantValue::text("8 MiB"))]));
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    // What would make the host hold 96 MiB is refused: the plugin's failure.
    let refused = plugin
        .call(BULK, "bytes", &[Val::U32(2 << 20)])
        .unwrap_err();
    assert!(refused.to_string().contains("hostcall"), "{refused}");
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    let results = plugin.call(BULK, "bytes", &[Val::U32(256 << 10)]).unwrap();
    let Val::List(list) = &results[0] else {
        panic!("{:?}", results[0])
    };
    let host = list.capacity() * std::mem::size_of::<Val>();
    eprintln!(
        "a plugin limited to {} MiB made the host hold {} MiB (size_of::<Val>() = {})",
        limit >> 20,
        host >> 20,
        std::mem::size_of::<Val>()
    );
    assert!(
        host <= 4 * limit,
        "{} MiB held by the host for a plugin limited to {} MiB",
        host >> 20,
        limit >> 20
    );
}

/// With no time limit, a constructor that spins at a restart is still stopped
/// by the interrupt.
#[test]
fn an_interrupt_stops_a_spinning_restart() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, grants(&[kv_grant(&["hostile/"])]));
    let interrupt = Interrupt::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            interrupt: interrupt.clone(),
            restart: restart(1),
            ..Default::default()
        })
        .unwrap();
    assert!(call(&mut plugin, "arm spin").is_err());
    let stopper = {
        let interrupt = interrupt.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            interrupt.stop(StopReason::Interrupted);
        })
    };
    let began = Instant::now();
    let stopped = call(&mut plugin, "echo x").unwrap_err();
    stopper.join().unwrap();
    assert!(matches!(stopped, PluginError::Stopped(_)), "{stopped}");
    assert!(began.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------------------
// call_with: what a careless host can do with the store it is handed
// ---------------------------------------------------------------------------

fn transform_func(
    store: &mut wasmtime::Store<impl Send + 'static>,
    instance: &wasmtime::component::Instance,
) -> wasmtime::Result<wasmtime::component::Func> {
    let iface = instance
        .get_export_index(&mut *store, None, TRANSFORM)
        .ok_or_else(|| wasmtime::format_err!("no {TRANSFORM}"))?;
    let index = instance
        .get_export_index(&mut *store, Some(&iface), "transform")
        .ok_or_else(|| wasmtime::format_err!("no transform"))?;
    instance
        .get_func(&mut *store, index)
        .ok_or_else(|| wasmtime::format_err!("not a func"))
}

/// A body that calls the guest, sees it trap and returns `Ok` anyway: the
/// trapped instance stays; wasmtime refuses to enter it again, so the next call
/// fails (as the plugin's trap, spending a restart) rather than running in a
/// broken instance.
#[test]
fn call_with_swallowing_a_trap_leaves_no_usable_broken_instance() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, GrantRequest::default());
    let audit = Audit::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            restart: restart(2),
            ..Default::default()
        })
        .unwrap();
    let swallowed = plugin
        .call_with(|store, instance| {
            let func = transform_func(store, instance)?;
            let typed = func.typed::<(&str,), (String,)>(&*store)?;
            Ok(typed.call(&mut *store, ("trap swallowed",)).is_err())
        })
        .unwrap();
    assert!(swallowed, "the guest trapped");
    let next = call(&mut plugin, "count");
    eprintln!("after a swallowed trap: {next:?}");
    assert!(
        next.is_err(),
        "a trapped instance was entered again: {next:?}"
    );
    assert_eq!(call(&mut plugin, "count").unwrap(), "1", "restarted");
}

/// FINDING (low): `call_with` hands the host the plugin's `&mut Store`, and what
/// the body changes in it outlives the call: nanoproc refills the fuel and
/// restarts the clock before each call, but does not re-arm the epoch deadline.
/// A body that moves the deadline (to make its own long call) leaves every later
/// call of the plugin without its per-call time limit and deaf to the
/// interrupt. Here the spin is stopped only by the fuel set as a backstop.
#[test]
fn finding_call_with_can_disarm_later_calls_time_limit() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let fuel = GrantValue::new(ValueKind::Integer(30_000_000_000));
    let plan = hostile_plan(
        &runtime,
        grants(&[("timeout", GrantValue::text("100ms")), ("fuel", fuel)]),
    );
    let mut plugin = plan
        .plugin(&PluginOptions {
            restart: restart(5),
            ..Default::default()
        })
        .unwrap();
    let began = Instant::now();
    assert!(call(&mut plugin, "spin").unwrap_err().limit_exceeded());
    let armed = began.elapsed();
    plugin
        .call_with(|store, _instance| {
            store.set_epoch_deadline(1 << 40);
            Ok(())
        })
        .unwrap();
    let began = Instant::now();
    let spun = call(&mut plugin, "spin").unwrap_err();
    let disarmed = began.elapsed();
    eprintln!("spin with the deadline armed: {armed:?}; after call_with: {disarmed:?} ({spun})");
    assert!(
        disarmed < Duration::from_millis(500),
        "a 100 ms call ran {disarmed:?}, stopped by: {spun}"
    );
}

/// A `Func` taken out of `call_with` (its result type only needs `Send`) and
/// used in a later `call_with`, after the instance was replaced: wasmtime's
/// store check catches it, by panicking in the host; the call unwound through
/// the plugin, so nanoproc drops that instance.
#[test]
fn a_func_kept_from_call_with_cannot_reach_a_later_instance() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let plan = hostile_plan(&runtime, GrantRequest::default());
    let mut plugin = plan
        .plugin(&PluginOptions {
            instances: Instances::PerCall,
            ..Default::default()
        })
        .unwrap();
    let kept = plugin.call_with(transform_func).unwrap();
    let used = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        plugin.call_with(move |store, _instance| {
            let typed = kept.typed::<(&str,), (String,)>(&*store)?;
            Ok(typed.call(&mut *store, ("echo stale",))?.0)
        })
    }));
    eprintln!(
        "a stale Func: {:?}",
        used.as_ref().map(|r| r.as_ref().map_err(|e| e.to_string()))
    );
    assert!(
        !matches!(used, Ok(Ok(_))),
        "a Func of a dropped instance was called"
    );
    // The call unwound through the plugin: its instance is not entered again.
    let after = call(&mut plugin, "echo ok").unwrap_err();
    assert!(
        matches!(&after, PluginError::Failed { why, .. } if why.contains("panicked")),
        "{after}"
    );
}

/// A host family serving an interface that a manifest wires to a dependency
/// (`deps`): refused at check, rather than the host silently taking the root's
/// calls meant for its child, with a message that says why.
#[test]
fn a_host_family_does_not_silently_take_over_a_wired_dependency() {
    let kv = Kv::default();
    let tx = HostFamily::new("tx", ScopeRule::Switch).func(
        TRANSFORM,
        "transform",
        |_: &(String,)| None,
        |_call, (input,): (String,)| Ok((format!("the host saw {input:?}"),)),
    );
    let runtime = runtime_with(&kv, ScopeRule::Prefix)
        .with_host_family(tx)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = relay_tree(
        dir.path(),
        r#"["plugins/"]"#,
        "plugin_hostile",
        r#"["plugins/"]"#,
    );
    let refused = runtime
        .check_plugin_manifest(&manifest)
        .err()
        .expect("a wired interface that a host family also serves");
    assert!(
        refused
            .to_string()
            .contains("served by a capability family the host application defines"),
        "{refused}"
    );
}

/// Lookups with odd names: errors, never a panic in the host.
#[test]
fn odd_lookups_are_errors_not_panics() {
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let mut plugin = hostile_plan(&runtime, GrantRequest::default())
        .plugin(&PluginOptions::default())
        .unwrap();
    for (interface, func) in [
        ("", ""),
        ("", "transform"),
        ("#", "#"),
        ("@", "transform"),
        ("nanoproc:plugins/transform@", "transform"),
        ("nanoproc:plugins/transform@0.1.0@0.1.0", "transform"),
        ("nanoproc:plugins/transform", ""),
        ("nanoproc:plugins/transform", "transform#transform"),
        ("nanoproc:plugins/kv", "get"),
        ("é\u{0}", "\u{feff}"),
    ] {
        assert!(
            plugin.typed::<(&str,), (String,)>(interface, func).is_err(),
            "{interface:?} {func:?}"
        );
    }
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
}

/// FINDING (low): a host function that panics (a bug in the host's family, a
/// `lock().unwrap()` on a poisoned lock...) unwinds through the plugin's call.
/// A host that catches the panic (a server catching a request's panic, and a
/// pool handing the `Plugin` out again) then calls a plugin whose instance was
/// abandoned in the middle of a call; wasmtime does not mark it as trapped, so
/// nanoproc must drop it, lest the guest run again on state it left half-updated.
#[test]
fn finding_an_instance_abandoned_by_a_host_panic_is_entered_again() {
    // Its kv panics on the key `panic`, as a bug in a host function would.
    let runtime = runtime_with(&Kv::default(), ScopeRule::Prefix);
    let mut plugin = hostile_plan(&runtime, grants(&[kv_grant(&[""])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        call(&mut plugin, "get panic")
    }));
    assert!(unwound.is_err(), "the host's panic reaches the host");
    // The guest's call was abandoned after it counted itself and before it
    // returned; its next call runs in the same instance.
    let after = call(&mut plugin, "count");
    eprintln!("after a call abandoned by a panic: {after:?}");
    assert!(
        !matches!(&after, Ok(n) if n == "3"),
        "the abandoned instance was entered again: {after:?}"
    );
}
