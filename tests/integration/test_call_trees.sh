#!/usr/bin/env bash
# Call trees: an HTTP call with a W3C traceparent joins its trace; the call
# it makes with tine.invoke, the call its tine.emit event triggers and the
# tine.http request it sends carry the trace on with it as the parent;
# GET /traces/{id} (and tine trace) lists the tree; a call without a header
# starts its own trace. Then the activation filters: function, version,
# status class, cold, min duration, time range, the paging cursor and bad
# values.
. "$(dirname "$0")/lib.sh"
start_redis
start_http_fixture
start_node a --redis "$REDIS_URL" --docker-events off

mkdir -p "$T/tree"
cat >"$T/tree/tine.yaml" <<YAML
app: tree
allow_outbound: [ 127.0.0.1 ]
functions:
  root:  { handler: t.lua#root, timeout: 10s }
  child: { handler: t.lua#child }
  later: { handler: t.lua#later }
  boom:  { handler: t.lua#boom }
  nap:   { handler: t.lua#nap }
routes:
  - { method: POST, path: /root, function: root }
  - { method: GET, path: /boom, function: boom }
  - { method: GET, path: /nap, function: nap }
triggers:
  - { on: event, type: tree.later, function: later }
YAML
cat >"$T/tree/t.lua" <<LUA
local tine = require "tine"
local M = {}
function M.root(req, ctx)
  tine.invoke("child", {})
  tine.emit("tree.later", {})
  local r = tine.http.request({ url = "http://127.0.0.1:$FIX/echo", method = "GET" })
  local seen = tine.json.decode(r.body).headers
  return { id = ctx.invocation_id, traceparent = seen.traceparent or seen.Traceparent or "none" }
end
function M.child() return "c" end
function M.later(ev) tine.kv.set("later", "1") end
function M.boom() error("no") end
function M.nap() local t = os.clock() + 0.25; while os.clock() < t do end; return "z" end
return M
LUA
check "deploy" "deployed tree version 1" "$(tine deploy "$T/tree")"

TRACE=4bf92f3577b34da6a3ce929d0e0e4736
SPAN=00f067aa0ba902b7
out=$(http POST /tree/root -H "traceparent: 00-$TRACE-$SPAN-01")
check "root answered" "200" "${out%% *}"
body=${out#* }
ROOT=$(pyget "$body" 'd["id"]')
tp=$(pyget "$body" 'd["traceparent"]')
check "tine.http sends the trace on" "00-$TRACE-" "${tp:0:36}"
wait_for 10 sh -c "redis-cli -s '$T/redis.sock' GET 'tine:kv:tree:later' | grep -q 1" || true

# the records reach Redis within a flush (100 ms); the event's call may take longer
tree=""
for _ in $(seq 1 50); do
  tree=$(admin GET "/traces/$TRACE")
  [ "$(pyget "${tree#* }" 'len(d["activations"])' 2>/dev/null)" = "3" ] && break
  sleep 0.2
done
tree=${tree#* }
check "three calls in the trace" "3" "$(pyget "$tree" 'len(d["activations"])')"
check "the root's parent is the incoming span" "$SPAN" \
  "$(pyget "$tree" '[a["parent"] for a in d["activations"] if a["function"]=="root"][0]')"
check "the invoked call's parent is the root" "$ROOT" \
  "$(pyget "$tree" '[a["parent"] for a in d["activations"] if a["function"]=="child"][0]')"
check "the event's call's parent is the emitter" "$ROOT" \
  "$(pyget "$tree" '[a["parent"] for a in d["activations"] if a["function"]=="later"][0]')"
rspan=$(pyget "$tree" '[a["span"] for a in d["activations"] if a["function"]=="root"][0]')
check "tine.http's span is the root's span" "00-$TRACE-$rspan-01" "$tp"
check "oldest first" "root" "$(pyget "$tree" 'd["activations"][0]["function"]')"
check_contains "tine trace draws the tree" "  tree/child v1" "$(tine trace "$TRACE")"

# a call without a header starts its own trace: its id
out=$(http GET /tree/boom -D "$T/h")
bid=$(tr -d '\r' <"$T/h" | sed -n 's/^x-tine-invocation-id: //p')
sleep 0.3
rec=$(admin GET "/activations/$bid")
check "own trace" "$bid ''" "$(pyget "${rec#* }" 'd["trace"] + " " + repr(d["parent"])')"
check "its trace lists it" "$bid" "$(pyget "$(admin GET "/traces/$bid" | cut -d' ' -f2-)" 'd["activations"][0]["id"]')"
check "a bad trace id" "400" "$(admin GET /traces/xyz | cut -d' ' -f1)"
check "an unknown trace is empty" "200 0" \
  "$(x=$(admin GET /traces/0123456789abcdef0123456789abcdef); echo "${x%% *} $(pyget "${x#* }" 'len(d["activations"])')")"
check "a bad traceparent starts a trace of its own" "200" \
  "$(http GET /tree/nap -H 'traceparent: 00-zz-00f067aa0ba902b7-01' | cut -d' ' -f1)"

# --- filters
for _ in 1 2 3; do http GET /tree/nap >/dev/null; done
http GET /tree/boom >/dev/null
sleep 0.4
acts() { x=$(admin GET "/apps/tree/activations$1"); pyget "${x#* }" "$2"; }
check "function" "['nap', 'nap']" "$(acts '?function=nap&limit=2' '[a["function"] for a in d["activations"]]')"
check "status class" "True 2" "$(acts '?status=5xx' 'str(all(a["status"]>=500 for a in d["activations"])) + " " + str(len(d["activations"]))')"
check "cold" "True" "$(acts '?cold=1' 'all(a["cold"] for a in d["activations"]) and len(d["activations"]) > 0')"
check "warm" "True" "$(acts '?cold=0' 'not any(a["cold"] for a in d["activations"]) and len(d["activations"]) > 0')"
check "min duration" "True" \
  "$(acts '?min_duration_ms=200' 'len(d["activations"]) >= 3 and all(a["duration_us"] >= 200000 for a in d["activations"])')"
check "version" "0" "$(acts '?version=2' 'len(d["activations"])')"
check "since a time ago" "True" "$(acts '?since=1m' 'len(d["activations"]) > 0')"
check "until the start of time" "0" "$(acts '?until=1' 'len(d["activations"])')"
all=$(acts '?limit=100' '" ".join(a["id"] for a in d["activations"])')
first=$(acts '?limit=3' 'd["next"]')
page2=$(acts "?limit=3&after=$first" '" ".join(a["id"] for a in d["activations"])')
want=$(echo "$all" | cut -d' ' -f4-6)
check "the cursor's page follows the first" "$want" "$page2"
check "no next on a short page" "False" "$(acts '?limit=100' '"next" in d')"
check_contains "bad status" '400 {"error":"query: status: expected 2xx' "$(admin GET '/apps/tree/activations?status=7xx')"
check_contains "bad since" '400 {"error":"query: since: expected Unix milliseconds' "$(admin GET '/apps/tree/activations?since=yesterday')"
check_contains "bad cursor" '400 {"error":"query: after:' "$(admin GET '/apps/tree/activations?after=xyz')"
check_contains "tine activations --status" "boom" "$(tine activations tree --status 5xx)"
check_contains "tine activations: the next page's cursor on stderr" "tine: more with --after " \
  "$(tine activations tree --limit 1 2>&1 >/dev/null)"
check_contains "tine activations --cold --warm" "exclude each other" "$(tine activations tree --cold --warm 2>&1)"

# usage of a day without any (what the console asks of a quiet app): no rows
check "usage of a quiet day" "200 0" \
  "$(x=$(admin GET '/usage?app=tree&from=2020-01-01&to=2020-01-01'); echo "${x%% *} $(pyget "${x#* }" 'len(d["rows"])')")"

# --- log filters: since, level, text (past lines and followed ones)
http GET /tree/boom >/dev/null
sleep 0.3
logs() { curl -s -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/apps/tree/logs$1"; }
check "level=error keeps errors only" "True" \
  "$(logs '?level=error' | python3 -c 'import json,sys; l=[json.loads(x) for x in sys.stdin if x.strip()]; print(len(l)>0 and all(x["level"]=="error" for x in l))')"
check "text" "True" \
  "$(logs '?text=no' | python3 -c 'import json,sys; l=[json.loads(x) for x in sys.stdin if x.strip()]; print(len(l)>0 and all("no" in x["msg"] for x in l))')"
check "text that no line holds" "" "$(logs '?text=nothing-says-this' | tr -d '\n')"
check "since the future" "" "$(logs "?since=$(( $(date +%s) * 1000 + 60000 ))" | tr -d '\n')"
check_contains "bad level" '400 {"error":"query: level: expected info or error' "$(admin GET '/apps/tree/logs?level=warn')"
check_contains "tine logs --level --grep" "raised: " "$(tine logs tree --level error --grep no)"
check "tine logs --grep nothing" "" "$(tine logs tree --grep nothing-says-this)"
# followed: only the lines that pass arrive
curl -sN -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/apps/tree/logs?follow=1&limit=0&level=error" >"$T/follow.out" &
FPID=$!
PIDS+=($FPID)
sleep 0.5
http GET /tree/boom >/dev/null
http POST /tree/root -d '' >/dev/null
wait_for 5 grep -q raised "$T/follow.out" || true
sleep 0.5
kill "$FPID" 2>/dev/null || true
check "the followed stream holds the error" "True" \
  "$(python3 -c 'import json,sys; l=[json.loads(x) for x in open(sys.argv[1]) if x.strip()]; print(len(l)>0 and all(x["level"]=="error" for x in l))' "$T/follow.out")"
finish
