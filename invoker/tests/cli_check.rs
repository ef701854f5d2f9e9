//! `lambdagate check` and `lambdagate functions`, as an operator runs them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use common::*;
use lambdagate_harness::{Moto, MotoOptions};

async fn run(args: &[&str], config: &str, env: &[(String, String)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoker.yaml");
    std::fs::write(&path, config).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&path)
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).replace(&path.display().to_string(), "invoker.yaml"),
        String::from_utf8_lossy(&out.stderr).replace(&path.display().to_string(), "invoker.yaml"),
    )
}

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

/// Each broken config, the text the error must contain (field + advice).
const BROKEN: &[(&str, &str, &[&str])] = &[
    (
        "stored without credentials",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.credentials: required with access_method `stored`",
            "{env: VARIABLE} or {file: PATH}",
        ],
    ),
    (
        "stored without a secret",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials:\n      access_key_id: {env: K}\n    allow: [\"ARN\"]\n",
        &["endpoints.main.credentials.secret_access_key: required"],
    ),
    (
        "both key sources",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials:\n      access_key_id: {env: K, file: /k}\n      secret_access_key: {env: S}\n    allow: [\"ARN\"]\n",
        &["endpoints.main.credentials.access_key_id: set exactly one of `env` or `file`, not both"],
    ),
    (
        "neither key source",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials:\n      access_key_id: {}\n      secret_access_key: {env: S}\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.credentials.access_key_id: set exactly one of `env: VARIABLE_NAME` or `file: /path/to/file`",
        ],
    ),
    (
        "role with stored keys",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    credentials:\n      access_key_id: {env: K}\n      secret_access_key: {env: S}\n    allow: [\"ARN\"]\n",
        &["endpoints.main.credentials: not allowed with access_method `role`"],
    ),
    (
        "unknown access method",
        "endpoints:\n  main:\n    access_method: iam\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.access_method",
            "unknown variant `iam`",
            "`role`",
            "`stored`",
        ],
    ),
    (
        "malformed role ARN",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    assume_role:\n      role_arn: arn:aws:iam::123:user/x\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.assume_role.role_arn: `arn:aws:iam::123:user/x` is not an IAM role ARN: expected arn:aws:iam::<12-digit account>:role/<name>",
        ],
    ),
    (
        "session duration out of range",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    assume_role:\n      role_arn: arn:aws:iam::222222222222:role/x\n      duration_seconds: 60\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.assume_role.duration_seconds: 60 is out of range: STS sessions last 900 to 43200 seconds",
        ],
    ),
    (
        "bad session name",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    assume_role:\n      role_arn: arn:aws:iam::222222222222:role/x\n      session_name: \"has space\"\n    allow: [\"ARN\"]\n",
        &["endpoints.main.assume_role.session_name: 2-64 characters"],
    ),
    (
        "unknown field",
        "endpoints:\n  main:\n    acess_method: role\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main",
            "unknown field `acess_method`",
            "expected one of",
        ],
    ),
    (
        "bad region",
        "endpoints:\n  main:\n    access_method: role\n    region: virginia\n    allow: [\"ARN\"]\n",
        &["endpoints.main.region: `virginia` is not an AWS region name such as us-east-1"],
    ),
    (
        "unknown default endpoint",
        "default_endpoint: prod\nendpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &["default_endpoint: endpoint `prod` is not defined under `endpoints` (defined: main)"],
    ),
    (
        "non-loopback listen",
        "listen: 0.0.0.0:50051\nendpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &[
            "listen: `0.0.0.0:50051` is not a loopback address",
            "allow_non_loopback: true",
        ],
    ),
    (
        "listen is not an address",
        "listen: localhost\nendpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    allow: [\"ARN\"]\n",
        &["listen: `localhost` is not an IP address and port"],
    ),
    (
        "empty allow list",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n",
        &["endpoints.main.allow: list the function ARNs this endpoint may invoke"],
    ),
    (
        "malformed ARN in allow list",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    allow:\n      - \"ARN\"\n      - arn:aws:lambda:us-east-1:123456789012:function:bad.name\n",
        &[
            "endpoints.main.allow[1]: `arn:aws:lambda:us-east-1:123456789012:function:bad.name` is not a valid Lambda function ARN",
            "function name `bad.name`",
        ],
    ),
    (
        "endpoint URL without scheme",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    endpoint_url: 127.0.0.1:5000\n    allow: [\"ARN\"]\n",
        &["endpoints.main.endpoint_url: `127.0.0.1:5000` is not an http:// or https:// URL"],
    ),
    (
        "no endpoints",
        "listen: 127.0.0.1:50051\n",
        &["endpoints: at least one endpoint is required"],
    ),
    (
        "YAML syntax error",
        "endpoints:\n  main: [unclosed\n",
        &["invoker.yaml:", "line"],
    ),
    (
        "secret env var not set",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials:\n      access_key_id: {env: LAMBDAGATE_TEST_KEY_ID}\n      secret_access_key: {env: LAMBDAGATE_TEST_UNSET_SECRET}\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.credentials.secret_access_key: environment variable `LAMBDAGATE_TEST_UNSET_SECRET` is not set",
        ],
    ),
    (
        "secret file missing",
        "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials:\n      access_key_id: {env: LAMBDAGATE_TEST_KEY_ID}\n      secret_access_key: {file: /nonexistent/lambdagate/secret}\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.credentials.secret_access_key: cannot read file `/nonexistent/lambdagate/secret`",
        ],
    ),
    (
        "plain http to a host that is not loopback",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    endpoint_url: http://10.1.2.3:4566/lambda\n    allow: [\"ARN\"]\n",
        &[
            "endpoints.main.endpoint_url: `http://10.1.2.3:4566/lambda` is plain http:// to a host that is not loopback",
            "`allow_insecure_http: true`",
        ],
    ),
    (
        "plain http to a host name",
        "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    endpoint_url: http://lambda-proxy.internal\n    allow: [\"ARN\"]\n",
        &["endpoints.main.endpoint_url: `http://lambda-proxy.internal` is plain http://"],
    ),
];

#[tokio::test]
async fn plain_http_is_allowed_to_loopback_or_when_told() {
    for (url, extra) in [
        ("http://127.0.0.1:4566", ""),
        ("http://127.9.9.9:4566/lambda-proxy", ""),
        ("http://localhost:4566", ""),
        ("http://[::1]:4566", ""),
        ("https://10.1.2.3:4566", ""),
        ("http://10.1.2.3:4566", "    allow_insecure_http: true\n"),
    ] {
        let yaml = format!(
            "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    endpoint_url: {url}\n{extra}    allow: [\"{ARN}\"]\n"
        );
        let (ok, stdout, stderr) = run(&["check"], &yaml, &[]).await;
        assert!(ok, "{url}: {stdout}{stderr}");
    }
}

#[tokio::test]
async fn check_rejects_each_broken_config_naming_the_field() {
    let env = vec![(
        "LAMBDAGATE_TEST_KEY_ID".to_owned(),
        "AKIAEXAMPLEEXAMPLE01".to_owned(),
    )];
    assert!(BROKEN.len() >= 10);
    for (what, yaml, expected) in BROKEN {
        let yaml = yaml.replace("ARN", ARN);
        let (ok, stdout, stderr) = run(&["check"], &yaml, &env).await;
        assert!(!ok, "{what}: accepted\n{stdout}");
        assert!(
            stderr.starts_with("error: invoker.yaml: "),
            "{what}: {stderr}"
        );
        for text in *expected {
            assert!(
                stderr.contains(text),
                "{what}: expected {text:?} in:\n{stderr}"
            );
        }
        // serve refuses the same file with the same words.
        let (ok, _, serve_err) = run(&["serve"], &yaml, &env).await;
        assert!(!ok, "{what}: serve accepted it");
        assert_eq!(serve_err.lines().last(), stderr.lines().last(), "{what}");
    }
}

#[tokio::test]
async fn check_accepts_a_good_config_offline() {
    let yaml = format!(
        "endpoints:\n  main:\n    access_method: stored\n    region: eu-west-1\n    credentials:\n      access_key_id: {{env: K}}\n      secret_access_key: {{env: S}}\n    assume_role:\n      role_arn: arn:aws:iam::222222222222:role/invoke\n      external_id: shared-ext-id\n    allow: [\"{ARN}\"]\n  instance:\n    access_method: role\n    region: us-east-1\n    allow: [\"{ARN}\"]\n"
    );
    let env = vec![
        ("K".to_owned(), "AKIAEXAMPLEEXAMPLE01".to_owned()),
        ("S".to_owned(), "s3cr3t".to_owned()),
    ];
    let (ok, stdout, stderr) = run(&["check"], &yaml, &env).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("invoker.yaml: config OK (2 endpoint(s))"),
        "{stdout}"
    );
    assert!(stdout.contains("endpoint main: access method stored, region eu-west-1, assumes arn:aws:iam::222222222222:role/invoke (session lambdagate, STS region eu-west-1)"), "{stdout}");
    assert!(
        stdout.contains("endpoint instance: access method role, region us-east-1"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_example_config_passes_check() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "example-secret\n").unwrap();
    let example =
        std::fs::read_to_string(lambdagate_harness::repo_root().join("examples/invoker.yaml"))
            .unwrap()
            .replace(
                "/run/secrets/lambdagate-orders-secret",
                &secret.display().to_string(),
            );
    let env = vec![(
        "LAMBDAGATE_ORDERS_KEY_ID".to_owned(),
        "AKIAEXAMPLEEXAMPLE01".to_owned(),
    )];
    let (ok, stdout, stderr) = run(&["check"], &example, &env).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("config OK (2 endpoint(s))"), "{stdout}");
    assert!(stdout.contains("endpoint partner: access method role, region eu-west-1, assumes arn:aws:iam::222222222222:role/lambdagate-invoke"), "{stdout}");
}

#[tokio::test]
async fn check_live_and_functions_against_moto() {
    // IAM checks stay off here: moto refuses correctly signed requests with
    // an empty body (GetFunction, ListFunctions) when they are on.
    let moto = Moto::start(MotoOptions::default()).await;
    let echo = moto.fixture.function("echo").to_owned();
    let cross_echo = moto.fixture.function("cross-echo").to_owned();
    let missing = "arn:aws:lambda:us-east-1:123456789012:function:missing";
    let role = moto.fixture.role("cross").to_owned();
    let yaml = config(&[
        stored_endpoint("main", &moto.url, &[&echo], ""),
        stored_endpoint(
            "cross",
            &moto.url,
            &[&cross_echo],
            &format!("    assume_role:\n      role_arn: {role}\n"),
        ),
    ]);
    let mut env = key_env("main", moto.fixture.user("invoker"));
    env.extend(key_env("cross", moto.fixture.user("assumer")));
    let (ok, stdout, stderr) = run(&["check", "--live"], &yaml, &env).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("endpoint main: credentials OK: arn:aws:iam::123456789012:user/invoker (account 123456789012)"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "endpoint main: function {echo}: OK (python3.12, last modified"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("endpoint cross: credentials OK: arn:aws:iam::123456789012:user/assumer"),
        "{stdout}"
    );
    assert!(stdout.contains("endpoint cross: assume role OK: arn:aws:sts::222222222222:assumed-role/cross-invoke/lambdagate (account 222222222222)"), "{stdout}");
    assert!(
        stdout.contains(&format!("endpoint cross: function {cross_echo}: OK")),
        "{stdout}"
    );
    assert!(!stdout.contains("WARNING"), "{stdout}");

    let yaml_missing = config(&[stored_endpoint("main", &moto.url, &[&echo, missing], "")]);
    let (ok, stdout, _) = run(&["check", "--live"], &yaml_missing, &env).await;
    assert!(!ok);
    assert!(
        stdout.contains(&format!(
            "endpoint main: function {missing}: FAILED: FUNCTION_NOT_FOUND"
        )),
        "{stdout}"
    );

    let (ok, stdout, stderr) = run(&["functions", "--endpoint", "main"], &yaml, &env).await;
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME")
            && lines[0].contains("RUNTIME")
            && lines[0].contains("ALLOWED"),
        "{stdout}"
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("echo "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        row.contains("python3.12") && row.contains(" yes ") && row.ends_with(&echo),
        "{row}"
    );
    assert!(
        !stdout.contains("cross-echo"),
        "another account's function is not visible: {stdout}"
    );

    // Through the assumed role, the other account's functions are listed.
    let (ok, stdout, stderr) = run(&["functions", "--endpoint", "cross"], &yaml, &env).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("cross-echo ") && l.ends_with(&cross_echo)),
        "{stdout}"
    );

    let (ok, _, stderr) = run(&["functions", "--endpoint", "nope"], &yaml, &env).await;
    assert!(!ok);
    assert!(
        stderr.contains("--endpoint: `nope` is not defined in invoker.yaml (defined: cross, main)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn check_live_reports_refused_credentials_per_endpoint() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let echo = moto.fixture.function("echo").to_owned();
    let role = moto.fixture.role("cross").to_owned();
    let yaml = config(&[
        stored_endpoint("main", &moto.url, &[&echo], ""),
        // invoker may not assume the cross-account role (only assumer may).
        stored_endpoint(
            "cross",
            &moto.url,
            &["arn:aws:lambda:us-east-1:222222222222:function:*"],
            &format!("    assume_role:\n      role_arn: {role}\n"),
        ),
    ]);
    let mut env = key_env("main", moto.fixture.user("invoker"));
    env[1].1 = "y".repeat(40);
    env.extend(key_env("cross", moto.fixture.user("invoker")));
    let (ok, stdout, stderr) = run(&["check", "--live"], &yaml, &env).await;
    assert!(!ok, "{stdout}");
    assert!(stderr.contains("live check failed"), "{stderr}");
    assert!(
        stdout.contains("endpoint main: credentials FAILED: ACCESS_DENIED: STS GetCallerIdentity (endpoint `main`): SignatureDoesNotMatch"),
        "{stdout}"
    );
    assert!(
        stdout.contains("endpoint cross: credentials OK: arn:aws:iam::123456789012:user/invoker"),
        "{stdout}"
    );
    assert!(
        stdout.contains("endpoint cross: assume role FAILED:"),
        "{stdout}"
    );
    assert!(stdout.contains(&role), "{stdout}");
}

#[tokio::test]
async fn check_live_warns_loudly_about_root_user_keys() {
    // moto has no root user, so an STS stand-in answers GetCallerIdentity
    // with the identity AWS reports for an account's root keys.
    use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
    let sts = LambdaStandIn::start(CannedReply {
        status: 200,
        headers: vec![("content-type".into(), "text/xml".into())],
        body: b"<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:root</Arn><UserId>123456789012</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>".to_vec(),
        delay: std::time::Duration::ZERO,
    })
    .await;
    let yaml = config(&[stored_endpoint(
        "main",
        &sts.url,
        &["arn:aws:lambda:us-east-1:123456789012:function:*"],
        "",
    )]);
    let env = vec![
        ("MAIN_KEY_ID".to_owned(), "AKIAROOTEXAMPLE00001".to_owned()),
        ("MAIN_SECRET".to_owned(), "root-secret".to_owned()),
    ];
    let (ok, stdout, stderr) = run(&["check", "--live"], &yaml, &env).await;
    assert!(ok, "a warning does not fail the check: {stdout}{stderr}");
    assert!(
        stdout.contains("WARNING: endpoint main uses the AWS account ROOT user's credentials (arn:aws:iam::123456789012:root)"),
        "{stdout}"
    );
    assert!(stdout.contains("create an IAM user or role"), "{stdout}");
    assert_eq!(sts.request_count(), 1);
}
