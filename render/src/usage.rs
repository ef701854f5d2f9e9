//! `gateway.usage` and the APIs' `api_key_required` as the invoker's
//! `usage` section: the plans as written, the store (default: the folder
//! `usage/` beside `invoker.yaml`), and every API with a resource that
//! needs a key, routed as the filter routes it (with the others, so an
//! open API inside a keyed one's base path stays open).

use lambdagate_core::PayloadFormat;
use lambdagate_usage::UsageConfig;
use lambdagate_usage::config::{UsageApi, UsageResource};

use crate::definition::{ApiDefinition, DefinitionError, Gateway, error};

/// The invoker's `usage` section; none when no resource needs a key and
/// no plan is set.
pub(crate) fn usage_section(
    apis: &[ApiDefinition],
    gateway: &Gateway,
    gateway_file: &str,
) -> Result<Option<UsageConfig>, DefinitionError> {
    // Every API, so the service routes as the filter does (an open API
    // inside a keyed one's context stays open).
    let all: Vec<UsageApi> = apis
        .iter()
        .map(|d| UsageApi {
            name: d.api.name.clone(),
            context: d.api.context.clone(),
            rest: d.api.payload_format == PayloadFormat::V1,
            resources: d
                .api
                .resources
                .iter()
                .map(|r| UsageResource {
                    verb: r.verb.clone(),
                    uri_template: r.uri_template.clone(),
                    api_key_required: d.api.key_required(r),
                })
                .collect(),
        })
        .collect();
    let Some(settings) = &gateway.usage else {
        return match apis.iter().find(|d| d.api.any_key_required()) {
            Some(keyed) => Err(error(
                &keyed.file,
                "api_key_required",
                "API keys need usage plans: add `gateway.usage.plans` (see the README, \"How much: API keys and usage plans\")",
            )),
            None => Ok(None),
        };
    };
    if !settings.apis.is_empty() {
        return Err(error(
            gateway_file,
            "gateway.usage.apis",
            "is rendered from the APIs' `api_key_required`; leave it out",
        ));
    }
    let mut usage = settings.clone();
    usage.apis = all;
    usage.compile().map_err(|e| {
        error(
            gateway_file,
            format!("gateway.usage.{}", e.field),
            e.message,
        )
    })?;
    Ok(Some(usage))
}
