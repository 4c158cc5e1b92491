//! Network patterns: every syntax form and error, and the algebra's properties
//! (covering is a preorder, sound for run-time matching, and `*:*` is its top).

use nanoproc_caps::network::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn p(s: &str) -> NetPattern {
    NetPattern::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn err(s: &str) -> String {
    match NetPattern::parse(s) {
        Ok(pat) => panic!("{s:?} should not parse, got {pat:?}"),
        Err(e) => e,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ports(lo: u16, hi: u16) -> PortRange {
    PortRange::new(lo, hi).unwrap()
}

// ---- syntax -------------------------------------------------------------------

#[test]
fn parses_every_form() {
    assert_eq!(
        p("api.example.com:443"),
        NetPattern {
            protocols: Protocols::BOTH,
            host: HostPattern::Name("api.example.com".into()),
            ports: PortRange::single(443),
        }
    );
    assert_eq!(
        p("*.example.com:443").host,
        HostPattern::Suffix("example.com".into())
    );
    let local = p("127.0.0.1:8000-8100");
    assert_eq!(local.host, HostPattern::Ip(ip("127.0.0.1")));
    assert_eq!(local.ports, ports(8000, 8100));
    assert_eq!((local.ports.lo(), local.ports.hi()), (8000, 8100));
    let net = p("10.0.0.0/8:*");
    assert_eq!(net.host, HostPattern::Net(ip("10.0.0.0"), 8));
    assert_eq!(net.ports, PortRange::ALL);
    let bind = p("tcp:0.0.0.0:8080");
    assert_eq!(bind.protocols, Protocols::TCP);
    assert_eq!(bind.host, HostPattern::Ip(ip("0.0.0.0")));
    let dns = p("udp:[::1]:53");
    assert_eq!(dns.protocols, Protocols::UDP);
    assert_eq!(dns.host, HostPattern::Ip(ip("::1")));
    assert_eq!(dns.ports, PortRange::single(53));
    assert_eq!(p("*:*"), NetPattern::any());
    assert_eq!(p("[fd00::]/8:*").host, HostPattern::Net(ip("fd00::"), 8));
    assert_eq!(p("[fd00::/8]:*").host, HostPattern::Net(ip("fd00::"), 8));
    assert_eq!(p("tcp:[fd00::]/16:1-2").ports, ports(1, 2));
    assert_eq!(p("localhost:0").host, HostPattern::Name("localhost".into()));
    assert_eq!(p("x:65535").ports, PortRange::single(65535));
    assert_eq!(
        p("_srv.a-b.example.com:1").host,
        HostPattern::Name("_srv.a-b.example.com".into())
    );
    // IPv4-mapped IPv6 stays IPv6.
    assert_eq!(
        p("[::ffff:10.0.0.1]:80").host,
        HostPattern::Ip(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()))
    );
}

#[test]
fn normalises() {
    assert_eq!(
        p("API.Example.COM.:443").host,
        HostPattern::Name("api.example.com".into())
    );
    assert_eq!(
        p("*.Example.com.:443").host,
        HostPattern::Suffix("example.com".into())
    );
    assert_eq!(p("10.1.2.3/8:*").host, HostPattern::Net(ip("10.0.0.0"), 8));
    assert_eq!(p("10.1.2.3/0:*").host, HostPattern::Net(ip("0.0.0.0"), 0));
    assert_eq!(
        p("10.1.2.3/32:*").host,
        HostPattern::Net(ip("10.1.2.3"), 32)
    );
    assert_eq!(
        p("[fd12:3456::1]/16:*").host,
        HostPattern::Net(ip("fd12::"), 16)
    );
    assert_eq!(p("x:0-65535").ports, PortRange::ALL);
    assert_eq!(p("x:0443").ports, PortRange::single(443));
    assert_eq!(
        HostPattern::net(ip("192.168.1.77"), 24),
        Ok(HostPattern::Net(ip("192.168.1.0"), 24))
    );
}

#[test]
fn displays_canonically() {
    for (input, shown) in [
        ("api.example.com:443", "api.example.com:443"),
        ("API.example.com.:443", "api.example.com:443"),
        ("*.example.com:443", "*.example.com:443"),
        ("127.0.0.1:8000-8100", "127.0.0.1:8000-8100"),
        ("10.0.0.0/8:*", "10.0.0.0/8:*"),
        ("10.9.9.9/8:0-65535", "10.0.0.0/8:*"),
        ("tcp:0.0.0.0:8080", "tcp:0.0.0.0:8080"),
        ("udp:[::1]:53", "udp:[::1]:53"),
        ("[fd00::/8]:*", "[fd00::]/8:*"),
        ("[FD00::1]:7-7", "[fd00::1]:7"),
        ("*:*", "*:*"),
    ] {
        let pat = p(input);
        assert_eq!(pat.to_string(), shown, "display of {input:?}");
        assert_eq!(p(shown), pat, "parse of {shown:?}");
        assert_eq!(shown.parse::<NetPattern>(), Ok(pat));
    }
}

#[test]
fn host_pattern_parses_alone() {
    assert_eq!(HostPattern::parse("::1"), Ok(HostPattern::Ip(ip("::1"))));
    assert_eq!(
        HostPattern::parse("fd00::/8"),
        Ok(HostPattern::Net(ip("fd00::"), 8))
    );
    assert_eq!(
        HostPattern::parse("[fd00::]/8"),
        Ok(HostPattern::Net(ip("fd00::"), 8))
    );
    assert_eq!(HostPattern::parse("*"), Ok(HostPattern::Any));
    assert_eq!(
        "*.a.b".parse::<HostPattern>(),
        Ok(HostPattern::Suffix("a.b".into()))
    );
    assert_eq!(HostPattern::Net(ip("fd00::"), 8).to_string(), "[fd00::]/8");
    assert!(HostPattern::parse("").is_err());
}

fn assert_err(s: &str, needle: &str) {
    let e = err(s);
    assert!(
        e.contains(needle),
        "error for {s:?} should mention {needle:?}: {e}"
    );
}

#[test]
fn rejects_malformed_patterns() {
    assert_err(
        "",
        "expected [tcp:|udp:]HOST:PORTS such as api.example.com:443",
    );
    assert_err("api.example.com", "no port");
    assert_err("api.example.com", "expected [tcp:|udp:]HOST:PORTS");
    assert_err("tcp:", "no port");
    assert_err(":443", "no host");
    assert_err("tcp::443", "no host");
    assert_err("api.example.com:", "no port");
    // IPv6 must be bracketed in a pattern.
    assert_err("::1:53", "brackets");
    assert_err("fd00::/8:*", "brackets");
    assert_err("udp:::1:53", "brackets");
    assert_err("[::1]", "expected `:PORTS`");
    assert_err("[::1:53", "missing `]`");
    assert_err("[::1]x:53", "expected `:PORTS`");
    assert_err("[10.0.0.1]:53", "brackets are for IPv6 only");
    assert_err("[fe80::1%eth0]:53", "zone");
    assert_err("[fd00::/8]/8:*", "two prefix lengths");
    assert_err("[nope]:53", "not an IPv6 address");
    // Protocols.
    assert_err("sctp:example.com:1", "unknown protocol \"sctp\"");
    assert_err("TCP:example.com:1", "unknown protocol");
    assert_err("tcp:udp:example.com:1", "more than one protocol");
    assert_err("x1:y:443", "too many `:`");
}

/// Found by the `network` fuzz target: `Udp:1` was the host `udp` on both protocols,
/// printed back as `udp:1`, which is a protocol with no host.
#[test]
fn a_protocol_word_is_not_a_host_without_a_prefix() {
    assert_err("Udp:1", "has a protocol but no host");
    assert_err("TCP:443", "has a protocol but no host");
    assert_err("udp.:53", "has a protocol but no host");
    // With its protocol written, a host so named is unambiguous and round-trips.
    for shown in ["udp:udp:53", "tcp:tcp:1-2"] {
        let pat = p(shown);
        assert_eq!(pat.host, HostPattern::Name(shown[4..7].into()));
        assert_eq!(pat.to_string(), shown);
        assert_eq!(p(&pat.to_string()), pat);
    }
}

#[test]
fn rejects_bad_ports() {
    assert_err("x:70000", "out of range");
    assert_err("x:65536", "out of range");
    assert_err("x:http", "not a port");
    assert_err("x:+80", "not a port");
    assert_err("x:-1", "not a port");
    assert_err("x:80-", "not a port");
    assert_err("x:1-2-3", "not a port");
    assert_err("x:100-10", "port range 100-10 is empty");
    assert_err("x:**", "not a port");
    assert!(PortRange::new(2, 1).is_err());
    assert!(PortRange::parse("").is_err());
}

#[test]
fn rejects_bad_networks() {
    assert_err("10.0.0.0/33:*", "out of range for IPv4 (0-32)");
    assert_err("[fd00::]/129:*", "out of range for IPv6 (0-128)");
    assert_err("10.0.0.0/:*", "prefix length");
    assert_err("10.0.0.0/x:*", "prefix length");
    assert_err("10.0.0.0/+8:*", "prefix length");
    assert_err("10.0.0/8:*", "not a network");
    assert_err("example.com/8:*", "not a network");
    assert!(HostPattern::net(ip("10.0.0.0"), 33).is_err());
    assert!(HostPattern::net(ip("::"), 129).is_err());
}

#[test]
fn rejects_bad_names() {
    assert_err("a..b:1", "empty label");
    assert_err(".a.b:1", "empty label");
    assert_err("a.b..:1", "empty label");
    assert_err(".:1", "empty");
    assert_err(&format!("{}.com:1", "a".repeat(64)), "longer than 63");
    assert!(NetPattern::parse(&format!("{}.com:1", "a".repeat(63))).is_ok());
    let long = vec!["abcdefghi"; 26].join("."); // 259 characters
    assert_err(&format!("{long}.com:1"), "longer than 253");
    let fits = format!("{}.com", vec!["a".repeat(62); 4].join(".")); // 255: too long
    assert_err(&format!("{fits}:1"), "longer than 253");
    let fits = format!("{}.co", vec!["a".repeat(61); 4].join(".")); // 250
    assert!(NetPattern::parse(&format!("{fits}:1")).is_ok());
    assert_err("exa mple.com:1", "invalid character ' '");
    assert_err("ex@mple.com:1", "invalid character '@'");
    assert_err("bücher.de:1", "punycode");
    assert_err(" api.example.com:443", "invalid character");
    // `*` only as the whole first label of a suffix.
    assert_err("a.*.com:1", "wildcard");
    assert_err("*.*.com:1", "wildcard");
    assert_err("*example.com:1", "wildcard");
    assert_err("a*.example.com:1", "wildcard");
    assert_err("api.*:1", "wildcard");
    assert_err("*.:1", "empty");
    assert_err("*..com:1", "empty label");
    // Numeric last labels are IPv4 to inet_aton.
    assert_err("127.1:80", "numeric IPv4");
    assert_err("10.0.0.010:80", "numeric IPv4");
    assert_err("0x7f000001:80", "numeric IPv4");
    assert_err("1.2.3.4.5:80", "numeric IPv4");
    assert_err("*.0.0.1:80", "numeric IPv4");
    assert!(NetPattern::parse("123.example.com:80").is_ok());
    assert!(NetPattern::parse("1password.com:80").is_ok());
}

// ---- algebra, by example ------------------------------------------------------

fn covers(a: &str, b: &str) -> bool {
    p(a).covers(&p(b))
}

#[test]
fn names_and_suffixes() {
    assert!(covers("api.example.com:443", "API.example.com.:443"));
    assert!(!covers("api.example.com:443", "www.example.com:443"));
    assert!(covers("*.example.com:443", "api.example.com:443"));
    assert!(covers("*.example.com:443", "b.a.example.com:443"));
    assert!(
        !covers("*.example.com:443", "example.com:443"),
        "the apex is not below itself"
    );
    assert!(
        !covers("*.example.com:443", "evilexample.com:443"),
        "label boundary"
    );
    assert!(covers("*.example.com:443", "*.example.com:443"));
    assert!(covers("*.example.com:443", "*.a.example.com:443"));
    assert!(!covers("*.a.example.com:443", "*.example.com:443"));
    assert!(!covers("example.com:443", "*.example.com:443"));
    assert!(!covers("api.example.com:443", "*.api.example.com:443"));
    assert!(covers("*.com:*", "*.example.com:443"));
    assert!(!covers("*.example.com:*", "*.evilexample.com:443"));
    assert!(!covers("*.example.com:*", "*.com:443"));
}

#[test]
fn addresses_and_networks() {
    assert!(covers("10.0.0.0/8:*", "10.1.2.3:80"));
    assert!(covers("10.0.0.0/8:*", "10.1.0.0/16:80"));
    assert!(covers("10.0.0.0/8:*", "10.0.0.0/8:80"));
    assert!(!covers("10.0.0.0/16:*", "10.0.0.0/8:80"));
    assert!(!covers("10.0.0.0/8:*", "11.0.0.1:80"));
    assert!(covers("10.0.0.1:80", "10.0.0.1/32:80"));
    assert!(covers("10.0.0.1/32:80", "10.0.0.1:80"));
    assert!(!covers("10.0.0.1:80", "10.0.0.0/31:80"));
    assert!(
        !covers("10.0.0.0:80", "10.0.0.0/31:80"),
        "an address is not its network"
    );
    assert!(!covers("[fd00::]:80", "[fd00::]/127:80"));
    assert!(!covers("10.0.0.1:80", "10.0.0.2:80"));
    assert!(covers("0.0.0.0/0:*", "255.255.255.255:1"));
    assert!(covers("[fd00::]/8:*", "[fd12::1]:1"));
    assert!(covers("[::1]:53", "[::1]/128:53"));
    // The families never cover each other; mapped addresses are IPv6.
    assert!(!covers("0.0.0.0/0:*", "[::1]:1"));
    assert!(!covers("[::]/0:*", "10.0.0.1:1"));
    assert!(!covers("0.0.0.0/0:*", "[::ffff:10.0.0.1]:1"));
    assert!(!covers("10.0.0.1:1", "[::ffff:10.0.0.1]:1"));
    assert!(!covers("[::ffff:10.0.0.1]:1", "10.0.0.1:1"));
    assert!(covers("[::]/0:*", "[::ffff:10.0.0.1]:1"));
}

#[test]
fn names_and_addresses_never_cover_each_other() {
    assert!(!covers("0.0.0.0/0:*", "example.com:1"));
    assert!(!covers("[::]/0:*", "*.com:1"));
    assert!(!covers("*.com:*", "10.0.0.1:1"));
    assert!(!covers("localhost:*", "127.0.0.1:1"));
    assert!(covers("*:*", "example.com:1"));
    assert!(covers("*:*", "10.0.0.0/8:1"));
    assert!(!covers("10.0.0.0/8:*", "*:1"));
    assert!(!covers("*.com:*", "*:1"));
}

#[test]
fn ports_and_protocols() {
    assert!(covers("x.com:*", "x.com:443"));
    assert!(covers("x.com:8000-8100", "x.com:8000"));
    assert!(covers("x.com:8000-8100", "x.com:8100"));
    assert!(covers("x.com:8000-8100", "x.com:8050-8060"));
    assert!(!covers("x.com:8000-8100", "x.com:7999-8050"));
    assert!(!covers("x.com:443", "x.com:*"));
    assert!(covers("x.com:443", "tcp:x.com:443"));
    assert!(covers("x.com:443", "udp:x.com:443"));
    assert!(!covers("tcp:x.com:443", "x.com:443"));
    assert!(!covers("tcp:x.com:443", "udp:x.com:443"));
    assert!(Protocols::BOTH.covers(Protocols::TCP));
    assert!(!Protocols::UDP.covers(Protocols::BOTH));
    assert_eq!(Protocols::new(false, false), None);
    assert_eq!(Protocols::new(true, false), Some(Protocols::TCP));
    assert_eq!(Protocols::from(Protocol::Udp), Protocols::UDP);
    assert!(PortRange::ALL.contains(0) && PortRange::ALL.contains(65535));
}

#[test]
fn covered_by_one_parent_pattern_only() {
    let parents = [
        p("10.0.0.0/9:*"),
        p("10.128.0.0/9:*"),
        p("*.example.com:443"),
    ];
    assert!(covered_by_any(&p("10.1.0.0/16:80"), &parents));
    assert!(covered_by_any(&p("tcp:api.example.com:443"), &parents));
    // The union of the two halves is the whole /8, but no single pattern covers it.
    assert!(!covered_by_any(&p("10.0.0.0/8:80"), &parents));
    // Likewise for ports split across two patterns.
    let split_ports = [p("x.com:1-100"), p("x.com:101-200")];
    assert!(!covered_by_any(&p("x.com:50-150"), &split_ports));
    assert!(!covered_by_any(&p("example.com:443"), &parents));
    assert!(!covered_by_any(&p("x.com:1"), &[]));
}

#[test]
fn run_time_matching() {
    let api = p("tcp:api.example.com:443");
    let addr = sock("93.184.216.34:443");
    assert!(api.allows_addr(Protocol::Tcp, addr, &["api.example.com"]));
    assert!(api.allows_addr(Protocol::Tcp, addr, &["evil.com", "API.Example.com."]));
    assert!(
        !api.allows_addr(Protocol::Tcp, addr, &[]),
        "an address literal is not the name"
    );
    assert!(!api.allows_addr(Protocol::Udp, addr, &["api.example.com"]));
    assert!(!api.allows_addr(
        Protocol::Tcp,
        sock("93.184.216.34:80"),
        &["api.example.com"]
    ));
    assert!(!api.allows_addr(Protocol::Tcp, addr, &["www.example.com"]));

    let sub = p("*.example.com:*");
    assert!(sub.allows_addr(Protocol::Udp, addr, &["b.a.example.com"]));
    assert!(!sub.allows_addr(Protocol::Udp, addr, &["example.com"]));
    assert!(!sub.allows_addr(Protocol::Udp, addr, &["evilexample.com"]));

    let net = p("10.0.0.0/8:5432");
    assert!(net.allows_addr(Protocol::Tcp, sock("10.2.3.4:5432"), &[]));
    assert!(!net.allows_addr(Protocol::Tcp, sock("11.2.3.4:5432"), &["db.internal"]));
    assert!(!net.allows_addr(Protocol::Tcp, sock("[::ffff:10.2.3.4]:5432"), &[]));

    let v6 = p("udp:[::1]:53");
    assert!(v6.allows_addr(Protocol::Udp, sock("[::1]:53"), &[]));
    assert!(!v6.allows_addr(Protocol::Udp, sock("127.0.0.1:53"), &[]));

    let any = NetPattern::any();
    assert!(any.allows_addr(Protocol::Udp, sock("[fd00::1]:1"), &[]));
    assert!(any.allows_addr(Protocol::Tcp, sock("0.0.0.0:0"), &[]));
}

#[test]
fn name_lookups() {
    assert!(p("tcp:api.example.com:443").allows_name("api.example.com"));
    assert!(p("api.example.com:443").allows_name("API.EXAMPLE.COM."));
    assert!(!p("api.example.com:443").allows_name("www.example.com"));
    assert!(p("*.example.com:1").allows_name("a.example.com"));
    assert!(p("*.example.com:1").allows_name("B.a.Example.com."));
    assert!(!p("*.example.com:1").allows_name("example.com"));
    assert!(!p("*.example.com:1").allows_name("evilexample.com"));
    assert!(p("*:*").allows_name("anything.at.all"));
    // An address grant never allows a lookup.
    assert!(!p("0.0.0.0/0:*").allows_name("example.com"));
    assert!(!p("10.0.0.1:1").allows_name("10.0.0.1"));
    // Nothing allows what is not a valid name.
    assert!(!p("*:*").allows_name(""));
    assert!(!p("*:*").allows_name("a..b"));
    assert!(!p("*:*").allows_name("127.0.0.1"));
    assert!(!p("*.example.com:*").allows_name("x.example.com.."));
    assert!(!p("*.example.com:*").allows_name("*.example.com"));
}

// ---- algebra, by property ------------------------------------------------------

const NAMES: [&str; 5] = [
    "a.example.com",
    "example.com",
    "b.a.example.com",
    "evil.com",
    "evilexample.com",
];
const SUFFIXES: [&str; 5] = [
    "example.com",
    "a.example.com",
    "com",
    "evil.com",
    "evilexample.com",
];
/// Some addresses are network addresses, so that an address and a network based
/// at it meet.
const IPS: [&str; 11] = [
    "10.0.0.0",
    "10.0.0.1",
    "10.0.0.2",
    "10.1.2.3",
    "127.0.0.1",
    "192.168.1.1",
    "::1",
    "fd00::",
    "fd00::1",
    "fd00:1::5",
    "::ffff:10.0.0.1",
];
const PORTS: [u16; 7] = [0, 53, 80, 443, 8000, 8080, 65535];
/// Names as a nanoprocess might have resolved them, not all in normal form.
const RESOLVED: [&str; 7] = [
    "a.example.com",
    "example.com",
    "b.a.example.com",
    "evil.com",
    "x.evilexample.com",
    "B.A.Example.COM.",
    "not a name",
];

fn ip_addr() -> impl Strategy<Value = IpAddr> {
    prop::sample::select(IPS.to_vec()).prop_map(ip)
}

fn host() -> impl Strategy<Value = HostPattern> {
    prop_oneof![
        1 => Just(HostPattern::Any),
        2 => prop::sample::select(NAMES.to_vec()).prop_map(|n| HostPattern::Name(n.into())),
        2 => prop::sample::select(SUFFIXES.to_vec()).prop_map(|s| HostPattern::Suffix(s.into())),
        2 => ip_addr().prop_map(HostPattern::Ip),
        3 => (ip_addr(), 0usize..6).prop_map(|(a, i)| {
            let len = match a {
                IpAddr::V4(_) => [0, 8, 16, 24, 31, 32][i],
                IpAddr::V6(_) => [0, 8, 16, 64, 127, 128][i],
            };
            HostPattern::net(a, len).unwrap()
        }),
    ]
}

fn protocols() -> impl Strategy<Value = Protocols> {
    prop::sample::select(vec![Protocols::TCP, Protocols::UDP, Protocols::BOTH])
}

fn port_range() -> impl Strategy<Value = PortRange> {
    (
        prop::sample::select(PORTS.to_vec()),
        prop::sample::select(PORTS.to_vec()),
    )
        .prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).unwrap())
}

fn pattern() -> impl Strategy<Value = NetPattern> {
    (protocols(), host(), port_range()).prop_map(|(protocols, host, ports)| NetPattern {
        protocols,
        host,
        ports,
    })
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(vec![Protocol::Tcp, Protocol::Udp])
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    (ip_addr(), prop::sample::select(PORTS.to_vec())).prop_map(|(a, port)| SocketAddr::new(a, port))
}

fn resolved_names() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(RESOLVED.to_vec()), 0..3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn covers_is_reflexive(a in pattern()) {
        prop_assert!(a.covers(&a));
        prop_assert!(covered_by_any(&a, std::slice::from_ref(&a)));
    }

    /// Checked over every triple of a handful of patterns, so that chains where
    /// both premises hold are common.
    #[test]
    fn covers_is_transitive(ps in prop::collection::vec(pattern(), 6)) {
        for a in &ps {
            for b in &ps {
                if !a.covers(b) {
                    continue;
                }
                for c in &ps {
                    if b.covers(c) {
                        prop_assert!(a.covers(c), "{a} covers {b} covers {c}, but not {a} {c}");
                    }
                }
            }
        }
    }

    /// Whatever a covered pattern lets through at run time, the covering one does.
    /// Every use the small universe allows is tried for each covering pair, so that
    /// a pattern allowing one use too many is always found.
    #[test]
    fn covers_is_sound(ps in prop::collection::vec(pattern(), 6)) {
        let ips: Vec<IpAddr> = IPS.iter().map(|s| ip(s)).collect();
        let name_sets: Vec<Vec<&str>> = std::iter::once(vec![])
            .chain(RESOLVED.iter().map(|n| vec![*n]))
            .collect();
        for a in &ps {
            for b in &ps {
                if a == b || !a.covers(b) {
                    continue;
                }
                for proto in [Protocol::Tcp, Protocol::Udp] {
                    for &ip in &ips {
                        for port in PORTS {
                            let addr = SocketAddr::new(ip, port);
                            for names in &name_sets {
                                if b.allows_addr(proto, addr, names) {
                                    prop_assert!(
                                        a.allows_addr(proto, addr, names),
                                        "{a} covers {b}, which allows {proto} {addr} {names:?}, but {a} does not"
                                    );
                                }
                            }
                        }
                    }
                }
                for name in RESOLVED {
                    if b.allows_name(name) {
                        prop_assert!(a.allows_name(name), "{a} covers {b}, which allows looking up {name:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn display_parses_back(a in pattern()) {
        let shown = a.to_string();
        prop_assert_eq!(NetPattern::parse(&shown), Ok(a.clone()), "{}", shown);
        prop_assert_eq!(HostPattern::parse(&a.host.to_string()), Ok(a.host.clone()));
        prop_assert_eq!(PortRange::parse(&a.ports.to_string()), Ok(a.ports));
    }

    #[test]
    fn everything_is_covered_by_any(a in pattern(), proto in protocol(), addr in socket_addr(), names in resolved_names()) {
        let top = NetPattern::any();
        prop_assert!(top.covers(&a));
        prop_assert!(covered_by_any(&a, &[p("10.0.0.0/8:1"), top.clone()]));
        prop_assert!(top.allows_addr(proto, addr, &names));
        prop_assert!(!a.covers(&top) || (a.host == HostPattern::Any && a.ports == PortRange::ALL && a.protocols == Protocols::BOTH));
    }

    /// Names and addresses never cover each other, only `*` spans both.
    #[test]
    fn names_and_addresses_are_apart(a in pattern(), b in pattern()) {
        let is_name = |h: &HostPattern| matches!(h, HostPattern::Name(_) | HostPattern::Suffix(_));
        let is_addr = |h: &HostPattern| matches!(h, HostPattern::Ip(_) | HostPattern::Net(..));
        if (is_name(&a.host) && is_addr(&b.host)) || (is_addr(&a.host) && is_name(&b.host)) {
            prop_assert!(!a.covers(&b));
        }
    }
}

#[test]
fn ipv6_literal_display_round_trips() {
    let v6 = NetPattern {
        protocols: Protocols::UDP,
        host: HostPattern::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ports: PortRange::single(53),
    };
    assert_eq!(v6.to_string(), "udp:[::1]:53");
    assert_eq!(p(&v6.to_string()), v6);
}
