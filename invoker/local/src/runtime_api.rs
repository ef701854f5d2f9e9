//! The Lambda Runtime API each function process talks to (one listener
//! per process, so the invoker always knows which process asks): `next`
//! hands out the invocation, `response` (buffered or streamed) and `error`
//! end it, `init/error` reports a handler that cannot start.

use std::sync::Weak;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use lambdagate_proto::ErrorKind;
use lambdagate_sidecar::error::Failure;
use lambdagate_sidecar::stream::{BodyItem, CHANNEL_CHUNKS};
use tokio::sync::{mpsc, oneshot};

use crate::process::{Outcome, Process, now_ms};

/// The Runtime API server of one process.
pub(crate) fn router(process: Weak<Process>, function_arn: String) -> axum::Router {
    axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .layer(axum::extract::DefaultBodyLimit::max(
            lambdagate_proto::MAX_GRPC_MESSAGE_BYTES,
        ))
        .with_state(RuntimeState {
            process,
            function_arn,
        })
}

#[derive(Clone)]
struct RuntimeState {
    process: std::sync::Weak<Process>,
    function_arn: String,
}

fn gone() -> Response {
    (StatusCode::GONE, "the invoker stopped this function").into_response()
}

/// `GET /runtime/invocation/next`: blocks until the invoker assigns work.
async fn next(State(state): State<RuntimeState>) -> Response {
    loop {
        let Some(process) = state.process.upgrade() else {
            return gone();
        };
        let work = process.work.clone();
        let notified = work.notified();
        let invocation = {
            let mut slot = process.lock();
            match slot.queued.take() {
                Some(inv) => {
                    slot.last_request = inv.request_id.clone();
                    slot.in_flight = Some((inv.request_id.clone(), inv.reply));
                    Some((inv.request_id, inv.trace_id, inv.payload, inv.deadline_ms))
                }
                None => None,
            }
        };
        if let Some((request_id, trace_id, payload, deadline_ms)) = invocation {
            let mut response = Response::new(axum::body::Body::from(payload));
            let headers = response.headers_mut();
            let mut set = |name: &'static str, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    headers.insert(name, v);
                }
            };
            // awslambdaric crashes without a Content-Type (see NOTES).
            set("content-type", "application/json");
            set("lambda-runtime-aws-request-id", &request_id);
            set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
            set("lambda-runtime-invoked-function-arn", &state.function_arn);
            // The gateway's trace, as Lambda passes the caller's
            // X-Amzn-Trace-Id (the runtime client sets _X_AMZN_TRACE_ID).
            let trace_id = if trace_id.is_empty() {
                format!(
                    "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                    now_ms() / 1000,
                    process.id,
                    process.id
                )
            } else {
                trace_id
            };
            set("lambda-runtime-trace-id", &trace_id);
            return response;
        }
        drop(process);
        // Re-check now and then that the process is still wanted.
        let _ = tokio::time::timeout(Duration::from_secs(5), notified).await;
    }
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        [("content-type", "application/json")],
        "{\"status\":\"OK\"}",
    )
        .into_response()
}

/// Takes the invocation `id` in flight: where its outcome goes.
fn take_in_flight(
    state: &RuntimeState,
    id: &str,
) -> Result<oneshot::Sender<Outcome>, Box<Response>> {
    let Some(process) = state.process.upgrade() else {
        return Err(Box::new(gone()));
    };
    let mut slot = process.lock();
    match slot.in_flight.take() {
        Some((current, reply)) if current == id => Ok(reply),
        other => {
            slot.in_flight = other;
            Err(Box::new((
                StatusCode::BAD_REQUEST,
                [("content-type", "application/json")],
                format!("{{\"errorType\":\"InvalidRequestID\",\"errorMessage\":\"unknown request id {id}\"}}"),
            )
                .into_response()))
        }
    }
}

fn finish(state: &RuntimeState, id: &str, outcome: Outcome) -> Response {
    match take_in_flight(state, id) {
        Ok(reply) => {
            let _ = reply.send(outcome);
            accepted()
        }
        Err(refused) => *refused,
    }
}

/// The Runtime API's response header that selects streaming.
const RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";

async fn response(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let streaming = headers
        .get(RESPONSE_MODE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streaming {
        return streamed_response(&state, &id, &headers, body).await;
    }
    // A buffered response has Lambda's 6 MB limit (and a little room).
    let limit = lambdagate_proto::MAX_GRPC_MESSAGE_BYTES;
    match axum::body::to_bytes(body, limit).await {
        Ok(whole) => finish(&state, &id, Outcome::Response(whole.to_vec())),
        Err(e) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            [("content-type", "application/json")],
            serde_json::json!({
                "errorType": "RequestEntityTooLarge",
                "errorMessage": format!("the response could not be read whole (limit {limit} bytes): {e}"),
            })
            .to_string(),
        )
            .into_response(),
    }
}

/// A streamed response (chunked, errors in the
/// `Lambda-Runtime-Function-Error-Type`/`-Body` trailers) is passed on as
/// it arrives: each chunk waits for room in the caller's channel, so a
/// slow reader slows the function's writes (TCP back-pressure) instead of
/// filling memory.
async fn streamed_response(
    state: &RuntimeState,
    id: &str,
    headers: &HeaderMap,
    mut body: Body,
) -> Response {
    let reply = match take_in_flight(state, id) {
        Ok(reply) => reply,
        Err(refused) => return *refused,
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    if reply
        .send(Outcome::Stream {
            content_type,
            body: rx,
        })
        .is_err()
    {
        return accepted();
    }
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            // The caller stopped reading; the process is being stopped.
            () = tx.closed() => break,
        };
        let item = match frame {
            None => BodyItem::End,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => BodyItem::Chunk(data),
                Err(frame) => match frame.into_trailers().ok().as_ref().and_then(stream_error) {
                    Some(failure) => BodyItem::Fail(failure),
                    None => continue,
                },
            },
            Some(Err(e)) => {
                // The runtime broke off its request: its process is not
                // given another invocation.
                if let Some(process) = state.process.upgrade() {
                    process.lock().dead = true;
                    process.stop();
                }
                BodyItem::Fail(Failure::new(
                    ErrorKind::FunctionError,
                    format!("the function's response stream broke off (its process ended?): {e}"),
                ))
            }
        };
        let last = !matches!(item, BodyItem::Chunk(_));
        if tx.send(item).await.is_err() || last {
            break;
        }
    }
    accepted()
}

/// A function error reported in a streamed response's trailers.
fn stream_error(trailers: &HeaderMap) -> Option<Failure> {
    let error_type = trailers
        .get("lambda-runtime-function-error-type")?
        .to_str()
        .unwrap_or("Unhandled");
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|v| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Some(Failure::new(
        ErrorKind::FunctionError,
        format!("the function failed while streaming: {error_type}: {body}"),
    ))
}

async fn invocation_error(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = error_body(&headers, &body);
    finish(&state, &id, Outcome::Error(body))
}

async fn init_error(
    State(state): State<RuntimeState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(process) = state.process.upgrade() else {
        return gone();
    };
    let body = error_body(&headers, &body);
    let mut slot = process.lock();
    slot.init_error = Some(body.clone());
    if let Some(inv) = slot.queued.take() {
        let _ = inv.reply.send(Outcome::InitError(body));
    }
    accepted()
}

/// The error JSON as the runtime sent it; a runtime that sent only the
/// `Lambda-Runtime-Function-Error-Type` header gets a minimal object.
fn error_body(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        return body.to_vec();
    }
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Unhandled");
    serde_json::json!({
        "errorType": error_type,
        "errorMessage": String::from_utf8_lossy(body),
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_responses_error_trailers_become_a_function_error() {
        let mut trailers = HeaderMap::new();
        assert_eq!(stream_error(&trailers), None);
        trailers.insert(
            "lambda-runtime-function-error-type",
            HeaderValue::from_static("Runtime.StreamError"),
        );
        // base64 of "disk full"
        trailers.insert(
            "lambda-runtime-function-error-body",
            HeaderValue::from_static("ZGlzayBmdWxs"),
        );
        let failure = stream_error(&trailers).unwrap();
        assert_eq!(failure.kind, ErrorKind::FunctionError);
        assert_eq!(
            failure.message,
            "the function failed while streaming: Runtime.StreamError: disk full"
        );
    }
}
