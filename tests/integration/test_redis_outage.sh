#!/usr/bin/env bash
# Every Redis connection of a node recovers from an outage: two nodes on one
# redis-server, first over TCP (redis://127.0.0.1:PORT), then over its unix
# socket; the server is stopped for ~0.3 s and for ~3 s (longer than the
# connect timeout) and started again on the same port and socket. After
# each outage: events posted are accepted and dispatched, an @every 1s
# schedule fires again, the second node follows a deploy made after the
# outage, billing records written after it are listed, tine.kv works. While
# Redis is down, POST /_tine/v1/events answers 503 with JSON, never 202.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/events_lib.sh"

RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$T/rdata"
R() { redis-cli -p "$RPORT" "$@"; }
rkv() { R GET "tine:kv:$1:$2"; }

# The server keeps its data across restarts (append-only file, fsync'd).
redis_up() {
  redis-server --port "$RPORT" --bind 127.0.0.1 --unixsocket "$T/r.sock" --unixsocketperm 700 --dir "$T/rdata" \
    --appendonly yes --appendfsync always --save "" --daemonize no --logfile "$T/redis.log" &
  REDIS_PID=$!
  PIDS+=($REDIS_PID)
  wait_for 10 redis-cli -s "$T/r.sock" ping || { echo "redis did not start"; exit 1; }
}
redis_down() { kill -TERM "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; }

make_watch() { # make_watch DIR LABEL
  mkdir -p "$1"
  cat >"$1/tine.yaml" <<'YAML'
app: watch
functions:
  got: { handler: w.lua#got }
  tick: { handler: w.lua#tick }
  kv: { handler: w.lua#kv }
  ver: { handler: w.lua#ver }
routes:
  - { method: GET, path: /kv, function: kv }
  - { method: GET, path: /ver, function: ver }
triggers:
  - { on: event, type: outage.test, function: got }
  - { on: schedule, cron: "@every 1s", function: tick }
YAML
  cat >"$1/w.lua" <<LUA
local tine = require "tine"
local M = {}
function M.got(event) tine.kv.incr("got") end
function M.tick(event) tine.kv.incr("ticks") end
function M.kv(req) tine.kv.set("k", req.query.v); return tine.kv.get("k") end
function M.ver(req, ctx) return "$2 " .. tostring(ctx.version) end
return M
LUA
}

event() { echo "{\"specversion\":\"1.0\",\"id\":\"$1\",\"source\":\"/outage\",\"type\":\"outage.test\"}"; }
post() { URL=$URL_a TOKEN=$TOKEN_a post_event "$(event "$1")"; }
n() { local v; v=$(rkv watch "$1"); echo "${v:-0}"; }

# The node's answers while Redis is away: 503 with a JSON error, never 202.
check_down() { # check_down LABEL TRIES
  local bad="" out code body
  for i in $(seq "$2"); do
    out=$(post "down-$1-$i")
    code=${out%% *}
    body=${out#* }
    if [ "$code" != 503 ] || ! json_get "$body" 'j["error"]' >/dev/null 2>&1; then bad="$out"; break; fi
    sleep 0.1
  done
  [ -z "$bad" ] && ok "$1: events refused with 503 JSON while redis is down" || fail "$1: events while down" "$bad"
}

# After an outage: every path works again (each given up to 10 s).
check_back() { # check_back LABEL VERSION
  local label=$1 v=$2
  wait_for 10 bash -c "[ \"\$(curl -s '$URL_a/watch/kv?v=$label')\" = '$label' ]" \
    && ok "$label: tine.kv works" || fail "$label: tine.kv" "$(curl -s "$URL_a/watch/kv?v=$label")"
  local got_before accepted=""
  got_before=$(n got)
  for i in $(seq 100); do
    out=$(post "after-$label-$i")
    if [ "${out%% *}" = 202 ]; then accepted=yes; break; fi
    sleep 0.1
  done
  [ -n "$accepted" ] && ok "$label: an event is accepted" || fail "$label: event accepted" "$out"
  wait_for 10 bash -c "[ \$(redis-cli -p $RPORT GET tine:kv:watch:got) -gt $got_before ]" \
    && ok "$label: and dispatched" || fail "$label: event dispatched" "got $(n got), was $got_before"
  local ticks
  ticks=$(n ticks)
  wait_for 10 bash -c "[ \$(redis-cli -p $RPORT GET tine:kv:watch:ticks) -ge $((ticks + 2)) ]" \
    && ok "$label: the schedule fires again" || fail "$label: schedule" "ticks $(n ticks), was $ticks"
  make_watch "$T/app-$label" "$label"
  check "$label: deploy after the outage" "deployed watch version $v" \
    "$(URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/app-$label")"
  wait_for 10 bash -c "[ \"\$(curl -s '$URL_b/watch/ver')\" = '$label $v' ]" \
    && ok "$label: the second node follows it" || fail "$label: second node" "$(curl -s "$URL_b/watch/ver")"
  local id
  id=$(curl -s -D - -o /dev/null "$URL_a/watch/ver" | tr -d '\r' | sed -n 's/^x-tine-invocation-id: //Ip')
  wait_for 10 bash -c "'$BIN/tine' --url '$URL_a' --token '$TOKEN_a' --json activation '$id' >/dev/null" \
    && ok "$label: its billing record is listed" || fail "$label: billing record" "no activation $id"
}

scenario() { # scenario NAME URL FIRST_VERSION
  local name=$1 url=$2 v=$3 pid_a pid_b
  start_node a --redis "$url"
  pid_a=$NODE_PID
  start_node b --redis "$url"
  pid_b=$NODE_PID
  make_watch "$T/app-$name" "$name-start"
  check "$name: deploy" "deployed watch version $v" "$(URL=$URL_a TOKEN=$TOKEN_a tine deploy "$T/app-$name")"
  wait_for 10 bash -c "[ \"\$(curl -s '$URL_b/watch/ver')\" = '$name-start $v' ]" || true
  wait_for 10 bash -c "[ \"\$(redis-cli -p $RPORT GET tine:kv:watch:ticks)\" -ge 1 ]" || true
  for outage in 0.3 3; do
    v=$((v + 1))
    redis_down
    check_down "$name ${outage}s" 1
    if [ "$outage" = 3 ]; then
      sleep 1
      check_down "$name ${outage}s, later" 5
      sleep 1.4
    else
      sleep 0.2
    fi
    redis_up
    check_back "$name-${outage}s" "$v"
  done
  kill -TERM "$pid_a" "$pid_b"
  wait "$pid_a" "$pid_b" 2>/dev/null || true
}

redis_up
scenario tcp "redis://127.0.0.1:$RPORT" 1
scenario unix "unix://$T/r.sock" 4
finish
