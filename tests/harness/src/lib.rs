//! Integration-test harness for lambdagate.
//!
//! It starts the real components (moto server as AWS, the `lambdagate`
//! binary) on loopback ports and, where no real component can play a part
//! here, small stand-ins that say so in their names: a Lambda endpoint that
//! never answers or answers slowly or with a canned AWS error, and an
//! ECS / EC2-metadata credentials endpoint.
//!
//! Test-only code: a failure to start something aborts the test with a
//! message, so `expect` is the right tool here.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod envoy;
pub mod faults;
pub mod h2raw;
pub mod http;
pub mod invoker;
pub mod moto;
pub mod process;
pub mod standins;

use std::net::TcpListener;
use std::path::PathBuf;

pub use envoy::{EnvoyProcess, InvokerAddress};
pub use invoker::{InvokerProcess, invoke_request};
pub use moto::{Fixture, Moto, MotoOptions};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The Python virtualenv with moto (made by `scripts/setup`), or
/// `$LAMBDAGATE_VENV`.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("LAMBDAGATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python virtualenv at {}: run `scripts/setup` (or the README's test command) first",
        venv.display()
    );
    venv
}

/// The compiled Envoy filter. `scripts/test` builds it before the tests:
/// `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`.
pub fn filter_wasm() -> PathBuf {
    let path = repo_root().join("target/wasm32-wasip1/wasm/lambdagate_filter.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm` (scripts/test does)",
        path.display()
    );
    path
}

/// The Rust sample function (examples/functions/hello-rust), built by
/// `cargo build --workspace` (scripts/test does).
pub fn hello_rust() -> PathBuf {
    workspace_binary("hello-rust")
}

/// The streaming sample function (examples/functions/hello-stream-rust),
/// built by `cargo build --workspace` (scripts/test does).
pub fn hello_stream_rust() -> PathBuf {
    workspace_binary("hello-stream-rust")
}

/// The test function on `lambda_http` that answers with what its request
/// accessors observed (tests/functions/http-observer-rust), built by
/// `cargo build --workspace` (scripts/test does).
pub fn http_observer_rust() -> PathBuf {
    workspace_binary("http-observer-rust")
}

/// The Rust TOKEN authorizer (tests/functions/authorizer-rust), built by
/// `cargo build --workspace`.
pub fn authorizer_rust() -> PathBuf {
    workspace_binary("authorizer-rust")
}

/// A binary of a workspace member, from the debug build.
fn workspace_binary(package: &str) -> PathBuf {
    let path = repo_root().join("target/debug").join(package);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p {package}` (scripts/test does)",
        path.display()
    );
    path
}

/// A port on 127.0.0.1 that was free a moment ago, below the ephemeral range.
pub fn free_port() -> u16 {
    // Ports from the kernel's own pick (`:0`) are ephemeral ones: between
    // handing one out and the process binding it, any outgoing connection
    // (the load the tests make) may take it as its source port, and a
    // stack fails to start. Below the ephemeral range (32768 up) only
    // listeners take ports, and each is handed out once per process.
    // Processes start at different offsets, so a lingering process of the
    // previous test binary is unlikely to hold the same ones.
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % COUNT,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..COUNT {
        let offset = NEXT.fetch_add(1, Ordering::SeqCst) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("port in range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port from {FIRST} to {}", FIRST + COUNT)
}

/// Ports of a stack that `lambdagate render` wrote (the API definition's
/// `gateway:` block names them).
pub struct RenderedPorts {
    pub listen: u16,
    pub admin: u16,
    pub invoker: u16,
    pub invoker_admin: u16,
}

impl RenderedPorts {
    /// Four ports that were free a moment ago.
    pub fn free() -> Self {
        RenderedPorts {
            listen: free_port(),
            admin: free_port(),
            invoker: free_port(),
            invoker_admin: free_port(),
        }
    }
}

impl RenderedPorts {
    /// The `gateway:` keys that put a rendered stack on these ports with
    /// the built filter and no portal (two-space indented, for a
    /// definition's `gateway:` block).
    pub fn gateway_keys(&self) -> String {
        // `$LAMBDAGATE_DATA_PATH` reaches rendered stacks too, so the
        // suite's run on the router path covers them.
        let data_path = std::env::var("LAMBDAGATE_DATA_PATH")
            .map(|path| format!("  data_path: {path}\n"))
            .unwrap_or_default();
        format!(
            "  listen: 127.0.0.1:{}\n  admin: 127.0.0.1:{}\n  invoker: 127.0.0.1:{}\n  invoker_admin: 127.0.0.1:{}\n  wasm: {}\n  portal: {{enabled: false}}\n{data_path}",
            self.listen,
            self.admin,
            self.invoker,
            self.invoker_admin,
            filter_wasm().display()
        )
    }
}

/// A folder served over HTTP on a loopback port by Python's `http.server`
/// (a real web server, for a JWKS or a page's origin); stopped on drop.
pub struct StaticFiles(std::process::Child);

impl StaticFiles {
    pub fn serve(dir: &std::path::Path, port: u16) -> StaticFiles {
        let child = std::process::Command::new(venv().join("bin/python"))
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start python -m http.server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "http.server on {port} did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        StaticFiles(child)
    }
}

impl Drop for StaticFiles {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `lambdagate render --out OUT APIS...`, which must succeed.
pub fn render_apis(bin: &str, out: &std::path::Path, apis: &[&std::path::Path]) {
    let rendered = std::process::Command::new(bin)
        .args(["render", "--out"])
        .arg(out)
        .args(apis)
        .output()
        .expect("run lambdagate render");
    assert!(
        rendered.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
}

/// A Python function of tests/functions/powertools-authorizer (`app.HANDLER`)
/// as a local endpoint's function entry, counting its invocations in `log`
/// (four-space indented, for `functions:`).
pub fn powertools_function(name: &str, handler: &str, log: &std::path::Path) -> String {
    format!(
        "    - name: {name}\n      command: [\"{python}\", -m, awslambdaric, app.{handler}]\n      working_dir: \"{dir}\"\n      environment: {{PYTHONUNBUFFERED: \"1\", INVOCATION_LOG: \"{log}\"}}\n",
        python = venv().join("bin/python").display(),
        dir = repo_root()
            .join("tests/functions/powertools-authorizer")
            .display(),
        log = log.display(),
    )
}

/// Starts the invoker on `out/invoker.yaml` (watched, so redeploys reach
/// it) and Envoy on `out/envoy.yaml`, as an operator runs what `render`
/// wrote into `out`.
pub async fn start_rendered(
    bin: &str,
    out: &std::path::Path,
    env: &[(&str, &str)],
    ports: &RenderedPorts,
) -> (InvokerProcess, EnvoyProcess) {
    let invoker = InvokerProcess::start_file(
        bin,
        &out.join("invoker.yaml"),
        env,
        "info",
        &format!("127.0.0.1:{}", ports.invoker),
        &format!("127.0.0.1:{}", ports.invoker_admin),
    )
    .await;
    let bootstrap = std::fs::read_to_string(out.join("envoy.yaml")).expect("rendered envoy.yaml");
    let envoy = EnvoyProcess::start_bootstrap(&bootstrap, ports.listen, ports.admin).await;
    (invoker, envoy)
}
