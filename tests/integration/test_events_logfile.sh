#!/usr/bin/env bash
# Log file triggers: a line appended to a followed file fires its trigger
# exactly once, also across a rotation, a truncation and a restart of tined
# (kill -9); the filter decides which lines count; files outside --log-paths
# are refused at deploy (symlinks resolved).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
start_redis
mkdir -p "$T/logs" "$T/app" "$T/other"
LOG=$T/logs/app.log
echo "ERROR written before the app was deployed" >"$LOG"
start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off --log-paths "$T/logs:$T/nothing-here"

write_app() { # write_app SOURCE FILTER
  cat >"$T/app/tine.yaml" <<YAML
app: tail
functions:
  onlog: { handler: h.lua#onlog }
triggers:
  - { on: log, source: 'file:$1', filter: '$2', function: onlog }
YAML
}
cat >"$T/app/h.lua" <<'LUA'
local tine = require "tine"
local M = {}
function M.onlog(event, ctx)
  tine.kv.incr("line:" .. event.data.line)
  tine.kv.incr("total")
  tine.kv.set("last", tine.json.encode(event))
end
return M
LUA

# Deploy-time checks.
write_app /etc/passwd "ERROR"
out=$(tine deploy "$T/app" 2>&1; echo "rc=$?")
check_contains "a file outside --log-paths is refused" "triggers[0].source: file /etc/passwd is outside the directories this node allows for log files ($T/logs:$T/nothing-here)" "$out"
check_contains "refused: exit 1" "rc=1" "$out"
ln -s /etc/hostname "$T/logs/sneaky.log"
write_app "$T/logs/sneaky.log" "ERROR"
out=$(tine deploy "$T/app" 2>&1 || true)
check_contains "a symlink out of the allowed directory is refused" "file $T/logs/sneaky.log resolves to /etc/hostname, outside" "$out"
ln -s "$T/other" "$T/logs/dirlink"
write_app "$T/logs/dirlink/x.log" "ERROR"
out=$(tine deploy "$T/app" 2>&1 || true)
check_contains "a symlinked directory out of the allowed one is refused" "resolves to $T/other/x.log, outside" "$out"
write_app "$LOG" 'ERROR "unclosed'
out=$(tine deploy "$T/app" 2>&1 || true)
check_contains "a bad filter is refused" "triggers[0].filter: unterminated quote starting at column 7" "$out"
check "nothing was deployed" "" "$(run redis-cli -s "$T/redis.sock" GET tine:app:tail:live)"

write_app "$LOG" 'ERROR -ignore'
check "deploy of an allowed file" "deployed tail version 1" "$(tine deploy "$T/app")"
sleep 0.6
echo "INFO not for us" >>"$LOG"
echo "ERROR one" >>"$LOG"
echo "ERROR but ignore this one" >>"$LOG"
wait_kv 10 tail "line:ERROR one" 1 || true
check "an appended ERROR line fired once" "1" "$(rkv tail "line:ERROR one")"
last=$(rkv tail last)
check "event type" "tine.log.line" "$(json_get "$last" "j['type']")"
check "event source" "file:$LOG" "$(json_get "$last" "j['source']")"
check "event data: the path" "$LOG" "$(json_get "$last" "j['data']['path']")"
check "lines before the first follow are not replayed" "" "$(rkv tail "line:ERROR written before the app was deployed")"
check "the exclusion holds" "" "$(rkv tail "line:ERROR but ignore this one")"

# A line is an event only once complete.
printf "ERROR partial" >>"$LOG"
sleep 0.6
check "a partial line waits for its newline" "" "$(rkv tail "line:ERROR partial")"
printf " done\n" >>"$LOG"
wait_kv 10 tail "line:ERROR partial done" 1 || true
check "the completed line fired" "1" "$(rkv tail "line:ERROR partial done")"

# Rotation: the rest of the old file first, then the new file from 0.
echo "ERROR last words of the old file" >>"$LOG"
mv "$LOG" "$LOG.1"
echo "ERROR late write to the rotated file" >>"$LOG.1"
echo "ERROR first line of the new file" >"$LOG"
wait_kv 10 tail "line:ERROR first line of the new file" 1 || true
check "rotation: the old file's last line" "1" "$(rkv tail "line:ERROR last words of the old file")"
check "rotation: the new file's first line" "1" "$(rkv tail "line:ERROR first line of the new file")"

# Truncation: from the start again.
: >"$LOG"
sleep 0.5
echo "ERROR after truncation" >>"$LOG"
wait_kv 10 tail "line:ERROR after truncation" 1 || true
check "truncation: the new line fired" "1" "$(rkv tail "line:ERROR after truncation")"

# Restart (kill -9): lines written while tined was down fire once, earlier
# lines not again.
sleep 0.5
kill -9 "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
echo "ERROR written while down" >>"$LOG"
start_node a --redis "$REDIS_URL" --node-id node-a --docker-events off --log-paths "$T/logs"
echo "ERROR written after the restart" >>"$LOG"
wait_kv 15 tail "line:ERROR written after the restart" 1 || true
check "restart: the line written while down fired" "1" "$(rkv tail "line:ERROR written while down")"
check "restart: the line written after fired" "1" "$(rkv tail "line:ERROR written after the restart")"
sleep 1
for l in "ERROR one" "ERROR partial done" "ERROR last words of the old file" "ERROR first line of the new file" \
  "ERROR after truncation" "ERROR written while down"; do
  check "exactly once: $l" "1" "$(rkv tail "line:$l")"
done
# Written to the old file right after the rename: read when the rotation
# is noticed after it (nearly always), never twice.
late=$(rkv tail "line:ERROR late write to the rotated file")
late=${late:-0}
if [ "$late" -le 1 ]; then ok "rotation: a late write to the old file at most once"; else fail "late write" "$late times"; fi
check "nothing else fired" "$((7 + late))" "$(rkv tail total)"

# A node that allows no log files refuses such a deploy.
start_node b --redis "$REDIS_URL" --docker-events off
out=$(tine deploy "$T/app" 2>&1 || true)
check_contains "no --log-paths: refused" "this node allows no log files (its operator can allow directories with --log-paths)" "$out"
finish
