//! `nanoproc serve`: the real binary on a loopback port chosen by the system,
//! real handler components (guests/http-hello, http-hello3, http-front over
//! http-fetcher, a componentize-js handler) and real clients over TCP. Every
//! server is stopped at the end of its test (SIGINT, then SIGKILL past a bound),
//! and every wait is bounded.

use crate::common::{Scene, guest};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server may take to compile its tree and listen (a cold cache in a
/// debug build on a loaded machine), and how long any one exchange may take.
const START_LIMIT: Duration = Duration::from_secs(120);
const EXCHANGE_LIMIT: Duration = Duration::from_secs(20);

/// A running `nanoproc serve`, its stderr collected as it comes.
struct Served {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// Starts `nanoproc serve --addr 127.0.0.1:0 ARGS...` and waits for the line
    /// that says where it listens.
    fn start(args: &[&str]) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nanoproc"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nanoproc serve");
        let mut pipe = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let collected = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut sent = false;
            loop {
                let n = match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut text = collected.lock().unwrap();
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !sent && let Some(addr) = listening_on(&text) {
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        });
        let addr = match rx.recv_timeout(START_LIMIT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "nanoproc serve {args:?} did not listen within {START_LIMIT:?}:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Served {
            child,
            addr,
            stderr,
            reader: Some(reader),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn get(&self, path: &str) -> Response {
        exchange(
            self.addr,
            format!("GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// Sends SIGINT (Ctrl-C) and waits, within `limit`, for the process to end:
    /// its exit status and all it wrote on stderr.
    fn interrupt(self, limit: Duration) -> (i32, String) {
        signal(&self.child, "INT");
        self.wait(limit)
    }

    /// Waits, within `limit`, for the process to end (a second Ctrl-C would make
    /// it exit at once).
    fn wait(mut self, limit: Duration) -> (i32, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "nanoproc serve did not end within {limit:?} of Ctrl-C:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status.code().unwrap_or(-1), self.stderr())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -{name} failed");
}

/// The address of nanoproc's `listening on http://ADDR` line, once written whole.
fn listening_on(stderr: &str) -> Option<SocketAddr> {
    let rest = &stderr[stderr.find("listening on http://")? + "listening on http://".len()..];
    let line = &rest[..rest.find('\n')?];
    line.trim().parse().ok()
}

/// A response as the client read it.
#[derive(Debug, Default)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The connection ended before the body did (a cut chunked body), or the
    /// client could not connect or read at all (`status` 0).
    cut: bool,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` on a new connection and reads the response to the end of the
/// connection (requests ask for `Connection: close`).
fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, EXCHANGE_LIMIT) else {
        return Response {
            cut: true,
            ..Default::default()
        };
    };
    stream.set_read_timeout(Some(EXCHANGE_LIMIT)).unwrap();
    stream.set_write_timeout(Some(EXCHANGE_LIMIT)).unwrap();
    if stream.write_all(request).is_err() {
        return Response {
            cut: true,
            ..Default::default()
        };
    }
    let mut raw = Vec::new();
    let cut_read = stream.read_to_end(&mut raw).is_err();
    parse(&raw, cut_read)
}

fn parse(raw: &[u8], cut_read: bool) -> Response {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Response {
            cut: true,
            ..Default::default()
        };
    };
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
        cut: cut_read,
    };
    let rest = &raw[end + 4..];
    if response
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let (body, complete) = dechunk(rest);
        response.body = body;
        response.cut |= !complete;
    } else if let Some(len) = response
        .header("content-length")
        .and_then(|l| l.parse().ok())
    {
        let len: usize = len;
        response.cut |= rest.len() < len;
        response.body = rest[..rest.len().min(len)].to_vec();
    } else {
        response.body = rest.to_vec();
    }
    response
}

/// A chunked body's bytes, and whether its last (empty) chunk came.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size = std::str::from_utf8(&rest[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok());
        let Some(size) = size else {
            return (body, false);
        };
        rest = &rest[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..rest.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Waits (within the exchange limit) until the audit log at `path` has a line:
/// a request's tree has started and used its clock, so it is in flight.
fn wait_for_audit(path: &std::path::Path) {
    let started = Instant::now();
    while std::fs::read_to_string(path).map_or(true, |t| !t.contains('\n')) {
        assert!(
            started.elapsed() < EXCHANGE_LIMIT,
            "no request reached its tree"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn hello() -> String {
    guest("http_hello").display().to_string()
}

/// Runs `count` GETs of `path` at once, each on its own connection: the
/// responses and how long they took in all.
fn at_once(served: &Served, path: &str, count: usize) -> (Vec<Response>, Duration) {
    let started = Instant::now();
    let addr = served.addr;
    let threads: Vec<_> = (0..count)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                exchange(
                    addr,
                    format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
            })
        })
        .collect();
    let responses = threads.into_iter().map(|t| t.join().unwrap()).collect();
    (responses, started.elapsed())
}

#[test]
fn concurrent_clients_each_get_a_fresh_tree_and_a_request_id_in_every_audit_line() {
    let scene = Scene::new();
    let audit = scene.path("audit.jsonl");
    let audit_arg = audit.display().to_string();
    let hello = hello();
    let served = Served::start(&[
        "--max-concurrent",
        "8",
        "--monotonic-clock",
        "--audit",
        &audit_arg,
        &hello,
    ]);
    const CLIENTS: usize = 16;
    const EACH: usize = 12;
    let addr = served.addr;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                (0..EACH)
                    .map(|i| {
                        // A third of the requests count, a third say hello, a
                        // third sleep a millisecond (one audited clock use each).
                        let path = match i % 3 {
                            0 => "/count".to_string(),
                            1 => format!("/hello?client={c}&i={i}"),
                            _ => "/sleep?ms=1".to_string(),
                        };
                        let request = format!(
                            "GET {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n\r\n"
                        );
                        (path, exchange(addr, request.as_bytes()))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut sleep_ids = HashSet::new();
    for client in clients {
        for (path, response) in client.join().unwrap() {
            assert_eq!(response.status, 200, "{path}: {response:?}");
            assert!(!response.cut, "{path}: {response:?}");
            let expected = match path.as_str() {
                // A fresh tree per request: no instance ever sees a second one.
                "/count" => "1\n".to_string(),
                p => format!("hello from nanoproc: GET {p}\n"),
            };
            assert_eq!(response.text(), expected, "{path}");
            let id = response
                .header("x-request-id")
                .expect("a request id")
                .to_string();
            if path.starts_with("/sleep") {
                sleep_ids.insert(id.clone());
            }
            assert!(ids.insert(id), "a request id given twice");
        }
    }
    assert_eq!(ids.len(), CLIENTS * EACH);
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "shut down after {} requests (0 failed",
            CLIENTS * EACH
        )),
        "{stderr}"
    );
    // Every line carries its request's id; each sleeping request's clock use is
    // recorded under its own id, and only those requests used the clock.
    let lines = crate::common::audit_lines(&audit);
    assert!(!lines.is_empty());
    let mut audited = HashSet::new();
    for line in &lines {
        let id = line["request"]
            .as_str()
            .unwrap_or_else(|| panic!("a line without a request id: {line}"));
        assert!(ids.contains(id), "{line}");
        if line["family"] == "monotonic-clock" {
            audited.insert(id.to_string());
        }
    }
    assert_eq!(audited, sleep_ids);
}

#[test]
fn a_trap_is_a_generic_500_and_the_failure_goes_to_the_log() {
    let hello = hello();
    // No stdio: the guest's panic message reaches nanoproc's stderr only through
    // nanoproc's own account of the failure.
    let served = Served::start(&["--no-stdio", &hello]);
    let response = served.get("/trap");
    assert_eq!(response.status, 500, "{response:?}");
    let id = response.header("x-request-id").unwrap().to_string();
    let body = response.text();
    assert_eq!(body, format!("internal server error (request {id})\n"));
    assert!(!body.contains("asked for a trap") && !body.contains("http_hello"));
    // The next request is served by a tree of its own, unharmed.
    let after = served.get("/count");
    assert_eq!((after.status, after.text().as_str()), (200, "1\n"));
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("request {id} (GET /trap)")))
        .unwrap_or_else(|| panic!("no failure line for request {id}:\n{stderr}"));
    assert!(line.contains("nanoprocess `http_hello` trapped"), "{line}");
    assert!(
        line.contains("http-hello: /trap asked for a trap"),
        "{line}"
    );
    assert!(stderr.contains("(1 failed, 0 answered 503)"), "{stderr}");
}

#[test]
fn a_request_over_the_manifests_timeout_or_the_request_timeout_is_a_500() {
    let scene = Scene::new();
    let manifest = scene.file(
        "nanoproc.toml",
        &format!(
            "[app]\nroot = \"web\"\n\n[nanoprocess.web]\ncomponent = \"{}\"\ngrants.monotonic-clock = true\ngrants.timeout = \"300ms\"\n",
            hello()
        ),
    );
    let served = Served::start(&[manifest.to_str().unwrap()]);
    let started = Instant::now();
    let slow = served.get("/sleep?ms=5000");
    assert_eq!(slow.status, 500, "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Each request is a call of its own: the limit starts afresh.
    let quick = served.get("/sleep?ms=50");
    assert_eq!(quick.status, 200, "{quick:?}");
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "(GET /sleep?ms=5000): nanoprocess `web` exceeded its time per call limit of 300ms"
        ),
        "{stderr}"
    );

    // The server's own bound per request, on top of the manifest's.
    let hello = hello();
    let served = Served::start(&["--monotonic-clock", "--request-timeout", "200ms", &hello]);
    let started = Instant::now();
    let slow = served.get("/sleep?ms=5000");
    assert_eq!(slow.status, 500, "{slow:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("the request's time limit (200ms) passed"),
        "{stderr}"
    );
}

#[test]
fn max_concurrent_bounds_the_trees_alive_and_the_queue_is_bounded_too() {
    let hello = hello();
    // Six requests of 300 ms, two at a time: three waves, however fast the host.
    let served = Served::start(&["--monotonic-clock", "--max-concurrent", "2", &hello]);
    let (responses, took) = at_once(&served, "/sleep?ms=300", 6);
    for r in &responses {
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");

    // One slot and a queue that waits 100 ms: of two requests of 600 ms at once,
    // one is served and the other turned away with a 503.
    let served = Served::start(&[
        "--monotonic-clock",
        "--max-concurrent",
        "1",
        "--queue-timeout",
        "100ms",
        &hello,
    ]);
    let (responses, _) = at_once(&served, "/sleep?ms=600", 2);
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 503], "{responses:?}");
    let busy = responses.iter().find(|r| r.status == 503).unwrap();
    assert_eq!(busy.header("retry-after"), Some("1"));
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("1 answered 503"), "{stderr}");
}

#[test]
fn ctrl_c_lets_the_request_in_flight_finish_then_exits_0() {
    let scene = Scene::new();
    let audit = scene.path("audit.jsonl");
    let hello = hello();
    let served = Served::start(&[
        "--monotonic-clock",
        "--audit",
        audit.to_str().unwrap(),
        &hello,
    ]);
    let addr = served.addr;
    let in_flight = std::thread::spawn(move || {
        exchange(
            addr,
            b"GET /sleep?ms=600 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    });
    // Its tree sleeps: Ctrl-C now.
    wait_for_audit(&audit);
    signal(&served.child, "INT");
    // No new connection is taken once the shutdown began.
    std::thread::sleep(Duration::from_millis(150));
    let refused = exchange(addr, b"GET /count HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(refused.status, 0, "{refused:?}");
    let response = in_flight.join().unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.text(), "hello from nanoproc: GET /sleep?ms=600\n");
    assert!(!response.cut);
    let (code, stderr) = served.wait(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("shut down after 1 request (0 failed"),
        "{stderr}"
    );
}

#[test]
fn a_request_still_running_when_the_shutdown_ends_is_stopped() {
    let scene = Scene::new();
    let audit = scene.path("audit.jsonl");
    let hello = hello();
    let served = Served::start(&[
        "--monotonic-clock",
        "--shutdown-timeout",
        "300ms",
        "--audit",
        audit.to_str().unwrap(),
        &hello,
    ]);
    let addr = served.addr;
    let in_flight = std::thread::spawn(move || {
        exchange(
            addr,
            b"GET /sleep?ms=20000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
    });
    wait_for_audit(&audit);
    let started = Instant::now();
    let (code, stderr) = served.interrupt(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains("1 stopped when the shutdown's time ran out"),
        "{stderr}"
    );
    let response = in_flight.join().unwrap();
    // Stopped before it answered: told the server is going away, if anything.
    assert!(
        response.status == 503 || response.status == 0,
        "{response:?}"
    );
}

#[test]
fn a_response_cut_short_by_a_failure_does_not_look_complete() {
    // A 1 GiB body, by a guest allowed 200 ms per call: the status is sent,
    // then the call is stopped partway through the body.
    let scene = Scene::new();
    let manifest = scene.file(
        "nanoproc.toml",
        &format!(
            "[app]\nroot = \"web\"\n\n[nanoprocess.web]\ncomponent = \"{}\"\ngrants.timeout = \"200ms\"\n",
            hello()
        ),
    );
    let served = Served::start(&[manifest.to_str().unwrap()]);
    // A client that does not read: the guest's writes wait on it, past its limit.
    let mut stream = TcpStream::connect(served.addr).unwrap();
    stream
        .write_all(b"GET /big?n=1073741824 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    stream.set_read_timeout(Some(EXCHANGE_LIMIT)).unwrap();
    let mut raw = Vec::new();
    let cut_read = stream.read_to_end(&mut raw).is_err();
    let response = parse(&raw, cut_read);
    assert_eq!(response.status, 200, "{:?}", response.headers);
    assert!(response.cut, "a cut body read as complete");
    assert!(response.body.len() < 1073741824);
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("after its response had started"),
        "{stderr}"
    );
}

#[test]
fn bad_requests_and_oversized_heads_are_answered_by_the_http_server() {
    let hello = hello();
    let served = Served::start(&[&hello]);
    let garbage = exchange(served.addr, b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(garbage.status, 400, "{garbage:?}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(100 << 10)
    );
    let big = exchange(served.addr, huge.as_bytes());
    assert_eq!(big.status, 431, "{big:?}");
    // None of it reached a tree.
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("shut down after 0 requests"), "{stderr}");
}

#[test]
fn a_component_that_is_no_http_handler_is_refused_before_listening() {
    let cmd = crate::common::cmd();
    let (run, _) =
        crate::common::nanoproc_within(START_LIMIT, &["serve", "--addr", "127.0.0.1:0", &cmd]);
    assert_eq!(run.code, 125, "{run:?}");
    assert!(
        run.stderr.contains(
            "cannot serve HTTP: the root must export wasi:http/incoming-handler@0.2.x (WASI 0.2) or wasi:http/handler@0.3.x (WASI 0.3); it exports wasi:cli/run@0.2."
        ),
        "{run:?}"
    );
    assert!(!run.stderr.contains("listening on"), "{run:?}");
}

#[test]
fn a_wasi_0_3_handler_is_served_with_a_fresh_tree_per_request() {
    let hello3 = guest("http_hello3").display().to_string();
    let served = Served::start(&["--no-stdio", &hello3]);
    let (responses, _) = at_once(&served, "/count", 8);
    for r in &responses {
        assert_eq!((r.status, r.text().as_str()), (200, "1\n"), "{r:?}");
    }
    let hi = served.get("/hi?x=1");
    assert_eq!(hi.text(), "hello from nanoproc: GET /hi?x=1\n");
    let trap = served.get("/trap");
    assert_eq!(trap.status, 500, "{trap:?}");
    assert!(!trap.text().contains("asked for a trap"));
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("http-hello3: /trap asked for a trap"),
        "{stderr}"
    );
}

#[test]
fn a_tree_with_a_dependency_serves_each_request_with_both() {
    let scene = Scene::new();
    let manifest = scene.file(
        "nanoproc.toml",
        &format!(
            "[app]\nroot = \"front\"\n\n[nanoprocess.front]\ncomponent = \"{}\"\ndeps = {{ \"nanoproc:http-test/fetch\" = \"fetcher\" }}\n\n[nanoprocess.fetcher]\ncomponent = \"{}\"\n",
            guest("http_front").display(),
            guest("http_fetcher").display()
        ),
    );
    let served = Served::start(&[manifest.to_str().unwrap()]);
    let (responses, _) = at_once(&served, "/dep", 8);
    for r in &responses {
        assert_eq!((r.status, r.text().as_str()), (200, "pong\n"), "{r:?}");
    }
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_javascript_handler_is_served() {
    let js = xtask::foreign_guest("js-http-hello").display().to_string();
    // The engine reads the monotonic clock as it starts; a frozen one does.
    let served = Served::start(&[
        "--clock-at",
        "2026-01-01T00:00:00Z",
        "--memory",
        "64MiB",
        &js,
    ]);
    let (responses, _) = at_once(&served, "/js?q=1", 4);
    for r in &responses {
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "hello from js: GET /js?q=1\n"),
            "{r:?}"
        );
    }
    let (code, stderr) = served.interrupt(EXCHANGE_LIMIT);
    assert_eq!(code, 0, "{stderr}");
}
