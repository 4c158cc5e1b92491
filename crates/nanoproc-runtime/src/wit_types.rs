//! The one descent over WIT types: what a [`Type`] is made of, one level down.
//!
//! Every question nanoproc asks of a type (can it cross a nanoprocess boundary,
//! does it carry a handle, is it the same as another component's, how is it
//! written in WIT, where in a value are its handles) is answered by recursing
//! through [`shape`], the only `match` over `Type`'s variants that knows which
//! types each contains. A variant wasmtime adds is added there once, and every
//! question then sees it; before, five walkers each had their own `match`, and
//! they disagreed (the handles in a `map` or a fixed-length `list` were seen by
//! the boundary check but never transferred).

use wasmtime::component::types::{ResourceType, Type};

/// A type, one level down.
#[derive(Clone, Debug)]
pub(crate) enum Shape {
    /// A value with no types inside it: `bool`, the numbers, `char`, `string`,
    /// with its WIT name.
    Primitive(&'static str),
    /// A handle to a resource: given (`own`) or lent for a call (`borrow`).
    Handle { resource: ResourceType, own: bool },
    /// An asynchronous value (`future`, `stream`, `error-context`), by its WIT
    /// name. Its payload is not descended into: no such value crosses a
    /// nanoprocess boundary.
    Async(&'static str),
    /// A value made of others, or of names.
    Compound { kind: Kind, parts: Vec<Part> },
}

/// What sort of compound a type is, with what tells two types of that sort
/// apart beyond their parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `list<T>`: one part, the element.
    List,
    /// `list<T, N>`: one part, the element.
    FixedLengthList(u32),
    /// `map<K, V>`: two parts, the key and the value.
    Map,
    /// A part per field, labelled with its name.
    Record,
    /// A part per element.
    Tuple,
    /// A part per case, labelled with its name, with or without a payload.
    Variant,
    /// No parts: only the names of its cases.
    Enum(Vec<String>),
    /// No parts: only the names of its flags.
    Flags(Vec<String>),
    /// `option<T>`: one part, `some`'s payload.
    Option,
    /// `result<T, E>`: two parts, `ok` and `err`, each possibly without a payload.
    Result,
}

/// One type inside a compound.
#[derive(Clone, Debug)]
pub(crate) struct Part {
    /// Its field or case name; empty for the positional parts (list elements,
    /// map keys and values, tuple elements, `option`'s and `result`'s payloads).
    pub label: String,
    /// `None` for a variant case or a `result` side without a payload.
    pub ty: Option<Type>,
}

impl Part {
    fn of(ty: Type) -> Self {
        Part {
            label: String::new(),
            ty: Some(ty),
        }
    }
}

/// What `ty` is made of, one level down.
pub(crate) fn shape(ty: &Type) -> Shape {
    let compound = |kind: Kind, parts: Vec<Part>| Shape::Compound { kind, parts };
    match ty {
        Type::Bool => Shape::Primitive("bool"),
        Type::S8 => Shape::Primitive("s8"),
        Type::U8 => Shape::Primitive("u8"),
        Type::S16 => Shape::Primitive("s16"),
        Type::U16 => Shape::Primitive("u16"),
        Type::S32 => Shape::Primitive("s32"),
        Type::U32 => Shape::Primitive("u32"),
        Type::S64 => Shape::Primitive("s64"),
        Type::U64 => Shape::Primitive("u64"),
        Type::Float32 => Shape::Primitive("f32"),
        Type::Float64 => Shape::Primitive("f64"),
        Type::Char => Shape::Primitive("char"),
        Type::String => Shape::Primitive("string"),
        Type::Own(rt) => Shape::Handle {
            resource: *rt,
            own: true,
        },
        Type::Borrow(rt) => Shape::Handle {
            resource: *rt,
            own: false,
        },
        Type::Future(_) => Shape::Async("future"),
        Type::Stream(_) => Shape::Async("stream"),
        Type::ErrorContext => Shape::Async("error-context"),
        Type::List(l) => compound(Kind::List, vec![Part::of(l.ty())]),
        Type::FixedLengthList(l) => {
            compound(Kind::FixedLengthList(l.len()), vec![Part::of(l.ty())])
        }
        Type::Map(m) => compound(Kind::Map, vec![Part::of(m.key()), Part::of(m.value())]),
        Type::Record(r) => compound(
            Kind::Record,
            r.fields()
                .map(|f| Part {
                    label: f.name.to_string(),
                    ty: Some(f.ty),
                })
                .collect(),
        ),
        Type::Tuple(t) => compound(Kind::Tuple, t.types().map(Part::of).collect()),
        Type::Variant(v) => compound(
            Kind::Variant,
            v.cases()
                .map(|c| Part {
                    label: c.name.to_string(),
                    ty: c.ty,
                })
                .collect(),
        ),
        Type::Enum(e) => compound(Kind::Enum(e.names().map(str::to_string).collect()), vec![]),
        Type::Flags(f) => compound(Kind::Flags(f.names().map(str::to_string).collect()), vec![]),
        Type::Option(o) => compound(Kind::Option, vec![Part::of(o.ty())]),
        Type::Result(r) => compound(
            Kind::Result,
            vec![
                Part {
                    label: String::new(),
                    ty: r.ok(),
                },
                Part {
                    label: String::new(),
                    ty: r.err(),
                },
            ],
        ),
    }
}

/// The types directly inside `ty` (payloads that are absent left out).
pub(crate) fn inner(ty: &Type) -> Vec<Type> {
    match shape(ty) {
        Shape::Compound { parts, .. } => parts.into_iter().filter_map(|p| p.ty).collect(),
        Shape::Primitive(_) | Shape::Handle { .. } | Shape::Async(_) => Vec::new(),
    }
}

/// The payload of a `future<T>` or a `stream<T>` (what [`shape`] does not
/// descend into): `T`, or `None` for a `future` or `stream` without one and for
/// every other type. Only what is written and said about an asynchronous value
/// needs it; none crosses a nanoprocess boundary.
pub(crate) fn payload(ty: &Type) -> Option<Type> {
    match ty {
        Type::Future(f) => f.ty(),
        Type::Stream(s) => s.ty(),
        _ => None,
    }
}

/// The bytes of a real component (a dummy core module wrapped by wit-component)
/// with the world `w` of `wit`: for the tests of every module that reads
/// component types.
#[cfg(test)]
pub(crate) fn component_of_world(wit: &str) -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve.push_str("test.wit", wit).unwrap();
    let world = resolve.select_world(&[package], Some("w")).unwrap();
    let mut module = wit_component::dummy_module(
        &resolve,
        world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .encode()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::Walk;
    use crate::interfaces::{self, ResourceNames};
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Val};
    use wasmtime::{Config, Engine};

    /// An engine that validates the proposals these tests' types use (a map and a
    /// fixed-length list are off by default, and in nanoproc's own engines).
    fn engine() -> Engine {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.wasm_component_model_map(true);
        config.wasm_component_model_fixed_length_lists(true);
        Engine::new(&config).unwrap()
    }

    /// A real component importing `test:walk/api` as `wit` defines it, and the
    /// names of its resource types.
    fn component(engine: &Engine, wit: &str) -> (Component, ResourceNames) {
        let bytes = super::component_of_world(wit);
        let component = Component::new(engine, bytes).unwrap();
        let names = ResourceNames::of(engine, &component.component_type());
        (component, names)
    }

    /// The parameter types of function `name` of the imported `test:walk/api`.
    fn params(engine: &Engine, component: &Component, name: &str) -> Vec<Type> {
        let ty = component.component_type();
        let (_, api) = ty
            .imports(engine)
            .find(|(n, _)| *n == "test:walk/api")
            .unwrap();
        let ComponentItem::ComponentInstance(api) = api.ty else {
            panic!("test:walk/api is an instance")
        };
        let (_, f) = api.exports(engine).find(|(n, _)| *n == name).unwrap();
        let ComponentItem::ComponentFunc(f) = f.ty else {
            panic!("{name} is a function")
        };
        f.params().map(|(_, t)| t).collect()
    }

    const HANDLES_IN_CONTAINERS: &str = r#"
        package test:walk;
        interface api {
            resource counter;
            in-map: func(m: map<string, counter>);
            in-fixed: func(l: list<borrow<counter>, 2>);
            in-list: func(l: list<counter>);
            plain-map: func(m: map<string, u32>);
        }
        world w { import api; }
    "#;

    #[test]
    fn a_handle_in_a_map_or_a_fixed_length_list_is_walked_like_one_in_a_list() {
        let engine = engine();
        let (component, names) = component(&engine, HANDLES_IN_CONTAINERS);
        let proxies = [("counter".to_string(), 7u32)];
        let walk = |ty: &Type| Walk::of(ty, &names, "test:walk/api", &proxies);
        for (func, written) in [
            ("in-map", "map<string, own<test:walk/api.counter>>"),
            ("in-fixed", "list<borrow<test:walk/api.counter>, 2>"),
            ("in-list", "list<own<test:walk/api.counter>>"),
        ] {
            let [ty] = &params(&engine, &component, func)[..] else {
                panic!("{func} has one parameter")
            };
            // Every question sees the handle inside.
            assert_eq!(interfaces::wit_type_in(ty, Some(&names)), written);
            assert!(interfaces::uses_resource(ty), "{func}");
            assert!(interfaces::same_type(ty, &names, ty, &names), "{func}");
            // Before, the walk of a map or a fixed-length list was `Plain`: the
            // handles in it were never transferred.
            assert!(walk(ty).carries_handles(), "{func}: {:?}", walk(ty));
        }
        let [plain] = &params(&engine, &component, "plain-map")[..] else {
            panic!("plain-map has one parameter")
        };
        assert!(!interfaces::uses_resource(plain));
        assert!(!walk(plain).carries_handles());
    }

    #[test]
    fn the_walk_of_a_map_or_a_fixed_length_list_reaches_every_handle_in_a_value() {
        let engine = engine();
        let (component, names) = component(&engine, HANDLES_IN_CONTAINERS);
        let proxies = [("counter".to_string(), 7u32)];
        let walk = |func: &str| {
            let [ty] = &params(&engine, &component, func)[..] else {
                panic!("{func} has one parameter")
            };
            Walk::of(ty, &names, "test:walk/api", &proxies)
        };
        // The handles' places hold numbers here: the walk hands each leaf to the
        // visitor whatever it holds.
        let mut map = Val::Map(vec![
            (Val::String("a".into()), Val::U32(1)),
            (Val::String("b".into()), Val::U32(2)),
        ]);
        let mut fixed = Val::FixedLengthList(vec![Val::U32(3), Val::U32(4)]);
        for (walk, value, expected) in [
            (walk("in-map"), &mut map, vec![1, 2]),
            (walk("in-fixed"), &mut fixed, vec![3, 4]),
        ] {
            let mut seen = Vec::new();
            walk.visit(value, &mut |v, _| {
                if let Val::U32(n) = v {
                    seen.push(*n);
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(seen, expected);
        }
    }

    #[test]
    fn types_of_two_components_are_the_same_only_with_the_same_names_and_lengths() {
        let engine = engine();
        let wit = |len: u32, key: &str| {
            format!(
                r#"
                package test:walk;
                interface api {{
                    resource counter;
                    f: func(a: list<borrow<counter>, {len}>, b: map<{key}, option<counter>>, c: result<_, string>);
                }}
                world w {{ import api; }}
                "#
            )
        };
        let (a, a_names) = component(&engine, &wit(2, "string"));
        let (b, b_names) = component(&engine, &wit(2, "string"));
        let (c, c_names) = component(&engine, &wit(3, "u32"));
        let (a, b, c) = (
            params(&engine, &a, "f"),
            params(&engine, &b, "f"),
            params(&engine, &c, "f"),
        );
        for i in 0..3 {
            // Two components' resource types differ; their names match.
            assert!(interfaces::same_type(&a[i], &a_names, &b[i], &b_names));
        }
        assert!(!interfaces::same_type(&a[0], &a_names, &c[0], &c_names));
        assert!(!interfaces::same_type(&a[1], &a_names, &c[1], &c_names));
        assert_eq!(interfaces::wit_type(&a[2]), "result<_, string>");
        assert_eq!(inner(&a[2]), vec![Type::String]);
    }
}
