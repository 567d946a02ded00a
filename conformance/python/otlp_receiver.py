"""A small OTLP/HTTP receiver, as an OpenTelemetry Collector's otlphttp receiver would be:
`python otlp_receiver.py OUT_FILE [--fail-first N]`. Prints its port, then
- decodes every ExportTraceServiceRequest (protobuf) posted to /v1/traces and appends one JSON
  line per span to OUT_FILE: name, trace id, span id, parent span id;
- decodes every ExportLogsServiceRequest posted to /v1/logs (JSON, checked against the
  protocol's messages with protobuf's JSON parser; protobuf also accepted) and appends one JSON
  line per log record: body, attributes, time, severity, trace id.
With --fail-first N it answers 503 to the first N log requests (a collector that is down)."""
import base64
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

OUT = sys.argv[1]
FAIL_FIRST = int(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[2] == "--fail-first" else 0
LOCK = threading.Lock()
FAILED = [0]


def value_of(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [value_of(x) for x in v.array_value.values]
    if kind == "int_value":
        return v.int_value
    return getattr(v, kind) if kind else None


def logs(body, content_type):
    req = ExportLogsServiceRequest()
    if content_type.startswith("application/json"):
        doc = json.loads(body)
        # OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping wants base64.
        for rl in doc.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for r in sl.get("logRecords", []):
                    for k in ("traceId", "spanId"):
                        if k in r:
                            r[k] = base64.b64encode(bytes.fromhex(r[k])).decode()
        json_format.ParseDict(doc, req)
    else:
        req.ParseFromString(body)
    out = []
    for rl in req.resource_logs:
        service = next((a.value.string_value for a in rl.resource.attributes if a.key == "service.name"), "")
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append({"service": service, "scope": sl.scope.name, "time_unix_nano": r.time_unix_nano,
                            "severity": r.severity_text, "body": r.body.string_value,
                            "trace_id": r.trace_id.hex(),
                            "attributes": {a.key: value_of(a.value) for a in r.attributes}})
    return out


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/v1/logs":
            with LOCK:
                if FAILED[0] < FAIL_FIRST:
                    FAILED[0] += 1
                    self.send_response(503)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                try:
                    records = logs(body, self.headers.get("content-type", ""))
                except Exception as e:  # a malformed request is the sender's bug: say so
                    self.send_response(400)
                    msg = str(e).encode()
                    self.send_header("content-length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                with open(OUT, "a") as f:
                    for r in records:
                        f.write(json.dumps(r) + "\n")
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        req = ExportTraceServiceRequest()
        req.ParseFromString(body)
        with open(OUT, "a") as f:
            for rs in req.resource_spans:
                service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        f.write(json.dumps({"name": sp.name, "trace_id": sp.trace_id.hex(), "span_id": sp.span_id.hex(),
                                            "parent": sp.parent_span_id.hex(), "service": service}) + "\n")
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
