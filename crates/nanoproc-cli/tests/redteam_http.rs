//! The http family's red team: a hostile guest (guests/http-hostile) making raw
//! `wasi:http` 0.2 calls that http-client's arguments cannot express, run by the
//! `nanoproc` binary against real loopback servers: the test server of
//! common/http_server.rs, and raw ones here (a std `TcpListener` whose bytes the
//! test controls: one that never answers, one whose answer is all headers).
//!
//! Each test is one attack, named by what must hold. The ones that broke say
//! FOUND, what happened and what was fixed.

use crate::common;
use common::http_server::Server;
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one `nanoproc` run may take before the test kills it and fails.
const LIMIT: Duration = Duration::from_secs(60);

fn hostile() -> String {
    guest("http_hostile").display().to_string()
}

/// `nanoproc run --audit FILE FLAGS... http_hostile ARGS...` within [`LIMIT`]: the
/// run and its audit log's http events.
fn attack(scene: &Scene, flags: &[&str], args: &[&str]) -> (Run, Vec<Value>) {
    let log = scene.path("audit.jsonl");
    let _ = std::fs::remove_file(&log);
    let (l, h) = (log.display().to_string(), hostile());
    let mut all = vec!["run", "--timeout", "30s", "--audit", l.as_str()];
    all.extend_from_slice(flags);
    all.push(h.as_str());
    all.extend_from_slice(args);
    let (run, _) = nanoproc_within(LIMIT, &all);
    let events = if log.exists() {
        audit_lines(&log)
            .into_iter()
            .filter(|e| e["family"] == "http")
            .collect()
    } else {
        Vec::new()
    };
    (run, events)
}

/// The value of `key=` in the guest's output (`bodies=3 bytes=12` has `bytes`).
#[track_caller]
fn number(run: &Run, key: &str) -> u64 {
    let prefix = format!("{key}=");
    run.stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {run:?}"))
}

fn first_line(run: &Run) -> &str {
    run.stdout.lines().next().unwrap_or_default()
}

/// A raw loopback server: every connection accepted is read until the client
/// closes it (or 20 s pass), its bytes and how long it lived recorded; `answer`,
/// if any, is written once the first bytes of a request arrived.
struct RawServer {
    port: u16,
    conns: Arc<Mutex<Vec<RawConn>>>,
}

#[derive(Clone, Debug, Default)]
struct RawConn {
    bytes: Vec<u8>,
    /// How long after it was accepted the client closed it; `None` while open.
    closed_after: Option<Duration>,
}

impl RawServer {
    fn start(answer: Option<Vec<u8>>) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<RawConn>>> = Arc::default();
        let shared = conns.clone();
        // Detached: it ends with the test binary; each connection at most 20 s.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let conns = shared.clone();
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let accepted = Instant::now();
                    let me = {
                        let mut all = conns.lock().unwrap();
                        all.push(RawConn::default());
                        all.len() - 1
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let mut answered = answer.is_none();
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) => {
                                conns.lock().unwrap()[me].closed_after = Some(accepted.elapsed());
                                return;
                            }
                            Ok(n) => {
                                conns.lock().unwrap()[me].bytes.extend_from_slice(&buf[..n]);
                                if !answered {
                                    answered = true;
                                    let _ = stream.write_all(answer.as_deref().unwrap_or_default());
                                }
                            }
                            Err(_) => {
                                // A reset is a close too; a timeout is not.
                                if accepted.elapsed() < Duration::from_secs(19) {
                                    conns.lock().unwrap()[me].closed_after =
                                        Some(accepted.elapsed());
                                }
                                return;
                            }
                        }
                    }
                });
            }
        });
        RawServer { port, conns }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    fn conns(&self) -> Vec<RawConn> {
        self.conns.lock().unwrap().clone()
    }

    /// The connections once each is closed, waiting up to 10 s for that.
    fn closed(&self, expected: usize) -> Vec<RawConn> {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let conns = self.conns();
            if conns.len() >= expected && conns.iter().all(|c| c.closed_after.is_some())
                || Instant::now() > until
            {
                return conns;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// FOUND, fixed in families/http: a request's body buffered by the host was
/// charged to no limit. wasmtime-wasi-http lets a 0.2 guest write a request's body
/// before (or without ever) handing the request to `handle`: each `check-write`
/// granted 1 MiB, two writes fit in its channel, and a finished body's bytes stay
/// there as long as the request does, which is one handle. A guest held to 16 MiB
/// of memory and 200 handles made nanoproc hold 380 MiB (190 requests, 2 MiB
/// each, peak resident 436 MiB), and a dependency at the default 4,096 handles
/// could have made it hold 8 GiB, with no grant at all: `wasi:http/types` is
/// linked for any component that imports it. The host now takes a body 16 KiB at a
/// time (two chunks buffered: 32 KiB a request).
#[test]
fn request_bodies_never_sent_cost_the_host_little_per_handle() {
    let scene = Scene::new();
    let (run, _) = attack(
        &scene,
        &["--stats", "--memory", "16MiB", "--handles", "200"],
        &["bodies", "190", "http://127.0.0.1:9/x"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(number(&run, "bodies"), 190, "{run:?}");
    let held = number(&run, "bytes");
    assert!(
        held <= 190 * 32 * 1024,
        "190 unsent requests made the host buffer {held} bytes: {run:?}"
    );
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 16 * 1024 + 200 * 64,
        "a guest limited to 16 MiB and 200 handles made nanoproc use {peak} KiB: {run:?}"
    );
}

/// FOUND, fixed in families/http: a `fields` could hold 128 KiB of the guest's
/// header bytes in the host (wasmtime-wasi-http's default limit of a `fields`'
/// size), each one handle: 900 of them, under `--memory 16MiB`, took 123 MiB of
/// nanoproc's memory, and a dependency at the default 4,096 handles could take
/// 550 MiB, again without any grant. A `fields` now holds at most 32 KiB (more
/// than the 8 to 16 KiB of headers common servers accept at all); past it the
/// guest traps, as wasmtime-wasi-http traps past its own limit.
#[test]
fn header_fields_cost_the_host_little_per_handle() {
    let scene = Scene::new();
    // 9 values of 4000 bytes: over 32 KiB in one `fields`.
    let (run, _) = attack(&scene, &["--memory", "16MiB"], &["fields", "1", "9"]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("total size of fields exceeds limit"),
        "{run:?}"
    );
    // 8 of them, the most that fits, in each of 2,990 `fields`.
    let (run, _) = attack(
        &scene,
        &["--stats", "--memory", "16MiB", "--handles", "3000"],
        &["fields", "2990", "8"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(number(&run, "fields"), 2990, "{run:?}");
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 16 * 1024 + 3000 * 40,
        "a guest limited to 16 MiB and 3000 handles made nanoproc use {peak} KiB: {run:?}"
    );
}

/// Copies of a response's headers share the server's bytes: a guest that makes
/// 900 of an answer of 350 KB of headers (each `fields.clone`, one header deleted
/// so that the copy is its own) holds 900 maps, not 900 copies of the values.
#[test]
fn copies_of_a_responses_headers_share_its_bytes() {
    let mut answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n".to_vec();
    for i in 0..90 {
        answer.extend_from_slice(format!("x-{i}: {}\r\n", "v".repeat(3900)).as_bytes());
    }
    answer.extend_from_slice(b"\r\nok");
    let server = RawServer::start(Some(answer));
    let scene = Scene::new();
    let grant = server.base();
    let (run, _) = attack(
        &scene,
        &[
            "--stats",
            "--memory",
            "16MiB",
            "--handles",
            "1000",
            "--http",
            &grant,
        ],
        &["heads", &server.url("/"), "900"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(number(&run, "heads"), 900, "{run:?}");
    assert!(number(&run, "bytes") > 300_000_000, "{run:?}");
    let peak = peak_kib(&run);
    assert!(
        peak < HOST_OVERHEAD_KIB + 16 * 1024 + 1000 * 64,
        "900 copies of one response's headers made nanoproc use {peak} KiB: {run:?}"
    );
}

/// A future dropped before its answer gives back its place among the requests in
/// flight and closes its connection: under `http-requests = 2`, six requests to a
/// server that never answers, each dropped 100 ms after `handle`, leave room for a
/// seventh, and the server saw each connection closed when its future was.
#[test]
fn a_future_dropped_before_its_answer_frees_its_place_and_its_connection() {
    let hang = RawServer::start(None);
    let ok = Server::http();
    let scene = Scene::new();
    let (g1, g2) = (hang.base(), ok.base());
    let (run, events) = attack(
        &scene,
        &[
            "--monotonic-clock",
            "--http-requests",
            "2",
            "--http",
            &g1,
            "--http",
            &g2,
        ],
        &["drop-pending", "6", &hang.url("/hang"), &ok.url("/hello")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.lines().collect::<Vec<_>>(),
        ["status=200 len=5 body=hello"],
        "{run:?}"
    );
    let conns = hang.closed(6);
    assert_eq!(conns.len(), 6, "{conns:?}");
    for c in &conns {
        assert!(c.bytes.starts_with(b"GET /hang HTTP/1.1\r\n"), "{c:?}");
        let after = c.closed_after.expect("closed");
        assert!(after < Duration::from_secs(5), "{c:?}");
    }
    // None was refused for the limit.
    assert!(
        events.iter().all(|e| e["decision"] != "refused"),
        "{events:?}"
    );
}

/// FOUND, fixed in families/http: a request was recorded only when its outcome
/// was known, so one whose future was dropped first, by the guest or by the end
/// of its nanoprocess, left no trace in the audit log, though it had reached the
/// server: `handle`, write the body, wait 100 ms, drop the future (or just end)
/// sent anything the grant allowed with no record of it. Now such a request is
/// recorded when it is abandoned: allowed, with the reason that it may have
/// reached the server (or failed, if it was abandoned before a connection).
#[test]
fn a_request_abandoned_before_its_answer_is_still_recorded() {
    let hang = RawServer::start(None);
    let ok = Server::http();
    let scene = Scene::new();
    let (g1, g2) = (hang.base(), ok.base());
    let flags = ["--monotonic-clock", "--http", &g1, "--http", &g2];
    let abandoned = |events: &[Value], target: &str| {
        let found: Vec<&Value> = events.iter().filter(|e| e["target"] == target).collect();
        assert!(!found.is_empty(), "no record of {target} in {events:?}");
        for e in &found {
            assert_eq!(e["decision"], "allowed", "{e}");
            let reason = e["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("abandoned before its answer")
                    && reason.contains("may have reached the server"),
                "{e}"
            );
        }
        found.len()
    };

    // Dropped by the guest.
    let dropped = hang.url("/dropped");
    let (run, events) = attack(
        &scene,
        &flags,
        &["drop-pending", "3", &dropped, &ok.url("/hello")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        abandoned(&events, &format!("GET {dropped}")),
        3,
        "{events:?}"
    );

    // Left in flight when the nanoprocess ended.
    let fired = hang.url("/exfil");
    let (run, events) = attack(&scene, &flags, &["fire", &fired, "200"]);
    assert_eq!(run.stdout, "fired\n", "{run:?}");
    assert_eq!(
        abandoned(&events, &format!("POST {fired}")),
        1,
        "{events:?}"
    );

    // Each did reach the server.
    let conns = hang.closed(4);
    assert_eq!(conns.len(), 4, "{conns:?}");
    let last = String::from_utf8_lossy(&conns[3].bytes).into_owned();
    assert!(
        last.starts_with("POST /exfil HTTP/1.1\r\n") && last.contains("\r\nsecret\r\n"),
        "{last:?}"
    );
}

/// A request body written one byte at a time is cut at `http-timeout`, which bounds
/// the whole request: the server never answers, the guest keeps writing, and the
/// connection is closed at the limit, not when the guest stops.
#[test]
fn a_request_body_written_slowly_is_cut_at_the_time_limit() {
    let hang = RawServer::start(None);
    let scene = Scene::new();
    let grant = hang.base();
    let started = Instant::now();
    let (run, events) = attack(
        &scene,
        &[
            "--monotonic-clock",
            "--http-timeout",
            "500ms",
            "--http",
            &grant,
        ],
        &["slow-upload", &hang.url("/up"), "100", "100"],
    );
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{run:?}");
    assert!(
        lines[1] == "error=ErrorCode::ConnectionReadTimeout"
            || lines[1] == "error=ErrorCode::HttpResponseTimeout",
        "{run:?}"
    );
    let wrote = number(&run, "wrote");
    assert!(wrote < 30, "{run:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let conns = hang.closed(1);
    assert_eq!(conns.len(), 1, "{conns:?}");
    let after = conns[0].closed_after.expect("closed");
    assert!(
        after >= Duration::from_millis(400) && after < Duration::from_millis(2500),
        "the connection lived {after:?} against a 500 ms limit"
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["decision"], "failed", "{events:?}");
}

/// What a guest can set through `wasi:http` that a URL cannot say is judged as it
/// would be sent, and what cannot be judged never leaves: no scheme (wasi:http's
/// default is HTTPS), no authority, a scheme other than http(s) in any case, a port
/// written with a sign or a leading zero past five digits, user information, an
/// asterisk or absolute-form path. CONNECT and OPTIONS to a granted URL go out as
/// ordinary requests with the granted path.
#[test]
fn raw_request_parts_are_judged_as_sent() {
    let server = Server::http();
    let port = server.port();
    let authority = format!("127.0.0.1:{port}");
    let scene = Scene::new();
    let grant = server.base();
    let flags = ["--http", grant.as_str()];
    let cases: [(&[&str], &str); 10] = [
        (
            &["GET", "-", &authority, "/x"],
            "error=ErrorCode::HttpRequestDenied",
        ),
        (&["GET", "http", "-", "/x"], "error=ErrorCode::"),
        (&["GET", "ftp", &authority, "/x"], "error=ErrorCode::"),
        (&["GET", "HTTP", &authority, "/x"], "error=ErrorCode::"),
        (
            &["GET", "http", &format!("127.0.0.1:+{port}"), "/x"],
            "error=ErrorCode::HttpRequestDenied",
        ),
        (
            &["GET", "http", &format!("127.0.0.1:0{port}"), "/x"],
            "error=ErrorCode::HttpRequestDenied",
        ),
        (
            &["GET", "http", &format!("user:pw@{authority}"), "/x"],
            "error=ErrorCode::HttpRequestDenied",
        ),
        (&["OPTIONS", "http", &authority, "*"], "error="),
        (
            &["GET", "http", &authority, &format!("http://{authority}/x")],
            "error=",
        ),
        (&["GET", "http", &authority, "-"], "error="),
    ];
    for (args, expected) in cases {
        let mut all = vec!["raw"];
        all.extend_from_slice(args);
        let (run, _) = attack(&scene, &flags, &all);
        assert_eq!(run.code, 0, "{args:?}: {run:?}");
        assert!(
            first_line(&run).starts_with(expected),
            "{args:?}: expected {expected}: {run:?}"
        );
    }
    server.assert_untouched("requests the grant cannot judge");

    for method in ["CONNECT", "OPTIONS"] {
        let (run, events) = attack(&scene, &flags, &["raw", method, "http", &authority, "/m"]);
        assert!(first_line(&run).starts_with("status="), "{run:?}");
        assert_eq!(events[0]["decision"], "allowed", "{events:?}");
    }
    let seen = server.requests();
    assert_eq!(
        seen.iter()
            .map(|s| (s.method.as_str(), s.target.as_str()))
            .collect::<Vec<_>>(),
        [("CONNECT", "/m"), ("OPTIONS", "/m")]
    );
}

/// FOUND, fixed in caps/http.rs: a path prefix was judged after one decoding, but
/// some servers and the proxies in front of them decode twice, or read a path as a
/// C string, or decode overlong UTF-8: `/v1/%252e%252e/admin` (a `..` once decoded
/// twice), `/v1/..%00/admin` (a `..` to a server that stops at the NUL) and
/// `/v1/%c0%ae%c0%ae/admin` (a `..` to a lax UTF-8 decoder) all reached the server
/// under a `/v1/` grant. Now each is refused, as `%2e%2e` already was; a `%25` that
/// escapes nothing else (`/v1/100%25`) still passes.
#[test]
fn path_escapes_a_server_may_decode_into_dot_segments_are_refused() {
    let server = Server::http();
    let authority = format!("127.0.0.1:{}", server.port());
    let scene = Scene::new();
    let grant = server.url("/v1/");
    let flags = ["--http", grant.as_str()];
    for path in [
        "/v1/%252e%252e/admin",
        "/v1/%252E%252e%252fadmin",
        "/v1/x%255c..%255cadmin",
        "/v1/..%00/admin",
        "/v1/%c0%ae%c0%ae/admin",
        "/v1/%C0%AF",
        "/v1/%e0%80%ae%e0%80%ae/admin",
        "/v1/%f0%80%80%ae",
    ] {
        let (run, events) = attack(&scene, &flags, &["raw", "GET", "http", &authority, path]);
        assert_eq!(
            first_line(&run),
            "error=ErrorCode::HttpRequestDenied",
            "{path}: {run:?}"
        );
        let reason = events[0]["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("path-prefix grant cannot judge"),
            "{path}: {events:?}"
        );
    }
    server.assert_untouched("double-escaped, NUL and overlong dot segments");

    for path in ["/v1/100%25", "/v1/%25zz", "/v1/caf%c3%a9", "/v1/%e2%80%ae"] {
        let (run, _) = attack(&scene, &flags, &["raw", "GET", "http", &authority, path]);
        assert!(
            first_line(&run).starts_with("status=200"),
            "{path}: {run:?}"
        );
    }
}

/// A name reaches a non-public address only through a pattern naming that address
/// for the request's own scheme, port and path: one naming it on another port, or
/// for another path, does not lend it to the name.
#[test]
fn an_address_named_for_another_port_or_path_is_not_reached_by_name() {
    let server = Server::http();
    let port = server.port();
    let scene = Scene::new();
    let by_name = format!("http://localhost:{port}");
    let other_port = format!("http://127.0.0.1:{}", port ^ 1);
    let other_port6 = format!("http://[::1]:{}", port ^ 1);
    let (run, events) = attack(
        &scene,
        &[
            "--http",
            &by_name,
            "--http",
            &other_port,
            "--http",
            &other_port6,
        ],
        &["raw", "GET", "http", &format!("localhost:{port}"), "/x"],
    );
    assert_eq!(
        first_line(&run),
        "error=ErrorCode::DestinationIpProhibited",
        "{run:?}"
    );
    assert_eq!(events[0]["decision"], "refused", "{events:?}");

    let pub4 = format!("http://127.0.0.1:{port}/pub/");
    let pub6 = format!("http://[::1]:{port}/pub/");
    let flags = ["--http", &by_name, "--http", &pub4, "--http", &pub6];
    let (run, _) = attack(
        &scene,
        &flags,
        &["raw", "GET", "http", &format!("localhost:{port}"), "/admin"],
    );
    assert_eq!(
        first_line(&run),
        "error=ErrorCode::DestinationIpProhibited",
        "{run:?}"
    );
    server.assert_untouched("an address named for another port or path");
    let (run, _) = attack(
        &scene,
        &flags,
        &["raw", "GET", "http", &format!("localhost:{port}"), "/pub/x"],
    );
    assert!(first_line(&run).starts_with("status=200"), "{run:?}");
    assert_eq!(server.targets(), ["/pub/x"]);
}

/// A guest's method and path of 60,000 and 70,000 characters are cut to about
/// 1 KiB in the audit record and in the report of refusals.
#[test]
fn a_huge_method_or_path_is_cut_in_the_record_and_the_report() {
    let server = Server::http();
    let authority = format!("127.0.0.1:{}", server.port());
    let scene = Scene::new();
    let grant = server.url("/v1/");
    let flags = ["--http", grant.as_str()];
    let method = "X".repeat(70_000);
    for args in [
        ["raw", "GET", "http", &authority, "/v2/", "60000"].as_slice(),
        ["raw", &method, "http", &authority, "/v2/"].as_slice(),
    ] {
        let (run, events) = attack(&scene, &flags, args);
        assert_eq!(
            first_line(&run),
            "error=ErrorCode::HttpRequestDenied",
            "{run:?}"
        );
        assert_eq!(events.len(), 1);
        let target = events[0]["target"].as_str().unwrap();
        let reason = events[0]["reason"].as_str().unwrap();
        assert!(
            target.len() < 1200 && target.contains(" bytes cut]"),
            "{target}"
        );
        assert!(reason.len() < 1200, "{reason}");
        assert!(
            run.stderr.len() < 8 * 1024,
            "{} bytes of stderr",
            run.stderr.len()
        );
        assert!(run.stderr.contains(" bytes cut]"), "{run:?}");
    }
    server.assert_untouched("huge refused requests");
}

// ---- nanoproc serve ----------------------------------------------------------

/// A running `nanoproc serve --addr 127.0.0.1:0 ARGS...` of http_hello, its stderr
/// collected; SIGKILLed when dropped if still running.
struct Serving {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .arg(guest("http_hello"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nanoproc serve");
        let mut pipe = child.stderr.take().unwrap();
        let stderr: Arc<Mutex<String>> = Arc::default();
        let collected = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                collected
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let until = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            let text = stderr.lock().unwrap().clone();
            if let Some(rest) = text.split("listening on http://").nth(1)
                && let Some((addr, _)) = rest.split_once('\n')
            {
                break addr.trim().parse().expect("an address");
            }
            assert!(Instant::now() < until, "serve did not listen:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        Serving {
            child,
            addr,
            stderr,
        }
    }

    /// Ctrl-C, then what it wrote on stderr once it ended (within 30 s).
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < until, "serve did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        self.stderr.lock().unwrap().clone()
    }

    /// Writes `raw` on a new connection and reads until the server closes it (or
    /// 20 s pass): all it answered, and how long the connection lived.
    fn exchange(&self, raw: &[u8]) -> (String, Duration) {
        let started = Instant::now();
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = s.write_all(raw);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How many requests reached a tree, from the line serve ends with.
fn handled(stderr: &str) -> u64 {
    stderr
        .split("shut down after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'shut down after N requests' in:\n{stderr}"))
}

/// Slow clients are hyper's to bound: a connection that sends nothing, one that
/// sends half a head and waits, one that sends a head a byte a second, and one
/// idle after its answer are each closed by the header read timeout (10 s), and
/// none of them reached a tree but the one complete request.
#[test]
fn slow_clients_are_cut_by_the_header_read_timeout() {
    let served = Serving::start(&[]);
    let addr = served.addr;
    let client = |first: &'static [u8], trickle: bool| {
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(25))).unwrap();
            s.write_all(first).unwrap();
            let mut out = Vec::new();
            if trickle {
                // Until the server closes: a write then fails, or a read ends.
                s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                while started.elapsed() < Duration::from_secs(25) {
                    std::thread::sleep(Duration::from_secs(1));
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                    let mut b = [0u8; 1024];
                    if let Ok(0) = s.read(&mut b) {
                        break;
                    }
                }
            } else {
                let _ = s.read_to_end(&mut out);
            }
            (
                started.elapsed(),
                String::from_utf8_lossy(&out).into_owned(),
            )
        })
    };
    let clients = [
        client(b"", false),
        client(b"GET /count HTTP/1.1\r\nHost: t\r\n", false),
        client(b"GET /count HTTP/1.1\r\nX-Slow: ", true),
        client(b"GET /count HTTP/1.1\r\nHost: t\r\n\r\n", false),
    ];
    for (i, c) in clients.into_iter().enumerate() {
        let (lived, answer) = c.join().unwrap();
        assert!(
            lived >= Duration::from_secs(9) && lived < Duration::from_secs(20),
            "client {i} lived {lived:?}"
        );
        if i == 3 {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        }
    }
    assert_eq!(handled(&served.stop()), 1);
}

/// Request smuggling is hyper's to refuse: with both content-length and chunked,
/// the body is read as chunked and the connection closed after the answer, so
/// the request hidden after it is never handled; two content-lengths, a folded or
/// unknown transfer-encoding, a signed length and a NUL in the target are 400s
/// that reach no tree.
#[test]
fn smuggled_and_malformed_requests_reach_no_tree() {
    let served = Serving::start(&[]);
    let smuggle = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\
        Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    let (answer, _) = served.exchange(smuggle);
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer}");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("smuggled"), "{answer}");
    for raw in [
        &b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"[..],
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd",
        b"GET /x\x00y HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let (answer, _) = served.exchange(raw);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?}: {answer}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(handled(&served.stop()), 1);
}

/// FOUND, in serve.rs (reported, not fixed here: serve.rs is not the red team's):
/// RFC 9112 (3.2) has a server answer 400 to an HTTP/1.1 request with no `Host`,
/// or with more than one, because a proxy in front and the server behind it must
/// agree on which host a request is for. `nanoproc serve` handles both: with two,
/// the handler is told the first (`with_authority`), while a proxy may have
/// routed by the last; with none, the server's own address.
#[test]
#[ignore = "serve.rs: two Host headers, or none in HTTP/1.1, are handled, not answered 400"]
fn a_request_with_two_hosts_or_none_is_a_bad_request() {
    let served = Serving::start(&[]);
    for raw in [
        &b"GET /x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n",
    ] {
        let (answer, _) = served.exchange(raw);
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?}: {answer}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(handled(&served.stop()), 0);
}
