//! A self-contained HTML page a reviewer opens from disk.
//!
//! The tree is nested lists styled by inline CSS, each nanoprocess a card: the
//! interfaces it serves its parent, its path and component, its grants, its
//! failure policy and, with an audit log, its uses and refusals (refusals in red,
//! with their targets). The page fetches nothing: no script at all, no external
//! style sheet, font or image, and a Content-Security-Policy of `default-src
//! 'none'` that makes any browser refuse a fetch should one ever slip in. Every
//! name is written through [`escape::html`]; element ids are `n<index>`.

use crate::escape::html;
use crate::{Graph, Node, counts_text, policy_text, refused_lines};
use std::fmt::Write;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.3em; margin: 0 0 .2em; }
.subtitle { color: #555; margin: 0 0 1em; overflow-wrap: anywhere; }
code, .component, .grants td, .targets { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 12px; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1.6em; }
ul.tree { padding-left: 0; }
ul.tree ul { border-left: 2px solid #9e9e9e; margin-left: .8em; }
ul.tree li { margin: .6em 0; position: relative; }
ul.tree ul > li::before { content: ""; position: absolute; left: -1.6em; top: 1.1em; width: 1.4em; border-top: 2px solid #9e9e9e; }
.node { display: inline-block; background: #fff; border: 1px solid #616161; border-radius: 6px; padding: .5em .8em; max-width: 70em; overflow-wrap: anywhere; }
.node.refused { border: 3px solid #c62828; }
.serves { font-size: 12px; color: #1565c0; margin-bottom: .2em; }
.path { font-weight: bold; font-size: 1.05em; }
.component { color: #555; }
table { border-collapse: collapse; margin-top: .3em; }
th { text-align: left; font-weight: normal; color: #555; padding: 0 .8em 0 0; vertical-align: top; white-space: nowrap; }
td { padding: 0; vertical-align: top; }
.policy { font-style: italic; margin-top: .3em; }
.usage caption { text-align: left; font-style: italic; color: #555; }
.usage tr.refused th, .usage tr.refused td { color: #c62828; font-weight: bold; }
.targets { margin: 0; padding-left: 1.2em; font-weight: normal; }
.audit { margin-top: 2em; color: #555; }
.badge { display: inline-block; background: #c62828; color: #fff; border-radius: 3px; padding: 0 .4em; font-size: 11px; margin-left: .4em; }
"#;

/// The graph as one HTML document.
pub fn render(graph: &Graph) -> String {
    let title = html(&graph.title);
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>nanoproc graph: {title}</title>");
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>");
    out.push_str("<h1>nanoproc graph</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"subtitle\">{title}: {} nanoprocesses{}</p>",
        graph.nodes.len(),
        if graph.usage.is_some() {
            ", with the uses and refusals of one audited run"
        } else {
            ""
        }
    );
    tree(graph, &mut out);
    if graph.usage.is_some() {
        audit_notes(graph, &mut out);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The nested lists, depth-first with an explicit stack (a tree may be deep).
/// Nodes no edge leads to start trees of their own, so that every node is shown
/// even in a graph that is not one tree; a node is shown once.
fn tree(graph: &Graph, out: &mut String) {
    enum Step {
        Open(usize),
        Close,
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); graph.nodes.len()];
    let mut has_parent = vec![false; graph.nodes.len()];
    for edge in &graph.edges {
        if edge.parent < graph.nodes.len() && edge.child < graph.nodes.len() {
            children[edge.parent].push(edge.child);
            has_parent[edge.child] = true;
        }
    }
    let mut shown = vec![false; graph.nodes.len()];
    out.push_str("<ul class=\"tree\">\n");
    let starts = (0..graph.nodes.len()).filter(|&ix| !has_parent[ix]);
    let mut stack: Vec<Step> = starts.rev().map(Step::Open).collect();
    while let Some(step) = stack.pop() {
        match step {
            Step::Close => out.push_str("</ul></li>\n"),
            Step::Open(ix) if shown[ix] => {}
            Step::Open(ix) => {
                shown[ix] = true;
                out.push_str("<li>");
                card(graph, ix, &graph.nodes[ix], out);
                let kids: Vec<usize> = children[ix]
                    .iter()
                    .copied()
                    .filter(|&c| !shown[c])
                    .collect();
                if kids.is_empty() {
                    out.push_str("</li>\n");
                } else {
                    out.push_str("\n<ul>\n");
                    stack.push(Step::Close);
                    stack.extend(kids.into_iter().rev().map(Step::Open));
                }
            }
        }
    }
    // Whatever a cycle kept from being reached.
    for (ix, node) in graph.nodes.iter().enumerate().filter(|(ix, _)| !shown[*ix]) {
        out.push_str("<li>");
        card(graph, ix, node, out);
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}

fn card(graph: &Graph, ix: usize, node: &Node, out: &mut String) {
    let refused = graph.was_refused(&node.path);
    let _ = write!(
        out,
        "<div class=\"node{}\" id=\"n{ix}\">",
        if refused { " refused" } else { "" }
    );
    let served: Vec<String> = graph
        .edges
        .iter()
        .filter(|e| e.child == ix)
        .flat_map(|e| &e.interfaces)
        .map(|i| format!("<code>{}</code>", html(i)))
        .collect();
    if !served.is_empty() {
        let _ = write!(
            out,
            "<div class=\"serves\">&#9650; serves {}</div>",
            served.join(", ")
        );
    }
    let _ = write!(out, "<div class=\"path\">{}", html(&node.path));
    if refused {
        out.push_str("<span class=\"badge\">refused</span>");
    }
    let _ = write!(
        out,
        "</div><div class=\"component\">{}</div>",
        html(&node.component)
    );
    if node.grants.is_empty() {
        out.push_str("<div>holds nothing</div>");
    } else {
        out.push_str("<table class=\"grants\">");
        for grant in &node.grants {
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                html(&grant.family),
                html(&grant.held)
            );
        }
        out.push_str("</table>");
    }
    if let Some(policy) = &node.policy {
        let _ = write!(
            out,
            "<div class=\"policy\">{}</div>",
            html(&policy_text(policy))
        );
    }
    if graph.usage.is_some() {
        match graph.usage_of(&node.path) {
            None => out.push_str("<div class=\"policy\">no decisions in the audit log</div>"),
            Some(caps) => {
                out.push_str("<table class=\"usage\"><caption>in the audited run</caption>");
                for (capability, counts) in caps {
                    let _ = write!(
                        out,
                        "<tr{}><th>{}</th><td>{}",
                        if counts.refused > 0 {
                            " class=\"refused\""
                        } else {
                            ""
                        },
                        html(capability),
                        html(&counts_text(counts))
                    );
                    let targets = refused_lines(counts);
                    if !targets.is_empty() {
                        out.push_str("<ul class=\"targets\">");
                        for target in targets {
                            let _ = write!(out, "<li>{}</li>", html(&target));
                        }
                        out.push_str("</ul>");
                    }
                    out.push_str("</td></tr>");
                }
                out.push_str("</table>");
            }
        }
    }
    out.push_str("</div>");
}

/// What the reader of the audit log skipped or could not place.
fn audit_notes(graph: &Graph, out: &mut String) {
    let Some(usage) = &graph.usage else { return };
    out.push_str("<section class=\"audit\">\n");
    let _ = writeln!(out, "<p>The audit log has {} lines.</p>", usage.lines);
    if usage.malformed > 0 {
        let _ = writeln!(
            out,
            "<p>{} lines are not audit records and were skipped:</p><ul>",
            usage.malformed
        );
        for (line, why) in &usage.malformed_lines {
            let _ = writeln!(out, "<li>line {line}: {}</li>", html(why));
        }
        out.push_str("</ul>\n");
    }
    let elsewhere = graph.usage_elsewhere();
    if !elsewhere.is_empty() {
        let _ = writeln!(
            out,
            "<p>The log names {} nanoprocesses not in this tree: {}</p>",
            elsewhere.len(),
            elsewhere
                .iter()
                .take(20)
                .map(|p| format!("<code>{}</code>", html(p)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if usage.events_not_counted > 0 {
        let _ = writeln!(
            out,
            "<p>{} records were not counted: the log names too many nanoprocess and capability pairs.</p>",
            usage.events_not_counted
        );
    }
    out.push_str("</section>\n");
}
