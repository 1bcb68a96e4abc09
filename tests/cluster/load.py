#!/usr/bin/env python3
"""Steady traffic for the cluster test, through the load balancer.

  load.py LB_PORT TOKEN DIR

HTTP: GET /cl/hi on a kept-alive connection at about HTTP_RATE requests a
second; a request fails when it raises, or the answer is not 200 "hi".
Events: one CloudEvent (type cl.flow, id flow-N) per POST /_tine/v1/events
at about EVENT_RATE a second, each answer logged as "ID STATUS TIME" in
DIR/events.log (status 0: no answer; TIME: when it came, unix seconds).

DIR/http.stat holds "SENT FAILED" (rewritten every 100 ms) and every failure
is logged with its time in DIR/http.failures. The load stops when DIR/stop
exists.
"""
import http.client
import json
import os
import sys
import threading
import time

HTTP_RATE = 300
EVENT_RATE = 20

port, token, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
stop_file = os.path.join(out, "stop")
lock = threading.Lock()
sent = failed = 0


def stopped():
    return os.path.exists(stop_file)


def paced(rate, step):
    """Calls step() about `rate` times a second until the stop file appears."""
    period = 1.0 / rate
    due = time.monotonic()
    while not stopped():
        step()
        due += period
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            due = time.monotonic()


def http_load():
    conn = [None]
    failures = open(os.path.join(out, "http.failures"), "a", buffering=1)

    def step():
        global sent, failed
        ok = False
        why = ""
        try:
            if conn[0] is None:
                conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn[0].request("GET", "/cl/hi")
            r = conn[0].getresponse()
            body = r.read()
            ok = r.status == 200 and body == b"hi"
            why = "%d %s" % (r.status, body[:200])
            if r.getheader("connection", "").lower() == "close":
                conn[0].close()
                conn[0] = None
        except Exception as e:  # noqa: BLE001 (every failure counts)
            why = repr(e)
            conn[0] = None
        with lock:
            sent += 1
            if not ok:
                failed += 1
                failures.write("%.3f %s\n" % (time.time(), why))

    paced(HTTP_RATE, step)


def event_load():
    log = open(os.path.join(out, "events.log"), "a", buffering=1)
    n = [0]

    def step():
        n[0] += 1
        eid = "flow-%d" % n[0]
        body = json.dumps({"specversion": "1.0", "id": eid, "source": "/cluster-test", "type": "cl.flow"})
        status = 0
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/_tine/v1/events", body, {
                "Authorization": "Bearer " + token, "Content-Type": "application/cloudevents+json"})
            r = c.getresponse()
            r.read()
            status = r.status
            c.close()
        except Exception:  # noqa: BLE001 (no answer: status 0)
            pass
        log.write("%s %d %.3f\n" % (eid, status, time.time()))

    paced(EVENT_RATE, step)


def write_stat():
    with lock:
        text = "%d %d\n" % (sent, failed)
    tmp = os.path.join(out, "http.stat.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out, "http.stat"))


threads = [threading.Thread(target=http_load), threading.Thread(target=event_load)]
for t in threads:
    t.start()
while not stopped():
    write_stat()
    time.sleep(0.1)
for t in threads:
    t.join()
write_stat()
