//! The capability model of nanoproc, and its one rule: **a child never holds more than
//! its parent**.
//!
//! Two types carry the model:
//!
//! * [`GrantRequest`] is what a manifest (or the command line) *asks* for one
//!   nanoprocess: directories named relative to its parent's view, environment
//!   variables by name, flags, limits.
//! * [`Capabilities`] is what a nanoprocess *holds* once a request has been checked
//!   against its parent: every directory resolved to a host path, every variable to a
//!   value. The runtime builds a nanoprocess's WASI context from this and nothing else.
//!
//! [`Capabilities::for_root`] turns the user's request into the root's capabilities;
//! [`Capabilities::attenuate`] turns a child's request into the child's capabilities
//! or into the list of [`Violation`]s that make it exceed its parent. Because a child's
//! capabilities are always derived from its parent's (never from the host), the
//! rule holds at every depth by induction; [`Capabilities::within`] states the rule
//! directly so that it can be re-checked and property-tested.
//!
//! This crate does no I/O. Host paths are taken as given (the runtime canonicalises
//! the root's and opens every derived directory through its ancestor's sandboxed
//! handle).

pub mod fs;
pub mod limits;
pub mod network;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use fs::{FsRights, GuestPath, GuestPathError, Laundering, Region, laundering};
pub use limits::{LimitKind, Limits, format_millis, parse_millis};

/// Where a requested directory comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirSource {
    /// A host directory. Only the root may name one: it is the user's grant.
    Host(PathBuf),
    /// A directory inside the parent's own view, named by the parent's guest path.
    Parent(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirRequest {
    pub source: DirSource,
    /// Where the nanoprocess sees the directory.
    pub guest: String,
    pub rights: FsRights,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvRequest {
    /// Pass the variable through from the parent's environment (the host's, for the
    /// root). The parent must hold it.
    Inherit(String),
    /// Set the variable to a value the parent writes itself. A literal is data, not
    /// authority: it names nothing outside the nanoprocess, so any name may be set.
    Literal(String, String),
}

impl EnvRequest {
    pub fn name(&self) -> &str {
        match self {
            Self::Inherit(n) | Self::Literal(n, _) => n,
        }
    }
}

/// The capabilities that are simply held or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    Stdin,
    Stdout,
    Stderr,
    WallClock,
    MonotonicClock,
    Random,
    InsecureRandom,
    /// `wasi:cli/exit`. The root always holds it (ending is its own business);
    /// a dependency that holds it ends the whole application when it exits.
    Exit,
}

impl Flag {
    pub const ALL: [Flag; 8] = [
        Flag::Stdin,
        Flag::Stdout,
        Flag::Stderr,
        Flag::WallClock,
        Flag::MonotonicClock,
        Flag::Random,
        Flag::InsecureRandom,
        Flag::Exit,
    ];

    /// The key that grants it in a manifest.
    pub fn key(self) -> &'static str {
        match self {
            Flag::Stdin => "stdin",
            Flag::Stdout => "stdout",
            Flag::Stderr => "stderr",
            Flag::WallClock => "wall-clock",
            Flag::MonotonicClock => "monotonic-clock",
            Flag::Random => "random",
            Flag::InsecureRandom => "insecure-random",
            Flag::Exit => "exit",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A set of [`Flag`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    pub const NONE: Flags = Flags(0);

    pub fn with(mut self, flag: Flag) -> Self {
        self.0 |= flag.bit();
        self
    }

    pub fn set(&mut self, flag: Flag, on: bool) {
        if on {
            self.0 |= flag.bit();
        } else {
            self.0 &= !flag.bit();
        }
    }

    pub fn has(self, flag: Flag) -> bool {
        self.0 & flag.bit() != 0
    }

    pub fn is_subset(self, of: Flags) -> bool {
        self.0 & !of.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.has(*f))
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Where a granted output stream goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// The terminal's stream, shared.
    #[default]
    Terminal,
    /// The terminal's stream, each line prefixed with `[path] ` so that the user
    /// can tell who printed what.
    Prefixed,
    /// Nowhere: writes succeed and are dropped. Authority over nothing, so any
    /// nanoprocess may be given it.
    Discard,
    /// Appended to a host file. The user's grant: root only.
    File(PathBuf),
}

/// How a granted clock reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClockMode {
    #[default]
    Real,
    /// Always this reading (nanoseconds since the UNIX epoch for the wall clock,
    /// since an arbitrary start for the monotonic one). Reveals nothing, so any
    /// nanoprocess may be given it.
    Frozen(u64),
}

/// Where granted random bytes come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RandomMode {
    #[default]
    Real,
    /// Reproducible bytes from this seed. Not secret, so any nanoprocess may be
    /// given it; never use it where secrecy matters.
    Seeded(u64),
}

/// How each held stream, clock and random source behaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Modes {
    pub stdout: OutputMode,
    pub stderr: OutputMode,
    pub wall_clock: ClockMode,
    pub monotonic_clock: ClockMode,
    pub random: RandomMode,
    pub insecure_random: RandomMode,
}

impl Modes {
    /// Whether holding `flag` in this mode is data the parent chose rather than
    /// authority it passes on: then the parent need not hold the flag itself.
    pub fn is_data(&self, flag: Flag) -> bool {
        match flag {
            Flag::Stdout => self.stdout == OutputMode::Discard,
            Flag::Stderr => self.stderr == OutputMode::Discard,
            Flag::WallClock => matches!(self.wall_clock, ClockMode::Frozen(_)),
            Flag::MonotonicClock => matches!(self.monotonic_clock, ClockMode::Frozen(_)),
            Flag::Random => matches!(self.random, RandomMode::Seeded(_)),
            Flag::InsecureRandom => matches!(self.insecure_random, RandomMode::Seeded(_)),
            Flag::Stdin | Flag::Exit => false,
        }
    }

    /// The mode of a held flag in words, unless it is the plain real one.
    pub fn describe(&self, flag: Flag) -> Option<String> {
        let output = |m: &OutputMode| match m {
            OutputMode::Terminal => None,
            OutputMode::Prefixed => Some("prefixed".to_string()),
            OutputMode::Discard => Some("discarded".to_string()),
            OutputMode::File(p) => Some(format!("to {}", p.display())),
        };
        let clock = |c: ClockMode| match c {
            ClockMode::Real => None,
            ClockMode::Frozen(ns) => Some(format!("frozen at {ns} ns")),
        };
        let random = |r: RandomMode| match r {
            RandomMode::Real => None,
            RandomMode::Seeded(seed) => Some(format!("seed {seed}")),
        };
        match flag {
            Flag::Stdout => output(&self.stdout),
            Flag::Stderr => output(&self.stderr),
            Flag::WallClock => clock(self.wall_clock),
            Flag::MonotonicClock => clock(self.monotonic_clock),
            Flag::Random => random(self.random),
            Flag::InsecureRandom => random(self.insecure_random),
            Flag::Stdin | Flag::Exit => None,
        }
    }

    /// Whether a child holding `flag` in `self`'s mode gets no more than a parent
    /// holding it in `parent`'s: data modes are always within; the terminal only
    /// from a parent that has the terminal; real clocks and random only from a
    /// parent that has them.
    fn within(&self, parent: &Modes, flag: Flag) -> Result<(), String> {
        if self.is_data(flag) {
            return Ok(());
        }
        let terminal = |m: &OutputMode| matches!(m, OutputMode::Terminal | OutputMode::Prefixed);
        let ok = match flag {
            Flag::Stdout => terminal(&self.stdout) && terminal(&parent.stdout),
            Flag::Stderr => terminal(&self.stderr) && terminal(&parent.stderr),
            Flag::WallClock => parent.wall_clock == ClockMode::Real,
            Flag::MonotonicClock => parent.monotonic_clock == ClockMode::Real,
            Flag::Random => parent.random == RandomMode::Real,
            Flag::InsecureRandom => parent.insecure_random == RandomMode::Real,
            Flag::Stdin | Flag::Exit => true,
        };
        if ok {
            Ok(())
        } else if matches!(
            (flag, &self.stdout, &self.stderr),
            (Flag::Stdout, OutputMode::File(_), _) | (Flag::Stderr, _, OutputMode::File(_))
        ) {
            Err("only the root may write to a host file (the user's grant)".into())
        } else {
            Err(format!(
                "the parent holds {flag} only in a mode that is not the real one"
            ))
        }
    }
}

/// What a manifest or the command line asks for one nanoprocess.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantRequest {
    pub fs: Vec<DirRequest>,
    pub env: Vec<EnvRequest>,
    /// Arguments are data the parent passes, like literal environment values.
    pub args: Vec<String>,
    pub flags: Flags,
    /// How each held stream, clock and random source behaves.
    pub modes: Modes,
    /// Outbound network patterns (`api.example.com:443`, `udp:10.0.0.0/8:53`...):
    /// where it may connect and send.
    pub network: Vec<String>,
    /// Inbound patterns (`tcp:127.0.0.1:8080`): where it may bind, listen and
    /// receive.
    pub listen: Vec<String>,
    /// Resource limits asked for; `None` takes the child default (capped by the
    /// parent's), or for the root, no limit.
    pub limits: Limits,
}

/// Which part of a [`GrantRequest`] a [`Violation`] is about, so that the manifest
/// layer can point at its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantItem {
    Fs(usize),
    Env(usize),
    Flag(Flag),
    Network(usize),
    Listen(usize),
    Limit(LimitKind),
}

impl fmt::Display for GrantItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantItem::Fs(i) => write!(f, "fs[{i}]"),
            GrantItem::Env(i) => write!(f, "env[{i}]"),
            GrantItem::Flag(flag) => write!(f, "{flag}"),
            GrantItem::Network(i) => write!(f, "network[{i}]"),
            GrantItem::Listen(i) => write!(f, "listen[{i}]"),
            GrantItem::Limit(kind) => write!(f, "{kind}"),
        }
    }
}

/// A grant that exceeds what the parent holds, or that is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub item: GrantItem,
    /// The grant as asked, in manifest syntax.
    pub grant: String,
    /// Why it is refused.
    pub reason: String,
    /// The parent's grant it was compared with, when there was one.
    pub parent_grant: Option<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant {} ({}): {}", self.item, self.grant, self.reason)?;
        if let Some(p) = &self.parent_grant {
            write!(f, " (parent holds: {p})")?;
        }
        Ok(())
    }
}

/// A directory a nanoprocess holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirCap {
    pub guest: GuestPath,
    pub host: PathBuf,
    pub rights: FsRights,
    /// For a directory carved out of the parent's: where it comes from. The
    /// runtime opens it through the parent's *open* directory, never by path.
    pub derived: Option<Derived>,
}

/// Where a dependency's directory was carved from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Derived {
    /// The index, among the parent's directories, of the one it lies in.
    pub parent_dir: usize,
    /// Its components below that directory (none: the same directory).
    pub below_parent: Vec<String>,
    /// The same place seen from the root: the root grant's guest path and the
    /// components below it, for messages that must name what the user granted.
    pub anchor: GuestPath,
    pub below_anchor: Vec<String>,
}

impl fmt::Display for DirCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}) = host {}",
            self.guest,
            self.rights,
            self.host.display()
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvSource {
    Inherited,
    Literal,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub value: String,
    pub source: EnvSource,
}

/// What one nanoprocess holds. Built only by [`Capabilities::for_root`] and
/// [`Capabilities::attenuate`]; [`Capabilities::default`] holds nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub dirs: Vec<DirCap>,
    pub env: BTreeMap<String, EnvVar>,
    pub args: Vec<String>,
    pub flags: Flags,
    /// How each held stream, clock and random source behaves.
    pub modes: Modes,
    /// Where it may connect and send.
    pub network: Vec<network::NetPattern>,
    /// Where it may bind, listen and receive.
    pub listen: Vec<network::NetPattern>,
    /// Resource limits; `None` is unlimited.
    pub limits: Limits,
}

fn describe_dir_request(r: &DirRequest) -> String {
    match &r.source {
        DirSource::Host(h) => format!(
            "host = {:?}, guest = {:?}, rights = {}",
            h.display().to_string(),
            r.guest,
            r.rights
        ),
        DirSource::Parent(p) => format!(
            "from = {:?}, guest = {:?}, rights = {}",
            p, r.guest, r.rights
        ),
    }
}

fn describe_env_request(r: &EnvRequest) -> String {
    match r {
        EnvRequest::Inherit(n) => format!("{n:?}"),
        EnvRequest::Literal(n, v) => format!("\"{n}={v}\""),
    }
}

impl Capabilities {
    /// The root's capabilities: what the user grants. Host directories are taken as
    /// given (the caller resolves them); `from` is meaningless at the root.
    /// `host_env` looks a variable up in the user's environment; a granted variable
    /// that is not set is simply absent.
    pub fn for_root(
        req: &GrantRequest,
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<Capabilities, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut caps = Capabilities {
            // Ending is the root's own business: it always holds `exit`.
            flags: req.flags.with(Flag::Exit),
            modes: req.modes.clone(),
            args: req.args.clone(),
            limits: req.limits,
            ..Default::default()
        };
        for (i, d) in req.fs.iter().enumerate() {
            let violation = |reason: String| Violation {
                item: GrantItem::Fs(i),
                grant: describe_dir_request(d),
                reason,
                parent_grant: None,
            };
            let guest = match GuestPath::parse(&d.guest) {
                Ok(g) => g,
                Err(e) => {
                    violations.push(violation(format!("guest path: {e}")));
                    continue;
                }
            };
            match &d.source {
                DirSource::Host(host) => caps.dirs.push(DirCap {
                    guest,
                    host: host.clone(),
                    rights: d.rights,
                    derived: None,
                }),
                DirSource::Parent(_) => violations.push(violation(
                    "the root has no parent to take a directory `from`; use `host = ...`".into(),
                )),
            }
        }
        check_distinct_guests(&caps.dirs, &mut violations);
        for r in &req.env {
            let (name, var) = match r {
                EnvRequest::Inherit(n) => match host_env(n) {
                    Some(value) => (
                        n,
                        EnvVar {
                            value,
                            source: EnvSource::Inherited,
                        },
                    ),
                    None => continue,
                },
                EnvRequest::Literal(n, v) => (
                    n,
                    EnvVar {
                        value: v.clone(),
                        source: EnvSource::Literal,
                    },
                ),
            };
            caps.env.insert(name.clone(), var);
        }
        caps.network = parse_patterns(&req.network, GrantItem::Network, None, &mut violations);
        caps.listen = parse_patterns(&req.listen, GrantItem::Listen, None, &mut violations);
        if violations.is_empty() {
            Ok(caps)
        } else {
            Err(violations)
        }
    }

    /// A child's capabilities, carved out of `self` (its parent's) as `req` asks, or
    /// every way in which `req` exceeds `self`.
    pub fn attenuate(&self, req: &GrantRequest) -> Result<Capabilities, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut child = Capabilities {
            args: req.args.clone(),
            ..Default::default()
        };

        for (i, d) in req.fs.iter().enumerate() {
            let violation = |reason: String, parent_grant: Option<String>| Violation {
                item: GrantItem::Fs(i),
                grant: describe_dir_request(d),
                reason,
                parent_grant,
            };
            let guest = match GuestPath::parse(&d.guest) {
                Ok(g) => g,
                Err(e) => {
                    violations.push(violation(format!("guest path: {e}"), None));
                    continue;
                }
            };
            let from = match &d.source {
                DirSource::Host(_) => {
                    violations.push(violation(
                        "a dependency cannot name host paths; use `from = \"<a guest path of its parent>\"`"
                            .into(),
                        None,
                    ));
                    continue;
                }
                DirSource::Parent(p) => match GuestPath::parse(p) {
                    Ok(p) => p,
                    Err(e) => {
                        violations.push(violation(format!("`from`: {e}"), None));
                        continue;
                    }
                },
            };
            // The parent's directory that the parent itself would reach `from` through:
            // the deepest guest path containing it, as wasi-libc resolves preopens.
            let Some((parent_ix, parent_dir, rel)) = self
                .dirs
                .iter()
                .enumerate()
                .filter_map(|(ix, p)| from.strip_prefix(&p.guest).map(|rel| (ix, p, rel)))
                .max_by_key(|(_, p, _)| p.guest.depth())
            else {
                let held = if self.dirs.is_empty() {
                    "no directories".to_string()
                } else {
                    self.dirs
                        .iter()
                        .map(|d| format!("{} ({})", d.guest, d.rights))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                violations.push(violation(
                    format!("{from} is not inside any directory the parent holds"),
                    Some(held),
                ));
                continue;
            };
            if !parent_dir.rights.contains(d.rights) {
                violations.push(violation(
                    format!(
                        "asks for {} but the parent holds {} only as {}",
                        d.rights, parent_dir.guest, parent_dir.rights
                    ),
                    Some(format!("{} ({})", parent_dir.guest, parent_dir.rights)),
                ));
                continue;
            }
            let rel: Vec<String> = rel.into_iter().map(str::to_owned).collect();
            let rel_refs: Vec<&str> = rel.iter().map(String::as_str).collect();
            let host = fs::host_join(&parent_dir.host, &rel_refs);
            // Chains of derivations also remember the root grant they lie in, so
            // that messages can name what the user granted.
            let (anchor, below_anchor) = match &parent_dir.derived {
                Some(up) => {
                    let mut all = up.below_anchor.clone();
                    all.extend(rel.iter().cloned());
                    (up.anchor.clone(), all)
                }
                None => (parent_dir.guest.clone(), rel.clone()),
            };
            child.dirs.push(DirCap {
                guest,
                host,
                rights: d.rights,
                derived: Some(Derived {
                    parent_dir: parent_ix,
                    below_parent: rel,
                    anchor,
                    below_anchor,
                }),
            });
        }
        check_distinct_guests(&child.dirs, &mut violations);

        for (i, r) in req.env.iter().enumerate() {
            match r {
                EnvRequest::Inherit(name) => match self.env.get(name) {
                    Some(var) => {
                        child.env.insert(
                            name.clone(),
                            EnvVar {
                                value: var.value.clone(),
                                source: EnvSource::Inherited,
                            },
                        );
                    }
                    None => violations.push(Violation {
                        item: GrantItem::Env(i),
                        grant: describe_env_request(r),
                        reason: format!("the parent does not hold the variable {name}"),
                        parent_grant: Some(self.env_names()),
                    }),
                },
                EnvRequest::Literal(name, value) => {
                    child.env.insert(
                        name.clone(),
                        EnvVar {
                            value: value.clone(),
                            source: EnvSource::Literal,
                        },
                    );
                }
            }
        }

        child.modes = req.modes.clone();
        for flag in req.flags.iter() {
            let held = self.flags.has(flag) || req.modes.is_data(flag);
            let mode = if held {
                if self.flags.has(flag) {
                    req.modes.within(&self.modes, flag)
                } else {
                    Ok(())
                }
            } else {
                Err(format!("the parent does not hold {flag}"))
            };
            match mode {
                Ok(()) => child.flags.set(flag, true),
                Err(reason) => violations.push(Violation {
                    item: GrantItem::Flag(flag),
                    grant: format!("{} = true", flag.key()),
                    reason,
                    parent_grant: Some(format!("{} = {}", flag.key(), self.flags.has(flag))),
                }),
            }
        }

        child.network = parse_patterns(
            &req.network,
            GrantItem::Network,
            Some(&self.network),
            &mut violations,
        );
        child.listen = parse_patterns(
            &req.listen,
            GrantItem::Listen,
            Some(&self.listen),
            &mut violations,
        );

        for kind in LimitKind::ALL {
            let limit = self.limits.get(kind);
            let value = match (req.limits.get(kind), limit) {
                (None, limit) => min_limit(kind.child_default(), limit),
                (Some(asked), None) => Some(asked),
                (Some(asked), Some(limit)) if asked <= limit => Some(asked),
                (Some(asked), Some(limit)) => {
                    violations.push(Violation {
                        item: GrantItem::Limit(kind),
                        grant: format!("{kind} = {:?}", kind.format(asked)),
                        reason: format!("is more than the parent's own {kind} limit"),
                        parent_grant: Some(format!("{kind} = {:?}", kind.format(limit))),
                    });
                    Some(limit)
                }
            };
            child.limits.set(kind, value);
        }

        if violations.is_empty() {
            Ok(child)
        } else {
            Err(violations)
        }
    }

    /// The rule itself: does `self` hold nothing that `parent` does not?
    ///
    /// Directories must lie at or below one of the parent's with no more rights;
    /// inherited variables must be the parent's, with the parent's value; flags must
    /// be the parent's; every limit no larger. Literal variables and arguments
    /// are data the parent writes and are always within.
    pub fn within(&self, parent: &Capabilities) -> bool {
        let dirs = self.dirs.iter().all(|d| {
            parent
                .dirs
                .iter()
                .any(|p| fs::host_path_within(&d.host, &p.host) && p.rights.contains(d.rights))
        });
        let env = self.env.iter().all(|(name, var)| match var.source {
            EnvSource::Literal => true,
            EnvSource::Inherited => parent.env.get(name).is_some_and(|p| p.value == var.value),
        });
        let net = |mine: &[network::NetPattern], theirs: &[network::NetPattern]| {
            mine.iter().all(|p| network::covered_by_any(p, theirs))
        };
        let flags = self.flags.iter().all(|f| {
            self.modes.is_data(f)
                || (parent.flags.has(f) && self.modes.within(&parent.modes, f).is_ok())
        });
        dirs && env
            && self.limits.within(&parent.limits)
            && flags
            && net(&self.network, &parent.network)
            && net(&self.listen, &parent.listen)
    }

    fn env_names(&self) -> String {
        if self.env.is_empty() {
            "no variables".into()
        } else {
            self.env.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// One line per capability family, for `nanoproc check`.
    pub fn summary_lines(&self) -> Vec<(&'static str, String)> {
        let none = || "none".to_string();
        let mut out = Vec::new();
        out.push((
            "fs",
            if self.dirs.is_empty() {
                none()
            } else {
                self.dirs
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            },
        ));
        out.push((
            "env",
            if self.env.is_empty() {
                none()
            } else {
                self.env
                    .iter()
                    .map(|(n, v)| match v.source {
                        EnvSource::Inherited => n.clone(),
                        EnvSource::Literal => format!("{n}={}", v.value),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ));
        if !self.args.is_empty() {
            out.push(("args", format!("{:?}", self.args)));
        }
        let pick = |flags: &[Flag]| {
            let held: Vec<String> = flags
                .iter()
                .filter(|f| self.flags.has(**f))
                .map(|f| match self.modes.describe(*f) {
                    Some(mode) => format!("{} ({mode})", f.key()),
                    None => f.key().to_string(),
                })
                .collect();
            if held.is_empty() {
                none()
            } else {
                held.join(", ")
            }
        };
        out.push(("stdio", pick(&[Flag::Stdin, Flag::Stdout, Flag::Stderr])));
        out.push(("clocks", pick(&[Flag::WallClock, Flag::MonotonicClock])));
        out.push(("random", pick(&[Flag::Random, Flag::InsecureRandom])));
        if self.flags.has(Flag::Exit) {
            out.push(("exit", "may end the application".into()));
        }
        let patterns = |ps: &[network::NetPattern]| {
            ps.iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push((
            "network",
            match (self.network.is_empty(), self.listen.is_empty()) {
                (true, true) => none(),
                (false, true) => format!("connect {}", patterns(&self.network)),
                (true, false) => format!("listen {}", patterns(&self.listen)),
                (false, false) => format!(
                    "connect {}; listen {}",
                    patterns(&self.network),
                    patterns(&self.listen)
                ),
            },
        ));
        let limits: Vec<String> = self
            .limits
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {}", k.format(v))))
            .collect();
        out.push((
            "limits",
            if limits.is_empty() {
                "unlimited".into()
            } else {
                limits.join(", ")
            },
        ));
        out
    }
}

fn min_limit(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn check_distinct_guests(dirs: &[DirCap], violations: &mut Vec<Violation>) {
    for (i, d) in dirs.iter().enumerate() {
        if dirs[..i].iter().any(|e| e.guest == d.guest) {
            violations.push(Violation {
                item: GrantItem::Fs(i),
                grant: d.guest.to_string(),
                reason: "the same guest path is granted twice".into(),
                parent_grant: None,
            });
        }
    }
}

/// Parses network patterns; for a child, each must be covered by one of the
/// parent's (`parent`), checked pattern by pattern (see [`network`]).
fn parse_patterns(
    texts: &[String],
    item: fn(usize) -> GrantItem,
    parent: Option<&[network::NetPattern]>,
    violations: &mut Vec<Violation>,
) -> Vec<network::NetPattern> {
    let mut out = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let violation = |reason: String, parent_grant: Option<String>| Violation {
            item: item(i),
            grant: format!("{text:?}"),
            reason,
            parent_grant,
        };
        let pattern = match network::NetPattern::parse(text) {
            Ok(p) => p,
            Err(e) => {
                violations.push(violation(e, None));
                continue;
            }
        };
        if let Some(parent) = parent
            && !network::covered_by_any(&pattern, parent)
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

/// `1048576` → `1 MiB`; exact units only, so the text parses back to the same number.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} B")
}

/// Parses `64 MiB`, `64MiB`, `512 KiB`, `1 GiB`, `4096` (bytes). Also accepts the
/// decimal `KB`/`MB`/`GB`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: u64 = num
        .parse()
        .map_err(|_| format!("expected a size such as \"64 MiB\", found {s:?}"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}: use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    num.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}
