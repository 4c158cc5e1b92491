//! `nanoproc.toml`: the description of an application as a tree of nanoprocesses.
//!
//! [`Manifest::load`] reads and validates everything that can be known without
//! looking inside a component: the syntax (unknown keys are errors), that the root
//! and every dependency name a declared nanoprocess, that the nanoprocesses form a
//! tree (one parent each, no cycle, none unreachable, at most [`MAX_DEPTH`] levels),
//! that component files exist and that digests are well formed. Every error carries
//! its file, line and column. The tree is walked with explicit stacks, in time and
//! memory linear in the number of nanoprocesses, however the manifest is shaped.
//!
//! ```toml
//! [app]
//! root = "app"
//!
//! [nanoprocess.app]
//! component = "build/app.wasm"
//! grants.fs = [{ host = "./photos", guest = "/photos", rights = "read-write" }]
//! deps = { "example:gallery/thumbnails" = "thumbnailer" }
//!
//! [nanoprocess.thumbnailer]
//! component = "build/thumbnailer.wasm"
//! grants.fs = [{ from = "/photos/thumbs", guest = "/out", rights = "read-write" }]
//! ```

mod error;
mod raw;

pub use error::{Location, ManifestError, ManifestErrors, Span};

use nanoproc_caps::{
    ClockMode, DirRequest, DirSource, EnvRequest, Flag, FsRights, GrantItem, GrantRequest,
    LimitKind, Modes, OutputMode, RandomMode, parse_millis,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The most levels a tree of nanoprocesses may have, the root being the first.
///
/// Each level nests inside the one above: instantiating the tree, every call from
/// a parent into a child and every message naming a nanoprocess by its path go
/// through all its ancestors. A manifest deeper than this is refused by `check`,
/// so that none of these can be made to exhaust the host's stack or memory by
/// depth alone.
pub const MAX_DEPTH: usize = 64;

/// A validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The manifest file as given.
    pub path: PathBuf,
    /// The directory relative paths are resolved against.
    pub dir: PathBuf,
    /// The manifest text; `None` for a manifest made up from command-line flags.
    source: Option<String>,
    /// Where each line of `source` starts, for locating errors.
    lines: error::Lines,
    /// The nanoprocesses, root first, then depth-first in dependency order.
    pub nodes: Vec<Node>,
}

/// One nanoprocess of the tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// The name it is declared under.
    pub name: String,
    /// Its path in the tree (`app/thumbnailer`): how every message names it.
    pub path: String,
    /// Index of the parent in [`Manifest::nodes`]; `None` for the root.
    pub parent: Option<usize>,
    pub component: PathBuf,
    pub component_span: Span,
    pub digest: Option<[u8; 32]>,
    pub digest_span: Option<Span>,
    pub grants: GrantRequest,
    pub grant_spans: GrantSpans,
    /// How a failure of this nanoprocess reaches its parent's call.
    pub on_failure: OnFailure,
    /// Whether, and how often, a failed instance is replaced by a fresh one.
    pub restart: Option<Restart>,
    /// Which of its imports each child satisfies, in declaration order.
    pub deps: Vec<Dep>,
}

/// How a dependency's failure (a trap, a limit exceeded, a refused capability that
/// traps) reaches the parent's call into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// The parent's call traps too, with the child's path and cause: a failure is
    /// never silently swallowed. The default.
    #[default]
    Trap,
    /// Where the function returns `result<_, string>`, the parent receives an `err`
    /// with the child's path and cause; other functions trap as with `Trap`.
    Error,
}

/// Replace a failed dependency with a fresh instance (same grants, state lost), at
/// most `max` times in any sliding window of `within_ms` milliseconds; a call that
/// would need one more restart within the window fails instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restart {
    pub max: u32,
    pub within_ms: u64,
}

#[derive(Clone, Debug)]
pub struct Dep {
    /// A WIT interface name, e.g. `example:gallery/thumbnails` (a version may follow `@`).
    pub interface: String,
    /// Index of the child in [`Manifest::nodes`].
    pub child: usize,
    pub span: Span,
}

/// Where each part of a nanoprocess's grants was written.
#[derive(Clone, Debug, Default)]
pub struct GrantSpans {
    pub whole: Option<Span>,
    pub fs: Vec<Span>,
    pub env: Vec<Span>,
    pub flags: BTreeMap<Flag, Span>,
    pub network: Vec<Span>,
    pub listen: Vec<Span>,
    pub limits: BTreeMap<LimitKind, Span>,
}

impl GrantSpans {
    pub fn span_of(&self, item: &GrantItem) -> Option<Span> {
        match item {
            GrantItem::Fs(i) => self.fs.get(*i).cloned(),
            GrantItem::Env(i) => self.env.get(*i).cloned(),
            GrantItem::Flag(f) => self.flags.get(f).cloned(),
            GrantItem::Network(i) => self.network.get(*i).cloned(),
            GrantItem::Listen(i) => self.listen.get(*i).cloned(),
            GrantItem::Limit(kind) => self.limits.get(kind).cloned(),
        }
        .or_else(|| self.whole.clone())
    }
}

impl Manifest {
    /// Reads and validates a manifest file.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, ManifestErrors> {
        Self::load_with_depth(path, MAX_DEPTH)
    }

    /// [`Self::load`] for a tree of at most `max_depth` levels instead of
    /// [`MAX_DEPTH`].
    pub fn load_with_depth(
        path: impl AsRef<Path>,
        max_depth: usize,
    ) -> Result<Manifest, ManifestErrors> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|e| {
            ManifestErrors(vec![ManifestError::new(
                None,
                format!("cannot read manifest {}: {e}", path.display()),
            )])
        })?;
        Self::parse_with_depth(path, source, max_depth)
    }

    /// Validates manifest text as if it had been read from `path`.
    pub fn parse(path: &Path, source: String) -> Result<Manifest, ManifestErrors> {
        Self::parse_with_depth(path, source, MAX_DEPTH)
    }

    /// [`Self::parse`] for a tree of at most `max_depth` levels.
    pub fn parse_with_depth(
        path: &Path,
        source: String,
        max_depth: usize,
    ) -> Result<Manifest, ManifestErrors> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut cx = Cx {
            path: path.to_path_buf(),
            lines: error::Lines::of(&source),
            source,
            errors: Vec::new(),
            max_depth: max_depth.max(1),
        };
        let raw: raw::RawManifest = match toml::from_str(&cx.source) {
            Ok(raw) => raw,
            Err(e) => {
                let span = e.span();
                cx.error(span, e.message().trim_end().to_string());
                return Err(ManifestErrors(cx.errors));
            }
        };
        let nodes = cx.build(raw, &dir);
        if cx.errors.is_empty() {
            Ok(Manifest {
                path: cx.path,
                dir,
                source: Some(cx.source),
                lines: cx.lines,
                nodes,
            })
        } else {
            Err(ManifestErrors(cx.errors))
        }
    }

    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// A manifest of one nanoprocess, for running a component without a manifest:
    /// the grants come from the command line.
    pub fn single(component: PathBuf, grants: GrantRequest) -> Manifest {
        let name = component
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "main".into());
        Manifest {
            path: component.clone(),
            dir: PathBuf::from("."),
            source: None,
            lines: error::Lines::default(),
            nodes: vec![Node {
                path: name.clone(),
                name,
                parent: None,
                component,
                component_span: 0..0,
                digest: None,
                digest_span: None,
                grants,
                grant_spans: GrantSpans::default(),
                on_failure: OnFailure::Trap,
                restart: None,
                deps: Vec::new(),
            }],
        }
    }

    /// Turns a span into a location in this manifest.
    pub fn locate(&self, span: &Span) -> Option<Location> {
        let source = self.source.as_ref()?;
        Some(self.lines.locate(&self.path, source, span.start))
    }

    /// An error about a part of this manifest.
    pub fn error_at(&self, span: Option<&Span>, message: impl Into<String>) -> ManifestError {
        ManifestError::new(span.and_then(|s| self.locate(s)), message)
    }

    /// Checks a component's bytes against the digest its node declares.
    pub fn verify_digest(&self, node: &Node, bytes: &[u8]) -> Result<(), ManifestError> {
        self.verify_sha256(node, Sha256::digest(bytes).into())
    }

    /// [`Self::verify_digest`] for bytes already hashed (`actual` is their
    /// SHA-256), so that a caller need not keep them.
    pub fn verify_sha256(&self, node: &Node, actual: [u8; 32]) -> Result<(), ManifestError> {
        let Some(expected) = node.digest else {
            return Ok(());
        };
        if actual == expected {
            return Ok(());
        }
        Err(self
            .error_at(
                node.digest_span.as_ref(),
                format!(
                    "{}: component {} does not match its digest: expected sha256:{}, found sha256:{}",
                    node.path,
                    node.component.display(),
                    hex::encode(expected),
                    hex::encode(actual)
                ),
            )
            .help("rebuild the component you meant, or update `digest` if the change is intended"))
    }
}

/// The sha256 of some bytes in the manifest's `digest` syntax.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

struct Cx {
    path: PathBuf,
    source: String,
    lines: error::Lines,
    errors: Vec<ManifestError>,
    /// The most levels the tree may have (the root being the first).
    max_depth: usize,
}

impl Cx {
    fn error(&mut self, span: Option<Span>, message: impl Into<String>) -> &mut ManifestError {
        let location = span.map(|s| self.lines.locate(&self.path, &self.source, s.start));
        self.errors.push(ManifestError::new(location, message));
        self.errors.last_mut().unwrap()
    }

    fn build(&mut self, raw: raw::RawManifest, dir: &Path) -> Vec<Node> {
        let root_name = raw.app.get_ref().root.clone();
        let declared: BTreeMap<String, (Span, raw::RawNanoprocess)> = raw
            .nanoprocess
            .into_iter()
            .map(|(k, v)| {
                let span = k.span();
                (k.into_inner(), (span, v.into_inner()))
            })
            .collect();

        if !declared.contains_key(root_name.get_ref()) {
            let known = names(declared.keys());
            self.error(
                Some(root_name.span()),
                format!(
                    "the root `{}` is not a declared nanoprocess",
                    root_name.get_ref()
                ),
            )
            .help = Some(format!(
                "declare it as [nanoprocess.{}], or pick one of: {known}",
                root_name.get_ref()
            ));
            return Vec::new();
        }

        // Nanoprocesses and their deps in the order they are written, so that errors
        // and children follow the file (the maps above are sorted by name).
        let mut order: Vec<&String> = declared.keys().collect();
        order.sort_by_key(|name| declared[*name].0.start);

        // Who depends on whom, checked for unknown names and second parents. The
        // first parent written keeps the child; every other claim is an error.
        let mut parent_of: HashMap<String, (String, Span)> = HashMap::new();
        for &name in &order {
            let (_, decl) = &declared[name];
            for (iface, child) in deps_in_order(decl) {
                let child_name = child.get_ref();
                if !declared.contains_key(child_name) {
                    self.error(
                        Some(child.span()),
                        format!(
                            "`{name}` depends on `{child_name}` for {}, but no nanoprocess `{child_name}` is declared",
                            iface.get_ref()
                        ),
                    )
                    .help = Some(format!("declared nanoprocesses: {}", names(declared.keys())));
                    continue;
                }
                if child_name == &root_name.get_ref()[..] {
                    self.error(
                        Some(child.span()),
                        format!("`{name}` depends on the root `{child_name}`: that is a cycle"),
                    );
                    continue;
                }
                if let Some((other, _)) = parent_of.get(child_name) {
                    if other != name {
                        self.error(
                            Some(child.span()),
                            format!(
                                "`{child_name}` is already a dependency of `{other}`; a nanoprocess has one parent"
                            ),
                        )
                        .help = Some(format!(
                            "declare a second nanoprocess with the same component for `{name}`; each gets its own instance and grants"
                        ));
                    }
                    continue;
                }
                parent_of.insert(child_name.clone(), (name.clone(), child.span()));
            }
        }

        // Depth-first from the root along the accepted parent links only: with one
        // parent each and none for the root, that walk is a tree and meets no cycle.
        let (nodes, visited, too_deep) = self.walk(root_name.get_ref(), &declared, &parent_of, dir);

        // What the walk did not reach hangs below an undeclared parent-less node, or
        // below a cycle: a chain of parents that comes back to where it started.
        // Each nanoprocess is on one chain only: a chain stops where an earlier one
        // went (`settled`), so this is linear in the number of nanoprocesses however
        // long the chains are.
        let mut in_cycle: HashSet<&str> = HashSet::new();
        let mut settled: HashSet<&str> = HashSet::new();
        for &name in &order {
            if visited.contains_key(name) || too_deep.contains(name.as_str()) {
                continue;
            }
            if !settled.insert(name) {
                continue;
            }
            let mut chain: Vec<&str> = vec![name];
            let mut on_chain: HashMap<&str, usize> = HashMap::from([(name.as_str(), 0)]);
            while let Some((parent, _)) = parent_of.get(*chain.last().unwrap()) {
                if let Some(&pos) = on_chain.get(parent.as_str()) {
                    let members = &chain[pos..];
                    in_cycle.extend(members.iter().copied());
                    self.cycle(members, &declared, &parent_of, root_name.get_ref());
                    break;
                }
                if !settled.insert(parent) {
                    break;
                }
                on_chain.insert(parent, chain.len());
                chain.push(parent);
            }
        }
        for &name in &order {
            if !visited.contains_key(name)
                && !in_cycle.contains(name.as_str())
                && !too_deep.contains(name.as_str())
            {
                self.error(
                    Some(declared[name].0.clone()),
                    format!(
                        "nanoprocess `{name}` is declared but is not reachable from the root `{}`",
                        root_name.get_ref()
                    ),
                )
                .help = Some("add it to some nanoprocess's `deps`, or remove it".into());
            }
        }
        nodes
    }

    /// Reports a cycle of dependencies, given its members (each one's parent is also
    /// a member). It is told from the member written first, and located at the
    /// dependency that closes it.
    fn cycle(
        &mut self,
        members: &[&str],
        declared: &BTreeMap<String, (Span, raw::RawNanoprocess)>,
        parent_of: &HashMap<String, (String, Span)>,
        root: &str,
    ) {
        let start = *members
            .iter()
            .min_by_key(|n| declared[**n].0.start)
            .expect("a cycle has members");
        // Up the parent links from the start back to it, then read it downwards.
        let mut up = vec![start];
        loop {
            let parent = parent_of[*up.last().unwrap()].0.as_str();
            if parent == start {
                break;
            }
            up.push(parent);
        }
        let mut down: Vec<&str> = vec![start];
        down.extend(up[1..].iter().rev());
        down.push(start);
        self.error(
            Some(parent_of[start].1.clone()),
            format!("dependency cycle: {}", down.join(" -> ")),
        )
        .help = Some(format!(
            "a nanoprocess cannot depend on itself, directly or through others; the nanoprocesses form a tree under the root `{root}`"
        ));
    }

    /// Builds the tree depth-first from the root, along the accepted parent links
    /// (`parent_of`), at most `max_depth` levels deep ([`MAX_DEPTH`] unless the
    /// caller chose): the nodes in pre-order,
    /// where each name went, and every nanoprocess below the depth cap (the first
    /// of each such subtree is reported, the rest is not built).
    ///
    /// An explicit stack rather than recursion: the manifest chooses the depth, and
    /// a deep one must be an error, not a stack overflow.
    fn walk<'a>(
        &mut self,
        root: &'a str,
        declared: &'a BTreeMap<String, (Span, raw::RawNanoprocess)>,
        parent_of: &HashMap<String, (String, Span)>,
        dir: &Path,
    ) -> (Vec<Node>, HashMap<String, usize>, HashSet<&'a str>) {
        /// A nanoprocess on the path from the root being walked, and how many of
        /// its deps have been looked at.
        struct Frame<'a> {
            name: &'a str,
            index: usize,
            deps: Vec<(&'a Spanned<String>, &'a Spanned<String>)>,
            next: usize,
        }
        let accepted_child = |parent: &str, child: &str| {
            parent_of.get(child).map(|(p, _)| p.as_str()) == Some(parent)
        };
        let mut nodes: Vec<Node> = Vec::new();
        let mut visited: HashMap<String, usize> = HashMap::new();
        let mut too_deep: HashSet<&'a str> = HashSet::new();
        let root_decl = &declared[root].1;
        visited.insert(root.to_string(), 0);
        nodes.push(self.node(root, root.to_string(), None, root_decl, dir));
        let mut stack = vec![Frame {
            name: root,
            index: 0,
            deps: deps_in_order(root_decl),
            next: 0,
        }];
        while let Some(frame) = stack.last_mut() {
            let Some(&(iface, child)) = frame.deps.get(frame.next) else {
                stack.pop();
                continue;
            };
            frame.next += 1;
            let (parent, parent_index) = (frame.name, frame.index);
            let child_name = child.get_ref().as_str();
            if !accepted_child(parent, child_name) {
                continue; // undeclared, the root, or another's child: reported already
            }
            // One child may provide several of this node's imports.
            let child_index = if let Some(&i) = visited.get(child_name) {
                i
            } else if too_deep.contains(child_name) {
                continue;
            } else if stack.len() >= self.max_depth {
                self.error(
                    Some(declared[child_name].0.clone()),
                    format!(
                        "nanoprocess `{child_name}` (a dependency of `{parent}`) would be level {} of the tree; a tree has at most {} levels, the root being the first",
                        stack.len() + 1,
                        self.max_depth
                    ),
                )
                .help = Some("give the deepest dependencies to a nanoprocess higher up the tree, or allow deeper trees (--max-depth, Runtime::with_max_depth)".into());
                // Its whole subtree goes unbuilt, and unreported: one error says it.
                let mut below = vec![child_name];
                while let Some(n) = below.pop() {
                    if too_deep.insert(n) {
                        below.extend(
                            declared[n]
                                .1
                                .deps
                                .values()
                                .map(|c| c.get_ref().as_str())
                                .filter(|c| accepted_child(n, c)),
                        );
                    }
                }
                continue;
            } else {
                let (name, (_, decl)) = declared
                    .get_key_value(child_name)
                    .expect("an accepted child is declared");
                let index = nodes.len();
                let path = format!("{}/{name}", nodes[parent_index].path);
                visited.insert(name.clone(), index);
                nodes.push(self.node(name, path, Some(parent_index), decl, dir));
                stack.push(Frame {
                    name,
                    index,
                    deps: deps_in_order(decl),
                    next: 0,
                });
                index
            };
            nodes[parent_index].deps.push(Dep {
                interface: iface.get_ref().clone(),
                child: child_index,
                span: child.span(),
            });
        }
        (nodes, visited, too_deep)
    }

    fn node(
        &mut self,
        name: &str,
        path: String,
        parent: Option<usize>,
        decl: &raw::RawNanoprocess,
        dir: &Path,
    ) -> Node {
        let component = dir.join(decl.component.get_ref());
        match std::fs::metadata(&component) {
            Ok(meta) if meta.is_file() => {}
            // A FIFO or a device would block or never end when read.
            Ok(_) => {
                self.error(
                    Some(decl.component.span()),
                    format!(
                        "{path}: component file {} is not a regular file",
                        component.display()
                    ),
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.error(
                    Some(decl.component.span()),
                    format!(
                        "{path}: component file {} does not exist",
                        component.display()
                    ),
                )
                .help = Some(
                    "paths are relative to the manifest's directory; build the component first"
                        .into(),
                );
            }
            Err(e) => {
                self.error(
                    Some(decl.component.span()),
                    format!("{path}: component file {}: {e}", component.display()),
                );
            }
        }
        let digest = decl.digest.as_ref().and_then(|d| {
            let parsed = d
                .get_ref()
                .strip_prefix("sha256:")
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok());
            if parsed.is_none() {
                self.error(
                    Some(d.span()),
                    format!("{path}: a digest is `sha256:` followed by 64 hex digits"),
                );
            }
            parsed
        });
        let (grants, grant_spans) = match &decl.grants {
            Some(g) => self.grants(&path, g),
            None => (GrantRequest::default(), GrantSpans::default()),
        };
        let on_failure = match &decl.on_failure {
            None => OnFailure::Trap,
            Some(v) => match v.get_ref().as_str() {
                "trap" => OnFailure::Trap,
                "error" => OnFailure::Error,
                other => {
                    self.error(
                        Some(v.span()),
                        format!("{path}: on-failure must be \"trap\" or \"error\", not {other:?}"),
                    );
                    OnFailure::Trap
                }
            },
        };
        let restart = decl.restart.as_ref().and_then(|r| {
            let within = &r.get_ref().within;
            match parse_millis(within.get_ref()) {
                Ok(ms) if ms > 0 => Some(Restart {
                    max: r.get_ref().max,
                    within_ms: ms,
                }),
                Ok(_) => {
                    self.error(
                        Some(within.span()),
                        format!("{path}: restart.within must be longer than 0"),
                    );
                    None
                }
                Err(e) => {
                    self.error(Some(within.span()), format!("{path}: restart.within: {e}"));
                    None
                }
            }
        });
        if parent.is_some()
            && on_failure == OnFailure::Trap
            && let Some(r) = &decl.restart
        {
            // With the default policy the parent's own instance fails with its child,
            // so there would be nobody left to call the restarted one.
            self.error(
                Some(r.span()),
                format!("{path}: `restart` needs `on-failure = \"error\"`: with \"trap\" the parent fails together with it"),
            );
        }
        if parent.is_none() {
            for span in [
                decl.on_failure.as_ref().map(Spanned::span),
                decl.restart.as_ref().map(Spanned::span),
            ]
            .into_iter()
            .flatten()
            {
                self.error(
                    Some(span),
                    format!("{path}: `on-failure` and `restart` apply to dependencies; the root has no parent to report to"),
                );
            }
        }
        Node {
            name: name.to_string(),
            path,
            parent,
            component,
            component_span: decl.component.span(),
            digest,
            digest_span: decl.digest.as_ref().map(Spanned::span),
            grants,
            grant_spans,
            on_failure,
            restart,
            deps: Vec::new(),
        }
    }

    fn grants(
        &mut self,
        path: &str,
        g: &Spanned<Box<raw::RawGrants>>,
    ) -> (GrantRequest, GrantSpans) {
        let mut req = GrantRequest::default();
        let mut spans = GrantSpans {
            whole: Some(g.span()),
            ..Default::default()
        };
        let raw = g.get_ref();
        for d in &raw.fs {
            let dr = d.get_ref();
            // Both halves are checked, so that an entry wrong twice is reported twice.
            let rights_text = dr.rights.get_ref().text();
            let rights = FsRights::parse(&rights_text);
            if rights.is_none() {
                self.error(
                    Some(dr.rights.span()),
                    format!(
                        "{path}: unknown rights {:?}; expected {}",
                        rights_text,
                        FsRights::ACCEPTED
                    ),
                );
            }
            let source = match (&dr.host, &dr.from) {
                (Some(h), None) => Some(DirSource::Host(PathBuf::from(h))),
                (None, Some(f)) => Some(DirSource::Parent(f.clone())),
                _ => {
                    self.error(
                        Some(d.span()),
                        format!("{path}: a directory grant has exactly one of `host` (root only) or `from` (a path in the parent's view)"),
                    );
                    None
                }
            };
            let (Some(rights), Some(source)) = (rights, source) else {
                continue;
            };
            req.fs.push(DirRequest {
                source,
                guest: dr.guest.clone(),
                rights,
            });
            spans.fs.push(d.span());
        }
        for e in &raw.env {
            let text = e.get_ref();
            let request = match text.split_once('=') {
                Some((n, v)) => EnvRequest::Literal(n.to_string(), v.to_string()),
                None => EnvRequest::Inherit(text.clone()),
            };
            if request.name().is_empty() {
                self.error(
                    Some(e.span()),
                    format!("{path}: an environment grant is `NAME` or `NAME=value`"),
                );
                continue;
            }
            req.env.push(request);
            spans.env.push(e.span());
        }
        req.args = raw.args.clone();
        let flags = [
            (Flag::Stdin, &raw.stdin),
            (Flag::Stdout, &raw.stdout),
            (Flag::Stderr, &raw.stderr),
            (Flag::WallClock, &raw.wall_clock),
            (Flag::MonotonicClock, &raw.monotonic_clock),
            (Flag::Random, &raw.random),
            (Flag::InsecureRandom, &raw.insecure_random),
            (Flag::Exit, &raw.exit),
        ];
        for (flag, value) in flags {
            let Some(v) = value else { continue };
            spans.flags.insert(flag, v.span());
            match apply_mode(flag, v.get_ref(), &mut req.modes) {
                Ok(held) => req.flags.set(flag, held),
                Err(expected) => {
                    self.error(
                        Some(v.span()),
                        format!("{path}: {}: expected {expected}", flag.key()),
                    );
                }
            }
        }
        for n in &raw.network {
            req.network.push(n.get_ref().clone());
            spans.network.push(n.span());
        }
        for n in &raw.listen {
            req.listen.push(n.get_ref().clone());
            spans.listen.push(n.span());
        }
        let limits = [
            (LimitKind::Memory, &raw.memory),
            (LimitKind::Tables, &raw.tables),
            (LimitKind::Instances, &raw.instances),
            (LimitKind::Handles, &raw.handles),
            (LimitKind::Fuel, &raw.fuel),
            (LimitKind::Timeout, &raw.timeout),
            (LimitKind::Output, &raw.output),
        ];
        for (kind, value) in limits {
            let Some(v) = value else { continue };
            let parsed = match v.get_ref() {
                raw::RawLimit::Number(n) => match kind {
                    // A bare number of milliseconds is too easy to misread.
                    LimitKind::Timeout => Err(format!(
                        "a duration needs a unit: write \"{n}ms\" or \"{n}s\""
                    )),
                    _ => Ok(*n),
                },
                raw::RawLimit::Text(t) => kind.parse(t),
            };
            match parsed {
                Ok(n) => {
                    req.limits.set(kind, Some(n));
                    spans.limits.insert(kind, v.span());
                }
                Err(e) => {
                    self.error(Some(v.span()), format!("{path}: {kind}: {e}"));
                }
            }
        }
        (req, spans)
    }
}

/// A nanoprocess's deps in the order they are written.
fn deps_in_order(decl: &raw::RawNanoprocess) -> Vec<(&Spanned<String>, &Spanned<String>)> {
    let mut deps: Vec<_> = decl.deps.iter().collect();
    deps.sort_by_key(|(iface, _)| iface.span().start);
    deps
}

/// Applies `stdout = "prefix"` and the like; returns whether the flag is held, or
/// what the key accepts.
fn apply_mode(flag: Flag, raw: &raw::RawMode, modes: &mut Modes) -> Result<bool, &'static str> {
    use raw::RawMode::{Held, Table, Word};
    const OUTPUT: &str = "true, false, \"prefix\", \"discard\" or { file = \"PATH\" } (root only)";
    const WALL: &str = "true, false or an instant to freeze it at, like \"2024-01-01T00:00:00Z\"";
    const MONO: &str = "true, false or \"frozen\"";
    const RANDOM: &str = "true, false or { seed = NUMBER } for reproducible bytes";
    match (flag, raw) {
        (_, Held(b)) => Ok(*b),
        (Flag::Stdout | Flag::Stderr, _) => {
            let mode = match raw {
                Word(w) if w == "prefix" => OutputMode::Prefixed,
                Word(w) if w == "discard" => OutputMode::Discard,
                Word(w) if w == "inherit" => OutputMode::Terminal,
                Table(t) if t.seed.is_none() && t.file.is_some() => {
                    OutputMode::File(PathBuf::from(t.file.clone().unwrap()))
                }
                _ => return Err(OUTPUT),
            };
            if flag == Flag::Stdout {
                modes.stdout = mode;
            } else {
                modes.stderr = mode;
            }
            Ok(true)
        }
        (Flag::WallClock, Word(w)) => {
            modes.wall_clock = ClockMode::Frozen(parse_instant(w).ok_or(WALL)?);
            Ok(true)
        }
        (Flag::WallClock, _) => Err(WALL),
        (Flag::MonotonicClock, Word(w)) if w == "frozen" => {
            modes.monotonic_clock = ClockMode::Frozen(0);
            Ok(true)
        }
        (Flag::MonotonicClock, _) => Err(MONO),
        (Flag::Random | Flag::InsecureRandom, Table(t)) if t.file.is_none() => {
            let seed = t.seed.ok_or(RANDOM)?;
            if flag == Flag::Random {
                modes.random = RandomMode::Seeded(seed);
            } else {
                modes.insecure_random = RandomMode::Seeded(seed);
            }
            Ok(true)
        }
        (Flag::Random | Flag::InsecureRandom, _) => Err(RANDOM),
        (Flag::Stdin | Flag::Exit, _) => Err("true or false"),
    }
}

/// `2024-01-01T00:00:00Z` (optionally with `.fff` fractions) as nanoseconds since
/// the UNIX epoch; `None` for anything else, and for instants before 1970 or too
/// late for a `u64` of nanoseconds (past 2554).
pub fn parse_instant(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Four-digit years, as RFC 3339 writes them. The bound also keeps the day
    // arithmetic below from overflowing on a year of twenty digits (which, unchecked,
    // would freeze the clock at a wrapped-around instant in a release build).
    if !(0..=9999).contains(&y) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hh * 3600 + mm * 60 + ss;
    let nanos: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Declared names for a help line: the first few, so that a manifest of thousands
/// of nanoprocesses, each error listing them all, does not cost the square.
fn names<'a>(keys: impl ExactSizeIterator<Item = &'a String>) -> String {
    const SHOWN: usize = 20;
    let total = keys.len();
    let shown: Vec<&str> = keys.take(SHOWN).map(String::as_str).collect();
    match total {
        0 => "(none)".into(),
        n if n > SHOWN => format!("{}, and {} more", shown.join(", "), n - SHOWN),
        _ => shown.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans() -> GrantSpans {
        GrantSpans {
            whole: Some(0..100),
            fs: vec![10..20, 20..30],
            env: vec![30..35, 35..40],
            flags: BTreeMap::from([(Flag::Random, 40..44), (Flag::Stdout, 50..55)]),
            network: vec![60..70, 70..75],
            listen: vec![75..78, 78..80],
            limits: [(LimitKind::Memory, 80..90)].into_iter().collect(),
        }
    }

    #[test]
    fn span_of_points_at_the_item() {
        let s = spans();
        assert_eq!(s.span_of(&GrantItem::Fs(0)), Some(10..20));
        assert_eq!(s.span_of(&GrantItem::Fs(1)), Some(20..30));
        assert_eq!(s.span_of(&GrantItem::Env(0)), Some(30..35));
        assert_eq!(s.span_of(&GrantItem::Env(1)), Some(35..40));
        assert_eq!(s.span_of(&GrantItem::Flag(Flag::Random)), Some(40..44));
        assert_eq!(s.span_of(&GrantItem::Flag(Flag::Stdout)), Some(50..55));
        assert_eq!(s.span_of(&GrantItem::Network(0)), Some(60..70));
        assert_eq!(s.span_of(&GrantItem::Network(1)), Some(70..75));
        assert_eq!(
            s.span_of(&GrantItem::Limit(LimitKind::Memory)),
            Some(80..90)
        );
    }

    #[test]
    fn span_of_falls_back_to_the_whole_grants() {
        let s = spans();
        assert_eq!(s.span_of(&GrantItem::Fs(2)), Some(0..100));
        assert_eq!(s.span_of(&GrantItem::Env(2)), Some(0..100));
        assert_eq!(s.span_of(&GrantItem::Flag(Flag::Stdin)), Some(0..100));
        assert_eq!(s.span_of(&GrantItem::Network(2)), Some(0..100));
        let no_memory = GrantSpans {
            limits: BTreeMap::new(),
            ..spans()
        };
        assert_eq!(
            no_memory.span_of(&GrantItem::Limit(LimitKind::Memory)),
            Some(0..100)
        );
        assert_eq!(GrantSpans::default().span_of(&GrantItem::Fs(0)), None);
    }
}
