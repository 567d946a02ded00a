//! Listing a bucket's objects (`ListObjects`, V1 and V2 alike) and the store's usage figures.

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, bucket_prefix, object_key, prefix_successor};
use crate::model::ObjectManifest;

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

impl Store {
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
        let mut it = self.meta().cursor(Cf::Objects)?;
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
            if m.delete_marker {
                it.next();
                continue;
            }
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

    /// Number of object versions (delete markers aside) and their logical size in bytes, in
    /// one bucket (quotas, usage reports). Reads every manifest of the bucket: callers cache it.
    pub fn bucket_usage(&self, bucket: &str) -> StoreResult<(u64, u64)> {
        self.bucket(bucket)?;
        self.usage_under(&crate::meta::object_key(bucket, ""))
    }

    /// Number of object versions (delete markers aside) and their logical size in bytes,
    /// across all buckets (for metrics).
    pub fn usage(&self) -> StoreResult<(u64, u64)> {
        self.usage_under(&[])
    }

    /// The figures of `usage` for the objects whose keys start with `prefix`.
    fn usage_under(&self, prefix: &[u8]) -> StoreResult<(u64, u64)> {
        let (mut n, mut bytes) = (0u64, 0u64);
        for cf in [Cf::Objects, Cf::Versions] {
            let mut it = self.meta().cursor(cf)?;
            it.seek(prefix);
            while it.valid() && it.key().is_some_and(|k| k.starts_with(prefix)) {
                if let Some(v) = it.value() {
                    let m: ObjectManifest = crate::meta::codec::decode("object", v)?;
                    if !m.delete_marker {
                        n += 1;
                        bytes += m.size;
                    }
                }
                it.next();
            }
            it.status()?;
        }
        Ok((n, bytes))
    }
}
