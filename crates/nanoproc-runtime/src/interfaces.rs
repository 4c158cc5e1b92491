//! What a component imports and exports, and whether a child's export can satisfy a
//! parent's import.
//!
//! Types come from wasmtime's own view of the component (`Component::component_type`),
//! so the check is the same type system the canonical ABI will use; `Type`'s equality
//! is structural across components. Mismatches are shown in WIT syntax.

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
    match ty {
        Type::Own(rt) => handle(rt, false),
        Type::Borrow(rt) => handle(rt, true),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => Err(format!(
            "passes a {}; asynchronous values cannot cross a nanoprocess boundary",
            wit_type(ty)
        )),
        Type::List(l) => check_handles(&l.ty(), names, own_prefix),
        Type::FixedLengthList(l) => check_handles(&l.ty(), names, own_prefix),
        Type::Map(m) => {
            check_handles(&m.key(), names, own_prefix)?;
            check_handles(&m.value(), names, own_prefix)
        }
        Type::Record(r) => r
            .fields()
            .try_for_each(|f| check_handles(&f.ty, names, own_prefix)),
        Type::Tuple(t) => t
            .types()
            .try_for_each(|t| check_handles(&t, names, own_prefix)),
        Type::Variant(v) => v.cases().try_for_each(|c| match &c.ty {
            Some(t) => check_handles(t, names, own_prefix),
            None => Ok(()),
        }),
        Type::Option(o) => check_handles(&o.ty(), names, own_prefix),
        Type::Result(r) => {
            if let Some(t) = r.ok() {
                check_handles(&t, names, own_prefix)?;
            }
            match r.err() {
                Some(t) => check_handles(&t, names, own_prefix),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// Whether a value of this type carries a resource handle (or an async handle).
pub fn uses_resource(ty: &Type) -> bool {
    match ty {
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            true
        }
        Type::List(l) => uses_resource(&l.ty()),
        Type::FixedLengthList(l) => uses_resource(&l.ty()),
        Type::Map(m) => uses_resource(&m.key()) || uses_resource(&m.value()),
        Type::Record(r) => r.fields().any(|f| uses_resource(&f.ty)),
        Type::Tuple(t) => t.types().any(|t| uses_resource(&t)),
        Type::Variant(v) => v.cases().any(|c| c.ty.as_ref().is_some_and(uses_resource)),
        Type::Option(o) => uses_resource(&o.ty()),
        Type::Result(r) => {
            r.ok().as_ref().is_some_and(uses_resource)
                || r.err().as_ref().is_some_and(uses_resource)
        }
        _ => false,
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

/// Structural equality of two types from different components.
pub fn same_type(a: &Type, an: &ResourceNames, b: &Type, bn: &ResourceNames) -> bool {
    let same = |x: &Type, y: &Type| same_type(x, an, y, bn);
    let same_opt = |x: Option<Type>, y: Option<Type>| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => same(&x, &y),
        _ => false,
    };
    let same_res = |x: &types::ResourceType, y: &types::ResourceType| matches!((an.name(x), bn.name(y)), (Some(p), Some(q)) if p == q);
    match (a, b) {
        (Type::Own(x), Type::Own(y)) | (Type::Borrow(x), Type::Borrow(y)) => same_res(x, y),
        (Type::List(x), Type::List(y)) => same(&x.ty(), &y.ty()),
        (Type::FixedLengthList(x), Type::FixedLengthList(y)) => {
            x.len() == y.len() && same(&x.ty(), &y.ty())
        }
        (Type::Map(x), Type::Map(y)) => same(&x.key(), &y.key()) && same(&x.value(), &y.value()),
        (Type::Record(x), Type::Record(y)) => {
            x.fields().len() == y.fields().len()
                && x.fields()
                    .zip(y.fields())
                    .all(|(f, g)| f.name == g.name && same(&f.ty, &g.ty))
        }
        (Type::Tuple(x), Type::Tuple(y)) => {
            x.types().len() == y.types().len()
                && x.types().zip(y.types()).all(|(p, q)| same(&p, &q))
        }
        (Type::Variant(x), Type::Variant(y)) => {
            x.cases().len() == y.cases().len()
                && x.cases()
                    .zip(y.cases())
                    .all(|(c, d)| c.name == d.name && same_opt(c.ty.clone(), d.ty.clone()))
        }
        (Type::Enum(x), Type::Enum(y)) => x.names().eq(y.names()),
        (Type::Flags(x), Type::Flags(y)) => x.names().eq(y.names()),
        (Type::Option(x), Type::Option(y)) => same(&x.ty(), &y.ty()),
        (Type::Result(x), Type::Result(y)) => {
            same_opt(x.ok(), y.ok()) && same_opt(x.err(), y.err())
        }
        (Type::Future(_), _) | (Type::Stream(_), _) | (Type::ErrorContext, _) => false,
        (x, y) => x == y && !uses_resource(x),
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
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit_type(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit_type(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit_type(&m.key()), wit_type(&m.value())),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, wit_type(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let parts: Vec<String> = t.types().map(|t| wit_type(&t)).collect();
            format!("tuple<{}>", parts.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match &c.ty {
                    Some(t) => format!("{}({})", c.name, wit_type(t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit_type(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", wit_type(&ok)),
            (None, Some(err)) => format!("result<_, {}>", wit_type(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", wit_type(&ok), wit_type(&err)),
        },
        Type::Own(rt) => format!("own<{}>", res(rt)),
        Type::Borrow(rt) => format!("borrow<{}>", res(rt)),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}
