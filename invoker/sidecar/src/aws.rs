//! AWS state per endpoint: the credentials provider chosen by its access
//! method (optionally wrapped in an STS AssumeRole session), the Invoke
//! client of the request path, and SDK clients for control-plane calls.

use std::collections::HashMap;
use std::fmt;
use std::sync::RwLock;
use std::time::Duration;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};

use lambdagate_proto::{ErrorKind, InvocationType};

use crate::backend::{Backend, Call, InvokeFuture};
use crate::config::{Access, Endpoint};
use crate::error::Failure;
use crate::lambda_api::LambdaInvokeClient;
use crate::metrics::Metrics;
use crate::stream::Answer;

/// Connect timeout for AWS calls (the SDK's own default is 3.1 s).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);
/// Operation timeout for control-plane calls (STS, GetFunction, ListFunctions).
const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);

pub struct EndpointAws {
    pub name: String,
    /// Credentials as the endpoint invokes with (after AssumeRole, if any).
    sdk_config: SdkConfig,
    /// The access method's own credentials (before AssumeRole), for
    /// `check --live` to tell who they belong to.
    base_sdk_config: SdkConfig,
    /// Lambda Invoke for the request path.
    invoke: LambdaInvokeClient,
    /// SDK Lambda clients for control-plane calls, per region.
    control: RwLock<HashMap<String, aws_sdk_lambda::Client>>,
}

impl fmt::Debug for EndpointAws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointAws")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl EndpointAws {
    /// Resolves the endpoint's secrets and builds its credentials chain.
    /// Errors are `(field, message)`; they name references, never values.
    pub async fn new(endpoint: &Endpoint, metrics: &Metrics) -> Result<Self, (String, String)> {
        let base_provider = match &endpoint.access {
            Access::Role => {
                let chain = DefaultCredentialsChain::builder()
                    .region(Region::new(endpoint.region.clone()))
                    .build()
                    .await;
                SharedCredentialsProvider::new(chain)
            }
            Access::Local { .. } => {
                return Err((
                    "access_method".to_owned(),
                    "`local` endpoints run functions on this machine and have no AWS side"
                        .to_owned(),
                ));
            }
            Access::Stored {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                let id = access_key_id
                    .resolve()
                    .map_err(|m| ("credentials.access_key_id".to_owned(), m))?;
                let secret = secret_access_key
                    .resolve()
                    .map_err(|m| ("credentials.secret_access_key".to_owned(), m))?;
                let token = match session_token {
                    Some(t) => Some(
                        t.resolve()
                            .map_err(|m| ("credentials.session_token".to_owned(), m))?,
                    ),
                    None => None,
                };
                SharedCredentialsProvider::new(Credentials::new(
                    id.expose(),
                    secret.expose(),
                    token.map(|t| t.expose().to_owned()),
                    None,
                    "lambdagate-stored",
                ))
            }
        };
        let base_counted = SharedCredentialsProvider::new(CountedProvider {
            inner: base_provider,
            endpoint: endpoint.name.clone(),
            metrics: metrics.clone(),
            is_sts: false,
        });
        let base_sdk_config = load_sdk_config(endpoint, base_counted.clone()).await;
        let (sdk_config, invoke_provider) = match &endpoint.assume_role {
            None => (base_sdk_config.clone(), base_counted),
            Some(role) => {
                let mut builder = AssumeRoleProvider::builder(role.role_arn.clone())
                    .session_name(role.session_name.clone())
                    .region(Region::new(role.region.clone()))
                    .configure(&base_sdk_config);
                if let Some(id) = &role.external_id {
                    builder = builder.external_id(id.clone());
                }
                if let Some(secs) = role.duration_seconds {
                    builder = builder.session_length(Duration::from_secs(u64::from(secs)));
                }
                let assumed = builder.build().await;
                let counted = SharedCredentialsProvider::new(CountedProvider {
                    inner: SharedCredentialsProvider::new(assumed),
                    endpoint: endpoint.name.clone(),
                    metrics: metrics.clone(),
                    is_sts: true,
                });
                (load_sdk_config(endpoint, counted.clone()).await, counted)
            }
        };
        let invoke = LambdaInvokeClient::new(
            &endpoint.name,
            endpoint.endpoint_url.as_deref(),
            invoke_provider,
            CONNECT_TIMEOUT,
        );
        Ok(EndpointAws {
            name: endpoint.name.clone(),
            sdk_config,
            base_sdk_config,
            invoke,
            control: RwLock::new(HashMap::new()),
        })
    }

    /// The Invoke client of the request path.
    pub fn invoke_client(&self) -> &LambdaInvokeClient {
        &self.invoke
    }

    /// SDK Lambda client for control-plane calls in `region`, built once
    /// per region and kept (a gateway talks to few regions).
    pub fn lambda_control(&self, region: &str) -> aws_sdk_lambda::Client {
        if let Ok(clients) = self.control.read()
            && let Some(client) = clients.get(region)
        {
            return client.clone();
        }
        let conf = aws_sdk_lambda::config::Builder::from(&self.sdk_config)
            .region(Region::new(region.to_owned()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(CONTROL_TIMEOUT)
                    .build(),
            )
            .build();
        let client = aws_sdk_lambda::Client::from_conf(conf);
        if let Ok(mut clients) = self.control.write() {
            clients.insert(region.to_owned(), client.clone());
        }
        client
    }

    /// STS with the credentials the endpoint invokes with.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.sdk_config)
    }

    /// STS with the access method's own credentials (before AssumeRole).
    pub fn base_sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.base_sdk_config)
    }
}

async fn load_sdk_config(endpoint: &Endpoint, provider: SharedCredentialsProvider) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(endpoint.region.clone()))
        .credentials_provider(provider)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_timeout(CONTROL_TIMEOUT)
                .build(),
        );
    if let Some(url) = &endpoint.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader.load().await
}

/// Counts credential loads (each one is a cache miss; for an assumed role,
/// an STS AssumeRole call) and failures, for the metrics.
struct CountedProvider {
    inner: SharedCredentialsProvider,
    endpoint: String,
    metrics: Metrics,
    is_sts: bool,
}

impl fmt::Debug for CountedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountedProvider")
            .field("endpoint", &self.endpoint)
            .field("is_sts", &self.is_sts)
            .finish_non_exhaustive()
    }
}

impl ProvideCredentials for CountedProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.metrics.credential_fetch(&self.endpoint);
            if self.is_sts {
                self.metrics.sts_refresh(&self.endpoint);
            }
            let result = self.inner.provide_credentials().await;
            match &result {
                Ok(_) => tracing::info!(
                    endpoint = %self.endpoint,
                    source = if self.is_sts { "sts_assume_role" } else { "access_method" },
                    "loaded AWS credentials"
                ),
                Err(e) => {
                    self.metrics.credential_error(&self.endpoint);
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %crate::error::chain_text(e),
                        "could not load AWS credentials"
                    );
                }
            }
            result
        })
    }
}

impl Backend for EndpointAws {
    fn signs_payload(&self) -> bool {
        true
    }

    fn invoke(&self, call: Call) -> InvokeFuture<'_> {
        Box::pin(async move {
            let client = self.invoke_client();
            if call.stream {
                if call.invocation_type != InvocationType::RequestResponse {
                    return Err(Failure::new(
                        ErrorKind::InvalidRequest,
                        "a streamed invocation must be RequestResponse",
                    ));
                }
                return client
                    .invoke_stream(&call.arn, call.payload, &call.trace_id, call.timeout)
                    .await;
            }
            client
                .invoke(
                    &call.arn,
                    call.invocation_type,
                    call.payload,
                    &call.trace_id,
                    call.timeout,
                )
                .await
                .map(Answer::Buffered)
        })
    }
}
