//! The router data path (`data_path: router`) through real Envoy: what only
//! this path has to get right. Everything else (events, errors, limits,
//! timeouts) is the same suite as the callout path's, which CI runs on the
//! default path and `LAMBDAGATE_DATA_PATH=router|callout` runs on either.
//!
//! - the route to the invoker is the filter's alone: a client that sends
//!   the invoker call itself, marker header and all, never reaches it;
//! - HTTP/2 clients see the function's response, no gRPC trailers;
//! - a request without a body carries its event in metadata, big ones too;
//! - a response bigger than Envoy's buffers loses its framing chunk by
//!   chunk, byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use lambdagate_harness::faults::H2Connection;
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, Moto, MotoOptions};
use prost::Message as _;
use serde_json::{Value, json};

struct Stack {
    _moto: Moto,
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
    echo: String,
}

/// moto's echo function behind an HTTP API (payload v2: its echo is the
/// response as is) at `/shop`, on the router path.
async fn stack() -> Stack {
    stack_with(json!({"data_path": "router"})).await
}

/// The same stack with `data_path` (and what goes with it) from `path`.
async fn stack_with(path: Value) -> Stack {
    let moto = Moto::start(MotoOptions::default()).await;
    let echo = moto.fixture.function("echo").to_owned();
    let invoker = moto_invoker(&moto).await;
    let mut filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "shop", "version": "v1", "context": "/shop", "endpoint": "main",
            "payload_format": "v2",
            "resources": [{"verb": "ANY", "uri_template": "/items/{id}", "arn": echo, "timeout_seconds": 5}]
        }]
    });
    if let (Some(filter), Value::Object(path)) = (filter.as_object_mut(), path) {
        filter.extend(path);
    }
    let envoy =
        EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
    Stack {
        _moto: moto,
        invoker,
        envoy,
        echo,
    }
}

async fn invocations(invoker: &InvokerProcess) -> f64 {
    let text = invoker.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("lambdagate_invocations_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_client_cannot_take_the_route_to_the_invoker() {
    let s = stack().await;
    // The call the filter would make, made by the client itself: the
    // invoker's path, the marker header, the event in metadata.
    let call = lambdagate_proto::InvokeRequest {
        function_arn: s.echo.clone(),
        endpoint: "main".into(),
        payload: br#"{"forged":true}"#.to_vec().into(),
        ..Default::default()
    };
    let metadata = base64::engine::general_purpose::STANDARD.encode(call.encode_to_vec());
    let forged = [
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        ("lambdagate-forwarded", "1"),
        ("lambdagate-invoke-bin", metadata.as_str()),
    ];
    let before = invocations(&s.invoker).await;
    let r = s
        .envoy
        .send("POST", "/lambdagate.v1.Invoker/InvokeHttp", &forged, b"")
        .await;
    // The marker is the gateway's: refused before any route is taken. To
    // a gRPC client Envoy sends the refusal in gRPC's form.
    assert_eq!(r.header("grpc-status"), Some("13"), "{:?}", r.headers);
    assert!(
        r.header("grpc-message").is_some_and(
            |m| m.contains("the lambdagate-forwarded header is reserved for the gateway")
        ),
        "{:?}",
        r.headers
    );
    // To anyone else, as a JSON error.
    let r = s
        .envoy
        .send(
            "GET",
            "/shop/items/1",
            &[("lambdagate-forwarded", "1")],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["message"],
        "the lambdagate-forwarded header is reserved for the gateway"
    );
    assert_eq!(r.json()["requestId"], r.request_id());
    // Without it, the invoker's route does not match: outside every API,
    // the catch-all answers its 404 (in gRPC's form: the JSON is the
    // grpc-message).
    let unmarked: Vec<(&str, &str)> = forged
        .iter()
        .copied()
        .filter(|(n, _)| *n != "lambdagate-forwarded")
        .collect();
    let r = s
        .envoy
        .send("POST", "/lambdagate.v1.Invoker/InvokeHttp", &unmarked, b"")
        .await;
    assert!(
        r.header("grpc-message")
            .is_some_and(|m| m.contains("no API serves this path")),
        "{:?}",
        r.headers
    );
    // The same over HTTP/2, as a gRPC client would send it.
    let h2 = H2Connection::connect(&s.envoy.addr).await.unwrap();
    let mut request = http::Request::post(format!(
        "http://{}/lambdagate.v1.Invoker/InvokeHttp",
        s.envoy.addr
    ));
    for (name, value) in forged {
        request = request.header(name, value);
    }
    let r = h2
        .send(
            request.body(Default::default()).unwrap(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(r.header("grpc-status"), Some("13"), "{:?}", r.headers);
    assert_eq!(
        invocations(&s.invoker).await,
        before,
        "the invoker was called"
    );
    // A real request still works, and counts.
    let r = s.envoy.send("GET", "/shop/items/1", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(invocations(&s.invoker).await, before + 1.0);
}

#[tokio::test]
async fn http2_clients_get_the_response_without_grpc_framing_or_trailers() {
    let s = stack().await;
    let h2 = H2Connection::connect(&s.envoy.addr).await.unwrap();
    let request = http::Request::post(format!("http://{}/shop/items/9?q=1", s.envoy.addr))
        .header("content-type", "text/plain")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"hello",
        )))
        .unwrap();
    let (r, trailers) = h2
        .send_with_trailers(request, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let event: Value = r.json();
    assert_eq!(event["body"], "hello");
    assert_eq!(event["rawPath"], "/shop/items/9");
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("content-length").map(str::to_owned),
        Some(r.body.len().to_string())
    );
    for (name, _) in &r.headers {
        assert!(
            !name.starts_with("grpc-") && !name.starts_with("lambdagate-"),
            "{name} reached the client: {:?}",
            r.headers
        );
    }
    assert!(
        trailers.iter().all(|(name, _)| !name.starts_with("grpc-")),
        "gRPC trailers reached the client: {trailers:?}"
    );
}

#[tokio::test]
async fn a_request_without_body_carries_its_event_even_with_big_headers() {
    let s = stack().await;
    // 40 KB of headers (Envoy's default limit is 60 KB): the event, in
    // metadata, is bigger than HTTP/2's default 16 KB header list.
    let big = "x".repeat(40 * 1024);
    let r = s
        .envoy
        .send("GET", "/shop/items/7?a=b", &[("x-big", big.as_str())], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let event: Value = r.json();
    assert_eq!(
        event["headers"]["x-big"].as_str().map(str::len),
        Some(big.len())
    );
    assert_eq!(event["rawQueryString"], "a=b");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
}

#[tokio::test]
async fn a_big_response_arrives_byte_for_byte() {
    let s = stack().await;
    // 3 MB of JSON-escaped text in, echoed back: the response crosses
    // Envoy in many chunks and the framing is only at the start.
    let body: String = (0..3 * 1024 * 1024)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let r = s
        .envoy
        .send(
            "POST",
            "/shop/items/3",
            &[("content-type", "text/plain")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", &r.text()[..200.min(r.body.len())]);
    let event: Value = r.json();
    assert_eq!(event["body"].as_str(), Some(body.as_str()));
    assert_eq!(
        r.header("content-length").map(str::to_owned),
        Some(r.body.len().to_string())
    );
}

/// On the callout data path, `router_body_bytes` (render's default, 64 KiB)
/// sends large bodies by the router path, their bytes never read into the
/// VM, and keeps small ones on the callout. Both answer alike; Envoy's own
/// stats tell which path each took (its HTTP client counts the callouts).
#[tokio::test]
async fn large_bodies_take_the_router_path_from_the_callout_one() {
    let settings = json!({"data_path": "callout", "router_body_bytes": 65536});
    let s = stack_with(settings.clone()).await;
    let envoy = &s.envoy;
    // Envoy counts its HTTP (or gRPC) client's calls, the callouts, as
    // internal requests of the callout cluster, and the client's request
    // its router forwards (the router path) as external ones of the
    // invoker cluster.
    let callout_cluster = lambdagate_harness::envoy::callout_cluster(&settings.to_string());
    let count = |path: &'static str| {
        let admin = envoy.admin.clone();
        let cluster = if path == "internal" {
            callout_cluster.clone()
        } else {
            "lambdagate_invoker".to_owned()
        };
        async move {
            let name = format!("cluster.{cluster}.{path}.upstream_rq_completed");
            lambdagate_harness::faults::envoy_stats(&admin, &name)
                .await
                .get(&name)
                .copied()
                .unwrap_or(0)
        }
    };
    for (size, router) in [(100, false), (65535, false), (65536, true), (300_000, true)] {
        let (callouts, forwarded) = (count("internal").await, count("external").await);
        let body = "b".repeat(size);
        let r = envoy
            .send(
                "POST",
                "/shop/items/1",
                &[("content-type", "text/plain")],
                body.as_bytes(),
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "{size}: {}",
            &r.text()[..200.min(r.text().len())]
        );
        assert!(
            r.json()["body"] == body,
            "{size}: the function saw the body"
        );
        let moved = (
            count("internal").await - callouts,
            count("external").await - forwarded,
        );
        let expected = if router { (0, 1) } else { (1, 0) };
        assert_eq!(moved, expected, "{size} bytes: (callouts, forwarded)");
    }
}
