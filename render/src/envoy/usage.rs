//! API keys and usage plans in Envoy: its own rate-limit filter, before the
//! lambdagate filter, asks the invoker's usage service (Envoy's rate-limit
//! protocol) about every API request, sending the method, the path and
//! `x-api-key`. A refusal is `OVER_LIMIT` with the outcome in dynamic
//! metadata; the local-reply mappers here turn it into API Gateway's
//! answer (403 Forbidden, 429 Too Many Requests or Limit Exceeded, 503)
//! with the gateway's JSON body and request id, and the access log names
//! the outcome. Rendered only when some resource needs a key.

use std::time::Duration;

use serde::Serialize;

use lambdagate_core::Outcome;
use lambdagate_core::contract::{SERVICE_UNAVAILABLE, usage_refusal};
use lambdagate_usage::service::{descriptor, envoy_timeout, metadata};

use super::local_reply::{
    AccessLogFilter, ErrorBody, JsonFormat, LOCAL_RATE_LIMITED, RATE_LIMITED, ResponseMapper,
    SERVICE_ERROR,
};
use super::proto::{Millis, TypeUrl};

/// `envoy.extensions.filters.http.ratelimit.v3.RateLimit`.
#[derive(Serialize)]
pub(crate) struct RateLimitFilter {
    domain: &'static str,
    /// Envoy's default stage; the route's `rate_limits` use it too.
    stage: u32,
    /// Keys must not be skipped when the service cannot answer: such a
    /// request is refused (503), whatever `on_store_unavailable` says
    /// (that setting is for the store behind the service).
    failure_mode_deny: bool,
    /// API Gateway sends no such header; the body and `Retry-After` say it.
    disable_x_envoy_ratelimited_header: bool,
    timeout: Millis,
    rate_limit_service: RateLimitServiceConfig,
}

impl TypeUrl for RateLimitFilter {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit";
}

#[derive(Serialize)]
struct RateLimitServiceConfig {
    grpc_service: GrpcService,
    transport_api_version: &'static str,
}

#[derive(Serialize)]
struct GrpcService {
    envoy_grpc: EnvoyGrpc,
}

#[derive(Serialize)]
struct EnvoyGrpc {
    cluster_name: &'static str,
}

pub(crate) fn rate_limit_filter(store_timeout: Duration) -> RateLimitFilter {
    RateLimitFilter {
        domain: descriptor::DOMAIN,
        stage: 0,
        failure_mode_deny: true,
        disable_x_envoy_ratelimited_header: true,
        timeout: Millis(u32::try_from(envoy_timeout(store_timeout).as_millis()).unwrap_or(1000)),
        rate_limit_service: RateLimitServiceConfig {
            grpc_service: GrpcService {
                envoy_grpc: EnvoyGrpc {
                    cluster_name: lambdagate_core::config::DEFAULT_INVOKER_CLUSTER,
                },
            },
            transport_api_version: "V3",
        },
    }
}

/// `envoy.config.route.v3.RateLimit`: one descriptor per entry of
/// `rate_limits`.
#[derive(Serialize)]
pub(crate) struct RateLimit {
    actions: Vec<RateLimitAction>,
}

#[derive(Serialize)]
struct RateLimitAction {
    request_headers: RequestHeaders,
}

#[derive(Serialize)]
struct RequestHeaders {
    header_name: &'static str,
    descriptor_key: &'static str,
}

/// The API route's descriptors: the method and path in one, `x-api-key`
/// in its own (Envoy leaves a descriptor out when its header is missing,
/// so a request without a key still sends the first).
pub(crate) fn rate_limits() -> Vec<RateLimit> {
    let header = |header_name, descriptor_key| RateLimitAction {
        request_headers: RequestHeaders {
            header_name,
            descriptor_key,
        },
    };
    vec![
        RateLimit {
            actions: vec![
                header(":method", descriptor::METHOD),
                header(":path", descriptor::PATH),
            ],
        },
        RateLimit {
            actions: vec![header(descriptor::API_KEY_HEADER, descriptor::API_KEY)],
        },
    ]
}

fn refused_with(outcome: Outcome) -> String {
    format!(
        "{RATE_LIMITED} && metadata.filter_metadata['{}']['{}'] == '{}'",
        metadata::NAMESPACE,
        metadata::OUTCOME,
        outcome.label()
    )
}

/// The usage outcomes Envoy answers for.
const REFUSALS: [Outcome; 4] = [
    Outcome::InvalidApiKey,
    Outcome::PlanThrottled,
    Outcome::QuotaExceeded,
    Outcome::UsageStoreUnavailable,
];

/// One mapper per refusal, one for a service that did not answer, and one
/// for the local throttles (`throttle.rs`).
pub(crate) fn local_reply_mappers() -> Vec<ResponseMapper> {
    let mapper = |expression: String, status: u16, message: &'static str| ResponseMapper {
        filter: AccessLogFilter::cel_owned(expression),
        status_code: Some(u32::from(status)),
        body_format_override: JsonFormat {
            json_format: ErrorBody {
                message,
                request_id: "%REQ(X-REQUEST-ID)%",
            },
        },
    };
    REFUSALS
        .into_iter()
        .filter_map(|outcome| {
            let (status, message) = usage_refusal(outcome)?;
            Some(mapper(refused_with(outcome), status, message))
        })
        .chain([
            mapper(SERVICE_ERROR.to_owned(), 503, SERVICE_UNAVAILABLE),
            mapper(
                LOCAL_RATE_LIMITED.to_owned(),
                429,
                usage_refusal(Outcome::GatewayThrottled).map_or(SERVICE_UNAVAILABLE, |(_, m)| m),
            ),
        ])
        .collect()
}

/// The access logs of the requests the rate-limit filter answered, each
/// with what replaces the filter's outcome in its line: the service's
/// outcome for a refusal, `invoker_unreachable` when it could not be asked.
pub(crate) fn refused_logs() -> [(AccessLogFilter, String); 3] {
    [
        (
            AccessLogFilter::cel_owned(RATE_LIMITED.to_owned()),
            format!(
                "%DYNAMIC_METADATA({}:{})%",
                metadata::NAMESPACE,
                metadata::OUTCOME
            ),
        ),
        (
            AccessLogFilter::cel_owned(SERVICE_ERROR.to_owned()),
            Outcome::InvokerUnreachable.label().to_owned(),
        ),
        (
            AccessLogFilter::cel_owned(LOCAL_RATE_LIMITED.to_owned()),
            Outcome::GatewayThrottled.label().to_owned(),
        ),
    ]
}
