//! The API-definition schema (`examples/api.yaml`): one file per API with
//! its endpoint (access method), resources and gateway settings — the
//! seed's Steps 1 to 4 in one place — parsed and validated.
//!
//! Nothing is validated here twice: the filter part goes through
//! `lambdagate_core::Config::compile` (what the filter runs in
//! `on_configure`), the endpoint through the invoker's `Config::parse`
//! (what `serve` and `check` run). Only the location in the error is
//! rewritten to point into the API file.

use std::path::{Path, PathBuf};

use lambdagate_core::config::{ApiConfig, PayloadFormat, ResourceConfig};
use serde::Deserialize;

use lambdagate_sidecar::config::Config as InvokerConfig;

use crate::limits::EdgeLimits;

/// Where the rendered pieces find each other.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Envoy's listener for API clients.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Envoy's admin interface.
    #[serde(default = "default_admin")]
    pub admin: String,
    /// The invoker's gRPC address: `127.0.0.1:PORT` or `unix:/path.sock`.
    #[serde(default = "default_invoker")]
    pub invoker: String,
    /// The invoker's metrics address (optional).
    #[serde(default)]
    pub invoker_admin: Option<String>,
    /// The filter's .wasm file; a relative path is relative to the API
    /// definition's folder. Default: `render --filter`, else the filter
    /// found beside the `lambdagate` binary ([`default_filter_path`]).
    #[serde(default)]
    pub wasm: Option<PathBuf>,
    /// The URL clients use, for the OpenAPI `servers` (default: http://LISTEN).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Proxies in front of Envoy whose `X-Forwarded-For` entries are
    /// trusted: the client address (`sourceIp`) is the one this many hops
    /// back. 0 (default): the connection's peer, whatever the client sends.
    #[serde(default)]
    pub trusted_hops: u32,
    /// Envoy's stream idle timeout in seconds, before render raises it
    /// (and the request timeout) above the largest route timeout. Default
    /// 300, Envoy's own.
    #[serde(default = "default_idle_timeout_seconds")]
    pub idle_timeout_seconds: u32,
    /// The developer portal on the gateway listener.
    #[serde(default)]
    pub portal: PortalSettings,
    /// How the filter hands requests to the invoker: `router` (the
    /// request continues through Envoy's router to the invoker cluster) or
    /// `callout` (a gRPC call from the filter, answered by a local reply).
    #[serde(default)]
    pub data_path: lambdagate_core::DataPath,
    /// What one client may take of the gateway (see [`EdgeLimits`]).
    #[serde(default)]
    pub limits: EdgeLimits,
    /// Usage plans and where API keys and counters live (the invoker's
    /// `usage` section without `apis`, which render fills in from the
    /// APIs' `api_key_required`).
    #[serde(default)]
    pub usage: Option<lambdagate_usage::UsageConfig>,
    /// Who checks API keys and takes from the plans (see [`UsageCheck`]).
    #[serde(default)]
    pub usage_check: UsageCheck,
    /// Every API request of this gateway instance together, as API
    /// Gateway's account-level throttle.
    #[serde(default)]
    pub throttle: Option<crate::throttle::Throttle>,
}

/// `gateway.usage_check`: where a keyed request's key is checked. Both
/// ask the same usage service in the invoker, with the same store.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UsageCheck {
    /// In the filter's own call to the invoker, after the authorizer: one
    /// hop per request, and the key may be the authorizer's
    /// `usageIdentifierKey` (`api_key_source: authorizer`).
    #[default]
    InCall,
    /// By Envoy's rate-limit filter, before lambdagate's filter, as
    /// Envoy's rate-limit service (`envoy.service.ratelimit.v3`): a second
    /// call per request, and only `x-api-key`.
    RateLimitFilter,
}

/// `gateway.portal`: the developer portal (a list of the published and
/// deprecated APIs, their OpenAPI documents and a "try it" console),
/// served by the invoker's admin server through Envoy.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PortalSettings {
    /// On by default; `false` renders no portal and no route to it.
    #[serde(default = "default_portal_enabled")]
    pub enabled: bool,
    /// Where clients reach it on the gateway listener, `/portal/` by
    /// default: starts and ends with `/`.
    #[serde(default = "default_portal_path")]
    pub path: String,
    /// The swagger-ui-dist folder the console is copied from; a relative
    /// path is relative to the API definition's folder. Default: the one
    /// `scripts/setup` fetched ([`default_console_path`]).
    #[serde(default)]
    pub console: Option<PathBuf>,
}

fn default_portal_enabled() -> bool {
    true
}
fn default_portal_path() -> String {
    "/portal/".into()
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            enabled: true,
            path: default_portal_path(),
            console: None,
        }
    }
}

/// The invoker's admin address when the portal is on and
/// `gateway.invoker_admin` is not set (the README's example address).
pub const DEFAULT_INVOKER_ADMIN: &str = "127.0.0.1:9902";

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin() -> String {
    "127.0.0.1:9901".into()
}
fn default_invoker() -> String {
    lambdagate_sidecar::config::DEFAULT_LISTEN.into()
}
fn default_idle_timeout_seconds() -> u32 {
    DEFAULT_IDLE_TIMEOUT_SECONDS
}

/// Envoy's default `stream_idle_timeout`.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u32 = 300;
/// Envoy's timeouts stay this far above the largest route timeout, so that
/// the filter's own deadline (route timeout + 1 s) answers first.
pub const ENVOY_TIMEOUT_MARGIN_SECONDS: u32 = 10;
/// More hops than any real chain of proxies; a typo guard.
pub const MAX_TRUSTED_HOPS: u32 = 10;

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            listen: default_listen(),
            admin: default_admin(),
            invoker: default_invoker(),
            invoker_admin: None,
            wasm: None,
            public_url: None,
            trusted_hops: 0,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            portal: PortalSettings::default(),
            data_path: lambdagate_core::DataPath::default(),
            limits: EdgeLimits::default(),
            usage: None,
            usage_check: UsageCheck::default(),
            throttle: None,
        }
    }
}

/// The filter's file name.
pub const FILTER_FILE: &str = "lambdagate_filter.wasm";

/// The filter found from where the `lambdagate` binary is, so `render`
/// works from any directory: beside the binary (an install), in cargo's
/// target folder (`target/debug/lambdagate` →
/// `target/wasm32-wasip1/wasm/`), or in `../share/lambdagate/`.
pub fn default_filter_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let dir = exe.parent()?;
    let candidates = [
        dir.join(FILTER_FILE),
        dir.join("../wasm32-wasip1/wasm").join(FILTER_FILE),
        dir.join("../share/lambdagate").join(FILTER_FILE),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .and_then(|p| p.canonicalize().ok())
}

/// Where the filter is: `--filter` (relative to the current directory),
/// else `gateway.wasm` (relative to the API file's folder), else
/// [`default_filter_path`]. The file must exist: Envoy would otherwise
/// answer every request with an empty 500.
pub fn resolve_filter(
    cli: Option<&Path>,
    gateway: &Gateway,
    api_file: &str,
) -> Result<PathBuf, DefinitionError> {
    let build =
        "build it with `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`";
    let (path, at) = match (cli, &gateway.wasm) {
        (Some(path), _) => (
            std::env::current_dir()
                .map(|d| d.join(path))
                .unwrap_or_else(|_| path.to_owned()),
            "--filter",
        ),
        (None, Some(path)) => {
            let base = Path::new(api_file)
                .parent()
                .unwrap_or_else(|| Path::new(""));
            (base.join(path), "gateway.wasm")
        }
        (None, None) => match default_filter_path() {
            Some(path) => return Ok(path),
            None => {
                return Err(error(
                    api_file,
                    "gateway.wasm",
                    format!(
                        "no filter ({FILTER_FILE}) beside the lambdagate binary or in its cargo target folder: {build}, or give its path with `--filter PATH` or `gateway.wasm`"
                    ),
                ));
            }
        },
    };
    let path = if path.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&path))
            .unwrap_or(path)
    } else {
        path
    };
    match path.canonicalize() {
        Ok(path) if path.is_file() => Ok(path),
        _ => Err(error(
            api_file,
            at,
            format!(
                "the filter {} does not exist: {build}, or give the right path",
                path.display()
            ),
        )),
    }
}

impl Gateway {
    /// The host name of `public_url` for events' `requestContext.domainName`;
    /// none for an IP address or without a public URL.
    pub fn domain_name(&self) -> Option<String> {
        let url = self.public_url.as_deref()?;
        let authority = url.split_once("://")?.1.split(['/', '?', '#']).next()?;
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host.split(':').next()?.to_ascii_lowercase();
        let numeric = host.rsplit('.').next()?.bytes().all(|b| b.is_ascii_digit());
        (!host.is_empty() && !host.starts_with('[') && !numeric).then_some(host)
    }

    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiFile {
    name: String,
    version: String,
    context: String,
    #[serde(default)]
    payload_format: PayloadFormat,
    /// Clients see whole errors (function errors, AWS's reasons); off by default.
    #[serde(default)]
    expose_errors: bool,
    /// The stage events name (`$default` when left out) and its variables.
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    stage_variables: std::collections::BTreeMap<String, String>,
    /// Payload v1 only: content types passed to functions as base64 (REST's
    /// `binaryMediaTypes`).
    #[serde(default)]
    binary_media_types: Vec<String>,
    /// created, published (default), deprecated or retired.
    #[serde(default)]
    lifecycle: lambdagate_core::Lifecycle,
    /// A deprecated API's dates (YYYY-MM-DD): `Deprecation` and `Sunset` headers.
    #[serde(default)]
    deprecated_on: Option<String>,
    #[serde(default)]
    sunset: Option<String>,
    /// A sentence or two for the developer portal.
    #[serde(default)]
    description: Option<String>,
    /// An invoker endpoint (see examples/invoker.yaml) plus its `name`;
    /// its `allow` list is rendered from the resources.
    endpoint: serde_yaml::Mapping,
    /// Lambda authorizers, and the one every resource uses unless it names
    /// another (or `none`).
    #[serde(default)]
    authorizers: Vec<lambdagate_core::AuthorizerConfig>,
    #[serde(default)]
    authorizer: Option<String>,
    /// Resources need an API key of a usage plan (see `gateway.usage`)
    /// unless they say `api_key_required: false`.
    #[serde(default)]
    api_key_required: bool,
    /// Where the key comes from: `header` (`x-api-key`, the default) or
    /// `authorizer` (its `usageIdentifierKey`).
    #[serde(default)]
    api_key_source: lambdagate_core::ApiKeySource,
    /// Browser origins that may call the API (Envoy's CORS filter).
    #[serde(default)]
    cors: Option<crate::cors::CorsSettings>,
    /// This API's requests together, per gateway instance.
    #[serde(default)]
    throttle: Option<crate::throttle::Throttle>,
    resources: Vec<ResourceConfig>,
    #[serde(default)]
    gateway: Option<Gateway>,
}

/// One parsed and validated API definition.
#[derive(Clone, Debug)]
pub struct ApiDefinition {
    pub file: String,
    pub api: ApiConfig,
    /// For the developer portal.
    pub description: Option<String>,
    pub endpoint_name: String,
    /// The endpoint as written, without `name` and `allow`.
    pub endpoint: serde_yaml::Mapping,
    pub gateway: Option<Gateway>,
    /// The API's CORS policy, checked.
    pub cors: Option<crate::cors::CorsSettings>,
    /// The API's own throttle, checked.
    pub throttle: Option<crate::throttle::Throttle>,
}

/// An error in an API definition: the file, where, what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub at: String,
    pub message: String,
}

pub(crate) fn error(
    file: &str,
    at: impl Into<String>,
    message: impl Into<String>,
) -> DefinitionError {
    DefinitionError {
        file: file.to_owned(),
        at: at.into(),
        message: message.into(),
    }
}

impl ApiDefinition {
    pub fn load(path: &Path) -> Result<Self, DefinitionError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            error(
                &file,
                "(file)",
                format!("cannot read the API definition: {e}"),
            )
        })?;
        Self::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Self, DefinitionError> {
        let raw: ApiFile = serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(
            text,
        ))
        .map_err(|e| {
            let at = e.path().to_string();
            // serde_yaml's message may start with the path again.
            let message = e.into_inner().to_string();
            let message = message
                .strip_prefix(&format!("{at}: "))
                .map_or(message.clone(), str::to_owned);
            error(
                file,
                // `` is an unknown top-level key that is itself empty.
                if at == "." || at.is_empty() {
                    "(top level)".into()
                } else {
                    at
                },
                message,
            )
        })?;
        let mut endpoint = raw.endpoint;
        let endpoint_name = match endpoint.shift_remove("name") {
            Some(serde_yaml::Value::String(name)) => name,
            _ => {
                return Err(error(
                    file,
                    "endpoint.name",
                    "required: the endpoint's name (letters, digits, `-`, `_`), shared by APIs that use the same access method",
                ));
            }
        };
        if endpoint.contains_key("allow") {
            return Err(error(
                file,
                "endpoint.allow",
                "not set in an API definition: the allow-list is rendered from the resources' ARNs",
            ));
        }
        let api = ApiConfig {
            name: raw.name,
            version: raw.version,
            context: raw.context,
            endpoint: endpoint_name.clone(),
            payload_format: raw.payload_format,
            expose_errors: raw.expose_errors,
            stage: raw.stage,
            stage_variables: raw.stage_variables,
            binary_media_types: raw.binary_media_types,
            domain_name: raw.gateway.as_ref().and_then(Gateway::domain_name),
            lifecycle: raw.lifecycle,
            deprecated_on: raw.deprecated_on,
            sunset: raw.sunset,
            authorizers: raw.authorizers,
            authorizer: raw.authorizer,
            api_key_required: raw.api_key_required,
            api_key_source: raw.api_key_source,
            resources: raw.resources,
        };
        let definition = ApiDefinition {
            file: file.to_owned(),
            api,
            description: raw.description,
            endpoint_name,
            endpoint,
            gateway: raw.gateway,
            cors: raw.cors,
            throttle: raw.throttle,
        };
        let throttles = [
            ("throttle", definition.throttle),
            (
                "gateway.throttle",
                definition.gateway.as_ref().and_then(|g| g.throttle),
            ),
        ];
        for (at, throttle) in throttles {
            if let Some(Err((at, message))) = throttle.map(|t| t.validate(at)) {
                return Err(error(file, at, message));
            }
        }
        if let Some(Err((at, message))) = definition.cors.as_ref().map(|c| c.validate()) {
            return Err(error(file, at, message));
        }
        // The same checks the filter and the invoker make, one API at a time
        // so that the error points into this file.
        definition.filter_config(&[]).map(|_| ())?;
        definition.invoker_endpoint()?;
        Ok(definition)
    }

    /// Exact ARNs this API invokes (the invoker's allow-list): its
    /// resources' functions and its authorizers.
    pub fn arns(&self) -> Vec<String> {
        self.api
            .resources
            .iter()
            .map(|r| r.arn.clone())
            .chain(
                self.api
                    .authorizers
                    .iter()
                    .filter(|a| !a.arn.is_empty())
                    .map(|a| a.arn.clone()),
            )
            .collect()
    }

    /// Compiles the filter config of this API together with `others`,
    /// as the filter would; errors about this API point into its file.
    fn filter_config(
        &self,
        others: &[&ApiDefinition],
    ) -> Result<lambdagate_core::Config, DefinitionError> {
        let mut all: Vec<&ApiDefinition> = vec![self];
        all.extend(others.iter().copied());
        filter_config(&all)
    }

    /// The invoker endpoint mapping with its allow-list, validated.
    pub(crate) fn invoker_endpoint(&self) -> Result<serde_yaml::Mapping, DefinitionError> {
        let mut endpoint = self.endpoint.clone();
        let mut arns = self.arns();
        arns.sort();
        arns.dedup();
        endpoint.insert(
            "allow".into(),
            serde_yaml::Value::Sequence(arns.into_iter().map(serde_yaml::Value::String).collect()),
        );
        let mut endpoints = serde_yaml::Mapping::new();
        endpoints.insert(self.endpoint_name.clone().into(), endpoint.clone().into());
        let mut top = serde_yaml::Mapping::new();
        top.insert("endpoints".into(), endpoints.into());
        let text = serde_yaml::to_string(&top)
            .map_err(|e| error(&self.file, "endpoint", e.to_string()))?;
        InvokerConfig::parse(&text, &self.file).map_err(|e| {
            let prefix = format!("endpoints.{}", self.endpoint_name);
            let at = match e.field.strip_prefix(&prefix) {
                Some(rest) => format!("endpoint{rest}"),
                None => e.field.clone(),
            };
            error(&self.file, at, e.message)
        })?;
        Ok(endpoint)
    }
}

/// The one gateway of APIs rendered together, checked, and the file that
/// sets it (`files`, all of them, when none does): the definitions that
/// set one must agree.
pub(crate) fn shared_gateway(
    apis: &[ApiDefinition],
    files: &str,
) -> Result<(Gateway, String), DefinitionError> {
    // One gateway for all: the definitions that set one must agree.
    let mut gateway: Option<(&Gateway, &str)> = None;
    for api in apis {
        if let Some(g) = &api.gateway {
            match gateway {
                Some((first, _)) if first != g => {
                    return Err(error(
                        &api.file,
                        "gateway",
                        "differs from the gateway of an earlier file; APIs rendered together share one gateway (set it in one file only)",
                    ));
                }
                // The first file that sets it: a relative `wasm` is
                // relative to that file's folder.
                Some(_) => {}
                None => gateway = Some((g, &api.file)),
            }
        }
    }
    let gateway_file = gateway.map_or(files, |(_, file)| file);
    let gateway = gateway.map(|(g, _)| g.clone()).unwrap_or_default();
    if gateway.trusted_hops > MAX_TRUSTED_HOPS {
        return Err(error(
            gateway_file,
            "gateway.trusted_hops",
            format!(
                "{} is more proxies than any real chain; allowed: 0 (the connection's peer is the client) to {MAX_TRUSTED_HOPS}",
                gateway.trusted_hops
            ),
        ));
    }
    if gateway.idle_timeout_seconds == 0 {
        return Err(error(
            gateway_file,
            "gateway.idle_timeout_seconds",
            "must be at least 1 (Envoy's default is 300)",
        ));
    }
    gateway.limits.validate().map_err(|(field, message)| {
        error(gateway_file, format!("gateway.limits.{field}"), message)
    })?;
    Ok((gateway, gateway_file.to_owned()))
}

/// The filter configuration for these APIs, compiled by the core to
/// prove the filter will accept it.
pub(crate) fn filter_config(
    apis: &[&ApiDefinition],
) -> Result<lambdagate_core::Config, DefinitionError> {
    let config = lambdagate_core::Config {
        invoker_cluster: lambdagate_core::config::DEFAULT_INVOKER_CLUSTER.to_owned(),
        data_path: lambdagate_core::DataPath::default(),
        router_body_bytes: None,
        callout_cluster: Some(lambdagate_core::config::DEFAULT_CALLOUT_CLUSTER.to_owned()),
        upload_budget_bytes: lambdagate_core::config::DEFAULT_UPLOAD_BUDGET_BYTES,
        apis: apis.iter().map(|a| a.api.clone()).collect(),
    };
    match config.clone().compile() {
        Ok(_) => Ok(config),
        Err(e) => {
            // `apis[i] (name).rest` → the i-th file, `rest`.
            let at = e.at();
            let located = at
                .strip_prefix("apis[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(i, rest)| Some((i.parse::<usize>().ok()?, rest)));
            match located.and_then(|(i, rest)| Some((apis.get(i)?, rest))) {
                Some((api, rest)) => {
                    let rest = rest.trim_start();
                    let rest = match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
                        Some((_, after)) => after,
                        None => rest,
                    };
                    let rest = rest.trim_start_matches('.');
                    Err(error(
                        &api.file,
                        if rest.is_empty() { "(api)" } else { rest },
                        e.message(),
                    ))
                }
                None => Err(error(
                    &apis
                        .iter()
                        .map(|a| a.file.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    at,
                    e.message(),
                )),
            }
        }
    }
}
