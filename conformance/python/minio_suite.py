"""The MinIO Python SDK against fsgate."""
import io
import os
import sys
import tempfile
import traceback
import urllib.request
import uuid
from datetime import timedelta

from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

EP, AK, SK = sys.argv[1:4]
m = Minio(EP.split("://", 1)[1], access_key=AK, secret_key=SK, secure=False, region="us-east-1")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def objects():
    b = "mn-" + uuid.uuid4().hex[:10]
    m.make_bucket(b)
    assert m.bucket_exists(b)
    data = os.urandom(300_000)
    m.put_object(b, "dir/one", io.BytesIO(data), len(data), content_type="application/x-one",
                 metadata={"x-amz-meta-team": "blue"})
    st = m.stat_object(b, "dir/one")
    assert st.size == len(data) and st.content_type == "application/x-one", st
    assert st.metadata.get("x-amz-meta-team") == "blue", st.metadata
    r = m.get_object(b, "dir/one")
    assert r.read() == data
    r.close()
    r = m.get_object(b, "dir/one", offset=10, length=20)
    assert r.read() == data[10:30]
    r.close()
    m.copy_object(b, "dir/two", CopySource(b, "dir/one"))
    names = [o.object_name for o in m.list_objects(b, recursive=True)]
    assert names == ["dir/one", "dir/two"], names
    assert [o.object_name for o in m.list_objects(b)] == ["dir/"]
    errs = list(m.remove_objects(b, [DeleteObject("dir/one"), DeleteObject("dir/two")]))
    assert not errs, errs
    assert list(m.list_objects(b, recursive=True)) == []
    try:
        m.stat_object(b, "dir/one")
        raise AssertionError("stat of a deleted object succeeded")
    except S3Error as e:
        assert e.code in ("NoSuchKey", "ResponseNotFound"), e.code
    m.remove_bucket(b)


@test
def multipart_files_and_presigned():
    b = "mn-" + uuid.uuid4().hex[:10]
    m.make_bucket(b)
    data = os.urandom(12 * 1024 * 1024 + 5)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "src"), os.path.join(d, "dst")
        open(src, "wb").write(data)
        m.fput_object(b, "big", src, part_size=5 * 1024 * 1024)
        m.fget_object(b, "big", dst)
        assert open(dst, "rb").read() == data
    url = m.presigned_get_object(b, "big", expires=timedelta(minutes=5))
    assert urllib.request.urlopen(url).read() == data
    put = m.presigned_put_object(b, "via-url", expires=timedelta(minutes=5))
    urllib.request.urlopen(urllib.request.Request(put, data=b"hello", method="PUT"))
    r = m.get_object(b, "via-url")
    assert r.read() == b"hello"
    r.close()


failed = 0
for t in TESTS:
    try:
        t()
        print(f"ok   {t.__name__}")
    except Exception:
        failed += 1
        print(f"FAIL {t.__name__}")
        traceback.print_exc()
print(f"{len(TESTS) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
