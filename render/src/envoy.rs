//! What render gives Envoy: the bootstrap (`envoy.yaml`) and the lambdagate
//! filter's configuration as a file-ECDS resource (`ecds/lambdagate.yaml`).
//!
//! Both are built from structs that mirror Envoy's protos (named as there,
//! holding only the fields render sets) and serialised with serde, so a
//! field's name and type are checked where it is written. The why of each
//! setting is on its field here, not in the rendered YAML.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::definition::{ApiDefinition, ENVOY_TIMEOUT_MARGIN_SECONDS, Gateway};

/// Path of the ECDS file inside the output directory.
pub const ECDS_DIR: &str = "ecds";
pub const ECDS_FILE: &str = "lambdagate.yaml";
/// The lambdagate filter's name in the HTTP filter chain and in ECDS.
pub const FILTER_NAME: &str = "lambdagate";
/// Envoy's cluster for the invoker's admin server (the portal).
pub const PORTAL_CLUSTER: &str = "lambdagate_portal";

/// The access log line of every rendered gateway: request id, Lambda's
/// request id and lambdagate's outcome (ok, function_error, timeout, ...).
pub const ACCESS_LOG_FORMAT: &str = "[%START_TIME%] \"%REQ(LAMBDAGATE-ORIGINAL-METHOD?:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms request_id=%REQ(X-REQUEST-ID)% lambda_request_id=%RESP(X-AMZN-REQUESTID)% trace_id=%RESP(X-AMZN-TRACE-ID)% outcome=%FILTER_STATE(wasm.lambdagate_outcome:PLAIN)%\n";

/// Room to buffer one 6 MB Lambda payload on a listener connection.
const LISTENER_BUFFER_LIMIT_BYTES: u32 = 7 * 1024 * 1024;

/// Envoy's stream idle and request timeouts: the gateway's idle timeout,
/// raised above the largest route timeout (with a margin) so that Envoy
/// never ends a request that waits for the slowest function.
pub fn timeout_seconds(apis: &[ApiDefinition], gateway: &Gateway) -> u32 {
    let longest_route = apis
        .iter()
        .flat_map(|a| &a.api.resources)
        .map(|r| r.timeout_seconds)
        .max()
        .unwrap_or(lambdagate_core::config::DEFAULT_TIMEOUT_SECONDS);
    gateway
        .idle_timeout_seconds
        .max(longest_route.saturating_add(ENVOY_TIMEOUT_MARGIN_SECONDS))
}

/// `envoy.yaml`: a comment saying how to start Envoy, then the bootstrap.
pub fn bootstrap_text(bootstrap: &Bootstrap, out_dir: &Path) -> Result<String, serde_yaml::Error> {
    let header = format!(
        "# Rendered by `lambdagate render`. Start Envoy with
#   envoy -c {bootstrap} --concurrency 1
# API changes arrive through {ecds} (no restart); changes to the ports
# here need a restart.
",
        bootstrap = out_dir.join("envoy.yaml").display(),
        ecds = out_dir.join(ECDS_DIR).join(ECDS_FILE).display(),
    );
    Ok(header + &serde_yaml::to_string(bootstrap)?)
}

/// `ecds/lambdagate.yaml`: the filter's configuration as an ECDS resource.
/// Written as JSON (which is YAML) so that the filter's own JSON config
/// keeps the escaped, double-quoted form that tools and tests grep for;
/// serde_yaml would single-quote it.
pub fn ecds_text(filter: &Path, filter_json: &str) -> Result<String, serde_json::Error> {
    let resources = EcdsResources {
        resources: vec![Any(TypedExtensionConfig {
            name: FILTER_NAME,
            typed_config: Any(Wasm {
                config: PluginConfig {
                    name: FILTER_NAME,
                    root_id: FILTER_NAME,
                    allow_on_headers_stop_iteration: true,
                    failure_policy: FailurePolicy::FailReload,
                    vm_config: VmConfig {
                        runtime: V8_RUNTIME,
                        code: AsyncDataSource {
                            local: DataSource::Filename {
                                filename: filter.display().to_string(),
                            },
                        },
                    },
                    configuration: Any(StringValue {
                        value: filter_json.to_owned(),
                    }),
                },
            }),
        })],
    };
    Ok(String::from(
        "# Rendered by `lambdagate render`: the lambdagate filter's configuration.
# Envoy watches this file and applies a new version without a restart.
",
    ) + &serde_json::to_string_pretty(&resources)?
        + "\n")
}

// ---------------------------------------------------------------------
// Protobuf's well-known shapes.

/// A protobuf message with its type URL, for [`Any`].
pub trait TypeUrl {
    const TYPE_URL: &'static str;
}

/// `google.protobuf.Any` as Envoy reads it in YAML or JSON: `@type`, then
/// the message's own fields.
pub struct Any<T>(pub T);

impl<T: TypeUrl + Serialize> Serialize for Any<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct WithTypeUrl<'a, T> {
            #[serde(rename = "@type")]
            type_url: &'static str,
            #[serde(flatten)]
            message: &'a T,
        }
        WithTypeUrl {
            type_url: T::TYPE_URL,
            message: &self.0,
        }
        .serialize(serializer)
    }
}

/// `google.protobuf.Duration` in whole seconds, written as Envoy reads it
/// in YAML: a plain `15s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seconds(pub u32);

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}s", self.0))
    }
}

/// `google.protobuf.StringValue`: the filter's configuration, which Envoy
/// hands to `on_configure` as is.
#[derive(Serialize)]
pub struct StringValue {
    pub value: String,
}

impl TypeUrl for StringValue {
    const TYPE_URL: &'static str = "type.googleapis.com/google.protobuf.StringValue";
}

// ---------------------------------------------------------------------
// envoy.config.core.v3

/// `envoy.config.core.v3.Address`: an IP socket or a unix socket (`pipe`).
/// Untagged, as serde_yaml would write an enum variant as a YAML tag.
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Address {
    Socket { socket_address: SocketAddress },
    Pipe { pipe: Pipe },
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct SocketAddress {
    pub address: String,
    pub port_value: u16,
}

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Pipe {
    pub path: String,
}

impl Address {
    /// `IP:PORT` or `unix:/path`, from the gateway setting `field`.
    pub fn parse(addr: &str, field: &str) -> Result<Self, String> {
        if let Some(path) = addr.strip_prefix("unix:") {
            return Ok(Address::Pipe {
                pipe: Pipe {
                    path: path.to_owned(),
                },
            });
        }
        let parsed: std::net::SocketAddr = addr.parse().map_err(|_| {
            format!("{field}: `{addr}` is not an IP address and port (or unix:/path)")
        })?;
        Ok(Address::Socket {
            socket_address: SocketAddress {
                address: parsed.ip().to_string(),
                port_value: parsed.port(),
            },
        })
    }
}

/// `envoy.config.core.v3.DataSource`: inline text or a file.
#[derive(Serialize)]
#[serde(untagged)]
pub enum DataSource {
    InlineString { inline_string: String },
    Filename { filename: String },
}

// ---------------------------------------------------------------------
// envoy.config.bootstrap.v3.Bootstrap

/// The bootstrap: one listener for API clients and the portal, the
/// invoker's cluster and, with the portal on, its admin server's.
#[derive(Serialize)]
pub struct Bootstrap {
    node: Node,
    admin: Admin,
    static_resources: StaticResources,
}

#[derive(Serialize)]
struct Node {
    id: &'static str,
    cluster: &'static str,
}

#[derive(Serialize)]
struct Admin {
    address: Address,
}

#[derive(Serialize)]
struct StaticResources {
    listeners: Vec<Listener>,
    clusters: Vec<Cluster>,
}

impl Bootstrap {
    /// The gateway's Envoy, watching the ECDS file in `out_dir`; Envoy's
    /// stream timeouts are `timeout_seconds` ([`timeout_seconds`]). An
    /// error names the gateway setting that is not an address.
    pub fn new(gateway: &Gateway, out_dir: &Path, timeout_seconds: u32) -> Result<Self, String> {
        let listen = Address::parse(&gateway.listen, "gateway.listen")?;
        let admin = Address::parse(&gateway.admin, "gateway.admin")?;
        let invoker = Address::parse(&gateway.invoker, "gateway.invoker")?;
        let portal = match (&gateway.portal, &gateway.invoker_admin) {
            (portal, Some(admin)) if portal.enabled => Some((
                portal.path.as_str(),
                Address::parse(admin, "gateway.invoker_admin")?,
            )),
            _ => None,
        };
        // Rendered whatever the data path, so that switching it is a hot
        // deploy (the filter config) and not a bootstrap change.
        let mut routes = vec![invoker_route()];
        let mut clusters = vec![invoker_cluster(invoker)];
        if let Some((path, admin)) = portal {
            routes.extend(portal_routes(path));
            clusters.push(portal_cluster(admin));
        }
        routes.push(no_api_route());
        let ecds_dir = out_dir.join(ECDS_DIR);
        let manager = HttpConnectionManager {
            stat_prefix: "gateway",
            use_remote_address: true,
            xff_num_trusted_hops: gateway.trusted_hops,
            always_set_request_id_in_response: true,
            append_x_forwarded_port: true,
            stream_idle_timeout: Seconds(timeout_seconds),
            request_timeout: Seconds(timeout_seconds),
            access_log: vec![AccessLog {
                name: "envoy.access_loggers.stdout",
                typed_config: Any(StdoutAccessLog {
                    log_format: SubstitutionFormatString {
                        text_format_source: DataSource::InlineString {
                            inline_string: ACCESS_LOG_FORMAT.to_owned(),
                        },
                    },
                }),
            }],
            route_config: RouteConfiguration {
                virtual_hosts: vec![VirtualHost {
                    name: "gateway",
                    domains: vec!["*"],
                    routes,
                }],
            },
            http_filters: vec![
                HttpFilter {
                    name: FILTER_NAME,
                    config: HttpFilterConfig::ConfigDiscovery(ExtensionConfigSource {
                        config_source: ConfigSource {
                            path_config_source: PathConfigSource {
                                path: ecds_dir.join(ECDS_FILE).display().to_string(),
                                watched_directory: WatchedDirectory {
                                    path: ecds_dir.display().to_string(),
                                },
                            },
                        },
                        type_urls: vec![Wasm::TYPE_URL],
                    }),
                },
                HttpFilter {
                    name: "envoy.filters.http.router",
                    config: HttpFilterConfig::TypedConfig(Any(Router {})),
                },
            ],
        };
        Ok(Bootstrap {
            node: Node {
                id: "lambdagate",
                cluster: "lambdagate",
            },
            admin: Admin { address: admin },
            static_resources: StaticResources {
                listeners: vec![Listener {
                    name: "gateway",
                    address: listen,
                    per_connection_buffer_limit_bytes: LISTENER_BUFFER_LIMIT_BYTES,
                    filter_chains: vec![FilterChain {
                        filters: vec![NetworkFilter {
                            name: "envoy.filters.network.http_connection_manager",
                            typed_config: Any(manager),
                        }],
                    }],
                }],
                clusters,
            },
        })
    }
}

// ---------------------------------------------------------------------
// The listener and its HTTP connection manager.

#[derive(Serialize)]
struct Listener {
    name: &'static str,
    address: Address,
    per_connection_buffer_limit_bytes: u32,
    filter_chains: Vec<FilterChain>,
}

#[derive(Serialize)]
struct FilterChain {
    filters: Vec<NetworkFilter>,
}

/// `envoy.config.listener.v3.Filter`; the only one render writes is the
/// HTTP connection manager.
#[derive(Serialize)]
struct NetworkFilter {
    name: &'static str,
    typed_config: Any<HttpConnectionManager>,
}

#[derive(Serialize)]
struct HttpConnectionManager {
    stat_prefix: &'static str,
    /// Identity comes from the connection: the client address is the peer
    /// (or the one `xff_num_trusted_hops` back in X-Forwarded-For), and a
    /// client's x-request-id is replaced by Envoy's own.
    use_remote_address: bool,
    xff_num_trusted_hops: u32,
    always_set_request_id_in_response: bool,
    /// X-Forwarded-Port beside Envoy's X-Forwarded-For and -Proto, as API
    /// Gateway gives functions all three.
    append_x_forwarded_port: bool,
    /// Above the largest route timeout ([`timeout_seconds`]): Envoy's
    /// defaults would end a request waiting for a slow function.
    stream_idle_timeout: Seconds,
    request_timeout: Seconds,
    access_log: Vec<AccessLog>,
    route_config: RouteConfiguration,
    http_filters: Vec<HttpFilter>,
}

impl TypeUrl for HttpConnectionManager {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
}

#[derive(Serialize)]
struct AccessLog {
    name: &'static str,
    typed_config: Any<StdoutAccessLog>,
}

#[derive(Serialize)]
struct StdoutAccessLog {
    log_format: SubstitutionFormatString,
}

impl TypeUrl for StdoutAccessLog {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
}

#[derive(Serialize)]
struct SubstitutionFormatString {
    text_format_source: DataSource,
}

/// `envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter`.
#[derive(Serialize)]
struct HttpFilter {
    name: &'static str,
    #[serde(flatten)]
    config: HttpFilterConfig,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum HttpFilterConfig {
    /// The lambdagate filter's config comes from the ECDS file, so an API
    /// change is a hot deploy.
    ConfigDiscovery(ExtensionConfigSource),
    TypedConfig(Any<Router>),
}

#[derive(Serialize)]
struct ExtensionConfigSource {
    config_source: ConfigSource,
    type_urls: Vec<&'static str>,
}

#[derive(Serialize)]
struct ConfigSource {
    path_config_source: PathConfigSource,
}

/// Envoy notices a file replaced by a rename in the watched folder.
#[derive(Serialize)]
struct PathConfigSource {
    path: String,
    watched_directory: WatchedDirectory,
}

#[derive(Serialize)]
struct WatchedDirectory {
    path: String,
}

#[derive(Serialize)]
struct Router {}

impl TypeUrl for Router {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
}

// ---------------------------------------------------------------------
// Routes.

#[derive(Serialize)]
struct RouteConfiguration {
    virtual_hosts: Vec<VirtualHost>,
}

#[derive(Serialize)]
struct VirtualHost {
    name: &'static str,
    domains: Vec<&'static str>,
    routes: Vec<Route>,
}

#[derive(Serialize)]
struct Route {
    #[serde(rename = "match")]
    route_match: RouteMatch,
    #[serde(flatten)]
    action: Action,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    typed_per_filter_config: BTreeMap<&'static str, Any<FilterConfig>>,
}

#[derive(Serialize)]
struct RouteMatch {
    #[serde(flatten)]
    path: PathSpecifier,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    headers: Vec<HeaderMatcher>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum PathSpecifier {
    Path(String),
    Prefix(String),
}

#[derive(Serialize)]
struct HeaderMatcher {
    name: &'static str,
    present_match: bool,
}

/// A route's action (the proto's `action` oneof).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Route(RouteAction),
    Redirect(RedirectAction),
    DirectResponse(DirectResponseAction),
}

#[derive(Serialize)]
struct RouteAction {
    cluster: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix_rewrite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<Seconds>,
}

#[derive(Serialize)]
struct RedirectAction {
    path_redirect: String,
}

#[derive(Serialize)]
struct DirectResponseAction {
    status: u16,
    body: DataSource,
}

/// `envoy.config.route.v3.FilterConfig`: a filter switched off on a route.
#[derive(Serialize)]
struct FilterConfig {
    disabled: bool,
}

impl TypeUrl for FilterConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
}

/// The route of the router data path: requests the filter rewrote into
/// the invoker's `InvokeHttp` call (the filter refuses any client request
/// carrying the marker header, so clients cannot take this route). The
/// timeout is the one the filter sets per request (route timeout + 1 s).
fn invoker_route() -> Route {
    use lambdagate_proto::http_path::{FORWARDED_HEADER, PATH};
    Route {
        route_match: RouteMatch {
            path: PathSpecifier::Path(PATH.to_owned()),
            headers: vec![HeaderMatcher {
                name: FORWARDED_HEADER,
                present_match: true,
            }],
        },
        action: Action::Route(RouteAction {
            cluster: lambdagate_core::config::DEFAULT_INVOKER_CLUSTER,
            prefix_rewrite: None,
            timeout: Some(Seconds(0)),
        }),
        typed_per_filter_config: BTreeMap::new(),
    }
}

/// The developer portal at `path`: files served by the invoker's admin
/// server (read per request, so a re-render shows at once), the bare path
/// redirected to the folder. The lambdagate filter is off on these routes,
/// so an API at `/` cannot take the portal's requests.
fn portal_routes(path: &str) -> [Route; 2] {
    let filter_off = || BTreeMap::from([(FILTER_NAME, Any(FilterConfig { disabled: true }))]);
    [
        Route {
            route_match: RouteMatch {
                path: PathSpecifier::Path(path.trim_end_matches('/').to_owned()),
                headers: Vec::new(),
            },
            action: Action::Redirect(RedirectAction {
                path_redirect: path.to_owned(),
            }),
            typed_per_filter_config: filter_off(),
        },
        Route {
            route_match: RouteMatch {
                path: PathSpecifier::Prefix(path.to_owned()),
                headers: Vec::new(),
            },
            action: Action::Route(RouteAction {
                cluster: PORTAL_CLUSTER,
                prefix_rewrite: Some(lambdagate_sidecar::portal_http::PREFIX.to_owned()),
                timeout: None,
            }),
            typed_per_filter_config: filter_off(),
        },
    ]
}

/// Requests outside every API's base path, which the filter passes on,
/// end here.
fn no_api_route() -> Route {
    Route {
        route_match: RouteMatch {
            path: PathSpecifier::Prefix("/".to_owned()),
            headers: Vec::new(),
        },
        action: Action::DirectResponse(DirectResponseAction {
            status: 404,
            body: DataSource::InlineString {
                inline_string: r#"{"message":"no API serves this path"}"#.to_owned(),
            },
        }),
        typed_per_filter_config: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------
// Clusters.

#[derive(Serialize)]
struct Cluster {
    name: &'static str,
    #[serde(rename = "type")]
    discovery_type: DiscoveryType,
    connect_timeout: Seconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    typed_extension_protocol_options: Option<TypedExtensionProtocolOptions>,
    load_assignment: ClusterLoadAssignment,
}

#[derive(Serialize)]
enum DiscoveryType {
    #[serde(rename = "STATIC")]
    Static,
}

#[derive(Serialize)]
struct TypedExtensionProtocolOptions {
    #[serde(rename = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")]
    http_protocol_options: Any<HttpProtocolOptions>,
}

#[derive(Serialize)]
struct HttpProtocolOptions {
    explicit_http_config: ExplicitHttpConfig,
}

impl TypeUrl for HttpProtocolOptions {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
}

#[derive(Serialize)]
struct ExplicitHttpConfig {
    http2_protocol_options: Http2ProtocolOptions,
}

/// Room for a whole 6 MB payload per stream and two at once per
/// connection, so a call never stops to wait for a WINDOW_UPDATE; the
/// invoker's gRPC server uses the same windows.
#[derive(Serialize)]
struct Http2ProtocolOptions {
    initial_stream_window_size: u32,
    initial_connection_window_size: u32,
}

#[derive(Serialize)]
struct ClusterLoadAssignment {
    cluster_name: &'static str,
    endpoints: Vec<LocalityLbEndpoints>,
}

#[derive(Serialize)]
struct LocalityLbEndpoints {
    lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Serialize)]
struct LbEndpoint {
    endpoint: Endpoint,
}

#[derive(Serialize)]
struct Endpoint {
    address: Address,
}

fn one_endpoint(cluster_name: &'static str, address: Address) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name,
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                endpoint: Endpoint { address },
            }],
        }],
    }
}

/// The invoker sidecar (gRPC over HTTP/2).
fn invoker_cluster(address: Address) -> Cluster {
    let name = lambdagate_core::config::DEFAULT_INVOKER_CLUSTER;
    Cluster {
        name,
        discovery_type: DiscoveryType::Static,
        connect_timeout: Seconds(1),
        typed_extension_protocol_options: Some(TypedExtensionProtocolOptions {
            http_protocol_options: Any(HttpProtocolOptions {
                explicit_http_config: ExplicitHttpConfig {
                    http2_protocol_options: Http2ProtocolOptions {
                        initial_stream_window_size: 8 * 1024 * 1024,
                        initial_connection_window_size: 16 * 1024 * 1024,
                    },
                },
            }),
        }),
        load_assignment: one_endpoint(name, address),
    }
}

/// The invoker's admin server (HTTP/1.1), which serves the portal.
fn portal_cluster(address: Address) -> Cluster {
    Cluster {
        name: PORTAL_CLUSTER,
        discovery_type: DiscoveryType::Static,
        connect_timeout: Seconds(1),
        typed_extension_protocol_options: None,
        load_assignment: one_endpoint(PORTAL_CLUSTER, address),
    }
}

// ---------------------------------------------------------------------
// The ECDS resource: the lambdagate filter's configuration.

#[derive(Serialize)]
struct EcdsResources {
    resources: Vec<Any<TypedExtensionConfig>>,
}

/// `envoy.config.core.v3.TypedExtensionConfig`, named as the HTTP filter
/// that discovers it.
#[derive(Serialize)]
struct TypedExtensionConfig {
    name: &'static str,
    typed_config: Any<Wasm>,
}

impl TypeUrl for TypedExtensionConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
}

/// `envoy.extensions.filters.http.wasm.v3.Wasm`: the filter's plugin.
#[derive(Serialize)]
struct Wasm {
    config: PluginConfig,
}

impl TypeUrl for Wasm {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
}

const V8_RUNTIME: &str = "envoy.wasm.runtime.v8";

#[derive(Serialize)]
struct PluginConfig {
    name: &'static str,
    root_id: &'static str,
    /// The filter pauses on request headers while the body is still
    /// arriving; without this Envoy (1.40) never calls it with the body.
    allow_on_headers_stop_iteration: bool,
    /// A trap in the VM would otherwise answer 503 to every later request
    /// on that worker; the filter must not panic, this is the safety net.
    failure_policy: FailurePolicy,
    vm_config: VmConfig,
    /// The filter's JSON config (`lambdagate_core::Config`).
    configuration: Any<StringValue>,
}

#[derive(Serialize)]
enum FailurePolicy {
    /// A fresh VM for the next request.
    #[serde(rename = "FAIL_RELOAD")]
    FailReload,
}

#[derive(Serialize)]
struct VmConfig {
    runtime: &'static str,
    code: AsyncDataSource,
}

#[derive(Serialize)]
struct AsyncDataSource {
    local: DataSource,
}
