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
    /// Boxed: most of a nanoprocess's size, and absent from most dependencies, so
    /// that a manifest of many nanoprocesses costs memory for what it says.
    pub grants: Option<Spanned<Box<RawGrants>>>,
    #[serde(default)]
    pub deps: BTreeMap<Spanned<String>, Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
    pub restart: Option<Spanned<RawRestart>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestart {
    pub max: u32,
    pub within: Spanned<String>,
}

/// A limit is a number (`handles = 100`) or text with a unit (`memory = "64 MiB"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawLimit {
    Number(u64),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawGrants {
    #[serde(default)]
    pub fs: Vec<Spanned<RawDir>>,
    #[serde(default)]
    pub env: Vec<Spanned<String>>,
    #[serde(default)]
    pub args: Vec<String>,
    pub stdin: Option<Spanned<RawMode>>,
    pub stdout: Option<Spanned<RawMode>>,
    pub stderr: Option<Spanned<RawMode>>,
    pub wall_clock: Option<Spanned<RawMode>>,
    pub monotonic_clock: Option<Spanned<RawMode>>,
    pub random: Option<Spanned<RawMode>>,
    pub insecure_random: Option<Spanned<RawMode>>,
    pub exit: Option<Spanned<RawMode>>,
    #[serde(default)]
    pub network: Vec<Spanned<String>>,
    #[serde(default)]
    pub listen: Vec<Spanned<String>>,
    pub memory: Option<Spanned<RawLimit>>,
    pub tables: Option<Spanned<RawLimit>>,
    pub instances: Option<Spanned<RawLimit>>,
    pub handles: Option<Spanned<RawLimit>>,
    pub fuel: Option<Spanned<RawLimit>>,
    pub timeout: Option<Spanned<RawLimit>>,
    pub output: Option<Spanned<RawLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDir {
    pub host: Option<String>,
    pub from: Option<String>,
    pub guest: String,
    pub rights: Spanned<RawRights>,
}

/// `rights = "read-only"`, `rights = "read+create"` or `rights = ["read", "create"]`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawRights {
    Text(String),
    List(Vec<String>),
}

impl RawRights {
    pub fn text(&self) -> String {
        match self {
            RawRights::Text(t) => t.clone(),
            RawRights::List(l) => l.join("+"),
        }
    }
}

/// A capability that is held or not, optionally in a mode: `true`, `false`, a word
/// (`"prefix"`, `"discard"`, `"frozen"`, an instant) or a table (`{ file = "..." }`,
/// `{ seed = 42 }`).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawMode {
    Held(bool),
    Word(String),
    Table(RawModeTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModeTable {
    pub file: Option<String>,
    pub seed: Option<u64>,
}
