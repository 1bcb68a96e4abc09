#!/usr/bin/env bash
# Node functions (runtime: node) on a real tined and node: the handler
# contract (requests, events, ctx, every kind of return value, async
# handlers, CommonJS and ESM modules, errors with the stack in the logs,
# console.log as log lines), warm sandboxes that keep their state, timeouts,
# the SDK's host calls (log, env, kv, http, invoke and invoke_async between
# Node, Python and Lua functions, emit), and the version's Node host
# following deploys.
. "$(dirname "$0")/lib.sh"
start_redis
start_http_fixture
start_node a --redis "$REDIS_URL"

mkdir -p "$T/js/src" "$T/js/node_modules/greetlib"
cat >"$T/js/tine.yaml" <<YAML
app: js
env: { GREETING: hello }
defaults: { runtime: node, timeout: 2s }
functions:
  hello:  { handler: src/app.js#hello }
  echo:   { handler: src/app.js#echo, env: { EXTRA: "1" } }
  kinds:  { handler: src/app.js#kinds }
  boom:   { handler: src/app.js#boom }
  count:  { handler: src/app.js#count, concurrency: 1 }
  spin:   { handler: src/app.js#spin, timeout: 500ms }
  later:  { handler: src/app.js#later }
  esm:    { handler: src/mod.mjs#handle }
  esmdef: { handler: src/mod.mjs#default }
  esmpkg: { handler: esm/h.js#handle }
  sdk:    { handler: src/sdk.js#run }
  whoami: { handler: src/app.js#whoami }
  lua:    { runtime: lua, handler: l.lua#call_node }
  py:     { runtime: python, handler: p.py#call_node }
  pyecho: { runtime: python, handler: p.py#echo }
  on_ev:  { handler: src/sdk.js#onEvent }
allow_outbound: [ "127.0.0.1" ]
routes:
  - { method: GET,  path: /hello, function: hello }
  - { method: ANY,  path: /echo/:id, function: echo }
  - { method: GET,  path: /kinds/:k, function: kinds }
  - { method: GET,  path: /boom, function: boom }
  - { method: GET,  path: /count, function: count }
  - { method: GET,  path: /spin, function: spin }
  - { method: GET,  path: /later, function: later }
  - { method: GET,  path: /esm, function: esm }
  - { method: GET,  path: /esmdef, function: esmdef }
  - { method: GET,  path: /esmpkg, function: esmpkg }
  - { method: POST, path: /sdk, function: sdk }
  - { method: GET,  path: /lua, function: lua }
  - { method: GET,  path: /py, function: py }
triggers:
  - { on: event, type: js.test, function: on_ev }
YAML
cat >"$T/js/src/app.js" <<'JS'
const tine = require('tine');
let n = 0;
exports.hello = (req, ctx) => 'hello from node';
exports.echo = (req, ctx) => {
  console.log('echo called with', req.params.id);
  const c = { ...ctx };
  delete c.remaining_ms;
  return { method: req.method, path: req.path, params: req.params, query: req.query, query_string: req.query_string,
    ct: req.headers['content-type'], body: req.body, ctx: c, remaining_ok: ctx.remaining_ms() > 0 && ctx.remaining_ms() <= 2000,
    env: tine.env, os_env: process.env.EXTRA };
};
exports.kinds = (req) => {
  switch (req.params.k) {
  case 'none': return undefined;
  case 'null': return null;
  case 'bytes': return Buffer.from([0, 1, 0x72, 0x61, 0x77]);
  case 'list': return [1, 'two', null];
  case 'status': return { status: 418, headers: { 'X-Tea': 'yes', 'X-N': 3 }, body: 'teapot' };
  case 'json': return { status: 201, json: { made: true } };
  case 'bigint': return { x: 1n };
  case 'int': return 42;
  case 'badstatus': return { status: 99 };
  case 'badheader': return { status: 200, headers: { 'X-Bad': 'a\r\nb' } };
  }
};
exports.boom = () => {
  console.log('about to fail');
  throw new TypeError('kaboom: a node error');
};
exports.count = () => String(++n);
exports.whoami = (event, ctx) => ({ fn: ctx.function, event });
exports.spin = () => { for (;;); };
exports.later = async (req, ctx) => {
  await new Promise((r) => setTimeout(r, 20));
  const v = await Promise.resolve(tine.kv.incr('later'));
  return { later: v > 0 };
};
JS
cat >"$T/js/src/mod.mjs" <<'JS'
import { greeting } from 'greetlib';
export async function handle(req, ctx) {
  return { esm: true, greeting, fn: ctx.function, tine: typeof tine.kv.get };
}
export default function (req, ctx) {
  return 'default export';
}
JS
mkdir -p "$T/js/esm"
printf '{"type":"module"}\n' >"$T/js/esm/package.json"
printf 'export const handle = () => "a .js ES module";\nexport default () => 0;\n' >"$T/js/esm/h.js"
cat >"$T/js/node_modules/greetlib/index.js" <<'JS'
exports.greeting = 'from node_modules';
JS
printf '{"name":"greetlib","main":"index.js"}\n' >"$T/js/node_modules/greetlib/package.json"
cat >"$T/js/src/sdk.js" <<'JS'
const tine = require('tine');
exports.run = async (req) => {
  // The body is JavaScript run with tine in scope; its value is returned.
  try {
    const f = new Function('tine', 'req', `return (async () => { ${req.body} })()`);
    return await f(tine, req);
  } catch (e) {
    return { status: 500, body: `${e.name}: ${e.message}` };
  }
};
exports.onEvent = (event) => { tine.kv.set('event-seen', event.data.n); };
JS
cat >"$T/js/l.lua" <<'LUA'
local tine = require "tine"
return { call_node = function(req, ctx)
  local r, info = tine.invoke("whoami", { from = "lua" })
  return { from_node = r.fn, st = info.status }
end }
LUA
cat >"$T/js/p.py" <<'PY'
import tine
def call_node(req, ctx):
    r, info = tine.invoke("whoami", {"from": "python"})
    return {"from_node": r["fn"], "event": r["event"], "st": info["status"]}
def echo(event, ctx):
    return {"python_got": event}
PY
out=$(run tine deploy "$T/js")
check_contains "a Node app deploys" "js" "$out"

check "a hello answer" "200 hello from node" "$(http GET /js/hello)"
out=$(http POST "/js/echo/7?a=1&b=x%20y" -H 'Content-Type: text/plain' --data-binary 'the body')
check_contains "status 200" "200 {" "$out"
j=${out#200 }
check "the request as Node sees it" \
  "POST|/echo/7|{'id': '7'}|{'a': '1', 'b': 'x y'}|a=1&b=x%20y|text/plain|the body|True" \
  "$(pyget "$j" '"|".join(str(x) for x in (d["method"], d["path"], d["params"], d["query"], d["query_string"], d["ct"], d["body"], d["remaining_ok"]))')"
check "ctx" "js|echo|2000|128|32" \
  "$(pyget "$j" '"|".join(str(x) for x in (d["ctx"]["app"], d["ctx"]["function"], d["ctx"]["timeout_ms"], d["ctx"]["memory_mb"], len(d["ctx"]["invocation_id"])))')"
check "env: the app's and the function's, in tine.env and process.env" "{'EXTRA': '1', 'GREETING': 'hello'}|1" \
  "$(pyget "$j" 'str(dict(sorted(d["env"].items()))) + "|" + d["os_env"]')"

check "undefined is 204" "204 " "$(http GET /js/kinds/none)"
check "null is 204" "204 " "$(http GET /js/kinds/null)"
out=$(curl -s -D - "$URL/js/kinds/bytes" -o "$T/bytes")
check_contains "a Buffer is application/octet-stream" "content-type: application/octet-stream" "$out"
check "the bytes as they were" "0000000 0100 6172 0077" "$(od -x "$T/bytes" | head -1)"
check "an array is JSON" '200 [1,"two",null]' "$(http GET /js/kinds/list)"
out=$(curl -s -i "$URL/js/kinds/status")
check_contains "status and headers" "HTTP/1.1 418" "$out"
check_contains "a number header" "x-n: 3" "$out"
check_contains "a body" "teapot" "$out"
check "json with a status" '201 {"made":true}' "$(http GET /js/kinds/json)"
check_contains "a BigInt cannot be JSON: 500" '500 {"error":"function raised an error (invocation' "$(http GET /js/kinds/bigint)"
check "a number is no response: 500" 500 "$(http GET /js/kinds/int | cut -c1-3)"
check "a bad status: 500" 500 "$(http GET /js/kinds/badstatus | cut -c1-3)"
check "a header with CRLF: 500" 500 "$(http GET /js/kinds/badheader | cut -c1-3)"

out=$(http GET /js/boom)
check_contains "a throw is a 500 naming the invocation" '500 {"error":"function raised an error (invocation' "$out"
logs=$(logs_of js boom "about to fail")
check_contains "the error in the activation's logs" "raised: TypeError: kaboom: a node error" "$logs"
check_contains "with its stack" 'app.js:' "$logs"
check_contains "console.log lines are log lines" "about to fail" "$logs"
logs=$(logs_of js echo "echo called")
check_contains "console.log in a call that succeeded" "echo called with 7" "$logs"

check "a warm sandbox keeps its state (1)" "200 1" "$(http GET /js/count)"
check "a warm sandbox keeps its state (2)" "200 2" "$(http GET /js/count)"
check "an async handler" '200 {"later":true}' "$(http GET /js/later)"
check "an ES module, with a package from node_modules and the global tine" \
  '200 {"esm":true,"greeting":"from node_modules","fn":"esm","tine":"function"}' "$(http GET /js/esm)"
check "an ES module's default export" "200 default export" "$(http GET /js/esmdef)"
check "a .js ES module (package.json type: module)" "200 a .js ES module" "$(http GET /js/esmpkg)"
out=$(http GET /js/spin)
check_contains "a spinning handler times out: 504" "504" "$out"
check "the node serves on" "200 hello from node" "$(http GET /js/hello)"

# The SDK's host calls.
sdk() { http POST /js/sdk --data-binary "$1"; }
check "kv.set" "200 true" "$(sdk 'return String(tine.kv.set("k1", "v1"))')"
check "kv.get" "200 v1" "$(sdk 'return tine.kv.get("k1")')"
check "kv.get missing" "200 null" "$(sdk 'return String(tine.kv.get("nope"))')"
check "kv.incr" "200 5" "$(sdk 'tine.kv.incr("n", 2); return String(tine.kv.incr("n", 3))')"
check "kv.keys" '200 ["k1","later","n"]' "$(sdk 'return tine.kv.keys()')"
check "kv.del" "200 true false" "$(sdk 'return `${tine.kv.del("k1")} ${tine.kv.del("k1")}`')"
check "kv with a ttl expires" "200 null" \
  "$(sdk 'tine.kv.set("t", "x", { ttl: 0.05 }); await new Promise((r) => setTimeout(r, 200)); return String(tine.kv.get("t"))')"
check "kv.incr on text: tine.Error naming the call" "500 tine.Error: tine.kv.incr:" \
  "$(sdk 'tine.kv.set("txt", "abc"); tine.kv.incr("txt")' | cut -c1-29)"
check "a bad argument: TypeError" "500 TypeError: tine.kv.get: the key must be a non-empty string" "$(sdk 'tine.kv.get(3)')"
out=$(sdk "const r = tine.http.request('http://127.0.0.1:$FIX/echo', { method: 'POST', headers: { 'X-A': 'b' }, body: 'sent' }); return { st: r.status, body: JSON.parse(r.body) }")
check "http.request to an allowed host" "200|POST|sent" \
  "$(pyget "${out#200 }" '"%s|%s|%s" % (d["st"], d["body"]["method"], d["body"]["body"])')"
out=$(sdk "tine.http.request('http://localhost:$FIX/hello')")
check_contains "http.request to a host not allowed: tine.Error" "500 tine.Error: tine.http:" "$out"
out=$(sdk 'const [r, info] = tine.invoke("whoami", { x: 1 }); return { st: info.status, r, id: info.invocation_id.length }')
check "invoke returns [result, info]" '200 {"st":200,"r":{"fn":"whoami","event":{"x":1}},"id":32}' "$out"
out=$(sdk 'const [r, info] = tine.invoke("hello"); return { r, ct: info.headers["content-type"] }')
check "invoke of a text answer" '200 {"r":"hello from node","ct":"text/plain; charset=utf-8"}' "$out"
out=$(sdk 'tine.invoke("boom", {})')
check_contains "invoke of a function that threw: tine.Error" "500 tine.Error: tine.invoke: boom raised: TypeError: kaboom" "$out"
out=$(sdk 'const [r] = tine.invoke("pyecho", { n: 1 }); return r')
check "Node invokes Python" '200 {"python_got":{"n":1}}' "$out"
check "invoke_async returns an invocation id" "200 32" "$(sdk 'return String(tine.invoke_async("hello", {}).length)')"
out=$(http GET /js/lua)
check "Lua invokes Node" 'whoami 200' "$(pyget "${out#200 }" 'd["from_node"] + " " + str(d["st"])')"
out=$(http GET /js/py)
check "Python invokes Node" "whoami {'from': 'python'} 200" "$(pyget "${out#200 }" 'd["from_node"] + " " + str(d["event"]) + " " + str(d["st"])')"
check_contains "emit returns an event id" "200 " "$(sdk 'return tine.emit("js.test", { n: 7 })')"
wait_for 10 bash -c "[ \"\$(redis-cli -s $T/redis.sock get tine:kv:js:event-seen)\" = 7 ]" && ok "an event reaches a Node function" \
  || fail "an event reaches a Node function" "kv event-seen is $(redis-cli -s "$T/redis.sock" get tine:kv:js:event-seen)"
check "tine.log lines" "200 ok" "$(sdk 'tine.log("a", 1); tine.log.error("bad one"); return "ok"')"
logs=$(logs_of js sdk "bad one")
check_contains "tine.log.error in the logs" "bad one" "$logs"

# A new version: a new Node host with the new code; the old one goes.
sed -i 's/hello from node/hello again/' "$T/js/src/app.js"
run tine deploy "$T/js" >/dev/null
check "the new version's code" "200 hello again" "$(http GET /js/hello)"
# hosts: this node's Node hosts (their process name; descendants of tined).
hosts() {
  ps -eo pid=,ppid=,comm= | awk -v root="$NODE_PID" '
    { parent[$1] = $2; if ($3 == "tine-nodehost") h[$1] = 1 }
    END { for (p in h) { q = parent[p]; n = 0
            while (q != root && (q in parent) && n++ < 64) q = parent[q]
            if (q == root) print p } }'
}
count_hosts() { [ "$(hosts | wc -l)" = "$1" ]; }
wait_for 10 count_hosts 1 && ok "the old version's Node host is gone" || fail "the old version's Node host is gone" "$(hosts)"
check_json_log "$T/a.log"
finish
