//! The authorizers' decision cache: one per filter VM (one per Envoy
//! worker), keyed by authorizer and identity, bounded in entries and
//! bytes so that many distinct tokens cannot grow it without limit (the
//! oldest go first).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::policy::Grant;

/// At most this many decisions per worker.
pub const MAX_ENTRIES: usize = 10_000;
/// At most this many bytes of answers (and keys) per worker.
pub const MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
struct Entry {
    grant: Arc<Grant>,
    expires_ms: u64,
    generation: u64,
    size: usize,
}

/// Cached authorizer answers.
#[derive(Debug)]
pub struct AuthCache {
    entries: BTreeMap<String, Entry>,
    /// Keys in insertion order, with the generation they were inserted as
    /// (a replaced entry leaves a stale one behind, skipped on eviction).
    order: VecDeque<(String, u64)>,
    generation: u64,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache::new(MAX_ENTRIES, MAX_BYTES)
    }
}

impl AuthCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        AuthCache {
            entries: BTreeMap::new(),
            order: VecDeque::new(),
            generation: 0,
            bytes: 0,
            max_entries,
            max_bytes,
        }
    }

    /// The answer cached for `key`, if it has not expired.
    pub fn get(&mut self, key: &str, now_ms: u64) -> Option<Arc<Grant>> {
        let entry = self.entries.get(key)?;
        if now_ms < entry.expires_ms {
            return Some(Arc::clone(&entry.grant));
        }
        self.remove(key);
        None
    }

    /// Keeps `grant` for `ttl_ms` (0: not at all).
    pub fn put(&mut self, key: String, grant: Arc<Grant>, ttl_ms: u64, now_ms: u64) {
        if ttl_ms == 0 {
            return;
        }
        let size = grant.size + key.len();
        if size > self.max_bytes {
            return;
        }
        self.remove(&key);
        self.generation += 1;
        self.order.push_back((key.clone(), self.generation));
        self.bytes += size;
        self.entries.insert(
            key,
            Entry {
                grant,
                expires_ms: now_ms.saturating_add(ttl_ms),
                generation: self.generation,
                size,
            },
        );
        while self.entries.len() > self.max_entries || self.bytes > self.max_bytes {
            let Some((oldest, generation)) = self.order.pop_front() else {
                break;
            };
            if self.entries.get(&oldest).map(|e| e.generation) == Some(generation) {
                self.remove(&oldest);
            }
        }
        // Stale order entries of replaced keys stay bounded too.
        if self.order.len() > self.max_entries.max(1).saturating_mul(2) {
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).map(|e| e.generation) == Some(*g));
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes -= entry.size;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held (answers and keys).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::AnswerRules;
    use super::*;

    fn grant(principal: &str) -> Arc<Grant> {
        let answer =
            format!(r#"{{"principalId": "{principal}", "policyDocument": {{"Statement": []}}}}"#);
        Arc::new(
            Grant::parse(
                answer.as_bytes(),
                AnswerRules {
                    simple_responses: false,
                    flat_context: true,
                },
            )
            .unwrap(),
        )
    }

    #[test]
    fn entries_expire_after_their_ttl_and_ttl_0_is_not_kept() {
        let mut cache = AuthCache::default();
        cache.put("a".into(), grant("u"), 1000, 5000);
        assert!(cache.get("a", 5999).is_some());
        assert!(cache.get("a", 6000).is_none());
        assert!(cache.is_empty() && cache.bytes() == 0);
        cache.put("b".into(), grant("u"), 0, 5000);
        assert!(cache.get("b", 5000).is_none());
    }

    #[test]
    fn the_oldest_go_when_entries_or_bytes_are_over_the_bound() {
        let mut cache = AuthCache::new(3, usize::MAX);
        for key in ["a", "b", "c", "d"] {
            cache.put(key.into(), grant(key), 60_000, 0);
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.get("a", 1).is_none() && cache.get("d", 1).is_some());
        // Replacing a key makes it the newest.
        cache.put("b".into(), grant("b2"), 60_000, 0);
        cache.put("e".into(), grant("e"), 60_000, 0);
        assert!(cache.get("c", 1).is_none());
        assert_eq!(
            cache.get("b", 1).unwrap().principal_id.as_deref(),
            Some("b2")
        );

        let one = grant("x").size + 1;
        let mut cache = AuthCache::new(usize::MAX, 2 * one);
        for key in ["a", "b", "c"] {
            cache.put(key.into(), grant("x"), 60_000, 0);
        }
        assert_eq!((cache.len(), cache.bytes()), (2, 2 * one));
        for i in 0..10_000 {
            cache.put(format!("{}", i % 2), grant("x"), 60_000, 0);
        }
        assert!(cache.bytes() <= 2 * one + 2);
    }
}
