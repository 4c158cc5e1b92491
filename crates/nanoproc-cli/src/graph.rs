//! `nanoproc graph`: a checked tree as a picture, for review.
//!
//! The manifest is checked exactly as `check` checks it (a refused one is
//! reported the same way, status 125), the plan becomes a
//! [`nanoproc_graph::Graph`], and an audit log, if given, adds each
//! nanoprocess's uses and refusals. `nanoproc-graph` does the drawing.

use crate::Reading;
use clap::{Args, ValueEnum};
use nanoproc_graph::{Edge, Grant, Graph, Node, Policy, Usage};
use nanoproc_runtime::manifest::OnFailure;
use nanoproc_runtime::{Plan, Runtime};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct GraphArgs {
    /// The manifest (nanoproc.toml).
    manifest: PathBuf,
    /// What to write: Graphviz DOT (`| dot -Tsvg > tree.svg`), a Mermaid
    /// flowchart (for Markdown), or a self-contained HTML page.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
    /// The audit log of a run of this manifest (`nanoproc run --audit FILE`): adds
    /// each nanoprocess's uses and refusals, refusals in red.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// Write to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    pub reading: Reading,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Dot,
    Mermaid,
    Html,
}

/// Status for an audit log that cannot be read or an output file that cannot be
/// written: a usage error, as `run`'s `--audit` file that cannot be created.
const CANNOT_ACCESS_FILE: u8 = 2;

pub fn graph(runtime: &Runtime, args: &GraphArgs) -> ExitCode {
    // Refused before anything else: an output that would replace the manifest or
    // the audit log would destroy what it draws.
    if let Some(path) = &args.output
        && let Err(e) = output_is_not_an_input(path, &args.manifest, args.audit.as_deref())
    {
        eprintln!(
            "nanoproc: -o {}: {e}",
            crate::report::printable(&path.display().to_string())
        );
        return ExitCode::from(CANNOT_ACCESS_FILE);
    }
    let plan = match runtime.check_manifest(&args.manifest, &[]) {
        Ok(plan) => plan,
        Err(e) => return crate::not_checked(&e),
    };
    crate::print_notices(&plan);
    let mut graph = graph_of(&plan, &args.manifest);
    if let Some(path) = &args.audit {
        match read_audit(path) {
            Ok(usage) => graph.usage = Some(usage),
            Err(e) => {
                eprintln!(
                    "nanoproc: --audit {}: {e}",
                    crate::report::printable(&path.display().to_string())
                );
                return ExitCode::from(CANNOT_ACCESS_FILE);
            }
        }
        audit_notes(&graph, path);
    }
    let text = match args.format {
        Format::Dot => nanoproc_graph::dot::render(&graph),
        Format::Mermaid => nanoproc_graph::mermaid::render(&graph),
        Format::Html => nanoproc_graph::html::render(&graph),
    };
    match &args.output {
        None => crate::print_out(&text),
        Some(path) => {
            if let Err(e) = write_replacing(path, &text) {
                eprintln!(
                    "nanoproc: -o {}: {e}",
                    crate::report::printable(&path.display().to_string())
                );
                return ExitCode::from(CANNOT_ACCESS_FILE);
            }
        }
    }
    ExitCode::SUCCESS
}

/// The plan as the graph model: each nanoprocess with what it holds (families it
/// holds nothing of left out) and its failure policy, each child's edge with the
/// interfaces it serves.
fn graph_of(plan: &Plan, manifest: &Path) -> Graph {
    let nodes = plan
        .nodes()
        .iter()
        .map(|node| Node {
            path: node.path.to_string(),
            name: node.name.clone(),
            component: node.component_path.display().to_string(),
            grants: node
                .caps
                .summary_lines()
                .into_iter()
                .filter(|(_, held)| held != "none")
                .map(|(family, held)| Grant {
                    family: family.to_string(),
                    held,
                })
                .collect(),
            policy: node.parent.map(|_| Policy {
                // A fused nanoprocess has no failure of its own: a trap in it is
                // its parent's.
                on_failure: match (node.placement, node.on_failure) {
                    (nanoproc_runtime::Placement::FusedInto { .. }, _) => "fused",
                    (_, OnFailure::Trap) => "trap",
                    (_, OnFailure::Error) => "error",
                }
                .to_string(),
                restart: node.restart.map(|r| {
                    format!(
                        "up to {} times within {}",
                        r.max,
                        nanoproc_runtime::caps::format_millis(r.within_ms)
                    )
                }),
            }),
        })
        .collect();
    let edges = plan
        .nodes()
        .iter()
        .enumerate()
        .filter_map(|(child, node)| {
            Some(Edge {
                parent: node.parent?,
                child,
                interfaces: node.serves(),
            })
        })
        .collect();
    Graph {
        title: manifest.display().to_string(),
        nodes,
        edges,
        usage: None,
    }
}

/// An audit log: only a regular file, opened without waiting, at most
/// [`nanoproc_graph::audit::MAX_FILE_BYTES`] (a FIFO would wait forever for a
/// writer, `/dev/zero` never ends).
fn read_audit(path: &Path) -> std::io::Result<Usage> {
    nanoproc_graph::audit::read_file(path)
}

/// `Err` when `output` is the manifest or the audit log (the same file, by device
/// and inode, whatever name or link reaches it).
fn output_is_not_an_input(
    output: &Path,
    manifest: &Path,
    audit: Option<&Path>,
) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let identity = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let Some(out) = identity(output) else {
        return Ok(());
    };
    if identity(manifest) == Some(out) {
        return Err("it is the manifest; write the picture to another file".to_string());
    }
    if audit.and_then(identity) == Some(out) {
        return Err("it is the --audit log; write the picture to another file".to_string());
    }
    Ok(())
}

/// Writes `text` to `path` through a temporary file beside it, renamed over it:
/// a reader sees the old file or the new one, and a symbolic link at `path` is
/// replaced itself, never the file it points to (which may be anyone's). An
/// existing file keeps its permissions; a new one gets the usual ones (0666 less
/// the umask), as a file the shell creates.
fn write_replacing(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let existing = std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_file());
    let mut tmp = tempfile::Builder::new()
        .prefix(".nanoproc-graph")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    if let Some(meta) = existing {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Says on stderr what of the audit log could not be drawn. Every text is made
/// safe for the terminal: the log's lines are a guest's as much as anyone's.
fn audit_notes(graph: &Graph, path: &Path) {
    let Some(usage) = &graph.usage else { return };
    let file = crate::report::printable(&path.display().to_string());
    if usage.malformed > 0 {
        let listed: Vec<String> = usage
            .malformed_lines
            .iter()
            .map(|(line, why)| crate::report::printable(&format!("line {line}: {why}")))
            .collect();
        eprintln!(
            "nanoproc: note: {file}: {} line{} not audit records, skipped ({}{})",
            usage.malformed,
            if usage.malformed == 1 { " is" } else { "s are" },
            listed.join("; "),
            if usage.malformed > listed.len() as u64 {
                "; ..."
            } else {
                ""
            }
        );
    }
    let elsewhere = graph.usage_elsewhere();
    if !elsewhere.is_empty() {
        const SHOWN: usize = 10;
        let names: Vec<String> = elsewhere
            .iter()
            .take(SHOWN)
            .map(|p| format!("`{}`", crate::report::printable(p)))
            .collect();
        eprintln!(
            "nanoproc: note: {file} names {} nanoprocess{} not in this tree, left out: {}{}",
            elsewhere.len(),
            if elsewhere.len() == 1 { "" } else { "es" },
            names.join(", "),
            if elsewhere.len() > SHOWN { ", ..." } else { "" }
        );
    }
    if usage.events_not_counted > 0 {
        eprintln!(
            "nanoproc: note: {file}: {} records not counted: more than {} nanoprocess and capability pairs",
            usage.events_not_counted,
            nanoproc_graph::audit::MAX_KEYS
        );
    }
}
