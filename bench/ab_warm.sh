#!/usr/bin/env bash
# A/B warm throughput of two tined builds on a shared machine: each build
# gets its own Redis and node (hello deployed), both pinned to the server
# cpu with their Redis, wrk pinned to the client cpu; rounds alternate
# A, B, B, A, ... in the same minutes so load from elsewhere hits both.
# Prints each round and the medians; asserts nothing.
#   bench/ab_warm.sh BIN_DIR_A BIN_DIR_B [ROUNDS] [SECONDS] [CONNECTIONS]
# Environment: AB_SERVER_CPU (0), AB_CLIENT_CPU (1).
set -euo pipefail
A=$1 B=$2 ROUNDS=${3:-6} SECS=${4:-5} CONNS=${5:-32}
SCPU=${AB_SERVER_CPU:-0} CCPU=${AB_CLIENT_CPU:-1}
SRC=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
T=$(mktemp -d /tmp/tine-ab.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT

up() { # up NAME BIN_DIR: sets URL to the node's
  local dir=$T/$1
  mkdir -p "$dir"
  taskset -c "$SCPU" redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no \
    --daemonize no --logfile "$dir/redis.log" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done
  taskset -c "$SCPU" "$2/tined" --listen 127.0.0.1:0 --state-dir "$dir/state" --sdk-dir "$SRC/sdk/lua" \
    --no-auth --redis "unix://$dir/redis.sock" >"$dir/tined.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$dir/state/port" ] && break; sleep 0.05; done
  URL="http://127.0.0.1:$(cat "$dir/state/port")"
  "$2/tine" --url "$URL" --token "" deploy "$SRC/functions-examples/hello" >/dev/null
  curl -sf "$URL/hello/" >/dev/null
}
up a "$A"
UA=$URL
up b "$B"
UB=$URL
rps() { taskset -c "$CCPU" wrk -t1 -c"$CONNS" -d"${SECS}s" "$1/hello/" | awk '/Requests\/sec/ {print $2}'; }
rps "$UA" >/dev/null; rps "$UB" >/dev/null # warm-up
printf '%-6s %12s %12s %8s\n' round "A req/s" "B req/s" "B/A"
ra=() rb=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(rps "$UA"); b=$(rps "$UB"); else b=$(rps "$UB"); a=$(rps "$UA"); fi
  ra+=("$a") rb+=("$b")
  printf '%-6s %12s %12s %8.3f\n' "$r" "$a" "$b" "$(echo "$b / $a" | bc -l)"
done
med() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ma=$(med "${ra[@]}") mb=$(med "${rb[@]}")
printf '%-6s %12.0f %12.0f %8.3f\n' median "$ma" "$mb" "$(echo "$mb / $ma" | bc -l)"
