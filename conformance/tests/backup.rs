//! Backup and restore (issue 26, item 6): `fsctl admin backup DIR` while a client keeps
//! writing, a second, incremental backup into the same directory, `fsgate restore DIR --data
//! NEW`, and a server on the restored directory that serves every object (versions,
//! multipart, SSE-S3 included) byte for byte, with an audit log that verifies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use fsgate_conformance::{Server, bin, ok, run, unique};

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(seed).wrapping_add((i >> 10) as u8))
        .collect()
}

fn backup(s: &Server, dir: &std::path::Path) -> serde_json::Value {
    let out = ok(&s.fsctl(&["admin", "backup", dir.to_str().unwrap()]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn an_online_backup_restores_every_object_and_the_audit_chain() {
    let s = Server::start_with(&["--scrub-interval", "0"]);
    let bucket = unique("bak");
    ok(&s.s3api(&["create-bucket", "--bucket", &bucket]));
    ok(&s.s3api(&[
        "put-bucket-versioning",
        "--bucket",
        &bucket,
        "--versioning-configuration",
        "Status=Enabled",
    ]));
    // What the restored server must serve, by key (current versions).
    let mut expect: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (key, data) in [
        ("small", content(3_000, 3)),
        ("blob", content(3 << 20, 5)),
        ("versioned", content(100_000, 7)),
    ] {
        ok(&s.put_object(&bucket, key, &data));
        expect.insert(key.into(), data);
    }
    let newer = content(200_000, 11);
    ok(&s.put_object(&bucket, "versioned", &newer));
    expect.insert("versioned".into(), newer);
    let secret = content(70_000, 13);
    let file = s.data().with_file_name("secret");
    std::fs::write(&file, &secret).unwrap();
    ok(&s.s3api(&[
        "put-object",
        "--bucket",
        &bucket,
        "--key",
        "encrypted",
        "--server-side-encryption",
        "AES256",
        "--body",
        file.to_str().unwrap(),
    ]));
    expect.insert("encrypted".into(), secret);
    // Multipart, through the CLI's high-level copy (8 MiB parts).
    let big = content(20 << 20, 17);
    let big_file = s.data().with_file_name("big");
    std::fs::write(&big_file, &big).unwrap();
    ok(&s.aws(&[
        "s3",
        "cp",
        big_file.to_str().unwrap(),
        &format!("s3://{bucket}/multipart"),
    ]));
    expect.insert("multipart".into(), big);

    // The first backup, while a client keeps writing (what it wrote is all in the second).
    let dir = tempfile::tempdir().unwrap();
    let stop = AtomicBool::new(false);
    let (first, during) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut written = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("during-{i}");
                let data = content(50_000 + i * 1_000, 19);
                ok(&s.put_object(&bucket, &key, &data));
                written.push((key, data));
                i += 1;
            }
            written
        });
        std::thread::sleep(std::time::Duration::from_millis(800));
        let first = backup(&s, dir.path());
        stop.store(true, Ordering::Relaxed);
        (first, writer.join().unwrap())
    });
    eprintln!(
        "first backup: {first}; {} objects written meanwhile",
        during.len()
    );
    assert!(first["copied"].as_u64().unwrap() >= 5, "{first}");
    assert!(!during.is_empty());
    expect.extend(during);

    // Changes after it, then the second backup copies only what is new.
    let later = content(400_000, 29);
    ok(&s.put_object(&bucket, "later", &later));
    expect.insert("later".into(), later);
    ok(&s.s3api(&["delete-object", "--bucket", &bucket, "--key", "small"]));
    expect.remove("small");
    let second = backup(&s, dir.path());
    eprintln!("second backup: {second}");
    // Incremental: only blobs written since (the one above, and those of the writes the first
    // backup's copy did not reach) are copied again.
    let (copied, blobs) = (
        second["copied"].as_u64().unwrap(),
        second["blobs"].as_u64().unwrap(),
    );
    assert!(copied >= 1 && copied + 5 <= blobs, "{second}");

    // Restore into a new data directory and serve it.
    let mut b = Server::start_with(&["--scrub-interval", "0"]);
    b.stop();
    std::fs::remove_dir_all(b.data()).unwrap();
    let out = ok(&run(std::process::Command::new(bin("fsgate"))
        .arg("restore")
        .arg(dir.path())
        .arg("--data")
        .arg(b.data())));
    eprintln!("restore: {out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Every current version, and the two noncurrent ones (`versioned`'s first, `small`'s).
    assert_eq!(report["versions"], expect.len() as u64 + 2, "{report}");
    b.start_again();
    for (key, data) in &expect {
        assert_eq!(
            &b.get_object(&bucket, key, None).unwrap(),
            data,
            "{key} differs after restore"
        );
    }
    assert!(b.get_object(&bucket, "small", None).is_err());
    let versions = ok(&b.s3api(&["list-object-versions", "--bucket", &bucket]));
    let v: serde_json::Value = serde_json::from_str(&versions).unwrap();
    let count = |k: &str| {
        v["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["Key"] == k)
            .count()
    };
    assert_eq!(count("versioned"), 2, "{versions}");
    assert_eq!(
        count("small"),
        1,
        "the deleted key's old version: {versions}"
    );
    // The restored audit log is the original's, signed, and it verifies.
    ok(&b.fsctl(&["audit", "verify"]));
    // A restore refuses a directory that is not empty.
    let again = run(std::process::Command::new(bin("fsgate"))
        .arg("restore")
        .arg(dir.path())
        .arg("--data")
        .arg(b.data()));
    assert!(!again.status.success());
}
