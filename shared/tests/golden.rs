//! The events for the seed document's request, compared with reviewed
//! fixtures (as JSON values: key order and spacing do not matter). These
//! tests only compare; rewriting the fixtures is a separate step,
//! `cargo run -p lambdagate-core --example bless_golden_events`, whose diff
//! is reviewed before it is kept.

// Test code: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use serde_json::Value;

fn check(fixture: &str) {
    let (context, _) = common::GOLDEN_EVENTS
        .iter()
        .find(|(_, f)| *f == fixture)
        .unwrap();
    let actual = common::golden_event(context);
    let path = common::fixture_path(fixture);
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
    check("event_v1.json");
}

#[test]
fn v2_event_matches_the_fixture() {
    check("event_v2.json");
}

#[test]
fn wso2_event_matches_the_fixture() {
    check("event_wso2.json");
}

#[test]
fn passthrough_is_the_body_unchanged() {
    let config = common::config();
    let payload = common::event(&config, common::seed_headers("raw"), common::SEED_BODY);
    assert_eq!(payload, common::SEED_BODY);
}
