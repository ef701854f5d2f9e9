//! The callout data path (`data_path: callout`, the default): the filter
//! dispatches `Invoke` through Envoy's gRPC client and answers with a
//! local reply made here from what came back.

use lambdagate_proto::InvokeReply;

use crate::contract::Failure;
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
