//! What a trap of a WASI preview 1 module had to do with wasmtime's component
//! adapter, through which nanoproc runs such modules (docs/preview1.md lists
//! where the adapter differs from wasmtime's own preview 1).
//!
//! An adapted module's preview 1 call crosses three core modules of one
//! component: the module, the shim wit-component puts between it and the adapter
//! (its function `k` forwards the module's `k`th `wasi_snapshot_preview1` import,
//! through a table filled once the adapter is instantiated), and the adapter. A
//! trap in the adapter only says `unreachable` (the adapter's own reason goes to
//! stderr, and its function names are stripped), so the backtrace is read to say
//! where it happened, in which preview 1 function, and what is known to cause it.
//! The modules are told apart by what they export: the adapter
//! `cabi_import_realloc`, the shim its table `$imports`.

use wasmtime::{FrameInfo, Trap, WasmBacktrace};

/// The import module of preview 1 functions.
const PREVIEW1: &str = "wasi_snapshot_preview1";

/// Preview 1 functions the adapter does not implement: it traps in them, where
/// wasmtime's own preview 1 returns `notsup` (`proc_raise`) or `notsock`.
const UNIMPLEMENTED: &[&str] = &["proc_raise", "sock_accept", "sock_recv", "sock_send"];

fn is_adapter(frame: &FrameInfo) -> bool {
    frame.module().get_export("cabi_import_realloc").is_some()
}

fn is_shim(frame: &FrameInfo) -> bool {
    frame.module().get_export("$imports").is_some()
}

/// The trap in words, if it happened in the adapter or its shim; `None` for any
/// other trap (a component's, or a preview 1 module's own).
pub(crate) fn explain(err: &wasmtime::Error, trap: &Trap) -> Option<String> {
    let frames = err.downcast_ref::<WasmBacktrace>()?.frames();
    let innermost = frames.first()?;
    let (in_adapter, in_shim) = (is_adapter(innermost), is_shim(innermost));
    if !in_adapter && !in_shim {
        return None;
    }
    // The preview 1 function the module called: the index of the shim's function
    // the module called (the adapter's own WASI 0.2 calls cross the shim too) is
    // the position of the import among the module's preview 1 imports.
    let is_module = |f: &FrameInfo| !is_adapter(f) && !is_shim(f);
    let shim = frames
        .windows(2)
        .position(|pair| is_shim(&pair[0]) && is_module(&pair[1]));
    let called = shim.and_then(|i| {
        let k = usize::try_from(frames[i].func_index()).ok()?;
        let module = frames.get(i + 1)?.module();
        module
            .imports()
            .filter(|import| import.module() == PREVIEW1)
            .nth(k)
            .map(|import| import.name().to_string())
    });
    let module_allocates = shim
        .and_then(|i| frames.get(i + 1))
        .map(|f| f.module().get_export("cabi_realloc").is_some());
    let in_fn = called
        .as_deref()
        .map(|f| format!(", in `{f}`"))
        .unwrap_or_default();

    // A shim alone is no sign of the adapter: every component wit-component made
    // has one (a WASI 0.3 guest that waits traps in its own). Only a call from a
    // module's preview 1 import through it is the adapter's.
    if in_shim && called.is_none() {
        return None;
    }
    if in_shim {
        // The shim's table is empty until the adapter is instantiated, which is
        // after the module (the adapter uses the module's memory): a call from the
        // module's start function finds nothing there.
        let what = called.as_deref().map_or_else(
            || "a WASI preview 1 function".to_string(),
            |f| format!("`{f}`"),
        );
        return Some(format!(
            "{trap}: the module called {what} from its start function, before wasmtime's WASI preview 1 adapter, which serves its preview 1 calls, was instantiated (the adapter serves them from `_start` on; wasmtime's own preview 1 would have served it)"
        ));
    }
    if let Some(f) = called
        .as_deref()
        .filter(|f| UNIMPLEMENTED.contains(f) && matches!(trap, Trap::UnreachableCodeReached))
    {
        return Some(format!(
            "{trap} in `{f}`, which wasmtime's WASI preview 1 adapter does not implement: it traps where wasmtime's own preview 1 returns an error code"
        ));
    }
    match trap {
        // The adapter's allocator for what the host returns failed, and its report
        // of that (a write to stderr, a host call from inside a realloc) trapped.
        // Its `args_sizes_get` and `environ_sizes_get` receive the list into a
        // scratch area of its state page, every string on top of the last: the
        // list's entries and the longest string must fit.
        Trap::CannotLeaveComponent => {
            let what = match called.as_deref() {
                Some("args_sizes_get" | "args_get") => "its arguments",
                Some("environ_sizes_get" | "environ_get") => "its environment variables",
                _ => "what the host returned (arguments or environment variables?)",
            };
            Some(format!(
                "{trap} in wasmtime's WASI preview 1 adapter{in_fn}: {what} did not fit in the adapter's fixed buffer of about 59 KB, which must hold 8 bytes per argument (16 per environment variable) and the longest one (wasmtime's own preview 1 has no such limit)"
            ))
        }
        Trap::UnreachableCodeReached => {
            let mut text = format!(
                "{trap} in wasmtime's WASI preview 1 adapter{in_fn} (the adapter prints which of its checks failed on stderr: `... at adapter line N`)"
            );
            if module_allocates == Some(false) {
                text.push_str(
                    "; a known cause: the module exports no `cabi_realloc`, so the adapter keeps its stack and its state in two 64 KiB pages it adds with memory.grow, and a heap that claims all memory below memory.size() at its first allocation writes over them (AssemblyScript's; malloc of a wasi-libc older than 2023, such as Debian 12's); export a `cabi_realloc` backed by the module's allocator",
                );
            }
            Some(text)
        }
        other => Some(format!(
            "{other} in wasmtime's WASI preview 1 adapter{in_fn}"
        )),
    }
}
