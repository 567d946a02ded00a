//! Entry points for the fuzz targets (`fuzz/`): every decoder of a stored value, fed bytes as
//! a corrupted or hostile data directory would hold them. Each must answer with an error,
//! never panic, hang or allocate without bound; a value that decodes must encode back to a
//! value that decodes the same (no format drift between writer and reader).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::meta::{Cf, codec};
use crate::model::{
    AccessKeyRecord, Attachment, BucketRecord, GroupRecord, IdentityProvider, KeySettings,
    KmsKeyRecord, NamedPolicyRecord, ObjectManifest, PartRecord, ServiceAccountRecord,
    SessionRecord, UploadRecord, UserRecord,
};

/// Decodes `value` as `T`; what decodes must survive a round trip unchanged.
#[expect(
    clippy::panic,
    reason = "a fuzz finding: the round trip changed the value"
)]
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &[u8]) {
    if let Ok(v) = codec::decode::<T>("fuzz", value) {
        let again = codec::encode(&v)
            .and_then(|bytes| codec::decode::<T>("fuzz", &bytes))
            .unwrap_or_else(|e| panic!("{v:?} does not survive a round trip: {e}"));
        assert_eq!(v, again, "a value changed in a round trip");
    }
}

/// Every stored value's decoder; the first byte picks one, the rest is the stored value.
pub fn stored_value(data: &[u8]) {
    let Some((&pick, value)) = data.split_first() else {
        return;
    };
    match pick % 20 {
        0 => round_trip::<ObjectManifest>(value),
        1 => round_trip::<BucketRecord>(value),
        2 => round_trip::<UploadRecord>(value),
        3 => round_trip::<PartRecord>(value),
        4 => round_trip::<UserRecord>(value),
        5 => round_trip::<AccessKeyRecord>(value),
        6 => round_trip::<Attachment>(value),
        7 => round_trip::<ServiceAccountRecord>(value),
        8 => round_trip::<KeySettings>(value),
        9 => round_trip::<NamedPolicyRecord>(value),
        10 => round_trip::<GroupRecord>(value),
        11 => round_trip::<SessionRecord>(value),
        12 => round_trip::<KmsKeyRecord>(value),
        13 => round_trip::<IdentityProvider>(value),
        14 => round_trip::<u64>(value),
        15 => {
            let _ = crate::integrity::inline_bytes(value);
        }
        16 => {
            if let Some(sums) = crate::blob::sums::ChunkSums::from_bytes(value) {
                let again = crate::blob::sums::ChunkSums::from_bytes(&sums.to_bytes());
                assert!(again.is_some(), "chunk sums do not survive a round trip");
            }
        }
        17 => {
            let _ = crate::audit::decode_record(value);
        }
        18 => {
            let _ = crate::audit::log::parse_checkpoint(value);
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(value) {
                let _ = crate::objects::parse_version_id(text);
            }
        }
    }
}

/// Seeds for [`stored_value`] from a real store: every value of every column family, each
/// prefixed with the byte that picks its decoder (IAM records, of several kinds in one
/// family, once for each IAM decoder). `fuzz/corpus/stored_value/` was made from the data
/// directory of a server after the conformance suite's kinds of traffic.
pub fn seeds(store: &crate::Store) -> crate::StoreResult<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let families: [(Cf, &[u8]); 11] = [
        (Cf::Objects, &[0]),
        (Cf::Versions, &[0]),
        (Cf::Buckets, &[1]),
        (Cf::Uploads, &[2]),
        (Cf::Parts, &[3]),
        (Cf::Iam, &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
        (Cf::BlobRefs, &[14]),
        (Cf::Inline, &[15]),
        (Cf::BlobSums, &[16]),
        (Cf::Audit, &[17]),
        (Cf::AuditLog, &[18]),
    ];
    for (cf, picks) in families {
        let mut it = store.meta().cursor(cf)?;
        it.seek_to_first();
        let mut n = 0;
        // A few of each: the fuzzer needs shapes, not volume.
        while it.valid() && n < 40 {
            if let Some(v) = it.value() {
                for pick in picks {
                    let mut seed = vec![*pick];
                    seed.extend_from_slice(v);
                    out.push(seed);
                }
            }
            n += 1;
            it.next();
        }
        it.status()?;
    }
    Ok(out)
}
