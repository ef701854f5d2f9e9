//! Where keys and counters live: a folder on one machine, or Redis for a
//! fleet. The service and `lambdagate keys` use the same two.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::StoreLocation;
use crate::keys::{KeyRecord, NewKey, generate};
use crate::limit::{Admission, Micros, Quota, Rate};

pub mod folder;
pub mod redis;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (Redis down, or too slow).
    #[error("usage store unavailable: {0}")]
    Unavailable(String),
    #[error("usage store: {0}")]
    Io(String),
    #[error("usage store holds something unreadable: {0}")]
    Corrupt(String),
    #[error("usage store: a thread panicked holding the counters")]
    Poisoned,
    #[error("{0}")]
    NotFound(String),
}

pub(crate) fn now_micros() -> Micros {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Micros::try_from(d.as_micros()).unwrap_or(Micros::MAX)
    })
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The running service's store.
pub enum Store {
    Folder(folder::FolderStore),
    Redis(Box<redis::RedisStore>),
}

impl Store {
    pub fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Ok(match location {
            StoreLocation::Folder(dir) => Store::Folder(folder::FolderStore::open(dir)?),
            StoreLocation::Redis(url) => Store::Redis(Box::new(redis::RedisStore::new(url)?)),
        })
    }

    pub async fn admit(
        &self,
        bucket: &str,
        rate: Rate,
        quota: Option<(&str, Quota)>,
    ) -> Result<Admission, StoreError> {
        match self {
            Store::Folder(store) => store.admit(bucket, rate, quota),
            Store::Redis(store) => {
                store
                    .admit(bucket, rate, quota, now_micros().div_euclid(1_000_000))
                    .await
            }
        }
    }

    pub async fn keys_if_changed(&self) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        match self {
            Store::Folder(store) => store.keys_if_changed(),
            Store::Redis(store) => store.keys_if_changed().await,
        }
    }

    /// Persists what is only in memory (the folder's quota counts).
    pub fn flush(&self) -> Result<(), StoreError> {
        match self {
            Store::Folder(store) => store.flush(),
            Store::Redis(_) => Ok(()),
        }
    }
}

/// `lambdagate keys`: the key list in either store, without a service.
pub enum KeyAdmin {
    Folder(folder::FolderKeys),
    Redis(Box<redis::RedisStore>),
}

impl KeyAdmin {
    pub fn open(location: &StoreLocation) -> Result<KeyAdmin, StoreError> {
        Ok(match location {
            StoreLocation::Folder(dir) => KeyAdmin::Folder(folder::FolderKeys::new(dir)),
            StoreLocation::Redis(url) => KeyAdmin::Redis(Box::new(redis::RedisStore::new(url)?)),
        })
    }

    /// A new key for `plans`; the key itself is in the answer only.
    pub async fn create(&self, name: &str, plans: Vec<String>) -> Result<NewKey, StoreError> {
        let new = generate(name, plans, now_seconds()).map_err(StoreError::Io)?;
        match self {
            KeyAdmin::Folder(keys) => keys.update(|list| {
                list.push(new.record.clone());
                Ok(())
            })?,
            KeyAdmin::Redis(store) => store.put(&new.record).await?,
        }
        Ok(new)
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        match self {
            KeyAdmin::Folder(keys) => keys.list(),
            KeyAdmin::Redis(store) => store.list().await,
        }
    }

    /// Revokes the key with this id (or name); returns its record.
    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let pick = |list: &[KeyRecord]| -> Result<usize, StoreError> {
            let found: Vec<usize> = list
                .iter()
                .enumerate()
                .filter(|(_, r)| r.id == id || (!r.name.is_empty() && r.name == id))
                .map(|(i, _)| i)
                .collect();
            match found.as_slice() {
                [one] => Ok(*one),
                [] => Err(StoreError::NotFound(format!(
                    "no key with id or name `{id}` (see `lambdagate keys list`)"
                ))),
                _ => Err(StoreError::NotFound(format!(
                    "several keys are named `{id}`: give the id"
                ))),
            }
        };
        match self {
            KeyAdmin::Folder(keys) => keys.update(|list| {
                let i = pick(list)?;
                let record = list.get_mut(i).ok_or(StoreError::Poisoned)?;
                record.revoked = true;
                Ok(record.clone())
            }),
            KeyAdmin::Redis(store) => {
                let list = store.list().await?;
                let i = pick(&list)?;
                let mut record = list.get(i).cloned().ok_or(StoreError::Poisoned)?;
                record.revoked = true;
                store.put(&record).await?;
                Ok(record)
            }
        }
    }
}
