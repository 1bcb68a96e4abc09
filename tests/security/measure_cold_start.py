#!/usr/bin/env python3
"""Cold start with and without the isolation layers (not a test: it prints
figures). Starts two tined nodes on one Redis, --isolation on and off,
then alternates between them: deploy a new version of the hello app (so
the next request needs a new sandbox) and time one GET from request to
response on a kept-alive connection. Prints p50/p90/p99 per mode.

usage: measure_cold_start.py BIN_DIR SOURCE_DIR [RUNS [PAUSE_MS]]
PAUSE_MS (default 0) waits between the deploy and the request, so the
previous version's sandbox has exited before the cold start is timed."""
import http.client, io, os, subprocess, sys, tarfile, tempfile, time


def bundle(src):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("tine.yaml", "hello.lua"):
            tar.add(os.path.join(src, "functions-examples/hello", name), arcname=name)
    return buf.getvalue()


def wait_port(path):
    for _ in range(400):
        if os.path.exists(path) and open(path).read().strip():
            return int(open(path).read())
        time.sleep(0.05)
    raise SystemExit("tined did not start: " + path)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    bin_dir, src = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    pause = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0
    tmp = tempfile.mkdtemp(prefix="tine-cold-")
    procs = []
    redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", tmp + "/redis.sock", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL)
    procs.append(redis)
    time.sleep(0.3)
    nodes, conns, admin = {}, {}, {}
    try:
        for mode in ("on", "off"):
            state = os.path.join(tmp, mode)
            log = open(state + ".log", "w")
            procs.append(subprocess.Popen([bin_dir + "/tined", "--listen", "127.0.0.1:0", "--state-dir", state,
                                           "--sdk-dir", src + "/sdk/lua", "--redis", "unix://" + tmp + "/redis.sock",
                                           "--no-auth", "--isolation", mode], stdout=log, stderr=log))
            nodes[mode] = wait_port(state + "/port")
        tgz = bundle(src)
        times = {"on": [], "off": []}
        conns = {m: http.client.HTTPConnection("127.0.0.1", p) for m, p in nodes.items()}
        admin = {m: http.client.HTTPConnection("127.0.0.1", p) for m, p in nodes.items()}
        for i in range(runs):
            for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                admin[mode].request("PUT", "/_tine/v1/apps/hello", body=tgz,
                                    headers={"content-type": "application/gzip"})
                r = admin[mode].getresponse()
                r.read()
                assert r.status == 201, r.status
                time.sleep(pause)
                c = conns[mode]
                t0 = time.perf_counter_ns()
                c.request("GET", "/hello/")
                r = c.getresponse()
                body = r.read()
                t1 = time.perf_counter_ns()
                assert r.status == 200 and body == b"hello, world\n", (r.status, body)
                times[mode].append((t1 - t0) / 1e6)
        print("cold start, request to response, hello, %d runs each, %g ms after the deploy (ms):"
              % (runs, pause * 1000))
        print("%-14s %7s %7s %7s %7s" % ("isolation", "p50", "p90", "p99", "max"))
        for mode in ("on", "off"):
            xs = times[mode]
            print("%-14s %7.3f %7.3f %7.3f %7.3f" % (mode, pct(xs, 50), pct(xs, 90), pct(xs, 99), max(xs)))
    finally:
        # Close the connections first: tined's shutdown asserts in h2o when
        # keep-alive connections are still open.
        for c in list(conns.values()) + list(admin.values()):
            c.close()
        for p in reversed(procs):
            p.terminate()
            p.wait()
        subprocess.run(["rm", "-rf", tmp])


main()
