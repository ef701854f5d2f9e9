//! The v1 / v2 / wso2 / passthrough event builders, through the public API
//! the wasm glue uses: `parse` a fixed config, `on_request_headers` with a
//! fuzzed request, `build_invoke` with a fuzzed body.
//!
//! Invariants: nothing panics; every local response is a sane HTTP
//! response; v1/v2/wso2 events are valid JSON; when the request is one
//! Envoy would pass on (valid method token, header names and values), the
//! v1 and v2 events read as the official `aws_lambda_events` types and
//! carry the body unchanged (text, or base64 of the bytes); passthrough
//! sends the body as is.
#![no_main]

use arbitrary::Arbitrary;
use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambdagate_core::{CompiledConfig, Decision, HttpResponse, PayloadFormat, RequestInfo};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// One API per payload format, each with a parameter, a greedy parameter
/// and a root resource; `events` is asynchronous (Event) to reach the
/// 1 MB limit and the 202 path.
fn config() -> &'static CompiledConfig {
    static CONFIG: OnceLock<CompiledConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let mut apis = Vec::new();
        for (name, format, extra) in [
            // A REST API with binary media types, so both its body rules run.
            (
                "users",
                "v1",
                r#""binary_media_types": ["application/octet-stream", "image/*"],"#,
            ),
            ("users2", "v2", ""),
            ("userswso2", "wso2", ""),
            ("raw", "passthrough", ""),
        ] {
            apis.push(format!(
                r#"{{"name": "{name}", "version": "v1", "context": "/{name}", "endpoint": "main",
                    "payload_format": "{format}", {extra}
                    "resources": [
                      {{"verb": "POST", "uri_template": "/user/{{id}}",
                        "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live"}},
                      {{"verb": "ANY", "uri_template": "/files/{{path+}}",
                        "arn": "arn:aws:lambda:eu-west-1:210987654321:function:files"}},
                      {{"verb": "GET", "uri_template": "/",
                        "arn": "arn:aws:lambda:eu-west-1:210987654321:function:root"}},
                      {{"verb": "ANY", "uri_template": "/events/{{kind}}/{{id}}",
                        "arn": "arn:aws:lambda:eu-west-1:210987654321:function:ingest",
                        "invocation_type": "Event"}}
                    ]}}"#
            ));
        }
        let json = format!(r#"{{"apis": [{}]}}"#, apis.join(","));
        lambdagate_core::parse(json.as_bytes()).expect("the fuzz config parses")
    })
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Method,
    context: u8,
    resource: u8,
    path: String,
    query: Option<String>,
    headers: Vec<(Name, String)>,
    body: Vec<u8>,
    request_id: String,
    source_ip: String,
    now_ms: u64,
    protocol: String,
}

#[derive(Arbitrary, Debug)]
enum Method {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Other(String),
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND",
];
const CONTEXTS: &[&str] = &["/users", "/users2", "/userswso2", "/raw", "", "/usersx"];
const RESOURCES: &[&str] = &["/user/", "/files/", "/", "/events/", ""];
const NAMES: &[&str] = &[
    "content-type",
    "cookie",
    "host",
    ":authority",
    "x-request-id",
    "content-length",
    "user-agent",
    "accept",
    "x-forwarded-for",
    ":scheme",
    "Content-Type",
    "set-cookie",
];

/// What an HTTP/1 or HTTP/2 codec in Envoy would let through.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

fn assert_sane(response: &HttpResponse) {
    assert!((200..=599).contains(&response.status), "{response:?}");
    for (name, value) in &response.headers {
        assert!(
            http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            "{name:?}"
        );
        assert_eq!(name, &name.to_ascii_lowercase());
        assert!(
            http::HeaderValue::from_str(value).is_ok(),
            "{name}: {value:?}"
        );
    }
}

/// The body as the event carries it: text, or base64 of the bytes.
fn check_body(body: Option<&str>, is_base64: bool, sent: &[u8]) {
    match body {
        None => assert!(sent.is_empty(), "body dropped"),
        Some(body) if is_base64 => {
            assert_eq!(STANDARD.decode(body).expect("valid base64"), sent);
        }
        // A REST API passes a body that is not one of its binary media
        // types as text, bytes that are not UTF-8 replaced.
        Some(body) => assert_eq!(body, String::from_utf8_lossy(sent)),
    }
}

fuzz_target!(|input: Input| {
    let config = config();
    let method = match &input.method {
        Method::Known(i) => METHODS[usize::from(*i) % METHODS.len()].to_owned(),
        Method::Other(s) => s.clone(),
    };
    let raw_path = format!(
        "{}{}{}",
        CONTEXTS[usize::from(input.context) % CONTEXTS.len()],
        RESOURCES[usize::from(input.resource) % RESOURCES.len()],
        input.path
    );
    let path_and_query = match &input.query {
        Some(q) => format!("{raw_path}?{q}"),
        None => raw_path,
    };
    // The path the event names: up to the first `?`.
    let path = path_and_query
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut headers = vec![
        (":method".to_owned(), method.clone()),
        (":path".to_owned(), path_and_query.clone()),
    ];
    for (name, value) in input.headers.iter().take(32) {
        let name = match name {
            Name::Known(i) => NAMES[usize::from(*i) % NAMES.len()].to_owned(),
            Name::Other(s) => s.clone(),
        };
        headers.push((name, value.clone()));
    }
    // Envoy hands the filter lower-case, valid names and values without
    // CR/LF/NUL; only such requests are held to the official types.
    let envoy_valid = is_token(&method)
        && !path_and_query.contains(['\r', '\n', '\0', ' '])
        && headers.iter().skip(2).all(|(n, v)| {
            let plain = n.strip_prefix(':').unwrap_or(n);
            is_token(plain) && *n == n.to_ascii_lowercase() && is_field_value(v)
        })
        && input.now_ms <= i64::MAX as u64;
    let info = RequestInfo {
        request_id: input.request_id.clone(),
        source_ip: input.source_ip.clone(),
        now_ms: input.now_ms,
        protocol: input.protocol.clone(),
    };
    let plan = match config.on_request_headers(headers, info) {
        Decision::Continue => return,
        Decision::Respond(response) => return assert_sane(&response),
        Decision::NeedBody(plan) => plan,
    };
    let invoke = match plan.build_invoke(input.body.as_slice()) {
        Err(response) => return assert_sane(&response),
        Ok(invoke) => invoke,
    };
    assert_eq!(invoke.payload, input.body, "the raw body goes beside the head");
    // What the invoker makes of the head and the body.
    let event = invoke.lambda_event().expect("the filter's head finishes");
    let payload = &event;
    match plan.target().payload_format() {
        PayloadFormat::Passthrough => assert_eq!(payload, &input.body),
        PayloadFormat::Wso2 => {
            // JSON by the grammar: the body rides in as written, and a number
            // like 1e999 is valid JSON that `Value` would refuse.
            serde_json::from_slice::<serde::de::IgnoredAny>(payload).expect("wso2 event is JSON");
        }
        PayloadFormat::V1 => {
            serde_json::from_slice::<serde::de::IgnoredAny>(payload).expect("v1 event is JSON");
            if envoy_valid {
                let event: ApiGatewayProxyRequest =
                    serde_json::from_slice(payload).unwrap_or_else(|e| {
                        panic!("v1 event: {e}: {}", String::from_utf8_lossy(payload))
                    });
                assert_eq!(event.http_method.as_str(), method);
                assert_eq!(event.path.as_deref(), Some(path.as_str()));
                check_body(event.body.as_deref(), event.is_base64_encoded, &input.body);
            }
        }
        PayloadFormat::V2 => {
            serde_json::from_slice::<serde::de::IgnoredAny>(payload).expect("v2 event is JSON");
            if envoy_valid {
                let event: ApiGatewayV2httpRequest = serde_json::from_slice(payload)
                    .unwrap_or_else(|e| {
                        panic!("v2 event: {e}: {}", String::from_utf8_lossy(payload))
                    });
                assert_eq!(event.request_context.http.method.as_str(), method);
                check_body(event.body.as_deref(), event.is_base64_encoded, &input.body);
            }
        }
    }
    let encoded = invoke.encode();
    assert!(!encoded.is_empty());
});
