#!/usr/bin/env bash
# runtime: exec programs reach the host calls: a pair of pipes on fds 240
# and 241 (TINE_HOSTCALL_FDS) speaking the wire protocol, relayed by the runner
# as the invocation's, so the Python and Node SDKs work unchanged inside an
# exec program and shell scripts have tine-call (kv, emit, invoke, log).
# The node's checks and limits hold: KV belongs to the app, an invoke of a
# missing function fails, a program writing garbage on fd 241 loses its host
# calls and nothing else.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

mkdir -p "$T/ex"
cat >"$T/ex/tine.yaml" <<'YAML'
app: ex
defaults: { runtime: exec, timeout: 5s }
functions:
  sh:      { handler: call.sh }
  py:      { handler: call.py }
  js:      { handler: call.js }
  garbage: { handler: garbage.sh }
  nohost:  { handler: nohost.sh }
  double:  { runtime: lua, handler: l.lua#double }
  on_ev:   { runtime: lua, handler: l.lua#on_event }
routes:
  - { method: GET, path: /sh, function: sh }
  - { method: GET, path: /py, function: py }
  - { method: GET, path: /js, function: js }
  - { method: GET, path: /garbage, function: garbage }
triggers:
  - { on: event, type: ex.test, function: on_ev }
YAML
cat >"$T/ex/call.sh" <<'SH'
#!/bin/sh
set -e
tine-call kv set greeting "hello from sh" --ttl 60
tine-call kv incr hits 2 >/dev/null
n=$(tine-call kv incr hits)
v=$(tine-call kv get greeting)
missing=0; tine-call kv get nope || missing=$?
d=$(tine-call invoke double '{"n":21}')
bad=0; tine-call invoke nosuch '{}' 2>/tmp/err || bad=$?
tine-call emit ex.test '{"n":7}' >/dev/null
tine-call log "a line from tine-call"
keys=$(tine-call kv keys h | tr '\n' ' ')
printf '{"v":"%s","n":%s,"missing":%s,"double":%s,"bad":%s,"err":"%s","keys":"%s"}' \
  "$v" "$n" "$missing" "$d" "$bad" "$(cut -c1-40 /tmp/err)" "$keys"
SH
cat >"$T/ex/call.py" <<'PY'
#!/usr/bin/env python3
import json
import tine
n = tine.kv.incr("py-hits")
r, info = tine.invoke("double", {"n": 5})
try:
    tine.kv.incr("greeting")
    err = None
except tine.Error as e:
    err = str(e)[:22]
print(json.dumps({"n": n, "double": r, "st": info["status"], "err": err, "greeting": tine.kv.get("greeting")}))
PY
cat >"$T/ex/call.js" <<'JS'
#!/usr/bin/env node
const tine = require('tine');
const [r] = tine.invoke('double', { n: 50 });
process.stdout.write(JSON.stringify({ double: r, greeting: tine.kv.get('greeting'), id: tine.invoke_async('double', { n: 1 }).length }));
JS
cat >"$T/ex/garbage.sh" <<'SH'
#!/bin/bash
printf 'this is not a frame at all, not even close.' >&241
sleep 0.2
r=0; tine-call kv get greeting >/dev/null 2>&1 || r=$?
echo "after garbage: $r"
SH
cat >"$T/ex/nohost.sh" <<'SH'
#!/bin/bash
# fds 3 and 4 are the script's own (closed when it starts).
r=0; cat <&3 2>/dev/null || r=$?
echo "$TINE_HOSTCALL_FDS $r"
SH
cat >"$T/ex/l.lua" <<'LUA'
local tine = require "tine"
return {
  double = function(event) return { twice = event.n * 2 } end,
  on_event = function(event) tine.kv.set("event-seen", tostring(event.data.n)) end,
}
LUA
run tine deploy "$T/ex" >/dev/null

out=$(http GET /ex/sh)
check "a shell script: kv, invoke, emit through tine-call" \
  '200 {"v":"hello from sh","n":3,"missing":1,"double":{"twice": 42},"bad":3,"err":"tine-call: tine.invoke: app ex has no fu","keys":"hits "}' \
  "$out"
logs=$(logs_of ex sh "from tine-call")
check_contains "tine-call log is a log line of the invocation" "a line from tine-call" "$logs"
wait_for 10 bash -c "[ \"\$(redis-cli -s $T/redis.sock get tine:kv:ex:event-seen)\" = 7 ]" && ok "tine-call emit reaches a trigger" \
  || fail "tine-call emit reaches a trigger" "$(redis-cli -s "$T/redis.sock" get tine:kv:ex:event-seen)"
check "the Python SDK in an exec program" \
  '200 {"n": 1, "double": {"twice": 10}, "st": 200, "err": "tine.kv.incr: the valu", "greeting": "hello from sh"}' \
  "$(http GET /ex/py)"
check "the Node SDK in an exec program" '200 {"double":{"twice":100},"greeting":"hello from sh","id":32}' "$(http GET /ex/js)"
check "the keys are the app's (tine:kv:ex:...)" "hello from sh" "$(redis-cli -s "$T/redis.sock" get tine:kv:ex:greeting)"
check "garbage on fd 241 ends the program's host calls, not the program" "200 after garbage: 3" "$(http GET /ex/garbage)"
check_contains "and the invocation's log says why" "host calls: the program wrote something else than HOSTCALL frames" \
  "$(logs_of ex garbage "host calls")"
out=$(admin POST /apps/ex/functions/nohost/invoke --data-binary '{}')
check "the program is told where its host calls are; fd 3 is not open" "240,241 1" "$(pyget "${out#* }" 'd["body"].strip()')"
check_contains "tine-call outside an exec program says so" "no host calls here" "$("$SRC/sdk/bin/tine-call" kv get x 2>&1)"
check_json_log "$T/a.log"
finish
