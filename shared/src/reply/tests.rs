use lambdagate_proto::{ErrorKind, InvokeReply};
use serde_json::{Value, json};

use super::*;
use crate::config::route::Verb;
use crate::config::timeout::Timeout;
use crate::config::{InvocationType, PayloadFormat};
use crate::contract::{Failure, contract};
use crate::wire::callout::reply_to_http;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

fn ctx(invocation_type: InvocationType) -> ReplyContext<'static> {
    ReplyContext {
        arn: ARN,
        invocation_type,
        function_error_status: 502,
        timeout: Timeout::DEFAULT,
        request_id: "req-1",
        // The detailed messages below; `errors_are_generic_unless_exposed`
        // covers the default.
        expose_errors: true,
        payload_format: PayloadFormat::V2,
        decode_base64: true,
    }
}

fn reply(payload: &str) -> InvokeReply {
    InvokeReply {
        status_code: 200,
        payload: payload.as_bytes().to_vec(),
        function_error: String::new(),
        executed_version: "$LATEST".into(),
        lambda_request_id: "lambda-1".into(),
        ..InvokeReply::default()
    }
}

fn sync(payload: &str) -> HttpResponse {
    invoke_reply_to_http(&ctx(InvocationType::RequestResponse), reply(payload))
}

/// As a REST API (payload v1) answers; `decode_base64` as when the
/// client's Accept is one of the API's binary media types.
fn rest(payload: &str, decode_base64: bool) -> HttpResponse {
    let ctx = ReplyContext {
        payload_format: PayloadFormat::V1,
        decode_base64,
        ..ctx(InvocationType::RequestResponse)
    };
    invoke_reply_to_http(&ctx, reply(payload))
}

fn sorted_headers(r: &HttpResponse) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(n, _)| !n.starts_with("x-amz"))
        .cloned()
        .collect();
    headers.sort();
    headers
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn each_format_reads_its_own_fields() {
    let payload = r#"{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Both": "a"},
        "multiValueHeaders": {"X-Both": ["a", "b"]}, "cookies": ["s=1"], "body": "x"}"#;
    // REST: headers and multiValueHeaders merge; `cookies` is unknown.
    assert_eq!(
        sorted_headers(&rest(payload, false)),
        pairs(&[
            ("content-type", "text/plain"),
            ("x-both", "a"),
            ("x-both", "b")
        ])
    );
    // HTTP API: `cookies` become Set-Cookie; multiValueHeaders is unknown.
    assert_eq!(
        sorted_headers(&sync(payload)),
        pairs(&[
            ("content-type", "text/plain"),
            ("set-cookie", "s=1"),
            ("x-both", "a")
        ])
    );
}

#[test]
fn a_rest_reply_without_status_code_is_502_an_http_api_one_200() {
    for payload in [r#"{"body": "hi"}"#, r#""just a string""#, "[1, 2]", "42"] {
        let r = rest(payload, true);
        assert_eq!(r.status, 502, "{payload}");
        assert_eq!(r.outcome.label(), "malformed_proxy_response");
        assert!(
            body_json(&r)["message"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object with a statusCode"),
            "{payload}"
        );
        let r = sync(payload);
        assert_eq!(r.status, 200, "{payload}");
        assert_eq!(r.body, payload.as_bytes());
    }
}

#[test]
fn a_rest_api_decodes_base64_only_for_a_binary_accept() {
    let payload = r#"{"statusCode": 200, "headers": {"content-type": "image/png"},
        "body": "iVBORw==", "isBase64Encoded": true}"#;
    assert_eq!(rest(payload, true).body, b"\x89PNG");
    let r = rest(payload, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"iVBORw==");
    // Not decoded, so not checked either: a REST API passes it as text.
    assert_eq!(
        rest(
            r#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
            false
        )
        .body,
        b"!!"
    );
}

fn body_json(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn proxy_response_with_everything() {
    let r = sync(
        r#"{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-One": "1", "X-Both": "a"},
            "cookies": ["s=1; Path=/", "t=2"], "body": "héllo\n", "isBase64Encoded": false}"#,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.body, "héllo\n".as_bytes());
    let mut headers = r.headers.clone();
    headers.sort();
    assert_eq!(
        headers,
        [
            ("content-type", "text/plain"),
            ("set-cookie", "s=1; Path=/"),
            ("set-cookie", "t=2"),
            ("x-amz-executed-version", "$LATEST"),
            ("x-amzn-requestid", "lambda-1"),
            ("x-both", "a"),
            ("x-one", "1"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let r = rest(
        r#"{"statusCode": 201, "headers": {"X-One": "1", "X-Both": "a"},
            "multiValueHeaders": {"X-Both": ["a", "b"], "X-Many": ["1", "2"]}}"#,
        true,
    );
    assert_eq!(
        sorted_headers(&r),
        pairs(&[
            ("content-type", "application/json"),
            ("x-both", "a"),
            ("x-both", "b"),
            ("x-many", "1"),
            ("x-many", "2"),
            ("x-one", "1"),
        ])
    );
}

#[test]
fn proxy_response_minimal_and_base64() {
    let r = sync(r#"{"statusCode": "204"}"#);
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = sync(r#"{"statusCode": 200, "body": "iVBORw==", "isBase64Encoded": true}"#);
    assert_eq!(r.body, b"\x89PNG");
    let r = sync(r#"{"statusCode": 200, "body": "iVBO\nRw", "isBase64Encoded": true}"#);
    assert_eq!(r.body, b"\x89PNG");
    let r = sync(r#"{"statusCode": 200.0, "body": null, "headers": null}"#);
    assert_eq!(r.status, 200);
    let r = sync(r#"{"statusCode": 200, "body": "a\"b\u00e9"}"#);
    assert_eq!(r.body, "a\"bé".as_bytes());
}

#[test]
fn hop_by_hop_and_invalid_headers_are_dropped() {
    let r = sync(
        r#"{"statusCode": 200, "headers": {"Content-Length": "3", "Transfer-Encoding": "chunked",
            ":status": "500", "Bad Name": "x", "X-Split": "a\r\nInjected: 1", "X-Ok": "fine"}}"#,
    );
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"x-ok"), "{names:?}");
    for gone in [
        "content-length",
        "transfer-encoding",
        ":status",
        "bad name",
        "x-split",
    ] {
        assert!(!names.contains(&gone), "{gone}: {names:?}");
    }
}

#[test]
fn malformed_proxy_responses_are_502() {
    for (payload, why) in [
        (
            r#"{"statusCode": "abc"}"#,
            r#"statusCode must be an integer from 200 to 599, got "abc""#,
        ),
        (r#"{"statusCode": -1}"#, "got -1"),
        (r#"{"statusCode": 100}"#, "got 100"),
        (r#"{"statusCode": "101"}"#, r#"got "101""#),
        (r#"{"statusCode": 199}"#, "got 199"),
        (r#"{"statusCode": 99999}"#, "got 99999"),
        (r#"{"statusCode": 99}"#, "got 99"),
        (r#"{"statusCode": 600}"#, "got 600"),
        (r#"{"statusCode": 200.5}"#, "got 200.5"),
        (r#"{"statusCode": true}"#, "got true"),
        (
            r#"{"statusCode": 200, "body": {"a": 1}}"#,
            "body must be a string, got an object",
        ),
        (
            r#"{"statusCode": 200, "body": [1]}"#,
            "body must be a string, got an array",
        ),
        (
            r#"{"statusCode": 200, "body": 5}"#,
            "body must be a string, got a number",
        ),
        (
            r#"{"statusCode": 200, "headers": {"x": 1}}"#,
            "headers.x must be a string, got 1",
        ),
        (
            r#"{"statusCode": 200, "headers": []}"#,
            "headers must be an object",
        ),
        (
            r#"{"statusCode": 200, "multiValueHeaders": {"x": "a"}}"#,
            "multiValueHeaders.x must be an array",
        ),
        (
            r#"{"statusCode": 200, "multiValueHeaders": {"x": [1]}}"#,
            "multiValueHeaders.x must hold strings",
        ),
        (
            r#"{"statusCode": 200, "cookies": "a=1"}"#,
            "cookies must be an array",
        ),
        (
            r#"{"statusCode": 200, "isBase64Encoded": "yes"}"#,
            "isBase64Encoded must be true or false",
        ),
        (
            r#"{"statusCode": 200, "body": "!!!", "isBase64Encoded": true}"#,
            "not valid base64",
        ),
    ] {
        // multiValueHeaders is a REST (v1) field, read only there.
        let r = if payload.contains("multiValueHeaders") {
            rest(payload, true)
        } else {
            sync(payload)
        };
        assert_eq!(r.status, 502, "{payload}");
        let body = body_json(&r);
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "function {ARN} returned a malformed proxy response: "
            )),
            "{message}"
        );
        assert!(message.contains(why), "{payload}: {message}");
        assert_eq!(body["requestId"], "req-1");
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[test]
fn other_payloads_are_200_json_as_is() {
    for payload in [
        r#"{"id": 7, "name": "x"}"#,
        r#"[1, 2]"#,
        r#""text""#,
        "null",
        r#"{"statusCode": null, "x": 1}"#,
        r#"{"body": {"nested": true}}"#,
    ] {
        let r = sync(payload);
        assert_eq!(r.status, 200, "{payload}");
        assert_eq!(r.body, payload.as_bytes());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));
        assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    }
}

#[test]
fn payloads_that_are_not_json_are_502() {
    for payload in [
        "",
        "not json at all",
        "{broken",
        r#"{"statusCode":200,"body":"cut"#,
    ] {
        let r = sync(payload);
        assert_eq!(r.status, 502, "{payload:?}");
        assert_eq!(r.outcome.label(), "malformed_proxy_response");
        assert!(
            body_json(&r)["message"]
                .as_str()
                .unwrap()
                .contains("not JSON"),
            "{payload:?}"
        );
    }
    // Well-formed but not UTF-8 inside a string (found by fuzzing).
    let mut rep = reply("");
    rep.payload = b"{\"sta\xff\": 1}".to_vec();
    let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep);
    assert_eq!(r.status, 502);
}

#[test]
fn event_invocations_are_202() {
    let mut rep = reply("");
    rep.status_code = 202;
    rep.executed_version = String::new();
    let r = invoke_reply_to_http(&ctx(InvocationType::Event), rep);
    assert_eq!(r.status, 202);
    assert_eq!(
        body_json(&r),
        json!({"message": "accepted", "requestId": "req-1"})
    );
    assert_eq!(r.header("x-amz-executed-version"), None);
}

#[test]
fn function_errors() {
    let mut rep = reply(r#"{"errorMessage":"boom","errorType":"Error"}"#);
    rep.function_error = "Unhandled".into();
    let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep.clone());
    assert_eq!(r.status, 502);
    assert_eq!(
        body_json(&r),
        json!({
            "message": format!("function {ARN} failed (Unhandled)"),
            "requestId": "req-1",
            "error": {"errorMessage": "boom", "errorType": "Error"}
        })
    );
    assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));

    let mut c = ctx(InvocationType::RequestResponse);
    c.function_error_status = 500;
    rep.payload = b"plain \xff text".to_vec();
    rep.function_error = "Handled".into();
    let r = invoke_reply_to_http(&c, rep);
    assert_eq!(r.status, 500);
    assert_eq!(body_json(&r)["error"], "plain \u{FFFD} text");
}

/// What the filter makes of the invoker call's answer: the invoker's typed
/// failure (`kind`, in the reply, with its words; its gRPC code is the
/// contract's), or a status of Envoy's own (no kind, only its code counts).
fn answer_with(
    ctx: &ReplyContext<'_>,
    code: u32,
    kind: Option<ErrorKind>,
    message: &str,
) -> HttpResponse {
    match kind {
        Some(kind) => {
            assert_eq!(contract(kind).grpc_code.as_u32(), code, "{kind:?}");
            let reply = Failure::new(kind, message).into_reply();
            reply_to_http(ctx, Ok(&prost::Message::encode_to_vec(&reply)))
        }
        None => reply_to_http(ctx, Err(GrpcStatus { code })),
    }
}

fn answer(code: u32, kind: Option<ErrorKind>, message: &str) -> HttpResponse {
    answer_with(&ctx(InvocationType::RequestResponse), code, kind, message)
}

#[test]
fn invoker_error_kinds() {
    for (code, kind, message, status, text) in [
        (
            5,
            Some(ErrorKind::FunctionNotFound),
            "no such function f",
            502,
            format!("function {ARN} was not found: no such function f"),
        ),
        (
            7,
            Some(ErrorKind::AccessDenied),
            "AccessDeniedException",
            502,
            format!("the gateway's AWS identity may not invoke {ARN}: AccessDeniedException"),
        ),
        (
            7,
            Some(ErrorKind::NotAllowed),
            "not in allow-list",
            502,
            format!(
                "function {ARN} is not in the invoker's allow-list for this endpoint: not in allow-list"
            ),
        ),
        (
            8,
            Some(ErrorKind::Throttled),
            "rate exceeded",
            429,
            format!("function {ARN} is throttled by Lambda; retry later: rate exceeded"),
        ),
        (
            4,
            Some(ErrorKind::Timeout),
            "after 50s",
            504,
            format!("function {ARN} did not answer within 50s: after 50s"),
        ),
        (
            11,
            Some(ErrorKind::PayloadTooLarge),
            "7 MB",
            413,
            "the request or the function's response is over Lambda's payload limit: 7 MB"
                .to_owned(),
        ),
        (
            14,
            Some(ErrorKind::CredentialsUnavailable),
            "no provider",
            503,
            "the gateway has no AWS credentials at the moment: no provider".to_owned(),
        ),
        (
            9,
            Some(ErrorKind::InvalidConfig),
            "unknown endpoint main",
            500,
            format!("the gateway is misconfigured for function {ARN}: unknown endpoint main"),
        ),
        (
            3,
            Some(ErrorKind::InvalidRequest),
            "bad timeout",
            500,
            format!("the invoker refused the request for function {ARN}: bad timeout"),
        ),
        (
            14,
            Some(ErrorKind::LambdaUnavailable),
            "connect error",
            502,
            format!("Lambda could not be reached to invoke {ARN}: connect error"),
        ),
        (
            13,
            Some(ErrorKind::Internal),
            "oops",
            500,
            format!("the invoker failed to invoke {ARN}: oops"),
        ),
        (
            14,
            None,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            503,
            "the lambdagate invoker is unreachable".to_owned(),
        ),
        (
            14,
            None,
            "",
            503,
            "the lambdagate invoker is unreachable".to_owned(),
        ),
        (
            4,
            None,
            "",
            504,
            "the lambdagate invoker did not answer within 51s".to_owned(),
        ),
        (
            13,
            None,
            "cluster lambdagate_invoker: secret internals",
            502,
            "the call to the lambdagate invoker failed (gRPC status 13)".to_owned(),
        ),
        (
            2,
            None,
            "ERROR_KIND_UNSPECIFIED: x",
            502,
            "the call to the lambdagate invoker failed (gRPC status 2)".to_owned(),
        ),
        // A status message that names a kind is only words: kinds come
        // typed, so a proxy in between cannot make one up.
        (
            8,
            None,
            "THROTTLED: rate exceeded",
            502,
            "the call to the lambdagate invoker failed (gRPC status 8)".to_owned(),
        ),
    ] {
        let r = answer(code, kind, message);
        assert_eq!(r.status, status, "{message}");
        assert_eq!(
            body_json(&r),
            json!({"message": text, "requestId": "req-1"}),
            "{message}"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
        let retry = (status == 429).then_some("1");
        assert_eq!(r.header("retry-after"), retry, "{message}");
    }
}

#[test]
fn errors_are_generic_unless_exposed() {
    let mut c = ctx(InvocationType::RequestResponse);
    c.expose_errors = false;
    let secret_text = "db password=hunter2 at /var/task/app.py line 7";
    // A function error: API Gateway's words, nothing of the function's.
    let mut rep = reply(&format!(
        r#"{{"errorMessage":"{secret_text}","errorType":"RuntimeError","stackTrace":["app.py"]}}"#
    ));
    rep.function_error = "Unhandled".into();
    let r = invoke_reply_to_http(&c, rep);
    assert_eq!(r.status, 502);
    assert_eq!(
        body_json(&r),
        json!({"message": "Internal server error", "requestId": "req-1"})
    );
    assert_eq!(r.outcome.label(), "function_error");
    let detail = r.detail.unwrap();
    assert!(detail.contains("req-1") && detail.contains(ARN), "{detail}");

    // The invoker's reasons (AWS's text with principals and accounts).
    for (code, kind, message, status, public) in [
        (
            7,
            Some(ErrorKind::AccessDenied),
            "User: arn:aws:iam::123456789012:user/gw is not authorized",
            502,
            "Internal server error",
        ),
        (
            5,
            Some(ErrorKind::FunctionNotFound),
            "Function not found: arn:aws:lambda:us-east-1:123456789012:function:f",
            502,
            "Internal server error",
        ),
        (
            7,
            Some(ErrorKind::NotAllowed),
            "endpoint `orders` does not allow it",
            502,
            "Internal server error",
        ),
        (
            14,
            Some(ErrorKind::LambdaUnavailable),
            "dns error for lambda.us-east-1.amazonaws.com",
            502,
            "Internal server error",
        ),
        (
            9,
            Some(ErrorKind::InvalidConfig),
            "endpoint `orders` is not configured",
            500,
            "Internal server error",
        ),
        (
            8,
            Some(ErrorKind::Throttled),
            "Rate exceeded for account 123456789012",
            429,
            "Too Many Requests",
        ),
        (
            4,
            Some(ErrorKind::Timeout),
            "after 50s",
            504,
            "Endpoint request timed out",
        ),
        (
            14,
            Some(ErrorKind::CredentialsUnavailable),
            "no provider for role arn:aws:iam::1:role/r",
            503,
            "Service Unavailable",
        ),
        (14, None, "", 503, "Service Unavailable"),
        (4, None, "", 504, "Endpoint request timed out"),
        (
            13,
            None,
            "cluster lambdagate_invoker: internals",
            502,
            "Internal server error",
        ),
    ] {
        let r = answer_with(&c, code, kind, message);
        assert_eq!(r.status, status, "{message}");
        assert_eq!(
            body_json(&r),
            json!({"message": public, "requestId": "req-1"}),
            "{message}"
        );
        // The invoker's reason is kept for the log; Envoy's own status
        // text (no kind) is not trusted enough to log as a reason.
        let detail = r.detail.unwrap();
        assert!(kind.is_none() || detail.contains(message), "{detail}");
    }

    // A malformed proxy response: the reason goes to the log only.
    let r = invoke_reply_to_http(&c, reply(r#"{"statusCode": "abc"}"#));
    assert_eq!(r.status, 502);
    assert_eq!(body_json(&r)["message"], "Internal server error");
    assert!(r.detail.unwrap().contains("statusCode"));

    // Client errors say what was wrong with the request either way.
    let r = GatewayError::BodyTooLarge {
        size: 7,
        limit: 6,
        invocation_type: InvocationType::RequestResponse,
    }
    .to_response("r", false);
    assert_eq!(r.status, 413);
    assert!(
        body_json(&r)["message"]
            .as_str()
            .unwrap()
            .contains("7 bytes")
    );
    assert_eq!(r.detail, None);
}

#[test]
fn a_function_cannot_set_the_lambda_request_id() {
    let r = sync(
        r#"{"statusCode": 200, "headers": {"X-Amzn-RequestId": "forged", "x-amz-executed-version": "9"}}"#,
    );
    assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    assert_eq!(
        r.headers
            .iter()
            .filter(|(n, _)| n == "x-amzn-requestid")
            .count(),
        1
    );
    let mut rep = reply(r#"{"statusCode": 200, "headers": {"x-amzn-requestid": "forged"}}"#);
    rep.lambda_request_id = String::new();
    let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep);
    assert_eq!(r.header("x-amzn-requestid"), None);
}

#[test]
fn undecodable_reply_is_502() {
    let r = reply_to_http(&ctx(InvocationType::RequestResponse), Ok(b"\xff\xff\xff"));
    assert_eq!(r.status, 502);
    assert_eq!(
        body_json(&r)["message"],
        "the lambdagate invoker's reply could not be read"
    );
}

#[test]
fn route_errors() {
    let r = GatewayError::NoRoute {
        method: "GET".into(),
        path: "/users/nope".into(),
    }
    .to_response("r", false);
    assert_eq!(r.status, 404);
    assert_eq!(
        body_json(&r),
        json!({"message": "no resource matches GET /users/nope", "requestId": "r"})
    );
    let r = GatewayError::MethodNotAllowed {
        method: "DELETE".into(),
        path: "/users/user/7".into(),
        allow: vec![Verb::Get, Verb::Post],
    }
    .to_response("r", false);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(
        body_json(&r)["message"],
        "DELETE is not allowed on /users/user/7; allowed: GET, POST"
    );
}

#[test]
fn a_usage_refusal_speaks_api_gateways_words_even_to_an_exposing_api() {
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
    for (kind, status, message, retry_after) in [
        (ErrorKind::InvalidApiKey, 403, "Forbidden", None),
        (
            ErrorKind::PlanThrottled,
            429,
            "Too Many Requests",
            Some("3"),
        ),
        (ErrorKind::QuotaExceeded, 429, "Limit Exceeded", Some("3")),
        (
            ErrorKind::UsageStoreUnavailable,
            503,
            "Service Unavailable",
            Some("3"),
        ),
    ] {
        let failure = Failure::new(kind, "GET /x: key id 0123456789, plan gold");
        let failure = if retry_after.is_some() {
            failure.retry_after(3)
        } else {
            failure
        };
        let error = GatewayError::from_failure(failure, arn, Timeout::DEFAULT);
        for expose in [false, true] {
            let r = error.to_response("rid-9", expose);
            assert_eq!(r.status, status, "{kind:?}");
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body, json!({"message": message, "requestId": "rid-9"}));
            let header = r
                .headers
                .iter()
                .find(|(k, _)| k == "retry-after")
                .map(|(_, v)| v.as_str());
            assert_eq!(header, retry_after, "{kind:?}");
            // The reason is the operator's: in the log line, never the body.
            assert!(
                r.detail.as_deref().unwrap().contains("plan gold"),
                "{kind:?}"
            );
        }
    }
}
