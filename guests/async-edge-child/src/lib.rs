//! Serves `test:async-edge`'s three interfaces (wit/async-edge.wit): `jobs` and
//! `nested`, which nanoproc refuses to carry across a nanoprocess boundary (an
//! `async` function, streams, futures), and `plain`, which it carries. The
//! component is async itself: its `async` export is lifted with
//! wit-bindgen's async runtime, and it makes streams and futures.

wit_bindgen::generate!({ path: "../wit/async-edge.wit", world: "async-edge-child" });

use exports::test::async_edge::{jobs, nested, plain};
use wit_bindgen::{FutureReader, StreamReader};

struct Child;

impl jobs::Guest for Child {
    async fn slow(n: u32) -> u32 {
        n.wrapping_mul(2)
    }

    fn upload(data: StreamReader<u8>) -> u64 {
        drop(data);
        0
    }

    fn later() -> FutureReader<String> {
        // The writer is dropped at once: the reader gets the default.
        let (_, reader) = wit_future::new(|| "later".to_string());
        reader
    }

    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }
}

impl nested::Guest for Child {
    fn in_record(p: nested::Progress) {
        drop(p);
    }

    fn in_list(items: Vec<FutureReader<u32>>) {
        drop(items);
    }

    fn in_option() -> Option<StreamReader<u8>> {
        None
    }

    fn in_result() -> Result<StreamReader<u8>, String> {
        Err("no stream".to_string())
    }

    fn in_tuple(t: (u32, StreamReader<String>)) {
        drop(t);
    }

    fn in_variant() -> nested::Outcome {
        nested::Outcome::Done("done".to_string())
    }

    fn ping() -> String {
        "pong".to_string()
    }
}

impl plain::Guest for Child {
    fn add(a: u32, b: u32) -> u32 {
        a.wrapping_add(b)
    }

    fn greet(name: String) -> String {
        format!("hello, {name}")
    }
}

export!(Child);
