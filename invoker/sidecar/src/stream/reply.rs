//! A streamed `InvokeHttp` reply: the head from the stream's prelude, then
//! each chunk as it arrives; a failure after the head ends the call with a
//! non-OK status so a cut stream never looks whole.

use bytes::Bytes;
use lambdagate_core::reply::stream::{
    HTTP_INTEGRATION_CONTENT_TYPE, MAX_PRELUDE_BYTES, find_prelude_end, prelude_refused,
    stream_head,
};
use lambdagate_proto::http_path::OUTCOME;
use lambdagate_proto::{HttpBodyChunk, InvokeRequest};
use tokio::sync::mpsc;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Response, Status};

use super::{BodyItem, ReplyStream, writer_gone};
use crate::error::{Failure, failure_status};
use crate::http_reply::{HttpBodyStream, buffered_reply, is_head, whole_reply, with_head};

/// Reads the rest of a stream nobody will see (a HEAD request, a refused
/// prelude), so that the invocation ends as it would have and is recorded
/// as such, and a local function's process is free for the next call.
fn drain(mut body: mpsc::Receiver<BodyItem>) {
    tokio::spawn(async move { while let Some(BodyItem::Chunk(_)) = body.recv().await {} });
}

/// A streamed response: the head from the stream's prelude (read before
/// anything is sent, so a stream that fails that early is still a proper
/// error response), then each chunk as it arrives. A failure after the
/// head ends the call with a non-OK status and the outcome in the
/// trailers; the filter resets the client's stream.
pub(crate) async fn streamed_reply(
    rules: &InvokeRequest,
    stream: ReplyStream,
) -> Response<HttpBodyStream> {
    let ReplyStream {
        content_type,
        lambda_request_id,
        mut body,
    } = stream;
    let mut after_prelude = None;
    let mut prelude = None;
    let mut ended = false;
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case(HTTP_INTEGRATION_CONTENT_TYPE) {
        let mut start: Vec<u8> = Vec::new();
        loop {
            let reason = match body.recv().await {
                Some(BodyItem::Chunk(chunk)) => {
                    start.extend_from_slice(&chunk);
                    if let Some((end, body_start)) = find_prelude_end(&start) {
                        after_prelude = start.get(body_start..).map(Bytes::copy_from_slice);
                        start.truncate(end);
                        prelude = Some(start);
                        break;
                    }
                    if start.len() <= MAX_PRELUDE_BYTES {
                        continue;
                    }
                    format!("the stream's prelude is longer than {MAX_PRELUDE_BYTES} bytes")
                }
                Some(BodyItem::End) if start.is_empty() => {
                    ended = true;
                    break;
                }
                Some(BodyItem::End) => {
                    "the stream ended inside its prelude (no 8 NUL bytes after the JSON)".to_owned()
                }
                Some(BodyItem::Fail(failure)) => return buffered_reply(rules, Err(failure)),
                None => return buffered_reply(rules, Err(writer_gone("the invocation"))),
            };
            drain(body);
            return whole_reply(rules, prelude_refused(rules, &reason));
        }
    }
    let head = match stream_head(rules, prelude.as_deref(), &lambda_request_id) {
        Ok(head) => head,
        Err(refused) => {
            drain(body);
            return whole_reply(rules, refused);
        }
    };
    if is_head(rules) {
        drain(body);
        return with_head(&head, None, Box::pin(tokio_stream::empty()));
    }
    let chunks = ChunkStream {
        first: after_prelude.filter(|b| !b.is_empty()),
        body,
        done: ended,
        request_id: rules.request_id.clone(),
    };
    with_head(&head, None, Box::pin(chunks))
}

/// The body of a streamed reply as gRPC messages. It ends with OK only at
/// the stream's explicit end; a failure, or a writer that went away
/// without ending it, becomes a non-OK status with the outcome in the
/// trailers, so a cut stream never looks whole.
struct ChunkStream {
    first: Option<Bytes>,
    body: mpsc::Receiver<BodyItem>,
    done: bool,
    request_id: String,
}

impl ChunkStream {
    fn cut(&self, failure: &Failure) -> Status {
        tracing::warn!(
            request_id = %self.request_id,
            outcome = failure.outcome().label(),
            "response stream cut: {}",
            failure.message
        );
        let mut trailers = MetadataMap::new();
        trailers.insert(
            OUTCOME,
            MetadataValue::from_static(failure.outcome().label()),
        );
        failure_status(failure, trailers)
    }
}

impl tokio_stream::Stream for ChunkStream {
    type Item = Result<HttpBodyChunk, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(data) = self.first.take() {
            return Poll::Ready(Some(Ok(HttpBodyChunk { data })));
        }
        match self.body.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(BodyItem::Chunk(data))) => {
                Poll::Ready(Some(Ok(HttpBodyChunk { data })))
            }
            Poll::Ready(Some(BodyItem::End)) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(BodyItem::Fail(failure))) => {
                self.done = true;
                Poll::Ready(Some(Err(self.cut(&failure))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(Some(Err(self.cut(&writer_gone("the invocation")))))
            }
        }
    }
}
