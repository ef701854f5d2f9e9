//! Fault suite, item 4: many deploys under load. `lambdagate render`
//! rewrites the ECDS file (atomically, into the folder Envoy watches) and
//! the invoker config; each deploy changes the API (a resource appears or
//! goes, the route timeout changes) and is waited for on Envoy's ECDS
//! reload counter. Requests to a route every version has must all be 200.
//!
//! CI: 100 deploys. By hand, 500:
//! `LAMBDAGATE_FAULTS_LONG=1 cargo test -p lambdagate-invoker --test faults_deploys -- --nocapture`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::faults::{CountingLambdaStandIn, Tally, envoy_stats, raw_exchange, scaled};
use lambdagate_harness::{RenderedPorts, filter_wasm, start_rendered};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:users";

/// Version `v` of the API: `/user/{id}` always, with a timeout that
/// changes each version; `/thing/{id}` only in odd versions.
fn definition(lambda_url: &str, p: &RenderedPorts, v: usize) -> String {
    let extra = if v % 2 == 1 {
        format!(
            "  - verb: GET\n    uri_template: /thing/{{id}}\n    arn: {ARN}\n    timeout_seconds: 5\n"
        )
    } else {
        String::new()
    };
    format!(
        r#"name: users
version: v{v}
context: /users
endpoint:
  name: orders
  access_method: stored
  region: us-east-1
  endpoint_url: {lambda_url}
  credentials:
    access_key_id: {{env: ORDERS_KEY_ID}}
    secret_access_key: {{env: ORDERS_SECRET}}
resources:
  - verb: GET
    uri_template: /user/{{id}}
    arn: {ARN}
    timeout_seconds: {timeout}
{extra}gateway:
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  invoker: 127.0.0.1:{invoker}
  invoker_admin: 127.0.0.1:{invoker_admin}
  wasm: {wasm}
"#,
        timeout = 10 + v % 7,
        listen = p.listen,
        admin = p.admin,
        invoker = p.invoker,
        invoker_admin = p.invoker_admin,
        wasm = filter_wasm().display(),
    )
}

async fn render(api: &Path, out: &Path) {
    let output = tokio::process::Command::new(BIN)
        .args([
            "render",
            api.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Sum of the ECDS counters ending in `suffix` (`config_reload`, `config_fail`).
async fn ecds_counter(admin: &str, suffix: &str) -> u64 {
    envoy_stats(admin, "extension_config_discovery")
        .await
        .iter()
        .filter(|(k, _)| k.ends_with(suffix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test]
async fn a_hundred_deploys_under_load_fail_no_request() {
    let deploys = scaled(100, 500);
    let lambda = CountingLambdaStandIn::start().await;
    let p = RenderedPorts::free();
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.yaml");
    let out = dir.path().join("deploy");
    std::fs::write(&api, definition(&lambda.url, &p, 0)).unwrap();
    render(&api, &out).await;
    let env = [
        ("ORDERS_KEY_ID", "AKIAEXAMPLEFAULTS004"),
        ("ORDERS_SECRET", "fault-suite-secret"),
    ];
    let (invoker, envoy) = start_rendered(BIN, &out, &env, &p).await;
    let r = envoy
        .send("GET", "/users/user/1", &[("x-test-tag", "first")], b"")
        .await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "first"),
        "{}",
        envoy.logs()
    );

    let tally = Tally::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (tally, stop, gateway) = (tally.clone(), stop.clone(), envoy.addr.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                let request_id = format!("w{w}-{n}");
                n += 1;
                tally.sent();
                match lambdagate_harness::http::send_with_timeout(
                    &gateway,
                    "GET",
                    &format!("/users/user/{n}"),
                    &[("x-test-tag", &request_id)],
                    b"",
                    Duration::from_secs(10),
                )
                .await
                {
                    Ok(r) if r.status == 200 && r.body == request_id.as_bytes() => {
                        tally.correct(200)
                    }
                    Ok(r) => tally.lost(format!("{request_id}: {} {}", r.status, r.text())),
                    Err(e) => tally.lost(format!("{request_id}: {e}")),
                }
            }
        }));
    }

    let started = Instant::now();
    let mut render_time = Duration::ZERO;
    for v in 1..=deploys {
        let before = ecds_counter(&envoy.admin, "config_reload").await;
        std::fs::write(&api, definition(&lambda.url, &p, v)).unwrap();
        let t = Instant::now();
        render(&api, &out).await;
        render_time += t.elapsed();
        let deadline = Instant::now() + Duration::from_secs(10);
        while ecds_counter(&envoy.admin, "config_reload").await <= before {
            assert!(
                Instant::now() < deadline,
                "deploy {v} not applied:\n{}",
                envoy.logs()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The version is live: /thing/{id} exists exactly in odd versions.
        // Read up to the end of the response, not to the close: Envoy keeps
        // the connection open ~1 s (its delayed close) after the filter's
        // own 404, which would otherwise dominate the test's run time.
        let r = raw_exchange(
            &envoy.addr,
            b"GET /users/thing/1 HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\nx-test-tag: probe\r\n\r\n",
            usize::MAX,
            Duration::ZERO,
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let want = if v % 2 == 1 { 200 } else { 404 };
        assert_eq!(r.status, want, "deploy {v}: {}", r.text());
    }
    let deploy_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    println!("FAULT-DEPLOYS {deploys} deploys in {deploy_time:?} (render {render_time:?})");
    tally.assert_none_lost(&format!("{deploys} ECDS deploys under load"));
    assert!(
        tally.correct_count() >= deploys,
        "{}",
        tally.summary("load")
    );
    assert_eq!(ecds_counter(&envoy.admin, "config_fail").await, 0);
    drop(invoker);
}
