# Helpers for the integration tests: a temp dir, a real redis-server on a unix
# socket, real tined nodes on free loopback ports, and checks that count.
set -euo pipefail
BIN=${TINE_BIN_DIR:?set TINE_BIN_DIR to the build bin directory}
SRC=${TINE_SOURCE_DIR:?set TINE_SOURCE_DIR to the source tree}
T=$(mktemp -d /tmp/tine-it.XXXXXX)
PASSED=0
FAILED=0
PIDS=()

cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$FAILED" -ne 0 ] || [ "$rc" -ne 0 ]; then
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT

# ok NAME: a passed check. fail NAME DETAIL: a failed one.
ok() { PASSED=$((PASSED + 1)); echo "ok   $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $1: $2"; }

# check NAME EXPECTED ACTUAL
check() {
  if [ "$2" == "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}

# check_contains NAME NEEDLE HAYSTACK
check_contains() {
  if [[ "$3" == *"$2"* ]]; then ok "$1"; else fail "$1" "expected to find [$2] in [$3]"; fi
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

start_redis() {
  redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
    --logfile "$T/redis.log" &
  PIDS+=($!)
  REDIS_PID=$!
  wait_for 10 redis-cli -s "$T/redis.sock" ping || { echo "redis did not start"; exit 1; }
  REDIS_URL="unix://$T/redis.sock"
}

# start_node NAME [tined args...]: sets URL, TOKEN, NODE_PID (and URL_NAME).
start_node() {
  local name=$1; shift
  mkdir -p "$T/$name"
  rm -f "$T/$name/port"
  "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$name" --sdk-dir "$SRC/sdk/lua" "$@" \
    >"$T/$name.log" 2>&1 &
  NODE_PID=$!
  PIDS+=($NODE_PID)
  wait_for 20 test -s "$T/$name/port" || { echo "tined $name did not start"; cat "$T/$name.log"; exit 1; }
  URL="http://127.0.0.1:$(cat "$T/$name/port")"
  TOKEN=$(cat "$T/$name/admin.token" 2>/dev/null || true)
  printf -v "URL_$name" '%s' "$URL"
  printf -v "TOKEN_$name" '%s' "$TOKEN"
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
