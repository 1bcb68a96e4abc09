#!/usr/bin/env bash
# tine.http never lends one app's connection to another (issue 16 item 1):
# app "trusted" may reach localhost and leaves keep-alive connections to a
# loopback server; apps without that right ("plain": no allow_outbound,
# "star": allow_outbound ["*"]) then ask for the same URLs and must be
# refused every time, whatever spelling of the host they use, while
# "trusted" keeps working. The policy is checked on every request against
# the address actually used, so a redeploy that drops the right takes
# effect at once although the old connection is still open. Redirects are
# never followed.
. "$(dirname "$0")/lib.sh"
start_http_fixture
start_redis
start_node a --redis "$REDIS_URL"

write_app() { # write_app DIR APP [allow_outbound line]
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<YAML
app: $2
$3
functions:
  get: { handler: web.lua#get }
routes:
  - { method: GET, path: /get, function: get }
YAML
  cat >"$1/web.lua" <<'LUA'
local tine = require "tine"
return { get = function(req)
  local ok, r = pcall(tine.http.request, { url = req.query.url })
  if not ok then return { status = 502, body = r } end
  return { status = 200, json = { status = r.status, body = r.body, location = r.headers.location } }
end }
LUA
}
get() { # get APP URL: prints "STATUS BODY" of /APP/get?url=URL
  http GET "/$1/get" --get --data-urlencode "url=$2"
}
field() { python3 -c 'import json,sys; d=json.loads(sys.argv[1].split(" ",1)[1]); print(d.get(sys.argv[2]))' "$1" "$2"; }

write_app "$T/trusted" trusted "allow_outbound: [ localhost, 127.0.0.1 ]"
write_app "$T/plain" plain ""
write_app "$T/star" star 'allow_outbound: [ "*" ]'
for app in trusted plain star; do
  check "deploy $app" "deployed $app version 1" "$(tine deploy "$T/$app")"
done

# The trusted app's connections are kept alive: a second request goes out on
# the same client port (else this test would prove nothing).
first=$(get trusted "http://localhost:$FIX/peer")
second=$(get trusted "http://localhost:$FIX/peer")
if [[ "$first" == "200 "* ]] && [ "$(field "$first" body)" = "$(field "$second" body)" ]; then
  ok "trusted reaches localhost on a kept-alive connection (port $(field "$first" body))"
else
  fail "trusted keep-alive" "first [$first] second [$second]"
fi
check_contains "trusted reaches 127.0.0.1" '"status":200' "$(get trusted "http://127.0.0.1:$FIX/peer")"

refused() { # refused NAME APP URL: the request must be refused by the policy
  local out
  out=$(get "$2" "$3")
  if [[ "$out" == "502 tine.http: host "*"a loopback, link-local or unspecified address"* ]]; then
    ok "$1: refused"
  else
    fail "$1" "expected a refusal, got [$out]"
  fi
}
for round in 1 2 3; do
  for app in plain star; do
    refused "round $round: $app, localhost" $app "http://localhost:$FIX/peer"
    refused "round $round: $app, LOCALHOST" $app "http://LOCALHOST:$FIX/peer"
    refused "round $round: $app, 127.0.0.1" $app "http://127.0.0.1:$FIX/peer"
    refused "round $round: $app, the mapped IPv6 form" $app "http://[::ffff:127.0.0.1]:$FIX/peer"
  done
  check_contains "round $round: trusted still works" '"status":200' "$(get trusted "http://localhost:$FIX/peer")"
done

# Redirects are answered as they are, never followed: a redirect to a host
# the app may not reach is only a Location header.
out=$(get trusted "http://127.0.0.1:$FIX/redirect?to=http://localhost:$FIX/echo")
check "a redirect is not followed" "302 http://localhost:$FIX/echo moved" \
  "$(field "$out" status) $(field "$out" location) $(field "$out" body)"

# A redeploy without the right takes effect on the open connection at once.
get trusted "http://localhost:$FIX/peer" >/dev/null
write_app "$T/trusted" trusted ""
check "redeploy trusted without allow_outbound" "deployed trusted version 2" "$(tine deploy "$T/trusted")"
refused "trusted v2 on its v1 connection" trusted "http://localhost:$FIX/peer"
refused "trusted v2, 127.0.0.1" trusted "http://127.0.0.1:$FIX/peer"
finish
