//! Inputs the fuzz targets in `fuzz/invoker/` found (see fuzz/README.md),
//! kept as tests of the parsers' error locations.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lambdagate_render::ApiDefinition;
use lambdagate_sidecar::config::Config;

const API: &str = "name: users\nversion: v1\ncontext: /users\n\
endpoint: {name: orders, access_method: role, region: us-east-1}\n\
resources:\n  - {verb: GET, uri_template: '/user/{id}', arn: 'arn:aws:lambda:us-east-1:123456789012:function:f'}\n";

/// An empty top-level key (`"": 1`, or an anchor before `:`) used to give
/// `invoker.yaml: : unknown field ``...`, an error without a location.
#[test]
fn an_empty_unknown_key_in_the_invoker_config_is_at_the_top_level() {
    for text in [
        "\"\": 1\nendpoints: {}\n",
        "&anchor : 1\n",
        "listen: 127.0.0.1:50051\n'': x\n",
    ] {
        let e = Config::parse(text, "invoker.yaml").unwrap_err();
        assert_eq!(e.field, "(top level)", "{text:?}: {e}");
        assert!(e.message.contains("unknown field ``"), "{text:?}: {e}");
    }
}

#[test]
fn an_empty_unknown_key_in_an_api_definition_is_at_the_top_level() {
    ApiDefinition::parse(API, "api.yaml").unwrap();
    let e = ApiDefinition::parse(&format!("{API}\"\": 1\n"), "api.yaml").unwrap_err();
    assert_eq!(e.at, "(top level)", "{e}");
    assert!(e.message.contains("unknown field ``"), "{e}");
}
