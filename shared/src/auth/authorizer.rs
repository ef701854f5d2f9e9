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
    pub(crate) rules: AnswerRules,
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
            && self.rules == other.rules
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
        if !valid_name || config.name == NONE {
            return Err(error(
                "name",
                format!(
                    "`{}` is not an authorizer name: use 1 to 128 letters, digits, `-` or `_` (`none` is reserved: it marks an open resource)",
                    config.name
                ),
            ));
        }
        let arn = LambdaArn::parse(&config.arn).map_err(|e| error("arn", e.to_string()))?;
        let mut identity = Vec::with_capacity(config.identity_source.len());
        for (i, text) in config.identity_source.iter().enumerate() {
            identity.push(
                IdentitySource::parse(text)
                    .map_err(|e| error(format!("identity_source[{i}]"), e))?,
            );
        }
        let v2 = format == PayloadFormat::V2;
        match config.kind {
            AuthorizerType::Token => {
                if identity.is_empty() {
                    identity.push(IdentitySource::Header("authorization".to_owned()));
                }
                if identity.len() != 1 || !identity.iter().all(IdentitySource::is_header) {
                    return Err(error(
                        "identity_source",
                        "a TOKEN authorizer reads one header, e.g. method.request.header.Authorization (use type: request for more sources)",
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
                if config.simple_responses && !v2 {
                    return Err(error(
                        "simple_responses",
                        "simple responses are an HTTP API's (payload_format v2); a REST API's authorizer answers with a policy",
                    ));
                }
            }
        }
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
            arn_text: arn.to_string(),
            identity,
            validation,
            ttl_ms: u64::from(config.ttl_seconds) * 1000,
            timeout,
            v2,
            rules: AnswerRules {
                simple_responses: config.simple_responses,
                flat_context: !v2,
            },
        })
    }
}
