//! Access method `local`: the invoker runs function programs itself and
//! serves them the Lambda Runtime API, so an API can be tried (and tested)
//! with real function code and no AWS account. Any program built on an
//! official runtime client works: Rust `lambda_runtime`/`lambda_http`,
//! Python `awslambdaric`, a custom `bootstrap`.
//!
//! Lambda's semantics that a gateway depends on are kept: a warm process
//! is reused; concurrent calls start more processes up to the function's
//! `max_concurrency`, beyond which calls are throttled; a handler error is
//! an `Unhandled` function error carrying the runtime's error JSON; an init
//! error is reported clearly (logged once); a process that outlives the
//! timeout is killed and replaced; a crashed process is replaced.
//!
//! Each process gets its own Runtime API listener on a loopback port, so
//! the invoker always knows which process asks for work.

use std::collections::HashMap;
use std::sync::Arc;

use lambdagate_proto::{ErrorKind, InvocationType, InvokeReply};
use lambdagate_sidecar::backend::{Backend, Call, InvokeFuture, LocalRuntime, Payload};
use lambdagate_sidecar::config::LocalFunctionSpec;
use lambdagate_sidecar::error::Failure;
use lambdagate_sidecar::stream::Answer;

use function::LocalFunction;

mod function;
mod process;
mod runtime_api;

/// The `local` endpoints' backends: what the `lambdagate` binary plugs
/// into the sidecar.
pub struct LocalFunctions;

impl LocalRuntime for LocalFunctions {
    fn backend(
        &self,
        endpoint: &str,
        region: &str,
        functions: &[LocalFunctionSpec],
    ) -> Arc<dyn Backend> {
        Arc::new(LocalBackend::new(endpoint, region, functions))
    }
}

/// The functions of one `local` endpoint, by ARN (unqualified) and name.
pub struct LocalBackend {
    endpoint: String,
    functions: HashMap<String, Arc<LocalFunction>>,
}

impl Backend for LocalBackend {
    fn invoke(&self, call: Call) -> InvokeFuture<'_> {
        Box::pin(self.run_call(call))
    }
}

impl LocalBackend {
    pub fn new(endpoint: &str, region: &str, specs: &[LocalFunctionSpec]) -> Self {
        let mut functions = HashMap::new();
        for spec in specs {
            let function = Arc::new(LocalFunction::new(endpoint, region, spec));
            functions.insert(function.arn.clone(), function.clone());
            functions.insert(spec.name.clone(), function);
        }
        LocalBackend {
            endpoint: endpoint.to_owned(),
            functions,
        }
    }

    /// Invokes the function the call's (unqualified) ARN or name names.
    /// `call.stream`: the caller takes the response as a stream.
    async fn run_call(&self, call: Call) -> Result<Answer, Failure> {
        let Call {
            arn,
            payload: Payload { bytes: payload, .. },
            timeout,
            invocation_type,
            request_id,
            trace_id,
            stream,
        } = call;
        let unqualified_arn = arn.unqualified();
        let unqualified_arn = unqualified_arn.as_str();
        let function_name = arn.function_name();
        let Some(function) = self
            .functions
            .get(unqualified_arn)
            .or_else(|| self.functions.get(function_name))
            .cloned()
        else {
            return Err(Failure::new(
                ErrorKind::FunctionNotFound,
                format!(
                    "local endpoint `{}` has no function `{unqualified_arn}`; add it under endpoints.{}.functions",
                    self.endpoint, self.endpoint
                ),
            ));
        };
        match invocation_type {
            InvocationType::DryRun => Ok(Answer::Buffered(InvokeReply {
                status_code: 204,
                ..Default::default()
            })),
            InvocationType::Event => {
                // Like Lambda: accepted now, run in the background.
                tokio::spawn(async move {
                    if let Err(f) = function
                        .run(payload, timeout, &request_id, &trace_id, false)
                        .await
                    {
                        tracing::warn!(function = %function.spec.name, request_id = %request_id, error = %f, "asynchronous invocation failed");
                    }
                });
                Ok(Answer::Buffered(InvokeReply {
                    status_code: 202,
                    executed_version: "$LATEST".into(),
                    ..Default::default()
                }))
            }
            InvocationType::RequestResponse => {
                function
                    .run(payload, timeout, &request_id, &trace_id, stream)
                    .await
            }
        }
    }
}
