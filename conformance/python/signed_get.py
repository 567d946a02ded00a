"""Sends one SigV4-signed GET: `python signed_get.py ENDPOINT AK SK PATH [NAME:VALUE...]`
(extra headers, signed too); prints the status, then the body."""
import sys

from sigv4 import signed_request

headers = dict(h.split(":", 1) for h in sys.argv[5:])
status, _, body = signed_request(sys.argv[1], sys.argv[2], sys.argv[3], "GET", sys.argv[4], headers=headers)
print(status)
print(body.decode(errors="replace"))
