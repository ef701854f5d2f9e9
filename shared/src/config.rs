//! The filter's configuration: JSON in the Envoy wasm plugin config.
//!
//! ```json
//! {
//!   "invoker_cluster": "lambdagate_invoker",
//!   "apis": [{
//!     "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
//!     "payload_format": "v1",
//!     "resources": [{
//!       "verb": "POST", "uri_template": "/user/{id}",
//!       "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live",
//!       "timeout_seconds": 50, "invocation_type": "RequestResponse",
//!       "function_error_status": 502
//!     }]
//!   }]
//! }
//! ```
//!
//! [`parse`] reads, validates and compiles it once (at `on_configure`);
//! every error names the place (`apis[0] (users).resources[2] (POST /user/{id}).arn`)
//! and what is allowed there.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::arn::LambdaArn;
use crate::route::{ApiRoutes, RouteTable, Template, VERB_CHOICES, Verb, validate_context};
use crate::timeout::Timeout;

pub const DEFAULT_INVOKER_CLUSTER: &str = "lambdagate_invoker";
pub const DEFAULT_TIMEOUT_SECONDS: u32 = 50;
pub const DEFAULT_FUNCTION_ERROR_STATUS: u16 = 502;

/// The whole plugin configuration, as written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Envoy cluster of the invoker sidecar (HTTP/2).
    #[serde(default = "default_invoker_cluster")]
    pub invoker_cluster: String,
    /// How a request reaches the invoker (see [`DataPath`]).
    #[serde(default, skip_serializing_if = "DataPath::is_default")]
    pub data_path: DataPath,
    pub apis: Vec<ApiConfig>,
}

/// How the filter hands a routed request to the invoker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataPath {
    /// The request itself becomes the invoker's `InvokeHttp` call and
    /// continues through Envoy's router to the invoker cluster; the reply
    /// is already the client's response. Needs the route to the invoker
    /// that `lambdagate render` writes (see `forward`).
    Router,
    /// The filter pauses the request, calls `Invoke` through Envoy's gRPC
    /// client (`dispatch_grpc_call`) and answers with a local reply.
    #[default]
    Callout,
}

impl DataPath {
    fn is_default(&self) -> bool {
        *self == DataPath::default()
    }
}

/// One API: a base path and its resources.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub name: String,
    /// The API's version (the OpenAPI `info.version`; events use stage `$default`).
    pub version: String,
    /// Base path: `/` or `/users` (no trailing slash).
    pub context: String,
    /// The invoker endpoint (access method) this API's functions are invoked with.
    pub endpoint: String,
    #[serde(default)]
    pub payload_format: PayloadFormat,
    /// Show clients the whole error (a function's error payload, the
    /// invoker's reason, the ARN) instead of API Gateway's generic
    /// messages. For demos and development; off by default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expose_errors: bool,
    /// The stage name events carry (`requestContext.stage`); none means
    /// `$default`, as an HTTP API's default stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The stage's variables (`stageVariables` in both payload formats).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stage_variables: BTreeMap<String, String>,
    /// Payload format v1 only, as a REST API's `binaryMediaTypes`: a request
    /// body whose content-type matches goes base64, any other as text; a
    /// reply's `isBase64Encoded` body is decoded only when the client's
    /// first `Accept` type matches. `*/*` and `type/*` are allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_media_types: Vec<String>,
    /// The gateway's public host name (`requestContext.domainName`); never
    /// taken from the client's Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain_name: Option<String>,
    /// Where the API is in its life: `retired` APIs answer 410, responses of
    /// `deprecated` ones carry `Deprecation` (and `Sunset`) headers.
    #[serde(default, skip_serializing_if = "Lifecycle::is_published")]
    pub lifecycle: Lifecycle,
    /// A deprecated API's deprecation date, `YYYY-MM-DD` (the `Deprecation`
    /// header's date; without it the header says `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deprecated_on: Option<String>,
    /// A deprecated API's planned end, `YYYY-MM-DD` (the `Sunset` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<String>,
    pub resources: Vec<ResourceConfig>,
}

/// An API's lifecycle state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    /// Deployed and served, not listed in the portal.
    Created,
    /// Served and listed.
    #[default]
    Published,
    /// Served, listed as deprecated; responses say so in headers.
    Deprecated,
    /// No longer served: its resources answer 410.
    Retired,
}

impl Lifecycle {
    pub fn is_published(&self) -> bool {
        *self == Lifecycle::Published
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Created => "created",
            Lifecycle::Published => "published",
            Lifecycle::Deprecated => "deprecated",
            Lifecycle::Retired => "retired",
        }
    }
}

/// One resource: verb + URI template → Lambda function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY (any case).
    pub verb: String,
    /// Relative to the API's context, e.g. `/user/{id}` or `/files/{path+}`.
    pub uri_template: String,
    pub arn: String,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u32,
    #[serde(default)]
    pub invocation_type: InvocationType,
    /// HTTP status for a function error (`X-Amz-Function-Error`); 400..=599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_error_status: Option<u16>,
    /// Whether the function's response is collected or streamed.
    #[serde(default, skip_serializing_if = "ResponseMode::is_default")]
    pub response_mode: ResponseMode,
}

/// How a resource's response reaches the client.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseMode {
    /// Lambda `Invoke`: the whole response (up to 6 MB), then the client's.
    #[default]
    Buffered,
    /// Lambda `InvokeWithResponseStream`: each piece is passed on as the
    /// function writes it (first bytes before it ends, up to 200 MB).
    /// Always taken through Envoy's router (the router data path), whatever
    /// `data_path` says: a local reply cannot stream.
    Stream,
}

impl ResponseMode {
    fn is_default(&self) -> bool {
        *self == ResponseMode::default()
    }
}

/// How the Lambda event is built from the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PayloadFormat {
    /// API Gateway REST API proxy event, payload format 1.0.
    #[default]
    #[serde(rename = "v1")]
    V1,
    /// API Gateway HTTP API event, payload format 2.0.
    #[serde(rename = "v2")]
    V2,
    /// WSO2 API Manager's event: body as parsed JSON, `path` = template.
    #[serde(rename = "wso2")]
    Wso2,
    /// The request body, unchanged.
    #[serde(rename = "passthrough")]
    Passthrough,
}

/// Lambda's `InvocationType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvocationType {
    /// Wait for the function's result.
    #[default]
    RequestResponse,
    /// Queue the event; the client gets 202.
    Event,
}

impl PayloadFormat {
    /// The number in `HttpReply.payload_format`.
    pub fn to_wire(self) -> u32 {
        match self {
            PayloadFormat::V1 => 1,
            PayloadFormat::V2 => 2,
            PayloadFormat::Wso2 => 3,
            PayloadFormat::Passthrough => 4,
        }
    }

    /// From `HttpReply.payload_format`; `None` for a number no format has.
    pub fn from_wire(n: u32) -> Option<Self> {
        Some(match n {
            1 => PayloadFormat::V1,
            2 => PayloadFormat::V2,
            3 => PayloadFormat::Wso2,
            4 => PayloadFormat::Passthrough,
            _ => return None,
        })
    }
}

impl InvocationType {
    /// From the proto enum; `DryRun` is never sent by the filter.
    pub fn from_proto(value: i32) -> Option<Self> {
        match lambdagate_proto::InvocationType::try_from(value).ok()? {
            lambdagate_proto::InvocationType::RequestResponse => {
                Some(InvocationType::RequestResponse)
            }
            lambdagate_proto::InvocationType::Event => Some(InvocationType::Event),
            lambdagate_proto::InvocationType::DryRun => None,
        }
    }

    pub fn to_proto(self) -> lambdagate_proto::InvocationType {
        match self {
            InvocationType::RequestResponse => lambdagate_proto::InvocationType::RequestResponse,
            InvocationType::Event => lambdagate_proto::InvocationType::Event,
        }
    }
}

fn default_invoker_cluster() -> String {
    DEFAULT_INVOKER_CLUSTER.to_owned()
}

fn default_timeout_seconds() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}

/// A configuration error: where, and what is wrong and allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ConfigError {
    at: String,
    message: String,
}

impl ConfigError {
    fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            at: at.into(),
            message: message.into(),
        }
    }

    /// Where: `apis[0] (users).resources[1] (GET /user/{id}).arn`.
    pub fn at(&self) -> &str {
        &self.at
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Parses, validates and compiles the JSON plugin configuration.
pub fn parse(json: &[u8]) -> Result<CompiledConfig, ConfigError> {
    // Envoy passes an empty configuration when `configuration` is left out
    // of the wasm filter: say that rather than serde's "EOF while parsing".
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "config",
            "the configuration is empty; set it to the lambdagate JSON (invoker_cluster, apis)",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let config: Config = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        // `.` is the top level; `?` an unknown place (JSON syntax errors);
        // `` an unknown top-level key that is itself empty.
        let at = if at == "." || at == "?" || at.is_empty() {
            "config".to_owned()
        } else {
            at
        };
        ConfigError::new(at, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ConfigError::new("config", e.to_string()))?;
    config.compile()
}

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
        crate::response::replace_headers(headers, &self.lifecycle_headers);
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
    fn parse(text: &str) -> Option<MediaRange> {
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

/// FNV-1a, 64 bits: a stable short hash for ids (not for security).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// `len` characters of `[0-9a-z]` from a hash, as API Gateway's ids look.
fn base36_id(mut hash: u64, len: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut id = String::with_capacity(len);
    for _ in 0..len {
        let digit = usize::try_from(hash % 36).unwrap_or(0);
        id.push(char::from(DIGITS.get(digit).copied().unwrap_or(b'0')));
        hash /= 36;
    }
    id
}

/// Stage variable values as API Gateway allows them.
fn is_stage_variable_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 2048
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b))
}

/// A host name: DNS labels (letters, digits, `-`), dots between, the last
/// not all digits (that would be an IPv4 address).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl RouteTarget {
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

    pub fn data_path(&self) -> DataPath {
        self.config.data_path
    }
}

const NAME_CHARS: &str = "letters, digits, `.`, `-` or `_`";

fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b))
}

impl Config {
    /// Validates and builds the route table. `parse` = JSON + this.
    pub fn compile(self) -> Result<CompiledConfig, ConfigError> {
        check_cluster(&self.invoker_cluster)?;
        if self.apis.is_empty() {
            return Err(ConfigError::new(
                "apis",
                "at least one API is required (an API has name, version, context, endpoint and resources)",
            ));
        }
        let mut routes = Vec::with_capacity(self.apis.len());
        for (i, api) in self.apis.iter().enumerate() {
            let at = format!("apis[{i}] ({})", api.name);
            if !is_name(&api.name, b".") {
                return Err(ConfigError::new(
                    format!("apis[{i}].name"),
                    format!(
                        "`{}` is not a valid API name: use 1 or more {NAME_CHARS}",
                        api.name
                    ),
                ));
            }
            if let Some(j) = self.apis.iter().take(i).position(|a| a.name == api.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "the API name `{}` is already used by apis[{j}]; API names must be unique",
                        api.name
                    ),
                ));
            }
            if !is_name(&api.version, b".") {
                return Err(ConfigError::new(
                    format!("{at}.version"),
                    format!(
                        "`{}` is not a valid version: use 1 or more {NAME_CHARS}, e.g. `v1`",
                        api.version
                    ),
                ));
            }
            validate_context(&api.context)
                .map_err(|message| ConfigError::new(format!("{at}.context"), message))?;
            if let Some(j) = self
                .apis
                .iter()
                .take(i)
                .position(|a| a.context == api.context)
            {
                return Err(ConfigError::new(
                    format!("{at}.context"),
                    format!(
                        "the context `{}` is already used by apis[{j}] ({}); each API needs its own base path",
                        api.context,
                        self.apis.get(j).map_or("", |a| a.name.as_str())
                    ),
                ));
            }
            if !is_name(&api.endpoint, b"") {
                return Err(ConfigError::new(
                    format!("{at}.endpoint"),
                    format!(
                        "`{}` is not a valid endpoint name: use 1 or more letters, digits, `-` or `_` \
                         (the name of an endpoint in the invoker config)",
                        api.endpoint
                    ),
                ));
            }
            let facts = Arc::new(api_facts(api, &at)?);
            if api.resources.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.resources"),
                    "an API needs at least one resource (verb, uri_template, arn)",
                ));
            }
            let mut resources: Vec<(Verb, Template, Arc<RouteTarget>)> = Vec::new();
            for (k, res) in api.resources.iter().enumerate() {
                let at = format!("{at}.resources[{k}] ({} {})", res.verb, res.uri_template);
                let verb = Verb::parse(&res.verb).ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.verb"),
                        format!("`{}` is not a verb: use {VERB_CHOICES}", res.verb),
                    )
                })?;
                let template = Template::parse(&res.uri_template)
                    .map_err(|e| ConfigError::new(format!("{at}.uri_template"), e.to_string()))?;
                if let Some(j) = resources
                    .iter()
                    .position(|(v, t, _)| *v == verb && t.same_shape(&template))
                {
                    let first = api
                        .resources
                        .get(j)
                        .map_or(String::new(), |r| format!("{} {}", r.verb, r.uri_template));
                    return Err(ConfigError::new(
                        format!("{at}.uri_template"),
                        format!(
                            "resources[{j}] ({first}) already routes {verb} on the same path; \
                             each verb + template may appear once per API (parameter names do not make templates different)"
                        ),
                    ));
                }
                let arn = LambdaArn::parse(&res.arn)
                    .map_err(|e| ConfigError::new(format!("{at}.arn"), e.to_string()))?;
                let timeout = Timeout::new(Duration::from_secs(u64::from(res.timeout_seconds)))
                    .map_err(|e| {
                        ConfigError::new(format!("{at}.timeout_seconds"), e.to_string())
                    })?;
                let function_error_status = match res.function_error_status {
                    None => DEFAULT_FUNCTION_ERROR_STATUS,
                    Some(s @ 400..=599) => s,
                    Some(s) => {
                        return Err(ConfigError::new(
                            format!("{at}.function_error_status"),
                            format!(
                                "{s} is not allowed: use an HTTP error status from 400 to 599 (default 502)"
                            ),
                        ));
                    }
                };
                if res.response_mode == ResponseMode::Stream
                    && res.invocation_type != InvocationType::RequestResponse
                {
                    return Err(ConfigError::new(
                        format!("{at}.response_mode"),
                        "`stream` needs invocation_type RequestResponse: an Event invocation has no response to stream",
                    ));
                }
                let target = RouteTarget {
                    api_name: api.name.clone(),
                    api_version: api.version.clone(),
                    context: api.context.clone(),
                    endpoint: api.endpoint.clone(),
                    payload_format: api.payload_format,
                    verb,
                    template: res.uri_template.clone(),
                    arn_text: arn.to_string(),
                    arn,
                    timeout,
                    invocation_type: res.invocation_type,
                    response_mode: res.response_mode,
                    function_error_status,
                    expose_errors: api.expose_errors,
                    resource_id: base36_id(
                        fnv1a(&[&api.name, verb.as_str(), &res.uri_template]),
                        6,
                    ),
                    api: Arc::clone(&facts),
                };
                resources.push((verb, template, Arc::new(target)));
            }
            let api_routes = ApiRoutes::new(api.context.clone(), resources);
            routes.push(if api.payload_format == PayloadFormat::V1 {
                api_routes.resource_first()
            } else {
                api_routes
            });
        }
        Ok(CompiledConfig {
            table: RouteTable::new(routes),
            config: self,
        })
    }
}

/// Checks an API's stage, stage variables, binary media types and domain.
fn api_facts(api: &ApiConfig, at: &str) -> Result<ApiFacts, ConfigError> {
    if let Some(stage) = &api.stage
        && (stage.len() > 128 || !is_name(stage, b""))
    {
        return Err(ConfigError::new(
            format!("{at}.stage"),
            format!(
                "`{stage}` is not a valid stage name: use 1 to 128 letters, digits, `-` or `_` (leave it out for `$default`)"
            ),
        ));
    }
    for (name, value) in &api.stage_variables {
        if name.len() > 64 || !is_name(name, b"") || name.contains('-') {
            return Err(ConfigError::new(
                format!("{at}.stage_variables"),
                format!(
                    "`{name}` is not a valid stage variable name: use 1 to 64 letters, digits or `_`"
                ),
            ));
        }
        if !is_stage_variable_value(value) {
            return Err(ConfigError::new(
                format!("{at}.stage_variables.{name}"),
                "a stage variable value is 1 to 2048 of: letters, digits and -._~:/?#&=,",
            ));
        }
    }
    let mut binary_media_types = Vec::with_capacity(api.binary_media_types.len());
    for (i, text) in api.binary_media_types.iter().enumerate() {
        if api.payload_format != PayloadFormat::V1 {
            return Err(ConfigError::new(
                format!("{at}.binary_media_types"),
                "binary_media_types applies to payload_format v1 (REST) only; an HTTP API (v2) decides by content type itself",
            ));
        }
        let range = MediaRange::parse(text).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.binary_media_types[{i}]"),
                format!("`{text}` is not a media type: use `type/subtype`, `type/*` or `*/*`, e.g. `image/png`"),
            )
        })?;
        binary_media_types.push(range);
    }
    if let Some(domain) = &api.domain_name
        && !is_host_name(domain)
    {
        return Err(ConfigError::new(
            format!("{at}.domain_name"),
            format!(
                "`{domain}` is not a host name: use DNS labels of letters, digits and `-`, e.g. `api.example.com`"
            ),
        ));
    }
    let lifecycle_headers = lifecycle_headers(api, at)?;
    Ok(ApiFacts {
        lifecycle: api.lifecycle,
        lifecycle_headers,
        api_id: base36_id(fnv1a(&[&api.name]), 10),
        stage: api.stage.clone().unwrap_or_else(|| "$default".to_owned()),
        stage_named: api.stage.is_some(),
        stage_variables: api
            .stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        binary_media_types,
        domain_name: api.domain_name.clone(),
    })
}

/// The headers of a deprecated API (RFC 9745 `Deprecation`, RFC 8594
/// `Sunset`); dates are checked whatever the state, and only a deprecated
/// API may have them.
fn lifecycle_headers(api: &ApiConfig, at: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    let deprecated = api.lifecycle == Lifecycle::Deprecated;
    let deprecation = match &api.deprecated_on {
        None => None,
        Some(date) => Some(date_days(date).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.deprecated_on"),
                format!("`{date}` is not a date: use YYYY-MM-DD, e.g. 2026-11-30"),
            )
        })?),
    };
    let sunset = match &api.sunset {
        None => None,
        Some(date) => Some(date_days(date).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.sunset"),
                format!("`{date}` is not a date: use YYYY-MM-DD, e.g. 2027-06-30"),
            )
        })?),
    };
    if !deprecated && (deprecation.is_some() || sunset.is_some()) {
        let field = if deprecation.is_some() {
            "deprecated_on"
        } else {
            "sunset"
        };
        return Err(ConfigError::new(
            format!("{at}.{field}"),
            format!(
                "only a deprecated API has a {field} date; this one is `{}` (set lifecycle: deprecated, or remove the date)",
                api.lifecycle.as_str()
            ),
        ));
    }
    if let (Some(from), Some(until)) = (deprecation, sunset)
        && until < from
    {
        return Err(ConfigError::new(
            format!("{at}.sunset"),
            "the sunset date is before the deprecation date",
        ));
    }
    if deprecated {
        headers.push((
            "deprecation".to_owned(),
            deprecation.map_or_else(|| "true".to_owned(), |days| format!("@{}", days * 86_400)),
        ));
        if let Some(days) = sunset {
            headers.push(("sunset".to_owned(), http_date(days)));
        }
    }
    Ok(headers)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (years 1970 to 9999).
fn date_days(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month.checked_sub(1)?).ok()?)?;
    if year < 1970 || !(1..=max_day).contains(&day) {
        return None;
    }
    // The inverse of the era-based conversion in `event::civil_from_days`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `Wed, 30 Jun 2027 00:00:00 GMT` for a day since 1970-01-01.
fn http_date(days: i64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let weekday = WEEKDAYS
        .get(usize::try_from(days.rem_euclid(7)).unwrap_or(0))
        .copied()
        .unwrap_or("Thu");
    let (year, month, day) = crate::event::civil_from_days(days);
    let month = crate::event::MONTHS
        .get(usize::try_from(month - 1).unwrap_or(0))
        .copied()
        .unwrap_or("Jan");
    format!("{weekday}, {day:02} {month} {year} 00:00:00 GMT")
}

fn check_cluster(name: &str) -> Result<(), ConfigError> {
    let at = "invoker_cluster";
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            at,
            format!(
                "`{name}` is not a valid cluster name: give the name of the Envoy cluster of the \
                 lambdagate invoker (HTTP/2), without spaces, e.g. `{DEFAULT_INVOKER_CLUSTER}`"
            ),
        ));
    }
    if parses_as_protobuf(name.as_bytes()) {
        return Err(ConfigError::new(
            at,
            format!(
                "`{name}` cannot be used: Envoy first reads a gRPC upstream name as a serialized \
                 GrpcService message, `{name}` happens to be valid protobuf, and Envoy then aborts \
                 (`panic: unset oneof`); rename the cluster, e.g. `{DEFAULT_INVOKER_CLUSTER}`"
            ),
        ));
    }
    Ok(())
}

/// Whether `bytes` is a well-formed protobuf message (any fields). Envoy's
/// `dispatch_grpc_call` tries exactly that parse on the upstream name
/// before treating it as a cluster name; `h2` is the classic victim.
fn parses_as_protobuf(bytes: &[u8]) -> bool {
    fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*pos)?;
            *pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    // Parses fields until the end (group == None) or the matching end-group.
    fn fields(bytes: &[u8], pos: &mut usize, group: Option<u64>, depth: u32) -> bool {
        if depth > 32 {
            return false;
        }
        while *pos < bytes.len() {
            let Some(tag) = varint(bytes, pos) else {
                return false;
            };
            let field = tag >> 3;
            if field == 0 || field > (1 << 29) - 1 {
                return false;
            }
            let ok = match tag & 7 {
                0 => varint(bytes, pos).is_some(),
                1 => skip(bytes, pos, 8),
                2 => varint(bytes, pos)
                    .and_then(|len| usize::try_from(len).ok())
                    .is_some_and(|len| skip(bytes, pos, len)),
                3 => fields(bytes, pos, Some(field), depth + 1),
                4 => return group == Some(field),
                5 => skip(bytes, pos, 4),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        group.is_none()
    }
    fn skip(bytes: &[u8], pos: &mut usize, n: usize) -> bool {
        match pos.checked_add(n) {
            Some(end) if end <= bytes.len() => {
                *pos = end;
                true
            }
            _ => false,
        }
    }
    let mut pos = 0;
    fields(bytes, &mut pos, None, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"{
      "invoker_cluster": "lambdagate_invoker",
      "apis": [{
        "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
        "resources": [
          {"verb": "POST", "uri_template": "/user/{id}",
           "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live"},
          {"verb": "get", "uri_template": "/user/{id}",
           "arn": "arn:aws:lambda:us-east-1:123456789012:function:get-user",
           "timeout_seconds": 3, "invocation_type": "Event", "function_error_status": 500}
        ]
      }]
    }"#;

    #[test]
    fn a_streamed_resource_must_wait_for_its_response() {
        let streamed = EXAMPLE.replace(
            r#""function_error_status": 500}"#,
            r#""function_error_status": 500, "response_mode": "stream"}"#,
        );
        let error = parse(streamed.as_bytes()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "apis[0] (users).resources[1] (get /user/{id}).response_mode: `stream` needs invocation_type RequestResponse: an Event invocation has no response to stream"
        );
        let streamed = streamed.replace(r#""invocation_type": "Event", "#, "");
        let config = parse(streamed.as_bytes()).unwrap();
        assert_eq!(
            config.config.apis[0].resources[1].response_mode,
            ResponseMode::Stream
        );
        let unknown = EXAMPLE.replace(
            r#""function_error_status": 500}"#,
            r#""response_mode": "chunked"}"#,
        );
        let error = parse(unknown.as_bytes()).unwrap_err().to_string();
        assert!(
            error.contains("unknown variant `chunked`, expected `buffered` or `stream`"),
            "{error}"
        );
    }

    #[test]
    fn lifecycle_dates_become_headers_and_bad_ones_are_refused() {
        assert_eq!(date_days("1970-01-01"), Some(0));
        assert_eq!(date_days("2000-03-01"), Some(11_017));
        assert_eq!(
            http_date(date_days("2027-06-30").unwrap()),
            "Wed, 30 Jun 2027 00:00:00 GMT"
        );
        assert_eq!(
            http_date(date_days("2024-02-29").unwrap()),
            "Thu, 29 Feb 2024 00:00:00 GMT"
        );
        for bad in [
            "2027-02-29",
            "2027-13-01",
            "2027-1-01",
            "27-01-01",
            "1969-12-31",
            "2027-06-3x",
            "",
        ] {
            assert_eq!(date_days(bad), None, "{bad}");
        }
        let api = |extra: &str| {
            let json = format!(
                r#"{{"apis": [{{"name": "a", "version": "v1", "context": "/a", "endpoint": "e", {extra}
                   "resources": [{{"verb": "GET", "uri_template": "/",
                                  "arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}]}}]}}"#
            );
            crate::parse(json.as_bytes()).map(|c| match c.table.find("GET", "/a") {
                crate::route::RouteMatch::Found { target, .. } => {
                    target.api.lifecycle_headers.clone()
                }
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(api(""), Ok(Vec::new()));
        assert_eq!(
            api(r#""lifecycle": "deprecated","#),
            Ok(vec![("deprecation".to_owned(), "true".to_owned())])
        );
        assert_eq!(
            api(
                r#""lifecycle": "deprecated", "deprecated_on": "2026-12-01", "sunset": "2027-06-30","#
            ),
            Ok(vec![
                ("deprecation".to_owned(), "@1796083200".to_owned()),
                (
                    "sunset".to_owned(),
                    "Wed, 30 Jun 2027 00:00:00 GMT".to_owned()
                ),
            ])
        );
        for (extra, at, says) in [
            (
                r#""lifecycle": "gone","#,
                "apis[0].lifecycle",
                "unknown variant `gone`",
            ),
            (
                r#""lifecycle": "published", "sunset": "2027-06-30","#,
                "apis[0] (a).sunset",
                "only a deprecated API",
            ),
            (
                r#""lifecycle": "deprecated", "sunset": "30/06/2027","#,
                "apis[0] (a).sunset",
                "use YYYY-MM-DD",
            ),
            (
                r#""lifecycle": "deprecated", "deprecated_on": "2027-07-01", "sunset": "2027-06-30","#,
                "apis[0] (a).sunset",
                "before the deprecation date",
            ),
        ] {
            let err = api(extra).unwrap_err();
            assert_eq!(err.at(), at, "{extra}");
            assert!(err.message().contains(says), "{extra}: {err}");
        }
    }

    #[test]
    fn parses_with_defaults() {
        let compiled = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(compiled.invoker_cluster(), "lambdagate_invoker");
        let api = &compiled.config().apis[0];
        assert_eq!(api.payload_format, PayloadFormat::V1);
        assert_eq!(api.resources[0].timeout_seconds, 50);
        assert_eq!(
            api.resources[0].invocation_type,
            InvocationType::RequestResponse
        );
        assert_eq!(api.resources[1].invocation_type, InvocationType::Event);

        let minimal = r#"{"apis":[{"name":"a","version":"1","context":"/","endpoint":"e",
            "payload_format":"wso2",
            "resources":[{"verb":"ANY","uri_template":"/","arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}]}]}"#;
        let compiled = parse(minimal.as_bytes()).unwrap();
        assert_eq!(compiled.invoker_cluster(), DEFAULT_INVOKER_CLUSTER);
        assert_eq!(
            compiled.config().apis[0].payload_format,
            PayloadFormat::Wso2
        );
    }

    #[test]
    fn serializes_back_to_an_equal_config() {
        let compiled = parse(EXAMPLE.as_bytes()).unwrap();
        let json = serde_json::to_vec(compiled.config()).unwrap();
        let again = parse(&json).unwrap();
        assert_eq!(again.config(), compiled.config());
    }

    #[test]
    fn cluster_names_envoy_would_choke_on() {
        assert!(parses_as_protobuf(b"h2"));
        assert!(parses_as_protobuf(b""));
        // 'a' = field 12, fixed64, followed by exactly 8 bytes.
        assert!(parses_as_protobuf(b"a12345678"));
        for fine in [
            "lambdagate_invoker",
            "invoker",
            "lambda",
            "grpc_invoker",
            "lg",
            "cluster_0",
        ] {
            assert!(!parses_as_protobuf(fine.as_bytes()), "{fine}");
        }
        let err = check_cluster("h2").unwrap_err().to_string();
        assert!(
            err.starts_with("invoker_cluster: `h2` cannot be used"),
            "{err}"
        );
        assert!(err.contains("lambdagate_invoker"), "{err}");
    }
}
