#!/usr/bin/env bash
# Nodes of a cluster and their drain (docs/cluster.md), on one Redis:
#  * tine nodes lists every node with its address, version, uptime,
#    sandboxes, calls, heartbeat and state;
#  * tine drain NODE through another node: the node turns not ready at
#    once (503 naming the drain), keeps serving through --drain-grace while
#    /ready is checked, answers the call in flight, leaves (tine.node.left)
#    and exits 0; tine drain follows it until it is gone;
#  * SIGTERM of a node holding events past --drain-timeout: it hands them
#    back and the others process each once;
#  * kill -9 of a node holding events: the others take them over within
#    seconds; tine nodes says it was lost;
#  * SIGTERM during a drain cuts a long grace short; bad input.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_http_fixture
start_redis
# One admin token for the cluster, as behind a load balancer.
CLUSTER_TOKEN=cluster-token-0123456789
opts=(--redis "$REDIS_URL" --docker-events off --drain-grace 2s --admin-token "$CLUSTER_TOKEN")
start_node a "${opts[@]}" --node-id node-a
PID_a=$NODE_PID
start_node b "${opts[@]}" --node-id node-b
PID_b=$NODE_PID
start_node c "${opts[@]}" --node-id node-c --drain-timeout 1s
PID_c=$NODE_PID
start_node d "${opts[@]}" --node-id node-d
PID_d=$NODE_PID
URL=$URL_a TOKEN=$CLUSTER_TOKEN
# stop_node SIGNAL PID: signals a node and waits for it: its status in RC,
# how long it took (ms) in TOOK.
stop_node() {
  local t0
  t0=$(date +%s%N)
  kill "-$1" "$2"
  RC=0
  wait "$2" 2>/dev/null || RC=$?
  TOOK=$((($(date +%s%N) - t0) / 1000000))
}

mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: drain
allow_outbound: [ 127.0.0.1 ]
functions:
  hi: { handler: h.lua#hi }
  slow: { handler: h.lua#slow, timeout: 10s }
  hold: { handler: h.lua#hold, timeout: 30s, concurrency: 50 }
  watch: { handler: h.lua#watch }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /slow, function: slow }
triggers:
  - { on: event, type: drain.hold, function: hold }
  - { on: event, type: 'tine.node.*', function: watch }
YAML
cat >"$T/app/h.lua" <<LUA
local tine = require "tine"
local M = {}
local FIX = "http://127.0.0.1:$FIX"
function M.hi() return "hi" end
function M.slow(req)
  tine.http.request{ url = FIX .. "/delay?ms=" .. (req.query.ms or "1500") }
  return "slow done"
end
-- Waits until the test opens the event's gate, then counts the event.
function M.hold(event)
  local r = tine.http.request{ url = FIX .. "/wait?gate=" .. event.data.gate }
  if r.status ~= 200 then error("gate " .. event.data.gate .. ": " .. r.status) end
  tine.kv.incr("seen:" .. event.id)
end
function M.watch(event) tine.kv.incr(event.type .. ":" .. event.data.node) end
return M
LUA
tine deploy "$T/app" >/dev/null
for n in b c d; do
  u=URL_$n
  wait_for 10 bash -c "curl -s ${!u}/drain/hi | grep -q hi" || true
done

# --- tine nodes --------------------------------------------------------------------
wait_for 10 bash -c "[ \$(curl -s -H 'Authorization: Bearer $TOKEN' $URL/_tine/v1/nodes | grep -o '\"state\":\"ready\"' | wc -l) = 4 ]" || true
out=$(run tine nodes)
check_contains "tine nodes: a header" "NODE    ADDRESS" "$out"
for n in a b c d; do
  u=URL_$n
  row=$(echo "$out" | grep "^node-$n ")
  check_contains "tine nodes: node-$n at its address" "${!u#http://}" "$row"
  check_contains "tine nodes: node-$n's version" " 0.1.0 " "$row"
  check_contains "tine nodes: node-$n is ready" "ready" "$row"
done
json=$(run tine nodes --json)
check "the answer names the node that answered" "node-a" "$(pyget "$json" "d['answered_by']")"
check "each node says how long its drain may take" "2000 30000" \
  "$(pyget "$json" "' '.join(str(x) for x in [d['nodes'][0]['drain_grace_ms'], d['nodes'][0]['drain_timeout_ms']])")"
hb=$(pyget "$json" "max(n['heartbeat_age_s'] for n in d['nodes'])")
python3 -c "import sys; sys.exit(0 if float('$hb') < 2 else 1)" && ok "heartbeats are fresh (oldest ${hb} s)" \
  || fail "heartbeat age" "$hb"
curl -s "$URL_d/drain/slow?ms=1500" >/dev/null &
SLOW=$!
sleep 1.2 # a heartbeat went out meanwhile
calls=$(URL=$URL_d run tine nodes --json)
check "a call in flight is counted on its node" "1" "$(pyget "$calls" "[n['calls'] for n in d['nodes'] if n['node'] == 'node-d'][0]")"
wait "$SLOW" || true

# --- tine drain through another node -------------------------------------------------
check "node-b is ready" "200" "$(URL=$URL_b http GET /_tine/v1/ready | cut -d' ' -f1)"
curl -s "$URL_b/drain/slow?ms=1500" >"$T/slow.out" &
SLOW=$!
sleep 0.2
t0=$(date +%s%N)
"$BIN/tine" --url "$URL_a" --token "$TOKEN" drain node-b >"$T/drain.out" 2>&1 &
DRAIN=$!
wait_for 5 bash -c "curl -s $URL_b/_tine/v1/ready | grep -q draining" || true
unready_ms=$((($(date +%s%N) - t0) / 1000000))
out=$(URL=$URL_b http GET /_tine/v1/ready)
check "node-b: /ready answers 503 while draining" "503" "${out%% *}"
check_contains "naming the drain" "this node is draining (asked through node node-a)" "$out"
[ "$unready_ms" -lt 2000 ] && ok "node-b turned not ready ${unready_ms} ms after tine drain" \
  || fail "time to not ready" "${unready_ms} ms"
check "node-b still serves during its grace" "200 hi" "$(URL=$URL_b http GET /drain/hi)"
check_contains "node-b's /metrics: draining" 'tine_node_state{state="draining"} 1' "$(curl -s "$URL_b/metrics")"
rc=0
wait "$PID_b" || rc=$?
check "node-b exits 0 after its drain" "0" "$rc"
wait "$SLOW" || true
check "node-b answered the call in flight" "slow done" "$(cat "$T/slow.out")"
rc=0
wait "$DRAIN" || rc=$?
check "tine drain exits 0" "0" "$rc"
out=$(cat "$T/drain.out")
check_contains "tine drain says it asked" "node-b: asked to drain" "$out"
check_contains "and saw it draining" "node-b: draining" "$out"
check_contains "and gone" "node-b: gone (drained) after" "$out"
check_contains "node-b: it logged the grace it gave the load balancer" "serving 2.0 s more for the load balancer" \
  "$(cat "$T/b.log")"
check_contains "node-b left the cluster" "left the cluster; 0 pending events handed back" "$(cat "$T/b.log")"
check_contains "tine nodes: node-b gone (drained)" "gone (drained" "$(run tine nodes | grep '^node-b ')"
wait_kv 10 drain "tine.node.left:node-b" 1 || true
check "tine.node.left announced once" "1" "$(rkv drain tine.node.left:node-b)"
check "no tine.node.lost for a drained node" "" "$(rkv drain tine.node.lost:node-b)"

# --- SIGTERM of a node holding events past --drain-timeout: handed back -------------
event() { echo "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/t\",\"type\":\"drain.hold\",\"data\":{\"gate\":\"$2\"}}"; }
pending_of() { redis-cli -s "$T/redis.sock" XPENDING tine:events tine - + 1000 "$1" | grep -c '^[0-9]*-[0-9]*$' || true; }
holds() { [ "$(pending_of "$1")" -gt 0 ]; }
# hold PREFIX GATE N NODE: posts N events (ids PREFIX-i, in IDS) whose
# function waits until GATE opens, and waits until NODE holds some.
hold() {
  IDS=()
  for i in $(seq "$3"); do
    post_event "$(event "$1-$i" "$2")" >/dev/null
    IDS+=("$1-$i")
    sleep 0.05
  done
  wait_for 10 holds "$4" || true
}
all_seen() { for id in "$@"; do [ "$(rkv drain "seen:$id")" = 1 ] || return 1; done; }
# release GATE: opens it, waits until each event of IDS was processed and
# prints how many were processed how often (" 6 1;": six, once each).
release() {
  curl -s -X POST "http://127.0.0.1:$FIX/open?gate=$1" >/dev/null
  wait_for 20 all_seen "${IDS[@]}" || true
  for id in "${IDS[@]}"; do rkv drain "seen:$id"; done | sort | uniq -c | tr -s ' ' | tr '\n' ';'
}
hold held g1 8 node-c
held=$(pending_of node-c)
[ "$held" -gt 0 ] && ok "node-c holds $held events in its functions" || fail "node-c holds events" "none pending"
stop_node TERM "$PID_c"
stop_ms=$TOOK
check "node-c exits 0" "0" "$RC"
check_contains "nothing checked node-c's /ready: no grace" "serving 0.0 s more (nothing checks /ready)" "$(cat "$T/c.log")"
check_contains "node-c says its calls were cut at --drain-timeout" "still in flight after --drain-timeout" "$(cat "$T/c.log")"
check_contains "node-c handed its events back" "left the cluster; $held pending event" "$(cat "$T/c.log")"
[ "$stop_ms" -lt 4000 ] && ok "node-c stopped ${stop_ms} ms after SIGTERM (timeout 1 s)" || fail "stop time" "${stop_ms} ms"
check "node-c holds nothing any more" "0" "$(pending_of node-c)"
check "each event held by node-c was processed once, by the others" " 8 1;" "$(release g1)"

# --- Redis stalls longer than a heartbeat: nobody is declared lost ---------------------
hold stall g3 6 node-d
held_a=$(pending_of node-a)
held_d=$(pending_of node-d)
kill -STOP "$REDIS_PID"
sleep 4.5 # every heartbeat expires meanwhile
kill -CONT "$REDIS_PID"
sleep 4 # each node judges the others a few times
check "after a stall of Redis no node is declared lost" "" \
  "$(redis-cli -s "$T/redis.sock" --scan --pattern 'tine:kv:drain:tine.node.lost:*')"
check "node-a's held events stay its own" "$held_a" "$(pending_of node-a)"
check "node-d's held events stay its own" "$held_d" "$(pending_of node-d)"
check "each event held through the stall was processed once" " 6 1;" "$(release g3)"

# --- kill -9 of a node holding events: taken over -------------------------------------
hold lost g2 6 node-d
held=$(pending_of node-d)
[ "$held" -gt 0 ] && ok "node-d holds $held events in its functions" || fail "node-d holds events" "none pending"
t0=$(date +%s%N)
kill -9 "$PID_d"
wait "$PID_d" 2>/dev/null || true
counts=$(release g2)
took=$((($(date +%s%N) - t0) / 1000000))
echo "# the events held by the killed node were processed ${took} ms after the kill"
check "each event held by node-d was processed once" " 6 1;" "$counts"
[ "$took" -lt 8000 ] && ok "taken over within 8 s (${took} ms)" || fail "takeover time" "${took} ms"
check_contains "node-a says it took them over" "took over $held pending entr" "$(cat "$T/a.log")"
check_contains "node-a's /metrics counts them" "tine_events_taken_over_total $held" "$(curl -s "$URL_a/metrics")"
check_contains "node-a's /metrics: ready" 'tine_node_state{state="ready"} 1' "$(curl -s "$URL_a/metrics")"
wait_kv 10 drain "tine.node.lost:node-d" 1 || true
check "tine.node.lost announced once" "1" "$(rkv drain tine.node.lost:node-d)"
check_contains "tine nodes: node-d gone (lost)" "gone (lost" "$(run tine nodes | grep '^node-d ')"

# --- tine drain of an id with a colon; SIGTERM then cuts a long grace short; bad input ---
start_node e "${opts[@]}" --node-id node:e --drain-grace 30s
TOKEN=$CLUSTER_TOKEN
check "node:e is ready" "200" "$(http GET /_tine/v1/ready | cut -d' ' -f1)"
check "tine drain node:e --no-wait" "node:e: asked to drain" "$(run tine drain node:e --no-wait)"
wait_for 5 bash -c "curl -s $URL/_tine/v1/ready | grep -q draining" || true
curl -s -o /dev/null -w "%{http_code}" "$URL/drain/slow?ms=8000" >"$T/cut.out" &
CUT=$!
sleep 0.5
stop_node TERM "$NODE_PID"
took=$TOOK
check "node:e exits 0" "0" "$RC"
[ "$took" -lt 3000 ] && ok "SIGTERM during the drain ended the 30 s grace and the wait for an 8 s call (${took} ms)" \
  || fail "SIGTERM" "${took} ms"
wait "$CUT" || true
check "the call cut short was answered 503" "503" "$(cat "$T/cut.out")"
check_contains "node:e said so" "stopping now (SIGTERM)" "$(cat "$T/e.log")"
# tine drain of the node tine talks to: followed until it stops taking connections.
start_node f "${opts[@]}" --node-id node-f
TOKEN=$CLUSTER_TOKEN
out=$(run tine drain node-f)
check_contains "tine drain of the node it talks to" "node-f: stopped taking connections after" "$out"
rc=0
wait "$NODE_PID" || rc=$?
check "node-f exits 0" "0" "$rc"
URL=$URL_a TOKEN=$CLUSTER_TOKEN
out=$(tine drain nosuch 2>&1) && rc=0 || rc=$?
check "tine drain of an unknown node exits 1" "1" "$rc"
check_contains "saying no such node is up" "no node named 'nosuch' is up (tine nodes lists them)" "$out"
check "tined --drain-grace 5x exits 2" "2" "$(tined_status bad --drain-grace 5x)"
check_contains "naming the flag" "--drain-grace 5x: expected a duration from 0 to 1h" "$(cat "$T/bad.log")"
check "node-a still serves" "200 hi" "$(http GET /drain/hi)"
finish
