//! Odd and random inputs never panic (a panic in the wasm VM answers 503
//! and, without FAIL_RELOAD, breaks every later request on that worker),
//! and every event built is valid JSON.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use lambdagate_core::{Decision, GrpcStatus, HttpResponse, RequestInfo};
use lambdagate_proto::InvokeReply;
use prost::Message;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn text(&mut self, pieces: &[&str], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| self.pick(pieces)).collect()
    }
}

const PATH_PIECES: &[&str] = &[
    "/",
    "/",
    "users",
    "users2",
    "userswso2",
    "raw",
    "user",
    "files",
    "7",
    "%",
    "%2",
    "%zz",
    "%FF",
    "%C3",
    "%C3%A9",
    "%2F",
    "%00",
    "+",
    "?",
    "&",
    "=",
    "#",
    "{id}",
    "é",
    "\u{FFFD}",
    "..",
    ".",
    "//",
    " ",
    "\t",
    "a=1",
    "%%",
    "😀",
];
const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "",
    "PROPFIND", "G\u{0}T",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "image/png",
    "text/plain; charset=utf-8",
    "",
    ";",
    "application/+json",
    "multipart/form-data; boundary=x",
    "TEXT/HTML",
];
const PAYLOADS: &[&str] = &[
    r#"{"statusCode": 200, "body": "ok"}"#,
    r#"{"statusCode": "abc"}"#,
    r#"{"statusCode": -1}"#,
    r#"{"statusCode": 99999}"#,
    r#"{"statusCode": 1e400}"#,
    r#"{"statusCode": 18446744073709551616}"#,
    r#"{"statusCode": 200.0000001}"#,
    r#"{"statusCode": " 201 "}"#,
    r#"{"statusCode": [], "body": {}}"#,
    r#"{"statusCode": 200, "isBase64Encoded": true, "body": "====="}"#,
    r#"{"statusCode": 200, "isBase64Encoded": true, "body": "\u0000"}"#,
    r#"{"statusCode": 200, "headers": {"": "x", "\r\n": "y", "x": "\u0000"}}"#,
    r#"{"statusCode": 200, "cookies": [null]}"#,
    r#"{"statusCode": 200, "multiValueHeaders": {"a": null}}"#,
    r#"{"statusCode": 200, "statusCode": 201}"#,
    r#"{"statusCode": 200"#,
    "not json",
    "",
    "\u{0}\u{1}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
];

fn assert_sane(response: &HttpResponse) {
    // Never 1xx: not a final response (Envoy cannot send one locally).
    assert!((200..=599).contains(&response.status), "{response:?}");
    for (name, value) in &response.headers {
        assert!(!name.is_empty());
        assert!(!value.contains(['\r', '\n', '\0']), "{name}: {value:?}");
    }
}

fn deep_json(depth: usize) -> String {
    format!(
        r#"{{"statusCode": 200, "body": {}}}"#,
        "[".repeat(depth) + &"]".repeat(depth)
    )
}

#[test]
fn random_requests_and_replies_never_panic() {
    let config = common::config();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut seen = [0usize; 3];
    for round in 0..4000 {
        let method = rng.pick(METHODS).to_owned();
        let mut path = String::new();
        if rng.below(4) != 0 {
            path.push_str(rng.pick(&[
                "/users/user/",
                "/users2/files/",
                "/userswso2/user/",
                "/raw/user/",
                "/users",
                "/users2/",
            ]));
        }
        path.push_str(&rng.text(PATH_PIECES, 12));
        let mut headers = common::headers(&method, &path, &[]);
        for _ in 0..rng.below(6) {
            let name = rng.pick(&[
                "content-type",
                "Content-Type",
                "cookie",
                "host",
                ":authority",
                "x-request-id",
                "content-length",
                "user-agent",
                "X-Custom",
                ":path",
            ]);
            let value = match name {
                "content-type" | "Content-Type" => rng.pick(CONTENT_TYPES).to_owned(),
                "content-length" => rng
                    .pick(&[
                        "0",
                        "10",
                        "-1",
                        "abc",
                        "99999999999999999999",
                        "6291456",
                        "6291457",
                    ])
                    .to_owned(),
                _ => rng.text(PATH_PIECES, 8),
            };
            headers.push((name.to_owned(), value));
        }
        let info = RequestInfo {
            request_id: rng.text(&["", "r", "\"", "\\", "é"], 3),
            source_ip: rng
                .pick(&["", "1.2.3.4", "1.2.3.4:5", "[::1]:80", "::1", "[", "]:"])
                .to_owned(),
            now_ms: rng.next(),
            protocol: rng.pick(&["", "HTTP/2", "HTTP/1.0"]).to_owned(),
        };
        match config.on_request_headers(headers, info) {
            Decision::Continue => seen[0] += 1,
            Decision::Respond(response) => {
                seen[1] += 1;
                assert_sane(&response);
            }
            Decision::NeedBody(plan) => {
                seen[2] += 1;
                let body = rng.bytes(300);
                match plan.build_invoke(&body) {
                    Err(response) => assert_sane(&response),
                    Ok(invoke) => {
                        if !matches!(
                            plan.target().payload_format(),
                            lambdagate_core::PayloadFormat::Passthrough
                        ) {
                            serde_json::from_slice::<serde_json::Value>(&invoke.payload)
                                .unwrap_or_else(|e| {
                                    panic!("round {round}: invalid event JSON: {e}")
                                });
                        }
                        let _ = invoke.encode();
                    }
                }
                let function_error = rng.pick(&["", "", "Unhandled", "Handled"]).to_owned();
                let mut payload = rng.pick(PAYLOADS).as_bytes().to_vec();
                if rng.below(5) == 0 {
                    payload = rng.bytes(64);
                }
                let reply = InvokeReply {
                    status_code: rng.next() as u32,
                    payload,
                    function_error,
                    executed_version: rng.text(&["$LATEST", "\n", "3"], 2),
                    lambda_request_id: rng.text(&["id", "\r", ""], 2),
                    error_kind: rng.next() as i32,
                };
                assert_sane(&plan.on_reply(Ok(&reply.encode_to_vec())));
                assert_sane(&plan.on_reply(Ok(&rng.bytes(40))));
                let message = rng.text(
                    &[
                        "THROTTLED",
                        "TIMEOUT",
                        ": ",
                        "x",
                        "FUNCTION_NOT_FOUND",
                        "é",
                        "\u{0}",
                    ],
                    4,
                );
                assert_sane(&plan.on_reply(Err(GrpcStatus {
                    code: rng.next() as u32 % 20,
                    message: &message,
                })));
            }
        }
    }
    // Every branch was exercised.
    assert!(seen.iter().all(|&n| n > 200), "{seen:?}");
}

#[test]
fn huge_and_many_headers() {
    let config = common::config();
    // Big, but the events stay under Lambda's 6 MB (v1 repeats headers).
    let big = "v".repeat(512 << 10);
    let mut headers = common::headers("POST", "/users/user/7?q=1", &[]);
    for i in 0..5000 {
        headers.push((format!("x-h{}", i % 700), big[..(i % 97)].to_owned()));
    }
    headers.push(("x-big".into(), big.clone()));
    headers.push(("cookie".into(), big.clone()));
    for context in ["users", "users2", "userswso2"] {
        let mut h = headers.clone();
        h[1].1 = format!("/{context}/user/{big}");
        let plan = common::plan(&config, h);
        let invoke = plan.build_invoke(b"{}").unwrap();
        let event: serde_json::Value = serde_json::from_slice(&invoke.payload).unwrap();
        assert_eq!(
            event["pathParameters"]["id"].as_str().map(str::len),
            Some(512 << 10)
        );
    }
}

#[test]
fn deep_and_large_replies() {
    let config = common::config();
    let plan = common::plan(&config, common::headers("POST", "/users/user/7", &[]));
    for payload in [
        deep_json(10),
        deep_json(100_000),
        format!(
            r#"{{"statusCode": 200, "body": "{}"}}"#,
            "x".repeat(6 << 20)
        ),
    ] {
        let reply = InvokeReply {
            status_code: 200,
            payload: payload.into_bytes(),
            ..InvokeReply::default()
        };
        assert_sane(&plan.on_reply(Ok(&reply.encode_to_vec())));
    }
    // A body of 6 MB of zeroes: valid request, event too large in base64.
    let plan = common::plan(
        &config,
        common::headers(
            "POST",
            "/users/user/7",
            &[("content-type", "application/octet-stream")],
        ),
    );
    assert_eq!(
        plan.build_invoke(&vec![0; 6 << 20]).unwrap_err().status,
        413
    );
}

#[test]
fn random_configs_never_panic() {
    let mut rng = Rng(42);
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"apis\"",
        ":",
        ",",
        "\"name\"",
        "\"x\"",
        "1",
        "null",
        "\"/\"",
        "\"resources\"",
        "\"verb\"",
        "\"uri_template\"",
        "\"arn\"",
        "\"{a+}\"",
        "\u{0}",
        "é",
    ];
    for _ in 0..5000 {
        let text = rng.text(&pieces, 30);
        let _ = lambdagate_core::parse(text.as_bytes());
        let _ = lambdagate_core::parse(&rng.bytes(50));
    }
    for template in [
        "/{", "/}", "/{+}", "/{a++}", "/{{a}}", "/\u{0}", "/é", "/{é}", "/a/{b+}/",
    ] {
        let config = format!(
            r#"{{"apis":[{{"name":"a","version":"1","context":"/","endpoint":"e",
               "resources":[{{"verb":"GET","uri_template":"{template}",
               "arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}}]}}]}}"#
        );
        let _ = lambdagate_core::parse(config.as_bytes());
    }
}
