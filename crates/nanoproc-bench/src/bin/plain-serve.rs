//! The anchor of the serve benchmark: an HTTP server of plain wasmtime and
//! wasmtime-wasi-http, written as `wasmtime serve` and wasmtime-wasi-http's own
//! example are, with the engine settings nanoproc gives a served plan.
//!
//! `plain-serve COMPONENT [--addr 127.0.0.1:0]` loads one component exporting
//! `wasi:http/incoming-handler@0.2.x`, links wasmtime-wasi (all of WASI 0.2, as a
//! host running a CLI-style handler does) and wasmtime-wasi-http, pre-instantiates
//! it once (`ProxyPre`), and prints `plain-serve: listening on http://ADDR` to
//! stderr. hyper serves HTTP/1.1 on a multi-threaded tokio runtime; every request
//! gets a fresh `Store` and instance from the `ProxyPre`, called with
//! `call_handle` on its own tokio task, as `wasmtime serve` does for a WASI 0.2
//! component.
//!
//! The engine is the one `nanoproc serve` gives a served plan
//! ([`nanoproc_bench::plain_serve_engine`]: epochs on, no fuel, concurrency
//! support off, a pooling allocator with slots for `--max-concurrent` instances,
//! default 32, each of `--per-component` nanoprocesses, default 1), and at most
//! `--max-concurrent` requests are handled at once; more wait. Like nanoproc, a
//! thread advances the epoch every 5 ms and each request's store gets a 30 s
//! deadline (`wasmtime serve --wasm timeout=30s`; nanoproc's default
//! `--request-timeout`).
//!
//! With `--workers`, the same engine and component are served the way
//! `nanoproc serve` serves a tree, without nanoproc: hyper on tokio hands each
//! request to a pool of worker threads (started as needed, up to 32, fed from one
//! queue), where a fresh store is instantiated and called synchronously
//! (`add_to_linker_sync`); the response travels back to hyper over a oneshot
//! channel, and its body ends only once the worker has dropped the store and said
//! the call ended well. It tells the cost of that design from the cost of
//! nanoproc's own per-request work.
//!
//! It runs until killed.

use http_body_util::BodyExt;
use nanoproc_bench::{
    EPOCH_TICK, PlainHttp, plain_http_linker, plain_http_store, plain_serve_engine,
};
use std::convert::Infallible;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Component;
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre as SyncProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A request's time limit: nanoproc serve's default `--request-timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

type Host = PlainHttp;

/// How requests reach their store.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `call_handle` on a tokio task, as `wasmtime serve`.
    Async,
    /// A synchronous call on a worker thread, as `nanoproc serve`.
    Workers,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut component = None;
    let mut addr = "127.0.0.1:0".to_owned();
    let mut mode = Mode::Async;
    let mut max_concurrent = 32u32;
    let mut per_component = 1u32;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => match args.next() {
                Some(a) => addr = a,
                None => return usage(),
            },
            "--workers" => mode = Mode::Workers,
            "--max-concurrent" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => max_concurrent = n,
                _ => return usage(),
            },
            "--per-component" => match args.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => per_component = n,
                _ => return usage(),
            },
            _ if component.is_none() => component = Some(arg),
            _ => return usage(),
        }
    }
    let Some(component) = component else {
        return usage();
    };
    match serve(&component, &addr, mode, max_concurrent, per_component) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plain-serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: plain-serve COMPONENT.wasm [--addr 127.0.0.1:0] [--workers] \
         [--max-concurrent 32] [--per-component 1]"
    );
    ExitCode::from(2)
}

fn serve(
    component: &str,
    addr: &str,
    mode: Mode,
    max_concurrent: u32,
    per_component: u32,
) -> wasmtime::Result<()> {
    let engine = plain_serve_engine(max_concurrent, per_component);
    let component = Component::from_file(&engine, component)?;
    let pre = match mode {
        Mode::Async => {
            let linker = plain_http_linker(&engine, false);
            Pre::Async(Arc::new(ProxyPre::new(
                linker.instantiate_pre(&component)?,
            )?))
        }
        Mode::Workers => {
            let linker = plain_http_linker(&engine, true);
            let pre = SyncProxyPre::new(linker.instantiate_pre(&component)?)?;
            Pre::Workers(Arc::new(Workers::new(pre)))
        }
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(max_concurrent as usize));
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("plain-serve-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()?;
    runtime.block_on(accept(pre, engine, slots, addr))
}

#[derive(Clone)]
enum Pre {
    Async(Arc<ProxyPre<Host>>),
    Workers(Arc<Workers>),
}

async fn accept(
    pre: Pre,
    engine: Engine,
    slots: Arc<tokio::sync::Semaphore>,
    addr: &str,
) -> wasmtime::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!(
        "plain-serve: listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let (pre, engine, slots) = (pre.clone(), engine.clone(), slots.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (pre, engine, slots) = (pre.clone(), engine.clone(), slots.clone());
                async move { handle(&pre, &engine, &slots, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

async fn handle(
    pre: &Pre,
    engine: &Engine,
    slots: &Arc<tokio::sync::Semaphore>,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<HyperOutgoingBody>, Infallible> {
    // A slot of the pool, held until the store is dropped.
    let slot = slots
        .clone()
        .acquire_owned()
        .await
        .expect("the slots stay open");
    let responded = match pre {
        Pre::Async(pre) => respond(pre, engine, slot, req).await,
        Pre::Workers(workers) => workers.respond(engine, slot, req).await,
    };
    match responded {
        Ok(response) => Ok(response),
        Err(e) => {
            eprintln!("plain-serve: {e:#}");
            let mut response = hyper::Response::new(HyperOutgoingBody::default());
            *response.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            Ok(response)
        }
    }
}

/// One request: a fresh store and instance, the handler called on a task of its
/// own (it may go on writing the body after the response's head is sent).
fn new_store(engine: &Engine) -> Store<Host> {
    plain_http_store(engine, REQUEST_TIMEOUT)
}

async fn respond(
    pre: &ProxyPre<Host>,
    engine: &Engine,
    slot: OwnedSemaphorePermit,
    req: hyper::Request<hyper::body::Incoming>,
) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
    let mut store = new_store(engine);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, req)?;
    let out = store.data_mut().http().new_response_outparam(sender)?;
    let pre = pre.clone();
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        let called = proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
            .await;
        drop(store);
        drop(slot);
        called
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => Err(wasmtime::format_err!("the handler answered {code:?}")),
        Err(_) => match task.await {
            Ok(Ok(())) => Err(wasmtime::format_err!(
                "the handler returned without a response"
            )),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(e.into()),
        },
    }
}

type Answer = Result<hyper::Response<HyperOutgoingBody>, ErrorCode>;

/// One request handed to a worker thread.
struct Job {
    req: hyper::Request<hyper::body::Incoming>,
    answer: tokio::sync::oneshot::Sender<Answer>,
    /// Sent once the store is dropped: whether the call ended well.
    done: tokio::sync::oneshot::Sender<bool>,
    engine: Engine,
    slot: OwnedSemaphorePermit,
}

/// The worker threads of `--workers`: as `nanoproc serve`'s pool, started as
/// requests need them, up to [`MAX_WORKERS`], fed from one queue.
struct Workers {
    pre: SyncProxyPre<Host>,
    jobs: Mutex<mpsc::Sender<Job>>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    /// (threads started, jobs not finished)
    counts: Arc<Mutex<(usize, usize)>>,
}

/// nanoproc serve's default `--max-concurrent`.
const MAX_WORKERS: usize = 32;

impl Workers {
    fn new(pre: SyncProxyPre<Host>) -> Self {
        let (jobs, queue) = mpsc::channel();
        Workers {
            pre,
            jobs: Mutex::new(jobs),
            queue: Arc::new(Mutex::new(queue)),
            counts: Arc::default(),
        }
    }

    async fn respond(
        self: &Arc<Self>,
        engine: &Engine,
        slot: OwnedSemaphorePermit,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> wasmtime::Result<hyper::Response<HyperOutgoingBody>> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let (done, ended) = tokio::sync::oneshot::channel();
        {
            let mut counts = self.counts.lock().unwrap();
            counts.1 += 1;
            if counts.1 > counts.0 && counts.0 < MAX_WORKERS {
                let (workers, queue, tally) =
                    (self.clone(), self.queue.clone(), self.counts.clone());
                std::thread::Builder::new()
                    .name("plain-serve-worker".into())
                    .spawn(move || workers.work(&queue, &tally))?;
                counts.0 += 1;
            }
        }
        let job = Job {
            req,
            answer,
            done,
            engine: engine.clone(),
            slot,
        };
        self.jobs
            .lock()
            .unwrap()
            .send(job)
            .map_err(|_| wasmtime::format_err!("the workers are gone"))?;
        match answered.await {
            Ok(Ok(response)) => Ok(response.map(|body| {
                EndsAfter {
                    inner: body,
                    ended: Some(ended),
                }
                .boxed_unsync()
            })),
            Ok(Err(code)) => Err(wasmtime::format_err!("the handler answered {code:?}")),
            Err(_) => Err(wasmtime::format_err!(
                "the handler returned without a response"
            )),
        }
    }

    fn work(&self, queue: &Mutex<mpsc::Receiver<Job>>, counts: &Mutex<(usize, usize)>) {
        loop {
            let Ok(job) = queue.lock().unwrap().recv() else {
                return;
            };
            let ok = match self.call(job.req, job.answer, &job.engine) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!("plain-serve: {e:#}");
                    false
                }
            };
            drop(job.slot);
            let _ = job.done.send(ok);
            counts.lock().unwrap().1 -= 1;
        }
    }

    fn call(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        answer: tokio::sync::oneshot::Sender<Answer>,
        engine: &Engine,
    ) -> wasmtime::Result<()> {
        let mut store = new_store(engine);
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(answer)?;
        let proxy = self.pre.instantiate(&mut store)?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, req, out)
        // The store is dropped here, before the caller says the call ended.
    }
}

/// A response body that ends only once its call has ended well (as nanoproc's).
struct EndsAfter {
    inner: HyperOutgoingBody,
    ended: Option<tokio::sync::oneshot::Receiver<bool>>,
}

impl http_body::Body for EndsAfter {
    type Data = bytes::Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(None) => {}
            other => return other,
        }
        let Some(ended) = &mut self.ended else {
            return Poll::Ready(None);
        };
        match Pin::new(ended).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(ok) => {
                self.ended = None;
                if ok == Ok(true) {
                    Poll::Ready(None)
                } else {
                    Poll::Ready(Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                        "the call failed".into(),
                    )))))
                }
            }
        }
    }
}
