//! Access method `local`: the invoker runs function programs itself and
//! serves them the Lambda Runtime API, so an API can be tried (and tested)
//! with real function code and no AWS account. Any program built on an
//! official runtime client works: Rust `lambda_runtime`/`lambda_http`,
//! Python `awslambdaric`, a custom `bootstrap`.
//!
//! Lambda's semantics that a gateway depends on are kept: a warm process
//! is reused; concurrent calls start more processes up to the function's
//! `max_concurrency`, beyond which calls are throttled; a handler error is
//! an `Unhandled` function error carrying the runtime's error JSON; an init
//! error is reported clearly (logged once); a process that outlives the
//! timeout is killed and replaced; a crashed process is replaced.
//!
//! Each process gets its own Runtime API listener on a loopback port, so
//! the invoker always knows which process asks for work.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use lambdagate_proto::{ErrorKind, InvocationType, InvokeReply, MAX_SYNC_PAYLOAD_BYTES};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc, oneshot};

use lambdagate_sidecar::backend::{Backend, Call, InvokeFuture, LocalRuntime};
use lambdagate_sidecar::config::LocalFunctionSpec;
use lambdagate_sidecar::error::Failure;
use lambdagate_sidecar::stream::{Answer, BodyItem, CHANNEL_CHUNKS, ReplyStream, writer_gone};

/// The `local` endpoints' backends: what the `lambdagate` binary plugs
/// into the sidecar.
pub struct LocalFunctions;

impl LocalRuntime for LocalFunctions {
    fn backend(
        &self,
        endpoint: &str,
        region: &str,
        functions: &[LocalFunctionSpec],
    ) -> Arc<dyn Backend> {
        Arc::new(LocalBackend::new(endpoint, region, functions))
    }
}

/// The functions of one `local` endpoint, by ARN (unqualified) and name.
pub struct LocalBackend {
    endpoint: String,
    functions: HashMap<String, Arc<LocalFunction>>,
}

impl Backend for LocalBackend {
    fn invoke(&self, call: Call) -> InvokeFuture<'_> {
        Box::pin(self.run_call(call))
    }
}

impl LocalBackend {
    pub fn new(endpoint: &str, region: &str, specs: &[LocalFunctionSpec]) -> Self {
        let mut functions = HashMap::new();
        for spec in specs {
            let function = Arc::new(LocalFunction {
                endpoint: endpoint.to_owned(),
                arn: spec.arn(region),
                region: region.to_owned(),
                spec: spec.clone(),
                pool: Mutex::new(Pool::default()),
                init_error_reported: AtomicBool::new(false),
            });
            functions.insert(function.arn.clone(), function.clone());
            functions.insert(spec.name.clone(), function);
        }
        LocalBackend {
            endpoint: endpoint.to_owned(),
            functions,
        }
    }

    /// Invokes the function the call's (unqualified) ARN or name names.
    /// `call.stream`: the caller takes the response as a stream.
    async fn run_call(&self, call: Call) -> Result<Answer, Failure> {
        let Call {
            arn,
            payload,
            timeout,
            invocation_type,
            request_id,
            trace_id,
            stream,
        } = call;
        let unqualified_arn = arn.unqualified();
        let unqualified_arn = unqualified_arn.as_str();
        let function_name = arn.function_name();
        let Some(function) = self
            .functions
            .get(unqualified_arn)
            .or_else(|| self.functions.get(function_name))
            .cloned()
        else {
            return Err(Failure::new(
                ErrorKind::FunctionNotFound,
                format!(
                    "local endpoint `{}` has no function `{unqualified_arn}`; add it under endpoints.{}.functions",
                    self.endpoint, self.endpoint
                ),
            ));
        };
        match invocation_type {
            InvocationType::DryRun => Ok(Answer::Buffered(InvokeReply {
                status_code: 204,
                ..Default::default()
            })),
            InvocationType::Event => {
                // Like Lambda: accepted now, run in the background.
                tokio::spawn(async move {
                    if let Err(f) = function
                        .run(payload, timeout, &request_id, &trace_id, false)
                        .await
                    {
                        tracing::warn!(function = %function.spec.name, request_id = %request_id, error = %f, "asynchronous invocation failed");
                    }
                });
                Ok(Answer::Buffered(InvokeReply {
                    status_code: 202,
                    executed_version: "$LATEST".into(),
                    ..Default::default()
                }))
            }
            InvocationType::RequestResponse => {
                function
                    .run(payload, timeout, &request_id, &trace_id, stream)
                    .await
            }
        }
    }
}

#[derive(Default)]
struct Pool {
    idle: Vec<Arc<Process>>,
    running: usize,
}

struct LocalFunction {
    endpoint: String,
    arn: String,
    region: String,
    spec: LocalFunctionSpec,
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

/// What a process made of one invocation.
enum Outcome {
    Response(Vec<u8>),
    /// The runtime streams its response (`Lambda-Runtime-Function-Response-Mode:
    /// streaming`): its content type and the body as it arrives.
    Stream {
        content_type: String,
        body: mpsc::Receiver<BodyItem>,
    },
    /// The handler failed: the runtime's error JSON.
    Error(Vec<u8>),
    /// The runtime could not start the handler.
    InitError(Vec<u8>),
    /// The process ended before answering.
    Exited(String),
}

struct Invocation {
    request_id: String,
    /// The gateway's X-Ray trace header; empty: the runtime makes one.
    trace_id: String,
    payload: Vec<u8>,
    deadline_ms: u64,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Slot {
    /// Assigned, not yet fetched with /next.
    queued: Option<Invocation>,
    /// Fetched; waiting for /response or /error.
    in_flight: Option<(String, oneshot::Sender<Outcome>)>,
    init_error: Option<Vec<u8>>,
    dead: bool,
    /// The request last handed out by /next: output the program writes is
    /// read a little after it was written, possibly after the response, so
    /// it is attributed to this one rather than to `in_flight`.
    last_request: String,
}

/// One running function process and its Runtime API listener.
struct Process {
    id: u64,
    slot: Mutex<Slot>,
    /// Wakes the process's pending /next. Shared so that a waiting /next
    /// does not keep the process alive.
    work: Arc<Notify>,
    /// Dropping it (with the process) kills the program.
    kill: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

static NEXT_PROCESS: AtomicU64 = AtomicU64::new(1);

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(mut server) = self.server.lock()
            && let Some(task) = server.take()
        {
            task.abort();
        }
    }
}

impl Process {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slot> {
        match self.slot.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn is_dead(&self) -> bool {
        self.lock().dead
    }

    fn assign(&self, invocation: Invocation) -> Result<(), Invocation> {
        let mut slot = self.lock();
        if slot.dead {
            return Err(invocation);
        }
        slot.queued = Some(invocation);
        drop(slot);
        self.work.notify_one();
        Ok(())
    }

    fn stop(&self) {
        if let Ok(mut kill) = self.kill.lock()
            && let Some(tx) = kill.take()
        {
            let _ = tx.send(());
        }
    }

    fn current_request(&self) -> String {
        self.lock().last_request.clone()
    }

    /// The program ended: fail whatever it held.
    fn exited(&self, status: String) {
        let mut slot = self.lock();
        slot.dead = true;
        let outcome = |slot: &Slot| match &slot.init_error {
            Some(e) => Outcome::InitError(e.clone()),
            None => Outcome::Exited(status.clone()),
        };
        if let Some(inv) = slot.queued.take() {
            let _ = inv.reply.send(outcome(&slot));
        }
        if let Some((_, reply)) = slot.in_flight.take() {
            let _ = reply.send(outcome(&slot));
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl LocalFunction {
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

    async fn run(
        self: &Arc<Self>,
        payload: Vec<u8>,
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
        let app = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .layer(axum::extract::DefaultBodyLimit::max(
                lambdagate_proto::MAX_GRPC_MESSAGE_BYTES,
            ))
            .with_state(RuntimeState {
                process: Arc::downgrade(&process),
                function_arn: self.arn.clone(),
            });
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

#[derive(Clone)]
struct RuntimeState {
    process: std::sync::Weak<Process>,
    function_arn: String,
}

fn gone() -> Response {
    (StatusCode::GONE, "the invoker stopped this function").into_response()
}

/// `GET /runtime/invocation/next`: blocks until the invoker assigns work.
async fn next(State(state): State<RuntimeState>) -> Response {
    loop {
        let Some(process) = state.process.upgrade() else {
            return gone();
        };
        let work = process.work.clone();
        let notified = work.notified();
        let invocation = {
            let mut slot = process.lock();
            match slot.queued.take() {
                Some(inv) => {
                    slot.last_request = inv.request_id.clone();
                    slot.in_flight = Some((inv.request_id.clone(), inv.reply));
                    Some((inv.request_id, inv.trace_id, inv.payload, inv.deadline_ms))
                }
                None => None,
            }
        };
        if let Some((request_id, trace_id, payload, deadline_ms)) = invocation {
            let mut response = Response::new(axum::body::Body::from(payload));
            let headers = response.headers_mut();
            let mut set = |name: &'static str, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    headers.insert(name, v);
                }
            };
            // awslambdaric crashes without a Content-Type (see NOTES).
            set("content-type", "application/json");
            set("lambda-runtime-aws-request-id", &request_id);
            set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
            set("lambda-runtime-invoked-function-arn", &state.function_arn);
            // The gateway's trace, as Lambda passes the caller's
            // X-Amzn-Trace-Id (the runtime client sets _X_AMZN_TRACE_ID).
            let trace_id = if trace_id.is_empty() {
                format!(
                    "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                    now_ms() / 1000,
                    process.id,
                    process.id
                )
            } else {
                trace_id
            };
            set("lambda-runtime-trace-id", &trace_id);
            return response;
        }
        drop(process);
        // Re-check now and then that the process is still wanted.
        let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        "{\"status\":\"OK\"}",
    )
        .into_response()
}

/// Takes the invocation `id` in flight: where its outcome goes.
fn take_in_flight(
    state: &RuntimeState,
    id: &str,
) -> Result<oneshot::Sender<Outcome>, Box<Response>> {
    let Some(process) = state.process.upgrade() else {
        return Err(Box::new(gone()));
    };
    let mut slot = process.lock();
    match slot.in_flight.take() {
        Some((current, reply)) if current == id => Ok(reply),
        other => {
            slot.in_flight = other;
            Err(Box::new((
                StatusCode::BAD_REQUEST,
                [("content-type", "application/json")],
                format!("{{\"errorType\":\"InvalidRequestID\",\"errorMessage\":\"unknown request id {id}\"}}"),
            )
                .into_response()))
        }
    }
}

fn finish(state: &RuntimeState, id: &str, outcome: Outcome) -> Response {
    match take_in_flight(state, id) {
        Ok(reply) => {
            let _ = reply.send(outcome);
            accepted()
        }
        Err(refused) => *refused,
    }
}

/// The Runtime API's response header that selects streaming.
const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";

async fn response(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let streaming = headers
        .get(RESPONSE_MODE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streaming {
        return streamed_response(&state, &id, &headers, body).await;
    }
    // A buffered response has Lambda's 6 MB limit (and a little room).
    let limit = lambdagate_proto::MAX_GRPC_MESSAGE_BYTES;
    match axum::body::to_bytes(body, limit).await {
        Ok(whole) => finish(&state, &id, Outcome::Response(whole.to_vec())),
        Err(e) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("content-type", "application/json")],
            serde_json::json!({
                "errorType": "RequestEntityTooLarge",
                "errorMessage": format!("the response could not be read whole (limit {limit} bytes): {e}"),
            })
            .to_string(),
        )
            .into_response(),
    }
}

/// A streamed response (chunked, errors in the
/// `Lambda-Runtime-Function-Error-Type`/`-Body` trailers) is passed on as
/// it arrives: each chunk waits for room in the caller's channel, so a
/// slow reader slows the function's writes (TCP back-pressure) instead of
/// filling memory.
async fn streamed_response(
    state: &RuntimeState,
    id: &str,
    headers: &HeaderMap,
    mut body: Body,
) -> Response {
    let reply = match take_in_flight(state, id) {
        Ok(reply) => reply,
        Err(refused) => return *refused,
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    if reply
        .send(Outcome::Stream {
            content_type,
            body: rx,
        })
        .is_err()
    {
        return accepted();
    }
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // The caller stopped reading; the process is being stopped.
            () = tx.closed() => break,
        };
        let item = match frame {
            None => BodyItem::End,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => BodyItem::Chunk(data),
                Err(frame) => match frame.into_trailers().ok().as_ref().and_then(stream_error) {
                    Some(failure) => BodyItem::Fail(failure),
                    None => continue,
                },
            },
            Some(Err(e)) => {
                // The runtime broke off its request: its process is not
                // given another invocation.
                if let Some(process) = state.process.upgrade() {
                    process.lock().dead = true;
                    process.stop();
                }
                BodyItem::Fail(Failure::new(
                    ErrorKind::FunctionError,
                    format!("the function's response stream broke off (its process ended?): {e}"),
                ))
            }
        };
        let last = !matches!(item, BodyItem::Chunk(_));
        if tx.send(item).await.is_err() || last {
            break;
        }
    }
    accepted()
}

/// A function error reported in a streamed response's trailers.
fn stream_error(trailers: &HeaderMap) -> Option<Failure> {
    let error_type = trailers
        .get("lambda-runtime-function-error-type")?
        .to_str()
        .unwrap_or("Unhandled");
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|v| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Some(Failure::new(
        ErrorKind::FunctionError,
        format!("the function failed while streaming: {error_type}: {body}"),
    ))
}

async fn invocation_error(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = error_body(&headers, &body);
    finish(&state, &id, Outcome::Error(body))
}

async fn init_error(
    State(state): State<RuntimeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(process) = state.process.upgrade() else {
        return gone();
    };
    let body = error_body(&headers, &body);
    let mut slot = process.lock();
    slot.init_error = Some(body.clone());
    if let Some(inv) = slot.queued.take() {
        let _ = inv.reply.send(Outcome::InitError(body));
    }
    accepted()
}

/// The error JSON as the runtime sent it; a runtime that sent only the
/// `Lambda-Runtime-Function-Error-Type` header gets a minimal object.
fn error_body(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        return body.to_vec();
    }
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled");
    serde_json::json!({
        "errorType": error_type,
        "errorMessage": String::from_utf8_lossy(body),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_responses_error_trailers_become_a_function_error() {
        let mut trailers = HeaderMap::new();
        assert_eq!(stream_error(&trailers), None);
        trailers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Runtime.StreamError"),
        );
        // base64 of "disk full"
        trailers.insert(
            "lambda-runtime-function-error-body",
            HeaderValue::from_static("ZGlzayBmdWxs"),
        );
        let failure = stream_error(&trailers).unwrap();
        assert_eq!(failure.kind, ErrorKind::FunctionError);
        assert_eq!(
            failure.message,
            "the function failed while streaming: Runtime.StreamError: disk full"
        );
    }
}
