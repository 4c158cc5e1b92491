//! `nanoproc inspect FILE [--json]`: what a component (or WASI preview 1 module)
//! can ask for, from its imports and exports, before anything runs.
//!
//! The surface comes from `nanoproc_runtime::surface`; this module only prints
//! it. Every name in it was chosen by whoever built the file, so the text form
//! prints each through [`printable`]; the JSON form escapes them as JSON does,
//! and also escapes the characters a terminal would act on or hide
//! ([`json_escaped`]).

use crate::Reading;
use crate::diagnostics::json_escaped;
use crate::report::printable;
use crate::{print_out, status};
use clap::Args;
use nanoproc_runtime::surface::{self, FamilyUse, Kind, Provider, Surface};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct InspectArgs {
    /// The component or module (.wasm) to inspect.
    file: PathBuf,
    /// Print one JSON object instead of text (its fields are in docs/cli.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    pub reading: Reading,
}

pub fn inspect(args: &InspectArgs, max_component_size: u64) -> ExitCode {
    let shown = printable(&args.file.display().to_string());
    match surface::inspect_file(&args.file, max_component_size) {
        Ok(found) if args.json => match serde_json::to_string_pretty(&found) {
            Ok(json) => {
                print_out(&format!("{}\n", json_escaped(&json)));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("nanoproc: writing the surface as JSON: {e}");
                ExitCode::from(1)
            }
        },
        Ok(found) => {
            print_out(&describe(&shown, &found));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let (message, help) = e.explain(&shown);
            if args.json {
                let recognised = match &e {
                    surface::InspectError::NotWasm(what) => serde_json::to_value(what).ok(),
                    _ => None,
                };
                let error = serde_json::json!({
                    "error": { "message": message, "help": help, "recognised": recognised }
                });
                print_out(&format!("{}\n", json_escaped(&format!("{error:#}"))));
            }
            eprintln!("error: {}", printable(&message));
            if let Some(help) = help {
                eprintln!("  help: {help}");
            }
            ExitCode::from(status::REFUSED_AT_CHECK)
        }
    }
}

/// The text form: what the file is, then what it can ask for, what it needs from
/// dependencies and what it exports.
fn describe(file: &str, s: &Surface) -> String {
    let mut out = String::new();
    let kind = match s.kind {
        Kind::Component => "a WebAssembly component",
        Kind::Preview1Module => "a WASI preview 1 core module",
        Kind::CoreModule => "a WebAssembly core module",
    };
    let wasi = if s.wasi.is_empty() {
        "no WASI".to_string()
    } else {
        let names: Vec<String> = s
            .wasi
            .iter()
            .map(|g| match g.as_str() {
                "preview1" => "preview 1".to_string(),
                g => g.to_string(),
            })
            .collect();
        format!("WASI {}", names.join(" and "))
    };
    let _ = writeln!(out, "{file}: {kind}, {wasi}");
    let role = match (s.command, s.kind) {
        (true, Kind::Component) => "a command: exports wasi:cli/run, so it can be a root",
        (true, _) => "a command: exports _start; it can only be a root",
        (false, Kind::Component) => "not a command: it can be a dependency, not a root",
        (false, _) => "not a command: it exports no _start, so nanoproc cannot run it",
    };
    let _ = writeln!(out, "  {role}");
    let _ = writeln!(
        out,
        "  size: {} ({} bytes)",
        approximate_size(s.size),
        s.size
    );
    let _ = writeln!(out, "  digest: {}", s.digest);
    if s.producers.is_empty() {
        let _ = writeln!(out, "  producers: none recorded");
    } else {
        let _ = writeln!(out, "  producers:");
        for field in ["language", "processed-by", "sdk"] {
            let of_field: Vec<String> = s
                .producers
                .iter()
                .filter(|p| p.field == field)
                .map(|p| printable(format!("{} {}", p.name, p.version).trim()))
                .collect();
            if !of_field.is_empty() {
                let _ = writeln!(out, "    {field}: {}", of_field.join(", "));
            }
        }
        let others: Vec<String> = s
            .producers
            .iter()
            .filter(|p| !["language", "processed-by", "sdk"].contains(&p.field.as_str()))
            .map(|p| printable(&format!("{}: {} {}", p.field, p.name, p.version)))
            .collect();
        for other in others {
            let _ = writeln!(out, "    {other}");
        }
        if s.producers_not_kept > 0 {
            let _ = writeln!(
                out,
                "    and {} more entries, not kept",
                s.producers_not_kept
            );
        }
    }
    let from_deps = s
        .imports
        .iter()
        .filter(|i| i.provider == Provider::Dependency)
        .count();
    let _ = writeln!(
        out,
        "  world: {} imports ({} from WASI or the host, {from_deps} from dependencies), {} exports",
        s.imports.len(),
        s.imports.len() - from_deps,
        s.exports.len()
    );

    let _ = writeln!(out, "\nCan ask for:");
    if s.families.is_empty() {
        let _ = writeln!(out, "  nothing: it imports no WASI");
    }
    for family in &s.families {
        describe_family(&mut out, family);
    }

    let _ = writeln!(out, "\nNeeds from dependencies:");
    let deps: Vec<_> = s
        .imports
        .iter()
        .filter(|i| i.provider == Provider::Dependency)
        .collect();
    if deps.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for dep in deps {
        let _ = writeln!(
            out,
            "  {} ({}), named in the manifest's `deps`",
            printable(&dep.name),
            functions(&dep.functions)
        );
    }

    let _ = writeln!(out, "\nExports:");
    if s.exports.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for export in &s.exports {
        let what = match export.item.as_str() {
            "interface" => functions(&export.functions),
            item => item.to_string(),
        };
        let _ = writeln!(out, "  {} ({what})", printable(&export.name));
    }

    let problems: Vec<_> = s.imports.iter().filter(|i| i.problem.is_some()).collect();
    if !problems.is_empty() {
        let _ = writeln!(out, "\nCannot be served:");
        let more = problems.len().saturating_sub(IMPORTS_SHOWN);
        for import in problems.into_iter().take(IMPORTS_SHOWN) {
            let _ = writeln!(
                out,
                "  {}: {}",
                printable(&import.name),
                printable(import.problem.as_deref().unwrap_or_default())
            );
        }
        if more > 0 {
            let _ = writeln!(out, "  and {more} more (--json lists all)");
        }
    }
    if !s.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:");
        for note in &s.notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    out
}

/// How many of a family's imports the text form names; `--json` has them all.
const IMPORTS_SHOWN: usize = 20;

/// One family's lines: its imports (the first [`IMPORTS_SHOWN`]), then how to
/// grant them.
fn describe_family(out: &mut String, family: &FamilyUse) {
    let mut interfaces: Vec<String> = family
        .interfaces
        .iter()
        .take(IMPORTS_SHOWN)
        .map(|i| printable(i))
        .collect();
    if family.interfaces.len() > IMPORTS_SHOWN {
        interfaces.push(format!(
            "and {} more (--json lists all)",
            family.interfaces.len() - IMPORTS_SHOWN
        ));
    }
    let _ = writeln!(
        out,
        "  {}: {}",
        printable(&family.family),
        interfaces.join(", ")
    );
    if !family.grantable {
        let _ = writeln!(
            out,
            "    nanoproc cannot grant {} yet: it would refuse to run this",
            printable(&family.family)
        );
    } else if family.grant_keys.is_empty() {
        let _ = writeln!(out, "    needs no grant");
    } else {
        let keys: Vec<String> = family
            .grant_keys
            .iter()
            .map(|k| format!("grants.{k}"))
            .collect();
        let flags: Vec<&str> = family.grant_keys.iter().map(|k| run_flags(k)).collect();
        let _ = writeln!(
            out,
            "    grant with {} in a manifest; {} with `nanoproc run`",
            keys.join(", "),
            flags.join(", ")
        );
    }
}

/// How `nanoproc run FILE` grants a key to a single component.
fn run_flags(key: &str) -> &'static str {
    match key {
        "fs" => "--dir or --dir-ro",
        "env" => "--env",
        "args" => "the arguments after the file",
        "stdin" => "--stdin",
        "stdout" => "--stdout (the terminal unless --no-stdio)",
        "stderr" => "--stderr (the terminal unless --no-stdio)",
        "wall-clock" => "--wall-clock (or --clocks, or --clock-at)",
        "monotonic-clock" => "--monotonic-clock (or --clocks, or --clock-at)",
        "random" => "--random (or --random-seed)",
        "insecure-random" => "--insecure-random (or --random-seed)",
        "network" => "--connect",
        "listen" => "--listen",
        "http" => "--http",
        "config" => "--config",
        "exit" => "nothing (a root always holds exit)",
        _ => "no flag",
    }
}

fn functions(names: &[String]) -> String {
    match names.len() {
        0 => "no functions".to_string(),
        1..=4 => names
            .iter()
            .map(|n| printable(n))
            .collect::<Vec<_>>()
            .join(", "),
        n => format!("{n} functions"),
    }
}

/// `11.4 MiB`, for people.
fn approximate_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}
