#!/usr/bin/env bash
# With no Redis URL, tined starts its own redis-server on a unix socket with an
# append-only file under the state dir, keeps data across restarts, and stops
# it on exit. It has a password generated at the first start (kept 0600 in
# the state dir, reused, never on a command line or in the log) and a memory
# cap that evicts only keys with a TTL.
. "$(dirname "$0")/lib.sh"
start_node solo
check_contains "private redis announced" "private" "$(cat "$T/solo.log")"
check "redis socket in the state dir" "yes" "$(test -S "$T/solo/redis.sock" && echo yes || echo no)"
make_app "$T/v1" one
check "deploy to embedded redis" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "serves" "200 one 1" "$(http GET /demo/who)"
rpid=$(pgrep -f "redis-server.*$T/solo/redis.sock" || true)
check "redis-server runs" "yes" "$([ -n "$rpid" ] && echo yes || echo no)"

# --- its password
PW=$(cat "$T/solo/redis.password")
check "a generated password" "yes" "$([ ${#PW} -ge 32 ] && echo yes || echo no)"
check "the password file is 0600" "600" "$(stat -c %a "$T/solo/redis.password")"
check "its config file is 0600" "600" "$(stat -c %a "$T/solo/redis.conf")"
check_contains "without the password: refused" "NOAUTH" "$(redis-cli -s "$T/solo/redis.sock" ping 2>&1)"
R() { REDISCLI_AUTH="$PW" redis-cli --no-auth-warning -s "$T/solo/redis.sock" "$@"; }
check "with it: answers" "PONG" "$(R ping)"
check "not on redis-server's command line" "" "$(ps -o args= -p "$rpid" | grep -F "$PW" || true)"
check "not in tined's log" "" "$(grep -F "$PW" "$T/solo.log" || true)"
check "maxmemory: 512mb by default" "536870912" "$(R config get maxmemory | tail -1)"
check "only keys with a TTL are evicted" "volatile-lru" "$(R config get maxmemory-policy | tail -1)"
check "the config file says so" "maxmemory 512mb" "$(grep '^maxmemory ' "$T/solo/redis.conf")"

kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
sleep 0.3
check "redis-server stopped with tined" "" "$(pgrep -f "redis-server.*$T/solo/redis.sock" || true)"
check "append-only data on disk" "yes" "$(ls "$T/solo" | grep -q appendonly && echo yes || echo no)"
start_node solo --redis-maxmemory 64mb
check "apps survive a restart" "200 one 1" "$(http GET /demo/who)"
check "the password is kept" "$PW" "$(cat "$T/solo/redis.password")"
check "--redis-maxmemory" "67108864" "$(R config get maxmemory | tail -1)"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
check "a bad --redis-maxmemory" "2" "$(tined_status bad --redis-maxmemory lots)"
check_contains "is named" "--redis-maxmemory lots: expected a size such as 256mb or 2gb" "$(cat "$T/bad.log")"
finish
