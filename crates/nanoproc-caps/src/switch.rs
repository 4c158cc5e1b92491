//! What the families of capabilities that are simply held or not share: stdin, the
//! output streams, the clocks, the random sources and `exit` are each one key
//! holding `true`, `false` or a mode.
//!
//! A mode is either authority the parent passes on (the real clock, the terminal),
//! which the parent must hold in a mode at least as real, or data the parent
//! chooses (a frozen clock, a seed, discarded output), which reveals and reaches
//! nothing outside the nanoprocess, so that any nanoprocess may be given it.

use crate::family::{GrantItem, Span, Violation};
use std::fmt;

/// How a held capability behaves.
pub trait Mode: Clone + fmt::Debug + PartialEq {
    /// Whether holding it in this mode is data the parent chose rather than
    /// authority it passes on: then the parent need not hold it itself.
    fn is_data(&self) -> bool;
    /// Whether a child holding it in `self`'s mode gets no more than a parent
    /// holding it in `parent`'s (for a mode that is not data); `key` names it.
    fn within(&self, parent: &Self, key: &str) -> Result<(), String>;
    /// The mode in words, unless it is the plain real one.
    fn describe(&self) -> Option<String>;
}

/// The mode of a capability that has none: held or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plain;

impl Mode for Plain {
    fn is_data(&self) -> bool {
        false
    }
    fn within(&self, _parent: &Self, _key: &str) -> Result<(), String> {
        Ok(())
    }
    fn describe(&self) -> Option<String> {
        None
    }
}

/// One key as asked: held in a mode, or not (`false`, or not written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switch<M> {
    pub held: Option<M>,
    pub span: Option<Span>,
}

impl<M> Default for Switch<M> {
    fn default() -> Self {
        Self {
            held: None,
            span: None,
        }
    }
}

impl<M> Switch<M> {
    pub fn held(mode: M) -> Self {
        Self {
            held: Some(mode),
            span: None,
        }
    }
}

/// A child's holding of `key`: what it asks if that is within its parent's.
pub(crate) fn attenuate<M: Mode>(
    key: &'static str,
    parent: &Option<M>,
    asked: &Switch<M>,
    violations: &mut Vec<Violation>,
) -> Option<M> {
    let mode = asked.held.as_ref()?;
    let verdict = match parent {
        _ if mode.is_data() => Ok(()),
        Some(theirs) => mode.within(theirs, key),
        None => Err(format!("the parent does not hold {key}")),
    };
    match verdict {
        Ok(()) => Some(mode.clone()),
        Err(reason) => {
            violations.push(Violation {
                item: GrantItem::key(key),
                grant: format!("{key} = true"),
                reason,
                parent_grant: Some(format!("{key} = {}", parent.is_some())),
                span: asked.span.clone(),
            });
            None
        }
    }
}

/// The rule for one key. Holding what the parent holds, in the same mode, is
/// within it even where `attenuate` refuses to pass that mode on (a host file).
pub(crate) fn within<M: Mode>(child: &Option<M>, parent: &Option<M>) -> bool {
    match (child, parent) {
        (None, _) => true,
        (Some(mine), _) if mine.is_data() => true,
        (Some(mine), Some(theirs)) => mine == theirs || mine.within(theirs, "").is_ok(),
        (Some(_), None) => false,
    }
}

/// `key` or `key (mode)` if it is held.
pub(crate) fn described<M: Mode>(key: &str, held: &Option<M>) -> Option<String> {
    let mode = held.as_ref()?;
    Some(match mode.describe() {
        Some(words) => format!("{key} ({words})"),
        None => key.to_string(),
    })
}

/// The held keys, described; `none` if none is.
pub(crate) fn line(held: impl IntoIterator<Item = Option<String>>) -> String {
    let held: Vec<String> = held.into_iter().flatten().collect();
    if held.is_empty() {
        "none".into()
    } else {
        held.join(", ")
    }
}

/// The reason a real mode is refused when the parent holds only data.
pub(crate) fn not_real(key: &str) -> String {
    format!("the parent holds {key} only in a mode that is not the real one")
}

/// For learning: a switch that is data as written stays as written; otherwise
/// the parent's holding, in the parent's mode.
pub(crate) fn learning<M: Mode>(parent: &Option<M>, written: &Switch<M>) -> Switch<M> {
    match &written.held {
        Some(mode) if mode.is_data() => written.clone(),
        _ => Switch {
            held: parent.clone(),
            span: None,
        },
    }
}
