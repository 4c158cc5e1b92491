//! Fused edges: a dependency composed at plan time into its parent's component.
//!
//! The composite runs in one store (a call across the edge costs what a call
//! inside one composed component costs), yet the child keeps its own
//! capabilities: each WASI *constructor* interface it imports (those through which
//! a guest first obtains authority, [`CONSTRUCTORS`]) becomes a separately named
//! import of the composite (`nanoproc-p{persona}-i{n}`, a plain-name label with
//! the component model's `(implements "wasi:…")`), which the runtime binds to the
//! child's own view. The interfaces that only operate on handles already obtained
//! ([`SHARED`]) stay plain imports shared with the parent: each handle carries the
//! authority of the context that created it.
//!
//! Shared imports of one interface by the parent and a child (which import
//! different subsets of its functions, e.g. of `wasi:io/streams`) are merged by
//! wac-graph's type aggregator into one import of the union of the functions;
//! semver-compatible versions of one interface (`@0.2.9` and `@0.2.12`) are merged
//! into one import of the highest version. A named import's `implements` carries
//! the merged version; [`Composite::named`] reports what was encoded.
//!
//! A fused subtree deeper than one edge is composed flat, in one call: each
//! [`FusedChild::children`] is instantiated in the same composite and wired to
//! the child that imports it, so every nanoprocess of the subtree is one instance
//! of one composite at any depth. Nesting instead (a child that is itself a
//! [`Composite`], its named imports passed through by [`FusedChild::named`])
//! works to one level only: wac-graph 0.12 reads its input with wasmparser 0.258,
//! whose validator panics (an assertion later versions dropped) on a component
//! that instantiates a composite whose imports share an instance type, which
//! every composite with named imports does; that reaches us as a [`FuseError`].
//! For the same reason the composite is not validated by wac-graph but here, with
//! the wasmparser wasmtime itself uses.
//!
//! The engine that compiles a composite needs
//! `Config::wasm_component_model_implements(true)`.
//!
//! Every component is untrusted: every failure, including a panic inside
//! wac-graph on a malformed input, is a [`FuseError`] that names the nanoprocess,
//! the import or export, the reason and what to do.

use std::collections::HashMap;
use std::fmt;
use wac_graph::types::{ItemKind, Package, Types, WorldId};
use wac_graph::{
    AliasError, CompositionGraph, EncodeError, EncodeOptions, InstantiationArgumentError, NodeId,
};
use wasmparser::names::{ComponentName, ComponentNameKind};

/// WASI interfaces (name without version) through which a guest first obtains
/// authority: a fused child's imports of these become named imports bound to its
/// own view.
pub(crate) const CONSTRUCTORS: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/preopens",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp-create-socket",
    "wasi:config/store",
];

/// WASI interfaces that only operate on handles already obtained (each handle
/// carries its own authority): shared with the parent, left as plain imports of
/// the composite.
pub(crate) const SHARED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:filesystem/types",
    "wasi:sockets/network",
    "wasi:sockets/tcp",
    "wasi:sockets/udp",
    // Each lookup names the network it is made on, and a network carries its
    // creator's grants: `families::network` decides it as the network's owner.
    "wasi:sockets/ip-name-lookup",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
];

/// One dependency to fuse into its parent.
pub(crate) struct FusedChild<'a> {
    /// The child's component (itself a [`Composite`]'s bytes if it has fused
    /// children of its own).
    pub bytes: &'a [u8],
    /// The number its named imports carry (the plan's node index).
    pub persona: usize,
    /// Its tree path, for messages (e.g. "app/idgen").
    pub path: &'a str,
    /// The (parent's import name, child's export name) pairs this child
    /// satisfies, versions included.
    pub serves: Vec<(String, String)>,
    /// Named imports its bytes already carry (from its own fusing): passed
    /// through unchanged. A composite nested so works to one level only (see the
    /// module documentation); prefer `children`.
    pub named: &'a [NamedImport],
    /// Its own fused children, composed into the same composite: flat, every
    /// nanoprocess of the fused subtree one instance of it, at any depth. Their
    /// `serves` name this child's imports.
    pub children: Vec<FusedChild<'a>>,
    /// Its imports of interfaces a capability family the host defines serves
    /// (`grants.host`): each becomes a named import, like a constructor, bound to
    /// its own holding of the family.
    pub host_imports: Vec<String>,
    /// Its imports served by isolated dependencies of its own: each becomes an
    /// import of the composite under a name of its own ([`dep_import`]), which
    /// the runtime serves with a trampoline into that dependency's store.
    pub isolated_deps: Vec<String>,
}

/// An import of a composite that a fused nanoprocess makes of one of its own
/// isolated dependencies: `name` in the composite, `import` in `persona`'s
/// component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RenamedDep {
    pub name: String,
    pub persona: usize,
    pub import: String,
}

/// A named import of a composite: `name` (a plain-name label) implements
/// `interface` and is bound to the capabilities of the nanoprocess `persona`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NamedImport {
    pub name: String,
    /// The interface it implements, with its version, as encoded (semver-
    /// compatible versions merged to the highest).
    pub interface: String,
    pub persona: usize,
    /// The import as the nanoprocess's own component names it (its version
    /// unmerged): what decides which host family serves it.
    pub import: String,
}

/// A parent with its fused dependencies composed into it.
#[derive(Debug)]
pub(crate) struct Composite {
    pub bytes: Vec<u8>,
    /// Every named import of the result, the passed-through ones included, in
    /// the order of the composite's imports.
    pub named: Vec<NamedImport>,
    /// The fused nanoprocesses' imports of their own isolated dependencies.
    pub deps: Vec<RenamedDep>,
}

/// Why a parent and its fused dependencies could not be composed: a full
/// sentence naming the nanoprocess, the import or export, the reason and what
/// to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FuseError(pub String);

impl fmt::Display for FuseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FuseError {}

/// The name of the `n`th import by the fused nanoprocess `persona` of one of its
/// own isolated dependencies.
pub(crate) fn dep_import(persona: usize, n: usize) -> String {
    format!("nanoproc-p{persona}-d{n}")
}

/// The name of the `n`th named import of the nanoprocess `persona`.
pub(crate) fn named_import(persona: usize, n: usize) -> String {
    format!("nanoproc-p{persona}-i{n}")
}

/// Composes `parent` with `children`: each child instantiated with its
/// constructor imports renamed to its own named imports, its shared imports
/// shared with the parent's and its named imports passed through; the parent
/// instantiated with each `serves` import wired to the child's export and its
/// other imports left as imports of the composite; the parent's exports
/// exported under the same names.
pub(crate) fn fuse(
    parent: &[u8],
    parent_path: &str,
    children: &[FusedChild<'_>],
) -> Result<Composite, FuseError> {
    // wac-graph asserts and indexes where it expects a well-formed graph; a
    // hostile component must not be able to turn that into a crash of the host.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compose(parent, parent_path, children)
    })) {
        Ok(result) => result,
        Err(panic) => {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(FuseError(format!(
                "`{parent_path}` could not be composed with its fused dependencies ({}): the composer (wac-graph) failed on these components ({why}); make those edges isolated",
                paths(children)
            )))
        }
    }
}

/// The children's paths for a message: the first few, and how many more.
fn paths(children: &[FusedChild<'_>]) -> String {
    const SHOWN: usize = 5;
    let mut text = children
        .iter()
        .take(SHOWN)
        .map(|c| format!("`{}`", c.path))
        .collect::<Vec<_>>()
        .join(", ");
    if children.len() > SHOWN {
        text.push_str(&format!(" and {} more", children.len() - SHOWN));
    }
    text
}

/// What a child's import is, for fusing.
enum Role {
    Constructor,
    Shared,
    PassThrough(usize),
}

/// The `implements` interface of an import: for a plain-name label importing an
/// instance whose interface has a name (wac-types records `implements` as the
/// interface's id; a label without it has none).
fn implements<'t>(types: &'t Types, name: &str, kind: ItemKind) -> Option<&'t str> {
    match kind {
        ItemKind::Instance(id) if is_label(name) => types[id].id.as_deref(),
        _ => None,
    }
}

fn is_label(name: &str) -> bool {
    matches!(
        ComponentName::new(name, 0).as_ref().map(|n| n.kind()),
        Ok(ComponentNameKind::Label(_))
    )
}

/// `wasi:io/streams@0.2.12` -> `wasi:io/streams`.
fn unversioned(name: &str) -> &str {
    name.split_once('@').map_or(name, |(n, _)| n)
}

/// The source chain of an error, as one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

fn register(
    graph: &mut CompositionGraph,
    package: &str,
    bytes: &[u8],
    path: &str,
) -> Result<(wac_graph::PackageId, WorldId), FuseError> {
    let pkg = Package::from_bytes(package, None, bytes.to_vec(), graph.types_mut()).map_err(|e| {
        let why = format!("{e:#}");
        // The composer reads with an older wasmparser, whose limits (1000
        // instances, modules and components) are not wasmtime's: a component
        // wasmtime runs may be too large to compose, which is no fault of it.
        if why.contains("exceeds limit") {
            FuseError(format!(
                "`{path}`'s component is too large for the composer of fused edges ({why}), though nanoproc runs it; make the edges into or out of it isolated"
            ))
        } else {
            FuseError(format!(
                "`{path}` cannot be composed: its component could not be read ({why}); fix the component (an isolated edge would refuse it too)"
            ))
        }
    })?;
    let world = pkg.ty();
    let id = graph.register_package(pkg).map_err(|e| {
        FuseError(format!(
            "`{path}` cannot be fused: registering its component with the composer failed ({}); this is a bug in nanoproc, make the edge isolated",
            chain(&e)
        ))
    })?;
    Ok((id, world))
}

/// Records a name the composite will import, refusing a second import of it
/// (compared as the component model compares labels: without case).
fn claim(taken: &mut HashMap<String, String>, name: &str, owner: String) -> Result<(), FuseError> {
    match taken.insert(name.to_ascii_lowercase(), owner.clone()) {
        None => Ok(()),
        Some(previous) => Err(FuseError(format!(
            "the composite of fused dependencies would import `{name}` twice, as {previous} and as {owner}; the names `nanoproc-p<n>-i<n>` are reserved for fused edges: rename that import, or make the edges isolated"
        ))),
    }
}

fn compose(
    parent: &[u8],
    parent_path: &str,
    children: &[FusedChild<'_>],
) -> Result<Composite, FuseError> {
    let mut graph = CompositionGraph::new();
    let (parent_pkg, parent_world) = register(&mut graph, "nanoproc:parent", parent, parent_path)?;

    // Every name the composite imports, and whose import it is (for collisions).
    let mut taken: HashMap<String, String> = HashMap::new();
    let parent_imports: Vec<(String, ItemKind)> = graph.types()[parent_world]
        .imports
        .iter()
        .map(|(n, k)| (n.clone(), *k))
        .collect();
    let served = served(children);
    for (name, kind) in &parent_imports {
        if let Some(interface) = implements(graph.types(), name, *kind) {
            return Err(FuseError(format!(
                "`{parent_path}` imports `{name}` as a named import (implements `{interface}`), which a parent of fused dependencies cannot have: nanoproc names those imports itself; make its edges isolated"
            )));
        }
        if !served.contains(&name.as_str()) {
            claim(&mut taken, name, format!("an import of `{parent_path}`"))?;
        }
    }
    let parent_node = graph.instantiate(parent_pkg);

    let mut composer = Composer {
        graph,
        taken,
        personas: HashMap::new(),
        originals: HashMap::new(),
        deps: Vec::new(),
        packages: 0,
        registered: HashMap::new(),
    };
    composer.wire(parent_node, parent_path, children)?;
    let Composer {
        mut graph,
        personas,
        originals,
        deps,
        ..
    } = composer;

    let exports: Vec<String> = graph.types()[parent_world]
        .exports
        .keys()
        .cloned()
        .collect();
    for name in exports {
        let alias = graph
            .alias_instance_export(parent_node, &name)
            .map_err(|e| {
                FuseError(format!(
                    "`{parent_path}`'s export `{name}` could not be exported from its composite with its fused dependencies ({}); make those edges isolated",
                    chain(&e)
                ))
            })?;
        graph.export(alias, name.clone()).map_err(|e| {
            FuseError(format!(
                "`{parent_path}`'s export `{name}` could not be exported from its composite with its fused dependencies ({}); make those edges isolated",
                chain(&e)
            ))
        })?;
    }

    let bytes = graph
        .encode(EncodeOptions {
            define_components: true,
            validate: false,
            processor: None,
        })
        .map_err(|e| {
            FuseError(match &e {
                EncodeError::ImportTypeMergeConflict { import, source, .. } => format!(
                    "`{parent_path}` and its fused dependencies ({}) import `{import}` with types that do not agree ({source:#}), so they cannot share it; make those edges isolated",
                    paths(children)
                ),
                e => format!(
                    "`{parent_path}` could not be composed with its fused dependencies ({}): {}; make those edges isolated",
                    paths(children),
                    chain(e)
                ),
            })
        })?;

    wasmparser_wasmtime::Validator::new_with_features(wasmparser_wasmtime::WasmFeatures::all())
        .validate_all(&bytes)
        .map_err(|e| {
            FuseError(format!(
                "`{parent_path}` could not be composed with its fused dependencies ({}): the composite is not valid ({e}); make those edges isolated",
                paths(children)
            ))
        })?;
    let named = named_imports(&bytes, &personas, &originals, &deps, parent_path)?;
    Ok(Composite { bytes, named, deps })
}

/// The state of one composition: the graph, every name the composite imports
/// (for collisions) and the named imports with their personas.
struct Composer {
    graph: CompositionGraph,
    taken: HashMap<String, String>,
    personas: HashMap<String, usize>,
    /// For each named import made here: the import it stands for, as written.
    originals: HashMap<String, String>,
    deps: Vec<RenamedDep>,
    packages: usize,
    /// Each component registered once, by its bytes (a file several fused
    /// nanoprocesses name is one package, instantiated once per nanoprocess).
    registered: HashMap<(usize, usize), (wac_graph::PackageId, WorldId)>,
}

impl Composer {
    /// Adds `children` (and, recursively, their own fused children) to the graph
    /// and wires what each serves into `consumer`, the instantiation of the
    /// nanoprocess at `consumer_path`.
    fn wire(
        &mut self,
        consumer: NodeId,
        consumer_path: &str,
        children: &[FusedChild<'_>],
    ) -> Result<(), FuseError> {
        for child in children {
            let node = self.add(child, consumer_path)?;
            self.serve(node, child, consumer, consumer_path)?;
        }
        Ok(())
    }

    /// Instantiates `child`, its constructor imports bound to new named imports,
    /// its shared ones left to be shared, its named ones passed through and the
    /// ones its own fused children serve wired to them.
    fn add(&mut self, child: &FusedChild<'_>, parent_path: &str) -> Result<NodeId, FuseError> {
        let children = &child.children;
        let path = child.path;
        let key = (child.bytes.as_ptr() as usize, child.bytes.len());
        let (pkg, world) = match self.registered.get(&key) {
            Some(known) => *known,
            None => {
                self.packages += 1;
                let package = format!("nanoproc:fused{}", self.packages);
                let known = register(&mut self.graph, &package, child.bytes, path)?;
                self.registered.insert(key, known);
                known
            }
        };
        let node = self.graph.instantiate(pkg);
        let imports: Vec<(String, ItemKind)> = self.graph.types()[world]
            .imports
            .iter()
            .map(|(n, k)| (n.clone(), *k))
            .collect();
        let served = served(children);
        for grandchild in children {
            for (import, _) in &grandchild.serves {
                if !imports.iter().any(|(name, _)| name == import) {
                    return Err(FuseError(format!(
                        "`{}` cannot serve `{import}` to `{path}` on a fused edge: `{path}` does not import `{import}`; check `deps`",
                        grandchild.path
                    )));
                }
            }
        }
        let mut n = 0;
        let mut d = 0;
        for (name, kind) in imports {
            if served.contains(&name.as_str()) {
                continue;
            }
            if child.isolated_deps.contains(&name) {
                let label = dep_import(child.persona, d);
                d += 1;
                claim(
                    &mut self.taken,
                    &label,
                    format!("the import of `{name}` by `{path}`"),
                )?;
                let import = self.graph.import(label.clone(), kind).map_err(|e| {
                    FuseError(format!(
                        "`{path}` cannot be fused into `{parent_path}`: its import of `{name}` from its own dependency could not be renamed `{label}` ({}); make the edge isolated",
                        chain(&e)
                    ))
                })?;
                self.graph
                    .set_instantiation_argument(node, &name, import)
                    .map_err(|e| {
                        FuseError(format!(
                            "`{path}` cannot be fused into `{parent_path}`: its import of `{name}` could not be bound to `{label}` ({}); make the edge isolated",
                            chain(&e)
                        ))
                    })?;
                self.deps.push(RenamedDep {
                    name: label,
                    persona: child.persona,
                    import: name,
                });
                continue;
            }
            match role(self.graph.types(), child, parent_path, &name, kind)? {
                Role::Shared => {}
                Role::PassThrough(persona) => {
                    claim(
                        &mut self.taken,
                        &name,
                        format!("a named import of `{path}`"),
                    )?;
                    self.personas.insert(name, persona);
                }
                Role::Constructor => {
                    let label = named_import(child.persona, n);
                    n += 1;
                    claim(
                        &mut self.taken,
                        &label,
                        format!("the named import of `{name}` by `{path}`"),
                    )?;
                    let import = self.graph.import(label.clone(), kind).map_err(|e| {
                        FuseError(format!(
                            "`{path}` cannot be fused into `{parent_path}`: its import of `{name}` could not be renamed `{label}` ({}); make the edge isolated",
                            chain(&e)
                        ))
                    })?;
                    self.graph
                        .set_instantiation_argument(node, &name, import)
                        .map_err(|e| {
                            FuseError(format!(
                                "`{path}` cannot be fused into `{parent_path}`: its import of `{name}` could not be bound to the named import `{label}` ({}); make the edge isolated",
                                chain(&e)
                            ))
                        })?;
                    self.originals.insert(label.clone(), name.clone());
                    self.personas.insert(label, child.persona);
                }
            }
        }
        self.wire(node, path, children)?;
        Ok(node)
    }

    /// Wires each export `child` serves into the instantiation `consumer`.
    fn serve(
        &mut self,
        node: NodeId,
        child: &FusedChild<'_>,
        consumer: NodeId,
        consumer_path: &str,
    ) -> Result<(), FuseError> {
        let path = child.path;
        if child.serves.is_empty() {
            return Err(FuseError(format!(
                "`{path}` is fused into `{consumer_path}` but serves none of its imports; give the edge an interface (`deps`) or remove the dependency"
            )));
        }
        for (import, export) in &child.serves {
            let alias = self.graph.alias_instance_export(node, export).map_err(|e| {
                let why = match e {
                    AliasError::InstanceMissingExport { .. } => "it does not export it".to_string(),
                    e => chain(&e),
                };
                FuseError(format!(
                    "`{path}` cannot serve `{import}` to `{consumer_path}` on a fused edge: {why} (export `{export}`); check the dependency's component and `deps`"
                ))
            })?;
            self.graph
                .set_instantiation_argument(consumer, import, alias)
                .map_err(|e| {
                    FuseError(match e {
                        InstantiationArgumentError::InvalidArgumentName { .. } => format!(
                            "`{path}` cannot serve `{import}` to `{consumer_path}` on a fused edge: `{consumer_path}` does not import `{import}`; check `deps`"
                        ),
                        InstantiationArgumentError::ArgumentAlreadyPassed { .. } => format!(
                            "`{path}` cannot serve `{import}` to `{consumer_path}` on a fused edge: another fused dependency already serves it; one import has one provider"
                        ),
                        InstantiationArgumentError::ArgumentTypeMismatch { source, .. } => format!(
                            "`{path}`'s export `{export}` does not match `{consumer_path}`'s import `{import}` ({source:#}); the two components were built from different versions of that interface: rebuild one of them"
                        ),
                        e => format!(
                            "`{path}` cannot serve `{import}` to `{consumer_path}` on a fused edge ({}); make the edge isolated",
                            chain(&e)
                        ),
                    })
                })?;
        }
        Ok(())
    }
}

/// The imports `children` serve.
fn served<'c>(children: &'c [FusedChild<'_>]) -> Vec<&'c str> {
    children
        .iter()
        .flat_map(|c| c.serves.iter().map(|(import, _)| import.as_str()))
        .collect()
}

/// What a child's import becomes, or why it cannot be fused.
fn role(
    types: &Types,
    child: &FusedChild<'_>,
    parent_path: &str,
    name: &str,
    kind: ItemKind,
) -> Result<Role, FuseError> {
    let path = child.path;
    let refuse = |why: String| {
        Err(FuseError(format!(
            "`{path}` cannot be fused into `{parent_path}`: it imports `{name}`, {why}; make the edge to `{path}` isolated"
        )))
    };
    if let Some(passed) = child.named.iter().find(|n| n.name == name) {
        return match implements(types, name, kind) {
            Some(interface) if interface == passed.interface => {
                Ok(Role::PassThrough(passed.persona))
            }
            other => refuse(format!(
                "which should be a named import implementing `{}` (from fusing its own dependencies) but {}",
                passed.interface,
                other.map_or("is not a named import".to_string(), |i| format!(
                    "implements `{i}`"
                ))
            )),
        };
    }
    if let Some(interface) = implements(types, name, kind) {
        return refuse(format!(
            "a named import (implements `{interface}`) that nanoproc did not give it, which a fused dependency cannot have"
        ));
    }
    let base = unversioned(name);
    let instance = matches!(kind, ItemKind::Instance(_));
    // The host's own families are bound per nanoprocess, as WASI's constructors.
    let hosts = child.host_imports.iter().any(|h| h == name);
    if instance && (hosts || CONSTRUCTORS.contains(&base)) {
        Ok(Role::Constructor)
    } else if instance && SHARED.contains(&base) {
        Ok(Role::Shared)
    } else if base.starts_with("wasi:") {
        refuse("a WASI interface a fused dependency cannot import yet".to_string())
    } else if is_label(name) {
        refuse("a plain-name import that nanoproc did not give it, which a fused dependency cannot have".to_string())
    } else {
        refuse("which is not WASI, and neither a dependency of its own nor a capability family the host defines serves it".to_string())
    }
}

/// The named imports of the encoded composite, read back from its import section
/// (the versions are the merged ones wac-graph chose).
fn named_imports(
    bytes: &[u8],
    personas: &HashMap<String, usize>,
    originals: &HashMap<String, String>,
    deps: &[RenamedDep],
    parent_path: &str,
) -> Result<Vec<NamedImport>, FuseError> {
    use wasmparser::{Parser, Payload};
    let broken = |why: String| {
        FuseError(format!(
            "`{parent_path}`'s composite with its fused dependencies came out wrong ({why}); this is a bug in nanoproc, make those edges isolated"
        ))
    };
    let mut named = Vec::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| broken(e.to_string()))?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 0 => {
                for import in section {
                    let import = import.map_err(|e| broken(e.to_string()))?;
                    let Some(interface) = import.name.implements else {
                        continue;
                    };
                    let name = import.name.name;
                    if deps.iter().any(|d| d.name == name) {
                        continue;
                    }
                    let persona = *personas.get(name).ok_or_else(|| {
                        broken(format!("it imports `{name}`, which nanoproc did not name"))
                    })?;
                    named.push(NamedImport {
                        name: name.to_string(),
                        interface: interface.to_string(),
                        persona,
                        // A passed-through import keeps what it implements.
                        import: originals
                            .get(name)
                            .cloned()
                            .unwrap_or_else(|| interface.to_string()),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(missing) = personas
        .keys()
        .find(|n| !named.iter().any(|m| &m.name == *n))
    {
        return Err(broken(format!("the named import `{missing}` is missing")));
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};
    use wasmtime::component::Component;
    use wasmtime::component::types::ComponentItem;
    use wasmtime::{Config, Engine};

    /// The runtime's engine settings that matter for validation, plus the
    /// component model's `implements`, which named imports need.
    fn engine() -> Engine {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.concurrency_support(false);
        config.wasm_component_model_implements(true);
        Engine::new(&config).unwrap()
    }

    fn guest(name: &str) -> Vec<u8> {
        std::fs::read(xtask::guest(name)).unwrap()
    }

    /// What a component imports, as wasmtime reads it: name -> (implements, the
    /// export names of the imported instance).
    type Imports = BTreeMap<String, Import>;
    type Import = (Option<String>, BTreeSet<String>);

    fn imports(engine: &Engine, bytes: &[u8]) -> Imports {
        imports_in_order(engine, bytes).into_iter().collect()
    }

    /// The same, in the component's order.
    fn imports_in_order(engine: &Engine, bytes: &[u8]) -> Vec<(String, Import)> {
        let component = Component::new(engine, bytes).unwrap();
        let ty = component.component_type();
        ty.imports(engine)
            .map(|(name, ext)| {
                let exports = match &ext.ty {
                    ComponentItem::ComponentInstance(i) => {
                        i.exports(engine).map(|(n, _)| n.to_string()).collect()
                    }
                    _ => BTreeSet::new(),
                };
                (
                    name.to_string(),
                    (ext.implements.map(str::to_string), exports),
                )
            })
            .collect()
    }

    fn exports(engine: &Engine, bytes: &[u8]) -> BTreeSet<String> {
        let component = Component::new(engine, bytes).unwrap();
        let ty = component.component_type();
        ty.exports(engine).map(|(n, _)| n.to_string()).collect()
    }

    fn child<'a>(
        bytes: &'a [u8],
        persona: usize,
        path: &'a str,
        serves: &[&str],
        named: &'a [NamedImport],
    ) -> FusedChild<'a> {
        FusedChild {
            bytes,
            persona,
            path,
            serves: serves
                .iter()
                .map(|s| (s.to_string(), s.to_string()))
                .collect(),
            named,
            children: Vec::new(),
            isolated_deps: Vec::new(),
            host_imports: Vec::new(),
        }
    }

    fn is_constructor(name: &str) -> bool {
        CONSTRUCTORS.contains(&unversioned(name))
    }

    /// Asserts what `composite` imports: the parent's imports but the served ones,
    /// unchanged; each child's constructor imports as its own named imports in
    /// order; the shared ones once, with every function either side imports; and
    /// that `named` says exactly that. Returns the composite's imports.
    fn assert_fused(
        engine: &Engine,
        composite: &Composite,
        parent: &[u8],
        children: &[FusedChild<'_>],
    ) -> Imports {
        let got = imports(engine, &composite.bytes);
        let parent_imports = imports(engine, parent);
        let served: BTreeSet<&str> = children
            .iter()
            .flat_map(|c| c.serves.iter().map(|(i, _)| i.as_str()))
            .collect();
        let mut expected_named = Vec::new();
        for (name, import) in &parent_imports {
            if served.contains(name.as_str()) {
                assert!(!got.contains_key(name), "{name} is served inside");
            } else {
                let (implements, funcs) = &got[name];
                assert_eq!(implements, &import.0, "{name}");
                assert!(funcs.is_superset(&import.1), "{name}");
            }
        }
        for c in children {
            let mut n = 0;
            for (name, (implements, funcs)) in imports_in_order(engine, c.bytes) {
                if let Some(interface) = implements {
                    let passed = c.named.iter().find(|p| p.name == name).unwrap();
                    assert_eq!(got[&name].0.as_deref(), Some(interface.as_str()));
                    expected_named.push(passed.clone());
                } else if is_constructor(&name) {
                    let label = named_import(c.persona, n);
                    n += 1;
                    let (implements, got_funcs) = &got[&label];
                    // The same interface, at the version the composite settled on.
                    let implements = implements.as_deref().unwrap();
                    assert_eq!(unversioned(implements), unversioned(&name), "{label}");
                    assert!(got_funcs.is_superset(&funcs), "{label}");
                    expected_named.push(NamedImport {
                        name: label,
                        interface: implements.to_string(),
                        persona: c.persona,
                        // As the child wrote it, its version unmerged.
                        import: name.clone(),
                    });
                    assert!(!got.contains_key(&name) || parent_imports.contains_key(&name));
                } else {
                    // Shared: one plain import (of a semver-compatible version)
                    // with every function this child imports.
                    let shared: Vec<_> = got
                        .iter()
                        .filter(|(n, (i, _))| i.is_none() && unversioned(n) == unversioned(&name))
                        .collect();
                    assert_eq!(shared.len(), 1, "{name}: {shared:?}");
                    assert!(shared[0].1.1.is_superset(&funcs), "{name}");
                }
            }
        }
        let mut named = composite.named.clone();
        named.sort_by(|a, b| a.name.cmp(&b.name));
        expected_named.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(named, expected_named);
        // Nothing else: every import is the parent's, a named one, or shared.
        for (name, (implements, _)) in &got {
            assert!(
                parent_imports.contains_key(name)
                    || implements.is_some()
                    || SHARED.contains(&unversioned(name)),
                "unexpected import {name}"
            );
        }
        assert_eq!(exports(engine, &composite.bytes), exports(engine, parent));
        got
    }

    #[test]
    fn a_fused_child_imports_its_constructors_by_its_own_names() {
        let engine = engine();
        let app = guest("gallery_app");
        let idgen = guest("gallery_idgen");
        let children = [child(&idgen, 2, "app/idgen", &["example:gallery/ids"], &[])];
        let composite = fuse(&app, "app", &children).unwrap();
        let got = assert_fused(&engine, &composite, &app, &children);

        // The child's random is its own; the parent's other dependencies and its
        // own WASI stay as they were.
        assert!(
            composite
                .named
                .iter()
                .any(|n| n.name.starts_with("nanoproc-p2-")
                    && n.interface == "wasi:random/random@0.2.12")
        );
        assert!(composite.named.iter().all(|n| n.persona == 2));
        for dep in ["thumbnails", "analytics", "metadata"] {
            assert!(got.contains_key(&format!("example:gallery/{dep}")));
        }
        assert!(!got.contains_key("example:gallery/ids"));
        assert!(got.contains_key("wasi:filesystem/preopens@0.2.12"));
        assert!(!got.contains_key("wasi:random/random@0.2.12"));

        // The case the sharing must handle: the two import different subsets of
        // wasi:io/streams; the composite imports the union.
        let streams = "wasi:io/streams@0.2.12";
        let (a, b) = (
            &imports(&engine, &app)[streams].1,
            &imports(&engine, &idgen)[streams].1,
        );
        assert_ne!(a, b, "the test needs different subsets");
        assert_eq!(got[streams].1, a.union(b).cloned().collect());
    }

    #[test]
    fn several_children_and_wasi_versions_share_one_import() {
        // gallery_thumbnailer and gallery_analytics import WASI 0.2.9, the app
        // 0.2.12; the thumbnailer names preopens while filesystem/types stays shared.
        let engine = engine();
        let app = guest("gallery_app");
        let idgen = guest("gallery_idgen");
        let thumbs = guest("gallery_thumbnailer");
        let meta = guest("gallery_meta");
        let children = [
            child(
                &thumbs,
                1,
                "app/thumbnailer",
                &["example:gallery/thumbnails"],
                &[],
            ),
            child(&idgen, 2, "app/idgen", &["example:gallery/ids"], &[]),
            child(&meta, 4, "app/meta", &["example:gallery/metadata"], &[]),
        ];
        let composite = fuse(&app, "app", &children).unwrap();
        let got = assert_fused(&engine, &composite, &app, &children);
        assert!(got.keys().all(|n| !n.ends_with("@0.2.9")), "{got:?}");
        assert!(
            composite
                .named
                .iter()
                .any(|n| n.persona == 1 && unversioned(&n.interface) == "wasi:filesystem/preopens")
        );
        let personas: BTreeSet<usize> = composite.named.iter().map(|n| n.persona).collect();
        assert_eq!(personas, BTreeSet::from([1, 2, 4]));
        // The remaining isolated dependency is still imported.
        assert!(got.contains_key("example:gallery/analytics"));
    }

    #[test]
    fn a_grandchild_keeps_its_names_through_two_levels() {
        let engine = engine();
        for (top, mid, leaf, mid_iface, leaf_iface) in [
            (
                "bench_parent",
                "bench_relay",
                "bench_child",
                "bench:calls/api",
                "bench:calls/api",
            ),
            // Resources the children define cross both levels.
            (
                "res_top",
                "res_mid",
                "res_child",
                "test:res/meters",
                "test:res/counters",
            ),
        ] {
            let (top, mid, leaf) = (guest(top), guest(mid), guest(leaf));
            let inner = [child(&leaf, 3, "top/mid/leaf", &[leaf_iface], &[])];
            let mid_composite = fuse(&mid, "top/mid", &inner).unwrap();
            assert_fused(&engine, &mid_composite, &mid, &inner);
            assert!(mid_composite.named.iter().all(|n| n.persona == 3));

            let outer = [child(
                &mid_composite.bytes,
                2,
                "top/mid",
                &[mid_iface],
                &mid_composite.named,
            )];
            let composite = fuse(&top, "top", &outer).unwrap();
            assert_fused(&engine, &composite, &top, &outer);
            for n in &mid_composite.named {
                assert!(composite.named.contains(n), "{n:?} passed through");
            }
            assert!(composite.named.iter().any(|n| n.persona == 2));
        }
        // Nesting composites stops at two levels: wac-graph reads a composite
        // that instantiates a composite with named imports with a wasmparser
        // (0.258) that panics on it. An error, not a crash.
        let (top, relay, leaf) = (
            guest("bench_parent"),
            guest("bench_relay"),
            guest("bench_child"),
        );
        let api = "bench:calls/api";
        let c1 = fuse(&relay, "t/a/b", &[child(&leaf, 4, "t/a/b/c", &[api], &[])]).unwrap();
        let c2 = fuse(
            &relay,
            "t/a",
            &[child(&c1.bytes, 3, "t/a/b", &[api], &c1.named)],
        )
        .unwrap();
        let err = fuse(&top, "t", &[child(&c2.bytes, 2, "t/a", &[api], &c2.named)]).unwrap_err();
        assert!(err.0.contains("the composer (wac-graph) failed"), "{err}");
    }

    #[test]
    fn a_fused_subtree_of_any_depth_composes_flat() {
        // bench_parent <- relay <- relay <- relay <- child, every edge fused, in
        // one composite.
        let engine = engine();
        let (top, relay, leaf) = (
            guest("bench_parent"),
            guest("bench_relay"),
            guest("bench_child"),
        );
        let api = "bench:calls/api";
        let mut subtree = child(&leaf, 5, "t/a/b/c/d", &[api], &[]);
        for (persona, path) in [(4, "t/a/b/c"), (3, "t/a/b"), (2, "t/a")] {
            subtree = FusedChild {
                children: vec![subtree],
                isolated_deps: Vec::new(),
                host_imports: Vec::new(),
                ..child(&relay, persona, path, &[api], &[])
            };
        }
        let composite = fuse(&top, "t", &[subtree]).unwrap();
        let got = imports(&engine, &composite.bytes);
        // Each of the four has its own stdout (they all import it), and the
        // parent keeps its plain one.
        for persona in 2..=5 {
            let prefix = format!("nanoproc-p{persona}-");
            let stdout: Vec<_> = composite
                .named
                .iter()
                .filter(|n| n.name.starts_with(&prefix) && n.interface == "wasi:cli/stdout@0.2.9")
                .collect();
            assert_eq!(stdout.len(), 1, "{persona}: {:?}", composite.named);
            assert_eq!(
                got[&stdout[0].name].0.as_deref(),
                Some("wasi:cli/stdout@0.2.9")
            );
        }
        assert_eq!(got["wasi:cli/stdout@0.2.9"].0, None);
        assert!(!got.contains_key(api));
        let named: BTreeSet<&str> = got
            .iter()
            .filter(|(_, (i, _))| i.is_some())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(
            named,
            composite.named.iter().map(|n| n.name.as_str()).collect()
        );
        // A relay of the subtree serving what the parent does not import.
        let wrong = [FusedChild {
            children: vec![child(&leaf, 3, "t/a/b", &["bench:calls/nothing"], &[])],
            isolated_deps: Vec::new(),
            host_imports: Vec::new(),
            ..child(&relay, 2, "t/a", &[api], &[])
        }];
        let err = fuse(&top, "t", &wrong).unwrap_err();
        assert!(
            err.0
                .contains("`t/a` does not import `bench:calls/nothing`"),
            "{err}"
        );
    }

    #[test]
    fn every_wasi_import_of_a_real_guest_has_a_binding_and_others_are_refused() {
        // probe_leaf imports every WASI 0.2 interface nanoproc serves, udp,
        // name lookup and wasi:config among them: it fuses.
        let (mid, leaf) = (guest("probe_mid"), guest("probe_leaf"));
        let composite = fuse(
            &mid,
            "driver/mid",
            &[child(
                &leaf,
                2,
                "driver/mid/leaf",
                &["test:probe/downstream"],
                &[],
            )],
        )
        .unwrap();
        let interfaces: BTreeSet<&str> = composite
            .named
            .iter()
            .map(|n| unversioned(&n.interface))
            .collect();
        for constructor in [
            "wasi:sockets/udp-create-socket",
            "wasi:sockets/tcp-create-socket",
            "wasi:config/store",
            "wasi:filesystem/preopens",
        ] {
            assert!(interfaces.contains(constructor), "{interfaces:?}");
        }
        // Name lookups are shared: decided by the owner of the network they use.
        assert!(!interfaces.contains("wasi:sockets/ip-name-lookup"));
        let imports = imports(&engine(), &composite.bytes);
        assert!(
            imports
                .keys()
                .any(|n| unversioned(n) == "wasi:sockets/ip-name-lookup"),
            "{imports:?}"
        );

        // A fused child's import of a non-WASI interface nobody serves in the
        // composite (its own dependency, not declared as such) is refused.
        let relay = guest("probe_mid");
        let err = fuse(
            &guest("probe_driver"),
            "driver",
            &[child(&relay, 1, "driver/mid", &["test:probe/probe"], &[])],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "`driver/mid` cannot be fused into `driver`: it imports `test:probe/downstream"
            ),
            "{err}"
        );
        assert!(err.contains("which is not WASI"), "{err}");
        assert!(
            err.ends_with("make the edge to `driver/mid` isolated"),
            "{err}"
        );
    }

    #[test]
    fn a_fused_childs_own_isolated_dependency_is_imported_under_a_name_of_its_own() {
        let (driver, mid) = (guest("probe_driver"), guest("probe_mid"));
        let fused = FusedChild {
            isolated_deps: vec!["test:probe/downstream".to_string()],
            host_imports: Vec::new(),
            ..child(&mid, 1, "driver/mid", &["test:probe/probe"], &[])
        };
        let composite = fuse(&driver, "driver", &[fused]).unwrap();
        assert_eq!(
            composite.deps,
            vec![RenamedDep {
                name: dep_import(1, 0),
                persona: 1,
                import: "test:probe/downstream".to_string(),
            }]
        );
        let imports = imports(&engine(), &composite.bytes);
        assert!(imports.contains_key(&dep_import(1, 0)), "{imports:?}");
        assert!(
            !imports.contains_key("test:probe/downstream"),
            "{imports:?}"
        );
        assert!(!composite.named.iter().any(|n| n.name == dep_import(1, 0)));
    }

    #[test]
    fn a_parent_with_named_imports_is_refused() {
        let (app, idgen, thumbs) = (
            guest("gallery_app"),
            guest("gallery_idgen"),
            guest("gallery_thumbnailer"),
        );
        let once = fuse(
            &app,
            "app",
            &[child(&idgen, 2, "app/idgen", &["example:gallery/ids"], &[])],
        )
        .unwrap();
        let err = fuse(
            &once.bytes,
            "app",
            &[child(
                &thumbs,
                1,
                "app/thumbnailer",
                &["example:gallery/thumbnails"],
                &[],
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("`app` imports `nanoproc-p2-i0` as a named import (implements `wasi:"),
            "{err}"
        );

        // A child carrying a named import nobody told us about.
        let (parent, relay, leaf) = (
            guest("bench_parent"),
            guest("bench_relay"),
            guest("bench_child"),
        );
        let mid = fuse(
            &relay,
            "p/relay",
            &[child(&leaf, 1, "p/relay/leaf", &["bench:calls/api"], &[])],
        )
        .unwrap();
        let err = fuse(
            &parent,
            "p",
            &[child(&mid.bytes, 2, "p/relay", &["bench:calls/api"], &[])],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("a named import (implements `wasi:"), "{err}");
        assert!(err.contains("that nanoproc did not give it"), "{err}");
    }

    #[test]
    fn a_name_collision_is_refused() {
        // The grandchild and the child given one persona: both would be
        // `nanoproc-p1-i0`.
        let (parent, relay, leaf) = (
            guest("bench_parent"),
            guest("bench_relay"),
            guest("bench_child"),
        );
        let mid = fuse(
            &relay,
            "p/relay",
            &[child(&leaf, 1, "p/relay/leaf", &["bench:calls/api"], &[])],
        )
        .unwrap();
        let err = fuse(
            &parent,
            "p",
            &[child(
                &mid.bytes,
                1,
                "p/relay",
                &["bench:calls/api"],
                &mid.named,
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("would import `nanoproc-p1-i0` twice, as "),
            "{err}"
        );
        assert!(err.contains("as a named import of `p/relay`"), "{err}");
        assert!(err.contains("the named import of `wasi:"), "{err}");

        // A parent that itself imports a name a fused child is given (any case).
        let parent = crate::wit_types::component_of_world(
            "package example:gallery;
             interface ids { new-id: func() -> string; }
             world w { import NANOPROC-P7-I0: func(); import ids; export run: func(); }",
        );
        let idgen = guest("gallery_idgen");
        let err = fuse(
            &parent,
            "app",
            &[child(&idgen, 7, "app/idgen", &["example:gallery/ids"], &[])],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("would import `nanoproc-p7-i0` twice, as an import of `app`"),
            "{err}"
        );
        // Without the collision, the same parent fuses.
        let composite = fuse(
            &parent,
            "app",
            &[child(&idgen, 8, "app/idgen", &["example:gallery/ids"], &[])],
        )
        .unwrap();
        assert_fused(
            &engine(),
            &composite,
            &parent,
            &[child(&idgen, 8, "app/idgen", &["example:gallery/ids"], &[])],
        );
    }

    #[test]
    fn mismatched_or_missing_interfaces_are_refused() {
        let (parent, wrong, right) = (
            guest("types_parent"),
            guest("types_child_wrong"),
            guest("types_child"),
        );
        let err = fuse(
            &parent,
            "p",
            &[child(&wrong, 1, "p/echo", &["test:types/echo"], &[])],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "`p/echo`'s export `test:types/echo` does not match `p`'s import `test:types/echo`"
            ),
            "{err}"
        );

        let err = fuse(
            &parent,
            "p",
            &[child(&right, 1, "p/echo", &["test:types/nothing"], &[])],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("it does not export it"), "{err}");
        let serves = vec![(
            "test:types/nothing".to_string(),
            "test:types/echo".to_string(),
        )];
        let err = fuse(
            &parent,
            "p",
            &[FusedChild {
                serves,
                ..child(&right, 1, "p/echo", &[], &[])
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`p` does not import `test:types/nothing`"),
            "{err}"
        );
        let err = fuse(&parent, "p", &[child(&right, 1, "p/echo", &[], &[])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("serves none of its imports"), "{err}");
        let err = fuse(
            &parent,
            "p",
            &[
                child(&right, 1, "p/a", &["test:types/echo"], &[]),
                child(&right, 2, "p/b", &["test:types/echo"], &[]),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("another fused dependency already serves it"),
            "{err}"
        );
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        let app = guest("gallery_app");
        let idgen = guest("gallery_idgen");
        let serves = ["example:gallery/ids"];
        assert!(fuse(b"\0asm not really", "app", &[]).is_err());
        assert!(fuse(&app[..app.len() / 2], "app", &[]).is_err());
        for cut in [0, 8, 100, idgen.len() / 3, idgen.len() - 1] {
            let err = fuse(
                &app,
                "app",
                &[child(&idgen[..cut], 2, "app/idgen", &serves, &[])],
            )
            .unwrap_err();
            // (8 bytes are a valid empty component, which exports nothing.)
            assert!(err.0.starts_with("`app/idgen` cannot"), "{err}");
        }
        // A core module is not a component.
        let core = b"\0asm\x01\0\0\0";
        let err = fuse(core, "app", &[]).unwrap_err();
        assert!(err.0.contains("could not be read"), "{err}");
    }
}
