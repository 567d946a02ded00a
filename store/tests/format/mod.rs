//! Format fixtures: one value of every type stored in RocksDB, as this format version (value
//! version 1) encodes it, committed under `tests/fixtures/v1/`. Every later version must
//! decode them to the same values: a change of shape needs a new value version and a decoder
//! for the old one (see `meta/codec.rs`). `FSGATE_WRITE_FIXTURES=1` writes missing files (only
//! ever for a new format version; existing files are never rewritten).

use std::path::PathBuf;

use fsgate_store::blob::BlobId;
use fsgate_store::meta::codec;
use fsgate_store::model::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Read at run time (cargo sets it for tests) before the compile-time value: a target
/// directory shared between clones at different paths may hold a build whose compile-time
/// path is another clone's.
fn dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("tests/fixtures/v1")
}

fn headers() -> ObjectHeaders {
    ObjectHeaders {
        content_type: Some("text/plain".into()),
        content_encoding: Some("gzip".into()),
        content_disposition: Some("attachment; filename=\"r.txt\"".into()),
        content_language: Some("de".into()),
        cache_control: Some("no-cache".into()),
        expires: Some("Thu, 01 Dec 2094 16:00:00 GMT".into()),
        user_metadata: vec![("owner".into(), "ops".into()), ("ü".into(), "\"q\"".into())],
    }
}

fn extras() -> ObjectExtras {
    ObjectExtras {
        tags: vec![("class".into(), "secret".into())],
        retention: Some(Retention {
            mode: RetentionMode::Compliance,
            until_ns: 4_000_000_000_000_000_000,
        }),
        legal_hold: true,
        sse: Some(SseInfo {
            kind: "SSE-S3/salted".into(),
            key_md5: String::new(),
            sealed: (0u8..60).collect(),
        }),
    }
}

fn checksums() -> Vec<StoredChecksum> {
    vec![StoredChecksum {
        algorithm: "CRC64NVME".into(),
        value: "AAAAAAAAAAA=-2".into(),
    }]
}

/// Decodes the fixture `name` and compares it with `value` (writing it first when asked).
fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &'static str,
    value: &T,
) {
    let path = dir().join(format!("{name}.hex"));
    if !path.exists() && std::env::var_os("FSGATE_WRITE_FIXTURES").is_some() {
        std::fs::create_dir_all(dir()).unwrap();
        std::fs::write(&path, hex::encode(codec::encode(value).unwrap()) + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let bytes = hex::decode(text.trim()).unwrap();
    let got: T = codec::decode(name, &bytes)
        .unwrap_or_else(|e| panic!("fixture {name} no longer decodes: {e}"));
    assert_eq!(&got, value, "fixture {name} decodes to another value");
}

#[test]
fn every_stored_type_of_format_version_1_still_decodes() {
    check(
        "bucket",
        &BucketRecord {
            created_ns: 1_764_000_000_000_000_000,
            versioning: Versioning::Suspended,
            object_lock: true,
        },
    );
    check(
        "object",
        &ObjectManifest {
            size: 5_242_883,
            etag: "d41d8cd98f00b204e9800998ecf8427e-2".into(),
            modified_ns: 1_764_000_000_123_456_789,
            extents: vec![
                Extent {
                    blob: BlobId([7; 32]),
                    len: 5_242_880,
                },
                Extent {
                    blob: BlobId([9; 32]),
                    len: 3,
                },
            ],
            parts_count: 2,
            headers: headers(),
            checksums: checksums(),
            inline: false,
            seq: 1_764_000_000_123_456_789,
            version_id: Some("0000000001764000000123456789".into()),
            delete_marker: false,
            extras: extras(),
        },
    );
    check(
        "delete-marker",
        &ObjectManifest {
            size: 0,
            etag: String::new(),
            modified_ns: 1,
            extents: Vec::new(),
            parts_count: 0,
            headers: ObjectHeaders::default(),
            checksums: Vec::new(),
            inline: true,
            seq: 2,
            version_id: None,
            delete_marker: true,
            extras: ObjectExtras::default(),
        },
    );
    check(
        "upload",
        &UploadRecord {
            initiated_ns: 3,
            headers: headers(),
            checksum_algorithm: Some("CRC32C".into()),
            initiator: "kc:carol".into(),
            extras: extras(),
        },
    );
    check(
        "part",
        &PartRecord {
            etag: "0cc175b9c0f1b6a831c399e269772661".into(),
            size: 1,
            blob: BlobId([1; 32]),
            modified_ns: 4,
            checksums: checksums(),
        },
    );
    check(
        "user",
        &UserRecord {
            name: "alice".into(),
            enabled: false,
            groups: vec!["ops".into(), "dev".into()],
            created_ns: 5,
        },
    );
    check(
        "key",
        &AccessKeyRecord {
            access_key: "AKIAEXAMPLE000000000".into(),
            secret_key: "s".repeat(40),
            user: "alice".into(),
            created_ns: 6,
        },
    );
    for (name, target, policy) in [
        (
            "attachment-role",
            AttachTarget::User("alice".into()),
            AttachedPolicy::Role {
                role: "readwrite".into(),
                bucket: Some("team".into()),
                prefix: Some("home/alice/".into()),
            },
        ),
        (
            "attachment-cedar",
            AttachTarget::Group("ops".into()),
            AttachedPolicy::Cedar {
                text: "permit(principal, action, resource);".into(),
            },
        ),
    ] {
        check(
            name,
            &Attachment {
                id: "att-1".into(),
                target,
                policy,
                created_ns: 7,
            },
        );
    }
    check(
        "audit",
        &AuditRecord {
            time_ns: 8,
            request_id: "0000000000000000000800000001".into(),
            principal: "alice".into(),
            access_key: "AKIAEXAMPLE000000000".into(),
            auth: "presigned".into(),
            source_ip: "10.1.2.3".into(),
            user_agent: "aws-cli/2".into(),
            action: "s3:GetObjectVersion".into(),
            bucket: "team".into(),
            key: "doc.txt".into(),
            decision: "deny".into(),
            policies: vec!["default-deny".into()],
            status: 403,
            error_code: "AccessDenied".into(),
            bytes_in: 0,
            bytes_out: 243,
            duration_us: 91,
            version_id: "v1".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        },
    );
    check(
        "service-account",
        &ServiceAccountRecord {
            access_key: "AKIASVC0000000000000".into(),
            owner: "alice".into(),
            policy: Some("permit(principal, action, resource);".into()),
            description: "nightly backup".into(),
            created_ns: 9,
        },
    );
    for (name, source) in [
        (
            "session-assume-role",
            SessionSource::AssumeRole {
                parent_key: "AKIAEXAMPLE000000000".into(),
            },
        ),
        (
            "session-web-identity",
            SessionSource::WebIdentity {
                provider: "kc".into(),
            },
        ),
        (
            "session-ldap",
            SessionSource::Ldap {
                provider: "corp".into(),
                dn: "uid=lena,ou=people,dc=example,dc=org".into(),
            },
        ),
    ] {
        check(
            name,
            &SessionRecord {
                access_key: "ASIAEXAMPLE000000000".into(),
                secret_key: "t".repeat(40),
                token: "u".repeat(96),
                user: "corp:lena".into(),
                groups: vec!["devs".into()],
                tags: vec![("department".into(), "finance".into())],
                policy: None,
                source,
                created_ns: 10,
                expires_ns: 11,
            },
        );
    }
    check(
        "idp-oidc",
        &IdentityProvider::Oidc(OidcProvider {
            name: "kc".into(),
            issuer: "https://sso.example.org/realms/main".into(),
            client_id: "fsgate".into(),
            groups_claim: "groups".into(),
            user_claim: "preferred_username".into(),
            tag_claims: vec!["department".into()],
        }),
    );
    check(
        "idp-ldap",
        &IdentityProvider::Ldap(LdapProvider {
            name: "corp".into(),
            server: "ldap.example.org:389".into(),
            tls: "starttls".into(),
            tls_insecure: false,
            bind_dn: "cn=fsgate,dc=example,dc=org".into(),
            bind_password: "pw".into(),
            user_base: "ou=people,dc=example,dc=org".into(),
            user_filter: "(uid=%s)".into(),
            group_base: "ou=groups,dc=example,dc=org".into(),
            group_filter: "(member=%d)".into(),
            group_attribute: "cn".into(),
        }),
    );
    check("revocation", &1_764_000_000_000_000_000u64);
    check(
        "kms-key",
        &KmsKeyRecord {
            name: "app-data".into(),
            created_ns: 12,
            enabled: true,
            versions: vec![(0u8..60).collect(), (60u8..120).collect()],
        },
    );
}

/// Writes `fuzz/corpus/stored_value/` from the data directory `FSGATE_SEED_DATA` (a stopped
/// server's). Run by hand after a format change:
/// `FSGATE_SEED_DATA=DIR cargo test --release --workspace --test main -- --ignored fuzz_seeds`.
#[test]
#[ignore = "writes the fuzz corpus; run by hand"]
fn fuzz_seeds_from_a_data_directory() {
    let data = std::env::var("FSGATE_SEED_DATA").expect("FSGATE_SEED_DATA: a data directory");
    let store = fsgate_store::Store::open(
        std::path::Path::new(&data),
        fsgate_store::StoreOptions::default(),
    )
    .unwrap();
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/stored_value");
    std::fs::create_dir_all(&out).unwrap();
    for seed in fsgate_store::fuzzing::seeds(&store).unwrap() {
        use sha2::Digest as _;
        let name = hex::encode(&sha2::Sha256::digest(&seed)[..8]);
        std::fs::write(out.join(name), seed).unwrap();
    }
}
