//! Calling a plugin's exports from a Rust host, and capabilities the host defines,
//! with real components (guests/plugin-probe, guests/plugin-relay: each input a
//! command a hostile plugin would try).

use nanoproc_runtime::caps::{GrantRequest, GrantValue};
use nanoproc_runtime::host::{CustomRule, HostFamily, ScopeRule};
use nanoproc_runtime::manifest::Restart;
use nanoproc_runtime::{
    Audit, CheckError, Decision, Instances, Interrupt, Plan, Plugin, PluginError, PluginOptions,
    Runtime, StopReason,
};
use std::time::{Duration, Instant};
use wasmtime::component::Val;

use crate::common;
use common::{
    KV, Kv, Refused, TRANSFORM, call, grants, kv_family, kv_grant, relay_tree, runtime_with,
};

/// A runtime serving the kv family (the probe imports it), with an empty store.
fn runtime() -> Runtime {
    runtime_with(&Kv::default(), ScopeRule::Prefix)
}

fn probe_plan(runtime: &Runtime, request: GrantRequest) -> Plan {
    runtime
        .check_plugin(xtask::guest("plugin_probe"), request)
        .unwrap_or_else(|e| panic!("plugin_probe checks: {e}"))
}

#[test]
fn a_host_calls_a_library_plugin_typed_and_dynamically() {
    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    assert!(!plan.is_command(), "the probe is a library");
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();

    let transform = plugin
        .typed::<(String,), (String,)>(TRANSFORM, "transform")
        .unwrap();
    assert_eq!(
        transform.name(),
        "nanoproc:plugins/transform@0.1.0#transform"
    );
    for _ in 0..3 {
        let (out,) = plugin
            .call_typed(&transform, ("echo héllo".to_string(),))
            .unwrap();
        assert_eq!(out, "héllo");
    }
    let results = plugin
        .call(
            "nanoproc:plugins/transform@0.1.0",
            "transform",
            &[Val::String("echo 1 KiB".into())],
        )
        .unwrap();
    assert_eq!(results, vec![Val::String("1 KiB".into())]);

    let exports = plugin.exports();
    assert_eq!(
        exports,
        vec![(
            "nanoproc:plugins/transform@0.1.0".to_string(),
            vec!["transform".to_string()]
        )]
    );
}

#[test]
fn lookups_name_what_is_exported_and_check_types() {
    let runtime = runtime();
    let mut plugin = probe_plan(&runtime, GrantRequest::default())
        .plugin(&PluginOptions::default())
        .unwrap();
    let missing = plugin
        .typed::<(String,), (String,)>(TRANSFORM, "transfrom")
        .err()
        .expect("no such function");
    assert!(
        matches!(&missing, PluginError::NoExport { available, .. }
            if available == &["nanoproc:plugins/transform@0.1.0#transform".to_string()]),
        "{missing}"
    );
    let wrong = plugin
        .typed::<(u32,), (String,)>(TRANSFORM, "transform")
        .err()
        .expect("wrong type");
    assert!(matches!(wrong, PluginError::WrongType { .. }), "{wrong}");
    let dynamic = plugin
        .call(TRANSFORM, "transform", &[Val::U32(1)])
        .expect_err("a wrong value");
    assert!(
        matches!(dynamic, PluginError::WrongType { .. }),
        "{dynamic}"
    );
    // The host's mistakes leave the instance and its state alone.
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
}

#[test]
fn a_command_plan_still_runs_only_commands_and_a_plugin_plan_runs_no_library() {
    let runtime = runtime();
    let refused = runtime
        .check_component(xtask::guest("plugin_probe"), GrantRequest::default(), &[])
        .err()
        .expect("a library is not a command");
    assert!(
        refused.to_string().contains("the root must be a command"),
        "{refused}"
    );
    let plan = probe_plan(&runtime, GrantRequest::default());
    let started = plan
        .start(&Default::default())
        .err()
        .expect("not a command");
    assert!(started.to_string().contains("it is a library"), "{started}");
}

#[test]
fn state_is_kept_between_calls_or_not_as_the_host_chooses() {
    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    let mut reused = plan.plugin(&PluginOptions::default()).unwrap();
    let counts: Vec<String> = (0..3)
        .map(|_| call(&mut reused, "count").unwrap())
        .collect();
    assert_eq!(counts, ["1", "2", "3"]);

    let mut fresh = plan
        .plugin(&PluginOptions {
            instances: Instances::PerCall,
            ..Default::default()
        })
        .unwrap();
    let counts: Vec<String> = (0..3).map(|_| call(&mut fresh, "count").unwrap()).collect();
    assert_eq!(counts, ["1", "1", "1"]);
}

#[test]
fn a_trap_is_an_error_value_and_the_restart_policy_decides_what_follows() {
    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    // No policy: failed for good.
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
    let trap = call(&mut plugin, "trap now").unwrap_err();
    match &trap {
        PluginError::Trap {
            nanoprocess,
            message,
            limit_exceeded,
            ..
        } => {
            assert_eq!(&**nanoprocess, "plugin_probe");
            assert!(message.contains("probe asked to trap: now"), "{message}");
            assert!(!limit_exceeded);
        }
        other => panic!("{other}"),
    }
    let after = call(&mut plugin, "count").unwrap_err();
    assert!(
        matches!(&after, PluginError::Failed { why, .. } if why.contains("not restartable")),
        "{after}"
    );

    // Restartable twice a minute: state is lost with each instance.
    let audit = Audit::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            restart: Some(Restart {
                max: 2,
                within_ms: 60_000,
            }),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(call(&mut plugin, "count").unwrap(), "1");
    for _ in 0..2 {
        assert!(matches!(
            call(&mut plugin, "trap"),
            Err(PluginError::Trap { .. })
        ));
        assert_eq!(call(&mut plugin, "count").unwrap(), "1", "a fresh instance");
    }
    assert!(call(&mut plugin, "trap").is_err());
    let spent = call(&mut plugin, "count").unwrap_err();
    assert!(
        matches!(&spent, PluginError::Failed { why, .. } if why.contains("used its 2 restarts")),
        "{spent}"
    );
    let restarts: Vec<Decision> = audit
        .kept()
        .events
        .iter()
        .filter(|e| e.capability == "restart")
        .map(|e| e.decision)
        .collect();
    assert_eq!(
        restarts,
        [Decision::Allowed, Decision::Allowed, Decision::Refused]
    );
}

#[test]
fn each_call_is_held_to_the_plugins_limits() {
    let runtime = runtime();
    let plan = probe_plan(
        &runtime,
        grants(&[
            ("timeout", GrantValue::text("200ms")),
            ("memory", GrantValue::text("8 MiB")),
        ]),
    );
    let mut plugin = plan
        .plugin(&PluginOptions {
            restart: Some(Restart {
                max: 10,
                within_ms: 60_000,
            }),
            ..Default::default()
        })
        .unwrap();
    let began = Instant::now();
    let spun = call(&mut plugin, "spin").unwrap_err();
    assert!(spun.limit_exceeded(), "{spun}");
    assert!(began.elapsed() < Duration::from_secs(5));
    // The limit is per call: the next call has its own 200 ms.
    assert_eq!(call(&mut plugin, "echo again").unwrap(), "again");
    let grew = call(&mut plugin, "alloc 64").unwrap_err();
    assert!(grew.limit_exceeded(), "{grew}");
    assert_eq!(call(&mut plugin, "alloc 1").unwrap(), "allocated 1 MiB");
}

#[test]
fn fuel_is_refilled_for_each_call() {
    let runtime = runtime();
    let fuel = GrantValue::new(nanoproc_runtime::caps::ValueKind::Integer(5_000_000));
    let plan = probe_plan(&runtime, grants(&[("fuel", fuel)]));
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    // Each call is well within the fuel; together they are not.
    for _ in 0..50 {
        assert_eq!(call(&mut plugin, "big 20000").unwrap().len(), 20_000);
    }
    let spun = call(&mut plugin, "spin").unwrap_err();
    assert!(spun.limit_exceeded(), "{spun}");
}

#[test]
fn an_interrupt_stops_a_call_and_every_later_one() {
    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    let interrupt = Interrupt::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            interrupt: interrupt.clone(),
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
    assert!(
        matches!(spun, PluginError::Stopped(StopReason::Interrupted)),
        "{spun}"
    );
    assert!(matches!(
        call(&mut plugin, "echo x"),
        Err(PluginError::Stopped(_))
    ));
}

#[test]
fn an_exit_ends_the_instance_with_its_code() {
    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    let exited = call(&mut plugin, "exit 7").unwrap_err();
    // Rust's `exit(7)` on WASI 0.2 is `exit(err)`: status 1 (exit codes that pass
    // through need `exit-with-code`, which nanoproc does not link yet).
    assert!(
        matches!(exited, PluginError::Exited { code: 1, .. }),
        "{exited}"
    );
    assert!(matches!(
        call(&mut plugin, "echo x"),
        Err(PluginError::Failed { .. })
    ));
}

#[test]
fn plugins_are_called_from_many_threads_one_instance_each() {
    fn send_sync<T: Send + Sync + Clone>() {}
    fn send<T: Send>() {}
    send_sync::<Plan>();
    send::<Plugin>();

    let runtime = runtime();
    let plan = probe_plan(&runtime, GrantRequest::default());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let plan = plan.clone();
            // A server's worker threads have small stacks: the call must still fit.
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
                    for i in 0..200 {
                        assert_eq!(
                            call(&mut plugin, &format!("echo {t}-{i}")).unwrap(),
                            format!("{t}-{i}")
                        );
                    }
                    call(&mut plugin, "count").unwrap()
                })
                .unwrap()
        })
        .collect();
    for t in threads {
        // 200 calls and this one, in its own instance.
        assert_eq!(t.join().unwrap(), "201");
    }
}

#[test]
fn a_plugin_without_the_host_capability_is_refused_by_the_interfaces_error() {
    let kv = Kv::default();
    let runtime = Runtime::new()
        .unwrap()
        .with_host_family(kv_family(&kv, ScopeRule::Prefix, Refused::Err))
        .unwrap();
    let audit = Audit::new();
    let mut plugin = probe_plan(&runtime, GrantRequest::default())
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    let refused = call(&mut plugin, "set a 1").unwrap();
    assert!(refused.starts_with("err:"), "{refused}");
    assert!(refused.contains("host.kv"), "{refused}");
    assert!(kv.len() == 0, "the host's code never ran");
    let events = audit.refusals();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].capability, "kv");
    assert_eq!(events[0].operation, "nanoproc:plugins/kv@0.1.0#set");
    assert_eq!(events[0].target.as_deref(), Some("a"));
    assert_eq!(&*events[0].nanoprocess, "plugin_probe");
}

#[test]
fn a_host_capability_is_held_within_its_scopes_only() {
    let kv = Kv::default();
    kv.insert("secrets/token", "hunter2");
    let runtime = Runtime::new()
        .unwrap()
        .with_host_family(kv_family(&kv, ScopeRule::Prefix, Refused::Err))
        .unwrap();
    let audit = Audit::with(None, true).unwrap();
    let mut plugin = probe_plan(&runtime, grants(&[kv_grant(&["plugins/probe/"])]))
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(call(&mut plugin, "set plugins/probe/n 1").unwrap(), "ok:()");
    assert_eq!(
        call(&mut plugin, "get plugins/probe/n").unwrap(),
        "ok:Some(\"1\")"
    );
    for attack in [
        "get secrets/token",
        "get plugins/probe",
        "get plugins/prob",
        "set plugins/other/n 2",
        "get ",
    ] {
        let out = call(&mut plugin, attack).unwrap();
        assert!(out.starts_with("err:"), "{attack}: {out}");
        assert!(!out.contains("hunter2"), "{attack}: {out}");
    }
    assert_eq!(kv.len(), 2, "nothing but its own key written");
    let counts = audit.counts();
    assert_eq!(counts[&("plugin_probe".into(), "kv")], (2, 5));
}

#[test]
fn a_host_capability_without_an_error_case_traps_the_caller() {
    let kv = Kv::default();
    // The same interface, but no `refusing`: a refused call traps.
    let family = kv_family(&kv, ScopeRule::Exact, Refused::Trap);
    let runtime = Runtime::new().unwrap().with_host_family(family).unwrap();
    let mut plugin = probe_plan(&runtime, grants(&[kv_grant(&["only"])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "set only 1").unwrap(), "ok:()");
    let trapped = call(&mut plugin, "set only2 1").unwrap_err();
    assert!(
        matches!(&trapped, PluginError::Trap { message, .. } if message.contains("kv")),
        "{trapped}"
    );
    assert_eq!(kv.len(), 1);
}

#[test]
fn a_host_capability_is_attenuated_down_a_plugin_tree() {
    let kv = Kv::default();
    let runtime = Runtime::new()
        .unwrap()
        .with_host_family(kv_family(&kv, ScopeRule::Prefix, Refused::Err))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = relay_tree(
        dir.path(),
        r#"["plugins/"]"#,
        "plugin_probe",
        r#"["plugins/probe/"]"#,
    );
    let plan = runtime.check_plugin_manifest(&manifest).unwrap();
    let described = plan.describe();
    assert!(
        described.contains("kv (prefixes \"plugins/probe/\")"),
        "{described}"
    );
    let audit = Audit::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        call(&mut plugin, "here set plugins/relay/a 1").unwrap(),
        "ok:()"
    );
    assert_eq!(call(&mut plugin, "set plugins/probe/b 2").unwrap(), "ok:()");
    // What its parent holds is not the child's.
    let out = call(&mut plugin, "get plugins/relay/a").unwrap();
    assert!(out.starts_with("err:"), "{out}");
    let refusal = &audit.refusals()[0];
    assert_eq!(&*refusal.nanoprocess, "relay/child");

    // A child asking beyond its parent is refused before anything runs.
    let manifest = relay_tree(
        dir.path(),
        r#"["plugins/probe/"]"#,
        "plugin_probe",
        r#"["plugins/"]"#,
    );
    let refused = runtime.check_plugin_manifest(&manifest).err().unwrap();
    let text = refused.to_string();
    assert!(
        text.contains("not within the parent's prefixes of `kv`"),
        "{text}"
    );
    // ... and so is one whose parent holds none of it.
    let manifest = relay_tree(dir.path(), "false", "plugin_probe", "true");
    let text = runtime
        .check_plugin_manifest(&manifest)
        .err()
        .unwrap()
        .to_string();
    assert!(
        text.contains("does not hold the host capability `kv`"),
        "{text}"
    );
}

#[test]
fn a_runtime_without_the_family_refuses_its_grant_by_name() {
    let runtime = Runtime::new().unwrap();
    let refused = runtime
        .check_plugin(xtask::guest("plugin_probe"), grants(&[kv_grant(&["a/"])]))
        .err()
        .expect("kv is not defined here");
    let CheckError::Refused(errors) = &refused else {
        panic!("{refused}")
    };
    let text = errors.to_string();
    assert!(
        text.contains(
            "`kv` is a host-defined capability (grants.host), and this runtime does not define it"
        ),
        "{text}"
    );
    // Without the family, the probe's kv import is not served either.
    let refused = runtime
        .check_plugin(xtask::guest("plugin_probe"), GrantRequest::default())
        .err()
        .expect("its kv import is not provided");
    assert!(
        refused.to_string().contains("nanoproc:plugins/kv"),
        "{refused}"
    );
}

#[test]
fn host_families_that_clash_are_refused_at_registration() {
    let kv = Kv::default();
    let runtime = Runtime::new().unwrap();
    for name in [
        "fs", "env", "args", "network", "host", "restart", "Kv", "", "a b",
    ] {
        let family = HostFamily::new(name, ScopeRule::Switch).func(
            "example:x/y@1.0.0",
            "f",
            |_: &()| None,
            |_call, ()| Ok(()),
        );
        assert!(
            runtime.clone().with_host_family(family).is_err(),
            "{name:?} must be refused"
        );
    }
    let twice = runtime
        .clone()
        .with_host_family(kv_family(&kv, ScopeRule::Prefix, Refused::Err))
        .unwrap()
        .with_host_family(kv_family(&kv, ScopeRule::Prefix, Refused::Err));
    assert!(twice.is_err());
    let wasi = HostFamily::new("files", ScopeRule::Switch).func(
        "wasi:filesystem/preopens@0.2.6",
        "get-directories",
        |_: &()| None,
        |_call, ()| Ok(()),
    );
    let err = runtime.clone().with_host_family(wasi).err().unwrap();
    assert!(err.to_string().contains("WASI interface"), "{err}");
    let mistyped = kv_family(&kv, ScopeRule::Prefix, Refused::Err).refusing(|_: String| 1u32);
    assert!(runtime.clone().with_host_family(mistyped).is_err());
}

#[test]
fn a_host_function_of_the_wrong_type_is_a_check_error() {
    let family = HostFamily::new("kv", ScopeRule::Prefix)
        .func(
            KV,
            "get",
            |(key,): &(u32,)| Some(key.to_string()),
            |_call, (_key,): (u32,)| Ok((0u32,)),
        )
        .func(
            KV,
            "set",
            |_: &(String, String)| None,
            |_call, (_k, _v): (String, String)| Ok((Ok::<(), String>(()),)),
        );
    let runtime = Runtime::new().unwrap().with_host_family(family).unwrap();
    let refused = runtime
        .check_plugin(xtask::guest("plugin_probe"), GrantRequest::default())
        .err()
        .expect("get has another type");
    assert!(
        refused.to_string().contains("cannot be linked"),
        "{refused}"
    );
}

#[test]
fn a_custom_rule_narrows_by_the_hosts_own_relation() {
    // Keys are "user@domain"; a scope is a domain, covering its addresses.
    fn domain(scope: &str, inner: &str) -> bool {
        inner == scope
            || inner.ends_with(&format!("@{scope}"))
            || inner.ends_with(&format!(".{scope}"))
    }
    let kv = Kv::default();
    let rule = ScopeRule::Custom(CustomRule::new("domains", domain));
    let family = kv_family(&kv, rule, Refused::Err);
    let runtime = Runtime::new().unwrap().with_host_family(family).unwrap();
    let mut plugin = probe_plan(&runtime, grants(&[kv_grant(&["example.com"])]))
        .plugin(&PluginOptions::default())
        .unwrap();
    assert_eq!(call(&mut plugin, "set ann@example.com 1").unwrap(), "ok:()");
    assert_eq!(
        call(&mut plugin, "set bob@mail.example.com 1").unwrap(),
        "ok:()"
    );
    for outside in ["set eve@example.com.evil 1", "set eve@notexample.com 1"] {
        let out = call(&mut plugin, outside).unwrap();
        assert!(out.starts_with("err:"), "{outside}: {out}");
        assert!(out.contains("outside its scopes of host.kv"), "{out}");
    }
    assert_eq!(kv.len(), 2);
}

#[test]
fn a_family_registered_without_a_version_serves_every_version() {
    let kv = Kv::default();
    let family = HostFamily::new("kv", ScopeRule::Prefix)
        .func(
            "nanoproc:plugins/kv",
            "get",
            |(key,): &(String,)| Some(key.clone()),
            |_call, (_key,): (String,)| Ok((Ok::<Option<String>, String>(None),)),
        )
        .refusing(|reason: String| (Err::<Option<String>, String>(reason),))
        .func(
            "nanoproc:plugins/kv",
            "set",
            |(key, _): &(String, String)| Some(key.clone()),
            {
                let kv = kv.clone();
                move |_call, (key, value): (String, String)| {
                    kv.insert(&key, &value);
                    Ok((Ok::<(), String>(()),))
                }
            },
        )
        .refusing(|reason: String| (Err::<(), String>(reason),));
    let runtime = Runtime::new().unwrap().with_host_family(family).unwrap();
    let audit = Audit::new();
    let mut plugin = probe_plan(&runtime, grants(&[kv_grant(&["a/"])]))
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(call(&mut plugin, "set a/1 x").unwrap(), "ok:()");
    assert!(call(&mut plugin, "set b/1 x").unwrap().starts_with("err:"));
    assert_eq!(kv.len(), 1);
    assert_eq!(audit.refusals()[0].operation, "nanoproc:plugins/kv#set");
}

/// A plugin whose dependency is fused into it: one store, the dependency's own
/// (empty) capabilities, the same answers as isolated, and the host's own
/// capability still the root's alone; a fused dependency that imports the
/// host's family holds it as its own.
#[test]
fn a_plugin_with_a_fused_dependency_answers_as_the_isolated_one() {
    let kv = Kv::default();
    let runtime = runtime_with(&kv, ScopeRule::Prefix);
    let dir = tempfile::tempdir().unwrap();
    let mut answers = Vec::new();
    for isolation in ["isolated", "fused"] {
        let manifest = dir.path().join(format!("{isolation}.toml"));
        std::fs::write(
            &manifest,
            format!(
                r#"
[app]
root = "relay"

[nanoprocess.relay]
component = {relay:?}
deps = {{ "nanoproc:plugins/transform@0.1.0" = "child" }}
grants.host = {{ kv = ["plugins/"] }}

[nanoprocess.child]
component = {echo:?}
isolation = "{isolation}"
"#,
                relay = xtask::guest("plugin_relay"),
                echo = xtask::guest("plugin_echo"),
            ),
        )
        .unwrap();
        let plan = runtime.check_plugin_manifest(&manifest).unwrap();
        assert_eq!(
            plan.nodes()[1].placement,
            if isolation == "fused" {
                nanoproc_runtime::Placement::FusedInto { host: 0 }
            } else {
                nanoproc_runtime::Placement::OwnStore
            }
        );
        let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
        let mut got = Vec::new();
        for input in [
            "echo me",
            "here set plugins/x 1",
            "here get plugins/x",
            "again",
        ] {
            got.push(call(&mut plugin, input).unwrap());
        }
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1][0], "echo me");
    assert_eq!(answers[1][2], "ok:Some(\"1\")");

    // A fused child that imports the host's family holds it as its own: narrowed
    // to its prefix, every call decided and recorded under its own path.
    let manifest = relay_tree(
        dir.path(),
        r#"["plugins/"]"#,
        "plugin_probe",
        r#"["plugins/probe/"]"#,
    );
    let text = std::fs::read_to_string(&manifest).unwrap().replace(
        "[nanoprocess.child]\n",
        "[nanoprocess.child]\nisolation = \"fused\"\n",
    );
    std::fs::write(&manifest, text).unwrap();
    let plan = runtime.check_plugin_manifest(&manifest).unwrap();
    assert_eq!(
        plan.nodes()[1].placement,
        nanoproc_runtime::Placement::FusedInto { host: 0 }
    );
    let audit = Audit::new();
    let mut plugin = plan
        .plugin(&PluginOptions {
            audit: audit.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        call(&mut plugin, "here set plugins/relay/a 1").unwrap(),
        "ok:()"
    );
    assert_eq!(call(&mut plugin, "set plugins/probe/b 2").unwrap(), "ok:()");
    let out = call(&mut plugin, "get plugins/relay/a").unwrap();
    assert!(out.starts_with("err:"), "{out}");
    let refusals = audit.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(&*refusals[0].nanoprocess, "relay/child");
}

/// A WASI 0.3 library as a plugin: its exports are called typed and dynamically,
/// each call driven to completion on the caller's thread under the plugin's
/// grants, from several threads at once (one instance each).
#[test]
fn a_wasi_03_plugin_is_called_typed_dynamically_and_from_threads() {
    let runtime = Runtime::new().unwrap();
    let request = grants(&[(
        "env",
        GrantValue::list(vec![GrantValue::text("WHO=plugin")]),
    )]);
    let plan = runtime
        .check_plugin(xtask::guest("probe3_leaf"), request)
        .unwrap_or_else(|e| panic!("probe3_leaf checks: {e}"));
    assert!(!plan.is_command());
    assert!(plan.has_concurrency_support());
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    let run = plugin
        .typed::<(Vec<String>,), (Result<Vec<String>, String>,)>("test:probe/probe", "run")
        .unwrap();
    let (answer,) = plugin.call_typed(&run, (vec!["env:WHO".into()],)).unwrap();
    assert_eq!(answer, Ok(vec!["ok: plugin".to_string()]));
    let results = plugin
        .call(
            "test:probe/probe",
            "run",
            &[Val::List(vec![Val::String("env:NOPE".into())])],
        )
        .unwrap();
    assert_eq!(
        results,
        vec![Val::Result(Ok(Some(Box::new(Val::List(vec![
            Val::String("err: not present".into())
        ])))))]
    );
    let refused = plugin.call_typed(&run, (vec!["random".into()],));
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("random")),
        "{refused:?}"
    );

    // A host's own async call, driven by nanoproc (in a fresh plugin: the
    // refusal above ended that instance, which is not restartable).
    let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
    let answer = plugin
        .call_with_async(|store, instance| {
            Box::pin(async move {
                let iface = instance
                    .get_export_index(&mut *store, None, "test:probe/probe")
                    .expect("the probe is exported");
                let index = instance
                    .get_export_index(&mut *store, Some(&iface), "run")
                    .expect("with its run");
                let func = instance
                    .get_typed_func::<(Vec<String>,), (Result<Vec<String>, String>,)>(
                        &mut *store,
                        index,
                    )?;
                let (answer,) = func
                    .call_async(&mut *store, (vec!["env:WHO".to_string()],))
                    .await?;
                Ok(answer)
            })
        })
        .unwrap();
    assert_eq!(answer, Ok(vec!["ok: plugin".to_string()]));

    let threads: Vec<_> = (0..3)
        .map(|i| {
            let plan = plan.clone();
            std::thread::spawn(move || {
                let mut plugin = plan.plugin(&PluginOptions::default()).unwrap();
                let run = plugin
                    .typed::<(Vec<String>,), (Result<Vec<String>, String>,)>(
                        "test:probe/probe",
                        "run",
                    )
                    .unwrap();
                for _ in 0..5 {
                    let (answer,) = plugin
                        .call_typed(&run, (vec!["env:WHO".to_string()],))
                        .unwrap();
                    assert_eq!(answer.unwrap()[0], "ok: plugin", "thread {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
