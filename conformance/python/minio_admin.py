"""MinIO's admin API (issue 21, item 1), driven by `MinioAdmin` from the `minio` package: a
MinIO user's admin script (users, groups, canned policies, service accounts, quotas, identity
configuration) run unchanged, and what fsgate makes of it (Cedar attachments that `policy
test` explains). Bad input: a body sealed with the wrong key, malformed policies, keys that
break the length rules, callers without the right.

Run as `python minio_admin.py ENDPOINT ROOT_AK ROOT_SK [TEST...]`."""
import json
import tempfile
import uuid

import urllib3
from minio import Minio
from minio.credentials import StaticProvider
from minio.crypto import decrypt, encrypt
from minio.error import MinioAdminException
from minio.minioadmin import MinioAdmin

from s3check import AK, EP, SK, admin_ok, bucket, client, expect, run, s3, test

HOST = EP.split("://", 1)[1]


def minio_admin(ak=AK, sk=SK):
    return MinioAdmin(endpoint=HOST, credentials=StaticProvider(ak, sk), secure=False)


root = minio_admin()


def refused(status, code, fn, *args, **kw):
    """Calls fn, which must fail with MinIO's admin error `code` and HTTP `status`."""
    try:
        fn(*args, **kw)
    except MinioAdminException as e:
        body = json.loads(e._body) if e._body.strip().startswith("{") else {}
        assert e._code == str(status) and body.get("Code") == code, (e._code, e._body)
        assert body.get("Message"), e._body
        return body
    raise AssertionError(f"expected {status} {code}, the call succeeded")


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def rw_policy(b, actions=("s3:GetObject", "s3:PutObject", "s3:ListBucket")):
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": list(actions),
        "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]}


@test
def users_groups_and_canned_policies_as_a_minio_script():
    info = json.loads(root.info())
    assert info["mode"] == "online" and info["servers"][0]["state"] == "online", info
    b, other = bucket(), bucket()
    user, secret = name("app"), "app-secret-" + uuid.uuid4().hex[:8]
    root.user_add(user, secret)
    users = json.loads(root.user_list())
    assert users[user]["status"] == "enabled", users
    app = client(user, secret)
    expect("AccessDenied", app.put_object, Bucket=b, Key="k", Body=b"x")

    # A canned policy in IAM JSON, attached: the user reads and writes its bucket only.
    pol = name("app-rw")
    root.policy_add(pol, policy=rw_policy(b))
    listed = json.loads(root.policy_list())
    assert pol in listed and "readwrite" in listed and "consoleAdmin" in listed, list(listed)
    assert json.loads(root.policy_info(pol))["Statement"][0]["Action"] == rw_policy(b)["Statement"][0]["Action"]
    out = json.loads(root.attach_policy([pol], user=user))
    assert out["policiesAttached"] == [pol] and out["user"] == user, out
    refused(400, "XMinioAdminPolicyChangeAlreadyApplied", root.attach_policy, [pol], user=user)
    app.put_object(Bucket=b, Key="k", Body=b"x")
    assert app.get_object(Bucket=b, Key="k")["Body"].read() == b"x"
    expect("AccessDenied", app.put_object, Bucket=other, Key="k", Body=b"x")
    assert json.loads(root.user_info(user))["policyName"] == pol

    # Underneath it is Cedar: the attachment names the policy, `policy test` explains it.
    atts = [a for a in admin_ok("GET", "/admin/v1/policies") if a.get("user") == user]
    assert len(atts) == 1 and atts[0]["policy_name"] == pol and "permit" in atts[0]["cedar_in_force"], atts
    t = admin_ok("POST", "/admin/v1/policy/test", {"principal": user, "action": "s3:PutObject", "resource": f"{b}/k"})
    assert t["decision"] == "allow" and t["policies"] == ["att-" + atts[0]["id"]], t

    # Replacing the canned policy changes what every holder may do, at once.
    root.policy_add(pol, policy=rw_policy(b, ("s3:GetObject",)))
    expect("AccessDenied", app.put_object, Bucket=b, Key="k2", Body=b"x")
    app.get_object(Bucket=b, Key="k")

    # Groups: members, a built-in policy on the group, disable and enable.
    group = name("devs")
    root.group_add(group, user)
    info = json.loads(root.group_info(group))
    assert info["members"] == [user] and info["status"] == "enabled", info
    assert group in json.loads(root.group_list())
    root.policy_set("readwrite", group=group)
    assert json.loads(root.group_info(group))["policy"] == "readwrite"
    app.put_object(Bucket=other, Key="via-group", Body=b"g")
    entities = json.loads(root.get_policy_entities(users=[user], groups=[group], policies=[]))
    assert entities["userMappings"] == [{"user": user, "policies": [pol]}], entities
    assert entities["groupMappings"] == [{"group": group, "policies": ["readwrite"]}], entities
    root.group_disable(group)
    assert json.loads(root.group_info(group))["status"] == "disabled"
    expect("AccessDenied", app.put_object, Bucket=other, Key="via-group", Body=b"g")
    root.group_enable(group)
    app.put_object(Bucket=other, Key="via-group", Body=b"g")

    # Disabling the user refuses its key; enabling it restores it.
    root.user_disable(user)
    assert json.loads(root.user_info(user))["status"] == "disabled"
    expect("InvalidAccessKeyId", app.get_object, Bucket=b, Key="k")
    root.user_enable(user)
    app.get_object(Bucket=b, Key="k")

    # add-user on an existing user sets its secret, as MinIO does.
    new_secret = "rotated-" + uuid.uuid4().hex[:8]
    root.user_add(user, new_secret)
    expect("SignatureDoesNotMatch", app.get_object, Bucket=b, Key="k")
    app = client(user, new_secret)
    app.get_object(Bucket=b, Key="k")

    # Leaving the group, detaching and removing.
    refused(400, "XMinioAdminGroupNotEmpty", root.group_remove, group)
    root.group_remove(group, user)
    expect("AccessDenied", app.put_object, Bucket=other, Key="via-group", Body=b"g")
    out = json.loads(root.detach_policy([pol], user=user))
    assert out["policiesDetached"] == [pol], out
    expect("AccessDenied", app.get_object, Bucket=b, Key="k")
    root.policy_remove(pol)
    refused(404, "XMinioAdminNoSuchPolicy", root.policy_info, pol)
    root.group_remove(group)
    refused(404, "XMinioAdminNoSuchGroup", root.group_info, group)
    root.user_remove(user)
    refused(404, "XMinioAdminNoSuchUser", root.user_info, user)
    expect("InvalidAccessKeyId", app.get_object, Bucket=b, Key="k")


@test
def service_accounts_with_policy_status_and_expiry():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    owner, secret = name("owner"), "owner-secret-123"
    root.user_add(owner, secret)
    root.attach_policy(["readwrite"], user=owner)
    as_owner = minio_admin(owner, secret)
    ak, sk = name("svc").replace("-", ""), "svc-secret-" + uuid.uuid4().hex[:8]
    out = json.loads(as_owner.add_service_account(
        access_key=ak, secret_key=sk, name="ci", description="the CI job",
        policy=rw_policy(b, ("s3:GetObject",)), expiration="2099-01-01T00:00:00Z"))
    assert out["credentials"]["accessKey"] == ak and out["credentials"]["secretKey"] == sk, out
    listed = json.loads(root.list_service_account(owner))["accounts"]
    assert [a["accessKey"] for a in listed] == [ak] and listed[0]["name"] == "ci", listed
    got = json.loads(root.get_service_account(ak))
    assert got["parentUser"] == owner and got["accountStatus"] == "on" and not got["impliedPolicy"], got
    assert "s3:GetObject" in got["policy"] and got["expiration"].startswith("2099-01-01"), got
    svc = client(ak, sk)
    assert svc.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    expect("AccessDenied", svc.put_object, Bucket=b, Key="k", Body=b"x")

    root.update_service_account(access_key=ak, status="off")
    expect("InvalidAccessKeyId", svc.get_object, Bucket=b, Key="k")
    new_sk = "svc-rotated-" + uuid.uuid4().hex[:8]
    root.update_service_account(access_key=ak, status="on", secret_key=new_sk)
    expect("SignatureDoesNotMatch", svc.get_object, Bucket=b, Key="k")
    client(ak, new_sk).get_object(Bucket=b, Key="k")
    # A new policy takes effect at once.
    root.update_service_account(access_key=ak, policy=rw_policy(b))
    client(ak, new_sk).put_object(Bucket=b, Key="by-svc", Body=b"x")

    # An expiry in the past is refused; one that passes refuses the key.
    refused(400, "XMinioAdminInvalidArgument", root.update_service_account,
            access_key=ak, expiration="2001-01-01T00:00:00Z")
    as_owner.delete_service_account(ak)
    refused(404, "XMinioAdminServiceAccountNotFound", root.get_service_account, ak)
    expect("InvalidAccessKeyId", client(ak, new_sk).get_object, Bucket=b, Key="k")

    # Another user's service accounts are not the owner's to read.
    other, other_secret = name("other"), "other-secret-123"
    root.user_add(other, other_secret)
    refused(403, "AccessDenied", minio_admin(other, other_secret).list_service_account, owner)


@test
def bucket_quota_is_enforced_on_writes():
    b = bucket()
    refused(404, "XMinioAdminNoSuchQuotaConfiguration", root.bucket_quota_get, b)
    root.bucket_quota_set(b, 1 << 20)
    q = json.loads(root.bucket_quota_get(b))
    assert q["quota"] == 1 << 20 and q["quotatype"] == "hard", q
    s3.put_object(Bucket=b, Key="a", Body=b"x" * (600 << 10))
    e = expect("XMinioAdminBucketQuotaExceeded", s3.put_object, Bucket=b, Key="b", Body=b"x" * (600 << 10))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    expect("XMinioAdminBucketQuotaExceeded", s3.copy_object, Bucket=b, Key="c", CopySource={"Bucket": b, "Key": "a"})
    root.bucket_quota_clear(b)
    s3.put_object(Bucket=b, Key="b", Body=b"x" * (600 << 10))
    refused(404, "NoSuchBucket", root.bucket_quota_set, "no-such-bucket-" + uuid.uuid4().hex[:6], 10)
    usage = json.loads(root.get_data_usage_info())
    assert usage["bucketsUsageInfo"][b]["objectsCount"] == 2, usage["bucketsUsageInfo"][b]


@test
def identity_configuration_through_config_kv():
    root.config_set("identity_openid", {"config_url": "http://127.0.0.1:1/.well-known/openid-configuration",
                                        "client_id": "minio-app", "claim_name": "groups"})
    text = root.config_get("identity_openid")
    assert "client_id=minio-app" in text and "claim_name=groups" in text, text
    idps = admin_ok("GET", "/admin/v1/idps")
    assert [p["client_id"] for p in idps if p["name"] == "openid"] == ["minio-app"], idps
    root.config_reset("identity_openid")
    assert "minio-app" not in root.config_get("identity_openid")
    refused(400, "XMinioAdminInvalidArgument", root.config_set, "notify_webhook", {"endpoint": "http://x"})


@test
def kms_keys_through_the_admin_api():
    key = name("app-key")
    root.kms_key_create(key)
    status = json.loads(root.kms_key_status(key))
    assert status["key-id"] == key and status["encryption-error"] == "", status
    refused(404, "XMinioKMSKeyNotFound", root.kms_key_status, name("missing"))
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"secret", ServerSideEncryption="aws:kms", SSEKMSKeyId=key)
    assert s3.head_object(Bucket=b, Key="k")["SSEKMSKeyId"].endswith(key)


@test
def bad_input_changes_nothing():
    from sigv4 import signed_request
    user = name("bad")
    # A body sealed with another key than the caller's secret.
    body = encrypt(json.dumps({"status": "enabled", "secretKey": "secret-12345"}).encode(), "not-the-secret")
    status, _, out = signed_request(EP, AK, SK, "PUT", "/minio/admin/v3/add-user", f"accessKey={user}", body=body)
    assert status == 400 and json.loads(out)["Code"] == "XMinioAdminConfigBadJSON", (status, out)
    assert user not in json.loads(root.user_list())
    # Keys that break the rules.
    refused(400, "XMinioAdminInvalidAccessKey", root.user_add, "ab", "secret-12345")
    refused(400, "XMinioAdminInvalidSecretKey", root.user_add, user, "short")
    refused(400, "XMinioAdminInvalidAccessKey", root.user_add, "a/b", "secret-12345")
    # Malformed and hostile policies.
    pol = name("bad-pol")
    for doc in [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", "Condition": {"NoSuchOperator": {"aws:x": "y"}}}]},
                {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]},
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:NoSuchAction", "Resource": "arn:aws:s3:::b/*"}]}]:
        refused(400, "XMinioMalformedPolicy", root.policy_add, pol, policy=doc)
    # Hostile: nesting 100,000 deep.
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write('{"Version": "2012-10-17", "Statement": ' + "[" * 100000 + "]" * 100000 + "}")
        f.flush()
        refused(400, "XMinioMalformedPolicy", root.policy_add, pol, policy_file=f.name)
    # A body over the admin API's 1 MiB is refused in MinIO's terms.
    refused(400, "XMinioAdminInvalidArgument", root.policy_add, pol, policy={"Statement": ["x" * (2 << 20)]})
    refused(404, "XMinioAdminNoSuchPolicy", root.policy_info, pol)
    refused(400, "XMinioAdminInvalidArgument", root.policy_add, "readwrite", policy=rw_policy("x"))
    # A user without admin rights is refused, and the refusal is audited like any other.
    plain, plain_secret = name("plain"), "plain-secret-123"
    root.user_add(plain, plain_secret)
    refused(403, "AccessDenied", minio_admin(plain, plain_secret).user_add, name("x"), "secret-12345")
    refused(403, "AccessDenied", minio_admin(plain, plain_secret).policy_list)
    audit = admin_ok("GET", "/admin/v1/audit", query=f"principal={plain}")
    actions = {r["action"] for r in audit}
    assert {"admin:AddUser", "admin:ListPolicies"} <= actions, audit
    # Unknown commands say so.
    status, _, out = signed_request(EP, AK, SK, "GET", "/minio/admin/v3/heal", "")
    assert status == 501 and json.loads(out)["Code"] == "XMinioAdminNotImplemented", (status, out)


if __name__ == "__main__":
    run(__import__("s3check").ARGS)
