//! The fast path of calls between nanoprocesses: a typed path for calls of a few
//! numbers, keyed by the parameter count only, and a handful of generic
//! trampolines that move `string`, `list<u8>` and number arguments and results in
//! bulk, whatever the function's signature.
//!
//! **Why a fast path.** The generic trampoline ([`crate::trampoline::forward`],
//! linked with `func_new`) works for every WIT signature, but it pays per value:
//! wasmtime lifts every argument into a tree of `Val`s and lowers it again into the
//! child, and a `list<u8>` becomes one `Val::U8` per byte (wasmtime 50 still lowers
//! `Val` lists element by element, wasmtime issue #13788): about 40 ns per byte, 42
//! ms to pass 1 MiB where one copy takes a quarter of a millisecond.
//!
//! **Calls of numbers** (at most [`MAX_SCALAR_PARAMS`] = 4 parameters, each any
//! number type, `bool` or `char`; no result or one such) take a typed path,
//! [`link_scalar`]: the parent's import is a `func_wrap` whose parameters are a
//! tuple of [`Num`]s, and the child's export is called through a `TypedFunc` of the
//! same tuple. A `Num` is one flat value in a `ValRaw`, whatever its WIT type:
//! wasmtime passes every flat value in a `ValRaw` slot and only the core type says
//! which bits to read, so one Rust type serves all twelve number types, and
//! `Num::typecheck` (run by wasmtime when the parent is linked, `instantiate_pre`,
//! and in the unit tests against the child's side) accepts exactly those. It lifts
//! with wasmtime's own `Lift` for the actual type ([`lift_number`], one `match`:
//! the `u8` masked, the `char` validated, as wasmtime does) and lowers the value
//! unchanged. The numbers stay in registers and `ValRaw` slots from one store to
//! the other, with no `Option<Arg>` arrays, no walk of the type's tuple and no
//! [`Out`] in between: the code is the per-signature code this module had before,
//! with the types erased. It is instantiated per parameter count and result (5 x
//! 2), not per signature.
//!
//! **Everything else with a fast path** crosses in three steps, each of them one
//! piece of code for every signature, driven by the function's canonical ABI types
//! at run time:
//!
//! 1. The parent's import is a `func_wrap` host function whose parameter type is
//!    [`Args<N>`]: the `N` flat core values of the call, lifted one parameter at a
//!    time by wasmtime's own implementations (`WasmStr`, `WasmList<u8>`, `u32`,
//!    ...): a string or byte list stays a bounds-checked view into the parent's
//!    memory, nothing is copied.
//! 2. Inside [`call_child`] (the take-child step, the refusal of re-entrant calls,
//!    per-call fuel and deadline, failure classification, restarts: all unchanged),
//!    the views are read in place (`to_str` validates the parent's string encoding)
//!    and handed to the child's function as [`ChildArgs`], whose lowering calls
//!    wasmtime's `&str` / `&[u8]` / number lowerings: one allocation in the child by
//!    its `cabi_realloc`, one memcpy, never a `Val`.
//! 3. The child's result is lifted as an [`Out`] (`String`, `Vec<u8>`,
//!    `Result<String, String>`, ...: wasmtime's bulk lifts), checked against what
//!    the parent may still allocate ([`crate::trampoline::result_fits`]) and
//!    lowered into the parent by [`HostOut`]. A `string` or `list<u8>` result is
//!    copied twice (out of the child, into the parent): the child's result memory
//!    is freed by its `post-return` before the parent can take it.
//!
//! Only the number of flat parameters (`N`, 0 to 16, the canonical ABI's limit for
//! flat parameters) and the class of the result (none or one flat value; or in
//! memory, by size and alignment) are types; everything else is a `match` on the
//! types at call time, a few nanoseconds. [`Args<N>`] and [`HostOut<F>`] type-check
//! themselves against the import when the parent is linked (`instantiate_pre`),
//! which is what makes the untyped-looking `func_wrap` safe.
//!
//! **Covered**: by the typed scalar path, functions of 0 to 4 numbers (`bool`,
//! `u8`..`u64`, `s8`..`s64`, `f32`, `f64`, `char`, in any mix) with no result or
//! one number. By the generic trampolines, any number of parameters (up to 16
//! flat values: 8 strings, 16 numbers) of `string`, `list<u8>` and those numbers;
//! and no result or one of those numbers, `string`, `list<u8>`, `option<string>`,
//! `result<_, string>`, `result<string, string>`, `result<list<u8>, string>`,
//! `result<u32, string>`, `result<u64, string>`. Adding a parameter type is one
//! arm of a `match`; a result type, one arm and perhaps one result class. Raising
//! [`MAX_SCALAR_PARAMS`] is one line of `link_scalar_arity!` and two arms of
//! [`link_scalar`] per count.
//!
//! **Everything else** (records, variants, other lists and options, several
//! results, functions passing handles, more than 16 flat parameters) takes the
//! generic `Val` path, which is correct for every type, only slower.
//!
//! **What it costs to build**: 5 x 2 `func_wrap` and `TypedFunc` instantiations
//! for the scalar path (parameter counts by result: none or a number), 17 x 2
//! `func_wrap` instantiations for the generic trampolines (flat parameter counts
//! by host result classes) and 7 `TypedFunc` ones (result classes, with and
//! without parameters); none of it grows with the number of signatures (the
//! per-signature code before had one of each for each of 1,095 signatures).
//! Measured after main's families restructure (release, wasmtime 50, 2 shared and
//! busy cores, `cargo build --release -p nanoproc-cli --timings`): the crate
//! compiles in 38-39 s (37-43 s without the scalar path; 154 s with the
//! per-signature code), and the `nanoproc` binary is 35.37 MB (35.26 MB without
//! the scalar path; 47.95 MB per-signature).
//!
//! **What it costs per call** (median ns per call, the three builds interleaved,
//! quietest run; per-signature / generic only / with the scalar path): no-op
//! 165 / 191 / 167, `add(u32, u32) -> u32` 190 / 267 / 199, 16-byte string echo
//! ~470 / ~490 (the same code for both of the last two), 1 KiB echo ~640 / ~650,
//! 1 MiB `list<u8>` sum equal (~415 us). `cargo bench --bench calls` in the same
//! state: the two raw crossings (e) host -> guest 83.5 ns and (f) guest -> host
//! 76.4 ns, the no-op 170 ns: 1.06x their sum (the generic trampoline's no-op was
//! 1.19-1.25x). Across five interleaved runs on the busy machine, by the fastest
//! of each build's runs: the scalar path's no-op is no slower than the
//! per-signature code's (162-168 against 163-177 ns) and its `add` 5-13% slower
//! (198-209 against 184-191 ns): the `match` on the type of each number and less
//! inlining (wasmtime's
//! `load_params` and the tuple's lift stay calls); `#[inline(always)]` on
//! `Num`'s lift and `lift_number` did not measurably help. On the generic
//! path the strings and byte lists pay the same copies as the per-signature code
//! (one into the child, a result twice) plus a few tens of ns of dispatch on
//! types and values moved through memory; bulk data is as fast. Two traps that
//! cost far more and are avoided on the generic path: a Rust enum of numbers (its
//! packed layout made LLVM reload fields with wider loads than it stored them, a
//! store-forwarding stall on every call: numbers cross as their flat `ValRaw`),
//! and 16-slot argument arrays for every call (they are sized by `N`).
//!
//! **What it relies on**: wasmtime's `ComponentType`, `Lift` and `Lower` traits are
//! public but their items are `#[doc(hidden)]` (they exist for `bindgen!`'s derived
//! types) and outside wasmtime's stability guarantees; wasmtime is pinned to one
//! version in the workspace, and the unit tests below check every covered shape
//! against wasmtime's type check, on both sides of a call. The scalar path relies
//! besides on: a host function's flat parameters and a `TypedFunc`'s being
//! `ValRaw` slots read by core type (`Lower` is a sequence of `ValRaw`, and
//! `func/typed.rs` sizes a call's storage from it: `flatten_count`); wasmtime
//! deciding between flat and in-memory values by that count (or, for a host
//! function, by the import's type), so that `Num::ABI` is never used for a value
//! in memory; and the tuple impls of `func/typed.rs` calling each element's
//! `typecheck`, `Lift` and `Lower` with the element's own type.

use crate::error::ChildFailed;
use crate::state::NanoState;
use crate::trampoline::{CallError, Live, Route, call_child};
use std::borrow::Cow;
use std::mem::MaybeUninit;
use std::sync::Arc;
use wasmtime::component::__internal::{
    CanonicalAbiInfo, ComponentTypes, InstanceType, InterfaceType, LiftContext, LowerContext,
};
use wasmtime::component::types::{ComponentFunc, Type};
use wasmtime::component::{
    ComponentNamedList, ComponentType, Func, Lift, LinkerInstance, Lower, TypedFunc, WasmList,
    WasmStr,
};
use wasmtime::{StoreContextMut, ValRaw};

/// The canonical ABI's limit on flat parameters: a function with more passes them
/// in memory, and takes the generic path here.
const MAX_FLAT_PARAMS: usize = 16;

/// Defines [`Scalar`] (a number type) and [`lift_number`].
macro_rules! numbers {
    ($($variant:ident($t:ty) = $ty:ident, $raw:expr;)*) => {
        /// A number type (or `bool`, `char`): one flat core value.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Scalar { $($variant,)* }

        impl Scalar {
            fn of(ty: &Type) -> Option<Self> {
                match ty {
                    $(Type::$ty => Some(Self::$variant),)*
                    _ => None,
                }
            }

            fn of_interface(ty: &InterfaceType) -> Option<Self> {
                match ty {
                    $(InterfaceType::$ty => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        /// Lifts the flat value `src` of the number type `ty` as wasmtime does (a
        /// `bool` is any non-zero value, a `u8` the low byte, a `char` is
        /// validated...) and returns it as wasmtime lowers it again: the flat value
        /// the other side receives. A number crosses as this `ValRaw`, never as a
        /// Rust enum of numbers (whose packed layout made LLVM stall on every call).
        #[inline]
        fn lift_number(
            cx: &mut LiftContext<'_>,
            ty: InterfaceType,
            src: &ValRaw,
        ) -> wasmtime::Result<ValRaw> {
            match ty {
                $(InterfaceType::$ty => {
                    let v: $t = Lift::linear_lift_from_flat(cx, ty, src)?;
                    Ok($raw(v))
                })*
                _ => Err(mismatch()),
            }
        }
    };
}

// Each number type, its Rust type, and its flat value as wasmtime's `Lower` for
// that type writes it (`func/typed.rs`: `integers!`, `floats!`, `bool`, `char`).
numbers! {
    Bool(bool) = Bool, |v: bool| ValRaw::i32(i32::from(v));
    U8(u8) = U8, |v: u8| ValRaw::u32(u32::from(v));
    S8(i8) = S8, |v: i8| ValRaw::i32(i32::from(v));
    U16(u16) = U16, |v: u16| ValRaw::u32(u32::from(v));
    S16(i16) = S16, |v: i16| ValRaw::i32(i32::from(v));
    U32(u32) = U32, ValRaw::u32;
    S32(i32) = S32, ValRaw::i32;
    U64(u64) = U64, ValRaw::u64;
    S64(i64) = S64, ValRaw::i64;
    F32(f32) = Float32, |v: f32| ValRaw::f32(v.to_bits());
    F64(f64) = Float64, |v: f64| ValRaw::f64(v.to_bits());
    Char(char) = Char, |v: char| ValRaw::u32(u32::from(v));
}

/// Writes the number `raw` (from [`lift_number`], for the same number type: the two
/// sides' types are equal, which `plan` checks) as a value of type `ty`.
#[inline]
fn lower_number(
    raw: ValRaw,
    ty: &InterfaceType,
    dst: &mut MaybeUninit<ValRaw>,
) -> wasmtime::Result<()> {
    if Scalar::of_interface(ty).is_none() {
        return Err(mismatch());
    }
    dst.write(raw);
    Ok(())
}

/// Types that disagree with what the link checked: unreachable unless the parent's
/// import and the child's export differ, which `plan` rules out.
fn mismatch() -> wasmtime::Error {
    wasmtime::Error::msg("nanoproc fast path: a value does not have the type it was linked for")
}

/// A parameter type with a fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    Scalar(Scalar),
    String,
    /// `list<u8>`
    Bytes,
}

impl Param {
    fn of(ty: &Type) -> Option<Self> {
        Some(match ty {
            Type::String => Self::String,
            Type::List(l) if l.ty() == Type::U8 => Self::Bytes,
            other => Self::Scalar(Scalar::of(other)?),
        })
    }

    /// Its flat core values.
    fn flat(self) -> usize {
        match self {
            Self::Scalar(_) => 1,
            Self::String | Self::Bytes => 2,
        }
    }
}

/// How many flat values a parameter list `ty` lowers to, if every parameter has
/// a fast path: what both argument types check their function against.
fn params_flat(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<usize> {
    let InterfaceType::Tuple(t) = ty else {
        wasmtime::bail!("expected a parameter list");
    };
    let mut flat = 0;
    for param in types.types[*t].types.iter() {
        flat += param_flat(types.types, param)
            .ok_or_else(|| wasmtime::format_err!("a parameter has no fast path"))?;
    }
    Ok(flat)
}

/// The flat core values of a parameter of type `ty`, if it has a fast path.
fn param_flat(types: &ComponentTypes, ty: &InterfaceType) -> Option<usize> {
    match ty {
        InterfaceType::String => Some(2),
        InterfaceType::List(l) if types[*l].element == InterfaceType::U8 => Some(2),
        other => Scalar::of_interface(other).map(|_| 1),
    }
}

/// A result with a fast path (`None`: the function returns nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    None,
    Scalar(Scalar),
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
            other => Self::Scalar(Scalar::of(other)?),
        })
    }

    /// [`Ret::of`] for wasmtime's view of the type, as lifting and lowering see it.
    fn of_interface(types: &ComponentTypes, ty: &InterfaceType) -> Option<Self> {
        let bytes = |ty: &InterfaceType| match ty {
            InterfaceType::List(l) => types[*l].element == InterfaceType::U8,
            _ => false,
        };
        Some(match ty {
            InterfaceType::String => Self::String,
            t if bytes(t) => Self::Bytes,
            InterfaceType::Option(o) if types[*o].ty == InterfaceType::String => Self::OptionString,
            InterfaceType::Result(r) if types[*r].err == Some(InterfaceType::String) => {
                match &types[*r].ok {
                    None => Self::UnitOrError,
                    Some(InterfaceType::String) => Self::StringOrError,
                    Some(t) if bytes(t) => Self::BytesOrError,
                    Some(InterfaceType::U32) => Self::U32OrError,
                    Some(InterfaceType::U64) => Self::U64OrError,
                    Some(_) => return None,
                }
            }
            other => Self::Scalar(Scalar::of_interface(other)?),
        })
    }

    /// The results of a function, given as their tuple: one result or none.
    fn of_results(types: &ComponentTypes, results: &InterfaceType) -> Option<Self> {
        let InterfaceType::Tuple(t) = results else {
            return None;
        };
        match &types[*t].types[..] {
            [] => Some(Self::None),
            [one] => Self::of_interface(types, one),
            _ => None,
        }
    }

    /// How the result comes back from the child (see [`FlatOut`], [`MemOut`]).
    fn class(self) -> Class {
        match self {
            Self::None => Class::Unit,
            Self::Scalar(_) => Class::Flat,
            Self::String | Self::Bytes => Class::Mem8,
            Self::OptionString
            | Self::UnitOrError
            | Self::StringOrError
            | Self::BytesOrError
            | Self::U32OrError => Class::Mem12,
            Self::U64OrError => Class::Mem16,
        }
    }

    /// The flat core values of the result as the parent's import returns it: one
    /// number, or nothing (no result, or a result written to memory).
    fn flat(self) -> usize {
        match self {
            Self::Scalar(_) => 1,
            _ => 0,
        }
    }

    /// What the parent gets when the child failed under `on-failure = "error"`: an
    /// `err` where the function has a string error, else the failure as a trap.
    fn failed(self, failure: ChildFailed) -> wasmtime::Result<Out> {
        let err = failure.to_string();
        Ok(match self {
            Self::UnitOrError => Out::UnitOrError(Err(err)),
            Self::StringOrError => Out::StringOrError(Err(err)),
            Self::BytesOrError => Out::BytesOrError(Err(err)),
            Self::U32OrError => Out::U32OrError(Err(err)),
            Self::U64OrError => Out::U64OrError(Err(err)),
            _ => return Err(wasmtime::Error::new(failure)),
        })
    }
}

/// How a result is laid out by the child's function: wasmtime's `TypedFunc` needs
/// it as a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// No result.
    Unit,
    /// One flat value.
    Flat,
    /// In memory, 8 bytes aligned to 4 (`string`, `list<u8>`).
    Mem8,
    /// In memory, 12 bytes aligned to 4 (an `option` or `result` of those or of
    /// 32-bit numbers).
    Mem12,
    /// In memory, 16 bytes aligned to 8 (`result<u64, string>`).
    Mem16,
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
        let shape = Self { params, result };
        (shape.flat() <= MAX_FLAT_PARAMS).then_some(shape)
    }

    /// Its flat parameters.
    fn flat(&self) -> usize {
        self.params.iter().map(|p| p.flat()).sum()
    }

    /// Whether it takes the typed scalar path ([`link_scalar`]): at most
    /// [`MAX_SCALAR_PARAMS`] numbers, and no result or one number.
    fn is_scalar(&self) -> bool {
        self.params.len() <= MAX_SCALAR_PARAMS
            && self.params.iter().all(|p| matches!(p, Param::Scalar(_)))
            && matches!(self.result, Ret::None | Ret::Scalar(_))
    }
}

/// The most parameters a function of numbers may have to take the typed scalar
/// path: each count is one `func_wrap` and one `TypedFunc` instantiation per result
/// (none, one number).
const MAX_SCALAR_PARAMS: usize = 4;

/// A number of any of the number types (`bool`, `u8`..`u64`, `s8`..`s64`, `f32`,
/// `f64`, `char`) as the typed scalar path passes it: its flat core value, as
/// wasmtime's `Lower` for its type writes it. One Rust type for every number type,
/// so that the typed path is instantiated per parameter *count*, not per
/// signature.
///
/// It is a `ValRaw` because a flat value is one whatever its core type: wasmtime
/// hands host functions their flat parameters, and takes the flat parameters of a
/// `TypedFunc`, as `ValRaw` slots (`Lower` is a sequence of `ValRaw`), and the core
/// type only decides which bits of the slot are read.
#[derive(Clone, Copy)]
struct Num(ValRaw);

// SAFETY: `Lower` is one `ValRaw`, the one flat value of every type `typecheck`
// accepts (the number types). Lifting goes through wasmtime's own `Lift` for the
// actual type (`lift_number`), which reads the slot as that type's core type and
// normalises it as wasmtime does (`u8`: the low byte; `bool`: non-zero; `char`:
// validated); lowering writes that normalised value back, unchanged, into a slot
// of a function whose type is the same (`plan` checks the parent's import and the
// child's export are equal). `ABI` only serves values in memory, which a tuple of
// at most `MAX_SCALAR_PARAMS` parameters or one result never is (wasmtime decides
// that by the flat count, from `Lower`'s size); the memory methods refuse anyway.
unsafe impl ComponentType for Num {
    type Lower = ValRaw;
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::SCALAR8;

    fn typecheck(ty: &InterfaceType, _: &InstanceType<'_>) -> wasmtime::Result<()> {
        match Scalar::of_interface(ty) {
            Some(_) => Ok(()),
            None => wasmtime::bail!("expected a number"),
        }
    }
}

// SAFETY: see `ComponentType`.
unsafe impl Lift for Num {
    #[inline]
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &ValRaw,
    ) -> wasmtime::Result<Self> {
        lift_number(cx, ty, src).map(Self)
    }

    fn linear_lift_from_memory(
        _: &mut LiftContext<'_>,
        _: InterfaceType,
        _: &[u8],
    ) -> wasmtime::Result<Self> {
        Err(mismatch())
    }
}

// SAFETY: see `ComponentType`.
unsafe impl Lower for Num {
    #[inline]
    fn linear_lower_to_flat<T>(
        &self,
        _: &mut LowerContext<'_, T>,
        _: InterfaceType,
        dst: &mut MaybeUninit<ValRaw>,
    ) -> wasmtime::Result<()> {
        dst.write(self.0);
        Ok(())
    }

    fn linear_lower_to_memory<T>(
        &self,
        _: &mut LowerContext<'_, T>,
        _: InterfaceType,
        _: usize,
    ) -> wasmtime::Result<()> {
        Err(mismatch())
    }
}

/// The result of a function on the typed scalar path: `()` or `(Num,)`, the same
/// on both sides of the call.
trait ScalarRet: ComponentNamedList + Lift + Lower + Send + Sync + 'static {}
impl ScalarRet for () {}
impl ScalarRet for (Num,) {}

/// `Num`, once per parameter name (a type for each in `link_scalar_arity!`).
macro_rules! num {
    ($p:ident) => {
        Num
    };
}

/// Defines `$name::<R>`, which links the typed scalar path for functions of
/// `$p...` numbers returning `R`: the parent's import is a `func_wrap` taking
/// them as `Num`s, the child's export is called through a `TypedFunc` of the same
/// tuple. Numbers stay in registers and `ValRaw` slots all the way, as with the
/// per-signature paths this replaced, with one `match` on the type per number
/// (`lift_number`).
macro_rules! link_scalar_arity {
    ($name:ident($($p:ident),*)) => {
        fn $name<R: ScalarRet>(
            instance: &mut LinkerInstance<'_, NanoState>,
            name: &str,
            route: &Route,
        ) -> wasmtime::Result<()> {
            let route = route.clone();
            instance.func_wrap(name, move |mut cx, ($($p,)*): ($(num!($p),)*)| {
                let mut out = None;
                call(&mut cx, &route, &mut |_, live, func| {
                    // SAFETY: `TypedFunc` must be given the function's type, or
                    // types whose lowering and lifting follow it. `func` is the
                    // child's export of the function this route names, and `plan`
                    // wires a parent to a child only after checking that every
                    // function of the child's export has the same type as the
                    // parent's import (`interfaces::funcs_equal`: plain structural
                    // equality, there are no resources here). The parent's import
                    // type-checked against these same Rust types when it was linked
                    // (`instantiate_pre`): this many numbers, and this result.
                    let typed = unsafe { TypedFunc::<($(num!($p),)*), R>::new_unchecked(func) };
                    out = Some(crate::drive::call_typed(&typed, &mut live.store, live.is_async, ($($p,)*))?);
                    Ok(())
                })?;
                // A failed child is a trap here: a number result has no string
                // error to carry it (`CallError` into `wasmtime::Error`).
                Ok(out.expect("the call's body ran"))
            })
        }
    };
}

link_scalar_arity!(link_scalar0());
link_scalar_arity!(link_scalar1(a));
link_scalar_arity!(link_scalar2(a, b));
link_scalar_arity!(link_scalar3(a, b, c));
link_scalar_arity!(link_scalar4(a, b, c, d));

/// Links the typed scalar path for a function whose shape [`Shape::is_scalar`].
fn link_scalar(
    instance: &mut LinkerInstance<'_, NanoState>,
    name: &str,
    route: &Route,
    shape: &Shape,
) -> wasmtime::Result<()> {
    match (shape.params.len(), shape.result) {
        (0, Ret::None) => link_scalar0::<()>(instance, name, route),
        (0, _) => link_scalar0::<(Num,)>(instance, name, route),
        (1, Ret::None) => link_scalar1::<()>(instance, name, route),
        (1, _) => link_scalar1::<(Num,)>(instance, name, route),
        (2, Ret::None) => link_scalar2::<()>(instance, name, route),
        (2, _) => link_scalar2::<(Num,)>(instance, name, route),
        (3, Ret::None) => link_scalar3::<()>(instance, name, route),
        (3, _) => link_scalar3::<(Num,)>(instance, name, route),
        (4, Ret::None) => link_scalar4::<()>(instance, name, route),
        (4, _) => link_scalar4::<(Num,)>(instance, name, route),
        _ => unreachable!("at most {MAX_SCALAR_PARAMS} numbers"),
    }
}

/// What a linked fast path knows of its function.
struct Link {
    route: Route,
    result: Ret,
}

/// Links the fast path for `name` if its type is a shape with one; returns whether
/// it did.
pub(crate) fn link_typed(
    instance: &mut LinkerInstance<'_, NanoState>,
    name: &str,
    ty: &ComponentFunc,
    route: &Route,
) -> wasmtime::Result<bool> {
    let Some(shape) = Shape::of(ty) else {
        return Ok(false);
    };
    if shape.is_scalar() {
        link_scalar(instance, name, route, &shape)?;
        return Ok(true);
    }
    let link = Arc::new(Link {
        route: route.clone(),
        result: shape.result,
    });
    macro_rules! by_flat_count {
        ($($n:literal)*) => {
            match (shape.flat(), shape.result.flat()) {
                $(
                    ($n, 0) => link_flat::<$n, 0>(instance, name, link),
                    ($n, 1) => link_flat::<$n, 1>(instance, name, link),
                )*
                _ => unreachable!("at most {MAX_FLAT_PARAMS} flat parameters and one flat result"),
            }
        };
    }
    by_flat_count!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)?;
    Ok(true)
}

/// Links the host function of a fast path with `N` flat parameters and `F` flat
/// results: the only code instantiated per type, and it only forwards to
/// [`trampoline`].
fn link_flat<const N: usize, const F: usize>(
    instance: &mut LinkerInstance<'_, NanoState>,
    name: &str,
    link: Arc<Link>,
) -> wasmtime::Result<()> {
    instance.func_wrap(name, move |mut cx, args: Args<N>| {
        trampoline(&mut cx, &link, &args.0).map(HostOut::<F>)
    })
}

/// The body of one call into a child: reads the parent's arguments, calls the
/// child and keeps the result.
type Body<'a> =
    dyn FnMut(&mut StoreContextMut<'_, NanoState>, &mut Live, Func) -> wasmtime::Result<()> + 'a;

/// [`call_child`] with a body behind a `dyn`: one copy of it (and of the per-call
/// machinery under it) serves every flat parameter count.
fn call(
    cx: &mut StoreContextMut<'_, NanoState>,
    route: &Route,
    body: &mut Body<'_>,
) -> Result<(), CallError> {
    call_child(cx, route, body)
}

/// One call from the parent into the child, whatever the function's shape (`N`
/// only sizes the arrays of arguments).
fn trampoline<const N: usize>(
    cx: &mut StoreContextMut<'_, NanoState>,
    link: &Link,
    args: &[Option<Arg>; N],
) -> wasmtime::Result<Out> {
    let mut out = None;
    let outcome = call(cx, &link.route, &mut |cx, live, func| {
        let mut reads: [Option<Read<'_>>; N] = [const { None }; N];
        for (read, arg) in reads.iter_mut().zip(args.iter().map_while(Option::as_ref)) {
            *read = Some(match arg {
                Arg::Num(raw) => Read::Num(*raw),
                // A string the parent's memory does not hold validly (not UTF-8) is
                // the parent's fault: its call traps, and the child, which has not
                // been called, is not blamed (an error returned from here would be
                // its failure).
                Arg::Str(s) => match s.to_str(&*cx) {
                    Ok(s) => Read::Str(s),
                    Err(e) => {
                        out = Some(Err(e));
                        return Ok(());
                    }
                },
                Arg::Bytes(b) => Read::Bytes(b.as_le_slice(&*cx)),
            });
        }
        let result = call_into(live, func, link.result.class(), ChildArgs(&reads))?;
        crate::trampoline::result_fits(cx.data(), result.payload())?;
        out = Some(Ok(result));
        Ok(())
    });
    match outcome {
        Ok(()) => out.expect("the call's body ran"),
        Err(CallError::Child(failure)) => link.result.failed(failure),
        Err(CallError::Trap(e)) => Err(e),
    }
}

/// Calls the child's function with the parent's arguments.
#[inline]
fn call_into(
    live: &mut Live,
    func: Func,
    class: Class,
    args: ChildArgs<'_>,
) -> wasmtime::Result<Out> {
    fn call<P: ComponentNamedList + Lower, R: ComponentNamedList + Lift + Into<Out> + 'static>(
        live: &mut Live,
        func: Func,
        args: P,
    ) -> wasmtime::Result<Out> {
        // SAFETY: `TypedFunc` must be given the function's type, or rather types
        // whose lowering and lifting follow it. `func` is the child's export of the
        // function this route names, and `plan` wires a parent to a child only
        // after checking that every function of the child's export has the same
        // type as the parent's import (`interfaces::funcs_equal`; the shapes here
        // have no resources, so that is plain structural equality). The parent's
        // import type-checked as a fast path when it was linked: at most 16 flat
        // parameters, which `ChildArgs` lowers by the child's own types (into 16
        // flat slots: those past the function's parameters are never read, as with
        // wasmtime's own `Func::call`), and a result of `class`, which
        // `Ret::class` derives from the type (the unit tests check it against
        // wasmtime's type check) and `lift_result` checks again.
        let typed = unsafe { TypedFunc::<P, R>::new_unchecked(func) };
        crate::drive::call_typed(&typed, &mut live.store, live.is_async, args).map(Into::into)
    }
    // Without parameters or results, wasmtime's own `()` skips all work on them.
    match (args.0.is_empty(), class) {
        (true, Class::Unit) => call::<(), ()>(live, func, ()),
        (true, Class::Flat) => call::<(), FlatOut>(live, func, ()),
        (false, Class::Unit) => call::<_, ()>(live, func, args),
        (false, Class::Flat) => call::<_, FlatOut>(live, func, args),
        (_, Class::Mem8) => call::<_, MemOut<8, 4>>(live, func, args),
        (_, Class::Mem12) => call::<_, MemOut<12, 4>>(live, func, args),
        (_, Class::Mem16) => call::<_, MemOut<16, 8>>(live, func, args),
    }
}

impl From<()> for Out {
    fn from((): ()) -> Out {
        Out::None
    }
}

/// One argument as the parent's host function receives it: strings and byte
/// lists as wasmtime's bounds-checked views of the parent's memory (nothing copied
/// yet), numbers as values.
enum Arg {
    Num(ValRaw),
    Str(WasmStr),
    Bytes(WasmList<u8>),
}

/// One argument read from the parent's memory, as it is lowered into the child.
enum Read<'a> {
    Num(ValRaw),
    /// In place, unless the parent's strings are not UTF-8.
    Str(Cow<'a, str>),
    Bytes(&'a [u8]),
}

/// The arguments of a call with `N` flat parameters, as the parent's host function
/// receives them (each slot holds one parameter, in order; the slots past the
/// parameters are `None`).
struct Args<const N: usize>([Option<Arg>; N]);

// SAFETY: `Lower` is `N` flat values, and `typecheck` accepts only a parameter list
// of exactly `N` flat values, each a type `lift_args` reads with wasmtime's own
// lifting (which bounds-checks strings and lists against the parent's memory).
// Parameters in memory (more than 16 flat values) are refused by `typecheck`.
unsafe impl<const N: usize> ComponentType for Args<N> {
    type Lower = [ValRaw; N];
    // Only used for parameters passed in memory, which `typecheck` refuses.
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::ZERO;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        let flat = params_flat(ty, types)?;
        if flat != N {
            wasmtime::bail!("expected {N} flat parameters, found {flat}");
        }
        Ok(())
    }
}

// SAFETY: a marker; the list is the function's parameters (see `ComponentType`).
unsafe impl<const N: usize> ComponentNamedList for Args<N> {}

// SAFETY: see `ComponentType`.
unsafe impl<const N: usize> Lift for Args<N> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &[ValRaw; N],
    ) -> wasmtime::Result<Self> {
        let mut args = [const { None }; N];
        lift_args(cx, ty, src, &mut args)?;
        Ok(Self(args))
    }

    fn linear_lift_from_memory(
        _: &mut LiftContext<'_>,
        _: InterfaceType,
        _: &[u8],
    ) -> wasmtime::Result<Self> {
        Err(mismatch())
    }
}

/// Lifts the parameters `ty` from their flat values `src` into `args`.
#[inline]
fn lift_args(
    cx: &mut LiftContext<'_>,
    ty: InterfaceType,
    src: &[ValRaw],
    args: &mut [Option<Arg>],
) -> wasmtime::Result<()> {
    let types = cx.types;
    let InterfaceType::Tuple(t) = ty else {
        return Err(mismatch());
    };
    let mut at = 0;
    for (param, arg) in types[t].types.iter().zip(args.iter_mut()) {
        let pair = |at: usize| -> wasmtime::Result<&[ValRaw; 2]> {
            src.get(at..at + 2)
                .and_then(|p| p.try_into().ok())
                .ok_or_else(mismatch)
        };
        *arg = Some(match param {
            InterfaceType::String => {
                at += 2;
                Arg::Str(WasmStr::linear_lift_from_flat(cx, *param, pair(at - 2)?)?)
            }
            InterfaceType::List(l) if types[*l].element == InterfaceType::U8 => {
                at += 2;
                Arg::Bytes(WasmList::linear_lift_from_flat(cx, *param, pair(at - 2)?)?)
            }
            InterfaceType::List(_) => return Err(mismatch()),
            _ => {
                at += 1;
                Arg::Num(lift_number(
                    cx,
                    *param,
                    src.get(at - 1).ok_or_else(mismatch)?,
                )?)
            }
        });
    }
    if at != src.len() {
        return Err(mismatch());
    }
    Ok(())
}

/// The parent's arguments, read, as the child's function is called with them: its
/// lowering follows the *child's* types, as wasmtime's `&str`, `&[u8]` and numbers
/// do (strings in the child's encoding, allocated by its `cabi_realloc`).
struct ChildArgs<'a>(&'a [Option<Read<'a>>]);

// SAFETY: `Lower` is the canonical ABI's maximum of flat parameters; only the
// function's own are written (see `lower_args`) and read by the call, as with
// wasmtime's `Func::call`. `call_into` calls only functions whose parameters are
// flat (at most 16 values), so `linear_lower_to_memory` is never needed.
unsafe impl ComponentType for ChildArgs<'_> {
    type Lower = [ValRaw; MAX_FLAT_PARAMS];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::ZERO;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        let flat = params_flat(ty, types)?;
        if flat > MAX_FLAT_PARAMS {
            wasmtime::bail!("{flat} flat parameters are passed in memory");
        }
        Ok(())
    }
}

// SAFETY: a marker; the list is the function's parameters.
unsafe impl ComponentNamedList for ChildArgs<'_> {}

// SAFETY: see `ComponentType`.
unsafe impl Lower for ChildArgs<'_> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; MAX_FLAT_PARAMS]>,
    ) -> wasmtime::Result<()> {
        lower_args(self.0, cx, ty, slots(dst))
    }

    fn linear_lower_to_memory<T>(
        &self,
        _: &mut LowerContext<'_, T>,
        _: InterfaceType,
        _: usize,
    ) -> wasmtime::Result<()> {
        Err(mismatch())
    }
}

/// Lowers the parent's arguments `reads` into the child as the parameters `ty`.
fn lower_args<T>(
    reads: &[Option<Read<'_>>],
    cx: &mut LowerContext<'_, T>,
    ty: InterfaceType,
    dst: &mut [MaybeUninit<ValRaw>],
) -> wasmtime::Result<()> {
    let types = cx.types;
    let InterfaceType::Tuple(t) = ty else {
        return Err(mismatch());
    };
    let params = &types[t].types;
    if reads.iter().map_while(Option::as_ref).count() != params.len() {
        return Err(mismatch());
    }
    let mut at = 0;
    for (param, read) in params.iter().zip(reads.iter().map_while(Option::as_ref)) {
        match (read, param) {
            (Read::Num(raw), _) => {
                lower_number(*raw, param, dst.get_mut(at).ok_or_else(mismatch)?)?;
                at += 1;
            }
            (Read::Str(s), InterfaceType::String) => {
                <str as Lower>::linear_lower_to_flat(s, cx, *param, pair(dst, at)?)?;
                at += 2;
            }
            (Read::Bytes(b), InterfaceType::List(l)) if types[*l].element == InterfaceType::U8 => {
                <[u8] as Lower>::linear_lower_to_flat(b, cx, *param, pair(dst, at)?)?;
                at += 2;
            }
            _ => return Err(mismatch()),
        }
    }
    Ok(())
}

/// The flat slots of `dst`, one by one.
fn slots<const N: usize>(dst: &mut MaybeUninit<[ValRaw; N]>) -> &mut [MaybeUninit<ValRaw>] {
    // SAFETY: `MaybeUninit<[T; N]>` and `[MaybeUninit<T>; N]` have the same layout,
    // and both allow any contents, initialised or not.
    unsafe { &mut *dst.as_mut_ptr().cast::<[MaybeUninit<ValRaw>; N]>() }
}

/// The two flat slots of `dst` at `at`, as a string or list is lowered into them.
fn pair(
    dst: &mut [MaybeUninit<ValRaw>],
    at: usize,
) -> wasmtime::Result<&mut MaybeUninit<[ValRaw; 2]>> {
    let two: &mut [MaybeUninit<ValRaw>; 2] = dst
        .get_mut(at..at + 2)
        .and_then(|p| p.try_into().ok())
        .ok_or_else(mismatch)?;
    // SAFETY: as in `slots`, the other way round.
    Ok(unsafe { &mut *std::ptr::from_mut(two).cast::<MaybeUninit<[ValRaw; 2]>>() })
}

/// A result on its way from the child to the parent, lifted out of the child's
/// memory in bulk.
#[derive(Debug)]
enum Out {
    None,
    Num(ValRaw),
    Str(String),
    Bytes(Vec<u8>),
    OptionString(Option<String>),
    UnitOrError(Result<(), String>),
    StringOrError(Result<String, String>),
    BytesOrError(Result<Vec<u8>, String>),
    U32OrError(Result<u32, String>),
    U64OrError(Result<u64, String>),
}

impl Out {
    /// What lowering it allocates in the parent's memory (see
    /// [`crate::trampoline::result_fits`]).
    fn payload(&self) -> u64 {
        use crate::lowered::{list_cost, string_cost};
        let string = |s: &String| string_cost(s.len());
        let bytes = |b: &Vec<u8>| list_cost(b.len(), 1);
        match self {
            Self::None | Self::Num(_) => 0,
            Self::Str(s) | Self::OptionString(Some(s)) => string(s),
            Self::Bytes(b) => bytes(b),
            Self::OptionString(None) | Self::UnitOrError(Ok(())) => 0,
            Self::U32OrError(Ok(_)) | Self::U64OrError(Ok(_)) => 0,
            Self::StringOrError(Ok(s)) => string(s),
            Self::BytesOrError(Ok(b)) => bytes(b),
            Self::UnitOrError(Err(e))
            | Self::StringOrError(Err(e))
            | Self::BytesOrError(Err(e))
            | Self::U32OrError(Err(e))
            | Self::U64OrError(Err(e)) => string(e),
        }
    }
}

/// The one result of the results tuple `ty`, if it has one.
fn only_result(
    types: &ComponentTypes,
    ty: InterfaceType,
) -> wasmtime::Result<Option<InterfaceType>> {
    let InterfaceType::Tuple(t) = ty else {
        return Err(mismatch());
    };
    match &types[t].types[..] {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(mismatch()),
    }
}

/// A child's result of class [`Class::Flat`]: one number.
struct FlatOut(Out);

impl From<FlatOut> for Out {
    fn from(out: FlatOut) -> Out {
        out.0
    }
}

// SAFETY: one flat value, read only if the function has a result (an unused
// `ValRaw` may hold anything, as in wasmtime's `Func::call`); results in memory are
// refused.
unsafe impl ComponentType for FlatOut {
    type Lower = [ValRaw; 1];
    // Only used for results in memory, which this is not.
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::ZERO;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        match Ret::of_results(types.types, ty).map(Ret::class) {
            Some(Class::Flat) => Ok(()),
            _ => wasmtime::bail!("expected one number"),
        }
    }
}

// SAFETY: a marker; the list is the function's results.
unsafe impl ComponentNamedList for FlatOut {}

// SAFETY: see `ComponentType`.
unsafe impl Lift for FlatOut {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &[ValRaw; 1],
    ) -> wasmtime::Result<Self> {
        Ok(Self(match only_result(cx.types, ty)? {
            None => Out::None,
            Some(one) => Out::Num(lift_number(cx, one, &src[0])?),
        }))
    }

    fn linear_lift_from_memory(
        _: &mut LiftContext<'_>,
        _: InterfaceType,
        _: &[u8],
    ) -> wasmtime::Result<Self> {
        Err(mismatch())
    }
}

/// A child's result returned in memory, `SIZE` bytes aligned to `ALIGN`
/// ([`Class::Mem8`], ...).
struct MemOut<const SIZE: u32, const ALIGN: u32>(Out);

impl<const SIZE: u32, const ALIGN: u32> From<MemOut<SIZE, ALIGN>> for Out {
    fn from(out: MemOut<SIZE, ALIGN>) -> Out {
        out.0
    }
}

// SAFETY: `ABI` is the result's size and alignment, which wasmtime uses to
// bounds-check the child's return pointer before `linear_lift_from_memory` reads
// the result through it; `lift_result` checks them against the child's type.
// `Lower` is more than one flat value, which tells wasmtime that the result is in
// memory.
unsafe impl<const SIZE: u32, const ALIGN: u32> ComponentType for MemOut<SIZE, ALIGN> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo {
        size32: SIZE,
        align32: ALIGN,
        size64: SIZE,
        align64: ALIGN,
        flat_count: None,
    };

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        match Ret::of_results(types.types, ty) {
            Some(ret) if !matches!(ret.class(), Class::Flat | Class::Unit) => {
                let abi = types.types.canonical_abi(ty);
                if (abi.size32, abi.align32) != (SIZE, ALIGN) {
                    wasmtime::bail!("expected a result of {SIZE} bytes aligned to {ALIGN}");
                }
                Ok(())
            }
            _ => wasmtime::bail!("expected a result in memory"),
        }
    }
}

// SAFETY: a marker; the list is the function's results.
unsafe impl<const SIZE: u32, const ALIGN: u32> ComponentNamedList for MemOut<SIZE, ALIGN> {}

// SAFETY: see `ComponentType`.
unsafe impl<const SIZE: u32, const ALIGN: u32> Lift for MemOut<SIZE, ALIGN> {
    fn linear_lift_from_flat(
        _: &mut LiftContext<'_>,
        _: InterfaceType,
        _: &[ValRaw; 2],
    ) -> wasmtime::Result<Self> {
        Err(mismatch())
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        lift_result(cx, ty, bytes).map(Self)
    }
}

/// Lifts a result in memory, `bytes` (bounds-checked by wasmtime, as long as the
/// class's size), of the results tuple `ty`.
fn lift_result(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Out> {
    let types = cx.types;
    let one = only_result(types, ty)?.ok_or_else(mismatch)?;
    let abi = types.canonical_abi(&one);
    if abi.size32 as usize != bytes.len() {
        return Err(mismatch());
    }
    Ok(match Ret::of_interface(types, &one).ok_or_else(mismatch)? {
        Ret::String => Out::Str(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::Bytes => Out::Bytes(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::OptionString => Out::OptionString(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::UnitOrError => Out::UnitOrError(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::StringOrError => Out::StringOrError(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::BytesOrError => Out::BytesOrError(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::U32OrError => Out::U32OrError(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::U64OrError => Out::U64OrError(Lift::linear_lift_from_memory(cx, one, bytes)?),
        Ret::None | Ret::Scalar(_) => return Err(mismatch()),
    })
}

/// The result as the parent's host function returns it, with `F` flat values (one
/// number; or none: no result, or a result that goes to memory).
struct HostOut<const F: usize>(Out);

// SAFETY: `Lower` is the `F` flat values of the result, and `typecheck` accepts only
// a result with that many (a result in memory has none here; wasmtime bounds-checks
// the parent's return pointer before `linear_lower_to_memory`).
unsafe impl<const F: usize> ComponentType for HostOut<F> {
    type Lower = [ValRaw; F];
    // Not used for results: wasmtime sizes them by the function's type.
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::ZERO;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        match Ret::of_results(types.types, ty) {
            Some(ret) if ret.flat() == F => Ok(()),
            Some(_) => wasmtime::bail!("expected a result of {F} flat values"),
            None => wasmtime::bail!("the result has no fast path"),
        }
    }
}

// SAFETY: a marker; the list is the function's results.
unsafe impl<const F: usize> ComponentNamedList for HostOut<F> {}

// SAFETY: see `ComponentType`.
unsafe impl<const F: usize> Lower for HostOut<F> {
    fn linear_lower_to_flat<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        dst: &mut MaybeUninit<[ValRaw; F]>,
    ) -> wasmtime::Result<()> {
        let dst = slots(dst);
        match (&self.0, only_result(cx.types, ty)?, dst) {
            (Out::None, None, []) => Ok(()),
            (Out::Num(raw), Some(one), [slot]) => lower_number(*raw, &one, slot),
            _ => Err(mismatch()),
        }
    }

    fn linear_lower_to_memory<T>(
        &self,
        cx: &mut LowerContext<'_, T>,
        ty: InterfaceType,
        offset: usize,
    ) -> wasmtime::Result<()> {
        let one = only_result(cx.types, ty)?.ok_or_else(mismatch)?;
        // The one field of the results tuple is at its start.
        match (&self.0, Ret::of_interface(cx.types, &one)) {
            (Out::Str(v), Some(Ret::String)) => v.linear_lower_to_memory(cx, one, offset),
            (Out::Bytes(v), Some(Ret::Bytes)) => v.linear_lower_to_memory(cx, one, offset),
            (Out::OptionString(v), Some(Ret::OptionString)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            (Out::UnitOrError(v), Some(Ret::UnitOrError)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            (Out::StringOrError(v), Some(Ret::StringOrError)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            (Out::BytesOrError(v), Some(Ret::BytesOrError)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            (Out::U32OrError(v), Some(Ret::U32OrError)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            (Out::U64OrError(v), Some(Ret::U64OrError)) => {
                v.linear_lower_to_memory(cx, one, offset)
            }
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trampoline::forward;
    use wasmtime::component::types::ComponentItem;
    use wasmtime::component::{Component, Linker};
    use wasmtime::{Engine, Store};

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
    /// the result against the component: wasmtime refuses a host function whose
    /// `Args<N>` / `HostOut<F>` do not type-check against the import. Returns the
    /// functions that got a fast path.
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

    const U32: Param = Param::Scalar(Scalar::U32);

    #[test]
    fn the_real_guests_functions_are_classified_and_their_fast_paths_type_check() {
        let engine = crate::engine::new_engine(crate::engine::EngineChoice {
            fuel: false,
            epochs: true,
            pool: None,
            concurrency: None,
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
            ("add", shape(&[U32, U32], Ret::Scalar(Scalar::U32))),
            ("echo-string", shape(&[Param::String], Ret::String)),
            ("echo-bytes", shape(&[Param::Bytes], Ret::Bytes)),
            // A record with everything in it.
            ("echo-outer", None),
            // `option<string>` is a result with a fast path, not a parameter.
            ("maybe", None),
            // `result<string, color>`: not a string error.
            ("fallible", None),
            ("crash", shape(&[Param::String], Ret::U32OrError)),
            (
                "crash-hard",
                shape(&[Param::String], Ret::Scalar(Scalar::U32)),
            ),
            ("calls", shape(&[], Ret::Scalar(Scalar::U64))),
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
    const PARAMS: [(Param, &str, &[u8]); 14] = [
        (Param::String, "string", &[I32, I32]),
        (Param::Bytes, "list<u8>", &[I32, I32]),
        (U32, "u32", &[I32]),
        (Param::Scalar(Scalar::U64), "u64", &[I64]),
        (Param::Scalar(Scalar::S32), "s32", &[I32]),
        (Param::Scalar(Scalar::S64), "s64", &[I64]),
        (Param::Scalar(Scalar::Bool), "bool", &[I32]),
        (Param::Scalar(Scalar::F64), "f64", &[F64]),
        (Param::Scalar(Scalar::U8), "u8", &[I32]),
        (Param::Scalar(Scalar::S8), "s8", &[I32]),
        (Param::Scalar(Scalar::U16), "u16", &[I32]),
        (Param::Scalar(Scalar::S16), "s16", &[I32]),
        (Param::Scalar(Scalar::F32), "f32", &[F32]),
        (Param::Scalar(Scalar::Char), "char", &[I32]),
    ];

    /// Each result kind, its WIT type and its core wasm result (`None`: in memory).
    const RETS: [(Ret, &str, Option<&[u8]>); 21] = [
        (Ret::None, "", Some(&[])),
        (Ret::Scalar(Scalar::U32), "u32", Some(&[I32])),
        (Ret::Scalar(Scalar::U64), "u64", Some(&[I64])),
        (Ret::Scalar(Scalar::S32), "s32", Some(&[I32])),
        (Ret::Scalar(Scalar::S64), "s64", Some(&[I64])),
        (Ret::Scalar(Scalar::Bool), "bool", Some(&[I32])),
        (Ret::Scalar(Scalar::F64), "f64", Some(&[F64])),
        (Ret::Scalar(Scalar::U8), "u8", Some(&[I32])),
        (Ret::Scalar(Scalar::S8), "s8", Some(&[I32])),
        (Ret::Scalar(Scalar::U16), "u16", Some(&[I32])),
        (Ret::Scalar(Scalar::S16), "s16", Some(&[I32])),
        (Ret::Scalar(Scalar::F32), "f32", Some(&[F32])),
        (Ret::Scalar(Scalar::Char), "char", Some(&[I32])),
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

    /// One function of a synthetic component.
    struct SynthFunc {
        name: String,
        wit: String,
        core_params: Vec<u8>,
        core_results: Vec<u8>,
        shape: Option<Shape>,
    }

    /// The function `func(<params>) -> <ret>`, its parameters given by index in
    /// [`PARAMS`], as a component imports it (`import`: a result in memory is
    /// written through a pointer passed last) or exports it (returned as a
    /// pointer).
    fn synth(index: usize, list: &[usize], ret: usize, import: bool) -> SynthFunc {
        let (ret, ret_wit, core_ret) = RETS[ret];
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
        let mut core_params: Vec<u8> = list.iter().flat_map(|&p| PARAMS[p].2.to_vec()).collect();
        if core_params.len() > MAX_FLAT_PARAMS {
            // Passed in memory, through a pointer.
            core_params = vec![I32];
        }
        let core_results = match core_ret {
            Some(r) => r.to_vec(),
            None if import => {
                core_params.push(I32);
                Vec::new()
            }
            None => vec![I32],
        };
        let shape = Shape {
            params: list.iter().map(|&p| PARAMS[p].0).collect(),
            result: ret,
        };
        SynthFunc {
            name: format!("shape{index}"),
            wit: format!("func({}){arrow}", params.join(", ")),
            core_params,
            core_results,
            shape: (shape.flat() <= MAX_FLAT_PARAMS).then_some(shape),
        }
    }

    #[test]
    fn every_shape_is_classified_and_type_checks_against_its_wit_type() {
        // Parameter lists: none; each kind alone; every pair of the first eight
        // kinds; and long ones, up to the 16 flat values of the canonical ABI and
        // one past it (which takes the generic path).
        let mut lists: Vec<Vec<usize>> = vec![vec![]];
        lists.extend((0..PARAMS.len()).map(|a| vec![a]));
        lists.extend((0..8).flat_map(|a| (0..8).map(move |b| vec![a, b])));
        lists.push(vec![2; 3]);
        lists.push(vec![0; 8]);
        lists.push(vec![3; 16]);
        lists.push([vec![1], vec![13; 14]].concat());
        lists.push(vec![0; 9]);
        lists.push(vec![2; 17]);
        let mut funcs = Vec::new();
        for list in &lists {
            for ret in 0..RETS.len() {
                funcs.push(synth(funcs.len(), list, ret, true));
            }
        }
        assert_eq!(funcs.len(), (1 + 14 + 64 + 6) * 21);
        // And some that take the generic path.
        for (wit, params, results) in [
            (
                "func(a: list<u32>) -> list<u32>",
                &[I32, I32, I32][..],
                &[][..],
            ),
            ("func(a: option<string>)", &[I32, I32, I32], &[]),
            ("func(a: list<string>)", &[I32, I32], &[]),
            ("func() -> tuple<u32, u32>", &[I32], &[]),
            ("func() -> result<string, u32>", &[I32], &[]),
            ("func() -> result<string>", &[I32], &[]),
            ("func() -> result<f64, string>", &[I32], &[]),
            ("func() -> option<u32>", &[I32], &[]),
            ("func() -> list<string>", &[I32], &[]),
        ] {
            funcs.push(SynthFunc {
                name: format!("other{}", funcs.len()),
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
            concurrency: None,
        })
        .unwrap();
        let component = Component::new(&engine, synthetic_component(&funcs, true)).unwrap();
        let iface = "nanoproc-test:fast/shapes";
        let imported = imported_funcs(&engine, &component, iface);
        assert_eq!(imported.len(), funcs.len());
        for func in &funcs {
            let (_, ty) = imported.iter().find(|(n, _)| *n == func.name).unwrap();
            assert_eq!(Shape::of(ty), func.shape, "{}: {}", func.name, func.wit);
        }
        let fast = link_like_plan(&engine, &component, iface);
        let want: Vec<&str> = funcs
            .iter()
            .filter(|f| f.shape.is_some())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(fast, want);
    }

    /// The child's side of a call is typed without wasmtime's check
    /// (`TypedFunc::new_unchecked`): check here that, for every result kind (and a
    /// few parameter lists), the result class `Ret::class` picks and `ChildArgs`
    /// are what wasmtime's type check of the child's export accepts, and that the
    /// other classes are refused.
    #[test]
    fn every_result_class_matches_the_childs_export() {
        let lists: [&[usize]; 7] = [
            &[],
            &[0],
            &[1, 2],
            &[0; 8],
            &[13, 12, 11, 10, 9, 8],
            &[2, 3, 6, 7],
            &[12, 13, 8],
        ];
        let mut funcs = Vec::new();
        for list in lists {
            for ret in 0..RETS.len() {
                funcs.push(synth(funcs.len(), list, ret, false));
            }
        }
        let engine = crate::engine::new_engine(crate::engine::EngineChoice {
            fuel: false,
            epochs: true,
            pool: None,
            concurrency: None,
        })
        .unwrap();
        let component = Component::new(&engine, synthetic_component(&funcs, false)).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = Linker::new(&engine)
            .instantiate(&mut store, &component)
            .unwrap();
        let iface = instance
            .get_export_index(&mut store, None, "nanoproc-test:fast/shapes")
            .unwrap();
        for f in &funcs {
            let shape = f.shape.as_ref().unwrap();
            let ix = instance
                .get_export_index(&mut store, Some(&iface), &f.name)
                .unwrap();
            let func = instance.get_func(&mut store, ix).unwrap();
            let classes = [
                (Class::Unit, func.typed::<ChildArgs<'_>, ()>(&store).err()),
                (
                    Class::Flat,
                    func.typed::<ChildArgs<'_>, FlatOut>(&store).err(),
                ),
                (
                    Class::Mem8,
                    func.typed::<ChildArgs<'_>, MemOut<8, 4>>(&store).err(),
                ),
                (
                    Class::Mem12,
                    func.typed::<ChildArgs<'_>, MemOut<12, 4>>(&store).err(),
                ),
                (
                    Class::Mem16,
                    func.typed::<ChildArgs<'_>, MemOut<16, 8>>(&store).err(),
                ),
            ];
            // The typed scalar path: `Num`s and `()` or `(Num,)`, checked by
            // wasmtime against the child's export for the scalar shapes, and
            // refused for the others of at most `MAX_SCALAR_PARAMS` parameters.
            if shape.params.len() <= MAX_SCALAR_PARAMS {
                assert_eq!(
                    scalar_typechecks(&func, &store, shape.params.len(), shape.result),
                    shape.is_scalar(),
                    "{}: {}",
                    f.name,
                    f.wit
                );
            }
            for (class, refused) in classes {
                assert_eq!(
                    refused.is_none(),
                    class == shape.result.class(),
                    "{}: {} as {class:?}: {refused:?}",
                    f.name,
                    f.wit
                );
            }
        }
    }

    /// Whether wasmtime's type check accepts the typed scalar path's types for
    /// `func`: `params` `Num`s, and the result `()` (for no result) or `(Num,)`.
    fn scalar_typechecks(func: &Func, store: &Store<()>, params: usize, result: Ret) -> bool {
        macro_rules! typed {
            ($($p:ident)*) => {
                if result == Ret::None {
                    func.typed::<($(num!($p),)*), ()>(store).is_ok()
                } else {
                    func.typed::<($(num!($p),)*), (Num,)>(store).is_ok()
                }
            };
        }
        match params {
            0 => typed!(),
            1 => typed!(a),
            2 => typed!(a b),
            3 => typed!(a b c),
            4 => typed!(a b c d),
            _ => false,
        }
    }

    #[test]
    fn a_failure_becomes_an_err_only_for_a_string_error() {
        let failure = || ChildFailed {
            child: "app/child".into(),
            function: "i#f".into(),
            cause: "it trapped".into(),
            limit_exceeded: false,
        };
        let message = failure().to_string();
        for (ret, _, _) in RETS {
            let out = ret.failed(failure());
            match ret {
                Ret::UnitOrError
                | Ret::StringOrError
                | Ret::BytesOrError
                | Ret::U32OrError
                | Ret::U64OrError => {
                    let out = out.unwrap();
                    assert_eq!(out.payload(), crate::lowered::string_cost(message.len()));
                    let err = match out {
                        Out::UnitOrError(r) => r.unwrap_err(),
                        Out::StringOrError(r) => r.unwrap_err(),
                        Out::BytesOrError(r) => r.unwrap_err(),
                        Out::U32OrError(r) => r.unwrap_err(),
                        Out::U64OrError(r) => r.unwrap_err(),
                        other => panic!("{ret:?}: {other:?}"),
                    };
                    assert_eq!(err, message);
                }
                _ => assert!(out.is_err(), "{ret:?}"),
            }
        }
    }

    /// A component that imports (or exports) `funcs` as the interface
    /// `nanoproc-test:fast/shapes`: a hand-made core module with the canonical
    /// ABI's signatures whose functions trap, made a component by wit-component.
    fn synthetic_component(funcs: &[SynthFunc], import: bool) -> Vec<u8> {
        let decls: String = funcs
            .iter()
            .map(|f| format!("  {}: {};\n", f.name, f.wit))
            .collect();
        let direction = if import { "import" } else { "export" };
        let wit = format!(
            "package nanoproc-test:fast;\ninterface shapes {{\n{decls}}}\nworld w {{ {direction} shapes; }}\n"
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
        let world = resolve.select_world(&[package], Some("w")).unwrap();

        let mut module = core_module(funcs, import);
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

    /// A core module importing (or defining and exporting) each function with its
    /// flattened signature, with a memory and a `cabi_realloc`; every function
    /// body is `unreachable`.
    fn core_module(funcs: &[SynthFunc], import: bool) -> Vec<u8> {
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
        const IFACE: &[u8] = b"nanoproc-test:fast/shapes";
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        // Types: one per function, then cabi_realloc's.
        let mut types = Vec::new();
        leb(&mut types, funcs.len() + 1);
        for f in funcs {
            types.push(0x60);
            bytes(&mut types, &f.core_params);
            bytes(&mut types, &f.core_results);
        }
        types.extend([0x60, 4, I32, I32, I32, I32, 1, I32]);
        section(&mut module, 1, types);
        // Imported functions come first in the index space.
        let realloc = if import { funcs.len() } else { 0 };
        if import {
            let mut imports = Vec::new();
            leb(&mut imports, funcs.len());
            for (index, f) in funcs.iter().enumerate() {
                bytes(&mut imports, IFACE);
                bytes(&mut imports, f.name.as_bytes());
                imports.push(0x00);
                leb(&mut imports, index);
            }
            section(&mut module, 2, imports);
        }
        let defined: Vec<usize> = if import {
            vec![funcs.len()]
        } else {
            std::iter::once(funcs.len()).chain(0..funcs.len()).collect()
        };
        let mut functions = Vec::new();
        leb(&mut functions, defined.len());
        for ty in &defined {
            leb(&mut functions, *ty);
        }
        section(&mut module, 3, functions);
        section(&mut module, 5, vec![1, 0x00, 1]);
        let mut exports = Vec::new();
        leb(&mut exports, 2 + if import { 0 } else { funcs.len() });
        bytes(&mut exports, b"memory");
        exports.extend([0x02, 0]);
        bytes(&mut exports, b"cabi_realloc");
        exports.push(0x00);
        leb(&mut exports, realloc);
        if !import {
            for (index, f) in funcs.iter().enumerate() {
                let name = [IFACE, b"#", f.name.as_bytes()].concat();
                bytes(&mut exports, &name);
                exports.push(0x00);
                leb(&mut exports, index + 1);
            }
        }
        section(&mut module, 7, exports);
        // Bodies: no locals, `unreachable`, `end`.
        let mut code = Vec::new();
        leb(&mut code, defined.len());
        for _ in &defined {
            code.extend([3, 0, 0x00, 0x0b]);
        }
        section(&mut module, 10, code);
        module
    }
}
