#!/usr/bin/env bash
# Schedules: with two nodes on one Redis, a schedule fires exactly once per
# tick (a lock per tick), and the event carries the tick time.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
start_node b --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: sched
functions:
  tick: { handler: h.lua#tick }
triggers:
  - { on: schedule, cron: '@every 1s', function: tick }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.tick(event, ctx)
  -- One counter per tick: two deliveries of one tick would show as 2.
  tine.kv.incr("tick:" .. event.data.tick)
  tine.kv.incr("ticks")
  tine.kv.set("last", tine.json.encode(event))
end
return M
LUA
URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/app" >/dev/null
# Both nodes must know the app before counting.
wait_for 10 bash -c "curl -s -H 'Authorization: Bearer $TOKEN_b' $URL_b/_tine/v1/apps/sched/routes | grep -q tick"
sleep 5.5
# Stop the ticks (a version without the schedule), let what was appended be
# delivered (a busy machine may lag), then count.
sed -i '/^triggers:/,$d' "$T/app/tine.yaml"
URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/app" >/dev/null
sleep 1.5
wait_for 20 bash -c "[ \$(redis-cli -s $T/redis.sock XLEN tine:events) -eq 0 ]" || true
n=$(rkv sched ticks)
if [ -n "$n" ] && [ "$n" -ge 3 ] && [ "$n" -le 9 ]; then ok "about one tick a second ($n in ~6 s)"; else fail "tick rate" "$n ticks"; fi
doubles=$(redis-cli -s "$T/redis.sock" --scan --pattern 'tine:kv:sched:tick:*' | while read -r k; do
  redis-cli -s "$T/redis.sock" GET "$k"; done | grep -vc '^1$' || true)
check "no tick delivered twice across the two nodes" "0" "$doubles"
keys=$(redis-cli -s "$T/redis.sock" --scan --pattern 'tine:kv:sched:tick:*' | wc -l)
check "one kv key per tick counted" "$n" "$keys"
last=$(rkv sched last)
check "the event type" "tine.schedule.tick" "$(json_get "$last" "j['type']")"
check "the source" "tine://sched/schedule/tick" "$(json_get "$last" "j['source']")"
check "the cron in the data" "@every 1s" "$(json_get "$last" "j['data']['cron']")"
tick=$(json_get "$last" "j['data']['tick']")
check_contains "the tick time is on a whole second" ".000Z" "$tick"
check "the event time is the tick" "$tick" "$(json_get "$last" "j['time']")"
check "the tick id names the tick" "1" "$(json_get "$last" "int(j['id'].startswith('tick:sched:tick:0:'))")"
locks=$(redis-cli -s "$T/redis.sock" --scan --pattern 'tine:tick:sched:tick:0:*' | wc -l)
if [ "$locks" -ge "$n" ]; then ok "a lock per tick ($locks)"; else fail "tick locks" "$locks locks for $n ticks"; fi
finish
