//! Random requests and random invoker replies through the compiled filter,
//! all on one VM, as Envoy keeps one VM per worker for its whole life: a
//! single trap would answer 503 to every later request on that worker.
//!
//! Asserted for every stream: the module never traps; at most one local
//! response, with a status in 200..=599 (never 1xx); every error the gateway writes is
//! JSON `{"message", "requestId"}` carrying the request's `x-request-id`;
//! every gRPC call is a well-formed `InvokeRequest` for a configured
//! function with the route timeout + 1 s; no call is cancelled (see
//! `filter_requests.rs`,
//! `on_the_wasmtime_host_a_client_that_went_away_leaves_no_call_behind`);
//! late, repeated and foreign replies change nothing; the host's token
//! counter may wrap around and hand out old tokens again. All of it on our
//! wasmtime host, which encodes our reading of Envoy: the real-Envoy proof
//! for abandoned calls is `invoker/tests/abandoned_requests.rs`.
//!
//! Deterministic: `LAMBDAGATE_RANDOM_SEED` and `LAMBDAGATE_RANDOM_REQUESTS`
//! replay or extend a run (the seed is printed on failure).

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::*;
use lambdagate_proto::{ErrorKind, InvocationType, InvokeReply};
use lambdagate_wasm_host::{Action, GrpcDispatch, Host, LocalResponse, LogLevel, StreamId, status};
use serde_json::{Value, json};

/// xorshift64*, seeded: the same seed replays the same run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero (xorshift would stay at zero).
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
    /// Concatenated pieces, up to `max` of them.
    fn text(&mut self, pieces: &[&str], max: usize) -> String {
        let n = self.below(max + 1);
        (0..n).map(|_| self.pick(pieces)).collect()
    }
}

// ---------------------------------------------------------------------------
// Requests

const METHODS: &[&str] = &[
    "GET",
    "GET",
    "POST",
    "POST",
    "POST",
    "PUT",
    "DELETE",
    "PATCH",
    "HEAD",
    "OPTIONS",
    "get",
    "Post",
    "CONNECT",
    "TRACE",
    "",
    " ",
    "G E T",
    "ANY",
    "PURGE",
    "M\u{e9}THODE",
    "\u{1F600}",
];

const PREFIXES: &[&str] = &[
    "/users",
    "/users",
    "/users",
    "/users2",
    "/userswso2",
    "/raw",
    "/",
    "",
    "/usersx",
    "/Users",
    "*",
    "//users",
    "/users/",
    "http://example.com/users",
];

const SEGMENTS: &[&str] = &[
    "user",
    "user",
    "7",
    "events",
    "files",
    "a",
    "%",
    "%2",
    "%zz",
    "%C3%A9",
    "%ff%fe",
    "%00",
    "%2F",
    "..",
    ".",
    "",
    "{id}",
    "a+b",
    "\u{e9}",
    "\u{FFFD}",
    "\u{1F600}",
    " ",
    "%%",
    "~",
    "caf%E9",
    "x;y",
    "a=b",
];

const QUERY_PIECES: &[&str] = &[
    "a=1",
    "&",
    "&",
    "=",
    "tag=a",
    "tag=b%20c",
    "+",
    "%",
    "%zz",
    "%ff",
    "%C3%A9",
    "x",
    "==",
    "?",
    "#frag",
    "&&",
    "k=%E9",
];

const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "image/png",
    "application/vnd.api+json",
    "multipart/form-data; boundary=x",
    "",
    ";;",
    "TEXT/HTML",
];

const HEADER_NAMES: &[&str] = &[
    "accept",
    "user-agent",
    "cookie",
    "x-forwarded-for",
    "x-amz-date",
    "x-amzn-trace-id",
    "authorization",
    "host",
    "x-custom",
    "x-custom",
    "x-empty",
    "referer",
    "te",
    "content-encoding",
];

/// A value: text, UTF-8 oddities, or raw bytes (Envoy passes obs-text).
fn header_value(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => Vec::new(),
        1 => rng.bytes(40).into_iter().map(|b| b.max(0x20)).collect(),
        2 => "v\u{e9}rit\u{e9} \u{1F600}".as_bytes().to_vec(),
        3 => b"session=abc; theme=dark; =; x".to_vec(),
        _ => rng
            .text(&["a", "b", "1", " ", ",", ";", "=", "\"", "%20", "\\"], 20)
            .into_bytes(),
    }
}

/// Routes of [`random_config`], `*` standing for any segment.
const ROUTES: &[&str] = &[
    "/users/user/*",
    "/users/user/*",
    "/users/events",
    "/users/files/*/*",
    "/users2/user/*",
    "/userswso2/user/*",
    "/raw/*",
];

fn random_path(rng: &mut Rng) -> Vec<u8> {
    let mut path = String::new();
    if rng.chance(50) {
        // Mostly a configured route, with odd segments.
        for segment in rng.pick(ROUTES).split('/').skip(1) {
            path.push('/');
            if segment == "*" {
                let mut value = rng.text(SEGMENTS, 3);
                if value.is_empty() {
                    value.push('7');
                }
                path.push_str(&value);
            } else {
                path.push_str(segment);
            }
        }
        if rng.chance(10) {
            path.push('/');
        }
    } else {
        path.push_str(rng.pick(PREFIXES));
        for _ in 0..rng.below(5) {
            path.push('/');
            path.push_str(rng.pick(SEGMENTS));
        }
    }
    if rng.chance(30) {
        path.push('?');
        path.push_str(&rng.text(QUERY_PIECES, 6));
    }
    let mut path = path.into_bytes();
    if rng.chance(3) {
        // Raw bytes that are not UTF-8.
        path.extend_from_slice(b"/\xe9\xff");
    }
    path
}

/// A body and how it arrives.
struct Body {
    bytes: Vec<u8>,
    /// `None`: the headers end the stream.
    chunks: Option<Vec<std::ops::Range<usize>>>,
    /// Trailers end the stream (after the last chunk).
    trailers: bool,
}

fn random_body(rng: &mut Rng) -> Body {
    // The host keeps every stream's body and every call's message for
    // inspection, so large bodies are rare: memory, not time, is the limit.
    let bytes = match rng.below(1000) {
        0..=199 => Vec::new(),
        200..=499 => rng.bytes(300),
        500..=749 => json!({"message": "Hello", "n": rng.next(), "text": "caf\u{e9}"})
            .to_string()
            .into_bytes(),
        750..=984 => rng.bytes(20_000),
        // Around the Event limit.
        985..=997 => vec![b'e'; EVENT_LIMIT - 1000 + rng.below(2000)],
        // Around the synchronous limit.
        _ => vec![b's'; SYNC_LIMIT - 3000 + rng.below(6000)],
    };
    let chunks = if bytes.is_empty() && rng.chance(50) {
        None
    } else {
        let mut cuts: Vec<usize> = (0..rng.below(6))
            .map(|_| rng.below(bytes.len() + 1))
            .collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let mut ranges: Vec<_> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
        if rng.chance(20) {
            // The end of stream in an empty last chunk.
            ranges.push(bytes.len()..bytes.len());
        }
        Some(ranges)
    };
    let trailers = chunks.is_some() && rng.chance(10);
    Body {
        bytes,
        chunks,
        trailers,
    }
}

struct Request {
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    /// The request id the gateway must echo.
    request_id: String,
}

impl Request {
    fn describe(&self) -> String {
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
            .collect();
        format!(
            "headers {headers:?}, body {} bytes in {:?}{}",
            self.body.bytes.len(),
            self.body.chunks,
            if self.body.trailers {
                ", then trailers"
            } else {
                ""
            }
        )
    }
}

fn random_request(rng: &mut Rng, n: usize) -> Request {
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if !rng.chance(2) {
        headers.push((":method".into(), rng.pick(METHODS).as_bytes().to_vec()));
    }
    if !rng.chance(2) {
        headers.push((":path".into(), random_path(rng)));
    }
    if rng.chance(90) {
        headers.push((":authority".into(), b"api.example.com:10000".to_vec()));
    }
    headers.push((":scheme".into(), b"http".to_vec()));
    if rng.chance(90) {
        let id = if rng.chance(5) {
            b"rid-\xff\"\\".to_vec()
        } else {
            format!("rid-{n}").into_bytes()
        };
        headers.push(("x-request-id".into(), id));
        if rng.chance(5) {
            headers.push(("x-request-id".into(), b"second".to_vec()));
        }
    }
    let body = random_body(rng);
    if rng.chance(70) {
        headers.push((
            "content-type".into(),
            rng.pick(CONTENT_TYPES).as_bytes().to_vec(),
        ));
    }
    match rng.below(10) {
        0..=4 => {}
        5..=7 => headers.push((
            "content-length".into(),
            body.bytes.len().to_string().into_bytes(),
        )),
        _ => headers.push((
            "content-length".into(),
            rng.pick(&[
                "0",
                "-1",
                "abc",
                " 12 ",
                "99999999999999999999999",
                "6291457",
                "1048577",
                "18446744073709551615",
            ])
            .as_bytes()
            .to_vec(),
        )),
    }
    for _ in 0..rng.below(8) {
        let mut name = rng.pick(HEADER_NAMES).to_owned();
        if rng.chance(10) {
            name = name.to_ascii_uppercase(); // the host lower-cases, as Envoy
        }
        headers.push((name, header_value(rng)));
    }
    // Pseudo-headers need not come first in what a buggy host sends.
    if rng.chance(5) {
        let i = rng.below(headers.len());
        let j = rng.below(headers.len());
        headers.swap(i, j);
    }
    let request_id = headers
        .iter()
        .find(|(k, _)| k == "x-request-id")
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    Request {
        headers,
        body,
        request_id,
    }
}

// ---------------------------------------------------------------------------
// Replies

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64 >> rng.below(64)),
        3 => json!((rng.next() as f64) / 1e9 - 9e9),
        4 => json!(rng.text(&["a", "\u{e9}", "\"", "\\", "\n", "\u{0}", "%", " "], 8)),
        5 | 6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = serde_json::Map::new();
            for _ in 0..rng.below(4) {
                map.insert(
                    rng.text(&["k", "X-", "a", ":"], 3),
                    random_json(rng, depth - 1),
                );
            }
            Value::Object(map)
        }
    }
}

/// Something shaped like a Lambda proxy response, often broken.
fn proxy_response(rng: &mut Rng) -> Value {
    let mut response = serde_json::Map::new();
    let status = match rng.below(12) {
        0 => json!("abc"),
        1 => json!(-1),
        2 => json!(99),
        3 => json!(600),
        4 => json!(200.5),
        5 => json!(" 201 "),
        6 => Value::Null,
        7 => json!(rng.pick(&["404", "500"])),
        _ => json!(rng.pick(&[
            200, 201, 204, 302, 400, 401, 404, 429, 500, 502, 503, 599, 100
        ])),
    };
    response.insert("statusCode".into(), status);
    if rng.chance(60) {
        let mut headers = serde_json::Map::new();
        for _ in 0..rng.below(5) {
            let name = rng.pick(&[
                "Content-Type",
                "X-One",
                "Set-Cookie",
                "content-length",
                ":status",
                "Bad Name",
                "",
                "x-amzn-requestid",
                "Transfer-Encoding",
            ]);
            let value = match rng.below(6) {
                0 => json!(5),
                1 => json!("a\r\nInjected: 1"),
                2 => json!("caf\u{e9}"),
                _ => json!("v"),
            };
            headers.insert(name.into(), value);
        }
        response.insert(
            "headers".into(),
            if rng.chance(10) {
                json!([1])
            } else {
                Value::Object(headers)
            },
        );
    }
    if rng.chance(30) {
        response.insert(
            "multiValueHeaders".into(),
            match rng.below(4) {
                0 => json!({"X-Many": "not a list"}),
                1 => json!({"X-Many": [1, 2]}),
                _ => json!({"X-Many": ["1", "2"], "Set-Cookie": ["a=1"]}),
            },
        );
    }
    if rng.chance(30) {
        response.insert(
            "cookies".into(),
            rng.pick(&[json!(["s=1; Path=/", "t=2"]), json!("a=1"), json!([5])]),
        );
    }
    let base64 = rng.chance(30);
    if rng.chance(80) {
        let body = match rng.below(6) {
            0 => json!(5),
            1 => json!({"nested": true}),
            2 => json!("iVBORw0KGgo="),
            3 => json!("!!not base64"),
            _ => json!(rng.text(&["hello", " ", "\u{e9}", "{", "\""], 10)),
        };
        response.insert("body".into(), body);
    }
    if base64 || rng.chance(10) {
        response.insert(
            "isBase64Encoded".into(),
            if rng.chance(80) {
                json!(base64)
            } else {
                json!("yes")
            },
        );
    }
    Value::Object(response)
}

/// What the invoker (or Envoy) answers for a call.
#[derive(Debug)]
enum Outcome {
    /// `proxy_on_grpc_receive` with these message bytes.
    Receive(Vec<u8>),
    /// `proxy_on_grpc_close` with this status.
    Close(u32, String),
}

fn random_outcome(rng: &mut Rng) -> Outcome {
    match rng.below(100) {
        0..=9 => Outcome::Receive(rng.bytes(200)),
        10..=54 => {
            let payload = match rng.below(10) {
                0..=5 => proxy_response(rng).to_string().into_bytes(),
                6 | 7 => random_json(rng, 3).to_string().into_bytes(),
                8 => rng.bytes(100),
                _ => Vec::new(),
            };
            let reply = InvokeReply {
                status_code: rng.pick(&[200, 200, 202, 204, 0, 500, u32::MAX]),
                payload,
                function_error: rng
                    .pick(&["", "", "", "", "Unhandled", "Handled", "weird\r\n"])
                    .into(),
                executed_version: rng.pick(&["$LATEST", "", "3", "bad\r\nvalue"]).into(),
                lambda_request_id: rng.pick(&["lambda-1", "", "\u{e9}"]).into(),
                error_kind: rng.pick(&[0, 0, 0, 6, -1, 999, 4, 5, 12, 13, 14, 15, 16]),
                retry_after_seconds: rng.pick(&[0, 1, 86_400, u32::MAX]),
                error_message: rng
                    .pick(&["", "reason", "arn:aws:iam::1:user/u", "\u{e9}"])
                    .into(),
            };
            Outcome::Receive(encode(&reply))
        }
        _ => {
            let code = rng.pick(&[0, 1, 2, 4, 4, 5, 7, 8, 11, 13, 14, 14, 16, 17, 99, u32::MAX]);
            let kind = ErrorKind::try_from(rng.below(14) as i32).unwrap_or(ErrorKind::Unspecified);
            let text = rng.text(&["boom", " ", ":", "%", "\u{e9}", "%zz", "\n"], 6);
            // What Envoy, a proxy or an older invoker may put in a status:
            // words, some naming a kind (never believed: kinds come typed).
            let message = match rng.below(5) {
                0 => format!("{}: {text}", kind.as_str_name()),
                1 => format!("{}%3A%20{text}", kind.as_str_name()),
                2 => String::new(),
                3 => text,
                _ => "upstream connect error or disconnect/reset before headers".to_owned(),
            };
            Outcome::Close(code, message)
        }
    }
}

fn deliver(
    host: &mut Host,
    token: u32,
    outcome: &Outcome,
) -> Result<(), lambdagate_wasm_host::Trap> {
    match outcome {
        Outcome::Receive(message) => host.grpc_receive(token, message),
        Outcome::Close(code, message) => host.grpc_close(token, *code, message),
    }
}

// ---------------------------------------------------------------------------
// Checks

/// The proxy-response status a reply asks for, if any: a function may
/// answer any status with any body, so such responses are not gateway
/// errors.
fn requested_status(outcome: &Outcome) -> Option<u32> {
    let Outcome::Receive(message) = outcome else {
        return None;
    };
    let reply = <InvokeReply as prost::Message>::decode(message.as_slice()).ok()?;
    let value: Value = serde_json::from_slice(&reply.payload).ok()?;
    match &value["statusCode"] {
        Value::Number(n) => n.as_f64().map(|f| f as u32),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_response(
    response: &LocalResponse,
    request: &Request,
    function_status: Option<u32>,
    ctx: &str,
) {
    // 1xx is never a final response: Envoy cannot send one locally.
    assert!(
        (200..=599).contains(&response.status),
        "{ctx}: status {} out of range",
        response.status
    );
    assert_eq!(response.grpc_status, None, "{ctx}");
    for (name, value) in &response.headers {
        assert!(
            !name.is_empty() && !name.starts_with(':') && !value.contains(['\r', '\n', '\0']),
            "{ctx}: bad header {name:?}: {value:?}"
        );
    }
    if response.status < 400 || function_status == Some(response.status) {
        return;
    }
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{ctx}: {response:?}"
    );
    let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{ctx}: error body is not JSON ({e}): {}",
            String::from_utf8_lossy(&response.body)
        )
    });
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{ctx}: no message: {body}"
    );
    assert_eq!(
        body["requestId"].as_str(),
        Some(request.request_id.as_str()),
        "{ctx}: {body}"
    );
}

/// Configured ARN → (timeout ms, invocation type).
fn routes() -> BTreeMap<&'static str, (u32, InvocationType)> {
    BTreeMap::from([
        (CREATE_USER, (5_000, InvocationType::RequestResponse)),
        (GET_USER, (50_000, InvocationType::RequestResponse)),
        (UPDATE_USER, (1_000, InvocationType::RequestResponse)),
        (INGEST, (10_000, InvocationType::Event)),
        (FILES, (900_000, InvocationType::RequestResponse)),
        (CREATE_USER_V2, (50_000, InvocationType::RequestResponse)),
        (CREATE_USER_WSO2, (50_000, InvocationType::RequestResponse)),
        (RAW, (2_000, InvocationType::RequestResponse)),
    ])
}

const RAW: &str = "arn:aws:lambda:us-east-1:123456789012:function:raw";

/// [`config`] plus a passthrough API.
fn random_config() -> Value {
    let mut config = config();
    config["apis"].as_array_mut().unwrap().push(json!({
        "name": "raw", "version": "v1", "context": "/raw", "endpoint": "main",
        "payload_format": "passthrough",
        "resources": [{"verb": "ANY", "uri_template": "/{proxy+}", "arn": RAW, "timeout_seconds": 2}]
    }));
    config
}

/// A stream waiting for its reply.
struct Pending {
    stream: StreamId,
    token: u32,
    request: Request,
    n: usize,
}

#[test]
fn random_requests_and_replies_never_trap() {
    let seed: u64 = std::env::var("LAMBDAGATE_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1a3b_da6a_7e00_0001);
    let requests: usize = std::env::var("LAMBDAGATE_RANDOM_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut host = filter_with(&random_config());
    let routes = routes();
    let mut pending: Vec<Pending> = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // Tokens whose calls are over, which Envoy may hand out again.
    let mut finished: Vec<u32> = Vec::new();
    let mut highest_token = 0;

    for n in 0..requests {
        let ctx = format!("seed {seed}, request {n}");
        // Host-side conditions Envoy may present.
        if rng.chance(2) {
            host.set_grpc_dispatch(GrpcDispatch::Fail(status::PARSE_FAILURE));
        } else {
            host.set_grpc_dispatch(GrpcDispatch::Accept);
        }
        match rng.below(20) {
            0 => host.remove_property("source.address"),
            1 => host.set_property("source.address", "[2001:db8::1]:443"),
            2 => host.set_property("source.address", "garbage"),
            3 => host.set_property("request.protocol", "HTTP/2"),
            4 => host.remove_property("request.protocol"),
            5 => host.set_time(rng.next()),
            _ => {
                host.set_property("source.address", SOURCE_ADDRESS);
                host.set_property("request.protocol", "HTTP/1.1");
                host.set_time(NOW_NANOS);
            }
        }

        if !finished.is_empty() && rng.chance(3) {
            let reused = rng.pick(&finished);
            host.set_next_grpc_token(reused);
            *counts.entry("token reused".into()).or_default() += 1;
        }
        let request = random_request(&mut rng, n);
        let ctx = format!("{ctx}: {}", request.describe());
        let stream = host.new_stream().unwrap_or_else(|t| panic!("{ctx}: {t}"));
        let calls_before = host.grpc_calls().len();
        let end_at_headers = request.body.chunks.is_none();
        let first = host
            .request_headers(stream, request.headers.clone(), end_at_headers)
            .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        let mut gone = false;
        if let Some(chunks) = &request.body.chunks {
            for (i, range) in chunks.iter().enumerate() {
                if rng.chance(1) {
                    // The client goes away mid-body.
                    host.end_stream(stream)
                        .unwrap_or_else(|t| panic!("{ctx}: {t}"));
                    gone = true;
                    break;
                }
                let last = i + 1 == chunks.len() && !request.body.trailers;
                let action = host
                    .request_body(stream, &request.body.bytes[range.clone()], last)
                    .unwrap_or_else(|t| panic!("{ctx}: {t}"));
                assert_eq!(
                    action,
                    if first == Action::Continue {
                        Action::Continue
                    } else {
                        Action::Pause
                    },
                    "{ctx}: body callback {i}"
                );
            }
            if request.body.trailers && !gone {
                let action = host
                    .request_trailers(stream, [("grpc-status", "0"), ("x-checksum", "\u{e9}")])
                    .unwrap_or_else(|t| panic!("{ctx}: {t}"));
                assert_eq!(
                    action,
                    if first == Action::Continue {
                        Action::Continue
                    } else {
                        Action::Pause
                    },
                    "{ctx}: trailers"
                );
            }
        }

        let calls: Vec<_> = host.grpc_calls()[calls_before..].to_vec();
        assert!(calls.len() <= 1, "{ctx}: {calls:#?}");
        assert!(calls.iter().all(|c| c.stream == Some(stream)), "{ctx}");
        let responses = host.local_responses(stream).to_vec();
        assert!(responses.len() <= 1, "{ctx}: {responses:#?}");
        for response in &responses {
            check_response(response, &request, None, &ctx);
        }
        if first == Action::Continue {
            assert!(calls.is_empty() && responses.is_empty(), "{ctx}");
            *counts.entry("continue".into()).or_default() += 1;
        }
        if let Some(response) = responses.first() {
            *counts
                .entry(format!("local {}", response.status))
                .or_default() += 1;
            // Answered without invoking (or the dispatch failed).
            assert!(calls.iter().all(|c| c.token.is_none()), "{ctx}: {calls:#?}");
        }

        if let Some(call) = calls.first() {
            assert_eq!(
                (
                    call.cluster.as_str(),
                    call.service.as_str(),
                    call.method.as_str()
                ),
                (CLUSTER, SERVICE, METHOD),
                "{ctx}"
            );
            let invoke = request_of(call);
            let Some(&(timeout_ms, invocation_type)) = routes.get(invoke.function_arn.as_str())
            else {
                panic!("{ctx}: unknown function {}", invoke.function_arn);
            };
            assert_eq!(invoke.timeout_ms, timeout_ms, "{ctx}");
            assert_eq!(call.timeout_ms, timeout_ms + 1_000, "{ctx}");
            assert_eq!(invoke.invocation_type, invocation_type as i32, "{ctx}");
            assert_eq!(invoke.request_id, request.request_id, "{ctx}");
            let limit = match invocation_type {
                InvocationType::Event => EVENT_LIMIT,
                _ => SYNC_LIMIT,
            };
            assert!(
                invoke.payload.len() <= limit,
                "{ctx}: {} bytes",
                invoke.payload.len()
            );
            if invoke.function_arn == RAW {
                assert_eq!(invoke.payload, request.body.bytes, "{ctx}: passthrough");
            } else {
                assert_eq!(invoke.payload, request.body.bytes, "{ctx}: the raw body");
                let event: Value = serde_json::from_slice(&lambda_event(&invoke))
                    .unwrap_or_else(|e| panic!("{ctx}: the event is not JSON: {e}"));
                assert!(event.is_object(), "{ctx}");
            }
            if let Some(token) = call.token {
                assert!(!gone, "{ctx}: dispatched after the client went away");
                highest_token = highest_token.max(token);
                *counts.entry("dispatched".into()).or_default() += 1;
                pending.push(Pending {
                    stream,
                    token,
                    request,
                    n,
                });
            }
        } else if !gone && rng.chance(70) {
            host.end_stream(stream)
                .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        }
        // Back to fresh tokens (a reused one is never still pending).
        host.set_next_grpc_token(highest_token + 1);

        // Settle some pending calls, in random order, with random outcomes;
        // sometimes the client leaves first, sometimes a reply is repeated,
        // sometimes one goes to a token nobody holds.
        while !pending.is_empty() && (pending.len() > 8 || rng.chance(40)) {
            let Pending {
                stream,
                token,
                request,
                n,
            } = pending.swap_remove(rng.below(pending.len()));
            let ctx = format!(
                "seed {seed}, request {n} (token {token}): {}",
                request.describe()
            );
            finished.push(token);
            if rng.chance(10) {
                // The client leaves; the call's reply (or deadline) still
                // comes, as in Envoy where the call belongs to the root.
                host.end_stream(stream)
                    .unwrap_or_else(|t| panic!("{ctx}: {t}"));
                deliver(&mut host, token, &random_outcome(&mut rng))
                    .unwrap_or_else(|t| panic!("{ctx}: late reply: {t}"));
                assert!(host.local_responses(stream).is_empty(), "{ctx}");
                *counts.entry("gone".into()).or_default() += 1;
                continue;
            }
            let outcome = random_outcome(&mut rng);
            deliver(&mut host, token, &outcome)
                .unwrap_or_else(|t| panic!("{ctx}: {outcome:?}: {t}"));
            let ctx = format!("{ctx}, outcome {outcome:?}");
            let responses = host.local_responses(stream).to_vec();
            assert_eq!(responses.len(), 1, "{ctx}: {responses:#?}");
            check_response(&responses[0], &request, requested_status(&outcome), &ctx);
            *counts
                .entry(format!("reply {}", responses[0].status))
                .or_default() += 1;
            if rng.chance(10) {
                deliver(&mut host, token, &random_outcome(&mut rng))
                    .unwrap_or_else(|t| panic!("{ctx}: repeated reply: {t}"));
            }
            if rng.chance(5) {
                let foreign = token.wrapping_add(1 + rng.below(1000) as u32);
                if !pending.iter().any(|p| p.token == foreign) {
                    deliver(&mut host, foreign, &random_outcome(&mut rng))
                        .unwrap_or_else(|t| panic!("{ctx}: foreign token {foreign}: {t}"));
                }
            }
            assert_eq!(
                host.local_responses(stream).len(),
                1,
                "{ctx}: a second response"
            );
            host.end_stream(stream)
                .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        }
    }
    // Settle the rest.
    for Pending {
        stream,
        token,
        request,
        n,
        ..
    } in pending
    {
        let ctx = format!("seed {seed}, request {n}: {}", request.describe());
        host.grpc_close(token, 14, "")
            .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        check_response(&host.local_responses(stream)[0], &request, None, &ctx);
        host.end_stream(stream)
            .unwrap_or_else(|t| panic!("{ctx}: {t}"));
    }

    let traps: Vec<_> = host
        .logs()
        .iter()
        .filter(|l| l.level == LogLevel::Critical)
        .collect();
    assert!(traps.is_empty(), "{traps:?}");
    let cancelled: Vec<_> = host.grpc_calls().iter().filter(|c| c.cancelled).collect();
    assert!(cancelled.is_empty(), "{cancelled:#?}");
    eprintln!(
        "{requests} random requests in {:.1?} (seed {seed}): {counts:?}",
        started.elapsed()
    );
    // Each kind of outcome was exercised.
    for key in [
        "continue",
        "dispatched",
        "gone",
        "token reused",
        "local 404",
        "local 405",
        "local 413",
        "local 503",
        "reply 200",
        "reply 502",
    ] {
        assert!(
            counts.get(key).copied().unwrap_or(0) > 0,
            "`{key}` never happened: {counts:?}"
        );
    }
}

#[test]
fn random_configurations_never_trap() {
    let seed: u64 = std::env::var("LAMBDAGATE_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1a3b_da6a_7e00_0002);
    let mut rng = Rng::new(seed);
    let good = random_config().to_string().into_bytes();
    let mut host = load();
    let mut accepted = 0;
    for n in 0..400 {
        let mut text = good.clone();
        match rng.below(4) {
            // Truncated.
            0 => text.truncate(rng.below(text.len())),
            // Bytes flipped.
            1 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(text.len());
                    text[i] = rng.next() as u8;
                }
            }
            // A value replaced.
            2 => {
                let mut value: Value = serde_json::from_slice(&good).unwrap();
                let api = rng.below(4);
                let replacement = random_json(&mut rng, 2);
                let field = rng.pick(&[
                    "verb",
                    "uri_template",
                    "arn",
                    "timeout_seconds",
                    "invocation_type",
                    "function_error_status",
                ]);
                value["apis"][api]["resources"][0][field] = replacement;
                text = value.to_string().into_bytes();
            }
            // Random bytes.
            _ => text = rng.bytes(100),
        }
        let ctx = format!(
            "seed {seed}, config {n}: {}",
            String::from_utf8_lossy(&text)
        );
        let outcome = host
            .configure(&text)
            .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        let errors: Vec<_> = outcome
            .logs
            .iter()
            .filter(|l| l.level >= LogLevel::Error)
            .collect();
        if outcome.ok {
            accepted += 1;
            assert!(errors.is_empty(), "{ctx}: {errors:?}");
        } else {
            assert_eq!(errors.len(), 1, "{ctx}: {errors:?}");
            assert!(
                errors[0]
                    .message
                    .starts_with("lambdagate: invalid plugin configuration: "),
                "{ctx}: {errors:?}"
            );
        }
        // Requests keep working whatever the last configuration was.
        let (stream, _) = send(&mut host, headers("GET", "/users/user/7", &[]), &[]);
        if let Some(call) = host.grpc_calls().iter().find(|c| c.stream == Some(stream)) {
            host.grpc_close(call.token.unwrap(), 14, "")
                .unwrap_or_else(|t| panic!("{ctx}: {t}"));
        }
        host.end_stream(stream)
            .unwrap_or_else(|t| panic!("{ctx}: {t}"));
    }
    assert!(accepted > 0, "no mutated config was accepted");
}
