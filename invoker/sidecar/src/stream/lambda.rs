//! Lambda's `InvokeWithResponseStream`, read as it arrives: the body
//! passes on event by event, a function error before the first byte is a
//! buffered call's.

use lambdagate_core::LambdaArn;
use lambdagate_proto::ErrorKind;
use std::time::Duration;
use tokio::sync::mpsc;

use super::eventstream::{EventStreamReader, StreamEvent};
use super::{Answer, BodyItem, CHANNEL_CHUNKS, ReplyStream, function_error_reply};
use crate::backend::Payload;
use crate::error::{Failure, timeout_failure};
use crate::lambda_api::{LambdaInvokeClient, Operation};

impl LambdaInvokeClient {
    /// Calls InvokeWithResponseStream on `arn` and returns once the first
    /// event is in, within `timeout`: a function that failed before its
    /// first byte is a function error like a buffered call's; otherwise
    /// the body streams on, read by a task of its own while the receiver
    /// wants it (the caller enforces the route timeout on the rest).
    pub async fn invoke_stream(
        &self,
        arn: &LambdaArn,
        payload: Payload,
        trace_id: &str,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let what = self.what(arn);
        let start = async {
            let response = self
                .send(arn, Operation::InvokeWithResponseStream, payload, trace_id)
                .await?;
            let header = |name: &str| response.headers().get(name).unwrap_or_default().to_owned();
            let content_type = header("content-type");
            let lambda_request_id = header("x-amzn-requestid");
            let mut reader = EventStreamReader::new(response.into_body());
            let first = reader
                .next_event()
                .await
                .map_err(|m| stream_broken(&what, &m))?;
            Ok::<_, Failure>((content_type, lambda_request_id, reader, first))
        };
        let (content_type, lambda_request_id, mut reader, first) =
            match tokio::time::timeout(timeout, start).await {
                Ok(started) => started?,
                Err(_) => return Err(timeout_failure(&what, Some(timeout))),
            };
        let first = match first {
            Some(StreamEvent::Complete {
                error_code,
                error_details,
            }) if !error_code.is_empty() => {
                return Ok(Answer::Buffered(function_error_reply(
                    &error_code,
                    &error_details,
                    &lambda_request_id,
                )));
            }
            None => {
                return Err(stream_broken(
                    &what,
                    "ended without an InvokeComplete event",
                ));
            }
            Some(event) => body_item(Ok(Some(event)), &what),
        };
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        tokio::spawn(async move {
            let mut item = first;
            loop {
                let last = !matches!(item, BodyItem::Chunk(_));
                if tx.send(item).await.is_err() || last {
                    return;
                }
                let event = tokio::select! {
                    event = reader.next_event() => event,
                    // Nobody reads any more (the client left, the route
                    // timed out): dropping the body closes the call.
                    () = tx.closed() => return,
                };
                item = body_item(event, &what);
            }
        });
        Ok(Answer::Stream(ReplyStream {
            content_type,
            lambda_request_id,
            body: rx,
        }))
    }
}

/// What an event (or the failure to read one) of a response stream means
/// for the body passed on.
fn body_item(event: Result<Option<StreamEvent>, String>, what: &str) -> BodyItem {
    match event {
        Ok(Some(StreamEvent::Chunk(chunk))) => BodyItem::Chunk(chunk),
        Ok(Some(StreamEvent::Complete { error_code, .. })) if error_code.is_empty() => {
            BodyItem::End
        }
        Ok(Some(StreamEvent::Complete {
            error_code,
            error_details,
        })) => BodyItem::Fail(Failure::new(
            ErrorKind::FunctionError,
            format!("{what}: the function failed while streaming: {error_code}: {error_details}"),
        )),
        Ok(None) => BodyItem::Fail(stream_broken(what, "ended without an InvokeComplete event")),
        Err(m) => BodyItem::Fail(stream_broken(what, &m)),
    }
}

fn stream_broken(what: &str, how: &str) -> Failure {
    Failure::new(
        ErrorKind::LambdaUnavailable,
        format!("{what}: the response stream {how}"),
    )
}
