//! The group-commit writer: one thread that drains a bounded queue of encoded records,
//! appends them to the log's tree and commits them with their tree rows — and, at least once a
//! second while records arrive (and when asked, and on shutdown), a signed checkpoint — in one
//! synced batch.
//!
//! Durability: a record is durable once the batch holding it has committed (a synced RocksDB
//! write). The writer commits whatever is queued, at most once per `COMMIT_WINDOW` (so under
//! load one WAL sync carries many requests' records instead of one sync per handful), so a
//! record is normally durable within ~10 ms of its response. `AuditWriter::flush`
//! and dropping the writer wait for every queued record. Senders block when the queue is full:
//! requests wait rather than lose records.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fsgate_auditlog::{Appender, SigningKey};

use super::log::{BLOCK_LEAVES, Entry, block_op, checkpoint_ops, node_op};
use super::{AUDIT_VALUE_VERSION, EncodedRecord, NODE_MIN_LEVEL};
use crate::Store;
use crate::error::StoreResult;
use crate::meta::{Cf, Op};
use crate::model::{AuditEntry, AuditRecord};

/// Most records committed in one batch.
const MAX_BATCH: usize = 4096;
/// Shortest time between the starts of two batch commits. Records arriving in between wait
/// (a flush does not), and the sender never wakes the writer, which sleeps rather than waits
/// on the queue. Each commit is one WAL `fdatasync`, whose kernel time on a virtual disk is
/// ~150 µs of CPU: at 7,000 requests/s, syncing every 5 ms cost 3 % of a 4 KiB GET's CPU;
/// every 10 ms, one sync carries ~70 records.
const COMMIT_WINDOW: Duration = Duration::from_millis(10);
/// Longest time a committed record waits for a signed checkpoint to cover it.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Record(EncodedRecord),
    Flush(SyncSender<()>),
    Checkpoint(SyncSender<()>),
}

/// The group-commit writer: a thread that drains a bounded queue into synced batches.
pub struct AuditWriter {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<AuditStats>,
}

/// What the audit pipeline has done, for metrics (read with `AuditWriter::stats`).
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Records committed.
    pub written: AtomicU64,
    /// Records queued and not yet committed.
    pub queued: AtomicU64,
    /// Batches committed.
    pub batches: AtomicU64,
    /// Size of the last batch.
    pub last_batch: AtomicU64,
    /// Duration of the last batch commit, in nanoseconds.
    pub last_commit_ns: AtomicU64,
    /// Arrival time (ns) of the oldest record in the batch being committed; 0 when idle.
    pub oldest_pending_ns: AtomicU64,
    /// Checkpoints signed.
    pub checkpoints: AtomicU64,
    /// Records in the log (the tree's size).
    pub log_size: AtomicU64,
    /// 1 when the stored log did not match its latest checkpoint at start (its rows were
    /// changed, removed or cut while fsgate was stopped); else 0.
    pub log_inconsistent: AtomicU64,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter").finish_non_exhaustive()
    }
}

/// What `AuditWriter::try_send` hands back when the queue is full: the record, encoded, for
/// `send_encoded_blocking`.
#[derive(Debug)]
pub struct QueueFull(pub EncodedRecord);

/// The writer thread's log: the tree so far, the block of records being filled, and when it
/// was last signed.
struct Log {
    appender: Appender,
    block: Vec<Entry>,
    key: Arc<SigningKey>,
    signed_size: u64,
    signed_at: Instant,
}

impl Log {
    /// Time until the unsigned records must be signed; `None` when all are.
    fn sign_in(&self) -> Option<Duration> {
        (self.appender.size() > self.signed_size)
            .then(|| CHECKPOINT_EVERY.saturating_sub(self.signed_at.elapsed()))
    }
}

impl AuditWriter {
    /// Starts the writer thread over `store` with a queue of `capacity` records, continuing
    /// the log stored there and signing its checkpoints with `key`.
    pub fn start(store: Arc<Store>, capacity: usize, key: Arc<SigningKey>) -> StoreResult<Self> {
        let indexed = store.catch_up_audit_index()?;
        if indexed > 0 {
            tracing::info!(
                records = indexed,
                "indexed audit records the index did not cover yet"
            );
        }
        let tree = store.audit_log_tree()?;
        let block = if tree.size() % BLOCK_LEAVES == 0 {
            Vec::new()
        } else {
            store.block(tree.size() / BLOCK_LEAVES)?
        };
        let latest = store.latest_audit_checkpoint()?;
        let signed_size = latest.as_ref().map_or(0, |c| c.size.min(tree.size()));
        let (tx, rx) = sync_channel(capacity);
        let stats = Arc::new(AuditStats::default());
        // What was signed last must still be what is stored: a log edited while fsgate was
        // stopped is reported at once (and `fsctl audit verify` says where).
        if let Some(cp) = &latest {
            let matches = cp.size <= tree.size()
                && store
                    .audit_root_at(cp.size)
                    .is_ok_and(|root| hex::encode(root) == cp.root);
            if !matches {
                tracing::error!(
                    checkpoint_size = cp.size,
                    stored_records = tree.size(),
                    "the audit log does not match its latest signed checkpoint: it was changed while fsgate was stopped; run `fsctl audit verify`"
                );
                stats.log_inconsistent.store(1, Ordering::Relaxed);
            }
        }
        stats.log_size.store(tree.size(), Ordering::Relaxed);
        let st = stats.clone();
        let log = Log {
            appender: Appender::new(tree),
            block,
            key,
            signed_size,
            signed_at: Instant::now(),
        };
        let thread = std::thread::Builder::new()
            .name("fsgate-audit".into())
            .spawn(move || run(&store, &rx, &st, log))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// Encodes a record and queues it without blocking; gives it back when the queue is full.
    pub fn try_send(&self, rec: &AuditEntry<'_>) -> Result<(), QueueFull> {
        let Some(encoded) = encode(rec) else {
            return Ok(());
        };
        let Some(tx) = &self.tx else { return Ok(()) };
        match tx.try_send(Msg::Record(encoded)) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Full(Msg::Record(r))) => Err(QueueFull(r)),
            Err(
                TrySendError::Full(Msg::Flush(_) | Msg::Checkpoint(_))
                | TrySendError::Disconnected(_),
            ) => Ok(()),
        }
    }

    /// Queues a record, blocking while the queue is full.
    pub fn send_blocking(&self, rec: &AuditRecord) {
        if let Some(encoded) = encode(&rec.into()) {
            self.send_encoded_blocking(encoded);
        }
    }

    /// Queues an encoded record (one `try_send` gave back), blocking while the queue is full.
    pub fn send_encoded_blocking(&self, rec: EncodedRecord) {
        if let Some(tx) = &self.tx
            && tx.send(Msg::Record(rec)).is_ok()
        {
            self.stats.queued.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The pipeline's counters.
    #[must_use]
    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }

    /// Waits until every record queued before this call is committed.
    pub fn flush(&self) {
        self.ask(Msg::Flush);
    }

    /// Waits until every record queued before this call is committed and covered by a signed
    /// checkpoint (exports and proofs end at one).
    pub fn checkpoint(&self) {
        self.ask(Msg::Checkpoint);
    }

    fn ask(&self, msg: fn(SyncSender<()>) -> Msg) {
        if let Some(tx) = &self.tx {
            let (done_tx, done_rx) = sync_channel(1);
            if tx.send(msg(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Waiters for a commit, and whether one asked for a checkpoint.
#[derive(Default)]
struct Waiters {
    list: Vec<SyncSender<()>>,
    checkpoint: bool,
}

fn run(store: &Store, rx: &Receiver<Msg>, stats: &AuditStats, mut log: Log) {
    let mut batch: Vec<EncodedRecord> = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Waiters::default();
    let mut last_commit = Instant::now();
    loop {
        // Block for the first message (no longer than until the unsigned records are due a
        // checkpoint); unless it asks for a flush, let the window since the last commit pass;
        // then take whatever else is queued.
        let wait = log.sign_in().unwrap_or(Duration::from_millis(500));
        match rx.recv_timeout(wait) {
            Ok(m) => push(m, &mut batch, &mut waiters),
            Err(RecvTimeoutError::Timeout) => {
                if log.sign_in().is_some_and(|d| d.is_zero()) {
                    commit(store, &mut batch, stats, &mut log, true);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if waiters.list.is_empty() {
            let wait = COMMIT_WINDOW.saturating_sub(last_commit.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        last_commit = Instant::now();
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(m) => push(m, &mut batch, &mut waiters),
                Err(_) => break,
            }
        }
        let sign = waiters.checkpoint || log.sign_in().is_some_and(|d| d.is_zero());
        commit(store, &mut batch, stats, &mut log, sign);
        waiters.checkpoint = false;
        for w in waiters.list.drain(..) {
            let _ = w.send(());
        }
    }
    // Shutdown: the last records, and a checkpoint covering them.
    commit(store, &mut batch, stats, &mut log, true);
    for w in waiters.list.drain(..) {
        let _ = w.send(());
    }
}

/// Encodes `rec`, or logs why it cannot be (a request id fsgate did not make; such a record
/// could never be committed, and retrying it would stall every record behind it).
fn encode(rec: &AuditEntry<'_>) -> Option<EncodedRecord> {
    match EncodedRecord::new(rec) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::error!(error = %e, request_id = %rec.request_id, "audit record not encodable; not written");
            None
        }
    }
}

fn push(m: Msg, batch: &mut Vec<EncodedRecord>, waiters: &mut Waiters) {
    match m {
        Msg::Record(r) => batch.push(r),
        Msg::Flush(w) => waiters.list.push(w),
        Msg::Checkpoint(w) => {
            waiters.list.push(w);
            waiters.checkpoint = true;
        }
    }
}

/// Appends `batch` to the log and commits it, with a signed checkpoint when `sign` and there
/// is anything unsigned.
fn commit(
    store: &Store,
    batch: &mut Vec<EncodedRecord>,
    stats: &AuditStats,
    log: &mut Log,
    sign: bool,
) {
    if batch.is_empty() && !(sign && log.sign_in().is_some()) {
        return;
    }
    let oldest = batch.iter().map(|r| r.time_ns).min().unwrap_or(0);
    stats.oldest_pending_ns.store(oldest, Ordering::Relaxed);
    let started = Instant::now();
    let mut ops: Vec<Op> = Vec::with_capacity(batch.len() * 2 + 4);
    for r in batch.drain(..) {
        let appended =
            log.appender
                .append(&[AUDIT_VALUE_VERSION], &r.body, |level, index, hash| {
                    if level >= NODE_MIN_LEVEL {
                        ops.push(node_op(level, index, hash));
                    }
                });
        ops.push(Op::Put(Cf::Audit, r.key.to_vec(), appended.stored));
        store.audit_pending.add(&r.index, r.key);
        log.block.push((r.key, appended.leaf));
        if log.block.len() as u64 == BLOCK_LEAVES {
            ops.push(block_op(appended.seq / BLOCK_LEAVES, &log.block));
            log.block.clear();
        }
    }
    if !log.block.is_empty() && !ops.is_empty() {
        // The block being filled, rewritten whole with its new records.
        ops.push(block_op(log.appender.size() / BLOCK_LEAVES, &log.block));
    }
    let mut signed = false;
    if sign && log.sign_in().is_some() {
        let cp = log.appender.checkpoint(&log.key, crate::now_ns());
        ops.extend(checkpoint_ops(&cp));
        // The index's posting lists since the last checkpoint, in the same batch.
        ops.extend(store.audit_pending.ops(cp.size));
        log.signed_size = cp.size;
        log.signed_at = Instant::now();
        signed = true;
    }
    // Retry until it lands: dropping records silently is not an option, and the tree has
    // them already. A persistent failure (disk full) stalls the queue, which stalls requests,
    // which the operator will notice.
    let mut delay = Duration::from_millis(10);
    loop {
        crate::crash::point(crate::crash::Step::AuditCommit);
        match store.meta().commit_ops(&ops, true) {
            Ok(()) => break,
            Err(e) => {
                tracing::error!(error = %e, ops = ops.len(), "audit commit failed; retrying");
                store.write_failed(&e);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
    let records = log.appender.size() - stats.log_size.load(Ordering::Relaxed);
    stats.log_size.store(log.appender.size(), Ordering::Relaxed);
    if signed {
        stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        store.audit_pending.clear();
    }
    stats.last_commit_ns.store(
        u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    stats.last_batch.store(records, Ordering::Relaxed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.written.fetch_add(records, Ordering::Relaxed);
    stats.queued.fetch_sub(
        records.min(stats.queued.load(Ordering::Relaxed)),
        Ordering::Relaxed,
    );
    stats.oldest_pending_ns.store(0, Ordering::Relaxed);
}
