//! A Lambda TOKEN authorizer written for API Gateway on the Rust runtime
//! (`lambda_runtime`) with `aws_lambda_events`' authorizer request and
//! response types, unchanged. It accepts `Bearer rust-token` (allowing
//! every method of the API, with a context) and answers any other token
//! with the error `Unauthorized`, API Gateway's way of saying 401.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::json;

async fn authorize(
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequest>,
) -> Result<ApiGatewayCustomAuthorizerResponse, Error> {
    let request = event.payload;
    if request.authorization_token.as_deref() != Some("Bearer rust-token") {
        return Err("Unauthorized".into());
    }
    // arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{VERB}/{path}
    let method_arn = request.method_arn.unwrap_or_default();
    let api = method_arn.split('/').next().unwrap_or_default();
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".to_owned()];
    statement.effect = IamPolicyEffect::Allow;
    statement.resource = vec![format!("{api}/*")];
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".to_owned());
    policy.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some("rust-user".to_owned());
    response.policy_document = policy;
    response.context = json!({"runtime": "rust", "level": 2});
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(authorize)).await
}
