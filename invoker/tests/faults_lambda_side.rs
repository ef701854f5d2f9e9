//! Fault suite, item 2: the Lambda side is slow, black-holed, resets
//! connections, or answers garbage, through real Envoy + filter + invoker.
//! Each such request gets 504 (no answer in time) or 502 (an unusable
//! answer) as the gateway's JSON error, within the route timeout plus a
//! small margin, while a healthy route keeps answering 200 throughout.
//!
//! CI: 10 requests per fault. By hand, 200 per fault:
//! `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test faults_lambda_side -- --nocapture`
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
use lambdagate_harness::faults::{
    CountingLambdaStandIn, MisbehavingLambdaStandIn, Misbehaviour, Tally, scaled,
};
use lambdagate_harness::standins::HangingLambda;
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess};
use serde_json::{Value, json};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";
const ROUTE_TIMEOUT: Duration = Duration::from_secs(1);
/// Envoy, the filter and the invoker together may add this much.
const MARGIN: Duration = Duration::from_millis(800);

fn api(name: &str) -> Value {
    json!({"name": name, "version": "v1", "context": format!("/{name}"), "endpoint": name,
           "resources": [{"verb": "GET", "uri_template": "/x", "arn": ARN,
                          "timeout_seconds": ROUTE_TIMEOUT.as_secs()}]})
}

struct Faults {
    _standins: Vec<MisbehavingLambdaStandIn>,
    _hanging: HangingLambda,
    healthy: CountingLambdaStandIn,
    _invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

/// An invoker with one endpoint per `(name, url)` plus `healthy`, and
/// Envoy with one API per endpoint at `/{name}/x`.
async fn start(misbehaving: &[(&str, Misbehaviour)]) -> Faults {
    let hanging = HangingLambda::start().await;
    let healthy = CountingLambdaStandIn::start().await;
    let mut standins = Vec::new();
    let mut endpoints = vec![
        ("blackhole".to_owned(), hanging.url.clone()),
        ("healthy".to_owned(), healthy.url.clone()),
    ];
    for (name, how) in misbehaving {
        let s = MisbehavingLambdaStandIn::start(how.clone()).await;
        endpoints.push(((*name).to_owned(), s.url.clone()));
        standins.push(s);
    }
    let yaml = config(
        &endpoints
            .iter()
            .map(|(name, url)| stored_endpoint(name, url, &[ARN], ""))
            .collect::<Vec<_>>(),
    );
    let mut env = Vec::new();
    for (name, _) in &endpoints {
        let var = name.to_uppercase();
        env.push((format!("{var}_KEY_ID"), "AKIAEXAMPLEFAULTS002".to_owned()));
        env.push((format!("{var}_SECRET"), "fault-suite-secret".to_owned()));
    }
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": endpoints.iter().map(|(name, _)| api(name)).collect::<Vec<_>>(),
    })
    .to_string();
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter).await;
    Faults {
        _standins: standins,
        _hanging: hanging,
        healthy,
        _invoker: invoker,
        envoy,
    }
}

/// Sends `count` requests to `/{name}/x`, 5 at a time; each must be the
/// gateway's JSON error with `status`, naming its request id, in time.
async fn expect_errors(gateway: &str, name: &str, status: u16, count: usize, tally: Arc<Tally>) {
    let mut batch = Vec::new();
    for i in 0..count {
        let (gateway, name, tally) = (gateway.to_owned(), name.to_owned(), tally.clone());
        batch.push(tokio::spawn(async move {
            let request_id = format!("{name}-{i}");
            tally.sent();
            let started = Instant::now();
            let result = lambdagate_harness::http::send_with_timeout(
                &gateway,
                "GET",
                &format!("/{name}/x"),
                &[("x-test-tag", &request_id)],
                b"",
                ROUTE_TIMEOUT + MARGIN + Duration::from_secs(5),
            )
            .await;
            let took = started.elapsed();
            match result {
                Ok(r) if r.status == status && took <= ROUTE_TIMEOUT + MARGIN => {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                    if body["requestId"].as_str() == r.header("x-request-id")
                        && body["message"].is_string()
                    {
                        tally.correct(status);
                    } else {
                        tally.lost(format!("{request_id}: not the JSON error: {}", r.text()));
                    }
                }
                Ok(r) => tally.lost(format!(
                    "{request_id}: {} after {took:?} (want {status} within {:?}): {}",
                    r.status,
                    ROUTE_TIMEOUT + MARGIN,
                    r.text()
                )),
                Err(e) => tally.lost(format!("{request_id}: {e} after {took:?}")),
            }
        }));
        if batch.len() == 5 {
            for t in batch.drain(..) {
                t.await.unwrap();
            }
        }
    }
    for t in batch {
        t.await.unwrap();
    }
}

/// Sends requests to the healthy route until `stop`; each must be 200
/// with its request id, promptly.
fn healthy_load(
    gateway: String,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let request_id = format!("healthy-{n}");
            n += 1;
            tally.sent();
            let started = Instant::now();
            match lambdagate_harness::http::send_with_timeout(
                &gateway,
                "GET",
                "/healthy/x",
                &[("x-test-tag", &request_id)],
                b"",
                ROUTE_TIMEOUT + MARGIN,
            )
            .await
            {
                Ok(r) if r.status == 200 && r.body == request_id.as_bytes() => tally.correct(200),
                Ok(r) => tally.lost(format!("{request_id}: {} {}", r.status, r.text())),
                Err(e) => tally.lost(format!("{request_id}: {e} after {:?}", started.elapsed())),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test]
async fn a_misbehaving_lambda_side_gives_502_or_504_in_time_and_other_routes_stay_up() {
    let count = scaled(10, 200);
    let faults = start(&[
        ("slow", Misbehaviour::Slow(Duration::from_secs(5))),
        ("reset", Misbehaviour::Reset),
        ("garbage", Misbehaviour::Garbage),
        ("truncated", Misbehaviour::Truncated),
        // A proxy response whose statusCode is not a status.
        (
            "malformed",
            Misbehaviour::Payload(r#"{"statusCode":"abc","body":"x"}"#),
        ),
    ])
    .await;
    let gateway = faults.envoy.addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_tally = Tally::new();
    let healthy = healthy_load(gateway.clone(), stop.clone(), healthy_tally.clone());

    let cases = [
        ("slow", 504),
        ("blackhole", 504),
        ("reset", 502),
        ("garbage", 502),
        ("truncated", 502),
        ("malformed", 502),
    ];
    let mut runs = Vec::new();
    let mut tallies = Vec::new();
    for (name, status) in cases {
        let tally = Tally::new();
        tallies.push((name, tally.clone()));
        let gateway = gateway.clone();
        runs.push(tokio::spawn(async move {
            expect_errors(&gateway, name, status, count, tally).await;
        }));
    }
    for r in runs {
        r.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    healthy.await.unwrap();

    let mut failures = Vec::new();
    for (name, tally) in &tallies {
        if tally.lost_count() > 0 || tally.correct_count() != count {
            failures.push(tally.summary(name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    for (name, tally) in &tallies {
        tally.assert_none_lost(&format!("lambda side {name}"));
    }
    healthy_tally.assert_none_lost("healthy route during lambda-side faults");
    assert!(
        healthy_tally.correct_count() >= 20,
        "{}",
        healthy_tally.summary("healthy")
    );
    assert_eq!(faults.healthy.duplicates(), vec![]);
}

/// A reply that is not JSON (here cut short) is the gateway's 502, as API
/// Gateway's "Malformed Lambda proxy response", not a 200 claiming JSON.
#[tokio::test]
async fn a_reply_that_is_not_json_is_a_502() {
    let faults = start(&[(
        "invalidjson",
        Misbehaviour::Payload(r#"{"statusCode":200,"body":"cut"#),
    )])
    .await;
    let tally = Tally::new();
    expect_errors(&faults.envoy.addr, "invalidjson", 502, 3, tally.clone()).await;
    tally.assert_none_lost("lambda side invalid JSON");
}
