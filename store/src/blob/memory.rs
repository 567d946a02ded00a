//! `MemBlobStore`: blobs in memory. Nothing survives the process: it is the second backend
//! the store's suite runs against (so that the store's logic is known not to depend on files)
//! and the simplest example of the seam.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::Mutex;

use bytes::Bytes;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::{BlobId, BlobSink, BlobStore, ChunkSummer, StagedBlob};
use crate::error::{StoreError, StoreResult};

/// Blobs in memory.
#[derive(Debug, Default)]
pub struct MemBlobStore {
    blobs: Mutex<HashMap<BlobId, Bytes>>,
    quarantined: Mutex<HashMap<BlobId, Bytes>>,
}

impl MemBlobStore {
    fn blobs(&self) -> std::sync::MutexGuard<'_, HashMap<BlobId, Bytes>> {
        self.blobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A staged blob of this backend: its bytes.
struct StagedBytes(Vec<u8>);

struct MemSink {
    data: Vec<u8>,
    sha: Sha256,
    md5: Md5,
    sums: ChunkSummer,
}

impl BlobSink for MemSink {
    fn write(&mut self, data: &[u8]) -> StoreResult<()> {
        self.sha.update(data);
        self.md5.update(data);
        self.sums.update(data);
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self: Box<Self>) -> StoreResult<StagedBlob> {
        let Self {
            data,
            sha,
            md5,
            sums,
        } = *self;
        Ok(StagedBlob {
            id: BlobId(sha.finalize().into()),
            md5: md5.finalize().into(),
            len: data.len() as u64,
            sums: sums.finish(),
            data: Some(Box::new(StagedBytes(data))),
        })
    }
}

impl BlobStore for MemBlobStore {
    fn stage(&self) -> StoreResult<Box<dyn BlobSink>> {
        Ok(Box::new(MemSink {
            data: Vec::new(),
            sha: Sha256::new(),
            md5: Md5::new(),
            sums: ChunkSummer::default(),
        }))
    }

    fn publish(&self, staged: &mut StagedBlob) -> StoreResult<()> {
        let Some(bytes) = staged.take_data::<StagedBytes>()? else {
            return Ok(());
        };
        // Identical content is stored once: keep the copy already in place.
        self.blobs()
            .entry(staged.id)
            .or_insert_with(|| Bytes::from(bytes.0));
        Ok(())
    }

    fn open(&self, id: &BlobId, offset: u64) -> StoreResult<Box<dyn Read + Send>> {
        let bytes = self
            .blobs()
            .get(id)
            .cloned()
            .ok_or_else(|| StoreError::Corrupt {
                what: "blob",
                detail: format!("{} is referenced but missing", id.to_hex()),
            })?;
        let mut cursor = Cursor::new(bytes);
        cursor.set_position(offset);
        Ok(Box::new(cursor))
    }

    fn remove(&self, id: &BlobId) -> StoreResult<()> {
        self.blobs().remove(id);
        Ok(())
    }

    fn quarantine(&self, id: &BlobId) -> StoreResult<()> {
        if let Some(bytes) = self.blobs().remove(id) {
            self.quarantined
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(*id, bytes);
        }
        Ok(())
    }

    fn quarantined(&self) -> StoreResult<Vec<BlobId>> {
        Ok(self
            .quarantined
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect())
    }

    fn list(&self) -> StoreResult<Vec<BlobId>> {
        Ok(self.blobs().keys().copied().collect())
    }

    /// Staged bytes live in their `StagedBlob`: nothing is ever left behind.
    fn collect_staged(&self) -> StoreResult<usize> {
        Ok(0)
    }

    fn physical_bytes(&self) -> StoreResult<u64> {
        Ok(self.blobs().values().map(|b| b.len() as u64).sum())
    }
}
