//! A stream under the route timeout and Lambda's size limit: passed on by
//! a task that records the invocation when the stream ends.

use std::time::Instant;

use lambdagate_core::Outcome;
use lambdagate_proto::ErrorKind;
use tokio::sync::mpsc;

use super::{BodyItem, CHANNEL_CHUNKS, MAX_STREAM_BYTES, ReplyStream, writer_gone};
use crate::error::Failure;
use crate::record::CallRecord;

impl CallRecord {
    /// Passes the stream on within the route `deadline` and Lambda's size
    /// limit, and records the invocation when it ends. A reader that went
    /// away is recorded as `client_gone`.
    pub(crate) fn metered(self, mut reply: ReplyStream, deadline: Instant) -> ReplyStream {
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let mut from = std::mem::replace(&mut reply.body, rx);
        let timed_out = move |started: Instant| {
            Failure::new(
                ErrorKind::Timeout,
                format!(
                    "the response stream did not end within the route timeout ({}s)",
                    deadline.saturating_duration_since(started).as_secs_f64()
                ),
            )
        };
        tokio::spawn(async move {
            let mut sent: u64 = 0;
            let end: Result<(), Option<Failure>> = loop {
                let item = tokio::select! {
                    item = from.recv() => item,
                    () = tx.closed() => break Err(None),
                    () = tokio::time::sleep_until(deadline.into()) => {
                        Some(BodyItem::Fail(timed_out(self.started)))
                    }
                };
                let item = match item {
                    Some(BodyItem::Chunk(chunk)) => {
                        sent += chunk.len() as u64;
                        if sent > MAX_STREAM_BYTES {
                            BodyItem::Fail(Failure::new(
                                ErrorKind::PayloadTooLarge,
                                format!(
                                    "the response stream exceeds Lambda's {MAX_STREAM_BYTES} bytes"
                                ),
                            ))
                        } else {
                            BodyItem::Chunk(chunk)
                        }
                    }
                    Some(other) => other,
                    None => BodyItem::Fail(writer_gone("the invocation")),
                };
                let outcome = match &item {
                    BodyItem::Chunk(_) => None,
                    BodyItem::End => Some(Ok(())),
                    BodyItem::Fail(failure) => Some(Err(Some(failure.clone()))),
                };
                // The deadline holds while a reader that stopped keeps the
                // channel full: the failure then cannot be passed on, and
                // the channel closing without an end says it.
                let delivered = tokio::select! {
                    // A send that can complete does, even past the deadline
                    // (the failure that reports it is this item).
                    biased;
                    sent = tx.send(item) => sent.is_ok(),
                    () = tokio::time::sleep_until(deadline.into()) => {
                        break Err(Some(timed_out(self.started)));
                    }
                };
                match outcome {
                    Some(end) => break end,
                    None if !delivered => break Err(None),
                    None => {}
                }
            };
            match end {
                Ok(()) => self.finished(Outcome::Ok, None, Some(200)),
                Err(Some(failure)) => self.finished(failure.outcome(), Some(&failure), None),
                Err(None) => self.finished(Outcome::ClientGone, None, None),
            }
        });
        reply
    }
}
