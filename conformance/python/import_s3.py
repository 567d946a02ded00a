"""`fsctl import s3` (issue 21, item 7): a source fsgate (this script's endpoint) is filled with
versioned, locked, tagged objects; `fsctl import s3` copies it into a second fsgate, is killed
midway and run again; the destination must then hold every version in order with its
metadata, tags, retention, legal hold and checksums, and a third run must copy nothing. A
plain `rclone serve s3` source (no versions) imports too; a source that goes away fails with a
clear error.

Run as `python import_s3.py SOURCE_EP AK SK DEST_EP FSCTL [TEST...]`."""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from s3check import AK, ARGS, EP, SK, client, run, s3, test

DEST, FSCTL = ARGS[0], ARGS[1]
dst = client(endpoint=DEST)


def fsctl_import(*args, wait=True):
    cmd = [FSCTL, "--endpoint", DEST, "--access-key", AK, "--secret-key", SK, "--json",
           "import", "s3", "--from", EP, "--from-access-key", AK, "--from-secret-key", SK, *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    report = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else None
    return out.returncode, report, out.stderr


def versions(c, b, key):
    """(is delete marker, size, etag) of a key's versions, oldest first."""
    out = c.list_object_versions(Bucket=b, Prefix=key)
    vs = [(False, v["Size"], v["ETag"], v["LastModified"], v["VersionId"]) for v in out.get("Versions", []) if v["Key"] == key]
    vs += [(True, 0, "", m["LastModified"], m["VersionId"]) for m in out.get("DeleteMarkers", []) if m["Key"] == key]
    # Newest first as listed; reverse for oldest first (stable for equal times).
    listed = [x for x in vs]
    order = {v: i for i, v in enumerate(x[4] for x in listed)}
    listed.sort(key=lambda x: (x[3], -order[x[4]]))
    return [(d, s, e) for d, s, e, _, _ in listed], [x[4] for x in listed]


@test
def versioned_locked_tagged_source_imports_after_an_interruption():
    b = "imp-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    s3.put_bucket_cors(Bucket=b, CORSConfiguration={"CORSRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["https://app.example"]}]})
    until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    # Three versions and a delete marker on one key, with everything a version carries.
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"one", ContentType="text/plain", Metadata={"owner": "ann"},
                  Tagging="stage=draft", ChecksumAlgorithm="SHA256")
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"two!", ContentType="text/markdown", CacheControl="max-age=60",
                  ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until, ChecksumAlgorithm="CRC32C")
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"three", ObjectLockLegalHoldStatus="ON", ContentDisposition="inline")
    s3.delete_object(Bucket=b, Key="doc.txt")
    # Enough keys and bytes that the first run is still going when it is killed.
    for i in range(300):
        s3.put_object(Bucket=b, Key=f"many/{i:04d}", Body=os.urandom(256) * (i % 7 + 1))
    for i in range(6):
        s3.put_object(Bucket=b, Key=f"big/{i}", Body=os.urandom(12 << 20))
    for i in range(0, 300, 50):
        s3.put_object(Bucket=b, Key=f"many/{i:04d}", Body=b"second version")

    # Dry run: nothing changes, everything is counted.
    rc, report, err = fsctl_import("--bucket", b, "--dry-run")
    assert rc == 0 and report["versions_copied"] == 0 and report["versions_total"] == 4 + 300 + 6 + 6, (rc, report, err)
    assert b not in [x["Name"] for x in dst.list_buckets()["Buckets"]]

    # Killed midway, then resumed.
    # Versions over 8 MiB go as multipart uploads of 5 MiB parts.
    parts = ("--multipart-threshold-mib", "8", "--part-size-mib", "5")
    p = fsctl_import("--bucket", b, "--parallel", "2", *parts, wait=False)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            n = dst.list_object_versions(Bucket=b, Prefix="many/").get("Versions", [])
            if len(n) >= 20:
                break
        except Exception:
            pass
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    rc, report, err = fsctl_import("--bucket", b, "--parallel", "4", *parts)
    assert rc == 0, (rc, report, err)
    assert report["mismatches"] == 0 and report["versions_skipped"] >= 20, report
    assert report["versions_copied"] + report["versions_skipped"] == report["versions_total"] == 316, report
    assert report["versions_verified"] == report["versions_total"], report
    assert "ETA" in err, err

    # The destination holds the source, version for version.
    for key in ["doc.txt", "many/0000", "many/0001"]:
        assert versions(dst, b, key)[0] == versions(s3, b, key)[0], key
    # A multipart copy keeps the size, not the single-part ETag.
    assert [v[:2] for v in versions(dst, b, "big/3")[0]] == [v[:2] for v in versions(s3, b, "big/3")[0]]
    _, ids = versions(dst, b, "doc.txt")
    one = dst.get_object(Bucket=b, Key="doc.txt", VersionId=ids[0], ChecksumMode="ENABLED")
    assert one["Body"].read() == b"one" and one["ContentType"] == "text/plain" and one["Metadata"] == {"owner": "ann"}, one
    assert one.get("ChecksumSHA256"), one
    assert dst.get_object_tagging(Bucket=b, Key="doc.txt", VersionId=ids[0])["TagSet"] == [{"Key": "stage", "Value": "draft"}]
    two = dst.get_object(Bucket=b, Key="doc.txt", VersionId=ids[1], ChecksumMode="ENABLED")
    assert two["Body"].read() == b"two!" and two["CacheControl"] == "max-age=60" and two.get("ChecksumCRC32C"), two
    assert two["ObjectLockMode"] == "GOVERNANCE" and abs((two["ObjectLockRetainUntilDate"] - until).total_seconds()) < 2, two
    three = dst.head_object(Bucket=b, Key="doc.txt", VersionId=ids[2])
    assert three["ObjectLockLegalHoldStatus"] == "ON" and three["ContentDisposition"] == "inline", three
    assert dst.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    assert dst.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert dst.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "team", "Value": "data"}]
    assert dst.get_bucket_cors(Bucket=b)["CORSRules"][0]["AllowedOrigins"] == ["https://app.example"]
    for i in range(6):
        got = dst.get_object(Bucket=b, Key=f"big/{i}")
        assert got["Body"].read() == s3.get_object(Bucket=b, Key=f"big/{i}")["Body"].read(), i
    assert dst.head_object(Bucket=b, Key="big/5", PartNumber=1)["PartsCount"] == 3

    # Idempotent: a third run copies nothing.
    rc, report, err = fsctl_import("--bucket", b)
    assert rc == 0 and report["versions_copied"] == 0 and report["versions_skipped"] == 316, report

    # A destination that diverged is reported, not overwritten, and the exit status says so.
    dst.put_object(Bucket=b, Key="many/0002", Body=b"written on the destination only")
    rc, report, err = fsctl_import("--bucket", b)
    assert rc != 0 and report["mismatches"] == 1 and report["mismatched"][0]["key"] == "many/0002", (rc, report)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@test
def plain_rclone_source_imports_and_a_vanished_source_fails_clearly():
    rclone = os.path.join(os.path.dirname(sys.executable), "rclone")
    root = tempfile.mkdtemp()
    try:
        os.makedirs(os.path.join(root, "plain", "dir"))
        for i in range(5):
            with open(os.path.join(root, "plain", "dir", f"f{i}"), "wb") as f:
                f.write(b"x" * (1000 * (i + 1)))
        port = free_port()
        proc = subprocess.Popen([rclone, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key", f"{AK},{SK}", root],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        src = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        cmd = [FSCTL, "--endpoint", DEST, "--access-key", AK, "--secret-key", SK, "--json",
               "import", "s3", "--from", src, "--from-access-key", AK, "--from-secret-key", SK, "--bucket", "plain"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["versions_copied"] == 5 and report["versions_verified"] == 5 and report["mismatches"] == 0, report
        assert dst.get_object(Bucket="plain", Key="dir/f3")["Body"].read() == b"x" * 4000
        proc.kill()
        proc.wait()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and "fsctl:" in out.stderr and "127.0.0.1" in out.stderr, out
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run(ARGS[2:])
