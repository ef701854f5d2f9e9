//! Everything the host knows and records. The hostcalls in `imports.rs` and
//! the driver in `host.rs` share it as the wasmtime store's data.

use std::collections::{BTreeMap, BTreeSet};

use wasmtime::{Memory, StoreLimits, TypedFunc};

use crate::abi::{LogLevel, status};

/// Identifies an HTTP stream (its proxy-wasm context id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub(crate) u32);

impl StreamId {
    /// The proxy-wasm context id of this stream.
    pub fn context_id(self) -> u32 {
        self.0
    }
}

/// One `proxy_log` call (or one stdout/stderr write, which Envoy also logs:
/// stdout at `Info`, stderr at `Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// The context the filter was acting for (effective context).
    pub context_id: u32,
}

/// A `proxy_send_local_response` call, as Envoy would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    /// Response code details; Envoy replaces whitespace in them with `_`, and
    /// so does this record.
    pub details: String,
    pub body: Vec<u8>,
    /// Headers the filter added to the response, keys lower-cased (as Envoy).
    pub headers: Vec<(String, String)>,
    /// `None` when the filter passed a value outside 0..=16 (the SDK passes
    /// -1 for plain HTTP responses): Envoy then sends no `grpc-status`.
    pub grpc_status: Option<u32>,
}

impl LocalResponse {
    /// The first value of a response header (`name` is matched lower-cased).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A `proxy_grpc_call` (the SDK's `dispatch_grpc_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    /// The token handed to the filter; `None` when dispatch failed.
    pub token: Option<u32>,
    /// The status `proxy_grpc_call` returned (0 = Ok).
    pub status: u32,
    /// The (effective) context that dispatched the call.
    pub context_id: u32,
    /// The stream that context belongs to, if it is a stream.
    pub stream: Option<StreamId>,
    /// The `upstream` argument: the cluster name.
    pub cluster: String,
    pub service: String,
    pub method: String,
    pub initial_metadata: Vec<(String, Vec<u8>)>,
    /// The serialized request message.
    pub message: Vec<u8>,
    pub timeout_ms: u32,
    /// The filter cancelled it (`proxy_grpc_cancel` / `proxy_grpc_close`).
    pub cancelled: bool,
    /// A reply or close was delivered by the test.
    pub(crate) finished: bool,
}

/// How `proxy_grpc_call` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrpcDispatch {
    /// Every call succeeds and gets a fresh token (the default).
    Accept,
    /// Every call fails with this status, e.g. [`status::PARSE_FAILURE`]
    /// (what Envoy returns for a cluster it does not know). Note that the
    /// Rust SDK 0.2.x panics on statuses other than `PARSE_FAILURE` and
    /// `INTERNAL_FAILURE` here.
    Fail(u32),
    /// Calls to these clusters succeed, others fail with `PARSE_FAILURE`
    /// like Envoy's missing-cluster case.
    Clusters(Vec<String>),
}

/// What the host knows about one HTTP stream. Obtained with
/// [`crate::Host::stream`]; kept after the stream ended.
#[derive(Debug, Clone)]
pub struct Stream {
    pub id: StreamId,
    /// The request headers as the filter left them (keys lower-cased).
    /// Values are bytes: HTTP lets clients send non-UTF-8 values
    /// (`obs-text`), and Envoy hands them to the filter unchanged.
    pub request_headers: Vec<(String, Vec<u8>)>,
    /// The request trailers, once delivered (keys lower-cased).
    pub request_trailers: Vec<(String, Vec<u8>)>,
    /// The request body buffer as the filter last saw (or modified) it.
    /// Chunks accumulate while the filter answers `Pause` to body callbacks
    /// (`StopIterationAndBuffer`); after a `Continue` the next chunk starts a
    /// fresh buffer, as in Envoy.
    pub request_body: Vec<u8>,
    pub local_responses: Vec<LocalResponse>,
    /// `proxy_continue_stream(HttpRequest)` calls (`resume_http_request`).
    pub continue_requests: u32,
    /// `proxy_continue_stream(HttpResponse)` calls.
    pub continue_responses: u32,
    /// `proxy_close_stream(HttpRequest | HttpResponse)` calls (stream resets).
    pub resets: u32,
    /// Properties the filter set with `proxy_set_property` (dotted paths).
    pub filter_properties: BTreeMap<String, Vec<u8>>,
    /// `proxy_on_log` / `proxy_on_done` / `proxy_on_delete` have run.
    pub ended: bool,
    /// Request headers are readable/writable (Envoy drops its pointer when
    /// the filter continues the request).
    pub(crate) headers_available: bool,
    /// Request trailers are readable/writable (during and after
    /// `proxy_on_request_trailers` until the filter continues).
    pub(crate) trailers_available: bool,
    /// The body buffer is readable/writable.
    pub(crate) body_available: bool,
    /// The last body callback answered `Pause` (StopIterationAndBuffer).
    pub(crate) buffering_body: bool,
    /// `proxy_on_log` is running: request headers are readable (read-only).
    pub(crate) access_log_phase: bool,
}

impl Stream {
    pub(crate) fn new(id: StreamId) -> Stream {
        Stream {
            id,
            request_headers: Vec::new(),
            request_trailers: Vec::new(),
            request_body: Vec::new(),
            local_responses: Vec::new(),
            continue_requests: 0,
            continue_responses: 0,
            resets: 0,
            filter_properties: BTreeMap::new(),
            ended: false,
            headers_available: false,
            trailers_available: false,
            body_available: false,
            buffering_body: false,
            access_log_phase: false,
        }
    }

    /// The first value of a request header (`name` is matched lower-cased);
    /// `None` also when that value is not UTF-8 (see
    /// [`Stream::request_header_bytes`]).
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_header_bytes(name)
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    /// The first value of a request header, as bytes.
    pub fn request_header_bytes(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.request_headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_slice())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

#[derive(Debug, Clone)]
pub(crate) struct Metric {
    pub name: String,
    pub kind: MetricKind,
    pub value: u64,
}

/// The wasmtime store data.
pub(crate) struct HostState {
    // Contexts. `current` is the context a callback was called for;
    // `effective` (0 = none) is what `proxy_set_effective_context` chose.
    pub root_id: u32,
    pub current: u32,
    pub effective: u32,
    pub live: BTreeSet<u32>,
    pub streams: BTreeMap<u32, Stream>,

    // Root-context buffers and status.
    pub vm_configuration: Vec<u8>,
    /// Served as `PluginConfiguration` only while `proxy_on_configure` runs.
    pub plugin_configuration: Option<Vec<u8>>,
    /// Served as `GrpcReceiveBuffer` only while `proxy_on_grpc_receive` runs.
    pub grpc_receive_buffer: Option<Vec<u8>>,
    /// `proxy_get_status` on the root context: (code, message).
    pub grpc_status: (u32, String),
    pub tick_period_ms: u32,

    // Settings chosen by the test.
    pub time_nanos: u64,
    pub log_level: LogLevel,
    pub properties: BTreeMap<String, Vec<u8>>,
    pub grpc_dispatch: GrpcDispatch,
    /// `proxy_get_buffer_bytes` answers this status for these buffer types
    /// (a host read failing, which Envoy can do under memory pressure or on
    /// a buffer already drained).
    pub failing_buffers: BTreeMap<u32, u32>,

    // Records.
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub grpc_calls: Vec<GrpcCall>,
    pub next_token: u32,
    pub shared_data: BTreeMap<Vec<u8>, (Vec<u8>, u32)>,
    pub metrics: Vec<Metric>,
    pub random_state: u64,

    // Wasm plumbing, set right after instantiation.
    pub memory: Option<Memory>,
    pub malloc: Option<TypedFunc<i32, i32>>,
    pub limits: StoreLimits,
}

/// Default `source.address` property.
pub(crate) const DEFAULT_SOURCE_ADDRESS: &str = "127.0.0.1:54321";
/// Default `request.protocol` property.
pub(crate) const DEFAULT_REQUEST_PROTOCOL: &str = "HTTP/1.1";
/// Default clock: 2024-01-01T00:00:00Z.
pub(crate) const DEFAULT_TIME_NANOS: u64 = 1_704_067_200_000_000_000;

impl HostState {
    pub(crate) fn new(limits: StoreLimits) -> HostState {
        let mut properties = BTreeMap::new();
        properties.insert(
            "source.address".to_owned(),
            DEFAULT_SOURCE_ADDRESS.as_bytes().to_vec(),
        );
        properties.insert(
            "request.protocol".to_owned(),
            DEFAULT_REQUEST_PROTOCOL.as_bytes().to_vec(),
        );
        HostState {
            root_id: 1,
            current: 0,
            effective: 0,
            live: BTreeSet::new(),
            streams: BTreeMap::new(),
            vm_configuration: Vec::new(),
            plugin_configuration: None,
            grpc_receive_buffer: None,
            grpc_status: (0, String::new()),
            tick_period_ms: 0,
            time_nanos: DEFAULT_TIME_NANOS,
            log_level: LogLevel::Info,
            properties,
            grpc_dispatch: GrpcDispatch::Accept,
            failing_buffers: BTreeMap::new(),
            logs: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            grpc_calls: Vec::new(),
            next_token: 1,
            shared_data: BTreeMap::new(),
            metrics: Vec::new(),
            random_state: 0x9e37_79b9_7f4a_7c15,
            memory: None,
            malloc: None,
            limits,
        }
    }

    /// The context hostcalls act on: the effective context if one was set
    /// and still exists, else the context of the running callback (Envoy's
    /// `contextOrEffectiveContext`).
    pub(crate) fn context(&self) -> u32 {
        if self.effective != 0 && self.live.contains(&self.effective) {
            self.effective
        } else {
            self.current
        }
    }

    /// The live stream the hostcall acts on, if the context is a stream.
    pub(crate) fn stream_mut(&mut self) -> Option<&mut Stream> {
        let id = self.context();
        if id == self.root_id || !self.live.contains(&id) {
            return None;
        }
        self.streams.get_mut(&id)
    }

    pub(crate) fn stream(&self) -> Option<&Stream> {
        let id = self.context();
        if id == self.root_id || !self.live.contains(&id) {
            return None;
        }
        self.streams.get(&id)
    }

    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        let context_id = self.context();
        self.logs.push(LogLine {
            level,
            message,
            context_id,
        });
    }

    /// A property for `proxy_get_property`, by dotted path.
    pub(crate) fn property(&self, path: &str) -> Option<Vec<u8>> {
        let Some(stream) = self.stream() else {
            // The root context has no request or connection (Envoy: no
            // stream info), so only plugin-level properties are visible.
            if is_stream_property(path) {
                return None;
            }
            return self.properties.get(path).cloned();
        };
        if let Some(value) = stream.filter_properties.get(path) {
            return Some(value.clone());
        }
        if path == "request.id" {
            // Envoy's request.id is the x-request-id header (which Envoy
            // generates when the client sent none).
            if let Some(id) = stream.request_header_bytes("x-request-id") {
                return Some(id.to_vec());
            }
            if let Some(id) = self.properties.get(path) {
                return Some(id.clone());
            }
            let id = format!("00000000-0000-4000-8000-{:012x}", stream.id.0);
            return Some(id.into_bytes());
        }
        self.properties.get(path).cloned()
    }

    /// Deterministic bytes for WASI `random_get` (xorshift64*).
    pub(crate) fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            let mut x = self.random_state;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.random_state = x;
            out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// `proxy_grpc_call`'s answer for a cluster under the current mode.
    pub(crate) fn grpc_dispatch_status(&self, cluster: &str) -> u32 {
        match &self.grpc_dispatch {
            GrpcDispatch::Accept => status::OK,
            GrpcDispatch::Fail(status) => *status,
            GrpcDispatch::Clusters(known) => {
                if known.iter().any(|name| name == cluster) {
                    status::OK
                } else {
                    status::PARSE_FAILURE
                }
            }
        }
    }
}

/// Properties that only exist for a request (`request.*`, `source.*`, …).
fn is_stream_property(path: &str) -> bool {
    let top = path.split('.').next().unwrap_or(path);
    matches!(
        top,
        "request" | "response" | "source" | "destination" | "connection" | "upstream"
    )
}
