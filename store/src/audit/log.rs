//! The audit log's Merkle tree, stored in `Cf::AuditLog` beside the records it covers, and
//! what is read from it: the tree to continue, checkpoints, export pages and proofs.
//!
//! Rows (keys are a tag byte, then big-endian numbers; values are `[1]` then the bytes):
//! - `B` block → for the records `64·block ..` (up to 64 of them, in order), each one's table
//!   key (12 bytes) ‖ leaf hash (32): the block being filled is rewritten with each commit,
//!   so a record costs the tree no row of its own;
//! - `N` level index → the hash of the perfect subtree at `level` ≥ [`NODE_MIN_LEVEL`] and
//!   `index` (smaller ones are hashed again from the leaves, at most 2^(min−1) of them);
//! - `C` size → a signed checkpoint's line;
//! - `T` time ns → the size of the checkpoint signed then (to find a time range's records);
//! - `D` target name → the position up to which records were delivered to that audit target
//!   (a webhook): the log itself is the targets' persistent queue.

use fsgate_auditlog::proof::{ConsistencyDoc, ProofDoc};
use fsgate_auditlog::tree::{Subtrees, consistency_proof, inclusion_proof, leaf_hash};
use fsgate_auditlog::verify::{FrontierPart, LeavesPart};
use fsgate_auditlog::{Checkpoint, Frontier, Hash};

use super::{AUDIT_VALUE_VERSION, key_of_request_id};
use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::meta::{Cf, Op};

/// The lowest level of perfect subtree stored: one node row per 64 records.
pub const NODE_MIN_LEVEL: u8 = 6;

const BLOCK: u8 = b'B';
/// Records per `B` row: a perfect subtree of level [`NODE_MIN_LEVEL`].
pub(super) const BLOCK_LEAVES: u64 = 1 << NODE_MIN_LEVEL;
/// Bytes of one record in a `B` row.
const ENTRY: usize = 12 + 32;
const NODE: u8 = b'N';
const CHECKPOINT: u8 = b'C';
const BY_TIME: u8 = b'T';
const DELIVERED: u8 = b'D';
const ROW_VERSION: u8 = 1;

fn key9(tag: u8, n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9);
    k.push(tag);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.extend_from_slice(&[NODE, level]);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

fn row(bytes: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + bytes.iter().map(|b| b.len()).sum::<usize>());
    v.push(ROW_VERSION);
    for b in bytes {
        v.extend_from_slice(b);
    }
    v
}

fn corrupt(detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what: "audit log",
        detail: detail.into(),
    }
}

fn body(v: &[u8]) -> StoreResult<&[u8]> {
    match v.split_first() {
        Some((&ROW_VERSION, b)) => Ok(b),
        _ => Err(corrupt("unknown row version")),
    }
}

fn hash_of(b: &[u8]) -> StoreResult<Hash> {
    Hash::try_from(b).map_err(|_| corrupt("a hash is not 32 bytes"))
}

fn number(key: &[u8]) -> Option<u64> {
    key.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
}

/// A record's place in a block: its table key and leaf hash.
pub(super) type Entry = ([u8; 12], Hash);

/// The row of block `index` holding `entries` (its first records, in order).
pub(super) fn block_op(index: u64, entries: &[Entry]) -> Op {
    let mut v = Vec::with_capacity(1 + entries.len() * ENTRY);
    v.push(ROW_VERSION);
    for (k, h) in entries {
        v.extend_from_slice(k);
        v.extend_from_slice(h);
    }
    Op::Put(Cf::AuditLog, key9(BLOCK, index), v)
}

fn entries(v: &[u8]) -> StoreResult<Vec<Entry>> {
    let b = body(v)?;
    if b.len() % ENTRY != 0 || b.len() / ENTRY > BLOCK_LEAVES as usize {
        return Err(corrupt("a block row is not whole entries"));
    }
    Ok(b.chunks_exact(ENTRY)
        .filter_map(|c| {
            let (k, h) = c.split_at(12);
            Some((<[u8; 12]>::try_from(k).ok()?, Hash::try_from(h).ok()?))
        })
        .collect())
}

/// The row of a completed perfect subtree.
pub(super) fn node_op(level: u8, index: u64, hash: &Hash) -> Op {
    Op::Put(Cf::AuditLog, node_key(level, index), row(&[hash]))
}

/// The rows of a signed checkpoint.
pub(super) fn checkpoint_ops(cp: &Checkpoint) -> [Op; 2] {
    let time = fsgate_auditlog::checkpoint::parse_rfc3339_nanos(&cp.time).unwrap_or(0);
    [
        Op::Put(
            Cf::AuditLog,
            key9(CHECKPOINT, cp.size),
            row(&[cp.to_line().as_bytes()]),
        ),
        Op::Put(
            Cf::AuditLog,
            key9(BY_TIME, time),
            row(&[&cp.size.to_be_bytes()]),
        ),
    ]
}

/// The records of a time range, as log positions `[from, to)`: from the last checkpoint
/// signed before the range to the first signed at or after its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRange {
    /// First position.
    pub from: u64,
    /// Position after the last (a checkpoint's size).
    pub to: u64,
}

/// A page of an export: JSON Lines, and where the next page starts.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    /// The lines, each ending in `\n`.
    pub text: Vec<u8>,
    /// Records in the page.
    pub records: u64,
    /// The position the next page starts at, if the range goes on.
    pub next: Option<u64>,
}

/// The stored tree, as proofs and the writer read it.
struct StoredTree<'a>(&'a Store);

impl Subtrees for StoredTree<'_> {
    type Error = StoreError;

    fn perfect(&self, level: u8, index: u64) -> StoreResult<Hash> {
        let meta = self.0.meta();
        if level >= NODE_MIN_LEVEL
            && let Some(v) = meta.get_stored(Cf::AuditLog, &node_key(level, index))?
        {
            return hash_of(body(&v)?);
        }
        if level > NODE_MIN_LEVEL {
            // A node row gone: its children still tell.
            return Ok(fsgate_auditlog::tree::node_hash(
                &self.perfect(level - 1, index * 2)?,
                &self.perfect(level - 1, index * 2 + 1)?,
            ));
        }
        // Within one block: hashed again from its leaves.
        let (start, count) = (index << level, 1u64 << level);
        let block = self.0.block(start / BLOCK_LEAVES)?;
        let from = usize::try_from(start % BLOCK_LEAVES).unwrap_or(usize::MAX);
        let leaves = usize::try_from(count)
            .ok()
            .and_then(|n| block.get(from..from + n))
            .ok_or_else(|| corrupt(format!("records #{start}.. have no leaf hashes")))?;
        let mut f = Frontier::new();
        for (_, leaf) in leaves {
            f.push(*leaf, |_, _, _| {});
        }
        Ok(f.root())
    }
}

impl Store {
    /// Records in the audit log (the next record's position).
    pub fn audit_log_size(&self) -> StoreResult<u64> {
        let mut it = self.meta().cursor(Cf::AuditLog)?;
        it.seek_for_prev(&key9(BLOCK, u64::MAX));
        let size = match (it.key(), it.value()) {
            (Some(k), Some(v)) if it.valid() && k.first() == Some(&BLOCK) => {
                let index = number(k).unwrap_or(0);
                index * BLOCK_LEAVES + entries(v)?.len() as u64
            }
            _ => 0,
        };
        it.status()?;
        Ok(size)
    }

    /// The records of block `index` (empty when there is none).
    pub(super) fn block(&self, index: u64) -> StoreResult<Vec<Entry>> {
        self.meta()
            .get_stored(Cf::AuditLog, &key9(BLOCK, index))?
            .map_or(Ok(Vec::new()), |v| entries(&v))
    }

    /// The root of the stored tree's first `size` records.
    pub fn audit_root_at(&self, size: u64) -> StoreResult<Hash> {
        Ok(Frontier::of(&StoredTree(self), size)?.root())
    }

    /// Up to `max` committed records' lines from position `from` on, with their positions.
    pub fn audit_lines(&self, from: u64, max: u64) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows = self.leaf_rows(from, from.saturating_add(max))?;
        let mut out = Vec::with_capacity(rows.len());
        for (seq, table_key, _) in rows {
            if let Some(v) = self.meta().get_stored(Cf::Audit, &table_key)?
                && let Some((&AUDIT_VALUE_VERSION, line)) = v.split_first()
            {
                out.push((seq, line.to_vec()));
            }
        }
        Ok(out)
    }

    /// Where delivery to audit target `name` stands: the position of the next record to send.
    pub fn audit_delivered(&self, name: &str) -> StoreResult<Option<u64>> {
        let mut key = vec![DELIVERED];
        key.extend_from_slice(name.as_bytes());
        self.meta()
            .get_stored(Cf::AuditLog, &key)?
            .map(|v| {
                body(&v)?
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("a delivery row is not 8 bytes"))
            })
            .transpose()
    }

    /// Records that audit target `name` has everything before position `next`.
    pub fn set_audit_delivered(&self, name: &str, next: u64) -> StoreResult<()> {
        let mut key = vec![DELIVERED];
        key.extend_from_slice(name.as_bytes());
        self.meta().commit_ops(
            &[Op::Put(Cf::AuditLog, key, row(&[&next.to_be_bytes()]))],
            true,
        )
    }

    /// The stored tree, to continue appending to.
    pub fn audit_log_tree(&self) -> StoreResult<Frontier> {
        Frontier::of(&StoredTree(self), self.audit_log_size()?)
    }

    /// The checkpoint of exactly `size` records, if one was signed.
    pub fn audit_checkpoint(&self, size: u64) -> StoreResult<Option<Checkpoint>> {
        self.meta()
            .get_stored(Cf::AuditLog, &key9(CHECKPOINT, size))?
            .map(|v| parse_checkpoint(&v))
            .transpose()
    }

    /// The latest signed checkpoint.
    pub fn latest_audit_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        self.checkpoint_near(u64::MAX, true)
    }

    /// The checkpoint of the largest size ≤ `size` (`before`), or the smallest ≥ `size`.
    fn checkpoint_near(&self, size: u64, before: bool) -> StoreResult<Option<Checkpoint>> {
        let mut it = self.meta().cursor(Cf::AuditLog)?;
        if before {
            it.seek_for_prev(&key9(CHECKPOINT, size));
        } else {
            it.seek(&key9(CHECKPOINT, size));
        }
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) if it.valid() && k.first() == Some(&CHECKPOINT) => {
                Some(parse_checkpoint(v)?)
            }
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    /// The size of the checkpoint signed last before `time_ns` (`before`), or first at or
    /// after it.
    fn checkpoint_size_at(&self, time_ns: u64, before: bool) -> StoreResult<Option<u64>> {
        let mut it = self.meta().cursor(Cf::AuditLog)?;
        if before {
            it.seek_for_prev(&key9(BY_TIME, time_ns.saturating_sub(1)));
        } else {
            it.seek(&key9(BY_TIME, time_ns));
        }
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) if it.valid() && k.first() == Some(&BY_TIME) => Some(
                body(v)?
                    .try_into()
                    .map(u64::from_be_bytes)
                    .map_err(|_| corrupt("a time row is not 8 bytes"))?,
            ),
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    /// The log positions covering records of `[since, until)` (ns; open ends are the log's).
    pub fn audit_log_range(&self, since: Option<u64>, until: Option<u64>) -> StoreResult<LogRange> {
        let latest = self.latest_audit_checkpoint()?.map_or(0, |c| c.size);
        let from = match since {
            Some(t) => self.checkpoint_size_at(t, true)?.unwrap_or(0),
            None => 0,
        };
        let to = match until {
            Some(t) => self.checkpoint_size_at(t, false)?.unwrap_or(latest),
            None => latest,
        };
        Ok(LogRange {
            from: from.min(to),
            to,
        })
    }

    /// A page of the export of positions `[from, to)`: on the `first` page, when `from` > 0
    /// (a checkpoint's size), the frontier of the records before it and its checkpoint; then
    /// the records from `from`, at most `max_records` of them, each interval between two
    /// checkpoints preceded by its leaf hashes and followed by its checkpoint. Pages join into
    /// one log: the next starts where this one stopped.
    pub fn audit_log_page(
        &self,
        from: u64,
        to: u64,
        max_records: u64,
        first: bool,
    ) -> StoreResult<LogPage> {
        let mut page = LogPage::default();
        let tree = StoredTree(self);
        if first && from > 0 {
            let cp = self.audit_checkpoint(from)?.ok_or_else(|| {
                StoreError::NotFound("a checkpoint of the export's first position".into())
            })?;
            let f = Frontier::of(&tree, from)?;
            page.text
                .extend_from_slice(FrontierPart::line(&f).as_bytes());
            page.text.push(b'\n');
            page.text.extend_from_slice(cp.to_line().as_bytes());
            page.text.push(b'\n');
        }
        let mut start = from;
        let mut taken = 0u64;
        while start < to && taken < max_records {
            let Some(cp) = self.checkpoint_near(start + 1, false)? else {
                break;
            };
            let end = cp.size.min(to).min(start + (max_records - taken));
            let rows = self.leaf_rows(start, end)?;
            let leaves: Vec<Hash> = rows.iter().map(|(_, _, l)| *l).collect();
            let first = rows.first().map_or(start, |(s, _, _)| *s);
            page.text
                .extend_from_slice(LeavesPart::line(first, &leaves).as_bytes());
            page.text.push(b'\n');
            for (_, table_key, _) in &rows {
                // A record whose row is gone is left out: the verifier names it missing.
                if let Some(v) = self.meta().get_stored(Cf::Audit, table_key)?
                    && let Some((&AUDIT_VALUE_VERSION, line)) = v.split_first()
                {
                    page.text.extend_from_slice(line);
                    page.text.push(b'\n');
                    page.records += 1;
                }
            }
            if end == cp.size {
                page.text.extend_from_slice(cp.to_line().as_bytes());
                page.text.push(b'\n');
            }
            taken += end - start;
            start = end;
        }
        page.next = (start < to).then_some(start);
        Ok(page)
    }

    /// The records of positions `[from, to)` the blocks hold: position, table key, leaf hash.
    fn leaf_rows(&self, from: u64, to: u64) -> StoreResult<Vec<(u64, [u8; 12], Hash)>> {
        let mut out = Vec::new();
        let mut it = self.meta().cursor(Cf::AuditLog)?;
        it.seek(&key9(BLOCK, from / BLOCK_LEAVES));
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some(index) = number(k).filter(|_| k.first() == Some(&BLOCK)) else {
                break;
            };
            let first = index * BLOCK_LEAVES;
            if first >= to {
                break;
            }
            for (i, (key, leaf)) in entries(v)?.into_iter().enumerate() {
                let seq = first + i as u64;
                if seq >= from && seq < to {
                    out.push((seq, key, leaf));
                }
            }
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// The proof that request `request_id`'s record is in the log: inclusion against the
    /// latest checkpoint, and consistency from the first checkpoint covering it to that one.
    pub fn audit_proof(&self, request_id: &str) -> StoreResult<ProofDoc> {
        let key =
            key_of_request_id(request_id).ok_or_else(|| StoreError::NotFound("request".into()))?;
        let v = self
            .meta()
            .get_stored(Cf::Audit, &key)?
            .ok_or_else(|| StoreError::NotFound("request".into()))?;
        let line = match v.split_first() {
            Some((&AUDIT_VALUE_VERSION, line)) => line,
            _ => {
                return Err(StoreError::NotFound(
                    "record in the log (it predates it)".into(),
                ));
            }
        };
        let seq = fsgate_auditlog::record::seq_of(line)
            .ok_or_else(|| corrupt("a record states no position"))?;
        let latest = self
            .latest_audit_checkpoint()?
            .filter(|c| c.size > seq)
            .ok_or_else(|| StoreError::NotFound("checkpoint covering the record".into()))?;
        let tree = StoredTree(self);
        let hexes = |v: Vec<Hash>| v.iter().map(hex::encode).collect::<Vec<_>>();
        let inclusion = hexes(inclusion_proof(&tree, seq, latest.size)?);
        let first = self
            .checkpoint_near(seq + 1, false)?
            .ok_or_else(|| StoreError::NotFound("checkpoint covering the record".into()))?;
        let consistency = if first.size < latest.size {
            Some(ConsistencyDoc {
                proof: hexes(consistency_proof(&tree, first.size, latest.size)?),
                old: first,
                new: latest.clone(),
            })
        } else {
            None
        };
        Ok(ProofDoc {
            request_id: request_id.to_owned(),
            seq,
            record: String::from_utf8_lossy(line).into_owned(),
            leaf_hash: hex::encode(leaf_hash(line)),
            checkpoint: latest,
            inclusion,
            consistency,
        })
    }

    /// The consistency proof between the checkpoints of sizes `old` and `new` (the latest when
    /// `None`).
    pub fn audit_consistency(&self, old: u64, new: Option<u64>) -> StoreResult<ConsistencyDoc> {
        let new = match new {
            Some(n) => self.audit_checkpoint(n)?,
            None => self.latest_audit_checkpoint()?,
        }
        .ok_or_else(|| StoreError::NotFound("checkpoint".into()))?;
        let old = self
            .audit_checkpoint(old)?
            .ok_or_else(|| StoreError::NotFound("checkpoint".into()))?;
        if old.size > new.size {
            return Err(StoreError::NotFound("checkpoint after the old one".into()));
        }
        let proof = consistency_proof(&StoredTree(self), old.size, new.size)?;
        Ok(ConsistencyDoc {
            old,
            new,
            proof: proof.iter().map(hex::encode).collect(),
        })
    }
}

pub(crate) fn parse_checkpoint(v: &[u8]) -> StoreResult<Checkpoint> {
    Checkpoint::from_line(body(v)?).map_err(|e| corrupt(format!("checkpoint: {e}")))
}
