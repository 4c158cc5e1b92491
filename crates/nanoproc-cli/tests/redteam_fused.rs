//! Red team: fused edges (`isolation = "fused"`), attacked as a hostile guest
//! would. A fused child shares its host's store (one resource table, one
//! limiter, one clock); each attack here tries to make that sharing leak: a
//! handle number reused after a drop deciding for the wrong nanoprocess, a
//! capability reached through a name the guest chose, a persona left swapped in
//! after a trap, a limit escaped, a decision recorded under the wrong path.
//!
//! Attacks that fail today guard the property as ordinary tests; each real
//! problem is a test marked `//! fixed.

use crate::common;
use common::*;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::time::Duration;

/// The audit lines of `family` (and `operation`, if given) as (nanoprocess,
/// target, decision).
fn lines_of(
    lines: &[serde_json::Value],
    family: &str,
    operation: Option<&str>,
) -> Vec<(String, String, String)> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    lines
        .iter()
        .filter(|l| l["family"] == family && operation.is_none_or(|op| l["operation"] == op))
        .map(|l| (s(&l["nanoprocess"]), s(&l["target"]), s(&l["decision"])))
        .collect()
}

/// Every answer the driver printed for `arg`, in order (an op may be repeated).
fn answers<'a>(run: &'a Run, arg: &str) -> Vec<&'a str> {
    let prefix = format!("{arg} => ");
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .collect()
}

// 1. Handle numbers shared by one store's table.

/// The host (`driver`) holds `/data` read-write; its fused child holds the same
/// directory read-only as `/d`. Their opens and drops are interleaved so that
/// each reuses the table slots the other just freed (a descriptor's rep is a
/// slot of the store's one resource table): in both directions a reused number
/// must decide as its new owner, with its new owner's rights, recorded under its
/// new owner's path; and so for directory listings and streams read from files.
#[test]
fn reused_descriptor_numbers_decide_as_their_new_owner_in_both_directions() {
    let scene = Scene::new();
    scene.file("data/seed.txt", "seed");
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.fs = [{ host = \"./data\", guest = \"/data\", rights = \"read-write\" }]",
        "isolation = \"fused\"\ngrants.fs = [{ from = \"/data\", guest = \"/d\", rights = \"read+list\" }]",
        "",
    );
    let mut args: Vec<String> = Vec::new();
    for round in 0..6 {
        // The host opens, writes and drops; the child then opens in the slots it
        // freed, and tries to write through them.
        args.push(format!("write:/data/h{round}.txt=host {round}"));
        args.push(format!("child:write:/d/h{round}.txt=child {round}"));
        args.push(format!("child:append:/d/seed.txt=child {round}"));
        args.push(format!("child:rm:/d/h{round}.txt"));
        args.push(format!("child:mkdir:/d/c{round}"));
        args.push(format!("child:read:/d/h{round}.txt"));
        args.push("child:ls:/d".to_string());
        // The child dropped what it opened: the host reuses those slots, and its
        // own rights must hold (write allowed), recorded as its own.
        args.push(format!("append:/data/seed.txt=+{round}"));
        args.push("ls:/data".to_string());
        args.push(format!("rm:/data/h{round}.txt"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let (run, lines) = audited(&scene, &m, &argv);
    assert_eq!(run.code, 0, "{run:?}");
    for round in 0..6 {
        run.assert_ok(&format!("write:/data/h{round}.txt=host {round}"));
        for refused in [
            format!("child:write:/d/h{round}.txt=child {round}"),
            format!("child:append:/d/seed.txt=child {round}"),
            format!("child:rm:/d/h{round}.txt"),
            format!("child:mkdir:/d/c{round}"),
        ] {
            let a = run.assert_err(&refused);
            assert!(
                a.contains("not permitted") || a.contains("ermission"),
                "{refused}: {a}"
            );
        }
        assert_eq!(
            run.answer(&format!("child:read:/d/h{round}.txt")),
            format!("ok: host {round}")
        );
        run.assert_ok(&format!("append:/data/seed.txt=+{round}"));
        run.assert_ok(&format!("rm:/data/h{round}.txt"));
    }
    let listed = answers(&run, "child:ls:/d");
    assert!(listed.iter().all(|a| a.starts_with("ok: ")), "{listed:?}");
    let listed = answers(&run, "ls:/data");
    assert!(listed.iter().all(|a| a.starts_with("ok: ")), "{listed:?}");
    // Nothing of the child's reached the disk; all of the host's did.
    assert_eq!(
        std::fs::read_to_string(scene.path("data/seed.txt")).unwrap(),
        "seed+0+1+2+3+4+5"
    );
    let left: Vec<_> = std::fs::read_dir(scene.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["seed.txt"], "{left:?}");
    // Every refusal is the child's, under its path; every host operation the
    // host's. No host line ever names a /d path, no child line a /data path.
    let fs = lines_of(&lines, "fs", None);
    assert!(!fs.is_empty(), "{lines:?}");
    for (who, target, decision) in &fs {
        match who.as_str() {
            "driver/leaf" => assert!(target.starts_with("/d"), "{who} {target} {decision}"),
            "driver" => {
                assert!(target.starts_with("/data"), "{who} {target} {decision}");
                assert_ne!(decision, "refused", "{who} {target}");
            }
            other => panic!("fs decision under {other}: {target} {decision}"),
        }
    }
    let child_refusals = fs
        .iter()
        .filter(|(w, _, d)| w == "driver/leaf" && d == "refused")
        .count();
    assert!(child_refusals >= 6 * 4, "{fs:?}");
}

// 2. The host's other capabilities, reached from the child between the host's
// own uses (each host use after a child's refusal proves the store came back).

#[test]
fn a_fused_child_reaches_none_of_its_hosts_environment_config_stdout_random_or_network() {
    let scene = Scene::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for c in l.incoming().take(16) {
                drop(c);
            }
        });
        port
    };
    let m = scene.driver_tree(
        &format!(
            "grants.stdout = true\ngrants.env = [\"HOST_SECRET\"]\ngrants.random = true\n\
             grants.network = [\"tcp:127.0.0.1:{port}\"]\ngrants.config = {{ TOKEN = \"host-token\" }}"
        ),
        "isolation = \"fused\"",
        "",
    );
    let connect = format!("connect:127.0.0.1:{port}");
    let child_connect = format!("child:{connect}");
    let child_resolve = format!("child:resolve:localhost:{port}");
    let ops = [
        connect.as_str(),
        "env:HOST_SECRET",
        child_connect.as_str(),
        child_resolve.as_str(),
        connect.as_str(),
        "child:env:HOST_SECRET",
        "child:envall",
        "env:HOST_SECRET",
        "child:config:TOKEN",
        "config:TOKEN",
        "random",
    ];
    let log = scene.path("audit.jsonl");
    let (l, mm) = (log.display().to_string(), m.display().to_string());
    let mut argv = vec!["run", "--audit", l.as_str(), mm.as_str(), "--"];
    argv.extend_from_slice(&ops);
    let run = nanoproc_env(&argv, &[("HOST_SECRET", "hunter2")]);
    assert_eq!(run.code, 0, "{run:?}");
    for a in answers(&run, &connect) {
        assert!(a.starts_with("ok"), "{a}");
    }
    run.assert_err(&child_connect);
    run.assert_err(&child_resolve);
    assert_eq!(
        answers(&run, "env:HOST_SECRET"),
        ["ok: hunter2", "ok: hunter2"]
    );
    assert!(!run.answer("child:env:HOST_SECRET").contains("hunter2"));
    assert!(!run.answer("child:envall").contains("hunter2"));
    assert_eq!(run.answer("config:TOKEN"), "ok: host-token");
    assert!(!run.answer("child:config:TOKEN").contains("host-token"));
    run.assert_ok("random");
    let lines = audit_lines(&log);
    let net = lines_of(&lines, "network", None);
    assert!(
        net.iter()
            .any(|(w, t, d)| w == "driver/leaf" && t.contains(&port.to_string()) && d == "refused"),
        "{net:?}"
    );
    assert!(
        net.iter().all(|(w, _, d)| w != "driver" || d == "allowed"),
        "{net:?}"
    );
}

/// A fused child without stdout writes: refused as its own, while its host's
/// output (granted) still flows, before and after.
#[test]
fn a_fused_child_cannot_write_through_its_hosts_stdout() {
    let scene = Scene::new();
    let m = scene.driver_tree("grants.stdout = true", "isolation = \"fused\"", "");
    let (run, lines) = audited(
        &scene,
        &m,
        &[
            "stdout:host before",
            "child:stdout:CHILD-LEAK",
            "stdout:host after",
        ],
    );
    assert!(!run.stdout.contains("CHILD-LEAK"), "{run:?}");
    assert!(run.stdout.contains("host before"), "{run:?}");
    let stdio: Vec<_> = lines
        .iter()
        .filter(|l| l["decision"] == "refused")
        .map(|l| l["nanoprocess"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(stdio.iter().all(|w| w == "driver/leaf"), "{stdio:?}");
    assert!(!stdio.is_empty(), "{lines:?}");
}

// 3. A trap while a persona is swapped in.

/// driver -> mid (isolated, `on-failure = "error"`, restartable) -> leaf (fused
/// into mid). The leaf traps inside WASI calls made as itself (a refused `exit`,
/// a refused `random`): mid fails and is restarted, and from then on mid uses its
/// own capabilities (its read-write directory, its random) as itself, and the
/// leaf is still only the leaf, each recorded under its own path.
#[test]
fn after_a_trap_inside_a_fused_childs_wasi_call_the_restarted_host_is_itself() {
    let scene = Scene::new();
    scene.file("data/m/seed.txt", "seed");
    let m = scene.manifest(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.stdout = true
grants.random = true
grants.fs = [{ host = "./data", guest = "/data", rights = "read-write" }]
deps = { "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }

[nanoprocess.mid]
component = "{probe_mid}"
on-failure = "error"
restart = { max = 5, within = "1m" }
grants.random = true
grants.fs = [{ from = "/data/m", guest = "/m", rights = "read-write" }]
deps = { "test:probe/downstream" = "leaf" }

[nanoprocess.leaf]
component = "{probe_leaf}"
isolation = "fused"
grants.fs = [{ from = "/m", guest = "/d", rights = "read" }]

[nanoprocess.sib]
component = "{probe_leaf}"
"#,
    );
    let (run, lines) = audited(
        &scene,
        &m,
        &[
            "child:down:read:/d/seed.txt",
            "child:down:exit:7",
            "child:write:/m/after-exit.txt=mid",
            "child:random",
            "child:down:write:/d/leaf.txt=leaf",
            "child:down:random",
            "child:append:/m/after-random.txt=mid",
            "child:down:read:/d/after-exit.txt",
            "child:down:write:/d/after-exit.txt=leaf",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.answer("child:down:read:/d/seed.txt"), "ok: seed");
    for trapped in ["child:down:exit:7", "child:down:random"] {
        let a = run.assert_err(trapped);
        assert!(a.contains("driver/mid/leaf"), "{trapped}: {a}");
    }
    run.assert_ok("child:write:/m/after-exit.txt=mid");
    run.assert_ok("child:random");
    run.assert_ok("child:append:/m/after-random.txt=mid");
    run.assert_err("child:down:write:/d/leaf.txt=leaf");
    assert_eq!(run.answer("child:down:read:/d/after-exit.txt"), "ok: mid");
    run.assert_err("child:down:write:/d/after-exit.txt=leaf");
    assert_eq!(
        std::fs::read_to_string(scene.path("data/m/after-exit.txt")).unwrap(),
        "mid"
    );
    assert!(!scene.path("data/m/leaf.txt").exists());
    for (who, target, decision) in lines_of(&lines, "fs", None) {
        match who.as_str() {
            "driver/mid/leaf" => assert!(target.starts_with("/d"), "{target} {decision}"),
            "driver/mid" => {
                assert!(target.starts_with("/m"), "{target} {decision}");
                assert_ne!(decision, "refused", "{target}");
            }
            _ => {}
        }
    }
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l["decision"] == "refused" && l["family"] != "fs")
        .map(|l| {
            (
                l["nanoprocess"].as_str().unwrap_or_default().to_string(),
                l["family"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        refused.iter().all(|(w, _)| w == "driver/mid/leaf"),
        "{refused:?}"
    );
    assert!(refused.iter().any(|(_, f)| f == "exit"), "{refused:?}");
    assert!(refused.iter().any(|(_, f)| f == "random"), "{refused:?}");
}

// 4. Limits: a fused child runs under its host's.

/// A fused child that spins is stopped by its host's per-call time limit (it
/// has none of its own), and one that burns fuel by its host's fuel.
#[test]
fn a_fused_child_is_stopped_by_its_hosts_time_and_fuel() {
    for (limit, op, needle) in [
        (
            "grants.timeout = \"1s\"",
            "child:down:spin",
            "time per call limit of 1s",
        ),
        ("grants.fuel = 50000000", "child:down:busy:2000", "fuel"),
    ] {
        let scene = Scene::new();
        let m = scene.manifest(&format!(
            r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
grants.stdout = true
deps = {{ "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }}

[nanoprocess.mid]
component = "{{probe_mid}}"
on-failure = "error"
{limit}
deps = {{ "test:probe/downstream" = "leaf" }}

[nanoprocess.leaf]
component = "{{probe_leaf}}"
isolation = "fused"

[nanoprocess.sib]
component = "{{probe_leaf}}"
"#
        ));
        let mm = m.display().to_string();
        let (run, took) = nanoproc_within(
            Duration::from_secs(60),
            &["run", "--timeout", "600s", &mm, "--", op, "sibling:count"],
        );
        assert!(took < Duration::from_secs(30), "{op}: {took:?} {run:?}");
        let a = run.assert_err(op);
        assert!(
            a.contains("driver/mid") && a.to_lowercase().contains(needle),
            "{op}: {a}"
        );
        assert_eq!(run.answer("sibling:count"), "ok: 1", "{op}");
    }
}

// 5. UDP receive decisions.

/// The fused leaf's UDP tree: the host holds every loopback UDP address to send
/// to and listen on; the leaf may send to `peer` and listen on `listen`.
fn udp_tree(scene: &Scene, mode: &str, peer: u16, listen: u16) -> PathBuf {
    scene.driver_tree(
        "grants.stdout = true\ngrants.monotonic-clock = true\n\
         grants.network = [\"udp:127.0.0.1:*\"]\ngrants.listen = [\"udp:127.0.0.1:*\"]",
        &format!(
            "isolation = \"{mode}\"\ngrants.monotonic-clock = true\n\
             grants.network = [\"udp:127.0.0.1:{peer}\"]\ngrants.listen = [\"udp:127.0.0.1:{listen}\"]"
        ),
        "",
    )
}

/// A free loopback UDP port (bound, then released).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An echo peer: answers each datagram it gets, `count` times.
fn echo_peer(count: usize) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..count {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from);
        }
    });
    port
}

/// The reply to a datagram the fused leaf sent is decided, and recorded, as the
/// leaf's: under `driver/leaf`, by the leaf's own grants. Today the shared
/// `wasi:sockets/udp` binding decides every receive with the store host's policy
/// (families/network/udp.rs `view` takes `s.families.network.policy`), so the
/// leaf's receive is recorded under `driver`, and decided by `driver`'s grants.
#[test]
fn a_fused_childs_udp_receive_is_decided_and_recorded_as_its_own() {
    for mode in ["isolated", "fused"] {
        let scene = Scene::new();
        let peer = echo_peer(1);
        let m = udp_tree(&scene, mode, peer, free_udp_port());
        let send = format!("child:udp-send:127.0.0.1:{peer}=hi");
        let (run, lines) = audited(
            &scene,
            &m,
            &["child:udp-bind:0.0.0.0:0", &send, "child:udp-recv:3000"],
        );
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        assert_eq!(
            run.answer("child:udp-recv:3000"),
            format!("ok: from 127.0.0.1:{peer}: echo:hi"),
            "{mode}"
        );
        let receives = lines_of(&lines, "network", Some("wasi:sockets/udp.receive"));
        assert!(!receives.is_empty(), "{mode}: {lines:?}");
        assert!(
            receives.iter().all(|(who, _, _)| who == "driver/leaf"),
            "{mode}: the leaf's receive is recorded as another's: {receives:?}"
        );
    }
}

/// A fused leaf bound on the address its own `listen` grant covers receives
/// from anyone there, as the same leaf isolated does. Today the stream's note
/// goes into the host's policy (udp.rs `stream`), so the leaf's own early check
/// (its `has_listening_udp_stream`) never sees a listening socket and drops every
/// stranger's datagram, recorded as refused under the leaf.
#[test]
fn a_fused_child_receives_on_the_address_its_own_listen_grant_covers() {
    for mode in ["isolated", "fused"] {
        let scene = Scene::new();
        let listen = free_udp_port();
        let m = udp_tree(&scene, mode, free_udp_port(), listen);
        // A stranger keeps sending to the leaf's listened address meanwhile.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = s.send_to(b"stranger", ("127.0.0.1", listen));
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let bind = format!("child:udp-bind:127.0.0.1:{listen}");
        let (run, lines) = audited(&scene, &m, &[&bind, "child:udp-recv:3000"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sender.join().unwrap();
        assert_eq!(run.code, 0, "{mode}: {run:?}");
        run.assert_ok(&bind);
        let got = run.answer("child:udp-recv:3000");
        assert!(
            got.starts_with("ok: from 127.0.0.1:") && got.ends_with(": stranger"),
            "{mode}: {got}\n{:?}",
            lines_of(&lines, "network", None)
        );
    }
}

// 6. Claiming a persona by name: hand-written components.

/// A command component (it exports `wasi:cli/run`) that also has `imports`.
fn command_wat(imports: &str) -> String {
    format!(
        r#"(component
  {imports}
  (core module $m (func (export "run") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $run (result (result)) (canon lift (core func $i "run")))
  (instance $inst (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $inst))
)"#
    )
}

/// A component exporting `rt:fused/api` (`f: func()`), with `imports`.
fn child_wat(imports: &str) -> String {
    format!(
        r#"(component
  {imports}
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $f (canon lift (core func $i "f")))
  (instance $inst (export "f" (func $f)))
  (export "rt:fused/api" (instance $inst))
)"#
    )
}

const API_IMPORT: &str = r#"(import "rt:fused/api" (instance (export "f" (func))))"#;
const RANDOM_TYPE: &str = r#"(instance (export "get-random-u64" (func (result u64))))"#;

/// `wasi:random/random` claimed under the name nanoproc gives the persona `n`.
fn claim(n: usize) -> String {
    format!(r#"(import "nanoproc-p{n}-i0" (implements "wasi:random/random@0.2.0") {RANDOM_TYPE})"#)
}

fn write_wasm(scene: &Scene, name: &str, wat_text: &str) -> String {
    let bytes = wat::parse_str(wat_text).unwrap_or_else(|e| panic!("{name}: {e}\n{wat_text}"));
    let p = scene.path(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

/// `root` (with a `rt:fused/api` dependency on `child`, fused or not, when a
/// child is given): checked and run; both must refuse, and neither may run it.
fn refused_both_ways(scene: &Scene, root: &str, child: Option<(&str, &str)>, needle: &str) {
    let root = write_wasm(scene, "root.wasm", root);
    let mut text = format!(
        "[app]\nroot = \"root\"\n\n[nanoprocess.root]\ncomponent = \"{root}\"\ngrants.random = true\n"
    );
    if let Some((child, isolation)) = child {
        let child = write_wasm(scene, "child.wasm", child);
        text.push_str(&format!(
            "deps = {{ \"rt:fused/api\" = \"child\" }}\n\n[nanoprocess.child]\ncomponent = \"{child}\"\nisolation = \"{isolation}\"\ngrants.random = true\n"
        ));
    }
    let m = scene.manifest(&text);
    for run in [check(&m), run_manifest(&m, &[])] {
        assert_ne!(run.code, 0, "{run:?}");
        let unbound = format!(
            "imports `{needle}` as a WASI interface under a name of its own, which nanoproc does not bind"
        );
        let unprovided = format!("imports {needle}, but no dependency provides it");
        assert!(
            run.stderr.contains(&unbound) || run.stderr.contains(&unprovided),
            "wanted {needle:?} refused in {run:?}"
        );
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
}

#[test]
fn an_isolated_component_cannot_claim_a_persona_by_naming_its_import() {
    let scene = Scene::new();
    refused_both_ways(&scene, &command_wat(&claim(0)), None, "nanoproc-p0-i0");
}

#[test]
fn a_parent_of_fused_children_cannot_claim_its_childs_persona() {
    let scene = Scene::new();
    refused_both_ways(
        &scene,
        &command_wat(&format!("{}\n  {API_IMPORT}", claim(1))),
        Some((&child_wat(""), "fused")),
        "nanoproc-p1-i0",
    );
}

#[test]
fn a_fused_child_cannot_claim_its_hosts_or_its_own_persona_names() {
    for n in [0, 1, 2] {
        let scene = Scene::new();
        refused_both_ways(
            &scene,
            &command_wat(API_IMPORT),
            Some((&child_wat(&claim(n)), "fused")),
            &format!("nanoproc-p{n}-i0"),
        );
    }
}

#[test]
fn an_isolated_child_of_a_fused_tree_cannot_claim_a_persona() {
    let scene = Scene::new();
    refused_both_ways(
        &scene,
        &command_wat(API_IMPORT),
        Some((&child_wat(&claim(0)), "isolated")),
        "nanoproc-p0-i0",
    );
}

/// WASI under a plain name of the guest's own, with no `implements`: as an
/// isolated root, and as a fused child.
#[test]
fn wasi_under_a_plain_name_of_its_own_is_refused() {
    let plain = format!(r#"(import "my-random" {RANDOM_TYPE})"#);
    let scene = Scene::new();
    refused_both_ways(&scene, &command_wat(&plain), None, "my-random");
    let scene = Scene::new();
    refused_both_ways(
        &scene,
        &command_wat(API_IMPORT),
        Some((&child_wat(&plain), "fused")),
        "my-random",
    );
    // And under an `implements` of an interface no family names (the shared
    // `wasi:filesystem/types`): no binding, whoever imports it.
    let types = r#"(import "my-types" (implements "wasi:io/error@0.2.0") (instance (export "error" (type (sub resource)))))"#;
    let scene = Scene::new();
    refused_both_ways(&scene, &command_wat(types), None, "my-types");
}
