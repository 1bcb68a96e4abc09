#!/usr/bin/env bash
# Sandbox pools: warm sandboxes right after a deploy, reuse of a warm sandbox
# (same pid), concurrency with a bounded queue then 429 + Retry-After, scale
# and evict from the CLI, old versions draining after a deploy, scale to zero
# after the idle timeout, and the node-wide cap evicting the least recently
# used idle sandbox instead of refusing calls.
. "$(dirname "$0")/lib.sh"

# pool APP FN EXPR: evaluates the Python expression EXPR on the pool `p` of
# APP.FN of the newest version in `tine ps --json` (prints nothing if none).
pool() {
  run tine --json ps "$1" | python3 -c '
import json, sys
app, fn, expr = sys.argv[1:4]
ps = sorted((p for p in json.load(sys.stdin)["pools"] if p["function"] == fn), key=lambda p: p["version"])
if ps:
    p = ps[-1]
    print(eval(expr))' "$1" "$2" "$3"
}
pids() { pool "$1" "$2" '" ".join(str(s["pid"]) for s in p["sandboxes"] if s["state"] != "closing")'; }
idle_is() { [ "$(pool "$1" "$2" 'p["idle"]')" = "$3" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
all_gone() { for p in "$@"; do gone "$p" || return 1; done; }
# get NAME PATH: GET in the background, status in $T/NAME.code, body in $T/NAME.body
get() { curl -s -o "$T/$1.body" -w '%{http_code}' "$URL$2" >"$T/$1.code"; }
# Slow handlers wait until the test opens the gate (a tine.kv key of their app).
gate_close() { redis-cli -s "$T/redis.sock" del "tine:kv:$1:gate" >/dev/null; }
gate_open() { redis-cli -s "$T/redis.sock" set "tine:kv:$1:gate" 1 >/dev/null; }

# The node flags of pools refuse bad values, naming the flag.
for bad in "--max-sandboxes 0" "--max-sandboxes lots" "--max-queue -1" "--idle-timeout soon" "--idle-timeout 0s"; do
  out=$(timeout 10 "$BIN/tined" $bad --state-dir "$T/x" 2>&1 || true)
  check_contains "tined $bad refused" "${bad%% *} ${bad#* }: expected" "$out"
done
out=$(TINE_IDLE_TIMEOUT=never timeout 10 "$BIN/tined" --state-dir "$T/x" 2>&1 || true)
check_contains "TINE_IDLE_TIMEOUT read and checked" "--idle-timeout never: expected a duration" "$out"

start_redis
start_node a --redis "$REDIS_URL" --max-queue 1
mkdir -p "$T/pools"
cat >"$T/pools/tine.yaml" <<'YAML'
app: pools
functions:
  count:  { handler: f.lua#count }
  slow:   { handler: f.lua#slow, concurrency: 1, timeout: 20s }
  warmed: { handler: f.lua#warmed, warm: 2, concurrency: 3 }
routes:
  - { method: GET, path: /count, function: count }
  - { method: GET, path: /slow, function: slow }
  - { method: GET, path: /warmed, function: warmed }
YAML
cat >"$T/pools/f.lua" <<'LUA'
local tine = require "tine"
local n = 0
return {
  count = function(req, ctx) n = n + 1; return { status = 200, json = { n = n } } end,
  slow = function(req, ctx)
    local deadline = os.time() + 15
    while not tine.kv.get("gate") and os.time() < deadline do end
    return "slow " .. (req.query.tag or "")
  end,
  warmed = function(req, ctx) return "warm" end,
}
LUA
tine deploy "$T/pools" >/dev/null

# warm: 2 gives two idle sandboxes right after the deploy, without a request.
wait_for 10 idle_is pools warmed 2 && ok "warm: 2 gives two idle sandboxes after deploy" ||
  fail "warm: 2 gives two idle sandboxes after deploy" "$(tine ps pools)"
check "no sandbox for a function without warm" "" "$(pids pools count)"
check_contains "a call to a warm function is not cold" '"cold":false' "$(tine --json invoke pools warmed)"
# warm counts idle sandboxes: one taken by a call is replaced at once.
wait_for 10 idle_is pools warmed 3 && ok "a third starts while one is used; it is idle again after" ||
  fail "a third starts while one is used" "$(tine ps pools)"

# Cold, then warm on the same sandbox.
first=$(tine --json invoke pools count)
pid1=$(pids pools count)
second=$(tine --json invoke pools count)
pid2=$(pids pools count)
check_contains "first call is cold" '"cold":true' "$first"
check_contains "second call is warm" '"cold":false' "$second"
check "the second call reused the sandbox (same pid)" "$pid1" "$pid2"
check "it counted two invocations" "2" "$(pool pools count 'p["sandboxes"][0]["invocations"]')"
table=$(tine ps pools)
check_contains "tine ps shows a table" "APP    VERSION  FUNCTION  PID" "$table"
# Columns are as wide as their widest cell (a pid may have 3 digits or 7).
check "tine ps lists the sandbox" "yes" "$(grep -qE "^pools +1 +count +$pid1 +idle" <<<"$table" && echo yes || echo "no: $table")"
check "cold start time is recorded" "yes" "$(pool pools count '"yes" if p["sandboxes"][0]["cold_start_ms"] > 0 else "no"')"

# Concurrency 1: a second call waits in the queue, a third (queue of 1) gets
# 429 with Retry-After; the two accepted ones are served in turn.
gate_close pools
get s1 "/pools/slow?tag=one" &
r1=$!
slow_busy() { [ "$(pool pools slow 'p["busy"]')" = 1 ]; }
wait_for 20 slow_busy || fail "slow call running" "$(tine ps pools)"
get s2 "/pools/slow?tag=two" &
r2=$!
slow_queued() { [ "$(pool pools slow 'p["queued"]')" = 1 ]; }
wait_for 20 slow_queued && ok "the call over the concurrency waits in the queue" ||
  fail "the call over the concurrency waits in the queue" "$(tine --json ps pools)"
code=$(curl -s -D "$T/h3" -o "$T/b3" -w '%{http_code}' "$URL/pools/slow?tag=three")
check "queue full: 429" "429" "$code"
check_contains "429 says why" "concurrency limit" "$(cat "$T/b3")"
check_contains "429 has Retry-After" "retry-after: 1" "$(tr -d '\r' <"$T/h3" | tr 'A-Z' 'a-z')"
gate_open pools
wait "$r1" "$r2"
check "first slow call served" "200 slow one" "$(cat "$T/s1.code") $(cat "$T/s1.body")"
check "queued slow call served after it" "200 slow two" "$(cat "$T/s2.code") $(cat "$T/s2.body")"
check "concurrency 1 means one sandbox" "1" "$(pids pools slow | wc -w | tr -d ' ')"

# scale and evict.
check "tine scale" "pools.count: 2 warm sandboxes on this node for version 1 (until the next deploy)" \
  "$(tine scale pools count --warm 2)"
wait_for 10 idle_is pools count 2 && ok "scale --warm 2 starts a second idle sandbox" ||
  fail "scale --warm 2 starts a second idle sandbox" "$(tine ps pools)"
out=$(tine scale pools count --warm 11 2>&1 || true)
check_contains "warm over the concurrency refused" "warm: expected an integer from 0 to 10 (the concurrency of count)" "$out"
out=$(tine scale pools nope --warm 1 2>&1 || true)
check_contains "scale of an unknown function refused" "no function named 'nope'" "$out"
check "400 from the API for a bad body" "400" \
  "$(admin PUT /apps/pools/functions/count/scale -d '{"warm":"two"}' | cut -d' ' -f1)"
out=$(tine scale pools count 2>&1 || true)
check_contains "scale without --warm is a usage error" "--warm N is required" "$out"
tine scale pools count --warm 0 >/dev/null
before=$(pids pools count)
check "tine evict" "evicted 2 idle sandboxes of pools.count" "$(tine evict pools count)"
# The answer waits until the evicted processes are gone (memory given back).
all_gone $before && ok "evicted sandboxes are gone when evict answers" ||
  fail "evicted sandboxes are gone when evict answers" "$before"
check "nothing left of count" "" "$(pids pools count)"
check_contains "next call is cold again" '"cold":true' "$(tine --json invoke pools count)"
check "evict with the API" '200 {"evicted":1}' "$(admin DELETE '/apps/pools/sandboxes?function=count')"
check_contains "evict of an unknown app" "404" "$(admin DELETE /apps/nope/sandboxes)"
warm_pids=$(pids pools warmed)
check "evict of a warm function" '{"evicted":3}' "$(tine --json evict pools warmed)"
wait_for 10 idle_is pools warmed 2 && ok "a warm function starts its warm sandboxes again" ||
  fail "a warm function starts its warm sandboxes again" "$(tine ps pools)"
check "with new processes" "yes" "$(all_gone $warm_pids && echo yes)"

# A deploy drains the old version: idle sandboxes exit at once, a busy one
# after its call; the new version starts its own warm sandboxes.
gate_close pools
get d1 "/pools/slow?tag=old" &
r1=$!
wait_for 20 slow_busy || fail "slow call running" "$(tine ps pools)"
old_warm=$(pids pools warmed)
old_slow=$(pids pools slow)
sed -i 's/return "warm"/return "warm v2"/' "$T/pools/f.lua"
tine deploy "$T/pools" >/dev/null
wait_for 10 all_gone $old_warm && ok "old version's idle sandboxes exit after a deploy" ||
  fail "old version's idle sandboxes exit after a deploy" "$(tine ps pools)"
check "the busy one is still there" "$old_slow" "$(pool pools slow '" ".join(str(s["pid"]) for s in p["sandboxes"] if s["state"] == "busy")')"
gate_open pools
wait "$r1"
check "the busy one finished its call on the old version" "200 slow old" "$(cat "$T/d1.code") $(cat "$T/d1.body")"
wait_for 10 all_gone $old_slow && ok "then it exited" || fail "then it exited" "$(tine ps pools)"
check "no pool of version 1 left" "0" "$(run tine --json ps pools | grep -o '"version":1,' | wc -l | tr -d ' ')"
wait_for 10 idle_is pools warmed 2 && ok "version 2 has its two warm sandboxes" ||
  fail "version 2 has its two warm sandboxes" "$(tine ps pools)"
check "version 2 answers" "200 warm v2" "$(http GET /pools/warmed)"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# Scale to zero: idle sandboxes beyond warm exit after the idle timeout. A
# restarted node starts the warm sandboxes of what is live.
start_node b --redis "$REDIS_URL" --idle-timeout 1s
wait_for 10 idle_is pools warmed 2 && ok "a starting node starts warm sandboxes" ||
  fail "a starting node starts warm sandboxes" "$(tine ps pools)"
http GET /pools/count >/dev/null
p=$(pids pools count)
check "one sandbox for count" "1" "$(echo $p | wc -w | tr -d ' ')"
wait_for 10 gone "$p" && ok "idle sandbox exits after the idle timeout" ||
  fail "idle sandbox exits after the idle timeout" "$(tine ps pools)"
check "count scaled to zero" "" "$(pids pools count)"
check "warm sandboxes stay" "2" "$(pool pools warmed 'p["idle"]')"
check "node still serves" '200 {"n":1}' "$(http GET /pools/count)"
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# The node-wide cap: at 2 sandboxes a third function's call evicts the least
# recently used idle sandbox; with none idle, the call waits for one.
redis-cli -s "$T/redis.sock" flushall >/dev/null
start_node c --redis "$REDIS_URL" --max-sandboxes 2
mkdir -p "$T/cap"
cat >"$T/cap/tine.yaml" <<'YAML'
app: cap
functions:
  a: { handler: f.lua#a }
  b: { handler: f.lua#b }
  c: { handler: f.lua#c }
routes:
  - { method: GET, path: /a, function: a }
  - { method: GET, path: /b, function: b }
  - { method: GET, path: /c, function: c }
YAML
cat >"$T/cap/f.lua" <<'LUA'
local tine = require "tine"
local function answer(name)
  return function(req)
    local deadline = os.time() + 15
    while req.query.slow and not tine.kv.get("gate") and os.time() < deadline do end
    return name
  end
end
return { a = answer("a"), b = answer("b"), c = answer("c") }
LUA
tine deploy "$T/cap" >/dev/null
check "a served" "200 a" "$(http GET /cap/a)"
pa=$(pids cap a)
check "b served" "200 b" "$(http GET /cap/b)"
pb=$(pids cap b)
check "c served at the cap" "200 c" "$(http GET /cap/c)"
wait_for 10 gone "$pa" && ok "the least recently used idle sandbox (a) was evicted" ||
  fail "the least recently used idle sandbox (a) was evicted" "$(tine ps cap)"
check "b kept" "$pb" "$(pids cap b)"
check "two sandboxes on the node" "2" "$(tine --json ps | python3 -c 'import json,sys; print(json.load(sys.stdin)["sandboxes"])')"
gate_close cap
get ca "/cap/a?slow=1" &
r1=$!
get cb "/cap/b?slow=1" &
r2=$!
both_busy() { [ "$(pool cap a 'p["busy"]')" = 1 ] && [ "$(pool cap b 'p["busy"]')" = 1 ]; }
wait_for 20 both_busy || fail "a and b busy" "$(tine ps cap)"
get cc "/cap/c" &
r3=$!
c_queued() { [ "$(pool cap c 'p["queued"]')" = 1 ]; }
wait_for 20 c_queued && ok "with every sandbox busy at the cap, c waits in its queue" ||
  fail "with every sandbox busy at the cap, c waits in its queue" "$(tine --json ps cap)"
gate_open cap
wait "$r1" "$r2" "$r3"
check "a served while at the cap" "200 a" "$(cat "$T/ca.code") $(cat "$T/ca.body")"
check "b served while at the cap" "200 b" "$(cat "$T/cb.code") $(cat "$T/cb.body")"
check "c served once a sandbox was free" "200 c" "$(cat "$T/cc.code") $(cat "$T/cc.body")"
check "never more than two" "2" "$(tine --json ps | python3 -c 'import json,sys; print(json.load(sys.stdin)["sandboxes"])')"
finish
