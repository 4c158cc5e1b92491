//! What a component imports and exports, and whether a child's export can satisfy a
//! parent's import.
//!
//! Types come from wasmtime's own view of the component (`Component::component_type`),
//! so the check is the same type system the canonical ABI will use; `Type`'s equality
//! is structural across components. Mismatches are shown in WIT syntax.

use wasmtime::Engine;
use wasmtime::component::types::{self, ComponentFunc, ComponentItem, Type};

/// The WASI interface families nanoproc provides (through wasmtime-wasi).
const WASI_PACKAGES: [&str; 6] = [
    "wasi:io/",
    "wasi:cli/",
    "wasi:clocks/",
    "wasi:filesystem/",
    "wasi:random/",
    "wasi:sockets/",
];

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

/// Whether an import is one of the WASI interfaces nanoproc provides. WASI 0.2.x is
/// served by wasmtime-wasi 48, which implements 0.2.12 and links older 0.2 guests.
pub fn is_provided_wasi(name: &str) -> bool {
    let (n, v) = split_version(name);
    WASI_PACKAGES.iter().any(|p| n.starts_with(p)) && v.is_some_and(|v| v.starts_with("0.2."))
}

/// One function of an interface.
#[derive(Clone, Debug)]
pub struct FuncSig {
    pub name: String,
    pub ty: ComponentFunc,
}

/// The functions of an imported or exported interface instance, or why it cannot
/// cross a nanoprocess boundary.
pub fn instance_funcs(
    engine: &Engine,
    inst: &types::ComponentInstance,
) -> Result<Vec<FuncSig>, String> {
    let mut funcs = Vec::new();
    for (name, ext) in inst.exports(engine) {
        match ext.ty {
            ComponentItem::ComponentFunc(f) => {
                if let Some(t) = f
                    .params()
                    .map(|(_, t)| t)
                    .chain(f.results())
                    .find(uses_resource)
                {
                    return Err(format!(
                        "function `{name}` passes a resource ({}); resources cannot cross a nanoprocess boundary in this version of nanoproc",
                        wit_type(&t)
                    ));
                }
                funcs.push(FuncSig {
                    name: name.to_string(),
                    ty: f,
                });
            }
            ComponentItem::Resource(_) => {
                return Err(format!(
                    "it defines the resource `{name}`; resources cannot cross a nanoprocess boundary in this version of nanoproc"
                ));
            }
            ComponentItem::Type(_) => {}
            _ => return Err(format!("`{name}` is not a function")),
        }
    }
    Ok(funcs)
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

/// Whether two function types are the same to the canonical ABI. Parameter names
/// are not part of the ABI and may differ.
pub fn funcs_equal(a: &ComponentFunc, b: &ComponentFunc) -> bool {
    a.params().len() == b.params().len()
        && a.params().zip(b.params()).all(|((_, x), (_, y))| x == y)
        && a.results().len() == b.results().len()
        && a.results().zip(b.results()).all(|(x, y)| x == y)
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
    let params: Vec<String> = f
        .params()
        .map(|(n, t)| format!("{n}: {}", wit_type(&t)))
        .collect();
    let results: Vec<String> = f.results().map(|t| wit_type(&t)).collect();
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
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}
