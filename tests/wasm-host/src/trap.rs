//! Errors: [`LoadError`] (the module cannot run at all) and [`Trap`] (a call
//! into the module failed).

use std::fmt;

/// The module could not be loaded: unreadable file, invalid wasm, an import
/// Envoy would not provide either, a missing required export.
#[derive(Debug, Clone)]
pub struct LoadError {
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(message: impl Into<String>) -> LoadError {
        LoadError {
            message: message.into(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot load the wasm module: {}", self.message)
    }
}

impl std::error::Error for LoadError {}

/// Why a call into the module failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// `unreachable` executed: with `panic = "abort"` this is what a Rust
    /// panic becomes (see [`Trap::panic_message`] for the panic text).
    Unreachable,
    /// The per-call fuel budget ran out: an endless (or far too long) loop.
    /// See [`crate::Host::set_fuel_per_call`].
    OutOfFuel,
    /// The wasm call stack overflowed (e.g. unbounded recursion).
    StackOverflow,
    /// An out-of-bounds memory access.
    MemoryOutOfBounds,
    /// The module called WASI `proc_exit(code)`.
    ProcExit(i32),
    /// An earlier call trapped. Like Envoy (without `FAIL_RELOAD`), the VM is
    /// then dead for good: every later call fails with this kind.
    VmFailed,
    /// Any other wasm trap (integer overflow, bad indirect call, …) or error.
    Other,
}

/// A call into the module trapped (or the VM had already failed).
///
/// `Display` prints everything a failing test needs: the callback, the trap,
/// the panic message the SDK logged, and any stderr text.
#[derive(Debug, Clone)]
pub struct Trap {
    pub kind: TrapKind,
    /// The export being called, e.g. `proxy_on_request_headers`.
    pub callback: String,
    /// wasmtime's description of the error, with the wasm backtrace.
    pub message: String,
    /// The last `Critical` log line written during the call. The proxy-wasm
    /// SDK's panic hook (installed by `proxy_wasm::set_log_level`) logs the
    /// panic message at that level just before `panic = "abort"` traps.
    pub panic_message: Option<String>,
    /// stdout/stderr text the module wrote during the call (Rust's default
    /// panic hook writes the panic message to stderr).
    pub stderr: String,
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasm trap in {} ({:?})", self.callback, self.kind)?;
        if let Some(panic) = &self.panic_message {
            write!(f, "\n  panic: {panic}")?;
        }
        if !self.stderr.is_empty() {
            write!(f, "\n  stderr: {}", self.stderr.trim_end())?;
        }
        write!(f, "\n  {}", self.message)
    }
}

impl std::error::Error for Trap {}

/// Raised by the WASI `proc_exit` import to unwind out of the module.
#[derive(Debug)]
pub(crate) struct ProcExit(pub i32);

impl fmt::Display for ProcExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the module called WASI proc_exit({})", self.0)
    }
}

impl std::error::Error for ProcExit {}

/// Classifies an error returned by wasmtime for a call into the module.
pub(crate) fn classify(error: &wasmtime::Error) -> TrapKind {
    if let Some(exit) = error.downcast_ref::<ProcExit>() {
        return TrapKind::ProcExit(exit.0);
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::UnreachableCodeReached) => TrapKind::Unreachable,
        Some(wasmtime::Trap::OutOfFuel) => TrapKind::OutOfFuel,
        Some(wasmtime::Trap::StackOverflow) => TrapKind::StackOverflow,
        Some(wasmtime::Trap::MemoryOutOfBounds) => TrapKind::MemoryOutOfBounds,
        _ => TrapKind::Other,
    }
}
