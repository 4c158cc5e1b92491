//! `http_hostile COMMAND ARGS...`: a hostile WASI 0.2 guest of the http family, for
//! the red team's tests (crates/nanoproc-cli/tests/redteam_http.rs). Each command
//! does through raw `wasi:http` calls what http-client's arguments cannot say, and
//! prints what it got on stdout, one `key=value` line per fact:
//!
//! - `raw METHOD SCHEME AUTHORITY PATH [PAD]`: one request with exactly these parts
//!   (`-` for none: no scheme, no authority, no path), PATH followed by PAD `a`s when
//!   PAD is given; prints the result line (`status=.. len=.. body=..` or `error=..`).
//! - `fields N PER`: N `fields`, each with PER 4000-byte values (a value past
//!   wasmtime-wasi-http's limit of a `fields`' size traps), all held; prints
//!   `fields=N bytes=B`, B the value bytes the host took.
//! - `bodies N URL`: N requests to URL, never handed to `handle`, each with a body
//!   whose stream is written until the host says it has no room, then finished, so
//!   that each request is one handle; all held; prints
//!   `bodies=N bytes=B`, B the bytes the host took into its buffers.
//! - `heads URL N`: one GET of URL, then N copies of its response's headers, each
//!   `fields.clone` of them with one header deleted (so that the copy is the
//!   host's own, not shared), all held; prints `heads=N bytes=B`, B the bytes of
//!   the headers copied.
//! - `drop-pending K HANG_URL OK_URL`: K requests to HANG_URL, each future dropped
//!   100 ms after `handle`, before its answer; then a GET of OK_URL, whose result
//!   line it prints.
//! - `fire URL MS`: a POST of `secret` to URL, left in flight: the command waits
//!   MS ms, prints `fired`, and ends without awaiting the answer.
//! - `slow-upload URL N MS`: a POST of N bytes without content-length, one byte
//!   every MS ms; prints `wrote=K` (bytes the host took) then the result line.
//! - `unread URL MS`: a GET whose answer is awaited, then left unread for MS ms
//!   before the body is read; prints `status=S` at the answer, then the result line.
//!
//! The exit code is 0 unless the command line is bad (1).

use http_common::{Url, error_line, escape};
use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, FutureIncomingResponse, IncomingResponse, OutgoingBody, OutgoingRequest, Scheme,
    http_error_code,
};
use wasip2::io::poll::poll;
use wasip2::io::streams::StreamError;

const MILLI: u64 = 1_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let num = |s: &str| -> u64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("http_hostile: {s:?} is not a number");
            std::process::exit(1)
        })
    };
    match args.as_slice() {
        ["raw", method, scheme, authority, path, rest @ ..] => {
            let mut path = (*path != "-").then(|| path.to_string());
            if let (Some(p), [pad]) = (path.as_mut(), rest) {
                p.extend(std::iter::repeat_n('a', num(pad) as usize));
            }
            let scheme = (*scheme != "-").then(|| scheme_of(scheme));
            let authority = (*authority != "-").then_some(*authority);
            println!("{}", raw(method, scheme, authority, path.as_deref()));
        }
        ["fields", n, per] => fields(num(n), num(per)),
        ["bodies", n, url] => bodies(num(n), &url_of(url)),
        ["heads", url, n] => heads(&url_of(url), num(n)),
        ["drop-pending", k, hang, ok] => drop_pending(num(k), &url_of(hang), ok),
        ["fire", url, ms] => fire(&url_of(url), num(ms)),
        ["slow-upload", url, n, ms] => slow_upload(&url_of(url), num(n), num(ms)),
        ["unread", url, ms] => unread(&url_of(url), num(ms)),
        _ => {
            eprintln!("http_hostile: unknown command {args:?}");
            std::process::exit(1);
        }
    }
}

fn url_of(url: &str) -> Url {
    Url::parse(url).unwrap_or_else(|why| {
        eprintln!("http_hostile: {why}");
        std::process::exit(1)
    })
}

fn scheme_of(name: &str) -> Scheme {
    match name {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    }
}

/// A request with these parts, its body not taken yet.
fn request(
    method: &str,
    scheme: Option<Scheme>,
    authority: Option<&str>,
    path: Option<&str>,
    headers: Fields,
) -> Result<OutgoingRequest, String> {
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&http_common::p2::method(method))
        .map_err(|()| error_line(format_args!("method refused")))?;
    request
        .set_scheme(scheme.as_ref())
        .map_err(|()| error_line(format_args!("scheme refused")))?;
    request
        .set_authority(authority)
        .map_err(|()| error_line(format_args!("authority refused")))?;
    request
        .set_path_with_query(path)
        .map_err(|()| error_line(format_args!("path refused")))?;
    Ok(request)
}

fn to(url: &Url, method: &str, headers: Fields) -> Result<OutgoingRequest, String> {
    request(
        method,
        Some(scheme_of(&url.scheme)),
        Some(&url.authority),
        Some(&url.path_with_query),
        headers,
    )
}

/// `handle` with an empty finished body: the future, or the error line.
fn send_empty(request: OutgoingRequest) -> Result<FutureIncomingResponse, String> {
    let body = request.body().expect("a new request's body");
    let future = outgoing_handler::handle(request, None).map_err(error_line)?;
    OutgoingBody::finish(body, None).map_err(error_line)?;
    Ok(future)
}

fn raw(
    method: &str,
    scheme: Option<Scheme>,
    authority: Option<&str>,
    path: Option<&str>,
) -> String {
    match request(method, scheme, authority, path, Fields::new())
        .and_then(send_empty)
        .and_then(|future| wait(&future))
    {
        Ok(response) => read_line(response),
        Err(line) => line,
    }
}

/// The answer of `future`, or the error line.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, String> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(error_line(code)),
            Some(Err(())) => return Err(error_line("taken already")),
            None => future.subscribe().block(),
        }
    }
}

/// Reads a response's body to its end: `status=.. len=.. body=..`, or
/// `status=.. len=.. error=..`.
fn read_line(response: IncomingResponse) -> String {
    let status = response.status();
    let body = response.consume().expect("a new response's body");
    let stream = body.stream().expect("a new body's stream");
    let mut shown = Vec::new();
    let mut len = 0u64;
    let error = loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                len += chunk.len() as u64;
                shown.extend_from_slice(&chunk[..chunk.len().min(120 - shown.len().min(120))]);
            }
            Err(StreamError::Closed) => break None,
            Err(StreamError::LastOperationFailed(e)) => {
                break Some(match http_error_code(&e) {
                    Some(code) => error_line(code),
                    None => error_line(format_args!("stream failed")),
                });
            }
        }
    };
    match error {
        None => format!("status={status} len={len} body={}", escape(&shown)),
        Some(e) => format!("status={status} len={len} {e}"),
    }
}

fn fields(n: u64, per: u64) {
    let value = vec![b'v'; 4000];
    let mut held = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..n {
        let f = Fields::new();
        for j in 0..per {
            if f.append(&format!("x-h{j}"), &value).is_err() {
                break;
            }
            bytes += value.len() as u64;
        }
        held.push(f);
    }
    println!("fields={} bytes={bytes}", held.len());
}

fn bodies(n: u64, url: &Url) {
    let chunk = vec![b'b'; 4 << 20];
    let mut held = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..n {
        let request = match to(url, "POST", Fields::new()) {
            Ok(r) => r,
            Err(line) => {
                println!("{line}");
                return;
            }
        };
        let body = request.body().expect("a new request's body");
        let stream = body.write().expect("a new body's stream");
        loop {
            match stream.check_write() {
                Ok(0) | Err(_) => break,
                Ok(room) => {
                    let n = (room as usize).min(chunk.len());
                    if stream.write(&chunk[..n]).is_err() {
                        break;
                    }
                    bytes += n as u64;
                }
            }
        }
        // Finished, so that only the request is held: one handle.
        drop(stream);
        if OutgoingBody::finish(body, None).is_err() {
            println!("error=finish refused");
            return;
        }
        held.push(request);
    }
    println!("bodies={} bytes={bytes}", held.len());
}

fn heads(url: &Url, n: u64) {
    let response = match to(url, "GET", Fields::new())
        .and_then(send_empty)
        .and_then(|future| wait(&future))
    {
        Ok(r) => r,
        Err(line) => {
            println!("{line}");
            return;
        }
    };
    let mut held = Vec::new();
    let mut bytes = 0u64;
    for _ in 0..n {
        let headers = response.headers();
        let copy = headers.clone();
        drop(headers);
        let entries = copy.entries();
        if let Some((name, _)) = entries.first() {
            let _ = copy.delete(name);
        }
        bytes += entries
            .iter()
            .skip(1)
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum::<u64>();
        held.push(copy);
    }
    println!("heads={} bytes={bytes}", held.len());
}

fn drop_pending(k: u64, hang: &Url, ok: &str) {
    for _ in 0..k {
        match to(hang, "GET", Fields::new()).and_then(send_empty) {
            Ok(future) => {
                let answer = future.subscribe();
                let timer = subscribe_duration(100 * MILLI);
                poll(&[&answer, &timer]);
                drop(answer);
                drop(future);
            }
            Err(line) => println!("{line}"),
        }
    }
    println!(
        "{}",
        http_common::p2::fetch_line(ok).unwrap_or_else(|line| line)
    );
}

fn fire(url: &Url, ms: u64) {
    let request = match to(url, "POST", Fields::new()) {
        Ok(r) => r,
        Err(line) => {
            println!("{line}");
            return;
        }
    };
    let body = request.body().expect("a new request's body");
    let future = match outgoing_handler::handle(request, None) {
        Ok(f) => f,
        Err(code) => {
            println!("{}", error_line(code));
            return;
        }
    };
    let stream = body.write().expect("a new body's stream");
    let _ = stream.blocking_write_and_flush(b"secret");
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
    subscribe_duration(ms * MILLI).block();
    println!("fired");
    // Left in flight as the command ends.
    std::mem::forget(future);
}

fn slow_upload(url: &Url, n: u64, ms: u64) {
    let request = match to(url, "POST", Fields::new()) {
        Ok(r) => r,
        Err(line) => {
            println!("{line}");
            return;
        }
    };
    let body = request.body().expect("a new request's body");
    let future = match outgoing_handler::handle(request, None) {
        Ok(f) => f,
        Err(code) => {
            println!("{}", error_line(code));
            return;
        }
    };
    let stream = body.write().expect("a new body's stream");
    let mut wrote = 0u64;
    while wrote < n {
        // Stop writing once the answer (or the request's failure) is in.
        if future.subscribe().ready() {
            break;
        }
        match stream.check_write() {
            Ok(0) => stream.subscribe().block(),
            Ok(_) => {
                if stream.write(b"s").is_err() {
                    break;
                }
                wrote += 1;
                subscribe_duration(ms * MILLI).block();
            }
            Err(_) => break,
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, None);
    println!("wrote={wrote}");
    println!(
        "{}",
        match wait(&future) {
            Ok(response) => read_line(response),
            Err(line) => line,
        }
    );
}

fn unread(url: &Url, ms: u64) {
    let response = match to(url, "GET", Fields::new())
        .and_then(send_empty)
        .and_then(|future| wait(&future))
    {
        Ok(r) => r,
        Err(line) => {
            println!("{line}");
            return;
        }
    };
    println!("status={}", response.status());
    subscribe_duration(ms * MILLI).block();
    println!("{}", read_line(response));
}
