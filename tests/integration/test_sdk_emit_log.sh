#!/usr/bin/env bash
# tine.emit appends a CloudEvent to the Redis stream tine:events (fields app
# and event), with a unique id, the function as its source and the data as
# JSON, and the events module delivers it to a matching trigger (the catcher
# app keeps what it received in its KV space); bad types are refused. tine.log lines reach the node, attached to
# their function, from the caller and from a function it invokes.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
R() { redis-cli -s "$T/redis.sock" "$@"; }

mkdir -p "$T/emitter"
cat >"$T/emitter/tine.yaml" <<'YAML'
app: emitter
functions:
  emit: { handler: e.lua#emit }
  logs: { handler: e.lua#logs }
  helper: { handler: e.lua#helper }
routes:
  - { method: POST, path: /emit, function: emit }
  - { method: GET, path: /logs, function: logs }
YAML
cat >"$T/emitter/e.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.emit(req, ctx)
  local f = assert(load(req.body, "=body", "t", setmetatable({ tine = tine, ctx = ctx }, { __index = _G })))
  local ok, r = pcall(f)
  if not ok then return { status = 500, body = r } end
  return tostring(r)
end
function M.logs(req, ctx)
  tine.log("hello", 42, nil)
  tine.log.error("bad thing:", true)
  print("printed", 1.5)
  tine.invoke("helper", {})
  return "logged"
end
function M.helper() tine.log("from the helper") end
return M
LUA
tine deploy "$T/emitter" >/dev/null
mkdir -p "$T/catcher"
cat >"$T/catcher/tine.yaml" <<'YAML'
app: catcher
functions:
  got: { handler: c.lua#got }
triggers:
  - { on: event, type: "*", function: got }
YAML
cat >"$T/catcher/c.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.got(event, ctx)
  tine.kv.set("last", tine.json.encode(event))
  tine.kv.incr("count")
end
return M
LUA
tine deploy "$T/catcher" >/dev/null
run() { http POST /emitter/emit --data-binary "$1"; }
caught() { R GET tine:kv:catcher:count; }
# last_event N: the event the catcher got last, once it got N in all.
last_event() { wait_for 5 test "$(caught)" = "$1" || true; R --raw GET tine:kv:catcher:last; }

out=$(run 'return tine.emit("order.paid", { total = 3, items = { "a" } }) .. " " .. ctx.invocation_id')
read -r code id inv <<<"$out"
check "emit answers" "200" "$code"
event=$(last_event 1)
ce() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$event" "$1"; }
check "specversion" "1.0" "$(ce 'd["specversion"]')"
check "the id emit returned" "$id" "$(ce 'd["id"]')"
check "source" "tine://emitter/emit" "$(ce 'd["source"]')"
check "type" "order.paid" "$(ce 'd["type"]')"
check "data" '{"items": ["a"], "total": 3}' "$(ce 'json.dumps(d["data"], sort_keys=True)')"
check "datacontenttype" "application/json" "$(ce 'd["datacontenttype"]')"
check "the emitting invocation" "$inv" "$(ce 'd["tineinvocation"]')"
[[ "$(ce 'd["time"]')" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$ ]] \
  && ok "time is RFC 3339" || fail "time" "$(ce 'd["time"]')"

out=$(run 'local a, b = tine.emit("ping"), tine.emit("ping"); return tostring(a ~= b)')
check "ids are unique" "200 true" "$out"
event=$(last_event 3)
check "no data: no data fields" "False" "$(ce '"data" in d or "datacontenttype" in d')"
check "every event reached the trigger" "3" "$(caught)"
check "an empty type" "500 body:1: tine.emit: the event type must be a non-empty string" \
  "$(run 'local r = tine.emit(""); return r')"
check "a type with a newline" "500 body:1: tine.emit: the event type must be 1 to 256 characters without control characters" \
  "$(run 'local r = tine.emit("a\nb"); return r')"
check "a type too long" "500 body:1: tine.emit: the event type must be 1 to 256 characters without control characters" \
  "$(run 'local r = tine.emit(string.rep("t", 257)); return r')"
check "data that cannot be JSON" "500 body:1: tine.emit: data: cannot encode a value of type function at \$.f" \
  "$(run 'local r = tine.emit("t", { f = print }); return r')"
sleep 0.3
check "nothing appended by refused emits" "3" "$(caught)"

# --- logs
check "logs" "200 logged" "$(http GET /emitter/logs)"
wait_for 5 grep -q "from the helper" "$T/a.log"
# Function lines in tined's log are JSON lines with app, version, function and invocation.
fnlines() { python3 -c '
import json, sys
for l in open(sys.argv[1]):
    try: d = json.loads(l)
    except ValueError: continue
    if "invocation" in d: print("%s %s/%s v%s %s" % (d["level"], d["app"], d["function"], d["version"], d["msg"]))' "$T/a.log"; }
check_contains "tine.log" "info emitter/logs v1 hello 42 nil" "$(fnlines)"
check_contains "tine.log.error" "error emitter/logs v1 bad thing: true" "$(fnlines)"
check_contains "print" "info emitter/logs v1 printed 1.5" "$(fnlines)"
check_contains "an invoked function's log" "info emitter/helper v1 from the helper" "$(fnlines)"
finish
