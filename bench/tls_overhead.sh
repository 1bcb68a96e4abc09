#!/usr/bin/env bash
# Warm throughput of the hello app over HTTPS and over plain HTTP in one run:
# two nodes on one Redis (one with --tls-cert, a certificate made here by
# openssl), alternating runs of `wrk -t1 -cC` (HTTP/1.1 kept alive; over TLS
# the handshakes happen once per connection, before the measured seconds).
# With two CPUs or more, tined runs on cpu 0 and wrk on cpu 1. Prints a table
# and the ratio; asserts nothing (timings depend on the machine).
#   bench/tls_overhead.sh [ROUNDS] [SECONDS] [CONNECTIONS]
# BENCH_TINE_BIN (or TINE_BIN_DIR) measures another build's bin directory.
set -euo pipefail
ROUNDS=${1:-6}
SECS=${2:-5}
CONNS=${3:-16}
SRC=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BENCH_TINE_BIN:-${TINE_BIN_DIR:-$SRC/build/bin}}
for tool in wrk openssl redis-server curl bc; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (scripts/deps.sh)" >&2; exit 2; }
done
T=$(mktemp -d /tmp/tine-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT
SRV=() CLI=()
if [ "$(nproc)" -ge 2 ]; then SRV=(taskset -c 0) CLI=(taskset -c 1); fi

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=127.0.0.1" \
  -addext "subjectAltName=IP:127.0.0.1" -keyout "$T/node.key" -out "$T/node.pem" 2>/dev/null
redis-server --port 0 --unixsocket "$T/redis.sock" --save "" --appendonly no --daemonize no \
  --logfile "$T/redis.log" &
PIDS+=($!)
for _ in $(seq 100); do redis-cli -s "$T/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.05; done

start() { # start NAME [FLAGS...]: sets NODE_URL
  local name=$1 scheme=http
  shift
  [ $# -eq 0 ] || scheme=https
  "${SRV[@]}" "$BIN/tined" --listen 127.0.0.1:0 --state-dir "$T/$name" --sdk-dir "$SRC/sdk/lua" --no-auth \
    --redis "unix://$T/redis.sock" "$@" >"$T/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [ -s "$T/$name/port" ] && break; sleep 0.05; done
  NODE_URL="$scheme://127.0.0.1:$(cat "$T/$name/port")"
}
start plain
PLAIN=$NODE_URL
start tls --tls-cert "$T/node.pem" --tls-key "$T/node.key"
TLS=$NODE_URL
"$BIN/tine" --url "$PLAIN" --token "" deploy "$SRC/functions-examples/hello" >/dev/null
for u in "$PLAIN" "$TLS"; do curl -sf --cacert "$T/node.pem" "$u/hello/" >/dev/null; done

rps() { "${CLI[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" "$1/hello/" | awk '/Requests\/sec/ {print $2}'; }
for u in "$PLAIN" "$TLS"; do "${CLI[@]}" wrk -t1 -c"$CONNS" -d2s "$u/hello/" >/dev/null; done # warm-up
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %14s %14s %8s\n' round "http (req/s)" "https (req/s)" ratio
sp=0; st=0; ratios=()
for r in $(seq "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then a=$(rps "$PLAIN"); b=$(rps "$TLS"); else b=$(rps "$TLS"); a=$(rps "$PLAIN"); fi
  ratio=$(echo "$b / $a" | bc -l)
  ratios+=("$ratio")
  printf '%-6s %14s %14s %8.3f\n' "$r" "$a" "$b" "$ratio"
  sp=$(echo "$sp + $a" | bc -l); st=$(echo "$st + $b" | bc -l)
done
median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}')
printf '%-6s %14.0f %14.0f %8.3f   (median of the rounds %.3f)\n' mean "$(echo "$sp / $ROUNDS" | bc -l)" \
  "$(echo "$st / $ROUNDS" | bc -l)" "$(echo "$st / $sp" | bc -l)" "$median"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
