//! The developer portal over HTTP: the invoker's admin server serves the
//! folder `lambdagate render` wrote (`portal_dir`) at `/portal/`, and Envoy
//! routes the gateway's portal path there. Files are read per request, so
//! a re-render shows at once without a restart.
//!
//! Only names made of letters, digits, `.`, `-` and `_` (not starting with
//! `.`) are served, segment by segment, so no request can leave the
//! folder (`..`, percent-escapes, hidden temp files of atomic writes); a
//! symbolic link pointing out of it is refused too. Every answer carries
//! a strict Content-Security-Policy: the pages load scripts, styles and
//! data from the gateway only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// The portal folder in use; a config reload replaces it.
pub type SharedPortal = Arc<RwLock<Option<PathBuf>>>;

/// Where the admin server serves the portal (Envoy rewrites the gateway's
/// `gateway.portal.path` to it).
pub const PREFIX: &str = "/portal/";

/// Scripts and styles from the gateway only; no inline script (Swagger
/// UI's start-up is a file), inline styles because Swagger UI sets style
/// attributes, `data:` images because its CSS embeds its icons.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn current(shared: &SharedPortal) -> Option<PathBuf> {
    match shared.read() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

pub fn replace(shared: &SharedPortal, dir: Option<PathBuf>) {
    match shared.write() {
        Ok(mut guard) => *guard = dir,
        Err(poisoned) => *poisoned.into_inner() = dir,
    }
}

/// The routes to add to the admin server.
pub fn routes(shared: SharedPortal) -> axum::Router {
    let files = {
        let shared = shared.clone();
        move |uri: Uri| {
            let dir = current(&shared);
            async move { serve(dir.as_deref(), uri.path()).await }
        }
    };
    axum::Router::new()
        .route(
            "/portal",
            axum::routing::get(|| async {
                with_headers(
                    StatusCode::PERMANENT_REDIRECT,
                    "text/plain; charset=utf-8",
                    Vec::new(),
                    Some("portal/"),
                )
            }),
        )
        .route("/portal/", axum::routing::get(files.clone()))
        .route("/portal/{*rest}", axum::routing::get(files))
}

/// The file for the raw request path `path` (which starts with [`PREFIX`]).
async fn serve(dir: Option<&Path>, path: &str) -> Response {
    let Some(dir) = dir else {
        return not_found("no portal is configured (`portal_dir`)");
    };
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return not_found("not found");
    };
    let Some(relative) = relative_file(rest) else {
        return not_found("not found");
    };
    let Ok(root) = tokio::fs::canonicalize(dir).await else {
        return not_found("the portal folder is missing: run `lambdagate render` again");
    };
    let candidate = root.join(&relative);
    let Ok(file) = tokio::fs::canonicalize(&candidate).await else {
        return not_found("not found");
    };
    if !file.starts_with(&root) {
        return not_found("not found");
    }
    if tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        // `/portal/apis` → `apis/`, so relative links resolve inside it.
        let last = relative
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return with_headers(
            StatusCode::PERMANENT_REDIRECT,
            "text/plain; charset=utf-8",
            Vec::new(),
            Some(&format!("{last}/")),
        );
    }
    match tokio::fs::read(&file).await {
        Ok(body) => with_headers(StatusCode::OK, content_type(&file), body, None),
        Err(_) => not_found("not found"),
    }
}

/// The relative file a request path names (after [`PREFIX`]), or none
/// when any segment is not a plain name. A path ending in `/` (or empty)
/// names that folder's `index.html`.
pub fn relative_file(rest: &str) -> Option<PathBuf> {
    let mut path = PathBuf::new();
    let (segments, index) = match rest.strip_suffix('/') {
        Some(dir) => (dir, true),
        None => (rest, rest.is_empty()),
    };
    if !segments.is_empty() {
        for segment in segments.split('/') {
            let plain = !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
            if !plain {
                return None;
            }
            path.push(segment);
        }
    }
    if index {
        path.push("index.html");
    }
    Some(path)
}

/// The media type of a portal file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("ico") => "image/x-icon",
        Some("txt") | None => "text/plain; charset=utf-8",
        Some(_) => "application/octet-stream",
    }
}

fn not_found(message: &str) -> Response {
    with_headers(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        format!("{message}\n").into_bytes(),
        None,
    )
}

fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    location: Option<&str>,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A re-render must show at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_inside_the_folder_are_served() {
        assert_eq!(relative_file(""), Some(PathBuf::from("index.html")));
        assert_eq!(
            relative_file("api-demo.html"),
            Some(PathBuf::from("api-demo.html"))
        );
        assert_eq!(
            relative_file("console/swagger-ui.css"),
            Some(PathBuf::from("console/swagger-ui.css"))
        );
        assert_eq!(
            relative_file("console/"),
            Some(PathBuf::from("console/index.html"))
        );
        for hostile in [
            "..",
            "../invoker.yaml",
            "console/../../invoker.yaml",
            "./index.html",
            "%2e%2e/invoker.yaml",
            "..%2finvoker.yaml",
            "console//x",
            "/etc/passwd",
            ".index.html.tmp-1",
            "a\\b",
            "a b",
            "x\0",
        ] {
            assert_eq!(relative_file(hostile), None, "{hostile:?}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(
            content_type(Path::new("index.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("console/swagger-ui-bundle.js")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("api-demo.openapi.json")),
            "application/json"
        );
        assert_eq!(
            content_type(Path::new("console/LICENSE")),
            "text/plain; charset=utf-8"
        );
    }
}
