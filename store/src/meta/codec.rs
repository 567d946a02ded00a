//! The versioned value codec: `[version: u8][postcard bytes]`.
//!
//! Every value stored in RocksDB goes through `encode`/`decode`, which reject unknown versions
//! with `StoreError::Corrupt` instead of guessing.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{StoreError, StoreResult};

/// The value format version written by this release.
pub const VALUE_VERSION: u8 = 1;

/// Encodes a value with the current version byte.
pub fn encode<T: Serialize>(value: &T) -> StoreResult<Vec<u8>> {
    encode_version(VALUE_VERSION, value)
}

/// Decodes a value, refusing versions this release does not know.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> StoreResult<T> {
    match bytes.split_first() {
        Some((&VALUE_VERSION, body)) => decode_body(what, body),
        Some((v, _)) => Err(StoreError::Corrupt {
            what,
            detail: format!("unknown value version {v}"),
        }),
        None => Err(StoreError::Corrupt {
            what,
            detail: "empty value".into(),
        }),
    }
}

/// Encodes a value with an explicit version byte (for types whose shape changed since version
/// 1 and that keep a decoder for the old one).
pub fn encode_version<T: Serialize>(version: u8, value: &T) -> StoreResult<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.push(version);
    postcard::to_extend(value, out).map_err(|e| StoreError::Corrupt {
        what: "value encoding",
        detail: e.to_string(),
    })
}

/// Decodes the body of a value whose version byte the caller has checked.
pub fn decode_body<T: DeserializeOwned>(what: &'static str, body: &[u8]) -> StoreResult<T> {
    postcard::from_bytes(body).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BucketRecord;

    #[test]
    fn round_trip() {
        let rec = BucketRecord {
            created_ns: 42,
            ..BucketRecord::default()
        };
        let bytes = encode(&rec).unwrap();
        assert_eq!(bytes[0], VALUE_VERSION);
        let back: BucketRecord = decode("bucket", &bytes).unwrap();
        assert_eq!(back, rec);
    }

    #[test]
    fn unknown_version_is_corrupt_not_panic() {
        let err = decode::<BucketRecord>("bucket", &[9, 1, 2]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { what: "bucket", .. }));
        let err = decode::<BucketRecord>("bucket", &[]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
        // A truncated body is corrupt too.
        let err = decode::<crate::model::ObjectManifest>("object", &[1]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }));
    }
}
