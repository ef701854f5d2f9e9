//! The router data path (`data_path: router`).
//!
//! ```text
//! on_http_request_headers/body ─► plan.build_forward(&body)
//!     Err(r)   → send_http_response(r)
//!     Ok(fwd)  → replace the request's headers (fwd.headers) and body
//!                (fwd.body), continue: Envoy's router sends the call to
//!                the invoker cluster
//! on_http_response_headers     ─► plan.reply_head(&headers)
//!     ReplyHead::Http { .. }  → replace the response's headers
//!     ReplyHead::Failed(r)    → send_http_response(r) (Envoy's own reply:
//!                               invoker unreachable, deadline)
//! on_http_response_body        ─► Deframer: drop the gRPC framing bytes
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

use crate::config::{InvocationType, PayloadFormat};
use crate::plan::RoutePlan;
use crate::response::{
    GRPC_DEADLINE_EXCEEDED, GRPC_UNAVAILABLE, GatewayError, GrpcStatus, HttpResponse, ReplyContext,
    add_route_headers, invoke_reply_to_http,
};
use crate::timeout::Timeout;

/// The request the router sends to the invoker in place of the client's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// The whole new header map (pseudo-headers included).
    pub headers: Vec<(String, String)>,
    /// The new body (one gRPC frame), or `None` when the client's request
    /// has no body: the call then travels in [`INVOKE_METADATA`].
    pub body: Option<Vec<u8>>,
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

    /// Builds the invoker call that replaces the client's request.
    /// `has_body`: whether the client's request has a body (the filter can
    /// replace a body but not add one). `Err` is the response to send
    /// instead, as for [`RoutePlan::build_invoke`].
    pub fn build_forward(&self, body: &[u8], has_body: bool) -> Result<Forward, HttpResponse> {
        let invoke = self.build_invoke(body)?;
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
        if has_body {
            Ok(Forward {
                headers: out,
                body: Some(grpc_frame(&message)),
            })
        } else {
            out.push((INVOKE_METADATA.into(), STANDARD.encode(&message)));
            Ok(Forward {
                headers: out,
                body: None,
            })
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
            let outcome = get(OUTCOME).unwrap_or("ok").to_owned();
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
        let code = match (get("grpc-status"), get(":status")) {
            (Some(code), _) => code.parse::<u32>().unwrap_or(GRPC_UNAVAILABLE),
            (None, Some("504")) => GRPC_DEADLINE_EXCEEDED,
            _ => GRPC_UNAVAILABLE,
        };
        let message = crate::url::decode_path(get("grpc-message").unwrap_or(""));
        let error = GatewayError::from_grpc_status(
            GrpcStatus {
                code,
                message: &message,
            },
            &self.target().arn_text,
            self.target().timeout,
        );
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
        outcome: String,
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

/// One uncompressed gRPC message frame.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(message.len() + 5);
    framed.push(0);
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(message);
    framed
}

/// The invoker's side of the router path: the client's response for the
/// call `request` (with its `http_reply`) and what the invocation gave.
pub fn http_reply_response(
    request: &InvokeRequest,
    result: Result<InvokeReply, GrpcStatus<'_>>,
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
        Err(status) => GatewayError::from_grpc_status(status, ctx.arn, timeout)
            .to_response(ctx.request_id, ctx.expose_errors),
    };
    add_route_headers(&mut response.headers, spec.headers);
    response
}

/// Removes the gRPC framing from an `InvokeHttp` response body as it
/// passes through, chunk by chunk: every message is an `HttpBodyChunk`
/// (`0x0a`, a varint length, the bytes), behind gRPC's 5-byte prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deframer {
    /// Body bytes of the current message still to pass.
    data_left: usize,
    /// Framing bytes of the next message seen so far (a header can be
    /// split across chunks).
    header: Vec<u8>,
}

/// What to do with one chunk of the response body.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkEdit {
    /// Pass it as it is.
    Keep,
    /// Drop its first `n` bytes (framing) and pass the rest.
    DropFront(usize),
}

/// Longest framing: the 5-byte prefix, the field tag and a 5-byte varint.
pub const MAX_FRAMING_BYTES: usize = 11;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("the invoker's reply is not a stream of HttpBodyChunk messages: {0}")]
pub struct DeframeError(&'static str);

impl Deframer {
    /// The edit for a chunk of `len` bytes that starts with `head` (its
    /// first [`MAX_FRAMING_BYTES`] bytes or all of it), when that is enough
    /// to decide: the chunk has at most one framing, at its start. `None`:
    /// call [`Deframer::rewrite`] with the whole chunk.
    pub fn quick_edit(
        &mut self,
        head: &[u8],
        len: usize,
    ) -> Result<Option<ChunkEdit>, DeframeError> {
        if len <= self.data_left {
            self.data_left -= len;
            return Ok(Some(ChunkEdit::Keep));
        }
        if self.data_left > 0 || !self.header.is_empty() {
            return Ok(None);
        }
        let Some((framing, data)) = parse_framing(head)? else {
            return Ok(None);
        };
        if framing + data < len {
            // Another message starts in this chunk.
            return Ok(None);
        }
        self.data_left = data - (len - framing);
        Ok(Some(ChunkEdit::DropFront(framing)))
    }

    /// The chunk without its framing bytes.
    pub fn rewrite(&mut self, chunk: &[u8]) -> Result<Vec<u8>, DeframeError> {
        let mut out = Vec::with_capacity(chunk.len());
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.data_left > 0 {
                let (data, after) = rest.split_at(self.data_left.min(rest.len()));
                out.extend_from_slice(data);
                self.data_left -= data.len();
                rest = after;
                continue;
            }
            // Collect framing bytes until the header parses.
            let before = self.header.len();
            let (taken, _) = rest.split_at((MAX_FRAMING_BYTES - before).min(rest.len()));
            self.header.extend_from_slice(taken);
            let used = match parse_framing(&self.header)? {
                Some((framing, data)) => {
                    self.header.clear();
                    self.data_left = data;
                    framing - before
                }
                None => taken.len(),
            };
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(out)
    }

    /// Whether the body ended between messages.
    pub fn is_at_boundary(&self) -> bool {
        self.data_left == 0 && self.header.is_empty()
    }
}

/// Parses one message's framing at the start of `bytes`: `Some((framing
/// length, data length))`, or `None` when more bytes are needed.
fn parse_framing(bytes: &[u8]) -> Result<Option<(usize, usize)>, DeframeError> {
    let Some(([flag, l0, l1, l2, l3], rest)) = bytes.split_first_chunk::<5>() else {
        return Ok(None);
    };
    if *flag != 0 {
        return Err(DeframeError("a compressed message"));
    }
    let message = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
    if message == 0 {
        return Ok(Some((5, 0)));
    }
    let Some((&tag, varint)) = rest.split_first() else {
        return Ok(None);
    };
    if tag != 0x0a {
        return Err(DeframeError("a message with another field"));
    }
    let mut data: usize = 0;
    for (i, &b) in varint.iter().enumerate().take(5) {
        data |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let framing = 6 + i + 1;
            if framing - 5 + data != message {
                return Err(DeframeError("a message with more than its bytes"));
            }
            return Ok(Some((framing, data)));
        }
    }
    if bytes.len() >= MAX_FRAMING_BYTES {
        return Err(DeframeError("a length that does not end"));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambdagate_proto::HttpBodyChunk;

    fn frame(data: &[u8]) -> Vec<u8> {
        grpc_frame(
            &HttpBodyChunk {
                data: data.to_vec().into(),
            }
            .encode_to_vec(),
        )
    }

    /// Feeds `wire` cut at `cuts` through the deframer the way the filter
    /// does (quick edit first, else rewrite) and returns the body.
    fn deframe(wire: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut d = Deframer::default();
        let mut out = Vec::new();
        let mut start = 0;
        let mut ends: Vec<usize> = cuts.to_vec();
        ends.push(wire.len());
        for end in ends {
            let chunk = &wire[start..end];
            let head = &chunk[..chunk.len().min(MAX_FRAMING_BYTES)];
            match d.quick_edit(head, chunk.len()).unwrap() {
                Some(ChunkEdit::Keep) => out.extend_from_slice(chunk),
                Some(ChunkEdit::DropFront(n)) => out.extend_from_slice(&chunk[n..]),
                None => out.extend(d.rewrite(chunk).unwrap()),
            }
            start = end;
        }
        assert!(d.is_at_boundary());
        out
    }

    #[test]
    fn one_message_in_one_chunk_drops_only_its_framing() {
        let body = vec![7u8; 300];
        let wire = frame(&body);
        let mut d = Deframer::default();
        let edit = d
            .quick_edit(&wire[..MAX_FRAMING_BYTES], wire.len())
            .unwrap();
        assert_eq!(edit, Some(ChunkEdit::DropFront(5 + 1 + 2)));
        assert!(d.is_at_boundary());
    }

    #[test]
    fn any_cut_of_any_messages_gives_the_body_back() {
        let parts: [&[u8]; 4] = [b"hello ", b"", &[0xff; 200], b"world"];
        let wire: Vec<u8> = parts.iter().flat_map(|p| frame(p)).collect();
        let body: Vec<u8> = parts.concat();
        for a in 0..wire.len() {
            for b in a..wire.len() {
                assert_eq!(deframe(&wire, &[a, b]), body, "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn a_big_message_across_chunks_is_edited_without_copies() {
        let body = vec![1u8; 1 << 20];
        let wire = frame(&body);
        let mut d = Deframer::default();
        let first = 16384;
        assert_eq!(
            d.quick_edit(&wire[..MAX_FRAMING_BYTES], first).unwrap(),
            Some(ChunkEdit::DropFront(5 + 1 + 3))
        );
        let mut at = first;
        while at < wire.len() {
            let len = (wire.len() - at).min(65536);
            assert_eq!(
                d.quick_edit(&wire[at..at + len.min(MAX_FRAMING_BYTES)], len)
                    .unwrap(),
                Some(ChunkEdit::Keep)
            );
            at += len;
        }
        assert!(d.is_at_boundary());
    }

    #[test]
    fn framing_that_is_not_ours_is_an_error() {
        let mut d = Deframer::default();
        assert!(d.rewrite(&[1, 0, 0, 0, 2, 0x0a, 0]).is_err(), "compressed");
        let mut d = Deframer::default();
        assert!(d.rewrite(&[0, 0, 0, 0, 2, 0x12, 0]).is_err(), "field 2");
        let mut d = Deframer::default();
        assert!(
            d.rewrite(&[0, 0, 0, 0, 9, 0x0a, 1, 0]).is_err(),
            "extra bytes"
        );
        let mut d = Deframer::default();
        assert!(
            d.rewrite(&[0, 0, 0, 0, 9, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff])
                .is_err(),
            "endless varint"
        );
    }
}
