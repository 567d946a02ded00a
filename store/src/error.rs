//! The outcomes of store operations that a caller can act on.

use std::io;

/// Errors returned by the store. No HTTP status or S3 code lives here: the gateway maps them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// The bucket already exists.
    #[error("bucket already exists")]
    BucketExists,
    /// The bucket still holds objects or uploads.
    #[error("bucket not empty")]
    BucketNotEmpty,
    /// The object does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// The multipart upload does not exist (or belongs to another key).
    #[error("no such upload")]
    NoSuchUpload,
    /// A part named in a completion is missing or its ETag differs.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// A checksum the client gave for the result differs from the one computed (the reason
    /// is for the client).
    #[error("bad digest: {0}")]
    BadDigest(String),
    /// Parts in a completion are not in ascending order.
    #[error("parts not in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error("part {part} is {size} bytes, under the minimum part size")]
    EntityTooSmall {
        /// The part number.
        part: u32,
        /// Its size.
        size: u64,
    },
    /// The version does not exist.
    #[error("no such version")]
    NoSuchVersion,
    /// A version id that this store could not have issued.
    #[error("invalid version id")]
    InvalidVersionId,
    /// The operation names a delete marker, which has no content, tags or lock state.
    #[error("the version is a delete marker")]
    DeleteMarker,
    /// Object Lock (retention or legal hold) protects the version.
    #[error("the version is protected by object lock")]
    ObjectLocked,
    /// The request contradicts the bucket's state (the reason is for the client).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The bucket is not in a state that allows the request (the reason is for the client).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    /// A condition the caller attached to the operation did not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// An IAM record (user, key, attachment) was not found.
    #[error("{0} not found")]
    NotFound(String),
    /// An IAM record already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Stored data could not be decoded or is inconsistent.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// Stored bytes are not the bytes written (bitrot): the read is refused, never served.
    #[error("stored data failed its integrity check: {0}")]
    IntegrityFailure(String),
    /// Another process holds the metadata store (RocksDB's LOCK file).
    #[error("metadata store is locked by another process: {0}")]
    Locked(String),
    /// The metadata engine (RocksDB, or another engine behind `meta::MetaEngine`) failed.
    #[error("metadata engine: {message}")]
    Metadata {
        /// What kind of failure, as far as the engine tells.
        kind: MetaFailure,
        /// The engine's own words.
        message: String,
    },
    /// A backend reached over the network (blobs in an S3-compatible store) cannot be reached
    /// or refused the request: nothing was changed, and the same request may succeed later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A file-system operation failed.
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

impl StoreError {
    /// Whether the file system holding the data directory is full (ENOSPC, from a blob write
    /// or from RocksDB).
    #[must_use]
    pub fn is_no_space(&self) -> bool {
        match self {
            Self::Io(e) => e.kind() == io::ErrorKind::StorageFull,
            Self::Metadata { kind, .. } => *kind == MetaFailure::NoSpace,
            _ => false,
        }
    }

    /// Whether this error, from a metadata write, leaves the engine refusing every later
    /// write until it is opened again (an I/O error or corruption; a full disk is not: RocksDB
    /// resumes by itself once space returns).
    #[must_use]
    pub fn stops_writes(&self) -> bool {
        matches!(
            self,
            Self::Metadata {
                kind: MetaFailure::Io | MetaFailure::Corruption,
                ..
            }
        )
    }
}

/// Kinds of metadata engine failure the store acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaFailure {
    /// The engine's own checks (block checksums) failed: bitrot.
    Corruption,
    /// The file system is full.
    NoSpace,
    /// Another I/O error (EIO): after one on a write, RocksDB takes no more writes until it
    /// is opened again.
    Io,
    /// The engine cannot be reached (a lost or refused connection to PostgreSQL, no free
    /// connection in time): nothing was written, and the same request may succeed later.
    Unavailable,
    /// Any other failure.
    Other,
}

impl MetaFailure {
    /// The kind as a metric label (`fsgate_postgres_errors_total{kind}`).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            MetaFailure::Corruption => "corruption",
            MetaFailure::NoSpace => "no_space",
            MetaFailure::Io => "io",
            MetaFailure::Unavailable => "unavailable",
            MetaFailure::Other => "other",
        }
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;
