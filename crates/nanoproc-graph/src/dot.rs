//! Graphviz DOT: `nanoproc graph M | dot -Tsvg > tree.svg`.
//!
//! Each nanoprocess is a node `n<index>` whose label is an HTML-like table (its
//! path, component, grants, failure policy and, with an audit log, what it used
//! and was refused, refusals in red); each edge is labelled with the interfaces
//! the child serves. Names never become DOT identifiers: they appear only in
//! quoted strings ([`escape::dot_quoted`]) and HTML-like labels
//! ([`escape::dot_html`]).

use crate::escape::{dot_html, dot_quoted};
use crate::{Graph, Node, counts_text, policy_text, refused_lines};
use std::fmt::Write;

const REFUSED_COLOR: &str = "#c62828";
const MUTED_COLOR: &str = "#555555";

/// The graph as a DOT `digraph`.
pub fn render(graph: &Graph) -> String {
    let mut out = String::new();
    out.push_str("digraph nanoproc {\n");
    let _ = writeln!(
        out,
        "  graph [rankdir=TB, fontname=\"Helvetica\", labelloc=t, label=\"{}\"];",
        dot_quoted(&graph.title)
    );
    out.push_str("  node [shape=plaintext, fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for (ix, node) in graph.nodes.iter().enumerate() {
        let _ = writeln!(
            out,
            "  n{ix} [tooltip=\"{}\", label=<{}>];",
            dot_quoted(&node.path),
            node_table(graph, node)
        );
    }
    for edge in &graph.edges {
        let _ = writeln!(
            out,
            "  n{} -> n{} [label=\"{}\"];",
            edge.parent,
            edge.child,
            // Each interface on its own line: each is escaped alone, then joined
            // with Graphviz's line break, which no escaped text can contain.
            edge.interfaces
                .iter()
                .map(|i| dot_quoted(i))
                .collect::<Vec<_>>()
                .join("\\n")
        );
    }
    out.push_str("}\n");
    out
}

/// A node's HTML-like label.
fn node_table(graph: &Graph, node: &Node) -> String {
    let refused = graph.was_refused(&node.path);
    let border = if refused { REFUSED_COLOR } else { "#333333" };
    let mut t = format!(
        "<TABLE BORDER=\"{}\" CELLBORDER=\"0\" CELLSPACING=\"0\" CELLPADDING=\"2\" COLOR=\"{border}\">",
        if refused { 3 } else { 1 }
    );
    let _ = write!(
        t,
        "<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\">{}</TD></TR>",
        styled("<B>", &dot_html(&node.path), "</B>")
    );
    let _ = write!(
        t,
        "<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\">{}</TD></TR>",
        styled(
            &format!("<FONT COLOR=\"{MUTED_COLOR}\">"),
            &dot_html(&node.component),
            "</FONT>"
        )
    );
    if node.grants.is_empty() {
        t.push_str("<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\">holds nothing</TD></TR>");
    }
    for grant in &node.grants {
        let _ = write!(
            t,
            "<TR><TD ALIGN=\"LEFT\" VALIGN=\"TOP\">{}</TD><TD ALIGN=\"LEFT\">{}</TD></TR>",
            dot_html(&grant.family),
            wrapped(&grant.held)
        );
    }
    if let Some(policy) = &node.policy {
        let _ = write!(
            t,
            "<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\"><I>{}</I></TD></TR>",
            dot_html(&policy_text(policy))
        );
    }
    if graph.usage.is_some() {
        match graph.usage_of(&node.path) {
            None => t.push_str(
                "<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\"><I>no decisions in the audit log</I></TD></TR>",
            ),
            Some(caps) => {
                t.push_str("<TR><TD COLSPAN=\"2\" ALIGN=\"LEFT\"><I>in the audited run</I></TD></TR>");
                for (capability, counts) in caps {
                    let mut cell = dot_html(&counts_text(counts));
                    for line in refused_lines(counts) {
                        let _ = write!(cell, "<BR ALIGN=\"LEFT\"/>refused: {}", dot_html(&line));
                    }
                    let (open, close) = if counts.refused > 0 {
                        (format!("<FONT COLOR=\"{REFUSED_COLOR}\">"), "</FONT>")
                    } else {
                        (String::new(), "")
                    };
                    let _ = write!(
                        t,
                        "<TR><TD ALIGN=\"LEFT\" VALIGN=\"TOP\">{}</TD><TD ALIGN=\"LEFT\">{}</TD></TR>",
                        styled(&open, &dot_html(capability), close),
                        styled(&open, &cell, close)
                    );
                }
            }
        }
    }
    t.push_str("</TABLE>");
    t
}

/// `text` inside a font element (`open`, `close`), or nothing at all for empty
/// text: Graphviz refuses an empty `<B></B>` or `<FONT></FONT>` as a syntax
/// error, and a name may be empty.
fn styled(open: &str, text: &str, close: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("{open}{text}{close}")
    }
}

/// How wide a grant's line may grow before it is broken, in characters.
const WRAP_AT: usize = 60;

/// `text` escaped, broken into lines after `, ` or `; ` where it grows beyond
/// [`WRAP_AT`] (Graphviz never wraps a label, and a limits line is long).
fn wrapped(text: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for piece in text.split_inclusive([',', ';']) {
        if !line.is_empty() && line.chars().count() + piece.chars().count() > WRAP_AT {
            lines.push(std::mem::take(&mut line));
        }
        line.push_str(if line.is_empty() {
            piece.trim_start()
        } else {
            piece
        });
    }
    lines.push(line);
    lines
        .iter()
        .map(|l| dot_html(l))
        .collect::<Vec<_>>()
        .join("<BR ALIGN=\"LEFT\"/>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_grants_are_broken_after_separators_and_each_piece_escaped() {
        let limits = "memory 256 MiB, tables 100000, instances 100, handles 4096, timeout 30s, output 64 MiB";
        assert_eq!(
            wrapped(limits),
            "memory 256 MiB, tables 100000, instances 100, handles 4096,<BR ALIGN=\"LEFT\"/>timeout 30s, output 64 MiB"
        );
        assert_eq!(wrapped("short"), "short");
        assert_eq!(wrapped(""), "");
        let hostile = format!("{}, <BR/>\"];", "x".repeat(70));
        assert_eq!(
            wrapped(&hostile),
            format!(
                "{},<BR ALIGN=\"LEFT\"/>&lt;BR/&gt;&quot;&#93;;",
                "x".repeat(70)
            )
        );
    }
}
