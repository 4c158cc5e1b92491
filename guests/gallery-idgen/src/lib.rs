//! Hands out random identifiers. The demo grants this package secure random and
//! nothing else.

wit_bindgen::generate!({
    // The WASI packages first: gallery.wit uses their types (in `metadata`).
    path: [
        "../wit/deps/io.wit",
        "../wit/deps/clocks.wit",
        "../wit/deps/filesystem.wit",
        "../wit/gallery.wit",
    ],
    world: "example:gallery/idgen",
});

use std::fmt::Write;

use exports::example::gallery::ids::Guest;

struct IdGen;

impl Guest for IdGen {
    /// 128 bits from the host's cryptographically secure source (`wasi:random/random`),
    /// as 32 lowercase hex digits.
    fn new_id() -> String {
        wasip2::random::random::get_random_bytes(16).iter().fold(
            String::with_capacity(32),
            |mut hex, byte| {
                // Writing to a String cannot fail.
                let _ = write!(hex, "{byte:02x}");
                hex
            },
        )
    }
}

export!(IdGen);
