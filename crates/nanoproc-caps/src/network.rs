//! Network access patterns, and the algebra that keeps a child's inside its parent's.
//!
//! A nanoprocess reaches the network only through patterns its parent granted. One
//! pattern, as written in a manifest, is `[tcp:|udp:]HOST:PORTS`:
//!
//! | form                     | allows                                                  |
//! |--------------------------|---------------------------------------------------------|
//! | `api.example.com:443`    | the name `api.example.com`, port 443, TCP and UDP       |
//! | `*.example.com:443`      | any name strictly below `example.com` (not itself)      |
//! | `127.0.0.1:8000-8100`    | one IPv4 address, ports 8000 to 8100                    |
//! | `10.0.0.0/8:*`           | an IPv4 network, any port                               |
//! | `tcp:0.0.0.0:8080`       | TCP only                                                |
//! | `udp:[::1]:53`           | an IPv6 address (always in brackets), UDP only          |
//! | `[fd00::]/8:*`           | an IPv6 network (`[fd00::/8]:*` is accepted too)        |
//! | `*:*`                    | everything                                              |
//!
//! [`NetPattern::covers`] decides whether one pattern allows everything another does;
//! [`covered_by_any`] is the attenuation check for one pattern of a child;
//! [`NetPattern::allows_addr`] and [`NetPattern::allows_name`] are what the runtime
//! asks at a `connect`, `bind`, `send_to` or name lookup.
//!
//! # Covering is lexical: names and addresses never cover each other
//!
//! `covers` compares grants as written, and never resolves anything. Only `*`
//! spans both names and addresses.
//!
//! * **A name grant is never covered by an address grant.** What `api.example.com`
//!   resolves to is not a property of the grant but of DNS at one moment, decided by
//!   whoever controls that zone (and by the resolver on the way). Had the check
//!   resolved the name and found it inside the parent's `10.0.0.0/8`, the name could
//!   point anywhere by the time the child connects, and the child would hold more
//!   than its parent. The answer would also differ from one run, or one machine, to
//!   the next, and a grant check must be a fact about the manifests alone.
//! * **An address grant never implies a name grant.** Looking a name up is itself an
//!   act with effects outside the process: the query leaves the machine, and the name
//!   asked for can carry data out (exfiltration through DNS is an old trick). A child
//!   holding `10.0.0.0/8:*` has not been allowed to make any query at all.
//! * **A name grant never implies an address grant.** `*.example.com:443` authorises
//!   whatever those names resolve to *when this nanoprocess resolves them*, not an
//!   address literal. An address that some name under `example.com` once pointed to,
//!   or that the parent resolved, gives the child nothing (see *At run time*).
//!
//! # Covering is per pattern
//!
//! A child's pattern is allowed when **one** of its parent's patterns covers it
//! ([`covered_by_any`]). A pattern covered only by the union of several is refused:
//! if the parent holds `10.0.0.0/9:*` and `10.128.0.0/9:*`, a child asking for
//! `10.0.0.0/8:*` is refused although the two halves make the whole. The check stays
//! simple enough to be obviously right, a refusal can always name the parent
//! patterns that were compared, and refusing is never unsafe: the fix is to split
//! the child's grant the way the parent's is split. Deciding unions in general would
//! mean set arithmetic over host, port and protocol at once, where a bug grants
//! authority silently.
//!
//! # At run time
//!
//! [`NetPattern::allows_addr`] takes the socket address and the names *this*
//! nanoprocess resolved to that address (the runtime records them at each lookup
//! it allowed). Address patterns match the address; name patterns match one of the
//! names. A name resolved by another nanoprocess (the parent, a sibling) is not in
//! the list, so it cannot lend its authority.
//!
//! This differs from cap-std's `Pool`, which resolves a name when it is inserted
//! and from then on grants the addresses found. A manifest is written long before
//! the run, so here a name grant is resolved where and when it is used. The
//! consequence should be understood by whoever writes one: a name grant trusts the
//! name's DNS, including a rebinding to `127.0.0.1` or to a private network. Where
//! that trust is not warranted, grant addresses.
//!
//! # Names
//!
//! Names are lowercased, a trailing dot is dropped, and each label must be 1 to 63
//! characters of `a-z`, `0-9`, `-` and `_` (internationalised names are written in
//! punycode, `xn--...`), 253 characters in all. `*` may appear only as the whole
//! first label of a suffix pattern. A name whose last label is numeric (`127.1`,
//! `10.0.0.010`, `0x7f000001`) is refused: `inet_aton`, and through it many
//! resolvers, reads those as IPv4 addresses, which would make a name grant an
//! address grant in disguise.
//!
//! `*.example.com` does not include `example.com` itself (as in TLS certificates);
//! grant the apex separately. Suffixes match at a label boundary, so
//! `*.example.com` does not reach `evilexample.com`.
//!
//! # IPv4 and IPv6
//!
//! The families never cover each other, and an IPv4-mapped address
//! (`[::ffff:10.0.0.1]`) is an IPv6 address here, in grants and at run time. The
//! runtime must therefore keep a connection to `::ffff:a.b.c.d` from reaching the
//! IPv4 host `a.b.c.d` (IPv6-only sockets, or refusing `::ffff:0:0/96` at the socket
//! layer); otherwise an IPv6 grant such as `[::]/0:*` would quietly include all of
//! IPv4.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Span, Suggestion, Use, ValueKind,
    Violation, flag, toml_string,
};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A transport protocol, as the runtime sees it at a socket call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// The protocols a pattern covers: TCP, UDP or both, never neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Protocols {
    tcp: bool,
    udp: bool,
}

impl Protocols {
    pub const TCP: Protocols = Protocols {
        tcp: true,
        udp: false,
    };
    pub const UDP: Protocols = Protocols {
        tcp: false,
        udp: true,
    };
    /// What a pattern without a `tcp:` or `udp:` prefix covers.
    pub const BOTH: Protocols = Protocols {
        tcp: true,
        udp: true,
    };

    /// `None` for the empty set, which no pattern can express.
    pub const fn new(tcp: bool, udp: bool) -> Option<Protocols> {
        if tcp || udp {
            Some(Protocols { tcp, udp })
        } else {
            None
        }
    }

    pub const fn contains(self, proto: Protocol) -> bool {
        match proto {
            Protocol::Tcp => self.tcp,
            Protocol::Udp => self.udp,
        }
    }

    /// Superset.
    pub const fn covers(self, other: Protocols) -> bool {
        (self.tcp || !other.tcp) && (self.udp || !other.udp)
    }

    /// The manifest prefix: `tcp:`, `udp:`, or nothing for both.
    fn prefix(self) -> &'static str {
        match (self.tcp, self.udp) {
            (true, false) => "tcp:",
            (false, true) => "udp:",
            _ => "",
        }
    }
}

impl From<Protocol> for Protocols {
    fn from(p: Protocol) -> Protocols {
        match p {
            Protocol::Tcp => Protocols::TCP,
            Protocol::Udp => Protocols::UDP,
        }
    }
}

/// The host part of a pattern.
///
/// Values are expected in the normal form [`HostPattern::parse`] produces (names
/// lowercased without a trailing dot, networks with their host bits zeroed); build
/// them with it or with [`HostPattern::net`]. The algebra stays conservative on a
/// hand-built value that is not normal: an upper-case name matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `*`: every name and every address.
    Any,
    /// One DNS name, exactly.
    Name(String),
    /// `*.example.com`, held as `example.com`: every name strictly below it, not the
    /// name itself.
    Suffix(String),
    /// One address.
    Ip(IpAddr),
    /// A network in CIDR notation, host bits zeroed.
    Net(IpAddr, u8),
}

impl HostPattern {
    /// Parses `*`, a name, `*.suffix`, an IPv4 address or `a.b.c.d/n`, or an IPv6
    /// address or network, bracketed (`[::1]`, `[fd00::]/8`, `[fd00::/8]`) or bare
    /// (`::1`, `fd00::/8`). Inside a [`NetPattern`] IPv6 must be bracketed, since a
    /// port follows.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        if s.is_empty() {
            return Err(
                "empty host: expected `*`, a name such as api.example.com, `*.example.com`, \
                 an address such as 10.0.0.1 or [::1], or a network such as 10.0.0.0/8"
                    .into(),
            );
        }
        if s == "*" {
            return Ok(HostPattern::Any);
        }
        if let Some(suffix) = s.strip_prefix("*.") {
            let suffix =
                normalise_name(suffix).map_err(|e| format!("in the suffix pattern {s:?}: {e}"))?;
            if suffix.len() > 251 {
                return Err(format!(
                    "the suffix in {s:?} is too long to have any name below it (253 characters at most in all)"
                ));
            }
            return Ok(HostPattern::Suffix(suffix));
        }
        if let Some(inner) = s.strip_prefix('[') {
            return parse_bracketed(s, inner);
        }
        if s.contains(':') {
            // A bare IPv6 address or network, possible only outside a NetPattern.
            return parse_v6(s, None);
        }
        if let Some((addr, prefix)) = s.split_once('/') {
            let addr: Ipv4Addr = addr.parse().map_err(|_| {
                format!("{s:?} is not a network: expected an IPv4 network such as 10.0.0.0/8, or an IPv6 one in brackets such as [fd00::]/8")
            })?;
            return HostPattern::net(IpAddr::V4(addr), parse_prefix(prefix, 32, s)?);
        }
        if let Ok(addr) = s.parse::<Ipv4Addr>() {
            return Ok(HostPattern::Ip(IpAddr::V4(addr)));
        }
        normalise_name(s).map(HostPattern::Name)
    }

    /// The network `addr/prefix`, with the host bits of `addr` zeroed.
    pub fn net(addr: IpAddr, prefix: u8) -> Result<HostPattern, String> {
        let max = max_prefix(addr);
        if prefix > max {
            return Err(format!(
                "prefix length /{prefix} is out of range for {} (0-{max})",
                family(addr)
            ));
        }
        Ok(HostPattern::Net(mask(addr, prefix), prefix))
    }

    /// Whether every name and address `other` allows, `self` allows. Lexical: see
    /// the module documentation.
    pub fn covers(&self, other: &HostPattern) -> bool {
        use HostPattern::*;
        match (self, other) {
            (Any, _) => true,
            (Name(a), Name(b)) => a == b,
            (Suffix(s), Name(n)) => strictly_below(n, s),
            (Suffix(s), Suffix(t)) => t == s || strictly_below(t, s),
            (Ip(a), Ip(b)) => a == b,
            // Only the network of that one address.
            (Ip(a), Net(b, len)) => *len >= max_prefix(*b) && a == b,
            (Net(net, len), Ip(b)) => net_contains(*net, *len, *b),
            // A network covers a network of the same family that is no larger and
            // lies inside it.
            (Net(net, len), Net(b, blen)) => {
                same_family(*net, *b) && blen >= len && net_contains(*net, *len, *b)
            }
            _ => false,
        }
    }

    /// Whether connecting to `ip` itself is allowed: `*`, the address, or a network
    /// containing it. Name patterns never match an address (see the module
    /// documentation).
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Ip(a) => *a == ip,
            HostPattern::Net(net, len) => net_contains(*net, *len, ip),
            HostPattern::Name(_) | HostPattern::Suffix(_) => false,
        }
    }

    /// Whether `name` is one this pattern reaches: `*`, the name itself, or a name
    /// below a suffix. Case-insensitive, a trailing dot ignored. An address pattern
    /// never allows a name, and a string that is not a valid name (an address
    /// literal, say) is allowed by nothing.
    pub fn allows_name(&self, name: &str) -> bool {
        let Ok(name) = normalise_name(name) else {
            return false;
        };
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => *n == name,
            HostPattern::Suffix(s) => strictly_below(&name, s),
            HostPattern::Ip(_) | HostPattern::Net(..) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    /// The manifest syntax; IPv6 is always bracketed so that a port may follow.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
            HostPattern::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            HostPattern::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            HostPattern::Net(IpAddr::V4(a), len) => write!(f, "{a}/{len}"),
            HostPattern::Net(IpAddr::V6(a), len) => write!(f, "[{a}]/{len}"),
        }
    }
}

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<HostPattern, String> {
        HostPattern::parse(s)
    }
}

/// An inclusive range of ports, never empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    lo: u16,
    hi: u16,
}

impl PortRange {
    /// `*`.
    pub const ALL: PortRange = PortRange { lo: 0, hi: 65535 };

    /// `lo-hi`, inclusive; an error when `lo > hi`.
    pub fn new(lo: u16, hi: u16) -> Result<PortRange, String> {
        if lo > hi {
            return Err(format!(
                "port range {lo}-{hi} is empty: the first port must not be above the last"
            ));
        }
        Ok(PortRange { lo, hi })
    }

    pub const fn single(port: u16) -> PortRange {
        PortRange { lo: port, hi: port }
    }

    /// Parses `443`, `8000-8100` or `*`.
    pub fn parse(s: &str) -> Result<PortRange, String> {
        if s == "*" {
            return Ok(PortRange::ALL);
        }
        if s.is_empty() {
            return Err(
                "no port: expected a port such as 443, a range such as 8000-8100, or `*` for any"
                    .into(),
            );
        }
        match s.split_once('-') {
            Some((lo, hi)) => PortRange::new(parse_port(lo, s)?, parse_port(hi, s)?),
            None => Ok(PortRange::single(parse_port(s, s)?)),
        }
    }

    pub const fn lo(self) -> u16 {
        self.lo
    }

    pub const fn hi(self) -> u16 {
        self.hi
    }

    pub const fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }

    /// Range containment.
    pub const fn covers(self, other: PortRange) -> bool {
        self.lo <= other.lo && other.hi <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == PortRange::ALL {
            f.write_str("*")
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// One network grant: which protocols, to which hosts, on which ports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NetPattern {
    pub protocols: Protocols,
    pub host: HostPattern,
    pub ports: PortRange,
}

const EXPECTED: &str = "expected [tcp:|udp:]HOST:PORTS such as api.example.com:443, \
     tcp:10.0.0.0/8:5432 or udp:[::1]:53";

impl NetPattern {
    /// `*:*`: everything, both protocols, every port.
    pub fn any() -> NetPattern {
        NetPattern {
            protocols: Protocols::BOTH,
            host: HostPattern::Any,
            ports: PortRange::ALL,
        }
    }

    /// Parses `[tcp:|udp:]HOST:PORTS` (see the module documentation), normalising
    /// names and networks.
    pub fn parse(s: &str) -> Result<NetPattern, String> {
        if s.is_empty() {
            return Err(format!("empty network pattern: {EXPECTED}"));
        }
        let (protocols, rest) = if let Some(rest) = s.strip_prefix("tcp:") {
            (Protocols::TCP, rest)
        } else if let Some(rest) = s.strip_prefix("udp:") {
            (Protocols::UDP, rest)
        } else {
            (Protocols::BOTH, s)
        };
        let (host, ports) = split_host_ports(s, rest)?;
        if host.is_empty() {
            return Err(format!(
                "no host in {s:?}: {EXPECTED}; use `*` for any host"
            ));
        }
        let host = HostPattern::parse(host)?;
        // Without a prefix, `UDP:53` would be the host `udp` on both protocols:
        // surely not what was meant, and printed back as `udp:53` it would read as
        // a protocol with no host. A host so named takes a prefix (`tcp:udp:53`).
        if protocols == Protocols::BOTH
            && let HostPattern::Name(name) = &host
            && (name == "tcp" || name == "udp")
        {
            return Err(format!(
                "{s:?} has a protocol but no host: {EXPECTED} (protocols are lowercase); \
                 a host named {name} is written with its protocol, as in tcp:{name}:PORTS"
            ));
        }
        let ports = PortRange::parse(ports).map_err(|e| format!("in {s:?}: {e}"))?;
        Ok(NetPattern {
            protocols,
            host,
            ports,
        })
    }

    /// Whether every (protocol, host, port) that `other` allows, `self` allows:
    /// protocols a superset, ports a containing range, host covering lexically (see
    /// the module documentation).
    pub fn covers(&self, other: &NetPattern) -> bool {
        self.protocols.covers(other.protocols)
            && self.ports.covers(other.ports)
            && self.host.covers(&other.host)
    }

    /// Whether a socket operation with `proto` on `addr` is allowed. `names` are the
    /// DNS names this nanoprocess resolved to `addr` (and only this one: the runtime
    /// records them at each allowed lookup). Address patterns and `*` match
    /// `addr.ip()` itself; name patterns match if one of `names` does. An
    /// IPv4-mapped IPv6 address is IPv6 and matches only IPv6 patterns.
    pub fn allows_addr(&self, proto: Protocol, addr: SocketAddr, names: &[&str]) -> bool {
        self.protocols.contains(proto)
            && self.ports.contains(addr.port())
            && (self.host.allows_ip(addr.ip()) || names.iter().any(|n| self.host.allows_name(n)))
    }

    /// Whether looking `name` up is allowed: `*`, the name itself, or a name below a
    /// suffix pattern. Ports and protocols do not matter for the lookup itself; they
    /// are checked at the connection. Address patterns never allow a lookup.
    pub fn allows_name(&self, name: &str) -> bool {
        self.host.allows_name(name)
    }
}

impl fmt::Display for NetPattern {
    /// The canonical manifest syntax: [`NetPattern::parse`] reads it back to the same
    /// pattern.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}:{}", self.protocols.prefix(), self.host, self.ports)
    }
}

impl FromStr for NetPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<NetPattern, String> {
        NetPattern::parse(s)
    }
}

/// The attenuation check for one pattern a child asks for: allowed when **one** of
/// its parent's patterns covers it.
///
/// A pattern covered only by the union of several parent patterns is refused (the
/// parent's `10.0.0.0/9:*` and `10.128.0.0/9:*` do not let a child have
/// `10.0.0.0/8:*`). The check is per pattern: simple, conservative, and a refusal
/// can always show the parent patterns it was compared with. The fix is to split the
/// child's grant as the parent's is split.
pub fn covered_by_any(p: &NetPattern, parents: &[NetPattern]) -> bool {
    parents.iter().any(|parent| parent.covers(p))
}

/// The network family: where a nanoprocess may connect and send (`grants.network`)
/// and where it may bind, listen and receive (`grants.listen`).
pub struct Network;

/// One pattern as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternRequest {
    pub text: String,
    pub span: Option<Span>,
}

impl PatternRequest {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            span: None,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkRequest {
    pub connect: Vec<PatternRequest>,
    pub listen: Vec<PatternRequest>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkHolding {
    /// Where it may connect and send.
    pub connect: Vec<NetPattern>,
    /// Where it may bind, listen and receive.
    pub listen: Vec<NetPattern>,
}

impl NetworkHolding {
    pub fn is_empty(&self) -> bool {
        self.connect.is_empty() && self.listen.is_empty()
    }
}

impl Family for Network {
    const NAME: &'static str = "network";
    const KEYS: &'static [&'static str] = &["network", "listen"];
    type Request = NetworkRequest;
    type Holding = NetworkHolding;

    /// `network = ["api.example.com:443"]`, `listen = ["tcp:127.0.0.1:8080"]`.
    /// Patterns are read when they are checked, so that a malformed one is
    /// reported with the others.
    fn parse(
        request: &mut NetworkRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::List(items) = &value.kind else {
            return Err(vec![value.error(format!(
                "{key}: expected a list of patterns, found {}",
                value.kind_name()
            ))]);
        };
        let mut errors = Vec::new();
        let list = if key == "network" {
            &mut request.connect
        } else {
            &mut request.listen
        };
        for item in items {
            match item.as_text() {
                Some(text) => list.push(PatternRequest {
                    text: text.to_string(),
                    span: item.span.clone(),
                }),
                None => errors.push(item.error(format!(
                    "{key}: expected a string, found {}",
                    item.kind_name()
                ))),
            }
        }
        crate::family::checked((), errors)
    }

    fn for_root(
        request: &NetworkRequest,
        _cx: &RootContext<'_>,
    ) -> Result<NetworkHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let holding = NetworkHolding {
            connect: check_patterns(&request.connect, "network", None, &mut violations),
            listen: check_patterns(&request.listen, "listen", None, &mut violations),
        };
        crate::family::checked(holding, violations)
    }

    fn attenuate(
        parent: &NetworkHolding,
        request: &NetworkRequest,
    ) -> Result<NetworkHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let holding = NetworkHolding {
            connect: check_patterns(
                &request.connect,
                "network",
                Some(&parent.connect),
                &mut violations,
            ),
            listen: check_patterns(
                &request.listen,
                "listen",
                Some(&parent.listen),
                &mut violations,
            ),
        };
        crate::family::checked(holding, violations)
    }

    /// Each pattern is covered by one of the parent's (of the same key).
    fn within(child: &NetworkHolding, parent: &NetworkHolding) -> bool {
        let within = |mine: &[NetPattern], theirs: &[NetPattern]| {
            mine.iter().all(|p| covered_by_any(p, theirs))
        };
        within(&child.connect, &parent.connect) && within(&child.listen, &parent.listen)
    }

    fn holds(holding: &NetworkHolding, key: &str) -> bool {
        match key {
            "network" => !holding.connect.is_empty(),
            "listen" => !holding.listen.is_empty(),
            _ => false,
        }
    }

    /// A use's target is the address aimed at (`IP:PORT`) or, for a lookup, the
    /// name looked up; binding, listening and accepting fall under `listen`.
    fn allows(holding: &NetworkHolding, used: &Use<'_>) -> bool {
        if used.key != "network" {
            return false;
        }
        let Some(target) = used.target else {
            return false;
        };
        let (patterns, proto) = use_patterns(holding, used.operation);
        match target.parse::<SocketAddr>() {
            Ok(addr) => patterns.iter().any(|p| p.allows_addr(proto, addr, &[])),
            Err(_) => holding
                .connect
                .iter()
                .chain(&holding.listen)
                .any(|p| p.allows_name(target)),
        }
    }

    /// The addresses reached and the names looked up, each as narrow as the
    /// holding allows and never beyond it:
    ///
    /// - an address connected to, sent to, bound or listened on is `PROTO:IP:PORT`,
    ///   when a held pattern covers it; one reached only through a name it was
    ///   looked up by needs no pattern of its own (the name's covers it);
    /// - a name looked up is each held pattern that allows it, its host narrowed to
    ///   the name (a `*.example.com:443` grant used for `api.example.com` becomes
    ///   `api.example.com:443`), keeping that pattern's protocols and ports;
    /// - the address of a peer that reached it (an accepted connection, a datagram
    ///   received) is the remote's choice, not a use: it proposes nothing;
    /// - a bind to port 0 lets the system choose the port, a new one each run: the
    ///   held patterns for that address are proposed with their ports, not the
    ///   port this run happened to get.
    ///
    /// For a use the holding does not allow (a refusal's hint), the exact address,
    /// or the name on every port (which ports it would connect to is not known).
    fn propose(
        uses: &[Use<'_>],
        held: &NetworkHolding,
        _parent: Option<&NetworkHolding>,
    ) -> Vec<Suggestion> {
        let mut connect: Vec<String> = Vec::new();
        let mut listen: Vec<String> = Vec::new();
        let add = |list: &mut Vec<String>, pattern: String| {
            if !list.contains(&pattern) {
                list.push(pattern);
            }
        };
        // Addresses bound with port 0: what listens there listens on a port the
        // system chose.
        let ephemeral: Vec<(Protocol, IpAddr)> = uses
            .iter()
            .filter(|u| u.key == "network" && u.operation.ends_with(".bind"))
            .filter_map(|u| u.target?.parse::<SocketAddr>().ok().map(|a| (u, a)))
            .filter(|(_, a)| a.port() == 0)
            .map(|(u, a)| (use_patterns(held, u.operation).1, a.ip()))
            .collect();
        for used in uses.iter().filter(|u| u.key == "network") {
            let Some(target) = used.target else { continue };
            if PEER_CHOSEN.contains(&used.operation) {
                continue;
            }
            let allowed = !used.refused;
            let (patterns, proto) = use_patterns(held, used.operation);
            let into_listen = is_listen_operation(used.operation);
            match target.parse::<SocketAddr>() {
                Ok(addr) if into_listen && ephemeral.contains(&(proto, addr.ip())) => {
                    for p in patterns
                        .iter()
                        .filter(|p| p.protocols.contains(proto) && p.host.allows_ip(addr.ip()))
                    {
                        let narrowed = NetPattern {
                            protocols: match proto {
                                Protocol::Tcp => Protocols::TCP,
                                Protocol::Udp => Protocols::UDP,
                            },
                            host: HostPattern::Ip(addr.ip()),
                            ports: p.ports,
                        };
                        add(&mut listen, narrowed.to_string());
                    }
                }
                Ok(addr) => {
                    let exact = NetPattern {
                        protocols: match proto {
                            Protocol::Tcp => Protocols::TCP,
                            Protocol::Udp => Protocols::UDP,
                        },
                        host: HostPattern::Ip(addr.ip()),
                        ports: PortRange::new(addr.port(), addr.port()).unwrap_or(PortRange::ALL),
                    };
                    if !allowed || covered_by_any(&exact, patterns) {
                        let list = if into_listen {
                            &mut listen
                        } else {
                            &mut connect
                        };
                        add(list, exact.to_string());
                    }
                }
                Err(_) => {
                    let Ok(name) = normalise_name(target) else {
                        continue;
                    };
                    let mut any = false;
                    for (list, held_patterns) in
                        [(&mut connect, &held.connect), (&mut listen, &held.listen)]
                    {
                        for p in held_patterns.iter().filter(|p| p.allows_name(&name)) {
                            any = true;
                            add(
                                list,
                                NetPattern {
                                    protocols: p.protocols,
                                    host: HostPattern::Name(name.clone()),
                                    ports: p.ports,
                                }
                                .to_string(),
                            );
                        }
                    }
                    if !any && !allowed {
                        add(&mut connect, format!("{name}:*"));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (key, patterns, name) in [
            ("network", connect, "--connect"),
            ("listen", listen, "--listen"),
        ] {
            if patterns.is_empty() {
                continue;
            }
            let quoted: Vec<String> = patterns.iter().map(|p| toml_string(p)).collect();
            out.push(Suggestion {
                flags: patterns.iter().map(|p| flag(name, p)).collect(),
                ..Suggestion::new(key, format!("[{}]", quoted.join(", ")), None)
            });
        }
        out
    }

    fn everything(parent: &NetworkHolding, _written: &NetworkRequest) -> NetworkRequest {
        let requests = |patterns: &[NetPattern]| {
            patterns
                .iter()
                .map(|p| PatternRequest::new(p.to_string()))
                .collect()
        };
        NetworkRequest {
            connect: requests(&parent.connect),
            listen: requests(&parent.listen),
        }
    }

    fn describe(holding: &NetworkHolding) -> Vec<Line> {
        let patterns = |ps: &[NetPattern]| {
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = match (holding.connect.is_empty(), holding.listen.is_empty()) {
            (true, true) => "none".to_string(),
            (false, true) => format!("connect {}", patterns(&holding.connect)),
            (true, false) => format!("listen {}", patterns(&holding.listen)),
            (false, false) => format!(
                "connect {}; listen {}",
                patterns(&holding.connect),
                patterns(&holding.listen)
            ),
        };
        vec![("network", text)]
    }
}

/// Parses patterns; for a child, each must be covered by one of the parent's
/// (`parent`), checked pattern by pattern.
fn check_patterns(
    asked: &[PatternRequest],
    key: &'static str,
    parent: Option<&[NetPattern]>,
    violations: &mut Vec<Violation>,
) -> Vec<NetPattern> {
    let mut out = Vec::new();
    for (i, asked) in asked.iter().enumerate() {
        let violation = |reason: String, parent_grant: Option<String>| Violation {
            item: GrantItem::at(key, i),
            grant: format!("{:?}", asked.text),
            reason,
            parent_grant,
            span: asked.span.clone(),
        };
        let pattern = match NetPattern::parse(&asked.text) {
            Ok(p) => p,
            Err(e) => {
                violations.push(violation(e, None));
                continue;
            }
        };
        if let Some(parent) = parent
            && !covered_by_any(&pattern, parent)
        {
            let held = if parent.is_empty() {
                "nothing".to_string()
            } else {
                parent
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            violations.push(violation(
                format!("no pattern of the parent covers {pattern}"),
                Some(held),
            ));
            continue;
        }
        out.push(pattern);
    }
    out
}

/// Splits `rest` (the pattern after its protocol prefix) into host and ports.
fn split_host_ports<'a>(s: &str, rest: &'a str) -> Result<(&'a str, &'a str), String> {
    if rest.starts_with('[') {
        let Some(close) = rest.find(']') else {
            return Err(format!(
                "missing `]` after the IPv6 address in {s:?}: {EXPECTED}"
            ));
        };
        let mut host_end = close + 1;
        if rest[host_end..].starts_with('/') {
            host_end += rest[host_end..].find(':').unwrap_or(rest.len() - host_end);
        }
        return match rest[host_end..].strip_prefix(':') {
            Some(ports) => Ok((&rest[..host_end], ports)),
            None => Err(format!(
                "expected `:PORTS` after {:?} in {s:?}: {EXPECTED}; use `*` for any port",
                &rest[..host_end]
            )),
        };
    }
    let Some((host, ports)) = rest.rsplit_once(':') else {
        return Err(format!(
            "no port in {s:?}: {EXPECTED}; use `*` for any port"
        ));
    };
    if host.contains(':') {
        if parse_v6(rest, None).is_ok() || parse_v6(host, None).is_ok() {
            return Err(format!(
                "an IPv6 address in a pattern must be written in brackets, as in [::1]:53 or [fd00::]/8:* (in {s:?})"
            ));
        }
        if let Some((word, _)) = host.split_once(':')
            && !word.is_empty()
            && word.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(if word == "tcp" || word == "udp" {
                format!(
                    "more than one protocol in {s:?}: give one of tcp: or udp:, or none for both"
                )
            } else {
                format!(
                    "unknown protocol {word:?} in {s:?}: expected tcp: or udp: (or none for both)"
                )
            });
        }
        return Err(format!("too many `:` in {s:?}: {EXPECTED}"));
    }
    Ok((host, ports))
}

/// `inner` is what follows the `[` of `s`: `addr]`, `addr]/n` or `addr/n]`.
fn parse_bracketed(s: &str, inner: &str) -> Result<HostPattern, String> {
    let Some((inside, after)) = inner.split_once(']') else {
        return Err(format!("missing `]` after the IPv6 address in {s:?}"));
    };
    let prefix = match after {
        "" => None,
        _ => match after.strip_prefix('/') {
            Some(p) if !inside.contains('/') => Some(p),
            Some(_) => {
                return Err(format!(
                    "two prefix lengths in {s:?}: write [fd00::]/8 or [fd00::/8]"
                ));
            }
            None => {
                return Err(format!(
                    "unexpected {after:?} after `]` in {s:?}: expected an IPv6 address such as [::1] or a network such as [fd00::]/8"
                ));
            }
        },
    };
    if inside.parse::<Ipv4Addr>().is_ok()
        || inside
            .split_once('/')
            .is_some_and(|(a, _)| a.parse::<Ipv4Addr>().is_ok())
    {
        return Err(format!(
            "brackets are for IPv6 only: write the IPv4 address in {s:?} without them"
        ));
    }
    parse_v6(inside, prefix).map_err(|e| format!("{e} (in {s:?})"))
}

/// An IPv6 address `a` or network `a/n` (or `a` with the prefix given apart).
fn parse_v6(s: &str, prefix: Option<&str>) -> Result<HostPattern, String> {
    let (addr, prefix) = match (s.split_once('/'), prefix) {
        (Some((a, p)), None) => (a, Some(p)),
        (Some(_), Some(_)) => return Err("two prefix lengths".into()),
        (None, p) => (s, p),
    };
    if addr.contains('%') {
        return Err(format!(
            "zone indices such as %eth0 are not supported in {addr:?}"
        ));
    }
    let ip: Ipv6Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
    match prefix {
        None => Ok(HostPattern::Ip(IpAddr::V6(ip))),
        Some(p) => HostPattern::net(IpAddr::V6(ip), parse_prefix(p, 128, s)?),
    }
}

pub(crate) fn parse_prefix(p: &str, max: u8, s: &str) -> Result<u8, String> {
    let family = if max == 32 { "IPv4" } else { "IPv6" };
    if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "expected a prefix length from 0 to {max} after `/` in {s:?}, found {p:?}"
        ));
    }
    match p.parse::<u8>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!(
            "prefix length /{p} in {s:?} is out of range for {family} (0-{max})"
        )),
    }
}

fn parse_port(p: &str, s: &str) -> Result<u16, String> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{p:?} is not a port: expected a port such as 443, a range such as 8000-8100, or `*` for any (in {s:?})"
        ));
    }
    p.parse::<u16>()
        .map_err(|_| format!("port {p} is out of range (0-65535)"))
}

/// Lowercases, drops one trailing dot, and checks every label (see the module
/// documentation). Shared with the `http` family, whose names are the same.
pub(crate) fn normalise_name(s: &str) -> Result<String, String> {
    let lower = s.to_ascii_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(format!("{s:?} is not a host name: it is empty"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!(
                "empty label (`..`, or a leading dot) in host name {s:?}"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(if c == '*' {
                format!(
                    "`*` in {s:?}: a wildcard may only be the whole first label, as in *.example.com"
                )
            } else {
                format!(
                    "invalid character {c:?} in host name {s:?}: allowed are a-z, 0-9, `-` and `_` \
                     (write internationalised names in punycode, xn--...)"
                )
            });
        }
        if label.len() > 63 {
            return Err(format!(
                "label {label:?} in host name {s:?} is longer than 63 characters"
            ));
        }
    }
    if name.len() > 253 {
        return Err(format!("host name {s:?} is longer than 253 characters"));
    }
    let last = name.rsplit('.').next().unwrap_or(name);
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(format!(
            "{s:?} looks like a numeric IPv4 address, not a host name: write an address as a.b.c.d"
        ));
    }
    Ok(name.to_owned())
}

/// Whether `name` is strictly below `suffix`, at a label boundary.
fn strictly_below(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix)
        .and_then(|head| head.strip_suffix('.'))
        .is_some_and(|head| !head.is_empty())
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn family(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// IPv4-mapped IPv6 addresses are `V6`, so they are IPv6 here.
fn same_family(a: IpAddr, b: IpAddr) -> bool {
    matches!(
        (a, b),
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
    )
}

/// `ip` with all but its first `prefix` bits zeroed (a prefix beyond the family's
/// length keeps every bit).
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let kept = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let kept = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

/// Whether `ip` lies in `net/prefix`; never across families.
fn net_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    same_family(net, ip) && mask(net, prefix) == mask(ip, prefix)
}

/// Operations whose address is the peer's, chosen by whoever reached the socket.
const PEER_CHOSEN: [&str; 2] = ["wasi:sockets/tcp.accept", "wasi:sockets/udp.receive"];

/// Whether an audited socket operation is one a `listen` pattern allows.
fn is_listen_operation(operation: &str) -> bool {
    ["bind", "listen", "accept"]
        .iter()
        .any(|verb| operation.ends_with(verb))
}

/// The patterns and protocol that decide an audited socket operation.
fn use_patterns<'h>(holding: &'h NetworkHolding, operation: &str) -> (&'h [NetPattern], Protocol) {
    let proto = if operation.contains("udp") {
        Protocol::Udp
    } else {
        Protocol::Tcp
    };
    if is_listen_operation(operation) {
        (&holding.listen, proto)
    } else {
        (&holding.connect, proto)
    }
}
