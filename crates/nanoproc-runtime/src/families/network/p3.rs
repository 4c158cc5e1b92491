//! `wasi:sockets@0.3` (`types`, `ip-name-lookup`), decided by the same
//! [`NetPolicy`] as 0.2's sockets.
//!
//! Both generations make wasmtime-wasi's same sockets, from the same context, so
//! its address check, which is [`NetPolicy::decide`], is asked before every TCP
//! bind, connect, listen and accept and every UDP bind, connect and send, as in
//! 0.2: those are delegated unchanged, refusals coming back as `access-denied`
//! from the operation asked (a `connect`, or the `listen` stream's accepts).
//! What 0.2 decides outside that check is decided here in the same way:
//!
//! - name lookups ([`NetPolicy::may_resolve`]): refused with `access-denied`
//!   unless a network grant could reach the name, and the addresses of an allowed
//!   lookup remembered for the name patterns (`note_resolved`);
//! - UDP receive, per socket ([`NetPolicy::may_receive`]): 0.3 receives on the
//!   socket itself (there are no datagram streams), so each `receive` notes the
//!   socket's local address as 0.2 notes a stream's (the address check lets
//!   strangers' datagrams through only while some socket is on a listened
//!   address), and a datagram refused for this socket is dropped, recorded, and
//!   the next one awaited. Dropping the socket forgets the note.
//!
//! Every wait (a connect, a receive, a lookup, a listener's accept) is a host
//! future: the call's time limit and the run's interrupt bound it
//! (`crate::drive`).

use super::NetPolicy;
use crate::state::NanoState;
use std::net::SocketAddr;
use std::sync::Arc;
use wasmtime::AsContextMut;
use wasmtime::component::{
    Access, Accessor, FutureReader, HasData, Linker, Resource, StreamReader,
};
use wasmtime_wasi::p3::bindings::sockets::ip_name_lookup;
use wasmtime_wasi::p3::bindings::sockets::types::{
    self, Duration, ErrorCode, HostTcpSocket, HostTcpSocketWithStore, HostUdpSocket,
    HostUdpSocketWithStore, IpAddressFamily, IpSocketAddress,
};
use wasmtime_wasi::p3::sockets::{SocketError, SocketResult};
use wasmtime_wasi::sockets::{
    TcpSocket, UdpSocket, WasiSockets, WasiSocketsCtxView, WasiSocketsView,
};

/// Links `wasi:sockets/types@0.3` and `wasi:sockets/ip-name-lookup@0.3`.
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    types::add_to_linker::<NanoState, Sockets>(linker, |s| SocketsView(s))?;
    ip_name_lookup::add_to_linker::<NanoState, Lookups>(linker, plain_view)?;
    Ok(())
}

fn plain_view(s: &mut NanoState) -> WasiSocketsCtxView<'_> {
    s.wasi.sockets()
}

/// The nanoprocess's policy: the store's own nanoprocess's (a fused nanoprocess
/// imports no 0.3 interface: no named binding of them is linked).
fn policy(s: &mut NanoState) -> Arc<NetPolicy> {
    s.families.network.policy.clone()
}

/// `types`: the synchronous methods, on the store data.
pub(crate) struct SocketsView<'a>(&'a mut NanoState);

impl SocketsView<'_> {
    fn inner(&mut self) -> WasiSocketsCtxView<'_> {
        self.0.wasi.sockets()
    }
}

/// `types`: the methods that take the store (streams, futures, waits).
struct Sockets;
impl HasData for Sockets {
    type Data<'a> = SocketsView<'a>;
}

/// `ip-name-lookup`.
struct Lookups;
impl HasData for Lookups {
    type Data<'a> = WasiSocketsCtxView<'a>;
}

impl types::Host for SocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner(), error)
    }
}

impl HostTcpSocketWithStore<NanoState> for Sockets {
    async fn connect(
        store: &Accessor<NanoState, Self>,
        socket: Resource<TcpSocket>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let inner = store.with_getter::<WasiSockets>(plain_view);
        <WasiSockets as HostTcpSocketWithStore<NanoState>>::connect(&inner, socket, remote_address)
            .await
    }

    async fn listen(
        mut store: Access<'_, NanoState, Self>,
        socket: Resource<TcpSocket>,
    ) -> SocketResult<StreamReader<Resource<TcpSocket>>> {
        let inner = Access::<NanoState, WasiSockets>::new(store.as_context_mut(), plain_view);
        <WasiSockets as HostTcpSocketWithStore<NanoState>>::listen(inner, socket).await
    }

    fn send(
        mut store: Access<'_, NanoState, Self>,
        socket: Resource<TcpSocket>,
        data: StreamReader<u8>,
    ) -> wasmtime::Result<FutureReader<Result<(), ErrorCode>>> {
        let inner = Access::<NanoState, WasiSockets>::new(store.as_context_mut(), plain_view);
        <WasiSockets as HostTcpSocketWithStore<NanoState>>::send(inner, socket, data)
    }

    fn receive(
        mut store: Access<'_, NanoState, Self>,
        socket: Resource<TcpSocket>,
    ) -> wasmtime::Result<(StreamReader<u8>, FutureReader<Result<(), ErrorCode>>)> {
        let inner = Access::<NanoState, WasiSockets>::new(store.as_context_mut(), plain_view);
        <WasiSockets as HostTcpSocketWithStore<NanoState>>::receive(inner, socket)
    }
}

impl HostUdpSocketWithStore<NanoState> for Sockets {
    async fn send(
        store: &Accessor<NanoState, Self>,
        socket: Resource<UdpSocket>,
        data: Vec<u8>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<()> {
        let inner = store.with_getter::<WasiSockets>(plain_view);
        <WasiSockets as HostUdpSocketWithStore<NanoState>>::send(
            &inner,
            socket,
            data,
            remote_address,
        )
        .await
    }

    /// A datagram only if this socket may receive it from its sender; one it may
    /// not is dropped (recorded) and the next awaited, as wasmtime-wasi drops one
    /// its address check refuses.
    async fn receive(
        store: &Accessor<NanoState, Self>,
        socket: Resource<UdpSocket>,
    ) -> SocketResult<(Vec<u8>, IpSocketAddress)> {
        let rep = socket.rep();
        let (net, local) = store.with(|mut access| {
            let s = access.data_mut();
            // Read at every receive: a connect may have narrowed a wildcard
            // address, a disconnect released the port. A socket that cannot
            // tell its address is noted as having none, which no `listen`
            // pattern covers.
            let local =
                HostUdpSocket::get_local_address(&mut s.wasi.sockets(), Resource::new_borrow(rep))
                    .ok()
                    .map(SocketAddr::from);
            let net = policy(s);
            net.note_udp_stream(rep, local);
            (net, local)
        });
        let inner = store.with_getter::<WasiSockets>(plain_view);
        loop {
            let (data, sender) = <WasiSockets as HostUdpSocketWithStore<NanoState>>::receive(
                &inner,
                Resource::new_borrow(rep),
            )
            .await?;
            if net.may_receive(local, SocketAddr::from(sender)) {
                return Ok((data, sender));
            }
        }
    }
}

impl HostTcpSocket for SocketsView<'_> {
    async fn bind(
        &mut self,
        socket: Resource<TcpSocket>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        HostTcpSocket::bind(&mut self.inner(), socket, local_address).await
    }

    fn create(&mut self, address_family: IpAddressFamily) -> SocketResult<Resource<TcpSocket>> {
        HostTcpSocket::create(&mut self.inner(), address_family)
    }

    fn get_local_address(&mut self, socket: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        HostTcpSocket::get_local_address(&mut self.inner(), socket)
    }

    fn get_remote_address(&mut self, socket: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        HostTcpSocket::get_remote_address(&mut self.inner(), socket)
    }

    fn get_is_listening(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        HostTcpSocket::get_is_listening(&mut self.inner(), socket)
    }

    fn get_address_family(
        &mut self,
        socket: Resource<TcpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        HostTcpSocket::get_address_family(&mut self.inner(), socket)
    }

    fn set_listen_backlog_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_listen_backlog_size(&mut self.inner(), socket, value)
    }

    fn get_keep_alive_enabled(&mut self, socket: Resource<TcpSocket>) -> SocketResult<bool> {
        HostTcpSocket::get_keep_alive_enabled(&mut self.inner(), socket)
    }

    fn set_keep_alive_enabled(
        &mut self,
        socket: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_enabled(&mut self.inner(), socket, value)
    }

    fn get_keep_alive_idle_time(&mut self, socket: Resource<TcpSocket>) -> SocketResult<Duration> {
        HostTcpSocket::get_keep_alive_idle_time(&mut self.inner(), socket)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        socket: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_idle_time(&mut self.inner(), socket, value)
    }

    fn get_keep_alive_interval(&mut self, socket: Resource<TcpSocket>) -> SocketResult<Duration> {
        HostTcpSocket::get_keep_alive_interval(&mut self.inner(), socket)
    }

    fn set_keep_alive_interval(
        &mut self,
        socket: Resource<TcpSocket>,
        value: Duration,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_interval(&mut self.inner(), socket, value)
    }

    fn get_keep_alive_count(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u32> {
        HostTcpSocket::get_keep_alive_count(&mut self.inner(), socket)
    }

    fn set_keep_alive_count(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u32,
    ) -> SocketResult<()> {
        HostTcpSocket::set_keep_alive_count(&mut self.inner(), socket, value)
    }

    fn get_hop_limit(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u8> {
        HostTcpSocket::get_hop_limit(&mut self.inner(), socket)
    }

    fn set_hop_limit(&mut self, socket: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        HostTcpSocket::set_hop_limit(&mut self.inner(), socket, value)
    }

    fn get_receive_buffer_size(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::get_receive_buffer_size(&mut self.inner(), socket)
    }

    fn set_receive_buffer_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_receive_buffer_size(&mut self.inner(), socket, value)
    }

    fn get_send_buffer_size(&mut self, socket: Resource<TcpSocket>) -> SocketResult<u64> {
        HostTcpSocket::get_send_buffer_size(&mut self.inner(), socket)
    }

    fn set_send_buffer_size(
        &mut self,
        socket: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostTcpSocket::set_send_buffer_size(&mut self.inner(), socket, value)
    }

    fn drop(&mut self, socket: Resource<TcpSocket>) -> wasmtime::Result<()> {
        HostTcpSocket::drop(&mut self.inner(), socket)
    }
}

impl HostUdpSocket for SocketsView<'_> {
    async fn bind(
        &mut self,
        socket: Resource<UdpSocket>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        HostUdpSocket::bind(&mut self.inner(), socket, local_address).await
    }

    async fn connect(
        &mut self,
        socket: Resource<UdpSocket>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        HostUdpSocket::connect(&mut self.inner(), socket, remote_address).await
    }

    async fn create(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        HostUdpSocket::create(&mut self.inner(), address_family).await
    }

    fn disconnect(&mut self, socket: Resource<UdpSocket>) -> SocketResult<()> {
        HostUdpSocket::disconnect(&mut self.inner(), socket)
    }

    fn get_local_address(&mut self, socket: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        HostUdpSocket::get_local_address(&mut self.inner(), socket)
    }

    fn get_remote_address(&mut self, socket: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        HostUdpSocket::get_remote_address(&mut self.inner(), socket)
    }

    fn get_address_family(
        &mut self,
        socket: Resource<UdpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        HostUdpSocket::get_address_family(&mut self.inner(), socket)
    }

    fn get_unicast_hop_limit(&mut self, socket: Resource<UdpSocket>) -> SocketResult<u8> {
        HostUdpSocket::get_unicast_hop_limit(&mut self.inner(), socket)
    }

    fn set_unicast_hop_limit(
        &mut self,
        socket: Resource<UdpSocket>,
        value: u8,
    ) -> SocketResult<()> {
        HostUdpSocket::set_unicast_hop_limit(&mut self.inner(), socket, value)
    }

    fn get_receive_buffer_size(&mut self, socket: Resource<UdpSocket>) -> SocketResult<u64> {
        HostUdpSocket::get_receive_buffer_size(&mut self.inner(), socket)
    }

    fn set_receive_buffer_size(
        &mut self,
        socket: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostUdpSocket::set_receive_buffer_size(&mut self.inner(), socket, value)
    }

    fn get_send_buffer_size(&mut self, socket: Resource<UdpSocket>) -> SocketResult<u64> {
        HostUdpSocket::get_send_buffer_size(&mut self.inner(), socket)
    }

    fn set_send_buffer_size(
        &mut self,
        socket: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        HostUdpSocket::set_send_buffer_size(&mut self.inner(), socket, value)
    }

    /// Its number may be reused: its note must never decide for a later socket.
    fn drop(&mut self, socket: Resource<UdpSocket>) -> wasmtime::Result<()> {
        policy(self.0).forget_udp_stream(socket.rep());
        HostUdpSocket::drop(&mut self.inner(), socket)
    }
}

impl ip_name_lookup::HostWithStore<NanoState> for Lookups {
    /// Refused with `access-denied` unless a network grant could reach the name;
    /// an allowed lookup's addresses are remembered for the name patterns.
    async fn resolve_addresses(
        store: &Accessor<NanoState, Self>,
        name: String,
    ) -> wasmtime::Result<Result<Vec<types::IpAddress>, ip_name_lookup::ErrorCode>> {
        let net = store.with(|mut access| policy(access.data_mut()));
        if !net.may_resolve(&name) {
            return Ok(Err(ip_name_lookup::ErrorCode::AccessDenied));
        }
        let inner = store.with_getter::<WasiSockets>(plain_view);
        let resolved =
            <WasiSockets as ip_name_lookup::HostWithStore<NanoState>>::resolve_addresses(
                &inner,
                name.clone(),
            )
            .await?;
        if let Ok(addresses) = &resolved {
            for address in addresses {
                net.note_resolved(&name, std::net::IpAddr::from(*address));
            }
        }
        Ok(resolved)
    }
}
