//! What render gives Envoy: the bootstrap (`envoy.yaml`) and the lambdagate
//! filter's configuration as a file-ECDS resource (`ecds/lambdagate.yaml`).
//!
//! Both are built from structs that mirror Envoy's protos (named as there,
//! holding only the fields render sets) and serialised with serde, so a
//! field's name and type are checked where it is written. The why of each
//! setting is on its field here, not in the rendered YAML.

use std::path::Path;

use serde::Serialize;

use crate::definition::{ApiDefinition, ENVOY_TIMEOUT_MARGIN_SECONDS, Gateway};

mod cluster;
mod cors;
mod ecds;
mod edge;
mod jwt;
mod listener;
mod local_reply;
mod names;
mod overload;
mod proto;
mod routes;
mod throttle;
mod usage;

pub use cluster::invoker_clusters;
pub use ecds::ecds_text;
pub use edge::{EdgeParts, edge_parts};
pub use names::{ACCESS_LOG_FORMAT, ECDS_DIR, ECDS_FILE, FILTER_NAME};

use cluster::{Cluster, callout_cluster, invoker_cluster, portal_cluster};
use ecds::Wasm;
use edge::{EdgeConnectionOptions, api_body_buffer_limit, invoker_body_buffer_limit};
use lambdagate_core::Outcome;
use listener::{
    AccessLog, ConfigSource, ExtensionConfigSource, FilterChain, HttpConnectionManager, HttpFilter,
    HttpFilterConfig, Listener, NetworkFilter, PathConfigSource, Router, StdoutAccessLog,
    SubstitutionFormatString, WatchedDirectory,
};
use local_reply::AccessLogFilter;
use names::OUTCOME_FROM_THE_FILTER;
use overload::{OverloadManager, overload_manager};
use proto::{Address, Any, DataSource, Seconds, TypeUrl};
use routes::{RouteConfiguration, VirtualHost, invoker_route, no_api_route, portal_routes};

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

/// A stdout access log of the requests `filter` selects.
fn stdout_log(filter: AccessLogFilter, format: String) -> AccessLog {
    AccessLog {
        name: "envoy.access_loggers.stdout",
        filter,
        typed_config: Any(StdoutAccessLog {
            log_format: SubstitutionFormatString {
                text_format_source: DataSource::InlineString {
                    inline_string: format,
                },
            },
        }),
    }
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

/// The bootstrap: one listener for API clients and the portal, the
/// invoker's cluster and, with the portal on, its admin server's.
#[derive(Serialize)]
pub struct Bootstrap {
    overload_manager: OverloadManager,
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
    pub fn new(
        gateway: &Gateway,
        apis: &[crate::definition::ApiDefinition],
        out_dir: &Path,
        timeout_seconds: u32,
        usage: Option<&lambdagate_usage::UsageConfig>,
    ) -> Result<Self, String> {
        let listen = Address::parse(&gateway.listen, "gateway.listen")?;
        let admin = Address::parse(&gateway.admin, "gateway.admin")?;
        let invoker = Address::parse(&gateway.invoker, "gateway.invoker")?;
        let limits = &gateway.limits;
        let portal = match (&gateway.portal, &gateway.invoker_admin) {
            (portal, Some(admin)) if portal.enabled => Some((
                portal.path.as_str(),
                Address::parse(admin, "gateway.invoker_admin")?,
            )),
            _ => None,
        };
        // Rendered whatever the data path, so that switching it is a hot
        // deploy (the filter config) and not a bootstrap change.
        let mut routes = vec![invoker_route(invoker_body_buffer_limit(limits))];
        let mut clusters = vec![invoker_cluster(invoker.clone()), callout_cluster(invoker)];
        if let Some((path, admin)) = portal {
            routes.extend(portal_routes(path));
            clusters.push(portal_cluster(admin));
        }
        // APIs with keys or a CORS policy: routes of their own carry the
        // usage descriptors and the policy (longest context first, as the
        // filter routes).
        let keyed = |api: &ApiDefinition| usage.is_some() && api.api.any_key_required();
        let mut own_routes: Vec<&ApiDefinition> = apis
            .iter()
            .filter(|api| keyed(api) || api.cors.is_some() || api.throttle.is_some())
            .collect();
        own_routes.sort_by_key(|api| std::cmp::Reverse(api.api.context.len()));
        for api in &own_routes {
            let verbs: Vec<String> = api.api.resources.iter().map(|r| r.verb.clone()).collect();
            routes.push(routes::api_route(
                &api.api.context,
                api_body_buffer_limit(limits),
                keyed(api),
                api.cors.as_ref().map(|c| cors::cors_policy(c, &verbs)),
                api.throttle.map(|t| throttle::bucket(t, "api_throttle")),
            ));
        }
        if !own_routes.is_empty() {
            clusters.push(cluster::held_cluster());
        }
        routes.push(no_api_route(api_body_buffer_limit(limits)));
        // CORS first: a preflight carries no key or token.
        let mut http_filters = Vec::new();
        if apis.iter().any(|api| api.cors.is_some()) {
            http_filters.push(HttpFilter {
                name: cors::CORS_FILTER,
                config: HttpFilterConfig::Cors(Any(cors::CorsFilter {})),
            });
        }
        // Throttles per instance: the gateway's bucket, then the APIs'
        // (each on its API's route), before any token is verified.
        if let Some(bucket) = gateway.throttle {
            http_filters.push(HttpFilter {
                name: throttle::GATEWAY_THROTTLE,
                config: HttpFilterConfig::Throttle(Any(throttle::bucket(
                    bucket,
                    "gateway_throttle",
                ))),
            });
        }
        if apis.iter().any(|api| api.throttle.is_some()) {
            http_filters.push(HttpFilter {
                name: throttle::API_THROTTLE,
                config: HttpFilterConfig::Throttle(Any(throttle::off())),
            });
        }
        let refusals = usage.is_some()
            || gateway.throttle.is_some()
            || apis.iter().any(|api| api.throttle.is_some());
        // JWT authorizers: two of Envoy's filters before lambdagate's.
        if let Some(jwt) = jwt::jwt_pieces(apis)? {
            http_filters.push(HttpFilter {
                name: "envoy.filters.http.header_mutation",
                config: HttpFilterConfig::HeaderMutation(Any(jwt.header_mutation)),
            });
            http_filters.push(HttpFilter {
                name: "envoy.filters.http.jwt_authn",
                config: HttpFilterConfig::JwtAuthn(Any(jwt.jwt_authn)),
            });
            clusters.extend(jwt.clusters);
        }
        // API keys and usage plans: after the JWT check (a request without
        // a valid token is not counted), before lambdagate's filter.
        if let Some(usage) = usage {
            http_filters.push(HttpFilter {
                name: "envoy.filters.http.ratelimit",
                config: HttpFilterConfig::RateLimit(Any(usage::rate_limit_filter(
                    std::time::Duration::from_millis(usage.store_timeout_ms),
                ))),
            });
        }
        // One line per request; the requests Envoy's overload manager
        // refused (no filter saw them) with the outcome `overloaded`, and
        // those the usage service refused with its outcome.
        let mut access_log = vec![
            stdout_log(
                if refusals {
                    AccessLogFilter::neither_overloaded_nor_refused()
                } else {
                    AccessLogFilter::not_overloaded()
                },
                ACCESS_LOG_FORMAT.to_owned(),
            ),
            stdout_log(
                AccessLogFilter::overloaded(),
                ACCESS_LOG_FORMAT.replace(OUTCOME_FROM_THE_FILTER, Outcome::Overloaded.label()),
            ),
        ];
        if refusals {
            access_log.extend(usage::refused_logs().into_iter().map(|(filter, outcome)| {
                stdout_log(
                    filter,
                    ACCESS_LOG_FORMAT.replace(OUTCOME_FROM_THE_FILTER, &outcome),
                )
            }));
        }
        let ecds_dir = out_dir.join(ECDS_DIR);
        let manager = HttpConnectionManager {
            stat_prefix: "gateway",
            use_remote_address: true,
            xff_num_trusted_hops: gateway.trusted_hops,
            always_set_request_id_in_response: true,
            append_x_forwarded_port: true,
            stream_idle_timeout: Seconds(timeout_seconds),
            request_timeout: Seconds(timeout_seconds),
            edge: if refusals {
                EdgeConnectionOptions::new(limits).with_usage_replies()
            } else {
                EdgeConnectionOptions::new(limits)
            },
            access_log,
            route_config: RouteConfiguration {
                validate_clusters: false,
                virtual_hosts: vec![VirtualHost {
                    name: "gateway",
                    domains: vec!["*"],
                    routes,
                }],
            },
            http_filters: http_filters
                .into_iter()
                .chain([
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
                ])
                .collect(),
        };
        Ok(Bootstrap {
            overload_manager: overload_manager(limits),
            node: Node {
                id: "lambdagate",
                cluster: "lambdagate",
            },
            admin: Admin { address: admin },
            static_resources: StaticResources {
                listeners: vec![Listener {
                    name: "gateway",
                    address: listen,
                    per_connection_buffer_limit_bytes: limits.connection_buffer_bytes,
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
