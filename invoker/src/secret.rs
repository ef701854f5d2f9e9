//! Secrets given by reference (an environment variable or a file), and a
//! wrapper that cannot be printed by accident.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a secret comes from: exactly one of `env` or `file`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

/// A secret value. `Debug` prints a placeholder; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for handing to the AWS SDK only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl SecretRef {
    /// Checks the shape (exactly one source) without reading it.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.env, &self.file) {
            (Some(_), Some(_)) => Err("set exactly one of `env` or `file`, not both".to_owned()),
            (None, None) => {
                Err("set exactly one of `env: VARIABLE_NAME` or `file: /path/to/file`".to_owned())
            }
            (Some(var), None) if var.trim().is_empty() => {
                Err("`env` must name an environment variable".to_owned())
            }
            _ => Ok(()),
        }
    }

    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn resolve(&self) -> Result<Secret, String> {
        self.validate()?;
        match (&self.env, &self.file) {
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
                Ok(_) => Err(format!("environment variable `{var}` is empty")),
                Err(_) => Err(format!(
                    "environment variable `{var}` is not set in the invoker's environment"
                )),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret(v.trim().to_owned())),
                Ok(_) => Err(format!("file `{}` is empty", path.display())),
                Err(e) => Err(format!("cannot read file `{}`: {e}", path.display())),
            },
            _ => Err("set exactly one of `env` or `file`".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret("wJalrXUtnFEMI/K7MDENG".into());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn reads_a_file_and_trims_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "abc123\n").unwrap();
        let r = SecretRef {
            env: None,
            file: Some(path),
        };
        assert_eq!(r.resolve().unwrap().expose(), "abc123");
    }

    #[test]
    fn missing_sources_are_named() {
        let r = SecretRef {
            env: Some("LAMBDAGATE_TEST_SURELY_UNSET_VAR".into()),
            file: None,
        };
        let err = r.resolve().unwrap_err();
        assert!(err.contains("LAMBDAGATE_TEST_SURELY_UNSET_VAR"), "{err}");
        let r = SecretRef {
            env: None,
            file: Some("/nonexistent/lambdagate/secret".into()),
        };
        assert!(
            r.resolve()
                .unwrap_err()
                .contains("/nonexistent/lambdagate/secret")
        );
    }
}
