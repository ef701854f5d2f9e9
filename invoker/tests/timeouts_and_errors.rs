//! Timeouts and the AWS error shapes moto cannot produce, against Lambda
//! stand-ins: one that never answers, one that is slow, and ones that
//! answer with Lambda's own error JSON.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::standins::{CannedReply, HangingLambda, LambdaStandIn};
use lambdagate_harness::{InvokerProcess, free_port, invoke_request};
use lambdagate_proto::InvocationType;
use tonic::Code;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

fn env() -> Vec<(String, String)> {
    let mut env = Vec::new();
    for name in [
        "hang", "fast", "throttle", "toolarge", "broken", "closed", "slow",
    ] {
        let var = name.to_uppercase();
        env.push((format!("{var}_KEY_ID"), "AKIAEXAMPLEEXAMPLE01".to_owned()));
        env.push((format!("{var}_SECRET"), "timeout-test-secret".to_owned()));
    }
    env
}

#[tokio::test]
async fn a_lambda_that_never_answers_times_out_at_the_route_timeout_while_others_are_served() {
    let hanging = HangingLambda::start().await;
    let fast = LambdaStandIn::start(CannedReply::ok("{\"fast\":true}", Duration::ZERO)).await;
    let yaml = config(&[
        stored_endpoint("hang", &hanging.url, &[ARN], ""),
        stored_endpoint("fast", &fast.url, &[ARN], ""),
    ]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;

    let mut slow_client = invoker.client().await;
    let started = Instant::now();
    let hung = tokio::spawn(async move {
        let result = slow_client
            .invoke(invoke_request(
                "hang",
                ARN,
                b"{}",
                1000,
                InvocationType::RequestResponse,
            ))
            .await;
        (result, started.elapsed())
    });

    // While that call hangs, other calls are answered promptly.
    let mut client = invoker.client().await;
    let mut served = 0;
    while !hung.is_finished() {
        let t = Instant::now();
        let reply = client
            .invoke(invoke_request(
                "fast",
                ARN,
                b"{}",
                1000,
                InvocationType::RequestResponse,
            ))
            .await
            .expect("fast endpoint")
            .into_inner();
        assert_eq!(reply.payload, b"{\"fast\":true}");
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        served += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served >= 10, "only {served} calls served during the hang");

    let (result, took) = hung.await.unwrap();
    let status = result.expect_err("must time out");
    let (code, kind, message) = failure(&status);
    assert_eq!((code, kind.as_str()), (Code::DeadlineExceeded, "TIMEOUT"));
    assert!(message.contains("route timeout of 1s"), "{message}");
    assert!(took >= Duration::from_millis(1000), "fired early: {took:?}");
    assert!(
        took < Duration::from_millis(1600),
        "route timeout 1 s plus margin: {took:?}"
    );
    assert!(
        hanging
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
}

#[tokio::test]
async fn the_callers_shorter_grpc_deadline_wins_over_the_route_timeout() {
    let slow = LambdaStandIn::start(CannedReply::ok("{}", Duration::from_secs(10))).await;
    let yaml = config(&[stored_endpoint("slow", &slow.url, &[ARN], "")]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut client = invoker.client().await;
    let mut request = tonic::Request::new(invoke_request(
        "slow",
        ARN,
        b"{}",
        30_000,
        InvocationType::RequestResponse,
    ));
    request.set_timeout(Duration::from_millis(1500));
    let started = Instant::now();
    let status = client.invoke(request).await.expect_err("deadline");
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The invoker clamps the 30 s route timeout to just under the caller's
    // deadline, so the caller gets our TIMEOUT, not its own cancellation.
    let (code, kind, _) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::DeadlineExceeded, "TIMEOUT"),
        "{status:?}"
    );
    assert!(took >= Duration::from_millis(1300), "{took:?}");
}

#[tokio::test]
async fn lambda_error_responses_map_to_their_kinds() {
    let throttle = LambdaStandIn::start(CannedReply::aws_error(
        429,
        "TooManyRequestsException",
        "Rate exceeded",
    ))
    .await;
    let toolarge = LambdaStandIn::start(CannedReply::aws_error(
        413,
        "RequestTooLargeException",
        "Request must be smaller than 6291456 bytes",
    ))
    .await;
    let broken =
        LambdaStandIn::start(CannedReply::aws_error(500, "ServiceException", "internal")).await;
    let closed = format!("http://127.0.0.1:{}", free_port());
    let yaml = config(&[
        stored_endpoint("throttle", &throttle.url, &[ARN], ""),
        stored_endpoint("toolarge", &toolarge.url, &[ARN], ""),
        stored_endpoint("broken", &broken.url, &[ARN], ""),
        stored_endpoint("closed", &closed, &[ARN], ""),
    ]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut client = invoker.client().await;
    let cases = [
        (
            "throttle",
            Code::ResourceExhausted,
            "THROTTLED",
            "TooManyRequestsException",
        ),
        (
            "toolarge",
            Code::OutOfRange,
            "PAYLOAD_TOO_LARGE",
            "RequestTooLargeException",
        ),
        (
            "broken",
            Code::Unavailable,
            "LAMBDA_UNAVAILABLE",
            "ServiceException",
        ),
        (
            "closed",
            Code::Unavailable,
            "LAMBDA_UNAVAILABLE",
            "could not reach AWS",
        ),
    ];
    for (endpoint, code, kind, text) in cases {
        let status = client
            .invoke(invoke_request(
                endpoint,
                ARN,
                b"{}",
                5000,
                InvocationType::RequestResponse,
            ))
            .await
            .expect_err(endpoint);
        let (c, k, message) = failure(&status);
        assert_eq!((c, k.as_str()), (code, kind), "{endpoint}: {message}");
        assert!(message.contains(text), "{endpoint}: {message}");
    }
    // No SDK retries: one throttled call is one request to Lambda.
    assert_eq!(throttle.request_count(), 1);
    assert_eq!(broken.request_count(), 1);
}
