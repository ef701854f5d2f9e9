//! Fault suite, the open edge: one client with no credentials against the
//! stack `lambdagate render` writes (real Envoy, the invoker, the Rust
//! sample function run locally), with the rendered edge limits
//! (`gateway.limits`): held uploads, slow senders and idle connections,
//! HTTP/2 streams past the limit and rapid resets, and the rules that hold
//! on every request (path normalization, underscore headers, the overload
//! manager's own answer).
//!
//! CI runs a short form; by hand, the sizes of RELIABILITY.md:
//! `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test faults_edge -- --nocapture --test-threads 1`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::faults::{rss_kib, scaled};
use lambdagate_harness::h2raw::{self, RawH2};
use lambdagate_harness::{
    EnvoyProcess, InvokerProcess, RenderedPorts, filter_wasm, repo_root, start_rendered,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HELLO: &str = "arn:aws:lambda:us-east-1:000000000000:function:hello-rust";
const MIB: u64 = 1024 * 1024;
/// The rendered defaults these tests hold Envoy to (`gateway.limits`).
const UPLOAD_BUDGET: u64 = 256 * MIB;
const HEAP_LIMIT: u64 = 1024 * MIB;
/// What an attacker announces and sends of it: just under Lambda's 6 MB.
const ANNOUNCED: usize = 6_000_000;
const SENT: usize = 5_900_000;

/// One attack at a time: each measures one Envoy's memory and timing, on
/// a machine of two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Stack {
    _dir: tempfile::TempDir,
    _invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

impl Stack {
    fn envoy_pid(&self) -> u32 {
        self.envoy.pid().expect("envoy runs")
    }
}

/// The demo's Rust function behind `/edge`, rendered with `limits` (YAML
/// lines under `gateway.limits`, indented four spaces) and started.
async fn start(limits: &str, edit_bootstrap: impl FnOnce(String) -> String) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let hello = repo_root().join("target/debug/hello-rust");
    let limits = if limits.is_empty() {
        String::new()
    } else {
        format!("  limits:\n{limits}")
    };
    let definition = format!(
        r#"name: edge
version: v1
context: /edge
endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
    - name: hello-rust
      command: ["{hello}"]
      timeout_seconds: 10
      max_concurrency: 8
resources:
  - verb: GET
    uri_template: /hello/{{name}}
    arn: {HELLO}
  - verb: POST
    uri_template: /echo
    arn: {HELLO}
gateway:
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  invoker: 127.0.0.1:{invoker}
  invoker_admin: 127.0.0.1:{invoker_admin}
  wasm: {wasm}
  portal: {{enabled: false}}
{limits}"#,
        hello = hello.display(),
        listen = ports.listen,
        admin = ports.admin,
        invoker = ports.invoker,
        invoker_admin = ports.invoker_admin,
        wasm = filter_wasm().display(),
    );
    let api = dir.path().join("api.yaml");
    std::fs::write(&api, definition).unwrap();
    let out = dir.path().join("out");
    let rendered = tokio::process::Command::new(BIN)
        .args([
            "render",
            api.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(rendered.status.success(), "{}", output_text(&rendered));
    let bootstrap = out.join("envoy.yaml");
    let edited = edit_bootstrap(std::fs::read_to_string(&bootstrap).unwrap());
    std::fs::write(&bootstrap, edited).unwrap();
    let (invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let r = envoy.send("GET", "/edge/hello/warm", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    Stack {
        _dir: dir,
        _invoker: invoker,
        envoy,
    }
}

fn unchanged(bootstrap: String) -> String {
    bootstrap
}

/// One GET through the gateway on a connection of its own: the status
/// (0 for no answer: refused, reset or timed out) and how long it took.
async fn probe_once(addr: &str) -> (u16, Duration) {
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream
            .write_all(b"GET /edge/hello/probe HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        std::str::from_utf8(&head[9..12]).ok()?.parse::<u16>().ok()
    })
    .await;
    (answer.ok().flatten().unwrap_or(0), started.elapsed())
}

/// Ordinary requests, one every 20 ms until `stop`: what a client who is
/// not attacking sees meanwhile.
fn probe(addr: String, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<(u16, Duration)>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            seen.push(probe_once(&addr).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        seen
    })
}

/// (count of 200, of other statuses, of no answer, p99) of a probe.
fn probe_summary(seen: &[(u16, Duration)]) -> (usize, usize, usize, Duration) {
    let ok = seen.iter().filter(|(s, _)| *s == 200).count();
    let none = seen.iter().filter(|(s, _)| *s == 0).count();
    let mut took: Vec<Duration> = seen.iter().map(|(_, t)| *t).collect();
    took.sort();
    let p99 = took
        .get((took.len() * 99 / 100).saturating_sub(1))
        .copied()
        .unwrap_or_default();
    (ok, seen.len() - ok - none, none, p99)
}

/// The peak RSS (KiB) of `pid`, sampled every 100 ms until `stop`.
fn peak_rss(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = peak.max(rss_kib(pid).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peak
    })
}

/// How long until an ordinary request gets 200 again (none within 5 s:
/// panics).
async fn time_to_200(addr: &str) -> Duration {
    let started = Instant::now();
    loop {
        if probe_once(addr).await.0 == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no 200 within 5 s after the attack"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The attack's access-log lines counted by status and outcome.
fn outcome_counts(envoy: &EnvoyProcess) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in envoy
        .logs()
        .lines()
        .filter(|l| l.contains("\"POST /edge/echo"))
    {
        let status = line
            .split("\" ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .unwrap_or("?");
        let outcome = line.rsplit("outcome=").next().unwrap_or("?");
        *counts.entry(format!("{status} {outcome}")).or_default() += 1;
    }
    let logs = envoy.logs();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("lambdagate: "))
        .take(5)
        .collect();
    format!("{counts:?}\n{}", warnings.join("\n"))
}

fn access_lines_with(envoy: &EnvoyProcess, needle: &str) -> usize {
    envoy
        .logs()
        .lines()
        .filter(|l| l.contains("\"POST /edge/echo") && l.contains(needle))
        .count()
}

/// Held uploads: each attacker announces a 6 MB body, sends 5.9 MB of it
/// and holds the rest. Without a bound Envoy kept ~5.8 MB per connection
/// (5.8 GB for 1,000). The filter's upload budget (256 MiB per worker by
/// default) admits what fits and answers the rest 503 before reading
/// their bodies; HTTP/1 uploads are not covered by Envoy's own per-stream
/// accounting, so this is what holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_uploads_stay_within_the_budget_and_others_are_still_served() {
    let _one = ONE_AT_A_TIME.lock().await;
    let attackers = scaled(300, 1000);
    let hold = scaled(Duration::from_secs(5), Duration::from_secs(30));
    let s = start("", unchanged).await;
    let pid = s.envoy_pid();
    let before = rss_kib(pid).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = peak_rss(pid, stop.clone());
    let prober = probe(s.envoy.addr.clone(), stop.clone());

    let admitted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let (release_all, release) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..attackers {
        let (addr, admitted, refused, release) = (
            s.envoy.addr.clone(),
            admitted.clone(),
            refused.clone(),
            release.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(&addr).await else {
                refused.fetch_add(1, Ordering::SeqCst);
                return;
            };
            let head = format!(
                "POST /edge/echo HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: {ANNOUNCED}\r\nX-Attacker: {i}\r\n\r\n"
            );
            let body = vec![b'x'; 64 * 1024];
            let mut sent = 0;
            let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
            while ok && sent < SENT {
                let n = body.len().min(SENT - sent);
                ok = stream.write_all(&body[..n]).await.is_ok();
                sent += n;
            }
            // An answer now is a refusal (503 before the body was read;
            // a reset if Envoy closed while we still wrote); none within
            // 2 s: Envoy holds the upload, waiting for its last bytes.
            let mut answer = [0u8; 12];
            match tokio::time::timeout(Duration::from_secs(2), stream.read_exact(&mut answer))
                .await
            {
                Err(_) if ok => {
                    admitted.fetch_add(1, Ordering::SeqCst);
                    let mut release = release;
                    let _ = release.wait_for(|go| *go).await;
                    drop(stream);
                }
                _ => {
                    refused.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    // Every attacker either holds its upload or was refused.
    let placed = Instant::now();
    while admitted.load(Ordering::SeqCst) + refused.load(Ordering::SeqCst) < attackers {
        assert!(
            placed.elapsed() < Duration::from_secs(120),
            "attackers not placed: {} held, {} refused",
            admitted.load(Ordering::SeqCst),
            refused.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(hold).await;
    let during = rss_kib(pid).expect("Envoy is still up");
    release_all.send_replace(true);
    for task in tasks {
        task.await.unwrap();
    }
    let back = time_to_200(&s.envoy.addr).await;
    stop.store(true, Ordering::SeqCst);
    let peak = sampler.await.unwrap();
    let seen = prober.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_kib(pid).expect("Envoy is still up");
    let (held, refused) = (
        admitted.load(Ordering::SeqCst),
        refused.load(Ordering::SeqCst),
    );
    let (ok, other, none, p99) = probe_summary(&seen);
    println!(
        "{attackers} held uploads of {SENT} of {ANNOUNCED} bytes for {hold:?}: {held} held, {refused} refused (503); \
         Envoy RSS {} MiB before, {} MiB during, {} MiB peak, {} MiB after; 200 again {back:?} after they left; \
         meanwhile {} ordinary requests: {ok} got 200, {other} another status, {none} no answer, p99 {p99:?}",
        before / 1024,
        during / 1024,
        peak / 1024,
        after / 1024,
        seen.len()
    );
    // What the budget admits: whole bodies that fit.
    let fits = usize::try_from(UPLOAD_BUDGET / ANNOUNCED as u64).unwrap();
    assert!(
        held <= fits,
        "{held} held uploads, the budget fits {fits}; Envoy's log ends:\n{}",
        s.envoy
            .logs()
            .lines()
            .filter(|l| l.contains("wasm log"))
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(held + refused, attackers);
    // Envoy's memory: its start plus the admitted bodies, well under the
    // heap limit (1 GiB) plus a margin for the wasm VM and code (the VM's
    // 100 MiB are most of `before`).
    let grown_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mib < (UPLOAD_BUDGET + 128 * MIB) / MIB,
        "Envoy's RSS grew {grown_mib} MiB"
    );
    assert!(peak / 1024 < (HEAP_LIMIT + 256 * MIB) / MIB);
    assert!(back < Duration::from_secs(2), "200 again after {back:?}");
    // Every refusal is in the access log as `overloaded` (a client that
    // was still writing may have seen a reset instead of the 503).
    let mut logged = 0;
    for _ in 0..50 {
        logged = access_lines_with(&s.envoy, "outcome=overloaded");
        if logged >= refused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        logged,
        refused,
        "refusals in the access log; its attack lines:\n{}",
        outcome_counts(&s.envoy)
    );
    // And in Envoy's Prometheus stats, by the filter's own counter.
    let stats = prometheus(&s.envoy).await;
    let counted: u64 = stats
        .lines()
        .filter(|l| l.starts_with("lambdagate_upload_budget_refusals{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, refused as u64, "the filter's refusal counter");
    assert!(
        ok * 100 >= seen.len() * 95,
        "ordinary requests: {ok} of {} got 200",
        seen.len()
    );
}

/// Envoy's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// How one slow connection behaves.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Sends a request's headers one byte a second, never finishing.
    Headers,
    /// Makes one request, reads the answer, then keeps the connection
    /// open and says nothing.
    Idle,
}

/// Opens `count` connections that behave as `how` and waits until Envoy
/// has closed them all: the peak of Envoy's descriptors and memory
/// meanwhile, and the longest a connection lived.
async fn slow_connections(s: &Stack, how: Slow, count: usize) -> (usize, u64, Duration) {
    let pid = s.envoy_pid();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut fds, mut rss) = (0, 0);
            while !stop.load(Ordering::SeqCst) {
                fds = fds.max(open_fds(pid));
                rss = rss.max(rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (fds, rss)
        })
    };
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::new();
    for i in 0..count {
        let (addr, gate) = (s.envoy.addr.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            // Connections open 200 at a time (the listen backlog).
            let permit = gate.acquire_owned().await.unwrap();
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            drop(permit);
            let opened = Instant::now();
            let mut buf = [0u8; 4096];
            match how {
                Slow::Headers => {
                    let head = format!("GET /edge/hello/slow{i} HTTP/1.1\r\nHost: gw\r\nX-Slow: ");
                    for byte in head.bytes().chain(std::iter::repeat(b'a')) {
                        if stream.write_all(&[byte]).await.is_err() {
                            break;
                        }
                        // Envoy's answer (408) or close ends it.
                        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf))
                            .await
                        {
                            Err(_) => {}
                            Ok(_) => break,
                        }
                        assert!(opened.elapsed() < Duration::from_secs(60), "never closed");
                    }
                }
                Slow::Idle => {
                    stream
                        .write_all(b"GET /idle HTTP/1.1\r\nHost: gw\r\n\r\n")
                        .await
                        .unwrap();
                    let mut answer = Vec::new();
                    // The catch-all's 404: read it, then wait for the close.
                    loop {
                        let n =
                            tokio::time::timeout(Duration::from_secs(60), stream.read(&mut buf))
                                .await
                                .expect("never closed")
                                .unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        answer.extend_from_slice(&buf[..n]);
                    }
                    assert!(
                        answer.starts_with(b"HTTP/1.1 404"),
                        "{}",
                        String::from_utf8_lossy(&answer)
                    );
                }
            }
            opened.elapsed()
        }));
    }
    let mut longest = Duration::ZERO;
    for task in tasks {
        longest = longest.max(task.await.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    let (fds, rss) = sampler.await.unwrap();
    (fds, rss, longest)
}

/// Slow senders: connections that send a request's headers a byte a
/// second are closed by `request_headers_timeout`, idle keep-alive
/// connections by the idle timeout; Envoy's descriptors and memory stay
/// bounded meanwhile and ordinary requests get 200. The timeouts are set
/// to 2 s here to keep the test short (the defaults: 10 s and 60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_and_idle_connections_are_closed_by_the_timeouts() {
    let _one = ONE_AT_A_TIME.lock().await;
    let count = scaled(400, 5000);
    let timeout = Duration::from_secs(2);
    let s = start(
        "    request_headers_timeout_seconds: 2\n    connection_idle_timeout_seconds: 2\n",
        unchanged,
    )
    .await;
    let pid = s.envoy_pid();
    for how in [Slow::Headers, Slow::Idle] {
        let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let prober = probe(s.envoy.addr.clone(), stop.clone());
        let started = Instant::now();
        let (fds_peak, rss_peak, longest) = slow_connections(&s, how, count).await;
        let took = started.elapsed();
        stop.store(true, Ordering::SeqCst);
        let seen = prober.await.unwrap();
        // Envoy lets go of what they held.
        let mut fds_after = open_fds(pid);
        for _ in 0..50 {
            if fds_after <= fds_before + 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            fds_after = open_fds(pid);
        }
        let (ok, other, none, p99) = probe_summary(&seen);
        println!(
            "{count} {how:?} connections: all closed by Envoy within {took:?} (the longest lived {longest:?}); \
             Envoy fds {fds_before} before, {fds_peak} peak, {fds_after} after; RSS {} MiB before, {} MiB peak; \
             meanwhile {} ordinary requests: {ok} got 200, {other} another status, {none} no answer, p99 {p99:?}",
            rss_before / 1024,
            rss_peak / 1024,
            seen.len()
        );
        // Closed by the timeout, plus a margin for Envoy's timers. An idle
        // connection is drained first: Envoy closes it after its drain
        // timeout (5 s, Envoy's default) and the delayed close (1 s).
        let bound = match how {
            Slow::Headers => timeout + Duration::from_secs(2),
            Slow::Idle => timeout + Duration::from_secs(5 + 1 + 2),
        };
        assert!(longest < bound, "{how:?}: one lived {longest:?}");
        assert!(
            fds_peak <= fds_before + count + 50,
            "{how:?}: {fds_peak} fds"
        );
        assert!(
            fds_after <= fds_before + 10,
            "{how:?}: {fds_after} fds after"
        );
        assert!(
            rss_peak.saturating_sub(rss_before) < 256 * 1024,
            "{how:?}: RSS grew {} MiB",
            (rss_peak - rss_before) / 1024
        );
        assert!(
            ok * 100 >= seen.len() * 95,
            "{how:?}: {ok} of {} got 200",
            seen.len()
        );
    }
}

/// HTTP/2: the server's SETTINGS allow 100 streams; a client that opens
/// more has the extra ones refused (RST_STREAM REFUSED_STREAM) while its
/// first 100 stay open; a client that opens and resets streams as fast as
/// it can (the "rapid reset" attack) has its connection closed. Envoy's
/// memory does not grow with either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_past_the_limit_are_refused_and_rapid_resets_are_cut_off() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start("", unchanged).await;
    let pid = s.envoy_pid();
    let rss_before = rss_kib(pid).unwrap();

    // Streams past the limit: 150 uploads that never send their body.
    let mut h2 = RawH2::connect(&s.envoy.addr).await.unwrap();
    let settings = loop {
        let frame = h2
            .next(Duration::from_secs(5))
            .await
            .expect("the server's SETTINGS");
        if frame.kind == h2raw::SETTINGS && frame.flags & h2raw::ACK == 0 {
            break frame;
        }
    };
    assert_eq!(settings.setting(h2raw::MAX_CONCURRENT_STREAMS), Some(100));
    let opened = 150u32;
    let mut burst = Vec::new();
    for n in 0..opened {
        burst.extend(h2raw::request(
            2 * n + 1,
            "POST",
            "/edge/echo",
            &[
                ("content-type", "application/json"),
                ("content-length", "10"),
            ],
            false,
        ));
    }
    h2.send(&burst).await.unwrap();
    h2.send(&h2raw::frame(h2raw::PING, 0, 0, &[0; 8]))
        .await
        .unwrap();
    let mut refused = std::collections::BTreeSet::new();
    let mut other = Vec::new();
    while let Some(frame) = h2.next(Duration::from_secs(2)).await {
        match (frame.kind, frame.error_code()) {
            (h2raw::RST_STREAM, Some(h2raw::REFUSED_STREAM)) => {
                refused.insert(frame.stream);
            }
            (h2raw::SETTINGS | h2raw::WINDOW_UPDATE, _) => {}
            _ => other.push(frame),
        }
    }
    let h2_requests = |stats: &str| -> u64 {
        stats
            .lines()
            .filter(|l| {
                l.starts_with("envoy_http_downstream_rq_http2_total{") && l.contains("gateway")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let accepted = h2_requests(&prometheus(&s.envoy).await);
    let goaway = other
        .iter()
        .find(|f| f.kind == h2raw::GOAWAY)
        .and_then(|f| f.error_code());
    println!(
        "{opened} streams opened on one connection (limit 100): Envoy made {accepted} requests of them; \
         {} refused with REFUSED_STREAM; connection closed by Envoy: {} (GOAWAY code {goaway:?}); other frames {:?}",
        refused.len(),
        h2.closed,
        other.iter().map(|f| f.kind).collect::<Vec<_>>()
    );
    // RFC 9113 §5.1.2 allows either answer: refuse the extra streams, or
    // end the connection (Envoy's nghttp2 does this once the client has
    // acknowledged the limit). Either way no more than 100 requests exist.
    assert!(accepted <= 100, "{accepted} requests from one connection");
    assert!(
        refused.len() == 50 || h2.closed,
        "neither refused nor closed: {refused:?}"
    );
    drop(h2);

    // Rapid reset: streams opened and reset at once, in one write each
    // round, until Envoy closes the connection.
    let stat = |stats: &str, name: &str, label: &str| -> u64 {
        stats
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let before = prometheus(&s.envoy).await;
    let rounds = scaled(2_000u32, 20_000);
    let mut h2 = RawH2::connect(&s.envoy.addr).await.unwrap();
    let mut sent = 0u64;
    for round in 0..rounds / 100 {
        let mut burst = Vec::new();
        for n in 0..100 {
            let id = 2 * (round * 100 + n) + 1;
            burst.extend(h2raw::request(id, "GET", "/edge/hello/rapid", &[], true));
            burst.extend(h2raw::reset(id, h2raw::CANCEL));
        }
        if h2.send(&burst).await.is_err() {
            break;
        }
        sent += 100;
    }
    while h2.next(Duration::from_secs(3)).await.is_some() {}
    let after = prometheus(&s.envoy).await;
    let rss_after = rss_kib(pid).unwrap();
    let delta = |name: &str, label: &str| stat(&after, name, label) - stat(&before, name, label);
    let made = delta("envoy_http_downstream_rq_http2_total", "gateway");
    let cut = delta(
        "envoy_http_downstream_rq_too_many_premature_resets",
        "gateway",
    );
    let invoked = delta("envoy_cluster_upstream_rq_total", "lambdagate_invoker")
        + delta(
            "envoy_cluster_upstream_rq_total",
            "lambdagate_invoker_http1",
        );
    println!(
        "rapid reset: {sent} streams opened and reset in bursts; Envoy made {made} requests of them, then closed the \
         connection (premature resets: {cut}; closed: {}); {invoked} of them reached the invoker; \
         Envoy RSS {} MiB before, {} MiB after",
        h2.closed,
        rss_before / 1024,
        rss_after / 1024
    );
    assert!(h2.closed, "Envoy did not end the connection");
    assert_eq!(cut, 1, "not Envoy's premature-reset limit");
    assert!(made < sent / 2, "{made} of {sent} streams became requests");
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "RSS grew {} MiB",
        (rss_after - rss_before) / 1024
    );
    // Others are served again once the invocations those requests started
    // have run (meanwhile the function's concurrency, 8 here, answers 429).
    let back = time_to_200(&s.envoy.addr).await;
    println!("ordinary requests get 200 again {back:?} after the burst");
}

/// The path rules: Envoy normalizes a path before anything routes it
/// (dot segments resolved, repeated slashes merged), so every spelling of
/// a resource's path reaches that resource and no spelling reaches
/// another; an escaped slash stays inside its segment. Header names with
/// underscores and requests with more than 100 headers are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_normalized_before_routing_and_header_rules_hold() {
    let _one = ONE_AT_A_TIME.lock().await;
    let s = start("", unchanged).await;
    for (spelling, name) in [
        ("/edge/hello/x", "x"),
        ("/edge//hello/x", "x"),
        ("/edge/./hello/x", "x"),
        ("/other/../edge/hello/x", "x"),
        ("/edge/hello/y/../x", "x"),
        ("//edge///hello//x", "x"),
        ("/edge/hello/%78", "x"),
    ] {
        let r = s.envoy.send("GET", spelling, &[], b"").await;
        assert_eq!(r.status, 200, "{spelling}: {}", r.text());
        let body: Value = r.json();
        assert_eq!(body["path"], "/edge/hello/x", "{spelling}");
        assert_eq!(body["pathParameters"]["name"], name, "{spelling}");
    }
    // An escaped slash is kept: one segment, the resource's {name}.
    let r = s.envoy.send("GET", "/edge/hello/a%2Fb", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pathParameters"]["name"], "a/b");
    // A spelling cannot climb out of the API and back into another path
    // that is not a resource.
    for spelling in ["/edge/hello/x/../../nothing", "/edge/hello/../../edge"] {
        let r = s.envoy.send("GET", spelling, &[], b"").await;
        assert_eq!(r.status, 404, "{spelling}: {}", r.text());
    }

    // Underscore header names are refused by Envoy (400).
    let r = s
        .envoy
        .send("GET", "/edge/hello/x", &[("x_user", "admin")], b"")
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // 100 headers pass; 101 are refused (431).
    let names: Vec<String> = (0..101).map(|i| format!("x-h{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    // `send` adds host; Envoy counts every header, so leave room for it.
    let r = s.envoy.send("GET", "/edge/hello/x", &many[..98], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.envoy.send("GET", "/edge/hello/x", &many, b"").await;
    assert_eq!(r.status, 431, "{}", r.text());
}

/// The overload manager's own answer: with heap pressure past 95 % Envoy
/// refuses new requests before any filter runs. The client gets the
/// gateway's JSON 503, the access log says `outcome=overloaded`, and
/// Envoy's Prometheus stats count it; when the pressure falls, requests
/// are served again. (The pressure comes from Envoy's injected-resource
/// monitor, a file this test writes, standing in for the heap monitor,
/// whose actions and thresholds are the rendered ones.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overload_managers_refusals_are_json_logged_and_counted() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let pressure = dir.path().join("pressure");
    let set_pressure = |value: &str| {
        // Replaced whole, as Envoy reads it on its own schedule.
        let next = dir.path().join("pressure.next");
        std::fs::write(&next, value).unwrap();
        std::fs::rename(&next, &pressure).unwrap();
    };
    set_pressure("0.0");
    let file = pressure.display().to_string();
    let s = start("", move |bootstrap| {
        let heap = "envoy.resource_monitors.fixed_heap";
        let injected = "envoy.resource_monitors.injected_resource";
        let config = "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig\n      max_heap_size_bytes: 1073741824";
        assert!(bootstrap.contains(config), "{bootstrap}");
        bootstrap.replace(heap, injected).replace(
            config,
            &format!("type.googleapis.com/envoy.extensions.resource_monitors.injected_resource.v3.InjectedResourceConfig\n      filename: {file}"),
        )
    })
    .await;
    let counted = |stats: &str| -> u64 {
        stats
            .lines()
            .filter(|l| {
                l.starts_with("envoy_http_downstream_rq_overload_close{") && l.contains("gateway")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let stats_before = prometheus(&s.envoy).await;

    set_pressure("0.97");
    let mut refused = None;
    for _ in 0..50 {
        let r = s.envoy.send("GET", "/edge/hello/x", &[], b"").await;
        if r.status == 503 {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = refused.expect("no 503 with the pressure at 97 %");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        json!({"message": "Service Unavailable", "requestId": null})
    );
    let stats_after = prometheus(&s.envoy).await;
    println!(
        "refused with the pressure at 97 %: {}; envoy_http_downstream_rq_overload_close{{gateway}} {} -> {}",
        r.text(),
        counted(&stats_before),
        counted(&stats_after)
    );
    assert!(
        counted(&stats_after) > counted(&stats_before),
        "not counted"
    );
    let mut logged = 0;
    for _ in 0..30 {
        logged = s
            .envoy
            .logs()
            .lines()
            .filter(|l| {
                l.contains("\"GET /edge/hello/x")
                    && l.contains(" 503 ")
                    && l.contains("outcome=overloaded")
            })
            .count();
        if logged > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logged > 0,
        "no access-log line with outcome=overloaded:\n{}",
        s.envoy.logs()
    );

    set_pressure("0.1");
    let back = time_to_200(&s.envoy.addr).await;
    println!("served again {back:?} after the pressure fell");
}

async fn prometheus(envoy: &EnvoyProcess) -> String {
    let (status, text) =
        lambdagate_harness::http::request(&envoy.admin, "GET", "/stats/prometheus", &[], b"")
            .await
            .unwrap();
    assert_eq!(status, 200);
    text
}
