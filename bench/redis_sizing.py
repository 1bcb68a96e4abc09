#!/usr/bin/env python3
"""What tine asks of its Redis: commands, bytes and Redis CPU time per unit
of work, measured on a master with one replica (loopback TCP), as
docs/cluster.md ("Sizing") uses them.

  bench/redis_sizing.py [SECONDS]       (default 10 per scenario)

For each scenario the master's counters are reset (CONFIG RESETSTAT), the
work runs at a fixed rate for SECONDS, and the deltas of INFO commandstats,
stats (bytes from and to clients, to the replica) and cpu are divided by
the units of work, after subtracting what the idle nodes cost over the same
time (measured first). Scenarios:

  idle         nodes doing nothing: per node and second (1 node, then 4)
  http         GET of a function that answers "hi" (activation records on)
  http-norec   the same on a node with --activations off
  kv           a function doing tine.kv.set and tine.kv.get (minus http)
  event        one CloudEvent posted (202 once stored and confirmed by the
               replica) and delivered to a function doing nothing

The column units/s/core is how many units a second one Redis core would
take at 100 % (1 s / Redis CPU per unit): plan for half of it. A second
table splits the time spent inside commands by command.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BIN = os.environ.get("TINE_BIN_DIR", os.path.join(SRC, "build", "bin"))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
T = tempfile.mkdtemp(prefix="tine-sizing.")
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_until(what, test, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if test():
                return
        except Exception:  # noqa: BLE001 (not there yet)
            pass
        time.sleep(0.05)
    raise SystemExit("timed out waiting for " + what)


def redis_cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port)] + [str(a) for a in args], capture_output=True, text=True,
                          check=True).stdout


def start_redis(port, *extra):
    d = os.path.join(T, "redis-%d" % port)
    os.makedirs(d)
    procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d, "--save",
                                   "", "--appendonly", "no", "--logfile", os.path.join(d, "log")] + list(extra)))
    wait_until("redis on %d" % port, lambda: redis_cli(port, "ping").strip() == "PONG")


def start_node(name, redis_port, *extra):
    d = os.path.join(T, name)
    os.makedirs(d)
    log = open(os.path.join(T, name + ".log"), "w")
    p = subprocess.Popen([os.path.join(BIN, "tined"), "--listen", "127.0.0.1:0", "--state-dir", d, "--sdk-dir",
                          os.path.join(SRC, "sdk", "lua"), "--no-auth", "--docker-events", "off", "--node-id", name,
                          "--redis", "redis://127.0.0.1:%d" % redis_port] + list(extra), stdout=log, stderr=log)
    procs.append(p)
    wait_until(name, lambda: os.path.getsize(os.path.join(d, "port")) > 0)
    return p, int(open(os.path.join(d, "port")).read())


def info(port):
    out = {"commands": {}, "usec": {}}
    for line in redis_cli(port, "info", "all").splitlines():
        if line.startswith("cmdstat_"):
            name, rest = line[len("cmdstat_"):].split(":", 1)
            fields = dict(kv.split("=") for kv in rest.split(","))
            out["commands"][name] = int(fields["calls"])
            out["usec"][name] = int(fields["usec"])
        elif ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def measure(port, seconds, work):
    """Resets the master's counters, runs work(seconds) (returns the units
    done) and returns (units, deltas)."""
    redis_cli(port, "config", "resetstat")
    before = info(port)
    t0 = time.time()
    units = work(seconds)
    elapsed = time.time() - t0
    time.sleep(0.3)  # the last batches (activation records) land
    after = info(port)
    d = {
        "elapsed": elapsed + 0.3,
        "commands": dict(after["commands"]),
        "usec": dict(after["usec"]),
        "in": int(after["total_net_input_bytes"]),
        "out": int(after["total_net_output_bytes"]),
        "repl": int(after.get("total_net_repl_output_bytes", 0)),
        "cpu": float(after["used_cpu_user"]) + float(after["used_cpu_sys"]) -
        float(before["used_cpu_user"]) - float(before["used_cpu_sys"]),
    }
    return units, d


def paced(seconds, rate, step):
    n, period, due, end = 0, 1.0 / rate, time.monotonic(), time.monotonic() + seconds
    while time.monotonic() < end:
        step()
        n += 1
        due += period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return n


def http_work(port, path, rate, method="GET", body=None, headers=None, want=200):
    def work(seconds):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def step():
            c.request(method, path, body, headers or {})
            r = c.getresponse()
            r.read()
            if r.status != want:
                raise SystemExit("%s %s answered %d" % (method, path, r.status))
        return paced(seconds, rate, step)
    return work


def event_work(port, rate):
    n = [0]

    def body():
        n[0] += 1
        return json.dumps({"specversion": "1.0", "id": "sz-%d" % n[0], "source": "/sizing", "type": "sz.ev"})

    def work(seconds):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def step():
            c.request("POST", "/_tine/v1/events", body(), {"Content-Type": "application/cloudevents+json"})
            r = c.getresponse()
            r.read()
            if r.status != 202:
                raise SystemExit("event ingest answered %d" % r.status)
        return paced(seconds, rate, step)
    return work


def per_unit(units, d, idle=None):
    """The deltas per unit, the idle background over the same time taken out."""
    out = {"commands": {}}
    for name, calls in d["commands"].items():
        bg = idle["commands"].get(name, 0) * d["elapsed"] if idle else 0
        v = (calls - bg) / units
        if v > 0.005:
            out["commands"][name] = v
    out["usec"] = {}
    for name, us in d["usec"].items():
        bg = idle["usec"].get(name, 0) * d["elapsed"] if idle else 0
        v = (us - bg) / units
        if v > 0.05:
            out["usec"][name] = v
    for k in ("in", "out", "repl", "cpu"):
        bg = idle[k] * d["elapsed"] if idle else 0
        out[k] = max(0.0, (d[k] - bg) / units)
    return out


def per_second(d):
    return {"commands": {k: v / d["elapsed"] for k, v in d["commands"].items()},
            "usec": {k: v / d["elapsed"] for k, v in d["usec"].items()},
            **{k: d[k] / d["elapsed"] for k in ("in", "out", "repl", "cpu")}}


def minus(a, b):
    out = {"commands": {k: a["commands"].get(k, 0) - b["commands"].get(k, 0) for k in a["commands"]}}
    out["commands"] = {k: v for k, v in out["commands"].items() if v > 0.005}
    out["usec"] = {k: a["usec"].get(k, 0) - b["usec"].get(k, 0) for k in a["usec"]}
    out["usec"] = {k: v for k, v in out["usec"].items() if v > 0.05}
    for k in ("in", "out", "repl", "cpu"):
        out[k] = max(0.0, a[k] - b[k])
    return out


rows = []


def row(name, unit, u):
    total = sum(u["commands"].values())
    top = ", ".join("%s %.2f" % (k, v) for k, v in sorted(u["commands"].items(), key=lambda kv: -kv[1])[:6])
    cap = 1.0 / u["cpu"] if u["cpu"] > 0 else float("inf")
    cmd_us = sum(u["usec"].values())
    slow = ", ".join("%s %.1f" % (k, v) for k, v in sorted(u["usec"].items(), key=lambda kv: -kv[1])[:4])
    rows.append((name, unit, total, top, u["in"], u["out"], u["repl"], u["cpu"] * 1e6, cap, cmd_us, slow))


def main():
    master, replica = free_port(), free_port()
    start_redis(master)
    start_redis(replica, "--replicaof", "127.0.0.1", str(master))
    wait_until("the replica", lambda: "master_link_status:up" in redis_cli(replica, "info", "replication"))
    _, a = start_node("node-1", master)
    _, b = start_node("node-norec", master, "--activations", "off")
    app = os.path.join(T, "app")
    os.makedirs(app)
    open(os.path.join(app, "tine.yaml"), "w").write(
        "app: sz\nfunctions:\n  hi: { handler: h.lua#hi }\n  kv: { handler: h.lua#kv }\n"
        "  ev: { handler: h.lua#ev }\nroutes:\n  - { method: GET, path: /hi, function: hi }\n"
        "  - { method: GET, path: /kv, function: kv }\ntriggers:\n  - { on: event, type: sz.ev, function: ev }\n")
    open(os.path.join(app, "h.lua"), "w").write(
        'local tine = require "tine"\nlocal M = {}\nfunction M.hi() return "hi" end\n'
        'function M.kv() tine.kv.set("k", "v") return tine.kv.get("k") end\nfunction M.ev() end\nreturn M\n')
    subprocess.run([os.path.join(BIN, "tine"), "--url", "http://127.0.0.1:%d" % a, "--token", "", "deploy", app],
                   check=True, capture_output=True)
    def serves(port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/sz/hi")
        return c.getresponse().status == 200
    for p in (a, b):
        wait_until("the app on %d" % p, lambda: serves(p))
    time.sleep(2)

    # Two nodes are up (node-1, node-norec): their idle cost is the
    # background of every scenario.
    _, d = measure(master, SECONDS, lambda s: time.sleep(s) or 1)
    idle2 = per_second(d)
    extra = [start_node("node-idle-%d" % i, master)[0] for i in range(3)]
    time.sleep(4)  # joined, judging
    _, d = measure(master, SECONDS, lambda s: time.sleep(s) or 1)
    idle5 = per_second(d)
    def per_node(idle, n):
        return {"commands": {k: v / n for k, v in idle["commands"].items()},
                "usec": {k: v / n for k, v in idle["usec"].items()},
                **{k: idle[k] / n for k in ("in", "out", "repl", "cpu")}}
    per_node_2 = per_node(idle2, 2)
    per_node_5 = per_node(idle5, 5)
    row("idle, 2 nodes", "node·s", per_node_2)
    row("idle, 5 nodes", "node·s", per_node_5)
    for p in extra:
        p.send_signal(signal.SIGTERM)
        p.wait()
    time.sleep(4)
    _, d = measure(master, SECONDS, lambda s: time.sleep(s) or 1)
    idle = per_second(d)

    rate = 400
    n, d = measure(master, SECONDS, http_work(a, "/sz/hi", rate))
    http_u = per_unit(n, d, idle)
    row("http (%d/s)" % rate, "call", http_u)
    n, d = measure(master, SECONDS, http_work(b, "/sz/hi", rate))
    row("http, --activations off", "call", per_unit(n, d, idle))
    n, d = measure(master, SECONDS, http_work(a, "/sz/kv", rate))
    row("tine.kv set+get", "call", minus(per_unit(n, d, idle), http_u))
    erate = 200
    n, d = measure(master, SECONDS, event_work(a, erate))
    row("event (%d/s)" % erate, "event", per_unit(n, d, idle))

    print("Redis %s, master with one replica, %g s per scenario" % (
        redis_cli(master, "info", "server").split("redis_version:")[1].split()[0], SECONDS))
    print("%-26s %-7s %9s %10s %10s %10s %11s %12s  %s" % (
        "scenario", "unit", "commands", "bytes in", "bytes out", "repl out", "redis µs", "units/s/core",
        "commands per unit"))
    for r in rows:
        print("%-26s %-7s %9.2f %10.0f %10.0f %10.0f %11.1f %12.0f  %s" % (r[0], r[1], r[2], r[4], r[5], r[6], r[7],
                                                                         r[8], r[3]))
    print("\nTime inside commands (commandstats usec; the rest of Redis's CPU is reading, parsing, replying,")
    print("replication and its own timers):")
    for r in rows:
        print("%-26s %-7s %9.1f µs  %s" % (r[0], r[1], r[9], r[10]))


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
    shutil.rmtree(T, ignore_errors=True)
