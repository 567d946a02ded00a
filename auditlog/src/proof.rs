//! Proofs a server hands out and anyone verifies offline with the public key: that a record
//! is in the log (inclusion, against a signed checkpoint), and that an earlier checkpoint's log
//! is a prefix of a later one's (consistency).

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, PublicKey};
use crate::record;
use crate::tree::{hashes_from_hex, leaf_hash, verify_consistency, verify_inclusion};
use crate::verify::{Finding, Kind};

/// A consistency proof between two signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyDoc {
    /// The earlier checkpoint.
    pub old: Checkpoint,
    /// The later checkpoint.
    pub new: Checkpoint,
    /// The proof's hashes, hex (RFC 6962, §2.1.2).
    pub proof: Vec<String>,
}

/// The proof that a request's record is in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofDoc {
    /// The request.
    pub request_id: String,
    /// The record's position.
    pub seq: u64,
    /// The record's line, exactly as hashed.
    pub record: String,
    /// Its leaf hash, hex (for reading; the verifier computes it).
    pub leaf_hash: String,
    /// The checkpoint the inclusion is proven against.
    pub checkpoint: Checkpoint,
    /// The audit path, hex, nearest the leaf first (RFC 6962, §2.1.1).
    pub inclusion: Vec<String>,
    /// That the first checkpoint covering the record is a prefix of `checkpoint`.
    pub consistency: Option<ConsistencyDoc>,
}

fn bad(kind: Kind, detail: impl Into<String>) -> Finding {
    Finding {
        kind,
        record: None,
        line: 0,
        detail: detail.into(),
    }
}

/// Checks a consistency proof and both checkpoints' signatures.
pub fn verify_consistency_doc(doc: &ConsistencyDoc, key: &PublicKey) -> Result<(), Finding> {
    for (which, cp) in [("old", &doc.old), ("new", &doc.new)] {
        cp.verify(key).map_err(|e| {
            bad(
                Kind::BadSignature,
                format!("the {which} checkpoint (size {}): {e}", cp.size),
            )
        })?;
    }
    let (Ok(old_root), Ok(new_root)) = (doc.old.root_hash(), doc.new.root_hash()) else {
        return Err(bad(Kind::BadProof, "a checkpoint's root is not a hash"));
    };
    let proof = hashes_from_hex(&doc.proof)
        .ok_or_else(|| bad(Kind::BadProof, "a proof hash is not hex"))?;
    if !verify_consistency(doc.old.size, doc.new.size, &old_root, &new_root, &proof) {
        return Err(bad(
            Kind::BadProof,
            format!(
                "the log of size {} is not shown to be a prefix of the log of size {}",
                doc.old.size, doc.new.size
            ),
        ));
    }
    Ok(())
}

/// Checks a record's proof: its checkpoints' signatures, that the record is the one named, and
/// both Merkle proofs.
pub fn verify_proof(doc: &ProofDoc, key: &PublicKey) -> Result<(), Finding> {
    doc.checkpoint.verify(key).map_err(|e| {
        bad(
            Kind::BadSignature,
            format!("the checkpoint (size {}): {e}", doc.checkpoint.size),
        )
    })?;
    let line = doc.record.as_bytes();
    let rec = record::parse(line)
        .map_err(|e| bad(Kind::BadProof, format!("the record does not read: {e}")))?;
    if rec.seq != doc.seq || rec.request_id != doc.request_id {
        return Err(bad(
            Kind::BadProof,
            format!(
                "the record is #{} of request {}, not #{} of request {}",
                rec.seq, rec.request_id, doc.seq, doc.request_id
            ),
        ));
    }
    let root = doc
        .checkpoint
        .root_hash()
        .map_err(|e| bad(Kind::BadProof, e.to_string()))?;
    let path = hashes_from_hex(&doc.inclusion)
        .ok_or_else(|| bad(Kind::BadProof, "a proof hash is not hex"))?;
    if !verify_inclusion(&leaf_hash(line), doc.seq, doc.checkpoint.size, &path, &root) {
        return Err(bad(
            Kind::BadProof,
            format!(
                "record #{} is not shown to be in the log of size {}",
                doc.seq, doc.checkpoint.size
            ),
        ));
    }
    if let Some(c) = &doc.consistency {
        if c.new != doc.checkpoint {
            return Err(bad(
                Kind::BadProof,
                "the consistency proof does not end at the inclusion's checkpoint",
            ));
        }
        if c.old.size <= doc.seq {
            return Err(bad(
                Kind::BadProof,
                "the consistency proof starts at a checkpoint that does not cover the record",
            ));
        }
        verify_consistency_doc(c, key)?;
    }
    Ok(())
}
