//! Real Envoy (`envoy --mode validate`, which loads the .wasm and runs the
//! filter's `on_configure`) accepts every example config in `envoy/` and
//! refuses a broken filter config with the filter's own message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a panic is a failed test

use std::path::Path;
use std::process::Command;

use lambdagate_harness::{filter_wasm, repo_root, venv};

fn validate(config: &Path) -> (bool, String) {
    filter_wasm();
    let out = Command::new(venv().join("bin/envoy"))
        .args(["--mode", "validate", "--disable-hot-restart", "-c"])
        .arg(config)
        .current_dir(repo_root())
        .output()
        .expect("run envoy");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_example_config_validates_and_loads_the_filter() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("envoy")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml")
            && !path.to_string_lossy().contains("/dynamic/")
        {
            let (ok, log) = validate(&path);
            assert!(ok, "{} was refused:\n{log}", path.display());
            assert!(
                log.contains("lambdagate: configured"),
                "{}: filter not loaded:\n{log}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "minimal, unix-socket and shared-listener at least"
    );
    let (ok, log) = validate(&repo_root().join("envoy/dynamic/envoy.yaml"));
    assert!(ok, "envoy/dynamic/envoy.yaml was refused:\n{log}");
}

/// `--mode validate` does not read ECDS files, so the dynamic example's
/// filter config is checked by putting it into a static bootstrap.
#[test]
fn the_dynamic_examples_filter_config_validates_when_embedded() {
    let ecds: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("envoy/dynamic/ecds/lambdagate.yaml")).unwrap(),
    )
    .unwrap();
    let filter_config = ecds["resources"][0]["typed_config"].clone();
    assert!(filter_config.is_mapping(), "{ecds:?}");
    let mut bootstrap: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("envoy/minimal.yaml")).unwrap(),
    )
    .unwrap();
    let filter = &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        [0]["typed_config"]["http_filters"][0];
    assert_eq!(filter["name"], "lambdagate");
    filter["typed_config"] = filter_config;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("embedded.yaml");
    std::fs::write(&path, serde_yaml::to_string(&bootstrap).unwrap()).unwrap();
    let (ok, log) = validate(&path);
    assert!(ok, "{log}");
    assert!(log.contains("lambdagate: configured"), "{log}");
}

#[test]
fn a_broken_filter_config_is_refused_with_the_filters_message() {
    let minimal = std::fs::read_to_string(repo_root().join("envoy/minimal.yaml")).unwrap();
    let cases = [
        (
            minimal.replace("function:orders-create-user", "function:orders.create"),
            "lambdagate: invalid plugin configuration: apis[0] (users).resources[0] (POST /user/{id}).arn:",
        ),
        (
            minimal.replace("\"timeout_seconds\": 30", "\"timeout_seconds\": 901"),
            "timeout_seconds",
        ),
        (
            minimal.replace("\"context\": \"/users\"", "\"contxt\": \"/users\""),
            "unknown field `contxt`",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (yaml, expected)) in cases.iter().enumerate() {
        assert_ne!(yaml, &minimal, "case {i} changed nothing");
        let path = dir.path().join(format!("broken-{i}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let (ok, log) = validate(&path);
        assert!(!ok, "case {i} was accepted:\n{log}");
        assert!(
            log.contains(expected),
            "case {i}: expected {expected:?} in:\n{log}"
        );
    }
}
