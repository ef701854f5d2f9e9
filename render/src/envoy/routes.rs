//! The gateway's routes: the invoker route of the router data path, the
//! developer portal's, and the 404 for paths outside every API.

use std::collections::BTreeMap;

use serde::Serialize;

use super::names::{FILTER_NAME, PORTAL_CLUSTER};
use super::proto::{Any, DataSource, Seconds, TypeUrl};

#[derive(Serialize)]
pub(crate) struct RouteConfiguration {
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) typed_per_filter_config: BTreeMap<&'static str, Any<FilterConfig>>,
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
    DirectResponse(DirectResponseAction),
}

#[derive(Serialize)]
pub(crate) struct RouteAction {
    pub(crate) cluster: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) prefix_rewrite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timeout: Option<Seconds>,
}

#[derive(Serialize)]
pub(crate) struct RedirectAction {
    pub(crate) path_redirect: String,
}

#[derive(Serialize)]
pub(crate) struct DirectResponseAction {
    pub(crate) status: u16,
    pub(crate) body: DataSource,
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
pub(crate) fn invoker_route() -> Route {
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
pub(crate) fn portal_routes(path: &str) -> [Route; 2] {
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
pub(crate) fn no_api_route() -> Route {
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
