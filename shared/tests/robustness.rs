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
        assert!(
            http::HeaderValue::from_str(value).is_ok(),
            "{name}: {value:?}"
        );
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
                match plan.build_invoke(body.as_slice()) {
                    Err(response) => assert_sane(&response),
                    Ok(invoke) => {
                        if !matches!(
                            plan.target().payload_format(),
                            lambdagate_core::PayloadFormat::Passthrough
                        ) {
                            serde_json::from_slice::<serde_json::Value>(
                                &invoke.lambda_event().unwrap(),
                            )
                            .unwrap_or_else(|e| panic!("round {round}: invalid event JSON: {e}"));
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
                    error_kind: rng.next() as i32 % 20,
                    error_message: rng.text(&["x", "é", "\u{0}", "arn:aws:iam::1:user/u"], 3),
                    retry_after_seconds: rng.next() as u32,
                };
                assert_sane(&plan.on_reply(Ok(&reply.encode_to_vec())));
                assert_sane(&plan.on_reply(Ok(&rng.bytes(40))));
                assert_sane(&plan.on_reply(Err(GrpcStatus {
                    code: rng.next() as u32 % 20,
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
        let event: serde_json::Value =
            serde_json::from_slice(&invoke.lambda_event().unwrap()).unwrap();
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
    assert_eq!(plan.build_invoke(vec![0; 6 << 20]).unwrap_err().status, 413);
}

/// A location `parse` may name: the top level, the cluster, a place under
/// `apis`, an unknown top-level key, or (serde reads a struct from an
/// array of its fields) a position in a top-level array.
fn is_location(at: &str, message: &str, text: &[u8]) -> bool {
    at == "config"
        || at == "invoker_cluster"
        || at == "apis"
        || at.starts_with("apis[")
        || message.starts_with(&format!("unknown field `{at}`"))
        || (at.starts_with('[') && text.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'['))
}

#[test]
fn random_config_texts_are_refused_with_a_location() {
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
    let mut refused = 0;
    for _ in 0..5000 {
        let text = rng.text(&pieces, 30).into_bytes();
        for text in [text, rng.bytes(50)] {
            match lambdagate_core::parse(&text) {
                Err(e) => {
                    refused += 1;
                    assert!(
                        is_location(e.at(), e.message(), &text),
                        "{e} for {:?}",
                        String::from_utf8_lossy(&text)
                    );
                    assert!(!e.message().is_empty());
                }
                Ok(compiled) => assert_renders_back(&compiled, &[]),
            }
        }
    }
    assert!(refused > 9000, "{refused}");
}

/// One resource of a generated config, with a request that must reach it.
struct Probe {
    api: String,
    template: String,
    method: String,
    path: String,
}

/// A field of the generated config to break, with a value that breaks it
/// and the location the error must name.
enum Fault {
    None,
    Cluster,
    Api(usize, &'static str),
    Resource(usize, usize, &'static str),
}

/// A valid random config (APIs with distinct names and contexts, each
/// resource under its own literal segment so that a probe request reaches
/// exactly it), then at most one field broken. Returns the config, the
/// probes, and the location an error must name (`None`: it is valid).
fn random_config(rng: &mut Rng) -> (serde_json::Value, Vec<Probe>, Option<String>) {
    use serde_json::{Value, json};
    let mut contexts = vec!["/", "/users", "/users/admin", "/shop/v1", "/a.b~c"];
    let mut apis = Vec::new();
    let mut probes = Vec::new();
    for i in 0..1 + rng.below(3) {
        let context = contexts.remove(rng.below(contexts.len()));
        let name = format!("{}{i}", rng.pick(&["users", "a.b", "x-1_y"]));
        let mut resources = Vec::new();
        for k in 0..1 + rng.below(4) {
            let verb = rng.pick(&["GET", "post", "ANY", "Delete", "OPTIONS"]);
            let (template, path) = *[
                ("", ""),
                ("/{id}", "/7"),
                ("/{p+}", "/a/b%20c"),
                ("/x/{a}/{b}", "/x/1/2"),
            ]
            .get(rng.below(4))
            .unwrap();
            let template = format!("/r{k}{template}");
            let mut resource = json!({
                "verb": verb, "uri_template": template,
                "arn": rng.pick(&[
                    "arn:aws:lambda:us-east-1:123456789012:function:f",
                    "arn:aws:lambda:eu-west-1:210987654321:function:g:live",
                    "arn:aws-cn:lambda:cn-north-1:123456789012:function:h:7",
                ]),
            });
            let r = resource.as_object_mut().unwrap();
            if rng.below(2) == 0 {
                r.insert(
                    "timeout_seconds".into(),
                    json!(rng.pick(&["1", "30", "900"]).parse::<u32>().unwrap()),
                );
            }
            if rng.below(2) == 0 {
                r.insert(
                    "invocation_type".into(),
                    json!(rng.pick(&["Event", "RequestResponse"])),
                );
            }
            if rng.below(2) == 0 {
                r.insert(
                    "function_error_status".into(),
                    json!(rng.pick(&["400", "502", "599"]).parse::<u16>().unwrap()),
                );
            }
            resources.push(resource);
            let base = if context == "/" { "" } else { context };
            probes.push(Probe {
                api: name.clone(),
                template: template.clone(),
                method: if verb == "ANY" {
                    "PATCH".into()
                } else {
                    verb.to_ascii_uppercase()
                },
                path: format!("{base}/r{k}{path}"),
            });
        }
        let mut api = json!({
            "name": name, "version": rng.pick(&["v1", "1.0"]), "context": context,
            "endpoint": rng.pick(&["main", "e-1"]), "resources": resources,
        });
        if rng.below(2) == 0 {
            api["payload_format"] = json!(rng.pick(&["v1", "v2", "wso2", "passthrough"]));
        }
        apis.push(api);
    }
    let mut config = json!({"apis": apis});
    if rng.below(2) == 0 {
        config["invoker_cluster"] = json!("lambdagate_invoker");
    }

    let api_count = config["apis"].as_array().unwrap().len();
    let fault = match rng.below(4) {
        0 | 1 => Fault::None,
        _ => match rng.below(8) {
            0 => Fault::Cluster,
            1..=3 => {
                let i = rng.below(api_count);
                Fault::Api(
                    i,
                    rng.pick(&[
                        "name",
                        "version",
                        "context",
                        "endpoint",
                        "payload_format",
                        "resources",
                    ]),
                )
            }
            _ => {
                let i = rng.below(api_count);
                let k = rng.below(config["apis"][i]["resources"].as_array().unwrap().len());
                Fault::Resource(
                    i,
                    k,
                    rng.pick(&[
                        "verb",
                        "uri_template",
                        "arn",
                        "timeout_seconds",
                        "timeout_type",
                        "invocation_type",
                        "function_error_status",
                        "status_type",
                        "unknown",
                    ]),
                )
            }
        },
    };
    let compile_at = |config: &Value, i: usize| {
        format!(
            "apis[{i}] ({})",
            config["apis"][i]["name"].as_str().unwrap()
        )
    };
    let resource_at = |config: &Value, i: usize, k: usize| {
        let r = &config["apis"][i]["resources"][k];
        format!(
            "{}.resources[{k}] ({} {})",
            compile_at(config, i),
            r["verb"].as_str().unwrap(),
            r["uri_template"].as_str().unwrap()
        )
    };
    let expected = match fault {
        Fault::None => None,
        Fault::Cluster => {
            config["invoker_cluster"] = json!(rng.pick(&["", "h2", "a b"]));
            Some("invoker_cluster".to_owned())
        }
        Fault::Api(i, "name") => {
            config["apis"][i]["name"] = json!(rng.pick(&["", "a b", "é"]));
            Some(format!("apis[{i}].name"))
        }
        Fault::Api(i, "payload_format") => {
            config["apis"][i]["payload_format"] = json!(rng.pick(&["v3", "V1", ""]));
            Some(format!("apis[{i}].payload_format"))
        }
        Fault::Api(i, "resources") => {
            config["apis"][i]["resources"] = json!([]);
            Some(format!("{}.resources", compile_at(&config, i)))
        }
        Fault::Api(i, field) => {
            let bad = match field {
                "version" => rng.pick(&["", "v 1"]),
                "context" => rng.pick(&["users", "/users/", "/a//b", "/{id}"]),
                _ => rng.pick(&["", "a.b", "a b"]),
            };
            config["apis"][i][field] = json!(bad);
            Some(format!("{}.{field}", compile_at(&config, i)))
        }
        Fault::Resource(i, k, field) => {
            let r = &mut config["apis"][i]["resources"][k];
            let (value, serde_level) = match field {
                "verb" => (json!(rng.pick(&["FETCH", "", "GETS"])), false),
                "uri_template" => (
                    json!(rng.pick(&["user", "/a//b", "/{a}/{a}", "/{p+}/x", "/a b"])),
                    false,
                ),
                "arn" => (
                    json!(rng.pick(&[
                        "x",
                        "arn:aws:s3:::bucket",
                        "arn:aws:lambda:us-east-1:12:function:f"
                    ])),
                    false,
                ),
                "timeout_seconds" => (
                    json!(
                        rng.pick(&["0", "901", "4294967295"])
                            .parse::<u32>()
                            .unwrap()
                    ),
                    false,
                ),
                // Wrong JSON types and out-of-range numbers: serde refuses them.
                "timeout_type" => (
                    [json!("30"), json!(-1), json!(1.5)][rng.below(3)].clone(),
                    true,
                ),
                "invocation_type" => (json!(rng.pick(&["DryRun", "event", ""])), true),
                "function_error_status" => (
                    json!(rng.pick(&["200", "399", "600"]).parse::<u16>().unwrap()),
                    false,
                ),
                "status_type" => (
                    [json!(70000), json!(-1), json!("502")][rng.below(3)].clone(),
                    true,
                ),
                _ => (json!(1), true),
            };
            let key = match field {
                "timeout_type" => "timeout_seconds",
                "status_type" => "function_error_status",
                "unknown" => "verbb",
                other => other,
            };
            r[key] = value;
            Some(if serde_level {
                format!("apis[{i}].resources[{k}].{key}")
            } else {
                format!("{}.{key}", resource_at(&config, i, k))
            })
        }
    };
    (config, probes, expected)
}

/// A config that parses renders (serde) back to JSON that parses to the
/// same config, and routes the probes to their resources.
fn assert_renders_back(compiled: &lambdagate_core::CompiledConfig, probes: &[Probe]) {
    let json = serde_json::to_vec(compiled.config()).unwrap();
    let again = lambdagate_core::parse(&json).unwrap_or_else(|e| {
        panic!(
            "rendered config refused: {e}: {}",
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(again.config(), compiled.config());
    for probe in probes {
        let route = |config: &lambdagate_core::CompiledConfig| match config.on_request_headers(
            common::headers(&probe.method, &probe.path, &[]),
            common::info(),
        ) {
            Decision::NeedBody(plan) => (
                plan.target().api_name().to_owned(),
                plan.target().template().to_owned(),
            ),
            other => panic!("{} {}: {other:?}", probe.method, probe.path),
        };
        let expected = (probe.api.clone(), probe.template.clone());
        assert_eq!(route(compiled), expected, "{} {}", probe.method, probe.path);
        assert_eq!(
            route(&again),
            expected,
            "{} {} (rendered back)",
            probe.method,
            probe.path
        );
    }
}

#[test]
fn random_configs_are_accepted_or_refused_at_the_broken_field() {
    let mut rng = Rng(7);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..3000 {
        let (config, probes, expected) = random_config(&mut rng);
        let text = config.to_string();
        match (lambdagate_core::parse(text.as_bytes()), expected) {
            (Ok(compiled), None) => {
                accepted += 1;
                assert_renders_back(&compiled, &probes);
            }
            (Err(e), Some(at)) => {
                refused += 1;
                assert_eq!(e.at(), at, "round {round}: {e}\n{text}");
            }
            (Ok(_), Some(at)) => {
                panic!("round {round}: accepted, expected an error at {at}\n{text}")
            }
            (Err(e), None) => panic!("round {round}: refused: {e}\n{text}"),
        }
    }
    assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
}

#[test]
fn odd_templates_are_refused_at_the_template() {
    for template in [
        "/{", "/}", "/{+}", "/{a++}", "/{{a}}", "/\u{0}", "/{é}", "/a/{b+}/",
    ] {
        let config = serde_json::json!({"apis": [{"name": "a", "version": "1", "context": "/", "endpoint": "e",
            "resources": [{"verb": "GET", "uri_template": template,
                           "arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}]});
        let e = lambdagate_core::parse(config.to_string().as_bytes()).unwrap_err();
        assert_eq!(
            e.at(),
            format!("apis[0] (a).resources[0] (GET {template}).uri_template"),
            "{e}"
        );
    }
    // Unicode letters are literal characters.
    let config = serde_json::json!({"apis": [{"name": "a", "version": "1", "context": "/", "endpoint": "e",
        "resources": [{"verb": "GET", "uri_template": "/é",
                       "arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}]});
    assert!(lambdagate_core::parse(config.to_string().as_bytes()).is_ok());
}

/// Found by the `reply` fuzz target: a header value with a control
/// character other than CR, LF or NUL (here form feed, also DEL and
/// U+0001) was passed to the client. Such headers are dropped; tab and
/// non-ASCII text stay.
#[test]
fn reply_headers_with_control_characters_are_dropped() {
    let config = common::config();
    // `multiValueHeaders` is read by a REST API (v1), `cookies` by an HTTP
    // API (v2): each context checks its own.
    for (context, from_its_own_field) in [
        ("users", ("x-multi", "ok")),
        ("users2", ("set-cookie", "a=1")),
    ] {
        let plan = common::plan(
            &config,
            common::headers("POST", &format!("/{context}/user/7"), &[]),
        );
        let payload = serde_json::json!({
            "statusCode": 201,
            "headers": {"x-ff": "a\u{c}b", "x-del": "a\u{7f}", "x-soh": "\u{1}", "x-tab": "a\tb", "x-text": "é"},
            "multiValueHeaders": {"x-multi": ["ok", "bad\u{1b}"]},
            "cookies": ["a=1", "b=\u{8}"],
            "body": "created"
        });
        let reply = InvokeReply {
            status_code: 200,
            payload: payload.to_string().into_bytes(),
            executed_version: "1\u{c}".into(),
            lambda_request_id: "id\u{7f}".into(),
            ..InvokeReply::default()
        };
        let response = plan.on_reply(Ok(&reply.encode_to_vec()));
        assert_eq!(response.status, 201);
        let mut names: Vec<(&str, &str)> = response
            .headers
            .iter()
            .filter(|(n, _)| n != "x-amzn-trace-id")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        names.sort();
        let mut expected = vec![
            ("content-type", "application/json"),
            ("x-tab", "a\tb"),
            ("x-text", "é"),
            from_its_own_field,
        ];
        expected.sort();
        assert_eq!(names, expected, "{context}");
    }
}
