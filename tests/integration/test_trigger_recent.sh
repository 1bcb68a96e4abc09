#!/usr/bin/env bash
# The recent events of each trigger (GET /_tine/v1/apps/{app}/triggers/recent):
# events, schedule ticks and log lines that fired a function, newest first,
# with the event's type, source and id, the outcome (ok, retry, dead), the
# invocation (its activation record exists) and the dead letters per
# trigger; filters by function and kind; bounded to 20 a trigger; bad input
# and a key without events.read refused.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --docker-events off
mkdir -p "$T/r"
cat >"$T/r/tine.yaml" <<'YAML'
app: r
functions:
  paid:   { handler: r.lua#paid }
  broken: { handler: r.lua#broken }
  tick:   { handler: r.lua#tick }
  loud:   { handler: r.lua#loud }
  alert:  { handler: r.lua#tick }
routes:
  - { method: GET, path: /loud, function: loud }
triggers:
  - { on: event, type: 'order.*', source: '/shop*', function: paid }
  - { on: event, type: order.broken, function: broken, attempts: 2 }
  - { on: schedule, cron: '@every 1s', function: tick }
  - { on: log, source: 'function:loud', filter: 'ALARM', function: alert }
  - { on: event, type: 'note.*', function: paid }
YAML
cat >"$T/r/r.lua" <<'LUA'
return {
  paid = function() return "ok" end,
  broken = function() error("broken on purpose") end,
  tick = function() return "t" end,
  loud = function() require("tine").log("ALARM now"); return "l" end,
}
LUA
tine deploy "$T/r" >/dev/null
emit() { # emit ID TYPE SOURCE
  admin POST /events -H 'Content-Type: application/cloudevents+json' \
    --data-binary "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"$3\",\"type\":\"$2\"}" >/dev/null
}
for i in $(seq 1 25); do emit "p-$i" order.paid /shop/web; done
emit "b-1" order.broken /other
check "the loud call" "200" "$(http GET /r/loud | cut -d" " -f1)"
recent() { admin GET "/apps/r/triggers/recent$1" | cut -d' ' -f2-; }
wait_for 20 sh -c "redis-cli -s '$T/redis.sock' XLEN tine:dlq:r | grep -qv '^0'" || true
wait_for 10 sh -c "redis-cli -s '$T/redis.sock' LLEN tine:recent:r:log:alert | grep -qv '^0'" || true
sleep 1.2 # a schedule tick or two
all=$(recent "")
check "one list per trigger (two to one function share theirs), in the manifest's order" "event/paid event/broken schedule/tick log/alert" \
  "$(pyget "$all" '" ".join(t["trigger"] + "/" + t["function"] for t in d["triggers"])')"
check "what fires each" '["order.* from /shop*, note.*", "order.broken", "@every 1s", "function:loud"]' \
  "$(pyget "$all" 'json.dumps([t["on"] for t in d["triggers"]])')"
check "20 events kept of 25, newest first" "20 p-25 p-6" \
  "$(pyget "$all" '" ".join([str(len(d["triggers"][0]["events"])), d["triggers"][0]["events"][0]["id"], d["triggers"][0]["events"][-1]["id"]])')"
check "type, source, outcome, attempt of an event" "order.paid /shop/web ok 1" \
  "$(pyget "$all" '" ".join(str(d["triggers"][0]["events"][0][k]) for k in ("type", "source", "outcome", "attempt"))')"
inv=$(pyget "$all" 'd["triggers"][0]["events"][0]["invocation"]')
check "the invocation's activation exists, of paid" "paid event" \
  "$(admin GET "/activations/$inv" | cut -d' ' -f2- | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["function"], a["trigger"])')"
check "the failing trigger: a retry, then dead with the reason" "dead:2 retry:1" \
  "$(pyget "$all" '" ".join("%s:%d" % (e["outcome"], e["attempt"]) for e in d["triggers"][1]["events"])')"
check_contains "the reason of the dead one" "broken on purpose" "$(pyget "$all" 'd["triggers"][1]["events"][0]["reason"]')"
check "dead letters per trigger and of the app" "0 1 0 0 / 1" \
  "$(pyget "$all" '" ".join(str(t["dead_letters"]) for t in d["triggers"]) + " / " + str(d["dead_letters"])')"
check "schedule ticks listed, ok" "True" \
  "$(pyget "$all" 'len(d["triggers"][2]["events"]) >= 1 and all(e["outcome"] == "ok" and e["invocation"] for e in d["triggers"][2]["events"])')"
check "a log line fired the log trigger" "ok" "$(pyget "$all" 'd["triggers"][3]["events"][0]["outcome"]')"
check "filtered by function" "broken" "$(pyget "$(recent '?function=broken')" '" ".join(t["function"] for t in d["triggers"])')"
check "filtered by kind" "schedule/tick" "$(pyget "$(recent '?trigger=schedule')" '" ".join(t["trigger"] + "/" + t["function"] for t in d["triggers"])')"
check "an unknown kind" '400 {"error":"query: trigger: expected event, log or schedule, not '"'"'cron'"'"'"}' "$(admin GET '/apps/r/triggers/recent?trigger=cron')"
check "an unknown parameter" "400" "$(admin GET '/apps/r/triggers/recent?fn=x' | cut -d' ' -f1)"
check "an app that is not live" "404 {\"error\":\"no app named 'nope' is live\"}" "$(admin GET /apps/nope/triggers/recent)"
check "POST is refused" "405" "$(admin POST /apps/r/triggers/recent | cut -d' ' -f1)"
VIEW=$(tine keys create v --role viewer)
check_contains "a viewer lacks events.read" "403" "$(http GET /_tine/v1/apps/r/triggers/recent -H "Authorization: Bearer $VIEW" | cut -d' ' -f1)"
check "a deployer may" "200" "$(http GET /_tine/v1/apps/r/triggers/recent -H "Authorization: Bearer $(tine keys create d --role deployer)" | cut -d' ' -f1)"
check "each list is bounded in Redis" "20" "$(redis-cli -s "$T/redis.sock" LLEN tine:recent:r:event:paid)"
check "and expires" "True" "$(python3 -c 'import sys; print(0 < int(sys.argv[1]) <= 7*24*3600)' "$(redis-cli -s "$T/redis.sock" TTL tine:recent:r:event:paid)")"
finish
