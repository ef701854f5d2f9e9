//! Streamed invocations (`response_mode: stream`), all of them here: what a
//! backend hands back ([`Answer`], [`ReplyStream`], [`BodyItem`]), Lambda's
//! `InvokeWithResponseStream` read ([`eventstream`], `lambda`), the route
//! timeout and size limit over the whole stream (`metered`), and the
//! gRPC reply that carries it to Envoy ([`reply`]).
//!
//! Every hop of a stream is a bounded channel of a few chunks: a reader
//! that does not keep up (a slow client, through Envoy's and HTTP/2's flow
//! control) stops the hop before it, down to the function, instead of
//! making the invoker buffer the response.

use bytes::Bytes;
use lambdagate_proto::{ErrorKind, InvokeReply};
use tokio::sync::mpsc;

use crate::error::Failure;

pub mod eventstream;
mod lambda;
pub(crate) mod metered;
pub mod reply;

/// What flows through each hop of a streamed body. The end is explicit:
/// a channel that closes without [`BodyItem::End`] or [`BodyItem::Fail`]
/// means its writer went away, and every hop treats that as a failure,
/// never as a body that is whole.
#[derive(Debug)]
pub enum BodyItem {
    Chunk(Bytes),
    /// The stream is complete.
    End,
    /// The stream failed after what was sent; nothing follows.
    Fail(Failure),
}

/// What a hop passes on when the channel before it closed without an end.
pub fn writer_gone(what: &str) -> Failure {
    Failure::new(
        ErrorKind::Internal,
        format!("{what} stopped without ending the stream"),
    )
}

/// Chunks each hop holds before its writer waits.
pub const CHANNEL_CHUNKS: usize = 4;

/// A streamed response under way.
pub struct ReplyStream {
    /// The stream's content type: [`HTTP_INTEGRATION_CONTENT_TYPE`]
    /// (`lambdagate_core::stream`) when it starts with a prelude.
    pub content_type: String,
    pub lambda_request_id: String,
    pub body: mpsc::Receiver<BodyItem>,
}

/// What an invocation gave.
pub enum Answer {
    /// A whole reply: a buffered call, or a streamed one that failed before
    /// its first byte (a function error is then reported like a buffered
    /// call's).
    Buffered(InvokeReply),
    Stream(ReplyStream),
}

/// A function error reported in a stream (`InvokeComplete`'s error code
/// and details, a runtime's error trailers): a reply with Lambda's error
/// object, as a buffered call would carry it.
pub fn function_error_reply(
    error_type: &str,
    message: &str,
    lambda_request_id: &str,
) -> InvokeReply {
    InvokeReply {
        status_code: 200,
        payload: serde_json::json!({"errorType": error_type, "errorMessage": message})
            .to_string()
            .into_bytes(),
        function_error: "Unhandled".into(),
        executed_version: String::new(),
        lambda_request_id: lambda_request_id.to_owned(),
        error_kind: ErrorKind::FunctionError as i32,
        error_message: String::new(),
        ..InvokeReply::default()
    }
}

/// Lambda's limit on a streamed response.
pub const MAX_STREAM_BYTES: u64 = 200 * 1024 * 1024;
