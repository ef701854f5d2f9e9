//! Secrets given by reference (an environment variable or a file), and a
//! wrapper that cannot be printed by accident.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Where a secret comes from: exactly one of `env` or `file`.
///
/// Deserialized by hand: serde's derived errors quote what was written
/// ("invalid type: string \"wJalr...\""), and what is written where a
/// secret reference belongs is most likely the secret itself. No error
/// from here contains any value from the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
}

/// How to write a secret reference, for errors.
pub const SECRET_REF_HELP: &str = "a secret is never written inline in the config (the value is not repeated here); write {env: VARIABLE_NAME} (an environment variable of the invoker) or {file: /path/to/file}";

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretRefVisitor)
    }
}

struct SecretRefVisitor;

/// Refuses any scalar or sequence without quoting it.
fn inline<E: de::Error>() -> Result<SecretRef, E> {
    Err(E::custom(SECRET_REF_HELP))
}

impl<'de> Visitor<'de> for SecretRefVisitor {
    type Value = SecretRef;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{env: VARIABLE_NAME} or {file: /path/to/file}")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_unit<E: de::Error>(self) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_none<E: de::Error>(self) -> Result<SecretRef, E> {
        inline()
    }
    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<SecretRef, D::Error> {
        inline()
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<SecretRef, D::Error> {
        inline()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
        inline()
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
        // A YAML tag (`!value wJalr...`).
        inline()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
        let mut secret = SecretRef::default();
        while let Some(key) = map.next_key::<SecretRefKey>()? {
            match key {
                SecretRefKey::Env => {
                    if secret.env.is_some() {
                        return Err(de::Error::custom("`env` is given twice"));
                    }
                    secret.env = Some(map.next_value::<ReferenceText>()?.0);
                }
                SecretRefKey::File => {
                    if secret.file.is_some() {
                        return Err(de::Error::custom("`file` is given twice"));
                    }
                    secret.file = Some(PathBuf::from(map.next_value::<ReferenceText>()?.0));
                }
            }
        }
        Ok(secret)
    }
}

/// `env` or `file`; any other key is refused without quoting it (it may be
/// a secret written as a key).
enum SecretRefKey {
    Env,
    File,
}

impl<'de> Deserialize<'de> for SecretRefKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match ReferenceText::deserialize(deserializer)?.0.as_str() {
            "env" => Ok(SecretRefKey::Env),
            "file" => Ok(SecretRefKey::File),
            _ => Err(de::Error::custom(
                "unknown key (not repeated here): a secret reference has exactly one of `env` or `file`",
            )),
        }
    }
}

/// A variable name or a path: a string, refused unquoted otherwise.
struct ReferenceText(String);

impl<'de> Deserialize<'de> for ReferenceText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl Visitor<'_> for TextVisitor {
            type Value = ReferenceText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ReferenceText, E> {
                Ok(ReferenceText(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ReferenceText, E> {
                Err(E::custom("expected a variable name or a path (a string)"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ReferenceText, E> {
                Err(E::custom("expected a variable name or a path (a string)"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ReferenceText, E> {
                Err(E::custom("expected a variable name or a path (a string)"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ReferenceText, E> {
                Err(E::custom("expected a variable name or a path (a string)"))
            }
        }
        deserializer.deserialize_string(TextVisitor)
    }
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
            // Not quoted: a value that is no variable name may be the
            // secret itself, written where its variable's name belongs.
            (Some(var), None) if !is_variable_name(var) => Err(
                "`env` is not an environment variable name (letters, digits and `_`, not starting with a digit; the value is not repeated here, as it may be the secret itself)".to_owned(),
            ),
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

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const INLINE: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn parse(yaml: &str) -> Result<SecretRef, String> {
        serde_yaml::from_str::<SecretRef>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn inline_values_are_refused_without_repeating_them() {
        for yaml in [
            INLINE.to_owned(),
            format!("\"{INLINE}\""),
            format!("[{INLINE}]"),
            format!("!secret {INLINE}"),
            format!("{{{INLINE}: x}}"),
            format!("{{value: {INLINE}}}"),
            "12345678901234567890".to_owned(),
        ] {
            let err = parse(&yaml).unwrap_err();
            assert!(!err.contains(INLINE), "{yaml}: {err}");
            assert!(!err.contains("1234567890"), "{yaml}: {err}");
            assert!(
                err.contains("{env: VARIABLE_NAME}") || err.contains("`env` or `file`"),
                "{yaml}: {err}"
            );
        }
        // A secret written where the variable's name belongs.
        let r = parse(&format!("{{env: \"{INLINE}\"}}")).unwrap();
        let err = r.validate().unwrap_err();
        assert!(!err.contains(INLINE), "{err}");
        assert!(err.contains("not an environment variable name"), "{err}");
    }

    #[test]
    fn references_still_parse() {
        assert_eq!(
            parse("{env: AWS_SECRET_ACCESS_KEY}").unwrap(),
            SecretRef {
                env: Some("AWS_SECRET_ACCESS_KEY".into()),
                file: None
            }
        );
        assert_eq!(
            parse("{file: /run/secrets/key}").unwrap(),
            SecretRef {
                env: None,
                file: Some("/run/secrets/key".into())
            }
        );
        let both = parse("{env: A, file: /b}").unwrap();
        assert!(both.validate().is_err());
        assert!(parse("{env: A, env: B}").is_err());
    }

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
