//! The hello-world HTTP handler (`wasi:http/incoming-handler@0.2.12`). Every answer
//! is `text/plain` with a content-length. By path (the query aside):
//!
//! | path | answer |
//! |------|--------|
//! | `/count` | `<n>\n`: how many requests this instance has handled, this one included (a fresh instance per request always answers `1`) |
//! | `/trap` | none: panics before answering (a trap) |
//! | `/sleep?ms=N` | waits N ms (`wasi:clocks/monotonic-clock` `subscribe-duration`, blocked on), then the hello line |
//! | `/big?n=N` | N bytes of `x`, written 64 KiB at a time |
//! | `/echo` | the request's body |
//! | anything else | `hello from nanoproc: <METHOD> <path-with-query>\n` |
//!
//! All with status 200 (400 with an `error=` line if reading `/echo`'s body fails).

use std::sync::atomic::{AtomicU64, Ordering};

use http_common::p2::{method_name, path_with_query, read_body, respond, respond_text};
use http_common::{Payload, path_only, query_param};
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

/// Requests this instance has handled.
static HANDLED: AtomicU64 = AtomicU64::new(0);

struct Hello;

wasip2::http::proxy::export!(Hello);

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let count = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
        let path = path_with_query(&request);
        let number = |name: &str| -> u64 {
            query_param(&path, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let hello = || {
            format!(
                "hello from nanoproc: {} {path}",
                method_name(&request.method())
            )
        };
        match path_only(&path) {
            "/count" => respond_text(out, 200, &count.to_string()),
            "/trap" => panic!("http-hello: /trap asked for a trap"),
            "/sleep" => {
                let ms = number("ms");
                wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000))
                    .block();
                respond_text(out, 200, &hello());
            }
            "/big" => respond(out, 200, "text/plain", &Payload::Xs(number("n"))),
            "/echo" => match read_body(&request) {
                Ok(body) => respond(out, 200, "text/plain", &Payload::Bytes(body)),
                Err(line) => respond_text(out, 400, &line),
            },
            _ => respond_text(out, 200, &hello()),
        }
    }
}
