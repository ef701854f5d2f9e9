//! The events for the seed document's request, compared with reviewed
//! fixtures (as JSON values: key order and spacing do not matter).
//! `LAMBDAGATE_BLESS=1 cargo test -p lambdagate-core --test golden`
//! rewrites the fixtures; review the diff before keeping it.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use serde_json::Value;

fn check(context: &str, fixture: &str) {
    let config = common::config();
    let payload = common::event(&config, common::seed_headers(context), common::SEED_BODY);
    let actual: Value = serde_json::from_slice(&payload).unwrap();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    if std::env::var_os("LAMBDAGATE_BLESS").is_some() {
        let pretty = serde_json::to_string_pretty(&actual).unwrap();
        std::fs::write(&path, pretty + "\n").unwrap();
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        actual,
        expected,
        "{fixture} differs; actual:\n{}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

#[test]
fn v1_event_matches_the_fixture() {
    check("users", "event_v1.json");
}

#[test]
fn v2_event_matches_the_fixture() {
    check("users2", "event_v2.json");
}

#[test]
fn wso2_event_matches_the_fixture() {
    check("userswso2", "event_wso2.json");
}

#[test]
fn passthrough_is_the_body_unchanged() {
    let config = common::config();
    let payload = common::event(&config, common::seed_headers("raw"), common::SEED_BODY);
    assert_eq!(payload, common::SEED_BODY);
}
