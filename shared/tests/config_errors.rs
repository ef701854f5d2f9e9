//! Broken configurations: each is refused, and the message says where
//! (the field, with the API and resource it belongs to) and what is wrong.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use serde_json::{Value, json};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:create-user";

fn good() -> Value {
    json!({
        "invoker_cluster": "lambdagate_invoker",
        "apis": [{
            "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
            "resources": [
                {"verb": "GET", "uri_template": "/user/{id}", "arn": ARN},
                {"verb": "PUT", "uri_template": "/user/{id}", "arn": ARN},
                {"verb": "POST", "uri_template": "/user/{id}", "arn": ARN, "timeout_seconds": 30}
            ]
        }, {
            "name": "orders", "version": "v2", "context": "/orders", "endpoint": "other",
            "payload_format": "v2",
            "resources": [{"verb": "ANY", "uri_template": "/{proxy+}", "arn": ARN}]
        }]
    })
}

fn error_of(config: &Value) -> String {
    match lambdagate_core::parse(config.to_string().as_bytes()) {
        Ok(_) => panic!("accepted: {config}"),
        Err(e) => e.to_string(),
    }
}

/// Applies `edit` to a good config and checks the error starts with `at`
/// and contains every `words`.
fn refused(edit: impl FnOnce(&mut Value), at: &str, words: &[&str]) {
    let mut config = good();
    edit(&mut config);
    let err = error_of(&config);
    assert!(
        err.starts_with(&format!("{at}: ")),
        "expected at `{at}`, got: {err}"
    );
    for word in words {
        assert!(err.contains(word), "`{word}` missing from: {err}");
    }
}

const POST_RES: &str = "apis[0] (users).resources[2] (POST /user/{id})";

#[test]
fn the_good_config_is_accepted() {
    lambdagate_core::parse(good().to_string().as_bytes()).unwrap();
}

#[test]
fn bad_arn() {
    refused(
        |c| c["apis"][0]["resources"][2]["arn"] = json!("arn:aws:lambda:us-east-1:1234:function:f"),
        &format!("{POST_RES}.arn"),
        &[
            "account `1234` is not a 12-digit AWS account id",
            "expected arn:aws:lambda:",
        ],
    );
}

#[test]
fn timeout_out_of_range() {
    for seconds in [0, 901] {
        refused(
            |c| c["apis"][0]["resources"][2]["timeout_seconds"] = json!(seconds),
            &format!("{POST_RES}.timeout_seconds"),
            &["out of range", "allowed is 1s to 15m (900s)"],
        );
    }
}

#[test]
fn negative_timeout_is_a_type_error_at_the_field() {
    refused(
        |c| c["apis"][0]["resources"][2]["timeout_seconds"] = json!(-5),
        "apis[0].resources[2].timeout_seconds",
        &["-5"],
    );
}

#[test]
fn unknown_fields_are_named() {
    refused(
        |c| c["apis"][0]["resources"][1]["timeout"] = json!(5),
        "apis[0].resources[1].timeout",
        &["unknown field `timeout`", "timeout_seconds"],
    );
    refused(
        |c| c["apis"][1]["base_path"] = json!("/x"),
        "apis[1].base_path",
        &["unknown field `base_path`", "context"],
    );
    refused(
        |c| c["cluster"] = json!("x"),
        "cluster",
        &["unknown field `cluster`", "invoker_cluster"],
    );
}

#[test]
fn missing_required_field() {
    refused(
        |c| {
            c["apis"][0]["resources"][0]
                .as_object_mut()
                .unwrap()
                .remove("arn");
        },
        "apis[0].resources[0]",
        &["missing field `arn`"],
    );
}

#[test]
fn bad_verb() {
    refused(
        |c| c["apis"][0]["resources"][1]["verb"] = json!("FETCH"),
        "apis[0] (users).resources[1] (FETCH /user/{id}).verb",
        &[
            "`FETCH` is not a verb",
            "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS or ANY",
        ],
    );
}

#[test]
fn bad_payload_format() {
    refused(
        |c| c["apis"][1]["payload_format"] = json!("v3"),
        "apis[1].payload_format",
        &["unknown variant `v3`", "`v1`, `v2`, `wso2`, `passthrough`"],
    );
}

#[test]
fn bad_invocation_type() {
    refused(
        |c| c["apis"][0]["resources"][0]["invocation_type"] = json!("DryRun"),
        "apis[0].resources[0].invocation_type",
        &[
            "unknown variant `DryRun`",
            "expected `RequestResponse` or `Event`",
        ],
    );
}

#[test]
fn bad_templates() {
    for (template, why) in [
        ("user/{id}", "must start with `/`"),
        ("/files/{path+}/meta", "must be the last segment"),
        ("/user/{id}/{id}", "`id` is used twice"),
        (
            "/user/{user-id}",
            "parameter name must be letters, digits or `_`",
        ),
        ("/user/id{id}", "whole segment"),
        ("/user//x", "empty segment"),
    ] {
        refused(
            |c| c["apis"][0]["resources"][1]["uri_template"] = json!(template),
            &format!("apis[0] (users).resources[1] (PUT {template}).uri_template"),
            &[why, "expected a path starting with `/`"],
        );
    }
}

#[test]
fn duplicate_verb_and_template_even_with_other_param_names() {
    refused(
        |c| {
            c["apis"][0]["resources"][1]["verb"] = json!("get");
            c["apis"][0]["resources"][1]["uri_template"] = json!("/user/{uid}");
        },
        "apis[0] (users).resources[1] (get /user/{uid}).uri_template",
        &["resources[0] (GET /user/{id}) already routes GET on the same path"],
    );
}

#[test]
fn bad_contexts() {
    for (context, why) in [
        ("users", "must start with `/`"),
        ("/users/", "must not end with `/`"),
        ("/us ers", "' '"),
    ] {
        refused(
            |c| c["apis"][0]["context"] = json!(context),
            "apis[0] (users).context",
            &[why, "expected `/` or a path such as `/users`"],
        );
    }
}

#[test]
fn two_apis_with_one_context() {
    refused(
        |c| c["apis"][1]["context"] = json!("/users"),
        "apis[1] (orders).context",
        &["the context `/users` is already used by apis[0] (users)"],
    );
}

#[test]
fn duplicate_api_names() {
    refused(
        |c| c["apis"][1]["name"] = json!("users"),
        "apis[1] (users).name",
        &["already used by apis[0]", "must be unique"],
    );
}

#[test]
fn bad_names_version_and_endpoint() {
    refused(
        |c| c["apis"][0]["name"] = json!(""),
        "apis[0].name",
        &["not a valid API name"],
    );
    refused(
        |c| c["apis"][0]["version"] = json!("v 1"),
        "apis[0] (users).version",
        &["`v 1` is not a valid version"],
    );
    refused(
        |c| c["apis"][0]["endpoint"] = json!("main/prod"),
        "apis[0] (users).endpoint",
        &[
            "`main/prod` is not a valid endpoint name",
            "letters, digits, `-` or `_`",
        ],
    );
}

#[test]
fn invoker_cluster_names() {
    refused(
        |c| c["invoker_cluster"] = json!(""),
        "invoker_cluster",
        &["not a valid cluster name"],
    );
    refused(
        |c| c["invoker_cluster"] = json!("h2"),
        "invoker_cluster",
        &[
            "`h2` cannot be used",
            "serialized GrpcService",
            "lambdagate_invoker",
        ],
    );
}

#[test]
fn function_error_status_range() {
    refused(
        |c| c["apis"][0]["resources"][0]["function_error_status"] = json!(200),
        "apis[0] (users).resources[0] (GET /user/{id}).function_error_status",
        &["200 is not allowed", "400 to 599"],
    );
}

#[test]
fn empty_lists() {
    refused(|c| c["apis"] = json!([]), "apis", &["at least one API"]);
    refused(
        |c| c["apis"][1]["resources"] = json!([]),
        "apis[1] (orders).resources",
        &["at least one resource"],
    );
}

#[test]
fn not_json_at_all() {
    for (text, at) in [
        ("", "config"),
        ("{", "config"),
        ("[]", "config"),
        ("{} {}", "config"),
    ] {
        let err = lambdagate_core::parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.at(), at, "{text:?}: {err}");
    }
    for empty in ["", " \n\t"] {
        let err = lambdagate_core::parse(empty.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: the configuration is empty; set it to the lambdagate JSON (invoker_cluster, apis)"
        );
    }
    let err = lambdagate_core::parse(br#"{"apis": 5}"#).unwrap_err();
    assert_eq!(err.at(), "apis", "{err}");
    assert!(err.message().contains("invalid type: integer `5`"), "{err}");
    let err = lambdagate_core::parse(br#"{"apis": []} trailing"#).unwrap_err();
    assert!(
        err.to_string().starts_with("config: trailing characters"),
        "{err}"
    );
}

/// Found by the invoker-config fuzz target (the same rule holds here): an
/// unknown top-level key that is empty gave an error with an empty
/// location (`: unknown field ``...`).
#[test]
fn an_empty_unknown_key_is_refused_at_the_top_level() {
    let mut config = good();
    config[""] = serde_json::json!(1);
    let e = lambdagate_core::parse(config.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.at(), "config", "{e}");
    assert!(e.message().contains("unknown field ``"), "{e}");
}

#[test]
fn router_body_bytes_belongs_to_the_callout_path() {
    let mut config = good();
    config["router_body_bytes"] = json!(65536);
    let compiled = lambdagate_core::parse(config.to_string().as_bytes()).unwrap();
    // Small and unknown bodies take the callout, large ones the router.
    assert!(!compiled.takes_router_path(false, None));
    assert!(!compiled.takes_router_path(false, Some(65535)));
    assert!(compiled.takes_router_path(false, Some(65536)));
    // A streamed route always does.
    assert!(compiled.takes_router_path(true, None));
    refused(
        |c| {
            c["data_path"] = json!("router");
            c["router_body_bytes"] = json!(65536);
        },
        "router_body_bytes",
        &["applies to `data_path: callout` only"],
    );
    // Without it, the callout takes every body.
    let compiled = lambdagate_core::parse(good().to_string().as_bytes()).unwrap();
    assert!(!compiled.takes_router_path(false, Some(6 << 20)));
}
