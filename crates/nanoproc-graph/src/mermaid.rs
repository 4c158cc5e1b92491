//! A Mermaid flowchart, for Markdown that renders Mermaid (GitHub, GitLab, most
//! wikis): paste it into a ```` ```mermaid ```` block.
//!
//! Each nanoprocess is a node `n<index>` with a double-quoted label whose lines
//! are its path, component, grants, policy and audited uses; a nanoprocess that
//! was refused something gets the class `refused` (a red border) and `⚠` on the
//! refused lines. Every name is written through [`escape::mermaid`], and every
//! statement ends with `;`: Mermaid strips the last `;` of a line that looks like
//! a `style` or `classDef` statement (which a name could mimic), and this way it
//! only ever strips that separator, never part of an entity in a label.

use crate::escape::mermaid;
use crate::{Graph, Node, counts_text, policy_text, refused_lines};
use std::fmt::Write;

/// The graph as a Mermaid `flowchart`.
pub fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    for (ix, node) in graph.nodes.iter().enumerate() {
        let _ = writeln!(out, "  n{ix}[\"{}\"];", node_label(graph, node));
    }
    for edge in &graph.edges {
        let interfaces: Vec<String> = edge.interfaces.iter().map(|i| mermaid(i)).collect();
        let _ = writeln!(
            out,
            "  n{} -->|\"{}\"| n{};",
            edge.parent,
            interfaces.join("<br/>"),
            edge.child
        );
    }
    let refused: Vec<String> = graph
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| graph.was_refused(&n.path))
        .map(|(ix, _)| format!("n{ix}"))
        .collect();
    if !refused.is_empty() {
        out.push_str("  classDef refused stroke:#c62828,stroke-width:3px\n");
        let _ = writeln!(out, "  class {} refused", refused.join(","));
    }
    out
}

/// A node's label: lines joined with `<br/>`, each piece escaped.
fn node_label(graph: &Graph, node: &Node) -> String {
    let mut lines = vec![mermaid(&node.path), mermaid(&node.component)];
    if node.grants.is_empty() {
        lines.push("holds nothing".into());
    }
    for grant in &node.grants {
        lines.push(format!(
            "{}: {}",
            mermaid(&grant.family),
            mermaid(&grant.held)
        ));
    }
    if let Some(policy) = &node.policy {
        lines.push(mermaid(&policy_text(policy)));
    }
    if graph.usage.is_some() {
        match graph.usage_of(&node.path) {
            None => lines.push("no decisions in the audit log".into()),
            Some(caps) => {
                for (capability, counts) in caps {
                    let mark = if counts.refused > 0 { "⚠ " } else { "" };
                    lines.push(format!(
                        "{mark}run: {}: {}",
                        mermaid(capability),
                        mermaid(&counts_text(counts))
                    ));
                    for target in refused_lines(counts) {
                        lines.push(format!("⚠ refused: {}", mermaid(&target)));
                    }
                }
            }
        }
    }
    lines.join("<br/>")
}
