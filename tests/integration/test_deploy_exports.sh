#!/usr/bin/env bash
# A handler naming an export its module does not have (src/stats.lua#statz
# where the module defines stats) is refused at deploy with the manifest
# position and what the module exports; nothing is stored and the live
# version keeps serving. A module whose keys are computed is accepted, and a
# missing export then fails each call with a 500 naming it.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
mkdir -p "$T/app/src"
cat >"$T/app/tine.yaml" <<'YAML'
app: stats
functions:
  stats: { handler: src/stats.lua#stats }
routes:
  - { method: GET, path: /, function: stats }
YAML
cat >"$T/app/src/stats.lua" <<'LUA'
local M = {}
function M.stats(req, ctx) return "stats v" .. ctx.version end
function M.top(req, ctx) return "top" end
return M
LUA
check "deploy with a good handler" "deployed stats version 1" "$(tine deploy "$T/app")"

sed -i 's/#stats }/#statz }/' "$T/app/tine.yaml"
out=$(tine deploy "$T/app" 2>&1) && rc=0 || rc=$?
check "a missing export fails the deploy" "1" "$rc"
check "the message names the manifest position, the export and what the module exports" \
  "tine: tine.yaml:3:21: functions.stats.handler: src/stats.lua does not export 'statz' (it exports: stats, top)" "$out"
check "nothing was stored" "1" "$(run redis-cli -s "$T/redis.sock" GET tine:app:stats:seq)"
check "the live version keeps serving" "200 stats v1" "$(http GET /stats/)"

# Keys the check cannot see (computed): accepted, and each call of the
# missing export is a 500 that names it.
cat >"$T/app/src/stats.lua" <<'LUA'
local M = {}
local name = "st" .. "ats"
M[name] = function(req, ctx) return "stats v" .. ctx.version end
return M
LUA
check "a module with computed keys is accepted" "deployed stats version 2" "$(tine deploy "$T/app")"
out=$(curl -s -D "$T/h" "$URL/stats/")
check "its missing export answers 500" "500" "$(head -1 "$T/h" | awk '{print $2}')"
id=$(tr -d '\r' <"$T/h" | sed -n 's/^x-tine-invocation-id: //p')
check_contains "the client gets the invocation id" "$id" "$out"
wait_for 5 "$BIN/tine" --url "$URL" --token "$TOKEN" activation "$id" || true
check_contains "its record names the missing export" "module 'src/stats.lua' has no function 'statz'" \
  "$(run tine activation "$id")"
finish
