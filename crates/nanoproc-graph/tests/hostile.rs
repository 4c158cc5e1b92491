//! Hostile names through every format: whatever a manifest's author or a guest
//! chose as a name, interface or audit target, the output keeps the structure the
//! graph has (its nodes and edges, nothing more), and the text shows as written.
//!
//! DOT is checked by Graphviz itself (`dot`, Debian's `graphviz`; `.ci/run`
//! installs it), Mermaid and HTML by checkers of the exact subset the renderers
//! write.

use nanoproc_graph::{Edge, Grant, Graph, Node, Policy, audit, dot, escape, html, mermaid};
use proptest::prelude::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// Names that have broken renderers: quotes and the delimiters of each format,
/// line breaks, control characters, bidi overrides, entity look-alikes.
const HOSTILE: [&str; 16] = [
    r#"a"];n99 [label="pwned"];n0->n99;//"#,
    "</script><script>alert(1)</script>",
    "<img src=https://evil.example/x.png onerror=alert(1)>",
    "line\nbreak\r\nand\ttab",
    "}\ndigraph x {",
    "esc\u{1b}[31mred\u{7}\u{0}nul",
    "\u{202e}gnp.exe",
    "#quot;\"#35;&amp;&lt;",
    "%%{init: {\"securityLevel\": \"loose\"}}%%",
    "`**markdown**`",
    "pipe|edge|\"]-->n0",
    r"back\slash\N\G\l\",
    "<TABLE><TR><TD>forged</TD></TR></TABLE>",
    "style n0 fill:#f00;",
    "ﬂ°lt¶ßscript¶ß",
    "\u{fffe}\u{ffff}\u{85}\u{2028}",
];

fn graph_named(names: &[&str], targets: &[&str]) -> Graph {
    let mut nodes = vec![Node {
        path: "root".into(),
        name: "root".into(),
        component: "root.wasm".into(),
        grants: vec![Grant {
            family: "fs".into(),
            held: "/data (read)".into(),
        }],
        policy: None,
    }];
    let mut edges = Vec::new();
    for (i, name) in names.iter().enumerate() {
        nodes.push(Node {
            path: format!("root/{name}"),
            name: name.to_string(),
            component: format!("{name}.wasm"),
            grants: vec![Grant {
                family: name.to_string(),
                held: name.to_string(),
            }],
            policy: Some(Policy {
                on_failure: name.to_string(),
                restart: Some(name.to_string()),
            }),
        });
        edges.push(Edge {
            parent: 0,
            child: i + 1,
            interfaces: vec![name.to_string(), format!("ns:{name}/iface")],
        });
    }
    // An audit log naming each node, refused at each hostile target: read
    // through the real reader, so the targets are as the reader keeps them.
    let mut log = String::new();
    for name in names {
        for target in targets {
            let line = serde_json_line(&format!("root/{name}"), name, target);
            log.push_str(&line);
            log.push('\n');
        }
    }
    let usage = audit::read(log.as_bytes()).expect("reading from memory");
    Graph {
        title: names.first().map_or("t".into(), |n| n.to_string()),
        nodes,
        edges,
        usage: Some(usage),
    }
}

/// One audit record, JSON-encoded by hand as nanoproc writes it (the reader must
/// take what the runtime writes, whatever the strings).
fn serde_json_line(node: &str, family: &str, target: &str) -> String {
    format!(
        "{{\"time\":\"2026-11-24T17:48:17.425Z\",\"nanoprocess\":{},\"family\":{},\"operation\":\"wasi:sockets/tcp.connect\",\"target\":{},\"decision\":\"refused\",\"reason\":\"network is not granted\"}}",
        json_string(node),
        json_string(family),
        json_string(target)
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs Graphviz on `source`; panics, saying how to install it, if it is missing.
fn graphviz_svg(source: &str) -> String {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "Graphviz's `dot` is not installed, and this test renders DOT with it: \
             install it (`apt-get install -y graphviz`; .ci/run does)"
        ),
        Err(e) => panic!("running dot: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("Error"),
        "dot refused the output ({}):\n{stderr}\n--- source:\n{source}",
        out.status
    );
    String::from_utf8(out.stdout).expect("dot writes UTF-8 SVG")
}

/// The ids of the SVG's node and edge groups, as Graphviz titles them: `n0`,
/// and `n0&#45;&gt;n1`.
fn svg_structure(svg: &str) -> (Vec<String>, Vec<String>) {
    let titles = |class: &str| -> Vec<String> {
        svg.split(&format!("class=\"{class}\">"))
            .skip(1)
            .map(|rest| {
                let rest = rest.trim_start();
                let inner = rest
                    .strip_prefix("<title>")
                    .expect("a title after each group");
                inner[..inner.find("</title>").unwrap()].to_string()
            })
            .collect()
    };
    (titles("node"), titles("edge"))
}

fn expected_structure(graph: &Graph) -> (Vec<String>, Vec<String>) {
    let nodes = (0..graph.nodes.len()).map(|i| format!("n{i}")).collect();
    let edges = graph
        .edges
        .iter()
        .map(|e| format!("n{}&#45;&gt;n{}", e.parent, e.child))
        .collect();
    (nodes, edges)
}

#[test]
fn dot_with_hostile_names_renders_with_graphviz_as_the_same_tree() {
    let graph = graph_named(&HOSTILE, &HOSTILE);
    let source = dot::render(&graph);
    let svg = graphviz_svg(&source);
    assert_eq!(svg_structure(&svg), expected_structure(&graph));
    // A node the first name tries to declare does not exist.
    assert!(!svg.contains("<title>n99</title>"), "{svg}");
    // The names are shown, as text: Graphviz unescaped what we escaped.
    assert!(svg.contains("root/&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(svg.contains(r"root/line\nbreak\r\nand\ttab"), "{svg}");
    // Graphviz did not substitute \N (the node's name) or \G in labels.
    assert!(svg.contains(r"back\slash\N\G\l\"), "{svg}");
    // Every node was refused something, so every border is red.
    assert!(svg.matches("stroke=\"#c62828\"").count() >= HOSTILE.len());
}

/// What the Mermaid renderer may write: a checker of that subset. Returns the
/// node ids and edges found.
fn mermaid_structure(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart TD"));
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in lines {
        let line = line
            .strip_prefix("  ")
            .unwrap_or_else(|| panic!("indent: {line:?}"));
        if let Some(rest) = line.strip_prefix("classDef refused ") {
            assert_eq!(rest, "stroke:#c62828,stroke-width:3px");
        } else if let Some(rest) = line.strip_prefix("class ") {
            let ids = rest.strip_suffix(" refused").expect("class line");
            assert!(ids.split(',').all(|id| nodes.contains(&id.to_string())));
        } else if let Some((id, label)) = line.split_once("[\"") {
            let label = label
                .strip_suffix("\"];")
                .unwrap_or_else(|| panic!("{line:?}"));
            assert_label_is_inert(label);
            nodes.push(id.to_string());
        } else {
            let (from, rest) = line
                .split_once(" -->|\"")
                .unwrap_or_else(|| panic!("{line:?}"));
            let (label, to) = rest
                .split_once("\"| ")
                .unwrap_or_else(|| panic!("{line:?}"));
            assert_label_is_inert(label);
            let to = to.strip_suffix(';').unwrap();
            edges.push((from.to_string(), to.to_string()));
        }
    }
    (nodes, edges)
}

/// A Mermaid label holds no delimiter, directive or markup but the `<br/>` line
/// breaks, and every `#` starts an entity.
fn assert_label_is_inert(label: &str) {
    for forbidden in ['"', '%', '{', '}', '|', '`', '&', '\n', '\r', '\u{fb02}'] {
        assert!(!label.contains(forbidden), "{forbidden:?} in {label:?}");
    }
    let without_breaks = label.replace("<br/>", "");
    assert!(
        !without_breaks.contains('<') && !without_breaks.contains('>'),
        "markup in {label:?}"
    );
    for (at, _) in label.match_indices('#') {
        let entity = &label[at + 1..];
        let end = entity
            .find(';')
            .unwrap_or_else(|| panic!("bare # in {label:?}"));
        assert!(
            end > 0 && entity[..end].chars().all(|c| c.is_ascii_alphanumeric()),
            "{label:?}"
        );
    }
}

#[test]
fn mermaid_with_hostile_names_keeps_its_nodes_and_edges() {
    let graph = graph_named(&HOSTILE, &HOSTILE);
    let text = mermaid::render(&graph);
    let (nodes, edges) = mermaid_structure(&text);
    assert_eq!(nodes, expected_structure(&graph).0);
    let expected: Vec<(String, String)> = graph
        .edges
        .iter()
        .map(|e| (format!("n{}", e.parent), format!("n{}", e.child)))
        .collect();
    assert_eq!(edges, expected);
    assert!(
        text.contains("root/#35;quot;#quot;#35;35;#amp;amp;#amp;lt;"),
        "{text}"
    );
    assert!(text.contains("⚠ refused: "), "{text}");
}

/// The tags and attributes the HTML renderer writes: anything else in its
/// output came from a name.
const HTML_TAGS: [&str; 20] = [
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "p", "ul", "li", "div",
    "span", "code", "table", "tr", "th", "td", "caption", "section",
];
const HTML_ATTRIBUTES: [&str; 7] = [
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "class",
    "id",
];

/// Every tag of `page` (outside the style element) and its attribute names.
fn html_tags(page: &str) -> Vec<(String, Vec<String>)> {
    let body_start = page.find("</style>").expect("a style element") + "</style>".len();
    let (head, body) = page.split_at(body_start);
    let head = &head[..head.find("<style>").unwrap()];
    let mut tags = Vec::new();
    for part in [head, body] {
        let mut rest = part;
        while let Some(open) = rest.find('<') {
            let after = &rest[open + 1..];
            let close = after.find('>').expect("every < is a tag's");
            let tag = &after[..close];
            let tag = tag.strip_prefix('/').unwrap_or(tag);
            let mut words = tag.split_whitespace();
            let name = words.next().unwrap_or("").to_string();
            let mut attributes = Vec::new();
            // Attribute values are quoted and hold no quote (escaped), so the
            // names are what precedes each `=` outside quotes.
            let mut in_quote = false;
            let mut word = String::new();
            for c in tag[name.len()..].chars() {
                match c {
                    '"' => in_quote = !in_quote,
                    '=' if !in_quote => {
                        attributes.push(word.trim().to_string());
                        word.clear();
                    }
                    c if !in_quote && c.is_whitespace() => word.clear(),
                    c if !in_quote => word.push(c),
                    _ => {}
                }
            }
            assert!(!in_quote, "unbalanced quotes in <{tag}>");
            tags.push((name, attributes));
            rest = &after[close + 1..];
        }
    }
    tags
}

#[test]
fn html_with_hostile_names_has_only_its_own_markup_and_fetches_nothing() {
    let graph = graph_named(&HOSTILE, &HOSTILE);
    let page = html::render(&graph);
    for (tag, attributes) in html_tags(&page) {
        assert!(HTML_TAGS.contains(&tag.as_str()), "tag <{tag}> in the page");
        for a in attributes {
            assert!(
                HTML_ATTRIBUTES.contains(&a.as_str()),
                "attribute {a} on <{tag}>"
            );
        }
    }
    // No tag can fetch (the allowed attributes above have no `src` or `href`),
    // and a URL in a name is text, escaped with the rest of it.
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(page.contains("&lt;img src=https://evil.example/x.png onerror=alert(1)&gt;"));
    assert!(!page.contains("url("), "no style fetches either");
    assert!(page.contains("default-src 'none'"));
    assert_eq!(page.matches("<div class=\"node").count(), graph.nodes.len());
    assert!(page.contains("root/&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains(r"root/line\nbreak\r\nand\ttab"));
    assert!(page.contains(r"\u202egnp.exe"));
}

/// A name is any string: weighted towards the characters formats care about.
fn any_name() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(vec![
                    '"', '\'', '\\', '<', '>', '&', '#', ';', '%', '{', '}', '[', ']', '|', '`',
                    '\n', '\r', '\0', '\u{1b}', '\u{202e}', '\u{fb02}', '\u{fffe}', ' ', '-', '/',
                    ':', 'N', 'G', 'l', 'n',
                ]),
                any::<char>(),
            ],
            0..24
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

proptest! {
    #[test]
    fn escaped_forms_never_hold_a_raw_delimiter(name in any_name()) {
        let quoted = escape::dot_quoted(&name);
        // Every quote and backslash is escaped: removing escape pairs leaves
        // neither.
        let unpaired = quoted.replace("\\\\", "").replace("\\\"", "");
        prop_assert!(!unpaired.contains('"') && !unpaired.contains('\\'), "{quoted:?}");
        prop_assert!(!quoted.contains('\n') && !quoted.contains('\r'));

        let label = escape::dot_html(&name);
        prop_assert!(!label.contains('<') && !label.contains('>') && !label.contains('"'));
        let xml_refuses = |c: char| c.is_control() || c == '\u{fffe}' || c == '\u{ffff}';
        prop_assert!(!label.chars().any(xml_refuses), "{:?}", label);

        assert_label_is_inert(&escape::mermaid(&name));

        let text = escape::html(&name);
        prop_assert!(!text.contains(['<', '>', '"', '\'']), "{text:?}");
        prop_assert!(text.match_indices('&').all(|(at, _)| text[at..].starts_with("&amp;")
            || text[at..].starts_with("&lt;") || text[at..].starts_with("&gt;")
            || text[at..].starts_with("&quot;") || text[at..].starts_with("&#39;")));
    }

    #[test]
    fn any_names_keep_the_mermaid_and_html_structure(
        names in proptest::collection::vec(any_name(), 1..5),
        target in any_name(),
    ) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let graph = graph_named(&names, &[&target]);
        let (nodes, edges) = mermaid_structure(&mermaid::render(&graph));
        prop_assert_eq!(nodes.len(), graph.nodes.len());
        prop_assert_eq!(edges.len(), graph.edges.len());
        let page = html::render(&graph);
        for (tag, _) in html_tags(&page) {
            prop_assert!(HTML_TAGS.contains(&tag.as_str()), "tag <{}>", tag);
        }
        prop_assert_eq!(page.matches("<div class=\"node").count(), graph.nodes.len());
    }
}

proptest! {
    // Each case runs Graphviz: a handful of cases, not hundreds.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn any_names_render_with_graphviz_as_the_same_tree(
        names in proptest::collection::vec(any_name(), 1..4),
        target in any_name(),
    ) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let graph = graph_named(&names, &[&target]);
        let svg = graphviz_svg(&dot::render(&graph));
        prop_assert_eq!(svg_structure(&svg), expected_structure(&graph));
    }
}

/// A name that is only `]` (as the property above once drew): Graphviz's HTML
/// labels refuse an element whose whole text is a bare bracket.
#[test]
fn a_name_that_is_a_bracket_renders_with_graphviz() {
    for name in ["]", "[", "]]>", "[]"] {
        let graph = graph_named(&[name], &[name]);
        let svg = graphviz_svg(&dot::render(&graph));
        assert_eq!(svg_structure(&svg), expected_structure(&graph), "{name:?}");
    }
}
