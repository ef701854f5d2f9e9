//! `cors` in an API definition: which browser origins may call the API,
//! answered by Envoy's own CORS filter (preflights never reach a
//! function). Checked here; `envoy/cors.rs` writes it.

use serde::Deserialize;

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

fn err(field: impl Into<String>, message: impl Into<String>) -> (String, String) {
    (field.into(), message.into())
}

const METHODS: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

impl CorsSettings {
    /// A bad field: its place under `cors` and what is allowed.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.allow_origins.is_empty() {
            return Err(err(
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
                return Err(err(
                    format!("cors.allow_origins[{i}]"),
                    format!(
                        "`{origin}` is not an origin: scheme and host (and port), such as `https://app.example.com`, or `*`"
                    ),
                ));
            }
        }
        if self.allow_credentials && self.allow_origins.iter().any(|o| o == "*") {
            return Err(err(
                "cors.allow_credentials",
                "browsers refuse credentials with origin `*`: list the origins",
            ));
        }
        for (i, method) in self.allow_methods.iter().enumerate() {
            if !METHODS.contains(&method.to_ascii_uppercase().as_str()) {
                return Err(err(
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
                    return Err(err(
                        format!("cors.{field}[{i}]"),
                        format!("`{name}` is not a header name"),
                    ));
                }
            }
        }
        if self.max_age_seconds.is_some_and(|s| s > 86_400) {
            return Err(err("cors.max_age_seconds", "must be 0 to 86400"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str], credentials: bool) -> CorsSettings {
        CorsSettings {
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allow_methods: Vec::new(),
            allow_headers: vec!["x-api-key".into()],
            expose_headers: Vec::new(),
            allow_credentials: credentials,
            max_age_seconds: Some(600),
        }
    }

    #[test]
    fn bad_policies_name_the_field() {
        assert!(
            settings(&["https://app.example.com", "*"], false)
                .validate()
                .is_ok()
        );
        let cases: [(CorsSettings, &str); 6] = [
            (settings(&[], false), "cors.allow_origins"),
            (
                settings(&["app.example.com"], false),
                "cors.allow_origins[0]",
            ),
            (
                settings(&["https://app.example.com/path"], false),
                "cors.allow_origins[0]",
            ),
            (settings(&["*"], true), "cors.allow_credentials"),
            (
                CorsSettings {
                    allow_methods: vec!["FETCH".into()],
                    ..settings(&["*"], false)
                },
                "cors.allow_methods[0]",
            ),
            (
                CorsSettings {
                    allow_headers: vec!["bad header".into()],
                    ..settings(&["*"], false)
                },
                "cors.allow_headers[0]",
            ),
        ];
        for (policy, field) in cases {
            let (at, message) = policy.validate().unwrap_err();
            assert_eq!(at, field, "{message}");
        }
    }
}
