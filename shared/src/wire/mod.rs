//! The invoker call on each data path: the callout's `Invoke` reply
//! ([`callout`]), the router path's forwarded `InvokeHttp` request and
//! reply head ([`router`]) and its body's framing ([`deframe`]).

pub mod callout;
pub mod deframe;
pub mod router;
