//! Content-addressed blob store and RocksDB metadata for fsgate.
//!
//! This crate owns everything on disk: blobs named by their SHA-256 (`blob`), and the
//! metadata in RocksDB column families (`meta`): buckets, object manifests, multipart state,
//! blob reference counts, IAM records and the audit table. `FORMAT.md` describes the layout.
//!
//! Both sides are seams: the store's logic talks to a `BlobStore` and a `MetaEngine`, never
//! to files or RocksDB. The product uses files and RocksDB ([`Backend::Disk`]); the memory
//! backends ([`Backend::Memory`]) run the same logic in the store's suite, and scale-out
//! backends (an S3 bucket for blobs, PostgreSQL for metadata) implement the same traits.
//!
//! This crate must not depend on hyper, http, s3s or cedar-policy: the gateway converts between
//! S3 requests and store calls. Every call blocks; callers on an async runtime run them off the
//! reactor.
//!
//! The one thing a newcomer must not break: an object commit is one atomic, synced write batch,
//! made only after the blobs it names are durably in place, and a blob file is removed only
//! after the batch that drops its last reference has committed. `Store::commit_with_refs` is
//! that path; every change that moves blob references goes through it. `check.rs` recomputes
//! what that path promises (`fsgate check`); `crash.rs` marks its durable steps, where the
//! crash-point tests abort the process (compiled in only with the `crash-points` feature).
//! RocksDB is the default `rocksdb` feature: the fuzz targets (`fuzz/`, `fuzzing.rs`) build
//! without it.

pub mod audit;
pub mod backup;
pub mod blob;
pub mod buckets;
pub mod check;
pub mod crash;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod iam;
pub mod integrity;
pub mod list;
pub mod meta;
pub mod model;
pub mod multipart;
pub mod objects;
pub mod private_file;
pub mod shares;
pub mod versions;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub use self::error::{MetaFailure, StoreError, StoreResult};

use self::blob::{BlobId, BlobStore, MemBlobStore};
use self::meta::{Batch, Cf, MemMeta, Meta};

/// The on-disk format version this release reads and writes.
pub const FORMAT_VERSION: u32 = 2;

const STRIPES: usize = 1024;

/// Called with a metadata write's error when it stops the engine (`Store::on_write_failure`).
pub type WriteFailureHook = Box<dyn Fn(&StoreError) + Send + Sync>;

/// Options for opening a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Sync every metadata commit to disk before it returns (the default; turning it off is
    /// only for benchmarks that say so).
    pub sync: bool,
    /// Write large blobs past the page cache with `O_DIRECT` (see `blob::direct`): faster
    /// large uploads, but the first read of a new blob comes from the disk. Off by default.
    pub direct_writes: bool,
    /// Where metadata and blobs live.
    pub backend: Backend,
    /// Metadata on PostgreSQL at this URL (`postgres://USER@HOST:PORT/DB`) instead of the
    /// backend's own (blobs stay where `backend` keeps them).
    pub meta_url: Option<String>,
    /// Blobs in this store instead of the backend's own (the gateway's `--blobs s3://…`: a
    /// bucket of an S3-compatible store, `blobs-s3/`).
    pub blobs: Option<Arc<dyn BlobStore>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync: true,
            direct_writes: false,
            backend: Backend::default(),
            meta_url: None,
            blobs: None,
        }
    }
}

/// Where a store keeps its metadata and blobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    /// RocksDB and files under the data directory: the product.
    #[default]
    Disk,
    /// Both in memory, gone with the process: the second backend the store's suite runs
    /// against, so that its logic is known not to depend on RocksDB or on files.
    Memory,
}

/// What start-up recovery found and removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Temporary (staged) files deleted.
    pub staged_removed: usize,
    /// Blobs with no reference deleted.
    pub unreferenced_removed: usize,
}

/// The store: metadata plus blobs, with the locks that keep commits and blob removal apart.
pub struct Store {
    root: PathBuf,
    meta: Meta,
    blobs: Arc<dyn BlobStore>,
    opts: StoreOptions,
    /// Stripes for object keys and upload ids.
    key_locks: Vec<Mutex<()>>,
    /// Stripes for blob ids.
    blob_locks: Vec<Mutex<()>>,
    /// Commits into a bucket hold it shared; deleting a bucket holds it exclusively.
    bucket_gate: RwLock<()>,
    recovery: RecoveryReport,
    /// Blobs being read right now (reader count): an overwrite or delete that drops their
    /// last reference leaves their file to the last reader.
    pins: Mutex<HashMap<BlobId, usize>>,
    /// Unreferenced blobs whose removal waits for their readers.
    pending: Mutex<HashSet<BlobId>>,
    /// The last commit sequence handed out (see `next_seq`).
    last_seq: std::sync::atomic::AtomicU64,
    /// Serializes changes of share links (see `shares.rs`).
    share_locks: shares::ShareLocks,
    /// The audit index's posting lists not yet written (see `audit/index.rs`).
    audit_pending: audit::PendingIndex,
    /// Told about every corruption found (see `integrity.rs`).
    corruption_hook: OnceLock<integrity::CorruptionHook>,
    write_failure_hook: OnceLock<WriteFailureHook>,
    /// Blobs quarantined and not stored afresh since: reads of them fail before any byte.
    quarantined: integrity::Quarantined,
    /// Backups running: while any is, blob files are not removed (see `backup.rs`).
    backups: std::sync::atomic::AtomicUsize,
    /// Blobs whose last reference went away during a backup, removed at its end.
    deferred: Mutex<Vec<BlobId>>,
}

/// An object's manifest with its blobs pinned: they stay readable until this is dropped, even
/// if the object is overwritten or deleted meanwhile (a GET that started sees the old object).
pub struct PinnedObject {
    store: Arc<Store>,
    /// The bucket and key read (for reports of corruption).
    bucket: String,
    key: String,
    /// The manifest as read.
    pub manifest: model::ObjectManifest,
    /// The bytes of an inline object, read with its manifest (and checked).
    pub inline: Option<Vec<u8>>,
    /// The chunk sums of the blobs that have them (see `integrity.rs`).
    sums: HashMap<BlobId, Arc<blob::ChunkSums>>,
}

impl std::fmt::Debug for PinnedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedObject")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl PinnedObject {
    /// The store the blobs are read from.
    #[must_use]
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

impl Drop for PinnedObject {
    fn drop(&mut self) {
        let ids: Vec<BlobId> = self.manifest.extents.iter().map(|e| e.blob).collect();
        self.store.unpin(&ids);
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Current time in nanoseconds since the Unix epoch.
#[must_use]
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stripe_of(bytes: &[u8]) -> usize {
    // FNV-1a: cheap, and only needs to spread keys over the stripes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    usize::try_from(h % STRIPES as u64).unwrap_or(0)
}

/// The metadata on PostgreSQL at `url`.
#[cfg(feature = "postgres")]
fn open_postgres(url: &str) -> StoreResult<Meta> {
    Ok(Meta::new(Box::new(meta::PgMeta::open(url)?)))
}

#[cfg(not(feature = "postgres"))]
fn open_postgres(_url: &str) -> StoreResult<Meta> {
    Err(StoreError::Metadata {
        kind: MetaFailure::Other,
        message: "this build has no PostgreSQL engine (the `postgres` feature is off)".into(),
    })
}

impl Store {
    /// Opens the store under `root`, creating it if needed, and collects whatever a crash left
    /// behind (temporary files, unreferenced blobs) before returning.
    pub fn open(root: &Path, opts: StoreOptions) -> StoreResult<Self> {
        fs::create_dir_all(root)?;
        let format_file = root.join("FORMAT");
        match fs::read_to_string(&format_file) {
            Ok(text) => {
                let expected = format!("fsgate-store {FORMAT_VERSION}");
                if text.trim() != expected {
                    return Err(StoreError::Corrupt {
                        what: "data directory",
                        detail: format!("format '{}' is not '{expected}'", text.trim()),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::write(&format_file, format!("fsgate-store {FORMAT_VERSION}\n"))?;
            }
            Err(e) => return Err(e.into()),
        }
        let meta = match (&opts.meta_url, opts.backend) {
            (Some(url), _) => open_postgres(url)?,
            #[cfg(feature = "rocksdb")]
            (None, Backend::Disk) => {
                Meta::new(Box::new(meta::RocksMeta::open(&root.join("meta"))?))
            }
            #[cfg(not(feature = "rocksdb"))]
            (None, Backend::Disk) => {
                return Err(StoreError::Metadata {
                    kind: MetaFailure::Other,
                    message: "this build has no RocksDB (the `rocksdb` feature is off)".into(),
                });
            }
            (None, Backend::Memory) => Meta::new(Box::new(MemMeta::new())),
        };
        let blobs: Arc<dyn BlobStore> = match (&opts.blobs, opts.backend) {
            (Some(blobs), _) => Arc::clone(blobs),
            (None, Backend::Disk) => Arc::new(blob::FsBlobStore::open(root, opts.direct_writes)?),
            (None, Backend::Memory) => Arc::new(MemBlobStore::default()),
        };
        let mut store = Self {
            root: root.to_path_buf(),
            meta,
            blobs,
            opts,
            key_locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            blob_locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            bucket_gate: RwLock::new(()),
            recovery: RecoveryReport::default(),
            pins: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            last_seq: std::sync::atomic::AtomicU64::new(0),
            share_locks: shares::ShareLocks::default(),
            audit_pending: audit::PendingIndex::default(),
            corruption_hook: OnceLock::new(),
            write_failure_hook: OnceLock::new(),
            quarantined: integrity::Quarantined::default(),
            backups: std::sync::atomic::AtomicUsize::new(0),
            deferred: Mutex::new(Vec::new()),
        };
        store.recovery = store.collect_garbage()?;
        store.load_quarantined()?;
        Ok(store)
    }

    /// Has `hook` called when a metadata write fails in a way that stops the engine taking
    /// writes (`StoreError::stops_writes`: an I/O error on its log). RocksDB cannot be resumed
    /// after one; the server's hook stops the process so that its supervisor restarts it, and
    /// recovery replays the log (fail-stop). The first hook set stays.
    pub fn on_write_failure(&self, hook: WriteFailureHook) {
        let _ = self.write_failure_hook.set(hook);
    }

    /// Reports a failed metadata write to the hook when it stops the engine.
    pub(crate) fn write_failed(&self, e: &StoreError) {
        if e.stops_writes()
            && let Some(hook) = self.write_failure_hook.get()
        {
            hook(e);
        }
    }

    /// The data directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What recovery removed when the store was opened.
    #[must_use]
    pub fn recovery(&self) -> RecoveryReport {
        self.recovery
    }

    /// The blob backend.
    #[must_use]
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Writes the metadata held in memory (RocksDB's memtables) to its files. RocksDB does
    /// this by itself as memtables fill; tests use it to read back from the files. A no-op on
    /// the memory backend.
    pub fn flush_metadata(&self) -> StoreResult<()> {
        self.meta.flush()
    }

    /// Deletes staged files and blobs that no manifest or part refers to. Runs at open, before
    /// anything else can reference a blob.
    fn collect_garbage(&self) -> StoreResult<RecoveryReport> {
        let staged_removed = self.blobs.collect_staged()?;
        let mut removed = Vec::new();
        for id in self.blobs.list()? {
            let count: Option<u64> = self.meta.get(Cf::BlobRefs, &id.0)?;
            if count.unwrap_or(0) == 0 {
                crash::point(crash::Step::BlobRemove);
                self.blobs.remove(&id)?;
                removed.push(id);
            }
        }
        let unreferenced_removed = removed.len();
        self.drop_sums(&removed);
        Ok(RecoveryReport {
            staged_removed,
            unreferenced_removed,
        })
    }

    /// A unique, increasing commit sequence: the current time in nanoseconds, bumped past the
    /// last one handed out. It is a version's modification time and orders a key's versions.
    pub(crate) fn next_seq(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = now_ns();
        let mut last = self.last_seq.load(Ordering::Relaxed);
        loop {
            let next = now.max(last.saturating_add(1));
            match self.last_seq.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Locks the key stripes for the given keys, in a fixed order (no deadlock).
    pub(crate) fn lock_keys<'a>(&'a self, keys: &[&[u8]]) -> Vec<MutexGuard<'a, ()>> {
        let set: BTreeSet<usize> = keys.iter().map(|k| stripe_of(k)).collect();
        set.into_iter()
            .filter_map(|i| self.key_locks.get(i).map(lock))
            .collect()
    }

    /// Locks the blob stripes for the given blobs, in a fixed order. Always taken after any
    /// key stripes, never before.
    pub(crate) fn lock_blobs<'a>(
        &'a self,
        ids: impl IntoIterator<Item = &'a BlobId>,
    ) -> Vec<MutexGuard<'a, ()>> {
        let set: BTreeSet<usize> = ids.into_iter().map(|id| stripe_of(&id.0)).collect();
        set.into_iter()
            .filter_map(|i| self.blob_locks.get(i).map(lock))
            .collect()
    }

    pub(crate) fn bucket_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.bucket_gate
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn bucket_exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.bucket_gate
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The one durability path of every change that moves blob references: a new object or
    /// part, a copy, a multipart completion, a delete, an abort. Under the blobs' stripe locks
    /// (taken after the caller's key locks):
    /// 1. `staged`, if any, is published: its bytes and its name are on disk before any
    ///    metadata names it;
    /// 2. the reference-count changes join `batch`, so counts and manifests change together;
    /// 3. the batch commits, synced;
    /// 4. only then are blobs whose last reference went away removed. A crash between 3 and 4
    ///    leaves unreferenced blobs, collected at the next start; never a manifest naming a
    ///    missing blob.
    pub(crate) fn commit_with_refs(
        &self,
        mut batch: Batch<'_>,
        deltas: &HashMap<BlobId, i64>,
        staged: Option<&mut blob::StagedBlob>,
    ) -> StoreResult<()> {
        let _blob_guard = self.lock_blobs(deltas.keys());
        if let Some(staged) = staged {
            // DURABILITY: published (synced, renamed, directory synced) before the commit.
            self.blobs.publish(staged)?;
            // Its chunk sums commit with the first reference to it (the same content has the
            // same sums: rewriting them for a duplicate changes nothing).
            batch.put_raw(Cf::BlobSums, &staged.id.0, &staged.sums.to_bytes())?;
            self.quarantined.healed(&staged.id);
        }
        let dead = self.apply_ref_deltas(&mut batch, deltas)?;
        // DURABILITY: the manifests and reference counts commit in one synced batch.
        self.commit(batch)?;
        // DURABILITY: blobs go only after the commit that drops their last reference.
        self.remove_dead(&dead);
        Ok(())
    }

    /// Adds reference-count changes to `batch`; returns the blobs whose count drops to zero,
    /// to remove once the batch has committed. The caller holds the blobs' stripe locks.
    fn apply_ref_deltas(
        &self,
        batch: &mut Batch<'_>,
        deltas: &HashMap<BlobId, i64>,
    ) -> StoreResult<Vec<BlobId>> {
        let mut dead = Vec::new();
        for (id, delta) in deltas {
            if *delta == 0 {
                continue;
            }
            let cur: u64 = self.meta.get(Cf::BlobRefs, &id.0)?.unwrap_or(0);
            let next = i128::from(cur) + i128::from(*delta);
            if next <= 0 {
                if next < 0 {
                    tracing::error!(blob = %id.to_hex(), cur, delta, "reference count below zero");
                }
                batch.delete(Cf::BlobRefs, &id.0)?;
                dead.push(*id);
            } else {
                let next = u64::try_from(next).unwrap_or(u64::MAX);
                batch.put(Cf::BlobRefs, &id.0, &next)?;
            }
        }
        Ok(dead)
    }

    /// Commits a batch with the store's durability setting (synced unless a benchmark says
    /// otherwise). Changes that move blob references go through `commit_with_refs`.
    pub(crate) fn commit(&self, batch: Batch<'_>) -> StoreResult<()> {
        let started = std::time::Instant::now();
        crash::point(crash::Step::MetaCommit);
        let r = batch.commit(self.opts.sync);
        match &r {
            Ok(()) => crash::point(crash::Step::MetaCommitted),
            Err(e) => self.write_failed(e),
        }
        metrics::histogram!("fsgate_metadata_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        r
    }

    /// Removes blobs whose last reference was dropped by a batch that has committed. The caller
    /// still holds their stripe locks. A failure here only leaves garbage for the next start.
    fn remove_dead(&self, dead: &[BlobId]) {
        // Decided under the pins lock, removed outside it: unlinking a large file takes tens
        // of milliseconds here, and every GET pins and unpins through that lock. No reader can
        // pin a dead blob meanwhile: readers pin what a manifest references, under the key's
        // lock, which the caller holds (as it holds the blobs' locks against a new upload of
        // the same bytes).
        let unpinned: Vec<BlobId> = {
            let pins = lock(&self.pins);
            dead.iter()
                .filter(|id| {
                    let pinned = pins.get(id).copied().unwrap_or(0) > 0;
                    if pinned {
                        // A reader still streams it: the last one removes it (see `unpin`).
                        lock(&self.pending).insert(**id);
                    }
                    !pinned
                })
                .copied()
                .collect()
        };
        if self.backups.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            // A backup may still copy them: removed when it ends (`remove_deferred`).
            lock(&self.deferred).extend(unpinned);
            return;
        }
        for id in &unpinned {
            crash::point(crash::Step::BlobRemove);
            if let Err(e) = self.blobs.remove(id) {
                tracing::warn!(blob = %id.to_hex(), error = %e, "could not remove unreferenced blob");
            }
        }
        self.drop_sums(&unpinned);
    }

    /// Removes the blobs a backup kept, once no backup runs, unless referenced or read again
    /// since.
    pub(crate) fn remove_deferred(&self) {
        if self.backups.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return;
        }
        let ids = std::mem::take(&mut *lock(&self.deferred));
        for id in ids {
            let _blob_guard = self.lock_blobs([&id]);
            if self.blob_refs(&id).unwrap_or(1) != 0 {
                continue;
            }
            if lock(&self.pins).get(&id).is_some() {
                lock(&self.pending).insert(id);
                continue;
            }
            crash::point(crash::Step::BlobRemove);
            if let Err(e) = self.blobs.remove(&id) {
                tracing::warn!(blob = %id.to_hex(), error = %e, "could not remove unreferenced blob");
            }
            self.drop_sums(&[id]);
        }
    }

    /// Reads a version's manifest (the current one when `version` is `None`; `"null"` names
    /// the null version) and pins its blobs, under the object's key lock: while the lock is
    /// held the version references them, so none can be removed before it is pinned. A delete
    /// marker comes back as such (the caller answers for it).
    pub fn pin_object(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<PinnedObject> {
        let okey = meta::object_key(bucket, key);
        let _key_guard = self.lock_keys(&[&okey]);
        self.pin_locked(bucket, key, version)
    }

    /// As [`Store::pin_object`], but only when the key's lock is free at once: `Ok(None)` while
    /// a writer holds it. A caller on an async worker can then do the lookup (memtable and
    /// block cache, normally) in place and go to a blocking thread only when it would wait.
    pub fn try_pin_object(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<Option<PinnedObject>> {
        let okey = meta::object_key(bucket, key);
        let Some(stripe) = self.key_locks.get(stripe_of(&okey)) else {
            return Ok(None);
        };
        let _key_guard = match stripe.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        self.pin_locked(bucket, key, version).map(Some)
    }

    /// Reads a version's manifest (and inline data) and pins its blobs; the caller holds the
    /// key's lock.
    fn pin_locked(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> StoreResult<PinnedObject> {
        let manifest = self
            .head_version(bucket, key, version)
            .map_err(|e| self.metadata_failure(bucket, key, e))?;
        self.quarantined.check(&manifest.extents)?;
        let inline = if manifest.inline {
            Some(self.inline_data(bucket, key, manifest.seq)?)
        } else {
            None
        };
        let sums = integrity::sums_of(self, &manifest.extents)
            .map_err(|e| self.metadata_failure(bucket, key, e))?;
        let mut pins = lock(&self.pins);
        for e in &manifest.extents {
            *pins.entry(e.blob).or_default() += 1;
        }
        drop(pins);
        // Only blob readers report by name (inline bytes are checked above): a small object's
        // GET allocates no copy of them.
        let named = |s: &str| {
            if manifest.extents.is_empty() {
                String::new()
            } else {
                s.to_owned()
            }
        };
        Ok(PinnedObject {
            store: self.clone(),
            bucket: named(bucket),
            key: named(key),
            manifest,
            inline,
            sums,
        })
    }

    fn unpin(&self, ids: &[BlobId]) {
        for id in ids {
            let last = {
                let mut pins = lock(&self.pins);
                match pins.get_mut(id) {
                    Some(n) if *n > 1 => {
                        *n -= 1;
                        false
                    }
                    Some(_) => {
                        pins.remove(id);
                        true
                    }
                    None => false,
                }
            };
            if last && lock(&self.pending).remove(id) {
                // Under the blob's lock: a new upload of the same bytes may have referenced
                // it again since it became pending.
                let _blob_guard = self.lock_blobs([id]);
                if lock(&self.pins).get(id).is_some() {
                    lock(&self.pending).insert(*id);
                } else if self.blob_refs(id).unwrap_or(1) == 0 {
                    if self.backups.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                        // A backup may still copy it: removed when it ends.
                        lock(&self.deferred).push(*id);
                    } else {
                        crash::point(crash::Step::BlobRemove);
                        if let Err(e) = self.blobs.remove(id) {
                            tracing::warn!(blob = %id.to_hex(), error = %e, "could not remove unreferenced blob");
                        }
                        self.drop_sums(&[*id]);
                    }
                }
            }
        }
    }

    /// Bytes free for unprivileged writers in the data directory's file system.
    pub fn free_space(&self) -> StoreResult<u64> {
        let st = rustix::fs::statvfs(&self.root).map_err(std::io::Error::from)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Writes, syncs and removes a probe file in the data directory: whether new data can be
    /// stored now.
    pub fn probe_writable(&self) -> StoreResult<()> {
        let p = self
            .root
            .join("tmp")
            .join(format!(".ready-{}", std::process::id()));
        let r = (|| {
            let mut f = fs::File::create(&p)?;
            std::io::Write::write_all(&mut f, b"ok")?;
            f.sync_all()
        })();
        let _ = fs::remove_file(&p);
        Ok(r?)
    }

    /// The metadata engine's health figures (RocksDB's live SST bytes, pending compaction
    /// bytes, write stall).
    pub fn metadata_stats(&self) -> StoreResult<meta::EngineStats> {
        self.meta.stats()
    }

    /// Current reference count of a blob (for tests and tools).
    pub fn blob_refs(&self, id: &BlobId) -> StoreResult<u64> {
        Ok(self.meta.get(Cf::BlobRefs, &id.0)?.unwrap_or(0))
    }
}
