//! Typed trampolines for the function shapes where forwarding dynamic `Val`s is
//! too slow (to be filled in).

use crate::state::NanoState;
use crate::trampoline::Route;
use wasmtime::component::LinkerInstance;
use wasmtime::component::types::ComponentFunc;

/// Links a typed trampoline for `name` if its type is a shape with a fast path;
/// returns whether it did.
pub(crate) fn link_typed(
    _instance: &mut LinkerInstance<'_, NanoState>,
    _name: &str,
    _ty: &ComponentFunc,
    _route: &Route,
) -> wasmtime::Result<bool> {
    Ok(false)
}
