//! Shared by the render tests and the example that rewrites
//! `envoy/dynamic/`: stand-ins for the filter and the console, and what
//! render writes for `examples/api.yaml` there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use lambdagate_render::{ApiDefinition, render};

/// A stand-in filter file and Swagger UI folder: render only checks that
/// they exist (the filter) and copies them (the console).
pub struct StandIns {
    _dir: tempfile::TempDir,
    pub filter: PathBuf,
    pub console: PathBuf,
}

pub fn stand_ins() -> StandIns {
    let dir = tempfile::tempdir().unwrap();
    let filter = dir.path().join("lambdagate_filter.wasm");
    std::fs::write(&filter, b"\0asm").unwrap();
    let console = dir.path().join("swagger-ui-dist");
    std::fs::create_dir(&console).unwrap();
    for name in lambdagate_render::portal::CONSOLE_FILES {
        std::fs::write(console.join(name), name).unwrap();
    }
    StandIns {
        filter: filter.canonicalize().unwrap(),
        console,
        _dir: dir,
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `envoy/dynamic/`'s files (paths from the repository root) as `lambdagate
/// render examples/api.yaml --out envoy/dynamic` writes them, with the
/// paths made relative to the repository root (as their headers say).
pub fn envoy_dynamic_files() -> [(&'static str, String); 2] {
    let root = repo_root();
    let stand_ins = stand_ins();
    let mut api = ApiDefinition::load(&root.join("examples/api.yaml")).unwrap();
    if let Some(gateway) = &mut api.gateway {
        gateway.portal.console = Some(stand_ins.console.clone());
    }
    // A relative output folder gives the relative paths in the bootstrap.
    let rendered = render(&[api], Path::new("envoy/dynamic"), Some(&stand_ins.filter)).unwrap();
    let bootstrap = rendered.envoy_bootstrap.replacen(
        "# Rendered by `lambdagate render`. Start Envoy with\n",
        "# What `lambdagate render examples/api.yaml --out envoy/dynamic` writes\n\
         # (render writes absolute paths; here they are relative to the repository\n\
         # root, where Envoy must then be started). Start Envoy with\n",
        1,
    );
    let ecds = rendered
        .ecds
        .replacen(
            "# Rendered by `lambdagate render`: the lambdagate filter's configuration.\n",
            "# Rendered by `lambdagate render examples/api.yaml --out envoy/dynamic`\n\
             # (the .wasm path made relative to the repository root): the lambdagate\n\
             # filter's configuration.\n",
            1,
        )
        .replace(
            &stand_ins.filter.display().to_string(),
            "target/wasm32-wasip1/wasm/lambdagate_filter.wasm",
        );
    [
        ("envoy/dynamic/envoy.yaml", bootstrap),
        ("envoy/dynamic/ecds/lambdagate.yaml", ecds),
    ]
}
