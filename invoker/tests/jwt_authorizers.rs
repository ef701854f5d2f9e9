//! JWT authorizers through real Envoy: `lambdagate render` writes Envoy's
//! own `jwt_authn` filter (and the JWKS cluster), the test makes an ES256
//! key, serves its JWKS from a real HTTP server on loopback (Python's
//! `http.server` over a folder) and signs tokens; each row is checked by
//! status, body and the integration's invocations counted at the function.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambdagate_harness::{RenderedPorts, free_port, start_rendered};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lambdagate");
const ISSUER: &str = "https://issuer.example.test/";
const AUDIENCE: &str = "lambdagate-tests";

/// An ES256 signing key with its JWK.
struct Key {
    pair: EcdsaKeyPair,
    kid: &'static str,
}

impl Key {
    fn new(kid: &'static str) -> Key {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Key { pair, kid }
    }

    fn jwk(&self) -> Value {
        // Uncompressed point: 0x04, X (32 bytes), Y (32 bytes).
        let point = self.pair.public_key().as_ref().to_vec();
        json!({
            "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "user-7",
        "iat": now(), "exp": now() + 600, "scope": "read write",
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn definition(
    name: &str,
    context: &str,
    format: &str,
    jwks: &str,
    log: &Path,
    gateway: &str,
) -> String {
    format!(
        r#"name: {name}
version: v1
context: {context}
payload_format: {format}
endpoint:
  name: local
  access_method: local
  region: us-east-1
  functions:
{function}authorizer: issuer
authorizers:
  - name: issuer
    type: jwt
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    jwks_uri: {jwks}
resources:
  - verb: GET
    uri_template: /items/{{id}}
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
    authorization_scopes: [read]
  - verb: GET
    uri_template: /open
    arn: arn:aws:lambda:us-east-1:000000000000:function:integration
    authorizer: none
{gateway}"#,
        function = lambdagate_harness::powertools_function("integration", "integration", log),
    )
}

#[tokio::test]
async fn jwt_authorizers_verify_tokens_with_envoys_jwt_authn() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::new("k1");
    let stranger = Key::new("k1"); // same kid, another key: a bad signature
    let jwks_dir = dir.path().join("jwks");
    std::fs::create_dir_all(&jwks_dir).unwrap();
    std::fs::write(
        jwks_dir.join("jwks.json"),
        json!({"keys": [key.jwk()]}).to_string(),
    )
    .unwrap();
    let jwks_port = free_port();
    let jwks = lambdagate_harness::StaticFiles::serve(&jwks_dir, jwks_port);
    let jwks_uri = format!("http://127.0.0.1:{jwks_port}/jwks.json");

    let ports = RenderedPorts::free();
    let gateway = format!("gateway:\n{}", ports.gateway_keys());
    let log = dir.path().join("integration.log");
    let http_api = dir.path().join("http.yaml");
    let rest_api = dir.path().join("rest.yaml");
    std::fs::write(
        &http_api,
        definition("jwt-http", "/http", "v2", &jwks_uri, &log, &gateway),
    )
    .unwrap();
    std::fs::write(
        &rest_api,
        definition("jwt-rest", "/rest", "v1", &jwks_uri, &log, ""),
    )
    .unwrap();
    let out = dir.path().join("out");
    let rendered = Command::new(BIN)
        .args(["render", "--out"])
        .arg(&out)
        .arg(&http_api)
        .arg(&rest_api)
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    // The portal's document asks for a bearer token where it is needed.
    let doc_path = dir.path().join("http.json");
    let written = Command::new(BIN)
        .arg("openapi")
        .arg(&http_api)
        .arg("--out")
        .arg(&doc_path)
        .output()
        .unwrap();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&doc_path).unwrap()).unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["issuer.bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": format!("A JWT from {ISSUER} (JWT authorizer `issuer`); without a valid one the answer is 401.")})
    );
    assert_eq!(
        doc["paths"]["/items/{id}"]["get"]["security"],
        json!([{"issuer.bearer": []}])
    );
    assert_eq!(doc["paths"]["/open"]["get"]["security"], json!([]));

    let (_invoker, envoy) = start_rendered(BIN, &out, &[], &ports).await;
    let count = || std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
    let call = async |path: &str, headers: &[(&str, &str)]| {
        let before = count();
        let r = envoy.send("GET", path, headers, b"").await;
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| {
            panic!(
                "{path}: not JSON: {} {}\n{}",
                r.status,
                r.text(),
                envoy.logs()
            )
        });
        (r.status, body, count() - before)
    };
    let bearer = |token: &str| format!("Bearer {token}");

    // A valid token: the HTTP API's function sees the claims (as text)
    // and the scopes.
    let good = key.sign(&claims(json!({})));
    let (status, body, calls) = call("/http/items/1", &[("authorization", &bearer(&good))]).await;
    if status != 200 {
        // jwt_authn's counters say whether the keys came and tokens passed.
        let stats = lambdagate_harness::http::send(
            &format!("127.0.0.1:{}", ports.admin),
            "GET",
            "/stats?filter=jwt",
            &[],
            b"",
        )
        .await
        .unwrap();
        panic!("{status} {body}\n{}\n{}", stats.text(), envoy.logs());
    }
    assert_eq!(calls, 1);
    let jwt = &body["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "user-7");
    assert_eq!(jwt["claims"]["iss"], ISSUER);
    assert!(jwt["claims"]["exp"].is_string(), "{jwt}");
    assert_eq!(jwt["scopes"], json!(["read", "write"]));
    // A REST API's function sees `claims`.
    let (status, body, _) = call("/rest/items/1", &[("authorization", &bearer(&good))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorizer"]["claims"]["sub"], "user-7");

    let none_header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let unsigned = format!(
        "{none_header}.{}.",
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let rows: Vec<(&str, String, u16, &str)> = vec![
        (
            "expired",
            key.sign(&claims(json!({"exp": now() - 3600}))),
            401,
            "Unauthorized",
        ),
        (
            "not yet valid",
            key.sign(&claims(json!({"nbf": now() + 3600}))),
            401,
            "Unauthorized",
        ),
        (
            "another issuer",
            key.sign(&claims(json!({"iss": "https://evil.example.test/"}))),
            401,
            "Unauthorized",
        ),
        (
            "another audience",
            key.sign(&claims(json!({"aud": "someone-else"}))),
            401,
            "Unauthorized",
        ),
        ("alg none", unsigned, 401, "Unauthorized"),
        (
            "bad signature",
            stranger.sign(&claims(json!({}))),
            401,
            "Unauthorized",
        ),
        ("garbage", "not.a.jwt".to_owned(), 401, "Unauthorized"),
        (
            "missing scope",
            key.sign(&claims(json!({"scope": "write"}))),
            403,
            "Forbidden",
        ),
    ];
    for (name, token, want_status, want_message) in rows {
        let (status, body, calls) =
            call("/http/items/1", &[("authorization", &bearer(&token))]).await;
        assert_eq!(
            (status, body["message"].as_str(), calls),
            (want_status, Some(want_message), 0),
            "{name}: {body}"
        );
        assert!(
            body["requestId"].as_str().is_some_and(|id| !id.is_empty()),
            "{name}"
        );
    }
    // No token: 401; an open resource of the same API: 200.
    let (status, body, calls) = call("/http/items/1", &[]).await;
    assert_eq!(
        (status, &body["message"], calls),
        (401, &json!("Unauthorized"), 0)
    );
    let (status, _, calls) = call("/http/open", &[]).await;
    assert_eq!((status, calls), (200, 1));
    // A client cannot hand in a payload of its own: the header Envoy
    // would write is removed before jwt_authn runs.
    let forged = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let header = lambdagate_core::auth::authorizer::jwt_payload_header(ISSUER);
    let (status, _, calls) = call("/http/items/1", &[(header.as_str(), forged.as_str())]).await;
    assert_eq!((status, calls), (401, 0));

    // The JWKS server goes away: the cached keys still verify.
    drop(jwks);
    let later = key.sign(&claims(json!({"sub": "user-8"})));
    let (status, body, _) = call("/http/items/1", &[("authorization", &bearer(&later))]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorizer"]["jwt"]["claims"]["sub"], "user-8");

    let logs = envoy.logs();
    assert!(
        logs.contains("outcome=unauthorized") && logs.contains("outcome=forbidden"),
        "{logs}"
    );
    assert!(!logs.contains(&good), "a token reached the log");
}
