//! The head of a streamed response (`response_mode: stream`): the first
//! bytes of a function's stream, searched for the prelude's end and read
//! as its HTTP-integration JSON. Invariants: nothing panics; the head is a
//! final status (200..=599) with valid lower-case header names and valid
//! values, never a `content-length` (the length is unknown while
//! streaming), always a content type, and the route's own header wins; a
//! prelude that cannot be used is the gateway's 502 JSON error with the
//! request id.
#![no_main]

use lambdagate_core::reply::stream::{find_prelude_end, stream_head};
use lambdagate_proto::{HttpHeader, HttpReply, InvokeRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = InvokeRequest {
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
        request_id: "req-1".into(),
        http_reply: Some(HttpReply {
            payload_format: 2,
            stream: true,
            headers: vec![HttpHeader {
                name: "deprecation".into(),
                value: "true".into(),
            }],
            ..HttpReply::default()
        }),
        ..InvokeRequest::default()
    };
    let prelude = match find_prelude_end(data) {
        Some((end, body)) => {
            assert_eq!(body, end + 8);
            assert!(data[end..body].iter().all(|b| *b == 0));
            &data[..end]
        }
        None => data,
    };
    for head in [
        stream_head(&request, Some(prelude), "lambda-1"),
        stream_head(&request, None, ""),
    ] {
        match head {
            Ok(head) => {
                assert!((200..=599).contains(&head.status), "status {}", head.status);
                assert!(head.body.is_empty());
                for (name, value) in &head.headers {
                    assert!(
                        http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
                        "{name:?}"
                    );
                    assert_eq!(name, &name.to_ascii_lowercase());
                    assert!(
                        http::HeaderValue::from_str(value).is_ok(),
                        "{name}: {value:?}"
                    );
                    assert_ne!(name, "content-length");
                }
                assert!(head.header("content-type").is_some());
                assert_eq!(head.header("deprecation"), Some("true"));
            }
            Err(error) => {
                assert_eq!(error.status, 502);
                let body: serde_json::Value = serde_json::from_slice(&error.body).unwrap();
                assert_eq!(body["requestId"], "req-1");
            }
        }
    }
});
