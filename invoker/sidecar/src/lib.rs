//! The lambdagate invoker sidecar: the gRPC server Envoy's lambdagate
//! filter calls. It holds the AWS credentials (stored keys, the role's
//! provider chain, STS sessions), checks each call against the endpoint's
//! allow-list and invokes Lambda with the route's timeout, buffered or
//! streamed; its admin server serves metrics and the developer portal.
//!
//! Where invocations go is a [`backend::Backend`]: Lambda itself here,
//! function processes on this machine in `lambdagate-local`, which the
//! `lambdagate` binary plugs in through [`backend::LocalRuntime`].

pub mod allow;
pub mod aws;
pub mod backend;
pub mod budget;
pub mod config;
pub mod error;
pub mod grpc;
pub mod http_reply;
pub mod invoke;
pub mod lambda_api;
pub mod metrics;
pub mod offload;
pub mod portal_http;
mod record;
pub mod secret;
pub mod server;
pub mod sigv4;
pub mod stream;
