use super::*;
use serde_json::{Value, json};

fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn input<'a>(
    headers: &'a [(String, String)],
    params: &'a [(String, String)],
    body: &'a [u8],
    query: Option<&'a str>,
) -> EventInput<'a> {
    EventInput {
        method: "POST",
        path: "/users/user/7",
        query,
        headers,
        path_params: params,
        body,
        route_verb: "POST",
        template: "/user/{id}",
        api: Box::leak(Box::new(ApiFacts {
            api_id: "k2v9x0abcd".to_owned(),
            stage: "$default".to_owned(),
            stage_named: false,
            stage_variables: Vec::new(),
            binary_media_types: Vec::new(),
            domain_name: None,
            lifecycle: crate::config::Lifecycle::Published,
            lifecycle_headers: Vec::new(),
        })),
        resource_id: "r3s0ur",
        trace_id: "",
        account_id: "123456789012",
        request_id: "req-1",
        source_ip: "10.0.0.1",
        protocol: "HTTP/1.1",
        time_ms: 1_795_557_040_123,
        authorizer: None,
    }
}

fn event(format: PayloadFormat, input: &EventInput<'_>) -> Value {
    serde_json::from_slice(&build(format, input).unwrap()).unwrap()
}

#[test]
fn text_content_types() {
    for text in [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("Application/JSON"),
        Some("application/problem+json"),
        Some("application/xml"),
        Some("image/svg+xml"),
        Some("text/plain"),
        Some("text/csv;charset=x"),
        Some("application/javascript"),
        Some("application/x-www-form-urlencoded"),
        Some(""),
    ] {
        assert!(is_text(text), "{text:?}");
    }
    for binary in [
        Some("application/octet-stream"),
        Some("image/png"),
        Some("multipart/form-data; boundary=x"),
        Some("application/pdf"),
    ] {
        assert!(!is_text(binary), "{binary:?}");
    }
}

#[test]
fn v1_headers_and_query() {
    let headers = h(&[
        (":method", "POST"),
        (":path", "/users/user/7?a=1&a=2&b=x+y"),
        (":authority", "api.example.com:10000"),
        ("x-multi", "one"),
        ("X-Multi", "two"),
        ("user-agent", "curl/8"),
        ("cookie", "a=1; b=2"),
    ]);
    let params = h(&[("id", "7")]);
    let e = event(
        PayloadFormat::V1,
        &input(&headers, &params, b"", Some("a=1&a=2&b=x+y")),
    );
    assert_eq!(e["headers"]["x-multi"], "two");
    assert_eq!(e["headers"]["host"], "api.example.com:10000");
    assert_eq!(e["headers"]["cookie"], "a=1; b=2");
    assert!(e["headers"].get(":path").is_none());
    assert_eq!(e["multiValueHeaders"]["x-multi"], json!(["one", "two"]));
    assert_eq!(e["queryStringParameters"], json!({"a": "2", "b": "x y"}));
    assert_eq!(
        e["multiValueQueryStringParameters"],
        json!({"a": ["1", "2"], "b": ["x y"]})
    );
    // The domain is the gateway's, never the client's Host.
    assert_eq!(e["requestContext"]["domainName"], Value::Null);
    assert_eq!(e["requestContext"]["identity"]["userAgent"], "curl/8");
    assert_eq!(e["body"], Value::Null);
    assert_eq!(e["isBase64Encoded"], false);
}

#[test]
fn v1_nulls_when_absent() {
    let e = event(PayloadFormat::V1, &input(&[], &[], b"", None));
    for key in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "body",
    ] {
        assert_eq!(e[key], Value::Null, "{key}");
    }
    assert_eq!(e["headers"], json!({}));
    assert_eq!(e["requestContext"]["domainName"], Value::Null);
    // `?` with nothing after it is no query either.
    let e = event(PayloadFormat::V1, &input(&[], &[], b"", Some("")));
    assert_eq!(e["queryStringParameters"], Value::Null);
}

fn facts(binary: &[&str], stage: Option<&str>, domain: Option<&str>) -> &'static ApiFacts {
    let config: crate::Config = serde_json::from_value(json!({
        "apis": [{"name": "users", "version": "v1", "context": "/users", "endpoint": "e",
                  "binary_media_types": binary, "stage": stage, "domain_name": domain,
                  "stage_variables": if stage.is_some() { json!({"color": "blue"}) } else { json!({}) },
                  "resources": [{"verb": "GET", "uri_template": "/",
                                 "arn": "arn:aws:lambda:us-east-1:123456789012:function:f"}]}]
    }))
    .unwrap();
    let compiled = config.compile().unwrap();
    let target = match compiled.table.find("GET", "/users") {
        crate::config::route::RouteMatch::Found { target, .. } => target.clone(),
        other => panic!("{other:?}"),
    };
    Box::leak(Box::new(target.api().clone()))
}

#[test]
fn binary_and_text_bodies() {
    // REST (v1): base64 only for the API's binary media types; anything
    // else is text, as a REST API passes it.
    let png = h(&[("content-type", "image/png")]);
    let e = event(PayloadFormat::V1, &input(&png, &[], b"\x89PNG", None));
    assert_eq!(e["body"], "\u{fffd}PNG");
    assert_eq!(e["isBase64Encoded"], false);
    let binary = EventInput {
        api: facts(&["image/*"], None, None),
        ..input(&png, &[], b"\x89PNG", None)
    };
    let e = event(PayloadFormat::V1, &binary);
    assert_eq!(e["body"], "iVBORw==");
    assert_eq!(e["isBase64Encoded"], true);
    let json_ct = h(&[("content-type", "application/json; charset=utf-8")]);
    let e = event(
        PayloadFormat::V1,
        &EventInput {
            api: facts(&["*/*"], None, None),
            ..input(&json_ct, &[], b"{}", None)
        },
    );
    assert_eq!(
        (&e["body"], &e["isBase64Encoded"]),
        (&json!("e30="), &json!(true))
    );

    // HTTP API (v2): text content types that are UTF-8 go as text.
    let json_ct = h(&[("content-type", "application/json")]);
    let e = event(PayloadFormat::V2, &input(&json_ct, &[], b"{\"a\":1}", None));
    assert_eq!(e["body"], "{\"a\":1}");
    assert_eq!(e["isBase64Encoded"], false);
    let e = event(PayloadFormat::V2, &input(&png, &[], b"\x89PNG", None));
    assert_eq!(e["body"], "iVBORw==");
    assert_eq!(e["isBase64Encoded"], true);

    // Declared text but not UTF-8: base64.
    let e = event(PayloadFormat::V2, &input(&json_ct, &[], b"\xff\xfe", None));
    assert_eq!(e["body"], "//4=");
    assert_eq!(e["isBase64Encoded"], true);

    // No content-type and UTF-8: text.
    for format in [PayloadFormat::V1, PayloadFormat::V2] {
        let e = event(format, &input(&[], &[], "héllo".as_bytes(), None));
        assert_eq!(e["body"], "héllo");
    }
}

#[test]
fn stage_ids_domain_and_trace_come_from_the_gateway() {
    let headers = h(&[
        (":authority", "evil.example:1"),
        (
            "x-amzn-trace-id",
            "Root=1-00000000-000000000000000000000000",
        ),
    ]);
    let input = EventInput {
        api: facts(&[], Some("prod"), Some("api.example.com")),
        trace_id: "Root=1-5759e988-bd862e3fe1be46a994272793",
        ..input(&headers, &[], b"", None)
    };
    let v1 = event(PayloadFormat::V1, &input);
    let v2 = event(PayloadFormat::V2, &input);
    for e in [&v1, &v2] {
        assert_eq!(e["stageVariables"], json!({"color": "blue"}));
        assert_eq!(e["requestContext"]["stage"], "prod");
        assert_eq!(e["requestContext"]["domainName"], "api.example.com");
        assert_eq!(e["requestContext"]["domainPrefix"], "api");
        let api_id = e["requestContext"]["apiId"].as_str().unwrap();
        assert_eq!(api_id.len(), 10);
        assert!(
            api_id
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_eq!(
            e["headers"]["x-amzn-trace-id"],
            "Root=1-5759e988-bd862e3fe1be46a994272793"
        );
    }
    assert_eq!(v1["requestContext"]["apiId"], v2["requestContext"]["apiId"]);
    // REST's context path carries the stage, the event's path does not;
    // an HTTP API's rawPath and http.path carry it.
    assert_eq!(v1["requestContext"]["path"], "/prod/users/user/7");
    assert_eq!(v1["path"], "/users/user/7");
    assert_eq!(v2["rawPath"], "/prod/users/user/7");
    assert_eq!(v2["requestContext"]["http"]["path"], "/prod/users/user/7");
    assert_eq!(v1["requestContext"]["resourceId"], "r3s0ur");
    assert_eq!(v1["requestContext"]["extendedRequestId"], "req-1");
    assert_eq!(
        v1["multiValueHeaders"]["x-amzn-trace-id"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn v2_cookies_joined_headers_and_omissions() {
    let headers = h(&[
        (":authority", "api.example.com"),
        ("cookie", "a=1; b=2"),
        ("cookie", "c=3"),
        ("x-multi", "one"),
        ("x-multi", "two"),
    ]);
    let e = event(
        PayloadFormat::V2,
        &input(&headers, &[], b"", Some("a=1&a=2&c=%20")),
    );
    assert_eq!(e["cookies"], json!(["a=1", "b=2", "c=3"]));
    assert!(e["headers"].get("cookie").is_none());
    assert_eq!(e["headers"]["x-multi"], "one,two");
    assert_eq!(e["rawQueryString"], "a=1&a=2&c=%20");
    assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "c": " "}));
    assert_eq!(e["routeKey"], "POST /user/{id}");
    assert_eq!(e["requestContext"]["stage"], "$default");
    for absent in ["pathParameters", "body"] {
        assert!(e.get(absent).is_none(), "{absent}");
    }
    let e = event(PayloadFormat::V2, &input(&[], &[], b"", None));
    for absent in ["cookies", "queryStringParameters"] {
        assert!(e.get(absent).is_none(), "{absent}");
    }
    assert_eq!(e["rawQueryString"], "");
}

#[test]
fn wso2_body_forms() {
    let e = event(
        PayloadFormat::Wso2,
        &input(&[], &[], b" {\"m\": [1, 2]} ", None),
    );
    assert_eq!(e["body"], json!({"m": [1, 2]}));
    let e = event(PayloadFormat::Wso2, &input(&[], &[], b"plain words", None));
    assert_eq!(e["body"], "plain words");
    let e = event(PayloadFormat::Wso2, &input(&[], &[], b"", None));
    assert_eq!(e["body"], Value::Null);
    let e = event(PayloadFormat::Wso2, &input(&[], &[], b"\xff", None));
    assert_eq!(e["body"], "/w==");
    assert_eq!(e["pathParameters"], json!({}));
    assert_eq!(e["queryStringParameters"], json!({}));
    assert_eq!(e["path"], "/user/{id}");
}

#[test]
fn passthrough_is_the_body() {
    let body = b"\x00\x01raw";
    assert_eq!(
        build(PayloadFormat::Passthrough, &input(&[], &[], body, None)).unwrap(),
        body
    );
}

#[test]
fn limits() {
    assert_eq!(
        max_body_bytes(InvocationType::RequestResponse),
        6 * 1024 * 1024
    );
    assert_eq!(max_body_bytes(InvocationType::Event), 1024 * 1024);
}

#[test]
fn the_head_leaves_the_body_to_finish_and_min_len_never_overshoots() {
    let headers = h(&[("content-type", "application/octet-stream")]);
    let text = h(&[("content-type", "text/plain")]);
    for (format, headers) in [
        (PayloadFormat::V1, &headers),
        (PayloadFormat::V1, &text),
        (PayloadFormat::V2, &headers),
        (PayloadFormat::V2, &text),
        (PayloadFormat::Wso2, &text),
    ] {
        for body in [&b""[..], b"hi \"there\"\n", b"\xff\xfe", br#" {"a": [1]} "#] {
            let input = input(headers, &[], body, None);
            let head = head(format, &input).unwrap().unwrap();
            // The head does not depend on the body.
            assert_eq!(
                head,
                super::head(
                    format,
                    &EventInput {
                        body: b"x",
                        ..input
                    }
                )
                .unwrap()
                .unwrap()
            );
            let event = finish(&head, body).unwrap();
            serde_json::from_slice::<Value>(&event).unwrap();
            assert!(min_len(&head, body.len()) <= event.len(), "{format:?}");
            let base64 = head.body == BodyEncoding::BodyRestBase64 as i32
                || head.body == BodyEncoding::BodyHttpBase64 as i32;
            if base64 && !body.is_empty() {
                // Exact for base64: `,"body":` and the tail are the rest.
                let tail = r#","body":"","isBase64Encoded":true}"#.len();
                assert_eq!(min_len(&head, body.len()) - 1 + tail, event.len());
            }
        }
    }
    assert_eq!(
        head(PayloadFormat::Passthrough, &input(&[], &[], b"x", None)).unwrap(),
        None
    );
}

#[test]
fn finish_refuses_a_head_it_cannot_complete() {
    let good = head(PayloadFormat::V2, &input(&[], &[], b"", None))
        .unwrap()
        .unwrap();
    for (json, body, error) in [
        (&b""[..], good.body, EventError::Head),
        (b"{", good.body, EventError::Head),
        (b"[1", good.body, EventError::Head),
        (&good.json[..], 0, EventError::Encoding(0)),
        (&good.json[..], 99, EventError::Encoding(99)),
    ] {
        let head = EventHead {
            json: json.to_vec(),
            body,
        };
        assert_eq!(finish(&head, b"x"), Err(error));
    }
}

#[test]
fn finish_within_stops_at_the_limit() {
    let head = head(PayloadFormat::V2, &input(&[], &[], b"", None))
        .unwrap()
        .unwrap();
    // Control characters escape to six bytes each.
    let body = vec![1u8; 1000];
    let whole = finish(&head, &body).unwrap();
    assert!(whole.len() > head.json.len() + 6000);
    assert_eq!(finish_within(&head, &body, whole.len()), Ok(whole.clone()));
    for limit in [whole.len() - 1, head.json.len() + 2000, 10] {
        assert_eq!(
            finish_within(&head, &body, limit),
            Err(EventError::TooLarge { limit })
        );
    }
}
