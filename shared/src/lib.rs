//! The gateway's rules, shared by both sides of the wire: the wasm filter
//! in Envoy and the invoker sidecar (and the `lambdagate` CLI, so that
//! `lambdagate check` refuses exactly what the gateway would refuse, with
//! the same words).
//!
//! Nothing here does I/O or depends on proxy-wasm; it builds for
//! `wasm32-wasip1` (no clock, no threads, no randomly seeded hash maps:
//! the glue passes the time in).
//!
//! - [`config`]: the filter's configuration, validated and compiled into
//!   a route table (ARNs, timeouts, URI templates, API facts).
//! - [`request`]: a request routed and turned into the Lambda event
//!   ([`RoutePlan`]).
//! - [`reply`]: what the client gets: a Lambda proxy response read as
//!   API Gateway reads it, a stream's head, the gateway's JSON errors.
//! - [`wire`]: the invoker call on each data path (the callout's
//!   `Invoke`, the router path's `InvokeHttp` and its framing).
//! - [`contract`]: the error contract, one row per kind: gRPC code, HTTP
//!   status, public message, outcome.
//!
//! The filter's whole job: [`config::parse`] once, then per request
//! [`CompiledConfig::on_request_headers`] → [`RoutePlan::build_invoke`] →
//! [`RoutePlan::on_reply`] (or, on the router path,
//! [`RoutePlan::build_forward`] → [`RoutePlan::reply_head`]).

pub mod auth;
pub mod config;
pub mod contract;
pub mod headers;
mod ids;
pub mod reply;
pub mod request;
pub mod time;
pub mod url;
pub mod wire;

pub use config::arn::{ArnError, LambdaArn};
pub use config::route::Verb;
pub use config::timeout::{Timeout, TimeoutError};
pub use config::{
    ApiKeySource, AuthorizerConfig, AuthorizerType, CompiledConfig, Config, ConfigError, DataPath,
    InvocationType, Lifecycle, PayloadFormat, ResponseMode, RouteTarget, parse,
};
pub use contract::{Failure, Outcome};
pub use reply::{GatewayError, GrpcStatus, HttpResponse};
pub use request::{Decision, Invoke, RequestInfo, RoutePlan};

/// gRPC service and method names for `dispatch_grpc_call`.
pub use lambdagate_proto::{INVOKE_METHOD, INVOKE_PATH, INVOKER_SERVICE};
