//! `gateway.limits`: what one client may take of the gateway's memory,
//! connections and time. Envoy's defaults suit a service mesh, not the
//! open internet; these follow Envoy's edge-proxy guidance ("Configuring
//! Envoy as an edge proxy") without breaking the 6 MB payload rule,
//! streamed responses or 15-minute routes. Every field has a default.

use serde::Deserialize;

use lambdagate_proto::{MAX_GRPC_MESSAGE_BYTES, MAX_SYNC_PAYLOAD_BYTES};

const MIB: u64 = 1024 * 1024;

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeLimits {
    /// The overload manager's heap limit for Envoy (tcmalloc's heap; the
    /// wasm VM and code come on top). Near it Envoy shrinks its heap,
    /// resets the HTTP/2 streams holding the most buffered memory, then
    /// stops accepting connections and requests (503).
    pub heap_bytes: u64,
    /// Downstream connections Envoy holds at once, all listeners together;
    /// more are refused.
    pub connections: u64,
    /// Request bodies an Envoy worker buffers at once for the lambdagate
    /// filter (a body is buffered whole before its event is built): a
    /// request that would take more is answered 503 before its body is
    /// read. HTTP/1 uploads are not covered by Envoy's own per-stream
    /// memory accounting, so this is what bounds held uploads. Per worker:
    /// render's Envoy runs one (`--concurrency 1`).
    pub upload_budget_bytes: u64,
    /// What Envoy reads from a connection at once, and buffers for it in
    /// each direction before it stops reading (the listener's
    /// `per_connection_buffer_limit_bytes`): what a refused or held
    /// connection can make Envoy keep. Small: request bodies are buffered
    /// under their routes' own limit (one 6 MB payload), not this one.
    pub connection_buffer_bytes: u32,
    /// Payload bytes the invoker holds for calls in flight (its
    /// `max_inflight_bytes`); more calls wait for room.
    pub invoker_inflight_bytes: u64,
    /// HTTP/2: streams one connection may have open.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: what a client may send on one stream before Envoy asks for
    /// more; a 6 MB body needs six such rounds at the default.
    pub http2_stream_window_bytes: u32,
    /// HTTP/2: the same for a whole connection.
    pub http2_connection_window_bytes: u32,
    /// A request's headers must arrive within this (slow senders).
    pub request_headers_timeout_seconds: u32,
    /// A connection with no request in flight is closed after this.
    pub connection_idle_timeout_seconds: u32,
    /// Most request headers one request may have.
    pub max_request_headers: u32,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            heap_bytes: 1024 * MIB,
            connections: 10_000,
            upload_budget_bytes: lambdagate_core::config::DEFAULT_UPLOAD_BUDGET_BYTES,
            connection_buffer_bytes: 64 * 1024,
            invoker_inflight_bytes: lambdagate_sidecar::budget::DEFAULT_MAX_INFLIGHT_BYTES,
            http2_max_concurrent_streams: 100,
            http2_stream_window_bytes: 1024 * 1024,
            http2_connection_window_bytes: 4 * 1024 * 1024,
            request_headers_timeout_seconds: 10,
            connection_idle_timeout_seconds: 60,
            max_request_headers: 100,
        }
    }
}

/// Envoy's HTTP/2 window bounds (RFC 9113: at most 2^31-1; Envoy asks at
/// least 65535).
const MIN_WINDOW: u32 = 65_535;
const MAX_WINDOW: u32 = 2_147_483_647;
const MIN_HEAP_BYTES: u64 = 128 * MIB;
const MIN_CONNECTION_BUFFER: u32 = 16 * 1024;
const MAX_CONNECTION_BUFFER: u32 = 16 * 1024 * 1024;

impl EdgeLimits {
    /// The first setting that cannot work: (field under `gateway.limits`,
    /// what is allowed).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let one_payload = u64::try_from(MAX_SYNC_PAYLOAD_BYTES).unwrap_or(u64::MAX);
        let one_message = u64::try_from(MAX_GRPC_MESSAGE_BYTES).unwrap_or(u64::MAX);
        if self.upload_budget_bytes < one_payload {
            return Err((
                "upload_budget_bytes",
                format!(
                    "{} is less than one 6 MB request body ({one_payload} bytes); allowed: at least that",
                    self.upload_budget_bytes
                ),
            ));
        }
        // Envoy's own structures, a few thousand connections' buffers and
        // its caches need some room before the overload actions start.
        if self.heap_bytes < MIN_HEAP_BYTES {
            return Err((
                "heap_bytes",
                format!(
                    "{} is too little for Envoy to run in; allowed: at least {MIN_HEAP_BYTES} (128 MiB)",
                    self.heap_bytes
                ),
            ));
        }
        if !(MIN_CONNECTION_BUFFER..=MAX_CONNECTION_BUFFER).contains(&self.connection_buffer_bytes)
        {
            return Err((
                "connection_buffer_bytes",
                format!(
                    "{} is outside {MIN_CONNECTION_BUFFER} (16 KiB, one TLS record) to {MAX_CONNECTION_BUFFER} (16 MiB)",
                    self.connection_buffer_bytes
                ),
            ));
        }
        if self.invoker_inflight_bytes < one_message {
            return Err((
                "invoker_inflight_bytes",
                format!(
                    "{} is less than one 6 MB call ({one_message} bytes); allowed: at least that",
                    self.invoker_inflight_bytes
                ),
            ));
        }
        if self.connections == 0 {
            return Err(("connections", "must be at least 1".to_owned()));
        }
        if self.http2_max_concurrent_streams == 0 {
            return Err((
                "http2_max_concurrent_streams",
                "must be at least 1 (Envoy's edge guidance: 100)".to_owned(),
            ));
        }
        for (field, value) in [
            ("http2_stream_window_bytes", self.http2_stream_window_bytes),
            (
                "http2_connection_window_bytes",
                self.http2_connection_window_bytes,
            ),
        ] {
            if !(MIN_WINDOW..=MAX_WINDOW).contains(&value) {
                return Err((
                    field,
                    format!(
                        "{value} is not an HTTP/2 window; allowed: {MIN_WINDOW} to {MAX_WINDOW}"
                    ),
                ));
            }
        }
        for (field, value) in [
            (
                "request_headers_timeout_seconds",
                self.request_headers_timeout_seconds,
            ),
            (
                "connection_idle_timeout_seconds",
                self.connection_idle_timeout_seconds,
            ),
            ("max_request_headers", self.max_request_headers),
        ] {
            if value == 0 {
                return Err((field, "must be at least 1".to_owned()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_hold_and_each_bad_setting_is_named() {
        assert_eq!(EdgeLimits::default().validate(), Ok(()));
        let bad = |edit: fn(&mut EdgeLimits)| {
            let mut limits = EdgeLimits::default();
            edit(&mut limits);
            limits.validate().map_err(|(field, _)| field)
        };
        assert_eq!(
            bad(|l| l.upload_budget_bytes = 1024),
            Err("upload_budget_bytes")
        );
        assert_eq!(bad(|l| l.heap_bytes = 100 * MIB), Err("heap_bytes"));
        assert_eq!(
            bad(|l| l.connection_buffer_bytes = 1024),
            Err("connection_buffer_bytes")
        );
        assert_eq!(
            bad(|l| l.invoker_inflight_bytes = 6 * MIB),
            Err("invoker_inflight_bytes")
        );
        assert_eq!(bad(|l| l.connections = 0), Err("connections"));
        assert_eq!(
            bad(|l| l.http2_stream_window_bytes = 1000),
            Err("http2_stream_window_bytes")
        );
        assert_eq!(
            bad(|l| l.request_headers_timeout_seconds = 0),
            Err("request_headers_timeout_seconds")
        );
    }
}
