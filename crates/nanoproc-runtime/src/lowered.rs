//! What a value costs the memory it is lowered into: the estimate a child's result
//! is checked against before it crosses into its parent (see
//! [`crate::trampoline::result_fits`]).
//!
//! The size of a list's elements comes from the *type*, by the canonical ABI's
//! layout rules, never from the values: a `list<option<record>>` of `none`s
//! holds no payload, yet every element takes the record's full size in the list's
//! buffer. On top of the canonical buffers, each string and list costs one
//! allocation ([`ALLOCATION`] for the allocator's header and rounding), and a
//! list's buffer is counted twice: the guest's bindings commonly lift it into a
//! representation of their own (Rust's `Vec<String>` takes 12 bytes per 8-byte
//! element) before the canonical buffer is freed. Strings are counted in UTF-8; a
//! parent that takes strings in UTF-16 needs up to twice that, which this does not
//! foresee.

use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// Bytes one allocation costs beyond its contents: dlmalloc's header and its
/// 16-byte granularity.
pub(crate) const ALLOCATION: u64 = 16;

/// What lowering a string of `len` UTF-8 bytes allocates.
pub(crate) fn string_cost(len: usize) -> u64 {
    len as u64 + ALLOCATION
}

/// What lowering the buffer of a list of `len` elements of `size` bytes allocates,
/// counted twice: once lowered, once as the bindings' own copy.
pub(crate) fn list_cost(len: usize, size: u64) -> u64 {
    (len as u64).saturating_mul(size).saturating_mul(2) + ALLOCATION
}

/// The bytes lowering `value` (of type `ty`) allocates in the receiving memory,
/// beyond its flat representation (which lives in the caller's frame or return
/// area).
pub(crate) fn allocated(ty: &Type, value: &Val) -> u64 {
    match (ty, value) {
        (Type::String, Val::String(s)) => string_cost(s.len()),
        (Type::List(list), Val::List(items)) => {
            let element = list.ty();
            let (size, _) = layout(&element);
            items
                .iter()
                .map(|item| allocated(&element, item))
                .fold(list_cost(items.len(), size), u64::saturating_add)
        }
        (Type::Record(record), Val::Record(fields)) => record
            .fields()
            .zip(fields)
            .map(|(field, (_, v))| allocated(&field.ty, v))
            .fold(0, u64::saturating_add),
        (Type::Tuple(tuple), Val::Tuple(items)) => tuple
            .types()
            .zip(items)
            .map(|(t, v)| allocated(&t, v))
            .fold(0, u64::saturating_add),
        (Type::Variant(variant), Val::Variant(name, Some(v))) => variant
            .cases()
            .find(|c| c.name == name)
            .and_then(|c| c.ty)
            .map_or(0, |t| allocated(&t, v)),
        (Type::Option(option), Val::Option(Some(v))) => allocated(&option.ty(), v),
        (Type::Result(result), Val::Result(Ok(Some(v)))) => {
            result.ok().map_or(0, |t| allocated(&t, v))
        }
        (Type::Result(result), Val::Result(Err(Some(v)))) => {
            result.err().map_or(0, |t| allocated(&t, v))
        }
        _ => 0,
    }
}

/// Size and alignment of a value of type `ty` in a list's buffer, by the
/// canonical ABI. Types this does not know are taken as a pointer and a length.
pub(crate) fn layout(ty: &Type) -> (u64, u64) {
    match ty {
        Type::Bool | Type::S8 | Type::U8 => (1, 1),
        Type::S16 | Type::U16 => (2, 2),
        Type::S32 | Type::U32 | Type::Float32 | Type::Char => (4, 4),
        Type::S64 | Type::U64 | Type::Float64 => (8, 8),
        Type::Own(_) | Type::Borrow(_) => (4, 4),
        Type::Record(record) => fields(record.fields().map(|f| layout(&f.ty))),
        Type::Tuple(tuple) => fields(tuple.types().map(|t| layout(&t))),
        Type::Variant(variant) => {
            let cases: Vec<Option<(u64, u64)>> =
                variant.cases().map(|c| c.ty.as_ref().map(layout)).collect();
            cased(cases.len(), cases.into_iter().flatten())
        }
        Type::Option(option) => cased(2, std::iter::once(layout(&option.ty()))),
        Type::Result(result) => cased(
            2,
            [result.ok(), result.err()]
                .into_iter()
                .flatten()
                .map(|t| layout(&t)),
        ),
        Type::Enum(e) => {
            let d = discriminant(e.names().len());
            (d, d)
        }
        Type::Flags(flags) => match flags.names().len() {
            0 => (0, 1),
            1..=8 => (1, 1),
            9..=16 => (2, 2),
            n => (4 * (n as u64).div_ceil(32), 4),
        },
        _ => (8, 4),
    }
}

fn align_to(offset: u64, align: u64) -> u64 {
    offset.div_ceil(align.max(1)) * align.max(1)
}

/// A record's layout: each field at its alignment, the whole rounded up to the
/// largest.
fn fields(layouts: impl Iterator<Item = (u64, u64)>) -> (u64, u64) {
    let (mut size, mut align) = (0u64, 1u64);
    for (s, a) in layouts {
        size = align_to(size, a).saturating_add(s);
        align = align.max(a);
    }
    (align_to(size, align), align)
}

/// A variant's layout: the discriminant, then room for its largest case.
fn cased(cases: usize, payloads: impl Iterator<Item = (u64, u64)>) -> (u64, u64) {
    let d = discriminant(cases);
    let (mut size, mut align) = (0u64, d);
    for (s, a) in payloads {
        size = size.max(s);
        align = align.max(a);
    }
    (
        align_to(align_to(d, align).saturating_add(size), align),
        align,
    )
}

fn discriminant(cases: usize) -> u64 {
    match cases {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::component::Component;
    use wasmtime::component::types::ComponentItem;
    use wasmtime::{Config, Engine};

    /// The types of `echo-outer`'s result (`outer`) and of its `items` field's
    /// elements (`inner`), from the real types_child component.
    fn outer_and_inner() -> (Type, Type) {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).unwrap();
        let component = Component::from_file(&engine, xtask::guest("types_child")).unwrap();
        let ty = component.component_type();
        let (_, echo) = ty
            .exports(&engine)
            .find(|(name, _)| name.starts_with("test:types/echo"))
            .unwrap();
        let ComponentItem::ComponentInstance(echo) = echo.ty else {
            panic!("echo is an instance")
        };
        let (_, f) = echo
            .exports(&engine)
            .find(|(name, _)| *name == "echo-outer")
            .unwrap();
        let ComponentItem::ComponentFunc(f) = f.ty else {
            panic!("echo-outer is a function")
        };
        let outer = f.results().next().unwrap();
        let Type::Record(record) = &outer else {
            panic!("outer is a record")
        };
        let items = record.fields().find(|f| f.name == "items").unwrap().ty;
        let Type::List(list) = items else {
            panic!("items is a list")
        };
        (outer.clone(), list.ty())
    }

    #[test]
    fn layouts_follow_the_canonical_abi() {
        let (_, inner) = outer_and_inner();
        // record inner { tags: list<string>, weight: option<f32> }: a pointer and a
        // length (8, align 4), then a discriminant byte padded to the f32 (8).
        assert_eq!(layout(&inner), (16, 4));
    }

    #[test]
    fn a_list_of_empty_elements_costs_their_full_size() {
        let empty = Val::Record(vec![
            ("tags".into(), Val::List(vec![])),
            ("weight".into(), Val::Option(None)),
        ]);
        // A list of 1000 of them, as `list<inner>`: each element 16 bytes in the
        // buffer (counted twice), each empty `tags` list one allocation.
        let (outer, _) = outer_and_inner();
        let Type::Record(record) = &outer else {
            unreachable!()
        };
        let list_ty = record.fields().find(|f| f.name == "items").unwrap().ty;
        let value = Val::List(vec![empty; 1000]);
        assert_eq!(
            allocated(&list_ty, &value),
            1000 * 16 * 2 + ALLOCATION + 1000 * ALLOCATION
        );
    }

    #[test]
    fn strings_cost_their_bytes_and_an_allocation() {
        assert_eq!(
            allocated(&Type::String, &Val::String("abc".into())),
            3 + ALLOCATION
        );
    }
}
