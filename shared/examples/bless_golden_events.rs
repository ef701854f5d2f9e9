//! Rewrites the golden event fixtures (`tests/fixtures/event_*.json`) from
//! what the core builds now: the explicit step after a deliberate change
//! to the events; `tests/golden.rs` only compares. Review the diff before
//! keeping it.
//!
//!     cargo run -p lambdagate-core --example bless_golden_events
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a developer tool

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    for (context, fixture) in common::GOLDEN_EVENTS {
        let pretty = serde_json::to_string_pretty(&common::golden_event(context)).unwrap();
        let path = common::fixture_path(fixture);
        std::fs::write(&path, pretty + "\n").unwrap();
        println!("wrote {}", path.display());
    }
}
