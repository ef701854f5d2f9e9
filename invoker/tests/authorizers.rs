//! Lambda authorizers through real Envoy: a real authorizer function
//! (Powertools for AWS Lambda's authorizer event classes and response
//! builders, on the official Python runtime client, run by the invoker's
//! `local` access method) guards a real integration function. Each row of
//! the decision table is checked by status, body and the invocations
//! counted at the function side (each function appends a line to its own
//! log per invocation).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use lambdagate_harness::{EnvoyProcess, InvokerAddress, InvokerProcess, repo_root, venv};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");
const REGION: &str = "us-east-1";

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:000000000000:function:{name}")
}

fn function(name: &str, handler: &str, log: &Path, simple: bool) -> String {
    format!(
        "    - name: {name}\n      command: [\"{python}\", -m, awslambdaric, \"{handler}\"]\n      working_dir: \"{dir}\"\n      environment: {{PYTHONUNBUFFERED: \"1\", INVOCATION_LOG: \"{log}\", SIMPLE_RESPONSES: \"{simple}\"}}\n",
        python = venv().join("bin/python").display(),
        dir = repo_root()
            .join("tests/functions/powertools-authorizer")
            .display(),
        log = log.display(),
        simple = u8::from(simple),
    )
}

struct Stack {
    envoy: EnvoyProcess,
    _invoker: InvokerProcess,
    authorizer_log: PathBuf,
    integration_log: PathBuf,
    _dir: tempfile::TempDir,
}

/// Invocations so far, counted where they ran.
fn count(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |text| text.lines().count())
}

impl Stack {
    async fn start() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let authorizer_log = dir.path().join("authorizer.log");
        let integration_log = dir.path().join("integration.log");
        let functions = [
            function("authorizer", "app.handler", &authorizer_log, false),
            function("authorizer-simple", "app.handler", &authorizer_log, true),
            function("integration", "app.integration", &integration_log, false),
        ];
        let config = format!(
            "endpoints:\n  local:\n    access_method: local\n    region: {REGION}\n    functions:\n{}",
            functions.concat()
        );
        let invoker = InvokerProcess::start(BIN, &config, &[], "info").await;
        let target = arn("integration");
        let filter = json!({"apis": [
            {"name": "rest", "version": "v1", "context": "/rest", "endpoint": "local",
             "payload_format": "v1", "authorizer": "tokens",
             "authorizers": [
                {"name": "tokens", "type": "token", "arn": arn("authorizer"),
                 "validation_expression": "Bearer [a-z]+", "timeout_seconds": 1},
                {"name": "keys", "type": "request", "arn": arn("authorizer"),
                 "identity_source": ["method.request.header.x-token"], "ttl_seconds": 0}],
             "resources": [
                {"verb": "GET", "uri_template": "/items/{id}", "arn": target},
                {"verb": "POST", "uri_template": "/items/{id}", "arn": target, "authorizer": "keys"},
                {"verb": "GET", "uri_template": "/open", "arn": target, "authorizer": "none"}]},
            {"name": "http", "version": "v1", "context": "/http", "endpoint": "local",
             "payload_format": "v2", "authorizer": "simple",
             "authorizers": [
                {"name": "simple", "type": "request", "arn": arn("authorizer-simple"),
                 "identity_source": ["$request.header.Authorization"], "ttl_seconds": 2,
                 "simple_responses": true}],
             "resources": [{"verb": "ANY", "uri_template": "/items/{id}", "arn": target}]},
            {"name": "policy", "version": "v1", "context": "/policy", "endpoint": "local",
             "payload_format": "v2", "authorizer": "policy",
             "authorizers": [
                {"name": "policy", "type": "request", "arn": arn("authorizer"),
                 "identity_source": ["$request.header.Authorization"], "timeout_seconds": 1}],
             "resources": [{"verb": "GET", "uri_template": "/items/{id}", "arn": target}]},
        ]});
        let envoy =
            EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
        Stack {
            envoy,
            _invoker: invoker,
            authorizer_log,
            integration_log,
            _dir: dir,
        }
    }

    /// Sends a request; returns status, JSON body, and how many authorizer
    /// and integration invocations it caused.
    async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Value, usize, usize) {
        let (a, i) = (count(&self.authorizer_log), count(&self.integration_log));
        let r = self.envoy.send(method, path, headers, body).await;
        let json = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {}", r.text()));
        (
            r.status,
            json,
            count(&self.authorizer_log) - a,
            count(&self.integration_log) - i,
        )
    }
}

/// The rows both payload versions share: each word the authorizer reads,
/// the status and message the client gets, and the invocations counted at
/// the function side. `v2`: an HTTP API (its 403 says Forbidden, its
/// context may hold objects).
async fn shared_rows(s: &Stack, get: impl AsyncFn(&str) -> (u16, Value, usize, usize), v2: bool) {
    let denied = if v2 {
        json!("Forbidden")
    } else {
        json!("User is not authorized to access this resource")
    };
    let internal = json!("Internal server error");
    let ok = json!(null);
    for (word, want_status, want_message, want_auths) in [
        ("deny", 403, &denied, 1),
        ("mixed", 403, &denied, 1),
        ("other", 403, &denied, 1),
        ("unauthorized", 401, &json!("Unauthorized"), 1),
        ("throw", 500, &internal, 1),
        ("garbage", 500, &internal, 1),
        ("slow", 500, &internal, 1),
        (
            "nested",
            if v2 { 200 } else { 500 },
            if v2 { &ok } else { &internal },
            1,
        ),
        ("big", 500, &internal, 1),
    ] {
        let (status, body, auths, calls) = get(word).await;
        assert_eq!(
            (status, &body["message"], auths, calls),
            (
                want_status,
                want_message,
                want_auths,
                usize::from(status == 200)
            ),
            "{word}: {body}\n{}",
            s.envoy.logs()
        );
        if status == 200 {
            // An HTTP API's context keeps its objects.
            assert_eq!(body["authorizer"], json!({"lambda": {"user": {"id": 7}}}));
            continue;
        }
        assert!(body["requestId"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(!body.to_string().contains("broke"), "{word}: {body}");
    }
    // A denial is cached too: the same identity is refused without a call.
    let (status, _, auths, _) = get("deny").await;
    assert_eq!((status, auths), (403, 0));
}

#[tokio::test]
async fn the_decision_table_through_envoy_for_an_http_api() {
    let s = Stack::start().await;
    let get = async |word: &str| {
        s.call("GET", "/policy/items/1", &[("authorization", word)], b"")
            .await
    };
    let (status, body, auths, calls) = get("allow").await;
    assert_eq!((status, auths, calls), (200, 1, 1), "{body}");
    // Typed, under `lambda`.
    assert_eq!(
        body["authorizer"],
        json!({"lambda": {"tier": "gold", "level": 3, "vip": true}})
    );
    let (status, _, auths, _) = get("allow").await;
    assert_eq!((status, auths), (200, 0));
    shared_rows(&s, get, true).await;
    let (status, body, auths, _) = s.call("GET", "/policy/items/1", &[], b"").await;
    assert_eq!(
        (status, auths, &body["message"]),
        (401, 0, &json!("Unauthorized"))
    );
}

impl Stack {
    /// A GET of the REST API's token-guarded resource with `Bearer <word>`.
    async fn get(&self, word: &str) -> (u16, Value, usize, usize) {
        let token = format!("Bearer {word}");
        self.call("GET", "/rest/items/1", &[("authorization", &token)], b"")
            .await
    }
}

#[tokio::test]
async fn the_decision_table_through_envoy_for_a_rest_api() {
    let s = Stack::start().await;

    // Allowed: the integration sees the principal and the context, every
    // value as text (a REST API's).
    let (status, body, auths, calls) = s.get("allow").await;
    assert_eq!((status, auths, calls), (200, 1, 1), "{body}");
    assert_eq!(
        body["authorizer"],
        json!({"principalId": "user-allow", "tier": "gold", "level": "3", "vip": "true"})
    );
    // The same token again: the cached policy decides, no invocation.
    let (status, _, auths, calls) = s.get("allow").await;
    assert_eq!((status, auths, calls), (200, 0, 1));

    shared_rows(&s, async |word: &str| s.get(word).await, false).await;

    let before_huge = count(&s.authorizer_log);
    // No token, or one that fails the validation expression: 401, and
    // the authorizer is never invoked.
    for headers in [vec![], vec![("authorization", "Basic YWxpY2U6cw==")]] {
        let (status, body, auths, calls) = s.call("GET", "/rest/items/1", &headers, b"").await;
        assert_eq!((status, auths, calls), (401, 0, 0), "{body}");
        assert_eq!(body["message"], "Unauthorized");
    }
    // A 60 KB token: refused, the authorizer never sees it.
    let huge = format!("Bearer {}", "a".repeat(60 * 1024));
    let r = s
        .envoy
        .send("GET", "/rest/items/1", &[("authorization", &huge)], b"")
        .await;
    assert!(matches!(r.status, 401 | 431), "{} {}", r.status, r.text());
    assert_eq!(count(&s.authorizer_log), before_huge);
    // An open resource of a guarded API.
    let (status, _, auths, calls) = s.call("GET", "/rest/open", &[], b"").await;
    assert_eq!((status, auths, calls), (200, 0, 1));

    // A REQUEST authorizer with TTL 0 is invoked every time; the body
    // waits for its answer and reaches the integration whole.
    let body = vec![b'x'; 200_000];
    for _ in 0..2 {
        let (status, answer, auths, calls) = s
            .call("POST", "/rest/items/1", &[("x-token", "allow")], &body)
            .await;
        assert_eq!((status, auths, calls), (200, 1, 1), "{answer}");
        assert_eq!(answer["body"].as_str().map(str::len), Some(body.len()));
    }
    let (status, _, auths, calls) = s
        .call("POST", "/rest/items/1", &[("x-token", "deny")], &body)
        .await;
    assert_eq!((status, auths, calls), (403, 1, 0));

    // The access log names each outcome; the token is not in Envoy's log.
    let logs = s.envoy.logs();
    for outcome in [
        "outcome=unauthorized",
        "outcome=forbidden",
        "outcome=authorizer_failure",
    ] {
        assert!(logs.contains(outcome), "{outcome} missing:\n{logs}");
    }
    assert!(!logs.contains("YWxpY2U6cw=="), "a token reached the log");
}

#[tokio::test]
async fn an_http_apis_simple_responses_are_cached_for_their_ttl() {
    let s = Stack::start().await;
    let (status, body, auths, calls) = s
        .call("GET", "/http/items/1", &[("authorization", "allow")], b"")
        .await;
    assert_eq!((status, auths, calls), (200, 1, 1), "{body}");
    // An HTTP API's context stays typed, under `lambda`.
    assert_eq!(
        body["authorizer"],
        json!({"lambda": {"tier": "gold", "level": 3, "scopes": ["read", "write"]}})
    );
    // A simple response decides every route while cached.
    let (status, _, auths, _) = s
        .call(
            "POST",
            "/http/items/2",
            &[("authorization", "allow")],
            b"{}",
        )
        .await;
    assert_eq!((status, auths), (200, 0));
    // Past the TTL (2 s) it is asked again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _, auths, _) = s
        .call("GET", "/http/items/1", &[("authorization", "allow")], b"")
        .await;
    assert_eq!((status, auths), (200, 1));

    let (status, body, auths, calls) = s
        .call("GET", "/http/items/1", &[("authorization", "deny")], b"")
        .await;
    assert_eq!((status, auths, calls), (403, 1, 0));
    assert_eq!(body["message"], "Forbidden");
    let (status, body, auths, _) = s.call("GET", "/http/items/1", &[], b"").await;
    assert_eq!((status, auths), (401, 0));
    assert_eq!(body["message"], "Unauthorized");
}

/// `check --api` and `render` refuse a bad authorizer naming the file and
/// the field, and accept the example's; render allows the authorizers'
/// ARNs in the invoker's allow-list.
#[test]
fn check_and_render_name_the_file_and_field_of_a_bad_authorizer() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(repo_root().join("examples/api.yaml")).unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(BIN)
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    std::fs::write(dir.path().join("api.yaml"), &example).unwrap();
    let (ok, text) = run(&["check", "--api", "api.yaml"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["render", "--out", "out", "api.yaml"]);
    assert!(ok, "{text}");
    let invoker = std::fs::read_to_string(dir.path().join("out/invoker.yaml")).unwrap();
    for name in ["authorize", "authorize-tenant", "create-user"] {
        assert!(
            invoker.contains(&format!(
                "- arn:aws:lambda:us-east-1:123456789012:function:{name}\n"
            )),
            "{name} is not allowed:\n{invoker}"
        );
    }
    for (from, to, expected) in [
        (
            "ttl_seconds: 300 ",
            "ttl_seconds: 9000 ",
            "api.yaml: authorizers[0].ttl_seconds: 9000 is out of range: allowed 0 (no caching) to 3600 seconds",
        ),
        (
            "method.request.querystring.key]",
            "method.request.body.key]",
            "api.yaml: authorizers[1].identity_source[1]: `method.request.body.key` is not an identity source",
        ),
        (
            "authorizer: tenants ",
            "authorizer: tenant ",
            "no authorizer is named `tenant`; this API's authorizers: tokens, tenants",
        ),
        (
            "    type: token ",
            "    type: cognito ",
            "api.yaml: authorizers[0].type: unknown variant `cognito`, expected one of `token`, `request`, `jwt`",
        ),
    ] {
        assert!(example.contains(from), "{from}");
        std::fs::write(dir.path().join("api.yaml"), example.replacen(from, to, 1)).unwrap();
        for command in [
            &["check", "--api", "api.yaml"][..],
            &["render", "--out", "out2", "api.yaml"][..],
        ] {
            let (ok, text) = run(command);
            assert!(!ok && text.contains(expected), "{command:?} {to}:\n{text}");
        }
    }
}

/// An authorizer on the Rust runtime with `aws_lambda_events`' types
/// works unchanged: 200 with its token (its context reaches the function),
/// 401 with another (it fails with `Unauthorized`).
#[tokio::test]
async fn a_rust_authorizer_on_aws_lambda_events_types_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("integration.log");
    let config = format!(
        "endpoints:\n  local:\n    access_method: local\n    region: {REGION}\n    functions:\n    - name: authorizer-rust\n      command: [\"{}\"]\n{}",
        lambdagate_harness::authorizer_rust().display(),
        function("integration", "app.integration", &log, false)
    );
    let invoker = InvokerProcess::start(BIN, &config, &[], "info").await;
    let filter = json!({"apis": [
        {"name": "rust", "version": "v1", "context": "/rust", "endpoint": "local",
         "authorizer": "rust",
         "authorizers": [{"name": "rust", "type": "token", "arn": arn("authorizer-rust")}],
         "resources": [{"verb": "GET", "uri_template": "/items/{id}", "arn": arn("integration")}]}]});
    let envoy =
        EnvoyProcess::start(&InvokerAddress::parse(&invoker.addr), &filter.to_string()).await;
    let r = envoy
        .send(
            "GET",
            "/rust/items/1",
            &[("authorization", "Bearer rust-token")],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), invoker.logs());
    assert_eq!(
        r.json()["authorizer"],
        json!({"principalId": "rust-user", "runtime": "rust", "level": "2"})
    );
    let r = envoy
        .send(
            "GET",
            "/rust/items/1",
            &[("authorization", "Bearer other")],
            b"",
        )
        .await;
    assert_eq!(
        (r.status, r.json()["message"].clone()),
        (401, json!("Unauthorized"))
    );
    assert_eq!(count(&log), 1, "the integration ran once");
}
