"""Security regressions (issue 18) against a running fsgate: every decision reads what s3s
executes, never the raw query text or unsigned headers. Requests are signed over their
*decoded* query (as SigV4 canonicalises it) and sent with query keys in other encodings, so
a check that reads the raw text sees a different request than the one that runs.

Run as `python security.py ENDPOINT ROOT_AK ROOT_SK [TEST...]`."""
import datetime
import hashlib
import http.client
import json
import re
import time
import urllib.parse
import uuid

import boto3
from botocore.config import Config

from s3check import AK, EP, SK, bucket, client, expect, md5b64, run, s3, test
from sigv4 import signed_request

HOST = EP.split("//", 1)[1]


def admin(method, path, body=None, query=""):
    data = json.dumps(body).encode() if body is not None else b""
    status, _, out = signed_request(EP, AK, SK, method, path, query, body=data)
    assert 200 <= status < 300, (method, path, status, out)
    return json.loads(out) if out.strip() else None


def new_user(prefix, role=None, bucket_name=None, cedar=None):
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    u = admin("POST", "/admin/v1/users", {"name": name})
    if role:
        admin("POST", "/admin/v1/policies", {"user": name, "role": role, "bucket": bucket_name})
    if cedar:
        admin("POST", "/admin/v1/policies", {"user": name, "cedar": cedar})
    return name, u["access_key"], u["secret_key"]


def audit(query):
    return admin("GET", "/admin/v1/audit", query=query)


def raw(method, target, headers=None, body=b""):
    """An unsigned request, sent as written. A server may answer (and close) before the
    body is all sent: the answer is read all the same; (None, {}, b"") if there is none."""
    conn = http.client.HTTPConnection(HOST, timeout=60)
    try:
        conn.request(method, target, body=body, headers=headers or {})
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        r = conn.getresponse()
        data = r.read()
    except (http.client.HTTPException, OSError):
        return None, {}, b""
    finally:
        conn.close()
    return r.status, dict(r.getheaders()), data


def code_of(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else ""


def versioned_bucket():
    b = bucket()
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    return b


FORBID_VERSIONS = ('forbid(principal, action in [Action::"s3:GetObjectVersion", '
                   'Action::"s3:DeleteObjectVersion"], resource);')


@test
def version_permissions_hold_under_encoded_query_keys():
    """Regression (High): `versio%6EId` was decided as GetObject/DeleteObject and served or
    deleted the old version."""
    b = versioned_bucket()
    v1 = s3.put_object(Bucket=b, Key="doc.txt", Body=b"old secret")["VersionId"]
    s3.put_object(Bucket=b, Key="doc.txt", Body=b"new")
    name, ak, sk = new_user("alice", "readwrite", b, FORBID_VERSIONS)
    assert client(ak, sk).get_object(Bucket=b, Key="doc.txt")["Body"].read() == b"new"
    for key in ["versionId", "versio%6EId", "versio%6eId", "%76%65%72%73%69%6F%6E%49%64", "version%49d"]:
        for method in ["GET", "HEAD", "DELETE"]:
            status, _, body = signed_request(EP, ak, sk, method, f"/{b}/doc.txt", f"{key}={v1}")
            assert status == 403, (key, method, status, body)
    # The old version is still there, and each try was audited as the versioned action.
    assert s3.get_object(Bucket=b, Key="doc.txt", VersionId=v1)["Body"].read() == b"old secret"
    recs = audit(f"principal={name}&bucket={b}&decision=deny")
    acts = {r["action"] for r in recs}
    assert acts == {"s3:GetObjectVersion", "s3:DeleteObjectVersion"}, acts


@test
def tags_are_read_from_the_version_addressed():
    """Regression (Medium): a tag-based forbid read the current version's tags, so an older
    secret version was served once a newer untagged version or a delete marker was on top."""
    b = versioned_bucket()
    v1 = s3.put_object(Bucket=b, Key="t", Body=b"secret", Tagging="class=secret")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="t", Body=b"public")["VersionId"]
    cedar = ('forbid(principal, action, resource) when { resource is Object && resource.hasTag("class") '
             '&& resource.getTag("class") == "secret" };')
    _, ak, sk = new_user("tagged", "readwrite", b, cedar)
    alice = client(ak, sk)
    assert alice.get_object(Bucket=b, Key="t")["Body"].read() == b"public"
    assert alice.get_object(Bucket=b, Key="t", VersionId=v2)["Body"].read() == b"public"
    expect("AccessDenied", alice.get_object, Bucket=b, Key="t", VersionId=v1)
    expect("403", alice.head_object, Bucket=b, Key="t", VersionId=v1)
    expect("AccessDenied", alice.get_object_tagging, Bucket=b, Key="t", VersionId=v1)
    expect("AccessDenied", alice.copy_object, Bucket=b, Key="copy",
           CopySource={"Bucket": b, "Key": "t", "VersionId": v1})
    status, _, _ = signed_request(EP, ak, sk, "GET", f"/{b}/t", f"versio%6EId={v1}")
    assert status == 403, status
    s3.delete_object(Bucket=b, Key="t")  # a delete marker on top
    expect("AccessDenied", alice.get_object, Bucket=b, Key="t", VersionId=v1)
    assert alice.get_object(Bucket=b, Key="t", VersionId=v2)["Body"].read() == b"public"


@test
def a_tag_forbid_holds_while_the_object_changes_under_the_read():
    """Race: the hook decides on the version current when it looks; a write landing before the
    handler pins the object must not let a tag-forbidden version through."""
    import threading
    b = bucket()
    cedar = ('forbid(principal, action, resource) when { resource is Object && resource.hasTag("class") '
             '&& resource.getTag("class") == "secret" };')
    _, ak, sk = new_user("racer", "readwrite", b, cedar)
    reader = client(ak, sk)
    s3.put_object(Bucket=b, Key="r", Body=b"public")
    stop = threading.Event()

    def flip():
        writer = client()
        while not stop.is_set():
            writer.put_object(Bucket=b, Key="r", Body=b"SECRET-BYTES", Tagging="class=secret")
            writer.put_object(Bucket=b, Key="r", Body=b"public")

    t = threading.Thread(target=flip)
    t.start()
    seen = {"public": 0, "denied": 0, "copied": 0}
    try:
        for _ in range(600):
            try:
                body = reader.get_object(Bucket=b, Key="r")["Body"].read()
                assert body == b"public", "a tag-forbidden version was served"
                seen["public"] += 1
            except reader.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] in ("AccessDenied", "NoSuchKey"), e.response
                seen["denied"] += 1
        # A copy's source is decided on the version actually copied, too.
        for i in range(300):
            try:
                reader.copy_object(Bucket=b, Key=f"copy{i}", CopySource={"Bucket": b, "Key": "r"},
                                   TaggingDirective="REPLACE", Tagging="")
                seen["copied"] += 1
            except reader.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] in ("AccessDenied", "InvalidRequest"), e.response
        # And an UploadPartCopy's source.
        up = reader.create_multipart_upload(Bucket=b, Key="parts")["UploadId"]
        parts = []
        for n in range(1, 101):
            try:
                r = reader.upload_part_copy(Bucket=b, Key="parts", UploadId=up, PartNumber=n,
                                            CopySource={"Bucket": b, "Key": "r"})
                parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
            except reader.exceptions.ClientError as e:
                assert e.response["Error"]["Code"] == "AccessDenied", e.response
    finally:
        stop.set()
        t.join()
    for i in range(300):
        try:
            body = s3.get_object(Bucket=b, Key=f"copy{i}")["Body"].read()
        except s3.exceptions.NoSuchKey:
            continue
        assert body == b"public", "a tag-forbidden version was copied"
    # The secret version is longer than the public one: a part of its length was copied from it.
    assert parts, "no part copied"
    listed = s3.list_parts(Bucket=b, Key="parts", UploadId=up)["Parts"]
    assert all(p["Size"] == len(b"public") for p in listed), "a tag-forbidden version was part-copied"
    assert seen["public"] > 0 and seen["denied"] > 0 and seen["copied"] > 0, seen


def presigned(ak, sk, b, k, expires, version="s3v4"):
    c = client(ak, sk, signature_version=version)
    return c.generate_presigned_url("get_object", Params={"Bucket": b, "Key": k}, ExpiresIn=expires)


def fetch(url, headers=None):
    u = urllib.parse.urlsplit(url)
    return raw("GET", f"{u.path}?{u.query}", headers)


def encode_key(url, key):
    """The URL with query key `key` written with its first letter percent-encoded."""
    enc = "%{:02X}".format(ord(key[0])) + key[1:]
    out = url.replace(f"&{key}=", f"&{enc}=").replace(f"?{key}=", f"?{enc}=")
    assert out != url, (url, key)
    return out


@test
def presigned_urls_obey_revocation_and_the_cap_however_encoded():
    """Regression (High): `X-Amz-%44ate` plus an unsigned later `x-amz-date` header outlived a
    revocation; percent-encoded `X-Amz-Expires`/`Expires` escaped the 7-day cap."""
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    name, ak, sk = new_user("signer", "readonly", b)
    url = presigned(ak, sk, b, "k", 3600)
    assert fetch(url)[0] == 200
    time.sleep(1.1)
    admin("POST", f"/admin/v1/users/{name}/revoke", {"before": "now"})
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")
    for u in [url, encode_key(url, "X-Amz-Date")]:
        status, _, body = fetch(u, {"x-amz-date": later})
        assert status == 403 and b"revoked" in body, (u, status, body)
    # Longer than 7 days: refused however the key is written.
    _, ak2, sk2 = new_user("longlived", "readonly", b)
    long_v4 = presigned(ak2, sk2, b, "k", 34 * 86400)
    for u in [long_v4, encode_key(long_v4, "X-Amz-Expires")]:
        status, _, body = fetch(u)
        assert status in (400, 403), (u, status, body)
    long_v2 = presigned(ak2, sk2, b, "k", 30 * 86400, version="s3")
    assert "Expires=" in long_v2 and "Signature=" in long_v2, long_v2
    for u in [long_v2, encode_key(long_v2, "Expires")]:
        status, _, body = fetch(u)
        assert status == 403, (u, status, body)
    # Repeated signing parameters never verify.
    ok_url = presigned(ak2, sk2, b, "k", 600)
    status, _, _ = fetch(ok_url + "&X-Amz-Expires=99999999")
    assert status in (400, 403), status
    assert fetch(ok_url)[0] == 200


@test
def per_key_revocation_spares_the_other_keys():
    """Revoking one access key refuses what it signed before (SigV2 presigned URLs, which name
    no signing time, for 7 days: fail closed) and leaves the user's other keys working."""
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    name, ak1, sk1 = new_user("twokeys", "readonly", b)
    k2 = admin("POST", f"/admin/v1/users/{name}/keys")
    ak2, sk2 = k2["access_key"], k2["secret_key"]
    before1, before2 = presigned(ak1, sk1, b, "k", 600), presigned(ak2, sk2, b, "k", 600)
    time.sleep(1.1)  # signatures carry whole seconds
    out = admin("POST", f"/admin/v1/keys/{ak1}/revoke", {"before": "now"})
    assert out["access_key"] == ak1 and "sigv2_presigned_refused_until" in out, out
    assert fetch(before1)[0] == 403
    assert fetch(before2)[0] == 200
    assert client(ak2, sk2).get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    time.sleep(1.1)  # sign in a later second than the revocation
    assert fetch(presigned(ak2, sk2, b, "k", 600, version="s3"))[0] == 200
    assert fetch(presigned(ak1, sk1, b, "k", 600, version="s3"))[0] == 403
    assert fetch(presigned(ak1, sk1, b, "k", 600))[0] == 200  # SigV4, signed after


@test
def delete_objects_is_found_however_encoded():
    """Regression (Medium): `POST /b?%64elete` skipped the Content-MD5 check and the body cap."""
    b = bucket()
    s3.put_object(Bucket=b, Key="keep", Body=b"x")
    body = b'<Delete><Object><Key>keep</Key></Object></Delete>'
    for q in ["delete", "%64elete", "%64%65%6C%65%74%65", "delete="]:
        status, _, out = signed_request(EP, AK, SK, "POST", f"/{b}", q, body=body,
                                        headers={"content-md5": md5b64(b"something else")})
        assert status == 400 and code_of(out) == "BadDigest", (q, status, out)
        assert s3.get_object(Bucket=b, Key="keep")["Body"].read() == b"x"
    # The body cap holds for the unsigned too (the server stays up; RSS is watched by the caller).
    big = b"<Delete>" + b"<Object><Key>k</Key></Object>" * (18 * 1024 * 1024 // 28) + b"</Delete>"
    for q in ["delete", "%64elete"]:
        status, _, out = raw("POST", f"/{b}?{q}", {"Content-Length": str(len(big))}, big)
        assert status in (None, 400, 403, 413, 503), (q, status, out[:200])
    assert s3.get_object(Bucket=b, Key="keep")["Body"].read() == b"x"


@test
def anonymous_response_overrides_are_refused():
    """Regression (Low): anonymous `response-content-type=text/html` on a public object was
    honoured (AWS refuses response-* overrides on anonymous requests)."""
    b = bucket()
    s3.put_object(Bucket=b, Key="page", Body=b"<script>x</script>", ContentType="text/plain")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]}))
    assert raw("GET", f"/{b}/page")[0] == 200
    for q in ["response-content-type=text/html", "respons%65-content-type=text/html",
              "response-content-disposition=inline", "response-cache-control=x"]:
        status, headers, out = raw("GET", f"/{b}/page?{q}")
        assert status == 400 and code_of(out) == "InvalidRequest", (q, status, out)
    # Signed requests may still use them.
    r = s3.get_object(Bucket=b, Key="page", ResponseContentType="text/html")
    assert r["ContentType"] == "text/html", r["ContentType"]


if __name__ == "__main__":
    from s3check import ARGS
    run(ARGS)
