//! Which datagrams a UDP socket may receive, decided by the socket's own address:
//! a socket bound where a `listen` pattern covers hears anyone, any other socket
//! (a client bound to `0.0.0.0:0`, which needs no grant) only the peers a `network`
//! pattern covers. Real sockets on 127.0.0.1 only.
//!
//! The guest keeps one socket between probes (`udp-bind`, `udp-send`, `udp-recv`)
//! and nanoproc runs with its output read line by line, so that this test can act
//! between two probes: learn the port the guest bound, send to it. Every wait is
//! bounded: the guest's receive gives up after a few seconds, and the run is killed
//! if it has not ended within [`RUN_LIMIT`].

use crate::common;
use common::net::*;
use common::*;
use std::net::SocketAddr;

#[test]
fn without_grants_a_client_socket_binds_but_hears_no_one() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let stranger = peer();
    let cmd = guest("probe_cmd").display().to_string();
    let mut run = Live::start(&[
        "run",
        "--monotonic-clock",
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        "udp-bind:127.0.0.1:0",
        "udp-bind:0.0.0.0:0",
        "udp-recv:1000",
    ]);
    // A specific address needs a `listen` pattern, even with port 0.
    let specific = run.answer("udp-bind:127.0.0.1:0");
    assert!(specific.contains("Permission denied"), "{specific}");
    // The wildcard address with port 0 needs none: it is how a client starts.
    let client = bound(&run.answer("udp-bind:0.0.0.0:0"));
    assert!(
        client.ip().is_unspecified() && client.port() != 0,
        "{client}"
    );
    stranger.send_to(b"stranger", on_loopback(client)).unwrap();
    let heard = run.answer("udp-recv:1000");
    assert_eq!(heard, "err: nothing received in 1000 ms");
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");

    // The datagram did arrive, and was refused, not lost.
    let stranger = stranger.local_addr().unwrap().to_string();
    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "probe_cmd"
            && e["family"] == "network"
            && e["target"] == stranger.as_str()
            && e["reason"] == "network is not granted"),
        "{refused:?}"
    );
    assert!(
        audit_lines(&log)
            .iter()
            .any(|e| e["operation"] == "wasi:sockets/udp.bind"
                && e["target"] == "127.0.0.1:0"
                && e["decision"] == "refused"),
        "{:?}",
        audit_lines(&log)
    );
}

#[test]
fn a_listen_grant_covers_the_address_it_names_and_no_other_socket() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let (granted, other) = (free_port(), free_port());
    let stranger = peer();
    let cmd = guest("probe_cmd").display().to_string();
    let grant = format!("udp:127.0.0.1:{granted}");
    let elsewhere = format!("udp-bind:127.0.0.1:{other}");
    let wildcard = format!("udp-bind:0.0.0.0:{granted}");
    let listener = format!("udp-bind:127.0.0.1:{granted}");
    let mut run = Live::start(&[
        "run",
        "--listen",
        &grant,
        "--monotonic-clock",
        "--audit",
        &log.display().to_string(),
        &cmd,
        "--",
        &elsewhere,
        &wildcard,
        &listener,
        "udp-recv:5000",
        "udp-bind:0.0.0.0:0",
        "udp-recv:1000",
    ]);
    assert!(
        run.answer(&elsewhere).contains("Permission denied"),
        "{:?}",
        run.stdout
    );
    // The granted port on every interface is more than the port on 127.0.0.1.
    assert!(
        run.answer(&wildcard).contains("Permission denied"),
        "{:?}",
        run.stdout
    );

    // On the address its grant names, the socket hears anyone.
    let listening = bound(&run.answer(&listener));
    assert_eq!(listening, SocketAddr::from(([127, 0, 0, 1], granted)));
    stranger.send_to(b"to the listener", listening).unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    assert_eq!(
        run.answer("udp-recv:5000"),
        format!("ok: from {stranger_addr}: to the listener")
    );

    // A client socket of the same nanoprocess is not covered by that grant. (The
    // probe keeps one socket: binding the client closed the listener, so the
    // stranger's datagram is dropped before any socket could see it.)
    let client = bound(&run.answer("udp-bind:0.0.0.0:0"));
    stranger
        .send_to(b"to the client", on_loopback(client))
        .unwrap();
    assert_eq!(
        run.answer("udp-recv:1000"),
        "err: nothing received in 1000 ms"
    );
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");
    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "probe_cmd"
            && e["target"] == stranger_addr.to_string().as_str()
            && e["reason"].as_str().is_some_and(
                |r| r.contains("no socket of it is on an address a listen grant covers")
            )),
        "{refused:?}"
    );
    assert!(
        run.stderr.contains(&format!(
            "probe_cmd: network {stranger_addr} (wasi:sockets/udp.receive)"
        )),
        "{run:?}"
    );
}

#[test]
fn a_client_socket_hears_replies_only_from_peers_its_network_grant_covers() {
    let scene = Scene::new();
    let log = scene.path("audit.jsonl");
    let server = peer();
    let stranger = peer();
    let server_addr = server.local_addr().unwrap();
    let stranger_addr = stranger.local_addr().unwrap();
    // The child also holds a `listen` pattern, for a port it never binds: receiving
    // on a client socket must not depend on whether some listen pattern exists.
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.monotonic-clock = true\n\
         grants.network = [\"udp:127.0.0.1:*\"]\ngrants.listen = [\"udp:127.0.0.1:*\"]",
        &format!(
            "on-failure = \"error\"\ngrants.monotonic-clock = true\n\
             grants.network = [\"udp:{server_addr}\"]\n\
             grants.listen = [\"udp:127.0.0.1:{}\"]",
            free_port()
        ),
        "on-failure = \"error\"",
    );
    let hello = format!("child:udp-send:{server_addr}=hello");
    let mut run = Live::start(&[
        "run",
        "--audit",
        &log.display().to_string(),
        &m.display().to_string(),
        "--",
        "child:udp-bind:0.0.0.0:0",
        &hello,
        "child:udp-recv:5000",
    ]);
    let mut buf = [0u8; 64];
    let (len, guest) = server.recv_from(&mut buf).expect("the guest's hello");
    assert_eq!(&buf[..len], b"hello");
    // The stranger's datagram is queued first: delivered, it would be the one
    // the guest's first receive returns.
    stranger.send_to(b"stranger", guest).unwrap();
    server.send_to(b"reply", guest).unwrap();
    assert_eq!(
        run.answer("child:udp-recv:5000"),
        format!("ok: from {server_addr}: reply")
    );
    let run = run.finish();
    assert_eq!(run.code, 0, "{run:?}");

    let refused = refused_receives(&log);
    assert!(
        refused.iter().any(|e| e["nanoprocess"] == "driver/leaf"
            && e["family"] == "network"
            && e["target"] == stranger_addr.to_string().as_str()),
        "{refused:?}"
    );
    // Only the child received, so only the child is blamed.
    assert!(
        refused.iter().all(|e| e["nanoprocess"] == "driver/leaf"),
        "{refused:?}"
    );
}
