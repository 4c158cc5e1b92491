//! Outgoing HTTP requests (`grants.http`), end to end: real guest components
//! (http-client, its WASI 0.3 twin, and a tree of fetchers) run by the `nanoproc`
//! binary against real servers on loopback (common/http_server.rs). Each decision
//! is read three ways: what the guest printed, what the audit log recorded, and
//! what the server itself saw, so that a refusal is shown to have stopped the
//! request before it left (no request, not even a connection).

use crate::common;
use common::http_server::*;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one `nanoproc` run may take before the test kills it and fails.
const LIMIT: Duration = Duration::from_secs(60);

/// The operation every request is recorded under.
const HANDLE: &str = "wasi:http/outgoing-handler.handle";

fn client() -> String {
    guest("http_client").display().to_string()
}

fn client3() -> String {
    guest("http_client3").display().to_string()
}

/// A scene whose manifest has one nanoprocess, `client`, running `component` with
/// stdout granted and `table` (more keys of its table, one a line).
fn single(component: &str, table: &str) -> (Scene, PathBuf) {
    let scene = Scene::new();
    let m = scene.manifest(&format!(
        "[app]\nroot = \"client\"\n\n[nanoprocess.client]\ncomponent = \"{component}\"\n\
         grants.stdout = true\n{table}\n"
    ));
    (scene, m)
}

/// `single` with http-client and `grants.http = [patterns]`.
fn granted(patterns: &[&str]) -> (Scene, PathBuf) {
    single(&client(), &http_grant(patterns))
}

fn http_grant(patterns: &[&str]) -> String {
    let quoted: Vec<String> = patterns.iter().map(|p| format!("\"{p}\"")).collect();
    format!("grants.http = [{}]", quoted.join(", "))
}

/// `nanoproc run --timeout 30s --audit FILE FLAGS... MANIFEST -- ARGS...`, killed
/// and failed after [`LIMIT`]; the run, its audit log and when it ended.
fn run(scene: &Scene, flags: &[&str], manifest: &Path, args: &[&str]) -> (Run, Vec<Value>) {
    let (run, log, _) = run_timed(scene, flags, manifest, args);
    (run, log)
}

fn run_timed(
    scene: &Scene,
    flags: &[&str],
    manifest: &Path,
    args: &[&str],
) -> (Run, Vec<Value>, Instant) {
    let log = scene.path("audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let (l, m) = (log.display().to_string(), manifest.display().to_string());
    let mut all = vec!["run", "--timeout", "30s", "--audit", l.as_str()];
    all.extend_from_slice(flags);
    all.extend_from_slice(&[m.as_str(), "--"]);
    all.extend_from_slice(args);
    let (run, _) = nanoproc_within(LIMIT, &all);
    let ended = Instant::now();
    let lines = if log.exists() {
        audit_lines(&log)
    } else {
        Vec::new()
    };
    (run, lines, ended)
}

/// The lines the guest printed.
fn out(run: &Run) -> Vec<&str> {
    run.stdout.lines().collect()
}

/// The `http` events of an audit log (its `family` is the capability).
fn http_events(audit: &[Value]) -> Vec<&Value> {
    audit.iter().filter(|e| e["family"] == "http").collect()
}

/// The one `http` event with this target: it names `nanoprocess`, the operation
/// and `decision`.
#[track_caller]
fn event<'a>(audit: &'a [Value], nanoprocess: &str, target: &str, decision: &str) -> &'a Value {
    let found: Vec<&Value> = http_events(audit)
        .into_iter()
        .filter(|e| e["target"] == target)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one http event for {target:?} expected in:\n{}",
        show(audit)
    );
    let e = found[0];
    assert_eq!(e["nanoprocess"], nanoprocess, "{e}");
    assert_eq!(e["operation"], HANDLE, "{e}");
    assert_eq!(e["decision"], decision, "{e}");
    e
}

/// The reason of a refused or failed event.
fn reason(e: &Value) -> &str {
    e["reason"]
        .as_str()
        .unwrap_or_else(|| panic!("no reason in {e}"))
}

fn show(audit: &[Value]) -> String {
    audit
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

const DENIED: &str = "error=ErrorCode::HttpRequestDenied";
const PROHIBITED: &str = "error=ErrorCode::DestinationIpProhibited";
const HELLO: &str = "status=200 len=5 body=hello";

/// The test server itself: every route answers as documented and every request is
/// logged, so that "the server saw nothing" below means something.
#[test]
fn the_test_server_answers_and_logs() {
    let server = Server::http();
    server.assert_untouched("a new server");
    let get = |target: &str| raw_get(server.port(), target);
    assert!(get("/hello").ends_with("\r\n\r\nhello"));
    assert!(get("/big?n=7").ends_with("\r\n\r\nxxxxxxx"));
    assert!(get("/status?code=418").starts_with("HTTP/1.1 418"));
    let r = get("/redirect?to=http://127.0.0.1:1/x?y=1");
    assert!(r.starts_with("HTTP/1.1 302"), "{r}");
    assert!(r.contains("location: http://127.0.0.1:1/x?y=1\r\n"), "{r}");
    assert!(get("/slow?ms=50").ends_with("slow"));
    assert!(get("/v1/x").ends_with("at /v1/x"));
    assert_eq!(server.connections(), 6);
    let seen = server.requests();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].host, "127.0.0.1");
    assert_eq!(server.targets()[5], "/v1/x");
}

/// A GET over a plain socket, `Connection: close`, the whole answer as text.
fn raw_get(port: u16, target: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn a_granted_url_is_answered_and_an_ungranted_one_never_leaves() {
    let server = Server::http();
    let (scene, m) = granted(&[&server.base()]);
    let url = server.url("/hello");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [HELLO], "{r:?}");
    event(&audit, "client", &format!("GET {url} -> 200"), "allowed");
    assert_eq!(server.targets(), ["/hello"]);
    assert_eq!(
        server.requests()[0].host,
        format!("127.0.0.1:{}", server.port())
    );

    // The same component with no http grant at all: refused before anything is
    // resolved or sent.
    let other = Server::http();
    let url = other.url("/hello");
    let (scene, m) = single(&client(), "");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [DENIED], "{r:?}");
    let e = event(&audit, "client", &format!("GET {url}"), "refused");
    assert_eq!(reason(e), "http is not granted", "{e}");
    other.assert_untouched("a request with no http grant");
    // The refusal is also told on stderr, with the nanoprocess and the URL.
    assert!(
        r.stderr.contains(&format!(
            "client: http GET {url} (wasi:http/outgoing-handler.handle)"
        )),
        "{r:?}"
    );
}

#[test]
fn port_scheme_and_path_prefix_are_each_part_of_the_grant() {
    let server = Server::http();
    let elsewhere = Server::http();
    let prefix = server.url("/v1/");
    let (scene, m) = granted(&[&prefix]);
    let go = |url: &str| run(&scene, &[], &m, &["GET", url]);

    let (r, audit) = go(&server.url("/v1/x"));
    assert_eq!(out(&r), ["status=200 len=8 body=at /v1/x"], "{r:?}");
    event(
        &audit,
        "client",
        &format!("GET {} -> 200", server.url("/v1/x")),
        "allowed",
    );

    let refused = [
        // Outside the prefix, lexically or once a server reads the dots.
        server.url("/v2/x"),
        server.url("/v1"),
        server.url("/v10/x"),
        server.url("/v1/../v2"),
        server.url("/v1/%2e%2e/v2"),
        server.url("/v1/%2E%2E/v2"),
        server.url("/v1/..;/v2"),
        server.url("/v1/.%2fv2"),
        // Another port, another scheme.
        elsewhere.url("/v1/x"),
        format!("https://127.0.0.1:{}/v1/x", server.port()),
    ];
    for url in &refused {
        let (r, audit) = go(url);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(out(&r), [DENIED], "{url}: {r:?}");
        let e = event(&audit, "client", &format!("GET {url}"), "refused");
        assert!(
            reason(e).contains(&prefix),
            "{url}: the reason names the grant: {e}"
        );
    }
    // Only the one granted request reached a server.
    assert_eq!(server.targets(), ["/v1/x"]);
    elsewhere.assert_untouched("a request to a port not granted");
}

#[test]
fn a_host_by_another_spelling_is_another_grant() {
    let server = Server::http();
    let port = server.port();
    let by_name = format!("http://localhost:{port}");
    let by_ip = format!("http://127.0.0.1:{port}");

    // The name alone: localhost resolves to a loopback address no pattern names,
    // so the request is refused once resolved, before a connection.
    let (scene, m) = granted(&[&by_name]);
    let url = format!("{by_name}/hello");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [PROHIBITED], "{r:?}");
    let e = event(&audit, "client", &format!("GET {url}"), "refused");
    // The first address judged is named, with the grant that would allow it
    // (::1 first where /etc/hosts lists it first).
    let why = reason(e);
    assert!(
        (why.contains("localhost resolved to 127.0.0.1, a loopback address")
            && why.contains(&format!("grant \"{by_ip}\"")))
            || (why.contains("localhost resolved to ::1, a loopback address")
                && why.contains(&format!("grant \"http://[::1]:{port}\""))),
        "the reason names the address and says what to grant: {e}"
    );
    server.assert_untouched("a name leading to loopback");

    // The name and the address both granted: allowed, and the server is asked
    // for the name.
    let (scene, m) = granted(&[&by_name, &by_ip]);
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [HELLO], "{r:?}");
    event(&audit, "client", &format!("GET {url} -> 200"), "allowed");
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].host, format!("localhost:{port}"));

    // The address granted, the name asked for: the name is not granted.
    let (scene, m) = granted(&[&by_ip]);
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [DENIED], "{r:?}");
    let e = event(&audit, "client", &format!("GET {url}"), "refused");
    assert!(reason(e).contains("no http grant allows"), "{e}");

    // The name granted, the address asked for: refused, and the reason says a
    // name never reaches an address.
    let (scene, m) = granted(&[&by_name]);
    let url = format!("{by_ip}/hello");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [DENIED], "{r:?}");
    let e = event(&audit, "client", &format!("GET {url}"), "refused");
    assert!(
        reason(e).contains("a name grant never reaches an address literal"),
        "{e}"
    );
    // Nothing but the one allowed request reached the server.
    assert_eq!(server.targets(), ["/hello"]);
    assert_eq!(server.connections(), 1);
}

/// The machine's own name leads to the machine: in a container it resolves (by
/// /etc/hosts) to a loopback or private address. Granting the name does not grant
/// the machine.
#[test]
fn the_machines_own_name_does_not_lead_inside() {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|n| n.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if name.is_empty()
        || name
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        eprintln!("note: skipped, no usable host name ({name:?})");
        return;
    }
    let server = Server::http();
    let port = server.port();
    let resolved: Vec<std::net::IpAddr> =
        std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
            .map(|a| a.map(|a| a.ip()).collect())
            .unwrap_or_default();
    let inside = |ip: &std::net::IpAddr| match ip {
        std::net::IpAddr::V4(a) => a.is_loopback() || a.is_private() || a.is_link_local(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if resolved.is_empty() || !resolved.iter().all(inside) {
        eprintln!(
            "note: skipped, the host name {name:?} resolves to {resolved:?}, not only inside"
        );
        return;
    }
    let url = format!("http://{name}:{port}/hello");
    let (scene, m) = granted(&[&format!("http://{name}:{port}")]);
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        out(&r),
        [PROHIBITED],
        "{name} resolves to {resolved:?}: {r:?}"
    );
    let e = event(&audit, "client", &format!("GET {url}"), "refused");
    assert!(
        resolved
            .iter()
            .any(|ip| reason(e).contains(&format!("{name} resolved to {ip}"))),
        "{e}"
    );
    server.assert_untouched("the machine's own name");
}

const CERT_ERROR: &str = "error=ErrorCode::TlsCertificateError";

#[test]
fn https_trusts_the_roots_it_is_given_and_checks_the_name() {
    let scene = Scene::new();
    let ca = TestCa::new(scene.dir.path(), "ca.pem");
    let server = Server::https(&ca.identity(&["localhost", "127.0.0.1"]));
    let port = server.port();
    let url = format!("https://127.0.0.1:{port}/hello");
    let m = scene.manifest(&format!(
        "[app]\nroot = \"client\"\n\n[nanoprocess.client]\ncomponent = \"{}\"\n\
         grants.stdout = true\n{}\n",
        client(),
        http_grant(&[
            &format!("https://127.0.0.1:{port}"),
            &format!("https://localhost:{port}")
        ])
    ));
    let ca_flag = ca.pem.display().to_string();
    let with_ca = ["--http-ca", ca_flag.as_str()];

    // Only the system's roots: the certificate is refused, and the request with it.
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [CERT_ERROR], "{r:?}\n{}", show(&audit));
    let e = event(&audit, "client", &format!("GET {url}"), "failed");
    assert!(reason(e).contains("certificate"), "{e}");
    assert!(server.targets().is_empty(), "nothing was sent");
    assert!(
        server.settled(|s| s.tls_failures() == 1),
        "one handshake refused"
    );

    // The test CA trusted: answered.
    let (r, audit) = run(&scene, &with_ca, &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [HELLO], "{r:?}");
    event(&audit, "client", &format!("GET {url} -> 200"), "allowed");
    assert_eq!(server.targets(), ["/hello"]);

    // Another CA's root does not vouch for this server either.
    let other = TestCa::new(scene.dir.path(), "other.pem");
    let other_flag = other.pem.display().to_string();
    let (r, _) = run(&scene, &["--http-ca", &other_flag], &m, &["GET", &url]);
    assert_eq!(out(&r), [CERT_ERROR], "{r:?}");
    assert_eq!(server.targets(), ["/hello"], "nothing more was sent");
}

#[test]
fn an_https_certificate_must_name_the_host_as_written() {
    let scene = Scene::new();
    let ca = TestCa::new(scene.dir.path(), "ca.pem");
    let ca_flag = ca.pem.display().to_string();
    // One server certified for the name only, one for the address only.
    let for_name = Server::https(&ca.identity(&["localhost"]));
    let for_ip = Server::https(&ca.identity(&["127.0.0.1"]));
    let patterns: Vec<String> = [for_name.port(), for_ip.port()]
        .iter()
        .flat_map(|p| {
            [
                format!("https://127.0.0.1:{p}"),
                format!("https://localhost:{p}"),
            ]
        })
        .collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let (_manifest_scene, m) = granted(&patterns);
    let go = |url: &str| run(&scene, &["--http-ca", &ca_flag], &m, &["GET", url]);

    // As certified: answered.
    let (r, _) = go(&format!("https://localhost:{}/hello", for_name.port()));
    assert_eq!(out(&r), [HELLO], "{r:?}");
    let (r, _) = go(&format!("https://127.0.0.1:{}/hello", for_ip.port()));
    assert_eq!(out(&r), [HELLO], "{r:?}");

    // The same servers by the other spelling: the certificate does not name it.
    for url in [
        format!("https://127.0.0.1:{}/hello", for_name.port()),
        format!("https://localhost:{}/hello", for_ip.port()),
    ] {
        let (r, audit) = go(&url);
        assert_eq!(out(&r), [CERT_ERROR], "{url}: {r:?}");
        let e = event(&audit, "client", &format!("GET {url}"), "failed");
        assert!(reason(e).contains("certificate"), "{e}");
    }
    for server in [&for_name, &for_ip] {
        assert_eq!(server.targets(), ["/hello"]);
        assert!(
            server.settled(|s| s.tls_failures() == 1),
            "one handshake refused"
        );
    }
}

#[test]
fn a_trust_root_file_that_holds_no_certificate_stops_the_run_before_it_starts() {
    let server = Server::http();
    let (scene, m) = granted(&[&server.base()]);
    let bad = scene.file("roots.pem", "not a certificate\n");
    let bad_flag = bad.display().to_string();
    let (r, _) = run(
        &scene,
        &["--http-ca", &bad_flag],
        &m,
        &["GET", &server.url("/hello")],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "nanoproc: --http-ca: {bad_flag} holds no PEM certificate"
        )),
        "the message names the flag and the file: {r:?}"
    );
    server.assert_untouched("a run with a bad --http-ca");
}

#[test]
fn a_redirect_is_a_new_request_judged_again() {
    let server = Server::http();
    let ungranted = Server::http();
    let (scene, m) = granted(&[&server.base()]);

    // To a port not granted: the first answer comes back, the second request is
    // refused and never reaches the other server.
    let away = ungranted.url("/hello");
    let first = server.url(&format!("/redirect?to={away}"));
    let (r, audit) = run(&scene, &[], &m, &["GET", &first, "--follow"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        out(&r),
        [format!("redirect=302 location={away}").as_str(), DENIED],
        "{r:?}"
    );
    event(&audit, "client", &format!("GET {first} -> 302"), "allowed");
    event(&audit, "client", &format!("GET {away}"), "refused");
    ungranted.assert_untouched("a redirect to a port not granted");

    // To the same server by name: another host, not granted either.
    let by_name = format!("http://localhost:{}/hello", server.port());
    let first = server.url(&format!("/redirect?to={by_name}"));
    let (r, audit) = run(&scene, &[], &m, &["GET", &first, "--follow"]);
    assert_eq!(
        out(&r),
        [format!("redirect=302 location={by_name}").as_str(), DENIED],
        "{r:?}"
    );
    event(&audit, "client", &format!("GET {by_name}"), "refused");

    // Within the grant: followed.
    let home = server.url("/hello");
    let first = server.url(&format!("/redirect?to={home}"));
    let (r, audit) = run(&scene, &[], &m, &["GET", &first, "--follow"]);
    assert_eq!(
        out(&r),
        [format!("redirect=302 location={home}").as_str(), HELLO],
        "{r:?}"
    );
    event(&audit, "client", &format!("GET {home} -> 200"), "allowed");

    let targets = server.targets();
    assert_eq!(targets.len(), 4, "{targets:?}");
    assert_eq!(targets[3], "/hello");
    assert!(
        targets[..3].iter().all(|t| t.starts_with("/redirect?to=")),
        "{targets:?}"
    );
}

#[test]
fn requests_in_flight_are_limited() {
    let server = Server::http();
    let (scene, m) = single(
        &client(),
        &format!(
            "{}\ngrants.http-requests = 2",
            http_grant(&[&server.base()])
        ),
    );
    let url = server.url("/slow?ms=300");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url, "--parallel", "4"]);
    assert_eq!(r.code, 0, "{r:?}");
    let lines = out(&r);
    assert_eq!(lines.len(), 4, "{r:?}");
    let ok = lines
        .iter()
        .filter(|l| **l == "status=200 len=4 body=slow")
        .count();
    let limited = lines
        .iter()
        .filter(|l| **l == "error=ErrorCode::ConnectionLimitReached")
        .count();
    assert_eq!((ok, limited), (2, 2), "{r:?}");
    let events = http_events(&audit);
    let allowed = events.iter().filter(|e| e["decision"] == "allowed").count();
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e["decision"] == "refused")
        .collect();
    assert_eq!((allowed, refused.len()), (2, 2), "{}", show(&audit));
    for e in refused {
        assert_eq!(e["target"], format!("GET {url}"), "{e}");
        assert!(reason(e).contains("http-requests"), "{e}");
    }
    assert_eq!(server.requests().len(), 2, "{:?}", server.requests());
}

#[test]
fn bodies_are_limited_each_way() {
    let server = Server::http();
    let (scene, m) = single(
        &client(),
        &format!(
            "{}\ngrants.http-body = \"1KiB\"",
            http_grant(&[&server.base()])
        ),
    );
    let go = |args: &[&str]| run(&scene, &[], &m, args);

    // Within the limit, both ways.
    let (r, _) = go(&["GET", &server.url("/big?n=512")]);
    assert_eq!(out(&r).len(), 1, "{r:?}");
    assert!(
        out(&r)[0].starts_with("status=200 len=512 body=xxxx"),
        "{r:?}"
    );
    let (r, _) = go(&["POST", &server.url("/echo"), "--body", "512"]);
    assert_eq!(out(&r), ["status=200 len=3 body=512"], "{r:?}");

    // A response over it: the headers arrive, the body stops at the limit.
    let (r, _) = go(&["GET", &server.url("/big?n=4096")]);
    let line = out(&r).concat();
    assert!(line.starts_with("status=200 len="), "{r:?}");
    // The guest reads the body through a stream, whose error is the host's text.
    assert!(
        line.contains("error=ErrorCode::HttpResponseBodySize")
            || line.contains("body size exceeds limit: 1024 bytes"),
        "{r:?}"
    );
    let read: u64 = line["status=200 len=".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(read <= 1024, "read {read} bytes past a 1 KiB limit: {r:?}");

    // A request body over it: refused or cut, and never delivered whole.
    let (r, audit) = go(&["POST", &server.url("/echo"), "--body", "4096"]);
    let line = out(&r).concat();
    assert!(
        line.starts_with("error=") && line.contains("HttpRequestBodySize"),
        "{r:?}\n{}\nserver saw {:?}",
        show(&audit),
        server.requests()
    );
    let target = format!("POST {}", server.url("/echo"));
    let e = event(&audit, "client", &target, "failed");
    assert!(reason(e).contains("http-body"), "{e}");
    assert_eq!(
        server.echoed(),
        [512],
        "only the small upload arrived whole"
    );
}

#[test]
fn a_slow_answer_is_cut_at_the_time_limit() {
    let server = Server::http();
    let (scene, m) = single(
        &client(),
        &format!(
            "{}\ngrants.http-timeout = \"200ms\"",
            http_grant(&[&server.base()])
        ),
    );
    let url = server.url("/slow?ms=5000");
    let (r, audit, ended) = run_timed(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    let line = out(&r).concat();
    assert!(
        line == "error=ErrorCode::ConnectionReadTimeout"
            || line == "error=ErrorCode::HttpResponseTimeout",
        "{r:?}"
    );
    let e = event(&audit, "client", &format!("GET {url}"), "failed");
    assert!(reason(e).contains("time"), "{e}");
    // From the request's arrival to the end of the whole run: well within the
    // 5 s the server would have taken (the bound leaves room for a loaded machine).
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let waited = ended - seen[0].at;
    assert!(
        waited < Duration::from_millis(2500) && waited >= Duration::from_millis(150),
        "the run ended {waited:?} after the request arrived"
    );
}

/// The chain driver -> mid -> leaf: `fetch(URL)` is done by the leaf, and
/// `fetch("self:URL")` by mid itself.
fn chain(scene: &Scene, root: &str, mid: &str, leaf: &str) -> PathBuf {
    scene.manifest(&format!(
        r#"[app]
root = "driver"

[nanoprocess.driver]
component = "{driver}"
deps = {{ "nanoproc:http-test/fetch" = "mid" }}
grants.stdout = true
{root}

[nanoprocess.mid]
component = "{mid_c}"
deps = {{ "nanoproc:http-test/fetch" = "leaf" }}
on-failure = "error"
{mid}

[nanoprocess.leaf]
component = "{leaf_c}"
on-failure = "error"
{leaf}
"#,
        driver = guest("http_fetch_driver").display(),
        mid_c = guest("http_fetch_mid").display(),
        leaf_c = guest("http_fetcher").display(),
    ))
}

#[test]
fn each_depth_reaches_only_what_its_own_grant_allows() {
    let server = Server::http();
    let base = server.base();
    let scene = Scene::new();
    let m = chain(
        &scene,
        &http_grant(&[&base]),
        &http_grant(&[&format!("{base}/a/")]),
        &http_grant(&[&format!("{base}/a/b/")]),
    );
    let mid_ok = server.url("/a/x");
    let mid_no = server.url("/c");
    let leaf_ok = server.url("/a/b/c");
    let leaf_no = server.url("/a/x");
    let leaf_up = server.url("/a/b/../../c");
    let args = [
        format!("self:{mid_ok}"),
        format!("self:{mid_no}"),
        leaf_ok.clone(),
        leaf_no.clone(),
        leaf_up.clone(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (r, audit) = run(&scene, &[], &m, &args);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        out(&r),
        [
            format!("self:{mid_ok} -> status=200 len=7 body=at /a/x"),
            format!("self:{mid_no} -> {DENIED}"),
            format!("{leaf_ok} -> status=200 len=9 body=at /a/b/c"),
            format!("{leaf_no} -> {DENIED}"),
            format!("{leaf_up} -> {DENIED}"),
        ],
        "{r:?}"
    );
    event(
        &audit,
        "driver/mid",
        &format!("GET {mid_ok} -> 200"),
        "allowed",
    );
    let e = event(&audit, "driver/mid", &format!("GET {mid_no}"), "refused");
    assert!(reason(e).contains(&format!("{base}/a/")), "{e}");
    event(
        &audit,
        "driver/mid/leaf",
        &format!("GET {leaf_ok} -> 200"),
        "allowed",
    );
    let e = event(
        &audit,
        "driver/mid/leaf",
        &format!("GET {leaf_no}"),
        "refused",
    );
    assert!(reason(e).contains(&format!("{base}/a/b/")), "{e}");
    event(
        &audit,
        "driver/mid/leaf",
        &format!("GET {leaf_up}"),
        "refused",
    );
    assert_eq!(server.targets(), ["/a/x", "/a/b/c"]);

    // A child with no grants.http holds none: its parent's is not inherited.
    let m = chain(&scene, &http_grant(&[&base]), &http_grant(&[&base]), "");
    let url = server.url("/hello");
    let (r, audit) = run(&scene, &[], &m, &[&url]);
    assert_eq!(out(&r), [format!("{url} -> {DENIED}")], "{r:?}");
    let e = event(&audit, "driver/mid/leaf", &format!("GET {url}"), "refused");
    assert_eq!(reason(e), "http is not granted", "{e}");
    assert_eq!(server.targets(), ["/a/x", "/a/b/c"]);
}

#[test]
fn a_child_cannot_grant_itself_more_than_its_parent_holds() {
    let server = Server::http();
    let base = server.base();
    let scene = Scene::new();
    let mid = format!("{base}/a/");
    // Wider in path, in port, in scheme, and by the same host's name.
    let wider = [
        (base.clone(), "is for paths under /a/ only"),
        (
            format!(
                "http://127.0.0.1:{}-{}/a/b/",
                server.port(),
                server.port() + 1
            ),
            "only",
        ),
        (
            format!("https://127.0.0.1:{}/a/b/", server.port()),
            "is for http only",
        ),
        (format!("http://localhost:{}/a/b/", server.port()), ""),
    ];
    for (leaf, why) in &wider {
        let m = chain(
            &scene,
            &http_grant(&[&base]),
            &http_grant(&[&mid]),
            &http_grant(&[leaf]),
        );
        let r = check(&m);
        assert_eq!(r.code, 125, "{leaf}: {r:?}");
        assert!(
            r.stderr.contains(&format!(
                "driver/mid/leaf: grant http[0] (\"{leaf}\") exceeds what its parent `driver/mid` holds: no http pattern of the parent covers {leaf}"
            )),
            "{leaf}: {r:?}"
        );
        assert!(r.stderr.contains(why), "{leaf}: {r:?}");
        assert!(
            r.stderr.contains(&format!("`driver/mid` holds: {mid}")),
            "{leaf}: {r:?}"
        );
        // And it is not run either.
        let (r, _) = run(&scene, &[], &m, &[&server.url("/a/b/c")]);
        assert_eq!(r.code, 125, "{r:?}");
        assert!(r.stdout.is_empty(), "{r:?}");
    }
    server.assert_untouched("trees refused at check");
}

#[test]
fn a_wasi_0_3_client_is_granted_and_refused_alike() {
    let server = Server::http();
    let other = Server::http();
    let (scene, m) = single(&client3(), &http_grant(&[&server.base()]));
    let url = server.url("/hello");
    let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [HELLO], "{r:?}");
    event(&audit, "client", &format!("GET {url} -> 200"), "allowed");

    let away = other.url("/hello");
    let (r, audit) = run(&scene, &[], &m, &["GET", &away]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [DENIED], "{r:?}");
    let e = event(&audit, "client", &format!("GET {away}"), "refused");
    assert!(reason(e).contains(&server.base()), "{e}");
    other.assert_untouched("a 0.3 request to a port not granted");

    // A redirect is judged again in 0.3 too, and a name is not its address.
    let by_name = format!("http://localhost:{}/hello", server.port());
    let first = server.url(&format!("/redirect?to={by_name}"));
    let (r, audit) = run(&scene, &[], &m, &["GET", &first, "--follow"]);
    assert_eq!(
        out(&r),
        [format!("redirect=302 location={by_name}").as_str(), DENIED],
        "{r:?}"
    );
    event(&audit, "client", &format!("GET {by_name}"), "refused");
    assert_eq!(server.targets().len(), 2);

    // And its requests in flight are limited the same way.
    let (scene, m) = single(
        &client3(),
        &format!(
            "{}\ngrants.http-requests = 1",
            http_grant(&[&server.base()])
        ),
    );
    // Long enough that the first is still in flight when the second is sent,
    // however the two futures are polled.
    let slow = server.url("/slow?ms=1000");
    let (r, _) = run(&scene, &[], &m, &["GET", &slow, "--parallel", "2"]);
    let mut lines = out(&r);
    lines.sort();
    assert_eq!(
        lines,
        [
            "error=ErrorCode::ConnectionLimitReached",
            "status=200 len=4 body=slow"
        ],
        "{r:?}"
    );
}

/// A component that imports wasi:http with no http grant passes `check` (it holds
/// `http none`, as a component importing sockets holds `network none`), and each
/// request it makes is refused with a hint saying how to grant it: in the manifest,
/// or with `--http` for a component run on its own.
#[test]
fn wasi_http_without_a_grant_is_refused_at_use_with_a_hint() {
    let server = Server::http();
    let (scene, m) = single(&client(), "");
    let r = check(&m);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("    http    none\n"), "{r:?}");
    let url = server.url("/hello");
    let (r, _) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [DENIED], "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "client: http GET {url} (wasi:http/outgoing-handler.handle): http is not granted\n"
        )),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "to allow it: add `grants.http = [\"{}\"]` to [nanoprocess.client]",
            server.base()
        )),
        "the hint says how to grant it: {r:?}"
    );

    // On its own, with --http: granted there, refused elsewhere with a --http hint.
    let other = Server::http();
    let base = server.base();
    let c = client();
    let (r, _) = nanoproc_within(LIMIT, &["run", "--http", &base, &c, "GET", &url]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(out(&r), [HELLO], "{r:?}");
    let away = other.url("/hello");
    let (r, _) = nanoproc_within(LIMIT, &["run", "--http", &base, &c, "GET", &away]);
    assert_eq!(out(&r), [DENIED], "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "to allow it: grant it with --http {}",
            other.base()
        )),
        "{r:?}"
    );
    assert_eq!(server.targets(), ["/hello"]);
    other.assert_untouched("requests with no grant, or another port's");
}

/// `http://*:*` grants the public internet, not the machine: every spelling of a
/// loopback or unspecified address, by name, literal, IPv4-mapped IPv6 or a
/// numeric form a resolver would read as an address, is refused before a
/// connection; and a guest cannot name another host in a `host` header.
#[test]
fn granting_everything_does_not_grant_the_machine() {
    let server = Server::http();
    let port = server.port();
    let (scene, m) = granted(&["http://*:*"]);
    let cases = [
        // Judged by the resolution rule: not public, and no pattern names it.
        ("127.0.0.1", PROHIBITED, "127.0.0.1 is a loopback address"),
        ("localhost", PROHIBITED, "localhost resolved to"),
        ("localhost.", PROHIBITED, "localhost resolved to"),
        ("[::1]", PROHIBITED, "::1 is a loopback address"),
        ("0.0.0.0", PROHIBITED, "0.0.0.0 is an unspecified address"),
        (
            "[::ffff:127.0.0.1]",
            PROHIBITED,
            "::ffff:127.0.0.1 is an IPv6 address carrying a non-public IPv4 address",
        ),
        // Not a name, not an address: refused before anything is resolved.
        ("127.1", DENIED, "looks like a numeric IPv4 address"),
        ("2130706433", DENIED, "looks like a numeric IPv4 address"),
        ("0x7f000001", DENIED, "looks like a numeric IPv4 address"),
        ("127.0.0.1.", DENIED, "looks like a numeric IPv4 address"),
        ("user@127.0.0.1", DENIED, "user information"),
    ];
    for (host, line, why) in cases {
        let url = format!("http://{host}:{port}/hello");
        let (r, audit) = run(&scene, &[], &m, &["GET", &url]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(out(&r), [line], "{url}: {r:?}");
        let e = event(&audit, "client", &format!("GET {url}"), "refused");
        assert!(reason(e).contains(why), "{url}: {e}");
    }
    server.assert_untouched("loopback under http://*:*");

    // A network pattern names the addresses in it, a name reaching one of them
    // included.
    let (scene, m) = granted(&[
        &format!("http://[127.0.0.0/8]:{port}"),
        &format!("http://localhost:{port}"),
    ]);
    let url = format!("http://localhost:{port}/hello");
    let (r, _) = run(&scene, &[], &m, &["GET", &url]);
    assert_eq!(out(&r), [HELLO], "{r:?}");
    // The host header is the URL's: a guest that sets its own is stopped when it
    // builds the request (wasi:http forbids the header), before anything is sent.
    let (r, audit) = run(
        &scene,
        &[],
        &m,
        &["GET", &url, "--header", "host:admin.example"],
    );
    assert_eq!(
        out(&r),
        ["error=header host: HeaderError::Forbidden"],
        "{r:?}"
    );
    assert!(http_events(&audit).is_empty(), "{}", show(&audit));
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].host, format!("localhost:{port}"));
}

/// A server that sends a response's body one byte at a time, each just within
/// any wait between bytes: `http-timeout` bounds the whole request, so the body is
/// cut at the limit instead of holding the connection (and the guest's place among
/// the requests in flight) for as long as the server likes.
#[test]
fn a_dripping_answer_is_cut_at_the_time_limit_of_the_whole_request() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dripper = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let mut stream = stream;
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n");
        let started = Instant::now();
        // 100 bytes, one every 50 ms: 5 s in all, unless the client goes away.
        for _ in 0..100 {
            if stream.write_all(b"x").and_then(|_| stream.flush()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        started.elapsed()
    });
    let base = format!("http://127.0.0.1:{port}");
    let (scene, m) = single(
        &client(),
        &format!("{}\ngrants.http-timeout = \"600ms\"", http_grant(&[&base])),
    );
    let url = format!("{base}/drip");
    let started = Instant::now();
    let (r, _audit) = run(&scene, &[], &m, &["GET", &url]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{r:?}");
    let line = out(&r).concat();
    assert!(line.starts_with("status=200"), "{r:?}");
    assert!(line.contains("error="), "the body was cut: {r:?}");
    assert!(
        took < Duration::from_millis(4000),
        "the run took {took:?}, as long as the server dripped"
    );
    let dripped = dripper.join().unwrap();
    assert!(
        dripped < Duration::from_millis(4500),
        "the connection stayed open {dripped:?}"
    );
}
