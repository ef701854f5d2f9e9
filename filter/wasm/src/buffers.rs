//! The glue's reads and writes of Envoy's buffers, maps and properties,
//! each a host call or two, and what a failure means.

use std::time::UNIX_EPOCH;

use lambdagate_core::wire::deframe::{ChunkEdit, Deframer, MAX_FRAMING_BYTES};
use lambdagate_core::{GatewayError, Outcome};
use proxy_wasm::types::{BufferType, MapType};

use crate::host;

/// Drops the gRPC framing from the response body chunk in the host's
/// buffer: usually its first bytes only, without reading the rest.
pub(crate) fn deframe_chunk(deframer: &mut Deframer, size: usize) -> Result<(), String> {
    if size == 0 {
        return Ok(());
    }
    let head = read_buffer(
        BufferType::HttpResponseBody,
        Some(size.min(MAX_FRAMING_BYTES)),
        "the response body",
    )
    .map_err(|e| e.to_string())?;
    match deframer
        .quick_edit(&head, size)
        .map_err(|e| e.to_string())?
    {
        Some(ChunkEdit::Keep) => Ok(()),
        Some(ChunkEdit::DropFront(n)) => host::set_buffer(BufferType::HttpResponseBody, 0, n, &[])
            .map_err(|s| format!("cannot edit the response body: {s:?}")),
        None => {
            let chunk = read_buffer(
                BufferType::HttpResponseBody,
                Some(size),
                "the response body",
            )
            .map_err(|e| e.to_string())?;
            let body = deframer.rewrite(&chunk).map_err(|e| e.to_string())?;
            host::set_buffer(BufferType::HttpResponseBody, 0, size, &body)
                .map_err(|s| format!("cannot edit the response body: {s:?}"))
        }
    }
}
/// A response trailer's value. Bytes: the SDK's string getter would trap
/// on a non-UTF-8 value.
pub(crate) fn trailer(name: &str) -> Option<String> {
    host::get_map_value_bytes(MapType::HttpResponseTrailers, name)
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// The invoker's trailer naming why a stream ended early.
pub(crate) const OUTCOME_TRAILER: &str = lambdagate_proto::http_path::OUTCOME;

/// Filter-state key (Envoy prefixes it with `wasm.`).
pub(crate) const OUTCOME_PROPERTY: &str = "lambdagate_outcome";

/// For access logs: %FILTER_STATE(wasm.lambdagate_outcome:PLAIN)%.
pub(crate) fn set_outcome(outcome: Outcome) {
    let _ = host::set_property(vec![OUTCOME_PROPERTY], Some(outcome.label().as_bytes()));
}

/// Reads a whole host buffer of `expected` bytes (`None`: whatever is
/// there). Empty is fine only when nothing (or an unknown amount) was
/// announced.
pub(crate) fn read_buffer(
    buffer: BufferType,
    expected: Option<usize>,
    what: &'static str,
) -> Result<Vec<u8>, GatewayError> {
    match (
        host::get_buffer(buffer, 0, expected.unwrap_or(usize::MAX)),
        expected,
    ) {
        (Ok(Some(bytes)), None) => Ok(bytes),
        (Ok(Some(bytes)), Some(size)) if bytes.len() == size => Ok(bytes),
        (Ok(Some(bytes)), Some(size)) => Err(GatewayError::HostRead {
            what,
            reason: format!("{} of {size} bytes", bytes.len()),
        }),
        (Ok(None), None | Some(0)) => Ok(Vec::new()),
        (Ok(None), Some(size)) => Err(GatewayError::HostRead {
            what,
            reason: format!("none of {size} bytes"),
        }),
        (Err(status), _) => Err(GatewayError::HostRead {
            what,
            reason: format!("{status:?}"),
        }),
    }
}

/// A whole header map. Bytes, not `get_map`: HTTP allows non-UTF-8 header
/// values (obs-text) and Envoy passes them through; the SDK's `get_map`
/// unwraps `String::from_utf8` and a Latin-1 `user-agent` would trap the VM
/// (503 for every later request). Invalid bytes become U+FFFD.
pub(crate) fn header_map(map: MapType) -> Result<Vec<(String, String)>, proxy_wasm::types::Status> {
    host::get_map_bytes(map).map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect()
    })
}

pub(crate) fn property(path: &[&str]) -> String {
    match host::get_property(path.to_vec()) {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        _ => String::new(),
    }
}

pub(crate) fn now_ms() -> u64 {
    host::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
