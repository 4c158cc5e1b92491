//! Exit statuses of nanoproc itself; any other status is the application's own.

/// The manifest, a component or a grant was refused before anything ran.
pub const REFUSED_AT_CHECK: u8 = 125;
/// A nanoprocess could not be started, or the WebAssembly engine could not be
/// set up (at start, or for the tree being checked): nothing about the input
/// was refused, but nothing could run.
pub const CANNOT_START: u8 = 126;
/// The application trapped (a guest fault, or a refused capability that traps).
pub const TRAP: u8 = 134;
/// The application was stopped at a resource limit (memory, fuel, time per
/// call, handles, output...).
pub const LIMIT_EXCEEDED: u8 = 137;
/// The run's `--timeout` passed (as GNU `timeout` reports it).
pub const TIMED_OUT: u8 = 124;
/// Interrupted with Ctrl-C (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;
/// Standard output was closed by its reader (128 + SIGPIPE, as a shell reports a
/// process a closed pipe ended).
pub const OUTPUT_CLOSED: u8 = 141;
/// `nanoproc learn`: the proposal is shown but incomplete, because the run did not
/// end by itself with status 0, or the record could not keep every use.
pub const LEARN_INCOMPLETE: u8 = 1;
