"""AWS's IAM query API (issue 21, item 2), driven by boto3's IAM client and `aws iam
--endpoint-url`: users, access keys, inline and managed policies, groups, with AWS's error
codes; what is made is fsgate underneath (keys that work on S3, Cedar that `policy test`
explains).

Run as `python aws_iam.py ENDPOINT ROOT_AK ROOT_SK [TEST...]`."""
import json
import os
import subprocess
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from s3check import AK, EP, SK, admin_ok, bucket, client, expect, run, s3, test


def iam_client(ak=AK, sk=SK):
    return boto3.client("iam", endpoint_url=EP, aws_access_key_id=ak, aws_secret_access_key=sk,
                        region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


iam = iam_client()


def name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def refused(code, status, fn, *args, **kw):
    e = expect(code, fn, *args, **kw)
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
    assert e.response["Error"]["Message"], e.response
    return e


def doc(b, actions=("s3:GetObject", "s3:PutObject", "s3:ListBucket")):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": list(actions),
        "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}]})


@test
def users_keys_and_inline_policies_with_boto3():
    b, other = bucket(), bucket()
    user = name("iam-user")
    out = iam.create_user(UserName=user)["User"]
    assert out["UserName"] == user and out["Arn"].endswith(f":user/{user}"), out
    refused("EntityAlreadyExists", 409, iam.create_user, UserName=user)
    assert iam.get_user(UserName=user)["User"]["UserName"] == user
    assert user in [u["UserName"] for u in iam.list_users()["Users"]]
    refused("NoSuchEntity", 404, iam.get_user, UserName=name("nobody"))
    refused("ValidationError", 400, iam.create_user, UserName="bad/name")

    key = iam.create_access_key(UserName=user)["AccessKey"]
    assert key["Status"] == "Active" and len(key["SecretAccessKey"]) >= 16, key
    iam.create_access_key(UserName=user)
    refused("LimitExceeded", 409, iam.create_access_key, UserName=user)
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert len(keys) == 2 and key["AccessKeyId"] in [k["AccessKeyId"] for k in keys], keys
    extra = [k["AccessKeyId"] for k in keys if k["AccessKeyId"] != key["AccessKeyId"]][0]
    iam.delete_access_key(UserName=user, AccessKeyId=extra)

    app = client(key["AccessKeyId"], key["SecretAccessKey"])
    expect("AccessDenied", app.put_object, Bucket=b, Key="k", Body=b"x")
    iam.put_user_policy(UserName=user, PolicyName="rw", PolicyDocument=doc(b))
    app.put_object(Bucket=b, Key="k", Body=b"x")
    expect("AccessDenied", app.put_object, Bucket=other, Key="k", Body=b"x")
    got = iam.get_user_policy(UserName=user, PolicyName="rw")
    assert got["PolicyDocument"]["Statement"][0]["Resource"] == [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"], got
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["rw"]
    t = admin_ok("POST", "/admin/v1/policy/test", {"principal": user, "action": "s3:PutObject", "resource": f"{b}/k"})
    assert t["decision"] == "allow" and t["policies"] == [f"att-iam-inline:user:{user}:rw"], t
    refused("MalformedPolicyDocument", 400, iam.put_user_policy, UserName=user, PolicyName="bad",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::x/*","Condition":{"Bogus":{"a":"b"}}}]}')
    refused("MalformedPolicyDocument", 400, iam.put_user_policy, UserName=user, PolicyName="bad", PolicyDocument="not json")
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["rw"]

    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"][0]["Status"] == "Inactive"
    expect("InvalidAccessKeyId", app.get_object, Bucket=b, Key="k")
    iam.update_access_key(UserName=user, AccessKeyId=key["AccessKeyId"], Status="Active")
    app.get_object(Bucket=b, Key="k")

    # A key brought from elsewhere (fsgate's extension: AccessKeyId and SecretAccessKey).
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    from sigv4 import signed_request
    form = f"Action=CreateAccessKey&Version=2010-05-08&UserName={user}&AccessKeyId=BROUGHT{uuid.uuid4().hex[:12].upper()}&SecretAccessKey=brought-secret-123"
    status, _, out = signed_request(EP, AK, SK, "POST", "/", body=form.encode(), region="us-east-1", service="iam",
                                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 200 and b"BROUGHT" in out, (status, out)
    brought = out.decode().split("<AccessKeyId>")[1].split("<")[0]
    client(brought, "brought-secret-123").get_object(Bucket=b, Key="k")
    status, _, out = signed_request(EP, AK, SK, "POST", "/", body=(form.replace("brought-secret-123", "short")).encode(),
                                    region="us-east-1", service="iam", headers={"content-type": "application/x-www-form-urlencoded"})
    assert status == 400, (status, out)
    key = {"AccessKeyId": brought}
    refused("DeleteConflict", 409, iam.delete_user, UserName=user)
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    refused("DeleteConflict", 409, iam.delete_user, UserName=user)
    iam.delete_user_policy(UserName=user, PolicyName="rw")
    refused("NoSuchEntity", 404, iam.delete_user_policy, UserName=user, PolicyName="rw")
    iam.delete_user(UserName=user)
    refused("NoSuchEntity", 404, iam.get_user, UserName=user)


@test
def managed_policies_and_groups():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    pol = name("reader")
    created = iam.create_policy(PolicyName=pol, PolicyDocument=doc(b, ("s3:GetObject",)))["Policy"]
    arn = created["Arn"]
    assert arn.endswith(f":policy/{pol}") and created["AttachmentCount"] == 0, created
    refused("EntityAlreadyExists", 409, iam.create_policy, PolicyName=pol, PolicyDocument=doc(b))
    refused("MalformedPolicyDocument", 400, iam.create_policy, PolicyName=name("bad"),
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Perhaps","Action":"s3:*","Resource":"*"}]}')
    assert pol in [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]

    user, group = name("member"), name("team")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    app = client(key["AccessKeyId"], key["SecretAccessKey"])
    iam.create_group(GroupName=group)
    refused("EntityAlreadyExists", 409, iam.create_group, GroupName=group)
    iam.add_user_to_group(GroupName=group, UserName=user)
    g = iam.get_group(GroupName=group)
    assert [u["UserName"] for u in g["Users"]] == [user], g
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName=user)["Groups"]] == [group]
    expect("AccessDenied", app.get_object, Bucket=b, Key="k")
    iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    assert app.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
    expect("AccessDenied", app.put_object, Bucket=b, Key="k", Body=b"x")
    att = iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]
    assert att == [{"PolicyName": pol, "PolicyArn": arn}], att
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    refused("DeleteConflict", 409, iam.delete_policy, PolicyArn=arn)

    # AWS's managed S3 policies are fsgate's roles.
    iam.attach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    app.put_object(Bucket=b, Key="k2", Body=b"x")
    names = [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]]
    assert names == ["AmazonS3FullAccess"], names
    iam.detach_user_policy(UserName=user, PolicyArn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    refused("NoSuchEntity", 404, iam.detach_user_policy, UserName=user, PolicyArn="arn:aws:iam::aws:policy/AmazonS3FullAccess")
    expect("AccessDenied", app.put_object, Bucket=b, Key="k3", Body=b"x")

    # Inline group policies.
    iam.put_group_policy(GroupName=group, PolicyName="w", PolicyDocument=doc(b, ("s3:PutObject",)))
    app.put_object(Bucket=b, Key="k3", Body=b"x")
    assert iam.list_group_policies(GroupName=group)["PolicyNames"] == ["w"]
    iam.delete_group_policy(GroupName=group, PolicyName="w")

    refused("DeleteConflict", 409, iam.delete_group, GroupName=group)
    iam.remove_user_from_group(GroupName=group, UserName=user)
    expect("AccessDenied", app.get_object, Bucket=b, Key="k")
    refused("DeleteConflict", 409, iam.delete_group, GroupName=group)
    iam.detach_group_policy(GroupName=group, PolicyArn=arn)
    iam.delete_group(GroupName=group)
    refused("NoSuchEntity", 404, iam.get_group, GroupName=group)
    iam.delete_policy(PolicyArn=arn)
    refused("NoSuchEntity", 404, iam.get_policy, PolicyArn=arn)


@test
def callers_without_the_right_are_refused():
    user = name("plain")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    as_user = iam_client(key["AccessKeyId"], key["SecretAccessKey"])
    refused("AccessDenied", 403, as_user.create_user, UserName=name("x"))
    refused("AccessDenied", 403, as_user.list_users)
    refused("InvalidAction", 400, iam._make_api_call, "ListRoles", {})
    # Signatures for the iam scope are verified: a wrong secret, a changed body, an old date.
    from sigv4 import signed_request
    import datetime
    form = b"Action=ListUsers&Version=2010-05-08"
    hdrs = {"content-type": "application/x-www-form-urlencoded"}
    status, _, out = signed_request(EP, AK, SK + "x", "POST", "/", body=form, service="iam", headers=hdrs)
    assert status == 403 and b"SignatureDoesNotMatch" in out, (status, out)
    status, _, out = signed_request(EP, AK, SK, "POST", "/", body=form, service="iam", headers=hdrs,
                                    payload_hash=__import__("hashlib").sha256(b"Action=DeleteUser").hexdigest())
    assert status in (400, 403) and b"<Users>" not in out, (status, out)
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    status, _, out = signed_request(EP, AK, SK, "POST", "/", body=form, service="iam", headers=hdrs, when=old)
    assert status == 403 and b"SignatureDoesNotMatch" in out, (status, out)
    status, _, out = signed_request(EP, "NOSUCHKEY", SK, "POST", "/", body=form, service="iam", headers=hdrs)
    assert status == 403 and b"InvalidClientTokenId" in out, (status, out)
    status, _, out = signed_request(EP, AK, SK, "POST", "/", body=form, service="iam", headers=hdrs)
    assert status == 200 and b"<ListUsersResult>" in out, (status, out)
    # Encoded variants: the action is decoded once, and decided as what it executes.
    for enc in [b"Action=List%55sers&Version=2010-05-08", b"Version=2010-05-08&Action=%4C%69stUsers"]:
        status, _, out = signed_request(EP, key["AccessKeyId"], key["SecretAccessKey"], "POST", "/", body=enc,
                                        service="iam", headers=hdrs)
        assert status == 403 and b"AccessDenied" in out and b"iam:ListUsers" in out, (status, out)
        status, _, out = signed_request(EP, AK, SK, "POST", "/", body=enc, service="iam", headers=hdrs)
        assert status == 200 and b"<ListUsersResult>" in out, (status, out)
    # A query Action and a body Action: the one decided is the one executed (the first).
    status, _, out = signed_request(EP, key["AccessKeyId"], key["SecretAccessKey"], "POST", "/",
                                    query="Action=ListUsers", body=b"Action=GetUser&Version=2010-05-08",
                                    service="iam", headers=hdrs)
    assert status == 403 and b"iam:ListUsers" in out, (status, out)


@test
def aws_cli_drives_it_too():
    aws = os.environ.get("FSGATE_AWS", "/usr/bin/aws")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    user = name("cli-user")

    def cli(*args):
        out = subprocess.run([aws, "--endpoint-url", EP, "--output", "json", "iam", *args], env=env,
                             capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout, out.stderr

    rc, out, err = cli("create-user", "--user-name", user)
    assert rc == 0 and json.loads(out)["User"]["UserName"] == user, (rc, out, err)
    rc, out, err = cli("create-access-key", "--user-name", user)
    assert rc == 0 and json.loads(out)["AccessKey"]["UserName"] == user, (rc, out, err)
    rc, out, err = cli("list-users")
    assert rc == 0 and user in [u["UserName"] for u in json.loads(out)["Users"]], (rc, out, err)
    rc, out, err = cli("get-user", "--user-name", name("nobody"))
    assert rc != 0 and "NoSuchEntity" in err, (rc, out, err)


if __name__ == "__main__":
    run(__import__("s3check").ARGS)
