//! Each payload format behaves as its API Gateway flavour, checked through
//! real Envoy and a real Python function on the official runtime client
//! (`awslambdaric`) run by the invoker's `local` access method: what the
//! function observed (its event and `_X_AMZN_TRACE_ID`) and what the client
//! got back.
//!
//! The same resources are served as a REST API (payload v1, stage `prod`,
//! `binary_media_types: [image/png]`) under `/rest` and as an HTTP API
//! (payload v2) under `/http`. `GET .../echo` answers with what the function
//! saw; `POST .../reply` answers with the JSON the client sent as its body,
//! so a test chooses the function's reply.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambdagate_harness::http::Response;
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, venv};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");

const HANDLER: &str = r#"
import base64, json, os

def handler(event, context):
    if event.get("resource", event.get("routeKey", "")).endswith("/reply"):
        body = event["body"]
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return json.loads(body)
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"event": event, "trace_env": os.environ.get("_X_AMZN_TRACE_ID")}),
    }
"#;

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:probe";

struct Stack {
    envoy: EnvoyProcess,
    _invoker: InvokerProcess,
    _dir: tempfile::TempDir,
}

async fn stack() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probe.py"), HANDLER).unwrap();
    let config = format!(
        "endpoints:\n  local:\n    access_method: local\n    region: us-east-1\n    functions:\n    - name: probe\n      command: [\"{}\", -m, awslambdaric, \"probe.handler\"]\n      working_dir: \"{}\"\n      max_concurrency: 4\n",
        venv().join("bin/python").display(),
        dir.path().display()
    );
    let invoker = InvokerProcess::start(BIN, &config, &[], "info").await;
    let resources = json!([
        {"verb": "GET", "uri_template": "/user/me", "arn": ARN},
        {"verb": "ANY", "uri_template": "/user/{id}", "arn": ARN},
        {"verb": "ANY", "uri_template": "/echo", "arn": ARN},
        {"verb": "POST", "uri_template": "/reply", "arn": ARN},
    ]);
    let filter = json!({"apis": [
        {"name": "rest", "version": "v1", "context": "/rest", "endpoint": "local",
         "payload_format": "v1", "stage": "prod", "stage_variables": {"color": "blue"},
         "binary_media_types": ["image/png"], "domain_name": "api.example.test",
         "resources": resources},
        {"name": "http", "version": "v1", "context": "/http", "endpoint": "local",
         "payload_format": "v2", "stage_variables": {"color": "green"},
         "resources": resources},
    ]});
    let envoy =
        EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
    Stack {
        envoy,
        _invoker: invoker,
        _dir: dir,
    }
}

impl Stack {
    /// What the function observed for a request to `.../echo`.
    async fn observed(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (Response, Value) {
        let r = self.envoy.send("POST", path, headers, body).await;
        assert_eq!(r.status, 200, "{path}: {}\n{}", r.text(), self.envoy.logs());
        let seen = r.json();
        (r, seen)
    }

    /// The client's response when the function replies `reply`.
    async fn reply(&self, api: &str, reply: Value, headers: &[(&str, &str)]) -> Response {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.envoy
            .send(
                "POST",
                &format!("/{api}/reply"),
                &all,
                reply.to_string().as_bytes(),
            )
            .await
    }
}

#[tokio::test]
async fn each_format_routes_builds_and_answers_as_its_api_gateway_flavour() {
    let s = stack().await;

    // ---- routing: REST picks the resource, then the method.
    let r = s.envoy.send("POST", "/rest/user/me", &[], b"").await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET"));
    // An HTTP API takes the most specific route whose method matches.
    let r = s.envoy.send("POST", "/http/user/me", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["event"]["pathParameters"]["id"], "me");
    // The base path is matched decoded, as the resources are.
    let r = s.envoy.send("GET", "/%72est/user/7", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["event"]["pathParameters"]["id"], "7");

    // ---- the event: stage, ids, domain, forwarding headers.
    let (_, rest) = s
        .observed(
            "/rest/echo",
            &[("host", "attacker.example"), ("x-forwarded-for", "6.6.6.6")],
            b"",
        )
        .await;
    let e = &rest["event"];
    assert_eq!(e["requestContext"]["stage"], "prod");
    assert_eq!(e["requestContext"]["path"], "/prod/rest/echo");
    assert_eq!(e["path"], "/rest/echo");
    assert_eq!(e["stageVariables"], json!({"color": "blue"}));
    assert_eq!(e["requestContext"]["domainName"], "api.example.test");
    assert_eq!(e["requestContext"]["domainPrefix"], "api");
    let api_id = e["requestContext"]["apiId"].as_str().unwrap().to_owned();
    assert_eq!(api_id.len(), 10);
    assert_ne!(api_id, "rest");
    let headers = &e["headers"];
    assert_eq!(headers["x-forwarded-proto"], "http");
    let port = s.envoy.addr.rsplit(':').next().unwrap();
    assert_eq!(headers["x-forwarded-port"], port);
    let xff = headers["x-forwarded-for"].as_str().unwrap();
    assert!(
        xff.starts_with("6.6.6.6,") && !xff.ends_with("6.6.6.6"),
        "Envoy appends the peer it saw: {xff}"
    );
    assert_eq!(e["requestContext"]["identity"]["sourceIp"], "127.0.0.1");
    // The same API id for every request of the API.
    let (_, again) = s.observed("/rest/echo", &[], b"").await;
    assert_eq!(again["event"]["requestContext"]["apiId"], api_id.as_str());

    let (_, http) = s.observed("/http/echo", &[], b"").await;
    let e = &http["event"];
    assert_eq!(e["requestContext"]["stage"], "$default");
    assert_eq!(e["stageVariables"], json!({"color": "green"}));
    assert_eq!(e["rawPath"], "/http/echo");

    // ---- request bodies: REST base64 only for its binary media types.
    let png = b"\x89PNG\r\n\x1a\n\x00\xff";
    let (_, seen) = s
        .observed("/rest/echo", &[("content-type", "image/png")], png)
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], true);
    assert_eq!(
        STANDARD
            .decode(seen["event"]["body"].as_str().unwrap())
            .unwrap(),
        png
    );
    let (_, seen) = s
        .observed(
            "/rest/echo",
            &[("content-type", "application/octet-stream")],
            b"plain",
        )
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], false);
    assert_eq!(seen["event"]["body"], "plain");
    // An HTTP API: anything that is not text is base64.
    let (_, seen) = s
        .observed(
            "/http/echo",
            &[("content-type", "application/octet-stream")],
            b"plain",
        )
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], true);
}

#[tokio::test]
async fn replies_are_read_as_each_format_reads_them() {
    let s = stack().await;

    // No statusCode: REST answers 502, an HTTP API infers 200.
    let r = s.reply("rest", json!({"hello": "world"}), &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["message"], "Internal server error");
    assert!(!r.request_id().is_empty());
    let r = s.reply("http", json!({"hello": "world"}), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"hello": "world"}));

    // Each format's own fields: cookies are an HTTP API's, multiValueHeaders
    // a REST API's; the other is ignored.
    let both = json!({"statusCode": 201, "body": "ok", "cookies": ["s=1"],
                      "multiValueHeaders": {"x-many": ["1", "2"]}});
    let r = s.reply("rest", both.clone(), &[]).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header_all("x-many"), ["1", "2"]);
    assert!(r.header("set-cookie").is_none(), "{:?}", r.headers);
    let r = s.reply("http", both, &[]).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("set-cookie"), Some("s=1"));
    assert!(r.header("x-many").is_none(), "{:?}", r.headers);

    // isBase64Encoded: REST decodes only for a binary Accept.
    let png = b"\x89PNG\r\n\x1a\n\x00\xff";
    let binary = json!({"statusCode": 200, "headers": {"content-type": "image/png"},
                        "body": STANDARD.encode(png), "isBase64Encoded": true});
    let r = s
        .reply("rest", binary.clone(), &[("accept", "image/png")])
        .await;
    assert_eq!(r.body, png);
    let r = s
        .reply(
            "rest",
            binary.clone(),
            &[("accept", "text/html, image/png")],
        )
        .await;
    assert_eq!(r.body, STANDARD.encode(png).as_bytes());
    let r = s.reply("rest", binary.clone(), &[]).await;
    assert_eq!(r.body, STANDARD.encode(png).as_bytes());
    let r = s.reply("http", binary, &[]).await;
    assert_eq!(r.body, png);
}

#[tokio::test]
async fn the_trace_header_reaches_the_function_and_the_client() {
    let s = stack().await;

    // A W3C traceparent is converted to X-Ray's form.
    let (r, seen) = s
        .observed(
            "/rest/echo",
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            b"",
        )
        .await;
    let expected = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1";
    assert_eq!(
        seen["trace_env"], expected,
        "the function's _X_AMZN_TRACE_ID"
    );
    assert_eq!(seen["event"]["headers"]["x-amzn-trace-id"], expected);
    assert_eq!(r.header("x-amzn-trace-id"), Some(expected));

    // A client's X-Ray header is continued.
    let client = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
    let (r, seen) = s
        .observed("/http/echo", &[("x-amzn-trace-id", client)], b"")
        .await;
    assert_eq!(seen["trace_env"], client);
    assert_eq!(seen["event"]["headers"]["x-amzn-trace-id"], client);
    assert_eq!(r.header("x-amzn-trace-id"), Some(client));

    // None (or garbage): a new one, different per request.
    let (first, seen) = s
        .observed("/http/echo", &[("x-amzn-trace-id", "Root=nonsense")], b"")
        .await;
    let new = first.header("x-amzn-trace-id").unwrap().to_owned();
    assert!(new.starts_with("Root=1-"), "{new}");
    assert_eq!(seen["trace_env"], new.as_str());
    let (second, _) = s.observed("/http/echo", &[], b"").await;
    assert_ne!(second.header("x-amzn-trace-id"), Some(new.as_str()));
}

/// The gateway sends the event without its body and the raw body beside
/// it (on the router path the body never leaves Envoy's buffer); the
/// invoker writes the body in. A function must see every byte as API
/// Gateway would pass it, for bodies large enough to arrive in many
/// pieces.
#[tokio::test]
async fn large_bodies_reach_the_function_byte_for_byte() {
    let s = stack().await;
    // Every byte value, in an order no pattern repeats soon.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let binary: Vec<u8> = (0..1024 * 1024 + 7)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect();
    // Text JSON must escape: quotes, backslashes, control characters, and
    // characters beyond ASCII.
    let text: String = "\"q\" \\ \u{1} tab\t line\n é 日本 🎉 "
        .repeat(24 * 1024)
        .chars()
        .collect();

    // REST: a binary media type goes in base64.
    let (_, seen) = s
        .observed("/rest/echo", &[("content-type", "image/png")], &binary)
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], true);
    let got = STANDARD
        .decode(seen["event"]["body"].as_str().unwrap())
        .unwrap();
    assert!(got == binary, "REST binary body differs");
    // REST: any other type is text, bytes that are not UTF-8 replaced.
    let (_, seen) = s
        .observed("/rest/echo", &[("content-type", "text/plain")], &binary)
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], false);
    assert!(
        seen["event"]["body"].as_str().unwrap() == String::from_utf8_lossy(&binary),
        "REST lossy text body differs"
    );
    // HTTP API: text stays text, escaped and unescaped again.
    let (_, seen) = s
        .observed(
            "/http/echo",
            &[("content-type", "text/plain; charset=utf-8")],
            text.as_bytes(),
        )
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], false);
    assert!(
        seen["event"]["body"].as_str().unwrap() == text,
        "HTTP API text body differs"
    );
    // HTTP API: a text type that is not UTF-8 goes in base64.
    let (_, seen) = s
        .observed("/http/echo", &[("content-type", "text/plain")], &binary)
        .await;
    assert_eq!(seen["event"]["isBase64Encoded"], true);
    let got = STANDARD
        .decode(seen["event"]["body"].as_str().unwrap())
        .unwrap();
    assert!(got == binary, "HTTP API binary body differs");
}
