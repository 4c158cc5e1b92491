//! Network grants, enforced through wasmtime-wasi's socket address check.
//!
//! wasmtime-wasi asks a per-context check before every bind, connect, listen,
//! accept, send and receive, before any syscall. [`NetPolicy::decide`] answers it
//! from the nanoprocess's patterns: outbound (`network`) for connect and send,
//! inbound (`listen`) for bind, listen and accept. A pattern that names a
//! host by DNS name allows an address only if this nanoprocess itself resolved
//! that name to that address: the name grant is honoured for what the name
//! resolved to here, never for an address the guest picked by itself.
//!
//! UDP receive depends on the socket a datagram arrives on, which that check is
//! not told; [`NetPolicy::may_receive`] decides it per socket, asked by `udp`.
//!
//! WASI 0.3's sockets (`p3`) are decided by the same policy: the same address
//! check, name lookups and per-socket UDP receive.

mod p3;
pub(crate) mod udp;

use crate::audit::{Decision, Recorder};
use crate::state::NanoState;
use nanoproc_caps::NetworkHolding;
use nanoproc_caps::network::{NetPattern, Protocol};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::bindings::sync::sockets as sync_sockets;
// The sync bindings: in the async ones, `[drop]resolve-address-stream` is async.
use wasmtime_wasi::p2::bindings::sync::sockets::ip_name_lookup::{self, ResolveAddressStream};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSockets, WasiSocketsCtxView, WasiSocketsView};

pub(crate) struct NetPolicy {
    recorder: Recorder,
    connect: Vec<NetPattern>,
    listen: Vec<NetPattern>,
    /// Addresses this nanoprocess resolved, with the names they came from.
    resolved: Mutex<HashMap<IpAddr, Vec<String>>>,
    /// The local address of the socket each UDP incoming stream belongs to, by
    /// stream handle (`None`: the socket could not tell; see `udp`).
    udp_streams: Mutex<HashMap<u32, Option<SocketAddr>>>,
    /// Datagrams dropped before the guest could see them (see [`Self::early_drop`]).
    early_drops: Mutex<EarlyDrops>,
}

/// Senders whose datagrams are dropped early are chosen by whoever sends, not by
/// the guest: recording each datagram would let anyone on the network grow the
/// `--audit` file and burn the host's time at the rate they send. So each sender's
/// first datagram is recorded (for the first [`SENDERS_RECORDED`] senders), and
/// the rest are counted, with a line at each power of two and one at the end.
#[derive(Default)]
struct EarlyDrops {
    senders: std::collections::HashSet<SocketAddr>,
    counted: u64,
    counted_recorded: u64,
}

const SENDERS_RECORDED: usize = 64;

impl Drop for NetPolicy {
    fn drop(&mut self) {
        let drops = self
            .early_drops
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if drops.counted > drops.counted_recorded {
            let counted = drops.counted;
            self.record_counted_drops(counted);
        }
    }
}

impl NetPolicy {
    pub fn new(recorder: Recorder, connect: Vec<NetPattern>, listen: Vec<NetPattern>) -> Self {
        Self {
            recorder,
            connect,
            listen,
            resolved: Mutex::default(),
            udp_streams: Mutex::default(),
            early_drops: Mutex::default(),
        }
    }

    pub fn grants_anything(&self) -> bool {
        !self.connect.is_empty() || !self.listen.is_empty()
    }

    /// The answer to wasmtime-wasi's address check, recorded.
    pub fn decide(&self, addr: SocketAddr, usage: SocketAddrUse) -> bool {
        // Binding to the wildcard address and port 0 needs no grant: it reaches
        // nothing and can be reached by no one yet, and it is what every UDP client
        // must do in WASI 0.2 before it can send (and what wasmtime-wasi checks,
        // without a syscall, as the implicit bind before a TCP connect: letting it
        // pass means the refusal, and the record, name the address actually aimed
        // at). What such a socket then sends is checked on its own, and what it
        // receives by `may_receive`. A specific address, or a specific port even on
        // the wildcard address (`0.0.0.0:5353` receives on every interface), needs
        // a `listen` pattern covering it, like any other bind.
        if matches!(usage, SocketAddrUse::TcpBind | SocketAddrUse::UdpBind)
            && addr.ip().is_unspecified()
            && addr.port() == 0
        {
            return true;
        }
        let (allowed, operation) = match usage {
            SocketAddrUse::TcpConnect => (
                self.covered(&self.connect, Protocol::Tcp, addr),
                "wasi:sockets/tcp.connect",
            ),
            SocketAddrUse::UdpSend => (
                self.covered(&self.connect, Protocol::Udp, addr),
                "wasi:sockets/udp.send",
            ),
            SocketAddrUse::TcpBind => (
                self.covered(&self.listen, Protocol::Tcp, addr),
                "wasi:sockets/tcp.bind",
            ),
            SocketAddrUse::TcpListen => (
                self.covered(&self.listen, Protocol::Tcp, addr),
                "wasi:sockets/tcp.listen",
            ),
            SocketAddrUse::UdpBind => (
                self.covered(&self.listen, Protocol::Udp, addr),
                "wasi:sockets/udp.bind",
            ),
            // The address is the peer's. Accepting on a socket whose listen was
            // allowed is allowed.
            SocketAddrUse::TcpAccept => (
                self.listen
                    .iter()
                    .any(|p| p.protocols.contains(Protocol::Tcp)),
                "wasi:sockets/tcp.accept",
            ),
            // Asked for every datagram with the sender's address only (and at a
            // connect, after the send check for the same peer), never told the
            // socket. The decision is `may_receive`'s, per socket, when the guest
            // receives; this only drops early, unseen, what no socket of this
            // nanoprocess could receive, and records nothing it lets through (the
            // per-socket decision records it).
            //
            // "Could receive" is exact about senders and about whether this
            // nanoprocess has a socket on a listened address *now*: were a stranger's
            // datagram let through here because some `listen` pattern exists, it
            // would wake the pollable of a client socket, whose `receive` then comes
            // back empty, and a stranger could signal the guest by the count and
            // timing of wake-ups. While a socket is on a listened address, strangers
            // can reach the guest through it anyway, by its grant.
            SocketAddrUse::UdpReceive => {
                let possible = self.covered(&self.connect, Protocol::Udp, addr)
                    || self.has_listening_udp_stream();
                if !possible {
                    self.early_drop(addr);
                }
                return possible;
            }
        };
        self.record(operation, addr.to_string(), allowed);
        allowed
    }

    /// Whether a datagram from `peer` may reach a UDP socket whose own address is
    /// `local`, recorded.
    ///
    /// Allowed when a `listen` pattern covers the socket's own address, whoever the
    /// sender: that grant is the authority to be reached there, by anyone who can
    /// reach it, as a TCP connection accepted on a granted listener is, whatever its
    /// peer (a sender's address is not even authenticated in UDP, so checking it
    /// would add no safety). Otherwise only from a sender a `network` pattern
    /// covers: a reply from a peer the nanoprocess may send to. That is all a
    /// client socket (bound to `0.0.0.0:0` or `[::]:0`, which needs no grant) can
    /// receive: its ephemeral port is covered only by a `listen` pattern that would
    /// have let it bind there explicitly anyway. A local address with port 0 (a
    /// socket whose port was released, or one that could not tell its address) is
    /// never a listening address.
    pub fn may_receive(&self, local: Option<SocketAddr>, peer: SocketAddr) -> bool {
        let on_listened_address = local.is_some_and(|local| self.is_listened(local));
        let allowed = on_listened_address || self.covered(&self.connect, Protocol::Udp, peer);
        let reason = (!allowed).then(|| {
            if !self.grants_anything() {
                return "network is not granted".to_string();
            }
            match local {
                Some(local) => format!(
                    "no network grant allows the sender, and no listen grant covers {local}, where it was received"
                ),
                None => "no network grant allows the sender".to_string(),
            }
        });
        self.record_event("wasi:sockets/udp.receive", peer.to_string(), reason);
        allowed
    }

    /// Whether some UDP incoming stream of this nanoprocess belongs to a socket on
    /// an address a `listen` pattern covers.
    /// Asked for every datagram a sender chooses to send, so it copies nothing
    /// (`covered` takes `resolved`, never `udp_streams`: no lock order to break).
    fn has_listening_udp_stream(&self) -> bool {
        self.udp_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flatten()
            .any(|&local| self.is_listened(local))
    }

    /// Whether a socket on `local` is on an address a `listen` pattern covers. A
    /// port of 0 never is.
    fn is_listened(&self, local: SocketAddr) -> bool {
        local.port() != 0 && self.covered(&self.listen, Protocol::Udp, local)
    }

    /// Records a datagram dropped early: the first from each sender, then counts.
    fn early_drop(&self, sender: SocketAddr) {
        let mut drops = self
            .early_drops
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if drops.senders.len() < SENDERS_RECORDED && drops.senders.insert(sender) {
            drop(drops);
            let reason = if self.grants_anything() {
                "no network grant allows the sender, and no socket of it is on an address a listen grant covers"
            } else {
                "network is not granted"
            };
            self.record_event(
                "wasi:sockets/udp.receive",
                sender.to_string(),
                Some(reason.to_string()),
            );
            return;
        }
        drops.counted += 1;
        let counted = drops.counted;
        if counted.is_power_of_two() {
            drops.counted_recorded = counted;
            drop(drops);
            self.record_counted_drops(counted);
        }
    }

    fn record_counted_drops(&self, counted: u64) {
        self.record_event(
            "wasi:sockets/udp.receive",
            format!("{counted} more datagrams"),
            Some(format!(
                "no grant allows their senders; dropped unread, and counted rather than recorded one by one after each sender's first (of the first {SENDERS_RECORDED} senders)"
            )),
        );
    }

    /// Notes the local address of the socket a UDP incoming stream belongs to.
    pub fn note_udp_stream(&self, stream: u32, local: Option<SocketAddr>) {
        self.udp_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(stream, local);
    }

    /// The local address noted for a UDP incoming stream; `None` if there is none,
    /// which `may_receive` treats as an address no `listen` pattern covers.
    pub fn udp_stream_local(&self, stream: u32) -> Option<SocketAddr> {
        self.udp_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&stream)
            .copied()
            .flatten()
    }

    /// Whether `stream` is an incoming UDP stream of this nanoprocess's sockets.
    pub fn knows_udp_stream(&self, stream: u32) -> bool {
        self.udp_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&stream)
    }

    pub fn forget_udp_stream(&self, stream: u32) {
        self.udp_streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&stream);
    }

    /// Whether one of `patterns` allows `addr` for `proto`, by address or by a name
    /// this nanoprocess resolved to it.
    fn covered(&self, patterns: &[NetPattern], proto: Protocol, addr: SocketAddr) -> bool {
        let resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        let names: Vec<&str> = resolved
            .get(&addr.ip())
            .map(|names| names.iter().map(String::as_str).collect())
            .unwrap_or_default();
        patterns.iter().any(|p| p.allows_addr(proto, addr, &names))
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
        let reason = (!allowed).then(|| {
            if self.grants_anything() {
                "no network grant allows it".to_string()
            } else {
                "network is not granted".to_string()
            }
        });
        self.record_event(operation, target, reason);
    }

    /// Records a decision: allowed when there is no `refusal` reason.
    fn record_event(&self, operation: &'static str, target: String, refusal: Option<String>) {
        let decision = if refusal.is_none() {
            Decision::Allowed
        } else {
            Decision::Refused
        };
        self.recorder
            .decide("network", operation, || Some(target), decision, refusal);
    }
}

/// The `wasi:sockets/network` functions a guard of another sockets interface must
/// also speak (that interface's error type lives in `network`), delegated
/// unchanged to the guard's `inner` wasmtime-wasi view.
macro_rules! delegate_network {
    ($guard:ident) => {
        impl wasmtime_wasi::p2::bindings::sockets::network::Host for $guard<'_> {
            fn convert_error_code(
                &mut self,
                error: wasmtime_wasi::p2::SocketError,
            ) -> wasmtime::Result<wasmtime_wasi::p2::bindings::sockets::network::ErrorCode> {
                wasmtime_wasi::p2::bindings::sockets::network::Host::convert_error_code(
                    &mut self.inner,
                    error,
                )
            }

            fn network_error_code(
                &mut self,
                err: wasmtime::component::Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
            ) -> wasmtime::Result<Option<wasmtime_wasi::p2::bindings::sockets::network::ErrorCode>>
            {
                wasmtime_wasi::p2::bindings::sockets::network::Host::network_error_code(
                    &mut self.inner,
                    err,
                )
            }
        }

        impl wasmtime_wasi::p2::bindings::sockets::network::HostNetwork for $guard<'_> {
            fn drop(
                &mut self,
                this: wasmtime::component::Resource<
                    wasmtime_wasi::p2::bindings::sockets::network::Network,
                >,
            ) -> wasmtime::Result<()> {
                wasmtime_wasi::p2::bindings::sockets::network::HostNetwork::drop(
                    &mut self.inner,
                    this,
                )
            }
        }
    };
}

/// The network family's part of a nanoprocess's state.
pub(crate) struct State {
    /// Its grants, shared with wasmtime-wasi's address check.
    pub policy: Arc<NetPolicy>,
    /// The name each of its pending name lookups is for, by stream handle.
    lookups: HashMap<u32, String>,
    /// The networks it obtained (`instance-network`), by handle: in a store
    /// shared with fused nanoprocesses, a lookup is decided by the grants of the
    /// one whose network it is made on.
    networks: std::collections::HashSet<u32>,
    /// The UDP sockets a fused nanoprocess made (`udp-create-socket`), by handle:
    /// their receives are decided by its grants (see `udp`).
    udp_sockets: std::collections::HashSet<u32>,
}

/// Every socket use is decided by the nanoprocess's network grants, before any
/// syscall. Sockets may be created so that every attempt to use one reaches that
/// check, and its record, with its real target.
pub(crate) fn build(
    holding: &NetworkHolding,
    wasi: &mut WasiCtxBuilder,
    cx: &super::BuildCx<'_>,
) -> wasmtime::Result<State> {
    let policy = Arc::new(NetPolicy::new(
        cx.recorder.clone(),
        holding.connect.clone(),
        holding.listen.clone(),
    ));
    let check = policy.clone();
    wasi.socket_addr_check(move |addr, usage| {
        let allowed = check.decide(addr, usage);
        Box::pin(async move { allowed })
    });
    wasi.allow_tcp(true);
    wasi.allow_udp(true);
    // Lookups are decided (and recorded) by the lookup guard; the resolver is
    // reachable only for a nanoprocess that holds some network grant.
    wasi.allow_ip_name_lookup(policy.grants_anything());
    Ok(State {
        policy,
        lookups: HashMap::new(),
        networks: Default::default(),
        udp_sockets: Default::default(),
    })
}

/// The interfaces it serves: a name prefix and a version prefix each.
pub(crate) const INTERFACES: &[(&str, &str)] =
    &[("wasi:sockets/", "0.2."), ("wasi:sockets/", "0.3.")];

/// The family `inspect` names for these interfaces: its `nanoproc_caps` name.
pub(crate) const FAMILY: &str = <nanoproc_caps::Network as nanoproc_caps::Family>::NAME;

/// What a component importing each of these interfaces can ask for, for `inspect`:
/// an interface name without its version (one ending in `/` or `-` is a prefix,
/// used where no full name matches) and the grant keys that grant it.
pub(crate) const SURFACE: crate::families::Surface = &[("wasi:sockets/", &["network", "listen"])];

/// The same for a WASI preview 1 module's `wasi_snapshot_preview1` functions (a
/// name ending in `_` is a prefix).
pub(crate) const PREVIEW1: crate::families::Surface = &[("sock_", &["network", "listen"])];

/// `wasi:sockets`: TCP through wasmtime-wasi (its address check is the guard),
/// UDP through [`udp`]'s guard (receiving needs a per-socket decision), name
/// lookup through the guard below (it has no hook in wasmtime-wasi).
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    let l = linker;
    sockets::tcp_create_socket::add_to_linker::<NanoState, WasiSockets>(l, plain_view)?;
    sockets::instance_network::add_to_linker::<NanoState, Owned>(l, owned)?;
    sockets::network::add_to_linker::<NanoState, Owned>(l, &Default::default(), owned)?;
    sync_sockets::tcp::add_to_linker::<NanoState, WasiSockets>(l, plain_view)?;
    sync_sockets::udp_create_socket::add_to_linker::<NanoState, WasiSockets>(l, plain_view)?;
    udp::add_to_linker(l)?;
    ip_name_lookup::add_to_linker::<NanoState, LookupsByOwnerData>(l, lookups_by_owner)?;
    Ok(())
}

fn plain_view(s: &mut NanoState) -> WasiSocketsCtxView<'_> {
    s.wasi.sockets()
}

/// `wasi:sockets@0.3`, decided by the same policy (see [`p3`]).
pub(crate) fn add_p3_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    p3::add_to_linker(linker)
}

/// A fused nanoprocess's `instance-network` and `tcp-create-socket`: the network
/// and sockets they make carry its own address check (its own patterns, its own
/// audit path), which the shared `network`, `tcp` and `udp` bindings then apply.
/// `udp-create-socket` gets a binding of our own (`named_udp`): wasmtime-wasi's
/// named bindings for it are async. `ip-name-lookup` is not named: it is shared,
/// and each lookup is decided by the owner of the network it is made on
/// ([`LookupsByOwner`]).
pub(crate) fn add_named_to_linker(
    l: &mut Linker<NanoState>,
    c: &wasmtime::component::Component,
    lookup: &mut super::Lookup<'_>,
) -> wasmtime::Result<()> {
    use super::{Fused, fused_call};
    use wasmtime_wasi::p2::bindings::named_imports::wasi::sockets as named;
    named::instance_network::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named::tcp_create_socket::add_to_linker::<NanoState, Fused>(l, c, &mut *lookup, fused_call)?;
    named_udp::named_imports::wasi::sockets::udp_create_socket::add_to_linker::<NanoState, Fused>(
        l,
        c,
        &mut *lookup,
        fused_call,
    )?;
    Ok(())
}

/// `udp-create-socket` under a name of its own, with a synchronous host
/// function. wasmtime-wasi generates named bindings only with its async ones, in
/// which `create-udp-socket` is async (and would make the store async). The WIT
/// (`wit/fused-udp`) declares only what the one function's signature needs; every type is
/// wasmtime-wasi's own (`with`), so the socket made is the one its shared `udp`
/// binding serves.
mod named_udp {
    wasmtime::component::bindgen!({
        path: "wit/fused-udp",
        world: "wasi:sockets/fused-udp",
        imports: { default: trappable },
        trappable_error_type: {
            "wasi:sockets/network.error-code" => wasmtime_wasi::p2::SocketError,
        },
        with: {
            "wasi:sockets/network": super::shim::network,
            "wasi:sockets/udp": super::shim::udp,
        },
        named_imports: { "wasi:sockets/udp-create-socket": wasmtime_wasi::NamedId },
    });
}

/// wasmtime-wasi's `network` and `udp` modules for `named_udp`'s bindings, each
/// with an `add_to_linker` that does nothing: the generated world would link the
/// interfaces it `use`s, which nanoproc links itself (with their own options).
mod shim {
    macro_rules! shim {
        ($name:ident, $path:path) => {
            pub mod $name {
                pub use $path::*;
                #[allow(dead_code)] // called only by the generated world's own linking
                pub fn add_to_linker<T, D: wasmtime::component::HasData>(
                    _linker: &mut wasmtime::component::Linker<T>,
                    _getter: fn(&mut T) -> D::Data<'_>,
                ) -> wasmtime::Result<()> {
                    Ok(())
                }
            }
        };
    }
    shim!(network, wasmtime_wasi::p2::bindings::sockets::network);
    shim!(udp, wasmtime_wasi::p2::bindings::sockets::udp);
}

impl named_udp::named_imports::wasi::sockets::udp_create_socket::Host for super::FusedCall<'_> {
    fn convert_error_code(&mut self, err: SocketError) -> wasmtime::Result<ErrorCode> {
        err.downcast()
    }

    fn create_udp_socket(
        &mut self,
        id: wasmtime_wasi::NamedId,
        address_family: sockets::network::IpAddressFamily,
    ) -> Result<Resource<sockets::udp::UdpSocket>, SocketError> {
        self.0.as_fused(id, |s| {
            let socket = sync_sockets::udp_create_socket::Host::create_udp_socket(
                &mut s.wasi.sockets(),
                address_family,
            )?;
            // Its receives are decided by this nanoprocess's grants (see `udp`).
            s.families.network.udp_sockets.insert(socket.rep());
            Ok(socket)
        })
    }
}

/// `instance-network`, remembering which networks are whose.
pub(crate) struct OwnedNetworks<'a>(&'a mut NanoState);

struct Owned;
impl HasData for Owned {
    type Data<'a> = OwnedNetworks<'a>;
}

fn owned(s: &mut NanoState) -> OwnedNetworks<'_> {
    OwnedNetworks(s)
}

impl sockets::instance_network::Host for OwnedNetworks<'_> {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<Network>> {
        let network =
            sockets::instance_network::Host::instance_network(&mut self.0.wasi.sockets())?;
        self.0.families.network.networks.insert(network.rep());
        Ok(network)
    }
}

/// `ip-name-lookup` in a store that fused nanoprocesses share with their host:
/// one binding for all, each lookup decided (and recorded, and its resolved
/// addresses remembered) as the nanoprocess whose network it is made on, and each
/// of its streams followed as that nanoprocess's. A fused nanoprocess has only
/// its own network: no network handle crosses any edge.
pub(crate) struct LookupsByOwner<'a>(&'a mut NanoState);

struct LookupsByOwnerData;
impl HasData for LookupsByOwnerData {
    type Data<'a> = LookupsByOwner<'a>;
}

fn lookups_by_owner(s: &mut NanoState) -> LookupsByOwner<'_> {
    LookupsByOwner(s)
}

impl LookupsByOwner<'_> {
    fn run<R>(
        &mut self,
        knows: impl Fn(&State) -> bool,
        f: impl FnOnce(&mut LookupGuard<'_>) -> R,
    ) -> R {
        self.0.as_owner(
            |families| knows(&families.network),
            |s| f(&mut lookup_view(s)),
        )
    }
}

impl ip_name_lookup::Host for LookupsByOwner<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let rep = network.rep();
        self.run(
            |st| st.networks.contains(&rep),
            |g| ip_name_lookup::Host::resolve_addresses(g, network, name),
        )
    }
}

macro_rules! network_via_store {
    ($guard:ident) => {
        impl sockets::network::Host for $guard<'_> {
            fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
                sockets::network::Host::convert_error_code(&mut self.0.wasi.sockets(), error)
            }

            fn network_error_code(
                &mut self,
                err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
            ) -> wasmtime::Result<Option<ErrorCode>> {
                sockets::network::Host::network_error_code(&mut self.0.wasi.sockets(), err)
            }
        }

        /// A network handle's number may be reused once it is dropped: it is
        /// forgotten by whoever held it, so that it never decides for a later one.
        impl sockets::network::HostNetwork for $guard<'_> {
            fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
                let rep = this.rep();
                self.0.families.network.networks.remove(&rep);
                for persona in &mut self.0.fused {
                    persona.families.network.networks.remove(&rep);
                }
                sockets::network::HostNetwork::drop(&mut self.0.wasi.sockets(), this)
            }
        }
    };
}
network_via_store!(LookupsByOwner);
network_via_store!(OwnedNetworks);

impl ip_name_lookup::HostResolveAddressStream for LookupsByOwner<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        self.run(
            |st| st.lookups.contains_key(&rep),
            |g| ip_name_lookup::HostResolveAddressStream::resolve_next_address(g, stream),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let rep = stream.rep();
        self.run(
            |st| st.lookups.contains_key(&rep),
            |g| ip_name_lookup::HostResolveAddressStream::subscribe(g, stream),
        )
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        let rep = stream.rep();
        self.run(
            |st| st.lookups.contains_key(&rep),
            |g| ip_name_lookup::HostResolveAddressStream::drop(g, stream),
        )
    }
}

mod named_constructors {
    use super::super::FusedCall;
    use wasmtime::component::Resource;
    use wasmtime_wasi::NamedId;
    use wasmtime_wasi::p2::SocketError;
    use wasmtime_wasi::p2::bindings::named_imports::wasi::sockets as named;
    use wasmtime_wasi::p2::bindings::sockets::{instance_network, tcp_create_socket};
    use wasmtime_wasi::sockets::WasiSocketsView;

    impl named::instance_network::Host for FusedCall<'_> {
        fn instance_network(
            &mut self,
            id: NamedId,
        ) -> wasmtime::Result<Resource<instance_network::Network>> {
            self.0.as_fused(id, |s| {
                instance_network::Host::instance_network(&mut super::owned(s))
            })
        }
    }

    impl named::tcp_create_socket::Host for FusedCall<'_> {
        fn create_tcp_socket(
            &mut self,
            id: NamedId,
            address_family: tcp_create_socket::IpAddressFamily,
        ) -> Result<Resource<tcp_create_socket::TcpSocket>, SocketError> {
            self.0.as_fused(id, |s| {
                tcp_create_socket::Host::create_tcp_socket(&mut s.wasi.sockets(), address_family)
            })
        }

        fn convert_error_code(
            &mut self,
            err: SocketError,
        ) -> wasmtime::Result<tcp_create_socket::ErrorCode> {
            err.downcast()
        }
    }
}

/// Name lookup, decided by the network grants, remembering which addresses each
/// allowed name resolved to (the address check honours name grants only for those).
/// Refused with `access-denied` unless a network grant could reach the name.
pub(crate) struct LookupGuard<'a> {
    inner: WasiSocketsCtxView<'a>,
    net: &'a NetPolicy,
    lookups: &'a mut HashMap<u32, String>,
}

fn lookup_view(s: &mut NanoState) -> LookupGuard<'_> {
    let state = &mut s.families.network;
    LookupGuard {
        inner: s.wasi.sockets(),
        net: &state.policy,
        lookups: &mut state.lookups,
    }
}

impl ip_name_lookup::Host for LookupGuard<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        if !self.net.may_resolve(&name) {
            return Err(ErrorCode::AccessDenied.into());
        }
        let stream =
            ip_name_lookup::Host::resolve_addresses(&mut self.inner, network, name.clone())?;
        self.lookups.insert(stream.rep(), name);
        Ok(stream)
    }
}

impl ip_name_lookup::HostResolveAddressStream for LookupGuard<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = ip_name_lookup::HostResolveAddressStream::resolve_next_address(
            &mut self.inner,
            stream,
        )?;
        if let (Some(addr), Some(name)) = (&next, self.lookups.get(&rep)) {
            self.net.note_resolved(name, to_std(addr));
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        ip_name_lookup::HostResolveAddressStream::subscribe(&mut self.inner, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.lookups.remove(&stream.rep());
        ip_name_lookup::HostResolveAddressStream::drop(&mut self.inner, stream)
    }
}

fn to_std(addr: &IpAddress) -> std::net::IpAddr {
    match *addr {
        IpAddress::Ipv4((a, b, c, d)) => std::net::Ipv4Addr::new(a, b, c, d).into(),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).into()
        }
    }
}

delegate_network!(LookupGuard);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Audit;

    fn policy(connect: &[&str], listen: &[&str]) -> (NetPolicy, Audit) {
        let parse = |patterns: &[&str]| -> Vec<NetPattern> {
            patterns.iter().map(|p| p.parse().unwrap()).collect()
        };
        let audit = Audit::new();
        let policy = NetPolicy::new(
            Recorder::new("app/udp".into(), audit.clone()),
            parse(connect),
            parse(listen),
        );
        (policy, audit)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_wildcard_address_with_port_0_binds_without_a_grant() {
        let (none, _) = policy(&[], &[]);
        assert!(none.decide(addr("0.0.0.0:0"), SocketAddrUse::UdpBind));
        assert!(none.decide(addr("[::]:0"), SocketAddrUse::UdpBind));
        assert!(!none.decide(addr("0.0.0.0:5353"), SocketAddrUse::UdpBind));
        assert!(!none.decide(addr("127.0.0.1:0"), SocketAddrUse::UdpBind));
        // A port on one address does not reach the same port on every interface.
        let (one, _) = policy(&[], &["udp:127.0.0.1:5353"]);
        assert!(!one.decide(addr("0.0.0.0:5353"), SocketAddrUse::UdpBind));
        assert!(one.decide(addr("127.0.0.1:5353"), SocketAddrUse::UdpBind));
        let (every, _) = policy(&[], &["udp:0.0.0.0:5353"]);
        assert!(every.decide(addr("0.0.0.0:5353"), SocketAddrUse::UdpBind));
    }

    #[test]
    fn a_datagram_is_received_on_a_listened_address_or_from_a_network_peer() {
        let (p, audit) = policy(&["udp:10.0.0.53:53"], &["udp:127.0.0.1:5000", "tcp:*:*"]);
        let stranger = addr("192.0.2.7:4444");
        assert!(p.may_receive(Some(addr("127.0.0.1:5000")), stranger));
        assert!(p.may_receive(Some(addr("0.0.0.0:40000")), addr("10.0.0.53:53")));
        assert!(!p.may_receive(Some(addr("0.0.0.0:40000")), stranger));
        // A TCP pattern covers no UDP socket, and a socket with no known address
        // is covered by no pattern.
        assert!(!p.may_receive(Some(addr("10.1.1.1:80")), stranger));
        assert!(!p.may_receive(None, stranger));
        let refused = audit.refusals();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused.iter().all(|e| e.nanoprocess.as_ref() == "app/udp"
            && e.operation == "wasi:sockets/udp.receive"
            && e.target.as_deref() == Some("192.0.2.7:4444")));
    }

    #[test]
    fn a_socket_without_a_port_is_never_a_listener() {
        // Even a pattern that covers port 0: the address of a socket whose port
        // was released is no address anyone listens on.
        let (p, _) = policy(&[], &["udp:*:*"]);
        assert!(!p.may_receive(Some(addr("0.0.0.0:0")), addr("192.0.2.7:4444")));
        assert!(p.may_receive(Some(addr("0.0.0.0:40000")), addr("192.0.2.7:4444")));
    }

    #[test]
    fn the_address_check_drops_early_only_what_no_socket_could_receive() {
        let (none, audit) = policy(&[], &[]);
        assert!(!none.decide(addr("192.0.2.7:4444"), SocketAddrUse::UdpReceive));
        assert_eq!(audit.refusals().len(), 1);
        // A listen pattern alone lets nothing through: a stranger's datagram would
        // wake a client socket's pollable for nothing, a signal from outside.
        let (listens, audit) = policy(&[], &["udp:127.0.0.1:5000"]);
        assert!(!listens.decide(addr("192.0.2.7:4444"), SocketAddrUse::UdpReceive));
        assert_eq!(audit.refusals().len(), 1);
        // A client socket's stream is no listener either.
        listens.note_udp_stream(1, Some(addr("0.0.0.0:40000")));
        assert!(!listens.decide(addr("192.0.2.7:4444"), SocketAddrUse::UdpReceive));
        // Once a socket is on the listened address, the per-socket decision is left
        // to `may_receive`, and nothing is recorded yet.
        // (That second drop from the same sender was counted, and the count of 1
        // recorded.)
        assert_eq!(audit.refusals().len(), 2);
        listens.note_udp_stream(2, Some(addr("127.0.0.1:5000")));
        assert!(listens.decide(addr("192.0.2.7:4444"), SocketAddrUse::UdpReceive));
        assert_eq!(audit.refusals().len(), 2);
        listens.forget_udp_stream(2);
        assert!(!listens.decide(addr("192.0.2.7:4444"), SocketAddrUse::UdpReceive));
    }

    #[test]
    fn a_flood_of_dropped_datagrams_is_counted_not_recorded_one_by_one() {
        let (none, audit) = policy(&[], &[]);
        for port in 0..100u16 {
            for _ in 0..100 {
                assert!(!none.decide(
                    SocketAddr::from(([192, 0, 2, 7], 1000 + port)),
                    SocketAddrUse::UdpReceive
                ));
            }
        }
        // 64 senders' first datagrams, then a line at each power of two of the
        // 9,936 counted (1, 2, 4, ..., 8192: 14 lines), then one at the end.
        assert_eq!(audit.refusals().len(), SENDERS_RECORDED + 14);
        drop(none);
        let refusals = audit.refusals();
        assert_eq!(refusals.len(), SENDERS_RECORDED + 15);
        assert_eq!(
            refusals.last().unwrap().target.as_deref(),
            Some("9936 more datagrams")
        );
    }
}
