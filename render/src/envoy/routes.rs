//! The gateway's routes: the invoker route of the router data path, the
//! developer portal's, and the catch-all that every API request matches
//! while the filter holds it (paths outside every API get a 404 there).
//!
//! The two routes that carry request bodies set their own body buffer
//! limit, room for one maximum-size payload: the filter buffers a body
//! whole, and Envoy's per-connection buffer limit (which bounds what one
//! read takes from a socket) can then stay small (`gateway.limits`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::{FILTER_NAME, PORTAL_CLUSTER};
use super::proto::{Any, Seconds, TypeUrl};

#[derive(Serialize)]
pub(crate) struct RouteConfiguration {
    /// `false`: the catch-all names a cluster that does not exist (see
    /// [`no_api_route`]).
    pub(crate) validate_clusters: bool,
    pub(crate) virtual_hosts: Vec<VirtualHost>,
}

#[derive(Serialize)]
pub(crate) struct VirtualHost {
    pub(crate) name: &'static str,
    pub(crate) domains: Vec<&'static str>,
    pub(crate) routes: Vec<Route>,
}

#[derive(Serialize)]
pub(crate) struct Route {
    #[serde(rename = "match")]
    pub(crate) route_match: RouteMatch,
    #[serde(flatten)]
    pub(crate) action: Action,
    /// Raises (or lowers) the listener's buffer limit for this route's
    /// requests. Envoy reads it from a route entry only: a route with a
    /// direct response or a redirect cannot carry it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) request_body_buffer_limit: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) typed_per_filter_config: BTreeMap<&'static str, PerFilterConfig>,
}

/// A filter's settings on one route.
#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum PerFilterConfig {
    Disabled(Any<FilterConfig>),
    Cors(Any<super::cors::CorsPolicy>),
    Throttle(Any<super::throttle::LocalRateLimit>),
}

#[derive(Serialize)]
pub(crate) struct RouteMatch {
    #[serde(flatten)]
    pub(crate) path: PathSpecifier,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) headers: Vec<HeaderMatcher>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PathSpecifier {
    Path(String),
    Prefix(String),
    /// `/users` matches `/users` and `/users/...`, not `/usersx`.
    PathSeparatedPrefix(String),
}

#[derive(Serialize)]
pub(crate) struct HeaderMatcher {
    pub(crate) name: &'static str,
    pub(crate) present_match: bool,
}

/// A route's action (the proto's `action` oneof).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Route(RouteAction),
    Redirect(RedirectAction),
}

#[derive(Serialize)]
pub(crate) struct RouteAction {
    pub(crate) cluster: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix_rewrite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<Seconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cluster_not_found_response_code: Option<&'static str>,
    /// What Envoy's rate-limit filter sends the usage service (see
    /// `usage::rate_limits`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) rate_limits: Vec<super::usage::RateLimit>,
}

#[derive(Serialize)]
pub(crate) struct RedirectAction {
    pub(crate) path_redirect: String,
}

/// `envoy.config.route.v3.FilterConfig`: a filter switched off on a route.
#[derive(Serialize)]
pub(crate) struct FilterConfig {
    pub(crate) disabled: bool,
}

impl TypeUrl for FilterConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";
}

/// The route of the router data path: requests the filter rewrote into
/// the invoker's `InvokeHttp` call (the filter refuses any client request
/// carrying the marker header, so clients cannot take this route). The
/// timeout is the one the filter sets per request (route timeout + 1 s).
/// `body_limit`: see [`body_buffer_limit`].
pub(crate) fn invoker_route(body_limit: u64) -> Route {
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
            cluster_not_found_response_code: None,
            rate_limits: Vec::new(),
        }),
        request_body_buffer_limit: Some(body_limit),
        typed_per_filter_config: BTreeMap::new(),
    }
}

/// The developer portal at `path`: files served by the invoker's admin
/// server (read per request, so a re-render shows at once), the bare path
/// redirected to the folder. The lambdagate filter is off on these routes,
/// so an API at `/` cannot take the portal's requests.
pub(crate) fn portal_routes(path: &str) -> [Route; 2] {
    let filter_off = || {
        BTreeMap::from([(
            FILTER_NAME,
            PerFilterConfig::Disabled(Any(FilterConfig { disabled: true })),
        )])
    };
    [
        Route {
            route_match: RouteMatch {
                path: PathSpecifier::Path(path.trim_end_matches('/').to_owned()),
                headers: Vec::new(),
            },
            action: Action::Redirect(RedirectAction {
                path_redirect: path.to_owned(),
            }),
            request_body_buffer_limit: None,
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
                cluster_not_found_response_code: None,
                rate_limits: Vec::new(),
            }),
            request_body_buffer_limit: None,
            typed_per_filter_config: filter_off(),
        },
    ]
}

/// The cluster the catch-all names; it does not exist (see below).
pub(crate) const NO_API_CLUSTER: &str = "lambdagate_no_api";

/// Every request the filter handles matches this route while the filter
/// holds it (buffering its body under `body_limit`), and requests outside
/// every API's base path, which the filter passes on, end here: 404 with
/// the gateway's JSON (the local-reply mapper writes it; Envoy says
/// `cluster_not_found`). A route entry, not a direct response, because
/// only a route entry can carry a body buffer limit; the cluster it names
/// does not exist, so nothing is ever sent anywhere from here.
pub(crate) fn no_api_route(body_limit: u64) -> Route {
    Route {
        route_match: RouteMatch {
            path: PathSpecifier::Prefix("/".to_owned()),
            headers: Vec::new(),
        },
        action: Action::Route(RouteAction {
            cluster: NO_API_CLUSTER,
            prefix_rewrite: None,
            timeout: None,
            cluster_not_found_response_code: Some("NOT_FOUND"),
            rate_limits: Vec::new(),
        }),
        request_body_buffer_limit: Some(body_limit),
        typed_per_filter_config: BTreeMap::new(),
    }
}

/// The route of an API with resources that need a key, a CORS policy or a
/// throttle: the catch-all's, plus what Envoy's rate-limit filter sends the
/// usage service (`keyed`), the API's CORS policy and its bucket, on a cluster that
/// exists (Envoy's rate-limit filter asks nothing on a route whose cluster
/// does not; see `cluster::held_cluster`).
pub(crate) fn api_route(
    context: &str,
    body_limit: u64,
    keyed: bool,
    cors: Option<super::cors::CorsPolicy>,
    throttle: Option<super::throttle::LocalRateLimit>,
) -> Route {
    Route {
        route_match: RouteMatch {
            path: if context == "/" {
                PathSpecifier::Prefix("/".to_owned())
            } else {
                PathSpecifier::PathSeparatedPrefix(context.to_owned())
            },
            headers: Vec::new(),
        },
        action: Action::Route(RouteAction {
            cluster: super::names::HELD_CLUSTER,
            prefix_rewrite: None,
            timeout: None,
            cluster_not_found_response_code: None,
            rate_limits: if keyed {
                super::usage::rate_limits()
            } else {
                Vec::new()
            },
        }),
        request_body_buffer_limit: Some(body_limit),
        typed_per_filter_config: cors
            .map(|policy| (super::cors::CORS_FILTER, PerFilterConfig::Cors(Any(policy))))
            .into_iter()
            .chain(throttle.map(|bucket| {
                (
                    super::throttle::API_THROTTLE,
                    PerFilterConfig::Throttle(Any(bucket)),
                )
            }))
            .collect(),
    }
}
