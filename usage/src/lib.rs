//! API keys and usage plans: who may call an API that needs a key, how
//! fast (a rate and a burst per key) and how much (a quota per day, week or
//! month), counted in a store on this machine or in Redis for a fleet.
//! Envoy's own rate-limit filter asks [`service::UsageService`] about each
//! request of such an API, over Envoy's rate-limit protocol, before the
//! lambdagate filter runs: a refused request invokes nothing.
//!
//! `limit` is the arithmetic (pure, tested here); `config` the checked
//! `usage` section; `keys` making and hashing keys; `store` the two
//! stores; `service` the gRPC service.

pub mod config;
pub mod keys;
pub mod limit;
pub mod service;
pub mod store;

pub use config::{UsageConfig, UsageConfigError, UsageRules};
pub use service::{UsageCounter, UsageService};
pub use store::{KeyAdmin, StoreError};
