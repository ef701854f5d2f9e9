//! Stand-ins for what no real component can do on this machine. Each is
//! named for what it stands in for, so a reader of a test knows which part
//! is not the real thing:
//! - [`HangingLambda`]: a Lambda endpoint that accepts and never answers.
//! - [`LambdaStandIn`]: a Lambda endpoint with a fixed answer and delay
//!   (slow functions, AWS error shapes such as throttling, which moto
//!   cannot produce).
//! - [`CredentialsStandIn`]: the ECS container-credentials endpoint and the
//!   EC2 instance metadata service (IMDSv2); moto's IMDS does not work with
//!   the Rust SDK. It hands out real STS sessions obtained from moto.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, put};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    (listener, addr)
}

/// Accepts TCP connections, reads whatever arrives and never answers.
pub struct HangingLambda {
    pub url: String,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl HangingLambda {
    pub async fn start() -> Self {
        let (listener, addr) = bind().await;
        let connections = Arc::new(AtomicUsize::new(0));
        let count = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(socket.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
        HangingLambda {
            url: format!("http://{addr}"),
            connections,
            task,
        }
    }
}

impl Drop for HangingLambda {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a [`LambdaStandIn`] answers to every request.
#[derive(Clone, Debug)]
pub struct CannedReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl CannedReply {
    /// A successful synchronous invocation returning `body`.
    pub fn ok(body: &str, delay: Duration) -> Self {
        CannedReply {
            status: 200,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amz-executed-version".into(), "$LATEST".into()),
                ("x-amzn-requestid".into(), "standin-request-1".into()),
            ],
            body: body.as_bytes().to_vec(),
            delay,
        }
    }

    /// An AWS JSON error, as Lambda's REST-JSON protocol sends it.
    pub fn aws_error(status: u16, error_type: &str, message: &str) -> Self {
        CannedReply {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amzn-errortype".into(), error_type.into()),
                ("x-amzn-requestid".into(), "standin-request-2".into()),
            ],
            body: format!("{{\"Type\":\"User\",\"message\":\"{message}\"}}").into_bytes(),
            delay: Duration::ZERO,
        }
    }
}

#[derive(Clone)]
struct StandInState {
    reply: CannedReply,
    requests: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    user_agents: Arc<Mutex<Vec<String>>>,
}

/// A Lambda service endpoint that answers every request the same way.
pub struct LambdaStandIn {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    pub paths: Arc<Mutex<Vec<String>>>,
    /// The `user-agent` of each request ("" when absent).
    pub user_agents: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LambdaStandIn {
    pub async fn start(reply: CannedReply) -> Self {
        let (listener, addr) = bind().await;
        let state = StandInState {
            reply,
            requests: Arc::new(AtomicUsize::new(0)),
            paths: Arc::new(Mutex::new(Vec::new())),
            user_agents: Arc::new(Mutex::new(Vec::new())),
        };
        let requests = state.requests.clone();
        let paths = state.paths.clone();
        let user_agents = state.user_agents.clone();
        let app = axum::Router::new()
            .fallback(any(answer))
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LambdaStandIn {
            url: format!("http://{addr}"),
            requests,
            paths,
            user_agents,
            task,
        }
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn answer(
    State(state): State<StandInState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    _body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.paths.lock().unwrap().push(uri.to_string());
    let user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    state
        .user_agents
        .lock()
        .unwrap()
        .push(user_agent.to_owned());
    tokio::time::sleep(state.reply.delay).await;
    let mut response = (
        StatusCode::from_u16(state.reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        state.reply.body.clone(),
    )
        .into_response();
    for (k, v) in &state.reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

impl Drop for LambdaStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the stand-in gets the sessions it hands out: moto STS AssumeRole.
#[derive(Clone)]
pub struct SessionSource {
    pub sts_url: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub role_arn: String,
}

#[derive(Clone)]
struct CredsState {
    source: SessionSource,
    lifetime: Duration,
    fetches: Arc<AtomicUsize>,
    served_keys: Arc<Mutex<Vec<String>>>,
    last_expiration: Arc<Mutex<Option<SystemTime>>>,
    token: String,
}

/// The ECS container-credentials endpoint (`/ecs-credentials`) and IMDSv2
/// (`/latest/api/token`, `/latest/meta-data/iam/security-credentials/...`).
/// Every fetch makes a fresh STS session valid in moto, announced as
/// expiring after `lifetime`, so clients must come back for new ones.
pub struct CredentialsStandIn {
    pub url: String,
    pub fetches: Arc<AtomicUsize>,
    pub served_keys: Arc<Mutex<Vec<String>>>,
    last_expiration: Arc<Mutex<Option<SystemTime>>>,
    task: tokio::task::JoinHandle<()>,
}

pub const IMDS_ROLE_NAME: &str = "gateway-instance";

impl CredentialsStandIn {
    pub async fn start(source: SessionSource, lifetime: Duration) -> Self {
        let (listener, addr) = bind().await;
        let state = CredsState {
            source,
            lifetime,
            fetches: Arc::new(AtomicUsize::new(0)),
            served_keys: Arc::new(Mutex::new(Vec::new())),
            last_expiration: Arc::new(Mutex::new(None)),
            token: format!("imds-token-{}", crate::free_port()),
        };
        let fetches = state.fetches.clone();
        let served_keys = state.served_keys.clone();
        let last_expiration = state.last_expiration.clone();
        let app = axum::Router::new()
            .route("/ecs-credentials", get(ecs_credentials))
            .route("/latest/api/token", put(imds_token))
            .route(
                "/latest/meta-data/iam/security-credentials/",
                get(imds_role_name),
            )
            .route(
                "/latest/meta-data/iam/security-credentials/{role}",
                get(imds_credentials),
            )
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CredentialsStandIn {
            url: format!("http://{addr}"),
            fetches,
            served_keys,
            last_expiration,
            task,
        }
    }

    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Sessions handed out so far (a fetch counts once its session exists).
    pub fn served_count(&self) -> usize {
        self.served_keys.lock().unwrap().len()
    }

    /// The expiry announced with the last session handed out, as written
    /// (whole seconds).
    pub fn last_expiration(&self) -> Option<SystemTime> {
        *self.last_expiration.lock().unwrap()
    }
}

impl Drop for CredentialsStandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn new_session(state: &CredsState) -> Result<serde_json::Value, String> {
    let creds = aws_credential_types::Credentials::new(
        &state.source.access_key_id,
        &state.source.secret_access_key,
        None,
        None,
        "credentials-stand-in",
    );
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&state.source.sts_url)
        .credentials_provider(creds)
        .build();
    let n = state.fetches.fetch_add(1, Ordering::SeqCst);
    let out = aws_sdk_sts::Client::from_conf(config)
        .assume_role()
        .role_arn(&state.source.role_arn)
        .role_session_name(format!("instance-{n}"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let c = out.credentials().ok_or("no credentials")?;
    let expires = SystemTime::now() + state.lifetime;
    let secs = expires.duration_since(UNIX_EPOCH).unwrap().as_secs();
    *state.last_expiration.lock().unwrap() = Some(UNIX_EPOCH + Duration::from_secs(secs));
    state
        .served_keys
        .lock()
        .unwrap()
        .push(c.access_key_id().to_owned());
    let expiration = aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    Ok(serde_json::json!({
        "Code": "Success",
        "Type": "AWS-HMAC",
        "LastUpdated": expiration,
        "AccessKeyId": c.access_key_id(),
        "SecretAccessKey": c.secret_access_key(),
        "Token": c.session_token(),
        "Expiration": expiration,
        "RoleArn": state.source.role_arn,
    }))
}

fn json(value: Result<serde_json::Value, String>) -> Response {
    match value {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

async fn ecs_credentials(State(state): State<CredsState>) -> Response {
    json(new_session(&state).await)
}

async fn imds_token(State(state): State<CredsState>, headers: HeaderMap) -> Response {
    let Some(ttl) = headers.get("x-aws-ec2-metadata-token-ttl-seconds") else {
        return (StatusCode::BAD_REQUEST, "missing token TTL").into_response();
    };
    let mut response = state.token.clone().into_response();
    response
        .headers_mut()
        .insert("x-aws-ec2-metadata-token-ttl-seconds", ttl.clone());
    response
}

fn imds_authorized(state: &CredsState, headers: &HeaderMap) -> bool {
    // IMDSv2 only: a GET without the session token is refused.
    headers
        .get("x-aws-ec2-metadata-token")
        .and_then(|v| v.to_str().ok())
        == Some(state.token.as_str())
}

async fn imds_role_name(State(state): State<CredsState>, headers: HeaderMap) -> Response {
    if !imds_authorized(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    IMDS_ROLE_NAME.into_response()
}

async fn imds_credentials(
    State(state): State<CredsState>,
    axum::extract::Path(role): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    if !imds_authorized(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if role != IMDS_ROLE_NAME {
        return StatusCode::NOT_FOUND.into_response();
    }
    json(new_session(&state).await)
}
