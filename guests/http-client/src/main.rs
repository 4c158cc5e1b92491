//! `http_client METHOD URL [--body N] [--follow] [--parallel K] [--header NAME:VALUE]...`:
//! makes the request through `wasi:http/outgoing-handler@0.2` and prints one line per
//! request on stdout:
//!
//! - `status=200 len=<body bytes read> body=<first 120 bytes of the body, escaped>`;
//! - `status=200 len=<bytes read> error=<code>` when reading the body failed;
//! - `error=<code>` when the request failed: `code` is the `wasi:http` error-code's
//!   `Debug` form (`ErrorCode::HttpRequestDenied`, `ErrorCode::ConnectionRefused`,
//!   `ErrorCode::InternalError(Some("..."))`), from `handle` or from the response's
//!   future (a body the host or server stopped reading is reported by what they
//!   answer: an error-code, or the server's early response).
//!
//! Options:
//! - `--body N`: sends N bytes of `x` (content-length N), written 64 KiB at a time
//!   after `handle`;
//! - `--follow`: follows up to 5 redirects (301, 302, 303, 307, 308 with a
//!   `Location`, absolute or relative), each a new request, printing
//!   `redirect=<status> location=<location as sent>` before the next one's line; a
//!   sixth redirect is printed as an ordinary result line. 303 (and 301 or 302 after
//!   a POST) continue with a GET without body;
//! - `--parallel K`: K identical requests, all handed to `handle` before any answer is
//!   awaited, then each one's lines in order;
//! - `--header NAME:VALUE` (repeatable): a request header.
//!
//! The exit code is 0 whatever the requests' outcome (the tests read stdout); only a
//! bad command line fails (exit code 1, all WASI 0.2 has for a failure), with the
//! usage on stderr.

use http_common::p2::{self, Request};
use http_common::{Args, USAGE, Url, error_line};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match Args::parse(&args) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("http_client: {why}\n{USAGE}");
            std::process::exit(1);
        }
    };
    let url = match Url::parse(&args.url) {
        Ok(url) => url,
        Err(why) => {
            for _ in 0..args.parallel {
                println!("{}", error_line(format_args!("{why}")));
            }
            return;
        }
    };
    let req = Request {
        method: args.method.clone(),
        url,
        headers: args.headers.clone(),
        body: args.payload(),
    };
    // Every request handed to the host first, then the answers in order.
    let sent: Vec<_> = (0..args.parallel).map(|_| p2::send(&req)).collect();
    for sent in sent {
        for line in p2::finish(req.clone(), sent, args.follow) {
            println!("{line}");
        }
    }
}
