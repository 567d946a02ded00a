//! A full disk (issue 26, item 3), on a small file system filled for real (tmpfs mounted with a
//! size over the server's data directory):
//! - under `--min-free-space`, writes are refused with 507 `XMinioStorageFull` before any byte
//!   is written, while reads, listings and deletes go on; readiness and the metrics say so,
//!   and writing resumes by itself once space is freed;
//! - with no reserve, an upload that runs out of space half-way (ENOSPC in the blob write)
//!   leaves nothing visible and nothing behind, and the server goes on.

use std::path::{Path, PathBuf};
use std::process::Command;

use fsgate_conformance::{Server, http_status, ok, unique};

/// A tmpfs of `mib` MiB mounted over a server's (stopped) data directory; unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, mib: u64) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "mounting a tmpfs needs root (as CI runs): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Self(at.to_path_buf())
    }

    fn free(&self) -> u64 {
        let st = rustix_statvfs(&self.0);
        st.0 * st.1
    }
}

fn rustix_statvfs(p: &Path) -> (u64, u64) {
    let out = Command::new("stat")
        .args(["-f", "-c", "%a %S"])
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|n| n.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `len` bytes of content.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn metric(s: &Server, name: &str) -> f64 {
    fsgate_conformance::metric(s.port, name).unwrap_or(-1.0)
}

fn server_on_small_disk(reserve: &str, mib: u64) -> (Server, SmallDisk) {
    let mut s = Server::start_with(&["--min-free-space", reserve, "--scrub-interval", "0"]);
    s.stop();
    let disk = SmallDisk::mount(&s.data(), mib);
    s.start_again();
    (s, disk)
}

/// A new bucket holding `key`, 1 MiB: the bucket's name and the object's bytes.
fn bucket_with_one_object(s: &Server, key: &str) -> (String, Vec<u8>) {
    let bucket = unique("disk");
    ok(&s.s3api(&["create-bucket", "--bucket", &bucket]));
    let one_mib = content(1 << 20);
    ok(&s.put_object(&bucket, key, &one_mib));
    (bucket, one_mib)
}

#[test]
fn under_the_reserve_writes_are_refused_and_the_rest_goes_on() {
    let (s, disk) = server_on_small_disk("8388608", 64);
    let (bucket, one_mib) = bucket_with_one_object(&s, "kept");
    ok(&s.put_object(&bucket, "to-delete", &one_mib));
    let upload: serde_json::Value = serde_json::from_str(&ok(&s.s3api(&[
        "create-multipart-upload",
        "--bucket",
        &bucket,
        "--key",
        "mp",
    ])))
    .unwrap();
    let upload_id = upload["UploadId"].as_str().unwrap().to_owned();
    assert_eq!(http_status(s.port, "/health/ready"), Some(200));

    // Fill the file system for real, to 4 MiB free: under the 8 MiB reserve.
    let filler = s.data().join("filler");
    let fill = disk.free() - (4 << 20);
    let o = Command::new("fallocate")
        .args(["-l", &fill.to_string()])
        .arg(&filler)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = disk.free();

    let tiny = content(100);
    // Beside the data directory, not on the small disk.
    let part = s.data().with_file_name("part-body");
    std::fs::write(&part, &tiny).unwrap();
    for o in [
        s.put_object(&bucket, "refused", &tiny),
        s.s3api(&[
            "upload-part",
            "--bucket",
            &bucket,
            "--key",
            "mp",
            "--upload-id",
            &upload_id,
            "--part-number",
            "1",
            "--body",
            part.to_str().unwrap(),
        ]),
        s.s3api(&[
            "copy-object",
            "--bucket",
            &bucket,
            "--key",
            "copied",
            "--copy-source",
            &format!("{bucket}/kept"),
        ]),
    ] {
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success());
        assert!(
            err.contains("XMinioStorageFull") && err.contains("minimum free drive threshold"),
            "{err}"
        );
    }
    // Nothing was written for them (their audit records were: metadata fits in the reserve).
    let staged = std::fs::read_dir(s.data().join("tmp")).unwrap().count();
    assert_eq!(staged, 0);
    assert!(
        disk.free() + (256 << 10) > before,
        "{} of {before}",
        disk.free()
    );
    assert!(
        s.s3api(&["head-object", "--bucket", &bucket, "--key", "refused"])
            .stderr
            .windows(3)
            .any(|w| w == b"404")
    );
    assert_eq!(http_status(s.port, "/health/ready"), Some(503));
    assert_eq!(metric(&s, "fsgate_storage_full"), 1.0);
    assert!(metric(&s, "fsgate_storage_full_refusals_total") >= 3.0);

    // Reads, listings and deletes go on.
    assert_eq!(s.get_object(&bucket, "kept", None).unwrap(), one_mib);
    let listing = ok(&s.s3api(&["list-objects-v2", "--bucket", &bucket]));
    assert!(listing.contains("\"kept\"") && listing.contains("\"to-delete\""));
    ok(&s.s3api(&["delete-object", "--bucket", &bucket, "--key", "to-delete"]));
    ok(&s.s3api(&[
        "abort-multipart-upload",
        "--bucket",
        &bucket,
        "--key",
        "mp",
        "--upload-id",
        &upload_id,
    ]));

    // Space comes back: writing resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    ok(&s.put_object(&bucket, "after", &tiny));
    assert_eq!(http_status(s.port, "/health/ready"), Some(200));
    assert_eq!(metric(&s, "fsgate_storage_full"), 0.0);
    drop(s);
}

#[test]
fn running_out_of_space_mid_upload_leaves_nothing_half_visible() {
    let (s, disk) = server_on_small_disk("0", 48);
    let (bucket, one_mib) = bucket_with_one_object(&s, "first");
    let free = disk.free();
    // More than the file system holds: the blob write hits ENOSPC part-way.
    let big = content(usize::try_from(free + (8 << 20)).unwrap());
    let o = s.put_object(&bucket, "too-big", &big);
    assert!(
        !o.status.success(),
        "an upload larger than the disk succeeded"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // The client may see the answer (507) or only the connection closing under its upload.
    assert!(
        err.contains("XMinioStorageFull") || err.contains("onnection") || err.contains("Broken"),
        "{err}"
    );
    assert!(
        s.s3api(&["head-object", "--bucket", &bucket, "--key", "too-big"])
            .stderr
            .windows(3)
            .any(|w| w == b"404")
    );
    // Nothing left behind: the staged file is gone and the space is back.
    let tmp: Vec<_> = std::fs::read_dir(s.data().join("tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
    assert!(disk.free() + (1 << 20) >= free, "space not given back");
    // The server goes on: the first object reads whole, new writes work.
    ok(&s.put_object(&bucket, "second", &one_mib));
    assert_eq!(s.get_object(&bucket, "first", None).unwrap(), one_mib);
    drop(s);
}
