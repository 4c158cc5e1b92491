//! An HTTP handler (`wasi:http/incoming-handler@0.2.12`) in front of one dependency
//! (`nanoproc:http-test/fetch`, e.g. http-fetcher). Every answer is `text/plain`:
//!
//! | path | answer |
//! |------|--------|
//! | `/dep` | 200 `<ping()>\n` (`pong` from http-fetcher): one cheap call across the edge |
//! | `/fetch?url=<percent-encoded URL>` | 200 `<fetch(url)'s Ok line>\n`, or 502 `<its Err line>\n` |
//! | anything else | 200 `front: <path-with-query>\n`, no call |

wit_bindgen::generate!({
    path: "../wit/http-test.wit",
    world: "fetch-user",
});

use http_common::p2::{path_with_query, respond_text};
use http_common::{path_only, percent_decode, query_param};
use nanoproc::http_test::fetch;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Front;

wasip2::http::proxy::export!(Front);

impl wasip2::exports::http::incoming_handler::Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = path_with_query(&request);
        match path_only(&path) {
            "/dep" => respond_text(out, 200, &fetch::ping()),
            "/fetch" => {
                let url = percent_decode(query_param(&path, "url").unwrap_or_default());
                match fetch::fetch(&url) {
                    Ok(line) => respond_text(out, 200, &line),
                    Err(line) => respond_text(out, 502, &line),
                }
            }
            _ => respond_text(out, 200, &format!("front: {path}")),
        }
    }
}
