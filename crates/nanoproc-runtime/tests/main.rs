//! The runtime's integration tests in one test binary (each binary links wasmtime,
//! ~200 MB in a debug build). `progress` stays its own binary: it sets environment
//! variables, which are process-wide.

mod common;

mod host_io;
mod interruption;
mod plugins;
mod redteam_fused_host;
mod redteam_host_io;
mod redteam_plugins;
