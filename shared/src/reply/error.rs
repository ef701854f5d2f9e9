//! The gateway's own answers: every error is a [`GatewayError`].
//!
//! Every error is a [`GatewayError`]; [`GatewayError::status`] is the one
//! place that decides its HTTP status, and every error body is JSON
//! `{"message": "...", "requestId": "..."}` with `content-type:
//! application/json`.
//!
//! What the client reads is decided here, not by the function or by AWS:
//! a function's error, AWS's error text, ARNs and the invoker's reasons
//! stay out of the body ([`GatewayError::public_message`]); they go to the
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

/// A gRPC status other than OK, as Envoy reports it to the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrpcStatus<'a> {
    pub code: u32,
    /// The status message; "" when there is none.
    pub message: &'a str,
}

/// gRPC status codes the filter tells apart when no ErrorKind is given.
pub const GRPC_DEADLINE_EXCEEDED: u32 = 4;
pub const GRPC_UNAVAILABLE: u32 = 14;

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
    /// grows binary bodies by a third).
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
}

impl GatewayError {
    /// The HTTP status of every error: the one place that decides it.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::NoRoute { .. } => 404,
            GatewayError::Retired { .. } => 410,
            GatewayError::ReservedHeader { .. } => 400,
            GatewayError::MethodNotAllowed { .. } => 405,
            GatewayError::BodyTooLarge { .. } | GatewayError::EventTooLarge { .. } => 413,
            GatewayError::EventBuild | GatewayError::HostRead { .. } => 500,
            GatewayError::FunctionError { status, .. } => *status,
            GatewayError::Invoker { kind, .. } => match kind {
                ErrorKind::Throttled => 429,
                ErrorKind::Timeout => 504,
                ErrorKind::PayloadTooLarge => 413,
                ErrorKind::CredentialsUnavailable => 503,
                ErrorKind::InvalidConfig | ErrorKind::InvalidRequest | ErrorKind::Internal => 500,
                ErrorKind::FunctionNotFound
                | ErrorKind::AccessDenied
                | ErrorKind::NotAllowed
                | ErrorKind::LambdaUnavailable
                | ErrorKind::FunctionError
                | ErrorKind::Unspecified => 502,
            },
            GatewayError::InvokerUnreachable => 503,
            GatewayError::InvokerDeadline { .. } => 504,
            GatewayError::InvokerFailed { .. }
            | GatewayError::BadReply
            | GatewayError::MalformedProxyResponse { .. } => 502,
        }
    }

    /// Reads a non-OK gRPC status from the invoker call: the invoker puts
    /// an [`ErrorKind`] name in front of its message; a status without one
    /// comes from Envoy itself and only its code is used (Envoy's text can
    /// name clusters and addresses, which clients need not see).
    pub fn from_grpc_status(status: GrpcStatus<'_>, arn: &str, timeout: Timeout) -> Self {
        let (kind, text) = ErrorKind::parse_status_message(status.message);
        if kind != ErrorKind::Unspecified {
            return GatewayError::Invoker {
                kind,
                text: text.to_owned(),
                arn: arn.to_owned(),
                timeout,
            };
        }
        match status.code {
            GRPC_UNAVAILABLE => GatewayError::InvokerUnreachable,
            GRPC_DEADLINE_EXCEEDED => GatewayError::InvokerDeadline {
                after: timeout.invoker_deadline(),
            },
            code => GatewayError::InvokerFailed { code },
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
                kind: ErrorKind::Throttled,
                ..
            } => vec![("retry-after".to_owned(), "1".to_owned())],
            _ => Vec::new(),
        }
    }

    /// The outcome label of this error (see [`HttpResponse::outcome`]).
    pub fn outcome(&self) -> &'static str {
        match self {
            GatewayError::NoRoute { .. } => "no_route",
            GatewayError::Retired { .. } => "retired",
            GatewayError::ReservedHeader { .. } => "reserved_header",
            GatewayError::MethodNotAllowed { .. } => "method_not_allowed",
            GatewayError::BodyTooLarge { .. } | GatewayError::EventTooLarge { .. } => {
                "body_too_large"
            }
            GatewayError::EventBuild => "internal",
            GatewayError::HostRead { .. } => "host_read_failed",
            GatewayError::FunctionError { .. } => "function_error",
            // Unspecified never gets here: a status without a kind is
            // one of Envoy's own (the variants below).
            GatewayError::Invoker { kind, .. } => kind.label(),
            GatewayError::InvokerUnreachable => "invoker_unreachable",
            GatewayError::InvokerDeadline { .. } => "timeout",
            GatewayError::InvokerFailed { .. } => "invoker_failed",
            GatewayError::BadReply => "bad_reply",
            GatewayError::MalformedProxyResponse { .. } => "malformed_proxy_response",
        }
    }

    /// What a client is told when the API does not expose errors: API
    /// Gateway's wording for failures behind the gateway, which never
    /// carries a function's error, an ARN, an account or AWS's text.
    /// `None`: the whole message is about the client's own request (404,
    /// 405, 413) and is shown as it is.
    pub fn public_message(&self) -> Option<&'static str> {
        match self {
            GatewayError::NoRoute { .. }
            | GatewayError::Retired { .. }
            | GatewayError::ReservedHeader { .. }
            | GatewayError::MethodNotAllowed { .. }
            | GatewayError::BodyTooLarge { .. }
            | GatewayError::EventTooLarge { .. } => None,
            GatewayError::Invoker { kind, .. } => Some(match kind {
                ErrorKind::Throttled => "Too Many Requests",
                ErrorKind::Timeout => "Endpoint request timed out",
                ErrorKind::PayloadTooLarge => {
                    "the request or the function's response is over Lambda's payload limit"
                }
                ErrorKind::CredentialsUnavailable => "Service Unavailable",
                ErrorKind::FunctionNotFound
                | ErrorKind::AccessDenied
                | ErrorKind::NotAllowed
                | ErrorKind::LambdaUnavailable
                | ErrorKind::InvalidConfig
                | ErrorKind::InvalidRequest
                | ErrorKind::Internal
                | ErrorKind::FunctionError
                | ErrorKind::Unspecified => INTERNAL_SERVER_ERROR,
            }),
            GatewayError::InvokerUnreachable => Some("Service Unavailable"),
            GatewayError::InvokerDeadline { .. } => Some("Endpoint request timed out"),
            GatewayError::EventBuild
            | GatewayError::HostRead { .. }
            | GatewayError::FunctionError { .. }
            | GatewayError::InvokerFailed { .. }
            | GatewayError::BadReply
            | GatewayError::MalformedProxyResponse { .. } => Some(INTERNAL_SERVER_ERROR),
        }
    }

    /// The error as an HTTP response. With `expose` (the API's
    /// `expose_errors`) the body carries the whole message and a
    /// function's error payload; without it, [`Self::public_message`], and
    /// the whole story goes to [`HttpResponse::detail`] for the log.
    pub fn to_response(&self, request_id: &str, expose: bool) -> HttpResponse {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        headers.extend(self.headers());
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

/// API Gateway's body for a failure behind the gateway.
pub const INTERNAL_SERVER_ERROR: &str = "Internal server error";

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
                "the Lambda event built from this request is {size} bytes, over Lambda's limit of {limit} bytes \
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
            } => {
                match kind {
                    ErrorKind::FunctionNotFound => write!(f, "function {arn} was not found"),
                    ErrorKind::AccessDenied => {
                        write!(f, "the gateway's AWS identity may not invoke {arn}")
                    }
                    ErrorKind::NotAllowed => write!(
                        f,
                        "function {arn} is not in the invoker's allow-list for this endpoint"
                    ),
                    ErrorKind::Throttled => {
                        write!(f, "function {arn} is throttled by Lambda; retry later")
                    }
                    ErrorKind::Timeout => {
                        write!(f, "function {arn} did not answer within {timeout}")
                    }
                    ErrorKind::PayloadTooLarge => f.write_str(
                        "the request or the function's response is over Lambda's payload limit",
                    ),
                    ErrorKind::CredentialsUnavailable => {
                        f.write_str("the gateway has no AWS credentials at the moment")
                    }
                    ErrorKind::InvalidConfig => {
                        write!(f, "the gateway is misconfigured for function {arn}")
                    }
                    ErrorKind::InvalidRequest => {
                        write!(f, "the invoker refused the request for function {arn}")
                    }
                    ErrorKind::LambdaUnavailable => {
                        write!(f, "Lambda could not be reached to invoke {arn}")
                    }
                    ErrorKind::Internal | ErrorKind::FunctionError | ErrorKind::Unspecified => {
                        write!(f, "the invoker failed to invoke {arn}")
                    }
                }?;
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
