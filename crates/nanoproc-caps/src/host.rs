//! Host-defined capabilities: interfaces an embedding application implements in
//! Rust (a key-value store, "send this e-mail", its own database) and grants to
//! its plugins like any WASI capability (`grants.host`).
//!
//! ```toml
//! [nanoprocess.app.grants.host]
//! kv = ["plugins/app/"]      # the keys under these prefixes
//! mailer = true              # everything the parent holds of it
//! ```
//!
//! Each host family is one entry of the `host` table, named by the host when it
//! registers the family with the runtime. The grammar is the same for every host
//! family (`true`, `false`, or a list of scopes); what a scope means, and so how a
//! child is narrowed, is the family's [`ScopeRule`]: a key prefix, an exact name,
//! or no scopes at all (held or not), or a covering relation of the host's own
//! ([`CustomRule`]). Scopes are opaque strings to nanoproc: a
//! prefix covers by bytes, and what a key means is the host's business.
//!
//! The rule comes from the runtime that registered the family, not from the
//! manifest: a request is read without it ([`HostRequest::rule`] is `None`) and
//! the runtime fills it in ([`resolve`]). A request left unresolved is refused,
//! naming the family as host-defined: that is what the `nanoproc` command, which
//! defines none, says of a manifest written for some host application.
//!
//! Attenuation is as everywhere: a child's scope must be covered by one of its
//! parent's, under the parent's rule, so the rule holds at every depth by
//! induction, and [`Host::within`] re-checks it.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Span, Suggestion, Use, ValueKind,
    Violation,
};
use std::collections::BTreeMap;
use std::fmt;

pub struct Host;

/// How a host family's scopes cover one another and the targets of its calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeRule {
    /// A scope is a prefix: `"users/"` covers `"users/ann"` and the scope
    /// `"users/ann/"`. The empty prefix covers everything.
    Prefix,
    /// A scope is a name: it covers itself only.
    Exact,
    /// No scopes: the family is held or not (`true` or `false`).
    Switch,
    /// A covering relation of the host's own (see [`CustomRule`]).
    Custom(CustomRule),
}

/// A covering relation a host defines for its family, when neither a prefix nor
/// a name fits (a mail domain covering addresses, a numeric range covering
/// numbers). `covers(scope, inner)` says whether `scope` covers `inner`, a
/// narrower scope or a call's target. It must be reflexive and transitive: a
/// child's scope is checked against its parent's only, so that what a grandchild
/// holds is within the root's only if covering passes down the chain. Two rules
/// are the same rule when their names are equal.
#[derive(Clone, Copy)]
pub struct CustomRule {
    name: &'static str,
    covers: fn(&str, &str) -> bool,
}

impl CustomRule {
    pub const fn new(name: &'static str, covers: fn(&str, &str) -> bool) -> Self {
        Self { name, covers }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for CustomRule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for CustomRule {}

impl std::hash::Hash for CustomRule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomRule({:?})", self.name)
    }
}

impl ScopeRule {
    /// Whether `scope` covers `inner` (a narrower scope or a call's target).
    pub fn covers(self, scope: &str, inner: &str) -> bool {
        match self {
            ScopeRule::Prefix => inner.starts_with(scope),
            ScopeRule::Exact | ScopeRule::Switch => inner == scope,
            ScopeRule::Custom(rule) => (rule.covers)(scope, inner),
        }
    }

    fn word(self) -> &'static str {
        match self {
            ScopeRule::Prefix => "prefixes",
            ScopeRule::Exact => "names",
            ScopeRule::Switch => "on or off",
            ScopeRule::Custom(rule) => rule.name,
        }
    }
}

/// What a grant of one host family asks for, or what is held of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scopes {
    /// Everything (the root: all of it; a child: all its parent holds).
    All,
    /// Only these scopes (never empty in a holding: holding none is not holding).
    Only(Vec<String>),
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scopes::All => f.write_str("all"),
            Scopes::Only(scopes) => {
                let quoted: Vec<String> = scopes.iter().map(|s| format!("{s:?}")).collect();
                f.write_str(&quoted.join(", "))
            }
        }
    }
}

/// One host family's grant, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRequest {
    /// The family's name, the key in the `host` table.
    pub family: String,
    pub scopes: Scopes,
    /// The family's rule, filled in by the runtime that registered it ([`resolve`]);
    /// `None`: no such family is registered, and the grant is refused.
    pub rule: Option<ScopeRule>,
    pub span: Option<Span>,
}

/// What a nanoprocess holds of one host family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostHolding {
    pub rule: ScopeRule,
    pub scopes: Scopes,
}

impl HostHolding {
    /// Whether a call aimed at `target` is allowed. A call without a target (one
    /// that is not about any one scope) needs only that the family is held.
    pub fn allows(&self, target: Option<&str>) -> bool {
        match (&self.scopes, target) {
            (Scopes::All, _) | (_, None) => true,
            (Scopes::Only(scopes), Some(target)) => {
                scopes.iter().any(|s| self.rule.covers(s, target))
            }
        }
    }

    /// Whether every scope of `self` is covered by `parent`'s, under the same rule.
    fn within(&self, parent: &HostHolding) -> bool {
        self.rule == parent.rule
            && match (&self.scopes, &parent.scopes) {
                (_, Scopes::All) => true,
                (Scopes::All, Scopes::Only(_)) => false,
                (Scopes::Only(mine), Scopes::Only(theirs)) => mine
                    .iter()
                    .all(|m| theirs.iter().any(|t| parent.rule.covers(t, m))),
            }
    }
}

/// Fills in each request's rule from the host families a runtime registered
/// (`rule_of` answers `None` for a name it does not know, which leaves the request
/// to be refused).
pub fn resolve(requests: &mut [HostRequest], rule_of: impl Fn(&str) -> Option<ScopeRule>) {
    for request in requests {
        request.rule = rule_of(&request.family);
    }
}

/// Whether `name` may name a host family: what a TOML bare key and a message can
/// carry without quoting, and an audit line without escaping.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase()
}

impl Family for Host {
    const NAME: &'static str = "host";
    const KEYS: &'static [&'static str] = &["host"];
    type Request = Vec<HostRequest>;
    type Holding = BTreeMap<String, HostHolding>;

    /// `host = { NAME = true | false | ["scope", ...] }`.
    fn parse(
        request: &mut Vec<HostRequest>,
        _key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::Table(entries) = &value.kind else {
            return Err(vec![value.error(format!(
                "host: expected a table of host-defined capabilities, such as host = {{ kv = [\"users/\"] }}, found {}",
                value.kind_name()
            ))]);
        };
        let mut errors = Vec::new();
        for (key, v) in entries {
            let name = &key.name;
            if !valid_name(name) {
                errors.push(GrantError {
                    span: key.span.clone(),
                    message: "host: a host-defined capability's name is a lowercase letter, then lowercase letters, digits, `-` or `_` (at most 64)".into(),
                });
                continue;
            }
            if request.iter().any(|r| &r.family == name) {
                errors.push(GrantError {
                    span: key.span.clone(),
                    message: format!("host: {name} is granted twice"),
                });
                continue;
            }
            let scopes = match &v.kind {
                ValueKind::Bool(true) => Scopes::All,
                ValueKind::Bool(false) => continue,
                ValueKind::List(items) => {
                    let mut scopes = Vec::new();
                    for item in items {
                        match item.as_text() {
                            Some(text) => scopes.push(text.to_string()),
                            None => errors.push(item.error(format!(
                                "host: {name}: expected a scope (a string), found {}",
                                item.kind_name()
                            ))),
                        }
                    }
                    if scopes.is_empty() {
                        // Holding no scope is not holding: say it as `false`.
                        continue;
                    }
                    Scopes::Only(scopes)
                }
                _ => {
                    errors.push(v.error(format!(
                        "host: {name}: expected true, false or a list of scopes, found {}",
                        v.kind_name()
                    )));
                    continue;
                }
            };
            request.push(HostRequest {
                family: name.clone(),
                scopes,
                rule: None,
                span: v.span.clone().or(key.span.clone()),
            });
        }
        crate::family::checked((), errors)
    }

    fn for_root(
        request: &Vec<HostRequest>,
        _cx: &RootContext<'_>,
    ) -> Result<BTreeMap<String, HostHolding>, Vec<Violation>> {
        attenuate(None, request)
    }

    fn attenuate(
        parent: &BTreeMap<String, HostHolding>,
        request: &Vec<HostRequest>,
    ) -> Result<BTreeMap<String, HostHolding>, Vec<Violation>> {
        attenuate(Some(parent), request)
    }

    fn within(
        child: &BTreeMap<String, HostHolding>,
        parent: &BTreeMap<String, HostHolding>,
    ) -> bool {
        child
            .iter()
            .all(|(name, held)| parent.get(name).is_some_and(|p| held.within(p)))
    }

    fn holds(holding: &BTreeMap<String, HostHolding>, key: &str) -> bool {
        key == "host" && !holding.is_empty()
    }

    /// A host family's uses are recorded under its own name (`kv`), not `host`.
    fn allows(holding: &BTreeMap<String, HostHolding>, used: &Use<'_>) -> bool {
        holding
            .get(used.key)
            .is_some_and(|held| held.allows(used.target))
    }

    /// Not proposed: what a host family's scopes should be is the host's design.
    fn propose(
        _uses: &[Use<'_>],
        _held: &BTreeMap<String, HostHolding>,
        _parent: Option<&BTreeMap<String, HostHolding>>,
    ) -> Vec<Suggestion> {
        Vec::new()
    }

    fn everything(
        parent: &BTreeMap<String, HostHolding>,
        _written: &Vec<HostRequest>,
    ) -> Vec<HostRequest> {
        parent
            .iter()
            .map(|(name, held)| HostRequest {
                family: name.clone(),
                scopes: Scopes::All,
                rule: Some(held.rule),
                span: None,
            })
            .collect()
    }

    fn describe(holding: &BTreeMap<String, HostHolding>) -> Vec<Line> {
        if holding.is_empty() {
            return vec![];
        }
        let parts: Vec<String> = holding
            .iter()
            .map(|(name, held)| match (&held.scopes, held.rule) {
                (Scopes::All, _) => format!("{name} (all)"),
                (scopes, rule) => format!("{name} ({} {scopes})", rule.word()),
            })
            .collect();
        vec![("host", parts.join("; "))]
    }
}

/// The holding a request asks for: the root's (`parent` is `None`) or a child's,
/// carved out of its parent's.
fn attenuate(
    parent: Option<&BTreeMap<String, HostHolding>>,
    request: &[HostRequest],
) -> Result<BTreeMap<String, HostHolding>, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut holding = BTreeMap::new();
    for (i, r) in request.iter().enumerate() {
        let violation = |reason: String, parent_grant: Option<String>| Violation {
            item: GrantItem::at("host", i),
            grant: format!("{} = {}", r.family, r.scopes),
            reason,
            parent_grant,
            span: r.span.clone(),
        };
        let Some(rule) = r.rule else {
            violations.push(violation(
                format!(
                    "`{}` is a host-defined capability (grants.host), and this runtime does not define it: \
                     only the application that registers it can grant it (the `nanoproc` command \
                     defines none; docs/embedding.md)",
                    r.family
                ),
                None,
            ));
            continue;
        };
        if rule == ScopeRule::Switch && matches!(r.scopes, Scopes::Only(_)) {
            violations.push(violation(
                format!("`{}` has no scopes: grant it as true or false", r.family),
                None,
            ));
            continue;
        }
        let Some(parent) = parent else {
            holding.insert(
                r.family.clone(),
                HostHolding {
                    rule,
                    scopes: r.scopes.clone(),
                },
            );
            continue;
        };
        let Some(theirs) = parent.get(&r.family) else {
            violations.push(violation(
                format!(
                    "the parent does not hold the host capability `{}`",
                    r.family
                ),
                None,
            ));
            continue;
        };
        // The parent's rule is the one it was granted under.
        let asked = HostHolding {
            rule: theirs.rule,
            scopes: match &r.scopes {
                Scopes::All => theirs.scopes.clone(),
                only => only.clone(),
            },
        };
        if !asked.within(theirs) {
            let outside: Vec<String> = match &asked.scopes {
                Scopes::Only(mine) => mine
                    .iter()
                    .filter(|m| match &theirs.scopes {
                        Scopes::All => false,
                        Scopes::Only(t) => !t.iter().any(|t| theirs.rule.covers(t, m)),
                    })
                    .map(|m| format!("{m:?}"))
                    .collect(),
                Scopes::All => vec!["all".into()],
            };
            violations.push(violation(
                format!(
                    "{} not within the parent's {} of `{}`",
                    outside.join(", "),
                    theirs.rule.word(),
                    r.family
                ),
                Some(format!("{} = {}", r.family, theirs.scopes)),
            ));
            continue;
        }
        holding.insert(r.family.clone(), asked);
    }
    crate::family::checked(holding, violations)
}
