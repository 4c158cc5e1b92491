//! What every capability family has, and the one input its grant syntax is read from.
//!
//! A family (directories, environment, stdio, clocks, random, exit, network, http,
//! configuration, limits) is one module of this crate implementing [`Family`]: how a
//! grant is written ([`Family::parse`]), what the root holds from the user's request
//! ([`Family::for_root`]), how a child's request is carved out of its parent's holding
//! ([`Family::attenuate`]), the rule itself ([`Family::within`]) and how a holding is
//! described to people ([`Family::describe`]). `Capabilities` and `GrantRequest` are
//! the families side by side (see the `families!` list in the crate root); their
//! `attenuate` and `within` fold over the families, so the rule holds for a
//! nanoprocess when it holds for each family.
//!
//! Grants are read from [`GrantValue`]s, whether they were written in a manifest
//! (with their byte spans, so that an error can point at its line) or built from a
//! command-line flag: there is one grammar per family, not one per front end.

use std::fmt;
use std::ops::Range;

/// Byte offsets in the manifest a grant was written in.
pub type Span = Range<usize>;

/// A grant value as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantValue {
    pub kind: ValueKind,
    /// Where it was written; `None` for a value built from a command-line flag.
    pub span: Option<Span>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    Bool(bool),
    Integer(i64),
    Text(String),
    List(Vec<GrantValue>),
    Table(Vec<(Key, GrantValue)>),
}

/// A key of a table, and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub span: Option<Span>,
}

impl GrantValue {
    pub fn new(kind: ValueKind) -> Self {
        Self { kind, span: None }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self::new(ValueKind::Text(text.into()))
    }

    pub fn bool(held: bool) -> Self {
        Self::new(ValueKind::Bool(held))
    }

    pub fn list(items: Vec<GrantValue>) -> Self {
        Self::new(ValueKind::List(items))
    }

    pub fn table<'a>(entries: impl IntoIterator<Item = (&'a str, GrantValue)>) -> Self {
        Self::new(ValueKind::Table(
            entries
                .into_iter()
                .map(|(name, value)| {
                    (
                        Key {
                            name: name.to_string(),
                            span: None,
                        },
                        value,
                    )
                })
                .collect(),
        ))
    }

    pub fn as_text(&self) -> Option<&str> {
        match &self.kind {
            ValueKind::Text(t) => Some(t),
            _ => None,
        }
    }

    /// What kind of value it is, for "expected ..., found ..." messages.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ValueKind::Bool(_) => "a boolean",
            ValueKind::Integer(_) => "a number",
            ValueKind::Text(_) => "a string",
            ValueKind::List(_) => "a list",
            ValueKind::Table(_) => "a table",
        }
    }

    /// An error about this value.
    pub fn error(&self, message: impl Into<String>) -> GrantError {
        GrantError {
            span: self.span.clone(),
            message: message.into(),
        }
    }

    /// The entries of a table whose keys must be among `known`: every other key is
    /// an error (a misspelt key must never silently grant nothing).
    pub fn table_entries(&self, known: &[&str]) -> Result<Vec<(&Key, &GrantValue)>, GrantError> {
        let ValueKind::Table(entries) = &self.kind else {
            return Err(self.error(format!(
                "expected a table with {}, found {}",
                list_keys(known),
                self.kind_name()
            )));
        };
        for (key, _) in entries {
            if !known.contains(&key.name.as_str()) {
                return Err(unknown_key(key, known));
            }
        }
        Ok(entries.iter().map(|(k, v)| (k, v)).collect())
    }
}

/// A grant that cannot be read: the message says what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantError {
    pub span: Option<Span>,
    pub message: String,
}

impl fmt::Display for GrantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The error for a key no one reads, in the words serde uses for a struct's
/// unknown field (so that every front end reports it alike).
pub fn unknown_key(key: &Key, known: &[&str]) -> GrantError {
    GrantError {
        span: key.span.clone(),
        message: format!(
            "unknown field `{}`, expected one of {}",
            key.name,
            list_keys(known)
        ),
    }
}

fn list_keys(known: &[&str]) -> String {
    known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which grant a [`Violation`] is about: the key, and the item of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantItem {
    pub key: &'static str,
    pub index: Option<usize>,
}

impl GrantItem {
    pub fn key(key: &'static str) -> Self {
        Self { key, index: None }
    }

    pub fn at(key: &'static str, index: usize) -> Self {
        Self {
            key,
            index: Some(index),
        }
    }
}

impl fmt::Display for GrantItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]", self.key),
            None => f.write_str(self.key),
        }
    }
}

/// A grant that exceeds what the parent holds, or that is malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub item: GrantItem,
    /// The grant as asked, in manifest syntax.
    pub grant: String,
    /// Why it is refused.
    pub reason: String,
    /// The parent's grant it was compared with, when there was one.
    pub parent_grant: Option<String>,
    /// Where the grant was written, when it was.
    pub span: Option<Span>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant {} ({}): {}", self.item, self.grant, self.reason)?;
        if let Some(p) = &self.parent_grant {
            write!(f, " (parent holds: {p})")?;
        }
        Ok(())
    }
}

/// What the root's grants may read from the host: only the user's environment.
pub struct RootContext<'a> {
    /// Looks a variable up in the user's environment.
    pub host_env: &'a dyn Fn(&str) -> Option<String>,
}

/// One line of `nanoproc check`'s description of a nanoprocess: a family's label
/// and what it holds, in words.
pub type Line = (&'static str, String);

/// A capability family: its grant syntax, its attenuation and its rule.
///
/// Implementations must keep one promise, which the property tests check for
/// every family: whatever `request` asks, `attenuate(parent, request)` is either
/// refused or `within(parent)`. A family that can be held "as data" (a frozen
/// clock, a literal variable: nothing that reaches outside the nanoprocess) says
/// so in `attenuate` and `within` alike.
pub trait Family {
    /// Its name in messages and documentation.
    const NAME: &'static str;
    /// The keys of a `grants` table it reads.
    const KEYS: &'static [&'static str];
    /// What a manifest or the command line asks for.
    type Request: Clone + fmt::Debug + Default + PartialEq;
    /// What a nanoprocess holds; `Default` holds nothing.
    type Holding: Clone + fmt::Debug + Default + PartialEq;

    /// Reads the value of one of its keys into `request`; every part it cannot
    /// read is an error (a list with two bad items, two errors), and what it could
    /// read is kept.
    fn parse(
        request: &mut Self::Request,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>>;

    /// What the root holds when the user asks for `request`.
    fn for_root(
        request: &Self::Request,
        cx: &RootContext<'_>,
    ) -> Result<Self::Holding, Vec<Violation>>;

    /// What a child asking for `request` holds, carved out of its parent's
    /// holding, or every way in which the request exceeds it.
    fn attenuate(
        parent: &Self::Holding,
        request: &Self::Request,
    ) -> Result<Self::Holding, Vec<Violation>>;

    /// The rule: `child` holds nothing that `parent` does not.
    fn within(child: &Self::Holding, parent: &Self::Holding) -> bool;

    /// Its lines in `nanoproc check` (none where there is nothing to say).
    fn describe(holding: &Self::Holding) -> Vec<Line>;

    /// Whether `holding` holds anything under `key` (one of this family's keys).
    fn holds(holding: &Self::Holding, key: &str) -> bool;

    /// Whether `holding` allows `used` (a use under one of this family's keys):
    /// where a refusal's hint stops climbing the tree, and what `learn` checks
    /// its proposal against.
    fn allows(holding: &Self::Holding, used: &Use<'_>) -> bool;

    /// The smallest grants under this family's keys that allow every one of
    /// `uses` (each under one of its keys), for a nanoprocess that made them while
    /// holding `held`, whose parent holds `parent` (`None`: the root, whose grants
    /// the user writes, naming host paths; a dependency names its parent's). Nothing for uses it has no grant
    /// for. A mode that is data (a frozen clock, seeded random) is offered in
    /// [`Suggestion::instead`]: whether the values were needed is the user's call.
    fn propose(
        uses: &[Use<'_>],
        held: &Self::Holding,
        parent: Option<&Self::Holding>,
    ) -> Vec<Suggestion>;

    /// The request of a child that asks for everything `parent` holds, so far as
    /// a child may hold it: what a dependency holds while `nanoproc learn`
    /// watches what it uses. What its manifest grants it (`written`) is kept where
    /// it is data the parent chooses (a frozen clock, a literal value, limits) or
    /// says where the child sees something (a directory's guest path), since the
    /// child's code relies on it; authority is everything the parent holds. It
    /// still goes through [`Family::attenuate`], so it is within the parent's.
    fn everything(parent: &Self::Holding, written: &Self::Request) -> Self::Request;

    /// `used`'s target as its parent names it, where that differs (a directory a
    /// child sees at its own guest path): a child can use only what its parent
    /// holds, so `nanoproc learn` proposes each child's uses to its parent too.
    /// Most families name a target the same way at every level.
    fn in_parent(_used: &Use<'_>, _held: &Self::Holding, _parent: &Self::Holding) -> InParent {
        InParent::Same
    }
}

/// A use's target as a parent names it ([`Family::in_parent`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InParent {
    /// The parent names it the same way.
    Same,
    /// The parent names it so.
    Renamed(String),
    /// The parent has no name for it: the use proves nothing about the parent,
    /// and is not proposed to it.
    Outside,
}

/// One use of a capability, as the runtime records it in the audit (its
/// `capability`, `operation`, `target` and `needs`): what a refusal's hint and
/// `nanoproc learn` are made of. Every text in it may be a guest's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Use<'a> {
    /// The grant key the use falls under (`random`, `fs`, `network`...).
    pub key: &'a str,
    /// The WASI function, e.g. `wasi:sockets/tcp.connect`.
    pub operation: &'a str,
    /// What it aimed at: a guest path, an address, a name, a config key.
    pub target: Option<&'a str>,
    /// What the operation needed beyond the key, where the family records it (the
    /// rights a filesystem operation needed, e.g. `read+list`).
    pub needs: Option<&'a str>,
    /// The grants allowed it but the operation failed (the sandbox or the system
    /// refused it): it used the grant, but proves nothing about its target (a
    /// path that failed may lead through a symbolic link out of the directory).
    pub failed: bool,
    /// It was refused: proposed for a hint, not learnt from. The runtime's own
    /// decision, which the family may not be able to repeat (a connection allowed
    /// through a name it was looked up by).
    pub refused: bool,
}

/// A grant to write: `grants.KEY = VALUE` in a manifest, or a flag of
/// `nanoproc run` for a single component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub key: &'static str,
    /// The value, in TOML.
    pub value: String,
    /// The same grant as `run` flags (each flag with its value), where flags can
    /// say it.
    pub flags: Vec<String>,
    /// Whether the grant gives authority the parent must hold itself (a real
    /// clock, a directory), rather than data the parent may choose freely (a
    /// frozen clock, seeded random, discarded output).
    pub needs_parent: bool,
    /// A weaker grant that may be enough (a frozen clock for one that was only
    /// read to measure).
    pub instead: Option<Instead>,
}

/// A weaker grant than a [`Suggestion`]'s, which may be enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instead {
    /// The value, in TOML.
    pub value: String,
    /// The same as `run` flags.
    pub flags: Vec<String>,
    /// What it means.
    pub meaning: &'static str,
}

impl Instead {
    pub fn new(value: &str, flag: &str, meaning: &'static str) -> Option<Self> {
        Some(Self {
            value: value.into(),
            flags: vec![flag.into()],
            meaning,
        })
    }
}

impl Suggestion {
    pub fn new(key: &'static str, value: impl Into<String>, flag: Option<String>) -> Self {
        Self {
            key,
            value: value.into(),
            flags: flag.into_iter().collect(),
            needs_parent: true,
            instead: None,
        }
    }

    /// The manifest line: `grants.KEY = VALUE`.
    pub fn manifest_line(&self) -> String {
        format!("grants.{} = {}", self.key, self.value)
    }
}

/// `text` as a TOML basic string, quotes and escapes included: guest-chosen text
/// (a path, a host name) must not end the string early and add keys of its own,
/// nor reorder what a reader sees (bidirectional controls are escaped too).
pub fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_invisible(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Characters that change how the text around them is shown without showing
/// themselves: bidirectional controls, zero-width characters, the BOM.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// A `run` flag with its value, the value quoted for a POSIX shell where it needs
/// it: a proposed command is meant to be pasted, and its values (paths, names)
/// may be a guest's choice.
pub fn flag(name: &str, value: &str) -> String {
    format!("{name} {}", shell_quote(value))
}

/// `text` as one shell word: as is when it has only characters no shell treats
/// specially, else in single quotes. Text with a control or invisible character
/// in it is written `$'...'` with that character escaped (bash, zsh and ksh read
/// it back to the same bytes), so that the command printed is safe on a terminal
/// and pastes to what it says.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@,+%".contains(c));
    if plain {
        return text.to_string();
    }
    if !text.chars().any(|c| c.is_control() || is_invisible(c)) {
        return format!("'{}'", text.replace('\'', "'\\''"));
    }
    let mut out = String::from("$'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || is_invisible(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A family's name and keys, for help texts and the list of known keys.
#[derive(Clone, Copy, Debug)]
pub struct FamilyInfo {
    pub name: &'static str,
    pub keys: &'static [&'static str],
}

/// `value` if nothing went wrong making it, else every error: how each family
/// reports a request it read or carved only in part.
pub(crate) fn checked<T, E>(value: T, errors: Vec<E>) -> Result<T, Vec<E>> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(errors)
    }
}

/// `none` for an empty list, else its items joined.
pub(crate) fn joined<T: fmt::Display>(items: &[T], sep: &str) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
    }
}
