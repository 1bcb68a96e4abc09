#!/usr/bin/env bash
# Deploy v1, request, deploy v2, answered by v2, roll back, answered by v1;
# versions and routes listed; a bad manifest and a raising handler leave the
# node serving.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

make_app "$T/v1" one
make_app "$T/v2" two
check "deploy v1" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "v1 answers" "200 one 1" "$(http GET /demo/who)"
check "deploy v2" "deployed demo version 2" "$(tine deploy "$T/v2")"
check "v2 answers" "200 two 2" "$(http GET /demo/who)"
out=$(tine rollback demo)
check "rollback" "demo: live version is now 1" "$out"
check "v1 answers after rollback" "200 one 1" "$(http GET /demo/who)"
check "rollback to 2 explicitly" "demo: live version is now 2" "$(tine rollback demo 2)"
check "v2 answers again" "200 two 2" "$(http GET /demo/who)"
check_contains "rollback to a missing version" "404" "$(admin POST /apps/demo/rollback -d '{"version":9}')"

vers=$(admin GET /apps/demo/versions)
check_contains "versions listed" '"version":2' "$vers"
check_contains "live marked" '"live":2' "$vers"
routes=$(admin GET /apps/demo/routes)
check_contains "routes show full paths" '"path":"/demo/who"' "$routes"
apps=$(tine --json apps)
check_contains "apps lists demo" '"app":"demo"' "$apps"

# A bad manifest: exact error line, nothing stored, v2 keeps serving.
make_app "$T/bad" three
sed -i 's/timeout: 2s/timeout: 2 parsecs/' "$T/bad/tine.yaml"
out=$(cd "$T/bad" && tar czf "$T/bad.tgz" tine.yaml who.lua && curl -s -X PUT --data-binary @"$T/bad.tgz" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/gzip' "$URL/_tine/v1/apps/demo")
check_contains "bad manifest names file:line:col and key" 'tine.yaml:3:' "$out"
check_contains "bad manifest names the key path" 'functions.who.timeout' "$out"
check "no version stored" "2" "$(admin GET /apps/demo/versions | grep -o '"version":[0-9]*' | wc -l | tr -d ' ')"
check "v2 still serves" "200 two 2" "$(http GET /demo/who)"

# A Lua syntax error in a handler: rejected at deploy with the file and line.
make_app "$T/syn" four
printf 'local M = {}\nfunction M.who(req, ctx)\n  return = 1\nend\nreturn M\n' >"$T/syn/who.lua"
out=$(tine deploy "$T/syn" 2>&1 || true)
check_contains "syntax error names file and line" 'who.lua:3:' "$out"
check "v2 still serves after syntax error" "200 two 2" "$(http GET /demo/who)"

# A raising handler: 500 with an invocation id, the node keeps serving.
out=$(curl -s -D "$T/h" "$URL/demo/boom")
check_contains "raise gives an invocation id" 'invocation' "$out"
check "raise gives 500" "500" "$(head -1 "$T/h" | awk '{print $2}')"
check_contains "raise: id header" 'x-tine-invocation-id' "$(cat "$T/h")"
check "no stack trace to the client" "" "$(echo "$out" | grep -o 'kaboom' || true)"
check "still serving after raise" "200 two 2" "$(http GET /demo/who)"

# Unknown app and route.
check_contains "unknown app 404" "404" "$(http GET /nope/who)"
check_contains "unknown route 404" "404" "$(http GET /demo/nothing)"
check_contains "wrong method 405" "405" "$(http POST /demo/who)"
finish
