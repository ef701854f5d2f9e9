//! The pure core of lambdagate: rules that the wasm filter and the
//! `lambdagate` CLI must apply identically, so that `lambdagate check`
//! refuses exactly what the gateway would refuse, with the same words.
//!
//! Nothing here does I/O or depends on proxy-wasm; it builds for
//! `wasm32-wasip1` (no clock, no threads, no randomly seeded hash maps:
//! the glue passes the time in).
//!
//! The glue's whole job, see [`plan`]:
//! [`config::parse`] once, then per request
//! [`CompiledConfig::on_request_headers`] → [`RoutePlan::build_invoke`] →
//! [`RoutePlan::on_reply`].

pub mod arn;
pub mod config;
pub mod event;
pub mod forward;
pub mod plan;
pub mod response;
pub mod route;
pub mod stream;
pub mod timeout;
pub mod trace;
pub mod url;

pub use arn::{ArnError, LambdaArn};
pub use config::{
    CompiledConfig, Config, ConfigError, DataPath, InvocationType, Lifecycle, PayloadFormat,
    ResponseMode, RouteTarget, parse,
};
pub use plan::{Decision, Invoke, RequestInfo, RoutePlan};
pub use response::{GatewayError, GrpcStatus, HttpResponse};
pub use route::Verb;
pub use timeout::{Timeout, TimeoutError};

/// gRPC service and method names for `dispatch_grpc_call`.
pub use lambdagate_proto::{INVOKE_METHOD, INVOKER_SERVICE};
