//! Rewriting the grants of a manifest in place, keeping everything else of it as
//! the user wrote it (comments, order, layout): what `nanoproc learn --write`
//! applies. The new values are TOML written by the capability families
//! ([`nanoproc_caps::Suggestion::value`]); each is parsed here before it is
//! written, so a value that is not TOML (or that would add keys of its own) is an
//! error, never a corrupted manifest.

use toml_edit::{DocumentMut, Item, Table, Value};

/// The grants of one nanoprocess to write: `(key, TOML value)` pairs, replacing
/// every grant key of the families that propose (`replaced`), and keeping the
/// others (limits, arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantsEdit {
    /// The name in `[nanoprocess.NAME]`.
    pub nanoprocess: String,
    pub grants: Vec<(String, String)>,
}

/// `source` (a manifest's text) with each edit's grants in place of the keys in
/// `replaced` of that nanoprocess's `grants`; keys not in `replaced` are kept.
pub fn replace_grants(
    source: &str,
    edits: &[GrantsEdit],
    replaced: &[&str],
) -> Result<String, String> {
    let mut doc: DocumentMut = source
        .parse()
        .map_err(|e| format!("the manifest is not valid TOML: {e}"))?;
    for edit in edits {
        let node = doc
            .get_mut("nanoprocess")
            .and_then(|n| n.get_mut(&edit.nanoprocess))
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| format!("no [nanoprocess.{}] table", edit.nanoprocess))?;
        let mut values = Vec::new();
        for (i, (key, _)) in edit.grants.iter().enumerate() {
            // One key, one value: a second would silently replace the first.
            if edit.grants[..i].iter().any(|(k, _)| k == key) {
                return Err(format!(
                    "[nanoprocess.{}] grants.{key} is proposed twice",
                    edit.nanoprocess
                ));
            }
        }
        for (key, text) in &edit.grants {
            let value: Value = text.parse().map_err(|e| {
                format!(
                    "[nanoprocess.{}] grants.{key}: {text:?} is not a TOML value: {e}",
                    edit.nanoprocess
                )
            })?;
            values.push((key, value));
        }
        if node.get("grants").is_none() {
            if values.is_empty() {
                continue;
            }
            // Written as `grants.KEY = ...` lines, as the examples write them.
            let mut table = Table::new();
            table.set_dotted(true);
            node.insert("grants", Item::Table(table));
        }
        let grants = node
            .get_mut("grants")
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| format!("[nanoprocess.{}] grants is not a table", edit.nanoprocess))?;
        let stale: Vec<String> = grants
            .iter()
            .map(|(k, _)| k.to_string())
            .filter(|k| replaced.contains(&k.as_str()))
            .collect();
        for key in stale {
            grants.remove(&key);
        }
        for (key, value) in values {
            grants.insert(key, Item::Value(value));
        }
        // A grants table left empty says nothing: removed, so that the
        // nanoprocess reads as holding nothing, which it does.
        if grants.is_empty() {
            node.remove("grants");
        }
    }
    Ok(doc.to_string())
}

/// The grant keys `[nanoprocess.NAME]` writes in `source`, or none if it has no
/// such table: what a proposal is compared with, to show what it adds.
pub fn written_grant_keys(source: &str, nanoprocess: &str) -> Vec<String> {
    let Ok(doc) = source.parse::<DocumentMut>() else {
        return Vec::new();
    };
    doc.get("nanoprocess")
        .and_then(|n| n.get(nanoprocess))
        .and_then(|n| n.get("grants"))
        .and_then(Item::as_table_like)
        .map(|g| g.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default()
}

/// A grant's value written as TOML (a proposal's), read as the manifest reads a
/// grant: the families then parse it like any other.
pub fn grant_value(text: &str) -> Result<nanoproc_caps::GrantValue, String> {
    let table: toml::Table =
        toml::from_str(&format!("v = {text}")).map_err(|e| format!("{text:?} is not TOML: {e}"))?;
    match (table.len(), table.get("v")) {
        (1, Some(v)) => Ok(value_of(v)),
        _ => Err(format!("{text:?} is not one TOML value")),
    }
}

fn value_of(v: &toml::Value) -> nanoproc_caps::GrantValue {
    use nanoproc_caps::{GrantValue, Key, ValueKind};
    GrantValue::new(match v {
        toml::Value::Boolean(b) => ValueKind::Bool(*b),
        toml::Value::Integer(i) => ValueKind::Integer(*i),
        toml::Value::String(s) => ValueKind::Text(s.clone()),
        toml::Value::Array(items) => ValueKind::List(items.iter().map(value_of).collect()),
        toml::Value::Table(t) => ValueKind::Table(
            t.iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.clone(),
                            span: None,
                        },
                        value_of(v),
                    )
                })
                .collect(),
        ),
        // Floats and dates: no family reads them; as text, so that the family
        // refuses them by name.
        other => ValueKind::Text(other.to_string()),
    })
}

/// The grants `[nanoprocess.NAME]` writes in `source`, each key's value in
/// canonical TOML ([`canonical`]): what a lock records as approved.
pub fn written_grants(
    source: &str,
    nanoprocess: &str,
) -> std::collections::BTreeMap<String, String> {
    let Ok(table) = toml::from_str::<toml::Table>(source) else {
        return Default::default();
    };
    table
        .get("nanoprocess")
        .and_then(|n| n.get(nanoprocess))
        .and_then(|n| n.get("grants"))
        .and_then(toml::Value::as_table)
        .map(|g| g.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        .unwrap_or_default()
}

/// A value in one canonical TOML form (inline, keys sorted), so that two
/// spellings of the same grant compare equal.
pub fn canonical(value: &toml::Value) -> String {
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(name: &str, grants: &[(&str, &str)]) -> GrantsEdit {
        GrantsEdit {
            nanoprocess: name.into(),
            grants: grants
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const REPLACED: &[&str] = &["fs", "random", "env", "wall-clock"];

    #[test]
    fn dotted_grants_are_replaced_and_the_rest_kept() {
        let source = "# the app\n[nanoprocess.app]\ncomponent = \"a.wasm\" # built\ngrants.fs = [{ host = \".\", guest = \"/\", rights = \"read-write\" }]\ngrants.random = true\ngrants.memory = \"16 MiB\"\n";
        let out = replace_grants(
            source,
            &[edit(
                "app",
                &[(
                    "fs",
                    "[{ host = \"./d\", guest = \"/d\", rights = \"read\" }]",
                )],
            )],
            REPLACED,
        )
        .unwrap();
        assert!(out.starts_with("# the app\n"), "{out}");
        assert!(out.contains("component = \"a.wasm\" # built"), "{out}");
        assert!(out.contains("grants.memory = \"16 MiB\""), "{out}");
        assert!(!out.contains("grants.random"), "{out}");
        assert!(out.contains("grants.fs = [{ host = \"./d\""), "{out}");
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            parsed["nanoprocess"]["app"]["grants"]["fs"][0]["rights"].as_str(),
            Some("read")
        );
    }

    #[test]
    fn a_grants_table_is_created_or_removed() {
        let source = "[nanoprocess.a]\ncomponent = \"a.wasm\"\n\n[nanoprocess.b]\ncomponent = \"b.wasm\"\ngrants.random = true\n";
        let out = replace_grants(
            source,
            &[edit("a", &[("random", "{ seed = 1 }")]), edit("b", &[])],
            REPLACED,
        )
        .unwrap();
        let parsed: toml::Table = toml::from_str(&out).unwrap();
        assert_eq!(
            parsed["nanoprocess"]["a"]["grants"]["random"]["seed"].as_integer(),
            Some(1)
        );
        assert!(parsed["nanoprocess"]["b"].get("grants").is_none(), "{out}");
    }

    #[test]
    fn a_value_that_is_not_toml_is_refused() {
        let source = "[nanoprocess.a]\ncomponent = \"a.wasm\"\n";
        for bad in ["true\ngrants.exit = true", "\"x\" }", ""] {
            assert!(
                replace_grants(source, &[edit("a", &[("random", bad)])], REPLACED).is_err(),
                "{bad:?}"
            );
        }
    }
}
