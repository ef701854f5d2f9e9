//! The one-machine store: a folder with `keys.json` (what `lambdagate
//! keys` writes, atomically, under `keys.lock`) and `counters.json` (the
//! quota counts, written by the running service within a second of a
//! change and when it stops). Buckets live in memory only: a restart gives
//! a key a fresh burst, never a fresh quota. One service per folder: it
//! holds `counters.lock` while it runs.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{StoreError, now_micros};
use crate::keys::KeyRecord;
use crate::limit::{Admission, Micros, Quota, Rate, admit};

const KEYS_FILE: &str = "keys.json";
const KEYS_LOCK: &str = "keys.lock";
const COUNTERS_FILE: &str = "counters.json";
const COUNTERS_LOCK: &str = "counters.lock";

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: Vec<KeyRecord>,
}

/// Quota counts by counter name (plan, key id, period start).
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CountersFile {
    quotas: HashMap<String, QuotaCount>,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaCount {
    used: u64,
    /// Seconds since the epoch when the period ends (then the count goes).
    ends: i64,
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Io(format!("{}: {e}", path.display()))
}

/// Writes `text` to `path` by a rename, so readers see the old or the new
/// file whole.
fn replace(path: &Path, text: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp).map_err(|e| io(&tmp, e))?;
    file.write_all(text).map_err(|e| io(&tmp, e))?;
    file.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

/// Keys in the folder, for `lambdagate keys` (no service needed).
pub struct FolderKeys {
    dir: PathBuf,
}

impl FolderKeys {
    pub fn new(dir: &Path) -> Self {
        FolderKeys {
            dir: dir.to_owned(),
        }
    }

    fn read(&self) -> Result<KeysFile, StoreError> {
        let path = self.dir.join(KEYS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeysFile::default()),
            Err(e) => Err(io(&path, e)),
        }
    }

    pub fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(self.read()?.keys)
    }

    /// Changes the key list under the folder's lock.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<KeyRecord>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let lock_path = self.dir.join(KEYS_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        lock.lock().map_err(|e| io(&lock_path, e))?;
        let mut file = self.read()?;
        let out = change(&mut file.keys)?;
        let text =
            serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Io(format!("keys: {e}")))?;
        replace(&self.dir.join(KEYS_FILE), &text)?;
        Ok(out)
    }

    /// The file's modification time and length: whether to read it again.
    fn stamp(&self) -> Option<(SystemTime, u64)> {
        let meta = std::fs::metadata(self.dir.join(KEYS_FILE)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

struct Counters {
    tats: HashMap<String, Micros>,
    quotas: HashMap<String, QuotaCount>,
    dirty: bool,
}

/// The service's side of the folder.
pub struct FolderStore {
    keys: FolderKeys,
    counters_path: PathBuf,
    counters: Mutex<Counters>,
    last_keys: Mutex<Option<(SystemTime, u64)>>,
    /// Held while the service runs.
    _lock: File,
}

impl FolderStore {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let lock_path = dir.join(COUNTERS_LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(&lock_path, e))?;
        lock.try_lock().map_err(|_| {
            StoreError::Io(format!(
                "{}: another invoker is using this usage store (one per folder; a fleet shares Redis)",
                dir.display()
            ))
        })?;
        let counters_path = dir.join(COUNTERS_FILE);
        let saved: CountersFile = match std::fs::read(&counters_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", counters_path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CountersFile::default(),
            Err(e) => return Err(io(&counters_path, e)),
        };
        Ok(FolderStore {
            keys: FolderKeys::new(dir),
            counters_path,
            counters: Mutex::new(Counters {
                tats: HashMap::new(),
                quotas: saved.quotas,
                dirty: false,
            }),
            last_keys: Mutex::new(None),
            _lock: lock,
        })
    }

    /// The key list when it changed since the last call.
    pub fn keys_if_changed(&self) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        let stamp = self.keys.stamp();
        let mut last = self.last_keys.lock().map_err(|_| StoreError::Poisoned)?;
        if stamp.is_some() && *last == stamp {
            return Ok(None);
        }
        let keys = self.keys.list()?;
        *last = stamp;
        Ok(Some(keys))
    }

    pub fn admit(
        &self,
        bucket: &str,
        rate: Rate,
        quota: Option<(&str, Quota)>,
    ) -> Result<Admission, StoreError> {
        let now = now_micros();
        let mut counters = self.counters.lock().map_err(|_| StoreError::Poisoned)?;
        let used = quota.map(|(name, q)| {
            let count = counters.quotas.get(name).map_or(0, |c| c.used);
            (q, count)
        });
        let tat = counters.tats.get(bucket).copied();
        let (admission, next) = admit(rate, tat, used, now);
        if let Some(next) = next {
            counters.tats.insert(bucket.to_owned(), next);
            if let Some((name, q)) = quota {
                let (_, ends) = q.period.bounds(now.div_euclid(1_000_000));
                let count = counters
                    .quotas
                    .entry(name.to_owned())
                    .or_insert(QuotaCount { used: 0, ends });
                count.used += 1;
                counters.dirty = true;
            }
        }
        // Idle buckets are forgotten: a bucket whose time has passed is
        // the same as none.
        if counters.tats.len() > 100_000 {
            counters.tats.retain(|_, tat| *tat > now);
        }
        Ok(admission)
    }

    /// Writes the quota counts if they changed; drops ended periods.
    pub fn flush(&self) -> Result<(), StoreError> {
        let text = {
            let mut counters = self.counters.lock().map_err(|_| StoreError::Poisoned)?;
            if !counters.dirty {
                return Ok(());
            }
            let now = now_micros().div_euclid(1_000_000);
            counters.quotas.retain(|_, c| c.ends > now);
            counters.dirty = false;
            serde_json::to_vec(&CountersFile {
                quotas: counters.quotas.clone(),
            })
            .map_err(|e| StoreError::Io(format!("counters: {e}")))?
        };
        let written = replace(&self.counters_path, &text);
        if written.is_err()
            && let Ok(mut counters) = self.counters.lock()
        {
            // Try again on the next flush.
            counters.dirty = true;
        }
        written
    }
}
