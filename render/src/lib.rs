//! `lambdagate render`: API definitions ([`definition`]) turned into what
//! runs them — the Envoy bootstrap and filter config, the invoker config
//! and the developer portal — and `lambdagate openapi`'s documents.
//!
//! Modules import one way: `definition` ← `openapi` ← `portal` ← this
//! file's [`render`], which orchestrates; `envoy` imports only
//! `definition`; `fs` is used by all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lambdagate_sidecar::config::Config as InvokerConfig;

mod definition;
mod envoy;
mod fs;
pub mod openapi;
pub mod portal;

pub use definition::{
    ApiDefinition, DefinitionError, Gateway, PortalSettings, default_filter_path,
};
pub use envoy::{ECDS_DIR, ECDS_FILE};
pub use fs::write_atomically;

use definition::{DEFAULT_INVOKER_ADMIN, error, filter_config, resolve_filter, shared_gateway};

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
    pub portal: Option<Vec<crate::portal::PortalFile>>,
}

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
    let (gateway, gateway_file) = shared_gateway(apis, &files)?;
    let gateway_file = gateway_file.as_str();
    let filter_path = resolve_filter(filter, &gateway, gateway_file)?;
    let mut gateway = gateway;
    let portal = if gateway.portal.enabled {
        crate::portal::validate_path(&gateway.portal.path, apis, gateway_file)?;
        let console = crate::portal::resolve_console(&gateway.portal, gateway_file)?;
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
        Some(crate::portal::render_files(apis, &gateway, &console)?)
    } else {
        None
    };
    let envoy_timeout_seconds = envoy::timeout_seconds(apis, &gateway);
    // Endpoints used by several APIs must be the same access method.
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
    let refs: Vec<&ApiDefinition> = apis.iter().collect();
    let mut filter = filter_config(&refs)?;
    filter.data_path = gateway.data_path;
    let filter_json = serde_json::to_string(&filter)
        .map_err(|e| error(&files, "(filter config)", e.to_string()))?;

    // The invoker config, validated as `serve` would.
    let mut invoker =
        String::from("# Rendered by `lambdagate render`; edit the API definitions instead.\n");
    invoker.push_str(&format!("listen: {}\n", yaml_string(&gateway.invoker)));
    if let Some(admin) = &gateway.invoker_admin {
        invoker.push_str(&format!("admin_listen: {}\n", yaml_string(admin)));
    }
    if portal.is_some() {
        let dir = out_dir.join(crate::portal::DIR);
        invoker.push_str(&format!(
            "portal_dir: {}\n",
            yaml_string(&dir.display().to_string())
        ));
    }
    let mut mapping = serde_yaml::Mapping::new();
    for (name, (mut endpoint, mut arns, _)) in endpoints {
        arns.sort();
        arns.dedup();
        endpoint.insert(
            "allow".into(),
            serde_yaml::Value::Sequence(arns.into_iter().map(serde_yaml::Value::String).collect()),
        );
        mapping.insert(name.into(), endpoint.into());
    }
    let mut top = serde_yaml::Mapping::new();
    top.insert("endpoints".into(), mapping.into());
    invoker.push_str(
        &serde_yaml::to_string(&top)
            .map_err(|e| error(&files, "(invoker config)", e.to_string()))?,
    );
    InvokerConfig::parse(&invoker, "invoker.yaml (rendered)")
        .map_err(|e| error(&files, e.field.clone(), e.message))?;

    let ecds = envoy::ecds_text(&filter_path, &filter_json)
        .map_err(|e| error(&files, "(filter config)", e.to_string()))?;
    let bootstrap = envoy::Bootstrap::new(&gateway, out_dir, envoy_timeout_seconds)
        .map_err(|m| error(&files, "gateway", m))?;
    let envoy_bootstrap = envoy::bootstrap_text(&bootstrap, out_dir)
        .map_err(|e| error(&files, "(Envoy bootstrap)", e.to_string()))?;
    Ok(Rendered {
        envoy_bootstrap,
        ecds,
        invoker,
        filter: filter_path,
        portal,
    })
}

fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("'{s}'"))
}
