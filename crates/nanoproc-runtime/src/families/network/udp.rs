//! Which datagrams a UDP socket may receive: decided per socket, from its own address.
//!
//! wasmtime-wasi's address check (see [`super`]) is asked about every
//! datagram received, but it is told only the sender's address, never which socket
//! the datagram arrived on. A check that cannot tell a socket bound under a `listen`
//! grant from any other socket of the same nanoprocess can only be too broad: under
//! a grant to receive on `127.0.0.1:5000`, every socket, bound anywhere, heard
//! everyone.
//!
//! So `wasi:sockets/udp` is linked here through a guard, each function delegating
//! to wasmtime-wasi's own implementation.
//! Three do more:
//!
//! - `[method]udp-socket.stream` notes the socket's local address for the incoming
//!   stream it returns. In WASI 0.2 a socket must be bound (`start-bind`, checked by
//!   the address check) before it has streams, and it can neither be rebound nor
//!   reconnected while they exist, so that address is the stream's for its lifetime.
//! - `[method]incoming-datagram-stream.receive` delivers a datagram only if
//!   [`NetPolicy::may_receive`] allows it from its sender on that local address.
//!   A refused datagram is consumed and dropped (recorded as refused), as
//!   wasmtime-wasi itself drops one its check refuses; the guest sees fewer
//!   datagrams, possibly none, which the interface allows.
//! - `[resource-drop]incoming-datagram-stream` forgets the note.
//! - `[resource-drop]outgoing-datagram-stream` waits for a send in progress: raced
//!   against the nanoprocess's clock, as every wait is (see `families::io`).
//!
//! Sending needs no socket identity: every send is checked against the `network`
//! patterns by the address check, whatever the socket.

use super::NetPolicy;
use crate::state::NanoState;
use std::net::SocketAddr;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::Network;
use wasmtime_wasi::p2::bindings::sync::sockets::udp;
use wasmtime_wasi::p2::bindings::sync::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, IncomingDatagram,
    IncomingDatagramStream, IpAddressFamily, IpSocketAddress, OutgoingDatagram,
    OutgoingDatagramStream, Pollable, UdpSocket,
};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};

/// wasmtime-wasi's UDP sockets, with receiving decided per socket, by the grants
/// of the nanoprocess that made it. In a store shared with fused nanoprocesses a
/// socket's owner is the one whose state knows its handle (a fused nanoprocess's
/// sockets and incoming streams are noted in its own persona); the store's own
/// nanoprocess otherwise.
pub(crate) struct UdpGuard<'a>(&'a mut NanoState);

impl UdpGuard<'_> {
    fn inner(&mut self) -> WasiSocketsCtxView<'_> {
        self.0.wasi.sockets()
    }

    /// Runs `f` with the policy of whoever `knows` the handle.
    fn as_owner<R>(
        &mut self,
        knows: impl Fn(&super::State) -> bool,
        f: impl FnOnce(&mut NanoState) -> R,
    ) -> R {
        self.0.as_owner(|families| knows(&families.network), f)
    }
}

struct GuardedUdp;
impl HasData for GuardedUdp {
    type Data<'a> = UdpGuard<'a>;
}

fn view(s: &mut NanoState) -> UdpGuard<'_> {
    UdpGuard(s)
}

fn policy(s: &NanoState) -> &NetPolicy {
    &s.families.network.policy
}

/// `wasi:sockets/udp`, every socket through the guard.
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    udp::add_to_linker::<NanoState, GuardedUdp>(linker, view)?;
    Ok(())
}

impl udp::Host for UdpGuard<'_> {}

impl HostUdpSocket for UdpGuard<'_> {
    fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        HostUdpSocket::start_bind(&mut self.inner(), this, network, local_address)
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> Result<(), SocketError> {
        HostUdpSocket::finish_bind(&mut self.inner(), this)
    }

    fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> Result<
        (
            Resource<IncomingDatagramStream>,
            Resource<OutgoingDatagramStream>,
        ),
        SocketError,
    > {
        let socket = this.rep();
        let (incoming, outgoing) = HostUdpSocket::stream(&mut self.inner(), this, remote_address)?;
        // Read after the call: connecting may have narrowed a wildcard local address
        // to the one the route to the peer uses. A socket that cannot tell its
        // address (it has streams, so it is bound) is noted as having none, which
        // no `listen` pattern covers.
        let local =
            HostUdpSocket::local_address(&mut self.inner(), Resource::new_borrow(socket)).ok();
        // Noted in the socket owner's policy: its receives are decided by it.
        let stream = incoming.rep();
        self.as_owner(
            |st| st.udp_sockets.contains(&socket),
            |s| policy(s).note_udp_stream(stream, local.map(SocketAddr::from)),
        );
        Ok((incoming, outgoing))
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> Result<IpSocketAddress, SocketError> {
        HostUdpSocket::local_address(&mut self.inner(), this)
    }

    fn remote_address(
        &mut self,
        this: Resource<UdpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        HostUdpSocket::remote_address(&mut self.inner(), this)
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        HostUdpSocket::address_family(&mut self.inner(), this)
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> Result<u8, SocketError> {
        HostUdpSocket::unicast_hop_limit(&mut self.inner(), this)
    }

    fn set_unicast_hop_limit(
        &mut self,
        this: Resource<UdpSocket>,
        value: u8,
    ) -> Result<(), SocketError> {
        HostUdpSocket::set_unicast_hop_limit(&mut self.inner(), this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> Result<u64, SocketError> {
        HostUdpSocket::receive_buffer_size(&mut self.inner(), this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        HostUdpSocket::set_receive_buffer_size(&mut self.inner(), this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> Result<u64, SocketError> {
        HostUdpSocket::send_buffer_size(&mut self.inner(), this)
    }

    fn set_send_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> Result<(), SocketError> {
        HostUdpSocket::set_send_buffer_size(&mut self.inner(), this, value)
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<Pollable>> {
        HostUdpSocket::subscribe(&mut self.inner(), this)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        // Its number may be reused: it must never decide for a later socket.
        let rep = this.rep();
        for persona in &mut self.0.fused {
            persona.families.network.udp_sockets.remove(&rep);
        }
        HostUdpSocket::drop(&mut self.inner(), this)
    }
}

impl HostIncomingDatagramStream for UdpGuard<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> Result<Vec<IncomingDatagram>, SocketError> {
        let stream = this.rep();
        let received = HostIncomingDatagramStream::receive(&mut self.inner(), this, max_results)?;
        Ok(self.as_owner(
            |st| st.policy.knows_udp_stream(stream),
            |s| {
                let net = policy(s);
                let local = net.udp_stream_local(stream);
                received
                    .into_iter()
                    .filter(|datagram| {
                        net.may_receive(local, SocketAddr::from(datagram.remote_address))
                    })
                    .collect()
            },
        ))
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        HostIncomingDatagramStream::subscribe(&mut self.inner(), this)
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        let stream = this.rep();
        self.as_owner(
            |st| st.policy.knows_udp_stream(stream),
            |s| policy(s).forget_udp_stream(stream),
        );
        HostIncomingDatagramStream::drop(&mut self.inner(), this)
    }
}

impl HostOutgoingDatagramStream for UdpGuard<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> Result<u64, SocketError> {
        HostOutgoingDatagramStream::check_send(&mut self.inner(), this)
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> Result<u64, SocketError> {
        HostOutgoingDatagramStream::send(&mut self.inner(), this, datagrams)
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<Pollable>> {
        HostOutgoingDatagramStream::subscribe(&mut self.inner(), this)
    }

    /// Dropping an outgoing stream waits for a send in progress: bounded by the
    /// nanoprocess's clock like every other wait.
    fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        use wasmtime_wasi::p2::bindings::sockets::udp::HostOutgoingDatagramStream as Async;
        let NanoState { wasi, clock, .. } = &mut *self.0;
        crate::families::io::bounded(clock, Async::drop(&mut wasi.sockets(), this))
    }
}

impl wasmtime_wasi::p2::bindings::sockets::network::Host for UdpGuard<'_> {
    fn convert_error_code(
        &mut self,
        error: SocketError,
    ) -> wasmtime::Result<wasmtime_wasi::p2::bindings::sockets::network::ErrorCode> {
        wasmtime_wasi::p2::bindings::sockets::network::Host::convert_error_code(
            &mut self.inner(),
            error,
        )
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime_wasi::p2::bindings::io::error::Error>,
    ) -> wasmtime::Result<Option<wasmtime_wasi::p2::bindings::sockets::network::ErrorCode>> {
        wasmtime_wasi::p2::bindings::sockets::network::Host::network_error_code(
            &mut self.inner(),
            err,
        )
    }
}

impl wasmtime_wasi::p2::bindings::sockets::network::HostNetwork for UdpGuard<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::bindings::sockets::network::HostNetwork::drop(&mut self.inner(), this)
    }
}
