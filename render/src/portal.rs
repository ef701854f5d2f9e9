//! The developer portal that `lambdagate render` writes into `DIR/portal/`:
//! a page listing the published and deprecated APIs, per API its OpenAPI
//! document and a "try it" console (Swagger UI, vendored by
//! `scripts/setup` from the npm registry), all static files. The invoker's
//! admin server serves them (`lambdagate_sidecar::portal_http`) and Envoy routes the
//! gateway's `gateway.portal.path` there.
//!
//! Every link is relative, so the portal works under any path; the pages
//! load nothing from another host and run no inline script (the console's
//! start-up is a file), so a strict Content-Security-Policy holds.

use std::path::{Path, PathBuf};

use lambdagate_core::config::Lifecycle;
use serde_json::{Value, json};

use crate::definition::{ApiDefinition, DefinitionError, Gateway, PortalSettings, error};

/// The portal's folder inside render's output folder.
pub const DIR: &str = "portal";

/// The files of swagger-ui-dist the console needs, with their licences.
pub const CONSOLE_FILES: &[&str] = &[
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
];

/// Where `scripts/setup` puts swagger-ui-dist, relative to the repository.
pub const VENDORED_CONSOLE: &str = "vendor/swagger-ui-dist";

/// One file of the portal: its path inside `portal/` and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalFile {
    pub path: String,
    pub content: Vec<u8>,
}

/// Swagger UI found from where the `lambdagate` binary is, as the filter
/// is: beside it (`swagger-ui/`), in `../share/lambdagate/swagger-ui/` (an
/// install), or in the repository's `vendor/` when the binary is in
/// cargo's target folder.
pub fn default_console_path() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let dir = exe.parent()?;
    let candidates = [
        dir.join("swagger-ui"),
        dir.join("../share/lambdagate/swagger-ui"),
        dir.join("../..").join(VENDORED_CONSOLE),
        dir.join("../../..").join(VENDORED_CONSOLE),
    ];
    candidates
        .into_iter()
        .find(|d| has_console(d))
        .and_then(|d| d.canonicalize().ok())
}

fn has_console(dir: &Path) -> bool {
    CONSOLE_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The swagger-ui-dist folder: `gateway.portal.console` (relative to the
/// API file's folder), else [`default_console_path`].
pub fn resolve_console(
    settings: &PortalSettings,
    api_file: &str,
) -> Result<PathBuf, DefinitionError> {
    let fix = "run scripts/setup (it fetches swagger-ui-dist from the npm registry into vendor/), give its folder with `gateway.portal.console`, or switch the portal off with `gateway.portal.enabled: false`";
    match &settings.console {
        Some(dir) => {
            let base = Path::new(api_file)
                .parent()
                .unwrap_or_else(|| Path::new(""));
            let dir = base.join(dir);
            if has_console(&dir) {
                Ok(dir)
            } else {
                Err(error(
                    api_file,
                    "gateway.portal.console",
                    format!(
                        "{} is not a swagger-ui-dist folder (it needs {}): {fix}",
                        dir.display(),
                        CONSOLE_FILES.join(", ")
                    ),
                ))
            }
        }
        None => default_console_path().ok_or_else(|| {
            error(
                api_file,
                "gateway.portal.console",
                format!(
                    "no Swagger UI (swagger-ui-dist) beside the lambdagate binary or in the repository's {VENDORED_CONSOLE}: {fix}"
                ),
            )
        }),
    }
}

/// `gateway.portal.path`: `/name/` (segments of letters, digits, `.`,
/// `-`, `_`), and no API's base path inside it (the portal's route comes
/// first, so those resources could never be reached).
pub fn validate_path(
    path: &str,
    apis: &[ApiDefinition],
    gateway_file: &str,
) -> Result<(), DefinitionError> {
    let at = "gateway.portal.path";
    let inner = path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix('/'))
        .unwrap_or("");
    let plain = !inner.is_empty()
        && inner.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
        });
    if !plain {
        return Err(error(
            gateway_file,
            at,
            format!(
                "`{path}` is not a portal path: it starts and ends with `/` and its segments are letters, digits, `.`, `-` or `_`, e.g. /portal/ (the default) or /developer/portal/"
            ),
        ));
    }
    for api in apis {
        let context = format!("{}/", api.api.context.trim_end_matches('/'));
        if context != "/" && context.starts_with(path) {
            return Err(error(
                gateway_file,
                at,
                format!(
                    "`{path}` contains the base path `{}` of API {} ({}): the portal's route would hide its resources; choose another portal path or base path",
                    api.api.context, api.api.name, api.file
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the portal lists an API: published and deprecated ones.
pub fn listed(api: &ApiDefinition) -> bool {
    matches!(
        api.api.lifecycle,
        Lifecycle::Published | Lifecycle::Deprecated
    )
}

/// The file names of one API's pages (API names are letters, digits,
/// `.`, `-`, `_`, unique per gateway; the prefix keeps `..` a plain name).
pub fn console_page(api: &ApiDefinition) -> String {
    format!("api-{}.html", api.api.name)
}
pub fn openapi_file(api: &ApiDefinition) -> String {
    format!("api-{}.openapi.json", api.api.name)
}

/// Every file of the portal for these APIs (only the listed ones appear).
pub fn render_files(
    apis: &[ApiDefinition],
    gateway: &Gateway,
    console: &Path,
) -> Result<Vec<PortalFile>, DefinitionError> {
    let listed: Vec<&ApiDefinition> = apis.iter().filter(|a| listed(a)).collect();
    let mut files = Vec::new();
    for name in CONSOLE_FILES {
        let path = console.join(name);
        let content = std::fs::read(&path).map_err(|e| {
            error(
                &path.display().to_string(),
                "gateway.portal.console",
                format!("cannot read the console file: {e}"),
            )
        })?;
        files.push(PortalFile {
            path: format!("console/{name}"),
            content,
        });
    }
    files.push(PortalFile {
        path: "console/console.js".into(),
        content: CONSOLE_JS.as_bytes().to_vec(),
    });
    files.push(PortalFile {
        path: "portal.css".into(),
        content: PORTAL_CSS.as_bytes().to_vec(),
    });
    for api in &listed {
        let document = portal_document(api, gateway);
        let text = serde_json::to_string_pretty(&document)
            .map_err(|e| error(&api.file, "(OpenAPI document)", e.to_string()))?;
        files.push(PortalFile {
            path: openapi_file(api),
            content: (text + "\n").into_bytes(),
        });
        files.push(PortalFile {
            path: console_page(api),
            content: console_html(api).into_bytes(),
        });
    }
    // Last, so a link never points at a file not yet written.
    files.push(PortalFile {
        path: "index.html".into(),
        content: index_html(&listed, gateway).into_bytes(),
    });
    Ok(files)
}

/// The OpenAPI document the console uses: its first server is the API's
/// base path relative to the portal (same origin: "try it" goes through
/// this gateway, whatever host name the browser used), then the public URL.
pub fn portal_document(api: &ApiDefinition, gateway: &Gateway) -> Value {
    let mut document = crate::openapi::document(api, gateway);
    let context = api.api.context.as_str();
    let mut servers = vec![json!({
        "url": context,
        "description": "This gateway (the portal's own address)",
    })];
    if gateway.public_url.is_some() {
        let public = format!(
            "{}{}",
            gateway.public_url(),
            if context == "/" { "" } else { context }
        );
        servers.push(json!({"url": public, "description": "The gateway's public URL"}));
    }
    if let Some(obj) = document.as_object_mut() {
        obj.insert("servers".into(), Value::Array(servers));
    }
    document
}

/// Writes the portal into `portal_dir`, each file atomically, then
/// removes the files a previous render wrote that are no longer part of
/// it (a retired API's pages). Returns how many files changed.
pub fn write(portal_dir: &Path, files: &[PortalFile]) -> std::io::Result<usize> {
    let mut changed = 0;
    for file in files {
        if crate::fs::write_bytes_atomically(&portal_dir.join(&file.path), &file.content)? {
            changed += 1;
        }
    }
    let keep: std::collections::BTreeSet<PathBuf> =
        files.iter().map(|f| portal_dir.join(&f.path)).collect();
    for dir in [portal_dir.to_owned(), portal_dir.join("console")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && !keep.contains(&path) {
                std::fs::remove_file(&path)?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// Text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn lifecycle_note(api: &ApiDefinition) -> String {
    let a = &api.api;
    match a.lifecycle {
        Lifecycle::Deprecated => {
            let mut note = String::from("Deprecated");
            if let Some(day) = &a.deprecated_on {
                note.push_str(&format!(" since {}", escape(day)));
            }
            match &a.sunset {
                Some(day) => note.push_str(&format!(
                    "; it stops answering on {}. Move to a newer version.",
                    escape(day)
                )),
                None => note.push_str(": move to a newer version."),
            }
            format!("<p class=\"notice\">{note}</p>")
        }
        _ => String::new(),
    }
}

fn index_html(apis: &[&ApiDefinition], gateway: &Gateway) -> String {
    let mut body = String::new();
    if apis.is_empty() {
        body.push_str("<p class=\"empty\">No API is published yet.</p>\n");
    }
    for api in apis {
        let a = &api.api;
        let state = a.lifecycle.as_str();
        let mut rows = String::new();
        for r in &a.resources {
            let path = if a.context == "/" {
                r.uri_template.clone()
            } else {
                format!("{}{}", a.context, r.uri_template)
            };
            rows.push_str(&format!(
                "        <tr><td class=\"verb\">{}</td><td><code>{}</code></td></tr>\n",
                escape(&r.verb.to_ascii_uppercase()),
                escape(&path)
            ));
        }
        let description = api
            .description
            .as_deref()
            .map(|d| format!("    <p class=\"description\">{}</p>\n", escape(d)))
            .unwrap_or_default()
            + &crate::openapi::plan_lines(api, gateway)
                .map(|lines| {
                    format!(
                        "    <p class=\"plans\">Needs an API key (<code>x-api-key</code>) of a usage plan: {}</p>\n",
                        escape(&lines.join("; "))
                    )
                })
                .unwrap_or_default();
        body.push_str(&format!(
            r#"  <section class="api {state}" data-api="{name_attr}" data-state="{state}">
    <h2><a href="{page}">{name}</a> <span class="version">{version}</span> <span class="state">{state}</span></h2>
{description}    {note}
    <p class="base">Base path <code>{context}</code></p>
    <table class="resources">
      <thead><tr><th>Verb</th><th>Path</th></tr></thead>
      <tbody>
{rows}      </tbody>
    </table>
    <p class="links"><a class="console" href="{page}">Open the console</a> · <a href="{openapi}">OpenAPI document</a></p>
  </section>
"#,
            name_attr = escape(&a.name),
            name = escape(&a.name),
            version = escape(&a.version),
            page = escape(&console_page(api)),
            openapi = escape(&openapi_file(api)),
            context = escape(&a.context),
            note = lifecycle_note(api),
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>APIs · lambdagate developer portal</title>
  <link rel="stylesheet" href="portal.css">
</head>
<body>
<header><h1>APIs</h1><p>Each API is served by this gateway; every operation invokes an AWS Lambda function. Open an API's console to try it.</p></header>
<main>
{body}</main>
</body>
</html>
"#
    )
}

fn console_html(api: &ApiDefinition) -> String {
    let a = &api.api;
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name} {version} · console · lambdagate developer portal</title>
  <link rel="stylesheet" href="console/swagger-ui.css">
  <link rel="stylesheet" href="portal.css">
</head>
<body class="console-page">
<nav><a href="./">All APIs</a> › {name} <span class="version">{version}</span> <span class="state">{state}</span></nav>
{note}
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="console/swagger-ui-bundle.js"></script>
<script src="console/console.js"></script>
</body>
</html>
"#,
        name = escape(&a.name),
        version = escape(&a.version),
        state = a.lifecycle.as_str(),
        note = lifecycle_note(api),
        openapi = escape(&openapi_file(api)),
    )
}

/// Starts Swagger UI on the page's OpenAPI document.
const CONSOLE_JS: &str = r#"// Starts Swagger UI (swagger-ui-dist) on this page's OpenAPI document.
// A file, not an inline script, so the portal's Content-Security-Policy can
// forbid inline scripts. Written by `lambdagate render`.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    // Absolute, so the document's relative server (the API's base path)
    // resolves against this gateway: "Try it out" stays on this origin.
    url: new URL(root.getAttribute("data-openapi"), document.baseURI).href,
    domNode: root,
    // Never send the document to swagger.io's validator.
    validatorUrl: null,
    // Only this page's document: no `?url=` or `?configUrl=` from a link.
    queryConfigEnabled: false,
    deepLinking: false,
    displayRequestDuration: true
  });
})();
"#;

const PORTAL_CSS: &str = r#"/* The lambdagate developer portal. Written by `lambdagate render`. */
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1b1f24; background: #fafbfc; }
header, main, nav, .notice { max-width: 60rem; margin: 0 auto; padding: 0 1.5rem; }
header { padding-top: 1.5rem; }
h1 { margin: 0 0 .25rem; }
header p { color: #57606a; margin-top: 0; }
section.api { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .5rem 1.25rem 1rem; margin: 1rem 0; }
section.api h2 { margin: .5rem 0; font-size: 1.3rem; }
section.api h2 a { color: #0969da; text-decoration: none; }
.version { color: #57606a; font-weight: normal; font-size: .9em; }
.state { display: inline-block; font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .03em; padding: .15rem .5rem; border-radius: 1rem; vertical-align: middle; background: #dafbe1; color: #116329; }
.deprecated .state, .console-page .state-deprecated, section.deprecated .state { background: #fff8c5; color: #7d4e00; }
.notice { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .5rem 1rem; color: #7d4e00; }
section.api .notice { margin: .5rem 0; }
table.resources { border-collapse: collapse; margin: .5rem 0; }
table.resources th, table.resources td { text-align: left; padding: .25rem 1rem .25rem 0; border-bottom: 1px solid #eaeef2; }
td.verb { font-family: ui-monospace, monospace; font-weight: 600; }
.links a { color: #0969da; }
nav { padding-top: 1rem; font-size: 1.05rem; }
nav a { color: #0969da; }
.console-page nav, .console-page .notice { margin-bottom: .5rem; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
