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
use nanoproc_caps::{Capabilities, GrantRequest, InParent, LimitsRequest, Suggestion, Use};
use std::collections::BTreeSet;

/// How many uses a proposal keeps in all, every level of the tree counted (a use
/// counts for its nanoprocess and each ancestor): past it, the proposal is
/// incomplete and is not written.
pub const PROPOSAL_USES: usize = 4 * crate::audit::USES_KEPT;
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
    /// Grants a family proposed that, read back, would not be within what the
    /// nanoprocess held (or, at the root, would open a directory that is not
    /// really inside the one granted): left out, with why. None is expected;
    /// this is the check that nothing learnt exceeds what was held.
    pub dropped: Vec<(Suggestion, String)>,
}

impl Plan {
    /// The smallest grants that would have allowed the uses in `uses`, recorded in
    /// a run of this plan (checked for learning).
    pub fn propose(&self, uses: &Uses) -> Proposal {
        let nodes = self.nodes();
        // A use of a node counts for it and for each of its ancestors, aimed at
        // what each of them calls its target: a sorted set per node (so that the
        // proposal is the same whatever order the uses came in), bounded in all,
        // since a use is repeated at every level above it.
        let mut by_node: Vec<BTreeSet<OwnedUse>> = vec![BTreeSet::new(); nodes.len()];
        let mut kept = 0usize;
        let mut not_kept = uses.not_kept;
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
                failed: event.decision == Decision::Failed,
            };
            loop {
                if !by_node[at].contains(&used) {
                    if kept >= PROPOSAL_USES {
                        not_kept += 1;
                        break;
                    }
                    kept += 1;
                    by_node[at].insert(used.clone());
                }
                let Some(p) = nodes[at].parent else { break };
                match nodes[at].caps.in_parent(&used.view(), &nodes[p].caps) {
                    InParent::Same => {}
                    InParent::Renamed(target) => used.target = Some(target),
                    // Nothing the parent can name: it proves nothing about it.
                    InParent::Outside => break,
                }
                at = p;
            }
        }
        // Root first (the plan's order): each dependency's proposal is checked
        // against its parent's, as `check` will check the written manifest.
        let mut proposed: Vec<Capabilities> = Vec::with_capacity(nodes.len());
        let mut proposals = Vec::with_capacity(nodes.len());
        for ((ix, node), (used, refused)) in nodes
            .iter()
            .enumerate()
            .zip(by_node.into_iter().zip(refused))
        {
            let views: Vec<Use<'_>> = used.iter().map(OwnedUse::view).collect();
            let parent_held = node.parent.map(|p| &nodes[p].caps);
            let parent_proposed = node.parent.map(|p| &proposed[p]);
            let grants = node.caps.propose(&views, parent_held);
            let (mut grants, mut dropped, mut caps) = self.read_back(ix, grants, parent_proposed);
            // A narrowed directory that cannot be opened as a dependency's is
            // (through its parent's, each step a directory, not a link): proposed
            // whole instead, as when its paths cannot be trusted.
            if dropped.iter().any(|(g, _)| g.key == "fs") {
                let whole: Vec<Use<'_>> = views
                    .iter()
                    .map(|u| Use {
                        failed: u.failed || u.key == "fs",
                        ..*u
                    })
                    .collect();
                let again = node.caps.propose(&whole, parent_held);
                (grants, dropped, caps) = self.read_back(ix, again, parent_proposed);
            }
            proposed.push(caps);
            proposals.push(NodeProposal {
                nanoprocess: node.path.clone(),
                name: node.name.clone(),
                grants,
                refused,
                dropped,
            });
        }
        Proposal {
            nodes: proposals,
            uses_not_kept: not_kept,
        }
    }

    /// The grants of node `ix` that, read back as a manifest would read them and
    /// derived as `check` would (from the user's for the root, from the parent's
    /// proposal for a dependency), stay within what the node held while it was
    /// learnt; at the root, every directory must also really lie inside one the
    /// user granted (no symbolic link out of it on the way). What does not is
    /// dropped, with why. Also returns what the kept grants hold.
    fn read_back(
        &self,
        ix: usize,
        grants: Vec<Suggestion>,
        parent_proposed: Option<&Capabilities>,
    ) -> (Vec<Suggestion>, Vec<(Suggestion, String)>, Capabilities) {
        let node = &self.nodes()[ix];
        // Limits are not learnt: the node's own, so that they compare equal.
        let base = GrantRequest {
            limits: LimitsRequest {
                values: node.caps.limits,
                spans: Default::default(),
            },
            ..Default::default()
        };
        let derive = |request: &GrantRequest| -> Result<Capabilities, String> {
            let caps = match parent_proposed {
                None => Capabilities::for_root(request, |name| std::env::var(name).ok()),
                Some(parent) => parent.attenuate(request),
            }
            .map_err(|violations| {
                violations
                    .iter()
                    .map(|v| v.reason.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
            if !caps.within(&node.caps) {
                return Err("it would exceed what the nanoprocess held while learning".into());
            }
            match node.parent {
                None => self.root_dirs_inside(&caps)?,
                Some(_) => self.dependency_dirs_open(ix, &caps)?,
            }
            Ok(caps)
        };
        let mut request = base.clone();
        let mut kept = Vec::new();
        let mut dropped = Vec::new();
        for grant in grants {
            let mut trial = request.clone();
            let read = nanoproc_manifest::edit::grant_value(&grant.value)
                .and_then(|value| {
                    trial.parse(grant.key, &value).map_err(|errors| {
                        errors
                            .iter()
                            .map(|e| e.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .and_then(|()| derive(&trial));
            match read {
                Ok(_) => {
                    request = trial;
                    kept.push(grant);
                }
                Err(why) => dropped.push((grant, why)),
            }
        }
        let caps = derive(&request).unwrap_or_default();
        (kept, dropped, caps)
    }

    /// Every directory of a root's proposal, resolved as it would be opened, is
    /// the directory the root holds under that host path, as that was opened.
    /// (Proposals keep a root's host paths: this is the check that they did.)
    fn root_dirs_inside(&self, caps: &Capabilities) -> Result<(), String> {
        let root = &self.nodes()[0];
        for dir in &caps.fs {
            let real = dir
                .host
                .canonicalize()
                .map_err(|e| format!("{}: {e}", dir.host.display()))?;
            let same = root
                .caps
                .fs
                .iter()
                .zip(&root.dirs)
                .filter(|(held, _)| dir.host.starts_with(&held.host))
                .any(|(_, opened)| {
                    opened
                        .host_path()
                        .canonicalize()
                        .is_ok_and(|h| real.starts_with(h))
                });
            if !same {
                return Err(format!(
                    "{} is really {}, outside the directory granted under that path",
                    dir.host.display(),
                    real.display()
                ));
            }
        }
        Ok(())
    }

    /// Every directory of a dependency's proposal can be opened as `check` will
    /// open it: through the directory it held while learning, each step below a
    /// directory, never a symbolic link.
    fn dependency_dirs_open(&self, ix: usize, caps: &Capabilities) -> Result<(), String> {
        let node = &self.nodes()[ix];
        for dir in &caps.fs {
            let Some((opened, below)) =
                node.caps
                    .fs
                    .iter()
                    .zip(&node.dirs)
                    .find_map(|(held, opened)| {
                        dir.guest.strip_prefix(&held.guest).map(|below| {
                            (
                                opened,
                                below.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                            )
                        })
                    })
            else {
                return Err(format!("{} is in no directory it held", dir.guest));
            };
            opened
                .open_below(&below)
                .map_err(|e| format!("{}: {e}", dir.guest))?;
        }
        Ok(())
    }
}

/// A [`Use`] that owns its texts: a child's use seen from an ancestor names its
/// target anew.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OwnedUse {
    key: &'static str,
    operation: &'static str,
    target: Option<String>,
    needs: Option<String>,
    failed: bool,
}

impl OwnedUse {
    fn view(&self) -> Use<'_> {
        Use {
            key: self.key,
            operation: self.operation,
            target: self.target.as_deref(),
            needs: self.needs.as_deref(),
            failed: self.failed,
            refused: false,
        }
    }
}
