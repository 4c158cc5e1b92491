//! `transform(input: string) -> string` returning its input, as guests/plugin-echo does
//! for nanoproc and plain wasmtime (world `echo-plugin` in guests/wit/plugins.wit).

use extism_pdk::{FnResult, plugin_fn};

#[plugin_fn]
pub fn transform(input: String) -> FnResult<String> {
    Ok(input)
}
