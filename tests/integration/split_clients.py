#!/usr/bin/env python3
"""Sends GET requests to a tine node over one kept-alive connection and
prints how many answers each version served (x-tine-version), as JSON.

  split_clients.py URL PATH N [--header NAME] [--same ID]

With --header each request carries NAME: client-<i> (i = 0..N-1), or
NAME: ID for every request with --same; without --header the requests
carry no client header (the node keys on the address)."""
import http.client
import json
import sys
import urllib.parse


def main():
    url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    header = same = None
    args = sys.argv[4:]
    while args:
        if args[0] == "--header":
            header = args[1]
        elif args[0] == "--same":
            same = args[1]
        args = args[2:]
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    counts = {}
    for i in range(n):
        headers = {}
        if header:
            headers[header] = same if same is not None else "client-%d" % i
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read().decode()
        v = r.getheader("x-tine-version") or "none"
        if r.status != 200:
            v = "status-%d" % r.status
        # The body names the version too: both must agree.
        if r.status == 200 and not body.endswith(" " + v):
            v = "mismatch"
        counts[v] = counts.get(v, 0) + 1
    print(json.dumps(counts, sort_keys=True))


main()
