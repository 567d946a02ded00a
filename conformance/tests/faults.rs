//! Faults from the file system: writes that fail with EIO or ENOSPC in the middle of a blob
//! write or of a RocksDB commit. The data directory sits on a FUSE file system
//! (`conformance/faultfs.py`) that fails every write under a path on demand. The request gets
//! an S3 error, nothing half-visible remains, what was acknowledged stays whole, reads go on,
//! and writes resume once the fault is gone; `fsgate check` is clean afterwards. An I/O error
//! on RocksDB's log stops fsgate (status 75) for its supervisor to restart it: RocksDB takes no
//! write after one and cannot be resumed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fsgate_conformance::{Server, bin, crate_dir, python, run, unique};

/// The FUSE mount and the file that tells it what to fail.
struct FaultFs {
    child: Child,
    mnt: PathBuf,
    control: PathBuf,
    _dir: tempfile::TempDir,
}

impl FaultFs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (backing, mnt, control) = (
            dir.path().join("backing"),
            dir.path().join("mnt"),
            dir.path().join("control"),
        );
        std::fs::create_dir_all(&backing).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        std::fs::write(&control, "off").unwrap();
        let child = Command::new(python())
            .arg(crate_dir().join("faultfs.py"))
            .args([&backing, &mnt, &control])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_mounted(&mnt) {
            assert!(
                Instant::now() < deadline,
                "faultfs did not mount (needs /dev/fuse, libfuse2 and fusepy: scripts/deps.sh)"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            mnt,
            control,
            _dir: dir,
        }
    }

    /// Every write under a path containing `under` fails with `errno` from now on.
    fn fail(&self, errno: &str, under: &str) {
        std::fs::write(&self.control, format!("{errno} {under}")).unwrap();
    }

    fn heal(&self) {
        std::fs::write(&self.control, "off").unwrap();
    }
}

impl Drop for FaultFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_mounted(p: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(p.to_str().unwrap()))
}

fn status_and_code(s: &Server, bucket: &str, key: &str, body: &[u8]) -> (bool, String) {
    let o = s.put_object(bucket, key, body);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn content(tag: &str, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8) ^ tag.bytes().fold(0u8, |a, b| a.wrapping_add(b)))
        .collect()
}

#[test]
fn failing_writes_leave_nothing_half_visible_and_writes_resume() {
    let fs = FaultFs::mount();
    let mut s = Server::start_with_data(&fs.mnt.join("data"), &[]);
    let b = unique("faults");
    assert!(s.s3api(&["create-bucket", "--bucket", &b]).status.success());
    let mut acked: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, len) in [("small", 1000), ("big", 300_000)] {
        let data = content(k, len);
        let (ok, err) = status_and_code(&s, &b, k, &data);
        assert!(ok, "{err}");
        acked.push((k.into(), data));
    }

    // In the middle of a blob write (its temporary file), then of a metadata commit.
    let cases = [
        ("EIO", "/tmp/", 300_000, "InternalError"),
        ("ENOSPC", "/tmp/", 300_000, "XMinioStorageFull"),
        ("EIO", "/meta/", 1000, "InternalError"),
        // A full disk: no free space either (RocksDB resumes once there is some again).
        ("ENOSPC", "/meta/ full", 1000, "XMinioStorageFull"),
    ];
    for (i, (errno, under, len, code)) in cases.iter().enumerate() {
        let key = format!("during-{i}");
        let data = content(&key, *len);
        fs.fail(errno, under);
        let (ok, err) = status_and_code(&s, &b, &key, &data);
        assert!(!ok, "{errno} under {under}: the PUT was acknowledged");
        // (With the log failing, the audit writer's next commit may have stopped fsgate first.)
        let stopped = (*errno, *under) == ("EIO", "/meta/") && err.contains("Could not connect");
        assert!(
            err.contains(code) || stopped,
            "{errno} under {under}: {err}"
        );
        if (*errno, *under) == ("EIO", "/meta/") {
            // RocksDB takes no write after an I/O error on its log, and cannot be resumed:
            // fsgate stops (status 75) for its supervisor to restart it, as this test does.
            let status = s.wait_exit(Duration::from_secs(10));
            assert_eq!(status.and_then(|st| st.code()), Some(75), "{}", s.log());
            fs.heal();
            s.start_again();
        } else {
            // Reads go on while writes fail.
            for (k, want) in &acked {
                assert_eq!(s.get_object(&b, k, None).as_ref(), Ok(want), "{k}");
            }
            fs.heal();
        }
        // Nothing of the failed PUT is visible.
        assert!(s.get_object(&b, &key, None).is_err(), "{key} visible");
        // Writes resume once the file system works again (by themselves on a full disk).
        let again = format!("after-{i}");
        let data = content(&again, *len);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (ok, err) = status_and_code(&s, &b, &again, &data);
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{errno} under {under}: writes did not resume: {err}\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        acked.push((again, data));
    }

    // A restart finds every acknowledged object whole, and the store consistent.
    s.stop();
    let o = run(Command::new(bin("fsgate"))
        .args(["check", "--data"])
        .arg(s.data()));
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    s.start_again();
    for (k, want) in &acked {
        assert_eq!(s.get_object(&b, k, None).as_ref(), Ok(want), "{k}");
    }
}
