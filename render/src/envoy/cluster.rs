//! The clusters: the invoker sidecar (gRPC over HTTP/2) and, with the
//! portal on, the invoker's admin server.

use serde::Serialize;

use super::names::{HELD_CLUSTER, PORTAL_CLUSTER};

/// Idle seconds before Envoy closes a callout connection (see
/// [`callout_cluster`]).
pub const CALLOUT_IDLE_SECONDS: u32 = 20;
use super::proto::{Address, Any, Http2ProtocolOptions, Seconds, TypeUrl};

#[derive(Serialize)]
pub(crate) struct Cluster {
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) discovery_type: DiscoveryType,
    pub(crate) connect_timeout: Seconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) typed_extension_protocol_options: Option<TypedExtensionProtocolOptions>,
    pub(crate) load_assignment: ClusterLoadAssignment,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transport_socket: Option<TransportSocket>,
}

/// TLS to an upstream (a JWKS over https), with SNI.
#[derive(Serialize)]
pub(crate) struct TransportSocket {
    pub(crate) name: &'static str,
    pub(crate) typed_config: Any<UpstreamTlsContext>,
}

#[derive(Serialize)]
pub(crate) struct UpstreamTlsContext {
    pub(crate) sni: String,
}

impl TypeUrl for UpstreamTlsContext {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
}

#[derive(Serialize)]
pub(crate) enum DiscoveryType {
    #[serde(rename = "STATIC")]
    Static,
    /// A host name resolved by DNS (a JWKS host).
    #[serde(rename = "STRICT_DNS")]
    StrictDns,
}

#[derive(Serialize)]
pub(crate) struct TypedExtensionProtocolOptions {
    #[serde(rename = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions")]
    pub(crate) http_protocol_options: Any<HttpProtocolOptions>,
}

#[derive(Serialize)]
pub(crate) struct HttpProtocolOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) common_http_protocol_options: Option<UpstreamIdle>,
    pub(crate) explicit_http_config: ExplicitHttpConfig,
}

/// `common_http_protocol_options` of an upstream: how long an idle
/// connection stays in Envoy's pool.
#[derive(Serialize)]
pub(crate) struct UpstreamIdle {
    idle_timeout: Seconds,
}

/// `http_protocol_options`: HTTP/1.1, with Envoy's defaults.
#[derive(Serialize)]
pub(crate) struct Http1ProtocolOptions {}

impl TypeUrl for HttpProtocolOptions {
    const TYPE_URL: &'static str =
        "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
}

#[derive(Serialize)]
pub(crate) struct ExplicitHttpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    http2_protocol_options: Option<Http2ProtocolOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_protocol_options: Option<Http1ProtocolOptions>,
}

#[derive(Serialize)]
pub(crate) struct ClusterLoadAssignment {
    pub(crate) cluster_name: String,
    pub(crate) endpoints: Vec<LocalityLbEndpoints>,
}

#[derive(Serialize)]
pub(crate) struct LocalityLbEndpoints {
    pub(crate) lb_endpoints: Vec<LbEndpoint>,
}

#[derive(Serialize)]
pub(crate) struct LbEndpoint {
    pub(crate) endpoint: Endpoint,
}

#[derive(Serialize)]
pub(crate) struct Endpoint {
    pub(crate) address: Address,
}

pub(crate) fn one_endpoint(cluster_name: &str, address: Address) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: cluster_name.to_owned(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                endpoint: Endpoint { address },
            }],
        }],
    }
}

/// A static cluster of one invoker address with these protocol options.
fn invoker_address_cluster(
    name: &str,
    address: Address,
    common_http_protocol_options: Option<UpstreamIdle>,
    explicit_http_config: ExplicitHttpConfig,
) -> Cluster {
    Cluster {
        name: name.to_owned(),
        transport_socket: None,
        discovery_type: DiscoveryType::Static,
        connect_timeout: Seconds(1),
        typed_extension_protocol_options: Some(TypedExtensionProtocolOptions {
            http_protocol_options: Any(HttpProtocolOptions {
                common_http_protocol_options,
                explicit_http_config,
            }),
        }),
        load_assignment: one_endpoint(name, address),
    }
}

/// The invoker sidecar (gRPC over HTTP/2).
pub(crate) fn invoker_cluster(address: Address) -> Cluster {
    invoker_address_cluster(
        lambdagate_core::config::DEFAULT_INVOKER_CLUSTER,
        address,
        None,
        ExplicitHttpConfig {
            // Room for a whole 6 MB payload per stream and two at once per
            // connection, so a call never stops to wait for a
            // WINDOW_UPDATE; the invoker's gRPC server uses the same
            // windows.
            http2_protocol_options: Some(Http2ProtocolOptions {
                max_concurrent_streams: None,
                initial_stream_window_size: 8 * 1024 * 1024,
                initial_connection_window_size: 16 * 1024 * 1024,
            }),
            http_protocol_options: None,
        },
    )
}

/// The same invoker address as HTTP/1.1, for the filter's callouts
/// (`callout_cluster`): the invoker serves both protocols on it. Envoy's
/// pool opens a connection per callout in flight, at most the cluster's
/// default circuit breakers (1,024), as many as the HTTP/2 cluster's
/// default request limit allows today. Envoy closes an idle connection
/// after [`CALLOUT_IDLE_SECONDS`], before the invoker would (hyper's 30 s
/// wait for a request's head): a connection the server closes may be the
/// one Envoy just sent a callout on, and that callout would fail.
pub(crate) fn callout_cluster(address: Address) -> Cluster {
    invoker_address_cluster(
        lambdagate_core::config::DEFAULT_CALLOUT_CLUSTER,
        address,
        Some(UpstreamIdle {
            idle_timeout: Seconds(CALLOUT_IDLE_SECONDS),
        }),
        ExplicitHttpConfig {
            http2_protocol_options: None,
            http_protocol_options: Some(Http1ProtocolOptions {}),
        },
    )
}

/// The invoker's two clusters as render writes them (HTTP/2 for gRPC and
/// the router path, HTTP/1.1 for callouts), for an invoker at `address`
/// (`IP:PORT` or `unix:/path`): for harnesses that write their own
/// bootstrap around them, so that they run what users run.
pub fn invoker_clusters(address: &str) -> Result<serde_json::Value, String> {
    let address = Address::parse(address, "invoker")?;
    serde_json::to_value([invoker_cluster(address.clone()), callout_cluster(address)])
        .map_err(|e| e.to_string())
}

/// The invoker's admin server (HTTP/1.1), which serves the portal.
pub(crate) fn portal_cluster(address: Address) -> Cluster {
    Cluster {
        name: PORTAL_CLUSTER.to_owned(),
        transport_socket: None,
        discovery_type: DiscoveryType::Static,
        connect_timeout: Seconds(1),
        typed_extension_protocol_options: None,
        load_assignment: one_endpoint(PORTAL_CLUSTER, address),
    }
}

/// A cluster with no endpoints: the keyed APIs' routes name it, because
/// Envoy's rate-limit filter asks nothing on a route whose cluster does
/// not exist. Nothing is ever sent to it (the filter answers every request
/// of an API); were something to reach it, Envoy would answer 503.
pub(crate) fn held_cluster() -> Cluster {
    Cluster {
        name: HELD_CLUSTER.to_owned(),
        transport_socket: None,
        discovery_type: DiscoveryType::Static,
        connect_timeout: Seconds(1),
        typed_extension_protocol_options: None,
        load_assignment: ClusterLoadAssignment {
            cluster_name: HELD_CLUSTER.to_owned(),
            endpoints: Vec::new(),
        },
    }
}
