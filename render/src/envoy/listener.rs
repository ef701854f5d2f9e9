//! The gateway's listener: its HTTP connection manager, access log and
//! filter chain (the lambdagate filter from ECDS, then the router).

use serde::Serialize;

use super::edge::EdgeConnectionOptions;
use super::jwt::{HeaderMutation, JwtAuthentication};
use super::local_reply::AccessLogFilter;
use super::proto::{Address, Any, DataSource, Seconds, TypeUrl};
use super::routes::RouteConfiguration;

#[derive(Serialize)]
pub(crate) struct Listener {
    pub(crate) name: &'static str,
    pub(crate) address: Address,
    pub(crate) per_connection_buffer_limit_bytes: u32,
    pub(crate) filter_chains: Vec<FilterChain>,
}

#[derive(Serialize)]
pub(crate) struct FilterChain {
    pub(crate) filters: Vec<NetworkFilter>,
}

/// `envoy.config.listener.v3.Filter`; the only one render writes is the
/// HTTP connection manager.
#[derive(Serialize)]
pub(crate) struct NetworkFilter {
    pub(crate) name: &'static str,
    pub(crate) typed_config: Any<HttpConnectionManager>,
}

#[derive(Serialize)]
pub(crate) struct HttpConnectionManager {
    pub(crate) stat_prefix: &'static str,
    /// Identity comes from the connection: the client address is the peer
    /// (or the one `xff_num_trusted_hops` back in X-Forwarded-For), and a
    /// client's x-request-id is replaced by Envoy's own.
    pub(crate) use_remote_address: bool,
    pub(crate) xff_num_trusted_hops: u32,
    pub(crate) always_set_request_id_in_response: bool,
    /// X-Forwarded-Port beside Envoy's X-Forwarded-For and -Proto, as API
    /// Gateway gives functions all three.
    pub(crate) append_x_forwarded_port: bool,
    /// Above the largest route timeout (`timeout_seconds`): Envoy's
    /// defaults would end a request waiting for a slow function.
    pub(crate) stream_idle_timeout: Seconds,
    pub(crate) request_timeout: Seconds,
    /// Timeouts, header rules, HTTP/2 limits, path normalization and
    /// Envoy's own error replies: what the edge limits decide.
    #[serde(flatten)]
    pub(crate) edge: EdgeConnectionOptions,
    pub(crate) access_log: Vec<AccessLog>,
    pub(crate) route_config: RouteConfiguration,
    pub(crate) http_filters: Vec<HttpFilter>,
}

impl TypeUrl for HttpConnectionManager {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
}

#[derive(Serialize)]
pub(crate) struct AccessLog {
    pub(crate) name: &'static str,
    pub(crate) filter: AccessLogFilter,
    pub(crate) typed_config: Any<StdoutAccessLog>,
}

#[derive(Serialize)]
pub(crate) struct StdoutAccessLog {
    pub(crate) log_format: SubstitutionFormatString,
}

impl TypeUrl for StdoutAccessLog {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
}

#[derive(Serialize)]
pub(crate) struct SubstitutionFormatString {
    pub(crate) text_format_source: DataSource,
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter`.
#[derive(Serialize)]
pub(crate) struct HttpFilter {
    pub(crate) name: &'static str,
    #[serde(flatten)]
    pub(crate) config: HttpFilterConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HttpFilterConfig {
    /// The lambdagate filter's config comes from the ECDS file, so an API
    /// change is a hot deploy.
    ConfigDiscovery(ExtensionConfigSource),
    TypedConfig(Any<Router>),
    #[serde(rename = "typed_config")]
    HeaderMutation(Any<HeaderMutation>),
    #[serde(rename = "typed_config")]
    JwtAuthn(Any<JwtAuthentication>),
    #[serde(rename = "typed_config")]
    RateLimit(Any<super::usage::RateLimitFilter>),
    #[serde(rename = "typed_config")]
    Cors(Any<super::cors::CorsFilter>),
    #[serde(rename = "typed_config")]
    Throttle(Any<super::throttle::LocalRateLimit>),
}

#[derive(Serialize)]
pub(crate) struct ExtensionConfigSource {
    pub(crate) config_source: ConfigSource,
    pub(crate) type_urls: Vec<&'static str>,
}

#[derive(Serialize)]
pub(crate) struct ConfigSource {
    pub(crate) path_config_source: PathConfigSource,
}

/// Envoy notices a file replaced by a rename in the watched folder.
#[derive(Serialize)]
pub(crate) struct PathConfigSource {
    pub(crate) path: String,
    pub(crate) watched_directory: WatchedDirectory,
}

#[derive(Serialize)]
pub(crate) struct WatchedDirectory {
    pub(crate) path: String,
}

#[derive(Serialize)]
pub(crate) struct Router {}

impl TypeUrl for Router {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
}
