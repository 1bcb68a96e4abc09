#!/usr/bin/env python3
"""A loopback HTTP server for the tine.http tests. Listens on 127.0.0.1 on a
free port and writes the port to the file given as argv[1].

  GET|POST|... /echo          200, JSON {method, path, headers, body}
  GET /delay?ms=N             waits N ms, then 200 "late"
  GET /wait?gate=NAME         waits until NAME is opened (at most 60 s), then
                              200 "opened NAME" (504 "gate NAME never opened")
  POST /open?gate=NAME        opens NAME, for the waiting and the later ones
  GET /big?bytes=N            200 with N bytes of "x"
  GET /status?code=N          status N, body "status N"
  GET /cookies                200 with two Set-Cookie headers
  GET /redirect?to=URL        302 with Location: URL
  GET /peer                   200 "PORT": the client's port (the connection used)
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


gates = {}  # name -> threading.Event, for /wait and /open
gates_lock = threading.Lock()


def gate(name):
    with gates_lock:
        return gates.setdefault(name, threading.Event())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="text/plain", extra=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def handle_any(self):
        url = urlparse(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/echo":
            out = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
            }
            self.reply(200, json.dumps(out), "application/json")
        elif url.path == "/delay":
            time.sleep(int(q.get("ms", "1000")) / 1000)
            self.reply(200, "late")
        elif url.path == "/wait":
            name = q.get("gate", "")
            opened = gate(name).wait(60)
            self.reply(200 if opened else 504, "opened " + name if opened else "gate %s never opened" % name)
        elif url.path == "/open" and self.command == "POST":
            gate(q.get("gate", "")).set()
            self.reply(200, "open")
        elif url.path == "/big":
            self.reply(200, b"x" * int(q.get("bytes", "0")))
        elif url.path == "/status":
            code = int(q.get("code", "200"))
            self.reply(code, "status %d" % code)
        elif url.path == "/redirect":
            self.reply(302, "moved", extra=(("Location", q.get("to", "/")),))
        elif url.path == "/peer":
            self.reply(200, str(self.client_address[1]))
        elif url.path == "/cookies":
            self.reply(200, "ok", extra=(("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")))
        else:
            self.reply(404, "no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
