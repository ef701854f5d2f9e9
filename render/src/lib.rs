//! `lambdagate render`: API definitions ([`ApiDefinition`]) turned into
//! what runs them — the Envoy bootstrap and filter config, the invoker
//! config and the developer portal — and `lambdagate openapi`'s documents.
//!
//! Modules import one way: `definition` (the schema) ← `openapi` ←
//! `portal` ← this file's [`render`], which orchestrates; `envoy` and
//! `invoker_config` import only `definition` and `limits` (the edge
//! limits, which import nothing of the crate); `fs` (atomic writes)
//! imports nothing of the crate. No module imports this file.

use std::path::{Path, PathBuf};

mod cors;
mod definition;
mod envoy;
mod fs;
mod invoker_config;
pub mod limits;
pub mod openapi;
pub mod portal;
pub mod throttle;
mod usage;

pub use definition::{
    ApiDefinition, DefinitionError, Gateway, PortalSettings, default_filter_path,
};
pub use envoy::{ECDS_DIR, ECDS_FILE, EdgeParts, edge_parts, invoker_clusters};
pub use fs::write_atomically;

use definition::{DEFAULT_INVOKER_ADMIN, error, filter_config, resolve_filter, shared_gateway};
use invoker_config::RenderedInvokerConfig;

/// Everything `render` writes, as text.
#[derive(Debug)]
pub struct Rendered {
    pub envoy_bootstrap: String,
    pub ecds: String,
    pub invoker: String,
    /// The filter's .wasm, absolute and existing.
    pub filter: PathBuf,
    /// The developer portal's files (none when `gateway.portal.enabled`
    /// is false), to write into `DIR/portal/` before the invoker config.
    pub portal: Option<Vec<portal::PortalFile>>,
}

/// On the callout data path, bodies from this size take the router path:
/// there the two paths are even, and above it the router's body never
/// entering the VM wins (bench/RESULTS.md, round 10: at 1 MB +7 %
/// throughput).
pub const ROUTER_BODY_BYTES: u64 = 64 * 1024;

/// Renders the APIs into the Envoy bootstrap, the ECDS filter config and
/// the invoker config. `out_dir` must be absolute (Envoy watches it).
pub fn render(
    apis: &[ApiDefinition],
    out_dir: &Path,
    filter: Option<&Path>,
) -> Result<Rendered, DefinitionError> {
    let files = apis
        .iter()
        .map(|a| a.file.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if apis.is_empty() {
        return Err(error(
            "(none)",
            "(arguments)",
            "give at least one API definition file",
        ));
    }
    let (mut gateway, gateway_file) = shared_gateway(apis, &files)?;
    let gateway_file = gateway_file.as_str();
    let filter_path = resolve_filter(filter, &gateway, gateway_file)?;
    let portal_files = if gateway.portal.enabled {
        portal::validate_path(&gateway.portal.path, apis, gateway_file)?;
        let console = portal::resolve_console(&gateway.portal, gateway_file)?;
        // The portal is served by the invoker's admin server.
        let admin = gateway
            .invoker_admin
            .get_or_insert_with(|| DEFAULT_INVOKER_ADMIN.to_owned());
        if admin.starts_with("unix:") {
            return Err(error(
                gateway_file,
                "gateway.invoker_admin",
                "must be an IP address and port such as 127.0.0.1:9902: Envoy reaches the portal there",
            ));
        }
        Some(portal::render_files(apis, &gateway, &console)?)
    } else {
        None
    };
    let portal_dir = portal_files.is_some().then(|| out_dir.join(portal::DIR));
    let usage = usage::usage_section(apis, &gateway, gateway_file)?;
    let invoker_config =
        RenderedInvokerConfig::new(apis, &gateway, portal_dir.as_deref(), usage.clone())?;
    let refs: Vec<&ApiDefinition> = apis.iter().collect();
    let mut filter = filter_config(&refs)?;
    // Envoy's rate-limit filter checks keys before lambdagate's filter:
    // the filter must not ask again (each ask takes from the plan).
    let envoy_checks_keys = gateway.usage_check == definition::UsageCheck::RateLimitFilter;
    if envoy_checks_keys {
        for (api, definition) in filter.apis.iter_mut().zip(apis) {
            if api.api_key_source == lambdagate_core::ApiKeySource::Authorizer {
                return Err(error(
                    &definition.file,
                    "api_key_source",
                    "`authorizer` needs gateway.usage_check: in_call (Envoy's rate-limit filter runs before the authorizer and reads only x-api-key)",
                ));
            }
            api.api_key_required = false;
            for resource in &mut api.resources {
                resource.api_key_required = None;
            }
        }
    }
    filter.data_path = gateway.data_path;
    // Render always writes the route to the invoker, so on the callout
    // path large bodies can take the router path.
    filter.router_body_bytes =
        (gateway.data_path == lambdagate_core::DataPath::Callout).then_some(ROUTER_BODY_BYTES);
    filter.upload_budget_bytes = gateway.limits.upload_budget_bytes;
    let filter_json = serde_json::to_string(&filter)
        .map_err(|e| error(&files, "(filter config)", e.to_string()))?;

    let invoker = invoker_config.to_text(&files)?;
    let ecds = envoy::ecds_text(&filter_path, &filter_json)
        .map_err(|e| error(&files, "(filter config)", e.to_string()))?;
    let timeout_seconds = envoy::timeout_seconds(apis, &gateway);
    let envoy_usage = usage.as_ref().filter(|_| envoy_checks_keys);
    let bootstrap = envoy::Bootstrap::new(&gateway, apis, out_dir, timeout_seconds, envoy_usage)
        .map_err(|m| error(&files, "gateway", m))?;
    let envoy_bootstrap = envoy::bootstrap_text(&bootstrap, out_dir)
        .map_err(|e| error(&files, "(Envoy bootstrap)", e.to_string()))?;
    Ok(Rendered {
        envoy_bootstrap,
        ecds,
        invoker,
        filter: filter_path,
        portal: portal_files,
    })
}
