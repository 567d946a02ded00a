"""A small, independent SigV4 signer for hand-made requests (bad XML, clock skew, truncation)."""
import datetime
import hashlib
import hmac
import http.client
import urllib.parse


def _h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed_request(endpoint, ak, sk, method, path, query="", body=b"", headers=None, when=None,
                   payload_hash=None, region="us-east-1", service="s3"):
    """Signs and sends one request; returns (status, headers, body)."""
    u = urllib.parse.urlparse(endpoint)
    host = u.netloc
    when = when or datetime.datetime.now(datetime.timezone.utc)
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = when.strftime("%Y%m%d")
    payload_hash = payload_hash or hashlib.sha256(body).hexdigest()
    hdrs = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload_hash}
    for k, v in (headers or {}).items():
        hdrs[k.lower()] = v
    signed = sorted(hdrs)
    canon_q = "&".join(sorted(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)))
    canon = "\n".join([
        method, urllib.parse.quote(path, safe="/-_.~"), canon_q,
        "".join(f"{k}:{hdrs[k].strip()}\n" for k in signed), ";".join(signed), payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canon.encode()).hexdigest()])
    key = _h(_h(_h(_h(("AWS4" + sk).encode(), date), region), service), "aws4_request")
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = (f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, "
                             f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    conn = http.client.HTTPConnection(host, timeout=30)
    target = path + (("?" + query) if query else "")
    conn.request(method, target, body=body, headers=hdrs)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data
