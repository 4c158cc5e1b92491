//! The WASI 0.3 twin of http-client: `http_client3 METHOD URL [--body N] [--follow]
//! [--parallel K] [--header NAME:VALUE]...`, every request through
//! `wasi:http/client@0.3.0`'s `send`, arguments from `wasi:cli/environment@0.3.0` and
//! lines through `wasi:cli/stdout@0.3.0`. The lines are http-client's:
//! `status=200 len=<bytes read> body=<first 120 bytes, escaped>`,
//! `status=.. len=.. error=<code>` when reading the body failed, `error=<code>` when
//! the request failed (`code` the error-code's `Debug` form, as wasip2 spells it:
//! `ErrorCode::HttpRequestDenied`), and `redirect=<status> location=<...>` before
//! each redirect `--follow` follows (up to 5, each a new request).
//!
//! `--parallel K` sends K requests concurrently (every `send` started before any is
//! awaited to its end) and prints each one's lines in order. The exit code is 0 whatever
//! the requests' outcome; a bad command line fails the run (exit code 1), the
//! usage on stderr.

use futures::future::{join, join_all};
use http_common::{
    Args, BODY_SHOWN, MAX_REDIRECTS, Payload, USAGE, Url, error_line, is_redirect,
    redirected_method, status_line,
};
use wasip3::http::types::{Fields, Method, Request, Response, Scheme};
use wasip3::wit_bindgen::StreamResult;
use wasip3::{wit_future, wit_stream};

struct Cmd;

wasip3::cli::command::export!(Cmd);

impl wasip3::exports::cli::run::Guest for Cmd {
    async fn run() -> Result<(), ()> {
        let args: Vec<String> = wasip3::cli::environment::get_arguments()
            .into_iter()
            .skip(1)
            .collect();
        let args = match Args::parse(&args) {
            Ok(args) => args,
            Err(why) => {
                print(
                    wasip3::cli::stderr::write_via_stream,
                    &format!("http_client3: {why}\n{USAGE}"),
                )
                .await;
                return Err(());
            }
        };
        let lines: Vec<Vec<String>> = match Url::parse(&args.url) {
            Ok(url) => {
                let chains = (0..args.parallel).map(|_| chain(&args, url.clone()));
                join_all(chains).await
            }
            Err(why) => vec![vec![error_line(format_args!("{why}"))]; args.parallel],
        };
        for line in lines.iter().flatten() {
            print(wasip3::cli::stdout::write_via_stream, line).await;
        }
        Ok(())
    }
}

/// One request and, with `--follow`, the redirects after it: the lines to print.
async fn chain(args: &Args, mut url: Url) -> Vec<String> {
    let mut method = args.method.clone();
    let mut body = args.payload();
    let mut lines = Vec::new();
    for hop in 0..=MAX_REDIRECTS {
        let response = match send(&method, &url, &args.headers, &body).await {
            Ok(response) => response,
            Err(line) => {
                lines.push(line);
                break;
            }
        };
        let status = response.get_status_code();
        let location = header(&response.get_headers(), "location");
        match location {
            Some(location) if args.follow && hop < MAX_REDIRECTS && is_redirect(status) => {
                lines.push(format!("redirect={status} location={location}"));
                drop(response);
                match url.join(&location) {
                    Ok(next) => url = next,
                    Err(why) => {
                        lines.push(error_line(format_args!("{why}")));
                        break;
                    }
                }
                let (next, keeps_body) = redirected_method(status, &method);
                method = next;
                if !keeps_body {
                    body = Payload::EMPTY;
                }
            }
            _ => {
                lines.push(read_to_line(response).await);
                break;
            }
        }
    }
    lines
}

/// Sends one request, writing its body while `send` runs. Err is an `error=` line.
async fn send(
    method_name: &str,
    url: &Url,
    headers: &[(String, String)],
    body: &Payload,
) -> Result<Response, String> {
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| error_line(format_args!("header {name}: {e:?}")))?;
    }
    if !body.is_empty() {
        fields
            .append("content-length", body.len().to_string().as_bytes())
            .map_err(|e| error_line(format_args!("header content-length: {e:?}")))?;
    }
    let (contents, writer) = if body.is_empty() {
        (None, None)
    } else {
        let (tx, rx) = wit_stream::new::<u8>();
        (Some(rx), Some(tx))
    };
    // No trailers: the writer dropped unwritten resolves the future to `Ok(None)`.
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (request, _transmitted) = Request::new(fields, contents, trailers_rx, None);
    request
        .set_method(&method(method_name))
        .map_err(|()| error_line(format_args!("method {method_name} refused")))?;
    request
        .set_scheme(Some(&scheme(&url.scheme)))
        .map_err(|()| error_line(format_args!("scheme {} refused", url.scheme)))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| error_line(format_args!("authority {} refused", url.authority)))?;
    request
        .set_path_with_query(Some(&url.path_with_query))
        .map_err(|()| error_line(format_args!("path {} refused", url.path_with_query)))?;
    let write = async move {
        if let Some(mut tx) = writer {
            for chunk in body.chunks() {
                // What is left unwritten means the host stopped reading: the answer
                // (or its error) says why.
                if !tx.write_all(chunk.to_vec()).await.is_empty() {
                    break;
                }
            }
        }
    };
    let (answer, ()) = join(wasip3::http::client::send(request), write).await;
    answer.map_err(error_line)
}

/// Reads a response's body to its end (or its first error) into a result line.
async fn read_to_line(response: Response) -> String {
    let status = response.get_status_code();
    let (done_tx, done_rx) = wit_future::new(|| Ok(()));
    drop(done_tx);
    let (mut stream, trailers) = Response::consume_body(response, done_rx);
    let mut shown = Vec::new();
    let mut len = 0u64;
    let mut buf = Vec::with_capacity(http_common::CHUNK);
    loop {
        let (result, chunk) = stream.read(buf).await;
        match result {
            StreamResult::Complete(_) => {
                len += chunk.len() as u64;
                let room = BODY_SHOWN.saturating_sub(shown.len());
                shown.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            StreamResult::Dropped | StreamResult::Cancelled => break,
        }
        buf = chunk;
        buf.clear();
    }
    drop(stream);
    match trailers.await {
        Ok(_) => status_line(status, len, &shown),
        Err(code) => format!("status={status} len={len} {}", error_line(code)),
    }
}

fn header(fields: &Fields, name: &str) -> Option<String> {
    let values = fields.get(name);
    values
        .first()
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

fn method(name: &str) -> Method {
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

fn scheme(name: &str) -> Scheme {
    if name.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if name.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        Scheme::Other(name.to_owned())
    }
}

/// Writes `text` and a newline to stdout or stderr (given as their `write-via-stream`).
/// A stream that cannot be written to is ignored: there is nowhere to say so.
async fn print(
    write_via_stream: fn(
        wasip3::wit_bindgen::StreamReader<u8>,
    ) -> wasip3::wit_bindgen::FutureReader<
        Result<(), wasip3::cli::types::ErrorCode>,
    >,
    text: &str,
) {
    let (mut tx, rx) = wit_stream::new::<u8>();
    let done = write_via_stream(rx);
    tx.write_all(format!("{text}\n").into_bytes()).await;
    drop(tx);
    let _ = done.await;
}

/// std's entry point, which the component exports as `wasi:cli/run@0.2.0`. A host that
/// runs this command through it has picked the wrong `run`: say so (through std, so
/// WASI 0.2's stderr and exit) rather than print nothing and succeed.
fn main() {
    eprintln!(
        "http_client3: a WASI 0.3 command, started through wasi:cli/run@0.2.0: \
         run it through wasi:cli/run@0.3.0"
    );
    std::process::exit(2);
}
