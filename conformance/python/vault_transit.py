"""A stand-in for HashiCorp Vault's transit engine, for the external-KMS tests: Vault itself
does not install on this machine (no Debian package, no network but the package registries).
It speaks the part of the transit API fsgate uses, as Vault documents it: `X-Vault-Token`
authentication, `POST /v1/transit/keys/:name` (create; existing keys are kept),
`POST /v1/transit/encrypt/:name` (`{"plaintext": base64}` -> `{"data": {"ciphertext":
"vault:v1:..."}}`), `POST /v1/transit/decrypt/:name`, `DELETE /v1/transit/keys/:name`, and
Vault's error bodies (`{"errors": [...]}`; 403 for a bad token, 400 for a missing key). Keys
are AES-256-GCM, as Vault's default `aes256-gcm96`. `GET /stats` (not Vault's) counts calls.

Run as `python vault_transit.py PORT TOKEN`."""
import base64
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
KEYS = {}
STATS = {"create": 0, "encrypt": 0, "decrypt": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        if self.path == "/stats":
            return None, None
        if self.headers.get("X-Vault-Token") != TOKEN:
            self.answer(403, {"errors": ["permission denied"]})
            return None, "denied"
        parts = self.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "transit"]:
            self.answer(404, {"errors": [f"no handler for route {self.path}"]})
            return None, "missing"
        return parts[2], parts[3]

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                return self.answer(200, dict(STATS))
        self.answer(405, {"errors": ["unsupported operation"]})

    def do_DELETE(self):
        op, name = self.route()
        if op == "keys":
            with LOCK:
                KEYS.pop(name, None)
            self.answer(204)

    def do_POST(self):
        op, name = self.route()
        if op is None:
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with LOCK:
            if op == "keys":
                STATS["create"] += 1
                KEYS.setdefault(name, AESGCM.generate_key(bit_length=256))
                return self.answer(204)
            key = KEYS.get(name)
            if key is None:
                return self.answer(400, {"errors": ["encryption key not found"]})
            if op == "encrypt":
                STATS["encrypt"] += 1
                nonce = os.urandom(12)
                ct = AESGCM(key).encrypt(nonce, base64.b64decode(body["plaintext"]), None)
                return self.answer(200, {"data": {"ciphertext": "vault:v1:" + base64.b64encode(nonce + ct).decode(), "key_version": 1}})
            if op == "decrypt":
                STATS["decrypt"] += 1
                raw = base64.b64decode(body["ciphertext"].split(":", 2)[2])
                try:
                    plain = AESGCM(key).decrypt(raw[:12], raw[12:], None)
                except Exception:
                    return self.answer(400, {"errors": ["cipher: message authentication failed"]})
                return self.answer(200, {"data": {"plaintext": base64.b64encode(plain).decode()}})
        self.answer(404, {"errors": [f"no handler for route {self.path}"]})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
