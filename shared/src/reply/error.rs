//! The gateway's own answers: every error is a [`GatewayError`].
//!
//! [`GatewayError::answer`] is the one place that decides an error's HTTP
//! status, outcome and public message (an invoker's failure by the error
//! contract's table, `crate::contract`), and every error body is JSON
//! `{"message": "...", "requestId": "..."}` with `content-type:
//! application/json`.
//!
//! What the client reads is decided here, not by the function or by AWS:
//! a function's error, AWS's error text, ARNs and the invoker's reasons
//! stay out of the body ([`ErrorAnswer::public_message`]); they go to the
//! gateway's log ([`HttpResponse::detail`]). An API may opt in to showing
//! them (`expose_errors: true`), e.g. for a demo.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use lambdagate_proto::ErrorKind;
use serde::Serialize;
use serde_json::value::RawValue;

use super::response::HttpResponse;
use crate::config::InvocationType;
use crate::config::route::Verb;
use crate::config::timeout::Timeout;
use crate::contract::{
    ENDPOINT_TIMED_OUT, Failure, GrpcCode, INTERNAL_SERVER_ERROR, Outcome, SERVICE_UNAVAILABLE,
    contract, is_usage_refusal, retry_after as retry_after_of,
};

/// A non-OK gRPC status of the invoker call that did not come with a
/// failure typed by the invoker: Envoy's own (the invoker unreachable, the
/// deadline passed) or a transport error. Only its code is used: Envoy's
/// text can name clusters and addresses, which clients need not see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcStatus {
    pub code: u32,
}

/// Why the gateway answers with an error instead of the function's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GatewayError {
    /// An API covers the path, no resource matches it.
    NoRoute { method: String, path: String },
    /// The API is retired: its resources are no longer served.
    Retired { api: String },
    /// The request carries a header only the gateway may set (the router
    /// path's marker for calls to the invoker).
    ReservedHeader { name: &'static str },
    /// A resource matches the path, not the method.
    MethodNotAllowed {
        method: String,
        path: String,
        allow: Vec<Verb>,
    },
    /// The request body is over Lambda's limit (`Content-Length` or actual).
    BodyTooLarge {
        size: u64,
        limit: usize,
        invocation_type: InvocationType,
    },
    /// The event built from the request is over Lambda's limit (base64
    /// grows binary bodies by a third). `size` is a lower bound, exact for
    /// base64 bodies; the invoker checks the whole event it writes.
    EventTooLarge { size: usize, limit: usize },
    /// The event could not be serialized (never expected).
    EventBuild,
    /// Envoy did not hand over what it said it had (the request body, the
    /// invoker's reply): never answered as if it were empty.
    HostRead { what: &'static str, reason: String },
    /// The function ran and failed (`X-Amz-Function-Error`).
    FunctionError {
        arn: String,
        /// `Handled` or `Unhandled`.
        kind: String,
        /// The resource's `function_error_status`.
        status: u16,
        /// The function's error payload.
        payload: Vec<u8>,
    },
    /// The invoker answered with a typed error.
    Invoker {
        kind: ErrorKind,
        /// The invoker's text (safe to show: it never holds secrets).
        text: String,
        arn: String,
        timeout: Timeout,
        /// The failure's own `Retry-After` (else the contract's).
        retry_after: Option<u32>,
    },
    /// gRPC UNAVAILABLE without a kind: Envoy could not reach the invoker.
    InvokerUnreachable,
    /// gRPC DEADLINE_EXCEEDED without a kind: Envoy gave up waiting.
    InvokerDeadline { after: Duration },
    /// Any other gRPC failure without a kind.
    InvokerFailed { code: u32 },
    /// The invoker's reply could not be decoded.
    BadReply,
    /// The function returned a Lambda proxy response that cannot be used.
    MalformedProxyResponse { arn: String, reason: String },
    /// The request's body would take the upload budget over its limit.
    Overloaded {
        wanted: u64,
        in_use: u64,
        limit: u64,
    },
    /// API Gateway's UNAUTHORIZED: an identity source is missing, the token
    /// fails the validation expression, or the authorizer said
    /// `Unauthorized`.
    Unauthorized { authorizer: String, reason: String },
    /// API Gateway's ACCESS_DENIED: the authorizer's policy does not allow
    /// this method and path (`explicit`: a Deny statement matched).
    /// `rest`: the API is a REST API (payload v1), whose message differs.
    AccessDenied {
        authorizer: String,
        principal: String,
        method_arn: String,
        explicit: bool,
        rest: bool,
    },
    /// API Gateway's AUTHORIZER_FAILURE: the authorizer threw, timed out or
    /// answered what is not an authorizer response.
    AuthorizerFailure { authorizer: String, reason: String },
    /// API Gateway's AUTHORIZER_CONFIGURATION_ERROR: the authorizer could
    /// not be called (not allowed, not found, no credentials).
    AuthorizerConfiguration { authorizer: String, reason: String },
}

/// API Gateway's default ACCESS_DENIED messages: a REST API's, an HTTP API's.
pub const ACCESS_DENIED_REST: &str = "User is not authorized to access this resource";
pub const FORBIDDEN: &str = "Forbidden";
pub const UNAUTHORIZED: &str = "Unauthorized";

/// What the client is told about an error, and what the logs call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorAnswer {
    pub status: u16,
    pub outcome: Outcome,
    /// What a client reads when the API does not expose errors: API
    /// Gateway's wording for failures behind the gateway, which never
    /// carries a function's error, an ARN, an account or AWS's text.
    /// `None`: the whole message is about the client's own request (404,
    /// 405, 413) and is shown as it is.
    pub public_message: Option<&'static str>,
}

impl GatewayError {
    /// Status, outcome and public message of every error: the one place
    /// that decides them (an invoker's failure by the contract's table).
    pub fn answer(&self) -> ErrorAnswer {
        let own = |status, outcome| ErrorAnswer {
            status,
            outcome,
            public_message: None,
        };
        let behind = |status, outcome, public| ErrorAnswer {
            status,
            outcome,
            public_message: Some(public),
        };
        match self {
            GatewayError::NoRoute { .. } => own(404, Outcome::NoRoute),
            GatewayError::Retired { .. } => own(410, Outcome::Retired),
            GatewayError::ReservedHeader { .. } => own(400, Outcome::ReservedHeader),
            GatewayError::MethodNotAllowed { .. } => own(405, Outcome::MethodNotAllowed),
            GatewayError::BodyTooLarge { .. } | GatewayError::EventTooLarge { .. } => {
                own(413, Outcome::BodyTooLarge)
            }
            GatewayError::EventBuild => behind(500, Outcome::Internal, INTERNAL_SERVER_ERROR),
            GatewayError::HostRead { .. } => {
                behind(500, Outcome::HostReadFailed, INTERNAL_SERVER_ERROR)
            }
            GatewayError::FunctionError { status, .. } => {
                behind(*status, Outcome::FunctionError, INTERNAL_SERVER_ERROR)
            }
            GatewayError::Invoker { kind, .. } => {
                let row = contract(*kind);
                behind(row.http_status, row.outcome, row.public_message)
            }
            GatewayError::InvokerUnreachable => {
                behind(503, Outcome::InvokerUnreachable, SERVICE_UNAVAILABLE)
            }
            GatewayError::InvokerDeadline { .. } => {
                behind(504, Outcome::Timeout, ENDPOINT_TIMED_OUT)
            }
            GatewayError::InvokerFailed { .. } => {
                behind(502, Outcome::InvokerFailed, INTERNAL_SERVER_ERROR)
            }
            GatewayError::BadReply => behind(502, Outcome::BadReply, INTERNAL_SERVER_ERROR),
            GatewayError::MalformedProxyResponse { .. } => {
                behind(502, Outcome::MalformedProxyResponse, INTERNAL_SERVER_ERROR)
            }
            GatewayError::Overloaded { .. } => {
                behind(503, Outcome::Overloaded, SERVICE_UNAVAILABLE)
            }
            GatewayError::Unauthorized { .. } => behind(401, Outcome::Unauthorized, UNAUTHORIZED),
            GatewayError::AccessDenied { rest, .. } => behind(
                403,
                Outcome::Forbidden,
                if *rest { ACCESS_DENIED_REST } else { FORBIDDEN },
            ),
            GatewayError::AuthorizerFailure { .. } => {
                behind(500, Outcome::AuthorizerFailure, INTERNAL_SERVER_ERROR)
            }
            GatewayError::AuthorizerConfiguration { .. } => behind(
                500,
                Outcome::AuthorizerConfigurationError,
                INTERNAL_SERVER_ERROR,
            ),
        }
    }

    fn is_usage_refusal(&self) -> bool {
        matches!(self, GatewayError::Invoker { kind, .. } if is_usage_refusal(*kind))
    }

    /// The HTTP status (see [`Self::answer`]).
    pub fn status(&self) -> u16 {
        self.answer().status
    }

    /// The outcome (see [`Self::answer`]).
    pub fn outcome(&self) -> Outcome {
        self.answer().outcome
    }

    /// What a client is told without `expose_errors` (see [`Self::answer`]).
    pub fn public_message(&self) -> Option<&'static str> {
        self.answer().public_message
    }

    /// The invoker's failure as the client's error.
    pub fn from_failure(failure: Failure, arn: &str, timeout: Timeout) -> Self {
        GatewayError::Invoker {
            kind: failure.kind,
            text: failure.message,
            arn: arn.to_owned(),
            timeout,
            retry_after: failure.retry_after_seconds,
        }
    }

    /// A non-OK status of the invoker call without a typed failure: Envoy
    /// could not reach the invoker, Envoy's deadline passed, or another
    /// failure of the call (see [`GrpcStatus`]).
    pub fn from_grpc_status(status: GrpcStatus, timeout: Timeout) -> Self {
        if status.code == GrpcCode::Unavailable.as_u32() {
            GatewayError::InvokerUnreachable
        } else if status.code == GrpcCode::DeadlineExceeded.as_u32() {
            GatewayError::InvokerDeadline {
                after: timeout.invoker_deadline(),
            }
        } else {
            GatewayError::InvokerFailed { code: status.code }
        }
    }

    /// Extra response headers.
    fn headers(&self) -> Vec<(String, String)> {
        match self {
            GatewayError::MethodNotAllowed { allow, .. } => {
                let allow: Vec<&str> = allow.iter().map(|v| v.as_str()).collect();
                vec![("allow".to_owned(), allow.join(", "))]
            }
            GatewayError::Invoker {
                kind, retry_after, ..
            } => retry_after_of(*kind, *retry_after)
                .map(|seconds| ("retry-after".to_owned(), seconds))
                .into_iter()
                .collect(),
            GatewayError::Overloaded { .. } => vec![("retry-after".to_owned(), "1".to_owned())],
            _ => Vec::new(),
        }
    }

    /// The error as an HTTP response. With `expose` (the API's
    /// `expose_errors`) the body carries the whole message and a
    /// function's error payload; without it, [`Self::public_message`], and
    /// the whole story goes to [`HttpResponse::detail`] for the log.
    pub fn to_response(&self, request_id: &str, expose: bool) -> HttpResponse {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        headers.extend(self.headers());
        // A usage plan's refusal is about the client's own key: API
        // Gateway's words whatever `expose`, and the reason (the key's id,
        // the plan) for the log only.
        let expose = expose && !self.is_usage_refusal();
        let (body, detail) = match self.public_message() {
            None => (error_body(&self.to_string(), request_id, None), None),
            Some(_) if expose => {
                let error = match self {
                    GatewayError::FunctionError { payload, .. } => Some(ErrorDetail::new(payload)),
                    _ => None,
                };
                (error_body(&self.to_string(), request_id, error), None)
            }
            Some(public) => (
                error_body(public, request_id, None),
                Some(format!("request {request_id}: {self}")),
            ),
        };
        HttpResponse {
            status: self.status(),
            headers,
            body,
            outcome: self.outcome(),
            detail,
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayError::NoRoute { method, path } => {
                write!(f, "no resource matches {method} {path}")
            }
            GatewayError::Retired { api } => {
                write!(
                    f,
                    "the API `{api}` is retired: its resources are no longer served"
                )
            }
            GatewayError::ReservedHeader { name } => {
                write!(f, "the {name} header is reserved for the gateway")
            }
            GatewayError::MethodNotAllowed {
                method,
                path,
                allow,
            } => {
                let allow: Vec<&str> = allow.iter().map(|v| v.as_str()).collect();
                write!(
                    f,
                    "{method} is not allowed on {path}; allowed: {}",
                    allow.join(", ")
                )
            }
            GatewayError::BodyTooLarge {
                size,
                limit,
                invocation_type,
            } => write!(
                f,
                "the request body is {size} bytes; Lambda accepts at most {limit} bytes for {} invocations",
                match invocation_type {
                    InvocationType::RequestResponse => "synchronous",
                    InvocationType::Event => "asynchronous (Event)",
                }
            ),
            GatewayError::EventTooLarge { size, limit } => write!(
                f,
                "the Lambda event built from this request is at least {size} bytes, over Lambda's limit of {limit} bytes \
                 (binary bodies grow by a third in base64)"
            ),
            GatewayError::EventBuild => f.write_str("the Lambda event could not be built"),
            GatewayError::HostRead { what, reason } => {
                write!(f, "Envoy could not hand over {what}: {reason}")
            }
            GatewayError::FunctionError { arn, kind, .. } => {
                write!(f, "function {arn} failed ({kind})")
            }
            GatewayError::Invoker {
                kind,
                text,
                arn,
                timeout,
                ..
            } => {
                let message = contract(*kind)
                    .message
                    .replace("{arn}", arn)
                    .replace("{timeout}", &timeout.to_string());
                f.write_str(&message)?;
                if !text.is_empty() {
                    write!(f, ": {text}")?;
                }
                Ok(())
            }
            GatewayError::InvokerUnreachable => {
                f.write_str("the lambdagate invoker is unreachable")
            }
            GatewayError::InvokerDeadline { after } => write!(
                f,
                "the lambdagate invoker did not answer within {}s",
                after.as_secs()
            ),
            GatewayError::InvokerFailed { code } => {
                write!(
                    f,
                    "the call to the lambdagate invoker failed (gRPC status {code})"
                )
            }
            GatewayError::BadReply => {
                f.write_str("the lambdagate invoker's reply could not be read")
            }
            GatewayError::MalformedProxyResponse { arn, reason } => {
                write!(
                    f,
                    "function {arn} returned a malformed proxy response: {reason}"
                )
            }
            GatewayError::Overloaded {
                wanted,
                in_use,
                limit,
            } => write!(
                f,
                "the gateway is already receiving {in_use} of its {limit} bytes of request bodies and cannot take {wanted} more; retry later"
            ),
            GatewayError::Unauthorized { authorizer, reason } => {
                write!(f, "unauthorized by authorizer `{authorizer}`: {reason}")
            }
            GatewayError::AccessDenied {
                authorizer,
                principal,
                method_arn,
                explicit,
                ..
            } => write!(
                f,
                "authorizer `{authorizer}`'s policy for principal `{principal}` {} {method_arn}",
                if *explicit {
                    "explicitly denies"
                } else {
                    "does not allow"
                }
            ),
            GatewayError::AuthorizerFailure { authorizer, reason } => {
                write!(f, "authorizer `{authorizer}` failed: {reason}")
            }
            GatewayError::AuthorizerConfiguration { authorizer, reason } => {
                write!(f, "authorizer `{authorizer}` cannot be called: {reason}")
            }
        }
    }
}

impl std::error::Error for GatewayError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "requestId")]
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail<'a>>,
}

/// A function's error payload: embedded as JSON when it is JSON.
#[derive(Serialize)]
#[serde(untagged)]
enum ErrorDetail<'a> {
    Json(&'a RawValue),
    Text(Cow<'a, str>),
}

impl<'a> ErrorDetail<'a> {
    fn new(payload: &'a [u8]) -> Self {
        match std::str::from_utf8(payload) {
            Ok(text) => match serde_json::from_str::<&RawValue>(text) {
                Ok(json) => ErrorDetail::Json(json),
                Err(_) => ErrorDetail::Text(Cow::Borrowed(text)),
            },
            Err(_) => ErrorDetail::Text(String::from_utf8_lossy(payload)),
        }
    }
}

fn error_body(message: &str, request_id: &str, error: Option<ErrorDetail<'_>>) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody {
        message,
        request_id,
        error,
    })
    .unwrap_or_else(|_| br#"{"message":"internal error"}"#.to_vec())
}

/// `{"message": ..., "requestId": ...}`: the gateway's JSON body.
pub(crate) fn message_body(message: &str, request_id: &str) -> Vec<u8> {
    error_body(message, request_id, None)
}
