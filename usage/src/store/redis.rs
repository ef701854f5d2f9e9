//! The fleet's store: Redis. Keys are a hash (`lambdagate:keys`, field =
//! the key's SHA-256) with a version counter that every change bumps, so
//! instances re-read the list only when it changed. A request's bucket and
//! quota are checked and taken in one script, on Redis's clock: replicas
//! share one count exactly.

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::StoreError;
use crate::keys::KeyRecord;
use crate::limit::{Admission, Quota, Rate, retry_seconds};

const KEYS_HASH: &str = "lambdagate:keys";
const KEYS_VERSION: &str = "lambdagate:keys:version";

/// `limit::admit`'s steps in Lua. KEYS: the bucket, the quota counter.
/// ARGV: interval µs, tolerance µs, quota limit (0: none), the period's
/// end (s). Returns {0, 0} allowed, {1, wait µs} throttled, {2, wait µs}
/// quota used.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[3])
local ends = tonumber(ARGV[4])
if limit > 0 then
  local used = tonumber(redis.call('GET', KEYS[2]) or '0')
  if used >= limit then
    return {2, ends * 1000000 - now}
  end
end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > tolerance then
  return {1, nxt - now - tolerance}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.ceil((nxt - now) / 1000) + 1000)
if limit > 0 then
  redis.call('INCR', KEYS[2])
  redis.call('EXPIREAT', KEYS[2], ends + 3600)
end
return {0, 0}
";

pub struct RedisStore {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    script: redis::Script,
    last_version: Mutex<Option<i64>>,
}

fn redis_error(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    pub fn new(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::Io(format!("usage.store.redis: {e}")))?;
        Ok(RedisStore {
            client,
            connection: Mutex::new(None),
            script: redis::Script::new(ADMIT),
            last_version: Mutex::new(None),
        })
    }

    /// A connection, made on first use and again after a failure (the
    /// caller bounds the wait).
    async fn connection(&self) -> Result<MultiplexedConnection, StoreError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(redis_error)?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn forget_connection(&self) {
        *self.connection.lock().await = None;
    }

    async fn run<T>(
        &self,
        call: impl AsyncFnOnce(MultiplexedConnection) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let connection = self.connection().await?;
        match call(connection).await {
            Ok(value) => Ok(value),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
                    self.forget_connection().await;
                }
                Err(redis_error(e))
            }
        }
    }

    pub async fn admit(
        &self,
        bucket: &str,
        rate: Rate,
        quota: Option<(&str, Quota)>,
        now_seconds: i64,
    ) -> Result<Admission, StoreError> {
        let (limit, ends, quota_key) = match quota {
            Some((name, q)) => (
                q.limit,
                q.period.bounds(now_seconds).1,
                format!("lambdagate:quota:{name}"),
            ),
            None => (0, 0, "lambdagate:quota:-".to_owned()),
        };
        let bucket_key = format!("lambdagate:rate:{bucket}");
        let (code, wait): (i64, i64) = self
            .run(async |mut c| {
                self.script
                    .key(&bucket_key)
                    .key(&quota_key)
                    .arg(rate.interval())
                    .arg(rate.tolerance())
                    .arg(limit)
                    .arg(ends)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(match code {
            0 => Admission::Allowed,
            1 => Admission::Throttled {
                retry_after_seconds: retry_seconds(wait),
            },
            _ => Admission::QuotaExceeded {
                retry_after_seconds: retry_seconds(wait),
            },
        })
    }

    /// The key list when its version changed since the last call.
    pub async fn keys_if_changed(&self) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        let version: Option<i64> = self.run(async |mut c| c.get(KEYS_VERSION).await).await?;
        let mut last = self.last_version.lock().await;
        if last.is_some() && *last == version {
            return Ok(None);
        }
        let keys = self.list().await?;
        *last = version;
        Ok(Some(keys))
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let fields: Vec<(String, String)> =
            self.run(async |mut c| c.hgetall(KEYS_HASH).await).await?;
        fields
            .into_iter()
            .map(|(hash, json)| {
                serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("{KEYS_HASH} {hash}: {e}")))
            })
            .collect()
    }

    /// Stores `record` (new, or changed) and bumps the version.
    pub async fn put(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record)
            .map_err(|e| StoreError::Io(format!("key record: {e}")))?;
        self.run(async |mut c| {
            redis::pipe()
                .atomic()
                .hset(KEYS_HASH, &record.hash, &json)
                .ignore()
                .incr(KEYS_VERSION, 1)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}
