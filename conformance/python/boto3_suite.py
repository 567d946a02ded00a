"""boto3 (current release, default checksums on) against fsgate: every core operation, the bad
inputs, presigned URLs and virtual-hosted-style addressing. Exits non-zero on any failure."""
import base64
import datetime
import hashlib
import io
import os
import socket
import time
import urllib.error
import urllib.request
import uuid

from s3check import AK, ARGS, EP, PORT, SK, bucket, client, expect, md5b64, run, s3, test
from sigv4 import signed_request

DOMAIN = ARGS[0] if ARGS else None


@test
def buckets():
    b = bucket()
    s3.head_bucket(Bucket=b)
    assert b in [x["Name"] for x in s3.list_buckets()["Buckets"]]
    assert s3.get_bucket_location(Bucket=b).get("LocationConstraint") in (None, "")
    expect("BucketAlreadyOwnedByYou", s3.create_bucket, Bucket=b)
    for bad in ["ab", "ABCdef", "a_b_c", "-abc", "a..b"]:
        expect("InvalidBucketName", s3.create_bucket, Bucket=bad)
    s3.put_object(Bucket=b, Key="k", Body=b"x")
    expect("BucketNotEmpty", s3.delete_bucket, Bucket=b)
    s3.delete_object(Bucket=b, Key="k")
    s3.delete_bucket(Bucket=b)
    expect("404", s3.head_bucket, Bucket=b)
    expect("NoSuchBucket", s3.delete_bucket, Bucket=b)
    expect("NoSuchBucket", s3.put_object, Bucket=b, Key="k", Body=b"x")


@test
def objects_and_headers():
    b = bucket()
    body = os.urandom(1000)
    r = s3.put_object(Bucket=b, Key="dir/obj.bin", Body=body, ContentType="application/x-test",
                      ContentDisposition='attachment; filename="x.bin"', CacheControl="max-age=60",
                      ContentLanguage="en", Metadata={"owner": "alice", "Mixed-Case": "v"})
    assert r["ETag"] == '"%s"' % hashlib.md5(body).hexdigest(), r["ETag"]
    h = s3.head_object(Bucket=b, Key="dir/obj.bin")
    assert h["ContentLength"] == 1000
    assert h["ContentType"] == "application/x-test"
    assert h["ContentDisposition"] == 'attachment; filename="x.bin"'
    assert h["CacheControl"] == "max-age=60"
    assert h["Metadata"] == {"owner": "alice", "mixed-case": "v"}, h["Metadata"]
    g = s3.get_object(Bucket=b, Key="dir/obj.bin")
    assert g["Body"].read() == body
    assert "x-amz-request-id" in g["ResponseMetadata"]["HTTPHeaders"]
    # Overwrite, then delete; a second delete of a missing key still succeeds (S3).
    s3.put_object(Bucket=b, Key="dir/obj.bin", Body=b"new")
    assert s3.get_object(Bucket=b, Key="dir/obj.bin")["Body"].read() == b"new"
    s3.delete_object(Bucket=b, Key="dir/obj.bin")
    s3.delete_object(Bucket=b, Key="dir/obj.bin")
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="dir/obj.bin")
    expect("404", s3.head_object, Bucket=b, Key="dir/obj.bin")
    # Empty object.
    s3.put_object(Bucket=b, Key="empty", Body=b"")
    assert s3.get_object(Bucket=b, Key="empty")["Body"].read() == b""
    # Unicode and awkward keys.
    hostile = ["ünïcödé/ключ.txt", "sp ace+plus&amp=eq?q", "a//double", "x" * 1024, "../../etc/passwd",
               "a/./b", "a/../b", "%2e%2e/x", "tab\there", "new\nline", "<xml>&amp;", "\u202eevil", "emoji/😀"]
    for k in hostile:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
        assert s3.get_object(Bucket=b, Key=k)["Body"].read() == k.encode(), k
    # Keys are names, never paths: all of them list back exactly (url-encoded on the wire).
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
    assert sorted(listed, key=lambda k: k.encode()) == listed
    assert set(hostile) <= set(listed), set(hostile) - set(listed)
    expect("KeyTooLongError", s3.put_object, Bucket=b, Key="y" * 1025, Body=b"x")


@test
def checksums():
    b = bucket()
    body = os.urandom(70000)
    for algo in ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]:
        r = s3.put_object(Bucket=b, Key=f"c-{algo}", Body=body, ChecksumAlgorithm=algo)
        assert r.get(f"Checksum{algo}"), r
        g = s3.get_object(Bucket=b, Key=f"c-{algo}", ChecksumMode="ENABLED")
        assert g["Body"].read() == body
        assert g.get(f"Checksum{algo}") == r[f"Checksum{algo}"], (algo, g.get(f"Checksum{algo}"))
        h = s3.head_object(Bucket=b, Key=f"c-{algo}", ChecksumMode="ENABLED")
        assert h.get(f"Checksum{algo}") == r[f"Checksum{algo}"]
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert s3.head_object(Bucket=b, Key="c-SHA256", ChecksumMode="ENABLED")["ChecksumSHA256"] == sha
    # Wrong checksums and digests are refused and store nothing.
    expect("BadDigest", s3.put_object, Bucket=b, Key="bad", Body=body, ChecksumCRC32="AAAAAA==")
    expect("BadDigest", s3.put_object, Bucket=b, Key="bad", Body=body,
           ChecksumSHA256=base64.b64encode(hashlib.sha256(b"other").digest()).decode())
    expect("BadDigest", s3.put_object, Bucket=b, Key="bad", Body=body, ContentMD5=md5b64(b"other"))
    expect("InvalidDigest", s3.put_object, Bucket=b, Key="bad", Body=body, ContentMD5="not-base64!")
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="bad")
    s3.put_object(Bucket=b, Key="md5ok", Body=body, ContentMD5=md5b64(body))


@test
def ranges_and_conditions():
    b = bucket()
    body = bytes(range(256)) * 40
    etag = s3.put_object(Bucket=b, Key="r", Body=body)["ETag"]
    g = s3.get_object(Bucket=b, Key="r", Range="bytes=2-5")
    assert g["Body"].read() == body[2:6] and g["ContentRange"] == f"bytes 2-5/{len(body)}"
    assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=b, Key="r", Range="bytes=-3")["Body"].read() == body[-3:]
    assert s3.get_object(Bucket=b, Key="r", Range="bytes=10000-")["Body"].read() == body[10000:]
    expect("InvalidRange", s3.get_object, Bucket=b, Key="r", Range="bytes=20000-20010")
    assert s3.get_object(Bucket=b, Key="r", IfMatch=etag)["Body"].read() == body
    expect("PreconditionFailed", s3.get_object, Bucket=b, Key="r", IfMatch='"0000"')
    expect("304", s3.get_object, Bucket=b, Key="r", IfNoneMatch=etag)
    s3.get_object(Bucket=b, Key="r", IfNoneMatch='"0000"')
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    expect("304", s3.get_object, Bucket=b, Key="r", IfModifiedSince=future)
    s3.get_object(Bucket=b, Key="r", IfModifiedSince=past)
    expect("PreconditionFailed", s3.get_object, Bucket=b, Key="r", IfUnmodifiedSince=past)
    s3.get_object(Bucket=b, Key="r", IfUnmodifiedSince=future)
    # If-Match true wins over If-Unmodified-Since false (RFC 9110 / S3).
    s3.get_object(Bucket=b, Key="r", IfMatch=etag, IfUnmodifiedSince=past)
    expect("304", s3.head_object, Bucket=b, Key="r", IfNoneMatch=etag)


@test
def copy():
    b = bucket()
    s3.put_object(Bucket=b, Key="src", Body=b"copy me", ContentType="text/plain", Metadata={"a": "1"})
    r = s3.copy_object(Bucket=b, Key="dst", CopySource={"Bucket": b, "Key": "src"})
    assert r["CopyObjectResult"]["ETag"] == '"%s"' % hashlib.md5(b"copy me").hexdigest()
    h = s3.head_object(Bucket=b, Key="dst")
    assert h["Metadata"] == {"a": "1"} and h["ContentType"] == "text/plain"
    s3.copy_object(Bucket=b, Key="dst2", CopySource={"Bucket": b, "Key": "src"},
                   MetadataDirective="REPLACE", Metadata={"b": "2"}, ContentType="x/y")
    h = s3.head_object(Bucket=b, Key="dst2")
    assert h["Metadata"] == {"b": "2"} and h["ContentType"] == "x/y"
    assert s3.get_object(Bucket=b, Key="dst2")["Body"].read() == b"copy me"
    expect("InvalidRequest", s3.copy_object, Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"})
    s3.copy_object(Bucket=b, Key="src", CopySource={"Bucket": b, "Key": "src"}, MetadataDirective="REPLACE",
                   Metadata={"c": "3"})
    expect("PreconditionFailed", s3.copy_object, Bucket=b, Key="d3", CopySource={"Bucket": b, "Key": "src"},
           CopySourceIfMatch='"nope"')
    expect("NoSuchKey", s3.copy_object, Bucket=b, Key="d4", CopySource={"Bucket": b, "Key": "missing"})
    # Deleting the source leaves the copy intact (shared blob, counted references).
    s3.delete_object(Bucket=b, Key="src")
    assert s3.get_object(Bucket=b, Key="dst")["Body"].read() == b"copy me"


@test
def delete_objects():
    b = bucket()
    for k in ["a", "b", "c"]:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "zz"}]})
    assert sorted(d["Key"] for d in r["Deleted"]) == ["a", "b", "zz"], r
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])] == ["c"]
    r = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert not r.get("Deleted") and not r.get("Errors")


def by_bytes(keys):
    return sorted(keys, key=lambda k: k.encode())


@test
def listing():
    b = bucket()
    keys = ["a/1", "a/2", "b/1", "c", "d/e/f", "é", "Z", "sp ace", "plus+sign", "a/3/x"]
    for k in keys:
        s3.put_object(Bucket=b, Key=k, Body=b"x")
    everything = sorted(keys, key=lambda k: k.encode())
    got = [o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"]]
    assert got == everything, got
    r = s3.list_objects_v2(Bucket=b, Delimiter="/")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/", "b/", "d/"], r
    assert [o["Key"] for o in r["Contents"]] == ["Z", "c", "plus+sign", "sp ace", "é"], r
    assert r["KeyCount"] == 8
    r = s3.list_objects_v2(Bucket=b, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in r["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["a/3/"]
    # Pagination, v2 and v1, with and without delimiter.
    for delim in [None, "/"]:
        kw = {"Delimiter": delim} if delim else {}
        seen = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, PaginationConfig={"PageSize": 2}, **kw):
            assert page["KeyCount"] <= 2
            seen += by_bytes([o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])])
        want = everything if not delim else sorted(["a/", "b/", "d/", "Z", "c", "plus+sign", "sp ace", "é"], key=lambda k: k.encode())
        assert seen == want, (delim, seen)
        seen = []
        for page in s3.get_paginator("list_objects").paginate(Bucket=b, PaginationConfig={"PageSize": 3}, **kw):
            seen += by_bytes([o["Key"] for o in page.get("Contents", [])] + [p["Prefix"] for p in page.get("CommonPrefixes", [])])
        assert seen == want, ("v1", delim, seen)
    r = s3.list_objects_v2(Bucket=b, StartAfter="c")
    assert [o["Key"] for o in r["Contents"]] == [k for k in everything if k.encode() > b"c"]
    r = s3.list_objects(Bucket=b, Marker="b/1")
    assert [o["Key"] for o in r["Contents"]] == [k for k in everything if k.encode() > b"b/1"]
    r = s3.list_objects_v2(Bucket=b, MaxKeys=0)
    assert r["KeyCount"] == 0 and not r.get("Contents")
    assert s3.list_objects_v2(Bucket=b, Prefix="nothing")["KeyCount"] == 0
    expect("NoSuchBucket", s3.list_objects_v2, Bucket="missing-" + uuid.uuid4().hex[:8])


@test
def multipart():
    b = bucket()
    part1 = os.urandom(5 * 1024 * 1024)
    part2 = os.urandom(1234)
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ContentType="video/x", Metadata={"m": "1"})
    uid = up["UploadId"]
    e1 = s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=b, Key="mp", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    parts = s3.list_parts(Bucket=b, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, len(part1)), (2, len(part2))]
    ups = s3.list_multipart_uploads(Bucket=b)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in ups] == [("mp", uid)]
    expect("InvalidPart", s3.complete_multipart_upload, Bucket=b, Key="mp", UploadId=uid,
           MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"deadbeef"'}]})
    expect("InvalidPartOrder", s3.complete_multipart_upload, Bucket=b, Key="mp", UploadId=uid,
           MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
    r = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=uid,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    want = hashlib.md5(hashlib.md5(part1).digest() + hashlib.md5(part2).digest()).hexdigest() + "-2"
    assert r["ETag"] == f'"{want}"', r["ETag"]
    g = s3.get_object(Bucket=b, Key="mp")
    assert g["Body"].read() == part1 + part2 and g["ContentType"] == "video/x" and g["Metadata"] == {"m": "1"}
    assert s3.get_object(Bucket=b, Key="mp", PartNumber=2)["Body"].read() == part2
    assert s3.get_object(Bucket=b, Key="mp", Range="bytes=5242870-5242889")["Body"].read() == (part1 + part2)[5242870:5242890]
    expect("NoSuchUpload", s3.list_parts, Bucket=b, Key="mp", UploadId=uid)
    # Small parts.
    uid = s3.create_multipart_upload(Bucket=b, Key="small")["UploadId"]
    es = [s3.upload_part(Bucket=b, Key="small", UploadId=uid, PartNumber=n, Body=b"x" * 1024)["ETag"] for n in (1, 2)]
    expect("EntityTooSmall", s3.complete_multipart_upload, Bucket=b, Key="small", UploadId=uid,
           MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(es)]})
    s3.abort_multipart_upload(Bucket=b, Key="small", UploadId=uid)
    expect("NoSuchUpload", s3.upload_part, Bucket=b, Key="small", UploadId=uid, PartNumber=3, Body=b"x")
    expect("NoSuchUpload", s3.abort_multipart_upload, Bucket=b, Key="small", UploadId="0" * 32)
    expect("NoSuchUpload", s3.upload_part, Bucket=b, Key="small", UploadId="../../etc/passwd", PartNumber=1, Body=b"x")
    expect("InvalidArgument", s3.upload_part, Bucket=b, Key="mp", UploadId=s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"], PartNumber=10001, Body=b"x")
    # UploadPartCopy with a range.
    s3.put_object(Bucket=b, Key="copysrc", Body=part1)
    uid = s3.create_multipart_upload(Bucket=b, Key="pc")["UploadId"]
    c1 = s3.upload_part_copy(Bucket=b, Key="pc", UploadId=uid, PartNumber=1, CopySource={"Bucket": b, "Key": "copysrc"})
    c2 = s3.upload_part_copy(Bucket=b, Key="pc", UploadId=uid, PartNumber=2, CopySource={"Bucket": b, "Key": "copysrc"},
                             CopySourceRange="bytes=10-19")
    s3.complete_multipart_upload(Bucket=b, Key="pc", UploadId=uid, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": c1["CopyPartResult"]["ETag"]}, {"PartNumber": 2, "ETag": c2["CopyPartResult"]["ETag"]}]})
    assert s3.get_object(Bucket=b, Key="pc")["Body"].read() == part1 + part1[10:20]


@test
def multipart_with_checksums_and_transfer_manager():
    b = bucket()
    data = os.urandom(21 * 1024 * 1024 + 17)
    s3.upload_fileobj(io.BytesIO(data), b, "big", ExtraArgs={"ChecksumAlgorithm": "CRC32"})
    out = io.BytesIO()
    s3.download_fileobj(b, "big", out)
    assert out.getvalue() == data
    h = s3.head_object(Bucket=b, Key="big", ChecksumMode="ENABLED")
    assert h["ContentLength"] == len(data)
    assert h["ETag"].endswith('-3"') or h["ETag"].endswith('-2"') or "-" in h["ETag"], h["ETag"]


@test
def presigned_urls():
    b = bucket()
    s3.put_object(Bucket=b, Key="p", Body=b"presigned body")
    s3v4 = client(signature_version="s3v4")
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p"}, ExpiresIn=300)
    assert urllib.request.urlopen(url).read() == b"presigned body"
    put = s3v4.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "up"}, ExpiresIn=300)
    req = urllib.request.Request(put, data=b"uploaded via url", method="PUT")
    assert urllib.request.urlopen(req).status == 200
    assert s3.get_object(Bucket=b, Key="up")["Body"].read() == b"uploaded via url"
    short = s3v4.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p"}, ExpiresIn=1)
    time.sleep(2.1)
    code, body = http_error(short)
    assert code == 403 and b"AccessDenied" in body, (code, body)
    week = s3v4.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p"}, ExpiresIn=604801)
    code, body = http_error(week)
    assert code == 400 and b"AuthorizationQueryParametersError" in body, (code, body)
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")[:-1]
    code, body = http_error(tampered)
    assert code == 403 and b"SignatureDoesNotMatch" in body, (code, body)
    other_key = url.replace("/p?", "/q?")
    code, body = http_error(other_key)
    assert code == 403, code


def http_error(url, method="GET"):
    try:
        urllib.request.urlopen(urllib.request.Request(url, method=method))
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    raise AssertionError("request succeeded: " + url)


@test
def authentication_failures():
    b = bucket()
    expect("SignatureDoesNotMatch", client(sk=SK + "x").list_objects_v2, Bucket=b)
    expect("InvalidAccessKeyId", client(ak="NOSUCHKEY1234567890").list_objects_v2, Bucket=b)
    code, body = http_error(f"{EP}/{b}")
    assert code == 403 and b"AccessDenied" in body
    skewed = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    status, _, body = signed_request(EP, AK, SK, "GET", f"/{b}", "list-type=2", when=skewed)
    assert status == 403 and b"RequestTimeTooSkewed" in body, (status, body)
    status, _, body = signed_request(EP, AK, SK, "GET", f"/{b}", "list-type=2")
    assert status == 200, body


@test
def malformed_and_truncated_bodies():
    b = bucket()
    uid = s3.create_multipart_upload(Bucket=b, Key="m")["UploadId"]
    status, _, body = signed_request(EP, AK, SK, "POST", f"/{b}/m", f"uploadId={uid}", body=b"<CompleteMultipartUpload><Part>")
    assert status == 400 and b"MalformedXML" in body, (status, body)
    status, _, body = signed_request(EP, AK, SK, "POST", f"/{b}", "delete", body=b"not xml at all",
                                     headers={"content-md5": md5b64(b"not xml at all")})
    assert status == 400 and b"MalformedXML" in body, (status, body)
    xml = b'<Delete><Object><Key>k</Key></Object></Delete>'
    status, _, body = signed_request(EP, AK, SK, "POST", f"/{b}", "delete", body=xml,
                                     headers={"content-md5": md5b64(b"other")})
    assert status == 400 and b"BadDigest" in body, (status, body)
    # A payload whose SHA-256 does not match the signed hash is refused and not stored.
    status, _, body = signed_request(EP, AK, SK, "PUT", f"/{b}/sha", body=b"real body",
                                     payload_hash=hashlib.sha256(b"other body").hexdigest())
    assert status in (400, 403), (status, body)
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="sha")
    # Truncated body: Content-Length promises more than arrives.
    s = socket.create_connection(("127.0.0.1", PORT))
    now = datetime.datetime.now(datetime.timezone.utc)
    s.sendall(f"PUT /{b}/trunc HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\nContent-Length: 1000\r\n"
              f"x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n\r\n".encode() + b"x" * 10)
    s.shutdown(socket.SHUT_WR)
    s.recv(65536)
    s.close()
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="trunc")
    # Oversized headers are refused and the server keeps serving.
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(f"GET /{b} HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 200000}\r\n\r\n".encode())
    try:
        s.recv(65536)
    except ConnectionResetError:
        pass
    s.close()
    s3.head_bucket(Bucket=b)


@test
def virtual_hosted_style():
    if not DOMAIN:
        return
    real = socket.getaddrinfo

    def fake(host, *a, **kw):
        if host == DOMAIN or host.endswith("." + DOMAIN):
            host = "127.0.0.1"
        return real(host, *a, **kw)

    socket.getaddrinfo = fake
    try:
        v = client(style="virtual", endpoint=f"http://{DOMAIN}:{PORT}")
        b = bucket()
        v.put_object(Bucket=b, Key="vh/key", Body=b"virtual")
        assert v.get_object(Bucket=b, Key="vh/key")["Body"].read() == b"virtual"
        assert [o["Key"] for o in v.list_objects_v2(Bucket=b)["Contents"]] == ["vh/key"]
        assert s3.get_object(Bucket=b, Key="vh/key")["Body"].read() == b"virtual"
        assert b in [x["Name"] for x in v.list_buckets()["Buckets"]]
    finally:
        socket.getaddrinfo = real


run()
