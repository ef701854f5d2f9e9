//! The invoker config (`examples/invoker.yaml`, `lambdagate serve/check`):
//! `Config::parse` on arbitrary text. Parsing only checks the shape of
//! secret references, it reads no files or variables.
//!
//! Invariants: nothing panics; a refused file has an error that names the
//! file and a field; an accepted one resolves its default endpoint.
#![no_main]

use lambdagate_sidecar::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, "invoker.yaml") {
        Err(e) => {
            let shown = e.to_string();
            assert!(shown.starts_with("invoker.yaml"), "{shown}");
            assert!(!e.field.is_empty(), "{shown}");
            assert!(!e.message.is_empty(), "{shown}");
        }
        Ok(config) => {
            if config.default_endpoint.is_some() {
                assert!(config.endpoint("").is_some(), "default endpoint missing");
            }
            for name in config.endpoint_names() {
                assert!(config.endpoint(name).is_some(), "{name}");
            }
        }
    }
});
