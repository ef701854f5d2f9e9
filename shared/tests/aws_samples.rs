//! lambdagate's events against the API Gateway sample events that AWS's
//! runtime projects publish (`tests/fixtures/aws`, sources and licences in
//! its README): samples lambdagate's own code did not write.
//!
//! Each sample's request is rebuilt from the sample itself (method, path,
//! query, headers as Envoy hands them over, cookies, body, and an API
//! configured with the sample's route, stage, stage variables and domain)
//! and goes through the real code path (`on_request_headers` →
//! `build_invoke`). The event must then have the sample's structure (every
//! key, same JSON type; lambdagate adds no key) and the values the request
//! determines. Every difference is listed below with its reason: one not
//! listed fails the test, and so does a listed one that no longer occurs.
//!
//! `cargo test -p lambdagate-core --test aws_samples -- --nocapture` prints
//! per sample what matched and each listed difference.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use lambdagate_core::{CompiledConfig, Decision, RequestInfo};
use serde_json::{Map, Value, json};

/// The samples, in `tests/fixtures/aws`.
const SAMPLES: [&str; 7] = [
    "rust-runtime-example-apigw-request.json",
    "rust-runtime-example-apigw-request-multi-value-parameters.json",
    "rust-runtime-example-apigw-v2-request-no-authorizer.json",
    "rust-runtime-example-apigw-v2-request-multi-value-parameters.json",
    "aws-lambda-go-apigw-request.json",
    "aws-lambda-go-apigw-v2-request-no-authorizer.json",
    "aws-lambda-go-apigw-v2-request-jwt-authorizer.json",
];

/// A difference that is expected, and why.
struct Known {
    /// Applies to the samples whose file name contains one of these.
    samples: &'static [&'static str],
    /// JSON pointer into the event, or `header:<name>` for a header (in
    /// `headers` and `multiValueHeaders` alike).
    path: &'static str,
    why: &'static str,
}

const fn known(samples: &'static [&'static str], path: &'static str, why: &'static str) -> Known {
    Known { samples, path, why }
}

/// File-name parts: the REST (1.0) samples, the HTTP API (2.0) ones, and
/// the 2.0 ones with cookies (and authorizers).
const V1: &[&str] = &["apigw-request"];
const V2: &[&str] = &["apigw-v2-request"];
const V2_COOKIES: &[&str] = &[
    "v2-request-jwt-authorizer",
    "v2-request-multi-value-parameters",
];

/// Deliberate: lambdagate is right for a request like the sample's, or has
/// nothing to fill the field with.
const DELIBERATE: &[Known] = &[
    known(
        V1,
        "/isBase64Encoded",
        "API Gateway sends it in every REST event (AWS's input-format docs); these samples predate it",
    ),
    known(
        &["rust-runtime-example-apigw-request"],
        "/requestContext/extendedRequestId",
        "API Gateway sends it (the aws-lambda-go sample has it); lambdagate fills it with its request id (README)",
    ),
    known(
        V1,
        "/requestContext/identity/principalOrgId",
        "in AWS's documented REST identity block; these samples predate it",
    ),
    known(
        &[
            "apigw-request",
            "v2-request-jwt-authorizer",
            "v2-request-multi-value-parameters",
        ],
        "/requestContext/authorizer",
        "present only when the method or route has an authorizer; lambdagate has none",
    ),
    known(
        V2,
        "/requestContext/authentication",
        "mutual-TLS client certificate, only on a custom domain with mTLS; the filter is not given one",
    ),
    known(
        &["aws-lambda-go-apigw-request"],
        "/requestContext/identity/clientCert",
        "mutual-TLS client certificate, only on a custom domain with mTLS; the filter is not given one",
    ),
    known(
        &[
            "apigw-request",
            "v2-request-jwt-authorizer",
            "v2-request-multi-value-parameters",
        ],
        "header:x-amzn-trace-id",
        "API Gateway adds its X-Ray trace header to every request, so does lambdagate (README: Tracing); this sample has none",
    ),
    known(
        V2_COOKIES,
        "header:host",
        "every HTTP/1.1 request has Host (Envoy's :authority) and API Gateway passes it; this trimmed sample lists one or two headers only",
    ),
];

/// Where lambdagate falls short of the samples; each says the fix.
const GAPS: &[Known] = &[
    known(
        V2,
        "/routeKey",
        "the samples use the `$default` route; lambdagate has no catch-all route, its routeKey is always `VERB /template` \
         (here the nearest: ANY / or ANY /{proxy+}); README, Differences from API Gateway",
    ),
    known(V2, "/requestContext/routeKey", "as /routeKey"),
];

/// Where a sample contradicts itself or lambdagate's stated rules (the
/// rules are asserted on lambdagate's event in `check_rules`, whatever the
/// sample says).
const SAMPLE_CONFLICTS: &[Known] = &[
    known(
        V1,
        "/requestContext/path",
        "stage testStage, an execute-api domainName, yet path /hello/world without the stage; lambdagate's rule puts \
         /testStage first, as AWS's $context.path reference does for the invoke URL (/{stage}/root/child)",
    ),
    known(
        V1,
        "/requestContext/domainPrefix",
        "the sample's domainPrefix y0ne18dixk is not the first label of its domainName gy415nuibc.execute-api...",
    ),
    known(
        &["example-apigw-request-multi-value-parameters"],
        "/queryStringParameters",
        "name=me&name=me2 gives name `me` (the first) while its headers keep the last of headerValue, headerValue2; \
         REST keeps the last value in both, and so does lambdagate",
    ),
    known(
        V2_COOKIES,
        "/pathParameters",
        "route $default has no path parameters, and proxy=hello/world is not in rawPath /my/path; \
         lambdagate (configured ANY /{proxy+}) gives proxy=my/path",
    ),
    known(
        V2_COOKIES,
        "/requestContext/time",
        "12/Mar/2020:19:03:58+0000 is not the sample's timeEpoch 1583348638390 (04/Mar/2020:19:03:58 +0000) and lacks the space before +0000",
    ),
    known(
        V2_COOKIES,
        "/requestContext/http/userAgent",
        "userAgent `agent` without a user-agent header; lambdagate takes it from the header (null without one)",
    ),
];

/// Object keys whose children are data (names from the request), not
/// structure: compared by value, not key by key.
const DATA_MAPS: [&str; 7] = [
    "/headers",
    "/multiValueHeaders",
    "/queryStringParameters",
    "/multiValueQueryStringParameters",
    "/pathParameters",
    "/stageVariables",
    "/cookies",
];

/// Where lambdagate has no data and `null` stands for the sample's value.
const NO_DATA: [&str; 2] = ["/requestContext/identity/", "/requestContext/authorizer"];

/// The values a request determines, as JSON pointers (headers apart).
const V1_VALUES: &[&str] = &[
    "/httpMethod",
    "/path",
    "/resource",
    "/queryStringParameters",
    "/multiValueQueryStringParameters",
    "/pathParameters",
    "/stageVariables",
    "/body",
    "/isBase64Encoded",
    "/requestContext/stage",
    "/requestContext/path",
    "/requestContext/resourcePath",
    "/requestContext/httpMethod",
    "/requestContext/domainName",
    "/requestContext/domainPrefix",
    "/requestContext/protocol",
    "/requestContext/requestId",
    "/requestContext/requestTime",
    "/requestContext/requestTimeEpoch",
    "/requestContext/identity/sourceIp",
    "/requestContext/identity/userAgent",
];

const V2_VALUES: &[&str] = &[
    "/version",
    "/routeKey",
    "/rawPath",
    "/rawQueryString",
    "/cookies",
    "/queryStringParameters",
    "/pathParameters",
    "/stageVariables",
    "/body",
    "/isBase64Encoded",
    "/requestContext/routeKey",
    "/requestContext/stage",
    "/requestContext/domainName",
    "/requestContext/domainPrefix",
    "/requestContext/requestId",
    "/requestContext/time",
    "/requestContext/timeEpoch",
    "/requestContext/http/method",
    "/requestContext/http/path",
    "/requestContext/http/protocol",
    "/requestContext/http/sourceIp",
    "/requestContext/http/userAgent",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    /// REST API, payload 1.0.
    V1,
    /// HTTP API, payload 2.0.
    V2,
}

fn load(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn text<'a>(sample: &'a Value, pointer: &str) -> &'a str {
    sample
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the sample has no string at {pointer}"))
}

/// A request rebuilt from a sample, and the API that serves it.
struct Rebuilt {
    format: Format,
    config: CompiledConfig,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    info: RequestInfo,
    /// The path the client asked for (no stage: clients call the base path).
    path: String,
    stage: Option<String>,
    /// The resource template lambdagate is configured with.
    template: String,
}

/// Percent-encodes a query key or value (unreserved characters stay).
fn encode_query(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

fn rebuild(sample: &Value) -> Rebuilt {
    let format = if sample["version"] == "2.0" {
        Format::V2
    } else {
        Format::V1
    };
    let context = &sample["requestContext"];
    let stage = text(sample, "/requestContext/stage");
    let stage = (stage != "$default").then(|| stage.to_owned());

    let (method, path, query, verb, template) = match format {
        Format::V1 => {
            // REST: `path` never has the stage; the query comes from the
            // multi-value map (REST has no raw query string).
            let query: Vec<String> = sample["multiValueQueryStringParameters"]
                .as_object()
                .into_iter()
                .flatten()
                .flat_map(|(key, values)| {
                    values.as_array().unwrap().iter().map(move |value| {
                        format!(
                            "{}={}",
                            encode_query(key),
                            encode_query(value.as_str().unwrap())
                        )
                    })
                })
                .collect();
            (
                text(sample, "/httpMethod").to_owned(),
                text(sample, "/path").to_owned(),
                query.join("&"),
                "ANY".to_owned(),
                text(sample, "/resource").to_owned(),
            )
        }
        Format::V2 => {
            // HTTP API: rawPath has the stage first when one is named; the
            // client's path is the rest.
            let raw_path = text(sample, "/rawPath");
            let path = match &stage {
                Some(stage) => raw_path
                    .strip_prefix(&format!("/{stage}"))
                    .unwrap_or_else(|| {
                        panic!("rawPath {raw_path} does not start with stage /{stage}")
                    }),
                None => raw_path,
            };
            let route_key = text(sample, "/routeKey");
            // lambdagate has no `$default` route: the nearest is the
            // catch-all its path parameters imply (see GAPS).
            let (verb, template) = if route_key == "$default" {
                let template = if sample.pointer("/pathParameters/proxy").is_some() {
                    "/{proxy+}"
                } else {
                    "/"
                };
                ("ANY", template)
            } else {
                route_key.split_once(' ').unwrap()
            };
            (
                text(sample, "/requestContext/http/method").to_owned(),
                path.to_owned(),
                text(sample, "/rawQueryString").to_owned(),
                verb.to_owned(),
                template.to_owned(),
            )
        }
    };

    let mut api = json!({
        "name": "sample", "version": "v1", "context": "/", "endpoint": "main",
        "payload_format": if format == Format::V1 { "v1" } else { "v2" },
        "domain_name": context["domainName"],
        "resources": [{"verb": verb, "uri_template": template, "arn": common::ARN}],
    });
    if let Some(stage) = &stage {
        api["stage"] = json!(stage);
    }
    if let Some(variables) = sample.get("stageVariables").filter(|v| !v.is_null()) {
        api["stage_variables"] = variables.clone();
    }
    let config_json = json!({"invoker_cluster": "lambdagate_invoker", "apis": [api]});
    let config = lambdagate_core::parse(config_json.to_string().as_bytes()).unwrap();

    // Headers as Envoy hands them to the filter: names lower-cased, Host
    // as `:authority`, every value of a repeated header on its own line.
    let mut lines: Vec<(String, String)> = Vec::new();
    if let Some(multi) = sample["multiValueHeaders"].as_object() {
        for (name, values) in multi {
            for value in values.as_array().unwrap() {
                lines.push((
                    name.to_ascii_lowercase(),
                    value.as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    for (name, value) in sample["headers"].as_object().into_iter().flatten() {
        let name = name.to_ascii_lowercase();
        if !lines.iter().any(|(n, _)| *n == name) {
            lines.push((name, value.as_str().unwrap().to_owned()));
        }
    }
    if let Some(cookies) = sample["cookies"].as_array() {
        let cookies: Vec<&str> = cookies.iter().map(|c| c.as_str().unwrap()).collect();
        lines.push(("cookie".to_owned(), cookies.join("; ")));
    }
    let authority = match lines.iter().position(|(n, _)| n == "host") {
        Some(i) => lines.remove(i).1,
        None => text(sample, "/requestContext/domainName").to_owned(),
    };
    let path_and_query = if query.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query}")
    };
    let mut headers = vec![
        (":method".to_owned(), method),
        (":path".to_owned(), path_and_query),
        (":authority".to_owned(), authority),
        (":scheme".to_owned(), "https".to_owned()),
    ];
    headers.extend(lines);

    let body = match sample.get("body").and_then(Value::as_str) {
        None => Vec::new(),
        Some(body) if sample["isBase64Encoded"] == true => STANDARD.decode(body).unwrap(),
        Some(body) => body.as_bytes().to_vec(),
    };

    let (source_ip, protocol, epoch) = match format {
        Format::V1 => (
            "/requestContext/identity/sourceIp",
            "/requestContext/protocol",
            "/requestContext/requestTimeEpoch",
        ),
        Format::V2 => (
            "/requestContext/http/sourceIp",
            "/requestContext/http/protocol",
            "/requestContext/timeEpoch",
        ),
    };
    let info = RequestInfo {
        request_id: text(sample, "/requestContext/requestId").to_owned(),
        source_ip: text(sample, source_ip).to_owned(),
        now_ms: sample.pointer(epoch).and_then(Value::as_u64).unwrap(),
        protocol: text(sample, protocol).to_owned(),
    };
    Rebuilt {
        format,
        config,
        headers,
        body,
        info,
        path,
        stage,
        template,
    }
}

fn lambdagate_event(request: &Rebuilt) -> Value {
    let plan = match request
        .config
        .on_request_headers(request.headers.clone(), request.info.clone())
    {
        Decision::NeedBody(plan) => plan,
        other => panic!("the rebuilt request was not routed: {other:?}"),
    };
    serde_json::from_slice(
        &plan
            .build_invoke(request.body.as_slice())
            .unwrap()
            .lambda_event()
            .unwrap(),
    )
    .unwrap()
}

/// A difference between a sample and lambdagate's event.
struct Difference {
    path: String,
    what: String,
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key path of the sample must be in lambdagate's event with the
/// same JSON type (`null` where lambdagate has no data); lambdagate's
/// objects must have no key the sample's lack.
fn structure(
    sample: &Map<String, Value>,
    ours: &Map<String, Value>,
    at: &str,
    out: &mut Vec<Difference>,
    nulls: &mut Vec<String>,
) {
    for (key, theirs) in sample {
        let path = format!("{at}/{key}");
        let Some(mine) = ours.get(key) else {
            out.push(Difference {
                what: format!("missing (sample: {})", type_name(theirs)),
                path,
            });
            continue;
        };
        match (theirs, mine) {
            (Value::Null, _) => {}
            (_, Value::Null) => {
                if NO_DATA.iter().any(|p| path.starts_with(p)) {
                    nulls.push(path);
                } else {
                    out.push(Difference {
                        what: format!("null (sample: {} {theirs})", type_name(theirs)),
                        path,
                    });
                }
            }
            // Data maps (headers, ...) are compared by value instead.
            (Value::Object(theirs), Value::Object(mine)) if !DATA_MAPS.contains(&path.as_str()) => {
                structure(theirs, mine, &path, out, nulls);
            }
            (Value::Array(theirs), Value::Array(mine)) => {
                if let (Some(a), Some(b)) = (theirs.first(), mine.first())
                    && type_name(a) != type_name(b)
                {
                    out.push(Difference {
                        what: format!("array of {} (sample: of {})", type_name(b), type_name(a)),
                        path,
                    });
                }
            }
            _ if type_name(theirs) != type_name(mine) => out.push(Difference {
                what: format!("{} (sample: {})", type_name(mine), type_name(theirs)),
                path,
            }),
            _ => {}
        }
    }
    for key in ours.keys().filter(|k| !sample.contains_key(*k)) {
        out.push(Difference {
            path: format!("{at}/{key}"),
            what: "added by lambdagate (not in the sample)".to_owned(),
        });
    }
}

/// Compares the values at `pointer` (absent and `null` are the same);
/// returns what matched.
fn value(sample: &Value, ours: &Value, pointer: &str, out: &mut Vec<Difference>) -> Option<String> {
    let theirs = sample.pointer(pointer).filter(|v| !v.is_null());
    let mine = ours.pointer(pointer).filter(|v| !v.is_null());
    if theirs == mine {
        return Some(if theirs.is_none() {
            format!("{pointer}(absent)")
        } else {
            pointer.to_owned()
        });
    }
    let show = |v: Option<&Value>| v.map_or("absent".to_owned(), Value::to_string);
    out.push(Difference {
        path: pointer.to_owned(),
        what: format!("lambdagate {} (sample: {})", show(mine), show(theirs)),
    });
    None
}

/// A header map with lower-cased names (lambdagate's are lower-case, as
/// Envoy's; the samples keep the client's case: names compare
/// case-insensitively, values exactly).
fn lower_keys(map: Option<&Value>) -> BTreeMap<String, Value> {
    map.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// Compares a header map; returns "matched of the sample's".
fn headers(sample: &Value, ours: &Value, pointer: &str, out: &mut Vec<Difference>) -> String {
    let theirs = lower_keys(sample.pointer(pointer));
    let mine = lower_keys(ours.pointer(pointer));
    let matched = theirs
        .iter()
        .filter(|(k, v)| mine.get(*k) == Some(v))
        .count();
    for name in theirs.keys().chain(mine.keys()) {
        let (a, b) = (theirs.get(name), mine.get(name));
        if a == b {
            continue;
        }
        let path = format!("header:{name}");
        if out.iter().any(|d| d.path == path) {
            continue;
        }
        let show = |v: Option<&Value>| v.map_or("absent".to_owned(), Value::to_string);
        out.push(Difference {
            what: format!("{pointer}: lambdagate {} (sample: {})", show(b), show(a)),
            path,
        });
    }
    format!("{pointer}({matched}/{} of the sample's)", theirs.len())
}

/// lambdagate's own rules, asserted whatever the sample says: REST `path`
/// is the client's path, `requestContext.path` has a named stage first,
/// and `headers` / `queryStringParameters` keep the last of repeated
/// values; an HTTP API's `rawPath` and `http.path` have a named stage first.
fn check_rules(request: &Rebuilt, ours: &Value, file: &str) {
    let staged = match &request.stage {
        Some(stage) => format!("/{stage}{}", request.path),
        None => request.path.clone(),
    };
    match request.format {
        Format::V1 => {
            assert_eq!(ours["path"], request.path.as_str(), "{file}: path");
            assert_eq!(
                ours["requestContext"]["path"],
                staged.as_str(),
                "{file}: requestContext.path"
            );
            assert_eq!(
                ours["resource"],
                request.template.as_str(),
                "{file}: resource"
            );
            // The single-value maps hold the last of the multi-value ones.
            for (single, multi) in [
                ("headers", "multiValueHeaders"),
                ("queryStringParameters", "multiValueQueryStringParameters"),
            ] {
                for (name, values) in ours[multi].as_object().into_iter().flatten() {
                    let last = values.as_array().unwrap().last().unwrap();
                    assert_eq!(&ours[single][name], last, "{file}: {single}.{name}");
                }
            }
        }
        Format::V2 => {
            assert_eq!(ours["rawPath"], staged.as_str(), "{file}: rawPath");
            assert_eq!(
                ours["requestContext"]["http"]["path"],
                staged.as_str(),
                "{file}: http.path"
            );
        }
    }
    // A greedy template's parameter is the rest of the path.
    if request.template == "/{proxy+}" {
        let rest = request.path.strip_prefix('/').unwrap();
        assert_eq!(
            ours["pathParameters"]["proxy"], rest,
            "{file}: pathParameters.proxy"
        );
    }
}

/// The lists of expected differences, by kind.
const LISTS: [(&str, &[Known]); 3] = [
    ("deliberate", DELIBERATE),
    ("lambdagate gap", GAPS),
    ("sample conflict", SAMPLE_CONFLICTS),
];

/// The entry that explains a difference: (list, index in it).
fn explain(file: &str, difference: &Difference) -> Option<(usize, usize)> {
    LISTS.iter().enumerate().find_map(|(list, (_, entries))| {
        entries
            .iter()
            .position(|k| k.samples.iter().any(|s| file.contains(s)) && k.path == difference.path)
            .map(|entry| (list, entry))
    })
}

#[test]
fn lambdagate_events_match_aws_published_samples() {
    let mut unexplained = Vec::new();
    let mut used = BTreeSet::new();
    for file in SAMPLES {
        let sample = load(file);
        let request = rebuild(&sample);
        let ours = lambdagate_event(&request);
        check_rules(&request, &ours, file);

        let (mut differences, mut nulls) = (Vec::new(), Vec::new());
        structure(
            sample.as_object().unwrap(),
            ours.as_object().unwrap(),
            "",
            &mut differences,
            &mut nulls,
        );
        let (values, header_maps): (&[&str], &[&str]) = match request.format {
            Format::V1 => (V1_VALUES, &["/headers", "/multiValueHeaders"]),
            Format::V2 => (V2_VALUES, &["/headers"]),
        };
        let mut matched: Vec<String> = Vec::new();
        for pointer in values {
            matched.extend(value(&sample, &ours, pointer, &mut differences));
        }
        for pointer in header_maps {
            matched.push(headers(&sample, &ours, pointer, &mut differences));
        }
        // A value that is also a structural difference is reported once.
        let mut seen = BTreeSet::new();
        differences.retain(|d| seen.insert(d.path.clone()));

        println!("{file}\n  matched: {}", matched.join(" "));
        if !nulls.is_empty() {
            println!("  null (no data in lambdagate): {}", nulls.join(" "));
        }
        for difference in &differences {
            match explain(file, difference) {
                Some((list, entry)) => {
                    used.insert((list, entry));
                    let (kind, entries) = LISTS[list];
                    let why = entries[entry].why;
                    println!("  {kind}: {} {} — {why}", difference.path, difference.what);
                }
                None => {
                    unexplained.push(format!("{file}: {} {}", difference.path, difference.what))
                }
            }
        }
    }
    let stale: Vec<String> = LISTS
        .iter()
        .enumerate()
        .flat_map(|(list, (kind, entries))| {
            entries
                .iter()
                .enumerate()
                .map(move |(entry, k)| (list, entry, kind, k))
        })
        .filter(|(list, entry, _, _)| !used.contains(&(*list, *entry)))
        .map(|(_, _, kind, k)| format!("{kind}: {} in {:?}", k.path, k.samples))
        .collect();
    assert!(
        unexplained.is_empty() && stale.is_empty(),
        "differences from AWS's samples that no list explains:\n{}\n\
         listed differences that no longer occur (remove them):\n{}",
        unexplained.join("\n"),
        stale.join("\n")
    );
}
