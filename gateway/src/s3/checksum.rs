//! Upload integrity: which checksums to compute, and comparing them with what the client sent
//! (Content-MD5, `x-amz-checksum-*` headers, or `aws-chunked` trailers). s3s parses these but
//! verifies none of them; a mismatch here means nothing is committed. And a multipart object's
//! checksum, of either type AWS has: COMPOSITE (the checksum of the parts' checksums, shown
//! with a `-N` suffix) or FULL_OBJECT (the CRC of the whole object, combined from the parts'
//! CRCs and sizes).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumType};
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

/// How a multipart object stores part `n`'s checksum of `algo` (`CRC32#3`).
#[must_use]
pub fn part_algorithm(algo: &str, n: usize) -> String {
    format!("{algo}#{n}")
}

/// Part `n`'s stored checksums, in the fields of an `ObjectPart`.
#[must_use]
pub fn part_checksums(stored: &[StoredChecksum], n: usize) -> Checksum {
    let suffix = format!("#{n}");
    let part: Vec<StoredChecksum> = stored
        .iter()
        .filter_map(|s| {
            s.algorithm.strip_suffix(&suffix).map(|a| StoredChecksum {
                algorithm: a.to_owned(),
                value: s.value.clone(),
            })
        })
        .collect();
    from_stored(&part)
}

/// Stored checksums back into the s3s output shape, with their type: COMPOSITE for a
/// checksum of part checksums (`-N`), FULL_OBJECT otherwise (single uploads too, as AWS).
#[must_use]
pub fn from_stored(stored: &[StoredChecksum]) -> Checksum {
    let mut c = Checksum {
        checksum_type: stored.first().map(|s| {
            let composite = s
                .value
                .rsplit_once('-')
                .is_some_and(|(_, n)| n.parse::<u32>().is_ok());
            ChecksumType::from_static(if composite {
                ChecksumType::COMPOSITE
            } else {
                ChecksumType::FULL_OBJECT
            })
        }),
        ..Checksum::default()
    };
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

/// How a multipart object's checksum is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The checksum of the parts' checksums.
    Composite,
    /// The checksum of the whole object (CRCs only).
    FullObject,
}

impl Kind {
    /// The name S3 uses.
    #[must_use]
    pub fn s3_name(self) -> &'static str {
        match self {
            Kind::Composite => ChecksumType::COMPOSITE,
            Kind::FullObject => ChecksumType::FULL_OBJECT,
        }
    }
}

/// An upload's checksum algorithm and type, as its record keeps them: `CRC32` (composite, as
/// records from before types say) or `CRC32 FULL_OBJECT`.
#[must_use]
pub fn upload_checksum_of(record: Option<&str>) -> Option<(String, Kind)> {
    let r = record?;
    Some(match r.split_once(' ') {
        Some((algo, ChecksumType::FULL_OBJECT)) => (algo.to_owned(), Kind::FullObject),
        Some((algo, _)) => (algo.to_owned(), Kind::Composite),
        None => (r.to_owned(), Kind::Composite),
    })
}

/// The record form of an upload's checksum algorithm and type.
#[must_use]
pub fn upload_checksum_record(algo: &str, kind: Kind) -> String {
    match kind {
        Kind::Composite => algo.to_owned(),
        Kind::FullObject => format!("{algo} {}", ChecksumType::FULL_OBJECT),
    }
}

/// CreateMultipartUpload's `x-amz-checksum-algorithm` and `x-amz-checksum-type`, checked as
/// AWS checks them: a type needs an algorithm; FULL_OBJECT is for the CRCs, COMPOSITE for all
/// but CRC64NVME; without a type, CRC64NVME is FULL_OBJECT and the others COMPOSITE.
pub fn upload_checksum(
    algorithm: Option<&str>,
    ty: Option<&str>,
) -> S3Result<Option<(String, Kind)>> {
    let Some(algo) = algorithm.map(str::to_ascii_uppercase) else {
        if ty.is_some() {
            return Err(s3_error!(
                InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header."
            ));
        }
        return Ok(None);
    };
    if !ALGORITHMS.contains(&algo.as_str()) {
        return Err(s3_error!(
            InvalidArgument,
            "Unsupported checksum algorithm {algo}"
        ));
    }
    let crc = algo.starts_with("CRC");
    let kind = match ty.map(str::to_ascii_uppercase).as_deref() {
        None if algo == "CRC64NVME" => Kind::FullObject,
        None | Some(ChecksumType::COMPOSITE) if algo != "CRC64NVME" => Kind::Composite,
        Some(ChecksumType::FULL_OBJECT) if crc => Kind::FullObject,
        Some(t @ (ChecksumType::COMPOSITE | ChecksumType::FULL_OBJECT)) => {
            return Err(s3_error!(
                InvalidRequest,
                "The {t} checksum type cannot be used with the {} checksum algorithm.",
                algo.to_ascii_lowercase()
            ));
        }
        Some(t) => {
            return Err(s3_error!(
                InvalidRequest,
                "Value for x-amz-checksum-type header is invalid: {t}"
            ));
        }
        None => Kind::Composite,
    };
    Ok(Some((algo, kind)))
}

/// The CRC of a whole object from its parts' CRCs (base64, big-endian) and sizes, in order:
/// FULL_OBJECT's checksum. `None` when a part's value is not one.
#[must_use]
pub fn full_object(algo: &str, parts: &[(&str, u64)]) -> Option<StoredChecksum> {
    use crc_fast::CrcAlgorithm;
    let (algorithm, width) = match algo {
        "CRC32" => (CrcAlgorithm::Crc32IsoHdlc, 4),
        "CRC32C" => (CrcAlgorithm::Crc32Iscsi, 4),
        "CRC64NVME" => (CrcAlgorithm::Crc64Nvme, 8),
        _ => return None,
    };
    let mut whole: Option<u64> = None;
    for (value, size) in parts {
        let raw = STANDARD.decode(value).ok()?;
        if raw.len() != width {
            return None;
        }
        let crc = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        whole = Some(match whole {
            None => crc,
            Some(w) => crc_fast::checksum_combine(algorithm, w, crc, *size),
        });
    }
    let bytes = whole?.to_be_bytes();
    Some(StoredChecksum {
        algorithm: algo.to_owned(),
        value: STANDARD.encode(bytes.get(8 - width..)?),
    })
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

    /// FULL_OBJECT: the combination of the parts' CRCs is the CRC of the whole object.
    #[test]
    fn full_object_crcs_combine_from_parts() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, b) = data.split_at(12_345);
        for algo in ["CRC32", "CRC32C", "CRC64NVME"] {
            let of = |bytes: &[u8]| {
                let mut h = ChecksumHasher::default();
                enable(&mut h, algo).unwrap();
                h.update(bytes);
                to_stored(&h.finalize()).remove(0).value
            };
            let (va, vb) = (of(a), of(b));
            let got = full_object(algo, &[(&va, a.len() as u64), (&vb, b.len() as u64)]).unwrap();
            assert_eq!(got.value, of(&data), "{algo}");
        }
        assert!(full_object("SHA256", &[("x", 1)]).is_none());
    }

    #[test]
    fn checksum_types_follow_aws_rules() {
        assert_eq!(upload_checksum(None, None).unwrap(), None);
        assert!(upload_checksum(None, Some("COMPOSITE")).is_err());
        assert_eq!(
            upload_checksum(Some("crc32"), None).unwrap(),
            Some(("CRC32".into(), Kind::Composite))
        );
        assert_eq!(
            upload_checksum(Some("CRC64NVME"), None).unwrap(),
            Some(("CRC64NVME".into(), Kind::FullObject))
        );
        assert_eq!(
            upload_checksum(Some("CRC32C"), Some("FULL_OBJECT")).unwrap(),
            Some(("CRC32C".into(), Kind::FullObject))
        );
        assert!(upload_checksum(Some("SHA256"), Some("FULL_OBJECT")).is_err());
        assert!(upload_checksum(Some("CRC64NVME"), Some("COMPOSITE")).is_err());
        assert!(upload_checksum(Some("CRC32"), Some("SIDEWAYS")).is_err());
        for k in [Kind::Composite, Kind::FullObject] {
            let r = upload_checksum_record("CRC32", k);
            assert_eq!(upload_checksum_of(Some(&r)), Some(("CRC32".into(), k)));
        }
        assert_eq!(
            from_stored(&[StoredChecksum {
                algorithm: "CRC32".into(),
                value: "AAAAAA==-3".into()
            }])
            .checksum_type
            .unwrap()
            .as_str(),
            "COMPOSITE"
        );
        assert_eq!(
            from_stored(&[StoredChecksum {
                algorithm: "CRC32".into(),
                value: "AAAAAA==".into()
            }])
            .checksum_type
            .unwrap()
            .as_str(),
            "FULL_OBJECT"
        );
    }
}
