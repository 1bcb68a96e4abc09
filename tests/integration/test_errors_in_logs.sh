#!/usr/bin/env bash
# What ends an invocation badly is in its activation's logs at level error,
# so `tine logs APP` and GET /_tine/v1/apps/APP/logs show it (issue 16 item
# 14): a raised error with its message and stack trace, a timeout, a load
# failure (syntax error, missing module), running out of memory.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
mkdir -p "$T/errs"
cat >"$T/errs/tine.yaml" <<'YAML'
app: errs
functions:
  raise:   { handler: e.lua#raise }
  spin:    { handler: e.lua#spin, timeout: 300ms }
  syntax:  { handler: syntax.lua#f }
  missing: { handler: missing.lua#f }
  oom:     { handler: e.lua#oom, memory: 64 }
  weird:   { handler: e.lua#weird }
routes:
  - { method: GET, path: /raise, function: raise }
  - { method: GET, path: /spin, function: spin }
  - { method: GET, path: /syntax, function: syntax }
  - { method: GET, path: /missing, function: missing }
  - { method: GET, path: /oom, function: oom }
YAML
cat >"$T/errs/e.lua" <<'LUA'
local M = {}
local function deeper() error("kaboom: the ledger is empty") end
function M.raise() deeper() end
function M.spin() while true do end end
function M.weird() error("bad\n\27[31mthing\255", 0) end
function M.oom()
  local t = {}
  for i = 1, 1e6 do t[i] = string.rep("x", 1048576) .. i end
  return #t
end
return M
LUA
# Valid syntax for the deploy check, broken when the sandbox loads it: the
# module raises while loading, like a syntax error in a required file.
cat >"$T/errs/syntax.lua" <<'LUA'
local f = assert(load("return {{"))
return { f = f }
LUA
cat >"$T/errs/missing.lua" <<'LUA'
local lib = require "lib.not_there"
return { f = function() return lib end }
LUA
check "deploy" "deployed errs version 1" "$(tine deploy "$T/errs")"

check_contains "raise: 500" "500" "$(http GET /errs/raise)"
check_contains "timeout: 504" "504" "$(http GET /errs/spin)"
check_contains "syntax: 500" "500" "$(http GET /errs/syntax)"
check_contains "missing module: 500" "500" "$(http GET /errs/missing)"
check_contains "out of memory: 500" "500" "$(http GET /errs/oom)"

# logs_have FN NEEDLE: waits (records are written in batches) until `tine
# logs errs FN` holds NEEDLE, then prints those logs.
logs_have() {
  local out deadline=$((SECONDS + 10))
  while :; do
    out=$(tine logs errs "$1" 2>&1 || true)
    [[ "$out" == *"$2"* || $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  printf '%s' "$out"
}
out=$(logs_have raise "kaboom")
check_contains "raise: the message at level error" "raise v1 error: raised: e.lua:2: kaboom: the ledger is empty" "$out"
check_contains "raise: the trace" "raise v1 error: stack traceback:" "$out"
check_contains "raise: the trace names the function" "in function 'deeper'" "$out"
out=$(logs_have spin "timed out")
check_contains "timeout: a line saying so" "spin v1 error: function spin timed out after 300 ms" "$out"
out=$(logs_have syntax "failed to load")
check_contains "load failure: the load error" "syntax v1 error: function syntax failed to load: " "$out"
check_contains "load failure: what was wrong" "unexpected symbol near '<eof>'" "$out"
out=$(logs_have missing "failed to load")
check_contains "missing module: the load error" "missing v1 error: function missing failed to load: " "$out"
check_contains "missing module: which" "module 'lib.not_there' not found" "$out"
out=$(logs_have oom "out of memory")
check_contains "out of memory: what happened" "oom v1 error: function oom ran out of memory (memory: 64 MB)" "$out"

# A message with control characters and invalid UTF-8 is one printable line
# wherever it goes: the caller's error, the record, the logs.
out=$(admin POST /apps/errs/functions/weird/invoke -d '{}')
check_contains "the caller's error is one printable line" '"error":"bad\\n\\x1b[31mthing\ufffd"' \
  "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1].split(" ",1)[1]), ensure_ascii=True, separators=(",", ":")))' "$out")"
out=$(logs_have weird "thing")
check_contains "the logs show it escaped" 'weird v1 error: raised: bad\n\x1b[31mthing' "$out"

# The logs API holds the same lines, at level error.
api=$(admin GET "/apps/errs/logs?function=raise")
check_contains "the logs API: raise at level error" '"level":"error","msg":"raised: e.lua:2: kaboom: the ledger is empty"' "$api"
api=$(admin GET "/apps/errs/logs?function=spin")
check_contains "the logs API: the timeout at level error" '"level":"error","msg":"function spin timed out after 300 ms"' "$api"
finish
