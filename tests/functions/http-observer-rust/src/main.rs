//! A test function on the official `lambda_http` crate: it answers, as a
//! JSON body, what the crate's request accessors observed, so that a test
//! can compare it with what the client sent (invoker/tests/consumer_libraries.rs).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::{Value, json};

/// Every value of every key, keys sorted (a `QueryMap` iterates one pair per value).
fn all_values<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in pairs {
        map.entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    map
}

async fn handler(request: Request) -> Result<Response<Body>, Error> {
    let (stage, domain_name) = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => {
            (context.stage.clone(), context.domain_name.clone())
        }
        Some(RequestContext::ApiGatewayV2(context)) => {
            (context.stage.clone(), context.domain_name.clone())
        }
        _ => (None, None),
    };
    let origin = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(_)) => "ApiGatewayV1",
        Some(RequestContext::ApiGatewayV2(_)) => "ApiGatewayV2",
        _ => "other",
    };
    let headers = all_values(request.headers().iter().map(|(name, value)| {
        (
            name.as_str(),
            value.to_str().unwrap_or("<not visible ASCII>"),
        )
    }));
    let (body_kind, body) = match request.body() {
        Body::Empty => ("empty", &[][..]),
        Body::Text(text) => ("text", text.as_bytes()),
        Body::Binary(bytes) => ("binary", bytes.as_slice()),
        _ => ("other", &[][..]),
    };
    let observed = json!({
        "origin": origin,
        "method": request.method().as_str(),
        "uri_path": request.uri().path(),
        "raw_query": request.uri().query(),
        "raw_http_path": request.raw_http_path(),
        "query_string_parameters": all_values(request.query_string_parameters().iter()),
        "path_parameters": all_values(request.path_parameters().iter()),
        "stage": stage,
        "stage_variables": all_values(request.stage_variables().iter()),
        "domain_name": domain_name,
        "headers": headers,
        "body_kind": body_kind,
        "body_base64": STANDARD.encode(body),
    });
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::Text(Value::to_string(&observed)))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
