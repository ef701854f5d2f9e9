//! `lambdagate render`: API definitions ([`definition`]) turned into what
//! runs them — the Envoy bootstrap and filter config, the invoker config
//! and the developer portal — and `lambdagate openapi`'s documents.
//!
//! Modules import one way: `definition` ← `openapi` ← `portal` ← this
//! file's [`render`], which orchestrates; `fs` is used by all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lambdagate_sidecar::config::Config as InvokerConfig;

mod definition;
mod fs;
pub mod openapi;
pub mod portal;

pub use definition::{
    ApiDefinition, DefinitionError, Gateway, PortalSettings, default_filter_path,
};
pub use fs::write_atomically;

use definition::{
    DEFAULT_INVOKER_ADMIN, ENVOY_TIMEOUT_MARGIN_SECONDS, error, filter_config, resolve_filter,
    shared_gateway,
};

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
    let (gateway, gateway_file) = shared_gateway(apis, &files)?;
    let gateway_file = gateway_file.as_str();
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
