//! `RocksMeta`: the RocksDB database holding every piece of metadata, one column family per
//! [`Cf`], in the key layouts described in `FORMAT.md`.

use std::path::Path;

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, DBRawIterator, Options, WriteBatch, WriteOptions,
};

use super::{CFS, Cf, EngineStats, MetaCursor, MetaEngine, Op, Value};
use crate::error::{MetaFailure, StoreError, StoreResult};

/// Memtable size of the audit CF (see `RocksMeta::open`).
const AUDIT_MEMTABLE_BYTES: usize = 16 << 20;

/// Hash buckets of the inline CF's memtable (8 bytes each): a 64 MiB memtable holds 16,384
/// objects of 4 KiB, or a few per bucket of smaller ones.
const INLINE_MEMTABLE_BUCKETS: usize = 65_536;

/// The block cache every column family shares. Without one, RocksDB gives each family's table
/// factory its own 32 MiB cache: 13 families could hold 416 MiB of cached blocks, and a long
/// run's resident memory kept climbing as each filled.
const BLOCK_CACHE_BYTES: usize = 64 << 20;

/// All memtables together: past it, RocksDB flushes the largest. Each family's own limit (64
/// MiB, 16 for the audit's) still applies; without a total, 13 families with two memtables each
/// could hold 1.6 GiB. At 256 MiB a soak's memtables took over ten minutes to fill, which is
/// that long a climb of resident memory before it levels.
const MEMTABLE_BUDGET_BYTES: usize = 128 << 20;

/// Table options of every family: blocks from the one shared cache, and the tables' indexes
/// and filters there too. Outside it, they are memory per open table file, which grows with
/// the data (an hour's soak: 3 → 22 MiB, with the audit log); inside, the cache's bound holds
/// them, at high priority, with level 0's pinned.
fn table_options(cache: &rocksdb::Cache) -> rocksdb::BlockBasedOptions {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    table.set_cache_index_and_filter_blocks_with_high_priority(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    table
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
        // Bounded memory, whatever the number of families (see the constants).
        opts.set_db_write_buffer_size(MEMTABLE_BUDGET_BYTES);
        let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        // The default family (unused, but RocksDB keeps one) shares it too.
        opts.set_block_based_table_factory(&table_options(&cache));
        let cfs = CFS.iter().map(|name| {
            let mut cf_opts = Options::default();
            cf_opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
            cf_opts.set_block_based_table_factory(&table_options(&cache));
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
            if *name == Cf::Audit.name()
                || *name == Cf::AuditLog.name()
                || *name == Cf::AuditIndex.name()
            {
                // Audit records are written once and read rarely: held in memory only until
                // flushed. At RocksDB's default of 64 MiB, a server auditing 45,000 requests/s
                // (~200 bytes a record) peaked at 215 MiB resident through the bench matrix;
                // at 16 MiB, 175 MiB, for the same flush work (every record is flushed once).
                cf_opts.set_write_buffer_size(AUDIT_MEMTABLE_BYTES);
                // Flushes and the first compaction run while requests are served: they store
                // the records as they are; deeper levels, rewritten seldom, compress them.
                cf_opts.set_compression_per_level(&[
                    rocksdb::DBCompressionType::None,
                    rocksdb::DBCompressionType::None,
                    rocksdb::DBCompressionType::Lz4,
                    rocksdb::DBCompressionType::Lz4,
                    rocksdb::DBCompressionType::Lz4,
                    rocksdb::DBCompressionType::Lz4,
                    rocksdb::DBCompressionType::Lz4,
                ]);
            }
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| {
            // RocksDB tells a held LOCK file apart only in its message ("While lock file: …").
            if e.kind() == rocksdb::ErrorKind::IOError && e.to_string().contains("lock file") {
                StoreError::Locked(e.to_string())
            } else {
                StoreError::from(e)
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

    /// A RocksDB integer property summed over every column family (e.g.
    /// `rocksdb.live-sst-files-size`, `rocksdb.estimate-pending-compaction-bytes`).
    fn int_property(&self, name: &str) -> StoreResult<u64> {
        let mut total = 0u64;
        for cf in CFS {
            if let Some(h) = self.db.cf_handle(cf) {
                total = total.saturating_add(self.db.property_int_value_cf(h, name)?.unwrap_or(0));
            }
        }
        Ok(total)
    }
}

impl MetaEngine for RocksMeta {
    fn get(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Value<'_>>> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(cf)?, key)?
            .map(|v| Box::new(v) as Value<'_>))
    }

    fn cursor(&self, cf: Cf) -> StoreResult<Box<dyn MetaCursor + '_>> {
        Ok(Box::new(RocksCursor(self.db.raw_iterator_cf(self.cf(cf)?))))
    }

    /// Concurrent synced writers share one fsync (RocksDB group commit).
    fn commit(&self, ops: &[Op], sync: bool) -> StoreResult<()> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                Op::Put(cf, k, v) => batch.put_cf(self.cf(*cf)?, k, v),
                Op::Delete(cf, k) => batch.delete_cf(self.cf(*cf)?, k),
            }
        }
        let mut wo = WriteOptions::default();
        // DURABILITY: a synced WAL write is what makes a commit survive power loss.
        wo.set_sync(sync);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    /// Writes every column family's memtable to SST files and waits for it.
    fn flush(&self) -> StoreResult<()> {
        for cf in CFS {
            if let Some(h) = self.db.cf_handle(cf) {
                self.db.flush_cf(h)?;
            }
        }
        Ok(())
    }

    fn checkpoint(&self, dir: &std::path::Path) -> StoreResult<()> {
        // Hard links to the table files where `dir` is on the same file system, copies
        // elsewhere; the write-ahead log is flushed into it, so the copy is whole.
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    fn stats(&self) -> StoreResult<EngineStats> {
        Ok(EngineStats {
            engine: "rocksdb",
            connections: 0,
            live_bytes: self.int_property("rocksdb.live-sst-files-size")?,
            pending_compaction_bytes: self
                .int_property("rocksdb.estimate-pending-compaction-bytes")?,
            writes_stopped: self.int_property("rocksdb.is-write-stopped")? > 0,
            memtable_bytes: self.int_property("rocksdb.cur-size-all-mem-tables")?,
            // One cache for every family: asked of one.
            block_cache_bytes: match self.db.cf_handle(Cf::Objects.name()) {
                Some(h) => self
                    .db
                    .property_int_value_cf(h, "rocksdb.block-cache-usage")?
                    .unwrap_or(0),
                None => 0,
            },
            table_readers_bytes: self.int_property("rocksdb.estimate-table-readers-mem")?,
        })
    }
}

/// RocksDB's raw iterator as a [`MetaCursor`].
struct RocksCursor<'a>(DBRawIterator<'a>);

impl MetaCursor for RocksCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        self.0.seek(key);
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        self.0.seek_for_prev(key);
    }
    fn seek_to_first(&mut self) {
        self.0.seek_to_first();
    }
    fn seek_to_last(&mut self) {
        self.0.seek_to_last();
    }
    fn valid(&self) -> bool {
        self.0.valid()
    }
    fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }
    fn value(&self) -> Option<&[u8]> {
        self.0.value()
    }
    fn next(&mut self) {
        self.0.next();
    }
    fn prev(&mut self) {
        self.0.prev();
    }
    fn status(&self) -> StoreResult<()> {
        Ok(self.0.status()?)
    }
}

impl From<rocksdb::Error> for StoreError {
    fn from(e: rocksdb::Error) -> Self {
        let message = e.to_string();
        let kind = match e.kind() {
            rocksdb::ErrorKind::Corruption => MetaFailure::Corruption,
            rocksdb::ErrorKind::IOError if message.contains("No space left on device") => {
                MetaFailure::NoSpace
            }
            rocksdb::ErrorKind::IOError => MetaFailure::Io,
            _ => MetaFailure::Other,
        };
        StoreError::Metadata { kind, message }
    }
}
