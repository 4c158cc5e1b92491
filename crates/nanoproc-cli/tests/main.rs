//! The command line's end-to-end tests, one module per subject, in one test binary:
//! each binary links wasmtime (~200 MB in a debug build), so one binary instead of
//! one per file saves gigabytes of disk and a link per file.

mod common;

mod async_edges;
mod bounds;
mod cache;
mod calls;
mod check;
mod config;
mod costs;
mod demo;
mod escapes;
mod families;
mod fastpath;
mod fs_model;
mod fused;
mod graph;
mod handles;
mod hints;
mod hostile;
mod http_out;
mod inspect;
mod isolation;
mod learn;
mod lock;
mod network;
mod p3_crossings;
mod p3_families;
mod p3_fs;
mod preview1;
mod redteam_fused;
mod redteam_fused2;
mod redteam_http;
mod redteam_p3;
mod resources;
mod rights;
mod serve;
mod single;
mod stops;
mod udp_scope;
mod usability;
