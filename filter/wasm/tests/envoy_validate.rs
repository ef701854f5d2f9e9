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
    assert!(checked >= 1);
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
