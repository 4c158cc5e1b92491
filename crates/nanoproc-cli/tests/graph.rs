//! `nanoproc graph` on real trees: the gallery (with the audit log of a real run)
//! and a three-level tree of the probe guests. DOT goes through Graphviz (`dot`,
//! Debian's `graphviz`; `.ci/run` installs it, and these tests fail, saying so,
//! without it).

use crate::common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// The gallery's nodes and the interface each child serves.
const GALLERY_NODES: [&str; 5] = [
    "app",
    "app/thumbnailer",
    "app/idgen",
    "app/analytics",
    "app/meta",
];
const GALLERY_INTERFACES: [&str; 4] = [
    "example:gallery/thumbnails",
    "example:gallery/ids",
    "example:gallery/analytics",
    "example:gallery/metadata",
];

/// The gallery in a scene of its own, as `demo.rs` sets it up, so that runs do
/// not write into the repository's photos.
fn gallery() -> (Scene, String) {
    let scene = Scene::gallery();
    let manifest = scene.path("nanoproc.toml").display().to_string();
    (scene, manifest)
}

/// Runs the gallery with `--audit` and returns the log's path.
fn audited_gallery_run(scene: &Scene, manifest: &str) -> String {
    let audit = scene.path("audit.jsonl").display().to_string();
    let run = nanoproc_env(
        &["run", "--audit", &audit, manifest],
        &[("GALLERY_TITLE", "Holiday photos")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    audit
}

/// Renders DOT with Graphviz; fails the test, saying how to install it, if `dot`
/// is missing.
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
            "Graphviz's `dot` is not installed, and this test renders `nanoproc graph`'s \
             DOT with it: install it (`apt-get install -y graphviz`; .ci/run does)"
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
    // Graphviz writes every `-` of a text as `&#45;`; searches read it as `-`.
    String::from_utf8(out.stdout)
        .expect("dot writes UTF-8 SVG")
        .replace("&#45;", "-")
}

/// The SVG group Graphviz made for node `id` (`n3`), up to the next group.
fn svg_group<'a>(svg: &'a str, id: &str) -> &'a str {
    let start = svg
        .find(&format!("<title>{id}</title>"))
        .unwrap_or_else(|| panic!("no node {id} in:\n{svg}"));
    let rest = &svg[start..];
    &rest[..rest.find("</g>").unwrap_or(rest.len())]
}

/// The HTML card of node `path`, up to the next card.
fn html_card<'a>(page: &'a str, path: &str) -> &'a str {
    let at = page
        .find(&format!("<div class=\"path\">{path}"))
        .unwrap_or_else(|| panic!("no {path} in {page}"));
    let start = page[..at].rfind("<div class=\"node").unwrap();
    let end = page[at..]
        .find("<div class=\"node")
        .map_or(page.len(), |e| e + at);
    &page[start..end]
}

/// The DOT id (`n3`) of the node whose label starts with `path`.
fn dot_id(dot: &str, path: &str) -> String {
    dot.lines()
        .find(|l| l.contains(&format!("<B>{path}</B>")))
        .and_then(|l| l.trim_start().split_once(' '))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no node {path} in:\n{dot}"))
}

#[test]
fn the_gallery_as_dot_renders_with_graphviz_showing_every_node_and_interface() {
    let (_scene, manifest) = gallery();
    let out = nanoproc(&["graph", &manifest]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("digraph nanoproc {"), "{out:?}");
    let svg = graphviz_svg(&out.stdout);
    for text in GALLERY_NODES.iter().chain(&GALLERY_INTERFACES) {
        assert!(
            svg.contains(&format!(">{text}<")),
            "{text} missing from:\n{svg}"
        );
    }
    // Five nodes and four edges: the tree, nothing more.
    assert_eq!(svg.matches("class=\"node\"").count(), 5);
    assert_eq!(svg.matches("class=\"edge\"").count(), 4);
    // Grants and policies as `check` states them.
    let analytics = svg_group(&svg, &dot_id(&out.stdout, "app/analytics"));
    assert!(analytics.contains("memory 16 MiB"), "{analytics}");
    assert!(analytics.contains("timeout 2s"), "{analytics}");
    assert!(
        analytics.contains("is an `err` to its parent"),
        "{analytics}"
    );
    let idgen = svg_group(&svg, &dot_id(&out.stdout, "app/idgen"));
    assert!(idgen.contains("traps its parent&#39;s call"), "{idgen}");
    let app = svg_group(&svg, &dot_id(&out.stdout, "app"));
    assert!(app.contains("/photos (read-write)"), "{app}");
    // Without an audit log, nothing is red.
    assert!(!svg.contains("#c62828"), "{svg}");
}

#[test]
fn the_gallery_as_mermaid_has_every_node_and_edge() {
    let (_scene, manifest) = gallery();
    let out = nanoproc(&["graph", &manifest, "--format", "mermaid"]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    assert!(text.starts_with("flowchart TD\n"), "{text}");
    for (ix, path) in GALLERY_NODES.iter().enumerate() {
        assert!(
            text.contains(&format!("  n{ix}[\"{path}<br/>")),
            "{path} missing from:\n{text}"
        );
    }
    for (ix, interface) in GALLERY_INTERFACES.iter().enumerate() {
        assert!(
            text.contains(&format!("  n0 -->|\"{interface}\"| n{};", ix + 1)),
            "{interface} missing from:\n{text}"
        );
    }
    assert_eq!(text.matches("-->").count(), 4, "{text}");
}

#[test]
fn the_gallery_as_html_is_one_file_that_fetches_nothing() {
    let (scene, manifest) = gallery();
    let page_path = scene.path("tree.html");
    let out = nanoproc(&[
        "graph",
        &manifest,
        "--format",
        "html",
        "-o",
        &page_path.display().to_string(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "", "-o writes the file, not stdout");
    let page = std::fs::read_to_string(&page_path).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    for fetch in [
        "http://", "https://", "src=", "href=", "<script", "<link", "url(", "@import",
    ] {
        assert!(!page.contains(fetch), "{fetch} in:\n{page}");
    }
    assert!(page.contains("default-src 'none'"), "{page}");
    for path in GALLERY_NODES {
        assert!(
            page.contains(&format!("<div class=\"path\">{path}</div>")),
            "{path} missing from:\n{page}"
        );
    }
    for interface in GALLERY_INTERFACES {
        assert!(
            page.contains(&format!("<code>{interface}</code>")),
            "{page}"
        );
    }
}

#[test]
fn an_audited_run_shows_the_refusals_on_the_compromised_dependency() {
    let (scene, manifest) = gallery();
    let audit = audited_gallery_run(&scene, &manifest);

    let dot = nanoproc(&["graph", &manifest, "--audit", &audit]);
    assert_eq!(dot.code, 0, "{dot:?}");
    assert_eq!(dot.stderr, "", "a real log is read whole: {dot:?}");
    let svg = graphviz_svg(&dot.stdout);
    let analytics = svg_group(&svg, &dot_id(&dot.stdout, "app/analytics"));
    // Its border and its refused capabilities are red, with what it aimed at.
    assert!(analytics.contains("stroke=\"#c62828\""), "{analytics}");
    for refused in [
        "network",
        "6 refused",
        "127.0.0.1:4444",
        "exfil.example.com",
        "wall-clock",
    ] {
        assert!(
            analytics.contains(refused),
            "{refused} missing from:\n{analytics}"
        );
    }
    assert!(analytics.contains("fill=\"#c62828\""), "{analytics}");
    // The well-behaved dependencies used what they hold, and nothing is red.
    let idgen = svg_group(&svg, &dot_id(&dot.stdout, "app/idgen"));
    assert!(idgen.contains("3 allowed"), "{idgen}");
    assert!(!idgen.contains("#c62828"), "{idgen}");
    let thumbnailer = svg_group(&svg, &dot_id(&dot.stdout, "app/thumbnailer"));
    assert!(!thumbnailer.contains("#c62828"), "{thumbnailer}");

    let mermaid = nanoproc(&["graph", &manifest, "--audit", &audit, "--format", "mermaid"]);
    assert_eq!(mermaid.code, 0, "{mermaid:?}");
    let analytics_ix = GALLERY_NODES
        .iter()
        .position(|p| *p == "app/analytics")
        .unwrap();
    assert!(
        mermaid
            .stdout
            .contains(&format!("  class n{analytics_ix} refused\n")),
        "{mermaid:?}"
    );
    assert!(
        mermaid.stdout.contains("⚠ refused: 127.0.0.1:4444"),
        "{mermaid:?}"
    );

    let html = nanoproc(&["graph", &manifest, "--audit", &audit, "--format", "html"]);
    assert_eq!(html.code, 0, "{html:?}");
    let card = |path: &str| html_card(&html.stdout, path);
    let analytics = card("app/analytics");
    assert!(
        analytics.starts_with("<div class=\"node refused\""),
        "{analytics}"
    );
    assert!(
        analytics.contains("<tr class=\"refused\"><th>network</th>"),
        "{analytics}"
    );
    assert!(
        analytics.contains("<li>exfil.example.com</li>"),
        "{analytics}"
    );
    assert!(card("app/idgen").starts_with("<div class=\"node\""));
}

#[test]
fn a_broken_audit_log_is_drawn_as_far_as_it_goes_and_its_bad_lines_named() {
    let (scene, manifest) = gallery();
    let audit = audited_gallery_run(&scene, &manifest);
    // A log cut mid-line by a crash, a line of noise, and a nanoprocess of some
    // other tree.
    let mut log = std::fs::read_to_string(&audit).unwrap();
    log.push_str("not json at all\n");
    log.push_str(
        r#"{"time":"t","nanoprocess":"other/x","family":"fs","operation":"o","target":null,"decision":"refused"}"#,
    );
    log.push_str("\n{\"time\":\"2026-");
    std::fs::write(&audit, &log).unwrap();
    let lines = log.lines().count();

    let out = nanoproc(&["graph", &manifest, "--audit", &audit]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "2 lines are not audit records, skipped (line {}: not an audit record",
            lines - 2
        )),
        "{out:?}"
    );
    assert!(out.stderr.contains(&format!("; line {lines}: ")), "{out:?}");
    assert!(
        out.stderr
            .contains("names 1 nanoprocess not in this tree, left out: `other/x`"),
        "{out:?}"
    );
    // What could be read is drawn.
    graphviz_svg(&out.stdout);
    assert!(out.stdout.contains("127.0.0.1:4444"), "{out:?}");

    let missing = scene.path("no-such-log.jsonl").display().to_string();
    let out = nanoproc(&["graph", &manifest, "--audit", &missing]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("no-such-log.jsonl: No such file"),
        "{out:?}"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_three_level_tree_shows_each_level_and_what_each_child_serves() {
    let scene = Scene::new();
    scene.mkdir("data/m");
    let manifest = scene.manifest(
        r#"
[app]
root = "driver"

[nanoprocess.driver]
component = "{probe_driver}"
grants.fs = [{ host = "data", guest = "/data", rights = "read-write" }]
grants.stdout = true
grants.random = true
deps = { "test:probe/probe" = "mid", "test:probe/sibling" = "sib" }

[nanoprocess.mid]
component = "{probe_mid}"
grants.fs = [{ from = "/data/m", guest = "/m", rights = "read-only" }]
grants.random = true
deps = { "test:probe/downstream" = "leaf" }
on-failure = "error"
restart = { max = 3, within = "10s" }

[nanoprocess.leaf]
component = "{probe_leaf}"
grants.random = true
on-failure = "error"

[nanoprocess.sib]
component = "{probe_leaf}"
"#,
    );
    let m = manifest.display().to_string();
    let out = nanoproc(&["graph", &m]);
    assert_eq!(out.code, 0, "{out:?}");
    let svg = graphviz_svg(&out.stdout);
    for text in [
        "driver",
        "driver/mid",
        "driver/mid/leaf",
        "driver/sib",
        "test:probe/probe",
        "test:probe/sibling",
        "test:probe/downstream",
    ] {
        assert!(
            svg.contains(&format!(">{text}<")),
            "{text} missing from:\n{svg}"
        );
    }
    // The edge into the third level comes from the middle, labelled with what
    // the leaf serves it.
    let (mid, leaf) = (
        dot_id(&out.stdout, "driver/mid"),
        dot_id(&out.stdout, "driver/mid/leaf"),
    );
    let edge = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{mid} -> {leaf} ")))
        .unwrap_or_else(|| panic!("no edge {mid} -> {leaf} in:\n{}", out.stdout));
    assert!(edge.contains("label=\"test:probe/downstream\""), "{edge}");
    let mid_node = svg_group(&svg, &mid);
    assert!(mid_node.contains("/m (read-only)"), "{mid_node}");
    assert!(
        mid_node.contains("restarted up to 3 times within 10s"),
        "{mid_node}"
    );

    let mermaid = nanoproc(&["graph", &m, "--format", "mermaid"]);
    assert_eq!(mermaid.stdout.matches("-->").count(), 3, "{mermaid:?}");
    assert!(
        mermaid
            .stdout
            .contains(&format!("  {mid} -->|\"test:probe/downstream\"| {leaf};")),
        "{mermaid:?}"
    );
    let html = nanoproc(&["graph", &m, "--format", "html"]);
    // The leaf's card is nested two lists deep.
    let at = html
        .stdout
        .find("<div class=\"path\">driver/mid/leaf</div>")
        .unwrap();
    let before = &html.stdout[..at];
    let depth = before.matches("<ul").count() - before.matches("</ul>").count();
    assert_eq!(depth, 3, "{}", html.stdout);
}

#[test]
fn hostile_names_in_a_manifest_stay_text_in_every_format() {
    let scene = Scene::new();
    // A component file whose name is as hostile as the nanoprocess's.
    let evil_file = "evil\"];<script>x.wasm";
    std::fs::copy(guest("probe_leaf"), scene.path(evil_file)).unwrap();
    // (A name may not contain `/`: one step of a tree path.)
    let leaf = "x\\\"];n9->n0;<script>alert(1)<script>";
    let sib = "%%{init: {'securityLevel':'loose'}}%% #quot; \\n\\u202e";
    let manifest = scene.manifest(&format!(
        r#"
[app]
root = "driver"

[nanoprocess.driver]
component = "{{probe_driver}}"
deps = {{ "test:probe/probe" = "{leaf}", "test:probe/sibling" = "{sib}" }}

[nanoprocess."{leaf}"]
component = "evil\"];<script>x.wasm"
grants.env = ["GREETING=</td>\"]; {{}} <img src=https://evil.example/x>"]

[nanoprocess."{sib}"]
component = "{{probe_leaf}}"
"#
    ));
    let m = manifest.display().to_string();
    assert_eq!(check(&manifest).code, 0, "{:?}", check(&manifest));

    let dot = nanoproc(&["graph", &m]);
    assert_eq!(dot.code, 0, "{dot:?}");
    let svg = graphviz_svg(&dot.stdout);
    assert_eq!(svg.matches("class=\"node\"").count(), 3, "{svg}");
    assert_eq!(svg.matches("class=\"edge\"").count(), 2, "{svg}");
    assert!(!svg.contains("<title>n9</title>"), "{svg}");
    assert!(
        svg.contains("driver/x&quot;];n9-&gt;n0;&lt;script&gt;alert(1)&lt;script&gt;"),
        "{svg}"
    );
    // The right-to-left override shows as an escape, not as reordered text.
    assert!(svg.contains(r"\n\u202e"), "{svg}");

    let mermaid = nanoproc(&["graph", &m, "--format", "mermaid"]);
    assert_eq!(mermaid.code, 0, "{mermaid:?}");
    let lines: Vec<&str> = mermaid.stdout.lines().collect();
    assert_eq!(lines.len(), 1 + 3 + 2, "{mermaid:?}");
    assert!(!mermaid.stdout.contains("%%{"), "{mermaid:?}");
    for line in &lines[1..] {
        // Each statement is one line with exactly its own two quotes (a node) or
        // its own two (an edge's label).
        assert_eq!(line.matches('"').count(), 2, "{line}");
        assert!(line.ends_with(';'), "{line}");
    }

    let html = nanoproc(&["graph", &m, "--format", "html"]);
    assert_eq!(html.code, 0, "{html:?}");
    let page = &html.stdout;
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("src=\""), "{page}");
    assert!(
        page.contains("driver/x&quot;];n9-&gt;n0;&lt;script&gt;alert(1)&lt;script&gt;"),
        "{page}"
    );
    assert!(
        page.contains("GREETING=&lt;/td&gt;&quot;]; {} &lt;img src=https://evil.example/x&gt;")
    );
}

#[test]
fn a_refused_manifest_is_reported_as_check_reports_it() {
    let scene = Scene::new();
    let manifest = scene.driver_tree("", "grants.random = true", "");
    let graph = nanoproc(&["graph", &manifest.display().to_string()]);
    let check = check(&manifest);
    assert_eq!(graph.code, 125, "{graph:?}");
    assert_eq!(check.code, 125, "{check:?}");
    assert_eq!(graph.stderr, check.stderr);
    assert!(graph.stderr.contains("random"), "{graph:?}");
    assert_eq!(graph.stdout, "");
}

#[test]
fn the_output_file_is_never_the_manifest_nor_followed_through_a_link() {
    let scene = Scene::new();
    let manifest = scene.driver_tree("", "", "");
    let m = manifest.display().to_string();
    let before = std::fs::read(&manifest).unwrap();
    // -o the manifest, by its name or by a link to it: refused, untouched.
    let link = scene.path("graph-link.dot");
    std::os::unix::fs::symlink(&manifest, &link).unwrap();
    for out in [m.clone(), link.display().to_string()] {
        let run = nanoproc(&["graph", &m, "-o", &out]);
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("it is the manifest"), "{run:?}");
        assert_eq!(std::fs::read(&manifest).unwrap(), before);
    }
    // Nor the audit log it reads.
    let audit = scene.file("audit.jsonl", "");
    let a = audit.display().to_string();
    let run = nanoproc(&["graph", &m, "--audit", &a, "-o", &a]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("it is the --audit log"), "{run:?}");
    assert_eq!(std::fs::read(&audit).unwrap(), b"");

    // -o a link to someone else's file: the link is replaced by the picture,
    // the file it pointed to is left as it was.
    let victim = scene.file("victim.txt", "precious\n");
    let out = scene.path("tree.dot");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let run = nanoproc(&["graph", &m, "-o", &out.display().to_string()]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let written = std::fs::symlink_metadata(&out).unwrap();
    assert!(written.file_type().is_file(), "{written:?}");
    let dot = std::fs::read_to_string(&out).unwrap();
    assert!(dot.starts_with("digraph"), "{dot}");
    assert!(dot.contains("driver/leaf"), "{dot}");
    // An existing file is replaced whole, keeping its permissions; no temporary
    // file is left beside it.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = nanoproc(&[
        "graph",
        &m,
        "--format",
        "mermaid",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        std::fs::read_to_string(&out)
            .unwrap()
            .starts_with("flowchart")
    );
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
    let leftovers: Vec<_> = std::fs::read_dir(scene.path("."))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".nanoproc-graph"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn an_audit_log_that_is_no_regular_file_is_refused_without_waiting() {
    let scene = Scene::new();
    let m = scene.driver_tree("", "", "").display().to_string();
    let fifo = scene.path("audit.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // Opening the FIFO used to wait forever for a writer, and /dev/zero to be
    // read forever.
    for (log, what) in [
        (
            fifo.display().to_string(),
            "it is a FIFO, not a regular file",
        ),
        ("/dev/zero".to_string(), "it is a character device"),
        (scene.path(".").display().to_string(), "it is a directory"),
    ] {
        let (run, _) = nanoproc_within(
            std::time::Duration::from_secs(60),
            &["graph", &m, "--audit", &log],
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains(what), "{run:?}");
        assert_eq!(run.stdout, "", "{run:?}");
    }
}
