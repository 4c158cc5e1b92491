//! Serving HTTP with a tree of nanoprocesses: `nanoproc serve`, and [`Server`] for
//! a host that embeds the runtime.
//!
//! The root exports `wasi:http/incoming-handler@0.2.x` or `wasi:http/handler@0.3.x`
//! (checked once, before anything listens). Every request is one call into **a
//! fresh instance of the whole tree**, made for it and dropped after it: no request
//! sees what another left behind, and the manifest's limits (time per call, fuel,
//! memory, output...) apply to each request as to one call. What is shared across
//! requests is what does not change: the plan, its compiled code and linked
//! `InstancePre`s, its engine, and the export indices of the handler, looked up
//! once here.
//!
//! # How a request is served
//!
//! hyper (HTTP/1.1) parses requests and writes responses on a small tokio runtime
//! of the server's own: a malformed request gets hyper's 400, a head over
//! [`ServeOptions::max_header_size`] its 431, and a client that does not send a
//! whole head within [`ServeOptions::header_read_timeout`] (which also bounds how
//! long an idle keep-alive connection is kept) is disconnected, without nanoproc
//! parsing anything by hand.
//!
//! The call itself runs on a worker thread of the server's pool, not on the tokio
//! runtime: a nanoprocess's store is driven synchronously (`crate::drive`), its
//! WASI host calls block on wasmtime-wasi's own runtime as they do under `run`, and
//! a worker's stack is sized for the tree's depth as a run's is
//! (`run::STACK_PER_LEVEL`). Each request takes a slot first: at most
//! [`ServeOptions::max_concurrent`] trees are alive at once, which bounds the
//! memory the server can be made to hold; a request beyond that waits for a slot,
//! in arrival order, for up to [`ServeOptions::queue_timeout`], and then gets
//! `503 Service Unavailable` with `retry-after: 1`.
//!
//! The response is streamed back as the guest writes it (WASI 0.2: through its
//! outgoing body while `handle` runs; WASI 0.3: the body stream, while nanoproc
//! keeps driving the store until hyper has read it). A response whose body the
//! nanoprocess did not finish (it trapped, went over a limit, or was stopped, after
//! sending the status) ends the connection without the body's last chunk, so the
//! client can tell it was cut short.
//!
//! # Failures
//!
//! A nanoprocess that fails before it responds (a trap, a limit, an exit, a tree
//! that could not be instantiated, a handler that returned without a response or
//! with an `error-code`, the request's own time limit) gives the client a `500`
//! whose body is generic and names only the request id; what failed and why goes
//! to the host: to [`ServeOptions::on_failure`] and to `tracing` (target
//! [`SERVE_TRACING_TARGET`], at `WARN`). A guest's text never reaches another
//! client through nanoproc.
//!
//! # Request ids
//!
//! Every request gets an id, a decimal number counted from 1 per server, given to
//! its tree's audit handle ([`Audit::for_request`]: every line of the audit log
//! carries it), to its failure if it fails, and to the client in the response's
//! `x-request-id` header, which nanoproc sets on every response, replacing any
//! the guest set: it is how a user who got a 500 finds the failure in the log. An
//! id a client sends is not used (it would put the client's text in the log as a
//! key that is not unique).
//!
//! # Shutdown
//!
//! When [`ServeOptions::interrupt`] is triggered (the command line does on
//! Ctrl-C), the server stops accepting connections, tells every connection to
//! close once its request in flight is answered, and waits up to
//! [`ServeOptions::shutdown_timeout`] for them. Requests still running then are
//! stopped (at their next epoch tick, or in the host call they wait in), their
//! clients getting a 503 if nothing was sent yet, and [`Server::run`] returns
//! shortly after.

use crate::audit::Audit;
use crate::host_io::HostIo;
use crate::interrupt::{Interrupt, StopReason};
use crate::plan::Plan;
use crate::plugin::{Instances, PluginError, PluginOptions};
use crate::run::RunError;
use crate::state::NanoState;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use wasmtime::component::types::ComponentItem;
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

/// The `tracing` target of the server's own events: each request's failure (at
/// `WARN`), the server's start and end (`INFO`), each request served (`DEBUG`).
pub const SERVE_TRACING_TARGET: &str = "nanoproc::serve";

/// The response header that carries the request id (see the module
/// documentation).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A host function told of each request that failed (see
/// [`ServeOptions::on_failure`]).
pub type OnFailure = Arc<dyn Fn(&RequestFailure) + Send + Sync>;

/// How a plan is served.
#[derive(Clone)]
pub struct ServeOptions {
    /// Where every request's capability decisions are recorded, each line with
    /// its request id.
    pub audit: Audit,
    /// Starts the graceful shutdown once triggered: no new connection is
    /// accepted, requests in flight get [`ServeOptions::shutdown_timeout`] to
    /// finish.
    pub interrupt: Interrupt,
    /// Where the trees' granted stdio comes from and goes (the process's own by
    /// default). Each request's tree gets its own output budget.
    pub io: HostIo,
    /// The most requests handled at once: the most trees alive at once. The
    /// default is 32.
    pub max_concurrent: usize,
    /// How long a request waits for one of those slots before it is answered
    /// `503` (default 10 s).
    pub queue_timeout: Duration,
    /// The longest a request's tree may run, from its instantiation to the end
    /// of its response (default 30 s; `None`: only the manifest's limits). On top
    /// of the root's own per-call `timeout`, which also applies to each request.
    /// Past it, the tree is stopped and the client gets a 500 (or, if the
    /// response had started, a cut connection).
    pub request_timeout: Option<Duration>,
    /// How long requests in flight may take to finish once the shutdown began,
    /// before they are stopped (default 10 s).
    pub shutdown_timeout: Duration,
    /// How long a client has to send a request's whole head, and how long an idle
    /// keep-alive connection is kept (default 10 s).
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) accepted, in bytes
    /// (default 64 KiB); beyond it hyper answers 431.
    pub max_header_size: usize,
    /// The most client connections open at once (default 1024); more wait in
    /// the system's backlog until one closes.
    pub max_connections: usize,
    /// Told of every request whose nanoprocess failed, with why: what the client
    /// is not told. Called on the request's worker thread.
    pub on_failure: Option<OnFailure>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            audit: Audit::default(),
            interrupt: Interrupt::default(),
            io: HostIo::default(),
            max_concurrent: 32,
            queue_timeout: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_header_size: 64 << 10,
            max_connections: 1024,
            on_failure: None,
        }
    }
}

impl fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeOptions")
            .field("max_concurrent", &self.max_concurrent)
            .field("queue_timeout", &self.queue_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_header_size", &self.max_header_size)
            .field("max_connections", &self.max_connections)
            .field("on_failure", &self.on_failure.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a plan cannot be served.
#[derive(Debug)]
pub enum ServeError {
    /// The root exports no HTTP handler nanoproc can call.
    NotAHandler {
        nanoprocess: Arc<str>,
        /// What it exports, as `interface` or `function` names.
        exports: Vec<String>,
        /// Why the export that looked like a handler cannot be used, if one did.
        why: Option<String>,
    },
    /// An option cannot be honoured (a request timeout on a plan that cannot
    /// interrupt wasm, a concurrency of 0).
    Options(String),
    /// The address could not be listened on.
    Bind { addr: String, error: std::io::Error },
    /// The server's runtime or threads could not be set up.
    Setup(std::io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::NotAHandler {
                nanoprocess,
                exports,
                why,
            } => {
                write!(
                    f,
                    "nanoprocess `{nanoprocess}` cannot serve HTTP: the root must export \
                     wasi:http/incoming-handler@0.2.x (WASI 0.2) or wasi:http/handler@0.3.x \
                     (WASI 0.3); it exports {}",
                    if exports.is_empty() {
                        "nothing".to_string()
                    } else {
                        exports.join(", ")
                    }
                )?;
                if let Some(why) = why {
                    write!(f, " ({why})")?;
                }
                Ok(())
            }
            ServeError::Options(why) => f.write_str(why),
            ServeError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ServeError::Setup(e) => write!(f, "cannot start the server: {e}"),
        }
    }
}

impl std::error::Error for ServeError {}

/// A request whose tree failed: what nanoproc logs, and the client never sees.
#[derive(Clone, Debug)]
pub struct RequestFailure {
    /// The request's id (see the module documentation).
    pub request: Arc<str>,
    pub method: String,
    /// The path and query, as the client sent them (cut to 1 KiB).
    pub path: String,
    /// The nanoprocess that failed, when one did.
    pub nanoprocess: Option<Arc<str>>,
    /// What happened, in words (a guest's panic message among them).
    pub message: String,
    /// One of the nanoprocess's limits, or the request's time limit, was the cause.
    pub limit_exceeded: bool,
    /// The response's status and headers had been sent when it failed: the client
    /// got a cut connection rather than a 500.
    pub response_started: bool,
}

impl fmt::Display for RequestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request {} ({} {}): {}",
            self.request, self.method, self.path, self.message
        )?;
        if self.response_started {
            f.write_str(" (after its response had started: the client's connection was cut)")?;
        }
        Ok(())
    }
}

/// What a server did, returned by [`Server::run`] when it has shut down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeSummary {
    /// Requests that reached a tree (or its queue).
    pub requests: u64,
    /// Requests whose tree failed (the 500s, and responses cut short).
    pub failed: u64,
    /// Requests answered 503: no slot within the queue timeout, or the shutdown.
    pub rejected: u64,
    /// Requests still running when the shutdown's time ran out, and stopped.
    pub stopped_at_shutdown: u64,
}

/// Which handler the root exports, with its export indices looked up once.
#[derive(Clone)]
enum Handler {
    /// `wasi:http/incoming-handler@0.2.x` of a synchronous component.
    P2(Arc<wasmtime_wasi_http::p2::bindings::sync::ProxyIndices>),
    /// The same, of a component using async features: called with `call_async`.
    P2Async(Arc<wasmtime_wasi_http::p2::bindings::ProxyIndices>),
    /// `wasi:http/handler@0.3.x`.
    P3(Arc<wasmtime_wasi_http::p3::bindings::ServiceIndices>),
}

impl Plan {
    /// Listens on `addr` (e.g. `127.0.0.1:8080`; port 0 picks a free one, see
    /// [`Server::local_addr`]) to serve HTTP requests with this plan's tree, one
    /// fresh tree per request (see [`crate::serve`]). Refused before
    /// anything listens if the root exports no HTTP handler. Nothing is served
    /// until [`Server::run`].
    pub fn serve(
        &self,
        addr: impl ToSocketAddrs + fmt::Display,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let handler = self.http_handler()?;
        check_options(self, &options)?;
        let listener = TcpListener::bind(&addr).map_err(|error| ServeError::Bind {
            addr: addr.to_string(),
            error,
        })?;
        Server::new(self, handler, listener, options)
    }

    /// [`Plan::serve`] on a listener the host already bound.
    pub fn serve_on(
        &self,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let handler = self.http_handler()?;
        check_options(self, &options)?;
        Server::new(self, handler, listener, options)
    }

    /// Whether the root can serve HTTP: `Ok` if it exports a handler nanoproc
    /// can call, else the refusal [`Plan::serve`] would give.
    pub fn check_http_handler(&self) -> Result<(), ServeError> {
        self.http_handler().map(|_| ())
    }

    fn http_handler(&self) -> Result<Handler, ServeError> {
        let root = &self.inner.nodes[0];
        let pre = &root.pre;
        let engine = &self.inner.engine;
        let names: Vec<String> = pre
            .component()
            .component_type()
            .exports(engine)
            .filter(|(_, item)| {
                matches!(
                    item.ty,
                    ComponentItem::ComponentInstance(_) | ComponentItem::ComponentFunc(_)
                )
            })
            .map(|(name, _)| name.to_string())
            .collect();
        let not_a_handler = |why: Option<String>| ServeError::NotAHandler {
            nanoprocess: root.path.clone(),
            exports: names.clone(),
            why,
        };
        let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
        if has("wasi:http/incoming-handler@0.2.") {
            let found = if root.is_async {
                wasmtime_wasi_http::p2::bindings::ProxyIndices::new(pre)
                    .map(|i| Handler::P2Async(Arc::new(i)))
            } else {
                wasmtime_wasi_http::p2::bindings::sync::ProxyIndices::new(pre)
                    .map(|i| Handler::P2(Arc::new(i)))
            };
            return found.map_err(|e| not_a_handler(Some(format!("{e:#}"))));
        }
        if has("wasi:http/handler@0.3.") {
            return wasmtime_wasi_http::p3::bindings::ServiceIndices::new(pre)
                .map(|i| Handler::P3(Arc::new(i)))
                .map_err(|e| not_a_handler(Some(format!("{e:#}"))));
        }
        Err(not_a_handler(None))
    }
}

fn check_options(plan: &Plan, options: &ServeOptions) -> Result<(), ServeError> {
    if options.max_concurrent == 0 || options.max_connections == 0 {
        return Err(ServeError::Options(
            "the most requests and connections at once must be at least 1".into(),
        ));
    }
    // A pool's slots are fixed: fewer than the trees that may be alive at once
    // would fail requests with "no slot" under load, rather than queue them.
    let nodes = plan.inner.nodes.len();
    if let Some(pool) = plan.inner.pool
        && (pool.instances as usize) < nodes.saturating_mul(options.max_concurrent)
    {
        return Err(ServeError::Options(format!(
            "the plan's pooling allocator has slots for {} trees of {nodes} nanoprocesses, \
             fewer than the {} requests handled at once: check it with a \
             Runtime::with_pool_for_trees({}), or handle fewer at once",
            pool.instances as usize / nodes.max(1),
            options.max_concurrent,
            options.max_concurrent
        )));
    }
    if !plan.inner.epochs {
        // A request's time limit, and the stop at the end of a shutdown, must stop
        // a guest that computes: refused rather than silently unbounded.
        return Err(ServeError::Options(
            "serving needs a plan that can interrupt wasm (to stop a request at its time \
             limit or at shutdown); check it with a Runtime::with_interruption(true) (the \
             default)"
                .into(),
        ));
    }
    Ok(())
}

/// A plan listening for HTTP requests, made by [`Plan::serve`]; it serves them
/// once [`Server::run`] is called.
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    local_addr: SocketAddr,
}

/// What every request of a server shares.
struct Shared {
    plan: Plan,
    handler: Handler,
    options: ServeOptions,
    local_addr: SocketAddr,
    next_id: AtomicU64,
    /// The slots of requests handled at once.
    slots: Arc<tokio::sync::Semaphore>,
    pool: Pool,
    /// The requests whose tree is running, to stop at the end of a shutdown.
    running: Mutex<std::collections::HashMap<u64, Interrupt>>,
    /// The shutdown's time ran out: requests still running are stopped, new ones
    /// are refused.
    forced: AtomicBool,
    requests: AtomicU64,
    failed: AtomicU64,
    rejected: AtomicU64,
    stopped_at_shutdown: AtomicU64,
}

impl Server {
    fn new(
        plan: &Plan,
        handler: Handler,
        listener: TcpListener,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let local_addr = listener.local_addr().map_err(ServeError::Setup)?;
        listener.set_nonblocking(true).map_err(ServeError::Setup)?;
        // The clock of every request's time limit and of the trees' own limits.
        plan.inner
            .ticker
            .get_or_init(|| crate::interrupt::Ticker::start(plan.inner.engine.clone()));
        let depth = crate::run::tree_depth(&plan.inner.nodes);
        let shared = Arc::new(Shared {
            plan: plan.clone(),
            handler,
            local_addr,
            next_id: AtomicU64::new(1),
            slots: Arc::new(tokio::sync::Semaphore::new(options.max_concurrent)),
            pool: Pool::new(options.max_concurrent, worker_stack(depth)),
            running: Mutex::default(),
            forced: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stopped_at_shutdown: AtomicU64::new(0),
            options,
        });
        Ok(Server {
            shared,
            listener,
            local_addr,
        })
    }

    /// The address it listens on (with the port the system chose, if 0 was
    /// asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves requests until [`ServeOptions::interrupt`] is triggered, then shuts
    /// down gracefully (see the module documentation) and says what it did.
    pub fn run(self) -> Result<ServeSummary, ServeError> {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 4);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("nanoproc-http")
            .enable_io()
            .enable_time()
            .build()
            .map_err(ServeError::Setup)?;
        let shared = self.shared.clone();
        tracing::info!(
            target: SERVE_TRACING_TARGET,
            addr = %self.local_addr,
            max_concurrent = shared.options.max_concurrent,
            "listening"
        );
        let listener = self.listener;
        let outcome = runtime.block_on(async move {
            let listener =
                tokio::net::TcpListener::from_std(listener).map_err(ServeError::Setup)?;
            accept_until_stopped(shared, listener).await;
            Ok(())
        });
        // Connections still open (a client that reads its response slowly) are
        // dropped with the runtime: the shutdown's time is over.
        runtime.shutdown_background();
        outcome?;
        let s = &self.shared;
        let summary = ServeSummary {
            requests: s.requests.load(Ordering::Relaxed),
            failed: s.failed.load(Ordering::Relaxed),
            rejected: s.rejected.load(Ordering::Relaxed),
            stopped_at_shutdown: s.stopped_at_shutdown.load(Ordering::Relaxed),
        };
        tracing::info!(target: SERVE_TRACING_TARGET, ?summary, "shut down");
        Ok(summary)
    }
}

/// The native stack of a worker: a call as deep as the tree (see
/// `Plugin::with_live`) and the tree's instantiation, with room to spare, so that
/// no request needs a thread of its own.
fn worker_stack(depth: usize) -> usize {
    (depth + 1)
        .saturating_mul(crate::run::STACK_PER_LEVEL)
        .saturating_add(depth.saturating_mul(128 << 10))
        .saturating_add(4 << 20)
}

/// How often the accept loop looks at the interrupt.
const STOP_POLL: Duration = Duration::from_millis(20);

/// How long requests stopped at the end of a shutdown get to end and answer.
const STOPPED_GRACE: Duration = Duration::from_secs(2);

async fn stopped(interrupt: &Interrupt) {
    while interrupt.reason().is_none() {
        tokio::time::sleep(STOP_POLL).await;
    }
}

async fn accept_until_stopped(shared: Arc<Shared>, listener: tokio::net::TcpListener) {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let connections = Arc::new(tokio::sync::Semaphore::new(shared.options.max_connections));
    let open = Arc::new(OpenConnections::default());
    let interrupt = shared.options.interrupt.clone();
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&interrupt) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&interrupt) => break,
        };
        let (socket, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, or a connection reset before it was taken:
                // the next may work.
                tracing::warn!(target: SERVE_TRACING_TARGET, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let guard = open.enter();
        let shared = shared.clone();
        let mut shutdown = shutdown_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _guard = guard;
            let service = {
                let shared = shared.clone();
                hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(shared.handle(req).await) }
                })
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer)
                .header_read_timeout(shared.options.header_read_timeout)
                .max_header_size(shared.options.max_header_size)
                .keep_alive(true);
            let conn =
                builder.serve_connection(wasmtime_wasi_http::io::TokioIo::new(socket), service);
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(target: SERVE_TRACING_TARGET, %peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    tracing::info!(
        target: SERVE_TRACING_TARGET,
        open = open.count(),
        "shutting down: no new connections; requests in flight may finish"
    );
    let _ = shutdown_tx.send(true);
    let timeout = shared.options.shutdown_timeout;
    if tokio::time::timeout(timeout, open.all_closed())
        .await
        .is_ok()
    {
        return;
    }
    // Time is up: every request still running is stopped.
    shared.forced.store(true, Ordering::SeqCst);
    let running: Vec<Interrupt> = shared
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    shared
        .stopped_at_shutdown
        .fetch_add(running.len() as u64, Ordering::Relaxed);
    tracing::warn!(
        target: SERVE_TRACING_TARGET,
        running = running.len(),
        "the shutdown's time ran out: stopping the requests still running"
    );
    for interrupt in running {
        interrupt.stop(StopReason::Interrupted);
    }
    let _ = tokio::time::timeout(STOPPED_GRACE, open.all_closed()).await;
}

/// The connections open, and a way to wait for there to be none.
#[derive(Default)]
struct OpenConnections {
    count: Mutex<usize>,
    none: tokio::sync::Notify,
}

struct OpenGuard(Arc<OpenConnections>);

impl OpenConnections {
    fn enter(self: &Arc<Self>) -> OpenGuard {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        OpenGuard(self.clone())
    }

    fn count(&self) -> usize {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.none.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.none.notify_waiters();
        }
    }
}

/// hyper's timer (for the header read timeout), on tokio's clock.
#[derive(Clone, Copy)]
struct TokioTimer;

struct TokioSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for TokioSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for TokioSleep {}

impl hyper::rt::Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(TokioSleep(Box::pin(tokio::time::sleep_until(
            deadline.into(),
        ))))
    }
}

/// What the worker sends when the tree's call has ended: whether it ended well.
type Outcome = bool;

/// What the guest answered: a response to stream, or none (the `error-code` it
/// gave instead, in words).
type Answer = Result<http::Response<WasiBody>, String>;

/// One request, handed to a worker.
struct Job {
    id: u64,
    request: http::Request<hyper::body::Incoming>,
    method: String,
    path: String,
    answer: oneshot::Sender<Answer>,
    /// The body of the response was read to its end, failed, or was dropped
    /// (WASI 0.3: until then the store is driven, for the guest to write it).
    body_done: oneshot::Receiver<()>,
    outcome: oneshot::Sender<Outcome>,
    /// The request's slot, freed when its tree is gone.
    slot: tokio::sync::OwnedSemaphorePermit,
    shared: Arc<Shared>,
}

impl Shared {
    async fn handle(
        self: Arc<Self>,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<ResponseBody> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut response = self.respond(id, request).await;
        if let Ok(value) = http::HeaderValue::from_str(&id.to_string()) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }

    async fn respond(
        self: &Arc<Self>,
        id: u64,
        request: http::Request<hyper::body::Incoming>,
    ) -> http::Response<ResponseBody> {
        let method = request.method().to_string();
        let path = clip(request.uri().path_and_query().map_or("/", |p| p.as_str()));
        let request = match self.with_authority(request) {
            Ok(r) => r,
            Err(why) => {
                tracing::debug!(target: SERVE_TRACING_TARGET, request = id, why, "bad request");
                return fixed(http::StatusCode::BAD_REQUEST, "bad request\n");
            }
        };
        let slot = match tokio::time::timeout(
            self.options.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(slot)) if !self.forced.load(Ordering::SeqCst) => slot,
            _ => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                let mut busy = fixed(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "service unavailable: too many requests at once; retry later\n",
                );
                busy.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("1"),
                );
                return busy;
            }
        };
        let (answer_tx, answer_rx) = oneshot::channel();
        let (outcome_tx, mut outcome_rx) = oneshot::channel();
        let (body_done_tx, body_done_rx) = oneshot::channel();
        self.pool.submit(Job {
            id,
            request,
            method,
            path,
            answer: answer_tx,
            body_done: body_done_rx,
            outcome: outcome_tx,
            slot,
            shared: self.clone(),
        });
        match answer_rx.await {
            Ok(Ok(response)) => response.map(|body| {
                ResponseBody::Guest(GuestBody {
                    inner: Some(body),
                    body_done: Some(body_done_tx),
                    outcome: Some(outcome_rx),
                })
            }),
            // The handler answered with an error code, or the call ended without
            // an answer (the worker said why to the host).
            Ok(Err(_)) => failed(id),
            Err(_) => match (&mut outcome_rx).await {
                _ if self.forced.load(Ordering::SeqCst) => fixed(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "service unavailable: the server is shutting down\n",
                ),
                _ => failed(id),
            },
        }
    }

    /// The request with the authority the guest sees (`wasi:http` needs one): the
    /// client's `Host`, else this server's address. A `Host` that is not an
    /// authority is a bad request.
    fn with_authority(
        &self,
        request: http::Request<hyper::body::Incoming>,
    ) -> Result<http::Request<hyper::body::Incoming>, String> {
        let (mut parts, body) = request.into_parts();
        let authority = match parts.uri.authority() {
            Some(a) => a.clone(),
            None => match parts.headers.get(http::header::HOST) {
                Some(host) => host
                    .to_str()
                    .ok()
                    .and_then(|h| h.parse::<http::uri::Authority>().ok())
                    .ok_or("its Host header is not a host")?,
                None => self
                    .local_addr
                    .to_string()
                    .parse()
                    .map_err(|_| "no authority")?,
            },
        };
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = http::Uri::builder()
            .scheme(http::uri::Scheme::HTTP)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(http::Request::from_parts(parts, body))
    }
}

/// The path of a request as logged: at most 1 KiB of it.
fn clip(path: &str) -> String {
    const MAX: usize = 1024;
    if path.len() <= MAX {
        return path.to_string();
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

fn fixed(status: http::StatusCode, text: &'static str) -> http::Response<ResponseBody> {
    let mut response = http::Response::new(ResponseBody::Fixed(Some(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The client's 500: generic, with the id to find the failure by in the log.
fn failed(id: u64) -> http::Response<ResponseBody> {
    let mut response = fixed(http::StatusCode::INTERNAL_SERVER_ERROR, "");
    *response.body_mut() = ResponseBody::Fixed(Some(Bytes::from(format!(
        "internal server error (request {id})\n"
    ))));
    response
}

/// A response body: nanoproc's own, or the guest's.
enum ResponseBody {
    Fixed(Option<Bytes>),
    Guest(GuestBody),
}

/// The guest's response body, ended only when its call ended well: a failure after
/// the status was sent cuts the response short (hyper drops the connection)
/// rather than let it look complete.
struct GuestBody {
    inner: Option<WasiBody>,
    /// Told when `inner` ended, failed or was dropped.
    body_done: Option<oneshot::Sender<()>>,
    outcome: Option<oneshot::Receiver<Outcome>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ResponseBody::Fixed(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Guest(body) => body.poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Fixed(bytes) => bytes.is_none(),
            ResponseBody::Guest(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Fixed(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Guest(body) => body
                .inner
                .as_ref()
                .map_or_else(SizeHint::default, |b| b.size_hint()),
        }
    }
}

const CUT: &str = "the nanoprocess failed before its response was complete";

impl GuestBody {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(inner) = &mut self.inner {
            match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(e))) => {
                    self.inner = None;
                    self.body_done = None;
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(None) => {
                    self.inner = None;
                    // The worker may now end the call (WASI 0.3).
                    self.body_done = None;
                }
                Poll::Pending => {
                    // A call that failed while the body waits ends it now.
                    if let Some(outcome) = &mut self.outcome
                        && let Poll::Ready(ended) = Pin::new(outcome).poll(cx)
                    {
                        self.outcome = None;
                        if ended != Ok(true) {
                            self.inner = None;
                            return Poll::Ready(Some(Err(CUT.into())));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
        // The body ended: it is complete once the call has ended well.
        match &mut self.outcome {
            None => Poll::Ready(None),
            Some(outcome) => match Pin::new(outcome).poll(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(ended) => {
                    self.outcome = None;
                    if ended == Ok(true) {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Err(CUT.into())))
                    }
                }
            },
        }
    }
}

/// The worker threads that run the requests' trees: as many as requests were
/// ever handled at once, at most the number of slots, each kept for the
/// server's life.
struct Pool {
    jobs: std::sync::mpsc::Sender<Job>,
    queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
    /// (threads started, jobs submitted and not finished)
    counts: Arc<Mutex<(usize, usize)>>,
    max: usize,
    stack: usize,
}

impl Pool {
    fn new(max: usize, stack: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel();
        Self {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            counts: Arc::default(),
            max,
            stack,
        }
    }

    fn submit(&self, job: Job) {
        {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.1 += 1;
            // Every job has a thread: the slots bound the jobs to `max`.
            if counts.1 > counts.0 && counts.0 < self.max {
                let (queue, tally) = (self.queue.clone(), self.counts.clone());
                let started = std::thread::Builder::new()
                    .name("nanoproc-request".into())
                    .stack_size(self.stack)
                    .spawn(move || work(queue, tally));
                match started {
                    Ok(_) => counts.0 += 1,
                    Err(e) => tracing::warn!(
                        target: SERVE_TRACING_TARGET,
                        error = %e,
                        "cannot start a worker thread; the request waits for another"
                    ),
                }
            }
        }
        let _ = self.jobs.send(job);
    }
}

fn work(queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>, counts: Arc<Mutex<(usize, usize)>>) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.recv() {
                Ok(job) => job,
                // The server is gone.
                Err(_) => return,
            }
        };
        let Job {
            id,
            request,
            method,
            path,
            answer,
            body_done,
            outcome,
            slot,
            shared,
        } = job;
        let failure = shared.run_tree(id, request, answer, body_done);
        let ok = failure.is_none();
        if let Some(mut failure) = failure {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            failure.method = method;
            failure.path = path;
            tracing::warn!(
                target: SERVE_TRACING_TARGET,
                request = id,
                method = %failure.method,
                path = ?failure.path,
                nanoprocess = failure.nanoprocess.as_deref(),
                error = ?failure.message,
                response_started = failure.response_started,
                "request failed"
            );
            if let Some(on_failure) = &shared.options.on_failure {
                on_failure(&failure);
            }
        }
        let _ = outcome.send(ok);
        counts.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
        drop(slot);
    }
}

/// How the guest's answer reaches the request's task: once, and closed by the
/// worker when the call has ended (the store may still hold the sender).
#[derive(Clone)]
struct Reply(Arc<Mutex<ReplyState>>);

struct ReplyState {
    to: Option<oneshot::Sender<Answer>>,
    /// What the guest answered: a response (`Ok`), or an error code.
    given: Option<Result<(), String>>,
}

impl Reply {
    fn new(to: oneshot::Sender<Answer>) -> Self {
        Reply(Arc::new(Mutex::new(ReplyState {
            to: Some(to),
            given: None,
        })))
    }

    fn send(&self, answer: Answer) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(to) = state.to.take() else { return };
        state.given = Some(answer.as_ref().map(|_| ()).map_err(Clone::clone));
        let _ = to.send(answer);
    }

    /// No answer can come any more: the request's task stops waiting for one.
    fn close(&self) -> Option<Result<(), String>> {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        state.to = None;
        state.given.clone()
    }
}

/// Why a request's tree did not serve it.
enum Failed {
    Start(RunError),
    Call(PluginError),
}

impl Shared {
    /// Runs request `id` in a fresh tree; `None` if it was served, else why not
    /// (its method and path left for the caller to fill in).
    fn run_tree(
        &self,
        id: u64,
        request: http::Request<hyper::body::Incoming>,
        answer: oneshot::Sender<Answer>,
        body_done: oneshot::Receiver<()>,
    ) -> Option<RequestFailure> {
        let interrupt = Interrupt::new();
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, interrupt.clone());
        if self.forced.load(Ordering::SeqCst) {
            interrupt.stop(StopReason::Interrupted);
        }
        let deadline = self.options.request_timeout.and_then(|t| {
            let ticker = self.plan.inner.ticker.get()?;
            Some(ticker.deadline(t, interrupt.clone()))
        });
        let request_id: Arc<str> = Arc::from(id.to_string());
        let reply = Reply::new(answer);
        let options = PluginOptions {
            audit: self.options.audit.for_request(request_id.clone()),
            interrupt,
            io: self.options.io.clone(),
            instances: Instances::PerCall,
            restart: None,
        };
        let called = self.call(&options, request, reply.clone(), body_done);
        let given = reply.close();
        drop(deadline);
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let root = || self.plan.inner.nodes[0].path.clone();
        let response_started = matches!(given, Some(Ok(())));
        let failure = |nanoprocess: Option<Arc<str>>, message: String, limit_exceeded: bool| {
            Some(RequestFailure {
                request: request_id.clone(),
                method: String::new(),
                path: String::new(),
                nanoprocess,
                message,
                limit_exceeded,
                response_started,
            })
        };
        let timeout = || {
            let limit = self
                .options
                .request_timeout
                .map_or_else(String::new, |t| format!(" ({})", humantime(t)));
            format!("the request's time limit{limit} passed")
        };
        match called {
            Ok(()) => match given {
                Some(Ok(())) => None,
                Some(Err(code)) => failure(
                    Some(root()),
                    format!("the handler answered with an error instead of a response: {code}"),
                    false,
                ),
                None => failure(
                    Some(root()),
                    "the handler returned without a response (it never called \
                     response-outparam.set)"
                        .into(),
                    false,
                ),
            },
            Err(Failed::Start(e)) => match e {
                RunError::Stopped(StopReason::TimedOut) => failure(
                    None,
                    format!("{} while its tree was being started", timeout()),
                    true,
                ),
                RunError::Stopped(_) => {
                    failure(None, "stopped at the end of the shutdown".into(), false)
                }
                RunError::Instantiate {
                    ref nanoprocess,
                    limit_exceeded,
                    ..
                }
                | RunError::Trap {
                    ref nanoprocess,
                    limit_exceeded,
                    ..
                } => failure(Some(nanoprocess.clone()), e.to_string(), limit_exceeded),
                RunError::Exited(_) => failure(Some(root()), e.to_string(), false),
            },
            Err(Failed::Call(e)) => match e {
                PluginError::Stopped(StopReason::TimedOut) => failure(None, timeout(), true),
                PluginError::Stopped(_) => {
                    failure(None, "stopped at the end of the shutdown".into(), false)
                }
                // The limit's message names the nanoprocess; a trap's may not.
                PluginError::Trap {
                    nanoprocess,
                    message,
                    limit_exceeded: true,
                    ..
                } => failure(Some(nanoprocess), message, true),
                PluginError::Trap {
                    nanoprocess,
                    message,
                    ..
                } => failure(
                    Some(nanoprocess.clone()),
                    format!("nanoprocess `{nanoprocess}` trapped: {message}"),
                    false,
                ),
                PluginError::Failed {
                    ref nanoprocess,
                    limit_exceeded,
                    ..
                } => failure(Some(nanoprocess.clone()), e.to_string(), limit_exceeded),
                PluginError::Exited {
                    ref nanoprocess, ..
                } => failure(Some(nanoprocess.clone()), e.to_string(), false),
                // Not of a call through bindings looked up at serve time.
                PluginError::NoExport { .. }
                | PluginError::WrongType { .. }
                | PluginError::OtherPlan { .. } => failure(Some(root()), e.to_string(), false),
            },
        }
    }

    /// Instantiates the tree and calls its handler with `request`.
    fn call(
        &self,
        options: &PluginOptions,
        request: http::Request<hyper::body::Incoming>,
        reply: Reply,
        body_done: oneshot::Receiver<()>,
    ) -> Result<(), Failed> {
        let started = Instant::now();
        let mut plugin = self.plan.plugin(options).map_err(Failed::Start)?;
        let instantiated = started.elapsed();
        let called = match &self.handler {
            Handler::P2(indices) => {
                let indices = indices.clone();
                plugin.call_with(move |store, instance| {
                    let proxy = indices.load(&mut *store, instance)?;
                    let (req, out) = p2_resources(store.data_mut(), request, reply)?;
                    proxy
                        .wasi_http_incoming_handler()
                        .call_handle(&mut *store, req, out)
                })
            }
            Handler::P2Async(indices) => {
                let indices = indices.clone();
                plugin.call_with_async(move |store, instance| {
                    Box::pin(async move {
                        let proxy = indices.load(&mut *store, instance)?;
                        let (req, out) = p2_resources(store.data_mut(), request, reply)?;
                        proxy
                            .wasi_http_incoming_handler()
                            .call_handle(&mut *store, req, out)
                            .await
                    })
                })
            }
            Handler::P3(indices) => {
                let indices = indices.clone();
                plugin.call_with_async(move |store, instance| {
                    Box::pin(async move {
                        let service = indices.load(&mut *store, instance)?;
                        store
                            .run_concurrent(async move |accessor| {
                                let (req, io) = accessor.with(|mut s| {
                                    wasmtime_wasi_http::p3::Request::from_http(
                                        s.get().http().hooks,
                                        request,
                                    )
                                });
                                match service.handle(accessor, req).await? {
                                    Ok(response) => {
                                        let response = accessor
                                            .with(|mut s| response.into_http(&mut s, io))?;
                                        reply.send(Ok(response));
                                        // The guest writes the body while the store
                                        // is driven: until hyper has read it.
                                        let _ = body_done.await;
                                    }
                                    Err(code) => reply.send(Err(format!("{code:?}"))),
                                }
                                wasmtime::error::Ok(())
                            })
                            .await?
                    })
                })
            }
        };
        let ran = started.elapsed();
        // The tree is dropped here, before the request's slot is freed.
        drop(plugin);
        tracing::debug!(
            target: SERVE_TRACING_TARGET,
            request = options.audit.request().map(|r| &**r),
            instantiate_us = instantiated.as_micros() as u64,
            call_us = (ran - instantiated).as_micros() as u64,
            drop_us = (started.elapsed() - ran).as_micros() as u64,
            "tree"
        );
        called.map_err(Failed::Call)
    }
}

/// The request and the response's out-parameter, as WASI 0.2 resources of the
/// root's store.
fn p2_resources(
    state: &mut NanoState,
    request: http::Request<hyper::body::Incoming>,
    reply: Reply,
) -> wasmtime::Result<(
    wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostIncomingRequest>,
    wasmtime::component::Resource<wasmtime_wasi_http::p2::types::HostResponseOutparam>,
)> {
    let mut http = state.http();
    let req = http.new_incoming_request(
        wasmtime_wasi_http::p2::bindings::http::types::Scheme::Http,
        request,
    )?;
    let out = http.new_response_outparam_from_callback(move |answer| {
        reply.send(answer.map_err(|code| format!("{code:?}")));
    })?;
    Ok((req, out))
}

/// A duration as the command line writes one: `30s`, `1.5s`, `250ms`.
fn humantime(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}
