//! The filter's configuration: JSON in the Envoy wasm plugin config.
//!
//! ```json
//! {
//!   "invoker_cluster": "lambdagate_invoker",
//!   "apis": [{
//!     "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
//!     "payload_format": "v1",
//!     "resources": [{
//!       "verb": "POST", "uri_template": "/user/{id}",
//!       "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live",
//!       "timeout_seconds": 50, "invocation_type": "RequestResponse",
//!       "function_error_status": 502
//!     }]
//!   }]
//! }
//! ```
//!
//! [`parse`] reads, validates and compiles it once (at `on_configure`);
//! every error names the place (`apis[0] (users).resources[2] (POST /user/{id}).arn`)
//! and what is allowed there.

pub mod arn;
mod compile;
mod compiled;
pub mod route;
mod schema;
pub mod timeout;

pub use compile::{ConfigError, parse};
pub use compiled::{ApiFacts, CompiledConfig, MediaRange, RouteTarget};
pub use schema::{
    ApiConfig, ApiKeySource, AuthorizerConfig, AuthorizerType, Config,
    DEFAULT_AUTHORIZER_TIMEOUT_SECONDS, DEFAULT_AUTHORIZER_TTL_SECONDS, DEFAULT_CALLOUT_CLUSTER,
    DEFAULT_FUNCTION_ERROR_STATUS, DEFAULT_INVOKER_CLUSTER, DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_UPLOAD_BUDGET_BYTES, DataPath, InvocationType, Lifecycle,
    MAX_AUTHORIZER_TIMEOUT_SECONDS, MAX_AUTHORIZER_TTL_SECONDS, PayloadFormat, ResourceConfig,
    ResponseMode,
};
