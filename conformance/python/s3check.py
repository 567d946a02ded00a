"""Shared helpers of the Python suites: a boto3 client for the server under test, a test
registry, a fresh bucket, `expect` for the S3 error a call must fail with, and the admin API
(signed calls, a new user with a key).

Scripts are run as `python SCRIPT ENDPOINT ACCESS_KEY SECRET_KEY [ARGS...]`."""
import base64
import hashlib
import json
import sys
import traceback
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

EP, AK, SK = sys.argv[1:4]
ARGS = sys.argv[4:]
PORT = int(EP.rsplit(":", 1)[1])


def client(ak=AK, sk=SK, style="path", endpoint=EP, token=None, **cfg):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                        aws_session_token=token, region_name="us-east-1",
                        config=Config(s3={"addressing_style": style}, retries={"max_attempts": 1}, **cfg))


s3 = client()
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def bucket(prefix="b3", **kw):
    name = prefix + "-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name, **kw)
    return name


def expect(code, fn, *args, **kw):
    """Calls fn and returns the ClientError, which must carry `code` (an S3 code or a status)."""
    try:
        fn(*args, **kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, call succeeded")


def status_of(e):
    return e.response["ResponseMetadata"]["HTTPStatusCode"]


def md5b64(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def admin(method, path, body=None, query="", ak=AK, sk=SK):
    """An admin API call: (status, decoded JSON body or None)."""
    from sigv4 import signed_request
    data = json.dumps(body).encode() if body is not None else b""
    status, _, out = signed_request(EP, ak, sk, method, path, query, body=data)
    return status, (json.loads(out) if out.strip() else None)


def admin_ok(method, path, body=None, query="", ak=AK, sk=SK):
    status, out = admin(method, path, body, query, ak, sk)
    assert 200 <= status < 300, (status, out)
    return out


def new_user(prefix, role=None, bucket_name=None, groups=()):
    """A new user (with a role on one bucket or all, and groups): (name, access key, secret)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    u = admin_ok("POST", "/admin/v1/users", {"name": name})
    if role:
        admin_ok("POST", "/admin/v1/policies", {"user": name, "role": role, "bucket": bucket_name})
    for g in groups:
        admin_ok("PUT", f"/admin/v1/groups/{g}/members/{name}")
    return name, u["access_key"], u["secret_key"]


def run(selected=None):
    """Runs the registered tests (only those named in `selected`, when given) and exits."""
    tests = [t for t in TESTS if not selected or t.__name__ in selected]
    if selected:
        missing = set(selected) - {t.__name__ for t in tests}
        assert not missing, f"no such tests: {missing}"
    failed = 0
    for t in tests:
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{len(tests) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
