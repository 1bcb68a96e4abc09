#!/usr/bin/env bash
# The example apps: hello answers; todo is a REST API over tine.kv whose items
# are shared by its five functions; another app cannot see todo's keys.
. "$(dirname "$0")/lib.sh"
start_redis
start_node a --redis "$REDIS_URL"
check "deploy hello" "deployed hello version 1" "$(tine deploy "$SRC/functions-examples/hello")"
check "hello" "200 hello, world" "$(http GET /hello/)"
check "hello with a param" "200 hello, tine" "$(http GET /hello/hi/tine)"
check "hello with a query" "200 hello, q" "$(http GET '/hello/?name=q')"
# Every answer carries its length, so the connection stays open after a 404
# or a function's own status as it does after a 200 (h2o closes it otherwise).
conn=$(curl -sv "$URL/hello/" "$URL/hello/nothere" "$URL/nope" "$URL/hello/" 2>&1)
check "keep-alive across 200 and 404s" "0 4 3" "$(grep -ci '^< connection: close' <<<"$conn") $(grep -ci '^< content-length:' <<<"$conn") $(grep -ciE 're-?using existing connection' <<<"$conn")"
check "invoke hello" "hello, cli" "$(tine invoke hello hi '{"name":"cli"}')"

check "deploy polyglot" "deployed polyglot version 1" "$(tine deploy "$SRC/functions-examples/polyglot")"
check "Lua calls Python calls Node calls Lua" '200 {"by":["greet","compose","style"],"greeting":"hello, ada","visits":1}' \
  "$(http GET /polyglot/greet/ada | python3 -c 'import json,sys; s=sys.stdin.read(); c,b=s.split(" ",1); print(c, json.dumps(json.loads(b), sort_keys=True, separators=(",",":")))')"
out=$(http GET /polyglot/greet/ada)
check_contains "and again: the counter kept in tine.kv" '"visits":2' "$out"
check_contains "the Node side saw it" '"greeting":"welcome back, ada"' "$out"

check "deploy todo" "deployed todo version 1" "$(tine deploy "$SRC/functions-examples/todo")"
check_contains "empty list" '200 {"items":[]}' "$(http GET /todo/items)"
out=$(http POST /todo/items -d '{"title":"write tests"}')
check_contains "create" '201' "$out"
check_contains "create returns id" '"id":1' "$out"
http POST /todo/items -d '{"title":"ship"}' >/dev/null
check_contains "get" '"title":"write tests"' "$(http GET /todo/items/1)"
check_contains "update" '"done":true' "$(http PUT /todo/items/1 -d '{"done":true}')"
check_contains "list sees both" '"title":"ship"' "$(http GET /todo/items)"
check_contains "bad body 400" '400' "$(http POST /todo/items -d 'nope')"
check "delete" "204 " "$(http DELETE /todo/items/2)"
check_contains "deleted is gone" '404' "$(http GET /todo/items/2)"
check_contains "missing is 404" '404' "$(http GET /todo/items/99)"

# Another app's function cannot read todo's keys: its key space is its own.
mkdir -p "$T/spy"
cat >"$T/spy/tine.yaml" <<'YAML'
app: spy
functions:
  peek: { handler: spy.lua#peek }
routes:
  - { method: GET, path: /peek, function: peek }
YAML
cat >"$T/spy/spy.lua" <<'LUA'
local tine = require "tine"
return { peek = function(req, ctx)
  return { status = 200, json = { item = tine.kv.get("item:1") or "none", keys = #tine.kv.keys("") } }
end }
LUA
tine deploy "$T/spy" >/dev/null
check_contains "other app sees none of todo's keys" '"item":"none"' "$(http GET /spy/peek)"
check_contains "other app lists no keys" '"keys":0' "$(http GET /spy/peek)"
finish
