//! The configuration family: `wasi:config/store` values (`grants.config`).
//!
//! The user grants the root values: `config = { LOG_LEVEL = "debug", REGION = "eu" }`.
//! A dependency names the keys it gets from its parent, `config = ["LOG_LEVEL"]`,
//! which must be its parent's, with its parent's value; or its parent writes it
//! values of its own, `config = { LOG_LEVEL = "info" }`, which are data and always
//! within. Values may be secrets (a token, a connection string): `check`, the report
//! and the audit record name keys, never values.

use crate::family::{
    Family, GrantError, GrantItem, GrantValue, Line, RootContext, Span, Suggestion, Use, ValueKind,
    Violation, flag, toml_string,
};
use std::collections::BTreeMap;

pub struct Config;

/// One key asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRequest {
    pub key: String,
    /// A value written by the parent; `None` passes the parent's through.
    pub literal: Option<String>,
    pub span: Option<Span>,
}

impl ConfigRequest {
    pub fn inherit(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            literal: None,
            span: None,
        }
    }

    pub fn literal(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            literal: Some(value.into()),
            span: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigValue {
    pub value: String,
    /// The user's value, granted to the root and passed down unchanged (`true`),
    /// which every ancestor holds; or a value a nanoprocess wrote for its child
    /// (`false`), data wherever it is passed on.
    pub inherited: bool,
}

impl Family for Config {
    const NAME: &'static str = "config";
    const KEYS: &'static [&'static str] = &["config"];
    type Request = Vec<ConfigRequest>;
    type Holding = BTreeMap<String, ConfigValue>;

    /// `config = ["KEY", ...]` (keys of the parent's) or `config = { KEY = "value" }`.
    fn parse(
        request: &mut Vec<ConfigRequest>,
        _key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        let mut errors = Vec::new();
        match &value.kind {
            ValueKind::List(items) => {
                for item in items {
                    match item.as_text() {
                        // `KEY=value`, as env is written, would put a value (maybe
                        // a secret) where keys go, and into every message naming
                        // the key: refused without repeating it.
                        Some(key) if key.contains('=') => errors.push(item.error(
                            "config: a list names keys of the parent's; write values as config = { KEY = \"value\" }",
                        )),
                        Some(key) if !key.is_empty() => request.push(ConfigRequest {
                            key: key.to_string(),
                            literal: None,
                            span: item.span.clone(),
                        }),
                        _ => errors.push(item.error("config: expected a key name")),
                    }
                }
            }
            ValueKind::Table(entries) => {
                for (key, v) in entries {
                    if key.name.is_empty() {
                        errors.push(GrantError {
                            span: key.span.clone(),
                            message: "config: a key may not be empty".into(),
                        });
                        continue;
                    }
                    match v.as_text() {
                        Some(text) => request.push(ConfigRequest {
                            key: key.name.clone(),
                            literal: Some(text.to_string()),
                            span: key.span.clone(),
                        }),
                        // `KEY = true` passes the parent's value, as `["KEY"]`
                        // does: so that one table can give a child keys of both
                        // kinds (what `nanoproc learn` writes).
                        None if v.kind == ValueKind::Bool(true) => request.push(ConfigRequest {
                            key: key.name.clone(),
                            literal: None,
                            span: key.span.clone(),
                        }),
                        None => errors.push(v.error(format!(
                            "config: {}: expected a string value, found {}",
                            key.name,
                            v.kind_name()
                        ))),
                    }
                }
            }
            _ => {
                errors.push(value.error(format!(
                    "config: expected {{ KEY = \"value\" }} or a list of keys, found {}",
                    value.kind_name()
                )));
            }
        }
        crate::family::checked((), errors)
    }

    fn for_root(
        request: &Vec<ConfigRequest>,
        _cx: &RootContext<'_>,
    ) -> Result<BTreeMap<String, ConfigValue>, Vec<Violation>> {
        let empty = BTreeMap::new();
        attenuate(&empty, request, true)
    }

    fn attenuate(
        parent: &BTreeMap<String, ConfigValue>,
        request: &Vec<ConfigRequest>,
    ) -> Result<BTreeMap<String, ConfigValue>, Vec<Violation>> {
        attenuate(parent, request, false)
    }

    fn within(
        child: &BTreeMap<String, ConfigValue>,
        parent: &BTreeMap<String, ConfigValue>,
    ) -> bool {
        child
            .iter()
            .all(|(key, v)| !v.inherited || parent.get(key).is_some_and(|p| p.value == v.value))
    }

    /// Keys only: a value may be a secret.
    fn holds(holding: &BTreeMap<String, ConfigValue>, key: &str) -> bool {
        key == "config" && !holding.is_empty()
    }

    fn allows(holding: &BTreeMap<String, ConfigValue>, used: &Use<'_>) -> bool {
        used.key == "config" && used.target.is_none_or(|key| holding.contains_key(key))
    }

    /// The keys read. The root is given their values as they are (the user wrote
    /// them); a dependency names its parent's keys. A read of every key
    /// (`get-all`) keeps every key held.
    fn propose(
        uses: &[Use<'_>],
        held: &BTreeMap<String, ConfigValue>,
        parent: Option<&BTreeMap<String, ConfigValue>>,
    ) -> Vec<Suggestion> {
        let is_root = parent.is_none();
        let reads: Vec<&Use<'_>> = uses.iter().filter(|u| u.key == "config").collect();
        if reads.is_empty() {
            return Vec::new();
        }
        let every = reads.iter().any(|u| u.target.is_none());
        let keys: Vec<&String> = held
            .keys()
            .filter(|k| every || reads.iter().any(|u| u.target == Some(k.as_str())))
            .collect();
        if keys.is_empty() {
            return Vec::new();
        }
        // The root's values are the user's; a dependency's are its parent's
        // (`true`) or written for it by its parent (kept, as data).
        let passed = |k: &str| !is_root && held[k].inherited;
        let value = if keys.iter().all(|k| passed(k)) {
            let names: Vec<String> = keys.iter().map(|k| toml_string(k)).collect();
            format!("[{}]", names.join(", "))
        } else {
            let entries: Vec<String> = keys
                .iter()
                .map(|k| {
                    let value = if passed(k) {
                        "true".to_string()
                    } else {
                        toml_string(&held[*k].value)
                    };
                    format!("{} = {value}", toml_string(k))
                })
                .collect();
            format!("{{ {} }}", entries.join(", "))
        };
        vec![Suggestion {
            flags: keys
                .iter()
                .map(|k| flag("--config", &format!("{k}={}", held[*k].value)))
                .collect(),
            ..Suggestion::new("config", value, None)
        }]
    }

    fn everything(
        parent: &BTreeMap<String, ConfigValue>,
        written: &Vec<ConfigRequest>,
    ) -> Vec<ConfigRequest> {
        // Values the manifest writes for it are the parent's choice: kept.
        let mut out: Vec<ConfigRequest> = written
            .iter()
            .filter(|c| c.literal.is_some())
            .cloned()
            .collect();
        for key in parent.keys() {
            if !out.iter().any(|c| &c.key == key) {
                out.push(ConfigRequest::inherit(key));
            }
        }
        out
    }

    fn describe(holding: &BTreeMap<String, ConfigValue>) -> Vec<Line> {
        if holding.is_empty() {
            return vec![];
        }
        vec![(
            "config",
            holding.keys().cloned().collect::<Vec<_>>().join(", "),
        )]
    }
}

fn attenuate(
    parent: &BTreeMap<String, ConfigValue>,
    request: &[ConfigRequest],
    root: bool,
) -> Result<BTreeMap<String, ConfigValue>, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut holding = BTreeMap::new();
    for (i, r) in request.iter().enumerate() {
        let violation = |reason: String, parent_grant: Option<String>| Violation {
            item: GrantItem::at("config", i),
            grant: format!("{:?}", r.key),
            reason,
            parent_grant,
            span: r.span.clone(),
        };
        if holding.contains_key(&r.key) {
            violations.push(violation("the same key is granted twice".into(), None));
            continue;
        }
        let value = match &r.literal {
            // The root's values are the user's grant; below it, a written value is
            // data, and stays data when passed on (so the rule holds at any depth).
            Some(v) => ConfigValue {
                value: v.clone(),
                inherited: root,
            },
            None if root => {
                violations.push(violation(
                    "the root has no parent to take a value from; write it: config = { KEY = \"value\" }".into(),
                    None,
                ));
                continue;
            }
            None => match parent.get(&r.key) {
                Some(p) => ConfigValue {
                    value: p.value.clone(),
                    inherited: p.inherited,
                },
                None => {
                    let held = if parent.is_empty() {
                        "no keys".to_string()
                    } else {
                        parent.keys().cloned().collect::<Vec<_>>().join(", ")
                    };
                    violations.push(violation(
                        format!("the parent does not hold the key {}", r.key),
                        Some(held),
                    ));
                    continue;
                }
            },
        };
        holding.insert(r.key.clone(), value);
    }
    crate::family::checked(holding, violations)
}
