//! The embedding benchmark's plugin (wit/plugins.wit, world `echo-plugin`): returns
//! its input, so that a call's cost is the boundary's and nothing else.

wit_bindgen::generate!({ path: "../wit/plugins.wit", world: "echo-plugin" });

use exports::nanoproc::plugins::transform::Guest;

struct Echo;

impl Guest for Echo {
    fn transform(input: String) -> String {
        input
    }
}

export!(Echo);
