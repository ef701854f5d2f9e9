//! The functions the module imports: `env.proxy_*` (proxy-wasm ABI 0.2.x)
//! and the WASI subset Envoy provides, written by hand after Envoy's
//! proxy-wasm host (current proxy-wasm-cpp-host `src/exports.cc`,
//! `include/proxy-wasm/exports.h`, and Envoy's
//! `source/extensions/common/wasm/context.cc`).
//!
//! The import set is exactly Envoy's: a module importing anything else fails
//! to load here as it would in Envoy.

use wasmtime::{Caller, Engine, Linker};

use crate::abi::{LogLevel, buffer, errno, map, status, stream};
use crate::pairs;
use crate::state::{GrpcCall, HostState, LocalResponse, Metric, MetricKind};
use crate::trap::ProcExit;

/// Which proxy-wasm ABI the module declared (`proxy_abi_version_*` export).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Abi {
    V0_2_0,
    V0_2_1,
}

type Ctx<'a> = Caller<'a, HostState>;
type Status = wasmtime::Result<i32>;

/// Largest WASI `random_get` request Envoy serves.
const RANDOM_GET_MAX: usize = 64 * 1024;

/// Builds the linker with every import Envoy offers a module of this ABI.
pub(crate) fn linker(engine: &Engine, abi: Abi) -> wasmtime::Result<Linker<HostState>> {
    let mut l = Linker::new(engine);
    l.func_wrap("env", "pthread_equal", pthread_equal)?;
    l.func_wrap(
        "env",
        "emscripten_notify_memory_growth",
        emscripten_notify_memory_growth,
    )?;

    for wasi in ["wasi_snapshot_preview1", "wasi_unstable"] {
        l.func_wrap(wasi, "fd_write", fd_write)?;
        l.func_wrap(wasi, "fd_read", fd_read)?;
        l.func_wrap(wasi, "fd_seek", fd_seek)?;
        l.func_wrap(wasi, "fd_close", fd_close)?;
        l.func_wrap(wasi, "fd_fdstat_get", fd_fdstat_get)?;
        l.func_wrap(wasi, "environ_get", environ_get)?;
        l.func_wrap(wasi, "environ_sizes_get", environ_sizes_get)?;
        l.func_wrap(wasi, "args_get", args_get)?;
        l.func_wrap(wasi, "args_sizes_get", args_sizes_get)?;
        l.func_wrap(wasi, "clock_time_get", clock_time_get)?;
        l.func_wrap(wasi, "random_get", random_get)?;
        l.func_wrap(wasi, "proc_exit", proc_exit)?;
        l.func_wrap(wasi, "path_open", path_open)?;
        l.func_wrap(wasi, "fd_prestat_get", fd_prestat_get)?;
        l.func_wrap(wasi, "fd_prestat_dir_name", fd_prestat_dir_name)?;
    }

    l.func_wrap("env", "proxy_log", proxy_log)?;
    l.func_wrap("env", "proxy_get_status", proxy_get_status)?;
    l.func_wrap("env", "proxy_set_property", proxy_set_property)?;
    l.func_wrap("env", "proxy_get_property", proxy_get_property)?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        proxy_send_local_response,
    )?;
    l.func_wrap("env", "proxy_get_shared_data", proxy_get_shared_data)?;
    l.func_wrap("env", "proxy_set_shared_data", proxy_set_shared_data)?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        proxy_register_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        proxy_resolve_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        proxy_dequeue_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        proxy_enqueue_shared_queue,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        proxy_get_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        proxy_add_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        proxy_replace_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        proxy_remove_header_map_value,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        proxy_get_header_map_pairs,
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        proxy_set_header_map_pairs,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        proxy_get_header_map_size,
    )?;
    l.func_wrap("env", "proxy_get_buffer_status", proxy_get_buffer_status)?;
    l.func_wrap("env", "proxy_get_buffer_bytes", proxy_get_buffer_bytes)?;
    l.func_wrap("env", "proxy_set_buffer_bytes", proxy_set_buffer_bytes)?;
    l.func_wrap("env", "proxy_http_call", proxy_http_call)?;
    l.func_wrap("env", "proxy_grpc_call", proxy_grpc_call)?;
    l.func_wrap("env", "proxy_grpc_stream", proxy_grpc_stream)?;
    l.func_wrap("env", "proxy_grpc_close", proxy_grpc_close)?;
    l.func_wrap("env", "proxy_grpc_cancel", proxy_grpc_cancel)?;
    l.func_wrap("env", "proxy_grpc_send", proxy_grpc_send)?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        proxy_set_tick_period_milliseconds,
    )?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        proxy_get_current_time_nanoseconds,
    )?;
    l.func_wrap("env", "proxy_define_metric", proxy_define_metric)?;
    l.func_wrap("env", "proxy_increment_metric", proxy_increment_metric)?;
    l.func_wrap("env", "proxy_record_metric", proxy_record_metric)?;
    l.func_wrap("env", "proxy_get_metric", proxy_get_metric)?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        proxy_set_effective_context,
    )?;
    l.func_wrap("env", "proxy_done", proxy_done)?;
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        proxy_call_foreign_function,
    )?;
    // ABI 0.2.x only; `proxy_continue_request` & co. are ABI 0.1.0, which
    // Envoy does not link for 0.2.x modules.
    l.func_wrap("env", "proxy_continue_stream", proxy_continue_stream)?;
    l.func_wrap("env", "proxy_close_stream", proxy_close_stream)?;
    if abi == Abi::V0_2_1 {
        l.func_wrap("env", "proxy_get_log_level", proxy_get_log_level)?;
    }
    Ok(l)
}

// ---------------------------------------------------------------------------
// Guest memory.

fn ok(code: u32) -> Status {
    Ok(code as i32)
}

fn addr(value: i32) -> usize {
    value as u32 as usize
}

/// Reads `len` bytes at `ptr`; `None` when out of bounds.
fn read(caller: &Ctx<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = caller.data().memory?;
    let data = memory.data(caller);
    let start = addr(ptr);
    data.get(start..start.checked_add(addr(len))?)
        .map(<[u8]>::to_vec)
}

fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> bool {
    let Some(memory) = caller.data().memory else {
        return false;
    };
    memory.write(caller, addr(ptr), bytes).is_ok()
}

fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

fn write_u64(caller: &mut Ctx<'_>, ptr: i32, value: u64) -> bool {
    write(caller, ptr, &value.to_le_bytes())
}

/// Envoy's `copyToPointerSize`: copies `bytes` into memory allocated by the
/// module's allocator and stores pointer and size; empty data is stored as a
/// null pointer and size 0. `Ok(false)` = invalid memory access; `Err` = the
/// allocator trapped.
fn copy_out(
    caller: &mut Ctx<'_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> wasmtime::Result<bool> {
    let mut pointer = 0u32;
    if !bytes.is_empty() {
        let Ok(size) = i32::try_from(bytes.len()) else {
            return Ok(false);
        };
        let Some(malloc) = caller.data().malloc.clone() else {
            return Ok(false);
        };
        let allocated = malloc.call(&mut *caller, size)?;
        if allocated == 0 || !write(caller, allocated, bytes) {
            return Ok(false);
        }
        pointer = allocated as u32;
    }
    let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    Ok(write_u32(caller, ptr_ptr, pointer) && write_u32(caller, size_ptr, size))
}

fn copied(result: bool) -> Status {
    ok(if result {
        status::OK
    } else {
        status::INVALID_MEMORY_ACCESS
    })
}

// ---------------------------------------------------------------------------
// Logging, time, configuration.

fn proxy_log(mut caller: Ctx<'_>, level: i32, ptr: i32, size: i32) -> Status {
    let Some(level) = LogLevel::from_u32(level as u32) else {
        return ok(status::BAD_ARGUMENT);
    };
    let Some(message) = read(&caller, ptr, size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    caller.data_mut().log(level, pairs::text(&message));
    ok(status::OK)
}

fn proxy_get_log_level(mut caller: Ctx<'_>, level_ptr: i32) -> Status {
    let level = caller.data().log_level as u32;
    copied(write_u32(&mut caller, level_ptr, level))
}

fn proxy_get_current_time_nanoseconds(mut caller: Ctx<'_>, time_ptr: i32) -> Status {
    let now = caller.data().time_nanos;
    copied(write_u64(&mut caller, time_ptr, now))
}

fn proxy_set_tick_period_milliseconds(mut caller: Ctx<'_>, period: i32) -> Status {
    caller.data_mut().tick_period_ms = period as u32;
    ok(status::OK)
}

fn proxy_get_status(mut caller: Ctx<'_>, code_ptr: i32, message_ptr: i32, size_ptr: i32) -> Status {
    // Envoy keeps the gRPC status on the root context (gRPC calls belong to
    // it) and reads it from there whatever the effective context is.
    let (code, message) = caller.data().grpc_status.clone();
    if !write_u32(&mut caller, code_ptr, code) {
        return ok(status::INVALID_MEMORY_ACCESS);
    }
    copied(copy_out(
        &mut caller,
        message.as_bytes(),
        message_ptr,
        size_ptr,
    )?)
}

// ---------------------------------------------------------------------------
// Properties.

fn property_path(raw: &[u8]) -> String {
    raw.split(|byte| *byte == 0)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect::<Vec<_>>()
        .join(".")
}

fn proxy_get_property(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_size: i32,
    value_ptr: i32,
    size_ptr: i32,
) -> Status {
    let Some(path) = read(&caller, path_ptr, path_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    if path.is_empty() {
        return ok(status::NOT_FOUND);
    }
    let Some(value) = caller.data().property(&property_path(&path)) else {
        return ok(status::NOT_FOUND);
    };
    copied(copy_out(&mut caller, &value, value_ptr, size_ptr)?)
}

fn proxy_set_property(
    mut caller: Ctx<'_>,
    path_ptr: i32,
    path_size: i32,
    value_ptr: i32,
    value_size: i32,
) -> Status {
    let (Some(path), Some(value)) = (
        read(&caller, path_ptr, path_size),
        read(&caller, value_ptr, value_size),
    ) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    // Envoy stores properties in the request's filter state: no request, no
    // property (NotFound on the root context).
    match caller.data_mut().stream_mut() {
        Some(stream) => {
            stream.filter_properties.insert(property_path(&path), value);
            ok(status::OK)
        }
        None => ok(status::NOT_FOUND),
    }
}

// ---------------------------------------------------------------------------
// Header maps. Only the request headers and trailers of a stream exist
// here; like Envoy,
// an unavailable map reads as empty pairs and answers BadArgument to
// everything else (which the Rust SDK turns into a panic). During
// `proxy_on_log` the request headers are readable and a missing map or
// header is NotFound.

/// The map to modify (Envoy's `getMap`).
fn header_map(state: &mut HostState, map_type: u32) -> Option<&mut Vec<(String, Vec<u8>)>> {
    let stream = state.stream_mut()?;
    match map_type {
        map::HTTP_REQUEST_HEADERS if stream.headers_available => Some(&mut stream.request_headers),
        map::HTTP_REQUEST_TRAILERS if stream.trailers_available => {
            Some(&mut stream.request_trailers)
        }
        _ => None,
    }
}

/// The map to read (Envoy's `getConstMap`), or the status for a missing one.
fn readable_header_map(state: &HostState, map_type: u32) -> Result<&[(String, Vec<u8>)], u32> {
    let logging = state.stream().is_some_and(|stream| stream.access_log_phase);
    let missing = if logging {
        status::NOT_FOUND
    } else {
        status::BAD_ARGUMENT
    };
    let Some(stream) = state.stream() else {
        return Err(missing);
    };
    match map_type {
        map::HTTP_REQUEST_HEADERS if stream.headers_available || logging => {
            Ok(stream.request_headers.as_slice())
        }
        map::HTTP_REQUEST_TRAILERS if stream.trailers_available || logging => {
            Ok(stream.request_trailers.as_slice())
        }
        _ => Err(missing),
    }
}

fn header_key(raw: &[u8]) -> String {
    pairs::text(raw).to_ascii_lowercase()
}

fn proxy_get_header_map_pairs(
    mut caller: Ctx<'_>,
    map_type: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let headers = readable_header_map(caller.data(), map_type as u32)
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let bytes = if headers.is_empty() {
        Vec::new()
    } else {
        pairs::serialize(&headers)
    };
    copied(copy_out(&mut caller, &bytes, ptr_ptr, size_ptr)?)
}

fn proxy_set_header_map_pairs(mut caller: Ctx<'_>, map_type: i32, ptr: i32, size: i32) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let Some(bytes) = read(&caller, ptr, size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let Some(headers) = header_map(caller.data_mut(), map_type as u32) else {
        return ok(status::BAD_ARGUMENT);
    };
    *headers = pairs::deserialize(&bytes)
        .into_iter()
        .map(|(key, value)| (header_key(&key), value))
        .collect();
    ok(status::OK)
}

fn proxy_get_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    size_ptr: i32,
) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let Some(key) = read(&caller, key_ptr, key_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let key = header_key(&key);
    let headers = match readable_header_map(caller.data(), map_type as u32) {
        Ok(headers) => headers,
        Err(missing) => return ok(missing),
    };
    let Some((_, value)) = headers.iter().find(|(name, _)| *name == key) else {
        return ok(status::NOT_FOUND);
    };
    let value = value.clone();
    copied(copy_out(&mut caller, &value, value_ptr, size_ptr)?)
}

/// Shared body of add / replace: `replace` first removes every `key`.
fn put_header(
    caller: &mut Ctx<'_>,
    map_type: i32,
    key: (i32, i32),
    value: (i32, i32),
    replace: bool,
) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let (Some(key), Some(value)) = (read(caller, key.0, key.1), read(caller, value.0, value.1))
    else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let Some(headers) = header_map(caller.data_mut(), map_type as u32) else {
        return ok(status::BAD_ARGUMENT);
    };
    let key = header_key(&key);
    if replace {
        headers.retain(|(name, _)| *name != key);
    }
    headers.push((key, value));
    ok(status::OK)
}

fn proxy_add_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    value_size: i32,
) -> Status {
    put_header(
        &mut caller,
        map_type,
        (key_ptr, key_size),
        (value_ptr, value_size),
        false,
    )
}

fn proxy_replace_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    value_size: i32,
) -> Status {
    put_header(
        &mut caller,
        map_type,
        (key_ptr, key_size),
        (value_ptr, value_size),
        true,
    )
}

fn proxy_remove_header_map_value(
    mut caller: Ctx<'_>,
    map_type: i32,
    key_ptr: i32,
    key_size: i32,
) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let Some(key) = read(&caller, key_ptr, key_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let key = header_key(&key);
    let Some(headers) = header_map(caller.data_mut(), map_type as u32) else {
        return ok(status::BAD_ARGUMENT);
    };
    headers.retain(|(name, _)| *name != key);
    ok(status::OK)
}

fn proxy_get_header_map_size(mut caller: Ctx<'_>, map_type: i32, size_ptr: i32) -> Status {
    if map_type as u32 > map::MAX {
        return ok(status::BAD_ARGUMENT);
    }
    let Some(headers) = header_map(caller.data_mut(), map_type as u32) else {
        return ok(status::BAD_ARGUMENT);
    };
    let size: usize = headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    copied(write_u32(
        &mut caller,
        size_ptr,
        u32::try_from(size).unwrap_or(u32::MAX),
    ))
}

// ---------------------------------------------------------------------------
// Buffers.

/// The contents of a buffer as the acting context sees it; `None` = the
/// buffer does not exist (NotFound), as Envoy's `Context::getBuffer`.
fn buffer_contents(state: &mut HostState, buffer_type: u32) -> Option<Vec<u8>> {
    match buffer_type {
        buffer::HTTP_REQUEST_BODY => Some(
            state
                .stream()
                .filter(|stream| stream.body_available)
                .map(|stream| stream.request_body.clone())
                .unwrap_or_default(),
        ),
        buffer::HTTP_RESPONSE_BODY
        | buffer::DOWNSTREAM_DATA
        | buffer::UPSTREAM_DATA
        | buffer::CALL_DATA => Some(Vec::new()),
        buffer::GRPC_RECEIVE_BUFFER => Some(state.grpc_receive_buffer.clone().unwrap_or_default()),
        buffer::VM_CONFIGURATION => Some(state.vm_configuration.clone()),
        buffer::PLUGIN_CONFIGURATION if state.context() == state.root_id => {
            state.plugin_configuration.clone()
        }
        // No HTTP call responses (`proxy_http_call` is not modelled).
        buffer::HTTP_CALL_RESPONSE_BODY => None,
        _ => None,
    }
}

fn proxy_get_buffer_status(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    length_ptr: i32,
    flags_ptr: i32,
) -> Status {
    if buffer_type as u32 > buffer::CALL_DATA {
        return ok(status::BAD_ARGUMENT);
    }
    let Some(contents) = buffer_contents(caller.data_mut(), buffer_type as u32) else {
        return ok(status::NOT_FOUND);
    };
    let length = u32::try_from(contents.len()).unwrap_or(u32::MAX);
    copied(write_u32(&mut caller, length_ptr, length) && write_u32(&mut caller, flags_ptr, 0))
}

fn proxy_get_buffer_bytes(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    start: i32,
    max_size: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Status {
    if buffer_type as u32 > buffer::CALL_DATA {
        return ok(status::BAD_ARGUMENT);
    }
    if let Some(failure) = caller.data().failing_buffers.get(&(buffer_type as u32)) {
        return ok(*failure);
    }
    let Some(contents) = buffer_contents(caller.data_mut(), buffer_type as u32) else {
        return ok(status::NOT_FOUND);
    };
    let start = addr(start);
    let end = start.saturating_add(addr(max_size)).min(contents.len());
    // Nothing to copy (empty buffer, start past the end) stores a null
    // pointer and size 0, as Envoy does.
    let slice = contents.get(start..end).unwrap_or_default();
    copied(copy_out(&mut caller, slice, ptr_ptr, size_ptr)?)
}

fn proxy_set_buffer_bytes(
    mut caller: Ctx<'_>,
    buffer_type: i32,
    start: i32,
    size: i32,
    data_ptr: i32,
    data_size: i32,
) -> Status {
    let buffer_type = buffer_type as u32;
    if buffer_type > buffer::CALL_DATA {
        return ok(status::BAD_ARGUMENT);
    }
    if buffer_contents(caller.data_mut(), buffer_type).is_none() {
        return ok(status::NOT_FOUND);
    }
    let Some(data) = read(&caller, data_ptr, data_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    if buffer_type != buffer::HTTP_REQUEST_BODY {
        // Every other buffer is read-only here.
        return ok(status::BAD_ARGUMENT);
    }
    let Some(stream) = caller
        .data_mut()
        .stream_mut()
        .filter(|stream| stream.body_available)
    else {
        return ok(status::BAD_ARGUMENT);
    };
    // Envoy's `Buffer::copyFrom`: prepend, replace all, or append.
    let body = &mut stream.request_body;
    let (start, size) = (addr(start), addr(size));
    if start == 0 && size == 0 {
        body.splice(0..0, data);
    } else if start == 0 && size >= body.len() {
        *body = data;
    } else if start != 0 && start >= body.len() {
        body.extend_from_slice(&data);
    } else {
        return ok(status::BAD_ARGUMENT);
    }
    ok(status::OK)
}

// ---------------------------------------------------------------------------
// Stream control and local responses.

fn proxy_continue_stream(mut caller: Ctx<'_>, stream_type: i32) -> Status {
    let state = caller.data_mut();
    match stream_type as u32 {
        stream::HTTP_REQUEST => {
            // Envoy forgets the request headers and body once continued.
            if let Some(stream) = state.stream_mut() {
                stream.continue_requests += 1;
                stream.headers_available = false;
                stream.trailers_available = false;
                stream.body_available = false;
            }
            ok(status::OK)
        }
        stream::HTTP_RESPONSE => {
            if let Some(stream) = state.stream_mut() {
                stream.continue_responses += 1;
            }
            ok(status::OK)
        }
        stream::DOWNSTREAM => ok(status::OK),
        stream::UPSTREAM => ok(status::UNIMPLEMENTED),
        _ => ok(status::BAD_ARGUMENT),
    }
}

fn proxy_close_stream(mut caller: Ctx<'_>, stream_type: i32) -> Status {
    let state = caller.data_mut();
    match stream_type as u32 {
        stream::HTTP_REQUEST | stream::HTTP_RESPONSE => {
            if let Some(stream) = state.stream_mut() {
                stream.resets += 1;
            }
            ok(status::OK)
        }
        stream::DOWNSTREAM | stream::UPSTREAM => ok(status::OK),
        _ => ok(status::BAD_ARGUMENT),
    }
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn proxy_send_local_response(
    mut caller: Ctx<'_>,
    status_code: i32,
    details_ptr: i32,
    details_size: i32,
    body_ptr: i32,
    body_size: i32,
    headers_ptr: i32,
    headers_size: i32,
    grpc_status: i32,
) -> Status {
    let (Some(details), Some(body), Some(headers)) = (
        read(&caller, details_ptr, details_size),
        read(&caller, body_ptr, body_size),
        read(&caller, headers_ptr, headers_size),
    ) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let response = LocalResponse {
        status: status_code as u32,
        details: pairs::text(&details)
            .chars()
            .map(|c| {
                if c.is_ascii_whitespace() || c == '\x0b' {
                    '_'
                } else {
                    c
                }
            })
            .collect(),
        body,
        headers: pairs::deserialize(&headers)
            .into_iter()
            .map(|(key, value)| (header_key(&key), pairs::text(&value)))
            .collect(),
        grpc_status: u32::try_from(grpc_status).ok().filter(|code| *code <= 16),
    };
    // On the root context Envoy has no stream to answer: accepted, dropped.
    if let Some(stream) = caller.data_mut().stream_mut() {
        stream.local_responses.push(response);
    }
    ok(status::OK)
}

fn proxy_set_effective_context(mut caller: Ctx<'_>, context_id: i32) -> Status {
    let state = caller.data_mut();
    let id = context_id as u32;
    if !state.live.contains(&id) {
        return ok(status::BAD_ARGUMENT);
    }
    state.effective = id;
    ok(status::OK)
}

fn proxy_done(_caller: Ctx<'_>) -> Status {
    // Envoy: NotFound unless the VM is shutting down and waiting for it.
    ok(status::NOT_FOUND)
}

// ---------------------------------------------------------------------------
// gRPC.

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn proxy_grpc_call(
    mut caller: Ctx<'_>,
    upstream_ptr: i32,
    upstream_size: i32,
    service_ptr: i32,
    service_size: i32,
    method_ptr: i32,
    method_size: i32,
    metadata_ptr: i32,
    metadata_size: i32,
    message_ptr: i32,
    message_size: i32,
    timeout_ms: i32,
    token_ptr: i32,
) -> Status {
    let (Some(upstream), Some(service), Some(method), Some(metadata), Some(message)) = (
        read(&caller, upstream_ptr, upstream_size),
        read(&caller, service_ptr, service_size),
        read(&caller, method_ptr, method_size),
        read(&caller, metadata_ptr, metadata_size),
        read(&caller, message_ptr, message_size),
    ) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let state = caller.data_mut();
    let cluster = pairs::text(&upstream);
    let result = state.grpc_dispatch_status(&cluster);
    let token = (result == status::OK).then(|| {
        let token = state.next_token;
        state.next_token = state.next_token.wrapping_add(1);
        token
    });
    let call = GrpcCall {
        token,
        status: result,
        context_id: state.context(),
        stream: state.stream().map(|stream| stream.id),
        cluster,
        service: pairs::text(&service),
        method: pairs::text(&method),
        initial_metadata: pairs::deserialize(&metadata)
            .into_iter()
            .map(|(key, value)| (pairs::text(&key), value))
            .collect(),
        message,
        timeout_ms: timeout_ms as u32,
        cancelled: false,
        finished: false,
    };
    state.grpc_calls.push(call);
    match token {
        Some(token) => copied(write_u32(&mut caller, token_ptr, token)),
        None => ok(result),
    }
}

/// Cancels a pending call: Ok, or NotFound for tokens that are unknown,
/// finished or already cancelled.
fn cancel_grpc_call(state: &mut HostState, token: i32) -> Status {
    let pending = state
        .grpc_calls
        .iter_mut()
        .find(|call| call.token == Some(token as u32) && !call.cancelled && !call.finished);
    match pending {
        Some(call) => {
            call.cancelled = true;
            ok(status::OK)
        }
        None => ok(status::NOT_FOUND),
    }
}

fn proxy_grpc_cancel(mut caller: Ctx<'_>, token: i32) -> Status {
    cancel_grpc_call(caller.data_mut(), token)
}

fn proxy_grpc_close(mut caller: Ctx<'_>, token: i32) -> Status {
    // For a unary call Envoy's grpcClose cancels it (streams are not modelled).
    cancel_grpc_call(caller.data_mut(), token)
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn proxy_grpc_stream(
    _caller: Ctx<'_>,
    _upstream_ptr: i32,
    _upstream_size: i32,
    _service_ptr: i32,
    _service_size: i32,
    _method_ptr: i32,
    _method_size: i32,
    _metadata_ptr: i32,
    _metadata_size: i32,
    _token_ptr: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

fn proxy_grpc_send(
    _caller: Ctx<'_>,
    _token: i32,
    _message_ptr: i32,
    _message_size: i32,
    _end_stream: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

#[allow(clippy::too_many_arguments)] // the ABI's signature
fn proxy_http_call(
    _caller: Ctx<'_>,
    _upstream_ptr: i32,
    _upstream_size: i32,
    _headers_ptr: i32,
    _headers_size: i32,
    _body_ptr: i32,
    _body_size: i32,
    _trailers_ptr: i32,
    _trailers_size: i32,
    _timeout_ms: i32,
    _token_ptr: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

// ---------------------------------------------------------------------------
// Shared data (implemented: a key/value store with CAS), shared queues (not
// modelled), foreign functions (none registered).

fn proxy_get_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    size_ptr: i32,
    cas_ptr: i32,
) -> Status {
    let Some(key) = read(&caller, key_ptr, key_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let Some((value, cas)) = caller.data().shared_data.get(&key).cloned() else {
        return ok(status::NOT_FOUND);
    };
    if !copy_out(&mut caller, &value, value_ptr, size_ptr)? {
        return ok(status::INVALID_MEMORY_ACCESS);
    }
    copied(write_u32(&mut caller, cas_ptr, cas))
}

fn proxy_set_shared_data(
    mut caller: Ctx<'_>,
    key_ptr: i32,
    key_size: i32,
    value_ptr: i32,
    value_size: i32,
    cas: i32,
) -> Status {
    let (Some(key), Some(value)) = (
        read(&caller, key_ptr, key_size),
        read(&caller, value_ptr, value_size),
    ) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let shared = &mut caller.data_mut().shared_data;
    let current = shared.get(&key).map_or(0, |(_, cas)| *cas);
    if cas != 0 && cas as u32 != current {
        return ok(status::CAS_MISMATCH);
    }
    shared.insert(key, (value, current.wrapping_add(1).max(1)));
    ok(status::OK)
}

fn proxy_register_shared_queue(
    _caller: Ctx<'_>,
    _name_ptr: i32,
    _name_size: i32,
    _id_ptr: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

fn proxy_resolve_shared_queue(
    _caller: Ctx<'_>,
    _vm_id_ptr: i32,
    _vm_id_size: i32,
    _name_ptr: i32,
    _name_size: i32,
    _id_ptr: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

fn proxy_dequeue_shared_queue(
    _caller: Ctx<'_>,
    _id: i32,
    _value_ptr: i32,
    _size_ptr: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

fn proxy_enqueue_shared_queue(
    _caller: Ctx<'_>,
    _id: i32,
    _value_ptr: i32,
    _value_size: i32,
) -> Status {
    ok(status::UNIMPLEMENTED)
}

fn proxy_call_foreign_function(
    caller: Ctx<'_>,
    name_ptr: i32,
    name_size: i32,
    _args_ptr: i32,
    _args_size: i32,
    _results_ptr: i32,
    _results_size_ptr: i32,
) -> Status {
    if read(&caller, name_ptr, name_size).is_none() {
        return ok(status::INVALID_MEMORY_ACCESS);
    }
    ok(status::NOT_FOUND)
}

// ---------------------------------------------------------------------------
// Metrics (implemented; ids are 1-based indexes).

fn metric_mut(state: &mut HostState, id: i32) -> Option<&mut Metric> {
    let index = (id as u32 as usize).checked_sub(1)?;
    state.metrics.get_mut(index)
}

fn proxy_define_metric(
    mut caller: Ctx<'_>,
    metric_type: i32,
    name_ptr: i32,
    name_size: i32,
    id_ptr: i32,
) -> Status {
    let kind = match metric_type {
        0 => MetricKind::Counter,
        1 => MetricKind::Gauge,
        2 => MetricKind::Histogram,
        _ => return ok(status::BAD_ARGUMENT),
    };
    let Some(name) = read(&caller, name_ptr, name_size) else {
        return ok(status::INVALID_MEMORY_ACCESS);
    };
    let name = pairs::text(&name);
    let metrics = &mut caller.data_mut().metrics;
    let index = match metrics
        .iter()
        .position(|m| m.name == name && m.kind == kind)
    {
        Some(index) => index,
        None => {
            metrics.push(Metric {
                name,
                kind,
                value: 0,
            });
            metrics.len() - 1
        }
    };
    let id = u32::try_from(index + 1).unwrap_or(u32::MAX);
    copied(write_u32(&mut caller, id_ptr, id))
}

fn proxy_increment_metric(mut caller: Ctx<'_>, id: i32, offset: i64) -> Status {
    let Some(metric) = metric_mut(caller.data_mut(), id) else {
        return ok(status::NOT_FOUND);
    };
    match metric.kind {
        MetricKind::Counter if offset > 0 => {
            metric.value = metric.value.saturating_add(offset as u64)
        }
        MetricKind::Gauge => metric.value = metric.value.saturating_add_signed(offset),
        _ => return ok(status::BAD_ARGUMENT),
    }
    ok(status::OK)
}

fn proxy_record_metric(mut caller: Ctx<'_>, id: i32, value: i64) -> Status {
    let Some(metric) = metric_mut(caller.data_mut(), id) else {
        return ok(status::NOT_FOUND);
    };
    let value = value as u64;
    metric.value = match metric.kind {
        MetricKind::Counter => metric.value.saturating_add(value),
        MetricKind::Gauge | MetricKind::Histogram => value,
    };
    ok(status::OK)
}

fn proxy_get_metric(mut caller: Ctx<'_>, id: i32, value_ptr: i32) -> Status {
    let Some(metric) = metric_mut(caller.data_mut(), id) else {
        return ok(status::NOT_FOUND);
    };
    if metric.kind == MetricKind::Histogram {
        return ok(status::BAD_ARGUMENT);
    }
    let value = metric.value;
    copied(write_u64(&mut caller, value_ptr, value))
}

// ---------------------------------------------------------------------------
// The WASI subset Envoy provides (both `wasi_snapshot_preview1` and
// `wasi_unstable`): stdout/stderr, empty environment and arguments, clocks,
// randomness, exit. Results are WASI errno values.

fn pthread_equal(_caller: Ctx<'_>, left: i32, right: i32) -> i32 {
    i32::from(left == right)
}

fn emscripten_notify_memory_growth(_caller: Ctx<'_>, _memory_index: i32) {}

#[allow(clippy::too_many_arguments)] // WASI's signature
fn path_open(
    _caller: Ctx<'_>,
    _fd: i32,
    _dir_flags: i32,
    _path_ptr: i32,
    _path_len: i32,
    _oflags: i32,
    _rights_base: i64,
    _rights_inheriting: i64,
    _fd_flags: i32,
    _fd_ptr: i32,
) -> i32 {
    errno::NOENT
}

fn fd_prestat_get(_caller: Ctx<'_>, _fd: i32, _prestat_ptr: i32) -> i32 {
    errno::BADF // no preopened directories
}

fn fd_prestat_dir_name(_caller: Ctx<'_>, _fd: i32, _path_ptr: i32, _path_len: i32) -> i32 {
    errno::NOSYS
}

fn fd_write(mut caller: Ctx<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten_ptr: i32) -> i32 {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return errno::BADF,
    };
    let mut bytes = Vec::new();
    for index in 0..iovs_len.max(0) {
        let Some(iovec) = read(&caller, iovs.wrapping_add(index.wrapping_mul(8)), 8) else {
            return errno::FAULT;
        };
        let word = |at: usize| {
            iovec
                .get(at..at + 4)
                .and_then(|word| <[u8; 4]>::try_from(word).ok())
                .map_or(0, u32::from_le_bytes)
        };
        let (buf, len) = (word(0), word(4));
        if len > 0 {
            let Some(chunk) = read(&caller, buf as i32, len as i32) else {
                return errno::FAULT;
            };
            bytes.extend_from_slice(&chunk);
        }
    }
    if !bytes.is_empty() {
        let text = pairs::text(&bytes);
        let state = caller.data_mut();
        if fd == 1 {
            state.stdout.push_str(&text);
        } else {
            state.stderr.push_str(&text);
        }
        // Envoy logs each write, minus one trailing newline.
        let line = text.strip_suffix('\n').unwrap_or(&text).to_owned();
        state.log(level, line);
    }
    let written = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    if write_u32(&mut caller, nwritten_ptr, written) {
        errno::SUCCESS
    } else {
        errno::FAULT
    }
}

fn fd_read(_caller: Ctx<'_>, _fd: i32, _iovs: i32, _iovs_len: i32, _nread_ptr: i32) -> i32 {
    errno::NOSYS
}

fn fd_seek(_caller: Ctx<'_>, _fd: i32, _offset: i64, _whence: i32, _newoffset_ptr: i32) -> i32 {
    // Envoy answers success without doing anything.
    errno::SUCCESS
}

fn fd_close(_caller: Ctx<'_>, _fd: i32) -> i32 {
    errno::SUCCESS
}

fn fd_fdstat_get(mut caller: Ctx<'_>, fd: i32, stat_ptr: i32) -> i32 {
    if fd != 1 && fd != 2 {
        return errno::BADF;
    }
    // filetype/flags 0, rights_base = FD_WRITE (64), rights_inheriting 0.
    let mut stat = [0u8; 24];
    if let Some(rights) = stat.get_mut(8..16) {
        rights.copy_from_slice(&64u64.to_le_bytes());
    }
    if write(&mut caller, stat_ptr, &stat) {
        errno::SUCCESS
    } else {
        errno::FAULT
    }
}

fn environ_get(_caller: Ctx<'_>, _environ_ptr: i32, _environ_buf: i32) -> i32 {
    errno::SUCCESS
}

/// Writes two zero words: an empty environment or argument list.
fn write_empty_list(caller: &mut Ctx<'_>, count_ptr: i32, size_ptr: i32) -> i32 {
    if write_u32(caller, count_ptr, 0) && write_u32(caller, size_ptr, 0) {
        errno::SUCCESS
    } else {
        errno::FAULT
    }
}

fn environ_sizes_get(mut caller: Ctx<'_>, count_ptr: i32, size_ptr: i32) -> i32 {
    write_empty_list(&mut caller, count_ptr, size_ptr)
}

fn args_get(_caller: Ctx<'_>, _argv_ptr: i32, _argv_buf: i32) -> i32 {
    errno::SUCCESS
}

fn args_sizes_get(mut caller: Ctx<'_>, argc_ptr: i32, size_ptr: i32) -> i32 {
    write_empty_list(&mut caller, argc_ptr, size_ptr)
}

fn clock_time_get(mut caller: Ctx<'_>, clock_id: i32, _precision: i64, time_ptr: i32) -> i32 {
    // 0 = realtime, 1 = monotonic: both read the host clock (set_time).
    if clock_id != 0 && clock_id != 1 {
        return errno::NOTSUP;
    }
    let now = caller.data().time_nanos;
    if write_u64(&mut caller, time_ptr, now) {
        errno::SUCCESS
    } else {
        errno::FAULT
    }
}

fn random_get(mut caller: Ctx<'_>, buf_ptr: i32, buf_len: i32) -> i32 {
    let len = addr(buf_len);
    if len > RANDOM_GET_MAX {
        return errno::INVAL;
    }
    let bytes = caller.data_mut().random_bytes(len);
    if write(&mut caller, buf_ptr, &bytes) {
        errno::SUCCESS
    } else {
        errno::FAULT
    }
}

fn proc_exit(_caller: Ctx<'_>, code: i32) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(ProcExit(code)))
}
