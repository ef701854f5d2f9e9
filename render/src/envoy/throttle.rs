//! `gateway.throttle` and the APIs' `throttle` as Envoy's local rate-limit
//! filter: one instance with the gateway's bucket, one whose buckets are
//! the APIs' (on each API's own route). A throttled request is 429 `Too
//! Many Requests` with `Retry-After: 1`, the gateway's JSON body (a
//! local-reply mapper) and the outcome `gateway_throttled`.

use serde::Serialize;

use super::proto::{Millis, TypeUrl};
use crate::throttle::Throttle;

/// The two filters' names in the chain (an API route's bucket is set
/// under the second).
pub(crate) const GATEWAY_THROTTLE: &str = "lambdagate.gateway_throttle";
pub(crate) const API_THROTTLE: &str = "lambdagate.api_throttle";

/// `envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`.
#[derive(Serialize)]
pub(crate) struct LocalRateLimit {
    stat_prefix: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_bucket: Option<TokenBucket>,
    /// Left out: the filter is off (the API filter, except on routes
    /// that set their own bucket).
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_enabled: Option<RuntimePercent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_enforced: Option<RuntimePercent>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    response_headers_to_add: Vec<HeaderValueOption>,
}

impl TypeUrl for LocalRateLimit {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
}

#[derive(Serialize)]
struct TokenBucket {
    max_tokens: u32,
    tokens_per_fill: u32,
    fill_interval: Millis,
}

#[derive(Serialize)]
struct RuntimePercent {
    default_value: Percent,
    runtime_key: &'static str,
}

#[derive(Serialize)]
struct Percent {
    numerator: u32,
    denominator: &'static str,
}

#[derive(Serialize)]
struct HeaderValueOption {
    header: Header,
    append_action: &'static str,
}

#[derive(Serialize)]
struct Header {
    key: &'static str,
    value: &'static str,
}

fn always(runtime_key: &'static str) -> Option<RuntimePercent> {
    Some(RuntimePercent {
        default_value: Percent {
            numerator: 100,
            denominator: "HUNDRED",
        },
        runtime_key,
    })
}

/// A bucket, on, enforced, with `Retry-After`.
pub(crate) fn bucket(throttle: Throttle, stat_prefix: &'static str) -> LocalRateLimit {
    let (tokens_per_fill, interval_ms) = throttle.refill();
    LocalRateLimit {
        stat_prefix,
        token_bucket: Some(TokenBucket {
            max_tokens: throttle.burst,
            tokens_per_fill,
            fill_interval: Millis(interval_ms),
        }),
        filter_enabled: always("lambdagate.throttle.enabled"),
        filter_enforced: always("lambdagate.throttle.enforced"),
        response_headers_to_add: vec![HeaderValueOption {
            header: Header {
                key: "retry-after",
                value: "1",
            },
            append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
        }],
    }
}

/// The API filter's own settings: off, until a route sets a bucket.
pub(crate) fn off() -> LocalRateLimit {
    LocalRateLimit {
        stat_prefix: "api_throttle",
        token_bucket: None,
        filter_enabled: None,
        filter_enforced: None,
        response_headers_to_add: Vec::new(),
    }
}
