//! The audit log's formats as `fsctl audit verify` reads them from files anyone can hand it:
//! record lines, whole exports (records and signed checkpoints), inclusion and consistency
//! proofs, checkpoints and their timestamps. The verifier must report, never panic.
//! The key is the public key of the server that wrote the seed corpus, so mutated seeds get
//! past the signatures' shape into the tree checks.
#![no_main]

use std::sync::OnceLock;

use fsgate_auditlog::checkpoint::{Checkpoint, PublicKey, parse_rfc3339_nanos};
use fsgate_auditlog::proof::{ConsistencyDoc, ProofDoc, verify_consistency_doc, verify_proof};
use fsgate_auditlog::record;
use fsgate_auditlog::verify::verify_bytes;

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PublicKey::from_pem(include_str!("../audit-key.pub.pem")).expect("the seed key reads")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 5 {
        0 => {
            let _ = record::seq_of(rest);
            let _ = record::parse(rest);
        }
        1 => {
            let _ = verify_bytes(key().clone(), rest);
        }
        2 => {
            if let Ok(doc) = serde_json::from_slice::<ProofDoc>(rest) {
                let _ = verify_proof(&doc, key());
            }
        }
        3 => {
            if let Ok(doc) = serde_json::from_slice::<ConsistencyDoc>(rest) {
                let _ = verify_consistency_doc(&doc, key());
            }
        }
        _ => {
            if let Ok(cp) = Checkpoint::from_line(rest) {
                let _ = cp.verify(key());
                let _ = cp.root_hash();
                let _ = cp.time_ns();
            }
            let _ = parse_rfc3339_nanos(&String::from_utf8_lossy(rest));
        }
    }
});
