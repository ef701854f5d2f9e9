//! The gRPC service Envoy calls: `Invoke` (the callout data path) and
//! `InvokeHttp` (the router data path, whose reply is already the client's
//! HTTP response).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use lambdagate_core::contract::usage_kind;
use lambdagate_proto::http_path::INVOKE_METADATA;
use lambdagate_proto::v1::invoker_server::Invoker as InvokerRpc;
use lambdagate_proto::{ErrorKind, InvokeReply, InvokeRequest, UsageCheck};
use lambdagate_usage::service::Verdict;
use prost::Message as _;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::budget::BudgetHold;
use crate::error::{Failure, failure_status};
use crate::http_reply::{HttpBodyStream, buffered_reply};
use crate::invoke::Invoker;
use crate::stream::Answer;
use crate::stream::reply::streamed_reply;

/// The invoker in use. A config reload replaces it as a whole; calls in
/// flight keep the one they started with.
pub(crate) type SharedInvoker = Arc<RwLock<Arc<Invoker>>>;

pub(crate) fn current(shared: &SharedInvoker) -> Arc<Invoker> {
    match shared.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

pub struct InvokerService {
    pub(crate) invoker: SharedInvoker,
    /// Usage plans, when the invoker's config has a `usage` section.
    pub(crate) usage: Option<lambdagate_usage::UsageService>,
}

impl InvokerService {
    /// A keyed route's check, before anything is invoked: `Err` is the
    /// refusal (403, 429, 503) the client gets instead.
    async fn admit(&self, check: Option<&UsageCheck>) -> Result<(), Failure> {
        let Some(check) = check else {
            return Ok(());
        };
        let route = format!("{} {}", check.method, check.path);
        let Some(usage) = &self.usage else {
            return Err(Failure::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{route} needs an API key, but the invoker's config has no `usage` section: render the invoker's config from the same API definition as Envoy's"
                ),
            ));
        };
        let api_key = Some(check.api_key.as_str()).filter(|k| !k.is_empty());
        match usage.judge(&check.method, &check.path, api_key).await {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Open => Err(Failure::new(
                ErrorKind::InvalidConfig,
                format!(
                    "the filter says {route} needs an API key, but the invoker's `usage` section has no keyed resource there: render both configs from the same API definition"
                ),
            )),
            Verdict::Refused {
                outcome,
                plan,
                key_id,
                retry_after_seconds,
            } => {
                let kind = usage_kind(outcome).unwrap_or(ErrorKind::InvalidApiKey);
                let failure = Failure::new(
                    kind,
                    format!(
                        "{route}: key id {}, plan {}",
                        key_id.as_deref().unwrap_or("-"),
                        plan.as_deref().unwrap_or("-")
                    ),
                );
                Err(match retry_after_seconds {
                    Some(s) => failure.retry_after(u32::try_from(s).unwrap_or(u32::MAX)),
                    None => failure,
                })
            }
        }
    }
}

fn deadline_of(metadata: &MetadataMap) -> Option<Duration> {
    metadata
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
}

#[tonic::async_trait]
impl InvokerRpc for InvokerService {
    async fn invoke(
        &self,
        request: Request<InvokeRequest>,
    ) -> Result<Response<InvokeReply>, Status> {
        let deadline = deadline_of(request.metadata());
        let request = request.into_inner();
        let failure_in_reply = request.failure_in_reply;
        let invoker = current(&self.invoker);
        let result = match self.admit(request.usage.as_ref()).await {
            Ok(()) => invoker.invoke(request, deadline).await,
            Err(refused) => Err(refused),
        };
        match result {
            Ok(reply) => Ok(Response::new(reply)),
            // The filter's callout: Envoy would hand it only the status.
            Err(failure) if failure_in_reply => Ok(Response::new(failure.into_reply())),
            Err(failure) => Err(failure_status(&failure, MetadataMap::new())),
        }
    }

    type InvokeHttpStream = HttpBodyStream;

    async fn invoke_http(
        &self,
        request: Request<Streaming<InvokeRequest>>,
    ) -> Result<Response<HttpBodyStream>, Status> {
        let deadline = deadline_of(request.metadata());
        let (metadata, extensions, mut messages) = request.into_parts();
        let budget = extensions.get::<BudgetHold>().cloned();
        let mut call = match metadata.get_bin(INVOKE_METADATA) {
            Some(value) => {
                let bytes = value.to_bytes().map_err(|_| {
                    Status::invalid_argument(format!("{INVOKE_METADATA} is not base64"))
                })?;
                InvokeRequest::decode(bytes).map_err(|e| {
                    Status::invalid_argument(format!("{INVOKE_METADATA} is no InvokeRequest: {e}"))
                })?
            }
            None => messages
                .message()
                .await?
                .ok_or_else(|| Status::invalid_argument("InvokeHttp without an InvokeRequest"))?,
        };
        // What the response mapping reads, without a copy of the payload.
        let payload = std::mem::take(&mut call.payload);
        let rules = call.clone();
        call.payload = payload;
        let streamed = rules.http_reply.as_ref().is_some_and(|r| r.stream);
        if let Err(refused) = self.admit(rules.usage.as_ref()).await {
            return Ok(buffered_reply(&rules, Err(refused)));
        }
        let invoker = current(&self.invoker);
        // In a task of its own: when the client leaves, Envoy resets this
        // stream and tonic drops this future, but a request the gateway
        // accepted is still invoked, once, as on the callout path. The
        // task keeps the call's budget: it holds the payload until then.
        let invocation = tokio::spawn(async move {
            let _budget = budget;
            invoker.invoke_answer(call, deadline, streamed).await
        });
        let result = match invocation.await {
            Ok(result) => result,
            Err(e) => Err(Failure::new(
                ErrorKind::Internal,
                format!("the invocation task failed: {e}"),
            )),
        };
        Ok(match result {
            Ok(Answer::Stream(stream)) => streamed_reply(&rules, stream).await,
            Ok(Answer::Buffered(reply)) => buffered_reply(&rules, Ok(reply)),
            Err(failure) => buffered_reply(&rules, Err(failure)),
        })
    }
}

/// `grpc-timeout` is an integer of at most 8 digits and a unit letter.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
    }
}
