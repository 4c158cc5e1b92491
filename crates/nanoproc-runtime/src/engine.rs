//! The wasmtime [`Engine`] every nanoprocess of a plan shares.

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, WasmBacktraceDetails,
};

/// Trees with at least this many nanoprocesses get the pooling allocator.
pub const POOL_FROM: usize = 16;
/// ... and at most this many (see `plan::pool_for`).
pub const POOL_UP_TO: usize = 1024;

/// The slots of a pooling allocator, sized for one plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool {
    /// Component instances that can be alive at once.
    pub instances: u32,
    /// The largest linear memory any nanoprocess of the plan may grow to.
    pub max_memory: u64,
    /// The largest table any nanoprocess of the plan may grow to.
    pub table_elements: u64,
    /// The most nanoprocesses one component instance holds: 1, or more where
    /// dependencies are fused into their parent's component (each brings its own
    /// core instances, memories and tables).
    pub nanoprocesses_per_component: u32,
    /// The bytes of each memory and table slot kept resident when its instance
    /// is dropped, zeroed in place (`memset`) rather than returned to the system:
    /// for trees made per request, whose slots are reused at once (see
    /// `plan::pool_for`). 0 returns everything (`madvise`), which costs a TLB
    /// shootdown across the process's threads and a page fault per page on the
    /// slot's next use: serving a hello handler 8 connections at a time (a debug
    /// build), keeping 2 MiB took it from 4,200 to 5,200-6,000 requests/s.
    /// (Linux's `PAGEMAP_SCAN`, which zeroes only the pages written, was no faster
    /// for such small memories, and is left off.)
    pub keep_resident: u64,
}

/// What an engine is configured for, chosen per plan: each costs guests speed, so
/// a plan gets only what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EngineChoice {
    /// Fuel is counted: some nanoprocess has a fuel limit.
    pub fuel: bool,
    /// Epoch checks are compiled in: some nanoprocess has a time limit, or the
    /// runtime was asked to be able to interrupt wasm (`--timeout`).
    pub epochs: bool,
    pub pool: Option<Pool>,
    /// Concurrency support is on: some component of the plan uses the Component
    /// Model's async features (WASI 0.3). `Some(depth)`, the depth of the tree,
    /// which sizes the stacks async calls run on.
    pub concurrency: Option<usize>,
}

/// An engine configured for nanoprocesses.
///
/// Concurrency support is off: `component-model-async` is compiled in (for WASI
/// 0.3), but with it on every host<->guest transition costs about five times as
/// much (80 -> 400 ns for a no-op entry, docs/BENCHMARKS.md). Off, transitions take
/// the cheap synchronous path; re-entering an instance that is already on the
/// stack is therefore not refused by wasmtime and the runtime refuses it itself
/// (see the trampolines). Backtrace details are off: they cost ~0.5 ms per trap,
/// and a hostile child should not be able to make its parent pay that at will.
///
/// Epoch interruption is how per-call time limits, `--timeout` and Ctrl-C stop a
/// guest that never returns to the host. Its checks are compiled into every loop
/// and call of every guest; on wasmtime 50 they make a tight compute loop take
/// about 1.8x its time under `wasmtime run` (docs/BENCHMARKS.md), so they are
/// compiled in only when `choice.epochs` says some limit needs them. Without them,
/// a guest waiting in a host call is still stopped there (`families::io`), and a
/// guest computing is stopped by its fuel limit if it has one; the command line's
/// watchdog ends a run that was told to stop and did not. Fuel counting is on only
/// when some nanoprocess has a fuel limit, for the same reason.
///
/// With `pool`, instances come from wasmtime's pooling allocator: memories, tables
/// and instance state are reserved once, up front, and recycled, which makes
/// instantiation and teardown cheaper and keeps an idle instance's resident memory
/// small. Its slots are fixed, so a plan gets a pool sized for it (see
/// [`Pool`]); small trees use the on-demand allocator, which reserves nothing.
pub fn new_engine(choice: EngineChoice) -> wasmtime::Result<Engine> {
    let EngineChoice {
        fuel,
        epochs,
        pool,
        concurrency,
    } = choice;
    let mut config = Config::new();
    config.wasm_component_model(true);
    // Named imports (`(implements "...")`): how a fused nanoprocess's WASI imports
    // are bound to its own capabilities (see `plan::fuse`). Validation only: it
    // costs nothing to a component without them.
    config.wasm_component_model_implements(true);
    config.concurrency_support(concurrency.is_some());
    if let Some(depth) = concurrency {
        config.wasm_component_model_async(true);
        // A WASI 0.3 nanoprocess runs on a fiber, and so do the synchronous
        // nanoprocesses it calls (their calls are ordinary host calls on its
        // stack): the fiber's stack must hold the chain of calls below it, as
        // the run's thread does for a synchronous tree (`run::STACK_PER_LEVEL`).
        // Reserved as address space; pages are touched only as used.
        let levels = depth.saturating_add(1);
        config.async_stack_size(
            levels
                .saturating_mul(crate::run::STACK_PER_LEVEL)
                .saturating_add(1 << 20),
        );
    }
    config.wasm_backtrace_details(WasmBacktraceDetails::Disable);
    config.epoch_interruption(epochs);
    config.consume_fuel(fuel);
    if let Some(pool) = pool {
        // A component is a handful of core instances with one memory (two for a
        // WASI preview 1 module and its adapter) and a few tables. Memory slots
        // are address space only until used, and 4 GiB each: keep them few.
        // A fused composite holds several nanoprocesses: the per-component slots
        // grow with the largest.
        let per = pool.nanoprocesses_per_component.max(1);
        let mut p = PoolingAllocationConfig::new();
        p.total_component_instances(pool.instances)
            .total_core_instances(pool.instances.saturating_mul(16))
            .max_core_instances_per_component(per.saturating_mul(64))
            .total_memories(pool.instances.saturating_mul(2))
            .max_memories_per_component(per.saturating_mul(8))
            .total_tables(pool.instances.saturating_mul(16))
            .max_tables_per_component(per.saturating_mul(32))
            .max_memory_size(usize::try_from(pool.max_memory).unwrap_or(usize::MAX))
            .table_elements(usize::try_from(pool.table_elements).unwrap_or(usize::MAX));
        if pool.keep_resident > 0 {
            let keep = usize::try_from(pool.keep_resident).unwrap_or(usize::MAX);
            p.linear_memory_keep_resident(keep)
                .table_keep_resident(keep);
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&config)
}
