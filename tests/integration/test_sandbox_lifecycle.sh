#!/usr/bin/env bash
# One warm sandbox per function, reused; a handler that never returns costs a
# 504 and its sandbox; one that kills its process gives 502; both recover
# with a fresh sandbox. Bad functions (endless loops, unbounded allocation,
# modules that fail or never finish loading) cost only their own sandbox:
# the node and other apps keep serving.
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
  maybe: { handler: f.lua#maybe, timeout: 300ms, warm: 1 }
  hog:   { handler: f.lua#hog, timeout: 10s, warm: 1 }
  loop:  { handler: f.lua#spin, timeout: 3s }
routes:
  - { method: GET, path: /count, function: count }
  - { method: GET, path: /spin, function: spin }
  - { method: GET, path: /hang, function: hang }
  - { method: GET, path: /maybe, function: maybe }
  - { method: GET, path: /hog, function: hog }
  - { method: GET, path: /loop, function: loop }
YAML
cat >"$T/app/f.lua" <<'LUA'
local n = 0
return {
  count = function(req, ctx) n = n + 1; return { status = 200, json = { n = n } } end,
  spin = function(req, ctx) while true do end end,
  hang = function(req, ctx) local t = os.clock() + 5; while os.clock() < t do end; return "done" end,
  maybe = function(req, ctx) if req.query.spin then while true do end end; return "fine" end,
  hog = function(req, ctx)
    local t, i = {}, 0
    while true do i = i + 1; t[i] = string.rep("x", 65536) .. i end
  end,
}
LUA
# pool FN EXPR: evaluates EXPR on the pool `p` of life.FN in `tine ps --json`.
pool() {
  tine --json ps life | python3 -c '
import json, sys
fn, expr = sys.argv[1:3]
for p in json.load(sys.stdin)["pools"]:
    if p["function"] == fn:
        print(eval(expr))' "$1" "$2"
}
idle_pid() { pool "$1" '" ".join(str(s["pid"]) for s in p["sandboxes"] if s["state"] == "idle")'; }
has_idle() { [ -n "$(idle_pid "$1")" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
tine deploy "$T/app" >/dev/null
first=$(tine --json invoke life count)
second=$(tine --json invoke life count)
check_contains "first call is cold" '"cold":true' "$first"
check_contains "second call is warm" '"cold":false' "$second"
check_contains "state kept in the warm sandbox" '\"n\":2' "$second"
check "one sandbox served both" "1" "$(pool count 'len(p["sandboxes"])')"
check "it counted two invocations" "2" "$(pool count 'p["sandboxes"][0]["invocations"]')"

out=$(http GET /life/spin)
check_contains "spinning handler: 504" "504" "$out"
check_contains "504 names the timeout" "timed out" "$out"
check_contains "count still served" '200 {"n":3}' "$(http GET /life/count)"
out=$(http GET /life/spin)
check_contains "a fresh sandbox replaced the killed one" "504" "$out"

# Timeout: the sandbox is killed, the answer names the invocation, and a new
# sandbox (another pid; here started at once since the function keeps one
# warm) serves the next call.
wait_for 10 has_idle maybe || fail "warm sandbox of maybe" "$(tine ps life)"
old=$(idle_pid maybe)
code=$(curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' "$URL/life/maybe?spin=1")
check "endless loop: 504" "504" "$code"
id=$(tr -d '\r' <"$T/h" | awk 'tolower($1) == "x-tine-invocation-id:" {print $2}')
check_contains "504 names the invocation" "(invocation $id)" "$(cat "$T/b")"
wait_for 10 gone "$old" && ok "the overrunning sandbox was killed" || fail "the overrunning sandbox was killed" "$old"
wait_for 10 has_idle maybe && ok "a fresh warm sandbox replaced it" || fail "a fresh warm sandbox replaced it" "$(tine ps life)"
new=$(idle_pid maybe)
[ -n "$new" ] && [ "$new" != "$old" ] && ok "with a new pid" || fail "with a new pid" "old $old new $new"
check "the new sandbox answers" "200 fine" "$(http GET /life/maybe)"
check "it served that call" "1" "$(pool maybe '[s["invocations"] for s in p["sandboxes"] if s["pid"] == '"$new"'][0]')"

# An endless loop costs only its sandbox: meanwhile other functions and
# other apps are served.
mkdir -p "$T/other"
printf 'app: other\nfunctions:\n  ping: { handler: p.lua#ping }\nroutes:\n  - { method: GET, path: /ping, function: ping }\n' \
  >"$T/other/tine.yaml"
printf 'return { ping = function() return "pong" end }\n' >"$T/other/p.lua"
tine deploy "$T/other" >/dev/null
curl -s -o "$T/loop.out" "$URL/life/loop" &
looping=$!
served=0
for i in $(seq 1 20); do
  [ "$(http GET /other/ping)" = "200 pong" ] && served=$((served + 1))
done
check "another app is served while a handler loops" "20" "$served"
check_contains "another function of the same app too" "200" "$(http GET /life/count)"
wait "$looping" || true
check_contains "the loop itself was stopped at its timeout" "timed out after 3000 ms" "$(cat "$T/loop.out")"

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
  echo "$pid" >>"$T/crash.pids"
  wait "$req"
  cat "$T/crash.out"
}
out=$(crash_one)
check_contains "dead sandbox: 502" "502" "$out"
check_contains "502 names the crash" "crashed" "$out"
out=$(crash_one)
check_contains "replaced after a crash" "502" "$out"
check_contains "node serves on" '200 {"n":' "$(http GET /life/count)"
check "each crash hit a new sandbox" "2" "$(sort -u "$T/crash.pids" | wc -l | tr -d ' ')"

# Unbounded allocation under the sandbox's own address-space limit (from
# `memory`, the isolation layer's rlimit): Lua runs out of memory, the caller
# gets a clear 500, the sandbox is replaced, the node serves on.
if ldd "$BIN/tined" | grep -q libasan; then
  # AddressSanitizer reserves far more address space than any RLIMIT_AS allows.
  skip "out of memory under a memory limit" "AddressSanitizer reserves more address space than RLIMIT_AS allows"
else
  wait_for 10 has_idle hog || fail "warm sandbox of hog" "$(tine ps life)"
  hog=$(idle_pid hog)
  code=$(curl -s -o "$T/b" -w '%{http_code}' "$URL/life/hog")
  check "out of memory: 500" "500" "$code"
  check_contains "500 says it ran out of memory" "function hog ran out of memory (memory: 128 MB)" "$(cat "$T/b")"
  wait_for 10 gone "$hog" && ok "the sandbox that ran out of memory is let go" || fail "out-of-memory sandbox let go" "$hog"
  wait_for 10 has_idle hog && ok "a fresh one replaces it" || fail "a fresh one replaces it" "$(tine ps life)"
fi
check "other apps unaffected" "200 pong" "$(http GET /other/ping)"

# Modules that fail while loading: an error at load time gives 500 for the
# call and does not make a warm pool restart it in a loop; a module that never
# finishes loading is killed after the start limit (its timeout, at least 1 s).
mkdir -p "$T/bad"
cat >"$T/bad/tine.yaml" <<'YAML'
app: bad
functions:
  broken: { handler: b.lua#f, warm: 2 }
  stuck:  { handler: s.lua#f, timeout: 200ms }
routes:
  - { method: GET, path: /broken, function: broken }
  - { method: GET, path: /stuck, function: stuck }
YAML
printf 'error("no config here")\nreturn { f = function() return 1 end }\n' >"$T/bad/b.lua"
printf 'while true do end\nreturn { f = function() return 1 end }\n' >"$T/bad/s.lua"
tine deploy "$T/bad" >/dev/null
out=$(http GET /bad/broken)
check_contains "load error: 500" "500" "$out"
sleep 1
loads=$(grep -c "function broken failed to load" "$T/a.log" || true)
[ "$loads" -le 4 ] && ok "no restart loop of a failing warm pool ($loads loads)" ||
  fail "no restart loop of a failing warm pool" "$loads loads"
start=$(date +%s)
out=$(http GET /bad/stuck)
check_contains "module that never finishes loading: 504" "504" "$out"
check_contains "504 says it did not load" "did not finish loading within 1000 ms" "$out"
[ $(($(date +%s) - start)) -lt 10 ] && ok "stopped within the start limit" || fail "stopped within the start limit" ""
check "node serves on after bad functions" "200 pong" "$(http GET /other/ping)"

# Bodies of 6 MiB go both ways unchanged; a bigger answer is refused by name.
mkdir -p "$T/big"
printf 'app: big\nfunctions:\n  echo: { handler: e.lua#echo }\n  grow: { handler: e.lua#grow }\nroutes:\n  - { method: POST, path: /echo, function: echo }\n  - { method: GET, path: /grow, function: grow }\n' \
  >"$T/big/tine.yaml"
printf 'return {\n  echo = function(req) return { status = 200, body = req.body } end,\n  grow = function() return string.rep("y", 6 * 1024 * 1024 + 100000) end,\n}\n' \
  >"$T/big/e.lua"
tine deploy "$T/big" >/dev/null
head -c $((6 * 1024 * 1024)) /dev/urandom >"$T/in.bin"
code=$(curl -s -o "$T/out.bin" -w '%{http_code}' --data-binary @"$T/in.bin" "$URL/big/echo")
check "6 MiB in and out" "200" "$code"
cmp -s "$T/in.bin" "$T/out.bin" && ok "the body came back unchanged" || fail "the body came back unchanged" "differs"
out=$(http GET /big/grow)
check_contains "an answer over the limit: 502" "502" "$out"
# 6 MiB + 100000 body bytes plus 53 bytes of metadata (status, one content-type header: sandbox/meta.h)
check_contains "502 names the size" "answered with 6391509 bytes, over the limit" "$out"
check "the echo sandbox serves on" "200" "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/in.bin" "$URL/big/echo")"
check_json_log "$T/a.log"
finish
