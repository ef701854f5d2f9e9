//! Identity sources: where an authorizer's identity comes from, in API
//! Gateway's own expressions (a REST API's `method.request.header.NAME`
//! and an HTTP API's `$request.header.NAME` are both understood).

use std::fmt;

use crate::headers::last_header;
use crate::url::parse_query;

/// One identity source, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// A request header (name lower-cased, as Envoy hands them over).
    Header(String),
    /// A query string parameter (its first value, decoded).
    Query(String),
    /// One of the API's stage variables.
    StageVariable(String),
    /// A context variable of the request.
    Context(ContextVariable),
}

/// The context variables an identity source may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextVariable {
    RouteKey,
    HttpMethod,
    Path,
    ResourcePath,
    Stage,
    SourceIp,
}

const CONTEXT_VARIABLES: &[(&str, ContextVariable)] = &[
    ("routeKey", ContextVariable::RouteKey),
    ("httpMethod", ContextVariable::HttpMethod),
    ("path", ContextVariable::Path),
    ("resourcePath", ContextVariable::ResourcePath),
    ("stage", ContextVariable::Stage),
    ("identity.sourceIp", ContextVariable::SourceIp),
    ("http.sourceIp", ContextVariable::SourceIp),
];

/// What is allowed, for configuration errors.
pub const IDENTITY_SOURCE_CHOICES: &str = "method.request.header.NAME, \
     method.request.querystring.NAME, stageVariables.NAME or context.VARIABLE \
     (or an HTTP API's $request.header.NAME, $request.querystring.NAME, \
     $stageVariables.NAME, $context.VARIABLE); context variables: routeKey, \
     httpMethod, path, resourcePath, stage, identity.sourceIp";

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl IdentitySource {
    /// Parses one expression; `Err` says what is allowed.
    pub fn parse(text: &str) -> Result<Self, String> {
        let unknown =
            || format!("`{text}` is not an identity source: use {IDENTITY_SOURCE_CHOICES}");
        let request = text
            .strip_prefix("method.request.")
            .or_else(|| text.strip_prefix("$request."));
        if let Some(rest) = request {
            if let Some(name) = rest.strip_prefix("header.") {
                return if is_token(name) {
                    Ok(IdentitySource::Header(name.to_ascii_lowercase()))
                } else {
                    Err(unknown())
                };
            }
            if let Some(name) = rest.strip_prefix("querystring.") {
                return if name.is_empty() {
                    Err(unknown())
                } else {
                    Ok(IdentitySource::Query(name.to_owned()))
                };
            }
            return Err(unknown());
        }
        if let Some(name) = text
            .strip_prefix("stageVariables.")
            .or_else(|| text.strip_prefix("$stageVariables."))
        {
            return if name.is_empty() {
                Err(unknown())
            } else {
                Ok(IdentitySource::StageVariable(name.to_owned()))
            };
        }
        if let Some(name) = text
            .strip_prefix("context.")
            .or_else(|| text.strip_prefix("$context."))
        {
            return CONTEXT_VARIABLES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| IdentitySource::Context(*v))
                .ok_or_else(unknown);
        }
        Err(unknown())
    }

    pub fn is_header(&self) -> bool {
        matches!(self, IdentitySource::Header(_))
    }
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Header(name) => write!(f, "header `{name}`"),
            IdentitySource::Query(name) => write!(f, "query parameter `{name}`"),
            IdentitySource::StageVariable(name) => write!(f, "stage variable `{name}`"),
            IdentitySource::Context(v) => {
                let name = CONTEXT_VARIABLES
                    .iter()
                    .find(|(_, c)| c == v)
                    .map_or("?", |(n, _)| *n);
                write!(f, "context variable `{name}`")
            }
        }
    }
}

/// What identity sources are read from.
pub struct IdentityInput<'a> {
    pub headers: &'a [(String, String)],
    pub query: Option<&'a str>,
    pub stage_variables: &'a [(String, String)],
    pub route_key: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub resource_path: &'a str,
    pub stage: &'a str,
    pub source_ip: &'a str,
}

impl IdentitySource {
    /// This source's value in the request; `None` when it is missing or
    /// empty (API Gateway then answers 401 without invoking anything).
    pub fn value(&self, input: &IdentityInput<'_>) -> Option<String> {
        let value = match self {
            IdentitySource::Header(name) => last_header(input.headers, name).map(str::to_owned),
            IdentitySource::Query(name) => input.query.and_then(|q| {
                parse_query(q)
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.into_owned())
            }),
            IdentitySource::StageVariable(name) => input
                .stage_variables
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone()),
            IdentitySource::Context(variable) => Some(
                match variable {
                    ContextVariable::RouteKey => input.route_key,
                    ContextVariable::HttpMethod => input.method,
                    ContextVariable::Path => input.path,
                    ContextVariable::ResourcePath => input.resource_path,
                    ContextVariable::Stage => input.stage,
                    ContextVariable::SourceIp => input.source_ip,
                }
                .to_owned(),
            ),
        };
        value.filter(|v| !v.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_parse_and_unknown_ones_say_what_is_allowed() {
        for (text, source) in [
            (
                "method.request.header.Authorization",
                IdentitySource::Header("authorization".into()),
            ),
            (
                "$request.header.X-Token",
                IdentitySource::Header("x-token".into()),
            ),
            (
                "method.request.querystring.key",
                IdentitySource::Query("key".into()),
            ),
            (
                "$request.querystring.key",
                IdentitySource::Query("key".into()),
            ),
            (
                "stageVariables.tier",
                IdentitySource::StageVariable("tier".into()),
            ),
            (
                "$context.routeKey",
                IdentitySource::Context(ContextVariable::RouteKey),
            ),
            (
                "context.identity.sourceIp",
                IdentitySource::Context(ContextVariable::SourceIp),
            ),
        ] {
            assert_eq!(IdentitySource::parse(text), Ok(source), "{text}");
        }
        for bad in [
            "Authorization",
            "method.request.header.",
            "method.request.path.id",
            "$context.nothing",
            "method.request.header.bad name",
        ] {
            let e = IdentitySource::parse(bad).unwrap_err();
            assert!(
                e.contains(bad) && e.contains("method.request.header.NAME"),
                "{e}"
            );
        }
    }

    #[test]
    fn values_come_from_the_request_and_empty_ones_are_missing() {
        let headers = vec![
            ("authorization".to_owned(), "Bearer a".to_owned()),
            ("x-empty".to_owned(), " ".to_owned()),
        ];
        let stage_variables = vec![("tier".to_owned(), "gold".to_owned())];
        let input = IdentityInput {
            headers: &headers,
            query: Some("key=a%20b&key=2"),
            stage_variables: &stage_variables,
            route_key: "GET /pets",
            method: "GET",
            path: "/pets",
            resource_path: "/pets",
            stage: "$default",
            source_ip: "10.0.0.1",
        };
        let value = |text: &str| IdentitySource::parse(text).unwrap().value(&input);
        assert_eq!(
            value("$request.header.Authorization").as_deref(),
            Some("Bearer a")
        );
        assert_eq!(value("$request.header.x-empty"), None);
        assert_eq!(value("$request.header.missing"), None);
        assert_eq!(value("$request.querystring.key").as_deref(), Some("a b"));
        assert_eq!(value("$stageVariables.tier").as_deref(), Some("gold"));
        assert_eq!(value("$context.routeKey").as_deref(), Some("GET /pets"));
    }
}
