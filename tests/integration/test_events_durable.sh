#!/usr/bin/env bash
# Durability: an event accepted (202) is processed even when tined is killed
# with SIGKILL between acceptance and the end of processing: the node re-reads
# its pending entries when it comes back; a node that never comes back has
# its pending entries taken over by a surviving node.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: dur
functions:
  slow: { handler: h.lua#slow, timeout: 10s }
triggers:
  - { on: event, type: slow.run, function: slow }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.slow(event, ctx)
  tine.kv.incr("started:" .. event.id)
  local t = os.clock() + (event.data and event.data.secs or 1.5)
  while os.clock() < t do end
  tine.kv.incr("done:" .. event.id)
end
return M
LUA
start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off
tine deploy "$T/app" >/dev/null

# 1. Killed while the function runs: processed after the restart.
out=$(post_event '{"specversion":"1.0","id":"k-1","source":"/t","type":"slow.run","data":{"secs":1.5}}')
check "accepted" "202" "${out%% *}"
wait_kv 20 dur started:k-1 1 || true
check "the function started" "1" "$(rkv dur started:k-1)"
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
check "killed before it finished" "" "$(rkv dur done:k-1)"
check "the entry is still pending" "1" "$(redis-cli -s "$T/redis.sock" XPENDING tine:events tine | head -1)"

# 2. Accepted right before the kill, no time to start: 20 events.
start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off
for i in $(seq 1 20); do
  post_event "{\"specversion\":\"1.0\",\"id\":\"m-$i\",\"source\":\"/t\",\"type\":\"slow.run\",\"data\":{\"secs\":0.01}}" >/dev/null
done
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true

start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off
wait_kv 30 dur done:k-1 1 || true
check "after the restart: the interrupted event was processed" "1" "$(rkv dur done:k-1)"
missing=0
for i in $(seq 1 20); do
  wait_kv 30 dur "done:m-$i" 1 || true
  v=$(rkv dur "done:m-$i")
  [ -n "$v" ] && [ "$v" -ge 1 ] || missing=$((missing + 1))
done
check "after the restart: all 20 events accepted before the kill were processed" "0" "$missing"
wait_for 10 bash -c "[ \"\$(redis-cli -s $T/redis.sock XPENDING tine:events tine | head -1)\" = 0 ]" || true
check "nothing pending any more" "0" "$(redis-cli -s "$T/redis.sock" XPENDING tine:events tine | head -1)"

# 3. A node that does not come back: another node takes its entries over
#    once its heartbeat expired.
post_event '{"specversion":"1.0","id":"c-1","source":"/t","type":"slow.run","data":{"secs":3}}' >/dev/null
wait_kv 20 dur started:c-1 1 || true
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
start_node b --redis "$REDIS_URL" --node-id node-b --docker-events off
wait_kv 40 dur done:c-1 1 || true
check "a surviving node processed the dead node's pending event" "1" "$(rkv dur done:c-1)"
check_contains "it says it took over" "took over 1 pending entry of lost nodes" "$(cat "$T/b.log")"
finish
