//! What `render` writes, read back as Envoy and the invoker read it: the
//! bootstrap's timeouts, routes and clusters (the portal's present or
//! absent), the ECDS resource and the invoker config; and `envoy/dynamic/`
//! is exactly what render writes for `examples/api.yaml`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

use std::path::Path;

use lambdagate_render::{ApiDefinition, Rendered, render};
use support::{StandIns, stand_ins};

mod support;
use serde_yaml::Value;

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:echo";

/// An API whose route timeout is 5 s, with `gateway` (indented lines) added
/// to its gateway section, rendered into `/srv/lambdagate`.
fn rendered(gateway: &str) -> (Rendered, StandIns) {
    let stand_ins = stand_ins();
    let text = format!(
        "name: trust
version: v1
context: /trust
endpoint:
  name: main
  access_method: stored
  region: us-east-1
  credentials: {{access_key_id: {{env: KEY_ID}}, secret_access_key: {{env: SECRET}}}}
resources:
  - verb: GET
    uri_template: /echo
    arn: {ARN}
    timeout_seconds: 5
gateway:
  idle_timeout_seconds: 2
{gateway}"
    );
    let text = text.replace("CONSOLE", &stand_ins.console.display().to_string());
    let api = ApiDefinition::parse(&text, "api.yaml").unwrap();
    let rendered = render(
        &[api],
        Path::new("/srv/lambdagate"),
        Some(&stand_ins.filter),
    )
    .unwrap();
    (rendered, stand_ins)
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap()
}

fn connection_manager(bootstrap: &Value) -> &Value {
    &bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

fn cluster_names(bootstrap: &Value) -> Vec<&str> {
    bootstrap["static_resources"]["clusters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn the_bootstrap_has_the_raised_timeouts_the_invoker_route_and_the_portal() {
    let (rendered, _stand_ins) = rendered("  portal: {console: CONSOLE}\n");
    let text = &rendered.envoy_bootstrap;
    // The forms other tests look for (and one edits) in the rendered file.
    for line in [
        "stream_idle_timeout: 15s",
        "request_timeout: 15s",
        "use_remote_address: true",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(text.starts_with(
        "# Rendered by `lambdagate render`. Start Envoy with\n#   envoy -c /srv/lambdagate/envoy.yaml --concurrency 1\n"
    ));

    let bootstrap = yaml(text);
    let manager = connection_manager(&bootstrap);
    assert_eq!(
        manager["@type"],
        "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
    );
    // The route's 5 s plus the margin, above the gateway's 2 s.
    assert_eq!(manager["stream_idle_timeout"], "15s");
    assert_eq!(manager["request_timeout"], "15s");
    assert_eq!(manager["use_remote_address"], true);
    assert_eq!(manager["xff_num_trusted_hops"], 0);
    assert_eq!(
        bootstrap["static_resources"]["listeners"][0]["address"]["socket_address"],
        yaml("{address: 127.0.0.1, port_value: 8080}")
    );

    let routes = manager["route_config"]["virtual_hosts"][0]["routes"]
        .as_sequence()
        .unwrap();
    assert_eq!(routes.len(), 4, "{routes:?}");
    let invoker = &routes[0];
    assert_eq!(invoker["match"]["path"], lambdagate_proto::http_path::PATH);
    assert_eq!(
        invoker["match"]["headers"],
        yaml("[{name: lambdagate-forwarded, present_match: true}]")
    );
    assert_eq!(
        invoker["route"],
        yaml("{cluster: lambdagate_invoker, timeout: 0s}")
    );
    // Room for one gRPC message (6 MiB + 64 KiB) and one more read (the
    // 1 MiB stream window, the larger of the two reads, and 64 KiB).
    assert_eq!(invoker["request_body_buffer_limit"], 7_471_104);
    let filter_off = yaml(
        "{lambdagate: {'@type': type.googleapis.com/envoy.config.route.v3.FilterConfig, disabled: true}}",
    );
    assert_eq!(routes[1]["match"], yaml("{path: /portal}"));
    assert_eq!(routes[1]["redirect"], yaml("{path_redirect: /portal/}"));
    assert_eq!(routes[1]["typed_per_filter_config"], filter_off);
    assert_eq!(routes[2]["match"], yaml("{prefix: /portal/}"));
    assert_eq!(
        routes[2]["route"],
        yaml("{cluster: lambdagate_portal, prefix_rewrite: /portal/}")
    );
    assert_eq!(routes[2]["typed_per_filter_config"], filter_off);
    // The catch-all: a route entry (to carry the body buffer limit) whose
    // cluster does not exist, so Envoy answers 404 and the local-reply
    // mapper writes the gateway's JSON.
    assert_eq!(routes[3]["match"], yaml("{prefix: /}"));
    assert_eq!(
        routes[3]["route"],
        yaml("{cluster: lambdagate_no_api, cluster_not_found_response_code: NOT_FOUND}")
    );
    assert_eq!(routes[3]["request_body_buffer_limit"], 7_405_568);
    assert_eq!(manager["route_config"]["validate_clusters"], false);
    assert!(!cluster_names(&bootstrap).contains(&"lambdagate_no_api"));

    assert_eq!(
        manager["http_filters"][0]["config_discovery"]["config_source"]["path_config_source"],
        yaml(
            "{path: /srv/lambdagate/ecds/lambdagate.yaml, watched_directory: {path: /srv/lambdagate/ecds}}"
        )
    );
    assert_eq!(
        cluster_names(&bootstrap),
        [
            "lambdagate_invoker",
            "lambdagate_invoker_http1",
            "lambdagate_portal"
        ]
    );
    // The callouts' cluster: the invoker's address as HTTP/1.1, whose idle
    // connections Envoy closes before the invoker would (30 s).
    let callout_cluster = &bootstrap["static_resources"]["clusters"][1];
    assert_eq!(
        callout_cluster["load_assignment"],
        bootstrap["static_resources"]["clusters"][0]["load_assignment"]
            .clone()
            .as_mapping()
            .map(|m| {
                let mut m = m.clone();
                m.insert(yaml("cluster_name"), yaml("lambdagate_invoker_http1"));
                serde_yaml::Value::Mapping(m)
            })
            .unwrap()
    );
    let options = &callout_cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["common_http_protocol_options"]["idle_timeout"],
        "20s"
    );
    assert_eq!(
        options["explicit_http_config"],
        yaml("{http_protocol_options: {}}")
    );
    let portal_cluster = &bootstrap["static_resources"]["clusters"][2];
    assert_eq!(portal_cluster["type"], "STATIC");
    assert_eq!(portal_cluster["connect_timeout"], "1s");
    assert_eq!(
        portal_cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        yaml("{socket_address: {address: 127.0.0.1, port_value: 9902}}")
    );

    let invoker = yaml(&rendered.invoker);
    assert_eq!(invoker["listen"], "127.0.0.1:50051");
    assert_eq!(invoker["admin_listen"], "127.0.0.1:9902");
    assert_eq!(invoker["portal_dir"], "/srv/lambdagate/portal");
    assert_eq!(
        invoker["endpoints"]["main"]["allow"],
        yaml(&format!("[{ARN}]"))
    );
}

#[test]
fn without_the_portal_there_is_no_portal_route_cluster_or_folder() {
    let (rendered, _stand_ins) = rendered(
        "  portal: {enabled: false}\n  invoker: unix:/run/lambdagate/invoker.sock\n  trusted_hops: 2\n",
    );
    let text = &rendered.envoy_bootstrap;
    assert!(!text.contains("lambdagate_portal"), "{text}");
    assert!(rendered.portal.is_none());
    let bootstrap = yaml(text);
    let manager = connection_manager(&bootstrap);
    assert_eq!(manager["xff_num_trusted_hops"], 2);
    let routes = manager["route_config"]["virtual_hosts"][0]["routes"]
        .as_sequence()
        .unwrap();
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert_eq!(routes[1]["match"], yaml("{prefix: /}"));
    assert_eq!(
        cluster_names(&bootstrap),
        ["lambdagate_invoker", "lambdagate_invoker_http1"]
    );
    assert_eq!(
        bootstrap["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
            [0]["endpoint"]["address"],
        yaml("{pipe: {path: /run/lambdagate/invoker.sock}}")
    );
    let invoker = yaml(&rendered.invoker);
    assert_eq!(invoker["listen"], "unix:/run/lambdagate/invoker.sock");
    assert!(invoker.get("portal_dir").is_none(), "{}", rendered.invoker);
    assert!(
        invoker.get("admin_listen").is_none(),
        "{}",
        rendered.invoker
    );
}

#[test]
fn the_ecds_resource_carries_the_filter_and_its_config() {
    let (rendered, stand_ins) = rendered("  data_path: router\n  portal: {enabled: false}\n");
    assert!(rendered.ecds.contains(r#"\"data_path\":\"router\""#));
    let ecds = yaml(&rendered.ecds);
    let resource = &ecds["resources"][0];
    assert_eq!(
        resource["@type"],
        "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    );
    assert_eq!(resource["name"], "lambdagate");
    let wasm = &resource["typed_config"];
    assert_eq!(
        wasm["@type"],
        "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
    );
    let plugin = &wasm["config"];
    assert_eq!(plugin["allow_on_headers_stop_iteration"], true);
    assert_eq!(plugin["failure_policy"], "FAIL_RELOAD");
    assert_eq!(
        plugin["vm_config"]["code"]["local"]["filename"],
        stand_ins.filter.display().to_string().as_str()
    );
    let config: serde_json::Value =
        serde_json::from_str(plugin["configuration"]["value"].as_str().unwrap()).unwrap();
    assert_eq!(config["invoker_cluster"], "lambdagate_invoker");
    assert_eq!(config["data_path"], "router");
    assert_eq!(config["apis"][0]["resources"][0]["arn"], ARN);
}

/// `envoy/dynamic/` is exactly what render writes for the example API.
/// This test only compares; rewriting the folder is a separate step:
/// `cargo run -p lambdagate-render --example write_envoy_dynamic`.
#[test]
fn envoy_dynamic_is_what_render_writes_for_the_example_api() {
    for (path, expected) in support::envoy_dynamic_files() {
        let path = support::repo_root().join(path);
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            committed == expected,
            "{} is not what render writes; `cargo run -p lambdagate-render --example write_envoy_dynamic` rewrites it. Render writes:\n{expected}",
            path.display()
        );
    }
}

/// Every edge limit is in the bootstrap with its default (Envoy's edge
/// guidance), each can be set under `gateway.limits`, and one that cannot
/// work is refused with its place.
#[test]
fn the_edge_limits_have_defaults_and_each_is_settable() {
    let (defaults, _stand_ins) = rendered("  portal: {enabled: false}\n");
    let bootstrap = yaml(&defaults.envoy_bootstrap);
    let overload = &bootstrap["overload_manager"];
    assert_eq!(
        overload["resource_monitors"][0]["typed_config"]["max_heap_size_bytes"],
        1_073_741_824
    );
    assert_eq!(
        overload["resource_monitors"][1]["typed_config"]["max_active_downstream_connections"],
        10_000
    );
    let actions: Vec<&str> = overload["actions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for action in [
        "envoy.overload_actions.shrink_heap",
        "envoy.overload_actions.reset_high_memory_stream",
        "envoy.overload_actions.stop_accepting_requests",
        "envoy.overload_actions.reject_incoming_connections",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    assert_eq!(
        overload["buffer_factory_config"]["minimum_account_to_track_power_of_two"],
        20
    );
    let listener = &bootstrap["static_resources"]["listeners"][0];
    assert_eq!(listener["per_connection_buffer_limit_bytes"], 65_536);
    let manager = connection_manager(&bootstrap);
    assert_eq!(manager["request_headers_timeout"], "10s");
    assert_eq!(
        manager["common_http_protocol_options"],
        yaml(
            "{idle_timeout: 60s, max_headers_count: 100, headers_with_underscores_action: REJECT_REQUEST}"
        )
    );
    assert_eq!(
        manager["http2_protocol_options"],
        yaml(
            "{max_concurrent_streams: 100, initial_stream_window_size: 1048576, initial_connection_window_size: 4194304}"
        )
    );
    assert_eq!(manager["normalize_path"], true);
    assert_eq!(manager["merge_slashes"], true);
    assert_eq!(
        manager["path_with_escaped_slashes_action"],
        "KEEP_UNCHANGED"
    );
    let ecds = yaml(&defaults.ecds);
    let filter: serde_json::Value = serde_json::from_str(
        ecds["resources"][0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(filter["upload_budget_bytes"], 268_435_456);
    assert_eq!(yaml(&defaults.invoker)["max_inflight_bytes"], 268_435_456);

    let (set, _stand_ins) = rendered(
        "  portal: {enabled: false}
  limits:
    heap_bytes: 536870912
    connections: 500
    invoker_inflight_bytes: 33554432
    upload_budget_bytes: 67108864
    connection_buffer_bytes: 32768
    http2_max_concurrent_streams: 10
    http2_stream_window_bytes: 65536
    http2_connection_window_bytes: 1048576
    request_headers_timeout_seconds: 3
    connection_idle_timeout_seconds: 30
    max_request_headers: 50
",
    );
    let bootstrap = yaml(&set.envoy_bootstrap);
    let overload = &bootstrap["overload_manager"];
    assert_eq!(
        overload["resource_monitors"][0]["typed_config"]["max_heap_size_bytes"],
        536_870_912
    );
    assert_eq!(
        overload["resource_monitors"][1]["typed_config"]["max_active_downstream_connections"],
        500
    );
    let listener = &bootstrap["static_resources"]["listeners"][0];
    assert_eq!(listener["per_connection_buffer_limit_bytes"], 32_768);
    let manager = connection_manager(&bootstrap);
    assert_eq!(manager["request_headers_timeout"], "3s");
    assert_eq!(
        manager["common_http_protocol_options"],
        yaml(
            "{idle_timeout: 30s, max_headers_count: 50, headers_with_underscores_action: REJECT_REQUEST}"
        )
    );
    assert_eq!(
        manager["http2_protocol_options"],
        yaml(
            "{max_concurrent_streams: 10, initial_stream_window_size: 65536, initial_connection_window_size: 1048576}"
        )
    );
    // The catch-all's body buffer: one 6 MiB payload, the larger read
    // (now the 64 KiB window) and 64 KiB.
    let routes = manager["route_config"]["virtual_hosts"][0]["routes"]
        .as_sequence()
        .unwrap();
    assert_eq!(
        routes.last().unwrap()["request_body_buffer_limit"],
        6_291_456 + 65_536 + 65_536
    );
    let ecds = yaml(&set.ecds);
    assert!(
        ecds["resources"][0]["typed_config"]["config"]["configuration"]["value"]
            .as_str()
            .unwrap()
            .contains("\"upload_budget_bytes\":67108864")
    );
    assert_eq!(yaml(&set.invoker)["max_inflight_bytes"], 33_554_432);

    for (limits, field) in [
        ("{connections: 0}", "gateway.limits.connections"),
        (
            "{upload_budget_bytes: 1000}",
            "gateway.limits.upload_budget_bytes",
        ),
        (
            "{http2_stream_window_bytes: 10}",
            "gateway.limits.http2_stream_window_bytes",
        ),
        ("{no_such_limit: 1}", "no_such_limit"),
    ] {
        let text = format!(
            "name: t\nversion: v1\ncontext: /t\nendpoint: {{name: main, access_method: role, region: us-east-1}}\nresources: [{{verb: GET, uri_template: /x, arn: {ARN}}}]\ngateway:\n  limits: {limits}\n"
        );
        let refused = ApiDefinition::parse(&text, "api.yaml")
            .and_then(|api| render(&[api], Path::new("/srv/lambdagate"), None).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(refused.contains("api.yaml"), "{refused}");
        assert!(refused.contains(field), "{field} in {refused}");
    }
}

/// The hand-written examples (`envoy/*.yaml`) apply the edge limits render
/// writes by default: the same overload manager, connection buffer,
/// connection-manager settings and catch-all route, so they cannot drift.
#[test]
fn the_hand_written_examples_carry_the_default_edge_limits() {
    let edge =
        lambdagate_render::edge_parts(&lambdagate_render::limits::EdgeLimits::default()).unwrap();
    for name in ["minimal", "shared-listener", "unix-socket"] {
        let path = support::repo_root().join(format!("envoy/{name}.yaml"));
        let example: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(example["overload_manager"], edge.overload_manager, "{name}");
        let listener = &example["static_resources"]["listeners"][0];
        assert_eq!(
            listener["per_connection_buffer_limit_bytes"], edge.listener_buffer_limit_bytes,
            "{name}"
        );
        let manager = &listener["filter_chains"][0]["filters"][0]["typed_config"];
        for (field, value) in &edge.connection_manager {
            assert_eq!(&manager[field], value, "{name}: {field}");
        }
        assert_eq!(
            manager["route_config"]["validate_clusters"], false,
            "{name}"
        );
        let routes = manager["route_config"]["virtual_hosts"][0]["routes"]
            .as_array()
            .unwrap();
        assert_eq!(routes.last().unwrap(), &edge.catch_all_route, "{name}");
    }
}
