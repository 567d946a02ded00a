//! The audit log: one record per request, in two shapes at once.
//!
//! - The **table** (`Cf::Audit`, this file): records keyed by time (the request id), for
//!   queries by time, principal, bucket and key.
//! - The **log** (`Cf::AuditLog`, `log.rs`): the same records as an append-only RFC 6962
//!   Merkle tree — each record's position, its leaf hash, the tree's perfect subtrees, and an
//!   Ed25519-signed checkpoint at least every second while records arrive — from which exports
//!   and proofs are read, and which `fsctl audit verify` checks offline.
//!
//! - The **indexes** (`Cf::AuditIndex`, `index.rs`): posting lists of record keys by
//!   principal, bucket and object, written with each checkpoint, so queries by them read only
//!   their own records.
//!
//! A record's stored value is its log line (`fsgate_auditlog::record`): the bytes that were
//! hashed are the bytes that are kept and exported. Records are written by one thread
//! (`writer.rs`) in group-committed batches; a record, its place in the tree and any
//! checkpoint are one atomic, synced write.

mod index;
pub(crate) mod log;
mod writer;

pub use self::index::PendingIndex;
pub use self::log::{LogPage, LogRange, NODE_MIN_LEVEL};
pub use self::writer::{AuditStats, AuditWriter, QueueFull};

use crate::Store;
use crate::error::{StoreError, StoreResult};
use crate::meta::Cf;
use crate::model::{AuditEntry, AuditRecord};

/// Parses a request id (24 hex chars) into the 12-byte audit key.
#[must_use]
pub fn key_of_request_id(id: &str) -> Option<[u8; 12]> {
    let mut out = [0u8; 12];
    hex::decode_to_slice(id, &mut out).ok()?;
    Some(out)
}

/// Builds a request id from arrival time and a sequence number.
#[must_use]
pub fn request_id(time_ns: u64, seq: u32) -> String {
    format!("{time_ns:016x}{seq:08x}")
}

/// A query over the audit table.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Records at or after this time (ns).
    pub since_ns: Option<u64>,
    /// Records before this time (ns).
    pub until_ns: Option<u64>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this bucket.
    pub bucket: Option<String>,
    /// Only this key.
    pub key: Option<String>,
    /// Only `allow` or `deny`.
    pub decision: Option<String>,
    /// Only the record of this request id.
    pub request_id: Option<String>,
    /// At most this many (the most recent ones).
    pub limit: usize,
}

impl AuditFilter {
    /// Whether `r` passes every field of the filter but the time range.
    #[must_use]
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.principal.as_ref().is_none_or(|p| &r.principal == p)
            && self.bucket.as_ref().is_none_or(|b| &r.bucket == b)
            && self.key.as_ref().is_none_or(|k| &r.key == k)
            && self.decision.as_ref().is_none_or(|d| &r.decision == d)
            && self
                .request_id
                .as_ref()
                .is_none_or(|id| &r.request_id == id)
    }
}

/// Bytes reserved for a record's JSON (most are 250-450).
const RECORD_CAPACITY: usize = 512;

/// Audit values are version 3 since records are log lines (JSON); versions 2 (with a trace id)
/// and 1 (without), written before the log, still read.
const AUDIT_VALUE_VERSION: u8 = 3;

/// Reads a stored record.
pub(crate) fn decode_record(v: &[u8]) -> StoreResult<AuditRecord> {
    use crate::meta::codec::decode_body;
    match v.split_first() {
        Some((&AUDIT_VALUE_VERSION, line)) => fsgate_auditlog::record::parse(line)
            .map(AuditRecord::from)
            .map_err(|e| StoreError::Corrupt {
                what: "audit",
                detail: e.to_string(),
            }),
        Some((2, body)) => decode_body("audit", body),
        Some((1, body)) => {
            decode_body::<crate::model::AuditRecordV1>("audit", body).map(Into::into)
        }
        Some((other, _)) => Err(StoreError::Corrupt {
            what: "audit",
            detail: format!("unknown value version {other}"),
        }),
        None => Err(StoreError::Corrupt {
            what: "audit",
            detail: "empty value".into(),
        }),
    }
}

/// An audit record encoded for the log: its table key and its JSON without a position (the
/// writer puts the position in front). Senders encode their records on their own threads, so
/// the writer only appends bytes, and a record's strings are freed by the thread that
/// allocated them.
#[derive(Debug)]
pub struct EncodedRecord {
    time_ns: u64,
    key: [u8; 12],
    body: Vec<u8>,
    /// Its index prefixes (`index::prefixes_of`).
    index: Vec<u8>,
}

impl EncodedRecord {
    /// Encodes `r`; fails only on a request id that is not 24 hex digits.
    pub fn new(r: &AuditEntry<'_>) -> StoreResult<Self> {
        let key = key_of_request_id(r.request_id).ok_or_else(|| StoreError::Corrupt {
            what: "audit request id",
            detail: r.request_id.to_owned(),
        })?;
        let time = fsgate_auditlog::checkpoint::rfc3339_nanos(r.time_ns);
        // Sized for a typical record, so the encoding does not grow the buffer as it goes.
        let mut body = Vec::with_capacity(RECORD_CAPACITY);
        serde_json::to_writer(&mut body, &r.log_record(&time)).map_err(|e| {
            StoreError::Corrupt {
                what: "audit record",
                detail: e.to_string(),
            }
        })?;
        Ok(Self {
            time_ns: r.time_ns,
            key,
            body,
            index: index::prefixes_of(r.principal, r.bucket, r.key),
        })
    }
}

impl Store {
    /// Records matching `f`, oldest first (the most recent `limit` of them): one point read
    /// for a request id, an index for a principal, bucket or object, the table by time
    /// otherwise.
    pub fn query_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let limit = if f.limit == 0 { usize::MAX } else { f.limit };
        if let Some(id) = &f.request_id {
            let Some(key) = key_of_request_id(id) else {
                return Ok(Vec::new());
            };
            let Some(v) = self.meta().get_stored(Cf::Audit, &key)? else {
                return Ok(Vec::new());
            };
            let r = decode_record(&v)?;
            let t = r.time_ns;
            let in_range = f.since_ns.is_none_or(|s| t >= s) && f.until_ns.is_none_or(|u| t < u);
            return Ok(if in_range && f.matches(&r) {
                vec![r]
            } else {
                Vec::new()
            });
        }
        if let Some(out) = self.query_audit_indexed(f, limit)? {
            return Ok(out);
        }
        let mut it = self.meta().cursor(Cf::Audit)?;
        match f.until_ns {
            Some(until) => {
                it.seek_for_prev(
                    until
                        .saturating_sub(1)
                        .to_be_bytes()
                        .iter()
                        .chain(&[0xff; 4])
                        .copied()
                        .collect::<Vec<u8>>()
                        .as_slice(),
                );
            }
            None => it.seek_to_last(),
        }
        let since = f.since_ns.unwrap_or(0);
        let mut out = Vec::new();
        while it.valid() && out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let t = k
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if t < since {
                break;
            }
            let r = decode_record(v)?;
            if f.matches(&r) {
                out.push(r);
            }
            it.prev();
        }
        it.status()?;
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_every_version_read() {
        let old = crate::model::AuditRecordV1 {
            time_ns: 7,
            request_id: "r".into(),
            principal: "alice".into(),
            version_id: "v".into(),
            ..Default::default()
        };
        let bytes = crate::meta::codec::encode_version(1, &old).unwrap();
        let r = decode_record(&bytes).unwrap();
        assert_eq!(
            (r.time_ns, r.principal.as_str(), r.version_id.as_str()),
            (7, "alice", "v")
        );
        assert!(r.trace_id.is_empty());
        let v2 = AuditRecord {
            trace_id: "abc".into(),
            ..r
        };
        let bytes = crate::meta::codec::encode_version(2, &v2).unwrap();
        assert_eq!(decode_record(&bytes).unwrap(), v2);
        // Version 3: the log line the writer makes from the borrowed form reads back whole.
        let valid = AuditRecord {
            time_ns: 1_800_000_000_123_456_789,
            request_id: request_id(7, 1),
            policies: vec!["p1".into(), "p2".into()],
            ..v2.clone()
        };
        let entry = EncodedRecord::new(&AuditEntry::from(&valid)).unwrap();
        let mut value = vec![AUDIT_VALUE_VERSION];
        value.extend_from_slice(&fsgate_auditlog::record::line(5, &entry.body));
        assert_eq!(decode_record(&value).unwrap(), valid);
        assert!(decode_record(&[9, 1, 2]).is_err());
        assert!(decode_record(&[3, b'{']).is_err());
        assert!(decode_record(&[]).is_err());
    }
}
