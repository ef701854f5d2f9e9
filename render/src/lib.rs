//! API definitions (`examples/api.yaml`): one file per API with its
//! endpoint (access method), resources and gateway settings — the seed's
//! Steps 1 to 4 in one place. `lambdagate render` turns them into the
//! Envoy and invoker configs, `lambdagate openapi` into OpenAPI documents.
//!
//! Nothing is validated here twice: the filter part goes through
//! `lambdagate_core::Config::compile` (what the filter runs in
//! `on_configure`), the endpoint through the invoker's `Config::parse`
//! (what `serve` and `check` run). Only the location in the error is
//! rewritten to point into the API file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lambdagate_core::config::{ApiConfig, PayloadFormat, ResourceConfig};
use serde::Deserialize;

use lambdagate_sidecar::config::Config as InvokerConfig;

mod fs;
pub mod openapi;
pub mod portal;

pub use fs::write_atomically;

/// Where the rendered pieces find each other.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
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
}

/// An error in an API definition: the file, where, what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {at}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub at: String,
    pub message: String,
}

fn error(file: &str, at: impl Into<String>, message: impl Into<String>) -> DefinitionError {
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
            error(
                file,
                // `` is an unknown top-level key that is itself empty.
                if at == "." || at.is_empty() {
                    "(top level)".into()
                } else {
                    at
                },
                e.into_inner().to_string(),
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
            resources: raw.resources,
        };
        let definition = ApiDefinition {
            file: file.to_owned(),
            api,
            description: raw.description,
            endpoint_name,
            endpoint,
            gateway: raw.gateway,
        };
        // The same checks the filter and the invoker make, one API at a time
        // so that the error points into this file.
        definition.filter_config(&[]).map(|_| ())?;
        definition.invoker_endpoint()?;
        Ok(definition)
    }

    /// Exact ARNs this API invokes (the invoker's allow-list).
    pub fn arns(&self) -> Vec<String> {
        self.api.resources.iter().map(|r| r.arn.clone()).collect()
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
    fn invoker_endpoint(&self) -> Result<serde_yaml::Mapping, DefinitionError> {
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

/// The filter configuration for these APIs, compiled by the core to
/// prove the filter will accept it.
fn filter_config(apis: &[&ApiDefinition]) -> Result<lambdagate_core::Config, DefinitionError> {
    let config = lambdagate_core::Config {
        invoker_cluster: lambdagate_core::config::DEFAULT_INVOKER_CLUSTER.to_owned(),
        data_path: lambdagate_core::DataPath::default(),
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

/// Everything `render` writes, as text.
#[derive(Debug)]
pub struct Rendered {
    pub envoy_bootstrap: String,
    pub ecds: String,
    pub invoker: String,
    /// The filter's .wasm, absolute and existing.
    pub filter: PathBuf,
    /// The developer portal's files (none when `gateway.portal.enabled`
    /// is false), to write into `DIR/portal/` before the invoker config.
    pub portal: Option<Vec<crate::portal::PortalFile>>,
}

/// Path of the ECDS file inside the output directory.
pub const ECDS_DIR: &str = "ecds";
pub const ECDS_FILE: &str = "lambdagate.yaml";
pub const FILTER_NAME: &str = "lambdagate";
/// Envoy's cluster for the invoker's admin server (the portal).
pub const PORTAL_CLUSTER: &str = "lambdagate_portal";

/// Renders the APIs into the Envoy bootstrap, the ECDS filter config and
/// the invoker config. `out_dir` must be absolute (Envoy watches it).
pub fn render(
    apis: &[ApiDefinition],
    out_dir: &Path,
    filter: Option<&Path>,
) -> Result<Rendered, DefinitionError> {
    let files = apis
        .iter()
        .map(|a| a.file.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if apis.is_empty() {
        return Err(error(
            "(none)",
            "(arguments)",
            "give at least one API definition file",
        ));
    }
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
    let gateway_file = gateway.map_or(files.as_str(), |(_, file)| file);
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
    let filter_path = resolve_filter(filter, &gateway, gateway_file)?;
    let mut gateway = gateway;
    let portal = if gateway.portal.enabled {
        crate::portal::validate_path(&gateway.portal.path, apis, gateway_file)?;
        let console = crate::portal::resolve_console(&gateway.portal, gateway_file)?;
        // The portal is served by the invoker's admin server.
        let admin = gateway
            .invoker_admin
            .get_or_insert_with(|| DEFAULT_INVOKER_ADMIN.to_owned());
        if admin.starts_with("unix:") {
            return Err(error(
                gateway_file,
                "gateway.invoker_admin",
                "must be an IP address and port such as 127.0.0.1:9902: Envoy reaches the portal there",
            ));
        }
        Some(crate::portal::render_files(apis, &gateway, &console)?)
    } else {
        None
    };
    // Envoy must not end a request that waits for the slowest function.
    let longest_route = apis
        .iter()
        .flat_map(|a| &a.api.resources)
        .map(|r| r.timeout_seconds)
        .max()
        .unwrap_or(lambdagate_core::config::DEFAULT_TIMEOUT_SECONDS);
    let envoy_timeout_seconds = gateway
        .idle_timeout_seconds
        .max(longest_route.saturating_add(ENVOY_TIMEOUT_MARGIN_SECONDS));
    // Endpoints used by several APIs must be the same access method.
    let mut endpoints: BTreeMap<String, (serde_yaml::Mapping, Vec<String>, String)> =
        BTreeMap::new();
    for api in apis {
        let endpoint = api.invoker_endpoint()?;
        let mut without_allow = endpoint.clone();
        without_allow.shift_remove("allow");
        match endpoints.get_mut(&api.endpoint_name) {
            Some((existing, arns, first_file)) => {
                let mut existing_without = existing.clone();
                existing_without.shift_remove("allow");
                if existing_without != without_allow {
                    return Err(error(
                        &api.file,
                        "endpoint",
                        format!(
                            "endpoint `{}` is also defined in {first_file} with different settings; give it another name or make them identical",
                            api.endpoint_name
                        ),
                    ));
                }
                arns.extend(api.arns());
            }
            None => {
                endpoints.insert(
                    api.endpoint_name.clone(),
                    (endpoint, api.arns(), api.file.clone()),
                );
            }
        }
    }
    let refs: Vec<&ApiDefinition> = apis.iter().collect();
    let mut filter = filter_config(&refs)?;
    filter.data_path = gateway.data_path;
    let filter_json = serde_json::to_string(&filter)
        .map_err(|e| error(&files, "(filter config)", e.to_string()))?;

    // The invoker config, validated as `serve` would.
    let mut invoker =
        String::from("# Rendered by `lambdagate render`; edit the API definitions instead.\n");
    invoker.push_str(&format!("listen: {}\n", yaml_string(&gateway.invoker)));
    if let Some(admin) = &gateway.invoker_admin {
        invoker.push_str(&format!("admin_listen: {}\n", yaml_string(admin)));
    }
    if portal.is_some() {
        let dir = out_dir.join(crate::portal::DIR);
        invoker.push_str(&format!(
            "portal_dir: {}\n",
            yaml_string(&dir.display().to_string())
        ));
    }
    let mut mapping = serde_yaml::Mapping::new();
    for (name, (mut endpoint, mut arns, _)) in endpoints {
        arns.sort();
        arns.dedup();
        endpoint.insert(
            "allow".into(),
            serde_yaml::Value::Sequence(arns.into_iter().map(serde_yaml::Value::String).collect()),
        );
        mapping.insert(name.into(), endpoint.into());
    }
    let mut top = serde_yaml::Mapping::new();
    top.insert("endpoints".into(), mapping.into());
    invoker.push_str(
        &serde_yaml::to_string(&top)
            .map_err(|e| error(&files, "(invoker config)", e.to_string()))?,
    );
    InvokerConfig::parse(&invoker, "invoker.yaml (rendered)")
        .map_err(|e| error(&files, e.field.clone(), e.message))?;

    let ecds = ecds_yaml(&filter_path, &filter_json);
    let envoy_bootstrap = envoy_yaml(&gateway, out_dir, envoy_timeout_seconds)
        .map_err(|m| error(&files, "gateway", m))?;
    Ok(Rendered {
        envoy_bootstrap,
        ecds,
        invoker,
        filter: filter_path,
        portal,
    })
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("'{s}'"))
}

fn socket_address(addr: &str, field: &str) -> Result<String, String> {
    if let Some(path) = addr.strip_prefix("unix:") {
        return Ok(format!("{{pipe: {{path: {}}}}}", yaml_string(path)));
    }
    let parsed: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| format!("{field}: `{addr}` is not an IP address and port (or unix:/path)"))?;
    Ok(format!(
        "{{socket_address: {{address: {}, port_value: {}}}}}",
        yaml_string(&parsed.ip().to_string()),
        parsed.port()
    ))
}

/// The filter's configuration as an ECDS resource (file-based discovery).
fn ecds_yaml(filter: &Path, filter_json: &str) -> String {
    format!(
        r#"# Rendered by `lambdagate render`: the lambdagate filter's configuration.
# Envoy watches this file and applies a new version without a restart.
resources:
- "@type": type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig
  name: {FILTER_NAME}
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
    config:
      name: {FILTER_NAME}
      root_id: {FILTER_NAME}
      allow_on_headers_stop_iteration: true
      failure_policy: FAIL_RELOAD
      vm_config:
        runtime: envoy.wasm.runtime.v8
        code: {{local: {{filename: {wasm}}}}}
      configuration:
        "@type": type.googleapis.com/google.protobuf.StringValue
        value: {json}
"#,
        wasm = yaml_string(&filter.display().to_string()),
        json = yaml_string(filter_json),
    )
}

/// The access log line of every rendered gateway: request id, Lambda's
/// request id and lambdagate's outcome (ok, function_error, timeout, ...).
pub const ACCESS_LOG_FORMAT: &str = "[%START_TIME%] \"%REQ(LAMBDAGATE-ORIGINAL-METHOD?:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT% %DURATION%ms request_id=%REQ(X-REQUEST-ID)% lambda_request_id=%RESP(X-AMZN-REQUESTID)% trace_id=%RESP(X-AMZN-TRACE-ID)% outcome=%FILTER_STATE(wasm.lambdagate_outcome:PLAIN)%\n";

fn envoy_yaml(gateway: &Gateway, out_dir: &Path, timeout_seconds: u32) -> Result<String, String> {
    let listen = socket_address(&gateway.listen, "gateway.listen")?;
    let admin = socket_address(&gateway.admin, "gateway.admin")?;
    let invoker = socket_address(&gateway.invoker, "gateway.invoker")?;
    let ecds_dir = out_dir.join(ECDS_DIR);
    let ecds_file = ecds_dir.join(ECDS_FILE);
    let (portal_routes, portal_cluster) = match (&gateway.portal, &gateway.invoker_admin) {
        (portal, Some(admin)) if portal.enabled => {
            let admin = socket_address(admin, "gateway.invoker_admin")?;
            let path = &portal.path;
            let bare = path.trim_end_matches('/');
            // The lambdagate filter is off on these routes, so an API at
            // `/` cannot take the portal's requests.
            let filter_off = format!(
                "typed_per_filter_config: {{{FILTER_NAME}: {{\"@type\": type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}}}}"
            );
            (
                format!(
                    r#"              # The developer portal: files served by the invoker's admin
              # server (read per request, so a re-render shows at once).
              - match: {{path: {bare}}}
                redirect: {{path_redirect: {path}}}
                {filter_off}
              - match: {{prefix: {path}}}
                route: {{cluster: {PORTAL_CLUSTER}, prefix_rewrite: {admin_prefix}}}
                {filter_off}
"#,
                    bare = yaml_string(bare),
                    path = yaml_string(path),
                    admin_prefix = yaml_string(lambdagate_sidecar::portal_http::PREFIX),
                ),
                format!(
                    r#"  # The invoker's admin server (HTTP/1.1), which serves the portal.
  - name: {PORTAL_CLUSTER}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {PORTAL_CLUSTER}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {admin}
"#
                ),
            )
        }
        _ => (String::new(), String::new()),
    };
    // Rendered whatever the data path, so that switching it is a hot
    // deploy (the filter config) and not a bootstrap change.
    let invoker_route = invoker_route_yaml();
    Ok(format!(
        r#"# Rendered by `lambdagate render`. Start Envoy with
#   envoy -c {bootstrap} --concurrency 1
# API changes arrive through {ecds} (no restart); changes to the ports
# here need a restart.
node: {{id: lambdagate, cluster: lambdagate}}
admin:
  address: {admin}
static_resources:
  listeners:
  - name: gateway
    address: {listen}
    # Room to buffer one 6 MB Lambda payload.
    per_connection_buffer_limit_bytes: 7340032
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gateway
          # Identity comes from the connection: the client address is the
          # peer (or the one `xff_num_trusted_hops` back in X-Forwarded-For),
          # and a client's x-request-id is replaced by Envoy's own.
          use_remote_address: true
          xff_num_trusted_hops: {trusted_hops}
          always_set_request_id_in_response: true
          # X-Forwarded-Port beside Envoy's X-Forwarded-For and -Proto, as API
          # Gateway gives functions all three.
          append_x_forwarded_port: true
          # Above the largest route timeout ({timeout_seconds}s with margin):
          # Envoy's defaults would end a request waiting for a slow function.
          stream_idle_timeout: {timeout_seconds}s
          request_timeout: {timeout_seconds}s
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string: {log}
          route_config:
            virtual_hosts:
            - name: gateway
              domains: ["*"]
              routes:
{invoker_route}{portal_routes}              # Requests outside every API's base path end here.
              - match: {{prefix: "/"}}
                direct_response:
                  status: 404
                  body: {{inline_string: "{{\"message\":\"no API serves this path\"}}"}}
          http_filters:
          - name: {FILTER_NAME}
            config_discovery:
              config_source:
                path_config_source:
                  path: {ecds_file}
                  watched_directory: {{path: {ecds_dir}}}
              type_urls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  # The invoker sidecar (gRPC over HTTP/2).
  - name: {cluster}
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options:
            initial_stream_window_size: 8388608
            initial_connection_window_size: 16777216
    load_assignment:
      cluster_name: {cluster}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: {invoker}
{portal_cluster}"#,
        bootstrap = out_dir.join("envoy.yaml").display(),
        ecds = ecds_file.display(),
        log = yaml_string(ACCESS_LOG_FORMAT),
        ecds_file = yaml_string(&ecds_file.display().to_string()),
        ecds_dir = yaml_string(&ecds_dir.display().to_string()),
        cluster = lambdagate_core::config::DEFAULT_INVOKER_CLUSTER,
        trusted_hops = gateway.trusted_hops,
    ))
}

/// The route of the router data path: requests the filter rewrote into
/// the invoker's `InvokeHttp` call (the filter refuses any client request
/// carrying the marker header, so clients cannot take this route). The
/// timeout is the one the filter sets per request (route timeout + 1 s).
pub fn invoker_route_yaml() -> String {
    use lambdagate_proto::http_path::{FORWARDED_HEADER, PATH};
    let cluster = lambdagate_core::config::DEFAULT_INVOKER_CLUSTER;
    format!(
        r#"              # Requests the lambdagate filter turned into invoker calls.
              - match:
                  path: "{PATH}"
                  headers: [{{name: {FORWARDED_HEADER}, present_match: true}}]
                route:
                  cluster: {cluster}
                  timeout: 0s
"#
    )
}
