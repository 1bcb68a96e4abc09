#!/usr/bin/env python3
"""HTTP/1.1 over raw sockets for the gateway's security tests.

  http_raw.py exchange URL REQUEST...
      Sends each REQUEST (a Python string literal: escapes such as \\r\\n are
      decoded) on one connection, one at a time, reading each response by
      the rules of RFC 9112 (no body for HEAD, 1xx, 204 and 304; else
      Content-Length, chunked, or until close). After each response it waits
      a moment and reports any byte the server sent beyond it ("extra"): a
      response with a body where HTTP forbids one shows up there. Prints a
      JSON list of {status, reason, headers, body, extra, closed}.

  http_raw.py bodies URL --conns N --size BYTES --path P [--header H]...
                     [--pid PID] [--hold SECONDS] [--probe PATH]
      Opens N connections, sends on each a POST head with Content-Length
      BYTES and all of the body but its last byte, so that every body is in
      flight at once; then samples the VmRSS of PID for SECONDS (and makes
      one ordinary GET of PROBE on a connection of its own meanwhile), sends
      the last bytes and reads every response. Prints JSON: rss_before_kib,
      rss_max_kib, statuses (count per status, "error" for a connection that
      failed), one body and one set of headers per status, the probe's
      status and body.

  http_raw.py connections URL --count N --probe PATH
      Holds N idle connections, opens one more and reads what the server
      sends on it without a request; then closes the N and GETs PROBE on a
      new connection. Prints JSON {over_limit: {status, headers, body,
      closed}, after: {status, body}}.

  http_raw.py split URL --path P --size BYTES --first N
      POSTs a body of BYTES to P in two writes: the first N bytes of the
      request, then (after 0.3 s) the rest. Over TLS with N = 8170 the first
      write is one record of exactly 8192 bytes, which made h2o 2.2.5 drop
      the connection. Prints JSON {status, body} (status 0: it closed).

  http_raw.py reload URL --path P --ready FILE --go FILE [--late-only]
      For a certificate reload (https only): GETs P on a TLS connection,
      opens a second TCP connection without its handshake, creates FILE
      (--ready) and waits for --go to exist; then GETs P again on the first
      connection, makes the second one's handshake and GETs P there, and
      GETs P on a new connection. Prints JSON {before, kept, late, new}: each
      {status, sha256 (the certificate's, upper-case hex with colons)}. With
      --late-only there is no first connection (nor before and kept).

  http_raw.py abort URL --path P --size BYTES --sent N --count K
      K times: POSTs to P a head announcing BYTES of body, sends N of them,
      waits 0.2 s and resets the connection (SO_LINGER 0). Prints nothing.

An https:// URL is spoken over TLS (ALPN http/1.1), trusting the CA file in
$TINE_CACERT (else the system's).
"""
import argparse
import hashlib
import json
import os
import socket
import struct
import ssl
import sys
import threading
import time
import urllib.parse


def connect(url):
    u = urllib.parse.urlsplit(url)
    s = socket.create_connection((u.hostname, u.port or 80), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=os.environ.get("TINE_CACERT") or None)
        ctx.set_alpn_protocols(["http/1.1"])
        s = ctx.wrap_socket(s, server_hostname=u.hostname)
    return s


class Reader:
    """Reads HTTP/1.1 responses from a socket, byte-exact."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.closed = False

    def fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError):
            data = b""  # a TLS peer that closed without close_notify
        if not data:
            self.closed = True
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, method):
        """One response: (status, reason, headers, body); 1xx are skipped."""
        while True:
            status_line = self.line().decode("latin-1")
            parts = status_line.split(" ", 2)
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ""
            headers = []
            while True:
                h = self.line()
                if not h:
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            if 100 <= status < 200:
                continue
            break
        hd = dict(headers)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif "chunked" in hd.get("transfer-encoding", ""):
            body = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                body += self.exactly(size)
                self.exactly(2)
        elif "content-length" in hd:
            body = self.exactly(int(hd["content-length"]))
        else:
            while not self.closed:
                try:
                    self.fill()
                except EOFError:
                    pass
            body, self.buf = self.buf, b""
        return status, reason, headers, body

    def extra(self, wait=0.3):
        """Bytes the server sent beyond the responses read so far."""
        self.sock.settimeout(wait)
        try:
            while True:
                self.fill()
        except (socket.timeout, EOFError):
            pass
        finally:
            self.sock.settimeout(30)
        out, self.buf = self.buf, b""
        return out


def text(b):
    return b.decode("utf-8", "replace")


def exchange(args):
    s = connect(args.url)
    r = Reader(s)
    out = []
    for raw in args.requests:
        req = raw.encode("latin-1").decode("unicode_escape").encode("latin-1")
        method = req.split(b" ", 1)[0].decode()
        try:
            s.sendall(req)
            status, reason, headers, body = r.response(method)
            extra = r.extra()
            out.append({"status": status, "reason": reason, "headers": headers, "body": text(body),
                        "extra": text(extra), "closed": r.closed})
        except (EOFError, OSError) as e:
            out.append({"status": 0, "error": str(e), "closed": True})
            break
    print(json.dumps(out))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bodies(args):
    u = urllib.parse.urlsplit(args.url)
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        args.path, u.netloc, args.size, "".join(h + "\r\n" for h in args.header))).encode()
    body = b"x" * (args.size - 1)
    results = [None] * args.conns
    sent = threading.Semaphore(0)
    go = threading.Event()

    def one(i):
        try:
            s = connect(args.url)
            s.sendall(head)
            for at in range(0, len(body), 262144):
                s.sendall(body[at:at + 262144])
        except OSError as e:
            results[i] = ("error", str(e), {})
            sent.release()
            return
        sent.release()
        go.wait()
        try:
            s.sendall(b"x")
            status, _, headers, rbody = Reader(s).response("POST")
            results[i] = (str(status), text(rbody), dict(headers))
        except (OSError, EOFError, ValueError) as e:
            results[i] = ("error", str(e), {})
        s.close()

    before = rss_kib(args.pid) if args.pid else 0
    threads = [threading.Thread(target=one, args=(i,)) for i in range(args.conns)]
    for t in threads:
        t.start()
    for _ in threads:
        sent.acquire(timeout=60)
    peak = rss_kib(args.pid) if args.pid else 0
    probe = None
    deadline = time.time() + args.hold
    while time.time() < deadline:
        if args.pid:
            peak = max(peak, rss_kib(args.pid))
        if probe is None and args.probe:
            try:
                p = connect(args.url)
                p.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.probe, u.netloc)).encode())
                st, _, _, pb = Reader(p).response("GET")
                probe = {"status": st, "body": text(pb)}
                p.close()
            except (OSError, EOFError, ValueError) as e:
                probe = {"status": 0, "body": str(e)}
        time.sleep(0.05)
    go.set()
    for t in threads:
        t.join(60)
    statuses, samples, headers = {}, {}, {}
    for res in results:
        st, b, h = res if res else ("error", "no result", {})
        statuses[st] = statuses.get(st, 0) + 1
        samples.setdefault(st, b)
        headers.setdefault(st, h)
    print(json.dumps({"rss_before_kib": before, "rss_max_kib": peak, "statuses": statuses, "bodies": samples,
                      "headers": headers, "probe": probe}))


def connections(args):
    u = urllib.parse.urlsplit(args.url)
    held = [connect(args.url) for _ in range(args.count)]
    time.sleep(0.3)
    # One more: the server answers before any request and closes (over
    # TLS it closes during the handshake).
    try:
        extra = connect(args.url)
        time.sleep(0.3)
        r = Reader(extra)
        st, _, headers, body = r.response("GET")
        over = {"status": st, "headers": dict(headers), "body": text(body)}
        try:
            r.fill()
        except EOFError:
            pass
        over["closed"] = r.closed
    except (EOFError, OSError, ValueError) as e:
        over = {"status": 0, "body": str(e), "closed": True}
    for h in held:
        h.close()
    time.sleep(0.3)
    s = connect(args.url)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.probe, u.netloc)).encode())
    st, _, _, body = Reader(s).response("GET")
    print(json.dumps({"over_limit": over, "after": {"status": st, "body": text(body)}}))


def split(args):
    u = urllib.parse.urlsplit(args.url)
    head = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (args.path, u.netloc, args.size)
    req = head.encode() + b"x" * args.size
    try:
        s = connect(args.url)
        time.sleep(0.1)  # the first write arrives alone, after the handshake
        s.sendall(req[:args.first])
        time.sleep(0.3)
        s.sendall(req[args.first:])
        st, _, _, body = Reader(s).response("POST")
        out = {"status": st, "body": text(body)}
    except (EOFError, OSError, ValueError) as e:
        out = {"status": 0, "body": str(e)}
    print(json.dumps(out))


def reload(args):
    u = urllib.parse.urlsplit(args.url)
    ctx = ssl.create_default_context(cafile=os.environ.get("TINE_CACERT") or None)
    ctx.set_alpn_protocols(["http/1.1"])
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (args.path, u.netloc)).encode()

    def get(s):
        try:
            s.sendall(req)
            st, _, _, _ = Reader(s).response("GET")
        except (EOFError, OSError, ValueError):
            st = 0
        digest = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest().upper()
        return {"status": st, "sha256": ":".join(digest[i:i + 2] for i in range(0, 64, 2))}

    def tls(raw):
        return ctx.wrap_socket(raw, server_hostname=u.hostname)

    kept = None if args.late_only else tls(socket.create_connection((u.hostname, u.port), timeout=30))
    before = get(kept) if kept else None
    late = socket.create_connection((u.hostname, u.port), timeout=30)
    time.sleep(0.2)  # the node accepts it before the reload
    open(args.ready, "w").close()
    while not os.path.exists(args.go):
        time.sleep(0.05)
    out = {"before": before, "kept": get(kept) if kept else None, "late": get(tls(late)),
           "new": get(tls(socket.create_connection((u.hostname, u.port), timeout=30)))}
    print(json.dumps(out))


def abort(args):
    u = urllib.parse.urlsplit(args.url)
    head = "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n" % (args.path, u.netloc, args.size)
    for _ in range(args.count):
        s = connect(args.url)
        s.sendall(head.encode() + b"x" * args.sent)
        time.sleep(0.2)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("exchange")
    e.add_argument("url")
    e.add_argument("requests", nargs="+")
    b = sub.add_parser("bodies")
    b.add_argument("url")
    b.add_argument("--conns", type=int, required=True)
    b.add_argument("--size", type=int, required=True)
    b.add_argument("--path", required=True)
    b.add_argument("--header", action="append", default=[])
    b.add_argument("--pid", type=int, default=0)
    b.add_argument("--hold", type=float, default=1.0)
    b.add_argument("--probe", default="")
    c = sub.add_parser("connections")
    c.add_argument("url")
    c.add_argument("--count", type=int, required=True)
    c.add_argument("--probe", required=True)
    sp = sub.add_parser("split")
    sp.add_argument("url")
    sp.add_argument("--path", required=True)
    sp.add_argument("--size", type=int, required=True)
    sp.add_argument("--first", type=int, required=True)
    a = sub.add_parser("abort")
    a.add_argument("url")
    a.add_argument("--path", required=True)
    a.add_argument("--size", type=int, required=True)
    a.add_argument("--sent", type=int, required=True)
    a.add_argument("--count", type=int, required=True)
    r = sub.add_parser("reload")
    r.add_argument("url")
    r.add_argument("--path", required=True)
    r.add_argument("--ready", required=True)
    r.add_argument("--go", required=True)
    r.add_argument("--late-only", action="store_true")
    args = ap.parse_args()
    {"exchange": exchange, "bodies": bodies, "connections": connections, "split": split,
     "reload": reload, "abort": abort}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
