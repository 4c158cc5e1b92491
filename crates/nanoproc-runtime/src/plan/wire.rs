//! Stage 4: wiring. Every import of every nanoprocess is a WASI interface
//! nanoproc provides or a dependency whose export has the same type, every
//! dependency names an import, and the root is a command.
//!
//! It checks what stage 3 compiled, whatever else failed, and reports every error
//! it finds; its complete result, a [`Wiring`], exists only if it reported
//! nothing and every node's component was compiled and linked.

use super::compile::{Compiled, DepImport};
use crate::interfaces::{self, FuncSig};
use crate::state::NanoState;
use nanoproc_manifest::{Manifest, ManifestError};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::InstancePre;
use wasmtime::component::types::ComponentItem;

/// How a child serves one of its parent's dependency slots.
#[derive(Clone, Debug)]
pub(crate) struct Serve {
    /// The parent's slot (the index of its dependency import).
    pub slot: usize,
    /// The child's export that serves it.
    pub export: String,
    /// The functions the parent's import calls, in the import's order: the
    /// child's functions of the same names.
    pub funcs: Vec<String>,
}

impl super::PlannedNode {
    /// For a child: the interfaces it serves its parent with (its exports wired to
    /// the parent's dependency imports, as `check`'s `serves` lines name them), in
    /// the order of the parent's imports; empty for the root.
    pub fn serves(&self) -> Vec<String> {
        self.serves.iter().map(|s| s.export.clone()).collect()
    }
}

/// One nanoprocess, wired: its component linked, each of its dependency slots
/// served by one of its children, each of its exports that a parent imports
/// found.
pub(super) struct Wired {
    pub pre: InstancePre<NanoState>,
    pub was_core_module: bool,
    pub is_async: bool,
    /// The SHA-256 of the component bytes compiled.
    pub digest: [u8; 32],
    /// Its distinct children, in the order they are instantiated.
    pub children: Vec<usize>,
    /// For each dependency slot of its component: the position in `children` of
    /// the child that serves it.
    pub routes: Vec<usize>,
    /// For a child: the parent's slots it serves.
    pub serves: Vec<Serve>,
}

/// Stage 4, complete.
pub(super) struct Wiring {
    /// By node, in the manifest's order.
    pub nodes: Vec<Wired>,
    /// The root's `wasi:cli/run` export; `None` only for a plugin's root that is
    /// a library.
    pub root_run: Option<String>,
}

/// Wires every node whose component was compiled; reports every error found in
/// `errors`.
pub(super) fn wire(
    manifest: &Manifest,
    engine: &Engine,
    compiled: &[Option<Arc<Compiled>>],
    root: super::RootKind,
    errors: &mut Vec<ManifestError>,
) -> Option<Wiring> {
    let reported_before = errors.len();
    let mut slot_child: Vec<Vec<usize>> = vec![Vec::new(); manifest.nodes.len()];
    let mut serves: Vec<Vec<Serve>> = vec![Vec::new(); manifest.nodes.len()];
    for (ix, node) in manifest.nodes.iter().enumerate() {
        let Some(comp) = &compiled[ix] else { continue };
        for problem in &comp.import_problems {
            errors.push(manifest.error_at(
                Some(&node.component_span),
                format!("{}: {problem}", node.path),
            ));
        }
        if node.parent.is_none()
            && root == super::RootKind::Plugin
            && comp
                .component
                .component_type()
                .exports(engine)
                .next()
                .is_none()
        {
            errors.push(manifest.error_at(
                Some(&node.component_span),
                format!(
                    "{}: a plugin's root must export an interface for its host to call, but {} exports nothing",
                    node.path,
                    node.component.display()
                ),
            ));
        }
        if node.parent.is_none() && root == super::RootKind::Command && comp.run_export.is_none() {
            // An HTTP handler is not run but served: say so, rather than ask for
            // a `fn main` it should not have.
            let ty = comp.component.component_type();
            let handler = ty
                .exports(engine)
                .map(|(name, _)| name.to_string())
                .find(|name| {
                    let (base, _) = interfaces::split_version(name);
                    base == "wasi:http/incoming-handler" || base == "wasi:http/handler"
                });
            let error = match handler {
                Some(export) => manifest
                    .error_at(
                        Some(&node.component_span),
                        format!(
                            "{}: {} is an HTTP handler (it exports {export}), not a command: it is served, not run",
                            node.path,
                            node.component.display()
                        ),
                    )
                    .help("serve it with `nanoproc serve MANIFEST --addr 127.0.0.1:8080`"),
                None => manifest
                    .error_at(
                        Some(&node.component_span),
                        format!(
                            "{}: the root must be a command (export wasi:cli/run), but {} is not",
                            node.path,
                            node.component.display()
                        ),
                    )
                    .help("build the root as a binary (`fn main`) for wasm32-wasip2"),
            };
            errors.push(error);
        }
        let mut used = vec![false; node.deps.len()];
        for (slot, import) in comp.dep_imports.iter().enumerate() {
            let Some(dep_ix) = node
                .deps
                .iter()
                .position(|d| interfaces::names_match(&import.name, &d.interface))
            else {
                errors.push(
                    manifest
                        .error_at(
                            Some(&node.component_span),
                            format!(
                                "{}: imports {}, but no dependency provides it",
                                node.path, import.name
                            ),
                        )
                        .help(format!(
                            "add `deps = {{ \"{}\" = \"<nanoprocess>\" }}` to [nanoprocess.{}]",
                            import.name, node.name
                        )),
                );
                continue;
            };
            used[dep_ix] = true;
            let dep = &node.deps[dep_ix];
            let child = &manifest.nodes[dep.child];
            slot_child[ix].push(dep.child);
            let import_funcs = match &import.funcs {
                Ok(f) => f,
                Err(refused) => {
                    // One error per function refused, each with its own help.
                    for refusal in &refused.0 {
                        let e = manifest.error_at(
                            Some(&dep.span),
                            format!(
                                "{}: cannot import {} from `{}`: {}",
                                node.path, import.name, child.path, refusal.why
                            ),
                        );
                        errors.push(match &refusal.help {
                            Some(help) => e.help(help.clone()),
                            None => e,
                        });
                    }
                    continue;
                }
            };
            let Some(child_comp) = &compiled[dep.child] else {
                continue;
            };
            match check_export(engine, comp, import, import_funcs, child_comp) {
                Ok(export) => serves[dep.child].push(Serve {
                    slot,
                    export,
                    funcs: import_funcs.iter().map(|f| f.name.clone()).collect(),
                }),
                Err(why) => errors.push(manifest.error_at(
                    Some(&dep.span),
                    format!(
                        "{}: its import {} cannot be satisfied by `{}`: {why}",
                        node.path, import.name, child.path
                    ),
                )),
            }
        }
        for (dep, used) in node.deps.iter().zip(used) {
            if !used {
                let imports: Vec<&str> = comp.dep_imports.iter().map(|d| d.name.as_str()).collect();
                // It does import the interface, but as one the runtime serves (a
                // capability family the host defines): never silently handed to
                // the host instead of the dependency, and said as it is.
                let served = !dep.interface.starts_with("wasi:")
                    && comp
                        .component
                        .component_type()
                        .imports(engine)
                        .any(|(name, _)| interfaces::names_match(name, &dep.interface));
                if served {
                    errors.push(
                        manifest
                            .error_at(
                                Some(&dep.span),
                                format!(
                                    "{}: `{}` is given for {}, but that interface is served by a capability family the host application defines",
                                    node.path, manifest.nodes[dep.child].name, dep.interface
                                ),
                            )
                            .help(
                                "remove the dependency, and grant the family under grants.host; or register no family for that interface",
                            ),
                    );
                    continue;
                }
                errors.push(
                    manifest
                        .error_at(
                            Some(&dep.span),
                            format!(
                                "{}: `{}` is given for {}, but {} does not import that interface",
                                node.path,
                                manifest.nodes[dep.child].name,
                                dep.interface,
                                node.component.display()
                            ),
                        )
                        .help(if imports.is_empty() {
                            "it imports no interfaces besides WASI".to_string()
                        } else {
                            format!("its imports besides WASI: {}", imports.join(", "))
                        }),
                );
            }
        }
    }
    if errors.len() != reported_before {
        return None;
    }

    // Nothing was reported: every node's component is compiled (else stage 3
    // reported it), linked (else its import problems were reported above), and
    // each of its slots has a child.
    let nodes = compiled
        .iter()
        .zip(slot_child)
        .zip(serves)
        .map(|((comp, slot_child), serves)| {
            let comp = comp.as_ref()?;
            let (children, routes) = children_and_routes(&slot_child);
            Some(Wired {
                pre: comp.linked.clone()?,
                was_core_module: comp.was_core_module,
                is_async: comp.is_async,
                digest: comp.digest,
                children,
                routes,
                serves,
            })
        })
        .collect::<Option<Vec<Wired>>>()?;
    let root_run = compiled.first()?.as_ref()?.run_export.clone();
    if root == super::RootKind::Command && root_run.is_none() {
        return None;
    }
    Some(Wiring { nodes, root_run })
}

/// From the child serving each dependency slot: the distinct children, in the
/// order they are first needed (the order they are instantiated), and for each
/// slot the position of its child among them.
pub(super) fn children_and_routes(slot_child: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut children: Vec<usize> = Vec::new();
    let routes = slot_child
        .iter()
        .map(|&c| match children.iter().position(|&x| x == c) {
            Some(at) => at,
            None => {
                children.push(c);
                children.len() - 1
            }
        })
        .collect();
    (children, routes)
}

/// Finds the child's export for the parent's `import` and checks it resource by
/// resource and function by function.
fn check_export(
    engine: &Engine,
    parent: &Compiled,
    import: &DepImport,
    wanted: &[FuncSig],
    child: &Compiled,
) -> Result<String, String> {
    let import_name = import.name.as_str();
    let ty = child.component.component_type();
    let (export_name, export) = ty
        .exports(engine)
        .find(|(name, _)| {
            interfaces::names_match(name, import_name) || interfaces::names_match(import_name, name)
        })
        .ok_or_else(|| {
            let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
            format!(
                "it does not export {import_name} (it exports: {})",
                if exports.is_empty() {
                    "nothing".into()
                } else {
                    exports.join(", ")
                }
            )
        })?;
    let ComponentItem::ComponentInstance(inst) = export.ty else {
        return Err(format!("its export {export_name} is not an interface"));
    };
    // Only the functions the parent imports are judged: the others never cross.
    let have = interfaces::instance_funcs_used(engine, export_name, &inst, &child.names, |f| {
        wanted.iter().any(|w| w.name == f)
    })
    .map_err(|refused| refused.to_string())?;
    let mut problems = Vec::new();
    for r in &import.resources {
        if !have.resources.contains(r) {
            problems.push(format!("resource `{r}` is missing"));
        }
    }
    for w in wanted {
        match have.funcs.iter().find(|h| h.name == w.name) {
            None => problems.push(format!(
                "function `{}` is missing (expected {})",
                w.name,
                interfaces::wit_func_in(&w.ty, Some(&parent.names))
            )),
            Some(h) if !interfaces::funcs_equal(&w.ty, &parent.names, &h.ty, &child.names) => {
                problems.push(format!(
                    "function `{}` has the wrong type: the import expects {}, the export is {}",
                    w.name,
                    interfaces::wit_func_in(&w.ty, Some(&parent.names)),
                    interfaces::wit_func_in(&h.ty, Some(&child.names))
                ))
            }
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        Ok(export_name.to_string())
    } else {
        Err(problems.join("; "))
    }
}
