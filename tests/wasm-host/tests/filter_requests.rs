//! The compiled lambdagate filter (`lambdagate_filter.wasm`) driven through
//! the wasmtime proxy-wasm host as Envoy drives it: configuration, routing,
//! the request it sends the invoker, and the response the client gets for
//! every kind of reply and failure.
//!
//! Needs the filter built first:
//! `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use lambdagate_core::contract::contract;
use lambdagate_proto::{ErrorKind, InvocationType};
use lambdagate_wasm_host::{Action, GrpcDispatch, LogLevel, status};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------
// on_configure

#[test]
fn a_good_config_is_accepted() {
    let mut host = load();
    let outcome = host.configure(config().to_string()).unwrap();
    assert!(outcome.ok, "{:?}", outcome.logs);
    let messages: Vec<&str> = outcome.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        ["lambdagate: configured, invoker cluster `lambdagate_invoker`"]
    );

    // A refused update leaves the working configuration in place.
    assert!(!host.configure("{}").unwrap().ok);
    let (stream, _) = send(&mut host, headers("GET", "/users/user/7", &[]), &[]);
    assert_eq!(request_of(&only_call(&host, stream)).function_arn, GET_USER);
}

/// Each broken config is refused (Envoy then rejects the plugin) with one
/// error line saying where and what.
#[test]
fn malformed_configs_are_refused_with_where_and_what() {
    let resource0 = "apis[0] (users).resources[0] (POST /user/{id})";
    let mut bad_arn = config();
    bad_arn["apis"][0]["resources"][0]["arn"] = json!("arn:aws:lambda:us-east-1:1234:function:f");
    let mut long_timeout = config();
    long_timeout["apis"][0]["resources"][0]["timeout_seconds"] = json!(901);
    let mut unknown_field = config();
    unknown_field["apis"][0]["resources"][1]["timeout"] = json!(5);
    let mut duplicate_context = config();
    duplicate_context["apis"][1]["context"] = json!("/users");
    let mut no_apis = config();
    no_apis["apis"] = json!([]);

    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "bad ARN",
            bad_arn.to_string(),
            format!("{resource0}.arn"),
            "12-digit AWS account id",
        ),
        (
            "timeout 901",
            long_timeout.to_string(),
            format!("{resource0}.timeout_seconds"),
            "allowed is 1s to 15m (900s)",
        ),
        (
            "unknown field",
            unknown_field.to_string(),
            "apis[0].resources[1].timeout".to_owned(),
            "unknown field `timeout`",
        ),
        (
            "duplicate context",
            duplicate_context.to_string(),
            "apis[1] (users2).context".to_owned(),
            "the context `/users` is already used by apis[0] (users)",
        ),
        (
            "no APIs",
            no_apis.to_string(),
            "apis".to_owned(),
            "at least one API is required",
        ),
        (
            "empty",
            String::new(),
            "config".to_owned(),
            "the configuration is empty; set it to the lambdagate JSON (invoker_cluster, apis)",
        ),
        (
            "blank",
            " \n".to_owned(),
            "config".to_owned(),
            "the configuration is empty",
        ),
        (
            "not JSON",
            "apis: [users]".to_owned(),
            "config".to_owned(),
            "expected value",
        ),
        (
            "truncated JSON",
            r#"{"apis": [{"name": "users", "version": "#.to_owned(),
            "apis[0].version".to_owned(),
            "EOF while parsing a value",
        ),
    ];
    for (name, text, at, what) in cases {
        let mut host = load();
        let outcome = host.configure(&text).unwrap();
        assert!(!outcome.ok, "{name}: accepted");
        let errors: Vec<&str> = outcome
            .logs
            .iter()
            .filter(|l| l.level == LogLevel::Error)
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(errors.len(), 1, "{name}: {:?}", outcome.logs);
        let prefix = format!("lambdagate: invalid plugin configuration: {at}: ");
        assert!(
            errors[0].starts_with(&prefix),
            "{name}: expected `{prefix}...`, got `{}`",
            errors[0]
        );
        assert!(
            errors[0].contains(what),
            "{name}: `{what}` missing from `{}`",
            errors[0]
        );
        // No configuration: the filter lets requests through untouched
        // (in Envoy the plugin is rejected and never sees one).
        let (stream, actions) = send(&mut host, headers("GET", "/users/user/7", &[]), &[]);
        assert_eq!(actions, [Action::Continue], "{name}");
        no_response(&host, stream);
        assert!(host.grpc_calls().is_empty(), "{name}");
    }
}

// ---------------------------------------------------------------------------
// Routing

#[test]
fn requests_outside_every_api_continue_untouched() {
    let mut host = filter();
    for path in [
        "/",
        "/other",
        "/usersx/user/7",
        "/Users/user/7",
        "/users3",
        "*",
        "",
    ] {
        let (stream, actions) = send(&mut host, headers("POST", path, &[]), &[b"{}", b""]);
        assert_eq!(actions, [Action::Continue; 3], "{path}");
        no_response(&host, stream);
        host.end_stream(stream).unwrap();
    }
    // No :path or :method at all (not an HTTP request Envoy would route).
    let (stream, actions) = send(&mut host, vec![(":method".into(), "GET".into())], &[]);
    assert_eq!(actions, [Action::Continue]);
    no_response(&host, stream);
    assert!(host.grpc_calls().is_empty(), "{:?}", host.grpc_calls());
}

#[test]
fn no_matching_resource_is_404_json() {
    let mut host = filter();
    for (method, path, shown) in [
        ("GET", "/users/nope?x=1", "/users/nope"),
        ("GET", "/users", "/users"),
        ("GET", "/users/user/7/", "/users/user/7/"),
        ("POST", "/users2/other", "/users2/other"),
    ] {
        let (stream, actions) = send(
            &mut host,
            headers(method, path, &[("x-request-id", "rid-404")]),
            &[],
        );
        assert_eq!(actions, [Action::Pause], "{path}");
        let response = only_response(&host, stream);
        let body = error_body(&response, 404, "rid-404");
        assert_eq!(
            body,
            json!({"message": format!("no resource matches {method} {shown}"), "requestId": "rid-404"})
        );
        assert_eq!(response.headers.len(), 1, "{:?}", response.headers);
    }
    assert!(host.grpc_calls().is_empty());
}

#[test]
fn wrong_method_is_405_with_allow() {
    let mut host = filter();
    let (stream, actions) = send(&mut host, headers("DELETE", "/users/user/7", &[]), &[]);
    assert_eq!(actions, [Action::Pause]);
    let response = only_response(&host, stream);
    let body = error_body(&response, 405, "rid-1");
    assert_eq!(response.header("allow"), Some("GET, POST, PUT"));
    assert_eq!(
        body["message"],
        "DELETE is not allowed on /users/user/7; allowed: GET, POST, PUT"
    );

    // Even with a body on its way: answered at header time, body ignored.
    let (stream, actions) = send(
        &mut host,
        headers("GET", "/users/events", &[("content-length", "2")]),
        &[b"{}"],
    );
    assert_eq!(actions[0], Action::Pause);
    assert_eq!(only_response(&host, stream).header("allow"), Some("POST"));
    assert!(host.grpc_calls().is_empty());
}

#[test]
fn get_without_body_dispatches_at_header_time() {
    let mut host = filter();
    let (stream, actions) = send(
        &mut host,
        headers(
            "GET",
            "/users/user/j%C3%B6rg?verbose=1&tag=a&tag=b+c",
            &[("accept", "application/json"), ("x-request-id", "rid-get")],
        ),
        &[],
    );
    assert_eq!(actions, [Action::Pause]);
    no_response(&host, stream);
    let call = only_call(&host, stream);
    assert_eq!(call.timeout_ms, 51_000, "route timeout 50 s + 1 s");
    let request = request_of(&call);
    assert_eq!(request.function_arn, GET_USER);
    assert_eq!(request.endpoint, "main");
    assert_eq!(request.timeout_ms, 50_000);
    assert_eq!(
        request.invocation_type,
        InvocationType::RequestResponse as i32
    );
    assert_eq!(request.request_id, "rid-get");

    let event = event_of(&request);
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["resource"], "/user/{id}");
    assert_eq!(event["path"], "/users/user/j%C3%B6rg");
    assert_eq!(event["pathParameters"], json!({"id": "jörg"}));
    assert_eq!(
        event["queryStringParameters"],
        json!({"verbose": "1", "tag": "b c"})
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"verbose": ["1"], "tag": ["a", "b c"]})
    );
    assert_eq!(event["headers"]["accept"], "application/json");
    assert_eq!(event["headers"]["host"], "api.example.com:10000");
    assert_eq!(event["headers"]["x-request-id"], "rid-get");
    assert!(
        event["headers"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with(':')),
        "{event}"
    );
    assert_eq!(
        event["multiValueHeaders"]["accept"],
        json!(["application/json"])
    );
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["stageVariables"], Value::Null);
    let context = &event["requestContext"];
    assert_eq!(context["requestId"], "rid-get");
    assert_eq!(context["accountId"], "123456789012");
    // Derived from the API's name: stable, API Gateway's shape.
    let api_id = context["apiId"].as_str().unwrap();
    assert!(
        api_id.len() == 10
            && api_id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()),
        "{api_id}"
    );
    assert_eq!(context["resourcePath"], "/user/{id}");
    assert_eq!(context["httpMethod"], "GET");
    assert_eq!(context["identity"]["sourceIp"], "192.0.2.10");
    assert_eq!(context["protocol"], "HTTP/1.1");
    assert_eq!(context["requestTimeEpoch"], NOW_MS);
    assert_eq!(context["requestTime"], "24/Nov/2026:21:50:40 +0000");

    // The reply completes the stream.
    host.grpc_receive(token(&call), &encode(&reply(proxied(r#"{"id":"jörg"}"#))))
        .unwrap();
    let response = only_response(&host, stream);
    assert_eq!(response.status, 200);
    assert_eq!(response.body, r#"{"id":"jörg"}"#.as_bytes());
    host.end_stream(stream).unwrap();
    assert!(
        !host.grpc_calls()[0].cancelled,
        "a finished call is not cancelled"
    );
}

#[test]
fn a_body_in_chunks_is_collected_then_sent_whole_in_one_call() {
    let mut host = filter();
    let stream = host.new_stream().unwrap();
    let action = host
        .request_headers(
            stream,
            headers(
                "POST",
                "/users/user/7?firstName=John",
                &[("content-type", "application/json")],
            ),
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Pause);
    let body = br#"{"message":"Hello, World!","n":[1,2,3]}"#;
    let chunks: Vec<&[u8]> = vec![&body[..5], &body[5..6], &body[6..20], &body[20..]];
    for chunk in &chunks {
        assert_eq!(
            host.request_body(stream, chunk, false).unwrap(),
            Action::Pause,
            "the filter buffers until the end of the stream"
        );
        assert!(host.grpc_calls().is_empty(), "dispatched before the end");
    }
    // The end of stream may come with an empty chunk.
    assert_eq!(host.request_body(stream, b"", true).unwrap(), Action::Pause);
    no_response(&host, stream);
    let call = only_call(&host, stream);
    assert_eq!(call.timeout_ms, 6_000, "route timeout 5 s + 1 s");
    let request = request_of(&call);
    assert_eq!(request.function_arn, CREATE_USER, "qualifier kept");
    assert_eq!(request.timeout_ms, 5_000);
    assert_eq!(request.request_id, "rid-1");
    let event = event_of(&request);
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["pathParameters"]["id"], "7");
    assert_eq!(event["queryStringParameters"]["firstName"], "John");
    assert_eq!(event["headers"]["content-type"], "application/json");

    // Chunk boundaries in the last callback too.
    let (stream, actions) = send(
        &mut host,
        headers("POST", "/users/user/8", &[]),
        &[b"ab", b"cd", b"ef"],
    );
    assert_eq!(actions, [Action::Pause; 4]);
    assert_eq!(
        event_of(&request_of(&only_call(&host, stream)))["body"],
        "abcdef"
    );
}

#[test]
fn trailers_end_the_body() {
    let mut host = filter();
    let stream = host.new_stream().unwrap();
    host.request_headers(
        stream,
        headers("POST", "/users/user/7", &[("content-type", "text/plain")]),
        false,
    )
    .unwrap();
    for chunk in [&b"part one, "[..], b"part two"] {
        assert_eq!(
            host.request_body(stream, chunk, false).unwrap(),
            Action::Pause
        );
    }
    assert!(host.grpc_calls().is_empty());
    let action = host
        .request_trailers(stream, [("x-checksum", "abc")])
        .unwrap();
    assert_eq!(action, Action::Pause);
    no_response(&host, stream);
    let event = event_of(&request_of(&only_call(&host, stream)));
    assert_eq!(event["body"], "part one, part two");

    // Not lambdagate's request: trailers pass.
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, headers("POST", "/other", &[]), false)
        .unwrap();
    host.request_body(stream, b"x", false).unwrap();
    assert_eq!(
        host.request_trailers(stream, [("x", "y")]).unwrap(),
        Action::Continue
    );
    // Answered at header time (404): trailers change nothing.
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, headers("POST", "/users/nope", &[]), false)
        .unwrap();
    assert_eq!(
        host.request_trailers(stream, [("x", "y")]).unwrap(),
        Action::Pause
    );
    assert_eq!(only_response(&host, stream).status, 404);
    assert_eq!(host.grpc_calls().len(), 1);
}

#[test]
fn greedy_path_and_any_verb() {
    let mut host = filter();
    let (stream, _) = send(
        &mut host,
        headers("PATCH", "/users/files/a/b%20c/d.txt", &[]),
        &[],
    );
    let call = only_call(&host, stream);
    assert_eq!(call.timeout_ms, 901_000);
    let request = request_of(&call);
    assert_eq!(request.function_arn, FILES);
    assert_eq!(request.timeout_ms, 900_000);
    let event = event_of(&request);
    assert_eq!(event["resource"], "/files/{path+}");
    assert_eq!(event["pathParameters"], json!({"path": "a/b c/d.txt"}));
    assert_eq!(event["httpMethod"], "PATCH");
}

#[test]
fn v2_and_wso2_events() {
    let mut host = filter();
    let extra = [
        ("content-type", "application/json"),
        ("cookie", "session=abc; theme=dark"),
        ("user-agent", "curl/8.5.0"),
    ];
    let body: &[u8] = br#"{"message":"Hello, World!"}"#;

    let (stream, _) = send(
        &mut host,
        headers("POST", "/users2/user/7?lastName=Doe&tag=a&tag=b", &extra),
        &[body],
    );
    let call = only_call(&host, stream);
    let request = request_of(&call);
    assert_eq!(request.function_arn, CREATE_USER_V2);
    assert_eq!(request.endpoint, "other");
    assert_eq!(request.timeout_ms, 50_000);
    let event = event_of(&request);
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /user/{id}");
    assert_eq!(event["rawPath"], "/users2/user/7");
    assert_eq!(event["rawQueryString"], "lastName=Doe&tag=a&tag=b");
    assert_eq!(event["queryStringParameters"]["tag"], "a,b");
    assert_eq!(event["cookies"], json!(["session=abc", "theme=dark"]));
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["body"], std::str::from_utf8(body).unwrap());
    assert_eq!(event["isBase64Encoded"], false);
    let http = &event["requestContext"]["http"];
    assert_eq!(http["method"], "POST");
    assert_eq!(http["path"], "/users2/user/7");
    assert_eq!(http["sourceIp"], "192.0.2.10");
    assert_eq!(http["userAgent"], "curl/8.5.0");
    assert_eq!(event["requestContext"]["timeEpoch"], NOW_MS);
    assert_eq!(event["requestContext"]["requestId"], "rid-1");

    let (stream, _) = send(
        &mut host,
        headers("POST", "/userswso2/user/7?firstName=John", &extra),
        &[body],
    );
    let request = request_of(&only_call(&host, stream));
    assert_eq!(request.function_arn, CREATE_USER_WSO2);
    let event = event_of(&request);
    assert_eq!(
        event["body"],
        json!({"message": "Hello, World!"}),
        "WSO2: the body as parsed JSON"
    );
    assert_eq!(event["path"], "/user/{id}", "WSO2: path is the template");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(event["queryStringParameters"], json!({"firstName": "John"}));
    assert_eq!(event["headers"]["cookie"], "session=abc; theme=dark");
}

#[test]
fn binary_bodies_are_base64() {
    // An HTTP API's rule: anything that is not UTF-8 text is base64.
    let mut host = filter();
    let binary: Vec<u8> = (0..=255u8).chain([0xff, 0xfe, 0x00]).collect();
    for content_type in [Some("application/octet-stream"), Some("image/png"), None] {
        let mut extra = vec![];
        if let Some(content_type) = content_type {
            extra.push(("content-type", content_type));
        }
        let (stream, _) = send(
            &mut host,
            headers("POST", "/users2/user/7", &extra),
            &[&binary[..100], &binary[100..]],
        );
        let event = event_of(&request_of(&only_call(&host, stream)));
        assert_eq!(event["isBase64Encoded"], true, "{content_type:?}");
        assert_eq!(
            STANDARD.decode(event["body"].as_str().unwrap()).unwrap(),
            binary,
            "{content_type:?}"
        );
    }
    // Text that is not UTF-8 is binary too; UTF-8 octet-stream is not text.
    for (content_type, body) in [
        ("text/plain", &b"caf\xe9"[..]),
        ("application/octet-stream", &b"plain"[..]),
    ] {
        let (stream, _) = send(
            &mut host,
            headers("POST", "/users2/user/7", &[("content-type", content_type)]),
            &[body],
        );
        let event = event_of(&request_of(&only_call(&host, stream)));
        assert_eq!(event["isBase64Encoded"], true, "{content_type}");
        assert_eq!(
            STANDARD.decode(event["body"].as_str().unwrap()).unwrap(),
            body
        );
    }
    // A REST API's: base64 only for its binary media types; other bodies
    // are text, bytes that are not UTF-8 replaced.
    for (content_type, base64) in [
        ("image/png", true),
        ("text/plain", false),
        ("application/pdf", false),
    ] {
        let (stream, _) = send(
            &mut host,
            headers("POST", "/users/user/7", &[("content-type", content_type)]),
            &[b"caf\xe9"],
        );
        let event = event_of(&request_of(&only_call(&host, stream)));
        assert_eq!(event["isBase64Encoded"], base64, "{content_type}");
        if !base64 {
            assert_eq!(event["body"], "caf\u{fffd}", "{content_type}");
        }
    }
}

// ---------------------------------------------------------------------------
// Body limits: 6 MB synchronous, 1 MB for Event, 413 before any invocation.

#[test]
fn content_length_over_the_limit_is_413_at_header_time() {
    let mut host = filter();
    for (path, length, limit, kind) in [
        ("/users/user/7", SYNC_LIMIT + 1, SYNC_LIMIT, "synchronous"),
        ("/users/user/7", 1 << 40, SYNC_LIMIT, "synchronous"),
        (
            "/users/events",
            EVENT_LIMIT + 1,
            EVENT_LIMIT,
            "asynchronous (Event)",
        ),
    ] {
        let stream = host.new_stream().unwrap();
        let length_text = length.to_string();
        let action = host
            .request_headers(
                stream,
                headers("POST", path, &[("content-length", &length_text)]),
                false,
            )
            .unwrap();
        assert_eq!(action, Action::Pause);
        let body = error_body(&only_response(&host, stream), 413, "rid-1");
        assert_eq!(
            body["message"],
            format!(
                "the request body is {length} bytes; Lambda accepts at most {limit} bytes for {kind} invocations"
            )
        );
        // The body that still arrives changes nothing.
        assert_eq!(
            host.request_body(stream, &[b'x'; 1000], true).unwrap(),
            Action::Pause
        );
        only_response(&host, stream);
        host.end_stream(stream).unwrap();
    }
    // Exactly at the limit is fine at header time.
    let length = SYNC_LIMIT.to_string();
    let stream = host.new_stream().unwrap();
    host.request_headers(
        stream,
        headers("POST", "/users/user/7", &[("content-length", &length)]),
        false,
    )
    .unwrap();
    no_response(&host, stream);
    assert!(host.grpc_calls().is_empty());
}

#[test]
fn a_body_growing_over_the_limit_is_413_without_a_dispatch() {
    let mut host = filter();
    let megabyte = vec![b'a'; 1024 * 1024];
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, headers("POST", "/users/user/7", &[]), false)
        .unwrap();
    for _ in 0..6 {
        assert_eq!(
            host.request_body(stream, &megabyte, false).unwrap(),
            Action::Pause
        );
        no_response(&host, stream);
    }
    // 6 MB + 1 byte.
    host.request_body(stream, b"a", false).unwrap();
    let body = error_body(&only_response(&host, stream), 413, "rid-1");
    assert_eq!(
        body["message"],
        format!(
            "the request body is {} bytes; Lambda accepts at most {SYNC_LIMIT} bytes for synchronous invocations",
            SYNC_LIMIT + 1
        )
    );
    // More body, then its end: still one response, nothing invoked.
    host.request_body(stream, &megabyte, false).unwrap();
    host.request_body(stream, b"", true).unwrap();
    only_response(&host, stream);
    assert!(host.grpc_calls().is_empty());
    host.end_stream(stream).unwrap();

    // Event: 1 MB.
    let (stream, _) = send(
        &mut host,
        headers("POST", "/users/events", &[]),
        &[&megabyte[..600_000], &megabyte[..600_000], b""],
    );
    let body = error_body(&only_response(&host, stream), 413, "rid-1");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("the request body is 1200000 bytes; Lambda accepts at most 1048576 bytes for asynchronous (Event)"),
        "{body}"
    );
    assert!(host.grpc_calls().is_empty());
}

#[test]
fn an_event_over_the_limit_is_413_even_when_the_body_is_not() {
    let mut host = filter();
    // 1 MB of binary: within the Event body limit, but base64 makes the
    // event a third larger.
    let body = vec![0x80u8; EVENT_LIMIT];
    let (stream, _) = send(
        &mut host,
        headers(
            "POST",
            "/users/events",
            &[("content-type", "application/octet-stream")],
        ),
        &[&body[..EVENT_LIMIT / 2], &body[EVENT_LIMIT / 2..]],
    );
    let message = error_body(&only_response(&host, stream), 413, "rid-1")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with("the Lambda event built from this request is ")
            && message.contains("over Lambda's limit of 1048576 bytes"),
        "{message}"
    );
    assert!(host.grpc_calls().is_empty());

    // A text body just under 6 MB: the event (body + request fields) is
    // over 6 MB too.
    let body = vec![b'a'; SYNC_LIMIT];
    let (stream, _) = send(&mut host, headers("POST", "/users/user/7", &[]), &[&body]);
    let message = error_body(&only_response(&host, stream), 413, "rid-1")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("over Lambda's limit of 6291456 bytes"),
        "{message}"
    );
    assert!(host.grpc_calls().is_empty());
}

#[test]
fn a_large_body_under_the_limit_is_sent_whole() {
    let mut host = filter();
    let body: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let chunks: Vec<&[u8]> = body.chunks(64 * 1024).collect();
    let (stream, _) = send(&mut host, headers("POST", "/users/user/7", &[]), &chunks);
    no_response(&host, stream);
    let event = event_of(&request_of(&only_call(&host, stream)));
    assert_eq!(event["body"].as_str().unwrap().as_bytes(), body);
}

// ---------------------------------------------------------------------------
// Replies

/// Sends `POST /users/user/7` with a small body and returns the stream and
/// the gRPC token of its invocation.
fn invoke(
    host: &mut lambdagate_wasm_host::Host,
    path: &str,
) -> (lambdagate_wasm_host::StreamId, u32) {
    let (stream, _) = send(host, headers("POST", path, &[]), &[b"{}"]);
    let call = only_call(host, stream);
    (stream, token(&call))
}

#[test]
fn a_proxy_response_becomes_exactly_that_response() {
    let mut host = filter();
    // REST decodes a base64 body for a client that accepts a binary type.
    let (stream, _) = send(
        &mut host,
        headers("POST", "/users/user/7", &[("accept", "image/png")]),
        &[b"{}"],
    );
    let token = token(&only_call(&host, stream));
    let payload = json!({
        "statusCode": 201,
        "headers": {"Content-Type": "image/png", "X-One": "1", "X-Both": "a"},
        "multiValueHeaders": {"X-Both": ["a", "b"], "X-Many": ["1", "2"]},
        "cookies": ["s=1; Path=/", "t=2"],
        "body": STANDARD.encode(b"\x89PNG\r\n\x1a\n\x00"),
        "isBase64Encoded": true
    });
    host.grpc_receive(token, &encode(&reply(payload.to_string())))
        .unwrap();
    let response = only_response(&host, stream);
    assert_eq!(response.status, 201);
    assert_eq!(response.body, b"\x89PNG\r\n\x1a\n\x00");
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| name != "x-amzn-trace-id")
        .cloned()
        .collect();
    headers.sort();
    // `cookies` is an HTTP API field: a REST API ignores it.
    let expected: Vec<(String, String)> = [
        ("content-type", "image/png"),
        ("x-amz-executed-version", "$LATEST"),
        ("x-amzn-requestid", "lambda-req-1"),
        ("x-both", "a"),
        ("x-both", "b"),
        ("x-many", "1"),
        ("x-many", "2"),
        ("x-one", "1"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(headers, expected);

    // Minimal: a string status code, no body.
    let (stream, token) = invoke(&mut host, "/users/user/8");
    host.grpc_receive(token, &encode(&reply(r#"{"statusCode": "204"}"#)))
        .unwrap();
    let response = only_response(&host, stream);
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
}

#[test]
fn any_other_payload_is_200_json_verbatim() {
    let mut host = filter();
    for payload in [
        r#"{"id": 7, "name": "x"}"#,
        "[1, 2]",
        r#""text""#,
        "null",
        r#"{"body": "no statusCode"}"#,
    ] {
        // An HTTP API's rule; a REST API answers 502 (below).
        let (stream, token) = invoke(&mut host, "/users2/user/7");
        host.grpc_receive(token, &encode(&reply(payload))).unwrap();
        let response = only_response(&host, stream);
        assert_eq!(response.status, 200, "{payload}");
        assert_eq!(response.body, payload.as_bytes());
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.header("x-amzn-requestid"), Some("lambda-req-1"));
        assert_eq!(response.header("x-amz-executed-version"), Some("$LATEST"));
    }
    // A REST API (v1) needs a statusCode: API Gateway answers 502.
    for payload in [r#"{"id": 7}"#, "[1, 2]", r#"{"body": "no statusCode"}"#] {
        let (stream, token) = invoke(&mut host, "/users/user/7");
        host.grpc_receive(token, &encode(&reply(payload))).unwrap();
        error_body(&only_response(&host, stream), 502, "rid-1");
    }
    // Not JSON at all: the gateway's 502, not a 200 claiming JSON.
    for payload in ["", "not json at all"] {
        let (stream, token) = invoke(&mut host, "/users/user/7");
        host.grpc_receive(token, &encode(&reply(payload))).unwrap();
        error_body(&only_response(&host, stream), 502, "rid-1");
    }
}

#[test]
fn function_errors_are_502_with_the_functions_error() {
    let mut host = filter();
    let error = json!({"errorMessage": "boom", "errorType": "Error", "stackTrace": ["at x"]});
    for (path, arn, status) in [
        ("/users/user/7", CREATE_USER, 502),
        ("/users/user/7", UPDATE_USER, 500),
    ] {
        let method = if arn == UPDATE_USER { "PUT" } else { "POST" };
        let (stream, _) = send(&mut host, headers(method, path, &[]), &[b"{}"]);
        let call = only_call(&host, stream);
        assert_eq!(request_of(&call).function_arn, arn);
        let mut function_failed = reply(error.to_string());
        function_failed.function_error = "Unhandled".into();
        function_failed.error_kind = ErrorKind::FunctionError as i32;
        function_failed.executed_version = "7".into();
        host.grpc_receive(token(&call), &encode(&function_failed))
            .unwrap();
        let response = only_response(&host, stream);
        let body = error_body(&response, status, "rid-1");
        assert_eq!(
            body,
            json!({
                "message": format!("function {arn} failed (Unhandled)"),
                "requestId": "rid-1",
                "error": error
            })
        );
        assert_eq!(response.header("x-amzn-requestid"), Some("lambda-req-1"));
        assert_eq!(response.header("x-amz-executed-version"), Some("7"));
    }
    // A non-JSON error payload is kept as text.
    let (stream, token) = invoke(&mut host, "/users/user/7");
    let mut handled = reply("plain failure");
    handled.function_error = "Handled".into();
    host.grpc_receive(token, &encode(&handled)).unwrap();
    let body = error_body(&only_response(&host, stream), 502, "rid-1");
    assert_eq!(body["error"], "plain failure");
    assert_eq!(
        body["message"],
        format!("function {CREATE_USER} failed (Handled)")
    );
}

/// Without `expose_errors` (the default, here the `users2` API) the client
/// gets API Gateway's generic words; the whole story goes to Envoy's log.
#[test]
fn errors_are_generic_unless_the_api_exposes_them() {
    let mut host = filter();
    const SECRET: &str = "db password=hunter2";
    type Answer = Box<dyn Fn(&mut lambdagate_wasm_host::Host, u32)>;
    let cases: Vec<(Answer, u32, &str)> = vec![
        (
            Box::new(|host, token| {
                let mut failed = reply(
                    json!({"errorMessage": SECRET, "errorType": "RuntimeError",
                           "stackTrace": ["File \"/var/task/app.py\", line 7"]})
                    .to_string(),
                );
                failed.function_error = "Unhandled".into();
                host.grpc_receive(token, &encode(&failed)).unwrap();
            }),
            502,
            "Internal server error",
        ),
        (
            Box::new(|host, token| {
                let failure = failure_reply(
                    ErrorKind::AccessDenied,
                    &format!(
                        "User: arn:aws:iam::123456789012:user/gw is not authorized ({SECRET})"
                    ),
                );
                host.grpc_receive(token, &failure).unwrap();
            }),
            502,
            "Internal server error",
        ),
        (
            Box::new(|host, token| {
                host.grpc_receive(token, &encode(&reply(r#"{"statusCode": "db password"}"#)))
                    .unwrap();
            }),
            502,
            "Internal server error",
        ),
        (
            Box::new(|host, token| {
                host.grpc_receive(token, &failure_reply(ErrorKind::Timeout, "after 30s"))
                    .unwrap();
            }),
            504,
            "Endpoint request timed out",
        ),
    ];
    for (answer, status, message) in cases {
        let (stream, _) = send(&mut host, headers("POST", "/users2/user/7", &[]), &[b"{}"]);
        let token = token(&only_call(&host, stream));
        let logs_before = host.logs().len();
        answer(&mut host, token);
        let response = only_response(&host, stream);
        let body = error_body(&response, status, "rid-1");
        assert_eq!(body, json!({"message": message, "requestId": "rid-1"}));
        assert!(!String::from_utf8_lossy(&response.body).contains("arn:aws"));
        // The operator finds the detail in Envoy's log, by request id.
        let logged: Vec<&str> = host.logs()[logs_before..]
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .map(|l| l.message.as_str())
            .collect();
        assert_eq!(logged.len(), 1, "{logged:?}");
        assert!(
            logged[0].contains("request rid-1") && logged[0].contains(CREATE_USER_V2),
            "{logged:?}"
        );
    }
}

/// A host read that hands over nothing where Envoy announced bytes is a
/// 500 with its own outcome, never an empty body or reply. (Any status
/// other than Ok/NotFound aborts inside the proxy-wasm SDK's wrapper before
/// the filter sees it; FAIL_RELOAD is the net for that.)
#[test]
fn failed_host_reads_are_500_not_empty() {
    use lambdagate_wasm_host::status::NOT_FOUND;
    const REQUEST_BODY: u32 = 0;
    const GRPC_RECEIVE_BUFFER: u32 = 5;
    {
        let failure = NOT_FOUND;
        // The request body.
        let mut host = filter();
        host.fail_buffer_reads(REQUEST_BODY, failure);
        let (stream, _) = send(
            &mut host,
            headers("POST", "/users/user/7", &[]),
            &[b"{\"a\":1}"],
        );
        assert!(calls_of(&host, stream).is_empty(), "nothing is invoked");
        let response = only_response(&host, stream);
        error_body(&response, 500, "rid-1");
        assert_eq!(
            host.stream(stream)
                .filter_properties
                .get("lambdagate_outcome")
                .map(Vec::as_slice),
            Some(&b"host_read_failed"[..])
        );

        // The invoker's reply.
        let mut host = filter();
        let (stream, token) = invoke(&mut host, "/users/user/7");
        host.fail_buffer_reads(GRPC_RECEIVE_BUFFER, failure);
        host.grpc_receive(token, &encode(&reply(r#"{"ok":true}"#)))
            .unwrap();
        let response = only_response(&host, stream);
        let body = error_body(&response, 500, "rid-1");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("the invoker's reply"),
            "{body}"
        );
    }
    // An empty body and an all-default (zero-byte) reply are read fine:
    // the reply is then judged on its merits (an empty payload is not
    // JSON: 502), not as a failed read.
    let mut host = filter();
    host.fail_buffer_reads(REQUEST_BODY, NOT_FOUND);
    let (stream, token) = invoke_without_body(&mut host);
    host.grpc_receive(token, &[]).unwrap();
    assert_eq!(only_response(&host, stream).status, 502);
    assert_eq!(
        host.stream(stream)
            .filter_properties
            .get("lambdagate_outcome")
            .map(Vec::as_slice),
        Some(&b"malformed_proxy_response"[..])
    );
}

fn invoke_without_body(
    host: &mut lambdagate_wasm_host::Host,
) -> (lambdagate_wasm_host::StreamId, u32) {
    let (stream, _) = send(host, headers("GET", "/users/user/7", &[]), &[]);
    let call = only_call(host, stream);
    (stream, token(&call))
}

#[test]
fn event_invocations_answer_202() {
    let mut host = filter();
    let (stream, _) = send(
        &mut host,
        headers(
            "POST",
            "/users/events",
            &[("content-type", "application/json")],
        ),
        &[br#"{"event":1}"#],
    );
    let call = only_call(&host, stream);
    assert_eq!(call.timeout_ms, 11_000);
    let request = request_of(&call);
    assert_eq!(request.function_arn, INGEST);
    assert_eq!(request.invocation_type, InvocationType::Event as i32);
    assert_eq!(request.timeout_ms, 10_000);
    assert_eq!(event_of(&request)["body"], r#"{"event":1}"#);

    let accepted = lambdagate_proto::InvokeReply {
        status_code: 202,
        lambda_request_id: "lambda-async-1".into(),
        ..Default::default()
    };
    host.grpc_receive(token(&call), &encode(&accepted)).unwrap();
    let response = only_response(&host, stream);
    assert_eq!(response.status, 202);
    assert_eq!(
        json(&response),
        json!({"message": "accepted", "requestId": "rid-1"})
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-amzn-requestid"), Some("lambda-async-1"));
    assert_eq!(response.header("x-amz-executed-version"), None);
}

#[test]
fn malformed_proxy_responses_are_502() {
    let mut host = filter();
    for (payload, reason) in [
        (
            r#"{"statusCode": "abc"}"#,
            r#"statusCode must be an integer from 200 to 599, got "abc""#,
        ),
        (
            r#"{"statusCode": 100}"#,
            "statusCode must be an integer from 200 to 599, got 100",
        ),
        (
            r#"{"statusCode": 200, "body": 5}"#,
            "body must be a string, got a number",
        ),
        (
            r#"{"statusCode": 700}"#,
            "statusCode must be an integer from 200 to 599, got 700",
        ),
        (
            r#"{"statusCode": 200, "headers": {"x": 1}}"#,
            "headers.x must be a string, got 1",
        ),
        (
            r#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
            "body is not valid base64",
        ),
    ] {
        // With a binary Accept, so that REST decodes (and checks) base64.
        let (stream, _) = send(
            &mut host,
            headers("POST", "/users/user/7", &[("accept", "image/png")]),
            &[b"{}"],
        );
        let token = token(&only_call(&host, stream));
        host.grpc_receive(token, &encode(&reply(payload))).unwrap();
        let body = error_body(&only_response(&host, stream), 502, "rid-1");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!(
                "function {CREATE_USER} returned a malformed proxy response: "
            )) && message.contains(reason),
            "{payload}: {message}"
        );
    }
}

#[test]
fn an_unreadable_reply_is_502() {
    let mut host = filter();
    let (stream, token) = invoke(&mut host, "/users/user/7");
    host.grpc_receive(token, b"\xff\xff\xff\xff").unwrap();
    let body = error_body(&only_response(&host, stream), 502, "rid-1");
    assert_eq!(
        body["message"],
        "the lambdagate invoker's reply could not be read"
    );
}

// ---------------------------------------------------------------------------
// gRPC failures

/// Every kind the invoker reports reaches the client as the error
/// contract's table says (lambdagate-core's `contract`, the one place that
/// maps a kind): its HTTP status, its public message (the `users2` API does
/// not expose errors), `Retry-After` where the table gives one, its outcome
/// for the access log; the invoker's words go only to Envoy's log.
#[test]
fn invoker_failures_are_answered_by_the_contract() {
    let mut host = filter();
    let reported = ErrorKind::all()
        .filter(|k| !matches!(k, ErrorKind::Unspecified | ErrorKind::FunctionError));
    for kind in reported {
        let row = contract(kind);
        let (stream, _) = send(&mut host, headers("POST", "/users2/user/7", &[]), &[b"{}"]);
        let token = token(&only_call(&host, stream));
        let logs_before = host.logs().len();
        host.grpc_receive(token, &failure_reply(kind, "the invoker's reason"))
            .unwrap();
        let response = only_response(&host, stream);
        let body = error_body(&response, u32::from(row.http_status), "rid-1");
        assert_eq!(
            body,
            json!({"message": row.public_message, "requestId": "rid-1"}),
            "{kind:?}"
        );
        assert_eq!(response.header("retry-after"), row.retry_after, "{kind:?}");
        assert_eq!(
            host.stream(stream)
                .filter_properties
                .get("lambdagate_outcome")
                .map(Vec::as_slice),
            Some(row.outcome.label().as_bytes()),
            "{kind:?}"
        );
        let logged = host.logs()[logs_before..]
            .iter()
            .any(|l| l.level == LogLevel::Warn && l.message.contains("the invoker's reason"));
        assert!(logged, "{kind:?}: {:?}", &host.logs()[logs_before..]);
    }
}

#[test]
fn envoys_own_grpc_failures_have_no_kind() {
    let mut host = filter();
    for (code, message, status, shown) in [
        (
            14,
            "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            503,
            "the lambdagate invoker is unreachable",
        ),
        (14, "", 503, "the lambdagate invoker is unreachable"),
        (
            4,
            "",
            504,
            "the lambdagate invoker did not answer within 6s",
        ),
        (
            4,
            "Request timeout",
            504,
            "the lambdagate invoker did not answer within 6s",
        ),
        (
            13,
            "cluster lambdagate_invoker: internal details",
            502,
            "the call to the lambdagate invoker failed (gRPC status 13)",
        ),
        (
            2,
            "THROTTLEDX: not a kind",
            502,
            "the call to the lambdagate invoker failed (gRPC status 2)",
        ),
    ] {
        let (stream, token) = invoke(&mut host, "/users/user/7");
        host.grpc_close(token, code, message).unwrap();
        let body = error_body(&only_response(&host, stream), status, "rid-1");
        assert_eq!(body["message"], shown, "{code} {message}");
    }
}

/// A kind comes typed or not at all: a non-OK status whose message names
/// one (as an older invoker wrote them, or anything in between could) is
/// Envoy's kind of failure, judged by its code alone.
#[test]
fn a_status_message_naming_a_kind_is_not_believed() {
    let mut host = filter();
    for (code, message, status) in [
        (8, "THROTTLED: Rate exceeded", 502),
        (5, "FUNCTION_NOT_FOUND%3A%20Function%20not%20found", 502),
        (13, "TIMEOUT: after 5s", 502),
        (14, "ACCESS_DENIED: no", 503),
    ] {
        let (stream, token) = invoke(&mut host, "/users/user/7");
        host.grpc_close(token, code, message).unwrap();
        let response = only_response(&host, stream);
        let body = error_body(&response, status, "rid-1");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("the lambdagate invoker"),
            "{message}: {body}"
        );
        assert_eq!(response.header("retry-after"), None, "{message}");
    }
}

// ---------------------------------------------------------------------------
// Dispatch failures

#[test]
fn a_missing_invoker_cluster_is_503_and_logged() {
    let mut host = filter();
    host.set_grpc_dispatch(GrpcDispatch::Fail(status::PARSE_FAILURE));
    let (stream, actions) = send(
        &mut host,
        headers("GET", "/users/user/7", &[("x-request-id", "rid-nocluster")]),
        &[],
    );
    assert_eq!(actions, [Action::Pause]);
    let body = error_body(&only_response(&host, stream), 503, "rid-nocluster");
    assert_eq!(body["message"], "the lambdagate invoker is unreachable");
    let call = host.grpc_calls().last().unwrap();
    assert_eq!((call.token, call.status), (None, status::PARSE_FAILURE));
    assert_eq!(call.cluster, CLUSTER);
    let errors = error_logs(&host);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("cannot call the invoker cluster `lambdagate_invoker`"),
        "{errors:?}"
    );

    // Same with a body, through the body callback; and a custom cluster name.
    let mut custom = config();
    custom["invoker_cluster"] = json!("my_invoker");
    let mut host = filter_with(&custom);
    host.set_grpc_dispatch(GrpcDispatch::Clusters(vec![CLUSTER.to_owned()]));
    let (stream, _) = send(&mut host, headers("POST", "/users/user/7", &[]), &[b"{}"]);
    error_body(&only_response(&host, stream), 503, "rid-1");
    assert!(
        error_logs(&host)
            .iter()
            .any(|e| e.contains("cannot call the invoker cluster `my_invoker`")),
        "{:?}",
        error_logs(&host)
    );
    host.set_grpc_dispatch(GrpcDispatch::Clusters(vec!["my_invoker".to_owned()]));
    let (stream, _) = send(&mut host, headers("POST", "/users/user/7", &[]), &[b"{}"]);
    assert_eq!(calls_of(&host, stream)[0].cluster, "my_invoker");
    no_response(&host, stream);
}

// ---------------------------------------------------------------------------
// Late, repeated and unknown gRPC tokens

#[test]
fn unknown_tokens_are_ignored() {
    let mut host = filter();
    let (stream, token) = invoke(&mut host, "/users/user/7");
    for unknown in [token + 1, 0, u32::MAX, 12345] {
        host.grpc_receive(unknown, &encode(&reply("{}"))).unwrap();
        host.grpc_close(unknown, 14, "").unwrap();
    }
    no_response(&host, stream);
    // The real reply still lands.
    host.grpc_receive(token, &encode(&reply(proxied(r#"{"ok":true}"#))))
        .unwrap();
    assert_eq!(only_response(&host, stream).body, br#"{"ok":true}"#);
}

#[test]
fn a_second_reply_for_an_answered_stream_is_ignored() {
    let mut host = filter();
    let (stream, token) = invoke(&mut host, "/users/user/7");
    host.grpc_receive(token, &encode(&reply(proxied(r#"{"n":1}"#))))
        .unwrap();
    host.grpc_receive(token, &encode(&reply(proxied(r#"{"n":2}"#))))
        .unwrap();
    host.grpc_close(token, 14, "").unwrap();
    let response = only_response(&host, stream);
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &br#"{"n":1}"#[..])
    );

    // And the other way round: closed first, then a reply.
    let (stream, token) = invoke(&mut host, "/users/user/8");
    host.grpc_close(token, 4, "").unwrap();
    host.grpc_receive(token, &encode(&reply("{}"))).unwrap();
    assert_eq!(only_response(&host, stream).status, 504);

    // Nothing is cancelled when answered streams end.
    host.end_stream(stream).unwrap();
    assert!(host.grpc_calls().iter().all(|c| !c.cancelled));
}

/// The client leaves while the function runs. This shows only what the
/// filter does on OUR wasmtime host, which plays Envoy as we understand it
/// (the gRPC call belongs to the root context and outlives the stream, its
/// late reply or failure still comes, tokens are reused once the counter
/// wraps around): the filter does not cancel the call, drops the late
/// reply quietly, and serves reused tokens. Whether real Envoy behaves so
/// (no leak, no "duplicate token_id" abort) is proven against real Envoy by
/// `invoker/tests/abandoned_requests.rs`, the test that counts.
#[test]
fn on_the_wasmtime_host_a_client_that_went_away_leaves_no_call_behind() {
    let mut host = filter();
    let (stream, token) = invoke(&mut host, "/users/user/7");
    host.end_stream(stream).unwrap();
    assert!(
        !host.grpc_calls()[0].cancelled,
        "the call is left to finish"
    );

    // The late reply (or failure) is dropped.
    host.grpc_receive(token, &encode(&reply("{}"))).unwrap();
    no_response(&host, stream);
    let (stream, token) = invoke(&mut host, "/users/user/8");
    host.end_stream(stream).unwrap();
    host.grpc_close(token, 4, "").unwrap();
    no_response(&host, stream);

    // The host's token counter wraps around: the same tokens again.
    for reused in [1, token] {
        host.set_next_grpc_token(reused);
        let (stream, again) = send(&mut host, headers("GET", "/users/user/9", &[]), &[]);
        assert_eq!(token_of_only_call(&host, stream), reused);
        assert_eq!(again, [Action::Pause]);
        host.grpc_receive(reused, &encode(&reply(proxied(r#"{"again":true}"#))))
            .unwrap();
        assert_eq!(only_response(&host, stream).body, br#"{"again":true}"#);
        host.end_stream(stream).unwrap();
    }

    // Gone while still sending the body: no call is made later.
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, headers("POST", "/users/user/9", &[]), false)
        .unwrap();
    host.request_body(stream, b"{", false).unwrap();
    host.end_stream(stream).unwrap();
    no_response(&host, stream);
    assert!(calls_of(&host, stream).is_empty());
}

fn token_of_only_call(
    host: &lambdagate_wasm_host::Host,
    stream: lambdagate_wasm_host::StreamId,
) -> u32 {
    token(&only_call(host, stream))
}

#[test]
fn interleaved_streams_get_their_own_replies() {
    let mut host = filter();
    let mut pending = Vec::new();
    for i in 0..20 {
        let (stream, _) = send(
            &mut host,
            headers(
                "GET",
                &format!("/users/user/{i}"),
                &[("x-request-id", &format!("rid-{i}"))],
            ),
            &[],
        );
        let call = only_call(&host, stream);
        assert_eq!(request_of(&call).request_id, format!("rid-{i}"));
        pending.push((i, stream, token(&call)));
    }
    // Replies in another order; odd ones fail.
    pending.reverse();
    pending.rotate_left(7);
    for (i, _, token) in &pending {
        if i % 2 == 0 {
            host.grpc_receive(*token, &encode(&reply(proxied(&format!(r#"{{"i":{i}}}"#)))))
                .unwrap();
        } else {
            host.grpc_close(*token, 14, "").unwrap();
        }
    }
    for (i, stream, _) in &pending {
        let response = only_response(&host, *stream);
        if i % 2 == 0 {
            assert_eq!(response.body, format!(r#"{{"i":{i}}}"#).as_bytes());
        } else {
            error_body(&response, 503, &format!("rid-{i}"));
        }
        host.end_stream(*stream).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Header values Envoy passes through as they came

#[test]
fn non_utf8_header_values_do_not_trap() {
    let mut host = filter();
    let stream = host.new_stream().unwrap();
    let mut request: Vec<(String, Vec<u8>)> = headers("GET", "/users/user/7", &[])
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    // HTTP allows obs-text (Latin-1 bytes) in values; Envoy forwards them.
    request.push(("x-name".to_owned(), b"Andr\xe9".to_vec()));
    request.push(("user-agent".to_owned(), b"agent/\xff\xfe".to_vec()));
    let action = host
        .request_headers(stream, request, true)
        .unwrap_or_else(|trap| panic!("{trap}"));
    assert_eq!(action, Action::Pause);
    let event = event_of(&request_of(&only_call(&host, stream)));
    assert_eq!(event["headers"]["x-name"], "Andr\u{fffd}");
    assert_eq!(event["headers"]["user-agent"], "agent/\u{fffd}\u{fffd}");

    // In the path too (a 404 here).
    let stream = host.new_stream().unwrap();
    let request: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/users/\xe9t\xe9".to_vec()),
        (":authority".into(), b"a".to_vec()),
        ("x-request-id".into(), b"rid-\xff".to_vec()),
    ];
    host.request_headers(stream, request, true)
        .unwrap_or_else(|trap| panic!("{trap}"));
    let body = error_body(&only_response(&host, stream), 404, "rid-\u{fffd}");
    assert_eq!(
        body["message"],
        "no resource matches GET /users/\u{fffd}t\u{fffd}"
    );
}

/// On the router path the body never enters the VM: the filter puts the
/// call's message in front of the body Envoy buffered and never reads it
/// (a read would fail here), and its work does not grow with the body.
#[test]
fn on_the_router_path_the_body_stays_in_envoys_buffer() {
    use lambdagate_proto::InvokeRequest;
    use prost::Message as _;
    const REQUEST_BODY: u32 = 0;
    let mut config = config();
    config["data_path"] = json!("router");
    let mut host = filter_with(&config);
    host.fail_buffer_reads(REQUEST_BODY, status::NOT_FOUND);
    let mut fuel = Vec::new();
    for size in [1024, 1024 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let (stream, actions) = send(
            &mut host,
            headers(
                "POST",
                "/users/user/7",
                &[("content-type", "application/octet-stream")],
            ),
            &[&body[..size / 2], &body[size / 2..]],
        );
        assert_eq!(actions.last(), Some(&Action::Continue), "{size}");
        fuel.push(host.fuel_used_by_last_call());
        let forwarded = host.stream(stream);
        assert_eq!(
            forwarded.request_header(":path"),
            Some("/lambdagate.v1.Invoker/InvokeHttp")
        );
        let framed = &forwarded.request_body;
        let declared = u32::from_be_bytes(framed[1..5].try_into().unwrap()) as usize;
        assert_eq!((framed[0], declared), (0, framed.len() - 5));
        let request = InvokeRequest::decode(&framed[5..]).unwrap();
        assert!(request.payload == body, "{size}: the raw body, whole");
        assert_eq!(request.function_arn, CREATE_USER);
        let event = event_of(&request);
        assert_eq!(event["isBase64Encoded"], true);
        assert!(STANDARD.decode(event["body"].as_str().unwrap()).unwrap() == body);
    }
    assert!(
        fuel[1] < fuel[0] * 3 / 2,
        "the VM's work for 1 MB vs 1 KB: {fuel:?}"
    );
}
