//! What the client gets: a function's reply read as API Gateway reads it
//! ([`proxy`]), a streamed response's head ([`stream`]), and the
//! gateway's own JSON errors ([`error`]).

pub mod error;
pub mod proxy;
pub mod response;
pub mod stream;

pub use error::{ErrorAnswer, GatewayError, GrpcStatus};
pub use proxy::{ReplyContext, invoke_reply_to_http, proxy_response};
pub use response::HttpResponse;

#[cfg(test)]
mod tests;
