//! Real function code run by the invoker (access method `local`) through
//! real Envoy: the Rust sample on `lambda_http` and the Python sample on
//! `awslambdaric` (the official runtime clients) prove our events parse in
//! real Lambda code; test handlers on awslambdaric exercise Lambda's
//! failure semantics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::{
    EnvoyProcess, InvokerAddress, InvokerProcess, hello_rust, repo_root, venv,
};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:000000000000:function:{name}")
}

/// A local endpoint `local` with these function entries (YAML list items).
fn local_config(functions: &[String]) -> String {
    format!(
        "endpoints:\n  local:\n    access_method: local\n    region: {REGION}\n    functions:\n{}",
        functions.concat()
    )
}

fn python_function(name: &str, dir: &std::path::Path, handler: &str, extra: &str) -> String {
    format!(
        // Unbuffered, so that what the handler prints reaches the invoker's
        // log while its request is still running.
        "    - name: {name}\n      command: [\"{python}\", -m, awslambdaric, \"{handler}\"]\n      working_dir: \"{dir}\"\n      environment: {{PYTHONUNBUFFERED: \"1\"}}\n{extra}",
        python = venv().join("bin/python").display(),
        dir = dir.display(),
    )
}

fn api(resources: &[(&str, &str, &str)]) -> String {
    let resources: Vec<Value> = resources
        .iter()
        .map(|(verb, template, function)| {
            json!({"verb": verb, "uri_template": template, "arn": arn(function), "timeout_seconds": 20})
        })
        .collect();
    // The tests below read the runtime's error JSON: exposed.
    json!({"apis": [{"name": "local", "version": "v1", "context": "/fn", "endpoint": "local",
                     "expose_errors": true, "resources": resources}]})
    .to_string()
}

#[tokio::test]
async fn the_rust_and_python_samples_answer_through_envoy() {
    let rust = format!(
        "    - name: hello-rust\n      command: [\"{}\"]\n",
        hello_rust().display()
    );
    let python = python_function(
        "hello-python",
        &repo_root().join("examples/functions/hello-python"),
        "app.handler",
        "",
    );
    let invoker = InvokerProcess::start(BIN, &local_config(&[rust, python]), &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &api(&[
            ("GET", "/rust/hello/{name}", "hello-rust"),
            ("POST", "/rust/echo/{id}", "hello-rust"),
            ("GET", "/python/hello/{name}", "hello-python"),
            ("POST", "/python/echo/{id}", "hello-python"),
        ]),
    )
    .await;
    for runtime in ["rust", "python"] {
        let r = envoy
            .send(
                "GET",
                &format!("/fn/{runtime}/hello/J%C3%BCrgen?lang=de&lang=en"),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.status, 200, "{runtime}: {}\n{}", r.text(), invoker.logs());
        assert_eq!(r.header("x-runtime"), Some(runtime));
        let body = r.json();
        assert_eq!(body["runtime"], runtime);
        assert_eq!(body["function"], format!("hello-{runtime}"));
        assert_eq!(body["message"], "Hello, Jürgen!");
        assert_eq!(body["pathParameters"]["name"], "Jürgen");
        assert_eq!(body["queryStringParameters"]["lang"], "en");

        let r = envoy
            .send(
                "POST",
                &format!("/fn/{runtime}/echo/42?debug=1"),
                &[
                    ("content-type", "application/json"),
                    ("x-request-id", &format!("rid-{runtime}")),
                ],
                br#"{"message":"Hello, World!","n":[1,2,3]}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{runtime}: {}", r.text());
        let body = r.json();
        assert_eq!(
            body["body"],
            json!({"message": "Hello, World!", "n": [1, 2, 3]}),
            "{runtime}"
        );
        assert_eq!(body["pathParameters"]["id"], "42");
        assert_eq!(body["queryStringParameters"]["debug"], "1");
        assert_eq!(body["method"], "POST");
        // The runtime received the gateway's request id (Envoy's, not the
        // client's) as Lambda's.
        assert_eq!(body["requestId"], r.request_id());
        assert_ne!(body["requestId"], format!("rid-{runtime}"));
        assert_eq!(r.header("x-amzn-requestid"), Some(r.request_id()));
    }
    // Function output goes to the invoker's log with the request id.
    assert!(
        invoker.logs().contains("started local function process"),
        "{}",
        invoker.logs()
    );
}

const HANDLER: &str = r#"
import json, os, time

def handler(event, context):
    q = event.get("queryStringParameters") or {}
    print("handling", q, flush=True)
    if "fail" in q:
        raise ValueError("boom: " + q["fail"])
    if "crash" in q:
        os._exit(3)
    if "sleep" in q:
        time.sleep(float(q["sleep"]))
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}
"#;

const BROKEN: &str = "raise RuntimeError('cannot start: missing setting')\n";

#[tokio::test]
async fn lambda_failure_semantics_for_local_functions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("behave.py"), HANDLER).unwrap();
    std::fs::write(dir.path().join("broken.py"), BROKEN).unwrap();
    let functions = [
        python_function(
            "behave",
            dir.path(),
            "behave.handler",
            "      timeout_seconds: 2\n      max_concurrency: 2\n",
        ),
        python_function(
            "single",
            dir.path(),
            "behave.handler",
            "      max_concurrency: 1\n",
        ),
        python_function("broken", dir.path(), "broken.handler", ""),
    ];
    let invoker = InvokerProcess::start(BIN, &local_config(&functions), &[], "info").await;
    let envoy = EnvoyProcess::start(
        &InvokerAddress::parse(&invoker.addr),
        &api(&[
            ("GET", "/behave", "behave"),
            ("GET", "/single", "single"),
            ("GET", "/broken", "broken"),
        ]),
    )
    .await;
    let pid = |r: &lambdagate_harness::http::Response| -> u64 {
        assert_eq!(r.status, 200, "{}\n{}", r.text(), invoker.logs());
        r.json()["pid"].as_u64().unwrap()
    };

    // A warm process is reused.
    let first = pid(&envoy.send("GET", "/fn/behave", &[], b"").await);
    assert_eq!(pid(&envoy.send("GET", "/fn/behave", &[], b"").await), first);

    // Handler error → 502 with the runtime's error JSON; the process stays.
    let r = envoy
        .send(
            "GET",
            "/fn/behave?fail=bad-input",
            &[("x-request-id", "r-fail")],
            b"",
        )
        .await;
    assert_eq!(r.status, 502, "{}", r.text());
    let body = r.json();
    assert_eq!(body["requestId"], r.request_id());
    let failed_request_id = r.request_id().to_owned();
    assert_eq!(body["error"]["errorType"], "ValueError", "{body}");
    assert_eq!(body["error"]["errorMessage"], "boom: bad-input", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Unhandled"),
        "{body}"
    );
    assert_eq!(pid(&envoy.send("GET", "/fn/behave", &[], b"").await), first);

    // Timeout → 504, the process is killed and a new one serves the next call.
    let started = Instant::now();
    let r = envoy.send("GET", "/fn/behave?sleep=30", &[], b"").await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("did not answer within 2s"),
        "{}",
        r.text()
    );
    let after_timeout = pid(&envoy.send("GET", "/fn/behave", &[], b"").await);
    assert_ne!(after_timeout, first, "a timed-out process is replaced");
    assert!(
        !process_alive(first),
        "the timed-out process {first} was killed"
    );

    // A crash → 502 Runtime.ExitError; the next call is served by a new process.
    let r = envoy.send("GET", "/fn/behave?crash=1", &[], b"").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(
        r.json()["error"]["errorType"],
        "Runtime.ExitError",
        "{}",
        r.text()
    );
    let after_crash = pid(&envoy.send("GET", "/fn/behave", &[], b"").await);
    assert_ne!(after_crash, after_timeout);

    // Concurrency limit 1: a second concurrent call is throttled (429).
    let slow = {
        let addr = envoy.addr.clone();
        tokio::spawn(async move {
            lambdagate_harness::http::send(&addr, "GET", "/fn/single?sleep=1.5", &[], b"").await
        })
    };
    // The slow call holds the only slot once its handler runs.
    invoker.wait_for_log("handling {'sleep': '1.5'}").await;
    let r = envoy.send("GET", "/fn/single", &[], b"").await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrency"),
        "{}",
        r.text()
    );
    assert_eq!(slow.await.unwrap().unwrap().status, 200);

    // An init error: a clear message to the client, logged once.
    for _ in 0..2 {
        let r = envoy.send("GET", "/fn/broken", &[], b"").await;
        assert_eq!(r.status, 502, "{}", r.text());
        let text = r.text();
        assert!(text.contains("cannot start: missing setting"), "{text}");
    }
    let logs = invoker.logs();
    assert_eq!(logs.matches("failed to initialize").count(), 1, "{logs}");

    // Function output is in the invoker's log, with the request id.
    assert!(
        logs.lines()
            .any(|l| l.contains("handling")
                && l.contains(&format!("request_id={failed_request_id}"))),
        "{logs}"
    );
}

fn process_alive(pid: u64) -> bool {
    // A zombie (exited, not yet reaped) counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.split_whitespace()
                .nth(2)
                .is_none_or(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn check_refuses_a_local_function_whose_program_is_missing() {
    let yaml =
        local_config(&["    - name: ghost\n      command: [./no/such/program]\n".to_owned()]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoker.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("endpoints.local.functions[0].command: program `./no/such/program` of local function `ghost` was not found"), "{stderr}");
}

/// The local function's reply through the gRPC API; its `pid`.
async fn grpc_call(
    client: &mut lambdagate_proto::v1::invoker_client::InvokerClient<tonic::transport::Channel>,
    function: &str,
    query: Value,
) -> Result<u64, tonic::Status> {
    grpc_call_within(client, function, query, None).await
}

/// Like [`grpc_call`], with a gRPC deadline (`grpc-timeout`) if given.
async fn grpc_call_within(
    client: &mut lambdagate_proto::v1::invoker_client::InvokerClient<tonic::transport::Channel>,
    function: &str,
    query: Value,
    deadline: Option<Duration>,
) -> Result<u64, tonic::Status> {
    let payload = json!({"queryStringParameters": query}).to_string();
    let mut request = tonic::Request::new(lambdagate_harness::invoke_request(
        "local",
        &arn(function),
        payload.as_bytes(),
        20_000,
        lambdagate_proto::InvocationType::RequestResponse,
    ));
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    let reply = client.invoke(request).await?.into_inner();
    let outer: Value = serde_json::from_slice(&reply.payload).unwrap();
    let body: Value = serde_json::from_str(outer["body"].as_str().unwrap()).unwrap();
    Ok(body["pid"].as_u64().unwrap())
}

async fn wait_for_count(invoker: &InvokerProcess, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while invoker.logs().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "waiting for {count} x {needle:?}:\n{}",
            invoker.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const MAX_CONCURRENCY: usize = 2;

async fn start_slots_function(dir: &std::path::Path) -> InvokerProcess {
    std::fs::write(dir.join("behave.py"), HANDLER).unwrap();
    let function = python_function(
        "slots",
        dir,
        "behave.handler",
        &format!("      max_concurrency: {MAX_CONCURRENCY}\n"),
    );
    InvokerProcess::start(BIN, &local_config(&[function]), &[], "info").await
}

#[tokio::test]
async fn a_process_dying_while_idle_gives_its_slot_back() {
    let dir = tempfile::tempdir().unwrap();
    let invoker = start_slots_function(dir.path()).await;
    let mut client = invoker.client().await;
    for round in 0..=MAX_CONCURRENCY {
        let pid = grpc_call(&mut client, "slots", json!({}))
            .await
            .unwrap_or_else(|s| panic!("round {round}: {s:?}\n{}", invoker.logs()));
        // Killed by its pid while idle in the pool.
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_for_count(&invoker, "local function process ended", round + 1).await;
        assert!(!process_alive(pid));
    }
    let pid = grpc_call(&mut client, "slots", json!({}))
        .await
        .unwrap_or_else(|s| panic!("after the deaths: {s:?}\n{}", invoker.logs()));
    assert!(process_alive(pid));
}

#[tokio::test]
async fn a_caller_going_away_gives_its_slot_back() {
    let dir = tempfile::tempdir().unwrap();
    let invoker = start_slots_function(dir.path()).await;
    let mut client = invoker.client().await;
    for round in 0..=MAX_CONCURRENCY {
        let mut caller = client.clone();
        if round == 2 {
            // A gRPC deadline (grpc-timeout) passes while the function runs.
            let started = Instant::now();
            let status = grpc_call_within(
                &mut caller,
                "slots",
                json!({"sleep": "30"}),
                Some(Duration::from_millis(1500)),
            )
            .await
            .expect_err("the deadline passes first");
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
                ),
                "{status:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(10));
            wait_for_count(&invoker, "local function process ended", round + 1).await;
            continue;
        }
        let call = async move { grpc_call(&mut caller, "slots", json!({"sleep": "30"})).await };
        if round == 0 {
            // The call is cancelled (the task holding it is aborted, as a
            // caller that disconnects): the stream is reset.
            let task = tokio::spawn(call);
            wait_for_count(&invoker, "handling", round + 1).await;
            task.abort();
            assert!(task.await.unwrap_err().is_cancelled());
        } else {
            // The caller's own deadline passes while the function runs.
            let started = Instant::now();
            let gave_up = tokio::time::timeout(Duration::from_secs(3), call).await;
            assert!(gave_up.is_err(), "round {round}: {gave_up:?}");
            assert!(started.elapsed() < Duration::from_secs(10));
            assert_eq!(invoker.logs().matches("handling").count(), round + 1);
        }
        // The abandoned invocation's process is stopped.
        wait_for_count(&invoker, "local function process ended", round + 1).await;
    }
    let started = Instant::now();
    grpc_call(&mut client, "slots", json!({}))
        .await
        .unwrap_or_else(|s| panic!("after the cancellations: {s:?}\n{}", invoker.logs()));
    assert!(started.elapsed() < Duration::from_secs(15));
}
