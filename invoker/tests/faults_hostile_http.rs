//! Fault suite, item 5: hostile HTTP against real Envoy running the
//! compiled filter (with the real invoker behind it): oversized and
//! repeated headers, non-UTF-8 header bytes and paths, slow senders, and
//! random requests over HTTP/1.1 and HTTP/2. Every request must get an
//! answer (any status), the filter's own answers must be its JSON error
//! with a request id, and the wasm VM must never trap or be reloaded.
//!
//! Which Envoy stats show a trap / VM reload is not guessed: the first
//! test runs a module that traps on every request and records which
//! `wasm.*` stats move; the hostile test asserts those stay still.
//!
//! CI: 10 000 random requests. By hand, 100 000 (seed printed, settable):
//! `LAMBDAGATE_FAULTS_LONG=1 [LAMBDAGATE_FAULTS_SEED=N] cargo test -p lambdagate-invoker --test faults_hostile_http -- --nocapture`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use lambdagate_harness::faults::{
    CountingLambdaStandIn, H2Connection, Rng, Tally, raw_exchange, scaled, wasm_from_wat,
    wasm_vm_stats,
};
use lambdagate_harness::http::Response;
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, filter_wasm, free_port};
use serde_json::json;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";
const WITHIN: Duration = Duration::from_secs(6);

fn filter_json() -> String {
    let r = |verb: &str, template: &str| json!({"verb": verb, "uri_template": template, "arn": ARN, "timeout_seconds": 2});
    json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "shop", "version": "v1", "context": "/shop", "endpoint": "lambda",
            "resources": [r("GET", "/items/{id}"), r("POST", "/items/{id}"),
                          r("ANY", "/files/{path+}")]
        }]
    })
    .to_string()
}

struct Stack {
    lambda: CountingLambdaStandIn,
    _invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

async fn stack() -> Stack {
    let lambda = CountingLambdaStandIn::start().await;
    let yaml = config(&[stored_endpoint("lambda", &lambda.url, &[ARN], "")]);
    let env = [
        ("LAMBDA_KEY_ID", "AKIAEXAMPLEFAULTS005"),
        ("LAMBDA_SECRET", "fault-suite-secret"),
    ];
    let invoker = InvokerProcess::start(BIN, &yaml, &env, "info").await;
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter_json()).await;
    Stack {
        lambda,
        _invoker: invoker,
        envoy,
    }
}

/// A proxy-wasm module (ABI 0.2.1) that traps in every request.
const TRAPPING_FILTER_WAT: &str = r#"
(module
  (memory (export "memory") 2)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024)
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32) unreachable))
"#;

fn moved(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<String> {
    let mut moved: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {} -> {v}", before.get(k).copied().unwrap_or(0)))
        .collect();
    moved.sort();
    moved
}

/// Which stats a trap moves, with FAIL_RELOAD (as the harness and the
/// rendered configs set it): a trap answers 503 and the next request gets
/// a fresh VM, and the stats the hostile test watches say so.
#[tokio::test]
async fn a_trap_moves_the_wasm_stats_the_hostile_test_watches() {
    let dir = tempfile::tempdir().unwrap();
    let trap = dir.path().join("trap.wasm");
    std::fs::write(&trap, wasm_from_wat(TRAPPING_FILTER_WAT)).unwrap();
    let (listen, admin) = (free_port(), free_port());
    let invoker = InvokerAddress::Tcp(format!("127.0.0.1:{}", free_port()));
    let bootstrap = lambdagate_harness::envoy::bootstrap(listen, admin, &invoker, "{}").replace(
        &filter_wasm().display().to_string(),
        &trap.display().to_string(),
    );
    let envoy = EnvoyProcess::start_bootstrap(&bootstrap, listen, admin).await;
    let before = wasm_vm_stats(&envoy.admin).await;
    let r = envoy.send("GET", "/anything", &[], b"").await;
    assert_eq!(r.status, 503, "a trap answers 503: {}", r.text());
    // FAIL_RELOAD waits ~1 s before it builds a fresh VM.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = envoy.send("GET", "/anything", &[], b"").await;
    assert_eq!(r.status, 503, "the fresh VM traps too");
    let after = wasm_vm_stats(&envoy.admin).await;
    let moved = moved(&before, &after);
    println!("FAULT-TRAP stats moved by traps: {moved:#?}");
    assert!(
        !moved.is_empty(),
        "no wasm stat moved on a trap:\nbefore {before:#?}\nafter {after:#?}"
    );
}

/// Whether `r` is an acceptable answer to request `id`: the function's
/// 200 naming the request, an Envoy protocol rejection (4xx), or a JSON
/// 404/405/413 with the request id (the filter's own, or the catch-all's
/// for a path outside every API). 5xx means something broke (a trap
/// answers 503).
/// A HEAD answer has the headers of the GET answer and no body.
fn judge(id: &str, head_request: bool, r: &Response, tally: &Tally) {
    let filter_error = || {
        serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .is_some_and(|b| {
                b["requestId"].as_str().is_some_and(|s| !s.is_empty()) && b["message"].is_string()
            })
    };
    let ok = match r.status {
        200 if head_request => r.body.is_empty(),
        200 => r.body == id.as_bytes(),
        404 | 405 | 413 if head_request => r.header("content-type") == Some("application/json"),
        404 | 405 | 413 => filter_error(),
        400..=499 => true,
        _ => false,
    };
    if ok {
        tally.correct(r.status);
    } else {
        tally.lost(format!("{id}: {} {:?} {}", r.status, r.headers, r.text()));
    }
}

async fn raw(envoy: &EnvoyProcess, id: &str, request: &[u8], tally: &Tally) {
    tally.sent();
    match raw_exchange(&envoy.addr, request, request.len(), Duration::ZERO, WITHIN).await {
        Ok(r) => judge(id, request.starts_with(b"HEAD "), &r, tally),
        Err(e) => tally.lost(format!("{id}: {e}")),
    }
}

fn head(method: &str, path: &[u8], id: &str, headers: &[Vec<u8>], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path);
    out.extend_from_slice(b" HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\nx-test-tag: ");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b"\r\n");
    for h in headers {
        out.extend_from_slice(h);
        out.extend_from_slice(b"\r\n");
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Each hand-made hostile request, by name.
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let big = |n: usize| format!("x-big: {}", "a".repeat(n)).into_bytes();
    let repeated: Vec<Vec<u8>> = (0..500)
        .map(|i| format!("x-dup: value-{i}").into_bytes())
        .chain((0..50).map(|i| format!("cookie: c{i}=v{i}").into_bytes()))
        .collect();
    let many_names: Vec<Vec<u8>> = (0..90)
        .map(|i| format!("x-h{i}: {i}").into_bytes())
        .collect();
    vec![
        ("header 100 KB", head("GET", b"/shop/items/1", "c-big", &[big(100_000)], b"")),
        ("header 59 KB", head("GET", b"/shop/items/1", "c-59k", &[big(59_000)], b"")),
        ("500 repeated headers + 50 cookies", head("GET", b"/shop/items/1", "c-dup", &repeated, b"")),
        ("90 distinct headers", head("GET", b"/shop/items/1", "c-names", &many_names, b"")),
        (
            "non-UTF-8 header value",
            head("GET", b"/shop/items/1", "c-latin1", &[b"user-agent: caf\xe9 \xff\xfe\x80".to_vec()], b""),
        ),
        (
            "non-UTF-8 header name",
            head("GET", b"/shop/items/1", "c-badname", &[b"x-\xe9\xff: v".to_vec()], b""),
        ),
        ("non-UTF-8 path", head("GET", b"/shop/items/\xff\xfe\xe9", "c-path", &[], b"")),
        ("non-UTF-8 query", head("GET", b"/shop/items/1?q=\xff\xfe&\xe9=1", "c-query", &[], b"")),
        ("bad %-escapes", head("GET", b"/shop/items/%zz%%ff%C3%28?a=%&b=%e9", "c-pct", &[], b"")),
        ("encoded slash and dots", head("GET", b"/shop/files/..%2F..%2Fetc%2Fpasswd/%2e%2e/x", "c-dots", &[], b"")),
        ("NUL in path", head("GET", b"/shop/items/a\x00b", "c-nul", &[], b"")),
        ("very long path", head("GET", format!("/shop/files/{}", "seg/".repeat(2000)).as_bytes(), "c-longpath", &[], b"")),
        ("absolute-form URI", head("GET", b"http://evil.example/shop/items/1", "c-absolute", &[], b"")),
        ("unknown method", head("BREW", b"/shop/items/1", "c-brew", &[], b"")),
        ("binary body", head("POST", b"/shop/items/1", "c-binary", &[b"content-type: application/octet-stream".to_vec()], &(0..=255u8).collect::<Vec<_>>())),
        ("invalid JSON body", head("POST", b"/shop/items/1", "c-json", &[b"content-type: application/json".to_vec()], b"{\"a\":\xff")),
        (
            "conflicting content-length",
            head("POST", b"/shop/items/1", "c-cl", &[b"content-length: 3".to_vec()], b"abcdef"),
        ),
        (
            "chunked and content-length",
            b"POST /shop/items/1 HTTP/1.1\r\nhost: g\r\nconnection: close\r\nx-test-tag: c-te\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "bad chunk size",
            b"POST /shop/items/1 HTTP/1.1\r\nhost: g\r\nconnection: close\r\nx-test-tag: c-chunk\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n".to_vec(),
        ),
        ("HTTP/1.0 without host", b"GET /shop/items/1 HTTP/1.0\r\nx-test-tag: c-10\r\n\r\n".to_vec()),
        ("not HTTP at all", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec()),
    ]
}

fn random_segment(rng: &mut Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"a",
        b"item",
        b"42",
        b"%20",
        b"%2F",
        b"%C3%A9",
        b"%zz",
        b"%",
        b"%ff",
        b"~",
        b"-",
        b".",
        b"..",
        b"!$&'()*+,;=",
        b"@",
        b":",
        b"\xe9",
        b"\xff",
        b"%7Bid%7D",
        b"%00",
        b"\t",
    ];
    let mut out = Vec::new();
    for _ in 0..rng.below(5) {
        out.extend_from_slice(rng.pick(PIECES));
    }
    out
}

fn random_path(rng: &mut Rng, visible_only: bool) -> Vec<u8> {
    const BASES: &[&[u8]] = &[
        b"/shop/items/",
        b"/shop/files/",
        b"/shop/",
        b"/shop",
        b"/elsewhere/",
        b"/",
        b"//shop/items/",
    ];
    let base = rng.pick(BASES);
    let mut path = base.to_vec();
    for i in 0..rng.below(4) {
        if i > 0 {
            path.push(b'/');
        }
        path.extend(random_segment(rng));
    }
    if rng.chance(40) {
        path.push(b'?');
        for i in 0..rng.below(4) {
            if i > 0 {
                path.push(b'&');
            }
            path.extend(random_segment(rng));
            if rng.chance(70) {
                path.push(b'=');
                path.extend(random_segment(rng));
            }
        }
    }
    if visible_only {
        // HTTP/2 :path must be a valid URI for the client library.
        path.retain(|b| b.is_ascii_graphic());
    }
    path
}

const METHODS: &[&str] = &[
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "PURGE",
];

fn random_h1(rng: &mut Rng, id: &str) -> Vec<u8> {
    let mut method = rng.pick(METHODS);
    // Most requests pass Envoy's codec and reach the filter; the rest carry
    // raw odd bytes (non-ASCII, controls) that the codec must refuse.
    let clean = rng.chance(85);
    let path = random_path(rng, clean);
    if !clean {
        method = rng.pick(&["get", "G\u{e9}T", "GET /x", ""]);
    }
    let mut headers = Vec::new();
    for i in 0..rng.below(6) {
        let mut h = format!("x-r{i}: ").into_bytes();
        let len = rng.below(40);
        h.extend(
            rng.bytes(len)
                .into_iter()
                .filter(|b| *b != b'\r' && *b != b'\n' && (!clean || (0x20..0x7f).contains(b))),
        );
        headers.push(h);
    }
    if rng.chance(30) {
        headers.push(
            rng.pick(&[
                &b"content-type: application/json"[..],
                b"content-type: text/plain; charset=latin1",
                b"content-type: multipart/form-data",
            ])
            .to_vec(),
        );
    }
    let body = if rng.chance(50) {
        let n = rng.below(3000);
        rng.bytes(n)
    } else {
        Vec::new()
    };
    head(method, &path, id, &headers, &body)
}

fn random_h2(
    rng: &mut Rng,
    id: &str,
) -> Option<http::Request<http_body_util::Full<axum::body::Bytes>>> {
    let method = http::Method::from_bytes(rng.pick(METHODS).as_bytes()).ok()?;
    let path = String::from_utf8(random_path(rng, true)).ok()?;
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://gateway{path}"))
        .header("x-test-tag", id);
    for i in 0..rng.below(6) {
        let len = rng.below(40);
        let value: Vec<u8> = rng
            .bytes(len)
            .into_iter()
            .filter(|b| *b >= 0x20 && *b != 0x7f)
            .collect();
        if let Ok(v) = http::HeaderValue::from_bytes(&value) {
            builder = builder.header(format!("x-r{i}"), v);
        }
    }
    let body = if rng.chance(50) {
        let n = rng.below(3000);
        rng.bytes(n)
    } else {
        Vec::new()
    };
    builder.body(http_body_util::Full::new(body.into())).ok()
}

#[tokio::test]
async fn hostile_http_is_always_answered_and_never_traps_the_filter() {
    let s = stack().await;
    let r = s
        .envoy
        .send("GET", "/shop/items/1", &[("x-test-tag", "warm")], b"")
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "warm"));
    let vm_before = wasm_vm_stats(&s.envoy.admin).await;
    let mut rows = Vec::new();

    // Hand-made hostile requests, one by one.
    let crafted_tally = Tally::new();
    for (what, request) in crafted() {
        let before = crafted_tally.lost_count();
        // Judged against the request id it sends (`c-...`).
        let id = String::from_utf8_lossy(&request)
            .split("x-test-tag: ")
            .nth(1)
            .and_then(|rest| rest.split("\r\n").next())
            .unwrap_or(what)
            .to_owned();
        raw(&s.envoy, &id, &request, &crafted_tally).await;
        if crafted_tally.lost_count() > before {
            println!("lost: {what}");
        }
    }
    rows.push(("crafted", crafted_tally.clone()));

    // Slow senders: headers a byte every 10 ms, a body 10 bytes per 100 ms.
    let slow_tally = Tally::new();
    let slow_headers = head(
        "GET",
        b"/shop/items/slow",
        "slow-headers",
        &[b"x-a: b".to_vec()],
        b"",
    );
    let slow_body = head("POST", b"/shop/items/slow", "slow-body", &[], &[b'z'; 200]);
    let mut slow = Vec::new();
    for (id, request, piece, gap) in [
        ("slow-headers", slow_headers, 1, Duration::from_millis(10)),
        ("slow-body", slow_body, 10, Duration::from_millis(100)),
    ] {
        let (addr, tally) = (s.envoy.addr.clone(), slow_tally.clone());
        slow.push(tokio::spawn(async move {
            tally.sent();
            match raw_exchange(&addr, &request, piece, gap, Duration::from_secs(30)).await {
                Ok(r) if r.status == 200 && r.body == id.as_bytes() => tally.correct(200),
                Ok(r) => tally.lost(format!("{id}: {} {}", r.status, r.text())),
                Err(e) => tally.lost(format!("{id}: {e}")),
            }
        }));
    }

    // Random requests, half HTTP/1.1 (raw bytes), half HTTP/2.
    let total = scaled(10_000, 100_000);
    let seed: u64 = std::env::var("LAMBDAGATE_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("FAULT-SEED {seed}");
    let h1_tally = Tally::new();
    let h2_tally = Tally::new();
    let mut tasks = Vec::new();
    let workers = 8;
    for w in 0..workers {
        let (addr, h1, h2) = (s.envoy.addr.clone(), h1_tally.clone(), h2_tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(seed.wrapping_add(w as u64 * 7919));
            let mut conn: Option<H2Connection> = None;
            for n in 0..total / workers {
                let id = format!("rnd-{w}-{n}");
                if n % 2 == 0 {
                    let request = random_h1(&mut rng, &id);
                    h1.sent();
                    match raw_exchange(&addr, &request, request.len(), Duration::ZERO, WITHIN).await
                    {
                        Ok(r) => {
                            if r.status == 400
                                && n < 40
                                && std::env::var_os("LAMBDAGATE_FAULTS_DEBUG").is_some()
                            {
                                println!(
                                    "400 for {:?}",
                                    String::from_utf8_lossy(&request[..request.len().min(300)])
                                );
                            }
                            judge(&id, request.starts_with(b"HEAD "), &r, &h1)
                        }
                        Err(e) => h1.lost(format!(
                            "{id}: {e} {:?}",
                            String::from_utf8_lossy(&request[..request.len().min(200)])
                        )),
                    }
                } else {
                    let Some(request) = random_h2(&mut rng, &id) else {
                        continue;
                    };
                    let what = format!("{} {}", request.method(), request.uri());
                    let head_request = request.method() == http::Method::HEAD;
                    if conn.as_ref().is_none_or(H2Connection::is_closed) {
                        conn = Some(H2Connection::connect(&addr).await.unwrap());
                    }
                    h2.sent();
                    match conn.as_ref().unwrap().send(request, WITHIN).await {
                        Ok(r) => judge(&id, head_request, &r, &h2),
                        Err(e) => h2.lost(format!("{id}: {e} ({what})")),
                    }
                }
            }
        }));
    }
    for t in tasks.into_iter().chain(slow) {
        t.await.unwrap();
    }
    rows.push(("slow senders", slow_tally));
    rows.push(("random HTTP/1.1", h1_tally));
    rows.push(("random HTTP/2", h2_tally));

    let vm_after = wasm_vm_stats(&s.envoy.admin).await;
    let mut problems = Vec::new();
    for (what, tally) in &rows {
        println!("{}", tally.summary(&format!("hostile {what}")));
        if tally.lost_count() > 0 {
            problems.push(what.to_string());
        }
    }
    println!(
        "FAULT-LAMBDA-SIDE invocations={} duplicates={}",
        s.lambda.total(),
        s.lambda.duplicates().len()
    );
    let vm_moved = moved(&vm_before, &vm_after);
    assert!(
        vm_moved.is_empty(),
        "the wasm VM trapped or was reloaded: {vm_moved:#?}\n{}",
        s.envoy.logs()
    );
    let logs = s.envoy.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    if std::env::var_os("LAMBDAGATE_FAULTS_DEBUG").is_some() {
        for (what, tally) in &rows {
            println!("{what}: {:#?}", tally.lost_samples(40));
        }
    }
    for (what, tally) in &rows {
        tally.assert_none_lost(&format!("hostile {what}"));
    }
    assert!(problems.is_empty());
    assert!(s.lambda.duplicates().is_empty());
}
