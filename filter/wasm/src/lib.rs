//! The lambdagate Envoy filter: a thin proxy-wasm layer over
//! `lambdagate-core`. It only translates host calls; every decision
//! (routing, the Lambda event, the HTTP response) is made by the core,
//! which is tested natively.
//!
//! Per request the filter moves through [`State`]: routed on the headers,
//! collecting the body, waiting for the invoker's gRPC reply, done. The
//! state is `take()`n in each callback so a stale or repeated callback
//! finds nothing to act on.
//!
//! It never panics on a request: host calls are made through
//! `proxy_wasm::hostcalls` (which return `Result`) and a failure becomes a
//! JSON error response. The SDK's own wrappers still abort on host statuses
//! Envoy does not produce; example configs set `failure_policy:
//! FAIL_RELOAD` as the safety net.

use std::cell::RefCell;
use std::rc::Rc;

mod buffers;
mod host;

use buffers::{
    OUTCOME_TRAILER, deframe_chunk, header_map, now_ms, property, read_buffer, set_outcome, trailer,
};
use host::count;
use lambdagate_core::GatewayError;
use lambdagate_core::auth::AuthCache;
use lambdagate_core::contract::GrpcCode;
use lambdagate_core::request::AuthStep;
use lambdagate_core::request::budget::UploadBudget;
use lambdagate_core::wire::callout::http_callout_reply;
use lambdagate_core::wire::deframe::Deframer;
use lambdagate_core::wire::router::{ReplyHead, reserved_request_headers};
use lambdagate_core::{
    CompiledConfig, Decision, GrpcStatus, HttpResponse, INVOKE_METHOD, INVOKE_PATH,
    INVOKER_SERVICE, Outcome, RequestInfo, RoutePlan,
};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            config: None,
            budget: Rc::new(RefCell::new(UploadBudget::new(0))),
            refusals: None,
            auth_cache: Rc::new(RefCell::new(AuthCache::default())),
        })
    });
}}

fn log(level: LogLevel, message: &str) {
    let _ = host::log(level, message);
}

/// Holds the compiled configuration and the upload budget, shared by every
/// request on this worker (one VM per worker: no locking needed).
struct Root {
    config: Option<Rc<CompiledConfig>>,
    budget: Rc<RefCell<UploadBudget>>,
    /// The counter of requests the upload budget refused (see
    /// [`REFUSALS_METRIC`]); `None` if the host would not define it.
    refusals: Option<u32>,
    /// Authorizers' answers, for every stream of this worker.
    auth_cache: Rc<RefCell<AuthCache>>,
}

/// Envoy's Prometheus stats (`/stats/prometheus`) show it under this name
/// (a custom stat: no `envoy_` prefix).
const REFUSALS_METRIC: &str = "lambdagate_upload_budget_refusals";

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match host::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            // Empty: the core refuses it with the same words as any other
            // invalid configuration (and as `lambdagate check`).
            Ok(None) => Vec::new(),
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("lambdagate: cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        match lambdagate_core::parse(&bytes) {
            Ok(config) => {
                log(
                    LogLevel::Info,
                    &format!(
                        "lambdagate: configured, invoker cluster `{}`",
                        config.invoker_cluster()
                    ),
                );
                // A new limit for the streams to come; streams under way
                // give back to the budget they took from.
                self.budget = Rc::new(RefCell::new(UploadBudget::new(
                    config.config().upload_budget_bytes,
                )));
                if self.refusals.is_none() {
                    self.refusals = host::define_metric(MetricType::Counter, REFUSALS_METRIC).ok();
                }
                self.config = Some(Rc::new(config));
                // Answers of the old config's authorizers are not this one's.
                self.auth_cache = Rc::new(RefCell::new(AuthCache::default()));
                true
            }
            Err(e) => {
                log(
                    LogLevel::Error,
                    &format!("lambdagate: invalid plugin configuration: {e}"),
                );
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        count::callback();
        Some(Box::new(Stream {
            config: self.config.clone(),
            auth_cache: Rc::clone(&self.auth_cache),
            state: State::Idle,
            upload: Upload {
                budget: Rc::clone(&self.budget),
                taken: 0,
                refusals: self.refusals,
            },
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Where one request is.
#[derive(Default)]
enum State {
    /// Headers not seen yet, or not lambdagate's request.
    #[default]
    Idle,
    /// Routed; the authorizer's call is under way under this gRPC token,
    /// and the body (if any) is being buffered meanwhile. `body`: the
    /// whole body once the request has ended, `None` while it goes on.
    Authorizing {
        token: u32,
        plan: Box<RoutePlan>,
        body: Option<Body>,
    },
    /// Routed; buffering the body.
    CollectingBody(Box<RoutePlan>),
    /// The invocation is dispatched under this gRPC token.
    Invoking { token: u32, plan: Box<RoutePlan> },
    /// Router path: the request went on to the invoker as its
    /// `InvokeHttp` call; waiting for the reply's head.
    Forwarded(Box<RoutePlan>),
    /// Router path: the client's response is passing; its body loses the
    /// gRPC framing on the way. `http1`: the client speaks HTTP/1, where
    /// Envoy drops trailers by itself. `streamed`: a streamed response,
    /// which can still fail after its head (the trailers say).
    Deframing {
        deframer: Deframer,
        http1: bool,
        streamed: bool,
    },
    /// A response was sent.
    Done,
}

/// A complete request body, where Envoy holds it.
#[derive(Clone, Copy)]
enum Body {
    /// The request has none (the filter cannot add one).
    None,
    /// Buffered by Envoy: this many bytes.
    Buffered(usize),
    /// Buffered by Envoy and ended by trailers: its length is known only
    /// by reading it.
    Trailed,
}

impl Body {
    /// The length, where it is known without reading the body.
    fn known_len(self) -> Option<usize> {
        match self {
            Body::Buffered(size) => Some(size),
            Body::None | Body::Trailed => None,
        }
    }

    /// The bytes, from Envoy's buffer. A body that was announced but
    /// cannot be read is an error, never an empty body.
    fn read(self) -> Result<Vec<u8>, GatewayError> {
        let expected = match self {
            Body::None => return Ok(Vec::new()),
            Body::Buffered(size) => Some(size),
            Body::Trailed => None,
        };
        read_buffer(BufferType::HttpRequestBody, expected, "the request body")
    }
}

struct Stream {
    config: Option<Rc<CompiledConfig>>,
    auth_cache: Rc<RefCell<AuthCache>>,
    state: State,
    upload: Upload,
}

/// What this stream's body holds of the worker's upload budget; given
/// back when the stream's context goes (its buffered body with it).
struct Upload {
    budget: Rc<RefCell<UploadBudget>>,
    taken: u64,
    refusals: Option<u32>,
}

impl Upload {
    /// Takes what the body needs now (see `RoutePlan::take_upload`); a
    /// refusal is counted.
    fn take(&mut self, plan: &RoutePlan, received: u64) -> Result<(), HttpResponse> {
        let mut budget = self.budget.borrow_mut();
        match plan.take_upload(&mut budget, self.taken, received) {
            Ok(taken) => {
                self.taken = taken;
                Ok(())
            }
            Err(refusal) => {
                if let Some(id) = self.refusals {
                    let _ = host::increment_metric(id, 1);
                }
                Err(refusal)
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // The stream's context goes (`proxy_on_delete`): one request seen.
        count::request_ended();
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Ok(mut budget) = self.budget.try_borrow_mut() {
            budget.give_back(self.taken);
        }
    }
}

impl Stream {
    fn respond(&mut self, response: HttpResponse) -> Action {
        set_outcome(response.outcome);
        if let Some(detail) = &response.detail {
            // What the client was not told, for the operator.
            log(
                LogLevel::Warn,
                &format!(
                    "lambdagate: answered {} ({}) to {detail}",
                    response.status, response.outcome
                ),
            );
        }
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(status) =
            host::send_http_response(u32::from(response.status), headers, Some(&response.body))
        {
            log(
                LogLevel::Error,
                &format!("lambdagate: cannot send the response: {status:?}"),
            );
        }
        self.state = State::Done;
        Action::Pause
    }

    /// Router path: the response already started and cannot become an
    /// error any more; the client sees it cut (a reset stream), the log
    /// says why.
    fn cut_response(&mut self, reason: &str, outcome: Outcome) -> Action {
        log(
            LogLevel::Error,
            &format!("lambdagate: response cut: {reason}"),
        );
        set_outcome(outcome);
        let _ = host::reset_http_response();
        self.state = State::Done;
        Action::Pause
    }

    /// Sends the request, its body complete, to the invoker: by the router
    /// path (the router data path, streamed routes, large bodies with
    /// `router_body_bytes`) as the request Envoy's router forwards, else as
    /// a gRPC callout. The body is the raw bytes; the
    /// invoker writes them into the event.
    fn invoke(&mut self, plan: Box<RoutePlan>, body: Body) -> Action {
        let Some(config) = self.config.clone() else {
            return self.respond(plan.error_response(&GatewayError::EventBuild));
        };
        if config.takes_router_path(plan.streams(), body.known_len()) {
            return self.forward(plan, body);
        }
        let body = match body.read() {
            Ok(body) => body,
            Err(e) => return self.respond(plan.error_response(&e)),
        };
        let invoke = match plan.build_invoke(body) {
            Ok(invoke) => invoke,
            Err(response) => return self.respond(response),
        };
        let timeout = invoke.grpc_timeout;
        let (cluster, dispatched) = match config.callout_cluster() {
            // The same gRPC call as HTTP/1.1: Envoy's HTTP client costs it
            // less than its gRPC client (bench/RESULTS.md, round 12).
            Some(cluster) => {
                let grpc_timeout = invoke.grpc_timeout_header();
                let headers = vec![
                    (":method", "POST"),
                    (":path", INVOKE_PATH),
                    (":authority", cluster),
                    ("content-type", "application/grpc"),
                    ("grpc-timeout", grpc_timeout.as_str()),
                ];
                let body = invoke.encode_framed();
                let sent =
                    host::dispatch_http_call(cluster, headers, Some(&body), Vec::new(), timeout);
                (cluster, sent)
            }
            None => {
                let cluster = config.invoker_cluster();
                let message = invoke.encode();
                let sent = host::dispatch_grpc_call(
                    cluster,
                    INVOKER_SERVICE,
                    INVOKE_METHOD,
                    Vec::new(),
                    Some(&message),
                    timeout,
                );
                (cluster, sent)
            }
        };
        match dispatched {
            Ok(token) => {
                self.state = State::Invoking { token, plan };
                Action::Pause
            }
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!(
                        "lambdagate: cannot call the invoker cluster `{cluster}` ({status:?}): is it defined in the Envoy config?"
                    ),
                );
                let response = plan.on_reply(Err(GrpcStatus {
                    code: GrpcCode::Unavailable.as_u32(),
                }));
                self.respond(response)
            }
        }
    }

    /// Dispatches the authorizer's invocation; the request waits.
    fn call_authorizer(
        &mut self,
        plan: Box<RoutePlan>,
        call: lambdagate_core::Invoke,
        body: Option<Body>,
    ) -> Action {
        let Some(config) = self.config.clone() else {
            return self.respond(plan.error_response(&GatewayError::EventBuild));
        };
        let timeout = call.grpc_timeout;
        match host::dispatch_grpc_call(
            config.invoker_cluster(),
            INVOKER_SERVICE,
            INVOKE_METHOD,
            Vec::new(),
            Some(&call.encode()),
            timeout,
        ) {
            Ok(token) => {
                self.state = State::Authorizing { token, plan, body };
                Action::Pause
            }
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!(
                        "lambdagate: cannot call the invoker cluster `{}` for the authorizer ({status:?})",
                        config.invoker_cluster()
                    ),
                );
                let unavailable = GrpcStatus {
                    code: GrpcCode::Unavailable.as_u32(),
                };
                self.on_authorizer_reply(plan, body, unavailable.code, 0);
                Action::Pause
            }
        }
    }

    /// The authorizer answered: refuse, or go on with the request where it
    /// stands (its body complete, or still arriving). Called from a gRPC
    /// callback (or a failed dispatch), so a request that goes on is
    /// resumed here.
    fn on_authorizer_reply(
        &mut self,
        mut plan: Box<RoutePlan>,
        body: Option<Body>,
        status_code: u32,
        response_size: usize,
    ) {
        let result = if status_code == 0 {
            read_buffer(
                BufferType::GrpcReceiveBuffer,
                Some(response_size),
                "the invoker's reply",
            )
        } else {
            Ok(Vec::new())
        };
        let reply = match &result {
            Ok(bytes) if status_code == 0 => Ok(bytes.as_slice()),
            Ok(_) => Err(GrpcStatus { code: status_code }),
            Err(e) => {
                let response = plan.error_response(e);
                self.respond(response);
                return;
            }
        };
        let verdict = plan.on_authorizer_reply(reply, &mut self.auth_cache.borrow_mut());
        if let Err(response) = verdict {
            self.respond(response);
            return;
        }
        let Some(body) = body else {
            // More body to come: collect it as any request's.
            self.state = State::CollectingBody(plan);
            return;
        };
        let action = self.invoke(plan, body);
        if matches!(action, Action::Continue) {
            let _ = host::resume_http_request();
        }
    }

    /// Router path: turns the request into the invoker's `InvokeHttp` call
    /// and lets it continue to Envoy's router. The body stays in Envoy's
    /// buffer: the call's message goes in front of it, so it never enters
    /// the VM (its length is all the filter needs). The host calls cannot
    /// fail here: the request's headers and its buffered body are there
    /// while the request is paused.
    fn forward(&mut self, plan: Box<RoutePlan>, body: Body) -> Action {
        let body_len = match body {
            Body::None => None,
            Body::Buffered(size) => Some(size),
            Body::Trailed => match body.read() {
                Ok(bytes) => Some(bytes.len()),
                Err(e) => return self.respond(plan.error_response(&e)),
            },
        };
        let forward = match plan.build_forward(body_len) {
            Ok(forward) => forward,
            Err(response) => return self.respond(response),
        };
        if let Some(prefix) = &forward.body_prefix
            && let Err(status) = host::set_buffer(BufferType::HttpRequestBody, 0, 0, prefix)
        {
            let e = GatewayError::HostRead {
                what: "the request body (framing it)",
                reason: format!("{status:?}"),
            };
            return self.respond(plan.error_response(&e));
        }
        let pairs: Vec<(&str, &[u8])> = forward
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        if let Err(status) = host::set_map_bytes(MapType::HttpRequestHeaders, pairs) {
            let e = GatewayError::HostRead {
                what: "the request headers (replacing them)",
                reason: format!("{status:?}"),
            };
            return self.respond(plan.error_response(&e));
        }
        self.state = State::Forwarded(plan);
        Action::Continue
    }

    /// Router path: the client's response for the invoker's reply head.
    fn on_reply_head(&mut self, plan: &RoutePlan) -> Action {
        let headers = header_map(MapType::HttpResponseHeaders).unwrap_or_default();
        match plan.reply_head(&headers) {
            ReplyHead::Http {
                status,
                headers,
                outcome,
            } => {
                set_outcome(outcome);
                let status = status.to_string();
                let mut pairs: Vec<(&str, &[u8])> = Vec::with_capacity(headers.len() + 1);
                pairs.push((":status", status.as_bytes()));
                pairs.extend(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
                if let Err(status) = host::set_map_bytes(MapType::HttpResponseHeaders, pairs) {
                    let e = GatewayError::HostRead {
                        what: "the response headers (replacing them)",
                        reason: format!("{status:?}"),
                    };
                    return self.respond(plan.error_response(&e));
                }
                self.state = State::Deframing {
                    deframer: Deframer::default(),
                    http1: plan.is_http1(),
                    streamed: plan.streams(),
                };
                Action::Continue
            }
            // Envoy's own reply (invoker unreachable, deadline) or a gRPC
            // error: nothing has reached the client yet, so the gateway's
            // JSON error replaces it.
            ReplyHead::Failed(response) => {
                let get = |name: &str| {
                    headers
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("-", |(_, v)| v.as_str())
                };
                log(
                    LogLevel::Warn,
                    &format!(
                        "lambdagate: no answer from the invoker for request {}: upstream status {}, grpc-status {}",
                        plan.request_id(),
                        get(":status"),
                        get("grpc-status")
                    ),
                );
                self.respond(response)
            }
        }
    }
}

impl Context for Stream {
    /// The invoker's reply to the callout as HTTP/1.1 (`callout_cluster`).
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        count::callback();
        // The SDK's `set_effective_context` before it called us.
        count::host_call();
        let plan = match std::mem::take(&mut self.state) {
            State::Invoking { token, plan } if token == token_id => plan,
            other => {
                self.state = other;
                return;
            }
        };
        let header = |name| {
            host::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
                .ok()
                .flatten()
        };
        let status = header(":status");
        let ok = status.as_deref() == Some(b"200");
        // Only a reply without its message can be a trailers-only error.
        let grpc_status = if ok && body_size == 0 {
            header("grpc-status")
        } else {
            None
        };
        let body = if ok && body_size > 0 {
            read_buffer(
                BufferType::HttpCallResponseBody,
                Some(body_size),
                "the invoker's reply",
            )
        } else {
            Ok(Vec::new())
        };
        let response = match body {
            Ok(body) => plan.on_reply(http_callout_reply(
                status.as_deref(),
                grpc_status.as_deref(),
                &body,
            )),
            Err(e) => plan.error_response(&e),
        };
        self.respond(response);
    }

    fn on_grpc_call_response(&mut self, token_id: u32, status_code: u32, response_size: usize) {
        count::callback();
        // The SDK's `set_effective_context` before it called us.
        count::host_call();
        let (token, plan) = match std::mem::take(&mut self.state) {
            State::Invoking { token, plan } => (token, plan),
            State::Authorizing { token, plan, body } if token == token_id => {
                self.on_authorizer_reply(plan, body, status_code, response_size);
                return;
            }
            other => {
                // Not waiting for a reply: a late or foreign token.
                self.state = other;
                return;
            }
        };
        if token != token_id {
            self.state = State::Invoking { token, plan };
            return;
        }
        let response = if status_code == 0 {
            // An all-default reply encodes to zero bytes; anything else
            // must be read whole.
            match read_buffer(
                BufferType::GrpcReceiveBuffer,
                Some(response_size),
                "the invoker's reply",
            ) {
                Ok(reply) => plan.on_reply(Ok(&reply)),
                Err(e) => plan.error_response(&e),
            }
        } else {
            // Not the invoker's answer (its failures come in the reply):
            // Envoy's own status, of which only the code counts.
            plan.on_reply(Err(GrpcStatus { code: status_code }))
        };
        self.respond(response);
    }

    fn on_done(&mut self) -> bool {
        count::callback();
        // The stream ends (perhaps the client went away while the function
        // runs). A pending invoker call is deliberately NOT cancelled: in
        // Envoy gRPC and HTTP calls belong to the root context and outlive
        // the stream, and only their reply (at the latest Envoy's deadline,
        // route timeout + 1 s) removes the token from the SDK's callout
        // table. A cancelled call never calls back, so its entry would stay
        // forever: a leak per abandoned request and, once Envoy's token
        // counter wraps around, a "duplicate token_id" panic (a trap) in the
        // SDK. The late reply finds no stream and the SDK drops it. (The
        // function runs to its end in Lambda either way.)
        self.state = State::Done;
        true
    }
}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        count::callback();
        let Some(config) = self.config.clone() else {
            return Action::Continue;
        };
        let headers = match header_map(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                log(
                    LogLevel::Error,
                    &format!("lambdagate: cannot read request headers: {status:?}"),
                );
                return Action::Continue;
            }
        };
        // Names only the filter may set (the router path's route marker,
        // the access log's method): a client's are removed.
        for name in reserved_request_headers(&headers) {
            let _ = host::remove_map_value(MapType::HttpRequestHeaders, &name);
        }
        let info = RequestInfo {
            request_id: String::new(),
            source_ip: property(&["source", "address"]),
            now_ms: now_ms(),
            protocol: property(&["request", "protocol"]),
        };
        match config.on_request_headers(headers, info) {
            Decision::Continue => Action::Continue,
            Decision::Respond(response) => self.respond(response),
            Decision::NeedBody(mut plan) => {
                // Refused before its body is read when it does not fit.
                if let Err(response) = self.upload.take(&plan, 0) {
                    return self.respond(response);
                }
                let step = plan.authorize(&mut self.auth_cache.borrow_mut());
                match step {
                    AuthStep::Proceed => {}
                    AuthStep::Respond(response) => return self.respond(response),
                    AuthStep::Call(call) => {
                        let body = end_of_stream.then_some(Body::None);
                        return self.call_authorizer(plan, *call, body);
                    }
                }
                if end_of_stream {
                    self.invoke(plan, Body::None)
                } else {
                    self.state = State::CollectingBody(plan);
                    Action::Pause
                }
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        count::callback();
        let plan = match std::mem::take(&mut self.state) {
            State::CollectingBody(plan) => plan,
            State::Authorizing { token, plan, .. } => {
                // The body waits, within the same limits, for the answer.
                if let Err(response) = plan.check_body_size(body_size) {
                    return self.respond(response);
                }
                let received = u64::try_from(body_size).unwrap_or(u64::MAX);
                if let Err(response) = self.upload.take(&plan, received) {
                    return self.respond(response);
                }
                let body = end_of_stream.then_some(Body::Buffered(body_size));
                self.state = State::Authorizing { token, plan, body };
                return Action::Pause;
            }
            State::Idle => return Action::Continue,
            other => {
                self.state = other;
                return Action::Pause;
            }
        };
        if let Err(response) = plan.check_body_size(body_size) {
            return self.respond(response);
        }
        let received = u64::try_from(body_size).unwrap_or(u64::MAX);
        if let Err(response) = self.upload.take(&plan, received) {
            return self.respond(response);
        }
        if !end_of_stream {
            // Envoy keeps buffering while we pause.
            self.state = State::CollectingBody(plan);
            return Action::Pause;
        }
        self.invoke(plan, Body::Buffered(body_size))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        count::callback();
        match std::mem::take(&mut self.state) {
            State::Forwarded(plan) => self.on_reply_head(&plan),
            other => {
                self.state = other;
                Action::Continue
            }
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        count::callback();
        let State::Deframing { deframer, .. } = &mut self.state else {
            return Action::Continue;
        };
        let result = deframe_chunk(deframer, body_size);
        let complete = deframer.is_at_boundary();
        if let Err(reason) = result {
            return self.cut_response(&reason, Outcome::BadReply);
        }
        if end_of_stream && !complete {
            return self.cut_response(
                "the invoker's reply ended inside a message",
                Outcome::BadReply,
            );
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        count::callback();
        let State::Deframing {
            deframer,
            http1,
            streamed,
        } = &self.state
        else {
            return Action::Continue;
        };
        let complete = deframer.is_at_boundary();
        if complete && *http1 && !*streamed {
            // A whole reply (the invoker ends a buffered reply only with
            // OK), and Envoy drops trailers for HTTP/1 clients: nothing to
            // read or change.
            self.state = State::Done;
            return Action::Continue;
        }
        let status = trailer("grpc-status");
        if !complete || status.as_deref() != Some("0") {
            // A stream that failed after its head: the client must see
            // that it is cut (a reset HTTP/2 stream, an HTTP/1 body without
            // its last chunk), never a body that looks whole.
            let reason = format!(
                "the invoker's reply ended with grpc-status {}: {}",
                status.as_deref().unwrap_or("(none)"),
                lambdagate_core::url::decode_path(&trailer("grpc-message").unwrap_or_default())
            );
            let outcome = trailer(OUTCOME_TRAILER)
                .and_then(|label| Outcome::from_label(&label))
                .unwrap_or(Outcome::BadReply);
            return self.cut_response(&reason, outcome);
        }
        // gRPC's trailers are not the client's.
        let _ = host::set_map_bytes(MapType::HttpResponseTrailers, Vec::new());
        self.state = State::Done;
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        count::callback();
        // Trailers end the body.
        match std::mem::take(&mut self.state) {
            State::Authorizing { token, plan, .. } => {
                self.state = State::Authorizing {
                    token,
                    plan,
                    body: Some(Body::Trailed),
                };
                Action::Pause
            }
            State::CollectingBody(plan) => self.invoke(plan, Body::Trailed),
            State::Idle => Action::Continue,
            other => {
                self.state = other;
                Action::Pause
            }
        }
    }
}
