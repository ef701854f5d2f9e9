//! The `usage` section of the invoker's config: where keys and counters
//! live, what happens when that store is unreachable, the usage plans, and
//! which resources need a key. `lambdagate render` writes it from the API
//! definitions and `gateway.usage`; [`UsageConfig::compile`] checks it and
//! builds what the rate-limit service looks requests up in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use lambdagate_core::Verb;
use lambdagate_core::config::route::{ApiRoutes, RouteTable, Template, validate_context};
use serde::{Deserialize, Serialize};

use crate::limit::{Period, Quota, Rate};

/// `usage` in `invoker.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// Default: the folder `usage` beside the invoker's config.
    #[serde(default)]
    pub store: StoreConfig,
    /// What a request gets when the store cannot be reached in
    /// `store_timeout_ms`: `allow` (default: the API stays up, unmetered;
    /// keys are still checked against the last key list read) or `deny`
    /// (503).
    #[serde(default)]
    pub on_store_unavailable: FailureMode,
    /// How long a request waits for the store, in milliseconds (default
    /// 100; 1 to 1000). Envoy's own wait for the service is longer, so
    /// this setting, not Envoy's error path, decides.
    #[serde(default = "default_store_timeout_ms")]
    pub store_timeout_ms: u64,
    /// How often the key list is read again, in milliseconds (default
    /// 1000; 100 to 60000): a created or revoked key takes effect within
    /// this, on every instance.
    #[serde(default = "default_keys_refresh_ms")]
    pub keys_refresh_ms: u64,
    #[serde(default)]
    pub plans: Vec<PlanConfig>,
    /// The gateway's APIs and which of their resources need a key.
    #[serde(default)]
    pub apis: Vec<UsageApi>,
}

/// Where keys and counters live: one of `path` (a folder on this machine:
/// `keys.json` and `counters.json`) or `redis` (a `redis://` URL shared
/// by a fleet).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: Some(PathBuf::from("usage")),
            redis: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    #[default]
    Allow,
    Deny,
}

/// A usage plan: what each of its keys may call, how fast, how much.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    pub name: String,
    /// Requests per second per key (steady).
    pub rate: f64,
    /// Requests a key may send at once after being idle.
    pub burst: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaConfig>,
    /// The APIs (by name) the plan's keys may call.
    pub apis: Vec<String>,
    /// Per-resource rates, as API Gateway's method throttling: a resource
    /// named here has its own bucket per key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle: Vec<ResourceThrottle>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub limit: u64,
    pub period: Period,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceThrottle {
    pub api: String,
    pub verb: String,
    pub uri_template: String,
    pub rate: f64,
    pub burst: u32,
}

/// An API as the usage service routes it (the filter's rule, see
/// `lambdagate_core::config::route`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageApi {
    pub name: String,
    pub context: String,
    /// Payload format v1 (a REST API): the most specific resource decides
    /// before its methods do.
    #[serde(default)]
    pub rest: bool,
    pub resources: Vec<UsageResource>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageResource {
    pub verb: String,
    pub uri_template: String,
    pub api_key_required: bool,
}

fn default_store_timeout_ms() -> u64 {
    100
}
fn default_keys_refresh_ms() -> u64 {
    1000
}

/// A bad `usage` section: where, and what is allowed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("usage.{field}: {message}")]
pub struct UsageConfigError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> UsageConfigError {
    UsageConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// Where the store is, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Folder(PathBuf),
    Redis(String),
}

/// A plan, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub rate: Rate,
    pub quota: Option<Quota>,
    pub apis: BTreeSet<String>,
    /// (api, resource id) → its own rate.
    pub throttle: BTreeMap<(String, String), Rate>,
}

/// What a matched resource needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRule {
    pub api: String,
    /// `VERB /template`, as API Gateway names a method.
    pub id: String,
    pub key_required: bool,
}

/// The compiled `usage` section.
pub struct UsageRules {
    pub store: StoreLocation,
    pub on_store_unavailable: FailureMode,
    pub store_timeout: std::time::Duration,
    pub keys_refresh: std::time::Duration,
    pub plans: Vec<Plan>,
    pub routes: RouteTable<ResourceRule>,
}

impl UsageRules {
    /// The plan named `name`.
    pub fn plan(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }
}

pub const MAX_RATE: f64 = 1_000_000.0;

fn rate(field: &str, per_second: f64, burst: u32) -> Result<Rate, UsageConfigError> {
    if !(per_second > 0.0 && per_second <= MAX_RATE) {
        return Err(err(
            format!("{field}.rate"),
            format!(
                "must be more than 0 and at most {MAX_RATE} requests per second, not {per_second}"
            ),
        ));
    }
    if burst == 0 {
        return Err(err(format!("{field}.burst"), "must be at least 1"));
    }
    Ok(Rate { per_second, burst })
}

fn resource_id(
    verb: &str,
    template: &str,
    field: &str,
) -> Result<(Verb, Template, String), UsageConfigError> {
    let parsed_verb = Verb::parse(verb).ok_or_else(|| {
        err(
            format!("{field}.verb"),
            format!(
                "`{verb}` is not one of {}",
                lambdagate_core::config::route::VERB_CHOICES
            ),
        )
    })?;
    let parsed = Template::parse(template)
        .map_err(|e| err(format!("{field}.uri_template"), e.to_string()))?;
    let id = format!("{} {}", parsed_verb.as_str(), parsed.as_str());
    Ok((parsed_verb, parsed, id))
}

impl UsageConfig {
    /// A relative store folder is taken as relative to `base` (the
    /// config file's folder).
    pub fn store_relative_to(&mut self, base: &std::path::Path) {
        if let Some(dir) = &self.store.path
            && dir.is_relative()
        {
            self.store.path = Some(base.join(dir));
        }
    }

    /// Checks the section and builds its lookups.
    pub fn compile(&self) -> Result<UsageRules, UsageConfigError> {
        let store = match (&self.store.path, &self.store.redis) {
            (Some(path), None) => StoreLocation::Folder(path.clone()),
            (None, Some(url)) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                StoreLocation::Redis(url.clone())
            }
            (None, Some(_)) => {
                return Err(err("store.redis", "must be a redis:// or rediss:// URL"));
            }
            _ => {
                return Err(err(
                    "store",
                    "give exactly one of `path` (a folder on this machine) or `redis` (a redis:// URL a fleet shares)",
                ));
            }
        };
        if !(1..=1000).contains(&self.store_timeout_ms) {
            return Err(err("store_timeout_ms", "must be 1 to 1000"));
        }
        if !(100..=60_000).contains(&self.keys_refresh_ms) {
            return Err(err("keys_refresh_ms", "must be 100 to 60000"));
        }
        let api_names: BTreeSet<&str> = self.apis.iter().map(|a| a.name.as_str()).collect();
        let mut routes = Vec::new();
        let mut resource_ids: BTreeSet<(String, String)> = BTreeSet::new();
        for (i, api) in self.apis.iter().enumerate() {
            let field = format!("apis[{i}]");
            validate_context(&api.context).map_err(|m| err(format!("{field}.context"), m))?;
            let mut resources = Vec::new();
            for (j, r) in api.resources.iter().enumerate() {
                let (verb, template, id) =
                    resource_id(&r.verb, &r.uri_template, &format!("{field}.resources[{j}]"))?;
                resource_ids.insert((api.name.clone(), id.clone()));
                resources.push((
                    verb,
                    template,
                    ResourceRule {
                        api: api.name.clone(),
                        id,
                        key_required: r.api_key_required,
                    },
                ));
            }
            let table = ApiRoutes::new(api.context.clone(), resources);
            routes.push(if api.rest {
                table.resource_first()
            } else {
                table
            });
        }
        let mut plans = Vec::new();
        let mut names = BTreeSet::new();
        for (i, p) in self.plans.iter().enumerate() {
            let field = format!("plans[{i}]");
            if p.name.is_empty()
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    format!("{field}.name"),
                    "must be letters, digits, `-` or `_`",
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(err(
                    format!("{field}.name"),
                    format!("`{}` is used twice", p.name),
                ));
            }
            let plan_rate = rate(&field, p.rate, p.burst)?;
            let quota = match p.quota {
                Some(q) if q.limit == 0 => {
                    return Err(err(format!("{field}.quota.limit"), "must be at least 1"));
                }
                Some(q) => Some(Quota {
                    limit: q.limit,
                    period: q.period,
                }),
                None => None,
            };
            if p.apis.is_empty() {
                return Err(err(format!("{field}.apis"), "name at least one API"));
            }
            for (j, api) in p.apis.iter().enumerate() {
                if !api_names.contains(api.as_str()) {
                    return Err(err(
                        format!("{field}.apis[{j}]"),
                        format!("no API is named `{api}` (APIs: {})", join(&api_names)),
                    ));
                }
            }
            let mut throttle = BTreeMap::new();
            for (j, t) in p.throttle.iter().enumerate() {
                let at = format!("{field}.throttle[{j}]");
                let (_, _, id) = resource_id(&t.verb, &t.uri_template, &at)?;
                if !p.apis.contains(&t.api) {
                    return Err(err(
                        format!("{at}.api"),
                        format!("`{}` is not one of this plan's APIs", t.api),
                    ));
                }
                if !resource_ids.contains(&(t.api.clone(), id.clone())) {
                    return Err(err(at, format!("API `{}` has no resource `{id}`", t.api)));
                }
                throttle.insert(
                    (t.api.clone(), id),
                    rate(&format!("{field}.throttle[{j}]"), t.rate, t.burst)?,
                );
            }
            plans.push(Plan {
                name: p.name.clone(),
                rate: plan_rate,
                quota,
                apis: p.apis.iter().cloned().collect(),
                throttle,
            });
        }
        Ok(UsageRules {
            store,
            on_store_unavailable: self.on_store_unavailable,
            store_timeout: std::time::Duration::from_millis(self.store_timeout_ms),
            keys_refresh: std::time::Duration::from_millis(self.keys_refresh_ms),
            plans,
            routes: RouteTable::new(routes),
        })
    }
}

fn join(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // JSON is YAML: the tests need no YAML parser.
    fn config(text: &str) -> UsageConfig {
        serde_json::from_str(text).unwrap()
    }

    const GOOD: &str = r#"{
        "store": {"path": "/tmp/x"},
        "plans": [{"name": "basic", "rate": 10, "burst": 20,
                   "quota": {"limit": 100, "period": "day"}, "apis": ["users"],
                   "throttle": [{"api": "users", "verb": "get", "uri_template": "/user/{id}", "rate": 1, "burst": 1}]}],
        "apis": [{"name": "users", "context": "/users", "resources": [
            {"verb": "GET", "uri_template": "/user/{id}", "api_key_required": true},
            {"verb": "GET", "uri_template": "/health", "api_key_required": false}]}]
    }"#;

    #[test]
    fn a_good_section_compiles_and_routes_like_the_filter() {
        let rules = config(GOOD).compile().unwrap();
        assert_eq!(rules.on_store_unavailable, FailureMode::Allow);
        let plan = rules.plan("basic").unwrap();
        assert_eq!(plan.throttle.len(), 1);
        match rules.routes.find("GET", "/users/user/7") {
            lambdagate_core::config::route::RouteMatch::Found { target, .. } => {
                assert_eq!(target.id, "GET /user/{id}");
                assert!(target.key_required);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_sections_name_the_field() {
        let cases: &[(&str, &str, &str)] = &[
            (r#""store": {"path": "/tmp/x"}"#, r#""store": {}"#, "store"),
            (
                r#""store": {"path": "/tmp/x"}"#,
                r#""store": {"redis": "http://x"}"#,
                "store.redis",
            ),
            (r#""rate": 10"#, r#""rate": 0"#, "plans[0].rate"),
            (r#""burst": 20"#, r#""burst": 0"#, "plans[0].burst"),
            (r#""limit": 100"#, r#""limit": 0"#, "plans[0].quota.limit"),
            (
                r#""apis": ["users"]"#,
                r#""apis": ["orders"]"#,
                "plans[0].apis[0]",
            ),
            (
                r#""uri_template": "/user/{id}", "rate""#,
                r#""uri_template": "/nope", "rate""#,
                "plans[0].throttle[0]",
            ),
            (
                r#""verb": "get""#,
                r#""verb": "FETCH""#,
                "plans[0].throttle[0].verb",
            ),
            (
                r#""context": "/users""#,
                r#""context": "users""#,
                "apis[0].context",
            ),
        ];
        for (from, to, field) in cases {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let error = config(&text)
                .compile()
                .err()
                .unwrap_or_else(|| panic!("{to} accepted"));
            assert_eq!(&error.field, field, "{to}: {error}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = GOOD.replacen(r#""store""#, r#""stores": 1, "store""#, 1);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(serde_json::from_value::<UsageConfig>(value).is_err());
    }
}
