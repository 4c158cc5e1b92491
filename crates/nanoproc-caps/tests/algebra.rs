//! Property tests for the attenuation rule: whatever a child asks for, what it ends
//! up holding is within its parent's, at every depth.

use nanoproc_caps::*;
use proptest::prelude::*;
use std::path::PathBuf;

const NAMES: [&str; 4] = ["a", "b", "c", "photos"];
const VARS: [&str; 4] = ["HOME", "TOKEN", "MODE", "LANG"];

fn guest_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES.to_vec()), 0..4)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn rights() -> impl Strategy<Value = FsRights> {
    prop_oneof![Just(FsRights::READ_ONLY), Just(FsRights::READ_WRITE)]
}

fn flags() -> impl Strategy<Value = Flags> {
    any::<u8>().prop_map(|bits| {
        let mut f = Flags::NONE;
        for (i, flag) in Flag::ALL.iter().enumerate() {
            f.set(*flag, bits & (1 << i) != 0);
        }
        f
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    prop::collection::vec(prop_oneof![Just(None), (1u64..1 << 32).prop_map(Some)], 7).prop_map(
        |values| {
            let mut l = Limits::UNLIMITED;
            for (kind, v) in LimitKind::ALL.into_iter().zip(values) {
                l.set(kind, v);
            }
            l
        },
    )
}

fn env_request() -> impl Strategy<Value = EnvRequest> {
    prop_oneof![
        prop::sample::select(VARS.to_vec()).prop_map(|n| EnvRequest::Inherit(n.into())),
        (prop::sample::select(VARS.to_vec()), "[a-z]{0,4}")
            .prop_map(|(n, v)| EnvRequest::Literal(n.into(), v)),
    ]
}

/// Any request a child could make: not biased towards valid ones, so both outcomes
/// are exercised.
fn child_request() -> impl Strategy<Value = GrantRequest> {
    (
        prop::collection::vec((guest_path(), guest_path(), rights()), 0..3),
        prop::collection::vec(env_request(), 0..3),
        flags(),
        limits(),
    )
        .prop_map(|(dirs, env, flags, limits)| GrantRequest {
            fs: dirs
                .into_iter()
                .map(|(from, guest, rights)| DirRequest {
                    source: DirSource::Parent(from),
                    guest,
                    rights,
                })
                .collect(),
            env,
            flags,
            limits,
            ..Default::default()
        })
}

fn root() -> impl Strategy<Value = Capabilities> {
    (
        prop::collection::vec((guest_path(), rights()), 0..3),
        prop::collection::vec(prop::sample::select(VARS.to_vec()), 0..4),
        flags(),
        limits(),
    )
        .prop_map(|(dirs, vars, flags, limits)| {
            let req = GrantRequest {
                fs: dirs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (guest, rights))| DirRequest {
                        // Distinct guest paths, distinct host trees.
                        source: DirSource::Host(PathBuf::from(format!("/host{i}"))),
                        guest: format!("/m{i}{guest}"),
                        rights,
                    })
                    .collect(),
                env: vars
                    .into_iter()
                    .map(|v| EnvRequest::Inherit(v.into()))
                    .collect(),
                flags,
                limits,
                ..Default::default()
            };
            Capabilities::for_root(&req, |n| Some(format!("value-of-{n}"))).unwrap()
        })
}

/// A request that stays inside `parent` by construction.
fn request_within(parent: &Capabilities, seed: u64) -> GrantRequest {
    let mut req = GrantRequest::default();
    for (i, d) in parent.dirs.iter().enumerate() {
        if seed & (1 << i) != 0 {
            let rights = if seed & (1 << (i + 8)) != 0 {
                FsRights::READ_ONLY.intersection(d.rights)
            } else {
                d.rights
            };
            let sub = NAMES[(seed as usize >> (i * 2)) % NAMES.len()];
            req.fs.push(DirRequest {
                source: DirSource::Parent(format!("{}/{sub}", d.guest)),
                guest: format!("/g{i}"),
                rights,
            });
        }
    }
    for (i, name) in parent.env.keys().enumerate() {
        if seed & (1 << (i + 16)) != 0 {
            req.env.push(EnvRequest::Inherit(name.clone()));
        }
    }
    for flag in parent.flags.iter() {
        req.flags.set(flag, seed & (1 << (24 + flag as u8)) != 0);
    }
    for kind in LimitKind::ALL {
        req.limits
            .set(kind, parent.limits.get(kind).map(|m| m / 2 + 1));
    }
    req
}

proptest! {
    #[test]
    fn attenuation_never_exceeds_the_parent(parent in root(), req in child_request()) {
        if let Ok(child) = parent.attenuate(&req) {
            prop_assert!(child.within(&parent), "{child:#?}\nnot within\n{parent:#?}");
        }
    }

    #[test]
    fn within_is_reflexive(caps in root()) {
        prop_assert!(caps.within(&caps));
    }

    #[test]
    fn a_request_built_inside_the_parent_is_granted(parent in root(), seed in any::<u64>()) {
        let req = request_within(&parent, seed);
        let child = parent.attenuate(&req);
        prop_assert!(child.is_ok(), "{:?}", child.err());
    }

    #[test]
    fn no_depth_ever_exceeds_the_root(
        root in root(),
        seeds in prop::collection::vec(any::<u64>(), 1..6),
        reqs in prop::collection::vec(child_request(), 1..6),
    ) {
        // Alternate valid and arbitrary requests down a chain; every level that is
        // granted must be within its parent and, by transitivity, within the root.
        let mut chain = vec![root.clone()];
        for (seed, wild) in seeds.iter().zip(&reqs) {
            let parent = chain.last().unwrap().clone();
            for req in [request_within(&parent, *seed), wild.clone()] {
                if let Ok(child) = parent.attenuate(&req) {
                    prop_assert!(child.within(&parent));
                    prop_assert!(child.within(&root));
                    chain.push(child);
                    break;
                }
            }
        }
        for (i, a) in chain.iter().enumerate() {
            for b in &chain[..i] {
                prop_assert!(a.within(b), "level {i} exceeds an ancestor");
            }
        }
    }

    #[test]
    fn within_is_transitive(a in root(), s1 in any::<u64>(), s2 in any::<u64>()) {
        let b = a.attenuate(&request_within(&a, s1)).unwrap();
        let c = b.attenuate(&request_within(&b, s2)).unwrap();
        prop_assert!(c.within(&b) && b.within(&a));
        prop_assert!(c.within(&a));
    }

    #[test]
    fn a_flag_the_parent_lacks_is_refused(parent in root(), flag in prop::sample::select(Flag::ALL.to_vec())) {
        prop_assume!(!parent.flags.has(flag));
        let req = GrantRequest { flags: Flags::NONE.with(flag), ..Default::default() };
        let err = parent.attenuate(&req).unwrap_err();
        prop_assert_eq!(&err[0].item, &GrantItem::Flag(flag));
    }

    #[test]
    fn a_larger_limit_than_the_parent_is_refused(
        parent in root(),
        kind in prop::sample::select(LimitKind::ALL.to_vec()),
        extra in 1u64..1000,
    ) {
        let Some(limit) = parent.limits.get(kind) else { return Ok(()); };
        let req = GrantRequest { limits: Limits::UNLIMITED.with(kind, limit + extra), ..Default::default() };
        let err = parent.attenuate(&req).unwrap_err();
        prop_assert_eq!(&err[0].item, &GrantItem::Limit(kind));
    }

    #[test]
    fn an_unset_child_limit_is_the_default_capped_by_the_parent(parent in root()) {
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

fn dir(source: DirSource, guest: &str, rights: FsRights) -> DirRequest {
    DirRequest {
        source,
        guest: guest.into(),
        rights,
    }
}

fn root_with_photos() -> Capabilities {
    let req = GrantRequest {
        fs: vec![dir(
            DirSource::Host("/home/u/photos".into()),
            "/photos",
            FsRights::READ_WRITE,
        )],
        env: vec![EnvRequest::Inherit("TITLE".into())],
        flags: Flags::NONE.with(Flag::Random),
        limits: Limits::UNLIMITED.with(LimitKind::Memory, 64 << 20),
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
    assert_eq!(child.dirs[0].host, PathBuf::from("/home/u/photos/thumbs"));
    assert_eq!(child.dirs[0].guest.as_str(), "/out");
    assert_eq!(child.dirs[0].rights, FsRights::READ_ONLY);
    // Inherits the parent's memory limit (below the child default), the default
    // per-call timeout, and holds no flags and no variables.
    assert_eq!(child.limits.get(LimitKind::Memory), Some(64 << 20));
    assert_eq!(child.limits.get(LimitKind::Timeout), Some(30_000));
    assert_eq!(child.limits.get(LimitKind::Fuel), None);
    assert_eq!(child.flags, Flags::NONE);
    assert!(child.env.is_empty());
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
    let derived = leaf.dirs[0].derived.clone().unwrap();
    assert_eq!(derived.anchor.as_str(), "/photos");
    assert_eq!(derived.below_anchor, vec!["a", "b", "c"]);
    // Opened through the parent's own directory `/m`, not the root's.
    assert_eq!(derived.parent_dir, 0);
    assert_eq!(derived.below_parent, vec!["b", "c"]);
    assert_eq!(leaf.dirs[0].host, PathBuf::from("/home/u/photos/a/b/c"));
}

#[test]
fn env_is_passed_by_name_only_when_held_and_literals_are_data() {
    let parent = root_with_photos();
    let err = parent
        .attenuate(&GrantRequest {
            env: vec![EnvRequest::Inherit("AWS_SECRET".into())],
            ..Default::default()
        })
        .unwrap_err();
    assert!(err[0].reason.contains("AWS_SECRET"));
    assert_eq!(err[0].parent_grant.as_deref(), Some("TITLE"));
    let child = parent
        .attenuate(&GrantRequest {
            env: vec![
                EnvRequest::Inherit("TITLE".into()),
                EnvRequest::Literal("MODE".into(), "fast".into()),
            ],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(child.env["TITLE"].value, "t");
    assert_eq!(child.env["MODE"].value, "fast");
}

#[test]
fn network_patterns_attenuate_pattern_by_pattern() {
    let root = Capabilities::for_root(
        &GrantRequest {
            network: vec!["*.example.com:443".into(), "127.0.0.1:8000-8100".into()],
            ..Default::default()
        },
        |_| None,
    )
    .unwrap();
    let child = root
        .attenuate(&GrantRequest {
            network: vec!["tcp:api.example.com:443".into(), "127.0.0.1:8080".into()],
            ..Default::default()
        })
        .unwrap();
    assert!(child.within(&root));
    assert_eq!(child.network.len(), 2);
    for (asked, why) in [
        ("example.com:443", "no pattern of the parent covers"),
        ("api.example.com:80", "no pattern of the parent covers"),
        ("127.0.0.1:9000", "no pattern of the parent covers"),
        ("nonsense", "HOST:PORTS"),
    ] {
        let err = root
            .attenuate(&GrantRequest {
                network: vec![asked.into()],
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err[0].item, GrantItem::Network(0));
        assert!(err[0].reason.contains(why), "{asked}: {}", err[0]);
    }
    // Listening is a separate grant: connecting rights do not imply it.
    let err = root
        .attenuate(&GrantRequest {
            listen: vec!["tcp:127.0.0.1:8080".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err[0].item, GrantItem::Listen(0));
    assert_eq!(err[0].parent_grant.as_deref(), Some("nothing"));
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
