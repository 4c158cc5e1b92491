//! The middle of a chain of HTTP fetchers: `fetch("self:URL")` GETs URL itself (with
//! its own `grants.http`), `fetch(URL)` for any other URL asks its dependency (the
//! same `nanoproc:http-test/fetch` interface, imported) and returns its answer
//! unchanged. `ping()` is the dependency's.

wit_bindgen::generate!({
    path: "../wit/http-test.wit",
    world: "fetch-mid",
});

use exports::nanoproc::http_test::fetch::Guest;
use nanoproc::http_test::fetch as dependency;

struct Mid;

impl Guest for Mid {
    fn fetch(url: String) -> Result<String, String> {
        match url.strip_prefix("self:") {
            Some(own) => http_common::p2::fetch_line(own),
            None => dependency::fetch(&url),
        }
    }

    fn ping() -> String {
        dependency::ping()
    }
}

export!(Mid);
