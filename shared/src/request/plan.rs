//! The request plan: the three calls the proxy-wasm glue makes.
//!
//! ```text
//! on_http_request_headers ─► CompiledConfig::on_request_headers(headers, info)
//!     Decision::Continue      → Action::Continue (not lambdagate's request)
//!     Decision::Respond(r)    → send_http_response(r)
//!     Decision::NeedBody(plan)→ keep the plan; buffer the body
//!                               (plan.check_body_size(len) while it grows)
//! on_http_request_body(end)  ─► plan.build_invoke(body)
//!     Err(r)                  → send_http_response(r)
//!     Ok(invoke)              → dispatch_grpc_call(cluster, INVOKER_SERVICE,
//!                               INVOKE_METHOD, invoke.encode(), invoke.grpc_timeout)
//! on_grpc_call_response      ─► plan.on_reply(Ok(bytes) | Err(GrpcStatus)) (see `wire::callout`)
//!                             → send_http_response(r)
//! ```

use std::sync::Arc;
use std::time::Duration;

use lambdagate_proto::http_path::FORWARDED_HEADER;
use lambdagate_proto::{EventHead, InvokeRequest, UsageCheck};
use prost::Message as _;
use serde_json::value::RawValue;

use crate::config::route::RouteMatch;
use crate::config::{
    ApiKeySource, CompiledConfig, InvocationType, Lifecycle, PayloadFormat, RouteTarget,
};
use crate::headers::first_header;
use crate::reply::error::GatewayError;
use crate::reply::response::HttpResponse;
use crate::request::budget::UploadBudget;
use crate::request::event::{self, EventError, EventInput, TRACE_HEADER, max_body_bytes};
use crate::request::trace::trace_header;
use crate::url::{ip_without_port, split_path};

/// The header a client sends its API key in (API Gateway's).
pub const API_KEY_HEADER: &str = "x-api-key";

/// Facts about the request that are not in its headers (from Envoy's
/// properties and the host clock).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// The gateway request id; when empty the `x-request-id` header is used.
    pub request_id: String,
    /// The client address (`source.address`); a `:port` suffix is removed.
    pub source_ip: String,
    /// Arrival time, milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// `request.protocol` (`HTTP/1.1`, `HTTP/2`); empty means `HTTP/1.1`.
    pub protocol: String,
}

/// What to do with a request after its headers.
#[derive(Debug)]
pub enum Decision {
    /// Not lambdagate's: let it continue down the filter chain.
    Continue,
    /// Answer now (404, 405, 413) without invoking anything.
    Respond(HttpResponse),
    /// Routed: collect the body (if any), then call [`RoutePlan::build_invoke`].
    NeedBody(Box<RoutePlan>),
}

/// A routed request waiting for its body and then for the invoker.
#[derive(Debug)]
pub struct RoutePlan {
    pub(crate) target: Arc<RouteTarget>,
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) request_id: String,
    /// The X-Ray trace header sent to Lambda and back to the client.
    pub(crate) trace_id: String,
    pub(crate) source_ip: String,
    pub(crate) protocol: String,
    pub(crate) now_ms: u64,
    /// The body's announced length (`content-length`), if any.
    pub(crate) declared_body: Option<u64>,
    /// The authorizer's answer as the event's `requestContext.authorizer`
    /// (see `request::authorize`).
    pub(crate) authorization: Option<Box<RawValue>>,
    /// The cache key of the authorizer call under way.
    pub(crate) auth_key: Option<String>,
    /// The authorizer's `usageIdentifierKey`, for an API whose
    /// `api_key_source` is `authorizer`.
    pub(crate) usage_identifier_key: Option<String>,
}

/// An invocation for the glue to dispatch to the invoker cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoke {
    pub endpoint: String,
    pub function_arn: String,
    /// The Lambda event; with `event`, the request's raw body.
    pub payload: Vec<u8>,
    /// The event without its body: the invoker writes `payload` into it
    /// (see `event::finish`). `None`: `payload` is the whole event.
    pub event: Option<EventHead>,
    pub timeout_ms: u32,
    pub invocation_type: InvocationType,
    /// Timeout for `dispatch_grpc_call`: route timeout + 1 s, so that the
    /// invoker's own deadline (a typed TIMEOUT error) fires first.
    pub grpc_timeout: Duration,
    pub request_id: String,
    pub trace_id: String,
    /// The key check, for a route that needs an API key.
    pub usage: Option<UsageCheck>,
}

impl Invoke {
    pub fn into_request(self) -> InvokeRequest {
        InvokeRequest {
            function_arn: self.function_arn,
            endpoint: self.endpoint,
            payload: self.payload.into(),
            timeout_ms: self.timeout_ms,
            invocation_type: self.invocation_type.to_proto() as i32,
            request_id: self.request_id,
            trace_id: self.trace_id,
            http_reply: None,
            // Envoy hands the callout only a failed call's status code and
            // message: the failure's kind must come in the reply.
            failure_in_reply: true,
            usage: self.usage,
            event: self.event,
        }
    }

    /// The Lambda event Lambda gets for this invocation (what the invoker
    /// makes of `event` and `payload`).
    pub fn lambda_event(&self) -> Result<Vec<u8>, EventError> {
        match &self.event {
            Some(head) => event::finish(head, &self.payload),
            None => Ok(self.payload.clone()),
        }
    }

    /// The serialized `InvokeRequest` (the gRPC message body).
    pub fn encode(self) -> Vec<u8> {
        self.into_request().encode_to_vec()
    }

    /// The `InvokeRequest` as one gRPC frame: the body of the callout as
    /// HTTP/1.1, encoded in place behind the 5-byte frame header.
    pub fn encode_framed(self) -> Vec<u8> {
        let request = self.into_request();
        let len = request.encoded_len();
        let mut framed = Vec::with_capacity(5 + len);
        framed.extend_from_slice(&lambdagate_proto::grpc_frame_header(len));
        request.encode_raw(&mut framed);
        framed
    }

    /// `grpc-timeout` for [`Self::grpc_timeout`] (milliseconds: at most 8
    /// digits, 27 hours), as Envoy's gRPC client would send it.
    pub fn grpc_timeout_header(&self) -> String {
        format!("{}m", self.grpc_timeout.as_millis().min(99_999_999))
    }
}

impl CompiledConfig {
    /// Routes a request from its headers (Envoy's, pseudo-headers included).
    pub fn on_request_headers(
        &self,
        headers: Vec<(String, String)>,
        info: RequestInfo,
    ) -> Decision {
        let (Some(method), Some(path_and_query)) = (
            first_header(&headers, ":method"),
            first_header(&headers, ":path"),
        ) else {
            return Decision::Continue;
        };
        let (path, query) = split_path(path_and_query);
        let request_id = if info.request_id.is_empty() {
            first_header(&headers, "x-request-id")
                .unwrap_or_default()
                .to_owned()
        } else {
            info.request_id
        };
        // The marker of the router path's calls to the invoker: a client's
        // request with it never goes on to Envoy's router, whichever route
        // Envoy matched for it.
        if first_header(&headers, FORWARDED_HEADER).is_some() {
            return Decision::Respond(
                GatewayError::ReservedHeader {
                    name: FORWARDED_HEADER,
                }
                .to_response(&request_id, false),
            );
        }
        match self.table.find(method, path) {
            RouteMatch::Outside => Decision::Continue,
            RouteMatch::NotFound => Decision::Respond(
                GatewayError::NoRoute {
                    method: method.to_owned(),
                    path: path.to_owned(),
                }
                .to_response(&request_id, false),
            ),
            RouteMatch::MethodNotAllowed { allow } => Decision::Respond(
                GatewayError::MethodNotAllowed {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    allow,
                }
                .to_response(&request_id, false),
            ),
            RouteMatch::Found { target, .. } if target.api.lifecycle == Lifecycle::Retired => {
                Decision::Respond(
                    GatewayError::Retired {
                        api: target.api_name.clone(),
                    }
                    .to_response(&request_id, false),
                )
            }
            RouteMatch::Found { target, params } => {
                let declared = first_header(&headers, "content-length")
                    .and_then(|len| len.trim().parse::<u64>().ok());
                if let Some(size) = declared
                    && let Err(e) = check_body_size(size, target.invocation_type)
                {
                    let mut response = e.to_response(&request_id, false);
                    target.api.add_lifecycle_headers(&mut response.headers);
                    return Decision::Respond(response);
                }
                let (method, path, query) =
                    (method.to_owned(), path.to_owned(), query.map(str::to_owned));
                let trace_id = trace_header(&headers, &request_id, info.now_ms);
                Decision::NeedBody(Box::new(RoutePlan {
                    target: Arc::clone(target),
                    method,
                    path,
                    query,
                    params,
                    request_id,
                    trace_id,
                    source_ip: ip_without_port(&info.source_ip).to_owned(),
                    protocol: if info.protocol.is_empty() {
                        "HTTP/1.1".to_owned()
                    } else {
                        info.protocol
                    },
                    now_ms: info.now_ms,
                    declared_body: declared,
                    authorization: None,
                    auth_key: None,
                    usage_identifier_key: None,
                    headers,
                }))
            }
        }
    }
}

/// Refuses a body over Lambda's limit for the invocation type (413).
pub fn check_body_size(size: u64, invocation_type: InvocationType) -> Result<(), GatewayError> {
    let limit = max_body_bytes(invocation_type);
    if size > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(GatewayError::BodyTooLarge {
            size,
            limit,
            invocation_type,
        });
    }
    Ok(())
}

impl RoutePlan {
    pub fn target(&self) -> &RouteTarget {
        &self.target
    }

    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Whether the route streams its response (`response_mode: stream`):
    /// it then takes the router path whatever the data path.
    pub fn streams(&self) -> bool {
        self.target.response_mode == crate::config::ResponseMode::Stream
    }
    /// The X-Ray trace header of this request (for the access log).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// An error of this request as the client's response (generic unless
    /// the API exposes errors).
    pub fn error_response(&self, error: &GatewayError) -> HttpResponse {
        let mut response = error.to_response(&self.request_id, self.target.expose_errors);
        self.target.api.add_lifecycle_headers(&mut response.headers);
        response
    }

    /// Takes this request's body from the upload budget: what it
    /// announced at first (so a refused body is never read), then what it
    /// grows to beyond that (a chunked body). `taken` is what it holds so
    /// far; returns the new total, or the 503 to answer instead. The
    /// caller gives the total back when the stream ends.
    pub fn take_upload(
        &self,
        budget: &mut UploadBudget,
        taken: u64,
        received: u64,
    ) -> Result<u64, HttpResponse> {
        let wanted = received.max(self.declared_body.unwrap_or(0));
        let more = wanted.saturating_sub(taken);
        if budget.try_take(more) {
            return Ok(taken + more);
        }
        Err(self.error_response(&GatewayError::Overloaded {
            wanted: more,
            in_use: budget.in_use(),
            limit: budget.limit(),
        }))
    }

    /// Stop buffering past this many body bytes.
    pub fn max_body_bytes(&self) -> usize {
        max_body_bytes(self.target.invocation_type)
    }

    /// For the glue while the body arrives: `Err(413 response)` once the
    /// body is over the limit.
    pub fn check_body_size(&self, size: usize) -> Result<(), HttpResponse> {
        check_body_size(
            u64::try_from(size).unwrap_or(u64::MAX),
            self.target.invocation_type,
        )
        .map_err(|e| self.error_response(&e))
    }

    /// What the Lambda event is built from.
    pub(crate) fn event_input<'a>(&'a self, body: &'a [u8]) -> EventInput<'a> {
        let target = &self.target;
        EventInput {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            path_params: &self.params,
            body,
            route_verb: target.verb.as_str(),
            template: &target.template,
            api: &target.api,
            resource_id: &target.resource_id,
            trace_id: &self.trace_id,
            account_id: target.arn.account(),
            request_id: &self.request_id,
            source_ip: &self.source_ip,
            protocol: &self.protocol,
            time_ms: self.now_ms,
            authorizer: self.authorization.as_deref(),
        }
    }

    /// The invocation for the whole body (empty when the request has
    /// none): the event without its body, and the body, which the invoker
    /// writes into it; `Err` is the response to send instead (413 for a
    /// body or event over Lambda's limit).
    pub fn build_invoke(&self, body: impl Into<Vec<u8>>) -> Result<Invoke, HttpResponse> {
        let body = body.into();
        let mut invoke = self.invoke_for_body(body.len())?;
        invoke.payload = body;
        Ok(invoke)
    }

    /// The invocation for a body of `body_len` bytes, still without them
    /// (the router path puts them behind the message without reading
    /// them): the body and the event are checked against Lambda's limit.
    pub(crate) fn invoke_for_body(&self, body_len: usize) -> Result<Invoke, HttpResponse> {
        self.check_body_size(body_len)?;
        let target = &self.target;
        let head = event::head(target.payload_format, &self.event_input(b""))
            .map_err(|_| self.error_response(&GatewayError::EventBuild))?;
        let size = head
            .as_ref()
            .map_or(body_len, |head| event::min_len(head, body_len));
        let limit = self.max_body_bytes();
        if size > limit {
            return Err(self.error_response(&GatewayError::EventTooLarge { size, limit }));
        }
        Ok(Invoke {
            endpoint: target.endpoint.clone(),
            function_arn: target.arn_text.clone(),
            payload: Vec::new(),
            event: head,
            timeout_ms: target.timeout.as_millis(),
            invocation_type: target.invocation_type,
            grpc_timeout: target.timeout.invoker_deadline(),
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.clone(),
            usage: self.usage_check(),
        })
    }

    /// What the invoker needs to judge this request's API key, when its
    /// route needs one. No key is an empty one: the invoker refuses it.
    pub(crate) fn usage_check(&self) -> Option<UsageCheck> {
        let api_key = match self.target.api_key? {
            ApiKeySource::Header => first_header(&self.headers, API_KEY_HEADER).map(str::to_owned),
            ApiKeySource::Authorizer => self.usage_identifier_key.clone(),
        };
        Some(UsageCheck {
            method: self.method.clone(),
            path: self.path.clone(),
            api_key: api_key.unwrap_or_default(),
        })
    }

    /// Headers every response to this request carries, replacing the
    /// function's own: the lifecycle headers and the trace header.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        self.target.api.add_lifecycle_headers(&mut headers);
        if !self.trace_id.is_empty() {
            headers.push((TRACE_HEADER.to_owned(), self.trace_id.clone()));
        }
        headers
    }

    pub(crate) fn add_response_headers(&self, response: &mut HttpResponse) {
        crate::headers::replace_headers(&mut response.headers, &self.response_headers());
    }

    /// The client's request headers, as Envoy handed them over.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Whether the client speaks HTTP/1 (where Envoy drops response
    /// trailers unless told otherwise).
    pub fn is_http1(&self) -> bool {
        self.protocol.starts_with("HTTP/1")
    }

    /// The client's method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The client's path and query, as sent.
    pub fn original_path(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// Whether a reply's `isBase64Encoded` body is decoded for the client.
    /// A REST API (v1) decodes only when the client's first `Accept` type
    /// is one of its binary media types; otherwise the client gets the
    /// base64 text. An HTTP API (v2) always decodes.
    pub(crate) fn decodes_base64_replies(&self) -> bool {
        if self.target.payload_format != PayloadFormat::V1 {
            return true;
        }
        let Some(first) = first_header(&self.headers, "accept").and_then(|a| a.split(',').next())
        else {
            return false;
        };
        self.target.api.is_binary(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::error::GrpcStatus;
    use lambdagate_proto::InvokeReply;
    use serde_json::Value;

    const CONFIG: &str = r#"{
      "apis": [{
        "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
        "resources": [
          {"verb": "POST", "uri_template": "/user/{id}",
           "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live", "timeout_seconds": 5},
          {"verb": "GET", "uri_template": "/user/{id}",
           "arn": "arn:aws:lambda:us-east-1:123456789012:function:get-user"},
          {"verb": "POST", "uri_template": "/events",
           "arn": "arn:aws:lambda:us-east-1:123456789012:function:ingest", "invocation_type": "Event"}
        ]
      }]
    }"#;

    fn config() -> CompiledConfig {
        crate::config::parse(CONFIG.as_bytes()).unwrap()
    }

    fn request(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut headers = vec![
            (":method".to_owned(), method.to_owned()),
            (":path".to_owned(), path.to_owned()),
            (":authority".to_owned(), "localhost:10000".to_owned()),
            (":scheme".to_owned(), "http".to_owned()),
            ("x-request-id".to_owned(), "rid-7".to_owned()),
        ];
        headers.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        headers
    }

    fn info() -> RequestInfo {
        RequestInfo {
            source_ip: "127.0.0.1:40000".into(),
            now_ms: 1_795_557_040_123,
            ..RequestInfo::default()
        }
    }

    fn plan(method: &str, path: &str, extra: &[(&str, &str)]) -> Box<RoutePlan> {
        match config().on_request_headers(request(method, path, extra), info()) {
            Decision::NeedBody(plan) => plan,
            other => panic!("{other:?}"),
        }
    }

    fn respond(method: &str, path: &str, extra: &[(&str, &str)]) -> HttpResponse {
        match config().on_request_headers(request(method, path, extra), info()) {
            Decision::Respond(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retired_apis_answer_410_and_deprecated_ones_say_so() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let config = crate::config::parse(
            format!(
                r#"{{"apis": [
                  {{"name": "old", "version": "v1", "context": "/old", "endpoint": "e", "lifecycle": "retired",
                    "resources": [{{"verb": "GET", "uri_template": "/x", "arn": "{arn}"}}]}},
                  {{"name": "dep", "version": "v1", "context": "/dep", "endpoint": "e", "lifecycle": "deprecated",
                    "sunset": "2027-06-30",
                    "resources": [{{"verb": "GET", "uri_template": "/x", "arn": "{arn}"}}]}}]}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        let Decision::Respond(r) = config.on_request_headers(request("GET", "/old/x", &[]), info())
        else {
            panic!("a retired API is not invoked");
        };
        assert_eq!((r.status, r.outcome.label()), (410, "retired"));
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["requestId"], "rid-7");
        assert!(
            body["message"].as_str().unwrap().contains("retired"),
            "{body}"
        );

        let Decision::NeedBody(plan) =
            config.on_request_headers(request("GET", "/dep/x", &[]), info())
        else {
            panic!("a deprecated API is served");
        };
        let reply = InvokeReply {
            status_code: 200,
            payload:
                br#"{"statusCode": 200, "headers": {"deprecation": "no", "x": "1"}, "body": "hi"}"#
                    .to_vec(),
            ..InvokeReply::default()
        };
        let r = plan.on_reply(Ok(&prost::Message::encode_to_vec(&reply)));
        assert_eq!(r.status, 200);
        let header = |r: &HttpResponse, name: &str| -> Vec<String> {
            r.headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect()
        };
        // The gateway's, never the function's.
        assert_eq!(header(&r, "deprecation"), ["true"]);
        assert_eq!(header(&r, "sunset"), ["Wed, 30 Jun 2027 00:00:00 GMT"]);
        let r = plan.error_response(&GatewayError::InvokerUnreachable);
        assert_eq!(header(&r, "deprecation"), ["true"]);
    }

    #[test]
    fn outside_requests_continue() {
        let config = config();
        for path in ["/", "/other", "/usersx/user/7"] {
            assert!(matches!(
                config.on_request_headers(request("GET", path, &[]), info()),
                Decision::Continue
            ));
        }
        assert!(matches!(
            config.on_request_headers(vec![], info()),
            Decision::Continue
        ));
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        let r = respond("GET", "/users/nope?x=1", &[]);
        assert_eq!(r.status, 404);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["message"], "no resource matches GET /users/nope");
        assert_eq!(body["requestId"], "rid-7");

        let r = respond("DELETE", "/users/user/7", &[]);
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, POST"));
    }

    #[test]
    fn an_upload_takes_its_announced_length_then_what_it_grows_to() {
        let mut budget = UploadBudget::new(10_000);
        let announced = plan("POST", "/users/user/7", &[("content-length", "6000")]);
        let taken = announced.take_upload(&mut budget, 0, 0).unwrap();
        assert_eq!((taken, budget.in_use()), (6000, 6000));
        // More of the same body costs nothing more.
        assert_eq!(announced.take_upload(&mut budget, taken, 6000), Ok(6000));
        // A second one does not fit: 503 before its body is read, with the
        // request id and the API's answer shape.
        let second = plan("POST", "/users/user/8", &[("content-length", "6000")]);
        let refused = second.take_upload(&mut budget, 0, 0).unwrap_err();
        assert_eq!(refused.status, 503);
        assert_eq!(refused.outcome.label(), "overloaded");
        assert_eq!(refused.header("retry-after"), Some("1"));
        let body: Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body["message"], "Service Unavailable");
        assert_eq!(body["requestId"], "rid-7");
        assert!(refused.detail.unwrap().contains("6000 of its 10000 bytes"));
        assert_eq!(budget.in_use(), 6000, "a refusal takes nothing");
        // A chunked body (no length) takes as it grows.
        let chunked = plan("POST", "/users/user/9", &[]);
        assert_eq!(chunked.take_upload(&mut budget, 0, 0), Ok(0));
        assert_eq!(chunked.take_upload(&mut budget, 0, 3000), Ok(3000));
        assert!(chunked.take_upload(&mut budget, 3000, 5000).is_err());
        budget.give_back(6000 + 3000);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn content_length_over_the_limit_is_refused_at_header_time() {
        let r = respond("POST", "/users/events", &[("content-length", "1048577")]);
        assert_eq!(r.status, 413);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body["message"],
            "the request body is 1048577 bytes; Lambda accepts at most 1048576 bytes for asynchronous (Event) invocations"
        );
        // 1 MB is fine for a synchronous route.
        plan("POST", "/users/user/7", &[("content-length", "1048577")]);
        let r = respond("POST", "/users/user/7", &[("content-length", "6291457")]);
        assert_eq!(r.status, 413);
    }

    #[test]
    fn builds_the_invoke() {
        let plan = plan(
            "POST",
            "/users/user/7?firstName=John",
            &[("content-type", "application/json")],
        );
        assert_eq!(plan.request_id(), "rid-7");
        assert_eq!(plan.max_body_bytes(), 6 * 1024 * 1024);
        let invoke = plan.build_invoke(br#"{"message":"Hello"}"#).unwrap();
        assert_eq!(invoke.endpoint, "main");
        assert_eq!(
            invoke.function_arn,
            "arn:aws:lambda:us-east-1:123456789012:function:create-user:live"
        );
        assert_eq!(invoke.timeout_ms, 5000);
        assert_eq!(invoke.grpc_timeout, Duration::from_secs(6));
        assert_eq!(invoke.invocation_type, InvocationType::RequestResponse);
        // The body goes as it came; the invoker writes it into the event.
        assert_eq!(invoke.payload, br#"{"message":"Hello"}"#);
        let event: Value = serde_json::from_slice(&invoke.lambda_event().unwrap()).unwrap();
        assert_eq!(event["path"], "/users/user/7");
        assert_eq!(event["resource"], "/user/{id}");
        assert_eq!(event["pathParameters"]["id"], "7");
        assert_eq!(event["queryStringParameters"]["firstName"], "John");
        assert_eq!(event["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
        assert_eq!(event["requestContext"]["protocol"], "HTTP/1.1");
        assert_eq!(event["body"], r#"{"message":"Hello"}"#);

        let request = InvokeRequest::decode(invoke.clone().encode().as_slice()).unwrap();
        assert_eq!(request.payload, invoke.payload);
        assert_eq!(request.event, invoke.event);
        assert_eq!(request.request_id, "rid-7");
        assert_eq!(request.invocation_type, 0);
    }

    #[test]
    fn oversized_bodies_and_events_get_413() {
        let plan = plan(
            "POST",
            "/users/events",
            &[("content-type", "application/octet-stream")],
        );
        let r = plan.build_invoke(vec![0u8; 1024 * 1024 + 1]).unwrap_err();
        assert_eq!(r.status, 413);
        assert_eq!(plan.check_body_size(1024 * 1024), Ok(()));
        // Under the body limit, but base64 makes the event too large.
        let r = plan.build_invoke(vec![0u8; 1024 * 1024]).unwrap_err();
        assert_eq!(r.status, 413);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("over Lambda's limit of 1048576 bytes"),
            "{body}"
        );
    }

    #[test]
    fn replies_map_through_the_plan() {
        let plan = plan("POST", "/users/events", &[]);
        let invoke = plan.build_invoke(b"").unwrap();
        assert_eq!(invoke.invocation_type, InvocationType::Event);
        let reply = InvokeReply {
            status_code: 202,
            lambda_request_id: "l-1".into(),
            ..InvokeReply::default()
        };
        let r = plan.on_reply(Ok(&reply.encode_to_vec()));
        assert_eq!(r.status, 202);
        assert_eq!(r.header("x-amzn-requestid"), Some("l-1"));

        let r = plan.on_reply(Err(GrpcStatus { code: 14 }));
        assert_eq!(r.status, 503);
    }
}
