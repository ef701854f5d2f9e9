//! The edge limits (`gateway.limits`) as Envoy config, in one place: what
//! they set on the connection manager, the listener, the routes that carry
//! request bodies, and Envoy's own error replies. Render's bootstrap is
//! built from these; a hand-built bootstrap (the test harness's) takes the
//! same pieces from [`edge_parts`], so every test runs under the defaults
//! render writes.

use serde::Serialize;

use lambdagate_core::contract::SERVICE_UNAVAILABLE;
use lambdagate_proto::{MAX_GRPC_MESSAGE_BYTES, MAX_SYNC_PAYLOAD_BYTES};

use super::local_reply::{
    AccessLogFilter, ErrorBody, JsonFormat, LocalReplyConfig, ResponseMapper,
};
use super::overload::overload_manager;
use super::proto::{Http2ProtocolOptions, Seconds};
use super::routes::{Route, no_api_route};
use crate::limits::EdgeLimits;

/// What a client reads for a path outside every API.
pub(crate) const NO_API_MESSAGE: &str = "no API serves this path";

/// The connection manager's settings that the limits decide (flattened
/// into the listener's `HttpConnectionManager`, which holds them).
#[derive(Serialize)]
pub(crate) struct EdgeConnectionOptions {
    /// A request's headers must arrive within this: senders of one byte a
    /// second are closed.
    request_headers_timeout: Seconds,
    common_http_protocol_options: CommonHttpProtocolOptions,
    http2_protocol_options: Http2ProtocolOptions,
    /// Paths are normalized before anything routes them (RFC 3986: `.`
    /// and `..` segments resolved, unreserved characters decoded) and
    /// repeated slashes merged, so `/x/../users//user/7` is routed, and
    /// seen by the function, as `/users/user/7`: no path can slip past a
    /// route by spelling. An escaped slash (`%2F`) is kept: it stays
    /// inside its segment (`{id}` = `a/b`), as a path parameter may hold
    /// one; unescaping it would change which resource matches.
    normalize_path: bool,
    merge_slashes: bool,
    path_with_escaped_slashes_action: &'static str,
    local_reply_config: LocalReplyConfig,
}

impl EdgeConnectionOptions {
    /// The usage refusals' answers too (where the rate-limit filter is
    /// rendered).
    pub(crate) fn with_usage_replies(mut self) -> Self {
        self.local_reply_config
            .mappers
            .extend(super::usage::local_reply_mappers());
        self
    }
}

/// Limits on every downstream HTTP connection.
#[derive(Serialize)]
struct CommonHttpProtocolOptions {
    /// A connection with no request in flight is closed after this
    /// (Envoy's default: one hour).
    idle_timeout: Seconds,
    max_headers_count: u32,
    /// `REJECT_REQUEST`: a header name with `_` is refused (400), as
    /// Envoy's edge guidance asks: proxies behind may read `x_user` and
    /// `x-user` as one header.
    headers_with_underscores_action: &'static str,
}

impl EdgeConnectionOptions {
    pub(crate) fn new(limits: &EdgeLimits) -> Self {
        EdgeConnectionOptions {
            request_headers_timeout: Seconds(limits.request_headers_timeout_seconds),
            common_http_protocol_options: CommonHttpProtocolOptions {
                idle_timeout: Seconds(limits.connection_idle_timeout_seconds),
                max_headers_count: limits.max_request_headers,
                headers_with_underscores_action: "REJECT_REQUEST",
            },
            http2_protocol_options: Http2ProtocolOptions {
                max_concurrent_streams: Some(limits.http2_max_concurrent_streams),
                initial_stream_window_size: limits.http2_stream_window_bytes,
                initial_connection_window_size: limits.http2_connection_window_bytes,
            },
            normalize_path: true,
            merge_slashes: true,
            path_with_escaped_slashes_action: "KEEP_UNCHANGED",
            local_reply_config: local_reply_config(),
        }
    }
}

/// Envoy's own answers in the gateway's JSON: the overload manager's 503
/// (it refuses requests before any filter runs, so the filter cannot
/// answer; Envoy has not given such a request an id yet, so `requestId`
/// is null) and the catch-all's 404; see [`EdgeConnectionOptions::with_usage_replies`].
fn local_reply_config() -> LocalReplyConfig {
    let mapper = |filter, message| ResponseMapper {
        filter,
        status_code: None,
        body_format_override: JsonFormat {
            json_format: ErrorBody {
                message,
                request_id: "%REQ(X-REQUEST-ID)%",
            },
        },
    };
    LocalReplyConfig {
        mappers: vec![
            mapper(AccessLogFilter::overloaded(), SERVICE_UNAVAILABLE),
            mapper(AccessLogFilter::no_api(), NO_API_MESSAGE),
        ],
    }
}

/// What Envoy may buffer of one request body on the routes that carry
/// them: one maximum-size message (`max_body`) and one more read, so that
/// the filter sees a body over Lambda's limit and answers its own 413
/// before Envoy's buffer overflows (Envoy's 413 has no JSON and no request
/// id). A read is at most what one socket read takes (the connection
/// buffer, and one 16 KiB read on top) or, on HTTP/2, one stream window.
fn body_buffer_limit(max_body: usize, limits: &EdgeLimits) -> u64 {
    const READ_MARGIN: u64 = 64 * 1024;
    let read = limits
        .connection_buffer_bytes
        .max(limits.http2_stream_window_bytes);
    u64::try_from(max_body).unwrap_or(u64::MAX) + u64::from(read) + READ_MARGIN
}

/// The catch-all's buffer limit: one request body (see `no_api_route`).
pub(crate) fn api_body_buffer_limit(limits: &EdgeLimits) -> u64 {
    body_buffer_limit(MAX_SYNC_PAYLOAD_BYTES, limits)
}

/// The invoker route's: one gRPC message (the router path's body).
pub(crate) fn invoker_body_buffer_limit(limits: &EdgeLimits) -> u64 {
    body_buffer_limit(MAX_GRPC_MESSAGE_BYTES, limits)
}

/// The edge pieces of a bootstrap as JSON values (which YAML reads too),
/// for a bootstrap built by hand around them.
pub struct EdgeParts {
    /// The bootstrap's `overload_manager`.
    pub overload_manager: serde_json::Value,
    /// The listener's `per_connection_buffer_limit_bytes`.
    pub listener_buffer_limit_bytes: u32,
    /// Fields of the HTTP connection manager (timeouts, header rules,
    /// HTTP/2 limits, path normalization, local replies), by name.
    pub connection_manager: serde_json::Map<String, serde_json::Value>,
    /// The last route: every API request matches it while the filter
    /// holds its body, and paths outside every API get the 404 there.
    /// The route config that holds it needs `validate_clusters: false`.
    pub catch_all_route: serde_json::Value,
    /// The router data path's route needs this `request_body_buffer_limit`.
    pub invoker_body_buffer_limit: u64,
}

/// The pieces render writes for `limits`.
pub fn edge_parts(limits: &EdgeLimits) -> Result<EdgeParts, serde_json::Error> {
    let connection_manager = match serde_json::to_value(EdgeConnectionOptions::new(limits))? {
        serde_json::Value::Object(fields) => fields,
        _ => serde_json::Map::new(),
    };
    let catch_all: Route = no_api_route(api_body_buffer_limit(limits));
    Ok(EdgeParts {
        overload_manager: serde_json::to_value(overload_manager(limits))?,
        listener_buffer_limit_bytes: limits.connection_buffer_bytes,
        connection_manager,
        catch_all_route: serde_json::to_value(catch_all)?,
        invoker_body_buffer_limit: invoker_body_buffer_limit(limits),
    })
}
