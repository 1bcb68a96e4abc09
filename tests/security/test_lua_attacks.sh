#!/usr/bin/env bash
# Lua functions that try to escape their sandbox: each attempt must fail with
# a clear error for the caller while another app keeps answering. The
# process layers under the Lua layer are attacked directly (in C) by
# tests/unit/sandbox/test_isolation.c.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
load_doctor
make_victim
mkdir -p "$T/evil"
cat >"$T/evil/tine.yaml" <<'YAML'
app: evil
functions:
  passwd:   { handler: e.lua#passwd }
  write:    { handler: e.lua#write }
  socket:   { handler: e.lua#socket }
  shell:    { handler: e.lua#shell }
  fork:     { handler: e.lua#fork }
  ffi:      { handler: e.lua#ffi }
  bytecode: { handler: e.lua#bytecode }
  upvalues: { handler: e.lua#upvalues }
  memory:   { handler: e.lua#memory, memory: 64 }
  rep:      { handler: e.lua#rep, memory: 64 }
  spin:     { handler: e.lua#spin, timeout: 1s }
  bundle:   { handler: e.lua#bundle }
  signal:   { handler: e.lua#signal }
  variants: { handler: e.lua#variants }
  whoami:   { handler: e.lua#whoami, warm: 1 }
  normal:   { handler: e.lua#normal }
routes:
  - { method: GET, path: /passwd, function: passwd }
YAML
cat >"$T/evil/e.lua" <<'LUA'
local tine = require "tine"
local M = {}
-- Each attack runs unprotected: its error is what the caller sees.
function M.passwd() return io.open("/etc/passwd"):read("*a") end
function M.write() local f = io.open("/tmp/tine-pwned", "w"); f:write("x"); return "written" end
function M.socket() local socket = require("socket"); return tostring(socket.tcp()) end
function M.shell() return os.execute("id") end
function M.fork() return io.popen("sleep 100") end
function M.ffi()
  local ffi = require("ffi")
  ffi.cdef("int fork(void);")
  return ffi.C.fork()
end
function M.bytecode() return assert(load(require("chunk")))() end
function M.upvalues() return debug.getupvalue(tine.kv.get, 1) end
function M.memory(ev)
  if ev.small then return "still serving" end
  local t = {}
  for i = 1, 1e6 do t[i] = string.rep("x", 1048576) .. i end
  return #t
end
function M.rep() return #string.rep("x", 2 ^ 31 - 2) end
function M.spin() while true do end end
function M.bundle(ev) return require(ev.module) end
function M.signal(ev) return require("posix.signal").kill(ev.pid, 9) end
function M.whoami() return "alive" end
-- What ordinary handlers do must all pass the sandbox's filter.
function M.normal()
  local big = {}
  for i = 1, 200 do big[i] = string.rep("y", 65536) .. i end -- 13 MiB, then freed
  big = nil
  collectgarbage()
  local co = coroutine.wrap(function() coroutine.yield(1) end)
  local lazy = require("lib.lazy") -- a module of the bundle, loaded during the call
  tine.log("normal work at", os.date("!%Y-%m-%d"))
  local t = { 3, 1, 2 }
  table.sort(t)
  return tine.json.encode({ year = tonumber(os.date("!%Y")) > 2000, clock = os.clock() >= 0,
    time = os.time() > 0, sorted = table.concat(t), co = co(), lazy = lazy.answer,
    rnd = math.random(1, 6) <= 6, pcall = select(2, pcall(error, "e", 0)) })
end
-- More ways in, each under pcall: the result names every error.
function M.variants()
  local out = {}
  local function try(name, f)
    local ok, e = pcall(f)
    out[name] = ok and ("ESCAPED " .. tostring(e)) or tostring(e)
  end
  try("os.remove", function() return os.remove("/tmp/x") end)
  try("os.rename", function() return os.rename("/tmp/x", "/tmp/y") end)
  try("os.getenv", function() return os.getenv("HOME") end)
  try("os.exit", function() return os.exit(1) end)
  try("dofile", function() return dofile("/etc/passwd") end)
  try("loadfile", function() return loadfile("/etc/passwd") end)
  try("loadstring binary", function() return assert(loadstring("\27LJ\2\2")) end)
  try("string.dump", function() return string.dump(print) end)
  try("require debug", function() return require("debug") end)
  try("package.loaded.ffi", function() return assert(package.loaded.ffi, "no ffi in package.loaded") end)
  try("package.loadlib", function() return package.loadlib("libc.so.6", "fork") end)
  try("package.searchpath", function() return package.searchpath("etc.passwd", "/?") end)
  try("require C module", function() return require("lfs") end)
  try("require absolute", function() return require("/etc/passwd") end)
  try("jit.off", function() return jit.off() end)
  try("jit.opt", function() return require("jit.opt") end)
  try("collectgarbage stop", function() return collectgarbage("stop") end)
  try("getfenv sdk", function() return getfenv(tine.kv.get) end)
  try("setfenv sdk", function() return setfenv(tine.kv.get, {}) end)
  try("setfenv C", function() return setfenv(print, {}) end)
  try("setfenv thread", function() return setfenv(0, {}) end)
  return out
end
return M
LUA
# Real LuaJIT bytecode (of a chunk that would run a shell) as a Lua string.
luajit -b -e 'return os.execute("id")' "$T/chunk.raw"
python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
print("return \"" + "".join("\\%d" % b for b in data) + "\"")' "$T/chunk.raw" >"$T/evil/chunk.lua"
mkdir -p "$T/evil/lib"
printf 'return { answer = 42 }\n' >"$T/evil/lib/lazy.lua"
tine deploy "$T/evil" >/dev/null
victim_ok "before the attacks"
inv evil normal
check "ordinary work passes every layer" \
  '{"clock":true,"co":1,"lazy":42,"pcall":"e","rnd":true,"sorted":"123","time":true,"year":true}' \
  "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]), sort_keys=True, separators=(",", ":")))' "$ERR")"

attack "read /etc/passwd" evil passwd '{}' 500 "attempt to index global 'io' (a nil value)"
out=$(http GET /evil/passwd)
check_contains "over HTTP: 500 naming the invocation" '500 {"error":"function raised an error (invocation' "$out"
attack "write a file" evil write '{}' 500 "attempt to index global 'io' (a nil value)"
attack "open a socket" evil socket '{}' 500 "module 'socket' not found"
attack "exec a shell" evil shell '{}' 500 "attempt to call field 'execute' (a nil value)"
attack "fork" evil fork '{}' 500 "attempt to index global 'io' (a nil value)"
attack "ffi to call libc" evil ffi '{}' 500 "module 'ffi' not found"
attack "load bytecode" evil bytecode '{}' 500 "attempt to load chunk with wrong mode"
attack "debug to reach upvalues" evil upvalues '{}' 500 "attempt to index global 'debug' (a nil value)"
attack "exhaust memory" evil memory '{}' 500 "ran out of memory"
inv evil memory '{"small":true}'
check "the same function serves again after running out of memory" "still serving" "$ERR"
attack "string.rep of 2 GiB" evil rep '{}' 500 "ran out of memory"
bundle_dir="$T/a/bundles/victim/1"
attack "read another app's bundle (absolute)" evil bundle "{\"module\":\"$bundle_dir/v\"}" 500 "not found"
attack "read another app's bundle (..)" evil bundle '{"module":"..victim.1.v"}' 500 "not found"
attack "signal tined" evil signal "{\"pid\":$NODE_PID}" 500 "module 'posix.signal' not found"

# Spinning forever: 504 after the timeout, and the node serves meanwhile.
inv evil spin '{}' >/dev/null &
spin=$!
sleep 0.3
victim_ok "while a function spins"
wait $spin
attack "spin forever" evil spin '{}' 504 "timed out after 1000 ms"

inv evil variants
for pair in \
  "os.remove|attempt to call field 'remove'" "os.rename|attempt to call field 'rename'" \
  "os.getenv|attempt to call field 'getenv'" "os.exit|attempt to call field 'exit'" \
  "dofile|attempt to call global 'dofile'" "loadfile|attempt to call global 'loadfile'" \
  "loadstring binary|attempt to load chunk with wrong mode" "string.dump|attempt to call field 'dump'" \
  "require debug|module 'debug' not found" "package.loaded.ffi|no ffi in package.loaded" \
  "package.loadlib|attempt to call field 'loadlib'" "package.searchpath|attempt to call field 'searchpath'" \
  "require C module|module 'lfs' not found" "require absolute|module '/etc/passwd' not found" \
  "jit.off|attempt to call field 'off'" "jit.opt|module 'jit.opt' not found" \
  "collectgarbage stop|collectgarbage('stop') is not allowed in a sandbox" \
  "getfenv sdk|getfenv: not allowed on the functions of the tine runtime" \
  "setfenv sdk|setfenv: not allowed on the functions of the tine runtime" \
  "setfenv C|setfenv: not allowed on the functions of the tine runtime" \
  "setfenv thread|the thread environment cannot be changed"; do
  name=${pair%%|*}
  got=$(jfield "$name" <<<"$ERR")
  if [[ "$got" == *"${pair#*|}"* && "$got" != ESCAPED* ]]; then ok "variant $name: refused"
  else fail "variant $name" "expected [${pair#*|}], got [$got]"; fi
done

# Under the Lua layer: the sandbox process itself, seen from the host.
CHECK="Lua sandboxes run as the unprivileged uid"
inv evil whoami
if need_layers user && [ "$(id -u)" = 0 ]; then
  pid=$(admin GET /sandboxes | cut -d' ' -f2- | python3 -c '
import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["function"] == "whoami":
        print(p["sandboxes"][0]["pid"])')
  check "$CHECK" "65534 65534" "$(ps -o uid=,gid= -p "$pid" | xargs)"
elif [ "$(id -u)" != 0 ]; then
  skip "$CHECK" "the tests do not run as root"
fi
victim_ok "after every attack"
finish_security
