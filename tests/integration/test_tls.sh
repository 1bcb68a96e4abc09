#!/usr/bin/env bash
# HTTPS (issue 19): certificates made here by openssl (a CA, server
# certificates for 127.0.0.1 with subjectAltName IP:127.0.0.1); HTTP/2 by
# ALPN with curl and nghttp, HTTP/1.1 over TLS, the CLI verifying the node
# (--cacert, TINE_CACERT; refused without), reload on SIGHUP while
# connections stay open, a bad certificate at reload, bad input at start.
. "$(dirname "$0")/lib.sh"
RAW=(python3 "$SRC/tests/security/http_raw.py")
start_redis
serve_tls # $T/tls/server.pem and .key; curl and the CLI trust $T/tls/ca.pem
CA=$T/tls/ca.pem
make_cert "$T/tls" other
make_cert "$T/tls" next
cp "$T/tls/server.pem" "$T/tls/first.pem"
cp "$T/tls/server.key" "$T/tls/first.key"

# fingerprint PEM: the SHA-256 fingerprint of a certificate file.
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
# served PORT: the SHA-256 fingerprint of the certificate a new connection gets.
served() {
  openssl s_client -connect "127.0.0.1:$1" -CAfile "$CA" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
# cli ARGS...: the CLI without TINE_CACERT (each check says how it trusts).
cli() { env -u TINE_CACERT "$BIN/tine" --url "$URL" --token "$TOKEN" "$@"; }

# --- Bad input at start: a clear error naming the file, exit 1, before the
# node starts anything (no token generated, no redis-server).
bad_start() { # bad_start NAME EXIT MESSAGE CERT KEY
  local st
  st=$(tined_status "$1" --redis "$REDIS_URL" --tls-cert "$4" --tls-key "$5")
  check "bad input at start, $1: exit status $2" "$2" "$st"
  check_contains "bad input at start, $1: the message" "$3" "$(cat "$T/$1.log")"
  check "bad input at start, $1: nothing started (no token made)" "no" \
    "$([ -e "$T/$1/admin.token" ] && echo yes || echo no)"
}
bad_start mismatch 1 "--tls-key $T/tls/other.key does not match the certificate of --tls-cert $T/tls/server.pem" \
  "$T/tls/server.pem" "$T/tls/other.key"
bad_start missing 1 "--tls-cert $T/tls/nope.pem: cannot read it: No such file or directory" \
  "$T/tls/nope.pem" "$T/tls/server.key"
bad_start directory 1 "--tls-key $T/tls: not a regular file" "$T/tls/server.pem" "$T/tls"
echo "not a certificate" >"$T/tls/garbage.pem"
bad_start garbage 1 "--tls-cert $T/tls/garbage.pem: no PEM certificate in it" "$T/tls/garbage.pem" "$T/tls/server.key"
bad_start key-as-cert 1 "--tls-cert $T/tls/server.key: no PEM certificate in it" \
  "$T/tls/server.key" "$T/tls/server.key"
openssl pkey -in "$T/tls/server.key" -aes256 -passout pass:secret -out "$T/tls/encrypted.key" 2>/dev/null
bad_start encrypted-key 1 "--tls-key $T/tls/encrypted.key: the key is encrypted: give it without a passphrase" \
  "$T/tls/server.pem" "$T/tls/encrypted.key"
# The same options from the environment and from a config file.
st=$(TINE_TLS_CERT=$T/tls/server.pem TINE_TLS_KEY=$T/tls/other.key tined_status env --redis "$REDIS_URL")
check "TINE_TLS_CERT and TINE_TLS_KEY: read, and checked at start" "1 yes" \
  "$st $(grep -q "does not match the certificate of --tls-cert $T/tls/server.pem" "$T/env.log" && echo yes)"
printf 'tls-cert = %s\ntls-key = %s\n' "$T/tls/server.pem" "$T/tls/encrypted.key" >"$T/tined.conf"
st=$(tined_status conf --redis "$REDIS_URL" --config "$T/tined.conf")
check "tls-cert and tls-key in a config file: read, and checked at start" "1 yes" \
  "$st $(grep -q "the key is encrypted" "$T/conf.log" && echo yes)"
st=$(tined_status half --redis "$REDIS_URL" --tls-cert "$T/tls/server.pem")
check "--tls-cert without --tls-key: usage error (exit 2)" "2" "$st"
check_contains "--tls-cert without --tls-key: the message" \
  "--tls-cert needs --tls-key: HTTPS takes a certificate and its private key" "$(cat "$T/half.log")"

# --- A node serving HTTPS, HTTP/2 allowed.
start_node n --redis "$REDIS_URL" --http2 on
PORT=${URL##*:}
check "the node's URL is https" "https://127.0.0.1:$PORT" "$URL"
check_contains "its log says it serves https" "serving on https://127.0.0.1:0 (port $PORT" "$(cat "$T/n.log")"
check_contains "its log names the certificate served" "TLS: serving the certificate of $T/tls/server.pem" \
  "$(cat "$T/n.log")"
mkdir -p "$T/web"
cat >"$T/web/tine.yaml" <<'YAML'
app: web
functions:
  hi: { handler: w.lua#hi }
  len: { handler: w.lua#len }
  slow: { handler: w.lua#slow, timeout: 10s }
routes:
  - { method: GET, path: /hi, function: hi }
  - { method: POST, path: /len, function: len }
  - { method: GET, path: /slow, function: slow }
YAML
cat >"$T/web/w.lua" <<'LUA'
local tine = require "tine"
return {
  hi = function() tine.log("said hi"); return "hi" end,
  len = function(req) return "len " .. #(req.body or "") end,
  slow = function() local t = os.clock(); while os.clock() - t < 2 do end; return "slow" end,
}
LUA
# Over 64 KiB of bundle: the CLI must not send it over HTTP/2 (refused there).
head -c 300000 /dev/urandom | base64 >"$T/web/blob.txt"

# --- The CLI verifies the node's certificate.
out=$(cli apps 2>&1 || true)
check_contains "CLI without --cacert: refused, the certificate does not verify" \
  "tine: the certificate of $URL does not verify: SSL certificate problem: unable to get local issuer certificate" "$out"
check_contains "CLI without --cacert: the message says how to trust the node" \
  "(give the CA of the node's certificate with --cacert FILE or TINE_CACERT)" "$out"
check "CLI without --cacert: exit status 1" "1" "$(cli apps >/dev/null 2>&1; echo $?)"
out=$(cli --cacert "$T/tls/nope.pem" apps 2>&1 || true)
check_contains "CLI with a CA file that is not there: says so" "tine: cannot use the CA file $T/tls/nope.pem" "$out"
out=$(cli --cacert "$T/tls/other.pem" apps 2>&1 || true)
check_contains "CLI trusting another certificate than the CA: refused" "does not verify" "$out"
out=$(env -u TINE_CACERT "$BIN/tine" --url "http://127.0.0.1:$PORT" --token "$TOKEN" apps 2>&1 || true)
check_contains "CLI speaking http to the https node: says to use https" \
  "(if the node serves HTTPS, use https://)" "$out"
check "CLI --cacert: tine deploy of a bundle over 64 KiB" "deployed web version 1" \
  "$(run cli --cacert "$CA" deploy "$T/web" 2>&1 | head -n 1)"
check_contains "CLI --cacert: tine apps" "web " "$(run cli --cacert "$CA" apps)"
check_contains "CLI --cacert: tine routes" "/len" "$(run cli --cacert "$CA" routes web)"
check_contains "CLI TINE_CACERT: tine invoke" '"body":"hi"' \
  "$(run env TINE_CACERT="$CA" "$BIN/tine" --url "$URL" --token "$TOKEN" invoke web hi --json)"
wait_for 10 sh -c "env -u TINE_CACERT '$BIN/tine' --url '$URL' --token '$TOKEN' --cacert '$CA' logs web | grep -q 'said hi'" || true
check_contains "CLI --cacert: tine logs" "said hi" "$(run cli --cacert "$CA" logs web)"
check_contains "CLI --cacert: tine activations" "hi" "$(run cli --cacert "$CA" activations web)"
check_contains "CLI --cacert: tine ps" "web" "$(run cli --cacert "$CA" ps)"
doctor=$(run cli --cacert "$CA" doctor)
check_contains "tine doctor: TLS on, with the ALPN offered" "tls: on, TLSv1.2 at least, ALPN h2, http/1.1" "$doctor"
check_contains "tine doctor: the certificate's fingerprint" "sha256       $(fingerprint "$T/tls/first.pem")" "$doctor"
check_contains "tine doctor: the certificate's names" "names        IP:127.0.0.1" "$doctor"

# --- HTTPS + HTTP/2 (ALPN) and HTTP/1.1 over TLS.
check "curl --http2: negotiates h2" "2 200 hi" \
  "$(curl -s --http2 -o "$T/body" -w '%{http_version} %{http_code}' "$URL/web/hi") $(cat "$T/body")"
check "curl --http1.1 over TLS: HTTP/1.1" "1.1 200 hi" \
  "$(curl -s --http1.1 -o "$T/body" -w '%{http_version} %{http_code}' "$URL/web/hi") $(cat "$T/body")"
check_contains "nghttp: ALPN selects h2" "The negotiated protocol: h2" "$(nghttp -v "$URL/web/hi" 2>&1 || true)"
check "nghttp: the function answers over HTTP/2" "hi" "$(nghttp "$URL/web/hi" 2>/dev/null || true)"
check_contains "openssl s_client -alpn http/1.1: ALPN http/1.1" "ALPN protocol: http/1.1" \
  "$(openssl s_client -connect "127.0.0.1:$PORT" -alpn http/1.1 </dev/null 2>/dev/null || true)"
check_contains "TLS 1.2 is served" "Protocol  : TLSv1.2" \
  "$(openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 </dev/null 2>/dev/null || true)"
check_contains "TLS 1.1 is refused" "no peer certificate available" \
  "$(openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' </dev/null 2>&1 || true)"
check "curl without the CA: refused (60: the certificate does not verify)" "60" \
  "$(env -u CURL_CA_BUNDLE curl -s -o /dev/null "$URL/web/hi"; echo $?)"
check "HTTP/2: a body of 64 KiB reaches the function" "200 len 65536" \
  "$(http POST /web/len --http2 --data-binary @<(head -c 65536 /dev/zero))"
check "HTTP/2: a body over 64 KiB is refused (h2o 2.2.5 resets the stream; curl gives up after retries)" "56" \
  "$(curl -s --http2 -o /dev/null --data-binary @<(head -c 100000 /dev/zero) "$URL/web/len"; echo $?)"
check "HTTP/1.1 over TLS: a body of 5 MB reaches the function (read by tine)" "200 len 5000000" \
  "$(http POST /web/len --http1.1 --data-binary @<(head -c 5000000 /dev/zero))"
# One TLS record of exactly 8192 bytes, then the rest of the body: h2o 2.2.5
# took the empty read that follows a full buffer for an error and closed.
for size in 20000 200000; do
  out=$("${RAW[@]}" split "$URL" --path /web/len --size "$size" --first 8170)
  check "a request whose first TLS record fills the read buffer ($size bytes): answered" "200 len $size" \
    "$(pyget "$out" '"%s %s" % (d["status"], d["body"])')"
done
metrics=$(curl -s "$URL/metrics")
check "metrics: the certificate's expiry" \
  "tine_tls_certificate_expiry_timestamp_seconds $(date -d "$(openssl x509 -in "$T/tls/first.pem" -noout -enddate | cut -d= -f2)" +%s)" \
  "$(grep '^tine_tls_certificate_expiry_timestamp_seconds' <<<"$metrics")"

# --- Clients that close abruptly give their connection back (a TLS 1.3
# client closing with the session tickets unread resets the connection).
base=$(curl -s "$URL/metrics" | grep '^tine_http_connections ' | cut -d' ' -f2)
python3 - "$PORT" "$CA" <<'PY'
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
for _ in range(20):
    ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), server_hostname="127.0.0.1").close()
PY
sleep 0.5
check "20 TLS connections reset by their clients: none left open" "$base" \
  "$(curl -s "$URL/metrics" | grep '^tine_http_connections ' | cut -d' ' -f2)"

# --- Reload on SIGHUP: new connections get the new certificate; an
# established HTTP/1.1 keep-alive connection, an HTTP/2 connection with a
# request in flight, and a connection accepted before the reload whose
# handshake comes after it keep the old one and keep working.
OLD=$(fingerprint "$T/tls/first.pem")
NEW=$(fingerprint "$T/tls/next.pem")
check "before the reload: new connections get the first certificate" "$OLD" "$(served "$PORT")"
"${RAW[@]}" reload "$URL" --path /web/hi --ready "$T/ready" --go "$T/go" >"$T/reload.json" &
probe=$!
curl -s --http2 -w '\n%{num_connects} %{http_version} %{http_code} %{certs}\n' \
  "$URL/web/slow" "$URL/web/hi" >"$T/h2.out" 2>&1 &
h2=$!
wait_for 20 test -e "$T/ready" || fail "reload: the probe connected" "$(cat "$T/reload.json")"
sleep 0.5 # the HTTP/2 request is in flight (the function runs 2 s)
cp "$T/tls/next.pem" "$T/tls/server.pem"
cp "$T/tls/next.key" "$T/tls/server.key"
kill -HUP "$NODE_PID"
wait_for 10 grep -q "TLS: reloaded" "$T/n.log" || fail "reload: logged within 10 s" "$(tail -n 3 "$T/n.log")"
touch "$T/go"
wait "$probe" || true
wait "$h2" || true
check_contains "reload: logged, with the new certificate's fingerprint" "sha256 $NEW" \
  "$(grep 'TLS: reloaded' "$T/n.log")"
check "reload: new connections get the new certificate" "$NEW" "$(served "$PORT")"
r=$(cat "$T/reload.json")
check "reload: the keep-alive connection had the first certificate" "200 $OLD" \
  "$(pyget "$r" '"%s %s" % (d["before"]["status"], d["before"]["sha256"])')"
check "reload: the keep-alive connection keeps working, with its certificate" "200 $OLD" \
  "$(pyget "$r" '"%s %s" % (d["kept"]["status"], d["kept"]["sha256"])')"
check "reload: a connection accepted before it, handshake after: the first certificate" "200 $OLD" \
  "$(pyget "$r" '"%s %s" % (d["late"]["status"], d["late"]["sha256"])')"
check "reload: a new connection of the same client: the new certificate" "200 $NEW" \
  "$(pyget "$r" '"%s %s" % (d["new"]["status"], d["new"]["sha256"])')"
check "reload: the HTTP/2 request in flight is answered" "1 2 200" \
  "$(grep -m1 -o '^1 2 200' "$T/h2.out" || cat "$T/h2.out")"
check "reload: it came over the first certificate" \
  "$(openssl x509 -in "$T/tls/first.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')" \
  "$(grep -m1 '^Serial Number:' "$T/h2.out" | cut -d: -f2)"
check "reload: the next request on the same HTTP/2 connection is served (no new connection)" "0 2 200" \
  "$(grep -o '^0 2 200' "$T/h2.out" || cat "$T/h2.out")"
check "reload: the bodies of both" "slow hi" "$(grep -o '^slow\|^hi' "$T/h2.out" | paste -sd ' ')"

# --- A bad certificate at reload: logged, the previous one keeps serving.
reloads() { grep -c "TLS: reload" "$T/n.log" || true; }
reloads_above() { [ "$(reloads)" -gt "$1" ]; }
bad_reload() { # bad_reload NAME MESSAGE
  local n
  n=$(reloads)
  kill -HUP "$NODE_PID"
  wait_for 10 reloads_above "$n" || fail "bad reload, $1: logged within 10 s" "$(tail -n 3 "$T/n.log")"
  check_contains "bad reload, $1: logged" \
    "TLS: reload failed, still serving the previous certificate (serial $(openssl x509 -in "$T/tls/next.pem" -noout -serial | cut -d= -f2)): $2" \
    "$(grep 'TLS: reload' "$T/n.log" | tail -n 1)"
  check "bad reload, $1: new connections still get the certificate before it" "$NEW" "$(served "$PORT")"
  check "bad reload, $1: served" "200 hi" "$(http GET /web/hi)"
}
echo "garbage" >"$T/tls/server.pem"
bad_reload garbage "--tls-cert $T/tls/server.pem: no PEM certificate in it"
cp "$T/tls/next.pem" "$T/tls/server.pem"
cp "$T/tls/other.key" "$T/tls/server.key"
bad_reload "key of another certificate" \
  "--tls-key $T/tls/server.key does not match the certificate of --tls-cert $T/tls/server.pem"
rm "$T/tls/server.key"
bad_reload "key file gone" "--tls-key $T/tls/server.key: cannot read it: No such file or directory"
doc=$(admin GET /doctor | cut -d' ' -f2-)
check "doctor: one reload, three failed, the last reason" \
  "1 3 --tls-key $T/tls/server.key: cannot read it: No such file or directory" \
  "$(pyget "$doc" '"%s %s %s" % (d["tls"]["reloads"], d["tls"]["failed_reloads"], d["tls"]["reload_error"])')"
check "metrics: the reloads by outcome" 'tine_tls_reloads_total{result="ok"} 1 tine_tls_reloads_total{result="failed"} 3' \
  "$(curl -s "$URL/metrics" | grep '^tine_tls_reloads_total' | paste -sd ' ')"
cp "$T/tls/first.key" "$T/tls/server.key"
cp "$T/tls/first.pem" "$T/tls/server.pem"
n=$(reloads)
kill -HUP "$NODE_PID"
wait_for 10 reloads_above "$n" || fail "a good certificate again: logged within 10 s" "$(tail -n 3 "$T/n.log")"
check "a good certificate again: served" "$OLD" "$(served "$PORT")"
check "the node kept serving through it all" "200 hi" "$(http GET /web/hi)"

# --- A connection accepted before a reload, its handshake after it, and no
# other connection left holding the certificate it was accepted with: that
# certificate must still be there for it (under ASan a freed one would be
# caught).
rm -f "$T/ready" "$T/go"
"${RAW[@]}" reload "$URL" --path /web/hi --ready "$T/ready" --go "$T/go" --late-only >"$T/late.json" &
probe=$!
wait_for 20 test -e "$T/ready" || fail "late handshake: the probe connected" "$(cat "$T/late.json")"
cp "$T/tls/next.pem" "$T/tls/server.pem"
cp "$T/tls/next.key" "$T/tls/server.key"
n=$(reloads)
kill -HUP "$NODE_PID"
wait_for 10 reloads_above "$n" || fail "late handshake: the reload logged within 10 s" "$(tail -n 3 "$T/n.log")"
touch "$T/go"
wait "$probe" || true
r=$(cat "$T/late.json")
check "late handshake: served, with the certificate of its accept" "200 $OLD" \
  "$(pyget "$r" '"%s %s" % (d["late"]["status"], d["late"]["sha256"])')"
check "late handshake: a new connection gets the new certificate" "200 $NEW" \
  "$(pyget "$r" '"%s %s" % (d["new"]["status"], d["new"]["sha256"])')"

# --- HTTP/2 is not offered by ALPN with --http2 off (the default).
start_node h1 --redis "$REDIS_URL"
check "--http2 off: curl --http2 gets HTTP/1.1" "1.1 200" \
  "$(curl -s --http2 -o /dev/null -w '%{http_version} %{http_code}' "$URL/web/hi")"
check_contains "--http2 off: no h2 by ALPN" "No ALPN negotiated" \
  "$(openssl s_client -connect "127.0.0.1:${URL##*:}" -alpn h2 </dev/null 2>/dev/null || true)"
check_contains "--http2 off: tine doctor shows only http/1.1" "ALPN http/1.1" \
  "$(run env TINE_CACERT="$CA" "$BIN/tine" --url "$URL" --token "$TOKEN" doctor)"
finish
