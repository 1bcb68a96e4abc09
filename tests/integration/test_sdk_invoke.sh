#!/usr/bin/env bash
# tine.invoke and tine.invoke_async, served by the node without HTTP: results
# (JSON, text, nothing), errors (a missing function, another app's function,
# a callee that raises or times out), the depth bound (node a runs with
# --max-invoke-depth 8), a self-recursion that could only wait for itself,
# the fan-out bound, detached async calls, and a chain of 250 functions
# under the default bound (node b).
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --max-invoke-depth 8

mkdir -p "$T/calls" "$T/other"
cat >"$T/calls/tine.yaml" <<'YAML'
app: calls
functions:
  main:    { handler: calls.lua#main, timeout: 10s }
  echo:    { handler: calls.lua#echo }
  text:    { handler: calls.lua#text }
  nothing: { handler: calls.lua#nothing }
  boom:    { handler: calls.lua#boom }
  slow:    { handler: calls.lua#slow, timeout: 300ms }
  deep:    { handler: calls.lua#deep, concurrency: 20, timeout: 10s }
  selfish: { handler: calls.lua#deep, concurrency: 3, timeout: 10s }
  record:  { handler: calls.lua#record }
  queued:  { handler: calls.lua#queued, concurrency: 1, timeout: 10s }
routes:
  - { method: POST, path: /main, function: main }
YAML
cat >"$T/calls/calls.lua" <<'LUA'
local tine = require "tine"
local M = {}
-- main runs the request body as Lua with tine in scope; errors come back as 500 text.
function M.main(req, ctx)
  local f = assert(load(req.body, "=body", "t", setmetatable({ tine = tine, ctx = ctx }, { __index = _G })))
  local ok, r = pcall(f)
  if not ok then return { status = 500, body = r } end
  return type(r) == "table" and r or tostring(r)
end
function M.echo(ev, ctx) return { got = ev, fn = ctx["function"], version = ctx.version } end
function M.text(ev) return "plain " .. tostring(ev) end
function M.nothing() return nil end
function M.boom() error("kaboom") end
function M.slow() local t = os.clock() + 5; while os.clock() < t do end end
function M.deep(ev, ctx)
  if ev.n == 0 then return { levels = 0 } end
  local r = tine.invoke(ev.fn, { n = ev.n - 1, fn = ev.fn })
  return { levels = r.levels + 1 }
end
function M.record(ev, ctx) tine.kv.set("async:" .. ev.tag, ctx.invocation_id) end
-- Waits until its caller has made every call, so none finishes (and frees
-- its slot) while the fan-out bound is being tested, however slow the node.
function M.queued(ev)
  while not tine.kv.get("go") do local t = os.clock() + 0.001; while os.clock() < t do end end
  tine.kv.incr("queued")
end
return M
LUA
cat >"$T/other/tine.yaml" <<'YAML'
app: other
functions:
  secret: { handler: s.lua#secret }
YAML
echo 'return { secret = function() return "secret" end }' >"$T/other/s.lua"
check "deploy calls" "deployed calls version 1" "$(tine deploy "$T/calls")"
tine deploy "$T/other" >/dev/null
run() { http POST /calls/main --data-binary "$1"; }

# --- results
check "JSON result is a table" "200 echo [1,2] 1" \
  "$(run 'local r = tine.invoke("echo", { x = { 1, 2 } }); return r.fn .. " " .. tine.json.encode(r.got.x) .. " " .. r.version')"
check "info" "200 200 application/json 32" \
  "$(run 'local r, info = tine.invoke("echo", 1); return info.status .. " " .. info.headers["content-type"] .. " " .. #info.invocation_id')"
check "text result is a string" "200 plain 7" "$(run 'return tine.invoke("text", 7)')"
check "no result is nil" "200 nil 204" "$(run 'local r, info = tine.invoke("nothing"); return tostring(r) .. " " .. info.status')"
check "the payload arrives as the event" "200 a b" \
  "$(run 'local r = tine.invoke("echo", { "a", "b" }); return r.got[1] .. " " .. r.got[2]')"

# --- errors
check "missing function" "500 body:1: tine.invoke: app calls has no function 'nope'" \
  "$(run 'local r = tine.invoke("nope", {}); return r')"
check "another app's function is out of reach" "500 body:1: tine.invoke: app calls has no function 'secret'" \
  "$(run 'local r = tine.invoke("secret"); return r')"
out=$(run 'local r = tine.invoke("boom"); return r')
[[ "$out" =~ ^"500 body:1: tine.invoke: boom raised: calls.lua:13: kaboom (invocation "[0-9a-f]{32}")"$ ]] \
  && ok "a callee that raises" || fail "callee raises" "$out"
check "the caller can catch it and go on" "200 caught, then plain x" \
  "$(run 'local ok = pcall(tine.invoke, "boom"); return (ok and "" or "caught, then ") .. tine.invoke("text", "x")')"
out=$(run 'local r = tine.invoke("slow"); return r')
[[ "$out" == "500 body:1: tine.invoke: function slow timed out after 300 ms (invocation "* ]] \
  && ok "a callee that times out" || fail "callee timeout" "$out"

check "a payload over 6 MiB" "500 body:1: tine.invoke: the payload of 6291459 bytes is over the limit of 6291456 bytes" \
  "$(run 'local r = tine.invoke("echo", string.rep("x", 6 * 1024 * 1024 + 1)); return r')"
check "a request over the frame limit" "500 body:1: tine.invoke: the request of 7340071 bytes is over the limit of 6356992 bytes" \
  "$(run 'local r = tine.invoke("echo", string.rep("x", 7 * 1024 * 1024)); return r')"
check "the caller survives both" "200 plain ok" "$(run 'return tine.invoke("text", "ok")')"

# --- bounds
check "8 nested calls are allowed" "200 7" "$(run 'return tine.invoke("deep", { n = 7, fn = "deep" }).levels')"
out=$(run 'local r = tine.invoke("deep", { n = 8, fn = "deep" }); return r')
check_contains "the 9th is refused" "tine.invoke: calling deep would nest 9 calls deep, over the limit of 8 (tined --max-invoke-depth)" "$out"
out=$(run 'local r = tine.invoke("selfish", { n = 5, fn = "selfish" }); return r')
check_contains "a recursion that would wait for itself" \
  "tine.invoke: selfish would wait for itself: this call chain already holds all 3 of its sandboxes (its concurrency)" "$out"
check "the node still serves after both" "200 plain ok" "$(run 'return tine.invoke("text", "ok")')"
out=$(run 'local n, err = 0
for i = 1, 70 do
  local ok, e = pcall(tine.invoke_async, "queued", i)
  if ok then n = n + 1 elseif not err then err = e end
end
tine.kv.set("go", "1")
return n .. " " .. err')
check "fan-out bound" "200 64 tine.invoke_async: this invocation already has 64 calls in flight, the limit" "$out"
queued_is() { [ "$(redis-cli -s "$T/redis.sock" GET tine:kv:calls:queued)" = "$1" ]; }
wait_for 30 queued_is 64 \
  && ok "the 64 detached calls all ran" || fail "detached calls" "queued=$(redis-cli -s "$T/redis.sock" GET tine:kv:calls:queued)"

# --- async
out=$(run 'return tine.invoke_async("record", { tag = "t1" })')
[[ "$out" =~ ^"200 "[0-9a-f]{32}$ ]] && ok "invoke_async returns the invocation id" || fail "async id" "$out"
recorded() { [ -n "$(redis-cli -s "$T/redis.sock" GET tine:kv:calls:async:t1)" ]; }
wait_for 10 recorded \
  && check "the detached call ran with that id" "${out#200 }" "$(redis-cli -s "$T/redis.sock" GET tine:kv:calls:async:t1)" \
  || fail "async ran" "no record"
check "invoke_async of a missing function" "500 body:1: tine.invoke_async: app calls has no function 'nope'" \
  "$(run 'local r = tine.invoke_async("nope"); return r')"

# --- a chain of 250 functions, default bound, on another node
start_node b --redis "$REDIS_URL"
mkdir -p "$T/chain"
{
  echo "app: chain"
  echo "functions:"
  for i in $(seq 1 250); do echo "  c$i: { handler: chain.lua#step, timeout: 60s }"; done
  echo "routes:"
  echo "  - { method: GET, path: /run, function: c1 }"
} >"$T/chain/tine.yaml"
cat >"$T/chain/chain.lua" <<'LUA'
local tine = require "tine"
return { step = function(ev, ctx)
  local i = tonumber(ctx["function"]:sub(2))
  if i == 250 then return { last = ctx["function"], hops = 0 } end
  local r = tine.invoke("c" .. (i + 1), { from = i })
  r.hops = r.hops + 1
  return r
end }
LUA
check "deploy a 250-function app" "deployed chain version 1" "$(tine deploy "$T/chain")"
check "a chain of 250 functions (cold)" '200 {"hops":249,"last":"c250"}' "$(http GET /chain/run | python3 -c 'import json,sys; s=sys.stdin.read(); code, body = s.split(" ", 1); print(code, json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")))')"
check "and again, warm" '200 {"hops":249,"last":"c250"}' "$(http GET /chain/run | python3 -c 'import json,sys; s=sys.stdin.read(); code, body = s.split(" ", 1); print(code, json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")))')"
finish
