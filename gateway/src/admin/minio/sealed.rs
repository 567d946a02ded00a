//! The sealed bodies of MinIO's admin API: what `madmin` (Go) and `MinioAdmin` (Python)
//! encrypt with the caller's secret key.
//!
//! Layout: `salt (32) | id (1) | nonce (8) | packages`. The key is Argon2id(secret, salt;
//! t=1, m=64 MiB, p=4, 32 bytes). `id` 0 seals with AES-256-GCM, 1 with ChaCha20-Poly1305
//! (MinIO's PBKDF2 form, id 2, only a FIPS build writes; it is refused). The packages are
//! sio's DARE 2.0: the plain text in 16 KiB pieces, each sealed under the nonce
//! `nonce | LE32(n)` for n = 1, 2, ... with the associated data `0x00 | tag`, where `tag` is the
//! AEAD tag of the empty message under `nonce | 0`; the last package's first byte is `0x80`
//! instead, so a cut body is refused as surely as a changed one.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;

const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 8;
const HEADER_LEN: usize = SALT_LEN + 1 + NONCE_LEN;
const PIECE: usize = 16 * 1024;
const TAG_LEN: usize = 16;
const AES_GCM: u8 = 0;
const CHACHA20_POLY1305: u8 = 1;

/// Why a sealed body could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Shorter than its header.
    #[error("the encrypted body is shorter than its 41-byte header")]
    Short,
    /// An algorithm id fsgate does not take.
    #[error("unsupported encryption id {0} (0: Argon2id AES-GCM, 1: Argon2id ChaCha20-Poly1305)")]
    Algorithm(u8),
    /// A package does not authenticate: wrong secret key, or a changed, reordered or cut body.
    #[error("the encrypted body does not decrypt with the caller's secret key")]
    Mismatch,
}

enum Cipher {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

impl Cipher {
    fn new(id: u8, key: &[u8; 32]) -> Result<Self, SealError> {
        match id {
            AES_GCM => Ok(Self::Aes(Box::new(Aes256Gcm::new(key.into())))),
            CHACHA20_POLY1305 => Ok(Self::ChaCha(Box::new(ChaCha20Poly1305::new(key.into())))),
            other => Err(SealError::Algorithm(other)),
        }
    }

    fn seal(&self, nonce: &[u8; 12], ad: &[u8], buf: &mut Vec<u8>) {
        // Sealing into a Vec cannot fail (no length limit is near).
        let _ = match self {
            Self::Aes(c) => c.encrypt_in_place(nonce.into(), ad, buf),
            Self::ChaCha(c) => c.encrypt_in_place(nonce.into(), ad, buf),
        };
    }

    fn open(&self, nonce: &[u8; 12], ad: &[u8], buf: &mut Vec<u8>) -> Result<(), SealError> {
        match self {
            Self::Aes(c) => c.decrypt_in_place(nonce.into(), ad, buf),
            Self::ChaCha(c) => c.decrypt_in_place(nonce.into(), ad, buf),
        }
        .map_err(|_| SealError::Mismatch)
    }

    /// The associated data of the first and middle packages: `0x00 | tag(empty, nonce|0)`.
    fn associated_data(&self, nonce: &[u8; NONCE_LEN]) -> [u8; 1 + TAG_LEN] {
        let mut tag = Vec::with_capacity(TAG_LEN);
        self.seal(&package_nonce(nonce, 0), &[], &mut tag);
        let mut ad = [0u8; 1 + TAG_LEN];
        for (d, s) in ad.iter_mut().skip(1).zip(&tag) {
            *d = *s;
        }
        ad
    }
}

fn package_nonce(nonce: &[u8; NONCE_LEN], n: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..NONCE_LEN].copy_from_slice(nonce);
    out[NONCE_LEN..].copy_from_slice(&n.to_le_bytes());
    out
}

/// Argon2id with madmin's parameters. Costs 64 MiB and tens of milliseconds: callers run it
/// off the async threads and bound how many run at once.
fn derive_key(secret: &[u8], salt: &[u8]) -> [u8; 32] {
    let params = argon2::Params::new(64 * 1024, 1, 4, Some(32)).unwrap_or_default();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    // Only out-of-range parameters fail, and these are fixed and in range.
    let _ = argon.hash_password_into(secret, salt, &mut key);
    key
}

/// Seals `plain` for a caller whose secret key is `secret` (AES-256-GCM, as MinIO on a CPU
/// with AES instructions answers).
#[must_use]
pub fn seal(secret: &[u8], plain: &[u8]) -> Vec<u8> {
    let salt: [u8; SALT_LEN] = rand::random();
    let nonce: [u8; NONCE_LEN] = rand::random();
    let key = derive_key(secret, &salt);
    let Ok(cipher) = Cipher::new(AES_GCM, &key) else {
        return Vec::new();
    };
    let pieces = plain.len().div_ceil(PIECE).max(1);
    let mut out = Vec::with_capacity(HEADER_LEN + plain.len() + pieces * TAG_LEN);
    out.extend_from_slice(&salt);
    out.push(AES_GCM);
    out.extend_from_slice(&nonce);
    let mut ad = cipher.associated_data(&nonce);
    for (i, piece) in plain.chunks(PIECE).enumerate() {
        if i + 1 == pieces {
            ad[0] = 0x80;
        }
        let mut buf = piece.to_vec();
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        cipher.seal(&package_nonce(&nonce, n), &ad, &mut buf);
        out.extend_from_slice(&buf);
    }
    out
}

/// Opens a body sealed with the secret key `secret`.
///
/// # Errors
/// `SealError` when the body is short, names an algorithm fsgate does not take, or does not
/// authenticate.
pub fn open(secret: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let (salt, rest) = sealed.split_at_checked(SALT_LEN).ok_or(SealError::Short)?;
    let (&id, rest) = rest.split_first().ok_or(SealError::Short)?;
    let (nonce, body) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(SealError::Short)?;
    if id != AES_GCM && id != CHACHA20_POLY1305 {
        return Err(SealError::Algorithm(id));
    }
    let key = derive_key(secret, salt);
    let cipher = Cipher::new(id, &key)?;
    let mut ad = cipher.associated_data(nonce);
    let packages: Vec<&[u8]> = body.chunks(PIECE + TAG_LEN).collect();
    let mut out = Vec::with_capacity(body.len());
    for (i, package) in packages.iter().enumerate() {
        if package.len() <= TAG_LEN {
            return Err(SealError::Mismatch);
        }
        if i + 1 == packages.len() {
            ad[0] = 0x80;
        }
        let mut buf = package.to_vec();
        let n = u32::try_from(i + 1).map_err(|_| SealError::Mismatch)?;
        cipher.open(&package_nonce(nonce, n), &ad, &mut buf)?;
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bodies_open_with_the_same_secret_only() {
        for len in [0, 1, 100, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 7] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(b"secret-key-1", &plain);
            assert_eq!(open(b"secret-key-1", &sealed).unwrap(), plain, "len {len}");
            if len > 0 {
                assert_eq!(open(b"secret-key-2", &sealed), Err(SealError::Mismatch));
            }
        }
    }

    #[test]
    fn changed_cut_or_extended_bodies_are_refused() {
        let plain = vec![7u8; 2 * PIECE + 10];
        let sealed = seal(b"s3cr3t", &plain);
        let mut flipped = sealed.clone();
        flipped[HEADER_LEN + PIECE] ^= 1;
        assert_eq!(open(b"s3cr3t", &flipped), Err(SealError::Mismatch));
        // Cut after a whole package: the one left last is not marked last.
        let cut = &sealed[..HEADER_LEN + PIECE + TAG_LEN];
        assert_eq!(open(b"s3cr3t", cut), Err(SealError::Mismatch));
        let mut longer = sealed.clone();
        longer.extend_from_slice(&[0u8; 40]);
        assert_eq!(open(b"s3cr3t", &longer), Err(SealError::Mismatch));
        assert_eq!(open(b"s3cr3t", &sealed[..20]), Err(SealError::Short));
        let mut other_id = sealed;
        other_id[SALT_LEN] = 2;
        assert_eq!(open(b"s3cr3t", &other_id), Err(SealError::Algorithm(2)));
    }
}
