//! An audit record as a line of the log: compact JSON whose bytes are the Merkle leaf.
//!
//! The writer stores each record's line as it hashed it, and exports it unchanged, so a
//! verifier hashes the line it reads and never re-encodes anything. A line begins with its
//! position in the log, `{"seq":N,`, then the fields in [`Record`]'s order.

use serde::{Deserialize, Serialize};

/// One audit record. `S` is the string type (`&str` when encoding a request's record without
/// copying it, `String` when reading), `P` the list of deciding policy ids.
///
/// Fields that are often empty (keys, versions, error codes, trace ids) are left out of the
/// line when they are, and read back empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "S: Serialize + AsRef<str>, P: Serialize",
    deserialize = "S: Deserialize<'de> + Default, P: Deserialize<'de> + Default"
))]
pub struct Record<S = String, P = Vec<String>> {
    /// Position in the log (from 0). Not encoded by `Serialize`: the writer puts it in front
    /// when it appends the record ([`line()`]).
    #[serde(default, skip_serializing)]
    pub seq: u64,
    /// When the request arrived, RFC 3339 with nanoseconds.
    pub time: S,
    /// The request id (`x-amz-request-id`).
    pub request_id: S,
    /// Who: the user, session or service account; `-` when unauthenticated.
    pub principal: S,
    /// The access key used (or claimed, when the signature did not verify).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub access_key: S,
    /// How the request authenticated: `sigv4`, `presigned`, `bearer`, `anonymous`, ...
    pub auth: S,
    /// The client's address.
    pub source_ip: S,
    /// The client's `User-Agent`.
    pub user_agent: S,
    /// The Cedar action (`s3:GetObject`, `admin:AddUser`, ...) or the route when none applied.
    pub action: S,
    /// The bucket, if any.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub bucket: S,
    /// The object key, if any.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub key: S,
    /// The version addressed, if any.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub version_id: S,
    /// `allow`, `deny`, or empty when no decision was made (the request failed before).
    pub decision: S,
    /// The ids of the policies that decided.
    pub policies: P,
    /// The HTTP status sent.
    pub status: u16,
    /// The S3 error code sent, if any.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub error_code: S,
    /// Request body bytes received.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// From arrival to the last byte sent, in microseconds.
    pub duration_us: u64,
    /// The W3C trace id of the request's trace, when traced.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub trace_id: S,
}

fn is_empty<S: AsRef<str>>(s: &S) -> bool {
    s.as_ref().is_empty()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A record as read back from a line.
pub type OwnedRecord = Record<String, Vec<String>>;

/// What a line begins with when it holds a record.
pub const RECORD_PREFIX: &[u8] = b"{\"seq\":";

/// The line of the record whose JSON (without `seq`, as `serde_json::to_vec(&record)` gives
/// it) is `body`, at position `seq`: the bytes that are stored, hashed and exported.
#[must_use]
pub fn line(seq: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_PREFIX.len() + 21 + body.len());
    line_into(&mut out, seq, body);
    out
}

/// Appends [`line()`]'s bytes to `out`.
pub fn line_into(out: &mut Vec<u8>, seq: u64, body: &[u8]) {
    let rest = body.strip_prefix(b"{").unwrap_or(body);
    out.extend_from_slice(RECORD_PREFIX);
    let mut digits = [0u8; 20];
    let mut n = seq;
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or_default());
    if rest != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(rest);
}

/// The position a record line states, read without parsing the line when it is in the
/// writer's form; `None` for a line that states none.
#[must_use]
pub fn seq_of(line: &[u8]) -> Option<u64> {
    if let Some(rest) = line.strip_prefix(RECORD_PREFIX) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 && digits <= 20 && rest.get(digits) == Some(&b',') {
            return std::str::from_utf8(rest.get(..digits)?).ok()?.parse().ok();
        }
    }
    // Not the writer's form (fields moved, spaces added): still a record if it says so.
    #[derive(Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    serde_json::from_slice::<SeqOnly>(line).ok().map(|s| s.seq)
}

/// Parses a record line.
pub fn parse(line: &[u8]) -> Result<OwnedRecord, serde_json::Error> {
    serde_json::from_slice(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_starts_with_its_position_and_reads_back() {
        let policies = ["p1".to_owned()];
        let r: Record<&str, &[String]> = Record {
            time: "2026-12-07T04:38:57.123456789Z",
            request_id: "0018a",
            principal: "alice",
            action: "s3:GetObject",
            policies: &policies,
            status: 200,
            ..Default::default()
        };
        let body = serde_json::to_vec(&r).unwrap_or_default();
        let l = line(42, &body);
        assert!(l.starts_with(b"{\"seq\":42,\"time\":\"2026-12-07T04:38:57.123456789Z\""));
        assert_eq!(seq_of(&l), Some(42));
        let back = parse(&l).unwrap_or_default();
        assert_eq!((back.seq, back.principal.as_str()), (42, "alice"));
        assert_eq!(back.policies, vec!["p1".to_owned()]);
        // A line rewritten with its fields in another order still states its position.
        let moved = br#"{"time":"t","seq":7}"#;
        assert_eq!(seq_of(moved), Some(7));
        assert_eq!(seq_of(b"{\"seq\":x}"), None);
        assert_eq!(seq_of(b"not json"), None);
    }
}
