//! The invoker's in-flight byte budget (`max_inflight_bytes`): many
//! concurrent maximum-size calls queue within it instead of each holding
//! its 6 MB message at once, against a Lambda stand-in that takes 2 s per
//! call: through the invoker's gRPC API as a client, and through real
//! Envoy and the filter.
//!
//! CI: 200 gRPC calls of 6 MB with a 128 MiB budget (10 waves, ~30 s on a
//! debug build), 24 requests through Envoy with 32 MiB. By hand, 200 with
//! a 64 MiB budget on both (20 waves, ~45 s each):
//! `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test inflight_budget -- --nocapture`
//! `LAMBDAGATE_BUDGET_CALLS` and `LAMBDAGATE_BUDGET_MIB` set either; a
//! budget of 4096 MiB shows the invoker without a working budget (only
//! the answers are checked then).
//!
//! The tests run one at a time: each measures the invoker's memory and
//! time, which a neighbour's 6 MB calls on the same 2 cores would blur.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::faults::scaled;
use lambdagate_harness::http::metric_value;
use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, invoke_request};
use lambdagate_proto::v1::invoker_client::InvokerClient;
use lambdagate_proto::{
    InvocationType, InvokeRequest, MAX_GRPC_MESSAGE_BYTES, MAX_SYNC_PAYLOAD_BYTES,
};
use prost::Message as _;
use tonic::transport::Channel;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:slow";
const MIB: u64 = 1024 * 1024;
/// What the stand-in answers, after its delay.
const REPLY: &str = "{\"done\":true}";
/// The route timeout of every call: far above any wait here.
const ROUTE_TIMEOUT_MS: u32 = 60_000;
/// The invoker's HTTP/2 stream window (server.rs): what h2 may hold for a
/// call that waits for budget.
const STREAM_WINDOW_BYTES: u64 = 256 * 1024;

/// One test at a time (see the module's documentation).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn env(names: &[&str]) -> Vec<(String, String)> {
    names
        .iter()
        .flat_map(|name| {
            let var = name.to_uppercase();
            [
                (format!("{var}_KEY_ID"), "AKIAEXAMPLEEXAMPLE01".to_owned()),
                (format!("{var}_SECRET"), "budget-test-secret".to_owned()),
            ]
        })
        .collect()
}

/// An invoker with the given budget and one `stored` endpoint per
/// (name, stand-in URL).
async fn invoker(budget_bytes: u64, endpoints: &[(&str, &str)]) -> InvokerProcess {
    let yaml = format!(
        "max_inflight_bytes: {budget_bytes}\n{}",
        config(
            &endpoints
                .iter()
                .map(|(name, url)| stored_endpoint(name, url, &[ARN], ""))
                .collect::<Vec<_>>()
        )
    );
    let names: Vec<&str> = endpoints.iter().map(|(name, _)| *name).collect();
    InvokerProcess::start(BIN, &yaml, &env_refs(&env(&names)), "warn").await
}

/// A JSON payload of exactly `bytes` bytes.
fn payload(bytes: usize) -> Vec<u8> {
    let mut json = b"{\"pad\":\"".to_vec();
    json.resize(bytes - 2, b'a');
    json.extend_from_slice(b"\"}");
    json
}

fn call(endpoint: &str, payload_bytes: usize) -> InvokeRequest {
    invoke_request(
        endpoint,
        ARN,
        &payload(payload_bytes),
        ROUTE_TIMEOUT_MS,
        InvocationType::RequestResponse,
    )
}

/// What the budget charges a call: its message in whole KiB.
fn charged_bytes(request: &InvokeRequest) -> u64 {
    (request.encoded_len() as u64).div_ceil(1024) * 1024
}

/// A field of /proc/PID/status in KiB (VmRSS: now; VmHWM: the peak).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

async fn gauge(invoker: &InvokerProcess) -> u64 {
    metric_value(&invoker.metrics().await, "lambdagate_inflight_bytes", &[]).unwrap() as u64
}

async fn waits(invoker: &InvokerProcess) -> u64 {
    metric_value(
        &invoker.metrics().await,
        "lambdagate_budget_waits_total",
        &[],
    )
    .unwrap() as u64
}

/// Waits until `gauge` reads `bytes`.
async fn gauge_reaches(invoker: &InvokerProcess, bytes: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = gauge(invoker).await;
        if now == bytes {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "lambdagate_inflight_bytes is {now}, expected {bytes}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One client on one HTTP/2 connection, as Envoy keeps one to the
/// invoker; a clone shares the connection.
async fn one_connection(invoker: &InvokerProcess) -> InvokerClient<Channel> {
    invoker.client().await
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Samples `lambdagate_inflight_bytes` until stopped; the highest value.
struct GaugeSampler {
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl GaugeSampler {
    fn start(invoker: &InvokerProcess) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let admin = invoker.admin.clone();
        let task = tokio::spawn({
            let running = running.clone();
            async move {
                let mut highest = 0u64;
                while running.load(Ordering::SeqCst) {
                    if let Ok((200, text)) =
                        lambdagate_harness::http::request(&admin, "GET", "/metrics", &[], b"").await
                    {
                        let now =
                            metric_value(&text, "lambdagate_inflight_bytes", &[]).unwrap_or(0.0);
                        highest = highest.max(now as u64);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                highest
            }
        });
        GaugeSampler { running, task }
    }

    async fn highest(self) -> u64 {
        self.running.store(false, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// What one load run did, printed and checked alike by both tests.
struct LoadRun {
    what: &'static str,
    count: usize,
    per_call: u64,
    budget: u64,
    delay: Duration,
    took: Duration,
    waits: u64,
    highest_gauge: u64,
    rss_before_kib: u64,
    rss_peak_kib: u64,
    rss_after_kib: u64,
}

impl LoadRun {
    /// Prints the figures and checks that the calls queued within the
    /// budget and that the invoker's memory stayed within its bound.
    fn check(&self) {
        // At most this many calls hold budget at once; each takes the
        // function's delay, so the calls take at least this many waves.
        let per_wave = (self.budget / self.per_call) as usize;
        let waves = self.count.div_ceil(per_wave.max(1));
        // The bound: what the budget admits (an admitted message is held
        // at most twice at once: tonic's decode buffer and the decoded
        // payload, then the payload and the request to Lambda), what h2
        // holds for each waiting call (one stream window), and 64 MiB for
        // the allocator, the replies and the rest. Without the budget the
        // same load holds every call's 6 MB at once.
        let bound_kib = self.rss_before_kib
            + (2 * self.budget + self.count as u64 * STREAM_WINDOW_BYTES + 64 * MIB) / 1024;
        println!(
            "{}: {} calls of {} bytes, budget {} MiB ({per_wave} at once): {:.1?} \
             ({waves} waves of {:?} at least); budget waits {}; highest lambdagate_inflight_bytes \
             {}; invoker RSS before {} MiB, peak {} MiB (bound {} MiB), after {} MiB",
            self.what,
            self.count,
            self.per_call,
            self.budget / MIB,
            self.took,
            self.delay,
            self.waits,
            self.highest_gauge,
            self.rss_before_kib / 1024,
            self.rss_peak_kib / 1024,
            bound_kib / 1024,
            self.rss_after_kib / 1024,
        );
        if self.budget >= 4096 * MIB {
            return; // the measurement without a working budget
        }
        assert!(self.waits > 0, "no call waited for budget");
        assert!(
            self.took >= self.delay * waves as u32 - Duration::from_millis(500),
            "{} calls within a budget of {per_wave} at once took only {:?}",
            self.count,
            self.took
        );
        assert!(
            self.highest_gauge <= self.budget && self.highest_gauge > 0,
            "lambdagate_inflight_bytes reached {} of {}",
            self.highest_gauge,
            self.budget
        );
        assert!(
            self.rss_peak_kib <= bound_kib,
            "peak RSS {} MiB above the bound of {} MiB",
            self.rss_peak_kib / 1024,
            bound_kib / 1024
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_maximum_size_calls_queue_within_the_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    let count = env_or("LAMBDAGATE_BUDGET_CALLS", 200usize);
    let budget = env_or("LAMBDAGATE_BUDGET_MIB", scaled(128u64, 64)) * MIB;
    let delay = Duration::from_secs(2);
    let lambda = LambdaStandIn::start(CannedReply::ok(REPLY, delay)).await;
    let invoker = invoker(budget, &[("slow", &lambda.url)]).await;
    let pid = invoker.pid();
    let client = one_connection(&invoker).await;

    // One call first: connections, credentials and allocator warmed up.
    let warm_up = call("slow", MAX_SYNC_PAYLOAD_BYTES);
    let per_call = charged_bytes(&warm_up);
    let reply = client.clone().invoke(warm_up).await.unwrap().into_inner();
    assert_eq!(reply.payload, REPLY.as_bytes());
    let rss_before_kib = status_kib(pid, "VmRSS");

    let sampler = GaugeSampler::start(&invoker);
    let started = Instant::now();
    let calls: Vec<_> = (0..count)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let request = call("slow", MAX_SYNC_PAYLOAD_BYTES);
                client.invoke(request).await.map(|r| r.into_inner())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(reply) if reply.payload == REPLY.as_bytes() => {}
            Ok(reply) => failures.push(format!("unexpected reply {reply:?}")),
            Err(status) => failures.push(format!("{status:?}")),
        }
    }
    let run = LoadRun {
        what: "gRPC",
        count,
        per_call,
        budget,
        delay,
        took: started.elapsed(),
        highest_gauge: sampler.highest().await,
        waits: waits(&invoker).await,
        rss_before_kib,
        rss_peak_kib: status_kib(pid, "VmHWM"),
        rss_after_kib: status_kib(pid, "VmRSS"),
    };
    assert!(
        failures.is_empty(),
        "{} of {count} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        lambda.request_count(),
        count + 1,
        "each call reached Lambda once"
    );
    run.check();
    gauge_reaches(&invoker, 0, Duration::from_secs(5)).await;
}

/// The same through Envoy and the filter (the data path the suite runs
/// on): HTTP requests whose events are nearly 6 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_requests_through_envoy_queue_within_the_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    let count = env_or("LAMBDAGATE_BUDGET_CALLS", scaled(24usize, 200));
    let budget = env_or("LAMBDAGATE_BUDGET_MIB", scaled(32u64, 64)) * MIB;
    let delay = Duration::from_secs(2);
    let lambda = LambdaStandIn::start(CannedReply::ok(
        r#"{"statusCode":200,"body":"done"}"#,
        delay,
    ))
    .await;
    let invoker = invoker(budget, &[("slow", &lambda.url)]).await;
    let pid = invoker.pid();
    let filter = serde_json::json!({"apis": [{"name": "big", "version": "v1", "context": "/big",
        "endpoint": "slow", "payload_format": "v2", "resources": [{"verb": "POST",
        "uri_template": "/x", "arn": ARN, "timeout_seconds": 300}]}]})
    .to_string();
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter).await;
    // The body, JSON text, goes into the event as a string: the event
    // stays under Lambda's 6 MB.
    let body = Arc::new(payload(MAX_SYNC_PAYLOAD_BYTES - 64 * 1024));
    let send = |body: Arc<Vec<u8>>| {
        let addr = envoy.addr.clone();
        async move {
            lambdagate_harness::http::send_with_timeout(
                &addr,
                "POST",
                "/big/x",
                &[("content-type", "application/json")],
                &body,
                Duration::from_secs(300),
            )
            .await
        }
    };
    let warm_up = send(body.clone()).await.unwrap();
    assert_eq!((warm_up.status, warm_up.text().as_str()), (200, "done"));
    let per_call = gauge_while_one_call_runs(&invoker, send(body.clone())).await;
    let rss_before_kib = status_kib(pid, "VmRSS");

    let sampler = GaugeSampler::start(&invoker);
    let started = Instant::now();
    let calls: Vec<_> = (0..count)
        .map(|_| tokio::spawn(send(body.clone())))
        .collect();
    let mut failures = Vec::new();
    for call in calls {
        match call.await.unwrap() {
            Ok(r) if r.status == 200 && r.text() == "done" => {}
            Ok(r) => failures.push(format!("{} {}", r.status, r.text())),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let run = LoadRun {
        what: "through Envoy",
        count,
        per_call,
        budget,
        delay,
        took: started.elapsed(),
        highest_gauge: sampler.highest().await,
        waits: waits(&invoker).await,
        rss_before_kib,
        rss_peak_kib: status_kib(pid, "VmHWM"),
        rss_after_kib: status_kib(pid, "VmRSS"),
    };
    assert!(
        failures.is_empty(),
        "{} of {count} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(
        lambda.request_count(),
        count + 2,
        "each request reached Lambda once"
    );
    run.check();
    gauge_reaches(&invoker, 0, Duration::from_secs(5)).await;
}

/// What one call holds, read from the gauge while it runs alone.
async fn gauge_while_one_call_runs<F, T>(invoker: &InvokerProcess, call: F) -> u64
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let running = tokio::spawn(call);
    let deadline = Instant::now() + Duration::from_secs(10);
    let held = loop {
        let now = gauge(invoker).await;
        if now > 0 {
            break now;
        }
        assert!(Instant::now() < deadline, "the call was never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    running.await.unwrap();
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_calls_give_back_what_they_hold_and_nothing_more() {
    let _one = ONE_AT_A_TIME.lock().await;
    let slow = LambdaStandIn::start(CannedReply::ok(REPLY, Duration::from_secs(5))).await;
    let fast = LambdaStandIn::start(CannedReply::ok(REPLY, Duration::ZERO)).await;
    // Room for two maximum-size calls, not three.
    let budget = 14 * MIB;
    let invoker = invoker(budget, &[("slow", &slow.url), ("fast", &fast.url)]).await;
    let client = one_connection(&invoker).await;
    let per_call = charged_bytes(&call("slow", MAX_SYNC_PAYLOAD_BYTES));
    assert!(2 * per_call <= budget && 3 * per_call > budget);

    let start = |endpoint: &'static str| {
        let mut client = client.clone();
        tokio::spawn(async move {
            client
                .invoke(call(endpoint, MAX_SYNC_PAYLOAD_BYTES))
                .await
                .map(|r| r.into_inner())
        })
    };
    let a = start("slow");
    gauge_reaches(&invoker, per_call, Duration::from_secs(10)).await;
    let b = start("slow");
    gauge_reaches(&invoker, 2 * per_call, Duration::from_secs(10)).await;
    assert_eq!(waits(&invoker).await, 0);

    // A third waits; its client gives up (the stream is reset).
    let c = start("slow");
    let deadline = Instant::now() + Duration::from_secs(10);
    while waits(&invoker).await < 1 {
        assert!(Instant::now() < deadline, "the third call never waited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The health service answers while the budget is full.
    let mut health = tonic_health::pb::health_client::HealthClient::new(invoker.channel().await);
    let checked = tokio::time::timeout(
        Duration::from_secs(2),
        health.check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        }),
    )
    .await
    .expect("health check answered at once");
    assert!(checked.is_ok(), "{checked:?}");
    c.abort();
    assert!(c.await.unwrap_err().is_cancelled());
    // It took nothing: the two running calls still hold all that is held.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(gauge(&invoker).await, 2 * per_call);

    // An admitted call abandoned mid-invocation gives its budget back at
    // once, not when its function would have answered.
    a.abort();
    assert!(a.await.unwrap_err().is_cancelled());
    gauge_reaches(&invoker, per_call, Duration::from_secs(1)).await;

    // And a new call is admitted in its place while `b` still runs.
    let d = start("fast").await.unwrap().unwrap();
    assert_eq!(d.payload, REPLY.as_bytes());
    assert!(!b.is_finished(), "the fourth call waited for the second");

    let b = b.await.unwrap().unwrap();
    assert_eq!(b.payload, REPLY.as_bytes());
    gauge_reaches(&invoker, 0, Duration::from_secs(5)).await;
    // The abandoned waiting call never reached the function.
    assert_eq!(slow.request_count(), 2, "a and b only");
    assert_eq!(fast.request_count(), 1);
    assert_eq!(waits(&invoker).await, 1);
}

#[tokio::test]
async fn a_message_larger_than_the_whole_budget_is_refused_at_once() {
    let _one = ONE_AT_A_TIME.lock().await;
    let slow = LambdaStandIn::start(CannedReply::ok(REPLY, Duration::from_secs(10))).await;
    // The least budget the config accepts: one maximum-size call.
    let budget = MAX_GRPC_MESSAGE_BYTES as u64;
    let invoker = invoker(budget, &[("slow", &slow.url)]).await;
    let client = one_connection(&invoker)
        .await
        .max_encoding_message_size(2 * MAX_GRPC_MESSAGE_BYTES);
    // The budget is in use by a maximum-size call at the function...
    let running = {
        let mut client = client.clone();
        tokio::spawn(async move { client.invoke(call("slow", MAX_SYNC_PAYLOAD_BYTES)).await })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while slow.request_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the first call never reached the function"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gauge(&invoker).await > 0);
    // ...and a larger one is refused at once instead of waiting forever.
    let started = Instant::now();
    let status = client
        .clone()
        .invoke(call("slow", MAX_GRPC_MESSAGE_BYTES))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("max_inflight_bytes"),
        "{status:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(
        !running.is_finished(),
        "the first call still holds the budget"
    );
    running.abort();
    assert_eq!(slow.request_count(), 1, "the larger call was not invoked");
}
