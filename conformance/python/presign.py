"""Prints a SigV4 presigned URL — `python presign.py EP AK SK METHOD BUCKET KEY [SECONDS]` — or,
for METHOD `POST`, the JSON `{"url", "fields"}` of a presigned browser form (201 on success,
at most 1 MiB)."""
import json

from s3check import ARGS, client

method, b, k = ARGS[:3]
s3v4 = client(signature_version="s3v4")
expires = int(ARGS[3]) if len(ARGS) > 3 else 600
if method == "POST":
    print(json.dumps(s3v4.generate_presigned_post(
        b, k, Fields={"success_action_status": "201"},
        Conditions=[{"success_action_status": "201"}, ["content-length-range", 1, 1 << 20]], ExpiresIn=expires)))
else:
    op = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object"}[method]
    print(s3v4.generate_presigned_url(op, Params={"Bucket": b, "Key": k}, ExpiresIn=expires))
