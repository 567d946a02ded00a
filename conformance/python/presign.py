"""Prints a SigV4 presigned URL: `python presign.py EP AK SK METHOD BUCKET KEY [SECONDS]`."""
from s3check import ARGS, client

method, b, k = ARGS[:3]
op = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object"}[method]
s3v4 = client(signature_version="s3v4")
print(s3v4.generate_presigned_url(op, Params={"Bucket": b, "Key": k}, ExpiresIn=int(ARGS[3]) if len(ARGS) > 3 else 600))
