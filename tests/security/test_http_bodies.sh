#!/usr/bin/env bash
# Request bodies cannot make a node hold memory without a token (issue 16,
# item 3): many connections each sending a large body to a function and to
# the admin API, and many HTTP/2 streams on one connection, keep tined's RSS
# under the bound of docs/ARCHITECTURE.md ("Request path"), with 413/503/401
# JSON answers, while an ordinary request is served; max_body per function;
# --max-connections. test_tls_bodies.sh runs it over HTTPS (TINE_TEST_TLS=1),
# HTTP/2 negotiated by ALPN.
. "$(dirname "$0")/lib.sh"
RAW=(python3 "$SRC/tests/security/http_raw.py")
MAXCONN=48
BUDGET_MIB=16
# The bound of docs/ARCHITECTURE.md: 1.5 MiB per connection plus three times
# the budget of body bytes.
BOUND_KIB=$((MAXCONN * 1536 + 3 * BUDGET_MIB * 1024))
# curl's bodies over 64 KiB go over HTTP/1.1: over TLS it would otherwise
# choose HTTP/2, where the node refuses them (checked with nghttp below).
H1=()
[ ${#NODE_TLS[@]} -eq 0 ] || H1=(--http1.1)

start_redis
start_node n --redis "$REDIS_URL" --max-connections $MAXCONN --max-buffered-body ${BUDGET_MIB}MiB --http2 on
PID=$NODE_PID

mkdir -p "$T/sink"
cat >"$T/sink/tine.yaml" <<'YAML'
app: sink
functions:
  take: { handler: s.lua#take, concurrency: 50 }
  hi: { handler: s.lua#hi, warm: 1 }
routes:
  - { method: POST, path: /take, function: take }
  - { method: GET, path: /hi, function: hi }
YAML
cat >"$T/sink/s.lua" <<'LUA'
return {
  take = function(req) return "took " .. #(req.body or "") end,
  hi = function() return "hi" end,
}
LUA
tine deploy "$T/sink" >/dev/null

# rss_within NAME JSON: the attack's RSS rise is under the bound.
rss_within() {
  local rise=$(($(pyget "$2" 'd["rss_max_kib"]') - $(pyget "$2" 'd["rss_before_kib"]')))
  if [ "$rise" -le "$BOUND_KIB" ]; then ok "$1: RSS rose ${rise} KiB, under the bound of ${BOUND_KIB} KiB"
  else fail "$1: RSS stays under the bound" "rose ${rise} KiB, bound ${BOUND_KIB} KiB"; fi
}

# --- 12 bundles of 16,000,000 bytes to the admin API without a token.
out=$("${RAW[@]}" bodies "$URL" --conns 12 --size 16000000 --path /_tine/v1/apps/sink --pid "$PID" --hold 1.5 \
  --probe /sink/hi)
rss_within "admin bodies without a token" "$out"
check "admin bodies without a token: all 401" "{'401': 12}" "$(pyget "$out" 'd["statuses"]')"
check_contains "admin bodies without a token: 401 is JSON" '{"error":"missing or wrong admin token' \
  "$(pyget "$out" 'd["bodies"].get("401")')"
check "admin bodies without a token: a normal request is served meanwhile" "200" \
  "$(pyget "$out" 'd["probe"]["status"]')"
out=$(curl -s "${H1[@]}" -w ' %{http_code}' -X PUT --data-binary @<(head -c 20000000 /dev/zero) "$URL/_tine/v1/apps/sink")
check_contains "admin: a bundle over 16 MiB with curl's Expect gets 401 before it is sent" "admin token" "$out"

# --- 40 bodies of 6,000,000 bytes to a function, all in flight at once.
out=$("${RAW[@]}" bodies "$URL" --conns 40 --size 6000000 --path /sink/take --pid "$PID" --hold 1.5 --probe /sink/hi)
rss_within "function bodies" "$out"
check "function bodies: two fit the 16 MiB budget, 38 get 503" "{'200': 2, '503': 38}" \
  "$(pyget "$out" 'dict(sorted(d["statuses"].items()))')"
check "function bodies: the admitted ones arrive whole" "took 6000000" "$(pyget "$out" 'd["bodies"].get("200")')"
check_contains "function bodies: 503 is JSON naming the budget" '{"error":"this node holds 12000000 bytes of request bodies' \
  "$(pyget "$out" 'd["bodies"].get("503")')"
check_contains "function bodies: 503 names its flag" "(--max-buffered-body): retry later" \
  "$(pyget "$out" 'd["bodies"].get("503")')"
check "function bodies: 503 says when to retry" "1" "$(pyget "$out" 'd["headers"].get("503", {}).get("retry-after")')"
check "function bodies: a normal request is served meanwhile" "200 hi" \
  "$(pyget "$out" '"%s %s" % (d["probe"]["status"], d["probe"]["body"])')"
metrics=$(curl -s "$URL/metrics")
check "metrics: the 38 refusals are counted" 'tine_http_refused_total{reason="body_budget"} 38' \
  "$(grep 'reason="body_budget"' <<<"$metrics")"
check "metrics: no body is held any more" "tine_http_body_bytes 0" "$(grep '^tine_http_body_bytes' <<<"$metrics")"
check "function bodies: the budget is given back" "200" "$(curl -s "${H1[@]}" -o /dev/null -w '%{http_code}' \
  --data-binary @<(head -c 6000000 /dev/zero) "$URL/sink/take")"

# --- Clients that reset their connection in the middle of a body tine reads
# itself (and of one h2o reads) give the connection back: the answer to a
# gone client was a write libuv refused and h2o waited for forever.
open_conns() { curl -s "$URL/metrics" | awk '/^tine_http_connections / {print $2}'; }
conns_back() { [ "$(open_conns)" = "$base" ]; }
base=$(open_conns)
"${RAW[@]}" abort "$URL" --path /sink/take --size 1000000 --sent 200000 --count 5
"${RAW[@]}" abort "$URL" --path /sink/take --size 60000 --sent 30000 --count 5
wait_for 5 conns_back || true
check "10 uploads reset mid-body: their connections are closed" "$base" "$(open_conns)"
check "10 uploads reset mid-body: the node serves" "200 hi" "$(http GET /sink/hi)"

# --- HTTP/2 (prior knowledge): 40 streams with 6,000,000-byte bodies on one connection.
head -c 6000000 /dev/zero >"$T/6m"
peak="$T/peak"
before=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
(m=0; for _ in $(seq 80); do r=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status"); [ "$r" -gt "$m" ] && m=$r; sleep 0.025; done
 echo "$m" >"$peak") &
sampler=$!
h2=$(nghttp -v -m 40 -d "$T/6m" "$URL/sink/take" 2>&1 || true)
# (nghttp cannot be given the test's CA: its warning is not the answer.)
h2probe=$(nghttp "$URL/sink/hi" 2>&1 | grep -v '^\[WARNING\] Certificate verification failed' || true)
wait "$sampler"
rise=$(($(cat "$peak") - before))
if [ "$rise" -le "$BOUND_KIB" ]; then ok "HTTP/2 streams: RSS rose ${rise} KiB, under the bound of ${BOUND_KIB} KiB"
else fail "HTTP/2 streams: RSS stays under the bound" "rose ${rise} KiB, bound ${BOUND_KIB} KiB"; fi
check "HTTP/2 streams: every body over 64 KiB is refused (REFUSED_STREAM)" "40" \
  "$(grep -c 'error_code=REFUSED_STREAM' <<<"$h2" || true)"
check "HTTP/2: a normal request is served" "hi" "$h2probe"

# --- max_body from the manifest, under and over, inline and read by tine.
mkdir -p "$T/lim"
cat >"$T/lim/tine.yaml" <<'YAML'
app: lim
defaults: { max_body: 100Ki }
functions:
  small: { handler: l.lua#len, max_body: 1Ki }
  mid: { handler: l.lua#len }
routes:
  - { method: POST, path: /small, function: small }
  - { method: POST, path: /mid, function: mid }
YAML
echo 'return { len = function(req) return "len " .. #(req.body or "") end }' >"$T/lim/l.lua"
tine deploy "$T/lim" >/dev/null
check "max_body 1Ki: 1024 bytes pass" "200 len 1024" "$(http POST /lim/small "${H1[@]}" --data-binary @<(head -c 1024 /dev/zero))"
check "max_body 1Ki: 1025 bytes get 413 naming the limit" \
  '413 {"error":"request body of 1025 bytes is over the limit of 1024 bytes (max_body of small)"}' \
  "$(http POST /lim/small "${H1[@]}" --data-binary @<(head -c 1025 /dev/zero))"
check "max_body 100Ki from defaults: 102400 bytes pass" "200 len 102400" \
  "$(http POST /lim/mid "${H1[@]}" --data-binary @<(head -c 102400 /dev/zero))"
check "max_body 100Ki from defaults: 102401 bytes get 413 naming the limit" \
  '413 {"error":"request body of 102401 bytes is over the limit of 102400 bytes (max_body of mid)"}' \
  "$(http POST /lim/mid "${H1[@]}" --data-binary @<(head -c 102401 /dev/zero))"
# Without Expect: the refused body is read and dropped, the answer comes, the connection goes on.
out=$("${RAW[@]}" exchange "$URL" \
  "POST /lim/mid HTTP/1.1\r\nHost: x\r\nContent-Length: 110000\r\n\r\n$(head -c 110000 /dev/zero | tr '\0' a)" \
  'GET /sink/hi HTTP/1.1\r\nHost: x\r\n\r\n')
check "max_body over, no Expect: 413 then the next request on the connection" "413 200 hi" \
  "$(pyget "$out" '"%s %s %s" % (d[0]["status"], d[1]["status"], d[1]["body"])')"

for bad in "7Mi:'7Mi' is over 6Mi, the largest body a function can receive" \
  "6MB:expected bytes as an integer 0..6291456 or a size such as 512Ki or 6Mi, got '6MB'" \
  "-5:-5 is out of range 0..6291456"; do
  mkdir -p "$T/bad"
  printf 'app: bad\nfunctions:\n  f: { handler: f.lua#f, max_body: %s }\n' "${bad%%:*}" >"$T/bad/tine.yaml"
  echo 'return { f = function() return "" end }' >"$T/bad/f.lua"
  out=$(tine deploy "$T/bad" 2>&1 || true)
  check_contains "max_body ${bad%%:*} is refused at deploy with its position" \
    "tine.yaml:3:36: functions.f.max_body: ${bad#*:}" "$out"
done

# --- HTTP/2 is off unless asked; --max-connections.
start_node plain --redis "$REDIS_URL" --max-connections 8
check_contains "HTTP/2 is off by default: nghttp gets no answer" "processed=0" "$(nghttp "$URL/sink/hi" 2>&1 || true)"
check "HTTP/1.1 is served there" "200 hi" "$(http GET /sink/hi)"
out=$("${RAW[@]}" connections "$URL" --count 8 --probe /sink/hi)
if [ ${#NODE_TLS[@]} -eq 0 ]; then
  check "connection 9 of 8: 503 JSON, then closed" \
    "503 {\"error\":\"this node has 8 client connections open, its limit (--max-connections)\"} True" \
    "$(pyget "$out" '"%s %s %s" % (d["over_limit"]["status"], d["over_limit"]["body"], d["over_limit"]["closed"])')"
else
  check "connection 9 of 8: closed in its TLS handshake (an answer would need one)" "0 True" \
    "$(pyget "$out" '"%s %s" % (d["over_limit"]["status"], d["over_limit"]["closed"])')"
fi
check "served again once connections closed" "200 hi" \
  "$(pyget "$out" '"%s %s" % (d["after"]["status"], d["after"]["body"])')"
check "metrics: the refused connection is counted" 'tine_http_refused_total{reason="connections"} 1' \
  "$(curl -s "$URL/metrics" | grep 'reason="connections"')"
finish_security
