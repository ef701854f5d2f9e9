//! The usage service: routes a request as the filter does, checks its key
//! against the key list, and takes from the key's plan in the store.
//!
//! Two callers. The invoker asks [`UsageService::judge`] when the
//! filter's call carries a key check (the default: one hop per request).
//! Envoy's rate-limit filter asks it as Envoy's rate-limit service
//! (`envoy.service.ratelimit.v3`) when render is set to check keys there:
//! the request then arrives as descriptors (see [`descriptor`]), and a
//! refusal is `OVER_LIMIT` with the outcome in the dynamic metadata, which
//! render's local-reply mappers turn into the gateway's 403, 429 or 503
//! with its JSON body and request id.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_response::Code;
use envoy_types::pb::envoy::service::ratelimit::v3::rate_limit_service_server::RateLimitService;
use envoy_types::pb::envoy::service::ratelimit::v3::{RateLimitRequest, RateLimitResponse};
use envoy_types::pb::google::protobuf::value::Kind;
use envoy_types::pb::google::protobuf::{Struct, Value};
use lambdagate_core::Outcome;
use lambdagate_core::config::route::RouteMatch;
use lambdagate_core::contract::usage_refusal;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::config::{FailureMode, UsageRules};
use crate::keys::KeySet;
use crate::limit::Admission;
use crate::store::{Store, StoreError};

/// The descriptor entries render's Envoy config sends.
pub mod descriptor {
    /// The request's method (`:method`).
    pub const METHOD: &str = "lambdagate_method";
    /// The request's path with its query (`:path`), after Envoy's
    /// normalization.
    pub const PATH: &str = "lambdagate_path";
    /// `x-api-key`, in a descriptor of its own (Envoy leaves the
    /// descriptor out when the header is absent).
    pub const API_KEY: &str = "lambdagate_api_key";
    /// The header a client sends its key in.
    pub use lambdagate_core::request::plan::API_KEY_HEADER;
    /// The rate-limit filter's domain.
    pub const DOMAIN: &str = "lambdagate";
}

/// Where Envoy puts the service's dynamic metadata, and its fields.
pub mod metadata {
    pub const NAMESPACE: &str = "envoy.filters.http.ratelimit";
    /// An [`lambdagate_core::Outcome`] label.
    pub const OUTCOME: &str = "outcome";
    pub const PLAN: &str = "usage_plan";
    pub const KEY_ID: &str = "api_key_id";
}

/// Metrics labels: a plan and a key id (never the key), and the outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UsageLabels {
    pub plan: String,
    pub key_id: String,
    pub outcome: String,
}

pub type UsageCounter = Family<UsageLabels, Counter>;

/// What the service decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No resource here needs a key (or the path is no API's): nothing
    /// is counted.
    Open,
    Allowed {
        plan: String,
        key_id: String,
    },
    Refused {
        outcome: Outcome,
        plan: Option<String>,
        key_id: Option<String>,
        retry_after_seconds: Option<u64>,
    },
}

fn refused(outcome: Outcome) -> Verdict {
    Verdict::Refused {
        outcome,
        plan: None,
        key_id: None,
        retry_after_seconds: None,
    }
}

/// The request's parts, read from the descriptors.
#[derive(Debug, Default)]
struct Asked<'r> {
    method: Option<&'r str>,
    path: Option<&'r str>,
    api_key: Option<&'r str>,
}

fn asked(request: &RateLimitRequest) -> Asked<'_> {
    let mut out = Asked::default();
    for entry in request.descriptors.iter().flat_map(|d| &d.entries) {
        let value = Some(entry.value.as_str());
        match entry.key.as_str() {
            descriptor::METHOD => out.method = value,
            descriptor::PATH => out.path = value,
            descriptor::API_KEY => out.api_key = value,
            _ => {}
        }
    }
    out
}

#[derive(Clone)]
pub struct UsageService {
    rules: Arc<UsageRules>,
    store: Arc<Store>,
    keys: Arc<RwLock<Arc<KeySet>>>,
    counter: UsageCounter,
}

impl UsageService {
    /// Opens the store, reads the key list (an unreachable Redis is
    /// retried by the refresh loop) and starts the loop that re-reads it
    /// and saves the folder's counts.
    pub async fn start(rules: UsageRules, counter: UsageCounter) -> Result<Self, StoreError> {
        let store = Arc::new(Store::open(&rules.store)?);
        let service = UsageService {
            rules: Arc::new(rules),
            store,
            keys: Arc::new(RwLock::new(Arc::new(KeySet::default()))),
            counter,
        };
        match tokio::time::timeout(service.rules.store_timeout * 10, service.refresh_keys()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "usage: cannot read the key list yet; every key is refused until it can")
            }
            Err(_) => tracing::warn!(
                "usage: the key list did not arrive in time; every key is refused until it does"
            ),
        }
        let refresher = service.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresher.rules.keys_refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match tokio::time::timeout(refresher.rules.keys_refresh, refresher.refresh_keys())
                    .await
                {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "usage: key list not re-read; the last one stays")
                    }
                    Err(_) => {
                        tracing::warn!("usage: key list not re-read in time; the last one stays")
                    }
                }
                if let Err(e) = refresher.store.flush() {
                    tracing::error!(error = %e, "usage: quota counts not saved");
                }
            }
        });
        Ok(service)
    }

    async fn refresh_keys(&self) -> Result<(), StoreError> {
        if let Some(records) = self.store.keys_if_changed().await? {
            let set = KeySet::new(records);
            tracing::info!(keys = set.len(), "usage: key list read");
            if let Ok(mut keys) = self.keys.write() {
                *keys = Arc::new(set);
            }
        }
        Ok(())
    }

    /// Saves what only memory holds; for shutdown.
    pub fn flush(&self) {
        if let Err(e) = self.store.flush() {
            tracing::error!(error = %e, "usage: quota counts not saved");
        }
    }

    fn key_set(&self) -> Arc<KeySet> {
        self.keys.read().map(|k| Arc::clone(&k)).unwrap_or_default()
    }

    /// The verdict for a request (method, path with query, key).
    pub async fn decide(&self, method: &str, path: &str, api_key: Option<&str>) -> Verdict {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        let rule = match self.rules.routes.find(method, path) {
            RouteMatch::Found { target, .. } => target,
            // The filter answers 404 and 405; nothing to count.
            _ => return Verdict::Open,
        };
        if !rule.key_required {
            return Verdict::Open;
        }
        let keys = self.key_set();
        let Some(record) = api_key.and_then(|k| keys.find(k)) else {
            return refused(Outcome::InvalidApiKey);
        };
        let Some(plan) = record
            .plans
            .iter()
            .filter_map(|name| self.rules.plan(name))
            .find(|plan| plan.apis.contains(&rule.api))
        else {
            return Verdict::Refused {
                outcome: Outcome::InvalidApiKey,
                plan: None,
                key_id: Some(record.id.clone()),
                retry_after_seconds: None,
            };
        };
        let (bucket, rate) = match plan.throttle.get(&(rule.api.clone(), rule.id.clone())) {
            Some(rate) => (
                format!("{}:{}:{}:{}", plan.name, record.id, rule.api, rule.id),
                *rate,
            ),
            None => (format!("{}:{}", plan.name, record.id), plan.rate),
        };
        let quota_name = plan.quota.map(|q| {
            let now = crate::store::now_micros().div_euclid(1_000_000);
            (
                format!("{}:{}:{}", plan.name, record.id, q.period.bounds(now).0),
                q,
            )
        });
        let quota = quota_name.as_ref().map(|(name, q)| (name.as_str(), *q));
        let taken = tokio::time::timeout(
            self.rules.store_timeout,
            self.store.admit(&bucket, rate, quota),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "no answer in store_timeout_ms".into(),
            ))
        });
        let (plan, key_id) = (plan.name.as_str(), record.id.as_str());
        let allowed = || Verdict::Allowed {
            plan: plan.to_owned(),
            key_id: key_id.to_owned(),
        };
        let refused = |outcome, retry_after_seconds| Verdict::Refused {
            outcome,
            plan: Some(plan.to_owned()),
            key_id: Some(key_id.to_owned()),
            retry_after_seconds: Some(retry_after_seconds),
        };
        match taken {
            Ok(Admission::Allowed) => allowed(),
            Ok(Admission::Throttled {
                retry_after_seconds,
            }) => refused(Outcome::PlanThrottled, retry_after_seconds),
            Ok(Admission::QuotaExceeded {
                retry_after_seconds,
            }) => refused(Outcome::QuotaExceeded, retry_after_seconds),
            Err(e) => {
                tracing::warn!(error = %e, plan, key_id, mode = ?self.rules.on_store_unavailable, "usage: store unavailable");
                match self.rules.on_store_unavailable {
                    FailureMode::Allow => allowed(),
                    FailureMode::Deny => refused(Outcome::UsageStoreUnavailable, 1),
                }
            }
        }
    }

    /// Decides and counts: the invoker's check of a key that came with
    /// the filter's call (as [`RateLimitService`] does for Envoy's
    /// rate-limit filter).
    pub async fn judge(&self, method: &str, path: &str, api_key: Option<&str>) -> Verdict {
        let verdict = self.decide(method, path, api_key).await;
        self.count(&verdict);
        verdict
    }

    fn count(&self, verdict: &Verdict) {
        let (plan, key_id, outcome) = match verdict {
            Verdict::Open => return,
            Verdict::Allowed { plan, key_id } => (plan.as_str(), key_id.as_str(), "allowed"),
            Verdict::Refused {
                outcome,
                plan,
                key_id,
                ..
            } => (
                plan.as_deref().unwrap_or("-"),
                key_id.as_deref().unwrap_or("-"),
                outcome.label(),
            ),
        };
        self.counter
            .get_or_create(&UsageLabels {
                plan: plan.to_owned(),
                key_id: key_id.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

fn string(value: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(value.to_owned())),
    }
}

/// The answer Envoy's rate-limit filter acts on.
pub fn response(verdict: &Verdict) -> RateLimitResponse {
    let mut fields = std::collections::HashMap::new();
    let mut answer = RateLimitResponse {
        overall_code: Code::Ok as i32,
        ..Default::default()
    };
    match verdict {
        Verdict::Open => {}
        Verdict::Allowed { plan, key_id } => {
            fields.insert(metadata::PLAN.to_owned(), string(plan));
            fields.insert(metadata::KEY_ID.to_owned(), string(key_id));
        }
        Verdict::Refused {
            outcome,
            plan,
            key_id,
            retry_after_seconds,
        } => {
            answer.overall_code = Code::OverLimit as i32;
            fields.insert(metadata::OUTCOME.to_owned(), string(outcome.label()));
            if let Some(plan) = plan {
                fields.insert(metadata::PLAN.to_owned(), string(plan));
            }
            if let Some(key_id) = key_id {
                fields.insert(metadata::KEY_ID.to_owned(), string(key_id));
            }
            if let Some((_, message)) = usage_refusal(*outcome) {
                answer.raw_body = serde_json::json!({ "message": message })
                    .to_string()
                    .into_bytes();
                answer.response_headers_to_add.push(HeaderValue {
                    key: "content-type".into(),
                    value: "application/json".into(),
                    ..Default::default()
                });
            }
            if let Some(seconds) = retry_after_seconds {
                answer.response_headers_to_add.push(HeaderValue {
                    key: "retry-after".into(),
                    value: seconds.to_string(),
                    ..Default::default()
                });
            }
        }
    }
    if !fields.is_empty() {
        answer.dynamic_metadata = Some(Struct { fields });
    }
    answer
}

#[tonic::async_trait]
impl RateLimitService for UsageService {
    async fn should_rate_limit(
        &self,
        request: tonic::Request<RateLimitRequest>,
    ) -> Result<tonic::Response<RateLimitResponse>, tonic::Status> {
        let request = request.into_inner();
        let parts = asked(&request);
        let (Some(method), Some(path)) = (parts.method, parts.path) else {
            // Not a request render's config describes: nothing to limit.
            return Ok(tonic::Response::new(response(&Verdict::Open)));
        };
        let verdict = self.judge(method, path, parts.api_key).await;
        Ok(tonic::Response::new(response(&verdict)))
    }
}

/// How long Envoy should wait for the service: well past the store's own
/// timeout, so the service's setting decides what a slow store means.
pub fn envoy_timeout(store_timeout: Duration) -> Duration {
    store_timeout * 5 + Duration::from_millis(200)
}
