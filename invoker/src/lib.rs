//! The lambdagate invoker: the sidecar that holds AWS credentials and calls
//! Lambda for Envoy's lambdagate filter, and the `lambdagate` CLI around it.

pub mod allow;
pub mod api;
pub mod aws;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod invoke;
pub mod lambda_api;
pub mod local;
pub mod metrics;
pub mod openapi;
pub mod portal;
pub mod portal_http;
pub mod secret;
pub mod server;
pub mod sigv4;
pub mod stream;
