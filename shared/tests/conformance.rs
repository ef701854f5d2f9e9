//! The events lambdagate builds, read by the official Rust types for API
//! Gateway events (`aws_lambda_events`) and turned into `http::Request`s
//! by `lambda_http`, as a function built on the Rust runtime would see
//! them.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use http::Method;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use common::{ACCOUNT, SEED_BODY};

/// An API Gateway id: `len` characters of `[0-9a-z]`.
fn assert_id(id: Option<&str>, len: usize) {
    let id = id.unwrap();
    assert_eq!(id.len(), len, "{id}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{id}"
    );
}

fn seed_event(context: &str) -> String {
    let config = common::config();
    String::from_utf8(common::event(
        &config,
        common::seed_headers(context),
        SEED_BODY,
    ))
    .unwrap()
}

fn event(headers: Vec<(String, String)>, body: &[u8]) -> String {
    String::from_utf8(common::event(&common::config(), headers, body)).unwrap()
}

#[test]
fn v1_event_reads_as_api_gateway_proxy_request() {
    let json = seed_event("users");
    let e: ApiGatewayProxyRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(e.http_method, Method::POST);
    assert_eq!(e.resource.as_deref(), Some("/user/{id}"));
    assert_eq!(e.path.as_deref(), Some("/users/user/7"));
    assert_eq!(e.headers["host"], "localhost:8243");
    assert_eq!(e.headers["content-type"], "application/json");
    assert_eq!(e.headers["accept"], "text/plain");
    let accept: Vec<&str> = e
        .multi_value_headers
        .get_all("accept")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(accept, ["application/json", "text/plain"]);
    assert_eq!(e.query_string_parameters.first("firstName"), Some("John"));
    assert_eq!(e.query_string_parameters.first("tag"), Some("b c"));
    assert_eq!(
        e.multi_value_query_string_parameters.all("tag"),
        Some(vec!["a", "b c"])
    );
    assert_eq!(e.path_parameters.get("id").map(String::as_str), Some("7"));
    assert!(e.stage_variables.is_empty());
    assert_eq!(e.body.as_deref(), Some(r#"{"message":"Hello, World!"}"#));
    assert!(!e.is_base64_encoded);

    let c = &e.request_context;
    assert_eq!(c.account_id.as_deref(), Some(ACCOUNT));
    assert_id(c.apiid.as_deref(), 10);
    assert_id(c.resource_id.as_deref(), 6);
    assert_eq!(c.stage.as_deref(), Some("$default"));
    assert_eq!(
        c.request_id.as_deref(),
        Some("9f2d4c1e-7b3a-4e55-8a6e-1c2b3d4e5f60")
    );
    assert_eq!(
        c.request_time.as_deref(),
        Some("24/Nov/2026:21:50:40 +0000")
    );
    assert_eq!(c.request_time_epoch, 1_795_557_040_123);
    assert_eq!(c.path.as_deref(), Some("/users/user/7"));
    assert_eq!(c.resource_path.as_deref(), Some("/user/{id}"));
    assert_eq!(c.http_method, Method::POST);
    assert_eq!(c.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(c.domain_name.as_deref(), Some("api.example.com"));
    assert_eq!(c.identity.source_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(c.identity.user_agent.as_deref(), Some("curl/8.5.0"));
}

#[test]
fn v1_event_becomes_the_expected_http_request() {
    let request = lambda_http::request::from_str(&seed_event("users")).unwrap();
    assert_eq!(request.method(), Method::POST);
    // Stage `$default`: lambda_http routes on the path the client used,
    // with no stage in front of it.
    assert_eq!(request.uri().path(), "/users/user/7");
    assert_eq!(request.raw_http_path(), "/users/user/7");
    assert_eq!(request.uri().host(), Some("localhost"));
    assert_eq!(request.uri().port_u16(), Some(8243));
    assert_eq!(request.path_parameters().first("id"), Some("7"));
    let query = request.query_string_parameters();
    assert_eq!(query.first("firstName"), Some("John"));
    assert_eq!(query.first("lastName"), Some("Doe"));
    assert_eq!(query.all("tag"), Some(vec!["a", "b c"]));
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(request.headers()["user-agent"], "curl/8.5.0");
    assert_eq!(request.headers()["cookie"], "session=abc; theme=dark");
    assert_eq!(
        request.body(),
        &Body::Text(r#"{"message":"Hello, World!"}"#.to_owned())
    );
    match request.request_context() {
        RequestContext::ApiGatewayV1(c) => {
            assert_eq!(c.account_id.as_deref(), Some(ACCOUNT));
            assert_eq!(c.stage.as_deref(), Some("$default"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v2_event_reads_as_http_api_request() {
    let json = seed_event("users2");
    let e: ApiGatewayV2httpRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(e.version.as_deref(), Some("2.0"));
    assert_eq!(e.route_key.as_deref(), Some("POST /user/{id}"));
    assert_eq!(e.raw_path.as_deref(), Some("/users2/user/7"));
    assert_eq!(
        e.raw_query_string.as_deref(),
        Some("lastName=Doe&firstName=John&tag=a&tag=b%20c")
    );
    assert_eq!(
        e.cookies,
        Some(vec!["session=abc".to_owned(), "theme=dark".to_owned()])
    );
    assert!(e.headers.get("cookie").is_none());
    assert_eq!(e.headers["host"], "localhost:8243");
    assert_eq!(e.headers["accept"], "application/json,text/plain");
    assert_eq!(e.query_string_parameters.first("firstName"), Some("John"));
    assert_eq!(e.query_string_parameters.all("tag"), Some(vec!["a", "b c"]));
    assert_eq!(e.path_parameters.get("id").map(String::as_str), Some("7"));
    assert_eq!(e.body.as_deref(), Some(r#"{"message":"Hello, World!"}"#));
    assert!(!e.is_base64_encoded);

    let c = &e.request_context;
    assert_eq!(c.account_id.as_deref(), Some(ACCOUNT));
    assert_id(c.apiid.as_deref(), 10);
    assert_eq!(c.route_key.as_deref(), Some("POST /user/{id}"));
    assert_eq!(c.stage.as_deref(), Some("$default"));
    assert_eq!(c.domain_name.as_deref(), Some("api.example.com"));
    assert_eq!(c.domain_prefix.as_deref(), Some("api"));
    assert_eq!(c.time.as_deref(), Some("24/Nov/2026:21:50:40 +0000"));
    assert_eq!(c.time_epoch, 1_795_557_040_123);
    assert_eq!(c.http.method, Method::POST);
    assert_eq!(c.http.path.as_deref(), Some("/users2/user/7"));
    assert_eq!(c.http.protocol.as_deref(), Some("HTTP/1.1"));
    assert_eq!(c.http.source_ip.as_deref(), Some("192.0.2.10"));
    assert_eq!(c.http.user_agent.as_deref(), Some("curl/8.5.0"));
}

#[test]
fn v2_event_becomes_the_expected_http_request() {
    let request = lambda_http::request::from_str(&seed_event("users2")).unwrap();
    assert_eq!(request.method(), Method::POST);
    assert_eq!(request.uri().path(), "/users2/user/7");
    assert_eq!(
        request.uri().query(),
        Some("lastName=Doe&firstName=John&tag=a&tag=b%20c")
    );
    assert_eq!(request.path_parameters().first("id"), Some("7"));
    let query = request.query_string_parameters();
    assert_eq!(query.first("firstName"), Some("John"));
    assert_eq!(query.all("tag"), Some(vec!["a", "b c"]));
    assert_eq!(request.headers()["cookie"], "session=abc; theme=dark");
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(
        request.body(),
        &Body::Text(r#"{"message":"Hello, World!"}"#.to_owned())
    );
    assert!(matches!(
        request.request_context(),
        RequestContext::ApiGatewayV2(_)
    ));
}

#[test]
fn binary_bodies_arrive_as_bytes() {
    let png: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff";
    for context in ["users", "users2"] {
        let headers = common::headers(
            "POST",
            &format!("/{context}/user/42"),
            &[("content-type", "image/png")],
        );
        let json = event(headers, png);
        let request = lambda_http::request::from_str(&json).unwrap();
        assert_eq!(request.body(), &Body::Binary(png.to_vec()), "{context}");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["isBase64Encoded"], true, "{context}");
    }
}

#[test]
fn greedy_and_decoded_path_parameters_without_query_or_body() {
    for context in ["users", "users2"] {
        let headers = common::headers(
            "DELETE",
            &format!("/{context}/files/reports/2026/Q4%20final%2Fv2.pdf"),
            &[],
        );
        let json = event(headers, b"");
        let request = lambda_http::request::from_str(&json).unwrap();
        assert_eq!(request.method(), Method::DELETE);
        assert_eq!(
            request.path_parameters().first("path"),
            Some("reports/2026/Q4 final/v2.pdf"),
            "{context}"
        );
        assert!(request.query_string_parameters().is_empty(), "{context}");
        assert_eq!(request.body(), &Body::Empty, "{context}");
        assert_eq!(
            request.raw_http_path(),
            format!("/{context}/files/reports/2026/Q4%20final%2Fv2.pdf")
        );
    }
    // Payload 1.0: nulls where API Gateway puts nulls.
    let json = event(common::headers("GET", "/users/files/a", &[]), b"");
    let e: ApiGatewayProxyRequest = serde_json::from_str(&json).unwrap();
    assert!(e.query_string_parameters.is_empty());
    assert!(e.multi_value_query_string_parameters.is_empty());
    assert_eq!(e.body, None);
}

#[test]
fn root_resource_without_path_parameters() {
    let json = event(common::headers("GET", "/users2", &[]), b"");
    let e: ApiGatewayV2httpRequest = serde_json::from_str(&json).unwrap();
    assert_eq!(e.route_key.as_deref(), Some("GET /"));
    assert!(e.path_parameters.is_empty());
    let request = lambda_http::request::from_str(&json).unwrap();
    assert_eq!(request.uri().path(), "/users2");
    assert!(request.path_parameters().is_empty());
}
