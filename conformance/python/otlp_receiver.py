"""A small OTLP/HTTP trace receiver: `python otlp_receiver.py OUT_FILE`. Prints its port, then
decodes every ExportTraceServiceRequest (protobuf) posted to /v1/traces and appends one JSON
line per span to OUT_FILE: name, trace id, span id, parent span id."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

OUT = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
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
