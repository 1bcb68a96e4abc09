#!/usr/bin/env bash
# tine test (docs/testing.md): an app with passing and failing tests of
# both kinds (the exact summary line, exit codes, the JUnit file, failures
# showing file:line and expected/got), a test file with a syntax error, the
# examples' own tests (CI runs them here), a small app's whole run under
# 1 s, the node cleaned up after (also after Ctrl-C), and tests/ left out
# of the bundle.
. "$(dirname "$0")/lib.sh"
export TMPDIR="$T/tmp"
mkdir -p "$TMPDIR"

A="$T/app"
mkdir -p "$A/tests"
cat >"$A/tine.yaml" <<'YAML'
app: tt
functions:
  hi: { handler: h.lua#hi }
  kv: { handler: h.lua#kv }
  got: { handler: h.lua#got }
routes:
  - { method: GET, path: /hi/:name, function: hi }
  - { method: POST, path: /kv, function: kv }
triggers:
  - { on: event, type: test.ping, function: got }
YAML
cat >"$A/h.lua" <<'LUA'
local tine = require "tine"
return {
  hi = function(req)
    return { status = 200, headers = { ["x-who"] = req.params.name }, json = { greeting = "hello, " .. req.params.name, n = 1 } }
  end,
  kv = function(req) tine.kv.set("k", req.body); return "stored" end,
  got = function(ev) tine.kv.set("got", ev.data.msg) end,
}
LUA
cat >"$A/tests/a_test.lua" <<'LUA'
test("says hello", function(t)
  local r = t.get("/hi/ada")
  t.eq(r.status, 200)
  t.eq(r.json, { greeting = "hello, ada", n = 1 })
  t.eq(r.headers["x-who"], "ada")
end)
test("kv", function(t)
  t.eq(t.post("/kv", { body = "v1" }).body, "stored")
  t.eq(t.kv("k"), "v1")
  t.eq(t.kv("never"), nil)
end)
test("an event-triggered invocation", function(t)
  t.emit("test.ping", { msg = "pong" })
  local a = t.wait_invocation("got")
  t.eq(a["function"], "got")
  t.eq(t.kv("got"), "pong")
end)
test("invoke", function(t)
  t.eq(t.invoke("hi", { params = { name = "bo" } }).json.greeting, "hello, bo")
end)
test("a failing assertion", function(t)
  t.eq(t.get("/hi/x").status, 404)
end)
test("a failing table", function(t)
  t.eq(t.get("/hi/x").json, { greeting = "hi" }, "the body")
end)
LUA
cat >"$A/tests/b.yaml" <<'YAML'
- name: hello
  request: { path: /hi/ada }
  expect: { status: 200, headers: { X-Who: ada }, json: { greeting: "hello, ada" } }
- name: wrong
  request: { path: /hi/ada }
  expect: { status: 201, json: { n: 2 } }
YAML

out=$("$BIN/tine" test "$A" --junit "$T/junit.xml" 2>&1) && rc=0 || rc=$?
echo "$out"
check "failing tests: exit status 1" "1" "$rc"
check "the summary line ends the output" "5 passed, 3 failed" "$(tail -n 1 <<<"$out")"
check_contains "a Lua failure shows file:line and expected/got" \
  "tests/a_test.lua:22: expected 404, got 200" "$out"
check_contains "a table failure too, with its label" \
  'tests/a_test.lua:25: the body: expected {"greeting":"hi"}, got {"greeting":"hello, x","n":1}' "$out"
check_contains "a YAML failure shows file:line" "tests/b.yaml:4: wrong: status: expected 201, got 200" "$out"
check_contains "and each expectation that failed" "json.n: expected 2, got 1" "$out"
check_contains "passing ones are listed" "  ok    an event-triggered invocation" "$out"
check "the JUnit file counts them" "8 3 2" "$(python3 - "$T/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
print(r.get("tests"), r.get("failures"), len(r.findall("testsuite")))
PY
)"
check_contains "with the failure's message" 'tests/a_test.lua:22: expected 404, got 200</failure>' "$(cat "$T/junit.xml")"
check "the node is gone: its directory removed" "" "$(ls "$TMPDIR")"
check "no tined of it left" "0" "$(pgrep -f "state-dir $TMPDIR" | wc -l)"

# A syntax error in a test file: a failure naming the file and line.
printf 'test("x", function(t)\n  local = 1\nend)\n' >"$A/tests/c_test.lua"
out=$("$BIN/tine" test "$A" 2>&1) && rc=0 || rc=$?
check "a syntax error fails the run" "1" "$rc"
check_contains "naming the file and line" "tests/c_test.lua:2: '<name>' expected near '='" "$out"
check "the others still ran" "5 passed, 4 failed" "$(tail -n 1 <<<"$out")"
printf -- '- name: x\n  request: { path: /hi/a\n' >"$A/tests/d.yaml"
check_contains "a YAML syntax error names file:line:col" "tests/d.yaml:3:1: " "$("$BIN/tine" test "$A" 2>&1 || true)"
printf -- '- name: x\n  request: { path: /hi/a, metod: GET }\n  expect: { status: 200 }\n' >"$A/tests/d.yaml"
check_contains "an unknown key in a case" "tests/d.yaml:1: x: case 1: request.metod: unknown key" \
  "$("$BIN/tine" test "$A" 2>&1 || true)"

# Passing tests only: exit status 0; tests/ is not in the bundle.
rm "$A/tests/c_test.lua" "$A/tests/d.yaml"
sed -i 's/expect: { status: 201, json: { n: 2 } }/expect: { status: 200, json: { n: 1 } }/' "$A/tests/b.yaml"
sed -i '/a failing/,$d' "$A/tests/a_test.lua"
out=$("$BIN/tine" test "$A" 2>&1) && rc=0 || rc=$?
check "all passing: exit status 0" "0 6 passed, 0 failed" "$rc $(tail -n 1 <<<"$out")"
"$BIN/tine" pack "$A" -o "$T/tt.tine" >/dev/null
check "tests/ is not packed" "h.lua tine.yaml" "$(tar tzf "$T/tt.tine" | sort | tr '\n' ' ' | sed 's/ $//')"

# Ctrl-C (here SIGTERM) while the tests run: they stop, the node is stopped and its
# directory removed (before: the signal ended tine and left it behind).
B="$T/slow"
mkdir -p "$B/tests"
printf 'app: slow\nfunctions:\n  spin: { handler: s.lua#spin, timeout: 10s }\nroutes:\n  - { method: GET, path: /spin, function: spin }\n' >"$B/tine.yaml"
printf 'return { spin = function() local t = os.clock() + 1.5; while os.clock() < t do end; return "done" end }\n' >"$B/s.lua"
for i in 1 2 3 4 5 6; do printf 'test("spin %s", function(t) t.eq(t.get("/spin").body, "done") end)\n' "$i"; done >"$B/tests/spin_test.lua"
"$BIN/tine" test "$B" >"$T/slow.out" 2>&1 &
tpid=$!
wait_for 20 bash -c "ls '$TMPDIR'/tine-node.*/port >/dev/null 2>&1" || true
sleep 0.5
kill -TERM "$tpid" # (a background job of a script ignores SIGINT)
wait "$tpid" && rc=0 || rc=$?
check "interrupted: exit status 1" "1" "$rc"
check_contains "it says so" "interrupted: the tests after the last one shown did not run" "$(cat "$T/slow.out")"
check "interrupted: the node's directory is removed" "" "$(ls "$TMPDIR")"
check "interrupted: no tined of it left" "0" "$(pgrep -f "state-dir $TMPDIR" | wc -l)"

# The examples' tests, and a small app's whole run under 1 s.
for ex in hello todo orders polyglot; do
  out=$("$BIN/tine" test "$SRC/functions-examples/$ex" 2>&1) && rc=0 || rc=$?
  check "functions-examples/$ex: its tests pass" "0 0 failed" "$rc $(tail -n 1 <<<"$out" | sed 's/.*, //')"
  [ "$rc" -eq 0 ] || echo "$out"
done
start=$(date +%s%N)
"$BIN/tine" test "$SRC/functions-examples/hello" >/dev/null 2>&1 || true
ms=$((($(date +%s%N) - start) / 1000000))
echo "tine test functions-examples/hello: $ms ms"
# The budget is the released build's: AddressSanitizer slows every process.
if ldd "$BIN/tined" | grep -q libasan; then
  skip "a small app's whole run is under 1 s" "an AddressSanitizer build ($ms ms)"
else
  check "a small app's whole run is under 1 s" "yes" "$([ "$ms" -lt 1000 ] && echo yes || echo "no: $ms ms")"
fi
finish
