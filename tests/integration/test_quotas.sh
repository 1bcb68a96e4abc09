#!/usr/bin/env bash
# Quotas per namespace across two nodes on one Redis (docs/tenancy.md,
# Quotas): each quota trips with 429, its name and a Retry-After, whichever
# node the calls reach (concurrency, per_minute, sandboxes, memory_mb,
# spend_per_day), and the cluster's use is what tine quota shows; who may
# read and set them (quota.read: admin and up; quota.manage: cluster-admin);
# every change and refusal in the audit log; values out of range, unknown
# namespaces and malformed flags refused with a clear message. Slow calls
# wait in a tine.http call on a loopback fixture until the test opens their
# gate, so they hold a call and a sandbox without using a CPU.
. "$(dirname "$0")/lib.sh"

start_http_fixture
GATE=$FIX
open_gate() { for g in "$@"; do curl -s -X POST "http://127.0.0.1:$GATE/open?gate=$g" >/dev/null; done; }

start_redis
start_node a --redis "$REDIS_URL"
start_node b --redis "$REDIS_URL"
A=$URL_a B=$URL_b
TOKEN=$TOKEN_a
URL=$A
admin PUT /namespaces/team >/dev/null
admin PUT /namespaces/other >/dev/null

mkdir -p "$T/q"
cat >"$T/q/tine.yaml" <<YAML
app: q
namespace: team
allow_outbound: [ 127.0.0.1 ]
functions:
  slow: { handler: f.lua#slow, memory: 128, concurrency: 8, timeout: 50s }
  hi:   { handler: f.lua#hi, memory: 128 }
  big:  { handler: f.lua#hi, memory: 256 }
triggers:
  - { on: event, type: q.ping, function: hi }
routes:
  - { method: GET, path: /slow, function: slow }
  - { method: GET, path: /hi, function: hi }
  - { method: GET, path: /big, function: big }
YAML
cat >"$T/q/f.lua" <<LUA
local tine = require "tine"
return {
  slow = function(req)
    return tine.http.request{ url = "http://127.0.0.1:$GATE/wait?gate=" .. req.query.gate }.body
  end,
  hi = function() return "hi" end,
}
LUA
run tine deploy "$T/q" >/dev/null
wait_for 10 curl -sf "$B/q/hi"
check "the app answers on both nodes" "200 200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "$A/q/hi") $(curl -s -o /dev/null -w '%{http_code}' "$B/q/hi")"

key() { # key NAME ROLE NS: a new API key
  pyget "$(curl -s -X POST "$A/_tine/v1/keys" -H "Authorization: Bearer $TOKEN" \
    --data "{\"name\":\"$1\",\"role\":\"$2\",\"namespace\":\"$3\"}")" 'd["key"]'
}
K_ADMIN=$(key team-admin admin team)
K_DEPLOYER=$(key team-deployer deployer team)
K_OTHER=$(key other-admin admin other)

# set NODE BODY: PUT the quotas of team through NODE as the cluster admin;
# prints "STATUS BODY".
set_quota() {
  local out
  out=$(curl -s -o "$T/body" -w '%{http_code}' -X PUT "$1/_tine/v1/namespaces/team/quota" \
    -H "Authorization: Bearer $TOKEN" --data "$2")
  echo "$out $(cat "$T/body")"
}
# used QUOTA: the cluster's use of a quota of team, as the node shows it;
# used_is QUOTA N: whether it is N.
used() {
  pyget "$(curl -s "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $TOKEN")" \
    "d['quotas']['$1']['used']"
}
used_is() { test "$(used "$1")" = "$2"; }
# limit_on NODE TOKEN QUOTA: the limit NODE applies (what it shows).
limit_on() {
  pyget "$(curl -s "$1/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $2")" "d['quotas']['$3']['limit']"
}
# status NODE PATH: the status of one call; status_is NODE PATH CODE.
status_is() { test "$(call "$1" "$2" | cut -d' ' -f1)" = "$3"; }
# call NODE PATH: "STATUS RETRY-AFTER BODY" of one call.
call() {
  local out
  out=$(curl -s -D "$T/head" -o "$T/cbody" -w '%{http_code}' "$1$2")
  echo "$out $(tr -d '\r' <"$T/head" | sed -n 's/^[Rr]etry-[Aa]fter: //p') $(cat "$T/cbody")"
}
# hold NODE GATE: a slow call in the background, its answer in $T/held.GATE.
hold() {
  curl -s -o "$T/held.$2" -w '%{http_code}' "$1/q/slow?gate=$2" >"$T/held.$2.status" &
  PIDS+=($!)
}
# evict: no idle sandbox of q left on either node, and the cluster knows.
evict() {
  curl -s -o /dev/null -X DELETE "$A/_tine/v1/apps/q/sandboxes" -H "Authorization: Bearer $TOKEN"
  curl -s -o /dev/null -X DELETE "$B/_tine/v1/apps/q/sandboxes" -H "Authorization: Bearer $TOKEN_b"
  wait_for 5 used_is sandboxes 0
}
# settle: limits set on node a reach node b within a second.
settle() { sleep 1.2; }

# ------------------------------------------------------------ who may
check "an admin of team reads its quotas" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $K_ADMIN")"
out=$(curl -s -X PUT "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $K_ADMIN" --data '{"concurrency":1}')
check_contains "an admin of team may not set them" "lacks permission quota.manage" "$out"
out=$(curl -s "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $K_DEPLOYER")
check_contains "a deployer may not read them" "lacks permission quota.read" "$out"
out=$(curl -s -w ' %{http_code}' "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $K_OTHER")
check_contains "an admin of another namespace may not read them" "lacks permission quota.read in namespace team\"} 403" \
  "$out"

# ------------------------------------------------------------ bad input
bad() { # bad NAME BODY EXPECTED_STATUS EXPECTED_TEXT
  local out
  out=$(set_quota "$A" "$2")
  check_contains "$1" "$3" "${out%% *}"
  check_contains "$1: says why" "$4" "$out"
}
bad "concurrency 0 refused" '{"concurrency":0}' 400 \
  'body: concurrency: expected an integer from 1 to 1000000, or null to remove it (got 0)'
bad "a negative count refused" '{"sandboxes":-3}' 400 'sandboxes: expected an integer from 1 to 1000000'
bad "a count over the maximum refused" '{"per_minute":1000000001}' 400 'per_minute: expected an integer from 1 to 1000000000'
bad "a count as a string refused" '{"memory_mb":"100"}' 400 'memory_mb: expected an integer'
bad "a spend that is not an amount refused" '{"spend_per_day":"12,50"}' 400 \
  "spend_per_day: expected dollars from 0.000000000001 to 1000000"
bad "a spend over the maximum refused" '{"spend_per_day":"1000001"}' 400 "over the largest amount accepted"
bad "an unknown quota refused" '{"cpu":3}' 400 "unknown member 'cpu'"
bad "an empty change refused" '{}' 400 "no quota given"
bad "a body that is not JSON refused" 'concurrency=3' 400 "body: expected a JSON object"
out=$(curl -s -w ' %{http_code}' -X PUT "$A/_tine/v1/namespaces/nope/quota" -H "Authorization: Bearer $TOKEN" \
  --data '{"concurrency":3}')
check_contains "an unknown namespace: 404" "no namespace named 'nope'\"} 404" "$out"
cli() { local rc=0; "$BIN/tine" --url "$A" --token "$TOKEN" "$@" >"$T/cli.out" 2>&1 || rc=$?; echo "$rc $(cat "$T/cli.out")"; }
check_contains "tine quota set: a flag that is not a number" \
  "2 tine quota: --concurrency: expected a whole number from 1 to 1000000, or none (got 'ten')" \
  "$(cli quota set team --concurrency ten)"
check_contains "tine quota set: 0" "--per-minute: expected a whole number from 1 to 1000000000, or none (got '0')" \
  "$(cli quota set team --per-minute 0)"
check_contains "tine quota set: bad dollars" "--spend-per-day: expected dollars such as 12.50, or none (got '1.2.3')" \
  "$(cli quota set team --spend-per-day 1.2.3)"
check_contains "tine quota set: nothing to set" "quota set needs at least one of" "$(cli quota set team)"
check_contains "tine quota set: an unknown flag" "2 " "$(cli quota set team --cpu 3)"
check "nothing was set by the refused changes" "[]" \
  "$(pyget "$(curl -s "$A/_tine/v1/quotas" -H "Authorization: Bearer $TOKEN")" 'd["quotas"]')"

# ------------------------------------------------------------ concurrency
run tine quota set team --concurrency 2 >"$T/set.out"
check_contains "tine quota set says so" "quotas of team set" "$(cat "$T/set.out")"
check_contains "and shows the limit" "concurrency    2" "$(cat "$T/set.out")"
settle
hold "$A" c1
hold "$B" c2
wait_for 10 used_is concurrency 2 || fail "two calls held" "used $(used concurrency)"
out=$(call "$A" /q/hi)
check "a third call on node a: 429, Retry-After 1" "429 1" "$(echo "$out" | cut -d' ' -f1-2)"
check_contains "its error names the quota" '"quota":"concurrency"' "$out"
check_contains "and says why" "namespace team is at its quota concurrency: 2 calls at once across the cluster" "$out"
out=$(call "$B" /q/hi)
check "on node b too" "429 1" "$(echo "$out" | cut -d' ' -f1-2)"
out=$(curl -s -X POST "$B/_tine/v1/apps/q/functions/hi/invoke" -H "Authorization: Bearer $TOKEN_b" --data '{}' \
  -w ' %{http_code}')
check_contains "the admin API's invoke too" '"quota":"concurrency"' "$out"
check_contains "with 429" " 429" "$out"
open_gate c1 c2
wait_for 10 test -s "$T/held.c1.status" -a -s "$T/held.c2.status"
check "the held calls were answered" "200 200" "$(cat "$T/held.c1.status") $(cat "$T/held.c2.status")"
wait_for 3 status_is "$A" /q/hi 200
check "a call once they ended: 200" "200" "$(call "$A" /q/hi | cut -d' ' -f1)"

# ------------------------------------------------------------ per_minute
set_quota "$A" '{"concurrency":null,"per_minute":4}' >/dev/null
settle
# Not across a minute's end (Redis's clock is this machine's).
s=$(date +%s)
[ $((s % 60)) -lt 45 ] || sleep $((61 - s % 60))
codes=""
for n in "$A" "$B" "$A" "$B"; do codes="$codes $(call "$n" /q/hi | cut -d' ' -f1)"; done
check "four calls in the minute across the nodes" " 200 200 200 200" "$codes"
out=$(call "$B" /q/hi)
ra=$(echo "$out" | cut -d' ' -f2)
check "the fifth: 429" "429" "$(echo "$out" | cut -d' ' -f1)"
check_contains "naming per_minute" '"quota":"per_minute"' "$out"
[ "$ra" -ge 1 ] && [ "$ra" -le 60 ] && ok "Retry-After is the rest of the minute ($ra s)" ||
  fail "Retry-After is the rest of the minute" "got [$ra]"
check "the other node refuses too" "429" "$(call "$A" /q/hi | cut -d' ' -f1)"
run tine quota team >"$T/q.out"
check_contains "tine quota shows the minute's use" "per_minute     4      4" "$(cat "$T/q.out")"

# ------------------------------------------------------------ sandboxes
set_quota "$A" '{"per_minute":null,"sandboxes":2}' >/dev/null
settle
evict
hold "$A" s1
hold "$B" s2
wait_for 10 used_is sandboxes 2 || fail "two sandboxes held" "used $(used sandboxes)"
out=$(call "$A" /q/hi)
check "a call needing a third sandbox: 429, Retry-After 1" "429 1" "$(echo "$out" | cut -d' ' -f1-2)"
check_contains "naming sandboxes" '"quota":"sandboxes"' "$out"
check "on node b too" "429" "$(call "$B" /q/big | cut -d' ' -f1)"
open_gate s1 s2
wait_for 10 test -s "$T/held.s1.status" -a -s "$T/held.s2.status"
# Their idle sandboxes count until they close; on a node, another
# function's idle one is closed to make room.
check "a call after them: an idle sandbox makes room" "200" "$(call "$A" /q/hi | cut -d' ' -f1)"

# ------------------------------------------------------------ memory_mb
set_quota "$A" '{"sandboxes":null,"memory_mb":300}' >/dev/null
settle
evict
hold "$A" m1
wait_for 10 used_is memory_mb 128 || fail "128 MB held" "used $(used memory_mb)"
out=$(call "$B" /q/big)
check "a 256 MB sandbox beside 128 MB of 300: 429" "429 1" "$(echo "$out" | cut -d' ' -f1-2)"
check_contains "naming memory_mb" '"quota":"memory_mb"' "$out"
check_contains "with the memory" "300 MB of sandboxes across the cluster" "$out"
check "a 128 MB one fits" "200" "$(call "$B" /q/hi | cut -d' ' -f1)"
open_gate m1
wait_for 10 test -s "$T/held.m1.status"

# ------------------------------------------------------------ spend_per_day
sleep 1 # the held call's cost (its seconds of waiting) is reported
# A call of 128 MB costs $0.000000408334 at the default prices: the limit
# is what was spent today so far (the calls above) and $0.000001 more.
spent=$(pyget "$(curl -s "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $TOKEN")" \
  'd["quotas"]["spend_per_day"]["used_pusd"]')
limit=$(python3 -c "import sys; p = int(sys.argv[1]) + 1000000; print('%d.%012d' % (p // 10**12, p % 10**12))" "$spent")
set_quota "$A" "{\"memory_mb\":null,\"spend_per_day\":\"$limit\"}" >/dev/null
settle
codes=""
for i in 1 2 3 4 5 6 7 8; do
  c=$(call "$A" /q/hi | cut -d' ' -f1)
  codes="$codes $c"
  [ "$c" = 429 ] && break
  sleep 0.3 # its cost reaches Redis within a report (250 ms)
done
check_contains "calls until the day's spend passes the limit, then 429" "200 429" "$codes"
out=$(call "$B" /q/hi)
ra=$(echo "$out" | cut -d' ' -f2)
check "the other node refuses too" "429" "$(echo "$out" | cut -d' ' -f1)"
check_contains "naming spend_per_day" '"quota":"spend_per_day"' "$out"
check_contains "with what was spent" "spent today of \$$(echo "$limit" | sed 's/0*$//') (UTC days" "$out"
now=$(date -u +%s)
left=$((86400 - now % 86400))
[ "$ra" -ge $((left - 5)) ] && [ "$ra" -le $((left + 5)) ] && ok "Retry-After is the rest of the UTC day ($ra s)" ||
  fail "Retry-After is the rest of the UTC day" "got [$ra], $left s left"
# An event for the namespace waits in the retry set until the day ends
# (its Retry-After), without counting an attempt: never dead-lettered.
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$A/_tine/v1/events" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/cloudevents+json' \
  --data '{"specversion":"1.0","id":"over-1","source":"test","type":"q.ping","data":{}}')
check "an event for the namespace is accepted" 202 "$code"
retry_due() { redis-cli -s "$T/redis.sock" zrange tine:retry 0 -1 withscores | sed -n 2p; }
has_retry() { test -n "$(retry_due)"; }
wait_for 10 has_retry || true
due=$(retry_due)
now_ms=$(($(date -u +%s) * 1000))
[ -n "$due" ] && [ "${due%.*}" -ge $((now_ms + (left - 10) * 1000)) ] &&
  ok "its call, refused, is retried once the day ends" || fail "its call, refused, is retried once the day ends" \
  "retry due at [$due], now $now_ms, $left s left in the day"
check_contains "counting no attempt" '"attempt":1' "$(redis-cli -s "$T/redis.sock" zrange tine:retry 0 -1)"
check "and not dead-lettered" "0" "$(redis-cli -s "$T/redis.sock" xlen tine:dlq:q)"
# The spend is billing's: the day's usage of the namespace's one app.
sleep 0.6
day=$(date -u +%Y-%m-%d)
usage=$(pyget "$(curl -s "$A/_tine/v1/usage?app=q&from=$day&to=$day" -H "Authorization: Bearer $TOKEN")" \
  'd["total"]["cost_pusd"]')
spent=$(pyget "$(curl -s "$A/_tine/v1/namespaces/team/quota" -H "Authorization: Bearer $TOKEN")" \
  'd["quotas"]["spend_per_day"]["used_pusd"]')
[ "$usage" -ge "$spent" ] && [ $((usage - spent)) -lt 2000 ] &&
  ok "the spend shown is the day's billed usage ($spent of $usage picodollars; < 1 nanodollar per node carried)" ||
  fail "the spend shown is the day's billed usage" "spent $spent, usage $usage"

# ------------------------------------------------------------ reads, audit
run tine quota >"$T/all.out"
check_contains "tine quota lists the namespaces with a quota" "namespace team, 2 nodes reporting" "$(cat "$T/all.out")"
check_contains "with each quota" "spend_per_day  \$$(echo "$limit" | sed 's/0*$//')" "$(cat "$T/all.out")"
run tine --token "$K_ADMIN" quota team >"$T/adm.out"
check_contains "an admin of team reads them with tine quota" "namespace team" "$(cat "$T/adm.out")"
check "a key of another namespace lists none" "[]" \
  "$(pyget "$(curl -s "$A/_tine/v1/quotas" -H "Authorization: Bearer $K_OTHER")" 'd["quotas"]')"
audit=$(curl -s "$A/_tine/v1/audit?namespace=team&limit=1000" -H "Authorization: Bearer $TOKEN" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]:
    if e["action"] == "quota.set":
        print(e["outcome"], e["status"], e["key"], e["target"], e["detail"][:60])')
check_contains "quota changes are audited" "ok 200 admin-token team" "$audit"
check_contains "with the new limits" '{"namespace":"team","quotas":{"concurrency":{"limit":2' "$audit"
check_contains "a refused change too" "refused 403 $(echo "$K_ADMIN" | cut -d: -f1) team" "$audit"
check_contains "and a failed one" "failed 400 admin-token team" "$audit"
# Removing every quota: calls are admitted again.
set_quota "$A" '{"spend_per_day":null}' >/dev/null
wait_for 3 status_is "$B" /q/hi 200
check "no quota left: calls answered" "200" "$(call "$B" /q/hi | cut -d' ' -f1)"
finish
