//! Secrets never appear in logs, errors or metrics: every path that handles
//! credentials is exercised with distinctive values at debug log level, and
//! every byte the invoker and the CLI produce is searched for them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use common::*;
use lambdagate_harness::{InvokerProcess, Moto, MotoOptions, invoke_request};
use lambdagate_proto::InvocationType;

const WRONG_SECRET: &str = "LEAKCHECKwrongSecret0000000000000000000001";
const BOGUS_TOKEN: &str = "LEAKCHECKsessionToken000000000000000000002";

#[tokio::test]
async fn secrets_appear_in_no_log_line_error_or_metric() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let cross_echo = moto.fixture.function("cross-echo").to_owned();
    let role = moto.fixture.role("cross").to_owned();
    let token_endpoint = format!(
        "  token:\n    access_method: stored\n    region: us-east-1\n    endpoint_url: {}\n    credentials:\n      access_key_id: {{env: TOKEN_KEY_ID}}\n      secret_access_key: {{env: TOKEN_SECRET}}\n      session_token: {{env: TOKEN_SESSION}}\n    allow: [\"{echo}\"]\n",
        moto.url
    );
    let yaml = config(&[
        stored_endpoint("good", &moto.url, &[&echo], ""),
        stored_endpoint("wrong", &moto.url, &[&echo], ""),
        stored_endpoint(
            "cross",
            &moto.url,
            &[&cross_echo],
            &format!("    assume_role:\n      role_arn: {role}\n"),
        ),
        token_endpoint,
    ]);
    let invoker_key = moto.fixture.user("invoker");
    let assumer_key = moto.fixture.user("assumer");
    let mut env = key_env("good", invoker_key);
    let mut wrong = key_env("wrong", invoker_key);
    wrong[1].1 = WRONG_SECRET.to_owned();
    env.extend(wrong);
    env.extend(key_env("cross", assumer_key));
    env.extend(key_env("token", invoker_key));
    env.push(("TOKEN_SESSION".to_owned(), BOGUS_TOKEN.to_owned()));
    let secrets = [
        invoker_key.secret_access_key.as_str(),
        assumer_key.secret_access_key.as_str(),
        WRONG_SECRET,
        BOGUS_TOKEN,
    ];

    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env), "debug").await;
    let mut client = invoker.client().await;
    let mut seen = String::new();
    for (endpoint, arn) in [
        ("good", &echo),
        ("wrong", &echo),
        ("cross", &cross_echo),
        ("token", &echo),
    ] {
        for _ in 0..2 {
            match client
                .invoke(invoke_request(
                    endpoint,
                    arn,
                    b"{}",
                    5000,
                    InvocationType::RequestResponse,
                ))
                .await
            {
                Ok(reply) => seen.push_str(&format!("{:?}\n", reply.into_inner())),
                Err(status) => seen.push_str(&format!("{status:?}\n")),
            }
        }
    }
    assert!(
        seen.contains("SignatureDoesNotMatch"),
        "the wrong secret was exercised: {seen}"
    );
    assert!(seen.contains("ACCESS_DENIED"), "{seen}");
    seen.push_str(&invoker.metrics().await);
    let logs = invoker.logs();
    assert!(logs.contains("DEBUG"), "debug logging was on");
    seen.push_str(&logs);

    for args in [
        vec!["check", "--live"],
        vec!["functions", "--endpoint", "good"],
    ] {
        let out = tokio::process::Command::new(BIN)
            .args(&args)
            .arg("--config")
            .arg(&invoker.config_path)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("LAMBDAGATE_LOG", "debug")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .await
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
    }

    for secret in secrets {
        assert!(!secret.is_empty());
        if let Some(at) = seen.find(secret) {
            let start = at.saturating_sub(200);
            panic!(
                "a secret leaked (shown masked): ...{}...",
                seen[start..at].to_owned() + "<SECRET>"
            );
        }
    }
}
