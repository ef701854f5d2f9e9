//! The router data path (`data_path: router`).
//!
//! ```text
//! on_http_request_headers/body ─► plan.build_forward(body_len)
//!     Err(r)   → send_http_response(r)
//!     Ok(fwd)  → replace the request's headers (fwd.headers), put
//!                fwd.body_prefix in front of the body Envoy buffered
//!                (never read into the VM), continue: Envoy's router
//!                sends the call to the invoker cluster
//! on_http_response_headers     ─► plan.reply_head(&headers)
//!     ReplyHead::Http { .. }  → replace the response's headers
//!     ReplyHead::Failed(r)    → send_http_response(r) (Envoy's own reply:
//!                               invoker unreachable, deadline)
//! on_http_response_body        ─► Deframer (see `deframe`): drop the gRPC framing bytes
//! on_http_response_trailers    ─► remove them (`grpc-status: 0`)
//! ```
//!
//! The invoker maps Lambda's answer to the HTTP response with this crate's
//! own table ([`http_reply_response`]), so both paths answer alike, and the
//! response body never crosses into the wasm VM whole.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambdagate_proto::http_path::{
    FORWARDED_HEADER, HEADER_PREFIX, INVOKE_METADATA, OUTCOME, PATH, STATUS,
};
use lambdagate_proto::{HttpHeader, HttpReply, InvokeReply, InvokeRequest};
use prost::Message as _;

use crate::config::timeout::Timeout;
use crate::config::{InvocationType, PayloadFormat};
use crate::contract::{Failure, GrpcCode, Outcome};
use crate::reply::error::{GatewayError, GrpcStatus};
use crate::reply::proxy::{ReplyContext, add_route_headers, invoke_reply_to_http};
use crate::reply::response::HttpResponse;
use crate::request::plan::RoutePlan;

/// The request the router sends to the invoker in place of the client's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The whole new header map (pseudo-headers included).
    pub headers: Vec<(String, String)>,
    /// What goes in front of the client's body to make it one gRPC frame
    /// of the `InvokeRequest` whose `payload` is that body: the frame
    /// header, the message's other fields, the payload's tag and length.
    /// `None` when the client's request has no body: the call then travels
    /// in [`INVOKE_METADATA`].
    pub body_prefix: Option<Vec<u8>>,
}

/// Headers the filter keeps from the client's request on the forwarded
/// call: Envoy's request id (access log, tracing) and the scheme Envoy set,
/// without which Envoy 1.40 matches no route at all (seen: a map without it
/// gave `route_not_found` even for a `prefix: /` route).
const KEPT_HEADERS: &[&str] = &["x-request-id", "x-forwarded-proto"];

impl RoutePlan {
    /// The route's response rules, for the invoker.
    pub fn http_reply(&self) -> HttpReply {
        let target = self.target();
        HttpReply {
            payload_format: target.payload_format.to_wire(),
            decode_base64: self.decodes_base64_replies(),
            function_error_status: u32::from(target.function_error_status),
            expose_errors: target.expose_errors,
            head_request: self.method() == "HEAD",
            stream: self.streams(),
            headers: self
                .response_headers()
                .into_iter()
                .map(|(name, value)| HttpHeader { name, value })
                .collect(),
        }
    }

    /// Builds the invoker call that replaces the client's request, whose
    /// body (if any, `Some(length)`; the filter can replace a body but not
    /// add one) stays where Envoy buffered it. `Err` is the response to
    /// send instead, as for [`RoutePlan::build_invoke`].
    pub fn build_forward(&self, body_len: Option<usize>) -> Result<Forward, HttpResponse> {
        let invoke = self.invoke_for_body(body_len.unwrap_or(0))?;
        let deadline_ms = invoke.grpc_timeout.as_millis();
        let mut request = invoke.into_request();
        request.http_reply = Some(self.http_reply());
        let message = request.encode_to_vec();
        let mut out: Vec<(String, String)> = vec![
            (":method".into(), "POST".into()),
            (":scheme".into(), "http".into()),
            (":authority".into(), "lambdagate-invoker".into()),
            (":path".into(), PATH.into()),
            ("content-type".into(), "application/grpc".into()),
            ("te".into(), "trailers".into()),
            // The invoker's deadline for the call; its own, shorter one
            // (the route timeout) answers first with a typed TIMEOUT.
            ("grpc-timeout".into(), format!("{deadline_ms}m")),
            // Envoy's router timeout for this request (the route has none):
            // counted, as the callout's deadline is, from when the whole
            // request is forwarded, not from its first byte (which
            // `max_stream_duration` would do, and a slow sender would eat).
            (
                "x-envoy-upstream-rq-timeout-ms".into(),
                deadline_ms.to_string(),
            ),
            (FORWARDED_HEADER.into(), "1".into()),
            // For the access log: what the client asked for.
            ("x-envoy-original-path".into(), self.original_path()),
            (ORIGINAL_METHOD.into(), self.method().to_owned()),
        ];
        for (name, value) in self.headers() {
            if KEPT_HEADERS.contains(&name.as_str()) {
                out.push((name.clone(), value.clone()));
            }
        }
        match body_len {
            Some(len) => Ok(Forward {
                headers: out,
                body_prefix: Some(payload_frame_prefix(&message, len)),
            }),
            None => {
                out.push((INVOKE_METADATA.into(), STANDARD.encode(&message)));
                Ok(Forward {
                    headers: out,
                    body_prefix: None,
                })
            }
        }
    }

    /// Reads the head of the upstream response to a forwarded request.
    pub fn reply_head(&self, headers: &[(String, String)]) -> ReplyHead {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(status) = get(STATUS) {
            let Some(status) = status
                .parse::<u16>()
                .ok()
                .filter(|s| (200..600).contains(s))
            else {
                return ReplyHead::Failed(self.error_response(&GatewayError::BadReply));
            };
            // The invoker's outcome label; one this filter does not know
            // (another version's) makes the reply one it cannot read.
            let outcome = match get(OUTCOME) {
                None => Outcome::Ok,
                Some(label) => Outcome::from_label(label).unwrap_or(Outcome::BadReply),
            };
            let headers = headers
                .iter()
                .filter_map(|(n, v)| {
                    n.strip_prefix(HEADER_PREFIX)
                        .map(|name| (name.to_owned(), v.clone()))
                })
                .collect();
            return ReplyHead::Http {
                status,
                headers,
                outcome,
            };
        }
        // Not the invoker's answer: a gRPC status without a reply (the
        // invoker refused the call), or Envoy's own reply (the invoker
        // cannot be reached, or the route's deadline passed).
        let unavailable = GrpcCode::Unavailable.as_u32();
        let code = match (get("grpc-status"), get(":status")) {
            (Some(code), _) => code.parse::<u32>().unwrap_or(unavailable),
            (None, Some("504")) => GrpcCode::DeadlineExceeded.as_u32(),
            _ => unavailable,
        };
        let error = GatewayError::from_grpc_status(GrpcStatus { code }, self.target().timeout);
        let mut response = error.to_response(self.request_id(), self.target().expose_errors);
        self.add_response_headers(&mut response);
        ReplyHead::Failed(response)
    }
}

/// Request header naming the client's method, for the access log
/// (`%REQ(LAMBDAGATE-ORIGINAL-METHOD?:METHOD)%`).
pub const ORIGINAL_METHOD: &str = "lambdagate-original-method";

/// What the filter does with the upstream response's head.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyHead {
    /// The invoker's answer: the client's status and headers; the body
    /// follows as gRPC frames.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        outcome: Outcome,
    },
    /// Answer with this instead.
    Failed(HttpResponse),
}

/// Request headers of the filter's own (`lambdagate-…`) that a client
/// sent: the filter removes them, so that they reach neither the access
/// log nor a function's upstream as if the filter set them. (A request
/// with the invoker route's marker is refused before that, see
/// `CompiledConfig::on_request_headers`.)
pub fn reserved_request_headers(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.starts_with("lambdagate-"))
        .map(|(n, _)| n.clone())
        .collect()
}

/// `InvokeRequest.payload`'s field number (invoker.proto).
const PAYLOAD_FIELD: u32 = 3;

/// The front of one gRPC frame holding `message` (an `InvokeRequest`
/// without its payload) and then a payload of `payload_len` bytes, which
/// follow it: protobuf decodes fields in any order.
pub fn payload_frame_prefix(message: &[u8], payload_len: usize) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    let len = u64::try_from(payload_len).unwrap_or(u64::MAX);
    let field = 1 + encoded_len_varint(len);
    let total = message.len() + field + payload_len;
    let mut prefix = Vec::with_capacity(5 + message.len() + field);
    prefix.extend_from_slice(&lambdagate_proto::grpc_frame_header(total));
    prefix.extend_from_slice(message);
    encode_key(PAYLOAD_FIELD, WireType::LengthDelimited, &mut prefix);
    encode_varint(len, &mut prefix);
    prefix
}

/// One uncompressed gRPC message frame.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.extend_from_slice(&lambdagate_proto::grpc_frame_header(message.len()));
    framed.extend_from_slice(message);
    framed
}

/// The invoker's side of the router path: the client's response for the
/// call `request` (with its `http_reply`) and what the invocation gave.
pub fn http_reply_response(
    request: &InvokeRequest,
    result: Result<InvokeReply, Failure>,
) -> HttpResponse {
    let spec = request.http_reply.clone().unwrap_or_default();
    let timeout = Timeout::from_millis(request.timeout_ms).unwrap_or_default();
    let ctx = ReplyContext {
        arn: &request.function_arn,
        invocation_type: InvocationType::from_proto(request.invocation_type).unwrap_or_default(),
        function_error_status: u16::try_from(spec.function_error_status)
            .ok()
            .filter(|s| (100..600).contains(s))
            .unwrap_or(crate::config::DEFAULT_FUNCTION_ERROR_STATUS),
        timeout,
        request_id: &request.request_id,
        expose_errors: spec.expose_errors,
        payload_format: PayloadFormat::from_wire(spec.payload_format).unwrap_or_default(),
        decode_base64: spec.decode_base64,
    };
    let mut response = match result {
        Ok(reply) => invoke_reply_to_http(&ctx, reply),
        Err(failure) => GatewayError::from_failure(failure, ctx.arn, timeout)
            .to_response(ctx.request_id, ctx.expose_errors),
    };
    add_route_headers(&mut response.headers, spec.headers);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_and_the_body_behind_it_are_one_invoke_request() {
        let request = InvokeRequest {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            request_id: "r-1".into(),
            timeout_ms: 5000,
            ..InvokeRequest::default()
        };
        let message = request.encode_to_vec();
        // Lengths around the varint's one- and two-byte forms, and a large one.
        for len in [0, 1, 127, 128, 300, 1 << 20] {
            let body = vec![b'x'; len];
            let mut frame = payload_frame_prefix(&message, len);
            frame.extend_from_slice(&body);
            let declared = u32::from_be_bytes(frame[1..5].try_into().unwrap());
            assert_eq!((frame[0], declared as usize), (0, frame.len() - 5));
            let decoded = InvokeRequest::decode(&frame[5..]).unwrap();
            assert_eq!(
                decoded,
                InvokeRequest {
                    payload: body.into(),
                    ..request.clone()
                }
            );
        }
    }
}
