#!/usr/bin/env bash
# What a function sees of an HTTP request and what the client sees of its
# answer, across the gateway, the invoker and the sandbox (the request built
# with inv_request_*, the answer read through inv_result_*; issue 17 item 3):
# method, path, decoded route parameters (undecoded when that would not be
# UTF-8), the query, header names in lower case with repeated headers joined
# by ", "; the function's status and headers (names lower case) in
# the HTTP answer and in the admin API's invoke envelope.
. "$(dirname "$0")/lib.sh"
start_redis
start_node n --redis "$REDIS_URL"
mkdir -p "$T/shape"
cat >"$T/shape/tine.yaml" <<'YAML'
app: shape
functions:
  echo: { handler: shape.lua#echo }
  made: { handler: shape.lua#made }
routes:
  - { method: ANY, path: /echo/:id/*rest, function: echo }
  - { method: GET, path: /made, function: made }
YAML
cat >"$T/shape/shape.lua" <<'LUA'
local M = {}
function M.echo(req)
  return { method = req.method, path = req.path, params = req.params,
           query_string = req.query_string, query = req.query, headers = req.headers, body = req.body }
end
function M.made(req)
  return { status = 203, headers = { ["X-Made-Here"] = "Yes", ["Content-Type"] = "text/x-made" }, body = "made" }
end
return M
LUA
tine deploy "$T/shape" >/dev/null

out=$(run curl -s -X PUT "$URL/shape/echo/a%20b/x/%FF/y?q=1&q=2&w=%41" -H 'X-Multi: one' -H 'x-multi: two' \
  -H 'X-Upper-Case: Value Kept' -H 'X-Multi: three' -H 'Empty;' --data-binary 'the body')
check "the method" "PUT" "$(pyget "$out" 'd["method"]')"
check "path after the app" "/echo/a%20b/x/%FF/y" "$(pyget "$out" 'd["path"]')"
check "a route parameter is decoded" "a b" "$(pyget "$out" 'd["params"]["id"]')"
check "one that would not be UTF-8 is not" "x/%FF/y" "$(pyget "$out" 'd["params"]["rest"]')"
check "only the route's parameters" "2" "$(pyget "$out" 'len(d["params"])')"
check "the query string" "q=1&q=2&w=%41" "$(pyget "$out" 'd["query_string"]')"
check "the query, parsed" "A" "$(pyget "$out" 'd["query"]["w"]')"
check "repeated headers joined in order" "one, two, three" "$(pyget "$out" 'd["headers"]["x-multi"]')"
check "header names in lower case" "Value Kept" "$(pyget "$out" 'd["headers"]["x-upper-case"]')"
check "an empty header" "" "$(pyget "$out" 'd["headers"]["empty"]')"
check "no upper-case name" "[]" "$(pyget "$out" 'sorted(k for k in d["headers"] if k != k.lower())')"
check "the body" "the body" "$(pyget "$out" 'd["body"]')"

out=$(run curl -s "$URL/shape/echo/1/z")
check "no query" "'' 1 z False" \
  "$(pyget "$out" 'repr(d["query_string"]) + " " + d["params"]["id"] + " " + d["params"]["rest"] + " " + str("x-multi" in d["headers"])')"

run curl -s -D "$T/made.h" -o "$T/made.b" "$URL/shape/made" >/dev/null
head=$(tr -d '\r' <"$T/made.h")
check_contains "the function's status" "HTTP/1.1 203 Non-Authoritative Information" "$head"
check_contains "its header, name in lower case" "x-made-here: Yes" "$head"
check_contains "its content type" "content-type: text/x-made" "$head"
check "its body" "made" "$(cat "$T/made.b")"

out=$(admin POST /apps/shape/functions/made/invoke -d '{}')
check "invoke envelope: status" "200 203" "${out%% *} $(pyget "${out#* }" 'd["status"]')"
check "invoke envelope: headers" '{"content-type": "text/x-made", "x-made-here": "Yes"}' \
  "$(pyget "${out#* }" 'json.dumps(d["headers"], sort_keys=True)')"
finish
