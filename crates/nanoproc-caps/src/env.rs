//! The environment family: variables (`grants.env`) and arguments (`grants.args`),
//! what `wasi:cli/environment` serves.
//!
//! A variable is either passed through from the parent's environment (the host's,
//! for the root), which the parent must hold, or set to a literal value the parent
//! writes itself. A literal is data, not authority: it names nothing outside the
//! nanoprocess, so any name may be set. Arguments are data too.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Span, Suggestion, Use, ValueKind,
    Violation,
};
use std::collections::BTreeMap;

pub struct Environment;

/// One variable asked for: `NAME` (passed through) or `NAME=value` (a literal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VarRequest {
    pub name: String,
    /// The literal value; `None` passes the parent's through.
    pub literal: Option<String>,
    pub span: Option<Span>,
}

impl VarRequest {
    pub fn inherit(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            literal: None,
            span: None,
        }
    }

    pub fn literal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            literal: Some(value.into()),
            span: None,
        }
    }

    /// `NAME` or `NAME=value`, as written.
    pub fn parse(text: &str) -> Option<Self> {
        let request = match text.split_once('=') {
            Some((n, v)) => Self::literal(n, v),
            None => Self::inherit(text),
        };
        (!request.name.is_empty()).then_some(request)
    }

    fn describe(&self) -> String {
        match &self.literal {
            None => format!("{:?}", self.name),
            Some(v) => format!("\"{}={v}\"", self.name),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvRequest {
    pub vars: Vec<VarRequest>,
    /// Arguments are data the parent passes, like literal values.
    pub args: Vec<String>,
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

/// The variables and arguments a nanoprocess holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvHolding {
    pub vars: BTreeMap<String, EnvVar>,
    pub args: Vec<String>,
}

impl EnvHolding {
    fn names(&self) -> String {
        if self.vars.is_empty() {
            "no variables".into()
        } else {
            self.vars.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

impl Family for Environment {
    const NAME: &'static str = "environment";
    const KEYS: &'static [&'static str] = &["env", "args"];
    type Request = EnvRequest;
    type Holding = EnvHolding;

    /// `env = ["HOME", "MODE=fast"]`, `args = ["--verbose"]`.
    fn parse(
        request: &mut EnvRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let ValueKind::List(items) = &value.kind else {
            return Err(vec![value.error(format!(
                "{key}: expected a list of strings, found {}",
                value.kind_name()
            ))]);
        };
        let mut errors = Vec::new();
        for item in items {
            let Some(text) = item.as_text() else {
                errors.push(item.error(format!(
                    "{key}: expected a string, found {}",
                    item.kind_name()
                )));
                continue;
            };
            if key == "args" {
                request.args.push(text.to_string());
                continue;
            }
            match VarRequest::parse(text) {
                Some(mut var) => {
                    var.span = item.span.clone();
                    request.vars.push(var);
                }
                None => errors.push(item.error("an environment grant is `NAME` or `NAME=value`")),
            }
        }
        crate::family::checked((), errors)
    }

    /// A granted variable that is not set in the user's environment is simply absent.
    fn for_root(request: &EnvRequest, cx: &RootContext<'_>) -> Result<EnvHolding, Vec<Violation>> {
        let mut holding = EnvHolding {
            args: request.args.clone(),
            ..Default::default()
        };
        for r in &request.vars {
            let var = match &r.literal {
                None => match (cx.host_env)(&r.name) {
                    Some(value) => EnvVar {
                        value,
                        source: EnvSource::Inherited,
                    },
                    None => continue,
                },
                Some(v) => EnvVar {
                    value: v.clone(),
                    source: EnvSource::Literal,
                },
            };
            holding.vars.insert(r.name.clone(), var);
        }
        Ok(holding)
    }

    fn attenuate(parent: &EnvHolding, request: &EnvRequest) -> Result<EnvHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut holding = EnvHolding {
            args: request.args.clone(),
            ..Default::default()
        };
        for (i, r) in request.vars.iter().enumerate() {
            let var = match &r.literal {
                Some(value) => EnvVar {
                    value: value.clone(),
                    source: EnvSource::Literal,
                },
                // A literal passed on stays a literal: data some ancestor wrote,
                // which the ancestors above it need not hold.
                None => match parent.vars.get(&r.name) {
                    Some(var) => EnvVar {
                        value: var.value.clone(),
                        source: var.source.clone(),
                    },
                    None => {
                        violations.push(Violation {
                            item: GrantItem::at("env", i),
                            grant: r.describe(),
                            reason: format!("the parent does not hold the variable {}", r.name),
                            parent_grant: Some(parent.names()),
                            span: r.span.clone(),
                        });
                        continue;
                    }
                },
            };
            holding.vars.insert(r.name.clone(), var);
        }
        crate::family::checked(holding, violations)
    }

    /// Inherited variables must be the parent's, with the parent's value; literals
    /// and arguments are always within.
    fn within(child: &EnvHolding, parent: &EnvHolding) -> bool {
        child.vars.iter().all(|(name, var)| match var.source {
            EnvSource::Literal => true,
            EnvSource::Inherited => parent.vars.get(name).is_some_and(|p| p.value == var.value),
        })
    }

    fn holds(holding: &EnvHolding, key: &str) -> bool {
        match key {
            "env" => !holding.vars.is_empty(),
            "args" => !holding.args.is_empty(),
            _ => false,
        }
    }

    fn allows(holding: &EnvHolding, used: &Use<'_>) -> bool {
        match used.key {
            "env" => used
                .target
                .is_none_or(|name| holding.vars.contains_key(name)),
            "args" => true,
            _ => false,
        }
    }

    /// Not learnt. The environment is read whole (`get-environment`), and a
    /// guest's C library reads it at start whether or not the program looks at
    /// it, so which variables a program needs cannot be seen; and a variable
    /// withheld is not refused, only absent, so nothing would show a proposal that
    /// dropped one too many. `nanoproc learn` keeps a manifest's `env` as written.
    fn propose(
        _uses: &[Use<'_>],
        _held: &EnvHolding,
        _parent: Option<&EnvHolding>,
    ) -> Vec<Suggestion> {
        Vec::new()
    }

    fn everything(parent: &EnvHolding, written: &EnvRequest) -> EnvRequest {
        // Every variable passed on, but those the manifest sets to a value of
        // the parent's choosing; the arguments as written (data, not held).
        let mut vars: Vec<VarRequest> = written
            .vars
            .iter()
            .filter(|v| v.literal.is_some())
            .cloned()
            .collect();
        for name in parent.vars.keys() {
            if !vars.iter().any(|v| &v.name == name) {
                vars.push(VarRequest::inherit(name));
            }
        }
        EnvRequest {
            vars,
            args: written.args.clone(),
        }
    }

    fn describe(holding: &EnvHolding) -> Vec<Line> {
        let vars = if holding.vars.is_empty() {
            "none".to_string()
        } else {
            holding
                .vars
                .iter()
                .map(|(n, v)| match v.source {
                    EnvSource::Inherited => n.clone(),
                    EnvSource::Literal => format!("{n}={}", v.value),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut lines = vec![("env", vars)];
        if !holding.args.is_empty() {
            lines.push(("args", format!("{:?}", holding.args)));
        }
        lines
    }
}
