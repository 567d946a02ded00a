//! Content-addressed blobs: the seam where a scale-out backend (an S3 bucket on Ceph RGW,
//! Garage or AWS) replaces the local file system.
//!
//! A blob is named by the SHA-256 of its bytes. Writers stage a blob (hashing as they go), the
//! store publishes it under its name while holding the blob's lock, and only then commits the
//! metadata that refers to it.
//!
//! Backends: files under the data directory (`fs.rs`, the product), memory (`memory.rs`,
//! the second backend the store's suite runs against), and outside this crate, which knows
//! nothing of HTTP, a bucket of an S3-compatible store (`blobs-s3/`, given to
//! [`crate::StoreOptions::blobs`]). Nothing in [`BlobStore`] is a path or
//! a file, except the optional zero-copy capability [`BlobStore::local_file`].

mod direct;
mod fs;
mod memory;
pub mod sums;

pub use self::fs::read_full;

pub use self::fs::FsBlobStore;
pub use self::memory::MemBlobStore;
pub use self::sums::{ChunkSummer, ChunkSums};

use std::fmt;
use std::io::Read;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::StoreResult;

/// The SHA-256 of a blob's content, which is also its name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlobId(pub [u8; 32]);

impl BlobId {
    /// Lower-case hex form, used as the file name.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobId({})", self.to_hex())
    }
}

/// What a backend keeps of a staged blob until it is published (a temporary file, a buffer):
/// its own type, which only that backend reads back. Dropping it discards the staged bytes.
pub type StagedData = Box<dyn std::any::Any + Send + Sync>;

/// A blob whose bytes are written and synced but not yet published under its name.
/// Dropping it without publishing discards the staged data.
pub struct StagedBlob {
    /// SHA-256 of the content.
    pub id: BlobId,
    /// MD5 of the content (the S3 ETag of a simple upload).
    pub md5: [u8; 16],
    /// Length in bytes.
    pub len: u64,
    /// The CRC32C of each 64 KiB of the content, checked by every read (`sums.rs`).
    pub sums: ChunkSums,
    /// The backend's staged bytes; `None` once published.
    pub(crate) data: Option<StagedData>,
}

impl fmt::Debug for StagedBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StagedBlob")
            .field("id", &self.id)
            .field("len", &self.len)
            .field("published", &self.data.is_none())
            .finish_non_exhaustive()
    }
}

impl StagedBlob {
    /// A staged blob with its digests, holding `data` (the backend's, until it publishes).
    #[must_use]
    pub fn new(id: BlobId, md5: [u8; 16], len: u64, sums: ChunkSums, data: StagedData) -> Self {
        Self {
            id,
            md5,
            len,
            sums,
            data: Some(data),
        }
    }

    /// Takes the backend's staged data, of type `T`, for publishing: `None` when it was
    /// published already; an error when another backend staged it.
    pub fn take_data<T: 'static>(&mut self) -> StoreResult<Option<Box<T>>> {
        let Some(data) = self.data.take() else {
            return Ok(None);
        };
        data.downcast::<T>()
            .map(Some)
            .map_err(|_| crate::StoreError::Corrupt {
                what: "staged blob",
                detail: "staged by another blob backend".into(),
            })
    }
}

/// Receives a blob's bytes in order, hashing them as they arrive.
pub trait BlobSink: Send {
    /// Appends bytes.
    fn write(&mut self, data: &[u8]) -> StoreResult<()>;
    /// Appends several pieces in order, as one write where the sink can (an upload's body
    /// arrives in pieces; gathering them into one buffer first would copy every byte once more).
    fn write_pieces(&mut self, pieces: &[Bytes]) -> StoreResult<()> {
        pieces.iter().try_for_each(|p| self.write(p))
    }
    /// Makes the bytes durable (fsync) and returns the staged blob.
    fn finish(self: Box<Self>) -> StoreResult<StagedBlob>;
}

/// Where blob bytes live.
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// Starts a new staged blob.
    fn stage(&self) -> StoreResult<Box<dyn BlobSink>>;
    /// Publishes a staged blob under its name, durably. Publishing a blob that already exists
    /// keeps the existing copy.
    fn publish(&self, staged: &mut StagedBlob) -> StoreResult<()>;
    /// Opens a blob for reading from `offset`.
    fn open(&self, id: &BlobId, offset: u64) -> StoreResult<Box<dyn Read + Send>>;
    /// The blob as a local file, for zero-copy sending (`sendfile`), when this backend keeps
    /// blobs as local files; `None` otherwise (read it through [`BlobStore::open`]).
    fn local_file(&self, id: &BlobId) -> StoreResult<Option<std::fs::File>> {
        let _ = id;
        Ok(None)
    }
    /// Removes a blob. Removing a missing blob is not an error.
    fn remove(&self, id: &BlobId) -> StoreResult<()>;
    /// Moves a blob whose bytes are not those written out of service, kept for inspection
    /// (never served, never collected); the same content uploaded again is stored afresh.
    /// Quarantining a missing blob is not an error.
    fn quarantine(&self, id: &BlobId) -> StoreResult<()>;
    /// The blobs in quarantine (some may have been stored afresh since).
    fn quarantined(&self) -> StoreResult<Vec<BlobId>>;
    /// Every blob present (for garbage collection at start-up).
    fn list(&self) -> StoreResult<Vec<BlobId>>;
    /// Deletes staged data left behind by a crash; returns how many entries were removed.
    fn collect_staged(&self) -> StoreResult<usize>;
    /// Bytes physically held by blobs (for metrics); may be approximate.
    fn physical_bytes(&self) -> StoreResult<u64>;
}
