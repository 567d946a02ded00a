//! Bitrot (issue 26, item 2): a byte flipped on disk in a blob file or in the RocksDB file
//! holding an inline object is never served as data. The GET fails (an error status, or the
//! connection ends before the last byte), the failure is counted in
//! `fsgate_integrity_failures_total`, recorded in the audit log, and the blob quarantined; the
//! same content uploaded again heals the object; `fsctl admin scrub` finds what no read
//! touched. With `sendfile` (plain HTTP, the default) and without it.

use std::path::{Path, PathBuf};

use fsgate_conformance::{Server, json_lines, ok, unique};
use sha2::Digest as _;

fn random(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

fn blob_path(s: &Server, data: &[u8]) -> PathBuf {
    let hex = hex::encode(sha2::Sha256::digest(data));
    s.data()
        .join("blobs")
        .join(&hex[..2])
        .join(&hex[2..4])
        .join(&hex)
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn failures(s: &Server, kind: &str) -> f64 {
    let text = fsgate_conformance::raw(
        s.port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let series = format!("fsgate_integrity_failures_total{{kind=\"{kind}\"}}");
    text.lines()
        .find(|l| l.starts_with(&series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// The integrity records of the audit log, once there are at least `n` (records commit within
/// milliseconds of the failure; a query reads what has committed).
fn integrity_records(s: &Server, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = ok(&s.fsctl(&["audit", "query", "--principal", "integrity"]));
        let records = json_lines(&out);
        if records.len() >= n || std::time::Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn blob_rot(extra: &[&str]) {
    let mut args = vec!["--scrub-interval", "0"];
    args.extend_from_slice(extra);
    let s = Server::start_with(&args);
    let bucket = unique("rot");
    ok(&s.s3api(&["create-bucket", "--bucket", &bucket]));
    let data = random((1 << 20) + 1000);
    ok(&s.put_object(&bucket, "big", &data));
    assert_eq!(s.get_object(&bucket, "big", None).unwrap(), data);

    let blob = blob_path(&s, &data);
    assert!(blob.exists(), "{}", blob.display());
    flip(&blob, 300_000);
    // Bytes before the flipped one, in chunks of their own, are still served.
    assert_eq!(
        s.get_object(&bucket, "big", Some("bytes=0-4095")).unwrap(),
        data[..4096]
    );
    assert_eq!(failures(&s, "blob"), 0.0);
    // The whole object: never its bytes with a 200 and a complete body.
    let err = s.get_object(&bucket, "big", None).unwrap_err();
    assert!(!err.is_empty());
    assert_eq!(failures(&s, "blob"), 1.0);
    let quarantined = s.data().join("quarantine").join(blob.file_name().unwrap());
    assert!(!blob.exists() && quarantined.exists());
    let records = integrity_records(&s, 1);
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["action"], "fsgate:IntegrityCheckFailed", "{r}");
    assert_eq!(
        (r["bucket"].as_str(), r["key"].as_str()),
        (Some(bucket.as_str()), Some("big"))
    );
    assert_eq!(r["status"], 500);
    // Quarantined: from now on an error before any byte, with a message that says why.
    let err = s
        .get_object(&bucket, "big", Some("bytes=0-10"))
        .unwrap_err();
    assert!(
        err.contains("InternalError") && err.contains("integrity"),
        "{err}"
    );

    // The same content uploaded again (under any key) heals every object that holds it.
    ok(&s.put_object(&bucket, "copy-of-big", &data));
    assert_eq!(s.get_object(&bucket, "big", None).unwrap(), data);

    // A scrub finds what no read has touched, and says so in its exit status.
    let other = random(300_000);
    ok(&s.put_object(&bucket, "other", &other));
    flip(&blob_path(&s, &other), 299_999);
    let o = s.fsctl(&["admin", "scrub", "--rate", "200"]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!o.status.success(), "{report}");
    assert_eq!(report["blobs"], 2, "{report}");
    assert_eq!(report["bytes"], (1 << 20) + 1000 + 300_000, "{report}");
    let corrupt = report["corrupt"].as_array().unwrap();
    assert_eq!(corrupt.len(), 1, "{report}");
    assert_eq!(
        corrupt[0]["blob"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&other))
    );
    assert_eq!(failures(&s, "blob"), 2.0);
    assert_eq!(integrity_records(&s, 2).len(), 2);
    assert!(s.get_object(&bucket, "other", None).is_err());
    // Nothing else is wrong: a second scrub exits 0.
    let report = ok(&s.fsctl(&["admin", "scrub"]));
    assert!(report.contains("\"corrupt\":[]"), "{report}");
}

#[test]
fn rotten_blobs_are_never_served_with_sendfile() {
    blob_rot(&[]);
}

#[test]
fn rotten_blobs_are_never_served_through_buffers() {
    blob_rot(&["--zero-copy", "off"]);
}

/// Where `needle` is in the metadata's table files.
fn find_in_tables(meta: &Path, needle: &[u8]) -> Vec<(PathBuf, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(meta).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sst") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            found.push((path, at));
        }
    }
    found
}

#[test]
fn a_rotten_inline_object_is_never_served() {
    let mut s = Server::start_with(&["--scrub-interval", "0"]);
    let bucket = unique("rot");
    ok(&s.s3api(&["create-bucket", "--bucket", &bucket]));
    let small = random(20_000);
    ok(&s.put_object(&bucket, "small", &small));
    // After it in key order, so in a table block of its own (a block ends past 4 KiB).
    ok(&s.put_object(&bucket, "zz-neighbour", b"fine"));
    // Written to a table file: recovered from the write-ahead log at the next start.
    s.stop();
    s.start_again();
    s.stop();
    let needle = &small[8000..8064];
    let found = find_in_tables(&s.data().join("meta"), needle);
    assert_eq!(
        found.len(),
        1,
        "the object's bytes in one table file: {found:?}"
    );
    let (table, at) = &found[0];
    flip(table, at + 32);
    s.start_again();

    let err = s.get_object(&bucket, "small", None).unwrap_err();
    assert!(err.contains("InternalError"), "{err}");
    assert!(failures(&s, "metadata") + failures(&s, "inline") >= 1.0);
    let records = integrity_records(&s, 1);
    assert!(records.iter().any(|r| r["key"] == "small"), "{records:?}");
    // The server stays up and serves what is intact.
    assert_eq!(
        s.get_object(&bucket, "zz-neighbour", None).unwrap(),
        b"fine"
    );
}
