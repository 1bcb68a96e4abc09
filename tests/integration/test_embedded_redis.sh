#!/usr/bin/env bash
# With no Redis URL, tined starts its own redis-server on a unix socket with an
# append-only file under the state dir, keeps data across restarts, and stops
# it on exit.
. "$(dirname "$0")/lib.sh"
start_node solo
check_contains "private redis announced" "private" "$(cat "$T/solo.log")"
check "redis socket in the state dir" "yes" "$(test -S "$T/solo/redis.sock" && echo yes || echo no)"
make_app "$T/v1" one
check "deploy to embedded redis" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "serves" "200 one 1" "$(http GET /demo/who)"
rpid=$(pgrep -f "redis-server.*$T/solo/redis.sock" || true)
check "redis-server runs" "yes" "$([ -n "$rpid" ] && echo yes || echo no)"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true
sleep 0.3
check "redis-server stopped with tined" "" "$(pgrep -f "redis-server.*$T/solo/redis.sock" || true)"
check "append-only data on disk" "yes" "$(ls "$T/solo" | grep -q appendonly && echo yes || echo no)"
start_node solo
check "apps survive a restart" "200 one 1" "$(http GET /demo/who)"
finish
