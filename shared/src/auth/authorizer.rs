//! An authorizer compiled from its configuration: checked once, then
//! shared by every resource it guards.

use std::time::Duration;

use crate::config::arn::LambdaArn;
use crate::config::timeout::Timeout;
use crate::config::{
    AuthorizerConfig, AuthorizerType, MAX_AUTHORIZER_TIMEOUT_SECONDS, MAX_AUTHORIZER_TTL_SECONDS,
    PayloadFormat,
};

use super::identity::IdentitySource;
use super::policy::AnswerRules;

/// The name that turns an API's default authorizer off for one resource.
pub const NONE: &str = "none";

/// A compiled authorizer.
#[derive(Clone, Debug)]
pub struct Authorizer {
    pub(crate) name: String,
    pub(crate) kind: AuthorizerType,
    pub(crate) arn_text: String,
    pub(crate) identity: Vec<IdentitySource>,
    pub(crate) validation: Option<regex_lite::Regex>,
    pub(crate) ttl_ms: u64,
    pub(crate) timeout: Timeout,
    /// The REQUEST event's shape: an HTTP API's 2.0 (`true`) or a REST
    /// API's.
    pub(crate) v2: bool,
    /// An HTTP API's REQUEST authorizer with payload version 1.0: the REST
    /// shape plus `version`, `identitySource` and `authorizationToken`.
    pub(crate) http_api_1_0: bool,
    pub(crate) rules: AnswerRules,
    /// JWT: the header Envoy's `jwt_authn` writes the verified payload to.
    pub(crate) jwt_header: Option<String>,
    /// JWT: the accepted `aud` values (empty: any).
    pub(crate) audiences: Vec<String>,
}

impl PartialEq for Authorizer {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.arn_text == other.arn_text
            && self.identity == other.identity
            && self.validation.as_ref().map(regex_lite::Regex::as_str)
                == other.validation.as_ref().map(regex_lite::Regex::as_str)
            && self.ttl_ms == other.ttl_ms
            && self.timeout == other.timeout
            && self.v2 == other.v2
            && self.http_api_1_0 == other.http_api_1_0
            && self.rules == other.rules
            && self.jwt_header == other.jwt_header
            && self.audiences == other.audiences
    }
}

impl Eq for Authorizer {}

/// A field of an authorizer that is wrong: the field (under
/// `authorizers[i]`) and what is allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthorizerError {
    pub field: String,
    pub message: String,
}

fn error(field: impl Into<String>, message: impl Into<String>) -> AuthorizerError {
    AuthorizerError {
        field: field.into(),
        message: message.into(),
    }
}

/// The request header `jwt_authn` writes a verified payload of this
/// issuer to (base64url JSON): one per issuer, since Envoy verifies a
/// token with the provider of its `iss`. Render strips any a client sends
/// before `jwt_authn` runs; the filter reads it and removes it.
pub fn jwt_payload_header(issuer: &str) -> String {
    format!(
        "{JWT_HEADER_PREFIX}{}",
        crate::ids::base36_id(crate::ids::fnv1a(&[issuer]), 10)
    )
}

/// Every JWT payload header starts so.
pub const JWT_HEADER_PREFIX: &str = "x-lambdagate-jwt-";

impl Authorizer {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn arn(&self) -> &str {
        &self.arn_text
    }

    /// Checks one authorizer of an API with this payload format.
    pub fn compile(
        config: &AuthorizerConfig,
        format: PayloadFormat,
    ) -> Result<Authorizer, AuthorizerError> {
        let valid_name = !config.name.is_empty()
            && config.name.len() <= 128
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if config.kind != AuthorizerType::Jwt
            && (config.issuer.is_some()
                || config.jwks_uri.is_some()
                || !config.audiences.is_empty())
        {
            return Err(error(
                "type",
                "issuer, audiences and jwks_uri belong to a JWT authorizer (type: jwt)",
            ));
        }
        if !valid_name || config.name == NONE {
            return Err(error(
                "name",
                format!(
                    "`{}` is not an authorizer name: use 1 to 128 letters, digits, `-` or `_` (`none` is reserved: it marks an open resource)",
                    config.name
                ),
            ));
        }
        let arn_text = if config.kind == AuthorizerType::Jwt {
            check_jwt(config)?;
            String::new()
        } else {
            LambdaArn::parse(&config.arn)
                .map_err(|e| error("arn", e.to_string()))?
                .to_string()
        };
        let mut identity = Vec::with_capacity(config.identity_source.len());
        for (i, text) in config.identity_source.iter().enumerate() {
            identity.push(
                IdentitySource::parse(text)
                    .map_err(|e| error(format!("identity_source[{i}]"), e))?,
            );
        }
        let v2 = format == PayloadFormat::V2;
        match config.kind {
            AuthorizerType::Token | AuthorizerType::Jwt => {
                if identity.is_empty() {
                    identity.push(IdentitySource::Header("authorization".to_owned()));
                }
                if identity.len() != 1 || !identity.iter().all(IdentitySource::is_header) {
                    return Err(error(
                        "identity_source",
                        "a TOKEN or JWT authorizer reads one header, e.g. method.request.header.Authorization (use type: request for more sources)",
                    ));
                }
                if config.kind == AuthorizerType::Jwt && config.validation_expression.is_some() {
                    return Err(error(
                        "validation_expression",
                        "only a TOKEN authorizer has a validation expression",
                    ));
                }
                if config.simple_responses {
                    return Err(error(
                        "simple_responses",
                        "only a REQUEST authorizer of an HTTP API (payload_format v2) may answer with simple responses",
                    ));
                }
            }
            AuthorizerType::Request => {
                if config.validation_expression.is_some() {
                    return Err(error(
                        "validation_expression",
                        "only a TOKEN authorizer has a validation expression",
                    ));
                }
                if identity.is_empty() && config.ttl_seconds > 0 {
                    return Err(error(
                        "identity_source",
                        "a cached REQUEST authorizer needs at least one identity source (its decisions are cached per identity); add one, or set ttl_seconds: 0",
                    ));
                }
                if config.simple_responses && config.payload_version.as_deref() == Some("1.0") {
                    return Err(error(
                        "simple_responses",
                        "simple responses need payload_version 2.0 (API Gateway's rule)",
                    ));
                }
                if config.simple_responses && !v2 {
                    return Err(error(
                        "simple_responses",
                        "simple responses are an HTTP API's (payload_format v2); a REST API's authorizer answers with a policy",
                    ));
                }
            }
        }
        let http_api_1_0 = match config.payload_version.as_deref() {
            None => false,
            Some(version) if !(v2 && config.kind == AuthorizerType::Request) => {
                return Err(error(
                    "payload_version",
                    format!(
                        "`{version}`: only a REQUEST authorizer of an HTTP API (payload_format v2) chooses its event's format"
                    ),
                ));
            }
            Some("2.0") => false,
            Some("1.0") => true,
            Some(other) => {
                return Err(error(
                    "payload_version",
                    format!(
                        "`{other}` is not a payload version: use \"1.0\" or \"2.0\" (the default)"
                    ),
                ));
            }
        };
        let validation = match &config.validation_expression {
            None => None,
            Some(expression) => Some(
                regex_lite::Regex::new(&format!("^(?:{expression})$")).map_err(|e| {
                    error(
                        "validation_expression",
                        format!("`{expression}` is not a regular expression: {e}"),
                    )
                })?,
            ),
        };
        if config.ttl_seconds > MAX_AUTHORIZER_TTL_SECONDS {
            return Err(error(
                "ttl_seconds",
                format!(
                    "{} is out of range: allowed 0 (no caching) to {MAX_AUTHORIZER_TTL_SECONDS} seconds (default 300)",
                    config.ttl_seconds
                ),
            ));
        }
        if !(1..=MAX_AUTHORIZER_TIMEOUT_SECONDS).contains(&config.timeout_seconds) {
            return Err(error(
                "timeout_seconds",
                format!(
                    "{} is out of range: allowed 1 to {MAX_AUTHORIZER_TIMEOUT_SECONDS} seconds (default 10)",
                    config.timeout_seconds
                ),
            ));
        }
        let timeout = Timeout::new(Duration::from_secs(u64::from(config.timeout_seconds)))
            .map_err(|e| error("timeout_seconds", e.to_string()))?;
        Ok(Authorizer {
            name: config.name.clone(),
            kind: config.kind,
            arn_text,
            identity,
            validation,
            ttl_ms: u64::from(config.ttl_seconds) * 1000,
            timeout,
            v2,
            http_api_1_0,
            rules: AnswerRules {
                simple_responses: config.simple_responses,
                flat_context: !v2,
            },
            jwt_header: (config.kind == AuthorizerType::Jwt)
                .then(|| jwt_payload_header(config.issuer.as_deref().unwrap_or_default())),
            audiences: config.audiences.clone(),
        })
    }
}

/// A JWT authorizer's own fields; a TOKEN or REQUEST one must not have them.
fn check_jwt(config: &AuthorizerConfig) -> Result<(), AuthorizerError> {
    if !config.arn.is_empty() {
        return Err(error(
            "arn",
            "a JWT authorizer invokes no function: Envoy verifies the token against the issuer's keys (remove arn)",
        ));
    }
    match config.issuer.as_deref() {
        Some(issuer) if !issuer.trim().is_empty() => {}
        _ => {
            return Err(error(
                "issuer",
                "required for a JWT authorizer: the `iss` its tokens must carry, e.g. https://auth.example.com/",
            ));
        }
    }
    let Some(uri) = config.jwks_uri.as_deref() else {
        return Err(error(
            "jwks_uri",
            "required for a JWT authorizer: the URL of the issuer's JWKS, e.g. https://auth.example.com/.well-known/jwks.json",
        ));
    };
    if jwks_host(uri).is_none() {
        return Err(error(
            "jwks_uri",
            format!("`{uri}` is not an http:// or https:// URL with a host"),
        ));
    }
    if config.audiences.iter().any(|a| a.trim().is_empty()) {
        return Err(error("audiences", "an audience is empty"));
    }
    Ok(())
}

/// `(https, host, port, path)` of a JWKS URL.
pub fn jwks_host(uri: &str) -> Option<(bool, String, u16, String)> {
    let (https, rest) = if let Some(rest) = uri.strip_prefix("https://") {
        (true, rest)
    } else {
        (false, uri.strip_prefix("http://")?)
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            (host, port.parse::<u16>().ok()?)
        }
        _ => (authority, if https { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b));
    valid.then(|| (https, host.to_owned(), port, path.to_owned()))
}
