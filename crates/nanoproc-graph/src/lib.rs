//! Pictures of a nanoproc tree, for `nanoproc graph`.
//!
//! A [`Graph`] is what a reviewer wants to see of a checked tree: each
//! nanoprocess with what it holds and what happens when it fails, the interfaces
//! each child serves its parent, and, from an audit log ([`audit::read`]), what
//! each nanoprocess used and was refused in one run. The CLI builds it from a
//! checked plan; this crate only draws it, as Graphviz DOT ([`dot::render`]), a
//! Mermaid flowchart ([`mermaid::render`]) or a self-contained HTML page
//! ([`html::render`]).
//!
//! Every string in a `Graph` was chosen by a manifest's author or by a guest, so
//! each renderer writes them only through [`escape`], and names nodes in its
//! output by their index (`n0`, `n1`...), never by their names.

pub mod audit;
pub mod dot;
pub mod escape;
pub mod html;
pub mod mermaid;

pub use audit::{CapabilityUse, Usage};

/// A tree of nanoprocesses, and optionally what one run of it did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    /// What the picture is of (the manifest's path), for titles.
    pub title: String,
    /// The nanoprocesses, root first; [`Edge`]s refer to them by index.
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Uses and refusals per nanoprocess, from an audit log, if one was given.
    pub usage: Option<Usage>,
}

/// One nanoprocess.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    /// Its path in the tree (`app/analytics`): how every message names it.
    pub path: String,
    /// Its name in the manifest (`analytics`).
    pub name: String,
    /// Its component file, as the manifest names it.
    pub component: String,
    /// What it holds, one line per capability family it holds something of, as
    /// the family describes it (limits included).
    pub grants: Vec<Grant>,
    /// What its failures do to its parent; `None` for the root.
    pub policy: Option<Policy>,
}

/// What a nanoprocess holds of one capability family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grant {
    /// The family (`fs`, `network`, `limits`...).
    pub family: String,
    /// What it holds of it, as `nanoproc check` says it (`/out (read-write)`).
    pub held: String,
}

/// A dependency's failure policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// `trap` or `error`, as the manifest's `on-failure` says.
    pub on_failure: String,
    /// Its restart budget (`up to 3 times within 10s`), if it is restarted.
    pub restart: Option<String>,
}

/// A child serving its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Edge {
    /// Indices into [`Graph::nodes`].
    pub parent: usize,
    pub child: usize,
    /// The parent's imports the child serves (`example:gallery/ids`).
    pub interfaces: Vec<String>,
}

impl Graph {
    /// What the audit log says node `path` did, by capability.
    pub fn usage_of(
        &self,
        path: &str,
    ) -> Option<&std::collections::BTreeMap<String, CapabilityUse>> {
        self.usage.as_ref()?.by_node.get(path)
    }

    /// Nanoprocesses the audit log names that are not in this tree (a log of
    /// another manifest, or an edited one), in order.
    pub fn usage_elsewhere(&self) -> Vec<&str> {
        let Some(usage) = &self.usage else {
            return Vec::new();
        };
        usage
            .by_node
            .keys()
            .filter(|path| !self.nodes.iter().any(|n| &n.path == *path))
            .map(String::as_str)
            .collect()
    }

    /// Whether node `path` was refused anything in the audited run.
    pub fn was_refused(&self, path: &str) -> bool {
        self.usage_of(path)
            .is_some_and(|caps| caps.values().any(|u| u.refused > 0))
    }
}

/// A policy in a few words: `error; restarted up to 3 times within 10s`.
pub(crate) fn policy_text(policy: &Policy) -> String {
    let on_failure = match policy.on_failure.as_str() {
        "trap" => "a failure traps its parent's call".to_string(),
        "error" => "a failure is an `err` to its parent".to_string(),
        other => format!("on failure: {other}"),
    };
    match &policy.restart {
        Some(restart) => format!("{on_failure}; restarted {restart}"),
        None => format!("{on_failure}; never restarted"),
    }
}

/// Counts in words, leaving out zeros: `3 allowed, 6 refused`.
pub(crate) fn counts_text(counts: &CapabilityUse) -> String {
    let parts: Vec<String> = [
        (counts.allowed, "allowed"),
        (counts.refused, "refused"),
        (counts.failed, "failed"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "no decisions".into()
    } else {
        parts.join(", ")
    }
}

/// The refused targets as listed under a capability, with what was left out.
pub(crate) fn refused_lines(counts: &CapabilityUse) -> Vec<String> {
    let mut lines: Vec<String> = counts.refused_targets.clone();
    if counts.refusals_elsewhere > 0 {
        lines.push(format!(
            "... and {} more refusals of other targets",
            counts.refusals_elsewhere
        ));
    }
    lines
}
