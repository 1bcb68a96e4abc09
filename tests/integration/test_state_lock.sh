#!/usr/bin/env bash
# One state dir, one node: a second tined on the same state dir refuses to
# start (non-zero exit, a message naming the dir and the pid holding it)
# before it touches anything, and the first keeps serving with its one
# private redis-server.
. "$(dirname "$0")/lib.sh"
start_node first
FIRST_PID=$NODE_PID
make_app "$T/v1" one
check "deploy" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "the second node exits with an error" "1" "$(tined_status first)"
check_contains "naming the dir and the pid holding it" \
  "state dir $T/first is in use by another tined (pid $FIRST_PID)" "$(cat "$T/first.log")"
check "one redis-server on the socket" "1" "$(pgrep -fc "redis-server.*$T/first/redis.sock" || true)"
check "the first keeps serving" "200 one 1" "$(http GET /demo/who)"
check "and deploying" "deployed demo version 2" "$(make_app "$T/v2" two; tine deploy "$T/v2")"
check "its port file is its own" "$URL" "http://127.0.0.1:$(cat "$T/first/port")"
# Once the first is gone, the dir is free again.
kill -TERM "$FIRST_PID"; wait "$FIRST_PID" 2>/dev/null || true
start_node first
check "a node starts on the freed dir" "200 two 2" "$(http GET /demo/who)"
finish
