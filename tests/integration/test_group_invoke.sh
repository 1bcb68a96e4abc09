#!/usr/bin/env bash
# Co-location groups (docs/ARCHITECTURE.md, "Co-location groups"): the same
# tine.invoke suite runs twice, against app `remote` (no group: every call
# goes through tined) and app `grouped` (the same code, every function in
# `group: g`: calls run inside one sandbox), and the answers must match:
# results, ctx, distinct invocation ids, a callee that mutates its argument
# leaves the caller's table alone, errors and timeouts as values the caller
# can catch, the depth bound (--max-invoke-depth 8), an activation record per
# call with its own log lines, parent and trace. Then what only a group has:
# its functions reached from outside through its sandboxes, one sandbox per
# chain, the blast radius of a callee that overruns the caller's budget, and
# the manifest errors.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL" --max-invoke-depth 8

# make_calls DIR APP GROUP_LINE: the suite's app, with GROUP_LINE (", group: g"
# or "") on every function.
make_calls() {
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<YAML
app: $2
functions:
  main:   { handler: calls.lua#main, timeout: 10s $3 }
  echo:   { handler: calls.lua#echo $3 }
  mutate: { handler: calls.lua#mutate $3 }
  text:   { handler: calls.lua#text $3 }
  boom:   { handler: calls.lua#boom $3 }
  slow:   { handler: calls.lua#slow, timeout: 300ms $3 }
  deep:   { handler: calls.lua#deep, concurrency: 20, timeout: 10s $3 }
  chatty: { handler: calls.lua#chatty $3 }
  short:  { handler: calls.lua#main, timeout: 500ms $3 }
  spin:   { handler: calls.lua#spin, timeout: 5s $3 }
  kv:     { handler: calls.lua#kv $3 }
routes:
  - { method: POST, path: /short, function: short }
  - { method: POST, path: /main, function: main }
  - { method: POST, path: /echo, function: echo }
YAML
  cat >"$1/calls.lua" <<'LUA'
local tine = require "tine"
local M = {}
-- main runs the request body as Lua with tine and ctx in scope.
function M.main(req, ctx)
  local f = assert(load(req.body, "=body", "t", setmetatable({ tine = tine, ctx = ctx }, { __index = _G })))
  local ok, r = pcall(f)
  if not ok then return { status = 500, body = r } end
  return type(r) == "table" and r or tostring(r)
end
function M.echo(ev, ctx)
  return { got = ev, fn = ctx["function"], id = ctx.invocation_id, timeout = ctx.timeout_ms }
end
function M.mutate(ev) ev.a = "changed"; ev.list[1] = "changed"; return ev end
function M.text(ev) return "plain " .. tostring(ev) end
function M.boom() error("kaboom") end
function M.slow() local t = os.clock() + 1; while os.clock() < t do end return "late" end
function M.deep(ev)
  if ev.n == 0 then return { levels = 0 } end
  return { levels = tine.invoke("deep", { n = ev.n - 1 }).levels + 1 }
end
function M.chatty(ev, ctx)
  tine.log("chatty says", ev.word)
  tine.log.error("chatty warns")
  return { id = ctx.invocation_id }
end
-- a callee's host calls: tine.kv, and a nested tine.invoke of a function
function M.kv(ev)
  tine.kv.set("k", ev.v)
  return { got = tine.kv.get("k"), echoed = tine.invoke("text", ev.v) }
end
function M.spin() local t = os.clock() + 2; while os.clock() < t do end return "spun" end
return M
LUA
}

make_calls "$T/remote" remote ""
make_calls "$T/grouped" grouped ", group: g"
check "deploy remote" "deployed remote version 1" "$(tine deploy "$T/remote")"
check "deploy grouped" "deployed grouped version 1" "$(tine deploy "$T/grouped")"

# record ID: the activation record of ID once it is in Redis (records go in batches).
record() {
  local out
  for _ in $(seq 50); do
    out=$(admin GET "/activations/$1")
    [[ "$out" == "200 "* ]] && break
    sleep 0.1
  done
  echo "${out#* }"
}

# suite APP: the cases; each line of its output is "name: answer", ids
# replaced by what they are, so the two modes can be compared line by line.
suite() {
  local app=$1 out
  r() { http POST "/$app/main" --data-binary "$1"; }
  echo "json: $(r 'local x = tine.invoke("echo", { x = { 1, 2 } }); return x.fn .. " " .. tine.json.encode(x.got.x) .. " " .. x.timeout')"
  echo "text: $(r 'return tine.invoke("text", 7)')"
  echo "info: $(r 'local x, i = tine.invoke("echo", 1); return i.status .. " " .. i.headers["content-type"] .. " " .. #i.invocation_id')"
  # ids: the caller's, two callees': three distinct 32-hex ids, each callee's
  # ctx.invocation_id the one its caller was told
  out=$(r 'local a, ia = tine.invoke("echo", 1); local b, ib = tine.invoke("echo", 2)
    return ctx.invocation_id .. " " .. a.id .. " " .. b.id .. " " .. tostring(a.id == ia.invocation_id and b.id == ib.invocation_id)')
  read -r st caller a b same <<<"$out"
  if [[ "$caller $a $b" =~ ^[0-9a-f]{32}\ [0-9a-f]{32}\ [0-9a-f]{32}$ ]] && [ "$caller" != "$a" ] && [ "$a" != "$b" ] \
     && [ "$caller" != "$b" ]; then echo "ids: $st distinct $same"; else echo "ids: $out"; fi
  echo "copy: $(r 'local t = { a = "mine", list = { "mine" } }; local back = tine.invoke("mutate", t)
    return t.a .. " " .. t.list[1] .. " " .. back.a .. " " .. back.list[1]')"
  out=$(r 'local x = tine.invoke("boom"); return x')
  echo "raise: $(sed -E 's/invocation [0-9a-f]{32}/invocation ID/' <<<"$out")"
  echo "catch: $(r 'local ok, e = pcall(tine.invoke, "boom"); return tostring(ok) .. ", then " .. tine.invoke("text", "x")')"
  out=$(r 'local x = tine.invoke("slow"); return x')
  echo "timeout: $(sed -E 's/invocation [0-9a-f]{32}/invocation ID/' <<<"$out")"
  echo "host calls: $(r 'local x = tine.invoke("kv", { v = "v1" }); local y = tine.invoke("kv", { v = "v2" })
    return x.got .. " " .. x.echoed .. " " .. y.got .. " " .. tine.invoke("text", "after")')"
  echo "missing: $(r 'local x = tine.invoke("nope", {}); return x' | sed "s/app $app /app APP /")"
  echo "depth 8: $(r 'return tine.invoke("deep", { n = 7 }).levels')"
  out=$(r 'local x = tine.invoke("deep", { n = 8 }); return x')
  echo "depth 9: $(sed -E 's/invocation [0-9a-f]{32}/invocation ID/g' <<<"$out")"
  # records: the callee's own, its logs only its own, its parent the caller
  out=$(r 'local x = tine.invoke("chatty", { word = "hi" }); tine.log("main says"); return ctx.invocation_id .. " " .. x.id')
  read -r st caller callee <<<"$out"
  local rc rm
  rc=$(record "$callee")
  rm=$(record "$caller")
  echo "record: $(pyget "$rc" '"%s %s %s %s parent=%s" % (d["function"], d["trigger"], d["status"], [(l["level"], l["msg"]) for l in d["logs"]], d["parent"] == "'"$caller"'")') trace=$(pyget "$rc" 'd["trace"]' | sed "s/^$caller\$/caller/")"
  echo "caller record: $(pyget "$rm" '"%s %s %s" % (d["function"], d["status"], [l["msg"] for l in d["logs"]])')"
  out=$(r 'local ok = pcall(tine.invoke, "boom"); return "x"')
  echo "error record: $(pyget "$(admin GET "/apps/$app/activations?function=boom&limit=1" | cut -d' ' -f2-)" \
    '"%s %s" % (d["activations"][0]["status"] if isinstance(d, dict) else d[0]["status"], len(d["activations"] if isinstance(d, dict) else d))' 2>&1)"
}

suite remote >"$T/remote.out"
suite grouped >"$T/grouped.out"
while IFS= read -r line; do
  name=${line%%:*}
  check "grouped as remote: $name" "$line" "$(grep -m1 "^$name:" "$T/grouped.out")"
done <"$T/remote.out"
# The suite itself must see what a call through tined gives, so that two
# wrong answers cannot agree.
check "remote: the callee's record" \
  "record: chatty invoke 200 [('info', 'chatty says hi'), ('error', 'chatty warns')] parent=True trace=caller" \
  "$(grep -m1 '^record:' "$T/remote.out")"
check "remote: the caller's record" "caller record: main 200 ['main says']" "$(grep -m1 '^caller record:' "$T/remote.out")"
check "remote: host calls" "host calls: 200 v1 plain v1 v2 plain after" "$(grep -m1 '^host calls:' "$T/remote.out")"
check "remote: ids" "ids: 200 distinct true" "$(grep -m1 '^ids:' "$T/remote.out")"
check "remote: copies" "copy: 200 mine mine changed changed" "$(grep -m1 '^copy:' "$T/remote.out")"
check_contains "remote: depth" "calling deep would nest 9 calls deep, over the limit of 8" "$(grep -m1 '^depth 9:' "$T/remote.out")"
check "remote: the error's record" "error record: 500 1" "$(grep -m1 '^error record:' "$T/remote.out")"

# --- what only a group has
# sandboxes APP FN: how many sandboxes the pool of FN has
sandboxes() {
  tine ps --json | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(sum(len(p["sandboxes"]) for p in d["pools"] if p["app"] == sys.argv[1] and p["function"] == sys.argv[2]))' "$1" "$2"
}
check "remote: the chain of 8 took 8 sandboxes of deep" "8" "$(run sandboxes remote deep)"
check "grouped: the calls ran inside main's sandboxes (none of deep's)" "0 0" \
  "$(run sandboxes grouped deep) $(run sandboxes grouped chatty)"
out=$(http POST /grouped/echo --data-binary '{"a":1}')
check "a grouped function is reached from outside" "200 echo" "$(pyget "${out#* }" '"%s %s" % ("'"${out%% *}"'", d["fn"])')"
check "through a sandbox of its own pool" "1" "$(run sandboxes grouped echo)"

# The blast radius: a callee that overruns the caller's budget takes the
# whole sandbox (and whatever runs in it) with it; the next call gets a
# fresh one.
out=$(http POST /grouped/short --data-binary 'return tine.invoke("spin")')
check_contains "a callee past the caller's budget: the caller times out" "504" "${out%% *}"
check "the group serves again (a new sandbox)" "200 alive" "$(http POST /grouped/short --data-binary 'return "alive"')"

# A crash (SIGSEGV from outside) while main runs spin in process: main's
# call fails 502 as any crashed sandbox's; echo, in a sandbox of its own
# pool, is served meanwhile; then main is served again.
http POST /grouped/main --data-binary 'return tine.invoke("spin")' >"$T/crash.out" &
req=$!
pid=""
for _ in $(seq 1 150); do
  pid=$(tine ps --json | python3 -c 'import json, sys
for p in json.load(sys.stdin)["pools"]:
    if p["app"] == "grouped" and p["function"] == "main":
        for s in p["sandboxes"]:
            if s["state"] == "busy": print(s["pid"])')
  [ -n "$pid" ] && break
  sleep 0.02
done
sleep 0.2 # inside spin by now (main calls it at once)
out=$(http POST /grouped/echo --data-binary '{"b":2}')
check "the group's other sandboxes serve while one is busy" "200 echo" "$(pyget "${out#* }" '"%s %s" % ("'"${out%% *}"'", d["fn"])')"
[ -n "$pid" ] && kill -SEGV "$pid"
wait "$req" || true
check_contains "a crash inside the group: the outside call gets 502" "502" "$(cat "$T/crash.out")"
check_contains "and the error names the crash" "crashed" "$(cat "$T/crash.out")"
check "the group serves again after the crash" "200 plain again" \
  "$(http POST /grouped/main --data-binary 'return tine.invoke("text", "again")')"

# A group of 60 functions (fn_1 calls the 59 others in turn): the sandbox sorts their names before it
# is isolated (glibc's qsort of a larger array asks for the memory size with
# a system call the sandbox refuses).
mkdir -p "$T/chain"
{
  echo "app: chain"
  echo "functions:"
  for ((i = 1; i <= 60; i++)); do echo "  fn_$i: { handler: chain.lua#fn_$i, group: chain }"; done
  echo "routes:"
  echo "  - { method: GET, path: /chain, function: fn_1 }"
} >"$T/chain/tine.yaml"
cat >"$T/chain/chain.lua" <<'LUA'
local tine = require "tine"
local M = {}
for i = 2, 60 do M["fn_" .. i] = function() return "fn_" .. i end end
M.fn_1 = function()
  local n = 0
  for i = 2, 60 do if tine.invoke("fn_" .. i) == "fn_" .. i then n = n + 1 end end
  return "called " .. n
end
return M
LUA
tine deploy "$T/chain" >/dev/null
check "a group of 60" "200 called 59" "$(http GET /chain/chain)"
check "in one sandbox" "0" "$(run sandboxes chain fn_60)"

# --- manifest errors at deploy
mkdir -p "$T/bad"
printf 'app: bad\nfunctions:\n  a: { handler: a.lua#main, group: g }\n  b: { runtime: python, handler: b.py#main, group: g }\n' >"$T/bad/tine.yaml"
echo 'return { main = function() end }' >"$T/bad/a.lua"
printf 'def main(req, ctx):\n    return None\n' >"$T/bad/b.py"
out=$(tine deploy "$T/bad" 2>&1 || true)
check_contains "group on a python function is refused with its place" \
  "tine.yaml:4:52: functions.b.group: co-location groups hold runtime lua functions only; function b has runtime python" "$out"
printf 'app: bad\nfunctions:\n  a: { handler: a.lua#main, group: "no good" }\n' >"$T/bad/tine.yaml"
out=$(tine deploy "$T/bad" 2>&1 || true)
check_contains "a bad group name is refused with its place" \
  "tine.yaml:3:36: functions.a.group: group names must be 1..64 letters, digits, '_' or '-', got 'no good'" "$out"

finish
