#!/usr/bin/env bash
# One warm sandbox per function, reused; a handler that never returns costs a
# 504 and its sandbox; one that kills its process gives 502; both recover.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: life
functions:
  count: { handler: f.lua#count }
  spin:  { handler: f.lua#spin, timeout: 300ms }
  hang:  { handler: f.lua#hang, timeout: 10s }
routes:
  - { method: GET, path: /count, function: count }
  - { method: GET, path: /spin, function: spin }
  - { method: GET, path: /hang, function: hang }
YAML
cat >"$T/app/f.lua" <<'LUA'
local n = 0
return {
  count = function(req, ctx) n = n + 1; return { status = 200, json = { n = n } } end,
  spin = function(req, ctx) while true do end end,
  hang = function(req, ctx) local t = os.clock() + 5; while os.clock() < t do end; return "done" end,
}
LUA
tine deploy "$T/app" >/dev/null
first=$(tine --json invoke life count)
second=$(tine --json invoke life count)
check_contains "first call is cold" '"cold":true' "$first"
check_contains "second call is warm" '"cold":false' "$second"
check_contains "state kept in the warm sandbox" '\"n\":2' "$second"
pools=$(admin GET /sandboxes)
check "one sandbox served both" "1" "$(echo "$pools" | grep -o '"pid":' | wc -l | tr -d ' ')"
check_contains "it counted two invocations" '"invocations":2' "$pools"

out=$(http GET /life/spin)
check_contains "spinning handler: 504" "504" "$out"
check_contains "504 names the timeout" "timed out" "$out"
check_contains "count still served" '200 {"n":3}' "$(http GET /life/count)"
out=$(http GET /life/spin)
check_contains "a fresh sandbox replaced the killed one" "504" "$out"

# A sandbox that dies mid-invocation (here: SIGSEGV from outside) gives 502.
crash_one() {
  http GET /life/hang >"$T/crash.out" &
  local req=$!
  local pid=""
  wait_for 5 bash -c "curl -s -H 'Authorization: Bearer $TOKEN' $URL/_tine/v1/sandboxes | grep -q '\"function\":\"hang\"'"
  for _ in $(seq 1 100); do
    pid=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/sandboxes" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["function"] == "hang":
        for s in p["sandboxes"]:
            if s["state"] == "busy": print(s["pid"])')
    [ -n "$pid" ] && break
    sleep 0.02
  done
  kill -SEGV "$pid"
  wait "$req"
  cat "$T/crash.out"
}
out=$(crash_one)
check_contains "dead sandbox: 502" "502" "$out"
check_contains "502 names the crash" "crashed" "$out"
out=$(crash_one)
check_contains "replaced after a crash" "502" "$out"
check_contains "node serves on" '200 {"n":4}' "$(http GET /life/count)"
finish
