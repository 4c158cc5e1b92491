//! HTTP requests granted by URL pattern (`grants.http`), and the algebra that keeps
//! a child's patterns inside its parent's.
//!
//! `wasi:http/outgoing-handler` lets a nanoprocess send HTTP requests without
//! holding a socket: the host opens the connection. What it may send is granted by
//! URL patterns, separate from the socket-level `network` grants. One pattern is
//! `SCHEME://HOST[:PORTS][PATH-PREFIX]`:
//!
//! | form                                | allows                                                   |
//! |-------------------------------------|----------------------------------------------------------|
//! | `https://api.example.com`           | that name, HTTPS, port 443, every path                   |
//! | `https://api.example.com/v1/`       | the same, paths below `/v1/` only                        |
//! | `https://*.example.com`             | any name strictly below `example.com` (not itself)       |
//! | `http://127.0.0.1:8000-8100`        | one IPv4 address, HTTP, ports 8000 to 8100               |
//! | `http://[::1]:8080`                 | one IPv6 address (always in brackets)                    |
//! | `http://[10.0.0.0/8]:*`             | an IPv4 network, any port (networks always in brackets)  |
//! | `http://[fd00::/8]:*`               | an IPv6 network                                          |
//! | `https://*:*`                       | any host on any port, over HTTPS                         |
//!
//! The scheme is `http` or `https` (read case-insensitively); the port, when it is
//! left out, is the scheme's default (80, 443). A network is written in brackets
//! because `http://10.0.0.0/8` is the address `10.0.0.0` with the path `/8`. A
//! pattern has no user information (`user@host`): a grant is for a place, and a
//! password in a manifest is a leak. Names are the `network` family's: lowercased,
//! a trailing dot dropped, and a name whose last label is numeric (`127.1`) refused,
//! since resolvers read it as an address.
//!
//! [`UrlPattern::covers`] decides whether one pattern allows everything another
//! does; [`HttpHolding::check`] and [`HttpHolding::may_connect`] are what the
//! runtime asks before a request leaves.
//!
//! # Covering is lexical, and per pattern
//!
//! As in [`crate::network`]: `covers` compares grants as written and resolves
//! nothing, since what a name resolves to is a fact about DNS at one moment, not
//! about the manifests. A child's pattern is granted when **one** of its parent's
//! patterns covers it: the scheme equal, the ports a contained range, the host
//! covered ([`HostPattern::covers`]), and the path prefix inside the parent's at a
//! segment boundary. A pattern covered only by the union of several is refused;
//! the fix is to split it as the parent's are split.
//!
//! One difference from `network`: `*` covers an address pattern only when it is
//! one public address. An address or network pattern *names* its addresses, which
//! lets a request reach them even when they are not public (see *The resolution
//! rule*), and `*` names none: a child granted `http://127.0.0.1:8080` under a
//! parent's `http://*:*` would reach what its parent cannot.
//!
//! # Names and addresses never reach each other
//!
//! A name pattern allows a request whose URL names that host; an address pattern
//! allows a request whose URL is that address literal. Neither allows the other:
//! a child granted `https://api.example.com` cannot reach the same host by IP
//! (`https://93.184.216.34/`), because which host an address is is not something
//! the grant says, and the address may serve other names (a shared front end, a
//! cloud metadata service) that nobody granted. Only `*` spans both.
//!
//! # The resolution rule: names do not lead inside
//!
//! A name grant trusts the name's DNS, and DNS can say anything:
//! `api.example.com` may resolve (or be rebound, between one request and the next)
//! to `127.0.0.1`, to the router at `192.168.1.1` or to a cloud's metadata address
//! `169.254.169.254`. Unlike a socket grant, an HTTP grant is routinely written for
//! a public service, and reaching the machine's own services through it would turn
//! every such grant into one for localhost. So before it connects the runtime asks
//! [`HttpHolding::may_connect`] about each address the host resolved to (or its
//! literal): a public address is fine for a pattern that allows the URL; any other
//! (loopback, private, link-local, unique-local, shared CGNAT, unspecified,
//! multicast, broadcast, documentation, reserved; see [`is_public`]) only when a
//! held pattern allowing the URL's scheme, port and path **names that address or a
//! network containing it** ([`UrlPattern::names_addr`]). `*` names no address: it
//! reaches the public internet, not the host's own network. An IPv4-mapped or
//! -compatible IPv6 address, and one of NAT64's `64:ff9b::/96` or 6to4's
//! `2002::/16`, is judged by the IPv4 address it carries, since that is where it
//! leads.
//!
//! Only the scheme, port and path of the naming pattern matter there, not its host:
//! a holding that names `http://127.0.0.1:8080` already lets the nanoprocess reach
//! that endpoint by its literal, so reaching it through a name gives nothing more.
//!
//! # Paths
//!
//! A path prefix matches at a segment boundary: `/v1` allows `/v1`, `/v1/`,
//! `/v1/x` and `/v1?q`, but not `/v10`; `/v1/` allows `/v1/` and below, not `/v1`.
//! Paths are compared as sent, case-sensitively, query excluded. A prefix is only
//! as good as the server's reading of the path agrees with this lexical one, so
//! where they could disagree the request is refused by any pattern with a prefix
//! (one without a prefix allows every path, so it has nothing to judge):
//! a `.` or `..` segment (also before a `;`, which some servers strip:
//! `/v1/..;/admin`), a percent-escaped `.`, `/` or `\` (`%2e%2e`, `%2f`, `%5c`,
//! which servers decode differently), one escaped twice (`%252e`, for a server or
//! proxy that decodes twice), an escaped NUL (`..%00`, where a C string ends), an
//! overlong UTF-8 escape (`%c0%ae`, a `.` to a lax decoder), a `\` (which some
//! read as `/`), or a malformed `%` escape. A pattern's own prefix may contain
//! none of these either, nor a query, fragment or `*`.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Suggestion, Use, ValueKind,
    Violation, flag, is_invisible, toml_string,
};
use crate::network::{HostPattern, PatternRequest, PortRange, normalise_name, parse_prefix};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The scheme of a URL: HTTP or HTTPS, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`, in any case.
    pub fn parse(s: &str) -> Result<Scheme, String> {
        if s.eq_ignore_ascii_case("http") {
            Ok(Scheme::Http)
        } else if s.eq_ignore_ascii_case("https") {
            Ok(Scheme::Https)
        } else {
            Err(format!(
                "unsupported scheme {}: an http grant is for http:// or https:// only",
                toml_string(s)
            ))
        }
    }

    /// The port a URL without one goes to: 80 or 443.
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Scheme, String> {
        Scheme::parse(s)
    }
}

/// One `http` grant: a scheme, hosts, ports and a path prefix.
///
/// Values are expected in the normal form [`UrlPattern::parse`] produces (the host
/// as [`HostPattern::parse`] normalises it, `path` never `Some("")` or
/// `Some("/")`, which are written `None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UrlPattern {
    pub scheme: Scheme,
    pub host: HostPattern,
    pub ports: PortRange,
    /// The path prefix, starting with `/`; `None` for every path.
    pub path: Option<String>,
}

const EXPECTED: &str = "expected SCHEME://HOST[:PORTS][/PATH-PREFIX] such as \
     https://api.example.com/v1/, http://127.0.0.1:8000-8100 or http://[10.0.0.0/8]:*";

impl UrlPattern {
    /// Parses `SCHEME://HOST[:PORTS][PATH-PREFIX]` (see the module documentation).
    pub fn parse(s: &str) -> Result<UrlPattern, String> {
        if s.is_empty() {
            return Err(format!("empty http pattern: {EXPECTED}"));
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || is_invisible(*c))
        {
            return Err(format!(
                "{} has the character {c:?} in it: {EXPECTED}",
                toml_string(s)
            ));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!("no scheme in {}: {EXPECTED}", toml_string(s)));
        };
        let scheme = Scheme::parse(scheme).map_err(|e| format!("{e} (in {})", toml_string(s)))?;
        let (authority, path) = split_authority(rest);
        if authority.contains('@') {
            return Err(format!(
                "{} has user information (`user@`): a grant names a host, not an account; remove it",
                toml_string(s)
            ));
        }
        let (host_text, ports_text) = split_host_port(authority)
            .map_err(|e| format!("{e} (in {}): {EXPECTED}", toml_string(s)))?;
        let host = parse_host(host_text).map_err(|e| format!("{e} (in {})", toml_string(s)))?;
        let explicit_port = ports_text.is_some();
        let ports = match ports_text {
            None => PortRange::single(scheme.default_port()),
            Some(p) => PortRange::parse(p).map_err(|e| format!("in {}: {e}", toml_string(s)))?,
        };
        // `http://10.0.0.0/8` reads as the path `/8` of one address: surely a network
        // was meant. Said with a port, the path is unambiguous.
        if let (HostPattern::Ip(ip), Some(after), false) =
            (&host, path.strip_prefix('/'), explicit_port)
        {
            let first = after.split(['/', ':', '?', '#']).next().unwrap_or("");
            if !first.is_empty() && first.len() <= 3 && first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "{} is ambiguous: write a network in brackets, as in {scheme}://[{ip}/{first}]:*, \
                     or give the port before a path, as in {scheme}://{}:{}{path}",
                    toml_string(s),
                    host_text,
                    scheme.default_port()
                ));
            }
        }
        let path = parse_path_prefix(path).map_err(|e| format!("{e} (in {})", toml_string(s)))?;
        Ok(UrlPattern {
            scheme,
            host,
            ports,
            path,
        })
    }

    /// Whether every request `other` allows, `self` allows: the scheme equal, the
    /// ports a containing range, the host covering lexically, and `other`'s path
    /// prefix inside `self`'s at a segment boundary. See the module documentation.
    pub fn covers(&self, other: &UrlPattern) -> bool {
        self.scheme == other.scheme
            && self.ports.covers(other.ports)
            && host_covers(&self.host, &other.host)
            && match (&self.path, &other.path) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(mine), Some(theirs)) => path_within(mine, theirs),
            }
    }

    /// Whether a request to `url` is allowed: the scheme equal, the port in range,
    /// the host matching (a name by a name pattern, an address literal by an
    /// address or network pattern, either by `*`) and the path inside the prefix.
    /// A pattern with a prefix allows no path it cannot judge (see *Paths*).
    pub fn allows(&self, url: &RequestUrl) -> bool {
        self.scheme == url.scheme
            && self.ports.contains(url.port)
            && match &url.host {
                RequestHost::Name(n) => self.host.allows_name(n),
                RequestHost::Ip(ip) => self.host.allows_ip(*ip),
            }
            && self.allows_path(&url.path)
    }

    /// Whether this pattern's host is an address or a network containing `ip`:
    /// what lets a request reach a non-public address (see *The resolution rule*).
    /// Names and `*` name no address. Families are apart, as in the `network`
    /// family: `127.0.0.1` does not name `::ffff:127.0.0.1`.
    pub fn names_addr(&self, ip: IpAddr) -> bool {
        match self.host {
            HostPattern::Ip(_) | HostPattern::Net(..) => self.host.allows_ip(ip),
            HostPattern::Any | HostPattern::Name(_) | HostPattern::Suffix(_) => false,
        }
    }

    /// The path (with its query) inside the prefix.
    fn allows_path(&self, path_with_query: &str) -> bool {
        match &self.path {
            None => true,
            Some(prefix) => {
                let path = path_only(path_with_query);
                !path_is_ambiguous(path) && path_within(prefix, path)
            }
        }
    }
}

impl fmt::Display for UrlPattern {
    /// The canonical manifest syntax: [`UrlPattern::parse`] reads it back to the
    /// same pattern. The port is left out when it is the scheme's default, except
    /// before the path of an address (where it keeps the path from reading as a
    /// prefix length).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            HostPattern::Ip(IpAddr::V6(a)) => write!(f, "[{a}]")?,
            HostPattern::Net(a, len) => write!(f, "[{a}/{len}]")?,
            host => write!(f, "{host}")?,
        }
        let ip_with_path = matches!(self.host, HostPattern::Ip(_)) && self.path.is_some();
        if self.ports != PortRange::single(self.scheme.default_port()) || ip_with_path {
            write!(f, ":{}", self.ports)?;
        }
        if let Some(p) = &self.path {
            f.write_str(p)?;
        }
        Ok(())
    }
}

impl FromStr for UrlPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<UrlPattern, String> {
        UrlPattern::parse(s)
    }
}

/// The host of a request: a name, or an address literal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestHost {
    /// Normalised: lowercase, no trailing dot, a valid name.
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for RequestHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestHost::Name(n) => f.write_str(&printable(n)),
            RequestHost::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            RequestHost::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// One request a nanoprocess asks the host to send, as its grants judge it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestUrl {
    pub scheme: Scheme,
    pub host: RequestHost,
    /// Explicit, or the scheme's default; never 0.
    pub port: u16,
    /// The path and query as sent: starts with `/`, printable ASCII only.
    pub path: String,
}

impl RequestUrl {
    /// From the parts wasi:http gives the host: scheme ("http"/"https"), authority
    /// ("host[:port]", IPv6 in brackets), path-with-query (empty for `/`).
    /// Normalises the name (lowercase, trailing dot dropped), refuses userinfo, bad
    /// ports, numeric-last-label names, non-http(s) schemes, a zone index, and a
    /// path that is not printable ASCII starting with `/` or that has a fragment.
    pub fn parse(
        scheme: &str,
        authority: &str,
        path_with_query: &str,
    ) -> Result<RequestUrl, String> {
        let scheme = Scheme::parse(scheme)?;
        if authority.is_empty() {
            return Err("the request has no host".into());
        }
        if authority.contains('@') {
            return Err(format!(
                "the authority {} has user information (`user@`), which http requests may not carry",
                toml_string(authority)
            ));
        }
        let (host_text, port_text) = split_host_port(authority).map_err(|e| {
            format!(
                "the authority {} is not HOST[:PORT]: {e}",
                toml_string(authority)
            )
        })?;
        let host = if let Some(inner) = host_text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').unwrap_or(inner);
            if inner.contains('%') {
                return Err(format!(
                    "zone indices such as %eth0 are not supported in {}",
                    toml_string(authority)
                ));
            }
            match inner.parse::<Ipv6Addr>() {
                Ok(a) => RequestHost::Ip(IpAddr::V6(a)),
                Err(_) => {
                    return Err(format!("{} is not an IPv6 address", toml_string(host_text)));
                }
            }
        } else if let Ok(a) = host_text.parse::<Ipv4Addr>() {
            RequestHost::Ip(IpAddr::V4(a))
        } else {
            RequestHost::Name(normalise_name(host_text).map_err(|e| printable(&e))?)
        };
        let port = match port_text {
            None => scheme.default_port(),
            Some(p) => {
                if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "{} is not a port (in {})",
                        toml_string(p),
                        toml_string(authority)
                    ));
                }
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => {
                        return Err(format!(
                            "port {p} is out of range (1-65535) in {}",
                            toml_string(authority)
                        ));
                    }
                    Ok(n) => n,
                }
            }
        };
        let path = if path_with_query.is_empty() {
            "/".to_string()
        } else {
            path_with_query.to_string()
        };
        if !path.starts_with('/') {
            return Err(format!(
                "the request path {} does not start with `/`",
                toml_string(&path)
            ));
        }
        if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "the request path {} has the character {c:?}: a path is sent as printable ASCII, \
                 anything else percent-encoded",
                toml_string(&path)
            ));
        }
        if path.contains('#') {
            return Err(format!(
                "the request path {} has a fragment (`#`), which is never sent",
                toml_string(&path)
            ));
        }
        Ok(RequestUrl {
            scheme,
            host,
            port,
            path,
        })
    }

    /// Reads back what [`Display`](fmt::Display) prints (`https://host:443/path`):
    /// the target of an audited request.
    pub fn parse_url(text: &str) -> Result<RequestUrl, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!("{} is not a URL", toml_string(text)));
        };
        let end = if rest.starts_with('[') {
            rest.find(']')
                .map(|close| {
                    close
                        + 1
                        + rest[close + 1..]
                            .find('/')
                            .unwrap_or(rest.len() - close - 1)
                })
                .unwrap_or(rest.len())
        } else {
            rest.find(['/', '?']).unwrap_or(rest.len())
        };
        RequestUrl::parse(scheme, &rest[..end], &rest[end..])
    }

    /// Whether its path (query excluded) has something a path prefix cannot judge:
    /// a dot segment, an escaped `.`, `/` or `\`, a `\`, a malformed escape.
    pub fn path_is_ambiguous(&self) -> bool {
        path_is_ambiguous(path_only(&self.path))
    }
}

impl fmt::Display for RequestUrl {
    /// `https://api.example.com:443/v1/x`, the port always written; safe to print
    /// (control and invisible characters escaped, should a hand-built value have
    /// any).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme,
            self.host,
            self.port,
            printable(&self.path)
        )
    }
}

/// What a nanoprocess holds under `grants.http`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpHolding {
    pub patterns: Vec<UrlPattern>,
}

impl HttpHolding {
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The decision for a request before anything is resolved or sent: the first
    /// pattern allowing it, or the reason it is refused.
    pub fn check(&self, url: &RequestUrl) -> Result<&UrlPattern, String> {
        if self.patterns.is_empty() {
            return Err("http is not granted".into());
        }
        if let Some(p) = self.patterns.iter().find(|p| p.allows(url)) {
            return Ok(p);
        }
        let but_for_path = self.patterns.iter().any(|p| {
            p.path.is_some()
                && UrlPattern {
                    path: None,
                    ..p.clone()
                }
                .allows(url)
        });
        if but_for_path && url.path_is_ambiguous() {
            return Err(format!(
                "the path of {url} has a dot segment or an escaped separator, which a \
                 path-prefix grant cannot judge (granted: {})",
                self.list()
            ));
        }
        let mut reason = format!("no http grant allows {url} (granted: {})", self.list());
        if let RequestHost::Ip(_) = url.host
            && self
                .patterns
                .iter()
                .any(|p| matches!(p.host, HostPattern::Name(_) | HostPattern::Suffix(_)))
        {
            reason.push_str("; a name grant never reaches an address literal");
        }
        Err(reason)
    }

    /// The resolution rule, asked for each address a request's host resolved to
    /// (or its literal address) before connecting: a public address is fine for
    /// any pattern that allows the URL; any other only if some held pattern that
    /// allows the URL's scheme, port and path names that address. `Err` is the
    /// reason, naming the address and what to grant. The URL itself must be
    /// allowed too ([`HttpHolding::check`]).
    pub fn may_connect(&self, url: &RequestUrl, ip: IpAddr) -> Result<(), String> {
        let allowing = self.check(url)?;
        let Some(kind) = non_public_kind(ip) else {
            return Ok(());
        };
        let named = self.patterns.iter().any(|p| {
            p.scheme == url.scheme
                && p.ports.contains(url.port)
                && p.allows_path(&url.path)
                && p.names_addr(ip)
        });
        if named {
            return Ok(());
        }
        let grant = UrlPattern {
            scheme: url.scheme,
            host: HostPattern::Ip(ip),
            ports: PortRange::single(url.port),
            path: allowing.path.clone(),
        };
        let shown = match ip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => a.to_string(),
        };
        let how = match &url.host {
            RequestHost::Name(_) => format!("{} resolved to {shown}, {kind},", url.host),
            RequestHost::Ip(_) => format!("{shown} is {kind},"),
        };
        Err(format!(
            "{how} which no http grant names (a name or `*` reaches only public addresses); \
             grant {} to allow it",
            toml_string(&grant.to_string())
        ))
    }

    fn list(&self) -> String {
        crate::family::joined(&self.patterns, ", ")
    }
}

/// Whether `ip` is a public (globally routable unicast) address: what any pattern
/// allowing a URL may connect to (see *The resolution rule*). IPv4-mapped and
/// -compatible IPv6, NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`) are judged by
/// the IPv4 address they carry; IPv6 outside `2000::/3` is not public.
pub fn is_public(ip: IpAddr) -> bool {
    non_public_kind(ip).is_none()
}

/// Why `ip` is not public, as "a loopback address"; `None` when it is public.
fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => v4_kind(a),
        IpAddr::V6(a) => v6_kind(a),
    }
}

fn v4_kind(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    let within = |net: [u8; 4], len: u32| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
    };
    Some(match o {
        [0, 0, 0, 0] => "an unspecified address",
        [0, ..] => "an address of \"this network\" (0.0.0.0/8)",
        [127, ..] => "a loopback address",
        [10, ..] => "a private address",
        _ if within([172, 16, 0, 0], 12) || within([192, 168, 0, 0], 16) => "a private address",
        _ if within([100, 64, 0, 0], 10) => "a shared (CGNAT) address",
        [169, 254, ..] => "a link-local address",
        [192, 0, 0, _] => "an IETF protocol assignment (192.0.0.0/24)",
        _ if within([192, 0, 2, 0], 24)
            || within([198, 51, 100, 0], 24)
            || within([203, 0, 113, 0], 24) =>
        {
            "a documentation address"
        }
        _ if within([198, 18, 0, 0], 15) => "a benchmarking address",
        _ if within([192, 88, 99, 0], 24) => "a 6to4 relay anycast address",
        [255, 255, 255, 255] => "the broadcast address",
        _ if within([224, 0, 0, 0], 4) => "a multicast address",
        _ if within([240, 0, 0, 0], 4) => "a reserved address",
        _ => return None,
    })
}

fn v6_kind(a: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(a);
    let within = |net: u128, len: u32| {
        let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
        bits & mask == net & mask
    };
    let embedded = Ipv4Addr::from(bits as u32);
    if bits == 0 {
        return Some("an unspecified address");
    }
    if bits == 1 {
        return Some("a loopback address");
    }
    // Where the address leads is the IPv4 address it carries.
    if within(0xffff_0000_0000, 96) || within(0, 96) || within(0x64_ff9b << 96, 96) {
        return v4_kind(embedded).map(|_| "an IPv6 address carrying a non-public IPv4 address");
    }
    if within(0x2002 << 112, 16) {
        let v4 = Ipv4Addr::from((bits >> 80) as u32);
        return v4_kind(v4).map(|_| "a 6to4 address carrying a non-public IPv4 address");
    }
    Some(if within(0xfc00 << 112, 7) {
        "a unique-local address"
    } else if within(0xfe80 << 112, 10) {
        "a link-local address"
    } else if within(0xfec0 << 112, 10) {
        "a site-local address"
    } else if within(0xff00 << 112, 8) {
        "a multicast address"
    } else if within(0x2001_0db8 << 96, 32) || within(0x3fff << 112, 20) {
        "a documentation address"
    } else if within(0x0064_ff9b_0001 << 80, 48) {
        "a local-use NAT64 address"
    } else if within(0x0100 << 112, 64) {
        "a discard-only address"
    } else if within(0x2001 << 112, 23) {
        "an IETF protocol assignment (2001::/23)"
    } else if !within(0x2000 << 112, 3) {
        "a reserved address"
    } else {
        return None;
    })
}

/// The `http` family: which requests a nanoprocess may send (`grants.http`).
pub struct Http;

/// What a manifest or the command line asks under `grants.http`: each pattern as
/// written, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub patterns: Vec<PatternRequest>,
}

impl Family for Http {
    const NAME: &'static str = "http";
    const KEYS: &'static [&'static str] = &["http"];
    type Request = HttpRequest;
    type Holding = HttpHolding;

    /// `http = ["https://api.example.com/v1/"]`. Patterns are read when they are
    /// checked, so that a malformed one is reported with the others.
    fn parse(
        request: &mut HttpRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::List(items) = &value.kind else {
            return Err(vec![value.error(format!(
                "{key}: expected a list of URL patterns, found {}",
                value.kind_name()
            ))]);
        };
        let mut errors = Vec::new();
        for item in items {
            match item.as_text() {
                Some(text) => request.patterns.push(PatternRequest {
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
        request: &HttpRequest,
        _cx: &RootContext<'_>,
    ) -> Result<HttpHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let patterns = check_patterns(&request.patterns, None, &mut violations);
        crate::family::checked(HttpHolding { patterns }, violations)
    }

    fn attenuate(
        parent: &HttpHolding,
        request: &HttpRequest,
    ) -> Result<HttpHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let patterns = check_patterns(&request.patterns, Some(&parent.patterns), &mut violations);
        crate::family::checked(HttpHolding { patterns }, violations)
    }

    /// Each pattern is covered by one of the parent's.
    fn within(child: &HttpHolding, parent: &HttpHolding) -> bool {
        child
            .patterns
            .iter()
            .all(|p| covered_by_any(p, &parent.patterns))
    }

    fn describe(holding: &HttpHolding) -> Vec<Line> {
        vec![("http", holding.list())]
    }

    fn holds(holding: &HttpHolding, key: &str) -> bool {
        key == "http" && !holding.is_empty()
    }

    /// A use's target is the request's URL (as [`RequestUrl`] or an `http::Uri`
    /// prints it), after its method and a space where the runtime records one.
    fn allows(holding: &HttpHolding, used: &Use<'_>) -> bool {
        used.key == "http"
            && used
                .target
                .and_then(target_url)
                .is_some_and(|url| holding.check(&url).is_ok())
    }

    /// Each URL requested, as narrow as the holding allows and never beyond it: the
    /// held pattern that allowed it, its host narrowed to the URL's (a
    /// `https://*.example.com` grant used for `api.example.com` becomes
    /// `https://api.example.com`) and its ports to the URL's port, its path prefix
    /// kept (a path is too particular to be the grant). For a request the holding
    /// does not allow (a refusal's hint): the URL's scheme, host and port.
    fn propose(
        uses: &[Use<'_>],
        held: &HttpHolding,
        _parent: Option<&HttpHolding>,
    ) -> Vec<Suggestion> {
        let mut patterns: Vec<String> = Vec::new();
        for used in uses.iter().filter(|u| u.key == "http") {
            let Some(url) = used.target.and_then(target_url) else {
                continue;
            };
            let exact_host = match &url.host {
                RequestHost::Name(n) => HostPattern::Name(n.clone()),
                RequestHost::Ip(ip) => HostPattern::Ip(*ip),
            };
            let path = match held.check(&url) {
                Ok(p) if !used.refused => p.path.clone(),
                _ => None,
            };
            let pattern = UrlPattern {
                scheme: url.scheme,
                host: exact_host,
                ports: PortRange::single(url.port),
                path,
            }
            .to_string();
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        if patterns.is_empty() {
            return Vec::new();
        }
        let quoted: Vec<String> = patterns.iter().map(|p| toml_string(p)).collect();
        vec![Suggestion {
            flags: patterns.iter().map(|p| flag("--http", p)).collect(),
            ..Suggestion::new("http", format!("[{}]", quoted.join(", ")), None)
        }]
    }

    fn everything(parent: &HttpHolding, _written: &HttpRequest) -> HttpRequest {
        HttpRequest {
            patterns: parent
                .patterns
                .iter()
                .map(|p| PatternRequest::new(p.to_string()))
                .collect(),
        }
    }
}

/// The URL of an audited request's target: `GET https://host/path` or the URL
/// alone.
fn target_url(target: &str) -> Option<RequestUrl> {
    let url = match target.split_once(' ') {
        Some((method, url)) if method.bytes().all(|b| b.is_ascii_alphabetic()) => url,
        _ => target,
    };
    RequestUrl::parse_url(url).ok()
}

/// The attenuation check for one pattern a child asks for: allowed when **one** of
/// its parent's patterns covers it (see the module documentation).
pub fn covered_by_any(p: &UrlPattern, parents: &[UrlPattern]) -> bool {
    parents.iter().any(|parent| parent.covers(p))
}

/// Host covering for `http`: the `network` family's ([`HostPattern::covers`]),
/// except that `*` covers an address pattern only when it is one public address.
/// An address or network pattern names its addresses, which lets a request reach
/// them even when they are not public; `*` names none (see *The resolution
/// rule*), so a child granted `http://127.0.0.1:8080` under a parent's `http://*:*`
/// would reach what its parent cannot. A network under `*` is refused even when
/// all of it is public: the check stays lexical, and the fix is to ask for the
/// addresses as the parent may reach them (by name, or one public address each).
fn host_covers(parent: &HostPattern, child: &HostPattern) -> bool {
    match (parent, child) {
        (HostPattern::Any, HostPattern::Ip(ip)) => is_public(*ip),
        // The network of one address, written as a network.
        (HostPattern::Any, HostPattern::Net(net, len)) => {
            let single = if net.is_ipv4() { 32 } else { 128 };
            *len == single && is_public(*net)
        }
        (parent, child) => parent.covers(child),
    }
}

/// Parses patterns; for a child, each must be covered by one of the parent's.
fn check_patterns(
    asked: &[PatternRequest],
    parent: Option<&[UrlPattern]>,
    violations: &mut Vec<Violation>,
) -> Vec<UrlPattern> {
    let mut out = Vec::new();
    for (i, asked) in asked.iter().enumerate() {
        let violation = |reason: String, parent_grant: Option<String>| Violation {
            item: GrantItem::at("http", i),
            grant: toml_string(&asked.text),
            reason,
            parent_grant,
            span: asked.span.clone(),
        };
        let pattern = match UrlPattern::parse(&asked.text) {
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
                crate::family::joined(parent, ", ")
            };
            violations.push(violation(
                format!(
                    "no http pattern of the parent covers {pattern}{}",
                    why_not_covered(&pattern, parent)
                ),
                Some(held),
            ));
            continue;
        }
        out.push(pattern);
    }
    out
}

/// What keeps the closest parent pattern (one whose host covers the child's) from
/// covering `p`, as `: ...`; empty when no parent pattern covers its host.
fn why_not_covered(p: &UrlPattern, parents: &[UrlPattern]) -> String {
    let Some(near) = parents.iter().find(|q| host_covers(&q.host, &p.host)) else {
        return match p.host {
            HostPattern::Ip(_) | HostPattern::Net(..)
                if parents.iter().any(|q| q.host == HostPattern::Any) =>
            {
                ": `*` reaches public addresses only, and an address grant under it must be one public address"
                    .into()
            }
            HostPattern::Ip(_) | HostPattern::Net(..)
                if parents
                    .iter()
                    .any(|q| matches!(q.host, HostPattern::Name(_) | HostPattern::Suffix(_))) =>
            {
                ": an address is never covered by a name grant".into()
            }
            _ => String::new(),
        };
    };
    if near.scheme != p.scheme {
        format!(": the parent's {near} is for {} only", near.scheme)
    } else if !near.ports.covers(p.ports) {
        format!(
            ": the parent's {near} is for port{} {} only",
            if near.ports.lo() == near.ports.hi() {
                ""
            } else {
                "s"
            },
            near.ports
        )
    } else {
        format!(
            ": the parent's {near} is for paths under {} only",
            near.path.as_deref().unwrap_or("/")
        )
    }
}

/// Splits what follows `scheme://` into the authority and the path (with anything
/// after it). A bracketed host may hold a `/` (a network).
fn split_authority(rest: &str) -> (&str, &str) {
    let host_end = if rest.starts_with('[') {
        rest.find(']').map_or(rest.len(), |close| close + 1)
    } else {
        0
    };
    let end = rest[host_end..]
        .find(['/', '?', '#'])
        .map_or(rest.len(), |i| host_end + i);
    rest.split_at(end)
}

/// `host[:port]` or `[v6]:port`: the host (brackets kept) and the port text.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let Some(close) = authority.find(']') else {
            return Err("missing `]` after a bracketed address".into());
        };
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!(
                    "unexpected {} after `]`: expected `:PORT` or a path",
                    toml_string(after)
                )),
            },
        };
    }
    if authority.contains(['[', ']']) {
        return Err("brackets may only enclose the whole host".into());
    }
    match authority.split_once(':') {
        None => Ok((authority, None)),
        Some((_, port)) if port.contains(':') => {
            Err("too many `:`: an IPv6 address is written in brackets, as in [::1]:8080".into())
        }
        Some((host, port)) => Ok((host, Some(port))),
    }
}

/// The host of a pattern: `*`, a name, `*.suffix`, an IPv4 address, or in brackets
/// an IPv6 address or an IPv4 or IPv6 network.
fn parse_host(host: &str) -> Result<HostPattern, String> {
    let Some(inner) = host.strip_prefix('[') else {
        if host.is_empty() {
            return Err("no host: use `*` for any host".into());
        }
        if host.contains('/') {
            return Err("a network is written in brackets, as in [10.0.0.0/8]".into());
        }
        return HostPattern::parse(host);
    };
    let inner = inner.strip_suffix(']').unwrap_or(inner);
    if inner.contains('%') {
        return Err(format!(
            "zone indices such as %eth0 are not supported in {}",
            toml_string(host)
        ));
    }
    match inner.split_once('/') {
        Some((addr, prefix)) => {
            if let Ok(a) = addr.parse::<Ipv4Addr>() {
                HostPattern::net(IpAddr::V4(a), parse_prefix(prefix, 32, inner)?)
            } else if let Ok(a) = addr.parse::<Ipv6Addr>() {
                HostPattern::net(IpAddr::V6(a), parse_prefix(prefix, 128, inner)?)
            } else {
                Err(format!(
                    "{} is not a network: expected one such as [10.0.0.0/8] or [fd00::/8]",
                    toml_string(host)
                ))
            }
        }
        None => {
            if inner.parse::<Ipv4Addr>().is_ok() {
                Err(format!(
                    "an IPv4 address is written without brackets, as in http://{inner}:8080; \
                     brackets are for IPv6 addresses and for networks"
                ))
            } else {
                inner
                    .parse::<Ipv6Addr>()
                    .map(|a| HostPattern::Ip(IpAddr::V6(a)))
                    .map_err(|_| format!("{} is not an IPv6 address", toml_string(host)))
            }
        }
    }
}

/// A pattern's path prefix: `None` for every path (nothing, or `/`).
fn parse_path_prefix(path: &str) -> Result<Option<String>, String> {
    if path.is_empty() || path == "/" {
        return Ok(None);
    }
    if path.starts_with(['?', '#']) {
        return Err(format!(
            "{} follows the host: a grant has no query or fragment (queries are always allowed)",
            toml_string(path)
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "{} follows the host: a path prefix starts with `/`",
            toml_string(path)
        ));
    }
    for c in path.chars() {
        let why = match c {
            '?' => "a query (`?`): a grant is a path prefix; queries are always allowed",
            '#' => "a fragment (`#`), which is never sent",
            '\\' => "a `\\`, which some servers read as `/`",
            '*' => {
                "a `*`: a path is a prefix, with no wildcards (`/v1/` allows everything below /v1/)"
            }
            c if !c.is_ascii_graphic() => {
                "a character that is not printable ASCII: percent-encode it as it is sent"
            }
            _ => continue,
        };
        return Err(format!("the path prefix {} has {why}", toml_string(path)));
    }
    if let Some(why) = ambiguity(path) {
        return Err(format!(
            "the path prefix {} has {why}, which a server may read differently from the grant",
            toml_string(path)
        ));
    }
    Ok(Some(path.to_string()))
}

/// What a path has that a prefix cannot judge, if anything: see *Paths*.
fn ambiguity(path: &str) -> Option<&'static str> {
    if path.contains('\\') {
        return Some("a `\\`");
    }
    let bytes = path.as_bytes();
    // The byte two hex digits at `at` stand for (`2e` for `.`), if they are two.
    let hex = |at: usize| match bytes.get(at..at + 2) {
        Some(&[hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
            let digit = |d: u8| (d as char).to_digit(16).unwrap_or(0) as u8;
            Some(digit(hi) << 4 | digit(lo))
        }
        _ => None,
    };
    let mut i = 0;
    // The byte the escape just before `i` stood for, if `i` follows one.
    let mut previous: Option<u8> = None;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            previous = None;
            i += 1;
            continue;
        }
        let Some(byte) = hex(i + 1) else {
            return Some("a malformed `%` escape");
        };
        match byte {
            b'.' | b'/' | b'\\' => {
                return Some("an escaped `.`, `/` or `\\` (%2e, %2f, %5c)");
            }
            // `%252e` is `%2e` to a server (or proxy) that decodes twice.
            b'%' if hex(i + 3).is_some_and(|b| matches!(b, b'.' | b'/' | b'\\')) => {
                return Some("a doubly escaped `.`, `/` or `\\` (%252e, %252f, %255c)");
            }
            // Where a path read as a C string ends: `..%00` is `..` to it.
            0 => return Some("an escaped NUL (%00)"),
            // Never in UTF-8, but `.` or `/` to a lax decoder: `%c0%ae` (C0 and C1
            // lead only overlong two-byte forms, E0 80-9F and F0 80-8F only
            // overlong three- and four-byte ones).
            0xc0 | 0xc1 => return Some("an overlong UTF-8 escape (%c0%ae)"),
            0x80..=0x9f if previous == Some(0xe0) => {
                return Some("an overlong UTF-8 escape (%e0%80%ae)");
            }
            0x80..=0x8f if previous == Some(0xf0) => {
                return Some("an overlong UTF-8 escape (%f0%80%80%ae)");
            }
            _ => {}
        }
        previous = Some(byte);
        i += 3;
    }
    let dot = path.split('/').any(|segment| {
        let segment = segment.split(';').next().unwrap_or(segment);
        segment == "." || segment == ".."
    });
    dot.then_some("a `.` or `..` segment")
}

fn path_is_ambiguous(path: &str) -> bool {
    ambiguity(path).is_some()
}

/// The path of a path-with-query.
fn path_only(path_with_query: &str) -> &str {
    path_with_query
        .split_once('?')
        .map_or(path_with_query, |(p, _)| p)
}

/// Whether `path` (a request's path, or a narrower prefix) lies inside `prefix`
/// at a segment boundary.
fn path_within(prefix: &str, path: &str) -> bool {
    if prefix.ends_with('/') {
        path.starts_with(prefix)
    } else {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// `text` as a quoted string safe to print: control and invisible characters
/// escaped (texts here may be a guest's choice).
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || is_invisible(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}
