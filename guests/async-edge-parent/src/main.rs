//! Imports `test:async-edge`'s `jobs` and `nested` (wit/async-edge.wit), which
//! nanoproc refuses at `check`: an `async` function, streams and futures cannot
//! cross a nanoprocess boundary. It calls every function (chosen by its first
//! argument) so that each stays among its imports; it is never meant to run
//! under nanoproc.

wit_bindgen::generate!({ path: "../wit/async-edge.wit", world: "async-edge-parent" });

use std::future::IntoFuture;
use test::async_edge::{jobs, nested};

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    match which.as_str() {
        "slow" => println!("slow: {}", wit_bindgen::block_on(jobs::slow(21))),
        "upload" => {
            let (writer, reader) = wit_stream::new::<u8>();
            drop(writer);
            println!("upload: {}", jobs::upload(reader));
        }
        "later" => println!(
            "later: {}",
            wit_bindgen::block_on(jobs::later().into_future())
        ),
        "add" => println!("add: {}", jobs::add(2, 3)),
        "in-record" => {
            let (writer, updates) = wit_stream::new::<u32>();
            drop(writer);
            nested::in_record(nested::Progress {
                name: "p".into(),
                updates,
            });
        }
        "in-list" => {
            let (writer, reader) = wit_future::new::<u32>(|| 0);
            drop(writer);
            nested::in_list(vec![reader]);
        }
        "in-option" => println!("in-option: {}", nested::in_option().is_some()),
        "in-result" => println!("in-result: {}", nested::in_result().is_ok()),
        "in-tuple" => {
            let (writer, reader) = wit_stream::new::<String>();
            drop(writer);
            nested::in_tuple((1, reader));
        }
        "in-variant" => match nested::in_variant() {
            nested::Outcome::Done(s) => println!("in-variant: {s}"),
            nested::Outcome::Pending(_) => println!("in-variant: pending"),
        },
        _ => println!("ping: {}", nested::ping()),
    }
}
