//! Which requests a rule applies to, and Envoy's own local replies
//! rewritten to the gateway's JSON error body. Shared by the listener's
//! access logs and the edge's local-reply mappers.

use serde::Serialize;

use super::proto::{Any, TypeUrl};

/// Envoy's own local replies, rewritten (see `edge::local_reply_config`).
#[derive(Serialize)]
pub(crate) struct LocalReplyConfig {
    pub(crate) mappers: Vec<ResponseMapper>,
}

#[derive(Serialize)]
pub(crate) struct ResponseMapper {
    pub(crate) filter: AccessLogFilter,
    /// The status the client gets instead of Envoy's (none: Envoy's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status_code: Option<u32>,
    pub(crate) body_format_override: JsonFormat,
}

#[derive(Serialize)]
pub(crate) struct JsonFormat {
    pub(crate) json_format: ErrorBody,
}

/// The gateway's error body: a message and the request id.
#[derive(Serialize)]
pub(crate) struct ErrorBody {
    pub(crate) message: &'static str,
    #[serde(rename = "requestId")]
    pub(crate) request_id: &'static str,
}

/// What Envoy records for a request its rate-limit filter refused (see
/// `usage.rs`), and for one whose usage service could not be asked.
pub(crate) const RATE_LIMITED: &str = "response.code_details == 'request_rate_limited'";
pub(crate) const SERVICE_ERROR: &str = "response.code_details == 'rate_limiter_error'";
/// And for one Envoy's local rate-limit filter refused (`throttle.rs`).
pub(crate) const LOCAL_RATE_LIMITED: &str = "response.code_details == 'local_rate_limited'";

/// `envoy.config.accesslog.v3.AccessLogFilter`: which requests an access
/// log (or a local-reply mapper) applies to; render's are CEL expressions
/// (the proto has no negation of its own).
#[derive(Serialize)]
pub(crate) struct AccessLogFilter {
    extension_filter: ExtensionFilter,
}

#[derive(Serialize)]
struct ExtensionFilter {
    name: &'static str,
    typed_config: Any<CelExpressionFilter>,
}

#[derive(Serialize)]
pub(crate) struct CelExpressionFilter {
    pub(crate) expression: String,
}

impl TypeUrl for CelExpressionFilter {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter";
}

impl AccessLogFilter {
    fn cel(expression: &'static str) -> Self {
        AccessLogFilter::cel_owned(expression.to_owned())
    }

    pub(crate) fn cel_owned(expression: String) -> Self {
        AccessLogFilter {
            extension_filter: ExtensionFilter {
                name: "envoy.access_loggers.extension_filters.cel",
                typed_config: Any(CelExpressionFilter { expression }),
            },
        }
    }

    /// The requests Envoy's overload manager answered itself.
    pub(crate) fn overloaded() -> Self {
        AccessLogFilter::cel("response.code_details == 'overload'")
    }

    /// Envoy's answer for a route whose cluster does not exist: on the
    /// gateway, only the catch-all's 404 (no API serves the path).
    pub(crate) fn no_api() -> Self {
        AccessLogFilter::cel("response.code_details == 'cluster_not_found'")
    }

    /// All the others.
    pub(crate) fn not_overloaded() -> Self {
        AccessLogFilter::cel("response.code_details != 'overload'")
    }

    /// All the others where usage plans or throttles are on (their
    /// refusals have logs of their own, see `usage::refused_logs`).
    pub(crate) fn neither_overloaded_nor_refused() -> Self {
        AccessLogFilter::cel_owned(format!(
            "response.code_details != 'overload' && !({RATE_LIMITED} || {SERVICE_ERROR} || {LOCAL_RATE_LIMITED})"
        ))
    }
}
