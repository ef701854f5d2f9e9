//! Lambda Invoke as one signed HTTP request: the request path of every
//! gateway call. The AWS SDK's operation machinery (interceptors, runtime
//! plugins, endpoint rules, its general signer) cost the invoker about half
//! of its CPU per request (measured in bench/RESULTS.md); what Invoke needs
//! is small and fixed, so it is written out here. The parts that matter for
//! talking to AWS stay the SDK's: its HTTP connector (hyper, rustls with
//! aws-lc and the system's roots, connection pool, connect timeout), its
//! credential providers, `aws-sigv4`'s key derivation and HMAC.
//!
//! Control-plane calls (`check --live`, `functions`) still use the SDK.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_http_client::Connector;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use lambdagate_core::LambdaArn;
use lambdagate_proto::{ErrorKind, InvocationType, InvokeReply, MAX_SYNC_PAYLOAD_BYTES};
use tokio::sync::Mutex as AsyncMutex;

use crate::backend::Payload;
use crate::error::{Failure, chain_text, classify_service, credentials_failure, timeout_failure};
use crate::offload;
use crate::sigv4::{SignableRequest, Signer, SigningTime, sha256_hex, uri_encode};

/// Lambda's `X-Amz-Invocation-Type` header value.
fn invocation_type_header(invocation_type: InvocationType) -> &'static str {
    match invocation_type {
        InvocationType::RequestResponse => "RequestResponse",
        InvocationType::Event => "Event",
        InvocationType::DryRun => "DryRun",
    }
}

/// The data-plane call made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Invoke(InvocationType),
    InvokeWithResponseStream,
}

impl Operation {
    /// The path after the function's name.
    fn path(self) -> (&'static str, &'static str) {
        match self {
            Operation::Invoke(_) => ("/2015-03-31/functions/", "/invocations"),
            Operation::InvokeWithResponseStream => {
                ("/2021-11-15/functions/", "/response-streaming-invocations")
            }
        }
    }

    fn invocation_type(self) -> InvocationType {
        match self {
            Operation::Invoke(t) => t,
            Operation::InvokeWithResponseStream => InvocationType::RequestResponse,
        }
    }
}

/// Credentials are refreshed this long before they expire, as the SDK's
/// lazy identity cache does.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(10);

/// After a failed load, no new attempt for this long: the session in hand
/// serves, or without one requests fail at once, so that an unreachable
/// source costs one attempt per second, not one per request.
const RETRY_REFRESH_AFTER: Duration = Duration::from_secs(1);

/// A response body above this is not a Lambda reply (Lambda caps replies
/// at 6 MB); reading stops there instead of buffering without bound.
const MAX_RESPONSE_BYTES: usize = MAX_SYNC_PAYLOAD_BYTES + 64 * 1024;

const USER_AGENT: &str = concat!("lambdagate/", env!("CARGO_PKG_VERSION"));

/// One endpoint's Invoke client: credentials, signer, connection pool.
pub struct LambdaInvokeClient {
    endpoint: String,
    /// From `endpoint_url`; `None` means AWS's own regional endpoint,
    /// chosen per call from the ARN.
    endpoint_url: Option<Target>,
    connector: SharedHttpConnector,
    credentials: CredentialsCache,
    signer: Signer,
}

impl LambdaInvokeClient {
    pub fn new(
        endpoint: &str,
        endpoint_url: Option<&str>,
        provider: SharedCredentialsProvider,
        connect_timeout: Duration,
    ) -> Self {
        let connector = Connector::builder()
            .connector_settings(
                HttpConnectorSettings::builder()
                    .connect_timeout(connect_timeout)
                    .build(),
            )
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build();
        LambdaInvokeClient {
            endpoint: endpoint.to_owned(),
            endpoint_url: endpoint_url.map(Target::from_url),
            connector: SharedHttpConnector::new(connector),
            credentials: CredentialsCache::new(provider),
            signer: Signer::new("lambda"),
        }
    }

    /// Calls Invoke on `arn` and waits at most `timeout` for the whole
    /// exchange, credentials included.
    pub async fn invoke(
        &self,
        arn: &LambdaArn,
        invocation_type: InvocationType,
        payload: Payload,
        trace_id: &str,
        timeout: Duration,
    ) -> Result<InvokeReply, Failure> {
        let exchange = self.exchange(arn, invocation_type, payload, trace_id);
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(timeout_failure(&self.what(arn), Some(timeout))),
        }
    }

    /// What failed, for error messages; built only when one is.
    pub(crate) fn what(&self, arn: &LambdaArn) -> String {
        format!("Lambda Invoke of `{arn}` (endpoint `{}`)", self.endpoint)
    }

    /// Signs and sends one call; an answer that is not 2xx is read and
    /// classified here.
    pub(crate) async fn send(
        &self,
        arn: &LambdaArn,
        operation: Operation,
        payload: Payload,
        trace_id: &str,
    ) -> Result<aws_smithy_runtime_api::client::orchestrator::HttpResponse, Failure> {
        let payload = HashedPayload::new(payload).await?;
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(|e| credentials_failure(&self.what(arn), &e))?;
        let request = self
            .signed_request(
                arn,
                operation,
                payload,
                trace_id,
                &credentials,
                SystemTime::now(),
            )
            .map_err(|m| Failure::new(ErrorKind::Internal, format!("{}: {m}", self.what(arn))))?;
        let response =
            self.connector.call(request).await.map_err(|e| {
                unreachable_failure(&self.what(arn), e.is_timeout(), &chain_text(&e))
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .unwrap_or_default()
            .to_owned();
        let body = self.read_reply(arn, response.into_body()).await?;
        let (code, message) = error_code_and_message(&error_type, &body);
        Err(classify_service(
            &self.what(arn),
            status,
            code.as_deref(),
            message.as_deref(),
        ))
    }

    async fn read_reply(&self, arn: &LambdaArn, body: SdkBody) -> Result<Vec<u8>, Failure> {
        read_body(body).await.map_err(|m| {
            Failure::new(
                ErrorKind::LambdaUnavailable,
                format!("{}: the reply could not be read: {m}", self.what(arn)),
            )
        })
    }

    async fn exchange(
        &self,
        arn: &LambdaArn,
        invocation_type: InvocationType,
        payload: Payload,
        trace_id: &str,
    ) -> Result<InvokeReply, Failure> {
        let response = self
            .send(arn, Operation::Invoke(invocation_type), payload, trace_id)
            .await?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).unwrap_or_default().to_owned();
        let function_error = header("x-amz-function-error");
        let executed_version = header("x-amz-executed-version");
        let lambda_request_id = header("x-amzn-requestid");
        let body = self.read_reply(arn, response.into_body()).await?;
        let error_kind = if function_error.is_empty() {
            ErrorKind::Unspecified
        } else {
            ErrorKind::FunctionError
        };
        Ok(InvokeReply {
            status_code: u32::from(status),
            payload: body,
            function_error,
            executed_version,
            lambda_request_id,
            error_kind: error_kind as i32,
            error_message: String::new(),
            ..InvokeReply::default()
        })
    }

    fn signed_request(
        &self,
        arn: &LambdaArn,
        operation: Operation,
        payload: HashedPayload,
        trace_id: &str,
        credentials: &Credentials,
        now: SystemTime,
    ) -> Result<HttpRequest, String> {
        let regional;
        let target = match &self.endpoint_url {
            Some(target) => target,
            None => {
                regional = regional_endpoint(arn)?;
                &regional
            }
        };
        let mut path = String::with_capacity(128);
        let (before, after) = operation.path();
        path.push_str(&target.prefix);
        path.push_str(before);
        uri_encode(&arn.unqualified(), &mut path);
        path.push_str(after);
        let mut query = String::new();
        if let Some(q) = arn.qualifier() {
            query.push_str("Qualifier=");
            uri_encode(q, &mut query);
        }
        let at = SigningTime::new(now);
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/octet-stream"),
            ("host", &target.authority),
            ("x-amz-date", &at.date_time),
            (
                "x-amz-invocation-type",
                invocation_type_header(operation.invocation_type()),
            ),
        ];
        if let Some(token) = credentials.session_token() {
            headers.push(("x-amz-security-token", token));
        }
        let authorization = self.signer.authorization(
            credentials,
            arn.region(),
            &at,
            &SignableRequest {
                method: "POST",
                path: &path,
                query: &query,
                headers: &headers,
                payload_sha256: &payload.sha256,
            },
        );
        let origin = &target.origin;
        let uri = if query.is_empty() {
            format!("{origin}{path}")
        } else {
            format!("{origin}{path}?{query}")
        };
        let mut builder = http::Request::builder().method("POST").uri(uri);
        for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
            builder = builder.header(*name, *value);
        }
        // Unsigned, as the SDK leaves it: Lambda passes it to the function
        // (`_X_AMZN_TRACE_ID`) and X-Ray joins the gateway's trace.
        if let Ok(trace) = http::HeaderValue::from_str(trace_id)
            && !trace_id.is_empty()
        {
            builder = builder.header("x-amzn-trace-id", trace);
        }
        let request = builder
            .header("authorization", authorization)
            // Unsigned, as in the SDK: proxies may rewrite it. CloudTrail
            // shows it, so operators can tell gateway calls apart.
            .header("user-agent", USER_AGENT)
            .body(SdkBody::from(payload.bytes))
            .map_err(|e| format!("the request could not be built: {e}"))?;
        HttpRequest::try_from(request).map_err(|e| format!("the request could not be built: {e}"))
    }
}

/// A request body and its SHA-256 (lowercase hex), which SigV4 signs.
struct HashedPayload {
    bytes: Bytes,
    sha256: String,
}

impl HashedPayload {
    /// The payload's hash as the invoker took it, or taken now (off the
    /// runtime thread when the payload is large): once either way.
    async fn new(payload: Payload) -> Result<Self, Failure> {
        let Payload { bytes, sha256 } = payload;
        let sha256 = match sha256 {
            Some(sha256) => sha256,
            None => {
                offload::cpu_work(bytes.len(), {
                    let bytes = bytes.clone();
                    move || sha256_hex(&bytes)
                })
                .await?
            }
        };
        Ok(HashedPayload { bytes, sha256 })
    }
}

/// The request never got an HTTP answer. The advice depends on why: a
/// refused certificate is not a network problem.
fn unreachable_failure(what: &str, connect_timed_out: bool, cause: &str) -> Failure {
    let problem = if connect_timed_out {
        "could not connect to AWS in time"
    } else {
        "could not reach AWS"
    };
    let advice = if cause.contains("certificate") || cause.contains("TLS handshake") {
        "check that the endpoint's TLS certificate is trusted (the system's roots, or SSL_CERT_FILE) and matches the `endpoint_url` host"
    } else {
        "check the network and the endpoint's `endpoint_url`/region"
    };
    Failure::new(
        ErrorKind::LambdaUnavailable,
        format!("{what}: {problem}: {cause}; {advice}"),
    )
}

/// Where Invoke requests go: `scheme://authority`, the authority alone
/// (the signed `host`) and the URL's path prefix, if any (`/lambda-proxy`
/// of `http://host/lambda-proxy`). The prefix is part of the path sent and
/// so of the path signed, as the AWS SDKs do for an endpoint with a path.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    origin: String,
    authority: String,
    prefix: String,
}

impl Target {
    fn from_url(url: &str) -> Self {
        let trimmed = url.trim_end_matches('/');
        let (scheme, rest) = trimmed.split_once("://").unwrap_or(("https", trimmed));
        let (authority, prefix) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        Target {
            origin: format!("{scheme}://{authority}"),
            authority: authority.to_owned(),
            prefix: prefix.to_owned(),
        }
    }
}

/// `https://lambda.REGION.DNS-SUFFIX` for the ARN's partition.
fn regional_endpoint(arn: &LambdaArn) -> Result<Target, String> {
    let suffix = match arn.partition() {
        "aws" | "aws-us-gov" => "amazonaws.com",
        "aws-cn" => "amazonaws.com.cn",
        other => {
            return Err(format!(
                "partition `{other}` has no built-in Lambda endpoint here; set the endpoint's `endpoint_url`"
            ));
        }
    };
    let authority = format!("lambda.{}.{suffix}", arn.region());
    Ok(Target {
        origin: format!("https://{authority}"),
        authority,
        prefix: String::new(),
    })
}

async fn read_body(body: SdkBody) -> Result<Vec<u8>, String> {
    if let Some(bytes) = body.bytes() {
        return Ok(bytes.to_vec());
    }
    Limited::new(body, MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map(|c| Vec::from(c.to_bytes()))
        .map_err(|e| e.to_string())
}

/// AWS's error code and message: the code from `X-Amzn-ErrorType`
/// (`Code:http://...`), else from a JSON (`__type`/`Type`/`code`) or XML
/// (`<Code>`) body; the message from the body.
pub fn error_code_and_message(error_type: &str, body: &[u8]) -> (Option<String>, Option<String>) {
    let from_header = error_type
        .split(':')
        .next()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        let text = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| map.get(*k).and_then(|v| v.as_str()))
                .map(str::to_owned)
        };
        let code = from_header.or_else(|| {
            text(&["__type", "Type", "code", "Code"])
                // `__type` may be `namespace#Code`.
                .map(|c| c.rsplit('#').next().unwrap_or_default().to_owned())
        });
        return (code, text(&["message", "Message", "errorMessage"]));
    }
    let (xml_code, xml_message) = crate::error::xml_error(body);
    (from_header.or(xml_code), xml_message)
}

/// The endpoint's credentials, loaded once and again shortly before they
/// expire. One caller loads while the others wait, so an expiring STS
/// session costs one AssumeRole, not one per request in flight. While the
/// session in hand is still valid, no request waits for a refresh: it runs
/// in the background, and when it fails (STS or the metadata endpoint
/// unreachable, which can take seconds of the SDK's retries) the session
/// serves until it really expires; only then do requests fail.
struct CredentialsCache {
    shared: Arc<CacheState>,
}

struct CacheState {
    provider: SharedCredentialsProvider,
    current: RwLock<Option<Credentials>>,
    /// Held by the one caller (or background task) that is loading.
    loading: Arc<AsyncMutex<()>>,
    /// Set after a failed load: no new attempt before the instant, and
    /// requests with no valid session in hand get this failure at once
    /// rather than queue for the source, one retry-laden attempt each.
    failed: RwLock<Option<(Instant, String)>>,
}

impl CredentialsCache {
    fn new(provider: SharedCredentialsProvider) -> Self {
        CredentialsCache {
            shared: Arc::new(CacheState {
                provider,
                current: RwLock::new(None),
                loading: Arc::new(AsyncMutex::new(())),
                failed: RwLock::new(None),
            }),
        }
    }

    async fn get(&self) -> Result<Credentials, CredentialsError> {
        let state = &self.shared;
        if let Some(creds) = state.valid_for(REFRESH_BEFORE_EXPIRY) {
            return Ok(creds);
        }
        if let Some(creds) = state.valid_for(Duration::ZERO) {
            // Due for a refresh but still valid: start one unless one is
            // running or a failed one asked to wait, and answer now.
            if !state.backing_off()
                && let Ok(guard) = state.loading.clone().try_lock_owned()
            {
                let state = self.shared.clone();
                tokio::spawn(async move {
                    let _loading = guard;
                    if state.valid_for(REFRESH_BEFORE_EXPIRY).is_none() {
                        let _ = state.load().await;
                    }
                });
            }
            return Ok(creds);
        }
        // Nothing valid in hand: wait for the one load.
        let _loading = state.loading.lock().await;
        if let Some(creds) = state.valid_for(Duration::ZERO) {
            return Ok(creds);
        }
        if let Some(error) = state.recent_failure() {
            return Err(CredentialsError::not_loaded(error));
        }
        state.load().await
    }
}

impl CacheState {
    /// The credentials in hand if they are valid for at least `margin`.
    fn valid_for(&self, margin: Duration) -> Option<Credentials> {
        let current = self.current.read().ok()?;
        let creds = current.as_ref()?;
        match creds.expiry() {
            Some(expiry) if expiry <= SystemTime::now() + margin => None,
            _ => Some(creds.clone()),
        }
    }

    /// A load failed a moment ago.
    fn backing_off(&self) -> bool {
        self.recent_failure().is_some()
    }

    /// What the last load said, if it failed a moment ago.
    fn recent_failure(&self) -> Option<String> {
        let failed = self.failed.read().ok()?;
        let (retry_at, error) = failed.as_ref()?;
        (Instant::now() < *retry_at).then(|| format!("{error} (last attempt under a second ago)"))
    }

    /// Asks the provider; the caller holds `loading`.
    async fn load(&self) -> Result<Credentials, CredentialsError> {
        match self.provider.provide_credentials().await {
            Ok(creds) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Some(creds.clone());
                }
                if let Ok(mut failed) = self.failed.write() {
                    *failed = None;
                }
                Ok(creds)
            }
            Err(e) => {
                if let Ok(mut failed) = self.failed.write() {
                    *failed = Some((Instant::now() + RETRY_REFRESH_AFTER, chain_text(&e)));
                }
                if self.valid_for(Duration::ZERO).is_some() {
                    tracing::warn!(
                        error = %chain_text(&e),
                        "refreshing credentials failed; the current session serves until it expires"
                    );
                }
                Err(e)
            }
        }
    }
}

impl std::fmt::Debug for LambdaInvokeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaInvokeClient")
            .field("endpoint", &self.endpoint)
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_come_from_the_header_then_the_body() {
        let json = br#"{"Type":"User","message":"Function not found: arn:aws:lambda:us-east-1:1:function:x"}"#;
        assert_eq!(
            error_code_and_message(
                "ResourceNotFoundException:http://internal.amazon.com/coral/com.amazonaws.awsgirlambda/",
                json
            ),
            (
                Some("ResourceNotFoundException".into()),
                Some("Function not found: arn:aws:lambda:us-east-1:1:function:x".into())
            )
        );
        assert_eq!(
            error_code_and_message(
                "",
                br#"{"__type":"com.amazon#TooManyRequestsException","Message":"Rate exceeded"}"#
            ),
            (
                Some("TooManyRequestsException".into()),
                Some("Rate exceeded".into())
            )
        );
        assert_eq!(
            error_code_and_message(
                "",
                b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>bad</Message></Error></ErrorResponse>"
            ),
            (Some("SignatureDoesNotMatch".into()), Some("bad".into()))
        );
        assert_eq!(error_code_and_message("", b"oops"), (None, None));
    }

    /// An `endpoint_url` with a path: the request goes to the prefixed
    /// path, and its signature is what aws-sigv4's own signer computes for
    /// the URL as sent (so a server at that URL verifies it).
    #[tokio::test]
    async fn a_path_prefix_is_sent_and_signed() {
        use aws_credential_types::provider::SharedCredentialsProvider;
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some("FQoGZXIvYXdzEBYaDH+/token==".into()),
            None,
            "test",
        );
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_590_000);
        for (url, sent_prefix) in [
            ("http://127.0.0.1:4566/lambda-proxy", "/lambda-proxy"),
            ("http://127.0.0.1:4566/a/b-c/", "/a/b-c"),
            ("http://127.0.0.1:4566", ""),
        ] {
            let client = LambdaInvokeClient::new(
                "test",
                Some(url),
                SharedCredentialsProvider::new(creds.clone()),
                Duration::from_secs(1),
            );
            const TRACE: &str = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1";
            for (arn, query) in [
                ("arn:aws:lambda:us-east-1:123456789012:function:hello", ""),
                (
                    "arn:aws:lambda:us-east-1:123456789012:function:hello:live",
                    "?Qualifier=live",
                ),
            ] {
                let arn = LambdaArn::parse(arn).unwrap();
                let request = client
                    .signed_request(
                        &arn,
                        Operation::Invoke(InvocationType::RequestResponse),
                        HashedPayload::new(Payload {
                            bytes: Bytes::from_static(b"{\"a\":1}"),
                            sha256: None,
                        })
                        .await
                        .unwrap(),
                        TRACE,
                        &creds,
                        time,
                    )
                    .unwrap();
                // The trace header travels, unsigned (the reference below
                // signs without it).
                assert_eq!(request.headers().get("x-amzn-trace-id").unwrap(), TRACE);
                let expected_uri = format!(
                    "http://127.0.0.1:4566{sent_prefix}/2015-03-31/functions/{}/invocations{query}",
                    arn.unqualified().replace(':', "%3A")
                );
                assert_eq!(request.uri(), expected_uri);
                let header = |name: &str| request.headers().get(name).unwrap().to_owned();
                let reference = crate::sigv4::tests::reference_authorization(
                    &creds,
                    "us-east-1",
                    time,
                    request.uri(),
                    &[
                        ("content-type", &header("content-type")),
                        ("host", "127.0.0.1:4566"),
                        ("x-amz-invocation-type", &header("x-amz-invocation-type")),
                    ],
                    b"{\"a\":1}",
                );
                assert_eq!(header("authorization"), reference, "{url} {arn}");
            }
        }
    }

    #[test]
    fn regional_endpoints_follow_the_partition() {
        let arn = |s: &str| LambdaArn::parse(s).unwrap();
        assert_eq!(
            regional_endpoint(&arn("arn:aws:lambda:eu-west-1:123456789012:function:f")).unwrap(),
            Target::from_url("https://lambda.eu-west-1.amazonaws.com")
        );
        assert_eq!(
            regional_endpoint(&arn("arn:aws-cn:lambda:cn-north-1:123456789012:function:f"))
                .unwrap(),
            Target::from_url("https://lambda.cn-north-1.amazonaws.com.cn/")
        );
    }
}
