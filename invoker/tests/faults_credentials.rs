//! Fault suite, item 3: credentials rotate under load, through real Envoy,
//! the real invoker (access method `role`) and moto with IAM enforced.
//! `CredentialsStandIn` plays the ECS container-credentials endpoint; each
//! fetch is a real moto STS AssumeRole session, announced as expiring after
//! `LIFETIME`, so the invoker must come back for new ones every few
//! seconds (it refreshes 10 s before expiry).
//!
//! The in-invoker `assume_role` path cannot be made to rotate in bounded
//! time: STS sessions last at least 900 s (moto and the config both hold to
//! that), so its refresh is not exercised here.
//!
//! By hand, longer: `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test faults_credentials -- --nocapture`
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
use lambdagate_harness::faults::{Tally, scaled};
use lambdagate_harness::standins::{CredentialsStandIn, SessionSource};
use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, Moto, MotoOptions};
use serde_json::json;

/// Announced session lifetime: with the invoker's 10 s early refresh, a
/// new session is fetched about every 2 s.
const LIFETIME: Duration = Duration::from_secs(12);

struct Stack {
    moto: Moto,
    creds: Option<CredentialsStandIn>,
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

async fn stack() -> Stack {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let assumer = moto.fixture.user("assumer");
    let creds = CredentialsStandIn::start(
        SessionSource {
            sts_url: moto.url.clone(),
            access_key_id: assumer.access_key_id.clone(),
            secret_access_key: assumer.secret_access_key.clone(),
            role_arn: moto.fixture.role("instance").to_owned(),
        },
        LIFETIME,
    )
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = format!(
        "endpoints:\n  instance:\n    access_method: role\n    region: us-east-1\n    endpoint_url: {}\n    allow:\n      - {echo}\n",
        moto.url
    );
    let env = [(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/ecs-credentials", creds.url),
    )];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let invoker = InvokerProcess::start(BIN, &yaml, &env, "info").await;
    let filter = json!({
        "invoker_cluster": "lambdagate_invoker",
        // moto's echo is no proxy response: an HTTP API returns it as is.
        "apis": [{"name": "svc", "version": "v1", "context": "/svc", "endpoint": "instance",
                  "payload_format": "v2", "resources": [{"verb": "GET", "uri_template": "/items/{id}", "arn": echo,
                                 "timeout_seconds": 5}]}]
    })
    .to_string();
    let envoy = EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter).await;
    Stack {
        moto,
        creds: Some(creds),
        invoker,
        envoy,
    }
}

/// What one request got: 200 with moto echoing our request id in the
/// event, or 503 as the gateway's JSON error naming it.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    Unavailable,
    Lost(String),
}

async fn one_request(gateway: &str, request_id: &str) -> Outcome {
    match lambdagate_harness::http::send_with_timeout(
        gateway,
        "GET",
        &format!("/svc/items/{request_id}"),
        &[("x-test-tag", request_id)],
        b"",
        Duration::from_secs(10),
    )
    .await
    {
        Ok(r) if r.status == 200 => {
            let event: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if event["headers"]["x-test-tag"] == request_id {
                Outcome::Ok
            } else {
                Outcome::Lost(format!("{request_id}: 200 but not our event: {}", r.text()))
            }
        }
        Ok(r) if r.status == 503 => {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            if body["requestId"].as_str() == r.header("x-request-id") && body["message"].is_string()
            {
                Outcome::Unavailable
            } else {
                Outcome::Lost(format!(
                    "{request_id}: 503 without the JSON error: {}",
                    r.text()
                ))
            }
        }
        Ok(r) => Outcome::Lost(format!("{request_id}: {} {}", r.status, r.text())),
        Err(e) => Outcome::Lost(format!("{request_id}: {e}")),
    }
}

#[tokio::test]
async fn role_credentials_rotating_under_load_fail_no_request() {
    let run_for = scaled(Duration::from_secs(9), Duration::from_secs(120));
    let s = stack().await;
    let tally = Tally::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..3 {
        let (tally, stop, gateway) = (tally.clone(), stop.clone(), s.envoy.addr.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                tally.sent();
                match one_request(&gateway, &format!("w{w}-{n}")).await {
                    Outcome::Ok => tally.correct(200),
                    Outcome::Unavailable => tally.lost(format!("w{w}-{n}: 503")),
                    Outcome::Lost(why) => tally.lost(why),
                }
                n += 1;
            }
        }));
    }
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let fetches = s.creds.as_ref().unwrap().fetch_count();
    println!("FAULT-CREDENTIALS sessions fetched: {fetches} in {run_for:?}");
    tally.assert_none_lost(&format!(
        "role credentials rotating every ~2 s ({fetches} sessions)"
    ));
    assert!(
        fetches >= 3,
        "only {fetches} sessions in {run_for:?}: no rotation under load"
    );
    assert!(
        tally.correct_count() > fetches * 10,
        "credentials must be cached between refreshes: {}",
        tally.summary("load")
    );
    drop(s.moto);
}

/// When the credentials endpoint is gone at refresh time, the session in
/// hand is still valid: requests must keep succeeding with it until it
/// expires, and only then fail, as 503 (CREDENTIALS_UNAVAILABLE), quickly:
/// not one slow attempt at the gone source per request.
#[tokio::test]
async fn unreachable_credentials_source_uses_the_cached_session_until_it_expires() {
    let mut s = stack().await;
    assert_eq!(one_request(&s.envoy.addr, "warm").await, Outcome::Ok);
    // Wait for a fresh session to be handed out and reach the invoker,
    // then take the endpoint away.
    let creds = s.creds.take().unwrap();
    let served = creds.served_count();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    while creds.served_count() == served {
        assert!(Instant::now() < deadline, "no refresh within 15 s");
        assert_eq!(
            one_request(&s.envoy.addr, &format!("pre-{n}")).await,
            Outcome::Ok
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expiration = creds.last_expiration().unwrap();
    drop(creds);
    // The session's announced expiry as an instant on this clock. Requests
    // sent more than SLACK before it must succeed, and more than SLACK
    // after it must fail: SLACK covers the hop from this test to the
    // invoker on a loaded machine.
    const SLACK: Duration = Duration::from_millis(500);
    let fetched_at = Instant::now();
    let expires_at = fetched_at
        + expiration
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
    let valid_until = expires_at - SLACK;
    let expired_after = expires_at + SLACK;
    let tally = Tally::new();
    let mut first_failure = None;
    let mut i = 0;
    while Instant::now() < expired_after + Duration::from_secs(3) {
        let request_id = format!("cached-{i}");
        i += 1;
        let sent_at = Instant::now();
        tally.sent();
        let outcome = one_request(&s.envoy.addr, &request_id).await;
        if outcome != Outcome::Ok && first_failure.is_none() {
            first_failure = Some(sent_at.duration_since(fetched_at));
        }
        match outcome {
            Outcome::Ok if sent_at < expired_after => tally.correct(200),
            Outcome::Unavailable if sent_at > valid_until => tally.correct(503),
            other => tally.lost(format!(
                "{request_id} at {:?} after the endpoint went, expiry at {:?}: {other:?}",
                sent_at.duration_since(fetched_at),
                expires_at.duration_since(fetched_at)
            )),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "FAULT-CREDENTIALS first failure {first_failure:?} after the endpoint went, session expiring {:?} after (lifetime {LIFETIME:?})",
        expires_at.duration_since(fetched_at)
    );
    tally.assert_none_lost("credentials endpoint gone at refresh time");
    // One attempt per second at the unreachable source; the requests in
    // between fail at once instead of each waiting out the SDK's retries.
    assert!(
        tally.status_count(503) >= 5,
        "requests after expiry waited for the unreachable source: {}",
        tally.summary("after expiry")
    );
    let metrics = s.invoker.metrics().await;
    assert!(
        lambdagate_harness::http::metric_value(
            &metrics,
            "lambdagate_credential_errors_total",
            &[("endpoint", "instance")]
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
}
