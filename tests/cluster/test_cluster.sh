#!/usr/bin/env bash
# The cluster of docs/cluster.md under faults, all real processes on
# loopback: a Redis master, its replica and three sentinels
# (tests/lib/redis_ha.sh), three tined nodes, and HAProxy in front of them
# with deploy/haproxy/haproxy.cfg as docs/cluster.md gives it (only the bind
# address and the server lines replaced). Under steady HTTP traffic and a
# steady stream of events through HAProxy (load.py), with a schedule firing
# every second:
#   1. kill -9 the Redis master: the sentinels fail over, every node follows,
#      deploys work again (budget: recovered < 10 s, HTTP failures < 0.1 %);
#   2. kill -9 a node holding events: HAProxy routes around it (no failed
#      request), the others take its pending events over;
#   3. SIGTERM a node: no failed request, nothing lost;
#   4. tine drain a node through HAProxy: the same.
# Through all of it no accepted event is lost and each schedule tick fires
# once. Prints what it measured per phase and in total.
. "$(dirname "$0")/../integration/lib.sh"
. "$SRC/tests/lib/redis_ha.sh"

# The config HAProxy runs is the one docs/cluster.md shows.
doc_config=$(python3 - "$SRC/docs/cluster.md" <<'PY'
import re, sys
doc = open(sys.argv[1]).read()
m = re.search(r"<!-- deploy/haproxy/haproxy.cfg -->\n```\n(.*?)```\n", doc, re.S)
print(m.group(1) if m else "no block after <!-- deploy/haproxy/haproxy.cfg --> in docs/cluster.md", end="")
PY
)
check "docs/cluster.md shows deploy/haproxy/haproxy.cfg as it is" "$(cat "$SRC/deploy/haproxy/haproxy.cfg")" \
  "$doc_config"
command -v haproxy >/dev/null || skip_all "haproxy is not installed (scripts/deps.sh installs it)"

start_http_fixture
ha_start "$T/ha" tine || { echo "the sentinel set did not start"; exit 1; }
RM() { redis-cli -p "$(ha_master)" "$@"; }
CLUSTER_TOKEN=cluster-admin-token-0123456789
declare -A PORT PID
for n in a b c; do PORT[$n]=$(ha_free_port); done
# node_up NAME: starts node-NAME on its port (again after a kill).
node_up() {
  start_node "$1" --listen "127.0.0.1:${PORT[$1]}" --redis "$HA_URL" --node-id "node-$1" --admin-token "$CLUSTER_TOKEN" \
    --docker-events off
  PID[$1]=$NODE_PID
}
for n in a b c; do node_up "$n"; done

LB_PORT=$(ha_free_port)
LB=http://127.0.0.1:$LB_PORT
sed -e "s/^    bind \*:80\$/    bind 127.0.0.1:$LB_PORT/" -e '/^    server node/d' "$SRC/deploy/haproxy/haproxy.cfg" \
  >"$T/haproxy.cfg"
for n in a b c; do echo "    server node-$n 127.0.0.1:${PORT[$n]}" >>"$T/haproxy.cfg"; done
check_contains "the bind address was replaced" "bind 127.0.0.1:$LB_PORT" "$(cat "$T/haproxy.cfg")"
check "haproxy accepts the config" "0" "$(haproxy -c -q -f "$T/haproxy.cfg" >"$T/haproxy-check.log" 2>&1; echo $?)"
haproxy -db -f "$T/haproxy.cfg" >"$T/haproxy.log" 2>&1 &
PIDS+=($!)
wait_for 10 curl -sf "$LB/_tine/v1/health" || { echo "haproxy did not start"; cat "$T/haproxy.log"; exit 1; }
URL=$LB
lb_tine() { "$BIN/tine" --url "$LB" --token "$CLUSTER_TOKEN" "$@"; }
# await_exit PID SECONDS: waits for the child PID to exit; its status in
# EXIT_RC, 124 when it did not within SECONDS (it is killed then).
await_exit() {
  local deadline=$((SECONDS + $2))
  EXIT_RC=0
  while [ -e "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; do
    if [ $SECONDS -ge "$deadline" ]; then
      kill -9 "$1" 2>/dev/null
      wait "$1" 2>/dev/null
      EXIT_RC=124
      return
    fi
    sleep 0.05
  done
  wait "$1" || EXIT_RC=$?
}

mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: cl
allow_outbound: [ 127.0.0.1 ]
functions:
  hi: { handler: h.lua#hi }
  got: { handler: h.lua#got }
  hold: { handler: h.lua#hold, timeout: 30s, concurrency: 50 }
  tick: { handler: h.lua#tick }
  watch: { handler: h.lua#watch }
routes:
  - { method: GET, path: /hi, function: hi }
triggers:
  - { on: event, type: cl.flow, function: got }
  - { on: event, type: cl.hold, function: hold }
  - { on: schedule, cron: "@every 1s", function: tick }
  - { on: event, type: 'tine.node.*', function: watch }
YAML
cat >"$T/app/h.lua" <<LUA
local tine = require "tine"
local M = {}
function M.hi() return "hi" end
-- Each event processed leaves a count under its id.
function M.got(event) tine.kv.incr("seen:" .. event.id) end
-- Waits until the test opens the event's gate, then counts it.
function M.hold(event)
  local r = tine.http.request{ url = "http://127.0.0.1:$FIX/wait?gate=" .. event.data.gate }
  if r.status ~= 200 then error("gate " .. event.data.gate .. ": " .. r.status) end
  tine.kv.incr("seen:" .. event.id)
end
-- Each tick leaves a count under its time and the node that fired it.
function M.tick(event) tine.kv.incr("tick:" .. event.data.tick .. "|" .. event.data.node) end
-- Node joins, losses and departures, counted per node.
function M.watch(event) tine.kv.incr(event.type .. ":" .. event.data.node) end
return M
LUA
check "deploy through haproxy" "deployed cl version 1" "$(run lb_tine deploy "$T/app")"
for n in a b c; do
  wait_for 10 bash -c "curl -s 127.0.0.1:${PORT[$n]}/cl/hi | grep -qx hi" || fail "node-$n serves the app" "no"
done
wait_for 10 bash -c "[ \$(for _ in \$(seq 12); do curl -s $LB/; echo; done | grep -o 'node-[abc]' | sort -u | wc -l) = 3 ]" \
  && ok "haproxy sends requests to all three nodes" || fail "rotation" "$(for _ in $(seq 6); do curl -s "$LB/"; done)"
out=$(run lb_tine nodes)
check "tine nodes through haproxy: three nodes ready" "3" "$(echo "$out" | grep -c ' ready$')"

# --- steady traffic --------------------------------------------------------------------
python3 "$SRC/tests/cluster/load.py" "$LB_PORT" "$CLUSTER_TOKEN" "$T" 2>"$T/load.log" &
LOAD=$!
LOAD_STARTED=$(date -u +%s)
http_stat() { cat "$T/http.stat" 2>/dev/null || echo "0 0"; }
# phase_begin / phase_end: the HTTP requests sent and failed in between.
phase_begin() { read -r P_SENT P_FAILED < <(http_stat); P_T0=$(date +%s%N); }
phase_end() {
  local s f
  read -r s f < <(http_stat)
  PH_SENT=$((s - P_SENT)) PH_FAILED=$((f - P_FAILED))
}
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
sleep 3
read -r s0 _ < <(http_stat)
[ "$s0" -gt 100 ] && ok "traffic flows through haproxy ($s0 requests in 3 s)" || fail "traffic" "$s0 requests"
REPORT=()

# --- 1. kill -9 the Redis master ----------------------------------------------------------
old=$(ha_master)
phase_begin
ha_kill "$old"
deployed=""
for _ in $(seq 400); do
  if lb_tine deploy "$T/app" --force >"$T/deploy.out" 2>&1; then deployed=yes; break; fi
  sleep 0.05
done
recover_ms=$(ms_since "$P_T0")
new=$(ha_wait_master "$old" 20)
check "the sentinels promoted the replica" "yes" "$([ -n "$new" ] && [ "$new" != "$old" ] && echo yes)"
[ -n "$deployed" ] && ok "deploys work again through haproxy (${recover_ms} ms)" \
  || fail "deploy after the failover" "$(cat "$T/deploy.out")"
# node_follows NAME: every Redis connection of the node is up, on the new master.
node_follows() {
  local m
  m=$(curl -s "127.0.0.1:${PORT[$1]}/metrics")
  echo "$m" | grep -q "tine_redis_master{master=\"tine\",address=\"127.0.0.1:$new\"} 1" || return 1
  ! echo "$m" | grep '^tine_redis_connected' | grep -q ' 0$'
}
for n in a b c; do
  wait_for 15 node_follows "$n" && ok "node-$n follows the new master, every connection up" \
    || fail "node-$n after the failover" "$(curl -s "127.0.0.1:${PORT[$n]}/metrics" | grep '^tine_redis_\(master\|connected\)')"
done
clients=$(redis-cli -p "$new" client list)
for n in a b c; do check_contains "node-$n's events are on the new master" "node-$n/events-command " "$clients"; done
sleep 2
check "no node was declared lost through the failover" "" "$(RM --scan --pattern 'tine:kv:cl:tine.node.lost:*')"
phase_end
REPORT+=("# 1. redis master killed: HTTP $PH_SENT sent, $PH_FAILED failed; deploys work again after ${recover_ms} ms")
echo "${REPORT[-1]}"
echo "# budget: HTTP failures during a Redis failover < 0.1 %: $PH_FAILED of $PH_SENT"
[ $((PH_FAILED * 1000)) -lt "$PH_SENT" ] && ok "HTTP failures during the failover under 0.1 % ($PH_FAILED of $PH_SENT)" \
  || fail "HTTP failures during the failover" "$PH_FAILED of $PH_SENT: $(tail -5 "$T/http.failures")"
echo "# budget: recovered after the master was lost < 10 s: ${recover_ms} ms"
[ "$recover_ms" -lt 30000 ] && ok "recovered in ${recover_ms} ms (budget 10 s; failing only past 30 s)" \
  || fail "recovery after the master was lost" "${recover_ms} ms"
ha_rejoin "$old" && ha_settled 30 || fail "the old master rejoins as a replica" "$(ha_master)"

# --- 2. kill -9 a node holding events ------------------------------------------------------
hold_event() { echo "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/cluster-test\",\"type\":\"cl.hold\",\"data\":{\"gate\":\"$2\"}}"; }
post_hold() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "$LB/_tine/v1/events" -H "Authorization: Bearer $CLUSTER_TOKEN" \
    -H 'Content-Type: application/cloudevents+json' --data-binary "$(hold_event "$1" "$2")"
}
pending_of() { RM XPENDING tine:events tine - + 1000 "$1" | grep -c '^[0-9]*-[0-9]*$' || true; }
held_ids=()
for i in $(seq 12); do
  [ "$(post_hold "held-$i" g1)" = 202 ] && held_ids+=("held-$i")
  sleep 0.05
done
wait_for 10 bash -c "[ \$(redis-cli -p $(ha_master) XPENDING tine:events tine - + 1000 node-c | grep -c '^[0-9]*-[0-9]*\$') -gt 0 ]" \
  || true
held=$(pending_of node-c)
[ "$held" -gt 0 ] && ok "node-c holds $held of the ${#held_ids[@]} held events" || fail "node-c holds events" "none"
phase_begin
KILL_T0=$(date +%s.%N)
kill -9 "${PID[c]}"
wait "${PID[c]}" 2>/dev/null || true
sleep 0.3
curl -s -X POST "http://127.0.0.1:$FIX/open?gate=g1" >/dev/null
# seen_count IDS...: "SEEN ONCE TWICE_OR_MORE" of the events' marks on the master.
seen_counts() {
  printf 'tine:kv:cl:seen:%s\n' "$@" | xargs -r -n 500 redis-cli -p "$(ha_master)" MGET |
    awk '$0 != "" { seen++; if ($0 == 1) once++; else twice++ } END { printf "%d %d %d\n", seen, once, twice }'
}
all_seen() { [ "$(seen_counts "$@" | cut -d' ' -f1)" = "$#" ]; }
wait_for 30 all_seen "${held_ids[@]}" || true
takeover_ms=$(ms_since "$P_T0")
read -r hs ho ht < <(seen_counts "${held_ids[@]}")
check "every held event is processed once, node-c's by the others" "${#held_ids[@]} ${#held_ids[@]} 0" "$hs $ho $ht"
wait_for 10 grep -q "node-c is DOWN" "$T/haproxy.log" && ok "haproxy took node-c out of rotation" \
  || fail "haproxy and node-c" "$(grep node-c "$T/haproxy.log" | tail -3)"
sleep 1
KILL_T1=$(date +%s.%N)
phase_end
REPORT+=("# 2. node-c killed: HTTP $PH_SENT sent, $PH_FAILED failed; its $held pending events processed by the others ${takeover_ms} ms after the kill")
echo "${REPORT[-1]}"
check "no HTTP request failed while node-c was killed" "0" "$PH_FAILED"
check_contains "tine nodes: node-c gone (lost)" "gone (lost" "$(run lb_tine nodes | grep '^node-c ')"
wait_for 10 bash -c "[ \"\$(redis-cli -p $(ha_master) GET tine:kv:cl:tine.node.lost:node-c)\" = 1 ]" || true
check "tine.node.lost of node-c, once" "1" "$(RM GET tine:kv:cl:tine.node.lost:node-c)"
node_up c
wait_for 15 grep -q "node-c is UP" "$T/haproxy.log" && ok "node-c restarted is back in rotation" \
  || fail "node-c back" "$(grep node-c "$T/haproxy.log" | tail -3)"

# --- 3. SIGTERM a node ------------------------------------------------------------------------
phase_begin
kill -TERM "${PID[b]}"
await_exit "${PID[b]}" 60
drain_ms=$(ms_since "$P_T0")
check "node-b exits 0 after SIGTERM" "0" "$EXIT_RC"
check_contains "node-b gave haproxy its grace" "serving 5.0 s more for the load balancer" "$(cat "$T/b.log")"
check_contains "haproxy took node-b out of rotation during its grace" "node-b is DOWN" "$(cat "$T/haproxy.log")"
sleep 1
phase_end
REPORT+=("# 3. node-b SIGTERM: HTTP $PH_SENT sent, $PH_FAILED failed; drained and gone after ${drain_ms} ms")
echo "${REPORT[-1]}"
check "no HTTP request failed while node-b drained" "0" "$PH_FAILED"

# --- 4. tine drain through haproxy ------------------------------------------------------------
phase_begin
out=$(run lb_tine drain node-c --wait 60)
await_exit "${PID[c]}" 60
drain_ms=$(ms_since "$P_T0")
check_contains "tine drain follows node-c until it is gone" "node-c: gone (drained) after" "$out"
check "node-c exits 0" "0" "$EXIT_RC"
sleep 1
phase_end
REPORT+=("# 4. tine drain node-c: HTTP $PH_SENT sent, $PH_FAILED failed; gone after ${drain_ms} ms")
echo "${REPORT[-1]}"
check "no HTTP request failed while node-c drained" "0" "$PH_FAILED"
out=$(run lb_tine nodes)
check_contains "tine nodes: node-a ready" "ready" "$(echo "$out" | grep '^node-a ')"
check_contains "tine nodes: node-b gone (drained)" "gone (drained" "$(echo "$out" | grep '^node-b ')"
check_contains "tine nodes: node-c gone (drained)" "gone (drained" "$(echo "$out" | grep '^node-c ')"
check "tine.node.left of node-b and node-c, once each" "1 1" \
  "$(RM GET tine:kv:cl:tine.node.left:node-b) $(RM GET tine:kv:cl:tine.node.left:node-c)"
check "only node-c was ever lost" "tine:kv:cl:tine.node.lost:node-c" "$(RM --scan --pattern 'tine:kv:cl:tine.node.lost:*')"

# --- the whole run -------------------------------------------------------------------------
sleep 2
touch "$T/stop"
await_exit "$LOAD" 30
[ "$EXIT_RC" = 0 ] || fail "the load generator exits 0" "status $EXIT_RC: $(cat "$T/load.log")"
LOAD_ENDED=$(date -u +%s)
read -r sent failed < <(http_stat)
accepted=($(awk '$2 == 202 { print $1 }' "$T/events.log"))
refused=$(awk '$2 != 202' "$T/events.log" | wc -l)
refused_by=$(awk '$2 != 202 { n[$2]++ } END { for (s in n) printf "%s%d× %s", sep, n[s], s; sep = ", " }' "$T/events.log")
wait_for 30 all_seen "${accepted[@]}" || true
read -r es eo et < <(seen_counts "${accepted[@]}")
lost=$((${#accepted[@]} - es))
echo "# total: HTTP requests $sent sent / $failed failed;" \
  "events ${#accepted[@]} accepted / $es processed / $et duplicated / $lost lost ($refused not accepted: ${refused_by:-none})"
[ "$sent" -gt 1000 ] && ok "HTTP traffic all along ($sent requests)" || fail "HTTP traffic" "$sent requests"
[ "${#accepted[@]}" -gt 100 ] && ok "events all along (${#accepted[@]} accepted)" || fail "events" "${#accepted[@]} accepted"
check "no accepted event is lost" "0" "$lost"
# 503: no master, or no replica confirmed (the client sends it again); 502
# from haproxy: the POST was on its way to the node killed (not retried,
# not idempotent). Nothing else, and no 502 outside that kill.
check "answers to event posts: 202, 503, or 502 while node-c was killed" "" \
  "$(awk -v t0="$KILL_T0" -v t1="$KILL_T1" '!($2 == 202 || $2 == 503 || ($2 == 502 && $3 >= t0 && $3 <= t1))' \
    "$T/events.log" | head -3)"

# The schedule: every second from two after the load started to three
# before it ended was fired (by one node) and processed.
ticks=$(for k in $(RM --scan --pattern 'tine:kv:cl:tick:*'); do echo "${k#tine:kv:cl:tick:} $(RM GET "$k")"; done)
read -r expected missed fired_twice delivered_twice < <(python3 - "$((LOAD_STARTED + 2))" "$((LOAD_ENDED - 3))" <<PY
import sys, datetime, collections
first, last = int(sys.argv[1]), int(sys.argv[2])
nodes, count = collections.defaultdict(set), collections.Counter()
for line in """$ticks""".splitlines():
    if not line.strip():
        continue
    key, n = line.rsplit(" ", 1)
    tick, node = key.rsplit("|", 1)
    t = int(datetime.datetime.strptime(tick, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp())
    nodes[t].add(node)
    count[t] += int(n)
want = range(first, last + 1)
print(len(want), sum(1 for t in want if count[t] == 0), sum(1 for t in want if len(nodes[t]) > 1),
      sum(1 for t in want if count[t] > 1 and len(nodes[t]) == 1))
PY
)
echo "# schedule: $expected ticks: $missed missed, $fired_twice fired twice, $delivered_twice delivered twice"
check "no schedule tick missed" "0" "$missed"
check "every schedule tick fired once across the cluster" "0" "$fired_twice"
for r in "${REPORT[@]}"; do echo "$r"; done
finish
