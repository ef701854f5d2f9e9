//! One local function: its pool of processes (warm ones reused, new ones
//! started up to `max_concurrency`, then 429), an invocation run on one,
//! and a process started with Lambda's environment.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use lambdagate_proto::{ErrorKind, InvokeReply, MAX_SYNC_PAYLOAD_BYTES};
use lambdagate_sidecar::config::LocalFunctionSpec;
use lambdagate_sidecar::error::Failure;
use lambdagate_sidecar::stream::{Answer, BodyItem, CHANNEL_CHUNKS, ReplyStream, writer_gone};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::process::{Invocation, NEXT_PROCESS, Outcome, Process, Slot, now_ms};
use crate::runtime_api;

#[derive(Default)]
struct Pool {
    idle: Vec<Arc<Process>>,
    running: usize,
}

pub(crate) struct LocalFunction {
    endpoint: String,
    pub(crate) arn: String,
    region: String,
    pub(crate) spec: LocalFunctionSpec,
    pool: Mutex<Pool>,
    init_error_reported: AtomicBool,
}

/// One of a function's `max_concurrency` slots, with the process using it
/// (none while it starts). Dropped, it gives the slot back: the process
/// returns to the idle pool if it finished its invocation and is alive,
/// else it is stopped. Every way out of an invocation passes here,
/// including a caller that goes away (its future is dropped).
struct Lease {
    function: Arc<LocalFunction>,
    process: Option<Arc<Process>>,
    /// Set once the process answered: it can take the next invocation.
    reusable: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let process = self.process.take();
        if let Some(p) = &process
            && self.reusable
            && !p.is_dead()
        {
            self.function.lock().idle.push(p.clone());
            return;
        }
        if let Some(p) = &process {
            // Busy with an invocation nobody waits for, dead, or broken.
            p.stop();
        }
        let mut pool = self.function.lock();
        pool.running = pool.running.saturating_sub(1);
    }
}

impl LocalFunction {
    pub(crate) fn new(endpoint: &str, region: &str, spec: &LocalFunctionSpec) -> Self {
        LocalFunction {
            endpoint: endpoint.to_owned(),
            arn: spec.arn(region),
            region: region.to_owned(),
            spec: spec.clone(),
            pool: Mutex::new(Pool::default()),
            init_error_reported: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        match self.pool.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A warm idle process, or a new one if the concurrency limit allows.
    /// The slot is held by the returned lease and given back when it is
    /// dropped, whatever happens meanwhile (the caller going away included).
    async fn acquire(self: &Arc<Self>) -> Result<Lease, Failure> {
        let mut lease = {
            let mut pool = self.lock();
            while let Some(p) = pool.idle.pop() {
                if !p.is_dead() {
                    return Ok(Lease {
                        function: self.clone(),
                        process: Some(p),
                        reusable: false,
                    });
                }
                // Died while idle: its slot is free again.
                pool.running = pool.running.saturating_sub(1);
            }
            if pool.running >= self.spec.max_concurrency as usize {
                return Err(Failure::new(
                    ErrorKind::Throttled,
                    format!(
                        "local function `{}` is already running {} invocation(s), its max_concurrency; retry later or raise it",
                        self.spec.name, pool.running
                    ),
                ));
            }
            pool.running += 1;
            Lease {
                function: self.clone(),
                process: None,
                reusable: false,
            }
        };
        lease.process = Some(self.spawn().await?);
        Ok(lease)
    }

    pub(crate) async fn run(
        self: &Arc<Self>,
        payload: Bytes,
        route_timeout: Duration,
        request_id: &str,
        trace_id: &str,
        stream: bool,
    ) -> Result<Answer, Failure> {
        let started = tokio::time::Instant::now();
        let timeout = route_timeout.min(Duration::from_secs(u64::from(self.spec.timeout_seconds)));
        let mut lease = self.acquire().await?;
        let Some(process) = lease.process.clone() else {
            return Err(Failure::new(
                ErrorKind::Internal,
                format!("local function `{}`: no process", self.spec.name),
            ));
        };
        let request_id = if request_id.is_empty() {
            format!("local-{}-{}", process.id, now_ms())
        } else {
            request_id.to_owned()
        };
        let (tx, rx) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.clone(),
            trace_id: trace_id.to_owned(),
            payload,
            deadline_ms: now_ms() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            reply: tx,
        };
        if process.assign(invocation).is_err() {
            return Err(Failure::new(
                ErrorKind::LambdaUnavailable,
                format!(
                    "local function `{}`: its process ended; try again",
                    self.spec.name
                ),
            ));
        }
        let reply = |payload: Vec<u8>, function_error: &str| InvokeReply {
            status_code: 200,
            payload,
            function_error: function_error.to_owned(),
            executed_version: "$LATEST".into(),
            lambda_request_id: request_id.clone(),
            error_kind: if function_error.is_empty() {
                ErrorKind::Unspecified as i32
            } else {
                ErrorKind::FunctionError as i32
            },
            error_message: String::new(),
            retry_after_seconds: 0,
        };
        let timed_out = || {
            Failure::new(
                ErrorKind::Timeout,
                format!(
                    "local function `{}` did not answer within {}s; its process was stopped and will be replaced",
                    self.spec.name,
                    timeout.as_secs_f64()
                ),
            )
        };
        let answer = |reply: InvokeReply| {
            if stream && reply.function_error.is_empty() {
                // A function that does not stream, called to stream: its
                // whole response is the stream (as Lambda does).
                let (tx, rx) = mpsc::channel(2);
                let _ = tx.try_send(BodyItem::Chunk(Bytes::from(reply.payload)));
                let _ = tx.try_send(BodyItem::End);
                Answer::Stream(ReplyStream {
                    content_type: String::new(),
                    lambda_request_id: reply.lambda_request_id,
                    body: rx,
                })
            } else {
                Answer::Buffered(reply)
            }
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Outcome::Stream { content_type, body })) if stream => {
                let body = pass_on(body, lease, started + timeout, timed_out());
                Ok(Answer::Stream(ReplyStream {
                    content_type,
                    lambda_request_id: request_id,
                    body,
                }))
            }
            // Invoke on a streaming function: Lambda answers with the
            // whole stream, as a buffered reply.
            Ok(Ok(Outcome::Stream { body, .. })) => match collect(body, started + timeout).await {
                Ok(whole) => {
                    lease.reusable = true;
                    Ok(Answer::Buffered(reply(whole, "")))
                }
                Err(None) => Err(timed_out()),
                Err(Some(failure)) => Err(failure),
            },
            Ok(Ok(Outcome::Response(body))) => {
                lease.reusable = true;
                Ok(answer(reply(body, "")))
            }
            Ok(Ok(Outcome::Error(body))) => {
                lease.reusable = true;
                Ok(answer(reply(body, "Unhandled")))
            }
            Ok(Ok(Outcome::InitError(body))) => {
                if !self.init_error_reported.swap(true, Ordering::SeqCst) {
                    tracing::error!(
                        function = %self.spec.name,
                        error = %String::from_utf8_lossy(&body),
                        "local function failed to initialize; every call fails until it is fixed"
                    );
                }
                Ok(answer(reply(body, "Unhandled")))
            }
            Ok(outcome) => {
                let status = match outcome {
                    Ok(Outcome::Exited(status)) => status,
                    _ => "the process went away".to_owned(),
                };
                tracing::warn!(function = %self.spec.name, request_id = %request_id, status = %status, "local function process exited during an invocation");
                // What Lambda reports when the runtime dies mid-invocation.
                let body = serde_json::json!({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": format!("RequestId: {request_id} Error: Runtime exited: {status}"),
                })
                .to_string();
                Ok(answer(reply(body.into_bytes(), "Unhandled")))
            }
            Err(_) => {
                tracing::warn!(
                    function = %self.spec.name,
                    request_id = %request_id,
                    "local function timed out; stopping its process (the next call starts a new one)"
                );
                Err(timed_out())
            }
        }
    }
}

/// Passes a streamed response on, holding the process's slot until it
/// ends: an end or an error the runtime reported gives the process back
/// for the next call (unless it died); a reader that went away or the
/// `deadline` stop the process (it may still be writing), as a buffered
/// call's timeout does.
fn pass_on(
    mut from: mpsc::Receiver<BodyItem>,
    lease: Lease,
    deadline: tokio::time::Instant,
    timed_out: Failure,
) -> mpsc::Receiver<BodyItem> {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(async move {
        // The whole lease, not just its flag, lives as long as the stream.
        let mut lease = lease;
        let deadline_passed = || BodyItem::Fail(timed_out.clone());
        loop {
            let item = tokio::select! {
                item = from.recv() => item,
                () = tx.closed() => return,
                () = tokio::time::sleep_until(deadline) => {
                    // A full channel (a reader that stopped) cannot take
                    // the failure: then the closed channel says it.
                    let _ = tx.try_send(deadline_passed());
                    return;
                }
            };
            let item = item.unwrap_or_else(|| {
                BodyItem::Fail(writer_gone("the function's Runtime API response"))
            });
            let last = !matches!(item, BodyItem::Chunk(_));
            if last && !matches!(item, BodyItem::Fail(ref f) if f.kind == ErrorKind::Internal) {
                lease.reusable = true;
            }
            let sent = tokio::select! {
                // A send that can complete does, even past the deadline
                // (the failure that reports it is this item).
                biased;
                sent = tx.send(item) => sent.is_ok(),
                () = tokio::time::sleep_until(deadline) => {
                    let _ = tx.try_send(deadline_passed());
                    return;
                }
            };
            if !sent || last {
                return;
            }
        }
    });
    rx
}

/// A whole streamed response, for a caller that did not ask for a stream:
/// `Err(None)` when the `deadline` passed.
async fn collect(
    mut from: mpsc::Receiver<BodyItem>,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, Option<Failure>> {
    let mut whole = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, from.recv()).await {
            Err(_) => return Err(None),
            Ok(Some(BodyItem::End)) => return Ok(whole),
            Ok(None) => {
                return Err(Some(writer_gone("the function's Runtime API response")));
            }
            Ok(Some(BodyItem::Fail(failure))) => return Err(Some(failure)),
            Ok(Some(BodyItem::Chunk(chunk))) => {
                if whole.len() + chunk.len() > MAX_SYNC_PAYLOAD_BYTES {
                    return Err(Some(Failure::new(
                        ErrorKind::PayloadTooLarge,
                        format!(
                            "the function streamed more than Lambda's {MAX_SYNC_PAYLOAD_BYTES} bytes for a buffered call; give the route response_mode: stream"
                        ),
                    )));
                }
                whole.extend_from_slice(&chunk);
            }
        }
    }
}

impl LocalFunction {
    /// Starts the program with its own Runtime API listener.
    async fn spawn(self: &Arc<Self>) -> Result<Arc<Process>, Failure> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| {
                Failure::new(
                    ErrorKind::Internal,
                    format!("cannot open a Runtime API port: {e}"),
                )
            })?;
        let runtime_api = listener
            .local_addr()
            .map(|a| a.to_string())
            .map_err(|e| Failure::new(ErrorKind::Internal, e.to_string()))?;
        let (kill_tx, kill_rx) = oneshot::channel();
        let process = Arc::new(Process {
            id: NEXT_PROCESS.fetch_add(1, Ordering::SeqCst),
            slot: Mutex::new(Slot::default()),
            work: Arc::new(Notify::new()),
            kill: Mutex::new(Some(kill_tx)),
            server: Mutex::new(None),
        });
        let app = runtime_api::router(Arc::downgrade(&process), self.arn.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        if let Ok(mut slot) = process.server.lock() {
            *slot = Some(server);
        }

        let spec = &self.spec;
        // Relative paths are the invoker's, whatever working_dir says.
        let absolute = |p: &std::path::Path| -> std::path::PathBuf {
            if p.is_relative() {
                std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or_else(|_| p.to_owned())
            } else {
                p.to_owned()
            }
        };
        let program = spec.command.first().map(String::as_str).unwrap_or_default();
        let program = if program.contains('/') {
            absolute(std::path::Path::new(program)).into_os_string()
        } else {
            program.into()
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(spec.command.iter().skip(1))
            // Functions see Lambda's environment, not the invoker's (which
            // may hold AWS credentials).
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .env("TZ", ":UTC")
            .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                format!("local/{}", process.id),
            )
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", &self.region)
            .env("AWS_DEFAULT_REGION", &self.region)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(handler) = &spec.handler {
            command.env("_HANDLER", handler);
        }
        if let Some(dir) = &spec.working_dir {
            let dir = absolute(dir);
            command.current_dir(&dir).env("LAMBDA_TASK_ROOT", &dir);
        }
        command.envs(&spec.environment);
        let mut child = command.spawn().map_err(|e| {
            Failure::new(
                ErrorKind::InvalidConfig,
                format!(
                    "cannot start local function `{}` ({}): {e}; check endpoints.{}.functions command and working_dir",
                    spec.name,
                    spec.command.join(" "),
                    self.endpoint
                ),
            )
        })?;
        tracing::info!(function = %spec.name, pid = child.id().unwrap_or(0), runtime_api = %runtime_api, "started local function process");
        for pipe in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let name = spec.name.clone();
            let weak = Arc::downgrade(&process);
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let request_id = weak
                        .upgrade()
                        .map(|p| p.current_request())
                        .unwrap_or_default();
                    tracing::info!(function = %name, request_id = %request_id, "{line}");
                }
            });
        }
        let weak = Arc::downgrade(&process);
        let name = spec.name.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => match status {
                    Ok(s) => s.to_string(),
                    Err(e) => e.to_string(),
                },
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "stopped by the invoker".to_owned()
                }
            };
            tracing::info!(function = %name, status = %status, "local function process ended");
            if let Some(p) = weak.upgrade() {
                p.exited(status);
            }
        });
        Ok(process)
    }
}
