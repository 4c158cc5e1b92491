//! The manifest exactly as written, with spans. Unknown keys are errors: a misspelt
//! grant must never silently grant nothing (or, worse, be mistaken for something else).

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub app: Spanned<RawApp>,
    #[serde(default)]
    pub nanoprocess: BTreeMap<Spanned<String>, Spanned<RawNanoprocess>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub root: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawNanoprocess {
    pub component: Spanned<String>,
    pub digest: Option<Spanned<String>>,
    pub grants: Option<Spanned<RawGrants>>,
    #[serde(default)]
    pub deps: BTreeMap<Spanned<String>, Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
    pub isolation: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestart {
    pub max: u32,
    pub within: Spanned<String>,
}

/// A `grants` table as written: each key with its value, spans everywhere, for the
/// capability family that owns the key to read (see `nanoproc_caps::family`). Which
/// keys exist is the families' business, not this file's: an unknown key is found
/// when no family claims it.
pub struct RawGrants(pub Vec<(Spanned<String>, Spanned<RawValue>)>);

/// A TOML value with the span of every part.
pub enum RawValue {
    Bool(bool),
    Integer(i64),
    Text(String),
    List(Vec<Spanned<RawValue>>),
    Table(Vec<(Spanned<String>, Spanned<RawValue>)>),
}

impl<'de> Deserialize<'de> for RawGrants {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawValue::deserialize(d)? {
            // In the order they are written (toml hands dotted keys over sorted),
            // so that errors are reported in that order.
            RawValue::Table(mut entries) => {
                entries.sort_by_key(|(key, _)| key.span().start);
                Ok(RawGrants(entries))
            }
            _ => Err(serde::de::Error::custom("`grants` must be a table")),
        }
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a grant value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Integer(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawValue, E> {
        i64::try_from(v)
            .map(RawValue::Integer)
            .map_err(|_| E::custom("number too large"))
    }

    /// The number itself is not repeated: it may be half of a secret someone
    /// meant to quote.
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawValue, E> {
        Err(E::custom(
            "a number with a fraction or an exponent: no grant takes one (quote a value that is text)",
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Text(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Text(v))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<RawValue>>()? {
            items.push(item);
        }
        Ok(RawValue::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            entries.push((key, map.next_value::<Spanned<RawValue>>()?));
        }
        Ok(RawValue::Table(entries))
    }
}

/// The value in the form every front end hands to the families.
pub fn grant_value(raw: &Spanned<RawValue>) -> nanoproc_caps::GrantValue {
    use nanoproc_caps::{GrantValue, Key, ValueKind};
    let kind = match raw.get_ref() {
        RawValue::Bool(b) => ValueKind::Bool(*b),
        RawValue::Integer(n) => ValueKind::Integer(*n),
        RawValue::Text(t) => ValueKind::Text(t.clone()),
        RawValue::List(items) => ValueKind::List(items.iter().map(grant_value).collect()),
        RawValue::Table(entries) => ValueKind::Table(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        Key {
                            name: k.get_ref().clone(),
                            span: Some(k.span()),
                        },
                        grant_value(v),
                    )
                })
                .collect(),
        ),
    };
    GrantValue {
        kind,
        span: Some(raw.span()),
    }
}
