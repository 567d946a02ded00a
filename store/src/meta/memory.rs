//! `MemMeta`: every column family in memory, as ordered maps behind one lock. Nothing survives
//! the process: it exists so that the store's logic can be tested on a second engine (the
//! store's suite runs against both), and as the simplest example of the seam.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::{Cf, EngineStats, MetaCursor, MetaEngine, Op, Value};
use crate::error::{StoreError, StoreResult};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// One column family's table.
fn table(tables: &[Table], cf: Cf) -> StoreResult<&Table> {
    tables.get(cf as usize).ok_or_else(|| missing(cf))
}

fn table_mut(tables: &mut [Table], cf: Cf) -> StoreResult<&mut Table> {
    tables.get_mut(cf as usize).ok_or_else(|| missing(cf))
}

fn missing(cf: Cf) -> StoreError {
    StoreError::Corrupt {
        what: "column family",
        detail: format!("{} missing", cf.name()),
    }
}

/// The metadata in memory.
#[derive(Debug, Default)]
pub struct MemMeta {
    tables: RwLock<[Table; Cf::ALL.len()]>,
}

impl MemMeta {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, [Table; Cf::ALL.len()]> {
        self.tables
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MetaEngine for MemMeta {
    fn get(&self, cf: Cf, key: &[u8]) -> StoreResult<Option<Value<'_>>> {
        Ok(table(&*self.read(), cf)?
            .get(key)
            .map(|v| Box::new(v.clone()) as Value<'_>))
    }

    /// The cursor walks a copy of the table taken now: a consistent view, as RocksDB's
    /// iterators give (test-sized tables make the copy cheap).
    fn cursor(&self, cf: Cf) -> StoreResult<Box<dyn MetaCursor + '_>> {
        let entries: Vec<(Vec<u8>, Vec<u8>)> = table(&*self.read(), cf)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let at = entries.len();
        Ok(Box::new(MemCursor { entries, at }))
    }

    fn commit(&self, ops: &[Op], _sync: bool) -> StoreResult<()> {
        let mut tables = self
            .tables
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for op in ops {
            match op {
                Op::Put(cf, k, v) => {
                    table_mut(&mut *tables, *cf)?.insert(k.clone(), v.clone());
                }
                Op::Delete(cf, k) => {
                    table_mut(&mut *tables, *cf)?.remove(k);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> StoreResult<()> {
        Ok(())
    }

    fn checkpoint(&self, _dir: &std::path::Path) -> StoreResult<()> {
        Err(StoreError::InvalidRequest(
            "the memory backend keeps nothing to back up".into(),
        ))
    }

    fn stats(&self) -> StoreResult<EngineStats> {
        let live_bytes = self
            .read()
            .iter()
            .flat_map(|t| t.iter())
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        Ok(EngineStats {
            engine: "memory",
            live_bytes,
            ..EngineStats::default()
        })
    }
}

/// A position in a copied table; `at == entries.len()` is "not on an entry".
struct MemCursor {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    at: usize,
}

impl MetaCursor for MemCursor {
    fn seek(&mut self, key: &[u8]) {
        self.at = self.entries.partition_point(|(k, _)| k.as_slice() < key);
    }
    fn seek_for_prev(&mut self, key: &[u8]) {
        let after = self.entries.partition_point(|(k, _)| k.as_slice() <= key);
        self.at = after.checked_sub(1).unwrap_or(self.entries.len());
    }
    fn seek_to_first(&mut self) {
        self.at = 0;
    }
    fn seek_to_last(&mut self) {
        self.at = self.entries.len().saturating_sub(1);
    }
    fn valid(&self) -> bool {
        self.at < self.entries.len()
    }
    fn key(&self) -> Option<&[u8]> {
        self.entries.get(self.at).map(|(k, _)| k.as_slice())
    }
    fn value(&self) -> Option<&[u8]> {
        self.entries.get(self.at).map(|(_, v)| v.as_slice())
    }
    fn next(&mut self) {
        if self.valid() {
            self.at += 1;
        }
    }
    fn prev(&mut self) {
        self.at = self.at.checked_sub(1).unwrap_or(self.entries.len());
    }
    fn status(&self) -> StoreResult<()> {
        Ok(())
    }
}
