#!/usr/bin/env bash
# Retries and dead letters: a failing function is retried with backoff until
# it succeeds; one that keeps failing lands in its app's dead-letter stream
# with the reason after its last attempt; tine events dlq lists it and
# tine events replay sends it again.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: retry
functions:
  flaky: { handler: h.lua#flaky }
  broken: { handler: h.lua#broken }
triggers:
  - { on: event, type: flaky.run, function: flaky }
  - { on: event, type: broken.run, function: broken, attempts: 2 }
YAML
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
-- Fails until it has been called event.data.fail_times + 1 times.
function M.flaky(event, ctx)
  local n = tine.kv.incr("calls:" .. event.id)
  tine.kv.set("at:" .. event.id .. ":" .. n, tostring(os.time()))
  if n <= event.data.fail_times then error("flaky failure " .. n) end
  tine.kv.set("done:" .. event.id, tostring(n))
end
-- Fails until the key "fixed" is set.
function M.broken(event, ctx)
  tine.kv.incr("calls:" .. event.id)
  if not tine.kv.get("fixed") then error("deliberate failure: disk on fire") end
  tine.kv.incr("done:" .. event.id)
end
return M
LUA
tine deploy "$T/app" >/dev/null

t0=$(date +%s%N)
post_event '{"specversion":"1.0","id":"f-1","source":"/t","type":"flaky.run","data":{"fail_times":2}}' >/dev/null
wait_kv 20 retry done:f-1 3 || true
t1=$(date +%s%N)
check "flaky: succeeded on the third attempt" "3" "$(rkv retry done:f-1)"
check "flaky: called exactly three times" "3" "$(rkv retry calls:f-1)"
ms=$(( (t1 - t0) / 1000000 ))
# Backoff 200 ms then 400 ms: at least 600 ms in all.
if [ "$ms" -ge 550 ]; then ok "flaky: retried with backoff ($ms ms)"; else fail "flaky: backoff" "done after $ms ms"; fi
check "flaky: no dead letter" "0" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:retry)"

post_event '{"specversion":"1.0","id":"b-1","source":"/t","type":"broken.run"}' >/dev/null
post_event '{"specversion":"1.0","id":"b-2","source":"/t","type":"broken.run"}' >/dev/null
wait_for 20 bash -c "[ \$(redis-cli -s $T/redis.sock XLEN tine:dlq:retry) -eq 2 ]" || true
check "broken: two dead letters" "2" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:retry)"
check "broken: called as often as its attempts" "2" "$(rkv retry calls:b-1)"
sleep 0.5
check "broken: no more calls after the last attempt" "2" "$(rkv retry calls:b-1)"
out=$(admin GET /apps/retry/dlq)
check "dlq API: 200" "200" "${out%% *}"
body=${out#* }
# Events are not ordered: b-2 may have failed for good before b-1.
B1="[d for d in j['dead_letters'] if d['event']['id'] == 'b-1'][0]"
check "dlq API: the function" "broken" "$(json_get "$body" "$B1['function']")"
check "dlq API: the attempts" "2" "$(json_get "$body" "$B1['attempts']")"
check_contains "dlq API: the reason" "deliberate failure: disk on fire" "$(json_get "$body" "$B1['reason']")"
check "dlq API: the event" "b-1" "$(json_get "$body" "$B1['event']['id']")"
out=$(tine events dlq retry)
check_contains "tine events dlq: header" "ID" "$(echo "$out" | head -1)"
check_contains "tine events dlq: a row" "broken.run b-2" "$out"
check_contains "tine events dlq: the reason" "disk on fire" "$out"

# Replay one by id while still broken: it fails twice more and comes back.
id1=$(json_get "$body" "$B1['id']")
out=$(tine events replay retry "$id1")
check "replay by id" "replayed 1 dead letter of retry" "$out"
wait_kv 20 retry calls:b-1 4 || true
check "replayed: attempts counted afresh" "4" "$(rkv retry calls:b-1)"
wait_for 20 bash -c "[ \$(redis-cli -s $T/redis.sock XLEN tine:dlq:retry) -eq 2 ]" || true
check "replayed while broken: a dead letter again" "2" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:retry)"

# Fixed: replaying everything delivers both.
redis-cli -s "$T/redis.sock" SET tine:kv:retry:fixed 1 >/dev/null
out=$(tine events replay retry)
check "replay all" "replayed 2 dead letters of retry" "$out"
wait_kv 20 retry done:b-1 1 || true
wait_kv 20 retry done:b-2 1 || true
check "replayed after the fix: b-1 delivered" "1" "$(rkv retry done:b-1)"
check "replayed after the fix: b-2 delivered" "1" "$(rkv retry done:b-2)"
check "the dead-letter stream is empty" "0" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:retry)"
check "tine events dlq when empty" "no dead letters" "$(tine events dlq retry)"
out=$(tine events replay retry 1-0 2>&1; echo "rc=$?")
check_contains "replay of an unknown id fails" "has no dead letter 1-0" "$out"
check_contains "replay of an unknown id: exit 1" "rc=1" "$out"
check "no retry left behind" "0" "$(redis-cli -s "$T/redis.sock" ZCARD tine:retry)"

# A dead letter replayed once its function is gone from the live version
# (looked up by name in the version's index): it comes back at once, naming
# why, without being retried.
redis-cli -s "$T/redis.sock" DEL tine:kv:retry:fixed >/dev/null
post_event '{"specversion":"1.0","id":"b-3","source":"/t","type":"broken.run"}' >/dev/null
wait_for 20 bash -c "[ \$(redis-cli -s $T/redis.sock XLEN tine:dlq:retry) -eq 1 ]" || true
check "broken again: one dead letter" "1" "$(redis-cli -s "$T/redis.sock" XLEN tine:dlq:retry)"
cat >"$T/app/tine.yaml" <<'YAML'
app: retry
functions:
  flaky: { handler: h.lua#flaky }
triggers:
  - { on: event, type: flaky.run, function: flaky }
YAML
tine deploy "$T/app" >/dev/null
out=$(tine events replay retry)
check "replay to a function no longer there" "replayed 1 dead letter of retry" "$out"
gone() { admin GET /apps/retry/dlq | grep -q 'has no function broken any more'; }
wait_for 20 gone || true
body=$(admin GET /apps/retry/dlq)
body=${body#* }
B3="[d for d in j['dead_letters'] if d['event']['id'] == 'b-3'][0]"
check "dead again at once: the reason" "app retry has no function broken any more" \
  "$(json_get "$body" "$B3['reason']")"
check "dead again at once: not called again (its 2 attempts only)" "2" "$(rkv retry calls:b-3)"
check_json_log "$T/a.log"
finish
