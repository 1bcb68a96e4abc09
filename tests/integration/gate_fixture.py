#!/usr/bin/env python3
"""A loopback HTTP server holding requests until the test lets them go, for
functions that must stay busy without using a CPU (a tine.http call waits
here). Listens on 127.0.0.1 on a free port and writes the port to argv[1].

  GET  /wait?gate=NAME   waits until NAME is opened (at most 60 s), then
                         200 "opened NAME" (504 "gate NAME never opened")
  POST /open?gate=NAME   opens NAME (for the waiting and the later ones): 200
  GET  /waiting          200, how many requests wait now
"""
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

gates = {}
waiting = 0
lock = threading.Lock()


def gate(name):
    with lock:
        return gates.setdefault(name, threading.Event())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_any(self):
        global waiting
        url = urlparse(self.path)
        name = parse_qs(url.query).get("gate", [""])[-1]
        if url.path == "/wait" and self.command == "GET":
            with lock:
                waiting += 1
            opened = gate(name).wait(60)
            with lock:
                waiting -= 1
            self.reply(200 if opened else 504, "opened " + name if opened else "gate %s never opened" % name)
        elif url.path == "/open" and self.command == "POST":
            gate(name).set()
            self.reply(200, "open " + name)
        elif url.path == "/waiting":
            with lock:
                self.reply(200, str(waiting))
        else:
            self.reply(404, "no such path")

    do_GET = do_POST = handle_any


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
