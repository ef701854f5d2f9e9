//! One invocation: validate the request, check the allow-list, call Lambda
//! Invoke with the route's timeout, and shape the reply.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lambdagate_core::request::event::{self, EventError};
use lambdagate_core::{LambdaArn, Timeout};
use lambdagate_proto::{
    ErrorKind, EventHead, InvocationType, InvokeReply, InvokeRequest, MAX_EVENT_PAYLOAD_BYTES,
    MAX_SYNC_PAYLOAD_BYTES,
};

use std::collections::HashMap;

use lambdagate_core::Outcome;

use crate::aws::EndpointAws;
use crate::backend::{Backend, Call, LocalRuntime, Payload};
use crate::config::Access;
use crate::config::{Config, ConfigError};
use crate::error::Failure;
use crate::metrics::Metrics;
use crate::offload;
use crate::record::CallRecord;
use crate::sigv4::sha256_hex;
use crate::stream::Answer;

/// The metrics label of requests naming no configured endpoint. Endpoint
/// names cannot contain parentheses, so it never collides with one.
pub const UNKNOWN_ENDPOINT_LABEL: &str = "(unknown)";

/// How long before the caller's gRPC deadline our own timeout fires.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

pub struct Invoker {
    config: Config,
    endpoints: HashMap<String, Arc<dyn Backend>>,
    metrics: Metrics,
}

impl Invoker {
    /// Builds credentials for every endpoint (and, through `local`, the
    /// function processes of `local` endpoints). Fails when a stored
    /// secret cannot be read, naming the field.
    pub async fn new(
        config: Config,
        metrics: Metrics,
        file: &str,
        local: &dyn LocalRuntime,
    ) -> Result<Self, ConfigError> {
        let mut endpoints: HashMap<String, Arc<dyn Backend>> = HashMap::new();
        for (name, endpoint) in &config.endpoints {
            if let Access::Local { functions } = &endpoint.access {
                endpoints.insert(
                    name.clone(),
                    local.backend(name, &endpoint.region, functions),
                );
                continue;
            }
            let aws = EndpointAws::new(endpoint, &metrics)
                .await
                .map_err(|(field, message)| ConfigError {
                    file: file.to_owned(),
                    field: format!("endpoints.{name}.{field}"),
                    message,
                })?;
            endpoints.insert(name.clone(), Arc::new(aws));
        }
        Ok(Invoker {
            config,
            endpoints,
            metrics,
        })
    }

    /// Invokes and records the outcome. `deadline` is what the gRPC caller
    /// allows (grpc-timeout); the route timeout is clamped to it so that
    /// our own timeout fires first and is reported as TIMEOUT.
    pub async fn invoke(
        &self,
        request: InvokeRequest,
        deadline: Option<Duration>,
    ) -> Result<InvokeReply, Failure> {
        match self.invoke_answer(request, deadline, false).await? {
            Answer::Buffered(reply) => Ok(reply),
            Answer::Stream(_) => Err(Failure::new(
                ErrorKind::Internal,
                "a buffered invocation was answered with a stream",
            )),
        }
    }

    /// Invokes, as a stream when `stream` (InvokeWithResponseStream), and
    /// records the outcome: for a stream, when it ends. The route timeout
    /// covers the whole stream.
    pub async fn invoke_answer(
        &self,
        request: InvokeRequest,
        deadline: Option<Duration>,
        stream: bool,
    ) -> Result<Answer, Failure> {
        let started = Instant::now();
        // The label is a configured endpoint's name or one fixed value:
        // callers must not grow the label set at will.
        let endpoint = match self.config.endpoint(&request.endpoint) {
            Some(endpoint) => endpoint.name.clone(),
            None => UNKNOWN_ENDPOINT_LABEL.to_owned(),
        };
        let request_id = request.request_id.clone();
        let timeout = route_timeout(&request, deadline);
        let stream_deadline = started + timeout.clone().unwrap_or(DEADLINE_MARGIN);
        let (function, result) = self.invoke_inner(request, timeout, stream).await;
        let call = CallRecord {
            metrics: self.metrics.clone(),
            endpoint,
            function,
            request_id,
            started,
        };
        match result {
            Ok(Answer::Stream(reply)) => Ok(Answer::Stream(call.metered(reply, stream_deadline))),
            Ok(Answer::Buffered(reply)) => {
                let outcome = if reply.function_error.is_empty() {
                    Outcome::Ok
                } else {
                    Outcome::FunctionError
                };
                call.finished(outcome, None, Some(reply.status_code));
                Ok(Answer::Buffered(reply))
            }
            Err(failure) => {
                call.finished(failure.outcome(), Some(&failure), None);
                Err(failure)
            }
        }
    }

    /// Returns the metrics label for the function (the ARN once it is
    /// known to be allowed, else "-") and the result.
    async fn invoke_inner(
        &self,
        request: InvokeRequest,
        timeout: Result<Duration, Failure>,
        stream: bool,
    ) -> (String, Result<Answer, Failure>) {
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
        let result = self
            .call(backend.as_ref(), &arn, request, timeout, stream)
            .await;
        (label, result)
    }

    async fn call(
        &self,
        backend: &dyn Backend,
        arn: &LambdaArn,
        mut request: InvokeRequest,
        timeout: Result<Duration, Failure>,
        stream: bool,
    ) -> Result<Answer, Failure> {
        // Checked here, after the endpoint and the allow-list.
        let timeout = timeout?;
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
        let kind = match invocation_type {
            InvocationType::Event => "Event (asynchronous)",
            _ => "synchronous",
        };
        let payload = built_payload(&mut request, limit, kind, backend.signs_payload()).await?;
        if payload.bytes.len() > limit {
            return Err(Failure::new(
                ErrorKind::PayloadTooLarge,
                format!(
                    "payload of {} bytes exceeds Lambda's {kind} limit of {limit} bytes",
                    payload.bytes.len()
                ),
            ));
        }
        backend
            .invoke(Call {
                arn: arn.clone(),
                payload,
                timeout,
                invocation_type,
                request_id: request.request_id,
                trace_id: request.trace_id,
                stream,
            })
            .await
    }
}

/// The request's payload for Lambda ([`lambda_payload`]); for a large
/// event, written in off the runtime thread, in the same job as its
/// SHA-256 when the backend signs (`signs`), so the call crosses threads
/// once.
async fn built_payload(
    request: &mut InvokeRequest,
    limit: usize,
    kind: &'static str,
    signs: bool,
) -> Result<Payload, Failure> {
    let head = request.event.take();
    let body = std::mem::take(&mut request.payload);
    let work = if head.is_some() { body.len() } else { 0 };
    let hash = signs && work >= offload::OFFLOAD_BYTES;
    offload::cpu_work(work, move || {
        let bytes = lambda_payload(head, body, limit, kind)?;
        let sha256 = hash.then(|| sha256_hex(&bytes));
        Ok(Payload { bytes, sha256 })
    })
    .await?
}

/// What Lambda gets: the request's payload (`body`), or, when the gateway
/// sent the event without its body (`head`), the event with the body
/// written in, natively and never past `limit`. The raw body is let go once it is
/// written in.
fn lambda_payload(
    head: Option<EventHead>,
    body: Bytes,
    limit: usize,
    kind: &str,
) -> Result<Bytes, Failure> {
    let Some(head) = head else {
        return Ok(body);
    };
    match event::finish_within(&head, &body, limit) {
        Ok(event) => Ok(Bytes::from(event)),
        Err(EventError::TooLarge { .. }) => Err(Failure::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "the Lambda event for a body of {} bytes exceeds Lambda's {kind} limit of {limit} bytes",
                body.len()
            ),
        )),
        Err(other) => Err(Failure::new(ErrorKind::InvalidRequest, other.to_string())),
    }
}

/// The route timeout of `request`, clamped to the caller's deadline: when
/// that is shorter we stop a little before it, so that the caller gets our
/// TIMEOUT with a clear message rather than cancelling the call itself.
fn route_timeout(request: &InvokeRequest, deadline: Option<Duration>) -> Result<Duration, Failure> {
    let timeout = Timeout::from_millis(request.timeout_ms)
        .map_err(|e| Failure::new(ErrorKind::InvalidRequest, e.to_string()))?
        .as_duration();
    Ok(deadline.map_or(timeout, |d| {
        timeout.min(
            d.saturating_sub(DEADLINE_MARGIN)
                .max(Duration::from_millis(1)),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambdagate_proto::BodyEncoding;

    fn event_request(body_bytes: usize) -> InvokeRequest {
        InvokeRequest {
            payload: vec![b'x'; body_bytes].into(),
            event: Some(EventHead {
                json: b"{\"version\":\"2.0\"".to_vec(),
                body: BodyEncoding::BodyHttpText as i32,
            }),
            ..InvokeRequest::default()
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_event_is_hashed_where_it_is_built_for_a_signing_backend_only() {
        let large = offload::OFFLOAD_BYTES;
        let limit = MAX_SYNC_PAYLOAD_BYTES;
        let signed = built_payload(&mut event_request(large), limit, "synchronous", true)
            .await
            .unwrap();
        let event: serde_json::Value = serde_json::from_slice(&signed.bytes).unwrap();
        assert_eq!(event["body"].as_str().map(str::len), Some(large));
        assert_eq!(signed.sha256, Some(sha256_hex(&signed.bytes)));

        let unsigned = built_payload(&mut event_request(large), limit, "synchronous", false)
            .await
            .unwrap();
        assert_eq!(unsigned.bytes, signed.bytes);
        assert_eq!(unsigned.sha256, None);
        // Small events are hashed by the backend, on the runtime thread.
        let small = built_payload(&mut event_request(1024), limit, "synchronous", true)
            .await
            .unwrap();
        assert_eq!(small.sha256, None);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_event_over_the_limit_is_refused_off_the_runtime_thread_too() {
        let request = &mut event_request(offload::OFFLOAD_BYTES);
        let refused = built_payload(request, 1000, "synchronous", true).await;
        assert!(
            matches!(&refused, Err(f) if f.kind == ErrorKind::PayloadTooLarge),
            "{:?}",
            refused.map(|p| p.bytes.len())
        );
    }
}
