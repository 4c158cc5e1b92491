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

pub mod edit;
mod error;
mod raw;

pub use error::{Location, ManifestError, ManifestErrors, Span};

pub use nanoproc_caps::parse_instant;
use nanoproc_caps::{GrantRequest, parse_millis};
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
    /// What it asks for, each grant with where it was written.
    pub grants: GrantRequest,
    /// Where its `grants` table is, for a message about them as a whole.
    pub grants_span: Option<Span>,
    /// How a failure of this nanoprocess reaches its parent's call.
    pub on_failure: OnFailure,
    /// Whether, and how often, a failed instance is replaced by a fresh one.
    pub restart: Option<Restart>,
    /// Whether it runs in a store of its own or fused into its parent's.
    pub isolation: Isolation,
    /// Where `isolation` was written, if it was.
    pub isolation_span: Option<Span>,
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

/// Where a dependency runs relative to its parent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// In a store of its own, every call across the edge through the host: its own
    /// fault domain and limits, restartable, handles lent and withdrawn. The default.
    #[default]
    Isolated,
    /// Composed into its parent's component at plan time: its own component
    /// instance, linear memory and capabilities, but its parent's store, so its
    /// parent's fault domain and limits. A call across the edge costs about a
    /// function call (docs/manifest.md, "Fused dependencies").
    Fused,
}

/// What in a store enforces a limit, for the message refusing it on a fused
/// nanoprocess.
fn limit_counter(kind: nanoproc_caps::LimitKind) -> &'static str {
    use nanoproc_caps::LimitKind;
    match kind {
        LimitKind::Memory | LimitKind::Tables | LimitKind::Instances => "resource limiter",
        LimitKind::Handles => "resource table",
        LimitKind::Fuel => "fuel counter",
        LimitKind::Timeout => "deadline",
        LimitKind::Output => "output budget",
        LimitKind::HttpRequests | LimitKind::HttpBody | LimitKind::HttpTimeout => "HTTP budget",
    }
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

    /// The manifest's text, as it was read and checked; `None` for one made up
    /// from command-line flags.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Whether this is one component with grants given by flags
    /// ([`Manifest::single`]), not a manifest file: how a refusal says to grant
    /// what was refused (a flag, not a manifest key).
    pub fn is_single(&self) -> bool {
        self.source.is_none()
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
                grants_span: None,
                on_failure: OnFailure::Trap,
                restart: None,
                isolation: Isolation::Isolated,
                isolation_span: None,
                deps: Vec::new(),
            }],
        }
    }

    /// Turns a span into a location in this manifest.
    pub fn locate(&self, span: &Span) -> Option<Location> {
        let source = self.source.as_ref()?;
        Some(self.lines.locate_span(&self.path, source, span))
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
        let location = span.map(|s| self.lines.locate_span(&self.path, &self.source, &s));
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

        // A name is one step of a path in the tree (`app/pricing`): a `/` in it
        // would let two nanoprocesses have one path, and every message, the audit
        // and the lock name nanoprocesses by path.
        for (name, (span, _)) in &declared {
            if name.is_empty() || name.contains('/') {
                self.error(
                    Some(span.clone()),
                    format!("the nanoprocess name {name:?} is not a name: it must be non-empty and contain no `/`"),
                )
                .help = Some("name each nanoprocess with one word, such as `pricing` or `image-resize`".into());
            }
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
        let grants = match &decl.grants {
            Some(g) => self.grants(&path, g),
            None => GrantRequest::default(),
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
        let isolation = match &decl.isolation {
            None => Isolation::Isolated,
            Some(v) => match v.get_ref().as_str() {
                "isolated" => Isolation::Isolated,
                "fused" => Isolation::Fused,
                other => {
                    self.error(
                        Some(v.span()),
                        format!(
                            "{path}: isolation must be \"isolated\" or \"fused\", not {other:?}"
                        ),
                    );
                    Isolation::Isolated
                }
            },
        };
        if isolation == Isolation::Fused {
            self.fused_rules(&path, parent.is_none(), decl);
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
            grants_span: decl.grants.as_ref().map(Spanned::span),
            on_failure,
            restart,
            isolation,
            isolation_span: decl.isolation.as_ref().map(Spanned::span),
            deps: Vec::new(),
        }
    }

    /// What a fused nanoprocess gives up, refused where the manifest asks for it
    /// anyway. It runs in its parent's store: a trap in it ends its parent's call
    /// (so there is no error to hand the parent and no instance of its own to
    /// restart), and the store has one memory limiter, one fuel counter and one
    /// deadline, which cannot tell its instances apart (so its use counts against
    /// its parent's limits and it can have none of its own). `output` is the
    /// exception: it bounds each output stream, which belongs to the nanoprocess
    /// that opened it, fused or not.
    fn fused_rules(&mut self, path: &str, is_root: bool, decl: &raw::RawNanoprocess) {
        let isolation_span = decl.isolation.as_ref().map(Spanned::span);
        if is_root {
            self.error(
                isolation_span,
                format!("{path}: `isolation = \"fused\"` applies to dependencies; the root has no parent to be fused into"),
            );
            return;
        }
        if let Some(v) = &decl.on_failure
            && v.get_ref() == "error"
        {
            self.error(
                Some(v.span()),
                format!("{path}: `on-failure = \"error\"` needs an isolated edge: a fused nanoprocess shares its parent's fault domain, so a trap in it ends the parent's call; remove `isolation = \"fused\"` to contain its failures"),
            );
        }
        if let Some(r) = &decl.restart {
            self.error(
                Some(r.span()),
                format!("{path}: `restart` needs an isolated edge: a fused nanoprocess has no instance of its own to replace; remove `isolation = \"fused\"` to restart it"),
            );
        }
        let Some(grants) = &decl.grants else { return };
        for (key, _) in &grants.get_ref().0 {
            let key_name = key.get_ref().as_str();
            if let Some(kind) = nanoproc_caps::LimitKind::ALL
                .into_iter()
                .find(|k| k.key() == key_name && *k != nanoproc_caps::LimitKind::Output)
            {
                self.error(
                    Some(key.span()),
                    format!("{path}: a fused nanoprocess cannot have its own `{}` limit: it runs in its parent's store, whose one {} counts every instance in it alike; its use counts against its parent's limits. Set the limit on the parent, or make the edge isolated (remove `isolation = \"fused\"`)", kind.key(), limit_counter(kind)),
                );
            }
        }
    }

    /// Reads a `grants` table through the capability families: each key goes to
    /// the family that owns it, which reports what it cannot read where it was written.
    fn grants(&mut self, path: &str, g: &Spanned<raw::RawGrants>) -> GrantRequest {
        let mut request = GrantRequest::default();
        for (key, value) in &g.get_ref().0 {
            for e in request
                .parse(key.get_ref(), &raw::grant_value(value))
                .err()
                .into_iter()
                .flatten()
            {
                self.error(
                    Some(e.span.unwrap_or_else(|| key.span())),
                    format!("{path}: {}", e.message),
                );
            }
        }
        request
    }
}

/// A nanoprocess's deps in the order they are written.
fn deps_in_order(decl: &raw::RawNanoprocess) -> Vec<(&Spanned<String>, &Spanned<String>)> {
    let mut deps: Vec<_> = decl.deps.iter().collect();
    deps.sort_by_key(|(iface, _)| iface.span().start);
    deps
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
    use nanoproc_caps::ValueKind;

    /// Every part of a grant value keeps where it was written, however deep: what
    /// a family reports an error at, and what a refused grant points at.
    #[test]
    fn grant_values_carry_the_span_of_every_part() {
        #[derive(serde::Deserialize)]
        struct Doc {
            grants: raw::RawGrants,
        }
        let text = r#"grants = { fs = [{ guest = "/d", rights = ["read", "list"] }], random = { seed = 7 } }"#;
        let doc: Doc = toml::from_str(text).unwrap();
        let at = |span: &Option<Span>| &text[span.clone().unwrap()];
        let (fs_key, fs) = &doc.grants.0[0];
        assert_eq!(&text[fs_key.span()], "fs");
        let fs = raw::grant_value(fs);
        let ValueKind::List(dirs) = &fs.kind else {
            panic!("{fs:?}")
        };
        assert_eq!(
            at(&dirs[0].span),
            r#"{ guest = "/d", rights = ["read", "list"] }"#
        );
        let ValueKind::Table(entries) = &dirs[0].kind else {
            panic!("{dirs:?}")
        };
        assert_eq!(at(&entries[1].0.span), "rights");
        let ValueKind::List(rights) = &entries[1].1.kind else {
            panic!("{entries:?}")
        };
        assert_eq!(at(&rights[1].span), r#""list""#);
        let random = raw::grant_value(&doc.grants.0[1].1);
        assert_eq!(at(&random.span), "{ seed = 7 }");
    }
}
