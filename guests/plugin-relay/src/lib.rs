//! The embedding tests' relay plugin (wit/plugins.wit, world `relay-plugin`): the
//! root of a plugin tree. `here get KEY` and `here set KEY VALUE` use the host's kv
//! itself; any other input goes to its dependency, whose answer it returns.

wit_bindgen::generate!({ path: "../wit/plugins.wit", world: "relay-plugin" });

use exports::nanoproc::plugins::transform::Guest;
use nanoproc::plugins::{kv, transform as child};

struct Relay;

fn describe<T: std::fmt::Debug>(r: Result<T, String>) -> String {
    match r {
        Ok(v) => format!("ok:{v:?}"),
        Err(e) => format!("err:{e}"),
    }
}

impl Guest for Relay {
    fn transform(input: String) -> String {
        match input.strip_prefix("here ") {
            Some(own) => {
                let (command, rest) = own.split_once(' ').unwrap_or((own, ""));
                match command {
                    "get" => describe(kv::get(rest)),
                    "set" => {
                        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
                        describe(kv::set(key, value))
                    }
                    other => format!("unknown command {other:?}"),
                }
            }
            None => child::transform(&input),
        }
    }
}

export!(Relay);
