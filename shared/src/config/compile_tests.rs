use super::*;

pub(crate) const EXAMPLE: &str = r#"{
  "invoker_cluster": "lambdagate_invoker",
  "apis": [{
    "name": "users", "version": "v1", "context": "/users", "endpoint": "main",
    "resources": [
      {"verb": "POST", "uri_template": "/user/{id}",
       "arn": "arn:aws:lambda:us-east-1:123456789012:function:create-user:live"},
      {"verb": "get", "uri_template": "/user/{id}",
       "arn": "arn:aws:lambda:us-east-1:123456789012:function:get-user",
       "timeout_seconds": 3, "invocation_type": "Event", "function_error_status": 500}
    ]
  }]
}"#;

#[test]
fn a_streamed_resource_must_wait_for_its_response() {
    let streamed = EXAMPLE.replace(
        r#""function_error_status": 500}"#,
        r#""function_error_status": 500, "response_mode": "stream"}"#,
    );
    let error = parse(streamed.as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "apis[0] (users).resources[1] (get /user/{id}).response_mode: `stream` needs invocation_type RequestResponse: an Event invocation has no response to stream"
    );
    let streamed = streamed.replace(r#""invocation_type": "Event", "#, "");
    let config = parse(streamed.as_bytes()).unwrap();
    assert_eq!(
        config.config.apis[0].resources[1].response_mode,
        ResponseMode::Stream
    );
    let unknown = EXAMPLE.replace(
        r#""function_error_status": 500}"#,
        r#""response_mode": "chunked"}"#,
    );
    let error = parse(unknown.as_bytes()).unwrap_err().to_string();
    assert!(
        error.contains("unknown variant `chunked`, expected `buffered` or `stream`"),
        "{error}"
    );
}

#[test]
fn lifecycle_dates_become_headers_and_bad_ones_are_refused() {
    let api = |extra: &str| {
        let json = format!(
            r#"{{"apis": [{{"name": "a", "version": "v1", "context": "/a", "endpoint": "e", {extra}
               "resources": [{{"verb": "GET", "uri_template": "/",
                              "arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}}]}}]}}"#
        );
        crate::parse(json.as_bytes()).map(|c| match c.table.find("GET", "/a") {
            crate::config::route::RouteMatch::Found { target, .. } => {
                target.api.lifecycle_headers.clone()
            }
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(api(""), Ok(Vec::new()));
    assert_eq!(
        api(r#""lifecycle": "deprecated","#),
        Ok(vec![("deprecation".to_owned(), "true".to_owned())])
    );
    assert_eq!(
        api(r#""lifecycle": "deprecated", "deprecated_on": "2026-12-01", "sunset": "2027-06-30","#),
        Ok(vec![
            ("deprecation".to_owned(), "@1796083200".to_owned()),
            (
                "sunset".to_owned(),
                "Wed, 30 Jun 2027 00:00:00 GMT".to_owned()
            ),
        ])
    );
    for (extra, at, says) in [
        (
            r#""lifecycle": "gone","#,
            "apis[0].lifecycle",
            "unknown variant `gone`",
        ),
        (
            r#""lifecycle": "published", "sunset": "2027-06-30","#,
            "apis[0] (a).sunset",
            "only a deprecated API",
        ),
        (
            r#""lifecycle": "deprecated", "sunset": "30/06/2027","#,
            "apis[0] (a).sunset",
            "use YYYY-MM-DD",
        ),
        (
            r#""lifecycle": "deprecated", "deprecated_on": "2027-07-01", "sunset": "2027-06-30","#,
            "apis[0] (a).sunset",
            "before the deprecation date",
        ),
    ] {
        let err = api(extra).unwrap_err();
        assert_eq!(err.at(), at, "{extra}");
        assert!(err.message().contains(says), "{extra}: {err}");
    }
}

#[test]
fn parses_with_defaults() {
    let compiled = parse(EXAMPLE.as_bytes()).unwrap();
    assert_eq!(compiled.invoker_cluster(), "lambdagate_invoker");
    let api = &compiled.config().apis[0];
    assert_eq!(api.payload_format, PayloadFormat::V1);
    assert_eq!(api.resources[0].timeout_seconds, 50);
    assert_eq!(
        api.resources[0].invocation_type,
        InvocationType::RequestResponse
    );
    assert_eq!(api.resources[1].invocation_type, InvocationType::Event);

    let minimal = r#"{"apis":[{"name":"a","version":"1","context":"/","endpoint":"e",
        "payload_format":"wso2",
        "resources":[{"verb":"ANY","uri_template":"/","arn":"arn:aws:lambda:us-east-1:123456789012:function:f"}]}]}"#;
    let compiled = parse(minimal.as_bytes()).unwrap();
    assert_eq!(compiled.invoker_cluster(), DEFAULT_INVOKER_CLUSTER);
    assert_eq!(
        compiled.config().apis[0].payload_format,
        PayloadFormat::Wso2
    );
}

#[test]
fn serializes_back_to_an_equal_config() {
    let compiled = parse(EXAMPLE.as_bytes()).unwrap();
    let json = serde_json::to_vec(compiled.config()).unwrap();
    let again = parse(&json).unwrap();
    assert_eq!(again.config(), compiled.config());
}

#[test]
fn cluster_names_envoy_would_choke_on() {
    assert!(parses_as_protobuf(b"h2"));
    assert!(parses_as_protobuf(b""));
    // 'a' = field 12, fixed64, followed by exactly 8 bytes.
    assert!(parses_as_protobuf(b"a12345678"));
    for fine in [
        "lambdagate_invoker",
        "invoker",
        "lambda",
        "grpc_invoker",
        "lg",
        "cluster_0",
    ] {
        assert!(!parses_as_protobuf(fine.as_bytes()), "{fine}");
    }
    let err = check_cluster("h2").unwrap_err().to_string();
    assert!(
        err.starts_with("invoker_cluster: `h2` cannot be used"),
        "{err}"
    );
    assert!(err.contains("lambdagate_invoker"), "{err}");
}

#[test]
fn the_callout_cluster_is_optional_and_checked() {
    let compiled = parse(EXAMPLE.as_bytes()).unwrap();
    assert_eq!(compiled.callout_cluster(), None);
    let with = |value: &str| EXAMPLE.replacen('{', &format!(r#"{{"callout_cluster": {value},"#), 1);
    let compiled = parse(with(r#""lambdagate_invoker_http1""#).as_bytes()).unwrap();
    assert_eq!(compiled.callout_cluster(), Some(DEFAULT_CALLOUT_CLUSTER));
    for bad in [r#""""#, r#""two words""#] {
        let err = parse(with(bad).as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("callout_cluster: "), "{err}");
        assert!(err.contains("HTTP/1.1 Envoy cluster"), "{err}");
    }
}

#[test]
fn bad_authorizers_are_refused_naming_the_field_and_what_is_allowed() {
    let with = |authorizer: serde_json::Value, extra: &str| {
        let api = format!(r#""authorizers": [{authorizer}]{extra}, "resources": ["#);
        EXAMPLE.replace(r#""resources": ["#, &api)
    };
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:auth";
    let at = "apis[0] (users)";
    for (authorizer, extra, place, words) in [
        (
            serde_json::json!({"name": "a", "type": "request", "arn": arn,
                               "identity_source": ["method.request.cookie.x"]}),
            "",
            format!("{at}.authorizers[0].identity_source[0]"),
            "is not an identity source: use method.request.header.NAME",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn, "ttl_seconds": 3601}),
            "",
            format!("{at}.authorizers[0].ttl_seconds"),
            "3601 is out of range: allowed 0 (no caching) to 3600 seconds",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn, "timeout_seconds": 0}),
            "",
            format!("{at}.authorizers[0].timeout_seconds"),
            "allowed 1 to 30 seconds",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": "arn:aws:s3:::bucket"}),
            "",
            format!("{at}.authorizers[0].arn"),
            "",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn,
                               "validation_expression": "Bearer ("}),
            "",
            format!("{at}.authorizers[0].validation_expression"),
            "is not a regular expression",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn,
                               "identity_source": ["$request.querystring.t"]}),
            "",
            format!("{at}.authorizers[0].identity_source"),
            "a TOKEN or JWT authorizer reads one header",
        ),
        (
            serde_json::json!({"name": "a", "type": "request", "arn": arn}),
            "",
            format!("{at}.authorizers[0].identity_source"),
            "needs at least one identity source",
        ),
        (
            serde_json::json!({"name": "a", "type": "request", "arn": arn, "ttl_seconds": 0,
                               "simple_responses": true}),
            "",
            format!("{at}.authorizers[0].simple_responses"),
            "simple responses are an HTTP API's",
        ),
        (
            serde_json::json!({"name": "none", "type": "token", "arn": arn}),
            "",
            format!("{at}.authorizers[0].name"),
            "`none` is reserved",
        ),
        (
            serde_json::json!({"name": "a", "type": "jwt", "jwks_uri": "https://i.example/jwks"}),
            "",
            format!("{at}.authorizers[0].issuer"),
            "required for a JWT authorizer",
        ),
        (
            serde_json::json!({"name": "a", "type": "jwt", "issuer": "https://i.example/"}),
            "",
            format!("{at}.authorizers[0].jwks_uri"),
            "required for a JWT authorizer: the URL of the issuer's JWKS",
        ),
        (
            serde_json::json!({"name": "a", "type": "jwt", "issuer": "https://i.example/",
                               "jwks_uri": "ftp://i.example/jwks"}),
            "",
            format!("{at}.authorizers[0].jwks_uri"),
            "is not an http:// or https:// URL with a host",
        ),
        (
            serde_json::json!({"name": "a", "type": "jwt", "arn": arn, "issuer": "https://i.example/",
                               "jwks_uri": "https://i.example/jwks"}),
            "",
            format!("{at}.authorizers[0].arn"),
            "a JWT authorizer invokes no function",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn, "issuer": "https://i.example/"}),
            "",
            format!("{at}.authorizers[0].type"),
            "belong to a JWT authorizer",
        ),
        (
            serde_json::json!({"name": "a", "type": "token", "arn": arn}),
            r#", "authorizer": "b""#,
            format!("{at}.authorizer"),
            "no authorizer is named `b`; this API's authorizers: a",
        ),
    ] {
        let text = with(authorizer, extra);
        let e = parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.at(), place, "{e}");
        assert!(e.message().contains(words), "{e}");
    }
    // A resource naming an unknown authorizer.
    let text = with(
        serde_json::json!({"name": "a", "type": "token", "arn": arn}),
        "",
    )
    .replace(
        r#""function_error_status": 500}"#,
        r#""function_error_status": 500, "authorizer": "z"}"#,
    );
    let e = parse(text.as_bytes()).unwrap_err();
    assert_eq!(
        e.at(),
        format!("{at}.resources[1] (get /user/{{id}}).authorizer")
    );
    // A good one compiles, and its resources carry it; `none` opens one.
    let text = with(
        serde_json::json!({"name": "a", "type": "token", "arn": arn}),
        r#", "authorizer": "a""#,
    )
    .replace(
        r#""function_error_status": 500}"#,
        r#""function_error_status": 500, "authorizer": "none"}"#,
    );
    let config = parse(text.as_bytes()).unwrap();
    let guarded = |method: &str| {
        let headers = vec![
            (":method".to_owned(), method.to_owned()),
            (":path".to_owned(), "/users/user/7".to_owned()),
        ];
        match config.on_request_headers(headers, crate::RequestInfo::default()) {
            crate::Decision::NeedBody(plan) => plan.target().authorizer().is_some(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((guarded("POST"), guarded("GET")), (true, false));
}
