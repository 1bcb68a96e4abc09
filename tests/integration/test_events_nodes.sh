#!/usr/bin/env bash
# Node lifecycle: tine.node.joined when a node's heartbeat appears and
# tine.node.lost when it expires, each announced once across the cluster.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: nodes
functions:
  watch: { handler: h.lua#watch }
triggers:
  - { on: event, type: 'tine.node.*', function: watch }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.watch(event, ctx)
  tine.kv.incr(event.type .. ":" .. event.data.node)
  tine.kv.set("last:" .. event.type, tine.json.encode(event))
end
return M
LUA
tine deploy "$T/app" >/dev/null
start_node b --redis "$REDIS_URL" --node-id node-b --docker-events off
start_node c --redis "$REDIS_URL" --node-id node-c --docker-events off
wait_kv 15 nodes "tine.node.joined:node-c" 1 || true
check "node-b joined, announced once" "1" "$(rkv nodes tine.node.joined:node-b)"
check "node-c joined, announced once" "1" "$(rkv nodes tine.node.joined:node-c)"
last=$(rkv nodes last:tine.node.joined)
check "the source names the node" "tine://node-c" "$(json_get "$last" "j['source']")"
kill -9 "$NODE_PID"   # node c
wait "$NODE_PID" 2>/dev/null || true
wait_kv 20 nodes "tine.node.lost:node-c" 1 || true
check "node-c lost, announced once" "1" "$(rkv nodes tine.node.lost:node-c)"
sleep 2.5
check "still once after more checks by the two survivors" "1" "$(rkv nodes tine.node.lost:node-c)"
check "the joins were not announced again" "1" "$(rkv nodes tine.node.joined:node-b)"
check "the lost node left the registry" "" "$(run redis-cli -s "$T/redis.sock" HGET tine:nodes node-c)"
# It comes back: a new join.
start_node c --redis "$REDIS_URL" --node-id node-c --docker-events off
wait_kv 15 nodes "tine.node.joined:node-c" 2 || true
check "node-c joined again after its restart" "2" "$(rkv nodes tine.node.joined:node-c)"
finish
