#!/usr/bin/env bash
# Observability: GET /metrics passes `promtool check metrics` and counts what
# ran, --metrics-token guards it, `tine logs -f` shows a function's line
# within a second (also one logged through another node), --activations off
# records nothing, and a Redis outage drops records (counted) but keeps the
# node serving and the usage counters.
. "$(dirname "$0")/lib.sh"
command -v promtool >/dev/null || { echo "promtool missing (Debian package prometheus)"; exit 1; }
start_redis
start_node a --redis "$REDIS_URL"
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: obs
functions:
  say:  { handler: f.lua#say }
  boom: { handler: f.lua#boom }
routes:
  - { method: GET, path: /say, function: say }
  - { method: GET, path: /boom, function: boom }
YAML
cat >"$T/app/f.lua" <<'LUA'
local tine = require "tine"
return {
  say = function(req, ctx) tine.log("said", req.query.m or "-") return "ok" end,
  boom = function(req, ctx) error("kaboom") end,
}
LUA
tine deploy "$T/app" >/dev/null
for i in 1 2 3; do http GET /obs/say >/dev/null; done
http GET /obs/boom >/dev/null

# /metrics: the Prometheus text format, checked by promtool.
metrics=$(curl -s "$URL/metrics")
echo "$metrics" >"$T/metrics.txt"
out=$(promtool check metrics <"$T/metrics.txt" 2>&1) && rc=0 || rc=$?
check "promtool check metrics passes" "0" "$rc${out:+ ($out)}"
check_contains "invocations by status" 'tine_invocations_total{app="obs",function="say",status="200"} 3' "$metrics"
check_contains "errors by status" 'tine_invocations_total{app="obs",function="boom",status="500"} 1' "$metrics"
check_contains "duration histogram" 'tine_invocation_duration_seconds_count{app="obs",function="say"} 3' "$metrics"
check_contains "cold starts" 'tine_cold_starts_total{app="obs",function="say"} 1' "$metrics"
check_contains "billed time" 'tine_billed_seconds_total{app="obs",function="say"} 0.300000000' "$metrics"
check_contains "sandboxes by state" 'tine_sandboxes{state="idle"} 2' "$metrics"
check_contains "event queue depth" 'tine_event_queue_length 0' "$metrics"
check_contains "process metrics" 'process_resident_memory_bytes ' "$metrics"
check_contains "content type" "text/plain; version=0.0.4" "$(curl -s -D - -o /dev/null "$URL/metrics")"
# The events module consumes tine:events at once; dead letters stay put.
redis-cli -s "$T/redis.sock" xadd tine:dlq:obs '*' event '{}' function say reason test >/dev/null
redis-cli -s "$T/redis.sock" xadd tine:dlq:other '*' event '{}' function x reason test >/dev/null
check_contains "dead letters summed over the apps" 'tine_event_dead_letters 2' "$(curl -s "$URL/metrics")"

# tine logs: past lines, then -f shows a new line within a second.
wait_for 5 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' logs obs | grep -q said"
check_contains "past log lines" "say v1 info: said" "$(tine logs obs say)"
# boom logs nothing itself: its lines are its raised error and trace (issue 16 item 14).
out=$(run tine logs obs boom)
check_contains "function filter: boom's error" "boom v1 error: raised: f.lua:4: kaboom" "$out"
check "function filter: no line of another function" "" "$(grep said <<<"$out" || true)"
tine logs obs say -f --limit 0 >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
PIDS+=($FOLLOW)
wait_for 10 grep -q "following the logs of obs" "$T/follow.err" || fail "follow started" "$(cat "$T/follow.err")"
marker="marker-$RANDOM$RANDOM"
t0=$(date +%s%N)
http GET "/obs/say?m=$marker" >/dev/null
wait_for 5 grep -q "$marker" "$T/follow.out" || true
t1=$(date +%s%N)
check_contains "tine logs -f shows the line" "said $marker" "$(cat "$T/follow.out")"
ms=$(((t1 - t0) / 1000000))
if [ "$ms" -le 1000 ]; then ok "within a second ($ms ms)"; else fail "within a second" "$ms ms"; fi
# A line logged through another node reaches this follower too (pub/sub).
start_node b --redis "$REDIS_URL"
marker2="other-node-$RANDOM"
http GET "/obs/say?m=$marker2" >/dev/null
wait_for 5 grep -q "$marker2" "$T/follow.out" || true
check_contains "a line from another node" "said $marker2" "$(cat "$T/follow.out")"
http GET "/obs/boom" >/dev/null
sleep 0.3
check "the follower's filter holds" "" "$(grep kaboom "$T/follow.out" || true)"
kill "$FOLLOW" 2>/dev/null || true

# --metrics-token: /metrics needs the bearer token.
start_node m --redis "$REDIS_URL" --metrics-token s3cret
check_contains "metrics without the token: 401" "401" "$(http GET /metrics)"
check_contains "metrics with the token" "200 # HELP" "$(http GET /metrics -H 'Authorization: Bearer s3cret')"

# --activations off: nothing recorded, nothing counted.
start_node off --redis "$REDIS_URL" --activations off
before=$(redis-cli -s "$T/redis.sock" llen tine:acts:obs)
for i in 1 2 3; do http GET /obs/say >/dev/null; done
sleep 0.3
check "--activations off records nothing" "$before" "$(redis-cli -s "$T/redis.sock" llen tine:acts:obs)"
check_contains "--activations off counts nothing" "tine_activations_recorded_total 0" "$(curl -s "$URL/metrics")"
out=$("$BIN/tined" --activations maybe 2>&1 || true)
check_contains "--activations checked" "--activations maybe: expected on or off" "$out"
out=$("$BIN/tined" --price-gb-s 1e-5 2>&1 || true)
check_contains "--price-gb-s checked" "--price-gb-s '1e-5': expected a decimal number" "$out"
out=$("$BIN/tined" --activation-retention 10x 2>&1 || true)
check_contains "--activation-retention checked" "--activation-retention 10x: expected COUNT, AGE" "$out"

# Prices from the node's flags, and the retention bound by count.
start_node p --redis "$REDIS_URL" --price-gb-s 0.001 --price-request 0.5 --activation-retention 5,1h
id=$(curl -s -o /dev/null -D - "$URL/obs/say" | tr -d '\r' | awk 'tolower($1) == "x-tine-invocation-id:" {print $2}')
wait_for 5 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' activation $id >/dev/null"
rec=$(tine --json activation "$id")
# 128 MB for 100 ms = 0.0125 GB-s at 0.001 = 0.0000125, + 0.5
check_contains "prices from the flags" '"cost":"0.500012500000"' "$rec"
ids=()
for i in $(seq 1 8); do
  ids+=("$(curl -s -o /dev/null -D - "$URL/obs/say" | tr -d '\r' | awk 'tolower($1) == "x-tine-invocation-id:" {print $2}')")
done
newest() { tine --json activations obs | python3 -c 'import json, sys; print(" ".join(a["id"] for a in json.load(sys.stdin)["activations"]))'; }
want=$(printf '%s\n' "${ids[@]}" | tail -n 5 | tac | paste -sd ' ')
wait_for 5 test "$(newest)" = "$want" || true
check "the newest 5 kept, listed newest first" "$want" "$(newest)"
check "retention keeps 5" 5 "$(redis-cli -s "$T/redis.sock" llen tine:acts:obs)"
check_contains "the list expires with the age bound" "3" "$(redis-cli -s "$T/redis.sock" ttl tine:acts:obs | cut -c1)"

# Records are stored as JSON arrays of values; those stored as named JSON
# objects by earlier builds are still listed, found by id, completed and
# trimmed by age (1h here) like the arrays. The trim pops from the old end
# while records are too old: each round's young record of one form must
# stop it.
rc() { redis-cli -s "$T/redis.sock" "$@" >/dev/null; }
now_ms=$(($(date +%s) * 1000)); old_ms=$((now_ms - 2 * 3600 * 1000))
named() { printf '{"id":"%s","function":"say","version":1,"trigger":"http","node":"n0","start_ms":%s,"duration_us":5,"queued_us":0,"cold":false,"cold_start_us":0,"cpu_us":4,"billed":true,"billed_ms":100,"memory_mb":128,"cost_pusd":500012500000,"timeout_ms":1000,"status":200,"outcome":"ok","logs":[],"logs_truncated":false}' "$1" "$2"; }
array() { printf '["%s",%s,"say",1,"http","n0",5,0,0,0,4,1,100,128,500012500000,1000,200,"ok"]' "$1" "$2"; }
call() { curl -s -o /dev/null -D - "$URL/obs/say" | tr -d '\r' | awk 'tolower($1) == "x-tine-invocation-id:" {print $2}'; }
a=000000000000000000000000000000aa b=000000000000000000000000000000bb c=000000000000000000000000000000cc
rc del tine:acts:obs
rc rpush tine:acts:obs "$(array $c "$now_ms")" "$(named $a "$old_ms")" "$(array $b "$old_ms")"
check "both forms listed in order" "$c $a $b" "$(newest)"
rec=$(tine --json activation $a)
check_contains "a named record is found by id" "\"id\":\"$a\"" "$rec"
check_contains "and completed like an array" '"cost":"0.500012500000"' "$rec"
check_contains "an array record is found by id" '"gb_s":"0.0125"' "$(tine --json activation $b)"
id=$(call)
wait_for 5 test "$(newest)" = "$id $c" || true
check "old records of both forms trimmed, a young array kept" "$id $c" "$(newest)"
rc del tine:acts:obs
rc rpush tine:acts:obs "$(named $c "$now_ms")" "$(array $b "$old_ms")"
id=$(call)
wait_for 5 test "$(newest)" = "$id $c" || true
check "a young named record kept" "$id $c" "$(newest)"

# Redis goes away: the node keeps serving; records are dropped and counted
# only when the batch is full, so here they wait and usage survives.
wait_for 5 bash -c "curl -s '$URL/metrics' | grep -q '^tine_activations_pending 0'"
kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
check_contains "serving without redis" "200 ok" "$(http GET /obs/say)"
redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
  --logfile "$T/redis2.log" &
PIDS+=($!)
wait_for 10 redis-cli -s "$T/redis.sock" ping || fail "redis restarted" ""
day=$(date -u +%F)
wait_for 10 test -n "$(redis-cli -s "$T/redis.sock" hget "tine:usage:obs:$day" 'say|1|invocations')" || true
check "usage written after redis came back" 1 "$(redis-cli -s "$T/redis.sock" hget "tine:usage:obs:$day" 'say|1|invocations')"
check "the record too" 1 "$(redis-cli -s "$T/redis.sock" llen tine:acts:obs)"
check_contains "warned in JSON" '"level":"warn","msg":"billing: lost the connection to redis' "$(cat "$T/p.log")"
finish
