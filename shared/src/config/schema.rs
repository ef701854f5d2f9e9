//! The filter's configuration as written (JSON in the Envoy wasm plugin
//! config, rendered from API definitions): the serde types and defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const DEFAULT_INVOKER_CLUSTER: &str = "lambdagate_invoker";
/// The name `lambdagate render` gives the callout's HTTP/1.1 cluster.
pub const DEFAULT_CALLOUT_CLUSTER: &str = "lambdagate_invoker_http1";
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
    /// On the callout data path, a request whose body is at least this
    /// many bytes takes the router path instead: its body then never
    /// enters the VM, which for large bodies costs Envoy less than the
    /// callout (bench/RESULTS.md). Needs the route to the invoker that
    /// `lambdagate render` writes. `None`: every request takes the
    /// callout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_body_bytes: Option<u64>,
    /// The Envoy cluster the callout data path sends `Invoke` to as an
    /// HTTP/1.1 request (`dispatch_http_call`, the gRPC message framed in
    /// its body): the invoker's own address, which serves both protocols.
    /// `lambdagate render` sets it, because Envoy spends less per request
    /// on it than on its gRPC client (bench/RESULTS.md, round 12). `None`:
    /// the callout is a gRPC call on `invoker_cluster`. Authorizers' calls
    /// stay gRPC either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callout_cluster: Option<String>,
    /// Request bodies one filter VM (one Envoy worker) buffers at once: a
    /// routed request whose body would take more is answered 503 before
    /// its body is read (see `request::budget`).
    #[serde(default = "default_upload_budget_bytes")]
    pub upload_budget_bytes: u64,
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
    /// The API's Lambda authorizers (see `auth`), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorizers: Vec<AuthorizerConfig>,
    /// The authorizer of every resource that names none; none: open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    /// Every resource that does not say otherwise needs an API key of a
    /// usage plan for this API. The filter sends the key with its call
    /// and the invoker's usage service (`lambdagate-usage`) judges it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_key_required: bool,
    /// Where a keyed request's key comes from (API Gateway's
    /// `apiKeySource`).
    #[serde(default, skip_serializing_if = "ApiKeySource::is_default")]
    pub api_key_source: ApiKeySource,
    pub resources: Vec<ResourceConfig>,
}

impl ApiConfig {
    /// The authorizer guarding `resource`: its own, else the API's;
    /// `None` when it is open (no authorizer, or `none`).
    pub fn authorizer_of<'a>(&'a self, resource: &'a ResourceConfig) -> Option<&'a str> {
        resource
            .authorizer
            .as_deref()
            .or(self.authorizer.as_deref())
            .filter(|name| *name != crate::auth::authorizer::NONE)
    }

    /// Whether `resource` needs an API key: its own setting, else the API's.
    pub fn key_required(&self, resource: &ResourceConfig) -> bool {
        resource.api_key_required.unwrap_or(self.api_key_required)
    }

    /// Whether any resource needs an API key (then the API is keyed).
    pub fn any_key_required(&self) -> bool {
        self.resources.iter().any(|r| self.key_required(r))
    }
}

/// Where a keyed request's API key comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeySource {
    /// The client's `x-api-key` header.
    #[default]
    Header,
    /// The `usageIdentifierKey` of the resource's Lambda authorizer's
    /// answer (cached with it).
    Authorizer,
}

impl ApiKeySource {
    fn is_default(&self) -> bool {
        *self == ApiKeySource::default()
    }
}

/// A Lambda authorizer, as API Gateway's: a function that decides who may
/// call, from a token (TOKEN) or from parts of the request (REQUEST).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizerConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: AuthorizerType,
    /// The authorizer function, invoked with the API's endpoint (TOKEN and
    /// REQUEST; a JWT authorizer has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arn: String,
    /// Where the identity comes from: API Gateway's expressions
    /// (`method.request.header.Authorization` or
    /// `$request.header.Authorization`, `querystring`, `stageVariables`,
    /// `context`). TOKEN: one header, `Authorization` by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identity_source: Vec<String>,
    /// TOKEN only: a regular expression the whole token must match, or the
    /// client gets 401 without an invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_expression: Option<String>,
    /// How long a decision is cached per identity (0: not cached; at most
    /// 3600).
    #[serde(default = "default_authorizer_ttl_seconds")]
    pub ttl_seconds: u32,
    /// The authorizer's own timeout (1 to 30 s).
    #[serde(default = "default_authorizer_timeout_seconds")]
    pub timeout_seconds: u32,
    /// HTTP API (payload v2) REQUEST authorizers only: the function may
    /// answer `{"isAuthorized": true|false, "context": {...}}`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub simple_responses: bool,
    /// HTTP API (payload v2) REQUEST authorizers: the event's format,
    /// `"2.0"` (the default) or `"1.0"` (API Gateway's
    /// `AuthorizerPayloadFormatVersion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_version: Option<String>,
    /// JWT: the token's required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// JWT: accepted `aud` values (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// JWT: where the signing keys are (a JWKS document, `http://` or
    /// `https://`), fetched and cached by Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// API Gateway's two kinds of Lambda authorizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizerType {
    /// The event holds one token (a header) and the method ARN.
    Token,
    /// The event holds the request's headers, query, path and context.
    Request,
    /// A JSON Web Token, verified by Envoy's `jwt_authn` filter against the
    /// issuer's keys (an HTTP API's JWT authorizer); no function is invoked.
    Jwt,
}

pub const DEFAULT_AUTHORIZER_TTL_SECONDS: u32 = 300;
pub const MAX_AUTHORIZER_TTL_SECONDS: u32 = 3600;
pub const DEFAULT_AUTHORIZER_TIMEOUT_SECONDS: u32 = 10;
pub const MAX_AUTHORIZER_TIMEOUT_SECONDS: u32 = 30;

fn default_authorizer_ttl_seconds() -> u32 {
    DEFAULT_AUTHORIZER_TTL_SECONDS
}

fn default_authorizer_timeout_seconds() -> u32 {
    DEFAULT_AUTHORIZER_TIMEOUT_SECONDS
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
    /// This resource's authorizer by name, or `none` for an open resource
    /// in an API that has a default; left out: the API's `authorizer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    /// With a JWT authorizer: the token must hold at least one of these
    /// scopes (its `scope` or `scp` claim), else 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_scopes: Vec<String>,
    /// This resource's own answer to "is an API key required?" (API
    /// Gateway's `apiKeyRequired`); left out: the API's `api_key_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_required: Option<bool>,
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

/// The default of [`Config::upload_budget_bytes`]: 256 MiB, about 42
/// maximum-size bodies at once per worker.
pub const DEFAULT_UPLOAD_BUDGET_BYTES: u64 = 256 * 1024 * 1024;

fn default_upload_budget_bytes() -> u64 {
    DEFAULT_UPLOAD_BUDGET_BYTES
}

fn default_invoker_cluster() -> String {
    DEFAULT_INVOKER_CLUSTER.to_owned()
}

fn default_timeout_seconds() -> u32 {
    DEFAULT_TIMEOUT_SECONDS
}
