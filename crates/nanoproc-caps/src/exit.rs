//! The exit family: `wasi:cli/exit`. The root always holds it (ending is its own
//! business); a dependency that holds it ends the whole application when it exits.

use crate::family::{
    Family, GrantError, GrantValue, Line, RootContext, Suggestion, Use, ValueKind, Violation,
};
use crate::switch::{self, Plain, Switch};

pub struct Exit;

impl Family for Exit {
    const NAME: &'static str = "exit";
    const KEYS: &'static [&'static str] = &["exit"];
    type Request = Switch<Plain>;
    type Holding = Option<Plain>;

    fn parse(
        request: &mut Switch<Plain>,
        _key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::Bool(held) = value.kind else {
            return Err(vec![value.error("exit: expected true or false")]);
        };
        *request = Switch {
            held: held.then_some(Plain),
            span: value.span.clone(),
        };
        Ok(())
    }

    fn for_root(
        _request: &Switch<Plain>,
        _cx: &RootContext<'_>,
    ) -> Result<Option<Plain>, Vec<Violation>> {
        Ok(Some(Plain))
    }

    fn attenuate(
        parent: &Option<Plain>,
        request: &Switch<Plain>,
    ) -> Result<Option<Plain>, Vec<Violation>> {
        let mut violations = Vec::new();
        let held = switch::attenuate("exit", parent, request, &mut violations);
        crate::family::checked(held, violations)
    }

    fn within(child: &Option<Plain>, parent: &Option<Plain>) -> bool {
        switch::within(child, parent)
    }

    fn holds(holding: &Option<Plain>, key: &str) -> bool {
        key == "exit" && holding.is_some()
    }

    fn allows(holding: &Option<Plain>, used: &Use<'_>) -> bool {
        used.key == "exit" && holding.is_some()
    }

    fn propose(
        uses: &[Use<'_>],
        _held: &Option<Plain>,
        parent: Option<&Option<Plain>>,
    ) -> Vec<Suggestion> {
        // The root always holds exit: nothing to write for it.
        if parent.is_none() || !uses.iter().any(|u| u.key == "exit") {
            return Vec::new();
        }
        vec![Suggestion::new("exit", "true", None)]
    }

    fn everything(parent: &Option<Plain>, written: &Switch<Plain>) -> Switch<Plain> {
        switch::learning(parent, written)
    }

    fn describe(holding: &Option<Plain>) -> Vec<Line> {
        match holding {
            Some(_) => vec![("exit", "may end the application".into())],
            None => vec![],
        }
    }
}
