//! Stage 5: fused edges. A dependency marked `isolation = "fused"` is composed
//! into its parent's component ([`super::fuse`]) and runs in its parent's store:
//! still its own component instance and linear memory, and still holding only its
//! own capabilities, through named imports bound to its own persona
//! (`state::Persona`), but in its parent's fault domain and under its parent's
//! limits (the manifest refuses a fused nanoprocess's own limits, `restart` and
//! `on-failure = "error"`).
//!
//! It runs after wiring, which has already checked every edge, fused or not, as
//! an isolated one (each import served by an export of the same type): a fused
//! edge is refused for what fusing itself cannot do (`fuse` says what), and
//! otherwise the composite replaces the parent's component. Composition goes
//! bottom-up, so a fused nanoprocess's own fused children are in the component
//! composed into its parent, and all of them share the store of the first
//! ancestor that is not fused: the store's *host*.

use super::compile::{Compiled, NamedImports, compile_composite};
use super::fuse::{self, Composite, FusedChild};
use super::wire::Wiring;
use nanoproc_manifest::{Isolation, Manifest, ManifestError};
use std::sync::Arc;
use wasmtime::Engine;

/// Where a nanoprocess runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In a store of its own.
    OwnStore,
    /// Fused: in the store of node `host` (the nearest ancestor that is not
    /// fused), as one of its personas.
    FusedInto { host: usize },
}

/// What stage 5 decided for one node.
pub(super) struct Fused {
    pub placement: Placement,
    /// For a store's host: the nanoprocesses fused into its store, in the order of
    /// its personas (a named import's `NamedId` is a position here).
    pub personas: Vec<usize>,
    /// Its children that are fused into it (directly).
    pub fused_children: Vec<usize>,
    /// For an isolated nanoprocess: the node whose store calls into it (its
    /// parent, or, if its parent is fused, its parent's store's host).
    pub store_parent: Option<usize>,
}

/// Composes every fused edge and relinks each store's host; reports what cannot
/// be fused in `errors`. `None` if it reported anything.
#[allow(clippy::too_many_arguments)]
pub(super) fn fuse_all(
    manifest: &Manifest,
    engine: &Engine,
    cache: &crate::cache::CompileCache,
    host: &crate::families::host::HostFamilies,
    compiled: &[Option<Arc<Compiled>>],
    sources: &[Option<Arc<[u8]>>],
    wiring: &mut Wiring,
    errors: &mut Vec<ManifestError>,
) -> Option<Vec<Fused>> {
    let nodes = &manifest.nodes;
    let is_fused = |ix: usize| nodes[ix].isolation == Isolation::Fused;
    let fused_children: Vec<Vec<usize>> = (0..nodes.len())
        .map(|ix| {
            (0..nodes.len())
                .filter(|&c| nodes[c].parent == Some(ix) && is_fused(c))
                .collect()
        })
        .collect();
    let host_of = |mut ix: usize| {
        while is_fused(ix) {
            // The root is never fused (the manifest refuses it), so this ends.
            ix = nodes[ix].parent.unwrap_or(0);
        }
        ix
    };
    let mut decided: Vec<Fused> = (0..nodes.len())
        .map(|ix| Fused {
            placement: if is_fused(ix) {
                Placement::FusedInto { host: host_of(ix) }
            } else {
                Placement::OwnStore
            },
            personas: Vec::new(),
            fused_children: fused_children[ix].clone(),
            store_parent: nodes[ix].parent.map(host_of),
        })
        .collect();
    if !(0..nodes.len()).any(is_fused) {
        return Some(decided);
    }

    let reported_before = errors.len();
    // An edge between components that use async features is refused first.
    for c in (0..nodes.len()).filter(|&c| is_fused(c)) {
        if let Some(refusal) = fuses_async(manifest, compiled, c) {
            errors.push(refusal);
        }
    }
    // Every edge that passes WASI handles is refused first, wherever it is.
    // (Also an isolated child's edge from a fused parent: its trampolines are the
    // store host's, which holds the store's own descriptors, not its persona's.)
    let from_fused = |c: usize| nodes[c].parent.is_some_and(is_fused);
    for c in (0..nodes.len()).filter(|&c| is_fused(c) || from_fused(c)) {
        let parent = nodes[c].parent.unwrap_or(0);
        if let Some(parent_comp) = &compiled[parent]
            && let Some(refusal) = passes_wasi_handles(manifest, parent_comp, parent, c, wiring)
        {
            errors.push(refusal);
        }
    }
    if errors.len() != reported_before {
        return None;
    }
    // Each store's host gets one composite: itself and its whole fused subtree,
    // every nanoprocess of it one instance of the composite, at any depth.
    let mut composites: Vec<Option<Composite>> = (0..nodes.len()).map(|_| None).collect();
    for ix in (0..nodes.len()).filter(|&ix| !is_fused(ix) && !fused_children[ix].is_empty()) {
        let Some(parent_bytes) = &sources[ix] else {
            continue;
        };
        let Some(children) = fused_children[ix]
            .iter()
            .map(|&c| {
                spec(
                    manifest,
                    c,
                    compiled,
                    sources,
                    wiring,
                    &fused_children,
                    (engine, host),
                )
            })
            .collect::<Option<Vec<_>>>()
        else {
            // A file was not read or compiled: already reported.
            continue;
        };
        match fuse::fuse(parent_bytes, &nodes[ix].path, &children) {
            Ok(composite) => composites[ix] = Some(composite),
            Err(e) => {
                // Said at the first fused child's `isolation`: the line to change.
                let first = &nodes[fused_children[ix][0]];
                errors.push(
                    manifest
                        .error_at(
                            first
                                .isolation_span
                                .as_ref()
                                .or(Some(&first.component_span)),
                            e.to_string(),
                        )
                        .help("remove `isolation = \"fused\"` to run it in a store of its own"),
                );
            }
        }
    }
    if errors.len() != reported_before {
        return None;
    }

    // Each store's host: its personas, its composite compiled and linked with
    // their named imports, and its own dependency slots renumbered.
    for ix in 0..nodes.len() {
        if is_fused(ix) {
            continue;
        }
        let Some(composite) = &composites[ix] else {
            continue;
        };
        let mut personas = Vec::new();
        let mut stack: Vec<usize> = fused_children[ix].iter().rev().copied().collect();
        while let Some(p) = stack.pop() {
            personas.push(p);
            stack.extend(fused_children[p].iter().rev().copied());
        }
        let named = NamedImports {
            by_name: composite
                .named
                .iter()
                .filter_map(|n| {
                    let at = personas.iter().position(|&p| p == n.persona)?;
                    Some((n.name.clone(), at))
                })
                .collect(),
            originals: composite
                .named
                .iter()
                .map(|n| (n.name.clone(), n.import.clone()))
                .collect(),
            renamed: composite
                .deps
                .iter()
                .map(|d| (d.name.clone(), d.import.clone()))
                .collect(),
        };
        let node = &nodes[ix];
        let refuse = |why: String| {
            manifest.error_at(
                Some(&node.component_span),
                format!(
                    "{}: its fused dependencies cannot be composed into it: {why}",
                    node.path
                ),
            )
        };
        let relinked = match compile_composite(engine, cache, host, &composite.bytes, &named) {
            Ok(c) => c,
            Err(e) => {
                errors.push(refuse(format!("{e:#}")));
                continue;
            }
        };
        if let Some(problem) = relinked.import_problems.first() {
            errors.push(refuse(problem.clone()));
            continue;
        }
        let Some(pre) = relinked.linked.clone() else {
            errors.push(refuse("it could not be linked".into()));
            continue;
        };
        // The composite imports what the parent imported from its isolated
        // dependencies, under the same names, and what each fused nanoprocess
        // imports from its own isolated dependencies, renamed: each slot is
        // renumbered, and served by the same child as before.
        let mut slot_child: Vec<usize> = Vec::new();
        // (the slot's owner, its slot there) -> its slot in the composite
        let mut renumber: std::collections::HashMap<(usize, usize), usize> = Default::default();
        for (k, import) in relinked.dep_imports.iter().enumerate() {
            let (owner, name) = match composite.deps.iter().find(|d| d.name == import.name) {
                Some(renamed) => (renamed.persona, renamed.import.as_str()),
                None => (ix, import.name.as_str()),
            };
            let found = compiled[owner]
                .as_ref()
                .and_then(|comp| comp.dep_imports.iter().position(|d| d.name == name));
            let Some(j) = found else {
                errors.push(refuse(format!(
                    "the composite imports {}, which {} does not",
                    import.name, nodes[owner].path
                )));
                continue;
            };
            let owner_wired = &wiring.nodes[owner];
            renumber.insert((owner, j), k);
            slot_child.push(owner_wired.children[owner_wired.routes[j]]);
        }
        let (children, routes) = super::wire::children_and_routes(&slot_child);
        for &c in &children {
            let owner = nodes[c].parent.unwrap_or(0);
            for serve in &mut wiring.nodes[c].serves {
                if let Some(&k) = renumber.get(&(owner, serve.slot)) {
                    serve.slot = k;
                }
            }
        }
        let wired = &mut wiring.nodes[ix];
        wired.pre = pre;
        wired.children = children;
        wired.routes = routes;
        decided[ix].personas = personas;
    }
    (errors.len() == reported_before).then_some(decided)
}

/// What `fuse` needs of the fused nanoprocess `c` and its own fused subtree;
/// `None` where a file was not read or compiled (reported by then).
fn spec<'a>(
    manifest: &'a Manifest,
    c: usize,
    compiled: &[Option<Arc<Compiled>>],
    sources: &'a [Option<Arc<[u8]>>],
    wiring: &Wiring,
    fused_children: &[Vec<usize>],
    (engine, host): (&Engine, &crate::families::host::HostFamilies),
) -> Option<FusedChild<'a>> {
    let parent = manifest.nodes[c].parent?;
    let parent_comp = compiled[parent].as_ref()?;
    let serves = wiring.nodes[c]
        .serves
        .iter()
        .map(|s| {
            (
                parent_comp.dep_imports[s.slot].name.clone(),
                s.export.clone(),
            )
        })
        .collect();
    let children = fused_children[c]
        .iter()
        .map(|&g| {
            spec(
                manifest,
                g,
                compiled,
                sources,
                wiring,
                fused_children,
                (engine, host),
            )
        })
        .collect::<Option<Vec<_>>>()?;
    // Its imports its isolated children serve: renamed in the composite, served
    // by trampolines of the store's host into their stores.
    let own = compiled[c].as_ref()?;
    let isolated_deps = wiring.nodes[c]
        .children
        .iter()
        .filter(|&&g| manifest.nodes[g].isolation != Isolation::Fused)
        .flat_map(|&g| wiring.nodes[g].serves.iter())
        .map(|s| own.dep_imports[s.slot].name.clone())
        .collect();
    // Its imports of the host's own families: bound to its own holding.
    let host_imports = own
        .component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name)
        .filter(|name| host.serves(name))
        .map(str::to_string)
        .collect();
    Some(FusedChild {
        host_imports,
        bytes: sources[c].as_deref()?,
        persona: c,
        path: &manifest.nodes[c].path,
        serves,
        named: &[],
        children,
        isolated_deps,
    })
}

/// The refusal of the fused edge above `child_ix` if either of its components
/// uses the component model's async features (a WASI 0.3 component, or one with
/// `async` functions, streams or futures). nanoproc composes synchronous
/// components only: a composite of async ones would need concurrency-aware
/// composition (every task, stream and future kept by the instance it belongs
/// to, a composite compiled for an engine with concurrency support, and each
/// fused nanoprocess's WASI 0.3 imports bound to its own persona), which is not
/// built. Their edge can be isolated instead.
fn fuses_async(
    manifest: &Manifest,
    compiled: &[Option<Arc<Compiled>>],
    child_ix: usize,
) -> Option<ManifestError> {
    let child = &manifest.nodes[child_ix];
    let parent_ix = child.parent?;
    let parent = &manifest.nodes[parent_ix];
    let is_async = |ix: usize| compiled[ix].as_ref().is_some_and(|c| c.is_async);
    let who = match (is_async(parent_ix), is_async(child_ix)) {
        (false, false) => return None,
        (true, true) => "both components use".to_string(),
        (true, false) => format!("`{}`'s component uses", parent.path),
        (false, true) => "its component uses".to_string(),
    };
    Some(
        manifest
            .error_at(
                child.isolation_span.as_ref().or(Some(&child.component_span)),
                format!(
                    "{}: cannot be fused into `{}`: {who} the component model's async features (WASI 0.3, `async` functions, streams or futures), and nanoproc fuses synchronous components only: a composite of async components would need concurrency-aware composition, which is not built (a known limit)",
                    child.path, parent.path
                ),
            )
            .help("remove `isolation = \"fused\"`: an isolated edge carries calls between async components through ordinary (not `async`) functions"),
    )
}

/// The refusal of a fused edge whose interface passes a WASI handle (a
/// descriptor, a stream, a socket) in either direction. Across an isolated edge
/// nanoproc moves each handle itself: it lends, withdraws and records. A call
/// across a fused edge is a call inside one component, which no host sees: a
/// handle passed there could outlive a loan and would never be recorded.
/// Resources the child's interface defines cross natively, by the component
/// model's own rules.
fn passes_wasi_handles(
    manifest: &Manifest,
    parent: &Compiled,
    parent_ix: usize,
    child_ix: usize,
    wiring: &Wiring,
) -> Option<ManifestError> {
    let child = &manifest.nodes[child_ix];
    for serve in &wiring.nodes[child_ix].serves {
        let import = &parent.dep_imports[serve.slot];
        let Ok(funcs) = &import.funcs else { continue };
        let iface = crate::interfaces::split_version(&import.name).0;
        for f in funcs {
            let walk = |t: wasmtime::component::types::Type| {
                crate::handles::Walk::of(&t, &parent.names, iface, &[]).wasi_handle()
            };
            let found =
                f.ty.params()
                    .find_map(|(_, t)| walk(t))
                    .or_else(|| f.ty.results().find_map(walk));
            if let Some(handle) = found {
                return Some(
                    manifest
                        .error_at(
                            child.isolation_span.as_ref().or(Some(&child.component_span)),
                            format!(
                                "{}: cannot be fused into `{}`: {}#{} passes a WASI handle ({handle}), and a call across a fused edge never passes through nanoproc, which could then neither lend nor withdraw the handle nor record it",
                                child.path, manifest.nodes[parent_ix].path, import.name, f.name
                            ),
                        )
                        .help("remove `isolation = \"fused\"`: across an isolated edge handles are lent, withdrawn and recorded"),
                );
            }
        }
    }
    None
}
