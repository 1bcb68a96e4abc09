#!/usr/bin/env bash
# rediss://: tined reaches a redis-server that speaks only TLS, verifying
# its certificate against the CA file of the URL (?cacert=): deploy,
# invoke, tine.kv and events work, and keep working after the server
# restarts; a certificate that does not verify (another CA, another name)
# stops tined at start with a clear message; a client certificate is
# presented when the server asks for one (&cert=&key=).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"
command -v openssl >/dev/null || { echo "openssl is missing"; exit 1; }

# A CA, a server certificate for 127.0.0.1 and localhost, a client
# certificate, and an unrelated CA.
ssl() { openssl "$@" 2>>"$T/openssl.log"; }
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tine test CA" -keyout "$T/ca.key" -out "$T/ca.crt"
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout "$T/other.key" -out "$T/other.crt"
ssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$T/srv.key" -out "$T/srv.csr"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$T/srv.ext"
ssl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 -extfile "$T/srv.ext" \
  -out "$T/srv.crt"
ssl req -newkey rsa:2048 -nodes -subj "/CN=tined" -keyout "$T/cli.key" -out "$T/cli.csr"
ssl x509 -req -in "$T/cli.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 -out "$T/cli.crt"

TPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PW=tls-pw
tls_up() { # tls_up yes|no: whether clients must show a certificate
  redis-server --port 0 --tls-port "$TPORT" --bind 127.0.0.1 --tls-cert-file "$T/srv.crt" \
    --tls-key-file "$T/srv.key" --tls-ca-cert-file "$T/ca.crt" --tls-auth-clients "$1" --requirepass "$PW" \
    --save "" --appendonly yes --appendfsync always --dir "$T" --daemonize no --logfile "$T/redis.log" &
  REDIS_PID=$!
  PIDS+=($REDIS_PID)
  wait_for 10 redis-cli --tls --cacert "$T/ca.crt" --cert "$T/cli.crt" --key "$T/cli.key" -p "$TPORT" ping \
    || { echo "redis (TLS) did not start"; exit 1; }
}
R() {
  REDISCLI_AUTH=$PW redis-cli --no-auth-warning --tls --cacert "$T/ca.crt" --cert "$T/cli.crt" --key "$T/cli.key" \
    -p "$TPORT" "$@"
}
tls_up no
check "plain TCP is refused by the server" "no" \
  "$(redis-cli -p "$TPORT" ping 2>/dev/null | grep -q PONG && echo yes || echo no)"

URL_TLS="rediss://:$PW@127.0.0.1:$TPORT?cacert=$T/ca.crt"
start_node a --redis "$URL_TLS"
make_kv_app "$T/v1" one tls.test
check "deploy over TLS" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "invoke" "200 one 1" "$(http GET /demo/who)"
check "tine.kv over TLS" "200 tls" "$(http GET "/demo/kv?v=tls")"
check "stored in the TLS server" "tls" "$(R GET tine:kv:demo:k)"
out=$(post_event '{"specversion":"1.0","id":"tls-1","source":"/t","type":"tls.test"}')
check "an event is accepted" "202" "${out%% *}"
wait_for 10 test "$(R GET tine:kv:demo:got)" = "tls-1" && ok "and dispatched" || fail "event dispatched" "$(R GET tine:kv:demo:got)"
check "the log hides the password" "" "$(grep -F ":$PW@" "$T/a.log" || true)"
# A live relay of ours: its socket is bound (in /proc/net/unix). A directory
# left by a process killed elsewhere on the machine is passed over, and the
# loop reads every name (no `head` to cut the pipe under pipefail).
relay=""
for d in "${TMPDIR:-/tmp}"/tine-rediss-*; do
  [ -z "$relay" ] && [ "$(stat -c %U "$d" 2>/dev/null)" = "$(id -un)" ] && grep -qF " $d/relay.sock" /proc/net/unix \
    && relay=$d
done
check "the relay's directory is 0700" "700" "$(stat -c %a "$relay")"
check "its socket is 0600" "600" "$(stat -c %a "$relay/relay.sock")"

# The server restarts: the node reconnects through TLS.
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
sleep 1
tls_up no
wait_for 10 bash -c "[ \"\$(curl -s '$URL/demo/kv?v=back')\" = back ]" \
  && ok "tine.kv again after a restart" || fail "tine.kv after a restart" "$(curl -s "$URL/demo/kv?v=back")"
make_app "$T/v2" two
check "deploy again after a restart" "deployed demo version 2" "$(tine deploy "$T/v2")"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# Certificates that do not verify stop tined at start.
check "another CA: tined stops" "1" "$(tined_status otherca --redis "rediss://:$PW@127.0.0.1:$TPORT?cacert=$T/other.crt")"
check_contains "saying the certificate does not verify" \
  "cannot connect to redis at rediss://:***@127.0.0.1:$TPORT?cacert=$T/other.crt: the certificate of 127.0.0.1:$TPORT does not verify" \
  "$(cat "$T/otherca.log")"
check "the system's CAs do not know ours" "1" "$(tined_status system --redis "rediss://:$PW@127.0.0.1:$TPORT")"
check_contains "nor do they verify it" "does not verify" "$(cat "$T/system.log")"
check "a CA file that is not there" "1" "$(tined_status nofile --redis "rediss://:$PW@127.0.0.1:$TPORT?cacert=$T/nope.pem")"
check_contains "is named" "cacert $T/nope.pem: No such file or directory" "$(cat "$T/nofile.log")"
check "no password in any of it" "" "$(cat "$T/otherca.log" "$T/system.log" "$T/nofile.log" | grep -F ":$PW@" || true)"

# A server that asks for a client certificate.
kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true
tls_up yes
check "without a client certificate: refused" "1" "$(tined_status nocert --redis "$URL_TLS")"
check_contains "saying why" "cannot connect to redis at rediss://:***@127.0.0.1:$TPORT?cacert=$T/ca.crt: TLS session with 127.0.0.1:$TPORT ended:" \
  "$(cat "$T/nocert.log")"
start_node c --redis "rediss://:$PW@localhost:$TPORT?cacert=$T/ca.crt&cert=$T/cli.crt&key=$T/cli.key"
check "with one (and the server named by its DNS name): serves" "200 two 2" "$(http GET /demo/who)"
finish
