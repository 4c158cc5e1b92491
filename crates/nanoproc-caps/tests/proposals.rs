//! What `nanoproc learn` and the refusal hints are proposed, family by family,
//! for uses a hostile guest chooses: never beyond what was held, never from what
//! the guest (or a remote peer) controls alone.

use nanoproc_caps::*;
use std::path::PathBuf;

fn use_of<'a>(key: &'a str, operation: &'a str, target: &'a str) -> Use<'a> {
    Use {
        key,
        operation,
        target: Some(target),
        needs: None,
        failed: false,
        refused: false,
    }
}

fn refused(mut used: Use<'_>) -> Use<'_> {
    used.refused = true;
    used
}

fn network(connect: &[&str], listen: &[&str]) -> Capabilities {
    let mut req = GrantRequest::default();
    let list =
        |items: &[&str]| GrantValue::list(items.iter().map(|p| GrantValue::text(*p)).collect());
    if !connect.is_empty() {
        req.parse("network", &list(connect)).unwrap();
    }
    if !listen.is_empty() {
        req.parse("listen", &list(listen)).unwrap();
    }
    Capabilities::for_root(&req, |_| None).unwrap()
}

fn values(proposal: &[Suggestion]) -> Vec<String> {
    proposal.iter().map(Suggestion::manifest_line).collect()
}

#[test]
fn a_name_is_proposed_as_narrow_as_the_held_pattern_that_allowed_it_and_no_wider() {
    let held = network(&["*.example.com:443", "tcp:127.0.0.1:*"], &[]);
    let lookup = use_of(
        "network",
        "wasi:sockets/ip-name-lookup.resolve-addresses",
        "api.example.com",
    );
    // A connection to the address it resolved to, allowed through the name: no
    // address pattern of its own (the held ones do not cover it lexically).
    let connect = use_of("network", "wasi:sockets/tcp.connect", "93.184.216.34:443");
    let p = held.propose(&[lookup, connect], None);
    assert_eq!(values(&p), ["grants.network = [\"api.example.com:443\"]"]);
    // An address a held pattern covers is proposed exactly.
    let local = use_of("network", "wasi:sockets/tcp.connect", "127.0.0.1:22");
    let p = held.propose(&[local], None);
    assert_eq!(values(&p), ["grants.network = [\"tcp:127.0.0.1:22\"]"]);
}

#[test]
fn a_peer_that_reached_the_guest_proposes_nothing() {
    let held = network(&[], &["udp:0.0.0.0:5353", "tcp:0.0.0.0:8080"]);
    for (op, peer) in [
        ("wasi:sockets/udp.receive", "127.0.0.2:4444"),
        ("wasi:sockets/tcp.accept", "10.1.2.3:50000"),
    ] {
        let p = held.propose(&[use_of("network", op, peer)], None);
        assert!(p.is_empty(), "{op}: {p:?}");
    }
}

#[test]
fn an_invalid_name_gets_no_hint() {
    let none = network(&[], &[]);
    for name in ["*", "0.0.0.0/0", "*.com", "$(id>pwned);x", ""] {
        let used = refused(use_of(
            "network",
            "wasi:sockets/ip-name-lookup.resolve-addresses",
            name,
        ));
        let p = none.propose(&[used], None);
        assert!(p.is_empty(), "{name:?}: {p:?}");
    }
    // A valid one does, on every port (which one it would connect to is unknown).
    let used = refused(use_of(
        "network",
        "wasi:sockets/ip-name-lookup.resolve-addresses",
        "Api.Example.com",
    ));
    assert_eq!(
        values(&none.propose(&[used], None)),
        ["grants.network = [\"api.example.com:*\"]"]
    );
}

fn dirs(specs: &[(&str, &str)]) -> Capabilities {
    let mut req = GrantRequest::default();
    let items = specs
        .iter()
        .map(|(host, guest)| {
            GrantValue::table([
                ("host", GrantValue::text(*host)),
                ("guest", GrantValue::text(*guest)),
                ("rights", GrantValue::text("read-write")),
            ])
        })
        .collect();
    req.parse("fs", &GrantValue::list(items)).unwrap();
    Capabilities::for_root(&req, |_| None).unwrap()
}

fn fs_use<'a>(operation: &'a str, target: &'a str, needs: &'a str, failed: bool) -> Use<'a> {
    Use {
        key: "fs",
        operation,
        target: Some(target),
        needs: Some(needs),
        failed,
        refused: false,
    }
}

#[test]
fn every_directory_used_is_in_one_grant() {
    let held = dirs(&[("/h/data", "/data"), ("/h/secrets", "/secrets")]);
    let p = held.propose(
        &[
            fs_use("wasi:filesystem/types.open-at", "/data/a/x", "read", false),
            fs_use("wasi:filesystem/types.open-at", "/secrets/k", "read", false),
        ],
        None,
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        p[0].value,
        // A root's host paths stay the user's; only the rights narrow.
        "[{ host = \"/h/data\", guest = \"/data\", rights = \"read\" }, { host = \"/h/secrets\", guest = \"/secrets\", rights = \"read\" }]"
    );
    assert_eq!(
        p[0].flags,
        ["--dir-ro /h/data::/data", "--dir-ro /h/secrets::/secrets"]
    );
}

#[test]
fn a_failed_path_does_not_narrow_its_directory() {
    // `/data/current` may be a link out of the directory: the sandbox refused to
    // follow it, but a host grant through it would be followed when opened.
    let held = dirs(&[("/h/data", "/data")]);
    let failed = fs_use(
        "wasi:filesystem/types.open-at",
        "/data/current/ssl/x.cnf",
        "read",
        true,
    );
    let p = held.propose(&[failed], None);
    assert_eq!(
        p[0].value,
        "[{ host = \"/h/data\", guest = \"/data\", rights = \"read\" }]"
    );
}

#[test]
fn an_arrow_in_a_file_name_is_one_path() {
    let held = dirs(&[("/h/data", "/data"), ("/h/secrets", "/secrets")]);
    // Opened, not renamed: one path whose name has ` -> ` in it.
    let open = fs_use(
        "wasi:filesystem/types.open-at",
        "/data/x -> /secrets/y",
        "read",
        false,
    );
    // In /data (a directory there is named `x -> `), not /secrets.
    let p = held.propose(&[open], None);
    assert_eq!(
        p[0].value,
        "[{ host = \"/h/data\", guest = \"/data\", rights = \"read\" }]"
    );
    // A rename really aims at two paths; one with an arrow in a name is not
    // guessed at.
    let rename = fs_use(
        "wasi:filesystem/types.rename-at",
        "/data/a -> /data/b",
        "rename",
        false,
    );
    assert!(held.propose(&[rename], None)[0].value.contains("/data\""));
    let ambiguous = fs_use(
        "wasi:filesystem/types.rename-at",
        "/data/a -> b -> /secrets/c",
        "rename",
        false,
    );
    assert!(held.propose(&[ambiguous], None).is_empty());
}

#[test]
fn flag_values_are_quoted_for_the_shell() {
    assert_eq!(shell_quote("/tmp/a-b_c.d:e"), "/tmp/a-b_c.d:e");
    assert_eq!(
        shell_quote("x;echo INJECTED>pwned;#"),
        "'x;echo INJECTED>pwned;#'"
    );
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
    assert_eq!(shell_quote("$(id)"), "'$(id)'");
    assert_eq!(shell_quote(""), "''");
    // A control character is written as an escape the shell reads back.
    assert_eq!(shell_quote("a\nb'c"), "$'a\\nb\\'c'");
    assert_eq!(shell_quote("x\u{202e}y"), "$'x\\u202ey'");
    let held = dirs(&[("/h/we;ird dir", "/data")]);
    let p = held.propose(
        &[fs_use(
            "wasi:filesystem/types.open-at",
            "/data/f",
            "read",
            false,
        )],
        None,
    );
    assert_eq!(p[0].flags, ["--dir-ro '/h/we;ird dir::/data'"]);
    let _ = PathBuf::new();
}

#[test]
fn invisible_characters_are_escaped_in_toml() {
    assert_eq!(toml_string("a\u{202E}b"), "\"a\\u202Eb\"");
}

/// A child of a root holding `/data`, holding all of it.
fn child_of(parent: &Capabilities) -> Capabilities {
    let mut req = GrantRequest::default();
    req.parse(
        "fs",
        &GrantValue::list(vec![GrantValue::table([
            ("from", GrantValue::text("/data")),
            ("guest", GrantValue::text("/data")),
            ("rights", GrantValue::text("read-write")),
        ])]),
    )
    .unwrap();
    parent.attenuate(&req).unwrap()
}

#[test]
fn a_dependencys_directory_narrows_to_what_it_touched_unless_a_path_could_not_be_read() {
    let root = dirs(&[("/h/data", "/data")]);
    let child = child_of(&root);
    let read = fs_use(
        "wasi:filesystem/types.open-at",
        "/data/a/b/x",
        "read",
        false,
    );
    let write = fs_use(
        "wasi:filesystem/types.open-at",
        "/data/a/y",
        "write+create",
        false,
    );
    let p = child.propose(&[read, write], Some(&root));
    assert_eq!(
        p[0].value,
        "[{ from = \"/data/a\", guest = \"/data/a\", rights = \"read+write+create\" }]"
    );
    // A path through `..`: whatever it moved, nothing is narrowed.
    let moved = fs_use(
        "wasi:filesystem/types.rename-at",
        "/data/a/../l -> /data/a/../x",
        "rename",
        false,
    );
    let p = child.propose(&[read, moved], Some(&root));
    assert_eq!(
        p[0].value,
        "[{ from = \"/data\", guest = \"/data\", rights = \"read+rename\" }]"
    );
}

#[test]
fn a_port_the_system_chose_is_not_pinned() {
    let held = network(&[], &["tcp:127.0.0.1:*"]);
    let bind = use_of("network", "wasi:sockets/tcp.bind", "127.0.0.1:0");
    let listen = use_of("network", "wasi:sockets/tcp.listen", "127.0.0.1:44803");
    let p = held.propose(&[bind, listen], None);
    assert_eq!(values(&p), ["grants.listen = [\"tcp:127.0.0.1:*\"]"]);
    // A port asked for is proposed as it is.
    let bind = use_of("network", "wasi:sockets/tcp.bind", "127.0.0.1:8080");
    let listen = use_of("network", "wasi:sockets/tcp.listen", "127.0.0.1:8080");
    let p = held.propose(&[bind, listen], None);
    assert_eq!(values(&p), ["grants.listen = [\"tcp:127.0.0.1:8080\"]"]);
}
