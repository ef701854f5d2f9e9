//! API keys: made from 32 random bytes, shown once, stored only as their
//! SHA-256. A key is random, not a password, so an unsalted hash is
//! enough: nobody can guess a key from it. Logs and metrics name a key by
//! its id, the first 10 hex digits of that hash.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What every key starts with, so a key in a log or a repository is
/// recognisable (and secret scanners can find one).
pub const KEY_PREFIX: &str = "lgk_";
/// The longest `x-api-key` value looked at; a longer one is no key of
/// ours and is refused without hashing.
pub const MAX_KEY_LEN: usize = 128;

/// A new key, returned to the operator once.
pub struct NewKey {
    pub key: String,
    pub record: KeyRecord,
}

/// What the store keeps of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// The first 10 hex digits of `hash`: how logs, metrics and
    /// `keys revoke` name the key.
    pub id: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// A name for people (`--name`), not secret.
    #[serde(default)]
    pub name: String,
    /// The usage plans the key belongs to.
    pub plans: Vec<String>,
    /// Seconds since the epoch.
    pub created: u64,
    #[serde(default)]
    pub revoked: bool,
}

/// SHA-256 of a key, hex.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A key's id from its hash.
pub fn key_id(hash: &str) -> String {
    hash.chars().take(10).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            use std::fmt::Write;
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// A new random key for `plans`.
pub fn generate(name: &str, plans: Vec<String>, now_seconds: u64) -> Result<NewKey, String> {
    let mut random = [0u8; 32];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| "no randomness for a new key".to_owned())?;
    let key = format!("{KEY_PREFIX}{}", hex(&random));
    let hash = hash_key(&key);
    Ok(NewKey {
        record: KeyRecord {
            id: key_id(&hash),
            hash,
            name: name.to_owned(),
            plans,
            created: now_seconds,
            revoked: false,
        },
        key,
    })
}

/// The keys that open the gateway, by hash: what the rate-limit service
/// looks a request's key up in. Revoked keys are left out.
#[derive(Default)]
pub struct KeySet {
    by_hash: HashMap<String, KeyRecord>,
}

impl KeySet {
    pub fn new(records: impl IntoIterator<Item = KeyRecord>) -> Self {
        KeySet {
            by_hash: records
                .into_iter()
                .filter(|r| !r.revoked)
                .map(|r| (r.hash.clone(), r))
                .collect(),
        }
    }

    /// The live key `presented` is, if any. Nothing about an unknown key
    /// is kept.
    pub fn find(&self, presented: &str) -> Option<&KeyRecord> {
        if presented.is_empty() || presented.len() > MAX_KEY_LEN {
            return None;
        }
        self.by_hash.get(&hash_key(presented))
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_is_found_by_itself_and_its_record_holds_no_key() {
        let new = generate("alice", vec!["basic".into()], 1).unwrap();
        assert!(new.key.starts_with(KEY_PREFIX));
        assert_eq!(new.key.len(), KEY_PREFIX.len() + 64);
        let stored = serde_json::to_string(&new.record).unwrap();
        assert!(!stored.contains(&new.key[KEY_PREFIX.len()..]));
        assert_eq!(new.record.id.len(), 10);
        let set = KeySet::new([new.record.clone()]);
        assert_eq!(
            set.find(&new.key).map(|r| r.id.as_str()),
            Some(new.record.id.as_str())
        );
        assert!(set.find("lgk_0000").is_none());
        assert!(set.find("").is_none());
        assert!(set.find(&"x".repeat(100_000)).is_none());
    }

    #[test]
    fn two_keys_differ_and_a_revoked_key_opens_nothing() {
        let a = generate("", vec![], 1).unwrap();
        let b = generate("", vec![], 1).unwrap();
        assert_ne!(a.key, b.key);
        let mut revoked = a.record.clone();
        revoked.revoked = true;
        let set = KeySet::new([revoked, b.record]);
        assert!(set.find(&a.key).is_none());
        assert!(set.find(&b.key).is_some());
    }
}
