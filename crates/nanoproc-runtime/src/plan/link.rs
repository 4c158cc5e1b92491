//! Linking, once per component file: one `Linker` and `InstancePre` with every
//! capability family's interfaces and a trampoline for every function of every
//! dependency import, shared by every nanoprocess the file backs. A nanoprocess's
//! calls into its children go through these trampolines; which child serves which
//! slot is decided per nanoprocess, at instantiation, from the plan.

use super::compile::Compiled;
use crate::interfaces;
use crate::state::NanoState;
use crate::trampoline::{Route, forward};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{InstancePre, Linker};

/// The linker of one component: every capability family's interfaces, each
/// through its guard, and a trampoline for every function of every dependency
/// import.
pub(super) fn link(
    engine: &Engine,
    comp: &Compiled,
    host: &crate::families::host::HostFamilies,
    named: &super::compile::NamedImports,
) -> wasmtime::Result<InstancePre<NanoState>> {
    let mut linker: Linker<NanoState> = Linker::new(engine);
    crate::families::add_to_linker(&mut linker)?;
    if comp.is_async {
        // WASI 0.3, through the same guards (each family's `p3` bindings). Real
        // 0.3 programs import 0.2 interfaces too (Rust's std does), linked above.
        crate::families::add_p3_to_linker(&mut linker)?;
    }
    // The imports of nanoprocesses fused into this component, each bound to its
    // own persona. A named import nanoproc did not make itself is refused: a
    // component cannot claim another nanoprocess's capabilities by naming them.
    // (Only a component with named imports is looked at twice: the rest, nearly
    // every component, link as before.)
    let has_named = comp
        .component
        .component_type()
        .imports(engine)
        .any(|(_, item)| item.implements.is_some());
    if has_named {
        add_named(&mut linker, comp, named)?;
        host.add_named_to_linker(&mut linker, &named.by_name, &named.originals)?;
    }
    let ty = comp.component.component_type();
    let imports: Vec<&str> = ty.imports(engine).map(|(name, _)| name).collect();
    host.add_to_linker(&mut linker, &imports)?;
    for (slot, import) in comp.dep_imports.iter().enumerate() {
        let funcs = import
            .funcs
            .as_ref()
            .map_err(|e| wasmtime::format_err!("{e}"))?;
        let mut instance = linker.instance(&import.name)?;
        // What messages call it: a fused nanoprocess's import of its own
        // dependency is renamed in the composite, and named as it wrote it.
        let shown = named.renamed.get(&import.name).unwrap_or(&import.name);
        // Each resource the interface defines becomes a host type of its own in
        // this linker: the parent holds proxies, the resource stays in the child.
        let mut proxies: Vec<(String, u32)> = Vec::new();
        for resource in &import.resources {
            let ty = crate::handles::new_proxy_type();
            proxies.push((resource.clone(), ty));
            let route = Route {
                slot,
                func: usize::MAX,
                name: format!("{shown}#[resource-drop]{resource}"),
                // A failing destructor under `on-failure = "error"` is not the
                // parent's error: it is recorded, not raised.
                string_error: true,
                handles: None,
            };
            instance.resource(
                resource,
                wasmtime::component::ResourceType::host_dynamic(ty),
                move |cx, rep| crate::handles::drop_proxy(cx, &route, rep),
            )?;
        }
        let iface = interfaces::split_version(&import.name).0;
        for (index, f) in funcs.iter().enumerate() {
            let walk = |t: &wasmtime::component::types::Type| {
                crate::handles::Walk::of(t, &comp.names, iface, &proxies)
            };
            let handles = crate::handles::Handles {
                params: f.ty.params().map(|(_, t)| walk(&t)).collect(),
                results: f.ty.results().map(|t| walk(&t)).collect(),
            };
            let passes_handles = handles
                .params
                .iter()
                .chain(&handles.results)
                .any(crate::handles::Walk::carries_handles);
            let route = Route {
                slot,
                func: index,
                name: format!("{shown}#{}", f.name),
                string_error: interfaces::has_string_error(&f.ty),
                handles: passes_handles.then(|| Arc::new(handles)),
            };
            if !passes_handles
                && crate::fastpath::link_typed(&mut instance, &f.name, &f.ty, &route)?
            {
                continue;
            }
            instance.func_new(&f.name, move |cx, _ty, params, results| {
                forward(cx, &route, params, results)
            })?;
        }
    }
    linker.instantiate_pre(&comp.component)
}

/// Links the named imports of `comp` (see `link`), each to the persona `named`
/// says; any other named import is an error naming it.
fn add_named(
    linker: &mut Linker<NanoState>,
    comp: &Compiled,
    named: &super::compile::NamedImports,
) -> wasmtime::Result<()> {
    crate::families::add_named_to_linker(linker, &comp.component, &mut |name: &str| {
        named
            .by_name
            .get(name)
            .map(|&at| wasmtime_wasi::NamedId(at))
            .ok_or_else(|| {
                wasmtime::format_err!(
                    "it imports `{name}` as a WASI interface under a name of its own, which nanoproc does not bind"
                )
            })
    })
}
