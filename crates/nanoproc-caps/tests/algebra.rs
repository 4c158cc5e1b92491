//! Property tests for the attenuation rule: whatever a child asks for, what it ends
//! up holding is within its parent's, at every depth, for every family (directories,
//! environment, stdio, clocks, random, exit, network, http, config and limits),
//! modes, network patterns and URL patterns included. And the grant syntax: every request reads back from
//! the manifest syntax it is written in.

use nanoproc_caps::network::{HostPattern, PortRange, Protocols, covered_by_any};
use nanoproc_caps::*;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

const NAMES: [&str; 4] = ["a", "b", "c", "photos"];
const VARS: [&str; 4] = ["HOME", "TOKEN", "MODE", "LANG"];
/// `VARS` and one name no root is ever granted.
const ANY_VARS: [&str; 5] = ["HOME", "TOKEN", "MODE", "LANG", "AWS_SECRET"];
const CONFIG_KEYS: [&str; 4] = ["LOG_LEVEL", "REGION", "DB_URL", "TOKEN"];
/// `CONFIG_KEYS` and one key no root is ever granted.
const ANY_CONFIG_KEYS: [&str; 5] = ["LOG_LEVEL", "REGION", "DB_URL", "TOKEN", "API_KEY"];

/// The keys that are held or not, each in a mode.
const SWITCHES: [&str; 8] = [
    "stdin",
    "stdout",
    "stderr",
    "wall-clock",
    "monotonic-clock",
    "random",
    "insecure-random",
    "exit",
];

/// Well-formed patterns: names, suffixes, IPv4 and IPv6 addresses and networks,
/// port ranges, protocol prefixes and `*:*`.
const PATTERNS: &[&str] = &[
    "*:*",
    "udp:*:53",
    "api.example.com:443",
    "Api.Example.COM.:443",
    "example.com:80-443",
    "*.example.com:443",
    "*.example.com:*",
    "tcp:*.svc.cluster.local:*",
    "tcp:db.internal:5432",
    "udp:dns.internal:53",
    "127.0.0.1:8080",
    "127.0.0.1:8000-8100",
    "tcp:0.0.0.0:8080",
    "0.0.0.0/0:*",
    "10.0.0.0/8:*",
    "10.1.2.3/16:5432",
    "tcp:10.0.0.0/8:5432",
    "192.168.1.7/32:22",
    "udp:[::1]:53",
    "[::1]:*",
    "[fd00::]/8:*",
    "[fd00::/8]:443",
    "tcp:[2001:db8::]/32:1-1024",
    "[::ffff:10.0.0.1]:80",
    "[::]/0:1-1024",
];

/// Patterns `NetPattern::parse` refuses.
const MALFORMED: &[&str] = &[
    "",
    "nonsense",
    "example.com",
    "::1:53",
    "10.0.0.0/33:*",
    "*.*.example.com:443",
    "tcp:udp:10.0.0.1:53",
    "sctp:example.com:80",
    "UDP:53",
    "127.1:80",
    "example.com:8100-8000",
    "example.com:70000",
    "[10.0.0.1]:80",
    "[fd00::]/8",
    ":443",
];

fn all_patterns() -> Vec<&'static str> {
    PATTERNS.iter().chain(MALFORMED).copied().collect()
}

/// Well-formed `http` patterns: names, suffixes, addresses, networks, `*`, ports,
/// path prefixes.
const HTTP_PATTERNS: &[&str] = &[
    "https://*:*",
    "http://*:*",
    "http://*",
    "https://api.example.com",
    "HTTPS://Api.Example.COM.:443/",
    "https://api.example.com/v1/",
    "https://api.example.com/v1",
    "https://*.example.com",
    "https://*.example.com:*/v1/",
    "http://localhost:8080",
    "http://127.0.0.1:8000-8100",
    "http://127.0.0.1:8080/api/",
    "http://[::1]:8080",
    "http://[10.0.0.0/8]:*",
    "http://[10.1.2.3/16]:5432",
    "http://[fd00::/8]:*",
    "http://[0.0.0.0/0]:*",
    "https://93.184.216.34",
];

/// `http` patterns `UrlPattern::parse` refuses.
const HTTP_MALFORMED: &[&str] = &[
    "",
    "api.example.com:443",
    "ftp://x",
    "http://u@x",
    "http://10.0.0.0/8",
    "https://x/../y",
    "https://x/%2e",
    "http://[127.0.0.1]",
    "http://127.1",
    "https://x/a?b",
    "http://x:99999",
];

fn all_http_patterns() -> Vec<&'static str> {
    HTTP_PATTERNS
        .iter()
        .chain(HTTP_MALFORMED)
        .copied()
        .collect()
}

/// The user's environment: every variable but `LANG` is set (a granted variable
/// that is not set is simply absent).
fn host_env(name: &str) -> Option<String> {
    (name != "LANG").then(|| format!("value-of-{name}"))
}

/// A small deterministic generator, so that `request_within` can make many choices
/// from one seed.
struct Bits(u64);

impl Bits {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------------------
// Strategies, one or more per family.
// ---------------------------------------------------------------------------

fn guest_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES.to_vec()), 0..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

/// Any subset of the seven operations, the shorthands more often than chance.
fn rights() -> impl Strategy<Value = FsRights> {
    prop_oneof![
        Just(FsRights::READ_ONLY),
        Just(FsRights::READ_WRITE),
        any::<u8>().prop_map(FsRights::from_bits_truncate),
    ]
}

/// A `from` path: mostly below a guest path a parent may hold (`/m{i}` for a
/// root, `/g{i}` for a child made by `request_within`), sometimes relative or with
/// `..`.
fn from_path() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "/m0", "/m1", "/m2", "/g0", "/g1", "m0", "/m0/.."]),
        guest_path(),
    )
        .prop_map(|(base, rest)| format!("{base}{rest}"))
}

fn dir_source() -> impl Strategy<Value = DirSource> {
    prop_oneof![
        8 => from_path().prop_map(DirSource::Parent),
        1 => Just(DirSource::Host("/etc".into())),
    ]
}

fn switch<M: Clone + std::fmt::Debug>(
    mode: impl Strategy<Value = M>,
) -> impl Strategy<Value = Switch<M>> {
    prop::option::of(mode).prop_map(|held| Switch { held, span: None })
}

fn output_mode() -> impl Strategy<Value = OutputMode> {
    prop_oneof![
        Just(OutputMode::Terminal),
        Just(OutputMode::Prefixed),
        Just(OutputMode::Discard),
        "[a-z]{1,6}".prop_map(|f| OutputMode::File(PathBuf::from(format!("/var/log/{f}.log")))),
    ]
}

fn clock_mode() -> impl Strategy<Value = ClockMode> {
    prop_oneof![
        Just(ClockMode::Real),
        any::<u64>().prop_map(ClockMode::Frozen)
    ]
}

fn random_mode() -> impl Strategy<Value = RandomMode> {
    prop_oneof![
        Just(RandomMode::Real),
        // A seed is a TOML integer: at most i64::MAX, as the syntax reads it.
        (0..=i64::MAX as u64).prop_map(RandomMode::Seeded)
    ]
}

fn stdio_request() -> impl Strategy<Value = StdioRequest> {
    (
        switch(Just(Plain)),
        switch(output_mode()),
        switch(output_mode()),
    )
        .prop_map(|(stdin, stdout, stderr)| StdioRequest {
            stdin,
            stdout,
            stderr,
        })
}

fn clocks_request() -> impl Strategy<Value = ClocksRequest> {
    (switch(clock_mode()), switch(clock_mode()))
        .prop_map(|(wall, monotonic)| ClocksRequest { wall, monotonic })
}

fn random_request() -> impl Strategy<Value = RandomRequest> {
    (switch(random_mode()), switch(random_mode()))
        .prop_map(|(secure, insecure)| RandomRequest { secure, insecure })
}

fn var_request(names: &[&'static str]) -> impl Strategy<Value = VarRequest> {
    prop_oneof![
        prop::sample::select(names.to_vec()).prop_map(VarRequest::inherit),
        (prop::sample::select(names.to_vec()), "[a-z=]{0,4}")
            .prop_map(|(n, v)| VarRequest::literal(n, v)),
    ]
}

fn env_request(names: &[&'static str]) -> impl Strategy<Value = EnvRequest> {
    (
        prop::collection::vec(var_request(names), 0..3),
        prop::collection::vec("[a-z =-]{0,6}", 0..3),
    )
        .prop_map(|(vars, args)| EnvRequest { vars, args })
}

fn patterns(pool: Vec<&'static str>) -> impl Strategy<Value = Vec<PatternRequest>> {
    prop::collection::vec(prop::sample::select(pool), 0..3)
        .prop_map(|texts| texts.into_iter().map(PatternRequest::new).collect())
}

fn http_request(pool: Vec<&'static str>) -> impl Strategy<Value = HttpRequest> {
    patterns(pool).prop_map(|patterns| HttpRequest { patterns })
}

fn network_request(pool: Vec<&'static str>) -> impl Strategy<Value = NetworkRequest> {
    (patterns(pool.clone()), patterns(pool))
        .prop_map(|(connect, listen)| NetworkRequest { connect, listen })
}

/// What a root may be granted: values, each key once.
fn config_literals() -> impl Strategy<Value = Vec<ConfigRequest>> {
    prop::collection::btree_map(
        prop::sample::select(CONFIG_KEYS.to_vec()),
        "[a-z]{0,4}",
        0..3,
    )
    .prop_map(|values| {
        values
            .into_iter()
            .map(|(k, v)| ConfigRequest::literal(k, v))
            .collect()
    })
}

/// What a child may ask: keys of its parent's or values, repeated or not.
fn config_request() -> impl Strategy<Value = Vec<ConfigRequest>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(ANY_CONFIG_KEYS.to_vec()).prop_map(ConfigRequest::inherit),
            (prop::sample::select(ANY_CONFIG_KEYS.to_vec()), "[a-z]{0,4}")
                .prop_map(|(k, v)| ConfigRequest::literal(k, v)),
        ],
        0..3,
    )
}

/// A host's own covering relation: a suffix (a mail domain covers its addresses).
fn suffix(scope: &str, inner: &str) -> bool {
    inner.ends_with(scope)
}

/// Host-defined families (`grants.host`): one of each rule.
const HOST_FAMILIES: [(&str, ScopeRule); 4] = [
    ("kv", ScopeRule::Prefix),
    ("tag", ScopeRule::Exact),
    ("mail", ScopeRule::Switch),
    (
        "domain",
        ScopeRule::Custom(CustomRule::new("suffixes", suffix)),
    ),
];
/// Scopes that cover one another in every way a prefix can (and the empty one).
const HOST_SCOPES: [&str; 7] = ["a/", "a/b/", "a/b/c", "b/", "", "ab", "x"];

/// Host families as the root's user grants them, resolved by the registered rules.
fn host_root_request() -> impl Strategy<Value = Vec<HostRequest>> {
    prop::collection::vec(
        (
            any::<bool>(),
            prop::collection::vec(prop::sample::select(HOST_SCOPES.to_vec()), 1..3),
        ),
        4,
    )
    .prop_map(|asked| {
        HOST_FAMILIES
            .iter()
            .zip(asked)
            .filter(|(_, (all, scopes))| *all || !scopes.is_empty())
            .map(|((name, rule), (all, scopes))| HostRequest {
                family: name.to_string(),
                scopes: if all || *rule == ScopeRule::Switch {
                    Scopes::All
                } else {
                    Scopes::Only(scopes.into_iter().map(String::from).collect())
                },
                rule: Some(*rule),
                span: None,
            })
            .collect()
    })
}

/// Any host request a child could make: any family, scopes and rule (even one
/// the family was not registered with, or none).
fn host_child_request() -> impl Strategy<Value = Vec<HostRequest>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["kv", "tag", "mail", "domain", "other"]),
            prop::option::of(prop::sample::select(vec![
                ScopeRule::Prefix,
                ScopeRule::Exact,
                ScopeRule::Switch,
                HOST_FAMILIES[3].1,
            ])),
            prop::option::of(prop::collection::vec(
                prop::sample::select(HOST_SCOPES.to_vec()),
                1..3,
            )),
        ),
        0..3,
    )
    .prop_map(|asked| {
        asked
            .into_iter()
            .map(|(name, rule, scopes)| HostRequest {
                family: name.to_string(),
                scopes: match scopes {
                    None => Scopes::All,
                    Some(s) => Scopes::Only(s.into_iter().map(String::from).collect()),
                },
                rule,
                span: None,
            })
            .collect()
    })
}

/// Limits, each set one time in `1 + unset`.
fn limits(unset: u32) -> impl Strategy<Value = Limits> {
    let limit = prop_oneof![unset => Just(None), 1 => (1u64..1 << 32).prop_map(Some)];
    prop::collection::vec(limit, LimitKind::ALL.len()).prop_map(|values| {
        let mut l = Limits::UNLIMITED;
        for (kind, v) in LimitKind::ALL.into_iter().zip(values) {
            l.set(kind, v);
        }
        l
    })
}

/// What the user may grant the root, every family included.
fn root_request() -> impl Strategy<Value = GrantRequest> {
    (
        prop::collection::vec((guest_path(), rights()), 0..3),
        env_request(&VARS),
        (
            stdio_request(),
            clocks_request(),
            random_request(),
            switch(Just(Plain)),
        ),
        (
            network_request(PATTERNS.to_vec()),
            http_request(HTTP_PATTERNS.to_vec()),
            host_root_request(),
        ),
        config_literals(),
        limits(1),
    )
        .prop_map(
            |(dirs, env, (stdio, clocks, random, exit), (network, http, host), config, limits)| {
                GrantRequest {
                    fs: dirs
                        .into_iter()
                        .enumerate()
                        .map(|(i, (guest, rights))| {
                            // Distinct guest paths, distinct host trees.
                            DirRequest::new(
                                DirSource::Host(PathBuf::from(format!("/host{i}"))),
                                format!("/m{i}{guest}"),
                                rights,
                            )
                        })
                        .collect(),
                    env,
                    stdio,
                    clocks,
                    random,
                    exit,
                    network,
                    http,
                    config,
                    host,
                    limits: limits.into(),
                }
            },
        )
}

fn root() -> impl Strategy<Value = Capabilities> {
    root_request().prop_map(|req| {
        Capabilities::for_root(&req, host_env).expect("a well-formed root request is granted")
    })
}

/// A root, or a descendant of one made of requests built inside each parent: so
/// that a parent may hold derived directories, inherited variables and keys, data
/// modes, narrowed patterns, and lack `exit`.
fn holder() -> impl Strategy<Value = Capabilities> {
    (root(), prop::collection::vec(any::<u64>(), 0..3)).prop_map(|(root, seeds)| {
        seeds.into_iter().fold(root, |parent, seed| {
            parent
                .attenuate(&request_within(&parent, seed))
                .expect("a request built inside its parent is granted")
        })
    })
}

/// Any request a child could make: not biased towards valid ones, so both outcomes
/// are exercised.
fn child_request() -> impl Strategy<Value = GrantRequest> {
    (
        prop::collection::vec((dir_source(), guest_path(), rights()), 0..3),
        env_request(&ANY_VARS),
        (
            stdio_request(),
            clocks_request(),
            random_request(),
            switch(Just(Plain)),
        ),
        (
            network_request(all_patterns()),
            http_request(all_http_patterns()),
            host_child_request(),
        ),
        config_request(),
        limits(3),
    )
        .prop_map(
            |(dirs, env, (stdio, clocks, random, exit), (network, http, host), config, limits)| {
                GrantRequest {
                    fs: dirs
                        .into_iter()
                        .map(|(source, guest, rights)| DirRequest::new(source, guest, rights))
                        .collect(),
                    env,
                    stdio,
                    clocks,
                    random,
                    exit,
                    network,
                    http,
                    config,
                    host,
                    limits: limits.into(),
                }
            },
        )
}

/// Which families `mix` takes from the arbitrary request: one, or any.
fn wild_families() -> impl Strategy<Value = u16> {
    prop_oneof![(0u16..11).prop_map(|i| 1 << i), any::<u16>()]
}

/// `within`, with the families whose bit is set in `mask` taken from `wild`: a
/// request granted more often than a wholly arbitrary one, yet arbitrary in any
/// family.
fn mix(within: GrantRequest, wild: &GrantRequest, mask: u16) -> GrantRequest {
    let mut r = within;
    let bit = |i: u16| mask & (1 << i) != 0;
    if bit(0) {
        r.fs = wild.fs.clone();
    }
    if bit(1) {
        r.env = wild.env.clone();
    }
    if bit(2) {
        r.stdio = wild.stdio.clone();
    }
    if bit(3) {
        r.clocks = wild.clocks.clone();
    }
    if bit(4) {
        r.random = wild.random.clone();
    }
    if bit(5) {
        r.exit = wild.exit.clone();
    }
    if bit(6) {
        r.network = wild.network.clone();
    }
    if bit(7) {
        r.config = wild.config.clone();
    }
    if bit(8) {
        r.limits = wild.limits.clone();
    }
    if bit(9) {
        r.host = wild.host.clone();
    }
    if bit(10) {
        r.http = wild.http.clone();
    }
    r
}

// ---------------------------------------------------------------------------
// Requests built inside a parent.
// ---------------------------------------------------------------------------

/// A request that stays inside `parent` by construction: a part of every family's
/// holding, and data modes (discarded output, frozen clocks, seeded random, literal
/// variables and values) whether the parent holds the capability or not.
fn request_within(parent: &Capabilities, seed: u64) -> GrantRequest {
    let mut bits = Bits(seed);
    let mut req = GrantRequest::default();

    // Directories: at or below one of the parent's, with a subset of its rights.
    for (i, d) in parent.fs.iter().enumerate() {
        if !bits.coin() {
            continue;
        }
        let rights = if bits.coin() {
            d.rights
        } else {
            d.rights
                .intersection(FsRights::from_bits_truncate(bits.next() as u8))
        };
        let mut from = d.guest.as_str().to_string();
        for _ in 0..bits.below(3) {
            from.push('/');
            from.push_str(bits.pick(&NAMES));
        }
        req.fs.push(DirRequest::new(
            DirSource::Parent(from),
            format!("/g{i}"),
            rights,
        ));
    }

    // Variables of the parent's, and literals of any name; arguments.
    for name in parent.env.vars.keys() {
        if bits.coin() {
            req.env.vars.push(VarRequest::inherit(name.clone()));
        }
    }
    for _ in 0..bits.below(3) {
        let name = *bits.pick(&ANY_VARS);
        if !req.env.vars.iter().any(|v| v.name == name) {
            let value = format!("lit-{}", bits.below(10));
            req.env.vars.push(VarRequest::literal(name, value));
        }
    }
    for _ in 0..bits.below(3) {
        req.env.args.push(format!("--arg{}", bits.below(10)));
    }

    // Stdio, clocks, random and exit: the parent's real modes, or data.
    req.stdio = StdioRequest {
        stdin: plain_within(&parent.stdio.stdin, &mut bits),
        stdout: output_within(&parent.stdio.stdout, &mut bits),
        stderr: output_within(&parent.stdio.stderr, &mut bits),
    };
    req.clocks = ClocksRequest {
        wall: clock_within(&parent.clocks.wall, &mut bits),
        monotonic: clock_within(&parent.clocks.monotonic, &mut bits),
    };
    req.random = RandomRequest {
        secure: random_within(&parent.random.secure, &mut bits),
        insecure: random_within(&parent.random.insecure, &mut bits),
    };
    req.exit = plain_within(&parent.exit, &mut bits);

    // Patterns, each covered by one of the parent's of the same key.
    for p in &parent.network.connect {
        if bits.coin() {
            let text = narrow(p, &mut bits).to_string();
            req.network.connect.push(PatternRequest::new(text));
        }
    }
    for p in &parent.network.listen {
        if bits.coin() {
            let text = narrow(p, &mut bits).to_string();
            req.network.listen.push(PatternRequest::new(text));
        }
    }

    // URL patterns, each covered by one of the parent's.
    for p in &parent.http.patterns {
        if bits.coin() {
            let text = narrow_url(p, &mut bits).to_string();
            req.http.patterns.push(PatternRequest::new(text));
        }
    }

    // Keys of the parent's, and values for any other key, each key once.
    for key in parent.config.keys() {
        if bits.coin() {
            req.config.push(ConfigRequest::inherit(key.clone()));
        }
    }
    for _ in 0..bits.below(3) {
        let key = *bits.pick(&ANY_CONFIG_KEYS);
        if !req.config.iter().any(|c| c.key == key) {
            let value = format!("v{}", bits.below(10));
            req.config.push(ConfigRequest::literal(key, value));
        }
    }

    // Host families the parent holds: all it holds, or scopes each covered by one
    // of its own under its rule.
    for (name, held) in &parent.host {
        if !bits.coin() {
            continue;
        }
        let scopes = match (&held.scopes, held.rule) {
            (_, ScopeRule::Switch) => Scopes::All,
            _ if bits.coin() => Scopes::All,
            (Scopes::All, _) => Scopes::Only(vec![bits.pick(&HOST_SCOPES).to_string()]),
            (Scopes::Only(theirs), ScopeRule::Prefix) => Scopes::Only(vec![format!(
                "{}{}",
                bits.pick(theirs),
                bits.pick(&["", "z", "b/"])
            )]),
            (Scopes::Only(theirs), ScopeRule::Custom(_)) => Scopes::Only(vec![format!(
                "{}{}",
                bits.pick(&["", "z", "a/"]),
                bits.pick(theirs)
            )]),
            (Scopes::Only(theirs), _) => Scopes::Only(vec![bits.pick(theirs).clone()]),
        };
        req.host.push(HostRequest {
            family: name.clone(),
            scopes,
            rule: Some(held.rule),
            span: None,
        });
    }

    // Limits no larger than the parent's; any where it has none; or the default.
    for kind in LimitKind::ALL {
        let asked = match parent.limits.get(kind) {
            Some(m) if bits.coin() => Some(m.checked_add(1).map_or(bits.next(), |n| {
                let r = bits.next();
                r % n
            })),
            None if bits.coin() => Some(bits.next() >> 20),
            _ => None,
        };
        req.limits.values.set(kind, asked);
    }
    req
}

fn held<M>(mode: Option<M>) -> Switch<M> {
    Switch {
        held: mode,
        span: None,
    }
}

fn plain_within(parent: &Option<Plain>, bits: &mut Bits) -> Switch<Plain> {
    held((parent.is_some() && bits.coin()).then_some(Plain))
}

fn output_within(parent: &Option<OutputMode>, bits: &mut Bits) -> Switch<OutputMode> {
    let mut choices = vec![None, Some(OutputMode::Discard)];
    if matches!(parent, Some(OutputMode::Terminal | OutputMode::Prefixed)) {
        choices.extend([Some(OutputMode::Terminal), Some(OutputMode::Prefixed)]);
    }
    held(bits.pick(&choices).clone())
}

fn clock_within(parent: &Option<ClockMode>, bits: &mut Bits) -> Switch<ClockMode> {
    let mut choices = vec![None, Some(ClockMode::Frozen(bits.next()))];
    if *parent == Some(ClockMode::Real) {
        choices.push(Some(ClockMode::Real));
    }
    held(*bits.pick(&choices))
}

fn random_within(parent: &Option<RandomMode>, bits: &mut Bits) -> Switch<RandomMode> {
    let mut choices = vec![None, Some(RandomMode::Seeded(bits.next() >> 1))];
    if *parent == Some(RandomMode::Real) {
        choices.push(Some(RandomMode::Real));
    }
    held(*bits.pick(&choices))
}

/// A pattern `p` covers: fewer protocols, a narrower port range, a host below.
fn narrow(p: &NetPattern, bits: &mut Bits) -> NetPattern {
    let protocols = if p.protocols == Protocols::BOTH {
        *bits.pick(&[Protocols::BOTH, Protocols::TCP, Protocols::UDP])
    } else {
        p.protocols
    };
    let ports = if bits.coin() {
        p.ports
    } else {
        let (lo, hi) = (u64::from(p.ports.lo()), u64::from(p.ports.hi()));
        let a = lo + bits.below(hi - lo + 1);
        let b = a + bits.below(hi - a + 1);
        PortRange::new(a as u16, b as u16).unwrap()
    };
    NetPattern {
        protocols,
        host: narrow_host(&p.host, bits),
        ports,
    }
}

fn narrow_host(host: &HostPattern, bits: &mut Bits) -> HostPattern {
    match host {
        HostPattern::Any => {
            if bits.below(3) == 0 {
                HostPattern::Any
            } else {
                NetPattern::parse(bits.pick(PATTERNS)).unwrap().host
            }
        }
        HostPattern::Name(n) => HostPattern::Name(n.clone()),
        HostPattern::Suffix(s) => {
            let label = bits.pick(&NAMES);
            match bits.below(3) {
                0 => HostPattern::Suffix(s.clone()),
                1 => HostPattern::Name(format!("{label}.{s}")),
                _ => HostPattern::Suffix(format!("{label}.{s}")),
            }
        }
        HostPattern::Ip(a) => {
            if bits.coin() {
                HostPattern::Ip(*a)
            } else {
                HostPattern::net(*a, max_prefix(*a)).unwrap()
            }
        }
        HostPattern::Net(a, len) => {
            let inside = with_host_bits(*a, *len, bits.next());
            if bits.coin() {
                HostPattern::Ip(inside)
            } else {
                let max = max_prefix(*a);
                let longer = len + bits.below(u64::from(max - len) + 1) as u8;
                HostPattern::net(inside, longer).unwrap()
            }
        }
    }
}

/// A URL pattern `p` covers: a narrower port range, a host below (`*` stays `*`,
/// or becomes a name, a suffix or one public address, never a non-public address
/// or a network, which `*` does not name), a longer path prefix.
fn narrow_url(p: &UrlPattern, bits: &mut Bits) -> UrlPattern {
    let ports = if bits.coin() {
        p.ports
    } else {
        let (lo, hi) = (u64::from(p.ports.lo()), u64::from(p.ports.hi()));
        let a = lo + bits.below(hi - lo + 1);
        let b = a + bits.below(hi - a + 1);
        PortRange::new(a as u16, b as u16).unwrap()
    };
    let host = match &p.host {
        HostPattern::Any => bits
            .pick(&[
                HostPattern::Any,
                HostPattern::Name("api.example.com".into()),
                HostPattern::Suffix("example.com".into()),
                HostPattern::Ip(IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))),
            ])
            .clone(),
        host => narrow_host(host, bits),
    };
    let path = match (&p.path, bits.below(3)) {
        (path, 0) => path.clone(),
        (None, _) => Some(bits.pick(&["/v1", "/v1/", "/a/b;c"]).to_string()),
        (Some(path), _) if path.ends_with('/') => Some(format!("{path}{}", bits.pick(&NAMES))),
        (Some(path), _) => Some(format!("{path}/{}", bits.pick(&NAMES))),
    };
    UrlPattern {
        scheme: p.scheme,
        host,
        ports,
        path,
    }
}

/// A pattern near one of `held`: narrowed from it, then perhaps widened by a port
/// or to both protocols, so that it may or may not be covered.
fn near(held: &[NetPattern], seed: u64) -> Option<String> {
    if held.is_empty() {
        return None;
    }
    let mut bits = Bits(seed);
    let mut p = narrow(bits.pick(held), &mut bits);
    let (lo, hi) = (p.ports.lo(), p.ports.hi());
    match bits.below(4) {
        0 => p.protocols = Protocols::BOTH,
        1 => p.ports = PortRange::new(lo.saturating_sub(1), hi).unwrap(),
        2 => p.ports = PortRange::new(lo, hi.saturating_add(1)).unwrap(),
        _ => {}
    }
    Some(p.to_string())
}

/// A URL pattern near one of `held`: narrowed from it, then perhaps widened (a
/// port more, the path prefix dropped, the other scheme, any host), so that it may
/// or may not be covered.
fn near_url(held: &[UrlPattern], seed: u64) -> Option<String> {
    if held.is_empty() {
        return None;
    }
    let mut bits = Bits(seed);
    let mut p = narrow_url(bits.pick(held), &mut bits);
    let (lo, hi) = (p.ports.lo(), p.ports.hi());
    match bits.below(6) {
        0 => p.ports = PortRange::new(lo, hi.saturating_add(1)).unwrap(),
        1 => p.path = None,
        2 => {
            p.scheme = match p.scheme {
                Scheme::Http => Scheme::Https,
                Scheme::Https => Scheme::Http,
            }
        }
        3 => p.host = HostPattern::Any,
        _ => {}
    }
    Some(p.to_string())
}

fn max_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// An address of the network `net/len`: its host bits set from `r`.
fn with_host_bits(net: IpAddr, len: u8, r: u64) -> IpAddr {
    match net {
        IpAddr::V4(a) => {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) | (r as u32 & host)))
        }
        IpAddr::V6(a) => {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            let r = (u128::from(r) << 64) | u128::from(r.rotate_left(17));
            IpAddr::V6(Ipv6Addr::from(u128::from(a) | (r & host)))
        }
    }
}

// ---------------------------------------------------------------------------
// Switches by key.
// ---------------------------------------------------------------------------

/// Whether `caps` holds `key` (one of `SWITCHES`), in any mode.
fn holds(caps: &Capabilities, key: &str) -> bool {
    match key {
        "stdin" => caps.stdio.stdin.is_some(),
        "stdout" => caps.stdio.stdout.is_some(),
        "stderr" => caps.stdio.stderr.is_some(),
        "wall-clock" => caps.clocks.wall.is_some(),
        "monotonic-clock" => caps.clocks.monotonic.is_some(),
        "random" => caps.random.secure.is_some(),
        "insecure-random" => caps.random.insecure.is_some(),
        "exit" => caps.exit.is_some(),
        other => panic!("not a switch: {other}"),
    }
}

/// A request for `key` (one of `SWITCHES`) in its real mode, and nothing else.
fn ask_real(key: &str) -> GrantRequest {
    let mut r = GrantRequest::default();
    match key {
        "stdin" => r.stdio.stdin = Switch::held(Plain),
        "stdout" => r.stdio.stdout = Switch::held(OutputMode::Terminal),
        "stderr" => r.stdio.stderr = Switch::held(OutputMode::Terminal),
        "wall-clock" => r.clocks.wall = Switch::held(ClockMode::Real),
        "monotonic-clock" => r.clocks.monotonic = Switch::held(ClockMode::Real),
        "random" => r.random.secure = Switch::held(RandomMode::Real),
        "insecure-random" => r.random.insecure = Switch::held(RandomMode::Real),
        "exit" => r.exit = Switch::held(Plain),
        other => panic!("not a switch: {other}"),
    }
    r
}

fn output_of<'a>(stdio: &'a mut StdioRequest, key: &str) -> &'a mut Switch<OutputMode> {
    if key == "stdout" {
        &mut stdio.stdout
    } else {
        &mut stdio.stderr
    }
}

fn output_held<'a>(stdio: &'a StdioHolding, key: &str) -> &'a Option<OutputMode> {
    if key == "stdout" {
        &stdio.stdout
    } else {
        &stdio.stderr
    }
}

/// Exactly one violation, about `item`.
fn refused_once(
    result: Result<Capabilities, Vec<Violation>>,
    item: GrantItem,
) -> Result<Vec<Violation>, TestCaseError> {
    match result {
        Ok(child) => Err(TestCaseError::fail(format!(
            "{item} was granted: {child:#?}"
        ))),
        Err(err) => {
            prop_assert_eq!(err.len(), 1, "{:?}", err);
            prop_assert_eq!(&err[0].item, &item, "{}", err[0]);
            Ok(err)
        }
    }
}

// ---------------------------------------------------------------------------
// The manifest syntax of a request.
// ---------------------------------------------------------------------------

fn integer(n: i64) -> GrantValue {
    GrantValue::new(ValueKind::Integer(n))
}

fn rights_names(rights: FsRights) -> Vec<GrantValue> {
    [
        (FsRights::READ, "read"),
        (FsRights::WRITE, "write"),
        (FsRights::CREATE, "create"),
        (FsRights::REMOVE, "remove"),
        (FsRights::RENAME, "rename"),
        (FsRights::LIST, "list"),
        (FsRights::METADATA, "metadata"),
    ]
    .into_iter()
    .filter(|(bit, _)| rights.contains(*bit))
    .map(|(_, name)| GrantValue::text(name))
    .collect()
}

fn output_value(mode: &Option<OutputMode>) -> GrantValue {
    match mode {
        None => GrantValue::bool(false),
        Some(OutputMode::Terminal) => GrantValue::bool(true),
        Some(OutputMode::Prefixed) => GrantValue::text("prefix"),
        Some(OutputMode::Discard) => GrantValue::text("discard"),
        Some(OutputMode::File(p)) => {
            GrantValue::table([("file", GrantValue::text(p.to_str().unwrap()))])
        }
    }
}

fn random_value(mode: &Option<RandomMode>) -> GrantValue {
    match mode {
        None => GrantValue::bool(false),
        Some(RandomMode::Real) => GrantValue::bool(true),
        Some(RandomMode::Seeded(seed)) => {
            GrantValue::table([("seed", integer(i64::try_from(*seed).unwrap()))])
        }
    }
}

/// Each family's part of `req` as a manifest writes it, key by key. A key may come
/// more than once: `config` for each run of inherited keys or of values (one
/// manifest writes one of the two; `parse` appends, as it does for every list).
fn render(req: &GrantRequest) -> Vec<(&'static str, GrantValue)> {
    fn text(t: impl Into<String>) -> GrantValue {
        GrantValue::text(t)
    }
    let mut out = Vec::new();

    // fs = [{ from = "/data", guest = "/in", rights = "read-only" }, ...]
    let dirs = req.fs.iter().enumerate().map(|(i, d)| {
        let source = match &d.source {
            DirSource::Host(h) => ("host", text(h.to_str().unwrap())),
            DirSource::Parent(p) => ("from", text(p.as_str())),
        };
        // `rights = "read+create"`, or a list of names.
        let rights = if i % 2 == 0 {
            text(d.rights.to_string())
        } else {
            GrantValue::list(rights_names(d.rights))
        };
        GrantValue::table([
            source,
            ("guest", text(d.guest.as_str())),
            ("rights", rights),
        ])
    });
    out.push(("fs", GrantValue::list(dirs.collect())));

    // env = ["HOME", "MODE=fast"], args = ["--verbose"]
    let vars = req.env.vars.iter().map(|v| match &v.literal {
        None => text(v.name.as_str()),
        Some(value) => text(format!("{}={value}", v.name)),
    });
    out.push(("env", GrantValue::list(vars.collect())));
    let args = req.env.args.iter().map(|a| text(a.as_str()));
    out.push(("args", GrantValue::list(args.collect())));

    // stdin = true, stdout = "discard", stderr = { file = "/var/log/x.log" }
    out.push(("stdin", GrantValue::bool(req.stdio.stdin.held.is_some())));
    out.push(("stdout", output_value(&req.stdio.stdout.held)));
    out.push(("stderr", output_value(&req.stdio.stderr.held)));

    // wall-clock = "2024-01-01T00:00:00Z", monotonic-clock = "frozen"
    out.push((
        "wall-clock",
        match req.clocks.wall.held {
            None => GrantValue::bool(false),
            Some(ClockMode::Real) => GrantValue::bool(true),
            Some(ClockMode::Frozen(ns)) => text(format_instant(ns)),
        },
    ));
    out.push((
        "monotonic-clock",
        match req.clocks.monotonic.held {
            None => GrantValue::bool(false),
            Some(ClockMode::Real) => GrantValue::bool(true),
            Some(ClockMode::Frozen(_)) => text("frozen"),
        },
    ));

    // random = { seed = 42 }, insecure-random = true
    out.push(("random", random_value(&req.random.secure.held)));
    out.push(("insecure-random", random_value(&req.random.insecure.held)));

    out.push(("exit", GrantValue::bool(req.exit.held.is_some())));

    // network = ["api.example.com:443"], listen = ["tcp:127.0.0.1:8080"]
    let texts = |ps: &[PatternRequest]| {
        GrantValue::list(ps.iter().map(|p| text(p.text.as_str())).collect())
    };
    out.push(("network", texts(&req.network.connect)));
    out.push(("listen", texts(&req.network.listen)));

    // http = ["https://api.example.com/v1/"]
    out.push(("http", texts(&req.http.patterns)));

    // config = ["LOG_LEVEL"] or config = { LOG_LEVEL = "debug" }
    if req.config.is_empty() {
        out.push(("config", GrantValue::list(vec![])));
    }
    for run in req
        .config
        .chunk_by(|a, b| a.literal.is_some() == b.literal.is_some())
    {
        let value = if run[0].literal.is_some() {
            GrantValue::table(
                run.iter()
                    .map(|c| (c.key.as_str(), text(c.literal.clone().unwrap()))),
            )
        } else {
            GrantValue::list(run.iter().map(|c| text(c.key.as_str())).collect())
        };
        out.push(("config", value));
    }

    // host = { kv = ["users/"], mail = true }
    if !req.host.is_empty() {
        out.push((
            "host",
            GrantValue::table(req.host.iter().map(|h| {
                let value = match &h.scopes {
                    Scopes::All => GrantValue::bool(true),
                    Scopes::Only(scopes) => {
                        GrantValue::list(scopes.iter().map(|s| text(s.as_str())).collect())
                    }
                };
                (h.family.as_str(), value)
            })),
        ));
    }

    // memory = "64 MiB", timeout = "1.5s", handles = 100
    for (kind, value) in req.limits.values.iter() {
        let Some(n) = value else { continue };
        let value = match kind {
            LimitKind::Memory
            | LimitKind::Output
            | LimitKind::Timeout
            | LimitKind::HttpBody
            | LimitKind::HttpTimeout => text(kind.format(n)),
            _ => i64::try_from(n).map_or_else(|_| text(kind.format(n)), integer),
        };
        out.push((kind.key(), value));
    }
    out
}

/// What no manifest can write, made writable: a directory with no rights at all
/// (`FsRights` prints them `none`, which is no name of an operation), a
/// monotonic clock frozen elsewhere than at 0 (`"frozen"` freezes it at 0), and a
/// seed beyond TOML's signed integers.
fn writable(mut req: GrantRequest) -> GrantRequest {
    for d in &mut req.fs {
        if d.rights == FsRights::NONE {
            d.rights = FsRights::READ;
        }
    }
    if let Some(ClockMode::Frozen(ns)) = &mut req.clocks.monotonic.held {
        *ns = 0;
    }
    for r in [&mut req.random.secure, &mut req.random.insecure] {
        if let Some(RandomMode::Seeded(seed)) = &mut r.held {
            *seed &= i64::MAX as u64;
        }
    }
    // A table names each host family once, and no rule: the runtime resolves it.
    let mut seen = Vec::new();
    req.host.retain(|h| {
        let first = !seen.contains(&h.family);
        seen.push(h.family.clone());
        first
    });
    for h in &mut req.host {
        h.rule = None;
    }
    req
}

/// The next span of a pretend manifest.
fn next_span(at: &mut usize) -> Option<Span> {
    *at += 2;
    Some(*at - 2..*at - 1)
}

/// `value` as if written in a manifest: every value and key with a span.
fn spanned(mut value: GrantValue, at: &mut usize) -> GrantValue {
    value.span = next_span(at);
    value.kind = match value.kind {
        ValueKind::List(items) => {
            ValueKind::List(items.into_iter().map(|v| spanned(v, at)).collect())
        }
        ValueKind::Table(entries) => ValueKind::Table(
            entries
                .into_iter()
                .map(|(mut key, v)| {
                    key.span = next_span(at);
                    (key, spanned(v, at))
                })
                .collect(),
        ),
        other => other,
    };
    value
}

/// Where each grant of `req` was written (the limits that are set only).
fn spans(req: &mut GrantRequest) -> Vec<&mut Option<Span>> {
    let mut out: Vec<&mut Option<Span>> = Vec::new();
    out.extend(req.fs.iter_mut().map(|d| &mut d.span));
    out.extend(req.env.vars.iter_mut().map(|v| &mut v.span));
    out.extend([
        &mut req.stdio.stdin.span,
        &mut req.stdio.stdout.span,
        &mut req.stdio.stderr.span,
        &mut req.clocks.wall.span,
        &mut req.clocks.monotonic.span,
        &mut req.random.secure.span,
        &mut req.random.insecure.span,
        &mut req.exit.span,
    ]);
    let network = &mut req.network;
    out.extend(
        network
            .connect
            .iter_mut()
            .chain(network.listen.iter_mut())
            .map(|p| &mut p.span),
    );
    out.extend(req.http.patterns.iter_mut().map(|p| &mut p.span));
    out.extend(req.config.iter_mut().map(|c| &mut c.span));
    out.extend(req.host.iter_mut().map(|h| &mut h.span));
    let values = req.limits.values;
    out.extend(
        req.limits
            .spans
            .iter_mut()
            .zip(LimitKind::ALL)
            .filter(|(_, kind)| values.get(*kind).is_some())
            .map(|(span, _)| span),
    );
    out
}

// ---------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn attenuation_never_exceeds_the_parent(parent in holder(), req in child_request()) {
        if let Ok(child) = parent.attenuate(&req) {
            prop_assert!(child.within(&parent), "{child:#?}\nnot within\n{parent:#?}");
        }
    }

    /// The same, with requests granted more often: some families built inside the
    /// parent, the others arbitrary.
    #[test]
    fn attenuation_of_partly_arbitrary_requests_never_exceeds_the_parent(
        parent in holder(),
        wild in child_request(),
        seed in any::<u64>(),
        mask in wild_families(),
    ) {
        let req = mix(request_within(&parent, seed), &wild, mask);
        if let Ok(child) = parent.attenuate(&req) {
            prop_assert!(child.within(&parent), "{child:#?}\nnot within\n{parent:#?}");
        }
    }

    #[test]
    fn within_is_reflexive(caps in holder()) {
        prop_assert!(caps.within(&caps), "{caps:#?}");
    }

    #[test]
    fn a_request_built_inside_the_parent_is_granted(parent in holder(), seed in any::<u64>()) {
        let req = request_within(&parent, seed);
        let child = parent.attenuate(&req);
        prop_assert!(child.is_ok(), "{:?}\n{req:#?}", child.err());
    }

    #[test]
    fn no_depth_ever_exceeds_the_root(
        root in root(),
        levels in prop::collection::vec((any::<u64>(), child_request(), wild_families()), 3..6),
    ) {
        // Each level asks for a partly arbitrary request, or if that is refused, one
        // built inside its parent; every level that is granted must be within its
        // parent and, by transitivity, within the root and every ancestor.
        let mut chain = vec![root.clone()];
        for (seed, wild, mask) in &levels {
            let parent = chain.last().unwrap().clone();
            let within = request_within(&parent, *seed);
            for req in [mix(within.clone(), wild, *mask), within] {
                if let Ok(child) = parent.attenuate(&req) {
                    prop_assert!(child.within(&parent));
                    prop_assert!(child.within(&root), "{child:#?}\nnot within the root\n{root:#?}");
                    chain.push(child);
                    break;
                }
            }
        }
        prop_assert_eq!(chain.len(), levels.len() + 1);
        for (i, a) in chain.iter().enumerate() {
            for b in &chain[..i] {
                prop_assert!(a.within(b), "level {} exceeds an ancestor", i);
            }
        }
    }

    #[test]
    fn within_is_transitive(a in holder(), s1 in any::<u64>(), s2 in any::<u64>()) {
        let b = a.attenuate(&request_within(&a, s1)).unwrap();
        let c = b.attenuate(&request_within(&b, s2)).unwrap();
        prop_assert!(c.within(&b) && b.within(&a));
        prop_assert!(c.within(&a), "{c:#?}\nnot within\n{a:#?}");
    }

    #[test]
    fn a_flag_the_parent_lacks_is_refused(parent in holder(), key in prop::sample::select(SWITCHES.to_vec())) {
        prop_assume!(!holds(&parent, key));
        refused_once(parent.attenuate(&ask_real(key)), GrantItem::key(key))?;
    }

    /// Discarded output is data, any nanoprocess may be given it; the terminal
    /// (prefixed or not) only from a parent that has the terminal; a host file
    /// never.
    #[test]
    fn output_modes_attenuate_as_documented(
        parent in holder(),
        key in prop::sample::select(vec!["stdout", "stderr"]),
        asked in output_mode(),
    ) {
        let terminal = |m: &OutputMode| matches!(m, OutputMode::Terminal | OutputMode::Prefixed);
        let theirs = output_held(&parent.stdio, key);
        let granted = asked == OutputMode::Discard
            || (terminal(&asked) && theirs.as_ref().is_some_and(terminal));
        let mut req = GrantRequest::default();
        *output_of(&mut req.stdio, key) = Switch::held(asked.clone());
        let result = parent.attenuate(&req);
        if granted {
            let child = result.unwrap();
            prop_assert_eq!(output_held(&child.stdio, key), &Some(asked));
        } else {
            let err = refused_once(result, GrantItem::key(key))?;
            if let (OutputMode::File(_), Some(_)) = (&asked, theirs) {
                prop_assert!(err[0].reason.contains("only the root"), "{}", err[0]);
            }
        }
    }

    /// A frozen clock is data; a real one only from a parent with the real one.
    #[test]
    fn clock_modes_attenuate_as_documented(
        parent in holder(),
        wall in any::<bool>(),
        asked in clock_mode(),
    ) {
        let (key, theirs) = if wall {
            ("wall-clock", parent.clocks.wall)
        } else {
            ("monotonic-clock", parent.clocks.monotonic)
        };
        let granted = matches!(asked, ClockMode::Frozen(_)) || theirs == Some(ClockMode::Real);
        let mut req = GrantRequest::default();
        if wall {
            req.clocks.wall = Switch::held(asked);
        } else {
            req.clocks.monotonic = Switch::held(asked);
        }
        let result = parent.attenuate(&req);
        if granted {
            let child = result.unwrap();
            let mine = if wall { child.clocks.wall } else { child.clocks.monotonic };
            prop_assert_eq!(mine, Some(asked));
        } else {
            let err = refused_once(result, GrantItem::key(key))?;
            if theirs.is_some() {
                prop_assert!(err[0].reason.contains("not the real one"), "{}", err[0]);
            }
        }
    }

    /// Seeded random is data; real random only from a parent with real random.
    #[test]
    fn random_modes_attenuate_as_documented(
        parent in holder(),
        secure in any::<bool>(),
        asked in random_mode(),
    ) {
        let (key, theirs) = if secure {
            ("random", parent.random.secure)
        } else {
            ("insecure-random", parent.random.insecure)
        };
        let granted = matches!(asked, RandomMode::Seeded(_)) || theirs == Some(RandomMode::Real);
        let mut req = GrantRequest::default();
        if secure {
            req.random.secure = Switch::held(asked);
        } else {
            req.random.insecure = Switch::held(asked);
        }
        let result = parent.attenuate(&req);
        if granted {
            let child = result.unwrap();
            let mine = if secure { child.random.secure } else { child.random.insecure };
            prop_assert_eq!(mine, Some(asked));
        } else {
            let err = refused_once(result, GrantItem::key(key))?;
            if theirs.is_some() {
                prop_assert!(err[0].reason.contains("not the real one"), "{}", err[0]);
            }
        }
    }

    #[test]
    fn an_env_var_is_passed_only_when_held_and_a_literal_always(
        parent in holder(),
        name in prop::sample::select(ANY_VARS.to_vec()),
        value in "[a-z]{0,4}",
    ) {
        let ask = |var: VarRequest| GrantRequest {
            env: EnvRequest { vars: vec![var], args: vec![] },
            ..Default::default()
        };
        let result = parent.attenuate(&ask(VarRequest::inherit(name)));
        match parent.env.vars.get(name) {
            // The parent's value, and its source: a literal passed on is still data.
            Some(theirs) => prop_assert_eq!(&result.unwrap().env.vars[name], theirs),
            None => {
                let err = refused_once(result, GrantItem::at("env", 0))?;
                prop_assert!(err[0].reason.contains(name), "{}", err[0]);
            }
        }
        let child = parent.attenuate(&ask(VarRequest::literal(name, value.clone()))).unwrap();
        prop_assert_eq!(
            &child.env.vars[name],
            &EnvVar { value, source: EnvSource::Literal }
        );
    }

    #[test]
    fn a_config_key_is_passed_only_when_held_and_a_value_always(
        parent in holder(),
        key in prop::sample::select(ANY_CONFIG_KEYS.to_vec()),
        value in "[a-z]{0,4}",
    ) {
        let ask = |c: ConfigRequest| GrantRequest { config: vec![c], ..Default::default() };
        let result = parent.attenuate(&ask(ConfigRequest::inherit(key)));
        match parent.config.get(key) {
            // The parent's value, and whether it is the user's or data.
            Some(theirs) => prop_assert_eq!(&result.unwrap().config[key], theirs),
            None => {
                let err = refused_once(result, GrantItem::at("config", 0))?;
                prop_assert!(err[0].reason.contains(key), "{}", err[0]);
            }
        }
        let child = parent.attenuate(&ask(ConfigRequest::literal(key, value.clone()))).unwrap();
        prop_assert_eq!(
            &child.config[key],
            &ConfigValue { value, inherited: false }
        );
    }

    /// A pattern is granted when one of the parent's patterns of the same key covers
    /// it; a malformed one never. The pattern is one of the pool, or one near a
    /// parent's.
    #[test]
    fn a_pattern_no_parent_pattern_covers_is_refused(
        parent in holder(),
        text in prop::sample::select(all_patterns()),
        near_seed in prop::option::of(any::<u64>()),
        listen in any::<bool>(),
    ) {
        let (key, theirs) = if listen {
            ("listen", &parent.network.listen)
        } else {
            ("network", &parent.network.connect)
        };
        let text = near_seed
            .and_then(|seed| near(theirs, seed))
            .unwrap_or_else(|| text.to_string());
        let mut req = GrantRequest::default();
        let asked = vec![PatternRequest::new(text.as_str())];
        if listen {
            req.network.listen = asked;
        } else {
            req.network.connect = asked;
        }
        let result = parent.attenuate(&req);
        match NetPattern::parse(&text) {
            Ok(p) if covered_by_any(&p, theirs) => {
                let child = result.unwrap();
                let (mine, other) = if listen {
                    (&child.network.listen, &child.network.connect)
                } else {
                    (&child.network.connect, &child.network.listen)
                };
                prop_assert_eq!(mine, &vec![p]);
                prop_assert!(other.is_empty());
            }
            Ok(_) => {
                let err = refused_once(result, GrantItem::at(key, 0))?;
                prop_assert!(err[0].reason.contains("no pattern of the parent covers"), "{}", err[0]);
            }
            Err(e) => {
                let err = refused_once(result, GrantItem::at(key, 0))?;
                prop_assert_eq!(&err[0].reason, &e);
            }
        }
    }

    /// The same for `http`: a URL pattern is granted exactly when one pattern of
    /// the parent's covers it, and refused saying so otherwise.
    #[test]
    fn an_http_pattern_no_parent_pattern_covers_is_refused(
        parent in holder(),
        text in prop::sample::select(all_http_patterns()),
        near_seed in prop::option::of(any::<u64>()),
    ) {
        let theirs = &parent.http.patterns;
        let text = near_seed
            .and_then(|seed| near_url(theirs, seed))
            .unwrap_or_else(|| text.to_string());
        let mut req = GrantRequest::default();
        req.http.patterns = vec![PatternRequest::new(text.as_str())];
        let result = parent.attenuate(&req);
        match UrlPattern::parse(&text) {
            Ok(p) if theirs.iter().any(|q| q.covers(&p)) => {
                prop_assert_eq!(&result.unwrap().http.patterns, &vec![p]);
            }
            Ok(_) => {
                let err = refused_once(result, GrantItem::at("http", 0))?;
                prop_assert!(err[0].reason.contains("no http pattern of the parent covers"), "{}", err[0]);
            }
            Err(e) => {
                let err = refused_once(result, GrantItem::at("http", 0))?;
                prop_assert_eq!(&err[0].reason, &e);
            }
        }
    }

    /// Whatever request a child may send, and wherever it may connect for it, its
    /// parent may: at every depth, on URLs and addresses of every kind.
    #[test]
    fn a_child_sends_no_request_its_parent_may_not(
        parent in holder(),
        seed in any::<u64>(),
        wild in prop::collection::vec(prop::sample::select(all_http_patterns()), 0..6),
    ) {
        // Inside the parent by construction, and each pool pattern the parent grants.
        let mut req = request_within(&parent, seed);
        for text in wild {
            let mut one = GrantRequest::default();
            one.http.patterns.push(PatternRequest::new(text));
            if parent.attenuate(&one).is_ok() {
                req.http.patterns.push(PatternRequest::new(text));
            }
        }
        let child = parent.attenuate(&req).expect("each pattern is granted alone");
        for host in ["api.example.com", "a.example.com", "example.com", "localhost", "127.0.0.1", "[::1]", "10.1.2.3", "93.184.216.34", "[fd00::1]"] {
            for scheme in ["http", "https"] {
                for port in ["", ":8080", ":5432", ":443"] {
                    for path in ["/", "/v1", "/v1/x", "/v10", "/api/x", "/v1/../x", "/a/b;c/d"] {
                        let url = RequestUrl::parse(scheme, &format!("{host}{port}"), path).unwrap();
                        if child.http.check(&url).is_ok() {
                            prop_assert!(parent.http.check(&url).is_ok(), "{}", url);
                        }
                        for addr in ["127.0.0.1", "10.1.2.3", "93.184.216.34", "::1", "fd00::1"] {
                            let addr: IpAddr = addr.parse().unwrap();
                            if child.http.may_connect(&url, addr).is_ok() {
                                prop_assert!(parent.http.may_connect(&url, addr).is_ok(), "{} {}", url, addr);
                            }
                        }
                    }
                }
            }
        }
    }

    /// A directory is granted when the parent's deepest directory containing it
    /// holds every right asked for.
    #[test]
    fn a_directory_outside_the_parent_or_with_more_rights_is_refused(
        parent in holder(),
        from in from_path(),
        rights in rights(),
    ) {
        let req = GrantRequest {
            fs: vec![DirRequest::new(DirSource::Parent(from.clone()), "/x", rights)],
            ..Default::default()
        };
        let result = parent.attenuate(&req);
        let containing = GuestPath::parse(&from).ok().and_then(|from| {
            parent
                .fs
                .iter()
                .filter(|d| from.strip_prefix(&d.guest).is_some())
                .max_by_key(|d| d.guest.depth())
        });
        match containing {
            Some(d) if d.rights.contains(rights) => {
                let child = result.unwrap();
                prop_assert!(child.fs[0].host.starts_with(&d.host));
                prop_assert_eq!(child.fs[0].rights, rights);
            }
            _ => {
                refused_once(result, GrantItem::at("fs", 0))?;
            }
        }
    }

    #[test]
    fn a_larger_limit_than_the_parent_is_refused(
        parent in holder(),
        kind in prop::sample::select(LimitKind::ALL.to_vec()),
        extra in 1u64..1000,
    ) {
        let Some(limit) = parent.limits.get(kind) else { return Ok(()); };
        let req = GrantRequest {
            limits: Limits::UNLIMITED.with(kind, limit + extra).into(),
            ..Default::default()
        };
        refused_once(parent.attenuate(&req), GrantItem::key(kind.key()))?;
    }

    #[test]
    fn an_unset_child_limit_is_the_default_capped_by_the_parent(parent in holder()) {
        let child = parent.attenuate(&GrantRequest::default()).unwrap();
        for kind in LimitKind::ALL {
            let expected = match (kind.child_default(), parent.limits.get(kind)) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, None) => d,
                (None, p) => p,
            };
            prop_assert_eq!(child.limits.get(kind), expected, "{}", kind);
        }
    }

    /// Every request reads back from its manifest syntax, with where each grant was
    /// written.
    #[test]
    fn grants_read_back_from_their_manifest_syntax(
        req in prop_oneof![root_request(), child_request()],
    ) {
        let req = writable(req);
        let mut parsed = GrantRequest::default();
        let mut at = 0;
        for (key, value) in render(&req) {
            let value = spanned(value, &mut at);
            if let Err(e) = parsed.parse(key, &value) {
                return Err(TestCaseError::fail(format!("{key} = {value:?}: {e:?}")));
            }
        }
        for span in spans(&mut parsed) {
            prop_assert!(span.is_some());
            *span = None;
        }
        prop_assert_eq!(parsed, req);
    }

    #[test]
    fn an_unknown_key_is_refused_with_the_known_ones(key in "[a-z][a-z_-]{0,12}") {
        prop_assume!(!known_keys().contains(&key.as_str()));
        let err = GrantRequest::default()
            .parse(&key, &GrantValue::bool(true))
            .unwrap_err();
        prop_assert_eq!(err.len(), 1);
        let message = &err[0].message;
        prop_assert!(message.contains(&format!("unknown field `{key}`")), "{}", message);
        for known in known_keys() {
            prop_assert!(message.contains(&format!("`{known}`")), "{} lacks {}", message, known);
        }
    }

    /// `check` describes every family, and names configuration keys, never values.
    #[test]
    fn every_family_describes_itself(caps in holder()) {
        let lines = caps.summary_lines();
        let labels: Vec<&str> = lines.iter().map(|(label, _)| *label).collect();
        for label in ["fs", "env", "stdio", "clocks", "random", "network", "http", "limits"] {
            prop_assert!(labels.contains(&label), "{:?}", labels);
        }
        prop_assert_eq!(labels.contains(&"exit"), caps.exit.is_some());
        let config = lines.iter().find(|(label, _)| *label == "config").map(|(_, l)| l.clone());
        let keys = caps.config.keys().cloned().collect::<Vec<_>>().join(", ");
        prop_assert_eq!(config, (!caps.config.is_empty()).then_some(keys));
    }

    #[test]
    fn instants_read_back_exactly(ns in any::<u64>()) {
        prop_assert_eq!(parse_instant(&format_instant(ns)), Some(ns));
    }

    #[test]
    fn patterns_print_as_they_parse(text in prop::sample::select(PATTERNS.to_vec()), seed in any::<u64>()) {
        let p = narrow(&NetPattern::parse(text).unwrap(), &mut Bits(seed));
        prop_assert_eq!(NetPattern::parse(&p.to_string()), Ok(p));
    }

    #[test]
    fn limits_round_trip_through_their_syntax(kind in prop::sample::select(LimitKind::ALL.to_vec()), n in any::<u32>()) {
        let n = n as u64;
        prop_assert_eq!(kind.parse(&kind.format(n)).unwrap(), n);
    }

    #[test]
    fn guest_paths_normalise_idempotently(p in "(/[a-z.]{0,3}){0,5}") {
        if let Ok(g) = GuestPath::parse(&p) {
            prop_assert_eq!(GuestPath::parse(g.as_str()).unwrap(), g.clone());
            prop_assert!(!g.as_str().split('/').any(|c| c == ".." || c == "."));
        }
    }

    #[test]
    fn bytes_round_trip(n in any::<u32>()) {
        let n = n as u64;
        prop_assert_eq!(parse_bytes(&format_bytes(n)).unwrap(), n);
    }
}

// ---------------------------------------------------------------------------
// Examples.
// ---------------------------------------------------------------------------

fn dir(source: DirSource, guest: &str, rights: FsRights) -> DirRequest {
    DirRequest::new(source, guest, rights)
}

fn root_with_photos() -> Capabilities {
    let req = GrantRequest {
        fs: vec![dir(
            DirSource::Host("/home/u/photos".into()),
            "/photos",
            FsRights::READ_WRITE,
        )],
        env: EnvRequest {
            vars: vec![VarRequest::inherit("TITLE")],
            args: vec![],
        },
        random: RandomRequest {
            secure: Switch::held(RandomMode::Real),
            ..Default::default()
        },
        limits: LimitsRequest::default().with(LimitKind::Memory, 64 << 20),
        ..Default::default()
    };
    Capabilities::for_root(&req, |_| Some("t".into())).unwrap()
}

#[test]
fn a_subdirectory_is_carved_out_with_fewer_rights() {
    let parent = root_with_photos();
    let req = GrantRequest {
        fs: vec![dir(
            DirSource::Parent("/photos/thumbs".into()),
            "/out",
            FsRights::READ_ONLY,
        )],
        ..Default::default()
    };
    let child = parent.attenuate(&req).unwrap();
    assert_eq!(child.fs[0].host, PathBuf::from("/home/u/photos/thumbs"));
    assert_eq!(child.fs[0].guest.as_str(), "/out");
    assert_eq!(child.fs[0].rights, FsRights::READ_ONLY);
    // Inherits the parent's memory limit (below the child default), the default
    // per-call timeout, and holds no stdio, clocks, random or exit, and no
    // variables.
    assert_eq!(child.limits.get(LimitKind::Memory), Some(64 << 20));
    assert_eq!(child.limits.get(LimitKind::Timeout), Some(30_000));
    assert_eq!(child.limits.get(LimitKind::Fuel), None);
    assert_eq!(child.stdio, StdioHolding::default());
    assert_eq!(child.clocks, ClocksHolding::default());
    assert_eq!(child.random, RandomHolding::default());
    assert_eq!(child.exit, None);
    assert!(child.env.vars.is_empty());
}

#[test]
fn sibling_names_are_not_prefixes() {
    let parent = root_with_photos();
    let req = GrantRequest {
        fs: vec![dir(
            DirSource::Parent("/photos2".into()),
            "/x",
            FsRights::READ_ONLY,
        )],
        ..Default::default()
    };
    let err = parent.attenuate(&req).unwrap_err();
    assert!(
        err[0].reason.contains("not inside any directory"),
        "{}",
        err[0]
    );
    assert_eq!(err[0].parent_grant.as_deref(), Some("/photos (read-write)"));
}

#[test]
fn escapes_and_wider_rights_are_refused() {
    let parent = {
        let req = GrantRequest {
            fs: vec![dir(
                DirSource::Host("/h".into()),
                "/ro",
                FsRights::READ_ONLY,
            )],
            ..Default::default()
        };
        Capabilities::for_root(&req, |_| None).unwrap()
    };
    let cases = [
        (
            dir(
                DirSource::Parent("/ro/../etc".into()),
                "/x",
                FsRights::READ_ONLY,
            ),
            "`..`",
        ),
        (
            dir(DirSource::Parent("/ro".into()), "/x", FsRights::READ_WRITE),
            "asks for read-write",
        ),
        (
            dir(DirSource::Parent("ro".into()), "/x", FsRights::READ_ONLY),
            "absolute",
        ),
        (
            dir(DirSource::Host("/etc".into()), "/x", FsRights::READ_ONLY),
            "cannot name host paths",
        ),
        (
            dir(
                DirSource::Parent("/ro".into()),
                "/a/../b",
                FsRights::READ_ONLY,
            ),
            "`..`",
        ),
    ];
    for (d, expect) in cases {
        let req = GrantRequest {
            fs: vec![d.clone()],
            ..Default::default()
        };
        let err = parent.attenuate(&req).unwrap_err();
        assert!(err[0].reason.contains(expect), "{d:?}: {}", err[0]);
    }
}

#[test]
fn derived_directories_remember_their_anchor() {
    let parent = root_with_photos();
    let mid = parent
        .attenuate(&GrantRequest {
            fs: vec![dir(
                DirSource::Parent("/photos/a".into()),
                "/m",
                FsRights::READ_WRITE,
            )],
            ..Default::default()
        })
        .unwrap();
    let leaf = mid
        .attenuate(&GrantRequest {
            fs: vec![dir(
                DirSource::Parent("/m/b/c".into()),
                "/l",
                FsRights::READ_ONLY,
            )],
            ..Default::default()
        })
        .unwrap();
    let derived = leaf.fs[0].derived.clone().unwrap();
    assert_eq!(derived.anchor.as_str(), "/photos");
    assert_eq!(derived.below_anchor, vec!["a", "b", "c"]);
    // Opened through the parent's own directory `/m`, not the root's.
    assert_eq!(derived.parent_dir, 0);
    assert_eq!(derived.below_parent, vec!["b", "c"]);
    assert_eq!(leaf.fs[0].host, PathBuf::from("/home/u/photos/a/b/c"));
}

#[test]
fn env_is_passed_by_name_only_when_held_and_literals_are_data() {
    let parent = root_with_photos();
    let err = parent
        .attenuate(&GrantRequest {
            env: EnvRequest {
                vars: vec![VarRequest::inherit("AWS_SECRET")],
                args: vec![],
            },
            ..Default::default()
        })
        .unwrap_err();
    assert!(err[0].reason.contains("AWS_SECRET"));
    assert_eq!(err[0].parent_grant.as_deref(), Some("TITLE"));
    let child = parent
        .attenuate(&GrantRequest {
            env: EnvRequest {
                vars: vec![
                    VarRequest::inherit("TITLE"),
                    VarRequest::literal("MODE", "fast"),
                ],
                args: vec![],
            },
            ..Default::default()
        })
        .unwrap();
    assert_eq!(child.env.vars["TITLE"].value, "t");
    assert_eq!(child.env.vars["MODE"].value, "fast");
}

#[test]
fn network_patterns_attenuate_pattern_by_pattern() {
    let patterns = |texts: &[&str]| texts.iter().copied().map(PatternRequest::new).collect();
    let root = Capabilities::for_root(
        &GrantRequest {
            network: NetworkRequest {
                connect: patterns(&["*.example.com:443", "127.0.0.1:8000-8100"]),
                listen: vec![],
            },
            ..Default::default()
        },
        |_| None,
    )
    .unwrap();
    let child = root
        .attenuate(&GrantRequest {
            network: NetworkRequest {
                connect: patterns(&["tcp:api.example.com:443", "127.0.0.1:8080"]),
                listen: vec![],
            },
            ..Default::default()
        })
        .unwrap();
    assert!(child.within(&root));
    assert_eq!(child.network.connect.len(), 2);
    for (asked, why) in [
        ("example.com:443", "no pattern of the parent covers"),
        ("api.example.com:80", "no pattern of the parent covers"),
        ("127.0.0.1:9000", "no pattern of the parent covers"),
        ("nonsense", "HOST:PORTS"),
    ] {
        let err = root
            .attenuate(&GrantRequest {
                network: NetworkRequest {
                    connect: patterns(&[asked]),
                    listen: vec![],
                },
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err[0].item, GrantItem::at("network", 0));
        assert!(err[0].reason.contains(why), "{asked}: {}", err[0]);
    }
    // Listening is a separate grant: connecting rights do not imply it.
    let err = root
        .attenuate(&GrantRequest {
            network: NetworkRequest {
                connect: vec![],
                listen: patterns(&["tcp:127.0.0.1:8080"]),
            },
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err[0].item, GrantItem::at("listen", 0));
    assert_eq!(err[0].parent_grant.as_deref(), Some("nothing"));
}

/// Data modes are given to anyone; the real ones only from a parent that has them;
/// a host file to no child, even one whose parent writes to that very file.
#[test]
fn modes_are_data_or_authority() {
    let root = Capabilities::for_root(
        &GrantRequest {
            stdio: StdioRequest {
                stdout: Switch::held(OutputMode::File("/var/log/app.log".into())),
                stderr: Switch::held(OutputMode::Prefixed),
                ..Default::default()
            },
            clocks: ClocksRequest {
                wall: Switch::held(ClockMode::Frozen(1_704_067_200_000_000_000)),
                ..Default::default()
            },
            random: RandomRequest {
                secure: Switch::held(RandomMode::Seeded(42)),
                ..Default::default()
            },
            ..Default::default()
        },
        |_| None,
    )
    .unwrap();
    // The root holds exactly what it was given, and `exit`.
    assert!(root.within(&root));
    assert_eq!(root.exit, Some(Plain));
    let ask = |f: &dyn Fn(&mut GrantRequest)| {
        let mut r = GrantRequest::default();
        f(&mut r);
        root.attenuate(&r)
    };
    let refused = [
        (
            ask(&|r| r.stdio.stdout = Switch::held(OutputMode::File("/var/log/app.log".into()))),
            "stdout",
            "only the root",
        ),
        (
            ask(&|r| r.stdio.stdout = Switch::held(OutputMode::Terminal)),
            "stdout",
            "not the real one",
        ),
        (
            ask(&|r| r.clocks.wall = Switch::held(ClockMode::Real)),
            "wall-clock",
            "not the real one",
        ),
        (
            ask(&|r| r.clocks.monotonic = Switch::held(ClockMode::Real)),
            "monotonic-clock",
            "does not hold",
        ),
        (
            ask(&|r| r.random.secure = Switch::held(RandomMode::Real)),
            "random",
            "not the real one",
        ),
    ];
    for (result, key, why) in refused {
        let err = result.unwrap_err();
        assert_eq!(err[0].item, GrantItem::key(key));
        assert!(err[0].reason.contains(why), "{}", err[0]);
    }
    let child = ask(&|r| {
        r.stdio.stdout = Switch::held(OutputMode::Discard);
        r.stdio.stderr = Switch::held(OutputMode::Terminal);
        r.clocks.wall = Switch::held(ClockMode::Frozen(0));
        r.clocks.monotonic = Switch::held(ClockMode::Frozen(7));
        r.random.insecure = Switch::held(RandomMode::Seeded(1));
    })
    .unwrap();
    assert!(child.within(&root));
    assert_eq!(child.stdio.stderr, Some(OutputMode::Terminal));
    assert_eq!(child.clocks.monotonic, Some(ClockMode::Frozen(7)));
}

/// A value one nanoprocess writes for its child is data all the way down: the
/// grandchild that takes it over holds nothing of the root's. What the user
/// granted (a host variable, a configuration value) stays checked against every
/// ancestor.
#[test]
fn literals_passed_on_stay_within_the_root() {
    let root = Capabilities::for_root(
        &GrantRequest {
            env: EnvRequest {
                vars: vec![VarRequest::inherit("HOME")],
                args: vec![],
            },
            config: vec![ConfigRequest::literal("TOKEN", "secret")],
            ..Default::default()
        },
        |_| Some("/home/u".into()),
    )
    .unwrap();
    let child = root
        .attenuate(&GrantRequest {
            env: EnvRequest {
                vars: vec![
                    VarRequest::inherit("HOME"),
                    VarRequest::literal("MODE", "fast"),
                ],
                args: vec![],
            },
            config: vec![
                ConfigRequest::inherit("TOKEN"),
                ConfigRequest::literal("REGION", "eu"),
            ],
            ..Default::default()
        })
        .unwrap();
    let grandchild = child
        .attenuate(&GrantRequest {
            env: EnvRequest {
                vars: vec![VarRequest::inherit("HOME"), VarRequest::inherit("MODE")],
                args: vec![],
            },
            config: vec![
                ConfigRequest::inherit("TOKEN"),
                ConfigRequest::inherit("REGION"),
            ],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(grandchild.env.vars["MODE"].value, "fast");
    assert_eq!(grandchild.env.vars["MODE"].source, EnvSource::Literal);
    assert_eq!(grandchild.env.vars["HOME"].source, EnvSource::Inherited);
    assert_eq!(grandchild.config["REGION"].value, "eu");
    assert!(!grandchild.config["REGION"].inherited);
    assert!(grandchild.config["TOKEN"].inherited);
    assert!(grandchild.within(&child));
    assert!(grandchild.within(&root));
    // A user's value that is not the ancestors' is not within them.
    for forge in [
        |c: &mut Capabilities| c.env.vars.get_mut("HOME").unwrap().value = "/etc".into(),
        |c: &mut Capabilities| c.config.get_mut("TOKEN").unwrap().value = "other".into(),
    ] {
        let mut forged = grandchild.clone();
        forge(&mut forged);
        assert!(!forged.within(&child));
        assert!(!forged.within(&root));
    }
}

#[test]
fn the_manifest_syntax_of_each_family() {
    let mut req = GrantRequest::default();
    let text = GrantValue::text;
    for (key, value) in [
        (
            "fs",
            GrantValue::list(vec![GrantValue::table([
                ("from", text("/data")),
                ("guest", text("/in")),
                ("rights", text("read+create")),
            ])]),
        ),
        ("env", GrantValue::list(vec![text("A"), text("B=x")])),
        ("stdout", text("discard")),
        ("stderr", text("inherit")),
        ("wall-clock", text("2024-01-01T00:00:00Z")),
        ("monotonic-clock", GrantValue::bool(true)),
        ("random", GrantValue::table([("seed", integer(42))])),
        (
            "network",
            GrantValue::list(vec![text("api.example.com:443")]),
        ),
        ("config", GrantValue::table([("K", text("v"))])),
        ("config", GrantValue::list(vec![text("L")])),
        ("memory", text("64 MiB")),
        ("handles", integer(100)),
    ] {
        req.parse(key, &value).unwrap();
    }
    assert_eq!(
        req.fs,
        vec![DirRequest::new(
            DirSource::Parent("/data".into()),
            "/in",
            FsRights::READ.union(FsRights::CREATE),
        )]
    );
    assert_eq!(
        req.env.vars,
        vec![VarRequest::inherit("A"), VarRequest::literal("B", "x")]
    );
    assert_eq!(req.stdio.stdout.held, Some(OutputMode::Discard));
    assert_eq!(req.stdio.stderr.held, Some(OutputMode::Terminal));
    assert_eq!(
        req.clocks.wall.held,
        Some(ClockMode::Frozen(1_704_067_200_000_000_000))
    );
    assert_eq!(req.clocks.monotonic.held, Some(ClockMode::Real));
    assert_eq!(req.random.secure.held, Some(RandomMode::Seeded(42)));
    assert_eq!(
        req.network.connect,
        vec![PatternRequest::new("api.example.com:443")]
    );
    assert_eq!(
        req.config,
        vec![
            ConfigRequest::literal("K", "v"),
            ConfigRequest::inherit("L")
        ]
    );
    assert_eq!(req.limits.values.get(LimitKind::Memory), Some(64 << 20));
    assert_eq!(req.limits.values.get(LimitKind::Handles), Some(100));
}

#[test]
fn every_family_owns_its_keys() {
    let mut keys = known_keys();
    keys.sort_unstable();
    let mut expected = vec![
        "fs",
        "env",
        "args",
        "stdin",
        "stdout",
        "stderr",
        "wall-clock",
        "monotonic-clock",
        "random",
        "insecure-random",
        "exit",
        "network",
        "listen",
        "http",
        "config",
        "host",
        "memory",
        "tables",
        "instances",
        "handles",
        "fuel",
        "timeout",
        "output",
        "http-requests",
        "http-body",
        "http-timeout",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let err = GrantRequest::default()
        .parse("filesystem", &GrantValue::list(vec![]))
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        err[0]
            .message
            .starts_with("unknown field `filesystem`, expected one of `fs`, `env`, `args`"),
        "{}",
        err[0]
    );
}

#[test]
fn durations_parse_in_their_units() {
    assert_eq!(parse_millis("250ms").unwrap(), 250);
    assert_eq!(parse_millis("1.5s").unwrap(), 1500);
    assert_eq!(parse_millis("2m").unwrap(), 120_000);
    assert!(parse_millis("5").unwrap_err().contains("needs a unit"));
    assert!(parse_millis("5 parsecs").is_err());
    assert_eq!(format_millis(1500), "1.5s");
    assert_eq!(LimitKind::Fuel.parse("1_000_000").unwrap(), 1_000_000);
}

/// Found by the `units` fuzz target: durations were parsed through `f64`, so a
/// timeout above 2^53 ms printed as text that read back as another number.
#[test]
fn durations_parse_exactly_to_the_millisecond() {
    for n in [
        (1 << 53) + 1,
        3_472_379_973_274_197_809,
        u64::MAX - 1,
        u64::MAX,
    ] {
        assert_eq!(parse_millis(&format_millis(n)), Ok(n), "{n}");
    }
    // Half a millisecond rounds up, which 1.0005 * 1000 in f64 (1000.4999...) did not.
    assert_eq!(parse_millis("1.0005s"), Ok(1001));
    assert_eq!(parse_millis("0.4ms"), Ok(0));
    assert_eq!(parse_millis(".5s"), Ok(500));
    assert_eq!(parse_millis("2.s"), Ok(2000));
    // One past u64::MAX was accepted as u64::MAX.
    assert!(
        parse_millis("18446744073709551616ms")
            .unwrap_err()
            .contains("out of range")
    );
    assert!(
        parse_millis("5124095576030432h")
            .unwrap_err()
            .contains("out of range")
    );
    assert!(
        parse_millis("1.0000000001s")
            .unwrap_err()
            .contains("decimal places")
    );
    assert!(parse_millis("1.2.3s").is_err());
    assert!(parse_millis(".s").is_err());
}

/// A duplicate guest path is reported at the grant that repeats it, even when an
/// earlier grant was refused (and so made no directory).
#[test]
fn a_duplicate_guest_path_points_at_the_grant_that_repeats_it() {
    let dir = |guest: &str, at: usize| DirRequest {
        span: Some(at * 10..at * 10 + 5),
        ..DirRequest::new(
            DirSource::Host(PathBuf::from("/h")),
            guest,
            FsRights::READ_ONLY,
        )
    };
    let req = GrantRequest {
        fs: vec![dir("relative", 0), dir("/a", 1), dir("/a", 2)],
        ..Default::default()
    };
    let err = Capabilities::for_root(&req, |_| None).unwrap_err();
    let dup = err
        .iter()
        .find(|v| v.reason.contains("granted twice"))
        .expect("the duplicate is refused");
    assert_eq!(dup.item, GrantItem::at("fs", 2));
    assert_eq!(dup.span, Some(20..25));
}

/// A list of config keys written as `KEY=value` is refused without repeating it:
/// the value may be a secret.
#[test]
fn a_config_value_written_where_a_key_goes_is_refused_unrepeated() {
    let mut req = GrantRequest::default();
    let err = req
        .parse(
            "config",
            &GrantValue::list(vec![GrantValue::text("TOKEN=s3cret")]),
        )
        .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err[0].message.contains("config = { KEY"), "{err:?}");
    assert!(!err[0].message.contains("s3cret"), "{err:?}");
    assert!(req.config.is_empty());
}

#[test]
fn an_empty_config_key_is_refused_in_either_form() {
    for value in [
        GrantValue::table([("", GrantValue::text("v"))]),
        GrantValue::list(vec![GrantValue::text("")]),
    ] {
        let mut req = GrantRequest::default();
        assert!(req.parse("config", &value).is_err(), "{value:?}");
        assert!(req.config.is_empty());
    }
}

/// A TOML value as the manifest reader hands it to the families.
fn grant_value(v: &toml::Value) -> GrantValue {
    GrantValue::new(match v {
        toml::Value::Boolean(b) => ValueKind::Bool(*b),
        toml::Value::Integer(i) => ValueKind::Integer(*i),
        toml::Value::String(s) => ValueKind::Text(s.clone()),
        toml::Value::Array(items) => ValueKind::List(items.iter().map(grant_value).collect()),
        toml::Value::Table(t) => ValueKind::Table(
            t.iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.clone(),
                            span: None,
                        },
                        grant_value(v),
                    )
                })
                .collect(),
        ),
        other => panic!("no grant is written as {other}"),
    })
}

/// The request a proposal stands for, read as a manifest would read its lines.
fn proposed_request(proposal: &[Suggestion]) -> GrantRequest {
    let mut req = GrantRequest::default();
    for s in proposal {
        let line = format!("v = {}", s.value);
        let table: toml::Table = toml::from_str(&line)
            .unwrap_or_else(|e| panic!("{}: not TOML: {e}", s.manifest_line()));
        req.parse(s.key, &grant_value(&table["v"]))
            .unwrap_or_else(|e| panic!("{}: {e:?}", s.manifest_line()));
    }
    req
}

/// Uses a holding allows, one per thing it holds: each switch used, a file read
/// in each directory with the rights it holds there.
fn uses_of(caps: &Capabilities) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for key in SWITCHES {
        if caps.holds(key) {
            out.push((key.to_string(), None, None));
        }
    }
    for (i, d) in caps.fs.iter().enumerate() {
        let rights = if i % 2 == 0 {
            d.rights
        } else {
            d.rights.intersection(FsRights::READ_ONLY)
        };
        if rights != FsRights::NONE {
            let file = format!("{}/f{i}", d.guest.as_str().trim_end_matches('/'));
            out.push(("fs".into(), Some(file), Some(rights.to_string())));
        }
    }
    for key in caps.config.keys() {
        out.push(("config".into(), Some(key.clone()), None));
    }
    out
}

proptest! {
    #[test]
    fn learning_holds_everything_the_parent_holds_and_no_more(
        parent in holder(),
        seed in any::<u64>(),
    ) {
        // Whatever the child's manifest wrote (here, something within its parent),
        // it is granted, within the parent, and holds at least what it wrote.
        let written = request_within(&parent, seed);
        let learning = parent
            .attenuate(&parent.everything(&written))
            .expect("everything the parent holds is granted");
        prop_assert!(learning.within(&parent));
        for key in SWITCHES {
            prop_assert_eq!(learning.holds(key), parent.holds(key) || {
                let child = parent.attenuate(&written).unwrap();
                child.holds(key)
            }, "{}", key);
        }
    }

    #[test]
    fn a_proposal_read_back_allows_every_use_it_was_made_from(
        parent in holder(),
        seed in any::<u64>(),
    ) {
        let child = parent.attenuate(&request_within(&parent, seed)).unwrap();
        let owned = uses_of(&child);
        let uses: Vec<Use<'_>> = owned
            .iter()
            .map(|(key, target, needs)| Use {
                key: key.as_str(),
                operation: "op",
                target: target.as_deref(),
                needs: needs.as_deref(),
                failed: false,
                refused: false,
            })
            .collect();
        for used in &uses {
            prop_assert!(child.allows(used), "{:?}", used);
        }
        let proposal = child.propose(&uses, Some(&parent));
        let again = parent
            .attenuate(&proposed_request(&proposal))
            .map_err(|v| TestCaseError::fail(format!("{proposal:?}: {v:?}")))?;
        prop_assert!(again.within(&child) || again.within(&parent));
        for used in &uses {
            prop_assert!(again.allows(used), "{:?} not allowed by {:?}", used, proposal);
        }
        // Nothing unused: a switch not used is not proposed.
        for key in SWITCHES {
            if !uses.iter().any(|u| u.key == key) && key != "exit" {
                prop_assert!(!proposal.iter().any(|s| s.key == key), "{}", key);
            }
        }
    }
}
