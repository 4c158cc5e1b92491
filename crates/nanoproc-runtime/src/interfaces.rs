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

/// The functions of an imported or exported interface instance named `iface`, or
/// why it cannot cross a nanoprocess boundary.
pub fn instance_funcs(
    engine: &Engine,
    iface: &str,
    inst: &types::ComponentInstance,
    names: &ResourceNames,
) -> Result<InterfaceSig, String> {
    let own_prefix = format!("{}#", split_version(iface).0);
    let mut sig = InterfaceSig::default();
    for (name, ext) in inst.exports(engine) {
        match ext.ty {
            ComponentItem::ComponentFunc(f) => {
                for t in f.params().map(|(_, t)| t).chain(f.results()) {
                    check_handles(&t, names, &own_prefix)
                        .map_err(|why| format!("function `{name}` {why}"))?;
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
                    other => {
                        return Err(format!(
                            "it uses the resource `{name}` from another interface ({}); only resources the interface defines itself, and WASI descriptors and streams, can cross a nanoprocess boundary",
                            other.unwrap_or("unknown")
                        ));
                    }
                }
            }
            ComponentItem::Type(_) => {}
            _ => return Err(format!("`{name}` is not a function")),
        }
    }
    Ok(sig)
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
        Shape::Async(_) => Err(format!(
            "passes a {}; asynchronous values cannot cross a nanoprocess boundary",
            wit_type(ty)
        )),
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
/// own resource types). Parameter names are not part of the ABI and may differ.
pub fn funcs_equal(
    a: &ComponentFunc,
    a_names: &ResourceNames,
    b: &ComponentFunc,
    b_names: &ResourceNames,
) -> bool {
    a.params().len() == b.params().len()
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

/// `func(a: u32, b: string) -> list<u8>`
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
    let mut out = format!("func({})", params.join(", "));
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
        Shape::Primitive(name) | Shape::Async(name) => return name.to_string(),
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
