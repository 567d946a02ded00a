"""An audit webhook receiver, as a MinIO user runs one: every POST's body (one JSON audit
entry) and Authorization header are appended to OUT as a line of JSON.

    webhook_receiver.py PORT OUT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps({"auth": self.headers.get("Authorization"),
                                "content_type": self.headers.get("Content-Type"),
                                "entry": json.loads(body)}) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    OUT = sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
