#!/usr/bin/env bash
# Python functions (runtime: python) on a real tined and python3: the
# handler contract (requests, events, ctx, every kind of return value,
# errors with the trace in the logs, print as log lines), warm sandboxes
# that keep their interpreter, pools and timeouts, the SDK's host calls
# (log, env, kv, http, invoke and invoke_async between Python and Lua
# functions, emit), and the version's zygote following deploys.
. "$(dirname "$0")/lib.sh"
start_redis
start_http_fixture
start_node a --redis "$REDIS_URL"

mkdir -p "$T/py/src"
cat >"$T/py/tine.yaml" <<YAML
app: py
env: { GREETING: hello }
defaults: { runtime: python, timeout: 2s }
functions:
  hello:  { handler: src/app.py#hello }
  echo:   { handler: src/app.py#echo, env: { EXTRA: "1" } }
  kinds:  { handler: src/app.py#kinds }
  boom:   { handler: src/app.py#boom }
  count:  { handler: src/app.py#count, concurrency: 1 }
  spin:   { handler: src/app.py#spin, timeout: 500ms }
  sdk:    { handler: src/sdk.py#run }
  whoami: { handler: src/app.py#whoami }
  lua:    { runtime: lua, handler: l.lua#call_python }
  on_ev:  { handler: src/sdk.py#on_event }
allow_outbound: [ "127.0.0.1" ]
routes:
  - { method: GET,  path: /hello, function: hello }
  - { method: ANY,  path: /echo/:id, function: echo }
  - { method: GET,  path: /kinds/:k, function: kinds }
  - { method: GET,  path: /boom, function: boom }
  - { method: GET,  path: /count, function: count }
  - { method: GET,  path: /spin, function: spin }
  - { method: POST, path: /sdk, function: sdk }
  - { method: GET,  path: /lua, function: lua }
triggers:
  - { on: event, type: py.test, function: on_ev }
YAML
cat >"$T/py/src/app.py" <<'PY'
import json
import os
import time

import tine

N = 0

def hello(req, ctx):
    return "hello from python"

def echo(req, ctx):
    print("echo called with", req["params"]["id"])
    return {"method": req["method"], "path": req["path"], "params": req["params"], "query": req["query"],
            "query_string": req["query_string"], "ct": req["headers"].get("content-type"),
            "body": req["body"].decode(), "ctx": {k: v for k, v in ctx.items() if k != "remaining_ms"},
            "remaining_ok": 0 < ctx["remaining_ms"]() <= 2000,
            "env": dict(tine.env.items()), "os_env": os.environ.get("EXTRA")}

def kinds(req, ctx):
    k = req["params"]["k"]
    if k == "none":
        return None
    if k == "bytes":
        return b"\x00\x01raw"
    if k == "list":
        return [1, "two", None]
    if k == "status":
        return {"status": 418, "headers": {"X-Tea": "yes", "X-N": 3}, "body": "teapot"}
    if k == "json":
        return {"status": 201, "json": {"made": True}}
    if k == "nan":
        return {"x": float("nan")}
    if k == "int":
        return 42
    if k == "badstatus":
        return {"status": 99}
    if k == "badheader":
        return {"status": 200, "headers": {"X-Bad": "a\r\nb"}}

def boom(req, ctx):
    print("about to fail")
    raise ValueError("kaboom: a python error")

def count(req, ctx):
    global N
    N += 1
    return str(N)

def whoami(event, ctx):
    return {"fn": ctx["function"], "event": event}

def spin(req, ctx):
    while True:
        pass
PY
# A package the app carries (pip install --target vendor ...).
mkdir -p "$T/py/vendor/greetlib"
printf 'GREETING = "from a vendored package"\n' >"$T/py/vendor/greetlib/__init__.py"
cat >"$T/py/src/sdk.py" <<'PY'
import json
import greetlib
import tine

def run(req, ctx):
    # The body is Python code run with tine in scope; `result` is returned.
    scope = {"tine": tine, "json": json, "req": req}
    try:
        exec(req["body"].decode(), scope)
    except tine.Error as e:
        return {"status": 500, "body": "tine.Error: %s" % e}
    except Exception as e:
        return {"status": 500, "body": "%s: %s" % (type(e).__name__, e)}
    return scope.get("result")

def on_event(event, ctx):
    tine.kv.set("event-seen", event["data"]["n"])
PY
cat >"$T/py/l.lua" <<'LUA'
local tine = require "tine"
return { call_python = function(req, ctx)
  local r, info = tine.invoke("whoami", { from = "lua" })
  return { from_python = r.fn, st = info.status }
end }
LUA
out=$(run tine deploy "$T/py")
check_contains "a Python app deploys" "py" "$out"

check "a hello answer" "200 hello from python" "$(http GET /py/hello)"
out=$(http POST "/py/echo/7?a=1&b=x%20y" -H 'Content-Type: text/plain' --data-binary 'the body')
check_contains "status 200" "200 {" "$out"
j=${out#200 }
check "the request as Python sees it" \
  "POST|/echo/7|{'id': '7'}|{'a': '1', 'b': 'x y'}|a=1&b=x%20y|text/plain|the body|True" \
  "$(pyget "$j" '"|".join(str(x) for x in (d["method"], d["path"], d["params"], d["query"], d["query_string"], d["ct"], d["body"], d["remaining_ok"]))')"
check "ctx" "py|echo|2000|128|32" \
  "$(pyget "$j" '"|".join(str(x) for x in (d["ctx"]["app"], d["ctx"]["function"], d["ctx"]["timeout_ms"], d["ctx"]["memory_mb"], len(d["ctx"]["invocation_id"])))')"
check "env: the app's and the function's, in tine.env and os.environ" "{'EXTRA': '1', 'GREETING': 'hello'}|1" \
  "$(pyget "$j" 'str(dict(sorted(d["env"].items()))) + "|" + d["os_env"]')"

check "None is 204" "204 " "$(http GET /py/kinds/none)"
out=$(curl -s -D - "$URL/py/kinds/bytes" -o "$T/bytes")
check_contains "bytes are application/octet-stream" "content-type: application/octet-stream" "$out"
check "the bytes as they were" "0000000 0100 6172 0077" "$(od -x "$T/bytes" | head -1)"
check "a list is JSON" '200 [1,"two",null]' "$(http GET /py/kinds/list)"
out=$(curl -s -i "$URL/py/kinds/status")
check_contains "status and headers" "HTTP/1.1 418" "$out"
check_contains "a number header" "x-n: 3" "$out"
check_contains "a body" "teapot" "$out"
check "json with a status" '201 {"made":true}' "$(http GET /py/kinds/json)"
out=$(http GET /py/kinds/nan)
check_contains "NaN cannot be a response: 500" '500 {"error":"function raised an error (invocation' "$out"
check "an int is no response: 500" 500 "$(http GET /py/kinds/int | cut -c1-3)"
check "a bad status: 500" 500 "$(http GET /py/kinds/badstatus | cut -c1-3)"
check "a header with CRLF: 500" 500 "$(http GET /py/kinds/badheader | cut -c1-3)"

out=$(http GET /py/boom)
check_contains "an exception is a 500 naming the invocation" '500 {"error":"function raised an error (invocation' "$out"
id=$(python3 -c 'import json,sys,re; print(re.search(r"invocation ([0-9a-f]+)", sys.argv[1]).group(1))' "$out")
logs=$(logs_of py boom "about to fail")
check_contains "the error in the activation's logs" "raised: ValueError: kaboom: a python error" "$logs"
check_contains "with its trace" 'in boom' "$logs"
check_contains "print lines are log lines" "about to fail" "$logs"
logs=$(logs_of py echo "echo called")
check_contains "print in a call that succeeded" "echo called with 7" "$logs"

check "a warm sandbox keeps its interpreter (1)" "200 1" "$(http GET /py/count)"
check "a warm sandbox keeps its interpreter (2)" "200 2" "$(http GET /py/count)"
out=$(http GET /py/spin)
check_contains "a spinning handler times out: 504" "504" "$out"
check "the node serves on" "200 hello from python" "$(http GET /py/hello)"

# The SDK's host calls.
sdk() { http POST /py/sdk --data-binary "$1"; }
check "kv.set" "200 true" "$(sdk 'result = str(tine.kv.set("k1", "v1")).lower()')"
check "kv.get" "200 v1" "$(sdk 'result = tine.kv.get("k1")')"
check "kv.get missing" "200 None" "$(sdk 'result = str(tine.kv.get("nope"))')"
check "kv.incr" "200 5" "$(sdk 'tine.kv.incr("n", 2); result = str(tine.kv.incr("n", 3))')"
check "kv.keys" '200 ["k1","n"]' "$(sdk 'result = tine.kv.keys()')"
check "kv.delete" "200 True False" "$(sdk 'result = "%s %s" % (tine.kv.delete("k1"), tine.kv.delete("k1"))')"
check "kv with a ttl expires" "200 None" "$(sdk 'import time; tine.kv.set("t", "x", ttl=0.05); time.sleep(0.2); result = str(tine.kv.get("t"))')"
check "kv.incr on text: tine.Error naming the call" "500 tine.Error: tine.kv.incr:" \
  "$(sdk 'tine.kv.set("txt", "abc"); tine.kv.incr("txt")' | cut -c1-29)"
check "a bad argument: TypeError" "500 TypeError: tine.kv.get: the key must be a non-empty string" "$(sdk 'tine.kv.get(3)')"
out=$(sdk "r = tine.http.request('http://127.0.0.1:$FIX/echo', method='POST', headers={'X-A': 'b'}, body='sent'); result = {'st': r['status'], 'body': json.loads(r['body'])}")
check "http.request to an allowed host" "200|POST|sent" \
  "$(pyget "${out#200 }" '"%s|%s|%s" % (d["st"], d["body"]["method"], d["body"]["body"])')"
out=$(sdk "tine.http.request('http://localhost:$FIX/hello')")
check_contains "http.request to a host not allowed: tine.Error" "500 tine.Error: tine.http:" "$out"
out=$(sdk 'r, info = tine.invoke("whoami", {"x": 1}); result = {"st": info["status"], "r": r, "id": len(info["invocation_id"])}')
check "invoke returns (result, info)" '200 {"st":200,"r":{"fn":"whoami","event":{"x":1}},"id":32}' "$out"
out=$(sdk 'r, info = tine.invoke("hello"); result = {"r": r, "ct": info["headers"]["content-type"]}')
check "invoke of a text answer" '200 {"r":"hello from python","ct":"text/plain; charset=utf-8"}' "$out"
out=$(sdk 'tine.invoke("boom", {})')
check_contains "invoke of a function that raised: tine.Error" "500 tine.Error: tine.invoke: boom raised: ValueError: kaboom" "$out"
out=$(sdk 'result = str(len(tine.invoke_async("hello", {})))')
check "invoke_async returns an invocation id" "200 32" "$out"
out=$(http GET /py/lua)
check "Lua invokes Python" 'whoami 200' "$(pyget "${out#200 }" 'd["from_python"] + " " + str(d["st"])')"
out=$(sdk 'result = tine.emit("py.test", {"n": 7})')
check_contains "emit returns an event id" "200 " "$out"
wait_for 10 bash -c "[ \"\$(redis-cli -s $T/redis.sock get tine:kv:py:event-seen)\" = 7 ]" && ok "an event reaches a Python function" \
  || fail "an event reaches a Python function" "kv event-seen is $(redis-cli -s "$T/redis.sock" get tine:kv:py:event-seen)"
check "a vendored package is importable" "200 from a vendored package" "$(sdk 'import greetlib; result = greetlib.GREETING')"
check "tine.log lines" "200 None" "$(sdk 'tine.log("a", 1); tine.log.error("bad"); result = "None"')"
logs=$(logs_of py sdk "bad")
check_contains "tine.log.error in the logs" "bad" "$logs"

# A new version: a new zygote that imported the new code; the old one goes.
sed -i 's/hello from python/hello again/' "$T/py/src/app.py"
run tine deploy "$T/py" >/dev/null
check "the new version's code" "200 hello again" "$(http GET /py/hello)"
# zygotes_of VERSION: this node's Python zygotes of app py at VERSION, and
# their sandboxes.
zygotes_of() {
  ps -eo pid=,ppid=,args= | awk -v root="$NODE_PID" -v v="\"version\":$1," '
    { parent[$1] = $2; if (index($0, "tine_zygote.py") && index($0, v)) z[$1] = 1 }
    END { for (p in z) { q = parent[p]; n = 0
            while (q != root && (q in parent) && n++ < 64) q = parent[q]
            if (q == root) print p } }'
}
no_old_zygote() { [ -z "$(zygotes_of 1)" ]; }
wait_for 10 no_old_zygote && ok "the old version's zygote is gone" || fail "the old version's zygote is gone" "$(zygotes_of 1)"
# (its sandboxes, forks of it, have its command line too)
[ -n "$(zygotes_of 2)" ] && ok "the new version's zygote runs" || fail "the new version's zygote runs" "none"
check_json_log "$T/a.log"
finish
