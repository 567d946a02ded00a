//! Bitrot: stored bytes that are no longer the bytes written.
//!
//! Every read checks what it returns: blob bytes against their chunk sums (`blob/sums.rs`),
//! inline objects against the CRC32C stored with them (value version 2), and RocksDB checks
//! its own blocks. A mismatch is never served: the read fails with
//! [`StoreError::IntegrityFailure`] (or an `InvalidData`
//! I/O error in a stream already under way), the blob is quarantined (moved out of service,
//! so the same content uploaded again is stored afresh), `fsgate_integrity_failures_total`
//! counts it, and the hook the gateway installs writes an audit record.
//!
//! [`Store::scrub`] re-reads every blob at a bounded rate, checking its SHA-256 (its name)
//! and chunk sums, and every inline object, and reports what failed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::blob::sums::{self, SUM_CHUNK, crc32c};
use crate::blob::{BlobId, ChunkSummer, ChunkSums};
use crate::meta::{Cf, version_key};
use crate::{PinnedObject, Store, StoreError, StoreResult};

/// Version byte of an inline object's value that carries a CRC32C of its bytes.
pub(crate) const INLINE_CHECKED: u8 = 2;

/// What was found corrupt, for the hook and the scrub report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Corruption {
    /// `blob`, `inline` or `metadata`.
    pub kind: &'static str,
    /// The object's bucket, when a read of an object found it.
    pub bucket: String,
    /// The object's key, when a read of an object found it.
    pub key: String,
    /// The blob (hex SHA-256), for blobs.
    pub blob: String,
    /// What did not match.
    pub detail: String,
}

/// Called for every corruption found (the gateway writes an audit record).
pub type CorruptionHook = Box<dyn Fn(&Corruption) + Send + Sync>;

/// The blobs in quarantine that were not stored afresh since, so that a read of an object
/// holding one fails at once, with a clear error, rather than after its headers went out.
#[derive(Debug, Default)]
pub(crate) struct Quarantined {
    /// Whether the set is empty: the one check a read pays when nothing is quarantined.
    any: std::sync::atomic::AtomicBool,
    set: std::sync::RwLock<std::collections::HashSet<BlobId>>,
}

impl Quarantined {
    fn set(&self) -> std::sync::RwLockWriteGuard<'_, std::collections::HashSet<BlobId>> {
        self.set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, id: BlobId) {
        let mut set = self.set();
        set.insert(id);
        self.any.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The same content was stored afresh.
    pub(crate) fn healed(&self, id: &BlobId) {
        if self.any.load(std::sync::atomic::Ordering::Acquire) {
            let mut set = self.set();
            set.remove(id);
            self.any
                .store(!set.is_empty(), std::sync::atomic::Ordering::Release);
        }
    }

    /// Refuses a read of extents one of which is quarantined.
    pub(crate) fn check(&self, extents: &[crate::model::Extent]) -> StoreResult<()> {
        if !self.any.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let set = self
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match extents.iter().find(|e| set.contains(&e.blob)) {
            Some(e) => Err(StoreError::IntegrityFailure(format!(
                "blob {} failed its integrity check and is quarantined",
                e.blob.to_hex()
            ))),
            None => Ok(()),
        }
    }
}

/// The value stored for an inline object's bytes: version 2, their CRC32C, the bytes.
pub(crate) fn inline_value(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len() + 5);
    v.push(INLINE_CHECKED);
    v.extend_from_slice(&crc32c(data).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// The bytes of an inline object's stored value, checked where the value carries a sum.
/// `Err(detail)` when they are not the bytes written.
pub(crate) fn inline_bytes(stored: &[u8]) -> Result<Vec<u8>, String> {
    match stored.split_first() {
        Some((&crate::meta::codec::VALUE_VERSION, data)) => Ok(data.to_vec()),
        Some((&INLINE_CHECKED, rest)) if rest.len() >= 4 => {
            let (sum, data) = rest.split_at(4);
            let want = u32::from_be_bytes(sum.try_into().unwrap_or_default());
            if crc32c(data) == want {
                Ok(data.to_vec())
            } else {
                Err("the inline bytes differ from what was written (CRC32C)".into())
            }
        }
        Some((v, _)) => Err(format!("unknown inline value version {v}")),
        None => Err("empty inline value".into()),
    }
}

/// Scrub figures, as `fsctl admin scrub --json` prints them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScrubReport {
    /// Blobs re-hashed.
    pub blobs: u64,
    /// Blob bytes re-hashed.
    pub bytes: u64,
    /// Inline objects checked.
    pub inline: u64,
    /// Blobs whose chunk sums were missing (written before sums existed) and are now stored.
    pub sums_added: u64,
    /// What failed, each quarantined.
    pub corrupt: Vec<Corruption>,
    /// Seconds the pass took.
    pub seconds: f64,
}

impl Store {
    /// Installs the function told about every corruption found (once; later calls are
    /// ignored).
    pub fn on_corruption(&self, hook: CorruptionHook) {
        let _ = self.corruption_hook.set(hook);
    }

    /// Handles a corruption found: quarantines the blob, counts it, tells the hook.
    pub(crate) fn report_corruption(&self, c: Corruption) {
        tracing::error!(kind = c.kind, bucket = %c.bucket, key = %c.key, blob = %c.blob,
            detail = %c.detail, "stored data failed its integrity check");
        if let Some(id) = BlobId::from_hex(&c.blob) {
            let _guard = self.lock_blobs([&id]);
            if let Err(e) = self.blobs.quarantine(&id) {
                tracing::error!(blob = %c.blob, error = %e, "could not quarantine blob");
            }
            self.quarantined.add(id);
        }
        metrics::counter!("fsgate_integrity_failures_total", "kind" => c.kind).increment(1);
        if let Some(hook) = self.corruption_hook.get() {
            hook(&c);
        }
    }

    /// Learns, at open, which quarantined blobs were not stored afresh since.
    pub(crate) fn load_quarantined(&self) -> StoreResult<()> {
        let quarantined = self.blobs.quarantined()?;
        if quarantined.is_empty() {
            return Ok(());
        }
        let present: std::collections::HashSet<BlobId> = self.blobs.list()?.into_iter().collect();
        for id in quarantined {
            if !present.contains(&id) {
                self.quarantined.add(id);
            }
        }
        Ok(())
    }

    /// A blob's chunk sums (`None` for blobs written before sums existed, until a scrub).
    pub fn blob_sums(&self, id: &BlobId) -> StoreResult<Option<ChunkSums>> {
        Ok(self
            .meta()
            .get_raw(Cf::BlobSums, &id.0)?
            .and_then(|b| ChunkSums::from_bytes(&b)))
    }

    /// Forgets the sums of blobs whose files were removed.
    pub(crate) fn drop_sums(&self, ids: &[BlobId]) {
        if ids.is_empty() {
            return;
        }
        let mut batch = self.meta().batch();
        for id in ids {
            if batch.delete(Cf::BlobSums, &id.0).is_err() {
                return;
            }
        }
        // A row left by a crash here is harmless: the same content gets the same sums.
        if let Err(e) = batch.commit(false) {
            tracing::warn!(error = %e, "could not drop chunk sums");
        }
    }

    /// Reads an inline object's bytes, checked; a mismatch is reported and refused.
    pub(crate) fn checked_inline(
        &self,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> StoreResult<Option<Vec<u8>>> {
        let read =
            self.meta()
                .read_stored(Cf::Inline, &version_key(bucket, key, seq), inline_bytes);
        let stored = match read {
            Ok(v) => v,
            Err(e) => return Err(self.metadata_failure(bucket, key, e)),
        };
        let Some(checked) = stored else {
            return Ok(None);
        };
        checked.map(Some).map_err(|detail| {
            self.report_corruption(Corruption {
                kind: "inline",
                bucket: bucket.into(),
                key: key.into(),
                blob: String::new(),
                detail: detail.clone(),
            });
            StoreError::IntegrityFailure(detail)
        })
    }

    /// RocksDB's own checks (block checksums) failing are bitrot too: reported as such.
    pub(crate) fn metadata_failure(&self, bucket: &str, key: &str, e: StoreError) -> StoreError {
        match &e {
            StoreError::Metadata {
                kind: crate::MetaFailure::Corruption,
                message,
            } => {
                let detail = message.clone();
                self.report_corruption(Corruption {
                    kind: "metadata",
                    bucket: bucket.into(),
                    key: key.into(),
                    blob: String::new(),
                    detail: detail.clone(),
                });
                StoreError::IntegrityFailure(detail)
            }
            _ => e,
        }
    }

    /// Re-reads every blob (checking its SHA-256 and chunk sums; storing sums for blobs that
    /// have none) and every inline object, at most `rate` bytes a second (`None`: as fast as
    /// the disk goes). Whatever fails is quarantined and reported as a read would report it.
    pub fn scrub(&self, rate: Option<u64>) -> StoreResult<ScrubReport> {
        let started = Instant::now();
        let mut report = ScrubReport::default();
        let mut pace = Pace::new(rate);
        let mut buf = vec![0u8; 1 << 20];
        for id in self.blobs.list()? {
            let stored = self.blob_sums(&id)?;
            let mut reader = match self.blobs.open(&id, 0) {
                Ok(r) => r,
                Err(_) => continue, // removed since listed
            };
            let mut sha = Sha256::new();
            let mut summer = ChunkSummer::default();
            let mut len = 0u64;
            loop {
                let n = crate::blob::read_full(&mut reader, &mut buf)?;
                if n == 0 {
                    break;
                }
                let piece = buf.get(..n).unwrap_or_default();
                sha.update(piece);
                summer.update(piece);
                len += n as u64;
                pace.took(n as u64);
            }
            report.blobs += 1;
            report.bytes += len;
            let sums = summer.finish();
            let detail = if BlobId(sha.finalize().into()) != id {
                Some("its SHA-256 is not its name".to_owned())
            } else if stored.as_ref().is_some_and(|s| *s != sums) {
                Some("its chunk sums differ from those written".to_owned())
            } else {
                None
            };
            if let Some(detail) = detail {
                let c = Corruption {
                    kind: "blob",
                    bucket: String::new(),
                    key: String::new(),
                    blob: id.to_hex(),
                    detail,
                };
                self.report_corruption(c.clone());
                report.corrupt.push(c);
            } else if stored.is_none() {
                let _guard = self.lock_blobs([&id]);
                if self.blob_refs(&id)? > 0 {
                    let mut batch = self.meta().batch();
                    batch.put_raw(Cf::BlobSums, &id.0, &sums.to_bytes())?;
                    batch.commit(true)?;
                    report.sums_added += 1;
                }
            }
        }
        let mut cursor = self.meta().cursor(Cf::Inline)?;
        cursor.seek_to_first();
        while let (Some(k), Some(v)) = (cursor.key(), cursor.value()) {
            report.inline += 1;
            pace.took(v.len() as u64);
            if let Err(detail) = inline_bytes(v) {
                let (bucket, key) = split_version_key(k);
                let c = Corruption {
                    kind: "inline",
                    bucket,
                    key,
                    blob: String::new(),
                    detail,
                };
                self.report_corruption(c.clone());
                report.corrupt.push(c);
            }
            cursor.next();
        }
        cursor.status()?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}

/// Bucket and key of a version key (`bucket 0x00 key 0x00 !seq`).
fn split_version_key(k: &[u8]) -> (String, String) {
    let body = k.get(..k.len().saturating_sub(9)).unwrap_or_default();
    let mut parts = body.splitn(2, |b| *b == 0);
    let bucket = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (bucket, key)
}

/// Keeps a scrub under its rate by sleeping.
struct Pace {
    rate: Option<u64>,
    started: Instant,
    done: u64,
}

impl Pace {
    fn new(rate: Option<u64>) -> Self {
        Self {
            rate: rate.filter(|r| *r > 0),
            started: Instant::now(),
            done: 0,
        }
    }

    fn took(&mut self, n: u64) {
        let Some(rate) = self.rate else { return };
        self.done += n;
        #[allow(clippy::cast_precision_loss, reason = "a pace, not an account")]
        let due = Duration::from_secs_f64(self.done as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
}

impl PinnedObject {
    /// Reads blob `blob` of this object from `offset`, checking every chunk it returns against
    /// the blob's sums: a chunk that differs fails the read (`InvalidData`), is reported and
    /// its blob quarantined. Blobs without sums (written before they existed) read unchecked.
    pub fn blob_reader(&self, blob: &BlobId, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        let store = self.store();
        let Some(sums) = self.sums.get(blob).cloned() else {
            return self.open_plain(blob, offset);
        };
        let chunk = SUM_CHUNK as u64;
        let aligned = offset - offset % chunk;
        let inner = self.open_plain(blob, aligned)?;
        Ok(Box::new(VerifiedReader {
            inner,
            sums,
            next_chunk: usize::try_from(aligned / chunk).unwrap_or(usize::MAX),
            buf: Vec::with_capacity(SUM_CHUNK),
            pos: usize::try_from(offset - aligned).unwrap_or(0),
            report: Reporter {
                store: store.clone(),
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                blob: *blob,
            },
        }))
    }

    fn open_plain(&self, blob: &BlobId, offset: u64) -> io::Result<Box<dyn Read + Send>> {
        self.store().blobs().open(blob, offset).map_err(|e| {
            let missing = matches!(e, StoreError::Corrupt { what: "blob", .. });
            if missing {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{e} (quarantined after failing its integrity check, or lost)"),
                )
            } else {
                io::Error::other(e.to_string())
            }
        })
    }

    /// Checks bytes `offset..offset + len` of blob `blob`, read from `file` (its local file)
    /// into `scratch` (the caller's, reused), before they are sent without passing through
    /// user space; a mismatch is reported and its blob quarantined, as by
    /// [`PinnedObject::blob_reader`].
    pub fn verify_file_region(
        &self,
        blob: &BlobId,
        file: &File,
        offset: u64,
        len: u64,
        scratch: &mut Vec<u8>,
    ) -> io::Result<()> {
        let Some(sums) = self.sums.get(blob) else {
            return Ok(());
        };
        let r = sums.verify_region(offset, len, scratch, |at, buf| file.read_exact_at(buf, at));
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::InvalidData
        {
            self.report_blob(blob, e.to_string());
        }
        r
    }

    fn report_blob(&self, blob: &BlobId, detail: String) {
        self.store().report_corruption(Corruption {
            kind: "blob",
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            blob: blob.to_hex(),
            detail,
        });
    }
}

/// Loads the sums of an object's blobs (those that have them).
pub(crate) fn sums_of(
    store: &Store,
    extents: &[crate::model::Extent],
) -> StoreResult<HashMap<BlobId, Arc<ChunkSums>>> {
    let mut out = HashMap::new();
    for e in extents {
        if !out.contains_key(&e.blob)
            && let Some(s) = store.blob_sums(&e.blob)?
        {
            out.insert(e.blob, Arc::new(s));
        }
    }
    Ok(out)
}

struct Reporter {
    store: Arc<Store>,
    bucket: String,
    key: String,
    blob: BlobId,
}

/// A blob reader that returns only bytes of chunks whose sums matched.
struct VerifiedReader {
    inner: Box<dyn Read + Send>,
    sums: Arc<ChunkSums>,
    next_chunk: usize,
    /// The current chunk, checked.
    buf: Vec<u8>,
    /// How much of `buf` was returned (or skipped, in the first chunk).
    pos: usize,
    report: Reporter,
}

impl VerifiedReader {
    /// The length of the next chunk (0 past the end of the blob).
    fn next_chunk_len(&self) -> usize {
        let at = self.next_chunk as u64 * SUM_CHUNK as u64;
        let left = self.sums.blob_len().saturating_sub(at);
        usize::try_from(left.min(SUM_CHUNK as u64)).unwrap_or(SUM_CHUNK)
    }

    /// Reads and checks the next chunk; false at the end of the blob.
    fn fill(&mut self) -> io::Result<bool> {
        let skip = if self.buf.is_empty() { self.pos } else { 0 };
        let want = self.next_chunk_len();
        if want == 0 {
            return Ok(false);
        }
        self.buf.clear();
        (&mut self.inner)
            .take(want as u64)
            .read_to_end(&mut self.buf)?;
        if self.buf.len() != want || !self.sums.chunk_ok(self.next_chunk, &self.buf) {
            let e = if self.buf.len() == want {
                sums::mismatch(self.next_chunk)
            } else {
                io::Error::new(io::ErrorKind::InvalidData, "blob shorter than written")
            };
            self.buf.clear();
            self.report_failure(&e);
            return Err(e);
        }
        self.next_chunk += 1;
        self.pos = skip.min(self.buf.len());
        Ok(true)
    }

    /// Reads the next chunk straight into `out` and checks it there, when nothing is buffered
    /// and the whole chunk fits: the common case of a read from a chunk boundary, without the
    /// copy through `buf`. `None` when it does not apply.
    fn read_whole_chunk(&mut self, out: &mut [u8]) -> Option<io::Result<usize>> {
        let want = self.next_chunk_len();
        // Not while the first chunk's head is still to skip, nor while checked bytes wait.
        let skip_pending = self.buf.is_empty() && self.pos > 0;
        let buffered = !self.buf.is_empty() && self.pos < self.buf.len();
        if skip_pending || buffered || want == 0 || out.len() < want {
            return None;
        }
        let dest = out.get_mut(..want)?;
        if let Err(e) = self.inner.read_exact(dest) {
            return Some(Err(e));
        }
        if !self.sums.chunk_ok(self.next_chunk, dest) {
            let e = sums::mismatch(self.next_chunk);
            self.report_failure(&e);
            return Some(Err(e));
        }
        self.next_chunk += 1;
        self.buf.clear();
        self.pos = 0;
        Some(Ok(want))
    }

    fn report_failure(&self, e: &io::Error) {
        let r = &self.report;
        r.store.report_corruption(Corruption {
            kind: "blob",
            bucket: r.bucket.clone(),
            key: r.key.clone(),
            blob: r.blob.to_hex(),
            detail: e.to_string(),
        });
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if let Some(r) = self.read_whole_chunk(out) {
            return r;
        }
        if (self.buf.is_empty() || self.pos >= self.buf.len()) && !self.fill()? {
            return Ok(0);
        }
        let have = self.buf.get(self.pos..).unwrap_or_default();
        let n = have.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(have.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}
