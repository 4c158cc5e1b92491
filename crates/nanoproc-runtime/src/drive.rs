//! How a WASI 0.3 (async) nanoprocess is run: its store driven to completion,
//! call by call, from the synchronous code around it.
//!
//! # The execution model
//!
//! A plan runs on one thread, as a chain of synchronous calls: the root's `run`,
//! its trampolines into children, theirs into grandchildren. A nanoprocess whose
//! component uses the Component Model's async features (WASI 0.3) has a store
//! that wasmtime drives only through `*_async` calls: its instantiation, every
//! call into it (`Func::call_async`, which runs the store's event loop until the
//! call's result is in, `run_concurrent` inside) and every resource drop. Each of
//! those is a future, and [`drive`] polls it to completion on the calling
//! thread, parking between polls. A call into a 0.3 nanoprocess is therefore
//! still a synchronous call to its caller, whatever its caller is:
//!
//! * 0.2 → 0.3: the 0.2 parent's trampoline (a synchronous host function) drives
//!   the child's `call_async`;
//! * 0.3 → 0.2: the 0.3 parent's import is the same synchronous trampoline,
//!   called on the parent's fiber; the 0.2 child is called synchronously there;
//! * 0.3 → 0.3: the trampoline, running on the parent's fiber, drives the
//!   child's future with a nested [`drive`]: the parent's event loop waits, as a
//!   caller of a synchronous function does.
//!
//! Nothing here is a tokio `block_on`. wasmtime-wasi's synchronous 0.2 bindings
//! call `Handle::block_on` for their I/O, and tokio panics on a `block_on` inside
//! another; [`drive`] is a plain poll loop, so any nesting is fine. The 0.3 host
//! implementations do use tokio (its reactor for sockets, its timers; a 0.3
//! nanoprocess's file operations run on this thread, see `build_persona`): each
//! poll runs with wasmtime-wasi's multi-threaded runtime entered, whose worker
//! threads drive I/O and timers while this thread is parked, and wake it.
//!
//! # Limits while a guest waits
//!
//! A guest awaiting a host future runs no wasm, so the epoch check that stops a
//! computing guest never fires. [`drive`] asks the call's clock at every wake-up
//! and at least every [`TICK`](crate::interrupt::TICK): over its time limit, or
//! the run interrupted, the future is dropped (which cancels the host's work) and
//! the call fails with the same error an epoch check would give. The store is
//! then unusable, and is treated as a failed nanoprocess by its caller.
//!
//! # Cost
//!
//! Only a plan with an async component gets an engine with concurrency support
//! (`plan::compile`): a plan of 0.2 components keeps wasmtime's synchronous call
//! path and its costs. In a mixed plan every crossing pays for concurrency
//! support (docs/BENCHMARKS.md). Calls into a 0.3 child keep their typed fast
//! paths, which call [`call_typed`].

use crate::state::{CallClock, NanoState};
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use wasmtime::Store;
use wasmtime::component::{ComponentNamedList, Func, Lift, Lower, ResourceAny, TypedFunc, Val};

/// Wakes the thread that drives a future.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// How many [`drive`]s are under way on this thread: non-zero while code runs
    /// on a wasmtime fiber (an async store's), where the thread's stack bounds
    /// do not apply (see [`on_fiber`]).
    static DRIVING: Cell<usize> = const { Cell::new(0) };
}

/// Whether this code may be running on an async store's fiber, whose stack is
/// not the thread's: a check of the thread's stack left would be meaningless
/// there. Fibers are sized for the plan's depth instead (`engine`).
pub(crate) fn on_fiber() -> bool {
    DRIVING.with(|d| d.get() > 0)
}

struct Driving;

impl Driving {
    fn enter() -> Self {
        DRIVING.with(|d| d.set(d.get() + 1));
        Driving
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        DRIVING.with(|d| d.set(d.get() - 1));
    }
}

/// Polls `future` to completion on this thread, under `clock`'s limits: the
/// run's interrupt and the current call's time limit end it early, with the
/// error an epoch check would have raised.
pub(crate) fn drive<T>(
    clock: &CallClock,
    future: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let _driving = Driving::enter();
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        let polled =
            wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| future.as_mut().poll(&mut cx));
        if let Poll::Ready(result) = polled {
            return result;
        }
        if let Some(stop) = clock.stop_cause() {
            return Err(stop);
        }
        std::thread::park_timeout(crate::interrupt::TICK);
    }
}

/// The clock a drive of `store` is held to: a copy, since the future borrows the
/// store.
fn clock_of(store: &Store<NanoState>) -> CallClock {
    store.data().clock.clone()
}

/// Calls `func` in `store`, asynchronously (driven here) if its nanoprocess is
/// async.
pub(crate) fn call(
    func: Func,
    store: &mut Store<NanoState>,
    is_async: bool,
    params: &[Val],
    results: &mut [Val],
) -> wasmtime::Result<()> {
    if is_async {
        let clock = clock_of(store);
        drive(&clock, func.call_async(&mut *store, params, results))
    } else {
        func.call(&mut *store, params, results)
    }
}

/// [`call`] for a typed function.
pub(crate) fn call_typed<P, R>(
    func: &TypedFunc<P, R>,
    store: &mut Store<NanoState>,
    is_async: bool,
    params: P,
) -> wasmtime::Result<R>
where
    P: ComponentNamedList + Lower + Send + Sync,
    R: ComponentNamedList + Lift + Send + Sync + 'static,
{
    if is_async {
        let clock = clock_of(store);
        drive(&clock, func.call_async(&mut *store, params))
    } else {
        func.call(&mut *store, params)
    }
}

/// Drops a resource of `store`'s instance (its destructor is guest code).
pub(crate) fn drop_resource(
    any: ResourceAny,
    store: &mut Store<NanoState>,
    is_async: bool,
) -> wasmtime::Result<()> {
    if is_async {
        let clock = clock_of(store);
        drive(&clock, any.resource_drop_async(&mut *store))
    } else {
        any.resource_drop(&mut *store)
    }
}
