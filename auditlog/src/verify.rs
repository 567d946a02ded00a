//! The log verifier: reads an exported log line by line, rebuilds the Merkle tree from the
//! record lines' bytes, checks every checkpoint's signature and root against it, and reports
//! the first inconsistency — which record, and what kind of tampering it shows.
//!
//! A log (or an export of a part of it) is JSON Lines of three kinds, in this order:
//! - `{"frontier":{"size":N,"hashes":[...]}}` first when the part starts at record N > 0: the
//!   perfect subtrees of the records before it, confirmed by the checkpoint of size N that
//!   follows it;
//! - record lines ([`crate::record`]), by position, each interval between two checkpoints
//!   optionally after a `{"leaves":{"from":N,"hashes":[...]}}` line: the leaf hashes the
//!   writer stored. They prove nothing by themselves; when they hash to the signed root and a
//!   record does not hash to its leaf, that record is the one changed, named exactly;
//! - checkpoint lines ([`crate::checkpoint`]), each right after the record that brings the
//!   tree to its size.
//!
//! Every record must be covered by a checkpoint: records after the last one are reported as
//! truncated (an export always ends with a checkpoint).

use std::collections::HashSet;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{CHECKPOINT_PREFIX, Checkpoint, PublicKey};
use crate::record;
use crate::tree::{Frontier, Hash, hashes_from_hex, leaf_hash};

/// What a frontier line begins with.
pub const FRONTIER_PREFIX: &[u8] = b"{\"frontier\":";

/// What a leaf-hints line begins with.
pub const LEAVES_PREFIX: &[u8] = b"{\"leaves\":";

/// Records read after a break in the order before deciding what kind it is.
const WINDOW: usize = 100_000;

/// The kind of an inconsistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A record's bytes differ from what was signed.
    Changed,
    /// A record is absent.
    Missing,
    /// A record (or line) is present that the log did not hold, or holds twice.
    Inserted,
    /// Records or checkpoints are out of order.
    Reordered,
    /// The log ends before what its checkpoints cover, or its last records are not covered.
    Truncated,
    /// A checkpoint's signature does not verify with the key, or it is signed by another key.
    BadSignature,
    /// A proof does not prove what it states.
    BadProof,
}

/// The first inconsistency found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind.
    pub kind: Kind,
    /// The position of the record concerned, when one is.
    pub record: Option<u64>,
    /// The line of the file it was found on (from 1).
    pub line: u64,
    /// What was found, for a person.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// No inconsistency.
    pub ok: bool,
    /// Record lines read.
    pub records: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints: u64,
    /// The first inconsistency, if any.
    pub first_error: Option<Finding>,
    /// Position after the last record read (the tree's size).
    pub tree_size: u64,
    /// The last verified checkpoint's root, hex.
    pub root: Option<String>,
    /// The verifying key's id.
    pub key_id: String,
}

#[derive(Deserialize)]
struct FrontierLine {
    frontier: FrontierPart,
}

/// A frontier line's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrontierPart {
    /// Records before the part.
    pub size: u64,
    /// Their perfect subtrees' hashes, largest first, hex.
    pub hashes: Vec<String>,
}

impl FrontierPart {
    /// The line of a frontier.
    #[must_use]
    pub fn line(f: &Frontier) -> String {
        let part = Self {
            size: f.size(),
            hashes: f.hashes().iter().map(hex::encode).collect(),
        };
        format!(
            "{{\"frontier\":{}}}",
            serde_json::to_string(&part).unwrap_or_default()
        )
    }
}

#[derive(Deserialize)]
struct LeavesLine {
    leaves: LeavesPart,
}

/// A leaf-hints line's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeavesPart {
    /// The position of the first record hinted.
    pub from: u64,
    /// The stored leaf hashes of records `from..`, hex.
    pub hashes: Vec<String>,
}

impl LeavesPart {
    /// The line of the leaf hashes of records `from..`.
    #[must_use]
    pub fn line(from: u64, leaves: &[Hash]) -> String {
        let part = Self {
            from,
            hashes: leaves.iter().map(hex::encode).collect(),
        };
        format!(
            "{{\"leaves\":{}}}",
            serde_json::to_string(&part).unwrap_or_default()
        )
    }
}

/// The interval's leaf hints, and the first record that did not match them.
#[derive(Default)]
struct Hints {
    from: u64,
    hashes: Vec<Hash>,
    /// The tree before the interval's first record.
    before: Frontier,
    /// The first record whose leaf differs from its hint: position and line.
    suspect: Option<(u64, u64, Vec<u8>)>,
}

struct Pending {
    expected: u64,
    line: u64,
    seqs: Vec<u64>,
}

/// Verifies a log fed to it line by line.
pub struct Verifier {
    key: PublicKey,
    tree: Frontier,
    started: bool,
    records: u64,
    checkpoints: u64,
    line: u64,
    interval_start: u64,
    interval_first: Option<Vec<u8>>,
    last_cp: Option<(u64, i128, u64)>,
    last_root: Option<String>,
    covered: u64,
    frontier_unconfirmed: Option<(u64, u64)>,
    pending: Option<Pending>,
    short: Option<(u64, u64)>,
    hints: Option<Hints>,
    error: Option<Finding>,
}

impl Verifier {
    /// A verifier of checkpoints signed by `key`.
    #[must_use]
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            tree: Frontier::new(),
            started: false,
            records: 0,
            checkpoints: 0,
            line: 0,
            interval_start: 0,
            interval_first: None,
            last_cp: None,
            last_root: None,
            covered: 0,
            frontier_unconfirmed: None,
            pending: None,
            short: None,
            hints: None,
            error: None,
        }
    }

    /// True once an inconsistency is found (later lines are not read).
    #[must_use]
    pub fn failed(&self) -> bool {
        self.error.is_some()
    }

    fn fail(&mut self, kind: Kind, record: Option<u64>, line: u64, detail: String) {
        if self.error.is_none() {
            self.error = Some(Finding {
                kind,
                record,
                line,
                detail,
            });
        }
    }

    /// Reads one line (without its newline).
    pub fn push_line(&mut self, line: &[u8]) {
        if self.error.is_some() {
            return;
        }
        self.line += 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if line.starts_with(CHECKPOINT_PREFIX) {
            self.checkpoint(line);
        } else if line.starts_with(FRONTIER_PREFIX) {
            self.frontier(line);
        } else if line.starts_with(LEAVES_PREFIX) {
            self.leaves(line);
        } else if let Some(seq) = record::seq_of(line) {
            self.record(seq, line);
        } else if Checkpoint::from_line(line).is_ok() {
            self.checkpoint(line);
        } else {
            let at = self.tree.size();
            let n = self.line;
            self.fail(
                Kind::Changed,
                Some(at),
                n,
                format!("line {n} is neither a record nor a checkpoint of the log"),
            );
        }
    }

    fn record(&mut self, seq: u64, line: &[u8]) {
        self.started = true;
        let n = self.line;
        if let Some((size, at)) = self.short.take() {
            let have = self.tree.size();
            if seq == have {
                self.fail(
                    Kind::Reordered,
                    Some(have),
                    at,
                    format!(
                        "the checkpoint of size {size} on line {at} comes before record #{have}, which it covers"
                    ),
                );
                return;
            }
            self.fail(
                Kind::Missing,
                Some(have),
                at,
                format!(
                    "record #{have} is missing: the checkpoint on line {at} covers {size} records, but only {have} come before it"
                ),
            );
            return;
        }
        if let Some(p) = &mut self.pending {
            p.seqs.push(seq);
            if p.seqs.len() >= WINDOW {
                self.classify();
            }
            return;
        }
        let expected = self.tree.size();
        if seq != expected {
            if seq < expected {
                self.fail(
                    Kind::Inserted,
                    Some(seq),
                    n,
                    format!(
                        "line {n} holds a second record #{seq} (record #{expected} was expected)"
                    ),
                );
            } else {
                self.pending = Some(Pending {
                    expected,
                    line: n,
                    seqs: vec![seq],
                });
            }
            return;
        }
        if self.interval_first.is_none() {
            self.interval_first = Some(line.to_vec());
        }
        let leaf = leaf_hash(line);
        if let Some(h) = &mut self.hints
            && h.suspect.is_none()
            && seq >= h.from
            && usize::try_from(seq - h.from)
                .ok()
                .and_then(|i| h.hashes.get(i))
                .is_some_and(|hint| *hint != leaf)
        {
            h.suspect = Some((seq, n, line.to_vec()));
        }
        self.tree.push(leaf, |_, _, _| {});
        self.records += 1;
    }

    /// Decides what a break in the order was, from the positions read since.
    fn classify(&mut self) {
        let Some(p) = self.pending.take() else {
            return;
        };
        let e = p.expected;
        let mut seen = HashSet::with_capacity(p.seqs.len());
        for &s in &p.seqs {
            if s < e || !seen.insert(s) {
                self.fail(
                    Kind::Inserted,
                    Some(s),
                    p.line,
                    format!("record #{s} appears twice"),
                );
                return;
            }
        }
        let end = e + p.seqs.len() as u64;
        if !seen.contains(&e) {
            let first = p.seqs.first().copied().unwrap_or(e);
            self.fail(
                Kind::Missing,
                Some(e),
                p.line,
                format!(
                    "record #{e} is missing: line {} holds record #{first}",
                    p.line
                ),
            );
        } else if let Some(&x) = p.seqs.iter().find(|&&s| s >= end) {
            self.fail(
                Kind::Inserted,
                Some(x),
                p.line,
                format!(
                    "line {} holds a record #{x} that does not belong between records #{} and #{}",
                    p.line,
                    e.saturating_sub(1),
                    e
                ),
            );
        } else {
            let first = p.seqs.first().copied().unwrap_or(e);
            self.fail(
                Kind::Reordered,
                Some(e),
                p.line,
                format!(
                    "records are out of order: line {} holds record #{first} where record #{e} belongs",
                    p.line
                ),
            );
        }
    }

    fn checkpoint(&mut self, line: &[u8]) {
        let n = self.line;
        self.started = true;
        if self.pending.is_some() {
            // After a break in the order the tree is wrong anyway: the records that follow,
            // across checkpoints, tell what the break was.
            return;
        }
        let cp = match Checkpoint::from_line(line) {
            Ok(cp) => cp,
            Err(e) => {
                self.fail(
                    Kind::BadSignature,
                    None,
                    n,
                    format!("the checkpoint on line {n} cannot be read: {e}"),
                );
                return;
            }
        };
        if let Err(e) = cp.verify(&self.key) {
            self.fail(
                Kind::BadSignature,
                None,
                n,
                format!("the checkpoint of size {} on line {n}: {e}", cp.size),
            );
            return;
        }
        let Ok(time) = cp.time_ns() else {
            self.fail(Kind::BadSignature, None, n, "unreadable time".into());
            return;
        };
        self.checkpoints += 1;
        if let Some((size, t, at)) = self.last_cp
            && (cp.size < size || time < t)
        {
            self.fail(
                Kind::Reordered,
                None,
                n,
                format!(
                    "the checkpoint of size {} ({}) on line {n} comes after the one of size {size} on line {at}",
                    cp.size, cp.time
                ),
            );
            return;
        }
        if let Some((fsize, at)) = self.frontier_unconfirmed
            && cp.size != fsize
        {
            self.fail(
                Kind::Changed,
                Some(fsize),
                at,
                format!(
                    "the export starts at record #{fsize}, but the checkpoint after its frontier is of size {}",
                    cp.size
                ),
            );
            return;
        }
        let have = self.tree.size();
        if cp.size > have {
            if self.short.is_none() {
                self.short = Some((cp.size, n));
            }
            return;
        }
        if cp.size < have {
            self.fail(
                Kind::Inserted,
                Some(cp.size),
                n,
                format!(
                    "the checkpoint on line {n} covers {} records, but {have} come before it: records #{}..#{} were inserted",
                    cp.size,
                    cp.size,
                    have - 1
                ),
            );
            return;
        }
        let root: Hash = match cp.root_hash() {
            Ok(r) => r,
            Err(e) => {
                self.fail(Kind::BadSignature, None, n, e.to_string());
                return;
            }
        };
        if self.tree.root() != root {
            let start = self.interval_start;
            if let Some((fsize, at)) = self.frontier_unconfirmed {
                self.fail(
                    Kind::Changed,
                    Some(fsize),
                    at,
                    format!(
                        "the frontier on line {at} does not hash to the root signed at size {fsize}"
                    ),
                );
                return;
            }
            if let Some(found) = self.changed_record(cp.size, &root) {
                let (seq, at, id) = found;
                self.fail(
                    Kind::Changed,
                    Some(seq),
                    at,
                    format!(
                        "record #{seq} (request {id}) on line {at} was changed: it does not hash to the leaf that the root signed at size {} (line {n}) holds",
                        cp.size
                    ),
                );
                return;
            }
            let first_id = self
                .interval_first
                .as_deref()
                .and_then(|l| record::parse(l).ok())
                .map(|r| r.request_id)
                .unwrap_or_default();
            self.fail(
                Kind::Changed,
                Some(start),
                n,
                format!(
                    "records #{start}..#{} do not hash to the root signed at size {} on line {n}: at least one of them was changed (the first is request {first_id})",
                    cp.size.saturating_sub(1),
                    cp.size
                ),
            );
            return;
        }
        self.frontier_unconfirmed = None;
        self.hints = None;
        self.interval_start = cp.size;
        self.interval_first = None;
        self.covered = cp.size;
        self.last_cp = Some((cp.size, time, n));
        self.last_root = Some(cp.root);
    }

    /// When the interval's leaf hints hash to the signed root, the first record that did not
    /// match its hint: position, line number and request id.
    fn changed_record(&self, size: u64, root: &Hash) -> Option<(u64, u64, String)> {
        let h = self.hints.as_ref()?;
        if h.from != self.interval_start || h.from + h.hashes.len() as u64 != size {
            return None;
        }
        let mut t = h.before.clone();
        for leaf in &h.hashes {
            t.push(*leaf, |_, _, _| {});
        }
        if t.root() != *root {
            return None;
        }
        let (seq, at, line) = h.suspect.as_ref()?;
        let id = record::parse(line)
            .map(|r| r.request_id)
            .unwrap_or_else(|_| "unreadable".into());
        Some((*seq, *at, id))
    }

    fn leaves(&mut self, line: &[u8]) {
        let n = self.line;
        let parsed = parse_leaves_fast(line).or_else(|| {
            serde_json::from_slice::<LeavesLine>(line)
                .ok()
                .and_then(|l| Some((l.leaves.from, hashes_from_hex(&l.leaves.hashes)?)))
        });
        match parsed {
            // Hints for the interval about to start (they are only ever a help: wrong ones
            // change no verdict, only how precisely a change is named).
            // More of the same interval's (an export's pages may split one).
            Some((from, hashes))
                if from == self.tree.size()
                    && self.pending.is_none()
                    && self
                        .hints
                        .as_ref()
                        .is_some_and(|h| h.from + h.hashes.len() as u64 == from) =>
            {
                if let Some(h) = &mut self.hints {
                    h.hashes.extend(hashes);
                }
            }
            Some((from, hashes)) if from == self.tree.size() && self.pending.is_none() => {
                self.hints = Some(Hints {
                    from,
                    hashes,
                    before: self.tree.clone(),
                    suspect: None,
                });
            }
            Some(_) => self.hints = None,
            None => self.fail(
                Kind::Changed,
                None,
                n,
                format!("the leaf hashes on line {n} cannot be read"),
            ),
        }
    }

    fn frontier(&mut self, line: &[u8]) {
        let n = self.line;
        if self.started {
            self.fail(
                Kind::Inserted,
                None,
                n,
                format!("line {n} holds a frontier after the log began"),
            );
            return;
        }
        self.started = true;
        let parsed = serde_json::from_slice::<FrontierLine>(line)
            .ok()
            .and_then(|f| {
                Frontier::from_parts(f.frontier.size, hashes_from_hex(&f.frontier.hashes)?)
            });
        match parsed {
            Some(f) => {
                self.interval_start = f.size();
                self.covered = f.size();
                self.frontier_unconfirmed = Some((f.size(), n));
                self.tree = f;
            }
            None => self.fail(
                Kind::Changed,
                None,
                n,
                format!("the frontier on line {n} cannot be read"),
            ),
        }
    }

    /// Ends the log and reports.
    #[must_use]
    pub fn finish(mut self) -> Report {
        if self.pending.is_some() {
            self.classify();
        }
        let have = self.tree.size();
        if let Some((size, at)) = self.short.take() {
            self.fail(
                Kind::Truncated,
                Some(have),
                at,
                format!(
                    "the log ends after record #{}, but the checkpoint on line {at} covers {size} records",
                    have.saturating_sub(1)
                ),
            );
        }
        if let Some((fsize, at)) = self.frontier_unconfirmed {
            self.fail(
                Kind::Truncated,
                Some(fsize),
                at,
                format!("no checkpoint of size {fsize} confirms the frontier on line {at}"),
            );
        }
        if have > self.covered {
            let line = self.line;
            let covered = self.covered;
            self.fail(
                Kind::Truncated,
                Some(covered),
                line,
                format!(
                    "records #{covered}..#{} are not covered by a signed checkpoint: the log's end was cut or its checkpoints removed",
                    have - 1
                ),
            );
        }
        Report {
            ok: self.error.is_none(),
            records: self.records,
            checkpoints: self.checkpoints,
            first_error: self.error,
            tree_size: have,
            root: self.last_root,
            key_id: self.key.key_id().to_owned(),
        }
    }
}

/// Reads a leaves line in the writer's own form (`LeavesPart::line`) without allocating a
/// string per hash; `None` for any other form (then read as JSON).
fn parse_leaves_fast(line: &[u8]) -> Option<(u64, Vec<Hash>)> {
    let rest = line.strip_prefix(b"{\"leaves\":{\"from\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let from: u64 = std::str::from_utf8(rest.get(..digits)?)
        .ok()?
        .parse()
        .ok()?;
    let mut rest = rest.get(digits..)?.strip_prefix(b",\"hashes\":[")?;
    let mut hashes = Vec::with_capacity(rest.len() / 67);
    if let Some(end) = rest.strip_prefix(b"]}}") {
        return end.is_empty().then_some((from, hashes));
    }
    loop {
        let quoted = rest.get(..66)?;
        let hex_text = quoted.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut h).ok()?;
        hashes.push(h);
        rest = rest.get(66..)?;
        match rest.split_first()? {
            (b',', r) => rest = r,
            (b']', r) => return (r == b"}}").then_some((from, hashes)),
            _ => return None,
        }
    }
}

/// Verifies the log `input` holds against `key`.
pub fn verify_reader(key: PublicKey, mut input: impl BufRead) -> std::io::Result<Report> {
    let mut v = Verifier::new(key);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        v.push_line(line);
        if v.failed() {
            break;
        }
    }
    Ok(v.finish())
}

/// Verifies a log held in memory.
#[must_use]
pub fn verify_bytes(key: PublicKey, log: &[u8]) -> Report {
    let mut v = Verifier::new(key);
    let mut rest = log;
    while !rest.is_empty() {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (
                rest.get(..i).unwrap_or_default(),
                rest.get(i + 1..).unwrap_or_default(),
            ),
            None => (rest, &[][..]),
        };
        v.push_line(line);
        if v.failed() {
            break;
        }
        rest = next;
    }
    v.finish()
}
