#!/usr/bin/env python3
"""Loads a tine node with GET requests from many clients for a while and
writes one line per answer to OUT: "<unix ms> <x-tine-version> <status>".

  load_clients.py URL PATH SECONDS OUT [--threads N] [--clients K]

Each thread keeps one connection and sends its requests with
x-tine-client: c<i> for i cycling over K clients (default 200), so a
split's share is seen across clients. Stops early when the file STOP next
to OUT exists."""
import http.client
import os
import sys
import threading
import time
import urllib.parse


def worker(url, path, until, out, lock, first, step, clients, stop):
    u = urllib.parse.urlparse(url)
    conn = None
    i = first
    while time.time() < until and not os.path.exists(stop):
        try:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conn.request("GET", path, headers={"x-tine-client": "c%d" % (i % clients)})
            r = conn.getresponse()
            r.read()
            line = "%d %s %d\n" % (int(time.time() * 1000), r.getheader("x-tine-version") or "0", r.status)
        except (OSError, http.client.HTTPException):
            conn = None
            line = "%d 0 0\n" % int(time.time() * 1000)
            time.sleep(0.05)
        with lock:
            out.write(line)
            out.flush()
        i += step


def main():
    url, path, seconds, outp = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    threads, clients = 4, 200
    args = sys.argv[5:]
    while args:
        if args[0] == "--threads":
            threads = int(args[1])
        elif args[0] == "--clients":
            clients = int(args[1])
        args = args[2:]
    until = time.time() + seconds
    lock = threading.Lock()
    stop = os.path.join(os.path.dirname(outp) or ".", "STOP")
    with open(outp, "a") as out:
        ts = [threading.Thread(target=worker, args=(url, path, until, out, lock, k, threads, clients, stop))
              for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()


main()
