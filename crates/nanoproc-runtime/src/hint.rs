//! How to grant what was refused: for every refusal of a run, the grant that would
//! have allowed it, at the nanoprocess that was refused and at every ancestor that
//! lacks it too (a child can hold only what its parent holds), written as the user
//! writes it: `run` flags for a single component, manifest lines for a tree.
//!
//! The grants themselves are the families' ([`nanoproc_caps::Family::propose`]):
//! this module only walks the tree. A hint is advice printed to the user, who
//! decides; nothing here widens a grant.

use crate::audit::{Decision, Event};
use crate::plan::Plan;
use nanoproc_caps::{InParent, Suggestion, Use};
use std::fmt;
use std::sync::Arc;

/// The grants that would have allowed one refused use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hint {
    /// Root first: each nanoprocess that must gain a grant, and the grant.
    pub steps: Vec<HintStep>,
    /// The plan is one component granted by flags: say flags, not manifest keys.
    pub single_component: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HintStep {
    /// Its path in the tree.
    pub nanoprocess: Arc<str>,
    /// Its name in the manifest: `[nanoprocess.NAME]`.
    pub name: String,
    pub grant: Suggestion,
}

impl Plan {
    /// The grants that would have allowed `event`, a refusal recorded in a run of
    /// this plan; `None` for an event that is not a refusal, or that no grant
    /// allows (a descriptor whose loan ended, a path outside every directory).
    pub fn hint(&self, event: &Event) -> Option<Hint> {
        if event.decision != Decision::Refused {
            return None;
        }
        let nodes = self.nodes();
        let mut at = nodes.iter().position(|n| n.path == event.nanoprocess)?;
        // The target as each nanoprocess up the tree names it.
        let mut target = event.target.clone();
        let mut steps = Vec::new();
        loop {
            let used = Use {
                key: event.capability,
                operation: event.operation,
                target: target.as_deref(),
                needs: event.needs.as_deref(),
                failed: false,
                refused: true,
            };
            let node = &nodes[at];
            // Refused although its grants allow it (a path through `..`, a loan
            // that has ended): no grant would help.
            if steps.is_empty() && node.caps.allows(&used) {
                return None;
            }
            let parent = node.parent.map(|p| &nodes[p].caps);
            let grant = node
                .caps
                .propose(std::slice::from_ref(&used), parent)
                .into_iter()
                .next()?;
            let climb = grant.needs_parent;
            steps.push(HintStep {
                nanoprocess: node.path.clone(),
                name: node.name.clone(),
                grant,
            });
            let Some(p) = node.parent.filter(|_| climb) else {
                break;
            };
            // The parent may name the target otherwise (a directory the child
            // sees at its own guest path), or not at all.
            let in_parent = match node.caps.in_parent(&used, &nodes[p].caps) {
                InParent::Same => target.clone(),
                InParent::Renamed(renamed) => Some(renamed),
                InParent::Outside => break,
            };
            let seen_by_parent = Use {
                target: in_parent.as_deref(),
                ..used
            };
            if nodes[p].caps.allows(&seen_by_parent) {
                break;
            }
            target = in_parent;
            at = p;
        }
        steps.reverse();
        Some(Hint {
            steps,
            single_component: self.inner.single_component,
        })
    }
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(last) = self.steps.last() else {
            return Ok(());
        };
        if self.single_component {
            if last.grant.flags.is_empty() {
                return write!(
                    f,
                    "no flag grants it; use a manifest with `{}`",
                    last.grant.manifest_line()
                );
            }
            write!(f, "grant it with {}", last.grant.flags.join(" "))?;
        } else {
            for (i, step) in self.steps.iter().enumerate() {
                let sep = match i {
                    0 => "add",
                    _ => ", then",
                };
                write!(
                    f,
                    "{sep} `{}` to [nanoprocess.{}]",
                    step.grant.manifest_line(),
                    step.name
                )?;
            }
        }
        if let Some(instead) = &last.grant.instead {
            if self.single_component {
                write!(f, " (or {}: {})", instead.flags.join(" "), instead.meaning)?;
            } else {
                write!(f, " (or `{}`: {})", instead.value, instead.meaning)?;
            }
        }
        if last.grant.key == "fs" && !self.single_component {
            f.write_str(", each replacing that nanoprocess's grant of the directory")?;
        }
        Ok(())
    }
}

impl Plan {
    /// What `nanoprocess`'s component can ask for (from its imports) that it does
    /// not hold: each grant key, with the interfaces behind it. For a run that a
    /// refusal ended, so that one run tells every grant the component may need,
    /// not only the first it was refused. Empty if the component cannot be read
    /// again (within `max_size` bytes) or asks for nothing more.
    pub fn ungranted(&self, nanoprocess: &str, max_size: u64) -> Vec<(String, Vec<String>)> {
        let Some(node) = self.nodes().iter().find(|n| &*n.path == nanoprocess) else {
            return Vec::new();
        };
        let Ok(surface) = crate::surface::inspect_file(&node.component_path, max_size) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for import in &surface.imports {
            for key in &import.grant_keys {
                // The root always holds `exit`; arguments are not asked for.
                if node.caps.holds(key) || key == "args" || (key == "exit" && node.parent.is_none())
                {
                    continue;
                }
                match out.iter_mut().find(|(k, _)| k == key) {
                    Some((_, interfaces)) => interfaces.push(import.name.clone()),
                    None => out.push((key.clone(), vec![import.name.clone()])),
                }
            }
        }
        for (_, interfaces) in &mut out {
            interfaces.sort();
            interfaces.dedup();
        }
        out
    }
}
