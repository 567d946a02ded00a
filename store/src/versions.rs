//! ListObjectVersions: every version of every key, newest first within a key.
//!
//! A key's current version (object or delete marker) lives in the `objects` column family and
//! its noncurrent versions in `versions`, under `bucket 0x00 key 0x00 !seq`. Any key with
//! noncurrent versions also has a current one (removing the current version promotes the
//! newest noncurrent one), so a walk over `objects` finds every key, and for each key one seek
//! into `versions` lists the rest.

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, bucket_prefix, object_key, prefix_successor, version_prefix};
use crate::model::ObjectManifest;
use crate::objects::{VersionSel, is_null_version, shown_version_id};

/// One version in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The object key.
    pub key: String,
    /// The version id as S3 shows it (`null` for the null version).
    pub version_id: String,
    /// It is the current version.
    pub is_latest: bool,
    /// The version as stored (`delete_marker` tells markers apart).
    pub manifest: ObjectManifest,
}

/// An entry of a ListObjectVersions page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionListEntry {
    /// A version or delete marker.
    Version(Box<VersionEntry>),
    /// Keys rolled up under a common prefix.
    CommonPrefix(String),
}

/// A ListObjectVersions request.
#[derive(Debug, Clone, Default)]
pub struct VersionQuery<'a> {
    /// Only keys starting with this.
    pub prefix: &'a str,
    /// Roll keys up at the first occurrence of this after the prefix.
    pub delimiter: Option<&'a str>,
    /// Start after this key (after all its versions, unless `version_id_marker` is given).
    pub key_marker: Option<&'a str>,
    /// Start after this version of `key_marker`.
    pub version_id_marker: Option<&'a str>,
    /// Maximum entries.
    pub max: usize,
}

/// A ListObjectVersions page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionPage {
    /// Entries: keys in UTF-8 byte order, each key's versions newest first.
    pub entries: Vec<VersionListEntry>,
    /// More entries follow; resume after the last entry.
    pub truncated: bool,
}

impl Store {
    /// Lists versions and delete markers (see the module documentation).
    pub fn list_object_versions(
        &self,
        bucket: &str,
        q: &VersionQuery<'_>,
    ) -> StoreResult<VersionPage> {
        self.bucket(bucket)?;
        let bprefix = bucket_prefix(bucket);
        let full_prefix = object_key(bucket, q.prefix);
        let key_marker = q.key_marker.filter(|k| !k.is_empty());
        let vid_marker = q.version_id_marker.filter(|v| !v.is_empty());
        let mut seek = full_prefix.clone();
        if let Some(km) = key_marker {
            let mut at = object_key(bucket, km);
            if vid_marker.is_none() {
                at.push(0); // strictly after the marker key
            }
            if at > seek {
                seek = at;
            }
        }
        let mut page = VersionPage::default();
        let delim = q.delimiter.filter(|d| !d.is_empty());
        let mut it = self.meta().cursor(Cf::Objects)?;
        it.seek(&seek);
        'keys: while it.valid() {
            let Some(k) = it.key() else { break };
            if !k.starts_with(&full_prefix) {
                break;
            }
            let key_bytes = k.get(bprefix.len()..).unwrap_or_default();
            let key = std::str::from_utf8(key_bytes)
                .map_err(|e| StoreError::Corrupt {
                    what: "object key",
                    detail: e.to_string(),
                })?
                .to_owned();
            let rest = key.get(q.prefix.len()..).unwrap_or_default();
            if let Some(d) = delim
                && let Some(pos) = rest.find(d)
            {
                let cp = format!(
                    "{}{}",
                    q.prefix,
                    rest.get(..pos + d.len()).unwrap_or_default()
                );
                // A marker inside (or equal to) this prefix means the prefix was returned.
                if key_marker.is_none_or(|m| cp.as_str() > m) {
                    if page.entries.len() >= q.max {
                        page.truncated = true;
                        break;
                    }
                    page.entries
                        .push(VersionListEntry::CommonPrefix(cp.clone()));
                }
                match prefix_successor(&object_key(bucket, &cp)) {
                    Some(n) => it.seek(&n),
                    None => break,
                }
                continue;
            }
            let Some(v) = it.value() else { break };
            let current: ObjectManifest = crate::meta::codec::decode("object", v)?;
            // Resuming inside the marker key: only versions older than the marker's.
            let below = match (key_marker, vid_marker) {
                (Some(km), Some(vm)) if km == key => {
                    Some(self.marker_seq(bucket, &key, &current, vm)?)
                }
                _ => None,
            };
            let mut versions = vec![current];
            versions.extend(self.noncurrent_versions(bucket, &key)?);
            for (i, m) in versions.into_iter().enumerate() {
                if below.is_some_and(|b| m.seq >= b) {
                    continue;
                }
                if page.entries.len() >= q.max {
                    page.truncated = true;
                    break 'keys;
                }
                page.entries
                    .push(VersionListEntry::Version(Box::new(VersionEntry {
                        key: key.clone(),
                        version_id: shown_version_id(&m),
                        is_latest: i == 0,
                        manifest: m,
                    })));
            }
            it.next();
        }
        it.status()?;
        Ok(page)
    }

    /// The sequence of the version a `version-id-marker` names; a marker naming nothing that
    /// exists resumes after every version it could precede (its own sequence when it is an
    /// issued id, else the whole key).
    fn marker_seq(
        &self,
        bucket: &str,
        key: &str,
        current: &ObjectManifest,
        marker: &str,
    ) -> StoreResult<u64> {
        match VersionSel::parse(marker)? {
            VersionSel::Id(_, seq) => Ok(seq),
            VersionSel::Null if is_null_version(current) => Ok(current.seq),
            VersionSel::Null => Ok(self
                .meta()
                .scan_prefix::<ObjectManifest>(Cf::Versions, &version_prefix(bucket, key))?
                .into_iter()
                .find(|(_, m)| is_null_version(m))
                .map_or(0, |(_, m)| m.seq)),
        }
    }
}
