"""ACLs and ownership (issue 20, items 2-4), driven by boto3 with real users: root owns the
buckets; bob is a user holding nothing, so whatever he can do an ACL gave him; anonymous
callers are unsigned. Grants are Cedar policies: `policy test` and `who-can` name them.

Run as `python acl.py ENDPOINT ROOT_AK ROOT_SK [TEST...]`."""
import hashlib
import json

from botocore import UNSIGNED

from s3check import ARGS, admin_ok, bucket, client, expect, new_user, run, s3, status_of, test


def canonical_id(owner):
    """The canonical id fsgate shows for an owner name (`root`, `user:NAME`)."""
    return hashlib.sha256(f"fsgate-owner:{owner}".encode()).hexdigest()


ROOT_ID = canonical_id("root")
anon = client(signature_version=UNSIGNED)


def grants_of(acl):
    """(grantee, permission) pairs: a canonical id or a group URI."""
    return sorted((g["Grantee"].get("ID") or g["Grantee"]["URI"], g["Permission"]) for g in acl["Grants"])


def denied(fn, *args, **kw):
    e = expect("AccessDenied", fn, *args, **kw)
    assert status_of(e) == 403


ALL = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"


@test
def bucket_acls_grant_what_aws_documents():
    name, ak, sk = new_user("bob")
    bob, bob_id = client(ak, sk), canonical_id(f"user:{name}")
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    acl = s3.get_bucket_acl(Bucket=b)
    assert acl["Owner"] == {"DisplayName": "root", "ID": ROOT_ID}, acl["Owner"]
    assert grants_of(acl) == [(ROOT_ID, "FULL_CONTROL")]
    denied(bob.list_objects_v2, Bucket=b)

    # READ by an AccessControlPolicy: bob lists, and reads nothing else.
    policy = {"Owner": acl["Owner"], "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": ROOT_ID}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "CanonicalUser", "ID": bob_id}, "Permission": "READ"}]}
    s3.put_bucket_acl(Bucket=b, AccessControlPolicy=policy)
    assert grants_of(s3.get_bucket_acl(Bucket=b)) == sorted([(ROOT_ID, "FULL_CONTROL"), (bob_id, "READ")])
    assert [o["Key"] for o in bob.list_objects_v2(Bucket=b)["Contents"]] == ["k"]
    bob.head_bucket(Bucket=b)
    denied(bob.get_object, Bucket=b, Key="k")
    denied(bob.get_bucket_acl, Bucket=b)
    denied(bob.put_object, Bucket=b, Key="x", Body=b"x")
    # The grant is a Cedar policy: explained by name.
    t = admin_ok("POST", "/admin/v1/policy/test", {"principal": name, "action": "s3:ListObjectsV2", "resource": b})
    assert t["decision"] == "allow" and t["policies"] == [f"acl:{b}#0"], t
    w = admin_ok("POST", "/admin/v1/policy/who-can", {"action": "s3:ListObjectsV2", "resource": b})
    assert name in [u["user"] for u in w["users"]] and w["anonymous"] is None, w

    # WRITE and READ_ACP by grant headers replace it: bob writes and deletes, reads the ACL,
    # and no longer lists.
    s3.put_bucket_acl(Bucket=b, GrantWrite=f'id="{bob_id}"', GrantReadACP=f"id={bob_id}")
    assert grants_of(bob.get_bucket_acl(Bucket=b)) == sorted([(bob_id, "WRITE"), (bob_id, "READ_ACP")])
    bob.put_object(Bucket=b, Key="by-bob", Body=b"x")
    bob.delete_object(Bucket=b, Key="k")
    denied(bob.list_objects_v2, Bucket=b)
    denied(bob.put_bucket_acl, Bucket=b, ACL="private")

    # A bucket policy's Deny wins over the ACL.
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": {"AWS": [f"arn:aws:iam::fsgate:user/{name}"]}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*"}]}))
    denied(bob.put_object, Bucket=b, Key="by-bob", Body=b"x")
    s3.delete_bucket_policy(Bucket=b)

    # Back to private: bob can do nothing.
    s3.put_bucket_acl(Bucket=b, ACL="private")
    assert grants_of(s3.get_bucket_acl(Bucket=b)) == [(ROOT_ID, "FULL_CONTROL")]
    denied(bob.put_object, Bucket=b, Key="by-bob", Body=b"x")
    denied(bob.get_bucket_acl, Bucket=b)


@test
def public_acls_and_the_public_access_block():
    name, ak, sk = new_user("bob")
    bob = client(ak, sk)
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    s3.put_bucket_acl(Bucket=b, ACL="public-read")
    assert grants_of(s3.get_bucket_acl(Bucket=b)) == sorted([(ROOT_ID, "FULL_CONTROL"), (ALL, "READ")])
    assert [o["Key"] for o in anon.list_objects(Bucket=b)["Contents"]] == ["k"]
    denied(anon.get_object, Bucket=b, Key="k")
    w = admin_ok("POST", "/admin/v1/policy/who-can", {"action": "s3:ListObjects", "resource": b})
    assert w["anonymous"] == {"policies": [f"acl:{b}#0"]}, w

    # An object's own ACL: public-read lets anyone read that object only.
    s3.put_object(Bucket=b, Key="other", Body=b"other")
    s3.put_object_acl(Bucket=b, Key="k", ACL="public-read")
    assert grants_of(s3.get_object_acl(Bucket=b, Key="k")) == sorted([(ROOT_ID, "FULL_CONTROL"), (ALL, "READ")])
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    denied(anon.get_object, Bucket=b, Key="other")
    denied(anon.put_object_acl, Bucket=b, Key="k", ACL="private")

    # IgnorePublicAcls: public grants stop granting while it is on, and come back after.
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"IgnorePublicAcls": True})
    denied(anon.get_object, Bucket=b, Key="k")
    denied(anon.list_objects, Bucket=b)
    s3.delete_public_access_block(Bucket=b)
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    # BlockPublicAcls: public ACLs are refused; private ones are not.
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"BlockPublicAcls": True})
    denied(s3.put_object_acl, Bucket=b, Key="other", ACL="public-read")
    denied(s3.put_object, Bucket=b, Key="new", Body=b"x", ACL="public-read-write")
    s3.put_object_acl(Bucket=b, Key="other", ACL="private")
    s3.delete_public_access_block(Bucket=b)

    # A write without an ACL resets the key's: the new object is private.
    s3.put_object(Bucket=b, Key="k", Body=b"new")
    denied(anon.get_object, Bucket=b, Key="k")
    assert grants_of(s3.get_object_acl(Bucket=b, Key="k")) == [(ROOT_ID, "FULL_CONTROL")]

    # authenticated-read: any signed caller, never an anonymous one.
    s3.put_object(Bucket=b, Key="auth", Body=b"auth", ACL="authenticated-read")
    assert bob.get_object(Bucket=b, Key="auth")["Body"].read() == b"auth"
    denied(anon.get_object, Bucket=b, Key="auth")

    # Multipart and copy take the ACL they are given.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", ACL="public-read")["UploadId"]
    et = s3.upload_part(Bucket=b, Key="mp", UploadId=up, PartNumber=1, Body=b"mp")["ETag"]
    denied(anon.get_object, Bucket=b, Key="mp")
    s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": et}]})
    assert anon.get_object(Bucket=b, Key="mp")["Body"].read() == b"mp"
    s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "mp"}, ACL="public-read")
    assert anon.get_object(Bucket=b, Key="copy")["Body"].read() == b"mp"
    s3.copy_object(Bucket=b, Key="copy", CopySource={"Bucket": b, "Key": "other"})
    denied(anon.get_object, Bucket=b, Key="copy")

    # public-read-write on the bucket: anyone writes.
    s3.put_bucket_acl(Bucket=b, ACL="public-read-write")
    anon.put_object(Bucket=b, Key="dropped", Body=b"x")
    # A bucket created public is public from the start.
    c = bucket(ACL="public-read")
    anon.list_objects(Bucket=c)


@test
def objects_written_by_others_and_grant_errors():
    name, ak, sk = new_user("bob")
    bob, bob_id = client(ak, sk), canonical_id(f"user:{name}")
    b = bucket()
    s3.put_bucket_acl(Bucket=b, GrantWrite=f"id={bob_id}")
    # Bob writes with bucket-owner-read: he owns the object, the bucket owner may read it.
    bob.put_object(Bucket=b, Key="bobs", Body=b"bob", ACL="bucket-owner-read")
    acl = s3.get_object_acl(Bucket=b, Key="bobs")
    assert acl["Owner"] == {"DisplayName": name, "ID": bob_id}, acl
    assert grants_of(acl) == sorted([(bob_id, "FULL_CONTROL"), (ROOT_ID, "READ")])
    # His full control is his: he reads it and its ACL, and changes it.
    assert bob.get_object(Bucket=b, Key="bobs")["Body"].read() == b"bob"
    bob.put_object_acl(Bucket=b, Key="bobs", ACL="public-read")
    assert anon.get_object(Bucket=b, Key="bobs")["Body"].read() == b"bob"
    assert s3.get_object_acl(Bucket=b, Key="bobs")["Owner"]["ID"] == bob_id
    # Without an ACL, what he writes is the bucket owner's, as under BucketOwnerPreferred.
    bob.put_object(Bucket=b, Key="plain", Body=b"x")
    assert s3.get_object_acl(Bucket=b, Key="plain")["Owner"]["ID"] == ROOT_ID
    denied(bob.get_object, Bucket=b, Key="plain")

    # Errors, each changing nothing.
    expect("UnresolvableGrantByEmailAddress", s3.put_bucket_acl, Bucket=b, GrantRead='emailAddress="x@example.com"')
    expect("InvalidArgument", s3.put_bucket_acl, Bucket=b, GrantRead="id=" + "0" * 64)
    expect("InvalidArgument", s3.put_bucket_acl, Bucket=b, GrantRead='uri="http://acs.amazonaws.com/groups/global/Nobody"')
    expect("InvalidRequest", s3.put_bucket_acl, Bucket=b, ACL="public-read", GrantRead=f"id={bob_id}")
    expect("InvalidArgument", s3.put_object, Bucket=b, Key="k", Body=b"x", ACL="public-ready")
    expect("UnresolvableGrantByEmailAddress", s3.put_bucket_acl, Bucket=b, AccessControlPolicy={
        "Owner": {"ID": ROOT_ID}, "Grants": [
            {"Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": "x@example.com"}, "Permission": "READ"}]})
    assert grants_of(s3.get_bucket_acl(Bucket=b)) == [(bob_id, "WRITE")]
    expect("NoSuchKey", s3.get_object_acl, Bucket=b, Key="missing")


@test
def concurrent_writes_settle_on_the_current_version():
    """Writes to one key race, some public, some not: whichever is current in the end, the
    key's ACL is the one its writer asked for (settling an ACL is not part of the write's
    commit, so this is what the ordering rules in settle_object_acl guarantee)."""
    from concurrent.futures import ThreadPoolExecutor
    b = bucket()
    writers = [client() for _ in range(6)]

    def write(i):
        kw = {"ACL": "public-read"} if i % 2 else {}
        writers[i % 6].put_object(Bucket=b, Key="race", Body=f"{'public' if i % 2 else 'private'}-{i}".encode(), **kw)

    for round_ in range(40):
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(write, range(round_ * 6, round_ * 6 + 6)))
        body = s3.get_object(Bucket=b, Key="race")["Body"].read().decode()
        public = [g for g in s3.get_object_acl(Bucket=b, Key="race")["Grants"] if g["Grantee"].get("URI") == ALL]
        if body.startswith("public"):
            assert public and anon.get_object(Bucket=b, Key="race")["Body"].read().decode() == body, (round_, body)
        else:
            assert not public, (round_, body)
            denied(anon.get_object, Bucket=b, Key="race")


@test
def the_owner_role_makes_tenants():
    """A group holding the `owner` role on the whole service: each member creates buckets and
    has full control of those, and of nothing else, with no per-bucket attachment."""
    import uuid
    group = "tenants-" + uuid.uuid4().hex[:6]
    admin_ok("POST", "/admin/v1/policies", {"group": group, "role": "owner"})
    alice_name, ak, sk = new_user("alice", groups=[group])
    bob_name, bk, bs = new_user("bob", groups=[group])
    alice, bob = client(ak, sk), client(bk, bs)
    a = "own-" + uuid.uuid4().hex[:12]
    alice.create_bucket(Bucket=a)
    alice.put_object(Bucket=a, Key="k", Body=b"alice's")
    alice.put_bucket_versioning(Bucket=a, VersioningConfiguration={"Status": "Enabled"})
    alice.put_bucket_policy(Bucket=a, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteBucket", "Resource": f"arn:aws:s3:::{a}"}]}))
    assert alice.get_object(Bucket=a, Key="k")["Body"].read() == b"alice's"
    assert alice.get_bucket_acl(Bucket=a)["Owner"]["ID"] == canonical_id(f"user:{alice_name}")
    # Bob: nothing of alice's; his own bucket only; her name is taken.
    denied(bob.get_object, Bucket=a, Key="k")
    denied(bob.list_objects_v2, Bucket=a)
    denied(bob.put_object, Bucket=a, Key="x", Body=b"x")
    denied(bob.put_bucket_policy, Bucket=a, Policy="{}")
    e = expect("BucketAlreadyExists", bob.create_bucket, Bucket=a)
    assert status_of(e) == 409
    bb = "own-" + uuid.uuid4().hex[:12]
    bob.create_bucket(Bucket=bb)
    bob.put_object(Bucket=bb, Key="k", Body=b"bob's")
    denied(alice.get_object, Bucket=bb, Key="k")
    assert [b["Name"] for b in alice.list_buckets()["Buckets"]] == [a]
    assert [b["Name"] for b in bob.list_buckets()["Buckets"]] == [bb]
    # Explained: who may read alice's object is alice, by the role's link.
    w = admin_ok("POST", "/admin/v1/policy/who-can", {"action": "s3:GetObject", "resource": f"{a}/k"})
    assert [u["user"] for u in w["users"]] == [alice_name], w
    # The bucket policy she wrote binds her too.
    denied(alice.delete_bucket, Bucket=a)


@test
def bucket_policy_conditions_on_request_headers():
    """s3:x-amz-acl, s3:x-amz-grant-*, s3:x-amz-copy-source, s3:x-amz-metadata-directive,
    aws:UserAgent and aws:Referer decide live requests as AWS documents them."""
    import urllib.error
    import urllib.request
    name, ak, sk = new_user("bob")
    bob = client(ak, sk)
    b = bucket()
    s3.put_object(Bucket=b, Key="public/a", Body=b"pa")
    s3.put_object(Bucket=b, Key="private/a", Body=b"xa")
    me = f"arn:aws:iam::fsgate:user/{name}"
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "write", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}},
        {"Sid": "read", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/*"},
        {"Sid": "copy-from-public", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"Null": {"s3:x-amz-copy-source": "false"},
                                                         "StringNotLike": {"s3:x-amz-copy-source": f"{b}/public/*"}}},
        {"Sid": "keep-metadata", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"StringEquals": {"s3:x-amz-metadata-directive": "REPLACE"}}},
        {"Sid": "no-grants", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"Null": {"s3:x-amz-grant-read": "false"}}},
        {"Sid": "no-robots", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"StringLike": {"aws:UserAgent": "*evil-robot*"}}},
        {"Sid": "hotlink", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{b}/public/*", "Condition": {"StringLike": {"aws:Referer": "https://example.com/*"}}},
        {"Sid": "no-secret-tags", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"ForAnyValue:StringEquals": {"s3:RequestObjectTagKeys": ["secret"]}}},
        {"Sid": "tag-public", "Effect": "Allow", "Principal": {"AWS": me}, "Action": "s3:PutObjectTagging",
         "Resource": f"arn:aws:s3:::{b}/*", "Condition": {"StringEquals": {"s3:RequestObjectTag/class": "public"}}},
    ]}))
    # Request tags: keys and values of the tags a write asks for.
    bob.put_object(Bucket=b, Key="tagged", Body=b"x", ACL="bucket-owner-full-control", Tagging="class=x")
    denied(bob.put_object, Bucket=b, Key="tagged", Body=b"x", ACL="bucket-owner-full-control", Tagging="class=x&secret=1")
    bob.put_object_tagging(Bucket=b, Key="tagged", Tagging={"TagSet": [{"Key": "class", "Value": "public"}]})
    denied(bob.put_object_tagging, Bucket=b, Key="tagged", Tagging={"TagSet": [{"Key": "class", "Value": "private"}]})
    full = "bucket-owner-full-control"
    bob.put_object(Bucket=b, Key="up", Body=b"x", ACL=full)
    denied(bob.put_object, Bucket=b, Key="up", Body=b"x")
    denied(bob.put_object, Bucket=b, Key="up", Body=b"x", ACL="private")
    denied(bob.put_object, Bucket=b, Key="up", Body=b"x", ACL=full, GrantRead=f"id={canonical_id('root')}")
    bob.copy_object(Bucket=b, Key="c1", CopySource={"Bucket": b, "Key": "public/a"}, ACL=full)
    denied(bob.copy_object, Bucket=b, Key="c2", CopySource={"Bucket": b, "Key": "private/a"}, ACL=full)
    denied(bob.copy_object, Bucket=b, Key="c3", CopySource={"Bucket": b, "Key": "public/a"}, ACL=full,
           MetadataDirective="REPLACE", Metadata={"a": "b"})
    assert bob.get_object(Bucket=b, Key="c1")["Body"].read() == b"pa"
    robot = client(ak, sk, user_agent_extra="evil-robot/1.0")
    denied(robot.get_object, Bucket=b, Key="c1")
    # Referer: anonymous reads of public/ from the site only.
    from s3check import EP
    url = f"{EP}/{b}/public/a"
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Referer": "https://example.com/page"})) as r:
        assert r.read() == b"pa"
    for headers in ({}, {"Referer": "https://elsewhere.example/"}):
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers))
            raise AssertionError(f"read without the right Referer: {headers}")
        except urllib.error.HTTPError as e:
            assert e.code == 403, e.code


@test
def account_public_access_block():
    """The account-wide Public Access Block (admin API): each setting applies to every bucket
    with the bucket's own, takes effect at once on what is already public, and lifts when
    removed; the bucket's own settings read as they were."""
    from s3check import admin
    name, ak, sk = new_user("bob")
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    s3.put_object_acl(Bucket=b, Key="k", ACL="public-read")
    c = bucket()
    s3.put_object(Bucket=c, Key="k", Body=b"pub")
    public = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{c}/*"}]})
    s3.put_bucket_policy(Bucket=c, Policy=public)
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    assert anon.get_object(Bucket=c, Key="k")["Body"].read() == b"pub"
    assert admin("GET", "/admin/v1/public-access-block")[0] == 404
    # Only what the admin API allows: a user holding nothing is refused.
    assert admin("PUT", "/admin/v1/public-access-block", {"IgnorePublicAcls": True}, ak=ak, sk=sk)[0] == 403
    assert admin("PUT", "/admin/v1/public-access-block", {"Sideways": True})[0] == 400
    status, out = admin("PUT", "/admin/v1/public-access-block",
                        {"IgnorePublicAcls": True, "RestrictPublicBuckets": True, "BlockPublicAcls": True,
                         "BlockPublicPolicy": True})
    assert status == 200 and all(out.values()), (status, out)
    denied(anon.get_object, Bucket=b, Key="k")
    denied(anon.get_object, Bucket=c, Key="k")
    denied(s3.put_bucket_acl, Bucket=b, ACL="public-read")
    denied(s3.put_bucket_policy, Bucket=c, Policy=public)
    expect("NoSuchPublicAccessBlockConfiguration", s3.get_public_access_block, Bucket=b)
    # A bucket's own settings still apply with the account's: removing one keeps the other.
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration={"BlockPublicAcls": False})
    denied(anon.get_object, Bucket=b, Key="k")
    assert admin("DELETE", "/admin/v1/public-access-block")[0] == 200
    assert admin("GET", "/admin/v1/public-access-block")[0] == 404
    assert anon.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    assert anon.get_object(Bucket=c, Key="k")["Body"].read() == b"pub"
    s3.put_bucket_acl(Bucket=b, ACL="public-read")


@test
def iam_json_identity_policies():
    """AWS IAM JSON identity policies (issue 21, item 3, part): attached to a user through
    the admin API, and as an STS session policy, translated to Cedar and deciding live
    requests; a Principal in an identity policy is refused, naming it."""
    import boto3
    from botocore.config import Config
    from s3check import EP, admin
    name, ak, sk = new_user("bob")
    bob = client(ak, sk)
    b = bucket()
    s3.put_object(Bucket=b, Key="reports/q3", Body=b"q3")
    s3.put_object(Bucket=b, Key="private/x", Body=b"x")
    doc = {"Version": "2012-10-17", "Statement": [
        {"Sid": "read", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/reports/*"},
        {"Sid": "list", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{b}"}]}
    admin_ok("POST", "/admin/v1/policies", {"user": name, "cedar": json.dumps(doc)})
    assert bob.get_object(Bucket=b, Key="reports/q3")["Body"].read() == b"q3"
    assert len(bob.list_objects_v2(Bucket=b)["Contents"]) == 2
    denied(bob.get_object, Bucket=b, Key="private/x")
    denied(bob.put_object, Bucket=b, Key="reports/new", Body=b"x")
    # The Cedar it became is shown with the attachment (`fsctl policy ls --cedar`).
    att = next(a for a in admin_ok("GET", "/admin/v1/policies") if a.get("user") == name)
    assert att["cedar"] == json.dumps(doc) and "permit(" in att["cedar_in_force"], att
    assert f'resource.bucket == "{b}"' in att["cedar_in_force"], att
    t = admin_ok("POST", "/admin/v1/policy/test", {"principal": name, "action": "s3:GetObject", "resource": f"{b}/reports/q3"})
    assert t["decision"] == "allow" and t["policies"][0].startswith("att-"), t
    bad = {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::x/*"}]}
    status, out = admin("POST", "/admin/v1/policies", {"user": name, "cedar": json.dumps(bad)})
    assert status == 400 and "Principal" in out["message"], (status, out)
    # An STS session narrowed by an IAM JSON session policy.
    carol, cak, csk = new_user("carol", role="readwrite")
    sts = boto3.client("sts", endpoint_url=EP, region_name="us-east-1", aws_access_key_id=cak,
                       aws_secret_access_key=csk, config=Config(retries={"max_attempts": 1}))
    session_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/reports/*"}]}
    creds = sts.assume_role(RoleArn="arn:aws:iam::fsgate:role/any", RoleSessionName="narrow",
                            Policy=json.dumps(session_policy))["Credentials"]
    narrow = client(creds["AccessKeyId"], creds["SecretAccessKey"], token=creds["SessionToken"])
    assert narrow.get_object(Bucket=b, Key="reports/q3")["Body"].read() == b"q3"
    denied(narrow.get_object, Bucket=b, Key="private/x")
    denied(narrow.put_object, Bucket=b, Key="reports/q3", Body=b"overwrite")


@test
def ownership_controls():
    b = bucket()
    expect("OwnershipControlsNotFoundError", s3.get_bucket_ownership_controls, Bucket=b)
    s3.put_bucket_ownership_controls(Bucket=b, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    # ACLs disabled: anything but the owner's full control is refused.
    for call, kw in [(s3.put_bucket_acl, {"ACL": "public-read"}),
                     (s3.put_object, {"Key": "k", "Body": b"x", "ACL": "public-read"}),
                     (s3.put_object, {"Key": "k", "Body": b"x", "GrantRead": "id=" + ROOT_ID})]:
        e = expect("AccessControlListNotSupported", call, Bucket=b, **kw)
        assert status_of(e) == 400
    s3.put_object(Bucket=b, Key="k", Body=b"x", ACL="bucket-owner-full-control")
    s3.put_bucket_acl(Bucket=b, ACL="private")
    s3.delete_bucket_ownership_controls(Bucket=b)
    expect("OwnershipControlsNotFoundError", s3.get_bucket_ownership_controls, Bucket=b)
    # Set when the bucket is made.
    c = bucket(ObjectOwnership="BucketOwnerPreferred")
    rules = s3.get_bucket_ownership_controls(Bucket=c)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerPreferred"}], rules
    e = expect("InvalidBucketAclWithObjectOwnership", s3.create_bucket, Bucket=c + "-x",
               ACL="public-read", ObjectOwnership="BucketOwnerEnforced")
    assert status_of(e) == 400
    expect("404", s3.head_bucket, Bucket=c + "-x")


run(ARGS)
