//! Bucket quotas (MinIO's hard quota, set through its admin API's `set-bucket-quota`): a write
//! that would take a bucket's stored bytes (every version, delete markers aside) over its quota
//! is refused with `XMinioAdminBucketQuotaExceeded` before its body is read.
//!
//! The quotas are held in memory (the bucket document `quota` is their durable form), so a
//! bucket without one costs one empty-map check per write. A bucket's usage is read from the
//! store at most every `FRESH` and counted up by each write admitted since, so writes in quick
//! succession cannot slip past one stale reading; deletes are seen at the next reading.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use fsgate_store::{Store, StoreError};

/// The bucket document holding a quota (MinIO's `BucketQuota` JSON).
pub const QUOTA_DOC: &str = "quota";

/// How long a usage reading is trusted before the store is read again.
const FRESH: Duration = Duration::from_secs(5);

/// MinIO's `BucketQuota`: `quota` (older clients) or `size`, in bytes; `quotatype` is `hard`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaConfig {
    /// The limit in bytes (older clients' field).
    #[serde(default)]
    pub quota: u64,
    /// The limit in bytes.
    #[serde(default)]
    pub size: u64,
    /// `hard` (the only kind MinIO still takes).
    #[serde(default, rename = "quotatype")]
    pub kind: String,
}

impl QuotaConfig {
    /// The limit in bytes: `size`, or `quota` when only it is given; 0 for none.
    #[must_use]
    pub fn limit(&self) -> u64 {
        if self.size > 0 { self.size } else { self.quota }
    }
}

struct Usage {
    bytes: u64,
    read_at: Instant,
}

/// The quotas in force and the usage readings behind them.
#[derive(Default)]
pub struct BucketQuotas {
    /// Whether any bucket has a quota: the one check a write pays when none has.
    any: std::sync::atomic::AtomicBool,
    limits: RwLock<HashMap<String, u64>>,
    usage: Mutex<HashMap<String, Usage>>,
}

impl std::fmt::Debug for BucketQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketQuotas").finish_non_exhaustive()
    }
}

/// Why a write was refused.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The write would take the bucket over its quota.
    #[error(
        "Bucket quota exceeded: bucket {bucket} holds {used} of its {limit} bytes and this write brings {incoming}"
    )]
    Exceeded {
        /// The bucket.
        bucket: String,
        /// Bytes stored.
        used: u64,
        /// The quota.
        limit: u64,
        /// The write's size (0 when unknown).
        incoming: u64,
    },
    /// Reading the usage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BucketQuotas {
    /// The quotas stored in the buckets' documents.
    ///
    /// # Errors
    /// A store failure.
    pub fn load(store: &Store) -> Result<Arc<Self>, StoreError> {
        let q = Self::default();
        for (bucket, doc) in store.bucket_configs(QUOTA_DOC)? {
            if let Ok(c) = serde_json::from_slice::<QuotaConfig>(&doc) {
                q.set(&bucket, c.limit());
            }
        }
        Ok(Arc::new(q))
    }

    /// Puts a quota in force (0 takes it away).
    pub fn set(&self, bucket: &str, limit: u64) {
        let mut limits = self
            .limits
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if limit == 0 {
            limits.remove(bucket);
        } else {
            limits.insert(bucket.to_owned(), limit);
        }
        self.any
            .store(!limits.is_empty(), std::sync::atomic::Ordering::Release);
        lock(&self.usage).remove(bucket);
    }

    fn limit(&self, bucket: &str) -> Option<u64> {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let limits = self
            .limits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        limits.get(bucket).copied()
    }

    /// Admits a write of `incoming` bytes (`None` when its size is not known yet: admitted
    /// while the bucket is under its quota) or refuses it; an admitted write is counted.
    ///
    /// # Errors
    /// `QuotaError::Exceeded` over the quota; a store failure reading the usage.
    pub async fn admit(
        &self,
        store: &Arc<Store>,
        bucket: &str,
        incoming: Option<u64>,
    ) -> Result<(), QuotaError> {
        let Some(limit) = self.limit(bucket) else {
            return Ok(());
        };
        let stale = lock(&self.usage)
            .get(bucket)
            .is_none_or(|u| u.read_at.elapsed() > FRESH);
        if stale {
            let (s, b) = (store.clone(), bucket.to_owned());
            let (_, bytes) = tokio::task::spawn_blocking(move || s.bucket_usage(&b))
                .await
                .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))??;
            lock(&self.usage).insert(
                bucket.to_owned(),
                Usage {
                    bytes,
                    read_at: Instant::now(),
                },
            );
        }
        let mut usage = lock(&self.usage);
        let Some(u) = usage.get_mut(bucket) else {
            return Ok(());
        };
        let n = incoming.unwrap_or(0);
        let over = match incoming {
            Some(n) => u.bytes.saturating_add(n) > limit,
            None => u.bytes >= limit,
        };
        if over {
            return Err(QuotaError::Exceeded {
                bucket: bucket.to_owned(),
                used: u.bytes,
                limit,
                incoming: n,
            });
        }
        u.bytes = u.bytes.saturating_add(n);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_wins_over_the_older_quota_field() {
        let c: QuotaConfig = serde_json::from_str(r#"{"quota":10,"quotatype":"hard"}"#).unwrap();
        assert_eq!(c.limit(), 10);
        let c: QuotaConfig =
            serde_json::from_str(r#"{"quota":10,"size":20,"quotatype":"hard"}"#).unwrap();
        assert_eq!(c.limit(), 20);
    }
}
