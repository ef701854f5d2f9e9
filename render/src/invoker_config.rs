//! The invoker's config (`invoker.yaml`) as render writes it: where the
//! invoker listens, the portal's folder, and each endpoint of the API
//! definitions with its allow-list (the ARNs of every API that uses it).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use lambdagate_sidecar::config::Config as InvokerConfig;

use crate::definition::{ApiDefinition, DefinitionError, Gateway, error};

/// The part of the invoker's config (see `examples/invoker.yaml`) that
/// render sets.
#[derive(Debug, Serialize)]
pub struct RenderedInvokerConfig {
    /// The gRPC address Envoy calls: `gateway.invoker`.
    listen: String,
    /// The admin server (metrics, the portal): `gateway.invoker_admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_listen: Option<String>,
    /// The folder render writes the portal into, when the portal is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    portal_dir: Option<String>,
    /// The invoker's in-flight byte budget: `gateway.limits.invoker_inflight_bytes`.
    max_inflight_bytes: u64,
    /// Each endpoint as the definitions wrote it (the invoker's own parser
    /// checks it), with `allow` rendered from the ARNs of its APIs.
    endpoints: BTreeMap<String, serde_yaml::Mapping>,
    /// API keys and usage plans (see `usage.rs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<lambdagate_usage::UsageConfig>,
}

impl RenderedInvokerConfig {
    /// The config for these APIs behind `gateway`. Endpoints used by
    /// several APIs must be the same access method.
    pub fn new(
        apis: &[ApiDefinition],
        gateway: &Gateway,
        portal_dir: Option<&Path>,
        usage: Option<lambdagate_usage::UsageConfig>,
    ) -> Result<Self, DefinitionError> {
        // Per endpoint name: the endpoint, its APIs' ARNs, the first file.
        let mut endpoints: BTreeMap<String, (serde_yaml::Mapping, Vec<String>, String)> =
            BTreeMap::new();
        for api in apis {
            let endpoint = api.invoker_endpoint()?;
            let mut without_allow = endpoint.clone();
            without_allow.shift_remove("allow");
            match endpoints.get_mut(&api.endpoint_name) {
                Some((existing, arns, first_file)) => {
                    let mut existing_without = existing.clone();
                    existing_without.shift_remove("allow");
                    if existing_without != without_allow {
                        return Err(error(
                            &api.file,
                            "endpoint",
                            format!(
                                "endpoint `{}` is also defined in {first_file} with different settings; give it another name or make them identical",
                                api.endpoint_name
                            ),
                        ));
                    }
                    arns.extend(api.arns());
                }
                None => {
                    endpoints.insert(
                        api.endpoint_name.clone(),
                        (endpoint, api.arns(), api.file.clone()),
                    );
                }
            }
        }
        let endpoints = endpoints
            .into_iter()
            .map(|(name, (mut endpoint, mut arns, _))| {
                arns.sort();
                arns.dedup();
                endpoint.insert(
                    "allow".into(),
                    serde_yaml::Value::Sequence(
                        arns.into_iter().map(serde_yaml::Value::String).collect(),
                    ),
                );
                (name, endpoint)
            })
            .collect();
        Ok(RenderedInvokerConfig {
            listen: gateway.invoker.clone(),
            admin_listen: gateway.invoker_admin.clone(),
            portal_dir: portal_dir.map(|dir| dir.display().to_string()),
            max_inflight_bytes: gateway.limits.invoker_inflight_bytes,
            endpoints,
            usage,
        })
    }

    /// `invoker.yaml`, validated as `serve` would; errors name `files`.
    pub fn to_text(&self, files: &str) -> Result<String, DefinitionError> {
        let yaml = serde_yaml::to_string(self)
            .map_err(|e| error(files, "(invoker config)", e.to_string()))?;
        let text =
            String::from("# Rendered by `lambdagate render`; edit the API definitions instead.\n")
                + &yaml;
        InvokerConfig::parse(&text, "invoker.yaml (rendered)")
            .map_err(|e| error(files, e.field.clone(), e.message))?;
        Ok(text)
    }
}
