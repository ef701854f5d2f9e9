//! Shared by the `filter_*` tests: the compiled lambdagate filter on the
//! wasmtime host, one configuration that exercises every feature, and
//! helpers that read what the filter did — the gRPC call it sent the
//! invoker and the HTTP response it sent the client.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use lambdagate_proto::{ErrorKind, InvokeReply, InvokeRequest};
use lambdagate_wasm_host::{
    Action, GrpcCall, Host, LocalResponse, LogLevel, StreamId, filter_wasm_path,
};
use prost::Message as _;
use serde_json::Value;

pub const CLUSTER: &str = "lambdagate_invoker";
pub const SERVICE: &str = "lambdagate.v1.Invoker";
pub const METHOD: &str = "Invoke";

/// `POST /users/user/{id}`: qualified ARN, 5 s.
pub const CREATE_USER: &str = "arn:aws:lambda:us-east-1:123456789012:function:create-user:live";
/// `GET /users/user/{id}`: default timeout (50 s).
pub const GET_USER: &str = "arn:aws:lambda:us-east-1:123456789012:function:get-user";
/// `PUT /users/user/{id}`: function errors answer 500, 1 s.
pub const UPDATE_USER: &str = "arn:aws:lambda:us-east-1:123456789012:function:update-user:7";
/// `POST /users/events`: `Event` invocation, 10 s.
pub const INGEST: &str = "arn:aws:lambda:eu-west-1:123456789012:function:ingest";
/// `ANY /users/files/{path+}`: 900 s (the maximum).
pub const FILES: &str = "arn:aws:lambda:eu-west-1:210987654321:function:files";
/// `POST /users2/user/{id}` (payload 2.0, endpoint `other`).
pub const CREATE_USER_V2: &str = "arn:aws:lambda:us-west-2:210987654321:function:create-user-v2";
/// `POST /userswso2/user/{id}` (WSO2's event).
pub const CREATE_USER_WSO2: &str = "arn:aws:lambda:us-east-1:123456789012:function:wso2-user";

/// The client address Envoy reports (`source.address`).
pub const SOURCE_ADDRESS: &str = "192.0.2.10:51234";
/// 2026-11-24T21:50:40.123Z, in nanoseconds.
pub const NOW_NANOS: u64 = 1_795_557_040_123_000_000;
pub const NOW_MS: u64 = 1_795_557_040_123;

pub const SYNC_LIMIT: usize = 6 * 1024 * 1024;
pub const EVENT_LIMIT: usize = 1024 * 1024;

/// The plugin configuration every test starts from. The `users` API
/// exposes errors (most tests check what the client is told in detail);
/// the others keep the default generic errors.
pub fn config() -> Value {
    serde_json::json!({
        "invoker_cluster": CLUSTER,
        "apis": [
            {
                "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
                "expose_errors": true,
                // REST: these bodies go base64, and replies are decoded for
                // an Accept among them.
                "binary_media_types": ["application/octet-stream", "image/*"],
                "resources": [
                    {"verb": "POST", "uri_template": "/user/{id}", "arn": CREATE_USER, "timeout_seconds": 5},
                    {"verb": "GET", "uri_template": "/user/{id}", "arn": GET_USER},
                    {"verb": "PUT", "uri_template": "/user/{id}", "arn": UPDATE_USER,
                     "timeout_seconds": 1, "function_error_status": 500},
                    {"verb": "POST", "uri_template": "/events", "arn": INGEST,
                     "invocation_type": "Event", "timeout_seconds": 10},
                    {"verb": "ANY", "uri_template": "/files/{path+}", "arn": FILES, "timeout_seconds": 900}
                ]
            },
            {
                "name": "users2", "version": "v2", "context": "/users2", "endpoint": "other",
                "payload_format": "v2",
                "resources": [
                    {"verb": "POST", "uri_template": "/user/{id}", "arn": CREATE_USER_V2}
                ]
            },
            {
                "name": "userswso2", "version": "1.0.0", "context": "/userswso2", "endpoint": "main",
                "payload_format": "wso2",
                "resources": [
                    {"verb": "POST", "uri_template": "/user/{id}", "arn": CREATE_USER_WSO2}
                ]
            }
        ]
    })
}

/// A fresh VM running the filter, not configured yet.
pub fn load() -> Host {
    let mut host = Host::load(filter_wasm_path()).unwrap_or_else(|e| panic!("{e}"));
    host.set_property("source.address", SOURCE_ADDRESS);
    host.set_time(NOW_NANOS);
    host
}

/// A fresh VM running the filter with [`config`].
pub fn filter() -> Host {
    filter_with(&config())
}

pub fn filter_with(config: &Value) -> Host {
    let mut host = load();
    let outcome = host.configure(config.to_string()).unwrap();
    assert!(outcome.ok, "config refused: {:?}", outcome.logs);
    host
}

/// Request headers as Envoy hands them over: pseudo-headers first.
pub fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        (":method", method),
        (":path", path),
        (":authority", "api.example.com:10000"),
        (":scheme", "http"),
        ("x-request-id", "rid-1"),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    // A test may replace the default request id.
    if extra.iter().any(|(k, _)| *k == "x-request-id") {
        let first = headers.iter().position(|(k, _)| k == "x-request-id");
        if let Some(first) = first {
            headers.remove(first);
        }
    }
    headers
}

/// Sends a whole request: headers, then the body in `chunks` (none = the
/// headers end the stream). Returns the stream and every action.
pub fn send(
    host: &mut Host,
    headers: Vec<(String, String)>,
    chunks: &[&[u8]],
) -> (StreamId, Vec<Action>) {
    let stream = host.new_stream().unwrap();
    let mut actions = vec![
        host.request_headers(stream, headers, chunks.is_empty())
            .unwrap_or_else(|trap| panic!("{trap}")),
    ];
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == chunks.len();
        actions.push(
            host.request_body(stream, chunk, last)
                .unwrap_or_else(|trap| panic!("{trap}")),
        );
    }
    (stream, actions)
}

/// The gRPC calls made for a stream.
pub fn calls_of(host: &Host, stream: StreamId) -> Vec<GrpcCall> {
    host.grpc_calls()
        .iter()
        .filter(|call| call.stream == Some(stream))
        .cloned()
        .collect()
}

/// The one gRPC call a stream made, checked for the invoker's
/// cluster/service/method and a token.
pub fn only_call(host: &Host, stream: StreamId) -> GrpcCall {
    let calls = calls_of(host, stream);
    assert_eq!(calls.len(), 1, "expected one gRPC call, got {calls:#?}");
    let call = calls.into_iter().next().unwrap();
    assert_eq!(call.cluster, CLUSTER);
    assert_eq!(call.service, SERVICE);
    assert_eq!(call.method, METHOD);
    assert!(call.initial_metadata.is_empty(), "{call:?}");
    assert!(call.token.is_some(), "dispatch failed: {call:?}");
    call
}

pub fn token(call: &GrpcCall) -> u32 {
    call.token.unwrap()
}

/// The `InvokeRequest` a call carried.
pub fn request_of(call: &GrpcCall) -> InvokeRequest {
    InvokeRequest::decode(call.message.as_slice())
        .unwrap_or_else(|e| panic!("the gRPC message is not an InvokeRequest: {e}"))
}

/// The Lambda event the invoker makes of an `InvokeRequest`: the filter
/// sends the event without its body, and the raw body.
pub fn lambda_event(request: &InvokeRequest) -> Vec<u8> {
    match &request.event {
        Some(head) => lambdagate_core::request::event::finish(head, &request.payload)
            .unwrap_or_else(|e| panic!("the event head cannot be finished: {e}")),
        None => request.payload.to_vec(),
    }
}

/// The Lambda event of an `InvokeRequest`, as JSON.
pub fn event_of(request: &InvokeRequest) -> Value {
    let event = lambda_event(request);
    serde_json::from_slice(&event).unwrap_or_else(|e| {
        panic!(
            "the event is not JSON ({e}): {}",
            String::from_utf8_lossy(&event)
        )
    })
}

/// The one local response of a stream.
pub fn only_response(host: &Host, stream: StreamId) -> LocalResponse {
    let responses = host.local_responses(stream);
    assert_eq!(
        responses.len(),
        1,
        "expected one local response, got {responses:#?}"
    );
    let response = responses[0].clone();
    assert_eq!(
        response.grpc_status, None,
        "an HTTP response carries no grpc-status"
    );
    response
}

pub fn no_response(host: &Host, stream: StreamId) {
    let responses = host.local_responses(stream);
    assert!(responses.is_empty(), "unexpected responses: {responses:#?}");
}

pub fn json(response: &LocalResponse) -> Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

/// Checks an error response: status, JSON content type, a body with
/// exactly `message` and `requestId` (plus `error` for function errors).
/// Returns the body.
pub fn error_body(response: &LocalResponse, status: u32, request_id: &str) -> Value {
    assert_eq!(
        response.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = json(response);
    let object = body.as_object().unwrap();
    assert!(
        object
            .keys()
            .all(|k| ["message", "requestId", "error"].contains(&k.as_str())),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["requestId"], request_id, "{body}");
    body
}

/// An `InvokeReply` as the invoker encodes it for a synchronous call.
pub fn reply(payload: impl Into<Vec<u8>>) -> InvokeReply {
    InvokeReply {
        status_code: 200,
        payload: payload.into(),
        function_error: String::new(),
        executed_version: "$LATEST".to_owned(),
        lambda_request_id: "lambda-req-1".to_owned(),
        ..InvokeReply::default()
    }
}

/// A REST proxy response (200) whose body is `body`: what a function on a
/// v1 API must return (a bare JSON payload is 502 there).
pub fn proxied(body: &str) -> String {
    serde_json::json!({"statusCode": 200, "body": body}).to_string()
}

pub fn encode(reply: &InvokeReply) -> Vec<u8> {
    reply.encode_to_vec()
}

/// The invoker's answer to the filter's callout for a failure: an OK
/// reply with the kind typed and the invoker's words (the filter asks for
/// failures in the reply, `failure_in_reply`).
pub fn failure_reply(kind: ErrorKind, text: &str) -> Vec<u8> {
    encode(&InvokeReply {
        error_kind: kind as i32,
        error_message: text.to_owned(),
        ..InvokeReply::default()
    })
}

/// Error-level log lines written so far.
pub fn error_logs(host: &Host) -> Vec<String> {
    host.logs()
        .iter()
        .filter(|line| line.level >= LogLevel::Error)
        .map(|line| line.message.clone())
        .collect()
}
