//! Streamed responses (`response_mode: stream`): the head of the client's
//! response, read from the stream's prelude as Lambda's streaming HTTP
//! responses carry it: the HTTP-integration JSON metadata (`statusCode`,
//! `headers`, `cookies`), then 8 NUL bytes, then the body. The invoker
//! applies this while the body flows on untouched.

use lambdagate_proto::InvokeRequest;
use serde_json::Value;

use super::error::GatewayError;
use super::proxy::{add_route_headers, cookie_array, header_object, kind_of, status_of};
use super::response::HttpResponse;
use crate::contract::Outcome;
use crate::headers::{is_forwardable, is_header_value, set_lambda_header};

/// The content type of a stream that starts with a prelude (what
/// `lambda_runtime` and the Node.js runtime's `HttpResponseStream` send).
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// The body's content type when the stream has no prelude, or the prelude
/// names none.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A prelude longer than this is not one: the stream is refused rather
/// than buffered without bound while looking for its end.
pub const MAX_PRELUDE_BYTES: usize = 64 * 1024;

/// Ends the prelude.
const DELIMITER: [u8; 8] = [0; 8];

/// Where the prelude ends in the stream's first bytes: `(prelude length,
/// offset of the body)`, or `None` while the delimiter has not arrived.
pub fn find_prelude_end(bytes: &[u8]) -> Option<(usize, usize)> {
    bytes
        .windows(DELIMITER.len())
        .position(|w| w == DELIMITER)
        .map(|at| (at, at + DELIMITER.len()))
}

/// The client's response head (the body is empty) for a stream of the
/// call `request`: from the `prelude` when the stream has one, else 200
/// with [`DEFAULT_CONTENT_TYPE`]; with the route's own headers (lifecycle,
/// trace) and Lambda's request id. `Err` is the error response to send
/// instead, when the prelude cannot be used.
pub fn stream_head(
    request: &InvokeRequest,
    prelude: Option<&[u8]>,
    lambda_request_id: &str,
) -> Result<HttpResponse, HttpResponse> {
    let spec = request.http_reply.clone().unwrap_or_default();
    let (status, mut headers) = match prelude {
        None => (200, Vec::new()),
        Some(prelude) => parse_prelude(prelude).map_err(|reason| {
            prelude_refused(request, &format!("the stream's prelude {reason}"))
        })?,
    };
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".to_owned(), DEFAULT_CONTENT_TYPE.to_owned()));
    }
    set_lambda_header(
        &mut headers,
        "x-amzn-requestid",
        lambda_request_id.to_owned(),
    );
    add_route_headers(&mut headers, spec.headers);
    Ok(HttpResponse {
        status,
        headers,
        body: Vec::new(),
        outcome: Outcome::Ok,
        detail: None,
    })
}

/// The client's response when a stream's prelude cannot be used (`reason`
/// goes to the log): API Gateway's 502 for a malformed proxy response.
pub fn prelude_refused(request: &InvokeRequest, reason: &str) -> HttpResponse {
    let spec = request.http_reply.clone().unwrap_or_default();
    let mut response = GatewayError::MalformedProxyResponse {
        arn: request.function_arn.clone(),
        reason: reason.to_owned(),
    }
    .to_response(&request.request_id, spec.expose_errors);
    add_route_headers(&mut response.headers, spec.headers);
    response
}

/// `statusCode` (default 200), `headers` and `cookies` of a prelude, with
/// the same rules as a buffered proxy response's.
fn parse_prelude(prelude: &[u8]) -> Result<(u16, Vec<(String, String)>), String> {
    let value: Value = serde_json::from_slice(prelude).map_err(|e| format!("is not JSON ({e})"))?;
    let Value::Object(map) = value else {
        return Err(format!("must be a JSON object, got {}", kind_of(&value)));
    };
    let status = match map.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(code) => status_of(code)?,
    };
    let mut headers = match map.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => header_object(value)?,
    };
    if let Some(cookies) = map.get("cookies").filter(|c| !c.is_null()) {
        headers.extend(cookie_array(cookies)?);
    }
    headers.retain(|(name, value)| is_forwardable(name) && is_header_value(value));
    Ok((status, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambdagate_proto::{HttpHeader, HttpReply};

    fn request() -> InvokeRequest {
        InvokeRequest {
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            request_id: "req-1".into(),
            http_reply: Some(HttpReply {
                payload_format: 2,
                stream: true,
                headers: vec![HttpHeader {
                    name: "deprecation".into(),
                    value: "true".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_prelude_ends_at_the_first_eight_nul_bytes() {
        assert_eq!(find_prelude_end(b"{\"statusCode\":201}"), None);
        assert_eq!(
            find_prelude_end(b"{}\0\0\0\0\0\0\0\0body\0\0\0\0\0\0\0\0"),
            Some((2, 10))
        );
        assert_eq!(find_prelude_end(b"{}\0\0\0\0\0\0\0"), None);
    }

    #[test]
    fn the_head_comes_from_the_prelude() {
        let prelude = br#"{"statusCode":201,"headers":{"Content-Type":"text/event-stream","X-Id":"7","Content-Length":"9","Deprecation":"no"},"cookies":["a=1","b=2"]}"#;
        let head = stream_head(&request(), Some(prelude), "lambda-1").unwrap();
        assert_eq!(head.status, 201);
        assert_eq!(head.header("content-type"), Some("text/event-stream"));
        assert_eq!(head.header("x-id"), Some("7"));
        // The length is unknown while streaming; the route's headers win.
        assert_eq!(head.header("content-length"), None);
        assert_eq!(head.header("deprecation"), Some("true"));
        assert_eq!(head.header("x-amzn-requestid"), Some("lambda-1"));
        let cookies: Vec<_> = head
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert!(head.body.is_empty());
    }

    #[test]
    fn without_a_prelude_the_head_is_200_octet_stream() {
        let head = stream_head(&request(), None, "").unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some(DEFAULT_CONTENT_TYPE));
        assert_eq!(head.header("x-amzn-requestid"), None);
        let head = stream_head(&request(), Some(b"{}"), "").unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), Some(DEFAULT_CONTENT_TYPE));
    }

    #[test]
    fn a_prelude_that_cannot_be_used_is_a_502_with_the_request_id() {
        for (prelude, reason) in [
            (&b"not json"[..], "is not JSON"),
            (b"[1]", "must be a JSON object"),
            (br#"{"statusCode":99}"#, "statusCode must be an integer"),
            (br#"{"headers":{"a":1}}"#, "headers.a must be a string"),
            (br#"{"cookies":"a=1"}"#, "cookies must be an array"),
        ] {
            let error = stream_head(&request(), Some(prelude), "").unwrap_err();
            assert_eq!(error.status, 502, "{reason}");
            assert!(
                error.detail.as_deref().unwrap_or("").contains(reason),
                "{reason}: {:?}",
                error.detail
            );
            let body: Value = serde_json::from_slice(&error.body).unwrap();
            assert_eq!(body["requestId"], "req-1");
            assert_eq!(error.header("deprecation"), Some("true"));
        }
    }
}
