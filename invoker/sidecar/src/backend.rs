//! Where an endpoint's invocations go. The sidecar calls every function
//! through [`Backend`]: Lambda's API for AWS endpoints (this crate), the
//! function processes of a `local` endpoint (the `lambdagate-local` crate,
//! plugged in by the binary through [`LocalRuntime`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lambdagate_core::LambdaArn;
use lambdagate_proto::InvocationType;

use crate::config::LocalFunctionSpec;
use crate::error::Failure;
use crate::stream::Answer;

/// One invocation, checked: the endpoint allows the ARN, the payload is
/// within Lambda's limit for its type, the timeout is the route's.
#[derive(Debug)]
pub struct Call {
    pub arn: LambdaArn,
    pub payload: Payload,
    pub timeout: Duration,
    pub invocation_type: InvocationType,
    /// The gateway's request id (empty: the backend makes one).
    pub request_id: String,
    /// The X-Ray trace header (empty: none).
    pub trace_id: String,
    /// The caller takes the response as a stream (InvokeWithResponseStream).
    pub stream: bool,
}

/// What Lambda gets, and its SHA-256 (lowercase hex) when the invoker took
/// it while it built the payload off the runtime thread (see `offload`):
/// a backend that signs with SigV4 ([`Backend::signs_payload`]) then need
/// not hash it again.
#[derive(Debug)]
pub struct Payload {
    pub bytes: Bytes,
    pub sha256: Option<String>,
}

/// What a backend's invocation resolves to.
pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<Answer, Failure>> + Send + 'a>>;

/// Runs invocations for one endpoint.
pub trait Backend: Send + Sync {
    fn invoke(&self, call: Call) -> InvokeFuture<'_>;

    /// Whether calls are signed with SigV4, whose signature covers the
    /// payload's SHA-256.
    fn signs_payload(&self) -> bool {
        false
    }
}

/// Makes the backend of a `local` endpoint (its function processes).
pub trait LocalRuntime: Send + Sync {
    fn backend(
        &self,
        endpoint: &str,
        region: &str,
        functions: &[LocalFunctionSpec],
    ) -> Arc<dyn Backend>;
}

/// For a sidecar built without local functions: every call to a `local`
/// endpoint fails with the reason.
pub struct NoLocalRuntime;

struct Unsupported;

impl Backend for Unsupported {
    fn invoke(&self, _call: Call) -> InvokeFuture<'_> {
        Box::pin(async {
            Err(Failure::new(
                lambdagate_proto::ErrorKind::InvalidConfig,
                "this invoker cannot run `local` functions",
            ))
        })
    }
}

impl LocalRuntime for NoLocalRuntime {
    fn backend(&self, _: &str, _: &str, _: &[LocalFunctionSpec]) -> Arc<dyn Backend> {
        Arc::new(Unsupported)
    }
}
