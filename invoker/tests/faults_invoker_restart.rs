//! Fault suite, item 1: the invoker is SIGKILLed and restarted under steady
//! load through real Envoy with the compiled filter. Every request gets an
//! answer (503 while the invoker is down, 200 otherwise), none hangs past
//! the route timeout plus a margin, and no invocation runs twice, counted
//! per request id at the Lambda side (`CountingLambdaStandIn`).
//!
//! CI: 3 kill/restart cycles. By hand, 20 cycles:
//! `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test faults_invoker_restart -- --nocapture`
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
use lambdagate_harness::faults::{CountingLambdaStandIn, Tally, scaled, sigkill};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess};
use serde_json::json;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:counted";
/// The route timeout; a request must be answered within it plus a margin.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(2);
const MARGIN: Duration = Duration::from_secs(2);

fn env() -> Vec<(String, String)> {
    vec![
        ("LAMBDA_KEY_ID".into(), "AKIAEXAMPLEFAULTS001".into()),
        ("LAMBDA_SECRET".into(), "fault-suite-secret".into()),
    ]
}

fn filter_json() -> String {
    json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "svc", "version": "v1", "context": "/svc", "endpoint": "lambda",
            "resources": [{"verb": "GET", "uri_template": "/items/{id}", "arn": ARN,
                           "timeout_seconds": ROUTE_TIMEOUT.as_secs()}]
        }]
    })
    .to_string()
}

/// One request: 200 with the request id echoed by the function, or the
/// gateway's 503 JSON naming the request id, within the bound.
async fn one_request(addr: &str, request_id: &str, tally: &Tally) -> Option<u16> {
    tally.sent();
    let started = Instant::now();
    let result = lambdagate_harness::http::send_with_timeout(
        addr,
        "GET",
        &format!("/svc/items/{request_id}"),
        &[("x-test-tag", request_id)],
        b"",
        ROUTE_TIMEOUT + MARGIN,
    )
    .await;
    let took = started.elapsed();
    match result {
        Ok(r) if r.status == 200 && r.body == request_id.as_bytes() => {
            tally.correct(200);
            Some(200)
        }
        Ok(r) if r.status == 503 => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if body["requestId"].as_str() == r.header("x-request-id") && body["message"].is_string()
            {
                tally.correct(503);
                Some(503)
            } else {
                tally.lost(format!(
                    "{request_id}: 503 without the JSON error: {}",
                    r.text()
                ));
                None
            }
        }
        Ok(r) => {
            tally.lost(format!(
                "{request_id}: {} after {took:?}: {}",
                r.status,
                r.text()
            ));
            None
        }
        Err(e) => {
            tally.lost(format!("{request_id}: {e} after {took:?}"));
            None
        }
    }
}

#[tokio::test]
async fn sigkilled_invoker_under_load_loses_no_request_and_runs_nothing_twice() {
    let cycles = scaled(3, 20);
    let lambda = CountingLambdaStandIn::start().await;
    let yaml = config(&[stored_endpoint("lambda", &lambda.url, &[ARN], "")]);
    let env = env();
    let mut invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let addr = invoker.addr.clone();
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&addr), &filter_json()).await;

    let tally = Tally::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (tally, stop, gateway) = (tally.clone(), stop.clone(), envoy.addr.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                one_request(&gateway, &format!("w{w}-{n}"), &tally).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    for cycle in 0..cycles {
        tokio::time::sleep(Duration::from_millis(700)).await;
        sigkill(invoker.pid());
        invoker.wait_exit(Duration::from_secs(5)).await;
        let down_from = tally.status_count(503);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            tally.status_count(503) > down_from,
            "cycle {cycle}: no 503 while the invoker was down\n{}",
            tally.summary("so far")
        );
        invoker = InvokerProcess::start_at(BIN, &yaml, &env_refs(&env), "info", &addr).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    // After the last restart the gateway serves again.
    assert_eq!(
        one_request(&envoy.addr, "after-last-restart", &tally).await,
        Some(200)
    );

    tally.assert_none_lost(&format!("invoker SIGKILL x{cycles} under load"));
    assert!(
        tally.status_count(200) >= 50 * cycles,
        "{}",
        tally.summary("load")
    );
    let duplicates = lambda.duplicates();
    println!(
        "FAULT-LAMBDA-SIDE invocations={} distinct_ids={} duplicates={}",
        lambda.total(),
        lambda.invocations.lock().unwrap().len(),
        duplicates.len()
    );
    assert!(
        duplicates.is_empty(),
        "invoked more than once: {:?}",
        &duplicates[..duplicates.len().min(10)]
    );
    // Every 200 was one invocation; every 503 at most one (the invoker may
    // have sent Invoke just before it was killed).
    assert!(lambda.total() >= tally.status_count(200));
    assert!(lambda.total() <= tally.sent_count());
}
