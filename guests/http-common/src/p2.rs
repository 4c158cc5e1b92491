//! Requests and responses through `wasi:http` 0.2 (the `wasip2` crate), blocking
//! (each wait is a `pollable.block`).
//!
//! Outgoing: [`send`] hands a request to `wasi:http/outgoing-handler.handle` and
//! writes its body; [`receive`] waits for the answer and reads it into a result
//! line; [`fetch`] does both, following redirects if asked to, and returns the lines.
//! Incoming: [`method_name`], [`path_with_query`], [`read_body`] and [`respond`],
//! for handlers.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, FutureIncomingResponse, IncomingBody, IncomingRequest, Method, OutgoingBody,
    OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme, http_error_code,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use crate::{CHUNK, MAX_REDIRECTS, Payload, Url, error_line, is_redirect, status_line};

/// One outgoing request.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Payload,
}

/// A request handed to the host, its answer not awaited yet.
pub struct Sent {
    future: FutureIncomingResponse,
}

/// What [`receive`] made of an answer.
pub enum Received {
    /// The result line: `status=.. len=.. body=..`, `status=.. len=.. error=..` or
    /// `error=..`.
    Line(String),
    /// A redirect to follow (its body not read).
    Redirect { status: u16, location: String },
}

/// Hands `req` to `wasi:http/outgoing-handler.handle`, then writes its body. Err is
/// the result line of a request that never left: `error=<ErrorCode>` from `handle`,
/// or `error=<what>` for a header, method, scheme or URL part the host refused.
pub fn send(req: &Request) -> Result<Sent, String> {
    let headers = Fields::new();
    for (name, value) in &req.headers {
        headers
            .append(name, value.as_bytes())
            .map_err(|e| error_line(format_args!("header {name}: {e:?}")))?;
    }
    if !req.body.is_empty() {
        headers
            .append("content-length", req.body.len().to_string().as_bytes())
            .map_err(|e| error_line(format_args!("header content-length: {e:?}")))?;
    }
    let request = OutgoingRequest::new(headers);
    request
        .set_method(&method(&req.method))
        .map_err(|()| error_line(format_args!("method {} refused", req.method)))?;
    request
        .set_scheme(Some(&scheme(&req.url.scheme)))
        .map_err(|()| error_line(format_args!("scheme {} refused", req.url.scheme)))?;
    request
        .set_authority(Some(&req.url.authority))
        .map_err(|()| error_line(format_args!("authority {} refused", req.url.authority)))?;
    request
        .set_path_with_query(Some(&req.url.path_with_query))
        .map_err(|()| error_line(format_args!("path {} refused", req.url.path_with_query)))?;
    let body = request.body().expect("a new request's body, taken once");
    let future = outgoing_handler::handle(request, None).map_err(error_line)?;
    // After `handle`: the host reads the body while it sends the request, so a body
    // larger than its buffers can be written. If writing fails (the host or the
    // server stopped reading), the answer says why: an error-code, or the server's
    // early response.
    let _ = write_body(body, &req.body);
    Ok(Sent { future })
}

/// Waits for the answer to `sent`. With `follow`, a redirect with a `Location` is
/// returned as [`Received::Redirect`], unread; anything else is read to its end and
/// described in one line.
pub fn receive(sent: Sent, follow: bool) -> Received {
    let Sent { future } = sent;
    let answer = loop {
        match future.get() {
            Some(answer) => break answer,
            None => future.subscribe().block(),
        }
    };
    let response = match answer {
        Ok(Ok(response)) => response,
        Ok(Err(code)) => return Received::Line(error_line(code)),
        Err(()) => return Received::Line(error_line("the response was taken already")),
    };
    let status = response.status();
    if follow && is_redirect(status) {
        let location = header(&response.headers(), "location");
        if let Some(location) = location {
            return Received::Redirect { status, location };
        }
    }
    Received::Line(match response.consume() {
        Ok(body) => read_to_line(status, body),
        Err(()) => format!("status={status} len=0 error=body taken already"),
    })
}

/// Sends `req`, and with `follow` each redirect's target as a new request (up to
/// [`MAX_REDIRECTS`]), and returns the lines: `redirect=<status> location=<...>` per
/// redirect followed, then the last answer's result line.
pub fn fetch(req: Request, follow: bool) -> Vec<String> {
    let sent = send(&req);
    finish(req, sent, follow)
}

/// Receives the answer to `sent` (what [`send`] made of `req`), following redirects
/// as [`fetch`] does: for `--parallel`, which sends every request before it receives
/// any.
pub fn finish(mut req: Request, mut sent: Result<Sent, String>, follow: bool) -> Vec<String> {
    let mut lines = Vec::new();
    for hop in 0..=MAX_REDIRECTS {
        let received = match sent {
            Ok(sent) => receive(sent, follow && hop < MAX_REDIRECTS),
            Err(line) => Received::Line(line),
        };
        let (status, location) = match received {
            Received::Line(line) => {
                lines.push(line);
                break;
            }
            Received::Redirect { status, location } => (status, location),
        };
        lines.push(format!("redirect={status} location={location}"));
        let url = match req.url.join(&location) {
            Ok(url) => url,
            Err(why) => {
                lines.push(error_line(format_args!("{why}")));
                break;
            }
        };
        let (method, keeps_body) = crate::redirected_method(status, &req.method);
        req = Request {
            method,
            url,
            headers: req.headers,
            body: if keeps_body { req.body } else { Payload::EMPTY },
        };
        sent = send(&req);
    }
    lines
}

/// GETs `url` (no redirects followed) and returns its result line: Ok for an answer
/// (`status=...`), Err for an error (`error=...`). What `nanoproc:http-test/fetch`
/// answers.
pub fn fetch_line(url: &str) -> Result<String, String> {
    let url = Url::parse(url).map_err(|why| error_line(format_args!("{why}")))?;
    let req = Request {
        method: "GET".to_owned(),
        url,
        headers: Vec::new(),
        body: Payload::EMPTY,
    };
    let line = fetch(req, false).pop().unwrap_or_default();
    if line.starts_with("status=") {
        Ok(line)
    } else {
        Err(line)
    }
}

/// Reads a response's body to its end (or its first error) into a result line.
fn read_to_line(status: u16, body: IncomingBody) -> String {
    let stream = match body.stream() {
        Ok(stream) => stream,
        Err(()) => return format!("status={status} len=0 error=body stream taken already"),
    };
    let mut shown = Vec::new();
    let mut len = 0u64;
    let error = read_all(&stream, |chunk| {
        len += chunk.len() as u64;
        let room = crate::BODY_SHOWN.saturating_sub(shown.len());
        shown.extend_from_slice(&chunk[..chunk.len().min(room)]);
    })
    .err();
    // The stream before its body, the trailers before the response (children first).
    drop(stream);
    let _trailers = IncomingBody::finish(body);
    match error {
        None => status_line(status, len, &shown),
        Some(error) => format!("status={status} len={len} {error}"),
    }
}

/// Reads `stream` to its end, handing each chunk to `each`. Err is the failure as an
/// `error=` line.
pub fn read_all(stream: &InputStream, mut each: impl FnMut(&[u8])) -> Result<(), String> {
    loop {
        match stream.blocking_read(CHUNK as u64) {
            Ok(chunk) => each(&chunk),
            Err(StreamError::Closed) => return Ok(()),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

/// Writes `payload` to `stream`, waiting for room as the stream asks, and flushes.
pub fn write_all(stream: &OutputStream, payload: &Payload) -> Result<(), String> {
    for mut chunk in payload.chunks() {
        while !chunk.is_empty() {
            let room = stream.check_write().map_err(stream_error)?;
            if room == 0 {
                stream.subscribe().block();
                continue;
            }
            let n = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            stream.write(&chunk[..n]).map_err(stream_error)?;
            chunk = &chunk[n..];
        }
    }
    stream.blocking_flush().map_err(stream_error)
}

/// Writes a request's or response's body and finishes it.
fn write_body(body: OutgoingBody, payload: &Payload) -> Result<(), String> {
    if !payload.is_empty() {
        let stream = body.write().expect("a new body's stream, taken once");
        let written = write_all(&stream, payload);
        drop(stream);
        if let Err(why) = written {
            // Dropped unfinished: the host abandons the message.
            drop(body);
            return Err(why);
        }
    }
    OutgoingBody::finish(body, None).map_err(error_line)
}

/// A stream's failure as an `error=` line: the `wasi:http` error-code when the error
/// is one.
fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => error_line(format_args!("stream closed")),
        StreamError::LastOperationFailed(e) => match http_error_code(&e) {
            Some(code) => error_line(code),
            // The first line only: a host's debug string may carry a backtrace.
            None => error_line(format_args!(
                "stream: {}",
                e.to_debug_string().lines().next().unwrap_or_default()
            )),
        },
    }
}

/// The first value of header `name`, as text.
pub fn header(fields: &Fields, name: &str) -> Option<String> {
    let values = fields.get(name);
    values
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// A method by name: the standard ones by their variant, any other as `other`.
pub fn method(name: &str) -> Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        _ => Method::Other(name.to_owned()),
    }
}

/// A method's name, upper case for the standard ones.
pub fn method_name(method: &Method) -> String {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(name) => return name.clone(),
    }
    .to_owned()
}

fn scheme(name: &str) -> Scheme {
    if name.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if name.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        Scheme::Other(name.to_owned())
    }
}

/// An incoming request's path and query, `/` if it has none.
pub fn path_with_query(request: &IncomingRequest) -> String {
    request.path_with_query().unwrap_or_else(|| "/".to_owned())
}

/// Reads an incoming request's body to its end. Err is an `error=` line.
pub fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request
        .consume()
        .map_err(|()| error_line(format_args!("request body taken already")))?;
    let stream = body
        .stream()
        .map_err(|()| error_line(format_args!("request body stream taken already")))?;
    let mut bytes = Vec::new();
    let read = read_all(&stream, |chunk| bytes.extend_from_slice(chunk));
    drop(stream);
    drop(body);
    read.map(|()| bytes)
}

/// Answers with `status`, a content-type and content-length, and `body`.
pub fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &Payload) {
    let headers = Fields::from_list(&[
        ("content-type".to_owned(), content_type.as_bytes().to_vec()),
        (
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ),
    ])
    .expect("content-type and content-length are allowed");
    let response = OutgoingResponse::new(headers);
    response
        .set_status_code(status)
        .expect("a valid status code");
    let outgoing = response.body().expect("a new response's body, taken once");
    ResponseOutparam::set(out, Ok(response));
    // A client that went away is not the handler's failure: nothing to do about it.
    let _ = write_body(outgoing, body);
}

/// Answers with `status` and a line of text (`text` and a newline).
pub fn respond_text(out: ResponseOutparam, status: u16, text: &str) {
    let body = Payload::Bytes(format!("{text}\n").into_bytes());
    respond(out, status, "text/plain", &body);
}
