#!/usr/bin/env bash
# tine up: serves where --listen or TINE_LISTEN says; when the address is
# taken (here by another tined) it says so and exits 1 instead of talking to
# the other node; make up takes PORT= and LISTEN=.
. "$(dirname "$0")/lib.sh"
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
up() { # up STATE_DIR [tine up args...]: tine up in the foreground, at most 60 s
  local dir=$1; shift
  timeout 60 "$BIN/tine" up --state-dir "$dir" --redis "$REDIS_URL" "$@" "$SRC/functions-examples/hello"
}
start_redis
start_node a --redis "$REDIS_URL"
P=${URL##*:}

out=$(up "$T/b" --listen "127.0.0.1:$P" 2>&1) && rc=0 || rc=$?
check "--listen on a taken port: exit 1" "1" "$rc"
check_contains "--listen on a taken port: the cause" \
  "cannot listen on 127.0.0.1:$P: address already in use (another process, perhaps another tined, listens there)" "$out"
# Whole words: the admin token tined b prints is hex and may contain "401".
check "--listen on a taken port: the other node was not asked anything" "" "$(grep -oiw '401\|unauthorized\|deployed' <<<"$out" || true)"

out=$(TINE_LISTEN=127.0.0.1:$P up "$T/c" 2>&1) && rc=0 || rc=$?
check "TINE_LISTEN on a taken port: exit 1" "1" "$rc"
check_contains "TINE_LISTEN on a taken port: the cause" "cannot listen on 127.0.0.1:$P: address already in use" "$out"

# The cluster already has hello, and another version of it live: tine up
# serves the files of its DIR all the same (a new version).
cp -r "$SRC/functions-examples/hello" "$T/hello2"
sed -i 's/hello, /hi, /' "$T/hello2/hello.lua"
tine deploy "$SRC/functions-examples/hello" >/dev/null
tine deploy "$T/hello2" >/dev/null

# A stale port file (another node's, or an earlier run's) is not believed:
# tine waits for the one its own tined writes.
Q=$(free_port)
mkdir -p "$T/d"
echo "$P" >"$T/d/port"
TINE_LISTEN=127.0.0.1:$Q "$BIN/tine" up --state-dir "$T/d" --redis "$REDIS_URL" "$SRC/functions-examples/hello" \
  >"$T/up.out" 2>"$T/up.log" &
UP=$!
PIDS+=($UP)
wait_for 30 grep -q "^GET " "$T/up.out" || true
check_contains "TINE_LISTEN: tine up deploys to its own node" "GET http://127.0.0.1:$Q/hello/" "$(cat "$T/up.out")"
check_contains "the files of an older version: a new version" "deployed hello version 3" "$(cat "$T/up.out")"
check "TINE_LISTEN: the app is served there, from DIR" "hello, world" "$(run curl -sf "http://127.0.0.1:$Q/hello/")"
check "the stale port file was replaced by the node's own" "$Q" "$(cat "$T/d/port")"
kill -TERM "$UP"
rc=0
wait "$UP" || rc=$?
check "Ctrl-C (SIGTERM) stops tined and tine up with it" "0" "$rc"
check "nothing listens there any more" "000" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$Q/" || true)"

check_contains "make up PORT=" "tine up --listen 127.0.0.1:9123 functions-examples/hello" \
  "$(run make -s -n -C "$SRC" up PORT=9123)"
check_contains "make up LISTEN=" "tine up --listen 0.0.0.0:9124 functions-examples/hello" \
  "$(run make -s -n -C "$SRC" up LISTEN=0.0.0.0:9124)"
finish
