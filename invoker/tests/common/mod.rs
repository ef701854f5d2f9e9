//! Config snippets shared by the invoker's integration tests.
#![allow(dead_code)]

use lambdagate_harness::moto::AccessKey;

pub const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");

/// A `stored` endpoint whose keys come from the env vars `{NAME}_KEY_ID` and
/// `{NAME}_SECRET` (NAME upper-cased).
pub fn stored_endpoint(name: &str, aws_url: &str, allow: &[&str], extra: &str) -> String {
    let var = name.to_uppercase().replace('-', "_");
    let allow: String = allow.iter().map(|a| format!("      - \"{a}\"\n")).collect();
    format!(
        "  {name}:\n    access_method: stored\n    region: us-east-1\n    endpoint_url: {aws_url}\n    credentials:\n      access_key_id: {{env: {var}_KEY_ID}}\n      secret_access_key: {{env: {var}_SECRET}}\n{extra}    allow:\n{allow}"
    )
}

/// The env entries that [`stored_endpoint`] reads.
pub fn key_env(name: &str, key: &AccessKey) -> Vec<(String, String)> {
    let var = name.to_uppercase().replace('-', "_");
    vec![
        (format!("{var}_KEY_ID"), key.access_key_id.clone()),
        (format!("{var}_SECRET"), key.secret_access_key.clone()),
    ]
}

/// An invoker with one `stored` endpoint, `main`, that may call every
/// function in moto's account with the fixture's `invoker` user.
pub async fn moto_invoker(moto: &lambdagate_harness::Moto) -> lambdagate_harness::InvokerProcess {
    let yaml = config(&[stored_endpoint(
        "main",
        &moto.url,
        &["arn:aws:lambda:us-east-1:123456789012:function:*"],
        "",
    )]);
    let env = key_env("main", moto.fixture.user("invoker"));
    lambdagate_harness::InvokerProcess::start(BIN, &yaml, &env_refs(&env), "info").await
}

pub fn config(endpoints: &[String]) -> String {
    format!("endpoints:\n{}", endpoints.concat())
}

pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Splits a failed call into (gRPC code, ErrorKind name, message); the
/// kind comes typed, in the status's trailer.
pub fn failure(status: &tonic::Status) -> (tonic::Code, String, String) {
    let kind = lambdagate_proto::error_kind(status);
    (
        status.code(),
        kind.as_str_name().to_owned(),
        status.message().to_owned(),
    )
}

/// What a finished `lambdagate` command printed: stdout, then stderr.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
