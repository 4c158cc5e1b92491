//! Capability guards over wasmtime-wasi's own host implementations.
//!
//! For each interface whose functions have no error case (`wasi:random`,
//! `wasi:clocks`, `wasi:cli/exit`), a guard implements the same generated host
//! trait as wasmtime-wasi, asks the [`Gate`] first and then delegates to
//! wasmtime-wasi's implementation. A refused call traps with a
//! [`crate::CapabilityRefused`] that names the nanoprocess and the capability: a
//! silent zero or a fake clock would let a dependency believe it had what it was
//! denied.
//!
//! The guards are registered with wasmtime-wasi's generated `add_to_linker` after its
//! own, over the linker's own interface names (`@0.2.12`), with shadowing allowed.
//! Registering under a guest's older version name would install an empty instance
//! that hides the real one.
//!
//! Not guarded here: `wasi:random/insecure-seed` (language runtimes need it to seed
//! hash tables; it is a per-instance constant and reveals nothing), the environment
//! and arguments (a nanoprocess's context only ever contains what it was granted),
//! stdio (an ungranted stdin or stdout fails each read or write, see `stdio`;
//! stderr is captured when not granted, for diagnosing panics), the filesystem
//! (per-operation rights, see `filesystem`) and socket addresses
//! (decided by the address check installed in [`super::build_state`]). Name lookup
//! has an error case but no hook in wasmtime-wasi, so it is guarded here: refused
//! with `access-denied` unless a network grant could reach the name.

use crate::state::{Gate, NanoState};
use crate::wasi::network::NetPolicy;
use nanoproc_caps::Flag;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::cli::{WasiCliCtxView, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::SocketError;
// The sync bindings: in the async ones, `[drop]resolve-address-stream` is async.
use wasmtime_wasi::p2::bindings::sync::sockets::ip_name_lookup;
use wasmtime_wasi::p2::bindings::sync::sockets::ip_name_lookup::ResolveAddressStream;
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::bindings::{cli, clocks, random};
use wasmtime_wasi::random::{WasiRandomCtx, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSocketsCtxView, WasiSocketsView};

/// A wasmtime-wasi view together with the gate that decides whether to use it.
pub(crate) struct Guarded<'a, V> {
    inner: V,
    gate: &'a Gate,
}

struct GuardedRandom;
impl HasData for GuardedRandom {
    type Data<'a> = Guarded<'a, &'a mut WasiRandomCtx>;
}

struct GuardedClocks;
impl HasData for GuardedClocks {
    type Data<'a> = Guarded<'a, WasiClocksCtxView<'a>>;
}

/// Name lookup, decided by the network grants, remembering which addresses each
/// allowed name resolved to (the address check honours name grants only for those).
pub(crate) struct LookupGuard<'a> {
    inner: WasiSocketsCtxView<'a>,
    net: &'a NetPolicy,
    lookups: &'a mut std::collections::HashMap<u32, String>,
}

struct GuardedSockets;
impl HasData for GuardedSockets {
    type Data<'a> = LookupGuard<'a>;
}

fn sockets_view(s: &mut NanoState) -> LookupGuard<'_> {
    LookupGuard {
        inner: s.wasi.sockets(),
        net: &s.net,
        lookups: &mut s.lookups,
    }
}

struct GuardedCli;
impl HasData for GuardedCli {
    type Data<'a> = Guarded<'a, WasiCliCtxView<'a>>;
}

fn cli_view(s: &mut NanoState) -> Guarded<'_, WasiCliCtxView<'_>> {
    Guarded {
        inner: s.wasi.cli(),
        gate: &s.gate,
    }
}

fn random_view(s: &mut NanoState) -> Guarded<'_, &mut WasiRandomCtx> {
    Guarded {
        inner: s.wasi.random(),
        gate: &s.gate,
    }
}

fn clocks_view(s: &mut NanoState) -> Guarded<'_, WasiClocksCtxView<'_>> {
    Guarded {
        inner: s.wasi.clocks(),
        gate: &s.gate,
    }
}

/// Shadows the ungated interfaces that `wasmtime_wasi::p2::add_to_linker_sync` added.
pub(crate) fn add_to_linker(linker: &mut Linker<NanoState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    random::random::add_to_linker::<NanoState, GuardedRandom>(linker, random_view)?;
    random::insecure::add_to_linker::<NanoState, GuardedRandom>(linker, random_view)?;
    clocks::wall_clock::add_to_linker::<NanoState, GuardedClocks>(linker, clocks_view)?;
    clocks::monotonic_clock::add_to_linker::<NanoState, GuardedClocks>(linker, clocks_view)?;
    ip_name_lookup::add_to_linker::<NanoState, GuardedSockets>(linker, sockets_view)?;
    cli::exit::add_to_linker::<NanoState, GuardedCli>(linker, cli_view)?;
    linker.allow_shadowing(false);
    Ok(())
}

impl random::random::Host for Guarded<'_, &mut WasiRandomCtx> {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.gate
            .check(Flag::Random, "wasi:random/random.get-random-bytes")?;
        random::random::Host::get_random_bytes(self.inner, len)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.gate
            .check(Flag::Random, "wasi:random/random.get-random-u64")?;
        random::random::Host::get_random_u64(self.inner)
    }
}

impl random::insecure::Host for Guarded<'_, &mut WasiRandomCtx> {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.gate.check(
            Flag::InsecureRandom,
            "wasi:random/insecure.get-insecure-random-bytes",
        )?;
        random::insecure::Host::get_insecure_random_bytes(self.inner, len)
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.gate.check(
            Flag::InsecureRandom,
            "wasi:random/insecure.get-insecure-random-u64",
        )?;
        random::insecure::Host::get_insecure_random_u64(self.inner)
    }
}

impl clocks::wall_clock::Host for Guarded<'_, WasiClocksCtxView<'_>> {
    fn now(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        self.gate
            .check(Flag::WallClock, "wasi:clocks/wall-clock.now")?;
        clocks::wall_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<clocks::wall_clock::Datetime> {
        self.gate
            .check(Flag::WallClock, "wasi:clocks/wall-clock.resolution")?;
        clocks::wall_clock::Host::resolution(&mut self.inner)
    }
}

impl clocks::monotonic_clock::Host for Guarded<'_, WasiClocksCtxView<'_>> {
    fn now(&mut self) -> wasmtime::Result<clocks::monotonic_clock::Instant> {
        self.gate
            .check(Flag::MonotonicClock, "wasi:clocks/monotonic-clock.now")?;
        clocks::monotonic_clock::Host::now(&mut self.inner)
    }

    fn resolution(&mut self) -> wasmtime::Result<clocks::monotonic_clock::Duration> {
        self.gate.check(
            Flag::MonotonicClock,
            "wasi:clocks/monotonic-clock.resolution",
        )?;
        clocks::monotonic_clock::Host::resolution(&mut self.inner)
    }

    fn subscribe_instant(
        &mut self,
        when: clocks::monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.gate.check(
            Flag::MonotonicClock,
            "wasi:clocks/monotonic-clock.subscribe-instant",
        )?;
        clocks::monotonic_clock::Host::subscribe_instant(&mut self.inner, when)
    }

    fn subscribe_duration(
        &mut self,
        duration: clocks::monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        self.gate.check(
            Flag::MonotonicClock,
            "wasi:clocks/monotonic-clock.subscribe-duration",
        )?;
        clocks::monotonic_clock::Host::subscribe_duration(&mut self.inner, duration)
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

crate::wasi::network::delegate_network!(LookupGuard);

// A dependency that exits without the grant is refused (and traps, as `exit` does
// anyway); one that holds it ends the whole application (see the trampolines).
impl cli::exit::Host for Guarded<'_, WasiCliCtxView<'_>> {
    fn exit(&mut self, status: Result<(), ()>) -> wasmtime::Result<()> {
        self.gate.check(Flag::Exit, "wasi:cli/exit.exit")?;
        cli::exit::Host::exit(&mut self.inner, status)
    }

    fn exit_with_code(&mut self, status_code: u8) -> wasmtime::Result<()> {
        self.gate
            .check(Flag::Exit, "wasi:cli/exit.exit-with-code")?;
        cli::exit::Host::exit_with_code(&mut self.inner, status_code)
    }
}
