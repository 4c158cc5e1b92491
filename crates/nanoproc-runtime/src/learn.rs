//! Least privilege, learnt: the smallest grants that would have allowed what a
//! run did. A plan checked for learning ([`crate::Runtime::check_manifest_learning`])
//! gives every dependency everything its parent holds; a learning record
//! ([`crate::Audit::learning`]) keeps every distinct use; [`Plan::propose`] asks
//! each family for the grants those uses need ([`nanoproc_caps::Family::propose`]).
//!
//! A parent can pass on only what it holds, so each nanoprocess is proposed what
//! it used *and* what its descendants used (while learning they see what it sees,
//! at the same paths and patterns, so their uses read the same at every level).
//! What was refused during learning is beyond what the parent held: it is never
//! part of the proposal, only shown, with the lines that would grant it.

use crate::audit::{Decision, Event, Uses};
use crate::hint::Hint;
use crate::plan::Plan;
use nanoproc_caps::{Suggestion, Use};
use std::sync::Arc;

/// What a learning run proposes, nanoprocess by nanoprocess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// In the plan's order: the root first.
    pub nodes: Vec<NodeProposal>,
    /// Distinct uses the record could not keep: a proposal made without them
    /// would refuse what they did, so it must not be applied.
    pub uses_not_kept: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeProposal {
    /// Its path in the tree.
    pub nanoprocess: Arc<str>,
    /// Its name in the manifest: `[nanoprocess.NAME]`.
    pub name: String,
    /// The grants that allow what it and its descendants used.
    pub grants: Vec<Suggestion>,
    /// What it was refused (its parent did not hold it either), with the grants
    /// that would allow it: each one a widening for the user to decide on.
    pub refused: Vec<(Event, Option<Hint>)>,
}

impl Plan {
    /// The smallest grants that would have allowed the uses in `uses`, recorded in
    /// a run of this plan (checked for learning).
    pub fn propose(&self, uses: &Uses) -> Proposal {
        let nodes = self.nodes();
        // A use of a node counts for it and for each of its ancestors, aimed at
        // what each of them calls its target.
        let mut by_node: Vec<Vec<OwnedUse>> = vec![Vec::new(); nodes.len()];
        let mut refused: Vec<Vec<(Event, Option<Hint>)>> = vec![Vec::new(); nodes.len()];
        for event in &uses.events {
            let Some(mut at) = nodes.iter().position(|n| n.path == event.nanoprocess) else {
                continue;
            };
            if event.decision == Decision::Refused {
                refused[at].push((event.clone(), self.hint(event)));
                continue;
            }
            let mut used = OwnedUse {
                key: event.capability,
                operation: event.operation,
                target: event.target.clone(),
                needs: event.needs.clone(),
            };
            loop {
                if !by_node[at].contains(&used) {
                    by_node[at].push(used.clone());
                }
                let Some(p) = nodes[at].parent else { break };
                if let Some(target) = nodes[at].caps.in_parent(&used.view(), &nodes[p].caps) {
                    used.target = Some(target);
                }
                at = p;
            }
        }
        let proposals = nodes
            .iter()
            .zip(by_node)
            .zip(refused)
            .map(|((node, used), refused)| {
                let used: Vec<Use<'_>> = used.iter().map(OwnedUse::view).collect();
                NodeProposal {
                    nanoprocess: node.path.clone(),
                    name: node.name.clone(),
                    grants: node
                        .caps
                        .propose(&used, node.parent.map(|p| &nodes[p].caps)),
                    refused,
                }
            })
            .collect();
        Proposal {
            nodes: proposals,
            uses_not_kept: uses.not_kept,
        }
    }
}

/// A [`Use`] that owns its texts: a child's use seen from an ancestor names its
/// target anew.
#[derive(Clone, Debug, PartialEq, Eq)]
struct OwnedUse {
    key: &'static str,
    operation: &'static str,
    target: Option<String>,
    needs: Option<String>,
}

impl OwnedUse {
    fn view(&self) -> Use<'_> {
        Use {
            key: self.key,
            operation: self.operation,
            target: self.target.as_deref(),
            needs: self.needs.as_deref(),
        }
    }
}
