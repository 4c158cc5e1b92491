//! `http_fetch_driver ARG...`: for each argument, asks its dependency
//! (`nanoproc:http-test/fetch`) and prints `<arg> -> <answer>` on stdout, where the
//! answer is `fetch(arg)`'s Ok or Err line as it is (`status=200 len=.. body=..` or
//! `error=..`), or for the argument `ping`, `ping()`'s answer. Exits with 0.

wit_bindgen::generate!({
    path: "../wit/http-test.wit",
    world: "fetch-user",
});

use nanoproc::http_test::fetch;

fn main() {
    for arg in std::env::args().skip(1) {
        let answer = if arg == "ping" {
            fetch::ping()
        } else {
            fetch::fetch(&arg).unwrap_or_else(|err| err)
        };
        println!("{arg} -> {answer}");
    }
}
