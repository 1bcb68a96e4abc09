#!/usr/bin/env bash
# Warm throughput of the hello app with activation recording on and off:
# alternating runs of `wrk -t1 -c16` against one node each, same Redis.
# Prints a table; asserts nothing (timings depend on the machine).
#   bench/activations_overhead.sh [ROUNDS] [SECONDS]
set -euo pipefail
ROUNDS=${1:-4}
SECS=${2:-5}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TINE_BIN_DIR:-$SRC/build/bin}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d /tmp/tine-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT

redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
  --logfile "$T/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -s "$T/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done

start() { # start NAME on|off: sets NODE_URL
  "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$1" --sdk-dir "$SRC/sdk/lua" --no-auth \
    --redis "unix://$T/redis.sock" --activations "$2" >"$T/$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$T/$1/port" ] && break; sleep 0.05; done
  NODE_URL="http://127.0.0.1:$(cat "$T/$1/port")"
}
start on on
ON=$NODE_URL
start off off
OFF=$NODE_URL
"$BIN/tine" --url "$ON" --token "" deploy "$SRC/functions-examples/hello" >/dev/null
for u in "$ON" "$OFF"; do curl -sf "$u/hello/" >/dev/null; done

rps() { wrk -t1 -c16 -d"${SECS}s" "$1/hello/" | awk '/Requests\/sec/ {print $2}'; }
printf '%-6s %14s %14s\n' round "on (req/s)" "off (req/s)"
son=0; soff=0
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(rps "$ON"); b=$(rps "$OFF"); else b=$(rps "$OFF"); a=$(rps "$ON"); fi
  printf '%-6s %14s %14s\n' "$r" "$a" "$b"
  son=$(echo "$son + $a" | bc -l); soff=$(echo "$soff + $b" | bc -l)
done
printf '%-6s %14.0f %14.0f   on/off %.3f\n' mean "$(echo "$son / $ROUNDS" | bc -l)" \
  "$(echo "$soff / $ROUNDS" | bc -l)" "$(echo "$son / $soff" | bc -l)"
echo "records written: $(redis-cli -s "$T/redis.sock" llen tine:acts:hello) kept of $(curl -s "$ON/metrics" | awk '/^tine_activations_recorded_total/ {print $2}') recorded"
