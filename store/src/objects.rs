//! Buckets and objects: create, read, overwrite, copy, delete and list.

use std::collections::HashMap;

use crate::blob::{BlobId, StagedBlob};
use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, bucket_prefix, object_key, prefix_successor};
use crate::model::{BucketRecord, Extent, ObjectHeaders, ObjectManifest, StoredChecksum};
use crate::{Store, now_ns};

/// Objects up to this size keep their bytes in RocksDB (one synced write, no file, no
/// directory fsync); larger ones go to blobs.
pub const INLINE_MAX: u64 = 64 * 1024;

/// Where a committed object's bytes come from.
#[derive(Debug)]
pub(crate) enum Content<'a> {
    /// A staged blob, published before the commit.
    Staged(&'a mut StagedBlob),
    /// Small object bytes, written in the same batch as the manifest.
    Inline(&'a [u8]),
    /// Blobs the manifest already names (copies, multipart completion).
    Existing,
}

/// What a new object is made of, besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct NewObject {
    /// Client headers and metadata.
    pub headers: ObjectHeaders,
    /// Checksums to keep.
    pub checksums: Vec<StoredChecksum>,
}

/// One entry of a listing page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    /// An object.
    Object {
        /// Its key.
        key: String,
        /// Size in bytes.
        size: u64,
        /// ETag without quotes.
        etag: String,
        /// Last-Modified (ns).
        modified_ns: u64,
    },
    /// Keys rolled up under a common prefix (ends with the delimiter).
    CommonPrefix(String),
}

/// A listing page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Entries in key order; objects and common prefixes together count against max.
    pub entries: Vec<ListEntry>,
    /// Where the next page starts (inclusive seek position), when truncated.
    pub next: Option<Vec<u8>>,
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    /// Only keys starting with this.
    pub prefix: &'a str,
    /// Roll keys up at the first occurrence of this after the prefix.
    pub delimiter: Option<&'a str>,
    /// Start at this key (inclusive), as a raw position from a previous page's `next`.
    pub start_at: Option<&'a [u8]>,
    /// Start strictly after this key (ListObjects `marker`, V2 `start-after`).
    pub start_after: Option<&'a str>,
    /// Maximum entries.
    pub max: usize,
}

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

impl Store {
    /// Creates a bucket.
    pub fn create_bucket(&self, name: &str) -> StoreResult<()> {
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
            },
        )?;
        self.commit(batch)
    }

    /// Reads a bucket.
    pub fn bucket(&self, name: &str) -> StoreResult<BucketRecord> {
        self.meta()
            .get(Cf::Buckets, name.as_bytes())?
            .ok_or(StoreError::NoSuchBucket)
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

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let _gate = self.bucket_exclusive();
        self.bucket(name)?;
        let prefix = bucket_prefix(name);
        if self.meta().any_with_prefix(Cf::Objects, &prefix)?
            || self.meta().any_with_prefix(Cf::Uploads, &prefix)?
        {
            return Err(StoreError::BucketNotEmpty);
        }
        let mut batch = self.meta().batch();
        batch.delete(Cf::Buckets, name.as_bytes())?;
        self.commit(batch)
    }

    /// Reads an object's manifest.
    pub fn head_object(&self, bucket: &str, key: &str) -> StoreResult<ObjectManifest> {
        match self.meta().get(Cf::Objects, &object_key(bucket, key))? {
            Some(m) => Ok(m),
            None => {
                self.bucket(bucket)?;
                Err(StoreError::NoSuchKey)
            }
        }
    }

    /// Commits a simple upload: publishes the staged blob and writes the manifest, replacing
    /// any previous object (whose blob references are released).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        mut staged: StagedBlob,
        new: NewObject,
    ) -> StoreResult<ObjectManifest> {
        let manifest = ObjectManifest {
            size: staged.len,
            etag: hex::encode(staged.md5),
            modified_ns: now_ns(),
            extents: vec![Extent {
                blob: staged.id,
                len: staged.len,
            }],
            parts_count: 0,
            headers: new.headers,
            checksums: new.checksums,
            inline: false,
        };
        self.commit_manifest(bucket, key, manifest, Content::Staged(&mut staged))
    }

    /// Commits a small object whose bytes live in RocksDB next to its manifest: one synced
    /// batch, no blob file. `md5` is the MD5 of `data` (its ETag).
    pub fn put_object_inline(
        &self,
        bucket: &str,
        key: &str,
        data: &[u8],
        md5: [u8; 16],
        new: NewObject,
    ) -> StoreResult<ObjectManifest> {
        let manifest = ObjectManifest {
            size: data.len() as u64,
            etag: hex::encode(md5),
            modified_ns: now_ns(),
            extents: Vec::new(),
            parts_count: 0,
            headers: new.headers,
            checksums: new.checksums,
            inline: true,
        };
        self.commit_manifest(bucket, key, manifest, Content::Inline(data))
    }

    /// The bytes of an inline object.
    pub fn inline_data(&self, bucket: &str, key: &str) -> StoreResult<Vec<u8>> {
        self.meta()
            .get_raw(Cf::Inline, &object_key(bucket, key))?
            .ok_or_else(|| StoreError::Corrupt {
                what: "inline object",
                detail: format!("{bucket}/{key} has no inline bytes"),
            })
    }

    /// Writes `manifest` at bucket/key, replacing any previous object: the common path of put
    /// and copy. `staged` is published (durably) before the metadata commit.
    pub(crate) fn commit_manifest(
        &self,
        bucket: &str,
        key: &str,
        manifest: ObjectManifest,
        content: Content<'_>,
    ) -> StoreResult<ObjectManifest> {
        let _gate = self.bucket_shared();
        self.bucket(bucket)?;
        let okey = object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        let batch = self.meta().batch();
        self.commit_manifest_locked(bucket, key, manifest, content, batch, HashMap::new())
    }

    /// As `commit_manifest`, for callers already holding the bucket gate and the key stripe.
    /// `batch` and `deltas` may already carry the caller's own changes (multipart completion
    /// moves part references and deletes the upload in the same atomic batch).
    pub(crate) fn commit_manifest_locked(
        &self,
        bucket: &str,
        key: &str,
        manifest: ObjectManifest,
        content: Content<'_>,
        mut batch: crate::meta::Batch<'_>,
        mut deltas: HashMap<BlobId, i64>,
    ) -> StoreResult<ObjectManifest> {
        let okey = object_key(bucket, key);
        let old: Option<ObjectManifest> = self.meta().get(Cf::Objects, &okey)?;
        match &content {
            Content::Inline(data) => batch.put_raw(Cf::Inline, &okey, data)?,
            _ if old.as_ref().is_some_and(|o| o.inline) => batch.delete(Cf::Inline, &okey)?,
            _ => {}
        }
        for e in &manifest.extents {
            *deltas.entry(e.blob).or_default() += 1;
        }
        if let Some(old) = &old {
            for e in &old.extents {
                *deltas.entry(e.blob).or_default() -= 1;
            }
        }
        let _blob_guard = self.lock_blobs(deltas.keys());
        if let Content::Staged(staged) = content {
            self.blobs().publish(staged)?;
        }
        batch.put(Cf::Objects, &okey, &manifest)?;
        let dead = self.apply_ref_deltas(&mut batch, &deltas)?;
        self.commit(batch)?;
        self.remove_dead(&dead);
        Ok(manifest)
    }

    /// Copies an object without copying bytes: the destination names the source's blobs.
    /// `check` sees the source manifest first and may refuse (conditional copy).
    pub fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        headers: Option<ObjectHeaders>,
        check: impl FnOnce(&ObjectManifest) -> StoreResult<()>,
    ) -> StoreResult<ObjectManifest> {
        let _gate = self.bucket_shared();
        self.bucket(dst_bucket)?;
        let skey = object_key(src_bucket, src_key);
        let dkey = object_key(dst_bucket, dst_key);
        let _key_guard = self.lock_keys(&[&skey, &dkey]);
        let src = self.head_object(src_bucket, src_key)?;
        check(&src)?;
        let inline = if src.inline {
            Some(self.inline_data(src_bucket, src_key)?)
        } else {
            None
        };
        let manifest = ObjectManifest {
            modified_ns: now_ns(),
            headers: headers.unwrap_or_else(|| src.headers.clone()),
            ..src
        };
        let batch = self.meta().batch();
        let content = match &inline {
            Some(d) => Content::Inline(d),
            None => Content::Existing,
        };
        self.commit_manifest_locked(
            dst_bucket,
            dst_key,
            manifest,
            content,
            batch,
            HashMap::new(),
        )
    }

    /// Deletes an object; deleting a missing key succeeds (as S3 does). Returns whether it
    /// existed.
    pub fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<bool> {
        let _gate = self.bucket_shared();
        self.bucket(bucket)?;
        let okey = object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        let Some(old): Option<ObjectManifest> = self.meta().get(Cf::Objects, &okey)? else {
            return Ok(false);
        };
        let mut deltas: HashMap<BlobId, i64> = HashMap::new();
        for e in &old.extents {
            *deltas.entry(e.blob).or_default() -= 1;
        }
        let _blob_guard = self.lock_blobs(deltas.keys());
        let mut batch = self.meta().batch();
        batch.delete(Cf::Objects, &okey)?;
        if old.inline {
            batch.delete(Cf::Inline, &okey)?;
        }
        let dead = self.apply_ref_deltas(&mut batch, &deltas)?;
        self.commit(batch)?;
        self.remove_dead(&dead);
        Ok(true)
    }

    /// Lists a bucket's objects in UTF-8 byte order, rolling keys up into common prefixes at
    /// the delimiter. Skips a whole common prefix with one seek.
    pub fn list_objects(&self, bucket: &str, q: &ListQuery<'_>) -> StoreResult<ListPage> {
        self.bucket(bucket)?;
        let bprefix = bucket_prefix(bucket);
        let full_prefix = object_key(bucket, q.prefix);
        let mut seek = full_prefix.clone();
        if let Some(after) = q.start_after {
            let mut a = object_key(bucket, after);
            a.push(0); // the immediate successor of `after`
            if a > seek {
                seek = a;
            }
        }
        if let Some(at) = q.start_at {
            let mut a = bprefix.clone();
            a.extend_from_slice(at);
            if a > seek {
                seek = a;
            }
        }
        let mut page = ListPage::default();
        if q.max == 0 {
            return Ok(page);
        }
        let delim = q.delimiter.filter(|d| !d.is_empty());
        let mut it = self.meta().raw_iter(Cf::Objects)?;
        it.seek(&seek);
        while it.valid() {
            let Some(k) = it.key() else { break };
            if !k.starts_with(&full_prefix) {
                break;
            }
            let key_bytes = k.get(bprefix.len()..).unwrap_or_default();
            let key = std::str::from_utf8(key_bytes).map_err(|e| StoreError::Corrupt {
                what: "object key",
                detail: e.to_string(),
            })?;
            if page.entries.len() >= q.max {
                page.next = Some(key_bytes.to_vec());
                break;
            }
            let rest = key.get(q.prefix.len()..).unwrap_or_default();
            if let Some(d) = delim
                && let Some(pos) = rest.find(d)
            {
                let cp = format!(
                    "{}{}",
                    q.prefix,
                    rest.get(..pos + d.len()).unwrap_or_default()
                );
                let next = prefix_successor(&object_key(bucket, &cp));
                page.entries.push(ListEntry::CommonPrefix(cp));
                match next {
                    Some(n) => it.seek(&n),
                    None => break,
                }
                continue;
            }
            let Some(v) = it.value() else { break };
            let m: ObjectManifest = crate::meta::codec::decode("object", v)?;
            page.entries.push(ListEntry::Object {
                key: key.to_owned(),
                size: m.size,
                etag: m.etag,
                modified_ns: m.modified_ns,
            });
            it.next();
        }
        it.status()?;
        Ok(page)
    }

    /// Number of objects and their logical size in bytes, across all buckets (for metrics).
    pub fn usage(&self) -> StoreResult<(u64, u64)> {
        let mut it = self.meta().raw_iter(Cf::Objects)?;
        it.seek_to_first();
        let (mut n, mut bytes) = (0u64, 0u64);
        while it.valid() {
            if let Some(v) = it.value() {
                let m: ObjectManifest = crate::meta::codec::decode("object", v)?;
                n += 1;
                bytes += m.size;
            }
            it.next();
        }
        it.status()?;
        Ok((n, bytes))
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
