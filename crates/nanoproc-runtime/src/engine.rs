//! The one wasmtime [`Engine`] every nanoprocess of a run shares.

use wasmtime::{Config, Engine, WasmBacktraceDetails};

/// An engine configured for nanoprocesses.
///
/// wasmtime is built without `component-model-async`, so host<->guest transitions
/// take the cheap synchronous path; re-entering an instance that is already on the
/// stack is therefore not refused by wasmtime and the runtime refuses it itself
/// (see the trampolines). Backtrace details are off: they cost ~0.5 ms per trap,
/// and a hostile child should not be able to make its parent pay that at will.
///
/// Epoch interruption is always on: it is how per-call time limits, `--timeout` and
/// Ctrl-C stop a guest that never returns. Fuel counting is on only when `fuel` is
/// asked for, because it slows every guest down.
pub fn new_engine(fuel: bool) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_backtrace_details(WasmBacktraceDetails::Disable);
    config.epoch_interruption(true);
    config.consume_fuel(fuel);
    Engine::new(&config)
}
