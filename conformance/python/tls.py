"""HTTPS with a generated CA. Two commands:

  python tls.py gen DIR
      writes DIR/ca.pem, DIR/certs/{public.crt,private.key} (MinIO's layout) and
      DIR/next/{public.crt,private.key}: server certificates for 127.0.0.1 and localhost signed
      by the CA.
  python tls.py check HTTPS_ENDPOINT AK SK DIR PID
      boto3 with verify=CA; plaintext refused on the TLS port; Cedar sees secure_transport;
      certificates reloaded when the files change and on SIGHUP (PID) without dropping an open
      keep-alive connection."""
import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import sys
import time
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def gen(d):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fsgate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    with open(f"{d}/ca.pem", "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    for sub in ("certs", "next"):
        os.makedirs(f"{d}/{sub}", exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(f"{d}/{sub}/public.crt", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(f"{d}/{sub}/private.key", "wb") as f:
            f.write(pem_key(key))


def fingerprint(host, port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection((host, port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def file_fingerprint(path):
    with open(path, "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def wait_for(pred, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def check(ep, ak, sk, d, pid):
    import boto3
    from botocore.config import Config
    host, port = ep.split("//", 1)[1].split(":")
    port = int(port)
    ca = f"{d}/ca.pem"
    s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk, region_name="us-east-1",
                      verify=ca, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    b = "tls-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"over tls")
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"over tls"
    # Without the CA the certificate is not trusted.
    untrusting = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,
                              region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    try:
        untrusting.list_buckets()
        raise AssertionError("an untrusted certificate was accepted")
    except Exception as e:  # botocore SSLError
        assert "SSL" in type(e).__name__ or "certificate" in str(e).lower(), e
    # Plain HTTP on the TLS port gets no HTTP answer.
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            got = raw.recv(100)
        except (ConnectionResetError, socket.timeout):
            got = b""
        assert not got.startswith(b"HTTP/1.1 200"), got
    # TLS 1.2 is accepted, as is 1.3.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ctx.maximum_version = version
        with socket.create_connection((host, port), timeout=10) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
            assert s.version() in ("TLSv1.2", "TLSv1.3"), s.version()
    # Cedar sees the TLS flag: a user allowed only over TLS gets in.
    conn_ctx = ssl.create_default_context(cafile=ca)

    def admin(method, path, body):
        # A signed admin call over TLS, reusing botocore's signer.
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        data = json.dumps(body).encode()
        req = AWSRequest(method=method, url=ep + path, data=data,
                         headers={"x-amz-content-sha256": hashlib.sha256(data).hexdigest()})
        S3SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
        c = http.client.HTTPSConnection(host, port, context=conn_ctx, timeout=10)
        c.request(method, path, body=data, headers=dict(req.headers.items()))
        r = c.getresponse()
        out = r.read()
        c.close()
        assert 200 <= r.status < 300, (r.status, out)
        return json.loads(out)

    user = admin("POST", "/admin/v1/users", {"name": "tls-" + uuid.uuid4().hex[:6]})
    admin("POST", "/admin/v1/policies", {"user": user["user"], "cedar":
          f'permit(principal, action in [Action::"Read", Action::"List"], resource in Bucket::"{b}") when {{ context.secure_transport }};'})
    u3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=user["access_key"], aws_secret_access_key=user["secret_key"],
                      region_name="us-east-1", verify=ca, config=Config(s3={"addressing_style": "path"}))
    assert u3.get_object(Bucket=b, Key="k")["Body"].read() == b"over tls"

    # Reload: files replaced → new handshakes get the new certificate; an open keep-alive
    # connection keeps working.
    first = fingerprint(host, port, ca)
    assert first == file_fingerprint(f"{d}/certs/public.crt")
    keep = http.client.HTTPSConnection(host, port, context=conn_ctx, timeout=10)
    keep.request("GET", "/health/live")
    assert keep.getresponse().read() == b""
    saved = f"{d}/first"
    shutil.copytree(f"{d}/certs", saved)
    shutil.copy(f"{d}/next/private.key", f"{d}/certs/private.key")
    shutil.copy(f"{d}/next/public.crt", f"{d}/certs/public.crt")
    second = file_fingerprint(f"{d}/certs/public.crt")
    wait_for(lambda: fingerprint(host, port, ca) == second, "reload on file change")
    keep.request("GET", "/health/live")
    r = keep.getresponse()
    assert r.status == 200 and r.read() == b""
    # SIGHUP: the old files back with their old times, so only the signal can notice.
    for name in ("public.crt", "private.key"):
        st = os.stat(f"{d}/certs/{name}")
        shutil.copy(f"{saved}/{name}", f"{d}/certs/{name}")
        os.utime(f"{d}/certs/{name}", ns=(st.st_atime_ns, st.st_mtime_ns))
    time.sleep(2.5)
    assert fingerprint(host, port, ca) == second, "reloaded without a signal"
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: fingerprint(host, port, ca) == first, "reload on SIGHUP")
    # A broken pair is refused and the certificate in use stays.
    with open(f"{d}/certs/private.key", "wb") as f:
        f.write(b"not a key")
    os.kill(pid, signal.SIGHUP)
    time.sleep(1)
    assert fingerprint(host, port, ca) == first
    keep.request("GET", "/health/live")
    assert keep.getresponse().status == 200
    print("tls ok")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
