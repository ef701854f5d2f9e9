//! Numbers of the proxy-wasm ABI 0.2.x as Envoy uses them.

/// Status codes returned by `env.proxy_*` hostcalls (`WasmResult` in Envoy).
///
/// Mind the Rust SDK (0.2.x): most of its wrappers `panic!` on any status they
/// do not expect, so answering e.g. [`status::UNIMPLEMENTED`] makes a filter
/// built with it trap. That is deliberate for features this host does not
/// model: the test fails loudly instead of passing on a made-up answer.
pub mod status {
    pub const OK: u32 = 0;
    pub const NOT_FOUND: u32 = 1;
    pub const BAD_ARGUMENT: u32 = 2;
    pub const SERIALIZATION_FAILURE: u32 = 3;
    pub const PARSE_FAILURE: u32 = 4;
    pub const INVALID_MEMORY_ACCESS: u32 = 6;
    pub const EMPTY: u32 = 7;
    pub const CAS_MISMATCH: u32 = 8;
    pub const INTERNAL_FAILURE: u32 = 10;
    pub const UNIMPLEMENTED: u32 = 12;
}

/// `proxy_get_buffer_bytes` buffer types.
pub(crate) mod buffer {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    pub const DOWNSTREAM_DATA: u32 = 2;
    pub const UPSTREAM_DATA: u32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
    pub const CALL_DATA: u32 = 8;
}

/// Header map types.
pub(crate) mod map {
    pub const HTTP_REQUEST_HEADERS: u32 = 0;
    pub const HTTP_REQUEST_TRAILERS: u32 = 1;
    /// Highest valid map type (`HttpCallResponseTrailers`).
    pub const MAX: u32 = 7;
}

/// `proxy_continue_stream` / `proxy_close_stream` stream types.
pub(crate) mod stream {
    pub const HTTP_REQUEST: u32 = 0;
    pub const HTTP_RESPONSE: u32 = 1;
    pub const DOWNSTREAM: u32 = 2;
    pub const UPSTREAM: u32 = 3;
}

/// WASI errno values used by the WASI subset.
pub(crate) mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOENT: i32 = 44;
    pub const NOSYS: i32 = 52;
    pub const NOTSUP: i32 = 58;
}

/// Log levels of `proxy_log` (the SDK's `LogLevel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_u32(level: u32) -> Option<LogLevel> {
        Some(match level {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

/// What a `proxy_on_request_headers` / `proxy_on_request_body` callback returned.
///
/// The Rust SDK only returns `Continue` (0) or `Pause` (1). For headers Envoy
/// reads 1 as `StopIteration`, for a body chunk as `StopIterationAndBuffer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Continue,
    Pause,
    /// Any other value (Envoy's `StopAllIteration*` / `StopIterationNoBuffer` …).
    Other(u32),
}

impl Action {
    pub(crate) fn from_raw(raw: i32) -> Action {
        match raw {
            0 => Action::Continue,
            1 => Action::Pause,
            other => Action::Other(other as u32),
        }
    }
}
