#!/usr/bin/env bash
# Every error tine sends is JSON {"error": ...} with Content-Type
# application/json, h2o's own included (issue 16, item 13); function
# responses carry the standard reason phrase of their status (item 19).
. "$(dirname "$0")/lib.sh"
RAW=(python3 "$SRC/tests/security/http_raw.py")
start_redis
start_node n --redis "$REDIS_URL" --max-queue 1
mkdir -p "$T/e"
cat >"$T/e/tine.yaml" <<'YAML'
app: e
functions:
  status: { handler: e.lua#status }
  boom: { handler: e.lua#boom }
  spin: { handler: e.lua#spin, timeout: 300ms, concurrency: 1 }
  take: { handler: e.lua#take, max_body: 10 }
  hold: { handler: e.lua#spin, timeout: 3s, concurrency: 1 }
routes:
  - { method: GET, path: /status/:code, function: status }
  - { method: GET, path: /boom, function: boom }
  - { method: GET, path: /spin, function: spin }
  - { method: POST, path: /take, function: take }
  - { method: GET, path: /hold, function: hold }
YAML
cat >"$T/e/e.lua" <<'LUA'
return {
  status = function(req) return { status = tonumber(req.params.code), body = "s" } end,
  boom = function() error("kaboom") end,
  spin = function() while true do end end,
  take = function(req) return #req.body end,
}
LUA
tine deploy "$T/e" >/dev/null

# json_error NAME STATUS NEEDLE REQUEST...: the first response to the raw
# REQUESTs has STATUS, Content-Type application/json, a body {"error": ...}
# holding NEEDLE, and the reason phrase of STATUS.
json_error() {
  local name=$1 status=$2 needle=$3 out
  shift 3
  out=$("${RAW[@]}" exchange "$URL" "$@")
  check "$name: status" "$status" "$(pyget "$out" 'd[0]["status"]')"
  check "$name: JSON content type" "application/json" "$(pyget "$out" 'dict(d[0]["headers"]).get("content-type")')"
  check_contains "$name: an error member" "$needle" \
    "$(pyget "$out" 'json.loads(d[0]["body"])["error"] if d[0]["body"].startswith("{") else d[0]["body"]')"
  LAST=$out
}

H='Host: x\r\n'
json_error "broken Content-Length (h2o)" 400 "bad request: broken content-length header" \
  "POST /e/take HTTP/1.1\r\n${H}Content-Length: 1x\r\n\r\n"
check "broken Content-Length: reason phrase" "Bad Request" "$(pyget "$LAST" 'd[0]["reason"]')"
json_error "unknown Transfer-Encoding (h2o)" 400 "unknown transfer-encoding" \
  "POST /e/take HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\n"
json_error "broken chunked body (h2o)" 400 "broken chunked-encoding" \
  "POST /e/take HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
json_error "unknown Expect (h2o)" 417 "only 100-continue is supported" \
  "POST /e/take HTTP/1.1\r\n${H}Expect: coffee\r\nContent-Length: 1\r\n\r\nx"
json_error "a chunked body over 64 KiB (h2o)" 413 "a body over 64 KiB needs a Content-Length" \
  "POST /e/take HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n11000\r\n$(head -c 69632 /dev/zero | tr '\0' a)\r\n0\r\n\r\n"
json_error "a request path without /" 400 "bad request path" "GET nopath HTTP/1.1\r\n${H}\r\n"
json_error "unknown app" 404 "no app named 'nope'" "GET /nope/x HTTP/1.1\r\n${H}\r\n"
json_error "unknown route" 404 "app e has no route for GET /zzz" "GET /e/zzz HTTP/1.1\r\n${H}\r\n"
json_error "unknown admin endpoint" 404 "no such admin endpoint" \
  "GET /_tine/v1/nope HTTP/1.1\r\n${H}Authorization: Bearer $TOKEN\r\n\r\n"
json_error "method not allowed" 405 "PUT is not allowed on /e/boom" "PUT /e/boom HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n"
check "405: reason phrase" "Method Not Allowed" "$(pyget "$LAST" 'd[0]["reason"]')"
json_error "no token" 401 "missing or wrong admin token" "GET /_tine/v1/apps HTTP/1.1\r\n${H}\r\n"
json_error "over max_body (read by h2o)" 413 "request body of 11 bytes is over the limit of 10 bytes (max_body of take)" \
  "POST /e/take HTTP/1.1\r\n${H}Content-Length: 11\r\n\r\n01234567890"
check "413: reason phrase" "Content Too Large" "$(pyget "$LAST" 'd[0]["reason"]')"
json_error "over max_body (refused at its head)" 413 \
  "request body of 100000 bytes is over the limit of 10 bytes (max_body of take)" \
  "POST /e/take HTTP/1.1\r\n${H}Content-Length: 100000\r\nExpect: 100-continue\r\n\r\n"
json_error "handler error" 500 "function raised an error" "GET /e/boom HTTP/1.1\r\n${H}\r\n"
json_error "function status 101" 502 "function status answered status 101" "GET /e/status/101 HTTP/1.1\r\n${H}\r\n"
json_error "timeout" 504 "timed out" "GET /e/spin HTTP/1.1\r\n${H}\r\n"
# 429: concurrency 1 and a queue of 1; a third call at once is refused.
curl -s -o /dev/null "$URL/e/hold" &
one=$!
hold_queue() { admin GET '/sandboxes?app=e' | cut -d' ' -f2- | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin)["pools"] if p["function"] == "hold"]
sys.exit(0 if p and p[0]["busy"] + p[0]["starting"] == 1 and p[0]["queued"] == int(sys.argv[1]) else 1)' "$1"; }
wait_for 20 hold_queue 0 || fail "a first call runs" "$(admin GET '/sandboxes?app=e')"
curl -s -o /dev/null "$URL/e/hold" &
two=$!
wait_for 20 hold_queue 1 || fail "a second call waits" "$(admin GET '/sandboxes?app=e')"
json_error "queue full" 429 "at its concurrency limit and its queue is full" "GET /e/hold HTTP/1.1\r\n${H}\r\n"
check "429: Retry-After" "1" "$(pyget "$LAST" 'dict(d[0]["headers"]).get("retry-after")')"
wait "$one" "$two" || true

# h2o answers a request head it cannot parse with its own text 400 and closes
# (docs/admin-api.md, "Errors"): the one error that is not JSON.
out=$("${RAW[@]}" exchange "$URL" 'GARBAGE\r\n\r\n')
check "an unparsable request line: 400 and closed" "400 True" "$(pyget "$out" '"%s %s" % (d[0]["status"], d[0]["closed"])')"

# Reason phrases of function responses.
for pair in "200:OK" "201:Created" "302:Found" "404:Not Found" "418:I'm a teapot" "500:Internal Server Error" \
  "599:"; do
  out=$("${RAW[@]}" exchange "$URL" "GET /e/status/${pair%%:*} HTTP/1.1\r\n${H}\r\n")
  check "status ${pair%%:*}: reason phrase '${pair#*:}'" "${pair%%:*} ${pair#*:}" \
    "$(pyget "$out" '"%s %s" % (d[0]["status"], d[0]["reason"])')"
done
finish
