//! CORS through real Envoy: render puts Envoy's own CORS filter first in
//! the chain with each API's policy on its route. Preflights are answered
//! by Envoy (the function counts its invocations, so "nothing invoked" is
//! checked where it happens), even on a resource that needs an API key;
//! responses carry the policy's headers once, replacing a function's own.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use lambdagate_harness::{
    RenderedPorts, StaticFiles, powertools_function, render_apis, repo_root, start_rendered, venv,
};

const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");
const APP: &str = "http://app.test:5173";

/// The `shop` API with a CORS policy for `origin`; its functions count
/// their invocations in `log`.
fn definition(origin: &str, ports: &RenderedPorts, log: &std::path::Path) -> String {
    format!(
        r#"name: shop
version: v1
context: /shop
payload_format: v2
cors:
  allow_origins: ["{origin}"]
  allow_headers: [content-type, x-api-key]
  expose_headers: [x-request-id]
  allow_credentials: true
  max_age_seconds: 600
endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
{integration}{own_cors}resources:
  - verb: GET
    uri_template: /items/{{id}}
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
  - verb: POST
    uri_template: /items/{{id}}
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
    api_key_required: true
  - verb: GET
    uri_template: /own
    arn: arn:aws:lambda:us-east-1:000000000000:function:own-cors
gateway:
{gateway}  usage:
    plans: [{{name: basic, rate: 100, burst: 100, apis: [shop]}}]
"#,
        integration = powertools_function("integration", "integration", log),
        own_cors = powertools_function("own-cors", "own_cors", log),
        gateway = ports.gateway_keys(),
    )
}

#[tokio::test]
async fn envoys_cors_filter_answers_preflights_and_stamps_responses() {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let log = dir.path().join("integration.log");
    let api = dir.path().join("shop.yaml");
    std::fs::write(&api, definition(APP, &ports, &log)).unwrap();
    let out = dir.path().join("out");
    render_apis(BIN, &out, &[&api]);
    let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let count = || std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());

    // A preflight from a listed origin, for the keyed POST: Envoy answers,
    // without a key, and nothing is invoked.
    let preflight = |origin: &'static str| {
        [
            ("origin", origin),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-api-key"),
        ]
    };
    let before = count();
    let r = envoy
        .send("OPTIONS", "/shop/items/1", &preflight(APP), b"")
        .await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.logs());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("x-api-key")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    // Another origin: no CORS headers, so a browser blocks the call.
    let r = envoy
        .send(
            "OPTIONS",
            "/shop/items/1",
            &preflight("http://evil.test"),
            b"",
        )
        .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        None,
        "{:?}",
        r.headers
    );
    assert_eq!(count(), before, "a preflight invoked a function");

    // An actual call from the listed origin: the policy's headers; from
    // another: none.
    let r = envoy
        .send("GET", "/shop/items/1", &[("origin", APP)], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        r.header("access-control-expose-headers"),
        Some("x-request-id")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    let r = envoy
        .send(
            "GET",
            "/shop/items/1",
            &[("origin", "http://evil.test")],
            b"",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // The gateway's own answers carry them too (a 403 for a missing key),
    // so a browser can read the error.
    let r = envoy
        .send("POST", "/shop/items/1", &[("origin", APP)], b"{}")
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some(APP));

    // A function's own CORS header is replaced by the policy's, not doubled.
    let r = envoy
        .send("GET", "/shop/own", &[("origin", APP)], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header_all("access-control-allow-origin"), vec![APP]);
}

#[tokio::test]
async fn a_page_on_another_origin_may_call_the_api_in_a_real_browser_only_when_listed() {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let (listed_port, other_port) = (
        lambdagate_harness::free_port(),
        lambdagate_harness::free_port(),
    );
    let listed = format!("http://127.0.0.1:{listed_port}");
    let log = dir.path().join("integration.log");
    let api = dir.path().join("shop.yaml");
    std::fs::write(&api, definition(&listed, &ports, &log)).unwrap();
    let out = dir.path().join("out");
    render_apis(BIN, &out, &[&api]);
    let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;

    // The same page on both origins: a fetch with a header of its own, so
    // the browser asks Envoy first (a preflight).
    let pages = dir.path().join("pages");
    std::fs::create_dir_all(&pages).unwrap();
    std::fs::write(
        pages.join("call.html"),
        format!(
            r#"<!doctype html><title>waiting</title><script>
fetch("http://127.0.0.1:{listen}/shop/items/1", {{headers: {{"x-api-key": "not-needed-here"}}}})
  .then(async r => {{ document.title = "ok " + r.status + " " + (await r.text()); }})
  .catch(e => {{ document.title = "blocked " + e; }});
</script>"#,
            listen = ports.listen
        ),
    )
    .unwrap();
    let _listed_server = StaticFiles::serve(&pages, listed_port);
    let _other_server = StaticFiles::serve(&pages, other_port);

    let browser = tokio::process::Command::new(venv().join("bin/python"))
        .arg(repo_root().join("tests/browser/cors_test.py"))
        .args(["--allowed", &format!("{listed}/call.html")])
        .args([
            "--blocked",
            &format!("http://127.0.0.1:{other_port}/call.html"),
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(90), browser)
        .await
        .expect("the browser test did not finish within 90 s")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}\nenvoy:\n{}", envoy.logs());
    assert!(text.contains("ok: listed origin"), "{text}");
}
