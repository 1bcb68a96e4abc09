#!/usr/bin/env bash
# tine.http against a real loopback HTTP server (http_fixture.py): requests
# and responses pass through, allow_outbound is enforced, loopback and
# link-local addresses are refused unless the host is listed, timeouts and
# the response size limit give clear errors, and a slow request never blocks
# the node.
. "$(dirname "$0")/lib.sh"
start_http_fixture
start_redis
start_node a --redis "$REDIS_URL"

# One source for every app: each route takes the request from the query.
write_app() { # write_app DIR APP [allow_outbound line]
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<YAML
app: $2
$3
functions:
  get:   { handler: web.lua#get }
  post:  { handler: web.lua#post }
  size:  { handler: web.lua#size }
  fast:  { handler: web.lua#fast }
  short: { handler: web.lua#get, timeout: 1s }
routes:
  - { method: GET,  path: /get,   function: get }
  - { method: POST, path: /post,  function: post }
  - { method: GET,  path: /size,  function: size }
  - { method: GET,  path: /fast,  function: fast }
  - { method: GET,  path: /short, function: short }
YAML
  cat >"$1/web.lua" <<'LUA'
local tine = require "tine"
local M = {}
local function try(t)
  local ok, r = pcall(tine.http.request, t)
  if not ok then return { status = 502, body = r } end
  return { status = 200, json = { status = r.status, headers = r.headers, body = r.body } }
end
function M.get(req)
  return try{ url = req.query.url, method = req.query.method, timeout = tonumber(req.query.timeout) }
end
function M.post(req)
  return try{ url = req.query.url, method = "POST", body = req.body,
              headers = { ["content-type"] = "text/plain", ["x-test"] = "yes", ["x-n"] = 7 } }
end
function M.size(req)
  local ok, r = pcall(tine.http.request, { url = req.query.url })
  if not ok then return { status = 502, body = r } end
  return tostring(#r.body)
end
function M.fast() return "fast" end
return M
LUA
}
get() { # get APP ROUTE URL [more curl args]: GET /APP/ROUTE?url=URL
  local app=$1 route=$2 url=$3; shift 3
  http GET "/$app/$route" --get --data-urlencode "url=$url" "$@"
}
json_field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(eval("d"+sys.argv[2]))' "$1" "$2"; }

write_app "$T/open" open ""
write_app "$T/web" web "allow_outbound: [ 127.0.0.1, \"*.invalid\" ]"
write_app "$T/closed" closed "allow_outbound: []"
check "deploy open" "deployed open version 1" "$(tine deploy "$T/open")"
check "deploy web" "deployed web version 1" "$(tine deploy "$T/web")"
check "deploy closed" "deployed closed version 1" "$(tine deploy "$T/closed")"

# --- requests and responses pass through
out=$(get web get "http://127.0.0.1:$FIX/echo?x=1")
check "GET status" "200" "$(json_field "$out" '["status"]')"
check "GET reached the server" "GET /echo?x=1" "$(json_field "$out" '["body"]' | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["method"], d["path"])')"
check "GET user agent" "tine/0.1" "$(json_field "$out" '["body"]' | python3 -c 'import json,sys; print(json.load(sys.stdin)["headers"]["user-agent"])')"
check "response headers in lower case" "application/json" "$(json_field "$out" '["headers"]["content-type"]')"
out=$(http POST "/web/post?url=http%3A%2F%2F127.0.0.1%3A$FIX%2Fecho" --data-binary 'hello body')
echo_of() { json_field "$1" '["body"]' | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"; }
check "POST method and body" "POST hello body" "$(echo_of "$out" 'd["method"], d["body"]')"
check "POST headers" "yes 7 text/plain" "$(echo_of "$out" 'd["headers"]["x-test"], d["headers"]["x-n"], d["headers"]["content-type"]')"
out=$(get web get "http://127.0.0.1:$FIX/echo" --data-urlencode "method=DELETE")
check "other methods" "DELETE" "$(echo_of "$out" 'd["method"]')"
check "a status is not an error" "418" "$(json_field "$(get web get "http://127.0.0.1:$FIX/status?code=418")" '["status"]')"
check "repeated headers are joined" "a=1, b=2" "$(json_field "$(get web get "http://127.0.0.1:$FIX/cookies")" '["headers"]["set-cookie"]')"
check "a body under the limit" "200 100000" "$(get web size "http://127.0.0.1:$FIX/big?bytes=100000")"

# --- limits
check "too large" "502 tine.http: the response from 127.0.0.1 is larger than the limit of 6291456 bytes" \
  "$(get web size "http://127.0.0.1:$FIX/big?bytes=7000000")"
start=$SECONDS
check "timeout" "502 tine.http: timed out after 300 ms (127.0.0.1)" \
  "$(get web get "http://127.0.0.1:$FIX/delay?ms=3000" --data-urlencode "timeout=0.3")"
[ $((SECONDS - start)) -lt 3 ] && ok "the timeout ends the request early" || fail "timeout early" "took $((SECONDS - start)) s"
# Without a timeout of its own the request gets what is left of the function's
# 1 s: the function cannot outlive its timeout by waiting on HTTP.
start=$SECONDS
out=$(get web short "http://127.0.0.1:$FIX/delay?ms=5000")
[ $((SECONDS - start)) -lt 4 ] && ok "capped by the function's timeout ($out)" || fail "capped" "took $((SECONDS - start)) s: $out"

# --- where a function may go
check "not in allow_outbound" "502 tine.http: host localhost not allowed by allow_outbound" \
  "$(get web get "http://localhost:$FIX/echo")"
check "a wildcard does not match the bare domain" "502 tine.http: host invalid not allowed by allow_outbound" \
  "$(get web get "http://invalid/")"
out=$(get web get "http://x.invalid/" --data-urlencode "timeout=2")
[[ "$out" != *"not allowed"* && "$out" == "502 tine.http: "* ]] && ok "a wildcard matches a subdomain ($out)" \
  || fail "wildcard subdomain" "$out"
check "an empty list allows nothing" "502 tine.http: host 127.0.0.1 not allowed by allow_outbound" \
  "$(get closed get "http://127.0.0.1:$FIX/echo")"
local_msg="one of this node's own or a loopback, link-local or unspecified address; list the host in allow_outbound to reach it"
check "no list: loopback refused" "502 tine.http: host 127.0.0.1 is at 127.0.0.1, $local_msg" \
  "$(get open get "http://127.0.0.1:$FIX/echo")"
check_contains "no list: a name at loopback refused" "502 tine.http: host localhost is at " \
  "$(get open get "http://localhost:$FIX/echo")"
check "no list: IPv4-mapped loopback refused" "502 tine.http: host ::ffff:127.0.0.1 is at ::ffff:127.0.0.1, $local_msg" \
  "$(get open get "http://[::ffff:127.0.0.1]:$FIX/echo")"
check "no list: link-local (cloud metadata) refused" "502 tine.http: host 169.254.169.254 is at 169.254.169.254, $local_msg" \
  "$(get open get "http://169.254.169.254/latest/meta-data/")"
check "no list: unspecified refused" "502 tine.http: host 0.0.0.0 is at 0.0.0.0, $local_msg" \
  "$(get open get "http://0.0.0.0:$FIX/echo")"
check "only http and https" "502 tine.http: 'file:///etc/passwd' is not an http:// or https:// URL" \
  "$(get web get "file:///etc/passwd")"
check "a bad URL" "502 tine.http: 'not a url' is not a valid URL" "$(get web get "not a url")"

# --- the loop keeps serving while a request waits on a slow server
get web get "http://127.0.0.1:$FIX/delay?ms=2000" >"$T/slow.out" &
slow=$!
sleep 0.3
t=$(curl -s -o /dev/null -w '%{time_total}' "$URL/web/fast")
python3 -c "import sys; sys.exit(0 if float('$t') < 1.0 else 1)" && ok "served another call meanwhile (${t}s)" \
  || fail "non-blocking" "the fast call took ${t}s"
wait $slow
check_contains "the slow request still completed" '"body":"late"' "$(cat "$T/slow.out")"
finish
