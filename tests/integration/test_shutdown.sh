#!/usr/bin/env bash
# SIGTERM is a graceful stop: with an idle keep-alive client, a followed log
# stream and a request in flight, tined answers the request, ends the stream
# and exits 0 (no abort, no hang).
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"

mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: stop
functions:
  slow: { handler: slow.lua#slow, timeout: 10s }
routes:
  - { method: GET, path: /slow, function: slow }
YAML
cat >"$T/app/slow.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.slow(req, ctx)
  tine.log("slow call")
  local t = os.clock()
  while os.clock() - t < 0.7 do end
  return "done"
end
return M
LUA
tine deploy "$T/app" >/dev/null
check "warm-up call" "200 done" "$(http GET /stop/slow)"

# An idle keep-alive connection: one request answered, the socket kept open.
python3 - "$URL" >"$T/idle.out" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1].split("//")[1].split(":")
s = socket.create_connection((host, int(port)))
s.sendall(b"GET /_tine/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(4096)
s.settimeout(20)
print("closed by server" if s.recv(4096) == b"" else "data")
PY
IDLE=$!
"$BIN/tine" --url "$URL" --token "$TOKEN" logs stop -f >"$T/follow.out" 2>&1 &
FOLLOW=$!
sleep 0.5
curl -s "$URL/stop/slow" >"$T/slow.out" &
CURL=$!
sleep 0.2
t0=$(date +%s%N)
kill -TERM "$NODE_PID"
rc=0
wait "$NODE_PID" || rc=$?
stop_ms=$((($(date +%s%N) - t0) / 1000000))
check "tined exits 0 on SIGTERM" "0" "$rc"
# The follower reconnects at once on its kept-alive connection: the node
# must close it rather than serve it a new stream until --drain-timeout.
[ "$stop_ms" -lt 5000 ] && ok "tined stopped ${stop_ms} ms after SIGTERM" || fail "time to stop" "${stop_ms} ms"
wait "$CURL" || true
check "the request in flight is answered" "done" "$(cat "$T/slow.out")"
wait "$IDLE" || true
check "the idle keep-alive connection is closed" "closed by server" "$(cat "$T/idle.out")"
# The follower outlives the node: it says so and keeps trying to reconnect.
wait_for 10 grep -q "reconnecting" "$T/follow.out" || true
check_contains "the follower notices the node left" "tine: lost the log stream of stop (the node closed it); reconnecting in 0.5 s" "$(cat "$T/follow.out")"
kill "$FOLLOW" 2>/dev/null || true
wait "$FOLLOW" 2>/dev/null || true
check_contains "the followed stream saw the call's line" "slow call" "$(cat "$T/follow.out")"
if grep -q "Assertion" "$T/a.log"; then fail "no assertion at stop" "$(grep Assertion "$T/a.log")"; else ok "no assertion at stop"; fi
finish
