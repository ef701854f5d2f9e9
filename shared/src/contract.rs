//! The error contract, one table: for each [`ErrorKind`] the invoker can
//! report, the gRPC status code it answers with, the HTTP status and the
//! public message a client gets, the [`Outcome`] that logs and metrics
//! name, the whole message (for the log, or the client of an API with
//! `expose_errors`) and the operator's advice. The invoker (gRPC codes,
//! advice, metrics), the filter and the invoker's router path (HTTP
//! answers) all read [`contract`]; nothing else maps a kind.
//!
//! The kind travels typed: in `InvokeReply.error_kind` (the filter's
//! callout asks for failures in the reply), or in the
//! `lambdagate-error-kind-bin` trailer of a non-OK status (any other gRPC
//! client, and a stream cut after its head). It is never written into a
//! message and parsed back.

use std::fmt;

use lambdagate_proto::{ErrorKind, InvokeReply};

/// The gRPC status codes the gateway uses (gRPC's `statuscodes.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrpcCode {
    Ok = 0,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Internal = 13,
    Unavailable = 14,
}

impl GrpcCode {
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// What happened to a request, for the access log (`outcome=`) and the
/// invoker's metrics: one value per reason, one label each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The function answered (or the stream ended whole).
    Ok,
    /// An `Event` invocation was queued (202).
    Accepted,
    /// A stream's reader went away before its end.
    ClientGone,
    // The invoker's kinds (see [`contract`]).
    FunctionNotFound,
    AccessDenied,
    NotAllowed,
    Throttled,
    Timeout,
    FunctionError,
    PayloadTooLarge,
    CredentialsUnavailable,
    InvalidConfig,
    InvalidRequest,
    LambdaUnavailable,
    Internal,
    // The gateway's own answers (see `reply::error::GatewayError`).
    NoRoute,
    Retired,
    ReservedHeader,
    MethodNotAllowed,
    BodyTooLarge,
    HostReadFailed,
    InvokerUnreachable,
    InvokerFailed,
    BadReply,
    MalformedProxyResponse,
    /// The gateway refused the request to stay within its memory (the
    /// filter's upload budget, Envoy's overload manager).
    Overloaded,
    // The authorizer's answers (see `auth`).
    /// No credential, one that fails the validation expression, or the
    /// authorizer said `Unauthorized` (401).
    Unauthorized,
    /// The authorizer's policy does not allow this method and path (403).
    Forbidden,
    /// The authorizer failed: it threw, timed out or answered garbage (500).
    AuthorizerFailure,
    /// The authorizer cannot be called: not allowed, not found, no
    /// credentials (500).
    AuthorizerConfigurationError,
    // Usage plans' answers (see `lambdagate-usage`): the invoker's, when
    // it checks the key in the filter's call, else Envoy's rate-limit
    // filter's.
    /// No API key, an unknown or revoked one, or one whose plans do not
    /// name this API (403, API Gateway's INVALID_API_KEY).
    InvalidApiKey,
    /// Over the plan's rate for this key (429, API Gateway's THROTTLED).
    PlanThrottled,
    /// The key's quota for the period is used (429, QUOTA_EXCEEDED).
    QuotaExceeded,
    /// The usage store could not be reached and the gateway is set to
    /// deny (503).
    UsageStoreUnavailable,
    /// Over the gateway's or the API's own throttle, kept per Envoy
    /// instance (429, API Gateway's account and stage throttling).
    GatewayThrottled,
}

impl Outcome {
    /// Every outcome, for tests and for reading a label back.
    pub const ALL: [Outcome; 35] = [
        Outcome::Ok,
        Outcome::Accepted,
        Outcome::ClientGone,
        Outcome::FunctionNotFound,
        Outcome::AccessDenied,
        Outcome::NotAllowed,
        Outcome::Throttled,
        Outcome::Timeout,
        Outcome::FunctionError,
        Outcome::PayloadTooLarge,
        Outcome::CredentialsUnavailable,
        Outcome::InvalidConfig,
        Outcome::InvalidRequest,
        Outcome::LambdaUnavailable,
        Outcome::Internal,
        Outcome::NoRoute,
        Outcome::Retired,
        Outcome::ReservedHeader,
        Outcome::MethodNotAllowed,
        Outcome::BodyTooLarge,
        Outcome::HostReadFailed,
        Outcome::InvokerUnreachable,
        Outcome::InvokerFailed,
        Outcome::BadReply,
        Outcome::MalformedProxyResponse,
        Outcome::Overloaded,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::AuthorizerFailure,
        Outcome::AuthorizerConfigurationError,
        Outcome::InvalidApiKey,
        Outcome::PlanThrottled,
        Outcome::QuotaExceeded,
        Outcome::UsageStoreUnavailable,
        Outcome::GatewayThrottled,
    ];

    /// The label in access logs, metrics and the router path's
    /// `lambdagate-outcome` metadata.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Accepted => "accepted",
            Outcome::ClientGone => "client_gone",
            Outcome::FunctionNotFound => "function_not_found",
            Outcome::AccessDenied => "access_denied",
            Outcome::NotAllowed => "not_allowed",
            Outcome::Throttled => "throttled",
            Outcome::Timeout => "timeout",
            Outcome::FunctionError => "function_error",
            Outcome::PayloadTooLarge => "payload_too_large",
            Outcome::CredentialsUnavailable => "credentials_unavailable",
            Outcome::InvalidConfig => "invalid_config",
            Outcome::InvalidRequest => "invalid_request",
            Outcome::LambdaUnavailable => "lambda_unavailable",
            Outcome::Internal => "internal",
            Outcome::NoRoute => "no_route",
            Outcome::Retired => "retired",
            Outcome::ReservedHeader => "reserved_header",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::BodyTooLarge => "body_too_large",
            Outcome::HostReadFailed => "host_read_failed",
            Outcome::InvokerUnreachable => "invoker_unreachable",
            Outcome::InvokerFailed => "invoker_failed",
            Outcome::BadReply => "bad_reply",
            Outcome::MalformedProxyResponse => "malformed_proxy_response",
            Outcome::Overloaded => "overloaded",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::AuthorizerFailure => "authorizer_failure",
            Outcome::AuthorizerConfigurationError => "authorizer_configuration_error",
            Outcome::InvalidApiKey => "invalid_api_key",
            Outcome::PlanThrottled => "plan_throttled",
            Outcome::QuotaExceeded => "quota_exceeded",
            Outcome::UsageStoreUnavailable => "usage_store_unavailable",
            Outcome::GatewayThrottled => "gateway_throttled",
        }
    }

    /// The outcome of a label (as it comes back from the invoker).
    pub fn from_label(label: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.label() == label)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// API Gateway's body for a failure behind the gateway.
pub const INTERNAL_SERVER_ERROR: &str = "Internal server error";
/// API Gateway's body when the integration is unavailable.
pub const SERVICE_UNAVAILABLE: &str = "Service Unavailable";
/// API Gateway's body for a missing or invalid API key.
pub const FORBIDDEN: &str = "Forbidden";
/// API Gateway's body when a usage plan's rate is exceeded.
pub const TOO_MANY_REQUESTS: &str = "Too Many Requests";
/// API Gateway's body when a usage plan's quota is used up.
pub const LIMIT_EXCEEDED: &str = "Limit Exceeded";

/// What the client gets for a usage plan's refusal or a throttle:
/// status and message. The invoker's usage kinds take theirs from
/// [`contract`]; Envoy answers the rest (render's local-reply mappers
/// give them the gateway's JSON body).
pub fn usage_refusal(outcome: Outcome) -> Option<(u16, &'static str)> {
    if outcome == Outcome::GatewayThrottled {
        return Some((429, TOO_MANY_REQUESTS));
    }
    let row = contract(usage_kind(outcome)?);
    Some((row.http_status, row.public_message))
}

/// The invoker's kind for a usage plan's refusal (the usage service
/// decides in outcomes); `None` for any other outcome.
pub fn usage_kind(outcome: Outcome) -> Option<ErrorKind> {
    match outcome {
        Outcome::InvalidApiKey => Some(ErrorKind::InvalidApiKey),
        Outcome::PlanThrottled => Some(ErrorKind::PlanThrottled),
        Outcome::QuotaExceeded => Some(ErrorKind::QuotaExceeded),
        Outcome::UsageStoreUnavailable => Some(ErrorKind::UsageStoreUnavailable),
        _ => None,
    }
}

/// API Gateway's body for an integration timeout.
pub const ENDPOINT_TIMED_OUT: &str = "Endpoint request timed out";

/// One row of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindContract {
    /// The status of the invoker's non-OK gRPC answer.
    pub grpc_code: GrpcCode,
    /// The client's HTTP status.
    pub http_status: u16,
    /// What the client reads when the API does not expose errors: API
    /// Gateway's words, never a function's error, an ARN, an account or
    /// AWS's text.
    pub public_message: &'static str,
    pub outcome: Outcome,
    /// The whole message, `{arn}` and `{timeout}` filled in, followed by
    /// the invoker's reason: for the gateway's log, and the client of an
    /// API with `expose_errors`.
    pub message: &'static str,
    /// `Retry-After` (seconds) for the client, where waiting helps.
    pub retry_after: Option<&'static str>,
    /// What the operator can do, after AWS's reason in the invoker's log.
    pub advice: &'static str,
}

/// The contract of a kind: THE table.
pub const fn contract(kind: ErrorKind) -> KindContract {
    const fn row(
        grpc_code: GrpcCode,
        http_status: u16,
        public_message: &'static str,
        outcome: Outcome,
        message: &'static str,
    ) -> KindContract {
        KindContract {
            grpc_code,
            http_status,
            public_message,
            outcome,
            message,
            retry_after: None,
            advice: "see the AWS error above",
        }
    }
    match kind {
        // Not an error: a reply whose kind is unset is a result.
        ErrorKind::Unspecified => row(
            GrpcCode::Ok,
            502,
            INTERNAL_SERVER_ERROR,
            Outcome::Ok,
            "the invoker failed to invoke {arn}",
        ),
        ErrorKind::FunctionNotFound => KindContract {
            advice: "check the ARN, its qualifier and region, and that the endpoint's credentials (or assumed role) belong to that account",
            ..row(
                GrpcCode::NotFound,
                502,
                INTERNAL_SERVER_ERROR,
                Outcome::FunctionNotFound,
                "function {arn} was not found",
            )
        },
        ErrorKind::AccessDenied => KindContract {
            advice: "check the endpoint's access key and secret, and that its identity (or assumed role) is allowed this Lambda action on this function (lambda:InvokeFunction to invoke)",
            ..row(
                GrpcCode::PermissionDenied,
                502,
                INTERNAL_SERVER_ERROR,
                Outcome::AccessDenied,
                "the gateway's AWS identity may not invoke {arn}",
            )
        },
        ErrorKind::NotAllowed => row(
            GrpcCode::PermissionDenied,
            502,
            INTERNAL_SERVER_ERROR,
            Outcome::NotAllowed,
            "function {arn} is not in the invoker's allow-list for this endpoint",
        ),
        ErrorKind::Throttled => KindContract {
            retry_after: Some("1"),
            advice: "Lambda's concurrency limit was reached; retry later or raise the function's concurrency",
            ..row(
                GrpcCode::ResourceExhausted,
                429,
                "Too Many Requests",
                Outcome::Throttled,
                "function {arn} is throttled by Lambda; retry later",
            )
        },
        ErrorKind::Timeout => row(
            GrpcCode::DeadlineExceeded,
            504,
            ENDPOINT_TIMED_OUT,
            Outcome::Timeout,
            "function {arn} did not answer within {timeout}",
        ),
        // The function ran and failed: on a buffered call a result (gRPC
        // OK, the error payload, the resource's `function_error_status`;
        // see `GatewayError::FunctionError`); a stream it cuts after its
        // head ends with this code, which must never read as success.
        ErrorKind::FunctionError => row(
            GrpcCode::Aborted,
            502,
            INTERNAL_SERVER_ERROR,
            Outcome::FunctionError,
            "the invoker failed to invoke {arn}",
        ),
        ErrorKind::PayloadTooLarge => KindContract {
            advice: "Lambda accepts at most 6 MB synchronously and 1 MB for Event invocations",
            ..row(
                GrpcCode::OutOfRange,
                413,
                "the request or the function's response is over Lambda's payload limit",
                Outcome::PayloadTooLarge,
                "the request or the function's response is over Lambda's payload limit",
            )
        },
        ErrorKind::CredentialsUnavailable => row(
            GrpcCode::Unavailable,
            503,
            SERVICE_UNAVAILABLE,
            Outcome::CredentialsUnavailable,
            "the gateway has no AWS credentials at the moment",
        ),
        ErrorKind::InvalidConfig => row(
            GrpcCode::FailedPrecondition,
            500,
            INTERNAL_SERVER_ERROR,
            Outcome::InvalidConfig,
            "the gateway is misconfigured for function {arn}",
        ),
        ErrorKind::InvalidRequest => KindContract {
            advice: "the payload or parameters were refused by Lambda",
            ..row(
                GrpcCode::InvalidArgument,
                500,
                INTERNAL_SERVER_ERROR,
                Outcome::InvalidRequest,
                "the invoker refused the request for function {arn}",
            )
        },
        ErrorKind::LambdaUnavailable => KindContract {
            advice: "AWS had a problem on its side; retry later",
            ..row(
                GrpcCode::Unavailable,
                502,
                INTERNAL_SERVER_ERROR,
                Outcome::LambdaUnavailable,
                "Lambda could not be reached to invoke {arn}",
            )
        },
        ErrorKind::Internal => row(
            GrpcCode::Internal,
            500,
            INTERNAL_SERVER_ERROR,
            Outcome::Internal,
            "the invoker failed to invoke {arn}",
        ),
        // A usage plan's refusals are about the client's own key: the
        // message is API Gateway's words whether or not the API exposes
        // errors, and the reason (which key id, which plan) goes to the
        // gateway's and the invoker's logs only.
        ErrorKind::InvalidApiKey => KindContract {
            advice: "create a key with `lambdagate keys create` in a plan that names this API",
            ..row(
                GrpcCode::PermissionDenied,
                403,
                FORBIDDEN,
                Outcome::InvalidApiKey,
                FORBIDDEN,
            )
        },
        ErrorKind::PlanThrottled => KindContract {
            retry_after: Some("1"),
            advice: "the key's plan allows no more requests per second",
            ..row(
                GrpcCode::ResourceExhausted,
                429,
                TOO_MANY_REQUESTS,
                Outcome::PlanThrottled,
                TOO_MANY_REQUESTS,
            )
        },
        ErrorKind::QuotaExceeded => KindContract {
            advice: "the key's quota for this period is used up",
            ..row(
                GrpcCode::ResourceExhausted,
                429,
                LIMIT_EXCEEDED,
                Outcome::QuotaExceeded,
                LIMIT_EXCEEDED,
            )
        },
        ErrorKind::UsageStoreUnavailable => KindContract {
            retry_after: Some("1"),
            advice: "the usage store (folder or Redis) did not answer within store_timeout_ms",
            ..row(
                GrpcCode::Unavailable,
                503,
                SERVICE_UNAVAILABLE,
                Outcome::UsageStoreUnavailable,
                SERVICE_UNAVAILABLE,
            )
        },
    }
}

/// Whether a kind is a usage plan's refusal (one of [`usage_kind`]'s):
/// its message is the client's whatever the API's `expose_errors`, and
/// nothing was invoked.
pub fn is_usage_refusal(kind: ErrorKind) -> bool {
    usage_kind(contract(kind).outcome) == Some(kind)
}

/// `Retry-After` for a failure of `kind`: its own seconds (a usage plan's
/// refusal knows them), else the contract's, if waiting helps.
pub fn retry_after(kind: ErrorKind, own_seconds: Option<u32>) -> Option<String> {
    own_seconds
        .map(|s| s.to_string())
        .or_else(|| contract(kind).retry_after.map(str::to_owned))
}

/// Why an invocation did not produce a Lambda result, as the invoker
/// reports it: the kind (the contract's row) and its own words, which
/// never hold secrets but may name ARNs, accounts and AWS's reasons (so
/// a client sees them only with `expose_errors`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// When the client may try again (a usage plan's refusal knows);
    /// `None`: the contract's `retry_after`, if any.
    pub retry_after_seconds: Option<u32>,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            retry_after_seconds: None,
        }
    }

    /// With a `Retry-After` of its own.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    pub fn contract(&self) -> KindContract {
        contract(self.kind)
    }

    /// The label for metrics and logs.
    pub fn outcome(&self) -> Outcome {
        self.contract().outcome
    }

    /// The failure as the callout's reply (gRPC OK): Envoy hands a filter
    /// only the status code and message of a failed unary call, so the
    /// filter asks for failures here (`InvokeRequest.failure_in_reply`).
    pub fn into_reply(self) -> InvokeReply {
        InvokeReply {
            error_kind: self.kind as i32,
            error_message: self.message,
            retry_after_seconds: self.retry_after_seconds.unwrap_or(0),
            ..InvokeReply::default()
        }
    }

    /// The failure a reply carries, if any: a kind other than
    /// `FUNCTION_ERROR` (a function that ran and failed is a result, with
    /// its error payload) and `UNSPECIFIED`. An unknown kind (from a newer
    /// invoker) is an internal failure.
    pub fn from_reply(reply: &InvokeReply) -> Option<Failure> {
        let kind = ErrorKind::try_from(reply.error_kind).unwrap_or(ErrorKind::Internal);
        match kind {
            ErrorKind::Unspecified | ErrorKind::FunctionError => None,
            kind => Some(Failure {
                retry_after_seconds: Some(reply.retry_after_seconds).filter(|s| *s > 0),
                ..Failure::new(kind, reply.error_message.clone())
            }),
        }
    }
}

/// For logs: `KIND: message`.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str_name(), self.message)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_kind_has_its_own_outcome_named_after_it() {
        let mut seen = HashSet::new();
        for kind in ErrorKind::all() {
            let row = contract(kind);
            assert!(seen.insert(row.outcome), "{kind:?}");
            assert_eq!(
                row.outcome.label(),
                kind.as_str_name()
                    .to_ascii_lowercase()
                    .replace("error_kind_unspecified", "ok"),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn every_outcome_label_reads_back() {
        let mut labels = HashSet::new();
        for outcome in Outcome::ALL {
            assert!(labels.insert(outcome.label()), "{outcome:?}");
            assert_eq!(Outcome::from_label(outcome.label()), Some(outcome));
        }
        assert_eq!(Outcome::from_label("nonsense"), None);
    }

    #[test]
    fn a_failure_crosses_the_reply_typed() {
        for kind in ErrorKind::all() {
            let failure = Failure::new(kind, "function f: try again").retry_after(7);
            let reply = failure.clone().into_reply();
            let back = Failure::from_reply(&reply);
            match kind {
                ErrorKind::Unspecified | ErrorKind::FunctionError => assert_eq!(back, None),
                _ => assert_eq!(back, Some(failure)),
            }
        }
        let from_the_future = InvokeReply {
            error_kind: 999,
            error_message: "new".into(),
            ..InvokeReply::default()
        };
        assert_eq!(
            Failure::from_reply(&from_the_future),
            Some(Failure::new(ErrorKind::Internal, "new"))
        );
    }

    #[test]
    fn client_statuses_are_errors_and_messages_are_api_gateways() {
        for kind in ErrorKind::all() {
            let row = contract(kind);
            assert!((400..600).contains(&row.http_status), "{kind:?}");
            assert!(
                [
                    INTERNAL_SERVER_ERROR,
                    SERVICE_UNAVAILABLE,
                    ENDPOINT_TIMED_OUT,
                    TOO_MANY_REQUESTS,
                    FORBIDDEN,
                    LIMIT_EXCEEDED,
                    "the request or the function's response is over Lambda's payload limit",
                ]
                .contains(&row.public_message),
                "{kind:?}"
            );
        }
    }
}
