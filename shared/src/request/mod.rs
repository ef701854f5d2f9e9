//! A request on its way in: routed by the compiled config, checked, and
//! turned into the Lambda event ([`plan`], [`event`], [`trace`]), within the
//! upload budget ([`budget`]).

pub mod budget;
pub mod event;
pub mod plan;
pub mod trace;

pub use plan::{Decision, Invoke, RequestInfo, RoutePlan};
