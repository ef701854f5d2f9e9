//! Response streaming (`response_mode: stream`) through real Envoy: the
//! sample function `hello-stream-rust` (lambda_http's streaming runtime)
//! run by the invoker's `local` runtime host, and Lambda's wire format
//! (`InvokeWithResponseStream`'s event stream) from a stand-in, since moto
//! does not implement that API.
//!
//! What a client checks: the first bytes come while the function still
//! runs; a big stream passes with the invoker's memory flat and a slow
//! reader slows the function instead; a failure after the head is visible
//! (an HTTP/1 body without its last chunk, a reset HTTP/2 stream) and in
//! the access log; the prelude's status and headers arrive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::faults::{H2Connection, parse_raw_response, rss_kib};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, hello_stream_rust};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:hello-stream-rust";
const MB: usize = 1024 * 1024;

struct Stack {
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

/// `ANY /s/stream` (streamed, route timeout `timeout_seconds`) served by
/// the streaming sample on a `local` endpoint, one process at a time (so a
/// process that is not given back shows).
async fn local_stack(timeout_seconds: u32) -> Stack {
    let yaml = format!(
        "endpoints:\n  main:\n    access_method: local\n    region: us-east-1\n    allow: [\"{ARN}\"]\n    functions:\n    - name: hello-stream-rust\n      command: [\"{}\"]\n      timeout_seconds: 120\n      max_concurrency: 1\n",
        hello_stream_rust().display()
    );
    let invoker = InvokerProcess::start(BIN, &yaml, &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &filter(ARN, timeout_seconds).to_string(),
    )
    .await;
    Stack { invoker, envoy }
}

fn filter(arn: &str, timeout_seconds: u32) -> serde_json::Value {
    json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "s", "version": "v1", "context": "/s", "endpoint": "main",
            "payload_format": "v2",
            "resources": [
                {"verb": "ANY", "uri_template": "/stream", "arn": arn,
                 "response_mode": "stream", "timeout_seconds": timeout_seconds},
                {"verb": "GET", "uri_template": "/buffered", "arn": arn}
            ]
        }]
    })
}

/// An HTTP/1.1 exchange read as it arrives: when each marker first
/// appeared in the raw bytes, and everything read until the server closed.
struct Streamed {
    raw: Vec<u8>,
    seen: Vec<(String, Duration)>,
    total: Duration,
}

async fn stream_get(addr: &str, path: &str, markers: &[&str]) -> Streamed {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut raw = Vec::new();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
            .await
            .expect("the response stalled")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        for marker in markers {
            if !seen.iter().any(|(m, _)| m == marker)
                && raw.windows(marker.len()).any(|w| w == marker.as_bytes())
            {
                seen.push(((*marker).to_owned(), started.elapsed()));
            }
        }
    }
    Streamed {
        raw,
        seen,
        total: started.elapsed(),
    }
}

/// The body of a raw chunked HTTP/1.1 response, and whether it ended
/// with its last (zero-size) chunk.
fn dechunk(raw: &[u8]) -> (Vec<u8>, bool) {
    let start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut rest = &raw[start..];
    let mut body = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
        let data = &rest[eol + 2..];
        if size == 0 {
            return (body, data.starts_with(b"\r\n"));
        }
        if data.len() < size + 2 {
            body.extend_from_slice(&data[..data.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&data[..size]);
        rest = &data[size + 2..];
    }
    (body, false)
}

fn seen_at(streamed: &Streamed, marker: &str) -> Duration {
    streamed
        .seen
        .iter()
        .find(|(m, _)| m == marker)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| {
            panic!(
                "`{marker}` never arrived: {:?}",
                String::from_utf8_lossy(&streamed.raw)
            )
        })
}

/// The last complete access-log line of Envoy's for `path`.
async fn access_line(envoy: &EnvoyProcess, path: &str) -> String {
    let needle = format!(" {path} ");
    for _ in 0..50 {
        if let Some(line) = envoy
            .logs()
            .lines()
            .rev()
            .find(|l| l.contains("access: ") && l.contains(&needle))
        {
            return line.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no access log line for {path}:\n{}", envoy.logs());
}

#[tokio::test]
async fn the_first_line_reaches_the_client_long_before_the_function_ends() {
    let s = local_stack(30).await;
    // Warm: the first call starts the function's process.
    let warm = stream_get(&s.envoy.addr, "/s/stream?lines=1", &[]).await;
    assert!(String::from_utf8_lossy(&warm.raw).contains("line 1 of 1"));

    let path = "/s/stream?lines=10&interval_ms=200";
    let streamed = stream_get(&s.envoy.addr, path, &["line 1 of 10", "line 10 of 10"]).await;
    let first = seen_at(&streamed, "line 1 of 10");
    let last = seen_at(&streamed, "line 10 of 10");
    println!(
        "time to first line {:?}, to last line {:?}, total {:?}",
        first, last, streamed.total
    );
    // Nine pauses of 200 ms: the last line cannot come before 1.8 s; the
    // first comes as soon as it is written.
    assert!(last >= Duration::from_millis(1800), "{last:?}");
    assert!(first < Duration::from_millis(600), "{first:?}");
    assert!(first * 3 < last, "first {first:?}, last {last:?}");

    let response = parse_raw_response(&streamed.raw).unwrap();
    assert_eq!(response.status, 200);
    // From the stream's prelude (lambda_http's response head).
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.header("x-streamed-by"), Some("hello-stream-rust"));
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.header("content-length"), None);
    assert!(!response.request_id().is_empty());
    let expected: String = (1..=10).map(|i| format!("line {i} of 10\n")).collect();
    let (body, whole) = dechunk(&streamed.raw);
    assert_eq!(String::from_utf8(body).unwrap(), expected);
    // The body ended properly: the last chunk is there.
    assert!(whole);
    assert!(access_line(&s.envoy, path).await.contains(" 200 "));
}

#[tokio::test]
async fn the_prelude_sets_status_and_headers_on_both_protocols() {
    let s = local_stack(30).await;
    let streamed = stream_get(
        &s.envoy.addr,
        "/s/stream?lines=2&interval_ms=10&status=203",
        &[],
    )
    .await;
    let response = parse_raw_response(&streamed.raw).unwrap();
    assert_eq!(response.status, 203, "{}", response.text());
    assert_eq!(response.header("x-streamed-by"), Some("hello-stream-rust"));
    assert_eq!(
        dechunk(&streamed.raw),
        (b"line 1 of 2\nline 2 of 2\n".to_vec(), true)
    );

    let h2 = H2Connection::connect(&s.envoy.addr).await.unwrap();
    let request = http::Request::get(format!(
        "http://{}/s/stream?lines=3&interval_ms=10&status=201",
        s.envoy.addr
    ))
    .body(http_body_util::Full::new(bytes::Bytes::new()))
    .unwrap();
    let (response, trailers) = h2
        .send_with_trailers(request, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text(), "line 1 of 3\nline 2 of 3\nline 3 of 3\n");
    // gRPC's trailers stay between Envoy and the invoker.
    assert!(trailers.is_empty(), "{trailers:?}");
}

#[tokio::test]
async fn fifty_megabytes_stream_with_the_invokers_memory_flat() {
    let s = local_stack(60).await;
    let _ = stream_get(&s.envoy.addr, "/s/stream?lines=1", &[]).await;
    let pid = s.invoker.pid();
    let before = rss_kib(pid).unwrap();
    let sampling = tokio::spawn(async move {
        let mut peak = 0;
        while let Some(rss) = rss_kib(pid) {
            peak = peak.max(rss);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if peak > 0 && Instant::now().elapsed() > Duration::from_secs(600) {
                break;
            }
        }
        peak
    });
    let size = 50 * MB;
    let streamed = stream_get(&s.envoy.addr, &format!("/s/stream?bytes={size}"), &[]).await;
    let response = parse_raw_response(&streamed.raw).unwrap();
    assert_eq!(response.status, 200);
    let (body, whole) = dechunk(&streamed.raw);
    assert!(whole);
    assert_eq!(body.len(), size);
    assert!(body.iter().all(|b| *b == b'x'));
    let during = rss_kib(pid).unwrap();
    sampling.abort();
    let growth_mib = during.saturating_sub(before) as f64 / 1024.0;
    println!(
        "50 MB in {:?}: invoker RSS {before} KiB before, {during} KiB after ({growth_mib:.1} MiB more)",
        streamed.total
    );
    // Far below the 50 MB that passed: the stream never sat in the invoker.
    assert!(growth_mib < 16.0, "invoker RSS grew by {growth_mib:.1} MiB");
}

/// Asks for a `size`-byte stream and reads its first MB (head included);
/// the caller decides when to read on.
async fn first_megabyte(addr: &str, size: usize) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET /s/stream?bytes={size} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = vec![0u8; MB];
    stream.read_exact(&mut raw).await.unwrap();
    (stream, raw)
}

/// The function's own count of what it sent, from the invoker's log. It
/// writes a line per MB, so once a MB has reached the reader a line is
/// there: none is a failure, never a count of zero.
fn megabytes_streamed(invoker: &InvokerProcess) -> usize {
    let logs = invoker.logs();
    logs.lines()
        .filter_map(|l| {
            l.split("streamed ")
                .nth(1)?
                .split(" MB")
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("the function logged no `streamed N MB` line:\n{logs}"))
}

/// Waits until the function stops writing (its count unchanged for
/// `STALLED_FOR`) and returns where it stopped; fails if it is still
/// writing after `STALL_DEADLINE`.
async fn megabytes_when_stalled(invoker: &InvokerProcess) -> usize {
    const STALLED_FOR: Duration = Duration::from_secs(1);
    const STALL_DEADLINE: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut last = megabytes_streamed(invoker);
    let mut since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = megabytes_streamed(invoker);
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= STALLED_FOR {
            return last;
        }
        assert!(
            started.elapsed() < STALL_DEADLINE,
            "the function kept writing to a paused reader: {last} MB after {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_slow_reader_slows_the_function_instead_of_filling_memory() {
    let s = local_stack(60).await;
    let _ = stream_get(&s.envoy.addr, "/s/stream?lines=1", &[]).await;
    let pid = s.invoker.pid();
    let before = rss_kib(pid).unwrap();
    let size = 100 * MB;
    let (mut stream, mut raw) = first_megabyte(&s.envoy.addr, size).await;
    // The reader stops. The function may fill the buffers on the way
    // (Envoy's, HTTP/2's windows, the sockets'), then must wait.
    let stalled_at = megabytes_when_stalled(&s.invoker).await;
    let rss = rss_kib(pid).unwrap();
    println!(
        "reader paused after 1 MB: the function stopped at {stalled_at} MB of {} MB; invoker RSS {before} -> {rss} KiB",
        size / MB
    );
    assert!(
        stalled_at < 60,
        "the function streamed {stalled_at} MB to a paused reader"
    );
    assert!(
        rss.saturating_sub(before) < 16 * 1024,
        "invoker RSS {before} -> {rss} KiB"
    );
    // Reading again, the rest arrives whole.
    stream.read_to_end(&mut raw).await.unwrap();
    let (body, whole) = dechunk(&raw);
    assert!(whole);
    assert_eq!(body.len(), size);
    assert!(megabytes_streamed(&s.invoker) >= 100);
}

#[tokio::test]
async fn an_error_after_the_first_byte_is_visible_to_the_client_and_logged() {
    let s = local_stack(30).await;
    // HTTP/1.1: the function dies after two lines; the chunked body stops
    // without its last chunk and the connection closes.
    let path = "/s/stream?lines=5&interval_ms=100&fail_after=2";
    let streamed = stream_get(&s.envoy.addr, path, &["line 2 of 5"]).await;
    let text = String::from_utf8_lossy(&streamed.raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let (body, whole) = dechunk(&streamed.raw);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "line 1 of 5\nline 2 of 5\n"
    );
    assert!(!whole, "the body looks whole: {text}");
    let logged = access_line(&s.envoy, path).await;
    println!("{logged}");
    assert!(logged.contains("outcome=function_error"), "{logged}");

    // HTTP/2: the stream is reset.
    let h2 = H2Connection::connect(&s.envoy.addr).await.unwrap();
    let request = http::Request::get(format!("http://{}{path}", s.envoy.addr))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let error = h2.send(request, Duration::from_secs(20)).await.unwrap_err();
    assert!(error.contains("body"), "{error}");
    assert!(
        s.invoker.logs().contains("response stream cut"),
        "{}",
        s.invoker.logs()
    );
}

#[tokio::test]
async fn a_reader_that_leaves_stops_the_function_and_the_next_call_is_served() {
    let s = local_stack(30).await;
    let path = "/s/stream?lines=50&interval_ms=100";
    let mut stream = TcpStream::connect(&s.envoy.addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut raw = Vec::new();
    while !String::from_utf8_lossy(&raw).contains("line 2 of 50") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    // The invoker records the call when the stream ends: the reader left.
    let mut recorded = String::new();
    for _ in 0..50 {
        recorded = s.invoker.metrics().await;
        if recorded.contains("outcome=\"client_gone\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with("lambdagate_invocations_total")
                && l.contains("outcome=\"client_gone\"")),
        "{recorded}"
    );
    // The process that was still writing is stopped and replaced (one
    // process at a time: a slot not given back would throttle the next
    // call); the next call works.
    s.invoker.wait_for_log("stopped by the invoker").await;
    let response = s
        .envoy
        .send("GET", "/s/stream?lines=2&interval_ms=10", &[], b"")
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "line 1 of 2\nline 2 of 2\n");
    assert_eq!(started_processes(&s.invoker), 2);
}

fn started_processes(invoker: &InvokerProcess) -> usize {
    invoker
        .logs()
        .matches("started local function process")
        .count()
}

#[tokio::test]
async fn head_gets_the_streams_head_and_a_buffered_route_a_clear_error() {
    let s = local_stack(30).await;
    let response = s
        .envoy
        .send("HEAD", "/s/stream?lines=3&status=203", &[], b"")
        .await;
    assert_eq!(response.status, 203);
    assert_eq!(response.header("x-streamed-by"), Some("hello-stream-rust"));
    // The stream nobody sees is read to its end: recorded as an ordinary
    // invocation, and its process serves the next call.
    let mut recorded = String::new();
    for _ in 0..50 {
        recorded = s.invoker.metrics().await;
        if recorded.contains("outcome=\"ok\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with("lambdagate_invocations_total") && l.contains("outcome=\"ok\"")),
        "{recorded}"
    );
    let response = s.envoy.send("GET", "/s/stream?lines=1", &[], b"").await;
    assert_eq!(response.text(), "line 1 of 1\n");
    assert_eq!(started_processes(&s.invoker), 1, "{}", s.invoker.logs());
    // Invoke (buffered) on a streaming function: Lambda answers with the
    // raw stream, prelude and all, which is no proxy response: 502.
    let response = s.envoy.send("GET", "/s/buffered", &[], b"").await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert_eq!(response.json()["requestId"], response.request_id());
}

#[tokio::test]
async fn the_route_timeout_covers_the_whole_stream() {
    let s = local_stack(2).await;
    let path = "/s/stream?lines=4&interval_ms=1500";
    let streamed = stream_get(&s.envoy.addr, path, &["line 1 of 4"]).await;
    let text = String::from_utf8_lossy(&streamed.raw).into_owned();
    assert!(text.contains("line 1 of 4"), "{text}");
    assert!(!text.contains("line 3 of 4"), "{text}");
    assert!(!dechunk(&streamed.raw).1, "the body looks whole: {text}");
    assert!(
        streamed.total < Duration::from_secs(5),
        "{:?}",
        streamed.total
    );
    let logged = access_line(&s.envoy, path).await;
    assert!(logged.contains("outcome=timeout"), "{logged}");

    // A reader that stops reading does not stretch the stream past the
    // route timeout either: the invoker ends it while its writes wait.
    let size = 100 * MB;
    let (mut stream, mut raw) = first_megabyte(&s.envoy.addr, size).await;
    // Both streams end by the invoker's own timeout, the second while its
    // writes wait on the stopped reader: the reader reads on only then.
    let timeouts = || async {
        lambdagate_harness::http::metric_value(
            &s.invoker.metrics().await,
            "lambdagate_invocations_total",
            &[("outcome", "timeout")],
        )
    };
    let waiting = Instant::now();
    while timeouts().await != Some(2.0) {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "the stopped reader's stream did not time out: {}",
            s.invoker.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stream.read_to_end(&mut raw).await.unwrap();
    let (body, whole) = dechunk(&raw);
    assert!(
        !whole && body.len() < size,
        "{} bytes, whole: {whole}",
        body.len()
    );
    assert_eq!(timeouts().await, Some(2.0), "{}", s.invoker.metrics().await);
}

#[tokio::test]
async fn a_runtimes_error_trailers_cut_the_stream_and_reach_the_log() {
    let dir = lambdagate_harness::repo_root().join("tests/functions/stream-trailers-bootstrap");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:trailers";
    let yaml = format!(
        "endpoints:\n  main:\n    access_method: local\n    region: us-east-1\n    allow: [\"{arn}\"]\n    functions:\n    - name: trailers\n      command: [\"{}\", bootstrap.py]\n      working_dir: \"{}\"\n",
        lambdagate_harness::venv().join("bin/python").display(),
        dir.display()
    );
    let invoker = InvokerProcess::start(BIN, &yaml, &[], "info").await;
    let filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "t", "version": "v1", "context": "/t", "endpoint": "main",
            "payload_format": "v2",
            "resources": [{"verb": "GET", "uri_template": "/{outcome}", "arn": arn,
                           "response_mode": "stream"}]
        }]
    });
    let envoy =
        EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
    let fine = stream_get(&envoy.addr, "/t/fine", &[]).await;
    let (body, whole) = dechunk(&fine.raw);
    assert_eq!(String::from_utf8(body).unwrap(), "part 1\npart 2\npart 3\n");
    assert!(whole);

    let failed = stream_get(&envoy.addr, "/t/fail", &[]).await;
    let (body, whole) = dechunk(&failed.raw);
    assert_eq!(String::from_utf8(body).unwrap(), "part 1\npart 2\n");
    assert!(!whole, "{}", String::from_utf8_lossy(&failed.raw));
    let logged = access_line(&envoy, "/t/fail").await;
    assert!(logged.contains("outcome=function_error"), "{logged}");
    let logs = invoker.logs();
    assert!(
        logs.contains("Runtime.FeedClosed: the upstream feed closed"),
        "{logs}"
    );
}

// ---------------------------------------------------------------------------
// Lambda's wire format: a stand-in for InvokeWithResponseStream

mod lambda_standin {
    //! A STAND-IN for Lambda's `InvokeWithResponseStream` (moto does not
    //! implement it): it answers the invoker's signed call with an event
    //! stream whose frames are written by the AWS SDK's own encoder
    //! (`aws-smithy-eventstream`), paced like a function that writes a
    //! part every 300 ms. Function `stream-ok` ends well, `stream-fails`
    //! fails after two parts, `fails-at-once` before its first byte.

    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use axum::extract::{Path, State};
    use axum::http::HeaderMap;
    use bytes::Bytes;

    pub const PARTS: usize = 4;
    pub const PAUSE: Duration = Duration::from_millis(300);

    #[derive(Clone, Default)]
    pub struct Seen(pub Arc<Mutex<Vec<(String, HeaderMap)>>>);

    fn frame(event_type: &str, payload: &[u8]) -> Bytes {
        let message = Message::new(Bytes::copy_from_slice(payload))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/octet-stream".into()),
            ));
        let mut wire = Vec::new();
        write_message_to(&message, &mut wire).unwrap();
        Bytes::from(wire)
    }

    async fn invoke(
        State(seen): State<Seen>,
        Path(function): Path<String>,
        headers: HeaderMap,
    ) -> axum::response::Response {
        seen.0.lock().unwrap().push((function.clone(), headers));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::convert::Infallible>>(4);
        tokio::spawn(async move {
            if function.ends_with("fails-at-once") {
                let _ = tx
                    .send(Ok(frame(
                        "InvokeComplete",
                        br#"{"ErrorCode":"Unhandled","ErrorDetails":"bad input","LogResult":""}"#,
                    )))
                    .await;
                return;
            }
            let prelude = b"{\"statusCode\":201,\"headers\":{\"content-type\":\"text/event-stream\",\"x-from\":\"prelude\"},\"cookies\":[\"s=1\"]}\0\0\0\0\0\0\0\0";
            let _ = tx.send(Ok(frame("PayloadChunk", prelude))).await;
            for part in 1..=PARTS {
                if function.ends_with("stream-fails") && part == 3 {
                    let _ = tx
                        .send(Ok(frame(
                            "InvokeComplete",
                            br#"{"ErrorCode":"Unhandled","ErrorDetails":"disk full","LogResult":""}"#,
                        )))
                        .await;
                    return;
                }
                let _ = tx
                    .send(Ok(frame(
                        "PayloadChunk",
                        format!("data: part {part}\n\n").as_bytes(),
                    )))
                    .await;
                tokio::time::sleep(PAUSE).await;
            }
            let _ = tx.send(Ok(frame("InvokeComplete", b"{}"))).await;
        });
        axum::response::Response::builder()
            .status(200)
            .header(
                "content-type",
                "application/vnd.awslambda.http-integration-response",
            )
            .header("x-amzn-requestid", "standin-request-1")
            .body(axum::body::Body::from_stream(
                tokio_stream::wrappers::ReceiverStream::new(rx),
            ))
            .unwrap()
    }

    /// Serves on 127.0.0.1; returns its URL.
    pub async fn start(seen: Seen) -> String {
        let app = axum::Router::new()
            .route(
                "/2021-11-15/functions/{function}/response-streaming-invocations",
                axum::routing::post(invoke),
            )
            .with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        url
    }
}

const STANDIN_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

async fn standin_stack() -> (Stack, lambda_standin::Seen) {
    let seen = lambda_standin::Seen::default();
    let url = lambda_standin::start(seen.clone()).await;
    let yaml = config(&[stored_endpoint(
        "main",
        &url,
        &[&format!("{STANDIN_ARN}*")],
        "",
    )]);
    let env = [
        ("MAIN_KEY_ID", "AKIDSTANDIN000000000"),
        ("MAIN_SECRET", "standin/secret/not/a/real/one/00000000"),
    ];
    let invoker = InvokerProcess::start(BIN, &yaml, &env, "info").await;
    let filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "w", "version": "v1", "context": "/w", "endpoint": "main",
            "payload_format": "v2",
            "resources": [{"verb": "GET", "uri_template": "/{function}",
                           "arn": format!("{STANDIN_ARN}stream-ok"),
                           "response_mode": "stream", "timeout_seconds": 10},
                          {"verb": "GET", "uri_template": "/fails/{function}",
                           "arn": format!("{STANDIN_ARN}stream-fails"),
                           "response_mode": "stream", "timeout_seconds": 10},
                          {"verb": "GET", "uri_template": "/early/{function}",
                           "arn": format!("{STANDIN_ARN}fails-at-once"),
                           "response_mode": "stream", "timeout_seconds": 10}]
        }]
    });
    let envoy =
        EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
    (Stack { invoker, envoy }, seen)
}

#[tokio::test]
async fn lambdas_event_stream_reaches_the_client_part_by_part() {
    let (s, seen) = standin_stack().await;
    let streamed = stream_get(
        &s.envoy.addr,
        "/w/events",
        &["data: part 1", "data: part 4"],
    )
    .await;
    let first = seen_at(&streamed, "data: part 1");
    let last = seen_at(&streamed, "data: part 4");
    println!("event stream: first part after {first:?}, last after {last:?}");
    assert!(last >= lambda_standin::PAUSE * 3, "{last:?}");
    assert!(first * 3 < last, "first {first:?}, last {last:?}");
    let response = parse_raw_response(&streamed.raw).unwrap();
    assert_eq!(response.status, 201);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    assert_eq!(response.header("x-from"), Some("prelude"));
    assert_eq!(response.header("set-cookie"), Some("s=1"));
    assert_eq!(
        response.header("x-amzn-requestid"),
        Some("standin-request-1")
    );
    let (body, whole) = dechunk(&streamed.raw);
    assert!(whole);
    let expected: String = (1..=lambda_standin::PARTS)
        .map(|p| format!("data: part {p}\n\n"))
        .collect();
    assert_eq!(String::from_utf8(body).unwrap(), expected);
    // The invoker signed the call to the streaming API.
    let calls = seen.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (function, headers) = &calls[0];
    assert_eq!(function, &format!("{STANDIN_ARN}stream-ok"));
    let authorization = headers.get("authorization").unwrap().to_str().unwrap();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDSTANDIN000000000/"),
        "{authorization}"
    );
    assert!(
        authorization.contains("/us-east-1/lambda/aws4_request"),
        "{authorization}"
    );
}

#[tokio::test]
async fn lambdas_stream_errors_before_and_after_the_head() {
    let (s, _seen) = standin_stack().await;
    // After the head: the client sees the body cut, the log says why.
    let path = "/w/fails/x";
    let streamed = stream_get(&s.envoy.addr, path, &[]).await;
    let (body, whole) = dechunk(&streamed.raw);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "data: part 1\n\ndata: part 2\n\n"
    );
    assert!(!whole);
    let logged = access_line(&s.envoy, path).await;
    assert!(
        logged.contains(" 201 ") && logged.contains("outcome=function_error"),
        "{logged}"
    );
    assert!(
        s.invoker.logs().contains("disk full"),
        "{}",
        s.invoker.logs()
    );

    // Before the first byte: a function error like a buffered call's, the
    // detail in the log only.
    let response = s.envoy.send("GET", "/w/early/x", &[], b"").await;
    assert_eq!(response.status, 502, "{}", response.text());
    let body = response.json();
    assert_eq!(body["message"], "Internal server error");
    assert_eq!(body["requestId"], response.request_id());
    assert!(!response.text().contains("bad input"));
}
