//! What a component imports and exports, and whether a child's export can satisfy a
//! parent's import.
//!
//! Types come from wasmtime's own view of the component (`Component::component_type`),
//! so the check is the same type system the canonical ABI will use; `Type`'s equality
//! is structural across components. Mismatches are shown in WIT syntax.

use crate::wit_types::{self, Kind, Shape, shape};
use wasmtime::Engine;
use wasmtime::component::types::{self, ComponentFunc, ComponentItem, Type};

/// Splits `ns:pkg/iface@1.2.3` into the name and the version.
pub fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

/// Whether an import or export named `actual` is what a manifest's `wanted` names:
/// the same interface, and the same version when `wanted` gives one.
pub fn names_match(actual: &str, wanted: &str) -> bool {
    let (an, av) = split_version(actual);
    let (wn, wv) = split_version(wanted);
    an == wn && (wv.is_none() || wv == av)
}

/// One function of an interface.
#[derive(Clone, Debug)]
pub struct FuncSig {
    pub name: String,
    pub ty: ComponentFunc,
}

/// The functions of an interface instance and the resources it defines.
#[derive(Clone, Debug, Default)]
pub struct InterfaceSig {
    pub funcs: Vec<FuncSig>,
    /// The resources the interface defines itself (not those it `use`s from WASI).
    pub resources: Vec<String>,
}

/// The WASI handles that can be passed to another nanoprocess, and whether they can
/// be lent (`borrow`) as well as given (`own`).
///
/// A descriptor can be lent because wasmtime-wasi's descriptor is a cheap, shared
/// reference to an open file that can be handed to the callee for one call and
/// withdrawn after it. A stream or a socket has one owner at a time: it can only
/// be given.
pub const PASSABLE_WASI: [(&str, bool); 4] = [
    ("wasi:filesystem/types#descriptor", true),
    ("wasi:io/streams#input-stream", false),
    ("wasi:io/streams#output-stream", false),
    ("wasi:sockets/tcp#tcp-socket", false),
];

/// The resource types a component's imports and exports mention, each with the
/// name of the interface that defines it: `wasi:filesystem/types#descriptor`,
/// `test:res/counters#counter` (versions dropped).
///
/// wasmtime's resource types are per component, so a parent's `counter` and the
/// child's `counter` are different types; nanoproc matches them by these names.
#[derive(Clone, Debug, Default)]
pub struct ResourceNames(Vec<(types::ResourceType, String)>);

impl ResourceNames {
    pub fn of(engine: &Engine, component: &types::Component) -> Self {
        let mut names = ResourceNames::default();
        // WASI first: a dependency interface that `use`s a WASI resource mentions the
        // same type, and it must be known by its origin.
        let mut instances: Vec<(String, types::ComponentInstance)> = Vec::new();
        for (name, ext) in component.imports(engine).chain(component.exports(engine)) {
            if let ComponentItem::ComponentInstance(inst) = ext.ty {
                instances.push((name.to_string(), inst));
            }
        }
        instances.sort_by_key(|(name, _)| !name.starts_with("wasi:"));
        for (iface, inst) in &instances {
            for (name, ext) in inst.exports(engine) {
                if let ComponentItem::Resource(rt) = ext.ty
                    && names.name(&rt).is_none()
                {
                    names
                        .0
                        .push((rt, format!("{}#{name}", split_version(iface).0)));
                }
            }
        }
        names
    }

    /// `interface#resource`, versions dropped.
    pub fn name(&self, rt: &types::ResourceType) -> Option<&str> {
        self.0
            .iter()
            .find(|(t, _)| t == rt)
            .map(|(_, n)| n.as_str())
    }
}

/// Why an interface, or some of its functions, cannot cross a nanoprocess
/// boundary: one refusal per function (or item) refused, so that a check names
/// every one of them, not only the first.
#[derive(Clone, Debug)]
pub struct Uncrossable(pub Vec<Refusal>);

/// One function (or item) of an interface that cannot cross a nanoprocess
/// boundary: why, and what to write instead where there is something to write.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub why: String,
    pub help: Option<String>,
}

impl Refusal {
    fn plain(why: String) -> Self {
        Refusal { why, help: None }
    }
}

impl std::fmt::Display for Uncrossable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whys: Vec<&str> = self.0.iter().map(|r| r.why.as_str()).collect();
        f.write_str(&whys.join("; "))
    }
}

/// The functions of an imported or exported interface instance named `iface`, or
/// why it cannot cross a nanoprocess boundary.
///
/// An import names only the functions its component calls (wit-component leaves
/// the others out), so every one of them is judged; for an export, see
/// [`instance_funcs_used`].
pub fn instance_funcs(
    engine: &Engine,
    iface: &str,
    inst: &types::ComponentInstance,
    names: &ResourceNames,
) -> Result<InterfaceSig, Uncrossable> {
    instance_funcs_used(engine, iface, inst, names, |_| true)
}

/// [`instance_funcs`], judging only the functions `used` names: a child's export
/// may hold functions its parent does not import (an `async` one beside the
/// ordinary ones the parent calls), and those never cross.
pub fn instance_funcs_used(
    engine: &Engine,
    iface: &str,
    inst: &types::ComponentInstance,
    names: &ResourceNames,
    used: impl Fn(&str) -> bool,
) -> Result<InterfaceSig, Uncrossable> {
    let own_prefix = format!("{}#", split_version(iface).0);
    let mut sig = InterfaceSig::default();
    let mut refused = Vec::new();
    for (name, ext) in inst.exports(engine) {
        match ext.ty {
            ComponentItem::ComponentFunc(f) => {
                if used(name) {
                    refused.extend(async_refusals(split_version(iface).0, name, &f));
                    if let Err(why) = f
                        .params()
                        .map(|(_, t)| t)
                        .chain(f.results())
                        .try_for_each(|t| check_handles(&t, names, &own_prefix))
                    {
                        refused.push(Refusal::plain(format!("function `{name}` {why}")));
                    }
                }
                sig.funcs.push(FuncSig {
                    name: name.to_string(),
                    ty: f,
                });
            }
            ComponentItem::Resource(rt) => {
                match names.name(&rt) {
                    Some(n) if n.starts_with(&own_prefix) => sig.resources.push(name.to_string()),
                    // `use`d from WASI: checked where a function passes it.
                    Some(n) if n.starts_with("wasi:") => {}
                    other => refused.push(Refusal::plain(format!(
                        "it uses the resource `{name}` from another interface ({}); only resources the interface defines itself, and WASI descriptors and streams, can cross a nanoprocess boundary",
                        other.unwrap_or("unknown")
                    ))),
                }
            }
            ComponentItem::Type(_) => {}
            _ => refused.push(Refusal::plain(format!("`{name}` is not a function"))),
        }
    }
    if refused.is_empty() {
        Ok(sig)
    } else {
        Err(Uncrossable(refused))
    }
}

/// Why function `name` of `iface` cannot cross a nanoprocess boundary for being
/// asynchronous: declared `async`, or carrying a `stream`, a `future` or an
/// `error-context` anywhere in a parameter or its result.
///
/// A call across a boundary is a host trampoline: it copies the parameters out
/// of the caller's store by the canonical ABI, makes one blocking call into the
/// callee's store, and copies the results back. An async call is instead a task
/// the caller may leave pending in its own store; a stream or a future is one
/// end of a channel whose other end stays in the store that made it; an
/// error-context is a handle into that store. None of them is a value the
/// trampoline could copy.
fn async_refusals(iface: &str, name: &str, f: &ComponentFunc) -> Vec<Refusal> {
    let mut refused = Vec::new();
    if f.async_() {
        refused.push(Refusal {
            why: format!(
                "`{iface}#{name}` is declared `async`: its caller may leave an async call pending and wait for it later among its own store's tasks, but nanoproc carries a call across a nanoprocess boundary as one blocking call into the callee's store, which leaves no task in the caller's store to wait for"
            ),
            help: Some(format!(
                "declare it without `async` (`{name}: func(...)`): async components can export and import it across a boundary, and its caller then waits for the answer, as for any call into another nanoprocess. Keep `async` functions within one nanoprocess; `isolation = \"fused\"` is no way around this, as async components cannot be fused"
            )),
        });
    }
    let mut found: Vec<(Type, String)> = Vec::new();
    for (param, ty) in f.params() {
        async_values(&ty, &format!("parameter `{param}`"), &mut found);
    }
    for ty in f.results() {
        async_values(&ty, "the result", &mut found);
    }
    let Some((first, _)) = found.first() else {
        return refused;
    };
    let carried: Vec<String> = found
        .iter()
        .map(|(ty, place)| {
            let written = wit_type(ty);
            let article = if written.starts_with("error") {
                "an"
            } else {
                "a"
            };
            format!("{article} {written} ({place})")
        })
        .collect();
    let mut kinds: Vec<&str> = Vec::new();
    for (ty, _) in &found {
        if let Shape::Async(kind) = shape(ty)
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
    }
    let reasons: Vec<String> = kinds
        .iter()
        .map(|kind| match *kind {
            "error-context" => "an error-context belongs to one store: it is a handle to a message the store that made it keeps, which no other store can read".to_string(),
            kind => format!(
                "a {kind} belongs to one store: nanoproc copies values across a boundary by the canonical ABI, and a {kind} is not a value but one end of a channel whose other end stays in the store that made it"
            ),
        })
        .collect();
    refused.push(Refusal {
        why: format!(
            "`{iface}#{name}` carries {}, and {}",
            and_list(&carried),
            reasons.join("; ")
        ),
        help: Some(async_value_help(first)),
    });
    refused
}

/// What to write instead of the asynchronous value `ty` in a function that must
/// cross a nanoprocess boundary.
fn async_value_help(ty: &Type) -> String {
    let payload = wit_types::payload(ty).map(|t| wit_type(&t));
    let instead = match (shape(ty), payload) {
        (Shape::Async("stream"), Some(t)) => format!(
            "pass the data itself: a plain function taking or returning `list<{t}>` once it is all there; for data that comes in pieces, a resource of the interface with a method that returns the next piece (such a resource crosses as a proxy)"
        ),
        (Shape::Async("future"), Some(t)) => format!(
            "pass the value itself: a plain function returning `{t}`, which its caller waits for"
        ),
        (Shape::Async("error-context"), _) => {
            "pass the error as a value: a `string`, or a variant of the interface's own".into()
        }
        _ => "a plain function that returns when the work is done".into(),
    };
    format!(
        "{instead}. Streams and futures work within one nanoprocess; `isolation = \"fused\"` is no way around this, as async components cannot be fused"
    )
}

/// Every `stream`, `future` and `error-context` inside a value of type `ty`, at
/// any depth, each with where it is (`place` is where `ty` is).
fn async_values(ty: &Type, place: &str, found: &mut Vec<(Type, String)>) {
    match shape(ty) {
        Shape::Async(_) => found.push((ty.clone(), place.to_string())),
        Shape::Primitive(_) | Shape::Handle { .. } => {}
        Shape::Compound { kind, parts } => {
            for (i, part) in parts.iter().enumerate() {
                let Some(inner) = &part.ty else { continue };
                let label = &part.label;
                let within = match &kind {
                    Kind::Record => format!("field `{label}` of {place}"),
                    Kind::Variant => format!("case `{label}` of {place}"),
                    Kind::List | Kind::FixedLengthList(_) => format!("an element of {place}"),
                    Kind::Map if i == 0 => format!("a key of {place}"),
                    Kind::Map => format!("a value of {place}"),
                    Kind::Tuple => format!("element {i} of {place}"),
                    Kind::Option => format!("`some` of {place}"),
                    Kind::Result if i == 0 => format!("`ok` of {place}"),
                    Kind::Result => format!("`err` of {place}"),
                    Kind::Enum(_) | Kind::Flags(_) => place.to_string(),
                };
                async_values(inner, &within, found);
            }
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Whether every handle a value of this type carries can be passed between
/// nanoprocesses: a resource of the interface itself (proxied), or a WASI handle
/// nanoproc knows how to move.
fn check_handles(ty: &Type, names: &ResourceNames, own_prefix: &str) -> Result<(), String> {
    let handle = |rt: &types::ResourceType, borrow: bool| -> Result<(), String> {
        let name = names.name(rt).unwrap_or("an unknown resource");
        if name.starts_with(own_prefix) {
            return Ok(());
        }
        match PASSABLE_WASI.iter().find(|(n, _)| *n == name) {
            Some((_, true)) => Ok(()),
            Some((_, false)) if !borrow => Ok(()),
            Some(_) => Err(format!(
                "lends a {name} (`borrow`); it can only be given (`own`), because it has one owner at a time"
            )),
            None if name.starts_with("wasi:") => Err(format!(
                "passes a {name}; the WASI handles that can cross a nanoprocess boundary are {}",
                PASSABLE_WASI.map(|(n, _)| n).join(", ")
            )),
            None => Err(format!(
                "passes the resource {name} from another interface; only resources the interface defines itself can be passed"
            )),
        }
    };
    match shape(ty) {
        Shape::Handle { resource, own } => handle(&resource, !own),
        // Refused with its own reason (see `async_refusals`).
        Shape::Async(_) => Ok(()),
        Shape::Primitive(_) | Shape::Compound { .. } => wit_types::inner(ty)
            .iter()
            .try_for_each(|t| check_handles(t, names, own_prefix)),
    }
}

/// Whether a value of this type carries a resource handle (or an async handle).
pub fn uses_resource(ty: &Type) -> bool {
    match shape(ty) {
        Shape::Handle { .. } | Shape::Async(_) => true,
        Shape::Primitive(_) | Shape::Compound { .. } => {
            wit_types::inner(ty).iter().any(uses_resource)
        }
    }
}

/// Two components' views of one function type: the same to the canonical ABI, with
/// resources matched by the interface that defines them (each component has its
/// own resource types), and both `async` or neither. Parameter names are not part
/// of the ABI and may differ.
pub fn funcs_equal(
    a: &ComponentFunc,
    a_names: &ResourceNames,
    b: &ComponentFunc,
    b_names: &ResourceNames,
) -> bool {
    a.async_() == b.async_()
        && a.params().len() == b.params().len()
        && a.params()
            .zip(b.params())
            .all(|((_, x), (_, y))| same_type(&x, a_names, &y, b_names))
        && a.results().len() == b.results().len()
        && a.results()
            .zip(b.results())
            .all(|(x, y)| same_type(&x, a_names, &y, b_names))
}

/// Structural equality of two types from different components: the same shape,
/// the same names and lengths, the same parts, and handles to resources of the
/// same name. Asynchronous values are never the same: none crosses a boundary.
pub fn same_type(a: &Type, an: &ResourceNames, b: &Type, bn: &ResourceNames) -> bool {
    match (shape(a), shape(b)) {
        (Shape::Primitive(x), Shape::Primitive(y)) => x == y,
        (
            Shape::Handle {
                resource: x,
                own: x_own,
            },
            Shape::Handle {
                resource: y,
                own: y_own,
            },
        ) => x_own == y_own && matches!((an.name(&x), bn.name(&y)), (Some(p), Some(q)) if p == q),
        (
            Shape::Compound {
                kind: x_kind,
                parts: x_parts,
            },
            Shape::Compound {
                kind: y_kind,
                parts: y_parts,
            },
        ) => {
            x_kind == y_kind
                && x_parts.len() == y_parts.len()
                && x_parts.iter().zip(&y_parts).all(|(p, q)| {
                    p.label == q.label
                        && match (&p.ty, &q.ty) {
                            (None, None) => true,
                            (Some(x), Some(y)) => same_type(x, an, y, bn),
                            _ => false,
                        }
                })
        }
        _ => false,
    }
}

/// Whether the function's WIT result is `result<_, string>`: then a failure of the
/// child can be handed to the caller as an `err` value instead of trapping it.
pub fn has_string_error(f: &ComponentFunc) -> bool {
    let mut results = f.results();
    match (results.next(), results.next()) {
        (Some(Type::Result(r)), None) => matches!(r.err(), Some(Type::String)),
        _ => false,
    }
}

/// `func(a: u32, b: string) -> list<u8>` (`async func(...)` for an `async` one)
pub fn wit_func(f: &ComponentFunc) -> String {
    wit_func_in(f, None)
}

/// [`wit_func`], with resources named.
pub fn wit_func_in(f: &ComponentFunc, names: Option<&ResourceNames>) -> String {
    let params: Vec<String> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", wit_type_in(&t, names)))
        .collect();
    let results: Vec<String> = f.results().map(|t| wit_type_in(&t, names)).collect();
    let mut out = format!(
        "{}func({})",
        if f.async_() { "async " } else { "" },
        params.join(", ")
    );
    match results.len() {
        0 => {}
        1 => out.push_str(&format!(" -> {}", results[0])),
        _ => out.push_str(&format!(" -> ({})", results.join(", "))),
    }
    out
}

/// A type in WIT syntax, with records, variants, enums and flags spelt out so that
/// two mismatching types can be told apart by reading them.
pub fn wit_type(ty: &Type) -> String {
    wit_type_in(ty, None)
}

/// [`wit_type`], with resources named by the interface that defines them.
pub fn wit_type_in(ty: &Type, names: Option<&ResourceNames>) -> String {
    let wit_type = |t: &Type| wit_type_in(t, names);
    let res = |rt: &types::ResourceType| {
        names
            .and_then(|n| n.name(rt))
            .map_or("resource".to_string(), |n| n.replace('#', "."))
    };
    let (kind, parts) = match shape(ty) {
        Shape::Primitive(name) => return name.to_string(),
        Shape::Async(name) => {
            return match wit_types::payload(ty) {
                Some(t) => format!("{name}<{}>", wit_type(&t)),
                None => name.to_string(),
            };
        }
        Shape::Handle {
            resource,
            own: true,
        } => return format!("own<{}>", res(&resource)),
        Shape::Handle {
            resource,
            own: false,
        } => return format!("borrow<{}>", res(&resource)),
        Shape::Compound { kind, parts } => (kind, parts),
    };
    // Each part written, `_` for a missing payload.
    let written: Vec<String> = parts
        .iter()
        .map(|p| p.ty.as_ref().map_or("_".to_string(), wit_type))
        .collect();
    match kind {
        Kind::List => format!("list<{}>", written.join(", ")),
        Kind::FixedLengthList(len) => format!("list<{}, {len}>", written.join(", ")),
        Kind::Map => format!("map<{}>", written.join(", ")),
        Kind::Record => {
            let fields: Vec<String> = parts
                .iter()
                .zip(&written)
                .map(|(p, w)| format!("{}: {w}", p.label))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Kind::Tuple => format!("tuple<{}>", written.join(", ")),
        Kind::Variant => {
            let cases: Vec<String> = parts
                .iter()
                .zip(&written)
                .map(|(p, w)| match &p.ty {
                    Some(_) => format!("{}({w})", p.label),
                    None => p.label.clone(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Kind::Enum(names) => format!("enum {{ {} }}", names.join(", ")),
        Kind::Flags(names) => format!("flags {{ {} }}", names.join(", ")),
        Kind::Option => format!("option<{}>", written.join(", ")),
        Kind::Result => match (&parts[0].ty, &parts[1].ty) {
            (None, None) => "result".into(),
            (Some(_), None) => format!("result<{}>", written[0]),
            (_, Some(_)) => format!("result<{}, {}>", written[0], written[1]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::Config;
    use wasmtime::component::Component;

    /// An engine that reads every asynchronous type: async functions, streams
    /// and futures (as nanoproc's engine with concurrency support does), and
    /// error-contexts (which nanoproc's engines do not enable).
    fn engine() -> Engine {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.concurrency_support(true);
        config.wasm_component_model_async(true);
        config.wasm_component_model_error_context(true);
        Engine::new(&config).unwrap()
    }

    const ASYNC_SHAPES: &str = r#"
        package test:walk;
        interface api {
            record job { name: string, parts: list<option<stream<u8>>> }
            variant status { idle, busy(tuple<u32, future<string>>) }
            slow: async func(n: u32) -> u32;
            deep: func(j: job);
            state: func() -> status;
            failed: func() -> result<u32, error-context>;
            both: func(s: stream<string>) -> future;
            slow-stream: async func() -> stream<u8>;
            plain: func(a: u32, b: list<string>) -> option<string>;
        }
        world w { import api; }
    "#;

    /// The imported `test:walk/api`, judged: every function, or only `used` ones.
    fn judged(used: impl Fn(&str) -> bool) -> Result<InterfaceSig, Uncrossable> {
        let engine = engine();
        let component =
            Component::new(&engine, crate::wit_types::component_of_world(ASYNC_SHAPES)).unwrap();
        let ty = component.component_type();
        let names = ResourceNames::of(&engine, &ty);
        let (name, api) = ty.imports(&engine).next().unwrap();
        let ComponentItem::ComponentInstance(api) = api.ty else {
            panic!("{name} is an instance")
        };
        instance_funcs_used(&engine, name, &api, &names, used)
    }

    #[test]
    fn every_async_function_and_value_at_any_depth_is_refused_by_name_and_place() {
        let refused = judged(|_| true).unwrap_err().0;
        let whys: Vec<&str> = refused.iter().map(|r| r.why.as_str()).collect();
        let has = |needle: &str| {
            assert!(
                whys.iter().any(|w| w.contains(needle)),
                "no refusal says {needle:?}: {whys:#?}"
            )
        };
        has("`test:walk/api#slow` is declared `async`");
        has(
            "`test:walk/api#deep` carries a stream<u8> (`some` of an element of field `parts` of parameter `j`), and a stream belongs to one store",
        );
        has(
            "`test:walk/api#state` carries a future<string> (element 1 of case `busy` of the result), and a future belongs to one store",
        );
        has(
            "`test:walk/api#failed` carries an error-context (`err` of the result), and an error-context belongs to one store",
        );
        // Two values in one function: one refusal naming both, with both reasons.
        has(
            "`test:walk/api#both` carries a stream<string> (parameter `s`) and a future (the result), and a stream belongs to one store",
        );
        has("; a future belongs to one store");
        // Declared `async` and carrying a stream: refused for both.
        has("`test:walk/api#slow-stream` is declared `async`");
        has("`test:walk/api#slow-stream` carries a stream<u8> (the result)");
        assert!(!whys.iter().any(|w| w.contains("#plain")), "{whys:#?}");
        assert_eq!(refused.len(), 7, "{whys:#?}");
        // Each says what to write instead.
        for r in &refused {
            let help = r.help.as_deref().unwrap_or_default();
            assert!(help.contains("cannot be fused"), "{}: {help}", r.why);
        }
        let help_of = |func: &str| {
            refused
                .iter()
                .find(|r| r.why.contains(&format!("#{func}` carries")))
                .and_then(|r| r.help.clone())
                .unwrap()
        };
        assert!(help_of("deep").contains("`list<u8>`"));
        assert!(help_of("state").contains("returning `string`"));
        assert!(help_of("failed").contains("pass the error as a value"));
    }

    #[test]
    fn only_the_functions_used_are_judged() {
        let sig = judged(|f| f == "plain").unwrap();
        assert_eq!(sig.funcs.len(), 7);
        assert!(judged(|f| f == "plain" || f == "slow").is_err());
    }

    #[test]
    fn an_async_function_is_written_and_compared_as_one() {
        let sig = judged(|_| false).unwrap();
        let func = |name: &str| &sig.funcs.iter().find(|f| f.name == name).unwrap().ty;
        assert_eq!(wit_func(func("slow")), "async func(n: u32) -> u32");
        assert_eq!(wit_func(func("both")), "func(s: stream<string>) -> future");
        let names = ResourceNames::default();
        assert!(funcs_equal(func("slow"), &names, func("slow"), &names));
        assert!(!funcs_equal(func("slow"), &names, func("plain"), &names));
    }
}
