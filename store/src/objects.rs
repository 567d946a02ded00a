//! Objects: read, write (the commit path every new version takes), copy, delete, and change
//! a version's tags, retention or legal hold.

use std::collections::HashMap;

use crate::blob::{BlobId, StagedBlob};
use crate::error::{StoreError, StoreResult};
use crate::meta::{Batch, Cf, object_key, version_key, version_prefix};
use crate::model::{
    BucketRecord, Extent, ObjectExtras, ObjectHeaders, ObjectManifest, RetentionMode,
    StoredChecksum, Versioning,
};
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
    /// Tags, lock state, encryption.
    pub extras: ObjectExtras,
    /// Conditions on the current object, checked atomically with the commit.
    pub cond: WriteCondition,
    /// For encrypted bytes: the plaintext length and ETag, which the object reports (the
    /// stored bytes are longer, and their MD5 is not the ETag). Extents then record
    /// plaintext lengths; the reader derives ciphertext offsets from them.
    pub plaintext: Option<(u64, String)>,
}

/// Conditional-write preconditions (`If-None-Match: *`, `If-Match`), checked under the key's
/// lock so that two racing writers cannot both pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCondition {
    /// `If-None-Match: *`: only when no current object exists.
    pub if_none_match: bool,
    /// `If-Match`: only when the current object's ETag is one of these (or `*`).
    pub if_match: Option<String>,
}

impl WriteCondition {
    fn check(&self, current: Option<&ObjectManifest>) -> StoreResult<()> {
        let live = current.filter(|m| !m.delete_marker);
        if self.if_none_match && live.is_some() {
            return Err(StoreError::PreconditionFailed);
        }
        if let Some(want) = &self.if_match {
            let Some(m) = live else {
                return Err(StoreError::NoSuchKey);
            };
            if !etag_list_matches(want, &m.etag) {
                return Err(StoreError::PreconditionFailed);
            }
        }
        Ok(())
    }
}

/// True when an `If-Match`-style list (`*`, or comma-separated, possibly quoted and weak
/// ETags) names `etag`.
#[must_use]
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// Conditions on what a delete removes (`If-Match`, `x-amz-if-match-last-modified-time`,
/// `x-amz-if-match-size`): the version named, or the current object when none is (the one a
/// delete marker would hide). Checked under the key's lock with the delete. A version that
/// does not exist (or is a delete marker) passes: the delete answers as an unconditional one
/// would, as AWS documents ("if the object doesn't exist, 204").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteCondition {
    /// `If-Match`: the ETag (or a list, or `*`).
    pub etag: Option<String>,
    /// The last-modified time, in whole seconds since the epoch (HTTP dates have no finer
    /// unit).
    pub last_modified_secs: Option<i64>,
    /// The size in bytes.
    pub size: Option<u64>,
}

impl DeleteCondition {
    /// True when the delete has no condition.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    fn check(&self, target: Option<&ObjectManifest>) -> StoreResult<()> {
        let Some(m) = target.filter(|m| !m.delete_marker) else {
            return Ok(());
        };
        let secs = i64::try_from(m.modified_ns / 1_000_000_000).unwrap_or(i64::MAX);
        let holds = self
            .etag
            .as_deref()
            .is_none_or(|e| etag_list_matches(e, &m.etag))
            && self.last_modified_secs.is_none_or(|t| t == secs)
            && self.size.is_none_or(|s| s == m.size);
        if holds {
            Ok(())
        } else {
            Err(StoreError::PreconditionFailed)
        }
    }
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed or the delete marker made (`"null"` for the null version); `None`
    /// in an unversioned bucket.
    pub version_id: Option<String>,
    /// The version removed, or the one made, is a delete marker.
    pub delete_marker: bool,
    /// Something was there (or a marker was made).
    pub existed: bool,
}

/// Which version a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionSel<'a> {
    /// The `null` version.
    Null,
    /// An issued id and its sequence.
    Id(&'a str, u64),
}

impl<'a> VersionSel<'a> {
    pub(crate) fn parse(v: &'a str) -> StoreResult<Self> {
        if v == "null" {
            return Ok(Self::Null);
        }
        parse_version_id(v)
            .map(|seq| Self::Id(v, seq))
            .ok_or(StoreError::InvalidVersionId)
    }

    fn matches(self, m: &ObjectManifest) -> bool {
        match self {
            Self::Null => is_null_version(m),
            Self::Id(id, _) => m.version_id.as_deref() == Some(id),
        }
    }
}

/// The version id issued for a sequence: 16 hex digits of the inverted sequence.
#[must_use]
pub fn version_id_of(seq: u64) -> String {
    format!("{:016x}", !seq)
}

/// The sequence a version id was issued for, if it is one this store could have issued.
#[must_use]
pub fn parse_version_id(v: &str) -> Option<u64> {
    if v.len() != 16 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(v, 16).ok().map(|x| !x)
}

/// The null version: unversioned objects (no id) and those written while versioning was
/// suspended (shown as `null`).
#[must_use]
pub fn is_null_version(m: &ObjectManifest) -> bool {
    m.version_id.as_deref().is_none_or(|v| v == "null")
}

/// The version id as S3 shows it (`null` for the null version).
#[must_use]
pub fn shown_version_id(m: &ObjectManifest) -> String {
    m.version_id.clone().unwrap_or_else(|| "null".to_owned())
}

/// Refuses to remove (or shorten the protection of) a locked version. `bypass` is the
/// caller's permission to bypass GOVERNANCE retention; nothing bypasses COMPLIANCE or a
/// legal hold.
pub fn check_lock(m: &ObjectManifest, bypass: bool, now_ns: u64) -> StoreResult<()> {
    if m.extras.legal_hold {
        return Err(StoreError::ObjectLocked);
    }
    match m.extras.retention {
        Some(r) if r.until_ns > now_ns => match r.mode {
            RetentionMode::Compliance => Err(StoreError::ObjectLocked),
            RetentionMode::Governance if !bypass => Err(StoreError::ObjectLocked),
            RetentionMode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

impl Store {
    /// Reads the current version when it is an object (a delete marker reads as `NoSuchKey`).
    pub fn head_object(&self, bucket: &str, key: &str) -> StoreResult<ObjectManifest> {
        match self
            .meta()
            .get::<ObjectManifest>(Cf::Objects, &object_key(bucket, key))?
        {
            Some(m) if !m.delete_marker => Ok(m),
            _ => {
                self.bucket(bucket)?;
                Err(StoreError::NoSuchKey)
            }
        }
    }

    /// Reads one version: the current one (which may be a delete marker) when `version` is
    /// `None`, the null version for `"null"`, else the version with that id.
    pub fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<ObjectManifest> {
        let sel = version.map(VersionSel::parse).transpose()?;
        let current: Option<ObjectManifest> =
            self.meta().get(Cf::Objects, &object_key(bucket, key))?;
        let found = match (sel, current) {
            (None, cur) => cur,
            (Some(sel), Some(cur)) if sel.matches(&cur) => Some(cur),
            (Some(sel), _) => self.find_noncurrent(bucket, key, sel)?,
        };
        match found {
            Some(m) => Ok(m),
            None => {
                self.bucket(bucket)?;
                Err(if version.is_some() {
                    StoreError::NoSuchVersion
                } else {
                    StoreError::NoSuchKey
                })
            }
        }
    }

    /// A key's noncurrent versions, newest first.
    pub fn noncurrent_versions(&self, bucket: &str, key: &str) -> StoreResult<Vec<ObjectManifest>> {
        Ok(self
            .meta()
            .scan_prefix::<ObjectManifest>(Cf::Versions, &version_prefix(bucket, key))?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    fn find_noncurrent(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel<'_>,
    ) -> StoreResult<Option<ObjectManifest>> {
        match sel {
            VersionSel::Id(_, seq) => Ok(self
                .meta()
                .get::<ObjectManifest>(Cf::Versions, &version_key(bucket, key, seq))?
                .filter(|m| sel.matches(m))),
            VersionSel::Null => Ok(self
                .noncurrent_versions(bucket, key)?
                .into_iter()
                .find(is_null_version)),
        }
    }

    /// Commits a simple upload: publishes the staged blob and writes the manifest as the new
    /// current version (see `commit_manifest_locked` for what happens to the previous one).
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        mut staged: StagedBlob,
        new: NewObject,
    ) -> StoreResult<ObjectManifest> {
        let (size, etag) = new
            .plaintext
            .clone()
            .unwrap_or_else(|| (staged.len, hex::encode(staged.md5)));
        let extents = vec![Extent {
            blob: staged.id,
            len: size,
        }];
        let manifest = new_manifest(
            size,
            etag,
            extents,
            0,
            false,
            new.headers,
            new.checksums,
            new.extras,
        );
        self.commit_manifest(
            bucket,
            key,
            manifest,
            Content::Staged(&mut staged),
            &new.cond,
        )
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
        let (size, etag) = new
            .plaintext
            .clone()
            .unwrap_or_else(|| (data.len() as u64, hex::encode(md5)));
        let manifest = new_manifest(
            size,
            etag,
            Vec::new(),
            0,
            true,
            new.headers,
            new.checksums,
            new.extras,
        );
        self.commit_manifest(bucket, key, manifest, Content::Inline(data), &new.cond)
    }

    /// The bytes of an inline version.
    pub fn inline_data(&self, bucket: &str, key: &str, seq: u64) -> StoreResult<Vec<u8>> {
        self.checked_inline(bucket, key, seq)?
            .ok_or_else(|| StoreError::Corrupt {
                what: "inline object",
                detail: format!("{bucket}/{key} has no inline bytes"),
            })
    }

    /// Writes `manifest` as bucket/key's new current version: the common path of put and copy.
    /// `staged` is published (durably) before the metadata commit.
    pub(crate) fn commit_manifest(
        &self,
        bucket: &str,
        key: &str,
        manifest: ObjectManifest,
        content: Content<'_>,
        cond: &WriteCondition,
    ) -> StoreResult<ObjectManifest> {
        let _gate = self.bucket_shared();
        let okey = object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        let batch = self.meta().batch();
        self.commit_manifest_locked(bucket, key, manifest, content, batch, HashMap::new(), cond)
    }

    /// As `commit_manifest`, for callers already holding the bucket gate and the key stripe.
    /// `batch` and `deltas` may already carry the caller's own changes (multipart completion
    /// moves part references and deletes the upload in the same atomic batch).
    ///
    /// The manifest gets its sequence and version id here. The previous current version is
    /// released (unversioned bucket, or the null version of a suspended one) or kept as a
    /// noncurrent version (versioning enabled).
    #[expect(
        clippy::too_many_arguments,
        reason = "the shared tail of every object commit"
    )]
    pub(crate) fn commit_manifest_locked(
        &self,
        bucket: &str,
        key: &str,
        mut manifest: ObjectManifest,
        content: Content<'_>,
        mut batch: Batch<'_>,
        mut deltas: HashMap<BlobId, i64>,
        cond: &WriteCondition,
    ) -> StoreResult<ObjectManifest> {
        let rec = self.bucket(bucket)?;
        let okey = object_key(bucket, key);
        let old: Option<ObjectManifest> = self.meta().get(Cf::Objects, &okey)?;
        cond.check(old.as_ref())?;
        let seq = self.next_seq();
        manifest.seq = seq;
        manifest.modified_ns = seq;
        manifest.version_id = new_version_id(rec.versioning, seq);
        if let Content::Inline(data) = &content {
            batch.put_stored(
                Cf::Inline,
                &version_key(bucket, key, seq),
                crate::integrity::inline_value(data),
            );
        }
        for e in &manifest.extents {
            *deltas.entry(e.blob).or_default() += 1;
        }
        self.retire_current(&rec, bucket, key, old, &mut batch, &mut deltas)?;
        batch.put(Cf::Objects, &okey, &manifest)?;
        let staged = match content {
            Content::Staged(staged) => Some(staged),
            Content::Inline(_) | Content::Existing => None,
        };
        self.commit_with_refs(batch, &deltas, staged)?;
        Ok(manifest)
    }

    /// What becomes of the current version when a new one (object or delete marker) takes its
    /// place: kept as noncurrent when versioning is enabled (or it has a real id in a suspended
    /// bucket), released otherwise. In a suspended bucket a noncurrent null version is
    /// replaced too.
    fn retire_current(
        &self,
        rec: &BucketRecord,
        bucket: &str,
        key: &str,
        old: Option<ObjectManifest>,
        batch: &mut Batch<'_>,
        deltas: &mut HashMap<BlobId, i64>,
    ) -> StoreResult<()> {
        if rec.versioning == Versioning::Suspended
            && let Some(null) = self.find_noncurrent(bucket, key, VersionSel::Null)?
        {
            check_lock(&null, false, now_ns())?;
            batch.delete(Cf::Versions, &version_key(bucket, key, null.seq))?;
            release(batch, deltas, bucket, key, &null)?;
        }
        let Some(old) = old else { return Ok(()) };
        let keep = match rec.versioning {
            Versioning::Unversioned => false,
            Versioning::Enabled => true,
            Versioning::Suspended => !is_null_version(&old),
        };
        if keep {
            batch.put(Cf::Versions, &version_key(bucket, key, old.seq), &old)?;
        } else {
            check_lock(&old, false, now_ns())?;
            release(batch, deltas, bucket, key, &old)?;
        }
        Ok(())
    }

    /// Copies a version without copying bytes: the destination names the source's blobs.
    /// `build` sees the source first, may refuse (conditional copy), and says what the new
    /// object carries. Returns the source and the new object.
    pub fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_version: Option<&str>,
        dst_bucket: &str,
        dst_key: &str,
        build: impl FnOnce(&ObjectManifest) -> StoreResult<NewObject>,
    ) -> StoreResult<(ObjectManifest, ObjectManifest)> {
        let _gate = self.bucket_shared();
        self.bucket(dst_bucket)?;
        let skey = object_key(src_bucket, src_key);
        let dkey = object_key(dst_bucket, dst_key);
        let _key_guard = self.lock_keys(&[&skey, &dkey]);
        let src = self.head_version(src_bucket, src_key, src_version)?;
        if src.delete_marker {
            return Err(match src_version {
                Some(_) => StoreError::InvalidRequest(
                    "The source of a copy request may not specifically refer to a delete marker by version id.".into(),
                ),
                None => StoreError::NoSuchKey,
            });
        }
        let new = build(&src)?;
        let inline = if src.inline {
            Some(self.inline_data(src_bucket, src_key, src.seq)?)
        } else {
            None
        };
        let manifest = ObjectManifest {
            headers: new.headers,
            checksums: new.checksums,
            extras: new.extras,
            ..src.clone()
        };
        let batch = self.meta().batch();
        let content = match &inline {
            Some(d) => Content::Inline(d),
            None => Content::Existing,
        };
        let made = self.commit_manifest_locked(
            dst_bucket,
            dst_key,
            manifest,
            content,
            batch,
            HashMap::new(),
            &new.cond,
        )?;
        Ok((src, made))
    }

    /// Deletes an object (`version` `None`) or one version of it.
    ///
    /// Without a version: an unversioned bucket drops the object; a versioned one makes a
    /// delete marker the current version (a suspended one with the null id, replacing the null
    /// version). With a version: that version is removed for good, unless Object Lock
    /// protects it (`bypass_governance` is the caller's right to bypass GOVERNANCE
    /// retention); removing the current version makes the newest noncurrent one current.
    /// Deleting what does not exist succeeds, as S3 does.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        bypass_governance: bool,
    ) -> StoreResult<Deleted> {
        self.delete_object_if(
            bucket,
            key,
            version,
            bypass_governance,
            &DeleteCondition::default(),
        )
    }

    /// As [`Store::delete_object`], when what it removes meets `cond` (else
    /// `PreconditionFailed`, and nothing changes).
    pub fn delete_object_if(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        bypass_governance: bool,
        cond: &DeleteCondition,
    ) -> StoreResult<Deleted> {
        let sel = version.map(VersionSel::parse).transpose()?;
        let _gate = self.bucket_shared();
        let rec = self.bucket(bucket)?;
        let okey = object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        let current: Option<ObjectManifest> = self.meta().get(Cf::Objects, &okey)?;
        let mut batch = self.meta().batch();
        let mut deltas: HashMap<BlobId, i64> = HashMap::new();
        let outcome = match sel {
            None if rec.versioning == Versioning::Unversioned => {
                let Some(cur) = current else {
                    return Ok(Deleted::default());
                };
                cond.check(Some(&cur))?;
                check_lock(&cur, bypass_governance, now_ns())?;
                batch.delete(Cf::Objects, &okey)?;
                release(&mut batch, &mut deltas, bucket, key, &cur)?;
                Deleted {
                    version_id: None,
                    delete_marker: false,
                    existed: true,
                }
            }
            None => {
                cond.check(current.as_ref())?;
                let seq = self.next_seq();
                let marker = ObjectManifest {
                    seq,
                    modified_ns: seq,
                    version_id: (rec.versioning == Versioning::Enabled).then(|| version_id_of(seq)),
                    delete_marker: true,
                    ..new_manifest(
                        0,
                        String::new(),
                        Vec::new(),
                        0,
                        false,
                        ObjectHeaders::default(),
                        Vec::new(),
                        ObjectExtras::default(),
                    )
                };
                self.retire_current(&rec, bucket, key, current, &mut batch, &mut deltas)?;
                batch.put(Cf::Objects, &okey, &marker)?;
                Deleted {
                    version_id: Some(shown_version_id(&marker)),
                    delete_marker: true,
                    existed: true,
                }
            }
            Some(sel) => {
                let (victim, was_current) = match current {
                    Some(cur) if sel.matches(&cur) => (Some(cur), true),
                    _ => (self.find_noncurrent(bucket, key, sel)?, false),
                };
                let Some(victim) = victim else {
                    return Ok(Deleted {
                        version_id: version.map(str::to_owned),
                        ..Deleted::default()
                    });
                };
                cond.check(Some(&victim))?;
                check_lock(&victim, bypass_governance, now_ns())?;
                if was_current {
                    match self.noncurrent_versions(bucket, key)?.into_iter().next() {
                        Some(next) => {
                            batch.delete(Cf::Versions, &version_key(bucket, key, next.seq))?;
                            batch.put(Cf::Objects, &okey, &next)?;
                        }
                        None => batch.delete(Cf::Objects, &okey)?,
                    }
                } else {
                    batch.delete(Cf::Versions, &version_key(bucket, key, victim.seq))?;
                }
                release(&mut batch, &mut deltas, bucket, key, &victim)?;
                Deleted {
                    version_id: Some(shown_version_id(&victim)),
                    delete_marker: victim.delete_marker,
                    existed: true,
                }
            }
        };
        self.commit_with_refs(batch, &deltas, None)?;
        Ok(outcome)
    }

    /// Changes one version's tags, retention or legal hold in place (where it lives: current
    /// or noncurrent). `f` may refuse; a delete marker is refused before `f` sees it.
    pub fn update_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        f: impl FnOnce(&mut ObjectManifest) -> StoreResult<()>,
    ) -> StoreResult<ObjectManifest> {
        let _gate = self.bucket_shared();
        let okey = object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        let mut m = self.head_version(bucket, key, version)?;
        if m.delete_marker {
            return Err(if version.is_some() {
                StoreError::DeleteMarker
            } else {
                StoreError::NoSuchKey
            });
        }
        f(&mut m)?;
        let current: Option<ObjectManifest> = self.meta().get(Cf::Objects, &okey)?;
        let mut batch = self.meta().batch();
        if current.is_some_and(|c| c.seq == m.seq) {
            batch.put(Cf::Objects, &okey, &m)?;
        } else {
            batch.put(Cf::Versions, &version_key(bucket, key, m.seq), &m)?;
        }
        self.commit(batch)?;
        Ok(m)
    }
}

/// The id a new version gets: issued while versioning is enabled, `null` while suspended, none
/// in a never-versioned bucket (whose responses carry no version id).
fn new_version_id(v: Versioning, seq: u64) -> Option<String> {
    match v {
        Versioning::Enabled => Some(version_id_of(seq)),
        Versioning::Suspended => Some("null".to_owned()),
        Versioning::Unversioned => None,
    }
}

/// Drops a version's hold on its bytes: blob references and inline bytes.
fn release(
    batch: &mut Batch<'_>,
    deltas: &mut HashMap<BlobId, i64>,
    bucket: &str,
    key: &str,
    m: &ObjectManifest,
) -> StoreResult<()> {
    for e in &m.extents {
        *deltas.entry(e.blob).or_default() -= 1;
    }
    if m.inline {
        batch.delete(Cf::Inline, &version_key(bucket, key, m.seq))?;
    }
    Ok(())
}

/// A manifest before commit (sequence, time and version id are set by the commit).
#[expect(clippy::too_many_arguments, reason = "every field of a fresh manifest")]
pub(crate) fn new_manifest(
    size: u64,
    etag: String,
    extents: Vec<Extent>,
    parts_count: u32,
    inline: bool,
    headers: ObjectHeaders,
    checksums: Vec<StoredChecksum>,
    extras: ObjectExtras,
) -> ObjectManifest {
    ObjectManifest {
        size,
        etag,
        modified_ns: 0,
        extents,
        parts_count,
        headers,
        checksums,
        inline,
        seq: 0,
        version_id: None,
        delete_marker: false,
        extras,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `try_pin_object` reads in place only while no writer holds the key, and pins like
    /// `pin_object` (the blob outlives an overwrite until the pin is dropped).
    #[test]
    fn try_pin_steps_aside_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let s =
            std::sync::Arc::new(Store::open(dir.path(), crate::StoreOptions::default()).unwrap());
        s.create_bucket("b", false).unwrap();
        let mut sink = s.blobs().stage().unwrap();
        sink.write(&[7u8; 200_000]).unwrap();
        let staged = sink.finish().unwrap();
        s.put_object("b", "k", staged, NewObject::default())
            .unwrap();
        let okey = crate::meta::object_key("b", "k");
        {
            let _writer = s.lock_keys(&[&okey]);
            assert!(s.try_pin_object("b", "k", None).unwrap().is_none());
        }
        let pinned = s.try_pin_object("b", "k", None).unwrap().unwrap();
        let blob = pinned.manifest.extents[0].blob;
        s.delete_object("b", "k", None, false).unwrap();
        assert!(s.blobs().open(&blob, 0).is_ok(), "pinned across the delete");
        drop(pinned);
        assert!(
            s.blobs().open(&blob, 0).is_err(),
            "freed by the last reader"
        );
        assert!(matches!(
            s.try_pin_object("b", "k", None),
            Err(StoreError::NoSuchKey)
        ));
    }
}
