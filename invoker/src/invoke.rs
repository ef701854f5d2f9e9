//! One invocation: validate the request, check the allow-list, call Lambda
//! Invoke with the route's timeout, and shape the reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambdagate_core::{LambdaArn, Timeout};
use lambdagate_proto::{
    ErrorKind, InvocationType, InvokeReply, InvokeRequest, MAX_EVENT_PAYLOAD_BYTES,
    MAX_SYNC_PAYLOAD_BYTES,
};

use std::collections::HashMap;

use crate::aws::EndpointAws;
use crate::config::Access;
use crate::config::{Config, ConfigError};
use crate::error::Failure;
use crate::local::LocalBackend;
use crate::metrics::Metrics;

/// The metrics label of requests naming no configured endpoint. Endpoint
/// names cannot contain parentheses, so it never collides with one.
pub const UNKNOWN_ENDPOINT_LABEL: &str = "(unknown)";

/// Where an endpoint's invocations go.
enum Backend {
    Aws(Arc<EndpointAws>),
    Local(Arc<LocalBackend>),
}

/// How long before the caller's gRPC deadline our own timeout fires.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

pub struct Invoker {
    config: Config,
    endpoints: HashMap<String, Backend>,
    metrics: Metrics,
}

impl Invoker {
    /// Builds credentials for every endpoint. Fails when a stored secret
    /// cannot be read, naming the field.
    pub async fn new(config: Config, metrics: Metrics, file: &str) -> Result<Self, ConfigError> {
        let mut endpoints = HashMap::new();
        for (name, endpoint) in &config.endpoints {
            if let Access::Local { functions } = &endpoint.access {
                let local = LocalBackend::new(name, &endpoint.region, functions);
                endpoints.insert(name.clone(), Backend::Local(Arc::new(local)));
                continue;
            }
            let aws = EndpointAws::new(endpoint, &metrics)
                .await
                .map_err(|(field, message)| ConfigError {
                    file: file.to_owned(),
                    field: format!("endpoints.{name}.{field}"),
                    message,
                })?;
            endpoints.insert(name.clone(), Backend::Aws(Arc::new(aws)));
        }
        Ok(Invoker {
            config,
            endpoints,
            metrics,
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn endpoint_aws(&self, name: &str) -> Option<&Arc<EndpointAws>> {
        match self.endpoints.get(name) {
            Some(Backend::Aws(aws)) => Some(aws),
            _ => None,
        }
    }

    /// Invokes and records the outcome. `deadline` is what the gRPC caller
    /// allows (grpc-timeout); the route timeout is clamped to it so that
    /// our own timeout fires first and is reported as TIMEOUT.
    pub async fn invoke(
        &self,
        request: InvokeRequest,
        deadline: Option<Duration>,
    ) -> Result<InvokeReply, Failure> {
        let started = Instant::now();
        // The label is a configured endpoint's name or one fixed value:
        // callers must not grow the label set at will.
        let endpoint_label = match self.config.endpoint(&request.endpoint) {
            Some(endpoint) => endpoint.name.clone(),
            None => UNKNOWN_ENDPOINT_LABEL.to_owned(),
        };
        let request_id = request.request_id.clone();
        let (function_label, result) = self.invoke_inner(request, deadline).await;
        let outcome = match &result {
            Ok(reply) if !reply.function_error.is_empty() => "function_error",
            Ok(_) => "ok",
            Err(f) => f.outcome(),
        };
        let took = started.elapsed();
        self.metrics
            .record_invocation(&endpoint_label, &function_label, outcome, took);
        match &result {
            Ok(reply) => tracing::debug!(
                request_id = %request_id,
                endpoint = %endpoint_label,
                function = %function_label,
                outcome,
                status = reply.status_code,
                lambda_request_id = %reply.lambda_request_id,
                duration_ms = took.as_millis() as u64,
                "invoked"
            ),
            Err(f) => tracing::warn!(
                request_id = %request_id,
                endpoint = %endpoint_label,
                function = %function_label,
                outcome,
                duration_ms = took.as_millis() as u64,
                error = %f.message,
                "invocation failed"
            ),
        }
        result
    }

    /// Returns the metrics label for the function (the ARN once it is
    /// known to be allowed, else "-") and the result.
    async fn invoke_inner(
        &self,
        request: InvokeRequest,
        deadline: Option<Duration>,
    ) -> (String, Result<InvokeReply, Failure>) {
        let unknown = || "-".to_owned();
        let Some(endpoint) = self.config.endpoint(&request.endpoint) else {
            let configured = self.config.endpoint_names().join(", ");
            let message = if request.endpoint.is_empty() {
                format!(
                    "the request names no endpoint and the invoker has no `default_endpoint` (configured endpoints: {configured})"
                )
            } else {
                format!(
                    "endpoint `{}` is not configured in the invoker (configured: {configured}); add it to the invoker config or fix the API's endpoint name",
                    request.endpoint
                )
            };
            return (
                unknown(),
                Err(Failure::new(ErrorKind::InvalidConfig, message)),
            );
        };
        let Some(backend) = self.endpoints.get(&endpoint.name) else {
            return (
                unknown(),
                Err(Failure::new(
                    ErrorKind::Internal,
                    "endpoint has no AWS client",
                )),
            );
        };
        let arn = match LambdaArn::parse(&request.function_arn) {
            Ok(arn) => arn,
            Err(e) => {
                return (
                    unknown(),
                    Err(Failure::new(ErrorKind::InvalidRequest, e.to_string())),
                );
            }
        };
        if !endpoint.allow.allows(&arn) {
            return (
                unknown(),
                Err(Failure::new(
                    ErrorKind::NotAllowed,
                    format!(
                        "function `{arn}` is not in the allow list of endpoint `{}`; add it (or a matching glob) to endpoints.{}.allow in the invoker config",
                        endpoint.name, endpoint.name
                    ),
                )),
            );
        }
        let label = arn.to_string();
        let result = self.call(backend, &arn, request, deadline).await;
        (label, result)
    }

    async fn call(
        &self,
        backend: &Backend,
        arn: &LambdaArn,
        request: InvokeRequest,
        deadline: Option<Duration>,
    ) -> Result<InvokeReply, Failure> {
        let timeout = Timeout::from_millis(request.timeout_ms)
            .map_err(|e| Failure::new(ErrorKind::InvalidRequest, e.to_string()))?
            .as_duration();
        // The caller's deadline wins when shorter. We stop a little before
        // it so that the caller gets our TIMEOUT with a clear message
        // rather than cancelling the call itself.
        let timeout = deadline.map_or(timeout, |d| {
            timeout.min(
                d.saturating_sub(DEADLINE_MARGIN)
                    .max(Duration::from_millis(1)),
            )
        });
        let invocation_type = InvocationType::try_from(request.invocation_type).map_err(|_| {
            Failure::new(
                ErrorKind::InvalidRequest,
                format!(
                    "invocation_type {} is unknown (RequestResponse = 0, Event = 1, DryRun = 2)",
                    request.invocation_type
                ),
            )
        })?;
        let limit = match invocation_type {
            InvocationType::Event => MAX_EVENT_PAYLOAD_BYTES,
            InvocationType::RequestResponse | InvocationType::DryRun => MAX_SYNC_PAYLOAD_BYTES,
        };
        if request.payload.len() > limit {
            return Err(Failure::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "payload of {} bytes exceeds Lambda's {} limit of {} bytes",
                    request.payload.len(),
                    match invocation_type {
                        InvocationType::Event => "Event (asynchronous)",
                        _ => "synchronous",
                    },
                    limit
                ),
            ));
        }
        let aws = match backend {
            Backend::Aws(aws) => aws,
            Backend::Local(local) => {
                return local
                    .invoke(
                        &arn.unqualified(),
                        arn.function_name(),
                        request.payload,
                        timeout,
                        invocation_type,
                        crate::local::CallIds {
                            request_id: &request.request_id,
                            trace_id: &request.trace_id,
                        },
                    )
                    .await;
            }
        };
        aws.invoke_client()
            .invoke(
                arn,
                invocation_type,
                request.payload,
                &request.trace_id,
                timeout,
            )
            .await
    }
}
