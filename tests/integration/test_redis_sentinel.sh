#!/usr/bin/env bash
# tined on Redis Sentinel (--redis redis-sentinel://S1,S2,S3/tine): a
# master, its replica and three sentinels (tests/lib/redis_ha.sh), all on
# loopback.
#  * Before: deploy, invoke, tine.kv, events accepted and dispatched, a
#    schedule; the node's connections are on the master (CLIENT LIST,
#    /metrics). A replica that stops answering (SIGSTOP): ingest and deploys
#    answer 503 (no replica confirmed the write), and work again with it.
#  * kill -9 the master, under steady HTTP traffic and a steady stream of
#    events: the time until deploys work again (budget 10 s, printed);
#    every event accepted before the kill is processed after it, every
#    event posted during the failover is either 202 and processed or 503;
#    HTTP to the app keeps answering (failures under 0.1 %); the schedule
#    misses no tick; every connection of the node is on the new master.
#  * Bad input at start: no sentinel reachable, a master name the sentinels
#    do not know (the URL in TINE_REDIS_URL), a replica named as the master
#    (the URL in a config file): tined starts, /ready says why (503), it
#    keeps trying without spinning, and the first becomes ready once a
#    sentinel appears.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
. "$SRC/tests/lib/redis_ha.sh"

ha_start "$T/ha" tine || { echo "the sentinel set did not start"; exit 1; }
M0=$(ha_master)
REP=$(ha_replica)
# On the master the sentinels name now.
RM() { redis-cli -p "$(ha_master)" "$@"; }


mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: ha
functions:
  hi: { handler: h.lua#hi }
  kv: { handler: h.lua#kv }
  got: { handler: h.lua#got }
  tick: { handler: h.lua#tick }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /kv, function: kv }
triggers:
  - { on: event, type: ha.test, function: got }
  - { on: schedule, cron: "@every 1s", function: tick }
YAML
write_lua() {
  cat >"$T/app/h.lua" <<LUA
local tine = require "tine"
local M = {}
function M.hi() return "hi $1" end
function M.kv(req) tine.kv.set("k", req.query.v or "x"); return tine.kv.get("k") end
function M.got(event) tine.kv.incr("seen:" .. event.id) end
function M.tick(event) tine.kv.incr("tick:" .. event.data.tick) end
return M
LUA
}
write_lua v1

start_node a --redis "$HA_URL"
NODE=$NODE_PID
check "deploy through the sentinels" "deployed ha version 1" "$(tine deploy "$T/app")"
check "invoke" "200 hi v1" "$(http GET /ha/hi)"
check "tine.kv" "200 one" "$(http GET '/ha/kv?v=one')"
event() { echo "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/ha\",\"type\":\"ha.test\"}"; }
out=$(post_event "$(event first)")
check "an event is accepted" "202" "${out%% *}"
# has KEY VALUE: the kv key of the app holds VALUE on the master now.
has() { [ "$(RM GET "tine:kv:ha:$1")" = "$2" ]; }
wait_for 10 has seen:first 1 && ok "and dispatched" || fail "event dispatched" "$(RM GET tine:kv:ha:seen:first)"
wait_for 10 bash -c "redis-cli -p $M0 --scan --pattern 'tine:kv:ha:tick:*' | grep -q ." && ok "the schedule fires" \
  || fail "schedule" "no tick"
m=$(curl -s "$URL/metrics")
check_contains "/metrics: the master in use" "tine_redis_master{master=\"tine\",address=\"127.0.0.1:$M0\"} 1" "$m"
check_contains "/metrics: no failover yet" 'tine_redis_failovers_total{master="tine"} 0' "$m"
clients=$(redis-cli -p "$M0" client list)
for c in registry-deploys events-command events-dispatch billing invoker-kv; do
  check_contains "the $c connection is on the master" "/$c " "$clients"
done

# --- a replica that does not answer: acknowledged writes are refused -----------
# A stopped process ignores the cleanup's SIGTERM: continue it first, whatever happens.
trap 'rc=$?; kill -CONT "${HA_PID[$REP]}" 2>/dev/null; (exit $rc); cleanup' EXIT
kill -STOP "${HA_PID[$REP]}"
sleep 1.1 # the node's count of replicas is older than a second: asked again (the replica is still listed)
out=$(post_event "$(event unconfirmed)")
check "ingest while the replica hangs: 503" "503" "${out%% *}"
check_contains "no replica confirmed it" "no replica of redis at 127.0.0.1:$M0" "$out"
write_lua v2
out=$(admin PUT /apps/ha -H 'Content-Type: application/gzip' --data-binary @<(tar czf - -C "$T/app" tine.yaml h.lua))
check "a deploy while the replica hangs: 503" "503" "${out%% *}"
check_contains "saying it went live on the master only" "ha version 2 went live on the redis master, but no replica" "$out"
out=$(admin POST /apps/ha/rollback)
check "a rollback while the replica hangs: 503" "503" "${out%% *}"
check_contains "saying it happened on the master only" "ha was rolled back to version 1 on the redis master, but no replica" \
  "$out"
m=$(curl -s "$URL/metrics")
n=$(echo "$m" | sed -n 's/^tine_redis_unconfirmed_writes_total{connection="events-command"} //p')
[ "${n:-0}" -ge 1 ] && ok "/metrics counts the unconfirmed writes ($n)" || fail "unconfirmed writes" "${n:-none}"
kill -CONT "${HA_PID[$REP]}"
wait_for 10 bash -c "redis-cli -p $REP role | sed -n 4p | grep -qx connected" || true
out=$(post_event "$(event confirmed)")
check "with the replica back: 202" "202" "${out%% *}"
wait_for 10 has seen:unconfirmed 1 \
  && ok "the 503'd event was stored on the master nonetheless (at least once)" || fail "unconfirmed event" "not processed"
write_lua v3
check "deploy with the replica back" "deployed ha version 3" "$(tine deploy "$T/app")"
ha_settled 20 || true

# --- kill -9 the master under traffic ------------------------------------------
# HTTP: a keep-alive client counting answers that are not 200 "hi v3".
cat >"$T/load.py" <<'PY'
import http.client, os, sys, time
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sent = failed = 0
conn = None
while not os.path.exists(stop):
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/ha/hi")
        r = conn.getresponse()
        body = r.read()
        sent += 1
        if r.status != 200 or body != b"hi v3":
            failed += 1
    except Exception:
        sent += 1
        failed += 1
        conn = None
open(out, "w").write("%d %d\n" % (sent, failed))
PY
PORT=$(cat "$T/a/port")
python3 "$T/load.py" "$PORT" "$T/stop" "$T/load.out" &
LOAD=$!
# Events: one every 20 ms, each answer logged as "ID STATUS".
(
  i=0
  while [ ! -e "$T/stop" ]; do
    i=$((i + 1))
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/_tine/v1/events" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/cloudevents+json' --data-binary "$(event "flow-$i")" || true)
    echo "flow-$i $code $(date +%s%3N)" >>"$T/flow.log"
    sleep 0.02
  done
) &
FLOW=$!
before=()
for i in $(seq 50); do
  out=$(post_event "$(event "pre-$i")")
  [ "${out%% *}" = 202 ] && before+=("pre-$i")
done
check "50 events accepted before the kill" "50" "${#before[@]}"
sleep 1
old=$(ha_master)
t0=$(date +%s%N)
tick0=$(date -u +%s)
ha_kill "$old"
deployed=""
for i in $(seq 200); do
  if tine deploy "$T/app" --force >"$T/deploy.out" 2>&1; then deployed=yes; break; fi
  sleep 0.05
done
recover_ms=$((($(date +%s%N) - t0) / 1000000))
echo "# deploys work again ${recover_ms} ms after the master was killed"
[ -n "$deployed" ] && [ "$recover_ms" -lt 10000 ] && ok "deploys work again within 10 s (${recover_ms} ms)" \
  || fail "deploy after the failover" "${recover_ms} ms: $(cat "$T/deploy.out")"
t0_ms=$((t0 / 1000000))
new=$(ha_wait_master "$old" 20)
[ -n "$new" ] && [ "$new" != "$old" ] && ok "the sentinels promoted the replica" || fail "failover" "master $new"
check "it is the old replica" "$REP" "$new"
sleep 3 # traffic goes on past the failover
touch "$T/stop"
wait "$LOAD" "$FLOW" 2>/dev/null || true
read -r sent failed <"$T/load.out"
echo "# HTTP requests during the failover: $sent sent, $failed failed"
[ "$sent" -gt 100 ] && [ $((failed * 1000)) -lt "$sent" ] && ok "HTTP kept answering ($failed of $sent failed)" \
  || fail "HTTP during the failover" "$failed of $sent failed"

wait_for 15 bash -c "curl -s '$URL/metrics' | grep -q 'tine_redis_master{master=\"tine\",address=\"127.0.0.1:$new\"} 1'" \
  && ok "/metrics: the new master in use" || fail "metrics master" "$(curl -s "$URL/metrics" | grep tine_redis_master)"
check_contains "/metrics: one failover seen" 'tine_redis_failovers_total{master="tine"} 1' "$(curl -s "$URL/metrics")"
wait_for 15 bash -c "! curl -s '$URL/metrics' | grep '^tine_redis_connected' | grep -v sentinel | grep -q ' 0$'" \
  && ok "every connection is up" || fail "connections" "$(curl -s "$URL/metrics" | grep '^tine_redis_connected')"
clients=$(redis-cli -p "$new" client list)
for c in registry-deploys events-command events-dispatch billing invoker-kv; do
  check_contains "the $c connection is on the new master" "/$c " "$clients"
done

# Events: none lost. unseen IDS...: how many of the events have no mark of
# their function on the new master; seen_twice IDS...: how many have two.
unseen() { printf 'tine:kv:ha:seen:%s\n' "$@" | xargs redis-cli -p "$new" MGET | grep -c '^$' || true; }
seen_twice() { printf 'tine:kv:ha:seen:%s\n' "$@" | xargs redis-cli -p "$new" MGET | grep -vc '^1$\|^$' || true; }
all_seen() { [ "$(unseen "$@")" = 0 ]; }
wait_for 30 all_seen "${before[@]}" || true
check "every event accepted before the kill is processed" "0" "$(unseen "${before[@]}")"
accepted=$(awk '$2 == 202' "$T/flow.log" | wc -l)
refused=$(awk '$2 == 503' "$T/flow.log" | wc -l)
other=$(awk '$2 != 202 && $2 != 503' "$T/flow.log" | wc -l)
check "events during the failover: 202 or 503, nothing else" "0" "$other"
flow=($(awk '$2 == 202 { print $1 }' "$T/flow.log"))
wait_for 30 all_seen "${flow[@]}" || true
lost=$(unseen "${before[@]}" "${flow[@]}")
processed=$((${#before[@]} + ${#flow[@]} - lost))
dups=$(seen_twice "${before[@]}" "${flow[@]}")
# Ingest recovered at the first 202 after the last refusal that followed the kill.
# (Times relative to the kill: awk prints epoch milliseconds in %g.)
refused_ms=$(awk -v t0="$t0_ms" '$3 >= t0 && $2 != 202 { last = $3 - t0 } END { print last + 0 }' "$T/flow.log")
ingest_ms=$(awk -v t0="$t0_ms" -v after="$refused_ms" '$3 >= t0 && $3 - t0 > after && $2 == 202 { print $3 - t0; exit }' \
  "$T/flow.log")
echo "# event ingest answers 202 again ${ingest_ms:-never} ms after the master was killed"
[ -n "$ingest_ms" ] && [ "$ingest_ms" -lt 10000 ] && ok "event ingest recovers within 10 s (${ingest_ms} ms)" \
  || fail "event ingest after the failover" "${ingest_ms:-no 202 after the refusals}: $(awk -v t0="$t0_ms" \
    '$3 >= t0 { printf "%s:%d ", $2, $3 - t0 }' "$T/flow.log")"
echo "# events: ${#before[@]} accepted before, $accepted accepted and $refused refused (503) in the stream through the failover;" \
  "$processed processed, $lost lost, $dups delivered twice"
check "every event accepted during the failover is processed" "0" "$lost"
[ "$accepted" -gt 0 ] && ok "events were accepted during the failover ($accepted)" || fail "events accepted" "none"

# The schedule: every second from before the kill to after it has its tick.
ticked() { [ -n "$(redis-cli -p "$new" GET "tine:kv:ha:tick:$1")" ]; }
now=$(date -u +%s)
missing=""
for s in $(seq $((tick0 - 2)) $((now - 3))); do
  when=$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%S.000Z)
  wait_for 5 ticked "$when" || missing="$missing $when"
done
check "no schedule tick missed through the failover" "" "$missing"
check "tine.kv after the failover" "200 two" "$(http GET '/ha/kv?v=two')"
check "invoke after the failover" "200 hi v3" "$(http GET /ha/hi)"
ha_rejoin "$old" || true
kill -TERM "$NODE"; wait "$NODE" 2>/dev/null || true

# --- bad input at start ---------------------------------------------------------
# not_ready NAME URL WANT [HOW]: tined starts on URL, /ready answers 503
# naming WANT, and it keeps trying without spinning. HOW gives the URL:
# flag (--redis, the default), env (TINE_REDIS_URL) or file (--config).
not_ready() {
  local name=$1 url=$2 want=$3 how=${4:-flag} out c0 used
  case $how in
    flag) start_node "$name" --redis "$url" ;;
    env) TINE_REDIS_URL=$url start_node "$name" ;;
    file) printf 'redis = %s\n' "$url" >"$T/$name.conf"; start_node "$name" --config "$T/$name.conf" ;;
  esac
  check_contains "$name: tined starts and logs why" "starting anyway" "$(cat "$T/$name.log")"
  out=$(http GET /_tine/v1/ready)
  check "$name: not ready" "503" "${out%% *}"
  check_contains "$name: /ready says why" "$want" "$out"
  c0=$(cpu_ms "$NODE_PID")
  sleep 2
  used=$(($(cpu_ms "$NODE_PID") - c0))
  [ "$used" -lt 300 ] && ok "$name: keeps trying without spinning ($used ms of CPU in 2 s)" \
    || fail "$name: busy loop" "$used ms of CPU in 2 s"
}
P1=$(ha_free_port)
P2=$(ha_free_port)
not_ready nosentinel "redis-sentinel://127.0.0.1:$P1,127.0.0.1:$P2/tine" \
  "sentinel 127.0.0.1:$P1 is unreachable: Connection refused; sentinel 127.0.0.1:$P2 is unreachable: Connection refused"
NOSENTINEL=$NODE_PID
URL_NOSENTINEL=$URL
not_ready unknown "redis-sentinel://127.0.0.1:${HA_SENTINELS[0]}/nosuch" \
  "sentinel 127.0.0.1:${HA_SENTINELS[0]} knows no master named 'nosuch'" env
# A sentinel told that the replica is the master of "mixed".
P3=$(ha_free_port)
mkdir -p "$T/s-mixed"
printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor mixed 127.0.0.1 %s 1\n' "$P3" "$T/s-mixed" "$(ha_replica)" \
  >"$T/s-mixed/sentinel.conf"
redis-server "$T/s-mixed/sentinel.conf" --sentinel >"$T/s-mixed.log" 2>&1 &
PIDS+=($!)
wait_for 10 redis-cli -p "$P3" ping || true
not_ready replica "redis-sentinel://127.0.0.1:$P3/mixed" "is a replica (of 127.0.0.1:$(ha_master)" file
# A sentinel of the set appears at P2: the first node finds the master and
# becomes ready by itself.
mkdir -p "$T/s-late"
printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor tine 127.0.0.1 %s 2\n' "$P2" "$T/s-late" "$(ha_master)" \
  >"$T/s-late/sentinel.conf"
redis-server "$T/s-late/sentinel.conf" --sentinel >"$T/s-late.log" 2>&1 &
PIDS+=($!)
URL=$URL_NOSENTINEL
wait_for 30 bash -c "curl -s '$URL/_tine/v1/ready' | grep -q '\"ready\": *true'" \
  && ok "nosentinel: ready by itself once a sentinel answers" || fail "nosentinel after a sentinel came" \
  "$(http GET /_tine/v1/ready)"
check "nosentinel: serves the app" "200 hi v3" "$(http GET /ha/hi)"
finish
