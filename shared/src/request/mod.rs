//! A request on its way in: routed by the compiled config, checked, and
//! turned into the Lambda event ([`plan`], [`event`], [`trace`]), within the
//! upload budget ([`budget`]).

pub mod authorize;
pub mod budget;
pub mod event;
mod event_body;
pub mod plan;
pub mod trace;

pub use authorize::AuthStep;
pub use plan::{Decision, Invoke, RequestInfo, RoutePlan};
