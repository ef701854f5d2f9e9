//! Prometheus metrics, served on the optional admin address at `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use lambdagate_core::Outcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    pub endpoint: String,
    /// The function ARN as invoked; "-" for requests refused before an ARN
    /// was accepted, so callers cannot grow the label set at will.
    pub function: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    pub endpoint: String,
    pub function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

type HistogramFamily = Family<FunctionLabels, Histogram, fn() -> Histogram>;

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    invocations: Family<InvocationLabels, Counter>,
    duration: HistogramFamily,
    sts_refreshes: Family<EndpointLabels, Counter>,
    credential_fetches: Family<EndpointLabels, Counter>,
    credential_errors: Family<EndpointLabels, Counter>,
    config_reloads: Family<ResultLabels, Counter>,
    inflight_bytes: Gauge,
    budget_waits: Counter,
    usage: lambdagate_usage::UsageCounter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s doubling, then the 15-minute ceiling is in +Inf.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let invocations = Family::<InvocationLabels, Counter>::default();
        registry.register(
            "lambdagate_invocations",
            "Lambda invocations by endpoint, function and outcome (ok, function_error, the error kind, or client_gone for a stream whose reader left)",
            invocations.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "lambdagate_invocation_duration_seconds",
            "Time from receiving an Invoke call to answering it",
            duration.clone(),
        );
        let sts_refreshes = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "lambdagate_sts_refreshes",
            "STS AssumeRole calls made to obtain or refresh an assumed-role session",
            sts_refreshes.clone(),
        );
        let credential_fetches = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "lambdagate_credential_fetches",
            "Times the endpoint's credentials were (re)loaded from their source (cache misses)",
            credential_fetches.clone(),
        );
        let credential_errors = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "lambdagate_credential_errors",
            "Failed attempts to obtain credentials (provider chain, stored keys or STS)",
            credential_errors.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "lambdagate_config_reloads",
            "Config reloads (file change or SIGHUP) by result: ok, or error (the running config stays)",
            config_reloads.clone(),
        );
        let inflight_bytes = Gauge::default();
        registry.register(
            "lambdagate_inflight_bytes",
            "Bytes of the in-flight budget (max_inflight_bytes) held by calls: their request messages, counted in whole KiB from admission until the response is complete",
            inflight_bytes.clone(),
        );
        let budget_waits = Counter::default();
        registry.register(
            "lambdagate_budget_waits",
            "Calls that had to wait for in-flight budget before their request message was read",
            budget_waits.clone(),
        );
        let usage = lambdagate_usage::UsageCounter::default();
        registry.register(
            "lambdagate_usage_requests",
            "Requests of resources that need an API key, by usage plan, key id (a short hash of the key, never the key; `-` when unknown) and outcome: allowed, invalid_api_key, plan_throttled, quota_exceeded or usage_store_unavailable",
            usage.clone(),
        );
        Metrics {
            usage,
            registry: Arc::new(registry),
            inflight_bytes,
            budget_waits,
            config_reloads,
            invocations,
            duration,
            sts_refreshes,
            credential_fetches,
            credential_errors,
        }
    }

    /// The usage service's counts (see `lambdagate_usage::service`).
    pub fn usage_counter(&self) -> lambdagate_usage::UsageCounter {
        self.usage.clone()
    }

    pub fn record_invocation(
        &self,
        endpoint: &str,
        function: &str,
        outcome: Outcome,
        took: Duration,
    ) {
        self.invocations
            .get_or_create(&InvocationLabels {
                endpoint: endpoint.to_owned(),
                function: function.to_owned(),
                outcome: outcome.label().to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&FunctionLabels {
                endpoint: endpoint.to_owned(),
                function: function.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn sts_refresh(&self, endpoint: &str) {
        self.sts_refreshes
            .get_or_create(&endpoint_labels(endpoint))
            .inc();
    }

    pub fn credential_fetch(&self, endpoint: &str) {
        self.credential_fetches
            .get_or_create(&endpoint_labels(endpoint))
            .inc();
    }

    pub fn credential_error(&self, endpoint: &str) {
        self.credential_errors
            .get_or_create(&endpoint_labels(endpoint))
            .inc();
    }

    pub fn config_reload(&self, result: &str) {
        self.config_reloads
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    /// `lambdagate_inflight_bytes`, moved by the budget (budget.rs).
    pub fn inflight_bytes(&self) -> &Gauge {
        &self.inflight_bytes
    }

    /// `lambdagate_budget_waits_total`, counted by the budget (budget.rs).
    pub fn budget_waits(&self) -> &Counter {
        &self.budget_waits
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

fn endpoint_labels(endpoint: &str) -> EndpointLabels {
    EndpointLabels {
        endpoint: endpoint.to_owned(),
    }
}
