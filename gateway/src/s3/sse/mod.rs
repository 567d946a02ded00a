//! Server-side encryption: SSE-S3 (a master key from `FSGATE_SSE_MASTER_KEY` or the
//! `sse-master.key` file in the data directory, wrapping a random data key per object),
//! SSE-KMS (a named key of the key ring wraps the data key, `kms.rs`) and SSE-C (the
//! customer's key wraps the data key; the key itself is never stored, only its MD5 to check
//! the key given on GET).
//!
//! Object bytes are AES-256-GCM in chunks of `CHUNK` plaintext bytes, each followed by its
//! 16-byte tag. A chunk's nonce is its part number (0 for a simple upload), its index, and a
//! final-chunk flag, so chunks cannot be reordered, moved between parts, or cut off the end
//! unnoticed. Every object (every multipart upload) has its own data key. A multipart part may
//! be uploaded again under the same key, so every blob written now begins with a random
//! 12-byte salt that each chunk's nonce is XORed with (`SALTED` in `SseInfo::kind`): a part
//! uploaded twice never repeats a nonce. Objects written before the salt (kinds without the
//! suffix) are read as they were written.
//!
//! Content addressing: blobs are named by the SHA-256 of what is on disk, the ciphertext. With
//! a random data key per object, two tenants storing the same plaintext store different
//! ciphertexts under different names: no dedup between encrypted objects, and nothing to learn
//! from it.

mod bucket;
pub mod kms;
pub mod vault;

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Digest as _;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use fsgate_store::model::SseInfo;

pub use self::bucket::{BucketDefault, DOC};
pub use self::kms::KeyRing;

/// Plaintext bytes per encrypted chunk.
pub const CHUNK: u64 = 64 * 1024;
/// AES-GCM tag length.
pub const TAG: u64 = 16;
/// `SseInfo::kind` of SSE-S3 objects.
pub const KIND_S3: &str = "SSE-S3";
/// `SseInfo::kind` of SSE-C objects.
pub const KIND_C: &str = "SSE-C";
/// `SseInfo::kind` of SSE-KMS objects (`key_md5` holds the KMS key and version,
/// `kms::key_ref`).
pub const KIND_KMS: &str = "SSE-KMS";
/// Suffix of `SseInfo::kind` for objects whose blobs begin with a nonce salt.
const SALTED: &str = "/salted";
/// Length of the salt at the start of a salted blob.
pub const SALT: u64 = 12;

/// SSE-S3 or SSE-C, whatever the blob layout.
#[must_use]
pub fn kind_of(info: &SseInfo) -> &str {
    info.kind.strip_suffix(SALTED).unwrap_or(&info.kind)
}

/// Why the SSE-S3 master key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// The key is not base64.
    #[error("SSE master key: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The key is not 32 bytes long.
    #[error("SSE master key must be 32 bytes (base64), not {0}")]
    Length(usize),
    /// The key file cannot be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The key file.
        path: std::path::PathBuf,
        /// What reading or writing it met.
        source: std::io::Error,
    },
}

/// The SSE-S3 master key (it also seals the key ring's material).
#[derive(Clone)]
pub struct MasterKey(pub(super) [u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// From `FSGATE_SSE_MASTER_KEY` (base64 of 32 bytes) when set, else the key file in the
    /// data directory, created (0600) with a random key the first time.
    pub fn load(data_dir: &Path, from_env: Option<&str>) -> Result<Self, MasterKeyError> {
        let decode = |s: &str| -> Result<Self, MasterKeyError> {
            let bytes = B64.decode(s.trim())?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(Self)
                .map_err(|_| MasterKeyError::Length(bytes.len()))
        };
        let file = |path: &Path| {
            let path = path.to_owned();
            move |source| MasterKeyError::File { path, source }
        };
        if let Some(s) = from_env {
            return decode(s);
        }
        let path = data_dir.join("sse-master.key");
        match std::fs::read_to_string(&path) {
            Ok(s) => decode(&s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                fsgate_store::private_file::write_private(&path, B64.encode(key).as_bytes())
                    .map_err(file(&path))?;
                Ok(Self(key))
            }
            Err(e) => Err(file(&path)(e)),
        }
    }
}

/// What a request asks for.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum SseRequest {
    /// No encryption requested.
    #[default]
    None,
    /// `x-amz-server-side-encryption: AES256`.
    S3,
    /// `x-amz-server-side-encryption: aws:kms`, with the key it names (else the bucket's
    /// default key, else `kms::DEFAULT_KEY`).
    Kms {
        /// `x-amz-server-side-encryption-aws-kms-key-id`.
        key_id: Option<String>,
    },
    /// A customer key (`x-amz-server-side-encryption-customer-*`), checked against its MD5.
    C {
        /// The key.
        key: [u8; 32],
        /// Base64 MD5 of the key.
        key_md5: String,
    },
}

impl std::fmt::Debug for SseRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::S3 => "S3",
            Self::Kms { .. } => "Kms",
            Self::C { .. } => "C(..)",
        })
    }
}

impl SseRequest {
    /// Parses the SSE headers of a request.
    pub fn from_headers(
        (sse, kms_key_id): (Option<&str>, Option<&str>),
        customer_algorithm: Option<&str>,
        customer_key: Option<&str>,
        customer_key_md5: Option<&str>,
    ) -> S3Result<Self> {
        if kms_key_id.is_some() && sse != Some("aws:kms") {
            return Err(s3_error!(
                InvalidArgument,
                "x-amz-server-side-encryption-aws-kms-key-id header is not valid without x-amz-server-side-encryption: aws:kms"
            ));
        }
        match (customer_algorithm, customer_key) {
            (None, None) => {}
            (Some("AES256"), Some(k)) => {
                if sse.is_some() {
                    return Err(s3_error!(
                        InvalidArgument,
                        "Server Side Encryption with Customer provided key is incompatible with the encryption method specified"
                    ));
                }
                let bytes = B64.decode(k).map_err(|_| {
                    s3_error!(
                        InvalidArgument,
                        "The secret key was invalid for the specified algorithm."
                    )
                })?;
                let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                    s3_error!(
                        InvalidArgument,
                        "The secret key was invalid for the specified algorithm."
                    )
                })?;
                let key_md5 = B64.encode(md5::Md5::digest(key));
                if customer_key_md5.is_some_and(|m| m != key_md5) {
                    return Err(s3_error!(
                        InvalidArgument,
                        "The calculated MD5 hash of the key did not match the hash that was provided."
                    ));
                }
                return Ok(Self::C { key, key_md5 });
            }
            (Some(a), _) if a != "AES256" => {
                return Err(s3_error!(
                    InvalidEncryptionAlgorithmError,
                    "The encryption request you specified is not valid. Supported value: AES256."
                ));
            }
            _ => {
                return Err(s3_error!(
                    InvalidArgument,
                    "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."
                ));
            }
        }
        match sse {
            None => Ok(Self::None),
            Some("AES256") => Ok(Self::S3),
            Some("aws:kms") => Ok(Self::Kms {
                key_id: kms_key_id.map(kms_key_name).map(str::to_owned),
            }),
            Some("aws:kms:dsse") => Err(s3_error!(
                NotImplemented,
                "Dual-layer SSE-KMS is not supported by fsgate; use aws:kms, AES256 or SSE-C"
            )),
            Some(_) => Err(s3_error!(
                InvalidArgument,
                "The encryption method specified is not supported"
            )),
        }
    }
}

/// The key id a client names, as the ring knows it: an ARN's `key/ID` part, or the id.
#[must_use]
pub fn kms_key_name(id: &str) -> &str {
    id.strip_prefix("arn:")
        .and_then(|rest| rest.rsplit_once(":key/"))
        .map_or(id, |(_, name)| name)
}

/// A data key, opened for one object, and whether its blobs begin with a nonce salt.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    salted: bool,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

fn wrap(kek: &[u8; 32], data_key: &[u8; 32]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek));
    let nonce: [u8; 12] = rand::random();
    let mut out = nonce.to_vec();
    // Encrypting 32 bytes cannot fail.
    out.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), data_key.as_slice())
            .unwrap_or_default(),
    );
    out
}

fn unwrap(kek: &[u8; 32], sealed: &[u8]) -> Option<[u8; 32]> {
    let (nonce, ct) = sealed.split_at_checked(12)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek));
    let plain = cipher.decrypt(Nonce::from_slice(nonce), ct).ok()?;
    <[u8; 32]>::try_from(plain.as_slice()).ok()
}

/// A fresh data key for a new object, and how it is recorded (`None` without encryption).
/// SSE-KMS needs its key resolved (`Kms { key_id: Some(..) }`): an unknown or disabled key is
/// AWS's KMS error.
pub fn new_key(ring: &KeyRing, req: &SseRequest) -> S3Result<Option<(DataKey, SseInfo)>> {
    let data_key: [u8; 32] = rand::random();
    let info = match req {
        SseRequest::None => return Ok(None),
        SseRequest::S3 => SseInfo {
            kind: format!("{KIND_S3}{SALTED}"),
            key_md5: String::new(),
            sealed: wrap(&ring.master().0, &data_key),
        },
        SseRequest::Kms { key_id } => {
            let name = key_id.as_deref().unwrap_or(kms::DEFAULT_KEY);
            let (version, material) = ring.current(name).map_err(|e| e.s3())?;
            SseInfo {
                kind: format!("{KIND_KMS}{SALTED}"),
                key_md5: kms::key_ref(name, version),
                sealed: wrap(&material, &data_key),
            }
        }
        SseRequest::C { key, key_md5 } => SseInfo {
            kind: format!("{KIND_C}{SALTED}"),
            key_md5: key_md5.clone(),
            sealed: wrap(key, &data_key),
        },
    };
    Ok(Some((
        DataKey {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key)),
            salted: true,
        },
        info,
    )))
}

fn needs_key() -> S3Error {
    s3_error!(
        InvalidRequest,
        "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."
    )
}

/// Opens a stored object's data key with what the request supplies (an SSE-KMS object's with
/// its key's version; a disabled or missing key is AWS's KMS error).
pub fn open_key(ring: &KeyRing, info: &SseInfo, req: &SseRequest) -> S3Result<DataKey> {
    let key = match (kind_of(info), req) {
        (KIND_S3 | KIND_KMS, SseRequest::C { .. }) => {
            return Err(s3_error!(
                InvalidRequest,
                "The encryption parameters are not applicable to this object."
            ));
        }
        (KIND_S3, _) => unwrap(&ring.master().0, &info.sealed),
        (KIND_KMS, _) => {
            let (name, version) = kms::parse_key_ref(&info.key_md5)
                .ok_or_else(|| s3_error!(InternalError, "the object's KMS key is unreadable"))?;
            let material = ring.material(name, version).map_err(|e| e.s3())?;
            unwrap(&material, &info.sealed)
        }
        (KIND_C, SseRequest::C { key, key_md5 }) => {
            if *key_md5 != info.key_md5 {
                return Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "The provided customer key does not match the key the object was encrypted with.",
                ));
            }
            unwrap(key, &info.sealed)
        }
        (KIND_C, _) => return Err(needs_key()),
        _ => None,
    };
    let salted = info.kind.ends_with(SALTED);
    key.map(|k| DataKey {
        cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&k)),
        salted,
    })
    .ok_or_else(|| {
        S3Error::with_message(S3ErrorCode::InternalError, "cannot open the object's key")
    })
}

fn nonce(salt: &[u8; 12], part: u32, index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&part.to_be_bytes());
    n[4..11].copy_from_slice(&index.to_be_bytes()[1..]);
    n[11] = u8::from(last);
    for (b, s) in n.iter_mut().zip(salt) {
        *b ^= s;
    }
    n
}

/// The ciphertext length of `plain` plaintext bytes (an empty object is one empty chunk), with
/// the salt when `salted`.
#[cfg(test)]
fn cipher_len(plain: u64, salted: bool) -> u64 {
    plain + TAG * plain.div_ceil(CHUNK).max(1) + if salted { SALT } else { 0 }
}

/// Encrypts a plaintext stream chunk by chunk (feed with `push`, end with `finish`).
#[derive(Debug)]
pub struct Encryptor {
    key: DataKey,
    part: u32,
    index: u64,
    pending: Vec<u8>,
    /// XORed into every nonce: random for each blob of a salted key, zero otherwise.
    salt: [u8; 12],
    /// The salt still has to be written at the start of the output.
    salt_unwritten: bool,
}

impl Encryptor {
    /// An encryptor for one part (0 for a simple upload): a fresh salt for each, so a part
    /// encrypted twice under one key never repeats a nonce.
    #[must_use]
    pub fn new(key: DataKey, part: u32) -> Self {
        let salted = key.salted;
        Self {
            key,
            part,
            index: 0,
            pending: Vec::with_capacity(usize::try_from(CHUNK).unwrap_or(65_536)),
            salt: if salted { rand::random() } else { [0; 12] },
            salt_unwritten: salted,
        }
    }

    fn seal(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.salt_unwritten) {
            out.extend_from_slice(&self.salt);
        }
        let n = nonce(&self.salt, self.part, self.index, last);
        self.index += 1;
        out.extend(
            self.key
                .cipher
                .encrypt(Nonce::from_slice(&n), chunk)
                .unwrap_or_default(),
        );
    }

    /// Adds plaintext; returns the ciphertext of every chunk completed (never the last one,
    /// which `finish` seals with the final flag).
    pub fn push(&mut self, mut data: &[u8]) -> Vec<u8> {
        let chunk = usize::try_from(CHUNK).unwrap_or(65_536);
        let mut out = Vec::new();
        while !data.is_empty() {
            let take = (chunk - self.pending.len()).min(data.len());
            let (head, rest) = data.split_at(take);
            self.pending.extend_from_slice(head);
            data = rest;
            // Keep a full chunk pending until more data proves it is not the last.
            if self.pending.len() == chunk && !data.is_empty() {
                let full = std::mem::take(&mut self.pending);
                self.seal(&full, false, &mut out);
            }
        }
        out
    }

    /// Seals the last chunk.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let last = std::mem::take(&mut self.pending);
        self.seal(&last, true, &mut out);
        out
    }
}

/// Decrypts plaintext bytes `[start, start+len)` of one part whose plaintext is `plain_len`
/// bytes, reading ciphertext through `read(offset, len)`.
pub fn decrypt_range(
    key: &DataKey,
    part: u32,
    plain_len: u64,
    start: u64,
    len: u64,
    read: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> std::io::Result<()> {
    if len == 0 {
        return Ok(());
    }
    let chunks = plain_len.div_ceil(CHUNK).max(1);
    let first = start / CHUNK;
    let last = (start + len - 1) / CHUNK;
    let (salt, base) = if key.salted {
        let s = <[u8; 12]>::try_from(read(0, 12)?.as_slice())
            .map_err(|_| std::io::Error::other("encrypted blob too short for its salt"))?;
        (s, SALT)
    } else {
        ([0; 12], 0)
    };
    for idx in first..=last {
        let chunk_start = idx * CHUNK;
        let chunk_len = CHUNK.min(plain_len - chunk_start);
        let ct = read(
            base + idx * (CHUNK + TAG),
            usize::try_from(chunk_len + TAG).unwrap_or(usize::MAX),
        )?;
        let n = nonce(&salt, part, idx, idx + 1 == chunks);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(&n), Payload::from(ct.as_slice()))
            .map_err(|_| std::io::Error::other("encrypted chunk failed authentication"))?;
        let from = usize::try_from(start.saturating_sub(chunk_start)).unwrap_or(0);
        let to = usize::try_from((start + len - chunk_start).min(chunk_len)).unwrap_or(0);
        if !emit(plain.get(from..to).unwrap_or_default().to_vec()) {
            return Ok(());
        }
    }
    Ok(())
}

/// The customer key a request names for the object it reads (`x-amz-server-side-encryption-
/// customer-*`), or `None`.
pub fn customer_key(
    algorithm: Option<&str>,
    key: Option<&str>,
    key_md5: Option<&str>,
) -> S3Result<SseRequest> {
    SseRequest::from_headers((None, None), algorithm, key, key_md5)
}

/// The response headers' view of an object's encryption: (`x-amz-server-side-encryption`,
/// SSE-C algorithm, SSE-C key MD5).
#[must_use]
pub fn response_fields(info: Option<&SseInfo>) -> (Option<String>, Option<String>, Option<String>) {
    match info {
        Some(i) if kind_of(i) == KIND_S3 => (Some("AES256".into()), None, None),
        Some(i) if kind_of(i) == KIND_KMS => (Some("aws:kms".into()), None, None),
        Some(i) if kind_of(i) == KIND_C => (None, Some("AES256".into()), Some(i.key_md5.clone())),
        _ => (None, None, None),
    }
}

/// The KMS key id an SSE-KMS object was encrypted under, as responses echo it
/// (`x-amz-server-side-encryption-aws-kms-key-id`).
#[must_use]
pub fn kms_key_id(info: Option<&SseInfo>) -> Option<String> {
    let i = info.filter(|i| kind_of(i) == KIND_KMS)?;
    kms::parse_key_ref(&i.key_md5).map(|(name, _)| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(plain: &[u8], pushes: usize) {
        let master = KeyRing::new(MasterKey([7; 32]));
        let (key, info) = new_key(&master, &SseRequest::S3).unwrap().unwrap();
        let mut e = Encryptor::new(key, 3);
        let mut ct = Vec::new();
        let step = plain.len() / pushes.max(1) + 1;
        for c in plain.chunks(step) {
            ct.extend(e.push(c));
        }
        ct.extend(e.finish());
        assert_eq!(ct.len() as u64, cipher_len(plain.len() as u64, true));
        let key = open_key(&master, &info, &SseRequest::None).unwrap();
        for (start, len) in [
            (0, plain.len()),
            (1, plain.len().saturating_sub(2)),
            (70_000, 5),
        ] {
            if start + len > plain.len() {
                continue;
            }
            let mut got = Vec::new();
            decrypt_range(
                &key,
                3,
                plain.len() as u64,
                start as u64,
                len as u64,
                &mut |off, n| Ok(ct[off as usize..(off as usize + n).min(ct.len())].to_vec()),
                &mut |b| {
                    got.extend(b);
                    true
                },
            )
            .unwrap();
            assert_eq!(got, &plain[start..start + len]);
        }
        // Truncating the last chunk is detected.
        if plain.len() > CHUNK as usize {
            let cut = &ct[..(SALT + CHUNK + TAG) as usize];
            let r = decrypt_range(
                &key,
                3,
                CHUNK,
                0,
                CHUNK,
                &mut |off, n| Ok(cut[off as usize..off as usize + n].to_vec()),
                &mut |_| true,
            );
            assert!(r.is_err());
        }
    }

    #[test]
    fn chunked_round_trips() {
        roundtrip(b"", 1);
        roundtrip(b"hello", 1);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        roundtrip(&big, 1);
        roundtrip(&big, 7);
        roundtrip(&big[..CHUNK as usize], 3);
    }

    /// Regression: a multipart part uploaded again under the upload's data key reused the
    /// nonces of its first upload (part number and chunk index) with other plaintext.
    #[test]
    fn a_part_encrypted_twice_never_repeats_a_nonce() {
        let master = KeyRing::new(MasterKey([3; 32]));
        let (key, _) = new_key(&master, &SseRequest::S3).unwrap().unwrap();
        let seal = |plain: &[u8]| {
            let mut e = Encryptor::new(key.clone(), 5);
            let mut ct = e.push(plain);
            ct.extend(e.finish());
            ct
        };
        let (a, b) = (seal(&[0u8; 100]), seal(&[0u8; 100]));
        assert_ne!(a[..SALT as usize], b[..SALT as usize], "same salt twice");
        // Same plaintext, same key, same part: different ciphertext (the keystream differs).
        assert_ne!(a[SALT as usize..], b[SALT as usize..]);
    }

    /// Objects written before the salt (kind without the suffix) still read.
    #[test]
    fn unsalted_objects_still_read() {
        let master = KeyRing::new(MasterKey([4; 32]));
        let (_, mut info) = new_key(&master, &SseRequest::S3).unwrap().unwrap();
        info.kind = KIND_S3.into();
        let key = open_key(&master, &info, &SseRequest::None).unwrap();
        assert!(!key.salted);
        let mut e = Encryptor::new(key.clone(), 2);
        let mut ct = e.push(b"legacy bytes");
        ct.extend(e.finish());
        assert_eq!(ct.len() as u64, cipher_len(12, false));
        // The legacy layout: no salt, nonce = part | index | last.
        let n = nonce(&[0; 12], 2, 0, true);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(&n), Payload::from(ct.as_slice()))
            .unwrap();
        assert_eq!(plain, b"legacy bytes");
        assert_eq!(response_fields(Some(&info)).0.as_deref(), Some("AES256"));
    }

    #[test]
    fn customer_keys_are_checked() {
        let master = KeyRing::new(MasterKey([1; 32]));
        let key = B64.encode([9u8; 32]);
        let md5 = B64.encode(md5::Md5::digest([9u8; 32]));
        let c =
            SseRequest::from_headers((None, None), Some("AES256"), Some(&key), Some(&md5)).unwrap();
        let (_, info) = new_key(&master, &c).unwrap().unwrap();
        assert!(open_key(&master, &info, &c).is_ok());
        assert!(open_key(&master, &info, &SseRequest::None).is_err());
        let other = SseRequest::from_headers(
            (None, None),
            Some("AES256"),
            Some(&B64.encode([8u8; 32])),
            None,
        )
        .unwrap();
        assert!(open_key(&master, &info, &other).is_err());
        assert!(
            SseRequest::from_headers((None, None), Some("AES256"), Some(&key), Some("bad"))
                .is_err()
        );
        assert!(SseRequest::from_headers((Some("aws:kms:dsse"), None), None, None, None).is_err());
        assert!(SseRequest::from_headers((None, Some("k")), None, None, None).is_err());
        assert!(!info.sealed.windows(32).any(|w| w == [9u8; 32]));
    }
}
