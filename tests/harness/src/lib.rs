//! Integration-test harness for lambdagate.
//!
//! It starts the real components (moto server as AWS, the `lambdagate`
//! binary) on loopback ports and, where no real component can play a part
//! here, small stand-ins that say so in their names: a Lambda endpoint that
//! never answers or answers slowly or with a canned AWS error, and an
//! ECS / EC2-metadata credentials endpoint.
//!
//! Test-only code: a failure to start something aborts the test with a
//! message, so `expect` is the right tool here.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod envoy;
pub mod faults;
pub mod http;
pub mod invoker;
pub mod moto;
pub mod process;
pub mod standins;

use std::net::TcpListener;
use std::path::PathBuf;

pub use envoy::{EnvoyProcess, InvokerAddress};
pub use invoker::{InvokerProcess, invoke_request};
pub use moto::{Fixture, Moto, MotoOptions};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// The Python virtualenv with moto (made by `scripts/setup`), or
/// `$LAMBDAGATE_VENV`.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("LAMBDAGATE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    assert!(
        venv.join("bin/python").exists(),
        "no Python virtualenv at {}: run `scripts/setup` (or the README's test command) first",
        venv.display()
    );
    venv
}

/// The compiled Envoy filter. `scripts/test` builds it before the tests:
/// `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm`.
pub fn filter_wasm() -> PathBuf {
    let path = repo_root().join("target/wasm32-wasip1/wasm/lambdagate_filter.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm` (scripts/test does)",
        path.display()
    );
    path
}

/// The Rust sample function (examples/functions/hello-rust), built by
/// `cargo build --workspace` (scripts/test does).
pub fn hello_rust() -> PathBuf {
    let path = repo_root().join("target/debug/hello-rust");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p hello-rust` (scripts/test does)",
        path.display()
    );
    path
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
