//! A request on its way in: routed by the compiled config, checked, and
//! turned into the Lambda event ([`plan`], [`event`], [`trace`]).

pub mod event;
pub mod plan;
pub mod trace;

pub use plan::{Decision, Invoke, RequestInfo, RoutePlan};
