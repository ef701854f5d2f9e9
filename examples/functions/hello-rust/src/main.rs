//! A Lambda function in Rust, written for API Gateway with the official
//! `lambda_http` crate. It answers with what it received, so you can see
//! what the gateway sends.

use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::{Map, Value, json};

async fn handler(request: Request) -> Result<Response<Body>, Error> {
    let params = request.path_parameters();
    let query = request.query_string_parameters();
    let received = match request.body() {
        Body::Empty => Value::Null,
        Body::Text(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
        Body::Binary(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        _ => Value::Null,
    };
    let to_map = |pairs: Vec<(&str, &str)>| -> Map<String, Value> {
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
            .collect()
    };
    let params_map = to_map(params.iter().collect());
    let query_map = to_map(query.iter().collect());
    let mut answer = json!({
        "runtime": "rust",
        "function": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        "requestId": request.lambda_context_ref().map(|c| c.request_id.clone()).unwrap_or_default(),
        "method": request.method().as_str(),
        "path": request.uri().path(),
        "pathParameters": params_map,
        "queryStringParameters": query_map,
        "body": received,
    });
    if let (Some(name), Some(obj)) = (params.first("name"), answer.as_object_mut()) {
        obj.insert("message".into(), Value::String(format!("Hello, {name}!")));
    }
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("x-runtime", "rust")
        .body(Body::Text(answer.to_string()))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(handler)).await
}
