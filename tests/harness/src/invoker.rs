//! The real `lambdagate serve` process, its logs, and a gRPC client for it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lambdagate_proto::v1::invoker_client::InvokerClient;
use lambdagate_proto::{InvocationType, InvokeRequest, MAX_GRPC_MESSAGE_BYTES};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::free_port;

pub struct InvokerProcess {
    child: Child,
    pub addr: String,
    pub admin: String,
    logs: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

impl InvokerProcess {
    /// Writes `config_yaml` (which must not set `listen`/`admin_listen`) and
    /// starts `lambdagate serve` with only the environment in `env` (plus
    /// PATH), on free loopback ports, logging at `log` level.
    pub async fn start(bin: &str, config_yaml: &str, env: &[(&str, &str)], log: &str) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        Self::launch(bin, config_yaml, env, log, |_| addr).await
    }

    /// Like [`InvokerProcess::start`] on a given address (to restart an
    /// invoker where Envoy expects it).
    pub async fn start_at(
        bin: &str,
        config_yaml: &str,
        env: &[(&str, &str)],
        log: &str,
        addr: &str,
    ) -> Self {
        Self::launch(bin, config_yaml, env, log, |_| addr.to_owned()).await
    }

    /// Like [`InvokerProcess::start`], listening on a unix socket in the
    /// temp dir; `addr` is then `unix:<path>`.
    pub async fn start_unix(bin: &str, config_yaml: &str, env: &[(&str, &str)], log: &str) -> Self {
        Self::launch(bin, config_yaml, env, log, |dir| {
            format!("unix:{}", socket_path(dir).display())
        })
        .await
    }

    async fn launch(
        bin: &str,
        config_yaml: &str,
        env: &[(&str, &str)],
        log: &str,
        addr_in: impl FnOnce(&Path) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("invoker.yaml");
        std::fs::write(&config_path, config_yaml).expect("write config");
        let addr = addr_in(dir.path());
        let admin = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--config"]).arg(&config_path).args([
            "--listen",
            &addr,
            "--admin-listen",
            &admin,
        ]);
        let process = Self::spawn(cmd, dir, config_path, addr, admin, env, log);
        process.wait_ready().await;
        process
    }

    /// Runs `lambdagate serve --config <path>` on a config file as written
    /// (for rendered configs): `addr` and `admin` are what that file says.
    pub async fn start_file(
        bin: &str,
        config_path: &Path,
        env: &[(&str, &str)],
        log: &str,
        addr: &str,
        admin: &str,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cmd = Command::new(bin);
        cmd.args(["serve", "--config"]).arg(config_path);
        let process = Self::spawn(
            cmd,
            dir,
            config_path.to_owned(),
            addr.to_owned(),
            admin.to_owned(),
            env,
            log,
        );
        process.wait_ready().await;
        process
    }

    fn spawn(
        mut cmd: Command,
        dir: tempfile::TempDir,
        config_path: PathBuf,
        addr: String,
        admin: String,
        env: &[(&str, &str)],
        log: &str,
    ) -> Self {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            // Keep the SDK away from the developer's own AWS files.
            .env("HOME", dir.path())
            .env("AWS_CONFIG_FILE", dir.path().join("no-aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("no-aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LAMBDAGATE_LOG", log)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start lambdagate serve");
        let logs = crate::process::capture_output(&mut child);
        InvokerProcess {
            child,
            addr,
            admin,
            logs,
            _dir: dir,
            config_path,
        }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = match self.addr.strip_prefix("unix:") {
                Some(path) => tokio::net::UnixStream::connect(path).await.is_ok(),
                None => tokio::net::TcpStream::connect(&self.addr).await.is_ok(),
            };
            if up {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "lambdagate serve did not listen on {}; logs:\n{}",
                self.addr,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the output contains `needle` (output is read a little
    /// after it is written, even after the process exits).
    pub async fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.logs().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the process wrote to stdout and stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub async fn client(&self) -> InvokerClient<Channel> {
        match self.addr.strip_prefix("unix:") {
            Some(path) => connect_unix(PathBuf::from(path)).await,
            None => connect(&format!("http://{}", self.addr)).await,
        }
    }

    /// A raw channel (for the gRPC health client).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("uri")
            .connect()
            .await
            .expect("connect to the invoker")
    }

    /// The admin server's /metrics text.
    pub async fn metrics(&self) -> String {
        let (status, body) = crate::http::request(&self.admin, "GET", "/metrics", &[], b"")
            .await
            .expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM (the orchestrator's polite stop).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
    }

    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .expect("invoker did not exit in time")
            .expect("wait")
    }
}

pub async fn connect(uri: &str) -> InvokerClient<Channel> {
    let channel = Channel::from_shared(uri.to_owned())
        .expect("uri")
        .connect()
        .await
        .expect("connect to the invoker");
    InvokerClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}

pub async fn connect_unix(path: PathBuf) -> InvokerClient<Channel> {
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect to the invoker's unix socket");
    InvokerClient::new(channel)
        .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES)
}

/// An InvokeRequest as the filter sends it, but from a plain gRPC client:
/// a failure comes back as a non-OK status with its kind in the trailer
/// (the filter asks for failures in the reply instead; see
/// `failure_in_reply`).
pub fn invoke_request(
    endpoint: &str,
    arn: &str,
    payload: &[u8],
    timeout_ms: u32,
    invocation_type: InvocationType,
) -> InvokeRequest {
    InvokeRequest {
        function_arn: arn.to_owned(),
        endpoint: endpoint.to_owned(),
        payload: payload.to_vec().into(),
        timeout_ms,
        invocation_type: invocation_type as i32,
        request_id: format!("test-{}", free_port()),
        trace_id: String::new(),
        http_reply: None,
        failure_in_reply: false,
        usage: None,
        event: None,
    }
}

/// The path of a file in a temp dir, for unix sockets.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("invoker.sock")
}
