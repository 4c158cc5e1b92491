//! The capability model of nanoproc, and its one rule: **a child never holds more than
//! its parent**.
//!
//! Capabilities come in families, one module each: directories ([`fs`]), environment
//! and arguments ([`env`]), stdio ([`stdio`]), clocks ([`clocks`]), random
//! ([`random`]), exit ([`exit`]), network patterns ([`network`]), HTTP requests by
//! URL pattern ([`http`]), configuration
//! values ([`config`]), capabilities an embedding application defines ([`host`]) and
//! resource limits ([`limits`]). Each implements [`Family`]:
//! its grant syntax, how the root's holding is made from the user's request, how a
//! child's request is carved out of its parent's holding, and the rule itself.
//!
//! Two types carry the model, each the families side by side:
//!
//! * [`GrantRequest`] is what a manifest (or the command line) *asks* for one
//!   nanoprocess: directories named relative to its parent's view, environment
//!   variables by name, flags, limits. Every grant is read by
//!   [`GrantRequest::parse`], whichever front end wrote it.
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
//! Adding a family is a module implementing [`Family`] and one line in the
//! `families!` list below (docs/architecture.md has the steps, runtime side included).
//!
//! This crate does no I/O. Host paths are taken as given (the runtime canonicalises
//! the root's and opens every derived directory through its ancestor's sandboxed
//! handle).

pub mod clocks;
pub mod config;
pub mod env;
pub mod exit;
pub mod family;
pub mod fs;
pub mod host;
pub mod http;
pub mod limits;
pub mod network;
pub mod random;
pub mod stdio;
mod switch;

pub use clocks::{
    ClockMode, Clocks, ClocksHolding, ClocksRequest, civil_from_days, format_instant, parse_instant,
};
pub use config::{Config, ConfigRequest, ConfigValue};
pub use env::{EnvHolding, EnvRequest, EnvSource, EnvVar, Environment, VarRequest};
pub use exit::Exit;
pub use family::{
    Family, FamilyInfo, GrantError, GrantItem, GrantValue, InParent, Instead, Key, Line,
    RootContext, Span, Suggestion, Use, ValueKind, Violation, flag, is_invisible, shell_quote,
    toml_string,
};
pub use fs::{
    Derived, DirCap, DirRequest, DirSource, Filesystem, FsRights, GuestPath, GuestPathError,
    Laundering, Region, laundering,
};
pub use host::{CustomRule, Host, HostHolding, HostRequest, ScopeRule, Scopes};
pub use http::{
    Http, HttpHolding, HttpRequest, RequestHost, RequestUrl, Scheme, UrlPattern, is_public,
};
pub use limits::{LimitKind, Limits, LimitsFamily, LimitsRequest, format_millis, parse_millis};
pub use network::{NetPattern, Network, NetworkHolding, NetworkRequest, PatternRequest};
pub use random::{Random, RandomHolding, RandomMode, RandomRequest};
pub use stdio::{OutputMode, Stdio, StdioHolding, StdioRequest};
pub use switch::{Mode, Plain, Switch};

/// Declares the families: the fields of [`GrantRequest`] and [`Capabilities`], and
/// the folds over them. One line per family.
macro_rules! families {
    ($( $(#[$doc:meta])* $field:ident: $family:ty, )*) => {
        /// What a manifest or the command line asks for one nanoprocess: each
        /// family's request.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct GrantRequest {
            $( $(#[$doc])* pub $field: <$family as Family>::Request, )*
        }

        /// What one nanoprocess holds: each family's holding. Built only by
        /// [`Capabilities::for_root`] and [`Capabilities::attenuate`];
        /// [`Capabilities::default`] holds nothing.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Capabilities {
            $( $(#[$doc])* pub $field: <$family as Family>::Holding, )*
        }

        /// Every family, in the order `check` describes them.
        pub const FAMILIES: &[FamilyInfo] = &[
            $( FamilyInfo { name: <$family as Family>::NAME, keys: <$family as Family>::KEYS }, )*
        ];

        impl GrantRequest {
            /// Reads one key of a `grants` table into the family that owns it. A key
            /// no family owns is an error that lists the known ones.
            pub fn parse(&mut self, key: &str, value: &GrantValue) -> Result<(), Vec<GrantError>> {
                $(
                    if <$family as Family>::KEYS.contains(&key) {
                        return <$family as Family>::parse(&mut self.$field, key, value);
                    }
                )*
                Err(vec![family::unknown_key(
                    &Key { name: key.to_string(), span: None },
                    &known_keys(),
                )])
            }
        }

        impl Capabilities {
            /// The root's capabilities: what the user grants.
            pub fn for_root(
                request: &GrantRequest,
                host_env: impl Fn(&str) -> Option<String>,
            ) -> Result<Capabilities, Vec<Violation>> {
                let cx = RootContext { host_env: &host_env };
                let mut violations = Vec::new();
                let caps = Capabilities {
                    $( $field: <$family as Family>::for_root(&request.$field, &cx)
                        .unwrap_or_else(|v| { violations.extend(v); Default::default() }), )*
                };
                crate::family::checked(caps, violations)
            }

            /// A child's capabilities, carved out of `self` (its parent's) as
            /// `request` asks, or every way in which `request` exceeds `self`.
            pub fn attenuate(&self, request: &GrantRequest) -> Result<Capabilities, Vec<Violation>> {
                let mut violations = Vec::new();
                let caps = Capabilities {
                    $( $field: <$family as Family>::attenuate(&self.$field, &request.$field)
                        .unwrap_or_else(|v| { violations.extend(v); Default::default() }), )*
                };
                crate::family::checked(caps, violations)
            }

            /// The rule itself: does `self` hold nothing that `parent` does not?
            pub fn within(&self, parent: &Capabilities) -> bool {
                true $( && <$family as Family>::within(&self.$field, &parent.$field) )*
            }

            /// Whether `self` holds anything under grant key `key`.
            pub fn holds(&self, key: &str) -> bool {
                $(
                    if <$family as Family>::KEYS.contains(&key) {
                        return <$family as Family>::holds(&self.$field, key);
                    }
                )*
                false
            }

            /// Whether `self` allows `used`, by the family that owns its key.
            pub fn allows(&self, used: &Use<'_>) -> bool {
                $(
                    if <$family as Family>::KEYS.contains(&used.key) {
                        return <$family as Family>::allows(&self.$field, used);
                    }
                )*
                false
            }

            /// The smallest grants that allow every one of `uses`, made while
            /// holding `self`, under a parent holding `parent` (`None`: the root),
            /// each family proposing for its own keys ([`Family::propose`]).
            pub fn propose(&self, uses: &[Use<'_>], parent: Option<&Capabilities>) -> Vec<Suggestion> {
                let mut out = Vec::new();
                $(
                    let mine: Vec<Use<'_>> = uses
                        .iter()
                        .filter(|u| <$family as Family>::KEYS.contains(&u.key))
                        .copied()
                        .collect();
                    if !mine.is_empty() {
                        out.extend(<$family as Family>::propose(
                            &mine,
                            &self.$field,
                            parent.map(|p| &p.$field),
                        ));
                    }
                )*
                out
            }

            /// The request of a child that asks for everything `self` holds, so
            /// far as a child may hold it, keeping what `written` gives it as
            /// data or where ([`Family::everything`]): how a dependency is
            /// learnt.
            pub fn everything(&self, written: &GrantRequest) -> GrantRequest {
                GrantRequest {
                    $( $field: <$family as Family>::everything(&self.$field, &written.$field), )*
                }
            }

            /// `used`'s target as `parent` names it, where that differs
            /// ([`Family::in_parent`]).
            pub fn in_parent(&self, used: &Use<'_>, parent: &Capabilities) -> InParent {
                $(
                    if <$family as Family>::KEYS.contains(&used.key) {
                        return <$family as Family>::in_parent(used, &self.$field, &parent.$field);
                    }
                )*
                InParent::Same
            }

            /// One line per capability family, for `nanoproc check`.
            pub fn summary_lines(&self) -> Vec<Line> {
                let mut lines = Vec::new();
                $( lines.extend(<$family as Family>::describe(&self.$field)); )*
                lines
            }
        }
    };
}

families! {
    /// Directories, each with rights per operation.
    fs: Filesystem,
    /// Environment variables and arguments.
    env: Environment,
    /// stdin, stdout, stderr.
    stdio: Stdio,
    /// The wall and monotonic clocks.
    clocks: Clocks,
    /// Secure and insecure random.
    random: Random,
    /// Whether it may end the application.
    exit: Exit,
    /// Where it may connect, send, bind, listen and receive.
    network: Network,
    /// Which HTTP requests it may send (`wasi:http`), by URL pattern.
    http: Http,
    /// `wasi:config/store` values.
    config: Config,
    /// Capabilities the embedding application defines (`grants.host`).
    host: Host,
    /// Resource limits; `None` is unlimited.
    limits: LimitsFamily,
}

/// Every key a `grants` table may have.
pub fn known_keys() -> Vec<&'static str> {
    FAMILIES
        .iter()
        .flat_map(|f| f.keys.iter().copied())
        .collect()
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
