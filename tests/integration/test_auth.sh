#!/usr/bin/env bash
# The admin API needs the bearer token; health does not; --no-auth is refused
# off loopback.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
check_contains "token generated" "generated the admin token" "$(cat "$T/a.log")"
check "token file is private" "600" "$(stat -c %a "$T/a/admin.token")"
check_contains "no token: 401" "401" "$(http GET /_tine/v1/apps)"
check_contains "wrong token: 401" "401" "$(http GET /_tine/v1/apps -H 'Authorization: Bearer nope')"
check_contains "deploy without token: 401" "401" "$(http PUT /_tine/v1/apps/x --data-binary x)"
check_contains "right token: 200" "200" "$(admin GET /apps)"
check_contains "health needs no token" '200 {"status":"ok"' "$(http GET /_tine/v1/health)"
out=$("$BIN/tine" --url "$URL" --token wrong apps 2>&1 || true)
check_contains "CLI explains 401" "401" "$out"
out=$("$BIN/tined" --listen 0.0.0.0:0 --no-auth --state-dir "$T/x" 2>&1 || true)
check_contains "no-auth refused off loopback" "only allowed on a loopback address" "$out"
# A second start reuses the token and does not print it again.
kill "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
first=$(cat "$T/a/admin.token")
start_node a --redis "$REDIS_URL"
check "token kept across restarts" "$first" "$TOKEN"
check "token printed only once" "" "$(grep -o 'generated the admin token' "$T/a.log" || true)"
# --no-auth on loopback serves admin calls without a token.
start_node b --redis "$REDIS_URL" --no-auth
check_contains "no-auth on loopback" "200" "$(http GET /_tine/v1/apps)"
check_contains "no-auth ignores a token it has none of (a stale admin.token)" "200" \
  "$(http GET /_tine/v1/apps -H 'Authorization: Bearer stale0123')"
finish
