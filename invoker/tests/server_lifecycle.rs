//! The sidecar as an orchestrator runs it: health checking, unix sockets,
//! loopback-only listening, and graceful shutdown on SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::standins::{CannedReply, LambdaStandIn};
use lambdagate_harness::{InvokerProcess, invoke_request};
use lambdagate_proto::InvocationType;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

fn env() -> Vec<(String, String)> {
    vec![
        ("MAIN_KEY_ID".to_owned(), "AKIAEXAMPLEEXAMPLE01".to_owned()),
        ("MAIN_SECRET".to_owned(), "lifecycle-test-secret".to_owned()),
    ]
}

#[tokio::test]
async fn health_service_reports_serving() {
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", Duration::ZERO)).await;
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut health = HealthClient::new(invoker.channel().await);
    for service in ["", "lambdagate.v1.Invoker"] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(
            reply.status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
    let (status, body) =
        lambdagate_harness::http::request(&invoker.admin, "GET", "/healthz", &[], b"")
            .await
            .unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

/// Starts a call through `invoker` and returns once `slow` has it.
async fn call_in_flight(
    invoker: &InvokerProcess,
    slow: &LambdaStandIn,
) -> tokio::task::JoinHandle<Result<tonic::Response<lambdagate_proto::InvokeReply>, tonic::Status>>
{
    let mut client = invoker.client().await;
    let in_flight = tokio::spawn(async move {
        client
            .invoke(invoke_request(
                "main",
                ARN,
                b"{}",
                10_000,
                InvocationType::RequestResponse,
            ))
            .await
    });
    while slow.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    in_flight
}

#[tokio::test]
async fn sigterm_lets_in_flight_invocations_finish() {
    let slow =
        LambdaStandIn::start(CannedReply::ok("{\"done\":true}", Duration::from_secs(2))).await;
    let yaml = config(&[stored_endpoint("main", &slow.url, &[ARN], "")]);
    let mut invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let in_flight = call_in_flight(&invoker, &slow).await;
    let stopped_at = Instant::now();
    invoker.terminate();
    let reply = in_flight
        .await
        .unwrap()
        .expect("the in-flight invocation completes despite SIGTERM")
        .into_inner();
    assert_eq!(reply.payload, b"{\"done\":true}");
    let status = invoker.wait_exit(Duration::from_secs(10)).await;
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        invoker.logs()
    );
    assert!(
        stopped_at.elapsed() >= Duration::from_millis(1500),
        "waited for the call"
    );
    invoker.wait_for_log("shutdown requested").await;
    invoker.wait_for_log("lambdagate invoker stopped").await;
    assert!(
        tokio::net::TcpStream::connect(&invoker.addr).await.is_err(),
        "no longer listening"
    );
}

/// An invoker that is draining (SIGTERM, a call still running) gives the
/// socket path up at once, and a successor started meanwhile keeps its
/// socket when the old one finally exits.
#[tokio::test]
async fn a_draining_invoker_leaves_its_successors_socket_alone() {
    let slow =
        LambdaStandIn::start(CannedReply::ok("{\"done\":true}", Duration::from_secs(2))).await;
    let yaml = config(&[stored_endpoint("main", &slow.url, &[ARN], "")]);
    let mut old = InvokerProcess::start_unix(BIN, &yaml, &env_refs(&env()), "info").await;
    let socket = std::path::PathBuf::from(old.addr.strip_prefix("unix:").unwrap());
    let in_flight = call_in_flight(&old, &slow).await;
    old.terminate();
    let deadline = Instant::now() + Duration::from_secs(1);
    while socket.exists() {
        assert!(
            Instant::now() < deadline,
            "the draining invoker kept the path"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let new = InvokerProcess::start_at(BIN, &yaml, &env_refs(&env()), "info", &old.addr).await;
    assert!(in_flight.await.unwrap().is_ok(), "the old call finished");
    assert!(old.wait_exit(Duration::from_secs(10)).await.success());
    assert!(
        socket.exists(),
        "the old invoker removed its successor's socket"
    );
    let reply = new
        .client()
        .await
        .invoke(invoke_request(
            "main",
            ARN,
            b"{}",
            10_000,
            InvocationType::RequestResponse,
        ))
        .await;
    assert!(reply.is_ok(), "{reply:?}\n{}", new.logs());
}

#[tokio::test]
async fn serves_on_a_unix_socket() {
    let lambda = LambdaStandIn::start(CannedReply::ok("{\"via\":\"unix\"}", Duration::ZERO)).await;
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let invoker = InvokerProcess::start_unix(BIN, &yaml, &env_refs(&env()), "info").await;
    let reply = invoker
        .client()
        .await
        .invoke(invoke_request(
            "main",
            ARN,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("invoke over the unix socket")
        .into_inner();
    assert_eq!(reply.payload, b"{\"via\":\"unix\"}");
}

#[tokio::test]
async fn refuses_a_non_loopback_address_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoker.yaml");
    std::fs::write(
        &path,
        config(&[stored_endpoint("main", "http://127.0.0.1:1", &[ARN], "")]),
    )
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .args(["--listen", "0.0.0.0:50051"])
        .env("MAIN_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
        .env("MAIN_SECRET", "x")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--listen: `0.0.0.0:50051` is not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
}

/// Replaces a file the way a deploy must: write beside it, then rename.
fn replace_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test]
async fn config_changes_are_picked_up_without_a_restart_and_bad_ones_refused() {
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", Duration::ZERO)).await;
    let other = "arn:aws:lambda:us-east-1:123456789012:function:other";
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut client = invoker.client().await;
    let status = client
        .invoke(invoke_request(
            "main",
            other,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect_err("not allowed yet");
    assert_eq!(failure(&status).1, "NOT_ALLOWED");

    // Deploy: a new allow-list, written atomically.
    replace_atomically(
        &invoker.config_path,
        &config(&[stored_endpoint("main", &lambda.url, &[ARN, other], "")]),
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let result = client
            .invoke(invoke_request(
                "main",
                other,
                b"{}",
                5000,
                InvocationType::RequestResponse,
            ))
            .await;
        if result.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not reloaded: {result:?}\n{}",
            invoker.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ok_reloads(&invoker).await, 1.0);

    // A broken deploy is refused; the running config keeps serving.
    replace_atomically(
        &invoker.config_path,
        "endpoints:\n  main:\n    access_method: nope\n",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !invoker.logs().contains("config reload refused") {
        assert!(Instant::now() < deadline, "{}", invoker.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        invoker.logs().contains("endpoints.main.access_method"),
        "{}",
        invoker.logs()
    );
    client
        .invoke(invoke_request(
            "main",
            other,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("the last good config still serves");

    // Repair it, then SIGHUP reloads even though the file did not change.
    replace_atomically(
        &invoker.config_path,
        &config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]),
    );
    wait_for_reloads(&invoker, 2.0).await;
    let status = std::process::Command::new("kill")
        .args(["-HUP", &invoker.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_for_reloads(&invoker, 3.0).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        ok_reloads(&invoker).await,
        3.0,
        "an unchanged file is not reloaded by polling"
    );
}

/// `lambdagate_config_reloads_total{result="ok"}`.
async fn ok_reloads(invoker: &InvokerProcess) -> f64 {
    let metrics = invoker.metrics().await;
    lambdagate_harness::http::metric_value(
        &metrics,
        "lambdagate_config_reloads_total",
        &[("result", "ok")],
    )
    .unwrap_or(0.0)
}

async fn wait_for_reloads(invoker: &InvokerProcess, count: f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while ok_reloads(invoker).await < count {
        assert!(
            Instant::now() < deadline,
            "waiting for {count} reloads: {}",
            invoker.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `lambdagate serve` on `unix:<socket>` under a given umask (set by the
/// shell that execs it), with its output.
fn serve_unix_with_umask(
    config_path: &std::path::Path,
    socket: &std::path::Path,
    umask: &str,
) -> tokio::process::Child {
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {umask} && exec \"$0\" serve --config \"$1\" --listen \"unix:$2\""
        ))
        .arg(BIN)
        .arg(config_path)
        .arg(socket)
        .env("MAIN_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
        .env("MAIN_SECRET", "lifecycle-test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn the_unix_socket_mode_is_the_configured_one_whatever_the_umask() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("invoker.sock");
    let base = config(&[stored_endpoint("main", "http://127.0.0.1:9", &[ARN], "")]);
    for (umask, socket_mode, expected) in [
        ("000", "", 0o660),
        ("077", "", 0o660),
        ("022", "socket_mode: \"0600\"\n", 0o600),
        // Unquoted with its leading 0, YAML keeps it a string: accepted.
        ("000", "socket_mode: 0640\n", 0o640),
    ] {
        let config_path = dir.path().join("invoker.yaml");
        std::fs::write(&config_path, format!("{socket_mode}{base}")).unwrap();
        // A stale socket from an earlier run is in the way: it is replaced.
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(
            std::fs::symlink_metadata(&socket)
                .unwrap()
                .file_type()
                .is_socket()
        );
        let mut child = serve_unix_with_umask(&config_path, &socket, umask);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::UnixStream::connect(&socket).await.is_err() {
            assert!(Instant::now() < deadline, "umask {umask}: not listening");
            assert!(child.try_wait().unwrap().is_none(), "umask {umask}: exited");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            mode_of(&socket),
            expected,
            "umask {umask}, {socket_mode:?}: mode {:o}",
            mode_of(&socket)
        );
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let _ = std::fs::remove_file(&socket);
    }
}

#[tokio::test]
async fn serve_leaves_a_file_that_is_not_a_socket_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("invoker.yaml");
    std::fs::write(
        &config_path,
        config(&[stored_endpoint("main", "http://127.0.0.1:9", &[ARN], "")]),
    )
    .unwrap();
    let precious = dir.path().join("data.db");
    std::fs::write(&precious, "precious data\n").unwrap();
    let child = serve_unix_with_umask(&config_path, &precious, "022");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("serve exits")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} exists and is a regular file, not a socket",
            precious.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "precious data\n"
    );
}

#[tokio::test]
async fn check_validates_the_socket_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("invoker.yaml");
    let base = config(&[stored_endpoint("main", "http://127.0.0.1:9", &[ARN], "")]);
    for (mode, expected) in [
        ("\"0666\"", "lets every local user call the invoker"),
        ("\"0460\"", "does not let the owner read and write"),
        ("\"rw-rw----\"", "is not a quoted octal mode"),
        // YAML reads these as numbers (decimal 660, octal 0o660).
        ("660", "write the mode as a quoted string"),
        ("0o660", "write the mode as a quoted string"),
    ] {
        std::fs::write(&path, format!("socket_mode: {mode}\n{base}")).unwrap();
        let out = tokio::process::Command::new(BIN)
            .args(["check", "--config"])
            .arg(&path)
            .env("MAIN_KEY_ID", "AKIAEXAMPLEEXAMPLE01")
            .env("MAIN_SECRET", "x")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{mode}: {stderr}");
        assert!(
            stderr.contains(&format!("{}: socket_mode: ", path.display())),
            "{mode}: {stderr}"
        );
        assert!(stderr.contains(expected), "{mode}: {stderr}");
    }
}

#[tokio::test]
async fn unknown_endpoint_names_share_one_metrics_label() {
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", Duration::ZERO)).await;
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut client = invoker.client().await;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let names: Vec<String> = (0..50u128).map(|i| format!("rnd{seed:x}n{i}")).collect();
    for name in &names {
        let status = client
            .invoke(invoke_request(
                name,
                ARN,
                b"{}",
                5000,
                InvocationType::RequestResponse,
            ))
            .await
            .expect_err("unknown endpoint");
        let (_, kind, message) = failure(&status);
        assert_eq!(kind, "INVALID_CONFIG");
        assert!(
            message.contains(&format!("endpoint `{name}` is not configured")),
            "{message}"
        );
    }
    client
        .invoke(invoke_request(
            "main",
            ARN,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        ))
        .await
        .expect("a configured endpoint still works");
    let metrics = invoker.metrics().await;
    for name in &names {
        assert!(
            !metrics.contains(name.as_str()),
            "{name} is a label:\n{metrics}"
        );
    }
    assert_eq!(
        lambdagate_harness::http::metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("endpoint", "(unknown)")]
        ),
        Some(50.0),
        "{metrics}"
    );
    assert_eq!(
        lambdagate_harness::http::metric_value(
            &metrics,
            "lambdagate_invocations_total",
            &[("endpoint", "main"), ("outcome", "ok")]
        ),
        Some(1.0),
        "{metrics}"
    );
    let endpoint_labels: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("endpoint=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(
        endpoint_labels,
        ["(unknown)", "main"].into_iter().collect(),
        "{metrics}"
    );
}

/// A failure's kind crosses the wire typed, in both forms the invoker
/// answers: for a plain gRPC client, a status with the contract's code and
/// the kind in the `lambdagate-error-kind-bin` trailer; for the filter's
/// callout (`failure_in_reply`, since Envoy hands a filter's unary call
/// only the status code and message), an OK reply carrying the kind and
/// the words. Neither writes the kind into the message.
#[tokio::test]
async fn a_failure_reaches_either_kind_of_caller_typed() {
    let lambda = LambdaStandIn::start(CannedReply::ok("{}", Duration::ZERO)).await;
    let yaml = config(&[stored_endpoint("main", &lambda.url, &[ARN], "")]);
    let invoker = InvokerProcess::start(BIN, &yaml, &env_refs(&env()), "info").await;
    let mut client = invoker.client().await;
    let not_allowed = "arn:aws:lambda:us-east-1:123456789012:function:other";
    let request = || {
        invoke_request(
            "main",
            not_allowed,
            b"{}",
            5000,
            InvocationType::RequestResponse,
        )
    };

    let status = client.invoke(request()).await.expect_err("not allowed");
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        lambdagate_proto::error_kind(&status),
        lambdagate_proto::ErrorKind::NotAllowed
    );
    assert!(
        !status.message().contains("NOT_ALLOWED"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains("allow list"),
        "{}",
        status.message()
    );

    let mut as_the_filter = request();
    as_the_filter.failure_in_reply = true;
    let reply = client
        .invoke(as_the_filter)
        .await
        .expect("the failure comes in the reply")
        .into_inner();
    assert_eq!(
        reply.error_kind,
        lambdagate_proto::ErrorKind::NotAllowed as i32
    );
    assert_eq!(reply.error_message, status.message());
    assert!(reply.payload.is_empty() && reply.function_error.is_empty());
    // The stand-in was never called: the allow-list refused first.
    assert_eq!(lambda.request_count(), 0);
}
