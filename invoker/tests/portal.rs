//! The developer portal, through the real stack: four APIs (published,
//! deprecated, created, retired) rendered by `lambdagate render`, served
//! by the real invoker (its admin server holds the portal) and real Envoy
//! (which routes `/portal/` there), the functions run by the invoker (the
//! Rust sample on `lambda_http`).
//!
//! - A real headless Chromium (tests/browser/portal_test.py, Selenium)
//!   opens the portal, sees the published and deprecated APIs and not the
//!   others, opens the console, tries `GET /hello/{name}` and reads the
//!   function's answer; the page asks no other host.
//! - Over plain HTTP: security headers, no way out of the portal folder,
//!   an API at `/` does not swallow the portal, and a re-render changes
//!   the list with no restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::BIN;
use lambdagate_harness::{
    EnvoyProcess, InvokerProcess, RenderedPorts, filter_wasm, hello_rust, repo_root,
    start_rendered, venv,
};
use serde_json::json;

const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:hello-rust";

/// The endpoint every API shares (identical in each file, as render
/// requires): the Rust sample, run by the invoker.
fn endpoint() -> String {
    format!(
        "endpoint:\n  name: local\n  access_method: local\n  region: us-east-1\n  functions:\n    - name: hello-rust\n      command: [\"{}\"]\n      timeout_seconds: 10\n    - name: hello-authorizer\n      command: [\"{}\", -m, awslambdaric, app.handler]\n      working_dir: \"{}\"\n      timeout_seconds: 10\n",
        hello_rust().display(),
        venv().join("bin/python").display(),
        repo_root()
            .join("examples/functions/hello-authorizer")
            .display(),
    )
}

/// The demo API's authorizer: the demo's Python TOKEN authorizer, which
/// accepts `Bearer demo-token`.
const AUTHORIZER: &str = "authorizers:\n  - name: demo-token\n    type: token\n    arn: arn:aws:lambda:us-east-1:000000000000:function:hello-authorizer\n";

fn api(name: &str, context: &str, lifecycle: &str, extra: &str, resources: &str) -> String {
    format!(
        "name: {name}\nversion: v1\ncontext: {context}\nlifecycle: {lifecycle}\n{extra}{endpoint}resources:\n{resources}",
        endpoint = endpoint()
    )
}

fn hello(verb_path: &[(&str, &str)]) -> String {
    verb_path
        .iter()
        .map(|(verb, path)| format!("  - verb: {verb}\n    uri_template: {path}\n    arn: {ARN}\n"))
        .collect()
}

/// Writes the four definitions; `legacy_state` is the `legacy` API's.
fn write_definitions(dir: &Path, p: &RenderedPorts, legacy_state: &str) -> Vec<PathBuf> {
    let gateway = format!(
        "gateway:\n  listen: 127.0.0.1:{}\n  admin: 127.0.0.1:{}\n  invoker: 127.0.0.1:{}\n  invoker_admin: 127.0.0.1:{}\n  wasm: {}\n",
        p.listen,
        p.admin,
        p.invoker,
        p.invoker_admin,
        filter_wasm().display()
    );
    let legacy_extra = if legacy_state == "deprecated" {
        "deprecated_on: 2026-01-15\nsunset: 2026-12-31\n"
    } else {
        ""
    };
    let files = [
        (
            "demo.yaml",
            api(
                "demo",
                "/demo",
                "published",
                &format!(
                    "description: Greets you by name from a Lambda function written in Rust.\n{AUTHORIZER}"
                ),
                &(hello(&[("GET", "/hello/{name}"), ("POST", "/echo")])
                    + &hello(&[("GET", "/private/{name}")])
                    + "    authorizer: demo-token\n"
                    + &hello(&[("GET", "/keyed/{name}")])
                    + "    api_key_required: true\n"),
            ) + &gateway
                + "  usage:\n    keys_refresh_ms: 200\n    plans:\n      - {name: portal, rate: 1, burst: 2, apis: [demo]}\n",
        ),
        (
            "legacy.yaml",
            api(
                "legacy",
                "/legacy",
                legacy_state,
                &format!("description: The first greeting API.\n{legacy_extra}"),
                &hello(&[("GET", "/hello/{name}")]),
            ),
        ),
        // Deployed at `/` with a catch-all resource, but not listed: the
        // portal's route must still win over it.
        (
            "draft.yaml",
            api("draft", "/", "created", "", &hello(&[("ANY", "/{proxy+}")])),
        ),
        (
            "old.yaml",
            api(
                "old",
                "/old",
                "retired",
                "",
                &hello(&[("GET", "/hello/{name}")]),
            ),
        ),
    ];
    files
        .iter()
        .map(|(file, text)| {
            let path = dir.join(file);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

async fn render(apis: &[PathBuf], out: &Path) {
    let out_text = out.to_str().unwrap();
    let mut args: Vec<&str> = vec!["render", "--out", out_text, "--settle-ms", "0"];
    args.extend(apis.iter().map(|p| p.to_str().unwrap()));
    let output = tokio::process::Command::new(BIN)
        .args(&args)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "render failed: {}",
        common::output_text(&output)
    );
}

struct Stack {
    dir: tempfile::TempDir,
    ports: RenderedPorts,
    out: PathBuf,
    apis: Vec<PathBuf>,
    invoker: InvokerProcess,
    envoy: EnvoyProcess,
}

async fn start() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let apis = write_definitions(dir.path(), &ports, "deprecated");
    let out = dir.path().join("deploy");
    render(&apis, &out).await;
    let (invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    Stack {
        dir,
        ports,
        out,
        apis,
        invoker,
        envoy,
    }
}

/// The names the portal's list shows (`data-api` of each entry).
fn listed(html: &str) -> Vec<String> {
    html.split("data-api=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_person_opens_the_portal_and_calls_a_function_from_its_console_in_a_real_browser() {
    let s = start().await;
    let portal = format!("http://{}/portal/", s.envoy.addr);
    let screenshots = match std::env::var_os("LAMBDAGATE_SCREENSHOTS") {
        Some(v) if v == "1" => repo_root().join("docs"),
        _ => repo_root().join("target/test-artifacts/portal"),
    };
    // A key of the demo API's plan, made as an operator makes one.
    let made = std::process::Command::new(BIN)
        .args(["keys", "create", "--plan", "portal", "--config"])
        .arg(s.out.join("invoker.yaml"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", common::output_text(&made));
    let key = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await; // the invoker reads keys every 200 ms
    let started = Instant::now();
    let mut browser = tokio::process::Command::new(venv().join("bin/python"));
    browser
        .arg(repo_root().join("tests/browser/portal_test.py"))
        .args(["--portal", &portal])
        .args([
            "--listed",
            "demo:published",
            "--listed",
            "legacy:deprecated",
        ])
        .args(["--hidden", "draft", "--hidden", "old"])
        .args(["--try", "demo", "--name", "Portal"])
        .args([
            "--protected",
            "/private/{name}",
            "--token",
            "Bearer demo-token",
        ])
        .args(["--keyed", "/keyed/{name}", "--key", &key])
        .arg("--screenshots")
        .arg(&screenshots)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), browser.output())
        .await
        .expect("the browser test did not finish within 90 s")
        .unwrap();
    let text = common::output_text(&output);
    assert!(
        output.status.success(),
        "browser test failed (screenshots in {}):\n{text}\ninvoker:\n{}\nenvoy:\n{}",
        screenshots.display(),
        s.invoker.logs(),
        s.envoy.logs()
    );
    assert!(text.contains("ok: listed"), "{text}");
    assert!(text.contains("authorized"), "{text}");
    assert!(text.contains("429 past the plan"), "{text}");
    for shot in [
        "portal.png",
        "portal-try-it.png",
        "portal-authorized.png",
        "portal-keyed.png",
    ] {
        let bytes = std::fs::read(screenshots.join(shot)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{shot}: {} bytes",
            bytes.len()
        );
    }
    eprintln!("{text}browser run: {:?}", started.elapsed());
    // The console's call reached the function through Envoy (its access
    // log is flushed about once a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s
        .envoy
        .logs()
        .contains("\"GET /demo/hello/Portal HTTP/1.1\" 200")
    {
        assert!(Instant::now() < deadline, "{}", s.envoy.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_portal_is_served_safely_and_follows_a_rerender_without_a_restart() {
    let s = start().await;
    let envoy = &s.envoy;

    // The list, through Envoy, with its security headers.
    let r = envoy.send("GET", "/portal/", &[], b"").await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), envoy.logs());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(listed(&r.text()), ["demo", "legacy"], "{}", r.text());
    // The demo API's entry says it needs a key and names its plan.
    assert!(
        r.text()
            .contains("usage plan: portal: 1 requests a second (2 at once)"),
        "{}",
        r.text()
    );
    assert!(
        r.text()
            .contains("Greets you by name from a Lambda function written in Rust."),
        "the description is shown"
    );
    assert!(r.text().contains("<code>/demo/hello/{name}</code>"));
    assert!(
        r.text()
            .contains("Deprecated since 2026-01-15; it stops answering on 2026-12-31.")
    );
    // `/portal` leads to the list.
    let r = envoy.send("GET", "/portal", &[], b"").await;
    assert_eq!(r.status, 301, "{}", r.text());
    assert!(r.header("location").unwrap().ends_with("/portal/"));

    // Each listed API's OpenAPI document; "try it" stays on this origin.
    let r = envoy
        .send("GET", "/portal/api-demo.openapi.json", &[], b"")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.json();
    assert_eq!(doc["servers"][0]["url"], "/demo");
    assert_eq!(doc["info"]["x-lifecycle"], "published");
    // The authorizer's credential, as the console's Authorize asks for it;
    // only the guarded operation requires it.
    let scheme = &doc["components"]["securitySchemes"]["demo-token.header.Authorization"];
    assert_eq!(
        (&scheme["type"], &scheme["in"]),
        (&json!("apiKey"), &json!("header"))
    );
    assert_eq!(
        doc["paths"]["/private/{name}"]["get"]["security"],
        json!([{"demo-token.header.Authorization": []}])
    );
    assert_eq!(doc["paths"]["/hello/{name}"]["get"]["security"], json!([]));
    let r = envoy
        .send("GET", "/portal/api-legacy.openapi.json", &[], b"")
        .await;
    assert_eq!(
        r.json()["paths"]["/hello/{name}"]["get"]["deprecated"],
        true
    );
    // Both documents pass the OpenAPI validator the `openapi` command's
    // test uses (relative server, deprecated operations, patterns).
    for api in ["demo", "legacy"] {
        let r = envoy
            .send("GET", &format!("/portal/api-{api}.openapi.json"), &[], b"")
            .await;
        let file = s.dir.path().join(format!("{api}.json"));
        std::fs::write(&file, &r.body).unwrap();
        let out = std::process::Command::new(venv().join("bin/openapi-spec-validator"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{api}: {}", common::output_text(&out));
    }
    for hidden in ["draft", "old"] {
        let r = envoy
            .send("GET", &format!("/portal/api-{hidden}.html"), &[], b"")
            .await;
        assert_eq!(r.status, 404, "{hidden}: {}", r.text());
    }
    let r = envoy
        .send("GET", "/portal/console/swagger-ui-bundle.js", &[], b"")
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // The API at `/` (created) still answers everywhere else.
    let r = envoy.send("GET", "/anything/here", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["pathParameters"]["proxy"], "anything/here");

    // No way out of the portal folder, through Envoy or at the admin
    // server itself; not even through a symbolic link placed inside it.
    let secret = s.out.join("invoker.yaml");
    std::os::unix::fs::symlink(&secret, s.out.join("portal/leak.html")).unwrap();
    for path in [
        "/portal/../invoker.yaml",
        "/portal/%2e%2e/invoker.yaml",
        "/portal/..%2finvoker.yaml",
        "/portal/console/../../invoker.yaml",
        "/portal/console/%2e%2e/%2e%2e/invoker.yaml",
        "/portal/.%2e/invoker.yaml",
        "/portal/leak.html",
        "/portal//etc/passwd",
    ] {
        for (via, addr) in [("envoy", &envoy.addr), ("admin", &s.invoker.admin)] {
            let r = lambdagate_harness::http::send(addr, "GET", path, &[], b"")
                .await
                .unwrap();
            // Envoy normalizes a path before routing it, so a spelling
            // that climbs out of /portal/ is no longer a portal request:
            // it reaches the API at `/` (the function answers), never a
            // file outside the portal folder.
            let left_the_portal = via == "envoy"
                && r.status == 200
                && serde_json::from_slice::<serde_json::Value>(&r.body).is_ok_and(|b| {
                    b["function"] == "hello-rust"
                        && b["path"].as_str().is_some_and(|p| !p.contains(".."))
                });
            assert!(
                r.status == 404 || r.status == 400 || left_the_portal,
                "{via} {path}: {} {}",
                r.status,
                r.text()
            );
            assert!(!r.text().contains("endpoints:"), "{via} {path} leaked");
        }
    }
    // The admin server's own pages stay off the gateway.
    let r = envoy.send("GET", "/metrics", &[], b"").await;
    assert!(!r.text().contains("lambdagate_invocations_total"));

    // A re-render: legacy retires, draft is published. The list follows,
    // with no restart of either process.
    let invoker_pid = s.invoker.pid();
    let envoy_pid = envoy.pid();
    write_definitions(s.dir.path(), &s.ports, "retired");
    let draft = s.dir.path().join("draft.yaml");
    let text = std::fs::read_to_string(&draft).unwrap();
    std::fs::write(
        &draft,
        text.replace("lifecycle: created", "lifecycle: published"),
    )
    .unwrap();
    render(&s.apis, &s.out).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = envoy.send("GET", "/portal/", &[], b"").await;
        assert_eq!(r.status, 200, "{}", r.text());
        if listed(&r.text()) == ["demo", "draft"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the list did not change: {:?}",
            listed(&r.text())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = envoy
        .send("GET", "/portal/api-legacy.openapi.json", &[], b"")
        .await;
    assert_eq!(r.status, 404, "a retired API's document is removed");
    assert_eq!(s.invoker.pid(), invoker_pid);
    assert_eq!(envoy.pid(), envoy_pid, "Envoy was not restarted");
}

#[tokio::test]
async fn the_rendered_gateway_with_its_portal_route_validates_in_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let apis = write_definitions(dir.path(), &ports, "deprecated");
    let out = dir.path().join("deploy");
    render(&apis, &out).await;
    let bootstrap = std::fs::read_to_string(out.join("envoy.yaml")).unwrap();
    assert!(bootstrap.contains("envoy.config.route.v3.FilterConfig"));
    let output = std::process::Command::new(venv().join("bin/envoy"))
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(out.join("envoy.yaml"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", common::output_text(&output));
}

#[tokio::test]
async fn render_refuses_bad_portal_settings_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ports = RenderedPorts::free();
    let apis = write_definitions(dir.path(), &ports, "deprecated");
    let demo = std::fs::read_to_string(&apis[0]).unwrap();
    let cases = [
        (
            "  portal: {path: portal}\n",
            "demo.yaml: gateway.portal.path: `portal` is not a portal path: it starts and ends with `/`",
        ),
        (
            "  portal: {path: /legacy/}\n",
            "demo.yaml: gateway.portal.path: `/legacy/` contains the base path `/legacy` of API legacy",
        ),
        (
            "  portal: {console: no-such-folder}\n",
            "demo.yaml: gateway.portal.console: ",
        ),
        (
            "  portal: {enabled: yes-please}\n",
            "demo.yaml: gateway.portal.enabled: ",
        ),
    ];
    for (gateway_extra, expected) in cases {
        std::fs::write(&apis[0], format!("{demo}{gateway_extra}")).unwrap();
        let mut args = vec!["render".to_owned(), "--out".to_owned()];
        args.push(dir.path().join("out").display().to_string());
        args.extend(apis.iter().map(|p| p.display().to_string()));
        let output = std::process::Command::new(BIN)
            .args(&args)
            .output()
            .unwrap();
        let text = common::output_text(&output).replace(&format!("{}/", dir.path().display()), "");
        assert!(
            !output.status.success(),
            "{gateway_extra}: accepted\n{text}"
        );
        assert!(
            text.contains(expected),
            "{gateway_extra}: expected {expected:?} in:\n{text}"
        );
    }
    // The console folder named in the message, and what would fix it.
    std::fs::write(
        &apis[0],
        format!("{demo}  portal: {{console: no-such-folder}}\n"),
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["check", "--api"])
        .arg(&apis[0])
        .output()
        .unwrap();
    let text = common::output_text(&output);
    assert!(
        text.contains("no-such-folder is not a swagger-ui-dist folder")
            && text.contains("run scripts/setup")
            && text.contains("gateway.portal.enabled: false"),
        "{text}"
    );

    // Switched off: no portal files, no route, no portal_dir.
    std::fs::write(&apis[0], format!("{demo}  portal: {{enabled: false}}\n")).unwrap();
    let out = dir.path().join("off");
    render(&apis, &out).await;
    assert!(!out.join("portal").exists());
    let bootstrap = std::fs::read_to_string(out.join("envoy.yaml")).unwrap();
    assert!(!bootstrap.contains("lambdagate_portal"), "{bootstrap}");
    let invoker = std::fs::read_to_string(out.join("invoker.yaml")).unwrap();
    assert!(!invoker.contains("portal_dir"), "{invoker}");
}

#[tokio::test]
async fn the_invoker_refuses_a_portal_folder_that_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("invoker.yaml");
    let endpoint = "endpoints:\n  local:\n    access_method: local\n    region: us-east-1\n    functions:\n      - name: f\n        command: [/bin/true]\n";
    let cases = [
        (
            format!("admin_listen: 127.0.0.1:9902\nportal_dir: missing\n{endpoint}"),
            format!(
                "invoker.yaml: portal_dir: {}/missing is not a directory: give the folder `lambdagate render` wrote the portal into",
                dir.path().display()
            ),
        ),
        (
            format!("portal_dir: {}\n{endpoint}", dir.path().display()),
            "invoker.yaml: portal_dir: the portal is served by the admin server: set `admin_listen` too".to_owned(),
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, &text).unwrap();
        for command in [&["check", "--config"][..], &["serve", "--config"][..]] {
            let output = std::process::Command::new(BIN)
                .args(command)
                .arg(&config)
                .output()
                .unwrap();
            let said = common::output_text(&output);
            assert!(!output.status.success(), "{command:?} accepted:\n{text}");
            assert!(
                said.contains(&expected),
                "{command:?}: expected {expected:?} in:\n{said}"
            );
        }
    }
}
