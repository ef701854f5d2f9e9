//! A function's reply read as API Gateway reads it: a Lambda proxy
//! response becomes that HTTP response (each payload format with its own
//! fields), a function error or an invoker failure the gateway's error.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use lambdagate_proto::InvokeReply;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::{GatewayError, message_body};
use super::response::HttpResponse;
use crate::config::timeout::Timeout;
use crate::config::{InvocationType, PayloadFormat};
use crate::contract::Outcome;
use crate::headers::{is_forwardable, is_header_value, replace_headers, set_lambda_header};

/// What the mapping of a reply needs to know about the route.
#[derive(Clone, Copy, Debug)]
pub struct ReplyContext<'a> {
    /// The configured function ARN (named in messages).
    pub arn: &'a str,
    pub invocation_type: InvocationType,
    pub function_error_status: u16,
    pub timeout: Timeout,
    /// The gateway's request id (x-request-id), echoed in bodies.
    pub request_id: &'a str,
    /// The API's `expose_errors`: error detail in the body.
    pub expose_errors: bool,
    /// v1 (REST) replies need a `statusCode` and may not set `cookies`; v2
    /// (HTTP API) infers 200 and ignores `multiValueHeaders`.
    pub payload_format: PayloadFormat,
    /// Decode an `isBase64Encoded` body (else it reaches the client as the
    /// base64 text, as a REST API does when `Accept` is not binary).
    pub decode_base64: bool,
}

/// Maps a decoded [`InvokeReply`] to the HTTP response.
pub fn invoke_reply_to_http(ctx: &ReplyContext<'_>, reply: InvokeReply) -> HttpResponse {
    let mut response = if !reply.function_error.is_empty() {
        GatewayError::FunctionError {
            arn: ctx.arn.to_owned(),
            kind: reply.function_error,
            status: ctx.function_error_status,
            payload: reply.payload,
        }
        .to_response(ctx.request_id, ctx.expose_errors)
    } else if ctx.invocation_type == InvocationType::Event {
        HttpResponse {
            status: 202,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: message_body("accepted", ctx.request_id),
            outcome: Outcome::Accepted,
            detail: None,
        }
    } else {
        let rest = ctx.payload_format == PayloadFormat::V1;
        match proxy_response(&reply.payload, ctx.payload_format, ctx.decode_base64) {
            Ok(Some(response)) => response,
            // Not JSON at all (cut, empty, garbage): never a 200 with a
            // JSON content type. API Gateway answers 502 here too.
            Ok(None) if !is_json(&reply.payload) => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason: "the response is not JSON".to_owned(),
            }
            .to_response(ctx.request_id, ctx.expose_errors),
            // A REST API answers 502 to a reply without `statusCode`; the
            // 200 inference is an HTTP API's (payload 2.0) alone.
            Ok(None) if rest => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason:
                    "a REST (payload v1) proxy response must be a JSON object with a statusCode"
                        .to_owned(),
            }
            .to_response(ctx.request_id, ctx.expose_errors),
            Ok(None) => HttpResponse {
                status: 200,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: reply.payload,
                outcome: Outcome::Ok,
                detail: None,
            },
            Err(reason) => GatewayError::MalformedProxyResponse {
                arn: ctx.arn.to_owned(),
                reason,
            }
            .to_response(ctx.request_id, ctx.expose_errors),
        }
    };
    // Lambda's, never the function's: the access log and operators trace
    // an invocation by this id, so a function may not set it.
    set_lambda_header(
        &mut response.headers,
        "x-amzn-requestid",
        reply.lambda_request_id,
    );
    set_lambda_header(
        &mut response.headers,
        "x-amz-executed-version",
        reply.executed_version,
    );
    response
}

/// Sets the route's own headers (`HttpReply.headers`: lifecycle, trace),
/// replacing any of the same name.
pub(crate) fn add_route_headers(
    headers: &mut Vec<(String, String)>,
    route: Vec<lambdagate_proto::HttpHeader>,
) {
    let extra: Vec<(String, String)> = route.into_iter().map(|h| (h.name, h.value)).collect();
    replace_headers(headers, &extra);
}

/// Valid JSON text: UTF-8 (serde_json skips over the inside of strings
/// without checking it when it ignores a value) and well-formed.
fn is_json(payload: &[u8]) -> bool {
    std::str::from_utf8(payload).is_ok_and(|text| serde_json::from_str::<IgnoredAny>(text).is_ok())
}

/// The fields of a Lambda proxy response lambdagate reads; anything else
/// in the object is ignored.
#[derive(Deserialize)]
struct ProxyReply<'a> {
    #[serde(rename = "statusCode", default)]
    status_code: Option<Value>,
    #[serde(default)]
    headers: Option<Value>,
    #[serde(rename = "multiValueHeaders", default)]
    multi_value_headers: Option<Value>,
    #[serde(default)]
    cookies: Option<Value>,
    #[serde(borrow, default)]
    body: Option<BodyField<'a>>,
    #[serde(rename = "isBase64Encoded", default)]
    is_base64_encoded: Option<Value>,
}

/// `body`: a string, borrowed from the payload when it has no escapes, or
/// the kind of JSON value it was instead.
enum BodyField<'a> {
    Text(Cow<'a, str>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for BodyField<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BodyVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for BodyVisitor<'a> {
            type Value = BodyField<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(BodyField::Other("a number"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(BodyField::Text(Cow::Borrowed("")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(BodyField::Other("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(BodyField::Other("an array"))
            }
        }

        deserializer.deserialize_any(BodyVisitor(std::marker::PhantomData))
    }
}

/// Accepts padded and unpadded base64.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads a Lambda proxy response: `Ok(None)` when the payload is not one
/// (not a JSON object, or no `statusCode`), `Err(reason)` when it is one
/// but cannot be used. Each format reads its own fields, as API Gateway
/// does: `multiValueHeaders` is REST's (v1), `cookies` the HTTP API's (v2);
/// the other format's field is ignored. `decode_base64`: see
/// [`ReplyContext::decode_base64`].
pub fn proxy_response(
    payload: &[u8],
    format: PayloadFormat,
    decode_base64: bool,
) -> Result<Option<HttpResponse>, String> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Ok(None);
    }
    let Ok(reply) = serde_json::from_slice::<ProxyReply<'_>>(payload) else {
        return Ok(None);
    };
    let Some(status_code) = &reply.status_code else {
        return Ok(None);
    };
    let status = status_of(status_code)?;

    let rest = format == PayloadFormat::V1;
    let mut headers: Vec<(String, String)> = Vec::new();
    match reply.multi_value_headers.as_ref().filter(|_| rest) {
        None => {}
        Some(Value::Object(map)) => {
            for (name, values) in map {
                let Value::Array(values) = values else {
                    return Err(format!(
                        "multiValueHeaders.{name} must be an array of strings, got {}",
                        kind_of(values)
                    ));
                };
                for value in values {
                    let Value::String(value) = value else {
                        return Err(format!(
                            "multiValueHeaders.{name} must hold strings, got {}",
                            kind_of(value)
                        ));
                    };
                    headers.push((name.to_ascii_lowercase(), value.clone()));
                }
            }
        }
        Some(other) => {
            return Err(format!(
                "multiValueHeaders must be an object of string arrays, got {}",
                kind_of(other)
            ));
        }
    }
    if let Some(value) = &reply.headers {
        for (name, value) in header_object(value)? {
            // API Gateway: a pair given in both maps appears once.
            if !headers.iter().any(|(n, v)| *n == name && *v == value) {
                headers.push((name, value));
            }
        }
    }
    if let Some(cookies) = reply.cookies.as_ref().filter(|_| !rest) {
        headers.extend(cookie_array(cookies)?);
    }
    headers.retain(|(name, value)| is_forwardable(name) && is_header_value(value));
    if !headers.iter().any(|(n, _)| n == "content-type") {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }

    let base64 = match &reply.is_base64_encoded {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "isBase64Encoded must be true or false, got {}",
                kind_of(other)
            ));
        }
    };
    let body = match reply.body {
        None => Vec::new(),
        Some(BodyField::Other(kind)) => {
            return Err(format!("body must be a string, got {kind}"));
        }
        Some(BodyField::Text(text)) if base64 && decode_base64 => {
            let compact: Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
                Cow::Owned(text.chars().filter(|c| !c.is_ascii_whitespace()).collect())
            } else {
                Cow::Borrowed(text.as_ref())
            };
            LENIENT_BASE64.decode(compact.as_bytes()).map_err(|e| {
                format!("body is not valid base64 although isBase64Encoded is true ({e})")
            })?
        }
        Some(BodyField::Text(text)) => text.into_owned().into_bytes(),
    };
    Ok(Some(HttpResponse {
        status,
        headers,
        body,
        outcome: Outcome::Ok,
        detail: None,
    }))
}

/// A reply's `headers`: an object of strings, names lower-cased.
pub(crate) fn header_object(value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Object(map) = value else {
        return Err(format!(
            "headers must be an object of strings, got {}",
            kind_of(value)
        ));
    };
    map.iter()
        .map(|(name, value)| match value {
            Value::String(value) => Ok((name.to_ascii_lowercase(), value.clone())),
            other => Err(format!(
                "headers.{name} must be a string, got {}",
                kind_of(other)
            )),
        })
        .collect()
}

/// A reply's `cookies`: an array of strings, as `set-cookie` headers.
pub(crate) fn cookie_array(value: &Value) -> Result<Vec<(String, String)>, String> {
    let Value::Array(cookies) = value else {
        return Err(format!(
            "cookies must be an array of strings, got {}",
            kind_of(value)
        ));
    };
    cookies
        .iter()
        .map(|cookie| match cookie {
            Value::String(cookie) => Ok(("set-cookie".to_owned(), cookie.clone())),
            other => Err(format!("cookies must hold strings, got {}", kind_of(other))),
        })
        .collect()
}

pub(crate) fn status_of(value: &Value) -> Result<u16, String> {
    let number = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=65_535.0).contains(f))
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    // Not 1xx: those are informational, never a final response. Envoy
    // cannot send one as a local reply (it asserts in debug builds and
    // leaves the client waiting for the real response otherwise).
    match number.and_then(|n| u16::try_from(n).ok()) {
        Some(code @ 200..=599) => Ok(code),
        _ => Err(format!(
            "statusCode must be an integer from 200 to 599, got {}",
            short(value)
        )),
    }
}

pub(crate) fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) | Value::Number(_) => value.to_string(),
        Value::String(_) => short(value),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

/// A value for a message, cut to a readable length.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 64 {
        return text;
    }
    let cut: String = text.chars().take(61).collect();
    format!("{cut}...")
}
