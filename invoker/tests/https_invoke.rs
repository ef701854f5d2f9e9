//! Lambda Invoke over HTTPS, as against real AWS: moto serves TLS with a
//! self-signed certificate and enforces IAM, so the invoker's TLS client
//! (rustls with the system's roots) and its SigV4 signatures are both
//! checked end to end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test

mod common;

use common::*;
use lambdagate_harness::{InvokerProcess, Moto, MotoOptions, invoke_request};
use lambdagate_proto::InvocationType;
use tonic::Code;

#[tokio::test]
async fn invoke_over_https_trusts_only_the_configured_certificate() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        tls: true,
        ..Default::default()
    })
    .await;
    let cert = moto.tls_cert.clone().expect("moto serves TLS");
    assert!(moto.url.starts_with("https://localhost:"), "{}", moto.url);
    let echo = moto.fixture.function("echo").to_owned();
    let key = moto.fixture.user("invoker");
    let yaml = config(&[
        stored_endpoint("main", &moto.url, &[&echo], ""),
        stored_endpoint("wrong-secret", &moto.url, &[&echo], ""),
    ]);
    let mut env = key_env("main", key);
    env.extend(key_env("wrong-secret", key));
    env[3].1 = "x".repeat(40);

    // rustls-native-certs reads the roots from SSL_CERT_FILE when it is set.
    let mut trusting = env.clone();
    trusting.push(("SSL_CERT_FILE".to_owned(), cert.display().to_string()));
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&trusting), "info").await;
    let mut client = invoker.client().await;
    let payload = br#"{"httpMethod":"GET","path":"/over/https"}"#;
    let reply = client
        .invoke(invoke_request(
            "main",
            &echo,
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .unwrap_or_else(|s| panic!("invoke over HTTPS: {s:?}\n{}", invoker.logs()))
        .into_inner();
    assert_eq!(reply.status_code, 200);
    // moto (without docker) answers with the event it received.
    assert_eq!(reply.payload, payload.to_vec());
    assert!(!reply.lambda_request_id.is_empty());

    // IAM is enforced over HTTPS too: the success above passed a real
    // signature check, and a wrong secret fails one.
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

    // Without SSL_CERT_FILE only the system's roots are trusted, and they
    // do not vouch for moto's certificate.
    let untrusting = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await;
    let status = untrusting
        .client()
        .await
        .invoke(invoke_request(
            "main",
            &echo,
            payload,
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("an untrusted certificate must be refused");
    let (code, kind, message) = failure(&status);
    assert_eq!(
        (code, kind.as_str()),
        (Code::Unavailable, "LAMBDA_UNAVAILABLE")
    );
    // "... (endpoint `main`): could not reach AWS: io error: client error
    // (Connect): TLS handshake failed: invalid peer certificate:
    // UnknownIssuer; check that the endpoint's TLS certificate is trusted ..."
    assert!(message.contains("endpoint `main`"), "{message}");
    assert!(message.contains("could not reach AWS"), "{message}");
    assert!(message.contains("TLS handshake failed"), "{message}");
    assert!(
        message.contains("invalid peer certificate: UnknownIssuer"),
        "{message}"
    );
    assert!(message.contains("SSL_CERT_FILE"), "{message}");
    for secret in [&key.secret_access_key, &key.access_key_id] {
        assert!(!message.contains(secret.as_str()), "a key in: {message}");
        assert!(
            !untrusting.logs().contains(secret.as_str()),
            "a key in the logs"
        );
    }
}
