//! Shared by the integration tests: one configuration with an API per
//! payload format and the seed document's sample request.
#![allow(dead_code)]

use lambdagate_core::{CompiledConfig, Decision, HttpResponse, RequestInfo, RoutePlan};

pub const ACCOUNT: &str = "123456789012";
pub const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:create-user:live";

/// The same resources under four contexts, one per payload format.
pub fn config() -> CompiledConfig {
    let mut apis = Vec::new();
    for (name, format, extra) in [
        // A REST API that treats images as binary, as the tests send them.
        ("users", "v1", r#""binary_media_types": ["image/png"],"#),
        ("users2", "v2", ""),
        ("userswso2", "wso2", ""),
        ("raw", "passthrough", ""),
    ] {
        apis.push(format!(
            r#"{{"name": "{name}", "version": "v1", "context": "/{name}", "endpoint": "main",
                "payload_format": "{format}", "domain_name": "api.example.com", {extra}
                "resources": [
                  {{"verb": "POST", "uri_template": "/user/{{id}}", "arn": "{ARN}"}},
                  {{"verb": "ANY", "uri_template": "/files/{{path+}}",
                    "arn": "arn:aws:lambda:eu-west-1:210987654321:function:files"}},
                  {{"verb": "GET", "uri_template": "/",
                    "arn": "arn:aws:lambda:eu-west-1:210987654321:function:root"}}
                ]}}"#
        ));
    }
    let json = format!(
        r#"{{"invoker_cluster": "lambdagate_invoker", "apis": [{}]}}"#,
        apis.join(",")
    );
    lambdagate_core::parse(json.as_bytes()).unwrap()
}

pub fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        (":method", method),
        (":path", path),
        (":authority", "localhost:8243"),
        (":scheme", "https"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    headers
}

/// The seed document's example, as Envoy hands it to the filter.
pub fn seed_headers(context: &str) -> Vec<(String, String)> {
    headers(
        "POST",
        &format!("/{context}/user/7?lastName=Doe&firstName=John&tag=a&tag=b%20c"),
        &[
            ("origin", "https://localhost:9443"),
            ("referer", "https://localhost:9443/"),
            ("content-type", "application/json"),
            ("user-agent", "curl/8.5.0"),
            ("accept", "application/json"),
            ("accept", "text/plain"),
            ("cookie", "session=abc; theme=dark"),
            ("x-request-id", "9f2d4c1e-7b3a-4e55-8a6e-1c2b3d4e5f60"),
        ],
    )
}

pub const SEED_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;

pub fn info() -> RequestInfo {
    RequestInfo {
        request_id: String::new(),
        source_ip: "192.0.2.10:51234".into(),
        // 24/Nov/2026:21:50:40.123 UTC
        now_ms: 1_795_557_040_123,
        protocol: "HTTP/1.1".into(),
    }
}

pub fn plan(config: &CompiledConfig, headers: Vec<(String, String)>) -> Box<RoutePlan> {
    match config.on_request_headers(headers, info()) {
        Decision::NeedBody(plan) => plan,
        other => panic!("expected a route, got {other:?}"),
    }
}

pub fn respond(config: &CompiledConfig, headers: Vec<(String, String)>) -> HttpResponse {
    match config.on_request_headers(headers, info()) {
        Decision::Respond(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The event payload for a request.
pub fn event(config: &CompiledConfig, headers: Vec<(String, String)>, body: &[u8]) -> Vec<u8> {
    plan(config, headers)
        .build_invoke(body)
        .unwrap()
        .lambda_event()
        .unwrap()
}

/// The reviewed event fixtures: the seed document's request through the
/// API of each format (context), and the file in `tests/fixtures` it must
/// match. `cargo run -p lambdagate-core --example bless_golden_events`
/// rewrites the files.
pub const GOLDEN_EVENTS: &[(&str, &str)] = &[
    ("users", "event_v1.json"),
    ("users2", "event_v2.json"),
    ("userswso2", "event_wso2.json"),
];

/// The event the seed document's request through `context` gives, as JSON.
pub fn golden_event(context: &str) -> serde_json::Value {
    let config = config();
    let payload = event(&config, seed_headers(context), SEED_BODY);
    serde_json::from_slice(&payload).unwrap()
}

/// Where a golden fixture lives.
pub fn fixture_path(fixture: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture)
}
