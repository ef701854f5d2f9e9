//! The authorizer flow on the pure core: identity, validation, cache,
//! the answer's verdict and what the integration event carries. The same
//! table runs through real Envoy in `invoker/tests/authorizers.rs`.

use lambdagate_proto::{ErrorKind, InvokeReply};
use prost::Message as _;
use serde_json::{Value, json};

use super::*;
use crate::config::parse;
use crate::request::plan::{Decision, RequestInfo};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:";

fn config(format: &str) -> crate::config::CompiledConfig {
    let config = json!({"apis": [{
        "name": "pets", "version": "v1", "context": "/pets", "endpoint": "main",
        "payload_format": format,
        "authorizer": "tokens",
        "authorizers": [
            {"name": "tokens", "type": "token", "arn": format!("{ARN}auth"),
             "validation_expression": "Bearer [a-z-]+", "ttl_seconds": 60},
            {"name": "keys", "type": "request", "arn": format!("{ARN}auth"),
             "identity_source": ["method.request.header.x-key", "$request.querystring.tenant"],
             "ttl_seconds": 0},
        ],
        "resources": [
            {"verb": "GET", "uri_template": "/{id}", "arn": format!("{ARN}pets")},
            {"verb": "POST", "uri_template": "/{id}", "arn": format!("{ARN}pets"), "authorizer": "keys"},
            {"verb": "GET", "uri_template": "/open/health", "arn": format!("{ARN}pets"), "authorizer": "none"},
        ],
    }]});
    parse(config.to_string().as_bytes()).unwrap()
}

fn plan(
    config: &crate::config::CompiledConfig,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Box<RoutePlan> {
    plan_at(config, method, path, extra, 1_000_000)
}

fn plan_at(
    config: &crate::config::CompiledConfig,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    now_ms: u64,
) -> Box<RoutePlan> {
    let mut headers = vec![
        (":method".to_owned(), method.to_owned()),
        (":path".to_owned(), path.to_owned()),
        ("x-request-id".to_owned(), "rid-1".to_owned()),
    ];
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let info = RequestInfo {
        source_ip: "10.1.2.3".into(),
        now_ms,
        ..RequestInfo::default()
    };
    match config.on_request_headers(headers, info) {
        Decision::NeedBody(plan) => plan,
        other => panic!("{other:?}"),
    }
}

fn reply(payload: Value) -> Vec<u8> {
    InvokeReply {
        status_code: 200,
        payload: payload.to_string().into_bytes(),
        ..InvokeReply::default()
    }
    .encode_to_vec()
}

fn policy(effect: &str, resource: &str) -> Value {
    json!({
        "principalId": "user-7",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
        "context": {"tier": "gold", "n": 3, "vip": true},
    })
}

fn call(step: AuthStep) -> Invoke {
    match step {
        AuthStep::Call(invoke) => *invoke,
        other => panic!("{other:?}"),
    }
}

fn refusal(step: AuthStep) -> HttpResponse {
    match step {
        AuthStep::Respond(r) => r,
        other => panic!("{other:?}"),
    }
}

fn message(r: &HttpResponse) -> Value {
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["requestId"], "rid-1");
    body["message"].clone()
}

const GOOD: (&str, &str) = ("authorization", "Bearer good");

#[test]
fn a_token_authorizer_is_invoked_once_then_its_cached_policy_decides() {
    let config = config("v1");
    let mut cache = AuthCache::default();
    let mut p = plan(&config, "GET", "/pets/7", &[GOOD]);
    let invoke = call(p.authorize(&mut cache));
    assert_eq!(invoke.function_arn, format!("{ARN}auth"));
    assert_eq!(
        (invoke.endpoint.as_str(), invoke.timeout_ms),
        ("main", 10_000)
    );
    let event: Value = serde_json::from_slice(&invoke.lambda_event().unwrap()).unwrap();
    let arn = event["methodArn"].as_str().unwrap().to_owned();
    assert_eq!(event["type"], "TOKEN");
    assert_eq!(event["authorizationToken"], "Bearer good");
    assert!(
        arn.starts_with("arn:aws:execute-api:us-east-1:123456789012:")
            && arn.ends_with("/$default/GET/7"),
        "{arn}"
    );
    let _: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequest =
        serde_json::from_value(event).unwrap();
    // The policy allows GET /7 only.
    p.on_authorizer_reply(Ok(&reply(policy("Allow", &arn))), &mut cache)
        .unwrap();
    let event: Value =
        serde_json::from_slice(&p.build_invoke(b"").unwrap().lambda_event().unwrap()).unwrap();
    // A REST API's context values arrive as text, with the principal.
    assert_eq!(
        event["requestContext"]["authorizer"],
        json!({"principalId": "user-7", "tier": "gold", "n": "3", "vip": "true"})
    );
    let _: aws_lambda_events::apigw::ApiGatewayProxyRequest =
        serde_json::from_value(event).unwrap();

    // The same token again: no call, the cached policy decides, for this
    // path (allowed) and for another one it does not cover (403).
    assert!(matches!(
        plan(&config, "GET", "/pets/7", &[GOOD]).authorize(&mut cache),
        AuthStep::Proceed
    ));
    let r = refusal(plan(&config, "GET", "/pets/8", &[GOOD]).authorize(&mut cache));
    assert_eq!((r.status, r.outcome.label()), (403, "forbidden"));
    assert_eq!(
        message(&r),
        "User is not authorized to access this resource"
    );
    assert!(r.detail.as_deref().unwrap().contains("does not allow"));
    // Past the TTL (60 s) it is asked again.
    let mut later = plan_at(&config, "GET", "/pets/7", &[GOOD], 1_000_000 + 60_000);
    call(later.authorize(&mut cache));
}

#[test]
fn missing_or_malformed_identities_get_401_without_a_call() {
    let config = config("v1");
    let mut cache = AuthCache::default();
    for extra in [
        vec![],
        vec![("authorization", "")],
        vec![("authorization", "Basic abc")],
        vec![("authorization", "Bearer good!")],
    ] {
        let r = refusal(plan(&config, "GET", "/pets/7", &extra).authorize(&mut cache));
        assert_eq!(
            (r.status, r.outcome.label()),
            (401, "unauthorized"),
            "{extra:?}"
        );
        assert_eq!(message(&r), "Unauthorized");
        // The token is never in the log line.
        assert!(!r.detail.as_deref().unwrap().contains("Basic abc"));
    }
    // A REQUEST authorizer with one of its two sources missing.
    let r = refusal(plan(&config, "POST", "/pets/7", &[("x-key", "k")]).authorize(&mut cache));
    assert_eq!(r.status, 401);
    assert!(r.detail.unwrap().contains("query parameter `tenant`"));
    // An open resource in a guarded API.
    assert!(matches!(
        plan(&config, "GET", "/pets/open/health", &[]).authorize(&mut cache),
        AuthStep::Proceed
    ));
}

#[test]
fn answers_map_to_api_gateways_responses() {
    let config = config("v1");
    let explicit = json!({
        "principalId": "user-7",
        "policyDocument": {"Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": "arn:aws:execute-api:*:*:*/*/GET/7"}]},
    });
    let function_error = |message: &str| {
        InvokeReply {
            status_code: 200,
            function_error: "Unhandled".into(),
            payload: json!({"errorMessage": message, "errorType": "Exception"})
                .to_string()
                .into_bytes(),
            ..InvokeReply::default()
        }
        .encode_to_vec()
    };
    let failure = |kind: ErrorKind| {
        InvokeReply {
            error_kind: kind as i32,
            error_message: "detail".into(),
            ..InvokeReply::default()
        }
        .encode_to_vec()
    };
    // Name, what came back, status, outcome.
    type Case = (&'static str, Result<Vec<u8>, GrpcStatus>, u16, &'static str);
    let cases: Vec<Case> = vec![
        ("explicit deny", Ok(reply(explicit)), 403, "forbidden"),
        (
            "Unauthorized",
            Ok(function_error("Unauthorized")),
            401,
            "unauthorized",
        ),
        (
            "throws",
            Ok(function_error("boom")),
            500,
            "authorizer_failure",
        ),
        (
            "garbage",
            Ok(reply(json!("yes please"))),
            500,
            "authorizer_failure",
        ),
        (
            "timeout",
            Ok(failure(ErrorKind::Timeout)),
            500,
            "authorizer_failure",
        ),
        (
            "not allowed",
            Ok(failure(ErrorKind::NotAllowed)),
            500,
            "authorizer_configuration_error",
        ),
        (
            "invoker down",
            Err(GrpcStatus { code: 14 }),
            500,
            "authorizer_failure",
        ),
    ];
    for (name, result, status, outcome) in cases {
        let mut cache = AuthCache::default();
        let mut p = plan(&config, "GET", "/pets/7", &[GOOD]);
        call(p.authorize(&mut cache));
        let r = p
            .on_authorizer_reply(result.as_deref().map_err(|s| *s), &mut cache)
            .unwrap_err();
        assert_eq!((r.status, r.outcome.label()), (status, outcome), "{name}");
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains("boom") && !text.contains("detail"),
            "{name}: {text}"
        );
        if status == 500 {
            assert_eq!(message(&r), "Internal server error", "{name}");
        }
        // Only a usable answer is cached.
        assert_eq!(cache.len(), usize::from(name == "explicit deny"), "{name}");
    }
}

#[test]
fn an_http_apis_request_authorizer_gets_the_2_0_event_and_its_context_typed() {
    let config = config("v2");
    let mut cache = AuthCache::default();
    let extra = [("x-key", "k-1"), ("cookie", "a=1")];
    for _ in 0..2 {
        // TTL 0: invoked every time.
        let mut p = plan(&config, "POST", "/pets/7?tenant=t%201", &extra);
        let invoke = call(p.authorize(&mut cache));
        let event: Value = serde_json::from_slice(&invoke.lambda_event().unwrap()).unwrap();
        assert_eq!(event["type"], "REQUEST");
        assert_eq!(event["version"], "2.0");
        assert_eq!(event["identitySource"], json!(["k-1", "t 1"]));
        assert_eq!(event["routeKey"], "POST /{id}");
        assert_eq!(event["headers"]["x-key"], "k-1");
        assert!(event.get("body").is_none() && event.get("isBase64Encoded").is_none());
        let arn = event["routeArn"].as_str().unwrap().to_owned();
        assert!(arn.ends_with("/$default/POST/7"), "{arn}");
        let _: aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request =
            serde_json::from_value(event).unwrap();
        let answer = json!({"principalId": "p", "policyDocument": {"Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}]},
            "context": {"list": [1], "n": 3}});
        p.on_authorizer_reply(Ok(&reply(answer)), &mut cache)
            .unwrap();
        let event: Value =
            serde_json::from_slice(&p.build_invoke(b"{}").unwrap().lambda_event().unwrap())
                .unwrap();
        assert_eq!(
            event["requestContext"]["authorizer"],
            json!({"lambda": {"list": [1], "n": 3}})
        );
    }
    assert!(cache.is_empty());
    // An HTTP API's 403 says Forbidden.
    let mut p = plan(&config, "GET", "/pets/7", &[GOOD]);
    call(p.authorize(&mut cache));
    let r = p
        .on_authorizer_reply(Ok(&reply(policy("Deny", "*"))), &mut cache)
        .unwrap_err();
    assert_eq!((r.status, message(&r)), (403, json!("Forbidden")));
}

#[test]
fn a_rest_apis_request_authorizer_gets_the_rest_event() {
    let config = config("v1");
    let mut cache = AuthCache::default();
    let mut p = plan(&config, "POST", "/pets/7?tenant=t", &[("x-key", "k")]);
    let event: Value = serde_json::from_slice(&call(p.authorize(&mut cache)).payload).unwrap();
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["resource"], "/{id}");
    assert_eq!(event["pathParameters"]["id"], "7");
    assert!(event["methodArn"].as_str().unwrap().ends_with("/POST/7"));
    assert!(event.get("body").is_none() && event.get("identitySource").is_none());
    let _: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(event).unwrap();
}

#[test]
fn an_http_apis_request_authorizer_may_ask_for_the_1_0_event() {
    let text = r#"{"apis": [{"name": "pets", "version": "v1", "context": "/pets", "endpoint": "main",
        "payload_format": "v2", "authorizer": "old",
        "authorizers": [{"name": "old", "type": "request", "arn": "arn:aws:lambda:us-east-1:123456789012:function:auth",
                         "identity_source": ["$request.header.X-User", "$request.querystring.tenant"],
                         "payload_version": "1.0"}],
        "resources": [{"verb": "GET", "uri_template": "/{id}", "arn": "arn:aws:lambda:us-east-1:123456789012:function:pets"}]}]}"#;
    let config = parse(text.as_bytes()).unwrap();
    let mut cache = AuthCache::default();
    let mut p = plan(&config, "GET", "/pets/7?tenant=t1", &[("x-user", "u1")]);
    let event: Value = serde_json::from_slice(&call(p.authorize(&mut cache)).payload).unwrap();
    assert_eq!(event["version"], "1.0");
    assert_eq!(event["type"], "REQUEST");
    assert_eq!(event["identitySource"], "u1,t1");
    assert_eq!(event["authorizationToken"], "u1,t1");
    assert_eq!(event["httpMethod"], "GET");
    assert!(event["methodArn"].as_str().unwrap().ends_with("/GET/7"));
    assert!(event.get("routeArn").is_none() && event.get("body").is_none());
    let _: aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest =
        serde_json::from_value(event).unwrap();
    // Only an HTTP API's REQUEST authorizer chooses, and only 1.0 or 2.0.
    for (from, to, words) in [
        (
            r#""payload_version": "1.0""#,
            r#""payload_version": "3.0""#,
            "is not a payload version",
        ),
        (
            r#""payload_format": "v2""#,
            r#""payload_format": "v1""#,
            "only a REQUEST authorizer of an HTTP API",
        ),
    ] {
        let e = parse(text.replace(from, to).as_bytes()).unwrap_err();
        assert!(e.at().ends_with("authorizers[0].payload_version"), "{e}");
        assert!(e.message().contains(words), "{e}");
    }
}

#[test]
fn the_key_check_carries_the_header_or_the_authorizers_usage_identifier_key() {
    let keyed = |source: &str| {
        let mut config: Value = json!({"apis": [{
            "name": "pets", "version": "v1", "context": "/pets", "endpoint": "main",
            "authorizer": "tokens", "api_key_required": true, "api_key_source": source,
            "authorizers": [{"name": "tokens", "type": "token", "arn": format!("{ARN}auth")}],
            "resources": [
                {"verb": "GET", "uri_template": "/{id}", "arn": format!("{ARN}pets")},
                {"verb": "GET", "uri_template": "/free/{id}", "arn": format!("{ARN}pets"),
                 "api_key_required": false},
            ],
        }]});
        if source.is_empty() {
            config["apis"][0]
                .as_object_mut()
                .unwrap()
                .remove("api_key_source");
        }
        parse(config.to_string().as_bytes()).unwrap()
    };
    let mut answer = policy("Allow", "*");
    // (`*`: every method ARN.)
    answer["usageIdentifierKey"] = json!("lgk_from_the_authorizer");
    let check_with = |answer: &Value,
                      config: &crate::config::CompiledConfig,
                      path: &str,
                      extra: &[(&str, &str)]| {
        let mut cache = AuthCache::default();
        let mut p = plan(config, "GET", path, extra);
        call(p.authorize(&mut cache));
        p.on_authorizer_reply(Ok(&reply(answer.clone())), &mut cache)
            .unwrap();
        p.build_invoke(b"").unwrap().usage
    };
    let check = |config: &crate::config::CompiledConfig, path: &str, extra: &[(&str, &str)]| {
        check_with(&answer, config, path, extra)
    };
    let with_key = [GOOD, ("x-api-key", "lgk_from_the_client")];

    // The default source is the client's header; no header: an empty key.
    let header = keyed("");
    let usage = check(&header, "/pets/7?x=1", &with_key).unwrap();
    assert_eq!(
        (
            usage.method.as_str(),
            usage.path.as_str(),
            usage.api_key.as_str()
        ),
        ("GET", "/pets/7", "lgk_from_the_client")
    );
    assert_eq!(check(&header, "/pets/7", &[GOOD]).unwrap().api_key, "");
    // An open resource of a keyed API asks nothing.
    assert_eq!(check(&header, "/pets/free/7", &with_key), None);

    // `authorizer`: the answer's key, never the client's header.
    let authorizer = keyed("authorizer");
    assert_eq!(
        check(&authorizer, "/pets/7", &with_key).unwrap().api_key,
        "lgk_from_the_authorizer"
    );
    let mut keyless = answer.clone();
    keyless
        .as_object_mut()
        .unwrap()
        .remove("usageIdentifierKey");
    assert_eq!(
        check_with(&keyless, &authorizer, "/pets/7", &with_key)
            .unwrap()
            .api_key,
        ""
    );
}

#[test]
fn a_key_from_an_authorizer_needs_a_lambda_authorizer() {
    let config = json!({"apis": [{
        "name": "pets", "version": "v1", "context": "/pets", "endpoint": "main",
        "api_key_required": true, "api_key_source": "authorizer",
        "resources": [{"verb": "GET", "uri_template": "/{id}", "arn": format!("{ARN}pets")}],
    }]});
    let e = parse(config.to_string().as_bytes()).unwrap_err();
    assert_eq!(
        e.at(),
        "apis[0] (pets).resources[0] (GET /{id}).api_key_required"
    );
    assert!(
        e.message().contains("usageIdentifierKey"),
        "{}",
        e.message()
    );
}
