#!/usr/bin/env bash
# tine logs -f outlives a restart of the node it follows: it says on stderr
# that it lost the stream and reconnects (with backoff), then goes on with
# the lines logged meanwhile (here through another node) and the new ones,
# printing no line twice.
. "$(dirname "$0")/lib.sh"
start_redis
start_node b --redis "$REDIS_URL"
start_node a --redis "$REDIS_URL"
P=${URL##*:}
mkdir -p "$T/app"
cat >"$T/app/tine.yaml" <<'YAML'
app: flog
functions:
  say: { handler: say.lua#say }
routes:
  - { method: GET, path: /say/:m, function: say }
YAML
cat >"$T/app/say.lua" <<'LUA'
local tine = require "tine"
return { say = function(req) tine.log("said " .. req.params.m) return "ok" end }
LUA
tine deploy "$T/app" >/dev/null
say() { curl -s "$1/flog/say/$2" >/dev/null; }
count() { grep -c "said $1\$" "$T/follow.out" || true; }

say "$URL" zero
wait_for 5 bash -c "'$BIN/tine' --url '$URL' --token '$TOKEN' logs flog | grep -q 'said zero'" || true
tine logs flog -f --limit 5 >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
PIDS+=($FOLLOW)
wait_for 10 grep -q "following the logs of flog" "$T/follow.err" || true
say "$URL" one
wait_for 5 grep -q "said one" "$T/follow.out" || true
check "before the restart: the past line and the new one" "1 1" "$(count zero) $(count one)"

kill -TERM "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
wait_for 10 grep -q "reconnecting" "$T/follow.err" || true
check_contains "the follower says it lost the stream" "tine: lost the log stream of flog" "$(cat "$T/follow.err")"
# While the node is down: a line logged through the other node, and a
# second try of the follower (backoff).
say "$URL_b" two
sleep 1.2
check "tine logs -f keeps running while the node is down" "running" "$(kill -0 "$FOLLOW" 2>/dev/null && echo running)"

"$BIN/tined" --listen "127.0.0.1:$P" --state-dir "$T/a" --sdk-dir "$SRC/sdk/lua" --redis "$REDIS_URL" \
  >>"$T/a.log" 2>&1 &
PIDS+=($!)
wait_for 20 grep -q "following the logs of flog again" "$T/follow.err" || true
check_contains "the follower is back" "tine: following the logs of flog again" "$(cat "$T/follow.err")"
wait_for 5 grep -q "said two" "$T/follow.out" || true
say "$URL" three
wait_for 5 grep -q "said three" "$T/follow.out" || true
check "after the restart: the line logged meanwhile and a new one, once each" "1 1" "$(count two) $(count three)"
check "no line printed twice" "1 1" "$(count zero) $(count one)"
check "stdout holds only log lines" "4" "$(grep -c ' say v1 info: said ' "$T/follow.out" || true)"
finish
