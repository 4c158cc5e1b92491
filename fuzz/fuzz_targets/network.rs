#![no_main]
//! Network patterns: the input is up to three lines, each parsed as a pattern
//! (`NetPattern::parse`), a bare host (`HostPattern::parse`) and a name to look up.
//!
//! Properties, besides never panicking:
//! - a pattern's canonical text (`Display`) parses back to the same pattern, and
//!   printing it again gives the same text;
//! - every pattern covers itself, and allows its own witnesses (see [`witnesses`]);
//! - covering is transitive over the patterns of one input;
//! - covering is sound: when `a` covers `b`, every witness `b` allows, `a` allows
//!   too (witnesses of all the input's patterns and a fixed set are tried);
//! - `allows_name` never lets an address pattern allow a lookup, nor `*` refuse a
//!   valid name.

use libfuzzer_sys::fuzz_target;
use nanoproc_caps::network::{HostPattern, NetPattern, Protocol};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.split('\n').take(3).collect();
    let mut patterns = Vec::new();
    for line in &lines {
        if let Ok(host) = HostPattern::parse(line) {
            let shown = host.to_string();
            assert_eq!(
                HostPattern::parse(&shown).as_ref(),
                Ok(&host),
                "{line:?} shows as {shown:?}"
            );
            assert!(host.covers(&host), "{host} does not cover itself");
        }
        if let Ok(pattern) = NetPattern::parse(line) {
            let shown = pattern.to_string();
            let again = NetPattern::parse(&shown)
                .unwrap_or_else(|e| panic!("{line:?} shows as {shown:?}, which fails: {e}"));
            assert_eq!(again, pattern, "{line:?} shows as {shown:?}");
            assert_eq!(again.to_string(), shown);
            assert!(pattern.covers(&pattern), "{pattern} does not cover itself");
            patterns.push(pattern);
        }
    }

    let mut pool: Vec<Witness> = fixed_witnesses();
    for p in &patterns {
        let own = witnesses(p);
        for w in &own {
            assert!(w.allowed_by(p), "{p} refuses its own witness {w:?}");
        }
        pool.extend(own);
    }
    for line in &lines {
        pool.push(Witness::Name((*line).to_owned()));
    }

    for a in &patterns {
        for w in &pool {
            if let Witness::Name(name) = w {
                let allowed = a.allows_name(name);
                match a.host {
                    HostPattern::Ip(_) | HostPattern::Net(..) => {
                        assert!(!allowed, "{a} allows looking up {name:?}")
                    }
                    HostPattern::Any => assert_eq!(
                        allowed,
                        HostPattern::parse(name).is_ok_and(|h| matches!(h, HostPattern::Name(_))),
                        "`*` and the name {name:?}"
                    ),
                    _ => {}
                }
            }
        }
        for b in &patterns {
            if !a.covers(b) {
                continue;
            }
            for w in &pool {
                assert!(
                    !w.allowed_by(b) || w.allowed_by(a),
                    "{a} covers {b}, but {w:?} is allowed by {b} only"
                );
            }
            for c in &patterns {
                assert!(
                    !b.covers(c) || a.covers(c),
                    "{a} covers {b} and {b} covers {c}, but {a} does not cover {c}"
                );
            }
        }
    }
});

/// Something a pattern may allow: a socket operation, or a name lookup.
#[derive(Debug)]
enum Witness {
    Socket(Protocol, SocketAddr),
    Name(String),
}

impl Witness {
    fn allowed_by(&self, p: &NetPattern) -> bool {
        match self {
            Witness::Socket(proto, addr) => p.allows_addr(*proto, *addr, &[]),
            Witness::Name(name) => p.allows_name(name),
        }
    }
}

/// The corners of what a pattern allows: each protocol at both ends of its ports,
/// the first and last address of a network, a name below a suffix.
fn witnesses(p: &NetPattern) -> Vec<Witness> {
    let ips: Vec<IpAddr> = match &p.host {
        HostPattern::Any => vec![],
        HostPattern::Ip(ip) => vec![*ip],
        HostPattern::Net(net, len) => vec![*net, last_address(*net, *len)],
        HostPattern::Name(_) | HostPattern::Suffix(_) => vec![],
    };
    let mut out = Vec::new();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        if !p.protocols.contains(proto) {
            continue;
        }
        for port in [p.ports.lo(), p.ports.hi()] {
            for ip in &ips {
                out.push(Witness::Socket(proto, SocketAddr::new(*ip, port)));
            }
        }
    }
    match &p.host {
        HostPattern::Name(n) => out.push(Witness::Name(n.clone())),
        HostPattern::Suffix(s) => out.push(Witness::Name(format!("x.{s}"))),
        _ => {}
    }
    out
}

/// Addresses, ports and names no pattern of the input need mention, so that a
/// pattern covering `*` (or a wide network) is tested beyond its own witnesses.
fn fixed_witnesses() -> Vec<Witness> {
    let ips = [
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        IpAddr::V6(Ipv6Addr::from(u128::MAX)),
    ];
    let mut out = Vec::new();
    for proto in [Protocol::Tcp, Protocol::Udp] {
        for port in [0, 443, 65535] {
            for ip in ips {
                out.push(Witness::Socket(proto, SocketAddr::new(ip, port)));
            }
        }
    }
    for name in ["example.com", "a.example.com", "localhost"] {
        out.push(Witness::Name(name.to_owned()));
    }
    out
}

fn last_address(net: IpAddr, len: u8) -> IpAddr {
    match net {
        IpAddr::V4(a) => {
            let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | host_bits))
        }
        IpAddr::V6(a) => {
            let host_bits = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | host_bits))
        }
    }
}
