//! An API's `cors` as Envoy's own CORS filter runs it: the filter sits
//! first in the chain (a preflight carries no key or token, and is answered
//! there, invoking nothing); each API with a policy has its own route
//! holding it. Envoy sets the CORS response headers (replacing a
//! function's own, so none is doubled).

use serde::Serialize;

use super::proto::TypeUrl;
use crate::cors::CorsSettings;

/// The CORS filter's name in the chain (and in routes' settings).
pub(crate) const CORS_FILTER: &str = "envoy.filters.http.cors";

/// `envoy.extensions.filters.http.cors.v3.Cors`: no settings of its own.
#[derive(Serialize)]
pub(crate) struct CorsFilter {}

impl TypeUrl for CorsFilter {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
}

/// `envoy.extensions.filters.http.cors.v3.CorsPolicy`.
#[derive(Serialize)]
pub(crate) struct CorsPolicy {
    allow_origin_string_match: Vec<StringMatch>,
    allow_methods: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    allow_headers: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    expose_headers: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<String>,
    allow_credentials: bool,
}

impl TypeUrl for CorsPolicy {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy";
}

/// `envoy.type.matcher.v3.StringMatcher`: one of the two (a struct, as
/// serde_yaml would write an enum as a YAML tag).
#[derive(Serialize)]
struct StringMatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    exact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safe_regex: Option<Regex>,
}

#[derive(Serialize)]
struct Regex {
    regex: &'static str,
}

/// The policy for `cors`; `verbs` (the API's) when it names no methods.
pub(crate) fn cors_policy(cors: &CorsSettings, verbs: &[String]) -> CorsPolicy {
    let methods: Vec<String> = if cors.allow_methods.is_empty() {
        let mut verbs: Vec<String> = verbs.iter().map(|v| v.to_ascii_uppercase()).collect();
        if verbs.iter().any(|v| v == "ANY") {
            verbs = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
                .map(str::to_owned)
                .to_vec();
        }
        verbs.sort();
        verbs.dedup();
        verbs
    } else {
        cors.allow_methods
            .iter()
            .map(|m| m.to_ascii_uppercase())
            .collect()
    };
    CorsPolicy {
        allow_origin_string_match: cors
            .allow_origins
            .iter()
            .map(|o| {
                if o == "*" {
                    StringMatch {
                        exact: None,
                        safe_regex: Some(Regex { regex: ".*" }),
                    }
                } else {
                    StringMatch {
                        exact: Some(o.trim_end_matches('/').to_owned()),
                        safe_regex: None,
                    }
                }
            })
            .collect(),
        allow_methods: methods.join(","),
        allow_headers: cors.allow_headers.join(","),
        expose_headers: cors.expose_headers.join(","),
        max_age: cors.max_age_seconds.map(|s| s.to_string()),
        allow_credentials: cors.allow_credentials,
    }
}
