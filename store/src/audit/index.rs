//! Secondary indexes of the audit table (`Cf::AuditIndex`), so that a query by principal,
//! bucket or object reads that principal's (bucket's, object's) records and nothing else:
//! the last 1,000 records of one principal among ten million are a few index rows and 1,000
//! point reads.
//!
//! Index rows are posting lists, written with each signed checkpoint (at least once a second
//! while records arrive) in the checkpoint's own batch: one row per principal, bucket and
//! object seen since the last one, so a busy server writes a few rows a second rather than
//! three per request (three per request cost a tenth of small-GET throughput). Until then the
//! postings wait in memory ([`PendingIndex`]), where queries read them too.
//!
//! Rows: kind (`p` principal, `b` bucket, `k` bucket/key) ‖ name length (u16 BE) ‖ name ‖ the
//! first (oldest) record key of the list (12 bytes: time ns ‖ sequence) → `[1]` ‖ the record
//! keys, ascending. `\xffposition` → `[1]` ‖ the log position (u64 BE) up to which records are
//! indexed: after a crash the records past it are indexed again when the writer starts, and a
//! store whose records predate the index (no such row) is indexed whole. A request id needs no
//! index: it is the table key.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{AuditFilter, decode_record};
use crate::Store;
use crate::error::StoreResult;
use crate::meta::{Cf, Op};
use crate::model::AuditRecord;

const PRINCIPAL: u8 = b'p';
const BUCKET: u8 = b'b';
const OBJECT: u8 = b'k';
/// The log position up to which records are indexed.
const POSITION: &[u8] = b"\xffposition";
const ROW_VERSION: u8 = 1;

/// The index prefix of one name: every row of `kind` for `name` (parts joined by `/`).
fn prefix(kind: u8, name: &[&str]) -> Vec<u8> {
    let len: usize = name.iter().map(|n| n.len()).sum::<usize>() + name.len().saturating_sub(1);
    let mut k = Vec::with_capacity(3 + len + 12);
    k.push(kind);
    k.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    for (i, n) in name.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(n.as_bytes());
    }
    k
}

/// A record's index prefixes, each preceded by its length (u16 BE), in one buffer (one
/// allocation, on the request's own thread, so the writer only copies bytes).
pub(super) fn prefixes_of(principal: &str, bucket: &str, key: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(15 + principal.len() + 2 * bucket.len() + key.len() + 1);
    let mut add = |kind: u8, parts: &[&str]| {
        let name_len = parts.iter().map(|n| n.len()).sum::<usize>() + parts.len() - 1;
        let name_len = u16::try_from(name_len).unwrap_or(u16::MAX);
        out.extend_from_slice(&(name_len.saturating_add(3)).to_be_bytes());
        out.push(kind);
        out.extend_from_slice(&name_len.to_be_bytes());
        for (i, n) in parts.iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(n.as_bytes());
        }
    };
    if !principal.is_empty() {
        add(PRINCIPAL, &[principal]);
    }
    if !bucket.is_empty() {
        add(BUCKET, &[bucket]);
        if !key.is_empty() {
            add(OBJECT, &[bucket, key]);
        }
    }
    out
}

/// The prefixes of a [`prefixes_of`] buffer.
fn each_prefix(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let (p, more) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
        rest = more;
        Some(p)
    })
}

/// Record keys by index prefix. Hashed with foldhash, seeded at random per process: each
/// record costs three lookups on the writer thread, where SipHash was a measurable share.
type Lists = HashMap<Vec<u8>, Vec<[u8; 12]>, foldhash::fast::RandomState>;

/// Postings not yet written: record keys by index prefix.
#[derive(Debug, Default)]
pub struct PendingIndex(Mutex<Lists>);

impl PendingIndex {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lists> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds one record (its prefixes buffer and table key).
    pub(super) fn add(&self, prefixes: &[u8], key: [u8; 12]) {
        let mut m = self.lock();
        for p in each_prefix(prefixes) {
            match m.get_mut(p) {
                Some(list) => list.push(key),
                None => {
                    m.insert(p.to_vec(), vec![key]);
                }
            }
        }
    }

    /// Every pending posting list as rows to write, with the position they index up to. The
    /// lists stay (queries read them) until [`PendingIndex::clear`], once the rows committed.
    pub(super) fn ops(&self, position: u64) -> Vec<Op> {
        let m = self.lock();
        let mut ops = rows(m.iter().map(|(k, v)| (k.clone(), v.clone())));
        ops.push(position_op(position));
        ops
    }

    /// Forgets the lists written.
    pub(super) fn clear(&self) {
        self.lock().clear();
    }

    fn keys(&self, prefix: &[u8]) -> Vec<[u8; 12]> {
        self.lock().get(prefix).cloned().unwrap_or_default()
    }
}

/// Posting rows for lists of record keys by prefix.
fn rows(lists: impl Iterator<Item = (Vec<u8>, Vec<[u8; 12]>)>) -> Vec<Op> {
    lists
        .filter_map(|(mut key, mut list)| {
            list.sort_unstable();
            let first = list.first()?;
            key.extend_from_slice(first);
            let mut v = Vec::with_capacity(1 + 12 * list.len());
            v.push(ROW_VERSION);
            for k in &list {
                v.extend_from_slice(k);
            }
            Some(Op::Put(Cf::AuditIndex, key, v))
        })
        .collect()
}

fn position_op(position: u64) -> Op {
    let mut v = vec![ROW_VERSION];
    v.extend_from_slice(&position.to_be_bytes());
    Op::Put(Cf::AuditIndex, POSITION.to_vec(), v)
}

fn time_of(key: &[u8]) -> u64 {
    key.first_chunk::<8>().map_or(0, |b| u64::from_be_bytes(*b))
}

impl Store {
    /// Indexes what the postings written so far do not cover: every record of the table when
    /// an older version wrote them without an index, or the records past the last indexed
    /// position after a crash. Returns how many it indexed.
    pub(super) fn catch_up_audit_index(&self) -> StoreResult<u64> {
        let position = self
            .meta()
            .get_stored(Cf::AuditIndex, POSITION)?
            .and_then(|v| v.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()))
            .map(u64::from_be_bytes);
        let size = self.audit_log_size()?;
        let mut lists: HashMap<Vec<u8>, Vec<[u8; 12]>> = HashMap::new();
        let mut n = 0u64;
        let mut add = |r: &AuditRecord, key: [u8; 12]| {
            for p in each_prefix(&prefixes_of(&r.principal, &r.bucket, &r.key)) {
                lists.entry(p.to_vec()).or_default().push(key);
            }
            n += 1;
        };
        match position {
            // Never indexed: the whole table (records older than the log included).
            None => {
                let mut it = self.meta().cursor(Cf::Audit)?;
                it.seek_to_first();
                while it.valid() {
                    if let (Some(k), Some(v)) = (it.key(), it.value())
                        && let (Ok(key), Ok(r)) = (<[u8; 12]>::try_from(k), decode_record(v))
                    {
                        add(&r, key);
                    }
                    it.next();
                }
                it.status()?;
            }
            Some(mut from) => {
                while from < size {
                    let lines = self.audit_lines(from, 10_000)?;
                    let Some((last, _)) = lines.last() else {
                        break;
                    };
                    from = last + 1;
                    for (_, line) in lines {
                        if let Ok(r) = fsgate_auditlog::record::parse(&line)
                            && let Some(key) = super::key_of_request_id(&r.request_id)
                        {
                            add(&AuditRecord::from(r), key);
                        }
                    }
                }
            }
        }
        if n == 0 && position.is_some() {
            return Ok(0);
        }
        let mut ops = rows(lists.into_iter());
        ops.push(position_op(size));
        for chunk in ops.chunks(10_000) {
            self.meta().commit_ops(chunk, true)?;
        }
        Ok(n)
    }

    /// Answers `f` from an index when it names an object, a principal or a bucket (oldest
    /// first, the most recent `limit`); `None` when it names none of them (the caller scans
    /// the table by time).
    pub(super) fn query_audit_indexed(
        &self,
        f: &AuditFilter,
        limit: usize,
    ) -> StoreResult<Option<Vec<AuditRecord>>> {
        let name = match (&f.bucket, &f.key, &f.principal) {
            (Some(b), Some(k), _) => prefix(OBJECT, &[b, k]),
            (_, _, Some(p)) => prefix(PRINCIPAL, &[p]),
            (Some(b), _, _) => prefix(BUCKET, &[b]),
            _ => return Ok(None),
        };
        let since = f.since_ns.unwrap_or(0);
        let until = f.until_ns.unwrap_or(u64::MAX);
        let mut out = Vec::new();
        // A list being written is read both from memory and from its row for a moment.
        let mut seen = std::collections::HashSet::new();
        // Newest first: the postings not yet written, then the rows from the end back.
        let mut take = |keys: &mut dyn Iterator<Item = [u8; 12]>| -> StoreResult<bool> {
            for k in keys {
                let t = time_of(&k);
                if t >= until || t < since || !seen.insert(k) {
                    continue;
                }
                if let Some(v) = self.meta().get_stored(Cf::Audit, &k)? {
                    let r = decode_record(&v)?;
                    if f.matches(&r) {
                        out.push(r);
                        if out.len() >= limit {
                            return Ok(true);
                        }
                    }
                }
            }
            Ok(false)
        };
        let mut pending = self.audit_pending.keys(&name);
        pending.sort_unstable();
        let mut done = take(&mut pending.into_iter().rev())?;
        let mut it = self.meta().cursor(Cf::AuditIndex)?;
        let mut start = name.clone();
        start.extend_from_slice(&until.saturating_sub(1).to_be_bytes());
        start.extend_from_slice(&[0xff; 4]);
        it.seek_for_prev(&start);
        while !done && it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let Some(first) = k.strip_prefix(name.as_slice()).filter(|r| r.len() == 12) else {
                break;
            };
            let first_t = time_of(first);
            let keys: Vec<[u8; 12]> = v
                .get(1..)
                .unwrap_or_default()
                .chunks_exact(12)
                .filter_map(|c| <[u8; 12]>::try_from(c).ok())
                .collect();
            done = take(&mut keys.into_iter().rev())?;
            if first_t < since {
                break;
            }
            it.prev();
        }
        it.status()?;
        out.sort_by_key(|r| r.time_ns);
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_the_query_prefixes() {
        let buf = prefixes_of("alice", "b", "k/1");
        let got: Vec<&[u8]> = each_prefix(&buf).collect();
        assert_eq!(
            got,
            vec![
                prefix(PRINCIPAL, &["alice"]).as_slice(),
                prefix(BUCKET, &["b"]).as_slice(),
                prefix(OBJECT, &["b", "k/1"]).as_slice()
            ]
        );
        assert_eq!(each_prefix(&prefixes_of("", "", "")).count(), 0);
    }
}
