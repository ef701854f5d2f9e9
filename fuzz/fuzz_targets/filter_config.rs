//! The filter's JSON config (`lambdagate_core::parse`, what the filter runs
//! in `on_configure` and `lambdagate check` runs on rendered configs).
//!
//! Invariants: nothing panics; a refused config has an error that names
//! where (`config`, `invoker_cluster`, `callout_cluster`, `data_path`,
//! `router_body_bytes`, `upload_budget_bytes`, a place under `apis`, or the
//! unknown top-level key itself); an
//! accepted one serializes back to JSON that parses to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn top_level_array(data: &[u8]) -> bool {
    data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

fuzz_target!(|data: &[u8]| {
    match lambdagate_core::parse(data) {
        Err(e) => {
            let at = e.at();
            assert!(!at.is_empty(), "{e}");
            assert!(
                at == "config"
                    || at == "invoker_cluster"
                    || at == "callout_cluster"
                    || at == "data_path"
                    || at == "router_body_bytes"
                    || at == "upload_budget_bytes"
                    || at == "apis"
                    || at.starts_with("apis[")
                    // An unknown top-level key is its own location.
                    || e.message().starts_with(&format!("unknown field `{at}`"))
                    // serde also reads a struct from an array of its fields
                    // in order: `["cluster", [...]]`; the place is then `[i]`.
                    || (at.starts_with('[') && top_level_array(data)),
                "unexpected location `{at}` in: {e}"
            );
            assert!(!e.message().is_empty(), "{e}");
            assert_eq!(e.to_string(), format!("{at}: {}", e.message()));
        }
        Ok(compiled) => {
            let json = serde_json::to_vec(compiled.config()).expect("a config serializes");
            let again = lambdagate_core::parse(&json)
                .unwrap_or_else(|e| panic!("rendered config refused: {e}"));
            assert_eq!(again.config(), compiled.config());
        }
    }
});
