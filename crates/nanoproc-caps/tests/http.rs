//! HTTP grants: every syntax form and refusal, request URLs, the run-time decisions
//! (`check`, `may_connect`, `is_public`), and the algebra's properties (covering is
//! a preorder, sound for requests and for the resolution rule).

use nanoproc_caps::http::*;
use nanoproc_caps::network::{HostPattern, PortRange};
use nanoproc_caps::{
    Capabilities, Family, GrantRequest, GrantValue, RootContext, Use, family::InParent,
};
use proptest::prelude::*;
use std::net::IpAddr;

fn p(s: &str) -> UrlPattern {
    UrlPattern::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn err(s: &str) -> String {
    match UrlPattern::parse(s) {
        Ok(pat) => panic!("{s:?} should not parse, got {pat:?}"),
        Err(e) => e,
    }
}

fn assert_err(s: &str, needle: &str) {
    let e = err(s);
    assert!(e.contains(needle), "{s:?}: {e:?} should mention {needle:?}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> RequestUrl {
    RequestUrl::parse_url(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn holding(patterns: &[&str]) -> HttpHolding {
    HttpHolding {
        patterns: patterns.iter().map(|s| p(s)).collect(),
    }
}

// ---- syntax -------------------------------------------------------------------

#[test]
fn parses_every_form() {
    assert_eq!(
        p("https://api.example.com/v1/"),
        UrlPattern {
            scheme: Scheme::Https,
            host: HostPattern::Name("api.example.com".into()),
            ports: PortRange::single(443),
            path: Some("/v1/".into()),
        }
    );
    let local = p("http://127.0.0.1:8000-8100");
    assert_eq!(local.scheme, Scheme::Http);
    assert_eq!(local.host, HostPattern::Ip(ip("127.0.0.1")));
    assert_eq!(local.ports, PortRange::new(8000, 8100).unwrap());
    assert_eq!(local.path, None);
    assert_eq!(
        p("https://*.example.com").host,
        HostPattern::Suffix("example.com".into())
    );
    assert_eq!(p("http://[::1]:8080").host, HostPattern::Ip(ip("::1")));
    assert_eq!(p("http://[::1]:8080").ports, PortRange::single(8080));
    assert_eq!(
        p("http://[10.0.0.0/8]:80").host,
        HostPattern::Net(ip("10.0.0.0"), 8)
    );
    assert_eq!(
        p("http://[fd00::/8]:*"),
        UrlPattern {
            scheme: Scheme::Http,
            host: HostPattern::Net(ip("fd00::"), 8),
            ports: PortRange::ALL,
            path: None,
        }
    );
    assert_eq!(p("https://*").host, HostPattern::Any);
    assert_eq!(p("https://*").ports, PortRange::single(443));
    assert_eq!(p("http://*:*").ports, PortRange::ALL);
    assert_eq!(p("http://x").ports, PortRange::single(80));
    // A path after a bracketed network, and after an explicit port.
    assert_eq!(
        p("http://[10.0.0.0/8]:8080/api").path.as_deref(),
        Some("/api")
    );
    assert_eq!(p("http://[10.0.0.0/8]/api").ports, PortRange::single(80));
    assert_eq!(p("http://10.0.0.1:80/8").path.as_deref(), Some("/8"));
    assert_eq!(p("https://x/a;b/%41~").path.as_deref(), Some("/a;b/%41~"));
}

#[test]
fn normalises() {
    let n = p("HTTPS://API.Example.COM.:443/");
    assert_eq!(n.scheme, Scheme::Https);
    assert_eq!(n.host, HostPattern::Name("api.example.com".into()));
    assert_eq!(n.path, None, "`/` is every path");
    assert_eq!(p("http://x:0-65535").ports, PortRange::ALL);
    assert_eq!(
        p("http://[10.1.2.3/8]").host,
        HostPattern::Net(ip("10.0.0.0"), 8)
    );
    assert_eq!(
        p("http://[FD12::1/16]").host,
        HostPattern::Net(ip("fd12::"), 16)
    );
    assert_eq!(p("Http://x").scheme, Scheme::Http);
}

#[test]
fn displays_canonically() {
    for (input, shown) in [
        ("https://api.example.com/v1/", "https://api.example.com/v1/"),
        ("HTTPS://API.example.com.:443/", "https://api.example.com"),
        ("http://x:80", "http://x"),
        ("http://x:443", "http://x:443"),
        ("https://x:80", "https://x:80"),
        ("http://127.0.0.1:8000-8100", "http://127.0.0.1:8000-8100"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[10.9.9.9/8]:0-65535", "http://[10.0.0.0/8]:*"),
        ("http://[FD00::/8]:*", "http://[fd00::/8]:*"),
        ("https://*.Example.com", "https://*.example.com"),
        ("https://*", "https://*"),
        // The port stays before an address's path, which could read as a prefix.
        ("http://10.0.0.1:80/8", "http://10.0.0.1:80/8"),
        ("http://10.0.0.1:80/v1", "http://10.0.0.1:80/v1"),
        ("http://[::1]:80/v1", "http://[::1]:80/v1"),
    ] {
        let pat = p(input);
        assert_eq!(pat.to_string(), shown, "{input}");
        assert_eq!(p(shown), pat, "{shown} reads back");
    }
}

#[test]
fn refuses_schemes_other_than_http() {
    assert_err("ftp://x", "unsupported scheme \"ftp\"");
    assert_err("ws://x", "http:// or https://");
    assert_err("://x", "unsupported scheme \"\"");
    assert_err("api.example.com:443", "no scheme");
    assert_err("api.example.com", "no scheme");
    assert_err("http:/x", "no scheme");
    assert_eq!(Scheme::parse("HTTPS"), Ok(Scheme::Https));
    assert!(Scheme::parse("httpx").is_err());
    assert_eq!(Scheme::Http.default_port(), 80);
    assert_eq!(Scheme::Https.default_port(), 443);
    assert_eq!(Scheme::Https.to_string(), "https");
}

#[test]
fn refuses_userinfo() {
    assert_err("http://user@x", "user information");
    assert_err("http://user:pw@x:80/", "user information");
    assert_err("http://@x", "user information");
    assert_err("http://[::1]@x", "user information");
}

#[test]
fn refuses_bad_hosts() {
    assert_err("http://", "no host");
    assert_err("http://:80", "no host");
    assert_err("http:///v1", "no host");
    // Numeric last labels read as addresses by resolvers.
    assert_err("http://127.1", "numeric IPv4");
    assert_err("http://0x7f000001", "numeric IPv4");
    assert_err("http://a.b.010", "numeric IPv4");
    assert_err("http://exa%6dple.com", "invalid character");
    assert_err("http://exämple.com", "punycode");
    assert_err("http://a..b", "empty label");
    assert_err("http://a*.example.com", "wildcard");
    assert_err("http://*.", "suffix");
    // IPv6 in brackets only, IPv4 without, networks always in brackets.
    assert_err("http://::1", "brackets");
    assert_err("http://[127.0.0.1]:80", "without brackets");
    assert_err("http://[::1", "missing `]`");
    assert_err("http://[::1]x", "after `]`");
    assert_err("http://[fe80::1%eth0]", "zone");
    assert_err("http://[nothex]", "not an IPv6 address");
    assert_err("http://[10.0.0.0/33]", "out of range");
    assert_err("http://[fd00::/129]", "out of range");
    assert_err("http://[10.0.0.0/]", "prefix length");
    assert_err("http://[x/8]", "not a network");
    assert_err("http://a[b]", "brackets");
    assert_err("http://a:1:2", "too many `:`");
}

#[test]
fn refuses_bad_ports() {
    assert_err("http://x:", "no port");
    assert_err("http://x:65536", "out of range");
    assert_err("http://x:http", "not a port");
    assert_err("http://x:9-8", "empty");
    assert_err("http://x:-1", "not a port");
}

#[test]
fn refuses_bad_paths() {
    assert_err("https://x/v1?q=1", "a query");
    assert_err("https://x?q", "no query or fragment");
    assert_err("https://x#f", "no query or fragment");
    assert_err("https://x/v1#top", "a fragment");
    assert_err("https://x/a\\b", "`\\`");
    assert_err("https://x/v1/*", "no wildcards");
    assert_err("https://x/../admin", "`.` or `..` segment");
    assert_err("https://x/v1/..", "`.` or `..` segment");
    assert_err("https://x/v1/./x", "`.` or `..` segment");
    assert_err("https://x/v1/..;/admin", "`.` or `..` segment");
    assert_err("https://x/%2e%2e/admin", "escaped");
    assert_err("https://x/%2E", "escaped");
    assert_err("https://x/a%2fb", "escaped");
    assert_err("https://x/a%2Fb", "escaped");
    assert_err("https://x/a%5cb", "escaped");
    assert_err("https://x/a%zz", "malformed");
    assert_err("https://x/a%2", "malformed");
    assert_err("https://x/é", "printable ASCII");
    assert_err("https://x/a b", "character ' '");
    assert_err("https://x/a\u{202e}b", "character");
    assert_err(" https://x", "character ' '");
    assert_err("", "empty http pattern");
    // Not a dot segment: dots inside a segment are a name.
    assert_eq!(
        p("https://x/.well-known/").path.as_deref(),
        Some("/.well-known/")
    );
    assert_eq!(p("https://x/a..b").path.as_deref(), Some("/a..b"));
}

#[test]
fn refuses_a_network_written_as_a_path() {
    assert_err("http://10.0.0.0/8", "[10.0.0.0/8]");
    assert_err("http://10.0.0.0/8:*", "ambiguous");
    assert_err("http://[fd00::]/8", "[fd00::/8]");
    // With the port the path is a path; a name has no prefix length.
    assert_eq!(p("http://10.0.0.0:80/8").path.as_deref(), Some("/8"));
    assert_eq!(p("http://x/8").path.as_deref(), Some("/8"));
    assert_eq!(p("http://10.0.0.1/v8").path.as_deref(), Some("/v8"));
}

// ---- request URLs -------------------------------------------------------------

#[test]
fn request_urls_parse_and_normalise() {
    let u = RequestUrl::parse("HTTPS", "API.Example.com.", "/v1/x?q=1").unwrap();
    assert_eq!(u.scheme, Scheme::Https);
    assert_eq!(u.host, RequestHost::Name("api.example.com".into()));
    assert_eq!(u.port, 443);
    assert_eq!(u.path, "/v1/x?q=1");
    assert_eq!(u.to_string(), "https://api.example.com:443/v1/x?q=1");
    let v6 = RequestUrl::parse("http", "[::1]:8080", "").unwrap();
    assert_eq!(v6.host, RequestHost::Ip(ip("::1")));
    assert_eq!(v6.port, 8080);
    assert_eq!(v6.path, "/");
    assert_eq!(v6.to_string(), "http://[::1]:8080/");
    let v4 = RequestUrl::parse("http", "127.0.0.1:80", "/").unwrap();
    assert_eq!(v4.host, RequestHost::Ip(ip("127.0.0.1")));
    // Display reads back, with or without a method before it.
    for u in [&u, &v6, &v4] {
        assert_eq!(&RequestUrl::parse_url(&u.to_string()).unwrap(), u);
    }
    assert_eq!(
        url("http://x"),
        RequestUrl::parse("http", "x", "/").unwrap()
    );
    assert_eq!(url("http://[::1]/a").port, 80);
}

#[test]
fn request_urls_refuse_what_cannot_be_judged() {
    let e = |s: &str, a: &str, p: &str| RequestUrl::parse(s, a, p).unwrap_err();
    assert!(e("ftp", "x", "/").contains("unsupported scheme"));
    assert!(e("", "x", "/").contains("unsupported scheme"));
    assert!(e("http", "", "/").contains("no host"));
    assert!(e("http", "user@x", "/").contains("user information"));
    assert!(e("http", "user:pw@127.0.0.1", "/").contains("user information"));
    assert!(e("http", "x:0", "/").contains("out of range"));
    assert!(e("http", "x:65536", "/").contains("out of range"));
    assert!(e("http", "x:", "/").contains("not a port"));
    assert!(e("http", "x:8o", "/").contains("not a port"));
    assert!(e("http", "127.1", "/").contains("numeric IPv4"));
    assert!(e("http", "0x7f000001:80", "/").contains("numeric IPv4"));
    assert!(e("http", "2130706433", "/").contains("numeric IPv4"));
    assert!(e("http", "010.0.0.1", "/").contains("numeric IPv4"));
    assert!(e("http", "[127.0.0.1]", "/").contains("not an IPv6 address"));
    assert!(e("http", "[fe80::1%25eth0]", "/").contains("zone"));
    assert!(e("http", "::1", "/").contains("too many `:`"));
    assert!(e("http", "x", "v1").contains("does not start with `/`"));
    assert!(e("http", "x", "*").contains("does not start with `/`"));
    assert!(e("http", "x", "/a b").contains("printable ASCII"));
    assert!(e("http", "x", "/a\nb").contains("printable ASCII"));
    assert!(e("http", "x", "/a#b").contains("fragment"));
    // What is refused is printed safely.
    let shown = e("http", "x\u{1b}[31m", "/");
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(RequestUrl::parse_url("no url").is_err());
}

#[test]
fn request_display_escapes_what_a_hand_built_value_has() {
    let u = RequestUrl {
        scheme: Scheme::Http,
        host: RequestHost::Name("a\u{1b}b".into()),
        port: 80,
        path: "/\u{202e}x".into(),
    };
    let shown = u.to_string();
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
}

// ---- allows -------------------------------------------------------------------

#[test]
fn allows_table() {
    for (pattern, request, allowed) in [
        // Scheme and port.
        (
            "https://api.example.com",
            "https://api.example.com:443/x",
            true,
        ),
        (
            "https://api.example.com",
            "http://api.example.com:443/x",
            false,
        ),
        (
            "https://api.example.com",
            "https://api.example.com:8443/x",
            false,
        ),
        ("http://api.example.com", "http://api.example.com:80/", true),
        ("http://x:8000-8100", "http://x:8000/", true),
        ("http://x:8000-8100", "http://x:8100/", true),
        ("http://x:8000-8100", "http://x:8101/", false),
        ("http://x:*", "http://x:1/", true),
        // Names.
        (
            "https://api.example.com",
            "https://API.example.com.:443/",
            true,
        ),
        (
            "https://api.example.com",
            "https://other.example.com:443/",
            false,
        ),
        (
            "https://*.example.com",
            "https://api.example.com:443/",
            true,
        ),
        (
            "https://*.example.com",
            "https://a.b.example.com:443/",
            true,
        ),
        ("https://*.example.com", "https://example.com:443/", false),
        (
            "https://*.example.com",
            "https://evilexample.com:443/",
            false,
        ),
        // Names never reach addresses, addresses never reach names.
        (
            "https://api.example.com",
            "https://93.184.216.34:443/",
            false,
        ),
        (
            "https://*.example.com",
            "https://[2606:2800::1]:443/",
            false,
        ),
        ("http://127.0.0.1:8080", "http://localhost:8080/", false),
        (
            "http://[10.0.0.0/8]:*",
            "http://internal.example:80/",
            false,
        ),
        // Addresses and networks.
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", true),
        ("http://127.0.0.1:8080", "http://127.0.0.2:8080/", false),
        ("http://[10.0.0.0/8]:*", "http://10.200.0.1:9/", true),
        ("http://[10.0.0.0/8]:*", "http://11.0.0.1:9/", false),
        ("http://[::1]:8080", "http://[::1]:8080/", true),
        ("http://[fd00::/8]:*", "http://[fd12::1]:1/", true),
        // An IPv4-mapped address is IPv6.
        ("http://127.0.0.1", "http://[::ffff:127.0.0.1]:80/", false),
        // `*`: any host.
        ("https://*", "https://anything.example:443/", true),
        ("https://*", "https://127.0.0.1:443/", true),
        ("https://*", "https://[::1]:443/", true),
        ("https://*", "http://x:443/", false),
        // Paths at a segment boundary.
        ("https://x/v1", "https://x:443/v1", true),
        ("https://x/v1", "https://x:443/v1/", true),
        ("https://x/v1", "https://x:443/v1/users", true),
        ("https://x/v1", "https://x:443/v1?q=/v2", true),
        ("https://x/v1", "https://x:443/v10", false),
        ("https://x/v1", "https://x:443/v", false),
        ("https://x/v1", "https://x:443/V1", false),
        ("https://x/v1", "https://x:443/", false),
        ("https://x/v1/", "https://x:443/v1/", true),
        ("https://x/v1/", "https://x:443/v1/x", true),
        ("https://x/v1/", "https://x:443/v1", false),
        ("https://x/v1/", "https://x:443/v1?q", false),
        ("https://x/v1/", "https://x:443/v1//x", true),
        ("https://x/v1/", "https://x:443/v1/.well-known", true),
        // What a prefix cannot judge.
        ("https://x/v1/", "https://x:443/v1/../admin", false),
        ("https://x/v1/", "https://x:443/v1/./x", false),
        ("https://x/v1/", "https://x:443/v1/..", false),
        ("https://x/v1/", "https://x:443/v1/..;/admin", false),
        ("https://x/v1/", "https://x:443/v1/%2e%2e/admin", false),
        ("https://x/v1/", "https://x:443/v1/%2E%2E/admin", false),
        ("https://x/v1/", "https://x:443/v1%2f..%2fadmin", false),
        ("https://x/v1/", "https://x:443/v1/..%2Fadmin", false),
        ("https://x/v1/", "https://x:443/v1/..%5cadmin", false),
        ("https://x/v1/", "https://x:443/v1/..\\admin", false),
        ("https://x/v1/", "https://x:443/v1/%zz", false),
        ("https://x/v1/", "https://x:443/v1/%+f", false),
        // ... once a server decodes twice, reads a C string or lax UTF-8.
        ("https://x/v1/", "https://x:443/v1/%252e%252e/admin", false),
        ("https://x/v1/", "https://x:443/v1/x%252Fadmin", false),
        ("https://x/v1/", "https://x:443/v1/..%00/admin", false),
        ("https://x/v1/", "https://x:443/v1/%c0%ae%c0%ae/x", false),
        ("https://x/v1/", "https://x:443/v1/%C1%9C", false),
        ("https://x/v1/", "https://x:443/v1/%e0%80%ae", false),
        ("https://x/v1/", "https://x:443/v1/%f0%80%80%ae", false),
        // An escaped `%`, and UTF-8 that is not overlong, are only bytes.
        ("https://x/v1/", "https://x:443/v1/100%25", true),
        ("https://x/v1/", "https://x:443/v1/%25zz", true),
        ("https://x/v1/", "https://x:443/v1/caf%c3%a9", true),
        ("https://x/v1/", "https://x:443/v1/%e0%a4%85", true),
        ("https://x/v1/", "https://x:443/v1/%f0%9f%98%80", true),
        // ... in the path only: the query is not the path.
        ("https://x/v1/", "https://x:443/v1/x?next=/../admin", true),
        ("https://x/v1/", "https://x:443/v1/x?q=%2e%2e", true),
        // Without a prefix there is nothing to judge: every path of the host.
        ("https://x", "https://x:443/v1/../admin", true),
        ("https://x", "https://x:443/%2e%2e/", true),
    ] {
        assert_eq!(
            p(pattern).allows(&url(request)),
            allowed,
            "{pattern} allows {request}"
        );
    }
}

#[test]
fn names_addr_table() {
    for (pattern, addr, named) in [
        ("http://127.0.0.1:8080", "127.0.0.1", true),
        ("http://127.0.0.1:8080", "127.0.0.2", false),
        ("http://[10.0.0.0/8]:*", "10.1.2.3", true),
        ("http://[10.0.0.0/8]:*", "192.168.0.1", false),
        ("http://[::1]", "::1", true),
        ("http://[fd00::/8]", "fd00::5", true),
        ("http://[fd00::/8]", "fe80::1", false),
        ("http://127.0.0.1", "::ffff:127.0.0.1", false),
        ("http://[::ffff:127.0.0.1]", "::ffff:127.0.0.1", true),
        // Names and `*` name no address.
        ("http://localhost", "127.0.0.1", false),
        ("http://*.example.com", "10.0.0.1", false),
        ("http://*:*", "127.0.0.1", false),
        ("http://*:*", "93.184.216.34", false),
    ] {
        assert_eq!(
            p(pattern).names_addr(ip(addr)),
            named,
            "{pattern} names {addr}"
        );
    }
}

#[test]
fn is_public_table() {
    for (addr, public) in [
        ("93.184.216.34", true),
        ("8.8.8.8", true),
        ("1.1.1.1", true),
        ("100.63.255.255", true),
        ("100.128.0.0", true),
        ("172.15.255.255", true),
        ("172.32.0.0", true),
        ("192.0.1.1", true),
        ("223.255.255.255", true),
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("127.0.0.1", false),
        ("127.255.255.254", false),
        ("10.0.0.1", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.168.1.1", false),
        ("100.64.0.1", false),
        ("100.127.255.255", false),
        ("169.254.169.254", false),
        ("192.0.0.8", false),
        ("192.0.2.1", false),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("198.18.0.1", false),
        ("198.19.255.255", false),
        ("192.88.99.1", false),
        ("224.0.0.1", false),
        ("239.255.255.250", false),
        ("240.0.0.1", false),
        ("255.255.255.255", false),
        // IPv6.
        ("2606:2800:220:1:248:1893:25c8:1946", true),
        ("2001:4860:4860::8888", true),
        ("::", false),
        ("::1", false),
        ("fe80::1", false),
        ("febf::1", false),
        ("fec0::1", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("ff02::1", false),
        ("2001:db8::1", false),
        ("3fff::1", false),
        ("100::1", false),
        ("2001::1", false),
        ("2001:2::1", false),
        ("64:ff9b:1::1", false),
        ("4000::1", false),
        ("1234::1", false),
        // Judged by the IPv4 address they carry.
        ("::ffff:127.0.0.1", false),
        ("::ffff:10.0.0.1", false),
        ("::ffff:169.254.169.254", false),
        ("::ffff:8.8.8.8", true),
        ("::127.0.0.1", false),
        ("::8.8.8.8", true),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::a9fe:a9fe", false),
        ("64:ff9b::808:808", true),
        ("2002:7f00:1::1", false),
        ("2002:a00:1::", false),
        ("2002:808:808::1", true),
    ] {
        assert_eq!(is_public(ip(addr)), public, "{addr}");
    }
}

// ---- check and may_connect ----------------------------------------------------

#[test]
fn check_says_which_pattern_or_why_not() {
    let nothing = HttpHolding::default();
    assert!(nothing.is_empty());
    assert_eq!(
        nothing.check(&url("https://x/")).unwrap_err(),
        "http is not granted"
    );
    let h = holding(&["https://api.example.com/v1/", "http://127.0.0.1:8080"]);
    assert!(!h.is_empty());
    assert_eq!(
        h.check(&url("https://api.example.com/v1/x")),
        Ok(&h.patterns[0])
    );
    assert_eq!(h.check(&url("http://127.0.0.1:8080/")), Ok(&h.patterns[1]));
    let e = h.check(&url("https://evil.example/v1/")).unwrap_err();
    assert_eq!(
        e,
        "no http grant allows https://evil.example:443/v1/ (granted: https://api.example.com/v1/, http://127.0.0.1:8080)"
    );
    let e = h
        .check(&url("https://api.example.com/v1/../admin"))
        .unwrap_err();
    assert!(e.contains("dot segment or an escaped separator"), "{e}");
    assert!(e.contains("path-prefix grant cannot judge"), "{e}");
    let e = h
        .check(&url("https://api.example.com/v1/%2e%2e/admin"))
        .unwrap_err();
    assert!(e.contains("dot segment"), "{e}");
    // Outside the prefix, with or without dots: the plain refusal.
    let e = h.check(&url("https://api.example.com/v2/")).unwrap_err();
    assert!(e.starts_with("no http grant allows"), "{e}");
    // An address literal, where a name is granted: said why.
    let e = h.check(&url("https://93.184.216.34/v1/")).unwrap_err();
    assert!(
        e.contains("a name grant never reaches an address literal"),
        "{e}"
    );
}

#[test]
fn the_resolution_rule() {
    let h = holding(&["https://api.example.com/v1/", "https://*:*"]);
    let api = url("https://api.example.com/v1/x");
    // A public address is fine for any pattern that allows the URL.
    assert_eq!(h.may_connect(&api, ip("93.184.216.34")), Ok(()));
    assert_eq!(h.may_connect(&api, ip("2606:2800::1")), Ok(()));
    // Any other is refused, saying what it is and what to grant.
    for (addr, kind) in [
        ("127.0.0.1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("192.0.2.1", "a documentation address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fd00::1", "a unique-local address"),
        ("fe80::1", "a link-local address"),
        (
            "::ffff:127.0.0.1",
            "an IPv6 address carrying a non-public IPv4 address",
        ),
        (
            "64:ff9b::a9fe:a9fe",
            "an IPv6 address carrying a non-public IPv4 address",
        ),
    ] {
        let e = h.may_connect(&api, ip(addr)).unwrap_err();
        assert!(
            e.starts_with(&format!(
                "api.example.com resolved to {addr}, {kind}, which no http grant names"
            )),
            "{addr}: {e}"
        );
        assert!(e.contains("to allow it"), "{e}");
    }
    let e = h.may_connect(&api, ip("127.0.0.1")).unwrap_err();
    assert!(
        e.ends_with("grant \"https://127.0.0.1:443/v1/\" to allow it"),
        "{e}"
    );
    // A literal: said as such; `*` does not reach it.
    let lit = url("https://127.0.0.1:9000/");
    let e = h.may_connect(&lit, ip("127.0.0.1")).unwrap_err();
    assert!(
        e.starts_with("127.0.0.1 is a loopback address, which no http grant names"),
        "{e}"
    );
    assert!(e.contains("grant \"https://127.0.0.1:9000\""), "{e}");
    // A URL no pattern allows is refused whatever the address.
    assert!(
        h.may_connect(&url("http://api.example.com/v1/"), ip("93.184.216.34"))
            .unwrap_err()
            .starts_with("no http grant allows")
    );
}

#[test]
fn a_pattern_naming_the_address_lets_a_name_reach_it() {
    let h = holding(&[
        "http://localhost:8080",
        "http://127.0.0.1:8080/api/",
        "http://[fd00::/8]:*",
    ]);
    let local = url("http://localhost:8080/api/x");
    assert_eq!(h.may_connect(&local, ip("127.0.0.1")), Ok(()));
    assert_eq!(h.may_connect(&local, ip("fd00::7")), Ok(()));
    // The naming pattern must allow the scheme, port and path too.
    assert!(
        h.may_connect(&url("http://localhost:8080/other"), ip("127.0.0.1"))
            .is_err()
    );
    assert!(
        h.may_connect(&url("http://localhost:8080/api/../x"), ip("127.0.0.1"))
            .is_err()
    );
    assert!(h.may_connect(&local, ip("127.0.0.2")).is_err());
    assert!(h.may_connect(&local, ip("::1")).is_err());
    // Families are apart: the IPv4 grant does not name its mapped form.
    assert!(h.may_connect(&local, ip("::ffff:127.0.0.1")).is_err());
    // The literal itself.
    assert_eq!(
        h.may_connect(&url("http://127.0.0.1:8080/api/"), ip("127.0.0.1")),
        Ok(())
    );
}

// ---- covering -----------------------------------------------------------------

fn covers(a: &str, b: &str) -> bool {
    p(a).covers(&p(b))
}

#[test]
fn covers_table() {
    for (parent, child, covered) in [
        ("https://api.example.com", "https://api.example.com", true),
        (
            "https://api.example.com",
            "http://api.example.com:443",
            false,
        ),
        (
            "https://api.example.com",
            "https://api.example.com:8443",
            false,
        ),
        ("https://x:*", "https://x:8443", true),
        ("https://x:1-10", "https://x:2-9", true),
        ("https://x:1-10", "https://x:2-11", false),
        ("https://*.example.com", "https://api.example.com", true),
        ("https://*.example.com", "https://*.api.example.com", true),
        ("https://*.example.com", "https://example.com", false),
        ("https://*", "https://api.example.com", true),
        ("https://*", "https://*.example.com", true),
        ("http://*:*", "http://*:*", true),
        ("https://api.example.com", "https://*.example.com", false),
        // Paths at a segment boundary.
        ("https://x", "https://x/v1", true),
        ("https://x/v1", "https://x", false),
        ("https://x/v1", "https://x/v1", true),
        ("https://x/v1", "https://x/v1/", true),
        ("https://x/v1", "https://x/v1/a", true),
        ("https://x/v1", "https://x/v10", false),
        ("https://x/v1/", "https://x/v1", false),
        ("https://x/v1/", "https://x/v1/a", true),
        ("https://x/v1/a/", "https://x/v1/a", false),
        // Names and addresses never cover each other.
        ("https://api.example.com", "https://93.184.216.34", false),
        ("http://[0.0.0.0/0]:*", "http://localhost:*", false),
        ("http://[10.0.0.0/8]:*", "http://10.1.0.0:80", true),
        ("http://[10.0.0.0/8]:*", "http://[10.1.0.0/16]:80", true),
        ("http://[10.1.0.0/16]:*", "http://[10.0.0.0/8]:80", false),
        ("http://127.0.0.1", "http://[127.0.0.1/32]", true),
        // `*` names no address: it covers one public address only.
        ("http://*:*", "http://127.0.0.1:8080", false),
        ("http://*:*", "http://[::1]:8080", false),
        ("http://*:*", "http://[::ffff:127.0.0.1]:8080", false),
        ("http://*:*", "http://[10.0.0.0/8]:*", false),
        ("http://*:*", "http://[8.8.8.0/24]:*", false),
        ("http://*:*", "http://93.184.216.34", true),
        ("http://*:*", "http://[93.184.216.34/32]", true),
        ("http://*:*", "http://[93.184.216.34/31]", false),
        ("http://*:*", "http://[10.0.0.1/32]", false),
        ("http://*:*", "http://[2606:2800::1]", true),
    ] {
        assert_eq!(covers(parent, child), covered, "{parent} covers {child}");
    }
}

// ---- the family ---------------------------------------------------------------

fn request(patterns: &[&str]) -> GrantRequest {
    let mut r = GrantRequest::default();
    r.parse(
        "http",
        &GrantValue::list(patterns.iter().map(|p| GrantValue::text(*p)).collect()),
    )
    .unwrap();
    r
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_root_holds_what_it_asks_and_a_child_one_pattern_s_worth() {
    let root = Capabilities::for_root(
        &request(&["https://*.example.com", "http://[10.0.0.0/8]:*"]),
        no_env,
    )
    .unwrap();
    assert_eq!(root.http.patterns.len(), 2);
    assert!(root.holds("http"));
    let child = root
        .attenuate(&request(&[
            "https://api.example.com/v1/",
            "http://10.0.0.1:8080",
        ]))
        .unwrap();
    assert!(child.within(&root));
    assert_eq!(
        child.http.patterns,
        vec![p("https://api.example.com/v1/"), p("http://10.0.0.1:8080")]
    );
    // A child asking for nothing holds nothing.
    let none = root.attenuate(&GrantRequest::default()).unwrap();
    assert!(none.http.is_empty());
    assert!(!none.holds("http"));
}

#[test]
fn a_child_exceeding_its_parent_is_refused_saying_why() {
    let root = Capabilities::for_root(
        &request(&[
            "https://api.example.com/v1/",
            "http://*:*",
            "http://[10.0.0.0/8]:80",
        ]),
        no_env,
    )
    .unwrap();
    let violations = root
        .attenuate(&request(&[
            "http://api.example.com",
            "https://api.example.com/v2/",
            "https://api.example.com:8443/v1/",
            "http://127.0.0.1:8080",
            "http://10.0.0.1:8080",
            "ftp://x",
        ]))
        .unwrap_err();
    let reasons: Vec<String> = violations.iter().map(|v| v.to_string()).collect();
    // http://api.example.com is covered by http://*:* (port 80).
    assert_eq!(reasons.len(), 5, "{reasons:#?}");
    assert!(reasons[0].starts_with("grant http[1] (\"https://api.example.com/v2/\"): no http pattern of the parent covers https://api.example.com/v2/: the parent's https://api.example.com/v1/ is for paths under /v1/ only"), "{}", reasons[0]);
    assert!(
        reasons[0].ends_with(
            "(parent holds: https://api.example.com/v1/, http://*:*, http://[10.0.0.0/8])"
        ),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("is for port 443 only"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("`*` reaches public addresses only"),
        "{}",
        reasons[2]
    );
    assert!(
        reasons[3].contains("the parent's http://[10.0.0.0/8] is for port 80 only"),
        "{}",
        reasons[3]
    );
    assert!(reasons[4].contains("unsupported scheme"), "{}", reasons[4]);
    assert_eq!(violations[4].parent_grant, None);
    // An address under a name: said why.
    let named = Capabilities::for_root(&request(&["https://api.example.com"]), no_env).unwrap();
    let v = named
        .attenuate(&request(&["https://93.184.216.34"]))
        .unwrap_err();
    assert!(
        v[0].reason
            .contains("an address is never covered by a name grant"),
        "{}",
        v[0]
    );
    // A scheme the parent does not hold.
    let v = named
        .attenuate(&request(&["http://api.example.com:443"]))
        .unwrap_err();
    assert!(v[0].reason.contains("is for https only"), "{}", v[0]);
    // Under nothing.
    let none = Capabilities::default();
    let v = none.attenuate(&request(&["https://x"])).unwrap_err();
    assert_eq!(v[0].parent_grant.as_deref(), Some("nothing"));
}

#[test]
fn the_root_refuses_malformed_patterns_each() {
    let v = Capabilities::for_root(
        &request(&["https://ok.example", "http://u@x", "nope", "https://x/.."]),
        no_env,
    )
    .unwrap_err();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].item.to_string(), "http[1]");
    assert_eq!(v[1].item.to_string(), "http[2]");
    assert_eq!(v[2].item.to_string(), "http[3]");
}

#[test]
fn grant_values_other_than_a_list_of_strings_are_refused() {
    let mut r = GrantRequest::default();
    let e = r.parse("http", &GrantValue::text("https://x")).unwrap_err();
    assert!(
        e[0].message.contains("expected a list of URL patterns"),
        "{e:?}"
    );
    let e = r
        .parse(
            "http",
            &GrantValue::list(vec![GrantValue::bool(true), GrantValue::text("https://x")]),
        )
        .unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].message.contains("expected a string, found a boolean"));
    assert_eq!(r.http.patterns.len(), 1, "what could be read is kept");
}

#[test]
fn describes_and_allows_audited_uses() {
    let caps = Capabilities::for_root(&request(&["https://*.example.com/v1"]), no_env).unwrap();
    assert!(
        caps.summary_lines()
            .contains(&("http", "https://*.example.com/v1".to_string()))
    );
    assert!(
        Capabilities::default()
            .summary_lines()
            .contains(&("http", "none".to_string()))
    );
    let used = |target| Use {
        key: "http",
        operation: "wasi:http/outgoing-handler.handle",
        target: Some(target),
        needs: None,
        failed: false,
        refused: false,
    };
    assert!(caps.allows(&used("GET https://api.example.com/v1/x")));
    assert!(caps.allows(&used("https://api.example.com:443/v1")));
    assert!(!caps.allows(&used("GET https://api.example.com/v2")));
    assert!(!caps.allows(&used("GET http://api.example.com/v1")));
    assert!(!caps.allows(&used("GET not a url")));
    assert_eq!(
        caps.in_parent(&used("GET https://a.example.com/v1"), &caps),
        InParent::Same
    );
}

#[test]
fn proposals_narrow_to_the_host_and_port_used() {
    let held = HttpHolding {
        patterns: vec![p("https://*.example.com:*/v1/"), p("http://[10.0.0.0/8]:*")],
    };
    let used = |target, refused| Use {
        key: "http",
        operation: "wasi:http/outgoing-handler.handle",
        target: Some(target),
        needs: None,
        failed: false,
        refused,
    };
    let uses = [
        used("GET https://api.example.com/v1/users?page=2", false),
        used("POST https://api.example.com/v1/other", false),
        used("GET http://10.1.2.3:8080/x", false),
        used("GET https://elsewhere.org/", true),
        used("GET not a url", false),
    ];
    let proposed = Http::propose(&uses, &held, None);
    assert_eq!(proposed.len(), 1);
    assert_eq!(proposed[0].key, "http");
    assert_eq!(
        proposed[0].value,
        "[\"https://api.example.com/v1/\", \"http://10.1.2.3:8080\", \"https://elsewhere.org\"]"
    );
    assert_eq!(
        proposed[0].flags,
        [
            "--http https://api.example.com/v1/",
            "--http http://10.1.2.3:8080",
            "--http https://elsewhere.org"
        ]
    );
    // What is proposed from allowed uses is within what was held.
    let allowed = HttpHolding {
        patterns: vec![p("https://api.example.com/v1/"), p("http://10.1.2.3:8080")],
    };
    assert!(Http::within(&allowed, &held));
    assert!(Http::propose(&[], &held, None).is_empty());
}

#[test]
fn everything_asks_for_the_parents_patterns() {
    let parent = holding(&["https://*.example.com/v1/", "http://[::1]:8080"]);
    let req = Http::everything(&parent, &HttpRequest::default());
    let cx = RootContext { host_env: &no_env };
    let child = Http::attenuate(&parent, &req).unwrap();
    assert_eq!(child, parent);
    assert_eq!(Http::for_root(&req, &cx).unwrap(), parent);
}

// ---- properties ---------------------------------------------------------------

const NAMES: [&str; 5] = [
    "api.example.com",
    "example.com",
    "a.b.example.com",
    "evilexample.com",
    "localhost",
];
const SUFFIXES: [&str; 2] = ["example.com", "b.example.com"];
const IPS: [&str; 10] = [
    "127.0.0.1",
    "10.0.0.1",
    "10.200.3.4",
    "93.184.216.34",
    "0.0.0.0",
    "::1",
    "fd00::1",
    "::ffff:127.0.0.1",
    "2606:2800::1",
    "64:ff9b::a00:1",
];
const PORTS: [u16; 6] = [1, 80, 443, 8080, 8081, 65535];
const PATHS: [&str; 8] = [
    "/", "/v1", "/v1/", "/v1/a", "/v10", "/v1/a/b", "/x", "/v1;p",
];
const REQUEST_PATHS: [&str; 14] = [
    "/",
    "/v1",
    "/v1/",
    "/v1?q",
    "/v1/a",
    "/v1/a/b?x=/../",
    "/v10",
    "/x/y",
    "/v1/../x",
    "/v1/%2e%2e/x",
    "/v1%2fa",
    "/v1/a\\..",
    "/v1/..;/x",
    "/v1;p/a",
];

fn host() -> impl Strategy<Value = HostPattern> {
    prop_oneof![
        1 => Just(HostPattern::Any),
        2 => prop::sample::select(NAMES.to_vec()).prop_map(|n| HostPattern::Name(n.into())),
        1 => prop::sample::select(SUFFIXES.to_vec()).prop_map(|s| HostPattern::Suffix(s.into())),
        2 => prop::sample::select(IPS.to_vec()).prop_map(|a| HostPattern::Ip(ip(a))),
        2 => (prop::sample::select(IPS.to_vec()), 0usize..5).prop_map(|(a, i)| {
            let a = ip(a);
            let len = match a {
                IpAddr::V4(_) => [0, 8, 16, 31, 32][i],
                IpAddr::V6(_) => [0, 8, 64, 96, 128][i],
            };
            HostPattern::net(a, len).unwrap()
        }),
    ]
}

fn pattern() -> impl Strategy<Value = UrlPattern> {
    (
        prop::sample::select(vec![Scheme::Http, Scheme::Https]),
        host(),
        prop::sample::select(PORTS.to_vec()),
        prop::sample::select(PORTS.to_vec()),
        prop::sample::select(PATHS.to_vec()),
    )
        .prop_map(|(scheme, host, a, b, path)| UrlPattern {
            scheme,
            host,
            ports: PortRange::new(a.min(b), a.max(b)).unwrap(),
            path: (path != "/").then(|| path.to_string()),
        })
}

/// Every request the small universe has.
fn requests() -> Vec<RequestUrl> {
    let mut out = Vec::new();
    let hosts = NAMES
        .iter()
        .map(|n| RequestHost::Name(n.to_string()))
        .chain(IPS.iter().map(|a| RequestHost::Ip(ip(a))));
    for host in hosts {
        for scheme in [Scheme::Http, Scheme::Https] {
            for port in PORTS {
                for path in REQUEST_PATHS {
                    out.push(RequestUrl {
                        scheme,
                        host: host.clone(),
                        port,
                        path: path.to_string(),
                    });
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn covers_is_reflexive(a in pattern()) {
        prop_assert!(a.covers(&a), "{a}");
    }

    #[test]
    fn covers_is_transitive(ps in prop::collection::vec(pattern(), 6)) {
        for a in &ps {
            for b in ps.iter().filter(|b| a.covers(b)) {
                for c in ps.iter().filter(|c| b.covers(c)) {
                    prop_assert!(a.covers(c), "{a} covers {b} covers {c}, but not {c}");
                }
            }
        }
    }

    /// What a covered pattern allows, the covering one allows; and a holding made
    /// of covered patterns connects nowhere its parent's would not.
    #[test]
    fn covers_is_sound(ps in prop::collection::vec(pattern(), 5)) {
        let urls = requests();
        let ips: Vec<IpAddr> = IPS.iter().map(|a| ip(a)).collect();
        for a in &ps {
            for b in ps.iter().filter(|b| *b != a && a.covers(b)) {
                for u in &urls {
                    if b.allows(u) {
                        prop_assert!(a.allows(u), "{a} covers {b}, which allows {u}, but {a} does not");
                    }
                }
                let parent = HttpHolding { patterns: vec![a.clone()] };
                let child = HttpHolding { patterns: vec![b.clone()] };
                for u in urls.iter().filter(|u| b.allows(u)) {
                    for &addr in &ips {
                        if child.may_connect(u, addr).is_ok() {
                            prop_assert!(
                                parent.may_connect(u, addr).is_ok(),
                                "{a} covers {b}, which may connect {u} to {addr}, but {a} may not"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn display_parses_back(a in pattern()) {
        let shown = a.to_string();
        prop_assert_eq!(UrlPattern::parse(&shown), Ok(a.clone()), "{}", shown);
    }

    /// Attenuation never yields more than the parent: whatever a child asks, what
    /// it is granted allows no request, and no connection, its parent does not.
    #[test]
    fn attenuation_never_exceeds_the_parent(
        parent in prop::collection::vec(pattern(), 0..4),
        asked in prop::collection::vec(pattern(), 0..4),
    ) {
        let parent = HttpHolding { patterns: parent };
        let request = HttpRequest {
            patterns: asked.iter().map(|p| nanoproc_caps::PatternRequest::new(p.to_string())).collect(),
        };
        match Http::attenuate(&parent, &request) {
            Ok(child) => {
                prop_assert!(Http::within(&child, &parent));
                prop_assert_eq!(child.patterns.len(), asked.len());
                for u in requests() {
                    if child.check(&u).is_ok() {
                        prop_assert!(parent.check(&u).is_ok(), "{u}");
                    }
                    for a in IPS {
                        if child.may_connect(&u, ip(a)).is_ok() {
                            prop_assert!(parent.may_connect(&u, ip(a)).is_ok(), "{u} {a}");
                        }
                    }
                }
            }
            Err(violations) => {
                prop_assert!(!violations.is_empty());
                for v in &violations {
                    let i = v.item.index.unwrap();
                    prop_assert!(!covered_by_any(&asked[i], &parent.patterns), "{v}");
                }
            }
        }
    }

    /// The resolution rule: `may_connect` never allows a non-public address to a
    /// holding none of whose patterns names it.
    #[test]
    fn non_public_addresses_need_a_pattern_naming_them(ps in prop::collection::vec(pattern(), 0..4)) {
        let h = HttpHolding { patterns: ps };
        for u in requests() {
            if h.check(&u).is_err() {
                prop_assert!(h.may_connect(&u, ip("93.184.216.34")).is_err(), "{u}");
                continue;
            }
            for a in IPS.iter().map(|a| ip(a)) {
                let ok = h.may_connect(&u, a).is_ok();
                if is_public(a) {
                    prop_assert!(ok, "{u} {a}");
                } else if ok {
                    prop_assert!(h.patterns.iter().any(|p| p.names_addr(a)), "{u} {a}");
                }
            }
        }
    }
}
