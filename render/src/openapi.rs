//! `lambdagate openapi`: an OpenAPI 3 document per API (the seed's
//! "publish"), for a developer portal such as Swagger UI or Redoc to show
//! and "try it" against the gateway.

use lambdagate_core::config::{AuthorizerConfig, AuthorizerType, Lifecycle};
use serde_json::{Map, Value, json};

use crate::definition::{ApiDefinition, Gateway};

const ALL_VERBS: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options"];

/// The OpenAPI 3.0 document of one API served at `gateway`.
pub fn document(api: &ApiDefinition, gateway: &Gateway) -> Value {
    let a = &api.api;
    let mut paths: Map<String, Value> = Map::new();
    for resource in &a.resources {
        // OpenAPI has no greedy parameter: `{proxy+}` becomes `{proxy}`,
        // and the description says it spans segments.
        let path = resource.uri_template.replace("+}", "}");
        let params: Vec<(String, bool)> = resource
            .uri_template
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}').map(str::to_owned))
            .map(|p| match p.strip_suffix('+') {
                Some(name) => (name.to_owned(), true),
                None => (p, false),
            })
            .collect();
        let guard = a.authorizer_of(resource);
        let verb = resource.verb.to_ascii_lowercase();
        let verbs: Vec<&str> = if verb == "any" {
            ALL_VERBS.to_vec()
        } else {
            vec![verb.as_str()]
        };
        let entry = paths
            .entry(path.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        for v in verbs {
            let parameters: Vec<Value> = params
                .iter()
                .map(|(name, greedy)| {
                    // A `{param}` is one non-empty segment; `{param+}` the
                    // rest of the path.
                    let (schema, description) = if *greedy {
                        (
                            json!({"type": "string", "minLength": 1}),
                            "The rest of the path (may contain `/`).",
                        )
                    } else {
                        (
                            json!({"type": "string", "minLength": 1, "pattern": "^[^/]+$"}),
                            "One path segment, URL-decoded before it reaches the function.",
                        )
                    };
                    json!({
                        "name": name,
                        "in": "path",
                        "required": true,
                        "schema": schema,
                        "description": description,
                    })
                })
                .collect();
            let mut op = json!({
                "operationId": operation_id(v, &resource.uri_template),
                "summary": match resource.invocation_type {
                    lambdagate_core::InvocationType::RequestResponse => "Invokes a Lambda function",
                    lambdagate_core::InvocationType::Event => "Invokes a Lambda function asynchronously",
                },
                "description": format!(
                    "Invokes a Lambda function ({}; timeout {} s).",
                    match (resource.invocation_type, resource.response_mode) {
                        (lambdagate_core::InvocationType::Event, _) => "asynchronous: answers 202 at once",
                        (_, lambdagate_core::ResponseMode::Stream) => "streamed: the response arrives as the function writes it, the timeout covering the whole stream; a failure after the first bytes cuts the response",
                        (_, lambdagate_core::ResponseMode::Buffered) => "synchronous",
                    },
                    resource.timeout_seconds
                ),
                "parameters": parameters,
                "responses": responses(resource.invocation_type, a.lifecycle),
            });
            let keyed = a.key_required(resource) && usage_plans(api, gateway).is_some();
            let sends_key = keyed && client_sends_key(a);
            if let Some(obj) = op.as_object_mut() {
                match guard {
                    Some(name) => {
                        obj.insert(
                            "security".into(),
                            with_api_key(requirement(a, name), sends_key),
                        );
                        if let Some(r) = obj.get_mut("responses").and_then(Value::as_object_mut) {
                            r.insert(
                                "401".into(),
                                error_response(
                                    "No credential, or the authorizer did not accept it.",
                                ),
                            );
                            r.insert(
                                "403".into(),
                                error_response(
                                    "The authorizer does not allow this operation to this caller.",
                                ),
                            );
                            r.insert("500".into(), error_response("The authorizer failed."));
                        }
                    }
                    // Open in an API whose other operations are guarded.
                    None if !a.authorizers.is_empty() || keyed => {
                        obj.insert("security".into(), with_api_key(json!([]), sends_key));
                    }
                    None => {}
                }
                if keyed && let Some(r) = obj.get_mut("responses").and_then(Value::as_object_mut) {
                    r.insert(
                        "403".into(),
                        error_response("No API key, or one that is not in a usage plan for this API (or the authorizer refused)."),
                    );
                    r.insert(
                        "429".into(),
                        error_response("Over the usage plan's rate (`Too Many Requests`) or its quota (`Limit Exceeded`); `Retry-After` says when to try again."),
                    );
                }
            }
            if a.lifecycle == Lifecycle::Deprecated
                && let Some(obj) = op.as_object_mut()
            {
                obj.insert("deprecated".into(), Value::Bool(true));
            }
            if matches!(v, "post" | "put" | "patch" | "delete" | "options")
                && let Some(obj) = op.as_object_mut()
            {
                obj.insert(
                    "requestBody".into(),
                    json!({
                        "required": false,
                        "description": "Passed to the function (up to 6 MB; 1 MB for asynchronous resources).",
                        "content": {"application/json": {"schema": {}}, "*/*": {"schema": {}}},
                    }),
                );
            }
            if let Some(obj) = entry.as_object_mut() {
                obj.insert(v.to_owned(), op);
            }
        }
    }
    let mut description = String::new();
    if let Some(text) = &api.description {
        description.push_str(text.trim_end());
        description.push_str("\n\n");
    }
    description.push_str(&format!(
        "Served by lambdagate: each operation invokes an AWS Lambda function. Base path `{}`.",
        a.context
    ));
    if let Some(plans) = usage_plans(api, gateway) {
        description.push_str(
            "\n\n**Usage plans.** Operations marked with the API key need `x-api-key`: a key of one of these plans.",
        );
        for plan in plans {
            description.push_str(&format!("\n- `{}`: {}", plan.name, plan_terms(plan)));
        }
    }
    match a.lifecycle {
        Lifecycle::Deprecated => {
            description.push_str("\n\n**Deprecated**");
            if let Some(day) = &a.deprecated_on {
                description.push_str(&format!(" since {day}"));
            }
            if let Some(day) = &a.sunset {
                description.push_str(&format!("; it stops answering on {day}"));
            }
            description.push_str(". Responses carry the `Deprecation` (and `Sunset`) headers.");
        }
        Lifecycle::Retired => {
            description.push_str("\n\n**Retired**: every operation answers 410.");
        }
        Lifecycle::Created | Lifecycle::Published => {}
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": a.name,
            "version": a.version,
            "description": description,
            "x-lifecycle": a.lifecycle.as_str(),
            "x-usage-plans": usage_plans(api, gateway).unwrap_or_default().iter().map(|p| json!({
                "name": p.name,
                "rate": p.rate,
                "burst": p.burst,
                "quota": p.quota.map(|q| json!({"limit": q.limit, "period": q.period})),
            })).collect::<Vec<_>>(),
        },
        "servers": [{"url": format!("{}{}", gateway.public_url(), if a.context == "/" { "" } else { a.context.as_str() })}],
        "paths": paths,
        "components": {
            "securitySchemes": security_schemes(
                a,
                usage_plans(api, gateway).is_some() && client_sends_key(a)
            ),
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["message", "requestId"],
                    "properties": {
                        "message": {"type": "string"},
                        "requestId": {"type": "string"},
                    },
                },
            },
        },
    })
}

fn operation_id(verb: &str, template: &str) -> String {
    let mut id = verb.to_owned();
    for part in template.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.push_str(chars.as_str());
        }
    }
    id
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    })
}

fn responses(invocation_type: lambdagate_core::InvocationType, lifecycle: Lifecycle) -> Value {
    let mut r = Map::new();
    match invocation_type {
        lambdagate_core::InvocationType::RequestResponse => {
            r.insert(
                "200".into(),
                json!({"description": "What the function returned (a Lambda proxy response sets its own status, headers and body)."}),
            );
        }
        lambdagate_core::InvocationType::Event => {
            r.insert(
                "202".into(),
                error_response("Accepted: the function runs asynchronously."),
            );
        }
    }
    for (code, text) in [
        ("404", "No resource matches the path."),
        ("405", "The path exists with other methods (see `Allow`)."),
        ("413", "The body exceeds Lambda's limit."),
        ("429", "Lambda throttled the call; retry later."),
        ("502", "The function failed or could not be invoked."),
        ("503", "The gateway cannot reach its invoker."),
        ("504", "The function did not answer within the timeout."),
    ] {
        r.insert(code.into(), error_response(text));
    }
    if lifecycle == Lifecycle::Retired {
        r.insert(
            "410".into(),
            error_response("The API is retired: it no longer answers."),
        );
    }
    Value::Object(r)
}

/// Where a client puts a credential an authorizer reads: a header or a
/// query parameter (as written); stage and context variables are not the
/// client's to send.
fn client_sources(authorizer: &AuthorizerConfig) -> Vec<(&'static str, String)> {
    let sources: Vec<&str> = if authorizer.identity_source.is_empty() {
        vec!["method.request.header.Authorization"]
    } else {
        authorizer
            .identity_source
            .iter()
            .map(String::as_str)
            .collect()
    };
    sources
        .into_iter()
        .filter_map(|text| {
            let rest = text
                .strip_prefix("method.request.")
                .or_else(|| text.strip_prefix("$request."))?;
            if let Some(name) = rest.strip_prefix("header.") {
                Some(("header", name.to_owned()))
            } else {
                rest.strip_prefix("querystring.")
                    .map(|name| ("query", name.to_owned()))
            }
        })
        .collect()
}

/// The scheme name of a JWT authorizer (a bearer token).
fn jwt_scheme(authorizer: &str) -> String {
    format!("{authorizer}.bearer")
}

/// The scheme name of one identity source of an authorizer.
fn scheme_name(authorizer: &str, place: &str, name: &str) -> String {
    format!("{authorizer}.{place}.{name}")
}

/// One API-key-style scheme per header or query identity source of each
/// authorizer (what the console's Authorize asks for).
fn security_schemes(api: &lambdagate_core::config::ApiConfig, keyed: bool) -> Value {
    let mut schemes = Map::new();
    if keyed {
        schemes.insert(
            API_KEY_SCHEME.into(),
            json!({
                "type": "apiKey",
                "in": "header",
                "name": lambdagate_core::request::plan::API_KEY_HEADER,
                "description": "An API key of a usage plan for this API; without it the answer is 403, past the plan's rate or quota 429.",
            }),
        );
    }
    for authorizer in &api.authorizers {
        let kind = match authorizer.kind {
            AuthorizerType::Token => "TOKEN",
            AuthorizerType::Request => "REQUEST",
            AuthorizerType::Jwt => {
                schemes.insert(
                    jwt_scheme(&authorizer.name),
                    json!({
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": format!(
                            "A JWT from {} (JWT authorizer `{}`); without a valid one the answer is 401.",
                            authorizer.issuer.as_deref().unwrap_or("the issuer"),
                            authorizer.name
                        ),
                    }),
                );
                continue;
            }
        };
        for (place, name) in client_sources(authorizer) {
            schemes.insert(
                scheme_name(&authorizer.name, place, &name),
                json!({
                    "type": "apiKey",
                    "in": place,
                    "name": name,
                    "description": format!(
                        "Checked by the Lambda authorizer `{}` ({kind}); without it the answer is 401.",
                        authorizer.name
                    ),
                }),
            );
        }
    }
    Value::Object(schemes)
}

/// The API key's scheme in the document.
const API_KEY_SCHEME: &str = "api_key";

/// The usage plans naming this API; none when its resources need no key
/// or no plan names it.
fn usage_plans<'g>(
    api: &ApiDefinition,
    gateway: &'g Gateway,
) -> Option<Vec<&'g lambdagate_usage::config::PlanConfig>> {
    let a = &api.api;
    if !a.any_key_required() {
        return None;
    }
    let plans: Vec<_> = gateway
        .usage
        .as_ref()?
        .plans
        .iter()
        .filter(|p| p.apis.contains(&a.name))
        .collect();
    (!plans.is_empty()).then_some(plans)
}

/// `10 requests a second (20 at once), 10000 a day`.
fn plan_terms(plan: &lambdagate_usage::config::PlanConfig) -> String {
    let mut terms = format!("{} requests a second ({} at once)", plan.rate, plan.burst);
    if let Some(q) = plan.quota {
        let period = match q.period {
            lambdagate_usage::limit::Period::Day => "day",
            lambdagate_usage::limit::Period::Week => "week",
            lambdagate_usage::limit::Period::Month => "month",
        };
        terms.push_str(&format!(", {} a {period}", q.limit));
    }
    terms
}

/// Each plan naming this API, as `basic: 10 requests a second (20 at
/// once)`; none when no key is needed.
pub(crate) fn plan_lines(api: &ApiDefinition, gateway: &Gateway) -> Option<Vec<String>> {
    Some(
        usage_plans(api, gateway)?
            .into_iter()
            .map(|p| format!("{}: {}", p.name, plan_terms(p)))
            .collect(),
    )
}

/// Whether clients send this API's key themselves (`x-api-key`); with
/// `api_key_source: authorizer` they do not, and the authorizer's scheme
/// covers it.
fn client_sends_key(api: &lambdagate_core::config::ApiConfig) -> bool {
    api.api_key_source == lambdagate_core::ApiKeySource::Header
}

/// `requirement` with the API key added to it (both needed).
fn with_api_key(requirement: Value, keyed: bool) -> Value {
    if !keyed {
        return requirement;
    }
    let mut all = requirement
        .as_array()
        .and_then(|r| r.first())
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    all.insert(API_KEY_SCHEME.into(), json!([]));
    json!([all])
}

/// An operation's security: every client-sent source of its authorizer.
fn requirement(api: &lambdagate_core::config::ApiConfig, name: &str) -> Value {
    let mut all = Map::new();
    match api.authorizers.iter().find(|a| a.name == name) {
        Some(authorizer) if authorizer.kind == AuthorizerType::Jwt => {
            all.insert(jwt_scheme(name), json!([]));
        }
        Some(authorizer) => {
            for (place, source) in client_sources(authorizer) {
                all.insert(scheme_name(name, place, &source), json!([]));
            }
        }
        None => {}
    }
    if all.is_empty() {
        // Sources the client does not send (stage or context variables):
        // nothing to ask for.
        json!([])
    } else {
        json!([all])
    }
}
