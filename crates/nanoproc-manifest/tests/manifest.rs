//! `Manifest::load` on manifests written to a temporary directory: the tree it builds
//! from a valid manifest, and the place and wording of every kind of error.

use nanoproc_caps::{
    ClockMode, DirRequest, DirSource, FsRights, LimitKind, OutputMode, Plain, RandomMode, Span,
    VarRequest,
};
use nanoproc_manifest::{
    Location, MAX_DEPTH, Manifest, ManifestError, ManifestErrors, digest_of, parse_instant,
};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// Component files every project has, under `build/`, each with distinct bytes.
const COMPONENTS: &[&str] = &[
    "app", "mid", "leaf", "sib", "a", "b", "c", "x", "y", "shared", "zeta", "alpha", "orphan",
];

/// A manifest written as `nanoproc.toml` next to `build/<name>.wasm` for every name
/// in [`COMPONENTS`].
struct Project {
    dir: TempDir,
    path: PathBuf,
    /// The manifest text exactly as written (spans are offsets into it).
    src: String,
}

impl Project {
    /// `src` may start with a newline (for readable raw strings); it is dropped, so
    /// line 1 is the first line of text.
    fn new(src: &str) -> Project {
        let src = src.strip_prefix('\n').unwrap_or(src).to_string();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("build")).unwrap();
        for name in COMPONENTS {
            std::fs::write(component_path(dir.path(), name), component_bytes(name)).unwrap();
        }
        let path = dir.path().join("nanoproc.toml");
        std::fs::write(&path, &src).unwrap();
        Project { dir, path, src }
    }

    fn load(&self) -> Result<Manifest, ManifestErrors> {
        Manifest::load(&self.path)
    }

    fn manifest(&self) -> Manifest {
        self.load()
            .unwrap_or_else(|e| panic!("expected a valid manifest, got:\n{e}"))
    }

    fn errors(&self) -> Vec<ManifestError> {
        match self.load() {
            Ok(_) => panic!("expected errors, but the manifest is valid:\n{}", self.src),
            Err(ManifestErrors(errors)) => {
                assert!(!errors.is_empty(), "Err with no errors in it");
                errors
            }
        }
    }

    /// The only error; fails if there are more.
    fn error(&self) -> ManifestError {
        let mut errors = self.errors();
        assert_eq!(
            errors.len(),
            1,
            "expected exactly one error, got:\n{errors:#?}"
        );
        errors.pop().unwrap()
    }

    /// Asserts that `err` is at `line`:`column` of this manifest, that the text
    /// there starts with `token` (so the numbers point at what the test means), and
    /// that the message contains `message`.
    #[track_caller]
    fn assert_at(
        &self,
        err: &ManifestError,
        line: usize,
        column: usize,
        token: &str,
        message: &str,
    ) {
        let loc = err
            .location
            .as_ref()
            .unwrap_or_else(|| panic!("error has no location: {err}"));
        assert_eq!(loc.file, self.path, "wrong file in {err}");
        assert_eq!(
            (loc.line, loc.column),
            (line, column),
            "wrong place for {err}"
        );
        let text = self.src.lines().nth(line - 1).expect("line is in the file");
        let at: String = text.chars().skip(column - 1).collect();
        assert!(
            at.starts_with(token),
            "{line}:{column} is at {at:?}, expected it to start with {token:?}"
        );
        // The bytes it is about start where its line and column say.
        if let Some(span) = &loc.span {
            assert!(
                span.start <= span.end && self.src[span.start..].starts_with(token),
                "the span {span:?} of {err} is at {:?}",
                &self.src[span.start..]
            );
        }
        assert!(
            err.message.contains(message),
            "message {:?} does not contain {message:?}",
            err.message
        );
    }

    /// The manifest text a span covers.
    fn text(&self, span: &std::ops::Range<usize>) -> &str {
        &self.src[span.clone()]
    }
}

fn component_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("build").join(format!("{name}.wasm"))
}

fn component_bytes(name: &str) -> Vec<u8> {
    format!("\0asm not really a component: {name}").into_bytes()
}

fn help(err: &ManifestError) -> &str {
    err.help
        .as_deref()
        .unwrap_or_else(|| panic!("error has no help: {err}"))
}

// ---------------------------------------------------------------------------
// A valid manifest

const TREE: &str = r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
grants.fs = [
  { host = "./photos", guest = "/photos", rights = "read-write" },
  { host = "cfg", guest = "/etc/app", rights = "ro" },
]
grants.env = ["HOME", "MODE=fast", "EMPTY="]
grants.random = true
grants.wall-clock = true
grants.stdout = true
grants.stderr = false
grants.memory = "64 MiB"
grants.args = ["--verbose", "two words"]
deps = { "example:gallery/work" = "mid", "example:gallery/log@0.2.0" = "sib" }

[nanoprocess.sib]
component = "build/sib.wasm"

[nanoprocess.mid]
component = "build/mid.wasm"
grants = { fs = [{ from = "/photos/thumbs", guest = "/out", rights = "read-only" }], monotonic-clock = true }
deps = { "example:gallery/leaf" = "leaf" }

[nanoprocess.leaf]
component = "build/leaf.wasm"
"#;

#[test]
fn valid_tree_is_in_pre_order_with_paths_and_parents() {
    let p = Project::new(TREE);
    let m = p.manifest();

    assert_eq!(m.path, p.path);
    assert_eq!(m.dir, p.dir.path());
    let shape: Vec<(&str, &str, Option<usize>)> = m
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), n.path.as_str(), n.parent))
        .collect();
    // Children follow the order their deps are written in (`mid` before `sib`), not
    // the order of interface names or of the tables.
    assert_eq!(
        shape,
        [
            ("app", "app", None),
            ("mid", "app/mid", Some(0)),
            ("leaf", "app/mid/leaf", Some(1)),
            ("sib", "app/sib", Some(0)),
        ]
    );
    assert_eq!(m.root().name, "app");
    for n in &m.nodes {
        assert_eq!(
            n.component,
            p.dir.path().join(format!("build/{}.wasm", n.name))
        );
        assert_eq!(
            p.text(&n.component_span),
            format!("\"build/{}.wasm\"", n.name)
        );
        assert_eq!(n.digest, None);
        assert_eq!(n.digest_span, None);
    }
}

#[test]
fn valid_tree_deps_point_at_children_and_their_lines() {
    let p = Project::new(TREE);
    let m = p.manifest();

    let deps = |i: usize| -> Vec<(&str, usize, &str)> {
        m.nodes[i]
            .deps
            .iter()
            .map(|d| (d.interface.as_str(), d.child, p.text(&d.span)))
            .collect()
    };
    assert_eq!(
        deps(0),
        [
            ("example:gallery/work", 1, "\"mid\""),
            ("example:gallery/log@0.2.0", 3, "\"sib\""),
        ]
    );
    assert_eq!(deps(1), [("example:gallery/leaf", 2, "\"leaf\"")]);
    assert!(deps(2).is_empty());
    assert!(deps(3).is_empty());

    let loc = m.locate(&m.nodes[0].deps[1].span).unwrap();
    assert_eq!((loc.line, loc.column), (17, 72));
}

/// A request as parsed, without the spans (which `grant_spans_point_at_each_item`
/// checks), to compare with one built by hand.
fn unspanned(mut dirs: Vec<DirRequest>) -> Vec<DirRequest> {
    for d in &mut dirs {
        d.span = None;
    }
    dirs
}

#[test]
fn valid_tree_grants_are_parsed() {
    let p = Project::new(TREE);
    let m = p.manifest();

    let app = &m.nodes[0].grants;
    assert_eq!(
        unspanned(app.fs.clone()),
        [
            DirRequest::new(
                DirSource::Host(PathBuf::from("./photos")),
                "/photos",
                FsRights::READ_WRITE,
            ),
            DirRequest::new(
                DirSource::Host(PathBuf::from("cfg")),
                "/etc/app",
                FsRights::READ_ONLY,
            ),
        ]
    );
    let vars: Vec<VarRequest> = app
        .env
        .vars
        .iter()
        .cloned()
        .map(|mut v| {
            v.span = None;
            v
        })
        .collect();
    assert_eq!(
        vars,
        [
            VarRequest::inherit("HOME"),
            VarRequest::literal("MODE", "fast"),
            VarRequest::literal("EMPTY", ""),
        ]
    );
    // Held: stdout, the wall clock and random; stderr is written, as `false`.
    assert_eq!(app.stdio.stdout.held, Some(OutputMode::Terminal));
    assert_eq!(app.stdio.stderr.held, None);
    assert_eq!(app.stdio.stdin.held, None);
    assert_eq!(app.clocks.wall.held, Some(ClockMode::Real));
    assert_eq!(app.clocks.monotonic.held, None);
    assert_eq!(app.random.secure.held, Some(RandomMode::Real));
    assert_eq!(app.random.insecure.held, None);
    assert_eq!(app.exit.held, None);
    assert_eq!(app.limits.values.get(LimitKind::Memory), Some(67_108_864));
    assert_eq!(app.env.args, ["--verbose", "two words"]);
    assert!(app.network.connect.is_empty());

    let mid = &m.nodes[1].grants;
    assert_eq!(
        unspanned(mid.fs.clone()),
        [DirRequest::new(
            DirSource::Parent("/photos/thumbs".into()),
            "/out",
            FsRights::READ_ONLY,
        )]
    );
    assert_eq!(mid.clocks.monotonic.held, Some(ClockMode::Real));
    assert_eq!(mid.clocks.wall.held, None);
    assert_eq!(mid.stdio.stdout.held, None);
    assert_eq!(mid.random.secure.held, None);
    assert!(mid.env.vars.is_empty() && mid.env.args.is_empty());
    assert_eq!(mid.limits.values.get(LimitKind::Memory), None);

    // No `grants` at all: nothing requested, and nothing to point at.
    for leafish in [&m.nodes[2], &m.nodes[3]] {
        assert_eq!(leafish.grants, Default::default());
        assert_eq!(leafish.grants_span, None);
        assert_eq!(
            leafish.grants.limits.spans[LimitKind::Memory as usize],
            None
        );
    }
}

#[test]
fn grant_spans_point_at_each_item() {
    let p = Project::new(TREE);
    let m = p.manifest();
    let app = &m.nodes[0].grants;
    let text_of = |span: &Option<Span>| p.text(span.as_ref().unwrap()).to_string();

    assert_eq!(
        text_of(&app.fs[0].span),
        r#"{ host = "./photos", guest = "/photos", rights = "read-write" }"#
    );
    assert_eq!(
        text_of(&app.fs[1].span),
        r#"{ host = "cfg", guest = "/etc/app", rights = "ro" }"#
    );
    assert_eq!(text_of(&app.env.vars[0].span), r#""HOME""#);
    assert_eq!(text_of(&app.env.vars[1].span), r#""MODE=fast""#);
    assert_eq!(
        text_of(&app.limits.spans[LimitKind::Memory as usize]),
        r#""64 MiB""#
    );
    // Each flag's span is its own value: check the lines, since they all read `true`.
    let line_of = |span: &Option<Span>| m.locate(span.as_ref().unwrap()).unwrap().line;
    assert_eq!(line_of(&app.random.secure.span), 11);
    assert_eq!(line_of(&app.clocks.wall.span), 12);
    assert_eq!(line_of(&app.stdio.stdout.span), 13);
    let stderr = app.stdio.stderr.span.clone().unwrap();
    assert_eq!(
        (p.text(&stderr), m.locate(&stderr).unwrap().line),
        ("false", 14)
    );

    // What was not written has no span of its own: messages about it point at the
    // whole `grants`.
    let whole = m.nodes[0].grants_span.clone().unwrap();
    assert_eq!(p.text(&whole), "grants");
    assert_eq!(m.locate(&whole).unwrap().line, 6);
    assert_eq!(app.stdio.stdin.span, None);
    assert!(app.network.connect.is_empty());
    assert_eq!(app.env.vars.len(), 3);

    // An inline `grants = { ... }` table is its own whole span.
    let mid = &m.nodes[1];
    assert!(
        p.text(mid.grants_span.as_ref().unwrap())
            .starts_with("{ fs = [{ from")
    );
    assert_eq!(
        text_of(&mid.grants.fs[0].span),
        r#"{ from = "/photos/thumbs", guest = "/out", rights = "read-only" }"#
    );
    assert_eq!(text_of(&mid.grants.clocks.monotonic.span), "true");
}

#[test]
fn grants_as_a_table_and_network_entries() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.app.grants]
stdin = true
network = ["example.com:443"]
"#,
    );
    let m = p.manifest();
    let node = m.root();
    let connect: Vec<&str> = node
        .grants
        .network
        .connect
        .iter()
        .map(|p| p.text.as_str())
        .collect();
    assert_eq!(connect, ["example.com:443"]);
    assert_eq!(node.grants.stdio.stdin.held, Some(Plain));
    assert_eq!(
        p.text(node.grants_span.as_ref().unwrap()),
        "[nanoprocess.app.grants]"
    );
    assert_eq!(
        p.text(node.grants.network.connect[0].span.as_ref().unwrap()),
        r#""example.com:443""#
    );
    assert_eq!(
        m.locate(node.grants.stdio.stdin.span.as_ref().unwrap()),
        Some(Location {
            file: p.path.clone(),
            line: 8,
            column: 9,
            span: node.grants.stdio.stdin.span.clone(),
        })
    );
}

#[test]
fn one_child_may_provide_several_imports_of_its_parent() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "example:svc/b" = "b", "example:svc/a" = "b" }

[nanoprocess.b]
component = "build/b.wasm"
"#,
    );
    let m = p.manifest();
    assert_eq!(m.nodes.len(), 2);
    let deps: Vec<(&str, usize)> = m.nodes[0]
        .deps
        .iter()
        .map(|d| (d.interface.as_str(), d.child))
        .collect();
    assert_eq!(deps, [("example:svc/b", 1), ("example:svc/a", 1)]);
}

// ---------------------------------------------------------------------------
// Unknown keys

#[test]
fn unknown_top_level_key() {
    let p = Project::new(
        r#"
colour = "red"
[app]
root = "app"
[nanoprocess.app]
component = "build/app.wasm"
"#,
    );
    let err = p.error();
    p.assert_at(&err, 1, 1, "colour", "unknown field `colour`");
    assert!(err.message.contains("`app` or `nanoprocess`"), "{err}");
}

#[test]
fn unknown_top_level_table() {
    let p = Project::new(
        r#"
[app]
root = "app"
[nanoproces.app]
component = "build/app.wasm"
"#,
    );
    p.assert_at(
        &p.error(),
        3,
        2,
        "nanoproces.app",
        "unknown field `nanoproces`",
    );
}

#[test]
fn unknown_key_in_app() {
    let p = Project::new(
        r#"
[app]
root = "app"
name = "gallery"
[nanoprocess.app]
component = "build/app.wasm"
"#,
    );
    p.assert_at(
        &p.error(),
        3,
        1,
        "name",
        "unknown field `name`, expected `root`",
    );
}

#[test]
fn unknown_key_in_a_nanoprocess() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
dpes = { "x:y/z" = "b" }
"#,
    );
    let err = p.error();
    p.assert_at(&err, 6, 1, "dpes", "unknown field `dpes`");
    assert!(err.message.contains("`deps`"), "{err}");
}

#[test]
fn unknown_key_in_grants() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
grants.random = true
grants.rnadom = true
"#,
    );
    let err = p.error();
    p.assert_at(&err, 7, 8, "rnadom", "unknown field `rnadom`");
    assert!(err.message.contains("`random`"), "{err}");
}

#[test]
fn unknown_key_in_a_grants_table() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.app.grants]
stdout = true
wall_clock = true
"#,
    );
    // Flags are kebab-case: the snake_case spelling must not be silently ignored.
    p.assert_at(&p.error(), 9, 1, "wall_clock", "unknown field `wall_clock`");
}

#[test]
fn unknown_key_in_an_fs_entry() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
grants.fs = [
  { host = ".", guest = "/data", rights = "read-only" },
  { host = ".", guest = "/tmp", rights = "read-write", recursive = true },
]
"#,
    );
    let err = p.error();
    p.assert_at(&err, 8, 56, "recursive", "unknown field `recursive`");
    assert!(
        err.message.contains("`host`, `from`, `guest`, `rights`"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// TOML-level errors

#[test]
fn syntax_error_has_a_location() {
    let p = Project::new(
        r#"
[app]
root = app
"#,
    );
    p.assert_at(&p.error(), 2, 8, "app", "string values must be quoted");
}

#[test]
fn same_nanoprocess_declared_twice() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.mid]
component = "build/mid.wasm"

[nanoprocess.app]
component = "build/leaf.wasm"
"#,
    );
    // The second declaration, not the first.
    p.assert_at(&p.error(), 10, 14, "app]", "duplicate key");
}

#[test]
fn missing_app_table() {
    let p = Project::new(
        r#"
[nanoprocess.app]
component = "build/app.wasm"
"#,
    );
    let err = p.error();
    assert!(err.message.contains("missing field `app`"), "{err}");
}

#[test]
fn unreadable_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml");
    let ManifestErrors(errors) = Manifest::load(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location, None);
    assert!(errors[0].message.starts_with("cannot read manifest "));
    assert!(errors[0].message.contains("absent.toml"));
}

// ---------------------------------------------------------------------------
// Components and digests

#[test]
fn missing_component_file() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "x:y/z" = "mid" }

[nanoprocess.mid]
component =   "build/mdi.wasm"
"#,
    );
    let err = p.error();
    p.assert_at(&err, 9, 15, "\"build/mdi.wasm\"", "app/mid: component file");
    assert!(err.message.ends_with("does not exist"), "{err}");
    assert!(
        err.message
            .contains(&p.dir.path().join("build/mdi.wasm").display().to_string())
    );
    assert!(help(&err).contains("relative to the manifest's directory"));
}

#[test]
fn a_directory_is_not_a_component_file() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build"
"#,
    );
    p.assert_at(&p.error(), 5, 13, "\"build\"", "app: component file");
}

#[test]
fn malformed_digests() {
    for (digest, column) in [
        ("md5:abc", 10),
        // Right prefix, one hex digit short.
        (&*format!("sha256:{}", "ab".repeat(31) + "a"), 10),
        // Right length, not hex.
        (&*format!("sha256:{}", "zz".repeat(32)), 10),
    ] {
        let p = Project::new(&format!(
            "[app]\nroot = \"app\"\n[nanoprocess.app]\ncomponent = \"build/app.wasm\"\ndigest = \"{digest}\"\n"
        ));
        p.assert_at(
            &p.error(),
            5,
            column,
            &format!("\"{digest}\""),
            "app: a digest is `sha256:` followed by 64 hex digits",
        );
    }
}

fn digest_project(digest: &str) -> Project {
    Project::new(&format!(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = {{ "x:y/z" = "mid" }}

[nanoprocess.mid]
component = "build/mid.wasm"
digest = "{digest}"
"#
    ))
}

#[test]
fn verify_digest_accepts_the_matching_bytes() {
    let good = digest_of(&component_bytes("mid"));
    assert_eq!(good.len(), "sha256:".len() + 64);
    // Upper-case hex is the same digest.
    let p = digest_project(&good.to_uppercase().replacen("SHA256", "sha256", 1));
    let m = p.manifest();
    let mid = &m.nodes[1];
    let bytes = std::fs::read(&mid.component).unwrap();
    assert_eq!(mid.digest.map(hex::encode), Some(good[7..].to_string()));
    assert_eq!(m.verify_digest(mid, &bytes), Ok(()));
    // A node without a digest accepts anything.
    assert_eq!(m.verify_digest(m.root(), b"whatever"), Ok(()));
}

#[test]
fn verify_digest_rejects_other_bytes() {
    let good = digest_of(&component_bytes("mid"));
    let p = digest_project(&good);
    let m = p.manifest();
    let mid = &m.nodes[1];
    let other = component_bytes("leaf");

    let err = m.verify_digest(mid, &other).unwrap_err();
    p.assert_at(&err, 10, 10, &format!("\"{good}\""), "app/mid: component ");
    assert!(err.message.contains("does not match its digest"), "{err}");
    assert!(err.message.contains(&format!("expected {good}")), "{err}");
    assert!(
        err.message
            .contains(&format!("found {}", digest_of(&other))),
        "{err}"
    );
    assert!(help(&err).contains("update `digest`"));
}

#[test]
fn verify_digest_without_a_manifest_file() {
    let mut m = Manifest::single(PathBuf::from("dir/tool.wasm"), Default::default());
    assert_eq!(m.root().path, "tool");
    assert_eq!(m.verify_digest(&m.nodes[0].clone(), b"anything"), Ok(()));
    // A digest but no source text: the error still comes, without a location.
    m.nodes[0].digest = Some([0; 32]);
    let node = m.nodes[0].clone();
    let err = m.verify_digest(&node, b"anything").unwrap_err();
    assert_eq!(err.location, None);
    assert!(
        err.message
            .contains(&format!("expected sha256:{}", "0".repeat(64)))
    );
}

// ---------------------------------------------------------------------------
// The tree

#[test]
fn root_is_not_declared() {
    let p = Project::new(
        r#"
[app]
root = "ap"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.mid]
component = "build/mid.wasm"
"#,
    );
    let err = p.error();
    p.assert_at(
        &err,
        2,
        8,
        "\"ap\"",
        "the root `ap` is not a declared nanoprocess",
    );
    assert_eq!(
        help(&err),
        "declare it as [nanoprocess.ap], or pick one of: app, mid"
    );
}

#[test]
fn root_with_nothing_declared() {
    let p = Project::new("[app]\nroot = \"app\"\n");
    let err = p.error();
    p.assert_at(
        &err,
        2,
        8,
        "\"app\"",
        "the root `app` is not a declared nanoprocess",
    );
    assert!(help(&err).ends_with("pick one of: (none)"), "{err}");
}

#[test]
fn dependency_on_an_undeclared_nanoprocess() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "example:svc/thumbs" = "mid", "example:svc/log" = "loger" }

[nanoprocess.mid]
component = "build/mid.wasm"
"#,
    );
    let err = p.error();
    p.assert_at(
        &err,
        6,
        60,
        "\"loger\"",
        "`app` depends on `loger` for example:svc/log, but no nanoprocess `loger` is declared",
    );
    assert_eq!(help(&err), "declared nanoprocesses: app, mid");
}

#[test]
fn cycle_away_from_the_root() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.b]
component = "build/b.wasm"
deps = { "x:y/a" = "a" }

[nanoprocess.a]
component = "build/a.wasm"
deps = { "x:y/b" = "b" }
"#,
    );
    // One error for the cycle, told from the member written first and placed at
    // the dependency that closes it; not two "unreachable" errors.
    let err = p.error();
    p.assert_at(&err, 13, 20, "\"b\"", "dependency cycle: b -> a -> b");
    assert!(help(&err).contains("tree under the root `app`"), "{err}");
}

#[test]
fn nanoprocess_depending_on_itself() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.a]
component = "build/a.wasm"
deps = { "x:y/again" = "a" }
"#,
    );
    p.assert_at(&p.error(), 9, 24, "\"a\"", "dependency cycle: a -> a");
}

#[test]
fn below_a_cycle_is_unreachable() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.a]
component = "build/a.wasm"
deps = { "x:y/b" = "b", "x:y/c" = "c" }

[nanoprocess.b]
component = "build/b.wasm"
deps = { "x:y/a" = "a" }

[nanoprocess.c]
component = "build/c.wasm"
"#,
    );
    let errors = p.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    p.assert_at(&errors[0], 13, 20, "\"a\"", "dependency cycle: a -> b -> a");
    p.assert_at(
        &errors[1],
        15,
        14,
        "c]",
        "nanoprocess `c` is declared but is not reachable",
    );
}

#[test]
fn dependency_on_the_root() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "x:y/mid" = "mid" }

[nanoprocess.mid]
component = "build/mid.wasm"
deps = { "x:y/back" = "app" }
"#,
    );
    // Exactly one error, with a location (not also a located-nowhere "cycle").
    p.assert_at(
        &p.error(),
        10,
        23,
        "\"app\"",
        "`mid` depends on the root `app`: that is a cycle",
    );
}

#[test]
fn root_depending_on_itself() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "x:y/me" = "app" }
"#,
    );
    p.assert_at(
        &p.error(),
        6,
        21,
        "\"app\"",
        "`app` depends on the root `app`",
    );
}

/// A chain `n0 -> n1 -> ... -> n{len - 1}`, each node's table four lines from line
/// 4 on (`[app]` takes three), every node backed by `build/a.wasm`. `root` is the
/// root's name; `closing`, if given, is what the last node depends on.
fn chain(len: usize, root: &str, closing: Option<&str>) -> String {
    let mut text = format!("[app]\nroot = \"{root}\"\n\n");
    for i in 0..len {
        let next = match (i + 1 < len, closing) {
            (true, _) => format!("n{}", i + 1),
            (false, Some(c)) => c.to_string(),
            (false, None) => {
                text.push_str(&format!(
                    "[nanoprocess.n{i}]\ncomponent = \"build/a.wasm\"\n\n\n"
                ));
                continue;
            }
        };
        text.push_str(&format!(
            "[nanoprocess.n{i}]\ncomponent = \"build/a.wasm\"\ndeps = {{ \"x:y/down\" = \"{next}\" }}\n\n"
        ));
    }
    text
}

#[test]
fn a_tree_max_depth_levels_deep_is_accepted() {
    let p = Project::new(&chain(MAX_DEPTH, "n0", None));
    let m = p.manifest();
    assert_eq!(m.nodes.len(), MAX_DEPTH);
    let deepest: Vec<String> = (0..MAX_DEPTH).map(|i| format!("n{i}")).collect();
    assert_eq!(m.nodes.last().unwrap().path, deepest.join("/"));
    assert_eq!(m.nodes.last().unwrap().parent, Some(MAX_DEPTH - 2));
}

#[test]
fn one_level_more_is_refused_at_the_too_deep_nanoprocess() {
    for len in [MAX_DEPTH + 1, MAX_DEPTH + 2, 100_000] {
        let started = std::time::Instant::now();
        let p = Project::new(&chain(len, "n0", None));
        // One error, at the declaration of the first level too many; what hangs
        // below it is neither built nor reported as unreachable.
        let err = p.error();
        p.assert_at(
            &err,
            4 + 4 * MAX_DEPTH,
            14,
            &format!("n{MAX_DEPTH}]"),
            &format!(
                "nanoprocess `n{MAX_DEPTH}` (a dependency of `n{}`) would be level {} of the tree; a tree has at most {MAX_DEPTH} levels",
                MAX_DEPTH - 1,
                MAX_DEPTH + 1
            ),
        );
        assert!(help(&err).contains("higher up the tree"), "{err}");
        // Linear: a recursive walk overflowed the stack at this depth, and the
        // search for cycles took time cubic in the length of a chain.
        assert!(
            started.elapsed().as_secs() < 60,
            "{len}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn long_chains_away_from_the_root_are_reported_in_linear_time() {
    const LEN: usize = 20_000;
    // A cycle of 20,000: one error, naming every member once.
    let started = std::time::Instant::now();
    let p = Project::new(&chain(LEN, "root", Some("n0")).replace(
        "[app]\nroot = \"root\"\n\n",
        "[app]\nroot = \"root\"\n\n[nanoprocess.root]\ncomponent = \"build/app.wasm\"\n\n",
    ));
    let err = p.error();
    assert!(
        err.message
            .starts_with("dependency cycle: n0 -> n1 -> n2 -> "),
        "{}",
        &err.message[..200]
    );
    assert!(err.message.ends_with(&format!("n{} -> n0", LEN - 1)));
    // A chain of 20,000 hanging from a nanoprocess nothing depends on: each is
    // unreachable, each said once.
    let p = Project::new(&chain(LEN, "n0", None).replace(
        "[app]\nroot = \"n0\"\n\n",
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"build/app.wasm\"\n\n",
    ));
    let errors = p.errors();
    assert_eq!(errors.len(), LEN);
    assert!(
        errors
            .iter()
            .all(|e| e.message.contains("is declared but is not reachable"))
    );
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn five_thousand_siblings_are_one_tree() {
    const WIDTH: usize = 5000;
    let mut text = String::from(
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"build/app.wasm\"\ndeps = {",
    );
    for k in 0..WIDTH {
        text.push_str(&format!(
            "{} \"x:y/w{k}\" = \"c{k}\"",
            if k == 0 { "" } else { "," }
        ));
    }
    text.push_str(" }\n");
    for k in 0..WIDTH {
        text.push_str(&format!(
            "\n[nanoprocess.c{k}]\ncomponent = \"build/a.wasm\"\n"
        ));
    }
    let p = Project::new(&text);
    let m = p.manifest();
    assert_eq!(m.nodes.len(), WIDTH + 1);
    assert_eq!(m.nodes[0].deps.len(), WIDTH);
    assert!(m.nodes[1..].iter().all(|n| n.parent == Some(0)));
    // Help lines list a few names, not all five thousand, for every error.
    let p = Project::new(&text.replace("= \"c0\"", "= \"nobody\""));
    let errors = p.errors();
    let undeclared = errors
        .iter()
        .find(|e| e.message.contains("no nanoprocess `nobody` is declared"))
        .expect("the undeclared dependency");
    assert!(
        help(undeclared).ends_with(", and 4981 more"),
        "{}",
        help(undeclared)
    );
}

#[test]
fn cycle_back_into_the_tree_is_a_second_parent() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "x:y/b" = "b" }

[nanoprocess.b]
component = "build/b.wasm"
deps = { "x:y/c" = "c" }

[nanoprocess.c]
component = "build/c.wasm"
deps = { "x:y/b" = "b" }
"#,
    );
    p.assert_at(
        &p.error(),
        14,
        20,
        "\"b\"",
        "`b` is already a dependency of `app`; a nanoprocess has one parent",
    );
}

#[test]
fn two_parents() {
    // `zeta` is written first, so it keeps `shared` although `alpha` sorts first.
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
deps = { "x:y/z" = "zeta", "x:y/a" = "alpha" }

[nanoprocess.zeta]
component = "build/zeta.wasm"
deps = { "x:y/s" = "shared" }

[nanoprocess.alpha]
component = "build/alpha.wasm"
deps = { "x:y/s" = "shared" }

[nanoprocess.shared]
component = "build/shared.wasm"
"#,
    );
    let err = p.error();
    p.assert_at(
        &err,
        14,
        20,
        "\"shared\"",
        "`shared` is already a dependency of `zeta`; a nanoprocess has one parent",
    );
    assert!(help(&err).contains("second nanoprocess with the same component for `alpha`"));
}

#[test]
fn unreachable_nanoprocesses() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"

[nanoprocess.orphan]
component = "build/orphan.wasm"
deps = { "x:y/z" = "b" }

[nanoprocess.b]
component = "build/b.wasm"
"#,
    );
    let errors = p.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    p.assert_at(
        &errors[0],
        7,
        14,
        "orphan]",
        "nanoprocess `orphan` is declared but is not reachable from the root `app`",
    );
    p.assert_at(
        &errors[1],
        11,
        14,
        "b]",
        "nanoprocess `b` is declared but is not reachable",
    );
    assert_eq!(
        help(&errors[0]),
        "add it to some nanoprocess's `deps`, or remove it"
    );
}

// ---------------------------------------------------------------------------
// Grants

/// A root whose only grants are `grants`, written from line 5 on.
fn grants_project(grants: &str) -> Project {
    Project::new(&format!(
        "[app]\nroot = \"app\"\n[nanoprocess.app]\ncomponent = \"build/app.wasm\"\n{grants}"
    ))
}

#[test]
fn unknown_rights() {
    let p = grants_project(r#"grants.fs = [{ host = ".", guest = "/", rights = "everything" }]"#);
    let err = p.error();
    p.assert_at(
        &err,
        5,
        50,
        "\"everything\"",
        r#"app: unknown rights "everything""#,
    );
    assert!(
        err.message
            .contains("expected `read-only`, `read-write`, or operations joined by `+`"),
        "{err}"
    );
}

#[test]
fn rights_by_operation_as_text_or_list() {
    let p = grants_project(
        r#"grants.fs = [{ host = ".", guest = "/a", rights = "read+list" }, { host = ".", guest = "/b", rights = ["create", "write"] }]"#,
    );
    let m = p.load().unwrap();
    let fs = &m.root().grants.fs;
    assert_eq!(fs[0].rights, FsRights::READ.union(FsRights::LIST));
    assert_eq!(fs[1].rights, FsRights::CREATE.union(FsRights::WRITE));
    let p = grants_project(
        r#"grants.fs = [{ host = ".", guest = "/a", rights = ["read", "destroy"] }]"#,
    );
    assert!(
        p.error()
            .message
            .contains(r#"unknown rights "read+destroy""#)
    );
}

#[test]
fn fs_entry_with_host_and_from() {
    let p = grants_project(
        r#"grants.fs = [{ host = ".", guest = "/d", rights = "ro" }, { host = ".", from = "/d", guest = "/e", rights = "ro" }]"#,
    );
    let err = p.error();
    p.assert_at(
        &err,
        5,
        59,
        "{ host = \".\", from",
        "app: a directory grant has exactly one of `host`",
    );
}

#[test]
fn fs_entry_with_neither_host_nor_from() {
    let p = grants_project(r#"grants.fs = [{ guest = "/d", rights = "ro" }]"#);
    p.assert_at(
        &p.error(),
        5,
        14,
        "{ guest",
        "app: a directory grant has exactly one of `host` (root only) or `from`",
    );
}

#[test]
fn fs_entry_wrong_twice_is_reported_twice() {
    let p = grants_project(r#"grants.fs = [{ guest = "/d", rights = "all" }]"#);
    let errors = p.errors();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    p.assert_at(&errors[0], 5, 39, "\"all\"", "unknown rights");
    p.assert_at(&errors[1], 5, 14, "{ guest", "exactly one of `host`");
}

#[test]
fn memory_that_is_not_a_size() {
    let p = grants_project(r#"grants.memory = "lots""#);
    p.assert_at(
        &p.error(),
        5,
        17,
        "\"lots\"",
        r#"app: memory: expected a size such as "64 MiB", found "lots""#,
    );
}

#[test]
fn memory_in_an_unknown_unit() {
    let p = grants_project("grants = { stdout = true, memory = \"5 parsecs\" }");
    p.assert_at(
        &p.error(),
        5,
        36,
        "\"5 parsecs\"",
        r#"app: memory: unknown size unit "parsecs""#,
    );
}

#[test]
fn env_entry_without_a_name() {
    let p = grants_project(r#"grants.env = ["OK", "=x"]"#);
    p.assert_at(
        &p.error(),
        5,
        21,
        "\"=x\"",
        "app: an environment grant is `NAME` or `NAME=value`",
    );
}

#[test]
fn every_error_is_reported() {
    let p = Project::new(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
grants.fs = [{ host = ".", guest = "/", rights = "everything" }]
grants.env = ["=x"]
grants.memory = "lots"
deps = { "x:y/mid" = "mid", "x:y/ghost" = "ghost" }

[nanoprocess.mid]
component = "build/missing.wasm"
digest = "md5:abc"

[nanoprocess.stray]
component = "build/sib.wasm"
"#,
    );
    let errors = p.errors();
    // The tree first, then each node's own errors in pre-order, then the strays.
    let expected = [
        (9, 43, "\"ghost\"", "no nanoprocess `ghost` is declared"),
        (6, 50, "\"everything\"", "app: unknown rights"),
        (7, 15, "\"=x\"", "app: an environment grant"),
        (8, 17, "\"lots\"", "app: memory:"),
        (12, 13, "\"build/missing.wasm\"", "app/mid: component file"),
        (13, 10, "\"md5:abc\"", "app/mid: a digest is"),
        (
            15,
            14,
            "stray]",
            "nanoprocess `stray` is declared but is not reachable",
        ),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (err, (line, column, token, message)) in errors.iter().zip(expected) {
        p.assert_at(err, line, column, token, message);
    }

    // All of them are printed, each with its place.
    let printed = ManifestErrors(errors).to_string();
    assert_eq!(printed.matches("error: ").count(), expected.len());
    assert!(printed.starts_with(&format!(
        "error: {}:9:43: `app` depends on `ghost`",
        p.path.display()
    )));
    assert!(
        printed.contains("\n  help: declared nanoprocesses: app, mid, stray\n"),
        "{printed}"
    );
}

// ---------------------------------------------------------------------------
// Locations

#[test]
fn location_columns_count_characters() {
    let file = Path::new("m.toml");
    let src = "# café ☕\nname = \"naïve 🦀\" # x\nend";
    let at = |needle: &str| {
        let loc = Location::from_offset(file, src, src.find(needle).unwrap());
        (loc.line, loc.column)
    };
    assert_eq!(at("#"), (1, 1));
    assert_eq!(at("☕"), (1, 8));
    assert_eq!(at("\"naïve"), (2, 8));
    // `ï` is two bytes and 🦀 four, but one column each.
    assert_eq!(at("🦀"), (2, 15));
    assert_eq!(at("# x"), (2, 18));
    assert_eq!(at("end"), (3, 1));

    let loc = Location::from_offset(file, src, src.find("# x").unwrap());
    assert_eq!(loc.file, file);
    assert_eq!(loc.to_string(), "m.toml:2:18");
}

#[test]
fn a_location_keeps_the_bytes_it_is_about() {
    let file = Path::new("m.toml");
    let src = "a = 1\nname = \"naïve\" # x\n";
    let start = src.find('"').unwrap();
    let value = start..start + "\"naïve\"".len();
    let loc = Location::from_span(file, src, &value);
    assert_eq!((loc.line, loc.column), (2, 8));
    assert_eq!(&src[loc.span.clone().unwrap()], "\"naïve\"");
    // Clamped to the text and widened to whole characters, never a panic.
    let inside = src.find('ï').unwrap() + 1;
    let loc = Location::from_span(file, src, &(inside..inside));
    assert_eq!(&src[loc.span.clone().unwrap()], "ï");
    let loc = Location::from_span(file, src, &(start..10_000));
    assert_eq!(loc.span, Some(start..src.len()));
    assert_eq!(Location::from_offset(file, src, start).span, None);

    // A manifest's errors carry the span of what they are about.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nanoproc.toml");
    let manifest =
        "[app]\nroot = \"app\"\n\n[nanoprocess.app]\ncomponent = \"a.wasm\"\nfrobnicate = 1\n";
    std::fs::write(&path, manifest).unwrap();
    let errors = Manifest::load(&path).unwrap_err().0;
    let span = errors[0].location.as_ref().unwrap().span.clone().unwrap();
    assert_eq!(&manifest[span], "frobnicate");
}

#[test]
fn location_of_odd_offsets() {
    let file = Path::new("m.toml");
    let src = "a\n🦀b";
    // Past the end: the end.
    let end = Location::from_offset(file, src, 1000);
    assert_eq!((end.line, end.column), (2, 3));
    // Inside the crab: the crab, not a panic.
    let crab = src.find('🦀').unwrap();
    for offset in crab..crab + 4 {
        let loc = Location::from_offset(file, src, offset);
        assert_eq!((loc.line, loc.column), (2, 1), "offset {offset}");
    }
    // Just after a newline: the start of the next line.
    let loc = Location::from_offset(file, "a\r\nb", 3);
    assert_eq!((loc.line, loc.column), (2, 1));
}

#[test]
fn errors_in_a_manifest_with_multi_byte_text() {
    let p = Project::new(
        r#"
# Galerie für Fotos ☕
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm" # ← the app
grants = { env = ["GRÜSSE=héllo", "=☕"] }
"#,
    );
    p.assert_at(&p.error(), 7, 35, "\"=☕\"", "an environment grant is");
}

/// Found by the `units` fuzz target: a year of twenty digits overflowed the day
/// arithmetic (a panic in a debug build, a wrapped-around instant in a release one).
#[test]
fn a_frozen_clock_at_an_absurd_year_is_an_error_at_its_line() {
    let absurd = "22200283202012-04-14T23:59:39Z";
    assert_eq!(parse_instant(absurd), None);
    assert_eq!(parse_instant("99999999999999999-01-01T00:00:00Z"), None);
    assert_eq!(parse_instant("10000-01-01T00:00:00Z"), None);
    // The years that remain still read as before.
    assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_instant("2024-02-29T23:59:59.5Z"),
        Some(1_709_251_199_500_000_000)
    );
    assert_eq!(parse_instant("1969-12-31T23:59:59Z"), None);
    let p = Project::new(&format!(
        r#"
[app]
root = "app"

[nanoprocess.app]
component = "build/app.wasm"
grants.wall-clock = "{absurd}"
"#
    ));
    p.assert_at(&p.error(), 6, 21, "\"2220", "wall-clock: expected");
}

/// A name is one step of a tree path: with a `/` in it, `a` under `driver` and
/// `driver`'s child `a/b` would share the path `driver/a/b`, and every message,
/// the audit log and the lock would confuse them.
#[test]
fn a_name_with_a_slash_is_refused() {
    let p = Project::new(
        r#"
[app]
root = "app"
[nanoprocess.app]
component = "build/app.wasm"
[nanoprocess."a/b"]
component = "build/app.wasm"
"#,
    );
    let errors = p.errors();
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("\"a/b\" is not a name")),
        "{errors:#?}"
    );
}
