//! End to end through real Envoy running the compiled filter, the real
//! invoker, and moto as Lambda (it echoes the event it receives, or returns
//! queued results). What a client sees is checked field by field.
//!
//! moto's echo is no proxy response, which a REST API (payload v1) answers
//! with 502 as API Gateway does: tests that only need an echo use payload
//! v2 (an HTTP API returns such a reply as is); the v1 event is read from a
//! real Python function on `awslambdaric` that returns its event.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::standins::{CannedReply, HangingLambda, LambdaStandIn};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, Moto, MotoOptions};
use serde_json::{Value, json};

/// An API (`/shop`, endpoint `main`) with the given payload format, whose
/// resources all point at `arn` (timeout 5 s) unless overridden.
fn filter_json(format: &str, arn: &str, extra_resources: &[Value]) -> String {
    let mut resources = vec![
        json!({"verb": "POST", "uri_template": "/items/{id}", "arn": arn, "timeout_seconds": 5}),
        json!({"verb": "GET", "uri_template": "/items/{id}", "arn": arn, "timeout_seconds": 5}),
        json!({"verb": "ANY", "uri_template": "/files/{path+}", "arn": arn, "timeout_seconds": 5}),
        json!({"verb": "POST", "uri_template": "/events", "arn": arn, "invocation_type": "Event"}),
    ];
    resources.extend(extra_resources.iter().cloned());
    json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "shop", "version": "v1", "context": "/shop", "endpoint": "main",
            // These tests read the whole error; the default (generic
            // errors) is tested in trust_boundaries.rs.
            "expose_errors": true,
            "payload_format": format, "resources": resources,
            "binary_media_types": if format == "v1" { json!(["image/png"]) } else { json!([]) }
        }]
    })
    .to_string()
}

struct Stack {
    moto: Moto,
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

async fn stack(format: &str, options: MotoOptions) -> Stack {
    let moto = Moto::start(options).await;
    let echo = moto.fixture.function("echo").to_owned();
    let invoker = moto_invoker(&moto).await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_json(format, &echo, &[]),
    )
    .await;
    Stack {
        moto,
        invoker,
        envoy,
    }
}

const JSON_BODY: &str = r#"{"message":"Hello, World!"}"#;

async fn post_item(envoy: &EnvoyProcess) -> lambdagate_harness::http::Response {
    envoy
        .send(
            "POST",
            "/shop/items/caf%C3%A9%207?firstName=John&tag=a&tag=b%20c",
            &[
                ("content-type", "application/json"),
                ("x-custom", "one"),
                ("x-custom", "two"),
                ("cookie", "session=abc; theme=dark"),
                ("user-agent", "lambdagate-test"),
                ("x-request-id", "req-e2e-1"),
            ],
            JSON_BODY.as_bytes(),
        )
        .await
}

/// Returns its event as a proxy response, as moto's echo would if it
/// could: the v1 event exactly as the function received it.
const PROXY_ECHO: &str = r#"
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}
"#;

struct LocalStack {
    envoy: EnvoyProcess,
    _invoker: InvokerProcess,
    _dir: tempfile::TempDir,
}

/// The `/shop` API (payload v1) served by a local Python proxy echo.
async fn local_echo_stack() -> LocalStack {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("echo.py"), PROXY_ECHO).unwrap();
    let yaml = format!(
        "endpoints:\n  main:\n    access_method: local\n    region: us-east-1\n    allow: [\"arn:aws:lambda:us-east-1:123456789012:function:echo\"]\n    functions:\n    - name: echo\n      command: [\"{}\", -m, awslambdaric, \"echo.handler\"]\n      working_dir: \"{}\"\n",
        lambdagate_harness::venv().join("bin/python").display(),
        dir.path().display()
    );
    let invoker = InvokerProcess::start(BIN, &yaml, &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_json(
            "v1",
            "arn:aws:lambda:us-east-1:123456789012:function:echo",
            &[],
        ),
    )
    .await;
    LocalStack {
        envoy,
        _invoker: invoker,
        _dir: dir,
    }
}

#[tokio::test]
async fn v1_event_reaches_the_function_as_api_gateway_builds_it() {
    let s = local_echo_stack().await;
    let response = post_item(&s.envoy).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(
        response
            .header("x-amzn-requestid")
            .is_some_and(|id| !id.is_empty())
    );
    // moto echoes the event: this is what the function received.
    let event = response.json();
    assert_eq!(event["resource"], "/items/{id}");
    assert_eq!(event["path"], "/shop/items/caf%C3%A9%207");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["pathParameters"], json!({"id": "café 7"}));
    assert_eq!(
        event["queryStringParameters"],
        json!({"firstName": "John", "tag": "b c"})
    );
    assert_eq!(
        event["multiValueQueryStringParameters"],
        json!({"firstName": ["John"], "tag": ["a", "b c"]})
    );
    assert_eq!(event["headers"]["x-custom"], "two");
    assert_eq!(
        event["multiValueHeaders"]["x-custom"],
        json!(["one", "two"])
    );
    assert_eq!(event["headers"]["cookie"], "session=abc; theme=dark");
    assert_eq!(event["headers"]["user-agent"], "lambdagate-test");
    assert_eq!(event["body"], JSON_BODY);
    assert_eq!(event["isBase64Encoded"], false);
    assert_eq!(event["stageVariables"], Value::Null);
    let ctx = &event["requestContext"];
    // The gateway's id, not the one the client sent.
    assert_eq!(ctx["requestId"], response.request_id());
    assert_eq!(ctx["resourcePath"], "/items/{id}");
    assert_eq!(ctx["path"], "/shop/items/caf%C3%A9%207");
    assert_eq!(ctx["httpMethod"], "POST");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["accountId"], "123456789012");
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["identity"]["userAgent"], "lambdagate-test");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let epoch = ctx["requestTimeEpoch"].as_i64().unwrap();
    assert!((now_ms - epoch).abs() < 60_000, "{epoch} vs {now_ms}");
    // The event parses as the official type.
    let parsed: aws_lambda_events::apigw::ApiGatewayProxyRequest =
        serde_json::from_value(event.clone()).expect("ApiGatewayProxyRequest");
    assert_eq!(
        parsed.path_parameters.get("id").map(String::as_str),
        Some("café 7")
    );

    // GET without a body, a greedy path, and a binary body.
    let event = s.envoy.send("GET", "/shop/items/42", &[], b"").await.json();
    assert_eq!(event["httpMethod"], "GET");
    assert_eq!(event["body"], Value::Null);
    assert_eq!(event["queryStringParameters"], Value::Null);
    let binary = [0u8, 159, 146, 150, 255];
    let event = s
        .envoy
        .send(
            "PUT",
            "/shop/files/a/b/c.png",
            &[("content-type", "image/png")],
            &binary,
        )
        .await
        .json();
    assert_eq!(event["pathParameters"], json!({"path": "a/b/c.png"}));
    assert_eq!(event["resource"], "/files/{path+}");
    assert_eq!(event["isBase64Encoded"], true);
    assert_eq!(event["body"], "AJ+Slv8=");
}

#[tokio::test]
async fn v2_and_wso2_events() {
    let s = stack("v2", MotoOptions::default()).await;
    let response = post_item(&s.envoy).await;
    let event = response.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "POST /items/{id}");
    assert_eq!(event["rawPath"], "/shop/items/caf%C3%A9%207");
    assert_eq!(event["rawQueryString"], "firstName=John&tag=a&tag=b%20c");
    assert_eq!(event["cookies"], json!(["session=abc", "theme=dark"]));
    assert_eq!(event["headers"]["x-custom"], "one,two");
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert_eq!(event["queryStringParameters"]["tag"], "a,b c");
    assert_eq!(event["pathParameters"], json!({"id": "café 7"}));
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(event["requestContext"]["requestId"], response.request_id());
    assert_eq!(event["body"], JSON_BODY);
    let _: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
        serde_json::from_value(event).expect("ApiGatewayV2httpRequest");
    drop(s);

    // wso2: exactly the sample event of the WSO2 guide.
    let s = stack("wso2", MotoOptions::default()).await;
    let event = s
        .envoy
        .send(
            "POST",
            "/shop/items/7?firstName=John&lastName=Doe",
            &[
                ("content-type", "application/json"),
                ("origin", "https://localhost:9443"),
            ],
            JSON_BODY.as_bytes(),
        )
        .await
        .json();
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["path"], "/items/{id}");
    assert_eq!(event["pathParameters"], json!({"id": "7"}));
    assert_eq!(
        event["queryStringParameters"],
        json!({"firstName": "John", "lastName": "Doe"})
    );
    assert_eq!(event["body"], json!({"message": "Hello, World!"}));
    assert_eq!(event["headers"]["origin"], "https://localhost:9443");
}

#[tokio::test]
async fn proxy_responses_come_back_exactly() {
    let s = stack("v2", MotoOptions::default()).await;
    let proxy = json!({
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-one": "1"},
        "multiValueHeaders": {"x-many": ["a", "b"]},
        "cookies": ["c1=v1; Path=/", "c2=v2"],
        "body": "aGVsbG8gd29ybGQ=",
        "isBase64Encoded": true
    });
    s.moto
        .queue_results(&[
            proxy.to_string(),
            json!({"statusCode": "404", "body": "{\"error\":\"no item\"}", "headers": {"content-type": "application/json"}}).to_string(),
            "[1,2,3]".to_owned(),
            json!({"statusCode": 99999, "body": "x"}).to_string(),
        ])
        .await;
    let r = s.envoy.send("GET", "/shop/items/1", &[], b"").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body, b"hello world");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("x-one"), Some("1"));
    // An HTTP API reads `cookies`; `multiValueHeaders` is REST's (see
    // api_gateway_semantics.rs for both formats).
    assert!(r.header("x-many").is_none());
    assert_eq!(r.header_all("set-cookie"), vec!["c1=v1; Path=/", "c2=v2"]);

    let r = s.envoy.send("GET", "/shop/items/2", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), json!({"error": "no item"}));

    // Not a proxy response: returned as JSON as is.
    let r = s.envoy.send("GET", "/shop/items/3", &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "[1,2,3]"));
    assert_eq!(r.header("content-type"), Some("application/json"));

    // A malformed proxy response is the gateway's 502, explained.
    let r = s
        .envoy
        .send("GET", "/shop/items/4", &[("x-request-id", "req-bad")], b"")
        .await;
    assert_eq!(r.status, 502);
    let body = r.json();
    assert_eq!(body["requestId"], r.request_id());
    assert!(
        body["message"].as_str().unwrap().contains("statusCode"),
        "{body}"
    );
}

#[tokio::test]
async fn routing_answers_and_limits() {
    let s = stack("v2", MotoOptions::default()).await;
    let r = s
        .envoy
        .send(
            "DELETE",
            "/shop/items/1",
            &[("x-request-id", "req-405")],
            b"",
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_eq!(r.json()["requestId"], r.request_id());

    let r = s
        .envoy
        .send("GET", "/shop/nothing", &[("x-request-id", "req-404")], b"")
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"message": "no resource matches GET /shop/nothing", "requestId": r.request_id()})
    );

    // Outside every API: the request continues to Envoy's own routes,
    // where the catch-all answers 404 with the gateway's JSON.
    let r = s.envoy.send("GET", "/elsewhere", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"message": "no API serves this path", "requestId": r.request_id()})
    );

    // Event → 202 at once.
    let r = s
        .envoy
        .send(
            "POST",
            "/shop/events",
            &[("content-type", "application/json")],
            b"{}",
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());

    // Over 6 MB: 413 before anything is invoked.
    let before = s.invoker.metrics().await;
    let big = vec![b'x'; 6 * 1024 * 1024 + 1];
    let r = s
        .envoy
        .send(
            "POST",
            "/shop/items/1",
            &[("content-type", "text/plain")],
            &big,
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.json()["message"].as_str().unwrap().contains("6291456"),
        "{}",
        r.text()
    );
    let after = s.invoker.metrics().await;
    let count = |m: &str| {
        lambdagate_harness::http::metric_value(m, "lambdagate_invocations_total", &[])
            .unwrap_or(0.0)
    };
    assert_eq!(count(&before), count(&after), "nothing invoked for a 413");

    // Just under the limit passes through (the event stays under 6 MB).
    let r = s
        .envoy
        .send(
            "POST",
            "/shop/items/1",
            &[("content-type", "text/plain")],
            &vec![b'y'; 5 * 1024 * 1024],
        )
        .await;
    assert_eq!(r.status, 200, "{}", &r.text()[..200.min(r.text().len())]);
}

#[tokio::test]
async fn lambda_errors_become_clear_http_errors() {
    // docker mode: unknown functions are a real 404, known ones fail
    // with a Handled function error.
    let moto = Moto::start(MotoOptions {
        lambda_docker: true,
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let missing = "arn:aws:lambda:us-east-1:123456789012:function:missing";
    let throttle = LambdaStandIn::start(CannedReply::aws_error(
        429,
        "TooManyRequestsException",
        "Rate exceeded",
    ))
    .await;
    let hanging = HangingLambda::start().await;
    let yaml = config(&[
        stored_endpoint(
            "main",
            &moto.url,
            &["arn:aws:lambda:us-east-1:123456789012:function:*"],
            "",
        ),
        stored_endpoint(
            "denied",
            &moto.url,
            &["arn:aws:lambda:us-east-1:123456789012:function:*"],
            "",
        ),
        stored_endpoint(
            "throttle",
            &throttle.url,
            &["arn:aws:lambda:us-east-1:123456789012:function:*"],
            "",
        ),
        stored_endpoint(
            "hang",
            &hanging.url,
            &["arn:aws:lambda:us-east-1:123456789012:function:*"],
            "",
        ),
    ]);
    let mut env = key_env("main", moto.fixture.user("invoker"));
    env.extend(key_env("denied", moto.fixture.user("nolambda")));
    env.extend(key_env("throttle", moto.fixture.user("invoker")));
    env.extend(key_env("hang", moto.fixture.user("invoker")));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let api = |name: &str, endpoint: &str, arn: &str, extra: Value| {
        let mut resource =
            json!({"verb": "GET", "uri_template": "/x", "arn": arn, "timeout_seconds": 1});
        if let (Some(r), Some(e)) = (resource.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        json!({"name": name, "version": "v1", "context": format!("/{name}"), "endpoint": endpoint,
               "expose_errors": true, "resources": [resource]})
    };
    // The default: AWS's reasons stay out of the client's body.
    let mut denied_quietly = api("deniedquietly", "denied", &echo, json!({}));
    denied_quietly["expose_errors"] = json!(false);
    let filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [
            api("missing", "main", missing, json!({})),
            api("failing", "main", &echo, json!({})),
            api("failing418", "main", &echo, json!({"function_error_status": 418})),
            api("denied", "denied", &echo, json!({})),
            api("throttled", "throttle", &echo, json!({})),
            api("slow", "hang", &echo, json!({})),
            denied_quietly,
        ]
    })
    .to_string();
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter).await;

    let r = envoy
        .send("GET", "/missing/x", &[("x-request-id", "r1")], b"")
        .await;
    assert_eq!(r.status, 502);
    let body = r.json();
    assert_eq!(body["requestId"], r.request_id());
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("function:missing"),
        "{body}"
    );

    let r = envoy.send("GET", "/failing/x", &[], b"").await;
    assert_eq!(r.status, 502, "{}", r.text());
    let body = r.json();
    assert!(
        body["message"].as_str().unwrap().contains("Handled"),
        "{body}"
    );
    assert!(
        body.get("error").is_some(),
        "the function's error is included: {body}"
    );
    let r = envoy.send("GET", "/failing418/x", &[], b"").await;
    assert_eq!(r.status, 418);

    let r = envoy.send("GET", "/denied/x", &[], b"").await;
    assert_eq!(r.status, 502);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{}",
        r.text()
    );

    // Without expose_errors: API Gateway's words, nothing of the IAM
    // principal, the account or the ARN; the invoker logs the reason.
    let r = envoy.send("GET", "/deniedquietly/x", &[], b"").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json(),
        json!({"message": "Internal server error", "requestId": r.request_id()})
    );
    assert!(
        invoker.logs().contains("AccessDenied"),
        "{}",
        invoker.logs()
    );

    let r = envoy.send("GET", "/throttled/x", &[], b"").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));

    let started = Instant::now();
    let r = envoy.send("GET", "/slow/x", &[], b"").await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(1800),
        "{took:?}"
    );
    assert!(
        r.json()["message"].as_str().unwrap().contains("1s"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn invoker_down_is_503_and_recovers_when_it_is_back() {
    let moto = Moto::start(MotoOptions::default()).await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[stored_endpoint("main", &moto.url, &[&echo], "")]);
    let env = key_env("main", moto.fixture.user("invoker"));
    let mut invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let addr = invoker.addr.clone();
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&addr),
        &filter_json("v2", &echo, &[]),
    )
    .await;
    assert_eq!(
        envoy.send("GET", "/shop/items/1", &[], b"").await.status,
        200
    );

    invoker.terminate();
    invoker.wait_exit(Duration::from_secs(10)).await;
    let r = envoy
        .send("GET", "/shop/items/1", &[("x-request-id", "r-down")], b"")
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(
        r.json(),
        json!({"message": "the lambdagate invoker is unreachable", "requestId": r.request_id()})
    );

    let _back = InvokerProcess::start_at(BIN, &yaml, &env_refs(&env), "info", &addr).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = envoy.send("GET", "/shop/items/1", &[], b"").await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn envoy_reaches_the_invoker_over_a_unix_socket() {
    let moto = Moto::start(MotoOptions::default()).await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[stored_endpoint("main", &moto.url, &[&echo], "")]);
    let env = key_env("main", moto.fixture.user("invoker"));
    let invoker = InvokerProcess::start_unix(BIN, &yaml, &env_refs(&env), "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_json("v2", &echo, &[]),
    )
    .await;
    let r = envoy.send("GET", "/shop/items/9", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pathParameters"]["id"], "9");
}

#[tokio::test]
async fn an_api_whose_endpoint_assumes_a_role_in_another_account() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let cross_echo = moto.fixture.function("cross-echo").to_owned();
    let role = moto.fixture.role("cross").to_owned();
    let yaml = config(&[stored_endpoint(
        "main",
        &moto.url,
        &["arn:aws:lambda:us-east-1:222222222222:function:*"],
        &format!("    assume_role:\n      role_arn: {role}\n"),
    )]);
    let env = key_env("main", moto.fixture.user("assumer"));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_json("v2", &cross_echo, &[]),
    )
    .await;
    for i in 0..5 {
        let r = envoy
            .send("GET", &format!("/shop/items/{i}"), &[], b"")
            .await;
        assert_eq!(r.status, 200, "{}\n{}", r.text(), invoker.logs());
        let event = r.json();
        assert_eq!(event["pathParameters"]["id"], i.to_string());
        // The event names the account that owns the function.
        assert_eq!(event["requestContext"]["accountId"], "222222222222");
    }
    let metrics = invoker.metrics().await;
    assert_eq!(
        lambdagate_harness::http::metric_value(
            &metrics,
            "lambdagate_sts_refreshes_total",
            &[("endpoint", "main")]
        ),
        Some(1.0),
        "{metrics}"
    );
}
