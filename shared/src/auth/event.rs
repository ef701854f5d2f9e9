//! What an authorizer function receives, in API Gateway's shapes, and
//! what the integration then sees of its answer.
//!
//! - TOKEN: `{type: "TOKEN", authorizationToken, methodArn}`.
//! - REQUEST of a REST API: the proxy event (payload 1.0) without its
//!   body, with `type: "REQUEST"` and `methodArn`.
//! - REQUEST of an HTTP API (payload 2.0): the 2.0 event without its
//!   body, with `type: "REQUEST"`, `routeArn` and `identitySource`.
//! - REQUEST of an HTTP API with payload version 1.0: the REST shape plus
//!   `version: "1.0"`, and `identitySource` and `authorizationToken`
//!   (the identity values joined by commas).

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::policy::Grant;
use crate::config::PayloadFormat;
use crate::request::event::{self, EventError, EventInput};

/// API Gateway's method ARN for a request:
/// `arn:{partition}:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}`,
/// the path relative to the API (its base path taken off) without its
/// leading `/`.
pub fn method_arn(
    partition: &str,
    region: &str,
    account: &str,
    input: &EventInput<'_>,
    context: &str,
) -> String {
    let inner = if context == "/" {
        input.path
    } else {
        input.path.strip_prefix(context).unwrap_or(input.path)
    };
    format!(
        "arn:{partition}:execute-api:{region}:{account}:{}/{}/{}/{}",
        input.api.api_id,
        input.api.stage,
        input.method,
        inner.trim_start_matches('/')
    )
}

/// A TOKEN authorizer's event.
pub fn token_event(token: &str, method_arn: &str) -> Vec<u8> {
    json!({"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn})
        .to_string()
        .into_bytes()
}

/// A REQUEST authorizer's event (`input.body` is not used).
pub fn request_event(
    input: &EventInput<'_>,
    v2: bool,
    http_api_1_0: bool,
    method_arn: &str,
    identity: &[String],
) -> Result<Vec<u8>, EventError> {
    let v2 = v2 && !http_api_1_0;
    let input = EventInput {
        body: b"",
        authorizer: None,
        ..*input
    };
    let format = if v2 {
        PayloadFormat::V2
    } else {
        PayloadFormat::V1
    };
    // The integration's event without its body fields.
    let mut json = event::head(format, &input)?.ok_or(EventError::Head)?.json;
    json.push(b'}');
    let mut event: Map<String, Value> = serde_json::from_slice(&json)?;
    event.insert("type".into(), "REQUEST".into());
    if v2 {
        event.insert("routeArn".into(), method_arn.into());
        event.insert("identitySource".into(), identity.into());
    } else {
        event.insert("methodArn".into(), method_arn.into());
    }
    if http_api_1_0 {
        let joined = identity.join(",");
        event.insert("version".into(), "1.0".into());
        event.insert("identitySource".into(), joined.clone().into());
        event.insert("authorizationToken".into(), joined.into());
    }
    Ok(serde_json::to_vec(&event)?)
}

/// `requestContext.authorizer` of the integration's event: a REST API's
/// holds `principalId` and the context with every value as text (API
/// Gateway stringifies them); an HTTP API's holds the context, typed, under
/// `lambda`.
pub fn integration_authorizer(
    grant: &Grant,
    format: PayloadFormat,
) -> Result<Box<RawValue>, serde_json::Error> {
    let value = if format == PayloadFormat::V2 {
        json!({"lambda": grant.context})
    } else {
        let mut map = Map::new();
        for (key, value) in &grant.context {
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            map.insert(key.clone(), Value::String(text));
        }
        if let Some(principal) = &grant.principal_id {
            map.insert("principalId".into(), principal.clone().into());
        }
        Value::Object(map)
    };
    serde_json::value::to_raw_value(&value)
}
