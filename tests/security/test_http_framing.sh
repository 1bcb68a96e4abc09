#!/usr/bin/env bash
# A function cannot smuggle a response onto its client's connection (issue
# 16, item 7): on one kept-alive connection, read byte-exact on a raw socket,
# a 1xx is refused with 502, 204 and 304 carry no body, a HEAD answer no
# body, forged and hop-by-hop headers never reach the wire, and the next
# response read is always the real one.
. "$(dirname "$0")/lib.sh"
RAW=(python3 "$SRC/tests/security/http_raw.py")
FORGED='HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged'

start_redis
start_node n --redis "$REDIS_URL"
mkdir -p "$T/f"
cat >"$T/f/tine.yaml" <<'YAML'
app: f
functions:
  status: { handler: f.lua#status }
  hop: { handler: f.lua#hop }
  ok: { handler: f.lua#ok }
  ctl: { runtime: exec, handler: ctl.sh }
routes:
  - { method: GET, path: /status/:code, function: status }
  - { method: GET, path: /hop, function: hop }
  - { method: ANY, path: /ok, function: ok }
  - { method: GET, path: /ctl, function: ctl }
YAML
cat >"$T/f/f.lua" <<LUA
local forged = "$FORGED"
return {
  status = function(req) return { status = tonumber(req.params.code), body = forged } end,
  hop = function() return { status = 200, body = "real", headers = { ["Content-Length"] = "0",
    ["Transfer-Encoding"] = "chunked", ["Connection"] = "close", ["Keep-Alive"] = "timeout=1",
    ["Upgrade"] = "h2c", ["TE"] = "trailers", ["Trailer"] = "x", ["x-tine-version"] = "666",
    ["X-Fine"] = "yes" } } end,
  ok = function() return "ok" end,
}
LUA
# The sandboxes refuse CR, LF and NUL in header values, but other control
# characters (here BEL and ESC from an exec program) got through to the wire.
cat >"$T/f/ctl.sh" <<'SH'
#!/bin/sh
printf '{"status":200,"headers":{"x-a":"v\\u0007\\u001b[2J"},"body":"ctl"}'
SH
tine deploy "$T/f" >/dev/null

GET_OK='GET /f/ok HTTP/1.1\r\nHost: x\r\n\r\n'

# framed NAME REQUEST STATUS BODY: REQUEST answers STATUS with exactly BODY
# (or a body starting with it when BODY ends in "..."), nothing beyond it,
# and the next response on the connection is the real one.
framed() {
  local out body
  out=$("${RAW[@]}" exchange "$URL" "$2" "$GET_OK")
  body=$(pyget "$out" 'd[0].get("body", "")')
  check "$1: status" "$3" "$(pyget "$out" 'd[0]["status"]')"
  if [[ "$4" == *... ]]; then check_contains "$1: body" "${4%...}" "$body"; else check "$1: body" "$4" "$body"; fi
  check "$1: nothing after the response" "" "$(pyget "$out" 'd[0].get("extra", "")')"
  check "$1: the next response on the connection is the real one" "200 ok" \
    "$(pyget "$out" '"%s %s" % (d[1]["status"], d[1]["body"]) if len(d) > 1 else "none"')"
  LAST=$out
}

for code in 100 101 103 199; do
  framed "status $code" "GET /f/status/$code HTTP/1.1\r\nHost: x\r\n\r\n" 502 \
    "{\"error\":\"function status answered status $code: a function answers a final status from 200 to 599 (invocation ..."
done

framed "204 with a body" 'GET /f/status/204 HTTP/1.1\r\nHost: x\r\n\r\n' 204 ""
check "204: no Content-Length" "None" "$(pyget "$LAST" 'dict(d[0]["headers"]).get("content-length")')"
framed "304 with a body" 'GET /f/status/304 HTTP/1.1\r\nHost: x\r\n\r\n' 304 ""
check "304: no Content-Length" "None" "$(pyget "$LAST" 'dict(d[0]["headers"]).get("content-length")')"
framed "HEAD" 'HEAD /f/ok HTTP/1.1\r\nHost: x\r\n\r\n' 200 ""
check "HEAD: Content-Length of the body not sent" "2" "$(pyget "$LAST" 'dict(d[0]["headers"]).get("content-length")')"
framed "HEAD on a 200 with a forged body" 'HEAD /f/status/200 HTTP/1.1\r\nHost: x\r\n\r\n' 200 ""

framed "hop-by-hop headers" 'GET /f/hop HTTP/1.1\r\nHost: x\r\n\r\n' 200 "real"
hs=$(pyget "$LAST" '" ".join(sorted(h for h, v in d[0]["headers"]))')
check "hop-by-hop headers: dropped, framing and gateway headers are the gateway's" \
  "connection content-length date server x-fine x-tine-invocation-id x-tine-version" "$hs"
check "hop-by-hop headers: Content-Length is the body's" "4" \
  "$(pyget "$LAST" 'dict(d[0]["headers"])["content-length"]')"
check "hop-by-hop headers: the connection stays open" "keep-alive" \
  "$(pyget "$LAST" 'dict(d[0]["headers"])["connection"]')"
check "hop-by-hop headers: x-tine-version is the gateway's" "1" \
  "$(pyget "$LAST" 'dict(d[0]["headers"])["x-tine-version"]')"

out=$("${RAW[@]}" exchange "$URL" 'GET /f/ctl HTTP/1.1\r\nHost: x\r\n\r\n' "$GET_OK")
check "control characters in a header value: 502" "502" "$(pyget "$out" 'd[0]["status"]')"
check_contains "control characters in a header value: the error names the function and the header" \
  "function ctl answered header 'x-a' with a control character (CR, LF, NUL...) in its value" \
  "$(pyget "$out" 'd[0]["body"]')"
check "control characters in a header value: the header is not sent" "None" \
  "$(pyget "$out" 'dict(d[0]["headers"]).get("x-a")')"
check "control characters in a header value: the next response is the real one" "200 ok" \
  "$(pyget "$out" '"%s %s" % (d[1]["status"], d[1]["body"]) if len(d) > 1 else "none"')"
finish_security
