"""The S3 surface beyond the core, driven by boto3: versioning, conditional writes, and (as
they land) object lock, tagging, lifecycle, CORS, POST uploads, encryption and bucket policies.
Run as `python breadth.py ENDPOINT AK SK [TEST...]`; each Rust test runs one group."""
import hashlib

from s3check import ARGS, bucket, expect, run, s3, status_of, test


def header(e, name):
    return e.response["ResponseMetadata"]["HTTPHeaders"].get(name)


@test
def versioning():
    b = bucket()
    assert "Status" not in s3.get_bucket_versioning(Bucket=b)
    r = s3.put_object(Bucket=b, Key="k", Body=b"v0")
    assert "VersionId" not in r, r  # never-versioned bucket: no version id
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    v1 = s3.put_object(Bucket=b, Key="k", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket=b, Key="k", Body=b"v2" * 40000)["VersionId"]
    assert v1 != v2 and v1 != "null"
    r = s3.get_object(Bucket=b, Key="k")
    assert r["VersionId"] == v2 and r["Body"].read() == b"v2" * 40000
    assert s3.get_object(Bucket=b, Key="k", VersionId=v1)["Body"].read() == b"v1"
    assert s3.get_object(Bucket=b, Key="k", VersionId="null")["Body"].read() == b"v0"
    assert s3.head_object(Bucket=b, Key="k", VersionId=v1)["ContentLength"] == 2
    expect("InvalidArgument", s3.get_object, Bucket=b, Key="k", VersionId="not-a-version")
    expect("NoSuchVersion", s3.get_object, Bucket=b, Key="k", VersionId="0123456789abcdef")

    # A delete makes a marker; GET answers 404 with x-amz-delete-marker.
    d = s3.delete_object(Bucket=b, Key="k")
    assert d["DeleteMarker"] is True and d["VersionId"] not in (v1, v2), d
    marker = d["VersionId"]
    e = expect("NoSuchKey", s3.get_object, Bucket=b, Key="k")
    assert header(e, "x-amz-delete-marker") == "true"
    assert header(e, "x-amz-version-id") == marker
    e = expect("404", s3.head_object, Bucket=b, Key="k")
    e = expect("MethodNotAllowed", s3.get_object, Bucket=b, Key="k", VersionId=marker)
    assert status_of(e) == 405 and header(e, "x-amz-delete-marker") == "true"
    assert "Contents" not in s3.list_objects_v2(Bucket=b)
    expect("BucketNotEmpty", s3.delete_bucket, Bucket=b)

    # ListObjectVersions, whole and one entry per page.
    r = s3.list_object_versions(Bucket=b)
    assert [(v["VersionId"], v["IsLatest"]) for v in r["Versions"]] == [(v2, False), (v1, False), ("null", False)]
    assert [(m["VersionId"], m["IsLatest"]) for m in r["DeleteMarkers"]] == [(marker, True)]
    assert r["Versions"][0]["Size"] == 80000
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=b, PaginationConfig={"PageSize": 1})
    seen = []
    for p in pages:
        assert len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) <= 1
        seen += [v["VersionId"] for v in p.get("DeleteMarkers", []) + p.get("Versions", [])]
    assert seen == [marker, v2, v1, "null"], seen

    # Removing the marker brings the object back; copying from an old version works.
    d = s3.delete_object(Bucket=b, Key="k", VersionId=marker)
    assert d["DeleteMarker"] is True and d["VersionId"] == marker
    assert s3.get_object(Bucket=b, Key="k")["VersionId"] == v2
    c = s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k", "VersionId": v1})
    assert c["CopySourceVersionId"] == v1 and c["VersionId"] not in (v1, v2)
    assert s3.get_object(Bucket=b, Key="copy")["Body"].read() == b"v1"

    # Multipart completion makes a version too.
    up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    et = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=b"part")["ETag"]
    r = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": et}]})
    assert r["VersionId"]

    # Suspended: writes replace the null version.
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Suspended"
    assert s3.put_object(Bucket=b, Key="k", Body=b"s1")["VersionId"] == "null"
    assert s3.put_object(Bucket=b, Key="k", Body=b"s2")["VersionId"] == "null"
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=b, Prefix="k")["Versions"]]
    assert ids == ["null", v2, v1], ids
    expect("MalformedXML", s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Off"})

    # Deleting every version (DeleteObjects with version ids) empties the bucket.
    r = s3.list_object_versions(Bucket=b)
    objs = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in r.get("Versions", []) + r.get("DeleteMarkers", [])]
    out = s3.delete_objects(Bucket=b, Delete={"Objects": objs})
    assert "Errors" not in out, out
    assert sorted(d["VersionId"] for d in out["Deleted"]) == sorted(o["VersionId"] for o in objs)
    s3.delete_bucket(Bucket=b)


@test
def versioned_delete_objects_reports_markers():
    b = bucket()
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=b, Key="a", Body=b"a")
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "a"}, {"Key": "never"}]})
    by_key = {d["Key"]: d for d in out["Deleted"]}
    assert by_key["a"]["DeleteMarker"] is True and by_key["a"]["DeleteMarkerVersionId"]
    assert by_key["never"]["DeleteMarker"] is True  # AWS makes a marker even for a missing key


@test
def conditional_writes():
    b = bucket()
    r = s3.put_object(Bucket=b, Key="k", Body=b"first", IfNoneMatch="*")
    e = expect("PreconditionFailed", s3.put_object, Bucket=b, Key="k", Body=b"second", IfNoneMatch="*")
    assert status_of(e) == 412
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"first"
    expect("PreconditionFailed", s3.put_object, Bucket=b, Key="k", Body=b"x", IfMatch='"0123"')
    s3.put_object(Bucket=b, Key="k", Body=b"third", IfMatch=r["ETag"])
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"third"
    expect("NoSuchKey", s3.put_object, Bucket=b, Key="missing", Body=b"x", IfMatch=r["ETag"])
    # Large (staged) bodies are checked the same way, before anything becomes visible.
    big = b"z" * 200_000
    expect("PreconditionFailed", s3.put_object, Bucket=b, Key="k", Body=big, IfNoneMatch="*")
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"third"
    # CompleteMultipartUpload honours them too.
    up = s3.create_multipart_upload(Bucket=b, Key="k")["UploadId"]
    et = s3.upload_part(Bucket=b, Key="k", UploadId=up, PartNumber=1, Body=b"mp")["ETag"]
    parts = {"Parts": [{"PartNumber": 1, "ETag": et}]}
    expect("PreconditionFailed", s3.complete_multipart_upload, Bucket=b, Key="k", UploadId=up,
           MultipartUpload=parts, IfNoneMatch="*")
    r = s3.complete_multipart_upload(Bucket=b, Key="k", UploadId=up, MultipartUpload=parts,
                                     IfMatch=s3.head_object(Bucket=b, Key="k")["ETag"])
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"mp"
    assert r["ETag"] == '"%s-1"' % hashlib.md5(hashlib.md5(b"mp").digest()).hexdigest()


run(ARGS)
