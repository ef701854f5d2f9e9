//! The reader of Lambda's `InvokeWithResponseStream` body: the
//! `application/vnd.amazon.eventstream` framing, decoded with the AWS SDK's
//! own `aws-smithy-eventstream`.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::Message;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

/// What one event of an `InvokeWithResponseStream` body says.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// `PayloadChunk`: the next bytes of the function's response.
    Chunk(Bytes),
    /// `InvokeComplete`: the end; `error_code` is empty when the function
    /// succeeded.
    Complete {
        error_code: String,
        error_details: String,
    },
}

/// Reads the events of an `InvokeWithResponseStream` response body.
pub struct EventStreamReader<B> {
    body: B,
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
}

impl<B> EventStreamReader<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    pub fn new(body: B) -> Self {
        EventStreamReader {
            body,
            buffer: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
        }
    }

    /// The next event; `None` at the end of the body. `Err` says why the
    /// body is not a readable event stream.
    pub async fn next_event(&mut self) -> Result<Option<StreamEvent>, String> {
        loop {
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => {
                    if let Some(event) = interpret(&message)? {
                        return Ok(Some(event));
                    }
                    continue;
                }
                Ok(DecodedFrame::Incomplete) => {}
                Err(e) => return Err(format!("a malformed event-stream frame: {e}")),
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(format!("the stream broke: {e}")),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Err("the stream ended inside an event".to_owned()),
            }
        }
    }
}

fn header<'a>(message: &'a Message, name: &str) -> &'a str {
    message
        .headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| h.value().as_string().ok())
        .map_or("", |s| s.as_str())
}

/// An event the gateway acts on; `None` for one it skips (an event type
/// added to the API later).
fn interpret(message: &Message) -> Result<Option<StreamEvent>, String> {
    match header(message, ":message-type") {
        "event" => match header(message, ":event-type") {
            "PayloadChunk" => Ok(Some(StreamEvent::Chunk(message.payload().clone()))),
            "InvokeComplete" => {
                #[derive(serde::Deserialize, Default)]
                #[serde(rename_all = "PascalCase", default)]
                struct Complete {
                    error_code: Option<String>,
                    error_details: Option<String>,
                }
                let complete: Complete = if message.payload().is_empty() {
                    Complete::default()
                } else {
                    serde_json::from_slice(message.payload())
                        .map_err(|e| format!("an InvokeComplete event that is not JSON: {e}"))?
                };
                Ok(Some(StreamEvent::Complete {
                    error_code: complete.error_code.unwrap_or_default(),
                    error_details: complete.error_details.unwrap_or_default(),
                }))
            }
            _ => Ok(None),
        },
        "exception" => Err(format!(
            "Lambda ended the stream with {}: {}",
            header(message, ":exception-type"),
            String::from_utf8_lossy(message.payload())
        )),
        other => Err(format!("an event-stream message of type `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue};
    use http_body_util::{Full, StreamBody};

    fn event(event_type: &str, payload: &[u8]) -> Vec<u8> {
        let message = Message::new(Bytes::copy_from_slice(payload))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(event_type.to_owned().into()),
            ));
        let mut wire = Vec::new();
        write_message_to(&message, &mut wire).unwrap();
        wire
    }

    async fn events(wire: Vec<u8>, cut: usize) -> Vec<Result<Option<StreamEvent>, String>> {
        let (a, b) = wire.split_at(cut.min(wire.len()));
        let frames: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> = vec![
            Ok(http_body::Frame::data(Bytes::copy_from_slice(a))),
            Ok(http_body::Frame::data(Bytes::copy_from_slice(b))),
        ];
        let mut reader = EventStreamReader::new(StreamBody::new(tokio_stream::iter(frames)));
        let mut out = Vec::new();
        loop {
            let next = reader.next_event().await;
            let end = !matches!(next, Ok(Some(_)));
            out.push(next);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn chunks_and_the_end_are_read_across_any_cut() {
        let mut wire = event("PayloadChunk", b"hello ");
        wire.extend(event("PayloadChunk", b"world"));
        wire.extend(event("InvokeComplete", b"{}"));
        for cut in 0..=wire.len() {
            assert_eq!(
                events(wire.clone(), cut).await,
                vec![
                    Ok(Some(StreamEvent::Chunk(Bytes::from_static(b"hello ")))),
                    Ok(Some(StreamEvent::Chunk(Bytes::from_static(b"world")))),
                    Ok(Some(StreamEvent::Complete {
                        error_code: String::new(),
                        error_details: String::new()
                    })),
                    Ok(None),
                ],
                "cut at {cut}"
            );
        }
    }

    #[tokio::test]
    async fn an_error_code_a_cut_stream_and_garbage_are_told_apart() {
        let wire = event(
            "InvokeComplete",
            br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom","LogResult":""}"#,
        );
        assert_eq!(
            events(wire.clone(), 0).await.remove(0),
            Ok(Some(StreamEvent::Complete {
                error_code: "Unhandled".into(),
                error_details: "boom".into()
            }))
        );
        let mut cut = wire.clone();
        cut.truncate(wire.len() - 3);
        let read = events(cut, 0).await;
        assert_eq!(
            read,
            vec![Err("the stream ended inside an event".to_owned())]
        );
        // A payload byte changed on the way: the message CRC fails.
        let mut damaged = event("PayloadChunk", b"abc");
        let at = damaged.len() - 5;
        damaged[at] ^= 0xff;
        let garbage = events(damaged, 5).await;
        assert!(
            matches!(&garbage[..], [Err(e)] if e.starts_with("a malformed event-stream frame")),
            "{garbage:?}"
        );
        let mut reader = EventStreamReader::new(Full::new(Bytes::new()));
        assert_eq!(reader.next_event().await, Ok(None));
    }
}
