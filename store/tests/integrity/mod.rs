//! Bitrot: a flipped byte in a blob file or an inline value is never read back as data; it is
//! reported, its blob quarantined, and a scrub finds what reads have not touched.

use std::io::Read;
use std::sync::{Arc, Mutex};

use fsgate_store::StoreError;
use fsgate_store::blob::BlobId;
use fsgate_store::integrity::Corruption;
use sha2::Digest as _;

use super::{memory_backend, open, put, put_inline, rocksdb_only};

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn blob_path(dir: &tempfile::TempDir, id: &BlobId) -> std::path::PathBuf {
    let hex = id.to_hex();
    dir.path()
        .join("blobs")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex)
}

fn flip(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn collect_reports(s: &fsgate_store::Store) -> Arc<Mutex<Vec<Corruption>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    s.on_corruption(Box::new(move |c| sink.lock().unwrap().push(c.clone())));
    seen
}

fn read_from(
    s: &Arc<fsgate_store::Store>,
    b: &str,
    k: &str,
    offset: u64,
    len: u64,
) -> std::io::Result<Vec<u8>> {
    let pinned = s.pin_object(b, k, None).map_err(std::io::Error::other)?;
    let blob = pinned.manifest.extents[0].blob;
    let mut out = Vec::new();
    pinned
        .blob_reader(&blob, offset)?
        .take(len)
        .read_to_end(&mut out)?;
    Ok(out)
}

pub(super) fn reads_check_blob_chunks_and_quarantine_what_fails() {
    if memory_backend("reads_check_blob_chunks_and_quarantine_what_fails") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&dir));
    let seen = collect_reports(&s);
    s.create_bucket("b", false).unwrap();
    let data = content(300_000, 7);
    put(&s, "b", "k", &data);
    let id = BlobId(sha2::Sha256::digest(&data).into());
    let sums = s
        .blob_sums(&id)
        .unwrap()
        .expect("sums written with the blob");
    assert_eq!((sums.len(), sums.blob_len()), (5, 300_000));

    // Reads of untouched chunks, from any offset, return the right bytes.
    assert_eq!(read_from(&s, "b", "k", 0, 1000).unwrap(), data[..1000]);
    assert_eq!(
        read_from(&s, "b", "k", 70_000, 60_000).unwrap(),
        data[70_000..130_000]
    );
    assert_eq!(read_from(&s, "b", "k", 0, 300_000).unwrap(), data);
    assert!(seen.lock().unwrap().is_empty());

    flip(&blob_path(&dir, &id), 200_000);
    // A range in a clean chunk is still served: only what is read is checked.
    assert_eq!(
        read_from(&s, "b", "k", 10, 50_000).unwrap(),
        data[10..50_010]
    );
    // One that covers the flipped byte fails, even starting mid-chunk before it.
    let err = read_from(&s, "b", "k", 199_990, 20).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    {
        let reports = seen.lock().unwrap();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].kind, "blob");
        assert_eq!(
            (reports[0].bucket.as_str(), reports[0].key.as_str()),
            ("b", "k")
        );
        assert_eq!(reports[0].blob, id.to_hex());
    }
    // Quarantined: out of service, kept aside, and every read fails from now on.
    assert!(!blob_path(&dir, &id).exists());
    assert!(dir.path().join("quarantine").join(id.to_hex()).exists());
    match s.pin_object("b", "k", None) {
        Err(StoreError::IntegrityFailure(m)) => assert!(m.contains("quarantined"), "{m}"),
        other => panic!("expected an integrity failure, got {other:?}"),
    }
    // Also after a restart.
    drop(s);
    let s = Arc::new(open(&dir));
    assert!(matches!(
        s.pin_object("b", "k", None),
        Err(StoreError::IntegrityFailure(_))
    ));

    // The same content uploaded again is stored afresh, and reads whole.
    put(&s, "b", "again", &data);
    assert_eq!(read_from(&s, "b", "k", 0, 300_000).unwrap(), data);
}

pub(super) fn inline_values_are_checked_and_scrubbed() {
    if rocksdb_only("inline_values_are_checked_and_scrubbed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = content(10_000, 3);
    let seq = {
        let s = open(&dir);
        s.create_bucket("b", false).unwrap();
        put_inline(&s, "b", "small", &data);
        put_inline(&s, "b", "other", &content(500, 9));
        s.head_object("b", "small").unwrap().seq
    };
    // Change one byte of the stored value under RocksDB (its own checksums stay right).
    {
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            dir.path().join("meta"),
            fsgate_store::meta::CFS,
        )
        .unwrap();
        let cf = db.cf_handle("inline").unwrap();
        let key = fsgate_store::meta::version_key("b", "small", seq);
        let mut v = db.get_cf(&cf, &key).unwrap().unwrap();
        assert_eq!(v[0], 2, "inline values carry their CRC32C");
        v[100] ^= 0x40;
        db.put_cf(&cf, &key, v).unwrap();
    }
    let s = Arc::new(open(&dir));
    let seen = collect_reports(&s);
    assert!(s.head_object("b", "small").is_ok());
    match s.pin_object("b", "small", None) {
        Err(StoreError::IntegrityFailure(_)) => {}
        other => panic!("expected an integrity failure, got {other:?}"),
    }
    assert!(s.pin_object("b", "other", None).is_ok());
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(seen.lock().unwrap()[0].kind, "inline");

    let report = s.scrub(None).unwrap();
    assert_eq!(report.inline, 2);
    assert_eq!(report.corrupt.len(), 1, "{report:?}");
    assert_eq!(
        (
            report.corrupt[0].bucket.as_str(),
            report.corrupt[0].key.as_str()
        ),
        ("b", "small")
    );
}

pub(super) fn scrub_rehashes_every_blob_and_adds_missing_sums() {
    if rocksdb_only("scrub_rehashes_every_blob_and_adds_missing_sums") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (content(150_000, 1), content(90_000, 2));
    let (ida, idb) = (
        BlobId(sha2::Sha256::digest(&a).into()),
        BlobId(sha2::Sha256::digest(&b).into()),
    );
    {
        let s = open(&dir);
        s.create_bucket("b", false).unwrap();
        put(&s, "b", "a", &a);
        put(&s, "b", "b", &b);
    }
    // Blob `a` as a store from before chunk sums would have it: no sums row.
    {
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            dir.path().join("meta"),
            fsgate_store::meta::CFS,
        )
        .unwrap();
        db.delete_cf(&db.cf_handle("blobsums").unwrap(), ida.0)
            .unwrap();
    }
    flip(&blob_path(&dir, &idb), 89_999);
    let s = Arc::new(open(&dir));
    let seen = collect_reports(&s);
    assert!(s.blob_sums(&ida).unwrap().is_none());
    let report = s.scrub(Some(64 << 20)).unwrap();
    assert_eq!((report.blobs, report.bytes), (2, 240_000), "{report:?}");
    assert_eq!(report.sums_added, 1);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].blob, idb.to_hex());
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(s.blob_sums(&ida).unwrap().unwrap().len(), 3);
    assert!(!blob_path(&dir, &idb).exists());
    // A second pass finds nothing more: the bad blob is out of service.
    let again = s.scrub(None).unwrap();
    assert_eq!((again.blobs, again.corrupt.len()), (1, 0));
    assert_eq!(read_from(&s, "b", "a", 0, 150_000).unwrap(), a);
}
