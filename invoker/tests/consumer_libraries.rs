//! Functions written for API Gateway behave the same behind lambdagate:
//! real consumer libraries (Rust `lambda_http`, Powertools for AWS Lambda's
//! REST and HTTP resolvers, Mangum) run in real function processes (the
//! invoker's `local` access method) behind real Envoy. Each test function
//! (tests/functions/) answers with what its library observed; each case
//! checks that against what the client sent, for a REST (payload 1.0) and
//! an HTTP API (payload 2.0).
//!
//! The filter config uses the API fields `binary_media_types` (v1),
//! `stage`, `stage_variables` and `domain_name`. Every mismatch is
//! collected, so that one run lists all of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use lambdagate_harness::{
    EnvoyProcess, InvokerAddress, InvokerProcess, http_observer_rust, repo_root, venv,
};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:000000000000:function:{name}")
}

/// A local endpoint `local` with these function entries (YAML list items).
fn local_config(functions: &[String]) -> String {
    format!(
        "endpoints:\n  local:\n    access_method: local\n    region: {REGION}\n    functions:\n{}",
        functions.concat()
    )
}

fn python_function(name: &str, dir: &str, handler: &str) -> String {
    format!(
        "    - name: {name}\n      command: [\"{python}\", -m, awslambdaric, \"{handler}\"]\n      working_dir: \"{dir}\"\n      environment: {{PYTHONUNBUFFERED: \"1\"}}\n",
        python = venv().join("bin/python").display(),
        dir = repo_root().join("tests/functions").join(dir).display(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::V2 => "v2",
        }
    }
}

/// The API a case is sent to: its context (base path).
fn context(format: Format, staged: bool) -> &'static str {
    match (format, staged) {
        (Format::V1, false) => "/rest",
        (Format::V2, false) => "/http",
        (Format::V1, true) => "/rest-prod",
        (Format::V2, true) => "/http-prod",
    }
}

const STAGE: &str = "prod";
const DOMAIN: &str = "api.example.test";

/// The path an event carries for a named stage, as API Gateway sends it:
/// REST puts the stage in `requestContext.path` only, an HTTP API in
/// `rawPath` and `requestContext.http.path` as well (Powertools'
/// APIGatewayProxyEventV2.path strips it again, lambda_http keeps it).
fn staged_path(context: &str, path: &str) -> String {
    format!("/{STAGE}{context}{path}")
}

/// The filter config: per payload format an API without a stage and one
/// with stage `prod`, stage variables and a domain name; every API has a
/// greedy and a one-segment resource on the function `function(format)`.
fn filter_config(function: impl Fn(Format) -> &'static str) -> String {
    let mut apis = Vec::new();
    for format in [Format::V1, Format::V2] {
        for staged in [false, true] {
            let context = context(format, staged);
            let arn = arn(function(format));
            let mut api = json!({
                "name": context.trim_start_matches('/'), "version": "v1", "context": context,
                "endpoint": "local", "payload_format": format.name(), "expose_errors": true,
                "resources": [
                    {"verb": "GET", "uri_template": "/files/{path+}", "arn": arn, "timeout_seconds": 20},
                    {"verb": "ANY", "uri_template": "/items/{item_id}", "arn": arn, "timeout_seconds": 20},
                ],
            });
            if format == Format::V1 {
                // REST semantics: base64 only for these content types.
                api["binary_media_types"] = json!(["application/octet-stream", "image/*"]);
            }
            if staged {
                api["stage"] = json!(STAGE);
                api["stage_variables"] = json!({"color": "blue"});
                api["domain_name"] = json!(DOMAIN);
            }
            apis.push(api);
        }
    }
    json!({ "apis": apis }).to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// `/files/{path+}` with `a/b/c.txt`.
    GreedyPath,
    /// `caf%C3%A9`: a percent-encoded UTF-8 path parameter.
    EncodedUtf8Param,
    /// `a%20b`: a percent-encoded space.
    EncodedSpaceParam,
    /// `日本-🐈` percent-encoded (3- and 4-byte UTF-8). Raw non-ASCII bytes
    /// in the request line are refused by Envoy (400) before any filter.
    NonAsciiParam,
    /// `?tag=a&tag=b`.
    RepeatedQueryKey,
    /// Two `X-Multi` header lines.
    RepeatedHeader,
    /// Two cookies in one `Cookie` header.
    TwoCookies,
    /// Bytes 0x00..=0xff as `application/octet-stream`.
    BinaryBody,
    /// A POST without a body.
    EmptyBody,
    /// A UTF-8 JSON body.
    TextBody,
    /// An API without a stage: `$default`, no stage variables.
    NoStage,
    /// An API with stage `prod`, stage variables and a domain name.
    Stage,
}

const CASES: [Case; 12] = [
    Case::GreedyPath,
    Case::EncodedUtf8Param,
    Case::EncodedSpaceParam,
    Case::NonAsciiParam,
    Case::RepeatedQueryKey,
    Case::RepeatedHeader,
    Case::TwoCookies,
    Case::BinaryBody,
    Case::EmptyBody,
    Case::TextBody,
    Case::NoStage,
    Case::Stage,
];

const TEXT_BODY: &str = r#"{"greeting":"grüß dich","n":[1,2]}"#;

fn binary_body() -> Vec<u8> {
    (0..=255u8).collect()
}

/// What the client sends: method, path below the API's context, headers, body.
struct Sent {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
}

impl Case {
    fn staged(self) -> bool {
        self == Case::Stage
    }

    fn sent(self) -> Sent {
        let get = |path| Sent {
            method: "GET",
            path,
            headers: vec![],
            body: vec![],
        };
        match self {
            Case::GreedyPath => get("/files/a/b/c.txt"),
            Case::EncodedUtf8Param => get("/items/caf%C3%A9"),
            Case::EncodedSpaceParam => get("/items/a%20b"),
            Case::NonAsciiParam => get("/items/%E6%97%A5%E6%9C%AC-%F0%9F%90%88"),
            Case::RepeatedQueryKey => get("/items/q?tag=a&tag=b"),
            Case::RepeatedHeader => Sent {
                headers: vec![("X-Multi", "one"), ("X-Multi", "two")],
                ..get("/items/h")
            },
            Case::TwoCookies => Sent {
                headers: vec![("Cookie", "a=1; b=2")],
                ..get("/items/c")
            },
            Case::BinaryBody => Sent {
                method: "POST",
                headers: vec![("content-type", "application/octet-stream")],
                body: binary_body(),
                ..get("/items/bin")
            },
            Case::EmptyBody => Sent {
                method: "POST",
                ..get("/items/empty")
            },
            Case::TextBody => Sent {
                method: "POST",
                headers: vec![("content-type", "application/json")],
                body: TEXT_BODY.as_bytes().to_vec(),
                ..get("/items/text")
            },
            Case::NoStage | Case::Stage => get("/items/s"),
        }
    }
}

/// Expected observations: (JSON pointer into the function's answer, value).
type Expected = Vec<(String, Value)>;

fn expect(pairs: &[(&str, Value)]) -> Expected {
    pairs
        .iter()
        .map(|(pointer, value)| ((*pointer).to_owned(), value.clone()))
        .collect()
}

/// Sends every case to both payload formats; returns the mismatches and
/// the number of checks made.
async fn run_cases(
    envoy: &EnvoyProcess,
    invoker: &InvokerProcess,
    expected: impl Fn(Case, Format, &str) -> Expected,
) -> (Vec<String>, usize) {
    let mut mismatches = Vec::new();
    let mut checks = 0;
    for format in [Format::V1, Format::V2] {
        for case in CASES {
            let context = context(format, case.staged());
            let sent = case.sent();
            let response = envoy
                .send(
                    sent.method,
                    &format!("{context}{}", sent.path),
                    &sent.headers,
                    &sent.body,
                )
                .await;
            let what = format!("{} {case:?}", format.name());
            checks += 1;
            let observed: Value = match serde_json::from_slice(&response.body) {
                Ok(observed) if response.status == 200 => observed,
                _ => {
                    mismatches.push(format!(
                        "{what}: status {} {}\n{}",
                        response.status,
                        response.text(),
                        invoker.logs()
                    ));
                    continue;
                }
            };
            for (pointer, want) in expected(case, format, context) {
                checks += 1;
                let got = observed.pointer(&pointer).unwrap_or(&Value::Null);
                if *got != want {
                    mismatches.push(format!("{what} {pointer}: expected {want}, observed {got}"));
                }
            }
        }
    }
    (mismatches, checks)
}

fn assert_no_mismatches(consumer: &str, (mismatches, checks): (Vec<String>, usize)) {
    assert!(
        mismatches.is_empty(),
        "{consumer}: {} of {checks} checks failed:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[tokio::test]
async fn lambda_http_observes_what_the_client_sent() {
    let function = format!(
        "    - name: observer-rust\n      command: [\"{}\"]\n",
        http_observer_rust().display()
    );
    let invoker = InvokerProcess::start(BIN, &local_config(&[function]), &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_config(|_| "observer-rust"),
    )
    .await;
    let result = run_cases(&envoy, &invoker, |case, format, context| {
        let origin = match format {
            Format::V1 => "ApiGatewayV1",
            Format::V2 => "ApiGatewayV2",
        };
        let mut expected = expect(&[("/origin", json!(origin))]);
        let path = |p: &str| json!(format!("{context}{p}"));
        expected.extend(match case {
            Case::GreedyPath => expect(&[
                ("/method", json!("GET")),
                ("/path_parameters", json!({"path": ["a/b/c.txt"]})),
                ("/uri_path", path("/files/a/b/c.txt")),
                ("/raw_http_path", path("/files/a/b/c.txt")),
            ]),
            Case::EncodedUtf8Param => expect(&[
                ("/path_parameters", json!({"item_id": ["café"]})),
                ("/uri_path", path("/items/caf%C3%A9")),
                ("/raw_http_path", path("/items/caf%C3%A9")),
            ]),
            Case::EncodedSpaceParam => expect(&[
                ("/path_parameters", json!({"item_id": ["a b"]})),
                ("/uri_path", path("/items/a%20b")),
            ]),
            Case::NonAsciiParam => expect(&[
                ("/path_parameters", json!({"item_id": ["日本-🐈"]})),
                ("/uri_path", path("/items/%E6%97%A5%E6%9C%AC-%F0%9F%90%88")),
            ]),
            Case::RepeatedQueryKey => expect(&[
                ("/query_string_parameters", json!({"tag": ["a", "b"]})),
                ("/raw_query", json!("tag=a&tag=b")),
            ]),
            // v1: lambda_http lays the event's `headers` (the last value, as
            // REST sends it) over `multiValueHeaders`, so it keeps one value
            // (on AWS too). v2: HTTP API joins repeated headers with commas.
            Case::RepeatedHeader => expect(&[(
                "/headers/x-multi",
                match format {
                    Format::V1 => json!(["two"]),
                    Format::V2 => json!(["one,two"]),
                },
            )]),
            // v2: from the event's `cookies`, joined back by lambda_http.
            Case::TwoCookies => expect(&[("/headers/cookie", json!(["a=1; b=2"]))]),
            Case::BinaryBody => expect(&[
                ("/method", json!("POST")),
                ("/body_kind", json!("binary")),
                ("/body_base64", json!(STANDARD.encode(binary_body()))),
            ]),
            Case::EmptyBody => expect(&[
                ("/method", json!("POST")),
                ("/body_kind", json!("empty")),
                ("/body_base64", json!("")),
            ]),
            Case::TextBody => expect(&[
                ("/body_kind", json!("text")),
                ("/body_base64", json!(STANDARD.encode(TEXT_BODY))),
            ]),
            Case::NoStage => expect(&[
                ("/stage", json!("$default")),
                ("/stage_variables", json!({})),
                ("/uri_path", path("/items/s")),
            ]),
            Case::Stage => expect(&[
                ("/stage", json!(STAGE)),
                ("/stage_variables", json!({"color": ["blue"]})),
                ("/domain_name", json!(DOMAIN)),
                ("/path_parameters", json!({"item_id": ["s"]})),
                // lambda_http puts a stage other than `$default` in front of
                // the URI path (unless AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH
                // is set), or keeps it when the event's path has it (v2).
                ("/uri_path", json!(staged_path(context, "/items/s"))),
                (
                    "/raw_http_path",
                    match format {
                        Format::V1 => path("/items/s"),
                        Format::V2 => json!(staged_path(context, "/items/s")),
                    },
                ),
            ]),
        });
        expected
    })
    .await;
    assert_no_mismatches("lambda_http", result);
}

#[tokio::test]
async fn powertools_resolvers_observe_what_the_client_sent() {
    let functions = [
        python_function("powertools-rest", "powertools-observer", "app.rest_handler"),
        python_function("powertools-http", "powertools-observer", "app.http_handler"),
    ];
    let invoker = InvokerProcess::start(BIN, &local_config(&functions), &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_config(|format| match format {
            Format::V1 => "powertools-rest",
            Format::V2 => "powertools-http",
        }),
    )
    .await;
    let result = run_cases(&envoy, &invoker, |case, format, context| {
        let path = |p: &str| json!(format!("{context}{p}"));
        let v1 = format == Format::V1;
        let item = |id: &str| {
            expect(&[
                ("/route", json!("/items/<item_id>")),
                ("/router_params", json!({"item_id": id})),
            ])
        };
        match case {
            Case::GreedyPath => expect(&[
                ("/route", json!("/files/.+")),
                ("/method", json!("GET")),
                ("/path", path("/files/a/b/c.txt")),
                ("/path_parameters", json!({"path": "a/b/c.txt"})),
            ]),
            // The router matches the path as sent (percent-encoded), so its
            // argument is encoded; the event's pathParameters are decoded.
            Case::EncodedUtf8Param => [
                item("caf%C3%A9"),
                expect(&[
                    ("/path", path("/items/caf%C3%A9")),
                    ("/path_parameters", json!({"item_id": "café"})),
                ]),
            ]
            .concat(),
            Case::EncodedSpaceParam => [
                item("a%20b"),
                expect(&[("/path_parameters", json!({"item_id": "a b"}))]),
            ]
            .concat(),
            Case::NonAsciiParam => [
                item("%E6%97%A5%E6%9C%AC-%F0%9F%90%88"),
                expect(&[("/path_parameters", json!({"item_id": "日本-🐈"}))]),
            ]
            .concat(),
            Case::RepeatedQueryKey if v1 => expect(&[
                ("/query_string_parameters", json!({"tag": "b"})),
                (
                    "/multi_value_query_string_parameters",
                    json!({"tag": ["a", "b"]}),
                ),
            ]),
            Case::RepeatedQueryKey => expect(&[
                ("/query_string_parameters", json!({"tag": "a,b"})),
                ("/raw_query_string", json!("tag=a&tag=b")),
            ]),
            Case::RepeatedHeader if v1 => expect(&[
                ("/headers/x-multi", json!("two")),
                ("/multi_value_headers/x-multi", json!(["one", "two"])),
            ]),
            Case::RepeatedHeader => expect(&[("/headers/x-multi", json!("one,two"))]),
            Case::TwoCookies if v1 => expect(&[
                ("/headers/cookie", json!("a=1; b=2")),
                ("/resolved_cookies", json!({"a": "1", "b": "2"})),
            ]),
            // HTTP API moves cookies out of the headers.
            Case::TwoCookies => expect(&[
                ("/cookies", json!(["a=1", "b=2"])),
                ("/headers/cookie", Value::Null),
                ("/resolved_cookies", json!({"a": "1", "b": "2"})),
            ]),
            Case::BinaryBody => expect(&[
                ("/method", json!("POST")),
                ("/is_base64_encoded", json!(true)),
                ("/body", json!(STANDARD.encode(binary_body()))),
                // decoded_body decodes base64 to UTF-8 text (on AWS too).
                ("/decoded_body", json!({"error": "UnicodeDecodeError"})),
            ]),
            Case::EmptyBody => expect(&[
                ("/method", json!("POST")),
                ("/body", Value::Null),
                ("/decoded_body", Value::Null),
                ("/is_base64_encoded", json!(false)),
            ]),
            Case::TextBody => expect(&[
                ("/body", json!(TEXT_BODY)),
                ("/decoded_body", json!(TEXT_BODY)),
                ("/is_base64_encoded", json!(false)),
            ]),
            Case::NoStage => [
                item("s"),
                expect(&[
                    ("/stage", json!("$default")),
                    ("/stage_variables", json!({})),
                    ("/path", path("/items/s")),
                ]),
                if v1 {
                    expect(&[("/request_context_path", path("/items/s"))])
                } else {
                    vec![]
                },
            ]
            .concat(),
            Case::Stage => [
                item("s"),
                expect(&[
                    ("/stage", json!(STAGE)),
                    ("/stage_variables", json!({"color": "blue"})),
                    ("/domain_name", json!(DOMAIN)),
                    ("/path", path("/items/s")),
                ]),
                if v1 {
                    expect(&[(
                        "/request_context_path",
                        json!(staged_path(context, "/items/s")),
                    )])
                } else {
                    expect(&[("/raw_path", json!(staged_path(context, "/items/s")))])
                },
            ]
            .concat(),
        }
    })
    .await;
    assert_no_mismatches("Powertools", result);
}

#[tokio::test]
async fn mangum_gives_the_asgi_app_what_the_client_sent() {
    let function = python_function("mangum", "mangum-observer", "app.handler");
    let invoker = InvokerProcess::start(BIN, &local_config(&[function]), &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter_config(|_| "mangum"),
    )
    .await;
    let result = run_cases(&envoy, &invoker, |case, format, context| {
        // Mangum's scope path is the event's path, percent-decoded; it has
        // no raw_path.
        let path = |p: &str| {
            expect(&[
                ("/path", json!(format!("{context}{p}"))),
                ("/raw_path", Value::Null),
            ])
        };
        match case {
            Case::GreedyPath => path("/files/a/b/c.txt"),
            Case::EncodedUtf8Param => path("/items/café"),
            Case::EncodedSpaceParam => path("/items/a b"),
            Case::NonAsciiParam => path("/items/日本-🐈"),
            Case::RepeatedQueryKey => expect(&[("/query_string", json!("tag=a&tag=b"))]),
            // v1: Mangum joins multiValueHeaders with ", "; v2: HTTP API's comma.
            Case::RepeatedHeader => expect(&[(
                "/headers/x-multi",
                match format {
                    Format::V1 => json!(["one, two"]),
                    Format::V2 => json!(["one,two"]),
                },
            )]),
            Case::TwoCookies => expect(&[("/headers/cookie", json!(["a=1; b=2"]))]),
            Case::BinaryBody => expect(&[
                ("/method", json!("POST")),
                ("/body_base64", json!(STANDARD.encode(binary_body()))),
            ]),
            Case::EmptyBody => expect(&[("/method", json!("POST")), ("/body_base64", json!(""))]),
            Case::TextBody => expect(&[("/body_base64", json!(STANDARD.encode(TEXT_BODY)))]),
            Case::NoStage => path("/items/s"),
            // Mangum takes the event's path (v2: requestContext.http.path,
            // which carries a named stage) and strips only its configured
            // api_gateway_base_path.
            Case::Stage => match format {
                Format::V1 => path("/items/s"),
                Format::V2 => expect(&[("/path", json!(staged_path(context, "/items/s")))]),
            },
        }
    })
    .await;
    assert_no_mismatches("Mangum", result);
}
