# Helpers for the integration tests: a temp dir, a real redis-server on a unix
# socket, real tined nodes on free loopback ports, and checks that count.
set -euo pipefail
BIN=${TINE_BIN_DIR:?set TINE_BIN_DIR to the build bin directory}
SRC=${TINE_SOURCE_DIR:?set TINE_SOURCE_DIR to the source tree}
T=$(mktemp -d /tmp/tine-it.XXXXXX)
PASSED=0
FAILED=0
SKIPPED=0
PIDS=()
AT_EXIT=()
# The exit code of a script that could not run here (ctest SKIP_RETURN_CODE).
SKIP_RC=77

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  for h in "${AT_EXIT[@]}"; do eval "$h" || true; done
  if [ "$FAILED" -ne 0 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne "$SKIP_RC" ]; }; then
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT

# at_exit COMMAND: run at the end, after the processes stopped and before
# the temp dir is removed (umount what the test mounted there).
at_exit() { AT_EXIT+=("$*"); }

# ok NAME: a passed check. fail NAME DETAIL: a failed one.
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

# skip NAME REASON: a check that cannot run on this host, said aloud.
skip() { SKIPPED=$((SKIPPED + 1)); echo "skip $1: $2"; }

# skip_all REASON: the whole script cannot run here; ctest reports it as
# skipped (SKIP_RETURN_CODE), not passed.
skip_all() { echo "SKIP: $1"; exit "$SKIP_RC"; }

# run CMD...: runs CMD (its output is the caller's) and, when it fails,
# records which command failed with what status: the next check fails then,
# whatever it compares. For "$(cmd)" feeding a check, where a failing
# command's empty or error output could match what the check expects.
# Returns 0 so that `out=$(run cmd)` does not stop the script (set -e).
run() {
  local rc=0
  "$@" || rc=$?
  [ "$rc" -eq 0 ] || printf '%s exited with status %d; ' "$*" "$rc" >>"$T/run.failed"
  return 0
}

# Fails check NAME when a command run by `run` failed since the last check.
run_failed() {
  [ -s "$T/run.failed" ] || return 1
  fail "$1" "$(cat "$T/run.failed")"
  rm -f "$T/run.failed"
}

# check NAME EXPECTED ACTUAL
check() {
  run_failed "$1" && return 0
  if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
  run_failed "$1" && return 0
  if [[ "$3" == *"$2"* ]]; then ok "$1"; else fail "$1" "expected to find [$2] in [$3]"; fi
}

# The script's last command: fails when a check failed (or a command run by
# `run` failed unchecked); exits SKIP_RC when every check was skipped.
finish() {
  run_failed "a command run for a check" || true
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
  [ "$FAILED" -eq 0 ] || return 1
  if [ "$PASSED" -eq 0 ] && [ "$SKIPPED" -gt 0 ]; then return "$SKIP_RC"; fi
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# cpu_ms PID: the user + system CPU time of a process so far, in ms (to
# tell a process that waits from one that spins).
cpu_ms() {
  awk -v t="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / t) }' "/proc/$1/stat"
}

# start_http_fixture: the loopback HTTP server of the tine.http tests
# (http_fixture.py); sets FIX to its port.
start_http_fixture() {
  python3 "$SRC/tests/integration/http_fixture.py" "$T/fixture.port" >"$T/fixture.log" 2>&1 &
  PIDS+=($!)
  wait_for 10 test -s "$T/fixture.port" || { echo "the HTTP fixture did not start"; exit 1; }
  FIX=$(cat "$T/fixture.port")
}

start_redis() {
  redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
    --logfile "$T/redis.log" &
  PIDS+=($!)
  REDIS_PID=$!
  wait_for 10 redis-cli -s "$T/redis.sock" ping || { echo "redis did not start"; exit 1; }
  REDIS_URL="unix://$T/redis.sock"
}

# A Redis on a loopback TCP port that can go away and come back with its
# data (append-only, fsync always, in $T/rdata): tcp_redis picks the port
# (RPORT, RURL); redis_up starts it (REDIS_PID), redis_down kills it at once
# (SIGKILL); R runs redis-cli on it. A test may define its own instead.
tcp_redis() {
  RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  RURL="redis://127.0.0.1:$RPORT"
  mkdir -p "$T/rdata"
}
R() { redis-cli -p "$RPORT" "$@"; }
redis_up() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$T/rdata" --appendonly yes --appendfsync always --save "" \
    --daemonize no --logfile "$T/redis.log" &
  REDIS_PID=$!
  PIDS+=($REDIS_PID)
  wait_for 10 redis-cli -p "$RPORT" ping || { echo "redis did not start"; exit 1; }
}
redis_down() { kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }

# make_cert DIR NAME: with openssl, a CA in DIR (ca.pem, ca.key; made once)
# and a server certificate signed by it for 127.0.0.1 (subjectAltName
# IP:127.0.0.1, a new serial each time): DIR/NAME.pem and DIR/NAME.key.
make_cert() {
  local d=$1 n=$2
  mkdir -p "$d"
  if [ ! -s "$d/ca.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=tine test CA" \
      -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  fi
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/$n.key" -out "$d/$n.csr" 2>/dev/null
  openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$d/$n.pem" 2>/dev/null
}

# serve_tls: nodes started from now on serve HTTPS with $T/tls/server.pem;
# curl (CURL_CA_BUNDLE), the CLI and http_raw.py (TINE_CACERT) trust its CA.
NODE_TLS=()
serve_tls() {
  make_cert "$T/tls" server
  NODE_TLS=(--tls-cert "$T/tls/server.pem" --tls-key "$T/tls/server.key")
  export CURL_CA_BUNDLE=$T/tls/ca.pem TINE_CACERT=$T/tls/ca.pem
}

# TINE_TEST_TLS=1 runs a script's nodes over HTTPS (test_tls_*.sh do).
if [ "${TINE_TEST_TLS:-0}" = 1 ]; then serve_tls; fi

# start_node NAME [tined args...]: sets URL, TOKEN, NODE_PID (and URL_NAME).
start_node() {
  local name=$1 scheme=http; shift
  [ ${#NODE_TLS[@]} -eq 0 ] || scheme=https
  mkdir -p "$T/$name"
  rm -f "$T/$name/port"
  "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$name" --sdk-dir "$SRC/sdk/lua" "${NODE_TLS[@]}" "$@" \
    >"$T/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=($NODE_PID)
  wait_for 20 test -s "$T/$name/port" || { echo "tined $name did not start"; cat "$T/$name.log"; exit 1; }
  URL="$scheme://127.0.0.1:$(cat "$T/$name/port")"
  TOKEN=$(cat "$T/$name/admin.token" 2>/dev/null || true)
  printf -v "URL_$name" '%s' "$URL"
  printf -v "TOKEN_$name" '%s' "$TOKEN"
}

# tined_status NAME [tined args...]: runs a tined expected to stop by itself
# (a bad option, a Redis it cannot use, a state dir in use) on state dir
# $T/NAME; prints its exit status (124: it did not stop within 30 s); its
# output goes to $T/NAME.log.
tined_status() {
  local name=$1; shift
  mkdir -p "$T/$name"
  set +e
  timeout 30 "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$name" --sdk-dir "$SRC/sdk/lua" "$@" \
    >"$T/$name.log" 2>&1
  echo "$?"
  set -e
}

# log_msgs FILE: tined's own lines in FILE (JSON, one object a line), one
# "LEVEL: MSG" a line; lines that are not such an object are left out.
log_msgs() {
  python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if isinstance(d, dict) and "level" in d and "msg" in d:
        print("%s: %s" % (d["level"], d["msg"]))' "$1"
}

# check_json_log FILE: every line tined (and the zygote and sandboxes it
# started, which share its stderr) wrote to FILE is one of its JSON log
# lines: an object with ts, level and msg.
check_json_log() {
  local bad
  bad=$(python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        d = json.loads(line)
        ok = isinstance(d, dict) and all(isinstance(d.get(k), str) for k in ("ts", "level", "msg"))
    except ValueError:
        ok = False
    if not ok:
        print(line.rstrip("\n"))' "$1" 2>&1)
  check "every line of $(basename "$1") is a JSON log line" "" "$bad"
}

# invoke_app APP FN [JSON]: prints "STATUS|ERROR or BODY" of an admin invoke.
invoke_app() {
  local out
  out=$(admin POST "/apps/$1/functions/$2/invoke" --data-binary "${3:-{\}}")
  pyget "${out#* }" '"%s|%s" % (d.get("status"), d.get("error") or d.get("body") or "")' 2>/dev/null || echo "$out"
}

# logs_of APP FN NEEDLE: the function's activation logs (tine logs) once
# NEEDLE is in them (records reach Redis in batches), else what they hold
# after 5 s.
logs_of() {
  local out
  for _ in $(seq 50); do
    out=$(tine logs "$1" "$2" 2>&1 || true)
    [[ "$out" == *"$3"* ]] && break
    sleep 0.1
  done
  echo "$out"
}

# tine ARGS...: the CLI against the current node.
tine() { "$BIN/tine" --url "$URL" --token "$TOKEN" "$@"; }

# http METHOD PATH [curl args...]: prints "STATUS BODY".
http() {
  local m=$1 p=$2; shift 2
  local out
  out=$(curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$URL$p" "$@" || true)
  echo "$out $(cat "$T/body" 2>/dev/null)"
}

# pyget JSON EXPR: prints the Python expression EXPR on the JSON document `d`.
pyget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

admin() { # admin METHOD PATH [curl args...]
  local m=$1 p=$2; shift 2
  http "$m" "/_tine/v1$p" -H "Authorization: Bearer $TOKEN" "$@"
}

# make_app DIR VERSION_TEXT: a one-function app whose answer names its version.
make_app() {
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<YAML
app: ${3:-demo}
functions:
  who: { handler: who.lua#who, timeout: 2s }
  boom: { handler: who.lua#boom }
  slow: { handler: who.lua#slow, timeout: 5s }
routes:
  - { method: GET, path: /who, function: who }
  - { method: GET, path: /boom, function: boom }
  - { method: GET, path: /slow, function: slow }
YAML
  cat >"$1/who.lua" <<LUA
local M = {}
local VERSION = "$2"
function M.who(req, ctx) return VERSION .. " " .. tostring(ctx.version) end
function M.boom(req, ctx) error("kaboom: a handler error") end
function M.slow(req, ctx)
  local t = os.clock() + 0.05
  while os.clock() < t do end
  return VERSION .. " " .. tostring(ctx.version)
end
return M
LUA
}

# make_kv_app DIR VERSION_TEXT EVENT_TYPE: make_app's app plus GET /kv?v=X
# (tine.kv.set then get of "k") and an event trigger keeping the last
# event's id in the kv key "got".
make_kv_app() {
  make_app "$1" "$2"
  sed -i 's/^functions:/functions:\n  kv: { handler: kv.lua#kv }\n  got: { handler: kv.lua#got }/' "$1/tine.yaml"
  cat >>"$1/tine.yaml" <<YAML
  - { method: GET, path: /kv, function: kv }
triggers:
  - { on: event, type: $3, function: got }
YAML
  cat >"$1/kv.lua" <<'LUA'
local tine = require "tine"
return {
  kv = function(req) tine.kv.set("k", req.query.v or "kv"); return tine.kv.get("k") end,
  got = function(event) tine.kv.set("got", event.id) end,
}
LUA
}
