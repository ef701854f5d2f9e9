//! Validation and compilation: [`parse`] reads the JSON, [`Config::compile`]
//! checks every field (naming the place and what is allowed) and builds
//! the route table.

use std::sync::Arc;
use std::time::Duration;

use lambdagate_proto::MAX_SYNC_PAYLOAD_BYTES;

use super::arn::LambdaArn;
use super::compiled::{ApiFacts, CompiledConfig, MediaRange, RouteTarget};
use super::route::{ApiRoutes, RouteTable, Template, VERB_CHOICES, Verb, validate_context};
use super::schema::{
    ApiConfig, ApiKeySource, Config, DEFAULT_CALLOUT_CLUSTER, DEFAULT_FUNCTION_ERROR_STATUS,
    DEFAULT_INVOKER_CLUSTER, DEFAULT_UPLOAD_BUDGET_BYTES, DataPath, InvocationType, Lifecycle,
    PayloadFormat, ResponseMode,
};
use super::timeout::Timeout;
use crate::auth::{Authorizer, authorizer};
use crate::ids::{base36_id, fnv1a};
use crate::time::{date_days, http_date};

/// A configuration error: where, and what is wrong and allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct ConfigError {
    at: String,
    message: String,
}

impl ConfigError {
    fn new(at: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            at: at.into(),
            message: message.into(),
        }
    }

    /// Where: `apis[0] (users).resources[1] (GET /user/{id}).arn`.
    pub fn at(&self) -> &str {
        &self.at
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Parses, validates and compiles the JSON plugin configuration.
pub fn parse(json: &[u8]) -> Result<CompiledConfig, ConfigError> {
    // Envoy passes an empty configuration when `configuration` is left out
    // of the wasm filter: say that rather than serde's "EOF while parsing".
    if json.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::new(
            "config",
            "the configuration is empty; set it to the lambdagate JSON (invoker_cluster, apis)",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(json);
    let config: Config = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        // `.` is the top level; `?` an unknown place (JSON syntax errors);
        // `` an unknown top-level key that is itself empty.
        let at = if at == "." || at == "?" || at.is_empty() {
            "config".to_owned()
        } else {
            at
        };
        ConfigError::new(at, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| ConfigError::new("config", e.to_string()))?;
    config.compile()
}

/// Stage variable values as API Gateway allows them.
fn is_stage_variable_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 2048
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:/?#&=,".contains(&b))
}

/// A host name: DNS labels (letters, digits, `-`), dots between, the last
/// not all digits (that would be an IPv4 address).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

const NAME_CHARS: &str = "letters, digits, `.`, `-` or `_`";

fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || extra.contains(&b))
}

impl Config {
    /// Validates and builds the route table. `parse` = JSON + this.
    pub fn compile(self) -> Result<CompiledConfig, ConfigError> {
        check_cluster(&self.invoker_cluster)?;
        if let Some(cluster) = &self.callout_cluster {
            check_callout_cluster(cluster)?;
        }
        let one_body = u64::try_from(MAX_SYNC_PAYLOAD_BYTES).unwrap_or(u64::MAX);
        if self.upload_budget_bytes < one_body {
            return Err(ConfigError::new(
                "upload_budget_bytes",
                format!(
                    "{} is less than one 6 MB request body ({one_body} bytes), so no such body could ever be received; allowed: at least that (default {DEFAULT_UPLOAD_BUDGET_BYTES})",
                    self.upload_budget_bytes
                ),
            ));
        }
        if self.router_body_bytes.is_some() && self.data_path == DataPath::Router {
            return Err(ConfigError::new(
                "router_body_bytes",
                "applies to `data_path: callout` only (on the router path every request takes it already); allowed: leave it out, or set data_path: callout",
            ));
        }
        if self.apis.is_empty() {
            return Err(ConfigError::new(
                "apis",
                "at least one API is required (an API has name, version, context, endpoint and resources)",
            ));
        }
        let mut routes = Vec::with_capacity(self.apis.len());
        for (i, api) in self.apis.iter().enumerate() {
            let at = format!("apis[{i}] ({})", api.name);
            if !is_name(&api.name, b".") {
                return Err(ConfigError::new(
                    format!("apis[{i}].name"),
                    format!(
                        "`{}` is not a valid API name: use 1 or more {NAME_CHARS}",
                        api.name
                    ),
                ));
            }
            if let Some(j) = self.apis.iter().take(i).position(|a| a.name == api.name) {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    format!(
                        "the API name `{}` is already used by apis[{j}]; API names must be unique",
                        api.name
                    ),
                ));
            }
            if !is_name(&api.version, b".") {
                return Err(ConfigError::new(
                    format!("{at}.version"),
                    format!(
                        "`{}` is not a valid version: use 1 or more {NAME_CHARS}, e.g. `v1`",
                        api.version
                    ),
                ));
            }
            validate_context(&api.context)
                .map_err(|message| ConfigError::new(format!("{at}.context"), message))?;
            if let Some(j) = self
                .apis
                .iter()
                .take(i)
                .position(|a| a.context == api.context)
            {
                return Err(ConfigError::new(
                    format!("{at}.context"),
                    format!(
                        "the context `{}` is already used by apis[{j}] ({}); each API needs its own base path",
                        api.context,
                        self.apis.get(j).map_or("", |a| a.name.as_str())
                    ),
                ));
            }
            if !is_name(&api.endpoint, b"") {
                return Err(ConfigError::new(
                    format!("{at}.endpoint"),
                    format!(
                        "`{}` is not a valid endpoint name: use 1 or more letters, digits, `-` or `_` \
                         (the name of an endpoint in the invoker config)",
                        api.endpoint
                    ),
                ));
            }
            let facts = Arc::new(api_facts(api, &at)?);
            if api.resources.is_empty() {
                return Err(ConfigError::new(
                    format!("{at}.resources"),
                    "an API needs at least one resource (verb, uri_template, arn)",
                ));
            }
            let authorizers = compile_authorizers(api, &at)?;
            let mut resources: Vec<(Verb, Template, Arc<RouteTarget>)> = Vec::new();
            for (k, res) in api.resources.iter().enumerate() {
                let at = format!("{at}.resources[{k}] ({} {})", res.verb, res.uri_template);
                let verb = Verb::parse(&res.verb).ok_or_else(|| {
                    ConfigError::new(
                        format!("{at}.verb"),
                        format!("`{}` is not a verb: use {VERB_CHOICES}", res.verb),
                    )
                })?;
                let template = Template::parse(&res.uri_template)
                    .map_err(|e| ConfigError::new(format!("{at}.uri_template"), e.to_string()))?;
                if let Some(j) = resources
                    .iter()
                    .position(|(v, t, _)| *v == verb && t.same_shape(&template))
                {
                    let first = api
                        .resources
                        .get(j)
                        .map_or(String::new(), |r| format!("{} {}", r.verb, r.uri_template));
                    return Err(ConfigError::new(
                        format!("{at}.uri_template"),
                        format!(
                            "resources[{j}] ({first}) already routes {verb} on the same path; \
                             each verb + template may appear once per API (parameter names do not make templates different)"
                        ),
                    ));
                }
                let arn = LambdaArn::parse(&res.arn)
                    .map_err(|e| ConfigError::new(format!("{at}.arn"), e.to_string()))?;
                let timeout = Timeout::new(Duration::from_secs(u64::from(res.timeout_seconds)))
                    .map_err(|e| {
                        ConfigError::new(format!("{at}.timeout_seconds"), e.to_string())
                    })?;
                let function_error_status = match res.function_error_status {
                    None => DEFAULT_FUNCTION_ERROR_STATUS,
                    Some(s @ 400..=599) => s,
                    Some(s) => {
                        return Err(ConfigError::new(
                            format!("{at}.function_error_status"),
                            format!(
                                "{s} is not allowed: use an HTTP error status from 400 to 599 (default 502)"
                            ),
                        ));
                    }
                };
                if res.response_mode == ResponseMode::Stream
                    && res.invocation_type != InvocationType::RequestResponse
                {
                    return Err(ConfigError::new(
                        format!("{at}.response_mode"),
                        "`stream` needs invocation_type RequestResponse: an Event invocation has no response to stream",
                    ));
                }
                let authorizer = match api.authorizer_of(res) {
                    None => None,
                    Some(name) => Some(find_authorizer(&authorizers, name).ok_or_else(|| {
                        ConfigError::new(
                            format!("{at}.authorizer"),
                            unknown_authorizer(name, &authorizers),
                        )
                    })?),
                };
                let is_jwt = authorizer
                    .as_ref()
                    .is_some_and(|a| a.kind == crate::config::AuthorizerType::Jwt);
                if !res.authorization_scopes.is_empty() && !is_jwt {
                    return Err(ConfigError::new(
                        format!("{at}.authorization_scopes"),
                        "scopes are checked by a JWT authorizer; this resource's authorizer is not one",
                    ));
                }
                let api_key = api.key_required(res).then_some(api.api_key_source);
                if api_key == Some(ApiKeySource::Authorizer) && (authorizer.is_none() || is_jwt) {
                    return Err(ConfigError::new(
                        format!("{at}.api_key_required"),
                        "the API's api_key_source is `authorizer`, so this resource's key is its Lambda authorizer's usageIdentifierKey; give it a TOKEN or REQUEST authorizer, or set api_key_source: header",
                    ));
                }
                let target = RouteTarget {
                    api_key,
                    scopes: res.authorization_scopes.clone(),
                    authorizer,
                    api_name: api.name.clone(),
                    api_version: api.version.clone(),
                    context: api.context.clone(),
                    endpoint: api.endpoint.clone(),
                    payload_format: api.payload_format,
                    verb,
                    template: res.uri_template.clone(),
                    arn_text: arn.to_string(),
                    arn,
                    timeout,
                    invocation_type: res.invocation_type,
                    response_mode: res.response_mode,
                    function_error_status,
                    expose_errors: api.expose_errors,
                    resource_id: base36_id(
                        fnv1a(&[&api.name, verb.as_str(), &res.uri_template]),
                        6,
                    ),
                    api: Arc::clone(&facts),
                };
                resources.push((verb, template, Arc::new(target)));
            }
            let api_routes = ApiRoutes::new(api.context.clone(), resources);
            routes.push(if api.payload_format == PayloadFormat::V1 {
                api_routes.resource_first()
            } else {
                api_routes
            });
        }
        Ok(CompiledConfig {
            table: RouteTable::new(routes),
            config: self,
        })
    }
}

/// Compiles an API's authorizers and checks its default names one.
fn compile_authorizers(api: &ApiConfig, at: &str) -> Result<Vec<Arc<Authorizer>>, ConfigError> {
    let mut out: Vec<Arc<Authorizer>> = Vec::with_capacity(api.authorizers.len());
    for (i, config) in api.authorizers.iter().enumerate() {
        let authorizer = Authorizer::compile(config, api.payload_format).map_err(|e| {
            ConfigError::new(format!("{at}.authorizers[{i}].{}", e.field), e.message)
        })?;
        if let Some(j) = out.iter().position(|a| a.name() == authorizer.name()) {
            return Err(ConfigError::new(
                format!("{at}.authorizers[{i}].name"),
                format!(
                    "the name `{}` is already used by authorizers[{j}]; authorizer names must be unique in an API",
                    authorizer.name()
                ),
            ));
        }
        out.push(Arc::new(authorizer));
    }
    if let Some(name) = api.authorizer.as_deref()
        && name != authorizer::NONE
        && find_authorizer(&out, name).is_none()
    {
        return Err(ConfigError::new(
            format!("{at}.authorizer"),
            unknown_authorizer(name, &out),
        ));
    }
    Ok(out)
}

fn find_authorizer(authorizers: &[Arc<Authorizer>], name: &str) -> Option<Arc<Authorizer>> {
    authorizers.iter().find(|a| a.name() == name).cloned()
}

fn unknown_authorizer(name: &str, authorizers: &[Arc<Authorizer>]) -> String {
    let names: Vec<&str> = authorizers.iter().map(|a| a.name()).collect();
    format!(
        "no authorizer is named `{name}`; this API's authorizers: {} (or `none` for an open resource)",
        if names.is_empty() {
            "none defined".to_owned()
        } else {
            names.join(", ")
        }
    )
}

/// Checks an API's stage, stage variables, binary media types and domain.
fn api_facts(api: &ApiConfig, at: &str) -> Result<ApiFacts, ConfigError> {
    if let Some(stage) = &api.stage
        && (stage.len() > 128 || !is_name(stage, b""))
    {
        return Err(ConfigError::new(
            format!("{at}.stage"),
            format!(
                "`{stage}` is not a valid stage name: use 1 to 128 letters, digits, `-` or `_` (leave it out for `$default`)"
            ),
        ));
    }
    for (name, value) in &api.stage_variables {
        if name.len() > 64 || !is_name(name, b"") || name.contains('-') {
            return Err(ConfigError::new(
                format!("{at}.stage_variables"),
                format!(
                    "`{name}` is not a valid stage variable name: use 1 to 64 letters, digits or `_`"
                ),
            ));
        }
        if !is_stage_variable_value(value) {
            return Err(ConfigError::new(
                format!("{at}.stage_variables.{name}"),
                "a stage variable value is 1 to 2048 of: letters, digits and -._~:/?#&=,",
            ));
        }
    }
    let mut binary_media_types = Vec::with_capacity(api.binary_media_types.len());
    for (i, text) in api.binary_media_types.iter().enumerate() {
        if api.payload_format != PayloadFormat::V1 {
            return Err(ConfigError::new(
                format!("{at}.binary_media_types"),
                "binary_media_types applies to payload_format v1 (REST) only; an HTTP API (v2) decides by content type itself",
            ));
        }
        let range = MediaRange::parse(text).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.binary_media_types[{i}]"),
                format!("`{text}` is not a media type: use `type/subtype`, `type/*` or `*/*`, e.g. `image/png`"),
            )
        })?;
        binary_media_types.push(range);
    }
    if let Some(domain) = &api.domain_name
        && !is_host_name(domain)
    {
        return Err(ConfigError::new(
            format!("{at}.domain_name"),
            format!(
                "`{domain}` is not a host name: use DNS labels of letters, digits and `-`, e.g. `api.example.com`"
            ),
        ));
    }
    let lifecycle_headers = lifecycle_headers(api, at)?;
    Ok(ApiFacts {
        lifecycle: api.lifecycle,
        lifecycle_headers,
        api_id: base36_id(fnv1a(&[&api.name]), 10),
        stage: api.stage.clone().unwrap_or_else(|| "$default".to_owned()),
        stage_named: api.stage.is_some(),
        stage_variables: api
            .stage_variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        binary_media_types,
        domain_name: api.domain_name.clone(),
    })
}

/// The headers of a deprecated API (RFC 9745 `Deprecation`, RFC 8594
/// `Sunset`); dates are checked whatever the state, and only a deprecated
/// API may have them.
fn lifecycle_headers(api: &ApiConfig, at: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut headers = Vec::new();
    let deprecated = api.lifecycle == Lifecycle::Deprecated;
    let deprecation = match &api.deprecated_on {
        None => None,
        Some(date) => Some(date_days(date).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.deprecated_on"),
                format!("`{date}` is not a date: use YYYY-MM-DD, e.g. 2026-11-30"),
            )
        })?),
    };
    let sunset = match &api.sunset {
        None => None,
        Some(date) => Some(date_days(date).ok_or_else(|| {
            ConfigError::new(
                format!("{at}.sunset"),
                format!("`{date}` is not a date: use YYYY-MM-DD, e.g. 2027-06-30"),
            )
        })?),
    };
    if !deprecated && (deprecation.is_some() || sunset.is_some()) {
        let field = if deprecation.is_some() {
            "deprecated_on"
        } else {
            "sunset"
        };
        return Err(ConfigError::new(
            format!("{at}.{field}"),
            format!(
                "only a deprecated API has a {field} date; this one is `{}` (set lifecycle: deprecated, or remove the date)",
                api.lifecycle.as_str()
            ),
        ));
    }
    if let (Some(from), Some(until)) = (deprecation, sunset)
        && until < from
    {
        return Err(ConfigError::new(
            format!("{at}.sunset"),
            "the sunset date is before the deprecation date",
        ));
    }
    if deprecated {
        headers.push((
            "deprecation".to_owned(),
            deprecation.map_or_else(|| "true".to_owned(), |days| format!("@{}", days * 86_400)),
        ));
        if let Some(days) = sunset {
            headers.push(("sunset".to_owned(), http_date(days)));
        }
    }
    Ok(headers)
}

fn check_callout_cluster(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            "callout_cluster",
            format!(
                "`{name}` is not a valid cluster name: give the name of an HTTP/1.1 Envoy cluster \
                 of the lambdagate invoker's address, without spaces, e.g. `{DEFAULT_CALLOUT_CLUSTER}`, \
                 or leave it out for gRPC callouts"
            ),
        ));
    }
    Ok(())
}

fn check_cluster(name: &str) -> Result<(), ConfigError> {
    let at = "invoker_cluster";
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(
            at,
            format!(
                "`{name}` is not a valid cluster name: give the name of the Envoy cluster of the \
                 lambdagate invoker (HTTP/2), without spaces, e.g. `{DEFAULT_INVOKER_CLUSTER}`"
            ),
        ));
    }
    if parses_as_protobuf(name.as_bytes()) {
        return Err(ConfigError::new(
            at,
            format!(
                "`{name}` cannot be used: Envoy first reads a gRPC upstream name as a serialized \
                 GrpcService message, `{name}` happens to be valid protobuf, and Envoy then aborts \
                 (`panic: unset oneof`); rename the cluster, e.g. `{DEFAULT_INVOKER_CLUSTER}`"
            ),
        ));
    }
    Ok(())
}

/// Whether `bytes` is a well-formed protobuf message (any fields). Envoy's
/// `dispatch_grpc_call` tries exactly that parse on the upstream name
/// before treating it as a cluster name; `h2` is the classic victim.
fn parses_as_protobuf(bytes: &[u8]) -> bool {
    fn varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*pos)?;
            *pos += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    // Parses fields until the end (group == None) or the matching end-group.
    fn fields(bytes: &[u8], pos: &mut usize, group: Option<u64>, depth: u32) -> bool {
        if depth > 32 {
            return false;
        }
        while *pos < bytes.len() {
            let Some(tag) = varint(bytes, pos) else {
                return false;
            };
            let field = tag >> 3;
            if field == 0 || field > (1 << 29) - 1 {
                return false;
            }
            let ok = match tag & 7 {
                0 => varint(bytes, pos).is_some(),
                1 => skip(bytes, pos, 8),
                2 => varint(bytes, pos)
                    .and_then(|len| usize::try_from(len).ok())
                    .is_some_and(|len| skip(bytes, pos, len)),
                3 => fields(bytes, pos, Some(field), depth + 1),
                4 => return group == Some(field),
                5 => skip(bytes, pos, 4),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        group.is_none()
    }
    fn skip(bytes: &[u8], pos: &mut usize, n: usize) -> bool {
        match pos.checked_add(n) {
            Some(end) if end <= bytes.len() => {
                *pos = end;
                true
            }
            _ => false,
        }
    }
    let mut pos = 0;
    fields(bytes, &mut pos, None, 0)
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
