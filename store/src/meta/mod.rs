//! The metadata seam: ordered column families of keys and values, read point by point or by
//! cursor, written in atomic batches. The store's logic (objects, versions, multipart, IAM,
//! audit) talks to [`Meta`], which encodes and decodes values and hands the bytes to a
//! [`MetaEngine`]: RocksDB (`rocks.rs`, the default, in the key layouts `FORMAT.md` describes)
//! PostgreSQL (`postgres.rs`, scale-out: `fsgate serve --meta postgres://…`) or memory
//! (`memory.rs`, for tests). The store's suite runs against all three.
//!
//! Every call blocks: the gateway runs them off its async reactor.

pub mod codec;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "rocksdb")]
mod rocks;

pub use self::memory::MemMeta;
#[cfg(feature = "postgres")]
pub use self::postgres::PgMeta;
#[cfg(feature = "rocksdb")]
pub use self::rocks::RocksMeta;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoreError, StoreResult};

/// Column family names, in the order they are opened.
pub const CFS: [&str; 13] = [
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
    "auditlog",
    "auditindex",
    "blobsums",
];

/// The column families by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// The audit log's Merkle tree: record positions and leaf hashes, perfect subtrees,
    /// signed checkpoints (`audit/log.rs`).
    AuditLog,
    /// Audit records by principal, bucket and object (`audit/index.rs`).
    AuditIndex,
    /// Each blob's chunk checksums by blob id (`blob/sums.rs`).
    BlobSums,
}

impl Cf {
    /// Every column family, in `CFS` order.
    pub const ALL: [Cf; 13] = [
        Cf::Buckets,
        Cf::BucketCfg,
        Cf::Objects,
        Cf::Versions,
        Cf::Inline,
        Cf::Uploads,
        Cf::Parts,
        Cf::BlobRefs,
        Cf::Iam,
        Cf::Audit,
        Cf::AuditLog,
        Cf::AuditIndex,
        Cf::BlobSums,
    ];

    /// The column family's name (RocksDB's, and in errors).
    #[must_use]
    pub fn name(self) -> &'static str {
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
            Cf::AuditLog => "auditlog",
            Cf::AuditIndex => "auditindex",
            Cf::BlobSums => "blobsums",
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets `key` to `value` (encoded, version byte first).
    Put(Cf, Vec<u8>, Vec<u8>),
    /// Removes `key`.
    Delete(Cf, Vec<u8>),
}

/// Figures an engine reports for metrics (zero where it has no such thing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Which engine: `rocksdb`, `postgres` or `memory` (the gateway's metrics differ by it).
    pub engine: &'static str,
    /// Connections open to the engine's server (PostgreSQL's sessions; zero when embedded).
    pub connections: u64,
    /// Bytes of live data files.
    pub live_bytes: u64,
    /// Bytes waiting for compaction.
    pub pending_compaction_bytes: u64,
    /// Writes are stopped (RocksDB's write stall).
    pub writes_stopped: bool,
    /// Memory: memtables, mutable and waiting to be flushed.
    pub memtable_bytes: u64,
    /// Memory: the block cache in use.
    pub block_cache_bytes: u64,
    /// Memory: open table files' indexes and filters (outside the block cache).
    pub table_readers_bytes: u64,
}

/// A stored value lent by the engine (RocksDB pins it in its cache: no copy).
pub type Value<'a> = Box<dyn AsRef<[u8]> + 'a>;

/// What the store needs of a metadata engine.
pub trait MetaEngine: Send + Sync + 'static {
    /// The bytes stored under `key`, if any.
    fn get(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Value<'_>>>;
    /// A cursor over one column family, in key order, on a consistent view of it.
    fn cursor(&self, cf: Cf) -> StoreResult<Box<dyn MetaCursor + '_>>;
    /// Applies `ops` atomically. With `sync` they survive power loss once this returns.
    fn commit(&self, ops: &[Op], sync: bool) -> StoreResult<()>;
    /// Writes what the engine holds in memory to its files (a no-op where there are none).
    fn flush(&self) -> StoreResult<()>;
    /// Writes a consistent copy of everything into the new directory `dir` (a backup).
    fn checkpoint(&self, dir: &std::path::Path) -> StoreResult<()>;
    /// Figures for metrics.
    fn stats(&self) -> StoreResult<EngineStats>;
}

/// A position in one column family (RocksDB's raw iterator's shape).
pub trait MetaCursor {
    /// Moves to the first key at or after `key`.
    fn seek(&mut self, key: &[u8]);
    /// Moves to the last key at or before `key`.
    fn seek_for_prev(&mut self, key: &[u8]);
    /// Moves to the first key.
    fn seek_to_first(&mut self);
    /// Moves to the last key.
    fn seek_to_last(&mut self);
    /// True while the cursor is on an entry.
    fn valid(&self) -> bool;
    /// The entry's key.
    fn key(&self) -> Option<&[u8]>;
    /// The entry's value.
    fn value(&self) -> Option<&[u8]>;
    /// Moves to the next key.
    fn next(&mut self);
    /// Moves to the previous key.
    fn prev(&mut self);
    /// The error that stopped the cursor, if one did.
    fn status(&self) -> StoreResult<()>;
}

/// The metadata, over whichever engine holds it: values encoded and decoded here.
pub struct Meta {
    engine: Box<dyn MetaEngine>,
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meta").finish_non_exhaustive()
    }
}

impl Meta {
    /// The metadata held by `engine`.
    #[must_use]
    pub fn new(engine: Box<dyn MetaEngine>) -> Self {
        Self { engine }
    }

    /// Reads and decodes one value.
    pub fn get<T: DeserializeOwned>(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<T>> {
        match self.engine.get(cf, key)? {
            Some(bytes) => Ok(Some(codec::decode(cf.name(), (*bytes).as_ref())?)),
            None => Ok(None),
        }
    }

    /// The stored value as it is, version byte first (for values whose versions the caller
    /// tells apart itself: audit records).
    pub fn get_stored(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.engine.get(cf, key)?.map(|b| (*b).as_ref().to_vec()))
    }

    /// Reads the stored value, version byte first, through `read` (for values whose versions
    /// the caller tells apart itself, without copying the whole value first).
    pub fn read_stored<T>(
        &self,
        cf: Cf,
        key: &[u8],
        read: impl FnOnce(&[u8]) -> T,
    ) -> StoreResult<Option<T>> {
        Ok(self.engine.get(cf, key)?.map(|b| read((*b).as_ref())))
    }

    /// Reads a raw byte value (`[version][bytes]`, for object bytes: no per-byte decoding).
    pub fn get_raw(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Vec<u8>>> {
        match self.engine.get(cf, key)? {
            Some(bytes) => match (*bytes).as_ref().split_first() {
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
        Ok(self.engine.get(cf, key)?.is_some())
    }

    /// A cursor over one column family.
    pub fn cursor(&self, cf: Cf) -> StoreResult<Box<dyn MetaCursor + '_>> {
        self.engine.cursor(cf)
    }

    /// Every (key, value) whose key starts with `prefix`, decoded, in key order.
    pub fn scan_prefix<T: DeserializeOwned>(
        &self,
        cf: Cf,
        prefix: &[u8],
    ) -> StoreResult<Vec<(Vec<u8>, T)>> {
        self.scan_prefix_raw(cf, prefix)?
            .into_iter()
            .map(|(k, v)| Ok((k, codec::decode(cf.name(), &v)?)))
            .collect()
    }

    /// Every (key, raw value) whose key starts with `prefix`, in key order.
    pub fn scan_prefix_raw(&self, cf: Cf, prefix: &[u8]) -> StoreResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut it = self.cursor(cf)?;
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
        let mut it = self.cursor(cf)?;
        it.seek(prefix);
        let found = it.valid() && it.key().is_some_and(|k| k.starts_with(prefix));
        it.status()?;
        Ok(found)
    }

    /// The engine's figures for metrics.
    pub fn stats(&self) -> StoreResult<EngineStats> {
        self.engine.stats()
    }

    /// Writes what the engine holds in memory to its files.
    pub fn flush(&self) -> StoreResult<()> {
        self.engine.flush()
    }

    /// Writes a consistent copy of all metadata into the new directory `dir`.
    pub fn checkpoint(&self, dir: &std::path::Path) -> StoreResult<()> {
        self.engine.checkpoint(dir)
    }

    /// Commits `ops` atomically, leaving them to the caller (to retry with).
    pub fn commit_ops(&self, ops: &[Op], sync: bool) -> StoreResult<()> {
        self.engine.commit(ops, sync)
    }

    /// Starts a batch.
    #[must_use]
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            meta: self,
            ops: Vec::new(),
        }
    }
}

/// An atomic group of writes across column families.
pub struct Batch<'a> {
    meta: &'a Meta,
    ops: Vec<Op>,
}

impl Batch<'_> {
    /// Adds an encoded value.
    pub fn put<T: Serialize>(&mut self, cf: Cf, key: &[u8], value: &T) -> StoreResult<()> {
        self.ops
            .push(Op::Put(cf, key.to_vec(), codec::encode(value)?));
        Ok(())
    }

    /// Adds a value encoded already, version byte included (see `codec::encode_version`).
    pub fn put_encoded(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> StoreResult<()> {
        self.ops.push(Op::Put(cf, key.to_vec(), value.to_vec()));
        Ok(())
    }

    /// Adds a value already encoded (version byte first), taking it as it is.
    pub fn put_stored(&mut self, cf: Cf, key: &[u8], value: Vec<u8>) {
        self.ops.push(Op::Put(cf, key.to_vec(), value));
    }

    /// Adds a raw byte value as `[version][bytes]`.
    pub fn put_raw(&mut self, cf: Cf, key: &[u8], value: &[u8]) -> StoreResult<()> {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.push(codec::VALUE_VERSION);
        v.extend_from_slice(value);
        self.ops.push(Op::Put(cf, key.to_vec(), v));
        Ok(())
    }

    /// Adds a deletion.
    pub fn delete(&mut self, cf: Cf, key: &[u8]) -> StoreResult<()> {
        self.ops.push(Op::Delete(cf, key.to_vec()));
        Ok(())
    }

    /// Number of operations in the batch.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Commits the batch atomically; with `sync` it survives power loss once this returns.
    pub fn commit(self, sync: bool) -> StoreResult<()> {
        self.meta.engine.commit(&self.ops, sync)
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
