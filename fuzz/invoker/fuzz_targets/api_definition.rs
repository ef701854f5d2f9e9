//! API definitions (`examples/api.yaml`, `lambdagate render`/`openapi`):
//! `ApiDefinition::parse` on arbitrary text.
//!
//! Invariants: nothing panics (YAML anchors, deep nesting and odd scalars
//! included); a refused file has an error that names the file and a
//! place; an accepted one gives an OpenAPI document that serializes.
#![no_main]

use lambdagate_render::ApiDefinition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ApiDefinition::parse(text, "api.yaml") {
        Err(e) => {
            assert_eq!(e.file, "api.yaml");
            assert!(!e.at.is_empty(), "{e}");
            assert!(!e.message.is_empty(), "{e}");
        }
        Ok(api) => {
            assert_eq!(api.arns().len(), api.api.resources.len());
            let gateway = api.gateway.clone().unwrap_or_default();
            let document = lambdagate_render::openapi::document(&api, &gateway);
            serde_json::to_vec(&document).expect("the OpenAPI document serializes");
        }
    }
});
