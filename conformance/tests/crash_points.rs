//! Crash points: for each kind of change, abort the server at every durable step in turn
//! (`fsgate_store::crash`: blob sync, rename, directory sync, metadata commit, after the
//! commit, blob removal, audit commit), restart it, and check what it finds:
//! - `fsgate check` is clean after the start-up collection: reference counts equal the
//!   references of manifests and parts, no blob is missing, none is left unreferenced, every
//!   inline version has its bytes;
//! - an acknowledged change is there, whole; an unacknowledged one is either not visible or
//!   visible whole (never a mix, never a torn object); what the change did not touch is intact;
//! - the audit log verifies, and holds every record of the set-up's requests.
//!
//! The binary must be built with the `crash-points` feature (the test command does:
//! `scripts/test.sh`); without it no step aborts and these tests fail saying so.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, ObjectLockRetention,
    ObjectLockRetentionMode,
};
use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, bin, run};
use sha2::{Digest, Sha256};

use crate::rust_sdk::client;

const BUCKET: &str = "crash-points";

/// Deterministic bytes for a tag.
fn content(tag: &str, len: usize) -> Vec<u8> {
    let seed = Sha256::digest(tag.as_bytes());
    (0..len).map(|i| seed[i % 32] ^ (i / 32) as u8).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Overwrite a small (inline) object.
    PutInline,
    /// Overwrite a large (blob) object: the old blob is released.
    PutBlob,
    /// Complete a two-part multipart upload.
    Complete,
    /// Copy one object over another.
    Copy,
    /// Delete three objects in one DeleteObjects.
    DeleteObjects,
    /// Delete a key in a versioned bucket (a delete marker).
    DeleteMarker,
    /// Delete one version for good.
    DeleteVersion,
    /// Set an object's retention (Object Lock).
    Retention,
    /// Start on a data directory with unreferenced blobs (garbage collection).
    Collection,
}

/// What the set-up left for the change and the checks.
#[derive(Default)]
struct Setup {
    upload_id: String,
    versions: Vec<String>,
    /// Audit records the set-up's server wrote.
    audit_records: u64,
}

async fn put(c: &Client, key: &str, body: Vec<u8>) -> Option<String> {
    c.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"))
        .version_id
}

/// The object's bytes; `None` when it is not there (404).
async fn get(c: &Client, key: &str, version: Option<&str>) -> Option<Vec<u8>> {
    match c
        .get_object()
        .bucket(BUCKET)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
    {
        Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            assert_eq!(status, Some(404), "get {key} {version:?}: {e:?}");
            None
        }
    }
}

fn whole(got: Option<&[u8]>, allowed: &[Option<&[u8]>], what: &str) {
    assert!(
        allowed.contains(&got),
        "{what}: {:?} bytes, not one of the allowed states",
        got.map(<[u8]>::len)
    );
}

impl Change {
    async fn setup(self, c: &Client) -> Setup {
        let mut setup = Setup::default();
        let mut create = c.create_bucket().bucket(BUCKET);
        if self == Self::Retention {
            create = create.object_lock_enabled_for_bucket(true);
        }
        create.send().await.unwrap();
        if matches!(self, Self::DeleteMarker | Self::DeleteVersion) {
            c.put_bucket_versioning()
                .bucket(BUCKET)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        // Something no change touches: it must stay whole through every crash.
        put(c, "bystander", content("bystander", 200_000)).await;
        match self {
            Self::PutInline | Self::PutBlob | Self::Collection => {
                put(c, "k", content("old", self.object_len())).await;
            }
            Self::Complete => {
                let up = c
                    .create_multipart_upload()
                    .bucket(BUCKET)
                    .key("k")
                    .send()
                    .await
                    .unwrap();
                setup.upload_id = up.upload_id.unwrap();
                for (n, len) in [(1, 5 << 20), (2, 1000)] {
                    c.upload_part()
                        .bucket(BUCKET)
                        .key("k")
                        .upload_id(&setup.upload_id)
                        .part_number(n)
                        .body(ByteStream::from(content(&format!("part{n}"), len)))
                        .send()
                        .await
                        .unwrap();
                }
            }
            Self::Copy => {
                put(c, "src", content("src", 300_000)).await;
                put(c, "k", content("old", 300_000)).await;
            }
            Self::DeleteObjects => {
                for k in ["a", "b", "c"] {
                    put(c, k, content(k, 300_000)).await;
                }
            }
            Self::DeleteMarker | Self::DeleteVersion => {
                for v in ["v1", "v2"] {
                    let id = put(c, "k", content(v, 300_000)).await;
                    setup.versions.push(id.unwrap());
                }
            }
            Self::Retention => {
                put(c, "k", content("old", 300_000)).await;
            }
        }
        setup
    }

    /// The size of the object `k` a PutObject change writes over: kept inline, or a blob.
    fn object_len(self) -> usize {
        if self == Self::PutInline {
            1000
        } else {
            300_000
        }
    }

    /// The change itself: `true` when acknowledged.
    async fn apply(self, c: &Client, setup: &Setup) -> bool {
        match self {
            Self::PutInline | Self::PutBlob => c
                .put_object()
                .bucket(BUCKET)
                .key("k")
                .body(ByteStream::from(content("new", self.object_len())))
                .send()
                .await
                .is_ok(),
            Self::Complete => {
                let parts = c
                    .list_parts()
                    .bucket(BUCKET)
                    .key("k")
                    .upload_id(&setup.upload_id)
                    .send()
                    .await;
                let Ok(parts) = parts else { return false };
                let done = parts
                    .parts()
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.part_number.unwrap())
                            .e_tag(p.e_tag.clone().unwrap())
                            .build()
                    })
                    .collect();
                c.complete_multipart_upload()
                    .bucket(BUCKET)
                    .key("k")
                    .upload_id(&setup.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(done))
                            .build(),
                    )
                    .send()
                    .await
                    .is_ok()
            }
            Self::Copy => c
                .copy_object()
                .bucket(BUCKET)
                .key("k")
                .copy_source(format!("{BUCKET}/src"))
                .send()
                .await
                .is_ok(),
            Self::DeleteObjects => {
                let ids = ["a", "b", "c"]
                    .iter()
                    .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                    .collect();
                c.delete_objects()
                    .bucket(BUCKET)
                    .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
                    .send()
                    .await
                    .is_ok_and(|r| r.errors().is_empty())
            }
            Self::DeleteMarker => c
                .delete_object()
                .bucket(BUCKET)
                .key("k")
                .send()
                .await
                .is_ok(),
            Self::DeleteVersion => c
                .delete_object()
                .bucket(BUCKET)
                .key("k")
                .version_id(&setup.versions[0])
                .send()
                .await
                .is_ok(),
            Self::Retention => {
                let until = aws_sdk_s3::primitives::DateTime::from_secs(
                    i64::try_from(
                        std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_secs(),
                    )
                    .unwrap()
                        + 86_400,
                );
                c.put_object_retention()
                    .bucket(BUCKET)
                    .key("k")
                    .retention(
                        ObjectLockRetention::builder()
                            .mode(ObjectLockRetentionMode::Governance)
                            .retain_until_date(until)
                            .build(),
                    )
                    .send()
                    .await
                    .is_ok()
            }
            // The change is the start itself.
            Self::Collection => true,
        }
    }

    /// What a restarted server must show, given whether the change was acknowledged.
    async fn verify(self, c: &Client, setup: &Setup, acked: bool) {
        let bystander = content("bystander", 200_000);
        whole(
            get(c, "bystander", None).await.as_deref(),
            &[Some(&bystander)],
            "bystander",
        );
        let got = get(c, "k", None).await;
        let got = got.as_deref();
        match self {
            Self::PutInline | Self::PutBlob => {
                let len = self.object_len();
                let (old, new) = (content("old", len), content("new", len));
                let allowed: &[Option<&[u8]>] = if acked {
                    &[Some(&new)]
                } else {
                    &[Some(&old), Some(&new)]
                };
                whole(got, allowed, "k");
            }
            Self::Complete => {
                let mut joined = content("part1", 5 << 20);
                joined.extend(content("part2", 1000));
                let allowed: &[Option<&[u8]>] = if acked {
                    &[Some(&joined)]
                } else {
                    &[None, Some(&joined)]
                };
                whole(got, allowed, "k");
                if got.is_none() {
                    // Not completed: the upload and both parts are still there to retry.
                    let parts = c
                        .list_parts()
                        .bucket(BUCKET)
                        .key("k")
                        .upload_id(&setup.upload_id)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(parts.parts().len(), 2);
                }
            }
            Self::Copy => {
                let (old, src) = (content("old", 300_000), content("src", 300_000));
                let allowed: &[Option<&[u8]>] = if acked {
                    &[Some(&src)]
                } else {
                    &[Some(&old), Some(&src)]
                };
                whole(got, allowed, "k");
                whole(get(c, "src", None).await.as_deref(), &[Some(&src)], "src");
            }
            Self::DeleteObjects => {
                for k in ["a", "b", "c"] {
                    let data = content(k, 300_000);
                    let allowed: &[Option<&[u8]>] =
                        if acked { &[None] } else { &[None, Some(&data)] };
                    whole(get(c, k, None).await.as_deref(), allowed, k);
                }
            }
            Self::DeleteMarker => {
                let v2 = content("v2", 300_000);
                let allowed: &[Option<&[u8]>] = if acked { &[None] } else { &[None, Some(&v2)] };
                whole(got, allowed, "k");
                for (i, v) in ["v1", "v2"].iter().enumerate() {
                    let data = content(v, 300_000);
                    let read = get(c, "k", Some(&setup.versions[i])).await;
                    whole(read.as_deref(), &[Some(&data)], v);
                }
            }
            Self::DeleteVersion => {
                let (v1, v2) = (content("v1", 300_000), content("v2", 300_000));
                whole(got, &[Some(&v2)], "k");
                let allowed: &[Option<&[u8]>] = if acked { &[None] } else { &[None, Some(&v1)] };
                let read = get(c, "k", Some(&setup.versions[0])).await;
                whole(read.as_deref(), allowed, "v1");
            }
            Self::Retention => {
                whole(got, &[Some(&content("old", 300_000))], "k");
                let r = c
                    .get_object_retention()
                    .bucket(BUCKET)
                    .key("k")
                    .send()
                    .await;
                let set = r.is_ok_and(|r| {
                    r.retention()
                        .and_then(|r| r.mode())
                        .is_some_and(|m| *m == ObjectLockRetentionMode::Governance)
                });
                assert!(set || !acked, "acknowledged retention lost");
            }
            Self::Collection => whole(got, &[Some(&content("old", 300_000))], "k"),
        }
    }
}

/// Blob files under a data directory.
fn blob_files(data: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("blobs"), &mut out);
    out
}

/// Writes a blob file no manifest refers to, as a crash between a commit and the removal of
/// a blob it released leaves.
fn plant_orphan(data: &Path, tag: &str) {
    let bytes = content(tag, 100_000);
    let hex = hex::encode(Sha256::digest(&bytes));
    let dir = data.join("blobs").join(&hex[..2]).join(&hex[2..4]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), bytes).unwrap();
}

/// `fsgate check` on a stopped server's data directory: must be clean.
fn check_clean(data: &Path, context: &str) {
    let o = run(std::process::Command::new(bin("fsgate"))
        .args(["check", "--data"])
        .arg(data));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{context}: fsgate check found problems: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `fsctl audit verify` against a running server: the log verifies; returns its size.
fn audit_verifies(s: &Server, context: &str) -> u64 {
    let o = s.fsctl(&["audit", "verify"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{context}: audit verify: {out}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["records"].as_u64().unwrap_or_else(|| panic!("{out}"))
}

/// The steps of one class (`data` or `audit`) a crash log names (`data 3 meta.commit`), as
/// `3 meta.commit`. The other class's steps come from another thread and may be logged
/// between the aborting step's line and the abort, so they are left out.
fn steps(log: &Path, class: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(class)?.strip_prefix(' ').map(str::to_owned))
        .collect()
}

/// Runs `change` with an abort at each of its durable steps in turn (`class` `data` or
/// `audit`), checking every restart. Returns the steps enumerated.
async fn enumerate(change: Change, class: &str) -> Vec<String> {
    // The set-up, on a server stopped cleanly: its data directory is the template.
    let mut base = Server::start();
    let c = client(&base, ROOT_USER, ROOT_PASS);
    let mut setup = change.setup(&c).await;
    setup.audit_records = audit_verifies(&base, "set-up");
    base.stop();
    if change == Change::Collection {
        plant_orphan(&base.data(), "orphan-1");
        plant_orphan(&base.data(), "orphan-2");
    }

    let mut enumerated = Vec::new();
    for n in 1..=40u32 {
        let context = format!("{change:?}, {class} step {n}");
        let log_path = base.dir.path().join(format!("crash-{n}.log"));
        let at = if class == "audit" {
            format!("audit:{n}")
        } else {
            n.to_string()
        };
        let envs = [
            ("FSGATE_CRASH_AT", at.as_str()),
            ("FSGATE_CRASH_LOG", log_path.to_str().unwrap()),
        ];
        let (mut s, acked, status) = match Server::start_on_copy(&base.data(), &[], &envs) {
            Ok(mut s) => {
                let c = client(&s, ROOT_USER, ROOT_PASS);
                let acked = change.apply(&c, &setup).await;
                // Stop it (a step may also come during the shutdown); SIGABRT: it crashed.
                let status = match s.wait_exit(Duration::from_millis(300)) {
                    Some(status) => Some(status),
                    None => {
                        s.signal_term();
                        s.wait_exit(Duration::from_secs(20))
                    }
                };
                (s, acked, status)
            }
            // Aborted while starting (the collection of unreferenced blobs).
            Err(failed) => {
                let (s, status) = *failed;
                (s, false, Some(status))
            }
        };
        let crashed = status.is_some_and(|st| st.signal() == Some(libc::SIGABRT));
        let passed = steps(&log_path, class);
        if crashed {
            enumerated.push(passed.last().cloned().unwrap_or_default());
        }

        check_clean(&s.data(), &context);
        if change == Change::Collection {
            let left = blob_files(&s.data()).len();
            assert_eq!(left, 2, "{context}: blobs left after collection");
        }
        s.set_envs(&[]);
        s.try_start_again()
            .unwrap_or_else(|st| panic!("{context}: restart failed ({st}):\n{}", s.log()));
        let c = client(&s, ROOT_USER, ROOT_PASS);
        change.verify(&c, &setup, acked).await;
        let records = audit_verifies(&s, &context);
        assert!(
            records >= setup.audit_records,
            "{context}: the log holds {records} records, the set-up wrote {}",
            setup.audit_records
        );
        s.stop();
        if !crashed {
            assert!(
                n > 1,
                "{change:?}: no step aborted: is fsgate built with `--features \
                 fsgate-store/crash-points` (scripts/test.sh builds it so)?"
            );
            eprintln!("crash points of {change:?} ({class}): {enumerated:?}");
            return enumerated;
        }
    }
    panic!("{change:?}: more than 40 steps");
}

macro_rules! crash_point_tests {
    ($($name:ident: $change:expr, $class:expr, $expect:expr;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let steps = enumerate($change, $class).await;
            for want in $expect {
                assert!(
                    steps.iter().any(|s| s.ends_with(want)),
                    "{:?}: no {want} step among {steps:?}",
                    $change
                );
            }
        }
    )*};
}

crash_point_tests! {
    crash_points_put_inline: Change::PutInline, "data", ["meta.commit", "meta.committed"];
    crash_points_put_blob: Change::PutBlob, "data",
        ["blob.sync", "blob.rename", "blob.dir_sync", "meta.commit", "meta.committed", "blob.remove"];
    crash_points_complete_multipart: Change::Complete, "data", ["meta.commit", "meta.committed"];
    crash_points_copy: Change::Copy, "data", ["meta.commit", "meta.committed", "blob.remove"];
    crash_points_delete_objects: Change::DeleteObjects, "data", ["meta.commit", "blob.remove"];
    crash_points_delete_marker: Change::DeleteMarker, "data", ["meta.commit", "meta.committed"];
    crash_points_delete_version: Change::DeleteVersion, "data", ["meta.commit", "blob.remove"];
    crash_points_object_lock: Change::Retention, "data", ["meta.commit", "meta.committed"];
    crash_points_collection: Change::Collection, "data", ["blob.remove"];
    crash_points_audit_commit: Change::PutBlob, "audit", ["audit.commit"];
}
