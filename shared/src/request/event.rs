//! Lambda events built from a request, byte for byte what the function's
//! code expects: API Gateway REST (payload 1.0), HTTP API (payload 2.0),
//! WSO2 API Manager's event, or the raw body.
//!
//! The JSON is written by serde from structs that borrow the request: no
//! intermediate `serde_json::Value`.
//!
//! An event is built in two halves: [`head`], everything but the body (the
//! filter, in Envoy's wasm VM), and [`finish`], the body written in (the
//! invoker, natively). The body is the last field but `isBase64Encoded`,
//! so the head is the object up to it; the head also says how the body
//! goes in, as far as the request's headers decide it. A large body is
//! then never copied, escaped or base64-encoded inside the VM, and on the
//! router path never read into it at all.
//!
//! Header names are lower-case (as Envoy gives them); pseudo-headers
//! (`:path`, ...) are left out; when there is no `host` header (HTTP/2, or
//! Envoy moved it to `:authority`), `host` is added from `:authority`.
//! Query keys and values are decoded like HTML forms (`+` is a space).
//!
//! Bodies: text (`application/json`, `*/*+json`, `application/xml`,
//! `*/*+xml`, `text/*`, `application/javascript`,
//! `application/x-www-form-urlencoded`, or no content-type at all) that is
//! valid UTF-8 goes as a string; anything else is base64 with
//! `isBase64Encoded: true`; an empty body is `null`.

use std::borrow::Cow;
use std::ops::Range;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use lambdagate_proto::{BodyEncoding, EventHead};

pub use super::event_body::{EventError, finish, finish_within, min_len};

use crate::config::{ApiFacts, InvocationType, PayloadFormat};
use crate::headers::last_header;
use crate::time::clf_time;
use crate::url::parse_query;

/// Largest synchronous (`RequestResponse`) Lambda payload: 6 MB.
pub const MAX_SYNC_BYTES: usize = lambdagate_proto::MAX_SYNC_PAYLOAD_BYTES;
/// Largest asynchronous (`Event`) Lambda payload: 1 MB.
pub const MAX_EVENT_BYTES: usize = lambdagate_proto::MAX_EVENT_PAYLOAD_BYTES;

/// The largest request body (and Lambda event) for an invocation type.
pub fn max_body_bytes(invocation_type: InvocationType) -> usize {
    match invocation_type {
        InvocationType::RequestResponse => MAX_SYNC_BYTES,
        InvocationType::Event => MAX_EVENT_BYTES,
    }
}

/// Everything an event is built from.
#[derive(Clone, Copy, Debug)]
pub struct EventInput<'a> {
    /// The request method (`:method`).
    pub method: &'a str,
    /// The request path including the API context, as received (not
    /// decoded), without the query string.
    pub path: &'a str,
    /// The raw query string without `?`; `None` when the URL had no `?`.
    pub query: Option<&'a str>,
    /// Request headers as Envoy gives them (pseudo-headers are skipped).
    pub headers: &'a [(String, String)],
    /// Decoded path parameters, in template order.
    pub path_params: &'a [(String, String)],
    pub body: &'a [u8],
    /// The resource's verb as configured (`ANY` stays `ANY`), for `routeKey`.
    pub route_verb: &'a str,
    /// The URI template without the context, e.g. `/user/{id}`.
    pub template: &'a str,
    /// The API's id, stage, stage variables, binary media types, domain.
    pub api: &'a ApiFacts,
    /// API Gateway's `resourceId` for the matched resource.
    pub resource_id: &'a str,
    /// The X-Ray trace header chosen for the request (`Root=...`); it
    /// replaces any `x-amzn-trace-id` the client sent. Empty: none.
    pub trace_id: &'a str,
    /// The AWS account of the function (from its ARN).
    pub account_id: &'a str,
    pub request_id: &'a str,
    pub source_ip: &'a str,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub protocol: &'a str,
    /// Request arrival, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What the API's authorizer said, as `requestContext.authorizer`
    /// (shaped for the payload format by `auth`); `None`: no authorizer.
    pub authorizer: Option<&'a RawValue>,
}

/// Builds the event payload in the given format: [`head`], then
/// [`finish`] with the body, as the invoker does with a head the filter
/// sent.
pub fn build(format: PayloadFormat, input: &EventInput<'_>) -> Result<Vec<u8>, EventError> {
    match head(format, input)? {
        Some(head) => finish(&head, input.body),
        None => Ok(input.body.to_vec()),
    }
}

/// The event without its body, and how the body goes in; `None` for the
/// passthrough format (the body is the event). `input.body` is not read:
/// the body's encoding is decided by the format, the content-type and the
/// API's binary media types, and, where it depends on the bytes (text that
/// is not UTF-8, WSO2's JSON), by [`finish`].
pub fn head(
    format: PayloadFormat,
    input: &EventInput<'_>,
) -> Result<Option<EventHead>, EventError> {
    let content_type = last_header(input.headers, "content-type");
    let (json, body) = match format {
        PayloadFormat::V1 => {
            let binary = content_type.is_some_and(|ct| input.api.is_binary(ct));
            let encoding = if binary {
                BodyEncoding::BodyRestBase64
            } else {
                BodyEncoding::BodyRestText
            };
            (head_json(&v1(input), input)?, encoding)
        }
        PayloadFormat::V2 => {
            let encoding = if is_text(content_type) {
                BodyEncoding::BodyHttpText
            } else {
                BodyEncoding::BodyHttpBase64
            };
            (head_json(&v2(input), input)?, encoding)
        }
        PayloadFormat::Wso2 => (head_json(&wso2(input), input)?, BodyEncoding::BodyWso2),
        PayloadFormat::Passthrough => return Ok(None),
    };
    Ok(Some(EventHead {
        json,
        body: body as i32,
    }))
}

/// The event without its body fields, as an object without its closing
/// brace.
fn head_json<T: Serialize>(event: &T, input: &EventInput<'_>) -> Result<Vec<u8>, EventError> {
    let headers: usize = input.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    // Headers appear twice in v1.
    let mut out = Vec::with_capacity(2 * headers + 1024);
    serde_json::to_writer(&mut out, event)?;
    if out.pop() != Some(b'}') {
        return Err(EventError::Head);
    }
    Ok(out)
}

/// Whether a content-type is text that Lambda gets as a string.
pub fn is_text(content_type: Option<&str>) -> bool {
    let Some(content_type) = content_type else {
        return true;
    };
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media.is_empty() {
        return true;
    }
    media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
        )
}

/// The X-Ray trace header, as API Gateway passes it to functions.
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// A name/value pair, borrowed from the request when nothing was decoded.
type Pair<'a> = (Cow<'a, str>, Cow<'a, str>);

/// Name/value pairs sorted by name (stable), with the ranges of equal names.
struct Grouped<'a> {
    items: Vec<Pair<'a>>,
    groups: Vec<Range<usize>>,
}

impl<'a> Grouped<'a> {
    fn new(mut items: Vec<Pair<'a>>) -> Self {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut groups: Vec<Range<usize>> = Vec::new();
        let mut start = 0;
        for i in 1..=items.len() {
            let same = match (items.get(i), items.get(start)) {
                (Some(a), Some(b)) => a.0 == b.0,
                _ => false,
            };
            if !same {
                groups.push(start..i);
                start = i;
            }
        }
        Grouped { items, groups }
    }

    /// Request headers (pseudo-headers skipped, names lower-cased, `host`
    /// added from `:authority` when missing).
    fn headers(input: &EventInput<'a>, skip_cookie: bool) -> Self {
        let mut items: Vec<Pair<'a>> = Vec::with_capacity(input.headers.len() + 1);
        let mut authority = None;
        let mut has_host = false;
        for (name, value) in input.headers {
            if name.starts_with(':') {
                if name == ":authority" {
                    authority = Some(value.as_str());
                }
                continue;
            }
            let name = lower(name);
            if name == "host" {
                has_host = true;
            }
            if (skip_cookie && name == "cookie")
                || (name == TRACE_HEADER && !input.trace_id.is_empty())
            {
                continue;
            }
            items.push((name, Cow::Borrowed(value.as_str())));
        }
        if let (false, Some(authority)) = (has_host, authority) {
            items.push((Cow::Borrowed("host"), Cow::Borrowed(authority)));
        }
        if !input.trace_id.is_empty() {
            items.push((Cow::Borrowed(TRACE_HEADER), Cow::Borrowed(input.trace_id)));
        }
        Grouped::new(items)
    }

    fn query(query: Option<&'a str>) -> Self {
        Grouped::new(query.map(parse_query).unwrap_or_default())
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &[Pair<'a>])> {
        self.groups.iter().filter_map(|range| {
            let slice = self.items.get(range.clone())?;
            let (name, _) = slice.first()?;
            Some((name.as_ref(), slice))
        })
    }

    fn last(&self) -> LastValue<'_, 'a> {
        LastValue(self)
    }

    fn all(&self) -> AllValues<'_, 'a> {
        AllValues(self)
    }

    fn joined(&self) -> Joined<'_, 'a> {
        Joined(self)
    }
}

fn lower(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// `{"name": "last value"}`.
struct LastValue<'g, 'a>(&'g Grouped<'a>);

impl Serialize for LastValue<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.groups.len()))?;
        for (name, values) in self.0.iter() {
            if let Some((_, value)) = values.last() {
                map.serialize_entry(name, value.as_ref())?;
            }
        }
        map.end()
    }
}

/// `{"name": ["first", "second"]}`.
struct AllValues<'g, 'a>(&'g Grouped<'a>);

impl Serialize for AllValues<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.groups.len()))?;
        for (name, values) in self.0.iter() {
            map.serialize_entry(name, &Values(values))?;
        }
        map.end()
    }
}

struct Values<'s, 'a>(&'s [Pair<'a>]);

impl Serialize for Values<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (_, value) in self.0 {
            seq.serialize_element(value.as_ref())?;
        }
        seq.end()
    }
}

/// `{"name": "first,second"}` (payload 2.0).
struct Joined<'g, 'a>(&'g Grouped<'a>);

impl Serialize for Joined<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.groups.len()))?;
        for (name, values) in self.0.iter() {
            match values {
                [(_, only)] => map.serialize_entry(name, only.as_ref())?,
                _ => {
                    let joined: Vec<&str> = values.iter().map(|(_, v)| v.as_ref()).collect();
                    map.serialize_entry(name, &joined.join(","))?;
                }
            }
        }
        map.end()
    }
}

/// Path parameters as an object.
struct Params<'a>(&'a [(String, String)]);

impl Serialize for Params<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------- v1

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Event<'a, 'g> {
    resource: &'a str,
    path: &'a str,
    http_method: &'a str,
    headers: LastValue<'g, 'a>,
    multi_value_headers: AllValues<'g, 'a>,
    query_string_parameters: Option<LastValue<'g, 'a>>,
    multi_value_query_string_parameters: Option<AllValues<'g, 'a>>,
    path_parameters: Option<Params<'a>>,
    stage_variables: Option<Params<'a>>,
    request_context: V1Context<'a>,
    // `body` and `isBase64Encoded` follow: see `finish`.
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V1Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    resource_id: &'a str,
    stage: &'a str,
    request_id: &'a str,
    extended_request_id: &'a str,
    request_time: String,
    request_time_epoch: u64,
    path: &'a str,
    resource_path: &'a str,
    http_method: &'a str,
    protocol: &'a str,
    domain_name: Option<&'a str>,
    domain_prefix: Option<&'a str>,
    identity: Identity<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a RawValue>,
}

/// API Gateway's identity block; lambdagate knows the address and agent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Identity<'a> {
    cognito_identity_pool_id: Option<()>,
    account_id: Option<()>,
    api_key: Option<()>,
    api_key_id: Option<()>,
    cognito_identity_id: Option<()>,
    caller: Option<()>,
    source_ip: &'a str,
    principal_org_id: Option<()>,
    access_key: Option<()>,
    cognito_authentication_type: Option<()>,
    cognito_authentication_provider: Option<()>,
    user_arn: Option<()>,
    user_agent: Option<&'a str>,
    user: Option<()>,
}

/// The v1 event's owned parts; serializing it writes the event.
fn v1<'a>(input: &EventInput<'a>) -> V1Owned<'a> {
    V1Owned {
        headers: Grouped::headers(input, false),
        query: Grouped::query(input.query),
        context_path: staged_path(input),
        input: *input,
    }
}

struct V1Owned<'a> {
    headers: Grouped<'a>,
    query: Grouped<'a>,
    /// `requestContext.path`: the stage in front, as a REST API's.
    context_path: Cow<'a, str>,
    input: EventInput<'a>,
}

impl Serialize for V1Owned<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let input = &self.input;
        let api = input.api;
        let domain = api.domain_name.as_deref();
        let event = V1Event {
            resource: input.template,
            path: input.path,
            http_method: input.method,
            headers: self.headers.last(),
            multi_value_headers: self.headers.all(),
            query_string_parameters: (!self.query.is_empty()).then(|| self.query.last()),
            multi_value_query_string_parameters: (!self.query.is_empty()).then(|| self.query.all()),
            path_parameters: (!input.path_params.is_empty()).then_some(Params(input.path_params)),
            stage_variables: (!api.stage_variables.is_empty())
                .then_some(Params(&api.stage_variables)),
            request_context: V1Context {
                account_id: input.account_id,
                api_id: &api.api_id,
                resource_id: input.resource_id,
                stage: &api.stage,
                request_id: input.request_id,
                extended_request_id: input.request_id,
                request_time: clf_time(input.time_ms),
                request_time_epoch: input.time_ms,
                path: &self.context_path,
                resource_path: input.template,
                http_method: input.method,
                protocol: input.protocol,
                domain_name: domain,
                domain_prefix: domain.map(domain_prefix),
                identity: Identity {
                    cognito_identity_pool_id: None,
                    account_id: None,
                    api_key: None,
                    api_key_id: None,
                    cognito_identity_id: None,
                    caller: None,
                    source_ip: input.source_ip,
                    principal_org_id: None,
                    access_key: None,
                    cognito_authentication_type: None,
                    cognito_authentication_provider: None,
                    user_arn: None,
                    user_agent: last_header(input.headers, "user-agent"),
                    user: None,
                },
                authorizer: input.authorizer,
            },
        };
        event.serialize(serializer)
    }
}

// ---------------------------------------------------------------- v2

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Event<'a, 'g> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cookies: Option<Vec<&'a str>>,
    headers: Joined<'g, 'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Joined<'g, 'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_parameters: Option<Params<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stage_variables: Option<Params<'a>>,
    request_context: V2Context<'a>,
    // `body` and `isBase64Encoded` follow: see `finish`.
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    domain_name: Option<&'a str>,
    domain_prefix: Option<&'a str>,
    http: V2Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Option<&'a str>,
}

struct V2Owned<'a> {
    /// `rawPath` and `http.path`: an HTTP API's named stage is the first
    /// segment of the path it passes (Powertools strips it again).
    staged_path: Cow<'a, str>,
    headers: Grouped<'a>,
    query: Grouped<'a>,
    cookies: Vec<&'a str>,
    route_key: String,
    input: EventInput<'a>,
}

fn v2<'a>(input: &EventInput<'a>) -> V2Owned<'a> {
    let cookies = input
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    V2Owned {
        staged_path: staged_path(input),
        headers: Grouped::headers(input, true),
        query: Grouped::query(input.query),
        cookies,
        route_key: format!("{} {}", input.route_verb, input.template),
        input: *input,
    }
}

impl Serialize for V2Owned<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let input = &self.input;
        let api = input.api;
        let domain = api.domain_name.as_deref();
        let event = V2Event {
            version: "2.0",
            route_key: &self.route_key,
            raw_path: &self.staged_path,
            raw_query_string: input.query.unwrap_or_default(),
            cookies: (!self.cookies.is_empty()).then(|| self.cookies.clone()),
            headers: self.headers.joined(),
            query_string_parameters: (!self.query.is_empty()).then(|| self.query.joined()),
            path_parameters: (!input.path_params.is_empty()).then_some(Params(input.path_params)),
            stage_variables: (!api.stage_variables.is_empty())
                .then_some(Params(&api.stage_variables)),
            request_context: V2Context {
                account_id: input.account_id,
                api_id: &api.api_id,
                domain_name: domain,
                domain_prefix: domain.map(domain_prefix),
                http: V2Http {
                    method: input.method,
                    path: &self.staged_path,
                    protocol: input.protocol,
                    source_ip: input.source_ip,
                    user_agent: last_header(input.headers, "user-agent"),
                },
                request_id: input.request_id,
                route_key: &self.route_key,
                stage: &api.stage,
                time: clf_time(input.time_ms),
                time_epoch: input.time_ms,
                authorizer: input.authorizer,
            },
        };
        event.serialize(serializer)
    }
}

// ---------------------------------------------------------------- wso2

struct Wso2Owned<'a> {
    headers: Grouped<'a>,
    query: Grouped<'a>,
    input: EventInput<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wso2Event<'a, 'g> {
    headers: LastValue<'g, 'a>,
    path_parameters: Params<'a>,
    query_string_parameters: LastValue<'g, 'a>,
    http_method: &'a str,
    path: &'a str,
    // `body` follows: see `finish`.
}

fn wso2<'a>(input: &EventInput<'a>) -> Wso2Owned<'a> {
    Wso2Owned {
        headers: Grouped::headers(input, false),
        query: Grouped::query(input.query),
        input: *input,
    }
}

impl Serialize for Wso2Owned<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Wso2Event {
            headers: self.headers.last(),
            path_parameters: Params(self.input.path_params),
            query_string_parameters: self.query.last(),
            http_method: self.input.method,
            path: self.input.template,
        }
        .serialize(serializer)
    }
}

/// The path with a named stage in front, as API Gateway's invoke URL has
/// it (`/prod/users/7`); the path itself for `$default`.
fn staged_path<'a>(input: &EventInput<'a>) -> Cow<'a, str> {
    if input.api.stage_named {
        Cow::Owned(format!("/{}{}", input.api.stage, input.path))
    } else {
        Cow::Borrowed(input.path)
    }
}

fn domain_prefix(host: &str) -> &str {
    if host.starts_with('[') {
        return host;
    }
    host.split('.').next().unwrap_or(host)
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
