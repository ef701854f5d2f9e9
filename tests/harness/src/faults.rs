//! Fault injection and per-request accounting for the fault suite
//! (`invoker/tests/faults_*.rs`, RELIABILITY.md).
//!
//! Stand-ins here play what no real component can do on demand:
//! - [`CountingLambdaStandIn`]: a Lambda Invoke endpoint that counts how
//!   often each request id is invoked (moto cannot report that), answering
//!   a proxy response whose body is the request id.
//! - [`MisbehavingLambdaStandIn`]: a Lambda endpoint that is slow, resets
//!   connections or answers bytes that are not a usable HTTP reply.
//!
//! [`Tally`] counts every request a fault test sends as answered correctly
//! or lost (no answer, hung past its bound, or a wrong answer).

/// The header a fault test names each request with; the counting
/// stand-in answers with it. (`x-request-id` is Envoy's own: a client's
/// is replaced.)
pub const TAG_HEADER: &str = "x-test-tag";

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// `LAMBDAGATE_FAULTS_LONG=1` selects the long (by hand) form of a test.
pub fn long_run() -> bool {
    std::env::var("LAMBDAGATE_FAULTS_LONG").is_ok_and(|v| v == "1")
}

/// `ci` in the default suite, `long` with `LAMBDAGATE_FAULTS_LONG=1`.
pub fn scaled<T>(ci: T, long: T) -> T {
    if long_run() { long } else { ci }
}

// ---------------------------------------------------------------------------
// Accounting

/// Per-request accounting of one fault test.
#[derive(Default)]
pub struct Tally {
    sent: AtomicUsize,
    correct: AtomicUsize,
    lost: Mutex<Vec<String>>,
    statuses: Mutex<HashMap<u16, usize>>,
}

impl Tally {
    pub fn new() -> Arc<Self> {
        Arc::new(Tally::default())
    }

    pub fn sent(&self) {
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    pub fn correct(&self, status: u16) {
        self.correct.fetch_add(1, Ordering::SeqCst);
        *self.statuses.lock().unwrap().entry(status).or_default() += 1;
    }

    /// A request with no answer, an answer too late, or a wrong answer.
    pub fn lost(&self, why: String) {
        self.lost.lock().unwrap().push(why);
    }

    pub fn sent_count(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn correct_count(&self) -> usize {
        self.correct.load(Ordering::SeqCst)
    }

    pub fn lost_count(&self) -> usize {
        self.lost.lock().unwrap().len()
    }

    /// Up to `n` of the lost requests, with why.
    pub fn lost_samples(&self, n: usize) -> Vec<String> {
        let lost = self.lost.lock().unwrap();
        lost[..lost.len().min(n)].to_vec()
    }

    pub fn status_count(&self, status: u16) -> usize {
        self.statuses
            .lock()
            .unwrap()
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    /// One line for the test output (and RELIABILITY.md).
    pub fn summary(&self, what: &str) -> String {
        let mut statuses: Vec<(u16, usize)> = self
            .statuses
            .lock()
            .unwrap()
            .iter()
            .map(|(s, n)| (*s, *n))
            .collect();
        statuses.sort();
        format!(
            "FAULT-TALLY {what}: sent={} correct={} lost={} statuses={statuses:?}",
            self.sent_count(),
            self.correct_count(),
            self.lost_count()
        )
    }

    /// Fails the test unless every request sent was answered correctly.
    pub fn assert_none_lost(&self, what: &str) {
        let summary = self.summary(what);
        println!("{summary}");
        let lost = self.lost.lock().unwrap().clone();
        assert!(
            lost.is_empty(),
            "{summary}\nfirst lost: {:#?}",
            &lost[..lost.len().min(10)]
        );
        assert_eq!(
            self.sent_count(),
            self.correct_count(),
            "{summary}: a request was neither answered nor counted lost"
        );
    }
}

// ---------------------------------------------------------------------------
// Process control

/// SIGKILL by pid: the process gets no chance to finish anything.
pub fn sigkill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill -KILL");
    assert!(status.success(), "kill -KILL {pid} failed");
}

/// Resident set size of a process in KiB, from /proc (None once it exited).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// ---------------------------------------------------------------------------
// Envoy admin stats

/// Every counter and gauge of Envoy's admin `/stats` whose name contains
/// `filter` (histograms are skipped).
pub async fn envoy_stats(admin: &str, filter: &str) -> HashMap<String, u64> {
    let (status, text) =
        crate::http::request(admin, "GET", &format!("/stats?filter={filter}"), &[], b"")
            .await
            .expect("GET /stats");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

/// The stats that tell whether a wasm VM was (re)created or failed: the
/// runtime's VM creation counter and the plugin's failure counters. The
/// fault suite's trap test shows which of them move when a VM traps.
pub async fn wasm_vm_stats(admin: &str) -> HashMap<String, u64> {
    let mut stats = envoy_stats(admin, "wasm").await;
    stats.retain(|k, _| !k.ends_with(".active"));
    stats
}

/// A wasm binary from its text form (for a filter module that traps).
pub fn wasm_from_wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WAT")
}

// ---------------------------------------------------------------------------
// Lambda side: counting stand-in

#[derive(Clone)]
struct CountingState {
    invocations: Arc<Mutex<HashMap<String, u32>>>,
    total: Arc<AtomicUsize>,
    delay: Duration,
}

/// A Lambda Invoke endpoint that counts invocations per API request id
/// (`requestContext.requestId` of the event) and answers a proxy response
/// whose body is that id. No real component here can count invocations
/// per request (moto's Lambda keeps no such record), hence a stand-in.
pub struct CountingLambdaStandIn {
    pub url: String,
    pub invocations: Arc<Mutex<HashMap<String, u32>>>,
    pub total: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingLambdaStandIn {
    pub async fn start() -> Self {
        Self::start_with_delay(Duration::ZERO).await
    }

    /// Each invocation takes `delay` before it answers.
    pub async fn start_with_delay(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = CountingState {
            invocations: Arc::new(Mutex::new(HashMap::new())),
            total: Arc::new(AtomicUsize::new(0)),
            delay,
        };
        let (invocations, total) = (state.invocations.clone(), state.total.clone());
        let app = axum::Router::new()
            .fallback(any(count_invocation))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CountingLambdaStandIn {
            url: format!("http://{addr}"),
            invocations,
            total,
            task,
        }
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// Request ids invoked more than once, with their counts.
    pub fn duplicates(&self) -> Vec<(String, u32)> {
        let mut dups: Vec<(String, u32)> = self
            .invocations
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (id.clone(), *n))
            .collect();
        dups.sort();
        dups
    }

    pub fn count_of(&self, request_id: &str) -> u32 {
        self.invocations
            .lock()
            .unwrap()
            .get(request_id)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for CountingLambdaStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn count_invocation(State(state): State<CountingState>, body: Bytes) -> Response {
    state.total.fetch_add(1, Ordering::SeqCst);
    // The client's tag ([`TAG_HEADER`]): the request id is Envoy's own and
    // the client cannot choose it, so tests name their requests this way.
    let request_id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|e| e["headers"][TAG_HEADER].as_str().map(str::to_owned))
        .unwrap_or_default();
    *state
        .invocations
        .lock()
        .unwrap()
        .entry(request_id.clone())
        .or_default() += 1;
    if !state.delay.is_zero() {
        tokio::time::sleep(state.delay).await;
    }
    let payload = serde_json::json!({
        "statusCode": 200,
        "headers": {"content-type": "text/plain"},
        "body": request_id,
    });
    (
        [
            ("content-type", "application/json"),
            ("x-amz-executed-version", "$LATEST"),
            ("x-amzn-requestid", "counting-standin"),
        ],
        payload.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------
// Lambda side: misbehaving stand-in

/// How a [`MisbehavingLambdaStandIn`] treats each request.
#[derive(Clone, Debug)]
pub enum Misbehaviour {
    /// A valid proxy response, but only after `0`.
    Slow(Duration),
    /// Reads the request, then resets the connection (RST, no answer).
    Reset,
    /// Answers bytes that are not HTTP, then closes.
    Garbage,
    /// A 200 whose Content-Length promises more body than is sent; closes.
    Truncated,
    /// A 200 with a complete HTTP body that is `0` (e.g. invalid JSON or a
    /// malformed proxy response).
    Payload(&'static str),
}

/// A Lambda endpoint that misbehaves on every request in one way, on a raw
/// TCP socket (so it can send what no HTTP server library would).
pub struct MisbehavingLambdaStandIn {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl MisbehavingLambdaStandIn {
    pub async fn start(how: Misbehaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let count = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (how, count) = (how.clone(), count.clone());
                tokio::spawn(async move {
                    let _ = misbehave(socket, how, count).await;
                });
            }
        });
        MisbehavingLambdaStandIn {
            url: format!("http://{addr}"),
            requests,
            task,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for MisbehavingLambdaStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request (head and Content-Length body); false at EOF.
async fn read_request(socket: &mut TcpStream) -> std::io::Result<bool> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = socket.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(false);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(true);
        }
    }
}

fn http_200(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-requestid: misbehaving-standin\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn misbehave(
    mut socket: TcpStream,
    how: Misbehaviour,
    count: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    while read_request(&mut socket).await? {
        count.fetch_add(1, Ordering::SeqCst);
        match &how {
            Misbehaviour::Slow(delay) => {
                tokio::time::sleep(*delay).await;
                socket
                    .write_all(&http_200(r#"{"statusCode":200,"body":"late"}"#))
                    .await?;
            }
            Misbehaviour::Reset => {
                // Linger 0: close() sends RST instead of FIN.
                socket.set_zero_linger()?;
                return Ok(());
            }
            Misbehaviour::Garbage => {
                socket
                    .write_all(b"\x00\x01\x02 SSH-2.0-not-http \xff\xfe\r\n\r\n\x7f")
                    .await?;
                return socket.shutdown().await;
            }
            Misbehaviour::Truncated => {
                socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"statusCode\":200,\"bo",
                    )
                    .await?;
                return socket.shutdown().await;
            }
            Misbehaviour::Payload(body) => socket.write_all(&http_200(body)).await?,
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Raw HTTP/1.1 (bytes no client library would send)

/// The status of a raw HTTP/1.1 response, its headers and body, or None
/// when what came back is not a whole HTTP response.
pub fn parse_raw_response(raw: &[u8]) -> Option<crate::http::Response> {
    parse_response_head(raw, false)
}

/// Like [`parse_raw_response`], but a body shorter than its Content-Length
/// is accepted (a HEAD answer, or what arrived before the server closed).
fn parse_response_head(raw: &[u8], lenient: bool) -> Option<crate::http::Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = match length {
        Some(n) if lenient => rest.get(..n).unwrap_or(rest).to_vec(),
        Some(n) => rest.get(..n)?.to_vec(),
        None => rest.to_vec(),
    };
    Some(crate::http::Response {
        status,
        headers,
        body,
    })
}

/// Sends `request` (complete raw bytes, which should ask for
/// `Connection: close`) in pieces of `piece` bytes, `gap` apart, and
/// reads until the server closes or `within` passes.
pub async fn raw_exchange(
    addr: &str,
    request: &[u8],
    piece: usize,
    gap: Duration,
    within: Duration,
) -> Result<crate::http::Response, String> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    let request = request.to_vec();
    let piece = piece.max(1);
    let writing = tokio::spawn(async move {
        for chunk in request.chunks(piece) {
            if writer.write_all(chunk).await.is_err() {
                break;
            }
            if !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
        }
        writer
    });
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16384];
    let outcome = tokio::time::timeout(within, async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    raw.extend_from_slice(&chunk[..n]);
                    // Stop as soon as one whole response is in.
                    if let Some(r) = parse_raw_response(&raw)
                        && r.header("content-length").is_some()
                    {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    writing.abort();
    let took = started.elapsed();
    match outcome {
        Err(_) if raw.is_empty() => Err(format!("no answer within {within:?}")),
        Ok(Err(e)) if raw.is_empty() => Err(format!("read after {took:?}: {e}")),
        _ => parse_response_head(&raw, true).ok_or_else(|| {
            format!(
                "not an HTTP response after {took:?}: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            )
        }),
    }
}

// ---------------------------------------------------------------------------
// HTTP/2 (prior knowledge, as h2c clients and gRPC-web proxies speak it)

/// One HTTP/2 connection to Envoy; requests on it are multiplexed.
#[derive(Clone)]
pub struct H2Connection {
    sender: hyper::client::conn::http2::SendRequest<http_body_util::Full<Bytes>>,
}

impl H2Connection {
    pub async fn connect(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(H2Connection { sender })
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Sends one request; Err is a transport failure or a stream reset.
    pub async fn send(
        &self,
        request: http::Request<http_body_util::Full<Bytes>>,
        within: Duration,
    ) -> Result<crate::http::Response, String> {
        self.send_with_trailers(request, within)
            .await
            .map(|(response, _)| response)
    }

    /// [`H2Connection::send`], with the response's trailers (none: empty).
    pub async fn send_with_trailers(
        &self,
        request: http::Request<http_body_util::Full<Bytes>>,
        within: Duration,
    ) -> Result<(crate::http::Response, Vec<(String, String)>), String> {
        use http_body_util::BodyExt;
        let mut sender = self.sender.clone();
        let exchange = async move {
            sender
                .ready()
                .await
                .map_err(|e| format!("not ready: {e}"))?;
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let collected = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            let trailers = collected
                .trailers()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| {
                            (
                                k.as_str().to_owned(),
                                String::from_utf8_lossy(v.as_bytes()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = collected.to_bytes().to_vec();
            Ok((
                crate::http::Response {
                    status,
                    headers,
                    body,
                },
                trailers,
            ))
        };
        tokio::time::timeout(within, exchange)
            .await
            .map_err(|_| format!("no answer within {within:?}"))?
    }
}

// ---------------------------------------------------------------------------
// Deterministic randomness for reproducible hostile inputs

/// xorshift64*: the same seed gives the same requests, so a failing
/// hostile-input run can be replayed from the seed it prints.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        let i = self.below(items.len());
        items[i]
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
