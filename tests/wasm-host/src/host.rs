//! [`Host`]: loads a module and drives it through Envoy's call sequence.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use wasmtime::{
    Config, Engine, Instance, Module, Store, StoreLimitsBuilder, TypedFunc, WasmParams, WasmResults,
};

use crate::abi::{Action, LogLevel};
use crate::imports::{self, Abi};
use crate::state::{GrpcCall, GrpcDispatch, HostState, LocalResponse, LogLine, Stream, StreamId};
use crate::trap::{self, LoadError, Trap, TrapKind};

/// Default fuel per call into the module (see [`Host::set_fuel_per_call`]).
pub const DEFAULT_FUEL_PER_CALL: u64 = 5_000_000_000;

/// Linear memory limit for the module (Envoy/V8 has its own; this only keeps
/// a runaway filter from eating the test machine).
const MEMORY_LIMIT: usize = 1 << 30;

/// What [`Host::configure`] observed.
#[derive(Debug, Clone)]
pub struct ConfigureOutcome {
    /// `proxy_on_vm_start` (first configure only) and `proxy_on_configure`
    /// both returned true. Envoy rejects the plugin otherwise.
    pub ok: bool,
    /// Log lines written during this call.
    pub logs: Vec<LogLine>,
}

/// A proxy-wasm module running as Envoy would run it, one VM per `Host`.
///
/// Call sequence: [`Host::load`] → [`Host::configure`] → for each request
/// [`Host::new_stream`], [`Host::request_headers`], [`Host::request_body`]…,
/// deliver gRPC replies with [`Host::grpc_receive`] / [`Host::grpc_close`],
/// then [`Host::end_stream`]. Inspect what the filter did with
/// [`Host::stream`], [`Host::grpc_calls`], [`Host::logs`].
///
/// Misusing the host itself (unknown stream, streams before `configure`)
/// panics; everything the module does comes back as a `Result`.
pub struct Host {
    store: Store<HostState>,
    exports: Exports,
    /// `_initialize`, the root context and `proxy_on_vm_start` have run.
    started: bool,
    /// `proxy_on_vm_start` returned false: the plugin never starts.
    start_failed: bool,
    failed: Option<Trap>,
    fuel_per_call: u64,
    last_fuel_used: u64,
    next_context_id: u32,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.store.data();
        f.debug_struct("Host")
            .field("root_context_id", &state.root_id)
            .field("started", &self.started)
            .field("live_contexts", &state.live)
            .field("failed", &self.failed.as_ref().map(|trap| trap.kind))
            .finish_non_exhaustive()
    }
}

/// The exports Envoy calls. Missing callbacks are skipped, as in Envoy.
struct Exports {
    initialize: Option<(&'static str, TypedFunc<(), ()>)>,
    on_context_create: Option<TypedFunc<(i32, i32), ()>>,
    on_vm_start: Option<TypedFunc<(i32, i32), i32>>,
    on_configure: Option<TypedFunc<(i32, i32), i32>>,
    on_tick: Option<TypedFunc<i32, ()>>,
    on_request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    on_request_trailers: Option<TypedFunc<(i32, i32), i32>>,
    on_grpc_receive: Option<TypedFunc<(i32, i32, i32), ()>>,
    on_grpc_close: Option<TypedFunc<(i32, i32, i32), ()>>,
    on_log: Option<TypedFunc<i32, ()>>,
    on_done: Option<TypedFunc<i32, i32>>,
    on_delete: Option<TypedFunc<i32, ()>>,
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        // Tests build wasmtime in debug, where Cranelift's optimizer makes
        // loading the filter take ~40 % longer; the filter's own code is
        // already optimized by rustc, and fuel counts do not depend on this.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        Engine::new(&config).expect("wasmtime engine")
    })
}

/// Compiles (or reuses) a module: compiling with a debug-built Cranelift is
/// the slow part (seconds for the filter), so each distinct module is
/// compiled once per process. The lock is held while compiling: tests
/// running in parallel that load the same module wait for the first
/// compilation instead of each compiling it again on the same few cores.
fn compile(bytes: &[u8]) -> Result<Module, LoadError> {
    static CACHE: OnceLock<Mutex<HashMap<(usize, u64), Module>>> = OnceLock::new();
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let key = (bytes.len(), hasher.finish());
    let mut cache = CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(module) = cache.get(&key) {
        return Ok(module.clone());
    }
    let module = Module::new(engine(), bytes).map_err(|e| LoadError::new(format!("{e:?}")))?;
    cache.insert(key, module.clone());
    Ok(module)
}

fn abi_version(module: &Module) -> Result<Abi, LoadError> {
    let has = |name: &str| module.exports().any(|export| export.name() == name);
    if has("proxy_abi_version_0_2_1") {
        Ok(Abi::V0_2_1)
    } else if has("proxy_abi_version_0_2_0") {
        Ok(Abi::V0_2_0)
    } else if has("proxy_abi_version_0_1_0") {
        Err(LoadError::new(
            "proxy-wasm ABI 0.1.0 is not supported by this host (the SDK 0.2.x exports proxy_abi_version_0_2_1)",
        ))
    } else {
        Err(LoadError::new(
            "no `proxy_abi_version_*` export: Envoy refuses modules of unknown ABI version",
        ))
    }
}

fn export<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, LoadError> {
    let Some(func) = instance.get_func(&mut *store, name) else {
        return Ok(None);
    };
    func.typed::<P, R>(&*store)
        .map(Some)
        .map_err(|e| LoadError::new(format!("export `{name}` has an unexpected signature: {e}")))
}

impl Host {
    /// Loads a `.wasm` file (or `.wat` text).
    pub fn load(path: impl AsRef<Path>) -> Result<Host, LoadError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| LoadError::new(format!("{}: {e}", path.display())))?;
        Host::from_bytes(&bytes)
    }

    /// Loads a module from wasm bytes or WAT text. Instantiates it with the
    /// imports Envoy provides; nothing in the module runs yet.
    pub fn from_bytes(bytes: &[u8]) -> Result<Host, LoadError> {
        let module = compile(bytes)?;
        let abi = abi_version(&module)?;
        let linker =
            imports::linker(engine(), abi).map_err(|e| LoadError::new(format!("{e:?}")))?;

        let limits = StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).build();
        let mut store = Store::new(engine(), HostState::new(limits));
        store.limiter(|state| &mut state.limits);

        let missing: Vec<String> = module
            .imports()
            .filter(|import| {
                linker
                    .get(&mut store, import.module(), import.name())
                    .is_err()
            })
            .map(|import| format!("{}.{}", import.module(), import.name()))
            .collect();
        if !missing.is_empty() {
            return Err(LoadError::new(format!(
                "the module imports {} which Envoy's proxy-wasm host does not provide either (Envoy would refuse to load it)",
                missing.join(", ")
            )));
        }

        // Fuel for a possible wasm start function.
        store
            .set_fuel(DEFAULT_FUEL_PER_CALL)
            .map_err(|e| LoadError::new(format!("{e}")))?;
        let instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| LoadError::new(format!("instantiation failed: {e:?}")))?;

        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| LoadError::new("the module exports no `memory`"))?;
        let malloc = match export::<i32, i32>(&mut store, &instance, "malloc")? {
            Some(malloc) => malloc,
            None => export::<i32, i32>(&mut store, &instance, "proxy_on_memory_allocate")?.ok_or_else(|| {
                LoadError::new("the module exports neither `malloc` nor `proxy_on_memory_allocate` (Envoy: missing malloc)")
            })?,
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().malloc = Some(malloc);

        let mut initialize = None;
        for name in ["_initialize", "_start", "__wasm_call_ctors"] {
            if let Some(func) = export::<(), ()>(&mut store, &instance, name)? {
                initialize = Some((name, func));
                break;
            }
        }
        let exports = Exports {
            initialize,
            on_context_create: export(&mut store, &instance, "proxy_on_context_create")?,
            on_vm_start: export(&mut store, &instance, "proxy_on_vm_start")?,
            on_configure: export(&mut store, &instance, "proxy_on_configure")?,
            on_tick: export(&mut store, &instance, "proxy_on_tick")?,
            on_request_headers: export(&mut store, &instance, "proxy_on_request_headers")?,
            on_request_body: export(&mut store, &instance, "proxy_on_request_body")?,
            on_request_trailers: export(&mut store, &instance, "proxy_on_request_trailers")?,
            on_grpc_receive: export(&mut store, &instance, "proxy_on_grpc_receive")?,
            on_grpc_close: export(&mut store, &instance, "proxy_on_grpc_close")?,
            on_log: export(&mut store, &instance, "proxy_on_log")?,
            on_done: export(&mut store, &instance, "proxy_on_done")?,
            on_delete: export(&mut store, &instance, "proxy_on_delete")?,
        };
        let root_id = store.data().root_id;
        Ok(Host {
            store,
            exports,
            started: false,
            start_failed: false,
            failed: None,
            fuel_per_call: DEFAULT_FUEL_PER_CALL,
            last_fuel_used: 0,
            next_context_id: root_id + 1,
        })
    }

    // -----------------------------------------------------------------------
    // Driving the module.

    /// Starts the VM on the first call (`_initialize`, root context
    /// `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`), then runs
    /// `proxy_on_configure(root, len)` with `plugin_configuration` served as
    /// the `PluginConfiguration` buffer. Later calls reconfigure.
    pub fn configure(
        &mut self,
        plugin_configuration: impl AsRef<[u8]>,
    ) -> Result<ConfigureOutcome, Trap> {
        self.ensure_alive("proxy_on_configure")?;
        let log_mark = self.store.data().logs.len();
        let root = self.root_context_id();
        if !self.started {
            self.started = true;
            if let Some((name, init)) = self.exports.initialize.clone() {
                self.run(0, name, |store| init.call(store, ()))?;
            }
            self.store.data_mut().live.insert(root);
            if let Some(create) = self.exports.on_context_create.clone() {
                self.run(root, "proxy_on_context_create", |store| {
                    create.call(store, (root as i32, 0))
                })?;
            }
            if let Some(start) = self.exports.on_vm_start.clone() {
                let size = self.store.data().vm_configuration.len() as i32;
                let started = self.run(root, "proxy_on_vm_start", |store| {
                    start.call(store, (root as i32, size))
                })?;
                self.start_failed = started == 0;
            }
        }
        let mut ok = !self.start_failed;
        if ok && let Some(configure) = self.exports.on_configure.clone() {
            let config = plugin_configuration.as_ref().to_vec();
            let size = config.len() as i32;
            self.store.data_mut().plugin_configuration = Some(config);
            let result = self.run(root, "proxy_on_configure", |store| {
                configure.call(store, (root as i32, size))
            });
            self.store.data_mut().plugin_configuration = None;
            ok = result? != 0;
        }
        let logs = self
            .store
            .data()
            .logs
            .get(log_mark..)
            .unwrap_or_default()
            .to_vec();
        Ok(ConfigureOutcome { ok, logs })
    }

    /// Creates an HTTP stream: `proxy_on_context_create(stream, root)`.
    pub fn new_stream(&mut self) -> Result<StreamId, Trap> {
        assert!(self.started, "call Host::configure before Host::new_stream");
        self.ensure_alive("proxy_on_context_create")?;
        let id = self.next_context_id;
        self.next_context_id += 1;
        let root = self.root_context_id();
        let state = self.store.data_mut();
        state.streams.insert(id, Stream::new(StreamId(id)));
        state.live.insert(id);
        if let Some(create) = self.exports.on_context_create.clone() {
            self.run(id, "proxy_on_context_create", |store| {
                create.call(store, (id as i32, root as i32))
            })?;
        }
        Ok(StreamId(id))
    }

    /// Delivers the request headers (pseudo-headers `:method`, `:path`,
    /// `:authority`, `:scheme` included; names are lower-cased as in Envoy):
    /// `proxy_on_request_headers(stream, count, end_of_stream)`. Values are
    /// anything `Into<Vec<u8>>` (`&str`, `String`, bytes): Envoy passes
    /// non-UTF-8 values (HTTP `obs-text`) through to the filter.
    ///
    /// Like Envoy, the headers stay readable/writable by the filter until it
    /// continues the request (returns `Continue` here, or calls
    /// `resume_http_request` later); after that, reading them answers
    /// `BadArgument`, which the Rust SDK turns into a panic.
    pub fn request_headers<I, K, V>(
        &mut self,
        stream: StreamId,
        headers: I,
        end_of_stream: bool,
    ) -> Result<Action, Trap>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Vec<u8>>,
    {
        self.ensure_alive("proxy_on_request_headers")?;
        let headers: Vec<(String, Vec<u8>)> = headers
            .into_iter()
            .map(|(key, value)| (key.into().to_ascii_lowercase(), value.into()))
            .collect();
        let count = headers.len() as i32;
        let record = self.live_stream_mut(stream);
        record.request_headers = headers;
        record.headers_available = true;
        let action = match self.exports.on_request_headers.clone() {
            Some(on_headers) => {
                Action::from_raw(self.run(stream.0, "proxy_on_request_headers", |store| {
                    on_headers.call(store, (stream.0 as i32, count, i32::from(end_of_stream)))
                })?)
            }
            None => Action::Continue,
        };
        if action == Action::Continue {
            self.live_stream_mut(stream).headers_available = false;
        }
        Ok(action)
    }

    /// Delivers a request body chunk: `proxy_on_request_body(stream, size,
    /// end_of_stream)`, where `size` is the whole buffer the filter can read.
    ///
    /// As in Envoy: if the filter answered `Pause` (StopIterationAndBuffer)
    /// to the previous chunk, this chunk is appended to the buffered body;
    /// otherwise the buffer holds only this chunk.
    pub fn request_body(
        &mut self,
        stream: StreamId,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, Trap> {
        self.ensure_alive("proxy_on_request_body")?;
        let record = self.live_stream_mut(stream);
        if record.buffering_body {
            record.request_body.extend_from_slice(chunk);
        } else {
            record.request_body = chunk.to_vec();
        }
        record.body_available = true;
        let size = record.request_body.len() as i32;
        let raw = match self.exports.on_request_body.clone() {
            Some(on_body) => self.run(stream.0, "proxy_on_request_body", |store| {
                on_body.call(store, (stream.0 as i32, size, i32::from(end_of_stream)))
            })?,
            None => 0,
        };
        let record = self.live_stream_mut(stream);
        record.buffering_body = raw == 1;
        if raw == 0 {
            record.body_available = false;
        }
        Ok(Action::from_raw(raw))
    }

    /// Delivers the request trailers, which end the request:
    /// `proxy_on_request_trailers(stream, count)`. The body buffered so far
    /// stays readable (Envoy's decoding buffer) while the filter holds the
    /// request.
    pub fn request_trailers<I, K, V>(
        &mut self,
        stream: StreamId,
        trailers: I,
    ) -> Result<Action, Trap>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Vec<u8>>,
    {
        self.ensure_alive("proxy_on_request_trailers")?;
        let trailers: Vec<(String, Vec<u8>)> = trailers
            .into_iter()
            .map(|(key, value)| (key.into().to_ascii_lowercase(), value.into()))
            .collect();
        let count = trailers.len() as i32;
        let record = self.live_stream_mut(stream);
        record.request_trailers = trailers;
        record.trailers_available = true;
        let action = match self.exports.on_request_trailers.clone() {
            Some(on_trailers) => {
                Action::from_raw(self.run(stream.0, "proxy_on_request_trailers", |store| {
                    on_trailers.call(store, (stream.0 as i32, count))
                })?)
            }
            None => Action::Continue,
        };
        if action == Action::Continue {
            let record = self.live_stream_mut(stream);
            record.trailers_available = false;
            record.body_available = false;
        }
        Ok(action)
    }

    /// Delivers a successful gRPC reply: `proxy_on_grpc_receive(root, token,
    /// size)`, with `message` served as the `GrpcReceiveBuffer` (type 5).
    /// Envoy delivers replies to the root context (the call belongs to it);
    /// the SDK then switches to the context that dispatched the call. Any
    /// token may be delivered, including unknown, cancelled or late ones.
    pub fn grpc_receive(&mut self, token: u32, message: &[u8]) -> Result<(), Trap> {
        assert!(self.started, "call Host::configure first");
        self.ensure_alive("proxy_on_grpc_receive")?;
        let root = self.root_context_id();
        self.store.data_mut().grpc_receive_buffer = Some(message.to_vec());
        let size = message.len() as i32;
        let result = match self.exports.on_grpc_receive.clone() {
            Some(on_receive) => self.run(root, "proxy_on_grpc_receive", |store| {
                on_receive.call(store, (root as i32, token as i32, size))
            }),
            None => Ok(()),
        };
        self.store.data_mut().grpc_receive_buffer = None;
        // Like Envoy, the call is forgotten after the callback (cancelling it
        // from inside the callback still works).
        self.finish_grpc_call(token);
        result
    }

    /// Delivers a failed gRPC call: `proxy_on_grpc_close(root, token, code)`;
    /// during the call `proxy_get_status` answers `(code, message)` (from
    /// the root context, as Envoy, so also after the SDK switched to the
    /// HTTP context). Afterwards the message reads empty, the code stays.
    pub fn grpc_close(&mut self, token: u32, status_code: u32, message: &str) -> Result<(), Trap> {
        assert!(self.started, "call Host::configure first");
        self.ensure_alive("proxy_on_grpc_close")?;
        let root = self.root_context_id();
        self.store.data_mut().grpc_status = (status_code, message.to_owned());
        let result = match self.exports.on_grpc_close.clone() {
            Some(on_close) => self.run(root, "proxy_on_grpc_close", |store| {
                on_close.call(store, (root as i32, token as i32, status_code as i32))
            }),
            None => Ok(()),
        };
        self.store.data_mut().grpc_status.1.clear();
        self.finish_grpc_call(token);
        result
    }

    /// Fires the root context's timer once: `proxy_on_tick(root)`.
    pub fn tick(&mut self) -> Result<(), Trap> {
        assert!(self.started, "call Host::configure first");
        self.ensure_alive("proxy_on_tick")?;
        let root = self.root_context_id();
        match self.exports.on_tick.clone() {
            Some(on_tick) => self.run(root, "proxy_on_tick", |store| {
                on_tick.call(store, root as i32)
            }),
            None => Ok(()),
        }
    }

    /// Ends a stream in Envoy's order: `proxy_on_log` (access log; the
    /// request headers are readable again, read-only), then `proxy_on_done`
    /// and `proxy_on_delete` (filter destroyed). The stream's record stays
    /// available; its context id is gone for the module.
    pub fn end_stream(&mut self, stream: StreamId) -> Result<(), Trap> {
        let _ = self.live_stream_mut(stream); // asserts the stream is live
        self.ensure_alive("proxy_on_log")?;
        let id = stream.0 as i32;
        let result = self.end_stream_calls(id);
        let state = self.store.data_mut();
        state.live.remove(&stream.0);
        if let Some(record) = state.streams.get_mut(&stream.0) {
            record.ended = true;
            record.headers_available = false;
            record.trailers_available = false;
            record.body_available = false;
        }
        result
    }

    fn end_stream_calls(&mut self, id: i32) -> Result<(), Trap> {
        let context = id as u32;
        if let Some(on_log) = self.exports.on_log.clone() {
            // Envoy's access-log phase: the request headers are readable.
            self.set_access_log_phase(context, true);
            let logged = self.run(context, "proxy_on_log", |store| on_log.call(store, id));
            self.set_access_log_phase(context, false);
            logged?;
        }
        if let Some(on_done) = self.exports.on_done.clone() {
            self.run(context, "proxy_on_done", |store| on_done.call(store, id))?;
        }
        if let Some(on_delete) = self.exports.on_delete.clone() {
            self.run(context, "proxy_on_delete", |store| {
                on_delete.call(store, id)
            })?;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // Observations.

    /// Every log line so far: `proxy_log` calls and stdout/stderr writes.
    pub fn logs(&self) -> &[LogLine] {
        &self.store.data().logs
    }

    /// Everything the module wrote to stdout.
    pub fn stdout(&self) -> &str {
        &self.store.data().stdout
    }

    /// Everything the module wrote to stderr.
    pub fn stderr(&self) -> &str {
        &self.store.data().stderr
    }

    /// The record of a stream (also after it ended).
    pub fn stream(&self, stream: StreamId) -> &Stream {
        self.store
            .data()
            .streams
            .get(&stream.0)
            .unwrap_or_else(|| panic!("unknown stream {stream:?}"))
    }

    /// The local responses the filter sent on a stream.
    pub fn local_responses(&self, stream: StreamId) -> &[LocalResponse] {
        &self.stream(stream).local_responses
    }

    /// Every `proxy_grpc_call`, in order (failed dispatches included).
    pub fn grpc_calls(&self) -> &[GrpcCall] {
        &self.store.data().grpc_calls
    }

    /// The period set with `proxy_set_tick_period_milliseconds` (0 = none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// The value of a metric the filter defined, by name.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.store
            .data()
            .metrics
            .iter()
            .find(|metric| metric.name == name)
            .map(|metric| metric.value)
    }

    /// Fuel the last call into the module used (≈ wasm instructions).
    pub fn fuel_used_by_last_call(&self) -> u64 {
        self.last_fuel_used
    }

    /// The root context id (Envoy passes it to `proxy_on_grpc_*`).
    pub fn root_context_id(&self) -> u32 {
        self.store.data().root_id
    }

    // -----------------------------------------------------------------------
    // Settings.

    /// Sets the clock (`proxy_get_current_time_nanoseconds`, WASI clocks).
    /// Default: 2024-01-01T00:00:00Z.
    pub fn set_time(&mut self, unix_nanos: u64) {
        self.store.data_mut().time_nanos = unix_nanos;
    }

    /// Sets a property served by `proxy_get_property`, by dotted path
    /// (`"source.address"`). Defaults: `source.address` = `127.0.0.1:54321`,
    /// `request.protocol` = `HTTP/1.1`; `request.id` is the stream's
    /// `x-request-id` header, else this property, else a made-up id. Other
    /// paths answer NotFound, and on the root context every request,
    /// response, source, destination, connection and upstream property does.
    pub fn set_property(&mut self, path: &str, value: impl Into<Vec<u8>>) {
        self.store
            .data_mut()
            .properties
            .insert(path.to_owned(), value.into());
    }

    /// Removes a property (it then answers NotFound).
    pub fn remove_property(&mut self, path: &str) {
        self.store.data_mut().properties.remove(path);
    }

    /// From now on `proxy_get_buffer_bytes` on `buffer_type` answers
    /// `status` (e.g. [`status::INTERNAL_FAILURE`] or [`status::NOT_FOUND`]).
    pub fn fail_buffer_reads(&mut self, buffer_type: u32, status: u32) {
        self.store
            .data_mut()
            .failing_buffers
            .insert(buffer_type, status);
    }

    /// How `proxy_grpc_call` answers from now on.
    pub fn set_grpc_dispatch(&mut self, mode: GrpcDispatch) {
        self.store.data_mut().grpc_dispatch = mode;
    }

    /// The token the next successful `proxy_grpc_call` gets (then +1).
    /// Envoy's call tokens come from a per-VM counter that wraps around
    /// (proxy-wasm-cpp-host has no rollover protection), so a long-lived VM
    /// sees old tokens again; this simulates that.
    pub fn set_next_grpc_token(&mut self, token: u32) {
        self.store.data_mut().next_token = token;
    }

    /// The level `proxy_get_log_level` reports (default `Info`, as Envoy's
    /// default). Every `proxy_log` line is recorded whatever the level.
    pub fn set_log_level(&mut self, level: LogLevel) {
        self.store.data_mut().log_level = level;
    }

    /// Fuel (≈ wasm instructions) each call into the module may use before
    /// it traps with [`TrapKind::OutOfFuel`]. Default
    /// [`DEFAULT_FUEL_PER_CALL`]: an endless loop traps after ~1–2 s, while a
    /// proxy-wasm filter base64-encoding a 6 MB body into JSON used ~0.5e9.
    pub fn set_fuel_per_call(&mut self, fuel: u64) {
        self.fuel_per_call = fuel;
    }

    // -----------------------------------------------------------------------
    // Internals.

    fn live_stream_mut(&mut self, stream: StreamId) -> &mut Stream {
        let state = self.store.data_mut();
        assert!(
            state.live.contains(&stream.0),
            "stream {stream:?} is unknown or already ended"
        );
        state
            .streams
            .get_mut(&stream.0)
            .unwrap_or_else(|| panic!("unknown stream {stream:?}"))
    }

    fn set_access_log_phase(&mut self, context: u32, on: bool) {
        if let Some(record) = self.store.data_mut().streams.get_mut(&context) {
            record.access_log_phase = on;
        }
    }

    fn finish_grpc_call(&mut self, token: u32) {
        // The latest call with this token: tokens repeat once the counter
        // wraps around (see `set_next_grpc_token`).
        if let Some(call) = self
            .store
            .data_mut()
            .grpc_calls
            .iter_mut()
            .rev()
            .find(|call| call.token == Some(token))
        {
            call.finished = true;
        }
    }

    /// Fails with [`TrapKind::VmFailed`] once a call trapped: like Envoy,
    /// a failed VM runs nothing more (even callbacks the module lacks).
    fn ensure_alive(&self, callback: &str) -> Result<(), Trap> {
        match &self.failed {
            None => Ok(()),
            Some(earlier) => Err(Trap {
                kind: TrapKind::VmFailed,
                callback: callback.to_owned(),
                message: format!(
                    "the VM failed earlier, in {} ({:?}); load a new Host",
                    earlier.callback, earlier.kind
                ),
                panic_message: earlier.panic_message.clone(),
                stderr: String::new(),
            }),
        }
    }

    /// Runs one call into the module for `context` with a fresh fuel budget,
    /// turning any failure into a [`Trap`]. After a trap the VM is failed.
    fn run<R>(
        &mut self,
        context: u32,
        callback: &str,
        call: impl FnOnce(&mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, Trap> {
        self.ensure_alive(callback)?;
        self.store
            .set_fuel(self.fuel_per_call)
            .expect("fuel is enabled");
        let state = self.store.data_mut();
        let (log_mark, stderr_mark) = (state.logs.len(), state.stderr.len());
        state.current = context;
        state.effective = 0;

        let result = call(&mut self.store);

        let remaining = self.store.get_fuel().unwrap_or(0);
        self.last_fuel_used = self.fuel_per_call.saturating_sub(remaining);
        let state = self.store.data_mut();
        state.current = 0;
        state.effective = 0;
        result.map_err(|error| {
            let state = self.store.data();
            let failure = Trap {
                kind: trap::classify(&error),
                callback: callback.to_owned(),
                message: format!("{error:?}"),
                panic_message: state
                    .logs
                    .get(log_mark..)
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find(|line| line.level == LogLevel::Critical)
                    .map(|line| line.message.clone()),
                stderr: state
                    .stderr
                    .get(stderr_mark..)
                    .unwrap_or_default()
                    .to_owned(),
            };
            self.failed = Some(failure.clone());
            failure
        })
    }
}
