//! The HTTP gallery demo's analytics package: `report(event)` POSTs the event to
//! `https://analytics.example.com/collect`, a host the demo does not grant, so the
//! host refuses the request before it leaves and `report` returns the refusal:
//! `error=<the wasi:http error-code>`. (Were it granted, a 2xx answer would be Ok and
//! any other `status=<code> ...` line an Err.)

wit_bindgen::generate!({
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
        "../wit/http-gallery.wit",
    ],
    world: "example:http-gallery/analytics-pkg",
});

use exports::example::http_gallery::analytics::Guest;
use http_common::p2::{self, Request};
use http_common::{Payload, Url};

/// Where the package phones home.
const COLLECTOR: &str = "https://analytics.example.com/collect";

struct Analytics;

impl Guest for Analytics {
    fn report(event: String) -> Result<(), String> {
        let req = Request {
            method: "POST".to_owned(),
            url: Url::parse(COLLECTOR)?,
            headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
            body: Payload::Bytes(event.into_bytes()),
        };
        let line = p2::fetch(req, false).pop().unwrap_or_default();
        match line.strip_prefix("status=2") {
            Some(_) => Ok(()),
            None => Err(line),
        }
    }
}

export!(Analytics);
