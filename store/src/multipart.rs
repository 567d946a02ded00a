//! Multipart uploads: create, upload parts, complete, abort, list.
//!
//! Parts are blobs referenced by their part records. Completion writes the object manifest
//! naming the chosen parts' blobs, deletes the upload and its parts, and moves the references
//! in the same atomic batch: nothing is copied, and nothing is half-done after a crash.

use std::collections::HashMap;

use md5::{Digest, Md5};

use crate::blob::{BlobId, StagedBlob};
use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, bucket_prefix, object_key, part_key, part_prefix, upload_key};
use crate::model::{
    Extent, ObjectExtras, ObjectHeaders, ObjectManifest, PartRecord, StoredChecksum, UploadRecord,
};
use crate::objects::{Content, WriteCondition, new_manifest};
use crate::{Store, now_ns};

/// An upload in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadEntry {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// The record.
    pub record: UploadRecord,
}

/// A page of ListMultipartUploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadPage {
    /// Uploads in key, then initiation, order.
    pub uploads: Vec<UploadEntry>,
    /// Common prefixes when a delimiter was given.
    pub common_prefixes: Vec<String>,
    /// True when more remain.
    pub truncated: bool,
}

/// Upload ids are the hex initiation time followed by random bits: they sort by time.
fn new_upload_id() -> String {
    let r: [u8; 8] = rand::random();
    format!("{:016x}{}", now_ns(), hex::encode(r))
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Computes the S3 multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`.
#[must_use]
pub fn multipart_etag(part_etags: &[&str]) -> String {
    let mut h = Md5::new();
    for e in part_etags {
        let mut bin = [0u8; 16];
        if hex::decode_to_slice(e, &mut bin).is_ok() {
            h.update(bin);
        }
    }
    format!("{}-{}", hex::encode(h.finalize()), part_etags.len())
}

impl Store {
    /// Starts a multipart upload; returns its id.
    pub fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        headers: ObjectHeaders,
        checksum_algorithm: Option<String>,
        initiator: &str,
        extras: ObjectExtras,
    ) -> StoreResult<String> {
        let _gate = self.bucket_shared();
        self.bucket(bucket)?;
        let id = new_upload_id();
        let rec = UploadRecord {
            initiated_ns: now_ns(),
            headers,
            checksum_algorithm,
            initiator: initiator.to_owned(),
            extras,
        };
        let mut batch = self.meta().batch();
        batch.put(Cf::Uploads, &upload_key(bucket, key, &id), &rec)?;
        self.commit(batch)?;
        Ok(id)
    }

    /// Reads an upload of bucket/key.
    pub fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<UploadRecord> {
        if !valid_upload_id(upload_id) {
            return Err(StoreError::NoSuchUpload);
        }
        match self
            .meta()
            .get(Cf::Uploads, &upload_key(bucket, key, upload_id))?
        {
            Some(r) => Ok(r),
            None => {
                self.bucket(bucket)?;
                Err(StoreError::NoSuchUpload)
            }
        }
    }

    /// Stores a part, replacing an earlier part with the same number.
    #[expect(
        clippy::too_many_arguments,
        reason = "a part and what is known about it"
    )]
    pub fn put_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        mut staged: StagedBlob,
        checksums: Vec<StoredChecksum>,
        plaintext: Option<(u64, [u8; 16])>,
    ) -> StoreResult<PartRecord> {
        let _gate = self.bucket_shared();
        let ulock = part_prefix(upload_id);
        let _key_guard = self.lock_keys(&[&ulock]);
        self.upload(bucket, key, upload_id)?;
        let pkey = part_key(upload_id, part_number);
        let old: Option<PartRecord> = self.meta().get(Cf::Parts, &pkey)?;
        // Encrypted parts record their plaintext size and MD5 (what the client sent).
        let (size, md5) = plaintext.unwrap_or((staged.len, staged.md5));
        let rec = PartRecord {
            etag: hex::encode(md5),
            size,
            blob: staged.id,
            modified_ns: now_ns(),
            checksums,
        };
        let mut deltas: HashMap<BlobId, i64> = HashMap::new();
        *deltas.entry(rec.blob).or_default() += 1;
        if let Some(old) = &old {
            *deltas.entry(old.blob).or_default() -= 1;
        }
        let mut batch = self.meta().batch();
        batch.put(Cf::Parts, &pkey, &rec)?;
        self.commit_with_refs(batch, &deltas, Some(&mut staged))?;
        Ok(rec)
    }

    /// Every part of an upload, by number.
    fn parts_of(&self, upload_id: &str) -> StoreResult<Vec<(u32, PartRecord)>> {
        let prefix = part_prefix(upload_id);
        self.meta()
            .scan_prefix::<PartRecord>(Cf::Parts, &prefix)?
            .into_iter()
            .map(|(k, v)| {
                let n = k
                    .get(prefix.len()..)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt {
                        what: "part key",
                        detail: hex::encode(&k),
                    })?;
                Ok((n, v))
            })
            .collect()
    }

    /// Parts after `marker`, at most `max`; the bool says whether more remain.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> StoreResult<(Vec<(u32, PartRecord)>, bool)> {
        self.upload(bucket, key, upload_id)?;
        let mut parts: Vec<_> = self
            .parts_of(upload_id)?
            .into_iter()
            .filter(|(n, _)| *n > marker)
            .collect();
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((parts, truncated))
    }

    /// Completes an upload with the client's list of (part number, ETag). `min_part_size`
    /// applies to every part but the last. `checksums_of` derives the object's checksums from
    /// the chosen parts.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parts of a completion request"
    )]
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        chosen: &[(u32, String)],
        min_part_size: u64,
        cond: &WriteCondition,
        checksums_of: impl FnOnce(&[&PartRecord]) -> StoreResult<Vec<StoredChecksum>>,
    ) -> StoreResult<ObjectManifest> {
        let _gate = self.bucket_shared();
        let okey = object_key(bucket, key);
        let ulock = part_prefix(upload_id);
        let _key_guard = self.lock_keys(&[&okey, &ulock]);
        let upload = self.upload(bucket, key, upload_id)?;
        let all = self.parts_of(upload_id)?;
        let by_number: HashMap<u32, &PartRecord> = all.iter().map(|(n, p)| (*n, p)).collect();
        if chosen.is_empty() {
            return Err(StoreError::InvalidPart("no parts given".into()));
        }
        let mut used: Vec<&PartRecord> = Vec::with_capacity(chosen.len());
        let mut last = 0u32;
        for (n, etag) in chosen {
            if *n <= last {
                return Err(StoreError::InvalidPartOrder);
            }
            last = *n;
            let part = by_number
                .get(n)
                .ok_or_else(|| StoreError::InvalidPart(format!("part {n} was not uploaded")))?;
            if part.etag != etag.trim_matches('"') {
                return Err(StoreError::InvalidPart(format!(
                    "part {n} has a different ETag"
                )));
            }
            used.push(part);
        }
        for (i, (n, _)) in chosen.iter().enumerate() {
            if i + 1 < chosen.len()
                && let Some(p) = used.get(i)
                && p.size < min_part_size
            {
                return Err(StoreError::EntityTooSmall {
                    part: *n,
                    size: p.size,
                });
            }
        }
        let etags: Vec<&str> = used.iter().map(|p| p.etag.as_str()).collect();
        let checksums = checksums_of(&used)?;
        let manifest = new_manifest(
            used.iter().map(|p| p.size).sum(),
            multipart_etag(&etags),
            used.iter()
                .map(|p| Extent {
                    blob: p.blob,
                    len: p.size,
                })
                .collect(),
            u32::try_from(used.len()).unwrap_or(u32::MAX),
            false,
            upload.headers,
            checksums,
            upload.extras,
        );
        let mut batch = self.meta().batch();
        let mut deltas: HashMap<BlobId, i64> = HashMap::new();
        batch.delete(Cf::Uploads, &upload_key(bucket, key, upload_id))?;
        for (n, p) in &all {
            batch.delete(Cf::Parts, &part_key(upload_id, *n))?;
            *deltas.entry(p.blob).or_default() -= 1;
        }
        self.commit_manifest_locked(
            bucket,
            key,
            manifest,
            Content::Existing,
            batch,
            deltas,
            cond,
        )
    }

    /// Aborts an upload, releasing its parts.
    pub fn abort_upload(&self, bucket: &str, key: &str, upload_id: &str) -> StoreResult<()> {
        let _gate = self.bucket_shared();
        let ulock = part_prefix(upload_id);
        let _key_guard = self.lock_keys(&[&ulock]);
        self.upload(bucket, key, upload_id)?;
        let all = self.parts_of(upload_id)?;
        let mut deltas: HashMap<BlobId, i64> = HashMap::new();
        let mut batch = self.meta().batch();
        batch.delete(Cf::Uploads, &upload_key(bucket, key, upload_id))?;
        for (n, p) in &all {
            batch.delete(Cf::Parts, &part_key(upload_id, *n))?;
            *deltas.entry(p.blob).or_default() -= 1;
        }
        self.commit_with_refs(batch, &deltas, None)
    }

    /// Lists uploads in progress, in key then initiation order.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max: usize,
    ) -> StoreResult<UploadPage> {
        self.bucket(bucket)?;
        let bprefix = bucket_prefix(bucket);
        let mut page = UploadPage::default();
        let delim = delimiter.filter(|d| !d.is_empty());
        for (k, record) in self
            .meta()
            .scan_prefix::<UploadRecord>(Cf::Uploads, &object_key(bucket, prefix))?
        {
            let rest = k.get(bprefix.len()..).unwrap_or_default();
            // key 0x00 upload_id (32 hex chars)
            let Some(split) = rest.len().checked_sub(33) else {
                continue;
            };
            let (key_bytes, id_bytes) = rest.split_at(split);
            let key = String::from_utf8_lossy(key_bytes).into_owned();
            let upload_id =
                String::from_utf8_lossy(id_bytes.get(1..).unwrap_or_default()).into_owned();
            if let Some(km) = key_marker {
                let after = match upload_id_marker {
                    Some(um) => key.as_str() > km || (key == km && upload_id.as_str() > um),
                    None => key.as_str() > km,
                };
                if !after {
                    continue;
                }
            }
            if let Some(d) = delim
                && let Some(pos) = key.get(prefix.len()..).and_then(|r| r.find(d))
            {
                let cp = key
                    .get(..prefix.len() + pos + d.len())
                    .unwrap_or_default()
                    .to_owned();
                if page.common_prefixes.last() != Some(&cp) {
                    if page.uploads.len() + page.common_prefixes.len() >= max {
                        page.truncated = true;
                        break;
                    }
                    page.common_prefixes.push(cp);
                }
                continue;
            }
            if page.uploads.len() + page.common_prefixes.len() >= max {
                page.truncated = true;
                break;
            }
            page.uploads.push(UploadEntry {
                key,
                upload_id,
                record,
            });
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etag_matches_s3() {
        // Two parts whose MD5s are those of "a" and "b".
        let a = "0cc175b9c0f1b6a831c399e269772661";
        let b = "92eb5ffee6ae2fec3ad71c777531578f";
        let etag = multipart_etag(&[a, b]);
        assert!(etag.ends_with("-2"));
        let mut h = Md5::new();
        h.update(hex::decode(a).unwrap());
        h.update(hex::decode(b).unwrap());
        assert_eq!(etag, format!("{}-2", hex::encode(h.finalize())));
    }

    #[test]
    fn upload_ids_sort_by_time() {
        let a = new_upload_id();
        std::thread::sleep(std::time::Duration::from_millis(1));
        let b = new_upload_id();
        assert!(valid_upload_id(&a) && valid_upload_id(&b));
        assert!(a < b);
        assert!(!valid_upload_id("../../etc"));
    }
}
