//! `nanoproc check`: everything short of running, for a manifest or for a single
//! component with the grant flags `run` takes; for people, or as JSON for tools.

use crate::flags::{CheckArgs, GrantFlags};
use crate::{not_checked, print_notices, print_out, status};
use nanoproc_runtime::{CheckError, Plan, Runtime};
use serde_json::{Value, json};
use std::path::Path;
use std::process::ExitCode;

/// Whether a target is a manifest: its name ends in `.toml`. Anything else is a
/// component (or a WASI preview 1 module) run on its own.
pub fn is_manifest(target: &Path) -> bool {
    target.extension().is_some_and(|e| e == "toml")
}

/// Checks a target as `run` and `check` both do: a manifest with its own grants,
/// or a single component holding what `flags` give it. `Err` is a usage error
/// (status 2): grant flags with a manifest, or a flag whose value is bad.
pub fn plan_of(
    runtime: &Runtime,
    target: &Path,
    flags: &GrantFlags,
    root_args: &[String],
    locked: bool,
) -> Result<Result<Plan, CheckError>, String> {
    if is_manifest(target) {
        if flags.any() {
            return Err(format!(
                "grant flags apply to a single component; a manifest's grants are in the manifest ({})",
                target.display()
            ));
        }
        // A tree with a lock beside it must be the tree that was approved (see
        // `lock`): checked before anything runs, as a grant is.
        let checked = runtime.check_manifest(target, root_args).and_then(|plan| {
            let warnings =
                crate::lock::enforce(&plan, target, locked, runtime.max_component_size())?;
            for w in warnings {
                eprintln!("nanoproc: warning: {}", crate::report::printable(&w));
            }
            Ok(plan)
        });
        Ok(checked)
    } else if locked {
        Err("--locked applies to a manifest, whose lock is beside it".into())
    } else {
        let grants = flags.grants()?;
        Ok(runtime.check_component(target, grants, root_args))
    }
}

pub fn check(runtime: &Runtime, args: &CheckArgs) -> ExitCode {
    let checked = match plan_of(runtime, &args.target, &args.grants, &[], args.locked) {
        Ok(checked) => checked,
        Err(usage) => {
            eprintln!("nanoproc: {usage}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        let (value, code) = match &checked {
            Ok(plan) => (plan_json(plan), ExitCode::SUCCESS),
            Err(e) => (errors_json(e), exit_status(e)),
        };
        // Names and paths are the manifest author's text: escaped where serde_json
        // leaves characters a terminal acts on or hides.
        print_out(&format!(
            "{}\n",
            crate::diagnostics::json_escaped(&format!("{value:#}"))
        ));
        return code;
    }
    match checked {
        Ok(plan) => {
            print_notices(&plan);
            print_out(&format!(
                "{}ok: {} nanoprocess{}, every grant within its parent's{}\n",
                // Names, paths and grants are the manifest author's text: each
                // line made safe for the terminal (the tree's own lines are not
                // control characters, and stay).
                plan.describe()
                    .lines()
                    .map(|l| crate::report::printable(l) + "\n")
                    .collect::<String>(),
                plan.nodes().len(),
                if plan.nodes().len() == 1 { "" } else { "es" },
                if plan.has_concurrency_support() {
                    "; async nanoprocesses (WASI 0.3) run with concurrency support, which \
                     makes every call between nanoprocesses of this tree dearer \
                     (docs/BENCHMARKS.md)"
                } else {
                    ""
                }
            ));
            ExitCode::SUCCESS
        }
        Err(e) => not_checked(&e),
    }
}

/// The status a check that failed exits with: 125 for a refusal, 126 when the
/// engine could not be set up.
fn exit_status(error: &CheckError) -> ExitCode {
    ExitCode::from(match error {
        CheckError::Refused(_) => status::REFUSED_AT_CHECK,
        CheckError::Engine(_) => status::CANNOT_START,
    })
}

/// A checked tree for tools: each nanoprocess with its path in the tree, its
/// parent's, its component, its isolation and the store it runs in, what it holds (one summary per family, as the
/// text form prints them), and the notices.
fn plan_json(plan: &Plan) -> Value {
    let nodes = plan.nodes();
    let nanoprocesses: Vec<Value> = nodes
        .iter()
        .map(|node| {
            let capabilities: serde_json::Map<String, Value> = node
                .capability_summary()
                .into_iter()
                .map(|(family, text)| (family.to_string(), Value::String(text)))
                .collect();
            // Where it runs: its own store, or the store of the nanoprocess it
            // is fused into.
            let store = match node.placement {
                nanoproc_runtime::Placement::OwnStore => &*node.path,
                nanoproc_runtime::Placement::FusedInto { host } => &*nodes[host].path,
            };
            json!({
                "path": &*node.path,
                "parent": node.parent.map(|p| &*nodes[p].path),
                "component": node.component_path.display().to_string(),
                "isolation": if store == &*node.path { "isolated" } else { "fused" },
                "store": store,
                "async": node.is_async,
                "capabilities": capabilities,
            })
        })
        .collect();
    json!({
        "ok": true,
        "concurrency_support": plan.has_concurrency_support(),
        "nanoprocesses": nanoprocesses,
        "notices": plan.notices(),
    })
}

/// Every error of a check that failed, each where the manifest says it is (file,
/// line and column are `null` for an error about no place in it).
fn errors_json(error: &CheckError) -> Value {
    let errors: Vec<Value> = match error {
        CheckError::Refused(errors) => errors
            .0
            .iter()
            .map(|e| {
                let at = e.location.as_ref();
                json!({
                    "file": at.map(|l| l.file.display().to_string()),
                    "line": at.map(|l| l.line),
                    "column": at.map(|l| l.column),
                    "message": e.message,
                    "help": e.help,
                })
            })
            .collect(),
        CheckError::Engine(_) => vec![json!({
            "file": null,
            "line": null,
            "column": null,
            "message": error.to_string(),
            "help": null,
        })],
    };
    json!({ "ok": false, "errors": errors })
}
