//! Signed checkpoints: a tree size, its root hash and a time, signed with Ed25519, and the keys
//! that sign and verify them (PKCS#8 / SPKI PEM, as `openssl genpkey -algorithm ed25519` makes
//! them).

use base64::Engine as _;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tree::Hash;

/// What a checkpoint line begins with.
pub const CHECKPOINT_PREFIX: &[u8] = b"{\"checkpoint\":";

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not an Ed25519 key in PEM.
    #[error("not an Ed25519 key in PEM: {0}")]
    Pem(String),
    /// No randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

/// A signed checkpoint: the log's first `size` records hash to `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Number of records covered.
    pub size: u64,
    /// The Merkle root of those records, hex.
    pub root: String,
    /// When it was signed, RFC 3339 with nanoseconds (UTC).
    pub time: String,
    /// The signing key's id ([`PublicKey::key_id`]).
    pub key_id: String,
    /// Ed25519 signature of [`Checkpoint::message`], base64.
    pub signature: String,
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    checkpoint: Checkpoint,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// Signed by another key.
    #[error("signed by key {found}, not by {expected}")]
    OtherKey {
        /// The checkpoint's key id.
        found: String,
        /// The verifying key's id.
        expected: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// A field is not in its form (hex root, base64 signature).
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
}

impl Checkpoint {
    /// The bytes signed: every field but the signature, one per line, after a label.
    #[must_use]
    pub fn message(size: u64, root: &str, time: &str, key_id: &str) -> String {
        format!("fsgate-audit-checkpoint/v1\n{size}\n{root}\n{time}\n{key_id}\n")
    }

    /// The root as bytes.
    pub fn root_hash(&self) -> Result<Hash, CheckpointError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.root, &mut out)
            .map_err(|e| CheckpointError::Malformed(format!("root: {e}")))?;
        Ok(out)
    }

    /// The signing time, ns since the epoch.
    pub fn time_ns(&self) -> Result<i128, CheckpointError> {
        time::OffsetDateTime::parse(&self.time, &time::format_description::well_known::Rfc3339)
            .map(time::OffsetDateTime::unix_timestamp_nanos)
            .map_err(|e| CheckpointError::Malformed(format!("time: {e}")))
    }

    /// Checks the signature with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        if self.key_id != key.key_id() {
            return Err(CheckpointError::OtherKey {
                found: self.key_id.clone(),
                expected: key.key_id().to_owned(),
            });
        }
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&self.signature)
            .map_err(|e| CheckpointError::Malformed(format!("signature: {e}")))?;
        let sig = ed25519_dalek::Signature::from_slice(&sig)
            .map_err(|e| CheckpointError::Malformed(format!("signature: {e}")))?;
        let msg = Self::message(self.size, &self.root, &self.time, &self.key_id);
        key.key
            .verify_strict(msg.as_bytes(), &sig)
            .map_err(|_| CheckpointError::BadSignature)?;
        // The signed text holds the root as written: it must also be a hash.
        self.root_hash().map(|_| ())
    }

    /// The checkpoint as a log line: `{"checkpoint":{...}}`.
    #[must_use]
    pub fn to_line(&self) -> String {
        serde_json::to_string(&CheckpointLine {
            checkpoint: self.clone(),
        })
        .unwrap_or_default()
    }

    /// Reads a checkpoint line.
    pub fn from_line(line: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice::<CheckpointLine>(line).map(|l| l.checkpoint)
    }
}

/// The key that signs checkpoints.
pub struct SigningKey {
    key: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        use rand::TryRngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(Self::from_key(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    fn from_key(key: ed25519_dalek::SigningKey) -> Self {
        let public = PublicKey::from_key(key.verifying_key());
        Self { key, public }
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(text)
            .map(Self::from_key)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|z| z.to_string())
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs a checkpoint of `size` records with root `root` at `time_ns`.
    #[must_use]
    pub fn sign(&self, size: u64, root: &Hash, time_ns: u64) -> Checkpoint {
        let root = hex::encode(root);
        let time = rfc3339_nanos(time_ns);
        let key_id = self.public.key_id.clone();
        let msg = Checkpoint::message(size, &root, &time, &key_id);
        let signature = base64::engine::general_purpose::STANDARD
            .encode(self.key.sign(msg.as_bytes()).to_bytes());
        Checkpoint {
            size,
            root,
            time,
            key_id,
            signature,
        }
    }
}

/// The key that verifies checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: ed25519_dalek::VerifyingKey,
    key_id: String,
}

impl PublicKey {
    fn from_key(key: ed25519_dalek::VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let key_id = hex::encode(digest.get(..8).unwrap_or_default());
        Self { key, key_id }
    }

    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(text.trim())
            .map(Self::from_key)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The key as SPKI PEM.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::Pem(e.to_string()))
    }

    /// The key's id: the first 8 bytes of SHA-256 of the raw key, hex.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
}

/// `ns` since the epoch as RFC 3339 UTC with nine fractional digits (fixed width, so that
/// times compare as text too). Written digit by digit: every audit record carries one.
#[must_use]
pub fn rfc3339_nanos(ns: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut out = [0u8; 30];
    let fields: [(u32, usize); 7] = [
        (u32::try_from(t.year()).unwrap_or(0), 4),
        (u32::from(u8::from(t.month())), 2),
        (u32::from(t.day()), 2),
        (u32::from(t.hour()), 2),
        (u32::from(t.minute()), 2),
        (u32::from(t.second()), 2),
        (t.nanosecond(), 9),
    ];
    let seps = [b'-', b'-', b'T', b':', b':', b'.', b'Z'];
    let mut at = 0;
    for ((mut v, width), sep) in fields.into_iter().zip(seps) {
        for i in (0..width).rev() {
            if let Some(d) = out.get_mut(at + i) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
        at += width;
        if let Some(d) = out.get_mut(at) {
            *d = sep;
        }
        at += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads an RFC 3339 time into ns since the epoch; `None` before 1970 or unreadable.
#[must_use]
pub fn parse_rfc3339_nanos(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() -> Result<(), KeyError> {
        let key = SigningKey::generate()?;
        let cp = key.sign(5, &[7u8; 32], 1_800_000_000_123_456_789);
        assert_eq!(cp.time, "2027-01-15T08:00:00.123456789Z");
        assert_eq!(cp.verify(key.public()), Ok(()));
        let line = cp.to_line();
        assert!(line.as_bytes().starts_with(CHECKPOINT_PREFIX));
        assert_eq!(
            Checkpoint::from_line(line.as_bytes()).ok(),
            Some(cp.clone())
        );
        // Keys round-trip through PEM.
        let again = SigningKey::from_pem(&key.to_pem()?)?;
        assert_eq!(again.public(), key.public());
        assert_eq!(PublicKey::from_pem(&key.public().to_pem()?)?, *key.public());
        // Any changed field, or another key, fails.
        let other = SigningKey::generate()?;
        assert!(matches!(
            cp.verify(other.public()),
            Err(CheckpointError::OtherKey { .. })
        ));
        for forged in [
            Checkpoint {
                size: 6,
                ..cp.clone()
            },
            Checkpoint {
                root: hex::encode([8u8; 32]),
                ..cp.clone()
            },
            Checkpoint {
                time: "2027-01-15T08:00:01.123456789Z".into(),
                ..cp.clone()
            },
        ] {
            assert_eq!(
                forged.verify(key.public()),
                Err(CheckpointError::BadSignature)
            );
        }
        let resigned = Checkpoint {
            key_id: cp.key_id.clone(),
            ..other.sign(5, &[7u8; 32], 1)
        };
        assert_eq!(
            resigned.verify(key.public()),
            Err(CheckpointError::BadSignature)
        );
        Ok(())
    }
}
