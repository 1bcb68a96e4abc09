#!/usr/bin/env bash
# Several certificates (--tls-cert/--tls-key in pairs, docs/releases.md "Own
# hosts" and README "HTTPS"): each client gets the certificate whose DNS
# names (subjectAltName, a wildcard covering one label; the CN when there is
# no subjectAltName) match its SNI name, else the first. HTTP/2 still
# negotiated on each; an app's own host served with its own certificate;
# SIGHUP swaps the whole set, a bad file keeps the old set; bad pairs
# refused at start naming the file; pairs from a config file.
. "$(dirname "$0")/lib.sh"
start_redis
D=$T/sni
make_cert "$D" default # SAN IP:127.0.0.1, the CA in $D/ca.pem
export CURL_CA_BUNDLE=$D/ca.pem TINE_CACERT=$D/ca.pem
# cert NAME SUBJECT_CN [SAN]: a certificate of the test CA (no SAN: CN only).
cert() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$D/$1.key" -out "$D/$1.csr" 2>/dev/null
  if [ -n "${3:-}" ]; then
    openssl x509 -req -in "$D/$1.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
      -extfile <(printf 'subjectAltName=%s\n' "$3") -out "$D/$1.pem" 2>/dev/null
  else
    openssl x509 -req -in "$D/$1.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
      -out "$D/$1.pem" 2>/dev/null
  fi
}
cert shop shop.example.test "DNS:shop.example.test"
cert blog blog.example.test "DNS:blog.example.test,DNS:www.blog.example.test"
cert wild "apps" "DNS:*.apps.example.test"
cert cnonly cn.example.test
fingerprint() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
# served NAME: the fingerprint of the certificate a connection asking for
# NAME by SNI gets ("-": no SNI at all).
served() {
  local sni=(-servername "$1")
  [ "$1" != - ] || sni=(-noservername)
  openssl s_client -connect "127.0.0.1:$PORT" "${sni[@]}" </dev/null 2>/dev/null |
    openssl x509 -noout -fingerprint -sha256 | cut -d= -f2
}
PAIRS=()
for n in default shop blog wild cnonly; do PAIRS+=(--tls-cert "$D/$n.pem" --tls-key "$D/$n.key"); done

# --- Bad pairs at start: refused, naming the file; nothing started.
cp "$D/blog.pem" "$D/blog-copy.pem"
st=$(tined_status mismatch --redis "$REDIS_URL" --tls-cert "$D/default.pem" --tls-key "$D/default.key" \
  --tls-cert "$D/blog-copy.pem" --tls-key "$D/shop.key")
check "a second key that is not its certificate's: exit 1" "1" "$st"
check_contains "... naming both files" "--tls-key $D/shop.key does not match the certificate of --tls-cert $D/blog-copy.pem" \
  "$(cat "$T/mismatch.log")"
check "... nothing started (no token made)" "no" "$([ -e "$T/mismatch/admin.token" ] && echo yes || echo no)"
st=$(tined_status odd --redis "$REDIS_URL" --tls-cert "$D/default.pem" --tls-key "$D/default.key" \
  --tls-cert "$D/shop.pem")
check "two --tls-cert, one --tls-key: usage error (exit 2)" "2" "$st"
check_contains "... the message" "--tls-cert given 2 times but --tls-key 1: give them in pairs" "$(cat "$T/odd.log")"
printf 'tls-cert = %s\ntls-key = %s\ntls-cert = %s\ntls-key = %s\n' "$D/default.pem" "$D/default.key" \
  "$D/blog-copy.pem" "$D/wild.key" >"$T/pairs.conf"
st=$(tined_status conf --redis "$REDIS_URL" --config "$T/pairs.conf")
check "pairs in a config file: both read (the second checked)" "1 yes" \
  "$st $(grep -q "does not match the certificate of --tls-cert $D/blog-copy.pem" "$T/conf.log" && echo yes)"

# --- A node with five certificates.
NODE_TLS=("${PAIRS[@]}")
start_node n --redis "$REDIS_URL" --http2 on
PORT=$(cat "$T/n/port")
check_contains "every certificate logged at start" "5" \
  "$(grep -c 'TLS: serving the certificate of' "$T/n.log")"
for pair in shop.example.test:shop blog.example.test:blog www.blog.example.test:blog SHOP.Example.TEST:shop \
  x.apps.example.test:wild cn.example.test:cnonly unknown.example.test:default deep.x.apps.example.test:default \
  apps.example.test:default -:default; do
  check "SNI ${pair%%:*}: the certificate of ${pair##*:}" "$(fingerprint "$D/${pair##*:}.pem")" "$(served "${pair%%:*}")"
done

# curl checks the name against the certificate it gets: it verifies only
# when the node picked the right one.
make_app "$T/shop" shop shop
printf 'host: shop.example.test\n' >>"$T/shop/tine.yaml"
check "the app owning shop.example.test deployed" "deployed shop version 1" "$(run tine deploy "$T/shop")"
for name in shop.example.test www.blog.example.test a.apps.example.test cn.example.test; do
  check "curl --resolve $name: the certificate verifies, HTTP/2" "2 0" \
    "$(curl -s --http2 -o /dev/null -w '%{http_version}' --resolve "$name:$PORT:127.0.0.1" \
      "https://$name:$PORT/_tine/v1/ready"; echo " $?")"
done
check "the app's own host, over its own certificate and HTTP/2" "2 200 shop 1" \
  "$(curl -s --http2 -o "$T/body" -w '%{http_version} %{http_code}' --resolve "shop.example.test:$PORT:127.0.0.1" \
    "https://shop.example.test:$PORT/who") $(cat "$T/body")"
check "an unknown name gets the default certificate (curl refuses it: 60)" "60" \
  "$(curl -s -o /dev/null --resolve "nope.example.test:$PORT:127.0.0.1" "https://nope.example.test:$PORT/"; echo $?)"
check "the address gets the default certificate (verified)" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/_tine/v1/ready")"
doctor=$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/_tine/v1/doctor")
check "the admin report lists every certificate and its SNI names" \
  "5 ['shop.example.test'] ['*.apps.example.test'] ['cn.example.test']" \
  "$(pyget "$doctor" '(lambda c: "%d %s %s %s" % (len(c), c[1]["sni_names"], c[3]["sni_names"], c[4]["sni_names"]))(d["tls"]["certificates"])')"

# --- SIGHUP swaps the whole set.
cert shop2 shop.example.test "DNS:shop.example.test"
cert wild2 "apps" "DNS:*.apps.example.test"
cp "$D/shop2.pem" "$D/shop.pem"
cp "$D/shop2.key" "$D/shop.key"
cp "$D/wild2.pem" "$D/wild.pem"
cp "$D/wild2.key" "$D/wild.key"
kill -HUP "$NODE_PID"
wait_for 10 grep -q "TLS: reloaded" "$T/n.log" || fail "reload logged within 10 s" "$(tail -n 3 "$T/n.log")"
check "reload: shop.example.test gets the new certificate" "$(fingerprint "$D/shop2.pem")" "$(served shop.example.test)"
check "reload: *.apps.example.test too" "$(fingerprint "$D/wild2.pem")" "$(served z.apps.example.test)"
check "reload: blog.example.test keeps its (unchanged) one" "$(fingerprint "$D/blog.pem")" "$(served blog.example.test)"
check "reload: HTTP/2 on the new one" "2 200" \
  "$(curl -s --http2 -o /dev/null -w '%{http_version} %{http_code}' --resolve "shop.example.test:$PORT:127.0.0.1" \
    "https://shop.example.test:$PORT/who")"
# A bad file in the set: the whole old set keeps serving, the log says why.
cert shop3 shop.example.test "DNS:shop.example.test"
cp "$D/shop3.pem" "$D/shop.pem" # its key stays shop2's: they do not match
failed_reloads() { grep -c "TLS: reload failed" "$T/n.log" || true; }
failed_above() { [ "$(failed_reloads)" -gt "$1" ]; }
before=$(failed_reloads)
kill -HUP "$NODE_PID"
wait_for 10 failed_above "$before" ||
  fail "bad reload logged within 10 s" "$(tail -n 3 "$T/n.log")"
check_contains "bad reload: the log names the file" "--tls-key $D/shop.key does not match the certificate of --tls-cert $D/shop.pem" \
  "$(grep 'TLS: reload failed' "$T/n.log" | tail -n 1)"
check "bad reload: shop.example.test keeps the previous certificate" "$(fingerprint "$D/shop2.pem")" \
  "$(served shop.example.test)"
check "bad reload: the others too" "$(fingerprint "$D/wild2.pem")" "$(served q.apps.example.test)"
check "bad reload: still serving" "200" \
  "$(curl -s -o /dev/null -w '%{http_code}' --resolve "shop.example.test:$PORT:127.0.0.1" "https://shop.example.test:$PORT/who")"
finish
