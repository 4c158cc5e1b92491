//! What a check tells whoever shows progress (the command line's spinner) while it
//! compiles components: compiling a large component (an interpreter built as one)
//! takes seconds, and without word of it a first run looks hung.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One step of compiling the components of a tree. Files are compiled in parallel,
/// so the steps of different files interleave, each sent from the thread doing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompileProgress {
    /// A component file is being compiled: the compile cache had no usable copy of
    /// it. `bytes` is the file's size.
    Started { component: PathBuf, bytes: u64 },
    /// A component file is done with: loaded from the compile cache (`cached`, and
    /// then no `Started` came before), compiled, or found not to compile (the check's
    /// errors say why). `took` counts from when its compilation or cache lookup began.
    Finished {
        component: PathBuf,
        took: Duration,
        cached: bool,
    },
}

/// Called with every [`CompileProgress`] step, from whichever thread compiles
/// (see [`crate::Runtime::with_progress`]). It should return quickly: the compile
/// waits for it.
pub type ProgressHook = Arc<dyn Fn(&CompileProgress) + Send + Sync>;
