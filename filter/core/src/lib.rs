//! The pure core of lambdagate: rules that the wasm filter and the
//! `lambdagate` CLI must apply identically, so that `lambdagate check`
//! refuses exactly what the gateway would refuse, with the same words.
//!
//! Nothing here does I/O or depends on proxy-wasm.

pub mod arn;
pub mod timeout;

pub use arn::{ArnError, LambdaArn};
pub use timeout::{Timeout, TimeoutError};
