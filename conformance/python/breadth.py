"""The S3 surface beyond the core, driven by boto3: versioning, conditional writes, and (as
they land) object lock, tagging, lifecycle, CORS, POST uploads, encryption and bucket policies.
Run as `python breadth.py ENDPOINT AK SK [TEST...]`; each Rust test runs one group."""
import hashlib

import datetime
import json
import uuid

from s3check import AK, ARGS, EP, SK, admin, bucket, expect, run, s3, status_of, test
from sigv4 import signed_request


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
    # The audit record of each access names the version it touched.
    import time
    for _ in range(50):
        status, _, body = signed_request(EP, AK, SK, "GET", "/admin/v1/audit", f"bucket={b}&key=k")
        seen = {(r["action"], r["version_id"]) for r in json.loads(body)}
        if {("s3:GetObjectVersion", v1), ("s3:PutObject", v2), ("s3:GetObject", v2)} <= seen:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(seen)
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


@test
def conditional_deletes():
    """If-Match, x-amz-if-match-last-modified-time and x-amz-if-match-size on DeleteObject and
    per key in DeleteObjects: a mismatch is 412 PreconditionFailed and deletes nothing; a
    missing object passes (204), as AWS documents."""
    b = bucket()
    r = s3.put_object(Bucket=b, Key="k", Body=b"12345")
    head = s3.head_object(Bucket=b, Key="k")
    when, etag = head["LastModified"], r["ETag"]
    other = when - datetime.timedelta(seconds=5)
    for kw in ({"IfMatch": '"0123"'}, {"IfMatchSize": 4}, {"IfMatchLastModifiedTime": other},
               {"IfMatch": etag, "IfMatchSize": 6}, {"IfMatch": "*", "IfMatchLastModifiedTime": other}):
        e = expect("PreconditionFailed", s3.delete_object, Bucket=b, Key="k", **kw)
        assert status_of(e) == 412, kw
        assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"12345", kw
    s3.delete_object(Bucket=b, Key="k", IfMatch=etag, IfMatchSize=5, IfMatchLastModifiedTime=when)
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="k")
    # Nothing there: the conditions pass, as an unconditional delete would.
    r = s3.delete_object(Bucket=b, Key="k", IfMatch='"0123"')
    assert r["ResponseMetadata"]["HTTPStatusCode"] == 204
    # A negative size is not a size.
    expect("InvalidArgument", s3.delete_object, Bucket=b, Key="k", IfMatchSize=-1)

    # Versioned: the current object decides whether a marker is made; a version id names the
    # version whose conditions are checked.
    v = bucket()
    s3.put_bucket_versioning(Bucket=v, VersioningConfiguration={"Status": "Enabled"})
    one = s3.put_object(Bucket=v, Key="k", Body=b"one")
    two = s3.put_object(Bucket=v, Key="k", Body=b"two!")
    expect("PreconditionFailed", s3.delete_object, Bucket=v, Key="k", IfMatch=one["ETag"])
    assert "DeleteMarker" not in s3.head_object(Bucket=v, Key="k")
    expect("PreconditionFailed", s3.delete_object, Bucket=v, Key="k", VersionId=one["VersionId"], IfMatchSize=4)
    s3.delete_object(Bucket=v, Key="k", VersionId=one["VersionId"], IfMatchSize=3, IfMatch=one["ETag"])
    ids = [x["VersionId"] for x in s3.list_object_versions(Bucket=v)["Versions"]]
    assert ids == [two["VersionId"]], ids
    d = s3.delete_object(Bucket=v, Key="k", IfMatch=two["ETag"])
    assert d["DeleteMarker"] is True

    # DeleteObjects: each key's conditions, failures reported per key, the rest deleted.
    m = bucket()
    a = s3.put_object(Bucket=m, Key="a", Body=b"a")
    s3.put_object(Bucket=m, Key="b", Body=b"bb")
    s3.put_object(Bucket=m, Key="c", Body=b"ccc")
    out = s3.delete_objects(Bucket=m, Delete={"Objects": [
        {"Key": "a", "ETag": a["ETag"]},
        {"Key": "b", "ETag": '"0123"'},
        {"Key": "c", "Size": 2},
        {"Key": "gone", "ETag": '"0123"'},
    ]})
    deleted = sorted(x["Key"] for x in out.get("Deleted", []))
    errors = sorted((x["Key"], x["Code"]) for x in out.get("Errors", []))
    assert deleted == ["a", "gone"], out
    assert errors == [("b", "PreconditionFailed"), ("c", "PreconditionFailed")], out
    left = sorted(x["Key"] for x in s3.list_objects_v2(Bucket=m).get("Contents", []))
    assert left == ["b", "c"], left


@test
def list_buckets_pages():
    """ListBuckets with max-buckets, continuation-token, prefix and bucket-region, as AWS pages
    it: every bucket once, in name order, with a token while more remain."""
    names = sorted(bucket("pg") for _ in range(5))
    seen, token, pages = [], None, 0
    while True:
        kw = {"MaxBuckets": 2, "Prefix": "pg-"}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_buckets(**kw)
        assert r["Prefix"] == "pg-", r
        got = [b["Name"] for b in r["Buckets"]]
        assert len(got) <= 2, got
        assert all(b["BucketRegion"] == "us-east-1" for b in r["Buckets"]), r["Buckets"]
        seen += got
        pages += 1
        token = r.get("ContinuationToken")
        if not token:
            break
    assert seen == names and pages == 3, (seen, names, pages)
    # Unpaginated: everything, no token.
    r = s3.list_buckets(Prefix="pg-")
    assert [b["Name"] for b in r["Buckets"]] == names and "ContinuationToken" not in r
    assert s3.list_buckets(BucketRegion="eu-west-1", Prefix="pg-")["Buckets"] == []
    assert [b["Name"] for b in s3.list_buckets(BucketRegion="us-east-1", Prefix="pg-")["Buckets"]] == names
    # Out of range (botocore refuses these itself, so they go raw).
    for q in ("max-buckets=0", "max-buckets=10001", "continuation-token=%25%25"):
        status, _, body = signed_request(EP, AK, SK, "GET", "/", q)
        assert status == 400 and b"<Code>InvalidArgument</Code>" in body, (q, status, body)


@test
def unconfigured_bucket_settings():
    """Configurations fsgate does not keep answer as AWS answers for a bucket without them,
    and NoSuchBucket for a bucket that does not exist."""
    b = bucket()
    assert status_of(expect("NoSuchWebsiteConfiguration", s3.get_bucket_website, Bucket=b)) == 404
    assert s3.delete_bucket_website(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "Status" not in s3.get_bucket_accelerate_configuration(Bucket=b)
    assert s3.get_bucket_request_payment(Bucket=b)["Payer"] == "BucketOwner"
    assert status_of(expect("ReplicationConfigurationNotFoundError", s3.get_bucket_replication, Bucket=b)) == 404
    assert s3.delete_bucket_replication(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=b)
    n = s3.get_bucket_notification_configuration(Bucket=b)
    assert not any(k.endswith("Configurations") for k in n), n
    assert status_of(expect("NoSuchPublicAccessBlockConfiguration", s3.get_public_access_block, Bucket=b)) == 404
    assert s3.delete_public_access_block(Bucket=b)["ResponseMetadata"]["HTTPStatusCode"] == 204
    for kind in ("analytics", "intelligent_tiering", "inventory", "metrics"):
        listed = getattr(s3, f"list_bucket_{kind}_configurations")(Bucket=b)
        assert listed["IsTruncated"] is False, listed
        assert not any(k.endswith("List") for k in listed), listed
        for op in ("get", "delete"):
            e = expect("NoSuchConfiguration", getattr(s3, f"{op}_bucket_{kind}_configuration"), Bucket=b, Id="x")
            assert status_of(e) == 404, (kind, op)
    for fn in (s3.get_bucket_website, s3.get_bucket_request_payment, s3.list_bucket_metrics_configurations,
               s3.delete_public_access_block):
        expect("NoSuchBucket", fn, Bucket="missing-" + b)


@test
def public_access_block():
    """The four Public Access Block settings, each enforced on a live request."""
    from botocore import UNSIGNED
    from s3check import client
    anon = client(signature_version=UNSIGNED)
    b = bucket()
    s3.put_object(Bucket=b, Key="a.txt", Body=b"a")
    expect("NoSuchPublicAccessBlockConfiguration", s3.get_public_access_block, Bucket=b)
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]})
    private = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::fsgate:user/nobody"}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/*"}]})
    s3.put_bucket_policy(Bucket=b, Policy=public)
    assert anon.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"a"
    # RestrictPublicBuckets: the public policy stays; anonymous callers are shut out of it.
    cfg = {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
           "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=cfg)
    assert s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"] == cfg
    expect("AccessDenied", anon.get_object, Bucket=b, Key="a.txt")
    assert s3.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"a"
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    # Writing the policy again keeps the restriction.
    s3.put_bucket_policy(Bucket=b, Policy=public)
    expect("AccessDenied", anon.get_object, Bucket=b, Key="a.txt")
    # Lifting it lets them in again.
    s3.delete_public_access_block(Bucket=b)
    expect("NoSuchPublicAccessBlockConfiguration", s3.get_public_access_block, Bucket=b)
    assert anon.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"a"
    # BlockPublicPolicy: a public policy is refused, the one in force stays; a private one passes.
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"BlockPublicPolicy": True})
    got = s3.get_public_access_block(Bucket=b)["PublicAccessBlockConfiguration"]
    assert got == {"BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
                   "RestrictPublicBuckets": False}, got
    assert status_of(expect("AccessDenied", s3.put_bucket_policy, Bucket=b, Policy=public)) == 403
    assert s3.get_bucket_policy(Bucket=b)["Policy"] == public
    s3.put_bucket_policy(Bucket=b, Policy=private)
    expect("AccessDenied", anon.get_object, Bucket=b, Key="a.txt")
    # BlockPublicAcls: a public ACL is AccessDenied; a private one passes (acl.py has the rest).
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    expect("AccessDenied", s3.put_bucket_acl, Bucket=b, ACL="public-read")
    expect("AccessDenied", s3.put_object_acl, Bucket=b, Key="a.txt", ACL="public-read")
    expect("AccessDenied", s3.put_bucket_acl, Bucket=b,
           GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    s3.put_bucket_acl(Bucket=b, ACL="private")
    s3.delete_public_access_block(Bucket=b)
    s3.put_bucket_acl(Bucket=b, ACL="public-read")
    expect("NoSuchBucket", s3.get_public_access_block, Bucket="missing-" + b)


@test
def acl_headers():
    """x-amz-acl on the writes that create things, checked like PutBucketAcl: unknown canned
    ACLs are InvalidArgument, public ones AccessDenied under BlockPublicAcls, and each write
    takes the ACL it is given (acl.py checks what they grant); an empty Content-MD5 is
    InvalidDigest."""
    expect("InvalidArgument", s3.create_bucket, Bucket="acl-" + uuid.uuid4().hex[:12], ACL="public-ready")
    b = bucket(ACL="private")
    s3.put_object(Bucket=b, Key="k", Body=b"x", ACL="private")
    s3.put_object(Bucket=b, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    expect("InvalidArgument", s3.put_object, Bucket=b, Key="k", Body=b"x", ACL="public-ready")
    expect("InvalidArgument", s3.copy_object, Bucket=b, Key="k3", CopySource={"Bucket": b, "Key": "k"},
           ACL="public-ready")
    expect("InvalidArgument", s3.create_multipart_upload, Bucket=b, Key="k4", ACL="public-ready")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])]
    assert keys == ["k"], keys
    s3.put_object(Bucket=b, Key="k2", Body=b"x", GrantRead='uri="http://acs.amazonaws.com/groups/global/AllUsers"')
    uris = [g["Grantee"].get("URI") for g in s3.get_object_acl(Bucket=b, Key="k2")["Grants"]]
    assert "http://acs.amazonaws.com/groups/global/AllUsers" in uris, uris
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    expect("AccessDenied", s3.put_object, Bucket=b, Key="k2", Body=b"x", ACL="public-read")
    expect("AccessDenied", s3.copy_object, Bucket=b, Key="k3", CopySource={"Bucket": b, "Key": "k"},
           ACL="public-read")
    s3.put_object(Bucket=b, Key="k2", Body=b"x", ACL="private")
    status, _, body = signed_request(EP, AK, SK, "PUT", f"/{b}/k5", body=b"abc", headers={"content-md5": ""})
    assert status == 400 and b"<Code>InvalidDigest</Code>" in body, (status, body)


@test
def tagging():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"x", Tagging="class=secret&team=a%20b")
    tags = s3.get_object_tagging(Bucket=b, Key="k")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("class", "secret"), ("team", "a b")], tags
    assert s3.get_object(Bucket=b, Key="k")["TagCount"] == 2
    s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": [{"Key": "only", "Value": "one"}]})
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == [{"Key": "only", "Value": "one"}]
    # Copy keeps the source tags unless told to replace them.
    s3.copy_object(Bucket=b, Key="c1", CopySource={"Bucket": b, "Key": "k"})
    assert s3.get_object_tagging(Bucket=b, Key="c1")["TagSet"] == [{"Key": "only", "Value": "one"}]
    s3.copy_object(Bucket=b, Key="c2", CopySource={"Bucket": b, "Key": "k"}, TaggingDirective="REPLACE", Tagging="new=1")
    assert s3.get_object_tagging(Bucket=b, Key="c2")["TagSet"] == [{"Key": "new", "Value": "1"}]
    # Multipart uploads carry x-amz-tagging to the object.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", Tagging="mp=yes")["UploadId"]
    et = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=b"p")["ETag"]
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": et}]})
    assert s3.get_object_tagging(Bucket=b, Key="mp")["TagSet"] == [{"Key": "mp", "Value": "yes"}]
    s3.delete_object_tagging(Bucket=b, Key="k")
    assert s3.get_object_tagging(Bucket=b, Key="k")["TagSet"] == []
    # Limits: 10 tags, key 128, value 256, no duplicates, no aws: prefix; nothing changes.
    eleven = [{"Key": f"k{i}", "Value": "v"} for i in range(11)]
    expect("InvalidTag", s3.put_object_tagging, Bucket=b, Key="c2", Tagging={"TagSet": eleven})
    expect("InvalidTag", s3.put_object_tagging, Bucket=b, Key="c2", Tagging={"TagSet": [{"Key": "k" * 129, "Value": ""}]})
    expect("InvalidTag", s3.put_object_tagging, Bucket=b, Key="c2", Tagging={"TagSet": [{"Key": "k", "Value": "v" * 257}]})
    expect("InvalidTag", s3.put_object_tagging, Bucket=b, Key="c2",
           Tagging={"TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]})
    expect("InvalidTag", s3.put_object, Bucket=b, Key="bad", Body=b"x", Tagging="&".join(f"k{i}=v" for i in range(11)))
    expect("404", s3.head_object, Bucket=b, Key="bad")
    assert s3.get_object_tagging(Bucket=b, Key="c2")["TagSet"] == [{"Key": "new", "Value": "1"}]
    expect("NoSuchKey", s3.get_object_tagging, Bucket=b, Key="missing")
    # Versions have their own tags.
    vb = bucket()
    s3.put_bucket_versioning(Bucket=vb, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=vb, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    s3.put_object(Bucket=vb, Key="k", Body=b"2", Tagging="v=2")
    assert s3.get_object_tagging(Bucket=vb, Key="k", VersionId=v1)["TagSet"] == [{"Key": "v", "Value": "1"}]
    assert s3.get_object_tagging(Bucket=vb, Key="k")["TagSet"] == [{"Key": "v", "Value": "2"}]
    # Bucket tagging.
    expect("NoSuchTagSet", s3.get_bucket_tagging, Bucket=b)
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": [{"Key": "env", "Value": "prod"}]})
    assert s3.get_bucket_tagging(Bucket=b)["TagSet"] == [{"Key": "env", "Value": "prod"}]
    s3.delete_bucket_tagging(Bucket=b)
    expect("NoSuchTagSet", s3.get_bucket_tagging, Bucket=b)


@test
def object_lock():
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc)
    plain = bucket()
    expect("ObjectLockConfigurationNotFoundError", s3.get_object_lock_configuration, Bucket=plain)
    expect("InvalidRequest", s3.put_object, Bucket=plain, Key="k", Body=b"x",
           ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=now + datetime.timedelta(days=1))
    expect("InvalidBucketState", s3.put_object_lock_configuration, Bucket=plain,
           ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})

    b = bucket(ObjectLockEnabledForBucket=True)
    assert s3.get_bucket_versioning(Bucket=b)["Status"] == "Enabled"
    assert s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]["ObjectLockEnabled"] == "Enabled"
    expect("InvalidBucketState", s3.put_bucket_versioning, Bucket=b, VersioningConfiguration={"Status": "Suspended"})

    # COMPLIANCE: no one deletes the version or shortens it, root included.
    until = now + datetime.timedelta(hours=1)
    c = s3.put_object(Bucket=b, Key="c", Body=b"c", ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    r = s3.get_object_retention(Bucket=b, Key="c")["Retention"]
    assert r["Mode"] == "COMPLIANCE" and abs((r["RetainUntilDate"] - until).total_seconds()) < 1
    h = s3.head_object(Bucket=b, Key="c")
    assert h["ObjectLockMode"] == "COMPLIANCE"
    expect("AccessDenied", s3.delete_object, Bucket=b, Key="c", VersionId=c)
    expect("AccessDenied", s3.delete_object, Bucket=b, Key="c", VersionId=c, BypassGovernanceRetention=True)
    expect("AccessDenied", s3.put_object_retention, Bucket=b, Key="c", VersionId=c, BypassGovernanceRetention=True,
           Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + datetime.timedelta(minutes=5)})
    expect("AccessDenied", s3.put_object_retention, Bucket=b, Key="c", VersionId=c, BypassGovernanceRetention=True,
           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until + datetime.timedelta(days=1)})
    s3.put_object_retention(Bucket=b, Key="c", VersionId=c,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until + datetime.timedelta(days=1)})
    # A plain delete only adds a marker; the locked version stays readable.
    assert s3.delete_object(Bucket=b, Key="c")["DeleteMarker"] is True
    assert s3.get_object(Bucket=b, Key="c", VersionId=c)["Body"].read() == b"c"
    out = s3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "c", "VersionId": c}]})
    assert out["Errors"][0]["Code"] == "AccessDenied", out

    # GOVERNANCE: bypass with the header (root holds the permission).
    g = s3.put_object(Bucket=b, Key="g", Body=b"g", ObjectLockMode="GOVERNANCE", ObjectLockRetainUntilDate=until)["VersionId"]
    expect("AccessDenied", s3.delete_object, Bucket=b, Key="g", VersionId=g)
    expect("AccessDenied", s3.put_object_retention, Bucket=b, Key="g", VersionId=g,
           Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now + datetime.timedelta(minutes=5)})
    s3.delete_object(Bucket=b, Key="g", VersionId=g, BypassGovernanceRetention=True)
    expect("404", s3.head_object, Bucket=b, Key="g", VersionId=g)

    # Legal hold blocks deletion whatever the retention; lifting it allows it.
    lh = s3.put_object(Bucket=b, Key="h", Body=b"h", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=b, Key="h")["LegalHold"]["Status"] == "ON"
    expect("AccessDenied", s3.delete_object, Bucket=b, Key="h", VersionId=lh, BypassGovernanceRetention=True)
    s3.put_object_legal_hold(Bucket=b, Key="h", VersionId=lh, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=b, Key="h", VersionId=lh)

    # Default retention applies to new versions without headers.
    s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    cfg = s3.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
    assert cfg["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}, cfg
    d = s3.put_object(Bucket=b, Key="d", Body=b"d")["VersionId"]
    r = s3.get_object_retention(Bucket=b, Key="d")["Retention"]
    assert r["Mode"] == "GOVERNANCE" and r["RetainUntilDate"] > now + datetime.timedelta(hours=23)
    expect("AccessDenied", s3.delete_object, Bucket=b, Key="d", VersionId=d)
    expect("MalformedXML", s3.put_object_lock_configuration, Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}})
    n = s3.put_object(Bucket=b, Key="n", Body=b"n")
    s3.put_object_retention(Bucket=b, Key="n", BypassGovernanceRetention=True, Retention={})
    expect("NoSuchObjectLockConfiguration", s3.get_object_retention, Bucket=b, Key="n")
    s3.delete_object(Bucket=b, Key="n", VersionId=n["VersionId"])


@test
def everyday_surface():
    import os
    b = bucket()
    # GetObjectAttributes, simple and multipart.
    s3.put_object(Bucket=b, Key="k", Body=b"hello", ChecksumAlgorithm="SHA256")
    a = s3.get_object_attributes(Bucket=b, Key="k", ObjectAttributes=["ETag", "ObjectSize", "StorageClass", "Checksum"])
    # The ETag unquoted, as AWS writes it in this response only.
    assert a["ObjectSize"] == 5 and a["StorageClass"] == "STANDARD" and a["ETag"] == hashlib.md5(b"hello").hexdigest(), a
    assert a["Checksum"]["ChecksumSHA256"], a
    up = s3.create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    p1 = os.urandom(5 * 1024 * 1024)
    e1 = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=p1)["ETag"]
    e2 = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=2, Body=b"tail")["ETag"]
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    a = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=1)
    parts = a["ObjectParts"]
    assert parts["TotalPartsCount"] == 2 and parts["IsTruncated"] and parts["Parts"][0]["Size"] == len(p1), parts
    # ACLs: private to the owner by default (acl.py has the rest).
    acl = s3.get_bucket_acl(Bucket=b)
    root_id = hashlib.sha256(b"fsgate-owner:root").hexdigest()
    assert [g["Permission"] for g in acl["Grants"]] == ["FULL_CONTROL"] and acl["Owner"]["ID"] == root_id
    assert s3.get_object_acl(Bucket=b, Key="k")["Grants"][0]["Permission"] == "FULL_CONTROL"
    s3.put_bucket_acl(Bucket=b, ACL="private")
    s3.put_object_acl(Bucket=b, Key="k", ACL="private")
    s3.put_object(Bucket=b, Key="acl", Body=b"x", ACL="private")
    # Ownership controls: none until set (AWS's answer for a bucket without them).
    expect("OwnershipControlsNotFoundError", s3.get_bucket_ownership_controls, Bucket=b)
    s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    assert s3.get_bucket_ownership_controls(Bucket=b)["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerPreferred"
    s3.delete_bucket_ownership_controls(Bucket=b)
    # Expected bucket owner.
    s3.head_object(Bucket=b, Key="k", ExpectedBucketOwner="fsgate")
    expect("403", s3.head_object, Bucket=b, Key="k", ExpectedBucketOwner="111122223333")
    expect("AccessDenied", s3.get_object, Bucket=b, Key="k", ExpectedBucketOwner="111122223333")
    # response-* overrides.
    r = s3.get_object(Bucket=b, Key="k", ResponseContentType="text/x-test", ResponseContentDisposition="attachment; filename=a.txt",
                      ResponseCacheControl="no-store", ResponseContentLanguage="fr", ResponseContentEncoding="identity")
    h = r["ResponseMetadata"]["HTTPHeaders"]
    assert h["content-type"] == "text/x-test" and h["content-disposition"] == "attachment; filename=a.txt", h
    assert h["cache-control"] == "no-store" and h["content-language"] == "fr", h
    assert h["x-amz-request-id"] and h["x-amz-id-2"], h
    # GetBucketVersioning of a never-versioned bucket; ListObjectsV2 FetchOwner.
    assert "Status" not in s3.get_bucket_versioning(Bucket=b)
    objs = s3.list_objects_v2(Bucket=b, FetchOwner=True)["Contents"]
    assert all(o["Owner"]["ID"] == root_id for o in objs)
    assert all("Owner" not in o for o in s3.list_objects_v2(Bucket=b)["Contents"])


def lifecycle_run(when):
    status, _, body = signed_request(EP, AK, SK, "POST", "/admin/v1/lifecycle/run",
                                     body=json.dumps({"now": when.isoformat()}).encode())
    assert status == 200, body
    return json.loads(body)


def keys_and_versions(b):
    r = s3.list_object_versions(Bucket=b)
    return sorted((v["Key"], "marker" if m else "version", v["IsLatest"])
                  for m, vs in ((False, r.get("Versions", [])), (True, r.get("DeleteMarkers", []))) for v in vs)


@test
def lifecycle():
    now = datetime.datetime.now(datetime.timezone.utc)
    b = bucket()
    expect("NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration, Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}},
        {"ID": "tmp-tagged", "Status": "Enabled",
         "Filter": {"And": {"Prefix": "tmp/", "Tags": [{"Key": "temp", "Value": "yes"}]}}, "Expiration": {"Days": 1}},
        {"ID": "old-versions", "Status": "Enabled", "Filter": {"Prefix": ""}, "NoncurrentVersionExpiration": {"NoncurrentDays": 7}},
        {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": ""}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}},
        {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"}, "Expiration": {"Days": 1}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    assert [r["ID"] for r in got] == [r["ID"] for r in rules], got
    assert got[1]["Filter"]["And"]["Tags"] == [{"Key": "temp", "Value": "yes"}], got[1]
    expect("InvalidArgument", s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "zero", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 0}}]})
    # One storage class: a transition names a class this server does not have.
    e = expect("InvalidStorageClass", s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "t", "Status": "Enabled", "Filter": {"Prefix": ""}, "Transitions": [{"Days": 1, "StorageClass": "GLACIER"}]}]})
    assert status_of(e) == 400
    expect("InvalidStorageClass", s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "t", "Status": "Enabled", "Filter": {"Prefix": ""},
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 1, "StorageClass": "STANDARD_IA"}]}]})
    # Status is Enabled or Disabled (case matters), as AWS's schema says.
    for status in ("enabled", "On", ""):
        expect("MalformedXML", s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": [
            {"ID": "s", "Status": status, "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
    # Expiration dates are midnight GMT.
    noon = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.timezone.utc)
    expect("InvalidArgument", s3.put_bucket_lifecycle_configuration, Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "d", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Date": noon}}]})
    # Nothing refused above replaced the rules in force.
    assert [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]] == [r["ID"] for r in rules]

    s3.put_object(Bucket=b, Key="logs/a", Body=b"v1")
    s3.put_object(Bucket=b, Key="logs/a", Body=b"v2")
    s3.put_object(Bucket=b, Key="tmp/x", Body=b"x", Tagging="temp=yes")
    s3.put_object(Bucket=b, Key="tmp/y", Body=b"y")
    s3.put_object(Bucket=b, Key="keep/z", Body=b"z")
    s3.put_object(Bucket=b, Key="gone", Body=b"g")
    s3.delete_object(Bucket=b, Key="gone")
    s3.create_multipart_upload(Bucket=b, Key="mp")
    before = keys_and_versions(b)

    assert lifecycle_run(now) == {"expired": 0, "noncurrent_removed": 0, "markers_removed": 0,
                                  "uploads_aborted": 0, "skipped_locked": 0}
    assert keys_and_versions(b) == before
    r = lifecycle_run(now + datetime.timedelta(days=3))
    assert r["expired"] == 1 and r["uploads_aborted"] == 1, r
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=b)
    expect("NoSuchKey", s3.get_object, Bucket=b, Key="tmp/x")
    assert s3.get_object(Bucket=b, Key="tmp/y")["Body"].read() == b"y"
    assert s3.get_object(Bucket=b, Key="keep/z")["Body"].read() == b"z"
    r = lifecycle_run(now + datetime.timedelta(days=8))
    assert r["noncurrent_removed"] == 3, r  # logs/a v1, tmp/x, gone
    r = lifecycle_run(now + datetime.timedelta(days=8))
    assert r["markers_removed"] == 2, r  # tmp/x and gone no longer hide anything
    r = lifecycle_run(now + datetime.timedelta(days=31))
    assert r["expired"] == 1, r  # logs/a
    assert keys_and_versions(b) == [("keep/z", "version", True), ("logs/a", "marker", True),
                                    ("logs/a", "version", False), ("tmp/y", "version", True)], keys_and_versions(b)
    status, _, body = signed_request(EP, AK, SK, "GET", "/admin/v1/audit", "principal=lifecycle")
    actions = sorted(rec["action"] for rec in json.loads(body))
    assert actions.count("s3:LifecycleExpiration") == 2 and actions.count("s3:LifecycleAbortMultipartUpload") == 1, actions
    s3.delete_bucket_lifecycle(Bucket=b)
    expect("NoSuchLifecycleConfiguration", s3.get_bucket_lifecycle_configuration, Bucket=b)
    # Expiration on a date, in an unversioned bucket: the objects go for good after it.
    u = bucket()
    cutoff = (now + datetime.timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    s3.put_bucket_lifecycle_configuration(Bucket=u, LifecycleConfiguration={"Rules": [
        {"ID": "date", "Status": "Enabled", "Filter": {"Prefix": "old/"}, "Expiration": {"Date": cutoff}}]})
    s3.put_object(Bucket=u, Key="old/a", Body=b"a")
    s3.put_object(Bucket=u, Key="new/b", Body=b"b")
    assert lifecycle_run(cutoff - datetime.timedelta(hours=1))["expired"] == 0
    assert lifecycle_run(cutoff + datetime.timedelta(hours=1))["expired"] == 1
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=u)["Contents"]] == ["new/b"]
    assert "DeleteMarkers" not in s3.list_object_versions(Bucket=u)


@test
def bucket_policies():
    import urllib.error
    import urllib.request
    from botocore import UNSIGNED
    from s3check import client
    anon = client(signature_version=UNSIGNED)
    b, other = bucket(), bucket()
    s3.put_object(Bucket=b, Key="pub.txt", Body=b"hello world")
    s3.put_object(Bucket=b, Key="secret/x", Body=b"no")
    s3.put_object(Bucket=other, Key="pub.txt", Body=b"other")
    expect("NoSuchBucketPolicy", s3.get_bucket_policy, Bucket=b)
    expect("AccessDenied", anon.get_object, Bucket=b, Key="pub.txt")
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:GetObject"],
         "Resource": [f"arn:aws:s3:::{b}/*"]},
        {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/secret/*"},
    ]})
    s3.put_bucket_policy(Bucket=b, Policy=doc)
    assert s3.get_bucket_policy(Bucket=b)["Policy"] == doc
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is True
    # Anonymous reads through the policy: boto3 unsigned and a plain HTTP GET.
    assert anon.get_object(Bucket=b, Key="pub.txt")["Body"].read() == b"hello world"
    with urllib.request.urlopen(f"{EP}/{b}/pub.txt") as r:
        assert r.read() == b"hello world"
    expect("AccessDenied", anon.get_object, Bucket=b, Key="secret/x")
    expect("AccessDenied", s3.get_object, Bucket=b, Key="secret/x")  # the Deny binds root too
    expect("AccessDenied", anon.put_object, Bucket=b, Key="new", Body=b"x")
    expect("AccessDenied", anon.get_object, Bucket=other, Key="pub.txt")
    expect("AccessDenied", anon.list_objects_v2, Bucket=b)
    # Documents that cannot be translated faithfully are refused, and nothing changes.
    for bad in [
        {"Statement": [{"Effect": "Allow", "Principal": "*", "NotAction": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{other}/*"}]},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*",
                        "Condition": {"StringEquals": {"s3:RequestObjectTagKeys": "x"}}}]},
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:Teleport", "Resource": f"arn:aws:s3:::{b}/*"}]},
    ]:
        e = expect("MalformedPolicy", s3.put_bucket_policy, Bucket=b, Policy=json.dumps(bad))
        assert status_of(e) == 400
    expect("MalformedPolicy", s3.put_bucket_policy, Bucket=b, Policy="{ not json")
    expect("MalformedPolicy", s3.put_bucket_policy, Bucket=b, Policy="permit(principal, action, resource) when { resource.nope };")
    assert s3.get_bucket_policy(Bucket=b)["Policy"] == doc
    # Conditions: only from 127.0.0.1 and only objects tagged public.
    cond = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8"]},
                       "StringEquals": {"s3:ExistingObjectTag/visibility": "public"}}},
        {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{b}",
         "Condition": {"StringLike": {"s3:prefix": "docs/*"}, "NumericLessThan": {"s3:max-keys": "100"}}},
    ]})
    s3.put_bucket_policy(Bucket=b, Policy=cond)
    assert s3.get_bucket_policy_status(Bucket=b)["PolicyStatus"]["IsPublic"] is False
    expect("AccessDenied", anon.get_object, Bucket=b, Key="pub.txt")
    s3.put_object_tagging(Bucket=b, Key="pub.txt", Tagging={"TagSet": [{"Key": "visibility", "Value": "public"}]})
    assert anon.get_object(Bucket=b, Key="pub.txt")["Body"].read() == b"hello world"
    anon.list_objects_v2(Bucket=b, Prefix="docs/", MaxKeys=10)
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, Prefix="docs/", MaxKeys=500)
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, Prefix="other/", MaxKeys=10)
    # Native Cedar, confined to the bucket.
    s3.put_bucket_policy(Bucket=b, Policy='permit(principal, action == Action::"s3:PutObject", resource);')
    anon.put_object(Bucket=b, Key="dropbox/a", Body=b"dropped")
    expect("AccessDenied", anon.put_object, Bucket=other, Key="dropbox/a", Body=b"x")
    s3.delete_bucket_policy(Bucket=b)
    expect("NoSuchBucketPolicy", s3.get_bucket_policy, Bucket=b)
    expect("AccessDenied", anon.put_object, Bucket=b, Key="dropbox/b", Body=b"x")


@test
def bucket_policy_conditions():
    """The condition operators of the translator, each deciding a real anonymous request."""
    from botocore import UNSIGNED
    from s3check import client
    anon = client(signature_version=UNSIGNED)
    b = bucket()
    s3.put_object(Bucket=b, Key="a.txt", Body=b"a")

    def allow(action, resource, condition):
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": action, "Resource": resource,
             "Condition": condition}]})

    obj, whole = f"arn:aws:s3:::{b}/*", f"arn:aws:s3:::{b}"
    get = lambda: anon.get_object(Bucket=b, Key="a.txt")["Body"].read()
    # IpAddress / NotIpAddress on aws:SourceIp (the suite connects from 127.0.0.1).
    for cond, allowed in [
        ({"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True),
        ({"NotIpAddress": {"aws:SourceIp": ["192.168.0.0/16", "127.0.0.0/8"]}}, False),
        # Bool on aws:SecureTransport: this listener is plain HTTP.
        ({"Bool": {"aws:SecureTransport": "false"}}, True),
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
        # DateGreaterThan / DateLessThan on aws:CurrentTime.
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, True),
        ({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, False),
        ({"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"},
          "DateGreaterThan": {"aws:CurrentTime": "2021-06-01T12:00:00Z"}}, True),
    ]:
        s3.put_bucket_policy(Bucket=b, Policy=allow("s3:GetObject", obj, cond))
        if allowed:
            assert get() == b"a", cond
        else:
            expect("AccessDenied", get)
    # StringNotEquals / StringEquals on s3:prefix.
    s3.put_bucket_policy(Bucket=b, Policy=allow("s3:ListBucket", whole,
                                                {"StringNotEquals": {"s3:prefix": "private/"}}))
    anon.list_objects_v2(Bucket=b, Prefix="public/")
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, Prefix="private/")
    s3.put_bucket_policy(Bucket=b, Policy=allow("s3:ListBucket", whole,
                                                {"StringEquals": {"s3:prefix": ["a", "b/"]}}))
    anon.list_objects_v2(Bucket=b, Prefix="b/")
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, Prefix="c/")
    # ...IfExists: true when the request has no such key (a listing without max-keys). A
    # listing without a prefix has s3:prefix "" (as AWS's console lists a bucket's root).
    s3.put_bucket_policy(Bucket=b, Policy=allow("s3:ListBucket", whole, {
        "StringLikeIfExists": {"s3:prefix": ["", "pub/*"]},
        "NumericLessThanEqualsIfExists": {"s3:max-keys": "100"}}))
    anon.list_objects_v2(Bucket=b)
    anon.list_objects_v2(Bucket=b, Prefix="pub/x", MaxKeys=50)
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, Prefix="private/")
    expect("AccessDenied", anon.list_objects_v2, Bucket=b, MaxKeys=500)
    # aws:PrincipalTag/<key>: an anonymous caller has no tags, so only a negated operator holds.
    s3.put_bucket_policy(Bucket=b, Policy=allow("s3:GetObject", obj, {"StringEquals": {"aws:PrincipalTag/team": "a"}}))
    expect("AccessDenied", get)
    s3.put_bucket_policy(Bucket=b, Policy=allow("s3:GetObject", obj, {"StringNotEquals": {"aws:PrincipalTag/team": "a"}}))
    assert get() == b"a"
    # s3:VersionId: a Deny naming one version binds reads of that version only.
    v = bucket()
    s3.put_bucket_versioning(Bucket=v, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=v, Key="k", Body=b"one")["VersionId"]
    v2 = s3.put_object(Bucket=v, Key="k", Body=b"two")["VersionId"]
    s3.put_bucket_policy(Bucket=v, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObjectVersion", "Resource": f"arn:aws:s3:::{v}/*",
         "Condition": {"StringEquals": {"s3:VersionId": v1}}}]}))
    expect("AccessDenied", s3.get_object, Bucket=v, Key="k", VersionId=v1)
    assert s3.get_object(Bucket=v, Key="k", VersionId=v2)["Body"].read() == b"two"
    assert s3.get_object(Bucket=v, Key="k")["Body"].read() == b"two"
    # s3:x-amz-server-side-encryption and Null: AWS's "encrypted uploads only" policy.
    enc = bucket()
    s3.put_bucket_policy(Bucket=enc, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{enc}/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "AES256"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{enc}/*",
         "Condition": {"Null": {"s3:x-amz-server-side-encryption": "true"}}}]}))
    expect("AccessDenied", s3.put_object, Bucket=enc, Key="plain", Body=b"x")
    s3.put_object(Bucket=enc, Key="sealed", Body=b"x", ServerSideEncryption="AES256")
    expect("AccessDenied", s3.create_multipart_upload, Bucket=enc, Key="mp")
    s3.create_multipart_upload(Bucket=enc, Key="mp", ServerSideEncryption="AES256")
    # A Deny with a condition binds everyone, root included, only when the condition holds.
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": obj,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    expect("AccessDenied", s3.get_object, Bucket=b, Key="a.txt")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": obj,
         "Condition": {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}))
    assert s3.get_object(Bucket=b, Key="a.txt")["Body"].read() == b"a"
    # Malformed values are refused, and the policy in force stays.
    for cond in [{"IpAddress": {"aws:SourceIp": "not-an-ip"}},
                 {"DateLessThan": {"aws:CurrentTime": "yesterday"}},
                 {"Bool": {"aws:SecureTransport": "maybe"}},
                 {"NumericLessThan": {"s3:max-keys": "ten"}}]:
        expect("MalformedPolicy", s3.put_bucket_policy, Bucket=b, Policy=allow("s3:GetObject", obj, cond))
    assert "NotIpAddress" in s3.get_bucket_policy(Bucket=b)["Policy"]


def post_form(url, fields, file_body, filename="f.txt"):
    """Sends a multipart/form-data POST (fields in order, the file last, as browsers do)."""
    import urllib.error
    import urllib.request
    import uuid as _uuid
    boundary = "----fsgate" + _uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f'Content-Type: application/octet-stream\r\n\r\n'.encode() + file_body + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(url, data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **kw):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@test
def post_uploads():
    from s3check import client
    v4 = client(signature_version="s3v4")
    b = bucket()
    conditions = [["content-length-range", 1, 100], ["starts-with", "$key", "uploads/"],
                  {"success_action_status": "201"}, ["starts-with", "$Content-Type", "text/"]]
    p = v4.generate_presigned_post(b, "uploads/hello.txt", Fields={"success_action_status": "201", "Content-Type": "text/plain"},
                                   Conditions=conditions, ExpiresIn=600)
    status, _, body = post_form(p["url"], p["fields"], b"posted by a form", filename="hello.txt")
    assert status == 201, (status, body)
    assert b"<Key>uploads/hello.txt</Key>" in body and b"<ETag>" in body, body
    r = s3.get_object(Bucket=b, Key="uploads/hello.txt")
    assert r["Body"].read() == b"posted by a form" and r["ContentType"] == "text/plain"
    # Violations: too large, too small, a key outside the prefix, a field the policy does not allow.
    status, _, body = post_form(p["url"], p["fields"], b"x" * 101)
    assert status == 400 and b"EntityTooLarge" in body, (status, body)
    status, _, body = post_form(p["url"], p["fields"], b"")
    assert status == 400 and b"EntityTooSmall" in body, (status, body)
    fields = dict(p["fields"], key="elsewhere/x.txt")
    status, _, body = post_form(p["url"], fields, b"data")
    assert status == 403 and b"AccessDenied" in body, (status, body)
    fields = dict(p["fields"], **{"Content-Type": "image/png"})
    status, _, body = post_form(p["url"], fields, b"data")
    assert status == 403, (status, body)
    fields = dict(p["fields"], **{"x-amz-meta-extra": "sneaky"})
    status, _, body = post_form(p["url"], fields, b"data")
    assert status == 403, (status, body)
    # A tampered policy fails its signature; an expired one is refused.
    import base64
    pol = json.loads(base64.b64decode(p["fields"]["policy"]))
    pol["conditions"][0] = ["content-length-range", 1, 10_000_000]
    fields = dict(p["fields"], policy=base64.b64encode(json.dumps(pol).encode()).decode())
    status, _, body = post_form(p["url"], fields, b"data")
    assert status == 403 and b"SignatureDoesNotMatch" in body, (status, body)
    old = v4.generate_presigned_post(b, "uploads/old.txt", ExpiresIn=-10)
    status, _, body = post_form(old["url"], old["fields"], b"late")
    assert status == 403, (status, body)
    expect("404", s3.head_object, Bucket=b, Key="uploads/old.txt")
    # success_action_redirect: 303 to the given URL with bucket, key and etag.
    p = v4.generate_presigned_post(b, "r.txt", Fields={"success_action_redirect": "http://127.0.0.1:1/done"},
                                   Conditions=[{"success_action_redirect": "http://127.0.0.1:1/done"}])
    status, headers, _ = post_form(p["url"], p["fields"], b"redirected")
    location = {k.lower(): v for k, v in headers.items()}.get("location", "")
    assert status == 303 and location.startswith("http://127.0.0.1:1/done?bucket="), (status, headers)
    # A checksum field is verified like the header.
    import hashlib as _h
    good = base64.b64encode(_h.sha256(b"summed").digest()).decode()
    for value, want in [(good, 204), (base64.b64encode(_h.sha256(b"other").digest()).decode(), 400)]:
        p = v4.generate_presigned_post(b, "summed.txt", Fields={"x-amz-checksum-sha256": value},
                                       Conditions=[{"x-amz-checksum-sha256": value}])
        status, _, body = post_form(p["url"], p["fields"], b"summed")
        assert status == want, (status, body)
    assert s3.head_object(Bucket=b, Key="summed.txt", ChecksumMode="ENABLED")["ChecksumSHA256"] == good
    # ${filename} cannot be completed (see the gateway): refused, not stored literally.
    p = v4.generate_presigned_post(b, "uploads/${filename}")
    status, _, body = post_form(p["url"], p["fields"], b"x")
    assert status == 501, (status, body)
    # Default: 204.
    p = v4.generate_presigned_post(b, "plain.txt")
    status, _, _ = post_form(p["url"], p["fields"], b"plain")
    assert status == 204
    assert s3.get_object(Bucket=b, Key="plain.txt")["Body"].read() == b"plain"
    # Unsigned form posts are anonymous: denied unless a bucket policy allows them.
    status, _, body = post_form(f"{EP}/{b}", {"key": "anon.txt"}, b"anon")
    assert status == 403, (status, body)


MARKER = b"FSGATE-PLAINTEXT-MARKER-"


@test
def encryption():
    import os
    b = bucket("enc")
    small = MARKER + b"small" * 10
    big = (MARKER + os.urandom(1000)) * 3000  # ~3 MB, staged path, many chunks
    r = s3.put_object(Bucket=b, Key="small", Body=small, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256" and r["ETag"] == '"%s"' % hashlib.md5(small).hexdigest(), r
    r = s3.put_object(Bucket=b, Key="big", Body=big, ServerSideEncryption="AES256")
    assert r["ETag"] == '"%s"' % hashlib.md5(big).hexdigest()
    g = s3.get_object(Bucket=b, Key="big")
    assert g["Body"].read() == big and g["ServerSideEncryption"] == "AES256" and g["ContentLength"] == len(big)
    assert s3.get_object(Bucket=b, Key="small")["Body"].read() == small
    for start, end in [(0, 0), (65_530, 65_545), (100_000, 300_000), (len(big) - 10, len(big) - 1)]:
        got = s3.get_object(Bucket=b, Key="big", Range=f"bytes={start}-{end}")["Body"].read()
        assert got == big[start:end + 1], (start, end)
    assert s3.head_object(Bucket=b, Key="big")["ServerSideEncryption"] == "AES256"
    assert [o["Size"] for o in s3.list_objects_v2(Bucket=b)["Contents"]] == [len(big), len(small)]
    # The same plaintext twice: stored twice, under different names (no cross-object dedup).
    s3.put_object(Bucket=b, Key="small-again", Body=small, ServerSideEncryption="AES256")

    # SSE-C: the key is needed, checked, never stored.
    key = os.urandom(32)
    c = s3.put_object(Bucket=b, Key="cust", Body=big, SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    assert c["SSECustomerAlgorithm"] == "AES256" and "SSECustomerKeyMD5" in c
    e = expect("InvalidRequest", s3.get_object, Bucket=b, Key="cust")
    assert status_of(e) == 400
    expect("AccessDenied", s3.get_object, Bucket=b, Key="cust", SSECustomerAlgorithm="AES256", SSECustomerKey=os.urandom(32))
    g = s3.get_object(Bucket=b, Key="cust", SSECustomerAlgorithm="AES256", SSECustomerKey=key, Range="bytes=70000-70100")
    assert g["Body"].read() == big[70000:70101] and g["SSECustomerKeyMD5"] == c["SSECustomerKeyMD5"]
    expect("400", s3.head_object, Bucket=b, Key="cust")
    assert s3.head_object(Bucket=b, Key="cust", SSECustomerAlgorithm="AES256", SSECustomerKey=key)["ContentLength"] == len(big)
    expect("InvalidRequest", s3.get_object, Bucket=b, Key="small", SSECustomerAlgorithm="AES256", SSECustomerKey=key)
    # Dual-layer SSE-KMS is not implemented (sse_kms has SSE-KMS).
    expect("NotImplemented", s3.put_object, Bucket=b, Key="kms", Body=b"x", ServerSideEncryption="aws:kms:dsse")

    # Multipart, SSE-S3 and SSE-C (the key again on every part).
    p1, p2 = os.urandom(5 * 1024 * 1024 + 3), os.urandom(1_000_001)
    for kw in [{"ServerSideEncryption": "AES256"}, {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}]:
        part_kw = {k: v for k, v in kw.items() if k.startswith("SSECustomer")}
        up = s3.create_multipart_upload(Bucket=b, Key="mp", **kw)["UploadId"]
        e1 = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=p1, **part_kw)["ETag"]
        # Part 2 uploaded twice under the upload's one data key (each blob has its own nonce
        # salt, so no nonce repeats); the second upload is the one completed.
        s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=2, Body=os.urandom(1_000_001), **part_kw)
        e2 = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=2, Body=p2, **part_kw)["ETag"]
        assert e1 == '"%s"' % hashlib.md5(p1).hexdigest()
        s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        whole = s3.get_object(Bucket=b, Key="mp", **part_kw)["Body"].read()
        assert whole == p1 + p2
        start = len(p1) - 100
        got = s3.get_object(Bucket=b, Key="mp", Range=f"bytes={start}-{start + 199}", **part_kw)["Body"].read()
        assert got == (p1 + p2)[start:start + 200]
        got = s3.get_object(Bucket=b, Key="mp", PartNumber=2, **part_kw)["Body"].read()
        assert got == p2

    # Copies keep SSE-S3 (metadata only); changing encryption rewrites the bytes.
    s3.copy_object(Bucket=b, Key="big-copy", CopySource={"Bucket": b, "Key": "big"})
    g = s3.get_object(Bucket=b, Key="big-copy")
    assert g["Body"].read() == big and g["ServerSideEncryption"] == "AES256"
    plain = b"PLAIN-" + b"plain" * 30000  # stored unencrypted on purpose: no marker
    s3.put_object(Bucket=b, Key="plain", Body=plain)
    r = s3.copy_object(Bucket=b, Key="plain-enc", CopySource={"Bucket": b, "Key": "plain"}, ServerSideEncryption="AES256")
    assert r["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=b, Key="plain-enc")["Body"].read() == plain
    expect("InvalidRequest", s3.copy_object, Bucket=b, Key="cust-copy", CopySource={"Bucket": b, "Key": "cust"})
    s3.copy_object(Bucket=b, Key="cust-copy", CopySource={"Bucket": b, "Key": "cust"},
                   CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key, ServerSideEncryption="AES256")
    g = s3.get_object(Bucket=b, Key="cust-copy")
    assert g["Body"].read() == big and g["ServerSideEncryption"] == "AES256" and "SSECustomerAlgorithm" not in g

    # Bucket default encryption.
    d = bucket("enc")
    expect("ServerSideEncryptionConfigurationNotFoundError", s3.get_bucket_encryption, Bucket=d)
    s3.put_bucket_encryption(Bucket=d, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rules = s3.get_bucket_encryption(Bucket=d)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.put_object(Bucket=d, Key="auto", Body=MARKER + b"auto")["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=d, Key="auto")["Body"].read() == MARKER + b"auto"
    expect("NotImplemented", s3.put_bucket_encryption, Bucket=d, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms:dsse"}}]})
    s3.copy_object(Bucket=d, Key="copied-in", CopySource={"Bucket": b, "Key": "plain"})
    g = s3.get_object(Bucket=d, Key="copied-in")
    assert g["Body"].read() == plain and g["ServerSideEncryption"] == "AES256"
    s3.delete_bucket_encryption(Bucket=d)
    assert "ServerSideEncryption" not in s3.put_object(Bucket=d, Key="after", Body=b"after")


@test
def multipart_checksum_types():
    """ChecksumType on multipart uploads (issue 20, item 6): FULL_OBJECT CRCs combined from the
    parts into the whole object's CRC, COMPOSITE checksums of the parts' checksums with a -N
    suffix, both shown on Complete, HEAD/GET (checksum mode), ListParts and GetObjectAttributes;
    part and whole checksums checked on Complete as AWS answers, nothing committed on a
    mismatch; AWS's rules on which algorithm takes which type."""
    import base64 as _b64
    import os
    import zlib
    b = bucket()
    p1, p2 = os.urandom(5 * 1024 * 1024), os.urandom(1234)
    whole = p1 + p2
    crc = lambda data: _b64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()

    def upload(key, algo, ctype=None, parts=(p1, p2)):
        kw = {"ChecksumAlgorithm": algo}
        if ctype:
            kw["ChecksumType"] = ctype
        r = s3.create_multipart_upload(Bucket=b, Key=key, **kw)
        done = []
        for n, body in enumerate(parts, 1):
            u = s3.upload_part(Bucket=b, Key=key, UploadId=r["UploadId"], PartNumber=n, Body=body,
                               ChecksumAlgorithm=algo)
            done.append({"PartNumber": n, "ETag": u["ETag"], f"Checksum{algo}": u[f"Checksum{algo}"]})
        return r, done

    # FULL_OBJECT CRC32: the whole object's CRC.
    r, done = upload("full", "CRC32", "FULL_OBJECT")
    assert r["ChecksumType"] == "FULL_OBJECT", r
    lp = s3.list_parts(Bucket=b, Key="full", UploadId=r["UploadId"])
    assert lp["ChecksumAlgorithm"] == "CRC32" and lp["ChecksumType"] == "FULL_OBJECT", lp
    c = s3.complete_multipart_upload(Bucket=b, Key="full", UploadId=r["UploadId"], MultipartUpload={"Parts": done},
                                     ChecksumCRC32=crc(whole), ChecksumType="FULL_OBJECT")
    assert c["ChecksumCRC32"] == crc(whole) and c["ChecksumType"] == "FULL_OBJECT", c
    h = s3.head_object(Bucket=b, Key="full", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc(whole) and h["ChecksumType"] == "FULL_OBJECT", h
    a = s3.get_object_attributes(Bucket=b, Key="full", ObjectAttributes=["Checksum"])
    assert a["Checksum"] == {"ChecksumCRC32": crc(whole), "ChecksumType": "FULL_OBJECT"}, a

    # COMPOSITE SHA256: the SHA-256 of the parts' SHA-256s, -N.
    r, done = upload("comp", "SHA256")
    assert r["ChecksumType"] == "COMPOSITE", r
    c = s3.complete_multipart_upload(Bucket=b, Key="comp", UploadId=r["UploadId"], MultipartUpload={"Parts": done})
    want = _b64.b64encode(hashlib.sha256(hashlib.sha256(p1).digest() + hashlib.sha256(p2).digest()).digest()).decode() + "-2"
    assert c["ChecksumSHA256"] == want and c["ChecksumType"] == "COMPOSITE", c
    g = s3.get_object(Bucket=b, Key="comp", ChecksumMode="ENABLED")
    assert g["ChecksumSHA256"] == want and g["ChecksumType"] == "COMPOSITE", g
    g["Body"].read()
    # GetObjectAttributes lists each part with its checksum, paginated.
    a = s3.get_object_attributes(Bucket=b, Key="comp", ObjectAttributes=["ObjectParts", "Checksum"], MaxParts=1)
    assert a["Checksum"]["ChecksumSHA256"] == want, a
    first = a["ObjectParts"]["Parts"]
    assert first == [{"PartNumber": 1, "Size": len(p1), "ChecksumSHA256": done[0]["ChecksumSHA256"]}], first
    a = s3.get_object_attributes(Bucket=b, Key="comp", ObjectAttributes=["ObjectParts"], PartNumberMarker=1)
    assert a["ObjectParts"]["Parts"] == [{"PartNumber": 2, "Size": len(p2), "ChecksumSHA256": done[1]["ChecksumSHA256"]}], a

    # A single PUT's checksum is a FULL_OBJECT one.
    s3.put_object(Bucket=b, Key="single", Body=b"abc", ChecksumAlgorithm="CRC32")
    h = s3.head_object(Bucket=b, Key="single", ChecksumMode="ENABLED")
    assert h["ChecksumCRC32"] == crc(b"abc") and h["ChecksumType"] == "FULL_OBJECT", h

    # Mismatches: a part's checksum is InvalidPart, the whole's BadDigest; nothing is made.
    r, done = upload("bad", "CRC32", "FULL_OBJECT")
    wrong = [dict(done[0], ChecksumCRC32=crc(b"other")), done[1]]
    e = expect("InvalidPart", s3.complete_multipart_upload, Bucket=b, Key="bad", UploadId=r["UploadId"],
               MultipartUpload={"Parts": wrong})
    assert status_of(e) == 400
    e = expect("BadDigest", s3.complete_multipart_upload, Bucket=b, Key="bad", UploadId=r["UploadId"],
               MultipartUpload={"Parts": done}, ChecksumCRC32=crc(b"other"), ChecksumType="FULL_OBJECT")
    assert status_of(e) == 400
    expect("InvalidRequest", s3.complete_multipart_upload, Bucket=b, Key="bad", UploadId=r["UploadId"],
           MultipartUpload={"Parts": done}, ChecksumType="COMPOSITE")
    expect("404", s3.head_object, Bucket=b, Key="bad")
    s3.complete_multipart_upload(Bucket=b, Key="bad", UploadId=r["UploadId"], MultipartUpload={"Parts": done})

    # A part uploaded again replaces its checksum and ETag.
    r = s3.create_multipart_upload(Bucket=b, Key="again", ChecksumAlgorithm="CRC32")
    s3.upload_part(Bucket=b, Key="again", UploadId=r["UploadId"], PartNumber=1, Body=b"first", ChecksumAlgorithm="CRC32")
    second = s3.upload_part(Bucket=b, Key="again", UploadId=r["UploadId"], PartNumber=1, Body=b"second",
                            ChecksumAlgorithm="CRC32")
    part = s3.list_parts(Bucket=b, Key="again", UploadId=r["UploadId"])["Parts"][0]
    assert part["ETag"] == second["ETag"] and part["ChecksumCRC32"] == crc(b"second"), part

    # Which algorithm takes which type.
    expect("InvalidRequest", s3.create_multipart_upload, Bucket=b, Key="x", ChecksumAlgorithm="SHA256",
           ChecksumType="FULL_OBJECT")
    expect("InvalidRequest", s3.create_multipart_upload, Bucket=b, Key="x", ChecksumAlgorithm="CRC64NVME",
           ChecksumType="COMPOSITE")
    assert s3.create_multipart_upload(Bucket=b, Key="x", ChecksumAlgorithm="CRC64NVME")["ChecksumType"] == "FULL_OBJECT"


@test
def sse_kms():
    """SSE-KMS with the built-in key ring (issue 20, item 1): keys made through the admin API;
    the key echoed on PUT, GET, HEAD, copy and multipart; the bucket default; unknown and
    disabled keys answered with AWS's KMS errors (a disabled key's objects unreadable, and the
    audit says why); rotation keeping old objects readable; Cedar seeing the key a write names."""
    import time
    key, other = "app-" + uuid.uuid4().hex[:8], "other-" + uuid.uuid4().hex[:8]
    for k in (key, other):
        status, out = admin("POST", "/admin/v1/kms/keys", {"name": k})
        assert status == 201 and out["enabled"] and out["version"] == 1, (status, out)
    status, _ = admin("POST", "/admin/v1/kms/keys", {"name": key})
    assert status == 409, status
    b = bucket()
    r = s3.put_object(Bucket=b, Key="k", Body=b"secret", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == key, r
    g = s3.get_object(Bucket=b, Key="k")
    assert g["Body"].read() == b"secret" and g["ServerSideEncryption"] == "aws:kms" and g["SSEKMSKeyId"] == key, g
    h = s3.head_object(Bucket=b, Key="k")
    assert h["ServerSideEncryption"] == "aws:kms" and h["SSEKMSKeyId"] == key, h
    # An ARN names the key by its id; no key id means the ring's default key.
    r = s3.put_object(Bucket=b, Key="arn", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId=f"arn:aws:kms:us-east-1:000000000000:key/{key}")
    assert r["SSEKMSKeyId"] == key, r
    r = s3.put_object(Bucket=b, Key="dflt", Body=b"x", ServerSideEncryption="aws:kms")
    assert r["SSEKMSKeyId"] == "fsgate-default", r
    e = expect("KMS.NotFoundException", s3.put_object, Bucket=b, Key="nokey", Body=b"x",
               ServerSideEncryption="aws:kms", SSEKMSKeyId="no-such-key")
    assert status_of(e) == 400
    # Multipart and copy.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert up["SSEKMSKeyId"] == key, up
    p = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"part")
    assert p["SSEKMSKeyId"] == key, p
    c = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    assert c["SSEKMSKeyId"] == key, c
    assert s3.get_object(Bucket=b, Key="mp")["Body"].read() == b"part"
    c = s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "k"},
                       ServerSideEncryption="aws:kms", SSEKMSKeyId=other)
    assert c["SSEKMSKeyId"] == other, c
    assert s3.get_object(Bucket=b, Key="copy")["Body"].read() == b"secret"
    # The bucket default.
    d = bucket()
    s3.put_bucket_encryption(Bucket=d, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, "BucketKeyEnabled": True}]})
    rule = s3.get_bucket_encryption(Bucket=d)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}, rule
    assert rule["BucketKeyEnabled"] is True, rule
    r = s3.put_object(Bucket=d, Key="k", Body=b"by default")
    assert r["ServerSideEncryption"] == "aws:kms" and r["SSEKMSKeyId"] == key, r
    expect("KMS.NotFoundException", s3.put_bucket_encryption, Bucket=d, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "no-such-key"}}]})
    # Rotation: new material for new objects; old objects still read.
    status, out = admin("POST", f"/admin/v1/kms/keys/{key}/rotate")
    assert status == 200 and out["version"] == 2, (status, out)
    s3.put_object(Bucket=b, Key="after", Body=b"v2", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"secret"
    assert s3.get_object(Bucket=b, Key="after")["Body"].read() == b"v2"
    # Disabled: nothing encrypts or decrypts under it; the audit says why.
    assert admin("POST", f"/admin/v1/kms/keys/{key}/disable")[0] == 200
    e = expect("KMS.DisabledException", s3.get_object, Bucket=b, Key="k")
    assert status_of(e) == 400
    expect("KMS.DisabledException", s3.put_object, Bucket=b, Key="k2", Body=b"x",
           ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert s3.get_object(Bucket=b, Key="copy")["Body"].read() == b"secret"
    for _ in range(50):
        status, _, body = signed_request(EP, AK, SK, "GET", "/admin/v1/audit", f"bucket={b}&key=k")
        if any(x.get("error_code") == "KMS.DisabledException" for x in json.loads(body)):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(body)
    assert admin("POST", f"/admin/v1/kms/keys/{key}/enable")[0] == 200
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"secret"
    keys = {k["name"]: k for k in admin("GET", "/admin/v1/kms/keys")[1]}
    assert keys[key]["enabled"] and keys[key]["version"] == 2 and keys[key]["source"] == "store", keys
    # Cedar sees the key a write names: a bucket policy requiring one key.
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key}}}]}))
    expect("AccessDenied", s3.put_object, Bucket=b, Key="k3", Body=b"x", ServerSideEncryption="aws:kms",
           SSEKMSKeyId=other)
    s3.put_object(Bucket=b, Key="k3", Body=b"x", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    s3.delete_bucket_policy(Bucket=b)


@test
def sigv2_dates_and_bad_headers():
    """Signature V2 header authentication dates as AWS answers them: none, empty, unparseable
    or before the epoch is 403 AccessDenied, more than 15 minutes off is 403
    RequestTimeTooSkewed (so a signed request cannot be replayed later); an empty
    Authorization header is 403 AccessDenied; bad Content-MD5 values are InvalidDigest and
    BadDigest. Nothing is written by any of them."""
    import base64 as _b64
    import email.utils
    import hmac
    import http.client
    import urllib.parse

    host = urllib.parse.urlparse(EP)

    def v2(method, path, headers, body=b"", sign=True):
        h = dict(headers)
        h.setdefault("Date", email.utils.formatdate(usegmt=True))
        if h["Date"] is None:
            del h["Date"]
        amz = "".join(f"{k.lower()}:{v}\n" for k, v in sorted(h.items()) if k.lower().startswith("x-amz-"))
        # With x-amz-date, AWS signs an empty Date line.
        date_line = "" if "x-amz-date" in h else h.get("Date", "")
        sts = f"{method}\n{h.get('Content-MD5', '')}\n{h.get('Content-Type', '')}\n{date_line}\n{amz}{path}"
        sig = _b64.b64encode(hmac.new(SK.encode(), sts.encode(), hashlib.sha1).digest()).decode()
        if sign:
            h["Authorization"] = f"AWS {AK}:{sig}"
        c = http.client.HTTPConnection(host.hostname, host.port)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        code = data.split(b"<Code>")[1].split(b"</Code>")[0].decode() if b"<Code>" in data else ""
        return r.status, code

    b = bucket()
    assert v2("PUT", f"/{b}/ok", {}, b"x") == (200, ""), "a well-signed SigV2 PUT"
    for date, want in [("Bad Date", (403, "AccessDenied")), ("", (403, "AccessDenied")),
                       (None, (403, "AccessDenied")),
                       ("Tue, 07 Jul 1950 21:53:04 GMT", (403, "AccessDenied")),
                       ("Tue, 07 Jul 2010 21:53:04 GMT", (403, "RequestTimeTooSkewed")),
                       ("Tue, 07 Jul 9999 21:53:04 GMT", (403, "RequestTimeTooSkewed"))]:
        assert v2("PUT", f"/{b}/bad", {"Date": date}, b"x") == want, (date, want)
        assert v2("PUT", f"/{b}-new", {"Date": date}) == want, (date, want)
    # x-amz-date is the request's time when given.
    now = email.utils.formatdate(usegmt=True)
    assert v2("PUT", f"/{b}/amz", {"Date": "Tue, 07 Jul 2010 21:53:04 GMT", "x-amz-date": now}, b"x")[0] == 200
    assert v2("PUT", f"/{b}/bad", {"Authorization": ""}, b"x", sign=False) == (403, "AccessDenied")
    assert v2("PUT", f"/{b}/bad", {"Content-MD5": "YWJyYWNhZGFicmE="}, b"x") == (400, "InvalidDigest")
    assert v2("PUT", f"/{b}/bad", {"Content-MD5": "rL0Y20zC+Fzt72VPzMSk2A=="}, b"x") == (400, "BadDigest")
    assert v2("PUT", f"/{b}/bad", {"Content-MD5": ""}, b"x") == (400, "InvalidDigest")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=b)["Contents"])
    assert keys == ["amz", "ok"], keys
    expect("404", s3.head_bucket, Bucket=f"{b}-new")


@test
def server_access_logging():
    """PutBucketLogging / GetBucketLogging and delivery (the server runs with
    --access-log-interval 1): log objects in AWS's server access log format, built from the
    audit records, land in the target bucket under the prefix; the target must exist, belong
    to the same owner and be writable by the caller."""
    import re
    import time
    src, logs = bucket(), bucket()
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)
    e = expect("InvalidTargetBucketForLogging", s3.put_bucket_logging, Bucket=src, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": "no-such-" + logs, "TargetPrefix": "x/"}})
    assert status_of(e) == 400
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={
        "LoggingEnabled": {"TargetBucket": logs, "TargetPrefix": "access/"}})
    got = s3.get_bucket_logging(Bucket=src)["LoggingEnabled"]
    assert got == {"TargetBucket": logs, "TargetPrefix": "access/"}, got
    s3.put_object(Bucket=src, Key="dir/a b.txt", Body=b"hello")
    s3.get_object(Bucket=src, Key="dir/a b.txt")["Body"].read()
    expect("NoSuchKey", s3.get_object, Bucket=src, Key="missing")
    lines = []
    for _ in range(100):
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=logs, Prefix="access/").get("Contents", [])]
        lines = [l for k in keys for l in s3.get_object(Bucket=logs, Key=k)["Body"].read().decode().splitlines()]
        if sum(" REST." in l for l in lines) >= 3:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(lines)
    assert all(re.match(r"access/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9A-F]{16}$", k) for k in keys), keys
    root_id = hashlib.sha256(b"fsgate-owner:root").hexdigest()
    put = next(l for l in lines if " REST.PUT.OBJECT " in l)
    fields = re.match(r'(\S+) (\S+) \[([^\]]+)\] (\S+) (\S+) (\S+) (\S+) (\S+) "([^"]*)" (\d+) (\S+) (\S+)', put)
    assert fields, put
    owner, bkt, _when, ip, requester, _rid, op, key, uri, status, err, _sent = fields.groups()
    assert (owner, bkt, ip, requester, op, key, status, err) == (root_id, src, "127.0.0.1", root_id, "REST.PUT.OBJECT", "dir/a%20b.txt", "200", "-"), put
    assert uri == f"PUT /{src}/dir/a%20b.txt HTTP/1.1", uri
    assert "SigV4" in put and "AuthHeader" in put, put
    miss = next(l for l in lines if " missing " in l)
    assert " 404 NoSuchKey " in miss, miss
    # Turned off: nothing more is delivered.
    s3.put_bucket_logging(Bucket=src, BucketLoggingStatus={})
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=src)


def _forwarded_client(trusted):
    """A bucket readable only from 203.0.113.0/24 (aws:SourceIp), read with X-Forwarded-For and
    Forwarded naming such an address: allowed, and audited with it, when the server trusts the
    connecting proxy (127.0.0.1); refused otherwise."""
    import http.client
    import time
    import urllib.parse
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"inside")
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}}]}))
    host = urllib.parse.urlparse(EP)

    def get(headers):
        c = http.client.HTTPConnection(host.hostname, host.port)
        c.request("GET", f"/{b}/k", headers=headers)
        r = c.getresponse()
        r.read()
        return r.status

    want = 200 if trusted else 403
    assert get({"X-Forwarded-For": "203.0.113.9"}) == want
    assert get({"Forwarded": 'for="203.0.113.10:4711";proto=http'}) == want
    # A client behind the proxy cannot claim an address by prepending it.
    assert get({"X-Forwarded-For": "203.0.113.11, 198.51.100.1"}) == 403
    assert get({}) == 403
    if trusted:
        for _ in range(50):
            status, _, body = signed_request(EP, AK, SK, "GET", "/admin/v1/audit", f"bucket={b}&key=k")
            ips = {r["source_ip"] for r in json.loads(body)}
            if {"203.0.113.9", "203.0.113.10", "198.51.100.1"} <= ips:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(ips)


@test
def trusted_proxy_client_address():
    _forwarded_client(trusted=True)


@test
def untrusted_forwarding_headers_ignored():
    _forwarded_client(trusted=False)

run(ARGS)
