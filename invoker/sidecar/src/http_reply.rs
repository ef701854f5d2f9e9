//! The router path's reply (`InvokeHttp`): the client's status and
//! headers in the reply's metadata, the body in `HttpBodyChunk` messages;
//! a whole response here, a streamed one in `stream::reply`.

use lambdagate_core::HttpResponse;
use lambdagate_core::wire::router::http_reply_response;
use lambdagate_proto::http_path::{HEADER_PREFIX, OUTCOME, STATUS};
use lambdagate_proto::{ErrorKind, HttpBodyChunk, InvokeReply, InvokeRequest};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::{Response, Status};

use crate::error::Failure;
use crate::stream::function_error_reply;

/// The body of an `InvokeHttp` reply.
pub type HttpBodyStream =
    std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<HttpBodyChunk, Status>> + Send>>;

/// A whole response: the head in the reply's metadata, the body in one
/// message.
pub(crate) fn buffered_reply(
    rules: &InvokeRequest,
    result: Result<InvokeReply, Failure>,
) -> Response<HttpBodyStream> {
    let response = match result {
        Ok(reply) => http_reply_response(rules, Ok(reply)),
        // Before its first byte, a stream's function error is answered as
        // a buffered call's.
        Err(failure) if failure.kind == ErrorKind::FunctionError => http_reply_response(
            rules,
            Ok(function_error_reply(
                "Runtime.StreamError",
                &failure.message,
                "",
            )),
        ),
        Err(failure) => http_reply_response(rules, Err(failure)),
    };
    whole_reply(rules, response)
}

/// `response` with its body in one message (none for HEAD) and its length.
pub(crate) fn whole_reply(
    rules: &InvokeRequest,
    mut response: HttpResponse,
) -> Response<HttpBodyStream> {
    if let Some(detail) = &response.detail {
        // What the client was not told, for the operator.
        tracing::warn!(
            status = response.status,
            outcome = response.outcome.label(),
            "answered {detail}"
        );
    }
    // The length is the body's, also for HEAD, which gets no body.
    let length = response.body.len().to_string();
    let body = std::mem::take(&mut response.body);
    let chunks = if body.is_empty() || is_head(rules) {
        Vec::new()
    } else {
        vec![Ok(HttpBodyChunk { data: body.into() })]
    };
    with_head(
        &response,
        Some(&length),
        Box::pin(tokio_stream::iter(chunks)),
    )
}

pub(crate) fn is_head(rules: &InvokeRequest) -> bool {
    rules.http_reply.as_ref().is_some_and(|r| r.head_request)
}

/// The reply with the client's status and headers in its metadata.
pub(crate) fn with_head(
    response: &HttpResponse,
    content_length: Option<&str>,
    body: HttpBodyStream,
) -> Response<HttpBodyStream> {
    let mut reply = Response::new(body);
    let head = reply.metadata_mut();
    head.insert(STATUS, MetadataValue::from(response.status));
    head.insert(
        OUTCOME,
        MetadataValue::from_static(response.outcome.label()),
    );
    let content_length = content_length.map(|length| ("content-length", length));
    for (name, value) in response
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(content_length)
    {
        let key = MetadataKey::from_bytes(format!("{HEADER_PREFIX}{name}").as_bytes());
        match (key, MetadataValue::try_from(value)) {
            (Ok(key), Ok(value)) => {
                head.append(key, value);
            }
            // The core lets through only tokens and field values.
            _ => tracing::warn!(
                header = name,
                "response header dropped: not valid in HTTP/2"
            ),
        }
    }
    reply
}
