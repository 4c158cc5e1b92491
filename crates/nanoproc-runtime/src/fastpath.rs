//! Typed trampolines: fast paths for the common function shapes of calls between
//! nanoprocesses.
//!
//! The generic trampoline ([`crate::trampoline::forward`], linked with
//! `func_new`) works for every WIT signature, but it pays per value: wasmtime
//! lifts every argument into a tree of `Val`s and lowers it again into the
//! child. A no-op call costs about 240 ns that way against about 135 ns typed, and
//! a `list<u8>` costs about 40 ns *per byte*, because each byte becomes its own
//! `Val::U8`: passing 1 MiB to a child takes 42 ms instead of about 0.27 ms
//! (release build, wasmtime 48, see the project notes). End to end, a release
//! `nanoproc` echoing 1 MiB through `test:types/echo` (there and back, guests'
//! own work included) took about 125 ms per call generically and about 4 ms
//! with the fast path.
//!
//! So [`link_typed`] looks at each imported function's type when the parent is
//! linked and, for the shapes below, installs a `func_wrap` host function with
//! static types instead. A `string` or `list<u8>` argument arrives as a
//! `WasmStr` / `WasmList<u8>` (a pointer and a length into the parent's memory),
//! is read in place from there (`to_str`, `as_le_slice`: no copy unless the
//! parent's strings are not UTF-8 encoded) and is lowered straight into the child
//! as `&str` / `&[u8]` by a [`TypedFunc`] call: one memcpy, never a `Val` per
//! byte. Results are lifted from the child as Rust values (`String`, `Vec<u8>`,
//! `Result<String, String>`, ...) and lowered into the parent (a `string` or
//! `list<u8>` result is copied twice: out of the child, into the parent; wasmtime
//! 48 has no way to lower a `WasmStr` of one store into another). Everything else
//! about the call is the generic path's: the call goes through
//! [`call_child`] (the take-child step, the refusal of re-entrant calls,
//! per-call fuel and deadline, failure classification, restarts), and a failure
//! reaches the parent the same way (an `err` for `result<_, string>` under
//! `on-failure = "error"`, else a trap).
//!
//! **Covered**: functions with 0, 1 or 2 parameters, each one of `string`,
//! `list<u8>`, `u32`, `u64`, `s32`, `s64`, `bool`, `f64`, and no result or one
//! of `u32`, `u64`, `s32`, `s64`, `bool`, `f64`, `string`, `list<u8>`,
//! `option<string>`, `result<_, string>`, `result<string, string>`,
//! `result<list<u8>, string>`, `result<u32, string>`, `result<u64, string>`.
//! That is (1 + 8 + 64) parameter lists times 15 results: 1095 shapes.
//!
//! **Everything else** (three or more parameters, records, variants, other
//! lists, other numbers, several results, ...) takes the generic `Val` path,
//! which is correct for every type, only slower.
//!
//! **Why not more**: every shape is a monomorphization of wasmtime's
//! `func_wrap` and `TypedFunc` machinery, and they cost build time (debug build,
//! 2 cores shared with other builds): compiling this crate from scratch takes
//! 38-40 s with these 1095 shapes instead of 6-9 s without, about 30 ms per
//! shape; `touch`ing this file and rebuilding incrementally, 2.4-3.8 s instead of
//! about 1 s; an edit to the trampoline body below recompiles every shape
//! (15-20 s), while edits elsewhere in the crate are unaffected. A release build
//! of the crate takes about 125 s instead of 26 s, and the release binary grows
//! by about 9 MB (29 to 38 MB). A third parameter would add 7680 shapes (4440
//! even if one of the three had to be a `string` or `list<u8>`), several minutes
//! of build, so functions with three or more parameters are left to the generic
//! path, as are the rarer types.
//!
//! A shape is chosen when the parent is linked, from the function's
//! [`ComponentFunc`] (the parent's import, which `plan` has checked equals the
//! child's export), and mapped to Rust types by two small macros (`with_param!`,
//! `with_ret!`), which instantiate the generic `link0`/`link1`/`link2` for each
//! combination. The unit tests check every shape against wasmtime's own type
//! check.

use crate::error::ChildFailed;
use crate::state::NanoState;
use crate::trampoline::{CallError, Live, Route, call_child};
use std::borrow::Cow;
use std::marker::PhantomData;
use wasmtime::StoreContextMut;
use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{
    ComponentNamedList, ComponentType, Func, Lift, LinkerInstance, Lower, TypedFunc, WasmList,
    WasmStr,
};

/// A parameter type with a fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    String,
    /// `list<u8>`
    Bytes,
    U32,
    U64,
    S32,
    S64,
    Bool,
    F64,
}

impl Param {
    fn of(ty: &Type) -> Option<Self> {
        Some(match ty {
            Type::String => Self::String,
            Type::List(l) if l.ty() == Type::U8 => Self::Bytes,
            Type::U32 => Self::U32,
            Type::U64 => Self::U64,
            Type::S32 => Self::S32,
            Type::S64 => Self::S64,
            Type::Bool => Self::Bool,
            Type::Float64 => Self::F64,
            _ => return None,
        })
    }
}

/// A result with a fast path (`None`: the function returns nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    None,
    U32,
    U64,
    S32,
    S64,
    Bool,
    F64,
    String,
    /// `list<u8>`
    Bytes,
    /// `option<string>`
    OptionString,
    /// `result<_, string>`
    UnitOrError,
    /// `result<string, string>`
    StringOrError,
    /// `result<list<u8>, string>`
    BytesOrError,
    /// `result<u32, string>`
    U32OrError,
    /// `result<u64, string>`
    U64OrError,
}

impl Ret {
    fn of(ty: &Type) -> Option<Self> {
        Some(match ty {
            Type::U32 => Self::U32,
            Type::U64 => Self::U64,
            Type::S32 => Self::S32,
            Type::S64 => Self::S64,
            Type::Bool => Self::Bool,
            Type::Float64 => Self::F64,
            Type::String => Self::String,
            Type::List(l) if l.ty() == Type::U8 => Self::Bytes,
            Type::Option(o) if o.ty() == Type::String => Self::OptionString,
            Type::Result(r) if r.err() == Some(Type::String) => match r.ok() {
                None => Self::UnitOrError,
                Some(Type::String) => Self::StringOrError,
                Some(Type::List(l)) if l.ty() == Type::U8 => Self::BytesOrError,
                Some(Type::U32) => Self::U32OrError,
                Some(Type::U64) => Self::U64OrError,
                Some(_) => return None,
            },
            _ => return None,
        })
    }
}

/// A function type with a fast path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Shape {
    params: Vec<Param>,
    result: Ret,
}

impl Shape {
    /// The function's shape, if it has a fast path.
    fn of(ty: &ComponentFunc) -> Option<Self> {
        let params = ty
            .params()
            .map(|(_, t)| Param::of(&t))
            .collect::<Option<Vec<_>>>()?;
        let mut results = ty.results();
        let result = match (results.next(), results.next()) {
            (None, _) => Ret::None,
            (Some(t), None) => Ret::of(&t)?,
            (Some(_), Some(_)) => return None,
        };
        (params.len() <= 2).then_some(Self { params, result })
    }
}

/// Runs `$body` with the type alias `$R` naming the [`FastRet`] for `$ret`.
macro_rules! with_ret {
    ($ret:expr, $R:ident => $body:expr) => {
        match $ret {
            Ret::None => {
                type $R = ();
                $body
            }
            Ret::U32 => {
                type $R = One<u32>;
                $body
            }
            Ret::U64 => {
                type $R = One<u64>;
                $body
            }
            Ret::S32 => {
                type $R = One<i32>;
                $body
            }
            Ret::S64 => {
                type $R = One<i64>;
                $body
            }
            Ret::Bool => {
                type $R = One<bool>;
                $body
            }
            Ret::F64 => {
                type $R = One<f64>;
                $body
            }
            Ret::String => {
                type $R = One<String>;
                $body
            }
            Ret::Bytes => {
                type $R = One<Vec<u8>>;
                $body
            }
            Ret::OptionString => {
                type $R = One<Option<String>>;
                $body
            }
            Ret::UnitOrError => {
                type $R = OrError<()>;
                $body
            }
            Ret::StringOrError => {
                type $R = OrError<String>;
                $body
            }
            Ret::BytesOrError => {
                type $R = OrError<Vec<u8>>;
                $body
            }
            Ret::U32OrError => {
                type $R = OrError<u32>;
                $body
            }
            Ret::U64OrError => {
                type $R = OrError<u64>;
                $body
            }
        }
    };
}

/// Runs `$body` with the type alias `$P` naming the [`FastParam`] for `$param`.
macro_rules! with_param {
    ($param:expr, $P:ident => $body:expr) => {
        match $param {
            Param::String => {
                type $P = Str;
                $body
            }
            Param::Bytes => {
                type $P = Bytes;
                $body
            }
            Param::U32 => {
                type $P = Scalar<u32>;
                $body
            }
            Param::U64 => {
                type $P = Scalar<u64>;
                $body
            }
            Param::S32 => {
                type $P = Scalar<i32>;
                $body
            }
            Param::S64 => {
                type $P = Scalar<i64>;
                $body
            }
            Param::Bool => {
                type $P = Scalar<bool>;
                $body
            }
            Param::F64 => {
                type $P = Scalar<f64>;
                $body
            }
        }
    };
}

/// Links a typed trampoline for `name` if its type is a shape with a fast path;
/// returns whether it did.
pub(crate) fn link_typed(
    instance: &mut LinkerInstance<'_, NanoState>,
    name: &str,
    ty: &ComponentFunc,
    route: &Route,
) -> wasmtime::Result<bool> {
    let Some(shape) = Shape::of(ty) else {
        return Ok(false);
    };
    let result = shape.result;
    match shape.params[..] {
        [] => with_ret!(result, R => link0::<R>(instance, name, route)),
        [a] => with_param!(a, A => with_ret!(result, R => link1::<A, R>(instance, name, route))),
        [a, b] => {
            with_param!(a, A => with_param!(b, B => with_ret!(result, R => link2::<A, B, R>(instance, name, route))))
        }
        _ => unreachable!("Shape::of admits at most two parameters"),
    }?;
    Ok(true)
}

/// How one parameter crosses: as the parent's host function receives it, as it is
/// read from the parent's memory, and as the child's typed function takes it.
trait FastParam: 'static {
    /// What the host function receives: for strings and lists, a pointer and a
    /// length into the parent's memory, nothing copied yet.
    type Host: ComponentType + Lift + 'static;
    /// The value read in place from the parent's memory.
    type Read<'a>;
    /// What the child's function is called with.
    type Child<'b>: ComponentType + Lower;
    fn read<'a>(
        host: &Self::Host,
        cx: &'a StoreContextMut<'_, NanoState>,
    ) -> wasmtime::Result<Self::Read<'a>>;
    fn child<'b>(read: &'b Self::Read<'_>) -> Self::Child<'b>;
}

/// `string`: validated in the parent's memory and lowered from there into the
/// child's (one copy).
struct Str;

impl FastParam for Str {
    type Host = WasmStr;
    type Read<'a> = Cow<'a, str>;
    type Child<'b> = &'b str;
    fn read<'a>(
        host: &WasmStr,
        cx: &'a StoreContextMut<'_, NanoState>,
    ) -> wasmtime::Result<Cow<'a, str>> {
        host.to_str(cx)
    }
    fn child<'b>(read: &'b Cow<'_, str>) -> &'b str {
        read
    }
}

/// `list<u8>`: lowered from the parent's memory into the child's (one copy).
struct Bytes;

impl FastParam for Bytes {
    type Host = WasmList<u8>;
    type Read<'a> = &'a [u8];
    type Child<'b> = &'b [u8];
    fn read<'a>(
        host: &WasmList<u8>,
        cx: &'a StoreContextMut<'_, NanoState>,
    ) -> wasmtime::Result<&'a [u8]> {
        Ok(host.as_le_slice(cx))
    }
    fn child<'b>(read: &'b &[u8]) -> &'b [u8] {
        read
    }
}

/// A number or a `bool`, passed by value.
struct Scalar<T>(PhantomData<T>);

impl<T: ComponentType + Lift + Lower + Copy + 'static> FastParam for Scalar<T> {
    type Host = T;
    type Read<'a> = T;
    type Child<'b> = T;
    fn read(host: &T, _: &StoreContextMut<'_, NanoState>) -> wasmtime::Result<T> {
        Ok(*host)
    }
    fn child(read: &T) -> T {
        *read
    }
}

/// How a function's result crosses back (lifted from the child's memory, lowered
/// into the parent's), and what the parent gets when the child failed.
trait FastRet: 'static {
    /// The function's results, as a tuple.
    type List: ComponentNamedList + Lift + Lower + Payload + 'static;
    /// The parent's result when the child failed under `on-failure = "error"`: an
    /// `err` where the function has a string error, else the failure as a trap.
    fn failed(failure: ChildFailed) -> wasmtime::Result<Self::List>;
}

/// No result.
impl FastRet for () {
    type List = ();
    fn failed(failure: ChildFailed) -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(failure))
    }
}

/// One result without an error channel.
struct One<T>(PhantomData<T>);

impl<T: ComponentType + Lift + Lower + Payload + 'static> FastRet for One<T> {
    type List = (T,);
    fn failed(failure: ChildFailed) -> wasmtime::Result<(T,)> {
        Err(wasmtime::Error::new(failure))
    }
}

/// `result<T, string>`: a failure of the child can be handed over as an `err`.
struct OrError<T>(PhantomData<T>);

impl<T: ComponentType + Lift + Lower + Payload + 'static> FastRet for OrError<T> {
    type List = (Result<T, String>,);
    fn failed(failure: ChildFailed) -> wasmtime::Result<(Result<T, String>,)> {
        Ok((Err(failure.to_string()),))
    }
}

/// What lowering a result allocates in the parent's memory (see
/// [`crate::trampoline::payload`]), for the result types of the fast paths.
trait Payload {
    fn payload(&self) -> u64;
}

macro_rules! no_payload {
    ($($t:ty),*) => { $(impl Payload for $t { fn payload(&self) -> u64 { 0 } })* };
}
no_payload!((), u32, u64, i32, i64, bool, f64);

impl Payload for String {
    fn payload(&self) -> u64 {
        crate::lowered::string_cost(self.len())
    }
}

impl Payload for Vec<u8> {
    fn payload(&self) -> u64 {
        crate::lowered::list_cost(self.len(), 1)
    }
}

impl<T: Payload> Payload for Option<T> {
    fn payload(&self) -> u64 {
        self.as_ref().map_or(0, T::payload)
    }
}

impl<T: Payload, E: Payload> Payload for Result<T, E> {
    fn payload(&self) -> u64 {
        match self {
            Ok(v) => v.payload(),
            Err(e) => e.payload(),
        }
    }
}

impl<T: Payload> Payload for (T,) {
    fn payload(&self) -> u64 {
        self.0.payload()
    }
}

/// The body of one call into a child: reads the parent's arguments, calls the
/// child and stores the result where the host function finds it.
type Body<'a> =
    dyn FnMut(&mut StoreContextMut<'_, NanoState>, &mut Live, Func) -> wasmtime::Result<()> + 'a;

/// [`call_child`] with a body behind a `dyn`: one copy of it (and of the
/// per-call machinery under it) serves every shape, instead of one per shape.
fn call(
    cx: &mut StoreContextMut<'_, NanoState>,
    route: &Route,
    body: &mut Body<'_>,
) -> Result<(), CallError> {
    call_child(cx, route, body)
}

/// Defines `$name::<$P..., R>`, which links a typed trampoline for a function with
/// these parameters and result.
macro_rules! link_arity {
    ($name:ident($($P:ident $p:ident),*)) => {
        fn $name<$($P: FastParam,)* R: FastRet>(
            instance: &mut LinkerInstance<'_, NanoState>,
            name: &str,
            route: &Route,
        ) -> wasmtime::Result<()> {
            let route = route.clone();
            instance.func_wrap(name, move |mut cx, ($($p,)*): ($($P::Host,)*)| {
                let mut out = None;
                let outcome = call(&mut cx, &route, &mut |cx, live, func| {
                    let _ = &cx; // a function without parameters reads nothing
                    // An argument the parent's memory does not hold validly (a
                    // string that is not UTF-8) is the parent's fault: its call
                    // traps, and the child, which has not been called, is not
                    // blamed (an error returned from here would be its failure).
                    $(
                        let $p = match $P::read(&$p, cx) {
                            Ok(v) => v,
                            Err(e) => {
                                out = Some(Err(e));
                                return Ok(());
                            }
                        };
                    )*
                    // SAFETY: `TypedFunc` must be given the function's exact
                    // type. `func` is the child's export of the function this
                    // route names, and `plan` wires a parent to a child only
                    // after checking that every function of the child's export
                    // has the same type as the parent's import
                    // (`interfaces::funcs_equal`; the shapes here have no
                    // resources, so that is plain structural equality). These
                    // Rust types are those of the parent's import: `instantiate_pre`
                    // type-checks the host function (`Host`, `R::List`) against it
                    // before the parent can run, `Child` is the same WIT type as
                    // `Host` (`&str`/`WasmStr`, `&[u8]`/`WasmList<u8>`, a scalar
                    // itself), and `R::List` is the result on both sides.
                    let typed = unsafe {
                        TypedFunc::<($($P::Child<'_>,)*), R::List>::new_unchecked(func)
                    };
                    let result = typed.call(&mut live.store, ($($P::child(&$p),)*))?;
                    crate::trampoline::result_fits(cx.data(), result.payload())?;
                    out = Some(Ok(result));
                    Ok(())
                });
                match outcome {
                    Ok(()) => out.expect("the call's body ran"),
                    Err(CallError::Child(failure)) => R::failed(failure),
                    Err(CallError::Trap(e)) => Err(e),
                }
            })
        }
    };
}

link_arity!(link0());
link_arity!(link1(A a));
link_arity!(link2(A a, B b));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trampoline::forward;
    use wasmtime::Engine;
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Linker};

    /// The functions of the interface `iface` that `component` imports.
    fn imported_funcs(
        engine: &Engine,
        component: &Component,
        iface: &str,
    ) -> Vec<(String, ComponentFunc)> {
        let ty = component.component_type();
        let (_, import) = ty
            .imports(engine)
            .find(|(name, _)| *name == iface)
            .unwrap_or_else(|| panic!("no import {iface}"));
        let ComponentItem::ComponentInstance(inst) = import.ty else {
            panic!("{iface} is not an instance");
        };
        inst.exports(engine)
            .filter_map(|(name, item)| match item.ty {
                ComponentItem::ComponentFunc(f) => Some((name.to_string(), f)),
                _ => None,
            })
            .collect()
    }

    /// Links every function of `iface` as `plan` does (a fast path where there is
    /// one, else the generic trampoline), stubs the other imports, and type-checks
    /// the result against the component: wasmtime refuses a typed host function
    /// whose Rust types do not match the import. Returns the functions that got a
    /// fast path.
    fn link_like_plan(engine: &Engine, component: &Component, iface: &str) -> Vec<String> {
        let mut linker = Linker::<NanoState>::new(engine);
        let mut fast = Vec::new();
        let mut instance = linker.instance(iface).unwrap();
        for (index, (name, ty)) in imported_funcs(engine, component, iface)
            .into_iter()
            .enumerate()
        {
            let route = Route {
                slot: 0,
                func: index,
                name: format!("{iface}#{name}"),
                string_error: crate::interfaces::has_string_error(&ty),
                handles: None,
            };
            if link_typed(&mut instance, &name, &ty, &route).unwrap() {
                fast.push(name);
            } else {
                instance
                    .func_new(&name, move |cx, _ty, params, results| {
                        forward(cx, &route, params, results)
                    })
                    .unwrap();
            }
        }
        linker.define_unknown_imports_as_traps(component).unwrap();
        if let Err(e) = linker.instantiate_pre(component) {
            panic!("the trampolines do not type-check: {e:#}");
        }
        fast
    }

    #[test]
    fn the_real_guests_functions_are_classified_and_their_fast_paths_type_check() {
        let engine = crate::engine::new_engine(crate::engine::EngineChoice {
            fuel: false,
            epochs: true,
            pool: None,
        })
        .unwrap();
        let component = Component::from_file(&engine, xtask::guest("types_parent")).unwrap();
        let shapes: Vec<(String, Option<Shape>)> =
            imported_funcs(&engine, &component, "test:types/echo")
                .into_iter()
                .map(|(name, ty)| (name, Shape::of(&ty)))
                .collect();
        let shape = |params: &[Param], result| {
            Some(Shape {
                params: params.to_vec(),
                result,
            })
        };
        let expected = [
            ("noop", shape(&[], Ret::None)),
            ("add", shape(&[Param::U32, Param::U32], Ret::U32)),
            ("echo-string", shape(&[Param::String], Ret::String)),
            ("echo-bytes", shape(&[Param::Bytes], Ret::Bytes)),
            // A record with everything in it.
            ("echo-outer", None),
            // `option<string>` is a result with a fast path, not a parameter.
            ("maybe", None),
            // `result<string, color>`: not a string error.
            ("fallible", None),
            ("crash", shape(&[Param::String], Ret::U32OrError)),
            ("crash-hard", shape(&[Param::String], Ret::U32)),
            ("calls", shape(&[], Ret::U64)),
        ];
        for (name, want) in &expected {
            let got = shapes
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("types_parent does not import `{name}`"));
            assert_eq!(&got.1, want, "{name}");
        }
        assert_eq!(shapes.len(), expected.len(), "{shapes:?}");

        let fast = link_like_plan(&engine, &component, "test:types/echo");
        let want: Vec<&str> = expected
            .iter()
            .filter(|(_, s)| s.is_some())
            .map(|(n, _)| *n)
            .collect();
        assert_eq!(fast, want);
    }

    /// Each parameter kind, its WIT type and its flattened core wasm types.
    const PARAMS: [(Param, &str, &[u8]); 8] = [
        (Param::String, "string", &[I32, I32]),
        (Param::Bytes, "list<u8>", &[I32, I32]),
        (Param::U32, "u32", &[I32]),
        (Param::U64, "u64", &[I64]),
        (Param::S32, "s32", &[I32]),
        (Param::S64, "s64", &[I64]),
        (Param::Bool, "bool", &[I32]),
        (Param::F64, "f64", &[F64]),
    ];

    /// Each result kind, its WIT type and its core wasm result (`None`: returned
    /// through a pointer passed as a last parameter).
    const RETS: [(Ret, &str, Option<&[u8]>); 15] = [
        (Ret::None, "", Some(&[])),
        (Ret::U32, "u32", Some(&[I32])),
        (Ret::U64, "u64", Some(&[I64])),
        (Ret::S32, "s32", Some(&[I32])),
        (Ret::S64, "s64", Some(&[I64])),
        (Ret::Bool, "bool", Some(&[I32])),
        (Ret::F64, "f64", Some(&[F64])),
        (Ret::String, "string", None),
        (Ret::Bytes, "list<u8>", None),
        (Ret::OptionString, "option<string>", None),
        (Ret::UnitOrError, "result<_, string>", None),
        (Ret::StringOrError, "result<string, string>", None),
        (Ret::BytesOrError, "result<list<u8>, string>", None),
        (Ret::U32OrError, "result<u32, string>", None),
        (Ret::U64OrError, "result<u64, string>", None),
    ];

    const I32: u8 = 0x7f;
    const I64: u8 = 0x7e;
    const F32: u8 = 0x7d;
    const F64: u8 = 0x7c;

    /// One imported function of the synthetic component.
    struct Import {
        name: String,
        wit: String,
        core_params: Vec<u8>,
        core_results: Vec<u8>,
        shape: Option<Shape>,
    }

    #[test]
    fn every_shape_is_classified_and_type_checks_against_its_wit_type() {
        // Every covered shape: 0..=2 parameters of each kind times each result.
        let mut lists: Vec<Vec<usize>> = vec![vec![]];
        lists.extend((0..PARAMS.len()).map(|a| vec![a]));
        lists.extend((0..PARAMS.len()).flat_map(|a| (0..PARAMS.len()).map(move |b| vec![a, b])));
        let mut imports = Vec::new();
        for list in &lists {
            for (ret, ret_wit, core_ret) in RETS {
                let params: Vec<String> = list
                    .iter()
                    .enumerate()
                    .map(|(i, &p)| format!("p{i}: {}", PARAMS[p].1))
                    .collect();
                let arrow = if ret_wit.is_empty() {
                    String::new()
                } else {
                    format!(" -> {ret_wit}")
                };
                let mut core_params: Vec<u8> =
                    list.iter().flat_map(|&p| PARAMS[p].2.to_vec()).collect();
                let core_results = match core_ret {
                    Some(r) => r.to_vec(),
                    None => {
                        core_params.push(I32);
                        Vec::new()
                    }
                };
                imports.push(Import {
                    name: format!("shape{}", imports.len()),
                    wit: format!("func({}){arrow}", params.join(", ")),
                    core_params,
                    core_results,
                    shape: Some(Shape {
                        params: list.iter().map(|&p| PARAMS[p].0).collect(),
                        result: ret,
                    }),
                });
            }
        }
        assert_eq!(imports.len(), (1 + 8 + 64) * 15);
        // And some that take the generic path.
        for (wit, params, results) in [
            (
                "func(a: u32, b: u32, c: u32)",
                &[I32, I32, I32][..],
                &[][..],
            ),
            (
                "func(a: string, b: string, c: string) -> string",
                &[I32, I32, I32, I32, I32, I32, I32],
                &[],
            ),
            ("func(a: list<u32>) -> list<u32>", &[I32, I32, I32], &[]),
            ("func(a: option<string>)", &[I32, I32, I32], &[]),
            ("func(a: f32) -> f32", &[F32], &[F32]),
            ("func(a: u8) -> u16", &[I32], &[I32]),
            ("func() -> tuple<u32, u32>", &[I32], &[]),
            ("func() -> result<string, u32>", &[I32], &[]),
            ("func() -> result<string>", &[I32], &[]),
            ("func() -> option<u32>", &[I32], &[]),
        ] {
            imports.push(Import {
                name: format!("other{}", imports.len()),
                wit: wit.to_string(),
                core_params: params.to_vec(),
                core_results: results.to_vec(),
                shape: None,
            });
        }

        let engine = crate::engine::new_engine(crate::engine::EngineChoice {
            fuel: false,
            epochs: true,
            pool: None,
        })
        .unwrap();
        let component = Component::new(&engine, synthetic_component(&imports)).unwrap();
        let iface = "nanoproc-test:fast/shapes";
        let funcs = imported_funcs(&engine, &component, iface);
        assert_eq!(funcs.len(), imports.len());
        for import in &imports {
            let (_, ty) = funcs.iter().find(|(n, _)| *n == import.name).unwrap();
            assert_eq!(
                Shape::of(ty),
                import.shape,
                "{}: {}",
                import.name,
                import.wit
            );
        }
        let fast = link_like_plan(&engine, &component, iface);
        let want: Vec<&str> = imports
            .iter()
            .filter(|i| i.shape.is_some())
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(fast, want);
    }

    /// A component that imports `imports` as the interface
    /// `nanoproc-test:fast/shapes` and does nothing with them: a hand-made core
    /// module with the canonical ABI's signatures, made a component by
    /// wit-component.
    fn synthetic_component(imports: &[Import]) -> Vec<u8> {
        let funcs: String = imports
            .iter()
            .map(|i| format!("  {}: {};\n", i.name, i.wit))
            .collect();
        let wit = format!(
            "package nanoproc-test:fast;\ninterface shapes {{\n{funcs}}}\nworld importer {{ import shapes; }}\n"
        );
        // wit-parser is not a dependency of this crate, but decoding any component
        // yields a `Resolve` to add the package to.
        let child = std::fs::read(xtask::guest("types_child")).unwrap();
        let wit_component::DecodedWasm::Component(mut resolve, _) =
            wit_component::decode(&child).unwrap()
        else {
            panic!("types_child is a component");
        };
        let package = resolve.push_str("fast.wit", &wit).unwrap();
        let world = resolve.select_world(&[package], Some("importer")).unwrap();

        let mut module = core_module(imports);
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
            .validate(true)
            .encode()
            .unwrap()
    }

    /// A core module importing each function with its flattened signature, with a
    /// memory and a `cabi_realloc` (that traps) for strings and lists.
    fn core_module(imports: &[Import]) -> Vec<u8> {
        fn leb(out: &mut Vec<u8>, mut n: usize) {
            loop {
                let byte = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(byte);
                    return;
                }
                out.push(byte | 0x80);
            }
        }
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            leb(out, b.len());
            out.extend_from_slice(b);
        }
        fn section(module: &mut Vec<u8>, id: u8, body: Vec<u8>) {
            module.push(id);
            bytes(module, &body);
        }
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        // Types: one per import, then cabi_realloc's.
        let mut types = Vec::new();
        leb(&mut types, imports.len() + 1);
        for i in imports {
            types.push(0x60);
            bytes(&mut types, &i.core_params);
            bytes(&mut types, &i.core_results);
        }
        types.extend([0x60, 4, I32, I32, I32, I32, 1, I32]);
        section(&mut module, 1, types);
        let mut import_section = Vec::new();
        leb(&mut import_section, imports.len());
        for (index, i) in imports.iter().enumerate() {
            bytes(&mut import_section, b"nanoproc-test:fast/shapes");
            bytes(&mut import_section, i.name.as_bytes());
            import_section.push(0x00);
            leb(&mut import_section, index);
        }
        section(&mut module, 2, import_section);
        let mut functions = vec![1];
        leb(&mut functions, imports.len());
        section(&mut module, 3, functions);
        section(&mut module, 5, vec![1, 0x00, 1]);
        let mut exports = vec![2];
        bytes(&mut exports, b"memory");
        exports.extend([0x02, 0]);
        bytes(&mut exports, b"cabi_realloc");
        exports.push(0x00);
        leb(&mut exports, imports.len());
        section(&mut module, 7, exports);
        // One body: no locals, `unreachable`, `end`.
        section(&mut module, 10, vec![1, 3, 0, 0x00, 0x0b]);
        module
    }
}
