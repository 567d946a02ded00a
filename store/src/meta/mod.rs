//! `RocksMeta`: the RocksDB database holding every piece of metadata, in the column families
//! and key layouts described in `FORMAT.md`.
//!
//! Every call blocks: the gateway runs them off its async reactor.

pub mod codec;

use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBRawIterator, Options, WriteBatch, WriteOptions,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoreError, StoreResult};

/// Column family names, in the order they are opened.
pub const CFS: [&str; 10] = [
    "buckets",
    "bucketcfg",
    "objects",
    "versions",
    "inline",
    "uploads",
    "parts",
    "blobrefs",
    "iam",
    "audit",
];

/// Memtable size of the audit CF (see `RocksMeta::open`).
const AUDIT_MEMTABLE_BYTES: usize = 16 << 20;

/// Hash buckets of the inline CF's memtable (8 bytes each): a 64 MiB memtable holds 16,384
/// objects of 4 KiB, or a few per bucket of smaller ones.
const INLINE_MEMTABLE_BUCKETS: usize = 65_536;

/// The column families by role.
#[derive(Debug, Clone, Copy)]
pub enum Cf {
    /// Buckets by name.
    Buckets,
    /// Bucket configuration documents (tags, CORS, lifecycle, policy...) by bucket and name.
    BucketCfg,
    /// The current version of every object (or its delete marker), by bucket and key.
    Objects,
    /// Noncurrent versions, by bucket, key and inverted sequence (newest first).
    Versions,
    /// Bytes of small objects, by version key.
    Inline,
    /// Multipart uploads by bucket, key and upload id.
    Uploads,
    /// Multipart parts by upload id and part number.
    Parts,
    /// Blob reference counts by blob id.
    BlobRefs,
    /// Users, access keys and policy attachments.
    Iam,
    /// Audit records by time.
    Audit,
}

impl Cf {
    fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::BucketCfg => "bucketcfg",
            Cf::Objects => "objects",
            Cf::Versions => "versions",
            Cf::Inline => "inline",
            Cf::Uploads => "uploads",
            Cf::Parts => "parts",
            Cf::BlobRefs => "blobrefs",
            Cf::Iam => "iam",
            Cf::Audit => "audit",
        }
    }
}

/// The metadata database.
pub struct RocksMeta {
    db: DB,
}

impl std::fmt::Debug for RocksMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksMeta").finish_non_exhaustive()
    }
}

impl RocksMeta {
    /// Opens (creating if needed) the database at `path` with every column family.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.increase_parallelism(2);
        // The hash memtable of the inline CF (below) takes one writer at a time.
        opts.set_allow_concurrent_memtable_write(false);
        let cfs = CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            if *name == Cf::Inline.name() {
                // Small objects' bytes are only ever read by their whole key. A skip list
                // memtable of 4 KiB values spreads its nodes one per page, and each GET's search
                // walked ~20 of them (cache and TLB misses: a tenth of a small GET's CPU). A
                // hash memtable keyed by the whole key finds a value in one bucket.
                cf_opts.set_prefix_extractor(rocksdb::SliceTransform::create_noop());
                cf_opts.set_memtable_factory(rocksdb::MemtableFactory::HashLinkList {
                    bucket_count: INLINE_MEMTABLE_BUCKETS,
                });
            }
            if *name == Cf::Audit.name() {
                // Audit records are written once and read rarely: held in memory only until
                // flushed. At RocksDB's default of 64 MiB, a server auditing 45,000 requests/s
                // (~200 bytes a record) peaked at 215 MiB resident through the bench matrix;
                // at 16 MiB, 175 MiB, for the same flush work (every record is flushed once).
                cf_opts.set_write_buffer_size(AUDIT_MEMTABLE_BYTES);
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            // RocksDB tells a held LOCK file apart only in its message ("While lock file: …").
            if e.kind() == rocksdb::ErrorKind::IOError && e.to_string().contains("lock file") {
                StoreError::Locked(e.to_string())
            } else {
                StoreError::Rocks(e)
            }
        })?;
        Ok(Self { db })
    }

    fn cf(&self, cf: Cf) -> StoreResult<&ColumnFamily> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StoreError::Corrupt {
                what: "column family",
                detail: format!("{} missing", cf.name()),
            })
    }

    /// Reads and decodes one value.
    pub fn get<T: DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<T>> {
        match self.db.get_pinned_cf(self.cf(cf)?, key)? {
            Some(bytes) => Ok(Some(codec::decode(cf.name(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// Reads a raw byte value (`[version][bytes]`, for object bytes: no per-byte decoding).
    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        match self.db.get_pinned_cf(self.cf(cf)?, key)? {
            Some(bytes) => match bytes.split_first() {
                Some((&codec::VALUE_VERSION, body)) => Ok(Some(body.to_vec())),
                _ => Err(StoreError::Corrupt {
                    what: cf.name(),
                    detail: "unknown value version".into(),
                }),
            },
            None => Ok(None),
        }
    }

    /// True when the key exists.
    pub fn contains(&self, cf: Cf, key: &[u8]) -> StoreResult<bool> {
        Ok(self.db.get_pinned_cf(self.cf(cf)?, key)?.is_some())
    }

    /// A raw iterator over one column family.
    pub fn raw_iter(&self, cf: Cf) -> StoreResult<DBRawIterator<'_>> {
        Ok(self.db.raw_iterator_cf(self.cf(cf)?))
    }

    /// Every (key, value) whose key starts with `prefix`, decoded, in key order.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        cf: Cf,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, T)>> {
        let mut it = self.raw_iter(cf)?;
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), codec::decode(cf.name(), v)?));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Every (key, raw value) whose key starts with `prefix`, in key order.
    pub fn scan_prefix_raw(&self, cf: Cf, prefix: &[u8]) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut it = self.raw_iter(cf)?;
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// True when any key starts with `prefix`.
    pub fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> StoreResult<bool> {
        let mut it = self.raw_iter(cf)?;
        it.seek(prefix);
        let found = it.valid() && it.key().is_some_and(|k| k.starts_with(prefix));
        it.status()?;
        Ok(found)
    }

    /// A RocksDB integer property summed over every column family (e.g.
    /// `rocksdb.live-sst-files-size`, `rocksdb.estimate-pending-compaction-bytes`).
    pub fn int_property(&self, name: &str) -> StoreResult<u64> {
        let mut total = 0u64;
        for cf in CFS {
            if let Some(h) = self.db.cf_handle(cf) {
                total = total.saturating_add(self.db.property_int_value_cf(h, name)?.unwrap_or(0));
            }
        }
        Ok(total)
    }

    /// Writes every column family's memtable to SST files and waits for it.
    pub fn flush(&self) -> StoreResult<()> {
        for cf in CFS {
            if let Some(h) = self.db.cf_handle(cf) {
                self.db.flush_cf(h)?;
            }
        }
        Ok(())
    }

    /// Starts a batch.
    #[must_use]
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            meta: self,
            inner: WriteBatch::default(),
        }
    }
}

/// An atomic group of writes across column families.
pub struct Batch<'a> {
    meta: &'a RocksMeta,
    inner: WriteBatch,
}

impl Batch<'_> {
    /// Adds an encoded value.
    pub fn put<T: Serialize>(&mut self, cf: Cf, key: &[u8], value: &T) -> StoreResult<()> {
        let bytes = codec::encode(value)?;
        self.inner.put_cf(self.meta.cf(cf)?, key, bytes);
        Ok(())
    }

    /// Adds a value encoded already, version byte included (see `codec::encode_version`).
    pub fn put_encoded(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> StoreResult<()> {
        self.inner.put_cf(self.meta.cf(cf)?, key, value);
        Ok(())
    }

    /// Adds a raw byte value as `[version][bytes]`.
    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> StoreResult<()> {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.push(codec::VALUE_VERSION);
        v.extend_from_slice(value);
        self.inner.put_cf(self.meta.cf(cf)?, key, v);
        Ok(())
    }

    /// Adds a deletion.
    pub fn delete(&mut self, cf: Cf, key: &[u8]) -> StoreResult<()> {
        self.inner.delete_cf(self.meta.cf(cf)?, key);
        Ok(())
    }

    /// Number of operations in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// True when the batch holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Commits the batch atomically. With `sync` the WAL is fsynced before returning;
    /// concurrent synced writers share one fsync (RocksDB group commit).
    pub fn commit(self, sync: bool) -> StoreResult<()> {
        let mut wo = WriteOptions::default();
        // DURABILITY: a synced WAL write is what makes a commit survive power loss.
        wo.set_sync(sync);
        self.meta.db.write_opt(self.inner, &wo)?;
        Ok(())
    }
}

/// `bucket 0x00 key`: the objects CF key.
#[must_use]
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// `bucket 0x00 key 0x00 !seq(BE)`: a version's key in the versions and inline CFs. The
/// inverted sequence sorts a key's versions newest first.
#[must_use]
pub fn version_key(bucket: &str, key: &str, seq: u64) -> Vec<u8> {
    let mut k = version_prefix(bucket, key);
    k.extend_from_slice(&(!seq).to_be_bytes());
    k
}

/// `bucket 0x00 key 0x00`: the prefix of a key's version keys (object keys contain no NUL,
/// so no other key's versions share it).
#[must_use]
pub fn version_prefix(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k
}

/// `bucket 0x00 name`: a bucket configuration document's key.
#[must_use]
pub fn bucket_cfg_key(bucket: &str, name: &str) -> Vec<u8> {
    object_key(bucket, name)
}

/// `bucket 0x00`: the prefix of every object (and upload) key of a bucket.
#[must_use]
pub fn bucket_prefix(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k
}

/// `bucket 0x00 key 0x00 upload_id`: the uploads CF key.
#[must_use]
pub fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// `upload_id 0x00 part_number(BE)`: the parts CF key.
#[must_use]
pub fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut k = part_prefix(upload_id);
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// `upload_id 0x00`: the prefix of an upload's parts.
#[must_use]
pub fn part_prefix(upload_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(upload_id.len() + 5);
    k.extend_from_slice(upload_id.as_bytes());
    k.push(0);
    k
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
#[must_use]
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xff {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_sort_by_bucket_then_utf8_bytes() {
        let mut keys = vec![
            object_key("b", "é"),
            object_key("b", "a/b"),
            object_key("b", "a"),
            object_key("b-2", "a"),
            object_key("b", "Z"),
            object_key("b", "a0"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                object_key("b", "Z"),
                object_key("b", "a"),
                object_key("b", "a/b"),
                object_key("b", "a0"),
                object_key("b", "é"),
                object_key("b-2", "a"),
            ]
        );
    }

    #[test]
    fn successor_skips_a_whole_prefix() {
        assert_eq!(prefix_successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }
}
