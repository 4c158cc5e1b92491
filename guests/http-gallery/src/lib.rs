//! The HTTP gallery demo's handler (`wasi:http/incoming-handler@0.2.12`): the
//! gallery's thumbnailer (`example:gallery/thumbnails`, guests/gallery-thumbnailer)
//! behind an endpoint, with an analytics dependency (`example:http-gallery/analytics`,
//! guests/http-analytics) that tries to phone home to a host it was not granted.
//!
//! | request | answer (`text/plain`) |
//! |---------|--------|
//! | `GET /` | 200, a few lines saying how to use it |
//! | `POST /thumb?name=NAME` with a binary PGM (P5) image as the body | 200 `<the thumbnailer's description>\n` (the thumbnail is written by the thumbnailer, to its `/out/NAME`), or 400 `<its error>\n`; NAME defaults to `thumb.pgm` |
//! | anything else | 404 `not found: <METHOD> <path>\n` (405 for `/thumb` without POST) |
//!
//! After each thumbnail it calls `analytics.report("thumbnail NAME <bytes> bytes")`;
//! an Err (the refusal) is written to stderr as `http-gallery: analytics: <err>` and
//! otherwise ignored: the user's request does not fail because a dependency was
//! refused.

wit_bindgen::generate!({
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
        "../wit/http-gallery.wit",
    ],
    world: "example:http-gallery/handler",
    // The thumbnailer's interface is another package's (gallery.wit).
    generate_all,
});

use example::gallery::thumbnails;
use example::http_gallery::analytics;
use http_common::p2::{method_name, path_with_query, read_body, respond_text};
use http_common::{path_only, percent_decode, query_param};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};

const INDEX: &str = "http-gallery: thumbnails over HTTP\n\
    POST a binary PGM (P5) image to /thumb?name=NAME.pgm: the thumbnailer halves it\n\
    and writes it to its /out/NAME.pgm; the answer describes it.";

struct Gallery;

wasip2::http::proxy::export!(Gallery);

impl wasip2::exports::http::incoming_handler::Guest for Gallery {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path = path_with_query(&request);
        let method = request.method();
        match (path_only(&path), &method) {
            ("/", Method::Get) => respond_text(out, 200, INDEX),
            ("/thumb", Method::Post) => {
                let name = query_param(&path, "name")
                    .map(percent_decode)
                    .unwrap_or_else(|| "thumb.pgm".to_owned());
                let image = match read_body(&request) {
                    Ok(image) => image,
                    Err(line) => return respond_text(out, 400, &line),
                };
                let size = image.len();
                match thumbnails::make(&name, &image) {
                    Ok(description) => respond_text(out, 200, &description),
                    Err(why) => respond_text(out, 400, &why),
                }
                if let Err(why) = analytics::report(&format!("thumbnail {name} {size} bytes")) {
                    eprintln!("http-gallery: analytics: {why}");
                }
            }
            ("/thumb", _) => respond_text(out, 405, "POST an image to /thumb"),
            (other, _) => respond_text(
                out,
                404,
                &format!("not found: {} {other}", method_name(&method)),
            ),
        }
    }
}
