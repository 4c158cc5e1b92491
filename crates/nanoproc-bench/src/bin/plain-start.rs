//! The anchor of the start-up benchmark: what plain wasmtime needs to reach the
//! point where nanoproc enters the root. `plain-start ROOT.cwasm [CHILD.cwasm...]`
//! makes an engine with nanoproc's settings, loads each precompiled component
//! (written by the benchmark with the same settings), links wasmtime-wasi (other
//! imports trap), instantiates each in its own store, finds the root's
//! `wasi:cli/run`, and prints `plain: root entered after X.XXX ms` (measured from the
//! start of `main`) to stderr. It does not run the root.

use nanoproc_bench::{Plain, plain_engine, plain_linker, plain_store, trap_other_imports};
use std::process::ExitCode;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, Instance};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sync::{Command, CommandPre};

fn main() -> ExitCode {
    let started = Instant::now();
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: plain-start ROOT.cwasm [CHILD.cwasm...]");
        return ExitCode::from(2);
    }
    match start(&paths) {
        Ok(_live) => {
            eprintln!(
                "plain: root entered after {:.3} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plain-start: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The root's command and every child's instance, each in its own store.
type Live = ((Store<Plain>, Command), Vec<(Store<Plain>, Instance)>);

fn start(paths: &[String]) -> Result<Live, String> {
    let engine = plain_engine();
    let mut root = None;
    let mut children = Vec::new();
    for path in paths {
        let fail = |e: &dyn std::fmt::Display| format!("{path}: {e}");
        let bytes = std::fs::read(path).map_err(|e| fail(&e))?;
        // SAFETY: the start-up benchmark wrote these artifacts with
        // `Engine::precompile_component` on an engine with these same settings.
        let component = unsafe { Component::deserialize(&engine, &bytes) }.map_err(|e| fail(&e))?;
        let mut linker = plain_linker(&engine);
        trap_other_imports(&mut linker, &component).map_err(|e| fail(&e))?;
        let pre = linker.instantiate_pre(&component).map_err(|e| fail(&e))?;
        let mut store = plain_store(
            &engine,
            WasiCtxBuilder::new()
                .inherit_stdout()
                .inherit_stderr()
                .build(),
        );
        if root.is_none() {
            let command = CommandPre::new(pre)
                .and_then(|p| p.instantiate(&mut store))
                .map_err(|e| fail(&e))?;
            root = Some((store, command));
        } else {
            let instance = pre.instantiate(&mut store).map_err(|e| fail(&e))?;
            children.push((store, instance));
        }
    }
    Ok((root.expect("at least one path"), children))
}
