//! The proxy-response decoder: what the function (or the invoker) sends
//! back, turned into the client's HTTP response.
//!
//! The input is a few control bytes and the Lambda payload, fed to
//! `proxy_response` and, wrapped in an `InvokeReply`, to `RoutePlan::on_reply`
//! (the glue's call: decode the gRPC message, then map the reply); the raw
//! bytes also go in as the gRPC message, and a gRPC status. Invariants:
//! a reply carrying a typed failure (`error_kind` other than unset and
//! FUNCTION_ERROR) is answered with the error contract's status;
//! nothing panics; the status is a final one, 200..=599 (never 1xx, which
//! Envoy cannot send as a local reply); header names are valid lower-case
//! HTTP names and values valid HTTP values; a usable proxy response is
//! passed through (status and body from the function), function errors get
//! the route's `function_error_status`, `Event` invocations get 202. Each
//! route exists in a REST API (v1, `binary_media_types: ["*/*"]`, asked with
//! or without `Accept`) and an HTTP API (v2, under `/v2`): a payload
//! without `statusCode` is 502 in the first and 200 in the second.
#![no_main]

use lambdagate_core::contract::{Failure, contract};
use lambdagate_core::reply::{GrpcStatus, HttpResponse, proxy_response};
use lambdagate_core::{CompiledConfig, Decision, PayloadFormat, RequestInfo, RoutePlan};
use lambdagate_proto::InvokeReply;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use std::sync::OnceLock;

/// Routes with different `function_error_status` values, and an `Event` one.
const ROUTES: &[(&str, Option<u16>)] = &[
    ("/s400", Some(400)),
    ("/s502", Some(502)),
    ("/s599", Some(599)),
    ("/event", None),
];

fn config() -> &'static CompiledConfig {
    static CONFIG: OnceLock<CompiledConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
        let resources: Vec<String> = ROUTES
            .iter()
            .map(|(path, status)| match status {
                Some(s) => format!(r#"{{"verb": "ANY", "uri_template": "{path}", "arn": "{arn}", "function_error_status": {s}}}"#),
                None => format!(r#"{{"verb": "ANY", "uri_template": "{path}", "arn": "{arn}", "invocation_type": "Event"}}"#),
            })
            .collect();
        let resources = resources.join(",");
        let json = format!(
            r#"{{"apis": [
                {{"name": "a", "version": "v1", "context": "/", "endpoint": "main",
                  "binary_media_types": ["*/*"], "resources": [{resources}]}},
                {{"name": "b", "version": "v1", "context": "/v2", "endpoint": "main",
                  "payload_format": "v2", "resources": [{resources}]}}]}}"#
        );
        lambdagate_core::parse(json.as_bytes()).expect("the fuzz config parses")
    })
}

fn plan(route: &str, request_id: &str, accept: bool) -> Box<RoutePlan> {
    let mut headers = vec![
        (":method".to_owned(), "POST".to_owned()),
        (":path".to_owned(), route.to_owned()),
    ];
    if accept {
        headers.push(("accept".to_owned(), "*/*".to_owned()));
    }
    let info = RequestInfo {
        request_id: request_id.to_owned(),
        ..RequestInfo::default()
    };
    match config().on_request_headers(headers, info) {
        Decision::NeedBody(plan) => plan,
        other => panic!("{route} is not routed: {other:?}"),
    }
}

/// The first `CONTROL` bytes pick the route and reply fields; the rest is
/// the payload (so a seed is `CONTROL` bytes followed by a JSON reply).
const CONTROL: usize = 12;

struct Input<'a> {
    function_error: u8,
    route: u8,
    status_code: u32,
    executed_version: &'static str,
    lambda_request_id: &'static str,
    grpc_code: u32,
    error_message: &'static str,
    request_id: &'static str,
    payload: &'a [u8],
}

const TEXTS: &[&str] = &[
    "",
    "$LATEST",
    "7",
    "id-1",
    "\r\n",
    "é",
    "\u{0}",
    "a b",
    "THROTTLED: slow",
    "TIMEOUT: 3 s",
    "FUNCTION_NOT_FOUND: x",
    ": ",
];

fn text(b: u8) -> &'static str {
    TEXTS[usize::from(b) % TEXTS.len()]
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        let mut c = [0u8; CONTROL];
        let n = data.len().min(CONTROL);
        c[..n].copy_from_slice(&data[..n]);
        Input {
            function_error: c[1],
            route: c[2],
            status_code: u32::from(c[4]) * 3,
            executed_version: text(c[5]),
            lambda_request_id: text(c[6]),
            grpc_code: u32::from(c[7]) % 20,
            error_message: text(c[8]),
            request_id: text(c[9]),
            payload: &data[n..],
        }
    }
}

const FUNCTION_ERRORS: &[&str] = &["", "", "", "Unhandled", "Handled", "x\r\ny"];

fn assert_sane(response: &HttpResponse, what: &str) {
    assert!(
        (200..=599).contains(&response.status),
        "{what}: status {}",
        response.status
    );
    for (name, value) in &response.headers {
        assert!(
            http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "{what}: header name {name:?}"
        );
        assert_eq!(name, &name.to_ascii_lowercase(), "{what}: header name");
        assert!(
            http::HeaderValue::from_str(value).is_ok(),
            "{what}: header {name}: {value:?}"
        );
    }
    assert!(!response.outcome.label().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let input = Input::new(data);
    let (route, function_error_status) = ROUTES[usize::from(input.route & 0x3f) % ROUTES.len()];
    let format = if input.route & 0x80 == 0 {
        PayloadFormat::V1
    } else {
        PayloadFormat::V2
    };
    // A REST API decodes base64 for a binary Accept; an HTTP API always.
    let accept = input.route & 0x40 != 0;
    let decode_base64 = format == PayloadFormat::V2 || accept;
    let path = match format {
        PayloadFormat::V1 => route.to_owned(),
        _ => format!("/v2{route}"),
    };
    let plan = plan(&path, input.request_id, accept);
    let function_error =
        FUNCTION_ERRORS[usize::from(input.function_error) % FUNCTION_ERRORS.len()].to_owned();

    let direct = proxy_response(input.payload, format, decode_base64);
    if let Ok(Some(response)) = &direct {
        assert_sane(response, "proxy_response");
    }

    // Arbitrary bytes as the gRPC message, and a gRPC failure.
    assert_sane(&plan.on_reply(Ok(input.payload)), "on_reply(bytes)");
    let status = GrpcStatus {
        code: input.grpc_code,
    };
    assert_sane(&plan.on_reply(Err(status)), "on_reply(status)");

    let reply = InvokeReply {
        status_code: input.status_code,
        payload: input.payload.to_vec(),
        function_error: function_error.clone(),
        executed_version: input.executed_version.to_owned(),
        lambda_request_id: input.lambda_request_id.to_owned(),
        error_kind: i32::from(data.get(10).copied().unwrap_or(0)) % 16,
        error_message: input.error_message.to_owned(),
        ..InvokeReply::default()
    };
    let response = plan.on_reply(Ok(&reply.encode_to_vec()));
    assert_sane(&response, "on_reply(reply)");
    if let Some(failure) = Failure::from_reply(&reply) {
        assert_eq!(
            response.status,
            contract(failure.kind).http_status,
            "a typed failure"
        );
        return;
    }
    match function_error_status {
        _ if !function_error.is_empty() => {
            // The Event route keeps the default, 502.
            assert_eq!(
                response.status,
                function_error_status.unwrap_or(502),
                "function error"
            );
        }
        None => assert_eq!(response.status, 202, "Event"),
        Some(_) => match &direct {
            Ok(Some(proxied)) => {
                assert_eq!(response.status, proxied.status);
                assert_eq!(response.body, proxied.body);
            }
            // Not JSON at all: the gateway's 502, never a 200 claiming JSON.
            // Well-formed JSON text (UTF-8, RFC 8259 grammar; numbers of any
            // size, which `serde_json::Value` would refuse).
            Ok(None)
                if !std::str::from_utf8(input.payload).is_ok_and(|text| {
                    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
                }) =>
            {
                assert_eq!(response.status, 502, "a payload that is not JSON");
            }
            Ok(None) if format == PayloadFormat::V1 => {
                assert_eq!(response.status, 502, "a REST reply without statusCode");
            }
            Ok(None) => {
                assert_eq!(response.status, 200);
                assert_eq!(response.body, input.payload);
            }
            Err(_) => assert_eq!(response.status, 502, "malformed proxy response"),
        },
    }
});
