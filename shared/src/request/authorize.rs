//! A routed request before its resource's authorizer (see `auth`): the
//! identity read, the cache asked, the authorizer invoked through the
//! invoker like any function, its answer judged.

use std::sync::Arc;

use lambdagate_proto::{ErrorKind, InvokeReply};
use prost::Message as _;

use crate::auth::event::{integration_authorizer, method_arn, request_event, token_event};
use crate::auth::identity::IdentityInput;
use crate::auth::{AuthCache, Authorizer, Grant, Verdict};
use crate::config::{AuthorizerType, InvocationType};
use crate::contract::Failure;
use crate::reply::error::{GatewayError, GrpcStatus};
use crate::reply::response::HttpResponse;
use crate::request::plan::{Invoke, RoutePlan};

/// What to do about a request's authorizer.
#[derive(Debug)]
pub enum AuthStep {
    /// No authorizer, or a cached answer allows the request: go on.
    Proceed,
    /// Answer now: 401 (an identity source is missing, the token fails the
    /// validation expression) or 403 (a cached answer denies).
    Respond(HttpResponse),
    /// Invoke the authorizer, then hand its reply to
    /// [`RoutePlan::on_authorizer_reply`].
    Call(Box<Invoke>),
}

/// The invoker's failures that are the operator's to fix (the client gets
/// AUTHORIZER_CONFIGURATION_ERROR); any other is AUTHORIZER_FAILURE.
fn is_configuration(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::FunctionNotFound
            | ErrorKind::AccessDenied
            | ErrorKind::NotAllowed
            | ErrorKind::CredentialsUnavailable
            | ErrorKind::InvalidConfig
    )
}

/// A function error's `errorMessage`, if its payload has one.
fn error_message(payload: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    value
        .get("errorMessage")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
}

impl RoutePlan {
    fn authorizer(&self) -> Option<Arc<Authorizer>> {
        self.target.authorizer.clone()
    }

    fn method_arn(&self) -> String {
        let target = &self.target;
        method_arn(
            target.arn.partition(),
            target.arn.region(),
            target.arn.account(),
            &self.event_input(b""),
            &target.context,
        )
    }

    /// Reads the identity, asks the cache, or says to invoke the
    /// authorizer. The cache is this worker's.
    pub fn authorize(&mut self, cache: &mut AuthCache) -> AuthStep {
        let Some(authorizer) = self.authorizer() else {
            return AuthStep::Proceed;
        };
        if let Some(header) = &authorizer.jwt_header {
            return match self.authorize_jwt(&authorizer, header) {
                Ok(()) => AuthStep::Proceed,
                Err(response) => AuthStep::Respond(response),
            };
        }
        let target = Arc::clone(&self.target);
        let route_key = format!("{} {}", target.verb.as_str(), target.template);
        let input = IdentityInput {
            headers: &self.headers,
            query: self.query.as_deref(),
            stage_variables: &target.api.stage_variables,
            route_key: &route_key,
            method: &self.method,
            path: &self.path,
            resource_path: &target.template,
            stage: &target.api.stage,
            source_ip: &self.source_ip,
        };
        let mut values = Vec::with_capacity(authorizer.identity.len());
        for source in &authorizer.identity {
            match source.value(&input) {
                Some(value) => values.push(value),
                None => {
                    return AuthStep::Respond(self.error_response(&GatewayError::Unauthorized {
                        authorizer: authorizer.name.clone(),
                        reason: format!("the identity source {source} is missing"),
                    }));
                }
            }
        }
        if let (Some(expression), Some(token)) = (&authorizer.validation, values.first())
            && !expression.is_match(token)
        {
            return AuthStep::Respond(self.error_response(&GatewayError::Unauthorized {
                authorizer: authorizer.name.clone(),
                reason: "the token does not match the validation expression".to_owned(),
            }));
        }
        // Per API and authorizer, then the identity's values (a NUL never
        // occurs in a header or a decoded parameter that Envoy passes).
        let mut key = format!("{}\0{}", target.api_name, authorizer.name);
        for value in &values {
            key.push('\0');
            key.push_str(value);
        }
        if let Some(grant) = cache.get(&key, self.now_ms) {
            return match self.decide(&authorizer, &grant) {
                Ok(()) => AuthStep::Proceed,
                Err(response) => AuthStep::Respond(response),
            };
        }
        let arn = self.method_arn();
        let payload = match authorizer.kind {
            AuthorizerType::Token => token_event(values.first().map_or("", String::as_str), &arn),
            // (A JWT authorizer returned above.)
            AuthorizerType::Request | AuthorizerType::Jwt => {
                match request_event(
                    &self.event_input(b""),
                    authorizer.v2,
                    authorizer.http_api_1_0,
                    &arn,
                    &values,
                ) {
                    Ok(payload) => payload,
                    Err(_) => {
                        return AuthStep::Respond(self.error_response(&GatewayError::EventBuild));
                    }
                }
            }
        };
        self.auth_key = Some(key);
        AuthStep::Call(Box::new(Invoke {
            endpoint: target.endpoint.clone(),
            function_arn: authorizer.arn_text.clone(),
            // Small and body-less: the whole event.
            payload,
            event: None,
            timeout_ms: authorizer.timeout.as_millis(),
            invocation_type: InvocationType::RequestResponse,
            grpc_timeout: authorizer.timeout.invoker_deadline(),
            request_id: self.request_id.clone(),
            trace_id: self.trace_id.clone(),
            // The authorizer is never counted against a plan.
            usage: None,
        }))
    }

    /// A JWT authorizer: Envoy's `jwt_authn` verified the token (signature
    /// from the issuer's keys, `iss`, `aud`, `exp`, `nbf`) and left its
    /// payload in the authorizer's header; no payload means no valid token
    /// (401). Then the resource's scopes (403), and the claims for the event.
    fn authorize_jwt(&mut self, authorizer: &Authorizer, header: &str) -> Result<(), HttpResponse> {
        let payload = crate::headers::last_header(&self.headers, header).map(str::to_owned);
        // Envoy's payload headers are the gateway's, not the function's.
        self.headers
            .retain(|(name, _)| !name.starts_with(crate::auth::authorizer::JWT_HEADER_PREFIX));
        let claims = payload.as_deref().and_then(jwt_claims);
        let Some(claims) = claims else {
            return Err(self.error_response(&GatewayError::Unauthorized {
                authorizer: authorizer.name.clone(),
                reason: "no valid JWT: missing, expired or not yet valid, another issuer or audience, or a bad signature (Envoy's jwt_authn log says which)".to_owned(),
            }));
        };
        // Envoy checked the issuer's audiences together (one provider per
        // issuer); this authorizer's own are checked here.
        if !authorizer.audiences.is_empty() {
            let audiences: Vec<&str> = match claims.get("aud") {
                Some(serde_json::Value::String(a)) => vec![a.as_str()],
                Some(serde_json::Value::Array(items)) => {
                    items.iter().filter_map(|a| a.as_str()).collect()
                }
                _ => Vec::new(),
            };
            if !authorizer
                .audiences
                .iter()
                .any(|a| audiences.contains(&a.as_str()))
            {
                return Err(self.error_response(&GatewayError::Unauthorized {
                    authorizer: authorizer.name.clone(),
                    reason: "the JWT is for another audience".to_owned(),
                }));
            }
        }
        let scopes = token_scopes(&claims);
        if !self.target.scopes.is_empty() && !self.target.scopes.iter().any(|s| scopes.contains(s))
        {
            return Err(self.error_response(&GatewayError::AccessDenied {
                authorizer: authorizer.name.clone(),
                principal: claims
                    .get("sub")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_owned(),
                method_arn: format!(
                    "{} (needs one of the scopes {})",
                    self.method_arn(),
                    self.target.scopes.join(", ")
                ),
                explicit: false,
                rest: self.target.payload_format != crate::config::PayloadFormat::V2,
            }));
        }
        match jwt_authorizer_json(&claims, &scopes, self.target.payload_format) {
            Ok(value) => {
                self.authorization = Some(value);
                Ok(())
            }
            Err(_) => Err(self.error_response(&GatewayError::EventBuild)),
        }
    }

    /// Judges the authorizer's reply (the `InvokeReply` bytes, or the
    /// call's non-OK status) and caches its answer; `Err` is the client's
    /// response.
    pub fn on_authorizer_reply(
        &mut self,
        result: Result<&[u8], GrpcStatus>,
        cache: &mut AuthCache,
    ) -> Result<(), HttpResponse> {
        let Some(authorizer) = self.authorizer() else {
            return Ok(());
        };
        let name = authorizer.name.clone();
        let failure = |reason: String| GatewayError::AuthorizerFailure {
            authorizer: name.clone(),
            reason,
        };
        let reply = match result {
            Err(status) => {
                let e = GatewayError::from_grpc_status(status, authorizer.timeout);
                return Err(self.error_response(&failure(e.to_string())));
            }
            Ok(bytes) => match InvokeReply::decode(bytes) {
                Ok(reply) => reply,
                Err(_) => {
                    let e = failure("the invoker's reply could not be read".to_owned());
                    return Err(self.error_response(&e));
                }
            },
        };
        if let Some(f) = Failure::from_reply(&reply) {
            let reason =
                GatewayError::from_failure(f.clone(), &authorizer.arn_text, authorizer.timeout)
                    .to_string();
            let e = if is_configuration(f.kind) {
                GatewayError::AuthorizerConfiguration {
                    authorizer: name.clone(),
                    reason,
                }
            } else {
                failure(reason)
            };
            return Err(self.error_response(&e));
        }
        if !reply.function_error.is_empty() {
            // API Gateway's convention: an authorizer that fails with the
            // message `Unauthorized` means 401, not a failure.
            let message = error_message(&reply.payload);
            let e = if message.as_deref() == Some("Unauthorized") {
                GatewayError::Unauthorized {
                    authorizer: name.clone(),
                    reason: "the authorizer answered Unauthorized".to_owned(),
                }
            } else {
                failure(format!(
                    "the function failed ({}): {}",
                    reply.function_error,
                    message.as_deref().unwrap_or("no errorMessage")
                ))
            };
            return Err(self.error_response(&e));
        }
        let grant = match Grant::parse(&reply.payload, authorizer.rules) {
            Ok(grant) => Arc::new(grant),
            Err(reason) => {
                let e = failure(format!("its answer cannot be used: {reason}"));
                return Err(self.error_response(&e));
            }
        };
        if let Some(key) = self.auth_key.take() {
            cache.put(key, Arc::clone(&grant), authorizer.ttl_ms, self.now_ms);
        }
        self.decide(&authorizer, &grant)
    }

    /// The answer's verdict for this request; an allowed request's event
    /// will carry the principal and context.
    fn decide(&mut self, authorizer: &Authorizer, grant: &Grant) -> Result<(), HttpResponse> {
        let arn = self.method_arn();
        match grant.verdict(&arn) {
            Verdict::Allow => match integration_authorizer(grant, self.target.payload_format) {
                Ok(value) => {
                    self.authorization = Some(value);
                    self.usage_identifier_key = grant.usage_identifier_key.clone();
                    Ok(())
                }
                Err(_) => Err(self.error_response(&GatewayError::EventBuild)),
            },
            Verdict::Deny { explicit } => Err(self.error_response(&GatewayError::AccessDenied {
                authorizer: authorizer.name.clone(),
                principal: grant.principal_id.clone().unwrap_or_default(),
                method_arn: arn,
                explicit,
                rest: self.target.payload_format != crate::config::PayloadFormat::V2,
            })),
        }
    }
}

/// The claims of a verified payload (base64url JSON, as `jwt_authn`
/// forwards it).
fn jwt_claims(header: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim().trim_end_matches('='))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// The token's scopes: `scope` (space-separated, OAuth 2.0) or `scp` (a
/// list or a string).
fn token_scopes(claims: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
    let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    match claims.get("scope").or_else(|| claims.get("scp")) {
        Some(serde_json::Value::String(s)) => words(s),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// `requestContext.authorizer` for a JWT: an HTTP API's
/// `{"jwt": {"claims": {...}, "scopes": [...]}}`, a REST API's
/// `{"claims": {...}}`; claim values as text, as API Gateway passes them.
fn jwt_authorizer_json(
    claims: &serde_json::Map<String, serde_json::Value>,
    scopes: &[String],
    format: crate::config::PayloadFormat,
) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
    let text: serde_json::Map<String, serde_json::Value> = claims
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), serde_json::Value::String(value))
        })
        .collect();
    let value = if format == crate::config::PayloadFormat::V2 {
        serde_json::json!({"jwt": {"claims": text, "scopes": if scopes.is_empty() { serde_json::Value::Null } else { serde_json::json!(scopes) }}})
    } else {
        serde_json::json!({"claims": text})
    };
    serde_json::value::to_raw_value(&value)
}

#[cfg(test)]
#[path = "authorize_tests.rs"]
mod tests;
