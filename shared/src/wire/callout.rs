//! The callout data path (`data_path: callout`, the default): the filter
//! dispatches `Invoke` through Envoy's gRPC client and answers with a
//! local reply made here from what came back.

use lambdagate_proto::InvokeReply;

use crate::contract::{Failure, GrpcCode};
use crate::reply::error::{GatewayError, GrpcStatus};
use crate::reply::proxy::{ReplyContext, invoke_reply_to_http};
use crate::reply::response::HttpResponse;
use crate::request::plan::RoutePlan;

impl RoutePlan {
    /// Turns the gRPC outcome into the client's response: `Ok` with the
    /// `InvokeReply` message bytes, or `Err` with the non-OK status.
    pub fn on_reply(&self, result: Result<&[u8], GrpcStatus>) -> HttpResponse {
        let target = self.target();
        let ctx = ReplyContext {
            arn: &target.arn_text,
            invocation_type: target.invocation_type,
            function_error_status: target.function_error_status,
            timeout: target.timeout,
            request_id: self.request_id(),
            expose_errors: target.expose_errors,
            payload_format: target.payload_format,
            decode_base64: self.decodes_base64_replies(),
        };
        let mut response = reply_to_http(&ctx, result);
        self.add_response_headers(&mut response);
        response
    }
}

/// The callout as HTTP/1.1 (`callout_cluster`): the same gRPC call, its
/// reply read here from what `dispatch_http_call` returns. `status` is the
/// reply's `:status` (`None`: the call failed without one, a reset),
/// `grpc_status` its `grpc-status` header (a trailers-only error; the
/// invoker's own failures come in the message), `body` the whole body.
/// Envoy's failures come as its local replies: 504 when its timeout (the
/// route's plus a second) fired, 503 and others when the invoker cannot be
/// reached; they map to the status Envoy's gRPC client would report.
pub fn http_callout_reply<'a>(
    status: Option<&[u8]>,
    grpc_status: Option<&[u8]>,
    body: &'a [u8],
) -> Result<&'a [u8], GrpcStatus> {
    let code = |code: GrpcCode| GrpcStatus {
        code: code.as_u32(),
    };
    match status {
        Some(b"200") => {}
        Some(b"504") => return Err(code(GrpcCode::DeadlineExceeded)),
        _ => return Err(code(GrpcCode::Unavailable)),
    }
    if let Some(value) = grpc_status.filter(|v| *v != b"0") {
        let parsed = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        return Err(GrpcStatus {
            code: parsed.unwrap_or(GrpcCode::Unknown.as_u32()),
        });
    }
    // One uncompressed frame: flag 0, big-endian length, the message.
    let message = match body {
        [0, a, b, c, d, rest @ ..] => {
            let len = usize::try_from(u32::from_be_bytes([*a, *b, *c, *d])).unwrap_or(usize::MAX);
            rest.get(..len)
        }
        _ => None,
    };
    message.ok_or(code(GrpcCode::Internal))
}

/// Maps the outcome of the gRPC call to the HTTP response. The invoker's
/// failures come typed in the reply (the filter sets `failure_in_reply`);
/// a non-OK status is the call's own failure (Envoy's, the transport's).
pub fn reply_to_http(ctx: &ReplyContext<'_>, result: Result<&[u8], GrpcStatus>) -> HttpResponse {
    let error = match result {
        Err(status) => GatewayError::from_grpc_status(status, ctx.timeout),
        Ok(bytes) => match <InvokeReply as prost::Message>::decode(bytes) {
            Ok(reply) => match Failure::from_reply(&reply) {
                None => return invoke_reply_to_http(ctx, reply),
                Some(failure) => GatewayError::from_failure(failure, ctx.arn, ctx.timeout),
            },
            Err(_) => GatewayError::BadReply,
        },
    };
    error.to_response(ctx.request_id, ctx.expose_errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::router::grpc_frame;

    fn code(result: Result<&[u8], GrpcStatus>) -> u32 {
        match result {
            Ok(_) => 0,
            Err(status) => status.code,
        }
    }

    #[test]
    fn an_http_callout_reply_is_the_framed_message() {
        let framed = grpc_frame(b"reply bytes");
        assert_eq!(
            http_callout_reply(Some(b"200"), None, &framed),
            Ok(&b"reply bytes"[..])
        );
        assert_eq!(
            http_callout_reply(Some(b"200"), Some(b"0"), &framed),
            Ok(&b"reply bytes"[..])
        );
        // An empty message is a valid frame.
        assert_eq!(
            http_callout_reply(Some(b"200"), None, &grpc_frame(b"")),
            Ok(&b""[..])
        );
    }

    #[test]
    fn envoys_failures_map_as_its_grpc_client_would() {
        let deadline = GrpcCode::DeadlineExceeded.as_u32();
        let unavailable = GrpcCode::Unavailable.as_u32();
        assert_eq!(
            code(http_callout_reply(
                Some(b"504"),
                None,
                b"upstream request timeout"
            )),
            deadline
        );
        assert_eq!(
            code(http_callout_reply(
                Some(b"503"),
                None,
                b"no healthy upstream"
            )),
            unavailable
        );
        assert_eq!(code(http_callout_reply(None, None, b"")), unavailable);
        assert_eq!(
            code(http_callout_reply(Some(b"400"), None, b"")),
            unavailable
        );
        // A trailers-only error from the invoker's gRPC server.
        assert_eq!(code(http_callout_reply(Some(b"200"), Some(b"8"), b"")), 8);
        assert_eq!(
            code(http_callout_reply(Some(b"200"), Some(b"x"), b"")),
            GrpcCode::Unknown.as_u32()
        );
    }

    #[test]
    fn a_broken_frame_is_an_internal_error_not_a_reply() {
        let internal = GrpcCode::Internal.as_u32();
        let framed = grpc_frame(b"reply bytes");
        assert_eq!(code(http_callout_reply(Some(b"200"), None, b"")), internal);
        assert_eq!(
            code(http_callout_reply(Some(b"200"), None, &framed[..8])),
            internal
        );
        let mut compressed = framed.clone();
        compressed[0] = 1;
        assert_eq!(
            code(http_callout_reply(Some(b"200"), None, &compressed)),
            internal
        );
    }
}
