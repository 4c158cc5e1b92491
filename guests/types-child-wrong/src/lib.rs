//! Exports an `echo` that does NOT match `test:types/echo` in ../wit/types.wit (`add`
//! takes a u64 and `noop` is missing), so nanoproc must refuse to wire it to a parent
//! that imports the real one.

wit_bindgen::generate!({ path: "../wit-mismatch/types.wit", world: "types-child" });

use exports::test::types::echo::Guest;

struct WrongChild;

impl Guest for WrongChild {
    fn add(a: u64, b: u32) -> u32 {
        // Truncation is fine: this only has to exist, with the wrong signature.
        a.wrapping_add(u64::from(b)) as u32
    }

    fn echo_string(s: String) -> String {
        s
    }
}

export!(WrongChild);
