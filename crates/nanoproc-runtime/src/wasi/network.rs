//! Network grants, enforced through wasmtime-wasi's socket address check.
//!
//! wasmtime-wasi asks a per-context check before every bind, connect, listen,
//! accept, send and receive, before any syscall. [`NetPolicy::decide`] answers it
//! from the nanoprocess's patterns: outbound (`network`) for connect and send,
//! inbound (`listen`) for bind, listen, accept and receive. A pattern that names a
//! host by DNS name allows an address only if this nanoprocess itself resolved
//! that name to that address: the name grant is honoured for what the name
//! resolved to here, never for an address the guest picked by itself.

use crate::audit::{Audit, Decision, Event};
use nanoproc_caps::network::{NetPattern, Protocol};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime_wasi::sockets::SocketAddrUse;

pub(crate) struct NetPolicy {
    path: Arc<str>,
    audit: Audit,
    connect: Vec<NetPattern>,
    listen: Vec<NetPattern>,
    /// Addresses this nanoprocess resolved, with the names they came from.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
}

impl NetPolicy {
    pub fn new(
        path: Arc<str>,
        audit: Audit,
        connect: Vec<NetPattern>,
        listen: Vec<NetPattern>,
    ) -> Self {
        Self {
            path,
            audit,
            connect,
            listen,
            resolved: Mutex::default(),
        }
    }

    pub fn grants_anything(&self) -> bool {
        !self.connect.is_empty() || !self.listen.is_empty()
    }

    /// The answer to wasmtime-wasi's address check, recorded.
    pub fn decide(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        // Before a connect, wasmtime-wasi checks the implicit bind to the wildcard
        // address and port 0, without a syscall. That bind reaches nothing; letting
        // it pass means the refusal (and the record) names the address actually
        // aimed at. Listening, connecting and sending are each checked on their own.
        if matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
            && addr.ip().is_unspecified()
            && addr.port() == 0
        {
            return true;
        }
        let names: Vec<String> = self
            .resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&addr.ip())
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let any = |patterns: &[NetPattern], proto| {
            patterns.iter().any(|p| p.allows_addr(proto, addr, &names))
        };
        let (allowed, operation) = match usage {
            SocketAddrUse::TcpConnect => (
                any(&self.connect, Protocol::Tcp),
                "wasi:sockets/tcp.connect",
            ),
            SocketAddrUse::UdpSend => (any(&self.connect, Protocol::Udp), "wasi:sockets/udp.send"),
            SocketAddrUse::TcpBind => (any(&self.listen, Protocol::Tcp), "wasi:sockets/tcp.bind"),
            SocketAddrUse::TcpListen => {
                (any(&self.listen, Protocol::Tcp), "wasi:sockets/tcp.listen")
            }
            SocketAddrUse::UdpBind => (any(&self.listen, Protocol::Udp), "wasi:sockets/udp.bind"),
            // The address is the peer's. Accepting on a socket whose listen was
            // allowed is allowed.
            SocketAddrUse::TcpAccept => (
                self.listen
                    .iter()
                    .any(|p| p.protocols.contains(Protocol::Tcp)),
                "wasi:sockets/tcp.accept",
            ),
            // A datagram from a peer it may send to (a reply), or on a port it may
            // receive on.
            SocketAddrUse::UdpReceive => (
                any(&self.connect, Protocol::Udp)
                    || self
                        .listen
                        .iter()
                        .any(|p| p.protocols.contains(Protocol::Udp)),
                "wasi:sockets/udp.receive",
            ),
        };
        self.record(operation, addr.to_string(), allowed);
        allowed
    }

    /// Whether a name may be looked up: only names some pattern could reach.
    pub fn may_resolve(&self, name: &str) -> bool {
        let allowed = self
            .connect
            .iter()
            .chain(&self.listen)
            .any(|p| p.allows_name(name));
        self.record(
            "wasi:sockets/ip-name-lookup.resolve-addresses",
            name.to_string(),
            allowed,
        );
        allowed
    }

    pub fn note_resolved(&self, name: &str, ip: IpAddr) {
        let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        let names = resolved.entry(ip).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }

    fn record(&self, operation: &'static str, target: String, allowed: bool) {
        if allowed && !self.audit.wants_allowed() {
            return;
        }
        self.audit.record(Event {
            nanoprocess: self.path.clone(),
            capability: "network",
            operation,
            target: Some(target),
            decision: if allowed {
                Decision::Allowed
            } else {
                Decision::Refused
            },
            reason: (!allowed).then(|| {
                if self.grants_anything() {
                    "no network grant allows it".to_string()
                } else {
                    "network is not granted".to_string()
                }
            }),
        });
    }
}
