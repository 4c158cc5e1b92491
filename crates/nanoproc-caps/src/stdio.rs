//! The stdio family: `stdin`, `stdout` and `stderr`, each held or not; the output
//! streams in a mode that says where they go.

use crate::family::{
    Family, GrantError, GrantValue, Instead, Line, RootContext, Suggestion, Use, ValueKind,
    Violation, flag, toml_string,
};
use crate::switch::{self, Mode, Plain, Switch};
use std::path::PathBuf;

pub struct Stdio;

/// Where a granted output stream goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OutputMode {
    /// The terminal's stream, shared.
    #[default]
    Terminal,
    /// The terminal's stream, each line prefixed with `[path] ` so that the user
    /// can tell who printed what.
    Prefixed,
    /// Nowhere: writes succeed and are dropped. Authority over nothing, so any
    /// nanoprocess may be given it.
    Discard,
    /// Appended to a host file. The user's grant: root only.
    File(PathBuf),
}

impl Mode for OutputMode {
    fn is_data(&self) -> bool {
        *self == OutputMode::Discard
    }

    /// The terminal only from a parent that has the terminal; a host file never.
    fn within(&self, parent: &Self, key: &str) -> Result<(), String> {
        let terminal = |m: &OutputMode| matches!(m, OutputMode::Terminal | OutputMode::Prefixed);
        match self {
            OutputMode::File(_) => {
                Err("only the root may write to a host file (the user's grant)".into())
            }
            _ if terminal(self) && terminal(parent) => Ok(()),
            _ => Err(switch::not_real(key)),
        }
    }

    fn describe(&self) -> Option<String> {
        match self {
            OutputMode::Terminal => None,
            OutputMode::Prefixed => Some("prefixed".to_string()),
            OutputMode::Discard => Some("discarded".to_string()),
            OutputMode::File(p) => Some(format!("to {}", p.display())),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioRequest {
    pub stdin: Switch<Plain>,
    pub stdout: Switch<OutputMode>,
    pub stderr: Switch<OutputMode>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StdioHolding {
    pub stdin: Option<Plain>,
    pub stdout: Option<OutputMode>,
    pub stderr: Option<OutputMode>,
}

const OUTPUT: &str = "true, false, \"prefix\", \"discard\" or { file = \"PATH\" } (root only)";

/// `true`, `false`, `"prefix"`, `"discard"`, `"inherit"` or `{ file = "PATH" }`.
pub fn parse_output(value: &GrantValue) -> Option<Option<OutputMode>> {
    Some(match &value.kind {
        ValueKind::Bool(held) => held.then_some(OutputMode::Terminal),
        ValueKind::Text(w) if w == "prefix" => Some(OutputMode::Prefixed),
        ValueKind::Text(w) if w == "discard" => Some(OutputMode::Discard),
        ValueKind::Text(w) if w == "inherit" => Some(OutputMode::Terminal),
        ValueKind::Table(entries) => match entries.as_slice() {
            [(key, path)] if key.name == "file" => {
                Some(OutputMode::File(PathBuf::from(path.as_text()?)))
            }
            _ => return None,
        },
        _ => return None,
    })
}

impl Family for Stdio {
    const NAME: &'static str = "stdio";
    const KEYS: &'static [&'static str] = &["stdin", "stdout", "stderr"];
    type Request = StdioRequest;
    type Holding = StdioHolding;

    fn parse(
        request: &mut StdioRequest,
        key: &str,
        value: &GrantValue,
    ) -> Result<(), Vec<GrantError>> {
        parse_one(request, key, value).map_err(|e| vec![e])
    }

    fn for_root(
        request: &StdioRequest,
        _cx: &RootContext<'_>,
    ) -> Result<StdioHolding, Vec<Violation>> {
        Ok(StdioHolding {
            stdin: request.stdin.held,
            stdout: request.stdout.held.clone(),
            stderr: request.stderr.held.clone(),
        })
    }

    fn attenuate(
        parent: &StdioHolding,
        request: &StdioRequest,
    ) -> Result<StdioHolding, Vec<Violation>> {
        let mut violations = Vec::new();
        let holding = StdioHolding {
            stdin: switch::attenuate("stdin", &parent.stdin, &request.stdin, &mut violations),
            stdout: switch::attenuate("stdout", &parent.stdout, &request.stdout, &mut violations),
            stderr: switch::attenuate("stderr", &parent.stderr, &request.stderr, &mut violations),
        };
        crate::family::checked(holding, violations)
    }

    fn within(child: &StdioHolding, parent: &StdioHolding) -> bool {
        switch::within(&child.stdin, &parent.stdin)
            && switch::within(&child.stdout, &parent.stdout)
            && switch::within(&child.stderr, &parent.stderr)
    }

    fn holds(holding: &StdioHolding, key: &str) -> bool {
        match key {
            "stdin" => holding.stdin.is_some(),
            "stdout" => holding.stdout.is_some(),
            "stderr" => holding.stderr.is_some(),
            _ => false,
        }
    }

    fn allows(holding: &StdioHolding, used: &Use<'_>) -> bool {
        match used.key {
            "stdin" => holding.stdin.is_some(),
            "stdout" => holding.stdout.is_some(),
            "stderr" => holding.stderr.is_some(),
            _ => false,
        }
    }

    fn propose(
        uses: &[Use<'_>],
        held: &StdioHolding,
        parent: Option<&StdioHolding>,
    ) -> Vec<Suggestion> {
        let used = |key: &str| uses.iter().any(|u| u.key == key);
        let mut out = Vec::new();
        if used("stdin") {
            out.push(Suggestion::new("stdin", "true", Some("--stdin".into())));
        }
        for (key, mode) in [("stdout", &held.stdout), ("stderr", &held.stderr)] {
            if !used(key) {
                continue;
            }
            let is_root = parent.is_none();
            let name = if key == "stdout" {
                "--stdout"
            } else {
                "--stderr"
            };
            let flag_for = |mode: &str| Some(flag(name, mode));
            out.push(match mode {
                Some(OutputMode::Discard) => {
                    let mut s = Suggestion::new(key, "\"discard\"", flag_for("discard"));
                    s.needs_parent = false;
                    s
                }
                Some(OutputMode::Prefixed) => {
                    Suggestion::new(key, "\"prefix\"", flag_for("prefix"))
                }
                Some(OutputMode::File(path)) if is_root => {
                    let path = path.to_string_lossy();
                    Suggestion::new(
                        key,
                        format!("{{ file = {} }}", toml_string(&path)),
                        flag_for(&format!("file={path}")),
                    )
                }
                _ => {
                    let mut s = Suggestion::new(key, "true", flag_for("inherit"));
                    s.instead = Instead::new(
                        "\"discard\"",
                        &format!("--{key} discard"),
                        "output accepted and thrown away, which its parent need not hold",
                    );
                    s
                }
            });
        }
        out
    }

    fn everything(parent: &StdioHolding, written: &StdioRequest) -> StdioRequest {
        // Only the root writes to a host file: a child of one gets its output
        // discarded (it is still a use, and recorded).
        let output = |mode: &Option<OutputMode>| {
            mode.as_ref().map(|m| match m {
                OutputMode::File(_) => OutputMode::Discard,
                other => other.clone(),
            })
        };
        StdioRequest {
            stdin: switch::learning(&parent.stdin, &written.stdin),
            stdout: switch::learning(&output(&parent.stdout), &written.stdout),
            stderr: switch::learning(&output(&parent.stderr), &written.stderr),
        }
    }

    fn describe(holding: &StdioHolding) -> Vec<Line> {
        vec![(
            "stdio",
            switch::line([
                switch::described("stdin", &holding.stdin),
                switch::described("stdout", &holding.stdout),
                switch::described("stderr", &holding.stderr),
            ]),
        )]
    }
}

/// Reads one key's value (see [`Family::parse`]).
fn parse_one(request: &mut StdioRequest, key: &str, value: &GrantValue) -> Result<(), GrantError> {
    let span = value.span.clone();
    if key == "stdin" {
        let ValueKind::Bool(held) = value.kind else {
            return Err(value.error("stdin: expected true or false"));
        };
        request.stdin = Switch {
            held: held.then_some(Plain),
            span,
        };
        return Ok(());
    }
    let held =
        parse_output(value).ok_or_else(|| value.error(format!("{key}: expected {OUTPUT}")))?;
    let switch = Switch { held, span };
    if key == "stdout" {
        request.stdout = switch;
    } else {
        request.stderr = switch;
    }
    Ok(())
}
