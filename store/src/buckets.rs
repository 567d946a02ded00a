//! Buckets: create, read, versioning and Object Lock switches, configuration documents
//! (tags, CORS, lifecycle, policy...), list and delete.

use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, bucket_cfg_key, bucket_prefix, codec};
use crate::model::{BucketRecord, Versioning};
use crate::{Store, now_ns};

/// Valid bucket names, as AWS defines them for new buckets.
#[must_use]
pub fn is_valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let edge_ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.first().is_some_and(|c| edge_ok(*c)) || !b.last().is_some_and(|c| edge_ok(*c)) {
        return false;
    }
    if !b.iter().all(|c| edge_ok(*c) || *c == b'.' || *c == b'-') {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    !(name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3"))
}

/// The bucket document naming the principal that created the bucket (its owner). Buckets
/// made before owners were kept have none.
pub const OWNER_DOC: &str = "owner";

impl Store {
    /// Creates a bucket; with `object_lock` versioning is enabled for good.
    pub fn create_bucket(&self, name: &str, object_lock: bool) -> StoreResult<()> {
        self.create_bucket_owned(name, object_lock, None, &[])
    }

    /// Creates a bucket owned by `owner`, with configuration documents `docs` (its ACL, its
    /// ownership controls), all recorded in the same batch as the bucket itself.
    pub fn create_bucket_owned(
        &self,
        name: &str,
        object_lock: bool,
        owner: Option<&str>,
        docs: &[(&str, &[u8])],
    ) -> StoreResult<()> {
        let _gate = self.bucket_exclusive();
        if self.meta().contains(Cf::Buckets, name.as_bytes())? {
            return Err(StoreError::BucketExists);
        }
        let mut batch = self.meta().batch();
        batch.put(
            Cf::Buckets,
            name.as_bytes(),
            &BucketRecord {
                created_ns: now_ns(),
                versioning: if object_lock {
                    Versioning::Enabled
                } else {
                    Versioning::Unversioned
                },
                object_lock,
            },
        )?;
        if let Some(owner) = owner {
            batch.put_raw(
                Cf::BucketCfg,
                &bucket_cfg_key(name, OWNER_DOC),
                owner.as_bytes(),
            )?;
        }
        for (doc, bytes) in docs {
            batch.put_raw(Cf::BucketCfg, &bucket_cfg_key(name, doc), bytes)?;
        }
        self.commit(batch)
    }

    /// The principal that created a bucket, when it was recorded.
    pub fn bucket_owner(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self
            .bucket_config(name, OWNER_DOC)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Reads a bucket.
    pub fn bucket(&self, name: &str) -> StoreResult<BucketRecord> {
        self.meta()
            .get(Cf::Buckets, name.as_bytes())?
            .ok_or(StoreError::NoSuchBucket)
    }

    /// Changes a bucket's record (versioning, object lock) under the exclusive bucket gate.
    fn update_bucket(
        &self,
        name: &str,
        f: impl FnOnce(&mut BucketRecord) -> StoreResult<()>,
    ) -> StoreResult<BucketRecord> {
        let _gate = self.bucket_exclusive();
        let mut rec = self.bucket(name)?;
        f(&mut rec)?;
        let mut batch = self.meta().batch();
        batch.put(Cf::Buckets, name.as_bytes(), &rec)?;
        self.commit(batch)?;
        Ok(rec)
    }

    /// Sets a bucket's versioning to Enabled or Suspended. A bucket with Object Lock stays
    /// Enabled; no bucket goes back to Unversioned.
    pub fn set_versioning(&self, name: &str, v: Versioning) -> StoreResult<()> {
        self.update_bucket(name, |rec| {
            if v == Versioning::Unversioned {
                return Err(StoreError::InvalidRequest(
                    "versioning can only be Enabled or Suspended".into(),
                ));
            }
            if rec.object_lock && v != Versioning::Enabled {
                return Err(StoreError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                ));
            }
            rec.versioning = v;
            Ok(())
        })
        .map(|_| ())
    }

    /// Turns Object Lock on for a bucket whose versioning is enabled (it cannot be turned off).
    pub fn enable_object_lock(&self, name: &str) -> StoreResult<()> {
        self.update_bucket(name, |rec| {
            if rec.versioning != Versioning::Enabled {
                return Err(StoreError::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration".into(),
                ));
            }
            rec.object_lock = true;
            Ok(())
        })
        .map(|_| ())
    }

    /// A bucket configuration document (`tagging`, `cors`, `lifecycle`, `policy`, ...).
    pub fn bucket_config(&self, bucket: &str, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.bucket(bucket)?;
        self.meta()
            .get_raw(Cf::BucketCfg, &bucket_cfg_key(bucket, name))
    }

    /// Every bucket's document of one kind (for background workers such as lifecycle).
    pub fn bucket_configs(&self, name: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for (bucket, _) in self.list_buckets()? {
            if let Some(doc) = self
                .meta()
                .get_raw(Cf::BucketCfg, &bucket_cfg_key(&bucket, name))?
            {
                out.push((bucket, doc));
            }
        }
        Ok(out)
    }

    /// A bucket's documents whose names start with `prefix` (object ACLs: `acl/KEY`), with
    /// their names, in name order.
    pub fn bucket_configs_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let start = bucket_cfg_key(bucket, "");
        self.meta()
            .scan_prefix_raw(Cf::BucketCfg, &bucket_cfg_key(bucket, prefix))?
            .into_iter()
            .filter_map(|(k, v)| {
                let name = String::from_utf8(k.get(start.len()..)?.to_vec()).ok()?;
                Some(match v.split_first() {
                    Some((&codec::VALUE_VERSION, body)) => Ok((name, body.to_vec())),
                    _ => Err(StoreError::Corrupt {
                        what: "bucket document",
                        detail: format!("{name}: unknown value version"),
                    }),
                })
            })
            .collect()
    }

    /// Sets (or with `None` removes) a bucket configuration document.
    pub fn set_bucket_config(
        &self,
        bucket: &str,
        name: &str,
        doc: Option<&[u8]>,
    ) -> StoreResult<()> {
        let _gate = self.bucket_shared();
        self.bucket(bucket)?;
        let mut batch = self.meta().batch();
        let k = bucket_cfg_key(bucket, name);
        match doc {
            Some(d) => batch.put_raw(Cf::BucketCfg, &k, d)?,
            None => batch.delete(Cf::BucketCfg, &k)?,
        }
        self.commit(batch)
    }

    /// Sets (or removes) several configuration documents of a bucket in one atomic batch.
    pub fn set_bucket_configs(
        &self,
        bucket: &str,
        docs: &[(&str, Option<&[u8]>)],
    ) -> StoreResult<()> {
        let _gate = self.bucket_shared();
        self.bucket(bucket)?;
        let mut batch = self.meta().batch();
        for (name, doc) in docs {
            let k = bucket_cfg_key(bucket, name);
            match doc {
                Some(d) => batch.put_raw(Cf::BucketCfg, &k, d)?,
                None => batch.delete(Cf::BucketCfg, &k)?,
            }
        }
        self.commit(batch)
    }

    /// Every bucket, by name.
    pub fn list_buckets(&self) -> StoreResult<Vec<(String, BucketRecord)>> {
        self.meta()
            .scan_prefix::<BucketRecord>(Cf::Buckets, b"")?
            .into_iter()
            .map(|(k, v)| {
                String::from_utf8(k)
                    .map(|name| (name, v))
                    .map_err(|e| StoreError::Corrupt {
                        what: "bucket name",
                        detail: e.to_string(),
                    })
            })
            .collect()
    }

    /// Deletes an empty bucket (delete markers count: a bucket holding any is not empty) and
    /// its configuration documents.
    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let _gate = self.bucket_exclusive();
        self.bucket(name)?;
        let prefix = bucket_prefix(name);
        if self.meta().any_with_prefix(Cf::Objects, &prefix)?
            || self.meta().any_with_prefix(Cf::Versions, &prefix)?
            || self.meta().any_with_prefix(Cf::Uploads, &prefix)?
        {
            return Err(StoreError::BucketNotEmpty);
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Buckets, name.as_bytes())?;
        for (k, _) in self.meta().scan_prefix_raw(Cf::BucketCfg, &prefix)? {
            batch.delete(Cf::BucketCfg, &k)?;
        }
        self.commit(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "a.b.c", "123", "team"] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "ABC",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
            "with space",
            "é-bucket",
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
        assert!(!is_valid_bucket_name(&"a".repeat(64)));
    }
}
