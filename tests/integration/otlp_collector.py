#!/usr/bin/env python3
"""A small OTLP/HTTP JSON collector for test_otlp.sh. Listens on 127.0.0.1
on a free port, writes the port to argv[1] and appends each request it gets
to argv[2] as one JSON line {"path","content_type","body"} (body parsed).
POST /fail answers 500 (a collector that refuses); anything else 200 {}.
It checks nothing itself: the test checks the spans' shape."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw.decode("utf-8", "replace")}
        with open(sys.argv[2], "a") as f:
            f.write(json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                "body": body}) + "\n")
        status = 500 if self.path == "/fail" else 200
        out = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
server.serve_forever()
