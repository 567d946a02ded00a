"""Identity and access (issue 5), driven by boto3 and raw HTTP: STS AssumeRole with session
policies, service accounts, revocation (presigned URLs included), AssumeRoleWithWebIdentity
against a local OpenID Connect issuer (this script runs it: discovery, JWKS, RS256 and ES256
keys, rotation), the admin API with bearer tokens, and AssumeRoleWithLDAPIdentity against a
real OpenLDAP (`slapd`) this script starts on a free port.

Run as `python identity.py ENDPOINT ROOT_AK ROOT_SK [TEST...]`."""
import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import jwt
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from s3check import AK, EP, SK, admin, admin_ok, bucket, client, expect, new_user, run, s3, test
from sigv4 import signed_request


def sts_client(ak=None, sk=None, token=None):
    kw = {}
    if ak:
        kw = {"aws_access_key_id": ak, "aws_secret_access_key": sk, "aws_session_token": token}
    else:
        kw = {"aws_access_key_id": "unused", "aws_secret_access_key": "unused"}
    return boto3.client("sts", endpoint_url=EP, region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1}, parameter_validation=False), **kw)


ROLE = "arn:aws:iam::fsgate:role/any"


def session_s3(creds):
    return client(creds["AccessKeyId"], creds["SecretAccessKey"], token=creds["SessionToken"])


def audit(query):
    return admin_ok("GET", "/admin/v1/audit", query=query)


@test
def assume_role_sessions():
    b = bucket()
    other = bucket()
    s3.put_object(Bucket=other, Key="x", Body=b"x")
    name, ak, sk = new_user("alice", "readwrite", b)
    sts = sts_client(ak, sk)
    r = sts.assume_role(RoleArn=ROLE, RoleSessionName="work", DurationSeconds=900)
    creds = r["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"], creds
    left = (creds["Expiration"] - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    assert 880 < left <= 900, left
    assert name in r["AssumedRoleUser"]["Arn"], r["AssumedRoleUser"]
    sess = session_s3(creds)
    sess.put_object(Bucket=b, Key="k", Body=b"from a session")
    assert sess.get_object(Bucket=b, Key="k")["Body"].read() == b"from a session"
    expect("AccessDenied", sess.get_object, Bucket=other, Key="x")
    # The token is part of the credentials: missing or wrong, the request is refused.
    expect("InvalidToken", client(creds["AccessKeyId"], creds["SecretAccessKey"]).get_object, Bucket=b, Key="k")
    expect("InvalidToken", client(creds["AccessKeyId"], creds["SecretAccessKey"], token="forged" + creds["SessionToken"][6:]).get_object, Bucket=b, Key="k")
    # A session policy only narrows: read-only here, and granting everything adds nothing.
    ro = sts.assume_role(RoleArn=ROLE, RoleSessionName="ro",
                         Policy='permit(principal, action in [Action::"s3:GetObject"], resource);')["Credentials"]
    ro_s3 = session_s3(ro)
    assert ro_s3.get_object(Bucket=b, Key="k")["Body"].read() == b"from a session"
    expect("AccessDenied", ro_s3.put_object, Bucket=b, Key="k2", Body=b"no")
    wide = session_s3(sts.assume_role(RoleArn=ROLE, RoleSessionName="wide",
                                      Policy="permit(principal, action, resource);")["Credentials"])
    expect("AccessDenied", wide.get_object, Bucket=other, Key="x")
    expect("MalformedPolicyDocument", sts.assume_role, RoleArn=ROLE, RoleSessionName="bad",
               Policy="permit(principal, action == Action::\"s3:NoSuchAction\", resource);")
    expect("MalformedPolicyDocument", sts.assume_role, RoleArn=ROLE, RoleSessionName="json",
               Policy='{"Version": "2012-10-17", "Statement": []}')
    expect("ValidationError", sts.assume_role, RoleArn=ROLE, RoleSessionName="short", DurationSeconds=100)
    expect("ValidationError", sts.assume_role, RoleArn=ROLE, RoleSessionName="long", DurationSeconds=43201)
    # Temporary credentials cannot mint more; unsigned AssumeRole is refused.
    expect("AccessDenied", sts_client(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]).assume_role,
               RoleArn=ROLE, RoleSessionName="chain")
    st, _, body = raw_post("Action=AssumeRole&RoleArn=x&RoleSessionName=y&Version=2011-06-15")
    assert st == 403 and b"MissingAuthenticationToken" in body, (st, body)
    # Session requests are audited as the user, with the session's key.
    recs = audit(f"principal={name}&bucket={b}")
    assert any(r["access_key"] == creds["AccessKeyId"] and r["action"] == "s3:PutObject" for r in recs), recs
    assert any(r["action"] == "sts:AssumeRole" and r["decision"] == "allow" for r in audit(f"principal={name}")), "no sts audit"
    # Deleting the key that made the session ends the session.
    admin_ok("DELETE", f"/admin/v1/keys/{ak}")
    expect("InvalidAccessKeyId", sess.get_object, Bucket=b, Key="k")


@test
def disabling_a_user_cuts_its_sessions():
    b = bucket()
    name, ak, sk = new_user("dora", "readonly", b)
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    sess = session_s3(sts_client(ak, sk).assume_role(RoleArn=ROLE, RoleSessionName="s")["Credentials"])
    assert sess.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    admin_ok("POST", f"/admin/v1/users/{name}/disable")
    expect("InvalidAccessKeyId", sess.get_object, Bucket=b, Key="k")
    admin_ok("POST", f"/admin/v1/users/{name}/enable")
    assert sess.get_object(Bucket=b, Key="k")["Body"].read() == b"v"


@test
def service_accounts():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    alice, ak, sk = new_user("sa-alice", "readwrite", b)
    bob, bak, bsk = new_user("sa-bob", "readwrite", b)
    # A user creates service accounts for itself; a policy narrows one to reads.
    ro = admin_ok("POST", "/admin/v1/svcaccts",
                  {"policy": 'permit(principal, action in [Action::"s3:GetObject", Action::"s3:HeadObject"], resource);',
                   "description": "backup reader"}, ak=ak, sk=sk)
    full = admin_ok("POST", "/admin/v1/svcaccts", {}, ak=ak, sk=sk)
    assert ro["owner"] == alice and ro["secret_key"], ro
    mine = admin_ok("GET", "/admin/v1/svcaccts", ak=ak, sk=sk)
    assert sorted(x["access_key"] for x in mine) == sorted([ro["access_key"], full["access_key"]]), mine
    assert "secret_key" not in mine[0]
    assert admin_ok("GET", "/admin/v1/svcaccts", ak=bak, sk=bsk) == []
    # Not for someone else, not someone else's, not with a broken policy.
    assert admin("POST", "/admin/v1/svcaccts", {"user": alice}, ak=bak, sk=bsk)[0] == 403
    assert admin("GET", "/admin/v1/svcaccts", query=f"user={alice}", ak=bak, sk=bsk)[0] == 403
    assert admin("DELETE", f"/admin/v1/svcaccts/{ro['access_key']}", ak=bak, sk=bsk)[0] == 403
    assert admin("POST", "/admin/v1/svcaccts", {"policy": "permit(principal, action, resource"}, ak=ak, sk=sk)[0] == 400
    ro_s3 = client(ro["access_key"], ro["secret_key"])
    assert ro_s3.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    expect("AccessDenied", ro_s3.put_object, Bucket=b, Key="n", Body=b"n")
    client(full["access_key"], full["secret_key"]).put_object(Bucket=b, Key="n", Body=b"n")
    admin_ok("DELETE", f"/admin/v1/svcaccts/{ro['access_key']}", ak=ak, sk=sk)
    expect("InvalidAccessKeyId", ro_s3.get_object, Bucket=b, Key="k")
    assert [x["access_key"] for x in admin_ok("GET", "/admin/v1/svcaccts", query=f"user={alice}")] == [full["access_key"]]
    # Disabling the owner stops its service accounts.
    admin_ok("POST", f"/admin/v1/users/{alice}/disable")
    expect("InvalidAccessKeyId", client(full["access_key"], full["secret_key"]).get_object, Bucket=b, Key="k")


@test
def service_account_sessions_keep_the_limit():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"v")
    _, ak, sk = new_user("sa-sess", "readwrite", b)
    sa = admin_ok("POST", "/admin/v1/svcaccts", {"policy": 'permit(principal, action, resource) when { action != Action::"s3:PutObject" };'}, ak=ak, sk=sk)
    sess = session_s3(sts_client(sa["access_key"], sa["secret_key"]).assume_role(RoleArn=ROLE, RoleSessionName="s")["Credentials"])
    assert sess.get_object(Bucket=b, Key="k")["Body"].read() == b"v"
    expect("AccessDenied", sess.put_object, Bucket=b, Key="n", Body=b"n")
    admin_ok("DELETE", f"/admin/v1/svcaccts/{sa['access_key']}")
    expect("InvalidAccessKeyId", sess.get_object, Bucket=b, Key="k")


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@test
def revocation_reaches_presigned_urls_and_sessions():
    b = bucket()
    s3.put_object(Bucket=b, Key="k", Body=b"secret")
    alice, ak, sk = new_user("rv-alice", "readonly", b)
    bob, bak, bsk = new_user("rv-bob", "readonly", b)
    v4 = {"signature_version": "s3v4"}
    old_url = client(ak, sk, **v4).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=3600)
    old_v2 = client(ak, sk).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=3600)
    assert "Signature=" in old_v2 and "X-Amz-Date" not in old_v2, old_v2
    bob_url = client(bak, bsk).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=3600)
    sess = session_s3(sts_client(ak, sk).assume_role(RoleArn=ROLE, RoleSessionName="s")["Credentials"])
    assert fetch(old_url) == (200, b"secret")
    assert fetch(old_v2) == (200, b"secret")
    assert sess.get_object(Bucket=b, Key="k")["Body"].read() == b"secret"
    out = admin_ok("POST", f"/admin/v1/users/{alice}/revoke", {"before": "now"})
    assert out["user"] == alice, out
    for url in (old_url, old_v2):
        status, body = fetch(url)
        assert status == 403 and b"AccessDenied" in body and b"revoked" in body, (status, body)
    expect("AccessDenied", sess.get_object, Bucket=b, Key="k")
    # Signatures made after the revocation time work (X-Amz-Date has whole seconds).
    time.sleep(1.1)
    assert client(ak, sk).get_object(Bucket=b, Key="k")["Body"].read() == b"secret"
    new_url = client(ak, sk, **v4).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=3600)
    assert fetch(new_url) == (200, b"secret")
    # A SigV2 URL names no signing time: one that could predate the revocation (it expires
    # within 7 days of it) is refused; SigV2 URLs may not live longer than 7 days.
    new_v2 = client(ak, sk).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=3600)
    assert fetch(new_v2)[0] == 403
    assert fetch(client(bak, bsk).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=8 * 86400))[0] == 403
    assert fetch(bob_url) == (200, b"secret")
    # A presigned URL dated in the future is not valid yet (it could outlive a revocation).
    future = client(ak, sk, **v4).generate_presigned_url("get_object", Params={"Bucket": b, "Key": "k"}, ExpiresIn=60)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2)).strftime("%Y%m%dT%H%M%SZ")
    status, _ = fetch(future.replace(stamp, later))
    assert status == 403, status
    recs = audit("principal=" + AK)
    assert any(r["action"] == "admin:RevokeKeys" and r["decision"] == "allow" for r in recs)
    # Only admins revoke.
    assert admin("POST", f"/admin/v1/users/{bob}/revoke", {"before": "now"}, ak=ak, sk=sk)[0] == 403


# ---------------------------------------------------------------- OpenID Connect issuer


class Issuer:
    """A local OpenID Connect issuer: discovery, JWKS (counting fetches), signing keys."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.published = [("rsa1", self.rsa, "RS256"), ("ec1", self.ec, "ES256")]
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/realms/test/.well-known/openid-configuration":
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + "/protocol/openid-connect/certs"}
                elif self.path == "/realms/test/protocol/openid-connect/certs":
                    issuer.jwks_fetches += 1
                    body = {"keys": [issuer.jwk(kid, k, alg) for kid, k, alg in issuer.published]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/realms/test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def jwk(kid, key, alg):
        algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
        d = algo.to_jwk(key.public_key(), as_dict=True)
        d.update({"kid": kid, "use": "sig", "alg": alg})
        return d

    def token(self, user, groups=(), kid="rsa1", key=None, alg="RS256", aud="fsgate", iss=None,
              exp_in=600, nbf_in=None, **extra):
        now = int(time.time())
        claims = {"iss": iss or self.url, "sub": "sub-" + user, "aud": aud, "iat": now,
                  "exp": now + exp_in, "preferred_username": user, "groups": list(groups), **extra}
        claims = {k: v for k, v in claims.items() if v is not None}
        if nbf_in is not None:
            claims["nbf"] = now + nbf_in
        key = key or (self.ec if alg == "ES256" else self.rsa)
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


ISSUER = None


def issuer():
    """The issuer, configured as identity provider `kc` (once per run)."""
    global ISSUER
    if ISSUER is None:
        ISSUER = Issuer()
        admin_ok("PUT", "/admin/v1/idps/kc", {"type": "oidc", "issuer": ISSUER.url, "client_id": "fsgate",
                                               "tag_claims": ["department"]})
    return ISSUER


def b64(d):
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def web_identity(token, **kw):
    return sts_client().assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="web", WebIdentityToken=token, **kw)


@test
def web_identity_sessions():
    iss = issuer()
    b = bucket()
    s3.put_object(Bucket=b, Key="report", Body=b"q3")
    admin_ok("POST", "/admin/v1/policies", {"group": "analysts", "role": "readonly", "bucket": b})
    # A principal tag from a claim decides writes.
    admin_ok("POST", "/admin/v1/policies", {"group": "analysts", "cedar":
             f'permit(principal, action == Action::"s3:PutObject", resource in Bucket::"{b}") '
             'when { principal.hasTag("department") && principal.getTag("department") == "finance" };'})
    r = web_identity(iss.token("carol", ["/analysts"], department="finance"), DurationSeconds=900)
    assert r["SubjectFromWebIdentityToken"] == "sub-carol" and r["Audience"] == "fsgate", r
    carol = session_s3(r["Credentials"])
    assert carol.get_object(Bucket=b, Key="report")["Body"].read() == b"q3"
    carol.put_object(Bucket=b, Key="by-carol", Body=b"c")
    dave = session_s3(web_identity(iss.token("dave", ["analysts"], alg="ES256", kid="ec1", department="sales"))["Credentials"])
    assert dave.get_object(Bucket=b, Key="report")["Body"].read() == b"q3"
    expect("AccessDenied", dave.put_object, Bucket=b, Key="by-dave", Body=b"d")
    nobody = session_s3(web_identity(iss.token("erin"))["Credentials"])
    expect("AccessDenied", nobody.get_object, Bucket=b, Key="report")
    # Sessions are audited as the federated user, named PROVIDER:USER.
    assert any(x["action"] == "s3:PutObject" for x in audit(f"principal=kc:carol&bucket={b}"))
    # boto3's own web-identity credential provider, from the standard environment variables.
    with tempfile.NamedTemporaryFile("w", suffix=".jwt") as tf:
        tf.write(iss.token("carol", ["analysts"], department="finance"))
        tf.flush()
        saved = dict(os.environ)
        try:
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                os.environ.pop(k, None)
            os.environ.update({"AWS_ROLE_ARN": ROLE, "AWS_WEB_IDENTITY_TOKEN_FILE": tf.name,
                               "AWS_ROLE_SESSION_NAME": "env", "AWS_ENDPOINT_URL_STS": EP,
                               "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
            env_s3 = boto3.session.Session(region_name="us-east-1").client(
                "s3", endpoint_url=EP, config=Config(s3={"addressing_style": "path"}))
            assert env_s3.get_object(Bucket=b, Key="report")["Body"].read() == b"q3"
        finally:
            os.environ.clear()
            os.environ.update(saved)
    # Within the 60 s clock-skew allowance an expired token still passes.
    web_identity(iss.token("carol", ["analysts"], exp_in=-30))
    # Revoking a federated user ends its sessions, and refuses the tokens issued before.
    old_token = iss.token("carol", ["analysts"], department="finance")
    time.sleep(1.1)
    admin_ok("POST", "/admin/v1/users/kc:carol/revoke", {"before": "now"})
    expect("AccessDenied", carol.get_object, Bucket=b, Key="report")
    # Regression: a JWT issued before the revocation still got new sessions.
    expect("AccessDenied", web_identity, old_token)
    time.sleep(1.1)
    web_identity(iss.token("carol", ["analysts"], department="finance"))
    # A token without iat cannot show it came after the revocation: refused.
    no_iat = iss.token("carol", ["analysts"], iat=None)
    expect("AccessDenied", web_identity, no_iat)


@test
def federated_names_never_take_local_grants():
    """Regression: an IdP user whose preferred_username equals a local admin's name got that
    admin's grants. Federated principals are PROVIDER:USER."""
    iss = issuer()
    b = bucket()
    s3.put_object(Bucket=b, Key="private", Body=b"p")
    local, _, _ = new_user("boss", "readwrite", b)
    admin_ok("POST", "/admin/v1/policies", {"user": local, "role": "admin"})
    creds = web_identity(iss.token(local))["Credentials"]
    expect("AccessDenied", session_s3(creds).get_object, Bucket=b, Key="private")
    assert get_users(iss.token(local))[0] == 403, "a federated namesake got the local admin's rights"
    # A grant to the federated name reaches it.
    admin_ok("POST", "/admin/v1/policies", {"user": f"kc:{local}", "role": "readonly", "bucket": b})
    creds = web_identity(iss.token(local))["Credentials"]
    assert session_s3(creds).get_object(Bucket=b, Key="private")["Body"].read() == b"p"


@test
def bearer_tokens_issued_before_a_revocation_are_refused():
    """Regression: after a revocation, a JWT issued before still worked as an admin Bearer
    token."""
    iss = issuer()
    admin_ok("POST", "/admin/v1/policies", {"group": "ops2", "role": "admin"})
    old = iss.token("rita", ["ops2"])
    assert get_users(old)[0] == 200
    time.sleep(1.1)
    admin_ok("POST", "/admin/v1/users/kc:rita/revoke", {"before": "now"})
    assert get_users(old)[0] == 403
    time.sleep(1.1)
    assert get_users(iss.token("rita", ["ops2"]))[0] == 200


@test
def unreachable_provider_details_stay_in_the_log():
    """Regression: internal error text (an IdP fetch failure) reached unauthenticated STS
    clients."""
    iss = issuer()
    dead = free_port()
    admin_ok("PUT", "/admin/v1/idps/gone", {"type": "oidc", "issuer": f"http://127.0.0.1:{dead}/realms/gone",
                                            "client_id": "fsgate"})
    try:
        token = iss.token("x", iss=f"http://127.0.0.1:{dead}/realms/gone")
        e = expect("IDPCommunicationError", web_identity, token)
        msg = e.response["Error"]["Message"]
        assert "127.0.0.1" not in msg and "refused" not in msg.lower(), msg
    finally:
        admin_ok("DELETE", "/admin/v1/idps/gone")


@test
def web_identity_refuses_bad_tokens():
    iss = issuer()
    bad = {
        "expired": iss.token("x", exp_in=-3600),
        "not yet valid": iss.token("x", nbf_in=3600),
        "wrong audience": iss.token("x", aud="someone-else"),
        "unknown issuer": iss.token("x", iss="http://127.0.0.1:1/realms/other"),
        "bad signature": iss.token("x", key=iss.rogue),
        "alg none": b64({"alg": "none", "typ": "JWT", "kid": "rsa1"}) + "." + b64(
            {"iss": iss.url, "aud": "fsgate", "exp": int(time.time()) + 600, "preferred_username": "x"}) + ".",
        "not a jwt": "garbage",
        "bad user name": iss.token("x y/z"),
    }
    header = b64({"alg": "HS256", "typ": "JWT", "kid": "rsa1"})
    payload = b64({"iss": iss.url, "aud": "fsgate", "exp": int(time.time()) + 600, "preferred_username": "x"})
    mac = hmac.new(json.dumps(iss.jwk("rsa1", iss.rsa, "RS256")).encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    bad["hmac with the public key"] = f"{header}.{payload}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    for what, token in bad.items():
        try:
            web_identity(token)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidIdentityToken", (what, e.response["Error"])
            continue
        raise AssertionError(f"{what}: accepted")
    # An unknown key id triggers exactly one refetch of the keys, then is refused.
    time.sleep(1.2)
    before = iss.jwks_fetches
    expect("InvalidIdentityToken", web_identity, iss.token("x", kid="ghost", key=iss.rogue))
    assert iss.jwks_fetches == before + 1, (before, iss.jwks_fetches)
    # Rotation: a token signed by a newly published key is accepted after one refetch.
    iss.published.append(("rsa2", iss.rotated, "RS256"))
    time.sleep(1.2)
    web_identity(iss.token("x", kid="rsa2", key=iss.rotated))
    assert iss.jwks_fetches == before + 2
    # Cached keys: no refetch for known ones.
    web_identity(iss.token("x"))
    assert iss.jwks_fetches == before + 2
    expect("ValidationError", web_identity, iss.token("x"), DurationSeconds=60)


def get_users(token):
    """GET /admin/v1/users with `Authorization: Bearer TOKEN`: (status, body)."""
    host = EP.split("//", 1)[1]
    req = urllib.request.Request(f"http://{host}/admin/v1/users", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@test
def admin_api_accepts_bearer_tokens():
    iss = issuer()
    admin_ok("POST", "/admin/v1/policies", {"group": "ops", "role": "admin"})

    status, users = get_users(iss.token("opal", ["ops"]))
    assert status == 200 and isinstance(users, list), (status, users)
    assert get_users(iss.token("opal", ["guests"]))[0] == 403
    assert get_users(iss.token("opal", ["ops"], exp_in=-3600))[0] == 403
    assert get_users(iss.token("opal", ["ops"], key=iss.rogue))[0] == 403
    assert any(r["action"] == "admin:ListUsers" and r["decision"] == "allow" for r in audit("principal=kc:opal"))


# ---------------------------------------------------------------- OpenLDAP

LDIF = """dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups

dn: cn=fsgate-svc,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: fsgate-svc
userPassword: svc-secret

dn: uid=lena,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: lena
cn: Lena
sn: L
userPassword: lena-pw

dn: uid=max,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: max
cn: Max
sn: M
userPassword: max-pw

dn: cn=devs,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: devs
member: uid=lena,ou=people,dc=example,dc=org

dn: cn=auditors,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: auditors
member: uid=lena,ou=people,dc=example,dc=org
member: uid=max,ou=people,dc=example,dc=org
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(d):
    """A self-signed certificate for 127.0.0.1, written as PEM files in d."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    with open(f"{d}/cert.pem", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(f"{d}/key.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))


def start_slapd():
    d = tempfile.mkdtemp(prefix="fsgate-slapd-")
    os.makedirs(f"{d}/db")
    self_signed(d)
    conf = f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {d}/slapd.pid
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory {d}/db
access to attrs=userPassword by anonymous auth by self read by * none
access to * by * read
"""
    with open(f"{d}/slapd.conf", "w") as f:
        f.write(conf)
    with open(f"{d}/data.ldif", "w") as f:
        f.write(LDIF)
    subprocess.run(["/usr/sbin/slapadd", "-f", f"{d}/slapd.conf", "-l", f"{d}/data.ldif"], check=True,
                   capture_output=True)
    port, tls_port = free_port(), free_port()
    proc = subprocess.Popen(["/usr/sbin/slapd", "-f", f"{d}/slapd.conf", "-h",
                             f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/", "-d", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for p in (port, tls_port):
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", p), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
    return proc, port, tls_port, d


def ldap_sts(user, password, extra=""):
    body = "Action=AssumeRoleWithLDAPIdentity&Version=2011-06-15&" + urllib.parse.urlencode(
        {"LDAPUsername": user, "LDAPPassword": password}) + extra
    return raw_post(body)


def raw_post(body):
    host = EP.split("//", 1)[1]
    req = urllib.request.Request(f"http://{host}/", data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def creds_of(xml):
    ns = {"s": "https://sts.amazonaws.com/doc/2011-06-15/"}
    c = ET.fromstring(xml).find(".//s:Credentials", ns)
    return {k: c.find(f"s:{k}", ns).text for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")}


@test
def ldap_sessions():
    proc, port, tls_port, d = start_slapd()
    corp = {"type": "ldap", "server": f"127.0.0.1:{port}", "bind_dn": "cn=fsgate-svc,dc=example,dc=org",
            "bind_password": "svc-secret", "user_base": "ou=people,dc=example,dc=org",
            "user_filter": "(uid=%s)", "group_base": "ou=groups,dc=example,dc=org",
            "group_filter": "(member=%d)"}
    try:
        admin_ok("PUT", "/admin/v1/idps/corp", corp)
        listed = admin_ok("GET", "/admin/v1/idps")
        shown = next(p for p in listed if p["name"] == "corp")
        assert "bind_password" not in shown, shown
        b = bucket()
        s3.put_object(Bucket=b, Key="k", Body=b"ldap")
        admin_ok("POST", "/admin/v1/policies", {"group": "devs", "role": "readwrite", "bucket": b})
        status, _, body = ldap_sts("lena", "lena-pw", "&DurationSeconds=900")
        assert status == 200, body
        lena = session_s3(creds_of(body))
        assert lena.get_object(Bucket=b, Key="k")["Body"].read() == b"ldap"
        lena.put_object(Bucket=b, Key="by-lena", Body=b"l")
        status, _, body = ldap_sts("max", "max-pw")
        assert status == 200, body
        expect("AccessDenied", session_s3(creds_of(body)).get_object, Bucket=b, Key="k")
        # Wrong passwords, unknown users and filter injection all fail the same way.
        for user, pw in [("lena", "wrong"), ("nobody", "x"), ("*", "lena-pw"), ("lena)(uid=*", "lena-pw"),
                         ("le*", "lena-pw"), ("*)(|(uid=*", "max-pw"), ("lena\\00", "lena-pw")]:
            status, _, body = ldap_sts(user, pw)
            assert status == 403 and b"AccessDenied" in body, (user, status, body)
        status, _, body = ldap_sts("lena", "")
        assert status == 400 and b"MissingParameter" in body, body
        assert any(r["action"] == "s3:PutObject" for r in audit(f"principal=corp:lena&bucket={b}"))
        # Regression: the name as typed was the principal (`LENA` escaped grants and
        # revocations of `lena`); it is the directory entry's own spelling.
        status, _, body = ldap_sts("LENA", "lena-pw")
        assert status == 200, body
        session_s3(creds_of(body)).put_object(Bucket=b, Key="by-LENA", Body=b"l")
        recs = audit(f"bucket={b}")
        assert any(r["action"] == "s3:PutObject" and r["key"] == "by-LENA" and r["principal"] == "corp:lena"
                   for r in recs), recs
        admin_ok("POST", "/admin/v1/users/corp:lena/revoke", {"before": "now"})
        expect("AccessDenied", session_s3(creds_of(body)).get_object, Bucket=b, Key="k")
        # A directory error is not told to the client.
        admin_ok("PUT", "/admin/v1/idps/corp", dict(corp, server=f"127.0.0.1:{free_port()}"))
        status, _, body = ldap_sts("lena", "lena-pw")
        assert status == 403 and b"127.0.0.1" not in body and b"onnect" not in body, (status, body)
        admin_ok("PUT", "/admin/v1/idps/corp", corp)
        # StartTLS and LDAPS (the directory's certificate is self-signed: accepted only when
        # told to skip verification).
        for tls, p, insecure, works in [("starttls", port, True, True), ("tls", tls_port, True, True),
                                        ("tls", tls_port, False, False), ("starttls", port, False, False)]:
            admin_ok("PUT", "/admin/v1/idps/corp", dict(corp, server=f"127.0.0.1:{p}", tls=tls, tls_insecure=insecure))
            status, _, body = ldap_sts("lena", "lena-pw")
            assert (status == 200) == works, (tls, insecure, status, body)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    from s3check import ARGS
    run(ARGS)
