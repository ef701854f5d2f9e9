//! API keys and usage plans through real Envoy, both ways render offers:
//! checked in the filter's own call to the invoker (the default), and by
//! Envoy's own rate-limit filter in front of lambdagate's, with the
//! invoker answering as Envoy's rate-limit service. Keys are made and
//! revoked with `lambdagate keys`, and a real function counts its
//! invocations, so "nothing is invoked" is checked where it happens. The
//! fleet test runs two Envoy + invoker replicas on one real Redis
//! (Debian's `redis-server`, started here on a loopback port).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lambdagate_harness::{
    EnvoyProcess, RenderedPorts, free_port, powertools_function, render_apis, start_rendered,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");

/// An API whose resources need a key unless they say otherwise, counting
/// its invocations in `log`; `usage` is `gateway.usage`'s body.
fn definition(log: &Path, ports: &RenderedPorts, usage: &str) -> String {
    format!(
        r#"name: shop
version: v1
context: /shop
payload_format: v1
api_key_required: true
endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
{function}resources:
  - verb: GET
    uri_template: /items/{{id}}
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
  - verb: GET
    uri_template: /slow/{{id}}
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
  - verb: GET
    uri_template: /open
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
    api_key_required: false
gateway:
{gateway}  usage:
{usage}"#,
        function = powertools_function("integration", "integration", log),
        gateway = ports.gateway_keys(),
    )
}

/// Renders `api` into `out`.
fn render(api: &Path, out: &Path) {
    render_apis(BIN, out, &[api]);
}

/// The shop API rendered into a temp folder (kept while this lives):
/// `usage` as `gateway.usage`, the definition's text changed by `edit`
/// (which gets the invocation log's path).
struct Shop {
    _dir: tempfile::TempDir,
    ports: RenderedPorts,
    log: PathBuf,
    out: PathBuf,
}

fn shop(usage: &str, edit: impl FnOnce(&Path, String) -> String) -> Shop {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let log = dir.path().join("integration.log");
    let api = dir.path().join("shop.yaml");
    std::fs::write(&api, edit(&log, definition(&log, &ports, usage))).unwrap();
    let out = dir.path().join("out");
    render(&api, &out);
    Shop {
        _dir: dir,
        ports,
        log,
        out,
    }
}

/// `lambdagate keys ARGS --config out/invoker.yaml`: (stdout, stderr).
fn keys(out: &Path, args: &[&str]) -> (String, String) {
    let output = Command::new(BIN)
        .arg("keys")
        .args(args)
        .arg("--config")
        .arg(out.join("invoker.yaml"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "keys {args:?}: {stderr}");
    (stdout, stderr)
}

/// A new key for `plan`: the key (printed once) and its id.
fn create_key(out: &Path, plan: &str, name: &str) -> (String, String) {
    let (stdout, stderr) = keys(out, &["create", "--plan", plan, "--name", name]);
    let key = stdout.trim().to_owned();
    assert!(key.starts_with("lgk_"), "{stdout}");
    let id = stderr.split_whitespace().nth(1).unwrap().to_owned();
    assert_eq!(id.len(), 10, "{stderr}");
    (key, id)
}

fn invocations(log: &Path) -> usize {
    std::fs::read_to_string(log).map_or(0, |t| t.lines().count())
}

/// Status, JSON body and the response (for its headers).
async fn get(
    envoy: &EnvoyProcess,
    path: &str,
    key: Option<&str>,
) -> (u16, Value, lambdagate_harness::http::Response) {
    let headers: Vec<(&str, &str)> = key.map(|k| ("x-api-key", k)).into_iter().collect();
    let r = envoy.send("GET", path, &headers, b"").await;
    let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status, body, r)
}

/// A refusal as API Gateway gives it: the status, `{"message", "requestId"}`
/// with the request id of the response.
fn assert_refused(
    (status, body, response): &(u16, Value, lambdagate_harness::http::Response),
    want_status: u16,
    message: &str,
) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(body["message"], message, "{body}");
    let id = response.header("x-request-id").unwrap();
    assert_eq!(body["requestId"], id, "{body}");
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{:?}",
        response.headers
    );
}

const PLANS: &str = r#"    keys_refresh_ms: 200
    plans:
      - name: gold
        rate: 1000
        burst: 1000
        apis: [shop]
        throttle:
          - {api: shop, verb: GET, uri_template: "/slow/{id}", rate: 1, burst: 2}
      - name: tiny
        rate: 1000
        burst: 1000
        quota: {limit: 3, period: day}
        apis: [shop]
"#;

#[tokio::test]
async fn api_keys_plans_and_quotas_are_checked_in_the_filters_call() {
    keys_plans_and_quotas(None).await;
}

#[tokio::test]
async fn api_keys_plans_and_quotas_are_enforced_by_envoys_rate_limit_filter() {
    keys_plans_and_quotas(Some("rate_limit_filter")).await;
}

/// The same user-visible contract whoever checks the key
/// (`gateway.usage_check`; `None`: the default).
async fn keys_plans_and_quotas(usage_check: Option<&str>) {
    let Shop {
        _dir,
        ports,
        log,
        out,
    } = shop(PLANS, |_, text| match usage_check {
        Some(check) => text.replacen(
            "  usage:\n",
            &format!("  usage_check: {check}\n  usage:\n"),
            1,
        ),
        None => text,
    });
    let invoker_yaml = std::fs::read_to_string(out.join("invoker.yaml")).unwrap();
    assert!(invoker_yaml.contains("usage:"), "{invoker_yaml}");
    // Who checks: Envoy's rate-limit filter (and then the filter must not
    // ask again), or the filter's own call (one hop, no second filter).
    let bootstrap = std::fs::read_to_string(out.join("envoy.yaml")).unwrap();
    let filter_config = std::fs::read_to_string(out.join("ecds/lambdagate.yaml")).unwrap();
    let envoy_checks = usage_check == Some("rate_limit_filter");
    assert_eq!(
        bootstrap.contains("envoy.filters.http.ratelimit"),
        envoy_checks,
        "{bootstrap}"
    );
    assert_eq!(
        filter_config.contains("api_key_required"),
        !envoy_checks,
        "{filter_config}"
    );

    let (gold, gold_id) = create_key(&out, "gold", "alice");
    let (tiny, tiny_id) = create_key(&out, "tiny", "bob");
    // The store holds hashes, never a key.
    let stored = std::fs::read_to_string(out.join("usage/keys.json")).unwrap();
    assert!(
        stored.contains(&gold_id) && !stored.contains(&gold[4..]),
        "{stored}"
    );

    let (invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;

    // No key, an unknown key: 403, nothing invoked.
    let before = invocations(&log);
    assert_refused(&get(&envoy, "/shop/items/1", None).await, 403, "Forbidden");
    let unknown = "lgk_0000000000000000000000000000000000000000000000000000000000000000";
    assert_refused(
        &get(&envoy, "/shop/items/1", Some(unknown)).await,
        403,
        "Forbidden",
    );
    assert_eq!(invocations(&log), before);

    // A good key: the function runs. The open resource needs none.
    let (status, body, _) = get(&envoy, "/shop/items/1", Some(&gold)).await;
    assert_eq!(status, 200, "{body}\n{}", envoy.logs());
    assert_eq!(invocations(&log), before + 1);
    let (status, _, _) = get(&envoy, "/shop/open", None).await;
    assert_eq!(status, 200);

    // Method throttling: /slow allows 2 at once, then 1 per second.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&envoy, "/shop/slow/1", Some(&gold)).await);
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200);
    assert_refused(&statuses[2], 429, "Too Many Requests");
    assert_eq!(statuses[2].2.header("retry-after"), Some("1"));
    // The plan's own bucket is another: /items still answers.
    assert_eq!(get(&envoy, "/shop/items/2", Some(&gold)).await.0, 200);

    // The quota: 3 a day, then 429 Limit Exceeded until midnight UTC.
    for _ in 0..3 {
        assert_eq!(get(&envoy, "/shop/items/3", Some(&tiny)).await.0, 200);
    }
    let before = invocations(&log);
    let over = get(&envoy, "/shop/items/3", Some(&tiny)).await;
    assert_refused(&over, 429, "Limit Exceeded");
    let retry: u64 = over.2.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "{retry}");
    assert_eq!(invocations(&log), before);

    // Hostile keys: one far too long (Envoy's header limit or ours), many
    // unknown ones. None is stored, none gets a metric of its own.
    let long = "k".repeat(100 * 1024);
    let r = envoy
        .send("GET", "/shop/items/1", &[("x-api-key", &long)], b"")
        .await;
    assert!(r.status == 403 || r.status == 431, "{}", r.status);
    // Control characters in a key: Envoy's codec refuses the request (400)
    // or the key is unknown (403); never a pass, never a 5xx.
    for bad in ["lgk_\u{1}bad", "lgk_\u{7f}bad", "lgk_\tbad"] {
        let raw = format!(
            "GET /shop/items/1 HTTP/1.1\r\nhost: shop\r\nx-api-key: {bad}\r\nconnection: close\r\n\r\n"
        );
        let r = lambdagate_harness::faults::raw_exchange(
            &envoy.addr,
            raw.as_bytes(),
            4096,
            Duration::ZERO,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert!(r.status == 400 || r.status == 403, "{bad:?}: {}", r.status);
    }
    for i in 0..200 {
        let key = format!("lgk_{i:064x}");
        let (status, _, _) = get(&envoy, "/shop/items/1", Some(&key)).await;
        assert_eq!(status, 403);
    }
    let metrics = invoker.metrics().await;
    let usage_lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("lambdagate_usage_requests_total"))
        .collect();
    assert!(usage_lines.len() <= 6, "{usage_lines:#?}");
    assert!(
        usage_lines.iter().any(|l| l.contains(&format!(
            r#"plan="tiny",key_id="{tiny_id}",outcome="quota_exceeded""#
        ))),
        "{usage_lines:#?}"
    );
    assert!(!metrics.contains(&gold[4..]) && !metrics.contains(&tiny[4..]));
    assert!(!invoker.logs().contains(&gold[4..]));
    assert!(!envoy.logs().contains(&gold[4..]));

    // The access log names the limit.
    for outcome in ["invalid_api_key", "plan_throttled", "quota_exceeded"] {
        assert!(
            envoy.logs().contains(&format!("outcome={outcome}")),
            "{outcome}\n{}",
            envoy.logs()
        );
    }

    // Revoked: refused within the refresh time, others unaffected.
    keys(&out, &["revoke", &gold_id]);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, _, _) = get(&envoy, "/shop/items/1", Some(&gold)).await;
        if status == 403 {
            break;
        }
        assert!(Instant::now() < deadline, "the revoked key still opens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (listed, _) = keys(&out, &["list"]);
    assert!(
        listed.contains(&gold_id) && listed.contains("revoked"),
        "{listed}"
    );
    assert!(!listed.contains(&gold[4..]));

    // A restart of both processes does not hand out a fresh quota.
    drop(envoy);
    invoker.terminate();
    let mut invoker = invoker;
    invoker.wait_exit(Duration::from_secs(20)).await;
    drop(invoker);
    let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    assert_refused(
        &get(&envoy, "/shop/items/3", Some(&tiny)).await,
        429,
        "Limit Exceeded",
    );
}

#[tokio::test]
async fn a_plans_rate_holds_under_four_times_the_load() {
    // 50 req/s with a burst of 100, driven at 200 req/s for 10 s: the
    // token bucket allows 100 + 50 × 10 = 600.
    let plans = "    plans:\n      - {name: steady, rate: 50, burst: 100, apis: [shop]}\n";
    let Shop {
        _dir, ports, out, ..
    } = shop(plans, |_, text| text);
    let (key, _) = create_key(&out, "steady", "load");
    let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let addr = format!("127.0.0.1:{}", ports.listen);
    // One call answered before the clock starts: the load then meets a
    // warm stack. Without it, a first call held up (a loaded CI machine:
    // 1.4 s once) queued the load, and the bucket saw 10 s of it in 8.6 s.
    // It takes one token; the bucket refills while the load starts.
    let warm =
        lambdagate_harness::http::send(&addr, "GET", "/shop/items/1", &[("x-api-key", &key)], b"")
            .await
            .unwrap();
    assert_eq!(warm.status, 200, "{}", String::from_utf8_lossy(&warm.body));

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut calls = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        tick.tick().await;
        let (addr, key) = (addr.clone(), key.clone());
        calls.push(tokio::spawn(async move {
            lambdagate_harness::http::send(
                &addr,
                "GET",
                "/shop/items/1",
                &[("x-api-key", &key)],
                b"",
            )
            .await
            .map(|r| (r.status, String::from_utf8_lossy(&r.body).into_owned()))
        }));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut ok = 0;
    let mut throttled = 0;
    for call in calls {
        let (status, body) = call.await.unwrap().unwrap();
        match status {
            200 => ok += 1,
            429 => {
                assert!(body.contains("Too Many Requests"), "{body}");
                throttled += 1;
            }
            other => panic!("{other} {body}\n{}", envoy.logs()),
        }
    }
    let allowed = 100.0 + 50.0 * elapsed;
    assert!(
        (f64::from(ok) - allowed).abs() <= allowed * 0.10,
        "{ok} passed, the bucket allows {allowed:.0} in {elapsed:.1} s ({throttled} throttled)"
    );
    assert!(throttled > 1000, "{throttled}");
}

/// Debian's redis-server on a loopback port, with its append-only file in
/// `dir`, so a restart keeps keys and counts.
struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(dir: &Path, port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package; .ci/run installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test]
async fn two_replicas_share_one_quota_and_one_key_list_through_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis_dir = dir.path().join("redis");
    std::fs::create_dir_all(&redis_dir).unwrap();
    let mut redis = Redis::start(&redis_dir, free_port());
    let log = dir.path().join("integration.log");
    // Replica A fails open when Redis is gone (the default), B closed.
    let replica = |name: &str, failure: &str| {
        let ports = RenderedPorts::free();
        let api = dir.path().join(format!("{name}.yaml"));
        let usage = format!(
            "    store: {{redis: \"redis://127.0.0.1:{}/0\"}}\n    on_store_unavailable: {failure}\n    keys_refresh_ms: 200\n    plans:\n      - {{name: shared, rate: 1000, burst: 1000, quota: {{limit: 20, period: day}}, apis: [shop]}}\n",
            redis.port
        );
        std::fs::write(&api, definition(&log, &ports, &usage)).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        render(&api, &out);
        (ports, out)
    };
    let (ports_a, out_a) = replica("a", "allow");
    let (ports_b, out_b) = replica("b", "deny");
    // A key made through one replica's config is the fleet's.
    let (key, _) = create_key(&out_a, "shared", "fleet");
    let (other, _) = create_key(&out_b, "shared", "other");

    let start = async || {
        let a = start_rendered(BIN, &out_a, &[], &ports_a).await;
        let b = start_rendered(BIN, &out_b, &[], &ports_b).await;
        (a, b)
    };
    let ((inv_a, envoy_a), (inv_b, envoy_b)) = start().await;

    // 30 requests, two at a time, one to each replica: exactly 20 pass.
    // (Two at a time: each replica's local function runs one invocation
    // at once and answers a second with Lambda's own 429.)
    let before = invocations(&log);
    let mut ok = 0;
    for _ in 0..15 {
        let calls = [ports_a.listen, ports_b.listen].map(|port| {
            let key = key.clone();
            tokio::spawn(async move {
                lambdagate_harness::http::send(
                    &format!("127.0.0.1:{port}"),
                    "GET",
                    "/shop/items/1",
                    &[("x-api-key", &key)],
                    b"",
                )
                .await
                .unwrap()
            })
        });
        for call in calls {
            let r = call.await.unwrap();
            match r.status {
                200 => ok += 1,
                429 => assert!(r.text().contains("Limit Exceeded"), "{}", r.text()),
                s => panic!("{s} {}", r.text()),
            }
        }
    }
    assert_eq!(ok, 20);
    assert_eq!(invocations(&log), before + 20);

    // Every process restarted: the quota is still used, on both.
    drop((envoy_a, envoy_b, inv_a, inv_b));
    let ((inv_a, envoy_a), (inv_b, envoy_b)) = start().await;
    for envoy in [&envoy_a, &envoy_b] {
        assert_refused(
            &get(envoy, "/shop/items/1", Some(&key)).await,
            429,
            "Limit Exceeded",
        );
    }

    // Revoking a key under load: both replicas refuse it within the
    // refresh time; the other key still passes.
    let (_, id) = keys(&out_b, &["list"])
        .0
        .lines()
        .find(|l| l.contains("fleet"))
        .map(|l| ((), l.split_whitespace().next().unwrap().to_owned()))
        .unwrap();
    keys(&out_a, &["revoke", &id]);
    let deadline = Instant::now() + Duration::from_secs(3);
    for envoy in [&envoy_a, &envoy_b] {
        loop {
            if get(envoy, "/shop/items/1", Some(&key)).await.0 == 403 {
                break;
            }
            assert!(Instant::now() < deadline, "revoked key still opens");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(get(envoy, "/shop/items/1", Some(&other)).await.0, 200);
    }

    // Redis gone: A lets the known key through, B answers 503; neither
    // waits longer than its bound.
    redis.kill();
    for (envoy, want) in [(&envoy_a, 200), (&envoy_b, 503)] {
        let started = Instant::now();
        let answer = get(envoy, "/shop/items/1", Some(&other)).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        if want == 503 {
            assert_refused(&answer, 503, "Service Unavailable");
        } else {
            assert_eq!(answer.0, 200, "{}", answer.1);
        }
    }
    // Redis back (its append-only file keeps keys and counts): counting
    // again, the quota's count intact.
    let redis = Redis::start(&redis.dir.clone(), redis.port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(&envoy_b, "/shop/items/1", Some(&other)).await;
        if r.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "B did not recover: {}", r.1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(redis);
    let _ = (inv_a, inv_b);
}

/// 100,000 distinct unknown keys, 32 at a time over HTTP/2: every one is
/// refused, none is stored, none gets a metric label of its own, and the
/// invoker's memory does not grow with them (a key that left anything
/// behind, at ~100 bytes each, would show as 10 MB).
#[tokio::test]
async fn a_hundred_thousand_unknown_keys_leave_nothing_behind() {
    use lambdagate_harness::faults::{H2Connection, rss_kib};
    const KEYS: usize = 100_000;
    const CONNECTIONS: usize = 4;
    const PER_CONNECTION: usize = 8;
    let Shop {
        _dir,
        ports,
        log,
        out,
    } = shop(PLANS, |_, text| text);
    let (gold, _) = create_key(&out, "gold", "frank");
    let (invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    assert_eq!(get(&envoy, "/shop/items/1", Some(&gold)).await.0, 200);
    let stored =
        || ["keys.json", "counters.json"].map(|f| std::fs::read(out.join("usage").join(f)).ok());

    // Sends keys `from..to` (each `lgk_` + 64 hex digits, all distinct):
    // how many were refused with 403.
    let send = async |from: usize, to: usize| -> usize {
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let connection = H2Connection::connect(&envoy.addr).await.unwrap();
            for t in 0..PER_CONNECTION {
                let connection = connection.clone();
                let lane = c * PER_CONNECTION + t;
                tasks.push(tokio::spawn(async move {
                    let mut refused = 0;
                    for i in (from + lane..to).step_by(CONNECTIONS * PER_CONNECTION) {
                        let request = http::Request::get("http://shop/shop/items/1")
                            .header("x-api-key", format!("lgk_{i:064x}"))
                            .body(http_body_util::Full::new(bytes::Bytes::new()))
                            .unwrap();
                        let r = connection
                            .send(request, Duration::from_secs(10))
                            .await
                            .unwrap();
                        assert_eq!(r.status, 403, "{}", r.text());
                        refused += 1;
                    }
                    refused
                }));
            }
        }
        let mut refused = 0;
        for task in tasks {
            refused += task.await.unwrap();
        }
        refused
    };
    // Warm up (the allocator's pools, Envoy's connections), then measure.
    assert_eq!(send(KEYS, KEYS + 5_000).await, 5_000);
    let (rss_before, files_before) = (rss_kib(invoker.pid()).unwrap(), stored());
    assert_eq!(send(0, KEYS).await, KEYS);
    let rss_after = rss_kib(invoker.pid()).unwrap();
    eprintln!("invoker RSS: {rss_before} KiB before {KEYS} unknown keys, {rss_after} KiB after");
    assert!(
        rss_after < rss_before + 4 * 1024,
        "the invoker grew from {rss_before} KiB to {rss_after} KiB over {KEYS} unknown keys"
    );
    // Nothing stored (the folder saves within a second of a change).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(stored(), files_before);
    let metrics = invoker.metrics().await;
    let series = metrics
        .lines()
        .filter(|l| l.starts_with("lambdagate_usage_requests_total"))
        .count();
    assert!(series <= 3, "{metrics}");
    assert_eq!(invocations(&log), 1);
    // The good key still passes.
    assert_eq!(get(&envoy, "/shop/items/1", Some(&gold)).await.0, 200);
}

/// API Gateway's `apiKeySource: AUTHORIZER`: the Lambda authorizer's
/// `usageIdentifierKey` is the key; a client's own `x-api-key` is not
/// read. The authorizer's answer is cached, its key with it, and every
/// request still takes from the plan.
#[tokio::test]
async fn an_authorizers_usage_identifier_key_picks_the_plan() {
    let Shop {
        _dir,
        ports,
        log,
        out,
    } = shop(PLANS, |log, text| {
        text.replacen(
            "api_key_required: true\n",
            "api_key_required: true\napi_key_source: authorizer\nauthorizers:\n  - {name: tokens, type: token, arn: \"arn:aws:lambda:us-east-1:000000000000:function:authorizer\"}\nauthorizer: tokens\n",
            1,
        )
        .replacen(
            "  functions:\n",
            &format!(
                "  functions:\n{}",
                powertools_function("authorizer", "handler", log)
            ),
            1,
        )
    });
    let (tiny, tiny_id) = create_key(&out, "tiny", "carol");
    let (gold, _) = create_key(&out, "gold", "dave");
    let (invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let call = async |token: &str, header_key: Option<&str>| {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(header_key.map(|k| ("x-api-key", k)));
        let r = envoy.send("GET", "/shop/items/1", &headers, b"").await;
        let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        (r.status, body, r)
    };
    let integrations = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "integration")
            .count()
    };

    // The authorizer names no key: 403, even with a good x-api-key.
    assert_refused(&call("allow", Some(&gold)).await, 403, "Forbidden");
    // It names an unknown key: 403.
    let unknown = format!("key:lgk_{}", "0".repeat(64));
    assert_refused(&call(&unknown, None).await, 403, "Forbidden");
    assert_eq!(integrations(), 0);
    // It names a key: that key's plan counts, 3 a day; the fourth is
    // refused, though the authorizer's answer now comes from its cache.
    let token = format!("key:{tiny}");
    for i in 0..3 {
        let (status, body, _) = call(&token, None).await;
        assert_eq!(status, 200, "call {i}: {body}\n{}", envoy.logs());
        assert_eq!(body["authorizer"]["principalId"], "user-with-key", "{body}");
    }
    assert_refused(&call(&token, None).await, 429, "Limit Exceeded");
    assert_eq!(integrations(), 3);
    let authorizer_calls = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| *l == "authorizer")
        .count();
    assert!(
        authorizer_calls < 6,
        "the authorizer's answer was not cached: {authorizer_calls} calls"
    );
    let metrics = invoker.metrics().await;
    assert!(
        metrics.contains(&format!(
            r#"lambdagate_usage_requests_total{{plan="tiny",key_id="{tiny_id}",outcome="allowed"}} 3"#
        )),
        "{metrics}"
    );
    assert!(!metrics.contains(&tiny[4..]) && !invoker.logs().contains(&tiny[4..]));
}

/// The key check through the invoker's gRPC API, as any caller of
/// `Invoke` meets it: typed refusals (the kind in the reply, or in the
/// status's trailer), nothing invoked, and a clear INVALID_CONFIG when
/// the check cannot be made.
#[tokio::test]
async fn the_invokers_grpc_api_checks_a_key_before_invoking() {
    use lambdagate_proto::{ErrorKind, InvocationType, UsageCheck};
    let Shop {
        _dir,
        ports,
        log,
        out,
    } = shop(PLANS, |_, text| text);
    let (tiny, _) = create_key(&out, "tiny", "erin");
    let (invoker, _envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let mut client = invoker.client().await;
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:integration";
    let request = |path: &str, key: &str, in_reply: bool| {
        let mut r = lambdagate_harness::invoke_request(
            "local",
            arn,
            br#"{"requestContext": {}}"#,
            10_000,
            InvocationType::RequestResponse,
        );
        r.failure_in_reply = in_reply;
        r.usage = Some(UsageCheck {
            method: "GET".into(),
            path: path.into(),
            api_key: key.into(),
        });
        r
    };

    // No key: a status with its kind in the trailer, or the kind in the
    // reply; nothing invoked.
    let status = client
        .invoke(request("/shop/items/1", "", false))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert_eq!(
        lambdagate_proto::error_kind(&status),
        ErrorKind::InvalidApiKey
    );
    let reply = client
        .invoke(request("/shop/items/1", "lgk_unknown", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error_kind, ErrorKind::InvalidApiKey as i32);
    assert_eq!(invocations(&log), 0);

    // A good key: invoked; past the quota: QUOTA_EXCEEDED with when.
    for _ in 0..3 {
        let reply = client
            .invoke(request("/shop/items/1", &tiny, true))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.error_kind, 0, "{}", reply.error_message);
    }
    let reply = client
        .invoke(request("/shop/items/1", &tiny, true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.error_kind, ErrorKind::QuotaExceeded as i32);
    assert!(
        (1..=86_400).contains(&reply.retry_after_seconds),
        "{reply:?}"
    );
    assert!(!reply.error_message.contains(&tiny[4..]), "{reply:?}");
    assert_eq!(invocations(&log), 3);

    // A check for a path the usage section says is open: the configs
    // disagree, and the invoker says so instead of letting it pass.
    let refused = |status: tonic::Status, words: &str| {
        assert_eq!(
            lambdagate_proto::error_kind(&status),
            ErrorKind::InvalidConfig
        );
        assert!(status.message().contains(words), "{status:?}");
    };
    let status = client.invoke(request("/shop/open", &tiny, false)).await;
    refused(status.unwrap_err(), "same API definition");
    assert_eq!(invocations(&log), 3);

    // An invoker without a `usage` section cannot check: INVALID_CONFIG.
    let plain = lambdagate_harness::InvokerProcess::start(
        BIN,
        &format!(
            "endpoints:\n  local:\n    access_method: local\n    region: us-east-1\n    functions:\n{}",
            powertools_function("integration", "integration", &log)
        ),
        &[],
        "info",
    )
    .await;
    let status = plain
        .client()
        .await
        .invoke(request("/shop/items/1", &tiny, false))
        .await;
    refused(status.unwrap_err(), "no `usage` section");
    assert_eq!(invocations(&log), 3);
}

#[test]
fn bad_usage_settings_are_refused_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let log = dir.path().join("integration.log");
    let api = dir.path().join("shop.yaml");
    let good = "    plans:\n      - {name: basic, rate: 10, burst: 20, apis: [shop]}\n";
    let cases = [
        // Keys without plans.
        (
            definition(&log, &ports, "").replace("  usage:\n", ""),
            "api_key_required: API keys need usage plans",
        ),
        (
            definition(&log, &ports, &good.replace("[shop]", "[nope]")),
            "gateway.usage.plans[0].apis[0]: no API is named `nope`",
        ),
        (
            definition(&log, &ports, &good.replace("rate: 10", "rate: 0")),
            "gateway.usage.plans[0].rate: must be more than 0",
        ),
        (
            definition(&log, &ports, &good.replace("burst: 20", "burst: 0")),
            "gateway.usage.plans[0].burst: must be at least 1",
        ),
        (
            definition(
                &log,
                &ports,
                &format!("    store: {{redis: \"http://x\"}}\n{good}"),
            ),
            "gateway.usage.store.redis: must be a redis:// or rediss:// URL",
        ),
        (
            definition(
                &log,
                &ports,
                &format!("    on_store_unavailable: maybe\n{good}"),
            ),
            "on_store_unavailable",
        ),
        // The key from an authorizer that is not there.
        (
            definition(&log, &ports, good).replacen(
                "api_key_required: true\n",
                "api_key_required: true\napi_key_source: authorizer\n",
                1,
            ),
            "api_key_source is `authorizer`",
        ),
        // The authorizer's key where Envoy's rate-limit filter checks
        // keys: it runs before the authorizer.
        (
            definition(&log, &ports, good)
                .replacen(
                    "api_key_required: true\n",
                    "api_key_required: true\napi_key_source: authorizer\nauthorizers:\n  - {name: t, type: token, arn: \"arn:aws:lambda:us-east-1:000000000000:function:integration\"}\nauthorizer: t\n",
                    1,
                )
                .replacen("  usage:\n", "  usage_check: rate_limit_filter\n  usage:\n", 1),
            "api_key_source: `authorizer` needs gateway.usage_check: in_call",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&api, &text).unwrap();
        let out = Command::new(BIN)
            .args(["render", "--out"])
            .arg(dir.path().join("out"))
            .arg(&api)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{expected}: rendered");
        assert!(
            stderr.contains(&api.display().to_string()) && stderr.contains(expected),
            "{expected}\n{stderr}"
        );
    }
}

#[tokio::test]
async fn the_gateways_and_an_apis_own_throttles_hold_per_instance() {
    // (setting, where it goes): an API's own throttle, then the gateway's.
    let cases = [
        ("throttle: {rate: 1, burst: 2}\n", "api"),
        ("  throttle: {rate: 1, burst: 2}\n", "gateway"),
    ];
    for (setting, place) in cases {
        let plans = "    plans:\n      - {name: basic, rate: 100, burst: 100, apis: [shop]}\n";
        let Shop {
            _dir,
            ports,
            log,
            out,
        } = shop(plans, |_, text| {
            if place == "api" {
                text.replacen(
                    "api_key_required: true\n",
                    &format!("api_key_required: true\n{setting}"),
                    1,
                )
            } else {
                text.replacen("  usage:\n", &format!("{setting}  usage:\n"), 1)
            }
        });
        let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
        let before = invocations(&log);
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(get(&envoy, "/shop/open", None).await);
        }
        assert_eq!(answers[0].0, 200, "{place}: {}", answers[0].1);
        assert_eq!(answers[1].0, 200, "{place}: {}", answers[1].1);
        assert_refused(&answers[2], 429, "Too Many Requests");
        assert_eq!(answers[2].2.header("retry-after"), Some("1"), "{place}");
        assert_eq!(
            invocations(&log),
            before + 2,
            "{place}: a throttled request was invoked"
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        while !envoy.logs().contains("outcome=gateway_throttled") {
            assert!(
                Instant::now() < deadline,
                "{place}: no access-log line\n{}",
                envoy.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
