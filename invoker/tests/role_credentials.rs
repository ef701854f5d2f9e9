//! The `role` access method: AWS's default provider chain picking up
//! credentials from the ECS container-credentials endpoint and from EC2
//! instance metadata (IMDSv2), both played by `CredentialsStandIn` (moto's
//! own IMDS does not work with the Rust SDK). The sessions it hands out are
//! real moto STS sessions of the `gateway-instance` role, announced as
//! expiring after a few seconds, so the invoker must refresh them mid-run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::http::metric_value;
use lambdagate_harness::standins::{CredentialsStandIn, SessionSource};
use lambdagate_harness::{InvokerProcess, Moto, MotoOptions, invoke_request};
use lambdagate_proto::InvocationType;

/// Announced lifetime of each session. The SDK's credentials cache
/// refreshes 10-15 s before expiry, so a 20 s lifetime forces a refresh
/// after 5-10 s of running.
const LIFETIME: Duration = Duration::from_secs(20);
const RUN_FOR: Duration = Duration::from_secs(16);

fn role_config(moto_url: &str, echo: &str) -> String {
    format!(
        "endpoints:\n  instance:\n    access_method: role\n    region: us-east-1\n    endpoint_url: {moto_url}\n    allow:\n      - {echo}\n"
    )
}

async fn invoke_through_refreshes(
    env: Vec<(String, String)>,
    moto: &Moto,
    creds: &CredentialsStandIn,
) {
    let echo = moto.fixture.function("echo").to_owned();
    let invoker =
        InvokerProcess::start(BIN, &role_config(&moto.url, &echo), &env_refs(&env), "info").await;
    let mut client = invoker.client().await;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < RUN_FOR {
        let payload = format!("{{\"n\":{n}}}");
        let reply = client
            .invoke(invoke_request(
                "instance",
                &echo,
                payload.as_bytes(),
                5000,
                InvocationType::RequestResponse,
            ))
            .await
            .unwrap_or_else(|s| {
                panic!(
                    "invocation {n} failed: {s:?}\ninvoker logs:\n{}",
                    invoker.logs()
                )
            })
            .into_inner();
        assert_eq!(reply.payload, payload.as_bytes());
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fetches = creds.fetch_count();
    assert!(
        fetches >= 2,
        "sessions expiring after {LIFETIME:?} must be refreshed during {RUN_FOR:?}: {fetches} fetch(es)"
    );
    assert!(
        fetches < n / 4,
        "credentials must be cached, not fetched per call: {fetches} fetches for {n} calls"
    );
    let keys = creds.served_keys.lock().unwrap().clone();
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), keys.len(), "every fetch is a new session");
    let metrics = invoker.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("endpoint", "instance"), ("outcome", "ok")]
        ),
        Some(n as f64)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_credential_fetches_total",
            &[("endpoint", "instance")]
        ),
        Some(fetches as f64),
        "{metrics}"
    );
}

async fn setup() -> (Moto, CredentialsStandIn) {
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
    (moto, creds)
}

#[tokio::test]
async fn ecs_container_credentials_are_used_and_refreshed() {
    let (moto, creds) = setup().await;
    let env = vec![(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_owned(),
        format!("{}/ecs-credentials", creds.url),
    )];
    invoke_through_refreshes(env, &moto, &creds).await;
}

#[tokio::test]
async fn ec2_instance_metadata_v2_credentials_are_used_and_refreshed() {
    let (moto, creds) = setup().await;
    let env = vec![
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "false".to_owned()),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".to_owned(),
            creds.url.clone(),
        ),
    ];
    invoke_through_refreshes(env, &moto, &creds).await;
}

#[tokio::test]
async fn role_without_any_credentials_source_is_credentials_unavailable() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    // No env keys, no profile, no ECS, IMDS disabled by the harness.
    let invoker = InvokerProcess::start(BIN, &role_config(&moto.url, &echo), &[], "info").await;
    let status = invoker
        .client()
        .await
        .invoke(invoke_request(
            "instance",
            &echo,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("no credentials anywhere");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (tonic::Code::Unavailable, "CREDENTIALS_UNAVAILABLE")
    );
    assert!(message.contains("no AWS credentials"), "{message}");
    let metrics = invoker.metrics().await;
    assert!(
        metric_value(
            &metrics,
            "lambdagate_credential_errors_total",
            &[("endpoint", "instance")]
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}
