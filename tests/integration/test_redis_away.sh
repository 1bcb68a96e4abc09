#!/usr/bin/env bash
# A node and a Redis that is away (--redis redis://127.0.0.1:PORT):
#  * away at the start: tined starts anyway, says why in its log and on
#    GET /_tine/v1/ready (503, the reason), answers admin writes and event
#    ingest 503 with JSON, keeps trying without spinning (little CPU), and
#    loads the apps and becomes ready by itself once Redis comes;
#  * away while it runs: HTTP to a deployed app keeps answering 200 from
#    memory and /ready stays 200 (it serves what it loaded); event ingest
#    and admin writes answer 503 with JSON and a reason, never 202; tine.kv
#    fails with a clear error after its short wait; /metrics shows the
#    connections down; activation records wait up to --activation-buffer
#    and the rest are dropped and counted; usage increments sent but not
#    answered when Redis died are counted as maybe lost; everything
#    resumes by itself when Redis is back (records that waited are
#    written).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"

tcp_redis


make_away_app() { # make_away_app DIR LABEL
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<'YAML'
app: away
functions:
  hi: { handler: a.lua#hi }
  kv: { handler: a.lua#kv }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /kv, function: kv }
YAML
  cat >"$1/a.lua" <<LUA
local tine = require "tine"
local M = {}
function M.hi() return "hi $2" end
function M.kv(req)
  local ok, err = pcall(tine.kv.set, "k", req.query.v or "x")
  if not ok then return { status = 503, body = "kv failed: " .. tostring(err) } end
  return tine.kv.get("k")
end
return M
LUA
}

event() { echo "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/away\",\"type\":\"away.test\"}"; }

# is_json_error STATUS_AND_BODY: "STATUS" when the body is {"error": "..."}.
json_status() {
  local code=${1%% *} body=${1#* }
  if json_get "$body" 'j["error"]' >/dev/null 2>&1; then echo "$code json"; else echo "$code not-json: $body"; fi
}

# --- 1. Redis away at the start ------------------------------------------------
redis_up
start_node seed --redis "$RURL"
make_away_app "$T/v1" one
check "a deploy while redis is there" "deployed away version 1" "$(tine deploy "$T/v1")"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
redis_down

start_node a --redis "$RURL" --activation-buffer 50
check "tined starts without redis" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/_tine/v1/health")"
check_contains "and says why, loudly" "redis at $RURL is unreachable: Connection refused; starting anyway" \
  "$(cat "$T/a.log")"
out=$(http GET /_tine/v1/ready)
check "not ready" "503" "${out%% *}"
check_contains "/ready says why" "this node has not loaded the apps from redis yet: redis at $RURL is unreachable" \
  "$out"
check "ingest: 503 with JSON" "503 json" "$(json_status "$(post_event "$(event start-1)")")"
check_contains "naming redis" "redis is unreachable" "$(post_event "$(event start-2)")"
make_away_app "$T/v2" two
out=$(admin PUT /apps/away -H 'Content-Type: application/gzip' --data-binary @<(tar czf - -C "$T/v2" tine.yaml a.lua))
check "a deploy: 503 with JSON" "503 json" "$(json_status "$out")"
check "a rollback: 503 with JSON" "503 json" "$(json_status "$(admin POST /apps/away/rollback)")"
c0=$(cpu_ms "$NODE_PID")
sleep 3
used=$(($(cpu_ms "$NODE_PID") - c0))
[ "$used" -lt 300 ] && ok "it keeps trying without spinning ($used ms of CPU in 3 s)" \
  || fail "no busy loop" "$used ms of CPU in 3 s"
redis_up
wait_for 40 bash -c "curl -s '$URL/_tine/v1/ready' | grep -q '\"ready\": *true'" \
  && ok "ready by itself once redis is there" || fail "ready after redis came" "$(http GET /_tine/v1/ready)"
check "it serves the app it loaded" "200 hi one" "$(http GET /away/hi)"
check_contains "the log says the apps were loaded" "registry: loaded the apps from redis (1)" "$(cat "$T/a.log")"
check "deploy works" "deployed away version 2" "$(tine deploy "$T/v2")"
# The events connection may still be in its backoff: 503 (Retry-After: 1) until it is back.
for i in $(seq 50); do out=$(post_event "$(event start-3)"); [ "${out%% *}" = 202 ] && break; sleep 0.1; done
check "ingest works" "202" "${out%% *}"

# --- 2. Redis away while the node runs ----------------------------------------
check "kv works" "200 before" "$(http GET '/away/kv?v=before')"
# The billing writer must be up (it may still be in its backoff from the
# start without redis) with nothing pending, or the paused call's increments
# would wait here instead of being sent.
wait_for 15 bash -c "m=\$(curl -s '$URL/metrics'); grep -q '^tine_redis_connected{connection=\"billing\"} 1' <<<\"\$m\" && grep -q '^tine_activations_pending 0' <<<\"\$m\"" ||
  fail "the billing writer is up with nothing pending" "$(curl -s "$URL/metrics" | grep -E '^tine_(redis_connected|activations_pending)')"
# Writes out when redis dies: a paused redis takes the usage increments of
# one call and never answers them.
R CLIENT PAUSE 10000 ALL >/dev/null
check "a call while redis is paused" "200 hi two" "$(http GET /away/hi)"
sleep 1 # past the 100 ms batch window: the increments are sent, unanswered
redis_down
fails=0
for i in $(seq 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/away/hi")" = 200 ] || fails=$((fails + 1))
done
check "200 requests to the app while redis is away: none failed" "0" "$fails"
check "still ready: it serves what it loaded" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/_tine/v1/ready")"
bad=""
for i in $(seq 5); do
  out=$(post_event "$(event down-$i)")
  [ "$(json_status "$out")" = "503 json" ] || bad="$out"
done
check "ingest: 503 with JSON every time, never 202" "" "$bad"
check_contains "with the reason" "the events were not stored: redis is unreachable (" \
  "$(post_event "$(event down-x)")"
check_contains "and Retry-After" "retry-after: 1" \
  "$(curl -s -D - -o /dev/null -X POST "$URL/_tine/v1/events" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/cloudevents+json' --data-binary "$(event down-h)" | tr -d '\r' | tr 'A-Z' 'a-z')"
out=$(admin PUT /apps/away -H 'Content-Type: application/gzip' --data-binary @<(tar czf - -C "$T/v1" tine.yaml a.lua))
check "a deploy: 503 with JSON" "503 json" "$(json_status "$out")"
check_contains "naming redis" "redis" "$out"
check "a rollback: 503 with JSON" "503 json" "$(json_status "$(admin POST /apps/away/rollback)")"
t0=$(date +%s%N)
out=$(http GET '/away/kv?v=down')
ms=$((($(date +%s%N) - t0) / 1000000))
check_contains "tine.kv fails with a clear error" "kv failed: " "$out"
check_contains "naming redis" "redis is unreachable" "$out"
[ "$ms" -lt 3000 ] && ok "after its short wait (${ms} ms)" || fail "tine.kv's wait" "$ms ms"
m=$(curl -s "$URL/metrics")
check_contains "/metrics: the connections are down" 'tine_redis_connected{connection="events-command"} 0' "$m"
check_contains "records wait up to --activation-buffer" "tine_activations_pending 50" "$m"
dropped=$(echo "$m" | sed -n 's/^tine_activations_dropped_total //p')
[ "${dropped:-0}" -ge 150 ] && ok "the rest are dropped and counted ($dropped)" || fail "records dropped" "${dropped:-none}"
lost=$(echo "$m" | sed -n 's/^tine_usage_increments_lost_total //p')
[ "${lost:-0}" -ge 1 ] && ok "usage increments out when redis died are counted as maybe lost ($lost)" \
  || fail "usage increments lost" "${lost:-none}"

redis_up
wait_for 15 bash -c "curl -s '$URL/metrics' | grep -q '^tine_redis_connected{connection=\"events-command\"} 1'" \
  && ok "the connections come back by themselves" || fail "connections back" "$(curl -s "$URL/metrics" | grep redis_connected)"
wait_for 10 bash -c "curl -s '$URL/metrics' | grep -q '^tine_activations_pending 0'" \
  && ok "the records that waited are written" || fail "records written" "$(curl -s "$URL/metrics" | grep activations_)"
[ "$(R LLEN tine:acts:away)" -ge 50 ] && ok "they are in redis" || fail "records in redis" "$(R LLEN tine:acts:away)"
for i in $(seq 50); do out=$(post_event "$(event after-1)"); [ "${out%% *}" = 202 ] && break; sleep 0.1; done
check "ingest works again" "202" "${out%% *}"
check "tine.kv works again" "200 after" "$(http GET '/away/kv?v=after')"
check "deploy works again" "deployed away version 3" "$(tine deploy "$T/v1" --force)"
check "ready" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$URL/_tine/v1/ready")"
finish
