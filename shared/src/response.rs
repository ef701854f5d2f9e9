//! Turning outcomes into HTTP responses.
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

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use lambdagate_proto::{ErrorKind, InvokeReply};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::config::{InvocationType, PayloadFormat};
use crate::route::Verb;
use crate::timeout::Timeout;

/// An HTTP response for the glue to send (`send_http_response`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-case names; a name may repeat (`set-cookie`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What happened, for access logs and metrics: `ok`, `accepted`,
    /// `function_error`, `no_route`, `timeout`, ... (never sent to the client).
    pub outcome: &'static str,
    /// For the gateway's log when the client was told less than the whole
    /// story (never sent to the client).
    pub detail: Option<String>,
}

impl HttpResponse {
    /// The first value of a header (names compared ignoring case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sets each header of `extra`, replacing any of the same name (lifecycle
/// and trace headers over a function's own).
pub(crate) fn replace_headers(headers: &mut Vec<(String, String)>, extra: &[(String, String)]) {
    headers.retain(|(n, _)| !extra.iter().any(|(e, _)| e == n));
    headers.extend(extra.iter().cloned());
}

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
                after: grpc_deadline(timeout),
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

/// The gRPC deadline for an invocation: the route timeout plus one
/// second, so that the invoker's own timeout (a typed TIMEOUT) fires first.
pub fn grpc_deadline(timeout: Timeout) -> Duration {
    timeout.as_duration() + Duration::from_secs(1)
}

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

/// What [`reply_to_http`] needs to know about the route.
#[derive(Clone, Copy, Debug)]
pub struct ReplyContext<'a> {
    /// The configured function ARN (named in messages).
    pub arn: &'a str,
    pub invocation_type: InvocationType,
    pub function_error_status: u16,
    pub timeout: Timeout,
    /// The gateway's request id (x-request-id), echoed in bodies.
    pub request_id: &'a str,
    /// The API's `expose_errors`: error detail in the body.
    pub expose_errors: bool,
    /// v1 (REST) replies need a `statusCode` and may not set `cookies`; v2
    /// (HTTP API) infers 200 and ignores `multiValueHeaders`.
    pub payload_format: PayloadFormat,
    /// Decode an `isBase64Encoded` body (else it reaches the client as the
    /// base64 text, as a REST API does when `Accept` is not binary).
    pub decode_base64: bool,
}

/// Maps the outcome of the gRPC call to the HTTP response.
pub fn reply_to_http(
    ctx: &ReplyContext<'_>,
    result: Result<&[u8], GrpcStatus<'_>>,
) -> HttpResponse {
    match result {
        Err(status) => GatewayError::from_grpc_status(status, ctx.arn, ctx.timeout)
            .to_response(ctx.request_id, ctx.expose_errors),
        Ok(bytes) => match <InvokeReply as prost::Message>::decode(bytes) {
            Ok(reply) => invoke_reply_to_http(ctx, reply),
            Err(_) => GatewayError::BadReply.to_response(ctx.request_id, ctx.expose_errors),
        },
    }
}

/// Maps a decoded [`InvokeReply`] to the HTTP response.
pub fn invoke_reply_to_http(ctx: &ReplyContext<'_>, reply: InvokeReply) -> HttpResponse {
    let mut response = if !reply.function_error.is_empty() {
        GatewayError::FunctionError {
            arn: ctx.arn.to_owned(),
            kind: reply.function_error,
            status: ctx.function_error_status,
            payload: reply.payload,
        }
        .to_response(ctx.request_id, ctx.expose_errors)
    } else if ctx.invocation_type == InvocationType::Event {
        HttpResponse {
            status: 202,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: error_body("accepted", ctx.request_id, None),
            outcome: "accepted",
            detail: None,
        }
    } else {
        let rest = ctx.payload_format == PayloadFormat::V1;
        match proxy_response(&reply.payload, ctx.payload_format, ctx.decode_base64) {
            Ok(Some(response)) => response,
            // Not JSON at all (cut, empty, garbage): never a 200 with a
            // JSON content type. API Gateway answers 502 here too.
            Ok(None) if !is_json(&reply.payload) => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason: "the response is not JSON".to_owned(),
            }
            .to_response(ctx.request_id, ctx.expose_errors),
            // A REST API answers 502 to a reply without `statusCode`; the
            // 200 inference is an HTTP API's (payload 2.0) alone.
            Ok(None) if rest => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason:
                    "a REST (payload v1) proxy response must be a JSON object with a statusCode"
                        .to_owned(),
            }
            .to_response(ctx.request_id, ctx.expose_errors),
            Ok(None) => HttpResponse {
                status: 200,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: reply.payload,
                outcome: "ok",
                detail: None,
            },
            Err(reason) => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason,
            }
            .to_response(ctx.request_id, ctx.expose_errors),
        }
    };
    // Lambda's, never the function's: the access log and operators trace
    // an invocation by this id, so a function may not set it.
    set_lambda_header(
        &mut response.headers,
        "x-amzn-requestid",
        reply.lambda_request_id,
    );
    set_lambda_header(
        &mut response.headers,
        "x-amz-executed-version",
        reply.executed_version,
    );
    response
}

/// Sets a header only Lambda may give (its request id, the version that
/// ran): any of the function's is dropped, and an empty or invalid value
/// leaves none.
pub(crate) fn set_lambda_header(headers: &mut Vec<(String, String)>, name: &str, value: String) {
    headers.retain(|(n, _)| n != name);
    if !value.is_empty() && is_header_value(&value) {
        headers.push((name.to_owned(), value));
    }
}

/// Sets the route's own headers (`HttpReply.headers`: lifecycle, trace),
/// replacing any of the same name.
pub(crate) fn add_route_headers(
    headers: &mut Vec<(String, String)>,
    route: Vec<lambdagate_proto::HttpHeader>,
) {
    let extra: Vec<(String, String)> = route.into_iter().map(|h| (h.name, h.value)).collect();
    replace_headers(headers, &extra);
}

/// Valid JSON text: UTF-8 (serde_json skips over the inside of strings
/// without checking it when it ignores a value) and well-formed.
fn is_json(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok_and(|text| serde_json::from_str::<IgnoredAny>(text).is_ok())
}

/// The fields of a Lambda proxy response lambdagate reads; anything else
/// in the object is ignored.
#[derive(Deserialize)]
struct ProxyReply<'a> {
    #[serde(rename = "statusCode", default)]
    status_code: Option<Value>,
    #[serde(default)]
    headers: Option<Value>,
    #[serde(rename = "multiValueHeaders", default)]
    multi_value_headers: Option<Value>,
    #[serde(default)]
    cookies: Option<Value>,
    #[serde(borrow, default)]
    body: Option<BodyField<'a>>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: Option<Value>,
}

/// `body`: a string, borrowed from the payload when it has no escapes, or
/// the kind of JSON value it was instead.
enum BodyField<'a> {
    Text(Cow<'a, str>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for BodyField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for BodyVisitor<'a> {
            type Value = BodyField<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BodyField::Other("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BodyField::Other("an array"))
            }
        }

        deserializer.deserialize_any(BodyVisitor(std::marker::PhantomData))
    }
}

/// Accepts padded and unpadded base64.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads a Lambda proxy response: `Ok(None)` when the payload is not one
/// (not a JSON object, or no `statusCode`), `Err(reason)` when it is one
/// but cannot be used. Each format reads its own fields, as API Gateway
/// does: `multiValueHeaders` is REST's (v1), `cookies` the HTTP API's (v2);
/// the other format's field is ignored. `decode_base64`: see
/// [`ReplyContext::decode_base64`].
pub fn proxy_response(
    payload: &[u8],
    format: PayloadFormat,
    decode_base64: bool,
) -> Result<Option<HttpResponse>, String> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Ok(None);
    }
    let Ok(reply) = serde_json::from_slice::<ProxyReply<'_>>(payload) else {
        return Ok(None);
    };
    let Some(status_code) = &reply.status_code else {
        return Ok(None);
    };
    let status = status_of(status_code)?;

    let rest = format == PayloadFormat::V1;
    let mut headers: Vec<(String, String)> = Vec::new();
    match reply.multi_value_headers.as_ref().filter(|_| rest) {
        None => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let Value::Array(values) = values else {
                    return Err(format!(
                        "multiValueHeaders.{name} must be an array of strings, got {}",
                        kind_of(values)
                    ));
                };
                for value in values {
                    let Value::String(value) = value else {
                        return Err(format!(
                            "multiValueHeaders.{name} must hold strings, got {}",
                            kind_of(value)
                        ));
                    };
                    headers.push((name.to_ascii_lowercase(), value.clone()));
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "multiValueHeaders must be an object of string arrays, got {}",
                kind_of(other)
            ));
        }
    }
    if let Some(value) = &reply.headers {
        for (name, value) in header_object(value)? {
            // API Gateway: a pair given in both maps appears once.
            if !headers.iter().any(|(n, v)| *n == name && *v == value) {
                headers.push((name, value));
            }
        }
    }
    if let Some(cookies) = reply.cookies.as_ref().filter(|_| !rest) {
        headers.extend(cookie_array(cookies)?);
    }
    headers.retain(|(name, value)| is_forwardable(name) && is_header_value(value));
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }

    let base64 = match &reply.is_base64_encoded {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "isBase64Encoded must be true or false, got {}",
                kind_of(other)
            ));
        }
    };
    let body = match reply.body {
        None => Vec::new(),
        Some(BodyField::Other(kind)) => {
            return Err(format!("body must be a string, got {kind}"));
        }
        Some(BodyField::Text(text)) if base64 && decode_base64 => {
            let compact: Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
                Cow::Owned(text.chars().filter(|c| !c.is_ascii_whitespace()).collect())
            } else {
                Cow::Borrowed(text.as_ref())
            };
            LENIENT_BASE64.decode(compact.as_bytes()).map_err(|e| {
                format!("body is not valid base64 although isBase64Encoded is true ({e})")
            })?
        }
        Some(BodyField::Text(text)) => text.into_owned().into_bytes(),
    };
    Ok(Some(HttpResponse {
        status,
        headers,
        body,
        outcome: "ok",
        detail: None,
    }))
}

/// A reply's `headers`: an object of strings, names lower-cased.
pub(crate) fn header_object(value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "headers must be an object of strings, got {}",
            kind_of(value)
        ));
    };
    map.iter()
        .map(|(name, value)| match value {
            Value::String(value) => Ok((name.to_ascii_lowercase(), value.clone())),
            other => Err(format!(
                "headers.{name} must be a string, got {}",
                kind_of(other)
            )),
        })
        .collect()
}

/// A reply's `cookies`: an array of strings, as `set-cookie` headers.
pub(crate) fn cookie_array(value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Array(cookies) = value else {
        return Err(format!(
            "cookies must be an array of strings, got {}",
            kind_of(value)
        ));
    };
    cookies
        .iter()
        .map(|cookie| match cookie {
            Value::String(cookie) => Ok(("set-cookie".to_owned(), cookie.clone())),
            other => Err(format!("cookies must hold strings, got {}", kind_of(other))),
        })
        .collect()
}

pub(crate) fn status_of(value: &Value) -> Result<u16, String> {
    let number = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=65_535.0).contains(f))
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    // Not 1xx: those are informational, never a final response. Envoy
    // cannot send one as a local reply (it asserts in debug builds and
    // leaves the client waiting for the real response otherwise).
    match number.and_then(|n| u16::try_from(n).ok()) {
        Some(code @ 200..=599) => Ok(code),
        _ => Err(format!(
            "statusCode must be an integer from 200 to 599, got {}",
            short(value)
        )),
    }
}

pub(crate) fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::String(_) => short(value),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A value for a message, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 64 {
        return text;
    }
    let cut: String = text.chars().take(61).collect();
    format!("{cut}...")
}

/// Headers a function may not set: pseudo-headers, hop-by-hop headers and
/// the length (Envoy computes it), and names that are not HTTP tokens.
pub(crate) fn is_forwardable(name: &str) -> bool {
    const DROPPED: &[&str] = &[
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        && !DROPPED.contains(&name)
}

/// A valid HTTP field value (RFC 9110): no control character but tab, not
/// only no CR, LF or NUL (a function's `\u000c` must not reach clients).
pub(crate) fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f";

    fn ctx(invocation_type: InvocationType) -> ReplyContext<'static> {
        ReplyContext {
            arn: ARN,
            invocation_type,
            function_error_status: 502,
            timeout: Timeout::DEFAULT,
            request_id: "req-1",
            // The detailed messages below; `errors_are_generic_unless_exposed`
            // covers the default.
            expose_errors: true,
            payload_format: PayloadFormat::V2,
            decode_base64: true,
        }
    }

    fn reply(payload: &str) -> InvokeReply {
        InvokeReply {
            status_code: 200,
            payload: payload.as_bytes().to_vec(),
            function_error: String::new(),
            executed_version: "$LATEST".into(),
            lambda_request_id: "lambda-1".into(),
            error_kind: 0,
        }
    }

    fn sync(payload: &str) -> HttpResponse {
        invoke_reply_to_http(&ctx(InvocationType::RequestResponse), reply(payload))
    }

    /// As a REST API (payload v1) answers; `decode_base64` as when the
    /// client's Accept is one of the API's binary media types.
    fn rest(payload: &str, decode_base64: bool) -> HttpResponse {
        let ctx = ReplyContext {
            payload_format: PayloadFormat::V1,
            decode_base64,
            ..ctx(InvocationType::RequestResponse)
        };
        invoke_reply_to_http(&ctx, reply(payload))
    }

    fn sorted_headers(r: &HttpResponse) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| !n.starts_with("x-amz"))
            .cloned()
            .collect();
        headers.sort();
        headers
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn each_format_reads_its_own_fields() {
        let payload = r#"{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-Both": "a"},
            "multiValueHeaders": {"X-Both": ["a", "b"]}, "cookies": ["s=1"], "body": "x"}"#;
        // REST: headers and multiValueHeaders merge; `cookies` is unknown.
        assert_eq!(
            sorted_headers(&rest(payload, false)),
            pairs(&[
                ("content-type", "text/plain"),
                ("x-both", "a"),
                ("x-both", "b")
            ])
        );
        // HTTP API: `cookies` become Set-Cookie; multiValueHeaders is unknown.
        assert_eq!(
            sorted_headers(&sync(payload)),
            pairs(&[
                ("content-type", "text/plain"),
                ("set-cookie", "s=1"),
                ("x-both", "a")
            ])
        );
    }

    #[test]
    fn a_rest_reply_without_status_code_is_502_an_http_api_one_200() {
        for payload in [r#"{"body": "hi"}"#, r#""just a string""#, "[1, 2]", "42"] {
            let r = rest(payload, true);
            assert_eq!(r.status, 502, "{payload}");
            assert_eq!(r.outcome, "malformed_proxy_response");
            assert!(
                body_json(&r)["message"]
                    .as_str()
                    .unwrap()
                    .contains("must be a JSON object with a statusCode"),
                "{payload}"
            );
            let r = sync(payload);
            assert_eq!(r.status, 200, "{payload}");
            assert_eq!(r.body, payload.as_bytes());
        }
    }

    #[test]
    fn a_rest_api_decodes_base64_only_for_a_binary_accept() {
        let payload = r#"{"statusCode": 200, "headers": {"content-type": "image/png"},
            "body": "iVBORw==", "isBase64Encoded": true}"#;
        assert_eq!(rest(payload, true).body, b"\x89PNG");
        let r = rest(payload, false);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"iVBORw==");
        // Not decoded, so not checked either: a REST API passes it as text.
        assert_eq!(
            rest(
                r#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
                false
            )
            .body,
            b"!!"
        );
    }

    fn body_json(r: &HttpResponse) -> Value {
        serde_json::from_slice(&r.body).unwrap()
    }

    #[test]
    fn proxy_response_with_everything() {
        let r = sync(
            r#"{"statusCode": 201, "headers": {"Content-Type": "text/plain", "X-One": "1", "X-Both": "a"},
                "cookies": ["s=1; Path=/", "t=2"], "body": "héllo\n", "isBase64Encoded": false}"#,
        );
        assert_eq!(r.status, 201);
        assert_eq!(r.body, "héllo\n".as_bytes());
        let mut headers = r.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            [
                ("content-type", "text/plain"),
                ("set-cookie", "s=1; Path=/"),
                ("set-cookie", "t=2"),
                ("x-amz-executed-version", "$LATEST"),
                ("x-amzn-requestid", "lambda-1"),
                ("x-both", "a"),
                ("x-one", "1"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        let r = rest(
            r#"{"statusCode": 201, "headers": {"X-One": "1", "X-Both": "a"},
                "multiValueHeaders": {"X-Both": ["a", "b"], "X-Many": ["1", "2"]}}"#,
            true,
        );
        assert_eq!(
            sorted_headers(&r),
            pairs(&[
                ("content-type", "application/json"),
                ("x-both", "a"),
                ("x-both", "b"),
                ("x-many", "1"),
                ("x-many", "2"),
                ("x-one", "1"),
            ])
        );
    }

    #[test]
    fn proxy_response_minimal_and_base64() {
        let r = sync(r#"{"statusCode": "204"}"#);
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());
        assert_eq!(r.header("content-type"), Some("application/json"));

        let r = sync(r#"{"statusCode": 200, "body": "iVBORw==", "isBase64Encoded": true}"#);
        assert_eq!(r.body, b"\x89PNG");
        let r = sync(r#"{"statusCode": 200, "body": "iVBO\nRw", "isBase64Encoded": true}"#);
        assert_eq!(r.body, b"\x89PNG");
        let r = sync(r#"{"statusCode": 200.0, "body": null, "headers": null}"#);
        assert_eq!(r.status, 200);
        let r = sync(r#"{"statusCode": 200, "body": "a\"b\u00e9"}"#);
        assert_eq!(r.body, "a\"bé".as_bytes());
    }

    #[test]
    fn hop_by_hop_and_invalid_headers_are_dropped() {
        let r = sync(
            r#"{"statusCode": 200, "headers": {"Content-Length": "3", "Transfer-Encoding": "chunked",
                ":status": "500", "Bad Name": "x", "X-Split": "a\r\nInjected: 1", "X-Ok": "fine"}}"#,
        );
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"x-ok"), "{names:?}");
        for gone in [
            "content-length",
            "transfer-encoding",
            ":status",
            "bad name",
            "x-split",
        ] {
            assert!(!names.contains(&gone), "{gone}: {names:?}");
        }
    }

    #[test]
    fn malformed_proxy_responses_are_502() {
        for (payload, why) in [
            (
                r#"{"statusCode": "abc"}"#,
                r#"statusCode must be an integer from 200 to 599, got "abc""#,
            ),
            (r#"{"statusCode": -1}"#, "got -1"),
            (r#"{"statusCode": 100}"#, "got 100"),
            (r#"{"statusCode": "101"}"#, r#"got "101""#),
            (r#"{"statusCode": 199}"#, "got 199"),
            (r#"{"statusCode": 99999}"#, "got 99999"),
            (r#"{"statusCode": 99}"#, "got 99"),
            (r#"{"statusCode": 600}"#, "got 600"),
            (r#"{"statusCode": 200.5}"#, "got 200.5"),
            (r#"{"statusCode": true}"#, "got true"),
            (
                r#"{"statusCode": 200, "body": {"a": 1}}"#,
                "body must be a string, got an object",
            ),
            (
                r#"{"statusCode": 200, "body": [1]}"#,
                "body must be a string, got an array",
            ),
            (
                r#"{"statusCode": 200, "body": 5}"#,
                "body must be a string, got a number",
            ),
            (
                r#"{"statusCode": 200, "headers": {"x": 1}}"#,
                "headers.x must be a string, got 1",
            ),
            (
                r#"{"statusCode": 200, "headers": []}"#,
                "headers must be an object",
            ),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"x": "a"}}"#,
                "multiValueHeaders.x must be an array",
            ),
            (
                r#"{"statusCode": 200, "multiValueHeaders": {"x": [1]}}"#,
                "multiValueHeaders.x must hold strings",
            ),
            (
                r#"{"statusCode": 200, "cookies": "a=1"}"#,
                "cookies must be an array",
            ),
            (
                r#"{"statusCode": 200, "isBase64Encoded": "yes"}"#,
                "isBase64Encoded must be true or false",
            ),
            (
                r#"{"statusCode": 200, "body": "!!!", "isBase64Encoded": true}"#,
                "not valid base64",
            ),
        ] {
            // multiValueHeaders is a REST (v1) field, read only there.
            let r = if payload.contains("multiValueHeaders") {
                rest(payload, true)
            } else {
                sync(payload)
            };
            assert_eq!(r.status, 502, "{payload}");
            let body = body_json(&r);
            let message = body["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!(
                    "function {ARN} returned a malformed proxy response: "
                )),
                "{message}"
            );
            assert!(message.contains(why), "{payload}: {message}");
            assert_eq!(body["requestId"], "req-1");
            assert_eq!(r.header("content-type"), Some("application/json"));
        }
    }

    #[test]
    fn other_payloads_are_200_json_as_is() {
        for payload in [
            r#"{"id": 7, "name": "x"}"#,
            r#"[1, 2]"#,
            r#""text""#,
            "null",
            r#"{"statusCode": null, "x": 1}"#,
            r#"{"body": {"nested": true}}"#,
        ] {
            let r = sync(payload);
            assert_eq!(r.status, 200, "{payload}");
            assert_eq!(r.body, payload.as_bytes());
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));
            assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
        }
    }

    #[test]
    fn payloads_that_are_not_json_are_502() {
        for payload in [
            "",
            "not json at all",
            "{broken",
            r#"{"statusCode":200,"body":"cut"#,
        ] {
            let r = sync(payload);
            assert_eq!(r.status, 502, "{payload:?}");
            assert_eq!(r.outcome, "malformed_proxy_response");
            assert!(
                body_json(&r)["message"]
                    .as_str()
                    .unwrap()
                    .contains("not JSON"),
                "{payload:?}"
            );
        }
        // Well-formed but not UTF-8 inside a string (found by fuzzing).
        let mut rep = reply("");
        rep.payload = b"{\"sta\xff\": 1}".to_vec();
        let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep);
        assert_eq!(r.status, 502);
    }

    #[test]
    fn event_invocations_are_202() {
        let mut rep = reply("");
        rep.status_code = 202;
        rep.executed_version = String::new();
        let r = invoke_reply_to_http(&ctx(InvocationType::Event), rep);
        assert_eq!(r.status, 202);
        assert_eq!(
            body_json(&r),
            json!({"message": "accepted", "requestId": "req-1"})
        );
        assert_eq!(r.header("x-amz-executed-version"), None);
    }

    #[test]
    fn function_errors() {
        let mut rep = reply(r#"{"errorMessage":"boom","errorType":"Error"}"#);
        rep.function_error = "Unhandled".into();
        let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep.clone());
        assert_eq!(r.status, 502);
        assert_eq!(
            body_json(&r),
            json!({
                "message": format!("function {ARN} failed (Unhandled)"),
                "requestId": "req-1",
                "error": {"errorMessage": "boom", "errorType": "Error"}
            })
        );
        assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));

        let mut c = ctx(InvocationType::RequestResponse);
        c.function_error_status = 500;
        rep.payload = b"plain \xff text".to_vec();
        rep.function_error = "Handled".into();
        let r = invoke_reply_to_http(&c, rep);
        assert_eq!(r.status, 500);
        assert_eq!(body_json(&r)["error"], "plain \u{FFFD} text");
    }

    fn grpc(code: u32, message: &str) -> HttpResponse {
        reply_to_http(
            &ctx(InvocationType::RequestResponse),
            Err(GrpcStatus { code, message }),
        )
    }

    #[test]
    fn invoker_error_kinds() {
        for (code, message, status, text) in [
            (
                5,
                "FUNCTION_NOT_FOUND: no such function f",
                502,
                format!("function {ARN} was not found: no such function f"),
            ),
            (
                7,
                "ACCESS_DENIED: AccessDeniedException",
                502,
                format!("the gateway's AWS identity may not invoke {ARN}: AccessDeniedException"),
            ),
            (
                7,
                "NOT_ALLOWED: not in allow-list",
                502,
                format!(
                    "function {ARN} is not in the invoker's allow-list for this endpoint: not in allow-list"
                ),
            ),
            (
                8,
                "THROTTLED: rate exceeded",
                429,
                format!("function {ARN} is throttled by Lambda; retry later: rate exceeded"),
            ),
            (
                4,
                "TIMEOUT: after 50s",
                504,
                format!("function {ARN} did not answer within 50s: after 50s"),
            ),
            (
                11,
                "PAYLOAD_TOO_LARGE: 7 MB",
                413,
                "the request or the function's response is over Lambda's payload limit: 7 MB"
                    .to_owned(),
            ),
            (
                14,
                "CREDENTIALS_UNAVAILABLE: no provider",
                503,
                "the gateway has no AWS credentials at the moment: no provider".to_owned(),
            ),
            (
                9,
                "INVALID_CONFIG: unknown endpoint main",
                500,
                format!("the gateway is misconfigured for function {ARN}: unknown endpoint main"),
            ),
            (
                3,
                "INVALID_REQUEST: bad timeout",
                500,
                format!("the invoker refused the request for function {ARN}: bad timeout"),
            ),
            (
                14,
                "LAMBDA_UNAVAILABLE: connect error",
                502,
                format!("Lambda could not be reached to invoke {ARN}: connect error"),
            ),
            (
                13,
                "INTERNAL: oops",
                500,
                format!("the invoker failed to invoke {ARN}: oops"),
            ),
            (
                14,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
                503,
                "the lambdagate invoker is unreachable".to_owned(),
            ),
            (
                14,
                "",
                503,
                "the lambdagate invoker is unreachable".to_owned(),
            ),
            (
                4,
                "",
                504,
                "the lambdagate invoker did not answer within 51s".to_owned(),
            ),
            (
                13,
                "cluster lambdagate_invoker: secret internals",
                502,
                "the call to the lambdagate invoker failed (gRPC status 13)".to_owned(),
            ),
            (
                2,
                "ERROR_KIND_UNSPECIFIED: x",
                502,
                "the call to the lambdagate invoker failed (gRPC status 2)".to_owned(),
            ),
        ] {
            let r = grpc(code, message);
            assert_eq!(r.status, status, "{message}");
            assert_eq!(
                body_json(&r),
                json!({"message": text, "requestId": "req-1"}),
                "{message}"
            );
            assert_eq!(r.header("content-type"), Some("application/json"));
            let retry = (status == 429).then_some("1");
            assert_eq!(r.header("retry-after"), retry, "{message}");
        }
    }

    #[test]
    fn errors_are_generic_unless_exposed() {
        let mut c = ctx(InvocationType::RequestResponse);
        c.expose_errors = false;
        let secret_text = "db password=hunter2 at /var/task/app.py line 7";
        // A function error: API Gateway's words, nothing of the function's.
        let mut rep = reply(&format!(
            r#"{{"errorMessage":"{secret_text}","errorType":"RuntimeError","stackTrace":["app.py"]}}"#
        ));
        rep.function_error = "Unhandled".into();
        let r = invoke_reply_to_http(&c, rep);
        assert_eq!(r.status, 502);
        assert_eq!(
            body_json(&r),
            json!({"message": "Internal server error", "requestId": "req-1"})
        );
        assert_eq!(r.outcome, "function_error");
        let detail = r.detail.unwrap();
        assert!(detail.contains("req-1") && detail.contains(ARN), "{detail}");

        // The invoker's reasons (AWS's text with principals and accounts).
        for (code, message, status, public) in [
            (
                7,
                "ACCESS_DENIED: User: arn:aws:iam::123456789012:user/gw is not authorized",
                502,
                "Internal server error",
            ),
            (
                5,
                "FUNCTION_NOT_FOUND: Function not found: arn:aws:lambda:us-east-1:123456789012:function:f",
                502,
                "Internal server error",
            ),
            (
                7,
                "NOT_ALLOWED: endpoint `orders` does not allow it",
                502,
                "Internal server error",
            ),
            (
                14,
                "LAMBDA_UNAVAILABLE: dns error for lambda.us-east-1.amazonaws.com",
                502,
                "Internal server error",
            ),
            (
                9,
                "INVALID_CONFIG: endpoint `orders` is not configured",
                500,
                "Internal server error",
            ),
            (
                8,
                "THROTTLED: Rate exceeded for account 123456789012",
                429,
                "Too Many Requests",
            ),
            (4, "TIMEOUT: after 50s", 504, "Endpoint request timed out"),
            (
                14,
                "CREDENTIALS_UNAVAILABLE: no provider for role arn:aws:iam::1:role/r",
                503,
                "Service Unavailable",
            ),
            (14, "", 503, "Service Unavailable"),
            (4, "", 504, "Endpoint request timed out"),
            (
                13,
                "cluster lambdagate_invoker: internals",
                502,
                "Internal server error",
            ),
        ] {
            let r = reply_to_http(&c, Err(GrpcStatus { code, message }));
            assert_eq!(r.status, status, "{message}");
            assert_eq!(
                body_json(&r),
                json!({"message": public, "requestId": "req-1"}),
                "{message}"
            );
            // The invoker's reason is kept for the log; Envoy's own status
            // text (no kind) is not trusted enough to log as a reason.
            let detail = r.detail.unwrap();
            let (kind, text) = ErrorKind::parse_status_message(message);
            assert!(
                kind == ErrorKind::Unspecified || detail.contains(text),
                "{detail}"
            );
        }

        // A malformed proxy response: the reason goes to the log only.
        let r = invoke_reply_to_http(&c, reply(r#"{"statusCode": "abc"}"#));
        assert_eq!(r.status, 502);
        assert_eq!(body_json(&r)["message"], "Internal server error");
        assert!(r.detail.unwrap().contains("statusCode"));

        // Client errors say what was wrong with the request either way.
        let r = GatewayError::BodyTooLarge {
            size: 7,
            limit: 6,
            invocation_type: InvocationType::RequestResponse,
        }
        .to_response("r", false);
        assert_eq!(r.status, 413);
        assert!(
            body_json(&r)["message"]
                .as_str()
                .unwrap()
                .contains("7 bytes")
        );
        assert_eq!(r.detail, None);
    }

    #[test]
    fn a_function_cannot_set_the_lambda_request_id() {
        let r = sync(
            r#"{"statusCode": 200, "headers": {"X-Amzn-RequestId": "forged", "x-amz-executed-version": "9"}}"#,
        );
        assert_eq!(r.header("x-amzn-requestid"), Some("lambda-1"));
        assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
        assert_eq!(
            r.headers
                .iter()
                .filter(|(n, _)| n == "x-amzn-requestid")
                .count(),
            1
        );
        let mut rep = reply(r#"{"statusCode": 200, "headers": {"x-amzn-requestid": "forged"}}"#);
        rep.lambda_request_id = String::new();
        let r = invoke_reply_to_http(&ctx(InvocationType::RequestResponse), rep);
        assert_eq!(r.header("x-amzn-requestid"), None);
    }

    #[test]
    fn undecodable_reply_is_502() {
        let r = reply_to_http(&ctx(InvocationType::RequestResponse), Ok(b"\xff\xff\xff"));
        assert_eq!(r.status, 502);
        assert_eq!(
            body_json(&r)["message"],
            "the lambdagate invoker's reply could not be read"
        );
    }

    #[test]
    fn route_errors() {
        let r = GatewayError::NoRoute {
            method: "GET".into(),
            path: "/users/nope".into(),
        }
        .to_response("r", false);
        assert_eq!(r.status, 404);
        assert_eq!(
            body_json(&r),
            json!({"message": "no resource matches GET /users/nope", "requestId": "r"})
        );
        let r = GatewayError::MethodNotAllowed {
            method: "DELETE".into(),
            path: "/users/user/7".into(),
            allow: vec![Verb::Get, Verb::Post],
        }
        .to_response("r", false);
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, POST"));
        assert_eq!(
            body_json(&r)["message"],
            "DELETE is not allowed on /users/user/7; allowed: GET, POST"
        );
    }
}
