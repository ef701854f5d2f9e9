//! `cors` in an API definition: which browser origins may call the API,
//! answered by Envoy's own CORS filter (preflights never reach a
//! function). Checked here; `envoy/cors.rs` writes it.

use serde::Deserialize;

use crate::definition::{DefinitionError, error};

/// An API's CORS policy, as API Gateway's HTTP API `corsConfiguration`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Exact origins (`https://app.example.com`), or `*` for any.
    pub allow_origins: Vec<String>,
    /// Default: the API's verbs.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Cookies and `Authorization` may be sent; not with origin `*`.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer (0 to 86400).
    #[serde(default)]
    pub max_age_seconds: Option<u32>,
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

impl CorsSettings {
    pub fn validate(&self, file: &str) -> Result<(), DefinitionError> {
        if self.allow_origins.is_empty() {
            return Err(error(
                file,
                "cors.allow_origins",
                "name at least one origin (`https://app.example.com`), or `*`",
            ));
        }
        for (i, origin) in self.allow_origins.iter().enumerate() {
            let ok = origin == "*"
                || origin.split_once("://").is_some_and(|(scheme, host)| {
                    matches!(scheme, "http" | "https")
                        && !host.is_empty()
                        && !host.contains(['/', ' ', '*'])
                });
            if !ok {
                return Err(error(
                    file,
                    format!("cors.allow_origins[{i}]"),
                    format!(
                        "`{origin}` is not an origin: scheme and host (and port), such as `https://app.example.com`, or `*`"
                    ),
                ));
            }
        }
        if self.allow_credentials && self.allow_origins.iter().any(|o| o == "*") {
            return Err(error(
                file,
                "cors.allow_credentials",
                "browsers refuse credentials with origin `*`: list the origins",
            ));
        }
        for (i, method) in self.allow_methods.iter().enumerate() {
            if !METHODS.contains(&method.to_ascii_uppercase().as_str()) {
                return Err(error(
                    file,
                    format!("cors.allow_methods[{i}]"),
                    format!("`{method}` is not one of {}", METHODS.join(", ")),
                ));
            }
        }
        for (field, names) in [
            ("allow_headers", &self.allow_headers),
            ("expose_headers", &self.expose_headers),
        ] {
            for (i, name) in names.iter().enumerate() {
                let token = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    return Err(error(
                        file,
                        format!("cors.{field}[{i}]"),
                        format!("`{name}` is not a header name"),
                    ));
                }
            }
        }
        if self.max_age_seconds.is_some_and(|s| s > 86_400) {
            return Err(error(file, "cors.max_age_seconds", "must be 0 to 86400"));
        }
        Ok(())
    }
}
