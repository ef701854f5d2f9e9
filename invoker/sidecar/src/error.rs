//! Every reason an invocation fails, classified in ONE place into a typed
//! [`ErrorKind`] (whose gRPC code, client answer and advice are the error
//! contract's, `lambdagate_core::contract`). Messages say what to do next
//! and are built from our own words plus AWS's error code and message:
//! never from credentials.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use lambdagate_core::contract::contract;
use lambdagate_proto::ErrorKind;
use tonic::Code;
use tonic::metadata::MetadataMap;

/// A failed invocation (or AWS call made by `check` / `functions`): the
/// error contract's type, shared with the filter.
pub use lambdagate_core::contract::Failure;

/// The gRPC status of a failure: the contract's code, the message in words,
/// the kind typed in the `lambdagate-error-kind-bin` trailer (with any other
/// `trailers`).
pub fn failure_status(failure: &Failure, trailers: MetadataMap) -> tonic::Status {
    lambdagate_proto::failure_status(
        grpc_code(failure.kind),
        failure.kind,
        &failure.message,
        trailers,
    )
}

/// The contract's gRPC code of a kind, as tonic's.
pub fn grpc_code(kind: ErrorKind) -> Code {
    Code::from(contract(kind).grpc_code as i32)
}

/// What was being called, for the message.
pub struct CallContext<'a> {
    /// e.g. "Lambda Invoke", "STS GetCallerIdentity".
    pub operation: &'a str,
    /// e.g. the function ARN, or "" when not about one function.
    pub target: &'a str,
    pub endpoint: &'a str,
    /// Route timeout, for the timeout message.
    pub timeout: Option<std::time::Duration>,
}

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "IncompleteSignature",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "MissingAuthenticationToken",
    "InvalidAccessKeyId",
];

/// Classifies any AWS SDK error. Lambda's modelled errors are recognised by
/// their code; unmodelled ones (such as the XML errors of some emulators)
/// by the HTTP status.
pub fn classify<E>(err: &SdkError<E, HttpResponse>, ctx: &CallContext<'_>) -> Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let what = if ctx.target.is_empty() {
        format!("{} (endpoint `{}`)", ctx.operation, ctx.endpoint)
    } else {
        format!(
            "{} of `{}` (endpoint `{}`)",
            ctx.operation, ctx.target, ctx.endpoint
        )
    };
    if let Some(cred) = find_source::<CredentialsError>(err) {
        return credentials_failure(&what, cred);
    }
    match err {
        SdkError::TimeoutError(_) => timeout_failure(&what, ctx.timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => timeout_failure(&what, ctx.timeout),
        SdkError::DispatchFailure(_) => Failure::new(
            ErrorKind::LambdaUnavailable,
            format!(
                "{what}: could not reach AWS: {}; check the network and the endpoint's `endpoint_url`/region",
                chain_text(err)
            ),
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let body = service.raw().body().bytes().unwrap_or_default();
            let (code, aws_message) = match service.err().code() {
                Some(code) => (
                    Some(code.to_owned()),
                    service.err().message().map(str::to_owned),
                ),
                None => xml_error(body),
            };
            classify_service(&what, status, code.as_deref(), aws_message.as_deref())
        }
        SdkError::ResponseError(_) => Failure::new(
            ErrorKind::LambdaUnavailable,
            format!(
                "{what}: AWS sent a response that could not be read: {}",
                chain_text(err)
            ),
        ),
        SdkError::ConstructionFailure(_) => Failure::new(
            ErrorKind::Internal,
            format!(
                "{what}: the request could not be built: {}",
                chain_text(err)
            ),
        ),
        other => Failure::new(
            ErrorKind::Internal,
            format!("{what}: {}", chain_text(other)),
        ),
    }
}

/// No credentials could be loaded for the call described by `what`.
pub fn credentials_failure(what: &str, err: &CredentialsError) -> Failure {
    Failure::new(
        ErrorKind::CredentialsUnavailable,
        format!(
            "{what}: no AWS credentials: {}; check the endpoint's access method (role: the instance/container role or environment; stored: the referenced key; assume_role: the role ARN and trust policy)",
            chain_text(err)
        ),
    )
}

/// The call described by `what` got no answer within `timeout`.
pub fn timeout_failure(what: &str, timeout: Option<std::time::Duration>) -> Failure {
    let limit = timeout
        .map(|t| {
            format!(
                " within the route timeout of {}",
                lambdagate_core::Timeout::new(t)
                    .map(|t| t.to_string())
                    .unwrap_or_else(|_| format!("{t:?}"))
            )
        })
        .unwrap_or_default();
    Failure::new(
        ErrorKind::Timeout,
        format!(
            "{what}: no answer{limit}; raise the resource's timeout (at most 15m) or make the function faster"
        ),
    )
}

/// The decision table for errors that AWS answered.
pub fn classify_service(
    what: &str,
    status: u16,
    code: Option<&str>,
    aws_message: Option<&str>,
) -> Failure {
    let detail = match (code, aws_message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_owned(),
        (None, Some(m)) => m.to_owned(),
        (None, None) => format!("HTTP {status}"),
    };
    let kind = match code {
        Some("ResourceNotFoundException") => ErrorKind::FunctionNotFound,
        Some("TooManyRequestsException") | Some("Throttling") | Some("ThrottlingException") => {
            ErrorKind::Throttled
        }
        Some("RequestTooLargeException") => ErrorKind::PayloadTooLarge,
        Some(c) if ACCESS_DENIED_CODES.contains(&c) => ErrorKind::AccessDenied,
        Some("InvalidRequestContentException")
        | Some("InvalidParameterValueException")
        | Some("UnsupportedMediaTypeException") => ErrorKind::InvalidRequest,
        _ => match status {
            404 => ErrorKind::FunctionNotFound,
            401 | 403 => ErrorKind::AccessDenied,
            413 => ErrorKind::PayloadTooLarge,
            429 => ErrorKind::Throttled,
            400 => ErrorKind::InvalidRequest,
            500..=599 => ErrorKind::LambdaUnavailable,
            _ => ErrorKind::Internal,
        },
    };
    let advice = contract(kind).advice;
    Failure::new(kind, format!("{what}: {detail} ({advice})"))
}

/// Reads `<Code>` and `<Message>` from an XML error body (STS, IAM, and
/// emulators answer in XML).
pub(crate) fn xml_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let len = text.get(start..)?.find(&close)?;
        text.get(start..start + len).map(|s| s.trim().to_owned())
    };
    (tag("Code"), tag("Message"))
}

fn find_source<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// The error and its causes, joined: "a: b: c".
pub fn chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_map_by_code_then_status() {
        let cases = [
            (
                404,
                Some("ResourceNotFoundException"),
                ErrorKind::FunctionNotFound,
            ),
            (429, Some("TooManyRequestsException"), ErrorKind::Throttled),
            (
                413,
                Some("RequestTooLargeException"),
                ErrorKind::PayloadTooLarge,
            ),
            (403, Some("SignatureDoesNotMatch"), ErrorKind::AccessDenied),
            (
                403,
                Some("UnrecognizedClientException"),
                ErrorKind::AccessDenied,
            ),
            (
                400,
                Some("InvalidRequestContentException"),
                ErrorKind::InvalidRequest,
            ),
            (403, None, ErrorKind::AccessDenied),
            (429, None, ErrorKind::Throttled),
            (502, Some("ServiceException"), ErrorKind::LambdaUnavailable),
            (418, None, ErrorKind::Internal),
        ];
        for (status, code, kind) in cases {
            let f = classify_service("Lambda Invoke of `f`", status, code, Some("msg"));
            assert_eq!(f.kind, kind, "{status} {code:?}");
            assert!(
                f.message.starts_with("Lambda Invoke of `f`: "),
                "{}",
                f.message
            );
        }
    }

    #[test]
    fn gateway_facing_codes() {
        assert_eq!(grpc_code(ErrorKind::NotAllowed), Code::PermissionDenied);
        assert_eq!(grpc_code(ErrorKind::Throttled), Code::ResourceExhausted);
        assert_eq!(grpc_code(ErrorKind::Timeout), Code::DeadlineExceeded);
        let status = failure_status(
            &Failure::new(ErrorKind::FunctionNotFound, "gone"),
            MetadataMap::new(),
        );
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(status.message(), "gone");
        assert_eq!(
            lambdagate_proto::error_kind(&status),
            ErrorKind::FunctionNotFound
        );
    }

    #[test]
    fn xml_errors_are_read() {
        let body = b"<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></ErrorResponse>";
        assert_eq!(
            xml_error(body),
            (
                Some("InvalidClientTokenId".into()),
                Some("The security token included in the request is invalid.".into())
            )
        );
        assert_eq!(xml_error(b"not xml"), (None, None));
    }
}
