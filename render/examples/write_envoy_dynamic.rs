//! Rewrites `envoy/dynamic/` (what `lambdagate render examples/api.yaml`
//! writes, paths relative to the repository root): the explicit step after
//! a deliberate change to render; the test only compares. Review the diff.
//!
//!     cargo run -p lambdagate-render --example write_envoy_dynamic
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a developer tool

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    for (path, content) in support::envoy_dynamic_files() {
        let path = support::repo_root().join(path);
        std::fs::write(&path, content).unwrap();
        println!("wrote {}", path.display());
    }
}
