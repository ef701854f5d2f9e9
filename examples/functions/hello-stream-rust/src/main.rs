//! A Lambda function in Rust that streams its response, written with
//! `lambda_http`'s response streaming: the status and headers travel in
//! the stream's prelude, then each line leaves as soon as it is written.
//!
//! Query parameters (all optional):
//! - `lines` (default 10) lines, one every `interval_ms` (default 100);
//! - `bytes`: instead of lines, this many bytes in 64 KB chunks as fast as
//!   the reader takes them (progress goes to the log once per MB);
//! - `status` (default 200): the response's status;
//! - `fail_after`: the process exits after this many lines, as a crashing
//!   function would, to show what a client sees when a stream breaks.

use std::time::Duration;

use bytes::Bytes;
use lambda_http::lambda_runtime::streaming::{Body, channel};
use lambda_http::{Error, Request, RequestExt, Response, run_with_streaming_response, service_fn};

const CHUNK_BYTES: usize = 64 * 1024;
const MB: u64 = 1024 * 1024;

async fn handler(request: Request) -> Result<Response<Body>, Error> {
    let query = request.query_string_parameters();
    let number = |name: &str| query.first(name).and_then(|v| v.parse::<u64>().ok());
    let lines = number("lines").unwrap_or(10).min(100_000);
    let interval = Duration::from_millis(number("interval_ms").unwrap_or(100).min(60_000));
    let bytes = number("bytes").unwrap_or(0);
    let fail_after = number("fail_after");
    let status = number("status")
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);

    let (mut sender, body) = channel();
    tokio::spawn(async move {
        if bytes > 0 {
            let chunk = Bytes::from(vec![b'x'; CHUNK_BYTES]);
            let mut sent: u64 = 0;
            while sent < bytes {
                let n =
                    usize::try_from((bytes - sent).min(CHUNK_BYTES as u64)).unwrap_or(CHUNK_BYTES);
                if sender.send_data(chunk.slice(..n)).await.is_err() {
                    eprintln!("the reader went away after {sent} bytes");
                    return;
                }
                let before = sent;
                sent += n as u64;
                if sent / MB > before / MB {
                    eprintln!("streamed {} MB", sent / MB);
                }
            }
            eprintln!("stream complete: {sent} bytes");
            return;
        }
        for line in 1..=lines {
            if fail_after.is_some_and(|n| line > n) {
                eprintln!("exiting mid-stream after {} lines, as asked", line - 1);
                std::process::exit(1);
            }
            let text = format!("line {line} of {lines}\n");
            if sender.send_data(Bytes::from(text)).await.is_err() {
                return;
            }
            if line < lines {
                tokio::time::sleep(interval).await;
            }
        }
    });

    Ok(Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("x-streamed-by", "hello-stream-rust")
        .body(body)?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_with_streaming_response(service_fn(handler)).await
}
