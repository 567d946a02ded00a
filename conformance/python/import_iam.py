"""`fsctl import iam` (issue 21, item 7): an export zip in the shape `mc admin cluster iam
export` writes (iam-assets/policies.json, users.json, groups.json, svcaccts.json, the policy
mappings) is imported; its users and service accounts work with their own keys, its policies
are Cedar that `policy test` explains, and what cannot be translated is listed. A second run
changes nothing; a file that is not MinIO's export fails clearly.

Run as `python import_iam.py ENDPOINT AK SK FSCTL [TEST...]`."""
import json
import os
import subprocess
import tempfile
import uuid
import zipfile

from s3check import AK, ARGS, EP, SK, admin_ok, bucket, client, expect, run, s3, test

FSCTL = ARGS[0]


def fsctl(*args):
    out = subprocess.run([FSCTL, "--endpoint", EP, "--access-key", AK, "--secret-key", SK, "--json", *args],
                         capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout, out.stderr


def export_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(f"iam-assets/{name}", json.dumps(content))


@test
def minio_export_imports_with_keys_policies_and_refusals():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"data")
    sfx = uuid.uuid4().hex[:6]
    user, old, svc = f"appuser{sfx}", f"olduser{sfx}", f"svcak{sfx}"
    read_b = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{b}/*"]}]}
    files = {
        "policies.json": {
            f"app-read-{sfx}": read_b,
            "readwrite": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::*"]}]},
            f"broken-{sfx}": {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]},
        },
        "users.json": {
            user: {"secretKey": "app-secret-123", "status": "enabled"},
            old: {"secretKey": "old-secret-123", "status": "disabled"},
        },
        "groups.json": {
            f"writers-{sfx}": {"version": 1, "status": "enabled", "members": [user], "updatedAt": "2026-01-01T00:00:00Z"},
            f"frozen-{sfx}": {"version": 1, "status": "disabled", "members": [old], "updatedAt": "2026-01-01T00:00:00Z"},
        },
        "user_mappings.json": {user: {"version": 1, "policy": f"app-read-{sfx}", "updatedAt": "2026-01-01T00:00:00Z"}},
        "group_mappings.json": {
            f"writers-{sfx}": {"version": 1, "policy": "writeonly", "updatedAt": "2026-01-01T00:00:00Z"},
            f"frozen-{sfx}": {"version": 1, "policy": "readwrite", "updatedAt": "2026-01-01T00:00:00Z"},
        },
        "svcaccts.json": {
            svc: {"parent": user, "accessKey": svc, "secretKey": "svc-secret-123", "groups": None, "claims": {},
                  "sessionPolicy": None, "status": "on", "name": "ci", "description": "the CI job",
                  "expiration": "1970-01-01T00:00:00Z"},
            f"rootsvc{sfx}": {"parent": "uid=svc,ou=people,dc=example,dc=org", "accessKey": f"rootsvc{sfx}",
                              "secretKey": "root-svc-secret-1", "status": "on"},
        },
        "stsuser_mappings.json": {"uid=bob,ou=people,dc=example,dc=org": {"version": 1, "policy": "readwrite"}},
    }
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "minio-iam-info.zip")
        export_zip(path, files)
        rc, out, err = fsctl("import", "iam", "--from-zip", path)
        assert rc == 0, (rc, out, err)
        r = json.loads(out)
        assert r["policies"]["created"] == [f"app-read-{sfx}"] and r["policies"]["skipped"] == ["readwrite"], r
        assert [x["name"] for x in r["policies"]["refused"]] == [f"broken-{sfx}"] and "Effect" in r["policies"]["refused"][0]["reason"], r
        assert sorted(r["users"]["created"]) == sorted([user, old]), r
        assert r["service_accounts"]["created"] == [svc] and len(r["service_accounts"]["refused"]) == 1, r
        assert len(r["mappings"]["created"]) == 3 and len(r["mappings"]["refused"]) == 1, r
        assert r["refused"] == 3, r

        # The keys work, with the policies mapped to them.
        app = client(user, "app-secret-123")
        assert app.get_object(Bucket=b, Key="k")["Body"].read() == b"data"
        app.put_object(Bucket=b, Key="via-writeonly-group", Body=b"x")
        expect("AccessDenied", app.list_objects_v2, Bucket=b)
        expect("InvalidAccessKeyId", client(old, "old-secret-123").get_object, Bucket=b, Key="k")
        assert client(svc, "svc-secret-123").get_object(Bucket=b, Key="k")["Body"].read() == b"data"
        t = admin_ok("POST", "/admin/v1/policy/test", {"principal": user, "action": "s3:GetObject", "resource": f"{b}/k"})
        assert t["decision"] == "allow", t
        named = [p for p in admin_ok("GET", "/admin/v1/named-policies") if p["name"] == f"app-read-{sfx}"]
        assert named and "permit" in named[0]["cedar_in_force"], named
        # The disabled group's grants do not count.
        admin_ok("POST", f"/admin/v1/groups/frozen-{sfx}/enable")
        admin_ok("POST", f"/admin/v1/users/{old}/enable")
        client(old, "old-secret-123").put_object(Bucket=b, Key="now-enabled", Body=b"x")
        admin_ok("POST", f"/admin/v1/groups/frozen-{sfx}/disable")
        expect("AccessDenied", client(old, "old-secret-123").put_object, Bucket=b, Key="now-disabled", Body=b"x")

        # fsctl manages named policies too: create, attach by name, replace, remove.
        pfile = os.path.join(d, "list.json")
        with open(pfile, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{b}"]}]}, f)
        rc, out, err = fsctl("policy", "create", f"lister-{sfx}", pfile)
        assert rc == 0, (rc, out, err)
        rc, out, err = fsctl("policy", "attach", "--user", user, "--named", f"lister-{sfx}")
        assert rc == 0 and json.loads(out)["policy_name"] == f"lister-{sfx}", (rc, out, err)
        assert [o["Key"] for o in app.list_objects_v2(Bucket=b)["Contents"]][0] == "k"
        rc, out, err = fsctl("policy", "rm", f"lister-{sfx}")
        assert rc == 0, (rc, out, err)
        expect("AccessDenied", app.list_objects_v2, Bucket=b)
        with open(pfile, "w") as f:
            json.dump({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:Nope"], "Resource": ["*"]}]}, f)
        rc, out, err = fsctl("policy", "create", f"bad-{sfx}", pfile)
        assert rc != 0 and "MalformedPolicy" in err, (rc, out, err)

        # A second run changes nothing.
        rc, out, err = fsctl("import", "iam", "--from-zip", path)
        r2 = json.loads(out)
        assert rc == 0 and r2["users"]["created"] == [] and sorted(r2["users"]["skipped"]) == sorted([user, old]), r2
        assert r2["mappings"]["created"] == [] and r2["service_accounts"]["created"] == [], r2

        # Not an export: a clear error, nothing created.
        junk = os.path.join(d, "junk.zip")
        with open(junk, "wb") as f:
            f.write(b"not a zip at all")
        rc, out, err = fsctl("import", "iam", "--from-zip", junk)
        assert rc != 0 and "not a zip" in err, (rc, out, err)
        bad = os.path.join(d, "bad.zip")
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("iam-assets/users.json", "{\"x\": 42")
        rc, out, err = fsctl("import", "iam", "--from-zip", bad)
        assert rc != 0 and "users.json" in err, (rc, out, err)


if __name__ == "__main__":
    run(ARGS[1:])
