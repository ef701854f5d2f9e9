//! The proxy-response decoder: what the function (or the invoker) sends
//! back, turned into the client's HTTP response.
//!
//! The input is a few control bytes and the Lambda payload (fed to
//! `proxy_response` and, wrapped in an `InvokeReply`, to
//! `invoke_reply_to_http`; as raw bytes also the gRPC message for
//! `reply_to_http`), plus a gRPC status. Invariants: nothing
//! panics; the status is a final one, 200..=599 (never 1xx, which Envoy
//! cannot send as a local reply); header names are valid lower-case HTTP
//! names and values valid HTTP values; a usable proxy response is passed
//! through (status from `statusCode`), function errors get the route's
//! status, `Event` invocations get 202.
#![no_main]

use lambdagate_core::response::{
    GrpcStatus, HttpResponse, ReplyContext, invoke_reply_to_http, proxy_response, reply_to_http,
};
use lambdagate_core::{InvocationType, Timeout};
use lambdagate_proto::InvokeReply;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

/// The first `CONTROL` bytes pick the route and reply fields; the rest is
/// the payload (so a seed is `CONTROL` bytes followed by a JSON reply).
const CONTROL: usize = 12;

struct Input<'a> {
    event: bool,
    function_error: u8,
    function_error_status: u16,
    status_code: u32,
    executed_version: &'static str,
    lambda_request_id: &'static str,
    grpc_code: u32,
    grpc_message: &'static str,
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
            event: c[0] & 1 == 1,
            function_error: c[1],
            function_error_status: u16::from_le_bytes([c[2], c[3]]),
            status_code: u32::from(c[4]) * 3,
            executed_version: text(c[5]),
            lambda_request_id: text(c[6]),
            grpc_code: u32::from(c[7]) % 20,
            grpc_message: text(c[8]),
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
    assert!(!response.outcome.is_empty());
}

fuzz_target!(|data: &[u8]| {
    let input = Input::new(data);
    let function_error =
        FUNCTION_ERRORS[usize::from(input.function_error) % FUNCTION_ERRORS.len()].to_owned();
    // The config only lets 400..=599 through.
    let function_error_status = 400 + input.function_error_status % 200;
    let ctx = ReplyContext {
        arn: "arn:aws:lambda:us-east-1:123456789012:function:f",
        invocation_type: if input.event {
            InvocationType::Event
        } else {
            InvocationType::RequestResponse
        },
        function_error_status,
        timeout: Timeout::from_millis(3000).expect("3 s is a valid timeout"),
        request_id: input.request_id,
    };

    let direct = proxy_response(input.payload);
    match &direct {
        Ok(Some(response)) => assert_sane(response, "proxy_response"),
        Ok(None) | Err(_) => {}
    }

    let reply = InvokeReply {
        status_code: input.status_code,
        payload: input.payload.to_vec(),
        function_error: function_error.clone(),
        executed_version: input.executed_version.to_owned(),
        lambda_request_id: input.lambda_request_id.to_owned(),
        error_kind: i32::from(data.get(10).copied().unwrap_or(0)) % 16,
    };
    let encoded = reply.encode_to_vec();
    let response = invoke_reply_to_http(&ctx, reply);
    assert_sane(&response, "invoke_reply_to_http");
    if !function_error.is_empty() {
        assert_eq!(response.status, function_error_status);
    } else if input.event {
        assert_eq!(response.status, 202);
    } else if let Ok(Some(proxied)) = &direct {
        assert_eq!(response.status, proxied.status);
        assert_eq!(response.body, proxied.body);
    } else if let Ok(None) = &direct {
        assert_eq!(response.status, 200);
        assert_eq!(response.body, input.payload);
    } else {
        assert_eq!(response.status, 502, "malformed proxy response");
    }

    // The same reply as gRPC message bytes gives the same response.
    let again = reply_to_http(&ctx, Ok(&encoded));
    assert_eq!(again, response);

    // Arbitrary bytes as the gRPC message, and a gRPC failure.
    assert_sane(
        &reply_to_http(&ctx, Ok(input.payload)),
        "reply_to_http(bytes)",
    );
    let status = GrpcStatus {
        code: input.grpc_code,
        message: input.grpc_message,
    };
    assert_sane(&reply_to_http(&ctx, Err(status)), "reply_to_http(status)");
});
