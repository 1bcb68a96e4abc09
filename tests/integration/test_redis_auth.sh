#!/usr/bin/env bash
# Redis with a password: tined given redis://:PASSWORD@host:port works end
# to end (deploy, invoke, tine.kv, events); a wrong password stops tined at
# start with a message that names the problem and not the password; an ACL
# user logs in with redis://USER:PASSWORD@...; a Redis over TCP without a
# password works with a warning.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"

RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PW='s3cr@t:pw/x'   # characters that must be percent-encoded in a URL
PW_URL='s3cr%40t%3Apw%2Fx'
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$T/redis.log" \
  --requirepass "$PW" --user tine on ">acl-pw" "~*" "&*" "+@all" &
PIDS+=($!)
wait_for 10 redis-cli -p "$RPORT" ping || { echo "redis did not start"; exit 1; }
R() { REDISCLI_AUTH="$PW" redis-cli --no-auth-warning -p "$RPORT" "$@"; }

# --- the right password: everything works
start_node a --redis "redis://:$PW_URL@127.0.0.1:$RPORT"
make_kv_app "$T/v1" one auth.test
check "deploy with a password" "deployed demo version 1" "$(tine deploy "$T/v1")"
check "invoke" "200 one 1" "$(http GET /demo/who)"
check "tine.kv" "200 v1" "$(http GET "/demo/kv?v=v1")"
out=$(post_event '{"specversion":"1.0","id":"ev-1","source":"/t","type":"auth.test"}')
check "an event is accepted" "202" "${out%% *}"
wait_for 10 test "$(R GET tine:kv:demo:got)" = "ev-1" && ok "and dispatched" || fail "event dispatched" "$(R GET tine:kv:demo:got)"
check "the password is not in the log" "" "$(grep -F -e "$PW" -e "$PW_URL" "$T/a.log" || true)"
check_contains "the log shows the URL without it" "redis://:***@127.0.0.1:$RPORT" "$(cat "$T/a.log")"
check "no warning about a missing password" "" "$(grep "has no password" "$T/a.log" || true)"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# --- a wrong password: tined stops at start, saying why, without the password
check "a wrong password stops tined" "1" "$(tined_status wrong --redis "redis://:hunter2@127.0.0.1:$RPORT")"
check_contains "and says so" "redis at redis://:***@127.0.0.1:$RPORT refused the password" "$(cat "$T/wrong.log")"
check "without the password" "" "$(grep hunter2 "$T/wrong.log" || true)"
check "not serving" "no" "$(test -s "$T/wrong/port" && echo yes || echo no)"
check "no password for a server that needs one" "1" "$(tined_status none --redis "redis://127.0.0.1:$RPORT")"
check_contains "says it needs one" "requires a password: give it in the URL" "$(cat "$T/none.log")"
check "a bad URL" "2" "$(tined_status badurl --redis "redis://:hunter2@127.0.0.1:99999")"
check_contains "names what is wrong" "--redis: redis URL 'redis://:***@127.0.0.1:99999': port '99999'" \
  "$(cat "$T/badurl.log")"
check "not the password either" "" "$(grep hunter2 "$T/badurl.log" || true)"

# --- an ACL user
start_node acl --redis "redis://tine:acl-pw@127.0.0.1:$RPORT"
make_app "$T/v2" two
check "deploy as an ACL user" "deployed demo version 2" "$(tine deploy "$T/v2")"
check "invoke as an ACL user" "200 two 2" "$(http GET /demo/who)"
check "its connections are the user's" "yes" \
  "$(R CLIENT LIST | grep -q 'user=tine' && echo yes || echo no)"
kill -TERM "$NODE_PID"; wait "$NODE_PID" 2>/dev/null || true

# --- over TCP without a password: works, with a warning
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$NPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no --logfile "$T/redis2.log" &
PIDS+=($!)
wait_for 10 redis-cli -p "$NPORT" ping || { echo "redis did not start"; exit 1; }
start_node open --redis "redis://127.0.0.1:$NPORT"
make_app "$T/v3" three
check "deploy without a password" "deployed demo version 1" "$(tine deploy "$T/v3")"
check_contains "warns that redis has no password" "redis at redis://127.0.0.1:$NPORT has no password" \
  "$(cat "$T/open.log")"
finish
