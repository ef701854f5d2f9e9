//! The ECDS resource: the lambdagate filter's configuration, applied by
//! Envoy without a restart.

use std::path::Path;

use serde::Serialize;

use super::names::FILTER_NAME;
use super::proto::{Any, DataSource, StringValue, TypeUrl};

#[derive(Serialize)]
pub(crate) struct EcdsResources {
    pub(crate) resources: Vec<Any<TypedExtensionConfig>>,
}

/// `envoy.config.core.v3.TypedExtensionConfig`, named as the HTTP filter
/// that discovers it.
#[derive(Serialize)]
pub(crate) struct TypedExtensionConfig {
    pub(crate) name: &'static str,
    pub(crate) typed_config: Any<Wasm>,
}

impl TypeUrl for TypedExtensionConfig {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig";
}

/// `envoy.extensions.filters.http.wasm.v3.Wasm`: the filter's plugin.
#[derive(Serialize)]
pub(crate) struct Wasm {
    pub(crate) config: PluginConfig,
}

impl TypeUrl for Wasm {
    const TYPE_URL: &'static str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
}

const V8_RUNTIME: &str = "envoy.wasm.runtime.v8";

#[derive(Serialize)]
pub(crate) struct PluginConfig {
    pub(crate) name: &'static str,
    pub(crate) root_id: &'static str,
    /// The filter pauses on request headers while the body is still
    /// arriving; without this Envoy (1.40) never calls it with the body.
    pub(crate) allow_on_headers_stop_iteration: bool,
    /// A trap in the VM would otherwise answer 503 to every later request
    /// on that worker; the filter must not panic, this is the safety net.
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) vm_config: VmConfig,
    /// The filter's JSON config (`lambdagate_core::Config`).
    pub(crate) configuration: Any<StringValue>,
}

#[derive(Serialize)]
pub(crate) enum FailurePolicy {
    /// A fresh VM for the next request.
    #[serde(rename = "FAIL_RELOAD")]
    FailReload,
}

#[derive(Serialize)]
pub(crate) struct VmConfig {
    pub(crate) runtime: &'static str,
    pub(crate) code: AsyncDataSource,
}

#[derive(Serialize)]
pub(crate) struct AsyncDataSource {
    pub(crate) local: DataSource,
}

/// `ecds/lambdagate.yaml`: the filter's configuration as an ECDS resource.
/// Written as JSON (which is YAML) so that the filter's own JSON config
/// keeps the escaped, double-quoted form that tools and tests grep for;
/// serde_yaml would single-quote it.
pub fn ecds_text(filter: &Path, filter_json: &str) -> Result<String, serde_json::Error> {
    let resources = EcdsResources {
        resources: vec![Any(TypedExtensionConfig {
            name: FILTER_NAME,
            typed_config: Any(Wasm {
                config: PluginConfig {
                    name: FILTER_NAME,
                    root_id: FILTER_NAME,
                    allow_on_headers_stop_iteration: true,
                    failure_policy: FailurePolicy::FailReload,
                    vm_config: VmConfig {
                        runtime: V8_RUNTIME,
                        code: AsyncDataSource {
                            local: DataSource::Filename {
                                filename: filter.display().to_string(),
                            },
                        },
                    },
                    configuration: Any(StringValue {
                        value: filter_json.to_owned(),
                    }),
                },
            }),
        })],
    };
    Ok(String::from(
        "# Rendered by `lambdagate render`: the lambdagate filter's configuration.
# Envoy watches this file and applies a new version without a restart.
",
    ) + &serde_json::to_string_pretty(&resources)?
        + "\n")
}
