//! Network grants by pattern, with real sockets on loopback only (127.0.0.1 and
//! ::1). Every refused attempt is stopped before any packet is sent.

use crate::common;
use common::net::*;
use common::*;

#[test]
fn connections_are_allowed_only_where_a_pattern_says() {
    let port = server();
    let other = closed_port();
    let allowed = format!("connect:127.0.0.1:{port}");
    let refused = format!("connect:127.0.0.1:{other}");
    let pattern = format!("127.0.0.1:{port}");
    let run = nanoproc(&[
        "run",
        "--connect",
        &pattern,
        &cmd(),
        "--",
        &allowed,
        &refused,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&allowed), "ok: connected");
    assert!(
        run.assert_err(&refused).contains("Permission denied"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains(&format!("probe_cmd: network 127.0.0.1:{other} (wasi:sockets/tcp.connect): no network grant allows it")),
        "{run:?}"
    );
    // Without a grant, even the allowed one is refused.
    let run = nanoproc(&["run", &cmd(), "--", &allowed]);
    assert!(
        run.assert_err(&allowed).contains("Permission denied"),
        "{run:?}"
    );
}

#[test]
fn a_name_grant_covers_what_the_name_resolved_to_and_nothing_else() {
    let port = server();
    let by_name = format!("connect:localhost:{port}");
    let by_ip = format!("connect:127.0.0.1:{port}");
    let lookup = format!("resolve:localhost:{port}");
    let pattern = format!("localhost:{port}");
    // The raw address first: not yet resolved from the granted name, so refused.
    let run = nanoproc(&[
        "run",
        "--connect",
        &pattern,
        &cmd(),
        "--",
        &by_ip,
        &lookup,
        &by_name,
        "resolve:nanoproc-test.invalid:80",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    run.assert_err(&by_ip);
    assert!(run.assert_ok(&lookup).contains("127.0.0.1"), "{run:?}");
    assert_eq!(run.assert_ok(&by_name), "ok: connected");
    // A name no pattern reaches is not even looked up.
    run.assert_err("resolve:nanoproc-test.invalid:80");
    assert!(
        run.stderr.contains("probe_cmd: network nanoproc-test.invalid (wasi:sockets/ip-name-lookup.resolve-addresses): no network grant allows it"),
        "{run:?}"
    );
}

#[test]
fn listening_needs_its_own_grant() {
    let run = nanoproc(&[
        "run",
        "--listen",
        "tcp:127.0.0.1:*",
        &cmd(),
        "--",
        "listen:127.0.0.1:0",
        "listen:0.0.0.0:0",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.assert_ok("listen:127.0.0.1:0")
            .starts_with("ok: listening on 127.0.0.1:"),
        "{run:?}"
    );
    // Port 0 on the wildcard address binds nothing reachable, but listening there
    // is not covered by the 127.0.0.1 grant.
    run.assert_err("listen:0.0.0.0:0");
    let run = nanoproc(&[
        "run",
        "--connect",
        "127.0.0.1:*",
        &cmd(),
        "--",
        "listen:127.0.0.1:0",
    ]);
    run.assert_err("listen:127.0.0.1:0");
    assert!(
        run.stderr
            .contains("(wasi:sockets/tcp.bind): no network grant allows it"),
        "{run:?}"
    );
}

#[test]
fn a_child_gets_a_narrower_pattern_and_a_sibling_gets_none() {
    let port = server();
    let other = server();
    let scene = Scene::new();
    let m = scene.driver_tree(
        "grants.stdout = true\ngrants.network = [\"127.0.0.1:*\", \"localhost:*\"]",
        &format!("on-failure = \"error\"\ngrants.network = [\"tcp:127.0.0.1:{port}\"]"),
        "on-failure = \"error\"",
    );
    let ok = format!("child:connect:127.0.0.1:{port}");
    let wrong_port = format!("child:connect:127.0.0.1:{other}");
    let sib = format!("sibling:connect:127.0.0.1:{port}");
    let root = format!("connect:127.0.0.1:{other}");
    let log = scene.path("audit.jsonl");
    let run = nanoproc(&[
        "run",
        "--audit",
        &log.display().to_string(),
        &m.display().to_string(),
        "--",
        &ok,
        &wrong_port,
        &sib,
        &root,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.assert_ok(&ok), "ok: connected");
    run.assert_err(&wrong_port);
    run.assert_err(&sib);
    assert_eq!(run.assert_ok(&root), "ok: connected");
    let audit = std::fs::read_to_string(&log).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"nanoprocess\":\"driver/leaf\"")
                && l.contains(&format!("\"target\":\"127.0.0.1:{port}\""))
                && l.contains("\"decision\":\"allowed\"")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"nanoprocess\":\"driver/sib\"")
                && l.contains("\"decision\":\"refused\"")),
        "{audit}"
    );

    // Patterns beyond the parent's are refused at check, naming both.
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace(
            &format!("[\"tcp:127.0.0.1:{port}\"]"),
            "[\"10.0.0.0/8:*\", \"*.example.com:443\"]",
        ),
    )
    .unwrap();
    let run = check(&m);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(run.stderr.contains("driver/leaf: grant network[0] (\"10.0.0.0/8:*\") exceeds what its parent `driver` holds: no pattern of the parent covers 10.0.0.0/8:*"), "{run:?}");
    assert!(
        run.stderr.contains("driver/leaf: grant network[1]"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("`driver` holds: 127.0.0.1:*, localhost:*"),
        "{run:?}"
    );
}
