//! The operator's flow (the seed's Steps 1-4): an API definition rendered
//! into Envoy and invoker configs, served by real Envoy + invoker + moto,
//! redeployed under load without a restart and without a failed request,
//! and published as an OpenAPI document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use lambdagate_harness::{
    EnvoyProcess, Moto, MotoOptions, RenderedPorts, filter_wasm, start_rendered,
};

fn definition(moto: &Moto, p: &RenderedPorts, extra_resources: &str) -> String {
    format!(
        r#"name: users
version: v1
context: /users
# moto's echo is no proxy response: an HTTP API returns it as is.
payload_format: v2
endpoint:
  name: orders
  access_method: stored
  region: us-east-1
  endpoint_url: {url}
  credentials:
    access_key_id: {{env: ORDERS_KEY_ID}}
    secret_access_key: {{env: ORDERS_SECRET}}
resources:
  - verb: GET
    uri_template: /user/{{id}}
    arn: {echo}
    timeout_seconds: 10
{extra_resources}gateway:
  listen: 127.0.0.1:{listen}
  admin: 127.0.0.1:{admin}
  invoker: 127.0.0.1:{invoker}
  invoker_admin: 127.0.0.1:{invoker_admin}
  wasm: {wasm}
  public_url: https://api.example.com
"#,
        url = moto.url,
        echo = moto.fixture.function("echo"),
        listen = p.listen,
        admin = p.admin,
        invoker = p.invoker,
        invoker_admin = p.invoker_admin,
        wasm = filter_wasm().display(),
    )
}

async fn lambdagate(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn render(api: &Path, out: &Path) {
    let (ok, _, stderr) = lambdagate(&[
        "render",
        api.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "render failed: {stderr}");
}

async fn envoy_counter(envoy: &EnvoyProcess, name: &str) -> u64 {
    let (_, stats) = lambdagate_harness::http::request(
        &envoy.admin,
        "GET",
        &format!("/stats?filter={name}"),
        &[],
        b"",
    )
    .await
    .unwrap();
    stats
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.ends_with(name))
                .and_then(|(_, v)| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Starts what `render` wrote into `out`, the invoker holding the keys of
/// moto's `invoker` user as the definition's `orders` endpoint reads them.
async fn start_deployed(
    moto: &Moto,
    out: &std::path::Path,
    ports: &RenderedPorts,
) -> (lambdagate_harness::InvokerProcess, EnvoyProcess) {
    let key = moto.fixture.user("invoker");
    let env = [
        ("ORDERS_KEY_ID", key.access_key_id.as_str()),
        ("ORDERS_SECRET", key.secret_access_key.as_str()),
    ];
    start_rendered(BIN, out, &env, ports).await
}

/// A scratch folder holding the API definition (`api.yaml`) and what
/// `render` writes (`deploy/`); the folder goes when the guard drops.
fn deploy_dir() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let api = dir.path().join("api.yaml");
    let out = dir.path().join("deploy");
    (dir, api, out)
}

#[tokio::test]
async fn rendered_configs_serve_and_a_redeploy_under_load_fails_no_request() {
    let moto = Moto::start(MotoOptions {
        enforce_iam: true,
        ..Default::default()
    })
    .await;
    let p = RenderedPorts::free();
    let (_dir, api, out) = deploy_dir();
    std::fs::write(&api, definition(&moto, &p, "")).unwrap();
    render(&api, &out).await;
    for file in ["envoy.yaml", "invoker.yaml", "ecds/lambdagate.yaml"] {
        assert!(out.join(file).exists(), "{file} not rendered");
    }
    let invoker_yaml = std::fs::read_to_string(out.join("invoker.yaml")).unwrap();
    assert!(
        invoker_yaml.contains(&format!("- {}", moto.fixture.function("echo"))),
        "{invoker_yaml}"
    );
    assert!(
        !invoker_yaml.contains("echo-v2"),
        "allow-list = exactly the mapped ARNs"
    );

    let (invoker, envoy) = start_deployed(&moto, &out, &p).await;
    let envoy_pid = envoy.pid();

    let r = envoy.send("GET", "/users/user/7", &[], b"").await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.logs());
    assert_eq!(r.json()["pathParameters"]["id"], "7");
    // The access log names the Lambda request id, the trace id the client
    // got and the outcome.
    let lambda_rid = r.header("x-amzn-requestid").unwrap().to_owned();
    let trace_id = r.header("x-amzn-trace-id").unwrap().to_owned();
    assert!(trace_id.starts_with("Root=1-"), "{trace_id}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy.logs().contains(&format!(
        "lambda_request_id={lambda_rid} trace_id={trace_id} outcome=ok"
    )) {
        assert!(
            Instant::now() < deadline,
            "access log line missing:\n{}",
            envoy.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = envoy.send("GET", "/users/thing/1", &[], b"").await;
    assert_eq!(r.status, 404, "not deployed yet");

    // Load while v2 (a new resource on a new function) is deployed.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed, addr) =
            (stop.clone(), ok.clone(), failed.clone(), envoy.addr.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match lambdagate_harness::http::send(&addr, "GET", "/users/user/1", &[], b"").await
                {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed
                        .lock()
                        .unwrap()
                        .push(format!("{} {}", r.status, r.text())),
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let v2 = format!(
        "  - verb: GET\n    uri_template: /thing/{{id}}\n    arn: {}\n",
        moto.fixture.function("echo-v2")
    );
    std::fs::write(&api, definition(&moto, &p, &v2)).unwrap();
    render(&api, &out).await;
    // The new resource answers once Envoy has applied the new filter
    // config (a new wasm VM; well under a second).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = envoy.send("GET", "/users/thing/5", &[], b"").await;
        if r.status == 200 {
            assert_eq!(r.json()["routeKey"], "GET /thing/{id}");
            break;
        }
        assert_eq!(r.status, 404, "{}\ninvoker:\n{}", r.text(), invoker.logs());
        assert!(Instant::now() < deadline, "v2 not live: {}", r.text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    let served = ok.load(Ordering::SeqCst);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the deploy: {:?}",
        failed.len(),
        served + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(served >= 50, "only {served} requests ran during the deploy");
    assert_eq!(envoy.pid(), envoy_pid, "Envoy was not restarted");
    assert!(
        envoy_counter(&envoy, "config_reload").await >= 2,
        "{}",
        envoy.logs()
    );
    invoker.wait_for_log("config reloaded").await;
}

/// `gateway.data_path: router`, switched on and off again by hot deploys:
/// the same answers either way, and the access log names the client's
/// request (not the invoker call Envoy forwarded on the router path).
#[tokio::test]
async fn the_data_path_switches_by_hot_deploy_and_the_access_log_names_the_clients_request() {
    let moto = Moto::start(MotoOptions::default()).await;
    let p = RenderedPorts::free();
    let (_dir, api, out) = deploy_dir();
    let write = |data_path: &str| {
        let text = definition(&moto, &p, "") + &format!("  data_path: {data_path}\n");
        std::fs::write(&api, text).unwrap();
    };
    write("router");
    render(&api, &out).await;
    let ecds = std::fs::read_to_string(out.join("ecds/lambdagate.yaml")).unwrap();
    assert!(ecds.contains(r#"\"data_path\":\"router\""#), "{ecds}");
    let (_invoker, envoy) = start_deployed(&moto, &out, &p).await;
    let envoy_pid = envoy.pid();
    // Envoy counts the callout's calls (its HTTP client, on render's
    // HTTP/1.1 cluster) as internal requests, the router path's (the
    // client's request, on the invoker's HTTP/2 cluster) as external ones.
    let calls = |kind: &'static str| {
        let cluster = if kind == "internal" {
            "lambdagate_invoker_http1"
        } else {
            "lambdagate_invoker"
        };
        let name = format!("cluster.{cluster}.{kind}.upstream_rq_200");
        let envoy = &envoy;
        async move { envoy_counter(envoy, &name).await }
    };

    for (round, data_path) in ["router", "callout", "router"].into_iter().enumerate() {
        if round > 0 {
            write(data_path);
            render(&api, &out).await;
        }
        let kind = if data_path == "router" {
            "external"
        } else {
            "internal"
        };
        // The new filter config is live once a request takes the new path
        // (a new wasm VM; well under a second).
        let deadline = Instant::now() + Duration::from_secs(5);
        let path = format!("/users/user/{round}?q=x");
        let r = loop {
            let before = calls(kind).await;
            let r = envoy.send("GET", &path, &[], b"").await;
            if calls(kind).await == before + 1 {
                break r;
            }
            assert!(Instant::now() < deadline, "{data_path} never took effect");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(r.status, 200, "{data_path}: {}\n{}", r.text(), envoy.logs());
        assert_eq!(r.json()["pathParameters"]["id"], round.to_string());
        assert_eq!(r.json()["rawQueryString"], "q=x");
        let line = format!("\"GET {path} HTTP/1.1\" 200");
        let lambda_rid = r.header("x-amzn-requestid").unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !envoy
            .logs()
            .lines()
            .any(|l| l.contains(&line) && l.contains(&lambda_rid) && l.ends_with("outcome=ok"))
        {
            assert!(
                Instant::now() < deadline,
                "{data_path}: no access log line with {line}, {lambda_rid} and outcome=ok:\n{}",
                envoy.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(envoy.pid(), envoy_pid, "Envoy was not restarted");
}

#[tokio::test]
async fn render_refuses_bad_definitions_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        std::fs::read_to_string(lambdagate_harness::repo_root().join("examples/api.yaml")).unwrap();
    let cases: &[(&str, String, &str)] = &[
        (
            "bad ARN",
            good.replace("function:get-user:live", "function:get.user"),
            "api.yaml: resources[1] (GET /user/{id}).arn: `arn:aws:lambda:us-east-1:123456789012:function:get.user` is not a valid Lambda function ARN",
        ),
        (
            "timeout out of range",
            good.replace("timeout_seconds: 30", "timeout_seconds: 901"),
            "api.yaml: resources[0] (POST /user/{id}).timeout_seconds:",
        ),
        (
            "stored endpoint without keys",
            good.replace("  credentials:\n    access_key_id: {env: LAMBDAGATE_ORDERS_KEY_ID}\n    secret_access_key: {env: LAMBDAGATE_ORDERS_SECRET}\n", ""),
            "api.yaml: endpoint.credentials: required with access_method `stored`",
        ),
        (
            "unknown field",
            good.replace("payload_format: v1", "payload_fromat: v1"),
            "api.yaml: payload_fromat: unknown field `payload_fromat`",
        ),
        (
            "endpoint without a name",
            good.replace("  name: orders\n", ""),
            "api.yaml: endpoint.name: required",
        ),
        (
            "bad greedy template",
            good.replace("/files/{path+}", "/files/{path+}/x"),
            "api.yaml: resources[3]",
        ),
    ];
    for (what, text, expected) in cases {
        assert_ne!(text, &good, "{what}: the case changed nothing");
        let api = dir.path().join("api.yaml");
        std::fs::write(&api, text).unwrap();
        let out = dir.path().join("out");
        let (ok, _, stderr) = lambdagate(&[
            "render",
            api.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .await;
        assert!(!ok, "{what}: accepted");
        let stderr = stderr
            .replace(&dir.path().display().to_string(), "")
            .replace("error: /", "error: ");
        assert!(
            stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{stderr}"
        );
        let (ok, _, openapi_err) = lambdagate(&["openapi", api.to_str().unwrap()]).await;
        assert!(!ok, "{what}: openapi accepted it");
        let openapi_err = openapi_err
            .replace(&dir.path().display().to_string(), "")
            .replace("error: /", "error: ");
        assert_eq!(
            openapi_err.lines().last(),
            stderr.lines().last(),
            "{what}: openapi and render disagree"
        );
    }
    // Two definitions that give one endpoint name different settings.
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(&a, &good).unwrap();
    std::fs::write(
        &b,
        good.replace("name: users", "name: other")
            .replace("context: /users", "context: /other")
            .replace(
                "region: us-east-1\n  credentials",
                "region: eu-west-1\n  credentials",
            ),
    )
    .unwrap();
    let out = dir.path().join("out2");
    let (ok, _, stderr) = lambdagate(&[
        "render",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .await;
    assert!(!ok);
    assert!(
        stderr.contains("b.yaml: endpoint: endpoint `orders` is also defined in"),
        "{stderr}"
    );
}

#[tokio::test]
async fn openapi_document_validates_and_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.json");
    let example = lambdagate_harness::repo_root().join("examples/api.yaml");
    let (ok, _, stderr) = lambdagate(&[
        "openapi",
        example.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ])
    .await;
    assert!(ok, "{stderr}");
    let out =
        std::process::Command::new(lambdagate_harness::venv().join("bin/openapi-spec-validator"))
            .arg(&file)
            .output()
            .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080/users");
    assert_eq!(doc["info"]["title"], "users");
    let paths = doc["paths"].as_object().unwrap();
    let mut routes: Vec<String> = paths
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |verb| format!("{} {path}", verb.to_uppercase()))
        })
        .collect();
    routes.sort();
    let mut expected = vec![
        "POST /user/{id}".to_owned(),
        "GET /user/{id}".to_owned(),
        "POST /events".to_owned(),
        "GET /exports/{id}".to_owned(),
    ];
    for verb in ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
        expected.push(format!("{verb} /files/{{path}}"));
    }
    expected.sort();
    assert_eq!(routes, expected);
    let get_user = &doc["paths"]["/user/{id}"]["get"];
    assert_eq!(get_user["parameters"][0]["name"], "id");
    assert_eq!(get_user["parameters"][0]["in"], "path");
    assert!(
        doc["paths"]["/events"]["post"]["responses"]
            .get("202")
            .is_some()
    );
    let export = doc["paths"]["/exports/{id}"]["get"]["description"]
        .as_str()
        .unwrap();
    assert!(
        export.contains("streamed: the response arrives as the function writes it"),
        "{export}"
    );
}

/// An API moves through its lifecycle by re-render, under load: while
/// deprecated every answer carries `Deprecation` and `Sunset`; once
/// retired its resources answer 410; published again, the headers go.
/// Envoy is not restarted and no request gets anything else.
#[tokio::test]
async fn lifecycle_changes_are_hot_deploys_that_fail_no_request() {
    let moto = Moto::start(MotoOptions::default()).await;
    let p = RenderedPorts::free();
    let (_dir, api, out) = deploy_dir();
    let in_state = |state: &str| {
        definition(&moto, &p, "").replace(
            "payload_format: v2\n",
            &format!("payload_format: v2\n{state}"),
        )
    };
    std::fs::write(
        &api,
        in_state("lifecycle: deprecated\nsunset: 2027-06-30\n"),
    )
    .unwrap();
    render(&api, &out).await;
    let (_invoker, envoy) = start_deployed(&moto, &out, &p).await;
    let envoy_pid = envoy.pid();

    let r = envoy.send("GET", "/users/user/7", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("deprecation"), Some("true"));
    assert_eq!(r.header("sunset"), Some("Wed, 30 Jun 2027 00:00:00 GMT"));

    // Load while the API is retired: each answer is the deprecated API's
    // 200 (with its headers) or the retired API's 410, nothing else.
    let stop = Arc::new(AtomicBool::new(false));
    let (served, gone) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let failed = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, served, gone, failed, addr) = (
            stop.clone(),
            served.clone(),
            gone.clone(),
            failed.clone(),
            envoy.addr.clone(),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match lambdagate_harness::http::send(&addr, "GET", "/users/user/1", &[], b"").await
                {
                    Ok(r) if r.status == 200 && r.header("deprecation") == Some("true") => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if r.status == 410 && r.json()["requestId"] == r.request_id() => {
                        gone.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed.lock().unwrap().push(format!(
                        "{} {:?} {}",
                        r.status,
                        r.headers,
                        r.text()
                    )),
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&api, in_state("lifecycle: retired\n")).unwrap();
    render(&api, &out).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gone.load(Ordering::SeqCst) < 20 {
        assert!(
            Instant::now() < deadline,
            "never retired: {:?}",
            failed.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} requests got something else: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        served.load(Ordering::SeqCst) >= 10,
        "no load before the change"
    );
    let r = envoy.send("GET", "/users/user/7", &[], b"").await;
    assert_eq!(r.status, 410);
    assert!(
        r.json()["message"].as_str().unwrap().contains("retired"),
        "{}",
        r.text()
    );

    // Published again: served, without the deprecation headers.
    std::fs::write(&api, in_state("lifecycle: published\n")).unwrap();
    render(&api, &out).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = envoy.send("GET", "/users/user/7", &[], b"").await;
        if r.status == 200 {
            assert_eq!(r.header("deprecation"), None);
            assert_eq!(r.header("sunset"), None);
            break;
        }
        assert_eq!(r.status, 410, "{}", r.text());
        assert!(Instant::now() < deadline, "never published again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(envoy.pid(), envoy_pid, "Envoy was not restarted");
}
