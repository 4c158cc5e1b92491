//! A loopback HTTP/1.1 server for the outgoing-request tests (`http_out.rs`), plain
//! or over TLS with a certificate from a test CA made at test time.
//!
//! It listens on `127.0.0.1:0` on a thread of its own with its own tokio runtime,
//! bounds every connection in time, and stops when dropped. It records every
//! connection it accepted and every request it read (method, path and query,
//! `host` header), so that a test can assert that a refused request never reached
//! it: not a request, not even a TCP connection.
//!
//! Routes (any method):
//!
//! | path                | answer                                                 |
//! |---------------------|--------------------------------------------------------|
//! | `/hello`            | 200 `hello`                                            |
//! | `/echo`             | 200, the request body's length in bytes, as decimal    |
//! | `/big?n=N`          | 200, `N` bytes of `x` (at most 64 MiB)                 |
//! | `/slow?ms=N`        | 200 `slow` after `N` ms (at most 20 s)                 |
//! | `/redirect?to=URL`  | 302 with `location: URL` (the query's rest, as sent)   |
//! | `/status?code=N`    | `N` with `status N`                                    |
//! | anything else       | 200 `at PATH`                                          |

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// The longest a connection is served, whatever the client does (it is closed
/// then): every test that uses the server is over well within it.
const CONNECTION_LIMIT: Duration = Duration::from_secs(30);

/// The largest request body `/echo` reads.
const MAX_ECHO: usize = 16 << 20;

/// One request the server read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    /// The path and query as the request line gave them.
    pub target: String,
    /// The `host` header, empty if none was sent.
    pub host: String,
    /// When its head was read.
    pub at: Instant,
}

/// What the server saw, shared with its thread.
#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Seen>>,
    /// The length of each body `/echo` read whole.
    echoed: Mutex<Vec<usize>>,
    connections: AtomicUsize,
    tls_failures: AtomicUsize,
}

/// A running server; stopped (its connections cut) when dropped.
pub struct Server {
    addr: SocketAddr,
    scheme: &'static str,
    log: Arc<Log>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// A plain HTTP server on an ephemeral loopback port.
    pub fn http() -> Server {
        Server::start(None)
    }

    /// An HTTPS server presenting `identity` (see [`TestCa::identity`]).
    pub fn https(identity: &Identity) -> Server {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .expect("the test certificate and its key");
        Server::start(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Log::default());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = log.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test {scheme} server {addr}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the test server");
                rt.block_on(serve(listener, tls, shared, stopped));
                // Dropping the runtime cancels the connections still open.
            })
            .expect("starting the test server's thread");
        Server {
            addr,
            scheme,
            log,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT` (or `https://`), no trailing slash.
    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.port())
    }

    /// [`Server::base`] followed by `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    /// Every request read so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.log.requests.lock().unwrap().clone()
    }

    /// The targets (path and query) of every request read so far.
    pub fn targets(&self) -> Vec<String> {
        self.requests().into_iter().map(|s| s.target).collect()
    }

    /// The length of each request body `/echo` read whole (one cut short is not
    /// here).
    pub fn echoed(&self) -> Vec<usize> {
        self.log.echoed.lock().unwrap().clone()
    }

    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.log.connections.load(Ordering::SeqCst)
    }

    /// How many TLS handshakes failed (the client refused the certificate, or
    /// spoke something else).
    pub fn tls_failures(&self) -> usize {
        self.log.tls_failures.load(Ordering::SeqCst)
    }

    /// Whether `holds` comes to hold within 10 s: for what the server records after
    /// the client has moved on (a handshake the client gave up on is counted when
    /// the server reads the alert).
    pub fn settled(&self, holds: impl Fn(&Server) -> bool) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while !holds(self) {
            if Instant::now() > until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Fails the test unless nothing reached the server: no request, no connection.
    #[track_caller]
    pub fn assert_untouched(&self, what: &str) {
        assert!(
            self.connections() == 0 && self.requests().is_empty(),
            "{what}: the server on {} should have seen nothing, but it accepted {} \
             connection(s) and read {:?}",
            self.addr,
            self.connections(),
            self.requests()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    log: Arc<Log>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        log.connections.fetch_add(1, Ordering::SeqCst);
        let (log, tls) = (log.clone(), tls.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_LIMIT, connection(stream, tls, log)).await;
        });
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    log: Arc<Log>,
) {
    let service = {
        let log = log.clone();
        hyper::service::service_fn(move |req| answer(req, log.clone()))
    };
    let http = hyper::server::conn::http1::Builder::new();
    match tls {
        None => {
            let _ = http.serve_connection(Io(stream), service).await;
        }
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => {
                let _ = http.serve_connection(Io(stream), service).await;
            }
            Err(_) => {
                log.tls_failures.fetch_add(1, Ordering::SeqCst);
            }
        },
    }
}

/// The value of `key` in a query string, as sent (not decoded); for `to`, the
/// rest of the query, so that a URL with its own query passes whole.
fn param<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    let prefix = format!("{key}=");
    if key == "to" {
        return query.find(&prefix).map(|i| &query[i + prefix.len()..]);
    }
    query.split('&').find_map(|kv| kv.strip_prefix(&prefix))
}

fn number(query: &str, key: &str) -> u64 {
    param(query, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_default()
}

async fn answer(
    req: Request<Incoming>,
    log: Arc<Log>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default();
    log.requests.lock().unwrap().push(Seen {
        method: req.method().to_string(),
        target: target.clone(),
        host,
        at: Instant::now(),
    });
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let ok = |body: Vec<u8>| {
        Response::builder()
            .status(200)
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let response = match path.as_str() {
        "/hello" => ok(b"hello".to_vec()),
        "/echo" => match Limited::new(req.into_body(), MAX_ECHO).collect().await {
            Ok(body) => {
                let len = body.to_bytes().len();
                log.echoed.lock().unwrap().push(len);
                ok(len.to_string().into_bytes())
            }
            Err(e) => Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .body(Full::new(Bytes::from(e.to_string())))
                .unwrap(),
        },
        "/big" => ok(vec![b'x'; number(&query, "n").min(64 << 20) as usize]),
        "/slow" => {
            let ms = number(&query, "ms").min(20_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ok(b"slow".to_vec())
        }
        "/redirect" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", param(&query, "to").unwrap_or("/"))
            .body(Full::new(Bytes::from_static(b"redirecting")))
            .unwrap(),
        "/status" => {
            let code = u16::try_from(number(&query, "code")).unwrap_or(500);
            Response::builder()
                .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .body(Full::new(Bytes::from(format!("status {code}"))))
                .unwrap()
        }
        other => ok(format!("at {other}").into_bytes()),
    };
    Ok(response)
}

/// A tokio stream as hyper's I/O (what hyper-util's `TokioIo` does, without the
/// dependency or its `unsafe`).
struct Io<T>(T);

impl<T: tokio::io::AsyncRead + Unpin> hyper::rt::Read for Io<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut tmp = [0u8; 16 * 1024];
        let n = buf.remaining().min(tmp.len());
        let mut read = tokio::io::ReadBuf::new(&mut tmp[..n]);
        ready!(Pin::new(&mut self.0).poll_read(cx, &mut read))?;
        buf.put_slice(read.filled());
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> hyper::rt::Write for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// A certificate authority made for one test: its certificate is written as PEM
/// to a file (for `--http-ca`), its key signs server certificates.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub pem: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A server certificate (with the chain up to the test CA) and its key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl TestCa {
    /// A new CA, its certificate written to `dir/name`.
    pub fn new(dir: &Path, name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("nanoproc test CA {name}"),
        );
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("a key for the test CA");
        let cert = params.self_signed(&key).expect("the test CA's certificate");
        let pem = dir.join(name);
        std::fs::write(&pem, cert.pem()).unwrap();
        TestCa {
            pem,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses), signed by
    /// this CA.
    pub fn identity(&self, names: &[&str]) -> Identity {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("the server's names");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nanoproc test server");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().expect("a key for the test server");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("the test server's certificate");
        Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}
