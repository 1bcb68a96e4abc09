#!/usr/bin/env bash
# tine.kv against a real Redis: get/set/del/incr/keys, TTLs that expire,
# errors (a missing key, incr on text), one app never seeing another's keys
# (also when it tries key names that look like another app's), and Redis
# going away and coming back while the node keeps serving.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
R() { redis-cli -s "$T/redis.sock" "$@"; }

write_app() { # write_app DIR APP
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<YAML
app: $2
functions:
  kv: { handler: kv.lua#run }
routes:
  - { method: POST, path: /kv, function: kv }
YAML
  # The body is Lua run with tine in scope; its result is returned as text.
  cat >"$1/kv.lua" <<'LUA'
local tine = require "tine"
return { run = function(req)
  local f = assert(load(req.body, "=body", "t", setmetatable({ tine = tine }, { __index = _G })))
  local ok, r = pcall(f)
  if not ok then return { status = 500, body = r } end
  return tostring(r)
end }
LUA
}
kv() { http POST "/$1/kv" --data-binary "$2"; }

write_app "$T/one" one
write_app "$T/two" two
tine deploy "$T/one" >/dev/null
tine deploy "$T/two" >/dev/null

check "missing key is nil" "200 nil" "$(kv one 'return tine.kv.get("nope")')"
check "set returns true" "200 true" "$(kv one 'return tine.kv.set("greeting", "hello")')"
check "get" "200 hello" "$(kv one 'return tine.kv.get("greeting")')"
check "stored under the app's prefix" "hello" "$(R GET tine:kv:one:greeting)"
check "values are binary-safe" "200 3" "$(kv one 'tine.kv.set("bin", "a\0b"); return #tine.kv.get("bin")')"
check "incr from nothing" "200 1" "$(kv one 'return tine.kv.incr("n")')"
check "incr by" "200 -9" "$(kv one 'return tine.kv.incr("n", -10)')"
check "incr on text" "500 tine.kv.incr: the value of 'greeting' is not an integer" \
  "$(kv one 'return tine.kv.incr("greeting")')"
check "del existing" "200 true" "$(kv one 'return tine.kv.del("bin")')"
check "del missing" "200 false" "$(kv one 'return tine.kv.del("bin")')"
kv one 'tine.kv.set("item:2", "b"); tine.kv.set("item:1", "a"); tine.kv.set("item*", "star"); return 1' >/dev/null
check "keys by prefix, sorted" "200 item:1,item:2" "$(kv one 'return table.concat(tine.kv.keys("item:"), ",")')"
check "a prefix matches literally" "200 item*" "$(kv one 'return table.concat(tine.kv.keys("item*"), ",")')"
check "all keys" "200 greeting,item*,item:1,item:2,n" "$(kv one 'return table.concat(tine.kv.keys(), ",")')"
check "key too long" "500 tine.kv.get: keys are 1 to 512 bytes, got 513" \
  "$(kv one 'return tine.kv.get(string.rep("k", 513))')"
check "value too large" "500 tine.kv.set: the value of 1048577 bytes is over the limit of 1048576 bytes" \
  "$(kv one 'return tine.kv.set("big", string.rep("v", 1048577))')"

# --- TTLs
check "set with { ttl = 1 }" "200 true" "$(kv one 'return tine.kv.set("short", "x", { ttl = 1 })')"
check "set with a number of seconds" "200 true" "$(kv one 'return tine.kv.set("short2", "y", 1)')"
ttl=$(R PTTL tine:kv:one:short)
[ "$ttl" -gt 0 ] && [ "$ttl" -le 1000 ] && ok "Redis holds the TTL ($ttl ms)" || fail "ttl" "PTTL $ttl"
check "readable before it expires" "200 x" "$(kv one 'return tine.kv.get("short")')"
sleep 1.3
check "gone after the TTL" "200 nil nil" "$(kv one 'return tostring(tine.kv.get("short")) .. " " .. tostring(tine.kv.get("short2"))')"
check "no TTL without one" "-1" "$(R PTTL tine:kv:one:greeting)"

# --- one app cannot see another's keys
check "other app: get" "200 nil" "$(kv two 'return tine.kv.get("greeting")')"
check "other app: keys" "200 0" "$(kv two 'return #tine.kv.keys()')"
check "other app: prefix tricks" "200 nil nil nil" \
  "$(kv two 'return table.concat({ tostring(tine.kv.get("one:greeting")), tostring(tine.kv.get("../one:greeting")), tostring(tine.kv.get("tine:kv:one:greeting")) }, " ")')"
check "other app: glob in prefix" "200 0" "$(kv two 'return #tine.kv.keys("*")')"
kv two 'tine.kv.set("greeting", "other"); tine.kv.incr("n"); return 1' >/dev/null
check "same names, separate values" "200 hello" "$(kv one 'return tine.kv.get("greeting")')"
check "same names in the other app" "200 other 1" "$(kv two 'return tine.kv.get("greeting") .. " " .. tine.kv.get("n")')"
check "del in one app" "200 true nil" \
  "$(kv two 'return tostring(tine.kv.del("greeting")) .. " " .. tostring(tine.kv.get("greeting"))')"
check "... and the first app still has it" "200 hello" "$(kv one 'return tine.kv.get("greeting")')"

# --- Redis goes away: clear errors, the node keeps serving, and it reconnects
kill "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null || true
out=$(kv one 'return tine.kv.get("greeting")')
[[ "$out" == "500 tine.kv.get: redis "* ]] && ok "redis down: a clear error ($out)" || fail "redis down" "$out"
check "redis down: functions without kv still answer" "200 fine" "$(kv one 'return "fine"')"
redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
  --logfile "$T/redis2.log" &
PIDS+=($!)
wait_for 10 redis-cli -s "$T/redis.sock" ping || { echo "redis did not restart"; exit 1; }
check "redis back: kv works again" "200 true again" \
  "$(kv one 'tine.kv.set("back", "again"); return "true " .. tine.kv.get("back")')"
finish
