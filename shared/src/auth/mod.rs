//! Lambda authorizers, as API Gateway runs them: who may call a resource.
//!
//! ```text
//! on_http_request_headers ─► plan.authorize(&mut cache)
//!     AuthStep::Proceed      → go on (no authorizer, or a cached answer allows)
//!     AuthStep::Respond(r)   → 401 (identity missing, token fails the
//!                              expression) or 403 (a cached answer denies)
//!     AuthStep::Call(invoke) → dispatch it to the invoker like any call;
//!                              the body keeps arriving meanwhile
//! on_grpc_call_response   ─► plan.on_authorizer_reply(result, &mut cache)
//!     Ok(())                 → go on: the event will carry the answer
//!     Err(r)                 → 401 / 403 / 500 (AUTHORIZER_FAILURE,
//!                              AUTHORIZER_CONFIGURATION_ERROR)
//! ```
//!
//! - [`authorizer`]: the configuration, checked and compiled.
//! - [`identity`]: identity sources and their values in a request.
//! - [`event`]: the authorizer's event, the method ARN, and the
//!   integration event's `requestContext.authorizer`.
//! - [`policy`]: the answer, and the policy's verdict for a method ARN.
//! - [`cache`]: answers kept per identity, bounded.

pub mod authorizer;
pub mod cache;
pub mod event;
pub mod identity;
pub mod policy;

pub use authorizer::{Authorizer, AuthorizerError};
pub use cache::AuthCache;
pub use policy::{Grant, Verdict};
