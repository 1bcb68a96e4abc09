#!/usr/bin/env bash
# Function log triggers: a function's ERROR log line fires the alert
# function (source: function:NAME), once per line; level=error matches
# tine.log.error lines; a failed invocation counts as an error line; a
# function following its own lines does not feed itself.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: flog
functions:
  worker: { handler: h.lua#worker }
  crasher: { handler: h.lua#crasher }
  alert: { handler: h.lua#alert }
  levels: { handler: h.lua#levels }
routes:
  - { method: POST, path: /work, function: worker }
  - { method: GET, path: /crash, function: crasher }
triggers:
  - { on: log, source: 'function:worker', filter: 'ERROR', function: alert }
  - { on: log, source: 'function:crasher', filter: 'ERROR', function: alert }
  - { on: log, source: 'function:worker', filter: 'level=error', function: levels }
  - { on: log, source: 'function:crasher', filter: 'level=error', function: levels }
  - { on: log, source: 'function:alert', filter: 'paged', function: alert }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.worker(req, ctx)
  tine.log("INFO all good")
  tine.log("ERROR disk full on " .. req.body)
  tine.log.error("something broke")
  return "done"
end
function M.crasher(req, ctx) error("kaboom") end
function M.alert(event, ctx)
  tine.kv.incr("alert:" .. event.data.line)
  tine.kv.incr("alerts")
  tine.kv.set("last", tine.json.encode(event))
  tine.log("paged for " .. event.data["function"])
end
function M.levels(event, ctx)
  tine.kv.incr("level:" .. event.data.line)
end
return M
LUA
tine deploy "$T/app" >/dev/null
check "the worker answers" "200 done" "$(http POST /flog/work --data-binary sda1)"
wait_kv 10 flog "alert:ERROR disk full on sda1" 1 || true
check "the ERROR line fired the alert function" "1" "$(rkv flog "alert:ERROR disk full on sda1")"
last=$(rkv flog last)
check "event type" "tine.log.line" "$(json_get "$last" "j['type']")"
check "event source" "tine://flog/function/worker" "$(json_get "$last" "j['source']")"
check "event data: the level" "info" "$(json_get "$last" "j['data']['level']")"
check "event data: an invocation id" "32" "$(json_get "$last" "len(j['data']['invocation_id'])")"
wait_kv 10 flog "level:something broke" 1 || true
check "level=error matched tine.log.error" "1" "$(rkv flog "level:something broke")"
check "level=error did not match an info line" "" "$(rkv flog "level:ERROR disk full on sda1")"
check "the INFO line did not fire" "" "$(rkv flog "alert:INFO all good")"

http GET /flog/crash >/dev/null
wait_for 10 bash -c "redis-cli -s $T/redis.sock --scan --pattern 'tine:kv:flog:alert:ERROR crasher failed*' | grep -q ."
k=$(redis-cli -s "$T/redis.sock" --scan --pattern 'tine:kv:flog:alert:ERROR crasher failed*' | head -1)
check_contains "a failed invocation is an error line" "kaboom" "$k"
# The activation's logs hold the error and its trace (tine's own lines):
# a level=error trigger fires once for the failure, not once per trace line.
levels() { redis-cli -s "$T/redis.sock" --scan --pattern 'tine:kv:flog:level:*' | sort; }
wait_for 10 bash -c "redis-cli -s $T/redis.sock --scan --pattern 'tine:kv:flog:level:ERROR crasher failed*' | grep -q ."
sleep 0.5
check "level=error: one line per failed invocation" "2" "$(levels | grep -c . || true)"
check_contains "level=error: the failure line" "level:ERROR crasher failed: " "$(levels)"

sleep 1
check "alert ran once per line, not on its own lines" "2" "$(rkv flog alerts)"
finish
