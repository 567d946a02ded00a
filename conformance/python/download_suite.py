"""Downloads over one keep-alive connection, checked byte for byte: whole objects, ranges that
cross part and chunk boundaries, a body abandoned half-way, then more requests on a new
connection. Run against fsgate with zero-copy on and off: both must give the same bytes.

usage: download_suite.py ENDPOINT ACCESS_KEY SECRET_KEY
"""
import os
import random
import socket
import sys
import urllib.parse

import boto3
from botocore.config import Config

endpoint, ak, sk = sys.argv[1:4]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id=ak,
    aws_secret_access_key=sk,
    region_name="us-east-1",
    config=Config(max_pool_connections=1, retries={"max_attempts": 0},
                  s3={"addressing_style": "path"}),
)
failures = []
checks = 0


def check(what, got, want):
    global checks
    checks += 1
    if got != want:
        failures.append(f"{what}: got {len(got)} bytes, want {len(want)}"
                        + ("" if len(got) != len(want) else " (same length, different bytes)"))


rng = random.Random(7)
bucket = "dl-" + os.urandom(4).hex()
s3.create_bucket(Bucket=bucket)

MiB = 1 << 20
single = rng.randbytes(9 * MiB + 12345)           # one extent, several 4 MiB placeholder chunks
s3.put_object(Bucket=bucket, Key="single", Body=single)

parts = [rng.randbytes(5 * MiB), rng.randbytes(5 * MiB + 3), rng.randbytes(777)]
up = s3.create_multipart_upload(Bucket=bucket, Key="multi")
etags = []
for n, p in enumerate(parts, 1):
    r = s3.upload_part(Bucket=bucket, Key="multi", UploadId=up["UploadId"], PartNumber=n, Body=p)
    etags.append({"PartNumber": n, "ETag": r["ETag"]})
s3.complete_multipart_upload(Bucket=bucket, Key="multi", UploadId=up["UploadId"],
                             MultipartUpload={"Parts": etags})
multi = b"".join(parts)
small = b"tiny object, stored inline"
s3.put_object(Bucket=bucket, Key="small", Body=small)

objects = {"single": single, "multi": multi, "small": small}
for _ in range(2):
    for key, data in objects.items():
        check(f"{key} whole", s3.get_object(Bucket=bucket, Key=key)["Body"].read(), data)

b1 = 5 * MiB  # the first part boundary of "multi"
ranges = [
    ("multi", b1 - 10, b1 + 10), ("multi", b1 - 1, b1), ("multi", b1, b1),
    ("multi", 2 * b1 + 3 - 5, 2 * b1 + 3 + 100), ("multi", 0, len(multi) - 1),
    ("single", 4 * MiB - 3, 4 * MiB + 3), ("single", 8 * MiB - 1, len(single) - 1),
    ("single", 0, 0), ("small", 5, 9),
]
for key, a, b in ranges:
    got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={a}-{b}")["Body"].read()
    check(f"{key} bytes={a}-{b}", got, objects[key][a:b + 1])
for key, data in objects.items():
    got = s3.get_object(Bucket=bucket, Key=key, Range="bytes=-100")["Body"].read()
    check(f"{key} last 100", got, data[-100:])
    got = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={len(data) - 7}-")["Body"].read()
    check(f"{key} from {len(data) - 7}", got, data[-7:])

# A client that reads the headers and a little of a big body, then hangs up.
url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "single"})
u = urllib.parse.urlsplit(url)
for _ in range(3):
    c = socket.create_connection((u.hostname, u.port))
    c.sendall(f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode())
    head = c.recv(64 * 1024)
    if not head.startswith(b"HTTP/1.1 200"):
        failures.append(f"abandoned download: {head[:80]!r}")
    c.close()

# Two GETs pipelined on one raw connection: the second body follows the first exactly.
c = socket.create_connection((u.hostname, u.port))
murl = urllib.parse.urlsplit(
    s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "multi"}))
req = (f"GET {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n"
       f"GET {murl.path}?{murl.query} HTTP/1.1\r\nHost: {u.netloc}\r\nConnection: close\r\n\r\n")
c.sendall(req.encode())
raw = b""
while True:
    got = c.recv(1 << 20)
    if not got:
        break
    raw += got
c.close()
bodies = []
rest = raw
while rest:
    head, _, rest = rest.partition(b"\r\n\r\n")
    length = int([h.split(b":")[1] for h in head.split(b"\r\n")
                  if h.lower().startswith(b"content-length:")][0])
    bodies.append(rest[:length])
    rest = rest[length:]
check("pipelined first", bodies[0] if bodies else b"", single)
check("pipelined second", bodies[1] if len(bodies) > 1 else b"", multi)

# The server is still serving, on a fresh connection, with the right bytes.
for key, data in objects.items():
    check(f"{key} after hang-ups", s3.get_object(Bucket=bucket, Key=key)["Body"].read(), data)

for f in failures:
    print("FAIL", f)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
