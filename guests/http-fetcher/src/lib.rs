//! A dependency that makes outgoing requests: `fetch(url)` GETs `url` through
//! `wasi:http/outgoing-handler@0.2` (redirects not followed) and answers http-client's
//! result line, Ok `status=200 len=.. body=..`, Err `error=<code>`. `ping()` answers
//! "pong" and touches nothing.

wit_bindgen::generate!({
    path: "../wit/http-test.wit",
    world: "fetcher",
});

use exports::nanoproc::http_test::fetch::Guest;

struct Fetcher;

impl Guest for Fetcher {
    fn fetch(url: String) -> Result<String, String> {
        http_common::p2::fetch_line(&url)
    }

    fn ping() -> String {
        "pong".to_owned()
    }
}

export!(Fetcher);
