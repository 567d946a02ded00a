//! fsgate's tamper-evident audit log, as a format: what the server writes and what anyone
//! holding the public key checks offline.
//!
//! - [`append`]: the writer's side — appending records and signing checkpoints.
//! - [`record`]: an audit record as a line of JSON; the line's bytes are its Merkle leaf.
//! - [`tree`]: the RFC 6962 Merkle tree — hashing, the writer's compact range, inclusion and
//!   consistency proofs and their verification.
//! - [`checkpoint`]: Ed25519-signed checkpoints (size, root, time, key id) and their keys.
//! - [`verify`]: the verifier of an exported log, which names the first inconsistency.
//! - [`proof`]: inclusion and consistency proofs as documents, and their verification.
//! - [`cloudtrail`]: records in the shape of CloudTrail events.
//!
//! The server (`fsgate-store` writes the tree next to the records) and `fsctl` (which verifies)
//! both use this crate, so the two cannot disagree on a byte. It knows nothing of storage or
//! HTTP: it depends on hashing, signatures and JSON only.

pub mod append;
pub mod checkpoint;
pub mod cloudtrail;
pub mod proof;
pub mod record;
pub mod tree;
pub mod verify;

pub use append::Appender;
pub use checkpoint::{Checkpoint, PublicKey, SigningKey};
pub use tree::{Frontier, Hash};
pub use verify::{Finding, Kind, Report, Verifier};
