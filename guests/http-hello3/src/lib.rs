//! The hello-world HTTP handler for WASI 0.3 (`wasi:http/handler@0.3.0`): answers
//! 200 `text/plain` `hello from nanoproc: <METHOD> <path-with-query>\n`, except
//! `/count` (`<n>\n`, the requests this instance has handled: 1 in a fresh instance)
//! and `/trap` (panics before answering), as http-hello does.

use std::sync::atomic::{AtomicU64, Ordering};

use http_common::path_only;
use wasip3::http::types::{ErrorCode, Fields, Method, Request, Response};
use wasip3::{wit_future, wit_stream};

/// Requests this instance has handled.
static HANDLED: AtomicU64 = AtomicU64::new(0);

struct Hello;

wasip3::http::service::export!(Hello);

impl wasip3::exports::http::handler::Guest for Hello {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let count = HANDLED.fetch_add(1, Ordering::Relaxed) + 1;
        let path = request
            .get_path_with_query()
            .unwrap_or_else(|| "/".to_owned());
        let text = match path_only(&path) {
            "/count" => format!("{count}\n"),
            "/trap" => panic!("http-hello3: /trap asked for a trap"),
            _ => format!(
                "hello from nanoproc: {} {path}\n",
                method_name(&request.get_method())
            ),
        };
        let body = text.into_bytes();
        let headers = Fields::from_list(&[
            ("content-type".to_owned(), b"text/plain".to_vec()),
            (
                "content-length".to_owned(),
                body.len().to_string().into_bytes(),
            ),
        ])
        .map_err(|e| ErrorCode::InternalError(Some(format!("headers: {e:?}"))))?;
        let (mut tx, rx) = wit_stream::new::<u8>();
        // No trailers: the writer dropped unwritten resolves the future to `Ok(None)`.
        let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
        drop(trailers_tx);
        let (response, _transmitted) = Response::new(headers, Some(rx), trailers_rx);
        wasip3::spawn_local(async move {
            // A client that went away is nothing to act on.
            let _ = tx.write_all(body).await;
        });
        Ok(response)
    }
}

fn method_name(method: &Method) -> &str {
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
        Method::Other(name) => name,
    }
}
