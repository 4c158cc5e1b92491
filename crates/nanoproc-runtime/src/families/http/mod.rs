//! The HTTP family: `wasi:http` (0.2 and 0.3), outgoing requests granted by URL
//! pattern (`grants.http`).
//!
//! wasmtime-wasi-http implements the interfaces: requests, responses, fields,
//! bodies and their streams, the `outgoing-handler` (0.2) and `client` (0.3). It
//! hands every outgoing request to one hook, [`WasiHttpHooks::send_request`], and
//! that hook is the family's guard: wasmtime-wasi-http is built without its own
//! sender (`default-send-request` off), so no request can leave by another way.
//!
//! What the guard decides, in order (each step's reasoning is next to its code,
//! in [`send`]):
//!
//! 1. **The URL against the patterns**, as the request will be sent: scheme, host
//!    as written, port, path ([`HttpHolding::check`]). A refusal is recorded and
//!    the guest gets `HTTP-request-denied`; nothing is resolved, nothing leaves.
//! 2. **The limits** of the nanoprocess: requests in flight (`http-requests`),
//!    bytes each way (`http-body`), time (`http-timeout`).
//! 3. **Where the name leads.** nanoproc resolves the host itself and judges every
//!    address ([`HttpHolding::may_connect`]): a name that resolves to a loopback,
//!    private or link-local address is refused unless a pattern names that address.
//!    The connection is made to an address that was judged, never to the name
//!    again (a second resolution could answer differently: DNS rebinding).
//! 4. **TLS** with the system's trust roots plus the ones the user configured
//!    ([`Client`]), the certificate checked for the host as the guest wrote it.
//!
//! Redirects are not followed by the host: a `3xx` reaches the guest as it is, and
//! a guest that follows it makes a new request, judged from step 1.
//!
//! `wasi:http/types` alone grants nothing (it builds values), and is linked for
//! every component that imports it: a handler served by `nanoproc serve` needs it
//! to read its request and write its response.
//!
//! Every request is recorded once, when its outcome is known: refused (with the
//! reason), failed (allowed, but it did not get a response: the reason says why)
//! or allowed (with the response's status). A request abandoned before its
//! outcome (its future dropped by the guest, or by the end of its nanoprocess) is
//! recorded when it is abandoned: allowed with the reason that it may have reached
//! the server, or failed if no connection was made yet.

mod send;

pub(crate) use send::Client;

use crate::audit::{Decision, Recorder};
use crate::state::NanoState;
use nanoproc_caps::http::{HttpHolding, RequestUrl};
use nanoproc_caps::{LimitKind, Limits};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::Linker;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

/// The family's grant key and audit capability.
const CAPABILITY: &str = "http";

/// The operation a request is recorded under, whichever generation sent it
/// (0.2's `outgoing-handler.handle` and 0.3's `client.send` reach the same hook).
pub(crate) const OPERATION: &str = "wasi:http/outgoing-handler.handle";

/// The family's part of a nanoprocess's state.
pub(crate) struct State {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

/// When the nanoprocess ends (its store is dropped), a request still in flight
/// is recorded as abandoned there and then: the task sending it is only told to
/// stop, and the process may exit before that task's own record would be made.
impl Drop for State {
    fn drop(&mut self) {
        self.hooks.policy.abandon_all();
    }
}

/// The hooks wasmtime-wasi-http calls: the guard.
struct Hooks {
    policy: Arc<Policy>,
}

/// What decides and sends this nanoprocess's requests; shared with the requests
/// in flight, which outlive the call that made them.
pub(crate) struct Policy {
    recorder: Recorder,
    holding: HttpHolding,
    client: Arc<Client>,
    /// `http-requests`: the most requests in flight at once.
    max_in_flight: Option<usize>,
    in_flight: AtomicUsize,
    /// `http-body`: the most bytes of a request's body, and of a response's.
    max_body: Option<u64>,
    /// `http-timeout`: the longest a request may take, from sending it to the
    /// end of its response's body, and so also the longest wait for a
    /// connection, for a response's
    /// headers, and between two pieces of its body.
    timeout: Option<Duration>,
    /// The requests sent whose outcome is not recorded yet, by number.
    pending: Mutex<HashMap<u64, Arc<Pending>>>,
    next: AtomicU64,
}

/// A request sent whose outcome is not recorded yet (see [`Policy::begin`]).
pub(crate) struct Pending {
    id: u64,
    policy: std::sync::Weak<Policy>,
    /// Taken by whoever records the request, once.
    target: Mutex<Option<String>>,
    /// A connection was made: from then on, bytes of the request may have left.
    pub(crate) connected: AtomicBool,
}

impl Pending {
    /// Its target, for the caller to record the outcome; `None` if it was recorded
    /// as abandoned already.
    pub(crate) fn settle(&self) -> Option<String> {
        if let Some(policy) = self.policy.upgrade() {
            lock(&policy.pending).remove(&self.id);
        }
        lock(&self.target).take()
    }

    /// Records it as abandoned, unless its outcome was recorded.
    pub(crate) fn abandon(&self) {
        let Some(target) = self.settle() else {
            return;
        };
        let Some(policy) = self.policy.upgrade() else {
            return;
        };
        let (decision, reason) = abandoned(self.connected.load(Ordering::Relaxed));
        policy.record(|| target, decision, Some(reason.to_string()));
    }
}

/// How an abandoned request is recorded: allowed (it may have reached the server)
/// once a connection was made, failed before.
fn abandoned(connected: bool) -> (Decision, &'static str) {
    if connected {
        (
            Decision::Allowed,
            "abandoned before its answer (its future was dropped, or its nanoprocess \
             ended): the request may have reached the server",
        )
    } else {
        (
            Decision::Failed,
            "abandoned before it was sent (its future was dropped, or its nanoprocess ended)",
        )
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The most a `fields` (a message's headers or trailers, built by the guest) may
/// hold, in wasmtime-wasi-http's accounting (names and values plus their structs).
/// Its default, 128 KiB, is host memory a guest can fill per handle, with no grant
/// (`wasi:http/types` is linked for any component that imports it): 4,096 handles
/// of a dependency's default limit made 550 MiB. 32 KiB is more than the 8 to
/// 16 KiB of headers common servers accept at all. Past it the guest traps, as
/// wasmtime-wasi-http does past its own limit.
const FIELD_SIZE_LIMIT: usize = 32 * 1024;

/// The most a 0.2 guest may write to a message's body at once. The host buffers
/// two such writes per body until they are sent, and a body finished but never
/// sent keeps them as long as its request (one handle) lives: at
/// wasmtime-wasi-http's default of 1 MiB, 2 MiB a handle, 8 GiB for a dependency
/// at its default 4,096 handles. 16 KiB is a TLS record's worth: 32 KiB a body.
const BODY_CHUNK: usize = 16 * 1024;

pub(crate) fn build(
    holding: &HttpHolding,
    _wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    let mut ctx = WasiHttpCtx::new();
    ctx.set_field_size_limit(FIELD_SIZE_LIMIT);
    Ok(State {
        ctx,
        hooks: Hooks {
            policy: Arc::new(Policy::new(
                cx.recorder.clone(),
                holding.clone(),
                cx.http.clone(),
                cx.limits,
            )),
        },
    })
}

impl Policy {
    fn new(recorder: Recorder, holding: HttpHolding, client: Arc<Client>, limits: &Limits) -> Self {
        Self {
            recorder,
            holding,
            client,
            max_in_flight: limits
                .get(LimitKind::HttpRequests)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            in_flight: AtomicUsize::new(0),
            max_body: limits.get(LimitKind::HttpBody),
            timeout: limits
                .get(LimitKind::HttpTimeout)
                .map(Duration::from_millis),
            pending: Mutex::default(),
            next: AtomicU64::new(0),
        }
    }

    /// A request about to be sent to `target`, recorded once its outcome is known
    /// ([`Pending::settle`]), or as abandoned ([`Pending::abandon`]) if it is
    /// dropped first: by the guest, or by the end of its nanoprocess. By then it
    /// may have reached the server, and a guest must not be able to send what the
    /// record never shows by not waiting for the answer.
    pub(crate) fn begin(self: &Arc<Self>, target: String) -> Arc<Pending> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let pending = Arc::new(Pending {
            id,
            policy: Arc::downgrade(self),
            target: Mutex::new(Some(target)),
            connected: AtomicBool::new(false),
        });
        lock(&self.pending).insert(id, pending.clone());
        pending
    }

    /// Records every request still in flight as abandoned.
    fn abandon_all(&self) {
        let pending: Vec<Arc<Pending>> = lock(&self.pending).drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Some(target) = lock(&p.target).take() {
                let (decision, reason) = abandoned(p.connected.load(Ordering::Relaxed));
                self.record(|| target, decision, Some(reason.to_string()));
            }
        }
    }

    /// Records the outcome of one request.
    fn record(&self, target: impl FnOnce() -> String, decision: Decision, reason: Option<String>) {
        self.recorder
            .decide(CAPABILITY, OPERATION, || Some(target()), decision, reason);
    }

    /// Takes a place among the requests in flight, or says why there is none.
    fn enter(self: &Arc<Self>) -> Result<InFlight, String> {
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.clone());
        match self.max_in_flight {
            Some(max) if taken >= max => Err(format!(
                "it has {taken} requests in flight, its `http-requests` limit; raise the limit or wait for a response"
            )),
            _ => Ok(guard),
        }
    }

    /// The timeout of each wait: the guest's own, capped by `http-timeout`.
    fn options(&self, asked: Option<RequestOptions>) -> RequestOptions {
        let asked = asked.unwrap_or_default();
        let cap = |t: Option<Duration>| match (t, self.timeout) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (t, max) => t.or(max),
        };
        RequestOptions {
            connect_timeout: cap(asked.connect_timeout),
            first_byte_timeout: cap(asked.first_byte_timeout),
            between_bytes_timeout: cap(asked.between_bytes_timeout),
        }
    }
}

/// One request in flight: counted until its response's body is finished with (or
/// it failed), whoever holds it then.
pub(crate) struct InFlight(Arc<Policy>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The request as it will be sent, in the caps crate's terms; `Err` is why it
/// cannot be judged (and so is refused).
fn request_url(request: &http::Request<WasiBody>) -> Result<RequestUrl, String> {
    let uri = request.uri();
    let scheme = uri.scheme_str().unwrap_or("");
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    RequestUrl::parse(scheme, authority, path)
}

/// How a request is named in the record: method and URL, as sent.
fn describe(method: &http::Method, uri: &http::Uri) -> String {
    format!("{method} {uri}")
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for Hooks {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let policy = self.policy.clone();
        let target = describe(request.method(), request.uri());
        let refuse = |reason: String| -> Box<dyn Future<Output = SendResult> + Send> {
            policy.record(|| target.clone(), Decision::Refused, Some(reason));
            Box::new(std::future::ready(Err(HttpError::HttpRequestDenied)))
        };
        // 1. The URL, as it will be sent, against the patterns.
        let url = match request_url(&request) {
            Ok(url) => url,
            Err(why) => return refuse(why),
        };
        if let Err(why) = policy.holding.check(&url) {
            return refuse(why);
        }
        // 2. Its place among the requests in flight.
        let in_flight = match policy.enter() {
            Ok(guard) => guard,
            Err(why) => {
                policy.record(|| target.clone(), Decision::Refused, Some(why));
                return Box::new(std::future::ready(Err(HttpError::ConnectionLimitReached)));
            }
        };
        let options = policy.options(options);
        Box::new(send::send(
            policy.clone(),
            url,
            target,
            request,
            options,
            in_flight,
        ))
    }
}

impl WasiHttpView for NanoState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = &mut self.families.http;
        WasiHttpCtxView {
            ctx: &mut http.ctx,
            hooks: &mut http.hooks,
            table: &mut self.wasi.table,
        }
    }
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] = &[("wasi:http/", "0.2."), ("wasi:http/", "0.3.")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::http::Http as nanoproc_caps::Family>::NAME;

/// What importing each interface can ask for, for `inspect`: only sending a
/// request reaches anything; `types` builds values, and `incoming-handler` is an
/// export.
pub(crate) const SURFACE: super::Surface = &[
    ("wasi:http/outgoing-handler", &["http"]),
    ("wasi:http/client", &["http"]),
    ("wasi:http/", &[]),
];

/// WASI preview 1 has no HTTP.
pub(crate) const PREVIEW1: super::Surface = &[];

pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)
}

pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    wasmtime_wasi_http::p3::add_to_linker(linker)
}

/// A fused nanoprocess cannot import `wasi:http` (`plan::fuse` refuses it at
/// check): there is nothing to bind under its own name.
pub(crate) fn add_named_to_linker(
    _linker: &mut Linker<NanoState>,
    _component: &wasmtime::component::Component,
    _lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    Ok(())
}
