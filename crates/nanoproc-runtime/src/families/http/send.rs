//! nanoproc's sender of outgoing requests, once the URL has been granted: where
//! wasmtime-wasi-http's default sender would resolve the name and connect to
//! whatever it answers, this one judges every address first and connects only to
//! one it judged, with the limits of the nanoprocess that asked.

use super::{InFlight, Policy, SendResult};
use crate::audit::Decision;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use nanoproc_caps::http::{RequestHost, RequestUrl, Scheme};
use std::future::poll_fn;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// What every wait is bounded by when neither the guest nor `http-timeout` says:
/// wasmtime-wasi-http's own default.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

/// The TLS side of outgoing requests, shared by every nanoprocess of a runtime:
/// which roots are trusted. The system's roots are read on the first HTTPS
/// request (reading them costs milliseconds that a plan without HTTPS should not
/// pay); the user's are read when configured, so that a bad file is an error
/// before anything runs.
pub struct Client {
    /// Certificates the user added (`--http-ca`, [`crate::Runtime::with_http_ca`]).
    extra: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// Where they came from, for messages.
    sources: Vec<PathBuf>,
    config: OnceLock<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("extra_roots", &self.sources)
            .finish()
    }
}

impl Default for Client {
    fn default() -> Self {
        Self {
            extra: Vec::new(),
            sources: Vec::new(),
            config: OnceLock::new(),
        }
    }
}

impl Client {
    /// The system's roots plus the certificates in each PEM file of `files`.
    pub fn with_roots_from(files: &[PathBuf]) -> Result<Client, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut client = Client::default();
        for file in files {
            let before = client.extra.len();
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| format!("cannot read trust roots from {}: {e}", file.display()))?;
            for cert in certs {
                client.extra.push(cert.map_err(|e| {
                    format!("cannot read trust roots from {}: {e}", file.display())
                })?);
            }
            if client.extra.len() == before {
                return Err(format!(
                    "{} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
                    file.display()
                ));
            }
            // Each must be usable as a root: found out now, not at the first request.
            let mut store = rustls::RootCertStore::empty();
            for cert in &client.extra[before..] {
                store.add(cert.clone()).map_err(|e| {
                    format!(
                        "{} holds a certificate that cannot be a trust root: {e}",
                        file.display()
                    )
                })?;
            }
            client.sources.push(file.clone());
        }
        Ok(client)
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.config
            .get_or_init(|| {
                let mut roots = rustls::RootCertStore::empty();
                // A system without a readable store trusts only the user's roots:
                // every other certificate is then refused, which is the safe side.
                let native = rustls_native_certs::load_native_certs();
                for error in &native.errors {
                    tracing::warn!("reading the system's trust roots: {error}");
                }
                let (added, ignored) = roots.add_parsable_certificates(native.certs);
                tracing::debug!(added, ignored, "the system's trust roots");
                for cert in &self.extra {
                    // Checked when the file was read.
                    let _ = roots.add(cert.clone());
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .expect("ring supports the default protocol versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Arc::new(config)
            })
            .clone()
    }
}

/// Why a request that was granted got no response.
struct Failure {
    /// `Refused`: the resolution rule refused every address; `Failed`: the
    /// network, the peer or a limit did.
    decision: Decision,
    reason: String,
    error: HttpError,
}

impl Failure {
    fn failed(reason: impl Into<String>, error: HttpError) -> Self {
        Self {
            decision: Decision::Failed,
            reason: reason.into(),
            error,
        }
    }
}

/// Sends a request whose URL was granted, and records its outcome.
pub(super) async fn send(
    policy: Arc<Policy>,
    url: RequestUrl,
    target: String,
    request: http::Request<WasiBody>,
    options: RequestOptions,
    in_flight: InFlight,
) -> SendResult {
    // `http-timeout` bounds the whole request, from here to the end of its
    // response's body, besides each wait (`Policy::options`): a server dripping
    // bytes just faster than the wait between them would otherwise hold the
    // connection, and the guest's place among the requests in flight, for as long
    // as it liked.
    let deadline = policy.timeout.map(|t| tokio::time::Instant::now() + t);
    let unsettled = Unsettled(policy.begin(target));
    let attempt = attempt(
        &policy,
        &url,
        request,
        options,
        in_flight,
        deadline,
        &unsettled.0.connected,
    );
    let outcome = match deadline {
        None => attempt.await,
        Some(deadline) => tokio::time::timeout_at(deadline, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::failed(
                    "no response within its `http-timeout`",
                    HttpError::ConnectionReadTimeout,
                ))
            }),
    };
    // Abandoned already (its nanoprocess ended as the answer came): recorded then.
    let Some(target) = unsettled.0.settle() else {
        return outcome.map_err(|failure| failure.error);
    };
    match outcome {
        Ok((response, io)) => {
            let status = response.status().as_u16();
            policy.record(|| format!("{target} -> {status}"), Decision::Allowed, None);
            Ok((response, io))
        }
        Err(failure) => {
            policy.record(|| target, failure.decision, Some(failure.reason));
            Err(failure.error)
        }
    }
}

/// A request in flight whose outcome is not recorded yet: recorded as abandoned
/// if dropped so (see [`Policy::begin`]).
struct Unsettled(Arc<super::Pending>);

impl Drop for Unsettled {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

type Io = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

async fn attempt(
    policy: &Arc<Policy>,
    url: &RequestUrl,
    mut request: http::Request<WasiBody>,
    options: RequestOptions,
    in_flight: InFlight,
    deadline: Option<tokio::time::Instant>,
    connected: &AtomicBool,
) -> Result<(http::Response<WasiBody>, Io), Failure> {
    let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_WAIT);
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_WAIT);
    // Tokio panics on a zero interval.
    let between_bytes = options
        .between_bytes_timeout
        .unwrap_or(DEFAULT_WAIT)
        .max(Duration::from_nanos(1));

    // The request's body within `http-body`: refused whole when it says it is
    // larger, cut (and failed) when it turns out to be.
    if let Some(max) = policy.max_body {
        // What it says: its `content-length` (wasmtime-wasi-http checks that the
        // body then matches it), or the body's own exact size.
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| request.body().size_hint().exact());
        if declared.is_some_and(|n| n > max) {
            return Err(Failure::failed(
                format!(
                    "its body is {} bytes, over its `http-body` limit of {max}",
                    declared.unwrap_or(0)
                ),
                HttpError::HttpRequestBodySize(declared),
            ));
        }
        let body = std::mem::replace(request.body_mut(), empty_body());
        *request.body_mut() = Capped {
            inner: body,
            seen: 0,
            max,
            error: |max| HttpError::HttpRequestBodySize(Some(max)),
        }
        .boxed_unsync();
    }

    // Where the name leads, each address judged, within the connect timeout
    // (resolving is part of connecting).
    let port = url.port;
    let addresses = tokio::time::timeout(connect_timeout, addresses(policy, url))
        .await
        .map_err(|_| Failure::failed("resolving its host timed out", HttpError::DnsTimeout))??;
    let stream = tokio::time::timeout(connect_timeout, connect(&addresses, port))
        .await
        .map_err(|_| Failure::failed("connecting timed out", HttpError::ConnectionTimeout))??;
    connected.store(true, std::sync::atomic::Ordering::Relaxed);

    let stream: Box<dyn Stream> = match url.scheme {
        Scheme::Http => Box::new(stream),
        Scheme::Https => {
            // The certificate is checked for the host as the guest wrote it (a
            // name, or an address literal), never for the address it resolved to.
            let name = match &url.host {
                RequestHost::Name(name) => rustls::pki_types::ServerName::try_from(name.clone())
                    .map_err(|e| {
                        Failure::failed(
                            format!("{name} is not a valid TLS server name: {e}"),
                            HttpError::HttpRequestUriInvalid,
                        )
                    })?,
                RequestHost::Ip(ip) => rustls::pki_types::ServerName::IpAddress((*ip).into()),
            };
            let connector = tokio_rustls::TlsConnector::from(policy.client.tls());
            let tls = tokio::time::timeout(connect_timeout, connector.connect(name, stream))
                .await
                .map_err(|_| {
                    Failure::failed("the TLS handshake timed out", HttpError::ConnectionTimeout)
                })?
                .map_err(|e| Failure::failed(format!("TLS: {e}"), tls_error(e)))?;
            Box::new(tls)
        }
    };

    let (mut sender, conn) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Failure::failed("the HTTP handshake timed out", HttpError::ConnectionTimeout))?
    .map_err(|e| Failure::failed(format!("HTTP: {e}"), HttpError::Hyper(e)))?;

    // On the wire, the request line carries the path only: the scheme and
    // authority are for a proxy, and the `host` header (set by wasmtime-wasi-http
    // from the authority the guest gave) names the host.
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|e| Failure::failed(format!("its path: {e}"), HttpError::HttpRequestUriInvalid))?;

    let send = async {
        tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| {
                Failure::failed(
                    "no response within its timeout",
                    HttpError::ConnectionReadTimeout,
                )
            })?
            .map_err(hyper_failure)
    };
    // The response is awaited while the connection's I/O is driven.
    let mut send = pin!(send);
    let mut conn = Some(conn);
    let response = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(io) = conn.as_mut() else {
                return Poll::Pending;
            };
            let done = ready!(Pin::new(io).poll(cx));
            conn = None;
            match done {
                Ok(()) => send.as_mut().poll(cx),
                Err(e) => Poll::Ready(Err(hyper_failure(e))),
            }
        }
    })
    .await?;

    let mut interval = tokio::time::interval(between_bytes);
    interval.reset();
    let response = response.map(|incoming| {
        ResponseBody {
            incoming,
            seen: 0,
            max: policy.max_body,
            between_bytes: interval,
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            _in_flight: in_flight,
        }
        .boxed_unsync()
    });
    let io: Io = Box::new(async move {
        match conn {
            None => Ok(()),
            Some(conn) => conn.await.map_err(|e| {
                if e.is_timeout() {
                    HttpError::HttpResponseTimeout
                } else {
                    HttpError::Hyper(e)
                }
            }),
        }
    });
    Ok((response, io))
}

/// Why hyper failed to send a request and get its response's head. A request body
/// cut at `http-body` ([`Capped`]) reaches here wrapped in hyper's error: the
/// guest is told `HTTP-request-body-size`, as when the body said its size up front,
/// not a protocol error.
fn hyper_failure(e: hyper::Error) -> Failure {
    let cut = std::error::Error::source(&e)
        .and_then(|cause| cause.downcast_ref::<HttpError>())
        .and_then(|cause| match cause {
            HttpError::HttpRequestBodySize(max) => Some(*max),
            _ => None,
        });
    if let Some(max) = cut {
        return Failure::failed(
            format!(
                "its body went over its `http-body` limit of {} bytes",
                max.unwrap_or_default()
            ),
            HttpError::HttpRequestBodySize(max),
        );
    }
    let error = if e.is_timeout() {
        HttpError::HttpResponseTimeout
    } else {
        HttpError::Hyper(e)
    };
    Failure::failed(format!("HTTP: {error:?}"), error)
}

/// A failed TLS handshake as the guest is told it: a certificate the trust roots
/// do not vouch for, or that does not name the host, is `TLS-certificate-error`,
/// and an alert from the server `TLS-alert-received` (wasmtime-wasi-http tells these
/// apart only in its own sender, which nanoproc does not use); anything else stays
/// a TLS error, which wasmtime-wasi-http reports as a protocol error or a
/// terminated connection.
fn tls_error(e: std::io::Error) -> HttpError {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(_)) => HttpError::TlsCertificateError,
        Some(rustls::Error::AlertReceived(alert)) => HttpError::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => HttpError::Tls(e),
    }
}

/// The addresses a request may be sent to: its literal address, or what its name
/// resolved to, each judged by the resolution rule. At least one, or the request
/// is refused.
async fn addresses(policy: &Policy, url: &RequestUrl) -> Result<Vec<IpAddr>, Failure> {
    let candidates: Vec<IpAddr> = match &url.host {
        RequestHost::Ip(ip) => vec![*ip],
        RequestHost::Name(name) => {
            let found = tokio::net::lookup_host((name.as_str(), url.port))
                .await
                .map_err(|e| {
                    Failure::failed(
                        format!("resolving {name}: {e}"),
                        HttpError::DnsError {
                            rcode: Some(e.to_string()),
                            info_code: None,
                        },
                    )
                })?;
            let mut ips: Vec<IpAddr> = Vec::new();
            for addr in found {
                if !ips.contains(&addr.ip()) {
                    ips.push(addr.ip());
                }
            }
            if ips.is_empty() {
                return Err(Failure::failed(
                    format!("{name} resolved to no address"),
                    HttpError::DestinationNotFound,
                ));
            }
            ips
        }
    };
    let mut allowed = Vec::new();
    let mut refusal = None;
    for ip in candidates {
        match policy.holding.may_connect(url, ip) {
            Ok(()) => allowed.push(ip),
            Err(why) => {
                refusal.get_or_insert(why);
            }
        }
    }
    if allowed.is_empty() {
        return Err(Failure {
            decision: Decision::Refused,
            reason: refusal.unwrap_or_else(|| "no address may be reached".to_string()),
            error: HttpError::DestinationIpProhibited,
        });
    }
    Ok(allowed)
}

/// A connection to the first of `addresses` that answers.
async fn connect(addresses: &[IpAddr], port: u16) -> Result<TcpStream, Failure> {
    let mut last = None;
    for ip in addresses {
        match TcpStream::connect(SocketAddr::new(*ip, port)).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address to connect to"));
    Err(Failure::failed(
        format!("connecting: {e}"),
        HttpError::Connect(e),
    ))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static
{
}

fn empty_body() -> WasiBody {
    http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body that fails once more than `max` bytes went through it.
struct Capped {
    inner: WasiBody,
    seen: u64,
    max: u64,
    error: fn(u64) -> HttpError,
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            self.seen = self.seen.saturating_add(data.len() as u64);
            if self.seen > self.max {
                return Poll::Ready(Some(Err((self.error)(self.max))));
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response's body as the guest reads it: within `http-body`, each piece
/// within the wait between bytes, and the request counted in flight until the
/// body is dropped.
struct ResponseBody {
    incoming: hyper::body::Incoming,
    seen: u64,
    max: Option<u64>,
    between_bytes: tokio::time::Interval,
    /// The end of the request's `http-timeout`, if it has one.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    _in_flight: InFlight,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(if e.is_timeout() {
                HttpError::HttpResponseTimeout
            } else {
                HttpError::Hyper(e)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.between_bytes.reset();
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len() as u64);
                    if let Some(max) = self.max
                        && self.seen > max
                    {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(max)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if let Some(deadline) = self.deadline.as_mut()
                    && deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
                }
                ready!(self.between_bytes.poll_tick(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
