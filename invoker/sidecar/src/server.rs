//! `lambdagate serve`: the gRPC server (TCP loopback or unix socket), the
//! gRPC health service, the optional admin HTTP server (/metrics,
//! /healthz), and graceful shutdown on SIGTERM / Ctrl-C.

use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitServiceServer;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use lambdagate_proto::MAX_GRPC_MESSAGE_BYTES;
use lambdagate_proto::v1::invoker_server::InvokerServer;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::backend::LocalRuntime;
use crate::budget::{Budget, BudgetLayer};
use crate::config::{Config, ListenAddr};
use crate::grpc::{InvokerService, SharedInvoker};
use crate::invoke::Invoker;
use crate::metrics::Metrics;
use crate::portal_http::SharedPortal;

/// HTTP/2 flow control of the gRPC server, sized for the in-flight budget
/// (budget.rs). A call waiting for budget is not read, so what its sender
/// may already send (one stream window) stays in h2, holding as much of
/// the connection window: if the waiting calls could hold all of it, the
/// admitted calls' data could not arrive and nothing would finish (seen
/// with 8 MiB stream / 16 MiB connection windows: 200 concurrent 6 MB
/// calls on one connection stalled with the budget full). So a connection
/// takes at most `MAX_CONCURRENT_STREAMS` calls, and its window exceeds
/// what all of them can hold by room for admitted calls. The limit is
/// Envoy's default circuit breaker for a cluster (1024 requests at once),
/// so Envoy never meets it with its defaults: streams it opens past the
/// limit before the invoker's SETTINGS arrive would be refused, and the
/// gRPC callout does not retry them. The small stream window is also what
/// a waiting call costs: 256 KiB instead of its 6 MB.
const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
const MAX_CONCURRENT_STREAMS: u32 = 1024;
const CONNECTION_WINDOW_BYTES: u32 =
    MAX_CONCURRENT_STREAMS * STREAM_WINDOW_BYTES + 16 * 1024 * 1024;

/// Resets of not yet accepted streams tolerated before GOAWAY: Envoy is
/// the only client, and it resets a call only when its client left.
const MAX_PENDING_RESETS: usize = 4096;

/// Largest header block the gRPC server accepts (an event in metadata).
const MAX_HEADER_LIST_BYTES: u32 = 8 * 1024 * 1024;

/// The gRPC router with its layers.
type GrpcRouter = tonic::transport::server::Router<
    tower::layer::util::Stack<BudgetLayer, tower::layer::util::Identity>,
>;

/// How often the config file is checked for changes.
const CONFIG_POLL: Duration = Duration::from_secs(1);

/// Runs until SIGTERM or SIGINT, then stops accepting calls and waits for
/// the invocations in flight to finish. A second signal exits at once.
/// The config file is reloaded when it changes and on SIGHUP (endpoints,
/// credentials, allow-lists; not the listen addresses).
pub async fn serve(
    config: Config,
    path: &Path,
    local: Arc<dyn LocalRuntime>,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight invocations");
        let _ = stop_tx.send(true);
        wait_for_signal().await;
        tracing::warn!("second shutdown signal: exiting now");
        std::process::exit(130);
    });
    serve_until(config, path, local, stop_rx).await
}

/// Serves until `stop` turns true (then drains like [`serve`]); for
/// embedding the invoker, as `lambdagate demo` does.
pub async fn serve_until(
    config: Config,
    path: &Path,
    local: Arc<dyn LocalRuntime>,
    stop_rx: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let file = path.display().to_string();
    let metrics = Metrics::new();
    let invoker: SharedInvoker = Arc::new(RwLock::new(Arc::new(
        Invoker::new(config.clone(), metrics.clone(), &file, local.as_ref())
            .await
            .map_err(anyhow::Error::new)?,
    )));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<InvokerServer<InvokerService>>().await;

    // API keys and usage plans: checked in the filter's own call, or by
    // Envoy's rate-limit filter calling this on the same address.
    let usage = match &config.usage {
        Some(usage) => {
            let rules = usage
                .compile()
                .map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
            let service = lambdagate_usage::UsageService::start(rules, metrics.usage_counter())
                .await
                .map_err(|e| anyhow::anyhow!("{file}: usage.store: {e}"))?;
            tracing::info!("usage plans on: checking keys, and serving Envoy's rate-limit service");
            Some(service)
        }
        None => None,
    };
    let usage_server = usage.clone().map(RateLimitServiceServer::new);
    let service = InvokerServer::new(InvokerService {
        invoker: invoker.clone(),
        usage: usage.clone(),
    })
    .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);

    let budget = Budget::new(config.max_inflight_bytes, &metrics);
    let portal: SharedPortal = Arc::new(RwLock::new(config.portal_dir.clone()));
    tokio::spawn(watch_config(
        path.to_owned(),
        local,
        Running {
            invoker: invoker.clone(),
            portal: portal.clone(),
            metrics: metrics.clone(),
            max_inflight_bytes: config.max_inflight_bytes,
        },
        stop_rx.clone(),
    ));
    let health_on_stop = health.clone();
    let grpc_stop = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
            health_on_stop
                .set_not_serving::<InvokerServer<InvokerService>>()
                .await;
        }
    };

    let admin = match config.admin_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on admin address {addr}"))?;
            tracing::info!(address = %addr, portal = ?config.portal_dir, "admin listening (/metrics, /healthz, /portal/)");
            Some(tokio::spawn(run_admin(
                listener,
                metrics.clone(),
                portal.clone(),
                stop_rx.clone(),
            )))
        }
        None => None,
    };

    let router = Server::builder()
        // The filter's callouts come as HTTP/1.1 (`callout_cluster`), the
        // same gRPC call: on one address with the HTTP/2 calls.
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        // See STREAM_WINDOW_BYTES: no deadlock between calls that wait for
        // budget and calls that were admitted.
        .initial_stream_window_size(Some(STREAM_WINDOW_BYTES))
        .initial_connection_window_size(Some(CONNECTION_WINDOW_BYTES))
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
        // The router path sends a body-less request's whole event as
        // metadata; headers are bounded by Envoy's request header limit.
        .http2_max_header_list_size(Some(MAX_HEADER_LIST_BYTES))
        // On the router path Envoy resets the invoker call of every client
        // that leaves (wrk ending a run: 32 at once); h2's default (20)
        // answers such a burst with GOAWAY, and Envoy has to reconnect.
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_RESETS))
        // Before tonic reads a request message: many concurrent large
        // calls queue instead of each holding its message at once.
        .layer(BudgetLayer::new(budget))
        .add_service(health_service)
        .add_service(service)
        .add_optional_service(usage_server);

    match &config.listen {
        ListenAddr::Tcp(addr) => {
            let incoming = TcpIncoming::bind(*addr)
                .with_context(|| format!("cannot listen on {addr} (is another process using it?)"))?
                .with_nodelay(Some(true));
            let bound = incoming.local_addr().unwrap_or(*addr);
            tracing::info!(address = %bound, endpoints = ?config.endpoint_names(), "lambdagate invoker listening");
            router
                .serve_with_incoming_shutdown(incoming, grpc_stop)
                .await
                .context("gRPC server failed")?;
        }
        ListenAddr::Unix(path) => {
            serve_unix(router, path, grpc_stop, &config).await?;
        }
    }
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    if let Some(usage) = usage {
        usage.flush();
    }
    tracing::info!("lambdagate invoker stopped");
    Ok(())
}

/// What a config reload replaces, and what it only compares.
struct Running {
    invoker: SharedInvoker,
    portal: SharedPortal,
    metrics: Metrics,
    /// The budget is sized once, at start-up: resizing a semaphore that
    /// calls are waiting on is not worth its subtleties for a setting
    /// that rarely changes.
    max_inflight_bytes: u64,
}

/// Reloads the config when the file's content changes (deploys replace it
/// atomically) or on SIGHUP. A config that fails to load or validate is
/// refused and the running one stays, with the reason in the log.
async fn watch_config(
    path: PathBuf,
    local: Arc<dyn LocalRuntime>,
    running: Running,
    mut stop: watch::Receiver<bool>,
) {
    let mut last = std::fs::read(&path).ok();
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<()>();
        let forced = tokio::select! {
            _ = hup => true,
            _ = tokio::time::sleep(CONFIG_POLL) => false,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = std::fs::read(&path).ok();
        if !forced && (now.is_none() || now == last) {
            continue;
        }
        last = now;
        reload(&path, local.as_ref(), &running).await;
    }
}

async fn reload(path: &Path, local: &dyn LocalRuntime, running: &Running) {
    let Running {
        invoker: shared,
        portal,
        metrics,
        max_inflight_bytes,
    } = running;
    let file = path.display().to_string();
    let result = match Config::load(path) {
        Ok(config) => {
            let names: Vec<String> = config
                .endpoint_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            let portal_dir = config.portal_dir.clone();
            if config.max_inflight_bytes != *max_inflight_bytes {
                tracing::warn!(
                    running = max_inflight_bytes,
                    configured = config.max_inflight_bytes,
                    "max_inflight_bytes changed: the running budget stays until the invoker restarts"
                );
            }
            Invoker::new(config, metrics.clone(), &file, local)
                .await
                .map(|invoker| (invoker, names, portal_dir))
        }
        Err(e) => Err(e),
    };
    match result {
        Ok((invoker, names, portal_dir)) => {
            match shared.write() {
                Ok(mut guard) => *guard = Arc::new(invoker),
                Err(poisoned) => *poisoned.into_inner() = Arc::new(invoker),
            }
            crate::portal_http::replace(portal, portal_dir);
            metrics.config_reload("ok");
            tracing::info!(endpoints = ?names, "config reloaded (listen addresses need a restart)");
        }
        Err(e) => {
            metrics.config_reload("error");
            tracing::error!(error = %e, "config reload refused; the running config stays");
        }
    }
}

#[cfg(unix)]
async fn serve_unix(
    router: GrpcRouter,
    path: &std::path::Path,
    stop: impl Future<Output = ()>,
    config: &Config,
) -> anyhow::Result<()> {
    let (listener, ours) = bind_unix(path, config.socket_mode)?;
    tracing::info!(address = %format!("unix:{}", path.display()), endpoints = ?config.endpoint_names(), "lambdagate invoker listening");
    // The path is given up as soon as shutdown starts (the listener is
    // closed then; draining may take as long as the slowest function), so
    // a new invoker can take it meanwhile; and only if it is still our
    // socket, never one a newer invoker placed.
    let stop = async {
        stop.await;
        remove_if_ours(path, ours);
    };
    let result = router
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::UnixListenerStream::new(listener),
            stop,
        )
        .await;
    remove_if_ours(path, ours);
    result.context("gRPC server failed")
}

/// A file's identity: (device, inode).
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(unix)]
fn remove_if_ours(path: &Path, ours: FileId) {
    if file_id(path) == Some(ours) {
        let _ = std::fs::remove_file(path);
    }
}

/// Binds the socket with `mode`, whatever the umask: bound under a
/// temporary name, given its mode, then linked into place (a link never
/// replaces anything: of two invokers starting at once, one gets the path
/// and the other a clear error), so it is never at the path with other
/// permissions. A socket left by a previous run is replaced; anything else
/// at the path is left alone. Returns the listener and the socket's
/// identity, for removing it (and only it) at shutdown.
#[cfg(unix)]
fn bind_unix(path: &Path, mode: u32) -> anyhow::Result<(tokio::net::UnixListener, FileId)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot inspect the socket path {}: {e}", path.display()),
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "{} is in use: another process is listening on it (another invoker?); stop it or choose another `listen` path",
                    path.display()
                );
            }
            // Stale: left by a previous run that did not stop cleanly.
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
        }
        Ok(meta) => {
            let what = if meta.is_dir() {
                "a directory"
            } else if meta.file_type().is_symlink() {
                "a symbolic link"
            } else if meta.is_file() {
                "a regular file"
            } else {
                "not a socket"
            };
            anyhow::bail!(
                "{} exists and is {what}, not a socket; the invoker only replaces a stale socket. Move it away or choose another `listen` path",
                path.display()
            );
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let listener = tokio::net::UnixListener::bind(&temporary)
        .with_context(|| format!("cannot listen on unix socket {}", path.display()))?;
    let placed = std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set mode {mode:04o} on {}", temporary.display()))
        .and_then(|()| {
            std::fs::hard_link(&temporary, path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "{} appeared while this invoker was starting (another invoker?); stop it or choose another `listen` path",
                        path.display()
                    )
                } else {
                    anyhow::Error::new(e)
                        .context(format!("cannot listen on unix socket {}", path.display()))
                }
            })
        })
        .and_then(|()| {
            file_id(path).with_context(|| format!("cannot inspect {}", path.display()))
        });
    let _ = std::fs::remove_file(&temporary);
    Ok((listener, placed?))
}

#[cfg(not(unix))]
async fn serve_unix(
    _router: GrpcRouter,
    _path: &std::path::Path,
    _stop: impl Future<Output = ()>,
    _config: &Config,
) -> anyhow::Result<()> {
    anyhow::bail!("unix sockets are not supported on this platform")
}

async fn run_admin(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    portal: SharedPortal,
    mut stop: watch::Receiver<bool>,
) {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.render(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(crate::portal_http::routes(portal));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "admin server failed");
    }
}

pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
