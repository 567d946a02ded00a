//! restic (Debian package): a backup repository on fsgate, two snapshots of a changing tree,
//! `restic check --read-data`, and a restore compared byte for byte.

use std::fs;
use std::path::Path;

use fsgate_conformance::{Server, ok, run, unique};

fn restic(s: &Server, repo: &str) -> std::process::Command {
    let mut c = s.cmd("restic");
    c.env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", "correct horse battery staple")
        .env("RESTIC_CACHE_DIR", s.data().join("restic-cache"))
        .arg("--quiet");
    c
}

fn tree_eq(a: &Path, b: &Path) {
    for entry in fs::read_dir(a).unwrap() {
        let entry = entry.unwrap();
        let other = b.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            tree_eq(&entry.path(), &other);
        } else {
            assert_eq!(
                fs::read(entry.path()).unwrap(),
                fs::read(&other).unwrap_or_else(|e| panic!("{other:?}: {e}")),
                "{other:?}"
            );
        }
    }
}

#[test]
fn restic_backup_check_and_restore() {
    let s = Server::start();
    let bucket = unique("restic");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    let repo = format!("s3:{}/{bucket}", s.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    fs::create_dir_all(src.join("docs/deep")).unwrap();
    fs::write(src.join("docs/a.txt"), b"alpha").unwrap();
    fs::write(src.join("docs/deep/b.txt"), b"beta").unwrap();
    let big: Vec<u8> = (0..12 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(src.join("big.bin"), &big).unwrap();
    ok(&run(restic(&s, &repo).arg("init")));
    ok(&run(restic(&s, &repo).arg("backup").arg(&src)));
    fs::write(src.join("docs/a.txt"), b"alpha, edited").unwrap();
    fs::write(src.join("new.txt"), b"new file").unwrap();
    ok(&run(restic(&s, &repo).arg("backup").arg(&src)));
    let snaps = ok(&run(restic(&s, &repo).args(["snapshots", "--json"])));
    let v: serde_json::Value = serde_json::from_str(&snaps).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{snaps}");
    ok(&run(restic(&s, &repo).args(["check", "--read-data"])));
    let target = dir.path().join("restore");
    ok(&run(restic(&s, &repo)
        .args(["restore", "latest", "--target"])
        .arg(&target)));
    let restored = target.join(src.strip_prefix("/").unwrap());
    tree_eq(&src, &restored);
}
