//! Upload integrity: which checksums to compute, and comparing them with what the client sent
//! (Content-MD5, `x-amz-checksum-*` headers, or `aws-chunked` trailers). s3s parses these but
//! verifies none of them; a mismatch here means nothing is committed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::dto::Checksum;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use fsgate_store::model::StoredChecksum;

/// The five algorithms, as S3 names them.
pub const ALGORITHMS: [&str; 5] = ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"];

/// Checksums the client sent in headers, by algorithm.
#[derive(Debug, Default, Clone)]
pub struct Claimed {
    /// (algorithm, base64 value) from `x-amz-checksum-*` headers.
    pub values: Vec<(&'static str, String)>,
}

impl Claimed {
    /// From the five optional input fields, in `ALGORITHMS` order.
    #[must_use]
    pub fn from_fields(fields: [Option<&String>; 5]) -> Self {
        let values = ALGORITHMS
            .iter()
            .zip(fields)
            .filter_map(|(a, v)| v.map(|v| (*a, v.clone())))
            .collect();
        Self { values }
    }
}

pub fn enable(h: &mut ChecksumHasher, algo: &str) -> S3Result<()> {
    match algo.to_ascii_uppercase().as_str() {
        "CRC32" => h.crc32 = Some(Default::default()),
        "CRC32C" => h.crc32c = Some(Default::default()),
        "CRC64NVME" => h.crc64nvme = Some(Default::default()),
        "SHA1" => h.sha1 = Some(Default::default()),
        "SHA256" => h.sha256 = Some(Default::default()),
        other => {
            return Err(s3_error!(
                InvalidArgument,
                "Unsupported checksum algorithm {other}"
            ));
        }
    }
    Ok(())
}

/// The algorithm named by a trailer header (`x-amz-trailer: x-amz-checksum-crc32`).
fn trailer_algorithm(headers: &HeaderMap) -> Option<String> {
    let t = headers.get("x-amz-trailer")?.to_str().ok()?;
    t.split(',').map(str::trim).find_map(|name| {
        name.to_ascii_lowercase()
            .strip_prefix("x-amz-checksum-")
            .map(str::to_ascii_uppercase)
    })
}

/// Builds the hasher for an upload: every algorithm the client declared, sent, or will send in
/// a trailer.
pub fn hasher_for(
    algorithm: Option<&str>,
    claimed: &Claimed,
    headers: &HeaderMap,
) -> S3Result<ChecksumHasher> {
    let mut h = ChecksumHasher::default();
    if let Some(a) = algorithm {
        enable(&mut h, a)?;
    }
    for (a, _) in &claimed.values {
        enable(&mut h, a)?;
    }
    if let Some(a) = trailer_algorithm(headers) {
        enable(&mut h, &a)?;
    }
    Ok(h)
}

fn computed_value<'a>(c: &'a Checksum, algo: &str) -> Option<&'a String> {
    match algo {
        "CRC32" => c.checksum_crc32.as_ref(),
        "CRC32C" => c.checksum_crc32c.as_ref(),
        "CRC64NVME" => c.checksum_crc64nvme.as_ref(),
        "SHA1" => c.checksum_sha1.as_ref(),
        "SHA256" => c.checksum_sha256.as_ref(),
        _ => None,
    }
}

fn mismatch(algo: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::BadDigest,
        format!("The {algo} you specified did not match the calculated checksum."),
    )
}

/// Compares the computed checksums with the claimed ones and with any trailer values.
pub fn verify(
    computed: &Checksum,
    claimed: &Claimed,
    trailers: Option<&HeaderMap>,
) -> S3Result<()> {
    for (algo, value) in &claimed.values {
        if computed_value(computed, algo) != Some(value) {
            return Err(mismatch(algo));
        }
    }
    if let Some(t) = trailers {
        for algo in ALGORITHMS {
            let name = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
            if let Some(v) = t.get(name.as_str()).and_then(|v| v.to_str().ok())
                && computed_value(computed, algo).map(String::as_str) != Some(v.trim())
            {
                return Err(mismatch(algo));
            }
        }
    }
    Ok(())
}

/// Parses Content-MD5: 16 bytes in base64, or `InvalidDigest`.
pub fn content_md5(v: Option<&String>) -> S3Result<Option<[u8; 16]>> {
    let Some(v) = v else { return Ok(None) };
    let bytes = STANDARD
        .decode(v.trim())
        .map_err(|_| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?;
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| s3_error!(InvalidDigest, "The Content-MD5 you specified was invalid."))?;
    Ok(Some(arr))
}

/// Checks the body's MD5 against Content-MD5.
pub fn verify_md5(expected: Option<[u8; 16]>, actual: &[u8; 16]) -> S3Result<()> {
    match expected {
        Some(e) if &e != actual => Err(s3_error!(
            BadDigest,
            "The Content-MD5 you specified did not match what we received."
        )),
        _ => Ok(()),
    }
}

/// The computed checksums as stored records.
#[must_use]
pub fn to_stored(c: &Checksum) -> Vec<StoredChecksum> {
    ALGORITHMS
        .iter()
        .filter_map(|a| {
            computed_value(c, a).map(|v| StoredChecksum {
                algorithm: (*a).to_owned(),
                value: v.clone(),
            })
        })
        .collect()
}

/// Stored checksums back into the s3s output shape.
#[must_use]
pub fn from_stored(stored: &[StoredChecksum]) -> Checksum {
    let mut c = Checksum::default();
    for s in stored {
        let v = Some(s.value.clone());
        match s.algorithm.as_str() {
            "CRC32" => c.checksum_crc32 = v,
            "CRC32C" => c.checksum_crc32c = v,
            "CRC64NVME" => c.checksum_crc64nvme = v,
            "SHA1" => c.checksum_sha1 = v,
            "SHA256" => c.checksum_sha256 = v,
            _ => {}
        }
    }
    c
}

/// The checksum of checksums S3 returns for a multipart object: the algorithm applied to the
/// concatenated binary part checksums, base64, suffixed `-N`.
pub fn composite(algo: &str, part_values: &[&str]) -> S3Result<Option<StoredChecksum>> {
    let mut h = ChecksumHasher::default();
    enable(&mut h, algo)?;
    for v in part_values {
        let Ok(raw) = STANDARD.decode(v) else {
            return Ok(None);
        };
        h.update(&raw);
    }
    let c = h.finalize();
    Ok(
        computed_value(&c, &algo.to_ascii_uppercase()).map(|v| StoredChecksum {
            algorithm: algo.to_ascii_uppercase(),
            value: format!("{v}-{}", part_values.len()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_mismatch_and_accepts_match() {
        let mut h = ChecksumHasher::default();
        enable(&mut h, "crc32").unwrap();
        h.update(b"hello");
        let c = h.finalize();
        let good = computed_value(&c, "CRC32").unwrap().clone();
        let ok = Claimed {
            values: vec![("CRC32", good)],
        };
        assert!(verify(&c, &ok, None).is_ok());
        let bad = Claimed {
            values: vec![("CRC32", "AAAAAA==".into())],
        };
        assert_eq!(
            verify(&c, &bad, None).unwrap_err().code(),
            &S3ErrorCode::BadDigest
        );
    }

    #[test]
    fn content_md5_must_be_16_bytes_of_base64() {
        assert!(content_md5(Some(&"not base64!".to_string())).is_err());
        assert!(content_md5(Some(&"AAAA".to_string())).is_err());
        assert!(
            content_md5(Some(&"XUFAKrxLKna5cZ2REBfFkg==".to_string()))
                .unwrap()
                .is_some()
        );
    }
}
