"""The encoding differential (issue 18): for every S3 operation fsgate implements, requests
with each query key and signed header in other encodings — percent-encoded letters in upper
and lower case hex, keys encoded whole, duplicated keys and headers, empty values, keys that
differ only in case — must be refused, or decided and executed exactly as the canonical form.

The oracle, per operation X and variant V (each run on fresh state):
- eve may do everything but X; root may do everything;
- the canonical form is decided as X, and eve is denied it (so the test can fail);
- if root's V has the same effect as root's canonical request (status, headers that tell
  versions apart, body with volatile fields removed), V was executed as X: the audit must
  say X, and eve must be denied;
- whatever V became, eve's V and root's V are decided as the same action (a decision reads
  the request, not who sends it), and eve is answered as root is unless that action is X.

Requests are SigV4-signed over the decoded query (as SigV4 canonicalises it) and sent with
the query exactly as written. Run as `python encodings.py ENDPOINT ROOT_AK ROOT_SK`."""
import hashlib
import hmac
import http.client
import json
import re
import time
import urllib.parse
import uuid
from datetime import datetime, timezone

from s3check import AK, EP, SK, md5b64
from sigv4 import signed_request

HOST = EP.split("//", 1)[1]


def sign_and_send(ak, sk, method, path, query, headers=(), body=b""):
    """Signs over the decoded query and the (possibly repeated) headers; sends the query as
    written. Returns (status, headers dict lowercased, body)."""
    now = datetime.now(timezone.utc)
    amz_date, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    hdrs = [("host", HOST), ("x-amz-date", amz_date), ("x-amz-content-sha256", payload)]
    hdrs += list(headers)  # on the wire as written; canonically lower case
    names = sorted({k.lower() for k, _ in hdrs})
    canon_headers = "".join(f"{n}:{','.join(v.strip() for k, v in hdrs if k.lower() == n)}\n" for n in names)
    canon_q = "&".join(sorted(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    canon = "\n".join([method, urllib.parse.quote(path, safe="/-_.~"), canon_q, canon_headers,
                       ";".join(names), payload])
    scope = f"{date}/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
    key = ("AWS4" + sk).encode()
    for part in (date, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    conn = http.client.HTTPConnection(HOST, timeout=30)
    conn.putrequest(method, path + ("?" + query if query else ""), skip_host=True, skip_accept_encoding=True)
    for k, v in hdrs:
        conn.putheader(k, v)
    conn.putheader("authorization", auth)
    conn.putheader("content-length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    out = {}
    for k, v in r.getheaders():
        out[k.lower()] = v
    conn.close()
    return r.status, out, data


def admin(method, path, body=None, query=""):
    data = json.dumps(body).encode() if body is not None else b""
    status, _, out = signed_request(EP, AK, SK, method, path, query, body=data)
    assert 200 <= status < 300, (method, path, status, out)
    return json.loads(out) if out.strip() else None


def root(method, path, query="", headers=(), body=b""):
    return sign_and_send(AK, SK, method, path, query, headers, body)


class State:
    """Fresh state for one run: a versioned bucket with key `k` (v1 of 10 bytes tagged, then
    v2 of 3 bytes), an empty key slot `new`, and a multipart upload of `mp` with part 1."""

    def __init__(self, kind, needs=()):
        locked, empty = kind == "locked", kind == "empty"
        self.b = "enc-" + uuid.uuid4().hex[:16]
        headers = [("x-amz-bucket-object-lock-enabled", "true")] if locked else []
        assert root("PUT", f"/{self.b}", headers=headers)[0] == 200
        self.new_bucket = "enc-" + uuid.uuid4().hex[:16]
        self.v1 = self.v2 = self.u = self.etag1 = ""
        if empty:
            return
        vxml = b'<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>'
        assert root("PUT", f"/{self.b}", "versioning=", body=vxml)[0] == 200
        s, h, _ = root("PUT", f"/{self.b}/k", headers=[("x-amz-tagging", "class=one")], body=b"version-1!")
        assert s == 200, s
        self.v1 = h.get("x-amz-version-id", "")
        s, h, _ = root("PUT", f"/{self.b}/k", body=b"v-2")
        self.v2 = h.get("x-amz-version-id", "")
        s, _, out = root("POST", f"/{self.b}/mp", "uploads=")
        assert s == 200, out
        self.u = re.search(rb"<UploadId>([^<]+)</UploadId>", out).group(1).decode()
        s, h, _ = root("PUT", f"/{self.b}/mp", f"partNumber=1&uploadId={urllib.parse.quote(self.u)}",
                       body=b"p" * 1024)
        assert s == 200, s
        self.etag1 = h["etag"]
        if locked:
            doc = RETENTION
            assert root("PUT", f"/{self.b}/k", "retention=", [("content-md5", md5b64(doc))], doc)[0] == 200
        configs = {"cors": CORS, "tagging": TAGGING, "lifecycle": LIFECYCLE, "encryption": ENCRYPTION,
                   "ownershipControls": OWNERSHIP, "policy": policy_doc(self.b)}
        for sub in needs:
            doc = configs[sub]
            status = root("PUT", f"/{self.b}", f"{sub}=", [("content-md5", md5b64(doc))], doc)[0]
            assert status in (200, 204), (sub, status)

    def fill(self, text):
        return (text.replace("{b}", self.b).replace("{v1}", self.v1).replace("{u}", self.u)
                .replace("{nb}", self.new_bucket).replace("{etag1}", self.etag1))


TAGGING = b'<Tagging><TagSet><Tag><Key>x</Key><Value>y</Value></Tag></TagSet></Tagging>'
CORS = b'<CORSConfiguration><CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>'
LIFECYCLE = (b'<LifecycleConfiguration><Rule><ID>r</ID><Filter><Prefix>x/</Prefix></Filter><Status>Enabled</Status>'
             b'<Expiration><Days>3</Days></Expiration></Rule></LifecycleConfiguration>')
ENCRYPTION = (b'<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>'
              b'<SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>')
VERSIONING = b'<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>'
OWNERSHIP = b'<OwnershipControls><Rule><ObjectOwnership>BucketOwnerEnforced</ObjectOwnership></Rule></OwnershipControls>'
LOCK = (b'<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>'
        b'<Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>')
RETENTION = b'<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2099-01-01T00:00:00Z</RetainUntilDate></Retention>'
LEGAL_HOLD = b'<LegalHold><Status>ON</Status></LegalHold>'
LOGGING_OFF = b'<BucketLoggingStatus xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></BucketLoggingStatus>'


def policy_doc(b):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                       "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/pub/*"}]}).encode()


# (name, Cedar action X, method, path, query pairs, headers, body, state kind)
OPS = [
    ("GetObject", "s3:GetObject", "GET", "/{b}/k", [], [], b"", "obj"),
    ("GetObject version", "s3:GetObjectVersion", "GET", "/{b}/k", [("versionId", "{v1}")], [], b"", "obj"),
    ("HeadObject", "s3:HeadObject", "HEAD", "/{b}/k", [], [], b"", "obj"),
    ("HeadObject version", "s3:GetObjectVersion", "HEAD", "/{b}/k", [("versionId", "{v1}")], [], b"", "obj"),
    ("GetObject part", "s3:GetObject", "GET", "/{b}/k", [("partNumber", "1")], [], b"", "obj"),
    ("DeleteObject", "s3:DeleteObject", "DELETE", "/{b}/k", [], [], b"", "obj"),
    ("DeleteObject version", "s3:DeleteObjectVersion", "DELETE", "/{b}/k", [("versionId", "{v1}")], [], b"", "obj"),
    ("GetObjectTagging", "s3:GetObjectTagging", "GET", "/{b}/k", [("tagging", ""), ("versionId", "{v1}")], [], b"", "obj"),
    ("PutObjectTagging", "s3:PutObjectTagging", "PUT", "/{b}/k", [("tagging", "")], [], TAGGING, "obj"),
    ("DeleteObjectTagging", "s3:DeleteObjectTagging", "DELETE", "/{b}/k", [("tagging", ""), ("versionId", "{v1}")], [], b"", "obj"),
    ("GetObjectAttributes", "s3:GetObjectAttributes", "GET", "/{b}/k", [("attributes", "")],
     [("x-amz-object-attributes", "ETag,ObjectSize")], b"", "obj"),
    ("GetObjectAcl", "s3:GetObjectAcl", "GET", "/{b}/k", [("acl", "")], [], b"", "obj"),
    ("PutObjectAcl", "s3:PutObjectAcl", "PUT", "/{b}/k", [("acl", "")], [("x-amz-acl", "private")], b"", "obj"),
    ("GetObjectRetention", "s3:GetObjectRetention", "GET", "/{b}/k", [("retention", "")], [], b"", "locked"),
    ("PutObjectRetention", "s3:PutObjectRetention", "PUT", "/{b}/k", [("retention", "")],
     [("content-md5", md5b64(RETENTION))], RETENTION, "locked"),
    ("GetObjectLegalHold", "s3:GetObjectLegalHold", "GET", "/{b}/k", [("legal-hold", "")], [], b"", "locked"),
    ("PutObjectLegalHold", "s3:PutObjectLegalHold", "PUT", "/{b}/k", [("legal-hold", "")],
     [("content-md5", md5b64(LEGAL_HOLD))], LEGAL_HOLD, "locked"),
    ("PutObject", "s3:PutObject", "PUT", "/{b}/new", [], [], b"body", "obj"),
    ("CopyObject", "s3:CopyObject", "PUT", "/{b}/copy", [], [("x-amz-copy-source", "/{b}/k")], b"", "obj"),
    ("CopyObject source version", "s3:GetObjectVersion", "PUT", "/{b}/copy", [],
     [("x-amz-copy-source", "/{b}/k?versionId={v1}")], b"", "obj"),
    ("CreateMultipartUpload", "s3:CreateMultipartUpload", "POST", "/{b}/mp2", [("uploads", "")], [], b"", "obj"),
    ("UploadPart", "s3:UploadPart", "PUT", "/{b}/mp", [("partNumber", "2"), ("uploadId", "{u}")], [], b"part-2", "obj"),
    ("UploadPartCopy", "s3:UploadPartCopy", "PUT", "/{b}/mp", [("partNumber", "2"), ("uploadId", "{u}")],
     [("x-amz-copy-source", "/{b}/k")], b"", "obj"),
    ("CompleteMultipartUpload", "s3:CompleteMultipartUpload", "POST", "/{b}/mp", [("uploadId", "{u}")], [],
     b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{etag1}</ETag></Part></CompleteMultipartUpload>", "obj"),
    ("AbortMultipartUpload", "s3:AbortMultipartUpload", "DELETE", "/{b}/mp", [("uploadId", "{u}")], [], b"", "obj"),
    ("ListParts", "s3:ListParts", "GET", "/{b}/mp", [("uploadId", "{u}")], [], b"", "obj"),
    ("ListMultipartUploads", "s3:ListMultipartUploads", "GET", "/{b}", [("uploads", "")], [], b"", "obj"),
    ("ListObjects", "s3:ListObjects", "GET", "/{b}", [("prefix", "k")], [], b"", "obj"),
    ("ListObjectsV2", "s3:ListObjectsV2", "GET", "/{b}", [("list-type", "2"), ("prefix", "k")], [], b"", "obj"),
    ("ListObjectVersions", "s3:ListObjectVersions", "GET", "/{b}", [("versions", "")], [], b"", "obj"),
    ("HeadBucket", "s3:HeadBucket", "HEAD", "/{b}", [], [], b"", "obj"),
    ("GetBucketLocation", "s3:GetBucketLocation", "GET", "/{b}", [("location", "")], [], b"", "obj"),
    ("GetBucketVersioning", "s3:GetBucketVersioning", "GET", "/{b}", [("versioning", "")], [], b"", "obj"),
    ("PutBucketVersioning", "s3:PutBucketVersioning", "PUT", "/{b}", [("versioning", "")], [], VERSIONING, "obj"),
    ("GetBucketTagging", "s3:GetBucketTagging", "GET", "/{b}", [("tagging", "")], [], b"", "obj+tagging"),
    ("PutBucketTagging", "s3:PutBucketTagging", "PUT", "/{b}", [("tagging", "")],
     [("content-md5", md5b64(TAGGING))], TAGGING, "obj"),
    ("DeleteBucketTagging", "s3:DeleteBucketTagging", "DELETE", "/{b}", [("tagging", "")], [], b"", "obj+tagging"),
    ("GetBucketCors", "s3:GetBucketCors", "GET", "/{b}", [("cors", "")], [], b"", "obj+cors"),
    ("PutBucketCors", "s3:PutBucketCors", "PUT", "/{b}", [("cors", "")], [("content-md5", md5b64(CORS))], CORS, "obj"),
    ("DeleteBucketCors", "s3:DeleteBucketCors", "DELETE", "/{b}", [("cors", "")], [], b"", "obj+cors"),
    ("GetBucketLifecycleConfiguration", "s3:GetBucketLifecycleConfiguration", "GET", "/{b}", [("lifecycle", "")], [], b"", "obj+lifecycle"),
    ("PutBucketLifecycleConfiguration", "s3:PutBucketLifecycleConfiguration", "PUT", "/{b}", [("lifecycle", "")],
     [("content-md5", md5b64(LIFECYCLE))], LIFECYCLE, "obj"),
    ("DeleteBucketLifecycle", "s3:DeleteBucketLifecycle", "DELETE", "/{b}", [("lifecycle", "")], [], b"", "obj+lifecycle"),
    ("GetBucketEncryption", "s3:GetBucketEncryption", "GET", "/{b}", [("encryption", "")], [], b"", "obj+encryption"),
    ("PutBucketEncryption", "s3:PutBucketEncryption", "PUT", "/{b}", [("encryption", "")], [], ENCRYPTION, "obj"),
    ("DeleteBucketEncryption", "s3:DeleteBucketEncryption", "DELETE", "/{b}", [("encryption", "")], [], b"", "obj+encryption"),
    ("GetObjectLockConfiguration", "s3:GetObjectLockConfiguration", "GET", "/{b}", [("object-lock", "")], [], b"", "locked"),
    ("PutObjectLockConfiguration", "s3:PutObjectLockConfiguration", "PUT", "/{b}", [("object-lock", "")],
     [("content-md5", md5b64(LOCK))], LOCK, "locked"),
    ("GetBucketPolicy", "s3:GetBucketPolicy", "GET", "/{b}", [("policy", "")], [], b"", "obj+policy"),
    ("PutBucketPolicy", "s3:PutBucketPolicy", "PUT", "/{b}", [("policy", "")], [], "POLICY", "obj"),
    ("DeleteBucketPolicy", "s3:DeleteBucketPolicy", "DELETE", "/{b}", [("policy", "")], [], b"", "obj+policy"),
    ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus", "GET", "/{b}", [("policyStatus", "")], [], b"", "obj+policy"),
    ("GetBucketAcl", "s3:GetBucketAcl", "GET", "/{b}", [("acl", "")], [], b"", "obj"),
    ("PutBucketAcl", "s3:PutBucketAcl", "PUT", "/{b}", [("acl", "")], [("x-amz-acl", "private")], b"", "obj"),
    ("GetBucketLogging", "s3:GetBucketLogging", "GET", "/{b}", [("logging", "")], [], b"", "obj"),
    ("PutBucketLogging", "s3:PutBucketLogging", "PUT", "/{b}", [("logging", "")],
     [("content-md5", md5b64(LOGGING_OFF))], LOGGING_OFF, "obj"),
    ("GetBucketOwnershipControls", "s3:GetBucketOwnershipControls", "GET", "/{b}", [("ownershipControls", "")], [], b"", "obj+ownershipControls"),
    ("PutBucketOwnershipControls", "s3:PutBucketOwnershipControls", "PUT", "/{b}", [("ownershipControls", "")],
     [("content-md5", md5b64(OWNERSHIP))], OWNERSHIP, "obj"),
    ("DeleteBucketOwnershipControls", "s3:DeleteBucketOwnershipControls", "DELETE", "/{b}", [("ownershipControls", "")], [], b"", "obj+ownershipControls"),
    ("CreateBucket", "s3:CreateBucket", "PUT", "/{nb}", [], [], b"", "obj"),
    ("DeleteBucket", "s3:DeleteBucket", "DELETE", "/{b}", [], [], b"", "empty"),
    ("DeleteObjects", "s3:DeleteObject", "POST", "/{b}", [("delete", "")], [],
     b"<Delete><Object><Key>k</Key></Object></Delete>", "obj"),
    ("DeleteObjects version", "s3:DeleteObjectVersion", "POST", "/{b}", [("delete", "")], [],
     b"<Delete><Object><Key>k</Key><VersionId>{v1}</VersionId></Object></Delete>", "obj"),
    ("ListBuckets", "s3:ListBuckets", "GET", "/", [], [], b"", "obj"),
]


def enc_letter(c, lower=False):
    h = "%{:02X}".format(ord(c))
    return h.lower() if lower else h


def variants(pairs, headers):
    """(description, query pairs with raw keys already written, headers) of each variant."""
    base = list(pairs)
    yield "canonical", base, headers
    for i, (k, v) in enumerate(pairs):
        def with_key(raw_key, value=None, ps=base, i=i):
            out = list(ps)
            out[i] = (raw_key, out[i][1] if value is None else value)
            return out
        letters = [j for j, c in enumerate(k) if c.isalpha()]
        if letters:
            j = letters[-1]
            yield f"{k}: a letter %XX", with_key(k[:j] + enc_letter(k[j]) + k[j + 1:]), headers
            yield f"{k}: a letter %xx", with_key(k[:j] + enc_letter(k[j], True) + k[j + 1:]), headers
            yield f"{k}: every byte", with_key("".join(enc_letter(c) for c in k)), headers
            if k.lower() != k or k.upper() != k:
                yield f"{k}: other case", with_key(k.swapcase()), headers
        yield f"{k}: repeated", base + [(k, "other")], headers
        yield f"{k}: repeated, encoded", base + [(enc_letter(k[0]) + k[1:], "other")], headers
        yield f"{k}: repeated, same", base + [base[i]], headers
        if v:
            yield f"{k}: empty value", with_key(k, ""), headers
    for i, (h, v) in enumerate(headers):
        if h == "content-md5":
            continue
        yield f"{h}: repeated", base, headers + [(h, v + "x")]
        yield f"{h}: upper case", base, headers[:i] + [(h.upper(), v)] + headers[i + 1:]
        if "versionId=" in v:
            yield f"{h}: versio%6EId", base, headers[:i] + [(h, v.replace("versionId", "versio%6EId"))] + headers[i + 1:]


VOLATILE = ["RequestId", "HostId", "UploadId", "LastModified", "Initiated", "CreationDate", "VersionId",
            "NextVersionIdMarker", "NextUploadIdMarker", "UploadIdMarker", "VersionIdMarker", "Owner"]


def effect(st, status, headers, body):
    text = body.decode(errors="replace")
    for tag in VOLATILE:
        text = re.sub(f"<{tag}>.*?</{tag}>", f"<{tag}/>", text, flags=re.S)
    for token in (st.b, st.new_bucket, st.v1, st.v2, st.u):
        if token:
            text = text.replace(token, "~")
    keep = {k: headers.get(k) for k in ("content-length", "etag", "x-amz-delete-marker", "content-range")}
    return status, keep, text


def observe(st, kind):
    """What root sees of the state after a request: versions, uploads and parts, tags, and
    every bucket setting (so two requests with the same answer but different effects differ)."""
    reads = [("/{b}", "versions="), ("/{b}", "uploads="), ("/{b}/mp", "uploadId={u}"),
             ("/{b}/k", "tagging=&versionId={v1}"), ("/{b}/k", "tagging="), ("/{b}/k", "acl=")]
    reads += [("/{b}", f"{sub}=") for sub in ("cors", "tagging", "lifecycle", "encryption", "policy",
                                             "versioning", "ownershipControls", "object-lock")]
    if kind.startswith("locked"):
        reads += [("/{b}/k", "retention="), ("/{b}/k", "legal-hold=")]
    if kind == "empty":
        reads = [("/{b}", "versioning=")]
    out = []
    for path, q in reads:
        query = "&".join(f"{k}={urllib.parse.quote(st.fill(v), safe='-_.~')}" if v else f"{k}="
                         for k, v in (kv.split("=", 1) for kv in q.split("&")))
        status, h, body = root("GET", st.fill(path), query)
        out.append(effect(st, status, h, body))
    return out


class Run:
    """One op's runs, with the request ids to find their audit records."""

    def __init__(self, eve):
        self.eve = eve
        self.started = int(time.time()) - 1

    def send(self, who, op, written, headers):
        name, _action, method, path, _pairs, _h, body, kind = op
        kind, *needs = kind.split("+")
        st = State(kind, needs)
        if body == "POLICY":
            body = policy_doc(st.b)
        body = st.fill(body.decode()).encode() if body else b""
        query = "&".join(f"{k}={urllib.parse.quote(st.fill(v), safe='-_.~')}" for k, v in written)
        hdrs = [(k, st.fill(v)) for k, v in headers]
        if op[0].startswith("DeleteObjects"):
            hdrs.append(("content-md5", md5b64(body)))
        ak, sk = (AK, SK) if who == "root" else self.eve
        status, rh, data = sign_and_send(ak, sk, method, st.fill(path), query, hdrs, body)
        after = observe(st, kind) if who == "root" else None
        return st, status, rh, data, after

    def audit(self):
        recs = admin("GET", "/admin/v1/audit", query=f"since={self.started}&limit=100000")
        return {r["request_id"]: r for r in recs}


def code_of(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else ""


def decided_action(rec):
    """The action a request was decided as; None when it failed before any decision (the
    audit then names its route, `GET /bucket/key`)."""
    if not rec or " /" in rec["action"]:
        return None
    return rec["action"]


def denied(method, status, code):
    """403 AccessDenied (a HEAD answer has no body); DeleteObjects answers 200 with a per-key
    `<Error><Code>AccessDenied`."""
    return (status == 403 and (code == "AccessDenied" or (method == "HEAD" and code == ""))) or (
        status == 200 and code == "AccessDenied")


# Operations whose audit record names another action than the forbidden one: a copy is
# audited as the copy, and decided at both ends.
AUDITED_AS = {"CopyObject source version": "s3:CopyObject"}


def check_op(op):
    name, action = op[0], op[1]
    audited = AUDITED_AS.get(name, action)
    method = op[2]
    user = f"eve-{uuid.uuid4().hex[:8]}"
    u = admin("POST", "/admin/v1/users", {"name": user})
    admin("POST", "/admin/v1/policies", {"user": user, "cedar": 'permit(principal, action, resource);'})
    admin("POST", "/admin/v1/policies", {"user": user, "cedar":
          f'forbid(principal, action == Action::"{action}", resource);'})
    run = Run((u["access_key"], u["secret_key"]))
    results = []
    for desc, written, headers in variants(op[4], op[5]):
        st_r, s_r, h_r, b_r, after = run.send("root", op, written, headers)
        _, s_e, h_e, b_e, _ = run.send("eve", op, written, headers)
        results.append((desc, (effect(st_r, s_r, h_r, b_r), after), h_r.get("x-amz-request-id"),
                        (s_e, code_of(b_e)), h_e.get("x-amz-request-id"), s_r))
    recs = run.audit()
    failures = []
    c_effect, c_status = results[0][1], results[0][5]
    if not (200 <= c_status < 300):
        failures.append(f"{name}: the canonical request fails for root: {c_effect[0]}")
    for desc, eff_r, rid_r, (s_e, code_e), rid_e, s_r in results:
        act_r, act_e = decided_action(recs.get(rid_r)), decided_action(recs.get(rid_e))
        if desc == "canonical":
            if act_r != audited or not denied(method, s_e, code_e):
                failures.append(f"{name}: canonical decided {act_r}; eve got {s_e} {code_e}")
            continue
        if eff_r == c_effect:
            # Executed as the canonical request: decided as it, and so denied to eve.
            if act_r != audited:
                failures.append(f"{name} [{desc}]: executed as canonical but decided as {act_r}")
            if not denied(method, s_e, code_e):
                failures.append(f"{name} [{desc}]: executed as canonical, eve got {s_e} {code_e}")
        if act_r and act_e and act_r != act_e:
            failures.append(f"{name} [{desc}]: root's request decided as {act_r}, eve's as {act_e}")
        if act_e and act_e not in (action, audited) and denied(method, s_e, code_e) and s_r < 400:
            failures.append(f"{name} [{desc}]: eve denied {act_e} though only {action} is forbidden")
        if act_e == action and not denied(method, s_e, code_e):
            failures.append(f"{name} [{desc}]: decided as the forbidden {action}, yet eve got {s_e}")
    return len(results), failures


def main():
    total, failures = 0, []
    for op in OPS:
        n, f = check_op(op)
        total += n
        failures += f
        print(f"{'ok  ' if not f else 'FAIL'} {op[0]}: {n} forms", flush=True)
    for f in failures:
        print("  " + f)
    print(f"{total} forms over {len(OPS)} operations")
    print(f"{len(OPS) - len({f.split(':')[0].split(' [')[0] for f in failures})} passed, "
          f"{len({f.split(':')[0].split(' [')[0] for f in failures})} failed")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
