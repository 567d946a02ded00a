//! The store's logic: commits, reference counting and blob removal, listing order and
//! pagination, multipart, recovery, IAM and audit. The suite runs once per backend:
//! `disk::` (RocksDB and files in a temporary directory), `memory::` (both in memory) and
//! `postgres::` (metadata on a real PostgreSQL the suite starts, blobs in files). Tests of
//! what only disk has (recovery after a crash, reopening) return early on memory; tests of
//! RocksDB's own files return early on memory and PostgreSQL.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

mod format;
mod integrity;
mod pg;

use integrity::{
    inline_values_are_checked_and_scrubbed, reads_check_blob_chunks_and_quarantine_what_fails,
    scrub_rehashes_every_blob_and_adds_missing_sums,
};

use std::sync::Arc;

use fsgate_store::audit::{AuditFilter, AuditWriter, request_id};
use fsgate_store::blob::{BlobId, StagedBlob};
use fsgate_store::list::{ListEntry, ListQuery};
use fsgate_store::model::{AuditRecord, ObjectExtras, ObjectHeaders, ObjectManifest, Versioning};
use fsgate_store::objects::{DeleteCondition, NewObject, WriteCondition};
use fsgate_store::{Backend, Store, StoreError, StoreOptions};
use md5::Digest as _;

thread_local! {
    /// The backend this thread's test runs on (see `on_every_backend!`).
    static BACKEND: std::cell::Cell<Backend> = const { std::cell::Cell::new(Backend::Disk) };
    /// The PostgreSQL schema holding this thread's test's metadata, on `postgres::`.
    static META_URL: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn with_backend(backend: Backend, test: fn()) {
    BACKEND.set(backend);
    test();
}

fn with_postgres(test: fn()) {
    BACKEND.set(Backend::Disk);
    META_URL.set(Some(pg::fresh_url()));
    test();
}

/// Every test, once per backend: `disk::name`, `memory::name` and `postgres::name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod disk {
            $(#[test]
            fn $name() {
                super::with_backend(fsgate_store::Backend::Disk, super::$name);
            })*
        }
        mod memory {
            $(#[test]
            fn $name() {
                super::with_backend(fsgate_store::Backend::Memory, super::$name);
            })*
        }
        mod postgres {
            $(#[test]
            fn $name() {
                super::with_postgres(super::$name);
            })*
        }
    };
}

fn open(dir: &tempfile::TempDir) -> Store {
    let opts = StoreOptions {
        backend: BACKEND.get(),
        meta_url: META_URL.with_borrow(Clone::clone),
        ..StoreOptions::default()
    };
    Store::open(dir.path(), opts).unwrap()
}

/// True (and says so) when the test runs on a backend that keeps nothing across reopening.
fn memory_backend(test: &str) -> bool {
    let memory = BACKEND.get() == Backend::Memory;
    if memory {
        eprintln!("{test}: disk only");
    }
    memory
}

/// True (and says so) when the test runs on a backend other than RocksDB, whose files it
/// reaches into.
fn rocksdb_only(test: &str) -> bool {
    let other = BACKEND.get() == Backend::Memory || META_URL.with_borrow(Option::is_some);
    if other {
        eprintln!("{test}: RocksDB only");
    }
    other
}

fn stage(s: &Store, data: &[u8]) -> StagedBlob {
    let mut sink = s.blobs().stage().unwrap();
    for chunk in data.chunks(7) {
        sink.write(chunk).unwrap();
    }
    sink.finish().unwrap()
}

fn copy_of(src: &ObjectManifest) -> NewObject {
    NewObject {
        headers: src.headers.clone(),
        checksums: src.checksums.clone(),
        ..NewObject::default()
    }
}

fn put(s: &Store, b: &str, k: &str, data: &[u8]) {
    let staged = stage(s, data);
    s.put_object(b, k, staged, NewObject::default()).unwrap();
}

fn read(s: &Store, b: &str, k: &str) -> Vec<u8> {
    let m = s.head_object(b, k).unwrap();
    if m.inline {
        return s.inline_data(b, k, m.seq).unwrap();
    }
    let mut out = Vec::new();
    for e in &m.extents {
        let mut r = s.blobs().open(&e.blob, 0).unwrap();
        std::io::Read::read_to_end(&mut r, &mut out).unwrap();
    }
    out
}

/// Blobs the store holds, as its backend lists them.
fn blob_count(s: &Store) -> usize {
    s.blobs().list().unwrap().len()
}

/// Blob files in a disk store's directory.
fn blob_files(dir: &tempfile::TempDir) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(&dir.path().join("blobs"))
}

fn identical_content_is_stored_once_and_freed_with_its_last_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    put(&s, "b", "one", b"same bytes");
    put(&s, "b", "two", b"same bytes");
    assert_eq!(blob_count(&s), 1);
    let id = s.head_object("b", "one").unwrap().extents[0].blob;
    assert_eq!(s.blob_refs(&id).unwrap(), 2);
    s.copy_object("b", "one", None, "b", "three", |src| Ok(copy_of(src)))
        .unwrap();
    assert_eq!(s.blob_refs(&id).unwrap(), 3);
    s.delete_object("b", "one", None, false).unwrap();
    put(&s, "b", "two", b"other bytes"); // overwrite releases the old reference
    assert_eq!(s.blob_refs(&id).unwrap(), 1);
    assert_eq!(blob_count(&s), 2);
    s.delete_object("b", "three", None, false).unwrap();
    assert_eq!(s.blob_refs(&id).unwrap(), 0);
    assert_eq!(blob_count(&s), 1);
    assert_eq!(read(&s, "b", "two"), b"other bytes");
    // Deleting a missing key is not an error (S3), a missing bucket is.
    assert!(!s.delete_object("b", "nope", None, false).unwrap().existed);
    assert!(matches!(
        s.delete_object("nob", "k", None, false),
        Err(StoreError::NoSuchBucket)
    ));
}

fn buckets_refuse_duplicates_and_deletion_while_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    assert!(matches!(
        s.create_bucket("b", false),
        Err(StoreError::BucketExists)
    ));
    put(&s, "b", "k", b"x");
    assert!(matches!(
        s.delete_bucket("b"),
        Err(StoreError::BucketNotEmpty)
    ));
    s.delete_object("b", "k", None, false).unwrap();
    let id = s
        .create_upload(
            "b",
            "k",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    assert!(matches!(
        s.delete_bucket("b"),
        Err(StoreError::BucketNotEmpty)
    ));
    s.abort_upload("b", "k", &id).unwrap();
    s.delete_bucket("b").unwrap();
    assert!(matches!(s.bucket("b"), Err(StoreError::NoSuchBucket)));
    // A bucket whose name is a prefix of another's does not see its objects.
    s.create_bucket("ab", false).unwrap();
    s.create_bucket("abc", false).unwrap();
    put(&s, "abc", "k", b"x");
    s.delete_bucket("ab").unwrap();
}

/// Bucket documents: made with the bucket in one batch, listed by name prefix within their
/// bucket only, and gone with it.
fn bucket_documents_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket_owned(
        "b",
        false,
        Some("user:a"),
        &[("ownership", b"ObjectWriter")],
    )
    .unwrap();
    s.create_bucket("b2", false).unwrap();
    assert_eq!(s.bucket_owner("b").unwrap().as_deref(), Some("user:a"));
    assert_eq!(
        s.bucket_config("b", "ownership").unwrap().as_deref(),
        Some(&b"ObjectWriter"[..])
    );
    for (b, name) in [
        ("b", "acl"),
        ("b", "acl/k1"),
        ("b", "acl/k/2"),
        ("b2", "acl/k3"),
    ] {
        s.set_bucket_config(b, name, Some(name.as_bytes())).unwrap();
    }
    let under: Vec<String> = s
        .bucket_configs_under("b", "acl/")
        .unwrap()
        .into_iter()
        .map(|(n, v)| {
            assert_eq!(n.as_bytes(), v.as_slice());
            n
        })
        .collect();
    assert_eq!(under, ["acl/k/2", "acl/k1"]);
    s.delete_bucket("b").unwrap();
    s.create_bucket("b", false).unwrap();
    assert!(s.bucket_configs_under("b", "acl/").unwrap().is_empty());
    assert_eq!(s.bucket_configs_under("b2", "acl/").unwrap().len(), 1);
}

fn names(page: &fsgate_store::list::ListPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| match e {
            ListEntry::Object { key, .. } => key.clone(),
            ListEntry::CommonPrefix(p) => p.clone(),
        })
        .collect()
}

fn listing_order_delimiters_and_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    let keys = [
        "a/1", "a/2", "a/3/x", "b", "c/d/e", "é", "Z", "a0", "a\u{7f}",
    ];
    for k in keys {
        put(&s, "b", k, k.as_bytes());
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let all = s
        .list_objects(
            "b",
            &ListQuery {
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&all), sorted);
    let top = s
        .list_objects(
            "b",
            &ListQuery {
                delimiter: Some("/"),
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&top), ["Z", "a/", "a0", "a\u{7f}", "b", "c/", "é"]);
    let under = s
        .list_objects(
            "b",
            &ListQuery {
                prefix: "a/",
                delimiter: Some("/"),
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&under), ["a/1", "a/2", "a/3/"]);
    // Page through two at a time with the store's own continuation positions.
    for delim in [None, Some("/")] {
        let mut seen = Vec::new();
        let mut next: Option<Vec<u8>> = None;
        loop {
            let page = s
                .list_objects(
                    "b",
                    &ListQuery {
                        delimiter: delim,
                        start_at: next.as_deref(),
                        max: 2,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert!(page.entries.len() <= 2);
            seen.extend(names(&page));
            match page.next {
                Some(n) => next = Some(n),
                None => break,
            }
        }
        let want = if delim.is_some() {
            names(&top)
        } else {
            names(&all)
        };
        assert_eq!(seen, want, "{delim:?}");
    }
    let after = s
        .list_objects(
            "b",
            &ListQuery {
                start_after: Some("a0"),
                max: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(names(&after), ["a\u{7f}", "b", "c/d/e", "é"]);
}

fn multipart_moves_references_and_checks_parts() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    let id = s
        .create_upload(
            "b",
            "k",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    let p1 = vec![1u8; 100];
    let p2 = vec![2u8; 10];
    let r1 = s
        .put_part("b", "k", &id, 1, stage(&s, &p1), Vec::new(), None)
        .unwrap();
    // Re-uploading part 2 replaces (and releases) the first upload of it.
    s.put_part("b", "k", &id, 2, stage(&s, b"first try"), Vec::new(), None)
        .unwrap();
    let r2 = s
        .put_part("b", "k", &id, 2, stage(&s, &p2), Vec::new(), None)
        .unwrap();
    s.put_part(
        "b",
        "k",
        &id,
        3,
        stage(&s, b"unused part"),
        Vec::new(),
        None,
    )
    .unwrap();
    assert_eq!(blob_count(&s), 3);
    let chosen = vec![(1, r1.etag.clone()), (2, r2.etag.clone())];
    assert!(matches!(
        s.complete_upload(
            "b",
            "k",
            &id,
            &[(2, r2.etag.clone()), (1, r1.etag.clone())],
            0,
            &WriteCondition::default(),
            |_| Ok(Vec::new())
        ),
        Err(StoreError::InvalidPartOrder)
    ));
    assert!(matches!(
        s.complete_upload(
            "b",
            "k",
            &id,
            &[(1, "00".into())],
            0,
            &WriteCondition::default(),
            |_| Ok(Vec::new())
        ),
        Err(StoreError::InvalidPart(_))
    ));
    assert!(matches!(
        s.complete_upload(
            "b",
            "k",
            &id,
            &chosen,
            1000,
            &WriteCondition::default(),
            |_| Ok(Vec::new())
        ),
        Err(StoreError::EntityTooSmall { part: 1, size: 100 })
    ));
    let m = s
        .complete_upload(
            "b",
            "k",
            &id,
            &chosen,
            100,
            &WriteCondition::default(),
            |_| Ok(Vec::new()),
        )
        .unwrap();
    assert!(m.etag.ends_with("-2"));
    assert_eq!(m.parts_count, 2);
    assert_eq!(read(&s, "b", "k"), [p1.as_slice(), p2.as_slice()].concat());
    // The unused part's blob is gone; the upload too.
    assert_eq!(blob_count(&s), 2);
    assert!(matches!(
        s.upload("b", "k", &id),
        Err(StoreError::NoSuchUpload)
    ));
    assert!(matches!(
        s.upload("b", "k", "not-an-id"),
        Err(StoreError::NoSuchUpload)
    ));
    s.delete_object("b", "k", None, false).unwrap();
    assert_eq!(blob_count(&s), 0);
}

fn listing_uploads_in_key_then_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    let a1 = s
        .create_upload(
            "b",
            "a",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let a2 = s
        .create_upload(
            "b",
            "a",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    let c = s
        .create_upload(
            "b",
            "dir/c",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    let page = s.list_uploads("b", "", None, None, None, 1000).unwrap();
    let got: Vec<(&str, &str)> = page
        .uploads
        .iter()
        .map(|u| (u.key.as_str(), u.upload_id.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("a", a1.as_str()),
            ("a", a2.as_str()),
            ("dir/c", c.as_str())
        ]
    );
    let page = s
        .list_uploads("b", "", Some("/"), None, None, 1000)
        .unwrap();
    assert_eq!(page.common_prefixes, ["dir/"]);
    let page = s
        .list_uploads("b", "", None, Some("a"), Some(&a1), 1)
        .unwrap();
    assert_eq!(page.uploads[0].upload_id, a2);
    assert!(page.truncated);
}

fn recovery_collects_staged_files_and_unreferenced_blobs() {
    if memory_backend("recovery") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let s = open(&dir);
        s.create_bucket("b", false).unwrap();
        put(&s, "b", "kept", b"kept bytes");
        // A crash after staging (never published) and one after publishing but before commit.
        let staged = stage(&s, b"staged only");
        std::mem::forget(staged);
        let mut published = stage(&s, b"published only");
        s.blobs().publish(&mut published).unwrap();
    }
    assert_eq!(blob_files(&dir), 2);
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        1
    );
    let s = open(&dir);
    let r = s.recovery();
    assert_eq!((r.staged_removed, r.unreferenced_removed), (1, 1));
    assert_eq!(blob_files(&dir), 1);
    assert_eq!(blob_count(&s), 1);
    assert_eq!(read(&s, "b", "kept"), b"kept bytes");
}

fn unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(&dir));
    std::fs::write(dir.path().join("FORMAT"), "fsgate-store 99\n").unwrap();
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::default()),
        Err(StoreError::Corrupt { .. })
    ));
}

fn iam_records() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_user("alice").unwrap();
    assert!(matches!(
        s.create_user("alice"),
        Err(StoreError::AlreadyExists(_))
    ));
    s.create_key("alice", "AK1", "SK1").unwrap();
    assert!(matches!(
        s.create_key("nobody", "AK2", "SK2"),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.key("AK1").unwrap().unwrap().user, "alice");
    let mut u = s.user("alice").unwrap();
    u.enabled = false;
    u.groups = vec!["ops".into()];
    s.update_user(&u).unwrap();
    assert_eq!(s.user("alice").unwrap(), u);
    s.delete_user("alice").unwrap();
    assert!(s.key("AK1").unwrap().is_none(), "a user's keys go with it");
}

fn audit_writer_commits_everything_and_queries_filter() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    let key = Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = AuditWriter::start(s.clone(), 8, key.clone()).unwrap();
    // A record whose id is not one fsgate makes cannot be keyed: it is refused alone and does
    // not stall the queue behind it.
    w.send_blocking(&AuditRecord {
        request_id: "not-a-request-id".into(),
        ..Default::default()
    });
    let base = 1_700_000_000_000_000_000u64;
    for i in 0..500u32 {
        let t = base + u64::from(i) * 1000;
        w.send_blocking(&AuditRecord {
            time_ns: t,
            request_id: request_id(t, i),
            principal: if i % 2 == 0 {
                "alice".into()
            } else {
                "bob".into()
            },
            bucket: "b".into(),
            key: format!("k{}", i % 5),
            decision: if i % 3 == 0 {
                "deny".into()
            } else {
                "allow".into()
            },
            ..Default::default()
        });
    }
    // Records a full queue gives back (capacity 8) are queued again, encoded.
    let mut given_back = 0;
    for i in 500..600u32 {
        let t = base + u64::from(i) * 1000;
        let rec = AuditRecord {
            time_ns: t,
            request_id: request_id(t, i),
            principal: "carol".into(),
            ..Default::default()
        };
        if let Err(full) = w.try_send(&(&rec).into()) {
            given_back += 1;
            w.send_encoded_blocking(full.0);
        }
    }
    w.flush();
    let carol = s
        .query_audit(&AuditFilter {
            principal: Some("carol".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(carol.len(), 100, "{given_back} given back by a full queue");
    let all = s
        .query_audit(&AuditFilter {
            until_ns: Some(base + 500 * 1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 500);
    assert!(all.windows(2).all(|p| p[0].time_ns < p[1].time_ns));
    let f = AuditFilter {
        principal: Some("alice".into()),
        decision: Some("deny".into()),
        key: Some("k0".into()),
        ..Default::default()
    };
    let got = s.query_audit(&f).unwrap();
    assert!(
        !got.is_empty()
            && got
                .iter()
                .all(|r| r.principal == "alice" && r.decision == "deny" && r.key == "k0")
    );
    let recent = s
        .query_audit(&AuditFilter {
            limit: 10,
            until_ns: Some(base + 500 * 1000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(recent.len(), 10);
    assert_eq!(recent.last().unwrap().time_ns, base + 499 * 1000);
    let window = s
        .query_audit(&AuditFilter {
            since_ns: Some(base + 100_000),
            until_ns: Some(base + 200_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(window.len(), 100);

    // The log: every record is a leaf, the export verifies with the public key, and a record's
    // proofs verify offline.
    w.checkpoint();
    assert_eq!(s.audit_log_size().unwrap(), 600);
    let latest = s.latest_audit_checkpoint().unwrap().unwrap();
    assert_eq!(latest.size, 600);
    let mut text = Vec::new();
    let mut from = Some(0);
    while let Some(f) = from {
        // Small pages (37 records, across checkpoints) join into one log.
        let page = s.audit_log_page(f, latest.size, 37, f == 0).unwrap();
        text.extend_from_slice(&page.text);
        from = page.next;
    }
    let report = fsgate_auditlog::verify::verify_bytes(key.public().clone(), &text);
    assert!(report.ok, "{report:?}");
    assert_eq!((report.records, report.tree_size), (600, 600));
    let id = request_id(base + 7 * 1000, 7);
    let proof = s.audit_proof(&id).unwrap();
    assert_eq!(
        fsgate_auditlog::proof::verify_proof(&proof, key.public()),
        Ok(())
    );
    // More records and a later checkpoint: the earlier log is a prefix of the later one.
    for i in 600..700u32 {
        let t = base + u64::from(i) * 1000;
        w.send_blocking(&AuditRecord {
            time_ns: t,
            request_id: request_id(t, i),
            ..Default::default()
        });
    }
    w.checkpoint();
    let c = s.audit_consistency(600, None).unwrap();
    assert_eq!((c.old.size, c.new.size), (600, 700));
    assert_eq!(
        fsgate_auditlog::proof::verify_consistency_doc(&c, key.public()),
        Ok(())
    );
    // A part of the log starting at a checkpoint verifies on its own (its frontier).
    let part = s.audit_log_page(600, 700, 1000, true).unwrap();
    assert!(part.text.starts_with(b"{\"frontier\":"));
    let report = fsgate_auditlog::verify::verify_bytes(key.public().clone(), &part.text);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.records, 100);
    drop(w);
    // The writer continues the stored tree after a restart.
    let w = AuditWriter::start(s.clone(), 8, key.clone()).unwrap();
    let t = base + 700 * 1000;
    w.send_blocking(&AuditRecord {
        time_ns: t,
        request_id: request_id(t, 700),
        ..Default::default()
    });
    w.checkpoint();
    let all = s.audit_log_page(0, 701, u64::MAX, true).unwrap();
    let report = fsgate_auditlog::verify::verify_bytes(key.public().clone(), &all.text);
    assert!(report.ok && report.records == 701, "{report:?}");
    drop(w);
}

/// Removes every row of the audit index (the position row included) from a closed store, and
/// writes a position row saying the log is indexed up to `position`, if given.
fn clear_audit_index(dir: &tempfile::TempDir, position: Option<u64>) {
    let db = rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        dir.path().join("meta"),
        fsgate_store::meta::CFS,
    )
    .unwrap();
    let cf = db.cf_handle("auditindex").unwrap();
    db.delete_range_cf(&cf, [0u8].as_slice(), [0xffu8; 16].as_slice())
        .unwrap();
    if let Some(p) = position {
        let mut v = vec![1u8];
        v.extend_from_slice(&p.to_be_bytes());
        db.put_cf(&cf, b"\xffposition", v).unwrap();
    }
}

/// Queries by principal, bucket, object and request id answer from the indexes exactly what a
/// scan of the table would, for every combination, time window and limit.
fn audit_indexes_answer_what_a_scan_would() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    let key = Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = AuditWriter::start(s.clone(), 64, key).unwrap();
    let base = 1_700_000_000_000_000_000u64;
    let principals = ["alice", "bob", "al", "sharelink:0f"];
    let buckets = ["b", "b2", ""];
    let mut all = Vec::new();
    for i in 0..3000u32 {
        let t = base + u64::from(i) * 1000;
        let bucket = buckets[(i % 7 % 3) as usize];
        let rec = AuditRecord {
            time_ns: t,
            request_id: request_id(t, i),
            principal: principals[(i % 4) as usize].into(),
            bucket: bucket.into(),
            key: if bucket.is_empty() {
                String::new()
            } else {
                format!("k/{}", i % 11)
            },
            decision: if i % 5 == 0 {
                "deny".into()
            } else {
                "allow".into()
            },
            ..Default::default()
        };
        w.send_blocking(&rec);
        all.push(rec);
    }
    w.flush();
    let scan = |f: &AuditFilter| -> Vec<String> {
        let mut v: Vec<String> = all
            .iter()
            .filter(|r| {
                f.matches(r)
                    && f.since_ns.is_none_or(|x| r.time_ns >= x)
                    && f.until_ns.is_none_or(|x| r.time_ns < x)
            })
            .map(|r| r.request_id.clone())
            .collect();
        if f.limit > 0 && v.len() > f.limit {
            v.drain(..v.len() - f.limit);
        }
        v
    };
    let mut checked = 0;
    for p in [
        None,
        Some("alice"),
        Some("al"),
        Some("sharelink:0f"),
        Some("nobody"),
    ] {
        for b in [None, Some("b"), Some("b2")] {
            for k in [None, Some("k/3")] {
                for (since, until, limit) in [
                    (None, None, 0),
                    (Some(base + 500_000), Some(base + 2_000_000), 0),
                    (None, Some(base + 1_500_000), 7),
                    (Some(base + 2_990_000), None, 1000),
                ] {
                    let f = AuditFilter {
                        principal: p.map(str::to_owned),
                        bucket: b.map(str::to_owned),
                        key: k.map(str::to_owned),
                        since_ns: since,
                        until_ns: until,
                        limit,
                        ..Default::default()
                    };
                    let got: Vec<String> = s
                        .query_audit(&f)
                        .unwrap()
                        .into_iter()
                        .map(|r| r.request_id)
                        .collect();
                    assert_eq!(got, scan(&f), "{f:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 120);
    // A request id is one point read.
    let one = s
        .query_audit(&AuditFilter {
            request_id: Some(all[1234].request_id.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].principal, all[1234].principal);
    drop(w);
    if rocksdb_only("audit_indexes_answer_what_a_scan_would") {
        return;
    }
    // A store whose records were written without the index (an older version) is indexed
    // when the writer starts.
    drop(s);
    clear_audit_index(&dir, None);
    let s = Arc::new(open(&dir));
    let f = AuditFilter {
        principal: Some("bob".into()),
        ..Default::default()
    };
    assert!(
        s.query_audit(&f).unwrap().is_empty(),
        "the index was removed"
    );
    let key = Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = AuditWriter::start(s.clone(), 8, key).unwrap();
    assert_eq!(s.query_audit(&f).unwrap().len(), 750, "indexed again");
    drop(w);
    // A crash after records committed but before their postings: the index says it covers
    // the log up to some position; the records past it are indexed from the log at start.
    drop(s);
    clear_audit_index(&dir, Some(1000));
    let s = Arc::new(open(&dir));
    let key = Arc::new(fsgate_auditlog::SigningKey::generate().unwrap());
    let w = AuditWriter::start(s.clone(), 8, key).unwrap();
    // bob is every 4th record from 1: those at positions 1000.. are found again.
    assert_eq!(
        s.query_audit(&f).unwrap().len(),
        500,
        "the records past the position"
    );
    drop(w);
}

fn blob_ids_round_trip() {
    let id = BlobId([7u8; 32]);
    assert_eq!(BlobId::from_hex(&id.to_hex()), Some(id));
    assert_eq!(BlobId::from_hex("zz"), None);
}

// Regression: a GET that read the manifest lost its blob when a concurrent overwrite released
// the last reference (fsctl bench mixed saw errors). Readers pin blobs; the last one frees them.
fn pinned_blobs_outlive_overwrite_and_are_freed_by_the_last_reader() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    s.create_bucket("b", false).unwrap();
    put(&s, "b", "k", b"old content");
    let pinned = s.pin_object("b", "k", None).unwrap();
    let old = pinned.manifest.extents[0].blob;
    let second = s.pin_object("b", "k", None).unwrap();
    put(&s, "b", "k", b"new content");
    s.delete_object("b", "k", None, false).unwrap();
    assert_eq!(s.blob_refs(&old).unwrap(), 0);
    let mut r = s.blobs().open(&old, 0).unwrap();
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut r, &mut got).unwrap();
    assert_eq!(got, b"old content", "a pinned blob stays readable");
    drop(pinned);
    assert_eq!(blob_count(&s), 1, "still pinned by the second reader");
    drop(second);
    assert_eq!(blob_count(&s), 0, "the last reader frees it");

    // Re-referenced while pending: the file must stay.
    put(&s, "b", "k", b"same again");
    let pinned = s.pin_object("b", "k", None).unwrap();
    s.delete_object("b", "k", None, false).unwrap();
    put(&s, "b", "k2", b"same again");
    drop(pinned);
    assert_eq!(read(&s, "b", "k2"), b"same again");
}

fn small_objects_live_inline_and_switch_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    s.create_bucket("b", false).unwrap();
    let md5 = |d: &[u8]| -> [u8; 16] { md5::Md5::digest(d).into() };
    s.put_object_inline("b", "k", b"tiny", md5(b"tiny"), NewObject::default())
        .unwrap();
    let m = s.head_object("b", "k").unwrap();
    assert!(m.inline && m.extents.is_empty() && m.size == 4);
    assert_eq!(m.etag, hex::encode(md5(b"tiny")));
    assert_eq!(blob_count(&s), 0);
    // Inline → blob → inline: no leftovers either way.
    put(&s, "b", "k", b"a blob now");
    assert!(!s.head_object("b", "k").unwrap().inline);
    assert_eq!(read(&s, "b", "k"), b"a blob now");
    s.put_object_inline(
        "b",
        "k",
        b"small again",
        md5(b"small again"),
        NewObject::default(),
    )
    .unwrap();
    assert_eq!(blob_count(&s), 0);
    assert_eq!(read(&s, "b", "k"), b"small again");
    // Copies get their own bytes; pins read them with the manifest.
    s.copy_object("b", "k", None, "b", "c", |src| Ok(copy_of(src)))
        .unwrap();
    s.delete_object("b", "k", None, false).unwrap();
    assert_eq!(read(&s, "b", "c"), b"small again");
    let pinned = s.pin_object("b", "c", None).unwrap();
    assert_eq!(pinned.inline.as_deref(), Some(&b"small again"[..]));
    s.delete_object("b", "c", None, false).unwrap();
    assert!(
        matches!(s.inline_data("b", "c", 1), Err(StoreError::Corrupt { .. })),
        "inline bytes deleted with the object"
    );
    let listed = s
        .list_objects(
            "b",
            &ListQuery {
                max: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(listed.entries.is_empty());
}

/// Small objects' bytes live in a hash memtable (they are only read by whole key): they read
/// back the same from the memtable, from SST files after a flush, with overwrites and deletes
/// on top of flushed bytes, and after reopening (the WAL replayed into a new memtable).
fn inline_bytes_read_back_from_memtable_files_and_wal() {
    if memory_backend("inline bytes after reopening") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    let key = |i: usize| format!("k{i:04}");
    let body = |i: usize, round: usize| format!("{round}:{i};").repeat(1 + i % 40).into_bytes();
    const N: usize = 600;
    for i in 0..N {
        put_inline(&s, "b", &key(i), &body(i, 0));
    }
    let expect = |s: &Store, round_of: &dyn Fn(usize) -> Option<usize>| {
        for i in 0..N {
            match round_of(i) {
                Some(r) => assert_eq!(read(s, "b", &key(i)), body(i, r), "{}", key(i)),
                None => assert!(
                    matches!(s.head_object("b", &key(i)), Err(StoreError::NoSuchKey)),
                    "{} deleted",
                    key(i)
                ),
            }
        }
    };
    expect(&s, &|_| Some(0));
    s.flush_metadata().unwrap();
    expect(&s, &|_| Some(0));
    for i in (0..N).step_by(3) {
        put_inline(&s, "b", &key(i), &body(i, 1));
    }
    for i in (0..N).step_by(5) {
        s.delete_object("b", &key(i), None, false).unwrap();
    }
    let now = |i: usize| match (i % 5, i % 3) {
        (0, _) => None,
        (_, 0) => Some(1),
        _ => Some(0),
    };
    expect(&s, &now);
    drop(s);
    let s = open(&dir);
    expect(&s, &now);
    s.flush_metadata().unwrap();
    expect(&s, &now);
}

fn put_inline(s: &Store, b: &str, k: &str, data: &[u8]) -> ObjectManifest {
    let md5: [u8; 16] = md5::Md5::digest(data).into();
    s.put_object_inline(b, k, data, md5, NewObject::default())
        .unwrap()
}

fn read_version(s: &Store, b: &str, k: &str, v: &str) -> Vec<u8> {
    let m = s.head_version(b, k, Some(v)).unwrap();
    if m.inline {
        return s.inline_data(b, k, m.seq).unwrap();
    }
    let mut out = Vec::new();
    for e in &m.extents {
        let mut r = s.blobs().open(&e.blob, 0).unwrap();
        std::io::Read::read_to_end(&mut r, &mut out).unwrap();
    }
    out
}

fn versions_of(s: &Store, b: &str) -> Vec<(String, String, bool, bool)> {
    use fsgate_store::versions::{VersionListEntry, VersionQuery};
    s.list_object_versions(
        b,
        &VersionQuery {
            max: 1000,
            ..VersionQuery::default()
        },
    )
    .unwrap()
    .entries
    .into_iter()
    .filter_map(|e| match e {
        VersionListEntry::Version(v) => {
            Some((v.key, v.version_id, v.is_latest, v.manifest.delete_marker))
        }
        VersionListEntry::CommonPrefix(_) => None,
    })
    .collect()
}

fn versioning_keeps_every_version_and_frees_blobs_with_the_last_reference() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    put(&s, "b", "k", &[1u8; 100_000]); // the null version, before versioning
    s.set_versioning("b", Versioning::Enabled).unwrap();
    put(&s, "b", "k", &[2u8; 100_000]);
    let v3 = put_inline(&s, "b", "k", b"three");
    let id3 = v3.version_id.clone().unwrap();
    assert_eq!(read(&s, "b", "k"), b"three");
    assert_eq!(read_version(&s, "b", "k", "null"), vec![1u8; 100_000]);
    let vs = versions_of(&s, "b");
    assert_eq!(vs.len(), 3);
    assert_eq!(vs[0], ("k".into(), id3.clone(), true, false));
    assert!(!vs[1].2 && !vs[2].2);
    assert_eq!(vs[2].1, "null");
    let id2 = vs[1].1.clone();
    assert_eq!(read_version(&s, "b", "k", &id2), vec![2u8; 100_000]);
    assert_eq!(blob_count(&s), 2);

    // A delete makes a marker; the object reads as missing, its versions stay.
    let d = s.delete_object("b", "k", None, false).unwrap();
    assert!(d.delete_marker);
    assert!(matches!(
        s.head_object("b", "k"),
        Err(StoreError::NoSuchKey)
    ));
    assert!(s.head_version("b", "k", None).unwrap().delete_marker);
    let listed = s
        .list_objects(
            "b",
            &ListQuery {
                max: 10,
                ..ListQuery::default()
            },
        )
        .unwrap();
    assert!(
        listed.entries.is_empty(),
        "a delete marker hides the key from listings"
    );
    assert!(matches!(
        s.delete_bucket("b"),
        Err(StoreError::BucketNotEmpty)
    ));

    // Removing the marker by id makes the newest version current again.
    let marker = d.version_id.unwrap();
    let d = s.delete_object("b", "k", Some(&marker), false).unwrap();
    assert!(d.delete_marker);
    assert_eq!(read(&s, "b", "k"), b"three");

    // Removing versions frees their blobs; the last one removes the key.
    s.delete_object("b", "k", Some(&id2), false).unwrap();
    assert_eq!(blob_count(&s), 1);
    s.delete_object("b", "k", Some("null"), false).unwrap();
    assert_eq!(blob_count(&s), 0);
    assert_eq!(versions_of(&s, "b").len(), 1);
    s.delete_object("b", "k", Some(&id3), false).unwrap();
    assert!(versions_of(&s, "b").is_empty());
    assert!(matches!(
        s.head_version("b", "k", Some(&id3)),
        Err(StoreError::NoSuchVersion)
    ));
    assert!(matches!(
        s.head_version("b", "k", Some("not-an-id")),
        Err(StoreError::InvalidVersionId)
    ));
    s.delete_bucket("b").unwrap();
}

fn suspended_versioning_replaces_only_the_null_version() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    s.set_versioning("b", Versioning::Enabled).unwrap();
    put(&s, "b", "k", &[1u8; 70_000]);
    s.set_versioning("b", Versioning::Suspended).unwrap();
    put(&s, "b", "k", &[2u8; 70_000]);
    put(&s, "b", "k", &[3u8; 70_000]);
    let vs = versions_of(&s, "b");
    assert_eq!(vs.len(), 2, "{vs:?}");
    assert_eq!(vs[0].1, "null");
    assert_eq!(read(&s, "b", "k"), vec![3u8; 70_000]);
    assert_eq!(
        blob_count(&s),
        2,
        "the replaced null version's blob is gone"
    );
    // A delete in a suspended bucket makes a null marker, replacing the null version.
    let d = s.delete_object("b", "k", None, false).unwrap();
    assert_eq!(d.version_id.as_deref(), Some("null"));
    assert_eq!(blob_count(&s), 1);
    let vs = versions_of(&s, "b");
    assert_eq!(vs.len(), 2);
    assert!(vs[0].3 && vs[0].2);
    assert!(matches!(
        s.set_versioning("b", Versioning::Unversioned),
        Err(StoreError::InvalidRequest(_))
    ));
}

fn version_listing_pages_by_key_and_version_markers() {
    use fsgate_store::versions::{VersionListEntry, VersionQuery};
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    s.set_versioning("b", Versioning::Enabled).unwrap();
    for k in ["a", "b", "c"] {
        for i in 0..3u8 {
            put_inline(&s, "b", k, &[i]);
        }
    }
    put_inline(&s, "b", "d/x", b"1");
    put_inline(&s, "b", "d/y", b"1");
    let all = versions_of(&s, "b");
    assert_eq!(all.len(), 11);
    // Walk in pages of 2 and get the same sequence.
    let mut walked = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s
            .list_object_versions(
                "b",
                &VersionQuery {
                    key_marker: km.as_deref(),
                    version_id_marker: vm.as_deref(),
                    max: 2,
                    ..VersionQuery::default()
                },
            )
            .unwrap();
        for e in &page.entries {
            if let VersionListEntry::Version(v) = e {
                walked.push((v.key.clone(), v.version_id.clone(), v.is_latest, false));
                km = Some(v.key.clone());
                vm = Some(v.version_id.clone());
            }
        }
        if !page.truncated {
            break;
        }
    }
    assert_eq!(walked, all);
    // With a delimiter, d/ is one common prefix, and a key marker inside it skips it.
    let page = s
        .list_object_versions(
            "b",
            &VersionQuery {
                delimiter: Some("/"),
                key_marker: Some("c"),
                max: 10,
                ..VersionQuery::default()
            },
        )
        .unwrap();
    assert_eq!(
        page.entries,
        vec![VersionListEntry::CommonPrefix("d/".into())]
    );
    let page = s
        .list_object_versions(
            "b",
            &VersionQuery {
                delimiter: Some("/"),
                key_marker: Some("d/"),
                max: 10,
                ..VersionQuery::default()
            },
        )
        .unwrap();
    assert!(page.entries.is_empty());
}

/// Racing conditional deletes of one version: exactly one passes `If-Match` on the ETag
/// while the other writers replace the object; a mismatch leaves everything as it was.
fn conditional_deletes_check_what_they_remove() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    s.create_bucket("b", false).unwrap();
    put(&s, "b", "k", b"first");
    let m = s.head_object("b", "k").unwrap();
    let wrong = DeleteCondition {
        etag: Some("0123".into()),
        ..DeleteCondition::default()
    };
    assert!(matches!(
        s.delete_object_if("b", "k", None, false, &wrong),
        Err(StoreError::PreconditionFailed)
    ));
    assert_eq!(read(&s, "b", "k"), b"first");
    let by_size = DeleteCondition {
        size: Some(m.size + 1),
        ..DeleteCondition::default()
    };
    assert!(s.delete_object_if("b", "k", None, false, &by_size).is_err());
    // Eight deleters holding the conditions of "first" race a writer of "second". Whatever
    // the order, "second" stands: a delete that ran before the overwrite removed "first" (or
    // found nothing, which passes), one that ran after it found "second", which its
    // conditions do not match. A check outside the key's lock would let a delete that saw
    // "first" remove "second".
    let same = DeleteCondition {
        etag: Some(m.etag.clone()),
        size: Some(m.size),
        last_modified_secs: Some(i64::try_from(m.modified_ns / 1_000_000_000).unwrap()),
    };
    std::thread::scope(|sc| {
        let writer = {
            let s = s.clone();
            sc.spawn(move || put(&s, "b", "k", b"second"))
        };
        for _ in 0..8 {
            let (s, c) = (s.clone(), same.clone());
            sc.spawn(move || {
                let r = s.delete_object_if("b", "k", None, false, &c);
                assert!(
                    matches!(r, Ok(_) | Err(StoreError::PreconditionFailed)),
                    "{r:?}"
                );
            });
        }
        writer.join().unwrap();
    });
    assert_eq!(read(&s, "b", "k"), b"second");
}

fn conditional_writes_are_checked_atomically_with_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    s.create_bucket("b", false).unwrap();
    // Eight racing writers with If-None-Match: * — exactly one wins.
    let wins: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8u8)
            .map(|i| {
                let s = s.clone();
                sc.spawn(move || {
                    let new = NewObject {
                        cond: WriteCondition {
                            if_none_match: true,
                            if_match: None,
                        },
                        ..NewObject::default()
                    };
                    let data = [i; 10];
                    let md5: [u8; 16] = md5::Md5::digest(data).into();
                    match s.put_object_inline("b", "k", &data, md5, new) {
                        Ok(_) => 1,
                        Err(StoreError::PreconditionFailed) => 0,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(wins, 1);
    let etag = s.head_object("b", "k").unwrap().etag;
    let with_match = |m: &str| NewObject {
        cond: WriteCondition {
            if_none_match: false,
            if_match: Some(m.to_owned()),
        },
        ..NewObject::default()
    };
    let md5: [u8; 16] = md5::Md5::digest(b"x").into();
    assert!(matches!(
        s.put_object_inline("b", "k", b"x", md5, with_match("\"0000\"")),
        Err(StoreError::PreconditionFailed)
    ));
    s.put_object_inline("b", "k", b"x", md5, with_match(&format!("\"{etag}\"")))
        .unwrap();
    assert!(matches!(
        s.put_object_inline("b", "missing", b"x", md5, with_match("*")),
        Err(StoreError::NoSuchKey)
    ));
}

fn locked_versions_cannot_be_removed() {
    use fsgate_store::model::{Retention, RetentionMode};
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", true).unwrap();
    assert_eq!(s.bucket("b").unwrap().versioning, Versioning::Enabled);
    assert!(matches!(
        s.set_versioning("b", Versioning::Suspended),
        Err(StoreError::InvalidBucketState(_))
    ));
    let until = fsgate_store::now_ns() + 3_600_000_000_000;
    let m = put_inline(&s, "b", "gov", b"g");
    let gov = m.version_id.unwrap();
    s.update_version("b", "gov", Some(&gov), |m| {
        m.extras.retention = Some(Retention {
            mode: RetentionMode::Governance,
            until_ns: until,
        });
        Ok(())
    })
    .unwrap();
    let m = put_inline(&s, "b", "comp", b"c");
    let comp = m.version_id.unwrap();
    s.update_version("b", "comp", None, |m| {
        m.extras.retention = Some(Retention {
            mode: RetentionMode::Compliance,
            until_ns: until,
        });
        Ok(())
    })
    .unwrap();
    let m = put_inline(&s, "b", "held", b"h");
    let held = m.version_id.unwrap();
    s.update_version("b", "held", None, |m| {
        m.extras.legal_hold = true;
        Ok(())
    })
    .unwrap();
    for (k, v) in [("gov", &gov), ("comp", &comp), ("held", &held)] {
        assert!(matches!(
            s.delete_object("b", k, Some(v), false),
            Err(StoreError::ObjectLocked)
        ));
    }
    // Bypass works for GOVERNANCE only.
    assert!(matches!(
        s.delete_object("b", "comp", Some(&comp), true),
        Err(StoreError::ObjectLocked)
    ));
    assert!(matches!(
        s.delete_object("b", "held", Some(&held), true),
        Err(StoreError::ObjectLocked)
    ));
    s.delete_object("b", "gov", Some(&gov), true).unwrap();
    // A plain delete makes a marker: allowed, nothing is destroyed.
    assert!(
        s.delete_object("b", "comp", None, false)
            .unwrap()
            .delete_marker
    );
    assert_eq!(read_version(&s, "b", "comp", &comp), b"c");
}

/// `Store::check` (`fsgate check`) is clean on a store the commit path made, and names what
/// breaks each invariant: a missing blob, an unreferenced one, a wrong reference count.
fn check_finds_what_breaks_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&dir);
    s.create_bucket("b", false).unwrap();
    put(&s, "b", "big", &[1u8; 200_000]);
    put(&s, "b", "same", &[1u8; 200_000]);
    put_inline(&s, "b", "small", b"tiny");
    let up = s
        .create_upload(
            "b",
            "mp",
            ObjectHeaders::default(),
            None,
            "root",
            ObjectExtras::default(),
        )
        .unwrap();
    let staged = stage(&s, &[2u8; 100_000]);
    s.put_part("b", "mp", &up, 1, staged, Vec::new(), None)
        .unwrap();
    let r = s.check().unwrap();
    assert!(r.is_clean(), "{r:?}");
    assert_eq!(
        (r.versions, r.parts, r.blobs, r.inline),
        (3, 1, 2, 1),
        "{r:?}"
    );

    // A blob with no reference: what a crash between a commit and a removal leaves.
    let mut orphan = stage(&s, &[3u8; 100_000]);
    s.blobs().publish(&mut orphan).unwrap();
    let r = s.check().unwrap();
    assert_eq!(r.problem_count, 1, "{r:?}");
    assert!(r.problems[0].contains("unreferenced"), "{r:?}");
    s.blobs().remove(&orphan.id).unwrap();

    // A referenced blob gone.
    let m = s.head_object("b", "big").unwrap();
    let id = m.extents[0].blob;
    s.blobs().remove(&id).unwrap();
    let r = s.check().unwrap();
    assert!(r.problems.iter().any(|p| p.contains("missing")), "{r:?}");
    assert_eq!(s.blob_refs(&id).unwrap(), 2);
}

on_every_backend!(
    check_finds_what_breaks_the_invariants,
    bucket_documents_by_prefix,
    identical_content_is_stored_once_and_freed_with_its_last_reference,
    buckets_refuse_duplicates_and_deletion_while_not_empty,
    listing_order_delimiters_and_pagination,
    multipart_moves_references_and_checks_parts,
    listing_uploads_in_key_then_time_order,
    recovery_collects_staged_files_and_unreferenced_blobs,
    unknown_format_is_refused,
    iam_records,
    audit_writer_commits_everything_and_queries_filter,
    audit_indexes_answer_what_a_scan_would,
    blob_ids_round_trip,
    pinned_blobs_outlive_overwrite_and_are_freed_by_the_last_reader,
    small_objects_live_inline_and_switch_cleanly,
    inline_bytes_read_back_from_memtable_files_and_wal,
    versioning_keeps_every_version_and_frees_blobs_with_the_last_reference,
    suspended_versioning_replaces_only_the_null_version,
    version_listing_pages_by_key_and_version_markers,
    conditional_deletes_check_what_they_remove,
    conditional_writes_are_checked_atomically_with_the_commit,
    locked_versions_cannot_be_removed,
    reads_check_blob_chunks_and_quarantine_what_fails,
    inline_values_are_checked_and_scrubbed,
    scrub_rehashes_every_blob_and_adds_missing_sums,
);
