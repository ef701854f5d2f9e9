//! Clients that go away while their function runs, through real Envoy.
//!
//! The filter deliberately leaves a pending invoker call alone when its
//! stream ends (see `on_done` in filter/wasm): Envoy makes the call (gRPC,
//! or HTTP/1.1 with `callout_cluster`, as rendered) on the plugin's root
//! context (proxy-wasm-cpp-host's `grpc_call` and `http_call` take
//! `root_context()`), so it outlives the stream, and its late reply removes
//! the SDK's token entry. If Envoy cancelled those calls instead, the
//! SDK's callout table would keep every token (a leak, and in the end a
//! "duplicate token_id" abort). This test proves the first reading on real
//! Envoy: every abandoned call runs to its end at the invoker, Envoy
//! cancels none, the VM keeps serving, and Envoy's memory stays flat.
//!
//! On the router data path the call to the invoker is Envoy's own upstream
//! stream, which Envoy resets when the client leaves; the invoker runs the
//! invocation in a task of its own, so it still ends at Lambda, once, as
//! here. Only Envoy's cancelled-call count differs.
//!
//! `LAMBDAGATE_ABANDONED` sets the count (default 10,000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess};
use serde_json::json;
use tokio::io::AsyncWriteExt;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:slow";

/// Sends a whole request on a new connection and closes it at once,
/// while the function still runs (it takes 600 ms).
async fn abandon(addr: &str) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /gone/x HTTP/1.1\r\nhost: gateway\r\n\r\n")
        .await
        .unwrap();
    // Long enough for Envoy to route and dispatch, far shorter than the
    // function; then dropping the socket closes it mid-request.
    tokio::time::sleep(Duration::from_millis(250)).await;
}

async fn abandon_many(addr: &str, count: usize) {
    const AT_ONCE: usize = 200;
    let mut sent = 0;
    while sent < count {
        let batch = AT_ONCE.min(count - sent);
        let tasks: Vec<_> = (0..batch)
            .map(|_| {
                let addr = addr.to_owned();
                tokio::spawn(async move { abandon(&addr).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        sent += batch;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn counter(text: &str, line_start: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn envoy_stats(envoy: &EnvoyProcess) -> String {
    let (_, stats) = lambdagate_harness::http::request(&envoy.admin, "GET", "/stats", &[], b"")
        .await
        .unwrap();
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_leave_nothing_behind_in_envoy() {
    let count: usize = std::env::var("LAMBDAGATE_ABANDONED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let lambda = LambdaStandIn::start(CannedReply::ok(
        r#"{"statusCode":200,"body":"done"}"#,
        Duration::from_millis(600),
    ))
    .await;
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let env = [
        ("MAIN_KEY_ID", "AKIDSTANDIN"),
        ("MAIN_SECRET", "standin-secret"),
    ];
    let invoker = InvokerProcess::start(BIN, &yaml, &env, "warn").await;
    let filter = json!({"apis": [{"name": "gone", "version": "v1", "context": "/gone",
        "endpoint": "main", "resources": [{"verb": "GET", "uri_template": "/x", "arn": ARN,
        "timeout_seconds": 5}]}]})
    .to_string();
    let router =
        lambdagate_harness::envoy::data_path(&lambdagate_harness::envoy::with_data_path(&filter))
            == "router";
    // The callouts' cluster (HTTP/1.1 as rendered, or gRPC); the router
    // path's calls go on the invoker's HTTP/2 cluster.
    let cluster = if router {
        "lambdagate_invoker".to_owned()
    } else {
        lambdagate_harness::envoy::callout_cluster(&filter)
    };
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter).await;
    let envoy_pid = envoy.pid().unwrap();
    let served = envoy.send("GET", "/gone/x", &[], b"").await;
    assert_eq!(served.status, 200, "{}", served.text());

    // Warm up (allocator arenas, connection pools), then measure.
    let warm_up = count / 5;
    abandon_many(&envoy.addr, warm_up).await;
    let rss_before = rss_kib(envoy_pid);
    let started = Instant::now();
    abandon_many(&envoy.addr, count).await;
    let sending = started.elapsed();

    // Every call Envoy made to the invoker finished there and reached
    // Lambda once: none was cancelled under it (a cancelled call is never
    // counted as finished). A client that left before Envoy routed its
    // request (the machine is busy) made no call at all.
    let total = 1 + warm_up + count;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last_finished = u64::MAX;
    let (calls, finished, stats) = loop {
        let stats = envoy_stats(&envoy).await;
        let calls = counter(&stats, &format!("cluster.{cluster}.upstream_rq_total:"));
        let finished = counter(&invoker.metrics().await, "lambdagate_invocations_total{");
        let settled = if router {
            // Envoy reset the streams; the invocations it had handed over
            // run on at the invoker until they end.
            finished == last_finished && lambda.request_count() as u64 == finished
        } else {
            finished == calls && lambda.request_count() as u64 == calls
        };
        if settled || Instant::now() > deadline {
            break (calls, finished, stats);
        }
        last_finished = finished;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    };
    if router {
        // A stream reset before the invoker read the call leaves nothing to
        // invoke (the client had gone); every call it read ran once.
        assert!(
            finished <= calls,
            "{finished} invocations for {calls} calls"
        );
        assert_eq!(
            lambda.request_count() as u64,
            finished,
            "each invocation reached Lambda once"
        );
        assert!(
            finished as usize > total / 4,
            "only {finished} of {total} requests were invoked"
        );
    } else {
        assert_eq!(
            finished, calls,
            "calls Envoy made vs calls the invoker finished"
        );
        assert_eq!(
            lambda.request_count() as u64,
            calls,
            "each call reached Lambda once"
        );
    }
    assert!(
        calls as usize > total / 4,
        "only {calls} of {total} requests were routed before their clients left"
    );

    // Envoy cancelled no gRPC call (on the router path it resets the
    // stream of each, and the invocation went on regardless) and reloaded
    // no VM.
    let cancelled = counter(&stats, &format!("cluster.{cluster}.upstream_rq_cancelled:"));
    if !router {
        assert_eq!(cancelled, 0, "Envoy cancelled invoker calls");
    }
    let logs = envoy.logs();
    for sign in ["duplicate token", "panicked", "Function: proxy_on"] {
        assert!(!logs.contains(sign), "{sign} in Envoy's log:\n{logs}");
    }

    // The VM still serves, and Envoy's memory did not grow with the count.
    let served = envoy.send("GET", "/gone/x", &[], b"").await;
    assert_eq!(served.status, 200, "{}", served.text());
    let rss_after = rss_kib(envoy_pid);
    eprintln!(
        "{count} abandoned requests in {sending:?}: Envoy RSS {rss_before} -> {rss_after} KiB, \
         {calls} invoker calls, {finished} finished, {cancelled} cancelled"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "Envoy RSS grew from {rss_before} to {rss_after} KiB"
    );
}
