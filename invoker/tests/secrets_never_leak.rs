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
                Err(status) => seen.push_str(&format!(
                    "{status:?} kind {}\n",
                    lambdagate_proto::error_kind(&status).as_str_name()
                )),
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

/// A secret key written inline, where `{env: NAME}` belongs.
const INLINE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const INLINE_KEY_ID: &str = "AKIAINLINEKEYID00042";
const INLINE_TOKEN: &str = "IQoJb3JpZ2luX2VjEInlineSessionToken0043";

/// Configs with one secret field written inline each, and that field.
fn inline_secret_configs() -> Vec<(&'static str, String)> {
    let endpoint = |key_id: &str, secret: &str, token: &str| {
        format!(
            "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    endpoint_url: http://127.0.0.1:9\n    credentials:\n      access_key_id: {key_id}\n      secret_access_key: {secret}\n      session_token: {token}\n    allow: [\"arn:aws:lambda:us-east-1:123456789012:function:f\"]\n"
        )
    };
    let env = |name: &str| format!("{{env: {name}}}");
    vec![
        (
            "secret_access_key",
            endpoint(&env("K"), INLINE_SECRET, &env("T")),
        ),
        (
            "secret_access_key",
            endpoint(&env("K"), &format!("\"{INLINE_SECRET}\""), &env("T")),
        ),
        (
            "access_key_id",
            endpoint(INLINE_KEY_ID, &env("S"), &env("T")),
        ),
        (
            "session_token",
            endpoint(&env("K"), &env("S"), INLINE_TOKEN),
        ),
        // The secret where the variable's name belongs.
        (
            "secret_access_key",
            endpoint(
                &env("K"),
                &format!("{{env: \"{INLINE_SECRET}\"}}"),
                &env("T"),
            ),
        ),
    ]
}

fn assert_refused_without_the_secret(what: &str, field: &str, output: &str) {
    for secret in [INLINE_SECRET, INLINE_KEY_ID, INLINE_TOKEN] {
        assert!(
            !output.contains(secret),
            "{what}: the secret leaked:\n{output}"
        );
    }
    // Parts of it, as a quoted or split value would show them.
    assert!(!output.contains("bPxRfiCY"), "{what}:\n{output}");
    assert!(
        output.contains(&format!("credentials.{field}")),
        "{what}: the field is not named:\n{output}"
    );
    assert!(
        output.contains("{env: VARIABLE_NAME}")
            || output.contains("not an environment variable name"),
        "{what}: no advice on how to write it:\n{output}"
    );
}

#[tokio::test]
async fn inline_secrets_are_refused_without_echoing_them_by_check_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (field, yaml)) in inline_secret_configs().into_iter().enumerate() {
        let path = dir.path().join(format!("inline-{i}.yaml"));
        std::fs::write(&path, &yaml).unwrap();
        for args in [
            vec!["check"],
            vec![
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", lambdagate_harness::free_port()),
            ],
        ] {
            let out = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                tokio::process::Command::new(BIN)
                    .args(&args)
                    .arg("--config")
                    .arg(&path)
                    .env_clear()
                    .env("HOME", dir.path())
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("refused at once")
            .unwrap();
            let text = output_text(&out);
            let what = format!("{} on config {i}", args[0]);
            assert!(!out.status.success(), "{what}: accepted:\n{text}");
            assert!(
                text.contains(&path.display().to_string()),
                "{what}: the file is not named:\n{text}"
            );
            assert_refused_without_the_secret(&what, field, &text);
        }
    }
}

#[tokio::test]
async fn inline_secrets_in_an_api_definition_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.yaml");
    std::fs::write(
        &api,
        format!(
            "name: users\nversion: v1\ncontext: /users\nendpoint:\n  name: orders\n  access_method: stored\n  region: us-east-1\n  credentials:\n    access_key_id: {{env: K}}\n    secret_access_key: {INLINE_SECRET}\nresources:\n  - verb: GET\n    uri_template: /user/{{id}}\n    arn: arn:aws:lambda:us-east-1:123456789012:function:get-user\n"
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .arg("render")
        .arg(&api)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env_clear()
        .env("HOME", dir.path())
        .output()
        .await
        .unwrap();
    let text = output_text(&out);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert!(text.contains(&api.display().to_string()), "{text}");
    assert_refused_without_the_secret("render", "secret_access_key", &text);
    assert!(
        text.contains("endpoint.credentials.secret_access_key"),
        "{text}"
    );
}

async fn wait_for_refusals(invoker: &InvokerProcess, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while invoker.logs().matches("config reload refused").count() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "waiting for {count} refused reloads:\n{}",
            invoker.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn inline_secrets_in_a_reloaded_config_are_refused_without_echoing_them() {
    use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", std::time::Duration::ZERO)).await;
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:f";
    let good = config(&[stored_endpoint("main", &lambda.url, &[arn], "")]);
    let env = vec![
        ("MAIN_KEY_ID".to_owned(), "AKIAEXAMPLEEXAMPLE01".to_owned()),
        ("MAIN_SECRET".to_owned(), "reload-test-secret".to_owned()),
    ];
    let invoker = InvokerProcess::start(BIN, &good, &env_refs(&env), "debug").await;
    for (round, (field, yaml)) in inline_secret_configs().into_iter().enumerate() {
        let tmp = invoker.config_path.with_extension("tmp");
        std::fs::write(&tmp, &yaml).unwrap();
        std::fs::rename(&tmp, &invoker.config_path).unwrap();
        // Both ways a reload starts: the file watch, then SIGHUP (which
        // reloads the unchanged file).
        wait_for_refusals(&invoker, 2 * round + 1).await;
        let status = std::process::Command::new("kill")
            .args(["-HUP", &invoker.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_for_refusals(&invoker, 2 * round + 2).await;
        let logs = invoker.logs();
        for line in logs.lines().filter(|l| l.contains("config reload refused")) {
            assert_refused_without_the_secret(&format!("reload {round}"), "", line);
        }
        let last = logs
            .lines()
            .rev()
            .find(|l| l.contains("config reload refused"))
            .unwrap();
        assert_refused_without_the_secret(&format!("reload {round}"), field, last);
        assert!(
            last.contains(&invoker.config_path.display().to_string()),
            "{last}"
        );
        assert!(!logs.contains("bPxRfiCY"), "{logs}");
    }
    let metrics = invoker.metrics().await;
    for secret in [INLINE_SECRET, INLINE_KEY_ID, INLINE_TOKEN] {
        assert!(!metrics.contains(secret));
    }
}

/// A secret written as a YAML key, and a password in `endpoint_url`: the
/// error's field path and message repeat neither.
#[tokio::test]
async fn secrets_as_keys_or_in_urls_are_refused_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = |credentials: &str, url: &str| {
        format!(
            "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    endpoint_url: {url}\n    credentials: {credentials}\n    allow: [\"arn:aws:lambda:us-east-1:123456789012:function:f\"]\n"
        )
    };
    let refs = "{access_key_id: {env: K}, secret_access_key: {env: S}}";
    let cases = [
        (
            "credentials",
            endpoint(
                &format!("{{{INLINE_KEY_ID}: {INLINE_SECRET}}}"),
                "http://127.0.0.1:9",
            ),
        ),
        (
            "credentials.access_key_id",
            endpoint(
                &format!(
                    "{{access_key_id: {{{INLINE_SECRET}: x}}, secret_access_key: {{env: S}}}}"
                ),
                "http://127.0.0.1:9",
            ),
        ),
        (
            "endpoint_url",
            endpoint(refs, &format!("https://gw:{INLINE_SECRET}@127.0.0.1:9")),
        ),
        (
            "endpoint_url",
            endpoint(refs, &format!("ftp://gw:{INLINE_SECRET}@127.0.0.1:9")),
        ),
    ];
    for (i, (field, yaml)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("keyed-{i}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let out = tokio::process::Command::new(BIN)
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .await
            .unwrap();
        let text = output_text(&out);
        assert!(!out.status.success(), "case {i}: accepted:\n{text}");
        for secret in [INLINE_SECRET, INLINE_KEY_ID, "bPxRfiCY"] {
            assert!(!text.contains(secret), "case {i}: leaked:\n{text}");
        }
        assert!(text.contains(field), "case {i}: {field} not named:\n{text}");
    }
}
