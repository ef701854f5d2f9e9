//! What a client can and cannot make the gateway say, through the real
//! path: an API definition rendered by `lambdagate render`, real Envoy with
//! the compiled filter, the real invoker, and real Python function code on
//! `awslambdaric` (access method `local`).
//!
//! - Function errors reach the client as API Gateway's generic JSON; the
//!   detail goes to the invoker's log and the access log's outcome.
//! - `sourceIp` and the request id come from the connection and Envoy,
//!   never from the client's `X-Forwarded-For` / `x-request-id`; a function
//!   cannot forge `x-amzn-requestid`.
//! - A call longer than Envoy's stream idle timeout succeeds: render raises
//!   it above the longest route timeout.
//! - `render` works from any directory and refuses a filter that is not there.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::{EnvoyProcess, InvokerProcess, free_port, venv};
use serde_json::{Value, json};

const HANDLER: &str = r#"
import json, time

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    if "fail" in q:
        raise RuntimeError("db password=hunter2 at " + q["fail"])
    if "sleep" in q:
        time.sleep(float(q["sleep"]))
    return {
        "statusCode": 200,
        "headers": {"x-amzn-requestid": "forged-by-the-function"},
        "body": json.dumps(event),
    }
"#;

struct Ports {
    listen: u16,
    admin: u16,
    invoker: u16,
}

/// An API definition (`/trust`, v1 and v2 resources) served by the local
/// Python handler in `dir`; `gateway_extra` is added to its `gateway:`.
fn definition(dir: &Path, p: &Ports, api_extra: &str, gateway_extra: &str) -> String {
    format!(
        r#"name: trust
version: v1
context: /trust
{api_extra}endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
    - name: echo
      command: ["{python}", -m, awslambdaric, app.handler]
      working_dir: "{dir}"
      environment: {{PYTHONUNBUFFERED: "1"}}
resources:
  - verb: GET
    uri_template: /echo
    arn: arn:aws:lambda:us-east-1:000000000000:function:echo
    timeout_seconds: 5
gateway:
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  invoker: 127.0.0.1:{invoker}
{gateway_extra}"#,
        python = venv().join("bin/python").display(),
        dir = dir.display(),
        listen = p.listen,
        admin = p.admin,
        invoker = p.invoker,
    )
}

async fn lambdagate(args: &[&str], cwd: &Path) -> (bool, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .await
        .unwrap();
    (out.status.success(), output_text(&out))
}

struct Served {
    _dir: tempfile::TempDir,
    out: PathBuf,
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

/// Writes the handler and the definition, renders from a directory that is
/// not the repository (so the filter is found from the binary's location),
/// and starts the invoker and Envoy on what render wrote.
async fn serve(
    api_extra: &str,
    gateway_extra: &str,
    edit_bootstrap: fn(String) -> String,
) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), HANDLER).unwrap();
    let p = Ports {
        listen: free_port(),
        admin: free_port(),
        invoker: free_port(),
    };
    let api = dir.path().join("api.yaml");
    std::fs::write(&api, definition(dir.path(), &p, api_extra, gateway_extra)).unwrap();
    let out = dir.path().join("out");
    let (ok, output) = lambdagate(
        &["render", "api.yaml", "--out", out.to_str().unwrap()],
        dir.path(),
    )
    .await;
    assert!(ok, "render from {}: {output}", dir.path().display());
    let invoker_yaml = std::fs::read_to_string(out.join("invoker.yaml")).unwrap();
    let invoker = InvokerProcess::start_at(
        BIN,
        &invoker_yaml,
        &[],
        "info",
        &format!("127.0.0.1:{}", p.invoker),
    )
    .await;
    let bootstrap = edit_bootstrap(std::fs::read_to_string(out.join("envoy.yaml")).unwrap());
    let envoy = EnvoyProcess::start_bootstrap(&bootstrap, p.listen, p.admin).await;
    Served {
        _dir: dir,
        out,
        invoker,
        envoy,
    }
}

fn unchanged(bootstrap: String) -> String {
    bootstrap
}

#[tokio::test]
async fn function_errors_reach_the_client_as_generic_json() {
    let s = serve("", "", unchanged).await;
    let r = s
        .envoy
        .send("GET", "/trust/echo?fail=/var/task/app.py", &[], b"")
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    // API Gateway's answer, with the gateway's request id and nothing else.
    assert_eq!(
        r.json(),
        json!({"message": "Internal server error", "requestId": r.request_id()})
    );
    for leak in ["password", "RuntimeError", "Traceback", "app.py", "arn:aws"] {
        assert!(!r.text().contains(leak), "{leak} in {}", r.text());
    }
    // The detail is in the invoker's log, by request id.
    let id = r.request_id().to_owned();
    wait_for(|| {
        let logs = s.invoker.logs();
        logs.contains("db password=hunter2") && logs.contains(&id)
    })
    .await
    .unwrap_or_else(|| panic!("no detail in the invoker log:\n{}", s.invoker.logs()));

    // Opting in shows it (as the demo does).
    let s = serve("expose_errors: true\n", "", unchanged).await;
    let r = s.envoy.send("GET", "/trust/echo?fail=x", &[], b"").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.json()["error"]["errorType"],
        "RuntimeError",
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn identity_comes_from_the_connection_not_the_client() {
    let s = serve("", "", unchanged).await;
    let spoofing = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-request-id", "attacker-chosen"),
        ("x-envoy-internal", "true"),
    ];
    let r = s.envoy.send("GET", "/trust/echo", &spoofing, b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let event: Value = r.json();
    let ctx = &event["requestContext"];
    assert_eq!(ctx["identity"]["sourceIp"], "127.0.0.1", "{event}");
    assert_ne!(ctx["requestId"], "attacker-chosen");
    assert_eq!(ctx["requestId"], r.request_id());
    // Lambda's request id, not the function's forgery.
    let lambda_id = r.header("x-amzn-requestid").unwrap();
    assert_ne!(lambda_id, "forged-by-the-function");
    assert_eq!(r.header_all("x-amzn-requestid").len(), 1);
    assert!(
        std::fs::read_to_string(s.out.join("envoy.yaml"))
            .unwrap()
            .contains("use_remote_address: true")
    );

    // Behind one trusted proxy (trusted_hops: 1), the client is the address
    // that proxy saw; anything a client put before it is not.
    let s = serve("", "  trusted_hops: 1\n", unchanged).await;
    let r = s
        .envoy
        .send(
            "GET",
            "/trust/echo",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.7")],
            b"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["requestContext"]["identity"]["sourceIp"],
        "203.0.113.7"
    );
}

/// Envoy's default stream idle timeout (300 s) would end any call longer
/// than that; the scaled-down setting here (2 s) shows the same: render
/// raises the timeout above the route's (5 s), so a 3 s call succeeds, and
/// the same bootstrap with Envoy's idle timeout left at 2 s fails it.
#[tokio::test]
async fn a_call_longer_than_envoys_idle_timeout_succeeds() {
    let gateway = "  idle_timeout_seconds: 2\n";
    let s = serve("", gateway, unchanged).await;
    let bootstrap = std::fs::read_to_string(s.out.join("envoy.yaml")).unwrap();
    assert!(
        bootstrap.contains("stream_idle_timeout: 15s"),
        "{bootstrap}"
    );
    let started = Instant::now();
    let r = s.envoy.send("GET", "/trust/echo?sleep=3", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() >= Duration::from_secs(3));

    // The control: Envoy's own idle timeout ends the same call.
    fn idle_2s(bootstrap: String) -> String {
        let edited = bootstrap.replace("stream_idle_timeout: 15s", "stream_idle_timeout: 2s");
        assert_ne!(edited, bootstrap);
        edited
    }
    let s = serve("", gateway, idle_2s).await;
    let started = Instant::now();
    let r = s.envoy.send("GET", "/trust/echo?sleep=3", &[], b"").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn render_and_check_refuse_a_filter_that_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports {
        listen: free_port(),
        admin: free_port(),
        invoker: free_port(),
    };
    let api = dir.path().join("api.yaml");
    std::fs::write(
        &api,
        definition(dir.path(), &p, "", "  wasm: build/missing.wasm\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("build/missing.wasm");
    for args in [
        vec!["render", "api.yaml", "--out", out.to_str().unwrap()],
        vec!["check", "--api", "api.yaml"],
    ] {
        let (ok, output) = lambdagate(&args, dir.path()).await;
        assert!(!ok, "{args:?}: {output}");
        assert!(
            output.contains("gateway.wasm") && output.contains(&missing.display().to_string()),
            "{args:?}: {output}"
        );
    }
    assert!(!out.join("envoy.yaml").exists(), "nothing is written");
    let (ok, output) = lambdagate(
        &[
            "render",
            "api.yaml",
            "--out",
            "out",
            "--filter",
            "/nonexistent/f.wasm",
        ],
        dir.path(),
    )
    .await;
    assert!(!ok && output.contains("--filter"), "{output}");
}

async fn wait_for(mut done: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if done() {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
