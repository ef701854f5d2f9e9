//! The configuration compiled once: every resource's [`RouteTarget`]
//! (what the filter needs to invoke it and answer), the facts an API's
//! resources share, and the route table.

use std::sync::Arc;

use super::arn::LambdaArn;
use super::route::{RouteTable, Verb};
use super::schema::{
    ApiKeySource, Config, DataPath, InvocationType, Lifecycle, PayloadFormat, ResponseMode,
};
use super::timeout::Timeout;
use crate::auth::Authorizer;

/// Where a resource's requests go, with everything the filter needs to
/// invoke it and answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    pub(crate) api_name: String,
    pub(crate) api_version: String,
    pub(crate) context: String,
    pub(crate) endpoint: String,
    pub(crate) payload_format: PayloadFormat,
    pub(crate) verb: Verb,
    pub(crate) template: String,
    pub(crate) arn: LambdaArn,
    pub(crate) arn_text: String,
    pub(crate) timeout: Timeout,
    pub(crate) invocation_type: InvocationType,
    pub(crate) response_mode: ResponseMode,
    pub(crate) function_error_status: u16,
    pub(crate) expose_errors: bool,
    /// API Gateway's `resourceId`: stable, derived from the API and resource.
    pub(crate) resource_id: String,
    pub(crate) api: Arc<ApiFacts>,
    /// Who may call (see `auth`); `None`: anyone.
    pub(crate) authorizer: Option<Arc<Authorizer>>,
    /// A JWT authorizer's scopes for this resource (any one suffices).
    pub(crate) scopes: Vec<String>,
    /// Where its API key comes from; `None`: no key needed.
    pub(crate) api_key: Option<ApiKeySource>,
}

/// What every resource of one API shares in its events and replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFacts {
    /// API Gateway's `apiId`: 10 characters derived from the API's name, so
    /// it stays the same across deploys and versions.
    pub api_id: String,
    /// `$default` unless the API names one.
    pub stage: String,
    pub stage_named: bool,
    pub stage_variables: Vec<(String, String)>,
    pub binary_media_types: Vec<MediaRange>,
    pub domain_name: Option<String>,
    pub lifecycle: Lifecycle,
    /// `Deprecation` and `Sunset` for every response of a deprecated API.
    pub lifecycle_headers: Vec<(String, String)>,
}

impl ApiFacts {
    /// A deprecated API says so on every response, the function's too:
    /// its `Deprecation` and `Sunset` replace any of those names.
    pub fn add_lifecycle_headers(&self, headers: &mut Vec<(String, String)>) {
        crate::headers::replace_headers(headers, &self.lifecycle_headers);
    }

    /// Whether a media type (a content-type or Accept entry) is one of the
    /// API's binary media types: REST's rule for base64 bodies both ways.
    pub fn is_binary(&self, media_type: &str) -> bool {
        self.binary_media_types
            .iter()
            .any(|range| range.matches(media_type))
    }
}

/// A `binary_media_types` entry: `type/subtype`, `type/*` or `*/*`
/// (lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaRange {
    kind: String,
    subtype: String,
}

impl MediaRange {
    pub(crate) fn parse(text: &str) -> Option<MediaRange> {
        let (kind, subtype) = text.trim().split_once('/')?;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        };
        let ok = match (kind, subtype) {
            ("*", "*") => true,
            (k, "*") => token(k),
            (k, s) => token(k) && token(s),
        };
        ok.then(|| MediaRange {
            kind: kind.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
        })
    }

    /// Whether a media type (a content-type or Accept entry, parameters
    /// allowed) falls in this range.
    pub fn matches(&self, media_type: &str) -> bool {
        let essence = media_type.split(';').next().unwrap_or_default().trim();
        let Some((kind, subtype)) = essence.split_once('/') else {
            return false;
        };
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

impl RouteTarget {
    /// The resource's authorizer, if it has one.
    pub fn authorizer(&self) -> Option<&Authorizer> {
        self.authorizer.as_deref()
    }
    pub fn api_name(&self) -> &str {
        &self.api_name
    }
    pub fn api_version(&self) -> &str {
        &self.api_version
    }
    pub fn context(&self) -> &str {
        &self.context
    }
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
    pub fn payload_format(&self) -> PayloadFormat {
        self.payload_format
    }
    pub fn verb(&self) -> Verb {
        self.verb
    }
    /// The URI template, relative to the context.
    pub fn template(&self) -> &str {
        &self.template
    }
    pub fn arn(&self) -> &LambdaArn {
        &self.arn
    }
    pub fn timeout(&self) -> Timeout {
        self.timeout
    }
    pub fn invocation_type(&self) -> InvocationType {
        self.invocation_type
    }
    pub fn function_error_status(&self) -> u16 {
        self.function_error_status
    }
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }
    pub fn api(&self) -> &ApiFacts {
        &self.api
    }
    /// `POST /user/{id}` (what payload v2 calls the route key).
    pub fn route_key(&self) -> String {
        format!("{} {}", self.verb, self.template)
    }
}

/// A validated configuration with its route table, built once.
pub struct CompiledConfig {
    pub(crate) config: Config,
    pub(crate) table: RouteTable<Arc<RouteTarget>>,
}

impl std::fmt::Debug for CompiledConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledConfig")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl CompiledConfig {
    /// The configuration as written (for `lambdagate render` and friends).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The Envoy cluster to dispatch gRPC calls to.
    pub fn invoker_cluster(&self) -> &str {
        &self.config.invoker_cluster
    }

    /// The cluster of the callout as HTTP/1.1, if configured (else the
    /// callout is gRPC on [`Self::invoker_cluster`]).
    pub fn callout_cluster(&self) -> Option<&str> {
        self.config.callout_cluster.as_deref()
    }

    pub fn data_path(&self) -> DataPath {
        self.config.data_path
    }

    /// Whether a routed request goes to the invoker by the router path
    /// (Envoy's router carries it, its body never read into the VM) rather
    /// than the callout: on the router data path, for a streamed route,
    /// and for a body of `body_len` bytes at or over `router_body_bytes`.
    pub fn takes_router_path(&self, streams: bool, body_len: Option<usize>) -> bool {
        if self.config.data_path == DataPath::Router || streams {
            return true;
        }
        match (self.config.router_body_bytes, body_len) {
            (Some(from), Some(len)) => u64::try_from(len).unwrap_or(u64::MAX) >= from,
            _ => false,
        }
    }
}
