//! Invocations through the invoker's gRPC API against moto with IAM
//! enforcement on: stored keys, wrong keys, missing permissions, the
//! allow-list, invocation types, and cross-account AssumeRole.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use common::*;
use lambdagate_core::request::event;
use lambdagate_harness::http::metric_value;
use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
use lambdagate_harness::{InvokerProcess, Moto, MotoOptions, invoke_request};
use lambdagate_proto::{BodyEncoding, EventHead, InvocationType};
use std::time::Duration;
use tonic::Code;

#[tokio::test]
async fn stored_keys_invoke_with_every_invocation_type() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[stored_endpoint("main", &moto.url, &[&echo], "")]);
    let env = key_env("main", moto.fixture.user("invoker"));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;

    let payload =
        br#"{"httpMethod":"POST","path":"/users/user/7","body":"{\"message\":\"Hello\"}"}"#;
    let reply = client
        .invoke(invoke_request(
            "main",
            &echo,
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("invoke")
        .into_inner();
    assert_eq!(reply.status_code, 200);
    // moto (without docker) answers with the event it received.
    assert_eq!(reply.payload, payload.to_vec());
    assert_eq!(reply.function_error, "");
    assert!(!reply.lambda_request_id.is_empty());

    let reply = client
        .invoke(invoke_request(
            "main",
            &echo,
            payload,
            5000,
            InvocationType::Event,
        ))
        .await
        .expect("event invoke")
        .into_inner();
    assert_eq!(
        reply.status_code, 202,
        "Event invocations are accepted, not run inline"
    );

    let reply = client
        .invoke(invoke_request(
            "main",
            &echo,
            payload,
            5000,
            InvocationType::DryRun,
        ))
        .await
        .expect("dry run")
        .into_inner();
    assert_eq!(reply.status_code, 204);

    // The qualifier travels as Lambda's Qualifier parameter.
    let reply = client
        .invoke(invoke_request(
            "main",
            &format!("{echo}:$LATEST"),
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("qualified invoke")
        .into_inner();
    assert_eq!(reply.status_code, 200);

    // The gateway's way: the event without its body, and the raw body,
    // which the invoker writes in (escaped, or base64 when not UTF-8).
    for body in [&b"{\"message\": \"Hello\"}\n\x01"[..], b"\xff\xfe binary"] {
        let head = EventHead {
            json: br#"{"version":"2.0","rawPath":"/users/user/7""#.to_vec(),
            body: BodyEncoding::BodyHttpText as i32,
        };
        let mut request =
            invoke_request("main", &echo, body, 5000, InvocationType::RequestResponse);
        request.event = Some(head.clone());
        let reply = client.invoke(request).await.expect("invoke").into_inner();
        assert_eq!(reply.status_code, 200);
        assert_eq!(reply.payload, event::finish(&head, body).unwrap());
        let event: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap();
        let base64 = event["isBase64Encoded"].as_bool().unwrap();
        let sent = event["body"].as_str().unwrap();
        match std::str::from_utf8(body) {
            Ok(text) => assert_eq!((sent, base64), (text, false)),
            Err(_) => assert!(base64),
        }
    }

    let metrics = invoker.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("endpoint", "main"), ("outcome", "ok")]
        ),
        Some(6.0),
        "{metrics}"
    );
    assert!(
        metric_value(
            &metrics,
            "lambdagate_invocation_duration_seconds_count",
            &[("endpoint", "main")]
        )
        .is_some_and(|n| n >= 4.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn refused_credentials_and_permissions_give_access_denied() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[
        stored_endpoint("wrong-secret", &moto.url, &[&echo], ""),
        stored_endpoint("no-lambda", &moto.url, &[&echo], ""),
    ]);
    let invoker_key = moto.fixture.user("invoker");
    let mut env = key_env("wrong-secret", invoker_key);
    env[1].1 = "x".repeat(40);
    env.extend(key_env("no-lambda", moto.fixture.user("nolambda")));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;

    let status = client
        .invoke(invoke_request(
            "wrong-secret",
            &echo,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("a wrong secret must be refused");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::PermissionDenied, "ACCESS_DENIED")
    );
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    assert!(message.contains("endpoint `wrong-secret`"), "{message}");
    assert!(
        message.contains("check the endpoint's access key and secret"),
        "{message}"
    );

    let status = client
        .invoke(invoke_request(
            "no-lambda",
            &echo,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("a user without Lambda permission must be refused");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::PermissionDenied, "ACCESS_DENIED")
    );
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(message.contains(&echo), "{message}");

    let metrics = invoker.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("outcome", "access_denied")]
        ),
        Some(2.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn allow_list_and_request_checks_refuse_before_calling_aws() {
    // The endpoint points at a stand-in that counts requests: refusals must
    // never reach it.
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", Duration::ZERO)).await;
    let allowed = "arn:aws:lambda:us-east-1:123456789012:function:orders-*";
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[allowed], "")]);
    let env = vec![
        ("MAIN_KEY_ID".to_owned(), "AKIAEXAMPLEEXAMPLE01".to_owned()),
        (
            "MAIN_SECRET".to_owned(),
            "allow-list-test-secret".to_owned(),
        ),
    ];
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;

    let other = "arn:aws:lambda:us-east-1:123456789012:function:users-get";
    let status = client
        .invoke(invoke_request(
            "main",
            other,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("not in the allow list");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::PermissionDenied, "NOT_ALLOWED")
    );
    assert!(message.contains("endpoints.main.allow"), "{message}");

    let status = client
        .invoke(invoke_request(
            "nope",
            other,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("unknown endpoint");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::FailedPrecondition, "INVALID_CONFIG")
    );
    assert!(
        message.contains("endpoint `nope` is not configured") && message.contains("main"),
        "{message}"
    );

    let status = client
        .invoke(invoke_request(
            "main",
            "arn:aws:lambda:us-east-1:123:function:orders-x",
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("bad ARN");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::InvalidArgument, "INVALID_REQUEST")
    );
    assert!(message.contains("account `123`"), "{message}");

    let orders = "arn:aws:lambda:us-east-1:123456789012:function:orders-get";
    for bad_timeout in [999, 900_001] {
        let status = client
            .invoke(invoke_request(
                "main",
                orders,
                b"{}",
                bad_timeout,
                InvocationType::RequestResponse,
            ))
            .await
            .expect_err("timeout out of range");
        let (code, kind, message) = failure(&status);
        assert_eq!(
            (code, kind.as_str()),
            (Code::InvalidArgument, "INVALID_REQUEST")
        );
        assert!(message.contains("allowed is 1s to 15m"), "{message}");
    }

    let big = vec![b'a'; 6 * 1024 * 1024 + 1];
    let status = client
        .invoke(invoke_request(
            "main",
            orders,
            &big,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("over 6 MB");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::OutOfRange, "PAYLOAD_TOO_LARGE")
    );
    assert!(message.contains("6291456"), "{message}");

    let over_event = vec![b'a'; 1024 * 1024 + 1];
    let status = client
        .invoke(invoke_request(
            "main",
            orders,
            &over_event,
            5000,
            InvocationType::Event,
        ))
        .await
        .expect_err("over 1 MB for Event");
    assert_eq!(failure(&status).1, "PAYLOAD_TOO_LARGE");

    // An event head with a body: a body under the limit whose escaped
    // event is over it (a control character is six bytes in JSON) is
    // refused before it is written whole; a head the invoker cannot
    // complete is a bad request.
    let head = EventHead {
        json: br#"{"version":"2.0""#.to_vec(),
        body: BodyEncoding::BodyHttpText as i32,
    };
    for (head, body, kind, words) in [
        (
            head.clone(),
            vec![1u8; 1024 * 1024],
            "PAYLOAD_TOO_LARGE",
            "exceeds Lambda's synchronous limit of 6291456 bytes",
        ),
        (
            EventHead {
                body: 42,
                ..head.clone()
            },
            b"{}".to_vec(),
            "INVALID_REQUEST",
            "body encoding 42 is unknown",
        ),
        (
            EventHead {
                json: b"[".to_vec(),
                ..head
            },
            b"{}".to_vec(),
            "INVALID_REQUEST",
            "not a JSON object",
        ),
    ] {
        let mut request =
            invoke_request("main", orders, &body, 5000, InvocationType::RequestResponse);
        request.event = Some(head);
        let status = client.invoke(request).await.expect_err(words);
        let (_, got, message) = failure(&status);
        assert_eq!(got, kind, "{message}");
        assert!(message.contains(words), "{message}");
    }

    assert_eq!(
        lambda.request_count(),
        0,
        "refused calls must not reach Lambda"
    );

    // Exactly 6 MB is fine, and does reach Lambda.
    let max = vec![b'a'; 6 * 1024 * 1024];
    let reply = client
        .invoke(invoke_request(
            "main",
            orders,
            &max,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("6 MB is Lambda's limit, inclusive")
        .into_inner();
    assert_eq!(reply.status_code, 200);
    assert_eq!(lambda.request_count(), 1);
    let paths = lambda.paths.lock().unwrap().clone();
    assert_eq!(
        paths,
        vec!["/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aorders-get/invocations".to_owned()]
    );
    // Operators find gateway calls in CloudTrail by their user agent.
    let user_agents = lambda.user_agents.lock().unwrap().clone();
    assert_eq!(
        user_agents,
        vec![format!("lambdagate/{}", env!("CARGO_PKG_VERSION"))]
    );
}

#[tokio::test]
async fn assume_role_invokes_another_accounts_function_with_one_sts_session() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let cross_echo = moto.fixture.function("cross-echo").to_owned();
    let role = moto.fixture.role("cross").to_owned();
    let extra = format!(
        "    assume_role:\n      role_arn: {role}\n      session_name: lambdagate-test\n      duration_seconds: 900\n"
    );
    let yaml = config(&[stored_endpoint(
        "cross",
        &moto.url,
        &["arn:aws:lambda:us-east-1:222222222222:function:*"],
        &extra,
    )]);
    let env = key_env("cross", moto.fixture.user("assumer"));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;

    assert!(cross_echo.contains(":222222222222:"), "{cross_echo}");
    for i in 0..25 {
        let payload = format!("{{\"n\":{i}}}");
        let reply = client
            .invoke(invoke_request(
                "cross",
                &cross_echo,
                payload.as_bytes(),
                5000,
                InvocationType::RequestResponse,
            ))
            .await
            .unwrap_or_else(|s| panic!("invocation {i}: {s:?}\n{}", invoker.logs()))
            .into_inner();
        assert_eq!(reply.payload, payload.as_bytes());
    }
    let metrics = invoker.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_sts_refreshes_total",
            &[("endpoint", "cross")]
        ),
        Some(1.0),
        "one AssumeRole for 25 invocations: {metrics}"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("endpoint", "cross"), ("outcome", "ok")]
        ),
        Some(25.0)
    );

    // The assumer's own keys cannot invoke in its own account: the role is
    // what grants Lambda access.
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[stored_endpoint("plain", &moto.url, &[&echo], "")]);
    let env = key_env("plain", moto.fixture.user("assumer"));
    let plain = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let status = plain
        .client()
        .await
        .invoke(invoke_request(
            "plain",
            &echo,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("assumer has no Lambda permission of its own");
    assert_eq!(failure(&status).1, "ACCESS_DENIED");
}

#[tokio::test]
async fn unknown_function_is_not_found_and_function_errors_keep_their_payload() {
    // In docker mode (there is no docker here) moto answers unknown
    // functions with a real 404 and known ones with a Handled function error.
    let moto = Moto::start(MotoOptions {
        lambda_docker: true,
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let missing = "arn:aws:lambda:us-east-1:123456789012:function:does-not-exist";
    let invoker = moto_invoker(&moto).await;
    let mut client = invoker.client().await;

    let status = client
        .invoke(invoke_request(
            "main",
            missing,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("unknown function");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::NotFound, "FUNCTION_NOT_FOUND")
    );
    assert!(
        message.contains("does-not-exist") && message.contains("check the ARN"),
        "{message}"
    );

    let reply = client
        .invoke(invoke_request(
            "main",
            &echo,
            b"{\"a\":1}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("a function error is a successful call")
        .into_inner();
    assert_eq!(reply.function_error, "Handled");
    assert_eq!(
        reply.error_kind,
        lambdagate_proto::ErrorKind::FunctionError as i32
    );
    assert_eq!(reply.status_code, 200);
    assert!(!reply.payload.is_empty(), "the error payload is kept");

    let metrics = invoker.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("outcome", "function_error")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("outcome", "function_not_found")]
        ),
        Some(1.0)
    );
}

/// `endpoint_url` with a path prefix, against moto served under that
/// prefix (tests/moto/prefixed_server.py; moto cannot both route an
/// operation and check its signature under a prefix, so two servers).
#[tokio::test]
async fn an_endpoint_url_with_a_path_prefix_is_called_there_and_signed_with_it() {
    const PREFIX: &str = "/lambda-proxy";
    // Where the call goes: only the prefixed URL reaches moto's Lambda.
    let moto = Moto::start(MotoOptions {
        path_prefix: Some(PREFIX),
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let yaml = config(&[
        stored_endpoint("proxied", &format!("{}{PREFIX}", moto.url), &[&echo], ""),
        stored_endpoint(
            "elsewhere",
            &format!("{}/other-prefix", moto.url),
            &[&echo],
            "",
        ),
    ]);
    let mut env = key_env("proxied", moto.fixture.user("invoker"));
    env.extend(key_env("elsewhere", moto.fixture.user("invoker")));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;
    let payload = br#"{"path":"/via/prefix"}"#;
    let reply = client
        .invoke(invoke_request(
            "proxied",
            &format!("{echo}:$LATEST"),
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .unwrap_or_else(|s| panic!("{s:?}\n{}", invoker.logs()))
        .into_inner();
    assert_eq!(reply.status_code, 200);
    assert_eq!(reply.payload, payload.to_vec());
    client
        .invoke(invoke_request(
            "elsewhere",
            &echo,
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("no Lambda under /other-prefix");

    // What is signed: moto checks the signature against the path as
    // received, prefix included (it then cannot name the operation, so a
    // good signature ends as AccessDenied for `lambda:None`).
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        path_prefix: Some(PREFIX),
        signed_path_as_received: true,
        ..Default::default()
    })
    .await;
    let url = format!("{}{PREFIX}", moto.url);
    let yaml = config(&[
        stored_endpoint("good", &url, &[&echo], ""),
        stored_endpoint("wrong-secret", &url, &[&echo], ""),
    ]);
    let key = moto.fixture.user("invoker");
    let mut env = key_env("good", key);
    let mut wrong = key_env("wrong-secret", key);
    wrong[1].1 = "x".repeat(40);
    env.extend(wrong);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let mut client = invoker.client().await;
    let mut message_of = async |endpoint: &str| {
        let status = client
            .invoke(invoke_request(
                endpoint,
                &echo,
                payload,
                5000,
                InvocationType::RequestResponse,
            ))
            .await
            .expect_err("moto cannot route an operation here");
        failure(&status).2
    };
    let good = message_of("good").await;
    assert!(!good.contains("SignatureDoesNotMatch"), "{good}");
    assert!(
        good.contains("AccessDenied") && good.contains("lambda:None"),
        "{good}"
    );
    let wrong = message_of("wrong-secret").await;
    assert!(wrong.contains("SignatureDoesNotMatch"), "{wrong}");
}
